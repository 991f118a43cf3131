using Crate.Core.Data;

namespace Crate.Training.Tests.Analysis;

/// <summary>Images for the white-box tests (shared with Crate.Reports.Tests, which links this file).</summary>
internal static class TestImages
{
    /// <summary>Random 8x8 grey images, labels cycling over 3 classes.</summary>
    public static ImageDataset Random(int count, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[count * 64];
        random.NextBytes(pixels);
        return new ImageDataset("random", 1, 8, 8, pixels, Enumerable.Range(0, count).Select(i => i % 3).ToArray(), ["a", "b", "c"]);
    }
}
