using System.Buffers;
using Crate.Core.Model;
using Crate.MLNet.Internal;
using Crate.Onnx.Runtime;

namespace Crate.MLNet;

/// <summary>One image's classification: the class, its name and every class's probability.</summary>
/// <param name="PredictedLabel">The most probable class's name.</param>
/// <param name="ClassIndex">Its index (0-based, the model's class order; ML.NET's key value is this + 1).</param>
/// <param name="Score">The probability of each class, in class order.</param>
public sealed record CrateImagePrediction(string PredictedLabel, int ClassIndex, float[] Score)
{
    /// <summary>The probability of <see cref="PredictedLabel"/>.</summary>
    public float Probability => Score[ClassIndex];
}

/// <summary>
/// Thread-safe image classification for services: every thread calls <see cref="Predict(ReadOnlySpan{byte})"/> on one instance
/// at once, with no locks. All calls share one ONNX Runtime session (whose <c>Run</c> is thread-safe); the float buffer a call
/// needs comes from a shared pool.
/// </summary>
/// <remarks>
/// ML.NET's <c>PredictionEngine</c> is not thread-safe (services pool engines); this needs no pool. Pixels are raw values 0..255,
/// channel-major <c>[C, H, W]</c> at the model's size, as in the trained pipeline's pixel column. Scores equal the saved ML.NET
/// chain's (same network, same preprocessing inside the graph).
/// </remarks>
public sealed class CratePredictor : IDisposable
{
    private readonly CrateOnnxModel _model;

    private CratePredictor(CrateOnnxModel model) => _model = model;

    /// <summary>Loads an exported Crate ONNX model.</summary>
    /// <exception cref="FileNotFoundException">No file there.</exception>
    /// <exception cref="CrateOnnxException">The file is not a Crate ONNX model.</exception>
    public static CratePredictor Load(string modelFile, CrateOnnxOptions? options = null) => new(CrateOnnxModel.Load(modelFile, options));

    /// <summary>The model's configuration (input size, classes).</summary>
    public CrateConfig Config => _model.Config;
    /// <summary>Class names, index = class.</summary>
    public IReadOnlyList<string> ClassNames => _model.ClassNames;
    /// <summary>Pixel values per image, <c>C * H * W</c>.</summary>
    public int ImageLength => _model.ImageLength;

    /// <summary>Classifies one image of bytes.</summary>
    /// <exception cref="ArgumentException">The span is not one image of the model's size.</exception>
    public CrateImagePrediction Predict(ReadOnlySpan<byte> pixels)
    {
        CheckOne(pixels.Length);
        return PredictBatch(pixels)[0];
    }

    /// <summary>Classifies one image of float pixels (0..255).</summary>
    /// <exception cref="ArgumentException">The span is not one image of the model's size, or a value is not finite.</exception>
    public CrateImagePrediction Predict(ReadOnlySpan<float> pixels)
    {
        CheckOne(pixels.Length);
        return PredictBatch(pixels)[0];
    }

    /// <summary>Classifies several images of bytes laid back to back (one ONNX Runtime call).</summary>
    /// <exception cref="ArgumentException">The length is not a whole number of images.</exception>
    public IReadOnlyList<CrateImagePrediction> PredictBatch(ReadOnlySpan<byte> pixels)
    {
        var buffer = ArrayPool<float>.Shared.Rent(pixels.Length);
        try
        {
            for (int i = 0; i < pixels.Length; i++) buffer[i] = pixels[i];
            return Run(buffer.AsMemory(0, pixels.Length));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }

    /// <summary>Classifies several images of float pixels laid back to back (one ONNX Runtime call).</summary>
    /// <exception cref="ArgumentException">The length is not a whole number of images, or a value is not finite.</exception>
    public IReadOnlyList<CrateImagePrediction> PredictBatch(ReadOnlySpan<float> pixels)
    {
        var buffer = ArrayPool<float>.Shared.Rent(pixels.Length);
        try
        {
            pixels.CopyTo(buffer);
            return Run(buffer.AsMemory(0, pixels.Length));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(buffer);
        }
    }

    private CrateImagePrediction[] Run(ReadOnlyMemory<float> pixels)
    {
        var scores = _model.Score(pixels);
        var result = new CrateImagePrediction[scores.Count];
        for (int i = 0; i < scores.Count; i++)
        {
            var p = scores.ProbabilitiesOf(i);
            int best = Classes.ArgMax(p);
            result[i] = new CrateImagePrediction(_model.ClassNames[best], best, p.ToArray());
        }
        return result;
    }

    private void CheckOne(int length)
    {
        var c = Config;
        if (length != ImageLength)
            throw new ArgumentException($"One image for this model is {c.Channels}x{c.ImageHeight}x{c.ImageWidth} = {ImageLength} values; got {length}.", "pixels");
    }

    /// <summary>Releases the ONNX Runtime session. Do not dispose while other threads are predicting.</summary>
    public void Dispose() => _model.Dispose();
}
