using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Model;

/// <summary>
/// Mixed-precision compute: matrix products in bfloat16 (where the CPU multiplies them about 4x faster than float32),
/// everything else in float32: LayerNorm, softmax, residual sums, the head, the loss and the master weights. Blocks
/// take and return float32; inside a block a product's bfloat16 output feeds the next product directly (casting it to
/// float32 in between would add work but no precision). Autograd sends float32 gradients back through the casts.
/// </summary>
public static class MixedPrecision
{
    /// <summary>Whether this CPU has native bfloat16 dot products (AVX512_BF16 or AMX), read from /proc/cpuinfo.</summary>
    public static bool CpuSupportsBFloat16 { get; } = DetectBFloat16();

    /// <summary>The element type products run in: bfloat16 when <paramref name="bf16"/>, else float32.</summary>
    public static ScalarType ProductType(bool bf16) => bf16 ? ScalarType.BFloat16 : ScalarType.Float32;

    /// <summary><c>x W^T + b</c>, in bfloat16 when <paramref name="bf16"/>, always returning float32.</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias, bool bf16)
    {
        if (!bf16) return nn.functional.linear(x, weight, bias);
        var type = ProductType(bf16);
        return nn.functional.linear(x.to(type), weight.to(type), bias?.to(type)).to(ScalarType.Float32);
    }

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
