using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Model;

/// <summary>A pre-norm wrapper: <c>fn(LayerNorm(x))</c>, registered as <c>norm</c> and <c>fn</c> like the reference.</summary>
public sealed class PreNorm<TBlock> : nn.Module<Tensor, Tensor> where TBlock : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm norm;
    private readonly TBlock fn;

    /// <summary>Wraps <paramref name="block"/> behind a LayerNorm over <paramref name="dim"/> features (eps 1e-5).</summary>
    public PreNorm(int dim, TBlock block) : base("PreNorm")
    {
        norm = nn.LayerNorm(dim, eps: 1e-5);
        fn = block;
        register_module(nameof(norm), norm);
        register_module(nameof(fn), fn);
    }

    /// <summary>The LayerNorm.</summary>
    public LayerNorm Norm => norm;
    /// <summary>The wrapped block.</summary>
    public TBlock Block => fn;

    /// <inheritdoc />
    public override Tensor forward(Tensor x) => fn.forward(norm.forward(x));
}

/// <summary>One CRATE layer: compression then sparsification, <c>h = z + MSSA(LN1(z))</c>, <c>z' = ISTA(LN2(h))</c>.</summary>
public sealed class CrateLayer : nn.Module<Tensor, Tensor>, ITracedLayer
{
    private readonly PreNorm<Mssa> _attention;
    private readonly PreNorm<Ista> _ista;

    /// <summary>Creates a layer; registered children are "0" (attention) and "1" (ISTA) as in the reference.</summary>
    public CrateLayer(int dim, int heads, int dimHead, double dropout, double eta, double lambda) : base(nameof(CrateLayer))
    {
        _attention = new PreNorm<Mssa>(dim, new Mssa(dim, heads, dimHead, dropout));
        _ista = new PreNorm<Ista>(dim, new Ista(dim, eta, lambda));
        register_module("0", _attention);
        register_module("1", _ista);
    }

    /// <summary>The MSSA block with its LayerNorm (LN1).</summary>
    public PreNorm<Mssa> Attention => _attention;
    /// <summary>The ISTA block with its LayerNorm (LN2).</summary>
    public PreNorm<Ista> Sparsify => _ista;

    /// <inheritdoc />
    public override Tensor forward(Tensor z) => Forward(z, false, out _, out _);

    /// <summary>Runs the layer, returning <c>z'</c> and the intermediate <c>h</c> (and attention when asked).</summary>
    public Tensor Forward(Tensor z, bool keepAttention, out Tensor afterAttention, out Tensor? attention)
    {
        afterAttention = z + _attention.Block.Forward(_attention.Norm.forward(z), keepAttention, out attention); // residual around MSSA
        return _ista.forward(afterAttention);                                                                     // no residual around ISTA
    }
}
