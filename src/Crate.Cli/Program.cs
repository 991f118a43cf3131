using System.CommandLine;
using System.CommandLine.Parsing;
using Crate.Cli.Commands;
using Crate.Training;

// Before libtorch loads: OpenMP waiting chosen by how busy the cores are, glibc keeping freed memory (see ProcessTuning for measurements).
ProcessTuning.Apply();
var root = new RootCommand("crate: train, inspect, export and serve CRATE white-box transformers.")
{
    InfoCommand.Create(),
    TrainCommand.Create(),
    EvaluateCommand.Create(),
    PredictCommand.Create(),
    BenchCommand.Create(),
    StudyCommand.Create(),
    ExportCommand.Create(),
    AnalyzeCommand.Create(),
    SegmentCommand.Create(),
};
var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    // One line a user can act on, instead of System.CommandLine's error list followed by the whole help text.
    var path = new List<string>();
    for (var r = parse.CommandResult; r.Parent is CommandResult parent; r = parent) path.Insert(0, r.Command.Name);
    var messages = parse.Errors.Select(e => string.Join(' ', e.Message.Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries)));
    Console.Error.WriteLine($"error: {string.Join("; ", messages)} (see '{string.Join(' ', ["crate", .. path, "--help"])}')");
    return CliErrors.UserError;
}
try
{
    return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (CliErrors.IsUserError(e))
{
    // Bad input is the user's to fix: one clear line, no stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return CliErrors.UserError;
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("error: interrupted.");
    return CliErrors.Interrupted;
}
