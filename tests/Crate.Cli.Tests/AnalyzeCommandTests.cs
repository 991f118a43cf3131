using Crate.Core.Model;
using Crate.Reports;
using Crate.Training;
using Crate.Training.Analysis;
using Crate.Training.Model;

namespace Crate.Cli.Tests;

public class AnalyzeCommandTests
{
    private string _dir = "";

    [SetUp]
    public void CreateFolder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "crate-analyze-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_dir, true);

    /// <summary>A small random model shaped for Fashion-MNIST (28x28x1, patch 7, 10 classes).</summary>
    private string TinyWeights(string name, int seed)
    {
        TorchSharp.torch.manual_seed(seed);
        var config = CratePresets.Mini with { Dim = 16, Depth = 2, Heads = 2, DimHead = 8, PatchSize = 7 };
        using var model = new CrateModel(config);
        var path = Path.Combine(_dir, name);
        model.SaveWeights(path);
        return path;
    }

    /// <summary>A training checkpoint (weights, optimiser state, training state) of a tiny model after <paramref name="epochs"/> epochs.</summary>
    private string TinyCheckpoint(string name, int seed, int epochs)
    {
        var weights = CrateWeights.Load(TinyWeights(name + ".safetensors", seed));
        using var model = new CrateModel(weights.Config);
        model.LoadWeights(weights);
        using var optimizer = CrateOptimizer.Create(OptimizerKind.AdamW, CrateOptimizer.Split(model), 0.05);
        var path = Path.Combine(_dir, name);
        Checkpoint.Save(path, model, optimizer, new TrainingState { CompletedEpochs = epochs });
        return path;
    }

    [Test]
    public void AnalyzeWritesTheReportForSeveralCheckpoints()
    {
        var first = TinyWeights("epoch1.safetensors", 1);
        var second = TinyCheckpoint("last.ckpt", 2, epochs: 2);
        var output = Path.Combine(_dir, "report");
        var result = CliRunner.Run("analyze", "--weights", first, "--weights", second, "--random-init", "--data", "fashion-mnist",
            "--images", "30", "--attention-images", "2", "--out", output);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.Error);
        Assert.That(result.Output, Does.Contain("[100%] done"), "plain progress lines when redirected");
        Assert.That(result.Output, Does.Contain("R^c per layer"));

        var report = WhiteBoxReport.Read(Path.Combine(output, WhiteBoxReport.JsonFile));
        Assert.That(report.Checkpoints.Select(c => c.Label), Is.EqualTo(new[] { "CRATE epoch1", "CRATE last (epoch 2)", "CRATE random init (seed 0)" }));
        Assert.That(report.Images, Is.EqualTo(30));
        Assert.That(report.Command, Does.StartWith("crate analyze --weights").And.Contain("--images 30"));
        Assert.That(report.Checkpoints.All(c => c.Measurements.Layers.Count == 2 && c.Measurements.Accuracy is >= 0 and <= 1), Is.True);
        foreach (var file in report.Plots.Concat(report.Checkpoints.SelectMany(c => c.Files.Attention.Append(c.Files.Atoms).Append(c.Files.Subspaces))))
            Assert.That(File.Exists(Path.Combine(output, file)), Is.True, file);
        Assert.That(File.ReadAllText(Path.Combine(output, WhiteBoxReport.HtmlFile)), Does.Contain("last (epoch 2)"));
    }

    [Test]
    public void AnalyzeShowsCrateAndTheVitBaselineSideBySide()
    {
        // The ViT as 'crate train --arch vit' writes it: its weights file and a training checkpoint.
        TorchSharp.torch.manual_seed(4);
        var config = CratePresets.Mini with { Dim = 16, Depth = 2, Heads = 2, DimHead = 8, PatchSize = 7 };
        using var vit = new VitModel(config);
        var vitWeights = Path.Combine(_dir, "vit.safetensors");
        Checkpoint.SaveWeights(vitWeights, vit);
        using var optimizer = CrateOptimizer.Create(OptimizerKind.AdamW, CrateOptimizer.Split(vit), 0.05);
        var vitCheckpoint = Path.Combine(_dir, "vit-last.ckpt");
        Checkpoint.Save(vitCheckpoint, vit, optimizer, new TrainingState { CompletedEpochs = 3 });
        var output = Path.Combine(_dir, "report");
        var result = CliRunner.Run("analyze", "--weights", TinyWeights("crate.safetensors", 1), "--weights", vitWeights, "--weights", vitCheckpoint,
            "--images", "12", "--attention-images", "1", "--out", output);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.Error);
        Assert.That(result.Output, Does.Contain("ViT vit-last (epoch 3): accuracy"));

        var report = WhiteBoxReport.Read(Path.Combine(output, WhiteBoxReport.JsonFile));
        Assert.That(report.Checkpoints.Select(c => (c.Label, c.Architecture)),
            Is.EqualTo(new[] { ("CRATE crate", "crate"), ("ViT vit", "vit"), ("ViT vit-last (epoch 3)", "vit") }));
        Assert.That(report.Checkpoints[1].Parameters, Is.EqualTo(vit.parameters().Sum(p => p.numel())));
        // The weights file and the checkpoint hold the same ViT: the same numbers, measured from either.
        Assert.That(report.Checkpoints[2].Measurements.Layers.Select(l => l.CodingRate), Is.EqualTo(report.Checkpoints[1].Measurements.Layers.Select(l => l.CodingRate)));
        Assert.That(report.Checkpoints[1].Measurements.Layers.Select(l => l.CodingRate.Mean), Is.Not.EqualTo(report.Checkpoints[0].Measurements.Layers.Select(l => l.CodingRate.Mean)));
    }

    [Test]
    public void MissingWeightsIsOneClearError()
    {
        var missing = Path.Combine(_dir, "nope.safetensors");
        var result = CliRunner.Run("analyze", "--weights", missing, "--out", Path.Combine(_dir, "r"));
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Error, Does.Contain(missing).And.Contain("does not exist"));
        Assert.That(result.Error, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public void CheckpointsOfAnotherInputSizeAreOneClearError()
    {
        // Data are read as the first checkpoint takes them (28x28); a 32x32 checkpoint cannot be measured on them.
        TorchSharp.torch.manual_seed(0);
        var config = CratePresets.Mini with { Dim = 16, Depth = 1, Heads = 2, DimHead = 8, ImageHeight = 32, ImageWidth = 32, PatchSize = 8 };
        var other = Path.Combine(_dir, "w32.safetensors");
        using (var model = new CrateModel(config)) model.SaveWeights(other);
        var result = CliRunner.Run("analyze", "--weights", TinyWeights("w28.safetensors", 1), "--weights", other, "--images", "5", "--out", Path.Combine(_dir, "r"));
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Error, Does.Contain("28x28x1").And.Contain("32x32x1"));
        Assert.That(result.Error, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public void UnknownDataIsOneClearError()
    {
        var missing = Path.Combine(_dir, "no-such-folder");
        var result = CliRunner.Run("analyze", "--weights", TinyWeights("w.safetensors", 1), "--data", missing, "--out", Path.Combine(_dir, "r"));
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Error, Does.Contain(missing).And.Contain("does not exist"));
    }
}
