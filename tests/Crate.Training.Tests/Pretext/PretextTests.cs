using Crate.Core.Model;
using Crate.Training.Adaptation;
using Crate.Training.Model;
using Crate.Training.Pretext;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Tests.Pretext;

public class PretextTests
{
    private static readonly CrateConfig Tiny = new() { Dim = 16, Depth = 2, Heads = 2, DimHead = 8, ImageHeight = 8, ImageWidth = 8, PatchSize = 2, Channels = 1, NumClasses = 3 };

    [Test]
    public void MaskingHidesTheRatioAndUnshuffleRestoresOrder()
    {
        using var scope = torch.NewDisposeScope();
        var mask = PatchMask.Random(3, 16, 0.75, new Generator(1));
        Assert.That(mask.Keep.shape, Is.EqualTo(new long[] { 3, 4 }));
        Assert.That(mask.Masked.sum(1).data<float>().ToArray(), Is.All.EqualTo(12f));
        // Token i carries value i: selecting then unshuffling (hidden places filled with -1) puts every kept
        // token back at its own index, and -1 exactly where the mask says hidden.
        var tokens = torch.arange(16, dtype: ScalarType.Float32).view(1, 16, 1).expand(3, 16, 1).contiguous();
        var restored = mask.Unshuffle(mask.Select(tokens), torch.full(1, 1, 1, -1f)).squeeze(-1);
        var masked = mask.Masked.data<float>().ToArray();
        var values = restored.data<float>().ToArray();
        for (int i = 0; i < values.Length; i++)
            Assert.That(values[i], Is.EqualTo(masked[i] == 1 ? -1f : i % 16), $"row {i / 16}, patch {i % 16}");
        // Different images get different masks.
        Assert.That(mask.Masked[0].allclose(mask.Masked[1]) && mask.Masked[1].allclose(mask.Masked[2]), Is.False);
    }

    [Test]
    public void RotationTurnsEachImageCounterClockwiseByItsLabel()
    {
        using var scope = torch.NewDisposeScope();
        const int n = 4;
        var images = torch.arange(2 * n * n, dtype: ScalarType.Float32).view(2, 1, n, n);
        var rotated = RotationPrediction.Rotate(images, torch.tensor(new long[] { 1, 3 })).data<float>().ToArray();
        var source = images.data<float>().ToArray();
        for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
        {
            // 90 degrees counter-clockwise: out[i, j] = in[j, n-1-i]; 270 degrees: out[i, j] = in[n-1-j, i].
            Assert.That(rotated[i * n + j], Is.EqualTo(source[j * n + (n - 1 - i)]));
            Assert.That(rotated[n * n + i * n + j], Is.EqualTo(source[n * n + (n - 1 - j) * n + i]));
        }
        using var model = new CrateModel(Tiny with { NumClasses = 4 });
        var turns = new RotationPrediction(model, seed: 3).DrawTurns(400).data<long>().ToArray();
        Assert.That(Enumerable.Range(0, 4).Select(k => turns.Count(t => t == k)), Is.All.InRange(70, 130));
    }

    [Test]
    public void InfoNceMatchesAHandComputation()
    {
        var a = new[,] { { 1.0, 0.0 }, { 0.6, 0.8 } };
        var b = new[,] { { 0.8, 0.6 }, { 0.0, 1.0 } };
        const double t = 0.5;
        using var scope = torch.NewDisposeScope();
        var loss = Contrastive.InfoNce(torch.tensor(new float[] { 1, 0, 0.6f, 0.8f }, [2, 2]), torch.tensor(new float[] { 0.8f, 0.6f, 0, 1 }, [2, 2]), t).item<float>();
        // All vectors are unit length: similarity = dot product. Views 0,1 from a; 2,3 from b; partner of k is k+-2.
        var z = new[] { (a[0, 0], a[0, 1]), (a[1, 0], a[1, 1]), (b[0, 0], b[0, 1]), (b[1, 0], b[1, 1]) };
        double total = 0;
        for (int k = 0; k < 4; k++)
        {
            int partner = (k + 2) % 4;
            double denominator = 0;
            for (int j = 0; j < 4; j++) if (j != k) denominator += Math.Exp((z[k].Item1 * z[j].Item1 + z[k].Item2 * z[j].Item2) / t);
            double positive = (z[k].Item1 * z[partner].Item1 + z[k].Item2 * z[partner].Item2) / t;
            total += -(positive - Math.Log(denominator));
        }
        Assert.That(loss, Is.EqualTo(total / 4).Within(1e-5));
    }

    [Test]
    public void MaskedAutoencoderLearnsToReconstructABatch()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(2);
        var mae = new MaskedAutoencoder(new CrateModel(Tiny), decoderDepth: 1, seed: 4);
        var images = torch.randn(4, 1, 8, 8);
        var optimizer = torch.optim.Adam(mae.TrainableParameters, 3e-3);
        float first = 0, last = 0;
        for (int step = 0; step < 60; step++)
        {
            using var stepScope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var loss = mae.Loss(images, torch.zeros(4, ScalarType.Int64));
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.That(last, Is.LessThan(first * 0.7f), $"loss {first} -> {last}");
    }

    [TestCase(AdaptationMethod.PromptTuning)]
    [TestCase(AdaptationMethod.LinearProbe)]
    public void FrozenBackboneStaysBitIdenticalAndOnlyTheAdapterTrains(AdaptationMethod method)
    {
        using var scope = torch.NewDisposeScope();
        var trunk = new CrateModel(Tiny).ToWeights();
        var adapted = new AdaptedClassifier(trunk, classes: 5, method, promptTokens: 3);
        long headCount = 2 * 16 + 16 * 5 + 5;
        Assert.That(adapted.TrainableParameterCount, Is.EqualTo(method == AdaptationMethod.PromptTuning ? headCount + 3 * 16 : headCount));
        var optimizer = torch.optim.AdamW(adapted.TrainableParameters, 1e-2, weight_decay: 0.1);
        var headBefore = adapted.TrainableParameters[0].data<float>().ToArray();
        for (int step = 0; step < 3; step++)
        {
            using var stepScope = torch.NewDisposeScope();
            optimizer.zero_grad();
            adapted.Loss(torch.randn(6, 1, 8, 8), torch.randint(0, 5, 6)).backward();
            optimizer.step();
        }
        // Every trunk weight is still the pretrained one; only the head (and the prompts) are new.
        var trunkNames = CrateWeights.Layout(Tiny).Select(p => p.Name).Where(n => !n.StartsWith("mlp_head.", StringComparison.Ordinal)).ToList();
        var after = adapted.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        foreach (var name in trunkNames)
            Assert.That(after[name], Is.EqualTo(trunk.Floats(name)), name);
        Assert.That(after.Keys.Where(n => !n.StartsWith("mlp_head.", StringComparison.Ordinal)),
            Is.EquivalentTo(method == AdaptationMethod.PromptTuning ? [.. trunkNames, "prompt_tokens"] : trunkNames));
        Assert.That(adapted.TrainableParameters[0].data<float>().ToArray(), Is.Not.EqualTo(headBefore));
        Assert.That(adapted.Tokens(torch.randn(2, 1, 8, 8)).shape[1], Is.EqualTo(method == AdaptationMethod.PromptTuning ? 17 + 3 : 17));
    }

    [Test]
    public void FineTuningTheLastLayerLeavesEarlierLayersFrozen()
    {
        using var scope = torch.NewDisposeScope();
        var adapted = new AdaptedClassifier(new CrateModel(Tiny).ToWeights(), 5, AdaptationMethod.FineTune, fineTuneLastLayers: 1);
        var backbone = adapted.Model;
        Assert.That(backbone.Layers[0].parameters().All(p => !p.requires_grad), Is.True);
        Assert.That(backbone.Layers[1].parameters().All(p => p.requires_grad), Is.True);
        Assert.That(adapted.TrainableParameterCount, Is.EqualTo(backbone.Layers[1].parameters().Sum(p => p.numel()) + 2 * 16 + 16 * 5 + 5));
    }
}
