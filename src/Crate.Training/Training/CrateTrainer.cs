using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Crate.Core.Data;
using Crate.Core.IO;
using Crate.Core.Model;
using Crate.Core.Weights;
using Crate.Training.Adaptation;
using Crate.Training.Data;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training;

/// <summary>The outcome of <see cref="CrateTrainer.Train"/>.</summary>
/// <param name="Model">The model (CRATE, or the ViT baseline when <see cref="TrainerOptions.Architecture"/> asks for it) with the best epoch's weights.</param>
/// <param name="History">Every epoch's metrics (a resumed run includes the earlier epochs).</param>
/// <param name="BestEpoch">The epoch whose weights <paramref name="Model"/> holds.</param>
/// <param name="StopReason">Why training ended.</param>
/// <param name="Test">The best weights evaluated on <see cref="TrainerOptions.TestSet"/>, when given.</param>
/// <param name="TrainImages">Images trained on (after holding out validation).</param>
/// <param name="ValidationImages">Images validated on.</param>
/// <param name="Duration">Wall-clock time of this call.</param>
public sealed record TrainingResult(IVisionTransformer Model, IReadOnlyList<EpochMetrics> History, int BestEpoch, string StopReason,
    EvaluationResult? Test, int TrainImages, int ValidationImages, TimeSpan Duration)
{
    /// <summary>The trained configuration (classes, normalisation included).</summary>
    public CrateConfig Config => Model.Config;
}

/// <summary>
/// Trains a CRATE classifier (or the ViT baseline, the same way): seeded initialisation, AdamW or Lion with linear warm-up and cosine decay, label
/// smoothing, gradient clipping, validation with top-1/top-5 every epoch, best-model tracking, early stopping,
/// atomic checkpoints that resume exactly, and a stop with a clear message when the loss stops being finite.
/// </summary>
/// <remarks>
/// <para>Channels, classes, class names and normalisation (per-channel mean and standard deviation of the
/// training images) come from the training data and are stored in the model's configuration. The data must
/// already have the architecture's image size (read it with <see cref="ImageReadOptions"/> or
/// <see cref="DataSource.Conform"/>).</para>
/// <para>Every random choice is seeded: initialisation by <c>torch.manual_seed(Seed)</c>, the validation split,
/// and order and augmentation by (seed, epoch, image). Checkpoints are written at the end of every epoch, and with
/// <see cref="TrainerOptions.KeepEpochWeights"/> a weights file per epoch (to follow the white-box measurements over training).</para>
/// </remarks>
public sealed class CrateTrainer
{
    /// <summary>Creates a trainer with <paramref name="options"/> (defaults when null).</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public CrateTrainer(TrainerOptions? options = null) => Options = (options ?? new()).Validate();

    /// <summary>The options.</summary>
    public TrainerOptions Options { get; }

    /// <summary>Trains a network of <paramref name="architecture"/> (or continues one, see <see cref="TrainerOptions.Resume"/>) on <paramref name="data"/>.</summary>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    /// <exception cref="TrainingException">A checkpoint or initial weights do not fit this run.</exception>
    /// <exception cref="ArgumentException">The data do not fit the architecture.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> fired; the last checkpoint is intact.</exception>
    public TrainingResult Train(CrateConfig architecture, ImageDataset data, CancellationToken cancellation = default)
    {
        var o = Options;
        var clock = Stopwatch.StartNew();
        torch.set_num_threads(o.Threads);
        var (train, validation) = o.ValidationSet != null ? (data, o.ValidationSet)
            : o.ValidationFraction > 0 ? data.Split(o.ValidationFraction, o.Seed) : (data, (ImageDataset?)null);
        if (o.CheckpointDirectory != null) AtomicFile.DeleteAbandoned(o.CheckpointDirectory);
        var resume = o.Resume ? Checkpoint.Load(Path.Combine(o.CheckpointDirectory!, Checkpoint.LastFile)) : null;
        var config = resume?.Config ?? ResolveConfig(architecture, train, o);
        CheckData(config, train, "training");
        if (validation != null) CheckData(config, validation, "validation");
        if (o.TestSet != null) CheckData(config, o.TestSet, "test");

        torch.manual_seed(o.Seed);
        if (resume != null && (resume.State.Optimizer != o.Optimizer || resume.State.Seed != o.Seed || resume.Architecture != o.Architecture || resume.MlpRatio != o.MlpRatio))
            throw new TrainingException($"The checkpoint was trained with {resume.Architecture}, {resume.State.Optimizer}, seed {resume.State.Seed}; this run asks for {o.Architecture}, {o.Optimizer}, seed {o.Seed}. Resume with the same options.");
        if (resume != null && resume.State.Adaptation != o.AdaptationDescription)
            throw new TrainingException($"The checkpoint was trained by {resume.State.Adaptation ?? "training every weight"}; this run asks for {o.AdaptationDescription ?? "training every weight"}. Resume with the same options.");
        var model = resume?.CreateModel() ?? Architectures.Create(o.Architecture, config, o.MlpRatio);
        if (resume == null && o.InitialWeights != null) InitialiseFrom((CrateModel)model, o.InitialWeights, o.Adaptation);   // Validate: initial weights only for CRATE
        // Validate: adapting needs initial weights, so the model is CRATE. Frozen weights never reach the optimiser.
        if (o.AdaptationDescription != null) AdaptedClassifier.Freeze((CrateModel)model, o.Adaptation, o.FineTuneLastLayers);
        using var optimizer = CrateOptimizer.Create(o.Optimizer, CrateOptimizer.Split(model.Module).Where(p => p.Parameter.requires_grad), o.WeightDecay,
            o.Beta1, o.Beta2, o.EmaDecay);
        var state = new TrainingState { Seed = o.Seed, Optimizer = o.Optimizer, Adaptation = o.AdaptationDescription };
        IReadOnlyList<NamedTensor>? best = null;
        if (resume != null)
        {
            resume.Restore(optimizer);
            state = resume.State;
            var bestPath = Path.Combine(o.CheckpointDirectory!, Checkpoint.WeightsFile);
            if (File.Exists(bestPath)) best = Safetensors.Read(bestPath).Tensors;
        }

        var channels = Enumerable.Range(0, config.Channels).ToArray();
        var loader = new BatchLoader(train, o.BatchSize, channels.Select(config.MeanOf).ToArray(), channels.Select(config.StdOf).ToArray(),
            shuffle: true, o.Augmentation, o.Seed);
        int stepsPerEpoch = Math.Min(loader.BatchCount, o.MaxStepsPerEpoch ?? int.MaxValue);
        var schedule = new LearningRateSchedule(o.LearningRate, o.MinLearningRate, (long)Math.Round(o.WarmupEpochs * stepsPerEpoch), (long)stepsPerEpoch * o.Epochs);
        var run = new Run(o, model, optimizer, loader, schedule, stepsPerEpoch, o.BFloat16 ?? MixedPrecision.CpuSupportsBFloat16, cancellation);

        string stopReason = $"trained {o.Epochs} epochs";
        for (int epoch = state.CompletedEpochs + 1; epoch <= o.Epochs; epoch++)
        {
            if (o.EarlyStoppingPatience > 0 && state.EpochsWithoutImprovement >= o.EarlyStoppingPatience)
            {
                stopReason = $"early stopping after epoch {epoch - 1}: validation top-1 has not improved for {state.EpochsWithoutImprovement} epochs";
                break;
            }
            cancellation.ThrowIfCancellationRequested();
            var metrics = run.TrainEpoch(epoch, state);
            EvaluationResult? scores;
            IReadOnlyList<NamedTensor> current;
            using (o.EmaDecay > 0 ? optimizer.UseAverage() : null)   // validation and the kept weights see the average; checkpoints keep both
            {
                scores = validation != null ? Evaluate(model, validation, o, cancellation) : null;
                current = ResumeTensors.Module(model.Module).ToList();
            }
            var previous = state.BestEpoch > 0 ? state.History[state.BestEpoch - 1] : null;
            bool isBest = scores == null || previous == null || scores.Top1 > previous.ValidationTop1
                || (scores.Top1 == previous.ValidationTop1 && scores.Loss < previous.ValidationLoss);
            metrics = metrics with { ValidationLoss = scores?.Loss, ValidationTop1 = scores?.Top1, ValidationTop5 = scores?.Top5, IsBest = isBest };
            state = state with
            {
                CompletedEpochs = epoch,
                GlobalStep = state.GlobalStep + stepsPerEpoch,
                BestEpoch = isBest ? epoch : state.BestEpoch,
                EpochsWithoutImprovement = isBest ? 0 : state.EpochsWithoutImprovement + 1,
                History = [.. state.History, metrics],
            };
            if (isBest) best = current;
            if (o.CheckpointDirectory is { } dir)
            {
                try
                {
                    SaveEpoch(dir, model, optimizer, state, isBest, o.KeepEpochWeights, o.EmaDecay > 0);
                    WriteReport(dir, config, o, state, train.Count, validation?.Count ?? 0, null, "training", clock.Elapsed);
                }
                catch (DiskFullException e)
                {
                    var last = Path.Combine(dir, Checkpoint.LastFile);
                    var kept = File.Exists(last)
                        ? $"'{last}' holds epoch {Checkpoint.Load(last).State.CompletedEpochs}: free some space, then continue with --resume."
                        : "no checkpoint had been written: free some space, then start again.";
                    throw new TrainingException($"{e.Message} Training stopped in epoch {epoch}; {kept}", e);
                }
            }
            o.OnEpoch?.Invoke(metrics);
        }

        if (best != null) ResumeTensors.LoadModule(model.Module, best, "the best epoch's weights");
        var test = o.TestSet != null ? Evaluate(model, o.TestSet, o, cancellation) : null;
        if (o.CheckpointDirectory is { } outDir) WriteReport(outDir, config, o, state, train.Count, validation?.Count ?? 0, test, stopReason, clock.Elapsed);
        return new TrainingResult(model, state.History, state.BestEpoch, stopReason, test, train.Count, validation?.Count ?? 0, clock.Elapsed);
    }

    /// <summary>
    /// Writes an epoch's checkpoint files. <see cref="Checkpoint.LastFile"/> is written last: it is what a resumed run
    /// continues from, so it never claims an epoch whose best weights a crash kept from being written; a run resumed
    /// after such a crash trains that epoch again and rewrites the same files.
    /// </summary>
    private static void SaveEpoch(string dir, IVisionTransformer model, CrateOptimizer optimizer, TrainingState state, bool isBest, bool keepEpoch,
        bool averaged)
    {
        // Weight files hold the moving average when there is one; checkpoints hold the trained values (the average is an optimiser slot).
        if (keepEpoch)
            using (averaged ? optimizer.UseAverage() : null)
                Checkpoint.SaveWeights(Path.Combine(dir, Checkpoint.EpochWeightsFile(state.CompletedEpochs)), model);
        var last = Path.Combine(dir, Checkpoint.LastFile);
        if (!isBest)
        {
            Checkpoint.Save(last, model, optimizer, state);
            return;
        }
        var bestCheckpoint = Path.Combine(dir, Checkpoint.BestFile);
        Checkpoint.Save(bestCheckpoint, model, optimizer, state);
        using (averaged ? optimizer.UseAverage() : null)
            Checkpoint.SaveWeights(Path.Combine(dir, Checkpoint.WeightsFile), model);   // the model holds the best weights now
        Checkpoint.CopyAtomically(bestCheckpoint, last);
    }

    /// <summary>Evaluates in float32 whatever the training precision, so figures match a reloaded model's.</summary>
    private static EvaluationResult Evaluate(IVisionTransformer model, ImageDataset data, TrainerOptions o, CancellationToken cancellation)
    {
        model.BFloat16 = false;
        return CrateEvaluation.Evaluate(model, data, o.EvaluationBatchSize, cancellation);
    }

    /// <summary>The architecture (or the initial weights', adapted) completed from the data: channels, classes, names and normalisation.</summary>
    private static CrateConfig ResolveConfig(CrateConfig architecture, ImageDataset train, TrainerOptions o)
    {
        var init = o.InitialWeights is { } initial ? AdaptedClassifier.ConfigFor(initial.Config, o.Adaptation, o.PromptTokens) : null;
        var (mean, std) = o.Mean != null ? (o.Mean, o.Std!)
            : init is { Mean.Length: > 0 } ? (init.Mean, init.Std)
            : train.ChannelStatistics();
        return ((init ?? architecture) with
        {
            Channels = train.Channels, NumClasses = train.ClassNames.Count, ClassNames = train.ClassNames.ToArray(), Mean = mean, Std = std,
        }).Validate();
    }

    private static void CheckData(CrateConfig config, ImageDataset data, string role)
    {
        if (data.Channels != config.Channels || data.Height != config.ImageHeight || data.Width != config.ImageWidth)
            throw new ArgumentException($"The {role} data '{data.Name}' holds {data.Channels}x{data.Height}x{data.Width} images; the model takes {config.Channels}x{config.ImageHeight}x{config.ImageWidth} (read the data at the model's size).");
        if (data.ClassNames.Count != config.NumClasses)
            throw new ArgumentException($"The {role} data '{data.Name}' has {data.ClassNames.Count} classes; the model has {config.NumClasses}.");
    }

    /// <summary>
    /// Loads <paramref name="initial"/>'s trunk; its head too when the classes are the same, else a fresh head; prompt
    /// tuning keeps the model's fresh prompts.
    /// </summary>
    private static void InitialiseFrom(CrateModel model, CrateWeights initial, AdaptationMethod method)
    {
        var config = model.Config;
        if (!initial.Config.SameShapesAs(config with { NumClasses = initial.Config.NumClasses, PromptTokens = initial.Config.PromptTokens }))
            throw new TrainingException($"The initial weights ({initial.Config}) do not fit this run ({config}): the trunk and input must match.");
        bool sameHead = initial.Config.NumClasses == config.NumClasses
            && (initial.Config.ClassNames.Length == 0 || initial.Config.ClassNames.SequenceEqual(config.ClassNames));
        AdaptedClassifier.LoadTrunk(model, initial, method, keepHead: sameHead);
    }

    private static void WriteReport(string dir, CrateConfig config, TrainerOptions o, TrainingState state, int trainImages, int validationImages,
        EvaluationResult? test, string status, TimeSpan elapsed)
    {
        var report = new JsonObject
        {
            ["status"] = status,
            ["architecture"] = o.Architecture,
            ["config"] = JsonNode.Parse(config.ToJson()),
            ["options"] = new JsonObject
            {
                ["epochs"] = o.Epochs, ["batch_size"] = o.BatchSize, ["learning_rate"] = o.LearningRate, ["min_learning_rate"] = o.MinLearningRate,
                ["warmup_epochs"] = o.WarmupEpochs, ["weight_decay"] = o.WeightDecay, ["optimizer"] = o.Optimizer.ToString(),
                ["label_smoothing"] = o.LabelSmoothing, ["grad_clip_norm"] = o.GradClipNorm, ["augmentation"] = o.Augmentation.ToString(), ["ema_decay"] = o.EmaDecay,
                ["patch_dropout"] = o.PatchDropout, ["full_patch_epochs"] = o.FullPatchEpochs,
                ["validation_fraction"] = o.ValidationSet != null ? null : o.ValidationFraction, ["early_stopping_patience"] = o.EarlyStoppingPatience,
                ["seed"] = o.Seed, ["threads"] = o.Threads, ["max_steps_per_epoch"] = o.MaxStepsPerEpoch,
                ["bfloat16"] = o.BFloat16 ?? MixedPrecision.CpuSupportsBFloat16,
                ["adaptation"] = o.AdaptationDescription,
            },
            ["train_images"] = trainImages,
            ["validation_images"] = validationImages,
            ["best_epoch"] = state.BestEpoch,
            ["epochs"] = JsonSerializer.SerializeToNode(state.History, Checkpoint.Json),
            ["test"] = test == null ? null : JsonSerializer.SerializeToNode(test, Checkpoint.Json),
            ["seconds"] = Math.Round(elapsed.TotalSeconds, 1),
        };
        AtomicFile.WriteAllText(Path.Combine(dir, Checkpoint.MetricsFile), report.ToJsonString(Checkpoint.Json));
    }

    /// <summary>The per-run pieces one epoch of training uses.</summary>
    private sealed class Run(TrainerOptions o, IVisionTransformer model, CrateOptimizer optimizer, BatchLoader loader, LearningRateSchedule schedule,
        int stepsPerEpoch, bool bfloat16, CancellationToken cancellation)
    {
        public EpochMetrics TrainEpoch(int epoch, TrainingState state)
        {
            model.Module.train(AdaptedClassifier.TrainsInTrainingMode(o.Adaptation));
            model.BFloat16 = bfloat16;
            var clock = Stopwatch.StartNew();
            double lossSum = 0, wait = 0, lr = 0;
            long correct = 0;
            int images = 0, step = 0;
            bool dropPatches = PatchDropout.ShouldDrop(o, epoch);
            foreach (var batch in loader.Epoch(epoch, cancellation: cancellation))
            {
                using var b = batch;
                cancellation.ThrowIfCancellationRequested();
                wait += b.Wait.TotalSeconds;
                step++;
                lr = schedule.At(state.GlobalStep + step - 1);
                float loss;
                using (var scope = torch.NewDisposeScope())
                {
                    var logits = dropPatches
                        ? PatchDropout.Forward(model, b.Images, PatchDropout.Draw(b.Count, model.Config, o.PatchDropout, o.Seed, state.GlobalStep + step))
                        : model.Module.forward(b.Images);
                    var lossTensor = nn.functional.cross_entropy(logits, b.Labels, label_smoothing: o.LabelSmoothing);
                    loss = lossTensor.item<float>();
                    if (!float.IsFinite(loss)) throw Diverged(loss, epoch, step, lr, state);
                    optimizer.ZeroGrad();
                    lossTensor.backward();
                    optimizer.Step(lr, o.GradClipNorm);
                    correct += logits.argmax(1).eq(b.Labels).sum().item<long>();
                }
                lossSum += (double)loss * b.Count;
                images += b.Count;
                o.OnStep?.Invoke(new StepMetrics(epoch, step, stepsPerEpoch, state.GlobalStep + step, (long)stepsPerEpoch * o.Epochs, loss, lr,
                    b.Count, images / clock.Elapsed.TotalSeconds));
                if (step == stepsPerEpoch) break;
            }
            double seconds = clock.Elapsed.TotalSeconds;
            return new EpochMetrics
            {
                Epoch = epoch, TrainLoss = lossSum / images, TrainTop1 = (double)correct / images, LearningRate = lr,
                Seconds = seconds, ImagesPerSecond = images / seconds, DataWaitSeconds = wait,
            };
        }

        private TrainingDivergedException Diverged(float loss, int epoch, int step, double lr, TrainingState state)
        {
            var last = o.CheckpointDirectory is { } dir ? Path.Combine(dir, Checkpoint.LastFile) : null;
            var recovery = last != null && File.Exists(last)
                ? $"The last good checkpoint '{last}' (epoch {state.CompletedEpochs}) is intact: resume from it with a lower learning rate."
                : "No checkpoint had been written yet; lower the learning rate and start again.";
            return new TrainingDivergedException(
                FormattableString.Invariant($"Training diverged: the loss became {loss} at epoch {epoch}, step {step} of {stepsPerEpoch} (learning rate {lr:G3}). ") + recovery,
                epoch, step);
        }
    }
}
