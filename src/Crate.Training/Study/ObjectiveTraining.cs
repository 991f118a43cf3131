using System.Globalization;
using System.Text.Json;
using Crate.Core.Data;
using Crate.Core.IO;
using Crate.Core.Model;
using Crate.Core.Weights;
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

/// <summary>Where and how often <see cref="ObjectiveTraining"/> saves its progress, so that a killed run continues where it stopped.</summary>
/// <param name="Path">The checkpoint file, replaced atomically every <paramref name="EverySteps"/> steps.</param>
/// <param name="Phase">Names the run the file belongs to; a file left by another phase is not resumed from (it is overwritten).</param>
/// <param name="EverySteps">Steps between checkpoints.</param>
public sealed record StepCheckpoint(string Path, string Phase, int EverySteps);

/// <summary>Trains any <see cref="IObjective"/> for a <see cref="Budget"/> with Crate's optimiser, schedule and batch loader.</summary>
public static class ObjectiveTraining
{
    private const string PhaseKey = "objective.phase";
    private const string StepKey = "objective.step";
    private const string TailKey = "objective.tail_losses";
    private const string ObjectiveRngKey = "rng/objective";

    /// <summary>
    /// Runs <paramref name="budget"/> steps of <paramref name="objective"/> over <paramref name="data"/> (shuffled,
    /// seeded; epochs repeat as needed) and returns the mean loss of the last tenth of the steps. With
    /// <paramref name="checkpoint"/>, progress is saved every <see cref="StepCheckpoint.EverySteps"/> steps and a run
    /// finding a checkpoint of its phase continues from it, ending exactly where an uninterrupted run ends.
    /// </summary>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    public static double Run(IObjective objective, nn.Module owner, CrateConfig config, ImageDataset data, Budget budget, int seed,
        Action<int, double>? onStep = null, StepCheckpoint? checkpoint = null) =>
        Run(objective, owner, new BatchLoader(data, budget.BatchSize, Enumerable.Range(0, config.Channels).Select(config.MeanOf).ToArray(),
            Enumerable.Range(0, config.Channels).Select(config.StdOf).ToArray(), shuffle: true, seed: seed), budget, onStep, checkpoint);

    /// <summary>
    /// Runs <paramref name="budget"/> steps of <paramref name="objective"/> over the batches of <paramref name="loader"/>
    /// (whose batch size is used; epochs repeat as needed), as the overload over an <see cref="ImageDataset"/> does:
    /// the way to train on targets other than class labels, e.g. segmentation masks.
    /// </summary>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    public static double Run(IObjective objective, nn.Module owner, IBatchSource loader, Budget budget,
        Action<int, double>? onStep = null, StepCheckpoint? checkpoint = null)
    {
        var trainable = objective.TrainableParameters.Select(p => p.Handle).ToHashSet();
        var parameters = CrateOptimizer.Split(owner).Where(p => trainable.Contains(p.Parameter.Handle)).ToList();
        using var optimizer = CrateOptimizer.Create(OptimizerKind.AdamW, parameters, budget.WeightDecay);
        var schedule = new LearningRateSchedule(budget.LearningRate, budget.LearningRate / 100, Math.Max(1, budget.Steps / 10), budget.Steps);
        var tail = new List<double>();
        int step = checkpoint != null ? Restore(checkpoint, objective, owner, optimizer, tail) : 0;
        objective.Train(true);
        for (int epoch = step / loader.BatchCount; step < budget.Steps; epoch++)
        {
            foreach (var batch in loader.Epoch(epoch, firstBatch: step - epoch * loader.BatchCount))
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
                if (checkpoint != null && step % checkpoint.EverySteps == 0) Save(checkpoint, step, objective, owner, optimizer, tail);
            }
        }
        objective.Train(false);
        return tail.Average();
    }

    private static void Save(StepCheckpoint checkpoint, int step, IObjective objective, nn.Module owner, CrateOptimizer optimizer, List<double> tail)
    {
        var tensors = new List<NamedTensor>(ResumeTensors.Module(owner));
        tensors.AddRange(ResumeTensors.Optimizer(optimizer));
        tensors.Add(ResumeTensors.Generator(ResumeTensors.TorchRngKey));
        if (objective.Generator is { } generator) tensors.Add(ResumeTensors.Generator(ObjectiveRngKey, generator));
        var metadata = new Dictionary<string, string>
        {
            [PhaseKey] = checkpoint.Phase,
            [StepKey] = step.ToString(CultureInfo.InvariantCulture),
            [TailKey] = JsonSerializer.Serialize(tail),
        };
        try { Safetensors.Write(checkpoint.Path, tensors, metadata); }
        catch (DiskFullException e)
        {
            throw new TrainingException($"{e.Message} {checkpoint.Phase} stopped at step {step}; its last checkpoint is intact: free some space, then continue with --resume.", e);
        }
    }

    /// <summary>Loads the checkpoint when it belongs to this phase; returns the step to continue from (0 when there is none).</summary>
    private static int Restore(StepCheckpoint checkpoint, IObjective objective, nn.Module owner, CrateOptimizer optimizer, List<double> tail)
    {
        if (!File.Exists(checkpoint.Path)) return 0;
        var file = Safetensors.Read(checkpoint.Path);
        if (file.Metadata.GetValueOrDefault(PhaseKey) != checkpoint.Phase) return 0;
        int step = int.Parse(file.Metadata[StepKey], CultureInfo.InvariantCulture);
        ResumeTensors.LoadModule(owner, file, checkpoint.Path);
        ResumeTensors.LoadOptimizer(optimizer, ResumeTensors.OptimizerState(file), step);
        if (!file.TryGet(ResumeTensors.TorchRngKey, out var rng)) throw new SafetensorsException($"'{checkpoint.Path}' has no tensor '{ResumeTensors.TorchRngKey}'.");
        ResumeTensors.LoadGenerator(rng);
        if (objective.Generator is { } generator)
        {
            if (!file.TryGet(ObjectiveRngKey, out var state)) throw new SafetensorsException($"'{checkpoint.Path}' has no tensor '{ObjectiveRngKey}'.");
            ResumeTensors.LoadGenerator(state, generator);
        }
        tail.AddRange(JsonSerializer.Deserialize<double[]>(file.Metadata[TailKey]) ?? []);
        return step;
    }
}
