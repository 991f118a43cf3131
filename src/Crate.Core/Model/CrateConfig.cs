using System.Text.Json;
using System.Text.Json.Serialization;

namespace Crate.Core.Model;

/// <summary>How the classifier head pools the token sequence.</summary>
public enum Pooling
{
    /// <summary>Use the class token (token 0), as the reference does by default.</summary>
    Cls,
    /// <summary>Average all tokens, class token included.</summary>
    Mean,
}

/// <summary>
/// Complete description of a CRATE network: the trunk (width, depth, heads), the input geometry, the head,
/// and the preprocessing the weights expect. It travels with the weights (safetensors metadata) so a
/// weights file is self-describing for training, export and serving.
/// </summary>
public sealed record CrateConfig
{
    /// <summary>Token width (the reference's <c>dim</c>).</summary>
    public int Dim { get; init; } = 384;
    /// <summary>Number of MSSA + ISTA layers.</summary>
    public int Depth { get; init; } = 12;
    /// <summary>Number of attention heads (subspaces).</summary>
    public int Heads { get; init; } = 6;
    /// <summary>Width of one head's subspace.</summary>
    public int DimHead { get; init; } = 64;
    /// <summary>Input image height in pixels.</summary>
    public int ImageHeight { get; init; } = 224;
    /// <summary>Input image width in pixels.</summary>
    public int ImageWidth { get; init; } = 224;
    /// <summary>Side of the square patches; must divide both image sides.</summary>
    public int PatchSize { get; init; } = 16;
    /// <summary>Image channels (1 grayscale, 3 RGB).</summary>
    public int Channels { get; init; } = 3;
    /// <summary>Number of output classes.</summary>
    public int NumClasses { get; init; } = 1000;
    /// <summary>Dropout after the MSSA output projection.</summary>
    public double Dropout { get; init; }
    /// <summary>Dropout applied to the embedded tokens.</summary>
    public double EmbDropout { get; init; }
    /// <summary>Head pooling: class token (default) or mean over tokens.</summary>
    public Pooling Pool { get; init; } = Pooling.Cls;
    /// <summary>
    /// Learned prompt tokens (parameter <c>prompt_tokens</c>, <c>[1, k, dim]</c>) inserted right after the class token, without
    /// positional embedding: the trunk of a prompt-tuned model. Default 0: the reference network, with its exact parameters.
    /// </summary>
    public int PromptTokens { get; init; }
    /// <summary>ISTA step size eta.</summary>
    public double IstaStep { get; init; } = 0.1;
    /// <summary>ISTA sparsity penalty lambda.</summary>
    public double IstaLambda { get; init; } = 0.1;
    /// <summary>Name of the preset the trunk came from, or <c>custom</c>.</summary>
    public string Preset { get; init; } = "custom";
    /// <summary>Per-channel mean subtracted after scaling pixels to [0, 1]; empty means 0.5 for every channel.</summary>
    public float[] Mean { get; init; } = [];
    /// <summary>Per-channel standard deviation divided after subtracting the mean; empty means 0.5 for every channel.</summary>
    public float[] Std { get; init; } = [];
    /// <summary>Class names, index = class id; empty means "0", "1", ...</summary>
    public string[] ClassNames { get; init; } = [];

    /// <summary>Number of patches per image.</summary>
    [JsonIgnore] public int NumPatches => (ImageHeight / PatchSize) * (ImageWidth / PatchSize);
    /// <summary>Patch grid rows.</summary>
    [JsonIgnore] public int GridHeight => ImageHeight / PatchSize;
    /// <summary>Patch grid columns.</summary>
    [JsonIgnore] public int GridWidth => ImageWidth / PatchSize;
    /// <summary>Length of one flattened patch, <c>p*p*C</c>.</summary>
    [JsonIgnore] public int PatchDim => PatchSize * PatchSize * Channels;
    /// <summary>Width of all heads together, <c>heads*dim_head</c>.</summary>
    [JsonIgnore] public int InnerDim => Heads * DimHead;
    /// <summary>Tokens per image: the class token, the prompt tokens, then the patches.</summary>
    [JsonIgnore] public int TokenCount => FirstPatchToken + NumPatches;
    /// <summary>Index of the first patch token, after the class token and the <see cref="PromptTokens"/>.</summary>
    [JsonIgnore] public int FirstPatchToken => 1 + PromptTokens;

    /// <summary>Normalisation mean of channel <paramref name="channel"/>.</summary>
    public float MeanOf(int channel) => Mean.Length == 0 ? 0.5f : Mean[channel];
    /// <summary>Normalisation standard deviation of channel <paramref name="channel"/>.</summary>
    public float StdOf(int channel) => Std.Length == 0 ? 0.5f : Std[channel];

    /// <summary>The name of class <paramref name="index"/> (its number when no names are set).</summary>
    public string ClassName(int index) => index < ClassNames.Length ? ClassNames[index] : index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent field.</summary>
    public CrateConfig Validate()
    {
        void Require(bool ok, string message) { if (!ok) throw new ArgumentException($"Invalid CRATE configuration: {message}"); }
        Require(Dim > 0 && Depth > 0 && Heads > 0 && DimHead > 0, $"dim ({Dim}), depth ({Depth}), heads ({Heads}) and dim_head ({DimHead}) must be positive");
        Require(PatchSize > 0 && ImageHeight > 0 && ImageWidth > 0, $"image size {ImageHeight}x{ImageWidth} and patch size {PatchSize} must be positive");
        Require(ImageHeight % PatchSize == 0 && ImageWidth % PatchSize == 0, $"patch size {PatchSize} must divide the image size {ImageHeight}x{ImageWidth}");
        Require(Channels > 0, $"channels must be positive, got {Channels}");
        Require(NumClasses > 0, $"classes must be positive, got {NumClasses}");
        Require(PromptTokens >= 0, $"prompt tokens must be >= 0, got {PromptTokens}");
        Require(Dropout is >= 0 and < 1 && EmbDropout is >= 0 and < 1, "dropout rates must be in [0, 1)");
        Require(Mean.Length is 0 || Mean.Length == Channels, $"mean has {Mean.Length} values for {Channels} channels");
        Require(Std.Length is 0 || Std.Length == Channels, $"std has {Std.Length} values for {Channels} channels");
        Require(Std.All(s => s > 0), "std values must be positive");
        Require(ClassNames.Length == 0 || ClassNames.Length == NumClasses, $"{ClassNames.Length} class names given for {NumClasses} classes");
        return this;
    }

    /// <summary>Exact number of trainable parameters, computed from the shapes (matches the reference).</summary>
    public long ParameterCount()
    {
        long d = Dim, pd = PatchDim, inner = InnerDim;
        long embed = 2 * pd + (pd * d + d) + 2 * d + (long)(NumPatches + 1) * d + d + (long)PromptTokens * d;
        long layer = 2 * d + inner * d + (inner * d + d) + 2 * d + d * d;
        long head = 2 * d + d * NumClasses + NumClasses;
        return embed + Depth * layer + head;
    }

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        WriteIndented = false,
    };

    /// <summary>Serialises the configuration as compact JSON (snake_case keys).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Parses JSON written by <see cref="ToJson"/>; missing keys keep their defaults.</summary>
    public static CrateConfig FromJson(string json) =>
        (JsonSerializer.Deserialize<CrateConfig>(json, JsonOptions) ?? throw new FormatException("CRATE configuration JSON is empty")).Validate();

    /// <summary>Two configurations describe the same tensors (same shapes), whatever their names or normalisation.</summary>
    public bool SameShapesAs(CrateConfig other) =>
        Dim == other.Dim && Depth == other.Depth && Heads == other.Heads && DimHead == other.DimHead &&
        ImageHeight == other.ImageHeight && ImageWidth == other.ImageWidth && PatchSize == other.PatchSize &&
        Channels == other.Channels && NumClasses == other.NumClasses && PromptTokens == other.PromptTokens;

    /// <summary>A readable one-line summary.</summary>
    public override string ToString() =>
        $"CRATE-{Preset}: dim {Dim}, depth {Depth}, heads {Heads}x{DimHead}, {ImageHeight}x{ImageWidth}x{Channels} input, patch {PatchSize} ({NumPatches} patches), {NumClasses} classes, pool {Pool.ToString().ToLowerInvariant()}" +
        (PromptTokens > 0 ? $", {PromptTokens} prompt tokens" : "");
}
