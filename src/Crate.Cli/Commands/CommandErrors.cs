using Crate.Core.Data;
using Crate.Core.Weights;
using Crate.Training;

namespace Crate.Cli.Commands;

/// <summary>Turns the errors a user can fix (bad data, bad arguments, unreadable files) into one line on stderr and an exit code.</summary>
internal static class CommandErrors
{
    /// <summary>Exit code for errors the user can fix.</summary>
    public const int UserError = 2;
    /// <summary>Exit code after Ctrl+C (128 + SIGINT).</summary>
    public const int Interrupted = 130;

    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is DataException or TrainingException or SafetensorsException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("error: interrupted.");
            return Interrupted;
        }
    }
}
