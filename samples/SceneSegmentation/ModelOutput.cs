using Microsoft.ML.Data;

namespace SceneSegmentation;

/// <summary>The model's answer for one scene.</summary>
public class ModelOutput
{
    /// <summary>The class id of every pixel, row-major 64x64: 0 background, k the k-th object class (see <c>SceneSegmentationModel.ClassNames</c>).</summary>
    [ColumnName("PredictedMask")]
    public byte[] PredictedMask { get; set; } = [];
}
