using Crate.Core.Model;
using Crate.Training.Analysis;
using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Tests.Analysis;

public class CodingRateTests
{
    private const double Eps2 = 0.01;

    [OneTimeSetUp]
    public void Seed() => torch.manual_seed(11);

    [TestCase(3, 8)]   // N < p: orthonormal tokens fill N directions
    [TestCase(8, 8)]   // N = p: a full orthonormal basis
    public void OrthonormalTokensHaveTheClosedFormRate(int n, int p)
    {
        // Z^T Z is a rank-N projection: N eigenvalues 1, so R = N/2 ln(1 + p/(N eps^2)).
        using var scope = NewDisposeScope();
        var q = linalg.qr(randn(p, p, dtype: ScalarType.Float64), linalg.QRMode.Reduced).Item1;   // orthonormal columns
        var tokens = q.t().narrow(0, 0, n).mul(3.5).view(1, 1, n, p).to_type(ScalarType.Float32);  // scale is normalised away
        double expected = n / 2.0 * Math.Log(1 + p / (n * Eps2));
        Assert.That(CodingRate.PerHead(tokens, Eps2).item<double>(), Is.EqualTo(expected).Within(1e-4));
    }

    [Test]
    public void IdenticalTokensHaveTheClosedFormRate()
    {
        // All N tokens equal u: Z^T Z = N u u^T, one eigenvalue N, so R = 1/2 ln(1 + p/eps^2) whatever N.
        using var scope = NewDisposeScope();
        var tokens = randn(1, 1, 1, 6).expand(1, 1, 20, 6).contiguous();
        Assert.That(CodingRate.PerHead(tokens, Eps2).item<double>(), Is.EqualTo(0.5 * Math.Log(1 + 6 / Eps2)).Within(1e-4));
    }

    [TestCase(12, 5)]   // more tokens than head width: the implementation uses the p x p Gram matrix
    [TestCase(4, 9)]    // fewer tokens: the N x N one
    public void RandomHeadTokensMatchPlainLoops(int n, int p)
    {
        using var scope = NewDisposeScope();
        var tokens = randn(2, 3, n, p);
        var actual = CodingRate.PerHead(tokens, Eps2).data<double>().ToArray();
        var values = tokens.data<float>().ToArray();
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < 3; k++)
            {
                var rows = Enumerable.Range(0, n).Select(t => Enumerable.Range(0, p).Select(d => (double)values[((b * 3 + k) * n + t) * p + d]).ToArray()).ToArray();
                Assert.That(actual[b * 3 + k], Is.EqualTo(ReferenceRate(rows, Eps2)).Within(1e-4), $"image {b}, head {k}");
            }
    }

    [TestCase(4)]   // 4 patches + class token = 5 tokens < dim_head 8
    [TestCase(2)]   // 16 patches + class token = 17 tokens > dim_head 8
    public void LayerRateMatchesLayerNormProjectionAndLogdetInPlainLoops(int patch)
    {
        var config = new CrateConfig { Dim = 16, Depth = 1, Heads = 2, DimHead = 8, ImageHeight = 8, ImageWidth = 8, PatchSize = patch, Channels = 1, NumClasses = 3 };
        using var model = new CrateModel(config);
        var layer = model.Layers[0];
        using (no_grad())
        {
            layer.Attention.Norm.weight!.copy_(randn(16).mul(0.5).add(1));      // non-trivial LN1 affine, so it is exercised
            layer.Attention.Norm.bias!.copy_(randn(16).mul(0.3));
        }
        using var scope = NewDisposeScope();
        int tokensPerImage = config.NumPatches + 1;
        var z = randn(3, tokensPerImage, 16).mul(2).add(0.5);
        var actual = CodingRate.OfLayer(layer, z, config.Heads, config.DimHead, Eps2).data<double>().ToArray();

        var x = z.data<float>().ToArray();
        var gamma = layer.Attention.Norm.weight!.data<float>().ToArray();
        var beta = layer.Attention.Norm.bias!.data<float>().ToArray();
        var u = layer.Attention.Block.U.data<float>().ToArray();                  // [heads*dim_head, dim] row-major
        for (int b = 0; b < 3; b++)
        {
            var normed = Enumerable.Range(0, tokensPerImage)
                .Select(t => LayerNorm(x.AsSpan((b * tokensPerImage + t) * 16, 16).ToArray(), gamma, beta)).ToArray();
            for (int k = 0; k < config.Heads; k++)
            {
                var head = normed.Select(v => Enumerable.Range(0, config.DimHead)
                    .Select(d => Enumerable.Range(0, 16).Sum(i => u[(k * config.DimHead + d) * 16 + i] * v[i])).ToArray()).ToArray();
                Assert.That(actual[b * config.Heads + k], Is.EqualTo(ReferenceRate(head, Eps2)).Within(1e-4), $"image {b}, head {k}");
            }
        }
    }

    [Test]
    public void RejectsWrongShapesAndPrecision()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<ArgumentException>(() => CodingRate.PerHead(randn(4, 5, 6)));
        Assert.Throws<ArgumentOutOfRangeException>(() => CodingRate.PerHead(randn(1, 1, 4, 5), 0));
    }

    /// <summary>
    /// 1/2 logdet(I_N + p/(N eps^2) Z Z^T) over unit-normalised token rows: the N x N side of Sylvester's identity,
    /// with the log-determinant from LU decomposition with partial pivoting.
    /// </summary>
    internal static double ReferenceRate(double[][] tokens, double eps2)
    {
        int n = tokens.Length, p = tokens[0].Length;
        var unit = tokens.Select(t => { var norm = Math.Sqrt(t.Sum(v => v * v)); return t.Select(v => v / norm).ToArray(); }).ToArray();
        var m = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                m[i, j] = (i == j ? 1 : 0) + p / (n * eps2) * Enumerable.Range(0, p).Sum(d => unit[i][d] * unit[j][d]);
        return 0.5 * LogDetLu(m);
    }

    private static double LogDetLu(double[,] a)
    {
        int n = a.GetLength(0);
        double logdet = 0;
        for (int c = 0; c < n; c++)
        {
            int pivot = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(a[r, c]) > Math.Abs(a[pivot, c])) pivot = r;
            if (pivot != c) for (int j = 0; j < n; j++) (a[c, j], a[pivot, j]) = (a[pivot, j], a[c, j]);   // a swap flips the sign only
            logdet += Math.Log(Math.Abs(a[c, c]));
            for (int r = c + 1; r < n; r++)
            {
                double f = a[r, c] / a[c, c];
                for (int j = c; j < n; j++) a[r, j] -= f * a[c, j];
            }
        }
        return logdet;
    }

    internal static double[] LayerNorm(float[] x, float[] gamma, float[] beta)
    {
        double mean = x.Average(v => (double)v);
        double variance = x.Average(v => (v - mean) * (v - mean));                    // biased, as LayerNorm
        return x.Select((v, i) => (v - mean) / Math.Sqrt(variance + 1e-5) * gamma[i] + beta[i]).ToArray();
    }
}
