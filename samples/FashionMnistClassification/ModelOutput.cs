using Microsoft.ML.Data;

namespace FashionMnistClassification;

/// <summary>The model's answer for one image.</summary>
public class ModelOutput
{
    /// <summary>The predicted class name.</summary>
    [ColumnName("PredictedLabel")]
    public string PredictedLabel { get; set; } = "";

    /// <summary>The probability of each class, in the order of the label's key values.</summary>
    [ColumnName("Score")]
    public float[] Score { get; set; } = [];
}
