using System.Globalization;
using System.Text;

namespace Crate.Core.Segmentation;

/// <summary>
/// Accumulates a confusion matrix over (ground truth, prediction) pixel pairs and derives the segmentation metrics.
/// Pixels whose ground truth is the ignore index are not counted at all. All metrics are computed from the matrix
/// summed over every image added (data-set level, as PASCAL VOC does), not averaged per image.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Pixel accuracy: correctly classified counted pixels / counted pixels.</item>
/// <item>IoU of class c: TP / (TP + FP + FN); undefined (NaN) when c appears in neither ground truth nor prediction.</item>
/// <item>Mean IoU: the mean of the defined per-class IoUs, background included, i.e. over the classes present in the
/// ground truth or the prediction.</item>
/// <item>Foreground IoU: the IoU of the binary masks "class != 0" of ground truth and prediction.</item>
/// </list>
/// </remarks>
public sealed class SegmentationMetrics
{
    private readonly long[] _confusion;   // [truth * K + predicted]

    /// <summary>Creates an empty accumulator for <paramref name="numClasses"/> classes (0 = background).</summary>
    public SegmentationMetrics(int numClasses, int ignoreIndex = 255, IReadOnlyList<string>? classNames = null)
    {
        if (numClasses < 2) throw new ArgumentOutOfRangeException(nameof(numClasses), $"segmentation needs at least 2 classes (background and one object), got {numClasses}");
        if (classNames != null && classNames.Count != numClasses) throw new ArgumentException($"{classNames.Count} class names for {numClasses} classes.");
        NumClasses = numClasses;
        IgnoreIndex = ignoreIndex;
        ClassNames = classNames ?? Enumerable.Range(0, numClasses).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        _confusion = new long[numClasses * numClasses];
    }

    /// <summary>Number of classes, background included.</summary>
    public int NumClasses { get; }
    /// <summary>Ground-truth value of pixels that are not counted.</summary>
    public int IgnoreIndex { get; }
    /// <summary>Class names, index = class id.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>Pixels counted so far (ground truth not ignored).</summary>
    public long Pixels => _confusion.Sum();

    /// <summary>Pixels of true class <paramref name="truth"/> predicted as <paramref name="predicted"/>.</summary>
    public long Confusion(int truth, int predicted) => _confusion[truth * NumClasses + predicted];

    /// <summary>Adds one image's (or a batch's) ground truth and prediction, pixel for pixel.</summary>
    /// <exception cref="ArgumentException">Lengths differ, or a value is outside the classes (ground truth may also be the ignore index).</exception>
    public void Add(ReadOnlySpan<byte> truth, ReadOnlySpan<byte> predicted)
    {
        RequireSameLength(truth, predicted);
        for (int i = 0; i < truth.Length; i++)
        {
            int t = truth[i], p = predicted[i];
            if (t == IgnoreIndex) continue;
            if (t >= NumClasses) throw new ArgumentException($"ground-truth class {t} at pixel {i} is outside the {NumClasses} classes");
            if (p >= NumClasses) throw new ArgumentException($"predicted class {p} at pixel {i} is outside the {NumClasses} classes");
            _confusion[t * NumClasses + p]++;
        }
    }

    /// <summary>
    /// Throws <see cref="ArgumentException"/> unless <paramref name="perPixel"/> (named <paramref name="what"/> in the message)
    /// has a value for every ground-truth pixel.
    /// </summary>
    internal static void RequireSameLength(ReadOnlySpan<byte> truth, ReadOnlySpan<byte> perPixel, string what = "the prediction")
    {
        if (truth.Length != perPixel.Length) throw new ArgumentException($"ground truth has {truth.Length} pixels but {what} {perPixel.Length}");
    }

    /// <summary>Correct pixels / counted pixels (NaN when nothing was counted).</summary>
    public double PixelAccuracy
    {
        get
        {
            long correct = 0;
            for (int c = 0; c < NumClasses; c++) correct += Confusion(c, c);
            return Pixels == 0 ? double.NaN : (double)correct / Pixels;
        }
    }

    /// <summary>IoU of every class; NaN for classes in neither ground truth nor prediction.</summary>
    public double[] ClassIoU()
    {
        var iou = new double[NumClasses];
        for (int c = 0; c < NumClasses; c++)
        {
            long tp = Confusion(c, c), truth = 0, predicted = 0;
            for (int k = 0; k < NumClasses; k++) { truth += Confusion(c, k); predicted += Confusion(k, c); }
            long union = truth + predicted - tp;
            iou[c] = union == 0 ? double.NaN : (double)tp / union;
        }
        return iou;
    }

    /// <summary>Mean of the defined per-class IoUs (classes present in ground truth or prediction), background included.</summary>
    public double MeanIoU
    {
        get
        {
            var defined = ClassIoU().Where(v => !double.IsNaN(v)).ToArray();
            return defined.Length == 0 ? double.NaN : defined.Average();
        }
    }

    /// <summary>IoU of foreground (any class but 0) against foreground.</summary>
    public double ForegroundIoU
    {
        get
        {
            long both = 0, either = 0;
            for (int t = 0; t < NumClasses; t++)
            for (int p = 0; p < NumClasses; p++)
            {
                long n = Confusion(t, p);
                if (t != 0 && p != 0) both += n;
                if (t != 0 || p != 0) either += n;
            }
            return either == 0 ? double.NaN : (double)both / either;
        }
    }

    /// <summary>A readable report: pixel accuracy, mean and foreground IoU, then one line per class.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"pixel accuracy {PixelAccuracy:F4}  mIoU {MeanIoU:F4}  foreground IoU {ForegroundIoU:F4}  ({Pixels:N0} pixels)");
        var iou = ClassIoU();
        for (int c = 0; c < NumClasses; c++)
            sb.AppendLine(CultureInfo.InvariantCulture, $"  {c,3} {ClassNames[c],-14} IoU {(double.IsNaN(iou[c]) ? "   -  " : iou[c].ToString("F4", CultureInfo.InvariantCulture))}");
        return sb.ToString();
    }
}
