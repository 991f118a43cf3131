using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Crate.Core.Weights;

/// <summary>Element types safetensors files may hold (the subset Crate reads and writes).</summary>
public enum DType
{
    /// <summary>IEEE float32.</summary>
    F32,
    /// <summary>IEEE float16.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>IEEE float64.</summary>
    F64,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Unsigned byte.</summary>
    U8,
}

/// <summary>Size and naming helpers for <see cref="DType"/>.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this DType type) => type switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 => 2,
        DType.F64 or DType.I64 => 8,
        DType.U8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>Parses the header spelling ("F32", "BF16", ...); null when unknown.</summary>
    public static DType? Parse(string name) => Enum.TryParse<DType>(name, ignoreCase: false, out var t) && Enum.IsDefined(t) ? t : null;
}

/// <summary>
/// A named, shaped block of little-endian bytes: one entry of a safetensors file. Framework-neutral, so the
/// ONNX side reads weights without TorchSharp.
/// </summary>
public sealed class NamedTensor
{
    /// <summary>Creates a tensor; <paramref name="data"/> must hold exactly <c>product(shape) * size(dtype)</c> bytes.</summary>
    public NamedTensor(string name, DType dtype, long[] shape, byte[] data)
    {
        long expected = ElementCount(shape) * dtype.Size();
        if (data.LongLength != expected)
            throw new ArgumentException($"Tensor '{name}': {data.LongLength} bytes given, shape [{string.Join(", ", shape)}] of {dtype} needs {expected}.");
        Name = name; DType = dtype; Shape = shape; Data = data;
    }

    /// <summary>The tensor's key.</summary>
    public string Name { get; }
    /// <summary>Element type.</summary>
    public DType DType { get; }
    /// <summary>Dimensions, outermost first.</summary>
    public long[] Shape { get; }
    /// <summary>Raw little-endian element bytes, row-major.</summary>
    public byte[] Data { get; }
    /// <summary>Number of elements.</summary>
    public long Count => ElementCount(Shape);

    /// <summary>A float32 tensor from values.</summary>
    public static NamedTensor FromFloats(string name, long[] shape, ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 4];
        if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(values).CopyTo(bytes);
        else for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return new NamedTensor(name, DType.F32, shape, bytes);
    }

    /// <summary>The values as float32, converting from F16, BF16 or F64.</summary>
    /// <exception cref="SafetensorsException">The tensor holds integers.</exception>
    public float[] ToFloats()
    {
        var n = checked((int)Count);
        var result = new float[n];
        var span = Data.AsSpan();
        switch (DType)
        {
            case DType.F32:
                if (BitConverter.IsLittleEndian) MemoryMarshal.Cast<byte, float>(span).CopyTo(result);
                else for (int i = 0; i < n; i++) result[i] = BinaryPrimitives.ReadSingleLittleEndian(span[(i * 4)..]);
                break;
            case DType.F16:
                for (int i = 0; i < n; i++) result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(span[(i * 2)..]);
                break;
            case DType.BF16:
                for (int i = 0; i < n; i++) result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(span[(i * 2)..]) << 16);
                break;
            case DType.F64:
                for (int i = 0; i < n; i++) result[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(span[(i * 8)..]);
                break;
            default:
                throw new SafetensorsException($"Tensor '{Name}' holds {DType}; a floating-point tensor was expected.");
        }
        return result;
    }

    /// <summary>Product of the dimensions (1 for a scalar).</summary>
    public static long ElementCount(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        return n;
    }

    /// <summary>The shape as "[a, b, c]".</summary>
    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
