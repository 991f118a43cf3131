using Crate.Core.Data.Segmentation;
using Crate.Core.IO;
using Crate.Core.Model;
using Crate.MLNet.Internal;
using Crate.Onnx.Export;
using Crate.Training;
using Crate.Training.Adaptation;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Crate.MLNet;

/// <summary>
/// Trains a CRATE semantic segmentation model (a CRATE trunk with a light per-pixel head on its patch tokens) and returns it as a
/// chain of ML.NET's own transformers. Create it with <c>mlContext.Segmentation().Trainers.Crate(...)</c>.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns</b></para>
/// <list type="table">
/// <listheader><term>column</term><description>type and meaning</description></listheader>
/// <item><term>input: <c>Image</c></term><description>A known-size vector of <see cref="byte"/> or <see cref="float"/> pixels, values 0..255,
/// channel-major <c>[C, H, W]</c>; or an <see cref="MLImage"/>, resized to <see cref="Options.ImageHeight"/> x <see cref="Options.ImageWidth"/>
/// (default: the mask column's <c>[H, W]</c>).</description></item>
/// <item><term>input: <c>Mask</c> (training only)</term><description>A known-size vector of <see cref="byte"/> class ids, one per pixel, row-major
/// <c>[H, W]</c>: 0 background, 1..K-1 the object classes, 255 ignored (no loss, no metric), as in PASCAL VOC.
/// <see cref="CrateDataCatalog.LoadFromSegmentationDataset"/> makes such columns.</description></item>
/// <item><term>output: <c>PredictedMask</c></term><description>Vector of <see cref="byte"/>, shaped <c>[H, W]</c>: the class id of every pixel.</description></item>
/// <item><term>output: <c>MaskScores</c> (when <see cref="Options.MaskScoresColumnName"/> is set)</term><description>Vector of <see cref="float"/>, shaped
/// <c>[K, H, W]</c>: every pixel's class probabilities (softmax over the classes).</description></item>
/// </list>
/// <para><b>Trainer characteristics</b></para>
/// <list type="table">
/// <item><term>Machine learning task</term><description>Semantic segmentation of images (ML.NET has no segmentation task; <see cref="SegmentationCatalog.Evaluate(IDataView, IReadOnlyList{string}, string, string)"/> measures it)</description></item>
/// <item><term>Is normalization required?</term><description>No: per-channel mean and standard deviation are computed from the training images and applied inside the model.</description></item>
/// <item><term>Is caching required?</term><description>No: <see cref="Fit"/> reads the data once into memory.</description></item>
/// <item><term>Required NuGet in addition to Microsoft.ML</term><description>Crate.MLNet (TorchSharp-cpu for training); scoring a saved model needs only Microsoft.ML.OnnxTransformer and Microsoft.ML.OnnxRuntime.</description></item>
/// <item><term>Exportable to ONNX</term><description>Yes: the network is ONNX with <c>mask</c> and <c>mask_logits</c> outputs (<see cref="Options.OnnxModelPath"/>).</description></item>
/// </list>
/// <para><b>What <see cref="Fit"/> does.</b> It reads images and masks into memory, builds the trunk (a preset resized to the data, or the trunk of
/// <see cref="Options.InitialWeightsPath"/>) and a new head (<c>LayerNorm -> Linear(dim, K p p)</c> per patch token, refined by two 3x3
/// convolutions over the coarse logits and the image), trains it with per-pixel cross-entropy (pixels marked 255 ignored; AdamW or Lion, warm-up
/// and cosine decay, random horizontal flips), exports it to ONNX, and returns ML.NET's own transformers around it: image preparation (for
/// <see cref="MLImage"/> input) and <c>ApplyOnnxModel</c> (the ONNX bytes stored in the saved .zip). So <c>mlContext.Model.Save</c> and <c>Load</c>
/// round-trip it, and a process with no TorchSharp or Crate scores it. <see cref="MLContext.GpuDeviceId"/> and <see cref="MLContext.FallbackToCpu"/>
/// choose the device the chain scores on.</para>
/// <para><b>Class names.</b> From <see cref="Options.ClassNames"/>, else from the mask column's <c>MaskClassNames</c> annotation (which
/// <see cref="CrateDataCatalog.LoadFromSegmentationDataset"/> writes), else <c>"0"</c>, <c>"1"</c>, ... up to the largest id in the masks. They
/// are stored in the ONNX file's <c>crate.mask_class_names</c> metadata; the ML.NET columns carry ids.</para>
/// <para><b>Threads.</b> Training uses <see cref="Options.Threads"/> libtorch threads. On shared cores call <see cref="ProcessTuning.Apply"/> at
/// start-up, before anything loads libtorch.</para>
/// </remarks>
public sealed class CrateSegmentationTrainer : IEstimator<TransformerChain<ITransformer>>
{
    /// <summary>Default name of the mask column (input).</summary>
    public const string DefaultMaskColumnName = "Mask";
    /// <summary>Default name of the predicted mask column (output).</summary>
    public const string DefaultPredictedMaskColumnName = "PredictedMask";

    /// <summary>Everything the trainer can be told. Defaults train a new CRATE-mini trunk with patches of 8 pixels and AdamW for 10 epochs.</summary>
    public sealed class Options
    {
        /// <summary>The image column (pixel vector or <see cref="MLImage"/>). Default <c>Image</c>.</summary>
        public string ImageColumnName = DefaultColumnNames.Image;
        /// <summary>The mask column: per-pixel class ids, a byte vector of <c>H x W</c> (255 = ignore). Default <c>Mask</c>.</summary>
        public string MaskColumnName = DefaultMaskColumnName;
        /// <summary>The output column of predicted class ids (bytes, <c>[H, W]</c>). Default <c>PredictedMask</c>.</summary>
        public string PredictedMaskColumnName = DefaultPredictedMaskColumnName;
        /// <summary>An output column of per-pixel class probabilities (floats, <c>[K, H, W]</c>). Default null: not produced.</summary>
        public string? MaskScoresColumnName;

        /// <summary>Preset of a new trunk: <c>mini</c> (default; dim 192, depth 6), <c>tiny</c>, <c>small</c>, <c>base</c> or <c>large</c>. Ignored with <see cref="InitialWeightsPath"/>.</summary>
        public string Preset = "mini";
        /// <summary>Token width of a new trunk (heads of 32). Default null: the preset's.</summary>
        public int? Dim;
        /// <summary>Layers of a new trunk. Default null: the preset's.</summary>
        public int? Depth;
        /// <summary>Patch side of a new trunk; must divide the image size. Default 8 (an 8 x 8 grid on 64 x 64 scenes).</summary>
        public int PatchSize = 8;
        /// <summary>Image height. Default null: from the pixel column's shape; for <see cref="MLImage"/> input, the mask column's.</summary>
        public int? ImageHeight;
        /// <summary>Image width. Default null: as <see cref="ImageHeight"/>.</summary>
        public int? ImageWidth;
        /// <summary>Channels (1 or 3). Default null: from the pixel column's shape; 3 for <see cref="MLImage"/> input.</summary>
        public int? Channels;
        /// <summary>
        /// Start from this checkpoint's trunk: a CRATE classifier or segmentation model from <c>crate segment train</c>, or CRATE weights from
        /// <c>crate train</c> (its channels must be the data's and its normalisation is kept; for another image size, divisible by its patch size,
        /// its positional embedding is resampled to the new patch grid). A segmentation model whose class count matches also
        /// keeps its head. Default null: a new trunk (<see cref="Preset"/>, <see cref="Dim"/>, <see cref="Depth"/>, <see cref="PatchSize"/>).
        /// </summary>
        public string? InitialWeightsPath;
        /// <summary>Mask class names, background first, index = class id. Default null: the mask column's annotation, else numbers (see the class remarks).</summary>
        public IReadOnlyList<string>? ClassNames;

        /// <summary>Epochs. Default 10.</summary>
        public int Epochs = 10;
        /// <summary>Images per optimiser step. Default 64.</summary>
        public int BatchSize = 64;
        /// <summary>Peak learning rate after warm-up (5% of the steps); cosine decay to 0 follows. Default 1e-3.</summary>
        public double LearningRate = 1e-3;
        /// <summary>Optimiser: AdamW (default) or Lion.</summary>
        public OptimizerKind Optimizer = OptimizerKind.AdamW;
        /// <summary>Decoupled weight decay on weight matrices. Default 0.05.</summary>
        public double WeightDecay = 0.05;
        /// <summary>Flip a random half of each batch horizontally, images and masks together. Default true.</summary>
        public bool HorizontalFlip = true;
        /// <summary>
        /// What trains from <see cref="InitialWeightsPath"/> besides the new segmentation head: <see cref="AdaptationMethod.FineTune"/>
        /// (default: every weight, or the last <see cref="FineTuneLastLayers"/> layers), <see cref="AdaptationMethod.LinearProbe"/> (the head
        /// alone, the trunk frozen) or <see cref="AdaptationMethod.PromptTuning"/> (the head and <see cref="PromptTokens"/> new prompt tokens
        /// on the frozen trunk). Anything but fine-tuning every weight needs <see cref="InitialWeightsPath"/>.
        /// </summary>
        public AdaptationMethod Adaptation = AdaptationMethod.FineTune;
        /// <summary>Prompt tuning: prompt tokens inserted after the class token, initialised with std 0.02. Default 8.</summary>
        public int PromptTokens = 8;
        /// <summary>Fine-tuning: train only the last n layers (1..depth) and the head. Default null: every layer.</summary>
        public int? FineTuneLastLayers;
        /// <summary>
        /// Add a query head whose queries are the class token and <c>Queries - 1</c> prompt tokens (new ones when the trunk has
        /// none): each query names a class and claims pixels, so the class token's naming reaches the mask. Default null: none
        /// (or the one <see cref="InitialWeightsPath"/>'s model has).
        /// </summary>
        public int? Queries;
        /// <summary>Called after every epoch with its loss, learning rate and throughput (also written to <c>MLContext.Log</c>). Default none.</summary>
        public Action<EpochReport>? MetricsCallback;

        /// <summary>Training threads. Default null: the machine's cores.</summary>
        public int? Threads;
        /// <summary>Seed of initialisation, order and flips. Default null: drawn from the MLContext's seed (fixed when the context has one).</summary>
        public int? Seed;
        /// <summary>Also write the trained network here as a plain ONNX file (batched input; <c>mask</c> and <c>mask_logits</c> outputs). Default null: none.</summary>
        public string? OnnxModelPath;
    }

    private readonly CatalogContext _context;
    private readonly Options _options;

    internal CrateSegmentationTrainer(CatalogContext context, Options options)
    {
        _context = context;
        _options = options ?? throw new ArgumentNullException(nameof(options));
    }

    /// <summary>Trains on <paramref name="input"/> and returns the scoring chain (see the class remarks).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The image or mask column is missing, mistyped or of the wrong size, a pixel is out of range,
    /// or a class id is outside the classes; the message names the column (and row).</exception>
    /// <exception cref="ArgumentException">An option is invalid (output columns sharing a name, or hiding the image column, are refused before
    /// training), or the initial weights do not fit the data.</exception>
    /// <exception cref="NotSupportedException">The image column holds <see cref="MLImage"/> images that ML.NET cannot read in this process.</exception>
    /// <exception cref="TrainingException">The loss became NaN or infinite (the message says in which epoch).</exception>
    public TransformerChain<ITransformer> Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var o = _options;
        var pixels = PixelColumn.Resolve(input.Schema, o.ImageColumnName);
        var mask = MaskColumn.Resolve(input.Schema, o.MaskColumnName);
        ScoringChain.CheckSegmentationOutputs(pixels, o.PredictedMaskColumnName, o.MaskScoresColumnName);
        var (channels, height, width) = InputShape(pixels, mask);
        // The input geometry alone: the shape checks and the reader need nothing else; the trunk is built once the data is read.
        var shape = new CrateConfig { Channels = channels, ImageHeight = height, ImageWidth = width };
        pixels.CheckShape(shape);
        mask.CheckShape(shape);
        var classNames = o.ClassNames ?? MaskColumn.ClassNamesOf(input.Schema, mask.Name);
        AdaptationSettings.RequireWeights(o.Adaptation, o.FineTuneLastLayers, o.InitialWeightsPath);
        var start = o.InitialWeightsPath is { } path ? InitialWeights(path, pixels, shape) : null;
        if (start != null) AdaptationSettings.Check(start.Trunk.Config, o.Adaptation, o.PromptTokens, o.FineTuneLastLayers);
        int seed = o.Seed ?? _context.DrawSeed(nameof(CrateSegmentationTrainer));
        torch.set_num_threads(Math.Max(1, o.Threads ?? Environment.ProcessorCount));
        using var channel = _context.Environment.Start(nameof(CrateSegmentationTrainer));

        var train = DatasetReader.ReadSegmentation(input, _context, pixels, mask, shape, classNames, "training");
        // The same seed gives the same new trunk and head.
        torch.manual_seed(seed);
        IVisionTransformer trunk = start?.Trunk ?? new CrateModel(NewTrunk(train, pixels));
        if (o.Adaptation == AdaptationMethod.PromptTuning && trunk.Config.PromptTokens == 0) trunk = TrunkAdaptation.WithPrompts(trunk, o.PromptTokens);
        if (o.Queries is int queries) trunk = SegmentationModel.TrunkWithQueries(trunk, queries);
        var kept = start?.Segmenter is { } earlier && earlier.NumClasses == train.NumClasses ? earlier : null;
        using var model = SegmentationModel.Continuing(kept, trunk, train.NumClasses, queryHead: o.Queries != null);
        channel.Info(MessageSensitivity.None, $"Training {trunk.Config} with a {train.NumClasses}-class segmentation head on {train.Count} images.");
        SegmentationTraining.TrainSegmentation(model, train, new SegmentationTrainingOptions
        {
            Epochs = o.Epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, Optimizer = o.Optimizer, WeightDecay = o.WeightDecay,
            Flip = o.HorizontalFlip, Adaptation = o.Adaptation, FineTuneLastLayers = o.FineTuneLastLayers, Seed = seed,
        }, report =>
        {
            channel.Info(MessageSensitivity.None, FormattableString.Invariant($"epoch {report.Epoch}: loss {report.Loss:F4}, lr {report.LearningRate:E2}, {report.ImagesPerSecond:F0} images/s"));
            o.MetricsCallback?.Invoke(report);
            // A non-finite loss leaves non-finite weights: stop rather than return a chain that predicts nonsense.
            if (!double.IsFinite(report.Loss))
                throw new TrainingException(FormattableString.Invariant(
                    $"Training diverged: the mean loss of epoch {report.Epoch} is {report.Loss} (learning rate {o.LearningRate}). Lower LearningRate and train again."));
        });

        var onnx = CrateOnnxExporter.Export(((CrateModel)model.Trunk).ToWeights(),
            new CrateOnnxExportOptions { Segmentation = new SegmentationHeadWeights(model.Trunk.Config, train.ClassNames, model.HeadWeights()) });
        if (o.OnnxModelPath != null) AtomicFile.Write(o.OnnxModelPath, s => s.Write(onnx));
        return ScoringChain.Segmenter(_context, input, onnx, model.Trunk.Config, train.NumClasses, pixels, o.PredictedMaskColumnName, o.MaskScoresColumnName);
    }

    /// <summary>The input columns plus <c>PredictedMask</c> (and <c>MaskScores</c> when asked for).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The image or mask column is missing or of a type Crate cannot use.</exception>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        PixelColumn.Check(inputSchema, _options.ImageColumnName);
        MaskColumn.Check(inputSchema, _options.MaskColumnName);
        return OutputSchema.Segmentation(inputSchema, _options.PredictedMaskColumnName, _options.MaskScoresColumnName);
    }

    /// <summary>Channels and size of the network input: the options, else the pixel column's shape, else (for images) the mask column's.</summary>
    private (int Channels, int Height, int Width) InputShape(PixelColumn pixels, MaskColumn mask)
    {
        var o = _options;
        if (pixels.Source != PixelSource.Image)
        {
            var (c, h, w) = pixels.InferShape();
            return (o.Channels ?? c, o.ImageHeight ?? h, o.ImageWidth ?? w);
        }
        var (maskHeight, maskWidth) = mask.Shape ?? (o.ImageHeight, o.ImageWidth) switch
        {
            (int h, int w) => (h, w),
            _ => throw new ArgumentOutOfRangeException("inputSchema",
                $"The image column '{pixels.Name}' holds images and the mask column '{mask.Name}' has no [height, width] dimensions; " +
                "set ImageHeight and ImageWidth (the masks' size) or declare the mask column's dimensions."),
        };
        return (o.Channels ?? 3, o.ImageHeight ?? maskHeight, o.ImageWidth ?? maskWidth);
    }

    /// <summary>A new trunk for the data (see <see cref="SegmentationModel.TrunkFor"/>); a size the patches do not fit names the image column.</summary>
    private CrateConfig NewTrunk(SegmentationDataset train, PixelColumn pixels)
    {
        try
        {
            return SegmentationModel.TrunkFor(train, _options.Preset, _options.Dim, _options.Depth, _options.PatchSize);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"The images of column '{pixels.Name}' ({train.Channels}x{train.Height}x{train.Width}) do not fit the trunk: {e.Message} " +
                "Set PatchSize to a divisor of the image size, or ImageHeight/ImageWidth (images are resized).", e);
        }
    }

    /// <summary>Loads <see cref="Options.InitialWeightsPath"/> and checks that its trunk is CRATE (ONNX export needs it) and takes the data's images.</summary>
    private static SegmentationCheckpointContents InitialWeights(string path, PixelColumn pixels, CrateConfig shape)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Initial weights '{path}' do not exist.", path);
        var start = SegmentationCheckpoint.Load(path);
        if (start.Trunk is not CrateModel)
            throw new ArgumentException($"Initial weights '{path}' hold a '{Architectures.NameOf(start.Trunk)}' trunk; only CRATE segmentation models export to ONNX.");
        var c = start.Trunk.Config;
        try { return start with { Trunk = TrunkAdaptation.FittedTo(start.Trunk, shape.Channels, shape.ImageHeight, shape.ImageWidth) }; }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"Initial weights '{path}' do not fit the image column '{pixels.Name}': {e.Message}; set Channels to {c.Channels} " +
                $"and an image size divisible by {c.PatchSize}, or train a new trunk.", e);
        }
    }
}
