namespace Crate.MLNet.Tests;

/// <summary>The Model Builder-style samples run end to end with tiny settings (their defaults take minutes).</summary>
public class SampleSmokeTests
{
    [Test]
    public void FashionMnistClassificationTrainsSavesReloadsPredictsAndEvaluates()
    {
        var output = Fixture.PathOf("sample-a");
        var result = Samples.Run("FashionMnistClassification", ["--train", "300", "--test", "100", "--epochs", "1", "--steps", "2", "--output", output]);
        Assert.That(result.ExitCode, Is.Zero, result.Output + result.Error);
        Assert.That(result.Output, Does.Contain("epoch 1:").And.Contain("Predictions of the reloaded model").And.Contain("MicroAccuracy").And.Contain("Batched scoring"));
        Assert.That(File.Exists(Path.Combine(output, "FashionMnistModel.zip")) && File.Exists(Path.Combine(output, "FashionMnistModel.onnx")));
    }

    [Test]
    public void FeaturizerWithLightGbmTrainsAndEvaluates()
    {
        var output = Fixture.PathOf("sample-b");
        // The fixture's exported model as the featurizer (the sample's own CRATE training is the classification sample's path).
        var result = Samples.Run("FeaturizerLightGbm", ["--onnx", Fixture.OnnxPath, "--train", "300", "--test", "100", "--iterations", "5", "--output", output]);
        Assert.That(result.ExitCode, Is.Zero, result.Output + result.Error);
        Assert.That(result.Output, Does.Contain("CRATE features + LightGBM: MicroAccuracy").And.Contain("CRATE's own head"));
        Assert.That(File.Exists(Path.Combine(output, "CrateLightGbmModel.zip")));
    }

    [Test]
    public void SceneSegmentationTrainsSavesReloadsPredictsEvaluatesAndDraws()
    {
        var output = Fixture.PathOf("sample-c");
        var result = Samples.Run("SceneSegmentation", ["--train", "64", "--test", "16", "--epochs", "1", "--dim", "32", "--depth", "1", "--output", output]);
        Assert.That(result.ExitCode, Is.Zero, result.Output + result.Error);
        Assert.That(result.Output, Does.Contain("epoch 1: loss").And.Contain("Predictions of the reloaded model").And.Contain("MeanIoU").And.Contain("Per class IoU"));
        Assert.That(File.Exists(Path.Combine(output, "SceneSegmentationModel.zip")) && File.Exists(Path.Combine(output, "SceneSegmentationModel.onnx")));
        // Three panels of 64 pixels drawn 4x larger, 2-pixel gaps: a PNG of 3 * 256 + 4 by 256 pixels.
        using var overlay = SkiaSharp.SKBitmap.Decode(Path.Combine(output, "scene0.overlay.png"));
        Assert.That((overlay.Width, overlay.Height), Is.EqualTo((3 * 256 + 4, 256)));
    }

    [Test]
    public void ConsumeWithoutCrateExplainsItsArguments()
    {
        var result = Samples.Run("ConsumeWithoutCrate", []);
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Error, Does.Contain("usage: ConsumeWithoutCrate MODEL.zip|MODEL.onnx IMAGE"));
    }
}
