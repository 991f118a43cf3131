using Crate.Core.IO;
using Crate.Training;
using ScottPlot;

namespace Crate.Cli.Reporting;

/// <summary>The training-curve PNG of a run: losses on the left axis, accuracies (%) on the right, per epoch.</summary>
internal static class TrainingCurve
{
    public const string FileName = "training-curve.png";

    public static void Save(string path, IReadOnlyList<EpochMetrics> history, string title)
    {
        var plot = new Plot();
        double[] epochs = history.Select(h => (double)h.Epoch).ToArray();
        void Line(IEnumerable<double?> values, string label, bool accuracy)
        {
            var points = values.Select((v, i) => (X: epochs[i], Y: v)).Where(p => p.Y.HasValue).ToArray();
            if (points.Length == 0) return;
            var line = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => accuracy ? p.Y!.Value * 100 : p.Y!.Value).ToArray());
            line.LegendText = label;
            if (accuracy) line.Axes.YAxis = plot.Axes.Right;
        }
        Line(history.Select(h => (double?)h.TrainLoss), "train loss", accuracy: false);
        Line(history.Select(h => h.ValidationLoss), "validation loss", accuracy: false);
        Line(history.Select(h => (double?)h.TrainTop1), "train top-1 (%)", accuracy: true);
        Line(history.Select(h => h.ValidationTop1), "validation top-1 (%)", accuracy: true);
        plot.Axes.Bottom.Label.Text = "epoch";
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.Axes.Left.Label.Text = "loss";
        plot.Axes.Right.Label.Text = "accuracy (%)";
        plot.Title(title);
        plot.ShowLegend(Alignment.MiddleRight);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(900, 500, ImageFormat.Png));
    }
}
