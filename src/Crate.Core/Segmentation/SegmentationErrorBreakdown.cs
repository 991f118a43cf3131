using System.Globalization;
using System.Text;

namespace Crate.Core.Segmentation;

/// <summary>
/// Splits a segmenter's errors into finding the objects and naming them, by scoring two corrected copies of each
/// prediction beside the prediction itself:
/// <list type="bullet">
/// <item><see cref="PerfectNaming"/>: the predicted foreground kept, every pixel found on a true object given that
/// object's class. Its mIoU is what the outlines alone allow: the ceiling if naming were fixed.</item>
/// <item><see cref="PerfectForeground"/>: the true foreground, every true object pixel given the segmenter's best
/// object class there (the best non-background class, even where it predicted background). Its mIoU is what the naming
/// alone allows: the ceiling if the outlines were fixed.</item>
/// </list>
/// Whichever ceiling is lower names the part to work on. Ignored pixels stay ignored in all three.
/// </summary>
public sealed class SegmentationErrorBreakdown
{
    /// <summary>Creates empty accumulators for <paramref name="numClasses"/> classes (0 = background).</summary>
    public SegmentationErrorBreakdown(int numClasses, int ignoreIndex = 255, IReadOnlyList<string>? classNames = null)
    {
        Actual = new SegmentationMetrics(numClasses, ignoreIndex, classNames);
        PerfectNaming = new SegmentationMetrics(numClasses, ignoreIndex, classNames);
        PerfectForeground = new SegmentationMetrics(numClasses, ignoreIndex, classNames);
    }

    /// <summary>Metrics of the predictions as they are.</summary>
    public SegmentationMetrics Actual { get; }
    /// <summary>Metrics with the predicted foreground and the true names (see the class remarks).</summary>
    public SegmentationMetrics PerfectNaming { get; }
    /// <summary>Metrics with the true foreground and the predicted names (see the class remarks).</summary>
    public SegmentationMetrics PerfectForeground { get; }

    /// <summary>
    /// Adds one image's (or a batch's) pixels: the ground truth, the prediction, and for every pixel the segmenter's most
    /// likely object class (1 or more; used where the truth is an object).
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ, a best object class is background, or a value is outside the classes (a best object class is checked before anything is counted).</exception>
    public void Add(ReadOnlySpan<byte> truth, ReadOnlySpan<byte> predicted, ReadOnlySpan<byte> bestObjectClass)
    {
        SegmentationMetrics.RequireSameLength(truth, predicted);
        SegmentationMetrics.RequireSameLength(truth, bestObjectClass, "the best object classes");
        var namedRight = new byte[truth.Length];
        var foundRight = new byte[truth.Length];
        for (int i = 0; i < truth.Length; i++)
        {
            if (bestObjectClass[i] == 0) throw new ArgumentException($"the best object class at pixel {i} is background (0); it must be an object class");
            if (bestObjectClass[i] >= Actual.NumClasses) throw new ArgumentException($"the best object class at pixel {i} is {bestObjectClass[i]}, outside the {Actual.NumClasses} classes");
            bool trueObject = truth[i] != 0 && truth[i] != Actual.IgnoreIndex;
            namedRight[i] = predicted[i] != 0 && trueObject ? truth[i] : predicted[i];
            foundRight[i] = trueObject ? bestObjectClass[i] : (byte)0;
        }
        Actual.Add(truth, predicted);
        PerfectNaming.Add(truth, namedRight);
        PerfectForeground.Add(truth, foundRight);
    }

    /// <summary>The actual metrics, then one line for each ceiling.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(Actual.ToString());
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"with every found pixel named right (the outlines' limit): mIoU {PerfectNaming.MeanIoU:F4}  pixel accuracy {PerfectNaming.PixelAccuracy:F4}");
        sb.AppendLine(CultureInfo.InvariantCulture,
            $"with the foreground exact (the naming's limit):           mIoU {PerfectForeground.MeanIoU:F4}  pixel accuracy {PerfectForeground.PixelAccuracy:F4}");
        return sb.ToString();
    }
}
