using Crate.Core.Model;

namespace Crate.Core.Tests;

public class ConfigTests
{
    [Test]
    public void JsonRoundTripKeepsEveryField()
    {
        var config = CratePresets.Mini with { Pool = Pooling.Mean, ClassNames = Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray(), Dropout = 0.1 };
        var json = config.ToJson();
        Assert.That(json, Does.Contain("\"pool\":\"mean\"").And.Contain("\"dim_head\":32"));
        Assert.That(CrateConfig.FromJson(json).ToJson(), Is.EqualTo(json));
    }

    [Test]
    public void InvalidGeometryNamesTheProblem()
    {
        var bad = CratePresets.Tiny with { ImageHeight = 30 };
        Assert.That(() => bad.Validate(), Throws.ArgumentException.With.Message.Contains("patch size 16 must divide the image size 30x224"));
        Assert.That(() => (CratePresets.Mini with { Mean = [0.1f, 0.2f] }).Validate(), Throws.ArgumentException.With.Message.Contains("mean has 2 values for 1 channels"));
        Assert.That(() => CratePresets.ByName("huge"), Throws.ArgumentException.With.Message.Contains("tiny, small, base, large"));
    }

    [Test]
    public void ParameterCountAddsUpTheLayout()
    {
        var config = CratePresets.Small with { ImageHeight = 64, ImageWidth = 32, PatchSize = 8, NumClasses = 7 };
        Assert.That(config.ParameterCount(), Is.EqualTo(CrateWeights.Layout(config).Sum(p => p.Shape.Aggregate(1L, (a, b) => a * b))));
    }
}
