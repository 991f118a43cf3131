using System.Diagnostics;
using System.Globalization;
using Crate.Core.Data;
using Crate.MLNet;
using Crate.Training;
using FeaturizerLightGbm;
using Microsoft.ML;

// CRATE as a featurizer: its pooled features feed LightGBM. Options:
//   --onnx FILE      a trained Crate ONNX model (e.g. samples/FashionMnistClassification's FashionMnistModel.onnx);
//                    without it a CRATE-mini is trained here first (--crate-epochs, --steps)
//   --train N --test N --iterations N --output DIR (default: next to the binaries)
ProcessTuning.Apply(); // before libtorch loads: on shared cores spinning OpenMP threads slow training several-fold
var o = Options.Parse(args);
Directory.CreateDirectory(o.Output);
CrateLightGbmModel.MLNetModelPath = Path.GetFullPath(Path.Combine(o.Output, "CrateLightGbmModel.zip"));
var ml = new MLContext(seed: 1);
var trainSet = IdxReader.FashionMnist(train: true, limit: o.Train);
var testSet = IdxReader.FashionMnist(train: false, limit: o.Test);
var train = ml.Data.LoadFromImageDataset(trainSet);
var test = ml.Data.LoadFromImageDataset(testSet);

var onnx = o.Onnx;
if (onnx == null)
{
    onnx = Path.GetFullPath(Path.Combine(o.Output, "crate-featurizer.onnx"));
    Console.WriteLine($"No --onnx given: training CRATE-mini on {trainSet.Count:N0} images for {o.CrateEpochs} epoch(s) to featurize with...");
    ml.Transforms.Conversion.MapValueToKey("Label")
        .Append(ml.MulticlassClassification.Trainers.Crate(new CrateImageClassificationTrainer.Options
        {
            Epochs = o.CrateEpochs, WarmupEpochs = 0.5, MaxStepsPerEpoch = o.Steps, ValidationFraction = 0, OnnxModelPath = onnx,
            MetricsCallback = m => Console.WriteLine($"  {m}"),
        }))
        .Fit(train);
}

var clock = Stopwatch.StartNew();
Console.WriteLine($"Training LightGBM ({o.Iterations} iterations) on the CRATE features of {trainSet.Count:N0} images...");
var model = CrateLightGbmModel.RetrainModel(ml, train, onnx, o.Iterations);
CrateLightGbmModel.SaveModel(ml, model, train.Schema);
Console.WriteLine($"Trained in {clock.Elapsed.TotalSeconds:F0} s; saved {CrateLightGbmModel.MLNetModelPath}.");

var first = CrateLightGbmModel.Predict(new ModelInput { Image = testSet.Image(0).ToArray() });
Console.WriteLine($"Reloaded model, test image 0: {first.PredictedLabel} (p = {first.Score.Max():F2}), actual {testSet.ClassNames[testSet.Label(0)]}.");

var reloaded = new MLContext(seed: 1).Model.Load(CrateLightGbmModel.MLNetModelPath, out _);
var metrics = ml.MulticlassClassification.Evaluate(reloaded.Transform(test));
// CRATE's own classifier on the same images, its labels keyed in the network's class order.
var crate = ml.Transforms.ApplyCrateClassifier(onnx);
var keyed = ml.Transforms.Conversion.MapValueToKey("Label", keyData: ml.Data.LoadFromEnumerable(crate.ModelConfig.ClassNames.Select(n => new ClassName(n))))
    .Fit(test).Transform(test);
var crateHead = ml.MulticlassClassification.Evaluate(crate.Fit(keyed).Transform(keyed));
Console.WriteLine();
Console.WriteLine($"Test metrics ({testSet.Count:N0} images):");
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  CRATE features + LightGBM: MicroAccuracy {metrics.MicroAccuracy:P2}, MacroAccuracy {metrics.MacroAccuracy:P2}, LogLoss {metrics.LogLoss:F4}"));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  CRATE's own head:          MicroAccuracy {crateHead.MicroAccuracy:P2}, MacroAccuracy {crateHead.MacroAccuracy:P2}, LogLoss {crateHead.LogLoss:F4}"));

internal sealed record ClassName(string Label);

internal sealed record Options(string? Onnx, int Train, int Test, int Iterations, int CrateEpochs, int? Steps, string Output)
{
    public static Options Parse(string[] args)
    {
        var o = new Options(null, 6_000, 2_000, 100, 2, null, AppContext.BaseDirectory);
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Number() => int.Parse(Value(), CultureInfo.InvariantCulture);
            o = args[i] switch
            {
                "--onnx" => o with { Onnx = Path.GetFullPath(Value()) },
                "--train" => o with { Train = Number() },
                "--test" => o with { Test = Number() },
                "--iterations" => o with { Iterations = Number() },
                "--crate-epochs" => o with { CrateEpochs = Number() },
                "--steps" => o with { Steps = Number() },
                "--output" => o with { Output = Value() },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'."),
            };
        }
        return o;
    }
}
