using Crate.Core.Data;
using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Analysis;

/// <summary>The white-box measurements of one layer over a data set, plus views of its weights.</summary>
/// <param name="Layer">Layer index, 0-based.</param>
/// <param name="CodingRate">
/// <c>R^c</c> of the layer's input tokens against its own subspaces (<see cref="Analysis.CodingRate"/>, <see cref="LayerOperators"/>), over images.
/// </param>
/// <param name="CodingRateAfterMssa">
/// <c>R^c</c> of the attention step's output <c>h = z + MSSA(LN1(z))</c> (ViT: <c>z + Attn(LN1(z))</c>), measured the same way
/// (LN1, then this layer's U): how much the compression step itself moved the coding rate.
/// </param>
/// <param name="CodingRatePerHead">Mean <c>R_k</c> of the input tokens per head (sums to the mean <c>R^c</c>).</param>
/// <param name="Sparsity">Fraction of exactly-zero entries of the layer's output (CRATE: its ISTA codes), over images.</param>
/// <param name="NearZero">
/// Fraction of the layer's output entries within <see cref="ModelMeasurements.NearZeroTolerance"/> times the image's root-mean-square
/// entry of zero (<see cref="Analysis.Sparsity.NearZeroFraction"/>), over images: the sparsity both networks are compared on.
/// </param>
/// <param name="Dictionary">Coherence of the layer's dictionary atoms (<see cref="LayerOperators.Dictionary"/>).</param>
/// <param name="Subspaces">Overlap of the layer's head subspaces.</param>
public sealed record LayerMeasurement(
    int Layer,
    Statistic CodingRate,
    Statistic CodingRateAfterMssa,
    double[] CodingRatePerHead,
    Statistic Sparsity,
    Statistic NearZero,
    DictionaryCoherence Dictionary,
    SubspaceCoherence Subspaces);

/// <summary>Every layer's measurements for one model over one data set.</summary>
/// <param name="Images">Number of images measured.</param>
/// <param name="Accuracy">Top-1 accuracy on those images, or null when the data's classes do not fit the model's head.</param>
/// <param name="EpsSquared">The eps^2 the coding rates used.</param>
/// <param name="NearZeroTolerance">The relative threshold of <see cref="LayerMeasurement.NearZero"/>.</param>
/// <param name="Layers">Per layer, in order.</param>
public sealed record ModelMeasurements(int Images, double? Accuracy, double EpsSquared, double NearZeroTolerance, IReadOnlyList<LayerMeasurement> Layers);

/// <summary>Class-token attention to the patches, per image, layer and head, on the patch grid.</summary>
/// <param name="ImageIndices">Which images of the data set, in order.</param>
/// <param name="GridHeight">Patch grid rows.</param>
/// <param name="GridWidth">Patch grid columns.</param>
/// <param name="Maps">
/// <c>[image][layer][head]</c>: the attention row of the class token restricted to the patches (its weight on
/// itself dropped), row-major over the grid, <c>GridHeight*GridWidth</c> values.
/// </param>
public sealed record AttentionMaps(int[] ImageIndices, int GridHeight, int GridWidth, float[][][][] Maps);

/// <summary>Measures what each layer of CRATE (or of the ViT baseline) does to data: compression (coding rate), sparsity, attention.</summary>
public static class WhiteBox
{
    /// <summary>
    /// Runs <paramref name="model"/> over all of <paramref name="data"/> in batches of <paramref name="batchSize"/> (each in
    /// its own dispose scope, without gradients, in evaluation mode and float32) and returns per-layer means and spreads.
    /// <paramref name="progress"/> receives the number of images done after every batch.
    /// </summary>
    /// <exception cref="DataException">The images do not have the model's input shape.</exception>
    public static ModelMeasurements Measure(IVisionTransformer model, ImageDataset data, int batchSize = 100,
        double epsSquared = CodingRate.DefaultEpsSquared, IProgress<int>? progress = null, double nearZeroTolerance = Sparsity.DefaultNearZeroTolerance)
    {
        var config = model.Config;
        ImageTensors.CheckShape(data, config);
        if (data.Count == 0) throw new DataException($"Data '{data.Name}' holds no images to measure.");
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        int depth = config.Depth, heads = config.Heads, n = data.Count;
        var rate = Jagged(depth, n);
        var rateAfter = Jagged(depth, n);
        var zeros = Jagged(depth, n);
        var nearZero = Jagged(depth, n);
        var operators = Enumerable.Range(0, depth).Select(l => LayerOperators.Of(model, l)).ToArray();
        var perHead = Jagged(depth, heads);
        bool scoreable = data.ClassNames.Count <= config.NumClasses;
        int correct = 0;

        using (Evaluation(model))
        {
            for (int start = 0; start < n; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var indices = Enumerable.Range(start, Math.Min(batchSize, n - start)).ToArray();
                var trace = model.Trace(ImageTensors.Normalised(data, indices, config), keepAttention: false);
                for (int l = 0; l < depth; l++)
                {
                    var input = CodingRate.OfLayer(operators[l], trace.Layers[l].Input, heads, config.DimHead, epsSquared);       // [B, K]
                    var after = CodingRate.OfLayer(operators[l], trace.Layers[l].Compressed, heads, config.DimHead, epsSquared);
                    CopyTo(input.sum([1]), rate[l], start);
                    CopyTo(after.sum([1]), rateAfter[l], start);
                    CopyTo(Sparsity.ZeroFraction(trace.Layers[l].Codes), zeros[l], start);
                    CopyTo(Sparsity.NearZeroFraction(trace.Layers[l].Codes, nearZeroTolerance), nearZero[l], start);
                    var headSums = input.sum([0]).data<double>().ToArray();        // sum([0]): a bare 0 would bind to the dtype overload
                    for (int k = 0; k < heads; k++) perHead[l][k] += headSums[k];
                }
                if (scoreable)
                {
                    var predicted = trace.Logits.argmax(1).data<long>().ToArray();
                    for (int i = 0; i < indices.Length; i++) correct += predicted[i] == data.Label(indices[i]) ? 1 : 0;
                }
                progress?.Report(start + indices.Length);
            }
        }

        var layers = Enumerable.Range(0, depth).Select(l => new LayerMeasurement(
            l,
            Statistic.Of(rate[l]),
            Statistic.Of(rateAfter[l]),
            perHead[l].Select(s => s / n).ToArray(),
            Statistic.Of(zeros[l]),
            Statistic.Of(nearZero[l]),
            DictionaryAnalysis.Coherence(operators[l].Dictionary),
            DictionaryAnalysis.Subspaces(operators[l].Subspaces, heads, config.DimHead))).ToArray();
        return new ModelMeasurements(n, scoreable ? (double)correct / n : null, epsSquared, nearZeroTolerance, layers);
    }

    /// <summary>Class-token attention maps of images <paramref name="indices"/> of <paramref name="data"/>, every layer and head.</summary>
    /// <exception cref="DataException">The images do not have the model's input shape.</exception>
    public static AttentionMaps ClassTokenAttention(IVisionTransformer model, ImageDataset data, IReadOnlyList<int> indices)
    {
        var config = model.Config;
        int grid = config.NumPatches;
        var maps = new float[indices.Count][][][];
        using (Evaluation(model))
        using (var scope = NewDisposeScope())
        {
            var trace = model.Trace(ImageTensors.Normalised(data, indices, config), keepAttention: true);
            // Row 0 of each head's attention is the class token's query; the patches' columns follow the class token and any prompts.
            var perLayer = trace.Layers.Select(t => t.Attention!.select(2, 0).narrow(-1, config.FirstPatchToken, grid).contiguous().data<float>().ToArray()).ToArray();
            for (int i = 0; i < indices.Count; i++)
            {
                maps[i] = new float[config.Depth][][];
                for (int l = 0; l < config.Depth; l++)
                {
                    maps[i][l] = new float[config.Heads][];
                    for (int k = 0; k < config.Heads; k++)
                        maps[i][l][k] = perLayer[l].AsSpan(((i * config.Heads) + k) * grid, grid).ToArray();
                }
            }
        }
        return new AttentionMaps(indices.ToArray(), config.GridHeight, config.GridWidth, maps);
    }

    /// <summary>
    /// Puts the model in evaluation mode, float32 products and no gradients; disposing restores its mode and precision.
    /// Measurements are made in float32 because bfloat16 products would move which ISTA entries are exactly zero.
    /// </summary>
    private static IDisposable Evaluation(IVisionTransformer model)
    {
        var module = model.Module;
        bool wasTraining = module.training, wasBFloat16 = model.BFloat16;
        module.eval();
        model.BFloat16 = false;
        var noGrad = no_grad();
        return new Restore(() =>
        {
            noGrad.Dispose();
            model.BFloat16 = wasBFloat16;
            if (wasTraining) module.train();
        });
    }

    private sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }

    private static double[][] Jagged(int rows, int cols) => Enumerable.Range(0, rows).Select(_ => new double[cols]).ToArray();

    private static void CopyTo(Tensor values, double[] target, int offset) => values.data<double>().ToArray().CopyTo(target, offset);
}
