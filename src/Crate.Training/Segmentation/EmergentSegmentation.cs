using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Segmentation;

/// <summary>Settings of emergent (attention-only) segmentation.</summary>
public sealed record EmergentOptions
{
    /// <summary>Layer whose class-token attention is used (0-based); default the penultimate layer, <c>depth - 2</c>.</summary>
    public int? Layer { get; init; }
    /// <summary>Fraction of each head's attention mass kept: the highest-attended patches summing to it. Default 0.6.</summary>
    public double KeepMass { get; init; } = 0.6;
    /// <summary>A pixel is foreground when at least this fraction of the heads keep it. Default 0.5 (a majority vote).</summary>
    public double VoteFraction { get; init; } = 0.5;
}

/// <summary>What emergent segmentation found for a batch of images.</summary>
/// <param name="HeadAttention">Class-token attention per head on the patch grid, <c>[B, heads, gh, gw]</c>, each head renormalised to sum 1 over the patches.</param>
/// <param name="HeadMasks">Per head, the patches keeping the top attention mass, upsampled to pixels: <c>[B, heads, H, W]</c> bool.</param>
/// <param name="Foreground">Pixels kept by at least the vote fraction of heads, <c>[B, H, W]</c> bool.</param>
/// <param name="Logits">The classifier's logits, <c>[B, classes]</c>.</param>
public sealed record EmergentMaps(Tensor HeadAttention, Tensor HeadMasks, Tensor Foreground, Tensor Logits)
{
    /// <summary>
    /// A class map from the emergent foreground: every foreground pixel gets the image's predicted class (as mask
    /// id, class + 1), the rest background 0. <c>[B, H, W]</c> uint8. One class per image, by construction.
    /// </summary>
    public Tensor ClassMap() =>
        Foreground.to(ScalarType.Int64).mul(Logits.argmax(1).add(1).view(-1, 1, 1)).to(ScalarType.Byte);
}

/// <summary>
/// Segmentation that emerges from classification training, with no mask supervision (Yu et al., "Emergence of
/// Segmentation with Minimalistic White-Box Transformers"; the thresholding follows DINO): take one layer's attention
/// from the class token to the patches, per head; keep the patches holding the top <see cref="EmergentOptions.KeepMass"/>
/// of that head's attention; upsample to pixels (nearest, a patch is one block); vote over heads for the foreground.
/// Works on CRATE and on the ViT baseline alike.
/// </summary>
public static class EmergentSegmentation
{
    /// <summary>Segments normalised <paramref name="images"/> <c>[B, C, H, W]</c> with <paramref name="model"/>'s attention.</summary>
    public static EmergentMaps Segment(IVisionTransformer model, Tensor images, EmergentOptions? options = null)
    {
        options ??= new EmergentOptions();
        var c = model.Config;
        int layer = options.Layer ?? Math.Max(0, c.Depth - 2);
        if (layer < 0 || layer >= c.Depth) throw new ArgumentOutOfRangeException(nameof(options), $"layer {layer} is outside the model's {c.Depth} layers (0..{c.Depth - 1})");
        if (options.KeepMass is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), $"kept attention mass must be in (0, 1], got {options.KeepMass}");
        if (options.VoteFraction is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), $"vote fraction must be in (0, 1], got {options.VoteFraction}");
        using var _ = torch.no_grad();
        var trace = model.Trace(images, keepAttention: true);
        var toPatches = trace.Layers[layer].Attention!.select(2, 0).narrow(-1, c.FirstPatchToken, c.NumPatches);    // [B, heads, N]: class token -> patches
        var attention = toPatches.div(toPatches.sum(-1, keepdim: true));                              // the class token's own share removed
        var keep = KeepTopMass(attention, options.KeepMass);
        long b = images.shape[0];
        var grid = new long[] { b, c.Heads, c.GridHeight, c.GridWidth };
        var headMasks = Upsample(keep.view(grid), c.PatchSize);
        var votes = headMasks.to(ScalarType.Float32).mean([1]);
        var foreground = votes.ge(options.VoteFraction - 1e-6);
        return new EmergentMaps(attention.view(grid), headMasks, foreground, trace.Logits);
    }

    /// <summary>
    /// For each row of <paramref name="attention"/> <c>[..., N]</c> (non-negative, summing to 1), marks the entries that
    /// hold the top <paramref name="mass"/> of it: sorted ascending, an entry is kept when the cumulative mass up to and
    /// including it exceeds <c>1 - mass</c> (DINO's rule), so the kept entries are the largest ones and sum to at least
    /// <paramref name="mass"/>.
    /// </summary>
    public static Tensor KeepTopMass(Tensor attention, double mass)
    {
        var (sorted, order) = attention.sort(-1, descending: false);
        var cumulative = sorted.cumsum(-1);
        var keepSorted = cumulative.gt(1 - mass);
        return torch.zeros_like(keepSorted).scatter(-1, order, keepSorted);
    }

    private static Tensor Upsample(Tensor grid, int patch) =>
        grid.repeat_interleave(patch, dim: 2).repeat_interleave(patch, dim: 3);
}
