using Crate.Core.Data;
using Crate.Core.IO;
using Crate.Core.Weights;
using Crate.Training;

namespace Crate.Cli.Commands;

/// <summary>Which exceptions are problems with the user's input (reported as one line) rather than bugs, and the exit codes.</summary>
internal static class CliErrors
{
    /// <summary>Exit code for problems the user must fix (bad arguments, bad data, unreadable files, a full disk).</summary>
    public const int UserError = 2;
    /// <summary>Exit code after Ctrl+C (128 + SIGINT).</summary>
    public const int Interrupted = 130;

    public static bool IsUserError(Exception e) =>
        e is ArgumentException or DataException or SafetensorsException or TrainingException or FileNotFoundException or DirectoryNotFoundException
            or FormatException or UnauthorizedAccessException or DiskFullException
        || e.GetType().Name == "CrateOnnxException";
}
