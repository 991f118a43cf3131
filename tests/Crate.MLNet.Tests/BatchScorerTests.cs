using Crate.Core.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Tests;

public class BatchScorerTests
{
    [TestCase(7)]
    [TestCase(64)]
    [TestCase(200)]
    public void BatchedScoresEqualTheRowByRowChain(int batchSize)
    {
        var ml = new MLContext(1);
        var data = Fixture.ImageView(ml);
        var perRow = ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(data).Transform(data);
        using var scorer = new CrateBatchScorer(Fixture.OnnxPath, new CrateBatchScorer.Options { BatchSize = batchSize, FeaturesColumnName = "Features" });
        var batched = scorer.Transform(data);

        var expectedScores = perRow.GetColumn<float[]>("Score").ToArray();
        var scores = batched.GetColumn<float[]>("Score").ToArray();
        Assert.That(scores, Has.Length.EqualTo(expectedScores.Length));
        for (int i = 0; i < scores.Length; i++)
            Assert.That(scores[i], Is.EqualTo(expectedScores[i]).Within(1e-5f).AsCollection, $"row {i}");
        Assert.That(batched.GetColumn<uint>("PredictedLabel").ToArray(), Is.EqualTo(perRow.GetColumn<uint>("PredictedLabel").ToArray()));
        var features = batched.GetColumn<float[]>("Features").ToArray();
        Assert.That(features[^1], Is.EqualTo(Fixture.Reference.FeaturesOf(features.Length - 1).ToArray()).Within(1e-4f).AsCollection);
        // Input columns pass through row for row.
        Assert.That(batched.GetColumn<uint>("Label").ToArray(), Is.EqualTo(data.GetColumn<uint>("Label").ToArray()));
        Assert.That(batched.GetColumn<byte[]>("Image").Skip(50).First(), Is.EqualTo(Fixture.Images.Image(50).ToArray()));
    }

    [Test]
    public void EvaluateOnBatchedOutputNamesTheClasses()
    {
        var ml = new MLContext(1);
        var data = Fixture.ImageView(ml);
        using var scorer = new CrateBatchScorer(Fixture.OnnxPath);
        var scored = scorer.Transform(data);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        var expected = ml.MulticlassClassification.Evaluate(ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(data).Transform(data));
        Assert.That(metrics.MicroAccuracy, Is.EqualTo(expected.MicroAccuracy));
        Assert.That(metrics.LogLoss, Is.EqualTo(expected.LogLoss).Within(1e-5));
        var table = metrics.ConfusionMatrix.GetFormattedConfusionTable();
        foreach (var name in IdxReader.FashionMnistClasses.Take(3)) Assert.That(table, Does.Contain(name));
    }

    [Test]
    public void ANonFinitePixelIsNamedWithItsRowAndColumn()
    {
        var ml = new MLContext(1);
        var rows = Enumerable.Range(0, 10).Select(i => new FloatImage { Image = Enumerable.Repeat(i == 7 ? 1f : 10f, 784).ToArray() }).ToArray();
        rows[7].Image[100] = float.NaN;
        using var scorer = new CrateBatchScorer(Fixture.OnnxPath, new CrateBatchScorer.Options { BatchSize = 4 });
        var scored = scorer.Transform(ml.Data.LoadFromEnumerable(rows));
        var e = Assert.Throws<ArgumentException>(() => scored.GetColumn<float[]>("Score").ToArray())!;
        Assert.That(e.Message, Is.EqualTo("The image column 'Image', row 7, value 100: pixel NaN is not finite; pixels must be finite values in [0, 255]."));
    }

    private sealed class FloatImage
    {
        [VectorType(1, 28, 28)] public float[] Image = [];
    }

    [Test]
    public void ReadingOnlyInputColumnsScoresNothing()
    {
        var ml = new MLContext(1);
        using var scorer = new CrateBatchScorer(Fixture.OnnxPath);
        var scored = scorer.Transform(Fixture.ImageView(ml));
        using var cursor = scored.GetRowCursor([scored.Schema["Label"]]);
        int rows = 0;
        while (cursor.MoveNext()) rows++;
        Assert.That(rows, Is.EqualTo(Fixture.Images.Count));
        Assert.That(cursor.IsColumnActive(scored.Schema["Score"]), Is.False);
    }
}
