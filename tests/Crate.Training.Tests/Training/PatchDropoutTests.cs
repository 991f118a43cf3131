using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Training;
using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Tests.Training;

public class PatchDropoutTests
{
    /// <summary>Two prompt tokens, so the patches start at token 3 and a selection off by the prompts shows.</summary>
    private static readonly CrateConfig Config = new()
    {
        Dim = 24, Depth = 2, Heads = 3, DimHead = 8, ImageHeight = 16, ImageWidth = 16, PatchSize = 4, Channels = 1, NumClasses = 5, PromptTokens = 2,
    };

    [Test]
    public void Keeping_every_patch_gives_the_full_forward_pass()
    {
        // With nothing dropped the patches are only reordered; attention and class pooling do not depend on token order.
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        using var model = new CrateModel(Config);
        model.eval();
        var images = torch.randn(4, 1, 16, 16);
        var mask = PatchDropout.Draw(4, Config, ratio: 0, seed: 1, step: 1);
        Assert.That(mask.Keep.shape, Is.EqualTo(new long[] { 4, 16 }));
        Assert.That(mask.Keep.data<long>().ToArray().Take(16), Is.Not.EqualTo(Enumerable.Range(0, 16).Select(i => (long)i)), "the patches are shuffled");
        var logits = PatchDropout.Forward(model, images, mask);
        Assert.That((logits - model.forward(images)).abs().max().item<float>(), Is.LessThan(1e-5f));
    }

    [Test]
    public void Dropped_patches_are_left_out_and_the_kept_ones_keep_their_positions()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(4);
        using var model = new CrateModel(Config);
        model.eval();
        var images = torch.randn(3, 1, 16, 16);
        var mask = PatchDropout.Draw(3, Config, ratio: 0.75, seed: 5, step: 9);
        var keep = mask.Keep.data<long>().ToArray();
        Assert.That(keep, Has.Length.EqualTo(3 * 4), "16 patches, 75% dropped: 4 kept per image");

        // Reference: copy the class token, the prompts and the kept patches' embedded rows one by one.
        var embedded = model.Embed(images);
        var rows = new List<Tensor>();
        for (int b = 0; b < 3; b++)
        {
            var image = new List<Tensor> { embedded[b].narrow(0, 0, 3) };
            for (int k = 0; k < 4; k++) image.Add(embedded[b].narrow(0, 3 + keep[b * 4 + k], 1));
            rows.Add(torch.cat(image, 0));
        }
        var expected = model.Head(model.Pool(model.ForwardTokens(torch.stack(rows))));
        var logits = PatchDropout.Forward(model, images, mask);
        Assert.That((logits - expected).abs().max().item<float>(), Is.LessThan(1e-5f));

        // The dropped patches do not matter: changing their pixels leaves the logits as they were.
        var changed = images.clone();
        for (int b = 0; b < 3; b++)
            for (int p = 0; p < 16; p++)
                if (!keep.Skip(b * 4).Take(4).Contains(p))
                {
                    int y = p / 4 * 4, x = p % 4 * 4;
                    changed[b, 0, TensorIndex.Slice(y, y + 4), TensorIndex.Slice(x, x + 4)] = torch.randn(4, 4);
                }
        Assert.That((PatchDropout.Forward(model, changed, mask) - logits).abs().max().item<float>(), Is.LessThan(1e-5f));
        Assert.That((model.forward(changed) - model.forward(images)).abs().max().item<float>(), Is.GreaterThan(1e-3f), "the full pass sees them");
    }

    [Test]
    public void The_choice_depends_on_the_seed_and_step_only()
    {
        long[] Keep(int seed, long step) => PatchDropout.Draw(8, Config, 0.5, seed, step).Keep.data<long>().ToArray();
        var keep = Keep(1, 7);
        var again = Keep(1, 7);
        Assert.That(again, Is.EqualTo(keep));
        Assert.That(Keep(1, 8), Is.Not.EqualTo(keep));
        Assert.That(Keep(2, 7), Is.Not.EqualTo(keep));
        // Each image keeps 8 distinct patches of 16.
        for (int b = 0; b < 8; b++)
            Assert.That(keep.Skip(b * 8).Take(8).Distinct().Count(), Is.EqualTo(8));
    }

    [Test]
    public void Settings_out_of_range_are_rejected_with_the_value()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => new TrainerOptions { PatchDropout = 1 }.Validate())!.Message,
            Is.EqualTo("Invalid training options: patch dropout must be in [0, 1), got 1"));
        Assert.That(Assert.Throws<ArgumentException>(() => new TrainerOptions { Epochs = 4, PatchDropout = 0.5, FullPatchEpochs = 5 }.Validate())!.Message,
            Is.EqualTo("Invalid training options: full-patch epochs must be in [0, 4] (the epochs), got 5"));
    }

    [Test]
    public void Only_the_epochs_before_the_full_patch_ones_drop_patches()
    {
        var options = new TrainerOptions { Epochs = 5, PatchDropout = 0.5, FullPatchEpochs = 2 };
        Assert.That(Enumerable.Range(1, 5).Select(e => PatchDropout.ShouldDrop(options, e)), Is.EqualTo(new[] { true, true, true, false, false }));
        Assert.That(PatchDropout.ShouldDrop(options with { PatchDropout = 0 }, 1), Is.False);
    }
}
