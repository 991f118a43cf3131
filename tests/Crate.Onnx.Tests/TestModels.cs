using Crate.Core.Model;
using Crate.Core.Weights;

namespace Crate.Onnx.Tests;

/// <summary>Model shapes, seeded random weights and images shared by the tests.</summary>
internal static class TestModels
{
    /// <summary>The benchmark/demo shape: dim 192, depth 6, 6x32 heads, 28x28x1, patch 4, class-token pooling.</summary>
    public static CrateConfig Mini => CratePresets.Mini with
    {
        ClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    };

    /// <summary>
    /// A tiny trunk on a small non-square RGB image (so a swapped height/width or channel order shows), mean pooling,
    /// heads narrower than dim/heads, per-channel normalisation, and a non-default ISTA step.
    /// </summary>
    public static CrateConfig TinyRgb => new()
    {
        Preset = "custom", Dim = 48, Depth = 2, Heads = 4, DimHead = 8,
        ImageHeight = 12, ImageWidth = 16, PatchSize = 4, Channels = 3, NumClasses = 5,
        Pool = Pooling.Mean, IstaStep = 0.2, IstaLambda = 0.05,
        Mean = [0.485f, 0.456f, 0.406f], Std = [0.229f, 0.224f, 0.225f],
        ClassNames = ["cat", "dog", "bird", "fish", "frog"],
    };

    /// <summary>
    /// Seeded weights with every tensor non-trivial (LayerNorm gains and biases too), scaled so activations and
    /// logits are of order one and a 1e-4 tolerance is a real test.
    /// </summary>
    public static CrateWeights RandomWeights(CrateConfig config, int seed)
    {
        var rng = new Random(seed);
        float Normal() => (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var tensors = new List<NamedTensor>();
        foreach (var (name, shape) in CrateWeights.Layout(config))
        {
            var values = new float[NamedTensor.ElementCount(shape)];
            bool isNormGain = name.EndsWith(".weight", StringComparison.Ordinal) && shape.Length == 1;
            float fanIn = shape.Length == 2 ? shape[1] : 1;
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = name switch
                {
                    _ when isNormGain => 1 + 0.2f * Normal(),
                    _ when name.EndsWith(".bias", StringComparison.Ordinal) => 0.1f * Normal(),
                    "pos_embedding" or "cls_token" or "prompt_tokens" => Normal(),
                    _ when name.EndsWith(".1.fn.weight", StringComparison.Ordinal) => Normal() * MathF.Sqrt(2f / fanIn), // ISTA dictionary
                    _ => Normal() / MathF.Sqrt(fanIn),
                };
            }
            tensors.Add(NamedTensor.FromFloats(name, shape, values));
        }
        return CrateWeights.Create(config, tensors);
    }

    /// <summary><paramref name="count"/> seeded images of raw pixels in [0, 255] (what the ONNX input takes).</summary>
    public static float[] RandomPixels(CrateConfig config, int count, int seed)
    {
        var rng = new Random(seed);
        var pixels = new float[count * config.Channels * config.ImageHeight * config.ImageWidth];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = rng.Next(256);
        return pixels;
    }

    /// <summary>The model's preprocessing done outside the graph: <c>(x / 255 - mean[c]) / std[c]</c>.</summary>
    public static float[] Normalize(CrateConfig config, float[] pixels)
    {
        int plane = config.ImageHeight * config.ImageWidth;
        var result = new float[pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            int channel = i / plane % config.Channels;
            result[i] = (pixels[i] / 255f - config.MeanOf(channel)) / config.StdOf(channel);
        }
        return result;
    }

    /// <summary>Largest absolute difference between two equally long arrays.</summary>
    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.That(a.Length, Is.EqualTo(b.Length), "compared arrays differ in length");
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }

    /// <summary>The repository root (the folder holding Crate.sln), found upwards from the test binaries.</summary>
    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Crate.sln"))) return dir.FullName;
            throw new InvalidOperationException($"No Crate.sln above {TestContext.CurrentContext.TestDirectory}.");
        }
    }

    /// <summary>A fresh temporary folder, deleted by the caller's <c>using</c>.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("crate-onnx-test-").FullName;
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
