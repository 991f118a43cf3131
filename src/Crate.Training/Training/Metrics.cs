using System.Globalization;

namespace Crate.Training;

/// <summary>What one optimiser step did; passed to <see cref="TrainerOptions.OnStep"/>.</summary>
/// <param name="Epoch">Epoch, 1-based.</param>
/// <param name="Step">Step within the epoch, 1-based.</param>
/// <param name="StepsPerEpoch">Steps in every epoch.</param>
/// <param name="GlobalStep">Steps done in the whole run (resumed runs included).</param>
/// <param name="TotalSteps">Steps the whole run will take.</param>
/// <param name="Loss">Training loss of this batch (with label smoothing).</param>
/// <param name="LearningRate">Learning rate used for this step.</param>
/// <param name="Images">Images in this batch.</param>
/// <param name="ImagesPerSecond">Training throughput over the epoch so far.</param>
public sealed record StepMetrics(int Epoch, int Step, int StepsPerEpoch, long GlobalStep, long TotalSteps, double Loss, double LearningRate,
    int Images, double ImagesPerSecond);

/// <summary>One epoch's results; passed to <see cref="TrainerOptions.OnEpoch"/> and written to <c>metrics.json</c>.</summary>
public sealed record EpochMetrics
{
    /// <summary>Epoch, 1-based.</summary>
    public int Epoch { get; init; }
    /// <summary>Mean training loss over the epoch's batches (with label smoothing and augmentation).</summary>
    public double TrainLoss { get; init; }
    /// <summary>Training top-1 accuracy over the epoch (augmented images, weights changing during the epoch).</summary>
    public double TrainTop1 { get; init; }
    /// <summary>Validation loss (plain cross-entropy), when there is a validation set.</summary>
    public double? ValidationLoss { get; init; }
    /// <summary>Validation top-1 accuracy.</summary>
    public double? ValidationTop1 { get; init; }
    /// <summary>Validation top-5 accuracy (top-k with k = min(5, classes)).</summary>
    public double? ValidationTop5 { get; init; }
    /// <summary>Learning rate of the epoch's last step.</summary>
    public double LearningRate { get; init; }
    /// <summary>Wall-clock seconds of the epoch's training steps (validation excluded).</summary>
    public double Seconds { get; init; }
    /// <summary>Training throughput.</summary>
    public double ImagesPerSecond { get; init; }
    /// <summary>Seconds the training steps waited for batches (near zero when data preparation keeps up).</summary>
    public double DataWaitSeconds { get; init; }
    /// <summary>Whether this epoch is the best so far (highest validation top-1; without validation, the latest).</summary>
    public bool IsBest { get; init; }

    /// <summary>One readable line.</summary>
    public override string ToString()
    {
        var s = FormattableString.Invariant($"epoch {Epoch}: train loss {TrainLoss:F4}, train top-1 {TrainTop1:P2}");
        if (ValidationLoss is double vl)
            s += FormattableString.Invariant($", val loss {vl:F4}, top-1 {ValidationTop1:P2}, top-5 {ValidationTop5:P2}");
        return s + FormattableString.Invariant($", lr {LearningRate:G3}, {ImagesPerSecond:F0} images/s{(IsBest ? " (best)" : "")}");
    }
}

/// <summary>Classification quality of a model on a data set.</summary>
/// <param name="Loss">Mean cross-entropy (no label smoothing).</param>
/// <param name="Top1">Fraction of images whose top class is right.</param>
/// <param name="Top5">Fraction whose right class is among the top <paramref name="TopK"/>.</param>
/// <param name="TopK">k of the top-k accuracy: min(5, classes).</param>
/// <param name="Count">Images evaluated.</param>
/// <param name="ClassNames">Class names, index = label.</param>
/// <param name="ClassCounts">Images per true class.</param>
/// <param name="ClassCorrect">Correct top-1 predictions per true class.</param>
public sealed record EvaluationResult(double Loss, double Top1, double Top5, int TopK, int Count, IReadOnlyList<string> ClassNames,
    IReadOnlyList<int> ClassCounts, IReadOnlyList<int> ClassCorrect)
{
    /// <summary>Top-1 accuracy on class <paramref name="label"/> (NaN when the data has none of it).</summary>
    public double ClassAccuracy(int label) => ClassCounts[label] == 0 ? double.NaN : (double)ClassCorrect[label] / ClassCounts[label];

    /// <summary>One readable line.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Count} images: loss {Loss:F4}, top-1 {Top1:P2}, top-{TopK} {Top5:P2}");
}
