using Crate.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Pretext;

/// <summary>
/// One white-box decoder layer of CRATE-MAE, the encoder layer run backwards: first the transpose of a learned
/// dictionary undoes sparse coding, <c>x = LN(x) D^T</c>, then an MSSA step is subtracted, <c>x = x - MSSA(LN(x))</c>.
/// </summary>
public sealed class WhiteBoxDecoderLayer : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm _dictionaryNorm;
    private readonly Parameter dictionary;
    private readonly LayerNorm _attentionNorm;
    private readonly Mssa _attention;

    /// <summary>Creates a decoder layer of width <paramref name="dim"/>.</summary>
    public WhiteBoxDecoderLayer(int dim, int heads, int dimHead) : base(nameof(WhiteBoxDecoderLayer))
    {
        _dictionaryNorm = nn.LayerNorm(dim, eps: 1e-5);
        dictionary = new Parameter(torch.empty(dim, dim));
        nn.init.kaiming_uniform_(dictionary, a: 0);
        _attentionNorm = nn.LayerNorm(dim, eps: 1e-5);
        _attention = new Mssa(dim, heads, dimHead, 0);
        register_module("dictionary_norm", _dictionaryNorm);
        register_parameter(nameof(dictionary), dictionary);
        register_module("attention_norm", _attentionNorm);
        register_module("attention", _attention);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var decoded = torch.matmul(_dictionaryNorm.forward(x), dictionary.t());   // D^T applied to each token
        return decoded - _attention.forward(_attentionNorm.forward(decoded));      // undo a compression step
    }
}

/// <summary>
/// CRATE-MAE: the CRATE encoder sees only the visible patches (75% hidden by default), a white-box decoder
/// rebuilds every patch, and the loss is the mean squared error on the hidden patches' pixels.
/// </summary>
public sealed class MaskedAutoencoder : nn.Module<Tensor, Tensor>, IObjective
{
    private readonly CrateModel _encoder;
    private readonly Linear _toDecoder;
    private readonly Parameter mask_token;
    private readonly Parameter decoder_pos_embedding;
    private readonly WhiteBoxDecoderLayer[] _decoderLayers;
    private readonly LayerNorm _decoderNorm;
    private readonly Linear _toPixels;
    private readonly Generator _generator;

    /// <summary>Wraps <paramref name="encoder"/> with a decoder of <paramref name="decoderDepth"/> layers.</summary>
    public MaskedAutoencoder(CrateModel encoder, int decoderDepth = 2, double maskRatio = 0.75, bool normalizeTargets = false, long seed = 0)
        : base(nameof(MaskedAutoencoder))
    {
        var c = encoder.Config;
        _encoder = encoder;
        MaskRatio = maskRatio;
        NormalizeTargets = normalizeTargets;
        _generator = new Generator((ulong)seed);
        _toDecoder = nn.Linear(c.Dim, c.Dim);
        mask_token = new Parameter(torch.zeros(1, 1, c.Dim));
        decoder_pos_embedding = new Parameter(torch.randn(1, c.NumPatches + 1, c.Dim).mul(0.02));
        _decoderLayers = Enumerable.Range(0, decoderDepth).Select(_ => new WhiteBoxDecoderLayer(c.Dim, c.Heads, c.DimHead)).ToArray();
        _decoderNorm = nn.LayerNorm(c.Dim, eps: 1e-5);
        _toPixels = nn.Linear(c.Dim, c.PatchDim);
        register_module("encoder", encoder);
        register_module("decoder_embed", _toDecoder);
        register_parameter(nameof(mask_token), mask_token);
        register_parameter(nameof(decoder_pos_embedding), decoder_pos_embedding);
        register_module("decoder_layers", new ModuleList<WhiteBoxDecoderLayer>(_decoderLayers));
        register_module("decoder_norm", _decoderNorm);
        register_module("decoder_pred", _toPixels);
    }

    /// <summary>Fraction of patches hidden from the encoder.</summary>
    public double MaskRatio { get; }
    /// <summary>Whether each target patch is normalised to zero mean and unit variance before the loss.</summary>
    public bool NormalizeTargets { get; }
    /// <summary>The encoder, i.e. the backbone this task pretrains.</summary>
    public CrateModel Encoder => _encoder;

    /// <inheritdoc />
    public Generator Generator => _generator;
    /// <inheritdoc />
    public string Name => "mae";
    /// <inheritdoc />
    public IReadOnlyList<Parameter> TrainableParameters => parameters().ToList();
    /// <inheritdoc />
    public void Train(bool training) => train(training);

    /// <summary>Predicted pixels for every patch <c>[B, N, p*p*C]</c> and the mask that was used.</summary>
    public (Tensor Prediction, PatchMask Mask) Reconstruct(Tensor images)
    {
        var patches = _encoder.EmbedPatches(images);
        var mask = PatchMask.Random(patches.shape[0], (int)patches.shape[1], MaskRatio, _generator);
        var visible = torch.cat([_encoder.ClassTokenWithPosition(patches.shape[0]), mask.Select(patches)], 1);
        var encoded = _toDecoder.forward(_encoder.ForwardTokens(visible));
        var restored = mask.Unshuffle(encoded.narrow(1, 1, encoded.shape[1] - 1), mask_token);
        var x = torch.cat([encoded.narrow(1, 0, 1), restored], 1).add(decoder_pos_embedding);
        foreach (var layer in _decoderLayers) x = layer.forward(x);
        var prediction = _toPixels.forward(_decoderNorm.forward(x)).narrow(1, 1, patches.shape[1]);
        return (prediction, mask);
    }

    /// <inheritdoc />
    public Tensor Loss(Tensor images, Tensor labels) => forward(images);

    /// <summary>Mean squared error over the hidden patches' pixels.</summary>
    public override Tensor forward(Tensor images)
    {
        var (prediction, mask) = Reconstruct(images);
        var target = PatchEmbedding.Patchify(images, _encoder.Config.PatchSize);
        if (NormalizeTargets)
            target = (target - target.mean([-1], keepdim: true)) / (target.var(-1, keepdim: true) + 1e-6).sqrt();
        var perPatch = (prediction - target).pow(2).mean([-1]);
        return (perPatch * mask.Masked).sum() / mask.Masked.sum();
    }
}
