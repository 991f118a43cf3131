using System.CommandLine;
using Crate.Core.Data;
using Crate.Core.Model;

namespace Crate.Cli.Commands;

/// <summary>The data options commands share: the source, a limit and what to do with invalid images.</summary>
internal sealed class DataOptions
{
    public Option<string?> Data { get; } = new("--data")
    {
        Description = $"Data: '{DataSource.FashionMnist}', '{DataSource.Generated}', a folder with one subfolder per class (or train/ and test/ folders of those), or a .csv/.tsv list of path,label rows.",
    };
    public Option<int?> Limit { get; } = NumberOption.Integer("--limit", "Use at most this many images (quick runs).");
    public Option<bool> SkipInvalid { get; } = new("--skip-invalid") { Description = "Skip unreadable images and unknown labels (counted) instead of stopping at the first." };

    public void AddTo(Command command)
    {
        command.Options.Add(Data);
        command.Options.Add(Limit);
        command.Options.Add(SkipInvalid);
    }

    /// <summary>The source named by --data, or <paramref name="fallback"/>.</summary>
    public string Spec(ParseResult parse, string fallback) => parse.GetValue(Data) ?? fallback;

    /// <summary>Reads split <paramref name="split"/> of the source with <paramref name="read"/> (--limit and --skip-invalid added), reporting skipped items.</summary>
    public ImageDataset Load(ParseResult parse, string fallback, DataSplit split, ImageReadOptions read, int seed = 0)
    {
        var spec = Spec(parse, fallback);
        var result = DataSource.Load(spec, split, read with { Limit = read.Limit ?? parse.GetValue(Limit), SkipInvalid = parse.GetValue(SkipInvalid) }, seed);
        if (result.Skipped.Count > 0)
            Console.Error.WriteLine($"warning: skipped {result.Skipped.Count} invalid item(s) of '{spec}'; first: {result.Skipped[0]}");
        return result.Data;
    }

    /// <summary>Read options that give images exactly as <paramref name="model"/> takes them, labelled by its classes.</summary>
    public static ImageReadOptions For(CrateConfig model) => new()
    {
        Height = model.ImageHeight, Width = model.ImageWidth, Channels = model.Channels,
        ClassNames = model.ClassNames.Length > 0 ? model.ClassNames : null,
    };
}
