using Crate.Core.Model;
using Crate.Training.Analysis;
using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Tests.Analysis;

public class SparsityAndDictionaryTests
{
    [OneTimeSetUp]
    public void Seed() => torch.manual_seed(5);

    [Test]
    public void ZeroFractionCountsExactZerosPerImage()
    {
        using var scope = NewDisposeScope();
        var codes = tensor(new float[]
        {
            0, 1, 0, 2,   -0f, 3, 1e-30f, 0,   4, 0, 5, 6,     // image 0: 5 exact zeros of 12 (-0 is zero, 1e-30 is not)
            1, 2, 3, 4,   5, 6, 7, 8,          9, 1, 2, 3,     // image 1: none
        }, [2, 3, 4]);
        var fraction = Sparsity.ZeroFraction(codes).data<double>().ToArray();
        Assert.That(fraction, Is.EqualTo(new[] { 5 / 12.0, 0.0 }).Within(1e-12));
    }

    [Test]
    public void ZeroFractionOfIstaCodesMatchesACount()
    {
        var config = new CrateConfig { Dim = 16, Depth = 1, Heads = 2, DimHead = 8, ImageHeight = 8, ImageWidth = 8, PatchSize = 4, Channels = 1, NumClasses = 3 };
        using var model = new CrateModel(config);
        using var scope = NewDisposeScope();
        var codes = model.Trace(randn(4, 1, 8, 8), keepAttention: false).Layers[0].Codes;
        var values = codes.data<float>().ToArray();
        int perImage = values.Length / 4;
        var expected = Enumerable.Range(0, 4).Select(b => values.Skip(b * perImage).Take(perImage).Count(v => v == 0) / (double)perImage).ToArray();
        Assert.That(expected.Max(), Is.GreaterThan(0), "a random ISTA step zeroes some entries");
        Assert.That(Sparsity.ZeroFraction(codes).data<double>().ToArray(), Is.EqualTo(expected).Within(1e-12));
    }

    [Test]
    public void StatisticIsMeanAndSampleStd()
    {
        var s = Statistic.Of([1, 2, 3, 4]);
        Assert.That(s.Mean, Is.EqualTo(2.5));
        Assert.That(s.Std, Is.EqualTo(Math.Sqrt(5.0 / 3)).Within(1e-12));
        Assert.That((s.Min, s.Max, s.Count), Is.EqualTo((1.0, 4.0, 4)));
        Assert.That(Statistic.Of([7]).Std, Is.Zero);
    }

    [Test]
    public void DictionaryCoherenceMatchesPairwiseCosinesOfColumns()
    {
        var ista = new Ista(3, 0.1, 0.1);
        // Columns (atoms): a = (1,0,0), b = (1,1,0), c = (0,0,2). |cos|: ab = 1/sqrt2, ac = 0, bc = 0.
        using (no_grad()) ista.D.copy_(tensor(new float[] { 1, 1, 0, 0, 1, 0, 0, 0, 2 }, [3, 3]));
        var coherence = DictionaryAnalysis.Coherence(ista);
        Assert.That(coherence.MaxAbsCosine, Is.EqualTo(Math.Sqrt(0.5)).Within(1e-12));
        Assert.That(coherence.MeanAbsCosine, Is.EqualTo(Math.Sqrt(0.5) / 3).Within(1e-12));
        var atoms = DictionaryAnalysis.Atoms(ista);
        Assert.That(new[] { atoms[1, 0], atoms[1, 1], atoms[1, 2] }, Is.EqualTo(new[] { 1f, 1f, 0f }), "atom b is column 1");
    }

    [Test]
    public void SubspaceCoherenceIsTheRmsCosineOfPrincipalAngles()
    {
        // dim 4, three heads of width 2: head 0 spans (e1, e2); head 1 spans (e3, e4), orthogonal to it;
        // head 2 spans (e1, cos t e2 + sin t e3): principal cosines with head 0 are 1 and cos t.
        double t = 0.7;
        var u = new float[6 * 4];
        void Row(int r, params double[] v) { for (int i = 0; i < 4; i++) u[r * 4 + i] = (float)v[i]; }
        Row(0, 2, 0, 0, 0); Row(1, 1, 3, 0, 0);                                   // not orthonormal: spans (e1, e2)
        Row(2, 0, 0, 1, 0); Row(3, 0, 0, 0, 1);
        Row(4, 1, 0, 0, 0); Row(5, 0, Math.Cos(t), Math.Sin(t), 0);             // float32 weights: compare to 1e-6
        var mssa = new Mssa(4, 3, 2, 0);
        using (no_grad()) mssa.U.copy_(tensor(u, [6, 4]));
        var s = DictionaryAnalysis.Subspaces(mssa, 3, 2);
        double c02 = Math.Sqrt((1 + Math.Cos(t) * Math.Cos(t)) / 2);
        double c12 = Math.Sqrt(Math.Sin(t) * Math.Sin(t) / 2);                    // head 1 meets head 2 only in the e3 direction
        Assert.That(s.Matrix[0][0], Is.EqualTo(1).Within(1e-6));
        Assert.That(s.Matrix[0][1], Is.EqualTo(0).Within(1e-6));
        Assert.That(s.Matrix[0][2], Is.EqualTo(c02).Within(1e-6));
        Assert.That(s.Matrix[2][1], Is.EqualTo(c12).Within(1e-6));
        Assert.That(s.MeanOffDiagonal, Is.EqualTo((c02 + c12) / 3).Within(1e-6));
        Assert.That(s.MaxOffDiagonal, Is.EqualTo(c02).Within(1e-6));
        Assert.That(s.MaxPrincipalCosine, Is.EqualTo(1).Within(1e-6));
    }
}
