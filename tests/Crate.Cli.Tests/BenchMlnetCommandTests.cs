namespace Crate.Cli.Tests;

public class BenchMlnetCommandTests
{
    [Test]
    public void BenchMlnetMeasuresEveryPathAndRecordsItsSection()
    {
        var record = Path.Combine(Path.GetTempPath(), $"crate-bench-mlnet-{Guid.NewGuid():N}.md");
        try
        {
            File.WriteAllText(record, "# Benchmarks\n\nanother section\n");
            var (exit, output, error) = CliRunner.Run("bench", "mlnet", "--images", "64", "--rounds", "1", "--record", record);
            Assert.That(exit, Is.Zero, error);
            Assert.That(output, Does.Contain("images/s").And.Contain("Batched scorer:").And.Contain("target >= 0.8x"));
            Assert.That(output, Does.Contain("Where the time goes: ONNX Runtime alone, one image per call").And.Contain("% of the ceiling"));
            var text = File.ReadAllText(record);
            Assert.That(text, Does.Contain("another section").And.Contain("`crate bench mlnet --images 64 --rounds 1 --record"));
            Assert.That(text, Does.Contain("3x per row would be"));
            foreach (var path in new[] { "| raw ONNX Runtime, batch 64 |", "| raw ONNX Runtime, batch 1 (one call per image) |", "| ML.NET ApplyOnnxModel, per row |", "| Crate chain (ApplyCrateClassifier / trainer output), per row |", "| Crate batched scorer (CrateBatchScorer), batch 64 |" })
                Assert.That(text, Does.Contain(path));
        }
        finally
        {
            File.Delete(record);
        }
    }
}
