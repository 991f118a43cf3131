using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Crate.Core.Data;
using Crate.Core.Data.Segmentation;
using Crate.Core.Model;
using Crate.Training.Adaptation;
using Crate.Training.Model;
using Crate.Training.Pretext;
using Crate.Training.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Study;

/// <summary>The pretext tasks a backbone can be pretrained with, and the untrained control.</summary>
public enum PretextTask
{
    /// <summary>Supervised classification of the downstream labels (for scenes: the image-level label, the largest object's class).</summary>
    Supervised,
    /// <summary>CRATE-MAE masked autoencoding.</summary>
    Mae,
    /// <summary>4-way rotation prediction.</summary>
    Rotation,
    /// <summary>SimCLR-style contrastive learning.</summary>
    Contrastive,
    /// <summary>No pretraining: the randomly initialised backbone, the control row that shows what pretraining adds.</summary>
    Untrained,
}

/// <summary>The downstream tasks of a study: its two halves.</summary>
public enum StudyTask
{
    /// <summary>Image classification (test top-1).</summary>
    Classification,
    /// <summary>Supervised segmentation of generated scenes (test mIoU and foreground IoU).</summary>
    Segmentation,
}

/// <summary>Settings of a pretext x adaptation study.</summary>
public sealed record StudyOptions
{
    /// <summary>
    /// Backbone shape (trunk and input) of the classification half; its class count is the downstream task's. The
    /// segmentation half uses the same trunk (width, depth, heads) on the scenes' size with <see cref="SegmentationPatchSize"/>.
    /// </summary>
    public CrateConfig Backbone { get; init; } = CratePresets.Mini;
    /// <summary>The halves to run. Default both.</summary>
    public IReadOnlyList<StudyTask> Tasks { get; init; } = Enum.GetValues<StudyTask>();
    /// <summary>Pretext tasks to pretrain with (and the untrained control). Default all.</summary>
    public IReadOnlyList<PretextTask> Pretexts { get; init; } = Enum.GetValues<PretextTask>();
    /// <summary>Adaptation methods to apply to every pretrained backbone.</summary>
    public IReadOnlyList<AdaptationMethod> Adaptations { get; init; } = Enum.GetValues<AdaptationMethod>();
    /// <summary>Pretraining budget (the same for every pretext task and both halves).</summary>
    public Budget Pretraining { get; init; } = new(600, 128, 1e-3);
    /// <summary>Adaptation budget (the same for every method and both halves).</summary>
    public Budget Adaptation { get; init; } = new(300, 128, 1e-3);
    /// <summary>Prompt tokens for prompt tuning.</summary>
    public int PromptTokens { get; init; } = 8;
    /// <summary>Patch side of the segmentation half's backbone. Default 8 (an 8 x 8 grid on 64 x 64 scenes).</summary>
    public int SegmentationPatchSize { get; init; } = 8;
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

/// <summary>The data of a study: train and test sets of each half it runs (null for a half it does not run).</summary>
/// <param name="ClassificationTrain">Classification training images (pretraining and adaptation).</param>
/// <param name="ClassificationTest">Classification test images.</param>
/// <param name="SegmentationTrain">Training scenes: their images pretrain the segmentation backbone, their masks adapt it.</param>
/// <param name="SegmentationTest">Test scenes.</param>
public sealed record StudyData(ImageDataset? ClassificationTrain, ImageDataset? ClassificationTest, SegmentationDataset? SegmentationTrain, SegmentationDataset? SegmentationTest);

/// <summary>One cell of the study table.</summary>
/// <param name="Task">The half it belongs to.</param>
/// <param name="Pretext">How the backbone was pretrained (or <see cref="PretextTask.Untrained"/>).</param>
/// <param name="Adaptation">How it was adapted.</param>
/// <param name="TestTop1">Classification: test top-1 accuracy; null for segmentation.</param>
/// <param name="TestMeanIoU">Segmentation: test mean IoU (background included); null for classification.</param>
/// <param name="TestForegroundIoU">Segmentation: test IoU of "any object" against "any object"; null for classification.</param>
/// <param name="TrainableParameters">Parameters the adaptation updated.</param>
/// <param name="TrunkUnchanged">Whether the pretrained trunk was bit-identical after adaptation (checked): true for the frozen methods, false once fine-tuning changed it.</param>
/// <param name="PretextLoss">Final pretext loss (mean of the last tenth of steps); null for the untrained control.</param>
/// <param name="AdaptationLoss">Final adaptation loss.</param>
/// <param name="Seconds">Wall time of the adaptation.</param>
/// <param name="Seed">The seed of initialisation, data order and pretext randomness.</param>
public sealed record StudyCell(StudyTask Task, PretextTask Pretext, AdaptationMethod Adaptation, double? TestTop1, double? TestMeanIoU, double? TestForegroundIoU,
    long TrainableParameters, bool TrunkUnchanged, double? PretextLoss, double AdaptationLoss, double Seconds, int Seed)
{
    /// <summary>The half's headline figure: top-1 for classification, mean IoU for segmentation.</summary>
    [JsonIgnore]
    public double Score => (Task == StudyTask.Classification ? TestTop1 : TestMeanIoU) ?? double.NaN;
}

/// <summary>
/// The foundation-model experiment: pretrain a CRATE backbone with each pretext task under one budget, adapt each
/// backbone with each method under another, and measure the downstream task, in two halves: Fashion-MNIST-style
/// classification and segmentation of generated scenes. Each half has its own backbone, pretrained on that half's
/// images with the same budget (the input sizes differ), and an untrained control row. The prediction under test:
/// prompt tuning reaches only what the pretext task represents (rotation prediction should adapt poorly), while
/// fine-tuning reaches further.
/// </summary>
public static class PretextStudy
{
    /// <summary>Runs the grid; <paramref name="log"/> receives one line per phase.</summary>
    /// <exception cref="ArgumentException">A half to run has no data.</exception>
    public static IReadOnlyList<StudyCell> Run(StudyOptions options, StudyData data, Action<string>? log = null)
    {
        log ??= _ => { };
        var halves = options.Tasks.Select(task => Half.Create(task, options, data)).ToList();
        var progress = options.CheckpointDirectory is { } dir
            ? StudyProgress.Open(dir, Fingerprint(options, data), options.CheckpointEverySteps, options.Resume)
            : null;
        var cells = new List<StudyCell>();
        foreach (var half in halves)
        foreach (var pretext in options.Pretexts)
        {
            var clock = Stopwatch.StartNew();
            var name = $"{half.Task} {pretext}";
            CrateWeights trunk;
            double? pretextLoss;
            if (progress != null && progress.TryGetPretrained(half.Task, pretext, half.Config, out trunk, out pretextLoss))
                log($"pretrained {name}: loss {pretextLoss:F4} (kept from the interrupted run)");
            else
            {
                (trunk, pretextLoss) = Pretrain(pretext, half.Config, half.PretrainingImages, options, progress?.Phase($"pretrain {name}"));
                progress?.SavePretrained(half.Task, pretext, trunk, pretextLoss);
                log(pretextLoss is null ? $"{name}: the initialisation, not pretrained (the control)" : $"pretrained {name}: loss {pretextLoss:F4} in {clock.Elapsed.TotalSeconds:F0} s");
            }
            foreach (var method in options.Adaptations)
            {
                if (progress?.Cell(half.Task, pretext, method) is { } kept)
                {
                    cells.Add(kept);
                    log($"  {method}: {Describe(kept)} (kept from the interrupted run)");
                    continue;
                }
                clock.Restart();
                torch.manual_seed(options.Seed + 17);
                var outcome = half.Adapt(trunk, method, progress?.Phase($"adapt {name} {method}"));
                var cell = new StudyCell(half.Task, pretext, method, outcome.TestTop1, outcome.TestMeanIoU, outcome.TestForegroundIoU, outcome.TrainableParameters,
                    outcome.TrunkUnchanged, pretextLoss, outcome.Loss, clock.Elapsed.TotalSeconds, options.Seed);
                progress?.SaveCell(cell);
                cells.Add(cell);
                log($"  {method}: {Describe(cell)}, {cell.TrainableParameters:N0} trainable parameters, {cell.Seconds:F0} s");
            }
        }
        return cells;
    }

    private static string Describe(StudyCell cell) => cell.Task == StudyTask.Classification
        ? $"test top-1 {cell.TestTop1:P1}"
        : $"test mIoU {cell.TestMeanIoU:F4}, foreground IoU {cell.TestForegroundIoU:F4}";

    /// <summary>The classification backbone's shape: <see cref="StudyOptions.Backbone"/> with the training data's classes.</summary>
    public static CrateConfig ClassificationBackbone(StudyOptions options, ImageDataset train) =>
        options.Backbone with { NumClasses = train.ClassNames.Count, ClassNames = [.. train.ClassNames] };

    /// <summary>
    /// The segmentation backbone's shape: the classification backbone's trunk (width, depth, heads) on the scenes' size with
    /// <see cref="StudyOptions.SegmentationPatchSize"/>, the scenes' object classes (for supervised pretraining) and their
    /// pixel statistics.
    /// </summary>
    public static CrateConfig SegmentationBackbone(StudyOptions options, ImageDataset sceneImages)
    {
        var (mean, std) = sceneImages.ChannelStatistics();
        return options.Backbone with
        {
            ImageHeight = sceneImages.Height, ImageWidth = sceneImages.Width, Channels = sceneImages.Channels, PatchSize = options.SegmentationPatchSize,
            NumClasses = sceneImages.ClassNames.Count, ClassNames = [.. sceneImages.ClassNames], Mean = mean, Std = std,
        };
    }

    /// <summary>What adapting one backbone gave: the test figures of its half, the trainable parameter count, whether the pretrained trunk stayed bit-identical, and the final loss.</summary>
    private sealed record Outcome(double? TestTop1, double? TestMeanIoU, double? TestForegroundIoU, long TrainableParameters, bool TrunkUnchanged, double Loss);

    /// <summary>
    /// Whether every pretrained weight of <paramref name="trunk"/> still equals <paramref name="pretrained"/>'s, bit for bit: what
    /// the frozen methods promise. The classifier head is left out (adaptation always replaces it), and so is any weight the
    /// pretrained trunk lacks (prompt tokens).
    /// </summary>
    private static bool TrunkUnchanged(nn.Module trunk, CrateWeights pretrained)
    {
        var names = CrateWeights.Layout(pretrained.Config).Select(p => p.Name).Where(n => !n.StartsWith("mlp_head.", StringComparison.Ordinal)).ToHashSet();
        return trunk.named_parameters().Where(p => names.Contains(p.name))
            .All(p => p.parameter.detach().contiguous().data<float>().ToArray().AsSpan().SequenceEqual(pretrained.Floats(p.name)));
    }

    /// <summary>One half of the study: its backbone's shape, the images it pretrains on, and how a backbone is adapted and measured.</summary>
    private sealed record Half(StudyTask Task, CrateConfig Config, ImageDataset PretrainingImages, Func<CrateWeights, AdaptationMethod, StepCheckpoint?, Outcome> Adapt)
    {
        public static Half Create(StudyTask task, StudyOptions options, StudyData data) => task switch
        {
            StudyTask.Classification => Classification(options,
                data.ClassificationTrain ?? throw new ArgumentException("The classification half needs training images."),
                data.ClassificationTest ?? throw new ArgumentException("The classification half needs test images.")),
            StudyTask.Segmentation => Segmentation(options,
                data.SegmentationTrain ?? throw new ArgumentException("The segmentation half needs training scenes."),
                data.SegmentationTest ?? throw new ArgumentException("The segmentation half needs test scenes.")),
            _ => throw new ArgumentOutOfRangeException(nameof(task)),
        };

        private static Half Classification(StudyOptions options, ImageDataset train, ImageDataset test)
        {
            var config = ClassificationBackbone(options, train);
            return new Half(StudyTask.Classification, config, train, (trunk, method, checkpoint) =>
            {
                using var adapted = new AdaptedClassifier(trunk, config.NumClasses, method, options.PromptTokens);
                var loss = ObjectiveTraining.Run(adapted, adapted, config, train, options.Adaptation, options.Seed, checkpoint: checkpoint);
                return new Outcome(Accuracy(adapted, config, test), null, null, adapted.TrainableParameterCount, TrunkUnchanged(adapted.Model, trunk), loss);
            });
        }

        private static Half Segmentation(StudyOptions options, SegmentationDataset train, SegmentationDataset test)
        {
            var images = train.ToClassification();
            var config = SegmentationBackbone(options, images);
            return new Half(StudyTask.Segmentation, config, images, (trunk, method, checkpoint) =>
            {
                // The trunk as adaptation needs it (with fresh prompt tokens for prompt tuning), holding the pretrained weights.
                var backbone = new CrateModel(AdaptedClassifier.ConfigFor(config, method, options.PromptTokens));
                AdaptedClassifier.LoadTrunk(backbone, trunk, method, keepHead: false);
                var adapted = new AdaptedSegmenter(backbone, train.NumClasses, method);
                using var model = adapted.Model;
                var batches = new SegmentationBatchLoader(train, options.Adaptation.BatchSize, config, options.Seed);
                var loss = ObjectiveTraining.Run(adapted, model, batches, options.Adaptation, checkpoint: checkpoint);
                var metrics = SegmentationEvaluation.Supervised(model, test);
                return new Outcome(null, metrics.MeanIoU, metrics.ForegroundIoU, adapted.TrainableParameterCount, TrunkUnchanged(backbone, trunk), loss);
            });
        }
    }

    /// <summary>What a resumed study must share with the one it continues: the options that change results, and the data.</summary>
    private static string Fingerprint(StudyOptions options, StudyData data)
    {
        static string Images(string role, string? name, int? count) => name is null ? "" : $", {role} '{name}' ({count} images)";
        return JsonSerializer.Serialize(options, FingerprintJson)
            + Images("train", data.ClassificationTrain?.Name, data.ClassificationTrain?.Count) + Images("test", data.ClassificationTest?.Name, data.ClassificationTest?.Count)
            + Images("train scenes", data.SegmentationTrain?.Name, data.SegmentationTrain?.Count) + Images("test scenes", data.SegmentationTest?.Name, data.SegmentationTest?.Count);
    }

    private static readonly JsonSerializerOptions FingerprintJson = new() { Converters = { new JsonStringEnumConverter() } };

    /// <summary>
    /// Pretrains a backbone with <paramref name="pretext"/>; returns its weights (with a fresh downstream head) and final loss
    /// (null for <see cref="PretextTask.Untrained"/>, whose weights are the initialisation every pretext task starts from).
    /// With <paramref name="checkpoint"/>, progress is saved as it goes and a checkpoint of the same phase is continued from.
    /// </summary>
    public static (CrateWeights Trunk, double? Loss) Pretrain(PretextTask pretext, CrateConfig config, ImageDataset train, StudyOptions options,
        StepCheckpoint? checkpoint = null)
    {
        torch.manual_seed(options.Seed);
        if (pretext == PretextTask.Untrained)
        {
            using var initial = new CrateModel(config);
            return (initial.ToWeights(), null);
        }
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
