using System.Globalization;
using System.Text.RegularExpressions;

namespace Crate.Cli.Tests;

/// <summary><c>crate bench all --quick</c>: every part of the report is there with sane numbers (no timing targets).</summary>
public class BenchAllCommandTests
{
    [Test]
    public void QuickRunReportsEveryPartWithSaneNumbers()
    {
        var dir = Directory.CreateTempSubdirectory("crate-bench-all-").FullName;
        try
        {
            var bf16 = Metrics(dir, "bf16", bfloat16: true, top1: 0.9012);
            var f32 = Metrics(dir, "f32", bfloat16: false, top1: 0.8987);
            var (exit, output, error) = CliRunner.Run("bench", "all", "--quick", "--no-record", "--precision-runs", $"{bf16},{f32}");
            Assert.That(exit, Is.Zero, error);
            TestContext.Out.WriteLine(output);

            // Inference table: each engine's row, images/s > 0, ORT logits equal TorchSharp's to float32 rounding.
            foreach (var engine in new[] { "ONNX Runtime float32", "ONNX Runtime int8", "TorchSharp eager float32" })
                Assert.That(Cell(output, engine, 1), Is.GreaterThan(0), $"{engine} images/s");
            Assert.That(Cell(output, "ONNX Runtime float32", 4), Is.LessThan(1e-4), "float32 ONNX Runtime matches TorchSharp");
            Assert.That(output, Does.Match(@"ONNX Runtime MatMul 256\^3 float32: \d+ GFLOP/s").And.Match(@"ONNX Runtime MatMul 256\^3 int8: \d+ GFLOP/s"));
            Assert.That(output, Does.Contain("ONNX Runtime float32 / TorchSharp eager:").And.Contain("ONNX Runtime int8 / float32:").And.Contain("int8 - float32 test top-1:"));

            var accuracy = Regex.Match(output, @"Fashion-MNIST test top-1 \(500 images\): float32 ([\d.]+) %, int8 ([\d.]+) %, same prediction on ([\d.]+) %");
            Assert.That(accuracy.Success, Is.True, "accuracy line");
            for (int g = 1; g <= 3; g++) Assert.That(Number(accuracy.Groups[g].Value), Is.InRange(0, 100));
            Assert.That(output, Does.Contain("training precision: bfloat16 90.12 % vs float32 89.87 % test top-1 (+0.25 points)"));

            // Peak memory: a row per phase, resident set above the managed heap's share of it.
            foreach (var phase in new[] { "training the short model", "inference at batch 64", "ceilings", "accuracy on Fashion-MNIST", "scaling: tiny at 32x32", "scaling: small at 32x32" })
            {
                Assert.That(Cell(output, phase, 2), Is.GreaterThan(50), $"{phase}: peak RSS MiB");
                Assert.That(Cell(output, phase, 3), Is.GreaterThan(0).And.LessThan(Cell(output, phase, 2)), $"{phase}: peak managed MiB");
            }
            // Scaling: both presets at both quick batch sizes, float32 and int8 images/s.
            foreach (var model in new[] { "CRATE-tiny 3x32x32", "CRATE-small 3x32x32" })
            {
                var rows = Rows(output, model);
                Assert.That(rows.Select(r => r[2]), Is.EqualTo(new[] { "1", "4" }), $"{model} batch sizes");
                Assert.That(rows.SelectMany(r => new[] { Number(r[3]), Number(r[4]) }), Has.All.GreaterThan(0), $"{model} images/s");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void PrecisionRunsOfTheSamePrecisionAreRefusedBeforeMeasuring()
    {
        var dir = Directory.CreateTempSubdirectory("crate-bench-all-").FullName;
        try
        {
            var a = Metrics(dir, "a", bfloat16: true, top1: 0.9);
            var b = Metrics(dir, "b", bfloat16: true, top1: 0.9);
            var (exit, output, error) = CliRunner.Run("bench", "all", "--quick", "--no-record", "--precision-runs", $"{a},{b}");
            Assert.That(exit, Is.EqualTo(2));
            Assert.That(error.Trim(), Is.EqualTo($"error: --precision-runs: both '{Path.Combine(a, "metrics.json")}' and '{Path.Combine(b, "metrics.json")}' were trained in bfloat16; give one of each."));
            Assert.That(output, Does.Not.Contain("inference at batch"), "nothing was measured");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A run folder holding the parts of metrics.json the benchmark reads.</summary>
    private static string Metrics(string dir, string name, bool bfloat16, double top1)
    {
        var run = Path.Combine(dir, name);
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, "metrics.json"),
            new System.Text.Json.Nodes.JsonObject
            {
                ["options"] = new System.Text.Json.Nodes.JsonObject { ["bfloat16"] = bfloat16 },
                ["test"] = new System.Text.Json.Nodes.JsonObject { ["top1"] = top1 },
            }.ToJsonString());
        return run;
    }

    /// <summary>The cells of the table rows (one line each) whose first cell starts with <paramref name="label"/>.</summary>
    private static List<string[]> Rows(string output, string label) =>
        output.Split('\n').Select(l => l.Split('│').Select(c => c.Trim()).ToArray())
            .Where(c => c.Length > 2 && c[1].StartsWith(label, StringComparison.Ordinal)).Select(c => c[1..^1]).ToList();

    /// <summary>The number at the start of cell <paramref name="column"/> of the one row labelled <paramref name="label"/>.</summary>
    private static double Cell(string output, string label, int column)
    {
        var rows = Rows(output, label);
        Assert.That(rows, Has.Count.EqualTo(1), $"one table row for '{label}'");
        return Number(rows[0][column].Split(' ')[0]);
    }

    private static double Number(string text) => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
}
