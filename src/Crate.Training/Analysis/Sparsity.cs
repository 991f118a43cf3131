using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Analysis;

/// <summary>
/// Sparsity of ISTA codes as Crate reports it: the fraction of entries that are exactly zero (ReLU's output
/// is exactly 0 below the threshold). The CRATE papers plot the complementary fraction of non-zeros.
/// <see cref="NearZeroFraction"/> compares networks whose outputs are never exactly zero (the ViT baseline) on one threshold.
/// </summary>
public static class Sparsity
{
    /// <summary>The default relative threshold of <see cref="NearZeroFraction"/>: 5% of the root-mean-square entry.</summary>
    public const double DefaultNearZeroTolerance = 0.05;

    /// <summary>Per image, the fraction of exactly-zero entries of <paramref name="codes"/> <c>[B, ...]</c>; float64 <c>[B]</c>.</summary>
    public static Tensor ZeroFraction(Tensor codes)
    {
        if (codes.dim() < 2) throw new ArgumentException($"Codes need a batch axis and at least one more, got [{string.Join(", ", codes.shape)}].");
        using var scope = NewDisposeScope();
        return codes.flatten(1).eq(0).to_type(ScalarType.Float64).mean([1]).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Per image, the fraction of entries of <paramref name="values"/> <c>[B, ...]</c> with <c>|x| &lt;= tolerance * rms</c>, where rms is the
    /// root mean square of that image's entries (a scale-free threshold, so layers and networks of any scale compare); float64 <c>[B]</c>.
    /// Exact zeros always count.
    /// </summary>
    public static Tensor NearZeroFraction(Tensor values, double tolerance = DefaultNearZeroTolerance)
    {
        if (values.dim() < 2) throw new ArgumentException($"Values need a batch axis and at least one more, got [{string.Join(", ", values.shape)}].");
        ArgumentOutOfRangeException.ThrowIfNegative(tolerance);
        using var scope = NewDisposeScope();
        using var relative = tolerance.ToScalar();   // scoped: an implicit Scalar can be freed mid-call
        var x = values.flatten(1).to_type(ScalarType.Float64);
        var threshold = x.square().mean([1], keepdim: true).sqrt().mul(relative);
        return x.abs().le(threshold).to_type(ScalarType.Float64).mean([1]).MoveToOuterDisposeScope();
    }
}
