namespace Crate.MLNet.Internal;

internal static class Classes
{
    /// <summary>The first index of the largest value: ONNX ArgMax's rule, so batched and row-by-row scoring break ties alike.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int k = 1; k < values.Length; k++) if (values[k] > values[best]) best = k;
        return best;
    }
}
