namespace Crate.Training.Analysis;

/// <summary>Mean and spread of one measurement over images.</summary>
/// <param name="Mean">Arithmetic mean.</param>
/// <param name="Std">Sample standard deviation (n - 1 in the denominator; 0 for a single value).</param>
/// <param name="Min">Smallest value.</param>
/// <param name="Max">Largest value.</param>
/// <param name="Count">Number of values.</param>
public sealed record Statistic(double Mean, double Std, double Min, double Max, int Count)
{
    /// <summary>Summarises <paramref name="values"/> (at least one).</summary>
    public static Statistic Of(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("A statistic needs at least one value.", nameof(values));
        double mean = values.Average();
        double ss = values.Sum(v => (v - mean) * (v - mean));
        double std = values.Count > 1 ? Math.Sqrt(ss / (values.Count - 1)) : 0;
        return new Statistic(mean, std, values.Min(), values.Max(), values.Count);
    }

    /// <summary>"mean ± std".</summary>
    public override string ToString() => FormattableString.Invariant($"{Mean:G5} ± {Std:G3}");
}
