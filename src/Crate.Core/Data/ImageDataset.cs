namespace Crate.Core.Data;

/// <summary>
/// Labelled images held in memory as 8-bit pixels, all of one size, channel-major (<c>[C, H, W]</c> per image).
/// Every reader (IDX, image folders, CSV lists, generated data) produces this, so training, evaluation and
/// analysis take any source.
/// </summary>
public sealed class ImageDataset
{
    private readonly byte[] _pixels;
    private readonly int[] _labels;
    private readonly string[] _sources;

    /// <summary>Wraps pixels and labels; <paramref name="sources"/> names each image (file, or file#index) for error messages.</summary>
    /// <exception cref="ArgumentException">Sizes do not agree, or a label is outside the class list.</exception>
    public ImageDataset(string name, int channels, int height, int width, byte[] pixels, int[] labels, IReadOnlyList<string> classNames, string[]? sources = null)
    {
        if (channels <= 0 || height <= 0 || width <= 0) throw new ArgumentException($"Data set '{name}': image shape {channels}x{height}x{width} is not positive.");
        long imageSize = (long)channels * height * width;
        if (pixels.LongLength != imageSize * labels.Length)
            throw new ArgumentException($"Data set '{name}': {pixels.LongLength} pixel bytes for {labels.Length} images of {channels}x{height}x{width}.");
        if (classNames.Count == 0) throw new ArgumentException($"Data set '{name}' has no classes.");
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] < 0 || labels[i] >= classNames.Count)
                throw new ArgumentException($"Data set '{name}': {(sources != null ? sources[i] : $"image {i}")} has label {labels[i]}, outside the {classNames.Count} classes.");
        }
        if (sources != null && sources.Length != labels.Length) throw new ArgumentException($"Data set '{name}': {sources.Length} source names for {labels.Length} images.");
        Name = name; Channels = channels; Height = height; Width = width;
        _pixels = pixels; _labels = labels; ClassNames = classNames; _sources = sources ?? [];
    }

    /// <summary>Where the data came from (a path or a generator name).</summary>
    public string Name { get; }
    /// <summary>Channels per image (1 grayscale, 3 RGB).</summary>
    public int Channels { get; }
    /// <summary>Image height.</summary>
    public int Height { get; }
    /// <summary>Image width.</summary>
    public int Width { get; }
    /// <summary>Class names, index = label.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Number of images.</summary>
    public int Count => _labels.Length;
    /// <summary>Bytes per image.</summary>
    public int ImageSize => Channels * Height * Width;
    /// <summary>All labels.</summary>
    public ReadOnlySpan<int> Labels => _labels;

    /// <summary>The label of image <paramref name="index"/>.</summary>
    public int Label(int index) => _labels[index];
    /// <summary>The pixels of image <paramref name="index"/>, <c>[C, H, W]</c>, 0..255.</summary>
    public ReadOnlySpan<byte> Image(int index) => _pixels.AsSpan(index * ImageSize, ImageSize);
    /// <summary>A name for image <paramref name="index"/> in messages (its file, or the data set and index).</summary>
    public string Source(int index) => _sources.Length > 0 ? _sources[index] : $"{Name}#{index}";

    /// <summary>The images at <paramref name="indices"/>, as a new data set.</summary>
    public ImageDataset Subset(IReadOnlyList<int> indices, string? name = null)
    {
        var pixels = new byte[(long)indices.Count * ImageSize];
        var labels = new int[indices.Count];
        var sources = new string[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            Image(indices[i]).CopyTo(pixels.AsSpan(i * ImageSize, ImageSize));
            labels[i] = _labels[indices[i]];
            sources[i] = Source(indices[i]);
        }
        return new ImageDataset(name ?? Name, Channels, Height, Width, pixels, labels, ClassNames, sources);
    }

    /// <summary>The first <paramref name="count"/> images (all when the data set is smaller).</summary>
    public ImageDataset Take(int count) => Subset(Enumerable.Range(0, Math.Min(count, Count)).ToArray());

    /// <summary>
    /// Splits off a validation part of <paramref name="fraction"/> of the images, chosen by a seeded shuffle.
    /// </summary>
    public (ImageDataset Train, ImageDataset Validation) Split(double fraction, int seed)
    {
        if (fraction is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(fraction), $"validation fraction must be in (0, 1), got {fraction}");
        var order = Enumerable.Range(0, Count).ToArray();
        new Random(seed).Shuffle(order);
        int n = Math.Max(1, (int)Math.Round(Count * fraction));
        return (Subset(order[n..], Name + ":train"), Subset(order[..n], Name + ":validation"));
    }

    /// <summary>Per-channel mean and standard deviation of the pixels scaled to [0, 1].</summary>
    public (float[] Mean, float[] Std) ChannelStatistics()
    {
        var sum = new double[Channels];
        var sumSq = new double[Channels];
        int plane = Height * Width;
        for (int i = 0; i < Count; i++)
        {
            var img = Image(i);
            for (int c = 0; c < Channels; c++)
            {
                foreach (var b in img.Slice(c * plane, plane)) { double v = b / 255.0; sum[c] += v; sumSq[c] += v * v; }
            }
        }
        double n = (double)Count * plane;
        var mean = sum.Select(s => (float)(s / n)).ToArray();
        var std = sumSq.Select((s, c) => (float)Math.Sqrt(Math.Max(s / n - mean[c] * (double)mean[c], 1e-12))).ToArray();
        return (mean, std);
    }
}
