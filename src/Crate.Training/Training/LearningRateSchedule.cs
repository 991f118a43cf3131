namespace Crate.Training;

/// <summary>
/// Linear warm-up then cosine decay, per optimiser step:
/// <c>lr(s) = base (s+1) / W</c> for <c>s &lt; W</c>, then
/// <c>lr(s) = min + (base - min) (1 + cos(pi (s - W) / (T - W))) / 2</c>, reaching <c>min</c> at <c>s = T</c>.
/// </summary>
/// <param name="BaseLearningRate">Peak learning rate, reached at the end of warm-up.</param>
/// <param name="MinLearningRate">Final learning rate.</param>
/// <param name="WarmupSteps">Steps of linear warm-up (0: none).</param>
/// <param name="TotalSteps">All steps of the run, warm-up included.</param>
public sealed record LearningRateSchedule(double BaseLearningRate, double MinLearningRate, long WarmupSteps, long TotalSteps)
{
    /// <summary>The learning rate of step <paramref name="step"/> (0-based).</summary>
    public double At(long step)
    {
        if (step < WarmupSteps) return BaseLearningRate * (step + 1) / WarmupSteps;
        double progress = Math.Clamp((double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps), 0, 1);
        return MinLearningRate + (BaseLearningRate - MinLearningRate) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
