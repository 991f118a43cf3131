using System.Diagnostics;
using Crate.Core.IO;
using Crate.Core.Weights;
using Crate.Tests.Shared;

namespace Crate.Core.Tests.IO;

public class AtomicFileTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("crate-atomic-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void A_disk_filling_up_mid_write_names_the_file_and_keeps_the_previous_version_whole()
    {
        var path = Path.Combine(_dir, "weights.safetensors");
        NamedTensor[] Tensors(float value) => [NamedTensor.FromFloats("w", [256, 256], Enumerable.Repeat(value, 256 * 256).ToArray())];
        Safetensors.Write(path, Tensors(1));
        var before = File.ReadAllBytes(path);

        var disk = new FullDisk(capacity: before.Length / 2);
        using (AtomicFile.UseOpener(disk.Open))
        {
            var e = Assert.Throws<DiskFullException>(() => Safetensors.Write(path, Tensors(2)))!;
            Assert.That(e.Message, Is.EqualTo($"Cannot write '{path}': the disk is full (No space left on device). The file was left as it was, with no partial copy."));
            Assert.That(e.FilePath, Is.EqualTo(path));
            Assert.That(e.InnerException, Is.TypeOf<IOException>());
        }
        Assert.That(disk.Failures, Is.EqualTo(1), "the write reached the simulated disk and failed half way");
        Assert.That(File.ReadAllBytes(path), Is.EqualTo(before));
        Assert.That(Safetensors.Read(path).Tensors[0].ToFloats(), Is.All.EqualTo(1f));
        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }), "no temporary file is left behind");
    }

    [Test]
    public void The_opener_applies_only_inside_its_scope()
    {
        var path = Path.Combine(_dir, "a.txt");
        using (AtomicFile.UseOpener(new FullDisk(capacity: 0).Open))
            Assert.Throws<DiskFullException>(() => AtomicFile.WriteAllText(path, "x"));
        AtomicFile.WriteAllText(path, "x");
        Assert.That(File.ReadAllText(path), Is.EqualTo("x"));
    }

    [Test]
    public void The_operating_systems_own_no_space_error_is_recognised()
    {
        // /dev/full fails every write with ENOSPC: the real error, as the runtime reports it.
        Assume.That(File.Exists("/dev/full"), "needs Linux's /dev/full");
        var path = Path.Combine(_dir, "b.bin");
        using (AtomicFile.UseOpener(_ => new FileStream("/dev/full", FileMode.Open, FileAccess.Write)))
        {
            var e = Assert.Throws<DiskFullException>(() => AtomicFile.WriteAllBytes(path, new byte[1 << 20]))!;
            Assert.That(e.Message, Does.StartWith($"Cannot write '{path}': the disk is full (No space left on device)."));
        }
        Assert.That(File.Exists(path), Is.False);
    }

    [Test]
    public void Other_write_errors_are_not_called_a_full_disk()
    {
        var path = Path.Combine(_dir, "c.bin");
        using (AtomicFile.UseOpener(_ => throw new IOException("Input/output error", 5)))
            Assert.That(() => AtomicFile.WriteAllBytes(path, [1]), Throws.TypeOf<IOException>().With.Message.EqualTo("Input/output error"));
    }

    [Test]
    public void Temporaries_of_dead_writers_are_deleted_and_live_ones_kept()
    {
        // A process that has exited: its pid is free (until reused, which a fresh pid makes unlikely for the test's span).
        int dead;
        using (var exited = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!) { exited.WaitForExit(); dead = exited.Id; }
        var abandoned = Path.Combine(_dir, $".last.ckpt.{dead}.0123456789abcdef0123456789abcdef.tmp");
        var live = Path.Combine(_dir, $".last.ckpt.{Environment.ProcessId}.0123456789abcdef0123456789abcdef.tmp");
        var unrelated = Path.Combine(_dir, ".notes.tmp");
        foreach (var file in new[] { abandoned, live, unrelated }) File.WriteAllText(file, "partial");

        Assert.That(AtomicFile.DeleteAbandoned(_dir), Is.EqualTo(1));
        Assert.That(Directory.GetFiles(_dir).Order(), Is.EqualTo(new[] { live, unrelated }.Order()));
    }
}
