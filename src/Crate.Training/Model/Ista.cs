using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Model;

/// <summary>
/// One ISTA step of sparse coding against the dictionary D (no bias, no residual):
/// <c>ReLU(x + eta (x D - x D^T D) - eta lambda)</c>, computed as one product <c>ReLU(x M - eta lambda)</c>
/// with <c>M = I + eta (D - D^T D)</c> (the same function; M is rebuilt from D on every call so gradients flow to D).
/// </summary>
public sealed class Ista : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eta;
    private readonly double _lambda;

    /// <summary>Creates the block with a kaiming-uniform dictionary, step <paramref name="eta"/> and penalty <paramref name="lambda"/>.</summary>
    public Ista(int dim, double eta, double lambda) : base(nameof(Ista))
    {
        _eta = eta;
        _lambda = lambda;
        weight = new Parameter(torch.empty(dim, dim));
        nn.init.kaiming_uniform_(weight, a: 0);
        register_parameter(nameof(weight), weight);
    }

    /// <summary>The dictionary D, <c>[dim, dim]</c>.</summary>
    public Parameter D => weight;

    /// <summary>The folded step matrix <c>M = I + eta (D - D^T D)</c>.</summary>
    public Tensor StepMatrix()
    {
        using var eta = _eta.ToScalar();
        var dim = weight.shape[0];
        return torch.eye(dim, dtype: weight.dtype, device: weight.device)
            .add(weight.sub(torch.matmul(weight.t(), weight)).mul(eta));
    }

    /// <summary>Run the token product in bfloat16 (M is still formed in float32); see <see cref="MixedPrecision"/>.</summary>
    public bool BFloat16 { get; set; }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        // -eta lambda rides in the product as its bias (linear computes x W^T + b, so W = M^T): no pass of its own.
        // A scoped Scalar, as in Mssa: an implicit one can be finalized while libtorch still reads it.
        using var shift = (-_eta * _lambda).ToScalar();
        var threshold = torch.full([weight.shape[0]], shift, dtype: weight.dtype, device: weight.device);
        return nn.functional.relu(MixedPrecision.Linear(x, StepMatrix().t(), threshold, BFloat16), inplace: true);
    }
}
