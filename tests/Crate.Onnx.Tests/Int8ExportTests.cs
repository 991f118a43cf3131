using System.Runtime.InteropServices;
using System.Text.Json;
using Crate.Onnx.Export;
using Crate.Onnx.Proto;
using Crate.Onnx.Runtime;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static Crate.Onnx.Tests.TestModels;

namespace Crate.Onnx.Tests;

/// <summary>
/// The int8 export: the quantization arithmetic of one product against plain loops, closeness of the whole model to
/// float32 within a tolerance derived from the quantization steps, standard operators only, ONNX Runtime's fused int8
/// kernels, and the precision in the metadata.
/// </summary>
public class Int8ExportTests
{
    private static readonly CrateOnnxExportOptions Int8 = new() { Precision = CrateOnnxPrecision.Int8 };

    /// <summary>Patch embedding, then per layer the MSSA projection, its output projection and the ISTA update.</summary>
    private static int QuantizedProducts(Core.Model.CrateConfig c) => 1 + 3 * c.Depth;

    [TestCase(GraphOptimizationLevel.ORT_DISABLE_ALL, TestName = "OneQuantizedProductComputesTheStatedArithmetic(ONNX operators one by one)")]
    [TestCase(GraphOptimizationLevel.ORT_ENABLE_ALL, TestName = "OneQuantizedProductComputesTheStatedArithmetic(fused by ONNX Runtime)")]
    public void OneQuantizedProductComputesTheStatedArithmetic(GraphOptimizationLevel level)
    {
        const int rows = 6, k = 40, n = 9;
        var rng = new Random(5);
        float Normal() => (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var x = Enumerable.Range(0, rows * k).Select(_ => 1.5f * Normal() + 0.4f).ToArray();   // off-centre: a non-trivial zero point
        var w = Enumerable.Range(0, k * n).Select(i => i % n == 3 ? 0f : 0.2f * Normal()).ToArray(); // column 3 all zero
        var bias = Enumerable.Range(0, n).Select(_ => Normal()).ToArray();
        var g = new OnnxGraphBuilder("one_product");
        var input = g.Input("x", (long)rows, (long)k);
        g.Node("Add", "y", [CrateOnnxExporter.WeightMatMul(g, CrateOnnxPrecision.Int8, "product", input, "w", w, k, n), g.Constant("bias", [n], bias)]);
        g.Output("y", (long)rows, (long)n);
        var model = g.Build("test", "one quantized product", []);

        // Independently, with plain loops. Input: ONNX DynamicQuantizeLinear (uint8 over the range widened to hold 0).
        float min = Math.Min(0, x.Min()), max = Math.Max(0, x.Max());
        float xScale = (max - min) / 255f;
        int xZero = (int)Math.Clamp(MathF.Round(-min / xScale, MidpointRounding.ToEven), 0, 255);
        var xq = new int[x.Length];
        for (int i = 0; i < x.Length; i++) xq[i] = (int)Math.Clamp(MathF.Round(x[i] / xScale, MidpointRounding.ToEven) + xZero, 0, 255);
        // Weights: symmetric int8, one scale per output column (max |w| / 127; 1 for an all-zero column).
        var wScale = new float[n];
        var wq = new int[k * n];
        for (int j = 0; j < n; j++)
        {
            float largest = 0;
            for (int i = 0; i < k; i++) largest = Math.Max(largest, Math.Abs(w[i * n + j]));
            wScale[j] = largest > 0 ? largest / 127f : 1f;
            for (int i = 0; i < k; i++) wq[i * n + j] = (int)MathF.Round(w[i * n + j] / wScale[j], MidpointRounding.ToEven);
        }
        var stored = model.Graph.Initializer.ToDictionary(t => t.Name);
        Assert.That(stored["w.int8"].DataType, Is.EqualTo((int)TensorProto.Types.DataType.Int8));
        Assert.That(stored["w.int8"].RawData.Select(b => (int)(sbyte)b), Is.EqualTo(wq), "stored int8 weights");
        Assert.That(MemoryMarshal.Cast<byte, float>(stored["w.scale"].RawData.Span).ToArray(), Is.EqualTo(wScale), "stored per-column scales");

        var y = RunSingleOutput(model, level, "x", x, [rows, k]);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
            {
                long accumulator = 0;
                double exact = bias[j], bound = 0;
                for (int i = 0; i < k; i++)
                {
                    accumulator += (long)(xq[r * k + i] - xZero) * wq[i * n + j];
                    exact += (double)x[r * k + i] * w[i * n + j];
                    // |x - x~| <= xScale / 2 and |w - w~| <= wScale / 2, so |x w - x~ w~| <= |x| dw/2 + |w| dx/2 + dx dw/4.
                    bound += Math.Abs(x[r * k + i]) * wScale[j] / 2 + Math.Abs(w[i * n + j]) * xScale / 2 + xScale * wScale[j] / 4;
                }
                float expected = accumulator * (xScale * wScale[j]) + bias[j];
                Assert.That(y[r * n + j], Is.EqualTo(expected).Within(1e-5 * (1 + Math.Abs(expected))), $"y[{r}, {j}] against the integer arithmetic");
                Assert.That(Math.Abs(y[r * n + j] - exact), Is.LessThanOrEqualTo(bound + 1e-5), $"y[{r}, {j}] within the step-size bound of x w + b");
            }
    }

    [TestCase(0)]
    [TestCase(3)]
    public void Int8LogitsStayWithinTheToleranceDerivedFromTheQuantizationSteps(int promptTokens)
    {
        var config = Mini with { PromptTokens = promptTokens };
        var weights = RandomWeights(config, seed: 7);
        const int batch = 64;
        var pixels = RandomPixels(config, batch, seed: 11);
        var options = new CrateOnnxOptions { MaxBatch = batch, IntraOpThreads = 2 };
        using var float32 = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights), options);
        using var int8 = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights, Int8), options);
        var expected = float32.Score(pixels).Logits;
        var actual = int8.Score(pixels).Logits;

        // Rounding to a step d adds an error of RMS d / sqrt(12). Relative to a product's inputs, that is
        // e_x^2 = dx^2 / (12 E[x^2]) for its activations (dx = range / 255 over the batch, as quantized at run time) and
        // e_w^2 = mean_j dw_j^2 / (12 E[w_.j^2]) for its weights; one product's output is off by about sqrt(e_x^2 + e_w^2)
        // of its RMS. With independent errors through the products in series the logits are off by about
        // sqrt(sum over products) of their RMS; allow twice that for the attention softmax, which amplifies score errors.
        var int8Graph = CrateOnnxExporter.BuildModel(weights, Int8).Graph;
        var steps = ProductSteps(int8Graph);
        Assert.That(steps, Has.Count.EqualTo(QuantizedProducts(config)));
        var activations = Intermediates(CrateOnnxExporter.BuildModel(weights, new CrateOnnxExportOptions()), pixels, config, steps.Select(s => s.Input).ToArray());
        double budget = 0;
        foreach (var (input, weightError) in steps)
        {
            var a = activations[input];
            double range = Math.Max(0, a.Max()) - Math.Min(0, a.Min()), step = range / 255;
            double activationError = step * step / 12 / a.Average(v => (double)v * v);
            budget += activationError + weightError;
        }
        double logitRms = Rms(expected, new float[expected.Length]);
        double tolerance = 2 * Math.Sqrt(budget) * logitRms;
        double deviation = Rms(actual, expected);

        int k = config.NumClasses, agree = 0, confident = 0, confidentAgree = 0;
        for (int i = 0; i < batch; i++)
        {
            var row = expected.AsSpan(i * k, k);
            int best = ArgMax(row), other = ArgMax(actual.AsSpan(i * k, k));
            double margin = row[best] - row.ToArray().Where((_, j) => j != best).Max();
            agree += best == other ? 1 : 0;
            // A margin over four RMS deviations cannot be crossed by an error of the tolerated size.
            if (margin > 4 * tolerance) { confident++; confidentAgree += best == other ? 1 : 0; }
        }
        TestContext.Out.WriteLine($"per-product budget sqrt(sum e^2) = {Math.Sqrt(budget):P2}; logits RMS {logitRms:F3}; RMS deviation {deviation:F4} " +
                                  $"(tolerance {tolerance:F4}); max deviation {MaxAbsDiff(actual, expected):F4}; top-1 agreement {agree}/{batch}, {confidentAgree}/{confident} beyond 4 tolerances");
        Assert.Multiple(() =>
        {
            Assert.That(deviation, Is.LessThanOrEqualTo(tolerance), "RMS logit deviation");
            Assert.That(deviation, Is.GreaterThan(0), "the int8 model computes something different at all");
            Assert.That(agree, Is.GreaterThanOrEqualTo(0.85 * batch), "top-1 agreement on the batch");
            Assert.That(confidentAgree, Is.EqualTo(confident), "every image with a clear float32 winner keeps it");
        });
    }

    [Test]
    public void Int8FilePassesTheCheckerWithStandardOperatorsOnlyAndSaysInt8()
    {
        var config = Mini;
        using var dir = new TempDir();
        var path = dir.File("int8.onnx");
        var weights = RandomWeights(config, 1);
        CrateOnnxExporter.ExportToFile(weights, path, Int8);

        var (code, stdout, stderr) = ExportTests.Run("/usr/bin/python3", Path.Combine(RepoRoot, "scripts", "check_onnx.py"), path);
        if (code == 2) Assert.Fail($"The ONNX checker cannot run: {stderr.Trim()}");
        Assert.That(code, Is.EqualTo(0), $"ONNX checker failed: {stderr}");
        var report = JsonDocument.Parse(stdout).RootElement;
        var graph = CrateOnnxExporter.BuildModel(weights, Int8).Graph;
        using var model = CrateOnnxModel.Load(path);
        Assert.Multiple(() =>
        {
            Assert.That(report.GetProperty("opsets").EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "ai.onnx" }), "only the default domain is imported");
            Assert.That(report.GetProperty("node_domains").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "" }), "no custom-domain nodes");
            Assert.That(report.GetProperty("op_types").EnumerateArray().Select(e => e.GetString()),
                Is.SubsetOf(ExportTests.StandardOps.Concat(["DynamicQuantizeLinear", "MatMulInteger", "Cast"])));
            Assert.That(report.GetProperty("metadata").GetProperty("crate.precision").GetString(), Is.EqualTo("int8"));
            Assert.That(model.Precision, Is.EqualTo(CrateOnnxPrecision.Int8));
            Assert.That(graph.Node.Count(n => n.OpType == "MatMulInteger"), Is.EqualTo(QuantizedProducts(config)));
            Assert.That(graph.Node.Single(n => n.Name == "head/linear").OpType, Is.EqualTo("MatMul"), "the head stays float32");
            Assert.That(new FileInfo(path).Length, Is.LessThan(0.4 * CrateOnnxExporter.Export(weights).Length), "int8 weights take a quarter of the space");
        });
    }

    [Test]
    public void OnnxRuntimeFusesEveryQuantizedProductIntoOneInt8Kernel()
    {
        var config = Mini;
        using var dir = new TempDir();
        var optimised = dir.File("optimised.onnx");
        using (CrateOnnxModel.Load(CrateOnnxExporter.Export(RandomWeights(config, 1), Int8), new CrateOnnxOptions { OptimizedModelPath = optimised, IntraOpThreads = 1 })) { }
        var ops = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimised)).Graph.Node.Select(n => n.OpType).ToList();
        TestContext.Out.WriteLine(string.Join(", ", ops.GroupBy(o => o).Select(o => $"{o.Key} x{o.Count()}")));
        Assert.That(ops.Count(o => o == "DynamicQuantizeMatMul"), Is.EqualTo(QuantizedProducts(config)), "one fused int8 kernel per quantized product");
        Assert.That(ops, Has.None.EqualTo("MatMulInteger").And.None.EqualTo("DynamicQuantizeLinear"), "nothing left unfused");
    }

    [Test]
    public void PrecisionComesFromTheMetadataAndUnknownValuesAreRefused()
    {
        var weights = RandomWeights(TinyRgb, 1);
        using (var plain = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights)))
            Assert.That(plain.Precision, Is.EqualTo(CrateOnnxPrecision.Float32));

        var model = CrateOnnxExporter.BuildModel(weights, new CrateOnnxExportOptions());
        var entry = model.MetadataProps.Single(p => p.Key == CrateOnnxSchema.PrecisionKey);
        model.MetadataProps.Remove(entry);
        using (var older = CrateOnnxModel.Load(model.ToByteArray()))
            Assert.That(older.Precision, Is.EqualTo(CrateOnnxPrecision.Float32), "files from before the key are float32");

        model.MetadataProps.Add(new StringStringEntryProto { Key = CrateOnnxSchema.PrecisionKey, Value = "int4" });
        var e = Assert.Throws<CrateOnnxException>(() => CrateOnnxModel.Load(model.ToByteArray(), source: "future.onnx"));
        Assert.That(e!.Message, Does.Contain("'future.onnx'").And.Contain("'int4'").And.Contain("float32 and int8"));
    }

    /// <summary>For each quantized product: its input tensor's name and the relative squared error its int8 weights add.</summary>
    private static List<(string Input, double WeightError)> ProductSteps(GraphProto graph)
    {
        var initializers = graph.Initializer.ToDictionary(t => t.Name);
        var quantizers = graph.Node.Where(n => n.OpType == "DynamicQuantizeLinear").ToDictionary(n => n.Output[0]);
        return graph.Node.Where(n => n.OpType == "MatMulInteger").Select(product =>
        {
            var values = initializers[product.Input[1]];
            var scales = MemoryMarshal.Cast<byte, float>(initializers[product.Input[1].Replace(".int8", ".scale", StringComparison.Ordinal)].RawData.Span).ToArray();
            var q = values.RawData.Select(b => (double)(sbyte)b).ToArray();
            int n = scales.Length, k = q.Length / n;
            // Per column, (step^2 / 12) / E[w^2] with w = q * step: 1 / (12 E[q^2]).
            double error = Enumerable.Range(0, n).Average(j =>
            {
                double meanSquare = Enumerable.Range(0, k).Average(i => q[i * n + j] * q[i * n + j]);
                return meanSquare > 0 ? 1 / (12 * meanSquare) : 0;
            });
            return (quantizers[product.Input[0]].Input[0], error);
        }).ToList();
    }

    /// <summary>The named intermediate tensors of a float32 export for one batch, by adding them as graph outputs.</summary>
    private static Dictionary<string, float[]> Intermediates(ModelProto model, float[] pixels, Core.Model.CrateConfig c, string[] names)
    {
        foreach (var name in names)
            model.Graph.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } } });
        using var session = new InferenceSession(model.ToByteArray());
        var image = new DenseTensor<float>(pixels, [pixels.Length / (c.Channels * c.ImageHeight * c.ImageWidth), c.Channels, c.ImageHeight, c.ImageWidth]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(CrateOnnxSchema.Image, image)], names);
        return results.ToDictionary(r => r.Name, r => r.AsTensor<float>().ToArray());
    }

    private static float[] RunSingleOutput(ModelProto model, GraphOptimizationLevel level, string inputName, float[] input, int[] shape)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = level, IntraOpNumThreads = 1 };
        using var session = new InferenceSession(model.ToByteArray(), options);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(inputName, new DenseTensor<float>(input, shape))]);
        return results.Single().AsTensor<float>().ToArray();
    }

    private static double Rms(float[] a, float[] b) => Math.Sqrt(a.Zip(b, (x, y) => ((double)x - y) * ((double)x - y)).Average());

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int j = 1; j < values.Length; j++) if (values[j] > values[best]) best = j;
        return best;
    }
}
