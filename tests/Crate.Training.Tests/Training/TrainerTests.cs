using System.Security.Cryptography;
using Crate.Core.Data;
using Crate.Core.IO;
using Crate.Core.Model;
using Crate.Core.Weights;
using Crate.Training;
using Crate.Training.Adaptation;
using Crate.Training.Data;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using Crate.Tests.Shared;

namespace Crate.Training.Tests.Training;

public class TrainerTests
{
    /// <summary>A small trunk so a test trains in seconds on two cores.</summary>
    private static readonly CrateConfig Small = CratePresets.Mini with { Preset = "test", Dim = 64, Depth = 2, Heads = 4, DimHead = 16 };

    /// <summary>
    /// One libtorch thread: tests share two cores with other test runs, and an oversubscribed OpenMP pool ran
    /// these small models 5-10x slower than a single thread did.
    /// </summary>
    private const int Threads = 1;

    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("crate-trainer-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Short_run_on_generated_shapes_learns_well_above_chance()
    {
        var data = GeneratedShapes.Create(3000, seed: 1);
        var test = GeneratedShapes.Create(300, seed: 2);
        var steps = new List<StepMetrics>();
        var trainer = new CrateTrainer(new TrainerOptions
        {
            Epochs = 8, BatchSize = 50, LearningRate = 2e-3, WarmupEpochs = 0.5, ValidationFraction = 0.2, TestSet = test, Seed = 7,
            CheckpointDirectory = _dir, OnStep = steps.Add, Threads = Threads,
        });
        var result = trainer.Train(Small, data);

        Assert.That(result.History, Has.Count.EqualTo(8));
        Assert.That(steps, Has.Count.EqualTo(8 * 48));                         // 2400 training images / 50
        Assert.That(steps.Select(s => s.GlobalStep), Is.EqualTo(Enumerable.Range(1, 8 * 48).Select(i => (long)i)));
        Assert.That(result.TrainImages, Is.EqualTo(2400));
        Assert.That(result.History[^1].TrainLoss, Is.LessThan(result.History[0].TrainLoss * 0.6), "training loss must fall");
        Assert.That(result.Test!.Top1, Is.GreaterThan(0.5), "chance is 0.1");
        // The returned model holds the best epoch's weights: re-evaluating it gives that epoch's validation numbers.
        var best = result.History[result.BestEpoch - 1];
        Assert.That(best.ValidationTop1, Is.EqualTo(result.History.Max(h => h.ValidationTop1)));
        var weights = CrateWeights.Load(Path.Combine(_dir, Checkpoint.WeightsFile));
        using var reloaded = CrateModelWeights.LoadModel(Path.Combine(_dir, Checkpoint.WeightsFile));
        var again = CrateEvaluation.Evaluate(reloaded, test);
        Assert.That(again.Top1, Is.EqualTo(result.Test.Top1));
        // Normalisation stored with the model is the training split's statistics.
        Assert.That(weights.Config.Mean, Has.Length.EqualTo(1));
        Assert.That(weights.Config.ClassNames, Is.EqualTo(GeneratedShapes.ClassNames));
        Assert.That(File.ReadAllText(Path.Combine(_dir, Checkpoint.MetricsFile)), Does.Contain("\"best_epoch\": " + result.BestEpoch));
    }

    [Test]
    public void Evaluation_agrees_with_probabilities_computed_independently()
    {
        var data = GeneratedShapes.Create(70, seed: 3);
        var model = new CrateModel(Small with { ClassNames = [.. GeneratedShapes.ClassNames] });
        var probabilities = CrateEvaluation.Probabilities(model, data, batchSize: 32);
        var result = CrateEvaluation.Evaluate(model, data, batchSize: 32);
        double loss = 0;
        int top1 = 0, top5 = 0;
        for (int i = 0; i < data.Count; i++)
        {
            var p = probabilities[i];
            int label = data.Label(i);
            loss -= Math.Log(p[label]);
            if (Array.IndexOf(p, p.Max()) == label) top1++;
            if (p.Count(v => v > p[label]) < 5) top5++;
        }
        Assert.That(result.Loss, Is.EqualTo(loss / data.Count).Within(1e-4));
        Assert.That(result.Top1, Is.EqualTo((double)top1 / data.Count));
        Assert.That(result.Top5, Is.EqualTo((double)top5 / data.Count));
        Assert.That(result.ClassCounts.Sum(), Is.EqualTo(70));
        Assert.That(result.ClassCorrect.Sum(), Is.EqualTo(top1));
    }

    [TestCase(OptimizerKind.AdamW, Architectures.Crate, 0.0)]
    [TestCase(OptimizerKind.Lion, Architectures.Crate, 0.0)]
    [TestCase(OptimizerKind.AdamW, Architectures.Vit, 0.0)]
    [TestCase(OptimizerKind.AdamW, Architectures.Crate, 0.9)]
    [TestCase(OptimizerKind.AdamW, Architectures.Crate, 0.0, 0.5)]
    public void Resumed_run_equals_uninterrupted_run(OptimizerKind optimizer, string architecture, double ema, double patchDropout = 0)
    {
        // Dropout and augmentation are on, so libtorch's generator and the loader's seeded choices both matter.
        var config = Small with { Dropout = 0.1 };
        var data = GeneratedShapes.Create(320, seed: 4);
        TrainerOptions Options(string dir, Action<EpochMetrics>? onEpoch = null) => new()
        {
            Epochs = 4, BatchSize = 64, Optimizer = optimizer, LearningRate = optimizer == OptimizerKind.Lion ? 3e-4 : 1e-3,
            Augmentation = new Augmentation { CropPadding = 2, HorizontalFlip = true }, ValidationFraction = 0.2, Seed = 11,
            CheckpointDirectory = dir, OnEpoch = onEpoch, Threads = Threads, Architecture = architecture, KeepEpochWeights = true, EmaDecay = ema,
            PatchDropout = patchDropout, FullPatchEpochs = patchDropout > 0 ? 1 : 0,   // epochs 1-3 drop patches; the interruption falls inside them
        };
        var straight = new CrateTrainer(Options(Path.Combine(_dir, "a"))).Train(config, data);
        Assert.That(Architectures.NameOf(straight.Model), Is.EqualTo(architecture));

        using var interrupt = new CancellationTokenSource();
        var dir = Path.Combine(_dir, "b");
        Assert.Throws<OperationCanceledException>(() =>
            new CrateTrainer(Options(dir, m => { if (m.Epoch == 2) interrupt.Cancel(); })).Train(config, data, interrupt.Token));
        Assert.That(Checkpoint.Load(Path.Combine(dir, Checkpoint.LastFile)).State.CompletedEpochs, Is.EqualTo(2));
        var resumed = new CrateTrainer(Options(dir) with { Resume = true }).Train(config, data);

        Assert.That(resumed.History.Select(h => h.TrainLoss), Is.EqualTo(straight.History.Select(h => h.TrainLoss)));
        var expected = Checkpoint.Load(Path.Combine(_dir, "a", Checkpoint.LastFile));
        var actual = Checkpoint.Load(Path.Combine(dir, Checkpoint.LastFile));
        Assert.That(actual.Architecture, Is.EqualTo(architecture));
        foreach (var (a, b) in expected.ModelTensors.Zip(actual.ModelTensors))
            Assert.That(b.Data, Is.EqualTo(a.Data), $"{a.Name} differs after resuming");
        foreach (var (a, b) in expected.OptimizerState.Zip(actual.OptimizerState))
            Assert.That(b.Data, Is.EqualTo(a.Data), $"optimizer state {a.Name} differs after resuming");

        // Every epoch's weights were kept, in the network's own file format; the last one holds what last.ckpt holds
        // (its moving average when the run keeps one).
        for (int epoch = 1; epoch <= 4; epoch++)
        {
            var file = Path.Combine(dir, Checkpoint.EpochWeightsFile(epoch));
            Assert.That(File.Exists(file), Is.True, file);
            Assert.That(Architectures.NameOf(SegmentationCheckpoint.Load(file).Trunk), Is.EqualTo(architecture));
        }
        var lastEpoch = Safetensors.Read(Path.Combine(dir, Checkpoint.EpochWeightsFile(4))).Tensors.ToDictionary(t => t.Name);
        var lastWeights = ema > 0
            ? actual.OptimizerState.Where(t => t.Name.EndsWith("/" + CrateOptimizer.AverageSlot, StringComparison.Ordinal))
                .ToDictionary(t => t.Name[..t.Name.IndexOf('/')], t => t.Data)
            : actual.ModelTensors.ToDictionary(t => t.Name, t => t.Data);
        Assert.That(lastEpoch.Keys, Is.EquivalentTo(lastWeights.Keys));
        foreach (var (name, values) in lastWeights)
            Assert.That(lastEpoch[name].Data, Is.EqualTo(values), $"epoch-4 weights: {name}");
    }

    [Test]
    public void A_ViT_run_starts_from_scratch_only()
    {
        var source = new CrateModel(Small).ToWeights();
        var error = Assert.Throws<ArgumentException>(() => new CrateTrainer(new TrainerOptions { Architecture = Architectures.Vit, InitialWeights = source }))!;
        Assert.That(error.Message, Is.EqualTo("Invalid training options: initial weights (fine-tuning) are CRATE weights; a ViT run starts from scratch"));
        var keep = Assert.Throws<ArgumentException>(() => new CrateTrainer(new TrainerOptions { KeepEpochWeights = true }))!;
        Assert.That(keep.Message, Does.Contain("keeping every epoch's weights needs a checkpoint directory"));
    }

    [Test]
    public void With_an_EMA_the_saved_weights_are_the_average_and_the_checkpoint_keeps_the_trained_ones()
    {
        var data = GeneratedShapes.Create(192, seed: 6);
        var result = new CrateTrainer(new TrainerOptions
        {
            Epochs = 2, BatchSize = 64, ValidationFraction = 0, EmaDecay = 0.8, CheckpointDirectory = _dir, Seed = 3, Threads = Threads,
        }).Train(Small, data);
        var checkpoint = Checkpoint.Load(Path.Combine(_dir, Checkpoint.LastFile));
        var average = checkpoint.OptimizerState.Where(t => t.Name.EndsWith("/" + CrateOptimizer.AverageSlot, StringComparison.Ordinal))
            .ToDictionary(t => t.Name[..t.Name.IndexOf('/')], t => t.Data);
        var saved = CrateWeights.Load(Path.Combine(_dir, Checkpoint.WeightsFile));
        Assert.That(average.Keys, Is.EquivalentTo(saved.Tensors.Select(t => t.Name)));
        foreach (var t in saved.Tensors)
            Assert.That(t.Data, Is.EqualTo(average[t.Name]), $"{t.Name}: the saved weights are the average");
        var trained = checkpoint.Weights.Tensors.Single(t => t.Name == "mlp_head.1.weight");
        Assert.That(trained.Data, Is.Not.EqualTo(average["mlp_head.1.weight"]), "the checkpoint's model holds the trained weights");
        Assert.That(((CrateModel)result.Model).ToWeights().Tensors.Single(t => t.Name == "mlp_head.1.weight").Data, Is.EqualTo(average["mlp_head.1.weight"]));
    }

    [Test]
    public void Non_finite_loss_stops_with_a_message_and_keeps_the_last_checkpoint()
    {
        var data = GeneratedShapes.Create(256, seed: 5);
        var options = new TrainerOptions { Epochs = 3, BatchSize = 64, ValidationFraction = 0, CheckpointDirectory = _dir, Seed = 1, Threads = Threads };
        using var interrupt = new CancellationTokenSource();
        Assert.Throws<OperationCanceledException>(() =>
            new CrateTrainer(options with { OnEpoch = _ => interrupt.Cancel() }).Train(Small, data, interrupt.Token));
        var last = Path.Combine(_dir, Checkpoint.LastFile);
        var before = SHA256.HashData(File.ReadAllBytes(last));

        // An absurd learning rate sends the weights to infinity on the first step of epoch 2; the next loss is not finite.
        var error = Assert.Throws<TrainingDivergedException>(() =>
            new CrateTrainer(options with { Resume = true, LearningRate = 1e30, MinLearningRate = 1e30, GradClipNorm = 0 }).Train(Small, data))!;
        Assert.That(error.Message, Does.StartWith("Training diverged: the loss became"));
        Assert.That(error.Message, Does.Contain($"at epoch 2, step {error.Step} of 4"));
        Assert.That(error.Message, Does.Contain($"The last good checkpoint '{last}' (epoch 1) is intact"));
        Assert.That(error.Epoch, Is.EqualTo(2));
        Assert.That(SHA256.HashData(File.ReadAllBytes(last)), Is.EqualTo(before));
        Assert.That(Checkpoint.Load(last).State.CompletedEpochs, Is.EqualTo(1));
    }

    [Test]
    public void A_full_disk_stops_training_naming_the_file_and_a_resumed_run_ends_as_if_nothing_happened()
    {
        var data = GeneratedShapes.Create(128, seed: 5);
        var options = new TrainerOptions { Epochs = 3, BatchSize = 64, ValidationFraction = 0, Seed = 1, Threads = Threads };
        var reference = new CrateTrainer(options with { CheckpointDirectory = Path.Combine(_dir, "reference") }).Train(Small, data);

        // Epoch 2's last.ckpt meets a full disk half way through (without validation every epoch is the best: best.ckpt
        // and weights.safetensors are written before it and succeed).
        var run = Path.Combine(_dir, "run");
        var last = Path.Combine(run, Checkpoint.LastFile);
        var disk = new FullDisk(capacity: 100_000, target: Checkpoint.LastFile, fromWrite: 2);
        TrainingException error;
        using (AtomicFile.UseOpener(disk.Open))
            error = Assert.Throws<TrainingException>(() => new CrateTrainer(options with { CheckpointDirectory = run }).Train(Small, data))!;
        Assert.That(error.Message, Is.EqualTo(
            $"Cannot write '{last}': the disk is full (No space left on device). The file was left as it was, with no partial copy. " +
            $"Training stopped in epoch 2; '{last}' holds epoch 1: free some space, then continue with --resume."));
        Assert.That(error.InnerException, Is.TypeOf<DiskFullException>());
        Assert.That(Checkpoint.Load(last).State.CompletedEpochs, Is.EqualTo(1), "the previous checkpoint is whole and loads");
        Assert.That(Directory.GetFiles(run, "*.tmp"), Is.Empty, "no temporary file is left behind");

        var resumed = new CrateTrainer(options with { CheckpointDirectory = run, Resume = true }).Train(Small, data);
        Assert.That(((CrateModel)resumed.Model).ToWeights().Tensors.Select(t => t.Data), Is.EqualTo(((CrateModel)reference.Model).ToWeights().Tensors.Select(t => t.Data)));
    }

    [Test]
    public void Fine_tuning_keeps_the_trunk_and_gives_a_new_head()
    {
        var source = new CrateModel(Small with { ClassNames = [.. GeneratedShapes.ClassNames] }).ToWeights();
        // Three classes only: circles, squares and triangles, relabelled 0..2.
        var all = GeneratedShapes.Create(90, seed: 6);
        var three = all.Subset(Enumerable.Range(0, all.Count).Where(i => all.Label(i) < 3).ToArray());
        three = new ImageDataset("three", 1, 28, 28, Enumerable.Range(0, three.Count).SelectMany(i => three.Image(i).ToArray()).ToArray(),
            three.Labels.ToArray(), ["circle", "square", "triangle"]);
        // A learning rate of ~0 leaves every loaded weight as it was, so the test sees what initialisation did.
        var result = new CrateTrainer(new TrainerOptions
        {
            Epochs = 1, BatchSize = 9, LearningRate = 1e-20, MinLearningRate = 0, ValidationFraction = 0, InitialWeights = source, MaxStepsPerEpoch = 1, Threads = Threads,
        }).Train(CratePresets.Tiny, three);

        var tuned = ((CrateModel)result.Model).ToWeights();
        Assert.That(tuned.Config.NumClasses, Is.EqualTo(3));
        Assert.That(tuned.Config.Dim, Is.EqualTo(Small.Dim), "the trunk comes from the initial weights, not the architecture argument");
        foreach (var t in source.Tensors.Where(t => !t.Name.StartsWith("mlp_head.")))
            Assert.That(tuned.Floats(t.Name), Is.EqualTo(source.Floats(t.Name)).Within(1e-6f), t.Name);
        Assert.That(tuned.Tensors.Single(t => t.Name == "mlp_head.1.weight").Shape, Is.EqualTo(new long[] { 3, Small.Dim }));
        Assert.That(tuned.Floats("mlp_head.1.weight"), Is.Not.EqualTo(source.Floats("mlp_head.1.weight")[..(3 * Small.Dim)]));
        Assert.That(tuned.Config.Mean, Is.EqualTo(source.Config.Mean), "fine-tuning keeps the initial weights' normalisation");
    }

    [Test]
    public void Data_of_the_wrong_size_is_rejected_with_both_sizes()
    {
        var data = GeneratedShapes.Create(20, seed: 0, height: 32, width: 32);
        var error = Assert.Throws<ArgumentException>(() => new CrateTrainer(new() { Epochs = 1 }).Train(Small, data))!;
        Assert.That(error.Message, Does.Contain("1x32x32 images; the model takes 1x28x28"));
    }

    [Test]
    public void Resuming_from_a_damaged_or_foreign_file_says_so()
    {
        var data = GeneratedShapes.Create(20, seed: 0);
        var last = Path.Combine(_dir, Checkpoint.LastFile);
        var options = new TrainerOptions { Epochs = 1, Resume = true, CheckpointDirectory = _dir, Threads = Threads };
        var missing = Assert.Throws<TrainingException>(() => new CrateTrainer(options).Train(Small, data))!;
        Assert.That(missing.Message, Is.EqualTo($"Checkpoint '{last}' does not exist."));

        new CrateModel(Small).ToWeights().Save(last);
        var foreign = Assert.Throws<TrainingException>(() => new CrateTrainer(options).Train(Small, data))!;
        Assert.That(foreign.Message, Does.StartWith($"'{last}' is not a training checkpoint"));

        File.WriteAllBytes(last, File.ReadAllBytes(last)[..100]);
        var damaged = Assert.Throws<TrainingException>(() => new CrateTrainer(options).Train(Small, data))!;
        Assert.That(damaged.Message, Does.StartWith($"Checkpoint '{last}' cannot be read: "));
    }

    [Test]
    public void Early_stopping_ends_the_run_after_the_patience_runs_out()
    {
        // A learning rate of 1e-30 leaves float32 weights unchanged, so validation never improves after epoch 1.
        var data = GeneratedShapes.Create(100, seed: 0);
        var result = new CrateTrainer(new TrainerOptions
        {
            Epochs = 6, BatchSize = 50, LearningRate = 1e-30, MinLearningRate = 0, ValidationFraction = 0.2, EarlyStoppingPatience = 2, Threads = Threads,
        }).Train(Small, data);
        Assert.That(result.History.Select(h => h.IsBest), Is.EqualTo(new[] { true, false, false }));
        Assert.That(result.BestEpoch, Is.EqualTo(1));
        Assert.That(result.StopReason, Is.EqualTo("early stopping after epoch 3: validation top-1 has not improved for 2 epochs"));
    }
    [TestCase(AdaptationMethod.PromptTuning, null)]
    [TestCase(AdaptationMethod.LinearProbe, null)]
    [TestCase(AdaptationMethod.FineTune, 1)]
    public void Adapted_runs_train_only_the_adapted_weights_and_resume_exactly(AdaptationMethod method, int? lastLayers)
    {
        var source = new CrateModel(Small with { ClassNames = [.. GeneratedShapes.ClassNames] }).ToWeights();
        var data = GeneratedShapes.Create(192, seed: 8);
        TrainerOptions Options(string dir, Action<EpochMetrics>? onEpoch = null) => new()
        {
            Epochs = 3, BatchSize = 48, LearningRate = 1e-2, ValidationFraction = 0.25, Seed = 3, CheckpointDirectory = dir, OnEpoch = onEpoch,
            Threads = Threads, InitialWeights = source, Adaptation = method, PromptTokens = 4, FineTuneLastLayers = lastLayers,
        };
        var straight = new CrateTrainer(Options(Path.Combine(_dir, "a"))).Train(Small, data);

        // What the method trains: the head; the new prompts (prompt tuning); the last layer (fine-tuning the last one).
        bool Trained(string name) => name.StartsWith("mlp_head.", StringComparison.Ordinal) || name == "prompt_tokens"
            || (method == AdaptationMethod.FineTune && name.StartsWith("transformer.layers.1.", StringComparison.Ordinal));
        var weights = CrateWeights.Load(Path.Combine(_dir, "a", Checkpoint.WeightsFile));
        Assert.That(weights.Config.PromptTokens, Is.EqualTo(method == AdaptationMethod.PromptTuning ? 4 : 0));
        foreach (var (name, _) in CrateWeights.Layout(weights.Config))
        {
            if (!Trained(name)) Assert.That(weights.Floats(name), Is.EqualTo(source.Floats(name)), $"{name} is frozen: bit-identical");
            else if (name != "prompt_tokens") Assert.That(weights.Floats(name), Is.Not.EqualTo(source.Floats(name)), $"{name} trained");
        }
        // Frozen weights never reached the optimiser: it holds state for the trained parameters only.
        var last = Checkpoint.Load(Path.Combine(_dir, "a", Checkpoint.LastFile));
        Assert.That(last.OptimizerState.Select(t => t.Name[..t.Name.IndexOf('/')]).Distinct(),
            Is.EquivalentTo(CrateWeights.Layout(weights.Config).Select(p => p.Name).Where(Trained)));
        Assert.That(last.State.Adaptation, Is.EqualTo(Options("").AdaptationDescription));
        var metrics = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "a", Checkpoint.MetricsFile)))!;
        Assert.That((string?)metrics["options"]!["adaptation"], Is.EqualTo(Options("").AdaptationDescription));

        // Interrupted after epoch 1 and resumed, the run ends as the uninterrupted one did.
        using var interrupt = new CancellationTokenSource();
        var dir = Path.Combine(_dir, "b");
        Assert.Throws<OperationCanceledException>(() =>
            new CrateTrainer(Options(dir, m => { if (m.Epoch == 1) interrupt.Cancel(); })).Train(Small, data, interrupt.Token));
        var resumed = new CrateTrainer(Options(dir) with { Resume = true }).Train(Small, data);
        Assert.That(resumed.History.Select(h => h.TrainLoss), Is.EqualTo(straight.History.Select(h => h.TrainLoss)));
        Assert.That(File.ReadAllBytes(Path.Combine(dir, Checkpoint.WeightsFile)), Is.EqualTo(File.ReadAllBytes(Path.Combine(_dir, "a", Checkpoint.WeightsFile))));

        // Resuming with another adaptation is refused, naming both.
        var other = Options(dir) with { Resume = true, Adaptation = method == AdaptationMethod.LinearProbe ? AdaptationMethod.FineTune : AdaptationMethod.LinearProbe, FineTuneLastLayers = null };
        var error = Assert.Throws<TrainingException>(() => new CrateTrainer(other).Train(Small, data))!;
        Assert.That(error.Message, Does.Contain($"trained by {Options("").AdaptationDescription}").And.Contain("Resume with the same options"));
    }

    [Test]
    public void Adapting_needs_initial_weights_and_settings_that_fit_them()
    {
        var source = new CrateModel(Small).ToWeights();
        string Error(TrainerOptions options) => Assert.Throws<ArgumentException>(() => new CrateTrainer(options))!.Message;
        Assert.That(Error(new TrainerOptions { Adaptation = AdaptationMethod.LinearProbe }),
            Is.EqualTo("Invalid training options: linear-probe adapts a pretrained network: set the initial weights it starts from"));
        Assert.That(Error(new TrainerOptions { InitialWeights = source, Adaptation = AdaptationMethod.PromptTuning, PromptTokens = 0 }),
            Is.EqualTo("Invalid training options: prompt tuning needs at least one prompt token, got 0"));
        Assert.That(Error(new TrainerOptions { InitialWeights = source, FineTuneLastLayers = 3 }),
            Is.EqualTo("Invalid training options: the layers to fine-tune must be 1..2 (the trunk's depth), got 3"));
        Assert.That(Error(new TrainerOptions { InitialWeights = source, Adaptation = AdaptationMethod.LinearProbe, FineTuneLastLayers = 1 }),
            Does.Contain("fine-tuning only the last 1 layers applies to fine-tune, not to linear-probe"));
    }
}
