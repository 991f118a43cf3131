using System.Runtime.InteropServices;

namespace Crate.Training.Tests.Training;

public class ProcessTuningTests
{
    [Test]
    public void SettingsReachTheCEnvironmentThatLibtorchAndOpenMpRead()
    {
        Assume.That(OperatingSystem.IsLinux(), "the settings apply on Linux");
        ProcessTuning.Apply(coresShared: false);   // again: the setup fixture set the policy already, and a policy set stands
        Assert.That(ProcessTuning.UseHugePages(), Is.False, "a variable already set is left alone");
        Assert.That(CEnvironment("THP_MEM_ALLOC_ENABLE"), Is.EqualTo(Environment.GetEnvironmentVariable("THP_MEM_ALLOC_ENABLE") ?? "1"));
        Assert.That(CEnvironment("OMP_WAIT_POLICY"), Is.EqualTo(Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "PASSIVE"));
    }

    [Test]
    public void Cpu_times_are_read_from_proc_stat_lines()
    {
        // user nice system idle iowait irq softirq steal guest guest_nice: steal counts as neither busy nor total.
        var times = CpuTimes.Parse("cpu  100 5 30 800 20 3 2 999 0 0");
        Assert.That(times, Is.EqualTo(new CpuTimes(Busy: 140, Total: 960)));
        Assert.That(CpuTimes.ProcessTicks("4242 (dotnet crate) S 1 4242 4242 0 -1 4194304 100 0 0 0 57 13 0 0 20 0 9 0"), Is.EqualTo(70));
        Assert.That(() => CpuTimes.Parse("cpu0 1 2 3"), Throws.TypeOf<FormatException>().With.Message.EqualTo("Not an aggregate /proc/stat cpu line: 'cpu0 1 2 3'."));
        Assert.That(() => CpuTimes.ProcessTicks("4242 (dotnet) S 1"), Throws.TypeOf<FormatException>().With.Message.StartsWith("Not a /proc/PID/stat line"));
    }

    [Test]
    public void Other_processes_cpu_is_the_machine_busy_time_less_this_process_time()
    {
        var before = new CpuTimes(Busy: 1000, Total: 5000);
        // 40 ticks on 2 cores (0.2 s at 100 ticks/s): 30 busy, 20 of them this process's, so others used 10 of 40 = half a core.
        var after = new CpuTimes(Busy: 1030, Total: 5040);
        Assert.That(ProcessTuning.OtherProcessesCores(before, after, ownTicks: 20, cores: 2), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(ProcessTuning.OtherProcessesCores(before, after, ownTicks: 30, cores: 2), Is.EqualTo(0));
        Assert.That(ProcessTuning.OtherProcessesCores(before, after, ownTicks: 35, cores: 2), Is.EqualTo(0), "tick rounding never goes below 0");
        Assert.That(ProcessTuning.OtherProcessesCores(before, before, ownTicks: 0, cores: 2), Is.EqualTo(0), "no time passed");
    }

    [Test]
    public void A_busy_process_beside_this_one_is_measured()
    {
        Assume.That(File.Exists("/proc/stat") && File.Exists("/bin/sh"), "Linux");
        using var spinner = System.Diagnostics.Process.Start("/bin/sh", ["-c", "while :; do :; done"]);
        try
        {
            Thread.Sleep(100);
            Assert.That(ProcessTuning.OtherProcessesCores(), Is.GreaterThan(ProcessTuning.SharedCoresThreshold), "a shell loop uses a whole core");
        }
        finally { spinner.Kill(); }
    }

    private static string? CEnvironment(string name) => Marshal.PtrToStringUTF8(GetEnv(name));

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);
}
