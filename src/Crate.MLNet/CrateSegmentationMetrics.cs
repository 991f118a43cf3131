using Crate.Core.Segmentation;

namespace Crate.MLNet;

/// <summary>
/// The result of <see cref="SegmentationCatalog.Evaluate(Microsoft.ML.IDataView, IReadOnlyList{string}, string, string)"/>: segmentation metrics over a
/// whole data set, from one confusion matrix (Crate's <see cref="SegmentationMetrics"/>). <see cref="ToString"/> prints them all.
/// </summary>
public sealed class CrateSegmentationMetrics
{
    internal CrateSegmentationMetrics(SegmentationMetrics metrics)
    {
        Details = metrics;
        var iou = metrics.ClassIoU();
        PerClassIoU = metrics.ClassNames.Select((name, k) => (name, k)).ToDictionary(c => c.name, c => iou[c.k], StringComparer.Ordinal);
    }

    /// <summary>Correctly classified pixels / counted pixels (those whose true id is not 255).</summary>
    public double PixelAccuracy => Details.PixelAccuracy;
    /// <summary>Mean of the per-class IoUs of the classes present in the true or the predicted masks, background included.</summary>
    public double MeanIoU => Details.MeanIoU;
    /// <summary>IoU of "any class but background" against the same in the prediction.</summary>
    public double ForegroundIoU => Details.ForegroundIoU;
    /// <summary>IoU of every class by class name (enumerated in class-id order); NaN for a class in neither the true nor the predicted masks.</summary>
    public IReadOnlyDictionary<string, double> PerClassIoU { get; }
    /// <summary>Pixels counted.</summary>
    public long Pixels => Details.Pixels;
    /// <summary>The confusion matrix behind the figures (<see cref="SegmentationMetrics.Confusion"/>).</summary>
    public SegmentationMetrics Details { get; }

    /// <summary>Pixel accuracy, mean and foreground IoU, then one line per class.</summary>
    public override string ToString() => Details.ToString();
}
