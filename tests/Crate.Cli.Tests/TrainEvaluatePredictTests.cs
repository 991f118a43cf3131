using System.Text.Json;
using Crate.Core.Data;

namespace Crate.Cli.Tests;

public class TrainEvaluatePredictTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("crate-cli-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Train_resume_evaluate_and_predict_on_generated_data()
    {
        var run = Path.Combine(_dir, "run");
        // One libtorch thread: the tests share two cores with other test runs.
        string[] common = ["--limit", "300", "--batch-size", "50", "--val-fraction", "0.2", "--test-limit", "100", "--threads", "1", "--out", run];
        var (exit, output, error) = CliRunner.Run(["train", "--epochs", "2", "--patch-dropout", "0.25", "--full-patch-epochs", "1", .. common]);
        Assert.That(exit, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain("patch dropout 0.25 in the first 1 epochs, "));
        // Output is redirected, so progress comes as plain lines, about ten per epoch, with rate and ETA.
        Assert.That(output, Does.Contain("epoch 1/2 step 5/5 loss "));
        Assert.That(output, Does.Match(@"images/s ETA \d+:\d\d"));
        foreach (var file in new[] { "weights.safetensors", "last.ckpt", "best.ckpt", "metrics.json" })
            Assert.That(File.Exists(Path.Combine(run, file)), file);
        Assert.That(File.ReadAllBytes(Path.Combine(run, "training-curve.png"))[..4], Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));

        // Resume the finished 2-epoch run to 3 epochs: the history keeps the first two.
        (exit, _, error) = CliRunner.Run(["train", "--epochs", "3", "--resume", .. common]);
        Assert.That(exit, Is.EqualTo(0), error);
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")));
        var root = metrics.RootElement;
        Assert.That(root.GetProperty("epochs").GetArrayLength(), Is.EqualTo(3));
        Assert.That(root.GetProperty("train_images").GetInt32(), Is.EqualTo(240));
        Assert.That(root.GetProperty("options").GetProperty("patch_dropout").GetDouble(), Is.EqualTo(0), "the resumed run was asked for none");
        var test = root.GetProperty("test");
        Assert.That(test.GetProperty("count").GetInt32(), Is.EqualTo(100));

        // Evaluating the saved weights on the same 100 test images gives the same top-1 the run reported.
        (exit, output, error) = CliRunner.Run("evaluate", "--weights", Path.Combine(run, "weights.safetensors"), "--limit", "100", "--threads", "1");
        Assert.That(exit, Is.EqualTo(0), error);
        Assert.That(output, Does.Contain($"top-1 {test.GetProperty("top1").GetDouble() * 100:F2} %"));
        Assert.That(output, Does.Contain("four-dots"), "per-class accuracy names the classes");

        // Predict: one line per image with the top 2 class names; a corrupt image stops with its name.
        var shapes = GeneratedShapes.Create(2, seed: 9);
        var image = Path.Combine(_dir, "square.png");
        ImageFile.SavePng(image, shapes.Image(1), 1, 28, 28);
        (exit, output, error) = CliRunner.Run("predict", "--weights", Path.Combine(run, "weights.safetensors"), "--top", "2", image);
        Assert.That(exit, Is.EqualTo(0), error);
        Assert.That(output, Does.Match($@"^{System.Text.RegularExpressions.Regex.Escape(image)}: [a-z-]+ \d+\.\d %, [a-z-]+ \d+\.\d %\n$"));

        var broken = Path.Combine(_dir, "broken.png");
        File.WriteAllBytes(broken, File.ReadAllBytes(image)[..30]);
        (exit, output, error) = CliRunner.Run("predict", "--weights", Path.Combine(run, "weights.safetensors"), broken);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(error, Does.StartWith($"error: Image '{broken}'"));
    }

    [TestCase("4", "patch dropout 0.5 in the first 1 epochs, ", 3)]
    [TestCase("2", null, 2)]
    public void A_recipe_cut_short_keeps_the_full_patch_epochs_that_fit(string epochs, string? expected, int fullPatchEpochs)
    {
        // fmnist-91 drops half the patches in all but its last 3 epochs; with fewer epochs every one trains on every patch.
        var run = Path.Combine(_dir, "run");
        var (exit, output, error) = CliRunner.Run("train", "--recipe", "fmnist-91", "--data", "generated", "--limit", "64", "--epochs", epochs,
            "--steps-per-epoch", "1", "--batch-size", "32", "--no-test", "--threads", "1", "--out", run);
        Assert.That(exit, Is.EqualTo(0), error);
        Assert.That(output, expected != null ? Does.Contain(expected) : Does.Not.Contain("patch dropout"));
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")));
        var options = metrics.RootElement.GetProperty("options");
        Assert.That(options.GetProperty("patch_dropout").GetDouble(), Is.EqualTo(0.5));
        Assert.That(options.GetProperty("full_patch_epochs").GetInt32(), Is.EqualTo(fullPatchEpochs));
    }

    [Test]
    public void Bad_images_in_a_folder_stop_training_with_the_file_or_are_skipped()
    {
        var data = Path.Combine(_dir, "data");
        var shapes = GeneratedShapes.Create(20, seed: 1);
        for (int i = 0; i < shapes.Count; i++)
            ImageFile.SavePng(Path.Combine(data, shapes.ClassNames[shapes.Label(i)], $"{i}.png"), shapes.Image(i), 1, 28, 28);
        var empty = Path.Combine(data, "circle", "empty.png");
        File.WriteAllBytes(empty, []);
        string[] args = ["train", "--data", data, "--epochs", "1", "--threads", "1", "--val-fraction", "0", "--out", Path.Combine(_dir, "run")];

        var (exit, _, error) = CliRunner.Run(args);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(error, Is.EqualTo($"error: Image '{empty}' is empty (0 bytes).\n"));

        (exit, var output, error) = CliRunner.Run([.. args, "--skip-invalid"]);
        Assert.That(exit, Is.EqualTo(0), error);
        Assert.That(error, Does.StartWith($"warning: skipped 1 invalid item(s) of '{data}'; first: Image '{empty}' is empty (0 bytes)."));
        Assert.That(output, Does.Contain("20 training images (1x28x28, 10 classes)"));
    }
}
