using System.CommandLine;

namespace Crate.Cli.Commands;

/// <summary><c>--precision bfloat16|float32</c> for the training commands: the precision of the trunk's matrix products.</summary>
internal static class PrecisionOption
{
    public static Option<string?> Create()
    {
        var option = new Option<string?>("--precision")
        {
            Description = "Matrix products in bfloat16 or float32 while training (default: bfloat16 where the CPU has bfloat16 dot products). Evaluation always runs in float32.",
        };
        option.AcceptOnlyFromAmong("bfloat16", "float32");
        return option;
    }

    /// <summary>True for bfloat16, false for float32, null when the option was not given.</summary>
    public static bool? BFloat16(ParseResult parse, Option<string?> option) => parse.GetValue(option) is { } p ? p == "bfloat16" : null;
}
