using System.CommandLine;
using System.Globalization;
using Crate.Cli.Reporting;
using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Training;
using Crate.Training.Adaptation;
using Crate.Training.Data;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using Spectre.Console;

namespace Crate.Cli.Commands;

/// <summary>
/// <c>crate train</c>: train (or resume, or adapt pretrained weights: linear probe, prompt tuning, fine-tuning) a CRATE
/// classifier. Writes checkpoints, the best <c>weights.safetensors</c>, <c>metrics.json</c> and a training-curve PNG into <c>--out</c>.
/// </summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var data = new DataOptions();
        var shape = CliOptions.ModelShape();
        var preset = new Option<string?>("--preset") { Description = $"Trunk preset ({string.Join(", ", CratePresets.Names)}; default mini, or the recipe's)." };
        var recipe = new Option<string?>("--recipe") { Description = $"A named configuration ({string.Join(", ", TrainingRecipes.All.Select(r => r.Name))}); explicit options override it." };
        var epochs = NumberOption.Integer("--epochs", "Epochs (default 10).");
        var batchSize = NumberOption.Integer("--batch-size", "Images per step (default 128).");
        var lr = NumberOption.Real("--lr", "Peak learning rate (default 1e-3).");
        var minLr = NumberOption.Real("--min-lr", "Final learning rate of the cosine decay (default 1e-5).");
        var warmup = NumberOption.Real("--warmup", "Warm-up epochs, fractions allowed (default 1).");
        var weightDecay = NumberOption.Real("--weight-decay", "Decoupled weight decay on weight matrices (default 0.05).");
        var optimizer = new Option<string?>("--optimizer") { Description = "adamw (default) or lion." };
        optimizer.AcceptOnlyFromAmong("adamw", "lion");
        var smoothing = NumberOption.Real("--label-smoothing", "Label smoothing (default 0.1).");
        var clip = NumberOption.Real("--grad-clip", "Gradient norm clip, 0 for none (default 1).");
        var ema = NumberOption.Real("--ema", "Decay of an exponential moving average of the weights, which is validated and saved; 0 for none (default 0).");
        var patchDropout = NumberOption.Real("--patch-dropout", "Fraction of each training image's patch tokens left out of the forward pass, for faster steps (default 0: off).");
        var fullPatchEpochs = NumberOption.Integer("--full-patch-epochs", "With --patch-dropout: the last N epochs train on every patch (default 0).");
        var augment = new Option<string?>("--augment") { Description = "Augmentation: none, crop[=PAD], resized-crop[=MINSCALE], flip; comma-separated (default none)." };
        var valFraction = NumberOption.Real("--val-fraction", "Fraction of the training data held out for validation, 0 for none (default 0.1).");
        var patience = NumberOption.Integer("--patience", "Early stopping: epochs without a better validation top-1 (default 0: off).");
        var seed = NumberOption.Integer("--seed", "Seed of initialisation, split, order and augmentation (default 0).");
        var precision = PrecisionOption.Create();
        var threads = NumberOption.Integer("--threads", $"libtorch threads (default {Environment.ProcessorCount}, the machine's cores).");
        var steps = NumberOption.Integer("--steps-per-epoch", "At most this many steps per epoch (quick runs).");
        var testLimit = NumberOption.Integer("--test-limit", "Evaluate at most this many test images at the end (default: --limit, else all).");
        var noTest = new Option<bool>("--no-test") { Description = "Skip the final evaluation on the source's test split." };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Run directory for checkpoints, weights, metrics and the curve (default runs/<time>)." };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its last checkpoint (same options)." };
        var initFrom = new Option<FileInfo?>("--init-from") { Description = "Start from these weights (fine-tuning, or --adapt); a new head when the data's classes differ." };
        var adapt = new Option<string?>("--adapt")
        {
            Description = "How to adapt the --init-from weights: linear-probe (train the head only), prompt-tuning (the head and new prompt " +
                          "tokens after the class token), fine-tune (default: every weight, or the last --fine-tune-last layers and the head).",
        };
        adapt.AcceptOnlyFromAmong(Enum.GetValues<AdaptationMethod>().Select(AdaptedClassifier.NameOf).ToArray());
        var promptTokens = NumberOption.Integer("--prompt-tokens", "--adapt prompt-tuning: prompt tokens inserted after the class token (default 8).");
        var fineTuneLast = NumberOption.Integer("--fine-tune-last", "--adapt fine-tune: train only the last N layers and the head (default: every layer).");
        var arch = new Option<string?>("--arch") { Description = $"Network: {Architectures.Crate} (default) or {Architectures.Vit}, the standard-transformer baseline of the same shape, trained the same way." };
        arch.AcceptOnlyFromAmong(Architectures.Crate, Architectures.Vit);
        var mlpRatio = NumberOption.Integer("--mlp-ratio", "ViT baseline: MLP hidden width as a multiple of dim (default 4).");
        var keepEpochs = new Option<bool>("--keep-epochs") { Description = "Also write every epoch's weights (epoch-N.safetensors), e.g. for 'crate analyze' over training." };

        var command = new Command("train", "Train a CRATE classifier (or the ViT baseline) with progress, checkpoints, metrics.json and a training-curve PNG.")
        {
            preset, recipe, epochs, batchSize, lr, minLr, warmup, weightDecay, optimizer, smoothing, clip, ema, patchDropout, fullPatchEpochs, augment, valFraction, patience, seed,
            precision, threads, steps, testLimit, noTest, output, resume, initFrom, adapt, promptTokens, fineTuneLast, arch, mlpRatio, keepEpochs,
        };
        data.AddTo(command);
        shape.AddTo(command);
        command.SetAction((parse, cancellation) =>
        {
            var baseline = parse.GetValue(recipe) is { } name ? TrainingRecipes.ByName(name) : null;
            var defaults = baseline?.Options ?? new TrainerOptions();
            if (parse.GetValue(resume) && parse.GetValue(output) == null)
                throw new ArgumentException("--resume needs --out: the run directory to continue.");
            var outDir = parse.GetValue(output)?.FullName ?? Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
            var init = parse.GetValue(initFrom) is { } initFile ? CrateWeights.Load(initFile.FullName) : null;
            var (method, prompts, lastLayers) = ReadAdaptation(parse, adapt, promptTokens, fineTuneLast, init, defaults);
            var options = defaults with
            {
                Epochs = parse.GetValue(epochs) ?? defaults.Epochs,
                BatchSize = parse.GetValue(batchSize) ?? defaults.BatchSize,
                LearningRate = parse.GetValue(lr) ?? defaults.LearningRate,
                MinLearningRate = parse.GetValue(minLr) ?? Math.Min(defaults.MinLearningRate, parse.GetValue(lr) ?? defaults.LearningRate),
                WarmupEpochs = parse.GetValue(warmup) ?? defaults.WarmupEpochs,
                WeightDecay = parse.GetValue(weightDecay) ?? defaults.WeightDecay,
                Optimizer = parse.GetValue(optimizer) is { } o ? Enum.Parse<OptimizerKind>(o, ignoreCase: true) : defaults.Optimizer,
                LabelSmoothing = parse.GetValue(smoothing) ?? defaults.LabelSmoothing,
                GradClipNorm = parse.GetValue(clip) ?? defaults.GradClipNorm,
                EmaDecay = parse.GetValue(ema) ?? defaults.EmaDecay,
                PatchDropout = parse.GetValue(patchDropout) ?? defaults.PatchDropout,
                // A recipe cut short with --epochs keeps as many of its full-patch epochs as fit.
                FullPatchEpochs = parse.GetValue(fullPatchEpochs) ?? Math.Min(defaults.FullPatchEpochs, parse.GetValue(epochs) ?? defaults.Epochs),
                Augmentation = parse.GetValue(augment) is { } a ? Augmentation.Parse(a) : defaults.Augmentation,
                ValidationFraction = parse.GetValue(valFraction) ?? defaults.ValidationFraction,
                EarlyStoppingPatience = parse.GetValue(patience) ?? defaults.EarlyStoppingPatience,
                Seed = parse.GetValue(seed) ?? defaults.Seed,
                Threads = parse.GetValue(threads) ?? defaults.Threads,
                BFloat16 = PrecisionOption.BFloat16(parse, precision) ?? defaults.BFloat16,
                MaxStepsPerEpoch = parse.GetValue(steps) ?? defaults.MaxStepsPerEpoch,
                CheckpointDirectory = outDir,
                Resume = parse.GetValue(resume),
                InitialWeights = init,
                Adaptation = method,
                PromptTokens = prompts,
                FineTuneLastLayers = lastLayers,
                Architecture = parse.GetValue(arch) ?? defaults.Architecture,
                MlpRatio = parse.GetValue(mlpRatio) ?? defaults.MlpRatio,
                KeepEpochWeights = parse.GetValue(keepEpochs) || defaults.KeepEpochWeights,
            };
            options.Validate();

            // The model's input decides how data is read: a resumed run's checkpoint, the initial weights, or the preset.
            var resumed = options.Resume ? Checkpoint.Load(Path.Combine(outDir, Checkpoint.LastFile)).Config : null;
            var adapted = init != null ? AdaptedClassifier.ConfigFor(init.Config, options.Adaptation, options.PromptTokens) : null;
            var architecture = resumed ?? adapted ?? shape.Build(parse, parse.GetValue(preset) ?? baseline?.Preset ?? "mini");
            var read = resumed != null ? DataOptions.For(resumed) : new ImageReadOptions
            {
                Height = architecture.ImageHeight, Width = architecture.ImageWidth,
                Channels = init?.Config.Channels ?? parse.GetValue(shape.Channels),
            };
            var fallbackData = baseline?.Data ?? DataSource.Generated;
            var spec = data.Spec(parse, fallbackData);
            var train = data.Load(parse, fallbackData, DataSplit.Train, read, options.Seed);
            if (parse.GetValue(shape.Classes) is int classes && classes != train.ClassNames.Count)
                throw new ArgumentException($"--classes {classes} disagrees with the data: '{spec}' has {train.ClassNames.Count} classes.");
            bool evaluate = !parse.GetValue(noTest) && (baseline?.EvaluateOnTest ?? true) && DataSource.HasTestSplit(spec);
            var test = evaluate
                ? data.Load(parse, fallbackData, DataSplit.Test,
                    read with { Channels = train.Channels, ClassNames = train.ClassNames.ToList(), Limit = parse.GetValue(testLimit) }, options.Seed)
                : null;
            options = options with { TestSet = test };

            Console.WriteLine($"data: '{spec}' {train.Count} training images ({train.Channels}x{train.Height}x{train.Width}, {train.ClassNames.Count} classes){(test != null ? $", {test.Count} test images" : "")}");
            Console.WriteLine($"model: {(options.Architecture == Architectures.Vit ? $"ViT baseline (MLP ratio {options.MlpRatio}) of " : "")}{architecture with { Channels = train.Channels, NumClasses = train.ClassNames.Count }}");
            if (init != null)
                Console.WriteLine($"adapting: {options.AdaptationDescription ?? "fine-tune (every weight)"} of '{parse.GetValue(initFrom)!.FullName}'");
            Console.WriteLine($"training: {options.Optimizer}, lr {options.LearningRate.ToString(CultureInfo.InvariantCulture)}, batch {options.BatchSize}, {options.Epochs} epochs, augmentation {options.Augmentation}, {(options.EmaDecay > 0 ? $"EMA {options.EmaDecay.ToString(CultureInfo.InvariantCulture)}, " : "")}{(PatchDropout.ShouldDrop(options, 1) ? $"patch dropout {options.PatchDropout.ToString(CultureInfo.InvariantCulture)} in the first {options.Epochs - options.FullPatchEpochs} epochs, " : "")}{(options.BFloat16 ?? MixedPrecision.CpuSupportsBFloat16 ? "bfloat16" : "float32")} products, {options.Threads} threads, out {outDir}{(options.Resume ? " (resuming)" : "")}");

            TrainingResult result;
            try
            {
                result = TrainingProgress.Run((onStep, onEpoch) =>
                    new CrateTrainer(options with { OnStep = onStep, OnEpoch = onEpoch }).Train(architecture, train, cancellation));
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine($"interrupted: checkpoints in '{outDir}' are intact; continue with: crate train --resume --out {outDir} (and the same options)");
                return Task.FromResult(CliErrors.Interrupted);
            }
            var network = options.Architecture == Architectures.Vit ? "ViT" : "CRATE";
            TrainingCurve.Save(Path.Combine(outDir, TrainingCurve.FileName), result.History, $"{network}-{result.Config.Preset} on {spec}");
            Report(result, outDir);
            return Task.FromResult(0);
        });
        return command;
    }

    /// <summary>
    /// The adaptation options, checked with the command line's names: they adapt --init-from weights, and each setting
    /// belongs to its method. Without --adapt, --init-from fine-tunes every weight.
    /// </summary>
    private static (AdaptationMethod Method, int PromptTokens, int? FineTuneLastLayers) ReadAdaptation(ParseResult parse, Option<string?> adapt,
        Option<int?> promptTokens, Option<int?> fineTuneLast, CrateWeights? init, TrainerOptions defaults)
    {
        var (name, prompts, lastLayers) = (parse.GetValue(adapt), parse.GetValue(promptTokens), parse.GetValue(fineTuneLast));
        if (init == null && (name != null || prompts != null || lastLayers != null))
            throw new ArgumentException($"{(name != null ? "--adapt" : prompts != null ? "--prompt-tokens" : "--fine-tune-last")} needs --init-from: the pretrained weights to adapt.");
        var method = name != null ? Enum.GetValues<AdaptationMethod>().Single(m => AdaptedClassifier.NameOf(m) == name) : defaults.Adaptation;
        if (prompts != null && method != AdaptationMethod.PromptTuning)
            throw new ArgumentException("--prompt-tokens applies to --adapt prompt-tuning.");
        if (prompts is < 1)
            throw new ArgumentException($"--prompt-tokens must be at least 1, got {prompts}.");
        if (lastLayers != null && method != AdaptationMethod.FineTune)
            throw new ArgumentException("--fine-tune-last applies to --adapt fine-tune.");
        if (lastLayers is int n && init is { Config.Depth: var depth } && (n < 1 || n > depth))
            throw new ArgumentException($"--fine-tune-last must be 1..{depth} (the depth of the --init-from trunk), got {n}.");
        return (method, prompts ?? defaults.PromptTokens, lastLayers ?? defaults.FineTuneLastLayers);
    }

    private static void Report(TrainingResult result, string outDir)
    {
        var table = new Table().AddColumn("").AddColumn("");
        table.AddRow("stopped", Markup.Escape(result.StopReason));
        if (result.BestEpoch > 0) table.AddRow("best epoch", Markup.Escape(result.History[result.BestEpoch - 1].ToString()));
        if (result.Test is { } test) table.AddRow("test", Markup.Escape(test.ToString()));
        table.AddRow("time", result.Duration.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture));
        table.AddRow("weights", Markup.Escape(Path.Combine(outDir, Checkpoint.WeightsFile)));
        table.AddRow("metrics", Markup.Escape(Path.Combine(outDir, Checkpoint.MetricsFile)));
        table.AddRow("curve", Markup.Escape(Path.Combine(outDir, TrainingCurve.FileName)));
        AnsiConsole.Write(table.HideHeaders());
        if (result.Test is { } t) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"test top-1: {t.Top1:P2}"));
    }
}
