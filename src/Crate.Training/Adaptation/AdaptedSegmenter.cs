using Crate.Core.Data.Segmentation;
using Crate.Training.Model;
using Crate.Training.Pretext;
using Crate.Training.Segmentation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Adaptation;

/// <summary>
/// A pretrained trunk adapted to supervised segmentation by one of the <see cref="AdaptationMethod"/>s: a new
/// <see cref="PatchSegmentationHead"/> on the trunk's patch tokens always trains; the linear probe trains nothing else,
/// prompt tuning also the trunk's prompt tokens, fine-tuning also the trunk (or its last n layers). Frozen weights have <c>requires_grad</c> off and are never handed
/// to the optimiser, so they stay bit-identical. As an <see cref="IObjective"/> its targets are masks <c>[B, H, W]</c>
/// (pixel cross-entropy, ignore index 255); train it with <see cref="SegmentationBatchLoader"/>'s batches.
/// </summary>
public sealed class AdaptedSegmenter : IObjective
{
    private readonly List<Parameter> _trainable;

    /// <summary>
    /// Adapts <paramref name="trunk"/> (its classifier head is unused) to <paramref name="maskClasses"/> mask classes,
    /// background included. <paramref name="fineTuneLastLayers"/> limits fine-tuning to the last n layers (null: the whole trunk).
    /// </summary>
    public AdaptedSegmenter(IVisionTransformer trunk, int maskClasses, AdaptationMethod method, int? fineTuneLastLayers = null)
    {
        Method = method;
        Model = new SegmentationModel(trunk, maskClasses);
        _trainable = [.. Model.HeadParameters(), .. TrunkAdaptation.Unfreeze(trunk.Module, trunk.Config.Depth, method, fineTuneLastLayers)];
    }

    /// <summary>The adaptation method.</summary>
    public AdaptationMethod Method { get; }
    /// <summary>The segmentation model: the (partly frozen) trunk and the new head.</summary>
    public SegmentationModel Model { get; }
    /// <summary>Number of parameters the optimiser updates.</summary>
    public long TrainableParameterCount => _trainable.Sum(p => p.numel());

    /// <inheritdoc />
    public string Name => $"segmentation {AdaptedClassifier.NameOf(Method)}";
    /// <inheritdoc />
    public IReadOnlyList<Parameter> TrainableParameters => _trainable;

    /// <inheritdoc />
    public void Train(bool training)
    {
        Model.train(training);
        // A frozen trunk always computes as at inference (no dropout noise on fixed features).
        if (Method != AdaptationMethod.FineTune) Model.Trunk.Module.eval();
    }

    /// <inheritdoc />
    public Tensor Loss(Tensor images, Tensor masks) =>
        nn.functional.cross_entropy(Model.forward(images), masks, ignore_index: SegmentationDataset.IgnoreIndex);
}
