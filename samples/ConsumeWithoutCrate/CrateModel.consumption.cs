using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Image;

namespace ConsumeWithoutCrate;

/// <summary>
/// Scores images with a Crate model using ML.NET only. Two kinds of file work:
/// <list type="bullet">
/// <item>the ML.NET model (.zip) Crate's trainer returns and <c>mlContext.Model.Save</c> writes: loaded as it is, with image loading in front;</item>
/// <item>the exported ONNX network (.onnx): a plain ML.NET pipeline around <c>ApplyOnnxModel</c>, class names from the file's metadata.</item>
/// </list>
/// </summary>
public static class CrateModel
{
    private static readonly MLContext Ml = new();

    /// <summary>The model file; set it before the first <see cref="Predict"/>.</summary>
    public static string ModelPath { get; set; } = "FashionMnistModel.zip";
    private static readonly Lazy<(PredictionEngine<ModelInput, ModelOutput>? Zip, PredictionEngine<ModelInput, OnnxOutput>? Onnx, string[] Classes)> Engine =
        new(() => CreateEngine(ModelPath));

    /// <summary>The class names, in score order: the saved model's <c>Score</c> slot names, or the ONNX file's metadata.</summary>
    public static string[] ClassNames => Engine.Value.Classes;

    /// <summary>Classifies one image. The prediction engine is created on first use (it is not thread-safe: one caller at a time).</summary>
    public static ModelOutput Predict(ModelInput input)
    {
        var (zip, onnx, classes) = Engine.Value;
        if (zip != null) return zip.Predict(input);
        var probabilities = onnx!.Predict(input).Probabilities;
        int best = Array.IndexOf(probabilities, probabilities.Max());
        return new ModelOutput { PredictedLabel = classes[best], Score = probabilities };
    }

    private static (PredictionEngine<ModelInput, ModelOutput>?, PredictionEngine<ModelInput, OnnxOutput>?, string[]) CreateEngine(string path)
    {
        var empty = Ml.Data.LoadFromEnumerable(Array.Empty<ModelInput>());
        if (Path.GetExtension(path).Equals(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            var (channels, height, width, classes) = ReadOnnx(path);
            var pipeline = LoadPixels("image", channels, height, width, asFloats: true)
                .Append(Ml.Transforms.ApplyOnnxModel(["probabilities"], ["image"], path));
            return (null, Ml.Model.CreatePredictionEngine<ModelInput, OnnxOutput>(pipeline.Fit(empty)), classes);
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
        // PredictedLabel is a key whose values are the class names, and Score's slots are named by them, as after an ML.NET trainer.
        var scored = chain.Transform(empty);
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        scored.Schema["Score"].GetSlotNames(ref names);
        var named = Ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").Fit(scored);
        return (Ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(chain.Append(named)), null, names.DenseValues().Select(n => n.ToString()).ToArray());
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
}
