using Crate.Core.Data.Segmentation;
using Crate.Core.Model;
using Crate.Training.Data;

namespace Crate.Training.Segmentation;

/// <summary>
/// Shuffled batches of a <see cref="SegmentationDataset"/> for step-based training (<see cref="Study.ObjectiveTraining"/>):
/// images normalised with the trunk's configuration, targets the masks as int64 <c>[B, H, W]</c> class ids (255 = ignore).
/// The order of epoch e is drawn from (seed, e) alone, so a resumed run sees the batches an uninterrupted one would.
/// </summary>
public sealed class SegmentationBatchLoader : IBatchSource
{
    private readonly SegmentationDataset _data;
    private readonly int _batchSize;
    private readonly CrateConfig _config;
    private readonly int _seed;

    /// <summary>Batches of <paramref name="batchSize"/> images of <paramref name="data"/>, normalised as <paramref name="config"/> says, in an order drawn from <paramref name="seed"/>.</summary>
    public SegmentationBatchLoader(SegmentationDataset data, int batchSize, CrateConfig config, int seed)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), $"batch size must be positive, got {batchSize}");
        if (data.Count == 0) throw new ArgumentException($"Data set '{data.Name}' holds no images.", nameof(data));
        (_data, _batchSize, _config, _seed) = (data, batchSize, config, seed);
    }

    /// <inheritdoc />
    public int BatchCount => (_data.Count + _batchSize - 1) / _batchSize;

    /// <inheritdoc />
    public IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0, CancellationToken cancellation = default)
    {
        var order = Enumerable.Range(0, _data.Count).ToArray();
        new SeededRandom(_seed, epoch, -1).Shuffle(order.AsSpan());
        for (int b = firstBatch; b < BatchCount; b++)
        {
            cancellation.ThrowIfCancellationRequested();
            var indices = order[(b * _batchSize)..Math.Min(_data.Count, (b + 1) * _batchSize)];
            yield return new Batch(SegmentationBatch.Images(_data, indices, _config), SegmentationBatch.Masks(_data, indices), indices, TimeSpan.Zero);
        }
    }
}
