using SkiaSharp;

namespace Crate.Core.Data.Segmentation;

/// <summary>
/// Images with per-pixel class masks, held in memory as bytes: images <c>[C, H, W]</c> (0..255), masks <c>[H, W]</c>
/// of class ids where 0 is background, 1..K are object classes and <see cref="IgnoreIndex"/> marks pixels that
/// count for nothing (VOC's object boundaries). Each image also has an image-level label for classification.
/// </summary>
public sealed class SegmentationDataset
{
    /// <summary>The mask value of pixels that no loss or metric counts (as in PASCAL VOC).</summary>
    public const byte IgnoreIndex = 255;

    private readonly byte[] _pixels;
    private readonly byte[] _masks;
    private readonly int[] _labels;
    private readonly string[] _sources;

    /// <summary>
    /// Wraps images and masks. <paramref name="classNames"/> names the mask classes, background first.
    /// Image-level labels are derived from the masks (see <see cref="Label"/>).
    /// </summary>
    /// <exception cref="DataException">Sizes disagree, or a mask holds an id that is neither a class nor <see cref="IgnoreIndex"/>; the message names the image.</exception>
    public SegmentationDataset(string name, int channels, int height, int width, byte[] pixels, byte[] masks, IReadOnlyList<string> classNames, string[]? sources = null)
    {
        if (channels <= 0 || height <= 0 || width <= 0) throw new DataException($"Data set '{name}': image shape {channels}x{height}x{width} is not positive.");
        int plane = height * width;
        if (masks.Length % plane != 0) throw new DataException($"Data set '{name}': {masks.Length} mask bytes is not a whole number of {height}x{width} masks.");
        int count = masks.Length / plane;
        if (pixels.LongLength != (long)count * channels * plane)
            throw new DataException($"Data set '{name}': {pixels.LongLength} pixel bytes for {count} images of {channels}x{height}x{width}.");
        if (classNames.Count < 2 || classNames.Count > IgnoreIndex)
            throw new DataException($"Data set '{name}': {classNames.Count} mask classes; expected background plus 1 to {IgnoreIndex - 2} object classes.");
        if (sources != null && sources.Length != count) throw new DataException($"Data set '{name}': {sources.Length} source names for {count} images.");
        Name = name; Channels = channels; Height = height; Width = width;
        _pixels = pixels; _masks = masks; _sources = sources ?? []; ClassNames = classNames;
        _labels = new int[count];
        var area = new int[classNames.Count];
        for (int i = 0; i < count; i++)
        {
            Array.Clear(area);
            var mask = Mask(i);
            for (int p = 0; p < mask.Length; p++)
            {
                int id = mask[p];
                if (id == IgnoreIndex) continue;
                if (id >= classNames.Count)
                    throw new DataException($"Data set '{name}': {Source(i)} has class id {id} at (x {p % width}, y {p / width}); valid ids are 0..{classNames.Count - 1} and {IgnoreIndex} (ignore).");
                area[id]++;
            }
            int best = -1;
            for (int c = 1; c < area.Length; c++) if (area[c] > 0 && (best < 0 || area[c] > area[best])) best = c;
            _labels[i] = best < 0 ? -1 : best - 1;
        }
    }

    /// <summary>Where the data came from (a folder or a generator description).</summary>
    public string Name { get; }
    /// <summary>Channels per image (1 grayscale, 3 RGB).</summary>
    public int Channels { get; }
    /// <summary>Image height.</summary>
    public int Height { get; }
    /// <summary>Image width.</summary>
    public int Width { get; }
    /// <summary>Mask class names, index = class id; 0 is background.</summary>
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>Number of mask classes, background included.</summary>
    public int NumClasses => ClassNames.Count;
    /// <summary>Number of images.</summary>
    public int Count => _labels.Length;
    /// <summary>Bytes per image.</summary>
    public int ImageSize => Channels * Height * Width;
    /// <summary>Pixels per mask.</summary>
    public int MaskSize => Height * Width;

    /// <summary>The pixels of image <paramref name="index"/>, <c>[C, H, W]</c>.</summary>
    public ReadOnlySpan<byte> Image(int index) => _pixels.AsSpan(index * ImageSize, ImageSize);
    /// <summary>The mask of image <paramref name="index"/>, <c>[H, W]</c> class ids.</summary>
    public ReadOnlySpan<byte> Mask(int index) => _masks.AsSpan(index * MaskSize, MaskSize);
    /// <summary>
    /// The image-level label of image <paramref name="index"/>: the object class (0-based, mask id minus 1) covering
    /// the most pixels, ties to the lower id; -1 when the mask holds no object pixels.
    /// </summary>
    public int Label(int index) => _labels[index];
    /// <summary>A name for image <paramref name="index"/> in messages.</summary>
    public string Source(int index) => _sources.Length > 0 ? _sources[index] : $"{Name}#{index}";

    /// <summary>The images at <paramref name="indices"/>, as a new data set.</summary>
    public SegmentationDataset Subset(IReadOnlyList<int> indices, string? name = null)
    {
        var pixels = new byte[(long)indices.Count * ImageSize];
        var masks = new byte[(long)indices.Count * MaskSize];
        var sources = new string[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            Image(indices[i]).CopyTo(pixels.AsSpan(i * ImageSize, ImageSize));
            Mask(indices[i]).CopyTo(masks.AsSpan(i * MaskSize, MaskSize));
            sources[i] = Source(indices[i]);
        }
        return new SegmentationDataset(name ?? Name, Channels, Height, Width, pixels, masks, ClassNames, sources);
    }

    /// <summary>The first <paramref name="count"/> images (all when the data set is smaller).</summary>
    public SegmentationDataset Take(int count) => Subset(Enumerable.Range(0, Math.Min(count, Count)).ToArray());

    /// <summary>
    /// The images with their image-level labels as a classification data set over the object classes
    /// (mask classes without background); images without any object pixels are left out.
    /// </summary>
    public ImageDataset ToClassification()
    {
        var keep = Enumerable.Range(0, Count).Where(i => _labels[i] >= 0).ToArray();
        var pixels = new byte[(long)keep.Length * ImageSize];
        for (int i = 0; i < keep.Length; i++) Image(keep[i]).CopyTo(pixels.AsSpan(i * ImageSize, ImageSize));
        return new ImageDataset(Name, Channels, Height, Width, pixels, keep.Select(i => _labels[i]).ToArray(),
            ClassNames.Skip(1).ToArray(), keep.Select(Source).ToArray());
    }

    /// <summary>
    /// Writes the data set as two folders readable by <see cref="SegmentationFolder.Read(string, SegmentationFolder.Options?)"/>:
    /// <c>images/NNNNN.png</c> and <c>masks/NNNNN.png</c> (indexed, VOC palette), plus <c>classes.txt</c>.
    /// </summary>
    public void Save(string directory)
    {
        var images = Path.Combine(directory, "images");
        var masks = Path.Combine(directory, "masks");
        Directory.CreateDirectory(images);
        Directory.CreateDirectory(masks);
        for (int i = 0; i < Count; i++)
        {
            var file = $"{i:D5}.png";
            IO.AtomicFile.WriteAllBytes(Path.Combine(images, file), EncodeImage(Image(i), Channels, Height, Width));
            MaskPng.Write(Path.Combine(masks, file), Mask(i), Height, Width);
        }
        IO.AtomicFile.WriteAllText(Path.Combine(directory, SegmentationFolder.ClassesFile), string.Join('\n', ClassNames) + "\n");
    }

    /// <summary>Encodes one <c>[C, H, W]</c> byte image (1 or 3 channels) as PNG.</summary>
    public static byte[] EncodeImage(ReadOnlySpan<byte> chw, int channels, int height, int width)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"Only 1- or 3-channel images can be written as PNG, got {channels}.");
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rgba = new byte[bitmap.ByteCount];
        int plane = height * width;
        for (int p = 0; p < plane; p++)
        {
            for (int c = 0; c < 3; c++) rgba[4 * p + c] = chw[(channels == 1 ? 0 : c) * plane + p];
            rgba[4 * p + 3] = 255;
        }
        SkiaPixels.Write(bitmap, rgba);
        return SkiaPixels.EncodePng(bitmap);
    }
}
