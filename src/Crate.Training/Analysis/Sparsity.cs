using static TorchSharp.torch;

namespace Crate.Training.Analysis;

/// <summary>
/// Sparsity of ISTA codes as Crate reports it: the fraction of entries that are exactly zero (ReLU's output
/// is exactly 0 below the threshold). The CRATE papers plot the complementary fraction of non-zeros.
/// </summary>
public static class Sparsity
{
    /// <summary>Per image, the fraction of exactly-zero entries of <paramref name="codes"/> <c>[B, ...]</c>; float64 <c>[B]</c>.</summary>
    public static Tensor ZeroFraction(Tensor codes)
    {
        if (codes.dim() < 2) throw new ArgumentException($"Codes need a batch axis and at least one more, got [{string.Join(", ", codes.shape)}].");
        using var scope = NewDisposeScope();
        return codes.flatten(1).eq(0).to_type(ScalarType.Float64).mean([1]).MoveToOuterDisposeScope();
    }
}
