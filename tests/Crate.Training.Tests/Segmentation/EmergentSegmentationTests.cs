using Crate.Core.Model;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Tests.Segmentation;

public class EmergentSegmentationTests
{
    private static readonly CrateConfig Small = CratePresets.Mini with { Dim = 64, Depth = 3, Heads = 4, DimHead = 16, ImageHeight = 24, ImageWidth = 16, PatchSize = 4, NumClasses = 5 };

    [Test]
    public void KeepTopMassKeepsTheLargestEntriesReachingTheMass()
    {
        using var attention = torch.tensor(new float[] { 0.5f, 0.3f, 0.1f, 0.1f, /* row 2 */ 0.05f, 0.05f, 0.6f, 0.3f }, [2, 4]);
        // Row 1, ascending [0.1, 0.1, 0.3, 0.5], cumulative [0.1, 0.2, 0.5, 1.0]; > 0.4 keeps 0.3 and 0.5 (0.8 >= 0.6).
        // Row 2, ascending [0.05, 0.05, 0.3, 0.6], cumulative [0.05, 0.1, 0.4, 1.0]; > 0.4 keeps only 0.6 (0.6 >= 0.6).
        var keep = EmergentSegmentation.KeepTopMass(attention, 0.6).data<bool>().ToArray();
        Assert.That(keep, Is.EqualTo(new[] { true, true, false, false, false, false, true, false }));
        var keepAll = EmergentSegmentation.KeepTopMass(attention, 1.0).data<bool>().ToArray();
        Assert.That(keepAll, Is.All.True);
    }

    [TestCase(Architectures.Crate)]
    [TestCase(Architectures.Vit)]
    public void MasksFollowTheClassTokenAttentionOfThePenultimateLayer(string architecture)
    {
        torch.manual_seed(3);
        var model = Architectures.Create(architecture, Small);
        model.Module.eval();
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 1, 24, 16);
        var maps = EmergentSegmentation.Segment(model, images);
        Assert.That(maps.HeadMasks.shape, Is.EqualTo(new long[] { 2, 4, 24, 16 }));
        Assert.That(maps.Foreground.shape, Is.EqualTo(new long[] { 2, 24, 16 }));
        Assert.That(maps.HeadAttention.shape, Is.EqualTo(new long[] { 2, 4, 6, 4 }));

        // Independent computation in plain C#: attention of layer depth-2 from the class token to the 24 patches.
        var attention = model.Trace(images).Layers[1].Attention!.data<float>().ToArray();   // [2, 4, 25, 25]
        var headMasks = maps.HeadMasks.data<bool>().ToArray();
        var foreground = maps.Foreground.data<bool>().ToArray();
        for (int b = 0; b < 2; b++)
        {
            var votes = new int[24];
            for (int h = 0; h < 4; h++)
            {
                var row = Enumerable.Range(1, 24).Select(j => (double)attention[((b * 4 + h) * 25 + 0) * 25 + j]).ToArray();
                double total = row.Sum();
                var order = Enumerable.Range(0, 24).OrderByDescending(j => row[j]).ToArray();
                var kept = new bool[24];
                double mass = 0;
                foreach (var j in order) { if (mass >= 0.6 * total - 1e-6) break; kept[j] = true; mass += row[j]; }
                for (int j = 0; j < 24; j++)
                {
                    if (kept[j]) votes[j]++;
                    int y = j / 4 * 4, x = j % 4 * 4;   // patch j covers pixels [y, y+4) x [x, x+4)
                    for (int dy = 0; dy < 4; dy++)
                    for (int dx = 0; dx < 4; dx++)
                        Assert.That(headMasks[((b * 4 + h) * 24 + y + dy) * 16 + x + dx], Is.EqualTo(kept[j]), $"image {b} head {h} patch {j}");
                }
            }
            for (int j = 0; j < 24; j++)
                Assert.That(foreground[(b * 24 + j / 4 * 4) * 16 + j % 4 * 4], Is.EqualTo(votes[j] >= 2), $"image {b} patch {j}: {votes[j]} of 4 votes");
        }
        // The class map paints the foreground with the predicted class + 1.
        var classMap = maps.ClassMap().data<byte>().ToArray();
        var predicted = maps.Logits.argmax(1).data<long>().ToArray();
        for (int i = 0; i < classMap.Length; i++) Assert.That(classMap[i], Is.EqualTo(foreground[i] ? predicted[i / (24 * 16)] + 1 : 0));
    }

    [Test]
    public void BadOptionsAreNamed()
    {
        var model = new CrateModel(Small);
        using var images = torch.randn(1, 1, 24, 16);
        Assert.That(() => EmergentSegmentation.Segment(model, images, new EmergentOptions { Layer = 3 }), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("layer 3"));
        Assert.That(() => EmergentSegmentation.Segment(model, images, new EmergentOptions { KeepMass = 0 }), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("mass"));
    }
}
