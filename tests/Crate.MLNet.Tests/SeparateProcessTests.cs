using System.Globalization;
using Crate.Core.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Tests;

/// <summary>
/// A saved Crate model scores in a process that references only ML.NET, its ONNX and image packages and ONNX Runtime
/// (samples/ConsumeWithoutCrate): no Crate, no TorchSharp. Its predictions must equal this process's.
/// </summary>
public class SeparateProcessTests
{
    private const int Count = 12;
    private static string[] _pngs = [];

    [OneTimeSetUp]
    public void WriteImages() =>
        _pngs = Enumerable.Range(0, Count).Select(i =>
        {
            var path = Fixture.PathOf($"image{i}.png");
            ImageFile.SavePng(path, Fixture.Images.Image(i), 1, 28, 28);
            return path;
        }).ToArray();

    [Test]
    public void ASavedPixelChainScoresAlikeWithoutCrate()
    {
        var ml = new MLContext(1);
        var data = Fixture.ImageView(ml);
        var zip = Fixture.PathOf("pixels.zip");
        ml.Model.Save(ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(data), data.Schema, zip);
        AssertMatchesReference(RunConsumer(zip), tolerance: 1e-5f);
    }

    [Test]
    public void TheExportedOnnxFileScoresAlikeInAPlainMLNetPipeline() => AssertMatchesReference(RunConsumer(Fixture.OnnxPath), tolerance: 1e-5f);

    [Test]
    public void ASavedImageChainScoresAlikeHereAndWithoutCrate()
    {
        // A pipeline from image files, as ML.NET image pipelines are saved: LoadImages, then Crate's chain for an MLImage column
        // (resize to 28x28, grayscale, extract, ONNX). ML.NET's image transforms read pixels in this process too: Crate.MLNet
        // keeps the SkiaSharp 2.88 they are built for.
        var ml = new MLContext(1);
        var paths = ml.Data.LoadFromEnumerable(_pngs.Select(p => new PathRow { ImagePath = p }));
        var load = ml.Transforms.LoadImages("Image", "", nameof(PathRow.ImagePath)).Fit(paths);
        var model = load.Append(ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(load.Transform(paths)));
        var here = model.Transform(paths);
        var labels = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(here).Transform(here).GetColumn<string>("PredictedLabel");
        AssertMatchesReference(labels.Zip(here.GetColumn<float[]>("Score"), (l, s) => (l, s)).ToArray(), tolerance: 1e-5f);
        var zip = Fixture.PathOf("images.zip");
        ml.Model.Save(model, paths.Schema, zip);
        AssertMatchesReference(RunConsumer(zip), tolerance: 1e-5f);
    }

    private static (string Label, float[] Scores)[] RunConsumer(string model)
    {
        var result = Samples.Run("ConsumeWithoutCrate", [model, .. _pngs]);
        Assert.That(result.ExitCode, Is.Zero, result.Error);
        Assert.That(result.Output, Does.Contain("(0 Crate assemblies loaded)"));
        var classes = result.Output.Split('\n').Single(l => l.StartsWith("# classes\t", StringComparison.Ordinal)).TrimEnd('\r').Split('\t')[1..];
        Assert.That(classes, Is.EqualTo(IdxReader.FashionMnistClasses), "the class names, from the saved chain's Score slot names or the ONNX metadata");
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')).ToArray();
        Assert.That(lines, Has.Length.EqualTo(Count), result.Output);
        return lines.Select(l => l.Split('\t')).Select(p => (p[1], p[2].Split(',').Select(s => float.Parse(s, CultureInfo.InvariantCulture)).ToArray())).ToArray();
    }

    private static void AssertMatchesReference((string Label, float[] Scores)[] predictions, float tolerance)
    {
        for (int i = 0; i < Count; i++)
        {
            var expected = Fixture.Reference.ProbabilitiesOf(i).ToArray();
            Assert.That(predictions[i].Scores, Is.EqualTo(expected).Within(tolerance).AsCollection, $"image {i}");
            Assert.That(predictions[i].Label, Is.EqualTo(Fixture.Config.ClassNames[ClassifierChainTests.ArgMax(expected)]), $"image {i}");
        }
    }

    private sealed class PathRow
    {
        public string ImagePath = "";
    }
}
