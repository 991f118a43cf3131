using System.Diagnostics;
using Crate.Onnx.Export;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;

namespace Crate.Onnx.Runtime;

/// <summary>
/// The machine's practical float32 GEMM ceiling as ONNX Runtime reaches it: what model throughput is quoted
/// against (utilisation = model GFLOP/s / this), measured in the same process and run as the model.
/// </summary>
public static class OnnxRuntimeCeiling
{
    /// <summary>
    /// GFLOP/s of one <c>[n, n] x [n, n]</c> MatMul by a constant (2 n^3 flops per run) in ONNX Runtime on the CPU,
    /// repeated for at least <paramref name="duration"/> after a warm-up: float32, or with <see cref="CrateOnnxPrecision.Int8"/>
    /// the dynamically quantized product exactly as an int8 export writes it (flops counted the same, so the two compare).
    /// </summary>
    /// <param name="n">Matrix side, e.g. 1024 or 2048.</param>
    /// <param name="threads">Intra-op threads (0 lets ONNX Runtime choose).</param>
    /// <param name="duration">Minimum measuring time.</param>
    /// <param name="precision">Float32 (default) or int8.</param>
    public static double MatMulGflops(int n, int threads, TimeSpan duration, CrateOnnxPrecision precision = CrateOnnxPrecision.Float32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        var rng = new Random(0);
        var b = new float[n * n];
        for (int i = 0; i < b.Length; i++) b[i] = (float)rng.NextDouble() - 0.5f;
        var g = new OnnxGraphBuilder("matmul");
        var a = g.Input("a", (long)n, (long)n);
        g.Output(CrateOnnxExporter.WeightMatMul(g, precision, "c", a, "b", b, n, n), (long)n, (long)n);
        var bytes = g.Build(CrateOnnxSchema.CrateVersion, $"{n}^3 MatMul ceiling", []).ToByteArray();

        using var options = new SessionOptions { IntraOpNumThreads = threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        using var session = new InferenceSession(bytes, options);
        var input = new float[n * n];
        for (int i = 0; i < input.Length; i++) input[i] = (float)rng.NextDouble() - 0.5f;
        var output = new float[n * n];
        using var aValue = OrtValue.CreateTensorValueFromMemory(input, [n, n]);
        using var cValue = OrtValue.CreateTensorValueFromMemory(output, [n, n]);
        string[] inputs = ["a"], outputs = ["c"];
        void Once() => session.Run(null, inputs, [aValue], outputs, [cValue]);

        for (int i = 0; i < 2; i++) Once();
        var clock = Stopwatch.StartNew();
        long runs = 0;
        while (clock.Elapsed < duration || runs < 3) { Once(); runs++; }
        return 2.0 * n * n * n * runs / clock.Elapsed.TotalSeconds / 1e9;
    }
}
