using System.CommandLine;
using System.Globalization;
using System.Numerics;

namespace Crate.Cli.Commands;

/// <summary>Optional numeric options whose parse errors read "'--epochs' expects an integer, got 'abc'" rather than naming a CLR type.</summary>
internal static class NumberOption
{
    public static Option<int?> Integer(string name, string description) => Create<int>(name, description, "an integer");

    public static Option<double?> Real(string name, string description) => Create<double>(name, description, "a number");

    /// <summary>A range written <c>MIN-MAX</c>, or one number for both ends; "'--objects' expects a number or MIN-MAX, got 'x'" otherwise.</summary>
    public static Option<(double Min, double Max)?> Range(string name, string description) => new(name)
    {
        Description = description,
        CustomParser = result =>
        {
            var text = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
            var ends = text.Split('-').Select(e => double.TryParse(e, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : (double?)null).ToArray();
            if (ends is [double one]) return (one, one);
            if (ends is [double min, double max]) return (min, max);
            result.AddError($"'{name}' expects a number or MIN-MAX, got '{text}'.");
            return null;
        },
    };

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
