using System.Text.RegularExpressions;
using Crate.Core.Data.Segmentation;
using Crate.Core.Weights;
using SkiaSharp;

namespace Crate.Cli.Tests;

public class SegmentCommandTests
{
    [Test]
    public void TrainEvaluatePredictAndExportWorkTogether()
    {
        var dir = Directory.CreateTempSubdirectory("crate-cli-segment-").FullName;
        try
        {
            var model = Path.Combine(dir, "seg.safetensors");
            // A deliberately tiny run: 32x32 scenes, patch 8, one epoch; this checks the wiring, not the quality.
            var train = CliRunner.Run("segment", "train", "--task", "segment", "--count", "48", "--epochs", "1", "--batch-size", "16",
                "--scene-size", "32", "--test-count", "0", "--out", model);
            Assert.That(train.ExitCode, Is.EqualTo(0), train.Error);
            Assert.That(train.Output, Does.Contain("epoch   1").And.Contain("32x32x1 input"));

            var evaluate = CliRunner.Run("segment", "evaluate", "--model", model, "--count", "20");
            Assert.That(evaluate.ExitCode, Is.EqualTo(0), evaluate.Error);
            Assert.That(evaluate.Output, Does.Contain("pixel accuracy").And.Contain("mIoU").And.Contain("foreground IoU").And.Contain("all-background baseline")
                .And.Contain("with every found pixel named right (the outlines' limit): mIoU").And.Contain("with the foreground exact (the naming's limit):"));
            Assert.That(Regex.Matches(evaluate.Output, @"^\s+\d+ \S.* IoU ", RegexOptions.Multiline), Has.Count.EqualTo(11), "one line per mask class");
            Assert.That(evaluate.Output, Does.Contain("20 scenes of 1-3 objects, scale 0.75-1.3, occlusion up to 0.3"));
            var single = CliRunner.Run("segment", "evaluate", "--model", model, "--count", "20", "--objects", "1", "--object-scale", "0.9-1.1", "--max-occlusion", "0");
            Assert.That(single.ExitCode, Is.EqualTo(0), single.Error);
            Assert.That(single.Output, Does.Contain("20 scenes of 1 object, scale 0.9-1.1, occlusion up to 0"));

            var emergent = CliRunner.Run("segment", "evaluate", "--model", model, "--count", "20", "--method", "emergent");
            Assert.That(emergent.ExitCode, Is.EqualTo(0), emergent.Error);
            Assert.That(emergent.Output, Does.Contain("emergent (layer penultimate, keep 60 %").And.Contain("image classification accuracy"));

            var output = Path.Combine(dir, "predictions");
            var predict = CliRunner.Run("segment", "predict", "--model", model, "--count", "3", "--out", output, "--scale", "2");
            Assert.That(predict.ExitCode, Is.EqualTo(0), predict.Error);
            for (int i = 0; i < 3; i++)
            {
                using var overlay = SKBitmap.Decode(Path.Combine(output, $"{i:D4}.overlay.png"));
                Assert.That((overlay.Width, overlay.Height), Is.EqualTo((5 * 64 + 4 * 2, 64)), "five 32x32 panels at scale 2 with 2-pixel gaps");
                using var heads = SKBitmap.Decode(Path.Combine(output, $"{i:D4}.heads.png"));
                Assert.That(heads.Width, Is.EqualTo(2 * 6 * 64 + 11 * 2), "a heat map and a kept-patch mask for each of the 6 heads");
                var mask = MaskPng.Read(Path.Combine(output, $"{i:D4}.mask.png"), out int h, out int w);
                Assert.That((h, w, mask.All(v => v <= 10)), Is.EqualTo((32, 32, true)));
            }

            var onnx = Path.Combine(dir, "seg.onnx");
            var export = CliRunner.Run("segment", "export", "--model", model, "--out", onnx);
            Assert.That(export.ExitCode, Is.EqualTo(0), export.Error);
            Assert.That(new FileInfo(onnx).Length, Is.GreaterThan(100_000));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void QueriesPutAQueryHeadOnTheClassTokenAndNewPromptsThatLaterRunsKeep()
    {
        var dir = Directory.CreateTempSubdirectory("crate-cli-queries-").FullName;
        try
        {
            var first = Path.Combine(dir, "first.safetensors");
            string[] tiny = ["--count", "32", "--epochs", "1", "--batch-size", "16", "--scene-size", "32", "--test-count", "0"];
            var train = CliRunner.Run(["segment", "train", "--queries", "3", .. tiny, "--out", first]);
            Assert.That(train.ExitCode, Is.EqualTo(0), train.Error);
            Assert.That(train.Output, Does.Contain("2 prompt tokens").And.Contain("query head: 3 queries (the class token and 2 prompt tokens)"));
            Assert.That(Safetensors.Read(first).Tensors.Count(t => t.Name.StartsWith("query_head.", StringComparison.Ordinal)), Is.EqualTo(10));

            var second = Path.Combine(dir, "second.safetensors");
            var more = CliRunner.Run(["segment", "train", "--init", first, .. tiny, "--out", second]);
            Assert.That(more.ExitCode, Is.EqualTo(0), more.Error);
            Assert.That(more.Output, Does.Contain("query head: 3 queries"), "a model with a query head keeps it");

            var mismatch = CliRunner.Run(["segment", "train", "--init", first, "--queries", "5", .. tiny, "--out", second]);
            Assert.That(mismatch.ExitCode, Is.EqualTo(2));
            Assert.That(mismatch.Error.Trim(), Is.EqualTo("error: 5 queries need 4 prompt tokens, but the trunk has 2: the queries are the class token and every prompt token."));

            var export = CliRunner.Run("segment", "export", "--model", second, "--out", Path.Combine(dir, "second.onnx"));
            Assert.That(export.ExitCode, Is.EqualTo(0), export.Error);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestCase("linear-probe")]
    [TestCase("prompt-tuning")]
    [TestCase("fine-tune")]
    public void AdaptingAnInitialisedTrunkKeepsItBitIdenticalUnlessFineTuning(string method)
    {
        var dir = Directory.CreateTempSubdirectory("crate-cli-segment-adapt-").FullName;
        try
        {
            string[] tiny = ["--count", "32", "--epochs", "1", "--batch-size", "16", "--scene-size", "32", "--depth", "1", "--test-count", "0", "--threads", "1"];
            var pretrained = Path.Combine(dir, "pretrained.safetensors");
            var first = CliRunner.Run(["segment", "train", "--task", "classify", .. tiny, "--out", pretrained]);
            Assert.That(first.ExitCode, Is.EqualTo(0), first.Error);
            var adapted = Path.Combine(dir, "adapted.safetensors");
            string[] prompts = method == "prompt-tuning" ? ["--prompt-tokens", "2"] : [];
            var second = CliRunner.Run(["segment", "train", "--init", pretrained, "--adapt", method, .. prompts, .. tiny, "--out", adapted]);
            Assert.That(second.ExitCode, Is.EqualTo(0), second.Error);

            var before = Safetensors.Read(pretrained);
            var after = Safetensors.Read(adapted);
            var trunk = before.Tensors.Where(t => !t.Name.StartsWith("mlp_head.", StringComparison.Ordinal)).ToList();
            Assert.That(trunk, Has.Count.GreaterThan(10));
            var unchanged = trunk.Where(t => after.TryGet(t.Name, out var a) && a.Data.AsSpan().SequenceEqual(t.Data)).Select(t => t.Name).ToList();
            Assert.That(unchanged, method == "fine-tune" ? Is.Empty : Is.EqualTo(trunk.Select(t => t.Name)), "trunk tensors left bit-identical");
            Assert.That(after.TryGet("prompt_tokens", out var promptTokens) ? promptTokens.Shape : null, Is.EqualTo(method == "prompt-tuning" ? new long[] { 1, 2, 192 } : null));
            Assert.That(after.Tensors.Count(t => t.Name.StartsWith("seg_head.", StringComparison.Ordinal)), Is.EqualTo(8), "a segmentation head: norm, linear and two refinement convolutions");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void StartingFromAModelOfAnotherSizeResamplesItsPositionsOrSaysWhyNot()
    {
        var dir = Directory.CreateTempSubdirectory("crate-cli-segment-resize-").FullName;
        try
        {
            string[] tiny = ["--count", "16", "--epochs", "1", "--batch-size", "16", "--depth", "1", "--test-count", "0", "--threads", "1"];
            var pretrained = Path.Combine(dir, "pretrained.safetensors");
            var first = CliRunner.Run(["segment", "train", "--task", "classify", "--scene-size", "32", .. tiny, "--out", pretrained]);
            Assert.That(first.ExitCode, Is.EqualTo(0), first.Error);

            var larger = CliRunner.Run(["segment", "train", "--init", pretrained, "--scene-size", "48", .. tiny, "--out", Path.Combine(dir, "larger.safetensors")]);
            Assert.That(larger.ExitCode, Is.EqualTo(0), larger.Error);
            Assert.That(larger.Output, Does.Contain("positional embedding resampled from a 4x4 to a 6x6 patch grid").And.Contain("48x48x1 input"));

            // A folder of images: --scene-size resizes them and the trunk follows, as for generated scenes.
            var folder = Path.Combine(dir, "scenes");
            SceneGenerator.Generate(ObjectBank.Shapes(20, seed: 1), 16, new SceneOptions { Size = 32 }, "train").Save(folder);
            var fromFolder = CliRunner.Run(["segment", "train", "--init", pretrained, "--data", folder, "--scene-size", "48", .. tiny, "--out", Path.Combine(dir, "folder.safetensors")]);
            Assert.That(fromFolder.ExitCode, Is.EqualTo(0), fromFolder.Error);
            Assert.That(fromFolder.Output, Does.Contain($"16 images from '{folder}', 48x48x1").And.Contain("resampled from a 4x4 to a 6x6 patch grid").And.Contain("48x48x1 input"));

            var misfit = CliRunner.Run(["segment", "train", "--init", pretrained, "--scene-size", "36", .. tiny, "--out", Path.Combine(dir, "misfit.safetensors")]);
            Assert.That(misfit.ExitCode, Is.EqualTo(2));
            Assert.That(misfit.Error.Trim(), Is.EqualTo("error: 'pretrained.safetensors' does not fit the training images: the trunk takes 1-channel images in patches of 8, the images are 1x36x36."));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void EvaluatingAMissingModelIsOneLineError()
    {
        var result = CliRunner.Run("segment", "evaluate", "--model", "/nonexistent/model.safetensors");
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Error.Trim(), Does.StartWith("error: ").And.Contain("/nonexistent/model.safetensors"));
        Assert.That(result.Error, Does.Not.Contain("   at "));
    }
}
