using Crate.Core.Segmentation;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Segmentation;

/// <summary>
/// Masks named by query tokens: the trunk's class token and prompt tokens (the Q tokens before the patches) each propose a
/// class distribution and a mask embedding, and every pixel softly picks a query and takes its classes. Per query q:
/// <c>LayerNorm -> Linear(dim, K)</c> gives class log-probabilities, <c>Linear(dim, E)</c> the mask embedding. Per patch
/// token: <c>LayerNorm -> Linear(dim, E*p*p)</c> gives an E-wide embedding for each of its p x p pixels (put in place as the
/// coarse head puts its logits). A pixel's log-probability of class k is
/// <c>logsumexp_q(log_softmax_q(&lt;query_q, pixel&gt; / sqrt(E)) + log_softmax_k(class_q)[k])</c>.
/// </summary>
/// <remarks>
/// Why: a classifier's naming sits in its class token. Its own head applied to its last layer's patch tokens named 31% of
/// object patches right against 91% from the class token (BENCHMARKS.md), and the patch head of
/// <see cref="PatchSegmentationHead"/> reads only patch tokens. The queries carry the class token's naming to the pixels;
/// more than one query lets a scene hold more than one named object. Children: <c>query_norm</c>, <c>classes</c>,
/// <c>query_embed</c>, <c>pixel_norm</c>, <c>pixel_embed</c>.
/// </remarks>
public sealed class QueryMaskHead : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Width E of the query and pixel embeddings.</summary>
    public const int EmbeddingWidth = SegmentationCheckpointFormat.QueryEmbeddingWidth;

    private readonly LayerNorm query_norm, pixel_norm;
    private readonly Linear classes, query_embed, pixel_embed;
    private readonly int _classes, _patch, _gridH, _gridW;

    /// <summary>Creates the head for <paramref name="numClasses"/> mask classes on a <paramref name="gridH"/> x <paramref name="gridW"/> grid of <paramref name="patch"/>-pixel patches.</summary>
    public QueryMaskHead(int dim, int numClasses, int patch, int gridH, int gridW) : base(nameof(QueryMaskHead))
    {
        (_classes, _patch, _gridH, _gridW) = (numClasses, patch, gridH, gridW);
        query_norm = nn.LayerNorm(dim, eps: 1e-5);
        classes = nn.Linear(dim, numClasses);
        query_embed = nn.Linear(dim, EmbeddingWidth);
        pixel_norm = nn.LayerNorm(dim, eps: 1e-5);
        pixel_embed = nn.Linear(dim, EmbeddingWidth * patch * patch);
        RegisterComponents();
    }

    /// <summary>
    /// Query tokens <c>[B, Q, dim]</c> and patch tokens <c>[B, N, dim]</c> to per-pixel class log-probabilities <c>[B, K, H, W]</c>
    /// (each pixel's probabilities sum to 1).
    /// </summary>
    public override Tensor forward(Tensor queryTokens, Tensor patchTokens)
    {
        long b = patchTokens.shape[0];
        long height = _gridH * _patch, width = _gridW * _patch;
        var queries = query_norm.forward(queryTokens);
        var classLogProbs = classes.forward(queries).log_softmax(-1);                                  // [B, Q, K]
        var pixels = PatchSegmentationHead.PutInPlace(pixel_embed.forward(pixel_norm.forward(patchTokens)), EmbeddingWidth, _patch, _gridH, _gridW)
            .reshape(b, EmbeddingWidth, height * width);                                               // [B, E, HW]
        var assignment = torch.bmm(query_embed.forward(queries), pixels)
            .mul(1.0 / Math.Sqrt(EmbeddingWidth)).log_softmax(1);                                       // [B, Q, HW]: which query claims the pixel
        return (assignment.unsqueeze(2) + classLogProbs.unsqueeze(-1))                                  // [B, Q, K, HW]
            .logsumexp(1).view(b, _classes, height, width);
    }
}
