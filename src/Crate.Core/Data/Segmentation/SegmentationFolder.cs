namespace Crate.Core.Data.Segmentation;

/// <summary>
/// Reads a segmentation data set from disk: an images folder and a masks folder whose files pair by name
/// (<c>masks/x.png</c> with <c>images/x.png|jpg|jpeg|bmp</c>), as PASCAL VOC's <c>JPEGImages</c> and
/// <c>SegmentationClass</c>. Masks may be indexed (palette) PNGs, 8-bit grayscale PNGs, or RGB PNGs in the VOC
/// palette (see <see cref="MaskPng"/>); 255 is the ignore index. Only images that have a mask are read.
/// </summary>
public static class SegmentationFolder
{
    /// <summary>File beside the two folders listing the mask class names, one a line, background first.</summary>
    public const string ClassesFile = "classes.txt";

    /// <summary>PASCAL VOC 2012's 21 class names, background first.</summary>
    public static IReadOnlyList<string> VocClasses { get; } =
    [
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    ];

    private static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".bmp"];

    /// <summary>How to read a folder pair.</summary>
    public sealed record Options
    {
        /// <summary>Mask class names, background first. Default: the folder's <c>classes.txt</c> if present, else VOC's 21 classes.</summary>
        public IReadOnlyList<string>? ClassNames { get; init; }
        /// <summary>Channels to decode images to: 1 (grayscale, BT.601 luma) or 3 (RGB). Default 3.</summary>
        public int Channels { get; init; } = 3;
        /// <summary>
        /// Resize every image (bilinear) and mask (nearest neighbour) to this square side. Default: no resizing,
        /// and every pair must have the size of the first.
        /// </summary>
        public int? Size { get; init; }
        /// <summary>Read at most this many pairs (in file-name order).</summary>
        public int? Limit { get; init; }
    }

    /// <summary>Reads <paramref name="directory"/>'s <c>images/</c> and <c>masks/</c> folders (the layout <see cref="SegmentationDataset.Save"/> writes).</summary>
    public static SegmentationDataset Read(string directory, Options? options = null)
    {
        options ??= new Options();
        var classesPath = Path.Combine(directory, ClassesFile);
        if (options.ClassNames == null && File.Exists(classesPath))
            options = options with { ClassNames = File.ReadAllLines(classesPath).Where(l => l.Length > 0).ToArray() };
        return Read(Path.Combine(directory, "images"), Path.Combine(directory, "masks"), options);
    }

    /// <summary>Reads pairs from <paramref name="imagesDirectory"/> and <paramref name="masksDirectory"/>.</summary>
    /// <exception cref="DataException">A folder or paired image is missing, sizes disagree, or a mask holds an unknown class id; the message names the file.</exception>
    public static SegmentationDataset Read(string imagesDirectory, string masksDirectory, Options? options = null)
    {
        options ??= new Options();
        ImageFile.CheckChannels(options.Channels);
        if (!Directory.Exists(imagesDirectory)) throw new DataException($"Images folder '{imagesDirectory}' does not exist.");
        if (!Directory.Exists(masksDirectory)) throw new DataException($"Masks folder '{masksDirectory}' does not exist.");
        var classNames = options.ClassNames ?? VocClasses;
        var maskFiles = Directory.GetFiles(masksDirectory, "*.png").Order(StringComparer.Ordinal).Take(options.Limit ?? int.MaxValue).ToArray();
        if (maskFiles.Length == 0) throw new DataException($"Masks folder '{masksDirectory}' holds no .png masks.");

        int channels = options.Channels;
        int height = options.Size ?? 0, width = options.Size ?? 0;
        var pixels = new List<byte>();
        var masks = new List<byte>();
        var sources = new List<string>();
        foreach (var maskPath in maskFiles)
        {
            var stem = Path.GetFileNameWithoutExtension(maskPath);
            var imagePath = ImageExtensions.Select(e => Path.Combine(imagesDirectory, stem + e)).FirstOrDefault(File.Exists)
                ?? throw new DataException($"Mask '{maskPath}' has no image '{stem}' ({string.Join(", ", ImageExtensions)}) in '{imagesDirectory}'.");
            var ids = MaskPng.Read(maskPath, out int mh, out int mw);
            var image = ImageFile.Decode(imagePath);
            if (image.Width != mw || image.Height != mh)
                throw new DataException($"Image '{imagePath}' is {image.Width}x{image.Height} but its mask '{maskPath}' is {mw}x{mh}.");
            if (height == 0) (height, width) = (mh, mw);
            bool resize = mh != height || mw != width;
            if (resize && options.Size == null)
                throw new DataException($"Image '{imagePath}' is {mw}x{mh} but earlier images are {width}x{height}; pass a size to resize them all.");
            for (int p = 0; p < ids.Length; p++)
            {
                if (ids[p] != SegmentationDataset.IgnoreIndex && ids[p] >= classNames.Count)
                    throw new DataException($"Mask '{maskPath}' has class id {ids[p]} at (x {p % mw}, y {p / mw}); the {classNames.Count} classes are 0..{classNames.Count - 1} (ignore: {SegmentationDataset.IgnoreIndex}).");
            }
            masks.AddRange(resize ? ResizeNearest(ids, mh, mw, height, width) : ids);
            pixels.AddRange(image.ToPlanes(imagePath, channels, height, width, resize: true));
            sources.Add(imagePath);
        }
        return new SegmentationDataset(imagesDirectory, channels, height, width, pixels.ToArray(), masks.ToArray(), classNames, sources.ToArray());
    }

    /// <summary>Nearest-neighbour resize of a class-id mask (class ids must not be blended).</summary>
    public static byte[] ResizeNearest(ReadOnlySpan<byte> ids, int height, int width, int newHeight, int newWidth)
    {
        var result = new byte[newHeight * newWidth];
        for (int y = 0; y < newHeight; y++)
        {
            int sy = Math.Min(height - 1, (int)((y + 0.5) * height / newHeight));
            for (int x = 0; x < newWidth; x++)
                result[y * newWidth + x] = ids[sy * width + Math.Min(width - 1, (int)((x + 0.5) * width / newWidth))];
        }
        return result;
    }
}
