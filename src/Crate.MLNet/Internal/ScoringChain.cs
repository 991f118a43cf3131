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
/// ONNX -> columns in ML.NET's conventions (<see cref="ClassifierHead"/> for a classifier; the graph's own outputs for features and masks) -> dropping the intermediate columns.
/// </remarks>
internal static class ScoringChain
{
    /// <summary>Intermediate columns the chain creates and drops again.</summary>
    internal const string ResizedColumn = "crate.resized";
    internal const string PixelsColumn = "crate.pixels";
    internal const string LogitsColumn = "crate.logits";

    /// <summary>
    /// Classification: <paramref name="scoreColumn"/> (the class probabilities, in class order, slot names = class names) and
    /// <paramref name="predictedLabelColumn"/> (a key whose values are the class names, key k+1 = class k, as in the training label).
    /// </summary>
    /// <remarks>
    /// The network's logits leave ONNX and ML.NET's own multiclass prediction transformer turns them into <c>Score</c> and
    /// <c>PredictedLabel</c> (<see cref="ClassifierHead"/>), as it does after any ML.NET trainer: that is what names the slots.
    /// </remarks>
    public static TransformerChain<ITransformer> Classifier(CatalogContext context, IDataView input, byte[] crateOnnx, CrateConfig config,
        PixelColumn pixels, string scoreColumn, string predictedLabelColumn)
    {
        var classNames = Enumerable.Range(0, config.NumClasses).Select(config.ClassName).ToArray();
        CheckNames(classNames, pixels, scoreColumn, predictedLabelColumn);
        var (prepare, onnxInput) = Prepare(context.Transforms, pixels, config);
        var graph = RowScoringGraph.ForClassification(crateOnnx, new PixelInput(onnxInput, pixels.Source == PixelSource.Bytes, config), LogitsColumn);
        var (scoring, gpu) = context.OnnxScoring(crateOnnx, "Crate");
        var network = prepare
            .Append<ITransformer>(scoring.ApplyOnnxModel([LogitsColumn], [onnxInput], new MemoryStream(graph), gpu, context.FallbackToCpu))
            .Fit(input);
        var head = ClassifierHead.Create(context.Environment, classNames, LogitsColumn, scoreColumn, predictedLabelColumn);
        var drop = context.Transforms.DropColumns([LogitsColumn, .. Intermediates(pixels)]).Fit(head.Transform(network.Transform(input)));
        return network.Append<ITransformer>(head).Append<ITransformer>(drop);
    }

    /// <summary>Featurization: <paramref name="featuresColumn"/>, the network's pooled features (a vector of <c>dim</c> floats).</summary>
    public static TransformerChain<ITransformer> Featurizer(CatalogContext context, IDataView input, byte[] crateOnnx, CrateConfig config,
        PixelColumn pixels, string featuresColumn)
    {
        if (featuresColumn == pixels.Name)
            throw new ArgumentException($"The features column and the image column are both named '{featuresColumn}'; give the features another name.", nameof(featuresColumn));
        return Network(context, input, crateOnnx, config, pixels, [featuresColumn], graphInput => RowScoringGraph.ForFeatures(crateOnnx, graphInput, featuresColumn));
    }

    /// <summary>
    /// Segmentation: <paramref name="maskColumn"/> (the class id of every pixel, a vector of bytes shaped <c>[H, W]</c>) and, when
    /// <paramref name="scoresColumn"/> is given, the class probabilities of every pixel (floats shaped <c>[K, H, W]</c>).
    /// </summary>
    public static TransformerChain<ITransformer> Segmenter(CatalogContext context, IDataView input, byte[] crateOnnx, CrateConfig config, int numClasses,
        PixelColumn pixels, string maskColumn, string? scoresColumn)
    {
        CheckSegmentationOutputs(pixels, maskColumn, scoresColumn);
        return Network(context, input, crateOnnx, config, pixels, scoresColumn == null ? [maskColumn] : [maskColumn, scoresColumn],
            graphInput => RowScoringGraph.ForSegmentation(crateOnnx, graphInput, numClasses, maskColumn, scoresColumn));
    }

    /// <summary>The checks <see cref="Segmenter"/> makes of its output names, for a trainer to make before it trains.</summary>
    /// <exception cref="ArgumentException">The two outputs share a name, or one hides the image column or takes a reserved name.</exception>
    public static void CheckSegmentationOutputs(PixelColumn pixels, string maskColumn, string? scoresColumn)
    {
        if (scoresColumn == maskColumn)
            throw new ArgumentException($"The predicted-mask and mask-scores columns are both named '{maskColumn}'.");
        CheckOutputName(maskColumn, pixels);
        if (scoresColumn != null) CheckOutputName(scoresColumn, pixels);
    }

    /// <summary>
    /// Image preparation -> <c>ApplyOnnxModel</c> over the row graph <paramref name="rowGraph"/> builds, whose outputs are the user's
    /// <paramref name="outputColumns"/> -> dropping the preparation's intermediate columns.
    /// </summary>
    private static TransformerChain<ITransformer> Network(CatalogContext context, IDataView input, byte[] crateOnnx, CrateConfig config,
        PixelColumn pixels, string[] outputColumns, Func<PixelInput, byte[]> rowGraph)
    {
        var (prepare, onnxInput) = Prepare(context.Transforms, pixels, config);
        var graph = rowGraph(new PixelInput(onnxInput, pixels.Source == PixelSource.Bytes, config));
        var (scoring, gpu) = context.OnnxScoring(crateOnnx, "Crate");
        var steps = prepare
            .Append<ITransformer>(scoring.ApplyOnnxModel(outputColumns, [onnxInput], new MemoryStream(graph), gpu, context.FallbackToCpu));
        if (pixels.Source == PixelSource.Image) steps = steps.Append<ITransformer>(context.Transforms.DropColumns(Intermediates(pixels)));
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
        foreach (var output in new[] { scoreColumn, predictedLabelColumn }) CheckOutputName(output, pixels);
    }

    /// <summary>An output column must not hide the image column nor take a name reserved for the chain's intermediate columns.</summary>
    private static void CheckOutputName(string output, PixelColumn pixels)
    {
        if (output == pixels.Name)
            throw new ArgumentException($"The output column '{output}' has the name of the image column; give it another name.");
        if (output.StartsWith("crate.", StringComparison.Ordinal))
            throw new ArgumentException($"Column names starting with 'crate.' are reserved for Crate's intermediate columns; '{output}' is one.");
    }
}
