using Crate.Core.Data.Segmentation;
using Crate.Core.Model;
using Crate.Training.Adaptation;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using Crate.Training.Study;
using TorchSharp;

namespace Crate.Training.Tests.Segmentation;

public class SegmentationAdaptationTests
{
    private static readonly SceneOptions Scenes = new() { Size = 16, MinScale = 0.3, MaxScale = 0.5, MaxObjects = 2, Seed = 3 };

    private static SegmentationDataset Data(int count) => SceneGenerator.Generate(ObjectBank.Shapes(40, 1), count, Scenes, "train");

    private static CrateConfig Trunk(SegmentationDataset data) => new()
    {
        Dim = 16, Depth = 2, Heads = 2, DimHead = 8, ImageHeight = data.Height, ImageWidth = data.Width, PatchSize = 4, Channels = 1,
        NumClasses = data.NumClasses - 1, Mean = [0.4f], Std = [0.25f],
    };

    /// <summary>The segmentation head counted from its layers: LayerNorm(dim), Linear(dim, K p^2), Conv3x3(K + C, 32), Conv3x3(32, K).</summary>
    private static long HeadParameters(int dim, int classes, int patch, int channels) =>
        2L * dim + (dim + 1L) * classes * patch * patch + ((classes + channels) * 9 + 1L) * 32 + (32 * 9 + 1L) * classes;

    /// <summary>The trunk without its classifier head, counted from the layout of CRATE: embedding, positions, class token, layers.</summary>
    private static long TrunkParameters(CrateConfig c)
    {
        long patchDim = c.PatchSize * c.PatchSize * c.Channels, d = c.Dim;
        long embedding = 2 * patchDim + patchDim * d + d + 2 * d + (c.NumPatches + 1L) * d + d;
        long layer = 2 * d + d * d + d * d + d + 2 * d + d * d;   // LN1, U, to_out (+bias), LN2, ISTA dictionary
        return embedding + c.Depth * layer;
    }

    [TestCase(AdaptationMethod.LinearProbe)]
    [TestCase(AdaptationMethod.PromptTuning)]
    [TestCase(AdaptationMethod.FineTune)]
    public void FrozenTrunksStayBitIdenticalAndFineTuningTrainsThem(AdaptationMethod method)
    {
        const int prompts = 3;
        var data = Data(24);
        var config = Trunk(data) with { PromptTokens = method == AdaptationMethod.PromptTuning ? prompts : 0 };
        torch.manual_seed(1);
        using var trunk = new CrateModel(config);
        var before = trunk.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        var adapted = new AdaptedSegmenter(trunk, data.NumClasses, method);
        long head = HeadParameters(config.Dim, data.NumClasses, config.PatchSize, config.Channels);
        long trunkTrained = method switch
        {
            AdaptationMethod.LinearProbe => 0,
            AdaptationMethod.PromptTuning => prompts * config.Dim,
            _ => TrunkParameters(config),
        };
        Assert.That(adapted.TrainableParameterCount, Is.EqualTo(head + trunkTrained));
        var headBefore = adapted.Model.Head.parameters().Select(p => p.data<float>().ToArray()).ToList();

        var loss = ObjectiveTraining.Run(adapted, adapted.Model, new SegmentationBatchLoader(data, 8, config, seed: 2), new Budget(4, 8, 1e-2));

        Assert.That(double.IsFinite(loss), Is.True);
        foreach (var (name, p) in trunk.named_parameters())
        {
            // The trunk's classifier head is unused by segmentation: frozen for every method.
            bool trained = method == AdaptationMethod.FineTune ? !name.StartsWith("mlp_head.", StringComparison.Ordinal) : name == "prompt_tokens";
            Assert.That(p.data<float>().ToArray().SequenceEqual(before[name]), Is.EqualTo(!trained), name);
        }
        var headAfter = adapted.Model.Head.parameters().Select(p => p.data<float>().ToArray()).ToList();
        Assert.That(headAfter.Zip(headBefore).All(pair => !pair.First.SequenceEqual(pair.Second)), Is.True, "every head tensor trained");
    }

    [Test]
    public void FineTuningTheLastLayerOfAVitTrunkTrainsOnlyThatLayer()
    {
        var config = Trunk(Data(1));
        using var trunk = new VitModel(config);
        var trainable = TrunkAdaptation.Unfreeze(trunk, config.Depth, AdaptationMethod.FineTune, fineTuneLastLayers: 1);
        Assert.That(trainable.Select(p => p.Handle), Is.EqualTo(trunk.Layers[1].parameters().Select(p => p.Handle)));
        Assert.That(trunk.parameters().Count(p => p.requires_grad), Is.EqualTo(trainable.Count));
    }

    [Test]
    public void PromptTuningATrunkWithoutPromptTokensIsRefused()
    {
        using var trunk = new CrateModel(Trunk(Data(1)));
        var error = Assert.Throws<ArgumentException>(() => TrunkAdaptation.Unfreeze(trunk, 2, AdaptationMethod.PromptTuning));
        Assert.That(error!.Message, Does.StartWith("Prompt tuning needs a trunk with prompt tokens (CrateConfig.PromptTokens > 0)."));
    }

    [TestCase(Architectures.Crate)]
    [TestCase(Architectures.Vit)]
    public void ResizingATrunkResamplesThePositionsBilinearlyAndCopiesEveryOtherWeight(string architecture)
    {
        using var scope = torch.NewDisposeScope();
        var small = Trunk(Data(1)) with { ImageHeight = 8, ImageWidth = 8 };   // 2x2 patch grid
        torch.manual_seed(4);
        var trunk = Architectures.Create(architecture, small);
        var resized = TrunkAdaptation.Resized(trunk, 16, 16);                  // 4x4 patch grid

        Assert.That((resized.Config.ImageHeight, resized.Config.ImageWidth, resized.Config.NumPatches), Is.EqualTo((16, 16, 16)));
        Assert.That(resized.Config with { ImageHeight = 8, ImageWidth = 8 }, Is.EqualTo(small));
        var before = trunk.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        var after = resized.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray());
        Assert.That(after.Keys, Is.EquivalentTo(before.Keys));
        foreach (var name in after.Keys.Where(n => n != "pos_embedding"))
            Assert.That(after[name], Is.EqualTo(before[name]), name);

        // Half-pixel-centred bilinear resampling, 2 -> 4 samples per axis: output i reads source i/2 - 1/4, clamped to [0, 1].
        double[] at = [0, 0.25, 0.75, 1];
        int dim = small.Dim;
        var old = before["pos_embedding"];
        var positions = after["pos_embedding"];
        Assert.That(positions.Take(dim), Is.EqualTo(old.Take(dim)), "the class token's position is kept");
        for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
        for (int d = 0; d < dim; d++)
        {
            double Old(int row, int col) => old[(1 + row * 2 + col) * dim + d];
            double y = at[r], x = at[c];
            double expected = Old(0, 0) * (1 - y) * (1 - x) + Old(0, 1) * (1 - y) * x + Old(1, 0) * y * (1 - x) + Old(1, 1) * y * x;
            Assert.That(positions[(1 + r * 4 + c) * dim + d], Is.EqualTo(expected).Within(1e-5), $"patch ({r}, {c}), feature {d}");
        }
        var logits = resized.Module.forward(torch.randn(2, 1, 16, 16));
        Assert.That(logits.shape, Is.EqualTo(new long[] { 2, small.NumClasses }));
    }

    [Test]
    public void ResizingToASizeThePatchDoesNotDivideIsRefused()
    {
        using var trunk = new CrateModel(Trunk(Data(1)));
        var error = Assert.Throws<ArgumentException>(() => TrunkAdaptation.Resized(trunk, 18, 16));
        Assert.That(error!.Message, Does.Contain("patch size 4 must divide the image size 18x16"));
    }

    [Test]
    public void FittingATrunkKeepsItResizesItOrSaysWhatItTakes()
    {
        using var trunk = new CrateModel(Trunk(Data(1)) with { ImageHeight = 8, ImageWidth = 8 });
        Assert.That(TrunkAdaptation.FittedTo(trunk, 1, 8, 8), Is.SameAs(trunk));
        var resized = TrunkAdaptation.FittedTo(trunk, 1, 16, 12);
        Assert.That((resized.Config.ImageHeight, resized.Config.ImageWidth, resized.Config.GridHeight, resized.Config.GridWidth), Is.EqualTo((16, 12, 4, 3)));

        var channels = Assert.Throws<ArgumentException>(() => TrunkAdaptation.FittedTo(trunk, 3, 8, 8));
        Assert.That(channels!.Message, Is.EqualTo("the trunk takes 1-channel images in patches of 4, the images are 3x8x8"));
        var size = Assert.Throws<ArgumentException>(() => TrunkAdaptation.FittedTo(trunk, 1, 10, 8));
        Assert.That(size!.Message, Is.EqualTo("the trunk takes 1-channel images in patches of 4, the images are 1x10x8"));
    }

    [Test]
    public void LoaderVisitsEveryImageOncePerEpochWithItsMaskAndResumesMidEpoch()
    {
        using var scope = torch.NewDisposeScope();
        var data = Data(10);
        var config = Trunk(data);
        var loader = new SegmentationBatchLoader(data, 4, config, seed: 5);
        var epoch = loader.Epoch(1).ToList();
        Assert.That(epoch.Select(b => b.Count), Is.EqualTo(new[] { 4, 4, 2 }));
        Assert.That(epoch.SelectMany(b => b.Indices).Order(), Is.EqualTo(Enumerable.Range(0, 10)));
        Assert.That(epoch.SelectMany(b => b.Indices), Is.Not.EqualTo(loader.Epoch(2).SelectMany(b => b.Indices)), "each epoch has its own order");
        foreach (var batch in epoch)
        for (int i = 0; i < batch.Count; i++)
        {
            Assert.That(batch.Labels[i].data<long>().ToArray(), Is.EqualTo(data.Mask(batch.Indices[i]).ToArray().Select(v => (long)v)));
            var pixels = data.Image(batch.Indices[i]).ToArray().Select(v => (v / 255f - 0.4f) / 0.25f);
            Assert.That(batch.Images[i].data<float>().ToArray(), Is.EqualTo(pixels).Within(1e-5f));
        }
        Assert.That(loader.Epoch(1, firstBatch: 2).Single().Indices, Is.EqualTo(epoch[2].Indices));
    }
}
