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
    private readonly int _heads;
    private readonly int _dimHead;

    /// <summary>Creates the block for <paramref name="dim"/>-wide tokens and <paramref name="heads"/> heads of <paramref name="dimHead"/>.</summary>
    public VitAttention(int dim, int heads, int dimHead, double dropout) : base(nameof(VitAttention))
    {
        (_heads, _dimHead) = (heads, dimHead);
        to_qkv = nn.Linear(dim, 3 * heads * dimHead, hasBias: false);
        to_out = nn.Sequential(("0", nn.Linear(heads * dimHead, dim)), ("1", nn.Dropout(dropout)));
        register_module(nameof(to_qkv), to_qkv);
        register_module(nameof(to_out), to_out);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor z) => Forward(z, false, out _);

    /// <summary>Attention over <paramref name="z"/> <c>[B, T, dim]</c>; optionally also the attention <c>[B, heads, T, T]</c>.</summary>
    public Tensor Forward(Tensor z, bool keepAttention, out Tensor? attention)
    {
        var (b, t) = (z.shape[0], z.shape[1]);
        var qkv = to_qkv.forward(z).view(b, t, 3, _heads, _dimHead).permute(2, 0, 3, 1, 4);   // [3, B, H, T, p]
        var (q, k, v) = (qkv[0], qkv[1], qkv[2]);
        Tensor mixed;
        if (keepAttention)
        {
            attention = torch.matmul(q, k.transpose(-1, -2)).mul(Math.Pow(_dimHead, -0.5)).softmax(-1);  // softmax(q k^T / sqrt(p))
            mixed = torch.matmul(attention, v);
        }
        else
        {
            attention = null;
            mixed = nn.functional.scaled_dot_product_attention(q, k, v);
        }
        return to_out.forward(mixed.transpose(1, 2).reshape(b, t, _heads * _dimHead));
    }
}

/// <summary>The ViT MLP block: <c>Linear(dim, hidden) -> GELU -> Linear(hidden, dim)</c> (children "net.0", "net.3" as vit-pytorch).</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Sequential net;

    /// <summary>Creates the block with <paramref name="hidden"/> hidden units.</summary>
    public FeedForward(int dim, int hidden, double dropout) : base(nameof(FeedForward))
    {
        net = nn.Sequential(("0", nn.Linear(dim, hidden)), ("1", nn.GELU()), ("2", nn.Dropout(dropout)), ("3", nn.Linear(hidden, dim)), ("4", nn.Dropout(dropout)));
        register_module(nameof(net), net);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => net.forward(x);
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
        to_patch_embedding = new PatchEmbedding(config.PatchSize, config.Channels, config.Dim);
        register_module(nameof(to_patch_embedding), to_patch_embedding);
        _embDropout = nn.Dropout(config.EmbDropout);
        _layers = Enumerable.Range(0, config.Depth)
            .Select(_ => new VitLayer(config.Dim, config.Heads, config.DimHead, mlpRatio * config.Dim, config.Dropout)).ToArray();
        register_module("transformer", new LayerStack(new ModuleList<VitLayer>(_layers)));
        mlp_head = new ClassifierHead(config.Dim, config.NumClasses);
        register_module(nameof(mlp_head), mlp_head);
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
    public Tensor Embed(Tensor images)
    {
        TrunkInput.Check(Config, images, "ViT");
        return _embDropout.forward(TrunkInput.Assemble(to_patch_embedding.forward(images), cls_token, pos_embedding));
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
