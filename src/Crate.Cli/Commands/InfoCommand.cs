using System.CommandLine;
using Crate.Core.Model;
using Crate.Core.Weights;
using Crate.Onnx;
using Crate.Onnx.Runtime;
using Spectre.Console;

namespace Crate.Cli.Commands;

/// <summary><c>crate info</c>: describe a preset's architecture or a weights file.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var preset = new Option<string?>("--preset") { Description = $"Preset to describe ({string.Join(", ", CratePresets.Names)})." };
        var weights = new Option<FileInfo?>("--weights") { Description = "A safetensors weights file to describe." };
        var onnx = new Option<FileInfo?>("--onnx") { Description = "An exported ONNX model to describe (architecture, precision, outputs)." };
        var config = CliOptions.ModelShape();
        var command = new Command("info", "Print a CRATE architecture and its exact parameter count, or describe a weights file or an exported ONNX model.") { preset, weights, onnx };
        config.AddTo(command);
        command.SetAction(parse =>
        {
            var weightsFile = parse.GetValue(weights);
            if (weightsFile != null) return DescribeWeights(weightsFile.FullName);
            if (parse.GetValue(onnx) is { } onnxFile) return DescribeOnnx(onnxFile.FullName);
            var cfg = config.Build(parse, parse.GetValue(preset) ?? "tiny");
            DescribeConfig(cfg);
            return 0;
        });
        return command;
    }

    private static void DescribeConfig(CrateConfig cfg)
    {
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(cfg.ToString())}[/]");
        var table = new Table().AddColumn("block").AddColumn("computes").AddColumn(new TableColumn("parameters").RightAligned());
        void Row(string block, string computes, long count) => table.AddRow(Markup.Escape(block), Markup.Escape(computes), $"{count:N0}");
        long d = cfg.Dim, pd = cfg.PatchDim, inner = cfg.InnerDim;
        Row("patch embedding", $"LN({pd}) -> Linear({pd}, {d}) -> LN({d})", 2 * pd + pd * d + d + 2 * d);
        Row("class token + positions", $"[1, 1, {d}] + [1, {cfg.NumPatches + 1}, {d}]", d + (cfg.NumPatches + 1) * d);
        if (cfg.PromptTokens > 0) Row("prompt tokens", $"{cfg.PromptTokens} after the class token, [1, {cfg.PromptTokens}, {d}]", cfg.PromptTokens * d);
        Row($"{cfg.Depth} x MSSA", $"z + Linear({inner}, {d})(softmax(UzUz^T/sqrt({cfg.DimHead})) Uz), U: {inner}x{d}", cfg.Depth * (2 * d + 2 * inner * d + d));
        Row($"{cfg.Depth} x ISTA", $"ReLU(x + {cfg.IstaStep}(xD - xD^TD) - {cfg.IstaStep * cfg.IstaLambda:G4}), D: {d}x{d}", cfg.Depth * (2 * d + d * d));
        Row("head", $"LN({d}) -> Linear({d}, {cfg.NumClasses})", 2 * d + d * cfg.NumClasses + cfg.NumClasses);
        table.AddRow("[bold]total[/]", "", $"[bold]{cfg.ParameterCount():N0}[/]");
        AnsiConsole.Write(table);
        Console.WriteLine($"parameters: {cfg.ParameterCount()}");
        if (cfg.PromptTokens > 0) Console.WriteLine($"prompt tokens: {cfg.PromptTokens}");
    }

    /// <summary>An exported model as ONNX Runtime loads it: architecture, precision, outputs and the exporting Crate version.</summary>
    private static int DescribeOnnx(string path)
    {
        using var model = CrateOnnxModel.Load(path, new CrateOnnxOptions { IntraOpThreads = 1 });
        DescribeConfig(model.Config);
        Console.WriteLine($"precision: {CrateOnnxSchema.PrecisionName(model.Precision)}" +
                          (model.Precision == CrateOnnxPrecision.Int8 ? " (trunk weight products dynamically quantized: int8 weights, uint8 activations)" : ""));
        Console.WriteLine($"outputs: {model.Metadata.GetValueOrDefault(CrateOnnxSchema.OutputsKey, "?")}");
        Console.WriteLine($"exported by Crate {model.Metadata.GetValueOrDefault(CrateOnnxSchema.VersionKey, "?")} ({new FileInfo(path).Length:N0} bytes)");
        return 0;
    }

    private static int DescribeWeights(string path)
    {
        try
        {
            var w = CrateWeights.Load(path);
            DescribeConfig(w.Config);
            if (w.Config.ClassNames.Length > 0) Console.WriteLine($"classes: {string.Join(", ", w.Config.ClassNames)}");
            foreach (var (k, v) in w.Metadata.Where(kv => kv.Key != CrateWeights.ConfigKey)) Console.WriteLine($"{k}: {v}");
            Console.WriteLine($"tensors: {w.Tensors.Count()} ({new FileInfo(path).Length:N0} bytes)");
            return 0;
        }
        catch (SafetensorsException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}
