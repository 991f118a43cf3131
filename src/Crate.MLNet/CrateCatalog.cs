using Crate.MLNet.Internal;
using Microsoft.ML;

namespace Crate.MLNet;

/// <summary>
/// Crate's entry points on <see cref="MLContext"/>: <c>mlContext.MulticlassClassification.Trainers.Crate(...)</c> trains a CRATE
/// image classifier; <c>mlContext.Transforms.ApplyCrateClassifier(...)</c> and <c>mlContext.Transforms.ApplyCrateFeaturizer(...)</c>
/// apply an exported one. Segmentation has its own catalog: <c>mlContext.Segmentation()</c> (<see cref="SegmentationCatalog"/>).
/// </summary>
public static class CrateCatalog
{
    /// <summary>Trains a CRATE image classifier (see <see cref="CrateImageClassificationTrainer"/>).</summary>
    /// <param name="catalog">The multiclass trainers catalog (<c>mlContext.MulticlassClassification.Trainers</c>).</param>
    /// <param name="labelColumnName">The key-typed label column.</param>
    /// <param name="imageColumnName">The image column: a pixel vector (bytes or floats, 0..255, <c>[C, H, W]</c>) or an <see cref="Microsoft.ML.Data.MLImage"/>.</param>
    /// <param name="preset">The trunk: <c>mini</c>, <c>tiny</c>, <c>small</c>, <c>base</c> or <c>large</c>.</param>
    /// <param name="epochs">Epochs to train.</param>
    /// <param name="batchSize">Images per optimiser step.</param>
    /// <param name="learningRate">Peak learning rate (AdamW).</param>
    public static CrateImageClassificationTrainer Crate(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = DefaultColumnNames.Label, string imageColumnName = DefaultColumnNames.Image, string preset = "mini",
        int epochs = 10, int batchSize = 128, double learningRate = 1e-3) =>
        catalog.Crate(new CrateImageClassificationTrainer.Options
        {
            LabelColumnName = labelColumnName, ImageColumnName = imageColumnName, Preset = preset,
            Epochs = epochs, BatchSize = batchSize, LearningRate = learningRate,
        });

    /// <summary>Trains a CRATE image classifier with every option (see <see cref="CrateImageClassificationTrainer.Options"/>).</summary>
    /// <param name="catalog">The multiclass trainers catalog (<c>mlContext.MulticlassClassification.Trainers</c>).</param>
    /// <param name="options">The options.</param>
    public static CrateImageClassificationTrainer Crate(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        CrateImageClassificationTrainer.Options options) =>
        new(CatalogContext.Of((object)catalog), options);

    /// <summary>Classifies images with an exported Crate ONNX model (see <see cref="CrateImageClassifierEstimator"/>).</summary>
    /// <param name="catalog">The transforms catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="modelFile">The exported ONNX model.</param>
    /// <param name="imageColumnName">The image column: an <see cref="Microsoft.ML.Data.MLImage"/> or a pixel vector.</param>
    /// <param name="scoreColumnName">The class probabilities column.</param>
    /// <param name="predictedLabelColumnName">The predicted class column (a key with the class names as values).</param>
    /// <exception cref="FileNotFoundException">No file at <paramref name="modelFile"/>.</exception>
    /// <exception cref="Crate.Onnx.Runtime.CrateOnnxException">The file is not a Crate ONNX model.</exception>
    public static CrateImageClassifierEstimator ApplyCrateClassifier(this TransformsCatalog catalog, string modelFile,
        string imageColumnName = DefaultColumnNames.Image, string scoreColumnName = DefaultColumnNames.Score,
        string predictedLabelColumnName = DefaultColumnNames.PredictedLabel) =>
        new(CatalogContext.Of(catalog), ExportedModel.Load(modelFile), imageColumnName, scoreColumnName, predictedLabelColumnName);

    /// <summary>Maps images to CRATE features with an exported Crate ONNX model (see <see cref="CrateImageFeaturizerEstimator"/>).</summary>
    /// <param name="catalog">The transforms catalog (<c>mlContext.Transforms</c>).</param>
    /// <param name="modelFile">The exported ONNX model.</param>
    /// <param name="outputColumnName">The features column.</param>
    /// <param name="inputColumnName">The image column: an <see cref="Microsoft.ML.Data.MLImage"/> or a pixel vector.</param>
    /// <exception cref="FileNotFoundException">No file at <paramref name="modelFile"/>.</exception>
    /// <exception cref="Crate.Onnx.Runtime.CrateOnnxException">The file is not a Crate ONNX model.</exception>
    public static CrateImageFeaturizerEstimator ApplyCrateFeaturizer(this TransformsCatalog catalog, string modelFile,
        string outputColumnName = DefaultColumnNames.Features, string inputColumnName = DefaultColumnNames.Image) =>
        new(CatalogContext.Of(catalog), ExportedModel.Load(modelFile), outputColumnName, inputColumnName);
}

/// <summary>The column names Crate's estimators use unless told otherwise (ML.NET's conventions).</summary>
public static class DefaultColumnNames
{
    /// <summary>The image column: an <see cref="Microsoft.ML.Data.MLImage"/> or a pixel vector.</summary>
    public const string Image = "Image";
    /// <summary>The label column (a key type).</summary>
    public const string Label = "Label";
    /// <summary>The features column.</summary>
    public const string Features = "Features";
    /// <summary>The class probabilities column.</summary>
    public const string Score = "Score";
    /// <summary>The predicted class column.</summary>
    public const string PredictedLabel = "PredictedLabel";
}
