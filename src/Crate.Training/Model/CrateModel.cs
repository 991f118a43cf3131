using Crate.Core.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Model;

/// <summary>What one layer computed, kept when a forward pass is traced.</summary>
/// <param name="Input">The layer's input tokens z_l, <c>[B, T, dim]</c>.</param>
/// <param name="Compressed">After the MSSA step, <c>h = z + MSSA(LN1(z))</c>.</param>
/// <param name="Codes">The ISTA output (sparse, non-negative codes), the next layer's input.</param>
/// <param name="Attention">MSSA attention <c>[B, heads, T, T]</c>, when requested.</param>
public sealed record LayerTrace(Tensor Input, Tensor Compressed, Tensor Codes, Tensor? Attention);

/// <summary>The result of a traced forward pass: logits plus everything each layer computed, from one pass.</summary>
public sealed record CrateTrace(Tensor Logits, Tensor Features, Tensor Tokens, IReadOnlyList<LayerTrace> Layers);

/// <summary>
/// CRATE (Yu et al., "White-Box Transformers via Sparse Rate Reduction") as the reference computes it.
/// Parameter names equal the reference's state-dict keys, so its checkpoints load unchanged.
/// The trunk (<see cref="Embed"/>, <see cref="ForwardTokens"/>) is separate from the head (<see cref="Pool"/>, <see cref="Head"/>)
/// so probes, prompts and segmentation heads reuse it.
/// </summary>
public sealed class CrateModel : nn.Module<Tensor, Tensor>, IVisionTransformer
{
    private readonly PatchEmbedding to_patch_embedding;
    private readonly Parameter pos_embedding;
    private readonly Parameter cls_token;
    private readonly Parameter? prompt_tokens;
    private readonly Dropout _embDropout;
    private readonly CrateLayer[] _layers;
    private readonly ClassifierHead mlp_head;

    /// <summary>Builds a randomly initialised network (initialisation as the reference).</summary>
    public CrateModel(CrateConfig config) : base("CRATE")
    {
        Config = config.Validate();
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
            .Select(_ => new CrateLayer(config.Dim, config.Heads, config.DimHead, config.Dropout, config.IstaStep, config.IstaLambda)).ToArray();
        // "transformer.layers.{i}": a container module holding the layer list, as in the reference.
        register_module("transformer", new LayerStack(new ModuleList<CrateLayer>(_layers)));
        mlp_head = new ClassifierHead(config.Dim, config.NumClasses);
        register_module(nameof(mlp_head), mlp_head);
        TrunkInput.InitialisePrompts(prompt_tokens);
    }

    /// <summary>The configuration the network was built from.</summary>
    public CrateConfig Config { get; }
    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<CrateLayer> Layers => _layers;
    /// <summary>The classifier head.</summary>
    public ClassifierHead ClassifierHead => mlp_head;
    /// <summary>The learned class token, <c>[1, 1, dim]</c>.</summary>
    public Parameter ClassToken => cls_token;
    /// <summary>The learned positional embedding, <c>[1, N+1, dim]</c>.</summary>
    public Parameter PositionalEmbedding => pos_embedding;
    /// <summary>The learned prompt tokens <c>[1, k, dim]</c> that follow the class token, or null when <see cref="CrateConfig.PromptTokens"/> is 0.</summary>
    public Parameter? Prompts => prompt_tokens;

    /// <summary>
    /// Mixed precision: the trunk's matrix products run in bfloat16 while weights, LayerNorm, softmax, residuals,
    /// the head and the loss stay float32. Off by default; the trainer turns it on where the CPU has bfloat16
    /// dot products (<see cref="MixedPrecision.CpuSupportsBFloat16"/>).
    /// </summary>
    public bool BFloat16
    {
        get => to_patch_embedding.BFloat16;
        set
        {
            to_patch_embedding.BFloat16 = value;
            foreach (var layer in _layers) { layer.Attention.Block.BFloat16 = value; layer.Sparsify.Block.BFloat16 = value; }
        }
    }

    /// <summary>Number of trainable parameters.</summary>
    public long ParameterCount() => parameters().Sum(p => p.numel());

    /// <summary>
    /// Images <c>[B, C, H, W]</c> (already normalised) to tokens <c>[B, 1 + k + N, dim]</c>: the class token plus its position,
    /// the k prompt tokens (no position), then the patches plus theirs.
    /// </summary>
    public Tensor Embed(Tensor images)
    {
        var patches = EmbedPatches(images);
        return _embDropout.forward(TrunkInput.Assemble(ClassTokenWithPosition(patches.shape[0]), prompt_tokens, patches));
    }

    /// <summary>Patch tokens with their positional embeddings, <c>[B, N, dim]</c>, no class token (masked modelling picks among them).</summary>
    public Tensor EmbedPatches(Tensor images)
    {
        TrunkInput.Check(Config, images, "CRATE");
        return to_patch_embedding.forward(images).add(pos_embedding.narrow(1, 1, Config.NumPatches));
    }

    /// <summary>The class token plus its positional embedding, expanded to <paramref name="batch"/>, <c>[B, 1, dim]</c>.</summary>
    public Tensor ClassTokenWithPosition(long batch) => cls_token.add(pos_embedding.narrow(1, 0, 1)).expand(batch, -1, -1);

    /// <summary>Runs every layer over <paramref name="tokens"/>; with <paramref name="trace"/> each layer's work is recorded.</summary>
    public Tensor ForwardTokens(Tensor tokens, List<LayerTrace>? trace = null, bool keepAttention = false) =>
        TrunkInput.RunLayers(_layers, tokens, trace, keepAttention);

    /// <summary>Pools final tokens to one feature vector per image (class token, or mean).</summary>
    public Tensor Pool(Tensor tokens) => TrunkInput.Pool(Config, tokens);

    /// <summary>Pooled features to logits.</summary>
    public Tensor Head(Tensor pooled) => mlp_head.forward(pooled);

    /// <inheritdoc />
    public override Tensor forward(Tensor images) => Head(Pool(ForwardTokens(Embed(images))));

    /// <summary>One forward pass that also returns per-layer tokens, ISTA codes and (optionally) attention maps.</summary>
    public CrateTrace Trace(Tensor images, bool keepAttention = true) => TrunkInput.Trace(this, images, keepAttention);

    /// <summary>Holds the layer list under the name "layers".</summary>
    private sealed class LayerStack : nn.Module
    {
        public LayerStack(ModuleList<CrateLayer> layers) : base("Transformer") => register_module("layers", layers);
    }
}
