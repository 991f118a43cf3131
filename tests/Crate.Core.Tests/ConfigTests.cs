using Crate.Core.Model;

namespace Crate.Core.Tests;

public class ConfigTests
{
    [Test]
    public void JsonRoundTripKeepsEveryField()
    {
        var config = CratePresets.Mini with { Pool = Pooling.Mean, ClassNames = Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray(), Dropout = 0.1, PromptTokens = 3 };
        var json = config.ToJson();
        Assert.That(json, Does.Contain("\"pool\":\"mean\"").And.Contain("\"dim_head\":32").And.Contain("\"prompt_tokens\":3"));
        Assert.That(CrateConfig.FromJson(json).ToJson(), Is.EqualTo(json));
        Assert.That(CrateConfig.FromJson(json).PromptTokens, Is.EqualTo(3));
    }

    [Test]
    public void PromptTokensDefaultToNoneAndAreCountedOnlyWhenPresent()
    {
        // JSON written before prompt tokens existed has no key: the reference network, with no prompts.
        var legacy = CratePresets.Mini.ToJson().Replace(",\"prompt_tokens\":0", "", StringComparison.Ordinal);
        Assert.That(legacy, Does.Not.Contain("prompt_tokens"));
        Assert.That(CrateConfig.FromJson(legacy).PromptTokens, Is.EqualTo(0));

        var prompted = CratePresets.Small with { PromptTokens = 5 };
        Assert.That(CrateWeights.Layout(CratePresets.Small).Select(p => p.Name), Does.Not.Contain("prompt_tokens"));
        Assert.That(CrateWeights.Layout(prompted).Single(p => p.Name == "prompt_tokens").Shape, Is.EqualTo(new long[] { 1, 5, 576 }));
        Assert.That(prompted.ParameterCount(), Is.EqualTo(13_116_328L + 5 * 576));
        Assert.That(prompted.TokenCount, Is.EqualTo(1 + 5 + 196));
        Assert.That(prompted.FirstPatchToken, Is.EqualTo(6));
        Assert.That(prompted.ToString(), Does.EndWith(", 5 prompt tokens"));
        Assert.That(prompted.SameShapesAs(CratePresets.Small), Is.False);
        Assert.That(() => (CratePresets.Mini with { PromptTokens = -1 }).Validate(),
            Throws.ArgumentException.With.Message.Contains("prompt tokens must be >= 0, got -1"));
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
