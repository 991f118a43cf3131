using System.Globalization;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Adaptation;

/// <summary>
/// Which of a pretrained trunk's parameters an <see cref="AdaptationMethod"/> trains, in one place for every downstream
/// task (classification, segmentation). Works on any trunk named as the reference names CRATE (<c>transformer.layers.{i}.</c>,
/// <c>mlp_head.</c>), so on the ViT baseline too.
/// </summary>
public static class TrunkAdaptation
{
    private const string LayerPrefix = "transformer.layers.";
    private const string ClassifierHeadPrefix = "mlp_head.";
    /// <summary>The trunk's learned prompt tokens, when its configuration asks for them: what prompt tuning trains.</summary>
    private const string PromptTokensName = "prompt_tokens";
    /// <summary>The trunk's positional embedding, class token's position first, then the patch grid's row by row.</summary>
    private const string PositionalEmbeddingName = "pos_embedding";

    /// <summary>
    /// Sets <c>requires_grad</c> on every parameter of <paramref name="trunk"/> for <paramref name="method"/> and returns the
    /// ones left trainable: none for the linear probe, the trunk's prompt tokens (<c>prompt_tokens</c>, when it has them) for
    /// prompt tuning, and for fine-tuning the whole trunk or only its last <paramref name="fineTuneLastLayers"/> layers. The trunk's own classifier
    /// head is always frozen: an adapted model puts its own head on the trunk's tokens, so that head would never get a gradient.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fineTuneLastLayers"/> is below 1.</exception>
    /// <exception cref="ArgumentException">Prompt tuning, but the trunk has no prompt tokens.</exception>
    public static IReadOnlyList<Parameter> Unfreeze(nn.Module trunk, int depth, AdaptationMethod method, int? fineTuneLastLayers = null)
    {
        if (fineTuneLastLayers is < 1)
            throw new ArgumentOutOfRangeException(nameof(fineTuneLastLayers), $"fine-tuning the last n layers needs n >= 1, got {fineTuneLastLayers}");
        if (method == AdaptationMethod.PromptTuning && !trunk.named_parameters().Any(p => p.name == PromptTokensName))
            throw new ArgumentException("Prompt tuning needs a trunk with prompt tokens (CrateConfig.PromptTokens > 0).", nameof(trunk));
        int firstTrained = fineTuneLastLayers is int n ? Math.Max(0, depth - n) : 0;
        bool Trains(string name) => method switch
        {
            AdaptationMethod.PromptTuning => name == PromptTokensName,
            AdaptationMethod.FineTune => !name.StartsWith(ClassifierHeadPrefix, StringComparison.Ordinal) && (fineTuneLastLayers is null || LayerIndex(name) >= firstTrained),
            _ => false,
        };
        var trainable = new List<Parameter>();
        foreach (var (name, parameter) in trunk.named_parameters())
        {
            parameter.requires_grad = Trains(name);
            if (parameter.requires_grad) trainable.Add(parameter);
        }
        return trainable;
    }

    /// <summary>
    /// <paramref name="trunk"/> rebuilt with <paramref name="promptTokens"/> fresh prompt tokens after its class token (drawn from
    /// the seeded generator), every other weight copied: the trunk that prompt tuning trains the prompts of.
    /// </summary>
    public static IVisionTransformer WithPrompts(IVisionTransformer trunk, int promptTokens)
    {
        var prompted = Architectures.Create(Architectures.NameOf(trunk), trunk.Config with { PromptTokens = promptTokens }, (trunk as VitModel)?.MlpRatio ?? 4);
        CopyMatching(trunk.Module, prompted.Module);
        return prompted;
    }

    /// <summary>
    /// <paramref name="trunk"/> rebuilt for <paramref name="height"/> x <paramref name="width"/> inputs (same patch size): every
    /// weight copied, and the patch part of the positional embedding resampled bilinearly from the old patch grid to the new
    /// one (the class token's position kept). Patch embedding, layers and heads do not depend on the input size, so a
    /// classifier trained on 28x28 items can start a segmenter of 64x64 scenes.
    /// </summary>
    /// <exception cref="ArgumentException">The patch size does not divide the new size.</exception>
    public static IVisionTransformer Resized(IVisionTransformer trunk, int height, int width)
    {
        var old = trunk.Config;
        var config = (old with { ImageHeight = height, ImageWidth = width }).Validate();
        var resized = Architectures.Create(Architectures.NameOf(trunk), config, (trunk as VitModel)?.MlpRatio ?? 4);
        CopyMatching(trunk.Module, resized.Module, (name, value) => name == PositionalEmbeddingName ? ResamplePositions(value, old, config) : value);
        return resized;
    }

    /// <summary>
    /// <paramref name="trunk"/> for images of <paramref name="channels"/> x <paramref name="height"/> x <paramref name="width"/>:
    /// the trunk itself when it already takes them, <see cref="Resized"/> when only the size differs and its patch size divides
    /// the new one. The one rule every "start from these weights" path follows (CLI and ML.NET).
    /// </summary>
    /// <exception cref="ArgumentException">The channels differ or the patch size does not divide the new size; the message says what the trunk takes.</exception>
    public static IVisionTransformer FittedTo(IVisionTransformer trunk, int channels, int height, int width)
    {
        var c = trunk.Config;
        if (c.Channels == channels && c.ImageHeight == height && c.ImageWidth == width) return trunk;
        if (c.Channels == channels && height % c.PatchSize == 0 && width % c.PatchSize == 0) return Resized(trunk, height, width);
        throw new ArgumentException($"the trunk takes {c.Channels}-channel images in patches of {c.PatchSize}, the images are {channels}x{height}x{width}");
    }

    /// <summary>Positional embedding <c>[1, 1 + N, dim]</c> of <paramref name="from"/>'s grid resampled to <paramref name="to"/>'s.</summary>
    private static Tensor ResamplePositions(Tensor embedding, Core.Model.CrateConfig from, Core.Model.CrateConfig to)
    {
        long dim = embedding.shape[2];
        var grid = embedding.narrow(1, 1, from.NumPatches).reshape(1, from.GridHeight, from.GridWidth, dim).permute(0, 3, 1, 2);
        var scaled = nn.functional.interpolate(grid, [to.GridHeight, to.GridWidth], mode: InterpolationMode.Bilinear, align_corners: false);
        return torch.cat([embedding.narrow(1, 0, 1), scaled.permute(0, 2, 3, 1).reshape(1, to.NumPatches, dim)], 1);
    }

    /// <summary>Copies every parameter of <paramref name="from"/> into the parameter of the same name in <paramref name="to"/>, where there is one.</summary>
    public static void CopyMatching(nn.Module from, nn.Module to) => CopyMatching(from, to, (_, value) => value);

    /// <summary>As <see cref="CopyMatching(nn.Module, nn.Module)"/>, each value passed through <paramref name="convert"/> (name, value) first.</summary>
    private static void CopyMatching(nn.Module from, nn.Module to, Func<string, Tensor, Tensor> convert)
    {
        using var noGrad = torch.no_grad();
        var source = from.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in to.named_parameters())
            if (source.TryGetValue(name, out var value)) parameter.copy_(convert(name, value));
    }

    /// <summary>The layer a parameter belongs to (<c>transformer.layers.{i}.</c>), or -1 for embedding and head parameters.</summary>
    private static int LayerIndex(string name)
    {
        if (!name.StartsWith(LayerPrefix, StringComparison.Ordinal)) return -1;
        var rest = name.AsSpan(LayerPrefix.Length);
        int dot = rest.IndexOf('.');
        return int.Parse(dot < 0 ? rest : rest[..dot], CultureInfo.InvariantCulture);
    }
}
