namespace Crate.Training.Adaptation;

/// <summary>The names of the <see cref="AdaptationMethod"/>s on the command line and in logs.</summary>
public static class AdaptationMethodNames
{
    /// <summary>Every method's name, in the enum's order.</summary>
    public static IReadOnlyList<string> All { get; } = Enum.GetValues<AdaptationMethod>().Select(CommandName).ToArray();

    /// <summary><c>linear-probe</c>, <c>prompt-tuning</c> or <c>fine-tune</c>.</summary>
    public static string CommandName(this AdaptationMethod method) => method switch
    {
        AdaptationMethod.LinearProbe => "linear-probe",
        AdaptationMethod.PromptTuning => "prompt-tuning",
        AdaptationMethod.FineTune => "fine-tune",
        _ => throw new ArgumentOutOfRangeException(nameof(method)),
    };

    /// <summary>The method called <paramref name="name"/> (as <see cref="CommandName"/> writes it).</summary>
    /// <exception cref="ArgumentException">No method has that name; the message lists the names.</exception>
    public static AdaptationMethod Parse(string name)
    {
        foreach (var method in Enum.GetValues<AdaptationMethod>())
            if (method.CommandName() == name) return method;
        throw new ArgumentException($"Unknown adaptation method '{name}'; expected {string.Join(", ", All)}.");
    }
}
