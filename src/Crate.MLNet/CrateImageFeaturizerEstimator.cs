using Crate.Core.Model;
using Crate.MLNet.Internal;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet;

/// <summary>
/// Maps images to CRATE features with an exported Crate model: the pooled last-layer token (the class token, or the mean
/// of all tokens for mean-pooled models) before the classifier head, the ONNX model's <c>features</c> output. Any ML.NET
/// trainer (SDCA, LightGBM, ...) then learns on white-box features. Create it with <see cref="CrateCatalog.ApplyCrateFeaturizer"/>.
/// </summary>
/// <remarks>
/// <list type="table">
/// <listheader><term>column</term><description>type and meaning</description></listheader>
/// <item><term>input: image (default <c>Image</c>)</term><description>An <see cref="MLImage"/>, or a known-size vector of <see cref="float"/>
/// or <see cref="byte"/> pixels holding one <c>C x H x W</c> image of the model's size, values 0..255, channel-major.</description></item>
/// <item><term>output: features (default <c>Features</c>)</term><description>Vector of <c>dim</c> <see cref="float"/> values
/// (192 for the <c>mini</c> preset), not normalised (ISTA codes are sparse and non-negative; the class token is a sum of them).</description></item>
/// </list>
/// <para>
/// <see cref="Fit"/> trains nothing; it returns a chain of ML.NET's own transformers (image preparation and <c>ApplyOnnxModel</c>) that
/// saves, loads and scores without Crate. See <see cref="CrateImageClassifierEstimator"/> for devices and for <see cref="MLImage"/> columns.
/// </para>
/// </remarks>
public sealed class CrateImageFeaturizerEstimator : IEstimator<TransformerChain<ITransformer>>
{
    private readonly CatalogContext _context;
    private readonly ExportedModel _model;
    private readonly string _outputColumn;
    private readonly string _inputColumn;

    internal CrateImageFeaturizerEstimator(CatalogContext context, ExportedModel model, string outputColumnName, string inputColumnName)
    {
        _context = context;
        _model = model;
        _outputColumn = outputColumnName;
        _inputColumn = inputColumnName;
    }

    /// <summary>The configuration of the model (input size and feature width <c>Dim</c>), read from the ONNX file's metadata.</summary>
    public CrateConfig ModelConfig => _model.Config;

    /// <summary>Checks the image column of <paramref name="input"/> and builds the featurizing chain.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The image column is missing, of another type, or of another size; the message names it.</exception>
    public TransformerChain<ITransformer> Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var pixels = PixelColumn.Resolve(input.Schema, _inputColumn);
        return ScoringChain.Featurizer(_context, input, _model.Bytes, _model.Config, pixels, _outputColumn);
    }

    /// <summary>The input columns plus the features column.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The image column is missing or of a type Crate cannot read.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        PixelColumn.Check(inputSchema, _inputColumn);
        return OutputSchema.Features(inputSchema, _outputColumn);
    }
}
