using System.Diagnostics;
using Crate.Core.Data;
using Crate.MLNet;
using Crate.Training;
using FashionMnistClassification;
using Microsoft.ML;
using Microsoft.ML.Data;

// Fashion-MNIST with a CRATE classifier in ML.NET: train, save, reload, predict, evaluate.
ProcessTuning.Apply(); // before libtorch loads: on shared cores spinning OpenMP threads slow training several-fold
var settings = Settings.Parse(args);
Directory.CreateDirectory(settings.OutputDirectory);
FashionMnistModel.MLNetModelPath = Path.GetFullPath(Path.Combine(settings.OutputDirectory, "FashionMnistModel.zip"));
var ml = new MLContext(seed: 1);

var trainSet = IdxReader.FashionMnist(train: true, limit: settings.TrainImages);
var testSet = IdxReader.FashionMnist(train: false, limit: settings.TestImages);
var train = ml.Data.LoadFromImageDataset(trainSet);
var test = ml.Data.LoadFromImageDataset(testSet);
Console.WriteLine($"Training CRATE-mini on {trainSet.Count:N0} Fashion-MNIST images for {settings.Epochs} epoch(s) ({Environment.ProcessorCount} cores)...");

var clock = Stopwatch.StartNew();
var model = FashionMnistModel.RetrainModel(ml, train, settings, m => Console.WriteLine($"  {m}"));
Console.WriteLine($"Trained in {clock.Elapsed.TotalSeconds:F0} s.");
FashionMnistModel.SaveModel(ml, model, train.Schema);
Console.WriteLine($"Saved {FashionMnistModel.MLNetModelPath} ({new FileInfo(FashionMnistModel.MLNetModelPath).Length / 1024:N0} KiB, the ONNX network inside) and {settings.OnnxPath}.");

// Reload and predict through the consumption class, as an application would.
Console.WriteLine();
Console.WriteLine("Predictions of the reloaded model:");
for (int i = 0; i < 5; i++)
{
    var output = FashionMnistModel.Predict(new ModelInput { Image = testSet.Image(i).ToArray() });
    var actual = testSet.ClassNames[testSet.Label(i)];
    Console.WriteLine($"  image {i}: {output.PredictedLabel,-12} (p = {output.Score.Max():F2})  actual {actual,-12} {(output.PredictedLabel == actual ? "right" : "wrong")}");
}

// Evaluate the reloaded model on the test images.
var reloaded = new MLContext(seed: 1).Model.Load(FashionMnistModel.MLNetModelPath, out _);
var scored = reloaded.Transform(test);
var metrics = ml.MulticlassClassification.Evaluate(scored);
var classNames = default(VBuffer<ReadOnlyMemory<char>>);
scored.Schema["Label"].GetKeyValues(ref classNames);
var names = classNames.DenseValues().Select(n => n.ToString()).ToArray();
Console.WriteLine();
Console.WriteLine($"Test metrics ({testSet.Count:N0} images):");
Console.WriteLine($"  MicroAccuracy    {metrics.MicroAccuracy:P2}");
Console.WriteLine($"  MacroAccuracy    {metrics.MacroAccuracy:P2}");
Console.WriteLine($"  LogLoss          {metrics.LogLoss:F4}");
Console.WriteLine($"  LogLossReduction {metrics.LogLossReduction:F4}");
Console.WriteLine("  Per class (recall):");
var counts = metrics.ConfusionMatrix.Counts;
for (int k = 0; k < names.Length; k++)
    Console.WriteLine($"    {names[k],-12} {counts[k][k] / Math.Max(1, counts[k].Sum()):P1}");

// The same model in batches, from the exported ONNX file.
using var scorer = new CrateBatchScorer(settings.OnnxPath);
clock.Restart();
var batched = ml.MulticlassClassification.Evaluate(scorer.Transform(ml.Transforms.Conversion.MapValueToKey("Label").Fit(train).Transform(test)));
Console.WriteLine();
Console.WriteLine($"Batched scoring (CrateBatchScorer): accuracy {batched.MicroAccuracy:P2}, {testSet.Count / clock.Elapsed.TotalSeconds:F0} images/s.");
