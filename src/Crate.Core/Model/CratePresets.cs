namespace Crate.Core.Model;

/// <summary>
/// The reference's named trunks. Presets fix width, depth and heads only; image size, patch size, channels
/// and classes default to the ImageNet setting (224, 16, 3, 1000) and are free to change.
/// </summary>
public static class CratePresets
{
    /// <summary>CRATE-T: dim 384, depth 12, 6 heads of 64.</summary>
    public static CrateConfig Tiny => new() { Preset = "tiny", Dim = 384, Depth = 12, Heads = 6, DimHead = 64 };
    /// <summary>CRATE-S: dim 576, depth 12, 12 heads of 48.</summary>
    public static CrateConfig Small => new() { Preset = "small", Dim = 576, Depth = 12, Heads = 12, DimHead = 48 };
    /// <summary>CRATE-B: dim 768, depth 12, 12 heads of 64.</summary>
    public static CrateConfig Base => new() { Preset = "base", Dim = 768, Depth = 12, Heads = 12, DimHead = 64 };
    /// <summary>CRATE-L: dim 1024, depth 24, 16 heads of 64.</summary>
    public static CrateConfig Large => new() { Preset = "large", Dim = 1024, Depth = 24, Heads = 16, DimHead = 64 };
    /// <summary>
    /// A small trunk for 28x28 grayscale data (Fashion-MNIST): dim 192, depth 6, 6 heads of 32, patch 4.
    /// The size used by the benchmarks and the demo.
    /// </summary>
    public static CrateConfig Mini => new()
    {
        Preset = "mini", Dim = 192, Depth = 6, Heads = 6, DimHead = 32,
        ImageHeight = 28, ImageWidth = 28, PatchSize = 4, Channels = 1, NumClasses = 10,
        Mean = [0.2860f], Std = [0.3530f],
    };

    /// <summary>All preset names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["tiny", "small", "base", "large", "mini"];

    /// <summary>The preset called <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">The name is not a preset; the message lists the valid ones.</exception>
    public static CrateConfig ByName(string name) => name.ToLowerInvariant() switch
    {
        "tiny" or "t" => Tiny,
        "small" or "s" => Small,
        "base" or "b" => Base,
        "large" or "l" => Large,
        "mini" => Mini,
        _ => throw new ArgumentException($"Unknown CRATE preset '{name}'. Valid presets: {string.Join(", ", Names)}."),
    };
}
