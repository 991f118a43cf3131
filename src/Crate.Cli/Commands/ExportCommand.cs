using System.CommandLine;
using System.Diagnostics;
using Crate.Core.Model;
using Crate.Onnx;
using Crate.Onnx.Export;

namespace Crate.Cli.Commands;

/// <summary><c>crate export</c>: write a weights file as a standard ONNX model (see <see cref="CrateOnnxSchema"/>).</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var weights = new Option<FileInfo>("--weights") { Description = "Safetensors weights to export (written by Crate: they carry their configuration).", Required = true };
        var output = new Option<FileInfo>("--out") { Description = "ONNX file to write (replaced atomically).", Required = true };
        var attention = new Option<bool>("--attention") { Description = "Also output every layer's attention maps, attention_{i} [batch, heads, T, T]." };
        var tokens = new Option<bool>("--tokens") { Description = "Also output the last layer's patch tokens, patch_tokens [batch, patches, dim]." };
        var command = new Command("export",
            "Export weights to ONNX (opset 17): input 'image' float32 [batch, C, H, W] of raw 0..255 pixels (normalised in the graph); " +
            "outputs 'logits', 'probabilities', 'features'.") { weights, output, attention, tokens };
        command.SetAction(parse =>
        {
            var source = parse.GetValue(weights)!.FullName;
            var target = parse.GetValue(output)!.FullName;
            var clock = Stopwatch.StartNew();
            var w = CrateWeights.Load(source);
            var options = new CrateOnnxExportOptions { IncludeAttention = parse.GetValue(attention), IncludePatchTokens = parse.GetValue(tokens) };
            CrateOnnxExporter.ExportToFile(w, target, options);
            var c = w.Config;
            Console.WriteLine($"exported {c}");
            Console.WriteLine($"  to {target} ({new FileInfo(target).Length:N0} bytes, {clock.Elapsed.TotalSeconds:F1} s)");
            Console.WriteLine($"  input  image [batch, {c.Channels}, {c.ImageHeight}, {c.ImageWidth}] float32, pixels 0..255");
            var extra = (options.IncludeAttention ? $", attention_0..{c.Depth - 1}" : "") + (options.IncludePatchTokens ? ", patch_tokens" : "");
            Console.WriteLine($"  output logits, probabilities, features{extra}");
            return 0;
        });
        return command;
    }
}
