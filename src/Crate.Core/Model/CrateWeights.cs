using Crate.Core.Weights;

namespace Crate.Core.Model;

/// <summary>
/// A CRATE network's weights with its configuration: the framework-neutral form that training writes and
/// export reads. Tensor names are the reference implementation's state-dict keys.
/// </summary>
public sealed class CrateWeights
{
    /// <summary>Metadata key holding the <see cref="CrateConfig"/> JSON.</summary>
    public const string ConfigKey = "crate.config";
    private const string DataParallelPrefix = "module.";

    private readonly Dictionary<string, NamedTensor> _tensors;

    /// <summary>Wraps tensors already checked against <paramref name="config"/>.</summary>
    private CrateWeights(CrateConfig config, Dictionary<string, NamedTensor> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Config = config;
        _tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>The network's configuration.</summary>
    public CrateConfig Config { get; }
    /// <summary>All metadata stored with the weights (including <see cref="ConfigKey"/>).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Tensors in the reference's parameter order.</summary>
    public IEnumerable<NamedTensor> Tensors => Layout(Config).Select(p => _tensors[p.Name]);

    /// <summary>The float32 values of parameter <paramref name="name"/>.</summary>
    public float[] Floats(string name) => _tensors.TryGetValue(name, out var t)
        ? t.ToFloats()
        : throw new KeyNotFoundException($"CRATE weights have no tensor '{name}'.");

    /// <summary>
    /// Every parameter of a CRATE network, in the reference's registration order, with its shape; <c>prompt_tokens</c>
    /// (after <c>cls_token</c>) only when <see cref="CrateConfig.PromptTokens"/> is positive.
    /// </summary>
    public static IReadOnlyList<(string Name, long[] Shape)> Layout(CrateConfig c)
    {
        long d = c.Dim, pd = c.PatchDim, inner = c.InnerDim;
        var list = new List<(string, long[])>
        {
            ("pos_embedding", [1, c.NumPatches + 1, d]),
            ("cls_token", [1, 1, d]),
        };
        // Only a prompt-tuned trunk has prompts: reference checkpoints keep exactly the reference's names.
        if (c.PromptTokens > 0) list.Add(("prompt_tokens", [1, c.PromptTokens, d]));
        list.AddRange(
        [
            ("to_patch_embedding.1.weight", [pd]), ("to_patch_embedding.1.bias", [pd]),
            ("to_patch_embedding.2.weight", [d, pd]), ("to_patch_embedding.2.bias", [d]),
            ("to_patch_embedding.3.weight", [d]), ("to_patch_embedding.3.bias", [d]),
        ]);
        for (int i = 0; i < c.Depth; i++)
        {
            var l = $"transformer.layers.{i}";
            list.Add(($"{l}.0.norm.weight", [d])); list.Add(($"{l}.0.norm.bias", [d]));
            list.Add(($"{l}.0.fn.qkv.weight", [inner, d]));
            list.Add(($"{l}.0.fn.to_out.0.weight", [d, inner])); list.Add(($"{l}.0.fn.to_out.0.bias", [d]));
            list.Add(($"{l}.1.norm.weight", [d])); list.Add(($"{l}.1.norm.bias", [d]));
            list.Add(($"{l}.1.fn.weight", [d, d]));
        }
        list.Add(("mlp_head.0.weight", [d])); list.Add(("mlp_head.0.bias", [d]));
        list.Add(("mlp_head.1.weight", [c.NumClasses, d])); list.Add(("mlp_head.1.bias", [c.NumClasses]));
        return list;
    }

    /// <summary>
    /// Checks tensors against the layout of <paramref name="config"/> (stripping a data-parallel <c>module.</c>
    /// prefix) and wraps them. Every missing, unexpected and mis-shaped tensor is named in one error.
    /// </summary>
    /// <exception cref="SafetensorsException">The tensors do not match the configuration.</exception>
    public static CrateWeights Create(CrateConfig config, IEnumerable<NamedTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, string source = "<memory>")
    {
        config.Validate();
        var byName = new Dictionary<string, NamedTensor>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            var name = t.Name.StartsWith(DataParallelPrefix, StringComparison.Ordinal) ? t.Name[DataParallelPrefix.Length..] : t.Name;
            byName[name] = name == t.Name ? t : new NamedTensor(name, t.DType, t.Shape, t.Data);
        }
        var layout = Layout(config);
        var expected = layout.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var missing = layout.Where(p => !byName.ContainsKey(p.Name)).Select(p => p.Name).ToList();
        var unexpected = byName.Keys.Where(k => !expected.Contains(k)).ToList();
        var misShaped = layout.Where(p => byName.TryGetValue(p.Name, out var t) && !t.Shape.SequenceEqual(p.Shape))
            .Select(p => $"{p.Name} is {NamedTensor.FormatShape(byName[p.Name].Shape)}, expected {NamedTensor.FormatShape(p.Shape)}").ToList();
        var notFloat = byName.Values.Where(t => expected.Contains(t.Name) && t.DType is not (DType.F32 or DType.F16 or DType.BF16 or DType.F64))
            .Select(t => $"{t.Name} is {t.DType}").ToList();
        if (missing.Count + unexpected.Count + misShaped.Count + notFloat.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0) parts.Add($"missing: {Summarise(missing)}");
            if (unexpected.Count > 0) parts.Add($"unexpected: {Summarise(unexpected)}");
            if (misShaped.Count > 0) parts.Add($"wrong shape: {Summarise(misShaped)}");
            if (notFloat.Count > 0) parts.Add($"not floating point: {Summarise(notFloat)}");
            throw new SafetensorsException($"Weights '{source}' do not match {config}: {string.Join("; ", parts)}.");
        }
        var meta = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal) { [ConfigKey] = config.ToJson() };
        return new CrateWeights(config, byName, meta);
    }

    private static string Summarise(List<string> items) =>
        items.Count <= 12 ? string.Join(", ", items) : string.Join(", ", items.Take(12)) + $" and {items.Count - 12} more";

    /// <summary>
    /// Loads a safetensors file. Its configuration comes from the file's metadata; a file without it (a
    /// converted reference checkpoint) needs <paramref name="fallback"/>.
    /// </summary>
    /// <exception cref="SafetensorsException">Malformed file, another architecture, no configuration, or tensors that do not match it.</exception>
    public static CrateWeights Load(string path, CrateConfig? fallback = null)
    {
        var file = Safetensors.Read(path);
        if (file.Metadata.TryGetValue(Segmentation.SegmentationCheckpointFormat.ArchitectureKey, out var architecture) && architecture != "crate")
            throw new SafetensorsException($"Weights '{path}' hold a {architecture} network (the ViT baseline), not CRATE; 'crate analyze' reads both.");
        CrateConfig config;
        if (file.Metadata.TryGetValue(ConfigKey, out var json))
        {
            try { config = CrateConfig.FromJson(json); }
            catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or FormatException)
            { throw new SafetensorsException($"Weights '{path}' carry an unreadable CRATE configuration: {e.Message}", e); }
        }
        else
        {
            config = fallback ?? throw new SafetensorsException(
                $"Weights '{path}' carry no CRATE configuration (metadata key '{ConfigKey}'); pass the preset and input size it was trained with.");
        }
        return Create(config, file.Tensors, file.Metadata, path);
    }

    /// <summary>Writes the weights and configuration as safetensors, atomically.</summary>
    public void Save(string path) => Safetensors.Write(path, Tensors, Metadata);
}
