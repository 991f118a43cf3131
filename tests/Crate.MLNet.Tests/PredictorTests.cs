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

    [Test]
    public void AnImageOfTheWrongSizeIsRefused()
    {
        using var predictor = CratePredictor.Load(Fixture.OnnxPath);
        var e = Assert.Throws<ArgumentException>(() => predictor.Predict(new byte[900]));
        Assert.That(e!.Message, Does.Contain("1x28x28").And.Contain("900"));
    }
}
