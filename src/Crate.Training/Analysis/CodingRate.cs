using Crate.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Analysis;

/// <summary>
/// The coding rate of tokens against a layer's subspaces, CRATE's compression measure (lower = more compressed).
/// For layer l with projection <c>U = [U_1; ...; U_K]</c> (K heads of width p) and tokens <c>z</c> (N of them,
/// class token included): <c>Z = LN1(z)</c>, <c>Z_k = U_k Z</c> with every token normalised to unit length,
/// <c>R_k = 1/2 logdet(I + p/(N eps^2) Z_k^T Z_k)</c>, <c>R^c = sum_k R_k</c>.
/// </summary>
public static class CodingRate
{
    /// <summary>The quantisation precision eps^2 used by the CRATE papers' measurements.</summary>
    public const double DefaultEpsSquared = 0.01;

    /// <summary>
    /// Per image and head, <c>R_k</c> of head tokens <paramref name="headTokens"/> <c>[B, K, N, p]</c>, each token
    /// first normalised to unit length. Returns float64 <c>[B, K]</c>; sum over the last axis for <c>R^c</c>.
    /// </summary>
    /// <remarks>
    /// Computed in float64 from whichever Gram matrix is smaller: <c>logdet(I_p + c Z^T Z) = logdet(I_N + c Z Z^T)</c>
    /// (Sylvester's identity), and the matrix is symmetric positive definite, so its log-determinant is
    /// <c>2 sum log diag(L)</c> of its Cholesky factor L.
    /// </remarks>
    public static Tensor PerHead(Tensor headTokens, double epsSquared = DefaultEpsSquared)
    {
        if (headTokens.dim() != 4) throw new ArgumentException($"Head tokens must be [batch, heads, tokens, dim_head], got [{string.Join(", ", headTokens.shape)}].");
        if (epsSquared <= 0) throw new ArgumentOutOfRangeException(nameof(epsSquared), $"eps^2 must be positive, got {epsSquared}.");
        using var scope = NewDisposeScope();
        long n = headTokens.shape[2], p = headTokens.shape[3];
        var z = nn.functional.normalize(headTokens.to_type(ScalarType.Float64), p: 2, dim: -1);
        var gram = p <= n ? matmul(z.transpose(-1, -2), z) : matmul(z, z.transpose(-1, -2));   // Z^T Z [p, p] or Z Z^T [N, N]
        var size = Math.Min(p, n);
        var m = eye(size, dtype: ScalarType.Float64, device: z.device).add(gram.mul(p / (n * epsSquared)));
        var logdet = linalg.cholesky(m).diagonal(0, -2, -1).log().sum([-1]).mul(2.0);
        return logdet.mul(0.5).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The tokens <paramref name="tokens"/> <c>[B, N, dim]</c> as a layer's attention sees them, split by subspace:
    /// <c>U_k LN1(z)</c> for the layer's <paramref name="norm"/> (LN1) and projection <paramref name="u"/> (<c>[K p, dim]</c>),
    /// <c>[B, K, N, p]</c> (not yet normalised).
    /// </summary>
    public static Tensor HeadTokens(LayerNorm norm, Tensor u, Tensor tokens, int heads, int dimHead)
    {
        var (b, n) = (tokens.shape[0], tokens.shape[1]);
        var projected = nn.functional.linear(norm.forward(tokens), u);   // U LN1(z)
        return projected.view(b, n, heads, dimHead).transpose(1, 2);
    }

    /// <summary><c>R_k</c> per image and head of <paramref name="tokens"/> against a layer's subspaces (<see cref="LayerOperators"/>), <c>[B, K]</c> float64.</summary>
    public static Tensor OfLayer(LayerOperators layer, Tensor tokens, int heads, int dimHead, double epsSquared = DefaultEpsSquared)
    {
        using var scope = NewDisposeScope();
        return PerHead(HeadTokens(layer.Norm, layer.Subspaces, tokens, heads, dimHead), epsSquared).MoveToOuterDisposeScope();
    }

    /// <summary><c>R_k</c> per image and head of <paramref name="tokens"/> against CRATE layer <paramref name="layer"/>'s subspaces, <c>[B, K]</c> float64.</summary>
    public static Tensor OfLayer(CrateLayer layer, Tensor tokens, int heads, int dimHead, double epsSquared = DefaultEpsSquared) =>
        OfLayer(new LayerOperators(layer.Attention.Norm, layer.Attention.Block.U, layer.Sparsify.Block.D), tokens, heads, dimHead, epsSquared);
}
