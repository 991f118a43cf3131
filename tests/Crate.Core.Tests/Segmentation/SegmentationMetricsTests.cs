using Crate.Core.Segmentation;

namespace Crate.Core.Tests.Segmentation;

public class SegmentationMetricsTests
{
    [Test]
    public void HandComputedThreeClassCase()
    {
        // truth:     0 0 1 1 | 2 2 255 0
        // predicted: 0 1 1 1 | 2 0 2   0
        // counted pixels 7 (one ignored); correct: 0,1,1,2,0 -> 5; per class:
        // c0: TP 2 (pix 0,7), FP 1 (pix 5), FN 1 (pix 1) -> 2/4;  c1: TP 2, FP 1, FN 0 -> 2/3;  c2: TP 1, FP 0, FN 1 -> 1/2.
        var m = new SegmentationMetrics(3);
        m.Add([0, 0, 1, 1], [0, 1, 1, 1]);
        m.Add([2, 2, 255, 0], [2, 0, 2, 0]);
        Assert.That(m.Pixels, Is.EqualTo(7));
        Assert.That(m.PixelAccuracy, Is.EqualTo(5.0 / 7).Within(1e-12));
        Assert.That(m.ClassIoU(), Is.EqualTo(new[] { 0.5, 2.0 / 3, 0.5 }).Within(1e-12));
        Assert.That(m.MeanIoU, Is.EqualTo((0.5 + 2.0 / 3 + 0.5) / 3).Within(1e-12));
        // foreground: truth fg pixels {2,3,4,5}, predicted fg {1,2,3,4} (pixel 6 ignored) -> intersection 3, union 5.
        Assert.That(m.ForegroundIoU, Is.EqualTo(3.0 / 5).Within(1e-12));
    }

    [Test]
    public void ClassesAbsentFromBothSidesAreLeftOutOfTheMean()
    {
        var m = new SegmentationMetrics(4);
        m.Add([0, 0, 3, 3], [0, 3, 3, 3]);
        var iou = m.ClassIoU();
        Assert.That(double.IsNaN(iou[1]) && double.IsNaN(iou[2]));
        Assert.That(iou[0], Is.EqualTo(0.5).Within(1e-12));
        Assert.That(iou[3], Is.EqualTo(2.0 / 3).Within(1e-12));
        Assert.That(m.MeanIoU, Is.EqualTo((0.5 + 2.0 / 3) / 2).Within(1e-12));
    }

    [Test]
    public void AllBackgroundPredictorScoresOnlyBackground()
    {
        var m = new SegmentationMetrics(3);
        m.Add([0, 0, 0, 1, 2, 0], [0, 0, 0, 0, 0, 0]);
        Assert.That(m.ClassIoU()[0], Is.EqualTo(4.0 / 6).Within(1e-12));
        Assert.That(m.MeanIoU, Is.EqualTo((4.0 / 6) / 3).Within(1e-12), "classes 1 and 2 are in the truth: IoU 0 each");
        Assert.That(m.ForegroundIoU, Is.EqualTo(0));
    }

    [Test]
    public void OutOfRangeValuesAreRejected()
    {
        var m = new SegmentationMetrics(3);
        Assert.That(() => m.Add([0, 5], [0, 0]), Throws.ArgumentException.With.Message.Contains("ground-truth class 5"));
        Assert.That(() => m.Add([0, 1], [0, 3]), Throws.ArgumentException.With.Message.Contains("predicted class 3"));
        Assert.That(() => m.Add([0], [0, 1]), Throws.ArgumentException);
    }
}
