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
                Assert.That(a.Dictionary, Is.EqualTo(e.Dictionary));
                Assert.That(a.Subspaces.Matrix, Is.EqualTo(e.Subspaces.Matrix));
            }
        }
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
