using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training;

/// <summary>The optimisers the trainer offers.</summary>
public enum OptimizerKind
{
    /// <summary>Adam with decoupled weight decay (Loshchilov and Hutter), as <c>torch.optim.AdamW</c>.</summary>
    AdamW,
    /// <summary>Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms"), the CRATE reference's optimiser.</summary>
    Lion,
}

/// <summary>A parameter with its state-dict name and whether weight decay applies to it.</summary>
/// <param name="Name">State-dict key, e.g. <c>transformer.layers.0.1.fn.weight</c>.</param>
/// <param name="Parameter">The parameter.</param>
/// <param name="Decay">Whether decoupled weight decay shrinks it.</param>
public sealed record OptimizedParameter(string Name, Parameter Parameter, bool Decay);

/// <summary>
/// An optimiser whose whole state is a set of named tensors plus a step count, so checkpoints restore it
/// exactly. Updates are elementwise tensor operations without autograd. The learning rate is passed to every
/// <see cref="Step"/> (the schedule lives outside).
/// </summary>
public abstract class CrateOptimizer : IDisposable
{
    private readonly Dictionary<string, Tensor>[] _state;

    /// <summary>Creates the optimiser over <paramref name="parameters"/>.</summary>
    protected CrateOptimizer(IEnumerable<OptimizedParameter> parameters, double weightDecay, double beta1, double beta2)
    {
        Parameters = parameters.ToArray();
        WeightDecay = weightDecay;
        Beta1 = beta1;
        Beta2 = beta2;
        _state = Parameters.Select(_ => new Dictionary<string, Tensor>(StringComparer.Ordinal)).ToArray();
    }

    /// <summary>The parameters, in order.</summary>
    public IReadOnlyList<OptimizedParameter> Parameters { get; }
    /// <summary>Decoupled weight decay coefficient (multiplied by the learning rate).</summary>
    public double WeightDecay { get; }
    /// <summary>First-moment coefficient.</summary>
    public double Beta1 { get; }
    /// <summary>Second coefficient (second moment for AdamW, momentum update for Lion).</summary>
    public double Beta2 { get; }
    /// <summary>Completed steps.</summary>
    public long StepCount { get; private set; }
    /// <summary>Names of the per-parameter state tensors (e.g. <c>exp_avg</c>).</summary>
    public abstract IReadOnlyList<string> Slots { get; }

    /// <summary>The decay and no-decay split used by the trainer: matrices decay; norms, biases, <c>pos_embedding</c> and <c>cls_token</c> do not.</summary>
    public static IEnumerable<OptimizedParameter> Split(nn.Module module) =>
        module.named_parameters().Select(p => new OptimizedParameter(p.name, p.parameter,
            p.parameter.dim() >= 2 && p.name is not ("pos_embedding" or "cls_token")));

    /// <summary>Creates the optimiser of <paramref name="kind"/> with its default betas unless given.</summary>
    public static CrateOptimizer Create(OptimizerKind kind, IEnumerable<OptimizedParameter> parameters, double weightDecay, double? beta1 = null, double? beta2 = null) =>
        kind switch
        {
            OptimizerKind.AdamW => new AdamWOptimizer(parameters, weightDecay, beta1 ?? 0.9, beta2 ?? 0.999),
            OptimizerKind.Lion => new LionOptimizer(parameters, weightDecay, beta1 ?? 0.9, beta2 ?? 0.99),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

    /// <summary>Applies one update with learning rate <paramref name="lr"/> to every parameter that has a gradient.</summary>
    public void Step(double lr)
    {
        StepCount++;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            var grad = p.Parameter.grad;
            if (grad is null) continue;
            if (_state[i].Count == 0)
                foreach (var slot in Slots) _state[i][slot] = torch.zeros_like(p.Parameter).DetachFromDisposeScope();
            Update(p.Parameter, grad, _state[i], lr, p.Decay ? WeightDecay : 0);
        }
    }

    /// <summary>Updates one parameter in place; <paramref name="weightDecay"/> is 0 for parameters that do not decay.</summary>
    protected abstract void Update(Tensor parameter, Tensor grad, IReadOnlyDictionary<string, Tensor> state, double lr, double weightDecay);

    /// <summary>Clears every gradient (sets it to none).</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.Parameter.grad = null;
    }

    /// <summary>The state tensors, named <c>parameter/slot</c>, for checkpoints. Parameters never updated have none.</summary>
    public IEnumerable<(string Name, Tensor Value)> State() =>
        Parameters.SelectMany((p, i) => _state[i].Select(kv => ($"{p.Name}/{kv.Key}", kv.Value)));

    /// <summary>Restores state written by <see cref="State"/> (copied) and the step count.</summary>
    /// <exception cref="ArgumentException">A state tensor is unknown or mis-shaped.</exception>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        var known = new HashSet<string>(Parameters.SelectMany(p => Slots.Select(s => $"{p.Name}/{s}")), StringComparer.Ordinal);
        var unknown = state.Keys.Where(k => !known.Contains(k)).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"Optimizer state has unknown entries: {string.Join(", ", unknown.Take(5))}.");
        for (int i = 0; i < Parameters.Count; i++)
        {
            foreach (var d in _state[i].Values) d.Dispose();
            _state[i].Clear();
            foreach (var slot in Slots)
            {
                if (!state.TryGetValue($"{Parameters[i].Name}/{slot}", out var value)) continue;
                if (!value.shape.SequenceEqual(Parameters[i].Parameter.shape))
                    throw new ArgumentException($"Optimizer state '{Parameters[i].Name}/{slot}' is [{string.Join(", ", value.shape)}], the parameter is [{string.Join(", ", Parameters[i].Parameter.shape)}].");
                _state[i][slot] = value.to(ScalarType.Float32).clone().DetachFromDisposeScope();
            }
        }
        StepCount = stepCount;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var d in _state.SelectMany(s => s.Values)) d.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// AdamW, as <c>torch.optim.AdamW</c> computes it:
/// <c>p *= 1 - lr wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)</c>.
/// </summary>
public sealed class AdamWOptimizer : CrateOptimizer
{
    private static readonly string[] SlotNames = ["exp_avg", "exp_avg_sq"];

    /// <summary>Creates AdamW (betas 0.9 / 0.999 by default, eps 1e-8).</summary>
    public AdamWOptimizer(IEnumerable<OptimizedParameter> parameters, double weightDecay, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
        : base(parameters, weightDecay, beta1, beta2) => Eps = eps;

    /// <summary>Denominator guard.</summary>
    public double Eps { get; }

    /// <inheritdoc />
    public override IReadOnlyList<string> Slots => SlotNames;

    /// <inheritdoc />
    protected override void Update(Tensor p, Tensor g, IReadOnlyDictionary<string, Tensor> state, double lr, double weightDecay)
    {
        var (m, v) = (state["exp_avg"], state["exp_avg_sq"]);
        if (weightDecay != 0) p.mul_(1 - lr * weightDecay);
        m.mul_(Beta1).add_(g, alpha: 1 - Beta1);
        v.mul_(Beta2).addcmul_(g, g, value: 1 - Beta2);
        double correction1 = 1 - Math.Pow(Beta1, StepCount), correction2 = 1 - Math.Pow(Beta2, StepCount);
        var denominator = v.sqrt().div_(Math.Sqrt(correction2)).add_(Eps);
        p.addcdiv_(m, denominator, value: -lr / correction1);
    }
}

/// <summary>
/// Lion: <c>c = b1 m + (1-b1) g; p -= lr (sign(c) + wd p); m = b2 m + (1-b2) g</c> (decoupled weight decay;
/// betas 0.9 / 0.99 by default). Update magnitudes are lr per element, so Lion wants a 3-10x smaller lr than AdamW.
/// </summary>
public sealed class LionOptimizer : CrateOptimizer
{
    private static readonly string[] SlotNames = ["exp_avg"];

    /// <summary>Creates Lion.</summary>
    public LionOptimizer(IEnumerable<OptimizedParameter> parameters, double weightDecay, double beta1 = 0.9, double beta2 = 0.99)
        : base(parameters, weightDecay, beta1, beta2) { }

    /// <inheritdoc />
    public override IReadOnlyList<string> Slots => SlotNames;

    /// <inheritdoc />
    protected override void Update(Tensor p, Tensor g, IReadOnlyDictionary<string, Tensor> state, double lr, double weightDecay)
    {
        var m = state["exp_avg"];
        var direction = m.mul(Beta1).add_(g, alpha: 1 - Beta1).sign_();
        if (weightDecay != 0) p.mul_(1 - lr * weightDecay);
        p.add_(direction, alpha: -lr);
        m.mul_(Beta2).add_(g, alpha: 1 - Beta2);
    }
}
