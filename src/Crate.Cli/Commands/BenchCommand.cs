using System.CommandLine;

namespace Crate.Cli.Commands;

/// <summary><c>crate bench</c>: benchmarks that print figures and record them in BENCHMARKS.md.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Measure throughput and accuracy; figures go to the console and BENCHMARKS.md.");
        // Each benchmark lives in its own file and is added here.
        command.Subcommands.Add(BenchInferCommand.Create());
        command.Subcommands.Add(BenchTrainCommand.Create());
        command.Subcommands.Add(BenchMlnetCommand.Create());
        command.Subcommands.Add(BenchSoakCommand.Create());
        command.Subcommands.Add(BenchAllCommand.Create());
        return command;
    }
}
