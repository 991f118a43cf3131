using System.Diagnostics;
using System.Reflection;

namespace Crate.MLNet.Tests;

/// <summary>Runs a built sample in a child process (its own dependencies, nothing of this process loaded).</summary>
internal static class Samples
{
    public sealed record Result(int ExitCode, string Output, string Error);

    private static string Metadata(string key) =>
        typeof(Samples).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    /// <summary>The sample's built assembly, <c>samples/NAME/bin/CONFIGURATION/net10.0/NAME.dll</c>.</summary>
    public static string AssemblyOf(string name) =>
        Path.Combine(Metadata("SamplesDirectory"), name, "bin", Metadata("Configuration"), "net10.0", name + ".dll");

    public static Result Run(string name, IEnumerable<string> args, TimeSpan? timeout = null, IDictionary<string, string>? environment = null)
    {
        var dll = AssemblyOf(name);
        if (!File.Exists(dll)) Assert.Fail($"Sample {name} is not built ('{dll}' is missing); build Crate.sln first.");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{name} {string.Join(' ', args)} did not finish in time.\n{output.Result}\n{error.Result}");
        }
        return new Result(process.ExitCode, output.Result, error.Result);
    }
}
