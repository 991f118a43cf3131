using System.CommandLine;
using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Reports;
using Crate.Training;
using Crate.Training.Analysis;
using Crate.Core.Segmentation;
using Crate.Core.Weights;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using Spectre.Console;
using TorchSharp;

namespace Crate.Cli.Commands;

/// <summary><c>crate analyze</c>: white-box measurements of one or more checkpoints (CRATE or the ViT baseline), written as a report.</summary>
internal static class AnalyzeCommand
{
    public static Command Create()
    {
        var weights = new Option<FileInfo[]>("--weights")
        {
            Description = "Weights to analyse (.safetensors, or a training checkpoint .ckpt), CRATE or the ViT baseline ('crate train --arch vit'); " +
                          "repeat for several checkpoints, e.g. a run's epochs or CRATE beside the ViT (plotted together, in the order given).",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var randomInit = new Option<bool>("--random-init") { Description = "Also analyse a randomly initialised model of the first checkpoint's architecture and configuration (a baseline)." };
        var seed = new Option<int>("--seed") { Description = "Seed of the --random-init model.", DefaultValueFactory = _ => 0 };
        var data = new Option<string>("--data")
        {
            Description = $"Images to measure, read like 'crate train' reads them ('{DataSource.FashionMnist}', '{DataSource.Generated}', a folder or a .csv/.tsv list); the test split where the source has one.",
            DefaultValueFactory = _ => DataSource.FashionMnist,
        };
        var images = new Option<int>("--images") { Description = "Number of images to measure (the first N).", DefaultValueFactory = _ => 1000 };
        var attention = new Option<int>("--attention-images") { Description = "Images with attention maps (one per class first).", DefaultValueFactory = _ => 4 };
        var batch = new Option<int>("--batch-size") { Description = "Images per forward pass.", DefaultValueFactory = _ => 100 };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for the report (created if needed).", Required = true };
        var command = new Command("analyze", "White-box report: coding rate and sparsity per layer, attention maps, dictionary and subspace views.")
        {
            weights, randomInit, seed, data, images, attention, batch, output,
        };
        command.SetAction(parse =>
        {
            int count = parse.GetValue(images), perPass = parse.GetValue(batch);
            if (count < 1) throw new ArgumentException($"--images must be at least 1, got {count}.");
            if (perPass < 1) throw new ArgumentException($"--batch-size must be at least 1, got {perPass}.");
            if (parse.GetValue(attention) < 0) throw new ArgumentException($"--attention-images must be 0 or more, got {parse.GetValue(attention)}.");
            var files = parse.GetValue(weights)!;
            // Load every file's configuration first, so a bad path fails before minutes of measuring.
            var loaded = files.Select(f => Open(f, files)).ToArray();
            var checkpoints = loaded.Select(w => new ReportCheckpoint(w.Label, w.Path, w.Build)).ToList();
            if (parse.GetValue(randomInit))
            {
                var (config, architecture, mlpRatio) = (loaded[0].Config, loaded[0].Architecture, loaded[0].MlpRatio);
                int s = parse.GetValue(seed);
                checkpoints.Add(new ReportCheckpoint($"{Name(architecture)} random init (seed {s})", $"{Name(architecture)}({config.Preset}), torch.manual_seed({s})", () =>
                {
                    torch.manual_seed(s);
                    return Architectures.Create(architecture, config, mlpRatio);
                }));
            }
            // Images are read (and resized where needed) as the first checkpoint takes them.
            var dataset = DataSource.Load(parse.GetValue(data)!, DataSplit.Test, DataOptions.For(loaded[0].Config) with { Limit = count }).Data;
            var options = new WhiteBoxReportOptions
            {
                BatchSize = perPass,
                AttentionImages = parse.GetValue(attention),
                Command = "crate " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1).Select(Quote)),
            };
            var outDir = parse.GetValue(output)!.FullName;
            var report = Run(outDir, checkpoints, dataset, options);
            foreach (var c in report.Checkpoints)
            {
                Console.WriteLine($"{c.Label}: accuracy {(c.Measurements.Accuracy is { } a ? $"{100 * a:F2}%" : "n/a")}");
                Console.WriteLine($"  R^c per layer:      {string.Join("  ", c.Measurements.Layers.Select(l => $"{l.CodingRate.Mean:F1}"))}");
                Console.WriteLine($"  exact zeros in layer outputs: {string.Join("  ", c.Measurements.Layers.Select(l => $"{l.Sparsity.Mean:F3}"))}");
                Console.WriteLine($"  near zeros (|x| <= {c.Measurements.NearZeroTolerance} rms): {string.Join("  ", c.Measurements.Layers.Select(l => $"{l.NearZero.Mean:F3}"))}");
            }
            Console.WriteLine($"report: {Path.Combine(outDir, WhiteBoxReport.HtmlFile)}");
            Console.WriteLine($"numbers: {Path.Combine(outDir, WhiteBoxReport.JsonFile)}");
            return 0;
        });
        return command;
    }

    /// <summary>A model file opened: its shape, its network and how to build it.</summary>
    private sealed record Opened(string Label, string Path, CrateConfig Config, string Architecture, int MlpRatio, Func<IVisionTransformer> Build);

    /// <summary>
    /// Reads weights (CRATE, or a ViT baseline's trunk file) or a training checkpoint of either (labelled with its epoch). The label is
    /// the network and the file name without extension, with its relative folder when two files share a name.
    /// </summary>
    private static Opened Open(FileInfo file, FileInfo[] all)
    {
        if (!file.Exists) throw new FileNotFoundException($"Weights file '{file.FullName}' does not exist.");
        var name = Path.GetFileNameWithoutExtension(file.Name);
        var label = all.Count(f => Path.GetFileNameWithoutExtension(f.Name) == name) > 1
            ? Path.Combine(Path.GetRelativePath(Environment.CurrentDirectory, file.DirectoryName!), name)
            : name;
        if (string.Equals(file.Extension, ".ckpt", StringComparison.OrdinalIgnoreCase))
        {
            var checkpoint = Checkpoint.Load(file.FullName);
            return new Opened($"{Name(checkpoint.Architecture)} {label} (epoch {checkpoint.State.CompletedEpochs})", file.FullName, checkpoint.Config,
                checkpoint.Architecture, checkpoint.MlpRatio, checkpoint.CreateModel);
        }
        if (Safetensors.Read(file.FullName).Metadata.GetValueOrDefault(SegmentationCheckpointFormat.ArchitectureKey) == Architectures.Vit)
        {
            var vit = (VitModel)SegmentationCheckpoint.Load(file.FullName).Trunk;
            return new Opened($"{Name(Architectures.Vit)} {label}", file.FullName, vit.Config, Architectures.Vit, vit.MlpRatio, () => vit);
        }
        var weights = CrateWeights.Load(file.FullName);
        return new Opened($"{Name(Architectures.Crate)} {label}", file.FullName, weights.Config, Architectures.Crate, 4, () => Build(weights));
    }

    private static string Name(string architecture) => architecture == Architectures.Vit ? "ViT" : "CRATE";

    private static CrateModel Build(CrateWeights weights)
    {
        var model = new CrateModel(weights.Config);
        model.LoadWeights(weights);
        return model;
    }

    /// <summary>Runs the report with a progress bar on a terminal, or one line per stage when output is redirected.</summary>
    private static WhiteBoxReportData Run(string outDir, IReadOnlyList<ReportCheckpoint> checkpoints, ImageDataset data, WhiteBoxReportOptions options)
    {
        if (Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
        {
            string? stage = null;
            return WhiteBoxReport.Write(outDir, checkpoints, data, options, new Progress(p =>
            {
                if (p.Stage == stage) return;
                stage = p.Stage;
                Console.WriteLine($"[{100 * p.Fraction,3:F0}%] {p.Stage}");
            }));
        }
        WhiteBoxReportData? result = null;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("analysing", maxValue: 1);
                result = WhiteBoxReport.Write(outDir, checkpoints, data, options, new Progress(p =>
                {
                    task.Description = Markup.Escape(p.Stage);
                    task.Value = p.Fraction;
                }));
            });
        return result!;
    }

    private static string Quote(string arg) => arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,".Contains(c)) ? arg : $"'{arg.Replace("'", "'\\''")}'";

    /// <summary>Reports synchronously, in order (the BCL's Progress posts to the thread pool).</summary>
    private sealed class Progress(Action<ReportProgress> report) : IProgress<ReportProgress>
    {
        public void Report(ReportProgress value) => report(value);
    }
}
