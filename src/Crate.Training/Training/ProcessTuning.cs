using System.Runtime.InteropServices;

namespace Crate.Training;

/// <summary>
/// Process-wide settings that decide libtorch's CPU speed on Linux, applied before libtorch loads. Measured with
/// CRATE-mini training (2 threads) on 2 cores shared with other work:
/// <list type="bullet">
/// <item>OpenMP worker threads spin while waiting for work; with other processes on the cores the spinning starves
/// the work: 29 images/s spinning, 235 with <c>OMP_WAIT_POLICY=PASSIVE</c>.</item>
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

    /// <summary>Applies <see cref="PreferPassiveOpenMp"/>, <see cref="KeepFreedMemory"/> and <see cref="UseHugePages"/>. Call it first thing, before any TorchSharp call.</summary>
    public static void Apply()
    {
        PreferPassiveOpenMp();
        KeepFreedMemory();
        UseHugePages();
    }

    /// <summary>Sets <c>OMP_WAIT_POLICY=PASSIVE</c> unless already set (OpenMP reads it when libtorch loads). Returns whether it was set.</summary>
    public static bool PreferPassiveOpenMp() => SetUnlessSet("OMP_WAIT_POLICY", "PASSIVE", OperatingSystem.IsLinux() || OperatingSystem.IsMacOS());

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
