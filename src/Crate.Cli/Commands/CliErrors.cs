using Crate.Core.Data;
using Crate.Core.Weights;

namespace Crate.Cli.Commands;

/// <summary>Which exceptions are problems with the user's input (reported as one line) rather than bugs.</summary>
internal static class CliErrors
{
    public static bool IsUserError(Exception e) =>
        e is ArgumentException or DataException or SafetensorsException or FileNotFoundException or DirectoryNotFoundException or FormatException
        || e.GetType().Name == "CrateOnnxException";
}
