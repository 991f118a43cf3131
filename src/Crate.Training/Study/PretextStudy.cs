using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Training.Adaptation;
using Crate.Training.Model;
using Crate.Training.Pretext;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Study;

/// <summary>The pretext tasks a backbone can be pretrained with.</summary>
public enum PretextTask
{
    /// <summary>Supervised classification of the downstream labels.</summary>
    Supervised,
    /// <summary>CRATE-MAE masked autoencoding.</summary>
    Mae,
    /// <summary>4-way rotation prediction.</summary>
    Rotation,
    /// <summary>SimCLR-style contrastive learning.</summary>
    Contrastive,
}

/// <summary>Settings of a pretext x adaptation study.</summary>
public sealed record StudyOptions
{
    /// <summary>Backbone shape (trunk and input); its class count is the downstream task's.</summary>
    public CrateConfig Backbone { get; init; } = CratePresets.Mini;
    /// <summary>Pretext tasks to pretrain with.</summary>
    public IReadOnlyList<PretextTask> Pretexts { get; init; } = Enum.GetValues<PretextTask>();
    /// <summary>Adaptation methods to apply to every pretrained backbone.</summary>
    public IReadOnlyList<AdaptationMethod> Adaptations { get; init; } = Enum.GetValues<AdaptationMethod>();
    /// <summary>Pretraining budget (the same for every pretext task).</summary>
    public Budget Pretraining { get; init; } = new(600, 128, 1e-3);
    /// <summary>Adaptation budget (the same for every method).</summary>
    public Budget Adaptation { get; init; } = new(300, 128, 1e-3);
    /// <summary>Prompt tokens for prompt tuning.</summary>
    public int PromptTokens { get; init; } = 8;
    /// <summary>Seed of initialisation, data order, masks and augmentations.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>
    /// Folder keeping the study's progress: finished cells, pretrained trunks and the current run's checkpoint, so
    /// that <see cref="Resume"/> continues a killed study where it stopped. Default null: no progress is kept.
    /// </summary>
    [JsonIgnore]
    public string? CheckpointDirectory { get; init; }
    /// <summary>Steps between checkpoints of the pretraining or adaptation in progress. Default 50.</summary>
    [JsonIgnore]
    public int CheckpointEverySteps { get; init; } = 50;
    /// <summary>
    /// Continue the study kept in <see cref="CheckpointDirectory"/> (started with the same options and data): finished
    /// pretrainings and cells are taken from it, the run in progress continues from its checkpoint, and the table
    /// equals an uninterrupted study's (wall times aside). When false, earlier progress there is deleted.
    /// </summary>
    [JsonIgnore]
    public bool Resume { get; init; }
}

/// <summary>One cell of the study table.</summary>
/// <param name="Pretext">How the backbone was pretrained.</param>
/// <param name="Adaptation">How it was adapted.</param>
/// <param name="TestTop1">Downstream test top-1 accuracy.</param>
/// <param name="TrainableParameters">Parameters the adaptation updated.</param>
/// <param name="PretextLoss">Final pretext loss (mean of the last tenth of steps).</param>
/// <param name="AdaptationLoss">Final adaptation loss.</param>
/// <param name="Seconds">Wall time of the adaptation.</param>
public sealed record StudyCell(PretextTask Pretext, AdaptationMethod Adaptation, double TestTop1, long TrainableParameters, double PretextLoss, double AdaptationLoss, double Seconds);

/// <summary>
/// The foundation-model experiment: pretrain a CRATE backbone with each pretext task under one budget, adapt each
/// backbone with each method under another, and measure downstream classification. The prediction under test:
/// prompt tuning reaches only what the pretext task represents (rotation prediction should adapt poorly to
/// classification), while fine-tuning reaches further.
/// </summary>
public static class PretextStudy
{
    /// <summary>Runs the grid; <paramref name="log"/> receives one line per phase.</summary>
    public static IReadOnlyList<StudyCell> Run(StudyOptions options, ImageDataset train, ImageDataset test, Action<string>? log = null)
    {
        log ??= _ => { };
        var config = options.Backbone with { NumClasses = train.ClassNames.Count, ClassNames = [.. train.ClassNames] };
        var progress = options.CheckpointDirectory is { } dir
            ? StudyProgress.Open(dir, Fingerprint(options, train, test), options.CheckpointEverySteps, options.Resume)
            : null;
        var cells = new List<StudyCell>();
        foreach (var pretext in options.Pretexts)
        {
            var clock = Stopwatch.StartNew();
            CrateWeights trunk;
            double pretextLoss;
            if (progress != null && progress.TryGetPretrained(pretext, config, out trunk, out pretextLoss))
                log($"pretrained {pretext}: loss {pretextLoss:F4} (kept from the interrupted run)");
            else
            {
                (trunk, pretextLoss) = Pretrain(pretext, config, train, options, progress?.Phase($"pretrain {pretext}"));
                progress?.SavePretrained(pretext, trunk, pretextLoss);
                log($"pretrained {pretext}: loss {pretextLoss:F4} in {clock.Elapsed.TotalSeconds:F0} s");
            }
            foreach (var method in options.Adaptations)
            {
                if (progress?.Cell(pretext, method) is { } kept)
                {
                    cells.Add(kept);
                    log($"  {method}: test top-1 {kept.TestTop1:P1} (kept from the interrupted run)");
                    continue;
                }
                clock.Restart();
                torch.manual_seed(options.Seed + 17);
                using var adapted = new AdaptedClassifier(trunk, config.NumClasses, method, options.PromptTokens);
                var loss = ObjectiveTraining.Run(adapted, adapted, config, train, options.Adaptation, options.Seed, checkpoint: progress?.Phase($"adapt {pretext} {method}"));
                var top1 = Accuracy(adapted, config, test);
                var cell = new StudyCell(pretext, method, top1, adapted.TrainableParameterCount, pretextLoss, loss, clock.Elapsed.TotalSeconds);
                progress?.SaveCell(cell);
                cells.Add(cell);
                log($"  {method}: test top-1 {top1:P1}, {cell.TrainableParameters:N0} trainable parameters, {cell.Seconds:F0} s");
            }
        }
        return cells;
    }

    /// <summary>What a resumed study must share with the one it continues: the options that change results, and the data.</summary>
    private static string Fingerprint(StudyOptions options, ImageDataset train, ImageDataset test) =>
        $"{JsonSerializer.Serialize(options, FingerprintJson)}, train '{train.Name}' ({train.Count} images), test '{test.Name}' ({test.Count} images)";

    private static readonly JsonSerializerOptions FingerprintJson = new() { Converters = { new JsonStringEnumConverter() } };

    /// <summary>
    /// Pretrains a backbone with <paramref name="pretext"/>; returns its weights (with a fresh downstream head) and final loss.
    /// With <paramref name="checkpoint"/>, progress is saved as it goes and a checkpoint of the same phase is continued from.
    /// </summary>
    public static (CrateWeights Trunk, double Loss) Pretrain(PretextTask pretext, CrateConfig config, ImageDataset train, StudyOptions options,
        StepCheckpoint? checkpoint = null)
    {
        torch.manual_seed(options.Seed);
        using var model = new CrateModel(pretext == PretextTask.Rotation ? config with { NumClasses = 4, ClassNames = [] } : config);
        (IObjective objective, nn.Module owner) = pretext switch
        {
            PretextTask.Supervised => (new SupervisedClassification(model), model),
            PretextTask.Rotation => (new RotationPrediction(model, options.Seed), model),
            PretextTask.Mae => Owned(new MaskedAutoencoder(model, seed: options.Seed)),
            PretextTask.Contrastive => Owned(new Contrastive(model, seed: options.Seed)),
            _ => throw new ArgumentOutOfRangeException(nameof(pretext)),
        };
        var loss = ObjectiveTraining.Run(objective, owner, config, train, options.Pretraining, options.Seed, checkpoint: checkpoint);
        // Keep the trunk; the downstream head is always new, so take it from a freshly initialised model.
        using var fresh = new CrateModel(config);
        var trained = model.ToWeights();
        var head = fresh.ToWeights();
        var tensors = CrateWeights.Layout(config).Select(p => p.Name.StartsWith("mlp_head.", StringComparison.Ordinal)
            ? head.Tensors.First(t => t.Name == p.Name)
            : trained.Tensors.First(t => t.Name == p.Name));
        return (CrateWeights.Create(config, tensors), loss);
    }

    private static (IObjective, nn.Module) Owned<T>(T module) where T : nn.Module, IObjective => (module, module);

    /// <summary>Top-1 accuracy of <paramref name="classifier"/> on <paramref name="test"/>.</summary>
    public static double Accuracy(nn.Module<Tensor, Tensor> classifier, CrateConfig config, ImageDataset test)
    {
        var loader = new Data.BatchLoader(test, 256, Enumerable.Range(0, config.Channels).Select(config.MeanOf).ToArray(),
            Enumerable.Range(0, config.Channels).Select(config.StdOf).ToArray());
        long correct = 0;
        using var _ = torch.no_grad();
        foreach (var batch in loader.Epoch(0))
        {
            using var b = batch;
            using var scope = torch.NewDisposeScope();
            correct += classifier.forward(batch.Images).argmax(1).eq(batch.Labels).sum().item<long>();
        }
        return (double)correct / test.Count;
    }
}
