namespace Crate.Core.Data;

/// <summary>
/// A generated, labelled image set so every command works with no data: ten shape classes drawn at a random
/// position, size, small rotation and brightness (or colour) on a noisy background. The class signal is the
/// shape only, so a model must learn form, not intensity. Deterministic for a seed; the first N images of a
/// larger set equal the set of N.
/// </summary>
public static class GeneratedShapes
{
    /// <summary>The class names, index = label.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
        ["circle", "square", "triangle", "cross", "ring", "horizontal-stripes", "vertical-stripes", "diagonal-bar", "checker", "four-dots"];

    /// <summary>Generates <paramref name="count"/> images (labels cycle through the classes, so they are balanced).</summary>
    /// <param name="count">Number of images.</param>
    /// <param name="seed">Seed; the same seed gives the same images on every machine.</param>
    /// <param name="height">Image height (at least 8).</param>
    /// <param name="width">Image width (at least 8).</param>
    /// <param name="channels">1 (gray) or 3 (random foreground and background colours).</param>
    /// <param name="plainBackground">Leave the background exactly 0 (no colour, no noise), so the shape is every non-zero
    /// pixel: sprites for composing segmentation scenes. Default false.</param>
    public static ImageDataset Create(int count, int seed, int height = 28, int width = 28, int channels = 1, bool plainBackground = false)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), $"count must be positive, got {count}");
        if (height < 8 || width < 8) throw new ArgumentOutOfRangeException(nameof(height), $"images must be at least 8x8, got {height}x{width}");
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), $"channels must be 1 or 3, got {channels}");
        var rng = new Random(seed);
        int plane = height * width;
        var pixels = new byte[(long)count * channels * plane];
        var labels = new int[count];
        Span<double> fg = stackalloc double[3], bg = stackalloc double[3];
        for (int n = 0; n < count; n++)
        {
            int label = labels[n] = n % ClassNames.Count;
            double side = Math.Min(height, width);
            double r = side * (0.28 + 0.14 * rng.NextDouble());
            double cx = r * 0.8 + rng.NextDouble() * Math.Max(0, width - 1.6 * r);
            double cy = r * 0.8 + rng.NextDouble() * Math.Max(0, height - 1.6 * r);
            double angle = (rng.NextDouble() - 0.5) * 0.5;
            double cos = Math.Cos(angle), sin = Math.Sin(angle);
            for (int c = 0; c < 3; c++)
            {
                fg[c] = 140 + 115 * rng.NextDouble();
                bg[c] = 70 * rng.NextDouble();
            }
            var image = pixels.AsSpan((int)((long)n * channels * plane), channels * plane);
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    // Pixel centre in the shape's frame, in units of the radius.
                    double dx = (x + 0.5 - cx) / r, dy = (y + 0.5 - cy) / r;
                    double u = cos * dx + sin * dy, v = -sin * dx + cos * dy;
                    bool inside = Inside(label, u, v);
                    double noise = (rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5) * 20;
                    if (plainBackground && !inside) continue;
                    for (int c = 0; c < channels; c++)
                        image[c * plane + y * width + x] = (byte)Math.Clamp(Math.Round((inside ? fg[c] : bg[c]) + noise), 0, 255);
                }
            }
        }
        var names = Enumerable.Range(0, count).Select(i => $"generated#{seed}:{i}").ToArray();
        return new ImageDataset($"generated(seed {seed})", channels, height, width, pixels, labels, ClassNames, names);
    }

    /// <summary>Whether the point (u, v), in radius units around the shape's centre, lies in shape <paramref name="label"/>.</summary>
    private static bool Inside(int label, double u, double v)
    {
        double box = Math.Max(Math.Abs(u), Math.Abs(v));
        double radius = Math.Sqrt(u * u + v * v);
        return label switch
        {
            0 => radius <= 1,
            1 => box <= 0.85,
            2 => v is >= -0.8 and <= 0.8 && Math.Abs(u) <= (v + 0.8) * 0.6,
            3 => (Math.Abs(u) <= 0.25 && Math.Abs(v) <= 1) || (Math.Abs(v) <= 0.25 && Math.Abs(u) <= 1),
            4 => radius is >= 0.55 and <= 1,
            5 => box <= 0.9 && Math.Floor((v + 0.9) / 0.36) % 2 == 0,
            6 => box <= 0.9 && Math.Floor((u + 0.9) / 0.36) % 2 == 0,
            7 => Math.Abs(u - v) <= 0.35 && box <= 0.95,
            8 => box <= 0.9 && (Math.Floor((u + 0.9) / 0.45) + Math.Floor((v + 0.9) / 0.45)) % 2 == 0,
            _ => Math.Pow(Math.Abs(u) - 0.5, 2) + Math.Pow(Math.Abs(v) - 0.5, 2) <= 0.09,          // a dot near each corner
        };
    }
}
