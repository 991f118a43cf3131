using Crate.Core.Data.Segmentation;
using Crate.Core.Segmentation;
using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Segmentation;

/// <summary>Emergent evaluation: the class map's metrics, the foreground alone, and image-level accuracy.</summary>
/// <param name="ClassMap">Metrics of the emergent class map (foreground x predicted image class) against the masks.</param>
/// <param name="Accuracy">Image-level classification accuracy on images with objects.</param>
public sealed record EmergentEvaluation(SegmentationMetrics ClassMap, double Accuracy);

/// <summary>Scores segmentation methods on a <see cref="SegmentationDataset"/> in batches, each in its own dispose scope.</summary>
public static class SegmentationEvaluation
{
    /// <summary>Metrics of <paramref name="model"/>'s per-pixel predictions, in batches of <paramref name="batchSize"/> (default: <see cref="BatchSizeFor"/>).</summary>
    public static SegmentationMetrics Supervised(SegmentationModel model, SegmentationDataset data, int? batchSize = null) =>
        SupervisedBreakdown(model, data, batchSize).Actual;

    /// <summary>
    /// <paramref name="model"/>'s metrics with the split of its errors into outlines and naming (see
    /// <see cref="SegmentationErrorBreakdown"/>), in batches of <paramref name="batchSize"/> (default: <see cref="BatchSizeFor"/>).
    /// </summary>
    public static SegmentationErrorBreakdown SupervisedBreakdown(SegmentationModel model, SegmentationDataset data, int? batchSize = null)
    {
        var breakdown = new SegmentationErrorBreakdown(data.NumClasses, SegmentationDataset.IgnoreIndex, data.ClassNames);
        model.eval();
        ForBatches(data.Count, batchSize ?? BatchSizeFor(model.Trunk.Config), batch =>
        {
            var logits = model.forward(SegmentationBatch.Images(data, batch, model.Trunk.Config));
            var bestObject = logits.narrow(1, 1, logits.shape[1] - 1).argmax(1).add_(1);
            breakdown.Add(Concat(data, batch), SegmentationBatch.ToBytes(logits.argmax(1)), SegmentationBatch.ToBytes(bestObject));
        });
        return breakdown;
    }

    /// <summary>Metrics of the emergent class map (see <see cref="EmergentMaps.ClassMap"/>) and the classifier's accuracy, in batches of <paramref name="batchSize"/> (default: <see cref="BatchSizeFor"/>).</summary>
    public static EmergentEvaluation Emergent(IVisionTransformer trunk, SegmentationDataset data, EmergentOptions? options = null, int? batchSize = null)
    {
        if (trunk.Config.NumClasses != data.NumClasses - 1)
            throw new ArgumentException($"The classifier has {trunk.Config.NumClasses} classes but '{data.Name}' has {data.NumClasses - 1} object classes.");
        var metrics = new SegmentationMetrics(data.NumClasses, SegmentationDataset.IgnoreIndex, data.ClassNames);
        long correct = 0, labelled = 0;
        trunk.Module.eval();
        ForBatches(data.Count, batchSize ?? BatchSizeFor(trunk.Config), batch =>
        {
            var maps = EmergentSegmentation.Segment(trunk, SegmentationBatch.Images(data, batch, trunk.Config), options);
            metrics.Add(Concat(data, batch), SegmentationBatch.ToBytes(maps.ClassMap()));
            var predicted = maps.Logits.argmax(1).data<long>().ToArray();
            for (int i = 0; i < batch.Length; i++)
            {
                if (data.Label(batch[i]) < 0) continue;
                labelled++;
                if (predicted[i] == data.Label(batch[i])) correct++;
            }
        });
        return new EmergentEvaluation(metrics, labelled == 0 ? double.NaN : (double)correct / labelled);
    }

    /// <summary>
    /// Images per batch for <paramref name="config"/>: at most 128, and few enough that one layer's attention weights
    /// <c>[B, heads, T, T]</c> (float32) stay within glibc's reuse limit (<see cref="ProcessTuning.HeapAllocationLimit"/>).
    /// Larger buffers are unmapped when freed and faulted in again every batch: at 257 tokens a batch of 128 spent most of
    /// its time in the kernel.
    /// </summary>
    public static int BatchSizeFor(Core.Model.CrateConfig config)
    {
        long tokens = config.TokenCount;
        return (int)Math.Clamp(ProcessTuning.HeapAllocationLimit / (config.Heads * tokens * tokens * sizeof(float)), 1, 128);
    }

    /// <summary>The metrics of predicting background everywhere: the trivial baseline.</summary>
    public static SegmentationMetrics AllBackground(SegmentationDataset data)
    {
        var metrics = new SegmentationMetrics(data.NumClasses, SegmentationDataset.IgnoreIndex, data.ClassNames);
        var zeros = new byte[data.MaskSize];
        for (int i = 0; i < data.Count; i++) metrics.Add(data.Mask(i), zeros);
        return metrics;
    }

    private static byte[] Concat(SegmentationDataset data, int[] batch)
    {
        var result = new byte[batch.Length * data.MaskSize];
        for (int i = 0; i < batch.Length; i++) data.Mask(batch[i]).CopyTo(result.AsSpan(i * data.MaskSize));
        return result;
    }

    private static void ForBatches(int count, int batchSize, Action<int[]> run)
    {
        using var _ = torch.no_grad();
        for (int start = 0; start < count; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            run(Enumerable.Range(start, Math.Min(batchSize, count - start)).ToArray());
        }
    }
}
