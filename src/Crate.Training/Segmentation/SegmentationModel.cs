using Crate.Core.Data.Segmentation;
using Crate.Core.Model;
using Crate.Core.Segmentation;
using Crate.Core.Weights;
using Crate.Training.Adaptation;
using Crate.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Segmentation;

/// <summary>
/// The light supervised segmentation head. Coarse: every patch token of the last layer goes through
/// <c>LayerNorm(dim) -> Linear(dim, K*p*p)</c>, giving K class logits for each of the patch's p x p pixels, put back in
/// place (a pixel shuffle) as <c>[B, K, H, W]</c>. Refinement: the coarse logits and the normalised image go through
/// <c>Conv3x3(K+C, 32) -> ReLU -> Conv3x3(32, K)</c>, added to the coarse logits. The refinement exists because the
/// patch embedding LayerNorms each raw patch, which removes its mean brightness: the tokens alone cannot tell a flat
/// object interior from flat background, the pixels can. Children "0", "1" (coarse) and "refine.0", "refine.2".
/// </summary>
public sealed class PatchSegmentationHead : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Channels of the refinement's hidden layer.</summary>
    public const int RefineChannels = SegmentationCheckpointFormat.RefineChannels;

    private readonly LayerNorm _norm;
    private readonly Linear _linear;
    private readonly Sequential refine;
    private readonly Conv2d _refineIn, _refineOut;
    private readonly int _classes, _patch, _gridH, _gridW;

    /// <summary>Creates the head for <paramref name="classes"/> mask classes on a <paramref name="gridH"/> x <paramref name="gridW"/> grid of <paramref name="patch"/>-pixel patches of <paramref name="channels"/>-channel images.</summary>
    public PatchSegmentationHead(int dim, int classes, int patch, int gridH, int gridW, int channels) : base(nameof(PatchSegmentationHead))
    {
        (_classes, _patch, _gridH, _gridW) = (classes, patch, gridH, gridW);
        _norm = nn.LayerNorm(dim, eps: 1e-5);
        _linear = nn.Linear(dim, classes * patch * patch);
        _refineIn = nn.Conv2d(classes + channels, RefineChannels, 3, padding: 1);
        _refineOut = nn.Conv2d(RefineChannels, classes, 3, padding: 1);
        // Registered under the reference's names (refine.0, refine.2); forward applies the convolutions itself (Convolve3x3).
        refine = nn.Sequential(("0", _refineIn), ("1", nn.ReLU()), ("2", _refineOut));
        register_module("0", _norm);
        register_module("1", _linear);
        register_module(nameof(refine), refine);
    }

    /// <summary>Number of mask classes (background included).</summary>
    public int NumClasses => _classes;

    /// <summary>Patch tokens <c>[B, N, dim]</c> (no class token) to coarse pixel logits <c>[B, K, H, W]</c>.</summary>
    public Tensor Coarse(Tensor patchTokens)
    {
        var perPatch = _linear.forward(_norm.forward(patchTokens));                          // [B, N, K*p*p], feature = (k, p1, p2)
        return PutInPlace(perPatch, _classes, _patch, _gridH, _gridW);
    }

    /// <summary>
    /// Per-patch features <c>[B, N, C*p*p]</c> (feature index = (c, p1, p2), patches row by row on a <paramref name="gridH"/> x
    /// <paramref name="gridW"/> grid) to per-pixel maps <c>[B, C, H, W]</c>: each patch's p x p values go back where its pixels are.
    /// </summary>
    internal static Tensor PutInPlace(Tensor perPatch, int channels, int patch, int gridH, int gridW) =>
        perPatch.view(perPatch.shape[0], gridH, gridW, channels, patch, patch)
            .permute(0, 3, 1, 4, 2, 5)                                                       // B, C, gh, p1, gw, p2
            .reshape(perPatch.shape[0], channels, gridH * patch, gridW * patch);

    /// <summary>Patch tokens <c>[B, N, dim]</c> and the normalised images <c>[B, C, H, W]</c> to pixel logits <c>[B, K, H, W]</c>.</summary>
    public override Tensor forward(Tensor patchTokens, Tensor images)
    {
        var coarse = Coarse(patchTokens);
        var hidden = nn.functional.relu(Convolve3x3(_refineIn, torch.cat([coarse, images], 1)));
        return coarse + Convolve3x3(_refineOut, hidden);
    }

    /// <summary>
    /// <paramref name="conv"/> (3x3, padding 1) through <c>conv2d</c> with input and output channels zero-padded to multiples
    /// of 16, the extra outputs dropped. Why: libtorch sends float convolutions to oneDNN, whose backward pass for a channel
    /// count that is not a multiple of its block of 16 (the K classes, K + C inputs) returned wrong gradients (NaN now and
    /// then, garbage otherwise; measured 40 of 40 tries at 32 -> 11 channels on 64x64). Padded, every gradient matches a
    /// convolution written as image columns (a test); that form itself, tried first, was 65 times slower (its backward).
    /// Same parameters, same result up to rounding.
    /// </summary>
    private static Tensor Convolve3x3(Conv2d conv, Tensor input)
    {
        var weight = conv.weight!;
        long outputs = weight.shape[0], inputs = weight.shape[1];
        long extraOut = BlockPadding(outputs), extraIn = BlockPadding(inputs);
        var paddedWeight = nn.functional.pad(weight, [0, 0, 0, 0, 0, extraIn, 0, extraOut]);            // [O', C', 3, 3]
        var paddedBias = nn.functional.pad(conv.bias!, [0, extraOut]);
        var paddedInput = nn.functional.pad(input, [0, 0, 0, 0, 0, extraIn]);                          // [B, C', H, W]
        return nn.functional.conv2d(paddedInput, paddedWeight, paddedBias, padding: [1, 1]).narrow(1, 0, outputs);
    }

    /// <summary>Zero channels that bring <paramref name="channels"/> up to a multiple of oneDNN's block of 16.</summary>
    private static long BlockPadding(long channels) => (16 - channels % 16) % 16;
}

/// <summary>
/// Supervised segmentation: a CRATE or ViT trunk (<see cref="IVisionTransformer"/>) with a <see cref="PatchSegmentationHead"/>
/// on its last layer's patch tokens, and optionally a <see cref="QueryMaskHead"/> on its class and prompt tokens.
/// <see cref="forward"/> gives per-pixel logits <c>[B, K, H, W]</c> (with the query head: the log-softmax of the patch head's
/// logits plus the query head's log-probabilities); <see cref="Predict"/> the class ids. Children: "backbone" (the trunk,
/// classifier head included but unused), "seg_head" and, when present, "query_head".
/// </summary>
public sealed class SegmentationModel : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> backbone;
    private readonly PatchSegmentationHead seg_head;
    private readonly QueryMaskHead? query_head;

    /// <summary>
    /// Puts a new head for <paramref name="numClasses"/> mask classes (background included) on <paramref name="trunk"/>, and
    /// with <paramref name="queryHead"/> a <see cref="QueryMaskHead"/> whose queries are the trunk's class token and prompt tokens.
    /// </summary>
    public SegmentationModel(IVisionTransformer trunk, int numClasses, bool queryHead = false) : base(nameof(SegmentationModel))
    {
        if (numClasses < 2) throw new ArgumentOutOfRangeException(nameof(numClasses), $"segmentation needs background and at least one class, got {numClasses} classes");
        Trunk = trunk;
        var c = trunk.Config;
        backbone = trunk.Module;
        seg_head = new PatchSegmentationHead(c.Dim, numClasses, c.PatchSize, c.GridHeight, c.GridWidth, c.Channels);
        register_module(nameof(backbone), backbone);
        register_module(nameof(seg_head), seg_head);
        if (queryHead)
        {
            query_head = new QueryMaskHead(c.Dim, numClasses, c.PatchSize, c.GridHeight, c.GridWidth);
            register_module(nameof(query_head), query_head);
        }
    }

    /// <summary>The trunk.</summary>
    public IVisionTransformer Trunk { get; }
    /// <summary>The segmentation head.</summary>
    public PatchSegmentationHead Head => seg_head;
    /// <summary>The query head, or null when the model has none.</summary>
    public QueryMaskHead? QueryHead => query_head;
    /// <summary>Query tokens the query head reads (the class token and the prompt tokens); 0 without a query head.</summary>
    public int Queries => query_head is null ? 0 : Trunk.Config.FirstPatchToken;
    /// <summary>Number of mask classes (background included).</summary>
    public int NumClasses => seg_head.NumClasses;

    /// <summary>The parameters of the heads (not the trunk's): what every adaptation method trains.</summary>
    public IEnumerable<Parameter> HeadParameters() => query_head is null ? seg_head.parameters() : seg_head.parameters().Concat(query_head.parameters());

    /// <summary>
    /// <paramref name="trunk"/> ready for a <see cref="QueryMaskHead"/> of <paramref name="queries"/> queries. The queries are the
    /// class token and every prompt token, so a trunk without prompt tokens gets <c>queries - 1</c> new ones
    /// (<see cref="TrunkAdaptation.WithPrompts"/>); a trunk with prompt tokens must already have that many.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="queries"/> is below 1, or the trunk has a different number of prompt tokens.</exception>
    public static IVisionTransformer TrunkWithQueries(IVisionTransformer trunk, int queries)
    {
        if (queries < 1) throw new ArgumentException($"A query head needs at least 1 query (the class token), got {queries}.");
        int prompts = trunk.Config.PromptTokens;
        if (prompts == queries - 1) return trunk;
        if (prompts > 0)
            throw new ArgumentException($"{queries} queries need {queries - 1} prompt tokens, but the trunk has {prompts}: the queries are the class token and every prompt token.");
        return TrunkAdaptation.WithPrompts(trunk, queries - 1);
    }

    /// <summary>
    /// The model a run trains when it starts from <paramref name="start"/> (or from nothing): <paramref name="start"/> itself
    /// when it already sits on <paramref name="trunk"/> with the heads asked for, otherwise a new model on <paramref name="trunk"/>
    /// carrying <paramref name="start"/>'s head weights (a rebuilt trunk: prompted, resized). A query head is kept once a
    /// model has one; <paramref name="queryHead"/> adds one.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="start"/>'s heads are for another number of classes and the trunk was rebuilt.</exception>
    public static SegmentationModel Continuing(SegmentationModel? start, IVisionTransformer trunk, int numClasses, bool queryHead)
    {
        queryHead |= start?.query_head != null;
        if (start != null && start.Trunk == trunk && (start.query_head != null) == queryHead) return start;
        var model = new SegmentationModel(trunk, numClasses, queryHead);
        if (start != null) model.CopyHeadsFrom(start);
        return model;
    }

    /// <summary>Copies <paramref name="other"/>'s head weights into this model's heads (the query head's too when both have one).</summary>
    /// <exception cref="ArgumentException">The class counts differ.</exception>
    private void CopyHeadsFrom(SegmentationModel other)
    {
        if (other.NumClasses != NumClasses) throw new ArgumentException($"Heads of {other.NumClasses} classes do not fit a model of {NumClasses} classes.", nameof(other));
        TrunkAdaptation.CopyMatching(other.seg_head, seg_head);
        if (other.query_head is { } from && query_head is { } to) TrunkAdaptation.CopyMatching(from, to);
    }

    /// <summary>Normalised images <c>[B, C, H, W]</c> to pixel logits <c>[B, K, H, W]</c>.</summary>
    public override Tensor forward(Tensor images)
    {
        var tokens = Trunk.ForwardTokens(Trunk.Embed(images));
        var c = Trunk.Config;
        var patchTokens = tokens.narrow(1, c.FirstPatchToken, c.NumPatches);                   // no class token, no prompts
        var logits = seg_head.forward(patchTokens, images);
        return query_head is null ? logits : (logits + query_head.forward(tokens.narrow(1, 0, c.FirstPatchToken), patchTokens)).log_softmax(1);
    }

    /// <summary>
    /// The heads' parameters as float32 tensors under the head's own names (<c>0.weight</c> ... <c>refine.2.bias</c>), and the
    /// query head's under <c>query_head.</c>: what Crate.Onnx's <c>SegmentationHeadWeights</c> takes to export the heads
    /// without a checkpoint file.
    /// </summary>
    public IReadOnlyList<NamedTensor> HeadWeights() =>
        [.. ResumeTensors.Module(seg_head), .. query_head is null ? [] : ResumeTensors.Module(query_head, SegmentationCheckpointFormat.QueryHeadPrefix)];

    /// <summary>
    /// A new trunk's configuration sized to <paramref name="train"/>: <paramref name="preset"/> (width and depth overridden by
    /// <paramref name="dim"/> and <paramref name="depth"/>; heads of 32) with the data's input size and channels, patches of
    /// <paramref name="patchSize"/>, the object classes (mask classes without background) as the unused classifier's classes,
    /// and the training images' per-channel mean and standard deviation.
    /// </summary>
    /// <exception cref="ArgumentException">The preset is unknown or the sizes do not fit (e.g. the patch size does not divide the image).</exception>
    public static CrateConfig TrunkFor(SegmentationDataset train, string preset, int? dim, int? depth, int patchSize)
    {
        var (mean, std) = train.ToClassification().ChannelStatistics();
        var trunk = CratePresets.ByName(preset);
        if (dim is int d) trunk = trunk with { Dim = d, Heads = Math.Max(1, d / 32), DimHead = d / Math.Max(1, d / 32), Preset = "custom" };
        if (depth is int l) trunk = trunk with { Depth = l, Preset = "custom" };
        return (trunk with
        {
            ImageHeight = train.Height, ImageWidth = train.Width, PatchSize = patchSize, Channels = train.Channels,
            NumClasses = train.NumClasses - 1, ClassNames = train.ClassNames.Skip(1).ToArray(), Mean = mean, Std = std,
        }).Validate();
    }

    /// <summary>Per-pixel class ids <c>[B, H, W]</c> (uint8).</summary>
    public Tensor Predict(Tensor images)
    {
        using var _ = torch.no_grad();
        return forward(images).argmax(1).to(ScalarType.Byte);
    }
}
