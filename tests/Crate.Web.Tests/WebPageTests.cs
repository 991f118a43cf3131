using System.Text.Json;
using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Core.Weights;
using Crate.Onnx;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.Playwright;
using static Crate.Onnx.Tests.TestModels;

namespace Crate.Web.Tests;

/// <summary>
/// samples/web in Debian's Chromium (headless, driven by Playwright): for the same image file and exported model, the
/// page shows what .NET computes: <see cref="CrateOnnxModel"/> on the pixels Crate's <see cref="ImageFile"/> reads.
/// </summary>
[NonParallelizable]
public class WebPageTests
{
    private const int Top = 5;
    private static readonly string Chromium = Environment.GetEnvironmentVariable("CRATE_CHROMIUM") ?? "/usr/bin/chromium";
    private static string SampleDir => Path.Combine(RepoRoot, "samples", "web");

    private IPlaywright? _playwright;
    private IBrowser? _browser;

    [OneTimeSetUp]
    public async Task StartBrowser()
    {
        if (!File.Exists(Chromium)) Assert.Ignore($"{Chromium} is not installed; scripts/setup.sh installs Debian's chromium (or set CRATE_CHROMIUM).");
        if (!File.Exists(Path.Combine(SampleDir, "node_modules", "onnxruntime-web", "dist", "ort.wasm.min.mjs")))
            Assert.Fail($"{SampleDir}/node_modules lacks onnxruntime-web: run scripts/setup.sh (it runs `npm ci` there).");
        // Playwright's driver runs from the NuGet package (with its own Node.js); the browser is Debian's: nothing is downloaded.
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium, Headless = true, ChromiumSandbox = false });
    }

    [OneTimeTearDown]
    public async Task StopBrowser()
    {
        if (_browser != null) await _browser.DisposeAsync();
        _playwright?.Dispose();
    }

    [Test]
    public async Task RgbClassifierTopFiveAndAttentionMapMatchDotNet()
    {
        // RGB, non-square, mean pooling, seven classes: channel order, height/width and truncation to five would all show.
        var config = TinyRgb with { NumClasses = 7, ClassNames = ["cat", "dog", "bird", "fish", "frog", "horse", "ship"] };
        using var dir = new TempDir();
        var models = Directory.CreateDirectory(dir.File("models")).FullName;
        var modelPath = Path.Combine(models, "model.onnx");
        CrateOnnxExporter.ExportToFile(RandomWeights(config, 31), modelPath, new CrateOnnxExportOptions { IncludeAttention = true });
        var imagePath = dir.File("photo.png");
        ImageFile.SavePng(imagePath, RandomPixels(config, 1, 32).Select(v => (byte)v).ToArray(), 3, config.ImageHeight, config.ImageWidth);

        // .NET: the file as `crate predict` reads it, scored by CrateOnnxModel.
        var pixels = LoadAsCrate(imagePath, config);
        using var model = CrateOnnxModel.Load(modelPath);
        var expected = TopClasses(model, pixels);
        var attention = model.Score(pixels, attention: true).Attention![config.Depth - 2];
        var expectedMap = ClassTokenAttention(attention, config);

        using var server = new StaticFileServer(("/models/", models), ("/", SampleDir));
        await using var context = await _browser!.NewContextAsync();
        var page = await OpenPage(context, server);
        await WaitForStatus(page, "ready"); // the default models/model.onnx
        await ChooseImage(page, imagePath);

        var last = await LastResult(page);
        Assert.That(Floats(last, "input"), Is.EqualTo(pixels), "the model input the page made of the file");
        await AssertTopClasses(page, expected);
        Assert.That(MaxAbsDiff(Floats(last, "attention"), expectedMap), Is.LessThanOrEqualTo(1e-5), "class-token attention map");
        Assert.That(await page.Locator("#overlay-caption").TextContentAsync(), Does.Contain("layer 0's attention from the class token"));
    }

    [Test]
    public async Task GrayscaleClassifierConvertsAndResizesColourImagesLikeCrate()
    {
        var config = Mini with { Depth = 2 }; // 28x28 gray, ten Fashion-MNIST classes
        using var dir = new TempDir();
        var models = Directory.CreateDirectory(dir.File("models")).FullName;
        var modelPath = Path.Combine(models, "model.onnx");
        CrateOnnxExporter.ExportToFile(RandomWeights(config, 41), modelPath);
        using var model = CrateOnnxModel.Load(modelPath);
        // A colour image of the model's size (only the gray conversion applies) and a larger one that must be reduced.
        var sameSize = dir.File("colour.png");
        var rng = new Random(42);
        WritePng(sameSize, 28, 28, (_, _) => ((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)));
        var larger = dir.File("larger.png");
        WritePng(larger, 70, 56, (y, x) => (x - 35) * (x - 35) + (y - 20) * (y - 20) < 200
            ? ((byte)240, (byte)200, (byte)30)
            : ((byte)(x * 255 / 70), (byte)(y * 255 / 56), (byte)(128 + 100 * Math.Sin(x * 0.3 + y * 0.2))));

        using var server = new StaticFileServer(("/models/", models), ("/", SampleDir));
        await using var context = await _browser!.NewContextAsync();
        var page = await OpenPage(context, server);
        await WaitForStatus(page, "ready");

        await ChooseImage(page, sameSize);
        var pixels = LoadAsCrate(sameSize, config);
        Assert.That(Floats(await LastResult(page), "input"), Is.EqualTo(pixels), "gray by ITU-R 601 luma, rounded as .NET rounds");
        await AssertTopClasses(page, TopClasses(model, pixels));

        // Reducing goes through the browser's own mipmapped bilinear filter (Skia in Chromium) where Crate uses SkiaSharp's:
        // close, not bit-exact. Crate.Core runs on SkiaSharp 2.88 here, which filters from the nearest mipmap level where
        // Chromium (and SkiaSharp 3) blend two: 0.99 gray levels apart on average, 17 at most on this image (within 12 on SkiaSharp 3).
        // What the page then computes on its pixels is still .NET's result for them.
        await ChooseImage(page, larger);
        var crate = LoadAsCrate(larger, config);
        var input = Floats(await LastResult(page), "input");
        var differences = input.Zip(crate, (a, b) => Math.Abs(a - b)).ToArray();
        TestContext.Out.WriteLine($"70x56 -> 28x28: page vs Crate pixels differ by {differences.Average():F3} on average, {differences.Max()} at most");
        Assert.That(differences.Average(), Is.LessThan(1), "mean absolute difference from Crate's resize, in gray levels");
        Assert.That(differences.Max(), Is.LessThanOrEqualTo(17), "largest difference from Crate's resize, in gray levels");
        await AssertTopClasses(page, TopClasses(model, input));
    }

    [Test]
    public async Task SegmentationModelChosenInThePageShowsDotNetsMask()
    {
        var config = Mini with { ImageHeight = 32, ImageWidth = 24, Depth = 2, NumClasses = 4, ClassNames = ["a", "b", "c", "d"] };
        string[] maskClasses = ["background", "a", "b", "c", "d"];
        using var dir = new TempDir();
        var modelPath = dir.File("segmenter.onnx");
        CrateOnnxExporter.ExportToFile(RandomWeights(config, 51), modelPath,
            new CrateOnnxExportOptions { Segmentation = RandomSegmentationHead(config, maskClasses, 52) });
        var imagePath = dir.File("scene.png");
        var rng = new Random(53);
        WritePng(imagePath, 32, 24, (y, x) =>
        {
            var v = (byte)Math.Clamp((x > 6 && x < 18 && y > 8 && y < 26 ? 200 : 40) + rng.Next(-30, 31), 0, 255);
            return (v, v, v);
        });

        // .NET: the mask output of ONNX Runtime's session, and CrateOnnxModel's image-level classes, on Crate's pixels.
        var pixels = LoadAsCrate(imagePath, config);
        var (mask, ties) = MaskOf(modelPath, pixels, config, maskClasses.Length);
        using var model = CrateOnnxModel.Load(modelPath);

        using var server = new StaticFileServer(("/", SampleDir)); // no models/model.onnx: the page says so
        await using var context = await _browser!.NewContextAsync();
        var page = await OpenPage(context, server);
        Assert.That(await WaitForStatus(page, "empty"), Does.StartWith("No model at models/model.onnx (HTTP 404)"));
        await page.Locator("#model-file").SetInputFilesAsync(modelPath);
        await WaitForStatus(page, "ready");
        Assert.That(await page.Locator("#model-info").TextContentAsync(), Does.Contain("segmentation, 5 mask classes"));
        await ChooseImage(page, imagePath);

        await AssertTopClasses(page, TopClasses(model, pixels));
        var pageMask = Floats(await LastResult(page), "mask");
        var expectedCounts = Enumerable.Range(0, maskClasses.Length).Select(k => mask.Count(id => id == k)).ToArray();
        Assert.That(expectedCounts.Count(n => n > 0), Is.GreaterThan(1), "the reference mask is not a single class");
        Assert.That(ties, Is.LessThan(mask.Length / 100), "pixels whose two best classes are within 1e-4");
        int disagreements = Enumerable.Range(0, mask.Length).Count(i => pageMask[i] != mask[i]);
        Assert.That(disagreements, Is.LessThanOrEqualTo(ties), "page mask pixels that differ from .NET's (only near-ties may)");

        // The legend lists each class present with its pixel count.
        var legend = await page.Locator("#legend li").EvaluateAllAsync<JsonElement>(
            "items => items.map(li => [+li.dataset.classId, +li.dataset.pixels, li.textContent])");
        var shown = legend.EnumerateArray().ToDictionary(e => e[0].GetInt32(), e => (Pixels: e[1].GetInt32(), Text: e[2].GetString()!));
        Assert.That(shown.Keys, Is.EquivalentTo(Enumerable.Range(0, maskClasses.Length).Where(k => expectedCounts[k] > 0)));
        foreach (var (classId, (pixelCount, text)) in shown)
        {
            Assert.That(pixelCount, Is.EqualTo(expectedCounts[classId]).Within(ties), $"pixels of mask class {classId}");
            Assert.That(text, Does.StartWith($"{maskClasses[classId]}: {pixelCount} px"));
        }
    }

    [Test]
    public async Task DroppedFileThatIsNotAModelIsRefusedByName()
    {
        using var server = new StaticFileServer(("/", SampleDir));
        await using var context = await _browser!.NewContextAsync();
        var page = await OpenPage(context, server);
        await WaitForStatus(page, "empty");
        // What a person's drag and drop delivers: a drop event whose DataTransfer holds the file.
        var dataTransfer = await page.EvaluateHandleAsync(
            "text => { const d = new DataTransfer(); d.items.add(new File([text], 'notes.onnx')); return d; }", "hello, not a model");
        await page.Locator("#drop-zone").DispatchEventAsync("drop", new { dataTransfer });
        Assert.That(await WaitForStatus(page, "error"), Is.EqualTo("notes.onnx is not an ONNX model (unsupported wire type 4)"));
    }

    private static async Task<IPage> OpenPage(IBrowserContext context, StaticFileServer server)
    {
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(60_000); // the WebAssembly engine compiles on a shared, busy machine
        page.Console += (_, message) => TestContext.Out.WriteLine($"page {message.Type}: {message.Text}");
        page.PageError += (_, error) => TestContext.Out.WriteLine($"page error: {error}");
        await page.GotoAsync(server.Url);
        return page;
    }

    /// <summary>Waits until the page's status is <paramref name="state"/> (or an error), asserts which, and returns its text.</summary>
    private static async Task<string> WaitForStatus(IPage page, string state)
    {
        await page.WaitForFunctionAsync("state => ['error', state].includes(document.getElementById('status').dataset.state)", state);
        var status = page.Locator("#status");
        var text = await status.TextContentAsync() ?? "";
        Assert.That(await status.GetAttributeAsync("data-state"), Is.EqualTo(state), $"page status: {text}");
        return text;
    }

    /// <summary>Picks <paramref name="path"/> in the page's image chooser and waits for its result.</summary>
    private static async Task ChooseImage(IPage page, string path)
    {
        await page.Locator("#image-file").SetInputFilesAsync(path);
        await page.WaitForFunctionAsync(
            "name => { const s = document.getElementById('status').dataset.state; return s === 'error' || (s === 'done' && window.crate.last?.file === name); }",
            Path.GetFileName(path));
        var text = await page.Locator("#status").TextContentAsync();
        Assert.That(await page.Locator("#status").GetAttributeAsync("data-state"), Is.EqualTo("done"), $"page status: {text}");
    }

    /// <summary>The page's last result as plain arrays (model input, attention map, mask).</summary>
    private static Task<JsonElement> LastResult(IPage page) => page.EvaluateAsync<JsonElement>(
        "() => { const l = window.crate.last; const plain = (a) => a && Array.from(a, Number); " +
        "return { input: plain(l.input), attention: plain(l.attention), mask: plain(l.mask) }; }");

    private static float[] Floats(JsonElement result, string name) =>
        result.GetProperty(name).EnumerateArray().Select(e => e.GetSingle()).ToArray();

    /// <summary>The rows the page shows (class, label, probability) are .NET's top classes, probabilities within 1e-4.</summary>
    private static async Task AssertTopClasses(IPage page, IReadOnlyList<ClassScore> expected)
    {
        var rows = (await page.Locator("#top-classes li").EvaluateAllAsync<JsonElement>(
            "rows => rows.map(r => [+r.dataset.classId, +r.dataset.probability, r.querySelector('.label').textContent])")).EnumerateArray().ToArray();
        Assert.That(rows.Select(r => r[0].GetInt32()), Is.EqualTo(expected.Select(s => s.ClassId)), "top classes, most probable first");
        Assert.That(rows.Select(r => r[2].GetString()), Is.EqualTo(expected.Select(s => s.Label)), "class names");
        for (int i = 0; i < rows.Length; i++)
            Assert.That(rows[i][1].GetDouble(), Is.EqualTo(expected[i].Probability).Within(1e-4), $"probability of row {i}");
    }

    /// <summary>.NET's top classes (at most five) of one image.</summary>
    private static IReadOnlyList<ClassScore> TopClasses(CrateOnnxModel model, float[] pixels) =>
        model.Predict(pixels, Math.Min(Top, model.Config.NumClasses))[0].Top;

    /// <summary>The file as Crate reads it for this model (<see cref="ImageFile.Load"/>), as the model's float input.</summary>
    private static float[] LoadAsCrate(string path, CrateConfig config) =>
        ImageFile.Load(path, config.Channels, config.ImageHeight, config.ImageWidth).Select(b => (float)b).ToArray();

    private static void WritePng(string path, int height, int width, Func<int, int, (byte R, byte G, byte B)> pixel)
    {
        int plane = height * width;
        var planes = new byte[3 * plane];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                var (r, g, b) = pixel(y, x);
                (planes[y * width + x], planes[plane + y * width + x], planes[2 * plane + y * width + x]) = (r, g, b);
            }
        ImageFile.SavePng(path, planes, 3, height, width);
    }

    /// <summary>Mean over heads of the class token's attention to each patch, from one image's <c>[heads, T, T]</c>.</summary>
    private static float[] ClassTokenAttention(float[] attention, CrateConfig config)
    {
        int tokens = config.NumPatches + 1;
        return Enumerable.Range(1, config.NumPatches)
            .Select(j => (float)Enumerable.Range(0, config.Heads).Average(h => attention[h * tokens * tokens + j])).ToArray();
    }

    /// <summary>
    /// Seeded segmentation-head weights; the coarse projection is scaled up so most pixels' classes are decided by
    /// margins far above float32 differences between engines.
    /// </summary>
    private static SegmentationHeadWeights RandomSegmentationHead(CrateConfig config, string[] classNames, int seed)
    {
        var rng = new Random(seed);
        float Normal() => (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        var tensors = SegmentationHeadWeights.Layout(config, classNames.Length).Select(t =>
        {
            float fanIn = t.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            var values = new float[NamedTensor.ElementCount(t.Shape)];
            for (int i = 0; i < values.Length; i++)
                values[i] = t.Name switch
                {
                    "0.weight" => 1 + 0.2f * Normal(),
                    "1.weight" => 4 * Normal() / MathF.Sqrt(fanIn),
                    _ when t.Name.EndsWith("bias", StringComparison.Ordinal) => 0.1f * Normal(),
                    _ => Normal() / MathF.Sqrt(fanIn),
                };
            return NamedTensor.FromFloats(t.Name, t.Shape, values);
        });
        return new SegmentationHeadWeights(config, classNames, tensors);
    }

    /// <summary>ONNX Runtime's <c>mask</c> for one image, and how many of its pixels are near-ties (best two logits within 1e-4).</summary>
    private static (long[] Mask, int Ties) MaskOf(string modelPath, float[] pixels, CrateConfig config, int classes)
    {
        using var session = new InferenceSession(modelPath);
        var input = new DenseTensor<float>(pixels, [1, config.Channels, config.ImageHeight, config.ImageWidth]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(CrateOnnxSchema.Image, input)]);
        var mask = results.First(r => r.Name == CrateOnnxSchema.Mask).AsTensor<long>().ToArray();
        var logits = results.First(r => r.Name == CrateOnnxSchema.MaskLogits).AsTensor<float>().ToArray();
        int plane = mask.Length, ties = 0;
        for (int p = 0; p < plane; p++)
        {
            var best = Enumerable.Range(0, classes).Select(k => logits[k * plane + p]).OrderDescending().Take(2).ToArray();
            if (best[0] - best[1] <= 1e-4f) ties++;
        }
        return (mask, ties);
    }
}
