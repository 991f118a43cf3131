using Crate.Core.Model;
using Crate.MLNet.Internal;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet;

/// <summary>
/// Classifies images with an already trained, exported Crate model (an ONNX file written by
/// <c>crate export</c>, <see cref="CrateImageClassificationTrainer.Options.OnnxModelPath"/> or <c>CrateOnnxExporter</c>).
/// Create it with <see cref="CrateCatalog.ApplyCrateClassifier"/>.
/// </summary>
/// <remarks>
/// <list type="table">
/// <listheader><term>column</term><description>type and meaning</description></listheader>
/// <item><term>input: image (default <c>Image</c>)</term><description>An <see cref="MLImage"/> (resized to the model's size; channels
/// extracted as the model needs), or a known-size vector of <see cref="float"/> or <see cref="byte"/> pixels holding exactly one
/// <c>C x H x W</c> image of the model's size, values 0..255, channel-major.</description></item>
/// <item><term>output: <c>Score</c></term><description>Vector of <see cref="float"/>, one probability per class (softmax); slot names are the class names.</description></item>
/// <item><term>output: <c>PredictedLabel</c></term><description>Key type over the classes; its key values are the class names
/// (so <c>MapKeyToValue</c> gives the class name and <c>MulticlassClassification.Evaluate</c> reports per-class results by name).</description></item>
/// </list>
/// <para>
/// <see cref="Fit"/> trains nothing: it checks the input and returns a chain of ML.NET's own transformers
/// (image preparation, <c>ApplyOnnxModel</c> for the logits, ML.NET's multiclass prediction transformer for <c>Score</c> and
/// <c>PredictedLabel</c>, <c>DropColumns</c>). The chain saves and loads with
/// <c>mlContext.Model.Save</c>/<c>Load</c>, the ONNX bytes inside the .zip, and scores in a process that references only
/// ML.NET and ONNX Runtime. It scores one row at a time, as <c>ApplyOnnxModel</c> does; <see cref="CrateBatchScorer"/> scores in batches.
/// <see cref="MLContext.GpuDeviceId"/> and <see cref="MLContext.FallbackToCpu"/> choose the ONNX Runtime device.
/// </para>
/// <para>
/// <see cref="MLImage"/> columns go through ML.NET's image transforms, built (as Crate.MLNet is) against SkiaSharp 2.88. In an
/// application that also loads SkiaSharp 3 (ScottPlot, Crate.Reports) they fail when reading pixels; use pixel vectors there.
/// </para>
/// </remarks>
public sealed class CrateImageClassifierEstimator : IEstimator<TransformerChain<ITransformer>>
{
    private readonly CatalogContext _context;
    private readonly ExportedModel _model;
    private readonly string _imageColumn;
    private readonly string _scoreColumn;
    private readonly string _predictedLabelColumn;

    internal CrateImageClassifierEstimator(CatalogContext context, ExportedModel model, string imageColumnName, string scoreColumnName, string predictedLabelColumnName)
    {
        _context = context;
        _model = model;
        _imageColumn = imageColumnName;
        _scoreColumn = scoreColumnName;
        _predictedLabelColumn = predictedLabelColumnName;
    }

    /// <summary>The configuration of the model (input size, classes and their names), read from the ONNX file's metadata.</summary>
    public CrateConfig ModelConfig => _model.Config;

    /// <summary>Checks the image column of <paramref name="input"/> and builds the scoring chain.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The image column is missing, of another type, or of another size; the message names it.</exception>
    /// <exception cref="ArgumentException">A class name equals an input column name.</exception>
    public TransformerChain<ITransformer> Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var pixels = PixelColumn.Resolve(input.Schema, _imageColumn);
        return ScoringChain.Classifier(_context, input, _model.Bytes, _model.Config, pixels, _scoreColumn, _predictedLabelColumn);
    }

    /// <summary>The input columns plus <c>Score</c> and <c>PredictedLabel</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The image column is missing or of a type Crate cannot read.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        PixelColumn.Check(inputSchema, _imageColumn);
        return OutputSchema.Classification(inputSchema, _scoreColumn, _predictedLabelColumn);
    }
}
