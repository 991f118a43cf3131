using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Tests;

public class FeaturizerTests
{
    [Test]
    public void FeaturesEqualTheOnnxFeaturesOutputAndSurviveSaveAndLoad()
    {
        var ml = new MLContext(1);
        var data = Fixture.ImageView(ml);
        var model = ml.Transforms.ApplyCrateFeaturizer(Fixture.OnnxPath).Fit(data);
        var featurized = model.Transform(data);
        Assert.That(featurized.Schema["Features"].Type, Is.EqualTo(new VectorDataViewType(NumberDataViewType.Single, Fixture.Config.Dim)));

        var features = featurized.GetColumn<float[]>("Features").ToArray();
        for (int i = 0; i < features.Length; i++)
            Assert.That(features[i], Is.EqualTo(Fixture.Reference.FeaturesOf(i).ToArray()).Within(1e-4f).AsCollection, $"row {i}");

        var zip = Fixture.PathOf("featurizer.zip");
        ml.Model.Save(model, data.Schema, zip);
        var reloaded = new MLContext(3).Model.Load(zip, out _).Transform(data).GetColumn<float[]>("Features").ToArray();
        Assert.That(reloaded, Is.EqualTo(features).AsCollection);
    }

    [Test]
    public void FeaturesFeedAnMLNetTrainer()
    {
        var ml = new MLContext(1);
        var data = Fixture.ImageView(ml);
        var pipeline = ml.Transforms.ApplyCrateFeaturizer(Fixture.OnnxPath, outputColumnName: "CrateFeatures")
            .Append(ml.Transforms.NormalizeMinMax("Features", "CrateFeatures"))
            .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy(maximumNumberOfIterations: 5));
        var scored = pipeline.Fit(data).Transform(data);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.That(metrics.ConfusionMatrix.Counts.Sum(r => r.Sum()), Is.EqualTo(Fixture.Images.Count));
        Assert.That(((VectorDataViewType)scored.Schema["Score"].Type).Size, Is.EqualTo(10));
    }
}
