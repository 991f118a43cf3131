using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Image;

namespace ConsumeWithoutCrate;

/// <summary>
/// Scores images with a Crate model using ML.NET only. Two kinds of file work:
/// <list type="bullet">
/// <item>the ML.NET model (.zip) Crate's trainers return and <c>mlContext.Model.Save</c> writes: loaded as it is, with image loading in front
/// (a classifier, or a segmentation model, which <see cref="Segment"/> serves);</item>
/// <item>the exported ONNX network (.onnx): a plain ML.NET pipeline around <c>ApplyOnnxModel</c>, class names from the file's metadata.</item>
/// </list>
/// </summary>
public static class CrateModel
{
    private static readonly MLContext Ml = new();

    /// <summary>The model file; set it before the first <see cref="Predict"/>.</summary>
    public static string ModelPath { get; set; } = "FashionMnistModel.zip";
    private static readonly Lazy<Engines> Engine = new(() => CreateEngine(ModelPath));

    /// <summary>The class names, in score order: the saved model's <c>Score</c> slot names, or the ONNX file's metadata (none for a segmentation model).</summary>
    public static string[] ClassNames => Engine.Value.Classes;

    /// <summary>The model is a saved Crate segmentation model (a <c>PredictedMask</c> column): use <see cref="Segment"/>, not <see cref="Predict"/>.</summary>
    public static bool IsSegmentation => Engine.Value.Masks != null;

    /// <summary>Classifies one image. The prediction engine is created on first use (it is not thread-safe: one caller at a time).</summary>
    public static ModelOutput Predict(ModelInput input)
    {
        var engines = Engine.Value;
        if (engines.Zip != null) return engines.Zip.Predict(input);
        var probabilities = (engines.Onnx ?? throw new InvalidOperationException($"'{ModelPath}' is a segmentation model; call Segment.")).Predict(input).Probabilities;
        int best = Array.IndexOf(probabilities, probabilities.Max());
        return new ModelOutput { PredictedLabel = engines.Classes[best], Score = probabilities };
    }

    /// <summary>Segments one image with a saved segmentation model: the class id of every pixel, row-major.</summary>
    public static byte[] Segment(ModelInput input) =>
        (Engine.Value.Masks ?? throw new InvalidOperationException($"'{ModelPath}' is not a segmentation model; call Predict.")).Predict(input).PredictedMask;

    /// <summary>The prediction engine for the kind of model the file holds.</summary>
    private sealed record Engines(PredictionEngine<ModelInput, ModelOutput>? Zip, PredictionEngine<ModelInput, OnnxOutput>? Onnx,
        PredictionEngine<ModelInput, MaskOutput>? Masks, string[] Classes);

    private static Engines CreateEngine(string path)
    {
        var empty = Ml.Data.LoadFromEnumerable(Array.Empty<ModelInput>());
        if (Path.GetExtension(path).Equals(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            var (channels, height, width, classes) = ReadOnnx(path);
            var pipeline = LoadPixels("image", channels, height, width, asFloats: true)
                .Append(Ml.Transforms.ApplyOnnxModel(["probabilities"], ["image"], path));
            return new Engines(null, Ml.Model.CreatePredictionEngine<ModelInput, OnnxOutput>(pipeline.Fit(empty)), null, classes);
        }

        var model = Ml.Model.Load(path, out var inputSchema);
        // The saved chain starts at image paths (its own LoadImages), at ML.NET images, or at pixels it expects ready.
        var image = inputSchema.FirstOrDefault(c => !c.IsHidden && c.Type is VectorDataViewType or ImageDataViewType);
        var prepare = image.Type switch
        {
            VectorDataViewType vector => LoadPixels(image.Name, vector.Dimensions[0], vector.Dimensions[1], vector.Dimensions[2],
                asFloats: vector.ItemType == NumberDataViewType.Single),
            ImageDataViewType => new EstimatorChain<ITransformer>().Append<ITransformer>(Ml.Transforms.LoadImages(image.Name, "", nameof(ModelInput.ImagePath))),
            _ => new EstimatorChain<ITransformer>(),
        };
        var chain = prepare.Fit(empty).Append(model);
        var scored = chain.Transform(empty);
        if (scored.Schema.GetColumnOrNull("PredictedMask") != null)
            return new Engines(null, null, Ml.Model.CreatePredictionEngine<ModelInput, MaskOutput>(chain), []);
        // PredictedLabel is a key whose values are the class names, and Score's slots are named by them, as after an ML.NET trainer.
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        scored.Schema["Score"].GetSlotNames(ref names);
        var named = Ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scored);
        return new Engines(Ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(chain.Append(named)), null, null, names.DenseValues().Select(n => n.ToString()).ToArray());
    }

    /// <summary>File -> image -> the model's size -> planar pixels 0..255 (gray: the red channel of the grayscale image).</summary>
    private static EstimatorChain<ITransformer> LoadPixels(string column, int channels, int height, int width, bool asFloats) =>
        new EstimatorChain<ITransformer>()
            .Append<ITransformer>(Ml.Transforms.LoadImages("loaded", "", nameof(ModelInput.ImagePath)))
            .Append<ITransformer>(Ml.Transforms.ResizeImages("loaded", width, height, "loaded", ImageResizingEstimator.ResizingKind.Fill))
            .Append<ITransformer>(channels == 1 ? Ml.Transforms.ConvertToGrayscale("loaded") : Ml.Transforms.CopyColumns("loaded", "loaded"))
            .Append<ITransformer>(Ml.Transforms.ExtractPixels(column, "loaded",
                channels == 1 ? ImagePixelExtractingEstimator.ColorBits.Red : ImagePixelExtractingEstimator.ColorBits.Rgb,
                interleavePixelColors: false, outputAsFloatArray: asFloats));

    /// <summary>Input geometry from the ONNX input <c>image [batch, C, H, W]</c>, class names from the metadata Crate writes.</summary>
    private static (int, int, int, string[]) ReadOnnx(string path)
    {
        using var session = new InferenceSession(path);
        var dims = session.InputMetadata["image"].Dimensions;
        var names = session.ModelMetadata.CustomMetadataMap.TryGetValue("crate.class_names", out var json)
            ? JsonSerializer.Deserialize<string[]>(json)!
            : Enumerable.Range(0, session.OutputMetadata["probabilities"].Dimensions[1]).Select(k => k.ToString()).ToArray();
        return (dims[1], dims[2], dims[3], names);
    }

    /// <summary>The ONNX model's probabilities output.</summary>
    public class OnnxOutput
    {
        [ColumnName("probabilities")]
        public float[] Probabilities { get; set; } = [];
    }

    /// <summary>A segmentation model's output: the class id of every pixel.</summary>
    public class MaskOutput
    {
        [ColumnName("PredictedMask")]
        public byte[] PredictedMask { get; set; } = [];
    }
}
