using System.CommandLine;
using System.Globalization;
using System.Numerics;

namespace Crate.Cli.Commands;

/// <summary>Optional numeric options whose parse errors read "'--epochs' expects an integer, got 'abc'" rather than naming a CLR type.</summary>
internal static class NumberOption
{
    public static Option<int?> Integer(string name, string description) => Create<int>(name, description, "an integer");

    public static Option<double?> Real(string name, string description) => Create<double>(name, description, "a number");

    private static Option<T?> Create<T>(string name, string description, string kind) where T : struct, INumber<T> => new(name)
    {
        Description = description,
        CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            if (T.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)) return value;
            result.AddError($"'{name}' expects {kind}, got '{text}'.");
            return null;
        },
    };
}
