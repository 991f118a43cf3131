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
/// <remarks>
/// The optimiser moves its parameters into one flat float32 buffer (each parameter keeps its identity, shape and
/// values and becomes a view of it), decaying parameters first, and keeps gradients and state in buffers of the same
/// layout. A step gathers the gradients, clips them as one vector and updates each decay group with a few operations
/// over its whole range, instead of a few per parameter: CRATE-mini has 60 parameter tensors, so per-parameter updates
/// were over 500 small operations a step. When some parameter has no gradient, only the others are updated, one by one.
/// With <see cref="AverageDecay"/> positive it also keeps an exponential moving average of the parameters (slot
/// <see cref="AverageSlot"/>), updated after every step and swapped in by <see cref="UseAverage"/>.
/// </remarks>
public abstract class CrateOptimizer : IDisposable
{
    private readonly Tensor _values;
    private readonly Tensor _gradients;
    private readonly Dictionary<string, Tensor> _slots;
    private readonly Tensor[] _gradientViews;
    private readonly Dictionary<string, Tensor>[] _stateViews;
    private readonly Range[] _groups;

    /// <summary>A contiguous range of the flat buffers whose parameters share a weight decay.</summary>
    private sealed record Range(Tensor Values, Tensor Gradients, Dictionary<string, Tensor> State, double WeightDecay);

    /// <summary>Name of the state slot holding the parameters' moving average (see <see cref="AverageDecay"/>).</summary>
    public const string AverageSlot = "average";

    /// <summary>
    /// Creates the optimiser over <paramref name="parameters"/>, with per-parameter state tensors named <paramref name="slots"/>
    /// (plus <see cref="AverageSlot"/> when <paramref name="averageDecay"/> is positive).
    /// </summary>
    /// <exception cref="ArgumentException">The parameters are not all float32 on one device, or the average decay is outside [0, 1).</exception>
    protected CrateOptimizer(IEnumerable<OptimizedParameter> parameters, double weightDecay, double beta1, double beta2, IReadOnlyList<string> slots,
        double averageDecay)
    {
        if (averageDecay is < 0 or >= 1) throw new ArgumentException($"The average decay must be in [0, 1), got {averageDecay}.", nameof(averageDecay));
        Parameters = parameters.ToArray();
        WeightDecay = weightDecay;
        Beta1 = beta1;
        Beta2 = beta2;
        AverageDecay = averageDecay;
        Slots = averageDecay > 0 ? [.. slots, AverageSlot] : slots;
        var mismatched = Parameters.FirstOrDefault(p => p.Parameter.dtype != ScalarType.Float32
            || p.Parameter.device_type != Parameters[0].Parameter.device_type || p.Parameter.device_index != Parameters[0].Parameter.device_index);
        if (mismatched != null)
            throw new ArgumentException($"The optimiser needs float32 parameters on one device; '{mismatched.Name}' is {mismatched.Parameter.dtype} on {mismatched.Parameter.device}.");
        var device = Parameters.Count > 0 ? Parameters[0].Parameter.device : torch.CPU;
        long total = Parameters.Sum(p => p.Parameter.numel()), decaying = Parameters.Where(p => p.Decay).Sum(p => p.Parameter.numel());
        // Built in a scope of its own: what the optimiser keeps is detached from it, the intermediate views die with it.
        using var scope = torch.NewDisposeScope();
        _values = torch.empty(total, ScalarType.Float32, device).DetachFromDisposeScope();
        _gradients = torch.zeros(total, ScalarType.Float32, device).DetachFromDisposeScope();
        _slots = Slots.ToDictionary(s => s, _ => torch.zeros(total, ScalarType.Float32, device).DetachFromDisposeScope(), StringComparer.Ordinal);
        _gradientViews = new Tensor[Parameters.Count];
        _stateViews = new Dictionary<string, Tensor>[Parameters.Count];
        long offset = 0;
        using (torch.no_grad())
        {
            // OrderBy is stable: decaying parameters first, each group in the given order.
            foreach (var i in Enumerable.Range(0, Parameters.Count).OrderBy(i => Parameters[i].Decay ? 0 : 1))
            {
                var p = Parameters[i].Parameter;
                long start = offset, n = p.numel();
                var values = _values.narrow(0, start, n).view(p.shape);
                values.copy_(p);
                p.set_(values);
                _gradientViews[i] = _gradients.narrow(0, start, n).view(p.shape).DetachFromDisposeScope();
                _stateViews[i] = _slots.ToDictionary(s => s.Key, s => s.Value.narrow(0, start, n).view(p.shape).DetachFromDisposeScope(), StringComparer.Ordinal);
                offset += n;
            }
            if (averageDecay > 0) _slots[AverageSlot].copy_(_values);   // the average starts at the initial weights
        }
        _groups = new[] { (Start: 0L, Length: decaying, Decay: weightDecay), (Start: decaying, Length: total - decaying, Decay: 0.0) }
            .Where(g => g.Length > 0)
            .Select(g => new Range(_values.narrow(0, g.Start, g.Length).DetachFromDisposeScope(), _gradients.narrow(0, g.Start, g.Length).DetachFromDisposeScope(),
                _slots.ToDictionary(s => s.Key, s => s.Value.narrow(0, g.Start, g.Length).DetachFromDisposeScope(), StringComparer.Ordinal), g.Decay))
            .ToArray();
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
    public IReadOnlyList<string> Slots { get; }
    /// <summary>
    /// Decay of the exponential moving average of the parameters, <c>average = decay average + (1 - decay) parameters</c>
    /// after every step (Polyak averaging); 0: none kept.
    /// </summary>
    public double AverageDecay { get; }

    /// <summary>
    /// The decay and no-decay split used by the trainer: matrices decay; norms, biases, <c>pos_embedding</c>, <c>cls_token</c>
    /// and <c>prompt_tokens</c> do not.
    /// </summary>
    public static IEnumerable<OptimizedParameter> Split(nn.Module module) =>
        module.named_parameters().Select(p => new OptimizedParameter(p.name, p.parameter,
            p.parameter.dim() >= 2 && p.name is not ("pos_embedding" or "cls_token" or "prompt_tokens")));

    /// <summary>Creates the optimiser of <paramref name="kind"/> with its default betas unless given.</summary>
    public static CrateOptimizer Create(OptimizerKind kind, IEnumerable<OptimizedParameter> parameters, double weightDecay, double? beta1 = null, double? beta2 = null,
        double averageDecay = 0) =>
        kind switch
        {
            OptimizerKind.AdamW => new AdamWOptimizer(parameters, weightDecay, beta1 ?? 0.9, beta2 ?? 0.999, averageDecay: averageDecay),
            OptimizerKind.Lion => new LionOptimizer(parameters, weightDecay, beta1 ?? 0.9, beta2 ?? 0.99, averageDecay),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

    /// <summary>
    /// Applies one update with learning rate <paramref name="lr"/> to every parameter that has a gradient, after scaling
    /// the gradients down, when <paramref name="maxGradientNorm"/> is positive, so that their joint 2-norm is at most it
    /// (as <c>torch.nn.utils.clip_grad_norm_</c>). The parameters' own <c>grad</c> tensors are left as they were. The
    /// moving average, when kept, then moves towards the new parameters.
    /// </summary>
    public void Step(double lr, double maxGradientNorm = 0)
    {
        StepCount++;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        bool everyGradient = true;
        for (int i = 0; i < Parameters.Count; i++)
        {
            var grad = Parameters[i].Parameter.grad;
            if (grad is null) { _gradientViews[i].zero_(); everyGradient = false; }   // zeros leave the norm as it is
            else _gradientViews[i].copy_(grad);
        }
        if (maxGradientNorm > 0) ClipGradients(maxGradientNorm);
        if (everyGradient)
            foreach (var g in _groups) Update(g.Values, g.Gradients, g.State, lr, g.WeightDecay);
        else
            for (int i = 0; i < Parameters.Count; i++)
            {
                var p = Parameters[i];
                if (p.Parameter.grad is not null) Update(p.Parameter, _gradientViews[i], _stateViews[i], lr, p.Decay ? WeightDecay : 0);
            }
        if (AverageDecay > 0)
        {
            using var decay = AverageDecay.ToScalar();
            using var weight = (1 - AverageDecay).ToScalar();
            _slots[AverageSlot].mul_(decay).add_(_values, weight);
        }
    }

    /// <summary>
    /// Puts the moving average in place of the parameters until the result is disposed, which puts the trained values
    /// back exactly: evaluate or save the averaged model inside it.
    /// </summary>
    /// <exception cref="InvalidOperationException">No average is kept (<see cref="AverageDecay"/> is 0).</exception>
    public IDisposable UseAverage() =>
        AverageDecay > 0 ? new Swap(_values, _slots[AverageSlot]) : throw new InvalidOperationException("This optimiser keeps no moving average (its average decay is 0).");

    /// <summary>Holds the trained values while the average stands in for them.</summary>
    private sealed class Swap : IDisposable
    {
        private readonly Tensor _values;
        private readonly Tensor _trained;

        public Swap(Tensor values, Tensor average)
        {
            using var noGrad = torch.no_grad();
            _values = values;
            _trained = values.clone().DetachFromDisposeScope();
            values.copy_(average);
        }

        public void Dispose()
        {
            using var noGrad = torch.no_grad();
            _values.copy_(_trained);
            _trained.Dispose();
        }
    }

    /// <summary>Scales the gathered gradients by <c>min(1, max / (norm + 1e-6))</c>, without reading the norm back.</summary>
    private void ClipGradients(double maxGradientNorm)
    {
        using var guard = 1e-6.ToScalar();
        using var max = maxGradientNorm.ToScalar();
        using var one = 1.0.ToScalar();
        _gradients.mul_(_gradients.norm().add_(guard).reciprocal_().mul_(max).clamp_max_(one));
    }

    /// <summary>Updates one parameter (or a flat range of them) in place; <paramref name="weightDecay"/> is 0 for parameters that do not decay.</summary>
    protected abstract void Update(Tensor parameter, Tensor grad, IReadOnlyDictionary<string, Tensor> state, double lr, double weightDecay);

    /// <summary>Clears every gradient (sets it to none).</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.Parameter.grad = null;
    }

    /// <summary>The state tensors, named <c>parameter/slot</c>, for checkpoints (zeros before a parameter's first update).</summary>
    public IEnumerable<(string Name, Tensor Value)> State() =>
        Parameters.SelectMany((p, i) => _stateViews[i].Select(kv => ($"{p.Name}/{kv.Key}", kv.Value)));

    /// <summary>
    /// Restores state written by <see cref="State"/> (copied; entries it lacks start afresh: zeros, or the current
    /// parameters for the average) and the step count.
    /// </summary>
    /// <exception cref="ArgumentException">A state tensor is unknown or mis-shaped.</exception>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        var known = new HashSet<string>(Parameters.SelectMany(p => Slots.Select(s => $"{p.Name}/{s}")), StringComparer.Ordinal);
        var unknown = state.Keys.Where(k => !known.Contains(k)).ToList();
        if (unknown.Count > 0) throw new ArgumentException($"Optimizer state has unknown entries: {string.Join(", ", unknown.Take(5))}.");
        using var noGrad = torch.no_grad();
        for (int i = 0; i < Parameters.Count; i++)
        {
            foreach (var slot in Slots)
            {
                if (!state.TryGetValue($"{Parameters[i].Name}/{slot}", out var value))
                {
                    if (slot == AverageSlot) _stateViews[i][slot].copy_(Parameters[i].Parameter);
                    else _stateViews[i][slot].zero_();
                    continue;
                }
                if (!value.shape.SequenceEqual(Parameters[i].Parameter.shape))
                    throw new ArgumentException($"Optimizer state '{Parameters[i].Name}/{slot}' is [{string.Join(", ", value.shape)}], the parameter is [{string.Join(", ", Parameters[i].Parameter.shape)}].");
                _stateViews[i][slot].copy_(value);
            }
        }
        StepCount = stepCount;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in new[] { _values, _gradients }.Concat(_slots.Values).Concat(_gradientViews).Concat(_stateViews.SelectMany(s => s.Values))
                     .Concat(_groups.SelectMany(g => g.State.Values.Append(g.Values).Append(g.Gradients))))
            t.Dispose();
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

    /// <summary>Creates AdamW (betas 0.9 / 0.999 by default, eps 1e-8), keeping a moving average of the parameters when <paramref name="averageDecay"/> is positive.</summary>
    public AdamWOptimizer(IEnumerable<OptimizedParameter> parameters, double weightDecay, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        double averageDecay = 0)
        : base(parameters, weightDecay, beta1, beta2, SlotNames, averageDecay) => Eps = eps;

    /// <summary>Denominator guard.</summary>
    public double Eps { get; }

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

    /// <summary>Creates Lion, keeping a moving average of the parameters when <paramref name="averageDecay"/> is positive.</summary>
    public LionOptimizer(IEnumerable<OptimizedParameter> parameters, double weightDecay, double beta1 = 0.9, double beta2 = 0.99, double averageDecay = 0)
        : base(parameters, weightDecay, beta1, beta2, SlotNames, averageDecay) { }

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
