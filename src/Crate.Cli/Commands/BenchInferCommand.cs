using System.CommandLine;
using System.Globalization;
using System.Text;
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
            var sizes = InferenceBench.BatchSizes(parse.GetValue(batches)!, "--batches");
            var file = parse.GetValue(weightsFile);
            var weights = file != null ? CrateWeights.Load(file.FullName) : InferenceBench.SeededWeights(shape.Build(parse, parse.GetValue(preset)!));
            var markdown = Run(weights, sizes, TimeSpan.FromSeconds(parse.GetValue(seconds)), parse.GetValue(ceilingSize), CommandLine());
            RecordUnless(parse.GetValue(noRecord), parse.GetValue(record), markdown, SectionStart, SectionEnd);
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
        double flops = BenchTrainCommand.ForwardMatmulFlops(c);
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(c.ToString())}[/]: {flops / 1e6:F1} MFLOP/image, {cores} threads");

        var rows = new List<(int Batch, double Ort, double Torch, string Diff)>();
        foreach (var b in batches)
        {
            var pixels = InferenceBench.RandomPixels(c, b, seed: b);
            var engines = new[] { InferenceBench.Onnx("ONNX Runtime", ort, pixels), InferenceBench.Eager("TorchSharp eager", eager, pixels) };
            var diff = InferenceBench.MaxDiff(engines[0].Logits(), engines[1].Logits());
            var rates = InferenceBench.BestOfAlternatingRounds(engines, b, duration);
            rows.Add((b, rates[0], rates[1], diff));
            Console.WriteLine($"batch {b}: ONNX Runtime {rates[0]:F0} images/s, TorchSharp eager {rates[1]:F0} images/s (max |logits diff| {diff})");
        }
        var ceiling = OnnxRuntimeCeiling.MatMulGflops(ceilingSize, cores, duration);
        Console.WriteLine($"ONNX Runtime MatMul {ceilingSize}^3: {ceiling:F0} GFLOP/s");

        var table = new Table().AddColumns("batch", "ONNX Runtime images/s", "TorchSharp eager images/s", "ORT / TorchSharp", "ORT GFLOP/s (% ceiling)", "TorchSharp GFLOP/s (% ceiling)");
        foreach (var r in rows)
            table.AddRow(r.Batch.ToString(CultureInfo.InvariantCulture), $"{r.Ort:F0}", $"{r.Torch:F0}", $"{r.Ort / r.Torch:F2}x",
                InferenceBench.Utilisation(r.Ort, flops, ceiling), InferenceBench.Utilisation(r.Torch, flops, ceiling));
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
                      $"ONNX Runtime with ORT_ENABLE_ALL and preprocessing inside the graph; images/s = best of {InferenceBench.Rounds} alternating rounds " +
                      $"({duration.TotalSeconds / InferenceBench.Rounds:F1} s each, after warm-up); load average before the run: {load}");
        md.AppendLine($"- Ceiling: ONNX Runtime MatMul {ceilingSize}^3 in the same run: **{ceiling:F0} GFLOP/s**; utilisation = model GFLOP/s / ceiling");
        md.AppendLine();
        md.AppendLine("| batch | ONNX Runtime images/s | TorchSharp eager images/s | ORT / TorchSharp | ORT GFLOP/s (% of ceiling) | TorchSharp GFLOP/s (% of ceiling) | max \\|logits diff\\| |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Batch} | {r.Ort:F0} | {r.Torch:F0} | {r.Ort / r.Torch:F2}x | {InferenceBench.Utilisation(r.Ort, flops, ceiling)} | {InferenceBench.Utilisation(r.Torch, flops, ceiling)} | {r.Diff} |");
        md.AppendLine();
        md.AppendLine(verdict + ".");
        if (SharedMachineNote(load) is { } note)
        {
            md.AppendLine();
            md.AppendLine(note);
        }
        return md.ToString();
    }
}
