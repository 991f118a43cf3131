namespace Crate.MLNet.Tests;

public class PredictorTests
{
    [Test]
    public void ConcurrentPredictionsEqualTheBatchedReference()
    {
        using var predictor = CratePredictor.Load(Fixture.OnnxPath);
        var results = new CrateImagePrediction[Fixture.Images.Count];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => results[i] = predictor.Predict(Fixture.Images.Image(i)));
        for (int i = 0; i < results.Length; i++)
        {
            var expected = Fixture.Reference.ProbabilitiesOf(i).ToArray();
            Assert.That(results[i].Score, Is.EqualTo(expected).Within(1e-5f).AsCollection, $"image {i}");
            Assert.That(results[i].ClassIndex, Is.EqualTo(ClassifierChainTests.ArgMax(expected)));
            Assert.That(results[i].PredictedLabel, Is.EqualTo(Fixture.Config.ClassNames[results[i].ClassIndex]));
        }
        var batch = predictor.PredictBatch(Fixture.Pixels(Fixture.Images).AsSpan(0, 3 * predictor.ImageLength));
        Assert.That(batch.Select(p => p.ClassIndex), Is.EqualTo(results.Take(3).Select(p => p.ClassIndex)));
    }

    [TestCase(float.NaN, "NaN")]
    [TestCase(float.PositiveInfinity, "+Infinity")]
    [TestCase(float.NegativeInfinity, "-Infinity")]
    public void ANonFinitePixelIsLocatedAndNothingIsPredicted(float value, string named)
    {
        using var predictor = CratePredictor.Load(Fixture.OnnxPath);
        var pixels = Fixture.Pixels(Fixture.Images).AsSpan(0, 2 * predictor.ImageLength).ToArray();
        pixels[predictor.ImageLength + 3 * 28 + 5] = value;   // image 1, row 3, column 5
        var e = Assert.Throws<ArgumentException>(() => predictor.PredictBatch(pixels))!;
        Assert.That(e.Message, Does.StartWith(
            $"Crate model '{Fixture.OnnxPath}': image 1 of the batch has a non-finite pixel ({named}) at channel 0, row 3, column 5; pixels must be finite values in [0, 255]."));
        Assert.That(() => predictor.Predict(pixels.AsSpan(predictor.ImageLength)), Throws.ArgumentException.With.Message.Contains($"image 0 of the batch has a non-finite pixel ({named})"));
    }

    [Test]
    public void AnImageOfTheWrongSizeIsRefused()
    {
        using var predictor = CratePredictor.Load(Fixture.OnnxPath);
        var e = Assert.Throws<ArgumentException>(() => predictor.Predict(new byte[900]));
        Assert.That(e!.Message, Does.Contain("1x28x28").And.Contain("900"));
    }
}
