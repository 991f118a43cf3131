using System.Text.RegularExpressions;
using SkiaSharp;

namespace Crate.Cli.Tests;

public class BenchSoakCommandTests
{
    [Test]
    public void A_short_soak_samples_memory_checks_every_result_and_records_its_section_and_plot()
    {
        var dir = Directory.CreateTempSubdirectory("crate-soak-").FullName;
        try
        {
            var record = Path.Combine(dir, "BENCHMARKS.md");
            File.WriteAllText(record, "# Benchmarks\n\nanother section\n");
            var (exit, output, error) = CliRunner.Run("bench", "soak", "--minutes", "0.05", "--sample-seconds", "1", "--threads", "3", "--record", record);
            Assert.That(exit, Is.Zero, error);
            // A sample at the start and one a second for three seconds.
            Assert.That(Regex.Matches(output, @"^\d:\d\d  RSS +\d+\.\d MB  managed heap +\d+\.\d MB", RegexOptions.Multiline), Has.Count.EqualTo(4));
            var calls = Regex.Match(output, @"results: all ([\d,]+) concurrent calls equal the sequential pass");
            Assert.That(calls.Success, output);

            var text = File.ReadAllText(record);
            Assert.That(text, Does.StartWith("# Benchmarks\n\nanother section\n"));
            Assert.That(text, Does.Contain("## Soak: 3 threads on the ONNX model and the ML.NET prediction helper (`crate bench soak`)"));
            Assert.That(text, Does.Contain($"- Results: all {calls.Groups[1].Value} concurrent calls returned exactly the probabilities of a first sequential pass"));
            Assert.That(text, Does.Match(@"\| process RSS \(MB\) \| \d+\.\d \| \d+\.\d \| \d+\.\d \| [+-]\d+\.\d\d MB/min \|"));
            Assert.That(text, Does.Contain("![Memory over time](docs/bench/soak-memory.png)"));
            using var plot = SKBitmap.Decode(Path.Combine(dir, "docs", "bench", "soak-memory.png"));
            Assert.That((plot.Width, plot.Height), Is.EqualTo((700, 350)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
