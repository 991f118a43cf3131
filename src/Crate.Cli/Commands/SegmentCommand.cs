using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Crate.Cli.Reporting;
using Crate.Core.Data;
using Crate.Core.Data.Segmentation;
using Crate.Core.Model;
using Crate.Core.Segmentation;
using Crate.Onnx.Export;
using Crate.Training;
using Crate.Training.Adaptation;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using TorchSharp;

namespace Crate.Cli.Commands;

/// <summary>
/// <c>crate segment train|evaluate|predict</c>: emergent segmentation from classification attention, and supervised
/// segmentation with a light head, on generated Fashion-MNIST scenes or on image + mask folders.
/// </summary>
internal static class SegmentCommand
{
    public static Command Create()
    {
        var command = new Command("segment", "Segmentation: train classifiers (emergent masks) or segmentation heads, evaluate them, draw predictions.");
        command.Subcommands.Add(Train());
        command.Subcommands.Add(Evaluate());
        command.Subcommands.Add(Predict());
        command.Subcommands.Add(Export());
        return command;
    }

    /// <summary>Where data comes from: a folder (images/ + masks/) or generated scenes.</summary>
    private sealed class DataOptions
    {
        public Option<DirectoryInfo?> Data { get; } = new("--data") { Description = "Folder with images/ and masks/ (and optionally classes.txt); default: generated Fashion-MNIST scenes." };
        public Option<int?> SceneSize { get; } = new("--scene-size")
        {
            Description = "Side of the scenes: generated at this size, or folder images resized to it (default: the model's input size; else 64 for generated scenes, the images' own size for a folder).",
        };
        public Option<int> Seed { get; } = new("--seed") { Description = "Seed of the generated scenes.", DefaultValueFactory = _ => 0 };
        public Option<(double Min, double Max)?> Objects { get; } = NumberOption.Range("--objects", "Objects per generated scene: N, or MIN-MAX (default 1-3).");
        public Option<(double Min, double Max)?> ObjectScale { get; } = NumberOption.Range("--object-scale",
            "Object side in generated scenes as a multiple of the sprite's 28 pixels: S, or MIN-MAX (default 0.75-1.3).");
        public Option<double?> MaxOcclusion { get; } = NumberOption.Real("--max-occlusion",
            "Largest fraction of a placed object that a later one may cover in generated scenes (default 0.3).");
        public Option<int?> Channels { get; } = new("--channels") { Description = "Channels to read folder images as, 1 or 3 (default 3, or the model's)." };
        public Option<int> Threads { get; } = new("--threads") { Description = "libtorch threads (default: the machine's cores).", DefaultValueFactory = _ => Environment.ProcessorCount };

        public void AddTo(Command c)
        {
            foreach (var option in new Option[] { Data, SceneSize, Seed, Objects, ObjectScale, MaxOcclusion, Channels, Threads }) c.Options.Add(option);
        }

        /// <summary>Sets libtorch's thread count from <c>--threads</c>.</summary>
        public void ConfigureThreads(ParseResult parse) => torch.set_num_threads(Math.Max(1, parse.GetValue(Threads)));

        /// <summary>Train or test split: generated scenes (train from Fashion-MNIST's training items, test from its test items) or a folder read whole.</summary>
        public SegmentationDataset Load(ParseResult parse, bool train, int count, CrateConfig? model)
        {
            if (parse.GetValue(Data) is DirectoryInfo dir)
            {
                var generatorOnly = new Option[] { Objects, ObjectScale, MaxOcclusion }.FirstOrDefault(o => parse.GetResult(o) is { Implicit: false });
                if (generatorOnly != null) throw new ArgumentException($"{generatorOnly.Name} sets up generated scenes; it does not apply to --data folders.");
                var data = SegmentationFolder.Read(dir.FullName, new SegmentationFolder.Options
                {
                    Channels = parse.GetValue(Channels) ?? model?.Channels ?? 3,
                    Size = parse.GetValue(SceneSize) ?? model?.ImageHeight,   // as for generated scenes: an explicit size wins (train resamples the trunk to it)
                    Limit = count,
                });
                Console.WriteLine($"data: {data.Count} images from '{dir.FullName}', {data.Height}x{data.Width}x{data.Channels}, {data.NumClasses} mask classes");
                return data;
            }
            var options = Scenes(parse, model);
            var clock = Stopwatch.StartNew();
            var scenes = train
                ? SceneGenerator.FashionScenes(count, 0, options, log: m => Console.Error.WriteLine($"warning: {m}")).Train
                : SceneGenerator.FashionScenes(0, count, options, log: m => Console.Error.WriteLine($"warning: {m}")).Test;
            string objects = (options.MinObjects == options.MaxObjects ? $"{options.MinObjects}" : $"{options.MinObjects}-{options.MaxObjects}")
                + (options.MaxObjects == 1 ? " object" : " objects");
            Console.WriteLine(FormattableString.Invariant(
                $"data: {scenes.Name}: {scenes.Count} scenes of {objects}, scale {options.MinScale:0.###}-{options.MaxScale:0.###}, occlusion up to {options.MaxOcclusion:0.###} ({clock.Elapsed.TotalSeconds:F1} s)"));
            return scenes;
        }

        /// <summary>The generated scenes' settings: the defaults of <see cref="SceneOptions"/> unless given; checked (the first wrong one is named).</summary>
        private SceneOptions Scenes(ParseResult parse, CrateConfig? model)
        {
            var defaults = new SceneOptions();
            var objects = parse.GetValue(Objects) ?? (defaults.MinObjects, defaults.MaxObjects);
            if (objects.Min != Math.Floor(objects.Min) || objects.Max != Math.Floor(objects.Max))
                throw new ArgumentException($"--objects takes whole numbers, got '{parse.GetResult(Objects)!.Tokens[0].Value}'.");
            var scale = parse.GetValue(ObjectScale) ?? (defaults.MinScale, defaults.MaxScale);
            return new SceneOptions
            {
                Size = parse.GetValue(SceneSize) ?? model?.ImageHeight ?? defaults.Size, Seed = parse.GetValue(Seed),
                MinObjects = (int)objects.Min, MaxObjects = (int)objects.Max, MinScale = scale.Min, MaxScale = scale.Max,
                MaxOcclusion = parse.GetValue(MaxOcclusion) ?? defaults.MaxOcclusion,
            }.Validate();
        }
    }

    private static Command Train()
    {
        var data = new DataOptions();
        var output = new Option<FileInfo>("--out") { Description = "Checkpoint to write (safetensors).", Required = true };
        var task = new Option<string>("--task") { Description = "classify: image-level labels only (for emergent masks); segment: pixel cross-entropy on the masks.", DefaultValueFactory = _ => "segment" };
        task.AcceptOnlyFromAmong("classify", "segment");
        var arch = new Option<string>("--arch") { Description = "Trunk: crate (MSSA + ISTA) or vit (the standard-MLP baseline).", DefaultValueFactory = _ => Architectures.Crate };
        arch.AcceptOnlyFromAmong(Architectures.Crate, Architectures.Vit);
        var init = new Option<FileInfo?>("--init")
        {
            Description = "Start from this checkpoint's trunk: a classifier trained with --task classify, a segmentation model, or a `crate train` model "
                + "(its positional embedding is resampled when the scenes have another size, e.g. a 28x28 Fashion-MNIST classifier for 64x64 scenes).",
        };
        var preset = new Option<string>("--preset") { Description = "Trunk preset for a new model.", DefaultValueFactory = _ => "mini" };
        var dim = new Option<int?>("--dim") { Description = "Token width for a new model (heads = dim / 32); default the preset's." };
        var depth = new Option<int?>("--depth") { Description = "Number of layers for a new model; default the preset's." };
        var mlpRatio = new Option<int>("--mlp-ratio") { Description = "ViT baseline: MLP hidden width as a multiple of dim.", DefaultValueFactory = _ => 4 };
        var patch = new Option<int>("--patch-size") { Description = "Patch side for a new model.", DefaultValueFactory = _ => 8 };
        var count = new Option<int>("--count") { Description = "Training images (scenes generated, or the first N of the folder).", DefaultValueFactory = _ => 10000 };
        var testCount = new Option<int>("--test-count") { Description = "Generated test scenes to evaluate on after training (0: none; ignored with --data).", DefaultValueFactory = _ => 1000 };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 10 };
        var batch = new Option<int>("--batch-size") { DefaultValueFactory = _ => 64 };
        var lr = new Option<double>("--lr") { DefaultValueFactory = _ => 1e-3 };
        var wd = new Option<double>("--weight-decay") { DefaultValueFactory = _ => 0.05 };
        var optimizer = new Option<OptimizerKind>("--optimizer") { Description = "AdamW or Lion (the trainer's optimisers).", DefaultValueFactory = _ => OptimizerKind.AdamW };
        var adapt = new Option<string>("--adapt")
        {
            Description = "Segment task: what trains besides the new head: linear-probe (nothing, trunk frozen), prompt-tuning (the trunk's prompt tokens) or fine-tune (the trunk).",
            DefaultValueFactory = _ => AdaptedClassifier.NameOf(AdaptationMethod.FineTune),
        };
        adapt.AcceptOnlyFromAmong([.. Enum.GetValues<AdaptationMethod>().Select(AdaptedClassifier.NameOf)]);
        var promptTokens = NumberOption.Integer("--prompt-tokens", "Segment task with --adapt prompt-tuning: prompt tokens the trunk gets after its class token (default 8).");
        var fineTuneLast = NumberOption.Integer("--fine-tune-last", "Segment task with --adapt fine-tune: train only the trunk's last N layers and the head (default: every layer).");
        var queries = NumberOption.Integer("--queries",
            "Segment task: add a query head whose N queries are the class token and N-1 new prompt tokens; each names a class and claims pixels, so the class token's naming reaches the mask (default: none, or the --init model's).");
        var precision = PrecisionOption.Create();
        var resume = new Option<bool>("--resume") { Description = "Continue from the checkpoint written after every epoch beside --out (<name>.last.ckpt), with the same options." };
        var command = new Command("train", "Train a classifier on scene labels (emergent segmentation) or a segmentation head on masks.")
        { output, task, arch, init, preset, dim, depth, mlpRatio, patch, count, testCount, epochs, batch, lr, wd, optimizer, adapt, promptTokens, fineTuneLast, queries, precision, resume };
        data.AddTo(command);
        command.SetAction(parse =>
        {
            data.ConfigureThreads(parse);
            var path = parse.GetValue(output)!.FullName;
            var checkpoint = Path.ChangeExtension(path, ".last.ckpt");
            Core.IO.AtomicFile.DeleteAbandoned(Path.GetDirectoryName(path)!);
            if (parse.GetValue(resume) && !File.Exists(checkpoint))
                throw new TrainingException($"There is nothing to resume: '{checkpoint}' does not exist (it is written after every epoch).");
            var method = Enum.GetValues<AdaptationMethod>().Single(m => AdaptedClassifier.NameOf(m) == parse.GetValue(adapt));
            if (parse.GetValue(fineTuneLast) is int last && (method != AdaptationMethod.FineTune || last < 1))
                throw new ArgumentException(method != AdaptationMethod.FineTune ? "--fine-tune-last applies to --adapt fine-tune." : $"--fine-tune-last must be at least 1, got {last}.");
            if (parse.GetValue(promptTokens) is int prompts && (method != AdaptationMethod.PromptTuning || prompts < 1))
                throw new ArgumentException(method != AdaptationMethod.PromptTuning ? "--prompt-tokens applies to --adapt prompt-tuning." : $"--prompt-tokens must be at least 1, got {prompts}.");
            if (parse.GetValue(queries) is int n && (parse.GetValue(task) != "segment" || n < 1))
                throw new ArgumentException(parse.GetValue(task) != "segment" ? "--queries applies to --task segment." : $"--queries must be at least 1 (the class token), got {n}.");
            var initFile = parse.GetValue(init);
            var start = parse.GetValue(resume) ? SegmentationCheckpoint.Load(checkpoint) : initFile != null ? SegmentationCheckpoint.Load(initFile.FullName) : null;
            var train = data.Load(parse, train: true, parse.GetValue(count), start?.Trunk.Config);
            // A new trunk and head are initialised from --seed: the same command gives the same model.
            torch.manual_seed(parse.GetValue(data.Seed));
            if (start != null && !parse.GetValue(resume))
            {
                var from = start.Trunk.Config;
                IVisionTransformer fitted;
                try { fitted = TrunkAdaptation.FittedTo(start.Trunk, train.Channels, train.Height, train.Width); }
                catch (ArgumentException e) { throw new ArgumentException($"'{initFile!.Name}' does not fit the training images: {e.Message}.", e); }
                if (fitted != start.Trunk)
                    Console.WriteLine($"init: '{initFile!.Name}' was trained on {from.ImageHeight}x{from.ImageWidth} images: positional embedding resampled from a {from.GridHeight}x{from.GridWidth} to a {fitted.Config.GridHeight}x{fitted.Config.GridWidth} patch grid");
                start = start with { Trunk = fitted };
            }
            var trunk = start?.Trunk ?? Architectures.Create(parse.GetValue(arch)!, SegmentationModel.TrunkFor(train, parse.GetValue(preset)!, parse.GetValue(dim), parse.GetValue(depth), parse.GetValue(patch)), parse.GetValue(mlpRatio));
            if (parse.GetValue(task) == "segment" && method == AdaptationMethod.PromptTuning && trunk.Config.PromptTokens == 0)
                trunk = TrunkAdaptation.WithPrompts(trunk, parse.GetValue(promptTokens) ?? 8);
            if (parse.GetValue(queries) is int wanted) trunk = SegmentationModel.TrunkWithQueries(trunk, wanted);
            Console.WriteLine($"model: {Architectures.NameOf(trunk)} {trunk.Config}, {trunk.Module.parameters().Sum(p => p.numel()):N0} trunk parameters");
            var options = new SegmentationTrainingOptions
            {
                Optimizer = parse.GetValue(optimizer), Epochs = parse.GetValue(epochs), BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr),
                WeightDecay = parse.GetValue(wd), Adaptation = method, FineTuneLastLayers = parse.GetValue(fineTuneLast),
                Seed = parse.GetValue(data.Seed), BFloat16 = PrecisionOption.BFloat16(parse, precision),
                CheckpointPath = checkpoint, Resume = parse.GetValue(resume),
            };
            var test = parse.GetValue(data.Data) == null && parse.GetValue(testCount) > 0 ? data.Load(parse, train: false, parse.GetValue(testCount), trunk.Config) : null;
            if (parse.GetValue(task) == "classify")
            {
                TrainingProgress.Run<EpochReport>((onStep, onEpoch) => SegmentationTraining.TrainClassifier(trunk, train, options with { OnStep = onStep }, onEpoch));
                SegmentationCheckpoint.Save(path, trunk);
                if (test != null) PrintEmergent(SegmentationEvaluation.Emergent(trunk, test), new EmergentOptions());
            }
            else
            {
                var model = SegmentationModel.Continuing(start?.Segmenter, trunk, train.NumClasses, queryHead: parse.GetValue(queries) != null);
                if (model.QueryHead != null) Console.WriteLine($"query head: {model.Queries} queries (the class token and {model.Queries - 1} prompt tokens)");
                TrainingProgress.Run<EpochReport>((onStep, onEpoch) => SegmentationTraining.TrainSegmentation(model, train, options with { OnStep = onStep }, onEpoch));
                SegmentationCheckpoint.Save(path, model, train.ClassNames);
                if (test != null) Console.Write(SegmentationEvaluation.SupervisedBreakdown(model, test));
            }
            Console.WriteLine($"saved {path}");
            return 0;
        });
        return command;
    }

    private static Command Evaluate()
    {
        var data = new DataOptions();
        var model = new Option<FileInfo>("--model") { Description = "Checkpoint from `crate segment train`.", Required = true };
        var method = new Option<string?>("--method") { Description = "supervised (needs a segmentation head) or emergent (attention; default when there is no head)." };
        method.AcceptOnlyFromAmong("supervised", "emergent");
        var count = new Option<int>("--count") { Description = "Test scenes to generate (or the first N of the folder).", DefaultValueFactory = _ => 1000 };
        var emergent = new EmergentCliOptions();
        var command = new Command("evaluate", "Print pixel accuracy, per-class IoU, mean IoU and foreground IoU (and the all-background baseline).") { model, method, count };
        data.AddTo(command);
        emergent.AddTo(command);
        command.SetAction(parse =>
        {
            data.ConfigureThreads(parse);
            var loaded = SegmentationCheckpoint.Load(parse.GetValue(model)!.FullName);
            var test = data.Load(parse, train: false, parse.GetValue(count), loaded.Trunk.Config);
            var which = parse.GetValue(method) ?? (loaded.Segmenter != null ? "supervised" : "emergent");
            var clock = Stopwatch.StartNew();
            if (which == "supervised")
            {
                var segmenter = loaded.Segmenter ?? throw new ArgumentException($"'{parse.GetValue(model)!.Name}' has no segmentation head; use --method emergent or train with --task segment.");
                Console.Write(SegmentationEvaluation.SupervisedBreakdown(segmenter, test));
            }
            else
            {
                var options = emergent.Build(parse);
                PrintEmergent(SegmentationEvaluation.Emergent(loaded.Trunk, test, options), options);
            }
            Console.WriteLine(FormattableString.Invariant($"({test.Count} images in {clock.Elapsed.TotalSeconds:F1} s)"));
            var trivial = SegmentationEvaluation.AllBackground(test);
            Console.WriteLine(FormattableString.Invariant($"all-background baseline: pixel accuracy {trivial.PixelAccuracy:F4}  mIoU {trivial.MeanIoU:F4}  foreground IoU {trivial.ForegroundIoU:F4}"));
            // Calling every pixel foreground: its foreground IoU is the foreground's share of the pixels.
            Console.WriteLine(FormattableString.Invariant($"all-foreground baseline: foreground IoU {1 - trivial.PixelAccuracy:F4}"));
            return 0;
        });
        return command;
    }

    private static Command Predict()
    {
        var data = new DataOptions();
        var model = new Option<FileInfo>("--model") { Description = "Checkpoint from `crate segment train`.", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for the overlay PNGs and predicted masks.", Required = true };
        var count = new Option<int>("--count") { Description = "Images to draw.", DefaultValueFactory = _ => 8 };
        var scale = new Option<int>("--scale") { Description = "Enlargement of the drawn panels.", DefaultValueFactory = _ => 4 };
        var emergent = new EmergentCliOptions();
        var command = new Command("predict",
            "Write overlay PNGs (image | ground truth | supervised mask | emergent foreground | class-token attention) and predicted mask PNGs (VOC palette).")
        { model, output, count, scale };
        data.AddTo(command);
        emergent.AddTo(command);
        command.SetAction(parse =>
        {
            data.ConfigureThreads(parse);
            var loaded = SegmentationCheckpoint.Load(parse.GetValue(model)!.FullName);
            var config = loaded.Trunk.Config;
            var images = data.Load(parse, train: false, parse.GetValue(count), config);
            var dir = parse.GetValue(output)!.FullName;
            Directory.CreateDirectory(dir);
            var indices = Enumerable.Range(0, images.Count).ToArray();
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var input = SegmentationBatch.Images(images, indices, config);
            var maps = EmergentSegmentation.Segment(loaded.Trunk, input, emergent.Build(parse));
            var supervised = loaded.Segmenter != null ? SegmentationBatch.ToBytes(loaded.Segmenter.Predict(input)) : null;
            var emergentMap = SegmentationBatch.ToBytes(maps.ClassMap());
            // Mean over heads of the class-token attention, upsampled to pixels, for the heat map.
            var heat = maps.HeadAttention.mean([1]).repeat_interleave(config.PatchSize, 1).repeat_interleave(config.PatchSize, 2).contiguous().data<float>().ToArray();
            var perHead = maps.HeadAttention.repeat_interleave(config.PatchSize, 2).repeat_interleave(config.PatchSize, 3).contiguous().data<float>().ToArray();
            var headMasks = maps.HeadMasks.contiguous().data<bool>().ToArray();
            var predicted = maps.Logits.argmax(1).data<long>().ToArray();
            int plane = images.MaskSize;
            for (int i = 0; i < images.Count; i++)
            {
                var overlay = new OverlayImage(images.Height, images.Width, parse.GetValue(scale))
                    .AddImage(images.Image(i), images.Channels)
                    .AddMask(images.Image(i), images.Channels, images.Mask(i));
                var mask = supervised != null ? supervised.AsSpan(i * plane, plane) : emergentMap.AsSpan(i * plane, plane);
                if (supervised != null) overlay.AddMask(images.Image(i), images.Channels, mask);
                overlay.AddMask(images.Image(i), images.Channels, emergentMap.AsSpan(i * plane, plane)).AddHeatMap(heat.AsSpan(i * plane, plane));
                var stem = $"{i:D4}";
                // Per head: its attention heat map, and the patches it keeps (top mass) shown as a mask over the image.
                var heads = new OverlayImage(images.Height, images.Width, parse.GetValue(scale));
                for (int h = 0; h < config.Heads; h++)
                {
                    int at = (i * config.Heads + h) * plane;
                    heads.AddHeatMap(perHead.AsSpan(at, plane));
                    heads.AddMask(images.Image(i), images.Channels, headMasks.AsSpan(at, plane).ToArray().Select(k => (byte)(k ? 15 : 0)).ToArray());
                }
                Core.IO.AtomicFile.WriteAllBytes(Path.Combine(dir, stem + ".heads.png"), heads.EncodePng());
                Core.IO.AtomicFile.WriteAllBytes(Path.Combine(dir, stem + ".overlay.png"), overlay.EncodePng());
                MaskPng.Write(Path.Combine(dir, stem + ".mask.png"), mask, images.Height, images.Width);
                Console.WriteLine($"{stem}: true {Name(images, images.Label(i))}, predicted {Name(images, (int)predicted[i])} -> {stem}.overlay.png, {stem}.heads.png, {stem}.mask.png");
            }
            Console.WriteLine("heads.png: per head, its attention heat map then the patches it keeps (top attention mass)");
            Console.WriteLine($"panels: image | ground truth |{(supervised != null ? " supervised |" : "")} emergent (foreground x predicted class) | class-token attention (mean over heads, layer {(emergent.Build(parse).Layer ?? config.Depth - 2)})");
            return 0;
        });
        return command;
    }

    private static Command Export()
    {
        var model = new Option<FileInfo>("--model") { Description = "Segmentation checkpoint (CRATE trunk) from `crate segment train --task segment`.", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "ONNX file to write.", Required = true };
        var command = new Command("export", "Export a CRATE segmentation model to ONNX with 'mask_logits' [batch, K, H, W] and 'mask' [batch, H, W] (int64 class ids) outputs.") { model, output };
        command.SetAction(parse =>
        {
            var (trunk, head) = SegmentationHeadWeights.FromCheckpoint(parse.GetValue(model)!.FullName);
            var path = parse.GetValue(output)!.FullName;
            CrateOnnxExporter.ExportToFile(trunk, path, new CrateOnnxExportOptions { Segmentation = head });
            Console.WriteLine($"exported {trunk.Config} with a {head.NumClasses}-class segmentation head to {path}");
            Console.WriteLine("input 'image' float32 [batch, C, H, W] raw pixels 0..255; outputs logits, probabilities, features, mask_logits, mask");
            return 0;
        });
        return command;
    }

    private static string Name(SegmentationDataset d, int label) => label < 0 ? "(none)" : d.ClassNames[label + 1];

    private sealed class EmergentCliOptions
    {
        public Option<int?> Layer { get; } = new("--layer") { Description = "Layer whose class-token attention is used (0-based; default penultimate)." };
        public Option<double> KeepMass { get; } = new("--keep-mass") { Description = "Attention mass kept per head.", DefaultValueFactory = _ => 0.6 };
        public Option<double> Vote { get; } = new("--vote") { Description = "Fraction of heads that must keep a pixel for it to be foreground.", DefaultValueFactory = _ => 0.5 };
        public void AddTo(Command c) { c.Options.Add(Layer); c.Options.Add(KeepMass); c.Options.Add(Vote); }
        public EmergentOptions Build(ParseResult p) => new() { Layer = p.GetValue(Layer), KeepMass = p.GetValue(KeepMass), VoteFraction = p.GetValue(Vote) };
    }

    private static void PrintEmergent(EmergentEvaluation e, EmergentOptions o)
    {
        Console.WriteLine(FormattableString.Invariant($"emergent (layer {(o.Layer?.ToString(CultureInfo.InvariantCulture) ?? "penultimate")}, keep {o.KeepMass:P0} of attention per head, vote {o.VoteFraction:P0} of heads; class = predicted image class)"));
        Console.WriteLine(FormattableString.Invariant($"image classification accuracy {e.Accuracy:F4}"));
        Console.Write(e.ClassMap);
    }
}
