using System.CommandLine;
using Crate.Cli.Commands;

var root = new RootCommand("crate: train, inspect, export and serve CRATE white-box transformers.")
{
    InfoCommand.Create(),
    BenchCommand.Create(),
    ExportCommand.Create(),
    SegmentCommand.Create(),
};
try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (CliErrors.IsUserError(e))
{
    // Bad input is the user's to fix: one clear line, no stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
