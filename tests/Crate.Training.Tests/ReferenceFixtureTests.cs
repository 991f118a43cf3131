using Crate.Core.Model;
using Crate.Core.Weights;
using Crate.Training.Model;
using TorchSharp;

namespace Crate.Training.Tests;

/// <summary>
/// Full forward passes against fixtures written by an independent PyTorch implementation
/// (scripts/reference/make_fixture.py): same weights, same input, logits to 1e-4.
/// </summary>
public class ReferenceFixtureTests
{
    private static string Fixture(string file) => Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", file);

    [TestCase("crate_rgb_cls")]
    [TestCase("crate_gray_mean")]
    public void LogitsMatchTheIndependentPyTorchImplementation(string name)
    {
        using var scope = torch.NewDisposeScope();
        using var model = CrateModelWeights.LoadModel(Fixture($"{name}.weights.safetensors"));
        model.eval();
        var io = Safetensors.Read(Fixture($"{name}.io.safetensors"));
        io.TryGet("images", out var images);
        io.TryGet("logits", out var expected);
        using var _ = torch.no_grad();
        var logits = model.forward(torch.tensor(images.ToFloats(), images.Shape)).data<float>().ToArray();
        var reference = expected.ToFloats();
        Assert.That(logits, Has.Length.EqualTo(reference.Length));
        var maxDiff = logits.Zip(reference, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(maxDiff, Is.LessThanOrEqualTo(1e-4f), $"max |diff| {maxDiff}");
    }

    [Test]
    public void WeightsRoundTripThroughTheModelUnchanged()
    {
        var path = Fixture("crate_rgb_cls.weights.safetensors");
        var original = CrateWeights.Load(path);
        using var model = CrateModelWeights.LoadModel(path);
        var back = model.ToWeights();
        foreach (var (name, _) in CrateWeights.Layout(original.Config))
            Assert.That(back.Floats(name), Is.EqualTo(original.Floats(name)), name);
    }

    [Test]
    public void WeightsForAnotherShapeAreRefusedByName()
    {
        var weights = CrateWeights.Load(Fixture("crate_rgb_cls.weights.safetensors"));
        using var model = new CrateModel(weights.Config with { NumClasses = 6 });
        var error = Assert.Throws<SafetensorsException>(() => model.LoadWeights(weights));
        Assert.That(error!.Message, Does.Contain("5 classes").And.Contain("6 classes"));
    }
}
