using System.Diagnostics;
using System.Text.Json;
using Crate.Core.Model;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using static Crate.Onnx.Tests.TestModels;

namespace Crate.Onnx.Tests;

/// <summary>The exported file: valid ONNX, the expected graph structure and size, and its metadata.</summary>
public class ExportTests
{
    internal static readonly string[] StandardOps =
        ["Add", "Concat", "Div", "Expand", "Gather", "LayerNormalization", "MatMul", "Mul", "ReduceMean", "Relu", "Reshape", "Shape", "Slice", "Softmax", "Sub", "Transpose"];

    [TestCase("mini", true)]
    [TestCase("tiny_rgb_mean_pool", false)]
    public void ExportedFilePassesTheOfficialOnnxChecker(string shape, bool extras)
    {
        var config = shape == "mini" ? Mini : TinyRgb;
        using var dir = new TempDir();
        var path = dir.File("model.onnx");
        CrateOnnxExporter.ExportToFile(RandomWeights(config, 1), path, new CrateOnnxExportOptions { IncludeAttention = extras, IncludePatchTokens = extras });

        var (code, stdout, stderr) = Run("/usr/bin/python3", Path.Combine(RepoRoot, "scripts", "check_onnx.py"), path);
        if (code == 2) Assert.Fail($"The ONNX checker cannot run: {stderr.Trim()}");
        Assert.That(code, Is.EqualTo(0), $"ONNX checker failed: {stderr}");

        var report = JsonDocument.Parse(stdout).RootElement;
        long T = config.NumPatches + 1;
        Assert.Multiple(() =>
        {
            Assert.That(report.GetProperty("ir_version").GetInt64(), Is.EqualTo(8));
            Assert.That(report.GetProperty("opsets").GetProperty("ai.onnx").GetInt64(), Is.EqualTo(17));
            Assert.That(report.GetProperty("opsets").EnumerateObject().Count(), Is.EqualTo(1), "only the default domain is imported");
            Assert.That(report.GetProperty("node_domains").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "" }), "no custom-domain nodes");
            Assert.That(report.GetProperty("op_types").EnumerateArray().Select(e => e.GetString()), Is.SubsetOf(StandardOps));
            Assert.That(Dims(report, "inputs", "image"), Is.EqualTo(new object[] { "batch", (long)config.Channels, (long)config.ImageHeight, (long)config.ImageWidth }));
            Assert.That(Dims(report, "outputs", "logits"), Is.EqualTo(new object[] { "batch", (long)config.NumClasses }));
            Assert.That(Dims(report, "outputs", "probabilities"), Is.EqualTo(new object[] { "batch", (long)config.NumClasses }));
            Assert.That(Dims(report, "outputs", "features"), Is.EqualTo(new object[] { "batch", (long)config.Dim }));
            Assert.That(report.GetProperty("outputs").EnumerateObject().Count(), Is.EqualTo(extras ? 3 + config.Depth + 1 : 3));
            if (extras)
            {
                Assert.That(Dims(report, "outputs", $"attention_{config.Depth - 1}"), Is.EqualTo(new object[] { "batch", (long)config.Heads, T, T }));
                Assert.That(Dims(report, "outputs", "patch_tokens"), Is.EqualTo(new object[] { "batch", (long)config.NumPatches, (long)config.Dim }));
            }
            Assert.That(report.GetProperty("metadata").GetProperty("crate.config").GetString(), Is.EqualTo(config.ToJson()));
        });
    }

    [Test]
    public void ExportedModelLoadsWithAllOptimisationsAndWritesTheOptimisedGraph()
    {
        var config = TinyRgb;
        var weights = RandomWeights(config, 2);
        var pixels = RandomPixels(config, 2, 9);
        using var dir = new TempDir();
        var optimised = dir.File("optimised.onnx");
        using var model = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights), new CrateOnnxOptions
        {
            OptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelPath = optimised, IntraOpThreads = 1,
        });
        Assert.That(new FileInfo(optimised).Length, Is.GreaterThan(0), "ONNX Runtime wrote no optimised model");
        using var reloaded = CrateOnnxModel.Load(optimised, new CrateOnnxOptions { OptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_DISABLE_ALL });
        using var unoptimised = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights), new CrateOnnxOptions { OptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_DISABLE_ALL });
        var expected = unoptimised.Score(pixels).Logits;
        Assert.That(MaxAbsDiff(model.Score(pixels).Logits, expected), Is.LessThanOrEqualTo(1e-5), "ORT_ENABLE_ALL changed the results");
        Assert.That(MaxAbsDiff(reloaded.Score(pixels).Logits, expected), Is.LessThanOrEqualTo(1e-5), "the saved optimised graph computes something else");
    }

    [Test]
    public void OnnxRuntimeFoldsTheKeysTransposeIntoTheScoresProduct()
    {
        // A guard on the graph's form, not a timing: written as a strided copy of [B, T, H, p] into [B, H, p, T], the keys'
        // transpose took a quarter of a float32 run (BENCHMARKS.md, "Where ONNX Runtime's time goes"). As a swap of the last
        // two axes, ONNX Runtime folds it into the scores' product, which it marks transB.
        var config = Mini;
        using var dir = new TempDir();
        var optimised = dir.File("optimised.onnx");
        using (CrateOnnxModel.Load(CrateOnnxExporter.Export(RandomWeights(config, 3)), new CrateOnnxOptions
               {
                   OptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelPath = optimised, IntraOpThreads = 1,
               }))
        {
        }
        var nodes = Proto.ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimised)).Graph.Node;
        Assert.That(nodes.Count(n => n.OpType == "FusedMatMul" && n.Attribute.Any(a => a.Name == "transB" && a.I == 1)), Is.EqualTo(config.Depth),
            "one fused scores product per layer");
        Assert.That(nodes.Where(n => n.OpType == "Transpose" && n.Name.Contains("heads_t", StringComparison.Ordinal)).Select(n => n.Name), Is.Empty,
            "no keys' transpose left as a copy");
    }

    [Test]
    public void GraphMirrorsTheModelAndStoresEachWeightOnce()
    {
        var config = Mini;
        var graph = CrateOnnxExporter.BuildModel(RandomWeights(config, 1), new CrateOnnxExportOptions()).Graph;
        var nodes = graph.Node.ToDictionary(n => n.Name);
        long storedFloats = graph.Initializer.Where(t => t.DataType == (int)Proto.TensorProto.Types.DataType.Float).Sum(t => t.RawData.Length / 4L);
        Assert.Multiple(() =>
        {
            // Every parameter once (the ISTA dictionary replaced by its same-sized step matrix), plus the pixel scale,
            // per-channel mean and std, the attention scale and the ISTA threshold.
            Assert.That(storedFloats, Is.EqualTo(config.ParameterCount() + 2 * config.Channels + 3));
            for (int i = 0; i < config.Depth; i++)
            {
                Assert.That(nodes[$"layer{i}/mssa/softmax"].OpType, Is.EqualTo("Softmax"));
                Assert.That(nodes[$"layer{i}/mssa/residual"].Input[0], Is.EqualTo(i == 0 ? "embed/add_pos" : $"layer{i - 1}/ista/relu"), "residual around MSSA");
                Assert.That(graph.Node.Count(n => n.Name.StartsWith($"layer{i}/ista/", StringComparison.Ordinal) && n.OpType == "MatMul"), Is.EqualTo(1), "ISTA folded into one matmul");
                Assert.That(nodes[$"layer{i}/ista/norm"].Input[0], Is.EqualTo($"layer{i}/mssa/residual"), "no residual around ISTA: its input is only h");
            }
            Assert.That(nodes["patch_embed/norm_in"].OpType, Is.EqualTo("LayerNormalization"));
            Assert.That(nodes["head/pool"].Output[0], Is.EqualTo("features"));
            Assert.That(nodes["head/norm"].Input[0], Is.EqualTo("features"), "features are taken before the head's LayerNorm");
            Assert.That(graph.Input.Single().Type.TensorType.Shape.Dim[0].DimParam, Is.EqualTo("batch"));
        });
    }

    [Test]
    public void StepMatrixIsIdentityPlusEtaTimesDMinusDTransposeD()
    {
        float[] d = [0.5f, -1f, 0.25f, 2f, 0f, -0.75f, 1.5f, 0.1f, -0.2f];
        var m = CrateOnnxExporter.StepMatrix(d, 3, 0.1);
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
            {
                double gram = 0;
                for (int i = 0; i < 3; i++) gram += d[i * 3 + j] * d[i * 3 + k];
                Assert.That(m[j * 3 + k], Is.EqualTo((j == k ? 1 : 0) + 0.1 * (d[j * 3 + k] - gram)).Within(1e-6), $"M[{j}, {k}]");
            }
    }

    [Test]
    public void MetadataRoundTrips()
    {
        var config = TinyRgb;
        var bytes = CrateOnnxExporter.Export(RandomWeights(config, 1), new CrateOnnxExportOptions
        {
            ExtraMetadata = new Dictionary<string, string> { ["training.dataset"] = "synthetic shapes" },
        });
        using var model = CrateOnnxModel.Load(bytes, source: "tiny.onnx");
        var meta = model.Metadata;
        var norm = JsonDocument.Parse(meta["crate.normalization"]).RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(model.Config.ToJson(), Is.EqualTo(config.ToJson()), "the full configuration");
            Assert.That(model.ClassNames, Is.EqualTo(new[] { "cat", "dog", "bird", "fish", "frog" }));
            Assert.That(JsonSerializer.Deserialize<string[]>(meta["crate.class_names"]), Is.EqualTo(model.ClassNames));
            Assert.That(meta["crate.version"], Is.EqualTo("0.1.0").And.EqualTo(CrateOnnxSchema.CrateVersion));
            Assert.That(meta["crate.format"], Is.EqualTo("1"));
            Assert.That(meta["crate.preset"], Is.EqualTo("custom"));
            Assert.That(meta["crate.image_size"], Is.EqualTo("3x12x16"));
            Assert.That(meta["crate.outputs"], Is.EqualTo("logits,probabilities,features"));
            Assert.That(norm.GetProperty("pixel_scale").GetSingle(), Is.EqualTo(255f));
            Assert.That(norm.GetProperty("mean").EnumerateArray().Select(e => e.GetSingle()), Is.EqualTo(config.Mean));
            Assert.That(norm.GetProperty("std").EnumerateArray().Select(e => e.GetSingle()), Is.EqualTo(config.Std));
            Assert.That(meta["training.dataset"], Is.EqualTo("synthetic shapes"));
            Assert.That(model.HasAttention || model.HasPatchTokens, Is.False);
        });
    }

    [Test]
    public void ClassNamesDefaultToNumbers()
    {
        using var model = CrateOnnxModel.Load(CrateOnnxExporter.Export(RandomWeights(CratePresets.Mini, 1)));
        Assert.That(model.ClassNames, Is.EqualTo(Enumerable.Range(0, 10).Select(i => i.ToString())));
        Assert.That(model.Metadata["crate.preset"], Is.EqualTo("mini"));
    }

    [Test]
    public void ReservedMetadataKeysAreRefused()
    {
        var options = new CrateOnnxExportOptions { ExtraMetadata = new Dictionary<string, string> { ["crate.version"] = "9" } };
        var e = Assert.Throws<ArgumentException>(() => CrateOnnxExporter.Export(RandomWeights(TinyRgb, 1), options));
        Assert.That(e!.Message, Does.Contain("reserved").And.Contain("crate.version"));
    }

    [Test]
    public void ExportToFileReplacesTheFileAtomically()
    {
        using var dir = new TempDir();
        var path = dir.File("model.onnx");
        File.WriteAllText(path, "old");
        var weights = RandomWeights(TinyRgb, 1);
        CrateOnnxExporter.ExportToFile(weights, path);
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(CrateOnnxExporter.Export(weights)), "file equals the in-memory export (deterministic bytes)");
        Assert.That(Directory.GetFiles(dir.Path), Has.Length.EqualTo(1), "no temporary file left behind");
    }

    private static object[] Dims(JsonElement report, string section, string name) =>
        report.GetProperty(section).GetProperty(name).EnumerateArray()
            .Select(e => e.ValueKind == JsonValueKind.String ? (object)e.GetString()! : e.GetInt64()).ToArray();

    internal static (int Code, string Stdout, string Stderr) Run(string program, params string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        Process process;
        try { process = Process.Start(info)!; }
        catch (System.ComponentModel.Win32Exception e) { throw new AssertionException($"Cannot start {program} ({e.Message}): run scripts/setup.sh."); }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, stdout, stderr.Result);
        }
    }
}
