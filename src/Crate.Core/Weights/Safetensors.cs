using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Crate.Core.IO;

namespace Crate.Core.Weights;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each tensor name to
/// its dtype, shape and byte range, an optional <c>__metadata__</c> string map, then the raw data. Reading
/// validates every size and offset against the file before allocating, so an untrusted file can only fail
/// with <see cref="SafetensorsException"/>.
/// </summary>
public static class Safetensors
{
    /// <summary>Largest header accepted (the format's own limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;
    private const string MetadataKey = "__metadata__";
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads and validates a safetensors file.</summary>
    /// <exception cref="SafetensorsException">The file is missing, truncated or inconsistent; the message says where.</exception>
    public static SafetensorsFile Read(string path)
    {
        if (!File.Exists(path)) throw new SafetensorsException($"Weights file '{path}' does not exist.");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw new SafetensorsException($"Weights file '{path}' could not be read: {e.Message}", e); }
        return Parse(bytes, path);
    }

    /// <summary>Parses safetensors bytes; <paramref name="source"/> names them in error messages.</summary>
    public static SafetensorsFile Parse(ReadOnlySpan<byte> bytes, string source = "<memory>")
    {
        SafetensorsException Bad(string why) => new($"'{source}' is not a valid safetensors file: {why}.");
        if (bytes.Length < 8) throw Bad($"it is {bytes.Length} bytes long, shorter than the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)(bytes.Length - 8))
            throw Bad($"the header claims {headerLength} bytes but only {bytes.Length - 8} follow (truncated file?)");
        if (headerLength > MaxHeaderBytes) throw Bad($"the header is {headerLength} bytes, over the {MaxHeaderBytes}-byte limit");
        var header = bytes.Slice(8, (int)headerLength);
        var data = bytes[(8 + (int)headerLength)..];

        // The JSON reader decodes names lazily and would throw a non-format exception on bad UTF-8 later.
        try { StrictUtf8.GetCharCount(header); }
        catch (DecoderFallbackException) { throw Bad("the header is not valid UTF-8"); }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header.ToArray()); }
        catch (JsonException e) { throw Bad($"the header is not JSON ({e.Message})"); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad("the header is not a JSON object");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var entries = new List<(string Name, DType Type, long[] Shape, long Begin, long End)>();
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            if (property.Name == MetadataKey)
            {
                if (property.Value.ValueKind != JsonValueKind.Object) throw Bad("__metadata__ is not an object");
                foreach (var m in property.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw Bad($"metadata value '{m.Name}' is not a string");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            if (entries.Any(e => e.Name == property.Name)) throw Bad($"tensor '{property.Name}' is listed twice");
            entries.Add(ParseEntry(property, data.Length, Bad));
        }

        // Byte ranges must not overlap (a shared range would alias two tensors) and must stay in the data.
        var ordered = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        for (int i = 1; i < ordered.Count; i++)
        {
            if (ordered[i].Begin < ordered[i - 1].End)
                throw Bad($"tensors '{ordered[i - 1].Name}' and '{ordered[i].Name}' overlap (bytes {ordered[i - 1].Begin}-{ordered[i - 1].End} and {ordered[i].Begin}-{ordered[i].End})");
        }

        var tensors = new List<NamedTensor>(entries.Count);
        foreach (var e in entries)
            tensors.Add(new NamedTensor(e.Name, e.Type, e.Shape, data[(int)e.Begin..(int)e.End].ToArray()));
        return new SafetensorsFile(tensors, metadata);
    }

    private static (string, DType, long[], long, long) ParseEntry(JsonProperty property, int dataLength, Func<string, SafetensorsException> bad)
    {
        var name = property.Name;
        var v = property.Value;
        if (v.ValueKind != JsonValueKind.Object) throw bad($"entry '{name}' is not an object");
        if (!v.TryGetProperty("dtype", out var dtypeJson) || dtypeJson.ValueKind != JsonValueKind.String)
            throw bad($"tensor '{name}' has no dtype");
        var dtype = DTypes.Parse(dtypeJson.GetString()!) ?? throw bad($"tensor '{name}' has unsupported dtype '{dtypeJson.GetString()}'");
        if (!v.TryGetProperty("shape", out var shapeJson) || shapeJson.ValueKind != JsonValueKind.Array)
            throw bad($"tensor '{name}' has no shape");
        var shape = new long[shapeJson.GetArrayLength()];
        int k = 0;
        foreach (var d in shapeJson.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
                throw bad($"tensor '{name}' has an invalid dimension in its shape");
            shape[k++] = dim;
        }
        if (!v.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw bad($"tensor '{name}' needs data_offsets [begin, end]");
        if (!offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin)
            throw bad($"tensor '{name}' has invalid data_offsets");
        if (end > dataLength) throw bad($"tensor '{name}' ends at byte {end} but the data section has {dataLength} bytes (truncated file?)");
        long count;
        try { count = NamedTensor.ElementCount(shape); }
        catch (OverflowException) { throw bad($"tensor '{name}' has a shape too large to address"); }
        if (count > long.MaxValue / 8 || count * dtype.Size() != end - begin)
            throw bad($"tensor '{name}' of shape {NamedTensor.FormatShape(shape)} and dtype {dtype} needs {count * dtype.Size()} bytes but its offsets span {end - begin}");
        return (name, dtype, shape, begin, end);
    }

    /// <summary>Serialises tensors (in the given order) and metadata to safetensors bytes.</summary>
    public static byte[] Serialize(IEnumerable<NamedTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var duplicate = list.GroupBy(t => t.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null) throw new ArgumentException($"Tensor name '{duplicate.Key}' appears twice.");

        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in list)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.ToString());
                json.WriteStartArray("shape");
                foreach (var d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.Data.LongLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.Data.LongLength;
            }
            json.WriteEndObject();
        }
        // The format pads the header with spaces so the data starts 8-byte aligned.
        var header = headerStream.ToArray();
        int padded = (header.Length + 7) / 8 * 8;
        var output = new byte[8 + padded + list.Sum(t => t.Data.LongLength)];
        BinaryPrimitives.WriteUInt64LittleEndian(output, (ulong)padded);
        header.CopyTo(output, 8);
        output.AsSpan(8 + header.Length, padded - header.Length).Fill((byte)' ');
        long position = 8 + padded;
        foreach (var t in list)
        {
            t.Data.CopyTo(output, position);
            position += t.Data.LongLength;
        }
        return output;
    }

    /// <summary>Writes tensors and metadata to <paramref name="path"/> atomically (temporary file, then rename).</summary>
    public static void Write(string path, IEnumerable<NamedTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.WriteAllBytes(path, Serialize(tensors, metadata));
}

/// <summary>The parsed content of a safetensors file: tensors in file order and the metadata map.</summary>
public sealed class SafetensorsFile
{
    private readonly Dictionary<string, NamedTensor> _byName;

    /// <summary>Wraps parsed tensors and metadata.</summary>
    public SafetensorsFile(IReadOnlyList<NamedTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Tensors in the order the header lists them.</summary>
    public IReadOnlyList<NamedTensor> Tensors { get; }
    /// <summary>The <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Looks a tensor up by name.</summary>
    public bool TryGet(string name, out NamedTensor tensor) => _byName.TryGetValue(name, out tensor!);
}
