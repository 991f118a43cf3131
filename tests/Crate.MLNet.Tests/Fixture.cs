using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Onnx.Export;
using Crate.Training.Model;
using Microsoft.ML;
using TorchSharp;

namespace Crate.MLNet.Tests;

/// <summary>
/// Shared test material: a small CRATE model (the mini trunk made shallow, TorchSharp's own initialisation, seeded),
/// exported to ONNX once, and a few Fashion-MNIST test images as an ML.NET data view.
/// </summary>
[SetUpFixture]
public sealed class Fixture
{
    /// <summary>Fashion-MNIST's shape and classes with a two-layer trunk, so scoring is quick.</summary>
    public static CrateConfig Config { get; } = CratePresets.Mini with { Depth = 2, ClassNames = [.. IdxReader.FashionMnistClasses] };

    public static string Directory { get; private set; } = "";
    public static string OnnxPath { get; private set; } = "";
    public static byte[] OnnxBytes { get; private set; } = [];
    public static ImageDataset Images { get; private set; } = null!;

    [OneTimeSetUp]
    public void Create()
    {
        Directory = Path.Combine(Path.GetTempPath(), "crate-mlnet-tests-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(Directory);
        torch.manual_seed(11);
        using var model = new CrateModel(Config);
        OnnxPath = Path.Combine(Directory, "mini.onnx");
        CrateOnnxExporter.ExportToFile(model.ToWeights(), OnnxPath);
        OnnxBytes = File.ReadAllBytes(OnnxPath);
        Images = IdxReader.FashionMnist(train: false, limit: 96);
    }

    [OneTimeTearDown]
    public void Delete()
    {
        if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, recursive: true);
    }

    /// <summary>A file path in the test directory.</summary>
    public static string PathOf(string name) => Path.Combine(Directory, name);

    /// <summary>The test images as a view: <c>Image</c> (bytes, [1, 28, 28]), <c>Label</c> (text) and the key-typed <c>Label</c>.</summary>
    public static IDataView ImageView(MLContext ml, ImageDataset? images = null) =>
        ml.Transforms.Conversion.MapValueToKey("Label", keyData: ml.Data.LoadFromEnumerable(Config.ClassNames.Select(n => new ClassName { Label = n })))
            .Fit(ml.Data.LoadFromImageDataset(images ?? Images)).Transform(ml.Data.LoadFromImageDataset(images ?? Images));

    public sealed class ClassName
    {
        public string Label = "";
    }
}
