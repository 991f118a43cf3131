using System.Security.Cryptography;
using Crate.Core.Data;
using Crate.Core.Data.Segmentation;

namespace Crate.Core.Tests.Segmentation;

public class SceneGeneratorTests
{
    private static readonly SceneOptions Small = new() { Size = 48, Seed = 11 };

    private static string Digest(SegmentationDataset d)
    {
        using var sha = SHA256.Create();
        for (int i = 0; i < d.Count; i++) { var img = d.Image(i).ToArray(); var m = d.Mask(i).ToArray(); sha.TransformBlock(img, 0, img.Length, null, 0); sha.TransformBlock(m, 0, m.Length, null, 0); }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexString(sha.Hash!);
    }

    [Test]
    public void SameSeedGivesIdenticalBytesAndOtherSeedsDiffer()
    {
        var bank = ObjectBank.Shapes(100, 1);
        var a = SceneGenerator.Generate(bank, 40, Small, "train");
        var b = SceneGenerator.Generate(bank, 40, Small, "train");
        var otherSeed = SceneGenerator.Generate(bank, 40, Small with { Seed = 12 }, "train");
        var otherSplit = SceneGenerator.Generate(bank, 40, Small, "test");
        Assert.That(Digest(a), Is.EqualTo(Digest(b)));
        Assert.That(Digest(otherSeed), Is.Not.EqualTo(Digest(a)));
        Assert.That(Digest(otherSplit), Is.Not.EqualTo(Digest(a)));
        // Scene i does not depend on how many scenes are generated.
        Assert.That(Digest(SceneGenerator.Generate(bank, 10, Small, "train")), Is.EqualTo(Digest(a.Take(10))));
    }

    [Test]
    public void MasksAreConsistentWithLabelsAndObjects()
    {
        var bank = ObjectBank.Shapes(100, 2);
        var scenes = SceneGenerator.Generate(bank, 60, Small, "train");
        Assert.That(scenes.ClassNames, Is.EqualTo(new[] { "background" }.Concat(GeneratedShapes.ClassNames)));
        for (int i = 0; i < scenes.Count; i++)
        {
            var mask = scenes.Mask(i).ToArray();
            var counts = Enumerable.Range(0, scenes.NumClasses).Select(c => mask.Count(v => v == c)).ToArray();
            Assert.That(counts.Skip(1).Sum(), Is.GreaterThan(100), $"scene {i} has an object of at least ~100 pixels");
            Assert.That(counts[0], Is.GreaterThan(0), $"scene {i} has background");
            int expected = Array.IndexOf(counts, counts.Skip(1).Max(), 1) - 1;
            Assert.That(scenes.Label(i), Is.EqualTo(expected), $"scene {i}: label = class with most pixels");
        }
        // Several objects per scene happen: at least some scenes show two distinct classes.
        Assert.That(Enumerable.Range(0, scenes.Count).Count(i => scenes.Mask(i).ToArray().Where(v => v > 0).Distinct().Count() >= 2), Is.GreaterThan(5));
    }

    [Test]
    public void FashionScenesUseBothSplitsOrFallBackWithALogLine()
    {
        var log = new List<string>();
        var (train, test) = SceneGenerator.FashionScenes(20, 10, Small, "/nonexistent-fashion", log.Add);
        Assert.That(log, Has.Count.EqualTo(1).And.Some.Contains("generated shapes"));
        Assert.That((train.Count, test.Count), Is.EqualTo((20, 10)));
        Assert.That(train.NumClasses, Is.EqualTo(11));
        if (!File.Exists(Path.Combine(IdxReader.FashionMnistDirectory, "t10k-images-idx3-ubyte.gz"))) Assert.Ignore("Fashion-MNIST is not installed.");
        log.Clear();
        var (ftrain, ftest) = SceneGenerator.FashionScenes(20, 10, Small, log: log.Add);
        Assert.That(log, Is.Empty);
        Assert.That(ftest.NumClasses, Is.EqualTo(11));
        Assert.That(ftest.ClassNames[1], Is.EqualTo("T-shirt/top"));
        Assert.That(ftrain.ToClassification().ClassNames, Has.Count.EqualTo(10));
    }

    [Test]
    public void InvalidOptionsAreNamed()
    {
        Assert.That(() => new SceneOptions { MinObjects = 3, MaxObjects = 2 }.Validate(), Throws.ArgumentException.With.Message.Contains("min (3)"));
        Assert.That(() => new SceneOptions { Size = 4 }.Validate(), Throws.ArgumentException.With.Message.Contains("at least 8"));
    }
}
