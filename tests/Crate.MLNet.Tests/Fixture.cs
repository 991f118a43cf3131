using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using Crate.Training;
using Crate.Training.Model;
using Microsoft.ML;
using TorchSharp;

namespace Crate.MLNet.Tests;

/// <summary>
/// Shared test material: a small CRATE model (the mini trunk made shallow, TorchSharp's own initialisation, seeded),
/// exported to ONNX once, and a few Fashion-MNIST test images with the exported model's own batched scores as the
/// independent reference every ML.NET path is compared with.
/// </summary>
[SetUpFixture]
public sealed class Fixture
{
    /// <summary>Fashion-MNIST's shape and classes with a two-layer trunk, so scoring is quick.</summary>
    public static CrateConfig Config { get; } = CratePresets.Mini with { Depth = 2, ClassNames = [.. IdxReader.FashionMnistClasses] };

    public static string Directory { get; private set; } = "";
    public static string OnnxPath { get; private set; } = "";
    public static ImageDataset Images { get; private set; } = null!;
    /// <summary>ONNX Runtime's scores of <see cref="Images"/> on the exported (batched) graph.</summary>
    public static CrateScores Reference { get; private set; } = null!;

    [OneTimeSetUp]
    public void Create()
    {
        // Before libtorch loads: test runs share two cores, where spinning OpenMP threads slow libtorch several-fold.
        ProcessTuning.Apply(coresShared: true);
        Directory = Path.Combine(Path.GetTempPath(), "crate-mlnet-tests-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(Directory);
        torch.manual_seed(11);
        using var model = new CrateModel(Config);
        OnnxPath = Path.Combine(Directory, "mini.onnx");
        CrateOnnxExporter.ExportToFile(model.ToWeights(), OnnxPath);
        Images = IdxReader.FashionMnist(train: false, limit: 96);
        using var onnx = CrateOnnxModel.Load(OnnxPath);
        Reference = onnx.Score(Pixels(Images));
    }

    [OneTimeTearDown]
    public void Delete()
    {
        if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Delete(Directory, recursive: true);
    }

    /// <summary>A file path in the test directory.</summary>
    public static string PathOf(string name) => Path.Combine(Directory, name);

    /// <summary>All pixels of <paramref name="images"/> as floats, image after image.</summary>
    public static float[] Pixels(ImageDataset images) =>
        Enumerable.Range(0, images.Count).SelectMany(i => images.Image(i).ToArray()).Select(b => (float)b).ToArray();

    /// <summary>Data view of <paramref name="images"/>: <c>Image</c> (bytes, [1, 28, 28]) and a key-typed <c>Label</c> in Fashion-MNIST's class order.</summary>
    public static IDataView ImageView(MLContext ml, ImageDataset? images = null)
    {
        var data = ml.Data.LoadFromImageDataset(images ?? Images);
        return LabelKeys(ml).Fit(data).Transform(data);
    }

    /// <summary>Maps text labels to keys numbered in Fashion-MNIST's class order (key k+1 = class k), whatever order the data holds them in.</summary>
    public static IEstimator<ITransformer> LabelKeys(MLContext ml) =>
        ml.Transforms.Conversion.MapValueToKey("Label", keyData: ml.Data.LoadFromEnumerable(IdxReader.FashionMnistClasses.Select(n => new ClassName { Label = n })));

    public sealed class ClassName
    {
        public string Label = "";
    }
}
