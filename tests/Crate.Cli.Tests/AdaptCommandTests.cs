using System.Text.Json;
using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Onnx.Runtime;

namespace Crate.Cli.Tests;

/// <summary><c>crate train --init-from W --adapt ...</c>: what each method trains, and that the weights it writes serve like any others.</summary>
public class AdaptCommandTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("crate-cli-adapt-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    /// <summary>Small, quick settings shared by every run (one libtorch thread: the tests share two cores).</summary>
    private static readonly string[] Quick = ["--limit", "200", "--batch-size", "50", "--val-fraction", "0.2", "--test-limit", "100", "--threads", "1"];

    private static CliRunner.Result Run(params string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.That(result.ExitCode, Is.EqualTo(0), $"crate {string.Join(' ', args)}: {result.Error}");
        return result;
    }

    [Test]
    public void Each_method_trains_only_its_weights_and_prompt_tuned_weights_evaluate_predict_and_export()
    {
        var pretrained = Path.Combine(_dir, "pre");
        Run(["train", "--epochs", "1", "--out", pretrained, "--no-test", .. Quick]);
        var source = CrateWeights.Load(Path.Combine(pretrained, "weights.safetensors"));
        string initFrom = Path.Combine(pretrained, "weights.safetensors");

        // Prompt tuning: 3 prompt tokens join the trunk; every pretrained trunk weight stays bit-identical. Resumed to a second epoch.
        var prompted = Path.Combine(_dir, "prompt");
        string[] promptRun = ["train", "--init-from", initFrom, "--adapt", "prompt-tuning", "--prompt-tokens", "3", "--out", prompted, .. Quick];
        var output = Run([.. promptRun, "--epochs", "1"]).Output;
        Assert.That(output, Does.Contain("adapting: prompt-tuning (3 prompt tokens) of").And.Contain("3 prompt tokens"));
        Run([.. promptRun, "--epochs", "2", "--resume"]);
        var weightsFile = Path.Combine(prompted, "weights.safetensors");
        var weights = CrateWeights.Load(weightsFile);
        Assert.That(weights.Config.PromptTokens, Is.EqualTo(3));
        Assert.That(weights.Tensors.Single(t => t.Name == "prompt_tokens").Shape, Is.EqualTo(new long[] { 1, 3, source.Config.Dim }));
        AssertFrozen(source, weights, name => !name.StartsWith("mlp_head.", StringComparison.Ordinal));
        Assert.That(weights.Floats("mlp_head.1.weight"), Is.Not.EqualTo(source.Floats("mlp_head.1.weight")), "the head trained");
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(prompted, "metrics.json")));
        Assert.That(metrics.RootElement.GetProperty("epochs").GetArrayLength(), Is.EqualTo(2));
        Assert.That(metrics.RootElement.GetProperty("options").GetProperty("adaptation").GetString(), Is.EqualTo("prompt-tuning (3 prompt tokens)"));
        double top1 = metrics.RootElement.GetProperty("test").GetProperty("top1").GetDouble();

        // The written weights work everywhere weights do: evaluate (the run's own test top-1), predict, info, export.
        output = Run("evaluate", "--weights", weightsFile, "--limit", "100", "--threads", "1").Output;
        Assert.That(output, Does.Contain($"top-1 {top1 * 100:F2} %"));
        var image = Path.Combine(_dir, "shape.png");
        ImageFile.SavePng(image, GeneratedShapes.Create(1, seed: 3).Image(0), 1, 28, 28);
        Assert.That(Run("predict", "--weights", weightsFile, "--top", "1", image).Output, Does.Match(@": [a-z-]+ \d+\.\d %\n$"));
        Assert.That(Run("info", "--weights", weightsFile).Output, Does.Contain("prompt tokens: 3").And.Contain($"parameters: {weights.Config.ParameterCount()}"));
        var onnx = Path.Combine(_dir, "prompt.onnx");
        Run("export", "--weights", weightsFile, "--out", onnx);
        using (var model = CrateOnnxModel.Load(onnx)) Assert.That(model.Config.PromptTokens, Is.EqualTo(3));

        // Linear probe: the head alone trains.
        var probe = Path.Combine(_dir, "probe");
        Run(["train", "--init-from", initFrom, "--adapt", "linear-probe", "--epochs", "1", "--out", probe, "--no-test", .. Quick]);
        var probed = CrateWeights.Load(Path.Combine(probe, "weights.safetensors"));
        Assert.That(probed.Config.PromptTokens, Is.EqualTo(0));
        AssertFrozen(source, probed, name => !name.StartsWith("mlp_head.", StringComparison.Ordinal));

        // Fine-tuning the last layer: every earlier layer and the embedding stay as they were; the last layer moves.
        var last = $"transformer.layers.{source.Config.Depth - 1}.";
        var tuned = Path.Combine(_dir, "tuned");
        Run(["train", "--init-from", initFrom, "--adapt", "fine-tune", "--fine-tune-last", "1", "--epochs", "1", "--out", tuned, "--no-test", .. Quick]);
        var fineTuned = CrateWeights.Load(Path.Combine(tuned, "weights.safetensors"));
        AssertFrozen(source, fineTuned, name => !name.StartsWith("mlp_head.", StringComparison.Ordinal) && !name.StartsWith(last, StringComparison.Ordinal));
        Assert.That(fineTuned.Floats(last + "1.fn.weight"), Is.Not.EqualTo(source.Floats(last + "1.fn.weight")), "the last layer trained");
    }

    [Test]
    public void Adaptation_options_that_do_not_fit_are_one_clear_error()
    {
        var initFrom = Path.Combine(_dir, "w.safetensors");
        var config = CratePresets.Mini with { Depth = 2 };
        CrateWeights.Create(config, CrateWeights.Layout(config).Select(p =>
            Crate.Core.Weights.NamedTensor.FromFloats(p.Name, p.Shape, new float[Crate.Core.Weights.NamedTensor.ElementCount(p.Shape)]))).Save(initFrom);
        var cases = new (string[] Args, string Error)[]
        {
            (["--adapt", "linear-probe"], "--adapt needs --init-from: the pretrained weights to adapt."),
            (["--fine-tune-last", "1"], "--fine-tune-last needs --init-from: the pretrained weights to adapt."),
            (["--init-from", initFrom, "--adapt", "prompt-tuning", "--prompt-tokens", "0"], "--prompt-tokens must be at least 1, got 0."),
            (["--init-from", initFrom, "--prompt-tokens", "4"], "--prompt-tokens applies to --adapt prompt-tuning."),
            (["--init-from", initFrom, "--fine-tune-last", "3"], "--fine-tune-last must be 1..2 (the depth of the --init-from trunk), got 3."),
            (["--init-from", initFrom, "--adapt", "linear-probe", "--fine-tune-last", "1"], "--fine-tune-last applies to --adapt fine-tune."),
        };
        foreach (var (args, expected) in cases)
        {
            var (exit, output, error) = CliRunner.Run(["train", .. args, "--out", Path.Combine(_dir, "run")]);
            Assert.That(exit, Is.EqualTo(2), string.Join(' ', args));
            Assert.That(error.TrimEnd('\n'), Is.EqualTo($"error: {expected}"), string.Join(' ', args));
            Assert.That(output, Is.Empty, "nothing else is printed");
        }
        var unknown = CliRunner.Run("train", "--init-from", initFrom, "--adapt", "lora");
        Assert.That(unknown.ExitCode, Is.EqualTo(2));
        Assert.That(unknown.Error, Does.Contain("'linear-probe' 'prompt-tuning' 'fine-tune'"));
    }

    /// <summary>Every tensor of <paramref name="source"/> that <paramref name="frozen"/> selects is bit-identical in <paramref name="adapted"/>.</summary>
    private static void AssertFrozen(CrateWeights source, CrateWeights adapted, Func<string, bool> frozen)
    {
        var names = CrateWeights.Layout(source.Config).Select(p => p.Name).Where(frozen).ToList();
        Assert.That(names, Is.Not.Empty);
        foreach (var name in names) Assert.That(adapted.Floats(name), Is.EqualTo(source.Floats(name)), $"{name} is frozen");
    }
}
