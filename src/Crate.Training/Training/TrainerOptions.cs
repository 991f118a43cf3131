using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Training.Adaptation;
using Crate.Training.Data;
using Crate.Training.Segmentation;

namespace Crate.Training;

/// <summary>
/// Everything <see cref="CrateTrainer"/> needs besides the architecture and the training data. Defaults suit a
/// small model trained from scratch with AdamW; <see cref="TrainingRecipes"/> holds tuned sets.
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>
    /// The network: <see cref="Architectures.Crate"/> (default) or <see cref="Architectures.Vit"/>, the standard-transformer baseline
    /// of the same shape, trained with everything else here unchanged (for white-box comparisons).
    /// </summary>
    public string Architecture { get; init; } = Architectures.Crate;
    /// <summary>The ViT baseline's MLP hidden width as a multiple of dim (default 4; ignored for CRATE).</summary>
    public int MlpRatio { get; init; } = 4;
    /// <summary>Epochs to train (default 10). A resumed run continues up to this many.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Images per optimiser step (default 128).</summary>
    public int BatchSize { get; init; } = 128;
    /// <summary>Peak learning rate, reached after warm-up (default 1e-3; Lion wants about 3-10x less).</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Learning rate at the end of the cosine decay (default 1e-5).</summary>
    public double MinLearningRate { get; init; } = 1e-5;
    /// <summary>Epochs of linear warm-up, fractions allowed (default 1).</summary>
    public double WarmupEpochs { get; init; } = 1;
    /// <summary>Decoupled weight decay on weight matrices (default 0.05; norms, biases, positions and the class token never decay).</summary>
    public double WeightDecay { get; init; } = 0.05;
    /// <summary>Optimiser (default AdamW).</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.AdamW;
    /// <summary>First-moment coefficient; default null: 0.9 for both optimisers.</summary>
    public double? Beta1 { get; init; }
    /// <summary>Second coefficient; default null: 0.999 for AdamW, 0.99 for Lion.</summary>
    public double? Beta2 { get; init; }
    /// <summary>Label smoothing of the training loss (default 0.1).</summary>
    public double LabelSmoothing { get; init; } = 0.1;
    /// <summary>Clip the global gradient L2 norm to this (default 1; 0 turns clipping off).</summary>
    public double GradClipNorm { get; init; } = 1.0;
    /// <summary>
    /// Keep an exponential moving average (EMA) of the weights, <c>average = decay average + (1 - decay) weights</c> after
    /// every step, and validate, select and save the averaged weights (checkpoints hold both, so resuming stays exact).
    /// Default 0: off. With <c>d</c> the decay, the average spans about <c>1 / (1 - d)</c> steps.
    /// </summary>
    public double EmaDecay { get; init; }
    /// <summary>
    /// Patch dropout: the fraction of each training image's patch tokens left out of the forward pass, drawn anew for
    /// every image and step (default 0: off). A step then costs roughly the kept fraction of a full one; it also acts as
    /// a regulariser. Validation and test always see every patch.
    /// </summary>
    public double PatchDropout { get; init; }
    /// <summary>
    /// With <see cref="PatchDropout"/>, the last this many epochs train on every patch again, so the weights settle on the
    /// token count they are evaluated with (default 0).
    /// </summary>
    public int FullPatchEpochs { get; init; }
    /// <summary>Training-time augmentation (default none).</summary>
    public Augmentation Augmentation { get; init; } = Augmentation.None;
    /// <summary>A separate validation set; when null, <see cref="ValidationFraction"/> of the training data is held out.</summary>
    public ImageDataset? ValidationSet { get; init; }
    /// <summary>Fraction of the training data held out for validation when no set is given (default 0.1; 0: no validation).</summary>
    public double ValidationFraction { get; init; } = 0.1;
    /// <summary>A test set evaluated once with the best weights after training (default none).</summary>
    public ImageDataset? TestSet { get; init; }
    /// <summary>Stop after this many epochs without a better validation top-1 (default 0: never).</summary>
    public int EarlyStoppingPatience { get; init; }
    /// <summary>Seed of initialisation, validation split, order and augmentation (default 0).</summary>
    public int Seed { get; init; }
    /// <summary>
    /// Train with the trunk's matrix products in bfloat16 (weights, norms, softmax and loss stay float32; see
    /// <c>MixedPrecision</c>). Default null: on where the CPU has bfloat16 dot products. Validation and test
    /// always run in float32, so their figures equal <c>crate evaluate</c>'s and the float32 ONNX export's.
    /// </summary>
    public bool? BFloat16 { get; init; }
    /// <summary>libtorch intra-op threads (default: the machine's cores).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
    /// <summary>Images per evaluation batch (default 256).</summary>
    public int EvaluationBatchSize { get; init; } = 256;
    /// <summary>Cap on optimiser steps per epoch, for quick runs and benchmarks (default null: the whole training set).</summary>
    public int? MaxStepsPerEpoch { get; init; }
    /// <summary>
    /// Where <c>last.ckpt</c>, <c>best.ckpt</c>, <c>weights.safetensors</c> (best) and <c>metrics.json</c> go after
    /// every epoch (default null: nothing is written).
    /// </summary>
    public string? CheckpointDirectory { get; init; }
    /// <summary>
    /// Also write the weights after every epoch as <c>epoch-N.safetensors</c> in <see cref="CheckpointDirectory"/> (default false:
    /// only the last and best), so analyses can follow a run epoch by epoch.
    /// </summary>
    public bool KeepEpochWeights { get; init; }
    /// <summary>Continue from <c>last.ckpt</c> in <see cref="CheckpointDirectory"/>; the result equals an uninterrupted run with the same options.</summary>
    public bool Resume { get; init; }
    /// <summary>
    /// Start from these weights (fine-tuning). The trunk must match the architecture; when the classes differ the
    /// head (<c>mlp_head</c>) is re-initialised. Their normalisation is kept unless <see cref="Mean"/> is set.
    /// </summary>
    public CrateWeights? InitialWeights { get; init; }
    /// <summary>
    /// How <see cref="InitialWeights"/> are adapted (default <see cref="AdaptationMethod.FineTune"/>: every weight trains).
    /// <see cref="AdaptationMethod.LinearProbe"/> trains the head alone; <see cref="AdaptationMethod.PromptTuning"/> the head and
    /// <see cref="PromptTokens"/> new prompt tokens, which become part of the trunk (<see cref="CrateConfig.PromptTokens"/>), so the
    /// written weights are ordinary CRATE weights. Frozen weights never reach the optimiser and the frozen trunk runs as at inference.
    /// Anything but fine-tuning every weight needs <see cref="InitialWeights"/>.
    /// </summary>
    public AdaptationMethod Adaptation { get; init; } = AdaptationMethod.FineTune;
    /// <summary>Prompt tokens that prompt tuning inserts after the class token, initialised with std 0.02 (default 8).</summary>
    public int PromptTokens { get; init; } = 8;
    /// <summary>With fine-tuning, train only the last n layers and the head (default null: every weight).</summary>
    public int? FineTuneLastLayers { get; init; }
    /// <summary>The adaptation in a few words (as checkpoints and <c>metrics.json</c> record it), or null when every weight trains.</summary>
    public string? AdaptationDescription => AdaptedClassifier.Describe(Adaptation, PromptTokens, FineTuneLastLayers);
    /// <summary>Per-channel normalisation mean; default null: computed from the training data (or taken from <see cref="InitialWeights"/>).</summary>
    public float[]? Mean { get; init; }
    /// <summary>Per-channel normalisation standard deviation; set together with <see cref="Mean"/>.</summary>
    public float[]? Std { get; init; }
    /// <summary>Called after every optimiser step, on the training thread.</summary>
    public Action<StepMetrics>? OnStep { get; init; }
    /// <summary>Called after every epoch (after validation and checkpointing), on the training thread.</summary>
    public Action<EpochMetrics>? OnEpoch { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public TrainerOptions Validate()
    {
        void Require(bool ok, string message) { if (!ok) throw new ArgumentException($"Invalid training options: {message}"); }
        Require(Architecture is Architectures.Crate or Architectures.Vit, $"architecture must be '{Architectures.Crate}' or '{Architectures.Vit}', got '{Architecture}'");
        Require(MlpRatio >= 1, $"MLP ratio must be at least 1, got {MlpRatio}");
        Require(InitialWeights == null || Architecture == Architectures.Crate, "initial weights (fine-tuning) are CRATE weights; a ViT run starts from scratch");
        Require(InitialWeights != null || AdaptationDescription == null,
            $"{AdaptationDescription} adapts a pretrained network: set the initial weights it starts from");
        if (InitialWeights != null && AdaptedClassifier.SettingsError(InitialWeights.Config, Adaptation, PromptTokens, FineTuneLastLayers) is { } adaptationError)
            Require(false, adaptationError);
        Require(!KeepEpochWeights || CheckpointDirectory != null, "keeping every epoch's weights needs a checkpoint directory");
        Require(Epochs >= 1, $"epochs must be at least 1, got {Epochs}");
        Require(BatchSize >= 1, $"batch size must be at least 1, got {BatchSize}");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), $"learning rate must be positive, got {LearningRate}");
        Require(MinLearningRate >= 0 && MinLearningRate <= LearningRate, $"minimum learning rate must be in [0, {LearningRate}], got {MinLearningRate}");
        Require(WarmupEpochs >= 0, $"warm-up epochs must be >= 0, got {WarmupEpochs}");
        Require(WeightDecay >= 0, $"weight decay must be >= 0, got {WeightDecay}");
        Require(LabelSmoothing is >= 0 and < 1, $"label smoothing must be in [0, 1), got {LabelSmoothing}");
        Require(GradClipNorm >= 0, $"gradient clip norm must be >= 0, got {GradClipNorm}");
        Require(EmaDecay is >= 0 and < 1, $"EMA decay must be in [0, 1), got {EmaDecay}");
        Require(PatchDropout is >= 0 and < 1, $"patch dropout must be in [0, 1), got {PatchDropout}");
        Require(FullPatchEpochs >= 0 && FullPatchEpochs <= Epochs, $"full-patch epochs must be in [0, {Epochs}] (the epochs), got {FullPatchEpochs}");
        Require(ValidationFraction is >= 0 and < 1, $"validation fraction must be in [0, 1), got {ValidationFraction}");
        Require(EarlyStoppingPatience >= 0, $"early stopping patience must be >= 0, got {EarlyStoppingPatience}");
        Require(Threads >= 1, $"threads must be at least 1, got {Threads}");
        Require(EvaluationBatchSize >= 1, $"evaluation batch size must be at least 1, got {EvaluationBatchSize}");
        Require(MaxStepsPerEpoch is null or >= 1, $"steps per epoch must be at least 1, got {MaxStepsPerEpoch}");
        Require(!Resume || CheckpointDirectory != null, "resuming needs a checkpoint directory");
        Require((Mean == null) == (Std == null), "mean and std must be given together");
        Require(Std == null || Std.All(s => s > 0), "std values must be positive");
        return this;
    }
}
