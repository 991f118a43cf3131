using Crate.Core.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Tests;

/// <summary>The chain ApplyCrateClassifier builds (the same one the trainer returns) against ONNX Runtime on the exported graph.</summary>
public class ClassifierChainTests
{
    [Test]
    public void ScoresAndPredictedLabelsEqualOnnxRuntimeOnTheExportedGraph()
    {
        var ml = new MLContext(1);
        var data = Fixture.ImageView(ml);
        var scored = ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(data).Transform(data);

        var scores = scored.GetColumn<float[]>("Score").ToArray();
        var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
        Assert.That(scores, Has.Length.EqualTo(Fixture.Images.Count));
        for (int i = 0; i < scores.Length; i++)
        {
            var expected = Fixture.Reference.ProbabilitiesOf(i).ToArray();
            Assert.That(scores[i], Is.EqualTo(expected).Within(1e-5f).AsCollection, $"row {i}");
            Assert.That(keys[i], Is.EqualTo((uint)ArgMax(expected) + 1), $"row {i}: key k+1 is class k");
        }
        var names = ml.Transforms.Conversion.MapKeyToValue("PredictedName", "PredictedLabel").Fit(scored).Transform(scored)
            .GetColumn<string>("PredictedName").ToArray();
        Assert.That(names, Is.EqualTo(keys.Select(k => IdxReader.FashionMnistClasses[(int)k - 1])));
        Assert.That(scored.Schema["Score"].Type, Is.EqualTo(new VectorDataViewType(NumberDataViewType.Single, 10)));
    }

    [Test]
    public void FloatPixelsScoreLikeBytePixels()
    {
        var ml = new MLContext(1);
        var rows = Enumerable.Range(0, 8).Select(i => new FloatRow { Image = Fixture.Images.Image(i).ToArray().Select(b => (float)b).ToArray() });
        var data = ml.Data.LoadFromEnumerable(rows);
        var scores = ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(data).Transform(data).GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < scores.Length; i++)
            Assert.That(scores[i], Is.EqualTo(Fixture.Reference.ProbabilitiesOf(i).ToArray()).Within(1e-5f).AsCollection, $"row {i}");
    }

    [Test]
    public void SavedModelLoadsAndScoresAlikeAfterTheOnnxFileIsDeleted()
    {
        var ml = new MLContext(1);
        var data = Fixture.ImageView(ml);
        var onnx = Fixture.PathOf("deleted-after-fit.onnx");
        File.Copy(Fixture.OnnxPath, onnx, overwrite: true);
        var model = ml.Transforms.ApplyCrateClassifier(onnx).Fit(data);
        File.Delete(onnx);
        var zip = Fixture.PathOf("classifier.zip");
        ml.Model.Save(model, data.Schema, zip);

        var loaded = new MLContext(2).Model.Load(zip, out var inputSchema);
        Assert.That(inputSchema["Image"].Type, Is.EqualTo(data.Schema["Image"].Type));
        var before = model.Transform(data);
        var after = loaded.Transform(data);
        Assert.That(after.GetColumn<float[]>("Score").ToArray(), Is.EqualTo(before.GetColumn<float[]>("Score").ToArray()).AsCollection);
        Assert.That(after.GetColumn<uint>("PredictedLabel").ToArray(), Is.EqualTo(before.GetColumn<uint>("PredictedLabel").ToArray()));
        var keyValues = default(VBuffer<ReadOnlyMemory<char>>);
        after.Schema["PredictedLabel"].GetKeyValues(ref keyValues);
        Assert.That(keyValues.DenseValues().Select(v => v.ToString()), Is.EqualTo(IdxReader.FashionMnistClasses));
        Assert.That(SlotNames(before.Schema["Score"]), Is.EqualTo(IdxReader.FashionMnistClasses), "Score's slots are named by class");
        Assert.That(SlotNames(after.Schema["Score"]), Is.EqualTo(IdxReader.FashionMnistClasses), "and keep their names through Save/Load");
        Assert.That(after.Schema.Select(c => c.Name).Where(n => n.StartsWith("crate.", StringComparison.Ordinal)), Is.Empty, "no intermediate column is left");
    }

    internal static string[] SlotNames(DataViewSchema.Column column)
    {
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        column.GetSlotNames(ref names);
        return names.DenseValues().Select(v => v.ToString()).ToArray();
    }

    [Test]
    public void EvaluateReportsWhatTheProbabilitiesImply()
    {
        var ml = new MLContext(1);
        var data = Fixture.ImageView(ml);
        var metrics = ml.MulticlassClassification.Evaluate(ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(data).Transform(data));

        // Independent figures from ONNX Runtime's probabilities and the IDX labels.
        int n = Fixture.Images.Count, correct = 0;
        double logLoss = 0;
        var confusion = new double[10, 10];
        for (int i = 0; i < n; i++)
        {
            var p = Fixture.Reference.ProbabilitiesOf(i).ToArray();
            int truth = Fixture.Images.Label(i), predicted = ArgMax(p);
            correct += truth == predicted ? 1 : 0;
            logLoss -= Math.Log(Math.Max(p[truth], 1e-15));
            confusion[truth, predicted]++;
        }
        Assert.That(metrics.MicroAccuracy, Is.EqualTo((double)correct / n).Within(1e-12));
        Assert.That(metrics.LogLoss, Is.EqualTo(logLoss / n).Within(1e-5));
        for (int t = 0; t < 10; t++)
            for (int p = 0; p < 10; p++)
                Assert.That(metrics.ConfusionMatrix.Counts[t][p], Is.EqualTo(confusion[t, p]), $"truth {IdxReader.FashionMnistClasses[t]}, predicted {IdxReader.FashionMnistClasses[p]}");
        // Evaluate names the classes from Score's slot names: the confusion table is labelled with them, not with 0..9.
        var table = metrics.ConfusionMatrix.GetFormattedConfusionTable();
        Assert.That(IdxReader.FashionMnistClasses, Has.All.Matches<string>(name => table.Contains(name, StringComparison.Ordinal)), table);
    }

    [Test]
    public void TheContextsGpuSettingsReachOnnxRuntime()
    {
        // This build has ONNX Runtime's CPU package only: asking for CUDA without fallback must fail, with fallback must score.
        var data = Fixture.ImageView(new MLContext(1));
        var strict = new MLContext(1) { GpuDeviceId = 0, FallbackToCpu = false };
        Assert.That(() => strict.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(data),
            Throws.TypeOf<Crate.Onnx.Runtime.CrateOnnxException>().With.Message.Contains("CUDA").And.Message.Contains("fallback is disabled"));

        var lenient = new MLContext(1) { GpuDeviceId = 0, FallbackToCpu = true };
        var warnings = new List<string>();
        lenient.Log += (_, e) => { if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) warnings.Add(e.Message); };
        var scores = lenient.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(data).Transform(data).GetColumn<float[]>("Score").First();
        Assert.That(scores, Is.EqualTo(Fixture.Reference.ProbabilitiesOf(0).ToArray()).Within(1e-5f).AsCollection);
        Assert.That(warnings, Has.Some.Contains("CUDA").And.Some.Contains("CPU"), "one warning on the context's log");
    }

    [Test]
    public void TheOutputSchemaShapeIsWhatFitProduces()
    {
        var ml = new MLContext(1);
        var data = Fixture.ImageView(ml);
        var estimator = ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath);
        var shape = estimator.GetOutputSchema(BadInputTests.ShapeOf(data.Schema));
        var schema = estimator.Fit(data).Transform(data).Schema;
        foreach (var name in new[] { "Score", "PredictedLabel" })
        {
            var expected = BadInputTests.ShapeOf(schema).Single(c => c.Name == name);
            var actual = shape.Single(c => c.Name == name);
            Assert.That((actual.Kind, actual.ItemType, actual.IsKey), Is.EqualTo((expected.Kind, expected.ItemType, expected.IsKey)), name);
        }
        Assert.That(shape.Single(c => c.Name == "PredictedLabel").Annotations.Select(a => a.Name), Does.Contain("KeyValues"));
    }

    internal static int ArgMax(float[] p) => Array.IndexOf(p, p.Max());

    private sealed class FloatRow
    {
        [VectorType(1, 28, 28)]
        public float[] Image = [];
    }
}
