using Crate.Core.Model;
using Crate.Core.Weights;
using TorchSharp;

namespace Crate.Training.Model;

/// <summary>
/// Moves parameters between a TorchSharp <see cref="CrateModel"/> and framework-neutral <see cref="CrateWeights"/>
/// (what safetensors files, the ONNX exporter and the runtime read). State-dict names equal the reference keys,
/// so the mapping is by name, one to one.
/// </summary>
public static class CrateModelWeights
{
    /// <summary>Copies every parameter (as float32, on the CPU) into weights carrying the model's configuration.</summary>
    /// <param name="model">The network to read.</param>
    /// <param name="metadata">Extra metadata to store with the weights (the configuration is always added).</param>
    public static CrateWeights ToWeights(this CrateModel model, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var scope = torch.NewDisposeScope();
        var tensors = new List<NamedTensor>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            var values = parameter.detach().to(torch.float32).cpu().contiguous().data<float>().ToArray();
            tensors.Add(NamedTensor.FromFloats(name, parameter.shape, values));
        }
        return CrateWeights.Create(model.Config, tensors, metadata);
    }

    /// <summary>Overwrites every parameter of <paramref name="model"/> with <paramref name="weights"/> (keeping each parameter's device and dtype).</summary>
    /// <exception cref="ArgumentException">The weights describe a network of other shapes.</exception>
    public static void LoadWeights(this CrateModel model, CrateWeights weights)
    {
        if (!model.Config.SameShapesAs(weights.Config))
            throw new ArgumentException($"Cannot load weights of {weights.Config} into a model of {model.Config}: the shapes differ.", nameof(weights));
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        foreach (var (name, parameter) in model.named_parameters())
        {
            var source = torch.tensor(weights.Floats(name), parameter.shape).to(parameter.dtype, parameter.device);
            parameter.copy_(source);
        }
    }
}
