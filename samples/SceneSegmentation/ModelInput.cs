using Microsoft.ML.Data;

namespace SceneSegmentation;

/// <summary>One scene: 64x64 grayscale pixels (0..255), channel-major <c>[1, 64, 64]</c>.</summary>
public class ModelInput
{
    [ColumnName("Image"), VectorType(1, 64, 64)]
    public byte[] Image { get; set; } = [];
}
