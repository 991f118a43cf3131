using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Pretext;

/// <summary>
/// Rotation prediction: each image is turned by 0, 90, 180 or 270 degrees (drawn per image) and the network
/// classifies which. The backbone is a CRATE with a 4-way head; its trunk is what the task pretrains.
/// </summary>
public sealed class RotationPrediction : IObjective
{
    private readonly Generator _generator;

    /// <summary>Creates the task; <paramref name="model"/> must have square inputs and 4 classes.</summary>
    public RotationPrediction(CrateModel model, long seed = 0)
    {
        if (model.Config.ImageHeight != model.Config.ImageWidth)
            throw new ArgumentException($"Rotation prediction needs square images, the model takes {model.Config.ImageHeight}x{model.Config.ImageWidth}.");
        if (model.Config.NumClasses != 4)
            throw new ArgumentException($"Rotation prediction needs a 4-class head, the model has {model.Config.NumClasses}.");
        Model = model;
        _generator = new Generator((ulong)seed);
    }

    /// <summary>The network being pretrained.</summary>
    public CrateModel Model { get; }
    /// <inheritdoc />
    public Generator Generator => _generator;
    /// <inheritdoc />
    public string Name => "rotation";
    /// <inheritdoc />
    public IReadOnlyList<TorchSharp.Modules.Parameter> TrainableParameters => Model.parameters().ToList();
    /// <inheritdoc />
    public void Train(bool training) => Model.train(training);

    /// <summary>Turns image b of <paramref name="images"/> by <c>quarterTurns[b] * 90</c> degrees counter-clockwise.</summary>
    public static Tensor Rotate(Tensor images, Tensor quarterTurns)
    {
        var result = torch.zeros_like(images);
        for (int k = 0; k < 4; k++)
        {
            var chosen = quarterTurns.eq(k).to(images.dtype).view(-1, 1, 1, 1);
            result = result + torch.rot90(images, k, (2, 3)) * chosen;
        }
        return result;
    }

    /// <summary>Random quarter turns (0..3) for a batch, from this task's generator.</summary>
    public Tensor DrawTurns(long batch) => torch.randint(0, 4, [batch], generator: _generator);

    /// <inheritdoc />
    public Tensor Loss(Tensor images, Tensor labels)
    {
        var turns = DrawTurns(images.shape[0]);
        return nn.functional.cross_entropy(Model.forward(Rotate(images, turns)), turns);
    }
}
