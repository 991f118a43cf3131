using System.CommandLine;
using Crate.Core.Model;

namespace Crate.Cli.Commands;

/// <summary>Options shared by commands that build a model shape: preset overrides for input and head.</summary>
internal sealed class CliOptions
{
    public Option<int?> ImageSize { get; } = new("--image-size") { Description = "Square input side in pixels (default: the preset's)." };
    public Option<int?> PatchSize { get; } = new("--patch-size") { Description = "Patch side in pixels (default: the preset's)." };
    public Option<int?> Channels { get; } = new("--channels") { Description = "Input channels (default: the preset's)." };
    public Option<int?> Classes { get; } = new("--classes") { Description = "Number of classes (default: the preset's)." };

    public static CliOptions ModelShape() => new();

    public void AddTo(Command command)
    {
        command.Options.Add(ImageSize);
        command.Options.Add(PatchSize);
        command.Options.Add(Channels);
        command.Options.Add(Classes);
    }

    /// <summary>The preset named <paramref name="preset"/> with the given overrides applied and validated.</summary>
    public CrateConfig Build(ParseResult parse, string preset)
    {
        var cfg = CratePresets.ByName(preset);
        if (parse.GetValue(ImageSize) is int s) cfg = cfg with { ImageHeight = s, ImageWidth = s };
        if (parse.GetValue(PatchSize) is int p) cfg = cfg with { PatchSize = p };
        if (parse.GetValue(Channels) is int c) cfg = cfg with { Channels = c, Mean = [], Std = [] };
        if (parse.GetValue(Classes) is int k) cfg = cfg with { NumClasses = k, ClassNames = [] };
        return cfg.Validate();
    }
}
