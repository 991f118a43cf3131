using Crate.MLNet;
using Microsoft.ML;
using Microsoft.ML.Trainers.LightGbm;

namespace FeaturizerLightGbm;

/// <summary>Trains the model: CRATE features (white-box: sparse ISTA codes pooled in the class token) into LightGBM.</summary>
public partial class CrateLightGbmModel
{
    /// <summary>Label text -> key; image -> CRATE features; LightGBM; the predicted key back to the class name.</summary>
    public static IEstimator<ITransformer> BuildPipeline(MLContext ml, string crateOnnxPath, int iterations) =>
        ml.Transforms.Conversion.MapValueToKey("Label", "Label")
            .Append(ml.Transforms.ApplyCrateFeaturizer(crateOnnxPath, outputColumnName: "Features", inputColumnName: "Image"))
            .Append(ml.MulticlassClassification.Trainers.LightGbm(new LightGbmMulticlassTrainer.Options
            {
                LabelColumnName = "Label",
                FeatureColumnName = "Features",
                NumberOfIterations = iterations,
                NumberOfLeaves = 31,
                LearningRate = 0.1,
                Seed = 1,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel", "PredictedLabel"));

    /// <summary>Fits the pipeline on <paramref name="trainData"/>.</summary>
    public static ITransformer RetrainModel(MLContext ml, IDataView trainData, string crateOnnxPath, int iterations) =>
        BuildPipeline(ml, crateOnnxPath, iterations).Fit(trainData);

    /// <summary>Saves the model (the CRATE network inside) to <see cref="MLNetModelPath"/>.</summary>
    public static void SaveModel(MLContext ml, ITransformer model, DataViewSchema inputSchema) => ml.Model.Save(model, inputSchema, MLNetModelPath);
}
