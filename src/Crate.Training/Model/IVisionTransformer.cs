using Crate.Core.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Model;

/// <summary>
/// The trunk/head interface that CRATE and the ViT baseline share, so segmentation, probes and analysis work on
/// either: images to tokens (<see cref="Embed"/>), the layer stack with an optional per-layer trace including
/// attention (<see cref="ForwardTokens"/>), pooling and the classifier head.
/// </summary>
public interface IVisionTransformer
{
    /// <summary>The trunk's shape: width, depth, heads, input geometry and classes.</summary>
    CrateConfig Config { get; }

    /// <summary>
    /// Mixed precision: the trunk's matrix products in bfloat16 while weights, LayerNorm, softmax, residuals, the head and
    /// the loss stay float32 (see <see cref="MixedPrecision"/>). Off by default.
    /// </summary>
    bool BFloat16 { get; set; }

    /// <summary>
    /// Images <c>[B, C, H, W]</c> (normalised) to tokens <c>[B, 1 + k + N, dim]</c>: the class token first, then the
    /// <see cref="CrateConfig.PromptTokens"/> k prompt tokens, then the patches (from <see cref="CrateConfig.FirstPatchToken"/>).
    /// </summary>
    Tensor Embed(Tensor images);

    /// <summary>Runs every layer; with <paramref name="trace"/> each layer's work (and attention, when asked) is recorded.</summary>
    Tensor ForwardTokens(Tensor tokens, List<LayerTrace>? trace = null, bool keepAttention = false);

    /// <summary>Final tokens to one feature vector per image.</summary>
    Tensor Pool(Tensor tokens);

    /// <summary>Pooled features to class logits.</summary>
    Tensor Head(Tensor pooled);

    /// <summary>The network as a TorchSharp module (parameters, train/eval, device moves).</summary>
    nn.Module<Tensor, Tensor> Module => (nn.Module<Tensor, Tensor>)this;

    /// <summary>One forward pass that also returns per-layer tokens and (optionally) attention maps.</summary>
    CrateTrace Trace(Tensor images, bool keepAttention = true);
}

/// <summary>A transformer layer that can report what it computed: its output, the tokens after its attention step, and the attention.</summary>
public interface ITracedLayer
{
    /// <summary>Runs the layer on <paramref name="z"/>; <paramref name="afterAttention"/> is the tokens after the attention step.</summary>
    Tensor Forward(Tensor z, bool keepAttention, out Tensor afterAttention, out Tensor? attention);
}

/// <summary>Input checks, token assembly, the layer loop and pooling shared by the trunks.</summary>
internal static class TrunkInput
{
    /// <summary>Runs <paramref name="layers"/> in order; with <paramref name="trace"/> each layer's work is recorded.</summary>
    public static Tensor RunLayers(IEnumerable<ITracedLayer> layers, Tensor tokens, List<LayerTrace>? trace, bool keepAttention)
    {
        var z = tokens;
        foreach (var layer in layers)
        {
            var next = layer.Forward(z, keepAttention, out var afterAttention, out var attention);
            trace?.Add(new LayerTrace(z, afterAttention, next, attention));
            z = next;
        }
        return z;
    }

    /// <summary>Final tokens to one vector per image: the class token, or the mean of all tokens.</summary>
    public static Tensor Pool(CrateConfig c, Tensor tokens) => c.Pool == Pooling.Mean ? tokens.mean([1]) : tokens.select(1, 0);

    /// <summary>Throws unless <paramref name="images"/> is <c>[B, C, H, W]</c> of the configured size.</summary>
    public static void Check(CrateConfig c, Tensor images, string model)
    {
        if (images.dim() != 4 || images.shape[1] != c.Channels || images.shape[2] != c.ImageHeight || images.shape[3] != c.ImageWidth)
            throw new ArgumentException(
                $"{model} input must be [batch, {c.Channels}, {c.ImageHeight}, {c.ImageWidth}], got [{string.Join(", ", images.shape)}].");
    }

    /// <summary>The trace every trunk computes: embed, run the layers recording each, pool, classify.</summary>
    public static CrateTrace Trace(IVisionTransformer model, Tensor images, bool keepAttention)
    {
        var layers = new List<LayerTrace>(model.Config.Depth);
        var tokens = model.ForwardTokens(model.Embed(images), layers, keepAttention);
        var features = model.Pool(tokens);
        return new CrateTrace(model.Head(features), features, tokens, layers);
    }

    /// <summary>
    /// The token sequence <c>[B, 1 + k + N, dim]</c>: the class token (its position already added), the <paramref name="prompts"/>
    /// when the trunk has them (no positional embedding), then the patch tokens (positions added).
    /// </summary>
    public static Tensor Assemble(Tensor classToken, Tensor? prompts, Tensor patches)
    {
        long batch = patches.shape[0];
        var cls = classToken.expand(batch, -1, -1);
        return prompts is null ? torch.cat([cls, patches], 1) : torch.cat([cls, prompts.expand(batch, -1, -1), patches], 1);
    }

    /// <summary>The <c>prompt_tokens</c> parameter <c>[1, k, dim]</c> of <paramref name="c"/>, still to be drawn by <see cref="InitialisePrompts"/>; null when k is 0.</summary>
    public static Parameter? CreatePrompts(CrateConfig c) => c.PromptTokens > 0 ? new Parameter(torch.empty(1, c.PromptTokens, c.Dim)) : null;

    /// <summary>
    /// Draws the prompts from N(0, 0.02^2), as prompt tuning initialises them. Trunks call it after creating every other
    /// parameter, so those get the same initial values with or without prompts.
    /// </summary>
    public static void InitialisePrompts(Parameter? prompts)
    {
        if (prompts is null) return;
        using var noGrad = torch.no_grad();
        prompts.normal_(0, 0.02);
    }
}
