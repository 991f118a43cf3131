using Microsoft.ML.Data;

namespace FeaturizerLightGbm;

/// <summary>LightGBM's answer for one image, from its CRATE features.</summary>
public class ModelOutput
{
    [ColumnName("PredictedLabel")]
    public string PredictedLabel { get; set; } = "";

    [ColumnName("Score")]
    public float[] Score { get; set; } = [];
}
