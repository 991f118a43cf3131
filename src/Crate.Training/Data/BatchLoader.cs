using System.Collections.Concurrent;
using System.Diagnostics;
using Crate.Core.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Data;

/// <summary>A batch prepared on the host: normalised pixels <c>[B, C, H, W]</c>, labels and the images' indices.</summary>
/// <param name="Pixels">Normalised floats, image after image.</param>
/// <param name="Labels">Class labels.</param>
/// <param name="Indices">Indices of the images in the data set.</param>
public sealed record HostBatch(float[] Pixels, long[] Labels, int[] Indices)
{
    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;
}

/// <summary>A batch as tensors. Dispose it (or create it inside a dispose scope).</summary>
public sealed class Batch : IDisposable
{
    internal Batch(Tensor images, Tensor labels, int[] indices, TimeSpan wait)
    {
        Images = images; Labels = labels; Indices = indices; Wait = wait;
    }

    /// <summary>Normalised images, float32 <c>[B, C, H, W]</c>.</summary>
    public Tensor Images { get; }
    /// <summary>Targets, int64: class labels <c>[B]</c>, or per-pixel class ids <c>[B, H, W]</c> for segmentation.</summary>
    public Tensor Labels { get; }
    /// <summary>Indices of the images in the data set.</summary>
    public int[] Indices { get; }
    /// <summary>Number of images.</summary>
    public int Count => Indices.Length;
    /// <summary>How long the consumer waited for this batch (near zero when preparation keeps up).</summary>
    public TimeSpan Wait { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>Batches of a data set in a reproducible order: epoch e, batch b is the same batch in every run with the same seed.</summary>
public interface IBatchSource
{
    /// <summary>Batches per epoch.</summary>
    int BatchCount { get; }

    /// <summary>The batches of epoch <paramref name="epoch"/>, starting at batch <paramref name="firstBatch"/>.</summary>
    IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0, CancellationToken cancellation = default);
}

/// <summary>
/// Turns an <see cref="ImageDataset"/> into batches of normalised tensors. Training order and augmentation
/// are drawn from generators keyed by (seed, epoch, image), so an epoch is reproducible from the seed alone.
/// Batches are prepared on a background thread, a few ahead (bounded queue), while the model trains.
/// </summary>
public sealed class BatchLoader : IBatchSource
{
    private readonly ImageDataset _data;
    private readonly float[] _mean;
    private readonly float[] _std;

    /// <summary>Creates a loader.</summary>
    /// <param name="data">The images.</param>
    /// <param name="batchSize">Images per batch; the last batch of an epoch may be smaller.</param>
    /// <param name="mean">Per-channel mean of pixels scaled to [0, 1].</param>
    /// <param name="std">Per-channel standard deviation.</param>
    /// <param name="shuffle">Visit images in a seeded random order each epoch (training); otherwise in order.</param>
    /// <param name="augmentation">Random changes (training only); null for none.</param>
    /// <param name="seed">Seed of the order and augmentation.</param>
    /// <param name="prefetch">Batches prepared ahead of the consumer.</param>
    public BatchLoader(ImageDataset data, int batchSize, IReadOnlyList<float> mean, IReadOnlyList<float> std,
        bool shuffle = false, Augmentation? augmentation = null, int seed = 0, int prefetch = 3)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), $"batch size must be positive, got {batchSize}");
        if (mean.Count != data.Channels || std.Count != data.Channels)
            throw new ArgumentException($"Normalisation has {mean.Count} means and {std.Count} deviations for {data.Channels}-channel images.");
        _data = data;
        _mean = mean.ToArray();
        _std = std.ToArray();
        BatchSize = batchSize;
        Shuffle = shuffle;
        Augmentation = augmentation ?? Augmentation.None;
        Seed = seed;
        Prefetch = Math.Max(1, prefetch);
    }

    /// <summary>Images per batch.</summary>
    public int BatchSize { get; }
    /// <summary>Whether each epoch visits the images in a new random order.</summary>
    public bool Shuffle { get; }
    /// <summary>The augmentation applied.</summary>
    public Augmentation Augmentation { get; }
    /// <summary>Seed of order and augmentation.</summary>
    public int Seed { get; }
    /// <summary>Batches prepared ahead.</summary>
    public int Prefetch { get; }
    /// <summary>Batches per epoch.</summary>
    public int BatchCount => (_data.Count + BatchSize - 1) / BatchSize;

    /// <summary>The order in which epoch <paramref name="epoch"/> visits the images.</summary>
    public int[] Order(int epoch)
    {
        var order = Enumerable.Range(0, _data.Count).ToArray();
        if (Shuffle) new SeededRandom(Seed, epoch, -1).Shuffle(order.AsSpan());
        return order;
    }

    /// <summary>Prepares batch <paramref name="batch"/> of epoch <paramref name="epoch"/> on the calling thread.</summary>
    public HostBatch Prepare(int epoch, int batch) => Prepare(epoch, Order(epoch), batch);

    private HostBatch Prepare(int epoch, int[] order, int batch)
    {
        int start = batch * BatchSize, count = Math.Min(BatchSize, _data.Count - start);
        int size = _data.ImageSize;
        var pixels = new float[(long)count * size];
        var labels = new long[count];
        var indices = order.AsSpan(start, count).ToArray();
        for (int i = 0; i < count; i++)
        {
            int index = indices[i];
            var random = new SeededRandom(Seed, epoch, index);
            Augmentation.Apply(_data.Image(index), _data.Channels, _data.Height, _data.Width, _mean, _std, pixels.AsSpan(i * size, size), ref random);
            labels[i] = _data.Label(index);
        }
        return new HostBatch(pixels, labels, indices);
    }

    /// <summary>
    /// The batches of epoch <paramref name="epoch"/>, starting at batch <paramref name="firstBatch"/>, prepared on a
    /// background thread. Tensors are created on the consuming thread (so they join its dispose scope).
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch, int firstBatch = 0, CancellationToken cancellation = default)
    {
        var order = Order(epoch);
        using var queue = new BlockingCollection<HostBatch>(Prefetch);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        Exception? failure = null;
        var producer = Task.Factory.StartNew(() =>
        {
            try
            {
                for (int b = firstBatch; b < BatchCount; b++) queue.Add(Prepare(epoch, order, b), stop.Token);
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { failure = e; }
            finally { queue.CompleteAdding(); }
        }, TaskCreationOptions.LongRunning);
        try
        {
            var watch = Stopwatch.StartNew();
            foreach (var host in queue.GetConsumingEnumerable(cancellation))
            {
                var wait = watch.Elapsed;
                var images = torch.tensor(host.Pixels, [host.Count, _data.Channels, _data.Height, _data.Width]);
                var labels = torch.tensor(host.Labels);
                yield return new Batch(images, labels, host.Indices, wait);
                watch.Restart();
            }
            cancellation.ThrowIfCancellationRequested();
            if (failure != null) throw new InvalidOperationException($"Preparing batches of '{_data.Name}' failed: {failure.Message}", failure);
        }
        finally
        {
            stop.Cancel();
            producer.Wait(CancellationToken.None);
        }
    }
}
