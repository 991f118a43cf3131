using Crate.Onnx.Proto;
using static Crate.Onnx.Export.OnnxGraphBuilder;

namespace Crate.Onnx.Export;

public static partial class CrateOnnxExporter
{
    /// <summary>Largest int8 magnitude used: weights are symmetric in [-127, 127], so zero is exact and the zero point is 0.</summary>
    internal const int Int8Limit = 127;

    /// <summary>
    /// <c>x W</c> for a constant row-major <c>[k, n]</c> W, as node <paramref name="name"/>: a float32 <c>MatMul</c>
    /// (W stored as <paramref name="key"/>), or for <see cref="CrateOnnxPrecision.Int8"/> the dynamic quantization
    /// <c>(DynamicQuantizeLinear(x) -> MatMulInteger(W_int8) -> Cast) * (x_scale * w_scale)</c> (W stored as
    /// <c>{key}.int8</c> with per-column scales <c>{key}.scale</c>).
    /// </summary>
    /// <remarks>
    /// This is the form ONNX Runtime's CPU provider fuses into one <c>DynamicQuantizeMatMul</c> kernel (prepacked int8
    /// weights, uint8 x int8 products, VNNI where the CPU has it, bias and scales applied in the same pass): its
    /// MatMulInteger-to-float fusion needs the Cast, and the scales multiplied by their own Mul with the input's
    /// scale first; a following bias <c>Add</c> is folded in too. Every quantized product needs its own quantize node
    /// (the second fusion needs the quantizer to feed one product only).
    /// </remarks>
    internal static string WeightMatMul(OnnxGraphBuilder g, CrateOnnxPrecision precision, string name, string x, string key, float[] weight, int k, int n)
    {
        if (precision == CrateOnnxPrecision.Float32) return g.Node("MatMul", name, [x, g.Constant(key, [k, n], weight)]);

        var (values, scales) = QuantizeColumns(weight, k, n);
        var quantized = g.Int8Constant($"{key}.int8", [k, n], values);
        var weightScale = g.Constant($"{key}.scale", [n], scales);
        var input = g.MultiOutputNode("DynamicQuantizeLinear", $"{name}/quantize", [x], ["y", "scale", "zero_point"]);
        var product = g.Node("MatMulInteger", $"{name}/matmul_integer", [input[0], quantized, input[2]]);   // int32, weight zero point 0
        var asFloat = g.Node("Cast", $"{name}/to_float", [product], null, Int("to", (long)TensorProto.Types.DataType.Float));
        var scale = g.Node("Mul", $"{name}/scale", [input[1], weightScale]);                                // x_scale * w_scale[j]
        return g.Node("Mul", name, [asFloat, scale]);
    }

    /// <summary>
    /// Symmetric int8 quantization of a row-major <c>[k, n]</c> matrix, one scale per column (per output feature):
    /// <c>scale[j] = max_i |W[i, j]| / 127</c> and <c>q[i, j] = round_half_even(W[i, j] / scale[j])</c>, so
    /// <c>|W - q scale| &lt;= scale / 2</c>. An all-zero column gets scale 1 (its values are exactly 0).
    /// </summary>
    internal static (sbyte[] Values, float[] Scales) QuantizeColumns(float[] weight, int k, int n)
    {
        if (weight.Length != k * n) throw new ArgumentException($"A [{k}, {n}] matrix has {k * n} values, got {weight.Length}.", nameof(weight));
        var scales = new float[n];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < n; j++)
                scales[j] = Math.Max(scales[j], Math.Abs(weight[i * n + j]));
        for (int j = 0; j < n; j++) scales[j] = scales[j] > 0 ? scales[j] / Int8Limit : 1f;

        var values = new sbyte[weight.Length];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < n; j++)
                values[i * n + j] = (sbyte)Math.Clamp(MathF.Round(weight[i * n + j] / scales[j], MidpointRounding.ToEven), -Int8Limit, Int8Limit);
        return (values, scales);
    }
}
