using Crate.Core.Model;
using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Tests.Segmentation;

public class VitModelTests
{
    [Test]
    public void ParameterCountMatchesTheStandardViTFormula()
    {
        var c = CratePresets.Mini;
        using var vit = new VitModel(c);
        long d = c.Dim, inner = c.InnerDim, hidden = 4 * d, pd = c.PatchDim;
        long embed = 2 * pd + pd * d + d + 2 * d + (c.NumPatches + 1) * d + d;
        long layer = 2 * d + 3 * inner * d + inner * d + d      // LN1, to_qkv (no bias), to_out
                   + 2 * d + d * hidden + hidden + hidden * d + d; // LN2, MLP
        long head = 2 * d + d * c.NumClasses + c.NumClasses;
        Assert.That(vit.ParameterCount(), Is.EqualTo(embed + c.Depth * layer + head));
        var names = vit.named_parameters().Select(p => p.name).ToList();
        Assert.That(names, Does.Contain("transformer.layers.0.0.fn.to_qkv.weight").And.Contain("transformer.layers.5.1.fn.net.3.weight").And.Contain("mlp_head.1.bias"));
    }

    [Test]
    public void TraceKeepsAttentionAndAgreesWithTheFusedForward()
    {
        torch.manual_seed(5);
        using var vit = new VitModel(CratePresets.Mini with { Depth = 2 });
        vit.eval();
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(3, 1, 28, 28);
        var trace = vit.Trace(images);
        Assert.That(trace.Layers, Has.Count.EqualTo(2));
        var attention = trace.Layers[1].Attention!;
        Assert.That(attention.shape, Is.EqualTo(new long[] { 3, 6, 50, 50 }));
        Assert.That(attention.sum(-1).sub(1).abs().max().item<float>(), Is.LessThan(1e-5f), "softmax rows sum to 1");
        Assert.That(trace.Logits.sub(vit.forward(images)).abs().max().item<float>(), Is.LessThan(1e-4f), "explicit attention = fused kernel");
        // The MLP block has a residual: the layer output minus its input after attention is the MLP's contribution, not the output itself.
        Assert.That(trace.Layers[0].Codes.sub(trace.Layers[0].Compressed).abs().max().item<float>(), Is.GreaterThan(0));
    }
}
