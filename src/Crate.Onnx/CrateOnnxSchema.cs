using System.Reflection;

namespace Crate.Onnx;

/// <summary>
/// The contract of an exported Crate ONNX model: tensor names and metadata keys, shared by the exporter and
/// the runtime (and by any other consumer, such as the Node.js sample).
/// </summary>
/// <remarks>
/// <list type="table">
/// <listheader><term>tensor</term><description>shape and meaning</description></listheader>
/// <item><term><c>image</c> (input)</term><description>float32 <c>[batch, C, H, W]</c>, raw pixel values in [0, 255]
/// (what ML.NET's <c>ExtractPixels</c> yields by default). The graph computes <c>(x / 255 - mean[c]) / std[c]</c>.</description></item>
/// <item><term><c>logits</c></term><description><c>[batch, classes]</c>.</description></item>
/// <item><term><c>probabilities</c></term><description><c>[batch, classes]</c>, softmax of the logits.</description></item>
/// <item><term><c>features</c></term><description><c>[batch, dim]</c>: the pooled last-layer token (class token, or the mean of
/// all tokens for mean pooling) <b>before</b> the head's LayerNorm: the representation probes and featurizers use.</description></item>
/// <item><term><c>attention_{i}</c> (optional)</term><description><c>[batch, heads, T, T]</c>, layer i's MSSA attention
/// (softmax over keys), T = 1 + k + patches: token 0 the class token, then the k prompt tokens of a prompt-tuned model
/// (<see cref="Crate.Core.Model.CrateConfig.PromptTokens"/>, usually none), then the patches.</description></item>
/// <item><term><c>patch_tokens</c> (optional)</term><description><c>[batch, patches, dim]</c>: the last layer's ISTA output
/// for the patch tokens (class and prompt tokens dropped), row-major over the patch grid.</description></item>
/// <item><term><c>mask_logits</c> (segmentation models)</term><description>float32 <c>[batch, K, H, W]</c>: per-pixel logits of the K
/// mask classes (0 = background) at input resolution.</description></item>
/// <item><term><c>mask</c> (segmentation models)</term><description>int64 <c>[batch, H, W]</c>: per-pixel class ids, the arg-max of
/// <c>mask_logits</c> over classes.</description></item>
/// </list>
/// </remarks>
public static class CrateOnnxSchema
{
    /// <summary>The image input.</summary>
    public const string Image = "image";
    /// <summary>The logits output.</summary>
    public const string Logits = "logits";
    /// <summary>The softmax probabilities output.</summary>
    public const string Probabilities = "probabilities";
    /// <summary>The pooled feature output (before the head's LayerNorm).</summary>
    public const string Features = "features";
    /// <summary>The optional patch-token output.</summary>
    public const string PatchTokens = "patch_tokens";
    /// <summary>The segmentation logits output, <c>[batch, K, H, W]</c>.</summary>
    public const string MaskLogits = "mask_logits";
    /// <summary>The segmentation class-id output, int64 <c>[batch, H, W]</c>.</summary>
    public const string Mask = "mask";
    /// <summary>Name of the symbolic batch dimension.</summary>
    public const string BatchDimension = "batch";
    /// <summary>Input pixels are divided by this before normalisation: the input is 0..255.</summary>
    public const float PixelScale = 255f;

    /// <summary>The optional attention output of layer <paramref name="layer"/> (zero-based).</summary>
    public static string Attention(int layer) => $"attention_{layer}";

    /// <summary>Metadata key: version of this contract; readers reject versions they do not know.</summary>
    public const string FormatKey = "crate.format";
    /// <summary>The contract version this library writes and reads.</summary>
    public const string FormatVersion = "1";
    /// <summary>Metadata key: the Crate version that exported the model.</summary>
    public const string VersionKey = "crate.version";
    /// <summary>Metadata key: the full <see cref="Crate.Core.Model.CrateConfig"/> JSON (the authoritative description).</summary>
    public const string ConfigKey = "crate.config";
    /// <summary>Metadata key: the preset name.</summary>
    public const string PresetKey = "crate.preset";
    /// <summary>Metadata key: the class names as a JSON array, index = class id.</summary>
    public const string ClassNamesKey = "crate.class_names";
    /// <summary>Metadata key: input geometry, <c>CxHxW</c> (e.g. <c>1x28x28</c>).</summary>
    public const string ImageSizeKey = "crate.image_size";
    /// <summary>Metadata key: the in-graph preprocessing as JSON, <c>{"pixel_scale":255,"mean":[...],"std":[...]}</c>.</summary>
    public const string NormalizationKey = "crate.normalization";
    /// <summary>Metadata key (segmentation models): the mask class names as a JSON array, background first.</summary>
    public const string MaskClassNamesKey = "crate.mask_class_names";
    /// <summary>Metadata key: comma-separated output names present in this file.</summary>
    public const string OutputsKey = "crate.outputs";

    /// <summary>
    /// Metadata key: the numeric precision of the trunk's matrix products, <c>float32</c> or <c>int8</c> (see
    /// <see cref="CrateOnnxPrecision"/>). Files written before the key existed are float32.
    /// </summary>
    public const string PrecisionKey = "crate.precision";

    /// <summary>The metadata value of <paramref name="precision"/> (<c>float32</c>, <c>int8</c>).</summary>
    public static string PrecisionName(CrateOnnxPrecision precision) => precision switch
    {
        CrateOnnxPrecision.Float32 => "float32",
        CrateOnnxPrecision.Int8 => "int8",
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, "Unknown precision."),
    };

    /// <summary>The precision a metadata value names, or null for a value this library does not know.</summary>
    public static CrateOnnxPrecision? ParsePrecision(string name) =>
        Enum.GetValues<CrateOnnxPrecision>().Where(p => PrecisionName(p) == name).Cast<CrateOnnxPrecision?>().FirstOrDefault();

    /// <summary>The Crate version string written into exported models (assembly informational version, without build metadata).</summary>
    public static string CrateVersion { get; } =
        (typeof(CrateOnnxSchema).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0")
        .Split('+')[0];
}

/// <summary>The numeric precision of an exported model's trunk (the large matrix products).</summary>
public enum CrateOnnxPrecision
{
    /// <summary>Every product in float32: the model's own function to about 1e-6.</summary>
    Float32,

    /// <summary>
    /// Dynamic int8 quantization of the trunk's weight matrices (patch embedding, the MSSA projections and the
    /// folded ISTA step; the head stays float32): weights stored as int8 with one symmetric scale per output
    /// column, taken from the weights themselves (no calibration data); at run time each product's input is
    /// quantized to uint8 over its whole tensor (<c>DynamicQuantizeLinear</c>), multiplied in integers
    /// (<c>MatMulInteger</c>) and scaled back to float32. LayerNorm, attention and softmax stay float32. Only
    /// standard ONNX operators; ONNX Runtime's CPU provider fuses each product into one int8 kernel.
    /// </summary>
    Int8,
}
