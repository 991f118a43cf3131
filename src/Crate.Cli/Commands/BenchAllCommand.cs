using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Crate.Cli.Reporting;
using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Onnx;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using Crate.Training;
using Crate.Training.Model;
using Microsoft.ML.OnnxRuntime;
using Spectre.Console;
using TorchSharp;
using static Crate.Cli.Reporting.BenchmarkFile;

namespace Crate.Cli.Commands;

/// <summary>
/// <c>crate bench all</c>: the inference and precision figures of one machine in one run: ONNX Runtime float32 vs
/// int8 vs TorchSharp eager on the 28x28 model, utilisation against ONNX Runtime's MatMul ceilings measured in the same
/// run, int8-vs-float32 top-1 on the Fashion-MNIST test set, optionally the bfloat16-vs-float32 training delta, peak
/// memory per phase, and images/s of larger presets at several batch sizes.
/// </summary>
internal static class BenchAllCommand
{
    private const string SectionStart = "<!-- bench-all:start -->";
    private const string SectionEnd = "<!-- bench-all:end -->";

    /// <summary>Everything a run needs, after <c>--quick</c> has replaced the defaults it overrides.</summary>
    private sealed record Settings(
        string Preset, FileInfo? Weights, int Batch, TimeSpan Duration, int Rounds, int CeilingSize, int TrainEpochs, int? TrainImages, int? TestImages,
        string[]? PrecisionRuns, bool PrecisionTrain, string[] ScalingPresets, int ScalingImageSize, int[] ScalingBatches, bool Quick);

    /// <summary>One phase's wall time and peak memory.</summary>
    private sealed record Phase(string Name, TimeSpan Wall, double ResidentMiB, double ManagedMiB);

    private sealed record InferenceRow(string Engine, double ImagesPerSecond, string Versus, string MaxDiff);

    private sealed record Accuracy(string Source, int Images, double Float32Top1, double Int8Top1, double Agreement);

    private sealed record PrecisionDelta(string Source, double BFloat16Top1, double Float32Top1);

    private sealed record ScalingRow(string Model, double MflopPerImage, int Batch, double Float32, double Int8);

    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "Model of the inference and accuracy phases (a 28x28x1 model measures accuracy on Fashion-MNIST).", DefaultValueFactory = _ => "mini" };
        var weights = new Option<FileInfo?>("--weights")
        {
            Description = "Trained weights for the int8-vs-float32 accuracy (and the timings). Default: train a short model first " +
                          "(the fmnist-91 recipe cut to --train-epochs epochs, about 1.5 minutes per epoch on 2 quiet cores).",
        };
        var batch = new Option<int>("--batch") { Description = "Batch size of the inference comparison and the accuracy pass.", DefaultValueFactory = _ => 64 };
        var seconds = new Option<double>("--seconds") { Description = "Measuring time per engine and case (split into 5 alternating rounds).", DefaultValueFactory = _ => 5 };
        var ceilingSize = new Option<int>("--ceiling-size") { Description = "Side n of the n^3 MatMuls measuring the float32 and int8 ceilings.", DefaultValueFactory = _ => 2048 };
        var trainEpochs = new Option<int>("--train-epochs") { Description = "Epochs of the short model trained when no --weights are given.", DefaultValueFactory = _ => 2 };
        var precisionRuns = new Option<string?>("--precision-runs")
        {
            Description = "Two training run folders (or their metrics.json), comma-separated, one trained in bfloat16 and one in float32 with otherwise " +
                          "the same options: their test top-1 difference is reported.",
        };
        var precisionTrain = new Option<bool>("--precision-train")
        {
            Description = "Measure the bfloat16-vs-float32 training delta by training the short model in both precisions (same seed and recipe; " +
                          "the float32 twin takes about twice as long). Off by default.",
        };
        var scalingPresets = new Option<string>("--scaling-presets") { Description = "Presets whose images/s are measured for planning.", DefaultValueFactory = _ => "tiny,small" };
        var scalingImageSize = new Option<int>("--scaling-image-size") { Description = "Square input side of the scaling presets.", DefaultValueFactory = _ => 224 };
        var scalingBatches = new Option<string>("--scaling-batches") { Description = "Comma-separated batch sizes of the scaling presets.", DefaultValueFactory = _ => "1,8,32" };
        var quick = new Option<bool>("--quick")
        {
            Description = "Smoke test in seconds: tiny timings and ceiling, a short model trained on 512 images, 500 test images, " +
                          "scaling presets at 32x32 with batches 1 and 4. The figures mean nothing; the table's shape does.",
        };
        var record = new Option<FileInfo?>("--record") { Description = "Markdown file whose bench-all section is replaced (default: BENCHMARKS.md at the repository root)." };
        var noRecord = new Option<bool>("--no-record") { Description = "Print only; do not update the benchmarks file." };
        var command = new Command("all",
            "Everything in one run: ONNX Runtime float32 vs int8 vs TorchSharp eager, utilisation against the MatMul ceilings, int8 (and optionally " +
            "bfloat16 training) accuracy deltas on Fashion-MNIST, peak memory per phase, and images/s of larger presets.")
        {
            preset, weights, batch, seconds, ceilingSize, trainEpochs, precisionRuns, precisionTrain, scalingPresets, scalingImageSize, scalingBatches, quick, record, noRecord,
        };
        command.SetAction(parse =>
        {
            bool isQuick = parse.GetValue(quick);
            var settings = new Settings(
                parse.GetValue(preset)!, parse.GetValue(weights), parse.GetValue(batch),
                TimeSpan.FromSeconds(isQuick ? 0.1 : parse.GetValue(seconds)), isQuick ? 1 : InferenceBench.Rounds, isQuick ? 256 : parse.GetValue(ceilingSize),
                isQuick ? 1 : parse.GetValue(trainEpochs), isQuick ? 512 : null, isQuick ? 500 : null,
                parse.GetValue(precisionRuns)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), parse.GetValue(precisionTrain),
                parse.GetValue(scalingPresets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                isQuick ? 32 : parse.GetValue(scalingImageSize),
                isQuick ? [1, 4] : InferenceBench.BatchSizes(parse.GetValue(scalingBatches)!, "--scaling-batches"), isQuick);
            Validate(settings);
            var markdown = Run(settings, CommandLine());
            RecordUnless(parse.GetValue(noRecord), parse.GetValue(record), markdown, SectionStart, SectionEnd);
            return 0;
        });
        return command;
    }

    private static void Validate(Settings s)
    {
        if (s.Batch < 1 || s.Duration <= TimeSpan.Zero || s.CeilingSize < 1 || s.TrainEpochs < 1 || s.ScalingImageSize < 1)
            throw new ArgumentException("--batch, --seconds, --ceiling-size, --train-epochs and --scaling-image-size must be positive.");
        if (s.PrecisionRuns is { Length: not 2 })
            throw new ArgumentException($"--precision-runs takes two run folders (or metrics.json files) separated by a comma, got {s.PrecisionRuns.Length}.");
        foreach (var name in s.ScalingPresets.Append(s.Preset)) CratePresets.ByName(name);
    }

    private static string Run(Settings s, string commandLine)
    {
        var load = LoadAverage();
        // A log (redirected output) gets tables one row per line instead of cells wrapped at 80 columns.
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 160);
        int cores = Environment.ProcessorCount;
        torch.set_num_threads(cores);
        var phases = new List<Phase>();
        T Measure<T>(string name, Func<T> work)
        {
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(name)}[/]");
            var clock = Stopwatch.StartNew();
            using var memory = PeakMemory.Start();
            var result = work();
            var (resident, managed) = memory.Stop();
            phases.Add(new Phase(name, clock.Elapsed, resident, managed));
            return result;
        }

        // Given runs are read first: a mistake there should not wait for the measurements.
        var delta = s.PrecisionRuns != null ? ReadPrecisionRuns(s.PrecisionRuns) : null;
        bool fashion = File.Exists(Path.Combine(IdxReader.FashionMnistDirectory, "t10k-images-idx3-ubyte.gz"));
        var test = fashion ? IdxReader.FashionMnist(train: false, limit: s.TestImages) : null;
        string source;
        CrateWeights weights;
        var trained = new Dictionary<bool, double>(); // bfloat16? -> test top-1 of the short model trained in that precision
        if (s.Weights != null)
        {
            weights = CrateWeights.Load(s.Weights.FullName);
            source = $"`{s.Weights.Name}`";
        }
        else
        {
            if (test == null) throw new DataException($"Without --weights the benchmark trains a short Fashion-MNIST model, but '{IdxReader.FashionMnistDirectory}' has no data: run scripts/setup.sh or pass --weights.");
            bool bf16 = MixedPrecision.CpuSupportsBFloat16;
            (weights, trained[bf16]) = Measure($"training the short model ({Precision(bf16)})", () => TrainShort(s, test, bf16));
            source = string.Create(CultureInfo.InvariantCulture, $"a short model trained first: recipe fmnist-91 cut to {s.TrainEpochs} epoch(s){(s.TrainImages is int n ? $" on {n} images" : "")}, {Precision(bf16)} products");
        }
        var c = weights.Config;
        double flops = BenchTrainCommand.ForwardMatmulFlops(c);

        var (rows, ratios) = Measure($"inference at batch {s.Batch}", () => CompareEngines(weights, s));
        var ceilings = Measure("ceilings", () => Enum.GetValues<CrateOnnxPrecision>().ToDictionary(p => p, p => OnnxRuntimeCeiling.MatMulGflops(s.CeilingSize, cores, s.Duration, p)));
        var accuracy = test != null && IsFashionMnistModel(c) ? Measure("accuracy on Fashion-MNIST (ONNX Runtime float32 and int8)", () => MeasureAccuracy(weights, test, s.Batch, source)) : null;
        if (delta == null && s.PrecisionTrain && (test == null || !MixedPrecision.CpuSupportsBFloat16))
            Console.Error.WriteLine("warning: --precision-train skipped: it needs Fashion-MNIST and a CPU with bfloat16 dot products.");
        else if (delta == null && s.PrecisionTrain && test != null)
        {
            foreach (var bf16 in new[] { true, false }.Where(p => !trained.ContainsKey(p)))
                trained[bf16] = Measure($"training the short model ({Precision(bf16)})", () => TrainShort(s, test, bf16)).TestTop1;
            delta = new PrecisionDelta(string.Create(CultureInfo.InvariantCulture, $"two short models (fmnist-91 cut to {s.TrainEpochs} epoch(s), seed 0), measured in this run"), trained[true], trained[false]);
        }
        var scaling = s.ScalingPresets.SelectMany(p => Measure($"scaling: {p} at {s.ScalingImageSize}x{s.ScalingImageSize}", () => Scale(p, s))).ToList();

        Print(c, flops, rows, ratios, ceilings, accuracy, delta, phases, scaling, s);
        return Markdown(commandLine, load, c, source, flops, rows, ratios, ceilings, accuracy, delta, phases, scaling, s);
    }

    /// <summary>ORT float32, ORT int8 and TorchSharp eager on the same batch, alternating rounds.</summary>
    private static (List<InferenceRow> Rows, (double OrtVsEager, double Int8VsFloat32) Ratios) CompareEngines(CrateWeights weights, Settings s)
    {
        var c = weights.Config;
        var pixels = InferenceBench.RandomPixels(c, s.Batch, seed: s.Batch);
        var options = new CrateOnnxOptions { IntraOpThreads = Environment.ProcessorCount, MaxBatch = s.Batch };
        using var float32 = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights), options);
        using var int8 = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights, new CrateOnnxExportOptions { Precision = CrateOnnxPrecision.Int8 }), options);
        using var eager = new CrateModel(c);
        eager.LoadWeights(weights);
        eager.eval();
        var engines = new[]
        {
            InferenceBench.Onnx("ONNX Runtime float32", float32, pixels),
            InferenceBench.Onnx("ONNX Runtime int8", int8, pixels),
            InferenceBench.Eager("TorchSharp eager float32", eager, pixels),
        };
        var reference = engines[2].Logits();
        var rates = InferenceBench.BestOfAlternatingRounds(engines, s.Batch, s.Duration, s.Rounds);
        var rows = new List<InferenceRow>
        {
            new(engines[0].Name, rates[0], F($"{rates[0] / rates[2]:F2}x TorchSharp"), InferenceBench.MaxDiff(engines[0].Logits(), reference)),
            new(engines[1].Name, rates[1], F($"{rates[1] / rates[0]:F2}x ORT float32"), InferenceBench.MaxDiff(engines[1].Logits(), reference)),
            new(engines[2].Name, rates[2], "1.00x", "-"),
        };
        return (rows, (rates[0] / rates[2], rates[1] / rates[0]));
    }

    /// <summary>Top-1 of the float32 and int8 exports over the test images, scored in batches of <paramref name="batch"/>.</summary>
    private static Accuracy MeasureAccuracy(CrateWeights weights, ImageDataset test, int batch, string source)
    {
        var pixels = new float[test.Count * test.ImageSize];
        for (int i = 0; i < test.Count; i++)
        {
            var image = test.Image(i);
            for (int k = 0; k < image.Length; k++) pixels[i * test.ImageSize + k] = image[k];
        }
        int[] Predictions(CrateOnnxPrecision precision)
        {
            using var model = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights, new CrateOnnxExportOptions { Precision = precision }),
                new CrateOnnxOptions { IntraOpThreads = Environment.ProcessorCount, MaxBatch = batch });
            var logits = model.Score(pixels).Logits;
            int k = model.Config.NumClasses;
            return Enumerable.Range(0, test.Count).Select(i => ArgMax(logits.AsSpan(i * k, k))).ToArray();
        }
        var float32 = Predictions(CrateOnnxPrecision.Float32);
        var int8 = Predictions(CrateOnnxPrecision.Int8);
        double Top1(int[] predicted) => (double)Enumerable.Range(0, test.Count).Count(i => predicted[i] == test.Label(i)) / test.Count;
        return new Accuracy(source, test.Count, Top1(float32), Top1(int8), (double)Enumerable.Range(0, test.Count).Count(i => float32[i] == int8[i]) / test.Count);
    }

    /// <summary>A short run of the fmnist-91 recipe in one precision; its weights and its test top-1 (evaluated in float32 by the trainer).</summary>
    private static (CrateWeights Weights, double TestTop1) TrainShort(Settings s, ImageDataset test, bool bf16)
    {
        var recipe = TrainingRecipes.FashionMnist91;
        var train = IdxReader.FashionMnist(train: true, limit: s.TrainImages);
        var options = recipe.Options with
        {
            Epochs = s.TrainEpochs, WarmupEpochs = Math.Min(recipe.Options.WarmupEpochs, 0.25 * s.TrainEpochs), BFloat16 = bf16,
            Threads = Environment.ProcessorCount, TestSet = test, Seed = 0,
            EmaDecay = 0,   // an average starting at the initial weights would still hold a third of them after 2 epochs
            PatchDropout = 0, FullPatchEpochs = 0,   // a run this short trains on every patch
        };
        var result = TrainingProgress.Run((onStep, onEpoch) => new CrateTrainer(options with { OnStep = onStep, OnEpoch = onEpoch }).Train(CratePresets.ByName(recipe.Preset), train));
        using var model = (CrateModel)result.Model;   // the recipe trains CRATE
        return (model.ToWeights(), result.Test!.Top1);
    }

    /// <summary>Test top-1 of two finished runs (their metrics.json), one bfloat16 and one float32.</summary>
    private static PrecisionDelta ReadPrecisionRuns(string[] runs)
    {
        var read = runs.Select(run =>
        {
            var path = Directory.Exists(run) ? Path.Combine(run, Checkpoint.MetricsFile) : run;
            if (!File.Exists(path)) throw new FileNotFoundException($"--precision-runs: '{path}' does not exist (give a run folder written by crate train, or its metrics.json).", path);
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            var root = json.RootElement;
            if (!root.TryGetProperty("test", out var t) || t.ValueKind != JsonValueKind.Object)
                throw new FormatException($"--precision-runs: '{path}' has no test result (the run was trained with --no-test or has not finished).");
            return (Path: path, BFloat16: root.GetProperty("options").GetProperty("bfloat16").GetBoolean(), Top1: t.GetProperty("top1").GetDouble());
        }).ToArray();
        if (read[0].BFloat16 == read[1].BFloat16)
            throw new ArgumentException($"--precision-runs: both '{read[0].Path}' and '{read[1].Path}' were trained in {Precision(read[0].BFloat16)}; give one of each.");
        var bf16 = read.Single(r => r.BFloat16);
        var f32 = read.Single(r => !r.BFloat16);
        return new PrecisionDelta($"`{bf16.Path}` vs `{f32.Path}`", bf16.Top1, f32.Top1);
    }

    /// <summary>Images/s of one preset (seeded weights) in float32 and int8 at each scaling batch size.</summary>
    private static IEnumerable<ScalingRow> Scale(string preset, Settings s)
    {
        var c = CratePresets.ByName(preset) with { ImageHeight = s.ScalingImageSize, ImageWidth = s.ScalingImageSize };
        var weights = InferenceBench.SeededWeights(c.Validate());
        var options = new CrateOnnxOptions { IntraOpThreads = Environment.ProcessorCount, MaxBatch = s.ScalingBatches.Max() };
        using var float32 = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights), options);
        using var int8 = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights, new CrateOnnxExportOptions { Precision = CrateOnnxPrecision.Int8 }), options);
        var rows = new List<ScalingRow>();
        foreach (var b in s.ScalingBatches)
        {
            var pixels = InferenceBench.RandomPixels(c, b, seed: b);
            var rates = InferenceBench.BestOfAlternatingRounds([InferenceBench.Onnx("float32", float32, pixels), InferenceBench.Onnx("int8", int8, pixels)], b, s.Duration, s.Rounds);
            rows.Add(new ScalingRow($"CRATE-{preset} {c.Channels}x{c.ImageHeight}x{c.ImageWidth}", BenchTrainCommand.ForwardMatmulFlops(c) / 1e6, b, rates[0], rates[1]));
            Console.WriteLine(F($"{rows[^1].Model}, batch {b}: float32 {rates[0]:F1} images/s, int8 {rates[1]:F1} images/s"));
        }
        return rows;
    }

    private static void Print(CrateConfig c, double flops, List<InferenceRow> rows, (double OrtVsEager, double Int8VsFloat32) ratios,
        Dictionary<CrateOnnxPrecision, double> ceilings, Accuracy? accuracy, PrecisionDelta? delta, List<Phase> phases, List<ScalingRow> scaling, Settings s)
    {
        var inference = new Table().AddColumns("engine", "images/s", "ratio", "GFLOP/s (% of float32 ceiling)", "max |logits diff| vs TorchSharp");
        foreach (var r in rows)
            inference.AddRow(Markup.Escape(r.Engine), F($"{r.ImagesPerSecond:F0}"), r.Versus, InferenceBench.Utilisation(r.ImagesPerSecond, flops, ceilings[CrateOnnxPrecision.Float32]), r.MaxDiff);
        AnsiConsole.Write(inference.Title(Markup.Escape($"{c}, batch {s.Batch}")));
        foreach (var (p, gflops) in ceilings) Console.WriteLine(F($"ONNX Runtime MatMul {s.CeilingSize}^3 {CrateOnnxSchema.PrecisionName(p)}: {gflops:F0} GFLOP/s"));
        foreach (var line in Verdicts(ratios, accuracy)) Console.WriteLine(line);
        Console.WriteLine(accuracy != null
            ? F($"Fashion-MNIST test top-1 ({accuracy.Images} images): float32 {accuracy.Float32Top1:P2}, int8 {accuracy.Int8Top1:P2}, same prediction on {accuracy.Agreement:P2}")
            : "Fashion-MNIST accuracy: skipped (needs a 1x28x28 10-class Fashion-MNIST model and the data set)");
        if (delta != null) Console.WriteLine(F($"training precision: bfloat16 {delta.BFloat16Top1:P2} vs float32 {delta.Float32Top1:P2} test top-1 ({100 * (delta.BFloat16Top1 - delta.Float32Top1):+0.00;-0.00} points)"));

        var memory = new Table().AddColumns("phase", "seconds", "peak RSS MiB", "peak managed MiB");
        foreach (var p in phases) memory.AddRow(Markup.Escape(p.Name), F($"{p.Wall.TotalSeconds:F1}"), F($"{p.ResidentMiB:F0}"), F($"{p.ManagedMiB:F0}"));
        AnsiConsole.Write(memory);

        var scale = new Table().AddColumns("model", "MFLOP/image", "batch", "float32 images/s", "int8 images/s", "int8 / float32", "float32 ms/batch");
        foreach (var r in scaling)
            scale.AddRow(Markup.Escape(r.Model), F($"{r.MflopPerImage:F0}"), F($"{r.Batch}"), F($"{r.Float32:F1}"), F($"{r.Int8:F1}"), F($"{r.Int8 / r.Float32:F2}x"), F($"{1000 * r.Batch / r.Float32:F1}"));
        AnsiConsole.Write(scale);
    }

    /// <summary>The issue's targets, each with its measured figure.</summary>
    private static IEnumerable<string> Verdicts((double OrtVsEager, double Int8VsFloat32) ratios, Accuracy? accuracy)
    {
        static string Met(bool met) => met ? "met" : "NOT met";
        yield return F($"ONNX Runtime float32 / TorchSharp eager: {ratios.OrtVsEager:F2}x (target >= 2.5x at batch 64: {Met(ratios.OrtVsEager >= 2.5)})");
        yield return F($"ONNX Runtime int8 / float32: {ratios.Int8VsFloat32:F2}x (target >= 1.5x at batch 64: {Met(ratios.Int8VsFloat32 >= 1.5)})");
        if (accuracy != null)
        {
            double points = 100 * (accuracy.Int8Top1 - accuracy.Float32Top1);
            yield return F($"int8 - float32 test top-1: {points:+0.00;-0.00} points (target within 0.5 points: {Met(Math.Abs(points) <= 0.5)})");
        }
    }

    private static string Markdown(string commandLine, string load, CrateConfig c, string source, double flops, List<InferenceRow> rows,
        (double OrtVsEager, double Int8VsFloat32) ratios, Dictionary<CrateOnnxPrecision, double> ceilings, Accuracy? accuracy, PrecisionDelta? delta,
        List<Phase> phases, List<ScalingRow> scaling, Settings s)
    {
        int cores = Environment.ProcessorCount;
        var md = new StringBuilder();
        md.AppendLine("## Everything in one run (`crate bench all`)");
        md.AppendLine();
        md.AppendLine($"- Command: `{commandLine}` (date {DateTime.UtcNow:yyyy-MM-dd}){(s.Quick ? " - **quick smoke-test settings: the figures mean nothing**" : "")}");
        md.AppendLine($"- Machine: {cores} cores, {CpuModel()}; load average before the run: {load}; .NET {Environment.Version}, ONNX Runtime {VersionOf(typeof(InferenceSession))}, TorchSharp {VersionOf(typeof(torch))}");
        md.AppendLine($"- Model: {c} ({c.ParameterCount():N0} parameters), {flops / 1e6:F1} MFLOP/image; weights: {source}");
        md.AppendLine(F($"- Method: same inputs for every engine, {cores} threads each, images/s = best of {s.Rounds} alternating rounds ({s.Duration.TotalSeconds / s.Rounds:F2} s each, after warm-up); ") +
                      "int8 = `crate export --int8` (int8 weights with per-column scales, activations quantized per tensor at run time, fused by ONNX Runtime into DynamicQuantizeMatMul); " +
                      "GFLOP/s count the same matmul flops for every engine");
        md.AppendLine(F($"- Ceilings (ONNX Runtime MatMul {s.CeilingSize}^3, same run): float32 **{ceilings[CrateOnnxPrecision.Float32]:F0} GFLOP/s**, int8 (dynamically quantized, same form as the export) **{ceilings[CrateOnnxPrecision.Int8]:F0} GFLOP/s**"));
        md.AppendLine();
        md.AppendLine(F($"### Inference at batch {s.Batch}"));
        md.AppendLine();
        md.AppendLine("| engine | images/s | ratio | GFLOP/s (% of the float32 ceiling) | % of the int8 ceiling | max \\|logits diff\\| vs TorchSharp |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            md.AppendLine(F($"| {r.Engine} | {r.ImagesPerSecond:F0} | {r.Versus} | {InferenceBench.Utilisation(r.ImagesPerSecond, flops, ceilings[CrateOnnxPrecision.Float32])} | {100 * r.ImagesPerSecond * flops / 1e9 / ceilings[CrateOnnxPrecision.Int8]:F0}% | {r.MaxDiff} |"));
        md.AppendLine();
        foreach (var line in Verdicts(ratios, accuracy)) md.AppendLine($"- {line}");
        md.AppendLine();
        md.AppendLine("### Accuracy");
        md.AppendLine();
        md.AppendLine("| what | images | float32 top-1 | other top-1 | delta (points) | same prediction |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|");
        if (accuracy != null)
            md.AppendLine(F($"| int8 vs float32 export, Fashion-MNIST test, batches of {s.Batch} ({accuracy.Source}) | {accuracy.Images} | {accuracy.Float32Top1:P2} | {accuracy.Int8Top1:P2} | {100 * (accuracy.Int8Top1 - accuracy.Float32Top1):+0.00;-0.00} | {accuracy.Agreement:P2} |"));
        else md.AppendLine("| int8 vs float32 export | skipped: needs a 1x28x28 10-class Fashion-MNIST model and the data set | | | | |");
        md.AppendLine(delta != null
            ? F($"| bfloat16 vs float32 training, test top-1 ({delta.Source}) | | {delta.Float32Top1:P2} | {delta.BFloat16Top1:P2} | {100 * (delta.BFloat16Top1 - delta.Float32Top1):+0.00;-0.00} | |")
            : "| bfloat16 vs float32 training | not measured: pass `--precision-runs BF16_RUN,F32_RUN` or `--precision-train` | | | | |");
        md.AppendLine();
        md.AppendLine("### Peak memory per phase");
        md.AppendLine();
        md.AppendLine(PeakMemory.Method);
        md.AppendLine();
        md.AppendLine("| phase | seconds | peak RSS MiB | peak managed MiB |");
        md.AppendLine("|---|---:|---:|---:|");
        foreach (var p in phases) md.AppendLine(F($"| {p.Name} | {p.Wall.TotalSeconds:F1} | {p.ResidentMiB:F0} | {p.ManagedMiB:F0} |"));
        md.AppendLine();
        md.AppendLine("### Scaling with model size (ONNX Runtime, seeded weights)");
        md.AppendLine();
        md.AppendLine("| model | MFLOP/image | batch | float32 images/s | int8 images/s | int8 / float32 | float32 ms per batch |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var r in scaling)
            md.AppendLine(F($"| {r.Model} | {r.MflopPerImage:F0} | {r.Batch} | {r.Float32:F1} | {r.Int8:F1} | {r.Int8 / r.Float32:F2}x | {1000 * r.Batch / r.Float32:F1} |"));
        if (SharedMachineNote(load) is { } note)
        {
            md.AppendLine();
            md.AppendLine(note);
        }
        return md.ToString();
    }

    private static bool IsFashionMnistModel(CrateConfig c) =>
        c is { Channels: 1, ImageHeight: 28, ImageWidth: 28, NumClasses: 10 } && (c.ClassNames.Length == 0 || c.ClassNames.SequenceEqual(IdxReader.FashionMnistClasses));

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int k = 1; k < values.Length; k++) if (values[k] > values[best]) best = k;
        return best;
    }

    private static string Precision(bool bf16) => bf16 ? "bfloat16" : "float32";

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
