using System.Globalization;
using ConsumeWithoutCrate;

// Usage: ConsumeWithoutCrate MODEL(.zip|.onnx) IMAGE...
// Prints the class names (a comment line), then one tab-separated line per image: file, predicted class, probability of each class;
// for a saved segmentation model, "# segmentation", then per image: file, the class id of every pixel (row-major, comma-separated).
if (args.Length < 2)
{
    Console.Error.WriteLine("usage: ConsumeWithoutCrate MODEL.zip|MODEL.onnx IMAGE [IMAGE...]");
    return 2;
}
CrateModel.ModelPath = args[0];
Console.WriteLine($"# {args[0]}: no Crate, no TorchSharp in this process ({AppDomain.CurrentDomain.GetAssemblies().Count(a => a.GetName().Name!.StartsWith("Crate", StringComparison.Ordinal))} Crate assemblies loaded)");
if (CrateModel.IsSegmentation)
{
    Console.WriteLine("# segmentation");
    foreach (var image in args.Skip(1)) Console.WriteLine($"{image}\t{string.Join(",", CrateModel.Segment(new ModelInput { ImagePath = image }))}");
    return 0;
}
Console.WriteLine($"# classes\t{string.Join('\t', CrateModel.ClassNames)}");
foreach (var image in args.Skip(1))
{
    var output = CrateModel.Predict(new ModelInput { ImagePath = image });
    var scores = string.Join(",", output.Score.Select(s => s.ToString("R", CultureInfo.InvariantCulture)));
    Console.WriteLine($"{image}\t{output.PredictedLabel}\t{scores}");
}
return 0;
