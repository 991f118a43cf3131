using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Training.Data;
using Crate.Training.Pretext;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Study;

/// <summary>A fixed optimisation budget: the same for every cell of a study, so cells compare fairly.</summary>
/// <param name="Steps">Optimiser steps.</param>
/// <param name="BatchSize">Images per step.</param>
/// <param name="LearningRate">Peak learning rate (AdamW), after a 10% linear warm-up, cosine decay to 1%.</param>
/// <param name="WeightDecay">Decoupled weight decay on matrices.</param>
public sealed record Budget(int Steps, int BatchSize, double LearningRate, double WeightDecay = 0.05);

/// <summary>Trains any <see cref="IObjective"/> for a <see cref="Budget"/> with Crate's optimiser, schedule and batch loader.</summary>
public static class ObjectiveTraining
{
    /// <summary>
    /// Runs <paramref name="budget"/> steps of <paramref name="objective"/> over <paramref name="data"/> (shuffled,
    /// seeded; epochs repeat as needed) and returns the mean loss of the last tenth of the steps.
    /// </summary>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    public static double Run(IObjective objective, nn.Module owner, CrateConfig config, ImageDataset data, Budget budget, int seed, Action<int, double>? onStep = null)
    {
        var trainable = objective.TrainableParameters.Select(p => p.Handle).ToHashSet();
        var parameters = CrateOptimizer.Split(owner).Where(p => trainable.Contains(p.Parameter.Handle)).ToList();
        using var optimizer = CrateOptimizer.Create(OptimizerKind.AdamW, parameters, budget.WeightDecay);
        var schedule = new LearningRateSchedule(budget.LearningRate, budget.LearningRate / 100, Math.Max(1, budget.Steps / 10), budget.Steps);
        var loader = new BatchLoader(data, budget.BatchSize, Enumerable.Range(0, config.Channels).Select(config.MeanOf).ToArray(),
            Enumerable.Range(0, config.Channels).Select(config.StdOf).ToArray(), shuffle: true, seed: seed);
        objective.Train(true);
        var tail = new List<double>();
        int step = 0;
        for (int epoch = 0; step < budget.Steps; epoch++)
        {
            foreach (var batch in loader.Epoch(epoch))
            {
                using var _ = batch;
                using var scope = torch.NewDisposeScope();
                foreach (var p in parameters) p.Parameter.grad?.zero_();
                var loss = objective.Loss(batch.Images, batch.Labels);
                var value = loss.item<float>();
                if (!float.IsFinite(value))
                    throw new TrainingDivergedException($"{objective.Name}: loss became {value} at step {step}.", epoch, step);
                loss.backward();
                optimizer.Step(schedule.At(step));
                if (step >= budget.Steps - Math.Max(1, budget.Steps / 10)) tail.Add(value);
                onStep?.Invoke(step, value);
                if (++step >= budget.Steps) break;
            }
        }
        objective.Train(false);
        return tail.Average();
    }
}
