using Crate.Training.Model;
using Crate.Training.Pretext;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Adaptation;

/// <summary>How a pretrained backbone is adapted to a downstream task.</summary>
public enum AdaptationMethod
{
    /// <summary>Frozen backbone, a new linear head (the head's LayerNorm and Linear) is trained.</summary>
    LinearProbe,
    /// <summary>Frozen backbone, k learned prompt tokens inserted after the class token, plus a new head.</summary>
    PromptTuning,
    /// <summary>All backbone weights (or only the last n layers) are trained with a new head.</summary>
    FineTune,
}

/// <summary>
/// A pretrained CRATE trunk adapted to classification by one of the <see cref="AdaptationMethod"/>s. Frozen
/// weights have <c>requires_grad</c> off and are never handed to the optimiser, so they stay bit-identical.
/// </summary>
public sealed class AdaptedClassifier : nn.Module<Tensor, Tensor>, IObjective
{
    private readonly CrateModel _backbone;
    private readonly ClassifierHead _head;
    private readonly Parameter? prompts;
    private readonly List<Parameter> _trainable;
    private readonly double _labelSmoothing;

    /// <summary>
    /// Adapts <paramref name="backbone"/> (its trunk; its own head is ignored) to <paramref name="classes"/> classes.
    /// <paramref name="promptTokens"/> applies to prompt tuning; <paramref name="fineTuneLastLayers"/> limits
    /// fine-tuning to the last n layers (null: everything).
    /// </summary>
    public AdaptedClassifier(CrateModel backbone, int classes, AdaptationMethod method, int promptTokens = 8, int? fineTuneLastLayers = null, double labelSmoothing = 0)
        : base(nameof(AdaptedClassifier))
    {
        _backbone = backbone;
        Method = method;
        _labelSmoothing = labelSmoothing;
        var dim = backbone.Config.Dim;
        _head = new ClassifierHead(dim, classes);
        register_module("backbone", backbone);
        register_module("head", _head);

        foreach (var p in backbone.parameters()) p.requires_grad = false;
        _trainable = [.. _head.parameters()];
        switch (method)
        {
            case AdaptationMethod.PromptTuning:
                if (promptTokens < 1) throw new ArgumentOutOfRangeException(nameof(promptTokens), "prompt tuning needs at least one prompt token");
                prompts = new Parameter(torch.randn(1, promptTokens, dim).mul(0.02));
                register_parameter(nameof(prompts), prompts);
                _trainable.Add(prompts);
                break;
            case AdaptationMethod.FineTune:
                var layers = backbone.Layers;
                int from = fineTuneLastLayers is int n ? Math.Max(0, layers.Count - n) : 0;
                var unfrozen = fineTuneLastLayers is null
                    ? backbone.parameters()
                    : layers.Skip(from).SelectMany(l => l.parameters());
                foreach (var p in unfrozen) { p.requires_grad = true; _trainable.Add(p); }
                break;
        }
    }

    /// <summary>The adaptation method.</summary>
    public AdaptationMethod Method { get; }
    /// <summary>The (partly frozen) backbone.</summary>
    public CrateModel Backbone => _backbone;
    /// <summary>Number of parameters the optimiser updates.</summary>
    public long TrainableParameterCount => _trainable.Sum(p => p.numel());

    /// <inheritdoc />
    public string Name => Method switch { AdaptationMethod.LinearProbe => "linear-probe", AdaptationMethod.PromptTuning => "prompt-tuning", _ => "fine-tune" };
    /// <inheritdoc />
    public IReadOnlyList<Parameter> TrainableParameters => _trainable;

    /// <inheritdoc />
    public void Train(bool training)
    {
        train(training);
        // A frozen backbone always computes as at inference (no dropout noise on fixed features).
        if (Method != AdaptationMethod.FineTune) _backbone.eval();
    }

    /// <summary>Final tokens <c>[B, T, dim]</c>; with prompt tuning, T includes the prompts right after the class token.</summary>
    public Tensor Tokens(Tensor images)
    {
        var tokens = _backbone.Embed(images);
        if (prompts is not null)
        {
            var rest = tokens.shape[1] - 1;
            tokens = torch.cat([tokens.narrow(1, 0, 1), prompts.expand(tokens.shape[0], -1, -1), tokens.narrow(1, 1, rest)], 1);
        }
        return _backbone.ForwardTokens(tokens);
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor images) => _head.forward(_backbone.Pool(Tokens(images)));

    /// <inheritdoc />
    public Tensor Loss(Tensor images, Tensor labels) => nn.functional.cross_entropy(forward(images), labels, label_smoothing: _labelSmoothing);
}
