using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Pretext;

/// <summary>
/// A trainable objective over image batches: a pretext task (masked modelling, rotation, contrastive), supervised
/// classification, or an adaptation of a pretrained backbone. It owns the modules it trains and says which
/// parameters an optimiser should update.
/// </summary>
public interface IObjective
{
    /// <summary>Short name for logs and tables, e.g. "mae", "rotation".</summary>
    string Name { get; }

    /// <summary>The parameters to optimise (frozen ones excluded).</summary>
    IReadOnlyList<TorchSharp.Modules.Parameter> TrainableParameters { get; }

    /// <summary>Switches every owned module between training and evaluation mode.</summary>
    void Train(bool training);

    /// <summary>
    /// The task's own random generator (masks, rotations, augmented views), or null when it draws nothing; its state is
    /// saved with a training checkpoint so a resumed run draws what an uninterrupted one would.
    /// </summary>
    Generator? Generator => null;

    /// <summary>The scalar loss for a batch of normalised images <c>[B, C, H, W]</c> and their labels (ignored by self-supervised tasks).</summary>
    Tensor Loss(Tensor images, Tensor labels);
}
