using System.Diagnostics;

namespace Crate.Cli.Tests;

/// <summary>Runs the built <c>crate</c> command line in a child process, output redirected (plain mode).</summary>
internal static class CliRunner
{
    public sealed record Result(int ExitCode, string Output, string Error);

    public static Result Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "crate.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["NO_COLOR"] = "1";
        start.Environment["OMP_WAIT_POLICY"] = "PASSIVE";   // test runs share the cores: no spinning, whatever crate measures at start
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5))) { process.Kill(true); Assert.Fail($"crate {string.Join(' ', args)} did not finish in 5 minutes"); }
        return new Result(process.ExitCode, output.Result, error.Result);
    }

    /// <summary>
    /// Runs the command line's entry point in this process, output captured: for tests that inject a dependency the
    /// product exposes (e.g. <c>AtomicFile.UseOpener</c>), which a child process would not see.
    /// </summary>
    public static Result RunInProcess(params string[] args)
    {
        var entry = System.Reflection.Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, "crate.dll")).EntryPoint!;
        var (savedOut, savedError) = (Console.Out, Console.Error);
        using StringWriter output = new(), error = new();
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            var exit = (int)entry.Invoke(null, [args])!;
            return new Result(exit, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(savedOut);
            Console.SetError(savedError);
        }
    }
}
