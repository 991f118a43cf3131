using System.Text.Json;

namespace Crate.Cli.Tests;

public class StudyCommandTests
{
    [Test]
    public void SmallBudgetStudyWritesTheTableChartAndNumbers()
    {
        var dir = Path.Combine(Path.GetTempPath(), "crate-study-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = CliRunner.Run("study", "--data", "generated", "--depth", "1", "--limit", "256", "--test-limit", "200",
                "--pretrain-steps", "4", "--adapt-steps", "4", "--batch-size", "32", "--out", dir);
            Assert.That(result.ExitCode, Is.EqualTo(0), result.Error);
            foreach (var file in new[] { "study.md", "study.html", "study.png", "study.json" })
                Assert.That(new FileInfo(Path.Combine(dir, file)).Length, Is.GreaterThan(100), file);
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "study.json")));
            var cells = json.RootElement.GetProperty("cells").EnumerateArray().ToList();
            Assert.That(cells, Has.Count.EqualTo(12), "4 pretext tasks x 3 adaptation methods");
            // A frozen backbone trains only the head (LayerNorm 2*192 + Linear 192*10 + 10) or the head and 8 prompts.
            long Trainable(string method) => cells.First(c => c.GetProperty("adaptation").GetString() == method).GetProperty("trainable_parameters").GetInt64();
            Assert.That(Trainable("LinearProbe"), Is.EqualTo(2 * 192 + 192 * 10 + 10));
            Assert.That(Trainable("PromptTuning"), Is.EqualTo(2 * 192 + 192 * 10 + 10 + 8 * 192));
            Assert.That(cells.Select(c => c.GetProperty("test_top1").GetDouble()), Is.All.InRange(0.0, 1.0));
            Assert.That(File.ReadAllText(Path.Combine(dir, "study.md")), Does.Contain("| Rotation |").And.Contain("crate study"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
