using Crate.Core.Model;
using Crate.Onnx.Runtime;

namespace Crate.Cli.Tests;

public class ExportCommandTests
{
    private static string Fixture(string file)
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Crate.sln"))) return Path.Combine(dir.FullName, "tests", "Crate.Training.Tests", "Fixtures", file);
        throw new InvalidOperationException("no Crate.sln above the test directory");
    }

    [Test]
    public void ExportWritesACrateOnnxModelWithTheRequestedOutputs()
    {
        var dir = Directory.CreateTempSubdirectory("crate-cli-export-").FullName;
        try
        {
            var weightsPath = Fixture("crate_rgb_cls.weights.safetensors");
            var output = Path.Combine(dir, "model.onnx");
            var result = CliRunner.Run("export", "--weights", weightsPath, "--out", output, "--attention");
            Assert.That(result.ExitCode, Is.EqualTo(0), result.Error);
            var config = CrateWeights.Load(weightsPath).Config;
            Assert.That(result.Output, Does.Contain($"exported {config}").And.Contain($"attention_0..{config.Depth - 1}"));
            using var model = CrateOnnxModel.Load(output);
            Assert.That(model.Config.ToJson(), Is.EqualTo(config.ToJson()));
            Assert.That(model.HasAttention, Is.True);
            Assert.That(model.HasPatchTokens, Is.False);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void ExportInt8WritesAQuantizedModelThatInfoDescribes()
    {
        var dir = Directory.CreateTempSubdirectory("crate-cli-export-").FullName;
        try
        {
            var weightsPath = Fixture("crate_rgb_cls.weights.safetensors");
            var output = Path.Combine(dir, "model-int8.onnx");
            var result = CliRunner.Run("export", "--weights", weightsPath, "--out", output, "--int8");
            Assert.That(result.ExitCode, Is.EqualTo(0), result.Error);
            var config = CrateWeights.Load(weightsPath).Config;
            Assert.That(result.Output, Does.Contain($"exported {config}, int8"));
            using (var model = CrateOnnxModel.Load(output))
                Assert.That(model.Precision, Is.EqualTo(Crate.Onnx.CrateOnnxPrecision.Int8));

            var info = CliRunner.Run("info", "--onnx", output);
            Assert.That(info.ExitCode, Is.EqualTo(0), info.Error);
            Assert.That(info.Output, Does.Contain($"parameters: {config.ParameterCount()}").And.Contain("precision: int8 (").And.Contain("outputs: logits,probabilities,features"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void ExportOfAMissingWeightsFileIsOneLineError()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"absent-{Guid.NewGuid():N}.safetensors");
        var result = CliRunner.Run("export", "--weights", missing, "--out", Path.Combine(Path.GetTempPath(), "never.onnx"));
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Error.Trim(), Does.StartWith("error: ").And.Contain(missing).And.Not.Contain(" at "));
    }
}
