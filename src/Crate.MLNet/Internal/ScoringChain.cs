using Crate.Core.Model;
using Crate.MLNet.Onnx;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;

namespace Crate.MLNet.Internal;

/// <summary>
/// Builds the transformer chains Crate's estimators return: ML.NET's own transformers only, so
/// <c>mlContext.Model.Save</c>/<c>Load</c> round-trips them and a process without Crate (or TorchSharp) scores them.
/// </summary>
/// <remarks>
/// The network runs in <c>ApplyOnnxModel</c> given the model as a stream: ML.NET copies the bytes into a file it owns
/// and writes them into the saved .zip, so nothing outside the .zip is needed to load it. (Given a file path instead,
/// it would re-read that file when saving.) The chain is image preparation (for <see cref="MLImage"/> columns) ->
/// ONNX -> columns in ML.NET's conventions -> dropping the intermediate columns.
/// </remarks>
internal static class ScoringChain
{
    /// <summary>Intermediate columns the chain creates and drops again.</summary>
    internal const string ResizedColumn = "crate.resized";
    internal const string PixelsColumn = "crate.pixels";
    internal const string PredictedIndexColumn = "crate.predicted_index";
    internal const string PredictedHashColumn = "crate.predicted_hash";

    /// <summary>
    /// Classification: <paramref name="scoreColumn"/> (the class probabilities, in class order) and
    /// <paramref name="predictedLabelColumn"/> (a key whose values are the class names, key k+1 = class k, as in the training label).
    /// </summary>
    public static TransformerChain<ITransformer> Classifier(CatalogContext context, IDataView input, byte[] crateOnnx, CrateConfig config,
        PixelColumn pixels, string scoreColumn, string predictedLabelColumn)
    {
        var classNames = Enumerable.Range(0, config.NumClasses).Select(config.ClassName).ToArray();
        CheckNames(classNames, pixels, scoreColumn, predictedLabelColumn);
        var (prepare, onnxInput) = Prepare(context.Transforms, pixels, config);
        var graph = RowScoringGraph.ForClassification(crateOnnx, new PixelInput(onnxInput, pixels.Source == PixelSource.Bytes, config), scoreColumn, PredictedIndexColumn);

        // The arg-max leaves the graph as a one-slot vector and ML.NET has no vector-to-scalar transform but hashing
        // with 'combine', which yields a scalar key. Hashing the K possible indices once gives the table that maps each
        // hash back to its class name; value mapping with keys numbers the names in the order given (class order).
        var transforms = context.Transforms;
        var (scoring, gpu) = context.OnnxScoring(crateOnnx, "Crate");
        var hash = transforms.Conversion.Hash(new HashingEstimator.ColumnOptions(PredictedHashColumn, PredictedIndexColumn, numberOfBits: 30, combine: true));
        var hashes = HashesOfIndices(hash, config.NumClasses);
        var hashToName = hashes.Select((h, k) => new KeyValuePair<uint, string>(h, classNames[k]));

        var steps = prepare
            .Append<ITransformer>(scoring.ApplyOnnxModel([scoreColumn, PredictedIndexColumn], [onnxInput], new MemoryStream(graph), gpu, context.FallbackToCpu))
            .Append<ITransformer>(hash)
            .Append<ITransformer>(transforms.Conversion.MapValue(predictedLabelColumn, hashToName, PredictedHashColumn, treatValuesAsKeyType: true))
            .Append<ITransformer>(transforms.DropColumns([PredictedIndexColumn, PredictedHashColumn, .. Intermediates(pixels)]));
        return steps.Fit(input);
    }

    /// <summary>The hash the chain computes for each class index 0..K-1; they must differ (they do, for any K that fits in memory, but a clash would mislabel).</summary>
    private static uint[] HashesOfIndices(HashingEstimator hash, int classes)
    {
        // A throwaway context only builds this small in-memory view; hashing does not depend on it.
        var indices = new MLContext().Data.LoadFromEnumerable(Enumerable.Range(0, classes).Select(k => new IndexRow { Index = [k] }));
        var hashes = hash.Fit(indices).Transform(indices).GetColumn<uint>(PredictedHashColumn).ToArray();
        if (hashes.Distinct().Count() != classes)
            throw new InvalidOperationException($"Two of the {classes} class indices hash alike; the predicted label cannot be mapped back.");
        return hashes;
    }

    private sealed class IndexRow
    {
        [ColumnName(PredictedIndexColumn), VectorType(1)]
        public long[] Index = [];
    }

    /// <summary>Featurization: <paramref name="featuresColumn"/>, the network's pooled features (a vector of <c>dim</c> floats).</summary>
    public static TransformerChain<ITransformer> Featurizer(CatalogContext context, IDataView input, byte[] crateOnnx, CrateConfig config,
        PixelColumn pixels, string featuresColumn)
    {
        if (featuresColumn == pixels.Name)
            throw new ArgumentException($"The features column and the image column are both named '{featuresColumn}'; give the features another name.", nameof(featuresColumn));
        var (prepare, onnxInput) = Prepare(context.Transforms, pixels, config);
        var graph = RowScoringGraph.ForFeatures(crateOnnx, new PixelInput(onnxInput, pixels.Source == PixelSource.Bytes, config), featuresColumn);
        var transforms = context.Transforms;
        var (scoring, gpu) = context.OnnxScoring(crateOnnx, "Crate");
        var steps = prepare
            .Append<ITransformer>(scoring.ApplyOnnxModel([featuresColumn], [onnxInput], new MemoryStream(graph), gpu, context.FallbackToCpu));
        if (pixels.Source == PixelSource.Image) steps = steps.Append<ITransformer>(transforms.DropColumns(Intermediates(pixels)));
        return steps.Fit(input);
    }

    /// <summary>
    /// The steps that turn the image column into the network's input, and the column that input is read from. Pixel
    /// vectors go in as they are (the graph casts bytes); images are resized to the network's size and their
    /// channels extracted planar (<c>[C, H, W]</c>, values 0..255), the layout the exported graph expects.
    /// </summary>
    internal static (EstimatorChain<ITransformer> Steps, string OnnxInput) Prepare(TransformsCatalog transforms, PixelColumn pixels, CrateConfig config)
    {
        var steps = new EstimatorChain<ITransformer>();
        if (pixels.Source != PixelSource.Image)
        {
            pixels.CheckShape(config);
            return (steps, pixels.Name);
        }
        var colors = config.Channels switch
        {
            1 => ImagePixelExtractingEstimator.ColorBits.Red, // of the grayscale image, where red = green = blue
            3 => ImagePixelExtractingEstimator.ColorBits.Rgb,
            _ => throw new ArgumentOutOfRangeException("inputSchema",
                $"The image column '{pixels.Name}' holds images, but the model takes {config.Channels}-channel input; only 1 (grayscale) or 3 (RGB) channels can be extracted from images."),
        };
        steps = steps.Append<ITransformer>(transforms.ResizeImages(ResizedColumn, config.ImageWidth, config.ImageHeight, pixels.Name, ImageResizingEstimator.ResizingKind.Fill));
        if (config.Channels == 1) steps = steps.Append<ITransformer>(transforms.ConvertToGrayscale(ResizedColumn, ResizedColumn));
        steps = steps.Append<ITransformer>(transforms.ExtractPixels(PixelsColumn, ResizedColumn, colors, interleavePixelColors: false, outputAsFloatArray: true));
        return (steps, PixelsColumn);
    }

    private static string[] Intermediates(PixelColumn pixels) => pixels.Source == PixelSource.Image ? [ResizedColumn, PixelsColumn] : [];

    /// <summary>The chain's output and intermediate columns must not collide, and class names must be distinct (they become key values).</summary>
    private static void CheckNames(string[] classNames, PixelColumn pixels, string scoreColumn, string predictedLabelColumn)
    {
        var duplicate = classNames.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null)
            throw new ArgumentException($"The model names two classes '{duplicate.Key}'; class names must be distinct to serve as key values.");
        if (scoreColumn == predictedLabelColumn)
            throw new ArgumentException($"The score and predicted-label columns are both named '{scoreColumn}'.");
        foreach (var output in new[] { scoreColumn, predictedLabelColumn })
        {
            if (output == pixels.Name)
                throw new ArgumentException($"The output column '{output}' has the name of the image column; give it another name.");
            if (output.StartsWith("crate.", StringComparison.Ordinal))
                throw new ArgumentException($"Column names starting with 'crate.' are reserved for Crate's intermediate columns; '{output}' is one.");
        }
    }
}
