using System.Globalization;

namespace Crate.Training.Data;

/// <summary>
/// Random training-time image changes. Evaluation never augments. Random resized crop, when on, replaces the
/// padded crop; the flip applies after either.
/// </summary>
public sealed record Augmentation
{
    /// <summary>Pad every side with this many black pixels, then crop a random window of the original size (0: off).</summary>
    public int CropPadding { get; init; }
    /// <summary>Crop a random box (area fraction in [<see cref="MinCropScale"/>, 1], aspect 3/4..4/3) and resize it back (bilinear).</summary>
    public bool RandomResizedCrop { get; init; }
    /// <summary>Smallest area fraction of a random resized crop (default 0.35; ImageNet recipes use 0.08).</summary>
    public double MinCropScale { get; init; } = 0.35;
    /// <summary>Mirror left-right with probability 1/2.</summary>
    public bool HorizontalFlip { get; init; }

    /// <summary>No augmentation.</summary>
    public static Augmentation None { get; } = new();

    /// <summary>True when nothing random happens.</summary>
    public bool IsNone => CropPadding == 0 && !RandomResizedCrop && !HorizontalFlip;

    /// <summary>
    /// Parses a comma-separated list: <c>none</c>, <c>crop</c> (padding 2) or <c>crop=N</c>, <c>resized-crop</c>
    /// or <c>resized-crop=MINSCALE</c>, <c>flip</c>.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown item; the message lists the valid ones.</exception>
    public static Augmentation Parse(string spec)
    {
        var result = None;
        foreach (var raw in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var (name, value) = raw.Split('=', 2) is [var n, var v] ? (n, v) : (raw, null);
            result = name.ToLowerInvariant() switch
            {
                "none" => result,
                "crop" => result with { CropPadding = value is null ? 2 : ParseNumber<int>(raw, value) },
                "resized-crop" => result with { RandomResizedCrop = true, MinCropScale = value is null ? result.MinCropScale : ParseNumber<double>(raw, value) },
                "flip" => result with { HorizontalFlip = true },
                _ => throw new ArgumentException($"Unknown augmentation '{raw}': use none, crop[=PADDING], resized-crop[=MINSCALE], flip (comma-separated)."),
            };
        }
        if (result.CropPadding < 0) throw new ArgumentException($"Crop padding must be >= 0, got {result.CropPadding}.");
        if (result.MinCropScale is <= 0 or > 1) throw new ArgumentException($"Resized-crop minimum scale must be in (0, 1], got {result.MinCropScale}.");
        return result;
    }

    private static T ParseNumber<T>(string item, string value) where T : ISpanParsable<T> =>
        T.TryParse(value, CultureInfo.InvariantCulture, out var n) ? n : throw new ArgumentException($"Augmentation '{item}': '{value}' is not a number.");

    /// <summary>A readable description (the same syntax <see cref="Parse"/> reads).</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        if (RandomResizedCrop) parts.Add(FormattableString.Invariant($"resized-crop={MinCropScale}"));
        else if (CropPadding > 0) parts.Add($"crop={CropPadding}");
        if (HorizontalFlip) parts.Add("flip");
        return parts.Count == 0 ? "none" : string.Join(",", parts);
    }

    /// <summary>
    /// Writes <paramref name="image"/> (<c>[C, H, W]</c> bytes) as normalised floats <c>(v/255 - mean[c]) / std[c]</c>
    /// into <paramref name="target"/>, augmented with choices drawn from <paramref name="random"/>.
    /// </summary>
    public void Apply(ReadOnlySpan<byte> image, int channels, int height, int width, ReadOnlySpan<float> mean, ReadOnlySpan<float> std,
        Span<float> target, ref SeededRandom random)
    {
        // The source window that maps onto the output, in source pixels: (x0, y0) and its size.
        double x0 = 0, y0 = 0, boxWidth = width, boxHeight = height;
        if (RandomResizedCrop) (x0, y0, boxWidth, boxHeight) = ResizedCropBox(height, width, ref random);
        else if (CropPadding > 0)
        {
            x0 = random.Next(-CropPadding, CropPadding);
            y0 = random.Next(-CropPadding, CropPadding);
        }
        bool flip = HorizontalFlip && random.Next(2) == 1;
        bool exact = boxWidth == width && boxHeight == height;  // a whole-pixel shift: copy, no interpolation
        int plane = height * width;
        for (int c = 0; c < channels; c++)
        {
            float scale = 1f / (255f * std[c]), shift = mean[c] / std[c];
            var source = image.Slice(c * plane, plane);
            var output = target.Slice(c * plane, plane);
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    int ox = flip ? width - 1 - x : x;
                    float value = exact
                        ? Pixel(source, height, width, (int)y0 + y, (int)x0 + x)
                        : Bilinear(source, height, width, y0 + (y + 0.5) * boxHeight / height - 0.5, x0 + (x + 0.5) * boxWidth / width - 0.5);
                    output[y * width + ox] = value * scale - shift;
                }
            }
        }
    }

    /// <summary>torchvision's RandomResizedCrop box: ten tries at a random area and aspect, else the whole image.</summary>
    private (double X, double Y, double Width, double Height) ResizedCropBox(int height, int width, ref SeededRandom random)
    {
        double area = (double)height * width;
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (MinCropScale + (1 - MinCropScale) * random.NextDouble());
            double aspect = Math.Exp(Math.Log(3.0 / 4) + (Math.Log(4.0 / 3) - Math.Log(3.0 / 4)) * random.NextDouble());
            int w = (int)Math.Round(Math.Sqrt(target * aspect)), h = (int)Math.Round(Math.Sqrt(target / aspect));
            if (w > 0 && h > 0 && w <= width && h <= height)
                return (random.Next(0, width - w), random.Next(0, height - h), w, h);
        }
        return (0, 0, width, height);
    }

    /// <summary>The pixel at (y, x); black (0) outside the image, as padding.</summary>
    private static float Pixel(ReadOnlySpan<byte> plane, int height, int width, int y, int x) =>
        (uint)y < (uint)height && (uint)x < (uint)width ? plane[y * width + x] : 0f;

    private static float Bilinear(ReadOnlySpan<byte> plane, int height, int width, double y, double x)
    {
        y = Math.Clamp(y, 0, height - 1);
        x = Math.Clamp(x, 0, width - 1);
        int y1 = (int)y, x1 = (int)x;
        int y2 = Math.Min(y1 + 1, height - 1), x2 = Math.Min(x1 + 1, width - 1);
        double fy = y - y1, fx = x - x1;
        double top = plane[y1 * width + x1] * (1 - fx) + plane[y1 * width + x2] * fx;
        double bottom = plane[y2 * width + x1] * (1 - fx) + plane[y2 * width + x2] * fx;
        return (float)(top * (1 - fy) + bottom * fy);
    }
}
