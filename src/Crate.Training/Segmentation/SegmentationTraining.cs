using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Crate.Core.Data.Segmentation;
using Crate.Core.IO;
using Crate.Core.Weights;
using Crate.Training.Adaptation;
using Crate.Training.Data;
using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Segmentation;

/// <summary>Settings of a training run on segmentation data; every field has a working default.</summary>
public sealed record SegmentationTrainingOptions
{
    /// <summary>Passes over the training data. Default 10.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Images per step. Default 64.</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Optimiser (the trainer's AdamW or Lion). Default AdamW.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    /// <summary>Peak learning rate. Default 1e-3.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Decoupled weight decay (matrices only, as the trainer splits parameters). Default 0.05.</summary>
    public double WeightDecay { get; init; } = 0.05;
    /// <summary>Fraction of the steps spent warming the learning rate up linearly; cosine decay to 0 follows. Default 0.05.</summary>
    public double WarmupFraction { get; init; } = 0.05;
    /// <summary>Flip a random half of each batch horizontally (images and masks together). Default true.</summary>
    public bool Flip { get; init; } = true;
    /// <summary>
    /// Supervised segmentation only: what trains besides the new head (see <see cref="TrunkAdaptation"/>): nothing (linear
    /// probe), the trunk's prompt tokens (prompt tuning) or the trunk (fine-tuning). Default fine-tuning.
    /// </summary>
    public AdaptationMethod Adaptation { get; init; } = AdaptationMethod.FineTune;
    /// <summary>Supervised segmentation with fine-tuning only: train the last n layers of the trunk, not all of it. Default null: the whole trunk.</summary>
    public int? FineTuneLastLayers { get; init; }
    /// <summary>
    /// Mixed precision while training: the trunk's matrix products in bfloat16, weights, normalisation, the head and the loss
    /// in float32 (see <see cref="MixedPrecision"/>). Default null: on where the CPU has bfloat16 instructions. The trained
    /// trunk is left in float32 for evaluation and export.
    /// </summary>
    public bool? BFloat16 { get; init; }
    /// <summary>Seed of the batch order, flips and (through TorchSharp's generator) dropout. Default 0.</summary>
    public int Seed { get; init; }
    /// <summary>
    /// A resumable checkpoint written (atomically) after every epoch: a <see cref="SegmentationCheckpoint"/> of the model
    /// plus the optimiser's state, libtorch's generator and the loop's position. Default null: none.
    /// </summary>
    [JsonIgnore]
    public string? CheckpointPath { get; init; }
    /// <summary>
    /// Continue from <see cref="CheckpointPath"/> (written by a run with the same options; load the model to train from it
    /// with <see cref="SegmentationCheckpoint.Load"/>). Epochs it completed are skipped; the result equals an uninterrupted run's.
    /// </summary>
    [JsonIgnore]
    public bool Resume { get; init; }
    /// <summary>Called after every optimiser step (for progress displays); <see cref="StepMetrics.Loss"/> is the batch's loss. Default null.</summary>
    [JsonIgnore]
    public Action<StepMetrics>? OnStep { get; init; }
}

/// <summary>One epoch's summary.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Loss">Mean training loss over the epoch.</param>
/// <param name="LearningRate">Learning rate at the epoch's last step.</param>
/// <param name="ImagesPerSecond">Training throughput over the epoch.</param>
public sealed record EpochReport(int Epoch, double Loss, double LearningRate, double ImagesPerSecond)
{
    /// <summary>One log line: epoch, loss, learning rate and images/s.</summary>
    public override string ToString() => FormattableString.Invariant($"epoch {Epoch,3}  loss {Loss:F4}  lr {LearningRate:E2}  {ImagesPerSecond:F0} images/s");
}

/// <summary>
/// Trains on <see cref="SegmentationDataset"/>s: image-level classification of the scenes (what emergent segmentation
/// needs) and supervised segmentation with pixel cross-entropy (ignore index 255). Uses the trainer's optimisers
/// (<see cref="CrateOptimizer"/>) and warm-up + cosine <see cref="LearningRateSchedule"/>; shuffled batches, optional
/// flips; each step runs in its own dispose scope. Works on any <see cref="IVisionTransformer"/> (CRATE or the ViT baseline).
/// </summary>
public static class SegmentationTraining
{
    /// <summary>Trains <paramref name="model"/>'s classifier on the scenes' image-level labels (images without objects are skipped).</summary>
    public static void TrainClassifier(IVisionTransformer model, SegmentationDataset data, SegmentationTrainingOptions options, Action<EpochReport>? progress = null)
    {
        var config = model.Config;
        if (config.NumClasses != data.NumClasses - 1)
            throw new ArgumentException($"The classifier has {config.NumClasses} classes but '{data.Name}' has {data.NumClasses - 1} object classes.");
        var usable = Enumerable.Range(0, data.Count).Where(i => data.Label(i) >= 0).ToArray();
        var module = model.Module;
        Run(model, module, CrateOptimizer.Split(module), usable, options, progress, new Checkpointing(
            (path, state) => SegmentationCheckpoint.Write(path, model, null, null, state), (file, path) => SegmentationCheckpoint.Read(file, path, model, null)), (batch, flip) =>
        {
            var images = SegmentationBatch.Images(data, batch, config);
            if (flip is not null) images = torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images);
            return nn.functional.cross_entropy(module.forward(images), SegmentationBatch.Labels(data, batch));
        });
    }

    /// <summary>Trains <paramref name="model"/> on the masks with per-pixel cross-entropy; ignored pixels (255) count for nothing.</summary>
    public static void TrainSegmentation(SegmentationModel model, SegmentationDataset data, SegmentationTrainingOptions options, Action<EpochReport>? progress = null)
    {
        var config = model.Trunk.Config;
        if (model.NumClasses != data.NumClasses)
            throw new ArgumentException($"The segmentation head has {model.NumClasses} classes but '{data.Name}' has {data.NumClasses} mask classes.");
        var trunkParameters = model.Trunk.Module.parameters().ToList();
        TrunkAdaptation.Unfreeze(model.Trunk.Module, config.Depth, options.Adaptation, options.FineTuneLastLayers);
        var trainable = CrateOptimizer.Split(model).Where(p => p.Parameter.requires_grad).ToList();   // the head and what the method unfroze
        try
        {
            Run(model.Trunk, model, trainable, Enumerable.Range(0, data.Count).ToArray(), options, progress,
                new Checkpointing((path, state) => SegmentationCheckpoint.Write(path, model.Trunk, model, data.ClassNames, state),
                    (file, path) => SegmentationCheckpoint.Read(file, path, model.Trunk, model)), (batch, flip) =>
            {
                var images = SegmentationBatch.Images(data, batch, config);
                var masks = SegmentationBatch.Masks(data, batch);
                if (flip is not null)
                {
                    images = torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images);
                    masks = torch.where(flip.view(-1, 1, 1), masks.flip(2), masks);
                }
                return nn.functional.cross_entropy(model.forward(images), masks, ignore_index: SegmentationDataset.IgnoreIndex);
            });
        }
        finally
        {
            foreach (var p in trunkParameters) p.requires_grad = true;
        }
    }

    private static void Run(IVisionTransformer trunk, nn.Module module, IEnumerable<OptimizedParameter> trainable, int[] items, SegmentationTrainingOptions o,
        Action<EpochReport>? progress, Checkpointing checkpointing, Func<int[], Tensor?, Tensor> loss)
    {
        trunk.BFloat16 = o.BFloat16 ?? MixedPrecision.CpuSupportsBFloat16;
        try { Loop(module, trainable, items, o, progress, checkpointing, loss); }
        finally { trunk.BFloat16 = false; }
    }

    private static void Loop(nn.Module module, IEnumerable<OptimizedParameter> trainable, int[] items, SegmentationTrainingOptions o,
        Action<EpochReport>? progress, Checkpointing checkpointing, Func<int[], Tensor?, Tensor> loss)
    {
        if (o.Epochs <= 0 || o.BatchSize <= 0) throw new ArgumentException($"Epochs ({o.Epochs}) and batch size ({o.BatchSize}) must be positive.");
        if (items.Length == 0) throw new ArgumentException("There is nothing to train on.");
        if (o.Resume && o.CheckpointPath == null) throw new ArgumentException("Resuming needs the checkpoint path.");
        torch.manual_seed(o.Seed);
        int stepsPerEpoch = (items.Length + o.BatchSize - 1) / o.BatchSize;
        long total = (long)stepsPerEpoch * o.Epochs;
        var schedule = new LearningRateSchedule(o.LearningRate, 0, Math.Max(1, (long)(total * o.WarmupFraction)), total);
        using var optimizer = CrateOptimizer.Create(o.Optimizer, trainable, o.WeightDecay);
        var options = JsonSerializer.Serialize(o, OptionsJson) + $", {items.Length} items";
        int completed = o.Resume ? ResumeState.Restore(o.CheckpointPath!, checkpointing.Load, optimizer, options, stepsPerEpoch) : 0;
        module.train();
        for (int epoch = completed + 1; epoch <= o.Epochs; epoch++)
        {
            // Order and flips are drawn from (seed, epoch): a resumed run needs no generator state to draw the same batches.
            var random = new SeededRandom(o.Seed, epoch);
            var order = (int[])items.Clone();
            random.Shuffle<int>(order);
            double sum = 0, lr = 0;
            var clock = Stopwatch.StartNew();
            for (int s = 0; s < stepsPerEpoch; s++)
            {
                lr = schedule.At((long)(epoch - 1) * stepsPerEpoch + s);
                var batch = order[(s * o.BatchSize)..Math.Min(items.Length, (s + 1) * o.BatchSize)];
                using var scope = torch.NewDisposeScope();
                var flip = o.Flip ? torch.tensor(batch.Select(_ => random.Next(2) == 1).ToArray()) : null;
                optimizer.ZeroGrad();
                var value = loss(batch, flip);
                value.backward();
                optimizer.Step(lr);
                float batchLoss = value.item<float>();
                sum += batchLoss;
                o.OnStep?.Invoke(new StepMetrics(epoch, s + 1, stepsPerEpoch, (long)(epoch - 1) * stepsPerEpoch + s + 1, total, batchLoss, lr,
                    batch.Length, ((long)s * o.BatchSize + batch.Length) / clock.Elapsed.TotalSeconds));
            }
            if (o.CheckpointPath != null) Save(checkpointing, o.CheckpointPath, new ResumeState(optimizer, epoch, options), epoch);
            progress?.Invoke(new EpochReport(epoch, sum / stepsPerEpoch, lr, items.Length / clock.Elapsed.TotalSeconds));
        }
        module.eval();
    }

    private static void Save(Checkpointing checkpointing, string path, ResumeState state, int epoch)
    {
        try { checkpointing.Save(path, state); }
        catch (DiskFullException e)
        {
            var kept = epoch > 1 ? $"'{path}' holds epoch {epoch - 1}: free some space, then continue with --resume." : "no checkpoint had been written: free some space, then start again.";
            throw new TrainingException($"{e.Message} Training stopped in epoch {epoch}; {kept}", e);
        }
    }

    private static readonly JsonSerializerOptions OptionsJson = new(Checkpoint.Json) { WriteIndented = false };

    /// <summary>How the model of a run is written to and read from a resumable checkpoint.</summary>
    private sealed record Checkpointing(Action<string, ResumeState> Save, Action<SafetensorsFile, string> Load);

    /// <summary>The loop's part of a resumable checkpoint: optimiser state, libtorch's generator, completed epochs and the options that produced them.</summary>
    internal sealed class ResumeState(CrateOptimizer optimizer, int completedEpochs, string options)
    {
        private const string EpochsKey = "segmentation.completed_epochs";
        private const string OptionsKey = "segmentation.training_options";

        /// <summary>Tensors to store beside the model's.</summary>
        public IEnumerable<NamedTensor> Tensors => [.. ResumeTensors.Optimizer(optimizer), ResumeTensors.Generator(ResumeTensors.TorchRngKey)];

        /// <summary>Metadata to store beside the model's.</summary>
        public IReadOnlyDictionary<string, string> Metadata => new Dictionary<string, string>
        {
            [EpochsKey] = completedEpochs.ToString(CultureInfo.InvariantCulture),
            [OptionsKey] = options,
        };

        /// <summary>Loads <paramref name="path"/> into the module, optimiser and generator; returns the epochs it completed.</summary>
        public static int Restore(string path, Action<SafetensorsFile, string> loadModel, CrateOptimizer optimizer, string options, int stepsPerEpoch)
        {
            if (!File.Exists(path)) throw new TrainingException($"Checkpoint '{path}' does not exist: there is nothing to resume.");
            var file = Safetensors.Read(path);
            if (!file.Metadata.TryGetValue(EpochsKey, out var epochs) || !file.Metadata.TryGetValue(OptionsKey, out var written) || !file.TryGet(ResumeTensors.TorchRngKey, out var rng))
                throw new TrainingException($"'{path}' is not a resumable segmentation checkpoint (no '{EpochsKey}' metadata).");
            if (written != options)
                throw new TrainingException($"Checkpoint '{path}' was written by a run with other options ({written}); this run has {options}. Resume with the same options.");
            int completed = int.Parse(epochs, CultureInfo.InvariantCulture);
            loadModel(file, path);
            ResumeTensors.LoadOptimizer(optimizer, ResumeTensors.OptimizerState(file), (long)completed * stepsPerEpoch);
            ResumeTensors.LoadGenerator(rng);
            return completed;
        }
    }
}
