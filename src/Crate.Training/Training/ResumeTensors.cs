using Crate.Core.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training;

/// <summary>
/// What every resumable loop (classifier training, segmentation training, the study's phases) stores besides its
/// position, as safetensors tensors: module parameters, the optimiser's state under <c>optimizer/&lt;parameter&gt;/&lt;slot&gt;</c>
/// and random generators' states as byte tensors; and how each is put back exactly.
/// </summary>
internal static class ResumeTensors
{
    /// <summary>Prefix of optimiser state tensors.</summary>
    public const string OptimizerPrefix = "optimizer/";
    /// <summary>Name of libtorch's default generator state (used by dropout and <c>torch.rand*</c> without a generator).</summary>
    public const string TorchRngKey = "rng/torch";

    /// <summary>
    /// The parameters of <paramref name="module"/> as float32 tensors named <paramref name="prefix"/> + their name (Crate's
    /// modules hold no buffers). Parameters, not <c>state_dict()</c>: TorchSharp's state dict also lists each child under
    /// the name of the field holding it, which would write the reference names and those aliases side by side.
    /// </summary>
    public static IEnumerable<NamedTensor> Module(nn.Module module, string prefix = "") =>
        module.named_parameters().Select(entry => Floats(prefix + entry.name, entry.parameter));

    /// <summary>The optimiser's state tensors, prefixed <see cref="OptimizerPrefix"/>.</summary>
    public static IEnumerable<NamedTensor> Optimizer(CrateOptimizer optimizer) =>
        optimizer.State().Select(s => Floats(OptimizerPrefix + s.Name, s.Value));

    /// <summary>The state of <paramref name="generator"/> (libtorch's default generator when null) as a byte tensor named <paramref name="key"/>.</summary>
    public static NamedTensor Generator(string key, Generator? generator = null)
    {
        using var state = generator?.get_state() ?? torch.get_rng_state();
        return new NamedTensor(key, DType.U8, state.shape, state.data<byte>().ToArray());
    }

    /// <summary>Copies the tensors named <paramref name="prefix"/> + name into <paramref name="module"/>'s parameters.</summary>
    /// <exception cref="SafetensorsException">A tensor is missing or has another shape; the message names it and <paramref name="source"/>.</exception>
    public static void LoadModule(nn.Module module, SafetensorsFile file, string source, string prefix = "")
    {
        using var noGrad = torch.no_grad();
        foreach (var (key, target) in module.named_parameters())
        {
            if (!file.TryGet(prefix + key, out var tensor)) throw new SafetensorsException($"'{source}' has no tensor '{prefix + key}'.");
            if (!tensor.Shape.SequenceEqual(target.shape))
                throw new SafetensorsException($"'{source}': tensor '{prefix + key}' is {NamedTensor.FormatShape(tensor.Shape)}, the model expects {NamedTensor.FormatShape(target.shape)}.");
            using var value = torch.tensor(tensor.ToFloats(), target.shape);
            target.copy_(value);
        }
    }

    /// <summary>Copies <paramref name="tensors"/> (looked up by name) into <paramref name="module"/>'s parameters.</summary>
    /// <exception cref="SafetensorsException">A tensor is missing or has another shape; the message names it and <paramref name="source"/>.</exception>
    public static void LoadModule(nn.Module module, IReadOnlyList<NamedTensor> tensors, string source) =>
        LoadModule(module, new SafetensorsFile(tensors, new Dictionary<string, string>()), source);

    /// <summary>The optimiser state tensors of <paramref name="file"/>, named without <see cref="OptimizerPrefix"/>.</summary>
    public static IReadOnlyList<NamedTensor> OptimizerState(SafetensorsFile file) =>
        file.Tensors.Where(t => t.Name.StartsWith(OptimizerPrefix, StringComparison.Ordinal))
            .Select(t => new NamedTensor(t.Name[OptimizerPrefix.Length..], t.DType, t.Shape, t.Data)).ToList();

    /// <summary>Restores the optimiser from <paramref name="state"/> (as <see cref="OptimizerState"/> returns it); <paramref name="steps"/> is its step count.</summary>
    /// <exception cref="ArgumentException">A state tensor is unknown or mis-shaped.</exception>
    public static void LoadOptimizer(CrateOptimizer optimizer, IEnumerable<NamedTensor> state, long steps)
    {
        using var scope = torch.NewDisposeScope();
        optimizer.LoadState(state.ToDictionary(t => t.Name, t => torch.tensor(t.ToFloats(), t.Shape), StringComparer.Ordinal), steps);
    }

    /// <summary>Restores <paramref name="generator"/> (libtorch's default generator when null) from <paramref name="state"/>.</summary>
    public static void LoadGenerator(NamedTensor state, Generator? generator = null)
    {
        using var value = torch.tensor(state.Data, [state.Data.LongLength], ScalarType.Byte);
        if (generator != null) generator.set_state(value);
        else torch.set_rng_state(value);
    }

    private static NamedTensor Floats(string name, Tensor value)
    {
        using var cpu = value.detach().to(ScalarType.Float32, CPU).contiguous();
        return NamedTensor.FromFloats(name, cpu.shape, cpu.data<float>().ToArray());
    }
}
