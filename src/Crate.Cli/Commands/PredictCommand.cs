using System.CommandLine;
using System.Globalization;
using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Training;
using Crate.Training.Model;

namespace Crate.Cli.Commands;

/// <summary><c>crate predict</c>: the top-k classes of image files, with probabilities.</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var weights = new Option<FileInfo>("--weights") { Description = "Weights file (safetensors written by crate train).", Required = true };
        var images = new Argument<string[]>("images") { Description = "Image files, or folders of them (searched recursively).", Arity = ArgumentArity.OneOrMore };
        var top = new Option<int>("--top") { Description = "Classes to show per image.", DefaultValueFactory = _ => 3 };
        var skip = new Option<bool>("--skip-invalid") { Description = "Report unreadable images and go on instead of stopping." };
        var command = new Command("predict", "Classify image files: top-k class names with probabilities, one line per image.") { weights, images, top, skip };
        command.SetAction(parse =>
        {
            var model = CrateModelWeights.LoadModel(parse.GetRequiredValue(weights).FullName);
            var config = model.Config;
            int k = Math.Clamp(parse.GetValue(top), 1, config.NumClasses);
            var files = parse.GetRequiredValue(images).SelectMany(Expand).ToList();
            var pixels = new List<byte[]>();
            var names = new List<string>();
            int failed = 0;
            foreach (var file in files)
            {
                try
                {
                    pixels.Add(ImageFile.Load(file, config.Channels, config.ImageHeight, config.ImageWidth));
                    names.Add(file);
                }
                catch (DataException e) when (parse.GetValue(skip))
                {
                    Console.Error.WriteLine($"skipped: {e.Message}");
                    failed++;
                }
            }
            if (names.Count == 0) throw new DataException("No readable images to classify.");
            var classes = Enumerable.Range(0, config.NumClasses).Select(config.ClassName).ToArray();
            var set = new ImageDataset("predict", config.Channels, config.ImageHeight, config.ImageWidth, pixels.SelectMany(p => p).ToArray(),
                new int[names.Count], classes, names.ToArray());
            var probabilities = CrateEvaluation.Probabilities(model, set);
            for (int i = 0; i < names.Count; i++)
            {
                var best = probabilities[i].Select((p, c) => (p, c)).OrderByDescending(x => x.p).Take(k);
                Console.WriteLine($"{names[i]}: " + string.Join(", ", best.Select(x => string.Create(CultureInfo.InvariantCulture, $"{classes[x.c]} {x.p:P1}"))));
            }
            return failed == 0 ? 0 : CliErrors.UserError;
        });
        return command;
    }

    /// <summary>A file as itself; a folder as its image files, recursively, in ordinal order.</summary>
    private static IEnumerable<string> Expand(string path)
    {
        if (Directory.Exists(path))
            return Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Where(ImageFile.HasImageExtension).Order(StringComparer.Ordinal);
        return [path];
    }
}
