using System.Text.Json;
using Crate.Core.Model;
using Crate.Core.Segmentation;
using Crate.Core.Weights;

namespace Crate.Onnx.Export;

/// <summary>
/// The supervised segmentation head's weights, framework-neutral, for <see cref="CrateOnnxExportOptions.Segmentation"/>:
/// coarse <c>LayerNorm(dim) -> Linear(dim, K*p*p)</c> per patch token, then the pixel refinement
/// <c>Conv3x3(K+C, 32) -> ReLU -> Conv3x3(32, K)</c> added to the coarse logits (as Crate.Training's <c>PatchSegmentationHead</c>).
/// Tensor names are the head's own: <c>0.weight</c>, <c>0.bias</c>, <c>1.weight</c>, <c>1.bias</c>, <c>refine.0.weight</c>,
/// <c>refine.0.bias</c>, <c>refine.2.weight</c>, <c>refine.2.bias</c>. A model with Crate.Training's <c>QueryMaskHead</c>
/// also has that head's tensors, named <c>query_head.</c> followed by its own names (<c>query_head.classes.weight</c> ...).
/// </summary>
public sealed class SegmentationHeadWeights
{
    private readonly Dictionary<string, NamedTensor> _tensors;

    /// <summary>Wraps the head's tensors after checking their shapes against <paramref name="trunk"/> and the class count.</summary>
    /// <exception cref="SafetensorsException">A tensor is missing or mis-shaped; the message names it.</exception>
    public SegmentationHeadWeights(CrateConfig trunk, IReadOnlyList<string> classNames, IEnumerable<NamedTensor> tensors, string source = "<memory>")
    {
        ClassNames = classNames;
        _tensors = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        HasQueryHead = _tensors.Keys.Any(SegmentationCheckpointFormat.IsQueryHeadTensor);
        foreach (var (name, shape) in Layout(trunk, classNames.Count, HasQueryHead))
        {
            if (!_tensors.TryGetValue(name, out var t)) throw new SafetensorsException($"'{source}': the segmentation head has no tensor '{name}'.");
            if (!t.Shape.SequenceEqual(shape))
                throw new SafetensorsException($"'{source}': segmentation head tensor '{name}' is {NamedTensor.FormatShape(t.Shape)}, expected {NamedTensor.FormatShape(shape)}.");
        }
    }

    /// <summary>Mask class names, background first.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Number of mask classes.</summary>
    public int NumClasses => ClassNames.Count;
    /// <summary>Whether the model has a query head (its tensors are those named <c>query_head.*</c>).</summary>
    public bool HasQueryHead { get; }

    /// <summary>The float32 values of tensor <paramref name="name"/>.</summary>
    public float[] Floats(string name) => _tensors[name].ToFloats();

    /// <summary>
    /// Every head tensor with its shape for a trunk of <paramref name="c"/> and <paramref name="classes"/> mask classes, the
    /// query head's included when <paramref name="queryHead"/>.
    /// </summary>
    public static IReadOnlyList<(string Name, long[] Shape)> Layout(CrateConfig c, int classes, bool queryHead = false)
    {
        long k = classes, r = SegmentationCheckpointFormat.RefineChannels, p2 = c.PatchSize * c.PatchSize, e = SegmentationCheckpointFormat.QueryEmbeddingWidth;
        (string, long[])[] head =
        [
            ("0.weight", [c.Dim]), ("0.bias", [c.Dim]),
            ("1.weight", [k * p2, c.Dim]), ("1.bias", [k * p2]),
            ("refine.0.weight", [r, k + c.Channels, 3, 3]), ("refine.0.bias", [r]),
            ("refine.2.weight", [k, r, 3, 3]), ("refine.2.bias", [k]),
        ];
        if (!queryHead) return head;
        (string Name, long[] Shape)[] queries =
        [
            ("query_norm.weight", [c.Dim]), ("query_norm.bias", [c.Dim]),
            ("classes.weight", [k, c.Dim]), ("classes.bias", [k]),
            ("query_embed.weight", [e, c.Dim]), ("query_embed.bias", [e]),
            ("pixel_norm.weight", [c.Dim]), ("pixel_norm.bias", [c.Dim]),
            ("pixel_embed.weight", [e * p2, c.Dim]), ("pixel_embed.bias", [e * p2]),
        ];
        return [.. head, .. queries.Select(t => (SegmentationCheckpointFormat.QueryHeadPrefix + t.Name, t.Shape))];
    }

    /// <summary>
    /// Reads a segmentation checkpoint written by <c>crate segment train --task segment</c> (CRATE trunk): the trunk as
    /// <see cref="CrateWeights"/> and the head.
    /// </summary>
    /// <exception cref="SafetensorsException">The file has no segmentation head, holds a ViT trunk, or a tensor is missing; the message says which.</exception>
    public static (CrateWeights Trunk, SegmentationHeadWeights Head) FromCheckpoint(string path)
    {
        var file = Safetensors.Read(path);
        var architecture = file.Metadata.GetValueOrDefault(SegmentationCheckpointFormat.ArchitectureKey, "crate");
        if (architecture != "crate") throw new SafetensorsException($"'{path}' holds a '{architecture}' trunk; only CRATE segmentation models export to ONNX.");
        if (!file.Metadata.TryGetValue(SegmentationCheckpointFormat.MaskClassesKey, out var classJson))
            throw new SafetensorsException($"'{path}' has no segmentation head (no '{SegmentationCheckpointFormat.MaskClassesKey}' metadata); train one with --task segment.");
        var classes = JsonSerializer.Deserialize<string[]>(classJson) ?? [];
        var prefix = SegmentationCheckpointFormat.HeadPrefix;
        bool IsQueryHead(NamedTensor t) => SegmentationCheckpointFormat.IsQueryHeadTensor(t.Name);
        bool IsHead(NamedTensor t) => t.Name.StartsWith(prefix, StringComparison.Ordinal);
        var trunkMetadata = file.Metadata.Where(kv => kv.Key == CrateWeights.ConfigKey).ToDictionary();
        var trunk = CrateWeights.Create(CrateConfig.FromJson(file.Metadata[CrateWeights.ConfigKey]),
            file.Tensors.Where(t => !IsHead(t) && !IsQueryHead(t)), trunkMetadata, path);
        var head = new SegmentationHeadWeights(trunk.Config, classes,
            file.Tensors.Where(IsHead).Select(t => new NamedTensor(t.Name[prefix.Length..], t.DType, t.Shape, t.Data)).Concat(file.Tensors.Where(IsQueryHead)), path);
        return (trunk, head);
    }
}
