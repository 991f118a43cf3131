using System.Text.Json;
using Crate.Core.Weights;

namespace Crate.Cli.Tests;

/// <summary>
/// Crash safety of the real command line: each long-running command is killed with SIGKILL at seeded random moments
/// (see <see cref="CrashHarness"/>) and resumed until it finishes. No file is ever found half-written, and the result is
/// bit for bit the uninterrupted run's: resuming restores weights, optimiser state, generators and the data order exactly,
/// and libtorch's CPU kernels are deterministic for a fixed thread count. A run that finishes before its kills are
/// used up is checked, and another interrupted run starts from scratch until the kills are spent.
/// </summary>
public class CrashSafetyTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("crate-crash-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Training_killed_and_resumed_ends_with_the_uninterrupted_weights() => Training(kills: 2, epochs: 3, seed: 1);

    [Test, Category("Long")]
    public void Training_killed_many_times_ends_with_the_uninterrupted_weights() => Training(kills: 24, epochs: 6, seed: 2);

    [Test]
    public void Segmentation_training_killed_and_resumed_ends_with_the_uninterrupted_model() => Segmentation(kills: 2, epochs: 3, seed: 3);

    [Test, Category("Long")]
    public void Segmentation_training_killed_many_times_ends_with_the_uninterrupted_model() => Segmentation(kills: 24, epochs: 6, seed: 4);

    [Test]
    public void Study_killed_and_resumed_ends_with_the_uninterrupted_table() => Study(kills: 2, steps: 4, seed: 5);

    [Test, Category("Long")]
    public void Study_killed_many_times_ends_with_the_uninterrupted_table() => Study(kills: 24, steps: 8, seed: 6);

    private void Training(int kills, int epochs, int seed)
    {
        string[] Command(string run, bool resume) =>
        [
            "train", "--limit", "200", "--batch-size", "50", "--epochs", $"{epochs}", "--val-fraction", "0.2", "--threads", "1", "--no-test",
            "--out", run, .. resume ? ["--resume"] : Array.Empty<string>(),
        ];
        KillUntil($"crate train, {epochs} epochs", kills, seed, Command, run => File.Exists(Path.Combine(run, "last.ckpt")), (killed, reference) =>
        {
            Assert.That(File.ReadAllBytes(Path.Combine(killed, "weights.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(reference, "weights.safetensors"))));
            AssertSameTensors(Path.Combine(killed, "last.ckpt"), Path.Combine(reference, "last.ckpt"));
            Assert.That(EpochFigures(killed), Is.EqualTo(EpochFigures(reference)), "every epoch's losses and accuracies");
        });
    }

    private void Segmentation(int kills, int epochs, int seed)
    {
        string[] Command(string folder, bool resume) =>
        [
            "segment", "train", "--task", "segment", "--count", "48", "--batch-size", "16", "--scene-size", "32", "--depth", "2", "--epochs", $"{epochs}",
            "--test-count", "0", "--threads", "1", "--out", Path.Combine(folder, "seg.safetensors"), .. resume ? ["--resume"] : Array.Empty<string>(),
        ];
        KillUntil($"crate segment train, {epochs} epochs", kills, seed, Command, folder => File.Exists(Path.Combine(folder, "seg.last.ckpt")), (killed, reference) =>
        {
            Assert.That(File.ReadAllBytes(Path.Combine(killed, "seg.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(reference, "seg.safetensors"))));
            AssertSameTensors(Path.Combine(killed, "seg.last.ckpt"), Path.Combine(reference, "seg.last.ckpt"));
        });
    }

    private void Study(int kills, int steps, int seed)
    {
        string[] Command(string output, bool resume) =>
        [
            "study", "--task", "both", "--data", "generated", "--depth", "1", "--limit", "128", "--test-limit", "100", "--batch-size", "16",
            "--scenes", "48", "--test-scenes", "16", "--scene-size", "32",
            "--pretrain-steps", $"{steps}", "--adapt-steps", $"{steps / 2}", "--checkpoint-every", "2", "--out", output,
            .. resume ? ["--resume"] : Array.Empty<string>(),
        ];
        KillUntil($"crate study, {steps}+{steps / 2} steps per cell", kills, seed, Command, output => File.Exists(Path.Combine(output, "progress", "progress.json")), (killed, reference) =>
        {
            Assert.That(StudyFigures(killed), Is.EqualTo(StudyFigures(reference)), "every cell's figures and losses, both halves");
            foreach (var trunk in Directory.GetFiles(Path.Combine(reference, "progress"), "pretrained-*.safetensors"))
                Assert.That(File.ReadAllBytes(Path.Combine(killed, "progress", Path.GetFileName(trunk))), Is.EqualTo(File.ReadAllBytes(trunk)), Path.GetFileName(trunk));
        });
    }

    /// <summary>
    /// Runs <paramref name="command"/> uninterrupted once, then interrupted runs (each in a fresh folder, each compared with
    /// the uninterrupted one by <paramref name="assertSame"/>) until <paramref name="kills"/> kills have landed.
    /// </summary>
    private void KillUntil(string name, int kills, int seed, Func<string, bool, string[]> command, Func<string, bool> canResume, Action<string, string> assertSame)
    {
        var reference = Path.Combine(_dir, "reference");
        var typical = CrashHarness.RunToCompletion(command(reference, false));
        var total = CrashHarness.None;
        int series = 0;
        for (; total.Kills < kills; series++)
        {
            Assert.That(series, Is.LessThan(4 * kills), $"kills keep missing the runs: {total}");
            var folder = Path.Combine(_dir, $"killed-{series}");
            var harness = new CrashHarness(folder, seed * 1000 + series);
            total += harness.Run(resume => command(folder, resume), () => canResume(folder), kills - total.Kills, typical);
            assertSame(folder, reference);
            Assert.That(harness.Temporaries(), Is.Empty, "temporary files of killed writers were removed");
            Directory.Delete(folder, recursive: true);
        }
        TestContext.Progress.WriteLine(FormattableString.Invariant($"{name} ({typical.TotalSeconds:F0} s uninterrupted): {total}, {series} interrupted run(s)"));
    }

    /// <summary>Checkpoints' tensors (weights, optimiser state, generator) are identical; metadata may hold timings.</summary>
    private static void AssertSameTensors(string actual, string expected)
    {
        var (a, e) = (Safetensors.Read(actual), Safetensors.Read(expected));
        Assert.That(a.Tensors.Select(t => t.Name), Is.EqualTo(e.Tensors.Select(t => t.Name)));
        foreach (var tensor in e.Tensors)
            Assert.That(a.TryGet(tensor.Name, out var other) && other.Data.AsSpan().SequenceEqual(tensor.Data), tensor.Name);
    }

    /// <summary>metrics.json's per-epoch figures without the timings.</summary>
    private static string[] EpochFigures(string run)
    {
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "metrics.json")));
        return metrics.RootElement.GetProperty("epochs").EnumerateArray().Select(epoch => string.Join(", ",
            epoch.EnumerateObject().Where(p => p.Name is not ("seconds" or "images_per_second" or "data_wait_seconds")).Select(p => $"{p.Name} {p.Value}"))).ToArray();
    }

    /// <summary>study.json's cells without the wall times.</summary>
    private static string[] StudyFigures(string output)
    {
        using var study = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "study.json")));
        return study.RootElement.GetProperty("cells").EnumerateArray().Select(cell => string.Join(", ",
            cell.EnumerateObject().Where(p => p.Name != "seconds").Select(p => $"{p.Name} {p.Value}"))).ToArray();
    }
}
