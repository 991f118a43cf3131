using Crate.Training.Adaptation;
using Crate.Core.Data;
using Crate.Core.Data.Segmentation;
using Crate.Onnx;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using Crate.Training;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;

namespace Crate.MLNet.Tests;

/// <summary>
/// The segmentation trainer, fitted once on a few hundred small generated scenes with a two-layer trunk (seconds), then checked
/// against independently computed values: the all-background baseline from the masks, the ONNX file run directly, a Save/Load round trip.
/// </summary>
public class SegmentationTrainerTests
{
    private const int Side = 32;
    private static readonly SceneOptions Scenes = new() { Size = Side, MinScale = 0.5, MaxScale = 0.8, MaxObjects = 2, Seed = 4 };

    private static SegmentationDataset _train = null!;
    private static SegmentationDataset _test = null!;
    private static TransformerChain<ITransformer> _model = null!;
    private static string _onnx = "";
    private static readonly List<EpochReport> Epochs = [];

    /// <summary>Three well separated shape classes (circle, square, cross), as the training project's own short segmentation test uses.</summary>
    private static ObjectBank Bank(int count, int seed)
    {
        var shapes = GeneratedShapes.Create(count, seed, plainBackground: true);
        return ObjectBank.FromImages(shapes.Subset(Enumerable.Range(0, shapes.Count).Where(i => shapes.Label(i) is 0 or 1 or 3).ToArray()));
    }

    private static CrateSegmentationTrainer.Options Tiny(string? onnxPath = null) => new()
    {
        Dim = 64, Depth = 2, PatchSize = 4, Epochs = 10, BatchSize = 32, LearningRate = 2e-3, Threads = 2, Seed = 2,
        MaskScoresColumnName = "MaskScores", OnnxModelPath = onnxPath,
    };

    [OneTimeSetUp]
    public void Train()
    {
        _train = SceneGenerator.Generate(Bank(200, 9), 400, Scenes, "train");
        _test = SceneGenerator.Generate(Bank(100, 10), 100, Scenes, "test");
        var ml = new MLContext(1);
        _onnx = Fixture.PathOf("segmenter.onnx");
        var options = Tiny(_onnx);
        options.MetricsCallback = Epochs.Add;
        _model = ml.Segmentation().Trainers.Crate(options).Fit(ml.Data.LoadFromSegmentationDataset(_train));
    }

    [OneTimeTearDown]
    public void DisposeModel() => _model.Dispose();

    private static IDataView TestView(MLContext ml) => ml.Data.LoadFromSegmentationDataset(_test);

    [Test]
    public void FittedModelClearlyBeatsTheAllBackgroundPredictor()
    {
        var ml = new MLContext(1);
        var scored = _model.Transform(TestView(ml));
        var metrics = ml.Segmentation().Evaluate(scored, _test.ClassNames);
        TestContext.Out.WriteLine($"losses {string.Join(", ", Epochs.Select(e => e.Loss.ToString("F3")))}\n{metrics}");
        Assert.That(Epochs.Select(e => e.Epoch), Is.EqualTo(Enumerable.Range(1, 10)));
        Assert.That(Epochs[^1].Loss, Is.LessThan(Epochs[0].Loss * 0.7));

        // The all-background predictor, from the masks alone: background IoU = background pixels / counted pixels, every other class
        // present in the masks scores 0, absent ones do not count.
        long background = 0, counted = 0;
        var present = new HashSet<int>();
        for (int i = 0; i < _test.Count; i++)
            foreach (var id in _test.Mask(i))
            {
                if (id == SegmentationDataset.IgnoreIndex) continue;
                counted++;
                if (id == 0) background++;
                present.Add(id);
            }
        double baseline = (double)background / counted / present.Count;
        TestContext.Out.WriteLine($"all background: mIoU {baseline:F4}");
        Assert.That(metrics.MeanIoU, Is.GreaterThan(1.5 * baseline));
        Assert.That(metrics.ForegroundIoU, Is.GreaterThan(0.5));

        // Pixel accuracy and per-class figures straight from the two columns.
        var truth = scored.GetColumn<byte[]>("Mask").ToArray();
        var predicted = scored.GetColumn<byte[]>("PredictedMask").ToArray();
        long correct = truth.Zip(predicted).Sum(p => p.First.Zip(p.Second).Count(q => q.First == q.Second && q.First != SegmentationDataset.IgnoreIndex));
        Assert.That(metrics.PixelAccuracy, Is.EqualTo((double)correct / counted).Within(1e-12));
        Assert.That(metrics.Pixels, Is.EqualTo(counted));
        Assert.That(metrics.PerClassIoU.Keys, Is.EqualTo(_test.ClassNames));
        var classes = _test.ClassNames.Count;
        Assert.That(metrics.MeanIoU, Is.EqualTo(metrics.PerClassIoU.Values.Where(v => !double.IsNaN(v)).Average()).Within(1e-12));
        Assert.That(predicted.SelectMany(m => m).Max(), Is.LessThan(classes));
    }

    [Test]
    public void PredictedMaskIsTheOnnxFilesMaskOutputAndScoresItsSoftmax()
    {
        var ml = new MLContext(1);
        var scored = _model.Transform(TestView(ml));
        Assert.That(scored.Schema["PredictedMask"].Type.ToString(), Is.EqualTo($"Vector<Byte, {Side}, {Side}>"));
        Assert.That(scored.Schema["MaskScores"].Type.ToString(), Is.EqualTo($"Vector<Single, {_test.NumClasses}, {Side}, {Side}>"));
        var masks = scored.GetColumn<byte[]>("PredictedMask").ToArray();
        var scores = scored.GetColumn<float[]>("MaskScores").ToArray();

        // The exported file in ONNX Runtime directly, one image per run as ML.NET scores.
        int plane = Side * Side, k = _test.NumClasses;
        using var session = new InferenceSession(_onnx);
        Assert.That(session.ModelMetadata.CustomMetadataMap[CrateOnnxSchema.MaskClassNamesKey],
            Is.EqualTo(System.Text.Json.JsonSerializer.Serialize(_train.ClassNames)), "class names from the mask column's annotation");
        for (int i = 0; i < _test.Count; i++)
        {
            var pixels = _test.Image(i).ToArray().Select(b => (float)b).ToArray();
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(CrateOnnxSchema.Image, new DenseTensor<float>(pixels, [1, 1, Side, Side]))]);
            var mask = results.First(r => r.Name == CrateOnnxSchema.Mask).AsTensor<long>().ToArray();
            var logits = results.First(r => r.Name == CrateOnnxSchema.MaskLogits).AsTensor<float>().ToArray();
            Assert.That(masks[i].Select(b => (long)b), Is.EqualTo(mask).AsCollection, $"row {i}");
            for (int p = 0; p < plane; p += 37)
            {
                var l = Enumerable.Range(0, k).Select(c => (double)logits[c * plane + p]).ToArray();
                double sum = l.Sum(v => Math.Exp(v - l.Max()));
                for (int c = 0; c < k; c++)
                    Assert.That(scores[i][c * plane + p], Is.EqualTo(Math.Exp(l[c] - l.Max()) / sum).Within(1e-5), $"row {i}, pixel {p}, class {c}");
            }
        }
        Assert.That(masks.SelectMany(m => m).Distinct().Count(), Is.GreaterThan(2), "the masks hold several classes");
    }

    [Test]
    public void SaveAndLoadGiveIdenticalMasks()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromSegmentationDataset(_train);
        var zip = Fixture.PathOf("segmenter.zip");
        ml.Model.Save(_model, data.Schema, zip);
        var loaded = new MLContext(2).Model.Load(zip, out var schema);
        Assert.That(schema["Image"].Type.ToString(), Is.EqualTo($"Vector<Byte, 1, {Side}, {Side}>"));
        var before = _model.Transform(TestView(ml));
        var after = loaded.Transform(TestView(ml));
        Assert.That(after.GetColumn<byte[]>("PredictedMask").ToArray(), Is.EqualTo(before.GetColumn<byte[]>("PredictedMask").ToArray()).AsCollection);
        Assert.That(after.GetColumn<float[]>("MaskScores").ToArray(), Is.EqualTo(before.GetColumn<float[]>("MaskScores").ToArray()).AsCollection);

        // The loaded chain needs only the image: scoring rows without masks works (as an application's would).
        var imagesOnly = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 3).Select(i => new ImageOnlyRow { Image = _test.Image(i).ToArray() }));
        Assert.That(loaded.Transform(imagesOnly).GetColumn<byte[]>("PredictedMask").ToArray(),
            Is.EqualTo(before.GetColumn<byte[]>("PredictedMask").Take(3).ToArray()).AsCollection);
    }

    [Test]
    public void ASavedModelSegmentsAlikeInAProcessWithoutCrate()
    {
        var ml = new MLContext(1);
        var zip = Fixture.PathOf("segmenter-for-consumer.zip");
        ml.Model.Save(_model, ml.Data.LoadFromSegmentationDataset(_train).Schema, zip);
        var pngs = Enumerable.Range(0, 4).Select(i =>
        {
            var path = Fixture.PathOf($"scene{i}.png");
            ImageFile.SavePng(path, _test.Image(i), 1, Side, Side);
            return path;
        }).ToArray();
        var result = Samples.Run("ConsumeWithoutCrate", [zip, .. pngs]);
        Assert.That(result.ExitCode, Is.Zero, result.Error);
        Assert.That(result.Output, Does.Contain("(0 Crate assemblies loaded)").And.Contain("# segmentation"));
        var masks = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#'))
            .Select(l => l.TrimEnd('\r').Split('\t')[1].Split(',').Select(byte.Parse).ToArray()).ToArray();
        var expected = _model.Transform(TestView(ml)).GetColumn<byte[]>("PredictedMask").Take(4).ToArray();
        Assert.That(masks, Is.EqualTo(expected).AsCollection);
    }

    [Test]
    public void AFrozenBackboneStartedFromWeightsKeepsTheirFeatures()
    {
        // One epoch of head-only training on top of a classifier trunk.
        using var classifier = SavedClassifier(out var weights);
        var options = Tiny(Fixture.PathOf("frozen.onnx"));
        options.InitialWeightsPath = weights;
        options.Adaptation = AdaptationMethod.LinearProbe;
        options.Epochs = 1;
        var ml = new MLContext(1);
        ml.Segmentation().Trainers.Crate(options).Fit(ml.Data.LoadFromSegmentationDataset(_train.Take(64)));

        var pixels = Enumerable.Range(0, 8).SelectMany(i => _test.Image(i).ToArray()).Select(b => (float)b).ToArray();
        using var before = CrateOnnxModel.Load(CrateOnnxExporter.Export(classifier.ToWeights()));
        using var after = CrateOnnxModel.Load(options.OnnxModelPath!);
        Assert.That(after.Config.Depth, Is.EqualTo(1), "the initial weights' trunk, not the options' Depth 2");
        Assert.That(after.Score(pixels).Features.ToArray(), Is.EqualTo(before.Score(pixels).Features.ToArray()).Within(1e-6f).AsCollection);
    }

    [Test]
    public void QueriesExportAQueryHeadWhosePixelLogProbabilitiesSumToOne()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromSegmentationDataset(_train.Take(32));
        var options = Tiny(Fixture.PathOf("queries.onnx"));
        options.Epochs = 1;
        options.Queries = 0;
        var error = Assert.Throws<ArgumentException>(() => ml.Segmentation().Trainers.Crate(options).Fit(data));
        Assert.That(error!.Message, Is.EqualTo("A query head needs at least 1 query (the class token), got 0."));

        options.Queries = 3;
        using var model = ml.Segmentation().Trainers.Crate(options).Fit(data);
        using var session = new InferenceSession(options.OnnxModelPath!);
        Assert.That(Crate.Core.Model.CrateConfig.FromJson(session.ModelMetadata.CustomMetadataMap[CrateOnnxSchema.ConfigKey]).PromptTokens,
            Is.EqualTo(2), "the class token and 2 new prompt tokens are the queries");
        var pixels = _test.Image(0).ToArray().Select(b => (float)b).ToArray();
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(CrateOnnxSchema.Image, new DenseTensor<float>(pixels, [1, 1, Side, Side]))]);
        var logProbs = results.First(r => r.Name == CrateOnnxSchema.MaskLogits).AsTensor<float>().ToArray();
        int plane = Side * Side;
        // With a query head the mask logits are log-probabilities (a log-softmax over classes); without one they are free logits.
        for (int p = 0; p < plane; p += 13)
            Assert.That(Enumerable.Range(0, _test.NumClasses).Sum(c => Math.Exp(logProbs[c * plane + p])), Is.EqualTo(1.0).Within(1e-4), $"pixel {p}");
        var mask = results.First(r => r.Name == CrateOnnxSchema.Mask).AsTensor<long>().ToArray();
        var scored = model.Transform(ml.Data.LoadFromSegmentationDataset(_test.Take(1))).GetColumn<byte[]>("PredictedMask").Single();
        Assert.That(scored.Select(b => (long)b), Is.EqualTo(mask).AsCollection, "the chain scores with the exported query head");
    }

    [Test]
    public void PromptTuningPutsPromptTokensOnTheInitialTrunkAndNeedsIt()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromSegmentationDataset(_train.Take(32));
        var options = Tiny(Fixture.PathOf("prompted.onnx"));
        options.Adaptation = AdaptationMethod.PromptTuning;
        options.PromptTokens = 3;
        options.Epochs = 1;
        var error = Assert.Throws<ArgumentException>(() => ml.Segmentation().Trainers.Crate(options).Fit(data));
        Assert.That(error!.Message, Is.EqualTo("Adaptation PromptTuning adapts pretrained weights: set InitialWeightsPath."));

        using var classifier = SavedClassifier(out var weights);
        options.InitialWeightsPath = weights;
        ml.Segmentation().Trainers.Crate(options).Fit(data);
        using var prompted = CrateOnnxModel.Load(options.OnnxModelPath!);
        Assert.That(prompted.Config.PromptTokens, Is.EqualTo(3));
        Assert.That((prompted.Config.Dim, prompted.Config.Depth), Is.EqualTo((classifier.Config.Dim, classifier.Config.Depth)), "the initial trunk, not the options' depth");
    }

    [Test]
    public void InitialWeightsForAnotherImageSizeAreResampledToItAndOtherChannelsAreRefused()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromSegmentationDataset(_train.Take(32));
        var small = SegmentationModel.TrunkFor(_train, "mini", 64, 1, 4) with { ImageHeight = 16, ImageWidth = 16 };
        torch.manual_seed(3);
        using (var classifier = new CrateModel(small)) SegmentationCheckpoint.Save(Fixture.PathOf("classifier16.safetensors"), classifier);
        var options = Tiny(Fixture.PathOf("resized.onnx"));
        options.InitialWeightsPath = Fixture.PathOf("classifier16.safetensors");
        options.Adaptation = AdaptationMethod.LinearProbe;
        options.Epochs = 1;
        ml.Segmentation().Trainers.Crate(options).Fit(data);
        using (var resized = CrateOnnxModel.Load(options.OnnxModelPath!))
            Assert.That((resized.Config.ImageHeight, resized.Config.ImageWidth, resized.Config.NumPatches, resized.Config.Depth), Is.EqualTo((Side, Side, 64, 1)));

        var rgb = small with { Channels = 3, Mean = [0.5f, 0.5f, 0.5f], Std = [0.25f, 0.25f, 0.25f] };
        using (var classifier = new CrateModel(rgb)) SegmentationCheckpoint.Save(Fixture.PathOf("classifier-rgb.safetensors"), classifier);
        options.InitialWeightsPath = Fixture.PathOf("classifier-rgb.safetensors");
        var error = Assert.Throws<ArgumentException>(() => ml.Segmentation().Trainers.Crate(options).Fit(data));
        Assert.That(error!.Message, Does.Contain("do not fit the image column 'Image': the trunk takes 3-channel images in patches of 4, the images are 1x32x32; set Channels to 3"));
    }

    /// <summary>A depth-1 classifier trunk for the scenes, saved as <c>crate segment train --task classify</c> would.</summary>
    private CrateModel SavedClassifier(out string path)
    {
        var config = SegmentationModel.TrunkFor(_train, "mini", 64, 1, 4);
        torch.manual_seed(3);
        var classifier = new CrateModel(config);
        path = Fixture.PathOf("classifier.safetensors");
        SegmentationCheckpoint.Save(path, classifier);
        return classifier;
    }

    [Test]
    public void TrainsFromImageFilesThroughLoadImagesAsFromTheirPixels()
    {
        // The same 16 scenes as PNG files that ML.NET's LoadImages turns into MLImages (resized to the masks' 32x32, gray extracted), and as pixel vectors.
        var scenes = _train.Take(16);
        var rows = Enumerable.Range(0, scenes.Count).Select(i =>
        {
            var path = Fixture.PathOf($"train-scene{i}.png");
            ImageFile.SavePng(path, scenes.Image(i), 1, Side, Side);
            return new FileRow { ImagePath = path, Mask = scenes.Mask(i).ToArray() };
        }).ToArray();
        var ml = new MLContext(1);
        var files = ml.Data.LoadFromEnumerable(rows);
        var images = ml.Transforms.LoadImages("Image", "", nameof(FileRow.ImagePath)).Fit(files).Transform(files);
        TransformerChain<ITransformer> Train(IDataView data, string onnx)
        {
            var options = Tiny(Fixture.PathOf(onnx));
            (options.Epochs, options.BatchSize, options.Channels, options.ClassNames) = (1, 8, 1, scenes.ClassNames);
            return new MLContext(1).Segmentation().Trainers.Crate(options).Fit(data);
        }
        using var fromImages = Train(images, "from-images.onnx");
        using var fromPixels = Train(ml.Data.LoadFromSegmentationDataset(scenes), "from-pixels.onnx");

        var pixels = Enumerable.Range(0, 4).SelectMany(i => scenes.Image(i).ToArray()).Select(b => (float)b).ToArray();
        using var a = CrateOnnxModel.Load(Fixture.PathOf("from-images.onnx"));
        using var b = CrateOnnxModel.Load(Fixture.PathOf("from-pixels.onnx"));
        Assert.That(a.Score(pixels).Features, Is.EqualTo(b.Score(pixels).Features).Within(1e-6f).AsCollection, "same pixels, same seed: the same network");
        Assert.That(fromImages.Transform(images).GetColumn<byte[]>("PredictedMask").ToArray(),
            Is.EqualTo(fromPixels.Transform(ml.Data.LoadFromSegmentationDataset(scenes)).GetColumn<byte[]>("PredictedMask").ToArray()).AsCollection);
    }

    [Test]
    public void FolderPairsLoadAsTheDataSetTheyWereSavedFrom()
    {
        var directory = Fixture.PathOf("scene-folder");
        var scenes = _test.Take(5);
        scenes.Save(directory);
        var ml = new MLContext(1);
        var view = ml.Data.LoadFromSegmentationFolder(directory, new SegmentationFolder.Options { Channels = 1 });
        Assert.That(view.Schema["Mask"].Type.ToString(), Is.EqualTo($"Vector<Byte, {Side}, {Side}>"));
        Assert.That(view.GetColumn<byte[]>("Image").ToArray(), Is.EqualTo(Enumerable.Range(0, 5).Select(i => scenes.Image(i).ToArray())).AsCollection);
        Assert.That(view.GetColumn<byte[]>("Mask").ToArray(), Is.EqualTo(Enumerable.Range(0, 5).Select(i => scenes.Mask(i).ToArray())).AsCollection);
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        view.Schema["Mask"].Annotations.GetValue("MaskClassNames", ref names);
        Assert.That(names.DenseValues().Select(n => n.ToString()), Is.EqualTo(scenes.ClassNames));
    }

    [Test]
    public void BadMasksAreNamedAtFit()
    {
        var ml = new MLContext(1);
        var trainer = ml.Segmentation().Trainers.Crate(Tiny());
        var images = ml.Data.LoadFromEnumerable(new[] { new ImageOnlyRow() });
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(images));
        Assert.That(missing!.Message, Does.StartWith($"The input has no mask column 'Mask'. Columns: Image (Vector<Byte, 1, {Side}, {Side}>)."));
        Assert.That(() => trainer.GetOutputSchema(BadInputTests.ShapeOf(images.Schema)), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("no mask column 'Mask'"));

        var shortMask = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(ml.Data.LoadFromEnumerable(new[] { new ShortMaskRow() })));
        Assert.That(shortMask!.Message, Does.StartWith($"The mask column 'Mask' holds 100 class ids per row (Vector<Byte, 10, 10>); the images are {Side}x{Side}, so it needs one per pixel ({Side * Side})."));

        var floatMask = Assert.Throws<ArgumentOutOfRangeException>(() => trainer.Fit(ml.Data.LoadFromEnumerable(new[] { new FloatMaskRow() })));
        Assert.That(floatMask!.Message, Does.StartWith($"The mask column 'Mask' is Vector<Single, {Side}, {Side}>; Crate needs a known-size vector of Byte class ids"));

        var clash = Tiny();
        clash.PredictedMaskColumnName = "Image";
        var hidden = Assert.Throws<ArgumentException>(() => ml.Segmentation().Trainers.Crate(clash).Fit(ml.Data.LoadFromEnumerable(new[] { new MaskRow() })));
        Assert.That(hidden!.Message, Is.EqualTo("The output column 'Image' has the name of the image column; give it another name."));
        clash.PredictedMaskColumnName = "MaskScores";
        var twice = Assert.Throws<ArgumentException>(() => ml.Segmentation().Trainers.Crate(clash).Fit(ml.Data.LoadFromEnumerable(new[] { new MaskRow() })));
        Assert.That(twice!.Message, Is.EqualTo("The predicted-mask and mask-scores columns are both named 'MaskScores'."));

        var named = Tiny();
        named.ClassNames = ["background", "circle"];
        var rows = Enumerable.Range(0, 3).Select(i => new MaskRow { Mask = Enumerable.Repeat((byte)(i == 1 ? 2 : 1), Side * Side).ToArray() });
        var unknown = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Segmentation().Trainers.Crate(named).Fit(ml.Data.LoadFromEnumerable(rows)));
        Assert.That(unknown!.Message, Does.StartWith("The training mask column 'Mask', row 1, pixel 0 (x 0, y 0): class id 2 is not one of the 2 classes (0..1) or 255 (ignore)."));
    }

    [Test]
    public void ImagesOfAnotherSizeAreNamedAtFitAndAtTransform()
    {
        var ml = new MLContext(1);
        var options = Tiny();
        options.PatchSize = 5;
        var patch = Assert.Throws<ArgumentException>(() => ml.Segmentation().Trainers.Crate(options).Fit(ml.Data.LoadFromSegmentationDataset(_train.Take(4))));
        Assert.That(patch!.Message, Does.StartWith($"The images of column 'Image' (1x{Side}x{Side}) do not fit the trunk:").And.Contain("patch size 5"));

        var wrongLength = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Segmentation().Trainers.Crate(Tiny()).Fit(ml.Data.LoadFromEnumerable(new[] { new OddImageRow() })));
        Assert.That(wrongLength!.Message, Does.StartWith("The image column 'Image' holds 1000 values per row, which is not a square grayscale or RGB image"));

        // The fitted chain refuses other images in ML.NET's own words, which name the column (the scoring graph's input is named after it).
        var e = Assert.Catch(() => _model.Transform(ml.Data.LoadFromEnumerable(new[] { new OddImageRow() })).GetColumn<byte[]>("PredictedMask").ToArray());
        Assert.That(e!.Message, Does.Contain("'Image'").And.Contain("length 1000"));
    }

    [Test]
    public void ADivergingRunStopsWithTheEpochInsteadOfReturningAModel()
    {
        var ml = new MLContext(1);
        var options = Tiny();
        options.LearningRate = 1e30;
        options.Epochs = 3;
        options.BatchSize = 8;
        var e = Assert.Throws<TrainingException>(() => ml.Segmentation().Trainers.Crate(options).Fit(ml.Data.LoadFromSegmentationDataset(_train.Take(16))));
        Assert.That(e!.Message, Does.Match(@"^Training diverged: the mean loss of epoch [1-3] is (NaN|∞|-∞|Infinity) \(learning rate 1E\+30\)\. Lower LearningRate and train again\.$"));
    }

    [Test]
    public void EvaluateNamesColumnsItCannotCompare()
    {
        var ml = new MLContext(1);
        var data = TestView(ml);
        var missing = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Segmentation().Evaluate(data, _test.ClassNames));
        Assert.That(missing!.Message, Does.StartWith("The input has no predicted mask column 'PredictedMask'."));
        var mismatched = ml.Data.LoadFromEnumerable(new[] { new MismatchedRow() });
        var lengths = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Segmentation().Evaluate(mismatched, _test.ClassNames));
        Assert.That(lengths!.Message, Does.StartWith($"The mask column 'Mask' holds 100 class ids per row, the predicted mask column 'PredictedMask' {Side * Side}; they must describe the same pixels."));
        var shorter = ml.Data.LoadFromEnumerable(new[] { new ShortMaskRow() });
        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => ml.Segmentation().Evaluate(shorter, 2, predictedMaskColumnName: "Mask"));
        Assert.That(outside!.Message, Does.StartWith("Row 0 of the mask column 'Mask' / predicted mask column 'Mask': ground-truth class 3 at pixel 0 is outside the 2 classes"));
    }

    private sealed class FileRow
    {
        public string ImagePath = "";
        [VectorType(Side, Side)] public byte[] Mask = [];
    }
    private sealed class ImageOnlyRow { [VectorType(1, Side, Side)] public byte[] Image = new byte[Side * Side]; }
    private sealed class MaskRow
    {
        [VectorType(1, Side, Side)] public byte[] Image = new byte[Side * Side];
        [VectorType(Side, Side)] public byte[] Mask = new byte[Side * Side];
    }
    private sealed class ShortMaskRow
    {
        [VectorType(1, Side, Side)] public byte[] Image = new byte[Side * Side];
        [VectorType(10, 10)] public byte[] Mask = Enumerable.Repeat((byte)3, 100).ToArray();
    }
    private sealed class MismatchedRow
    {
        [VectorType(10, 10)] public byte[] Mask = new byte[100];
        [VectorType(Side, Side)] public byte[] PredictedMask = new byte[Side * Side];
    }
    private sealed class FloatMaskRow
    {
        [VectorType(1, Side, Side)] public byte[] Image = new byte[Side * Side];
        [VectorType(Side, Side)] public float[] Mask = new float[Side * Side];
    }
    private sealed class OddImageRow
    {
        [VectorType(1000)] public byte[] Image = new byte[1000];
        [VectorType(Side, Side)] public byte[] Mask = new byte[Side * Side];
    }
}
