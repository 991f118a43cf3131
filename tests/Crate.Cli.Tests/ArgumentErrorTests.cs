namespace Crate.Cli.Tests;

public class ArgumentErrorTests
{
    [TestCase(new[] { "train", "--epochs", "abc" }, "error: '--epochs' expects an integer, got 'abc'. (see 'crate train --help')")]
    [TestCase(new[] { "train", "--optimizer", "sgd" }, "error: Argument 'sgd' not recognized. Must be one of: 'adamw' 'lion' (see 'crate train --help')")]
    [TestCase(new[] { "evaluate", "--data", "generated" }, "error: Option '--weights' is required. (see 'crate evaluate --help')")]
    [TestCase(new[] { "train", "--lr", "-1" }, "error: Invalid training options: learning rate must be positive, got -1")]
    [TestCase(new[] { "train", "--patch-dropout", "1" }, "error: Invalid training options: patch dropout must be in [0, 1), got 1")]
    [TestCase(new[] { "train", "--resume" }, "error: --resume needs --out: the run directory to continue.")]
    [TestCase(new[] { "train", "--recipe", "imagenet-in-a-minute" }, "error: Unknown recipe 'imagenet-in-a-minute'. Recipes: fmnist-91, shapes-quick.")]
    [TestCase(new[] { "train", "--data", "/nonexistent/data" },
        "error: Data source '/nonexistent/data' does not exist: use 'fashion-mnist', 'generated', a folder of class subfolders, or a .csv/.tsv list.")]
    [TestCase(new[] { "bench", "train", "--steps", "1", "--no-record" }, "error: --steps must be at least 2, --warmup-steps and --threads at least 1.")]
    [TestCase(new[] { "bench", "mlnet", "--images", "0", "--no-record" }, "error: --images, --batch and --rounds must be at least 1.")]
    [TestCase(new[] { "train", "--channels", "2", "--limit", "10" }, "error: Images can be read with 1 (grayscale) or 3 (RGB) channels, not 2.")]
    [TestCase(new[] { "segment", "train", "--data", "/nonexistent/scenes", "--channels", "4", "--out", "/nonexistent/seg.safetensors" },
        "error: Images can be read with 1 (grayscale) or 3 (RGB) channels, not 4.")]
    [TestCase(new[] { "segment", "train", "--resume", "--out", "/nonexistent/seg.safetensors" },
        "error: There is nothing to resume: '/nonexistent/seg.last.ckpt' does not exist (it is written after every epoch).")]
    [TestCase(new[] { "segment", "train", "--adapt", "linear-probe", "--fine-tune-last", "1", "--out", "/nonexistent/seg.safetensors" },
        "error: --fine-tune-last applies to --adapt fine-tune.")]
    [TestCase(new[] { "segment", "train", "--fine-tune-last", "0", "--out", "/nonexistent/seg.safetensors" }, "error: --fine-tune-last must be at least 1, got 0.")]
    [TestCase(new[] { "segment", "train", "--adapt", "linear-probe", "--prompt-tokens", "4", "--out", "/nonexistent/seg.safetensors" },
        "error: --prompt-tokens applies to --adapt prompt-tuning.")]
    [TestCase(new[] { "segment", "train", "--adapt", "freeze", "--out", "/nonexistent/seg.safetensors" },
        "error: Argument 'freeze' not recognized. Must be one of: 'linear-probe' 'prompt-tuning' 'fine-tune' (see 'crate segment train --help')")]
    [TestCase(new[] { "segment", "evaluate", "--model", "/nonexistent/seg.safetensors", "--objects", "2-x" }, "error: '--objects' expects a number or MIN-MAX, got '2-x'. (see 'crate segment evaluate --help')")]
    [TestCase(new[] { "segment", "train", "--objects", "1.5", "--out", "/nonexistent/seg.safetensors" }, "error: --objects takes whole numbers, got '1.5'.")]
    [TestCase(new[] { "segment", "train", "--objects", "3-1", "--out", "/nonexistent/seg.safetensors" }, "error: Objects per scene must satisfy 1 <= min (3) <= max (1).")]
    [TestCase(new[] { "segment", "train", "--object-scale", "0-1", "--out", "/nonexistent/seg.safetensors" }, "error: Object scales must satisfy 0 < min (0) <= max (1).")]
    [TestCase(new[] { "segment", "train", "--data", "/nonexistent/scenes", "--max-occlusion", "0", "--out", "/nonexistent/seg.safetensors" },
        "error: --max-occlusion sets up generated scenes; it does not apply to --data folders.")]
    [TestCase(new[] { "segment", "train", "--queries", "0", "--out", "/nonexistent/seg.safetensors" }, "error: --queries must be at least 1 (the class token), got 0.")]
    [TestCase(new[] { "segment", "train", "--task", "classify", "--queries", "3", "--out", "/nonexistent/seg.safetensors" }, "error: --queries applies to --task segment.")]
    [TestCase(new[] { "study", "--checkpoint-every", "0" }, "error: --checkpoint-every must be at least 1.")]
    [TestCase(new[] { "study", "--task", "detection" },
        "error: Argument 'detection' not recognized. Must be one of: 'classification' 'segmentation' 'both' (see 'crate study --help')")]
    [TestCase(new[] { "bench", "soak", "--minutes", "0", "--no-record" }, "error: --minutes and --sample-seconds must be positive, --threads at least 1.")]
    public void Bad_arguments_print_one_line_and_exit_2(string[] args, string expected)
    {
        var (exit, output, error) = CliRunner.Run(args);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(error.TrimEnd('\n'), Is.EqualTo(expected));
        Assert.That(output, Is.Empty, "nothing else is printed (no help text, no stack trace)");
    }
}
