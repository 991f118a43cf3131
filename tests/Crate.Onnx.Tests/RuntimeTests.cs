using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using static Crate.Onnx.Tests.TestModels;

namespace Crate.Onnx.Tests;

/// <summary>CrateOnnxModel: predictions, batching, threads, bad input and files, execution-provider fallback.</summary>
public class RuntimeTests
{
    private static readonly Lazy<byte[]> MiniBytes = new(() => CrateOnnxExporter.Export(RandomWeights(Mini, 4)));
    private static readonly Lazy<byte[]> TinyBytes = new(() => CrateOnnxExporter.Export(RandomWeights(TinyRgb, 4), new CrateOnnxExportOptions()));

    [Test]
    public void PredictReturnsTopClassesWithNamesInProbabilityOrder()
    {
        var weights = RandomWeights(TinyRgb, 4);
        var pixels = RandomPixels(TinyRgb, 4, 21);
        using var model = CrateOnnxModel.Load(TinyBytes.Value);
        var predictions = model.Predict(pixels, topK: 3);
        Assert.That(predictions, Has.Count.EqualTo(4));
        for (int i = 0; i < 4; i++)
        {
            var (logits, _) = ReferenceForward.Run(weights, pixels.AsSpan(i * model.ImageLength, model.ImageLength));
            var expectedOrder = Enumerable.Range(0, logits.Length).OrderByDescending(k => logits[k]).Take(3).ToArray();
            var top = predictions[i].Top;
            Assert.That(top.Select(s => s.ClassId), Is.EqualTo(expectedOrder), $"image {i}: top-3 by the reference's logits");
            Assert.That(top.Select(s => s.Label), Is.EqualTo(expectedOrder.Select(k => TinyRgb.ClassNames[k])));
            Assert.That(top[0].Logit, Is.EqualTo(logits[expectedOrder[0]]).Within(1e-4));
            // softmax: p_k / p_best = exp(l_k - l_best)
            Assert.That(top[1].Probability / top[0].Probability, Is.EqualTo(Math.Exp(logits[expectedOrder[1]] - logits[expectedOrder[0]])).Within(1e-4));
            Assert.That(predictions[i].Best, Is.SameAs(top[0]));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Predict(pixels, topK: 6));
    }

    [Test]
    public void LargeBatchesAreSplitAndGiveTheSameScoresAsOneRun()
    {
        var pixels = RandomPixels(Mini, 13, 2);
        using var whole = CrateOnnxModel.Load(MiniBytes.Value, new CrateOnnxOptions { MaxBatch = 64 });
        using var chunked = CrateOnnxModel.Load(MiniBytes.Value, new CrateOnnxOptions { MaxBatch = 4 });
        var a = whole.Score(pixels);
        var b = chunked.Score(pixels);
        Assert.That(b.Count, Is.EqualTo(13));
        Assert.That(MaxAbsDiff(a.Logits, b.Logits), Is.LessThanOrEqualTo(1e-5));
        Assert.That(MaxAbsDiff(a.Features, b.Features), Is.LessThanOrEqualTo(1e-5));
        // The last chunk (one image) matches scoring that image alone.
        var last = whole.Score(pixels.AsMemory(12 * whole.ImageLength));
        Assert.That(MaxAbsDiff(last.LogitsOf(0), b.LogitsOf(12)), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void ConcurrentCallersGetTheirOwnResults()
    {
        using var model = CrateOnnxModel.Load(MiniBytes.Value, new CrateOnnxOptions { IntraOpThreads = 1 });
        var inputs = Enumerable.Range(0, 8).Select(i => RandomPixels(Mini, 1 + i % 3, 100 + i)).ToArray();
        var sequential = inputs.Select(p => model.Score(p).Logits).ToArray();
        var parallel = new float[inputs.Length][];
        Parallel.For(0, inputs.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => parallel[i] = model.Score(inputs[i]).Logits);
        for (int i = 0; i < inputs.Length; i++)
            Assert.That(MaxAbsDiff(parallel[i], sequential[i]), Is.LessThanOrEqualTo(1e-6), $"caller {i}");
    }

    [Test]
    public void EmptyBatchGivesEmptyScores()
    {
        using var model = CrateOnnxModel.Load(MiniBytes.Value);
        var scores = model.Score(ReadOnlyMemory<float>.Empty);
        Assert.That(scores.Count, Is.Zero);
        Assert.That(scores.Logits, Is.Empty);
    }

    [Test]
    public void WrongRankIsExplained()
    {
        using var model = CrateOnnxModel.Load(MiniBytes.Value, source: "mini.onnx");
        var e = Assert.Throws<ArgumentException>(() => model.Score(new float[784], [1, 28, 28]));
        Assert.That(e!.Message, Does.Contain("'mini.onnx' expects images of shape [batch, 1, 28, 28]; got a shape of rank 3: [1, 28, 28]"));
    }

    [Test]
    public void WrongChannelCountIsExplained()
    {
        using var model = CrateOnnxModel.Load(MiniBytes.Value, source: "mini.onnx");
        var e = Assert.Throws<ArgumentException>(() => model.Score(new float[3 * 784], [1, 3, 28, 28]));
        Assert.That(e!.Message, Does.Contain("expects 1-channel images; got 3 channels (shape [1, 3, 28, 28]"));
    }

    [Test]
    public void WrongImageSizeIsExplained()
    {
        using var model = CrateOnnxModel.Load(TinyBytes.Value, source: "tiny.onnx");
        var e = Assert.Throws<ArgumentException>(() => model.Score(new float[3 * 16 * 12], [1, 3, 16, 12]));
        Assert.That(e!.Message, Does.Contain("expects 12x16 images; got 16x12"));
    }

    [Test]
    public void BufferNotMatchingTheShapeIsExplained()
    {
        using var model = CrateOnnxModel.Load(MiniBytes.Value, source: "mini.onnx");
        var e = Assert.Throws<ArgumentException>(() => model.Score(new float[784], [2, 1, 28, 28]));
        Assert.That(e!.Message, Does.Contain("shape [2, 1, 28, 28] needs 1568 floats but the buffer holds 784"));
        e = Assert.Throws<ArgumentException>(() => model.Score(new float[1000]));
        Assert.That(e!.Message, Does.Contain("1000 floats is not a whole number of 1x28x28 images (784 floats each)"));
    }

    [TestCase(float.NaN, "NaN")]
    [TestCase(float.PositiveInfinity, "+Infinity")]
    [TestCase(float.NegativeInfinity, "-Infinity")]
    public void NonFinitePixelsAreLocated(float bad, string shown)
    {
        using var model = CrateOnnxModel.Load(TinyBytes.Value, source: "tiny.onnx");
        var pixels = RandomPixels(TinyRgb, 3, 1);
        pixels[model.ImageLength * 2 + 1 * 12 * 16 + 5 * 16 + 7] = bad; // image 2, channel 1, row 5, column 7
        var e = Assert.Throws<ArgumentException>(() => model.Score(pixels));
        Assert.That(e!.Message, Does.Contain($"'tiny.onnx': image 2 of the batch has a non-finite pixel ({shown}) at channel 1, row 5, column 7"));
    }

    [Test]
    public void MissingFileIsNamed()
    {
        using var dir = new TempDir();
        var path = dir.File("absent.onnx");
        var e = Assert.Throws<FileNotFoundException>(() => CrateOnnxModel.Load(path));
        Assert.That(e!.Message, Is.EqualTo($"ONNX model '{path}' does not exist."));
    }

    [Test]
    public void TruncatedFileIsNotReadableOnnx()
    {
        using var dir = new TempDir();
        var path = dir.File("truncated.onnx");
        File.WriteAllBytes(path, MiniBytes.Value[..(MiniBytes.Value.Length / 2)]);
        var e = Assert.Throws<CrateOnnxException>(() => CrateOnnxModel.Load(path));
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e!.Message, Does.StartWith($"'{path}' is not a readable ONNX model (truncated, corrupt or not ONNX at all)"));
    }

    [Test]
    public void NonOnnxFileIsNotReadableOnnx()
    {
        using var dir = new TempDir();
        var path = dir.File("weights.safetensors");
        RandomWeights(TinyRgb, 1).Save(path);
        var e = Assert.Throws<CrateOnnxException>(() => CrateOnnxModel.Load(path));
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e!.Message, Does.StartWith($"'{path}' is not a readable ONNX model (truncated, corrupt or not ONNX at all)"));
    }

    [Test]
    public void OnnxModelWithoutCrateMetadataIsNotACrateModel()
    {
        var e = Assert.Throws<CrateOnnxException>(() => CrateOnnxModel.Load(ForeignModel([]), source: "relu.onnx"));
        Assert.That(e!.Message, Is.EqualTo(
            "'relu.onnx' is an ONNX model but not a Crate model: its metadata has no 'crate.config' entry. Export one with `crate export` or CrateOnnxExporter."));
    }

    [Test]
    public void CrateMetadataOnAForeignGraphIsRefused()
    {
        var e = Assert.Throws<CrateOnnxException>(() => CrateOnnxModel.Load(ForeignModel(new() { ["crate.config"] = Mini.ToJson() }), source: "relu.onnx"));
        Assert.That(e!.Message, Does.StartWith("'relu.onnx' has Crate metadata but no float32 input 'image' of shape [batch, 1, 28, 28] (inputs: x [-1, 4])"));
    }

    [Test]
    public void NewerFormatIsRefused()
    {
        var e = Assert.Throws<CrateOnnxException>(() => CrateOnnxModel.Load(
            ForeignModel(new() { ["crate.config"] = Mini.ToJson(), ["crate.format"] = "2" }), source: "future.onnx"));
        Assert.That(e!.Message, Does.StartWith("'future.onnx' uses Crate ONNX format 2; this library (Crate 0.1.0) reads format 1"));
    }

    [Test]
    public void AttentionFromAFileExportedWithoutItIsExplained()
    {
        using var model = CrateOnnxModel.Load(MiniBytes.Value, source: "mini.onnx");
        var e = Assert.Throws<InvalidOperationException>(() => model.Score(new float[784], attention: true));
        Assert.That(e!.Message, Does.Contain("'mini.onnx' was exported without attention maps; export it with `crate export --attention`"));
        e = Assert.Throws<InvalidOperationException>(() => model.Score(new float[784], patchTokens: true));
        Assert.That(e!.Message, Does.Contain("without patch tokens; export it with `crate export --tokens`"));
    }

    [Test]
    public void CudaOnTheCpuBuildFallsBackWithOneWarning()
    {
        var warnings = new List<string>();
        var pixels = RandomPixels(Mini, 2, 8);
        using var cpu = CrateOnnxModel.Load(MiniBytes.Value);
        using var model = CrateOnnxModel.Load(MiniBytes.Value, new CrateOnnxOptions
        {
            ExecutionProvider = CrateExecutionProvider.Cuda, DeviceId = 0, Warning = warnings.Add,
        }, source: "mini.onnx");
        Assert.That(model.ExecutionProvider, Is.EqualTo(CrateExecutionProvider.Cpu));
        TestContext.Out.WriteLine(string.Join("\n", warnings));
        Assert.That(warnings, Has.Count.EqualTo(1));
        Assert.That(warnings[0], Does.StartWith("warning: CUDA execution provider (device 0) requested for 'mini.onnx' is unavailable:")
            .And.Contain("Running on the CPU instead (build with -p:CrateGpu=true for the GPU package)"));
        Assert.That(model.Score(pixels).Logits, Is.EqualTo(cpu.Score(pixels).Logits).AsCollection);
    }

    [Test]
    public void CudaWithoutFallbackThrows()
    {
        var warnings = new List<string>();
        var e = Assert.Throws<CrateOnnxException>(() => CrateOnnxModel.Load(MiniBytes.Value, new CrateOnnxOptions
        {
            ExecutionProvider = CrateExecutionProvider.Cuda, DeviceId = 1, FallbackToCpu = false, Warning = warnings.Add,
        }, source: "mini.onnx"));
        Assert.That(e!.Message, Does.StartWith("CUDA execution provider (device 1) requested for 'mini.onnx' is unavailable:")
            .And.Contain("CPU fallback is disabled"));
        Assert.That(warnings, Is.Empty);
    }

    /// <summary>A valid ONNX model that Crate did not write: y = Relu(x), x float [batch, 4].</summary>
    private static byte[] ForeignModel(Dictionary<string, string> metadata)
    {
        var g = new OnnxGraphBuilder("relu");
        var x = g.Input("x", "batch", 4L);
        g.Node("Relu", "relu", [x], "y");
        g.Output("y", "batch", 4L);
        return Google.Protobuf.MessageExtensions.ToByteArray(g.Build("test", "", metadata));
    }
}
