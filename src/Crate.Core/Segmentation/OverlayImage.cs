using Crate.Core.Data.Segmentation;
using Crate.Core.Data;
using SkiaSharp;

namespace Crate.Core.Segmentation;

/// <summary>
/// Side-by-side PNG panels for people to look at: the image, masks as VOC colours blended over it, and attention
/// heat maps, each enlarged by an integer factor (nearest neighbour, so patches stay visible as blocks).
/// </summary>
public sealed class OverlayImage
{
    private readonly int _height, _width, _scale;
    private readonly List<byte[]> _panels = [];   // RGB, [H, W, 3] each

    /// <summary>Starts a row of panels of <paramref name="height"/> x <paramref name="width"/> pixels, drawn <paramref name="scale"/> times larger.</summary>
    public OverlayImage(int height, int width, int scale = 4)
    {
        if (height <= 0 || width <= 0 || scale <= 0) throw new ArgumentException($"Panel size {height}x{width} and scale {scale} must be positive.");
        (_height, _width, _scale) = (height, width, scale);
    }

    /// <summary>Adds the image itself (<c>[C, H, W]</c>, 1 or 3 channels).</summary>
    public OverlayImage AddImage(ReadOnlySpan<byte> chw, int channels)
    {
        _panels.Add(Rgb(chw, channels));
        return this;
    }

    /// <summary>Adds class ids coloured with the VOC palette, blended over the image at <paramref name="opacity"/> (background left as the image).</summary>
    public OverlayImage AddMask(ReadOnlySpan<byte> chw, int channels, ReadOnlySpan<byte> ids, double opacity = 0.6)
    {
        var rgb = Rgb(chw, channels);
        for (int p = 0; p < ids.Length; p++)
        {
            if (ids[p] == 0) continue;
            var (r, g, b) = MaskPng.VocPalette[ids[p]];
            rgb[3 * p] = Blend(rgb[3 * p], r, opacity);
            rgb[3 * p + 1] = Blend(rgb[3 * p + 1], g, opacity);
            rgb[3 * p + 2] = Blend(rgb[3 * p + 2], b, opacity);
        }
        _panels.Add(rgb);
        return this;
    }

    /// <summary>Adds a heat map of <paramref name="values"/> (any range; <c>[H, W]</c>), min-max scaled to dark blue .. yellow.</summary>
    public OverlayImage AddHeatMap(ReadOnlySpan<float> values)
    {
        float min = float.MaxValue, max = float.MinValue;
        foreach (var v in values) { min = Math.Min(min, v); max = Math.Max(max, v); }
        var rgb = new byte[3 * values.Length];
        for (int p = 0; p < values.Length; p++)
        {
            double t = max > min ? (values[p] - min) / (max - min) : 0;
            // A short viridis-like ramp: dark blue -> teal -> yellow.
            rgb[3 * p] = (byte)(255 * Math.Clamp(2 * t - 0.8, 0, 1));
            rgb[3 * p + 1] = (byte)(255 * Math.Clamp(0.1 + 0.9 * t, 0, 1));
            rgb[3 * p + 2] = (byte)(255 * Math.Clamp(0.45 + 0.5 * t - 0.9 * t * t, 0, 1));
        }
        _panels.Add(rgb);
        return this;
    }

    /// <summary>Encodes the panels left to right, separated by 2-pixel white gaps, as PNG.</summary>
    public byte[] EncodePng()
    {
        if (_panels.Count == 0) throw new InvalidOperationException("No panels were added.");
        const int gap = 2;
        int h = _height * _scale, w = _width * _scale, total = _panels.Count * w + (_panels.Count - 1) * gap;
        using var bitmap = new SKBitmap(new SKImageInfo(total, h, SKColorType.Rgba8888, SKAlphaType.Opaque));
        var rgba = new byte[bitmap.ByteCount];
        rgba.AsSpan().Fill(255);
        for (int k = 0; k < _panels.Count; k++)
        for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
        {
            int src = 3 * ((y / _scale) * _width + x / _scale), dst = 4 * (y * total + k * (w + gap) + x);
            rgba[dst] = _panels[k][src]; rgba[dst + 1] = _panels[k][src + 1]; rgba[dst + 2] = _panels[k][src + 2];
        }
        SkiaPixels.Write(bitmap, rgba);
        return SkiaPixels.EncodePng(bitmap);
    }

    private byte[] Rgb(ReadOnlySpan<byte> chw, int channels)
    {
        int plane = _height * _width;
        if (chw.Length != channels * plane) throw new ArgumentException($"{chw.Length} bytes for a {channels}x{_height}x{_width} image.");
        var rgb = new byte[3 * plane];
        for (int p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++) rgb[3 * p + c] = chw[(channels == 1 ? 0 : c) * plane + p];
        return rgb;
    }

    private static byte Blend(byte under, byte over, double opacity) => (byte)Math.Round(under * (1 - opacity) + over * opacity);
}
