using System.Text.RegularExpressions;
using Crate.Onnx.Deploy;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace Crate.Onnx.Tests;

public class TritonRepositoryTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDirectory() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "crate-triton-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void ConfigDeclaresExactlyTheModelsInputsAndOutputs()
    {
        var config = TestModels.TinyRgb;
        var onnx = CrateOnnxExporter.Export(TestModels.RandomWeights(config, 3), new CrateOnnxExportOptions { IncludeAttention = true });
        var configPath = TritonRepository.Write(onnx, _dir, new TritonOptions { Name = "tiny", MaxBatchSize = 16 });

        Assert.That(configPath, Is.EqualTo(Path.Combine(_dir, "tiny", "config.pbtxt")));
        Assert.That(File.ReadAllBytes(Path.Combine(_dir, "tiny", "1", "model.onnx")), Is.EqualTo(onnx));
        Assert.That(File.ReadAllLines(Path.Combine(_dir, "tiny", "labels.txt")), Is.EqualTo(config.ClassNames));

        var text = File.ReadAllText(configPath);
        // Parse the tensor entries back out of the text and compare them with what ONNX Runtime reads from the model.
        var declared = Regex.Matches(text, @"name: ""(?<name>[^""]+)""\s+data_type: (?<type>\w+)\s+dims: \[ (?<dims>[^\]]*) \]")
            .ToDictionary(m => m.Groups["name"].Value, m => (m.Groups["type"].Value, m.Groups["dims"].Value));
        using var session = new InferenceSession(onnx);
        var actual = session.InputMetadata.Concat(session.OutputMetadata)
            .ToDictionary(t => t.Key, t => ("TYPE_FP32", string.Join(", ", t.Value.Dimensions.Skip(1))));
        Assert.That(declared, Is.EquivalentTo(actual));
        Assert.That(declared["image"].Item2, Is.EqualTo("3, 12, 16"));
        Assert.That(declared["attention_1"].Item2, Is.EqualTo($"4, {config.NumPatches + 1}, {config.NumPatches + 1}"));
        Assert.That(text, Does.Contain("backend: \"onnxruntime\"").And.Contain("max_batch_size: 16")
            .And.Contain("preferred_batch_size: [ 8 ]").And.Contain("kind: KIND_GPU").And.Contain("kind: KIND_CPU")
            .And.Contain("label_filename: \"labels.txt\""));
    }

    [Test]
    public void CpuOnlyRepositoryHasNoGpuGroupAndBadModelsAreRefused()
    {
        var onnx = CrateOnnxExporter.Export(TestModels.RandomWeights(TestModels.TinyRgb, 1));
        var text = File.ReadAllText(TritonRepository.Write(onnx, _dir, new TritonOptions { Instances = TritonInstances.Cpu, InstanceCount = 2 }));
        Assert.That(text, Does.Not.Contain("KIND_GPU").And.Contain("count: 2\n    kind: KIND_CPU"));
        Assert.That(() => TritonRepository.Write([1, 2, 3], _dir), Throws.TypeOf<CrateOnnxException>().With.Message.Contains("does not load"));
        Assert.That(() => TritonRepository.Write(onnx, _dir, new TritonOptions { Name = "a/b" }), Throws.ArgumentException.With.Message.Contains("plain folder name"));
    }
}
