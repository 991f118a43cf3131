using SkiaSharp;

namespace Crate.Core.Data;

/// <summary>
/// Decodes image files (PNG, JPEG, BMP, GIF, WebP through SkiaSharp) into Crate's pixel layout: 8-bit,
/// channel-major <c>[C, H, W]</c>, resized to a target size, grayscale or RGB.
/// </summary>
public static class ImageFile
{
    /// <summary>File extensions treated as images (lower case, with the dot).</summary>
    public static IReadOnlySet<string> Extensions { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        { ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp" };

    /// <summary>
    /// The largest image decoded, in pixels (100 megapixels: 400 MB as RGBA). Larger files are refused from their header,
    /// before any pixel memory is allocated, so a hostile or mistaken file cannot exhaust memory.
    /// </summary>
    public const long MaxPixels = 100_000_000;

    /// <summary>Whether <paramref name="path"/> has an image extension.</summary>
    public static bool HasImageExtension(string path) => Extensions.Contains(Path.GetExtension(path));

    /// <summary>
    /// Reads one image as <c>[channels, height, width]</c> bytes. Alpha is dropped (colour channels are kept
    /// unpremultiplied); RGB becomes gray by ITU-R 601 luma, gray becomes RGB by replication.
    /// </summary>
    /// <param name="path">The image file.</param>
    /// <param name="channels">1 (grayscale) or 3 (RGB).</param>
    /// <param name="height">Target height.</param>
    /// <param name="width">Target width.</param>
    /// <param name="resize">Resize (bilinear with mipmaps) when the size differs; when false a different size is an error.</param>
    /// <exception cref="DataException">The file is missing, empty, not an image, corrupt or (without resizing) of another size.</exception>
    public static byte[] Load(string path, int channels, int height, int width, bool resize = true)
    {
        var decoded = Decode(path);
        return decoded.ToPlanes(path, channels, height, width, resize);
    }

    /// <summary>The pixel size of an image file, read from its header.</summary>
    /// <exception cref="DataException">The file is missing, empty or not an image.</exception>
    public static (int Height, int Width) Size(string path)
    {
        using var codec = OpenCodec(path, ReadBytes(path));
        return (codec.Info.Height, codec.Info.Width);
    }

    /// <summary>
    /// Converts one <c>[C, H, W]</c> image to another channel count and size (the same conversions as
    /// <see cref="Load"/>), e.g. to feed 28x28 gray IDX data to an RGB model.
    /// </summary>
    public static byte[] Convert(ReadOnlySpan<byte> image, int channels, int height, int width, int toChannels, int toHeight, int toWidth)
    {
        var rgba = new byte[height * width * 4];
        int plane = height * width;
        for (int i = 0; i < plane; i++)
        {
            for (int c = 0; c < 3; c++) rgba[4 * i + c] = image[(channels == 1 ? 0 : c) * plane + i];
            rgba[4 * i + 3] = 255;
        }
        return new Decoded(rgba, height, width).ToPlanes("<memory>", toChannels, toHeight, toWidth, resize: true);
    }

    /// <summary>Writes <c>[C, H, W]</c> pixels (1 or 3 channels) as a PNG file, atomically.</summary>
    public static void SavePng(string path, ReadOnlySpan<byte> image, int channels, int height, int width)
    {
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var pixels = new byte[bitmap.ByteCount];
        int plane = height * width;
        for (int i = 0; i < plane; i++)
        {
            for (int c = 0; c < 3; c++) pixels[4 * i + c] = image[(channels == 1 ? 0 : c) * plane + i];
            pixels[4 * i + 3] = 255;
        }
        SkiaPixels.Write(bitmap, pixels);
        IO.AtomicFile.WriteAllBytes(path, SkiaPixels.EncodePng(bitmap));
    }

    /// <summary>Throws unless <paramref name="channels"/> is a channel count image files can be read as: 1 (grayscale) or 3 (RGB).</summary>
    /// <exception cref="ArgumentException">Another count.</exception>
    public static void CheckChannels(int channels)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"Images can be read with 1 (grayscale) or 3 (RGB) channels, not {channels}.");
    }

    /// <summary>Refuses an image of more than <see cref="MaxPixels"/> pixels; <paramref name="what"/> names it ("Image 'x.png'").</summary>
    /// <exception cref="DataException">The image is too large.</exception>
    internal static void CheckSize(string what, int width, int height)
    {
        long pixels = (long)width * height;
        if (pixels > MaxPixels)
            throw new DataException(FormattableString.Invariant(
                $"{what} is {width}x{height} ({pixels / 1e6:F0} megapixels); Crate decodes images of at most {MaxPixels / 1_000_000} megapixels. Downscale it first."));
    }

    /// <summary>Decodes a file to unpremultiplied RGBA; every failure names the file.</summary>
    internal static Decoded Decode(string path)
    {
        var bytes = ReadBytes(path);
        using var codec = OpenCodec(path, bytes);
        CheckSize($"Image '{path}'", codec.Info.Width, codec.Info.Height);
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        // GetPixels reports a truncated file as IncompleteInput while still filling part of the bitmap: refuse it.
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SKCodecResult.Success)
            throw new DataException($"Image '{path}' is corrupt: decoding stopped with '{result}'.");
        return new Decoded(SkiaPixels.Read(bitmap), info.Height, info.Width);
    }

    private static byte[] ReadBytes(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new DataException($"Image '{path}' cannot be read: {e.Message}", e); }
        if (bytes.Length == 0) throw new DataException($"Image '{path}' is empty (0 bytes).");
        return bytes;
    }

    private static SKCodec OpenCodec(string path, byte[] bytes)
    {
        var codec = SKCodec.Create(SKData.CreateCopy(bytes));
        return codec ?? throw new DataException($"Image '{path}' is not a readable image (PNG, JPEG, BMP, GIF or WebP): the header is not recognised or is corrupt.");
    }

    /// <summary>A decoded image: unpremultiplied RGBA rows.</summary>
    internal sealed class Decoded(byte[] rgba, int height, int width)
    {
        public int Height { get; } = height;
        public int Width { get; } = width;

        /// <summary>True when every pixel has R = G = B, so one channel loses nothing.</summary>
        public bool IsGray
        {
            get
            {
                for (int i = 0; i < rgba.Length; i += 4)
                    if (rgba[i] != rgba[i + 1] || rgba[i] != rgba[i + 2]) return false;
                return true;
            }
        }

        public byte[] ToPlanes(string source, int channels, int height, int width, bool resize)
        {
            CheckChannels(channels);
            var pixels = rgba;
            if (height != Height || width != Width)
            {
                if (!resize) throw new DataException($"Image '{source}' is {Width}x{Height}; expected {width}x{height}.");
                pixels = Resized(height, width);
            }
            int plane = height * width;
            var planes = new byte[channels * plane];
            for (int i = 0; i < plane; i++)
            {
                byte r = pixels[4 * i], g = pixels[4 * i + 1], b = pixels[4 * i + 2];
                if (channels == 1) planes[i] = (byte)Math.Round(0.299 * r + 0.587 * g + 0.114 * b);
                else { planes[i] = r; planes[plane + i] = g; planes[2 * plane + i] = b; }
            }
            return planes;
        }

        private byte[] Resized(int height, int width)
        {
            var from = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
            using var source = new SKBitmap(from);
            SkiaPixels.Write(source, rgba);
            using var target = SkiaPixels.Resize(source, from.WithSize(width, height), mipmaps: true);
            return SkiaPixels.Read(target);
        }
    }
}
