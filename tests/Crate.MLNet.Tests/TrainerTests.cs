using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Onnx.Runtime;
using Crate.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Crate.MLNet.Tests;

/// <summary>The trainer on a few hundred Fashion-MNIST images with a one-layer trunk and a few steps: behaviour, not accuracy.</summary>
public class TrainerTests
{
    private static ImageDataset _train = null!;

    [OneTimeSetUp]
    public void ReadData() => _train = IdxReader.FashionMnist(train: true, limit: 256);

    private static CrateImageClassificationTrainer.Options Quick(string? onnxPath = null, Action<EpochMetrics>? metrics = null) => new()
    {
        Architecture = CratePresets.Mini with { Depth = 1 },
        Epochs = 2, BatchSize = 64, MaxStepsPerEpoch = 2, WarmupEpochs = 0, ValidationFraction = 0.25, Threads = 2,
        OnnxModelPath = onnxPath, MetricsCallback = metrics,
    };

    [Test]
    public void FitReturnsAChainThatScoresLikeTheExportedNetwork()
    {
        var ml = new MLContext(5);
        var epochs = new List<EpochMetrics>();
        var log = new List<string>();
        ml.Log += (_, e) => { if (e.Source.Contains(nameof(CrateImageClassificationTrainer))) log.Add(e.Message); };
        var onnx = Fixture.PathOf("trained.onnx");
        var model = ml.MulticlassClassification.Trainers.Crate(Quick(onnx, epochs.Add)).Fit(Fixture.ImageView(ml, _train));

        Assert.That(epochs.Select(m => m.Epoch), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(epochs.All(m => m.ValidationTop1 != null), "validation every epoch (fraction 0.25)");
        Assert.That(log, Has.Some.Contains("Kind=Info] epoch 1: train loss"), "epoch metrics on the context's log");

        var test = Fixture.ImageView(ml);
        var scored = model.Transform(test);
        using var exported = CrateOnnxModel.Load(onnx);
        Assert.That(exported.Config.ClassNames, Is.EqualTo(IdxReader.FashionMnistClasses), "class names from the label's key values");
        Assert.That(exported.Config.Depth, Is.EqualTo(1));
        var reference = exported.Score(Fixture.Pixels(Fixture.Images));
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
        for (int i = 0; i < scores.Length; i++)
        {
            Assert.That(scores[i], Is.EqualTo(reference.ProbabilitiesOf(i).ToArray()).Within(1e-5f).AsCollection, $"row {i}");
            Assert.That(keys[i], Is.EqualTo((uint)ClassifierChainTests.ArgMax(scores[i]) + 1));
        }
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.That(metrics.MicroAccuracy, Is.EqualTo(keys.Zip(test.GetColumn<uint>("Label")).Count(p => p.First == p.Second) / (double)keys.Length).Within(1e-12));
    }

    [Test]
    public void TheContextsSeedMakesTrainingRepeatable()
    {
        float[] FirstScore(int seed)
        {
            var ml = new MLContext(seed);
            var model = ml.MulticlassClassification.Trainers.Crate(Quick()).Fit(Fixture.ImageView(ml, _train));
            return model.Transform(Fixture.ImageView(ml)).GetColumn<float[]>("Score").First();
        }
        var first = FirstScore(3);
        var again = FirstScore(3);
        var other = FirstScore(4);
        Assert.That(again, Is.EqualTo(first).AsCollection);
        Assert.That(other, Is.Not.EqualTo(first).AsCollection);
    }

    [Test]
    public void AValidationSetIsUsedAndItsUnseenLabelsAreNamed()
    {
        var ml = new MLContext(1);
        var validationRows = IdxReader.FashionMnist(train: false, limit: 64);
        var options = Quick();
        options.ValidationSet = Fixture.ImageView(ml, validationRows);
        var epochs = new List<EpochMetrics>();
        options.MetricsCallback = epochs.Add;
        ml.MulticlassClassification.Trainers.Crate(options).Fit(Fixture.ImageView(ml, _train));
        Assert.That(epochs.All(m => m.ValidationTop1 != null));

        // A validation label the training key mapping never saw ("Backpack") becomes a missing key: refused, naming the column and row.
        var renamed = new ImageDataset("renamed", 1, 28, 28, Fixture.Pixels(validationRows).Select(v => (byte)v).ToArray(),
            validationRows.Labels.ToArray(), IdxReader.FashionMnistClasses.Select(n => n == "Bag" ? "Backpack" : n).ToArray());
        options.ValidationSet = Fixture.ImageView(ml, renamed);
        int firstBag = Enumerable.Range(0, validationRows.Count).First(i => validationRows.ClassNames[validationRows.Label(i)] == "Bag");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Crate(options).Fit(Fixture.ImageView(ml, _train)));
        Assert.That(e!.Message, Does.Contain($"validation label column 'Label', row {firstBag}").And.Contain("unseen in training"));
    }

    [Test]
    public void AnUnseenTrainingLabelIsNamedWithItsRow()
    {
        var ml = new MLContext(1);
        var raw = ml.Data.LoadFromImageDataset(_train);
        var withoutBag = ml.Transforms.Conversion.MapValueToKey("Label", keyData: ml.Data.LoadFromEnumerable(
            IdxReader.FashionMnistClasses.Where(n => n != "Bag").Select(n => new Fixture.ClassName { Label = n })));
        var data = withoutBag.Fit(raw).Transform(raw);
        int firstBag = Enumerable.Range(0, _train.Count).First(i => _train.ClassNames[_train.Label(i)] == "Bag");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Crate(Quick()).Fit(data));
        Assert.That(e!.Message, Does.Contain("label column 'Label', row " + firstBag).And.Contain("unseen"));
    }

    [Test]
    public void ALabelThatIsNotAKeyIsRefusedWithTheFix()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromImageDataset(_train);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Crate().Fit(data));
        Assert.That(e!.Message, Does.Contain("label column 'Label' is String").And.Contain("MapValueToKey(\"Label\")"));
        var noLabel = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Crate(labelColumnName: "Class").Fit(data));
        Assert.That(noLabel!.Message, Does.Contain("no label column 'Class'"));
        var shape = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Crate().GetOutputSchema(BadInputTests.ShapeOf(data.Schema)));
        Assert.That(shape!.Message, Does.Contain("'Label'"));
    }

    [Test]
    public void AnInvalidOptionIsRefusedBeforeTraining()
    {
        var ml = new MLContext(1);
        var options = Quick();
        options.Epochs = 0;
        var e = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Crate(options).Fit(Fixture.ImageView(ml, _train)));
        Assert.That(e!.Message, Does.Contain("epochs must be at least 1"));
        var wrongPatch = Quick();
        wrongPatch.Architecture = CratePresets.Mini with { PatchSize = 5 };
        var patch = Assert.Throws<ArgumentException>(() => ml.MulticlassClassification.Trainers.Crate(wrongPatch).Fit(Fixture.ImageView(ml, _train)));
        Assert.That(patch!.Message, Does.Contain("column 'Image' (1x28x28)").And.Contain("patch size 5"));
    }

    [Test]
    public void AnEmptyTrainingSetIsRefused()
    {
        var ml = new MLContext(1);
        var raw = ml.Data.LoadFromEnumerable(new[] { new FloatImage { Label = "a", Image = new float[784] } });
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(ml.Data.LoadFromEnumerable(Array.Empty<FloatImage>()));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Crate(Quick()).Fit(data));
        Assert.That(e!.Message, Does.StartWith("The training data has no rows."));
    }

    [TestCase(300f)]
    [TestCase(float.NaN)]
    [TestCase(float.PositiveInfinity)]
    public void OutOfRangePixelsAreNamedWithTheirRow(float value)
    {
        var ml = new MLContext(1);
        var rows = Enumerable.Range(0, 4).Select(i => new FloatImage { Label = i % 2 == 0 ? "a" : "b", Image = Enumerable.Repeat(i == 2 ? value : 10f, 784).ToArray() });
        var raw = ml.Data.LoadFromEnumerable(rows);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(raw).Transform(raw);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Trainers.Crate(Quick()).Fit(data));
        Assert.That(e!.Message, Does.StartWith($"The training image column 'Image', row 2, value 0: pixel {value} is outside 0..255."));
    }

    [Test]
    public void TrainsFromImageFilesThroughLoadImagesAsFromTheirPixels()
    {
        // The same 64 training images twice: as PNG files that ML.NET's LoadImages turns into MLImages, and as pixel vectors.
        var directory = Fixture.PathOf("train-pngs");
        System.IO.Directory.CreateDirectory(directory);
        var files = Enumerable.Range(0, 64).Select(i =>
        {
            var path = Path.Combine(directory, $"{i}.png");
            ImageFile.SavePng(path, _train.Image(i), 1, 28, 28);
            return new FileRow { Label = _train.ClassNames[_train.Label(i)], ImagePath = path };
        }).ToArray();
        var pixelRows = Enumerable.Range(0, 64).Select(i => new PixelRow { Label = files[i].Label, Image = _train.Image(i).ToArray() });

        var ml = new MLContext(7);
        var fileView = ml.Data.LoadFromEnumerable(files);
        var imageData = ml.Transforms.LoadImages("Image", "", nameof(FileRow.ImagePath)).Append(ml.Transforms.Conversion.MapValueToKey("Label")).Fit(fileView).Transform(fileView);
        // Each trainer on a fresh context of the same seed: the trainer draws its seed from the context.
        var fromImages = new MLContext(7).MulticlassClassification.Trainers.Crate(Quick(Fixture.PathOf("from-images.onnx"))).Fit(imageData);
        var pixelView = ml.Data.LoadFromEnumerable(pixelRows);
        var pixelData = ml.Transforms.Conversion.MapValueToKey("Label").Fit(pixelView).Transform(pixelView);
        new MLContext(7).MulticlassClassification.Trainers.Crate(Quick(Fixture.PathOf("from-pixels.onnx"))).Fit(pixelData);

        // Same pixels, same seed: the same network.
        using var a = CrateOnnxModel.Load(Fixture.PathOf("from-images.onnx"));
        using var b = CrateOnnxModel.Load(Fixture.PathOf("from-pixels.onnx"));
        var pixels = Fixture.Pixels(Fixture.Images);
        Assert.That(a.Score(pixels).Probabilities.ToArray(), Is.EqualTo(b.Score(pixels).Probabilities.ToArray()).Within(1e-6f).AsCollection);

        // The chain from images saves, loads and scores image files, with class names on Score.
        var zip = Fixture.PathOf("from-images.zip");
        ml.Model.Save(fromImages, imageData.Schema, zip);
        var loaded = new MLContext(8).Model.Load(zip, out _);
        var scored = loaded.Transform(imageData);
        var expected = a.Score(Fixture.Pixels(_train.Subset(Enumerable.Range(0, 64).ToArray())));
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        for (int i = 0; i < scores.Length; i++) Assert.That(scores[i], Is.EqualTo(expected.ProbabilitiesOf(i).ToArray()).Within(1e-5f).AsCollection, $"row {i}");
        Assert.That(ClassifierChainTests.SlotNames(scored.Schema["Score"]), Is.EqualTo(files.Select(f => f.Label).Distinct()), "the label's key values, in key order");
    }

    private sealed class FloatImage
    {
        public string Label = "";
        [VectorType(784)] public float[] Image = [];
    }

    private sealed class FileRow
    {
        public string Label = "";
        public string ImagePath = "";
    }

    private sealed class PixelRow
    {
        public string Label = "";
        [VectorType(1, 28, 28)] public byte[] Image = [];
    }
}
