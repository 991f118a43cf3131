using System.Runtime.InteropServices;

namespace Crate.Training;

/// <summary>
/// Process-wide settings that decide libtorch's CPU speed on Linux, applied before libtorch loads. Measured with
/// CRATE-mini training (2 threads) on 2 cores shared with other work:
/// <list type="bullet">
/// <item>OpenMP worker threads spin while waiting for work; with other processes on the cores the spinning starves
/// the work: 29 images/s spinning, 235 with <c>OMP_WAIT_POLICY=PASSIVE</c>. On idle cores it is the other way round:
/// threads that sleep at once pay a wake-up for each of the hundreds of small operations in a step (float32, batch 128:
/// 341-363 images/s passive, 494 with OpenMP's default brief spin; batch 32: 297 against 493). So the policy is chosen
/// from what else runs when the process starts.</item>
/// <item>glibc returns freed activation buffers to the kernel and every step faults them back in: 2.8 million page
/// faults and 6.3 s of system time per 40 steps, against 0.38 million and 1.4 s when freed memory is kept.</item>
/// <item>Buffers over glibc's 32 MiB limit (attention at 256 patches: [B, heads, 257, 257]) are still unmapped on free
/// and faulted in again; with libtorch's transparent huge pages they come back as 2 MiB pages instead of 4 KiB ones.
/// Segmentation training at 256 patches, batch 32: 1.38 million page faults and 41 images/s, against 0.27 million and
/// 51 images/s (batch 16, under the limit: 63 and 65 images/s).</item>
/// </list>
/// </summary>
public static class ProcessTuning
{
    /// <summary>
    /// The largest allocation, in bytes, that glibc serves from its heap and reuses once <see cref="KeepFreedMemory"/> has
    /// run (32 MiB, glibc's ceiling for the mmap threshold on 64-bit); larger buffers are mapped and unmapped every time.
    /// </summary>
    public const int HeapAllocationLimit = 32 << 20;

    private const int TrimThreshold = -1;   // glibc's M_TRIM_THRESHOLD
    private const int MmapThreshold = -3;   // glibc's M_MMAP_THRESHOLD

    /// <summary>Other processes using at least this many cores' worth of CPU make the cores count as shared.</summary>
    public const double SharedCoresThreshold = 0.25;

    /// <summary>
    /// Applies the OpenMP wait policy, <see cref="KeepFreedMemory"/> and <see cref="UseHugePages"/>. Call it first thing,
    /// before any TorchSharp call.
    /// </summary>
    /// <param name="coresShared">
    /// Whether other work shares the cores. True sets <c>OMP_WAIT_POLICY=PASSIVE</c> (<see cref="PreferPassiveOpenMp"/>);
    /// false leaves OpenMP's default (a brief spin, then sleep). Null (the default) measures it: the cores count as shared
    /// when other processes used at least <see cref="SharedCoresThreshold"/> of a core over 0.2 s (<see cref="OtherProcessesCores()"/>).
    /// A policy the user set in <c>OMP_WAIT_POLICY</c> always stands.
    /// </param>
    public static void Apply(bool? coresShared = null)
    {
        if (GetEnv("OMP_WAIT_POLICY") == IntPtr.Zero && (coresShared ?? OtherProcessesCores() >= SharedCoresThreshold))
            PreferPassiveOpenMp();
        KeepFreedMemory();
        UseHugePages();
    }

    /// <summary>Sets <c>OMP_WAIT_POLICY=PASSIVE</c> unless already set (OpenMP reads it when libtorch loads). Returns whether it was set.</summary>
    public static bool PreferPassiveOpenMp() => SetUnlessSet("OMP_WAIT_POLICY", "PASSIVE", OperatingSystem.IsLinux() || OperatingSystem.IsMacOS());

    /// <summary>OpenMP's wait policy for this process, in words (for logs and benchmark records).</summary>
    public static string OpenMpWaiting => Marshal.PtrToStringUTF8(GetEnv("OMP_WAIT_POLICY")) is { Length: > 0 } policy
        ? $"OMP_WAIT_POLICY={policy}"
        : "OpenMP's default waiting (brief spin, then sleep)";

    /// <summary>
    /// Cores' worth of CPU that processes other than this one used over 0.2 s, from <c>/proc/stat</c> and
    /// <c>/proc/self/stat</c>; 0 where those are missing (not Linux).
    /// </summary>
    public static double OtherProcessesCores()
    {
        const string machine = "/proc/stat", self = "/proc/self/stat";
        if (!File.Exists(machine) || !File.Exists(self)) return 0;
        var before = (CpuTimes.Parse(File.ReadLines(machine).First()), CpuTimes.ProcessTicks(File.ReadAllText(self)));
        Thread.Sleep(200);
        var after = (CpuTimes.Parse(File.ReadLines(machine).First()), CpuTimes.ProcessTicks(File.ReadAllText(self)));
        return OtherProcessesCores(before.Item1, after.Item1, after.Item2 - before.Item2, Environment.ProcessorCount);
    }

    /// <summary>
    /// Cores' worth of CPU used by others between two readings of the machine's times, given the ticks this process used
    /// in between: (machine busy ticks - own ticks) / all ticks x cores.
    /// </summary>
    public static double OtherProcessesCores(CpuTimes before, CpuTimes after, long ownTicks, int cores)
    {
        long total = after.Total - before.Total;
        return total <= 0 ? 0 : Math.Max(0, (double)(after.Busy - before.Busy - ownTicks) / total * cores);
    }

    /// <summary>
    /// Sets <c>THP_MEM_ALLOC_ENABLE=1</c> on Linux unless already set: libtorch then aligns buffers of 2 MiB and more to
    /// 2 MiB and asks for transparent huge pages for them (it reads the variable at its first allocation). Returns whether it was set.
    /// </summary>
    public static bool UseHugePages() => SetUnlessSet("THP_MEM_ALLOC_ENABLE", "1", OperatingSystem.IsLinux());

    private static bool SetUnlessSet(string name, string value, bool supported)
    {
        // .NET keeps its own copy of the environment on Unix (Environment.SetEnvironmentVariable changes only that);
        // native libraries read the C environment, so that is the one checked and changed.
        if (!supported || GetEnv(name) != IntPtr.Zero) return false;
        return SetEnv(name, value, overwrite: 0) == 0;
    }

    /// <summary>
    /// Makes glibc serve allocations up to 32 MiB from its heap and keep up to 1 GiB of freed memory, so buffers are
    /// reused instead of unmapped and faulted in again each step. Skipped when the user set <c>MALLOC_*</c> variables
    /// or the C library is not glibc. Returns whether it was applied.
    /// </summary>
    public static bool KeepFreedMemory()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariables().Keys.Cast<string>().Any(k => k.StartsWith("MALLOC_", StringComparison.Ordinal)))
            return false;
        try
        {
            // The mmap threshold must be set too: fixing the trim threshold alone turns off glibc's adaptive mmap threshold.
            return MallOpt(MmapThreshold, HeapAllocationLimit) == 1 && MallOpt(TrimThreshold, 1 << 30) == 1;
        }
        catch (EntryPointNotFoundException) { return false; }   // musl and other C libraries have no mallopt
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);
}

/// <summary>
/// The machine's CPU time from the aggregate <c>cpu</c> line of <c>/proc/stat</c>, in clock ticks: busy (user, nice,
/// system, irq, softirq) and in all (busy plus idle and iowait). Time stolen by a hypervisor counts as neither.
/// </summary>
public readonly record struct CpuTimes(long Busy, long Total)
{
    /// <summary>Reads a <c>cpu  user nice system idle iowait irq softirq steal ...</c> line.</summary>
    /// <exception cref="FormatException">The line is not of that form.</exception>
    public static CpuTimes Parse(string line)
    {
        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 8 || fields[0] != "cpu" || !fields.Skip(1).Take(7).All(f => long.TryParse(f, out _)))
            throw new FormatException($"Not an aggregate /proc/stat cpu line: '{line}'.");
        var t = fields.Skip(1).Take(7).Select(long.Parse).ToArray();   // user nice system idle iowait irq softirq
        long busy = t[0] + t[1] + t[2] + t[5] + t[6];
        return new CpuTimes(busy, busy + t[3] + t[4]);
    }

    /// <summary>User plus system ticks of a process, from its <c>/proc/PID/stat</c> text (fields 14 and 15).</summary>
    /// <exception cref="FormatException">The text is not of that form.</exception>
    public static long ProcessTicks(string stat)
    {
        // The command name (field 2) is in parentheses and may hold spaces; fields after it are plain.
        int close = stat.LastIndexOf(')');
        var rest = close < 0 ? [] : stat[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (rest.Length < 13 || !long.TryParse(rest[11], out long user) || !long.TryParse(rest[12], out long system))
            throw new FormatException($"Not a /proc/PID/stat line: '{stat.Trim()}'.");
        return user + system;
    }
}
