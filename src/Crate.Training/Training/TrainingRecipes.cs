using Crate.Core.Data;
using Crate.Training.Data;

namespace Crate.Training;

/// <summary>A named, tested training configuration: data source, preset and options.</summary>
/// <param name="Name">Name used by <c>crate train --recipe</c>.</param>
/// <param name="Description">What it trains and what it reaches.</param>
/// <param name="Data">Data source (see <see cref="DataSource.Load"/>).</param>
/// <param name="Preset">CRATE preset.</param>
/// <param name="Options">Trainer options (no data sets, callbacks or directories).</param>
/// <param name="EvaluateOnTest">Evaluate the best weights on the source's test split after training.</param>
public sealed record TrainingRecipe(string Name, string Description, string Data, string Preset, TrainerOptions Options, bool EvaluateOnTest);

/// <summary>The recipes <c>crate train --recipe NAME</c> knows.</summary>
public static class TrainingRecipes
{
    /// <summary>
    /// CRATE-mini on all 60,000 Fashion-MNIST training images, aiming at >= 91% test top-1 within 15 minutes on
    /// 2 cores (BENCHMARKS.md records what it reached): 16 epochs of AdamW at 2e-3 with one warm-up epoch and cosine
    /// decay, the first 13 with patch dropout 0.5 (half the patch tokens per image, so a step costs a little over half)
    /// and the last 3 on every patch, label smoothing 0.1, horizontal flips only (padded crops slowed fitting too much
    /// for so few epochs), an exponential moving average of the weights (decay 0.999) for evaluation and the kept
    /// weights, bfloat16 products where the CPU has them.
    /// </summary>
    public static TrainingRecipe FashionMnist91 { get; } = new("fmnist-91",
        "CRATE-mini on Fashion-MNIST (60k train, no validation hold-out, test evaluated at the end); target >= 91% test top-1 in 15 min on 2 cores.",
        DataSource.FashionMnist, "mini",
        new TrainerOptions
        {
            Epochs = 16, BatchSize = 128, LearningRate = 2e-3, MinLearningRate = 1e-5, WarmupEpochs = 1, WeightDecay = 0.05, EmaDecay = 0.999,
            PatchDropout = 0.5, FullPatchEpochs = 3,
            Optimizer = OptimizerKind.AdamW, LabelSmoothing = 0.1, GradClipNorm = 1.0, ValidationFraction = 0,
            Augmentation = new Augmentation { HorizontalFlip = true },
        },
        EvaluateOnTest: true);

    /// <summary>A one-minute demonstration on the generated shapes: CRATE-mini, Lion, 3 epochs of 6,000 images.</summary>
    public static TrainingRecipe ShapesQuick { get; } = new("shapes-quick",
        "CRATE-mini on 6,000 generated shapes with Lion (the reference's optimiser), 3 epochs; a quick end-to-end check.",
        DataSource.Generated, "mini",
        new TrainerOptions
        {
            Epochs = 3, BatchSize = 128, LearningRate = 3e-4, MinLearningRate = 1e-6, WarmupEpochs = 0.5, WeightDecay = 0.5,
            Optimizer = OptimizerKind.Lion, LabelSmoothing = 0.1, ValidationFraction = 0.1,
        },
        EvaluateOnTest: true);

    /// <summary>Every recipe.</summary>
    public static IReadOnlyList<TrainingRecipe> All { get; } = [FashionMnist91, ShapesQuick];

    /// <summary>The recipe called <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No such recipe; the message lists them.</exception>
    public static TrainingRecipe ByName(string name) =>
        All.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"Unknown recipe '{name}'. Recipes: {string.Join(", ", All.Select(r => r.Name))}.");
}
