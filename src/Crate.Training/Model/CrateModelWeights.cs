using Crate.Core.Model;
using Crate.Core.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Model;

/// <summary>Moves weights between a TorchSharp <see cref="CrateModel"/> and the framework-neutral <see cref="CrateWeights"/>.</summary>
public static class CrateModelWeights
{
    /// <summary>The model's parameters as float32 tensors under the reference's names, with its configuration.</summary>
    public static CrateWeights ToWeights(this CrateModel model, IReadOnlyDictionary<string, string>? metadata = null) =>
        CrateWeights.Create(model.Config, ResumeTensors.Module(model).ToList(), metadata, "model");

    /// <summary>Copies <paramref name="weights"/> into the model's parameters (shapes must match the model's configuration).</summary>
    /// <exception cref="SafetensorsException">The weights describe a network of other shapes; the message names the differences.</exception>
    public static void LoadWeights(this CrateModel model, CrateWeights weights)
    {
        if (!weights.Config.SameShapesAs(model.Config))
            throw new SafetensorsException($"Weights for {weights.Config} cannot be loaded into {model.Config}.");
        using var _ = torch.no_grad();
        foreach (var (name, parameter) in model.named_parameters())
        {
            using var source = torch.tensor(weights.Floats(name), parameter.shape);
            parameter.copy_(source);
        }
    }

    /// <summary>Builds a model from a safetensors file (configuration from its metadata, else <paramref name="fallback"/>).</summary>
    public static CrateModel LoadModel(string path, CrateConfig? fallback = null)
    {
        var weights = CrateWeights.Load(path, fallback);
        var model = new CrateModel(weights.Config);
        model.LoadWeights(weights);
        return model;
    }

    /// <summary>Saves the model's weights and configuration as safetensors (atomically).</summary>
    public static void SaveWeights(this CrateModel model, string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        model.ToWeights(metadata).Save(path);
}
