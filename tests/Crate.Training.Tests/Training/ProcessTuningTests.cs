using System.Runtime.InteropServices;

namespace Crate.Training.Tests.Training;

public class ProcessTuningTests
{
    [Test]
    public void SettingsReachTheCEnvironmentThatLibtorchAndOpenMpRead()
    {
        Assume.That(OperatingSystem.IsLinux(), "the settings apply on Linux");
        ProcessTuning.Apply();   // again: the setup fixture applied it already, so nothing changes
        Assert.That(ProcessTuning.UseHugePages(), Is.False, "a variable already set is left alone");
        Assert.That(CEnvironment("THP_MEM_ALLOC_ENABLE"), Is.EqualTo(Environment.GetEnvironmentVariable("THP_MEM_ALLOC_ENABLE") ?? "1"));
        Assert.That(CEnvironment("OMP_WAIT_POLICY"), Is.EqualTo(Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "PASSIVE"));
    }

    private static string? CEnvironment(string name) => Marshal.PtrToStringUTF8(GetEnv(name));

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);
}
