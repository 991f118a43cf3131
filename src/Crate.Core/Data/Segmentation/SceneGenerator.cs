namespace Crate.Core.Data.Segmentation;

/// <summary>Settings of the generated scenes; every field has the default the benchmarks use.</summary>
public sealed record SceneOptions
{
    /// <summary>Side of the square grayscale scenes in pixels. Default 64.</summary>
    public int Size { get; init; } = 64;
    /// <summary>Fewest objects per scene. Default 1.</summary>
    public int MinObjects { get; init; } = 1;
    /// <summary>Most objects per scene. Default 3.</summary>
    public int MaxObjects { get; init; } = 3;
    /// <summary>Smallest object side as a fraction of the source sprite's side (28 for Fashion-MNIST). Default 0.75 (21 px).</summary>
    public double MinScale { get; init; } = 0.75;
    /// <summary>Largest object side as a fraction of the source sprite's side. Default 1.3 (36 px).</summary>
    public double MaxScale { get; init; } = 1.3;
    /// <summary>Largest fraction of an already placed object's pixels that a new object may cover. Default 0.3.</summary>
    public double MaxOcclusion { get; init; } = 0.3;
    /// <summary>Seed: the same seed, options and sprites give byte-identical scenes.</summary>
    public int Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent field.</summary>
    public SceneOptions Validate()
    {
        if (Size < 8) throw new ArgumentException($"Scene size must be at least 8 pixels, got {Size}.");
        if (MinObjects < 1 || MaxObjects < MinObjects) throw new ArgumentException($"Objects per scene must satisfy 1 <= min ({MinObjects}) <= max ({MaxObjects}).");
        if (MinScale <= 0 || MaxScale < MinScale) throw new ArgumentException($"Object scales must satisfy 0 < min ({MinScale}) <= max ({MaxScale}).");
        if (MaxOcclusion is < 0 or > 1) throw new ArgumentException($"Maximum occlusion must be in [0, 1], got {MaxOcclusion}.");
        return this;
    }
}

/// <summary>Grayscale object sprites with their classes: the objects that scenes are composed of.</summary>
public sealed class ObjectBank
{
    /// <summary>Sprite pixels at or below this level (of 255) count as the sprite's own background, not the object.</summary>
    public const byte ObjectThreshold = 24;

    private ObjectBank(ImageDataset sprites, string description) { Sprites = sprites; Description = description; }

    /// <summary>The sprites (1 channel, square), labels = object classes.</summary>
    public ImageDataset Sprites { get; }
    /// <summary>Where the sprites came from, for logs and data set names.</summary>
    public string Description { get; }

    /// <summary>Uses the images of a grayscale classification data set (bright objects on black, like Fashion-MNIST) as sprites.</summary>
    public static ObjectBank FromImages(ImageDataset images)
    {
        if (images.Channels != 1 || images.Height != images.Width)
            throw new DataException($"Sprites must be square grayscale images; '{images.Name}' is {images.Channels}x{images.Height}x{images.Width}.");
        return new ObjectBank(images, images.Name);
    }

    /// <summary>
    /// <see cref="GeneratedShapes"/> drawn on a plain black background (their ten shape classes): the fallback when
    /// Fashion-MNIST is not installed.
    /// </summary>
    public static ObjectBank Shapes(int count, int seed) =>
        new(GeneratedShapes.Create(count, seed, plainBackground: true), "generated shapes");
}

/// <summary>
/// Generates segmentation scenes: 1 to 3 objects (Fashion-MNIST items, or generated shapes) at random positions and
/// scales on textured, noisy backgrounds, with exact per-pixel masks (background 0, object class c as c + 1) and an
/// image-level label (the class covering most pixels). Scene i depends only on the seed, i and the sprites, so the
/// same seed gives byte-identical data at any count.
/// </summary>
public static class SceneGenerator
{
    /// <summary>
    /// Train and test scenes from Fashion-MNIST: train scenes use the 60,000 training items, test scenes the 10,000
    /// test items, so no test object was seen in training. Without Fashion-MNIST in <paramref name="fashionDirectory"/>,
    /// generated shapes are used instead and <paramref name="log"/> says so.
    /// </summary>
    public static (SegmentationDataset Train, SegmentationDataset Test) FashionScenes(
        int trainCount, int testCount, SceneOptions? options = null, string fashionDirectory = IdxReader.FashionMnistDirectory, Action<string>? log = null)
    {
        options = (options ?? new SceneOptions()).Validate();
        ObjectBank trainObjects, testObjects;
        if (File.Exists(Path.Combine(fashionDirectory, "train-images-idx3-ubyte.gz")))
        {
            trainObjects = ObjectBank.FromImages(IdxReader.FashionMnist(train: true, directory: fashionDirectory));
            testObjects = ObjectBank.FromImages(IdxReader.FashionMnist(train: false, directory: fashionDirectory));
        }
        else
        {
            log?.Invoke($"Fashion-MNIST not found in '{fashionDirectory}': scenes use generated shapes ({string.Join(", ", GeneratedShapes.ClassNames)}) instead. Install it with `apt-get install dataset-fashion-mnist`.");
            trainObjects = ObjectBank.Shapes(6000, options.Seed);
            testObjects = ObjectBank.Shapes(1000, options.Seed + 1);
        }
        // Different streams for the two splits, so a test scene never repeats a train scene's layout.
        return (Generate(trainObjects, trainCount, options, "train"), Generate(testObjects, testCount, options, "test"));
    }

    /// <summary>Generates <paramref name="count"/> scenes from <paramref name="objects"/>; <paramref name="split"/> names the split and selects its random stream.</summary>
    public static SegmentationDataset Generate(ObjectBank objects, int count, SceneOptions options, string split)
    {
        options.Validate();
        int size = options.Size, plane = size * size;
        var pixels = new byte[(long)count * plane];
        var masks = new byte[(long)count * plane];
        ulong stream = Mix((ulong)(uint)options.Seed, Fnv(split));
        Parallel.For(0, count, i =>
        {
            var rng = new Random((int)(Mix(stream, (ulong)i) & 0x7FFFFFFF));
            Render(objects.Sprites, options, rng, pixels.AsSpan(i * plane, plane), masks.AsSpan(i * plane, plane));
        });
        var classes = new[] { "background" }.Concat(objects.Sprites.ClassNames).ToArray();
        var name = $"scenes:{split} ({objects.Description}, {size}x{size}, seed {options.Seed})";
        return new SegmentationDataset(name, 1, size, size, pixels, masks, classes);
    }

    private static void Render(ImageDataset sprites, SceneOptions o, Random rng, Span<byte> image, Span<byte> mask)
    {
        int size = o.Size;
        var canvas = Background(size, rng);
        var objectOf = new int[size * size];            // which placed object owns each pixel (-1 none)
        Array.Fill(objectOf, -1);
        var areas = new List<int>();
        int wanted = rng.Next(o.MinObjects, o.MaxObjects + 1);
        double noise = 2 + rng.NextDouble() * 10;
        for (int k = 0; k < wanted; k++)
        {
            for (int attempt = 0; attempt < 20; attempt++)
            {
                int index = rng.Next(sprites.Count);
                int side = Math.Max(4, (int)Math.Round(sprites.Width * (o.MinScale + rng.NextDouble() * (o.MaxScale - o.MinScale))));
                side = Math.Min(side, size);
                int x0 = rng.Next(size - side + 1), y0 = rng.Next(size - side + 1);
                double gain = 0.75 + rng.NextDouble() * 0.35;  // object contrast varies from scene to scene
                var sprite = Resize(sprites.Image(index), sprites.Width, side);
                // Reject placements that would hide too much of an object already placed.
                var covered = new int[areas.Count];
                for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++)
                    if (sprite[y * side + x] > ObjectBank.ObjectThreshold && objectOf[(y0 + y) * size + x0 + x] is int owner and >= 0) covered[owner]++;
                if (Enumerable.Range(0, areas.Count).Any(j => covered[j] > o.MaxOcclusion * areas[j])) continue;
                int id = areas.Count, area = 0;
                for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++)
                {
                    double v = sprite[y * side + x];
                    if (v <= ObjectBank.ObjectThreshold) continue;
                    int p = (y0 + y) * size + x0 + x;
                    if (objectOf[p] >= 0) areas[objectOf[p]]--;
                    objectOf[p] = id;
                    canvas[p] = v * gain;
                    mask[p] = (byte)(sprites.Label(index) + 1);
                    area++;
                }
                areas.Add(area);
                break;
            }
        }
        for (int p = 0; p < canvas.Length; p++) image[p] = (byte)Math.Clamp(Math.Round(canvas[p] + noise * Gaussian(rng)), 0, 255);
    }

    /// <summary>A textured background: a level, a linear ramp, optional stripes and blotchy value noise.</summary>
    private static double[] Background(int size, Random rng)
    {
        double level = 20 + rng.NextDouble() * 90;
        double angle = rng.NextDouble() * Math.PI * 2, ramp = rng.NextDouble() * 40 / size;
        double stripes = rng.NextDouble() < 0.5 ? rng.NextDouble() * 30 : 0;
        double frequency = 0.2 + rng.NextDouble() * 0.8, stripeAngle = rng.NextDouble() * Math.PI, phase = rng.NextDouble() * Math.PI * 2;
        int cells = 3 + rng.Next(6);
        double blotches = rng.NextDouble() * 50;
        var grid = new double[(cells + 1) * (cells + 1)];
        for (int i = 0; i < grid.Length; i++) grid[i] = rng.NextDouble() - 0.5;
        var canvas = new double[size * size];
        for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++)
        {
            double gx = (double)x / size * cells, gy = (double)y / size * cells;
            int ix = (int)gx, iy = (int)gy;
            double fx = gx - ix, fy = gy - iy;
            double value = grid[iy * (cells + 1) + ix] * (1 - fx) * (1 - fy) + grid[iy * (cells + 1) + ix + 1] * fx * (1 - fy)
                         + grid[(iy + 1) * (cells + 1) + ix] * (1 - fx) * fy + grid[(iy + 1) * (cells + 1) + ix + 1] * fx * fy;
            canvas[y * size + x] = level
                + ramp * ((x - size / 2.0) * Math.Cos(angle) + (y - size / 2.0) * Math.Sin(angle))
                + stripes * Math.Sin(frequency * (x * Math.Cos(stripeAngle) + y * Math.Sin(stripeAngle)) + phase)
                + blotches * value;
        }
        return canvas;
    }

    /// <summary>Bilinear resize of a square byte image from <paramref name="from"/> to <paramref name="to"/> pixels a side (pixel centres aligned).</summary>
    private static double[] Resize(ReadOnlySpan<byte> source, int from, int to)
    {
        var result = new double[to * to];
        double scale = (double)from / to;
        for (int y = 0; y < to; y++)
        {
            double sy = Math.Clamp((y + 0.5) * scale - 0.5, 0, from - 1);
            int y1 = (int)sy, y2 = Math.Min(y1 + 1, from - 1);
            double fy = sy - y1;
            for (int x = 0; x < to; x++)
            {
                double sx = Math.Clamp((x + 0.5) * scale - 0.5, 0, from - 1);
                int x1 = (int)sx, x2 = Math.Min(x1 + 1, from - 1);
                double fx = sx - x1;
                result[y * to + x] = source[y1 * from + x1] * (1 - fx) * (1 - fy) + source[y1 * from + x2] * fx * (1 - fy)
                                   + source[y2 * from + x1] * (1 - fx) * fy + source[y2 * from + x2] * fx * fy;
            }
        }
        return result;
    }

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    // SplitMix64 finaliser: decorrelates the per-scene seeds.
    private static ulong Mix(ulong a, ulong b)
    {
        ulong z = a * 0x9E3779B97F4A7C15UL + b + 0x632BE59BD9B4E019UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Fnv(string text)
    {
        ulong h = 14695981039346656037UL;
        foreach (var c in text) h = (h ^ c) * 1099511628211UL;
        return h;
    }
}
