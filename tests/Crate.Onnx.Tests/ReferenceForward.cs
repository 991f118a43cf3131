using Crate.Core.Model;

namespace Crate.Onnx.Tests;

/// <summary>
/// CRATE's forward pass for one image written straight from the architecture description, in double precision,
/// with plain loops: einops patchify, the ISTA step as the reference's three products (not the folded matrix),
/// per-head attention, prompt tokens (when the trunk has them) placed between the class token and the patches without
/// positions. An independent check of the exported graph that shares no code with the exporter or TorchSharp.
/// </summary>
internal static class ReferenceForward
{
    /// <summary>Logits and pooled features of one image of raw pixels in [0, 255].</summary>
    public static (double[] Logits, double[] Features) Run(CrateWeights w, ReadOnlySpan<float> pixels)
    {
        var c = w.Config;
        int p = c.PatchSize, C = c.Channels, H = c.ImageHeight, W = c.ImageWidth, d = c.Dim, prompted = c.PromptTokens, T = 1 + prompted + c.NumPatches;
        double[] P(string key) => Array.ConvertAll(w.Floats(key), v => (double)v);

        // b c (h p1) (w p2) -> b (h w) (p1 p2 c), after (x / 255 - mean) / std.
        var patches = new double[c.NumPatches, c.PatchDim];
        for (int gi = 0; gi < c.GridHeight; gi++)
            for (int gj = 0; gj < c.GridWidth; gj++)
                for (int p1 = 0; p1 < p; p1++)
                    for (int p2 = 0; p2 < p; p2++)
                        for (int ch = 0; ch < C; ch++)
                        {
                            double x = pixels[(ch * H + gi * p + p1) * W + gj * p + p2];
                            patches[gi * c.GridWidth + gj, (p1 * p + p2) * C + ch] = (x / 255 - c.MeanOf(ch)) / c.StdOf(ch);
                        }
        var e = LayerNorm(patches, P("to_patch_embedding.1.weight"), P("to_patch_embedding.1.bias"));
        e = Linear(e, P("to_patch_embedding.2.weight"), P("to_patch_embedding.2.bias"), d);
        e = LayerNorm(e, P("to_patch_embedding.3.weight"), P("to_patch_embedding.3.bias"));

        // Tokens: [cls + pos_0, prompt_1 .. prompt_k, patch_1 + pos_1 .. patch_N + pos_N] (k = prompted).
        var z = new double[T, d];
        var cls = P("cls_token");
        var pos = P("pos_embedding");
        var prompts = prompted > 0 ? P("prompt_tokens") : [];
        for (int f = 0; f < d; f++) z[0, f] = cls[f] + pos[f];
        for (int t = 1; t <= prompted; t++)
            for (int f = 0; f < d; f++)
                z[t, f] = prompts[(t - 1) * d + f];
        for (int n = 1; n <= c.NumPatches; n++)
            for (int f = 0; f < d; f++)
                z[prompted + n, f] = e[n - 1, f] + pos[n * d + f];

        for (int l = 0; l < c.Depth; l++)
        {
            var key = $"transformer.layers.{l}";
            // MSSA: h = z + to_out(concat_k softmax(w_k w_k^T / sqrt(p)) w_k), w = LN1(z) U^T.
            var wz = Linear(LayerNorm(z, P($"{key}.0.norm.weight"), P($"{key}.0.norm.bias")), P($"{key}.0.fn.qkv.weight"), null, c.InnerDim);
            var mixed = new double[T, c.InnerDim];
            for (int head = 0; head < c.Heads; head++)
            {
                int o = head * c.DimHead;
                for (int i = 0; i < T; i++)
                {
                    var a = new double[T];
                    for (int j = 0; j < T; j++)
                    {
                        double s = 0;
                        for (int k = 0; k < c.DimHead; k++) s += wz[i, o + k] * wz[j, o + k];
                        a[j] = s / Math.Sqrt(c.DimHead);
                    }
                    double max = a.Max(), sum = 0;
                    for (int j = 0; j < T; j++) sum += a[j] = Math.Exp(a[j] - max);
                    for (int j = 0; j < T; j++)
                        for (int k = 0; k < c.DimHead; k++)
                            mixed[i, o + k] += a[j] / sum * wz[j, o + k];
                }
            }
            var attended = Linear(mixed, P($"{key}.0.fn.to_out.0.weight"), P($"{key}.0.fn.to_out.0.bias"), d);
            var h = new double[T, d];
            for (int t = 0; t < T; t++) for (int k = 0; k < d; k++) h[t, k] = z[t, k] + attended[t, k];

            // ISTA: x1 = x D^T, g1 = x1 D, g2 = x D, z = ReLU(x + eta (g2 - g1) - eta lambda); no residual.
            var x = LayerNorm(h, P($"{key}.1.norm.weight"), P($"{key}.1.norm.bias"));
            var D = P($"{key}.1.fn.weight");
            var x1 = Linear(x, D, null, d);
            var g1 = LinearTransposed(x1, D, d);
            var g2 = LinearTransposed(x, D, d);
            for (int t = 0; t < T; t++)
                for (int k = 0; k < d; k++)
                    z[t, k] = Math.Max(0, x[t, k] + c.IstaStep * (g2[t, k] - g1[t, k]) - c.IstaStep * c.IstaLambda);
        }

        var features = new double[1, d];
        for (int k = 0; k < d; k++)
        {
            if (c.Pool == Pooling.Cls) features[0, k] = z[0, k];
            else { for (int t = 0; t < T; t++) features[0, k] += z[t, k]; features[0, k] /= T; }
        }
        var logits = Linear(LayerNorm(features, P("mlp_head.0.weight"), P("mlp_head.0.bias")), P("mlp_head.1.weight"), P("mlp_head.1.bias"), c.NumClasses);
        return (Row(logits), Row(features));
    }

    private static double[] Row(double[,] m) => Enumerable.Range(0, m.GetLength(1)).Select(k => m[0, k]).ToArray();

    /// <summary>Row-wise LayerNorm, eps 1e-5, biased variance.</summary>
    private static double[,] LayerNorm(double[,] x, double[] gain, double[] bias)
    {
        int n = x.GetLength(0), f = x.GetLength(1);
        var y = new double[n, f];
        for (int r = 0; r < n; r++)
        {
            double mean = 0, variance = 0;
            for (int k = 0; k < f; k++) mean += x[r, k];
            mean /= f;
            for (int k = 0; k < f; k++) variance += (x[r, k] - mean) * (x[r, k] - mean);
            variance /= f;
            for (int k = 0; k < f; k++) y[r, k] = (x[r, k] - mean) / Math.Sqrt(variance + 1e-5) * gain[k] + bias[k];
        }
        return y;
    }

    /// <summary><c>x W^T + b</c> for a row-major <c>[outputs, inputs]</c> W.</summary>
    private static double[,] Linear(double[,] x, double[] weight, double[]? bias, int outputs)
    {
        int n = x.GetLength(0), inputs = x.GetLength(1);
        var y = new double[n, outputs];
        for (int r = 0; r < n; r++)
            for (int o = 0; o < outputs; o++)
            {
                double s = bias?[o] ?? 0;
                for (int k = 0; k < inputs; k++) s += x[r, k] * weight[o * inputs + k];
                y[r, o] = s;
            }
        return y;
    }

    /// <summary><c>x W</c> for a row-major square W (the reference's <c>linear(x, W^T)</c>).</summary>
    private static double[,] LinearTransposed(double[,] x, double[] weight, int dim)
    {
        int n = x.GetLength(0);
        var y = new double[n, dim];
        for (int r = 0; r < n; r++)
            for (int o = 0; o < dim; o++)
            {
                double s = 0;
                for (int k = 0; k < dim; k++) s += x[r, k] * weight[k * dim + o];
                y[r, o] = s;
            }
        return y;
    }
}
