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
    private readonly int _heads;
    private readonly int _dimHead;

    /// <summary>Creates the block for <paramref name="dim"/>-wide tokens and <paramref name="heads"/> subspaces of <paramref name="dimHead"/>.</summary>
    public Mssa(int dim, int heads, int dimHead, double dropout) : base(nameof(Mssa))
    {
        _heads = heads;
        _dimHead = dimHead;
        var inner = heads * dimHead;
        qkv = nn.Linear(dim, inner, hasBias: false);                                   // U, shared q = k = v
        to_out = nn.Sequential(("0", nn.Linear(inner, dim)), ("1", nn.Dropout(dropout)));
        register_module(nameof(qkv), qkv);
        register_module(nameof(to_out), to_out);
    }

    /// <summary>The projection U, <c>[heads*dim_head, dim]</c>.</summary>
    public Parameter U => qkv.weight!;

    /// <inheritdoc />
    public override Tensor forward(Tensor z) => Forward(z, keepAttention: false, out _);

    /// <summary>MSSA of <paramref name="z"/> <c>[B, T, dim]</c>; optionally also the attention <c>[B, heads, T, T]</c>.</summary>
    public Tensor Forward(Tensor z, bool keepAttention, out Tensor? attention)
    {
        var (b, t) = (z.shape[0], z.shape[1]);
        var w = qkv.forward(z).view(b, t, _heads, _dimHead).transpose(1, 2);           // U_k z per head: [B, H, T, p]
        Tensor mixed;
        if (keepAttention)
        {
            var scale = Math.Pow(_dimHead, -0.5);
            attention = torch.matmul(w, w.transpose(-1, -2)).mul(scale).softmax(-1);   // softmax(w w^T / sqrt(p))
            mixed = torch.matmul(attention, w);                                         // A w
        }
        else
        {
            attention = null;
            mixed = nn.functional.scaled_dot_product_attention(w, w, w);                // same math, fused kernel
        }
        return to_out.forward(mixed.transpose(1, 2).reshape(b, t, _heads * _dimHead));
    }
}
