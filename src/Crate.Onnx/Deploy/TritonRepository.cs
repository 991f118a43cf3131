using System.Globalization;
using System.Text;
using System.Text.Json;
using Crate.Core.IO;
using Crate.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Crate.Onnx.Deploy;

/// <summary>Where Triton runs model instances.</summary>
[Flags]
public enum TritonInstances
{
    /// <summary>CPU instances (<c>KIND_CPU</c>).</summary>
    Cpu = 1,
    /// <summary>GPU instances (<c>KIND_GPU</c>); Triton refuses to load such a model on a host without a GPU.</summary>
    Gpu = 2,
}

/// <summary>Settings of a Triton model repository entry.</summary>
public sealed record TritonOptions
{
    /// <summary>Model name (the folder name Triton serves it under). Default <c>crate</c>.</summary>
    public string Name { get; init; } = "crate";
    /// <summary>Largest batch Triton forms; the ONNX batch dimension is symbolic, so any value works. Default 64.</summary>
    public int MaxBatchSize { get; init; } = 64;
    /// <summary>Batch sizes the dynamic batcher prefers. Default 8, 32, 64 (those up to <see cref="MaxBatchSize"/>).</summary>
    public IReadOnlyList<int> PreferredBatchSizes { get; init; } = [8, 32, 64];
    /// <summary>How long a request may wait for a batch to fill, in microseconds. Default 500.</summary>
    public int MaxQueueDelayMicroseconds { get; init; } = 500;
    /// <summary>Instance groups to declare. Default GPU and CPU.</summary>
    public TritonInstances Instances { get; init; } = TritonInstances.Gpu | TritonInstances.Cpu;
    /// <summary>Instances per group. Default 1.</summary>
    public int InstanceCount { get; init; } = 1;
}

/// <summary>
/// Writes a Triton Inference Server model repository entry for an exported Crate model, so Triton's ONNX Runtime
/// backend serves it as it is: <c>DIR/NAME/1/model.onnx</c>, <c>DIR/NAME/config.pbtxt</c> (inputs and outputs read
/// from the model itself, dynamic batching, instance groups) and <c>DIR/NAME/labels.txt</c> (class names, so
/// Triton's classification extension returns names).
/// </summary>
public static class TritonRepository
{
    /// <summary>Writes the entry for the ONNX model in <paramref name="onnx"/>; returns the path of config.pbtxt.</summary>
    /// <exception cref="CrateOnnxException">The bytes are not a loadable ONNX model.</exception>
    public static string Write(byte[] onnx, string repository, TritonOptions? options = null)
    {
        options ??= new TritonOptions();
        if (options.MaxBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), $"MaxBatchSize must be at least 1, got {options.MaxBatchSize}.");
        if (options.Instances == 0) throw new ArgumentException("Declare at least one instance kind (CPU or GPU).", nameof(options));
        if (string.IsNullOrWhiteSpace(options.Name) || options.Name.IndexOfAny(['/', '\\', ' ']) >= 0)
            throw new ArgumentException($"Triton model name '{options.Name}' must be a plain folder name.", nameof(options));

        string config;
        string[] labels;
        try
        {
            using var session = new InferenceSession(onnx);
            labels = Labels(session);
            config = Config(session, options, withLabels: labels.Length > 0);
        }
        catch (OnnxRuntimeException e)
        {
            throw new CrateOnnxException($"Cannot write a Triton repository: the model does not load in ONNX Runtime ({e.Message}).", e);
        }
        var folder = Path.Combine(repository, options.Name);
        AtomicFile.WriteAllBytes(Path.Combine(folder, "1", "model.onnx"), onnx);
        if (labels.Length > 0) AtomicFile.WriteAllText(Path.Combine(folder, "labels.txt"), string.Join('\n', labels) + "\n");
        var configPath = Path.Combine(folder, "config.pbtxt");
        AtomicFile.WriteAllText(configPath, config);
        return configPath;
    }

    /// <summary>The config.pbtxt text for a loaded session; <paramref name="withLabels"/> points the probabilities output at labels.txt.</summary>
    public static string Config(InferenceSession session, TritonOptions options, bool withLabels)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"name: \"{options.Name}\"\n");
        text.Append("backend: \"onnxruntime\"\n");
        text.Append(CultureInfo.InvariantCulture, $"max_batch_size: {options.MaxBatchSize}\n");
        Tensors(text, "input", session.InputMetadata, null);
        Tensors(text, "output", session.OutputMetadata, withLabels ? CrateOnnxSchema.Probabilities : null);
        var preferred = options.PreferredBatchSizes.Where(b => b >= 1 && b <= options.MaxBatchSize).ToList();
        text.Append("dynamic_batching {\n");
        if (preferred.Count > 0) text.Append(CultureInfo.InvariantCulture, $"  preferred_batch_size: [ {string.Join(", ", preferred)} ]\n");
        text.Append(CultureInfo.InvariantCulture, $"  max_queue_delay_microseconds: {options.MaxQueueDelayMicroseconds}\n}}\n");
        var groups = new List<string>();
        if (options.Instances.HasFlag(TritonInstances.Gpu)) groups.Add($"  {{\n    count: {options.InstanceCount}\n    kind: KIND_GPU\n  }}");
        if (options.Instances.HasFlag(TritonInstances.Cpu)) groups.Add($"  {{\n    count: {options.InstanceCount}\n    kind: KIND_CPU\n  }}");
        text.Append("instance_group [\n").Append(string.Join(",\n", groups)).Append("\n]\n");
        return text.ToString();
    }

    private static void Tensors(StringBuilder text, string kind, IReadOnlyDictionary<string, NodeMetadata> tensors, string? labelled)
    {
        text.Append(kind).Append(" [\n");
        var entries = tensors.Select(t =>
        {
            var dims = t.Value.Dimensions;
            if (dims.Length == 0 || dims[0] != -1)
                throw new CrateOnnxException($"Tensor '{t.Key}' has no symbolic batch dimension; Triton's batching needs one.");
            // Triton's dims exclude the batch dimension when max_batch_size > 0.
            var label = t.Key == labelled ? "    label_filename: \"labels.txt\"\n" : "";
            return $"  {{\n    name: \"{t.Key}\"\n    data_type: {DataType(t.Key, t.Value.ElementDataType)}\n    dims: [ {string.Join(", ", dims.Skip(1))} ]\n{label}  }}";
        });
        text.Append(string.Join(",\n", entries)).Append("\n]\n");
    }

    private static string DataType(string name, TensorElementType type) => type switch
    {
        TensorElementType.Float => "TYPE_FP32",
        TensorElementType.Float16 => "TYPE_FP16",
        TensorElementType.Int64 => "TYPE_INT64",
        TensorElementType.Int32 => "TYPE_INT32",
        TensorElementType.UInt8 => "TYPE_UINT8",
        _ => throw new CrateOnnxException($"Tensor '{name}' has element type {type}, which this writer does not map to Triton."),
    };

    private static string[] Labels(InferenceSession session) =>
        session.ModelMetadata.CustomMetadataMap.TryGetValue(CrateOnnxSchema.ClassNamesKey, out var json)
            ? JsonSerializer.Deserialize<string[]>(json) ?? []
            : [];
}
