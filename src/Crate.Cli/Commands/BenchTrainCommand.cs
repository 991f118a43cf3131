using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Crate.Core.Data;
using Crate.Core.IO;
using Crate.Core.Model;
using Crate.Training;
using Crate.Training.Model;
using Spectre.Console;
using TorchSharp;

using static Crate.Cli.Reporting.BenchmarkFile;

namespace Crate.Cli.Commands;

/// <summary>
/// <c>crate bench train</c>: training throughput of a few model sizes through the real trainer (loader,
/// optimiser, schedule), next to this machine's float32 (and bfloat16) matrix-multiply peak measured through libtorch in the
/// same run, recorded in BENCHMARKS.md.
/// </summary>
internal static class BenchTrainCommand
{
    private const string Begin = "<!-- bench-train:start -->";
    private const string End = "<!-- bench-train:end -->";

    private sealed record Case(string Name, CrateConfig Config, int BatchSize, OptimizerKind Optimizer, bool BFloat16);

    private static readonly CrateConfig Wide =
        CratePresets.Mini with { Preset = "custom", Dim = 384, Heads = 6, DimHead = 64, ImageHeight = 32, ImageWidth = 32, Channels = 3, Mean = [], Std = [] };

    private static readonly Case[] Cases =
    [
        new("mini 28x28x1 p4, batch 128, AdamW, float32", CratePresets.Mini, 128, OptimizerKind.AdamW, false),
        new("mini 28x28x1 p4, batch 128, Lion, float32", CratePresets.Mini, 128, OptimizerKind.Lion, false),
        new("mini 28x28x1 p4, batch 32, AdamW, float32", CratePresets.Mini, 32, OptimizerKind.AdamW, false),
        new("dim 384 depth 6 32x32x3 p4, batch 64, AdamW, float32", Wide, 64, OptimizerKind.AdamW, false),
        new("mini 28x28x1 p4, batch 128, AdamW, bfloat16", CratePresets.Mini, 128, OptimizerKind.AdamW, true),
        new("dim 384 depth 6 32x32x3 p4, batch 64, AdamW, bfloat16", Wide, 64, OptimizerKind.AdamW, true),
    ];

    public static Command Create()
    {
        var steps = new Option<int>("--steps") { Description = "Timed steps per case.", DefaultValueFactory = _ => 20 };
        var warmupSteps = new Option<int>("--warmup-steps") { Description = "Untimed steps first (allocation, caches).", DefaultValueFactory = _ => 3 };
        var threads = new Option<int>("--threads") { Description = "libtorch threads.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var record = new Option<FileInfo?>("--record") { Description = "Markdown file whose training section is replaced (default BENCHMARKS.md)." };
        var noRecord = new Option<bool>("--no-record") { Description = "Print only; write no file." };
        var command = new Command("train", "Training throughput (images/s) of several model sizes, and as a fraction of the matmul peak measured in the same precision.")
        {
            steps, warmupSteps, threads, record, noRecord,
        };
        command.SetAction(parse =>
        {
            int n = parse.GetValue(steps), warm = parse.GetValue(warmupSteps), threadCount = parse.GetValue(threads);
            if (n < 2 || warm < 1 || threadCount < 1) throw new ArgumentException("--steps must be at least 2, --warmup-steps and --threads at least 1.");
            torch.set_num_threads(threadCount);
            var loadBefore = OneMinuteLoad();
            var cases = Cases.Where(c => !c.BFloat16 || MixedPrecision.CpuSupportsBFloat16).ToArray();
            var peaks = cases.Select(c => c.BFloat16).Distinct().ToDictionary(bf16 => bf16, bf16 => MatmulPeak(2048, bf16));
            foreach (var (bf16, peak) in peaks)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Precision(bf16)} matmul peak (libtorch mm 2048^3, {threadCount} threads): {peak:F1} GFLOP/s"));

            var rows = new List<Row>();
            foreach (var c in cases)
            {
                var (imagesPerSecond, dataWait) = Measure(c, warm, n, threadCount);
                var row = new Row(c, imagesPerSecond, imagesPerSecond * 3 * ForwardMatmulFlops(c.Config) / 1e9, peaks[c.BFloat16], dataWait);
                rows.Add(row);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{c.Name}: {imagesPerSecond:F0} images/s, {row.Gflops:F1} GFLOP/s = {row.Gflops / row.Peak:P0} of the {Precision(c.BFloat16)} peak"));
            }
            var loadAfter = OneMinuteLoad();

            var table = new Table().AddColumn("case").AddColumn(new TableColumn("images/s").RightAligned())
                .AddColumn(new TableColumn("GFLOP/s").RightAligned()).AddColumn(new TableColumn("of its peak").RightAligned());
            foreach (var r in rows)
                table.AddRow(Markup.Escape(r.Case.Name), F(r.ImagesPerSecond, "F0"), F(r.Gflops, "F1"), F(r.Gflops / r.Peak, "P0"));
            AnsiConsole.Write(table);

            if (!parse.GetValue(noRecord))
            {
                var path = parse.GetValue(record)?.FullName ?? Path.GetFullPath("BENCHMARKS.md");
                RecordSection(path, Section(rows, peaks, n, warm, threadCount, loadBefore, loadAfter), Begin, End);
                Console.WriteLine($"recorded in {path}");
            }
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Forward-pass matmul FLOPs per image (2 per multiply-add): patch embedding <c>N p^2 C d</c>; per layer and
    /// token <c>d*inner</c> (U), <c>2 T inner</c> (U z (U z)^T and A (U z)), <c>inner*d</c> (output projection),
    /// <c>d^2</c> (folded ISTA); head <c>d k</c>. Norms, softmax and the once-per-step ISTA fold (<c>2 d^3</c>,
    /// under 0.3% at batch 128) are not counted.
    /// </summary>
    public static double ForwardMatmulFlops(CrateConfig c)
    {
        double d = c.Dim, inner = c.InnerDim, tokens = c.TokenCount;
        double perToken = d * inner + 2 * tokens * inner + inner * d + d * d;
        return 2 * (c.NumPatches * (double)c.PatchDim * d + c.Depth * tokens * perToken + d * c.NumClasses);
    }

    private sealed record Row(Case Case, double ImagesPerSecond, double Gflops, double Peak, double DataWait);

    private static string Precision(bool bf16) => bf16 ? "bfloat16" : "float32";

    /// <summary>Best of three timed rounds of ten <c>mm</c> of two n x n matrices (float32 or bfloat16), in GFLOP/s.</summary>
    private static double MatmulPeak(int size, bool bf16)
    {
        using var scope = torch.NewDisposeScope();
        var type = bf16 ? torch.ScalarType.BFloat16 : torch.ScalarType.Float32;
        var a = torch.randn(size, size).to(type);
        var b = torch.randn(size, size).to(type);
        for (int i = 0; i < 2; i++) torch.mm(a, b).Dispose();
        double best = 0;
        for (int round = 0; round < 3; round++)
        {
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < 10; i++) torch.mm(a, b).Dispose();
            best = Math.Max(best, 10 * 2.0 * size * size * size / clock.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    /// <summary>Images/s over the timed steps of a real training run (generated data), and the seconds the steps waited for data.</summary>
    private static (double ImagesPerSecond, double DataWait) Measure(Case c, int warm, int steps, int threads)
    {
        var data = GeneratedShapes.Create(c.BatchSize * (warm + steps), seed: 1, c.Config.ImageHeight, c.Config.ImageWidth, c.Config.Channels);
        var times = new List<double>();
        var clock = Stopwatch.StartNew();
        double wait = 0;
        var trainer = new CrateTrainer(new TrainerOptions
        {
            Epochs = 1, BatchSize = c.BatchSize, Optimizer = c.Optimizer, LearningRate = c.Optimizer == OptimizerKind.Lion ? 3e-4 : 1e-3,
            ValidationFraction = 0, Threads = threads, MaxStepsPerEpoch = warm + steps, BFloat16 = c.BFloat16,
            OnStep = _ => times.Add(clock.Elapsed.TotalSeconds), OnEpoch = m => wait = m.DataWaitSeconds,
        });
        using var model = trainer.Train(c.Config, data).Model.Module;
        return (c.BatchSize * (steps - 1) / (times[^1] - times[warm]), wait);
    }

    private static string Section(List<Row> rows, Dictionary<bool, double> peaks, int steps, int warm, int threads, double? loadBefore, double? loadAfter)
    {
        var mini = ForwardMatmulFlops(CratePresets.Mini);
        bool busy = Math.Max(loadBefore ?? 0, loadAfter ?? 0) > 0.5 * Environment.ProcessorCount;
        var s = new StringBuilder();
        s.AppendLine("## Training throughput (`crate bench train`)");
        s.AppendLine();
        s.AppendLine(F($"- Command: `crate bench train --threads {threads}` (date {DateTime.UtcNow:yyyy-MM-dd}); {warm} untimed + {steps} timed steps per case on generated data through the real trainer (background loader, optimiser, schedule, clipping)"));
        s.AppendLine(F($"- Machine: {Environment.ProcessorCount} cores, {CpuModel()}; libtorch {threads} threads, {ProcessTuning.OpenMpWaiting}; load average before/after: {loadBefore:F2}/{loadAfter:F2}"));
        foreach (var (bf16, peak) in peaks)
            s.AppendLine(F($"- Ceiling: libtorch `mm` 2048x2048x2048 in {Precision(bf16)}, best of 3x10, same run: **{peak:F1} GFLOP/s**"));
        s.AppendLine(F($"- FLOPs: images/s x 3 x forward matmul FLOPs per image (backward ~ 2x forward); forward = 2 x [N p^2 C d + depth x T x (d inner + 2 T inner + inner d + d^2) + d k], N patches, T = N+1 tokens, inner = heads x dim_head, k classes; norms, softmax and the per-step ISTA fold not counted. Mini: {mini / 1e6:F2} MFLOP forward, {3 * mini / 1e6:F1} MFLOP per training image"));
        s.AppendLine();
        s.AppendLine("| case | images/s | GFLOP/s | % of the ceiling in its precision | data wait |");
        s.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var r in rows)
            s.AppendLine(F($"| {r.Case.Name} | {r.ImagesPerSecond:F0} | {r.Gflops:F1} | {r.Gflops / r.Peak:P0} | {r.DataWait:F2} s |"));
        s.AppendLine();
        if (rows.FirstOrDefault(r => r.Case == Cases[0]) is { } target)
        {
            double share = target.Gflops / target.Peak;
            s.AppendLine(F($"Target: >= 50% of the float32 ceiling for {target.Case.Name}: {share:P0}, {(share >= 0.5 ? "met" : "not met")}."));
        }
        s.AppendLine("'data wait': total time the steps waited for the background loader.");
        if (busy)
            s.AppendLine(F($"\n**The machine was shared during this run** (load average up to {Math.Max(loadBefore ?? 0, loadAfter ?? 0):F1} on {Environment.ProcessorCount} cores): absolute figures, the ceilings included, are below a quiet machine's; each fraction compares figures taken under the same load."));
        return s.ToString();
    }

    private static double? OneMinuteLoad() =>
        File.Exists("/proc/loadavg") && double.TryParse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture, out var load) ? load : null;

    private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
