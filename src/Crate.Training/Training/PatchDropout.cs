using Crate.Core.Model;
using Crate.Training.Data;
using Crate.Training.Model;
using Crate.Training.Pretext;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training;

/// <summary>
/// Patch dropout: a training forward pass in which every image keeps only a random subset of its patch tokens (the
/// class and prompt tokens always stay). Attention and the per-token products shrink with the token count, so a step
/// costs roughly the kept fraction of a full one. <see cref="TrainerOptions.FullPatchEpochs"/> lets the last epochs
/// train on every patch, the token count the model is evaluated with.
/// </summary>
public static class PatchDropout
{
    /// <summary>
    /// Which patches each of <paramref name="batch"/> images keeps when <paramref name="ratio"/> of them are dropped, drawn
    /// from a generator keyed by (<paramref name="seed"/>, <paramref name="step"/>) alone, so a resumed run drops what an
    /// uninterrupted one would.
    /// </summary>
    public static PatchMask Draw(long batch, CrateConfig config, double ratio, int seed, long step)
    {
        using var generator = new Generator(new SeededRandom(seed, step, 0x5041544348).NextUInt64() >> 1);
        return PatchMask.Random(batch, config.NumPatches, ratio, generator);
    }

    /// <summary>
    /// Logits for <paramref name="images"/> <c>[B, C, H, W]</c> computed from the class token, the prompt tokens and only the
    /// patch tokens <paramref name="mask"/> keeps (with their own positional embeddings).
    /// </summary>
    public static Tensor Forward(IVisionTransformer model, Tensor images, PatchMask mask)
    {
        var config = model.Config;
        var tokens = model.Embed(images);
        var kept = mask.Select(tokens.narrow(1, config.FirstPatchToken, config.NumPatches));
        var reduced = torch.cat([tokens.narrow(1, 0, config.FirstPatchToken), kept], 1);
        return model.Head(model.Pool(model.ForwardTokens(reduced)));
    }

    /// <summary>Whether training epoch <paramref name="epoch"/> (1-based) drops patches under <paramref name="o"/>.</summary>
    public static bool ShouldDrop(TrainerOptions o, int epoch) => o.PatchDropout > 0 && epoch <= o.Epochs - o.FullPatchEpochs;
}
