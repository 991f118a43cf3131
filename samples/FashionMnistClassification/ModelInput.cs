using Microsoft.ML.Data;

namespace FashionMnistClassification;

/// <summary>One Fashion-MNIST image: 28x28 grayscale pixels (0..255) and its class name.</summary>
public class ModelInput
{
    [ColumnName("Image"), VectorType(1, 28, 28)]
    public byte[] Image { get; set; } = [];

    [ColumnName("Label")]
    public string Label { get; set; } = "";
}
