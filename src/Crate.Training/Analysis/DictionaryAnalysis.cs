using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Analysis;

/// <summary>How alike the atoms of one ISTA dictionary are.</summary>
/// <param name="MaxAbsCosine">Largest <c>|cos|</c> between two different atoms (the dictionary's mutual coherence).</param>
/// <param name="MeanAbsCosine">Mean <c>|cos|</c> over all pairs of different atoms.</param>
public sealed record DictionaryCoherence(double MaxAbsCosine, double MeanAbsCosine);

/// <summary>How much the heads' subspaces of one MSSA block overlap.</summary>
/// <param name="Matrix">
/// <c>[K][K]</c>: <c>||Q_i^T Q_j||_F / sqrt(p)</c>, where <c>Q_k</c> is an orthonormal basis of head k's subspace
/// (the span of <c>U_k</c>'s rows). It is the root-mean-square cosine of the p principal angles: 0 for
/// orthogonal subspaces, 1 for identical ones (the diagonal).
/// </param>
/// <param name="MeanOffDiagonal">Mean of <see cref="Matrix"/> over pairs of different heads.</param>
/// <param name="MaxOffDiagonal">Largest entry of <see cref="Matrix"/> over pairs of different heads.</param>
/// <param name="MaxPrincipalCosine">Largest cosine of a principal angle between two different heads' subspaces (their closest directions).</param>
public sealed record SubspaceCoherence(double[][] Matrix, double MeanOffDiagonal, double MaxOffDiagonal, double MaxPrincipalCosine);

/// <summary>
/// Views of a layer's learned operators that need no data: the ISTA dictionary's atoms and coherence, and the
/// MSSA heads' subspace overlap.
/// </summary>
/// <remarks>
/// With tokens as rows the ISTA block is a gradient step on <c>||x - z D^T||^2</c> for the weight D
/// (<c>x + eta (x D - x D^T D)</c>), so a token is a combination of D's <b>columns</b>: those are the atoms.
/// Random baselines for comparison: independent random directions in d dimensions have
/// <c>E|cos| ~ sqrt(2/(pi d))</c>; independent random p-dimensional subspaces of R^d have subspace coherence
/// about <c>sqrt(p/d)</c>.
/// </remarks>
public static class DictionaryAnalysis
{
    /// <summary>The atoms of <paramref name="ista"/>'s dictionary, one per row: <c>D^T</c>, <c>[atoms, dim]</c>, float32 on the CPU.</summary>
    public static float[,] Atoms(Ista ista) => Atoms(ista.D);

    /// <summary>The columns of <paramref name="dictionary"/> (<c>[dim, atoms]</c>, see <see cref="LayerOperators.Dictionary"/>), one per row: <c>[atoms, dim]</c>, float32 on the CPU.</summary>
    public static float[,] Atoms(Tensor dictionary)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var atoms = dictionary.detach().t().contiguous().to(ScalarType.Float32, CPU);
        var (rows, cols) = ((int)atoms.shape[0], (int)atoms.shape[1]);
        var flat = atoms.data<float>().ToArray();
        var result = new float[rows, cols];
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length * sizeof(float));
        return result;
    }

    /// <summary>Max and mean <c>|cos|</c> between different atoms (columns) of <paramref name="ista"/>'s dictionary.</summary>
    public static DictionaryCoherence Coherence(Ista ista) => Coherence(ista.D);

    /// <summary>Max and mean <c>|cos|</c> between different columns of <paramref name="dictionary"/> (<c>[dim, atoms]</c>).</summary>
    public static DictionaryCoherence Coherence(Tensor dictionary)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var atoms = nn.functional.normalize(dictionary.detach().to_type(ScalarType.Float64), p: 2, dim: 0);   // unit columns
        var cos = matmul(atoms.t(), atoms).abs();
        var n = cos.shape[0];
        var offDiagonal = cos.masked_select(eye(n, dtype: ScalarType.Bool, device: cos.device).logical_not());
        return new DictionaryCoherence(offDiagonal.max().item<double>(), offDiagonal.mean().item<double>());
    }

    /// <summary>Pairwise overlap of the <paramref name="heads"/> subspaces of <paramref name="mssa"/>'s projection U.</summary>
    public static SubspaceCoherence Subspaces(Mssa mssa, int heads, int dimHead) => Subspaces(mssa.U, heads, dimHead);

    /// <summary>Pairwise overlap of the <paramref name="heads"/> subspaces spanned by row blocks of <paramref name="projection"/> (<c>[K p, dim]</c>).</summary>
    public static SubspaceCoherence Subspaces(Tensor projection, int heads, int dimHead)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var u = projection.detach().to_type(ScalarType.Float64);                    // [K p, dim]
        var bases = Enumerable.Range(0, heads)
            .Select(k => linalg.qr(u.narrow(0, k * dimHead, dimHead).t(), linalg.QRMode.Reduced).Item1)   // Q_k [dim, p]
            .ToArray();
        var matrix = new double[heads][];
        double sum = 0, max = 0, maxCos = 0;
        for (int i = 0; i < heads; i++)
        {
            matrix[i] = new double[heads];
            for (int j = 0; j < heads; j++)
            {
                var cross = matmul(bases[i].t(), bases[j]);                         // cosines of principal angles = its singular values
                matrix[i][j] = cross.square().sum().sqrt().item<double>() / Math.Sqrt(dimHead);
                if (i == j) continue;
                sum += matrix[i][j];
                max = Math.Max(max, matrix[i][j]);
                maxCos = Math.Max(maxCos, linalg.svdvals(cross).max().item<double>());
            }
        }
        int pairs = heads * (heads - 1);
        return new SubspaceCoherence(matrix, pairs > 0 ? sum / pairs : 0, max, maxCos);
    }
}
