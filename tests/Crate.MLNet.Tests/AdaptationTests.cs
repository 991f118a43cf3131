using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using Crate.Training;
using Crate.Training.Adaptation;
using Crate.Training.Model;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Tests;

/// <summary>The trainer adapting a saved weights file: what stays frozen, what it predicts, and that prompts travel in the exported network.</summary>
public class AdaptationTests
{
    private static string _weightsPath = "";
    private static readonly ImageDataset Train = GeneratedShapes.Create(1000, seed: 3);
    private static readonly ImageDataset Test = GeneratedShapes.Create(300, seed: 4);

    /// <summary>
    /// A small trunk pretrained on generated shapes under other class names ("p0".."p9"), so the adapted classifier's head is new
    /// (the classes differ by name) and has to learn from the frozen features.
    /// </summary>
    [OneTimeSetUp]
    public void Pretrain()
    {
        var shapes = GeneratedShapes.Create(2400, seed: 1);
        var renamed = new ImageDataset("pretraining", 1, 28, 28, Enumerable.Range(0, shapes.Count).SelectMany(i => shapes.Image(i).ToArray()).ToArray(),
            shapes.Labels.ToArray(), Enumerable.Range(0, 10).Select(i => $"p{i}").ToArray());
        var trunk = CratePresets.Mini with { Dim = 64, Depth = 2, Heads = 4, DimHead = 16 };
        var result = new CrateTrainer(new TrainerOptions
        {
            Epochs = 6, BatchSize = 50, LearningRate = 2e-3, WarmupEpochs = 0.5, ValidationFraction = 0, Seed = 7, Threads = 2,
        }).Train(trunk, renamed);
        using var model = (CrateModel)result.Model;
        _weightsPath = Fixture.PathOf("pretrained.safetensors");
        model.SaveWeights(_weightsPath);
    }

    private static IDataView View(MLContext ml, ImageDataset images)
    {
        var raw = ml.Data.LoadFromImageDataset(images);
        return ml.Transforms.Conversion.MapValueToKey("Label", keyData: ml.Data.LoadFromEnumerable(
            GeneratedShapes.ClassNames.Select(n => new Fixture.ClassName { Label = n }))).Fit(raw).Transform(raw);
    }

    private static CrateImageClassificationTrainer.Options Adapt(AdaptationMethod method, string onnxPath) => new()
    {
        InitialWeightsPath = _weightsPath, Adaptation = method, PromptTokens = 4,
        Epochs = 4, BatchSize = 50, LearningRate = 1e-2, WarmupEpochs = 0, ValidationFraction = 0, Threads = 2, Seed = 5, OnnxModelPath = onnxPath,
    };

    [Test]
    public void ALinearProbeFromAWeightsFileKeepsItsTrunkAndPredictsWellAboveChance()
    {
        var ml = new MLContext(1);
        var onnx = Fixture.PathOf("probe.onnx");
        var model = ml.MulticlassClassification.Trainers.Crate(Adapt(AdaptationMethod.LinearProbe, onnx)).Fit(View(ml, Train));

        // The trunk computes exactly what the file's trunk computes: the pooled features (before the head) of the exported probe equal
        // those of the file exported as it is; only the head differs.
        var initial = CrateWeights.Load(_weightsPath);
        using var probe = CrateOnnxModel.Load(onnx);
        using var original = CrateOnnxModel.Load(CrateOnnxExporter.Export(initial));
        var pixels = Fixture.Pixels(Test);
        var (adapted, source) = (probe.Score(pixels), original.Score(pixels));
        Assert.That(adapted.Features, Is.EqualTo(source.Features).Within(1e-6f).AsCollection, "frozen trunk");
        Assert.That(adapted.Logits, Is.Not.EqualTo(source.Logits).Within(1e-3f).AsCollection, "a new head");
        Assert.That(probe.Config.ClassNames, Is.EqualTo(GeneratedShapes.ClassNames));
        Assert.That(probe.Config.Mean, Is.EqualTo(initial.Config.Mean), "the file's normalisation");

        var accuracy = ml.MulticlassClassification.Evaluate(model.Transform(View(ml, Test))).MicroAccuracy;
        TestContext.Out.WriteLine($"linear probe test accuracy {accuracy:P1} (chance 10%)");
        Assert.That(accuracy, Is.GreaterThan(0.4), "chance is 0.1");
    }

    [Test]
    public void PromptTuningExportsThePromptsAndTheChainSavesAndLoads()
    {
        var ml = new MLContext(1);
        var onnx = Fixture.PathOf("prompted.onnx");
        var options = Adapt(AdaptationMethod.PromptTuning, onnx);
        options.Epochs = 1;
        var data = View(ml, Train);
        var model = ml.MulticlassClassification.Trainers.Crate(options).Fit(data);
        using (var exported = CrateOnnxModel.Load(onnx)) Assert.That(exported.Config.PromptTokens, Is.EqualTo(4));

        var zip = Fixture.PathOf("prompted.zip");
        ml.Model.Save(model, data.Schema, zip);
        var loaded = new MLContext(2).Model.Load(zip, out _);
        var test = View(ml, Test);
        var expected = model.Transform(test).GetColumn<float[]>("Score").ToArray();
        var actual = loaded.Transform(test).GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-6f).AsCollection, $"row {i}");
    }

    [Test]
    public void AdaptingWithoutWeightsOrFromAMissingFileIsRefused()
    {
        var ml = new MLContext(1);
        var options = Adapt(AdaptationMethod.LinearProbe, Fixture.PathOf("unused.onnx"));
        options.InitialWeightsPath = null;
        var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Crate(options).Fit(View(ml, Test)));
        Assert.That(e!.Message, Is.EqualTo("Adaptation LinearProbe adapts pretrained weights: set InitialWeightsPath."));
        options.InitialWeightsPath = Fixture.PathOf("missing.safetensors");
        e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Crate(options).Fit(View(ml, Test)));
        Assert.That(e!.Message, Is.EqualTo($"InitialWeightsPath '{options.InitialWeightsPath}' does not exist."));
    }
}
