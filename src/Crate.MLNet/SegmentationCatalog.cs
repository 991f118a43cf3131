using Crate.Core.Data.Segmentation;
using Crate.Core.Segmentation;
using Crate.MLNet.Internal;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet;

/// <summary>
/// Semantic segmentation on an <see cref="MLContext"/>, which has no segmentation catalog of its own:
/// <c>mlContext.Segmentation().Trainers.Crate(...)</c> trains, <c>mlContext.Segmentation().Evaluate(...)</c> measures.
/// Get it with <see cref="CrateSegmentationCatalogExtensions.Segmentation"/>.
/// </summary>
public sealed class SegmentationCatalog
{
    internal SegmentationCatalog(CatalogContext context)
    {
        Trainers = new SegmentationTrainers(context);
    }

    /// <summary>The segmentation trainers.</summary>
    public SegmentationTrainers Trainers { get; }

    /// <summary>
    /// Compares predicted masks with true ones over the whole data set (one confusion matrix, as PASCAL VOC does): pixel accuracy,
    /// IoU of every class, mean IoU over the classes present in either, and foreground IoU. Pixels whose true id is 255 are not counted.
    /// </summary>
    /// <param name="data">Scored data: the true masks and the predicted ones (e.g. the output of a <see cref="CrateSegmentationTrainer"/>'s model).</param>
    /// <param name="classNames">The class names, background first, index = class id.</param>
    /// <param name="maskColumnName">The true masks: byte vectors of class ids (255 = ignore).</param>
    /// <param name="predictedMaskColumnName">The predicted masks: byte vectors of the same length.</param>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or is not a byte vector, the lengths differ, or an id is outside the classes;
    /// the message names the column (and row).</exception>
    /// <exception cref="ArgumentException">Two classes have the same name, or there are fewer than two.</exception>
    public CrateSegmentationMetrics Evaluate(IDataView data, IReadOnlyList<string> classNames,
        string maskColumnName = CrateSegmentationTrainer.DefaultMaskColumnName, string predictedMaskColumnName = CrateSegmentationTrainer.DefaultPredictedMaskColumnName)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(classNames);
        if (classNames.Distinct(StringComparer.Ordinal).Count() != classNames.Count)
            throw new ArgumentException($"The class names [{string.Join(", ", classNames)}] name a class twice; per-class IoU is reported by name.", nameof(classNames));
        var truth = MaskColumn.Resolve(data.Schema, maskColumnName);
        var predicted = MaskColumn.Resolve(data.Schema, predictedMaskColumnName, "predicted mask");
        if (truth.Length != predicted.Length)
            throw new ArgumentOutOfRangeException(nameof(data),
                $"The mask column '{truth.Name}' holds {truth.Length} class ids per row, the predicted mask column '{predicted.Name}' {predicted.Length}; they must describe the same pixels.");
        var metrics = new SegmentationMetrics(classNames.Count, SegmentationDataset.IgnoreIndex, classNames);
        using var cursor = data.GetRowCursor([data.Schema[truth.Name], data.Schema[predicted.Name]]);
        var getTruth = cursor.GetGetter<VBuffer<byte>>(data.Schema[truth.Name]);
        var getPredicted = cursor.GetGetter<VBuffer<byte>>(data.Schema[predicted.Name]);
        VBuffer<byte> t = default, p = default;
        var truthIds = new byte[truth.Length];
        var predictedIds = new byte[predicted.Length];
        while (cursor.MoveNext())
        {
            getTruth(ref t);
            getPredicted(ref p);
            t.CopyTo(truthIds);
            p.CopyTo(predictedIds);
            try
            {
                metrics.Add(truthIds, predictedIds);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentOutOfRangeException(
                    $"Row {cursor.Position} of the mask column '{truth.Name}' / predicted mask column '{predicted.Name}': {e.Message} " +
                    $"(classes: {string.Join(", ", classNames)}; 255 = ignore).", e);
            }
        }
        return new CrateSegmentationMetrics(metrics);
    }

    /// <summary>As <see cref="Evaluate(IDataView, IReadOnlyList{string}, string, string)"/>, with the classes named by their ids ("0", "1", ...).</summary>
    /// <param name="data">Scored data.</param>
    /// <param name="numClasses">Number of classes, background included.</param>
    /// <param name="maskColumnName">The true masks.</param>
    /// <param name="predictedMaskColumnName">The predicted masks.</param>
    public CrateSegmentationMetrics Evaluate(IDataView data, int numClasses,
        string maskColumnName = CrateSegmentationTrainer.DefaultMaskColumnName, string predictedMaskColumnName = CrateSegmentationTrainer.DefaultPredictedMaskColumnName) =>
        Evaluate(data, Enumerable.Range(0, numClasses).Select(k => k.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray(), maskColumnName, predictedMaskColumnName);
}

/// <summary>The segmentation trainers: <c>mlContext.Segmentation().Trainers</c>.</summary>
public sealed class SegmentationTrainers
{
    private readonly CatalogContext _context;

    internal SegmentationTrainers(CatalogContext context) => _context = context;

    /// <summary>Trains a CRATE segmentation model (see <see cref="CrateSegmentationTrainer"/>).</summary>
    /// <param name="imageColumnName">The image column: a pixel vector (bytes or floats, 0..255, <c>[C, H, W]</c>) or an <see cref="MLImage"/>.</param>
    /// <param name="maskColumnName">The mask column: per-pixel class ids, bytes, <c>H x W</c> (255 = ignore).</param>
    /// <param name="preset">The trunk: <c>mini</c>, <c>tiny</c>, <c>small</c>, <c>base</c> or <c>large</c>.</param>
    /// <param name="patchSize">Patch side; must divide the image size.</param>
    /// <param name="epochs">Epochs to train.</param>
    /// <param name="batchSize">Images per optimiser step.</param>
    /// <param name="learningRate">Peak learning rate (AdamW).</param>
    public CrateSegmentationTrainer Crate(string imageColumnName = DefaultColumnNames.Image, string maskColumnName = CrateSegmentationTrainer.DefaultMaskColumnName,
        string preset = "mini", int patchSize = 8, int epochs = 10, int batchSize = 64, double learningRate = 1e-3) =>
        Crate(new CrateSegmentationTrainer.Options
        {
            ImageColumnName = imageColumnName, MaskColumnName = maskColumnName, Preset = preset, PatchSize = patchSize,
            Epochs = epochs, BatchSize = batchSize, LearningRate = learningRate,
        });

    /// <summary>Trains a CRATE segmentation model with every option (see <see cref="CrateSegmentationTrainer.Options"/>).</summary>
    /// <param name="options">The options.</param>
    public CrateSegmentationTrainer Crate(CrateSegmentationTrainer.Options options) => new(_context, options);
}

/// <summary>The entry point of Crate's segmentation catalog.</summary>
public static class CrateSegmentationCatalogExtensions
{
    /// <summary>
    /// Segmentation on <paramref name="mlContext"/>: <c>mlContext.Segmentation().Trainers.Crate(...)</c> and <c>mlContext.Segmentation().Evaluate(...)</c>.
    /// A method rather than a property because ML.NET's catalogs are properties of <see cref="MLContext"/> itself, which only ML.NET can add.
    /// </summary>
    /// <param name="mlContext">The context (its seed, log and <see cref="MLContext.GpuDeviceId"/> are used).</param>
    public static SegmentationCatalog Segmentation(this MLContext mlContext)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return new SegmentationCatalog(CatalogContext.Of(mlContext.Transforms));
    }
}
