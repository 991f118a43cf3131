using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Model;

/// <summary>
/// Multi-head subspace self-attention: one projection U serves as query, key and value.
/// Per head k: A_k = softmax((U_k z)(U_k z)^T / sqrt(p)), out_k = A_k (U_k z); heads concatenated, then projected.
/// </summary>
public sealed class Mssa : nn.Module<Tensor, Tensor>
{
    private readonly Linear qkv;
    private readonly Sequential to_out;
    private readonly Linear _outProjection;
    private readonly Dropout _dropout;
    private readonly int _heads;
    private readonly int _dimHead;

    /// <summary>Creates the block for <paramref name="dim"/>-wide tokens and <paramref name="heads"/> subspaces of <paramref name="dimHead"/>.</summary>
    public Mssa(int dim, int heads, int dimHead, double dropout) : base(nameof(Mssa))
    {
        _heads = heads;
        _dimHead = dimHead;
        var inner = heads * dimHead;
        qkv = nn.Linear(dim, inner, hasBias: false);                                   // U, shared q = k = v
        _outProjection = nn.Linear(inner, dim);
        _dropout = nn.Dropout(dropout);
        to_out = nn.Sequential(("0", _outProjection), ("1", _dropout));
        register_module(nameof(qkv), qkv);
        register_module(nameof(to_out), to_out);
    }

    /// <summary>The projection U, <c>[heads*dim_head, dim]</c>.</summary>
    public Parameter U => qkv.weight!;

    /// <summary>Run the products in bfloat16 (softmax stays float32); see <see cref="MixedPrecision"/>.</summary>
    public bool BFloat16 { get; set; }

    /// <inheritdoc />
    public override Tensor forward(Tensor z) => Forward(z, keepAttention: false, out _);

    /// <summary>MSSA of <paramref name="z"/> <c>[B, T, dim]</c>; optionally also the attention <c>[B, heads, T, T]</c>.</summary>
    public Tensor Forward(Tensor z, bool keepAttention, out Tensor? attention)
    {
        var (b, t) = (z.shape[0], z.shape[1]);
        var type = MixedPrecision.ProductType(BFloat16);
        // The 1/sqrt(p) of the scores is split as p^(-1/4) on U (so w w^T carries it) and p^(1/4) on the output
        // projection (undoing it for A w): the same function, without a pass over the [B, H, T, T] scores.
        // Explicit, scoped Scalars: an implicit one can be finalized while libtorch still reads it.
        using var quarter = Math.Pow(_dimHead, -0.25).ToScalar();
        using var unquarter = Math.Pow(_dimHead, 0.25).ToScalar();
        // w = U_k z p^(-1/4) per head, [B, H, T, p], made contiguous once for the batched products below. The attention
        // is written out rather than fused: libtorch's fused kernel measured slower here (its bfloat16 backward 15-25x).
        var w = nn.functional.linear(z.to(type), qkv.weight!.mul(quarter).to(type))
            .view(b, t, _heads, _dimHead).transpose(1, 2).contiguous();
        var a = GramMatrix.apply(w).to(ScalarType.Float32).softmax(-1);                   // softmax(w w^T), float32
        var mixed = torch.matmul(a.to(type), w);                                            // A w
        attention = keepAttention ? a : null;
        var merged = mixed.transpose(1, 2).reshape(b, t, _heads * _dimHead);
        return _dropout.forward(MixedPrecision.Linear(merged, _outProjection.weight!.mul(unquarter), _outProjection.bias, BFloat16));
    }
}

/// <summary>
/// <c>S = w w^T</c> for every <c>[T, p]</c> matrix of <c>w</c> (batched over the leading dimensions), with a backward
/// that knows both factors are <c>w</c>: <c>dw = dS w + dS^T w</c>, two products accumulated in one. Autograd would
/// treat the factors as two tensors and add a transposed gradient to a contiguous one, a strided sum that cost more
/// than a product here.
/// </summary>
internal sealed class GramMatrix : autograd.SingleTensorFunction<GramMatrix>
{
    /// <inheritdoc />
    public override string Name => nameof(GramMatrix);

    /// <inheritdoc />
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var w = (Tensor)vars[0];
        ctx.save_for_backward([w]);
        return torch.matmul(w, w.transpose(-1, -2));
    }

    /// <inheritdoc />
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        var w = ctx.get_saved_variables()[0];
        var g = grad.to(w.dtype);
        return [torch.matmul(g, w).add_(torch.matmul(g.transpose(-1, -2), w))];
    }
}
