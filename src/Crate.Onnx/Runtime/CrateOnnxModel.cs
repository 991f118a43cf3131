using System.Runtime.InteropServices;
using System.Text.Json;
using Crate.Core.Model;
using Microsoft.ML.OnnxRuntime;

namespace Crate.Onnx.Runtime;

/// <summary>
/// An exported Crate model loaded in ONNX Runtime: one <see cref="InferenceSession"/>, safe to call from many
/// threads at once, scoring batches of any size (split into chunks of <see cref="CrateOnnxOptions.MaxBatch"/>).
/// Its configuration and class names come from the file's metadata.
/// </summary>
/// <remarks>
/// Input pixels are float32 <c>[batch, C, H, W]</c> in [0, 255]; normalisation happens inside the graph.
/// Only libraries' managed ONNX Runtime package is referenced: the application chooses the native one
/// (CPU by default, GPU with <c>-p:CrateGpu=true</c>).
/// </remarks>
public sealed class CrateOnnxModel : IDisposable
{
    private readonly InferenceSession _session;
    private readonly int _maxBatch;
    private readonly string[] _classNames;

    private CrateOnnxModel(InferenceSession session, CrateConfig config, CrateOnnxPrecision precision, string source, CrateExecutionProvider provider, int maxBatch)
    {
        _session = session;
        Config = config;
        Precision = precision;
        Source = source;
        ExecutionProvider = provider;
        _maxBatch = maxBatch;
        _classNames = Enumerable.Range(0, config.NumClasses).Select(config.ClassName).ToArray();
        Metadata = session.ModelMetadata.CustomMetadataMap;
        HasAttention = session.OutputMetadata.ContainsKey(CrateOnnxSchema.Attention(0));
        HasPatchTokens = session.OutputMetadata.ContainsKey(CrateOnnxSchema.PatchTokens);
    }

    /// <summary>The network's configuration, read from the model's metadata.</summary>
    public CrateConfig Config { get; }
    /// <summary>
    /// The precision of the trunk's matrix products, from the <c>crate.precision</c> metadata (float32 for files that
    /// predate it). With <see cref="CrateOnnxPrecision.Int8"/> each product's input is quantized over the whole batch
    /// that ONNX Runtime runs, so an image's scores can differ slightly with the batch it is scored in.
    /// </summary>
    public CrateOnnxPrecision Precision { get; }
    /// <summary>Class names, index = class id (numbers when the model has none).</summary>
    public IReadOnlyList<string> ClassNames => _classNames;
    /// <summary>All metadata properties of the file.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>The file the model came from (or <c>&lt;memory&gt;</c>).</summary>
    public string Source { get; }
    /// <summary>The execution provider actually in use (CPU after a CUDA fallback).</summary>
    public CrateExecutionProvider ExecutionProvider { get; }
    /// <summary>Whether the file has per-layer attention outputs.</summary>
    public bool HasAttention { get; }
    /// <summary>Whether the file has the patch-token output.</summary>
    public bool HasPatchTokens { get; }
    /// <summary>Floats per image, <c>C * H * W</c>.</summary>
    public int ImageLength => Config.Channels * Config.ImageHeight * Config.ImageWidth;

    /// <summary>Loads the exported model at <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="CrateOnnxException">The file is not readable ONNX, not a Crate model, or CUDA was required and is unavailable.</exception>
    public static CrateOnnxModel Load(string path, CrateOnnxOptions? options = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX model '{path}' does not exist.", path);
        return Create(options ?? new CrateOnnxOptions(), path, so => new InferenceSession(path, so));
    }

    /// <summary>Loads an exported model from bytes; <paramref name="source"/> names it in messages.</summary>
    /// <exception cref="CrateOnnxException">The bytes are not readable ONNX, not a Crate model, or CUDA was required and is unavailable.</exception>
    public static CrateOnnxModel Load(byte[] model, CrateOnnxOptions? options = null, string source = "<memory>") =>
        Create(options ?? new CrateOnnxOptions(), source, so => new InferenceSession(model, so));

    private static CrateOnnxModel Create(CrateOnnxOptions options, string source, Func<SessionOptions, InferenceSession> open)
    {
        if (options.MaxBatch < 1) throw new ArgumentOutOfRangeException(nameof(options), $"MaxBatch must be at least 1, got {options.MaxBatch}.");
        var provider = options.ExecutionProvider;
        InferenceSession session;
        using (var sessionOptions = SessionOptions(options, source, ref provider))
        {
            try
            {
                session = open(sessionOptions);
            }
            catch (OnnxRuntimeException e) when (provider == CrateExecutionProvider.Cuda)
            {
                // A GPU build can accept the provider and still fail to start it (no driver, no device). A file
                // the CPU cannot load either is a bad file, reported as such without a CUDA warning.
                using var cpu = SessionOptions(options with { ExecutionProvider = CrateExecutionProvider.Cpu }, source, ref provider);
                session = OpenOrExplain(open, cpu, source);
                try { provider = FallBack(options, source, e.Message); }
                catch { session.Dispose(); throw; }
            }
            catch (OnnxRuntimeException e)
            {
                throw NotOnnx(source, e);
            }
        }
        try
        {
            return new CrateOnnxModel(session, ReadConfig(session, source), ReadPrecision(session, source), source, provider, options.MaxBatch);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static InferenceSession OpenOrExplain(Func<SessionOptions, InferenceSession> open, SessionOptions options, string source)
    {
        try { return open(options); }
        catch (OnnxRuntimeException e) { throw NotOnnx(source, e); }
    }

    private static CrateOnnxException NotOnnx(string source, OnnxRuntimeException e) =>
        new($"'{source}' is not a readable ONNX model (truncated, corrupt or not ONNX at all): {e.Message}", e);

    private static SessionOptions SessionOptions(CrateOnnxOptions options, string source, ref CrateExecutionProvider provider)
    {
        var so = new SessionOptions { GraphOptimizationLevel = options.OptimizationLevel, IntraOpNumThreads = options.IntraOpThreads };
        if (options.OptimizedModelPath != null) so.OptimizedModelFilePath = options.OptimizedModelPath;
        provider = CrateExecutionProvider.Cpu;
        if (options.ExecutionProvider == CrateExecutionProvider.Cuda)
        {
            string? failure = null;
            try
            {
                so.AppendExecutionProvider_CUDA(options.DeviceId);
                provider = CrateExecutionProvider.Cuda;
            }
            // The CPU native package lacks the entry point; other builds report "not enabled in this build".
            catch (EntryPointNotFoundException) { failure = "the ONNX Runtime native library in use is a CPU-only build"; }
            catch (OnnxRuntimeException e) { failure = e.Message; }
            if (failure != null)
            {
                try { FallBack(options, source, failure); }
                catch { so.Dispose(); throw; }
            }
        }
        return so;
    }

    private static CrateExecutionProvider FallBack(CrateOnnxOptions options, string source, string reason)
    {
        var what = $"CUDA execution provider (device {options.DeviceId}) requested for '{source}' is unavailable: {reason.Trim().TrimEnd('.')}";
        if (!options.FallbackToCpu)
            throw new CrateOnnxException($"{what}. CPU fallback is disabled. GPU inference needs an application built with -p:CrateGpu=true (Microsoft.ML.OnnxRuntime.Gpu), CUDA 12 and cuDNN 9.");
        (options.Warning ?? Console.Error.WriteLine)($"warning: {what}. Running on the CPU instead (build with -p:CrateGpu=true for the GPU package).");
        return CrateExecutionProvider.Cpu;
    }

    private static CrateConfig ReadConfig(InferenceSession session, string source)
    {
        var meta = session.ModelMetadata.CustomMetadataMap;
        if (!meta.TryGetValue(CrateOnnxSchema.ConfigKey, out var json))
            throw new CrateOnnxException(
                $"'{source}' is an ONNX model but not a Crate model: its metadata has no '{CrateOnnxSchema.ConfigKey}' entry. " +
                "Export one with `crate export` or CrateOnnxExporter.");
        if (meta.TryGetValue(CrateOnnxSchema.FormatKey, out var format) && format != CrateOnnxSchema.FormatVersion)
            throw new CrateOnnxException(
                $"'{source}' uses Crate ONNX format {format}; this library (Crate {CrateOnnxSchema.CrateVersion}) reads format {CrateOnnxSchema.FormatVersion}.");
        CrateConfig config;
        try { config = CrateConfig.FromJson(json); }
        catch (Exception e) when (e is JsonException or ArgumentException or FormatException)
        { throw new CrateOnnxException($"'{source}' carries an unreadable Crate configuration in '{CrateOnnxSchema.ConfigKey}': {e.Message}", e); }

        long[] expected = [-1, config.Channels, config.ImageHeight, config.ImageWidth];
        if (!session.InputMetadata.TryGetValue(CrateOnnxSchema.Image, out var input) || input.ElementDataType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float ||
            !input.Dimensions.Select(d => (long)d).SequenceEqual(expected))
            throw new CrateOnnxException(
                $"'{source}' has Crate metadata but no float32 input '{CrateOnnxSchema.Image}' of shape [batch, {config.Channels}, {config.ImageHeight}, {config.ImageWidth}] " +
                $"(inputs: {string.Join(", ", session.InputMetadata.Select(kv => $"{kv.Key} [{string.Join(", ", kv.Value.Dimensions)}]"))}).");
        var missing = new[] { CrateOnnxSchema.Logits, CrateOnnxSchema.Probabilities, CrateOnnxSchema.Features }
            .Where(o => !session.OutputMetadata.ContainsKey(o)).ToList();
        if (missing.Count > 0)
            throw new CrateOnnxException($"'{source}' has Crate metadata but lacks the output(s) {string.Join(", ", missing)}.");
        return config;
    }

    private static CrateOnnxPrecision ReadPrecision(InferenceSession session, string source)
    {
        if (!session.ModelMetadata.CustomMetadataMap.TryGetValue(CrateOnnxSchema.PrecisionKey, out var name)) return CrateOnnxPrecision.Float32;
        return CrateOnnxSchema.ParsePrecision(name) ?? throw new CrateOnnxException(
            $"'{source}' declares precision '{name}' in '{CrateOnnxSchema.PrecisionKey}'; this library (Crate {CrateOnnxSchema.CrateVersion}) knows " +
            $"{string.Join(" and ", Enum.GetValues<CrateOnnxPrecision>().Select(CrateOnnxSchema.PrecisionName))}.");
    }

    /// <summary>Scores <paramref name="pixels"/>, a whole number of <c>C x H x W</c> images (row-major, values 0..255).</summary>
    /// <param name="pixels">The images back to back.</param>
    /// <param name="attention">Also return per-layer attention (the file must have been exported with it).</param>
    /// <param name="patchTokens">Also return the last layer's patch tokens (the file must have been exported with them).</param>
    /// <exception cref="ArgumentException">The length is not a whole number of images, or a pixel is NaN or infinite.</exception>
    /// <exception cref="InvalidOperationException">Attention or patch tokens were asked of a file exported without them.</exception>
    public CrateScores Score(ReadOnlyMemory<float> pixels, bool attention = false, bool patchTokens = false)
    {
        if (pixels.Length % ImageLength != 0)
            throw new ArgumentException(
                $"Crate model '{Source}': a pixel buffer of {pixels.Length} floats is not a whole number of {Config.Channels}x{Config.ImageHeight}x{Config.ImageWidth} images ({ImageLength} floats each).",
                nameof(pixels));
        return Run(pixels, pixels.Length / ImageLength, attention, patchTokens);
    }

    /// <summary>Scores <paramref name="pixels"/> laid out as <paramref name="shape"/>, which must be <c>[batch, C, H, W]</c>.</summary>
    /// <exception cref="ArgumentException">The shape is not the model's (rank, channels or image size), does not match the buffer, or a pixel is NaN or infinite.</exception>
    /// <exception cref="InvalidOperationException">Attention or patch tokens were asked of a file exported without them.</exception>
    public CrateScores Score(ReadOnlyMemory<float> pixels, ReadOnlySpan<long> shape, bool attention = false, bool patchTokens = false)
    {
        var c = Config;
        var shown = "[" + string.Join(", ", shape.ToArray()) + "]";
        var expected = $"[batch, {c.Channels}, {c.ImageHeight}, {c.ImageWidth}]";
        if (shape.Length != 4)
            throw new ArgumentException($"Crate model '{Source}' expects images of shape {expected}; got a shape of rank {shape.Length}: {shown}.", nameof(shape));
        if (shape[1] != c.Channels)
            throw new ArgumentException($"Crate model '{Source}' expects {c.Channels}-channel images; got {shape[1]} channels (shape {shown}, expected {expected}).", nameof(shape));
        if (shape[2] != c.ImageHeight || shape[3] != c.ImageWidth)
            throw new ArgumentException($"Crate model '{Source}' expects {c.ImageHeight}x{c.ImageWidth} images; got {shape[2]}x{shape[3]} (shape {shown}, expected {expected}).", nameof(shape));
        if (shape[0] < 0 || shape[0] * ImageLength != pixels.Length)
            throw new ArgumentException($"Crate model '{Source}': shape {shown} needs {shape[0] * ImageLength} floats but the buffer holds {pixels.Length}.", nameof(pixels));
        return Run(pixels, (int)shape[0], attention, patchTokens);
    }

    /// <summary>The <paramref name="topK"/> most probable classes of each image in <paramref name="pixels"/> (see <see cref="Score(ReadOnlyMemory{float}, bool, bool)"/>).</summary>
    public IReadOnlyList<CratePrediction> Predict(ReadOnlyMemory<float> pixels, int topK = 1)
    {
        if (topK < 1 || topK > Config.NumClasses)
            throw new ArgumentOutOfRangeException(nameof(topK), $"topK must be between 1 and {Config.NumClasses} (the number of classes), got {topK}.");
        var scores = Score(pixels);
        var result = new CratePrediction[scores.Count];
        for (int i = 0; i < scores.Count; i++)
        {
            var p = scores.ProbabilitiesOf(i).ToArray();
            var l = scores.LogitsOf(i).ToArray();
            var top = Enumerable.Range(0, p.Length).OrderByDescending(k => p[k]).ThenBy(k => k).Take(topK)
                .Select(k => new ClassScore(k, _classNames[k], p[k], l[k])).ToArray();
            result[i] = new CratePrediction(top);
        }
        return result;
    }

    private CrateScores Run(ReadOnlyMemory<float> pixels, int count, bool attention, bool patchTokens)
    {
        if (attention && !HasAttention)
            throw new InvalidOperationException($"Crate model '{Source}' was exported without attention maps; export it with `crate export --attention`.");
        if (patchTokens && !HasPatchTokens)
            throw new InvalidOperationException($"Crate model '{Source}' was exported without patch tokens; export it with `crate export --tokens`.");
        CheckFinite(pixels.Span);

        var c = Config;
        long tokens = c.TokenCount;
        // Each requested output: name, floats per image, the per-image shape, and the array the whole batch lands in.
        var outputs = new List<(string Name, long PerImage, long[] Shape, float[] Data)>
        {
            Output(CrateOnnxSchema.Logits, count, c.NumClasses),
            Output(CrateOnnxSchema.Probabilities, count, c.NumClasses),
            Output(CrateOnnxSchema.Features, count, c.Dim),
        };
        if (attention)
            for (int i = 0; i < c.Depth; i++) outputs.Add(Output(CrateOnnxSchema.Attention(i), count, c.Heads, tokens, tokens));
        if (patchTokens) outputs.Add(Output(CrateOnnxSchema.PatchTokens, count, c.NumPatches, c.Dim));

        var inputNames = new[] { CrateOnnxSchema.Image };
        var outputNames = outputs.Select(o => o.Name).ToArray();
        var input = MemoryMarshal.AsMemory(pixels); // ONNX Runtime only reads its inputs
        for (int start = 0; start < count; start += _maxBatch)
        {
            int n = Math.Min(_maxBatch, count - start);
            using var image = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
                input.Slice(start * ImageLength, n * ImageLength), [n, c.Channels, c.ImageHeight, c.ImageWidth]);
            var results = outputs.Select(o => OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance,
                o.Data.AsMemory((int)(start * o.PerImage), (int)(n * o.PerImage)), [n, .. o.Shape])).ToArray();
            try
            {
                _session.Run(null, inputNames, [image], outputNames, results);
            }
            finally
            {
                foreach (var r in results) r.Dispose();
            }
        }
        return new CrateScores(count, c.NumClasses, c.Dim, outputs[0].Data, outputs[1].Data, outputs[2].Data,
            attention ? outputs.Skip(3).Take(c.Depth).Select(o => o.Data).ToArray() : null,
            patchTokens ? outputs[^1].Data : null);
    }

    private static (string, long, long[], float[]) Output(string name, int count, params long[] shape)
    {
        long perImage = shape.Aggregate(1L, (a, b) => a * b);
        return (name, perImage, shape, new float[checked(count * perImage)]);
    }

    /// <summary>Rejects NaN and infinite pixels, naming the first one's image, channel, row and column.</summary>
    private void CheckFinite(ReadOnlySpan<float> pixels)
    {
        for (int i = 0; i < pixels.Length; i++)
        {
            if (float.IsFinite(pixels[i])) continue;
            var c = Config;
            int image = i / ImageLength, rest = i % ImageLength, plane = c.ImageHeight * c.ImageWidth;
            throw new ArgumentException(
                $"Crate model '{Source}': image {image} of the batch has a non-finite pixel ({(float.IsNaN(pixels[i]) ? "NaN" : pixels[i] > 0 ? "+Infinity" : "-Infinity")}) at channel {rest / plane}, " +
                $"row {rest % plane / c.ImageWidth}, column {rest % c.ImageWidth}; pixels must be finite values in [0, 255].",
                nameof(pixels));
        }
    }

    /// <summary>Releases the ONNX Runtime session. Do not dispose while another thread is scoring.</summary>
    public void Dispose() => _session.Dispose();
}
