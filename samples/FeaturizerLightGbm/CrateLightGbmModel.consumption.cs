using Microsoft.ML;

namespace FeaturizerLightGbm;

/// <summary>Uses the trained model: one static <see cref="Predict"/> over a prediction engine created on first use.</summary>
public partial class CrateLightGbmModel
{
    /// <summary>The saved ML.NET model (CRATE featurizer + LightGBM).</summary>
    public static string MLNetModelPath { get; set; } = Path.GetFullPath("CrateLightGbmModel.zip");

    /// <summary>Created on first use; a prediction engine serves one caller at a time.</summary>
    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(CreatePredictEngine, isThreadSafe: true);

    /// <summary>Classifies one image.</summary>
    public static ModelOutput Predict(ModelInput input) => PredictEngine.Value.Predict(input);

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var ml = new MLContext();
        return ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(ml.Model.Load(MLNetModelPath, out _));
    }
}
