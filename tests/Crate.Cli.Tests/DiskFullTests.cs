using Crate.Core.IO;
using Crate.Tests.Shared;
using Crate.Training;

namespace Crate.Cli.Tests;

public class DiskFullTests
{
    [Test]
    public void A_full_disk_stops_crate_train_with_one_line_and_exit_code_2_and_the_last_checkpoint_loads()
    {
        var run = Directory.CreateTempSubdirectory("crate-cli-disk-").FullName;
        try
        {
            var last = Path.Combine(run, Checkpoint.LastFile);
            // Epoch 2's last.ckpt hits a full disk half way through its bytes.
            using var full = AtomicFile.UseOpener(new FullDisk(capacity: 1 << 20, target: Checkpoint.LastFile, fromWrite: 2).Open);
            var (exit, output, error) = CliRunner.RunInProcess("train", "--limit", "100", "--batch-size", "50", "--epochs", "3", "--val-fraction", "0",
                "--threads", "1", "--no-test", "--out", run);

            Assert.That(exit, Is.EqualTo(2));
            Assert.That(error, Is.EqualTo(
                $"error: Cannot write '{last}': the disk is full (No space left on device). The file was left as it was, with no partial copy. " +
                $"Training stopped in epoch 2; '{last}' holds epoch 1: free some space, then continue with --resume.\n"));
            Assert.That(output, Does.Contain("epoch 2/3 step 2/2").And.Not.Contain("epoch 3/3"), "training stopped at the failed checkpoint");
            Assert.That(Checkpoint.Load(last).State.CompletedEpochs, Is.EqualTo(1));
            Assert.That(Directory.GetFiles(run, "*.tmp"), Is.Empty, "no temporary file is left behind");
        }
        finally
        {
            Directory.Delete(run, recursive: true);
        }
    }
}
