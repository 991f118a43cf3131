namespace Crate.Onnx.Export;

/// <summary>What <see cref="CrateOnnxExporter"/> puts into the graph beyond logits, probabilities and features.</summary>
public sealed record CrateOnnxExportOptions
{
    /// <summary>Also output every layer's MSSA attention, <c>attention_{i}</c> <c>[batch, heads, T, T]</c>. Default false.</summary>
    public bool IncludeAttention { get; init; }

    /// <summary>Also output the last layer's patch tokens, <c>patch_tokens</c> <c>[batch, patches, dim]</c>. Default false.</summary>
    public bool IncludePatchTokens { get; init; }

    /// <summary>
    /// Precision of the trunk's matrix products: <see cref="CrateOnnxPrecision.Float32"/> (default) or
    /// <see cref="CrateOnnxPrecision.Int8"/> (dynamic quantization with weight scales from the weights, no calibration
    /// data; standard ONNX operators only). Recorded in the <c>crate.precision</c> metadata.
    /// </summary>
    public CrateOnnxPrecision Precision { get; init; } = CrateOnnxPrecision.Float32;

    /// <summary>A supervised segmentation head to put on the last layer's patch tokens: adds <c>mask_logits</c> and <c>mask</c>. Default none.</summary>
    public SegmentationHeadWeights? Segmentation { get; init; }

    /// <summary>Extra metadata properties to store (keys must not start with <c>crate.</c>). Default none.</summary>
    public IReadOnlyDictionary<string, string> ExtraMetadata { get; init; } = new Dictionary<string, string>();
}
