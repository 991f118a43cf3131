using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Crate.Core.IO;
using Crate.Core.Model;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using Crate.Training.Model;
using Microsoft.ML.OnnxRuntime;
using Spectre.Console;
using TorchSharp;

using static Crate.Cli.Reporting.BenchmarkFile;

namespace Crate.Cli.Commands;

/// <summary>
/// <c>crate bench infer</c>: images/s of the exported model in ONNX Runtime against the TorchSharp model in eager
/// mode, same weights and inputs, one run; plus ONNX Runtime's MatMul GFLOP/s as the machine's ceiling.
/// </summary>
internal static class BenchInferCommand
{
    private const string SectionStart = "<!-- bench-infer:start -->";
    private const string SectionEnd = "<!-- bench-infer:end -->";
    private const int Rounds = 5;

    public static Command Create()
    {
        var preset = new Option<string>("--preset") { Description = "Model shape to benchmark.", DefaultValueFactory = _ => "mini" };
        var weightsFile = new Option<FileInfo?>("--weights") { Description = "Weights to benchmark (default: seeded random weights of the preset)." };
        var batches = new Option<string>("--batches") { Description = "Comma-separated batch sizes.", DefaultValueFactory = _ => "1,8,64" };
        var seconds = new Option<double>("--seconds") { Description = "Measuring time per engine and batch size (split into 5 alternating rounds).", DefaultValueFactory = _ => 5 };
        var ceilingSize = new Option<int>("--ceiling-size") { Description = "Side n of the n^3 MatMul measuring the machine's ceiling.", DefaultValueFactory = _ => 2048 };
        var record = new Option<FileInfo?>("--record") { Description = "Markdown file whose inference section is replaced (default: BENCHMARKS.md at the repository root)." };
        var noRecord = new Option<bool>("--no-record") { Description = "Print only; do not update the benchmarks file." };
        var shape = CliOptions.ModelShape();
        var command = new Command("infer", "Images/s for ONNX Runtime vs TorchSharp eager on the same weights, and model GFLOP/s against ONNX Runtime's MatMul ceiling.")
        {
            preset, weightsFile, batches, seconds, ceilingSize, record, noRecord,
        };
        shape.AddTo(command);
        command.SetAction(parse =>
        {
            int[] sizes;
            try { sizes = parse.GetValue(batches)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); }
            catch (FormatException) { Console.Error.WriteLine($"error: --batches must be comma-separated integers, got '{parse.GetValue(batches)}'."); return 2; }
            if (sizes.Length == 0 || sizes.Any(b => b < 1)) { Console.Error.WriteLine("error: --batches needs positive batch sizes."); return 2; }

            CrateWeights weights;
            var file = parse.GetValue(weightsFile);
            if (file != null) weights = CrateWeights.Load(file.FullName);
            else
            {
                torch.manual_seed(0);
                using var seeded = new CrateModel(shape.Build(parse, parse.GetValue(preset)!));
                weights = seeded.ToWeights();
            }
            var commandLine = "crate " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));
            var markdown = Run(weights, sizes, TimeSpan.FromSeconds(parse.GetValue(seconds)), parse.GetValue(ceilingSize), commandLine);
            if (!parse.GetValue(noRecord))
            {
                var path = parse.GetValue(record)?.FullName ?? Path.Combine(RepoRoot(), "BENCHMARKS.md");
                RecordSection(path, markdown, SectionStart, SectionEnd);
                Console.WriteLine($"recorded in {path}");
            }
            return 0;
        });
        return command;
    }

    private static string Run(CrateWeights weights, int[] batches, TimeSpan duration, int ceilingSize, string commandLine)
    {
        var c = weights.Config;
        var load = LoadAverage();
        int cores = Environment.ProcessorCount;
        torch.set_num_threads(cores);
        using var ort = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights), new CrateOnnxOptions { IntraOpThreads = cores, MaxBatch = batches.Max() });
        using var eager = new CrateModel(c);
        eager.LoadWeights(weights);
        eager.eval();
        double flops = FlopsPerImage(c);
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(c.ToString())}[/]: {flops / 1e6:F1} MFLOP/image, {cores} threads");

        var rows = new List<(int Batch, double Ort, double Torch, double Diff)>();
        foreach (var b in batches)
        {
            var pixels = new float[b * ort.ImageLength];
            var rng = new Random(b);
            for (int i = 0; i < pixels.Length; i++) pixels[i] = rng.Next(256);
            var normalized = Normalize(c, pixels);
            long[] shape = [b, c.Channels, c.ImageHeight, c.ImageWidth];

            float[] OrtLogits() => ort.Score(pixels).Logits;
            float[] TorchLogits()
            {
                using var scope = torch.NewDisposeScope();
                using var noGrad = torch.no_grad();
                return eager.forward(torch.tensor(normalized, shape)).data<float>().ToArray();
            }
            var diff = OrtLogits().Zip(TorchLogits(), (x, y) => Math.Abs((double)x - y)).Max();
            // Alternating rounds, best of each: both engines see the same background load, and interference
            // (other processes on a shared machine) can only slow a round down.
            double ortRate = 0, torchRate = 0;
            for (int round = 0; round < Rounds; round++)
            {
                ortRate = Math.Max(ortRate, ImagesPerSecond(() => OrtLogits(), b, duration / Rounds));
                torchRate = Math.Max(torchRate, ImagesPerSecond(() => TorchLogits(), b, duration / Rounds));
            }
            rows.Add((b, ortRate, torchRate, diff));
            Console.WriteLine($"batch {b}: ONNX Runtime {ortRate:F0} images/s, TorchSharp eager {torchRate:F0} images/s (max |logits diff| {diff.ToString("0.0E+0", CultureInfo.InvariantCulture)})");
        }
        var ceiling = OnnxRuntimeCeiling.MatMulGflops(ceilingSize, cores, duration);
        Console.WriteLine($"ONNX Runtime MatMul {ceilingSize}^3: {ceiling:F0} GFLOP/s");

        var table = new Table().AddColumns("batch", "ONNX Runtime images/s", "TorchSharp eager images/s", "ORT / TorchSharp", "ORT GFLOP/s (% ceiling)", "TorchSharp GFLOP/s (% ceiling)");
        foreach (var r in rows)
            table.AddRow(r.Batch.ToString(CultureInfo.InvariantCulture), $"{r.Ort:F0}", $"{r.Torch:F0}", $"{r.Ort / r.Torch:F2}x",
                Utilisation(r.Ort, flops, ceiling), Utilisation(r.Torch, flops, ceiling));
        AnsiConsole.Write(table);

        var largest = rows[^1];
        var verdict = $"ONNX Runtime / TorchSharp eager at batch {largest.Batch}: {largest.Ort / largest.Torch:F2}x (target >= 1.5x at batch 64" +
                      (largest.Batch == 64 ? largest.Ort / largest.Torch >= 1.5 ? ": met)" : ": NOT met)" : ")");
        Console.WriteLine(verdict);

        var md = new StringBuilder();
        md.AppendLine("## Inference: ONNX Runtime vs TorchSharp eager (`crate bench infer`)");
        md.AppendLine();
        md.AppendLine($"- Command: `{commandLine}` (date {DateTime.UtcNow:yyyy-MM-dd})");
        md.AppendLine($"- Machine: {cores} cores, {CpuModel()}; .NET {Environment.Version}, ONNX Runtime {VersionOf(typeof(InferenceSession))}, TorchSharp {VersionOf(typeof(torch))}");
        md.AppendLine($"- Model: {c} ({c.ParameterCount():N0} parameters), {flops / 1e6:F1} MFLOP/image (matmuls of the exported graph, ISTA folded); seeded random weights unless `--weights`");
        md.AppendLine($"- Same weights and inputs for both engines; {cores} threads each; TorchSharp under `no_grad` and a dispose scope per batch; " +
                      $"ONNX Runtime with ORT_ENABLE_ALL and preprocessing inside the graph; images/s = best of {Rounds} alternating rounds " +
                      $"({duration.TotalSeconds / Rounds:F1} s each, after warm-up); load average before the run: {load}");
        md.AppendLine($"- Ceiling: ONNX Runtime MatMul {ceilingSize}^3 in the same run: **{ceiling:F0} GFLOP/s**; utilisation = model GFLOP/s / ceiling");
        md.AppendLine();
        md.AppendLine("| batch | ONNX Runtime images/s | TorchSharp eager images/s | ORT / TorchSharp | ORT GFLOP/s (% of ceiling) | TorchSharp GFLOP/s (% of ceiling) | max \\|logits diff\\| |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Batch} | {r.Ort:F0} | {r.Torch:F0} | {r.Ort / r.Torch:F2}x | {Utilisation(r.Ort, flops, ceiling)} | {Utilisation(r.Torch, flops, ceiling)} | {r.Diff.ToString("0.0E+0", CultureInfo.InvariantCulture)} |");
        md.AppendLine();
        md.AppendLine(verdict + ".");
        if (double.TryParse(load.Split(' ')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var busy) && busy > cores)
        {
            md.AppendLine();
            md.AppendLine($"**The machine was shared during this run** (load average {busy:F1} on {cores} cores): absolute figures, the ceiling " +
                          "included, are well below a quiet machine's; the ratio between engines measured in alternating rounds is the robust figure. Re-run when idle.");
        }
        return md.ToString();
    }

    /// <summary>Matmul flops of one image through the exported graph (LayerNorm, softmax and elementwise work left out).</summary>
    private static double FlopsPerImage(CrateConfig c)
    {
        double t = c.NumPatches + 1, d = c.Dim, inner = c.InnerDim;
        double embed = 2.0 * c.NumPatches * c.PatchDim * d;
        double layer = 2 * t * d * inner      // U z
                     + 2 * 2 * t * t * inner  // (U z)(U z)^T and A (U z)
                     + 2 * t * inner * d      // output projection
                     + 2 * t * d * d;         // ISTA, one folded matmul
        return embed + c.Depth * layer + 2 * d * c.NumClasses;
    }

    private static string Utilisation(double imagesPerSecond, double flops, double ceiling)
    {
        double gflops = imagesPerSecond * flops / 1e9;
        return $"{gflops:F0} ({100 * gflops / ceiling:F0}%)";
    }

    private static double ImagesPerSecond(Action run, int batch, TimeSpan duration)
    {
        for (int i = 0; i < 3; i++) run();
        var clock = Stopwatch.StartNew();
        long runs = 0;
        while (clock.Elapsed < duration || runs < 5) { run(); runs++; }
        return runs * batch / clock.Elapsed.TotalSeconds;
    }

    private static float[] Normalize(CrateConfig c, float[] pixels)
    {
        int plane = c.ImageHeight * c.ImageWidth;
        var result = new float[pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            int channel = i / plane % c.Channels;
            result[i] = (pixels[i] / 255f - c.MeanOf(channel)) / c.StdOf(channel);
        }
        return result;
    }
}
