using System.Runtime.InteropServices;

namespace Crate.Training;

/// <summary>
/// libtorch's OpenMP worker threads spin while they wait for work. On a machine whose cores are shared with
/// other processes that spinning starves the work itself: CRATE-mini training with 2 threads on 2 busy cores ran
/// at 29 images/s spinning and 235 images/s with passive waiting (same run, same load).
/// </summary>
public static class OpenMpWaitPolicy
{
    private const string Variable = "OMP_WAIT_POLICY";

    /// <summary>
    /// Sets <c>OMP_WAIT_POLICY=PASSIVE</c> for this process unless it is already set. OpenMP reads it when
    /// libtorch loads, so call this before the first TorchSharp call. Returns whether it was set.
    /// </summary>
    public static bool PreferPassive()
    {
        if (Environment.GetEnvironmentVariable(Variable) != null || !(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())) return false;
        // Environment.SetEnvironmentVariable changes only .NET's copy on Unix; OpenMP reads the C environment.
        return SetEnv(Variable, "PASSIVE", overwrite: 0) == 0;
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
