using System.CommandLine;
using System.Diagnostics;
using Crate.Core.Model;
using Crate.Onnx;
using Crate.Onnx.Deploy;
using Crate.Onnx.Export;

namespace Crate.Cli.Commands;

/// <summary><c>crate export</c>: write a weights file as a standard ONNX model (see <see cref="CrateOnnxSchema"/>).</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var weights = new Option<FileInfo>("--weights") { Description = "Safetensors weights to export (written by Crate: they carry their configuration).", Required = true };
        var output = new Option<FileInfo?>("--out") { Description = "ONNX file to write (replaced atomically)." };
        var triton = new Option<DirectoryInfo?>("--triton") { Description = "Also (or instead) write a Triton Inference Server model repository entry into this folder." };
        var tritonName = new Option<string>("--triton-name") { Description = "Model name in the Triton repository.", DefaultValueFactory = _ => "crate" };
        var tritonInstances = new Option<TritonInstances>("--triton-instances") { Description = "Instance groups: Cpu, Gpu, or \"Cpu, Gpu\".", DefaultValueFactory = _ => TritonInstances.Cpu | TritonInstances.Gpu };
        var maxBatch = new Option<int>("--max-batch") { Description = "Triton max_batch_size.", DefaultValueFactory = _ => 64 };
        var attention = new Option<bool>("--attention") { Description = "Also output every layer's attention maps, attention_{i} [batch, heads, T, T]." };
        var tokens = new Option<bool>("--tokens") { Description = "Also output the last layer's patch tokens, patch_tokens [batch, patches, dim]." };
        var int8 = new Option<bool>("--int8")
        {
            Description = "Dynamically quantize the trunk's weight products to int8 (weights int8 with per-column scales from the weights, no calibration; " +
                          "activations quantized at run time; standard ONNX operators only). Smaller and faster on CPUs with int8 dot products, slightly less exact.",
        };
        var command = new Command("export",
            "Export weights to ONNX (opset 17): input 'image' float32 [batch, C, H, W] of raw 0..255 pixels (normalised in the graph); " +
            "outputs 'logits', 'probabilities', 'features'.") { weights, output, attention, tokens, int8, triton, tritonName, tritonInstances, maxBatch };
        command.SetAction(parse =>
        {
            var source = parse.GetValue(weights)!.FullName;
            var target = parse.GetValue(output)?.FullName;
            var repository = parse.GetValue(triton)?.FullName;
            if (target is null && repository is null) throw new ArgumentException("Say where to write the model: --out FILE, --triton DIR, or both.");
            var clock = Stopwatch.StartNew();
            var w = CrateWeights.Load(source);
            var options = new CrateOnnxExportOptions
            {
                IncludeAttention = parse.GetValue(attention), IncludePatchTokens = parse.GetValue(tokens),
                Precision = parse.GetValue(int8) ? CrateOnnxPrecision.Int8 : CrateOnnxPrecision.Float32,
            };
            var onnx = CrateOnnxExporter.Export(w, options);
            var c = w.Config;
            Console.WriteLine($"exported {c}, {CrateOnnxSchema.PrecisionName(options.Precision)}");
            if (target is not null)
            {
                Crate.Core.IO.AtomicFile.WriteAllBytes(target, onnx);
                Console.WriteLine($"  to {target} ({onnx.Length:N0} bytes, {clock.Elapsed.TotalSeconds:F1} s)");
            }
            if (repository is not null)
            {
                var tritonOptions = new TritonOptions { Name = parse.GetValue(tritonName)!, Instances = parse.GetValue(tritonInstances), MaxBatchSize = parse.GetValue(maxBatch) };
                var config = TritonRepository.Write(onnx, repository, tritonOptions);
                Console.WriteLine($"  Triton repository entry: {config}");
                Console.WriteLine($"  serve it with: tritonserver --model-repository={repository}");
            }
            Console.WriteLine($"  input  image [batch, {c.Channels}, {c.ImageHeight}, {c.ImageWidth}] float32, pixels 0..255");
            var extra = (options.IncludeAttention ? $", attention_0..{c.Depth - 1}" : "") + (options.IncludePatchTokens ? ", patch_tokens" : "");
            Console.WriteLine($"  output logits, probabilities, features{extra}");
            return 0;
        });
        return command;
    }
}
