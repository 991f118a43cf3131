using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Pretext;

/// <summary>Supervised pretraining as an <see cref="IObjective"/>: cross-entropy of the model's logits against the labels.</summary>
public sealed class SupervisedClassification(CrateModel model, double labelSmoothing = 0) : IObjective
{
    /// <summary>The network being trained.</summary>
    public CrateModel Model { get; } = model;
    /// <inheritdoc />
    public string Name => "supervised";
    /// <inheritdoc />
    public IReadOnlyList<TorchSharp.Modules.Parameter> TrainableParameters => Model.parameters().ToList();
    /// <inheritdoc />
    public void Train(bool training) => Model.train(training);
    /// <inheritdoc />
    public Tensor Loss(Tensor images, Tensor labels) => nn.functional.cross_entropy(Model.forward(images), labels, label_smoothing: labelSmoothing);
}
