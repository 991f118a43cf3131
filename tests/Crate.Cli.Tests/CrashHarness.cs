using System.Diagnostics;
using System.Text.Json;
using Crate.Core.Weights;
using SkiaSharp;

namespace Crate.Cli.Tests;

/// <summary>
/// Runs a <c>crate</c> command in a child process, kills it with SIGKILL at seeded random moments and starts it again
/// (with <c>--resume</c> once it has something to resume from) until it finishes. Half the kills come at a random time
/// since the process started (10-60% of an uninterrupted run's time), half during a file write: when the first or second
/// atomic-write temporary file appears in the run's folder, after a random 0-20 ms. After every kill, every file in the folder must be complete: safetensors files and
/// checkpoints parse, JSON parses, PNGs decode.
/// </summary>
internal sealed class CrashHarness(string folder, int seed)
{
    /// <summary>What one interrupted run went through.</summary>
    /// <param name="Kills">Processes killed.</param>
    /// <param name="KillsDuringWrites">Kills triggered by a temporary file (a write in progress).</param>
    /// <param name="FilesChecked">Files found complete after kills (counted once per kill).</param>
    /// <param name="AbandonedTemporaries">Temporary files the killed processes left (removed by the next run).</param>
    /// <param name="Starts">Processes started, the finishing one included.</param>
    /// <param name="Elapsed">Wall time of the whole interrupted run.</param>
    public sealed record Report(int Kills, int KillsDuringWrites, int FilesChecked, int AbandonedTemporaries, int Starts, TimeSpan Elapsed)
    {
        public static Report operator +(Report a, Report b) => new(a.Kills + b.Kills, a.KillsDuringWrites + b.KillsDuringWrites,
            a.FilesChecked + b.FilesChecked, a.AbandonedTemporaries + b.AbandonedTemporaries, a.Starts + b.Starts, a.Elapsed + b.Elapsed);

        public override string ToString() => FormattableString.Invariant(
            $"{Kills} kills ({KillsDuringWrites} during a write), {FilesChecked} files checked after kills, {AbandonedTemporaries} abandoned temporary files, {Starts} starts, {Elapsed.TotalSeconds:F0} s");
    }

    /// <summary>No kills yet.</summary>
    public static Report None { get; } = new(0, 0, 0, 0, 0, TimeSpan.Zero);

    private readonly Random _random = new(seed);

    /// <summary>Runs <paramref name="command"/> to completion once, uninterrupted; returns its wall time.</summary>
    public static TimeSpan RunToCompletion(string[] command)
    {
        var clock = Stopwatch.StartNew();
        using var child = Start(command);
        child.Finish();
        return clock.Elapsed;
    }

    /// <summary>
    /// Kills <paramref name="command"/> <paramref name="kills"/> times (fewer if it finishes first), then lets it finish.
    /// <paramref name="command"/> gets whether to resume: <paramref name="canResume"/> says whether a checkpoint exists.
    /// <paramref name="typical"/> is an uninterrupted run's wall time (random kill times fall within it).
    /// </summary>
    public Report Run(Func<bool, string[]> command, Func<bool> canResume, int kills, TimeSpan typical)
    {
        var clock = Stopwatch.StartNew();
        int killed = 0, duringWrites = 0, checkedFiles = 0, abandoned = 0, starts = 0;
        while (true)
        {
            var args = command(canResume());
            using var child = Start(args);
            var process = child.Process;
            starts++;
            if (killed == kills)
            {
                child.Finish();
                break;
            }
            bool onWrite = _random.Next(2) == 0;
            // Early enough that a resumed run (which has less left to do) is still running when the kill comes.
            var deadline = TimeSpan.FromSeconds(typical.TotalSeconds * (0.1 + 0.5 * _random.NextDouble()));
            int writesBeforeKill = 1 + _random.Next(2);
            var delayAfterWrite = TimeSpan.FromMilliseconds(_random.Next(21));
            var started = Stopwatch.StartNew();
            var seen = new HashSet<string>();
            bool fired = false;
            while (!process.HasExited)
            {
                if (onWrite)
                {
                    foreach (var temp in Temporaries()) seen.Add(temp);
                    fired = seen.Count >= writesBeforeKill;
                }
                else fired = started.Elapsed >= deadline;
                if (fired) break;
                Thread.Sleep(2);
            }
            if (!fired)
            {
                // It finished before the kill came: the run is over.
                child.Finish();
                break;
            }
            if (onWrite) Thread.Sleep(delayAfterWrite);
            process.Kill();   // SIGKILL on Unix: no handler, no flush, no cleanup
            process.WaitForExit();
            if (process.ExitCode == 0) break;   // it finished in the instant before the kill
            killed++;
            if (onWrite) duringWrites++;
            abandoned += Temporaries().Count();
            checkedFiles += CheckEveryFileIsComplete();
        }
        return new Report(killed, duringWrites, checkedFiles, abandoned, starts, clock.Elapsed);
    }

    /// <summary>Temporary files of atomic writes in the folder (names start with '.' and end with '.tmp').</summary>
    public IEnumerable<string> Temporaries() =>
        Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, ".*.tmp", SearchOption.AllDirectories).Select(Path.GetFileName).OfType<string>()
            : [];

    /// <summary>Opens every file in the folder the way its readers do; returns how many were checked.</summary>
    private int CheckEveryFileIsComplete()
    {
        int count = 0;
        foreach (var file in Directory.Exists(folder) ? Directory.GetFiles(folder, "*", SearchOption.AllDirectories) : [])
        {
            var name = Path.GetFileName(file);
            if (name.StartsWith('.') && name.EndsWith(".tmp", StringComparison.Ordinal)) continue;
            try
            {
                switch (Path.GetExtension(name))
                {
                    case ".safetensors" or ".ckpt":
                        Safetensors.Read(file);
                        break;
                    case ".json":
                        using (JsonDocument.Parse(File.ReadAllBytes(file))) { }
                        break;
                    case ".png":
                        using (var bitmap = SKBitmap.Decode(file)) Assert.That(bitmap, Is.Not.Null, $"{file} does not decode");
                        break;
                    default:
                        continue;
                }
            }
            catch (Exception e) when (e is not AssertionException)
            {
                Assert.Fail($"After a kill, '{file}' is not complete: {e.Message}");
            }
            count++;
        }
        return count;
    }

    private static Child Start(string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "crate.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["NO_COLOR"] = "1";
        return new Child(Process.Start(start)!, args);
    }

    /// <summary>A started <c>crate</c> process whose output is drained (so it never blocks on a full pipe) and whose errors are kept.</summary>
    private sealed class Child : IDisposable
    {
        private readonly System.Text.StringBuilder _errors = new();
        private readonly string[] _args;

        public Child(Process process, string[] args)
        {
            (Process, _args) = (process, args);
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (_errors) _errors.AppendLine(e.Data); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        public Process Process { get; }

        /// <summary>Waits for a normal end and asserts it succeeded.</summary>
        public void Finish()
        {
            if (!Process.WaitForExit(TimeSpan.FromMinutes(10)))
            {
                Process.Kill();
                Assert.Fail($"crate {string.Join(' ', _args)} did not finish in 10 minutes");
            }
            Process.WaitForExit();   // the output events have been delivered
            lock (_errors) Assert.That(Process.ExitCode, Is.Zero, $"crate {string.Join(' ', _args)} failed: {_errors}");
        }

        public void Dispose() => Process.Dispose();
    }
}
