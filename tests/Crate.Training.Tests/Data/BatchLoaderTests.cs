using Crate.Core.Data;
using Crate.Training.Data;

namespace Crate.Training.Tests.Data;

public class BatchLoaderTests
{
    /// <summary>Eight 2-channel 4x5 images whose pixel values encode (image, channel, row, column), all distinct per image.</summary>
    private static ImageDataset Ramp()
    {
        const int n = 8, c = 2, h = 4, w = 5;
        var pixels = new byte[n * c * h * w];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(i % (c * h * w) * 3 + i / (c * h * w));
        return new ImageDataset("ramp", c, h, w, pixels, Enumerable.Range(0, n).Select(i => i % 3).ToArray(), ["a", "b", "c"]);
    }

    private static readonly float[] Mean = [0.25f, 0.5f];
    private static readonly float[] Std = [0.5f, 0.2f];

    [Test]
    public void Without_augmentation_batches_are_the_normalised_pixels_in_order()
    {
        var data = Ramp();
        var loader = new BatchLoader(data, batchSize: 3, Mean, Std);
        var batches = loader.Epoch(0).ToList();
        Assert.That(batches.Select(b => b.Count), Is.EqualTo(new[] { 3, 3, 2 }));
        int image = 0;
        foreach (var batch in batches)
        {
            Assert.That(batch.Images.shape, Is.EqualTo(new long[] { batch.Count, 2, 4, 5 }));
            var values = batch.Images.data<float>().ToArray();
            var labels = batch.Labels.data<long>().ToArray();
            for (int i = 0; i < batch.Count; i++, image++)
            {
                var pixels = data.Image(image);
                for (int k = 0; k < pixels.Length; k++)
                    Assert.That(values[i * 40 + k], Is.EqualTo((pixels[k] / 255.0 - Mean[k / 20]) / Std[k / 20]).Within(1e-5));
                Assert.That(labels[i], Is.EqualTo(data.Label(image)));
            }
            batch.Dispose();
        }
    }

    [Test]
    public void Shuffled_order_is_a_seeded_permutation_that_changes_every_epoch()
    {
        var data = GeneratedShapes.Create(100, seed: 0);
        var loader = new BatchLoader(data, 16, [0.5f], [0.5f], shuffle: true, seed: 42);
        var epoch0 = loader.Order(0);
        Assert.That(epoch0.Order(), Is.EqualTo(Enumerable.Range(0, 100)));
        Assert.That(epoch0, Is.Not.EqualTo(Enumerable.Range(0, 100)));
        Assert.That(new BatchLoader(data, 16, [0.5f], [0.5f], shuffle: true, seed: 42).Order(0), Is.EqualTo(epoch0));
        Assert.That(loader.Order(1), Is.Not.EqualTo(epoch0));
        Assert.That(new BatchLoader(data, 16, [0.5f], [0.5f], shuffle: true, seed: 43).Order(0), Is.Not.EqualTo(epoch0));
        // The background-prepared epoch visits exactly that order.
        var visited = loader.Epoch(0).SelectMany(b => { using (b) return b.Indices; }).ToArray();
        Assert.That(visited, Is.EqualTo(epoch0));
    }

    [Test]
    public void Background_batches_equal_batches_prepared_on_the_calling_thread()
    {
        var data = GeneratedShapes.Create(50, seed: 1);
        var loader = new BatchLoader(data, 8, [0.3f], [0.4f], shuffle: true,
            new Augmentation { RandomResizedCrop = true, HorizontalFlip = true }, seed: 5, prefetch: 2);
        int b = 0;
        foreach (var batch in loader.Epoch(3, firstBatch: 2))
        {
            using (batch)
            {
                var direct = loader.Prepare(3, b + 2);
                Assert.That(batch.Images.data<float>().ToArray(), Is.EqualTo(direct.Pixels));
                Assert.That(batch.Indices, Is.EqualTo(direct.Indices));
            }
            b++;
        }
        Assert.That(b, Is.EqualTo(loader.BatchCount - 2));
    }

    [Test]
    public void Flip_mirrors_rows_and_padded_crop_shifts_by_at_most_the_padding()
    {
        var data = Ramp();
        var plain = new float[40];
        var random = new SeededRandom(0);
        Augmentation.None.Apply(data.Image(1), 2, 4, 5, Mean, Std, plain, ref random);
        float Padding(int c) => -Mean[c] / Std[c];   // a black pixel, normalised

        var flipped = 0;
        for (int seed = 0; seed < 20; seed++)
        {
            var output = new float[40];
            random = new SeededRandom(seed);
            new Augmentation { HorizontalFlip = true }.Apply(data.Image(1), 2, 4, 5, Mean, Std, output, ref random);
            bool mirrored = Enumerable.Range(0, 40).All(k => output[k] == plain[k / 5 * 5 + 4 - k % 5]);
            Assert.That(mirrored || output.SequenceEqual(plain), Is.True, $"seed {seed}: neither the image nor its mirror");
            if (mirrored) flipped++;
        }
        Assert.That(flipped, Is.InRange(4, 16), "the flip happens about half the time");

        for (int seed = 0; seed < 20; seed++)
        {
            var output = new float[40];
            random = new SeededRandom(seed);
            new Augmentation { CropPadding = 1 }.Apply(data.Image(1), 2, 4, 5, Mean, Std, output, ref random);
            var shifts = from dy in Enumerable.Range(-1, 3) from dx in Enumerable.Range(-1, 3) select (dy, dx);
            Assert.That(shifts.Any(s => Enumerable.Range(0, 40).All(k =>
            {
                int c = k / 20, y = k % 20 / 5 + s.dy, x = k % 5 + s.dx;
                float expected = y is >= 0 and < 4 && x is >= 0 and < 5 ? plain[c * 20 + y * 5 + x] : Padding(c);
                return output[k] == expected;
            })), Is.True, $"seed {seed}: not a shift of at most one pixel");
        }
    }

    [Test]
    public void Random_resized_crop_interpolates_inside_the_source_range()
    {
        var data = GeneratedShapes.Create(1, seed: 2);
        var output = new float[28 * 28];
        var random = new SeededRandom(9);
        new Augmentation { RandomResizedCrop = true, MinCropScale = 0.3 }.Apply(data.Image(0), 1, 28, 28, [0f], [1f], output, ref random);
        var image = data.Image(0).ToArray();
        Assert.That(output.Min(), Is.GreaterThanOrEqualTo(image.Min() / 255f - 1e-6f));
        Assert.That(output.Max(), Is.LessThanOrEqualTo(image.Max() / 255f + 1e-6f));
        Assert.That(output, Is.Not.EqualTo(image.Select(v => v / 255f)), "a crop of at most the whole image, resized, differs from it");
    }

    [TestCase("crop,flip", 2, false, true)]
    [TestCase("crop=4", 4, false, false)]
    [TestCase("resized-crop=0.5, flip", 0, true, true)]
    [TestCase("none", 0, false, false)]
    public void Augmentation_specs_parse(string spec, int padding, bool resized, bool flip)
    {
        var a = Augmentation.Parse(spec);
        Assert.That((a.CropPadding, a.RandomResizedCrop, a.HorizontalFlip), Is.EqualTo((padding, resized, flip)));
        Assert.That(Augmentation.Parse(a.ToString()), Is.EqualTo(a));
    }

    [Test]
    public void Unknown_augmentation_is_named()
    {
        var e = Assert.Throws<ArgumentException>(() => Augmentation.Parse("crop,rotate"))!;
        Assert.That(e.Message, Does.StartWith("Unknown augmentation 'rotate'"));
    }
}
