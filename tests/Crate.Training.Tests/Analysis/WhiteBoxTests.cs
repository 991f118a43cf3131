using Crate.Core.Model;
using Crate.Training.Analysis;
using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Tests.Analysis;

public class WhiteBoxTests
{
    private static readonly CrateConfig Tiny = new()
    {
        Dim = 16, Depth = 2, Heads = 2, DimHead = 8, ImageHeight = 8, ImageWidth = 8, PatchSize = 2, Channels = 1, NumClasses = 3,
        Mean = [0.3f], Std = [0.4f],
    };

    [SetUp]
    public void Seed() => torch.manual_seed(3);

    [Test]
    public void MeasuredMeansAreTheMeansOfPerImageValuesWhateverTheBatching()
    {
        var data = TestImages.Random(6, 2);
        using var model = new CrateModel(Tiny);
        var measured = WhiteBox.Measure(model, data, batchSize: 4);   // batches of 4 and 2, against one batch of 6 below
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        model.eval();
        var trace = model.Trace(ImageTensors.Normalised(data, Enumerable.Range(0, 6).ToArray(), Tiny), keepAttention: false);
        for (int l = 0; l < Tiny.Depth; l++)
        {
            var perImage = CodingRate.OfLayer(model.Layers[l], trace.Layers[l].Input, 2, 8).sum([1]).data<double>().ToArray();
            var zeros = Sparsity.ZeroFraction(trace.Layers[l].Codes).data<double>().ToArray();
            // float32 products of other batch shapes differ in the last bits: agreement to 1e-6, not exactly.
            Assert.That(measured.Layers[l].CodingRate.Mean, Is.EqualTo(perImage.Average()).Within(1e-6));
            Assert.That(measured.Layers[l].CodingRate.Max, Is.EqualTo(perImage.Max()).Within(1e-6));
            Assert.That(measured.Layers[l].Sparsity.Mean, Is.EqualTo(zeros.Average()).Within(1e-12));
        }
    }

    [Test]
    public void AttentionMapsAreTheClassTokenRowOverPatches()
    {
        var data = TestImages.Random(5, 4);
        using var model = new CrateModel(Tiny);
        var maps = WhiteBox.ClassTokenAttention(model, data, [4, 1]);
        Assert.That((maps.GridHeight, maps.GridWidth), Is.EqualTo((4, 4)));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var trace = model.Trace(ImageTensors.Normalised(data, [4, 1], Tiny), keepAttention: true);
        for (int l = 0; l < 2; l++)
        {
            var attention = trace.Layers[l].Attention!;                           // [B, heads, T, T]
            for (int i = 0; i < 2; i++)
                for (int h = 0; h < 2; h++)
                {
                    var row = attention[i, h, 0].data<float>().ToArray();
                    Assert.That(maps.Maps[i][l][h], Is.EqualTo(row[1..]).Within(1e-7), $"image {i}, layer {l}, head {h}");
                    Assert.That(maps.Maps[i][l][h].Sum() + row[0], Is.EqualTo(1).Within(1e-5), "softmax row sums to one");
                }
        }
    }

    [Test]
    public void VitMeasurementsMatchPlainLoops()
    {
        var data = TestImages.Random(7, 6);
        // Layer 0 of the ViT, recomputed here: LN1 and the value rows of to_qkv in plain loops, then the rate, the
        // near-zero fraction of the layer's output and the coherence of W_2's columns.
        using var vit = new VitModel(Tiny);
        // One batch of all images, as below: the same float32 products, so the near-zero counts agree exactly.
        var measuredAll = WhiteBox.Measure(vit, data, batchSize: data.Count);
        vit.eval();
        var parameters = vit.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().data<float>().ToArray());
        var gamma = parameters["transformer.layers.0.0.norm.weight"];
        var beta = parameters["transformer.layers.0.0.norm.bias"];
        var qkv = parameters["transformer.layers.0.0.fn.to_qkv.weight"];              // [3 * heads * dim_head, dim]: q, k, then v rows
        var w2 = parameters["transformer.layers.0.1.fn.net.3.weight"];                 // [dim, 4 dim]
        int dim = Tiny.Dim, inner = Tiny.Heads * Tiny.DimHead, tokens = Tiny.NumPatches + 1, hidden = 4 * dim;
        float[] input, after, output;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var z = vit.Embed(ImageTensors.Normalised(data, Enumerable.Range(0, data.Count).ToArray(), Tiny));
            var next = vit.Layers[0].Forward(z, false, out var h, out _);
            (input, after, output) = (z.data<float>().ToArray(), h.data<float>().ToArray(), next.data<float>().ToArray());
        }
        double Rate(float[] x, int image) => Enumerable.Range(0, Tiny.Heads).Sum(k =>
        {
            var normed = Enumerable.Range(0, tokens).Select(t => CodingRateTests.LayerNorm(x.AsSpan((image * tokens + t) * dim, dim).ToArray(), gamma, beta)).ToArray();
            var head = normed.Select(v => Enumerable.Range(0, Tiny.DimHead)
                .Select(d => Enumerable.Range(0, dim).Sum(i => qkv[(2 * inner + k * Tiny.DimHead + d) * dim + i] * v[i])).ToArray()).ToArray();
            return CodingRateTests.ReferenceRate(head, CodingRate.DefaultEpsSquared);
        });
        double NearZero(int image)
        {
            var x = output.AsSpan(image * tokens * dim, tokens * dim).ToArray();
            double rms = Math.Sqrt(x.Average(v => (double)v * v));
            return x.Count(v => Math.Abs(v) <= Sparsity.DefaultNearZeroTolerance * rms) / (double)x.Length;
        }
        var measured = measuredAll.Layers[0];
        var images = Enumerable.Range(0, data.Count).ToArray();
        Assert.That(measured.CodingRate.Mean, Is.EqualTo(images.Average(i => Rate(input, i))).Within(1e-4));
        Assert.That(measured.CodingRateAfterMssa.Mean, Is.EqualTo(images.Average(i => Rate(after, i))).Within(1e-4));
        Assert.That(measured.NearZero.Mean, Is.EqualTo(images.Average(NearZero)).Within(1e-9));
        Assert.That(measured.Sparsity.Mean, Is.EqualTo(images.Average(i => output.AsSpan(i * tokens * dim, tokens * dim).ToArray().Count(v => v == 0) / (double)(tokens * dim))));
        var cosines = new List<double>();
        for (int a = 0; a < hidden; a++)
            for (int b = a + 1; b < hidden; b++)
            {
                double dot = 0, na = 0, nb = 0;
                for (int d = 0; d < dim; d++) { double x = w2[d * hidden + a], y = w2[d * hidden + b]; dot += x * y; na += x * x; nb += y * y; }
                cosines.Add(Math.Abs(dot) / Math.Sqrt(na * nb));
            }
        Assert.That(measured.Dictionary.MaxAbsCosine, Is.EqualTo(cosines.Max()).Within(1e-9));
        Assert.That(measured.Dictionary.MeanAbsCosine, Is.EqualTo(cosines.Average()).Within(1e-9));
    }
}
