using Crate.Core.Model;
using Crate.Core.Weights;
using Crate.Training.Adaptation;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Tests.Adaptation;

/// <summary>Prompt tokens as part of the trunk: where they sit, what they leave alone, and that prompt-tuned weights are ordinary weights.</summary>
public class PromptTokenTests
{
    private static readonly CrateConfig Tiny = new() { Dim = 16, Depth = 2, Heads = 2, DimHead = 8, ImageHeight = 8, ImageWidth = 8, PatchSize = 2, Channels = 1, NumClasses = 3 };

    private static float[] Floats(Tensor t) => t.contiguous().data<float>().ToArray();

    [TestCase(Architectures.Crate)]
    [TestCase(Architectures.Vit)]
    public void PromptsFollowTheClassTokenWithoutPositionsAndLeaveTheRestAsItWas(string architecture)
    {
        using var scope = torch.NewDisposeScope();
        const int k = 3;
        torch.manual_seed(5);
        var plain = Architectures.Create(architecture, Tiny);
        torch.manual_seed(5);
        var prompted = Architectures.Create(architecture, Tiny with { PromptTokens = k });
        var plainParameters = plain.Module.named_parameters().ToDictionary(p => p.name, p => Floats(p.parameter));
        var promptedParameters = prompted.Module.named_parameters().ToDictionary(p => p.name, p => Floats(p.parameter));

        // The same seed gives the same trunk (prompts are drawn last), plus one [1, k, dim] tensor drawn from N(0, 0.02^2).
        Assert.That(promptedParameters.Keys.Except(plainParameters.Keys), Is.EqualTo(new[] { "prompt_tokens" }));
        foreach (var (name, values) in plainParameters) Assert.That(promptedParameters[name], Is.EqualTo(values), name);
        var prompts = promptedParameters["prompt_tokens"];
        Assert.That(prompts, Has.Length.EqualTo(k * Tiny.Dim));
        double std = Math.Sqrt(prompts.Average(v => (double)v * v));
        Assert.That(std, Is.InRange(0.013, 0.027), "prompts start at std 0.02");

        plain.Module.eval();
        prompted.Module.eval();
        var images = torch.randn(2, 1, 8, 8);
        var expected = plain.Embed(images);            // [B, 1 + N, dim]
        var tokens = prompted.Embed(images);           // [B, 1 + k + N, dim]
        Assert.That(tokens.shape, Is.EqualTo(new long[] { 2, 1 + k + Tiny.NumPatches, Tiny.Dim }));
        Assert.That(Floats(tokens.narrow(1, 0, 1)), Is.EqualTo(Floats(expected.narrow(1, 0, 1))), "class token with its position");
        Assert.That(Floats(tokens.narrow(1, 1 + k, Tiny.NumPatches)), Is.EqualTo(Floats(expected.narrow(1, 1, Tiny.NumPatches))), "patches with their positions");
        for (int b = 0; b < 2; b++)
            Assert.That(Floats(tokens[b].narrow(0, 1, k)), Is.EqualTo(prompts), $"image {b}: the prompts as they are, no position added");
    }

    [Test]
    public void PromptParametersAreTheLayoutAndSurviveAWeightsRoundTrip()
    {
        var config = Tiny with { PromptTokens = 4 };
        using var model = new CrateModel(config);
        var actual = model.named_parameters().Select(p => (p.name, string.Join("x", p.parameter.shape))).ToList();
        var expected = CrateWeights.Layout(config).Select(p => (p.Name, string.Join("x", p.Shape))).ToList();
        Assert.That(actual, Is.EqualTo(expected));
        Assert.That(actual[2], Is.EqualTo(("prompt_tokens", "1x4x16")));
        Assert.That(model.ParameterCount(), Is.EqualTo(config.ParameterCount()));
        Assert.That(config.ParameterCount() - Tiny.ParameterCount(), Is.EqualTo(4 * 16));

        // Weights of a network without prompts do not load into one with prompts, and the error says why.
        using var plain = new CrateModel(Tiny);
        var error = Assert.Throws<SafetensorsException>(() => model.LoadWeights(plain.ToWeights()));
        Assert.That(error!.Message, Does.Contain("4 prompt tokens"));
    }

    [Test]
    public void PromptTunedClassifierSavesAsOrdinaryCrateWeightsThatGiveTheSameLogits()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(9);
        var trunk = new CrateModel(Tiny).ToWeights();
        using var adapted = new AdaptedClassifier(trunk, classes: 4, AdaptationMethod.PromptTuning, promptTokens: 3);
        var freshPrompts = Floats(adapted.Model.Prompts!);
        var optimizer = torch.optim.AdamW(adapted.TrainableParameters, 1e-2);
        adapted.Train(true);
        for (int step = 0; step < 3; step++)
        {
            using var stepScope = torch.NewDisposeScope();
            optimizer.zero_grad();
            adapted.Loss(torch.randn(6, 1, 8, 8), torch.randint(0, 4, 6)).backward();
            optimizer.step();
        }
        adapted.Train(false);
        var weights = adapted.ToWeights();
        Assert.That(weights.Config.PromptTokens, Is.EqualTo(3));
        Assert.That(weights.Config.NumClasses, Is.EqualTo(4));
        Assert.That(weights.Tensors.Select(t => t.Name), Is.EqualTo(CrateWeights.Layout(weights.Config).Select(p => p.Name)));

        var path = Path.Combine(Path.GetTempPath(), $"crate-prompt-{Guid.NewGuid():N}.safetensors");
        try
        {
            weights.Save(path);
            using var reloaded = CrateModelWeights.LoadModel(path);
            reloaded.eval();
            var images = torch.randn(5, 1, 8, 8);
            using var noGrad = torch.no_grad();
            var logits = adapted.forward(images);
            Assert.That(Floats(logits).Select(Math.Abs).Max(), Is.GreaterThan(0.01f), "logits are not trivially zero");
            Assert.That(Floats(reloaded.forward(images)), Is.EqualTo(Floats(logits)));
            // The file holds the trained prompts (training moved them away from their initial values).
            Assert.That(Floats(reloaded.Prompts!), Is.EqualTo(Floats(adapted.Model.Prompts!)));
            Assert.That(Floats(reloaded.Prompts!), Is.Not.EqualTo(freshPrompts));
        }
        finally { File.Delete(path); }
    }

    [TestCase(Architectures.Crate)]
    [TestCase(Architectures.Vit)]
    public void SegmentationHeadSeesThePatchTokensOnly(string architecture)
    {
        using var scope = torch.NewDisposeScope();
        const int k = 2;
        var trunk = Architectures.Create(architecture, Tiny with { PromptTokens = k });
        using var model = new SegmentationModel(trunk, numClasses: 3);
        model.eval();
        using var noGrad = torch.no_grad();
        var images = torch.randn(2, 1, 8, 8);
        var tokens = trunk.ForwardTokens(trunk.Embed(images));
        // Tokens 0 (class) and 1..k (prompts) are skipped: the head reads tokens 1 + k .. 1 + k + N - 1.
        var expected = model.Head.forward(tokens.narrow(1, 1 + k, Tiny.NumPatches), images);
        Assert.That(Floats(model.forward(images)), Is.EqualTo(Floats(expected)));
    }
}
