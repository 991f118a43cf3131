using System.Text.Json;

namespace Crate.Cli.Tests;

public class StudyCommandTests
{
    [Test]
    public void ClassificationOnlyStudyHasNoSegmentationTable()
    {
        var dir = Path.Combine(Path.GetTempPath(), "crate-study-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = CliRunner.Run("study", "--task", "classification", "--data", "generated", "--depth", "1", "--limit", "64", "--test-limit", "32",
                "--pretrain-steps", "2", "--adapt-steps", "2", "--batch-size", "32", "--out", dir);
            Assert.That(result.ExitCode, Is.EqualTo(0), result.Error);
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "study.json")));
            var tasks = json.RootElement.GetProperty("cells").EnumerateArray().Select(c => c.GetProperty("task").GetString()).ToList();
            Assert.That(tasks, Has.Count.EqualTo(15).And.All.EqualTo("Classification"), "5 backbones (the untrained control included) x 3 methods");
            Assert.That(File.ReadAllText(Path.Combine(dir, "study.md")), Does.Not.Contain("Segmentation"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
