using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Pretext;

/// <summary>Which patches an image keeps for masked modelling, drawn per image from a seeded generator.</summary>
/// <param name="Keep">Indices of the visible patches, <c>[B, K]</c>, in shuffled order.</param>
/// <param name="Restore">Inverse permutation: position of each original patch in the shuffled order, <c>[B, N]</c>.</param>
/// <param name="Masked">1 for a hidden patch, 0 for a visible one, in original order, <c>[B, N]</c>.</param>
public sealed record PatchMask(Tensor Keep, Tensor Restore, Tensor Masked)
{
    /// <summary>
    /// Hides <paramref name="ratio"/> of <paramref name="patches"/> patches per image (at least one stays visible):
    /// a random permutation per image, whose first K entries are kept.
    /// </summary>
    public static PatchMask Random(long batch, int patches, double ratio, Generator generator)
    {
        if (ratio is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(ratio), $"mask ratio must be in [0, 1), got {ratio}");
        int keep = Math.Max(1, (int)Math.Round(patches * (1 - ratio)));
        var shuffle = torch.rand(batch, patches, generator: generator).argsort(1);
        var restore = shuffle.argsort(1);
        var masked = torch.ones(batch, patches);
        masked.narrow(1, 0, keep).zero_();
        return new PatchMask(shuffle.narrow(1, 0, keep), restore, masked.gather(1, restore));
    }

    /// <summary>The visible rows of <paramref name="tokens"/> <c>[B, N, D]</c>, <c>[B, K, D]</c>.</summary>
    public Tensor Select(Tensor tokens) => tokens.gather(1, Keep.unsqueeze(-1).expand(-1, -1, tokens.shape[2]));

    /// <summary>
    /// Puts <paramref name="visible"/> <c>[B, K, D]</c> back in original patch order, filling hidden places with
    /// <paramref name="fill"/> <c>[1, 1, D]</c>: <c>[B, N, D]</c>.
    /// </summary>
    public Tensor Unshuffle(Tensor visible, Tensor fill)
    {
        var (b, n, d) = (visible.shape[0], Restore.shape[1], visible.shape[2]);
        var full = torch.cat([visible, fill.expand(b, n - visible.shape[1], d)], 1);
        return full.gather(1, Restore.unsqueeze(-1).expand(-1, -1, d));
    }
}
