using System.Runtime.InteropServices;
using SkiaSharp;

namespace Crate.Core.Data;

/// <summary>
/// Pixel access and resizing through the SkiaSharp members that versions 2.88 and 3 share with the same signatures.
/// </summary>
/// <remarks>
/// Crate.Core is built against SkiaSharp 2.88, the version ML.NET's image transforms (Microsoft.ML.ImageAnalytics 5) are built
/// for, so an application that uses Crate.MLNet can load <c>MLImage</c>s. The command line also loads ScottPlot, which needs
/// SkiaSharp 3, so the same compiled code runs on 3 there. SkiaSharp 3 changed <c>SKBitmap.GetPixelSpan</c> (its return type) and
/// replaced <c>SKFilterQuality</c> by sampling options; the pixel address (<c>GetPixels</c>) and the quality-based <c>Resize</c> exist
/// in both, so only they are used. One difference remains: for a reduction with mipmaps, 2.88 filters from the nearest mipmap level
/// and 3 blends the two nearest, so an image resized in an application on 2.88 (Crate.MLNet's) and on 3 (the CLI) can differ by a
/// few gray levels (under one on average).
/// </remarks>
internal static class SkiaPixels
{
    /// <summary>A copy of the bitmap's pixel bytes (for RGBA8888: 4 per pixel, row by row).</summary>
    public static byte[] Read(SKBitmap bitmap)
    {
        var bytes = new byte[bitmap.ByteCount];
        Marshal.Copy(bitmap.GetPixels(), bytes, 0, bytes.Length);
        return bytes;
    }

    /// <summary>Overwrites the bitmap's pixel bytes with <paramref name="bytes"/> (exactly <see cref="SKBitmap.ByteCount"/> of them).</summary>
    public static void Write(SKBitmap bitmap, byte[] bytes)
    {
        if (bytes.Length != bitmap.ByteCount) throw new ArgumentException($"{bytes.Length} bytes for a bitmap of {bitmap.ByteCount}.", nameof(bytes));
        Marshal.Copy(bytes, 0, bitmap.GetPixels(), bytes.Length);
    }

    /// <summary>
    /// <paramref name="source"/> resampled to <paramref name="info"/>: bilinear, and with <paramref name="mipmaps"/> also between
    /// mipmap levels (for strong reductions).
    /// </summary>
    public static SKBitmap Resize(SKBitmap source, SKImageInfo info, bool mipmaps) =>
        source.Resize(info, mipmaps ? SKFilterQuality.Medium : SKFilterQuality.Low)
        ?? throw new DataException($"SkiaSharp could not resize a {source.Width}x{source.Height} image to {info.Width}x{info.Height}.");

    /// <summary>The bitmap encoded as PNG.</summary>
    public static byte[] EncodePng(SKBitmap bitmap)
    {
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
