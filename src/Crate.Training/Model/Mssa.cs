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
        // U_k z per head, [B, H, T, p]. The attention is written out rather than fused: at CRATE's token counts
        // libtorch's fused kernel measured slower here, and the explicit form gives the maps for free.
        var w = MixedPrecision.Linear(z, qkv.weight!, null, BFloat16).view(b, t, _heads, _dimHead).transpose(1, 2);
        // An explicit, scoped Scalar: an implicit one can be finalized while libtorch still reads it.
        using var scale = Math.Pow(_dimHead, -0.5).ToScalar();
        var scores = MixedPrecision.MatMul(w, w.transpose(-1, -2), BFloat16).mul(scale);
        var a = scores.softmax(-1);                                                      // softmax(w w^T / sqrt(p))
        var mixed = MixedPrecision.MatMul(a, w, BFloat16);                               // A w
        attention = keepAttention ? a : null;
        var merged = mixed.transpose(1, 2).reshape(b, t, _heads * _dimHead);
        return _dropout.forward(MixedPrecision.Linear(merged, _outProjection.weight!, _outProjection.bias, BFloat16));
    }
}
