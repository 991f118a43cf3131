using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Training.Analysis;
using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Tests.Analysis;

public class WhiteBoxReportTests
{
    private static readonly CrateConfig Tiny = new()
    {
        Dim = 16, Depth = 2, Heads = 2, DimHead = 8, ImageHeight = 8, ImageWidth = 8, PatchSize = 2, Channels = 1, NumClasses = 3,
        Mean = [0.3f], Std = [0.4f],
    };

    private string _dir = "";

    [SetUp]
    public void CreateFolder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "crate-report-" + Guid.NewGuid().ToString("N"));
        torch.manual_seed(3);
    }

    [TearDown]
    public void DeleteFolder()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    /// <summary>Random 8x8 grey images, labels cycling over 3 classes.</summary>
    internal static ImageDataset RandomImages(int count, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[count * 64];
        random.NextBytes(pixels);
        return new ImageDataset("random", 1, 8, 8, pixels, Enumerable.Range(0, count).Select(i => i % 3).ToArray(), ["a", "b", "c"]);
    }

    private static CrateModel FromWeights(CrateWeights weights)
    {
        var model = new CrateModel(weights.Config);
        model.LoadWeights(weights);
        return model;
    }

    [Test]
    public void ReportWritesPngsHtmlAndJsonWhoseNumbersEqualTheApi()
    {
        var data = RandomImages(23, 1);
        CrateWeights first, second;
        using (var a = new CrateModel(Tiny)) first = a.ToWeights();
        using (var b = new CrateModel(Tiny)) second = b.ToWeights();
        var checkpoints = new[]
        {
            new ReportCheckpoint("epoch 1", "a.safetensors", () => FromWeights(first)),
            new ReportCheckpoint("epoch 2", "b.safetensors", () => FromWeights(second)),
        };
        var options = new WhiteBoxReportOptions { BatchSize = 10, AttentionImages = 4, AtomsShown = 5, Command = "crate analyze --test" };
        var stages = new List<ReportProgress>();
        var written = WhiteBoxReport.Write(_dir, checkpoints, data, options, new SyncProgress(stages.Add));

        var pngs = Directory.GetFiles(_dir, "*.png").Select(f => Path.GetFileName(f)).ToArray();
        Assert.That(pngs, Is.SupersetOf(new[]
        {
            "coding-rate.png", "sparsity.png", "dictionary-coherence.png", "subspace-coherence.png",
            "epoch-1-attention-0.png", "epoch-1-attention-3.png", "epoch-1-atoms.png", "epoch-1-subspaces.png", "epoch-2-attention-0.png",
        }));
        foreach (var png in pngs) Assert.That(File.ReadAllBytes(Path.Combine(_dir, png))[..4], Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47 }), png);

        var html = File.ReadAllText(Path.Combine(_dir, WhiteBoxReport.HtmlFile));
        Assert.That(html.Contains("crate analyze --test", StringComparison.Ordinal), Is.True, "the command is recorded");
        Assert.That(CountOf(html, "src=\"data:image/png;base64,"), Is.EqualTo(pngs.Length), "every PNG is embedded");
        Assert.That(CountOf(html, "src=\""), Is.EqualTo(pngs.Length), "the HTML refers to no other file");

        Assert.That(written.AttentionImages, Is.EqualTo(new[] { 0, 1, 2, 3 }), "one image per class first, then the next ones");
        Assert.That(stages[^1].Fraction, Is.EqualTo(1));
        Assert.That(stages.Select(s => s.Fraction), Is.Ordered);

        var json = WhiteBoxReport.Read(Path.Combine(_dir, WhiteBoxReport.JsonFile));
        Assert.That(json.Command, Is.EqualTo("crate analyze --test"));
        Assert.That(json.Checkpoints.Select(c => c.Label), Is.EqualTo(new[] { "epoch 1", "epoch 2" }));
        var weights = new[] { first, second };
        for (int c = 0; c < 2; c++)
        {
            using var model = FromWeights(weights[c]);
            var expected = WhiteBox.Measure(model, data, options.BatchSize);
            var actual = json.Checkpoints[c].Measurements;
            Assert.That(actual.Images, Is.EqualTo(23));
            Assert.That(actual.Accuracy, Is.EqualTo(expected.Accuracy));
            for (int l = 0; l < Tiny.Depth; l++)
            {
                var (e, a) = (expected.Layers[l], actual.Layers[l]);
                // JSON round-trips doubles exactly, so the numbers are equal, not close.
                Assert.That(a.CodingRate, Is.EqualTo(e.CodingRate), $"checkpoint {c}, layer {l}");
                Assert.That(a.CodingRateAfterMssa, Is.EqualTo(e.CodingRateAfterMssa));
                Assert.That(a.CodingRatePerHead, Is.EqualTo(e.CodingRatePerHead));
                Assert.That(a.CodingRatePerHead.Sum(), Is.EqualTo(a.CodingRate.Mean).Within(1e-9));
                Assert.That(a.Sparsity, Is.EqualTo(e.Sparsity));
                Assert.That(a.NearZero, Is.EqualTo(e.NearZero));
                Assert.That(a.NearZero.Mean, Is.GreaterThanOrEqualTo(a.Sparsity.Mean), "exact zeros are near zero too");
                Assert.That(a.Dictionary, Is.EqualTo(e.Dictionary));
                Assert.That(a.Subspaces.Matrix, Is.EqualTo(e.Subspaces.Matrix));
            }
        }
    }

    [Test]
    public void VitBesideCrateInOneReportWithTheVitNumbersOfPlainLoops()
    {
        var data = RandomImages(7, 6);
        var crate = new CrateModel(Tiny).ToWeights();
        List<Core.Weights.NamedTensor> vitTensors;
        using (var trained = new VitModel(Tiny)) vitTensors = TrunkWeights.Snapshot(trained);
        VitModel Vit()
        {
            var model = new VitModel(Tiny);
            TrunkWeights.Load(model, vitTensors, "test");
            return model;
        }
        var report = WhiteBoxReport.Write(_dir, [new ReportCheckpoint("crate", "c", () => FromWeights(crate)), new ReportCheckpoint("vit", "v", Vit)], data,
            new WhiteBoxReportOptions { BatchSize = 7, AttentionImages = 2, AtomsShown = 4 });   // one batch, as below: the same float32 bits

        var json = WhiteBoxReport.Read(Path.Combine(_dir, WhiteBoxReport.JsonFile));
        Assert.That(json.Checkpoints.Select(c => c.Architecture), Is.EqualTo(new[] { "crate", "vit" }));
        Assert.That(json.Checkpoints[1].Files.Attention, Is.EqualTo(new[] { "vit-attention-0.png", "vit-attention-1.png" }));
        foreach (var file in report.Plots.Concat(report.Checkpoints.SelectMany(c => c.Files.Attention.Append(c.Files.Atoms).Append(c.Files.Subspaces))))
            Assert.That(File.Exists(Path.Combine(_dir, file)), Is.True, file);
        var html = File.ReadAllText(Path.Combine(_dir, WhiteBoxReport.HtmlFile));
        Assert.That(html, Does.Contain("<td class=l>vit</td>").And.Contain("MLP output atoms"));

        // Layer 0 of the ViT, recomputed here: LN1 and the value rows of to_qkv in plain loops, then the rate, the
        // near-zero fraction of the layer's output and the coherence of W_2's columns.
        using var vit = Vit();
        vit.eval();
        var parameters = vit.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().data<float>().ToArray());
        var gamma = parameters["transformer.layers.0.0.norm.weight"];
        var beta = parameters["transformer.layers.0.0.norm.bias"];
        var qkv = parameters["transformer.layers.0.0.fn.to_qkv.weight"];              // [3 * heads * dim_head, dim]: q, k, then v rows
        var w2 = parameters["transformer.layers.0.1.fn.net.3.weight"];                 // [dim, 4 dim]
        int dim = Tiny.Dim, inner = Tiny.Heads * Tiny.DimHead, tokens = Tiny.NumPatches + 1, hidden = 4 * dim;
        float[] input, after, output;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var z = vit.Embed(ImageTensors.Normalised(data, Enumerable.Range(0, data.Count).ToArray(), Tiny));
            var next = vit.Layers[0].Forward(z, false, out var h, out _);
            (input, after, output) = (z.data<float>().ToArray(), h.data<float>().ToArray(), next.data<float>().ToArray());
        }
        double Rate(float[] x, int image) => Enumerable.Range(0, Tiny.Heads).Sum(k =>
        {
            var normed = Enumerable.Range(0, tokens).Select(t => CodingRateTests.LayerNorm(x.AsSpan((image * tokens + t) * dim, dim).ToArray(), gamma, beta)).ToArray();
            var head = normed.Select(v => Enumerable.Range(0, Tiny.DimHead)
                .Select(d => Enumerable.Range(0, dim).Sum(i => qkv[(2 * inner + k * Tiny.DimHead + d) * dim + i] * v[i])).ToArray()).ToArray();
            return CodingRateTests.ReferenceRate(head, CodingRate.DefaultEpsSquared);
        });
        double NearZero(int image)
        {
            var x = output.AsSpan(image * tokens * dim, tokens * dim).ToArray();
            double rms = Math.Sqrt(x.Average(v => (double)v * v));
            return x.Count(v => Math.Abs(v) <= Sparsity.DefaultNearZeroTolerance * rms) / (double)x.Length;
        }
        var measured = json.Checkpoints[1].Measurements.Layers[0];
        var images = Enumerable.Range(0, data.Count).ToArray();
        Assert.That(measured.CodingRate.Mean, Is.EqualTo(images.Average(i => Rate(input, i))).Within(1e-4));
        Assert.That(measured.CodingRateAfterMssa.Mean, Is.EqualTo(images.Average(i => Rate(after, i))).Within(1e-4));
        Assert.That(measured.NearZero.Mean, Is.EqualTo(images.Average(NearZero)).Within(1e-9));
        Assert.That(measured.Sparsity.Mean, Is.EqualTo(images.Average(i => output.AsSpan(i * tokens * dim, tokens * dim).ToArray().Count(v => v == 0) / (double)(tokens * dim))));
        var cosines = new List<double>();
        for (int a = 0; a < hidden; a++)
            for (int b = a + 1; b < hidden; b++)
            {
                double dot = 0, na = 0, nb = 0;
                for (int d = 0; d < dim; d++) { double x = w2[d * hidden + a], y = w2[d * hidden + b]; dot += x * y; na += x * x; nb += y * y; }
                cosines.Add(Math.Abs(dot) / Math.Sqrt(na * nb));
            }
        Assert.That(measured.Dictionary.MaxAbsCosine, Is.EqualTo(cosines.Max()).Within(1e-9));
        Assert.That(measured.Dictionary.MeanAbsCosine, Is.EqualTo(cosines.Average()).Within(1e-9));
    }

    [Test]
    public void MeasuredMeansAreTheMeansOfPerImageValuesWhateverTheBatching()
    {
        var data = RandomImages(6, 2);
        using var model = new CrateModel(Tiny);
        var measured = WhiteBox.Measure(model, data, batchSize: 4);   // batches of 4 and 2, against one batch of 6 below
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        model.eval();
        var trace = model.Trace(ImageTensors.Normalised(data, Enumerable.Range(0, 6).ToArray(), Tiny), keepAttention: false);
        for (int l = 0; l < Tiny.Depth; l++)
        {
            var perImage = CodingRate.OfLayer(model.Layers[l], trace.Layers[l].Input, 2, 8).sum([1]).data<double>().ToArray();
            var zeros = Sparsity.ZeroFraction(trace.Layers[l].Codes).data<double>().ToArray();
            // float32 products of other batch shapes differ in the last bits: agreement to 1e-6, not exactly.
            Assert.That(measured.Layers[l].CodingRate.Mean, Is.EqualTo(perImage.Average()).Within(1e-6));
            Assert.That(measured.Layers[l].CodingRate.Max, Is.EqualTo(perImage.Max()).Within(1e-6));
            Assert.That(measured.Layers[l].Sparsity.Mean, Is.EqualTo(zeros.Average()).Within(1e-12));
        }
    }

    [Test]
    public void AttentionMapsAreTheClassTokenRowOverPatches()
    {
        var data = RandomImages(5, 4);
        using var model = new CrateModel(Tiny);
        var maps = WhiteBox.ClassTokenAttention(model, data, [4, 1]);
        Assert.That((maps.GridHeight, maps.GridWidth), Is.EqualTo((4, 4)));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var trace = model.Trace(ImageTensors.Normalised(data, [4, 1], Tiny), keepAttention: true);
        for (int l = 0; l < 2; l++)
        {
            var attention = trace.Layers[l].Attention!;                           // [B, heads, T, T]
            for (int i = 0; i < 2; i++)
                for (int h = 0; h < 2; h++)
                {
                    var row = attention[i, h, 0].data<float>().ToArray();
                    Assert.That(maps.Maps[i][l][h], Is.EqualTo(row[1..]).Within(1e-7), $"image {i}, layer {l}, head {h}");
                    Assert.That(maps.Maps[i][l][h].Sum() + row[0], Is.EqualTo(1).Within(1e-5), "softmax row sums to one");
                }
        }
    }

    [Test]
    public void NoAttentionImagesWritesNoAttentionGrids()
    {
        var report = WhiteBoxReport.Write(_dir, [new ReportCheckpoint("m", "m", () => new CrateModel(Tiny))], RandomImages(3, 5),
            new WhiteBoxReportOptions { AttentionImages = 0 });
        Assert.That(report.Checkpoints[0].Files.Attention, Is.Empty);
        Assert.That(Directory.GetFiles(_dir, "*attention*"), Is.Empty);
        Assert.That(File.Exists(Path.Combine(_dir, WhiteBoxReport.HtmlFile)), Is.True);
    }

    [Test]
    public void DataOfTheWrongShapeIsOneClearError()
    {
        var data = new ImageDataset("big", 1, 10, 10, new byte[200], [0, 1], ["a", "b"]);
        var error = Assert.Throws<DataException>(() => WhiteBoxReport.Write(_dir, [new ReportCheckpoint("m", "m", () => new CrateModel(Tiny))], data));
        Assert.That(error!.Message, Does.Contain("10x10x1").And.Contain("8x8x1"));
    }

    private static int CountOf(string text, string part)
    {
        int count = 0;
        for (int i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + 1, StringComparison.Ordinal)) count++;
        return count;
    }

    private sealed class SyncProgress(Action<ReportProgress> report) : IProgress<ReportProgress>
    {
        public void Report(ReportProgress value) => report(value);
    }
}
