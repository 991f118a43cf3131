using System.Globalization;

namespace Crate.Cli.Reporting;

/// <summary>
/// Peak memory of one phase of a run: the process's resident set (native libraries such as libtorch and ONNX Runtime
/// included) and the managed heap. Start one per phase, stop it when the phase ends.
/// </summary>
/// <remarks>
/// On Linux the resident peak is the kernel's exact high-water mark (<c>VmHWM</c>), reset at the start of the phase by
/// writing 5 to <c>/proc/self/clear_refs</c>; elsewhere, or where that is refused, the working set sampled every 10 ms.
/// The managed peak is sampled every 10 ms (<see cref="GC.GetTotalMemory(bool)"/>), so a spike shorter than that can be missed.
/// </remarks>
internal sealed class PeakMemory : IDisposable
{
    private const string Status = "/proc/self/status";
    private readonly Timer _sampler;
    private readonly bool _exactResident;
    private long _managed, _resident;

    private PeakMemory()
    {
        // Garbage of earlier phases is not this phase's: collect it so the managed peak starts from live objects.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        _exactResident = TryResetHighWaterMark();
        Sample();
        _sampler = new Timer(_ => Sample(), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(10));
    }

    /// <summary>Starts measuring a phase.</summary>
    public static PeakMemory Start() => new();

    /// <summary>Stops sampling; returns the phase's peak resident set and peak managed heap, in MiB.</summary>
    public (double ResidentMiB, double ManagedMiB) Stop()
    {
        _sampler.Dispose();
        Sample();
        long resident = _exactResident ? Math.Max(_resident, HighWaterMark() ?? 0) : _resident;
        return (resident / 1048576.0, Interlocked.Read(ref _managed) / 1048576.0);
    }

    /// <summary>How the peaks were taken, for reports.</summary>
    public static string Method =>
        (OperatingSystem.IsLinux() ? "Peak resident set: the kernel's high-water mark (VmHWM), reset at each phase's start" : "Peak resident set: the working set sampled every 10 ms") +
        "; it is the whole process's, so it includes what earlier phases left resident (loaded native libraries, freed memory the allocator keeps). " +
        "Peak managed heap: sampled every 10 ms after a full collection at the phase's start.";

    /// <inheritdoc />
    public void Dispose() => _sampler.Dispose();

    private void Sample()
    {
        Max(ref _managed, GC.GetTotalMemory(false));
        Max(ref _resident, Environment.WorkingSet);
    }

    private static void Max(ref long peak, long value)
    {
        for (long seen = Interlocked.Read(ref peak); value > seen; seen = Interlocked.Read(ref peak))
            if (Interlocked.CompareExchange(ref peak, value, seen) == seen) return;
    }

    private static bool TryResetHighWaterMark()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return HighWaterMark() != null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>VmHWM in bytes, or null where <c>/proc/self/status</c> lacks it.</summary>
    private static long? HighWaterMark()
    {
        var line = File.ReadLines(Status).FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line != null && long.TryParse(line["VmHWM:".Length..].Replace("kB", "", StringComparison.Ordinal).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var kb)
            ? kb * 1024 : null;
    }
}
