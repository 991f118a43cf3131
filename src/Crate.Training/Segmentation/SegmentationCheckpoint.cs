using System.Text.Json;
using Crate.Core.Model;
using Crate.Core.Segmentation;
using Crate.Core.Weights;
using Crate.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Segmentation;

/// <summary>Trunk architectures a segmentation checkpoint can hold.</summary>
public static class Architectures
{
    /// <summary>CRATE (MSSA + ISTA).</summary>
    public const string Crate = "crate";
    /// <summary>The ViT baseline (separate q/k/v attention + MLP).</summary>
    public const string Vit = "vit";

    /// <summary>Builds a randomly initialised trunk of <paramref name="architecture"/> ("crate" or "vit").</summary>
    public static IVisionTransformer Create(string architecture, CrateConfig config, int mlpRatio = 4) => architecture switch
    {
        Crate => new CrateModel(config),
        Vit => new VitModel(config, mlpRatio),
        _ => throw new ArgumentException($"Unknown architecture '{architecture}'; expected '{Crate}' or '{Vit}'."),
    };

    /// <summary>The architecture name of <paramref name="trunk"/>.</summary>
    public static string NameOf(IVisionTransformer trunk) => trunk is VitModel ? Vit : Crate;
}

/// <summary>A loaded checkpoint: the trunk with its classifier, and the segmentation head when one was trained.</summary>
/// <param name="Trunk">The CRATE or ViT trunk with its classifier head.</param>
/// <param name="Segmenter">The supervised segmentation model around <paramref name="Trunk"/>, or null for a classifier-only checkpoint.</param>
/// <param name="MaskClasses">Mask class names, background first (the trunk's classes behind "background" when no head was trained).</param>
public sealed record SegmentationCheckpointContents(IVisionTransformer Trunk, SegmentationModel? Segmenter, IReadOnlyList<string> MaskClasses);

/// <summary>
/// Saves and loads trunks and segmentation models as one safetensors file (layout: <see cref="SegmentationCheckpointFormat"/>). Trunk tensors keep their own names
/// (for CRATE the reference's state-dict keys, so the file's trunk also loads as <see cref="CrateWeights"/>), the
/// segmentation head's are prefixed <c>seg_head.</c> and the optional query head's <c>query_head.</c>; metadata holds the configuration, the architecture and the
/// mask class names.
/// </summary>
public static class SegmentationCheckpoint
{
    private const string ArchitectureKey = SegmentationCheckpointFormat.ArchitectureKey;
    private const string MlpRatioKey = SegmentationCheckpointFormat.MlpRatioKey;
    private const string MaskClassesKey = SegmentationCheckpointFormat.MaskClassesKey;
    private const string HeadPrefix = SegmentationCheckpointFormat.HeadPrefix;
    private const string QueryHeadPrefix = SegmentationCheckpointFormat.QueryHeadPrefix;

    /// <summary>Saves a trunk (classifier) alone.</summary>
    public static void Save(string path, IVisionTransformer trunk) => Write(path, trunk, null, null);

    /// <summary>Saves a segmentation model (trunk and head) with its mask class names.</summary>
    public static void Save(string path, SegmentationModel model, IReadOnlyList<string> maskClasses) => Write(path, model.Trunk, model, maskClasses);

    /// <summary>Writes the trunk, the head when given, and <paramref name="resume"/>'s loop state when given, atomically.</summary>
    internal static void Write(string path, IVisionTransformer trunk, SegmentationModel? model, IReadOnlyList<string>? maskClasses,
        SegmentationTraining.ResumeState? resume = null)
    {
        if (model != null && maskClasses!.Count != model.NumClasses) throw new ArgumentException($"{maskClasses.Count} class names for a {model.NumClasses}-class head.");
        var metadata = new Dictionary<string, string>
        {
            [CrateWeights.ConfigKey] = trunk.Config.ToJson(),
            [ArchitectureKey] = Architectures.NameOf(trunk),
        };
        if (trunk is VitModel vit) metadata[MlpRatioKey] = vit.MlpRatio.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var tensors = ResumeTensors.Module(trunk.Module).ToList();
        if (model != null)
        {
            metadata[MaskClassesKey] = JsonSerializer.Serialize(maskClasses);
            tensors.AddRange(ResumeTensors.Module(model.Head, HeadPrefix));
            if (model.QueryHead is { } queries) tensors.AddRange(ResumeTensors.Module(queries, QueryHeadPrefix));
        }
        if (resume != null)
        {
            tensors.AddRange(resume.Tensors);
            foreach (var (key, value) in resume.Metadata) metadata[key] = value;
        }
        Safetensors.Write(path, tensors, metadata);
    }

    /// <summary>Copies the trunk's tensors, and the head's when given, from <paramref name="file"/> (read from <paramref name="path"/>).</summary>
    internal static void Read(SafetensorsFile file, string path, IVisionTransformer trunk, SegmentationModel? model)
    {
        ResumeTensors.LoadModule(trunk.Module, file, path);
        if (model == null) return;
        ResumeTensors.LoadModule(model.Head, file, path, HeadPrefix);
        if (model.QueryHead is { } queries) ResumeTensors.LoadModule(queries, file, path, QueryHeadPrefix);
    }

    /// <summary>Loads a checkpoint written by <see cref="Save(string, SegmentationModel, IReadOnlyList{string})"/> or <see cref="Save(string, IVisionTransformer)"/>.</summary>
    /// <exception cref="SafetensorsException">The file is not such a checkpoint, or a tensor is missing or mis-shaped; the message names it.</exception>
    public static SegmentationCheckpointContents Load(string path)
    {
        var file = Safetensors.Read(path);
        if (!file.Metadata.TryGetValue(CrateWeights.ConfigKey, out var json))
            throw new SafetensorsException($"'{path}' has no '{CrateWeights.ConfigKey}' metadata: it is not a Crate checkpoint.");
        var config = CrateConfig.FromJson(json);
        var architecture = file.Metadata.GetValueOrDefault(ArchitectureKey, Architectures.Crate);
        int mlpRatio = file.Metadata.TryGetValue(MlpRatioKey, out var r) ? int.Parse(r, System.Globalization.CultureInfo.InvariantCulture) : 4;
        var trunk = Architectures.Create(architecture, config, mlpRatio);
        SegmentationModel? segmenter = null;
        IReadOnlyList<string> classes;
        if (file.Metadata.TryGetValue(MaskClassesKey, out var classJson))
        {
            classes = JsonSerializer.Deserialize<string[]>(classJson) ?? throw new SafetensorsException($"'{path}': '{MaskClassesKey}' is empty.");
            segmenter = new SegmentationModel(trunk, classes.Count, queryHead: file.Tensors.Any(t => SegmentationCheckpointFormat.IsQueryHeadTensor(t.Name)));
        }
        else classes = ["background", .. Enumerable.Range(0, config.NumClasses).Select(config.ClassName)];
        Read(file, path, trunk, segmenter);
        segmenter?.eval();
        trunk.Module.eval();
        return new SegmentationCheckpointContents(trunk, segmenter, classes);
    }
}
