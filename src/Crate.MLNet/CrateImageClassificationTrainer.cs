using Crate.Core.IO;
using Crate.Core.Model;
using Crate.MLNet.Internal;
using Crate.Onnx.Export;
using Crate.Core.Weights;
using Crate.Training;
using Crate.Training.Adaptation;
using Crate.Training.Data;
using Crate.Training.Model;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Crate.MLNet;

/// <summary>
/// Trains a CRATE image classifier (a white-box vision transformer: MSSA compression and ISTA sparsification in
/// every layer) and returns it as a chain of ML.NET's own transformers. Create it with
/// <c>mlContext.MulticlassClassification.Trainers.Crate(...)</c>.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns</b></para>
/// <list type="table">
/// <listheader><term>column</term><description>type and meaning</description></listheader>
/// <item><term>input: <c>Label</c></term><description>Key type (<c>MapValueToKey</c>); its key values become the class names.</description></item>
/// <item><term>input: <c>Image</c></term><description>A known-size vector of <see cref="byte"/> or <see cref="float"/> pixels, values 0..255,
/// channel-major <c>[C, H, W]</c> (the shape from the column's dimensions, the options, or a square 1- or 3-channel image);
/// or an <see cref="MLImage"/>, resized to <see cref="Options.ImageHeight"/> x <see cref="Options.ImageWidth"/> (see the note below).</description></item>
/// <item><term>output: <c>Score</c></term><description>Vector of <see cref="float"/>: the softmax probability of each class, in class (key) order.</description></item>
/// <item><term>output: <c>PredictedLabel</c></term><description>Key type over the same classes as <c>Label</c>, key values = class names.</description></item>
/// </list>
/// <para><b>Trainer characteristics</b></para>
/// <list type="table">
/// <item><term>Machine learning task</term><description>Multiclass classification of images</description></item>
/// <item><term>Is normalization required?</term><description>No: per-channel mean and standard deviation are computed from the training images and applied inside the model.</description></item>
/// <item><term>Is caching required?</term><description>No: <see cref="Fit"/> reads the data once into memory.</description></item>
/// <item><term>Required NuGet in addition to Microsoft.ML</term><description>Crate.MLNet (TorchSharp-cpu for training); scoring a saved model needs only Microsoft.ML.OnnxTransformer and Microsoft.ML.OnnxRuntime.</description></item>
/// <item><term>Exportable to ONNX</term><description>Yes: the network is ONNX (<see cref="Options.OnnxModelPath"/>).</description></item>
/// </list>
/// <para><b>What <see cref="Fit"/> does.</b> It reads the data into memory, trains the network with TorchSharp (AdamW or Lion, warm-up and
/// cosine decay, label smoothing, validation every epoch, the best epoch kept, optional early stopping), exports it to ONNX, and returns
/// ML.NET's own transformers around it: image preparation (for <see cref="MLImage"/> input), <c>ApplyOnnxModel</c> (which stores the ONNX
/// bytes in the saved .zip) producing the logits, and ML.NET's multiclass prediction transformer (as after any ML.NET trainer) producing
/// <c>Score</c> and <c>PredictedLabel</c>. So <c>mlContext.Model.Save</c>
/// and <c>Load</c> round-trip it, and a process with no TorchSharp or Crate scores it. The chain scores row by row; for throughput use
/// <see cref="CrateBatchScorer"/> on the ONNX file. Epoch metrics go to <see cref="Options.MetricsCallback"/> and <c>MLContext.Log</c>.
/// <see cref="MLContext.GpuDeviceId"/> and <see cref="MLContext.FallbackToCpu"/> choose the device the saved chain scores on.</para>
/// <para><b>Adapting pretrained weights.</b> With <see cref="Options.InitialWeightsPath"/> training starts from a weights file (or a training
/// checkpoint) instead of a random network: its trunk, input size and normalisation are kept (<see cref="Options.Preset"/> and
/// <see cref="Options.Architecture"/> are ignored), its head too when the classes are the same. <see cref="Options.Adaptation"/> says what trains:
/// the head alone (<see cref="AdaptationMethod.LinearProbe"/>), the head and <see cref="Options.PromptTokens"/> new prompt tokens after the class
/// token (<see cref="AdaptationMethod.PromptTuning"/>), or every weight, or the last <see cref="Options.FineTuneLastLayers"/> layers and the head
/// (<see cref="AdaptationMethod.FineTune"/>, the default). Frozen weights stay bit-identical; prompt tokens are part of the exported network, so the
/// chain saves, loads and scores as any other.</para>
/// <para><b>Threads.</b> Training uses <see cref="Options.Threads"/> libtorch threads. On shared cores call
/// <see cref="ProcessTuning.Apply"/> at start-up, before anything loads libtorch: spinning OpenMP threads slow it several-fold.</para>
/// <para><b>Class names.</b> <c>Score</c>'s slot names and <c>PredictedLabel</c>'s key values are the class names (the training label's key
/// values), before and after <c>Save</c>/<c>Load</c>, so <c>Evaluate</c> labels per-class figures by name.</para>
/// <para><b><see cref="MLImage"/> input.</b> <c>LoadImages</c> -> <see cref="MLImage"/> -> this trainer works: Crate.MLNet and
/// Microsoft.ML.ImageAnalytics 5 share SkiaSharp 2.88. In an application that also loads SkiaSharp 3 (ScottPlot, Crate.Reports) ML.NET's
/// image transforms cannot read pixels, and training from an image column fails with a message saying so; train from pixel vectors
/// (<see cref="CrateDataCatalog.LoadFromImageDataset"/> with Crate's image readers) there.</para>
/// </remarks>
public sealed class CrateImageClassificationTrainer : IEstimator<TransformerChain<ITransformer>>
{
    /// <summary>Everything the trainer can be told. Defaults train CRATE-mini from scratch with AdamW for 10 epochs.</summary>
    public sealed class Options
    {
        /// <summary>The key-typed label column. Default <c>Label</c>.</summary>
        public string LabelColumnName = DefaultColumnNames.Label;
        /// <summary>The image column (pixel vector or <see cref="MLImage"/>). Default <c>Image</c>.</summary>
        public string ImageColumnName = DefaultColumnNames.Image;
        /// <summary>The output probabilities column. Default <c>Score</c>.</summary>
        public string ScoreColumnName = DefaultColumnNames.Score;
        /// <summary>The output predicted-class column. Default <c>PredictedLabel</c>.</summary>
        public string PredictedLabelColumnName = DefaultColumnNames.PredictedLabel;

        /// <summary>The trunk: <c>mini</c> (default; dim 192, depth 6, patch 4), <c>tiny</c>, <c>small</c>, <c>base</c> or <c>large</c>. Ignored when
        /// <see cref="Architecture"/> or <see cref="InitialWeightsPath"/> is set.</summary>
        public string Preset = "mini";
        /// <summary>An explicit architecture (width, depth, heads, patch size, pooling, ISTA step); default null: <see cref="Preset"/>. Input size,
        /// channels, classes and normalisation still come from the data and the options below. Ignored when <see cref="InitialWeightsPath"/> is set.</summary>
        public CrateConfig? Architecture;
        /// <summary>Image height. Default null: from the pixel column's shape; for <see cref="MLImage"/> input the preset's (28 for mini, 224 otherwise).</summary>
        public int? ImageHeight;
        /// <summary>Image width. Default null: as <see cref="ImageHeight"/>.</summary>
        public int? ImageWidth;
        /// <summary>Channels (1 or 3). Default null: from the pixel column's shape; for <see cref="MLImage"/> input the preset's (1 for mini, 3 otherwise).</summary>
        public int? Channels;

        /// <summary>Epochs. Default 10.</summary>
        public int Epochs = 10;
        /// <summary>Images per optimiser step. Default 128.</summary>
        public int BatchSize = 128;
        /// <summary>Peak learning rate after warm-up. Default 1e-3 (Lion wants 3-10x less).</summary>
        public double LearningRate = 1e-3;
        /// <summary>Learning rate at the end of the cosine decay. Default 1e-5.</summary>
        public double MinLearningRate = 1e-5;
        /// <summary>Epochs of linear warm-up (fractions allowed). Default 1.</summary>
        public double WarmupEpochs = 1;
        /// <summary>Optimiser: AdamW (default) or Lion (the CRATE reference's).</summary>
        public OptimizerKind Optimizer = OptimizerKind.AdamW;
        /// <summary>Decoupled weight decay on weight matrices. Default 0.05.</summary>
        public double WeightDecay = 0.05;
        /// <summary>Label smoothing of the training loss. Default 0.1.</summary>
        public double LabelSmoothing = 0.1;
        /// <summary>Training-time augmentation (random crop with padding, resized crop, horizontal flip). Default none.</summary>
        public Augmentation Augmentation = Augmentation.None;

        /// <summary>A separate validation set with the same columns (its labels mapped by the same key mapping). Default null: <see cref="ValidationFraction"/>.</summary>
        public IDataView? ValidationSet;
        /// <summary>Fraction of the training rows held out for validation when <see cref="ValidationSet"/> is null. Default 0.1; 0: no validation.</summary>
        public double ValidationFraction = 0.1;
        /// <summary>Stop after this many epochs without a better validation top-1 (the best epoch's weights are kept either way). Default 0: never.</summary>
        public int EarlyStoppingPatience;
        /// <summary>Called after every epoch with its metrics (loss, top-1/top-5, learning rate, images/s). Default none.</summary>
        public Action<EpochMetrics>? MetricsCallback;
        /// <summary>Cap on optimiser steps per epoch, for quick runs. Default null: the whole training set.</summary>
        public int? MaxStepsPerEpoch;

        /// <summary>Training threads. Default null: the machine's cores.</summary>
        public int? Threads;
        /// <summary>bfloat16 matrix products with float32 weights, norms and softmax (mixed precision). Default null: on where the CPU has bfloat16
        /// dot products (AVX512_BF16). The exported network is float32 either way.</summary>
        public bool? BFloat16;
        /// <summary>Seed of initialisation, validation split, order and augmentation. Default null: drawn from the MLContext's seed (fixed when the context has one).</summary>
        public int? Seed;
        /// <summary>
        /// Start from this CRATE weights file (<c>.safetensors</c>, e.g. <c>crate train</c>'s <c>weights.safetensors</c>) or training checkpoint
        /// (<c>.ckpt</c>) instead of a random network; its trunk, input size and normalisation are kept, its head when the classes are the same.
        /// Default null: train from scratch.
        /// </summary>
        public string? InitialWeightsPath;
        /// <summary>
        /// What trains from <see cref="InitialWeightsPath"/>: <see cref="AdaptationMethod.FineTune"/> (default: every weight, or the last
        /// <see cref="FineTuneLastLayers"/> layers and the head), <see cref="AdaptationMethod.LinearProbe"/> (the head alone) or
        /// <see cref="AdaptationMethod.PromptTuning"/> (the head and <see cref="PromptTokens"/> new prompt tokens). Anything but fine-tuning
        /// every weight needs <see cref="InitialWeightsPath"/>.
        /// </summary>
        public AdaptationMethod Adaptation = AdaptationMethod.FineTune;
        /// <summary>Prompt tuning: prompt tokens inserted after the class token, initialised with std 0.02. Default 8.</summary>
        public int PromptTokens = 8;
        /// <summary>Fine-tuning: train only the last n layers (1..depth) and the head. Default null: every layer.</summary>
        public int? FineTuneLastLayers;

        /// <summary>Also write the trained network here as a plain ONNX file (batched input, for <see cref="CrateBatchScorer"/>, <see cref="CratePredictor"/>
        /// and other runtimes). Default null: none; the saved ML.NET model never needs it.</summary>
        public string? OnnxModelPath;
    }

    private readonly CatalogContext _context;
    private readonly Options _options;

    internal CrateImageClassificationTrainer(CatalogContext context, Options options)
    {
        _context = context;
        _options = options ?? throw new ArgumentNullException(nameof(options));
    }

    /// <summary>Trains on <paramref name="input"/> and returns the scoring chain (see the class remarks).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing, mistyped or of the wrong size, a label is missing (unseen when the key mapping was fitted),
    /// or a pixel is out of range; the message names the column (and row).</exception>
    /// <exception cref="ArgumentException">An option is invalid.</exception>
    /// <exception cref="NotSupportedException">The image column holds <see cref="MLImage"/> images that ML.NET cannot read in this process.</exception>
    public TransformerChain<ITransformer> Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var o = _options;
        var label = LabelColumn.Resolve(input.Schema, o.LabelColumnName);
        var pixels = PixelColumn.Resolve(input.Schema, o.ImageColumnName);
        var initial = InitialWeights();
        var architecture = Architecture(pixels, initial);
        pixels.CheckShape(architecture);
        using var channel = _context.Environment.Start(nameof(CrateImageClassificationTrainer));
        var trainerOptions = TrainerOptions(channel, initial); // checks the options before any data is read

        var train = DatasetReader.Read(input, _context, pixels, label, architecture, "training");
        if (o.ValidationSet != null)
        {
            var validationLabel = LabelColumn.Resolve(o.ValidationSet.Schema, o.LabelColumnName, "validation label");
            label.CheckSameClasses(validationLabel, "validation");
            var validationPixels = PixelColumn.Resolve(o.ValidationSet.Schema, o.ImageColumnName, "validation image");
            validationPixels.CheckShape(architecture);
            var validation = DatasetReader.Read(o.ValidationSet, _context, validationPixels, validationLabel, architecture, "validation");
            trainerOptions = trainerOptions with { ValidationSet = validation, ValidationFraction = 0 };
        }

        if (trainerOptions.InitialWeights != null)
            channel.Info(MessageSensitivity.None, $"Adapting '{o.InitialWeightsPath}' by {trainerOptions.AdaptationDescription ?? "fine-tuning every weight"}.");
        channel.Info(MessageSensitivity.None, $"Training {architecture} on {train.Count} images ({(trainerOptions.ValidationSet is { } v ? $"{v.Count} validation images" : $"validation fraction {o.ValidationFraction}")}).");
        var result = new CrateTrainer(trainerOptions).Train(architecture, train);
        using var model = (CrateModel)result.Model;   // the options train CRATE (TrainerOptions.Architecture's default)
        channel.Info(MessageSensitivity.None, $"Stopped: {result.StopReason}; best epoch {result.BestEpoch} of {result.History.Count}, {result.Duration.TotalSeconds:F0} s.");

        var onnx = CrateOnnxExporter.Export(model.ToWeights());
        if (o.OnnxModelPath != null) AtomicFile.Write(o.OnnxModelPath, s => s.Write(onnx));
        return ScoringChain.Classifier(_context, input, onnx, result.Config, pixels, o.ScoreColumnName, o.PredictedLabelColumnName);
    }

    /// <summary>The input columns plus <c>Score</c> and <c>PredictedLabel</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The label or image column is missing or of a type Crate cannot use.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        LabelColumn.Check(inputSchema, _options.LabelColumnName);
        PixelColumn.Check(inputSchema, _options.ImageColumnName);
        return OutputSchema.Classification(inputSchema, _options.ScoreColumnName, _options.PredictedLabelColumnName);
    }

    /// <summary>
    /// The weights of <see cref="Options.InitialWeightsPath"/> (a weights file or a training checkpoint), or null without one; adaptation
    /// settings without initial weights are refused.
    /// </summary>
    /// <exception cref="ArgumentException">The file is missing or unreadable, or an adaptation has no weights to adapt.</exception>
    private CrateWeights? InitialWeights()
    {
        var o = _options;
        AdaptationSettings.RequireWeights(o.Adaptation, o.FineTuneLastLayers, o.InitialWeightsPath);
        if (o.InitialWeightsPath is not { } path) return null;
        if (!File.Exists(path)) throw new ArgumentException($"{nameof(Options.InitialWeightsPath)} '{path}' does not exist.");
        try
        {
            return string.Equals(Path.GetExtension(path), ".ckpt", StringComparison.OrdinalIgnoreCase) ? Checkpoint.Load(path).Weights : CrateWeights.Load(path);
        }
        catch (Exception e) when (e is SafetensorsException or TrainingException)
        {
            throw new ArgumentException($"{nameof(Options.InitialWeightsPath)}: {e.Message}", e);
        }
    }

    /// <summary>
    /// The trunk from the initial weights, the preset or <see cref="Options.Architecture"/>, with the input geometry of the data (the initial
    /// weights' own geometry when there are some: images are resized to it, pixel vectors must have it).
    /// </summary>
    private CrateConfig Architecture(PixelColumn pixels, CrateWeights? initial)
    {
        var o = _options;
        var trunk = initial?.Config ?? o.Architecture ?? CratePresets.ByName(o.Preset);
        (int c, int h, int w) = pixels.Source == PixelSource.Image || initial != null
            ? (trunk.Channels, trunk.ImageHeight, trunk.ImageWidth)
            : pixels.InferShape();
        var config = trunk with { Channels = o.Channels ?? c, ImageHeight = o.ImageHeight ?? h, ImageWidth = o.ImageWidth ?? w, Mean = [], Std = [], ClassNames = [] };
        try
        {
            return config.Validate();
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"The images of column '{pixels.Name}' ({config.Channels}x{config.ImageHeight}x{config.ImageWidth}) do not fit the architecture: {e.Message} " +
                "Set ImageHeight/ImageWidth (images are resized) or an Architecture with another patch size.", e);
        }
    }

    private TrainerOptions TrainerOptions(IChannel channel, CrateWeights? initial)
    {
        var o = _options;
        return new TrainerOptions
        {
            Epochs = o.Epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, MinLearningRate = o.MinLearningRate, WarmupEpochs = o.WarmupEpochs,
            Optimizer = o.Optimizer, WeightDecay = o.WeightDecay, LabelSmoothing = o.LabelSmoothing, Augmentation = o.Augmentation,
            ValidationFraction = o.ValidationFraction, EarlyStoppingPatience = o.EarlyStoppingPatience,
            MaxStepsPerEpoch = o.MaxStepsPerEpoch, Threads = o.Threads ?? Environment.ProcessorCount, BFloat16 = o.BFloat16,
            Seed = o.Seed ?? _context.DrawSeed(nameof(CrateImageClassificationTrainer)),
            InitialWeights = initial, Adaptation = o.Adaptation, PromptTokens = o.PromptTokens, FineTuneLastLayers = o.FineTuneLastLayers,
            OnEpoch = metrics =>
            {
                channel.Info(MessageSensitivity.None, metrics.ToString());
                o.MetricsCallback?.Invoke(metrics);
            },
        }.Validate();
    }
}
