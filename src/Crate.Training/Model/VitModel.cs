using Crate.Core.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Model;

/// <summary>
/// Standard multi-head self-attention with separate query, key and value projections (one bias-free
/// <c>Linear(dim, 3*heads*dim_head)</c> split into q, k, v, as vit-pytorch's <c>to_qkv</c>):
/// <c>A_k = softmax(q_k k_k^T / sqrt(p))</c>, <c>out_k = A_k v_k</c>, heads concatenated then projected.
/// </summary>
public sealed class VitAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear to_qkv;
    private readonly Sequential to_out;
    private readonly Linear _outProjection;
    private readonly Dropout _dropout;
    private readonly int _heads;
    private readonly int _dimHead;

    /// <summary>Creates the block for <paramref name="dim"/>-wide tokens and <paramref name="heads"/> heads of <paramref name="dimHead"/>.</summary>
    public VitAttention(int dim, int heads, int dimHead, double dropout) : base(nameof(VitAttention))
    {
        (_heads, _dimHead) = (heads, dimHead);
        to_qkv = nn.Linear(dim, 3 * heads * dimHead, hasBias: false);
        _outProjection = nn.Linear(heads * dimHead, dim);
        _dropout = nn.Dropout(dropout);
        to_out = nn.Sequential(("0", _outProjection), ("1", _dropout));
        register_module(nameof(to_qkv), to_qkv);
        register_module(nameof(to_out), to_out);
    }

    /// <summary>The value projection <c>W_v</c>, <c>[heads*dim_head, dim]</c>: rows <c>k p .. (k+1) p - 1</c> span head k's value subspace.</summary>
    public Tensor ValueProjection => to_qkv.weight!.narrow(0, 2 * _heads * _dimHead, _heads * _dimHead);

    /// <summary>Run the projections in bfloat16 (softmax stays float32); see <see cref="MixedPrecision"/>.</summary>
    public bool BFloat16 { get; set; }

    /// <inheritdoc />
    public override Tensor forward(Tensor z) => Forward(z, false, out _);

    /// <summary>Attention over <paramref name="z"/> <c>[B, T, dim]</c>; optionally also the attention <c>[B, heads, T, T]</c>.</summary>
    public Tensor Forward(Tensor z, bool keepAttention, out Tensor? attention)
    {
        var (b, t) = (z.shape[0], z.shape[1]);
        var qkv = MixedPrecision.Linear(z, to_qkv.weight!, null, BFloat16).view(b, t, 3, _heads, _dimHead).permute(2, 0, 3, 1, 4);   // [3, B, H, T, p]
        var (q, k, v) = (qkv[0], qkv[1], qkv[2]);
        Tensor mixed;
        if (keepAttention)
        {
            using var scale = Math.Pow(_dimHead, -0.5).ToScalar();   // scoped, as in Mssa
            attention = torch.matmul(q, k.transpose(-1, -2)).mul(scale).softmax(-1);  // softmax(q k^T / sqrt(p))
            mixed = torch.matmul(attention, v);
        }
        else
        {
            attention = null;
            mixed = nn.functional.scaled_dot_product_attention(q, k, v);
        }
        var merged = mixed.transpose(1, 2).reshape(b, t, _heads * _dimHead);
        return _dropout.forward(MixedPrecision.Linear(merged, _outProjection.weight!, _outProjection.bias, BFloat16));
    }
}

/// <summary>The ViT MLP block: <c>Linear(dim, hidden) -> GELU -> Linear(hidden, dim)</c> (children "net.0", "net.3" as vit-pytorch).</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Sequential net;
    private readonly Linear _in;
    private readonly Linear _out;
    private readonly Dropout _hiddenDropout;
    private readonly Dropout _outDropout;

    /// <summary>Creates the block with <paramref name="hidden"/> hidden units.</summary>
    public FeedForward(int dim, int hidden, double dropout) : base(nameof(FeedForward))
    {
        _in = nn.Linear(dim, hidden);
        _out = nn.Linear(hidden, dim);
        _hiddenDropout = nn.Dropout(dropout);
        _outDropout = nn.Dropout(dropout);
        net = nn.Sequential(("0", _in), ("1", nn.GELU()), ("2", _hiddenDropout), ("3", _out), ("4", _outDropout));
        register_module(nameof(net), net);
    }

    /// <summary>
    /// The output weight <c>W_2</c>, <c>[dim, hidden]</c>: the block adds <c>W_2 GELU(...)</c> to the token, so W_2's columns are
    /// the directions it writes with (the ViT counterpart of an ISTA dictionary's atoms).
    /// </summary>
    public Tensor OutputWeight => _out.weight!;

    /// <summary>Run the two products in bfloat16 (GELU stays float32); see <see cref="MixedPrecision"/>.</summary>
    public bool BFloat16 { get; set; }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var hidden = _hiddenDropout.forward(nn.functional.gelu(MixedPrecision.Linear(x, _in.weight!, _in.bias, BFloat16)));
        return _outDropout.forward(MixedPrecision.Linear(hidden, _out.weight!, _out.bias, BFloat16));
    }
}

/// <summary>One ViT layer: <c>h = z + Attn(LN1(z))</c>, <c>z' = h + MLP(LN2(h))</c> (residuals around both blocks).</summary>
public sealed class VitLayer : nn.Module<Tensor, Tensor>, ITracedLayer
{
    private readonly PreNorm<VitAttention> _attention;
    private readonly PreNorm<FeedForward> _mlp;

    /// <summary>Creates a layer; children "0" (attention) and "1" (MLP) mirror <see cref="CrateLayer"/>.</summary>
    public VitLayer(int dim, int heads, int dimHead, int hidden, double dropout) : base(nameof(VitLayer))
    {
        _attention = new PreNorm<VitAttention>(dim, new VitAttention(dim, heads, dimHead, dropout));
        _mlp = new PreNorm<FeedForward>(dim, new FeedForward(dim, hidden, dropout));
        register_module("0", _attention);
        register_module("1", _mlp);
    }

    /// <summary>The attention block with its LayerNorm (LN1).</summary>
    public PreNorm<VitAttention> Attention => _attention;
    /// <summary>The MLP block with its LayerNorm (LN2).</summary>
    public PreNorm<FeedForward> Mlp => _mlp;

    /// <inheritdoc />
    public override Tensor forward(Tensor z) => Forward(z, false, out _, out _);

    /// <summary>Runs the layer, returning <c>z'</c> and the intermediate <c>h</c> (and attention when asked).</summary>
    public Tensor Forward(Tensor z, bool keepAttention, out Tensor afterAttention, out Tensor? attention)
    {
        afterAttention = z + _attention.Block.Forward(_attention.Norm.forward(z), keepAttention, out attention);
        return afterAttention + _mlp.forward(afterAttention);
    }
}

/// <summary>
/// The ViT baseline for comparisons with CRATE: the same trunk (patch embedding, class token, positions, depth,
/// width, heads, head) with each CRATE layer replaced by a standard transformer layer — separate q/k/v attention
/// instead of MSSA's shared projection, and a residual <c>Linear-GELU-Linear</c> MLP (hidden = <see cref="MlpRatio"/> x dim,
/// 4 by default as in ViT) instead of the ISTA step. Same configuration object; more parameters per layer
/// (<c>4 dim^2 + 2 r dim^2</c> weights against CRATE's <c>2 dim^2 + dim^2</c> when heads*dim_head = dim).
/// </summary>
public sealed class VitModel : nn.Module<Tensor, Tensor>, IVisionTransformer
{
    private readonly PatchEmbedding to_patch_embedding;
    private readonly Parameter pos_embedding;
    private readonly Parameter cls_token;
    private readonly Parameter? prompt_tokens;
    private readonly Dropout _embDropout;
    private readonly VitLayer[] _layers;
    private readonly ClassifierHead mlp_head;

    /// <summary>Builds a randomly initialised ViT of <paramref name="config"/>'s shape with MLP hidden width <paramref name="mlpRatio"/> x dim.</summary>
    public VitModel(CrateConfig config, int mlpRatio = 4) : base("ViT")
    {
        Config = config.Validate();
        if (mlpRatio <= 0) throw new ArgumentOutOfRangeException(nameof(mlpRatio), $"the MLP ratio must be positive, got {mlpRatio}");
        MlpRatio = mlpRatio;
        pos_embedding = new Parameter(torch.randn(1, config.NumPatches + 1, config.Dim));
        cls_token = new Parameter(torch.randn(1, 1, config.Dim));
        register_parameter(nameof(pos_embedding), pos_embedding);
        register_parameter(nameof(cls_token), cls_token);
        prompt_tokens = TrunkInput.CreatePrompts(config);
        if (prompt_tokens is not null) register_parameter(nameof(prompt_tokens), prompt_tokens);
        to_patch_embedding = new PatchEmbedding(config.PatchSize, config.Channels, config.Dim);
        register_module(nameof(to_patch_embedding), to_patch_embedding);
        _embDropout = nn.Dropout(config.EmbDropout);
        _layers = Enumerable.Range(0, config.Depth)
            .Select(_ => new VitLayer(config.Dim, config.Heads, config.DimHead, mlpRatio * config.Dim, config.Dropout)).ToArray();
        register_module("transformer", new LayerStack(new ModuleList<VitLayer>(_layers)));
        mlp_head = new ClassifierHead(config.Dim, config.NumClasses);
        register_module(nameof(mlp_head), mlp_head);
        TrunkInput.InitialisePrompts(prompt_tokens);
    }

    /// <inheritdoc />
    public CrateConfig Config { get; }
    /// <summary>MLP hidden width as a multiple of dim.</summary>
    public int MlpRatio { get; }
    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<VitLayer> Layers => _layers;

    /// <summary>Number of trainable parameters.</summary>
    public long ParameterCount() => parameters().Sum(p => p.numel());

    /// <inheritdoc />
    public bool BFloat16
    {
        get => to_patch_embedding.BFloat16;
        set
        {
            to_patch_embedding.BFloat16 = value;
            foreach (var layer in _layers) { layer.Attention.Block.BFloat16 = value; layer.Mlp.Block.BFloat16 = value; }
        }
    }

    /// <inheritdoc />
    public Tensor Embed(Tensor images)
    {
        TrunkInput.Check(Config, images, "ViT");
        var patches = to_patch_embedding.forward(images).add(pos_embedding.narrow(1, 1, Config.NumPatches));
        return _embDropout.forward(TrunkInput.Assemble(cls_token.add(pos_embedding.narrow(1, 0, 1)), prompt_tokens, patches));
    }

    /// <inheritdoc />
    public Tensor ForwardTokens(Tensor tokens, List<LayerTrace>? trace = null, bool keepAttention = false) =>
        TrunkInput.RunLayers(_layers, tokens, trace, keepAttention);

    /// <inheritdoc />
    public Tensor Pool(Tensor tokens) => TrunkInput.Pool(Config, tokens);

    /// <inheritdoc />
    public Tensor Head(Tensor pooled) => mlp_head.forward(pooled);

    /// <inheritdoc />
    public override Tensor forward(Tensor images) => Head(Pool(ForwardTokens(Embed(images))));

    /// <inheritdoc />
    public CrateTrace Trace(Tensor images, bool keepAttention = true) => TrunkInput.Trace(this, images, keepAttention);

    /// <summary>Holds the layer list under the name "layers".</summary>
    private sealed class LayerStack : nn.Module
    {
        public LayerStack(ModuleList<VitLayer> layers) : base("Transformer") => register_module("layers", layers);
    }
}
