using Crate.Core.Model;
using Crate.Core.Weights;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using Crate.Training.Model;
using TorchSharp;
using static Crate.Onnx.Tests.TestModels;

namespace Crate.Onnx.Tests;

/// <summary>The exported graph computes what the TorchSharp model and an independent double-precision reference compute.</summary>
public class ParityTests
{
    private const double Tolerance = 1e-4;

    private static CrateConfig Shape(string name) => name switch
    {
        "mini" => Mini,
        "mini_3_prompts" => Mini with { PromptTokens = 3 },
        "tiny_rgb_mean_pool" => TinyRgb,
        "tiny_rgb_mean_pool_3_prompts" => TinyRgb with { PromptTokens = 3 },
        _ => throw new ArgumentException($"unknown test shape '{name}'"),
    };

    private static IEnumerable<TestCaseData> ShapesAndBatches() =>
        from shape in new[] { "mini", "mini_3_prompts", "tiny_rgb_mean_pool", "tiny_rgb_mean_pool_3_prompts" }
        from batch in new[] { 1, 5 }
        select new TestCaseData(shape, batch).SetName($"OrtMatchesTorchSharp({shape}, batch {batch})");

    [TestCaseSource(nameof(ShapesAndBatches))]
    public void OrtMatchesTorchSharp(string shape, int batch)
    {
        var config = Shape(shape);
        var weights = RandomWeights(config, seed: 7);
        var pixels = RandomPixels(config, batch, seed: 11);
        var bytes = CrateOnnxExporter.Export(weights, new CrateOnnxExportOptions { IncludeAttention = true, IncludePatchTokens = true });
        // MaxBatch 2 makes batch 5 run as chunks of 2, 2 and 1.
        using var onnx = CrateOnnxModel.Load(bytes, new CrateOnnxOptions { MaxBatch = 2 });
        var ort = onnx.Score(pixels, attention: true, patchTokens: true);

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var model = new CrateModel(config);
        model.LoadWeights(weights);
        model.eval();
        var input = torch.tensor(Normalize(config, pixels), [batch, config.Channels, config.ImageHeight, config.ImageWidth]);
        var trace = model.Trace(input, keepAttention: true);
        static float[] Floats(torch.Tensor t) => t.contiguous().data<float>().ToArray();

        var logits = Floats(trace.Logits);
        TestContext.Out.WriteLine($"max |diff| logits {MaxAbsDiff(ort.Logits, logits):E2}, features {MaxAbsDiff(ort.Features, Floats(trace.Features)):E2}; logits std {StdDev(logits):F2}");
        Assert.Multiple(() =>
        {
            Assert.That(StdDev(logits), Is.GreaterThan(0.3), "logits too flat for the tolerance to mean anything");
            Assert.That(MaxAbsDiff(ort.Logits, logits), Is.LessThanOrEqualTo(Tolerance), "logits");
            Assert.That(MaxAbsDiff(ort.Probabilities, Floats(trace.Logits.softmax(-1))), Is.LessThanOrEqualTo(Tolerance), "probabilities");
            Assert.That(MaxAbsDiff(ort.Features, Floats(trace.Features)), Is.LessThanOrEqualTo(Tolerance), "features");
            for (int i = 0; i < config.Depth; i++)
                Assert.That(MaxAbsDiff(ort.Attention![i], Floats(trace.Layers[i].Attention!)), Is.LessThanOrEqualTo(Tolerance), $"attention of layer {i}");
            // Patch tokens follow the class token and the prompts.
            Assert.That(MaxAbsDiff(ort.PatchTokens!, Floats(trace.Tokens.narrow(1, 1 + config.PromptTokens, config.NumPatches))), Is.LessThanOrEqualTo(Tolerance), "patch tokens");
        });
    }

    [TestCase("mini")]
    [TestCase("mini_3_prompts")]
    [TestCase("tiny_rgb_mean_pool")]
    [TestCase("tiny_rgb_mean_pool_3_prompts")]
    public void OrtMatchesIndependentDoublePrecisionReference(string shape)
    {
        var config = Shape(shape);
        var weights = RandomWeights(config, seed: 3);
        const int batch = 3;
        var pixels = RandomPixels(config, batch, seed: 5);
        using var onnx = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights));
        var ort = onnx.Score(pixels);
        int n = onnx.ImageLength;
        for (int i = 0; i < batch; i++)
        {
            var (logits, features) = ReferenceForward.Run(weights, pixels.AsSpan(i * n, n));
            TestContext.Out.WriteLine($"image {i}: max |diff| logits {MaxAbsDiff(ort.LogitsOf(i), Array.ConvertAll(logits, v => (float)v)):E2}");
            Assert.That(MaxAbsDiff(ort.LogitsOf(i), Array.ConvertAll(logits, v => (float)v)), Is.LessThanOrEqualTo(Tolerance), $"logits of image {i}");
            Assert.That(MaxAbsDiff(ort.FeaturesOf(i), Array.ConvertAll(features, v => (float)v)), Is.LessThanOrEqualTo(Tolerance), $"features of image {i}");
        }
    }

    /// <summary>Fixtures written by the independent PyTorch implementation (scripts/reference/make_fixture.py).</summary>
    [TestCase("crate_rgb_cls")]
    [TestCase("crate_gray_mean")]
    public void OrtMatchesThePyTorchReferenceFixtures(string name)
    {
        var fixtures = Path.Combine(RepoRoot, "tests", "Crate.Training.Tests", "Fixtures");
        var weights = CrateWeights.Load(Path.Combine(fixtures, $"{name}.weights.safetensors"));
        var io = Safetensors.Read(Path.Combine(fixtures, $"{name}.io.safetensors"));
        Assert.That(io.TryGet("images", out var images) && io.TryGet("logits", out _), "fixture holds images and logits");
        io.TryGet("logits", out var logits);
        // The fixture's images are normalised; the ONNX input is raw pixels, so undo (x / 255 - mean) / std.
        var c = weights.Config;
        var normalised = images.ToFloats();
        int plane = c.ImageHeight * c.ImageWidth;
        var pixels = new float[normalised.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            int channel = i / plane % c.Channels;
            pixels[i] = (normalised[i] * c.StdOf(channel) + c.MeanOf(channel)) * 255f;
        }
        using var onnx = CrateOnnxModel.Load(CrateOnnxExporter.Export(weights));
        var ort = onnx.Score(pixels, images.Shape);
        Assert.That(MaxAbsDiff(ort.Logits, logits.ToFloats()), Is.LessThanOrEqualTo(Tolerance));
    }

    private static double StdDev(float[] values)
    {
        double mean = values.Average(v => (double)v);
        return Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
    }
}
