using Crate.MLNet;
using Crate.Training;
using Crate.Training.Data;
using Microsoft.ML;

namespace FashionMnistClassification;

/// <summary>Trains the model: the pipeline Model Builder would generate, with Crate's trainer.</summary>
public partial class FashionMnistModel
{
    /// <summary>Label text -> key; CRATE on the pixels; the predicted key back to the class name.</summary>
    public static IEstimator<ITransformer> BuildPipeline(MLContext ml, Settings settings, Action<EpochMetrics>? onEpoch = null) =>
        ml.Transforms.Conversion.MapValueToKey("Label", "Label")
            .Append(ml.MulticlassClassification.Trainers.Crate(new CrateImageClassificationTrainer.Options
            {
                LabelColumnName = "Label",
                ImageColumnName = "Image",
                Preset = "mini",
                Epochs = settings.Epochs,
                BatchSize = 128,
                LearningRate = 1e-3,
                WarmupEpochs = 0.5,
                // Crop and flip pay off on long runs (the fmnist-91 recipe); a four-epoch run learns faster without them.
                Augmentation = Augmentation.None,
                ValidationFraction = 0.05,
                MaxStepsPerEpoch = settings.StepsPerEpoch,
                OnnxModelPath = settings.OnnxPath,
                MetricsCallback = onEpoch,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel", "PredictedLabel"));

    /// <summary>Fits the pipeline on <paramref name="trainData"/>.</summary>
    public static ITransformer RetrainModel(MLContext ml, IDataView trainData, Settings settings, Action<EpochMetrics>? onEpoch = null) =>
        BuildPipeline(ml, settings, onEpoch).Fit(trainData);

    /// <summary>Saves the model (the ONNX network inside) to <see cref="MLNetModelPath"/>.</summary>
    public static void SaveModel(MLContext ml, ITransformer model, DataViewSchema inputSchema) => ml.Model.Save(model, inputSchema, MLNetModelPath);
}
