using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Crate.Core.IO;
using Crate.Core.Model;
using Crate.MLNet;
using Crate.Onnx.Export;
using Crate.Onnx.Runtime;
using Crate.Training.Model;
using ScottPlot;
using TorchSharp;
using static Crate.Cli.Reporting.BenchmarkFile;

namespace Crate.Cli.Commands;

/// <summary>
/// <c>crate bench soak</c>: a bounded soak of the serving paths. Eight threads call <see cref="CrateOnnxModel"/> and
/// <see cref="CratePredictor"/> (one image per call, alternating) for a fixed time; every result is compared with a first
/// sequential pass, and process RSS and the managed heap are sampled every few seconds. Flat memory and unchanged results
/// are what a service needs.
/// </summary>
internal static class BenchSoakCommand
{
    private const string SectionStart = "<!-- bench-soak:start -->";
    private const string SectionEnd = "<!-- bench-soak:end -->";
    private const double FlatSlopeMbPerMinute = 1;
    private const int ImageCount = 256;

    /// <summary>One memory sample.</summary>
    private readonly record struct Sample(double Minutes, double RssMb, double ManagedMb, long Calls);

    public static Command Create()
    {
        var minutes = new Option<double>("--minutes") { Description = "How long the threads run.", DefaultValueFactory = _ => 10 };
        var threads = new Option<int>("--threads") { Description = "Threads calling the model at once.", DefaultValueFactory = _ => 8 };
        var every = new Option<double>("--sample-seconds") { Description = "Seconds between memory samples.", DefaultValueFactory = _ => 5 };
        var preset = new Option<string>("--preset") { Description = "Model shape (seeded random weights).", DefaultValueFactory = _ => "mini" };
        var record = new Option<FileInfo?>("--record") { Description = "Markdown file whose soak section is replaced (default: BENCHMARKS.md at the repository root)." };
        var noRecord = new Option<bool>("--no-record") { Description = "Print only; do not update the benchmarks file." };
        var plot = new Option<FileInfo?>("--plot") { Description = "PNG of memory over time (default: docs/bench/soak-memory.png beside the benchmarks file; none with --no-record)." };
        var command = new Command("soak", "Run the ONNX model and CratePredictor from many threads for minutes: memory over time (RSS, managed heap) and results against a sequential pass.")
        {
            minutes, threads, every, preset, record, noRecord, plot,
        };
        command.SetAction((parse, cancellation) =>
        {
            double duration = parse.GetValue(minutes), interval = parse.GetValue(every);
            int callers = parse.GetValue(threads);
            if (duration <= 0 || interval <= 0 || callers < 1) throw new ArgumentException("--minutes and --sample-seconds must be positive, --threads at least 1.");
            var recordPath = parse.GetValue(noRecord) ? null : parse.GetValue(record)?.FullName ?? Path.Combine(RepoRoot(), "BENCHMARKS.md");
            var plotPath = parse.GetValue(plot)?.FullName ?? (recordPath != null ? Path.Combine(Path.GetDirectoryName(recordPath)!, "docs", "bench", "soak-memory.png") : null);
            torch.manual_seed(0);
            using var seeded = new CrateModel(CratePresets.ByName(parse.GetValue(preset)!));
            var commandLine = "crate " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));
            var (markdown, mismatches) = Run(seeded.ToWeights(), TimeSpan.FromMinutes(duration), TimeSpan.FromSeconds(interval), callers, plotPath, recordPath, commandLine, cancellation);
            if (recordPath != null)
            {
                RecordSection(recordPath, markdown, SectionStart, SectionEnd);
                Console.WriteLine($"recorded in {recordPath}");
            }
            if (mismatches > 0)
            {
                Console.Error.WriteLine($"error: {mismatches} concurrent result(s) differed from the sequential pass.");
                return Task.FromResult(1);
            }
            return Task.FromResult(0);
        });
        return command;
    }

    private static (string Markdown, long Mismatches) Run(CrateWeights weights, TimeSpan duration, TimeSpan interval, int callers, string? plotPath,
        string? recordPath, string commandLine, CancellationToken cancellation)
    {
        var c = weights.Config;
        var load = LoadAverage();
        var onnxPath = Path.Combine(Path.GetTempPath(), $"crate-bench-soak-{Environment.ProcessId}.onnx");
        CrateOnnxExporter.ExportToFile(weights, onnxPath);
        try
        {
            var images = BenchMlnetCommand.Images(c, ImageCount);
                var pixels = Enumerable.Range(0, images.Count).Select(i => images.Image(i).ToArray()).ToArray();
            var floats = pixels.Select(p => p.Select(v => (float)v).ToArray()).ToArray();
            // One ONNX Runtime thread per call: the concurrency under test is the callers'.
            var options = new CrateOnnxOptions { IntraOpThreads = 1 };
            using var model = CrateOnnxModel.Load(onnxPath, options);
            using var predictor = CratePredictor.Load(onnxPath, options);

            // The reference: every image through each path once, one call at a time.
            var modelReference = floats.Select(f => model.Score(f).ProbabilitiesOf(0).ToArray()).ToArray();
            var predictorReference = pixels.Select(p => predictor.Predict(p).Score).ToArray();
            Console.WriteLine($"{c}: {images.Count} images ({images.Name}), {callers} threads alternating CrateOnnxModel.Score and CratePredictor.Predict " +
                              F($"for {duration.TotalMinutes:0.##} min, memory sampled every {interval.TotalSeconds:0.#} s"));

            long calls = 0, mismatches = 0;
            string? firstMismatch = null;
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            var workers = Enumerable.Range(0, callers).Select(t => new Thread(() =>
            {
                for (long k = t; !stop.IsCancellationRequested; k++)
                {
                    int image = (int)(k * 7 % images.Count);   // each thread walks the images in its own order
                    bool viaModel = k % 2 == 0;
                    ReadOnlySpan<float> result = viaModel ? model.Score(floats[image]).ProbabilitiesOf(0) : predictor.Predict(pixels[image]).Score;
                    var expected = viaModel ? modelReference[image] : predictorReference[image];
                    if (!result.SequenceEqual(expected) && Interlocked.Increment(ref mismatches) == 1)
                        firstMismatch = $"{(viaModel ? "CrateOnnxModel" : "CratePredictor")}, image {image}";
                    Interlocked.Increment(ref calls);
                }
            }) { IsBackground = true, Name = $"soak-{t}" }).ToList();

            var samples = new List<Sample>();
            var clock = Stopwatch.StartNew();
            void Take()
            {
                using var self = Process.GetCurrentProcess();
                var sample = new Sample(clock.Elapsed.TotalMinutes, self.WorkingSet64 / 1048576.0, GC.GetTotalMemory(false) / 1048576.0, Interlocked.Read(ref calls));
                samples.Add(sample);
                double rate = samples.Count > 1 ? (sample.Calls - samples[^2].Calls) / ((sample.Minutes - samples[^2].Minutes) * 60) : 0;
                Console.WriteLine(F($"{TimeSpan.FromSeconds(Math.Round(sample.Minutes * 60)):m\\:ss}  RSS {sample.RssMb,7:F1} MB  managed heap {sample.ManagedMb,6:F1} MB  {sample.Calls,10:N0} calls ({rate:F0}/s)  mismatches {Interlocked.Read(ref mismatches)}"));
            }
            Take();
            workers.ForEach(w => w.Start());
            while (clock.Elapsed < duration && !cancellation.IsCancellationRequested)
            {
                var next = TimeSpan.FromTicks(Math.Min((samples.Count * interval).Ticks, duration.Ticks));
                if (next > clock.Elapsed) Thread.Sleep(next - clock.Elapsed);
                Take();
            }
            stop.Cancel();
            workers.ForEach(w => w.Join());
            cancellation.ThrowIfCancellationRequested();

            var summary = Summarise(samples);
            Console.WriteLine(summary.Verdict);
            Console.WriteLine(mismatches == 0 ? F($"results: all {calls:N0} concurrent calls equal the sequential pass") : $"results: {mismatches} of {calls:N0} calls differ (first: {firstMismatch})");
            if (plotPath != null)
            {
                SavePlot(plotPath, samples, F($"{callers} threads, {c.Preset} model: memory over time"));
                Console.WriteLine($"plot: {plotPath}");
            }

            var md = new StringBuilder();
            md.AppendLine($"## Soak: {callers} threads on the ONNX model and the ML.NET prediction helper (`crate bench soak`)");
            md.AppendLine();
            md.AppendLine($"- Command: `{commandLine}` (date {DateTime.UtcNow:yyyy-MM-dd})");
            md.AppendLine($"- Machine: {Environment.ProcessorCount} cores, {CpuModel()}; load average before the run {load}; .NET {Environment.Version}, " +
                          $"ONNX Runtime {VersionOf(typeof(Microsoft.ML.OnnxRuntime.InferenceSession))}");
            md.AppendLine(F($"- Model: {c}, seeded random weights; {images.Count} images ({images.Name}). {callers} threads call `CrateOnnxModel.Score` and ") +
                          F($"`CratePredictor.Predict` alternately, one image per call, one ONNX Runtime thread per call, for {duration.TotalMinutes:0.##} minutes; ") +
                          F($"memory sampled every {interval.TotalSeconds:0.#} s ({samples.Count} samples)"));
            md.AppendLine(mismatches == 0
                ? F($"- Results: all {calls:N0} concurrent calls returned exactly the probabilities of a first sequential pass")
                : F($"- Results: **{mismatches} of {calls:N0} concurrent calls differed** from the sequential pass (first: {firstMismatch})"));
            md.AppendLine();
            md.AppendLine("| memory | start | end | max | slope, second half |");
            md.AppendLine("|---|---|---|---|---|");
            md.AppendLine(F($"| process RSS (MB) | {summary.Rss.Start:F1} | {summary.Rss.End:F1} | {summary.Rss.Max:F1} | {summary.Rss.Slope:+0.00;-0.00} MB/min |"));
            md.AppendLine(F($"| managed heap (MB) | {summary.Managed.Start:F1} | {summary.Managed.End:F1} | {summary.Managed.Max:F1} | {summary.Managed.Slope:+0.00;-0.00} MB/min |"));
            md.AppendLine();
            md.AppendLine(summary.Verdict);
            if (plotPath != null && recordPath != null)
            {
                md.AppendLine();
                md.AppendLine($"![Memory over time]({Path.GetRelativePath(Path.GetDirectoryName(recordPath)!, plotPath).Replace('\\', '/')})");
            }
            return (md.ToString(), mismatches);
        }
        finally
        {
            File.Delete(onnxPath);
        }
    }

    /// <summary>Start, end, maximum and the least-squares slope over the second half of the run (the first half holds warm-up growth).</summary>
    private readonly record struct Trend(double Start, double End, double Max, double Slope);

    private sealed record Summary(Trend Rss, Trend Managed, string Verdict);

    private static Summary Summarise(List<Sample> samples)
    {
        var half = samples.Where(s => s.Minutes >= samples[^1].Minutes / 2).ToList();
        Trend Of(Func<Sample, double> value) => new(value(samples[0]), value(samples[^1]), samples.Max(value), Slope(half.Select(s => (s.Minutes, value(s))).ToList()));
        var rss = Of(s => s.RssMb);
        var verdict = F($"RSS over the second half: {rss.Slope:+0.00;-0.00} MB/min ") +
                      (Math.Abs(rss.Slope) < FlatSlopeMbPerMinute ? F($"(flat: below {FlatSlopeMbPerMinute} MB/min)") : F($"(NOT flat: {FlatSlopeMbPerMinute} MB/min or more)"));
        return new Summary(rss, Of(s => s.ManagedMb), verdict);
    }

    private static double Slope(IReadOnlyList<(double X, double Y)> points)
    {
        if (points.Count < 2) return 0;
        double mx = points.Average(p => p.X), my = points.Average(p => p.Y);
        double sxx = points.Sum(p => (p.X - mx) * (p.X - mx));
        return sxx == 0 ? 0 : points.Sum(p => (p.X - mx) * (p.Y - my)) / sxx;
    }

    private static void SavePlot(string path, List<Sample> samples, string title)
    {
        var plot = new Plot();
        double[] minutes = samples.Select(s => s.Minutes).ToArray();
        plot.Add.Scatter(minutes, samples.Select(s => s.RssMb).ToArray()).LegendText = "process RSS";
        plot.Add.Scatter(minutes, samples.Select(s => s.ManagedMb).ToArray()).LegendText = "managed heap";
        plot.Axes.Bottom.Label.Text = "minutes";
        plot.Axes.Left.Label.Text = "MB";
        plot.Axes.SetLimitsY(0, samples.Max(s => s.RssMb) * 1.15);
        plot.Title(title);
        plot.ShowLegend(Alignment.MiddleRight);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(700, 350, ImageFormat.Png));
    }

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
