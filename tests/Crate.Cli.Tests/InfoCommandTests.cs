namespace Crate.Cli.Tests;

public class InfoCommandTests
{
    [TestCase("tiny", "6090856")]
    [TestCase("small", "13116328")]
    [TestCase("base", "22796008")]
    [TestCase("large", "77641192")]
    public void InfoPrintsTheExactParameterCount(string preset, string count)
    {
        var result = CliRunner.Run("info", "--preset", preset);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.Error);
        Assert.That(result.Output, Does.Contain($"parameters: {count}"));
        Assert.That(result.Output, Does.Contain($"CRATE-{preset}"));
    }

    [Test]
    public void InfoDescribesAWeightsFile()
    {
        var dir = Path.Combine(Path.GetTempPath(), "crate-cli-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var config = Crate.Core.Model.CratePresets.Mini with { Depth = 1, ClassNames = Enumerable.Range(0, 10).Select(i => $"class{i}").ToArray() };
            var tensors = Crate.Core.Model.CrateWeights.Layout(config)
                .Select(p => Crate.Core.Weights.NamedTensor.FromFloats(p.Name, p.Shape, new float[Crate.Core.Weights.NamedTensor.ElementCount(p.Shape)]));
            var path = Path.Combine(dir, "w.safetensors");
            Crate.Core.Model.CrateWeights.Create(config, tensors).Save(path);
            var result = CliRunner.Run("info", "--weights", path);
            Assert.That(result.ExitCode, Is.EqualTo(0), result.Error);
            Assert.That(result.Output, Does.Contain($"parameters: {config.ParameterCount()}").And.Contain("class9"));

            File.WriteAllBytes(path, File.ReadAllBytes(path)[..200]);
            result = CliRunner.Run("info", "--weights", path);
            Assert.That(result.ExitCode, Is.Not.EqualTo(0));
            Assert.That(result.Error, Does.Contain("truncated").And.Contain(path));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void UnknownPresetIsOneClearError()
    {
        var result = CliRunner.Run("info", "--preset", "huge");
        Assert.That(result.ExitCode, Is.Not.EqualTo(0));
        Assert.That(result.Error, Does.Contain("Unknown CRATE preset 'huge'"));
        Assert.That(result.Error, Does.Not.Contain("   at "), "no stack trace");
    }
}
