namespace Crate.Core.Segmentation;

/// <summary>
/// How a segmentation checkpoint (safetensors) is laid out, shared by the TorchSharp side that writes it and the
/// ONNX exporter that reads it. Trunk tensors keep their own names (for CRATE the reference's state-dict keys), the
/// segmentation head's carry <see cref="HeadPrefix"/>; metadata holds the CRATE configuration under
/// <c>crate.config</c> plus the keys below.
/// </summary>
public static class SegmentationCheckpointFormat
{
    /// <summary>Metadata key: the trunk architecture, "crate" or "vit".</summary>
    public const string ArchitectureKey = "crate.architecture";
    /// <summary>Metadata key: the ViT baseline's MLP ratio.</summary>
    public const string MlpRatioKey = "vit.mlp_ratio";
    /// <summary>Metadata key: JSON array of mask class names, background first (present when a head is saved).</summary>
    public const string MaskClassesKey = "segmentation.classes";
    /// <summary>Prefix of the segmentation head's tensors.</summary>
    public const string HeadPrefix = "seg_head.";
    /// <summary>Prefix of the optional query head's tensors (mask classification by the class and prompt tokens).</summary>
    public const string QueryHeadPrefix = "query_head.";
    /// <summary>Whether a checkpoint tensor belongs to the query head: its name starts with <see cref="QueryHeadPrefix"/>.</summary>
    public static bool IsQueryHeadTensor(string name) => name.StartsWith(QueryHeadPrefix, StringComparison.Ordinal);
    /// <summary>Width of the query head's query and pixel embeddings.</summary>
    public const int QueryEmbeddingWidth = 64;
    /// <summary>Hidden channels of the head's pixel refinement (<c>Conv3x3(K+C, 32) -> ReLU -> Conv3x3(32, K)</c>).</summary>
    public const int RefineChannels = 32;
}
