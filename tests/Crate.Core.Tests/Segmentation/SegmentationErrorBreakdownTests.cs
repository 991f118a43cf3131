using Crate.Core.Segmentation;

namespace Crate.Core.Tests.Segmentation;

public class SegmentationErrorBreakdownTests
{
    [Test]
    public void HandComputedCeilingsForOutlinesAndNaming()
    {
        // pixel:      0  1  2  3  4  5    6
        // truth:      0  1  1  2  2  255  0
        // predicted:  1  1  0  1  2  2    0
        // best obj.:  1  1  1  1  2  1    1
        var b = new SegmentationErrorBreakdown(3);
        b.Add([0, 1, 1, 2, 2, 255, 0], [1, 1, 0, 1, 2, 2, 0], [1, 1, 1, 1, 2, 1, 1]);

        // Actual: c0 TP 1 (6), FP 1 (2), FN 1 (0) -> 1/3; c1 TP 1, FP 2 (0, 3), FN 1 (2) -> 1/4; c2 TP 1, FN 1 (3) -> 1/2.
        Assert.That(b.Actual.ClassIoU(), Is.EqualTo(new[] { 1.0 / 3, 0.25, 0.5 }).Within(1e-12));
        Assert.That(b.Actual.PixelAccuracy, Is.EqualTo(3.0 / 6).Within(1e-12));

        // Perfect naming: found pixels on objects take the true class -> 1 1 0 2 2 _ 0. Pixel 0 stays a false object,
        // pixel 2 stays missed. c0 TP 1, FP 1, FN 1 -> 1/3; c1 TP 1, FP 1, FN 1 -> 1/3; c2 TP 2 -> 1.
        Assert.That(b.PerfectNaming.ClassIoU(), Is.EqualTo(new[] { 1.0 / 3, 1.0 / 3, 1.0 }).Within(1e-12));
        Assert.That(b.PerfectNaming.MeanIoU, Is.EqualTo(5.0 / 9).Within(1e-12));
        Assert.That(b.PerfectNaming.PixelAccuracy, Is.EqualTo(4.0 / 6).Within(1e-12));

        // Perfect foreground: true objects take the best object class, the rest background -> 0 1 1 1 2 _ 0.
        // c0 TP 2 -> 1; c1 TP 2, FP 1 (3) -> 2/3; c2 TP 1, FN 1 (3) -> 1/2.
        Assert.That(b.PerfectForeground.ClassIoU(), Is.EqualTo(new[] { 1.0, 2.0 / 3, 0.5 }).Within(1e-12));
        Assert.That(b.PerfectForeground.MeanIoU, Is.EqualTo(13.0 / 18).Within(1e-12));
        Assert.That(b.PerfectForeground.ForegroundIoU, Is.EqualTo(1.0).Within(1e-12));

        Assert.That(b.ToString(), Does.Contain("the outlines' limit): mIoU 0.5556").And.Contain("the naming's limit):").And.Contain("mIoU 0.7222"));
    }

    [Test]
    public void ABackgroundBestObjectClassIsRefusedWithItsPixel()
    {
        var b = new SegmentationErrorBreakdown(3);
        var error = Assert.Throws<ArgumentException>(() => b.Add([0, 1], [0, 1], [1, 0]));
        Assert.That(error!.Message, Is.EqualTo("the best object class at pixel 1 is background (0); it must be an object class"));
        Assert.That(b.Actual.Pixels, Is.EqualTo(0), "nothing is counted from a refused batch");
    }

    [Test]
    public void MismatchedLengthsAreRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => new SegmentationErrorBreakdown(3).Add([0, 1, 2], [0, 1, 2], [1, 1]));
        Assert.That(error!.Message, Is.EqualTo("ground truth has 3 pixels but the best object classes 2"));
        error = Assert.Throws<ArgumentException>(() => new SegmentationErrorBreakdown(3).Add([0, 1, 2], [0, 1], [1, 1, 1]));
        Assert.That(error!.Message, Is.EqualTo("ground truth has 3 pixels but the prediction 2"));
    }

    [Test]
    public void ABestObjectClassOutsideTheClassesIsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => new SegmentationErrorBreakdown(3).Add([0, 1], [0, 1], [1, 3]));
        Assert.That(error!.Message, Is.EqualTo("the best object class at pixel 1 is 3, outside the 3 classes"));
    }
}
