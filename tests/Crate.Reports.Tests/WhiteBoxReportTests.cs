using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Reports;
using Crate.Training.Analysis;
using Crate.Training;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using Crate.Training.Tests.Analysis;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Reports.Tests;

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

    private static CrateModel FromWeights(CrateWeights weights)
    {
        var model = new CrateModel(weights.Config);
        model.LoadWeights(weights);
        return model;
    }

    [Test]
    public void ReportWritesPngsHtmlAndJsonWhoseNumbersEqualTheApi()
    {
        var data = TestImages.Random(23, 1);
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
    public void VitBesideCrateInOneReport()
    {
        var data = TestImages.Random(7, 6);
        var crate = new CrateModel(Tiny).ToWeights();
        // The ViT as 'crate train --arch vit' writes it, loaded back for each use.
        var vitFile = Path.Combine(Path.GetTempPath(), $"crate-report-vit-{Guid.NewGuid():N}.safetensors");
        using (var trained = new VitModel(Tiny)) Checkpoint.SaveWeights(vitFile, trained);
        VitModel Vit() => (VitModel)SegmentationCheckpoint.Load(vitFile).Trunk;
        var options = new WhiteBoxReportOptions { BatchSize = 3, AttentionImages = 2, AtomsShown = 4 };
        var report = WhiteBoxReport.Write(_dir, [new ReportCheckpoint("crate", "c", () => FromWeights(crate)), new ReportCheckpoint("vit", "v", Vit)], data, options);

        var json = WhiteBoxReport.Read(Path.Combine(_dir, WhiteBoxReport.JsonFile));
        Assert.That(json.Checkpoints.Select(c => c.Architecture), Is.EqualTo(new[] { "crate", "vit" }));
        Assert.That(json.Checkpoints[1].Files.Attention, Is.EqualTo(new[] { "vit-attention-0.png", "vit-attention-1.png" }));
        foreach (var file in report.Plots.Concat(report.Checkpoints.SelectMany(c => c.Files.Attention.Append(c.Files.Atoms).Append(c.Files.Subspaces))))
            Assert.That(File.ReadAllBytes(Path.Combine(_dir, file))[..4], Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47 }), file);
        var html = File.ReadAllText(Path.Combine(_dir, WhiteBoxReport.HtmlFile));
        Assert.That(html, Does.Contain("<td class=l>vit</td>").And.Contain("MLP output atoms"));
        using var vit = Vit();
        File.Delete(vitFile);
        var expected = WhiteBox.Measure(vit, data, options.BatchSize);
        for (int l = 0; l < Tiny.Depth; l++)
        {
            var (e, a) = (expected.Layers[l], json.Checkpoints[1].Measurements.Layers[l]);
            Assert.That((a.CodingRate, a.CodingRateAfterMssa, a.Sparsity, a.NearZero, a.Dictionary), Is.EqualTo((e.CodingRate, e.CodingRateAfterMssa, e.Sparsity, e.NearZero, e.Dictionary)), $"layer {l}");
        }
    }

    [Test]
    public void NoAttentionImagesWritesNoAttentionGrids()
    {
        var report = WhiteBoxReport.Write(_dir, [new ReportCheckpoint("m", "m", () => new CrateModel(Tiny))], TestImages.Random(3, 5),
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
