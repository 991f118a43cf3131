using ScottPlot;

namespace Crate.Reports.Rendering;

/// <summary>One curve: points, optional error bars (±), a palette colour index and a line style.</summary>
internal sealed record Series(string Label, double[] Xs, double[] Ys, double[]? Errors, int Color, bool Dashed = false);

/// <summary>Line charts over depth, as PNG (ScottPlot).</summary>
internal static class Charts
{
    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    /// <summary>Draws <paramref name="series"/> against layer index, with a legend when there is more than one curve.</summary>
    public static byte[] Lines(string title, string xLabel, string yLabel, IReadOnlyList<Series> series, int width = 900, int height = 440)
    {
        var plot = new Plot();
        foreach (var s in series)
        {
            var color = Palette.GetColor(s.Color);
            var line = plot.Add.Scatter(s.Xs, s.Ys, color);
            line.LegendText = s.Label;
            line.LineWidth = 2;
            line.MarkerSize = 6;
            if (s.Dashed) line.LinePattern = LinePattern.Dashed;
            if (s.Errors is { } errors)
            {
                var bars = plot.Add.ErrorBar(s.Xs, s.Ys, errors);
                bars.Color = color;
            }
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(1);   // layers are integers
        if (series.Count > 1) plot.ShowLegend(Edge.Right);                                      // beside the plot, never over a curve
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }
}
