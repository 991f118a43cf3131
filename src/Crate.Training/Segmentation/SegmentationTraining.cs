using System.Diagnostics;
using Crate.Core.Data.Segmentation;
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
    /// <summary>Supervised segmentation only: train the head alone, the trunk frozen. Default false (fine-tune everything).</summary>
    public bool FreezeBackbone { get; init; }
    /// <summary>Seed of the batch order, flips and (through TorchSharp's generator) dropout. Default 0.</summary>
    public int Seed { get; init; }
}

/// <summary>One epoch's summary.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Loss">Mean training loss over the epoch.</param>
/// <param name="LearningRate">Learning rate at the epoch's last step.</param>
/// <param name="ImagesPerSecond">Training throughput over the epoch.</param>
public sealed record EpochReport(int Epoch, double Loss, double LearningRate, double ImagesPerSecond);

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
        Run(module, CrateOptimizer.Split(module), usable, options, progress, (batch, flip) =>
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
        foreach (var p in trunkParameters) p.requires_grad = !options.FreezeBackbone;
        var trainable = CrateOptimizer.Split(options.FreezeBackbone ? model.Head : model);
        try
        {
            Run(model, trainable, Enumerable.Range(0, data.Count).ToArray(), options, progress, (batch, flip) =>
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

    private static void Run(nn.Module module, IEnumerable<OptimizedParameter> trainable, int[] items, SegmentationTrainingOptions o,
        Action<EpochReport>? progress, Func<int[], Tensor?, Tensor> loss)
    {
        if (o.Epochs <= 0 || o.BatchSize <= 0) throw new ArgumentException($"Epochs ({o.Epochs}) and batch size ({o.BatchSize}) must be positive.");
        if (items.Length == 0) throw new ArgumentException("There is nothing to train on.");
        torch.manual_seed(o.Seed);
        var rng = new Random(o.Seed);
        int stepsPerEpoch = (items.Length + o.BatchSize - 1) / o.BatchSize;
        long total = (long)stepsPerEpoch * o.Epochs, step = 0;
        var schedule = new LearningRateSchedule(o.LearningRate, 0, Math.Max(1, (long)(total * o.WarmupFraction)), total);
        using var optimizer = CrateOptimizer.Create(o.Optimizer, trainable, o.WeightDecay);
        module.train();
        double lr = 0;
        for (int epoch = 1; epoch <= o.Epochs; epoch++)
        {
            var order = (int[])items.Clone();
            rng.Shuffle(order);
            double sum = 0;
            var clock = Stopwatch.StartNew();
            for (int s = 0; s < stepsPerEpoch; s++, step++)
            {
                lr = schedule.At(step);
                var batch = order[(s * o.BatchSize)..Math.Min(items.Length, (s + 1) * o.BatchSize)];
                using var scope = torch.NewDisposeScope();
                var flip = o.Flip ? torch.tensor(batch.Select(_ => rng.Next(2) == 1).ToArray()) : null;
                optimizer.ZeroGrad();
                var value = loss(batch, flip);
                value.backward();
                optimizer.Step(lr);
                sum += value.item<float>();
            }
            progress?.Invoke(new EpochReport(epoch, sum / stepsPerEpoch, lr, items.Length / clock.Elapsed.TotalSeconds));
        }
        module.eval();
    }
}
