using Crate.Training.Model;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Analysis;

/// <summary>
/// What the white-box measurements read from one layer, for CRATE and for the ViT baseline alike. The one place that
/// says which ViT weight stands in for which CRATE operator.
/// </summary>
/// <param name="Norm">The LayerNorm in front of the attention step (LN1).</param>
/// <param name="Subspaces">
/// <c>U = [U_1; ...; U_K]</c>, <c>[heads*dim_head, dim]</c>: rows <c>k p .. (k+1) p - 1</c> span head k's subspace. CRATE: the MSSA
/// projection (query = key = value). ViT: the value projection <c>W_v</c>, the subspace each head's output is mixed in
/// (its query and key projections only weigh the mixing).
/// </param>
/// <param name="Dictionary">
/// <c>[dim, atoms]</c>, one atom per column: CRATE's ISTA dictionary D (<c>dim</c> atoms); for the ViT the MLP's output weight
/// <c>W_2</c> (<c>ratio x dim</c> atoms), whose columns are what the MLP adds to a token, weighted by its hidden activations.
/// </param>
public sealed record LayerOperators(LayerNorm Norm, Tensor Subspaces, Tensor Dictionary)
{
    /// <summary>Layer <paramref name="layer"/>'s operators in <paramref name="model"/> (views of its weights, not copies).</summary>
    /// <exception cref="ArgumentException">The model is neither CRATE nor the ViT baseline.</exception>
    public static LayerOperators Of(IVisionTransformer model, int layer) => model switch
    {
        CrateModel crate => new LayerOperators(crate.Layers[layer].Attention.Norm, crate.Layers[layer].Attention.Block.U, crate.Layers[layer].Sparsify.Block.D),
        VitModel vit => new LayerOperators(vit.Layers[layer].Attention.Norm, vit.Layers[layer].Attention.Block.ValueProjection, vit.Layers[layer].Mlp.Block.OutputWeight),
        _ => throw new ArgumentException($"White-box measurements know CRATE and the ViT baseline, not {model.GetType().Name}."),
    };
}
