namespace Crate.Training.Data;

/// <summary>
/// A small counter-based random source (SplitMix64). Every random choice in the data path is drawn from a
/// generator keyed by (seed, epoch, image), so an epoch's batches are the same whatever thread prepares them
/// and a resumed run needs no stored generator state.
/// </summary>
public struct SeededRandom
{
    private ulong _state;

    /// <summary>A generator whose sequence is determined by <paramref name="keys"/>.</summary>
    public SeededRandom(params ReadOnlySpan<long> keys)
    {
        ulong state = 0x9E3779B97F4A7C15UL;
        foreach (var key in keys) state = Mix(state ^ (ulong)key);
        _state = state;
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A uniform integer in [0, <paramref name="bound"/>).</summary>
    public int Next(int bound) => (int)((NextUInt64() >> 32) * (ulong)bound >> 32);

    /// <summary>A uniform integer in [<paramref name="min"/>, <paramref name="max"/>] (inclusive).</summary>
    public int Next(int min, int max) => min + Next(max - min + 1);

    /// <summary>Fisher-Yates shuffle of <paramref name="items"/>.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
