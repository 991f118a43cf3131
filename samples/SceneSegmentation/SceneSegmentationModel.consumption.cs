using Microsoft.ML;

namespace SceneSegmentation;

/// <summary>Uses the trained model: one static <see cref="Predict"/> over a prediction engine created on first use.</summary>
public partial class SceneSegmentationModel
{
    /// <summary>The saved ML.NET model (written by <see cref="SaveModel"/>).</summary>
    public static string MLNetModelPath { get; set; } = Path.GetFullPath("SceneSegmentationModel.zip");

    /// <summary>Created on first use; a prediction engine serves one caller at a time.</summary>
    public static readonly Lazy<PredictionEngine<ModelInput, ModelOutput>> PredictEngine = new(CreatePredictEngine, isThreadSafe: true);

    /// <summary>Segments one scene.</summary>
    public static ModelOutput Predict(ModelInput input) => PredictEngine.Value.Predict(input);

    private static PredictionEngine<ModelInput, ModelOutput> CreatePredictEngine()
    {
        var ml = new MLContext();
        var model = ml.Model.Load(MLNetModelPath, out _);
        return ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
    }
}
