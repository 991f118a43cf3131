using System.Globalization;
using System.Text.Json;
using Crate.Core.IO;
using Crate.Core.Model;
using Crate.Core.Segmentation;
using Crate.Core.Weights;
using Crate.Training.Model;
using Crate.Training.Segmentation;

namespace Crate.Training;

/// <summary>A training run failed in a way the user can act on; the message says what happened and what to do.</summary>
public class TrainingException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrainingException(string message) : base(message) { }
    /// <summary>Creates the exception with its cause.</summary>
    public TrainingException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The loss became NaN or infinite; no checkpoint was written for the failing epoch.</summary>
public sealed class TrainingDivergedException(string message, int epoch, int step) : TrainingException(message)
{
    /// <summary>Epoch (1-based) in which the loss stopped being finite.</summary>
    public int Epoch { get; } = epoch;
    /// <summary>Step within that epoch (1-based).</summary>
    public int Step { get; } = step;
}

/// <summary>The loop's position and history, stored in a checkpoint next to the tensors.</summary>
public sealed record TrainingState
{
    /// <summary>Epochs fully trained.</summary>
    public int CompletedEpochs { get; init; }
    /// <summary>Optimiser steps taken (the schedule's position).</summary>
    public long GlobalStep { get; init; }
    /// <summary>Best epoch so far (0: none).</summary>
    public int BestEpoch { get; init; }
    /// <summary>Epochs since the best one, for early stopping.</summary>
    public int EpochsWithoutImprovement { get; init; }
    /// <summary>The optimiser that wrote the state.</summary>
    public OptimizerKind Optimizer { get; init; }
    /// <summary>The run's seed (order and augmentation are keyed by it and the epoch).</summary>
    public int Seed { get; init; }
    /// <summary>The adaptation of the initial weights (<see cref="TrainerOptions.AdaptationDescription"/>); null when every weight trains.</summary>
    public string? Adaptation { get; init; }
    /// <summary>Every finished epoch's metrics.</summary>
    public IReadOnlyList<EpochMetrics> History { get; init; } = [];
}

/// <summary>
/// A resumable training checkpoint: one safetensors file holding the model's parameters under their
/// registered names (CRATE: the reference's; a ViT's also carry its architecture in the metadata), the optimiser state as <c>optimizer/&lt;parameter&gt;/&lt;slot&gt;</c>, libtorch's generator
/// state as <c>rng/torch</c>, and the configuration and <see cref="TrainingState"/> as JSON metadata.
/// Written atomically, so a crash leaves the previous checkpoint whole.
/// </summary>
public sealed class Checkpoint
{
    /// <summary>File name of the latest checkpoint in a run directory.</summary>
    public const string LastFile = "last.ckpt";
    /// <summary>File name of the best epoch's checkpoint.</summary>
    public const string BestFile = "best.ckpt";
    /// <summary>File name of the best weights (plain <see cref="CrateWeights"/>, what other commands read).</summary>
    public const string WeightsFile = "weights.safetensors";
    /// <summary>File name of the run's metrics.</summary>
    public const string MetricsFile = "metrics.json";

    /// <summary>File name of epoch <paramref name="epoch"/>'s weights, written with <see cref="TrainerOptions.KeepEpochWeights"/>.</summary>
    public static string EpochWeightsFile(int epoch) => FormattableString.Invariant($"epoch-{epoch}.safetensors");

    /// <summary>
    /// Writes <paramref name="model"/>'s weights and configuration (atomically): CRATE as <see cref="CrateWeights"/>, what every
    /// command reads; the ViT baseline as a trunk file (<see cref="SegmentationCheckpoint"/>: the same tensors plus its architecture).
    /// </summary>
    public static void SaveWeights(string path, IVisionTransformer model)
    {
        if (model is CrateModel crate) crate.SaveWeights(path);
        else SegmentationCheckpoint.Save(path, model);
    }

    private const string StateKey = "crate.training_state";
    private const string RngKey = ResumeTensors.TorchRngKey;

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = true,
    };

    private readonly CrateWeights? _weights;

    private Checkpoint(string path, CrateConfig config, string architecture, int mlpRatio, IReadOnlyList<NamedTensor> model,
        IReadOnlyList<NamedTensor> optimizer, byte[] torchRng, TrainingState state)
    {
        Source = path; Config = config; Architecture = architecture; MlpRatio = mlpRatio; ModelTensors = model;
        OptimizerState = optimizer; TorchRng = torchRng; State = state;
        if (architecture == Architectures.Crate) _weights = CrateWeights.Create(config, model, source: path);
    }

    /// <summary>Where the checkpoint was read from.</summary>
    public string Source { get; }
    /// <summary>The model's configuration.</summary>
    public CrateConfig Config { get; }
    /// <summary>The network (<see cref="Architectures.Crate"/> or <see cref="Architectures.Vit"/>).</summary>
    public string Architecture { get; }
    /// <summary>The ViT's MLP ratio (4 for CRATE, where it means nothing).</summary>
    public int MlpRatio { get; }
    /// <summary>The model's parameters under their registered names.</summary>
    public IReadOnlyList<NamedTensor> ModelTensors { get; }
    /// <summary>The model's weights and configuration, for a CRATE checkpoint.</summary>
    /// <exception cref="TrainingException">The checkpoint holds a ViT (use <see cref="CreateModel"/>).</exception>
    public CrateWeights Weights => _weights ?? throw new TrainingException($"Checkpoint '{Source}' holds a {Architecture} model, not CRATE weights.");
    /// <summary>Optimiser state tensors, named <c>parameter/slot</c>.</summary>
    public IReadOnlyList<NamedTensor> OptimizerState { get; }
    /// <summary>libtorch's default generator state (used by dropout).</summary>
    public byte[] TorchRng { get; }
    /// <summary>The loop's position and history.</summary>
    public TrainingState State { get; }

    /// <summary>Builds the checkpoint's model (CRATE or ViT) with its weights.</summary>
    public IVisionTransformer CreateModel()
    {
        var model = Architectures.Create(Architecture, Config, MlpRatio);
        ResumeTensors.LoadModule(model.Module, ModelTensors, Source);
        return model;
    }

    /// <summary>Writes a checkpoint of <paramref name="model"/>, <paramref name="optimizer"/> and <paramref name="state"/> to <paramref name="path"/>, atomically.</summary>
    public static void Save(string path, IVisionTransformer model, CrateOptimizer optimizer, TrainingState state)
    {
        var tensors = ResumeTensors.Module(model.Module).ToList();
        tensors.AddRange(ResumeTensors.Optimizer(optimizer));
        tensors.Add(ResumeTensors.Generator(RngKey));
        var metadata = new Dictionary<string, string>
        {
            [CrateWeights.ConfigKey] = model.Config.ToJson(),
            [StateKey] = JsonSerializer.Serialize(state, Json),
        };
        if (model is VitModel vit)
        {
            metadata[SegmentationCheckpointFormat.ArchitectureKey] = Architectures.Vit;
            metadata[SegmentationCheckpointFormat.MlpRatioKey] = vit.MlpRatio.ToString(CultureInfo.InvariantCulture);
        }
        Safetensors.Write(path, tensors, metadata);
    }

    /// <summary>Reads a checkpoint written by <see cref="Save"/>.</summary>
    /// <exception cref="TrainingException">The file is missing, malformed or not a checkpoint.</exception>
    public static Checkpoint Load(string path)
    {
        if (!File.Exists(path)) throw new TrainingException($"Checkpoint '{path}' does not exist.");
        try
        {
            var file = Safetensors.Read(path);
            if (!file.Metadata.TryGetValue(StateKey, out var stateJson) || !file.TryGet(RngKey, out var rng))
                throw new TrainingException($"'{path}' is not a training checkpoint (no '{StateKey}' metadata or '{RngKey}' tensor); a weights file can start a run with --init-from.");
            var state = JsonSerializer.Deserialize<TrainingState>(stateJson, Json) ?? throw new TrainingException($"Checkpoint '{path}' has an empty training state.");
            var model = file.Tensors.Where(t => !t.Name.Contains('/')).ToList();
            var optimizer = ResumeTensors.OptimizerState(file);
            var config = CrateConfig.FromJson(file.Metadata[CrateWeights.ConfigKey]);
            var architecture = file.Metadata.GetValueOrDefault(SegmentationCheckpointFormat.ArchitectureKey, Architectures.Crate);
            int mlpRatio = file.Metadata.TryGetValue(SegmentationCheckpointFormat.MlpRatioKey, out var ratio) ? int.Parse(ratio, CultureInfo.InvariantCulture) : 4;
            return new Checkpoint(path, config, architecture, mlpRatio, model, optimizer, rng.Data, state);
        }
        catch (Exception e) when (e is SafetensorsException or JsonException or ArgumentException or KeyNotFoundException or FormatException)
        {
            throw new TrainingException($"Checkpoint '{path}' cannot be read: {e.Message}", e);
        }
    }

    /// <summary>Restores the optimiser state (its step count is the global step: one update per step) and libtorch's generator.</summary>
    public void Restore(CrateOptimizer optimizer)
    {
        ResumeTensors.LoadOptimizer(optimizer, OptimizerState, State.GlobalStep);
        ResumeTensors.LoadGenerator(new NamedTensor(RngKey, DType.U8, [TorchRng.LongLength], TorchRng));
    }

    /// <summary>Copies <paramref name="source"/> to <paramref name="target"/> atomically (the target is never partial).</summary>
    internal static void CopyAtomically(string source, string target) =>
        AtomicFile.Write(target, s => { using var input = File.OpenRead(source); input.CopyTo(s); });
}
