using Crate.MLNet.Internal;
using Microsoft.ML;

namespace Crate.MLNet;

/// <summary>
/// Crate's entry points on <see cref="MLContext"/>: <c>mlContext.MulticlassClassification.Trainers.Crate(...)</c> trains a CRATE
/// image classifier; <c>mlContext.Transforms.ApplyCrateClassifier(...)</c> and <c>mlContext.Transforms.ApplyCrateFeaturizer(...)</c>
/// apply an exported one.
/// </summary>
public static class CrateCatalog
{
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
