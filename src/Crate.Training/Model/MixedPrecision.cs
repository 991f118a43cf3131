using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Model;

/// <summary>
/// Matrix products for mixed-precision compute: operands cast to bfloat16 (where the CPU multiplies them
/// about 4x faster than float32), results returned as float32, so LayerNorm, softmax, residuals, the loss and
/// the master weights stay float32. Autograd sends float32 gradients back through the casts.
/// </summary>
public static class MixedPrecision
{
    /// <summary>Whether this CPU has native bfloat16 dot products (AVX512_BF16 or AMX), read from /proc/cpuinfo.</summary>
    public static bool CpuSupportsBFloat16 { get; } = DetectBFloat16();

    /// <summary><c>x W^T + b</c>, in bfloat16 when <paramref name="bf16"/>, always returning float32.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias, bool bf16) =>
        bf16
            ? nn.functional.linear(x.to(ScalarType.BFloat16), weight.to(ScalarType.BFloat16), bias?.to(ScalarType.BFloat16)).to(ScalarType.Float32)
            : nn.functional.linear(x, weight, bias);

    /// <summary><c>a b</c>, in bfloat16 when <paramref name="bf16"/>, always returning float32.</summary>
    public static Tensor MatMul(Tensor a, Tensor b, bool bf16) =>
        bf16 ? torch.matmul(a.to(ScalarType.BFloat16), b.to(ScalarType.BFloat16)).to(ScalarType.Float32) : torch.matmul(a, b);

    private static bool DetectBFloat16()
    {
        try
        {
            if (!File.Exists("/proc/cpuinfo")) return false;
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal)) continue;
                var flags = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return flags.Contains("avx512_bf16") || flags.Contains("amx_bf16");
            }
        }
        catch (IOException) { }
        return false;
    }
}
