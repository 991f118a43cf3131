using Crate.Training;

namespace Crate.Training.Tests.Training;

public class ScheduleTests
{
    [Test]
    public void Warmup_is_linear_then_cosine_reaches_the_minimum()
    {
        var s = new LearningRateSchedule(1e-3, 1e-5, WarmupSteps: 10, TotalSteps: 110);
        Assert.Multiple(() =>
        {
            Assert.That(s.At(0), Is.EqualTo(1e-4).Within(1e-15));           // 1e-3 * 1/10
            Assert.That(s.At(4), Is.EqualTo(5e-4).Within(1e-15));           // 1e-3 * 5/10
            Assert.That(s.At(9), Is.EqualTo(1e-3).Within(1e-15));           // warm-up ends at the peak
            Assert.That(s.At(10), Is.EqualTo(1e-3).Within(1e-15));          // cosine starts at the peak
            Assert.That(s.At(35), Is.EqualTo(1e-5 + 0.99e-3 * 0.5 * (1 + Math.Sqrt(0.5))).Within(1e-15)); // a quarter: cos(pi/4)
            Assert.That(s.At(60), Is.EqualTo(1e-5 + 0.99e-3 * 0.5).Within(1e-15));  // half way: cos(pi/2) = 0
            Assert.That(s.At(110), Is.EqualTo(1e-5).Within(1e-15));
            Assert.That(s.At(500), Is.EqualTo(1e-5).Within(1e-15));         // clamped after the end
        });
    }

    [Test]
    public void No_warmup_starts_at_the_peak()
    {
        var s = new LearningRateSchedule(0.1, 0, WarmupSteps: 0, TotalSteps: 4);
        Assert.That(Enumerable.Range(0, 5).Select(i => s.At(i)),
            Is.EqualTo(new[] { 0.1, 0.1 * 0.5 * (1 + Math.Sqrt(0.5)), 0.05, 0.1 * 0.5 * (1 - Math.Sqrt(0.5)), 0 }).Within(1e-15));
    }
}
