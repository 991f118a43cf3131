using Crate.Core.Model;
using Crate.Training;
using Crate.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Crate.Training.Tests.Training;

public class OptimizerTests
{
    /// <summary>Sets the parameter's gradient to <paramref name="g"/> through autograd: d/dp sum(p * g) = g.</summary>
    private static void Backward(Parameter p, float[] g)
    {
        using var scope = torch.NewDisposeScope();
        p.mul(torch.tensor(g)).sum().backward();
    }

    private static float[] Values(Tensor t) => t.detach().data<float>().ToArray();

    [Test]
    public void Lion_matches_two_hand_computed_steps()
    {
        // lr 0.1, weight decay 0.5 (so p is scaled by 1 - 0.05), betas 0.9 / 0.99.
        var p = new Parameter(torch.tensor(new[] { 1.0f, -2.0f, 0.5f, 0.0f }));
        var frozen = new Parameter(torch.tensor(new[] { 1.0f, -2.0f, 0.5f, 0.0f }));
        using var lion = new LionOptimizer([new("p", p, Decay: true), new("bias", frozen, Decay: false)], weightDecay: 0.5);

        // Step 1: m = 0, so c = 0.1 g = [0.05, -0.1, 0, 0.2], sign = [1, -1, 0, 1];
        // p = 0.95 p - 0.1 sign = [0.85, -1.8, 0.475, -0.1]; m = 0.01 g = [0.005, -0.01, 0, 0.02].
        Backward(p, [0.5f, -1.0f, 0.0f, 2.0f]);
        Backward(frozen, [0.5f, -1.0f, 0.0f, 2.0f]);
        lion.Step(0.1);
        Assert.That(Values(p), Is.EqualTo(new[] { 0.85f, -1.8f, 0.475f, -0.1f }).Within(1e-6f));
        // Without decay: p - 0.1 sign = [0.9, -1.9, 0.5, -0.1].
        Assert.That(Values(frozen), Is.EqualTo(new[] { 0.9f, -1.9f, 0.5f, -0.1f }).Within(1e-6f));

        // Step 2: g = [-0.3, 0.2, 0.1, -0.1]; c = 0.9 m + 0.1 g = [-0.0255, 0.011, 0.01, 0.008], sign = [-1, 1, 1, 1];
        // p = 0.95 [0.85, -1.8, 0.475, -0.1] - 0.1 sign = [0.9075, -1.81, 0.35125, -0.195].
        lion.ZeroGrad();
        Backward(p, [-0.3f, 0.2f, 0.1f, -0.1f]);
        lion.Step(0.1);
        Assert.That(Values(p), Is.EqualTo(new[] { 0.9075f, -1.81f, 0.35125f, -0.195f }).Within(1e-6f));
        // m = 0.99 m + 0.01 g = [0.00195, -0.0079, 0.001, 0.0188].
        var m = lion.State().Single(s => s.Name == "p/exp_avg").Value;
        Assert.That(Values(m), Is.EqualTo(new[] { 0.00195f, -0.0079f, 0.001f, 0.0188f }).Within(1e-7f));
    }

    [Test]
    public void AdamW_first_step_matches_hand_computation()
    {
        // p = 1, g = 0.5, lr 0.1, wd 0.1: p = 0.99 after decay; m = 0.05, v = 0.00025; bias-corrected m = 0.5,
        // v = 0.25, so the step is 0.1 * 0.5 / (0.5 + 1e-8) = 0.1 and p = 0.89.
        var p = new Parameter(torch.tensor(new[] { 1.0f }));
        using var adamw = new AdamWOptimizer([new("p", p, Decay: true)], weightDecay: 0.1);
        Backward(p, [0.5f]);
        adamw.Step(0.1);
        Assert.That(Values(p)[0], Is.EqualTo(0.89f).Within(1e-6f));
    }

    [Test]
    public void AdamW_matches_TorchSharp_AdamW_over_several_steps()
    {
        torch.manual_seed(3);
        var initial = torch.randn(6, 4);
        var target = torch.randn(6, 4);
        var mine = new Parameter(initial.clone());
        var theirs = new Parameter(initial.clone());
        using var adamw = new AdamWOptimizer([new("w", mine, Decay: true)], weightDecay: 0.2);
        var reference = torch.optim.AdamW([theirs], lr: 0.05, weight_decay: 0.2);
        for (int step = 0; step < 8; step++)
        {
            double lr = 0.05 * (step + 1) / 8;   // a changing learning rate, as the schedule gives
            foreach (var group in reference.ParamGroups) group.LearningRate = lr;
            foreach (var p in new[] { mine, theirs })
            {
                using var scope = torch.NewDisposeScope();
                p.grad = null;
                p.sub(target).pow(2).sum().mul(p.abs().add(1)).sum().backward();   // gradients depend on p
            }
            adamw.Step(lr);
            reference.step();
            Assert.That(Values(mine), Is.EqualTo(Values(theirs)).Within(1e-6f), $"step {step + 1}");
        }
    }

    [Test]
    public void Weight_decay_applies_to_matrices_only()
    {
        var config = CratePresets.Mini with { Depth = 1 };
        using var model = new CrateModel(config);
        var decayed = CrateOptimizer.Split(model).Where(p => p.Decay).Select(p => p.Name).Order().ToArray();
        Assert.That(decayed, Is.EqualTo(new[]
        {
            "mlp_head.1.weight", "to_patch_embedding.2.weight",
            "transformer.layers.0.0.fn.qkv.weight", "transformer.layers.0.0.fn.to_out.0.weight", "transformer.layers.0.1.fn.weight",
        }));
    }

    [Test]
    public void State_round_trip_continues_identically()
    {
        torch.manual_seed(5);
        var start = torch.randn(5);
        var a = new Parameter(start.clone());
        var b = new Parameter(start.clone());
        using var first = new AdamWOptimizer([new("x", a, true)], 0.1);
        float[] grad1 = [0.3f, -0.2f, 0.9f, 0.0f, -1.5f], grad2 = [-0.1f, 0.4f, 0.2f, 0.7f, 0.05f];
        Backward(a, grad1);
        first.Step(0.01);
        using (torch.no_grad()) b.copy_(a);
        using var second = new AdamWOptimizer([new("x", b, true)], 0.1);
        second.LoadState(first.State().ToDictionary(s => s.Name, s => s.Value), first.StepCount);
        first.ZeroGrad();
        Backward(a, grad2);
        Backward(b, grad2);
        first.Step(0.01);
        second.Step(0.01);
        Assert.That(Values(b), Is.EqualTo(Values(a)));
    }

    [Test]
    public void Clipping_inside_Step_matches_clip_grad_norm_then_TorchSharp_AdamW()
    {
        // Two groups (decaying matrix, non-decaying bias) in one flat buffer; the gradients' joint norm is above the
        // limit on every step, so clipping matters.
        torch.manual_seed(11);
        var (w0, b0, target) = (torch.randn(5, 3), torch.randn(3), torch.randn(5, 3));
        var (w, b) = (new Parameter(w0.clone()), new Parameter(b0.clone()));
        var (wRef, bRef) = (new Parameter(w0.clone()), new Parameter(b0.clone()));
        using var adamw = new AdamWOptimizer([new("w", w, Decay: true), new("b", b, Decay: false)], weightDecay: 0.3);
        var reference = torch.optim.AdamW([new AdamW.ParamGroup([wRef], new AdamW.Options { weight_decay = 0.3, LearningRate = 0.05 }),
            new AdamW.ParamGroup([bRef], new AdamW.Options { weight_decay = 0, LearningRate = 0.05 })], lr: 0.05);
        for (int step = 0; step < 4; step++)
        {
            foreach (var (pw, pb) in new[] { (w, b), (wRef, bRef) })
            {
                using var scope = torch.NewDisposeScope();
                pw.grad = null;
                pb.grad = null;
                pw.add(pb).sub(target).pow(2).sum().mul(10).backward();
            }
            adamw.Step(0.05, maxGradientNorm: 0.5);
            nn.utils.clip_grad_norm_([wRef, bRef], 0.5);
            reference.step();
            Assert.That(Values(w), Is.EqualTo(Values(wRef)).Within(1e-6f), $"matrix, step {step + 1}");
            Assert.That(Values(b), Is.EqualTo(Values(bRef)).Within(1e-6f), $"bias, step {step + 1}");
        }
    }

    [Test]
    public void A_parameter_without_gradient_is_neither_updated_nor_decayed()
    {
        var used = new Parameter(torch.tensor(new[] { 1.0f }));
        var unused = new Parameter(torch.tensor(new[] { 2.0f, 3.0f }));
        using var adamw = new AdamWOptimizer([new("used", used, Decay: true), new("unused", unused, Decay: true)], weightDecay: 0.1);
        Backward(used, [0.5f]);
        adamw.Step(0.1);
        Assert.That(Values(used)[0], Is.EqualTo(0.89f).Within(1e-6f), "as in the hand-computed first step");
        Assert.That(Values(unused), Is.EqualTo(new[] { 2.0f, 3.0f }));
        Assert.That(Values(adamw.State().Single(s => s.Name == "unused/exp_avg").Value), Is.EqualTo(new[] { 0f, 0f }));
    }

    [Test]
    public void The_optimiser_keeps_the_model_and_updates_its_parameters_in_place()
    {
        // Creating the optimiser moves the parameters into its flat buffer: same tensors, same values, same outputs,
        // and its updates are what the model then computes with.
        torch.manual_seed(2);
        using var model = new CrateModel(CratePresets.Mini with { Depth = 1 });
        model.eval();
        using var scope = torch.NewDisposeScope();
        var images = torch.randn(2, 1, 28, 28);
        var before = model.forward(images).detach().clone();
        var parameters = model.parameters().ToArray();
        using var adamw = CrateOptimizer.Create(OptimizerKind.AdamW, CrateOptimizer.Split(model), 0.05);
        Assert.That(model.parameters().Select(p => p.Handle), Is.EqualTo(parameters.Select(p => p.Handle)));
        Assert.That(Values(model.forward(images)), Is.EqualTo(Values(before)));
        var head = model.ClassifierHead.Linear.weight!;
        var old = head.detach().clone();
        model.forward(images).sum().backward();
        adamw.Step(0.01);
        Assert.That((head - old).abs().max().item<float>(), Is.GreaterThan(1e-4f), "the module's own tensor moved");
        Assert.That(Values(model.forward(images)), Is.Not.EqualTo(Values(before)));
    }

    [Test]
    public void The_moving_average_follows_each_step_and_stands_in_until_disposed()
    {
        // Lion with lr 0.1 and no decay moves p by -0.1 sign(c): p1 = [0.9, 2.1], p2 = [0.8, 2.2] for the gradients below.
        var p = new Parameter(torch.tensor(new[] { 1.0f, 2.0f }));
        using var lion = new LionOptimizer([new("p", p, Decay: false)], weightDecay: 0, averageDecay: 0.5);
        Assert.That(lion.Slots, Is.EqualTo(new[] { "exp_avg", CrateOptimizer.AverageSlot }));
        Backward(p, [1.0f, -1.0f]);
        lion.Step(0.1);
        lion.ZeroGrad();
        Backward(p, [1.0f, -1.0f]);
        lion.Step(0.1);
        // average = 0.5 (0.5 p0 + 0.5 p1) + 0.5 p2 = 0.25 p0 + 0.25 p1 + 0.5 p2
        float[] expected = [0.25f * 1.0f + 0.25f * 0.9f + 0.5f * 0.8f, 0.25f * 2.0f + 0.25f * 2.1f + 0.5f * 2.2f];
        Assert.That(Values(lion.State().Single(s => s.Name == "p/average").Value), Is.EqualTo(expected).Within(1e-6f));
        using (lion.UseAverage())
            Assert.That(Values(p), Is.EqualTo(expected).Within(1e-6f));
        Assert.That(Values(p), Is.EqualTo(new[] { 0.8f, 2.2f }).Within(1e-6f), "the trained values are back");
        using var plain = new LionOptimizer([new("q", new Parameter(torch.zeros(1)), Decay: false)], weightDecay: 0);
        Assert.That(() => plain.UseAverage(), Throws.InvalidOperationException.With.Message.Contains("no moving average"));
    }
}
