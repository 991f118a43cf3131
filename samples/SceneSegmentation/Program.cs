using System.Diagnostics;
using Crate.Core.Data.Segmentation;
using Crate.Core.Segmentation;
using Crate.MLNet;
using Crate.Training;
using Crate.Training.Segmentation;
using Microsoft.ML;
using SceneSegmentation;

// Generated scenes (Fashion-MNIST items on textured backgrounds) segmented by CRATE in ML.NET: train, save, reload, predict, evaluate, draw.
ProcessTuning.Apply(); // before libtorch loads: on shared cores spinning OpenMP threads slow training several-fold
var settings = Settings.Parse(args);
Directory.CreateDirectory(settings.OutputDirectory);
SceneSegmentationModel.MLNetModelPath = Path.GetFullPath(Path.Combine(settings.OutputDirectory, "SceneSegmentationModel.zip"));
var ml = new MLContext(seed: 1);

var (trainSet, testSet) = SceneGenerator.FashionScenes(settings.TrainScenes, settings.TestScenes, new SceneOptions { Size = 64, Seed = 1 },
    log: message => Console.Error.WriteLine($"warning: {message}"));
var train = ml.Data.LoadFromSegmentationDataset(trainSet);   // Image: bytes [1, 64, 64]; Mask: class ids [64, 64]
var test = ml.Data.LoadFromSegmentationDataset(testSet);
Console.WriteLine($"Training CRATE (dim {settings.Dim?.ToString() ?? "192"}, depth {settings.Depth?.ToString() ?? "6"}) on {trainSet.Count:N0} generated 64x64 scenes " +
                  $"of {trainSet.NumClasses} mask classes for {settings.Epochs} epoch(s) ({Environment.ProcessorCount} cores)...");

var clock = Stopwatch.StartNew();
var model = SceneSegmentationModel.RetrainModel(ml, train, settings,
    r => Console.WriteLine(FormattableString.Invariant($"  epoch {r.Epoch}: loss {r.Loss:F4}, lr {r.LearningRate:E2}, {r.ImagesPerSecond:F0} images/s")));
Console.WriteLine($"Trained in {clock.Elapsed.TotalSeconds:F0} s.");
SceneSegmentationModel.SaveModel(ml, model, train.Schema);
Console.WriteLine($"Saved {SceneSegmentationModel.MLNetModelPath} ({new FileInfo(SceneSegmentationModel.MLNetModelPath).Length / 1024:N0} KiB, the ONNX network inside) and {settings.OnnxPath}.");

// Reload and predict through the consumption class, as an application would; draw image | true mask | predicted mask.
Console.WriteLine();
Console.WriteLine("Predictions of the reloaded model:");
string Classes(ReadOnlySpan<byte> mask)
{
    var counts = new SortedDictionary<int, int>();
    foreach (var id in mask) if (id is not 0 and not SegmentationDataset.IgnoreIndex) counts[id] = counts.GetValueOrDefault(id) + 1;
    return counts.Count == 0 ? "(background only)" : string.Join(", ", counts.Select(c => $"{trainSet.ClassNames[c.Key]} {c.Value} px"));
}
for (int i = 0; i < Math.Min(3, testSet.Count); i++)
{
    var image = testSet.Image(i).ToArray();
    var output = SceneSegmentationModel.Predict(new ModelInput { Image = image });
    var overlay = Path.Combine(settings.OutputDirectory, $"scene{i}.overlay.png");
    File.WriteAllBytes(overlay, new OverlayImage(64, 64, scale: 4)
        .AddImage(image, 1).AddMask(image, 1, testSet.Mask(i)).AddMask(image, 1, output.PredictedMask).EncodePng());
    Console.WriteLine($"  scene {i}: predicted {Classes(output.PredictedMask)}");
    Console.WriteLine($"           actual    {Classes(testSet.Mask(i))}  -> {overlay}");
}

// Evaluate the reloaded model on the test scenes, beside predicting background everywhere.
var reloaded = new MLContext(seed: 1).Model.Load(SceneSegmentationModel.MLNetModelPath, out _);
var metrics = ml.Segmentation().Evaluate(reloaded.Transform(test), testSet.ClassNames);
var trivial = SegmentationEvaluation.AllBackground(testSet);
Console.WriteLine();
Console.WriteLine($"Test metrics ({testSet.Count:N0} scenes):");
Console.WriteLine($"  PixelAccuracy    {metrics.PixelAccuracy:P2}   (all background: {trivial.PixelAccuracy:P2})");
Console.WriteLine($"  MeanIoU          {metrics.MeanIoU:F4}   (all background: {trivial.MeanIoU:F4})");
Console.WriteLine($"  ForegroundIoU    {metrics.ForegroundIoU:F4}   (all background: 0)");
Console.WriteLine("  Per class IoU:");
foreach (var (name, iou) in metrics.PerClassIoU)
    Console.WriteLine($"    {name,-12} {(double.IsNaN(iou) ? "-" : iou.ToString("F4"))}");
