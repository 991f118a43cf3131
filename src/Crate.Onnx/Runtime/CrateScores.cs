namespace Crate.Onnx.Runtime;

/// <summary>
/// Everything a Crate model computed for a batch, as row-major float arrays (image <c>i</c>'s row starts at
/// <c>i * width</c>). See <see cref="CrateOnnxSchema"/> for what each output means.
/// </summary>
public sealed class CrateScores
{
    internal CrateScores(int count, int classes, int dim, float[] logits, float[] probabilities, float[] features,
        IReadOnlyList<float[]>? attention, float[]? patchTokens)
    {
        Count = count; Classes = classes; Dim = dim;
        Logits = logits; Probabilities = probabilities; Features = features;
        Attention = attention; PatchTokens = patchTokens;
    }

    /// <summary>Number of images scored.</summary>
    public int Count { get; }
    /// <summary>Number of classes (row width of <see cref="Logits"/> and <see cref="Probabilities"/>).</summary>
    public int Classes { get; }
    /// <summary>Token width (row width of <see cref="Features"/>).</summary>
    public int Dim { get; }
    /// <summary>Logits, <c>[Count, Classes]</c>.</summary>
    public float[] Logits { get; }
    /// <summary>Softmax probabilities, <c>[Count, Classes]</c>.</summary>
    public float[] Probabilities { get; }
    /// <summary>Pooled features before the head's LayerNorm, <c>[Count, Dim]</c>.</summary>
    public float[] Features { get; }
    /// <summary>Per layer, MSSA attention <c>[Count, heads, T, T]</c>; null unless requested.</summary>
    public IReadOnlyList<float[]>? Attention { get; }
    /// <summary>Last-layer patch tokens <c>[Count, patches, Dim]</c>; null unless requested.</summary>
    public float[]? PatchTokens { get; }

    /// <summary>The logits of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> LogitsOf(int index) => Logits.AsSpan(Row(index, Classes), Classes);
    /// <summary>The probabilities of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> ProbabilitiesOf(int index) => Probabilities.AsSpan(Row(index, Classes), Classes);
    /// <summary>The features of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> FeaturesOf(int index) => Features.AsSpan(Row(index, Dim), Dim);

    private int Row(int index, int width) =>
        (uint)index < (uint)Count ? index * width : throw new ArgumentOutOfRangeException(nameof(index), $"Image index {index} is outside the batch of {Count}.");
}

/// <summary>One class's score for one image.</summary>
/// <param name="ClassId">Class index.</param>
/// <param name="Label">Class name from the model's metadata.</param>
/// <param name="Probability">Softmax probability.</param>
/// <param name="Logit">Raw logit.</param>
public sealed record ClassScore(int ClassId, string Label, float Probability, float Logit)
{
    /// <summary>"label (id) 97.1%".</summary>
    public override string ToString() => $"{Label} ({ClassId}) {Probability:P1}";
}

/// <summary>The top classes of one image, most probable first.</summary>
/// <param name="Top">The <c>k</c> best classes, most probable first.</param>
public sealed record CratePrediction(IReadOnlyList<ClassScore> Top)
{
    /// <summary>The most probable class.</summary>
    public ClassScore Best => Top[0];
}
