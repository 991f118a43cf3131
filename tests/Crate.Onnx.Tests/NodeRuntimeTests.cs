using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using static Crate.Onnx.Tests.TestModels;

namespace Crate.Onnx.Tests;

/// <summary>A second engine: samples/onnx-node runs the exported file in onnxruntime-web (WebAssembly) under Node.js.</summary>
public class NodeRuntimeTests
{
    [Test]
    public void OnnxRuntimeWebInNodeGivesTheSameTop1AndLogitsAsDotNet()
    {
        var sample = Path.Combine(RepoRoot, "samples", "onnx-node");
        var node = FindOnPath("node");
        if (node == null) Assert.Ignore("node is not installed; scripts/setup.sh installs it (Debian's nodejs).");
        if (!Directory.Exists(Path.Combine(sample, "node_modules", "onnxruntime-web")))
            Assert.Fail($"{sample}/node_modules lacks onnxruntime-web: run scripts/setup.sh (it runs `npm ci` there).");

        // RGB, non-square, mean pooling: channel order and layout mistakes in either program would show.
        var config = TinyRgb;
        var weights = RandomWeights(config, 12);
        const int batch = 3;
        var pixels = RandomPixels(config, batch, 13);
        using var dir = new TempDir();
        var modelPath = dir.File("tiny.onnx");
        CrateOnnxExporter.ExportToFile(weights, modelPath);
        var jsonPath = dir.File("batch.json");
        File.WriteAllText(jsonPath, JsonSerializer.Serialize(new { shape = new[] { batch, config.Channels, config.ImageHeight, config.ImageWidth }, data = pixels }));
        var ppmPath = dir.File("image1.ppm");
        File.WriteAllBytes(ppmPath, Ppm(config.ImageHeight, config.ImageWidth, pixels.AsSpan(ImageLength(config), ImageLength(config))));

        using var model = CrateOnnxModel.Load(modelPath);
        var expected = model.Score(pixels);

        var (code, stdout, stderr) = Run(node!, sample, "classify.mjs", modelPath, jsonPath, ppmPath);
        Assert.That(code, Is.EqualTo(0), $"node classify.mjs failed: {stderr}");
        var report = JsonDocument.Parse(stdout).RootElement;
        Assert.That(report.GetProperty("engine").GetString(), Does.StartWith("onnxruntime-web 1.30.0"));
        var results = report.GetProperty("results").EnumerateArray().ToArray();
        Assert.That(results, Has.Length.EqualTo(batch + 1));
        // The JSON batch's images, then the PPM (image 1 again).
        int[] imageOf = [0, 1, 2, 1];
        for (int r = 0; r < results.Length; r++)
        {
            int i = imageOf[r];
            var logits = results[r].GetProperty("logits").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            var dotnetTop1 = model.Predict(pixels.AsMemory(i * model.ImageLength, model.ImageLength))[0].Best;
            Assert.That(results[r].GetProperty("top1").GetInt32(), Is.EqualTo(dotnetTop1.ClassId), $"result {r}: top-1");
            Assert.That(results[r].GetProperty("label").GetString(), Is.EqualTo(dotnetTop1.Label), $"result {r}: label");
            Assert.That(MaxAbsDiff(logits, expected.LogitsOf(i)), Is.LessThanOrEqualTo(1e-4), $"result {r}: logits");
        }
    }

    private static int ImageLength(Core.Model.CrateConfig c) => c.Channels * c.ImageHeight * c.ImageWidth;

    /// <summary>A binary PPM (P6) of one planar <c>[3, H, W]</c> image of integer pixel values.</summary>
    private static byte[] Ppm(int height, int width, ReadOnlySpan<float> planar)
    {
        var header = Encoding.ASCII.GetBytes($"P6\n{width} {height}\n255\n");
        var bytes = new byte[header.Length + 3 * height * width];
        header.CopyTo(bytes, 0);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                    bytes[header.Length + (y * width + x) * 3 + c] = (byte)planar[(c * height + y) * width + x];
        return bytes;
    }

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);

    private static (int Code, string Stdout, string Stderr) Run(string program, string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("node classify.mjs did not finish within 120 s");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
