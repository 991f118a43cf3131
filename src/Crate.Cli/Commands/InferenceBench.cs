using System.Diagnostics;
using System.Globalization;
using Crate.Core.Model;
using Crate.Onnx.Runtime;
using Crate.Training.Model;
using TorchSharp;

namespace Crate.Cli.Commands;

/// <summary>
/// Inference measurements shared by <c>crate bench infer</c> and <c>crate bench all</c>: the same images through
/// several engines in alternating rounds, images/s, and model GFLOP/s against a ceiling.
/// </summary>
internal static class InferenceBench
{
    /// <summary>Alternating rounds per measurement; each engine's best round counts.</summary>
    public const int Rounds = 5;

    /// <summary>One engine scoring one fixed batch: its name and a call returning the batch's logits.</summary>
    public sealed record Engine(string Name, Func<float[]> Logits);

    /// <summary>The batch sizes of a comma-separated option value such as <c>1,8,64</c>.</summary>
    /// <exception cref="ArgumentException">Not comma-separated positive integers; the message names <paramref name="option"/>.</exception>
    public static int[] BatchSizes(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var sizes = parts.Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var b) && b > 0 ? b : 0).ToArray();
        if (sizes.Length == 0 || sizes.Contains(0)) throw new ArgumentException($"{option} must be comma-separated positive batch sizes, got '{text}'.");
        return sizes;
    }

    /// <summary>Seeded random weights of <paramref name="config"/> (seed 0): speed does not depend on the values.</summary>
    public static CrateWeights SeededWeights(CrateConfig config)
    {
        torch.manual_seed(0);
        using var model = new CrateModel(config);
        return model.ToWeights();
    }

    /// <summary><paramref name="count"/> seeded images of raw pixels 0..255 (integers, as decoded images have).</summary>
    public static float[] RandomPixels(CrateConfig c, int count, int seed)
    {
        var rng = new Random(seed);
        var pixels = new float[count * c.Channels * c.ImageHeight * c.ImageWidth];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = rng.Next(256);
        return pixels;
    }

    /// <summary>An ONNX Runtime model scoring <paramref name="pixels"/>.</summary>
    public static Engine Onnx(string name, CrateOnnxModel model, float[] pixels) => new(name, () => model.Score(pixels).Logits);

    /// <summary>
    /// The TorchSharp model in eager mode scoring <paramref name="pixels"/> (normalised once, outside the timing, as the
    /// ONNX graph does inside), under <c>no_grad</c> and a dispose scope per batch.
    /// </summary>
    public static Engine Eager(string name, CrateModel model, float[] pixels)
    {
        var c = model.Config;
        var normalized = Normalize(c, pixels);
        long[] shape = [pixels.Length / (c.Channels * c.ImageHeight * c.ImageWidth), c.Channels, c.ImageHeight, c.ImageWidth];
        return new(name, () =>
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            return model.forward(torch.tensor(normalized, shape)).data<float>().ToArray();
        });
    }

    /// <summary>
    /// Images/s of each engine on a batch of <paramref name="batch"/>: <paramref name="rounds"/> alternating rounds of
    /// <paramref name="duration"/> / rounds each, best round per engine. Alternating puts every engine under the same
    /// background load, and interference (other processes on a shared machine) can only slow a round down.
    /// </summary>
    public static double[] BestOfAlternatingRounds(IReadOnlyList<Engine> engines, int batch, TimeSpan duration, int rounds = Rounds)
    {
        var best = new double[engines.Count];
        for (int round = 0; round < rounds; round++)
            for (int i = 0; i < engines.Count; i++)
                best[i] = Math.Max(best[i], ImagesPerSecond(() => engines[i].Logits(), batch, duration / rounds));
        return best;
    }

    /// <summary>Images/s of <paramref name="run"/> (one batch per call) over at least <paramref name="duration"/> and 5 calls, after 3 untimed calls.</summary>
    public static double ImagesPerSecond(Action run, int batch, TimeSpan duration)
    {
        for (int i = 0; i < 3; i++) run();
        var clock = Stopwatch.StartNew();
        long runs = 0;
        while (clock.Elapsed < duration || runs < 5) { run(); runs++; }
        return runs * batch / clock.Elapsed.TotalSeconds;
    }

    /// <summary>"GFLOP/s (% of the ceiling)" for a throughput of a model of <paramref name="flops"/> per image.</summary>
    public static string Utilisation(double imagesPerSecond, double flops, double ceiling)
    {
        double gflops = imagesPerSecond * flops / 1e9;
        return string.Create(CultureInfo.InvariantCulture, $"{gflops:F0} ({100 * gflops / ceiling:F0}%)");
    }

    /// <summary>Largest absolute difference of two logit arrays, formatted like 1.7E-6.</summary>
    public static string MaxDiff(float[] a, float[] b) =>
        a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max().ToString("0.0E+0", CultureInfo.InvariantCulture);

    private static float[] Normalize(CrateConfig c, float[] pixels)
    {
        int plane = c.ImageHeight * c.ImageWidth;
        var result = new float[pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
        {
            int channel = i / plane % c.Channels;
            result[i] = (pixels[i] / 255f - c.MeanOf(channel)) / c.StdOf(channel);
        }
        return result;
    }
}
