using System.Globalization;
using System.Reflection;
using Crate.Core.IO;

namespace Crate.Cli.Reporting;

/// <summary>What every <c>crate bench</c> command records: its section of BENCHMARKS.md and the machine it ran on.</summary>
internal static class BenchmarkFile
{
    /// <summary>Replaces the section between the markers in <paramref name="path"/>, or appends it .</summary>
    internal static void RecordSection(string path, string markdown, string startMarker, string endMarker)
    {
        var section = $"{startMarker}\n{markdown.TrimEnd()}\n{endMarker}\n";
        var text = File.Exists(path) ? File.ReadAllText(path) : "# Benchmarks\n\nFigures measured by `crate bench ...` commands; each command rewrites its own section.\n";
        int start = text.IndexOf(startMarker, StringComparison.Ordinal), end = text.IndexOf(endMarker, StringComparison.Ordinal);
        text = start >= 0 && end > start
            ? text[..start] + section + text[(end + endMarker.Length)..].TrimStart('\n')
            : text.TrimEnd() + "\n\n" + section;
        AtomicFile.WriteAllText(path, text);
    }

    /// <summary>
    /// Records <paramref name="markdown"/> between the markers in <paramref name="record"/> (default: BENCHMARKS.md at the
    /// repository root) unless <paramref name="noRecord"/>, and says where.
    /// </summary>
    internal static void RecordUnless(bool noRecord, FileInfo? record, string markdown, string startMarker, string endMarker)
    {
        if (noRecord) return;
        var path = record?.FullName ?? Path.Combine(RepoRoot(), "BENCHMARKS.md");
        RecordSection(path, markdown, startMarker, endMarker);
        Console.WriteLine($"recorded in {path}");
    }

    /// <summary>The command line as typed, for the section's "Command:" line.</summary>
    internal static string CommandLine() => "crate " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));

    /// <summary>
    /// The note every section carries when the one-minute load average <paramref name="load"/> (as <see cref="LoadAverage"/>
    /// gives it) exceeded the cores; null on a quiet machine.
    /// </summary>
    internal static string? SharedMachineNote(string load)
    {
        int cores = Environment.ProcessorCount;
        if (!double.TryParse(load.Split(' ')[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var busy) || busy <= cores)
            return null;
        return string.Create(CultureInfo.InvariantCulture,
            $"**The machine was shared during this run** (load average {busy:F1} on {cores} cores): absolute figures, the ceiling ") +
            "included, are well below a quiet machine's; ratios between engines measured in alternating rounds are the robust figures. Re-run when idle.";
    }

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Crate.sln"))) return dir.FullName;
        return Environment.CurrentDirectory;
    }

    internal static string LoadAverage()
    {
        try { return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "unknown"; }
    }

    internal static string CpuModel()
    {
        try
        {
            string? Field(string name) => File.ReadLines("/proc/cpuinfo").Where(l => l.StartsWith(name, StringComparison.Ordinal))
                .Select(l => l[(l.IndexOf(':') + 1)..].Trim()).FirstOrDefault();
            var flags = (Field("flags") ?? "").Split(' ');
            var simd = new[] { "avx2", "avx512f", "avx512_bf16" }.Where(flags.Contains).ToArray();
            if (Field("model name") is { } model) return simd.Length > 0 ? $"{model} ({string.Join(", ", simd)})" : model;
        }
        catch (IOException) { }
        return "unknown CPU";
    }

    internal static string VersionOf(Type type) =>
        (type.Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? type.Assembly.GetName().Version?.ToString() ?? "?").Split('+')[0];
}
