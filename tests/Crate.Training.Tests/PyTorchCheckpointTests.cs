using System.Diagnostics;
using Crate.Core.Weights;
using Crate.Training.Model;
using TorchSharp;

namespace Crate.Training.Tests;

/// <summary>The route for users with a reference PyTorch checkpoint: .pth -> scripts/reference/convert_pth.py -> Crate.</summary>
public class PyTorchCheckpointTests
{
    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Crate.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Crate.sln not found above the test directory");
    }

    private static string Python(params string[] args)
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python)) Assert.Fail("Debian's python3 with python3-torch is needed: run scripts/setup.sh");
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.EqualTo(0), $"python {string.Join(' ', args)} failed: {stdout} {stderr.Result}");
        return stdout;
    }

    [Test]
    public void CrateWeightsLoadStrictlyIntoPyTorchAndGiveTheSameLogits()
    {
        var dir = Path.Combine(Path.GetTempPath(), "crate-topt-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var config = new Crate.Core.Model.CrateConfig { Dim = 48, Depth = 2, Heads = 4, DimHead = 12, ImageHeight = 16, ImageWidth = 12, PatchSize = 4, Channels = 3, NumClasses = 6, Pool = Crate.Core.Model.Pooling.Mean };
            using var scope = torch.NewDisposeScope();
            torch.manual_seed(11);
            using var model = new CrateModel(config);
            model.eval();
            var weightsPath = Path.Combine(dir, "w.safetensors");
            model.SaveWeights(weightsPath);
            var images = torch.randn(3, 3, 16, 12);
            using (torch.no_grad())
            {
                var logits = model.forward(images);
                Safetensors.Write(Path.Combine(dir, "io.safetensors"), [
                    NamedTensor.FromFloats("images", images.shape, images.data<float>().ToArray()),
                    NamedTensor.FromFloats("logits", logits.shape, logits.data<float>().ToArray())]);
            }
            var output = Python(Path.Combine(RepoRoot(), "scripts", "reference", "check_crate_weights.py"), weightsPath, Path.Combine(dir, "io.safetensors"));
            Assert.That(output, Does.Contain("\"tensors\": " + CrateWeightsLayoutCount(config)));
        }
        finally { Directory.Delete(dir, true); }
    }

    private static int CrateWeightsLayoutCount(Crate.Core.Model.CrateConfig config) => Crate.Core.Model.CrateWeights.Layout(config).Count;

    [Test]
    public void ConvertedDataParallelCheckpointGivesPyTorchsLogits()
    {
        var dir = Path.Combine(Path.GetTempPath(), "crate-pth-" + Guid.NewGuid().ToString("N"));
        try
        {
            var scripts = Path.Combine(RepoRoot(), "scripts", "reference");
            Python(Path.Combine(scripts, "checkpoint_roundtrip.py"), dir);
            Python(Path.Combine(scripts, "convert_pth.py"), Path.Combine(dir, "reference.pth"), Path.Combine(dir, "w.safetensors"));

            using var scope = torch.NewDisposeScope();
            using var model = CrateModelWeights.LoadModel(Path.Combine(dir, "w.safetensors"));
            Assert.That((model.Config.Dim, model.Config.Heads, model.Config.Depth, model.Config.PatchSize, model.Config.ImageHeight),
                Is.EqualTo((384, 6, 2, 4, 16)));
            model.eval();
            var io = Safetensors.Read(Path.Combine(dir, "io.safetensors"));
            io.TryGet("images", out var images);
            io.TryGet("logits", out var expected);
            using var _ = torch.no_grad();
            var logits = model.forward(torch.tensor(images.ToFloats(), images.Shape)).data<float>().ToArray();
            Assert.That(logits.Zip(expected.ToFloats(), (a, b) => Math.Abs(a - b)).Max(), Is.LessThanOrEqualTo(1e-4f));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
