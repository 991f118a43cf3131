using Crate.Core.Model;
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
/// A pretrained CRATE trunk adapted to classification by one of the <see cref="AdaptationMethod"/>s. The adapted network
/// is an ordinary <see cref="CrateModel"/> (<see cref="Model"/>): prompt tuning uses the trunk's own prompt tokens
/// (<see cref="CrateConfig.PromptTokens"/>), so its weights save, export and serve like any CRATE weights. Frozen
/// weights have <c>requires_grad</c> off and are never handed to the optimiser, so they stay bit-identical.
/// </summary>
public sealed class AdaptedClassifier : nn.Module<Tensor, Tensor>, IObjective
{
    private const string HeadPrefix = "mlp_head.";
    private const string PromptsName = "prompt_tokens";

    private readonly CrateModel model;
    private readonly IReadOnlyList<Parameter> _trainable;
    private readonly double _labelSmoothing;

    /// <summary>
    /// Adapts the trunk of <paramref name="trunk"/> (its head is replaced by a new one for <paramref name="classes"/> classes)
    /// by <paramref name="method"/>. <paramref name="promptTokens"/> applies to prompt tuning (fresh prompts, std 0.02);
    /// <paramref name="fineTuneLastLayers"/> limits fine-tuning to the last n layers (null: everything).
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than one prompt token, a layer count outside 1..depth, or a layer count for another method.</exception>
    public AdaptedClassifier(CrateWeights trunk, int classes, AdaptationMethod method, int promptTokens = 8, int? fineTuneLastLayers = null, double labelSmoothing = 0)
        : base(nameof(AdaptedClassifier))
    {
        if (SettingsError(trunk.Config, method, promptTokens, fineTuneLastLayers) is { } error) throw new ArgumentException(error);
        Method = method;
        _labelSmoothing = labelSmoothing;
        var config = ConfigFor(trunk.Config, method, promptTokens) with
        {
            NumClasses = classes,
            ClassNames = trunk.Config.NumClasses == classes ? trunk.Config.ClassNames : [],
        };
        model = new CrateModel(config);   // fresh head and prompts
        register_module(nameof(model), model);
        LoadTrunk(model, trunk, method, keepHead: false);
        _trainable = Freeze(model, method, fineTuneLastLayers);
    }

    /// <summary>The adaptation method.</summary>
    public AdaptationMethod Method { get; }
    /// <summary>The adapted network: the (partly frozen) trunk with its prompts, if any, and the new head.</summary>
    public CrateModel Model => model;
    /// <summary>Number of parameters the optimiser updates.</summary>
    public long TrainableParameterCount => _trainable.Sum(p => p.numel());

    /// <inheritdoc />
    public string Name => NameOf(Method);
    /// <inheritdoc />
    public IReadOnlyList<Parameter> TrainableParameters => _trainable;

    /// <inheritdoc />
    public void Train(bool training) => model.train(training && TrainsInTrainingMode(Method));

    /// <summary>Final tokens <c>[B, T, dim]</c>; with prompt tuning, T includes the prompts right after the class token.</summary>
    public Tensor Tokens(Tensor images) => model.ForwardTokens(model.Embed(images));

    /// <inheritdoc />
    public override Tensor forward(Tensor images) => model.forward(images);

    /// <inheritdoc />
    public Tensor Loss(Tensor images, Tensor labels) => nn.functional.cross_entropy(forward(images), labels, label_smoothing: _labelSmoothing);

    /// <summary>The adapted network's weights: ordinary CRATE weights (prompt tokens included when prompt-tuned).</summary>
    public CrateWeights ToWeights(IReadOnlyDictionary<string, string>? metadata = null) => model.ToWeights(metadata);

    /// <summary>The method's command-line name: <c>linear-probe</c>, <c>prompt-tuning</c> or <c>fine-tune</c>.</summary>
    public static string NameOf(AdaptationMethod method) => method switch
    {
        AdaptationMethod.LinearProbe => "linear-probe",
        AdaptationMethod.PromptTuning => "prompt-tuning",
        _ => "fine-tune",
    };

    /// <summary>
    /// Whether the network trains in training mode: a frozen trunk (linear probe, prompt tuning) always computes as at
    /// inference, so its features carry no dropout noise (the head has no dropout).
    /// </summary>
    public static bool TrainsInTrainingMode(AdaptationMethod method) => method == AdaptationMethod.FineTune;

    /// <summary>
    /// The configuration of <paramref name="trunk"/> adapted by <paramref name="method"/>: prompt tuning gives it
    /// <paramref name="promptTokens"/> prompt tokens; the other methods keep the trunk's own (usually none).
    /// </summary>
    public static CrateConfig ConfigFor(CrateConfig trunk, AdaptationMethod method, int promptTokens) =>
        method == AdaptationMethod.PromptTuning ? trunk with { PromptTokens = promptTokens } : trunk;

    /// <summary>
    /// What is wrong with adapting <paramref name="trunk"/> with these settings (fewer than one prompt token for prompt tuning,
    /// a layer count outside 1..depth or given to another method), or null when they fit.
    /// </summary>
    public static string? SettingsError(CrateConfig trunk, AdaptationMethod method, int promptTokens, int? fineTuneLastLayers) =>
        method == AdaptationMethod.PromptTuning && promptTokens < 1 ? $"prompt tuning needs at least one prompt token, got {promptTokens}"
        : fineTuneLastLayers is int n && (n < 1 || n > trunk.Depth) ? $"the layers to fine-tune must be 1..{trunk.Depth} (the trunk's depth), got {n}"
        : fineTuneLastLayers != null && method != AdaptationMethod.FineTune ? $"fine-tuning only the last {fineTuneLastLayers} layers applies to fine-tune, not to {NameOf(method)}"
        : null;

    /// <summary>
    /// The adaptation in a few words (<c>linear-probe</c>, <c>prompt-tuning (8 prompt tokens)</c>, <c>fine-tune (last 2 layers)</c>),
    /// or null for fine-tuning every weight, which trains like a run from scratch.
    /// </summary>
    public static string? Describe(AdaptationMethod method, int promptTokens, int? fineTuneLastLayers) => method switch
    {
        AdaptationMethod.PromptTuning => $"{NameOf(method)} ({promptTokens} prompt tokens)",
        AdaptationMethod.FineTune when fineTuneLastLayers is int n => $"{NameOf(method)} (last {n} layers)",
        AdaptationMethod.FineTune => null,
        _ => NameOf(method),
    };

    /// <summary>
    /// Copies <paramref name="trunk"/>'s weights into <paramref name="target"/>, whose configuration is
    /// <see cref="ConfigFor"/> of the trunk's (classes aside). The target keeps its own (fresh) head unless
    /// <paramref name="keepHead"/>, and its own (fresh) prompts when prompt-tuning.
    /// </summary>
    public static void LoadTrunk(CrateModel target, CrateWeights trunk, AdaptationMethod method, bool keepHead)
    {
        using var noGrad = torch.no_grad();
        foreach (var (name, parameter) in target.named_parameters())
        {
            if ((!keepHead && name.StartsWith(HeadPrefix, StringComparison.Ordinal)) || (method == AdaptationMethod.PromptTuning && name == PromptsName))
                continue;
            using var source = torch.tensor(trunk.Floats(name), parameter.shape);
            parameter.copy_(source);
        }
    }

    /// <summary>
    /// Turns <c>requires_grad</c> off for what <paramref name="method"/> keeps fixed and returns what it trains, head first:
    /// the head (linear probe); the head and the prompts (prompt tuning); everything, or the head and the last
    /// <paramref name="fineTuneLastLayers"/> layers (fine-tuning).
    /// </summary>
    public static IReadOnlyList<Parameter> Freeze(CrateModel model, AdaptationMethod method, int? fineTuneLastLayers = null)
    {
        var trunk = TrunkAdaptation.Unfreeze(model, model.Config.Depth, method, fineTuneLastLayers);
        List<Parameter> head = [.. model.ClassifierHead.parameters()];
        foreach (var p in head) p.requires_grad = true;
        return [.. head, .. trunk];
    }
}
