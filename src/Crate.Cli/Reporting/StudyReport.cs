using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Crate.Core.IO;
using Crate.Core.Segmentation;
using Crate.Training.Adaptation;
using Crate.Training.Study;
using ScottPlot;

namespace Crate.Cli.Reporting;

/// <summary>Writes a study's tables (one per half) as Markdown, HTML (with the chart embedded), PNG and JSON.</summary>
internal static class StudyReport
{
    /// <summary>What the halves ran on, for the headings.</summary>
    /// <param name="Classification">The classification data's name, or null when that half did not run.</param>
    /// <param name="Scenes">The test scenes' name, or null when the segmentation half did not run.</param>
    /// <param name="AllBackground">The segmentation test set's all-background baseline, the floor a segmenter must beat.</param>
    public sealed record DataDescription(string? Classification, string? Scenes, SegmentationMetrics? AllBackground);

    /// <summary>One half's table: headings and rows of formatted cells.</summary>
    private sealed record Table(string Title, IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows);

    public static void Write(string directory, IReadOnlyList<StudyCell> cells, StudyOptions options, string command, DataDescription data)
    {
        Directory.CreateDirectory(directory);
        var halves = cells.Select(c => c.Task).Distinct().ToList();
        var tables = halves.Select(task => BuildTable(task, cells.Where(c => c.Task == task).ToList(), data)).ToList();

        var md = new StringBuilder();
        md.AppendLine("# Pretext x adaptation study").AppendLine();
        md.AppendLine($"Command: `{command}`  ").AppendLine($"Date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; machine: {Environment.ProcessorCount} cores  ");
        foreach (var line in Settings(options, halves)) md.AppendLine(line + "  ");
        foreach (var table in tables)
        {
            md.AppendLine().AppendLine($"## {table.Title}").AppendLine();
            md.AppendLine("| " + string.Join(" | ", table.Header) + " |");
            md.AppendLine("|---|" + string.Concat(table.Header.Skip(1).Select(_ => "---:|")));
            foreach (var row in table.Rows) md.AppendLine("| " + string.Join(" | ", row) + " |");
        }
        if (data.AllBackground is { } floor)
            md.AppendLine().AppendLine(FormattableString.Invariant($"Segmentation floor: predicting background everywhere scores mIoU {floor.MeanIoU:F3}, foreground IoU {floor.ForegroundIoU:F3} on the same test scenes."));
        AtomicFile.WriteAllText(Path.Combine(directory, "study.md"), md.ToString());

        var png = Chart(cells, halves);
        AtomicFile.WriteAllBytes(Path.Combine(directory, "study.png"), png);

        var html = new StringBuilder("<!doctype html><html><head><meta charset=\"utf-8\"><title>Crate study</title>");
        html.Append("<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child{text-align:left}</style></head><body>");
        html.Append("<h1>Pretext task x adaptation</h1>");
        html.Append($"<p><code>{WebUtility.HtmlEncode(command)}</code></p>");
        html.Append("<p>" + string.Join("<br>", Settings(options, halves).Select(WebUtility.HtmlEncode)) + "</p>");
        foreach (var table in tables)
        {
            html.Append($"<h2>{WebUtility.HtmlEncode(table.Title)}</h2><table><tr>{string.Concat(table.Header.Select(h => $"<th>{WebUtility.HtmlEncode(h)}</th>"))}</tr>");
            foreach (var row in table.Rows) html.Append($"<tr>{string.Concat(row.Select(v => $"<td>{WebUtility.HtmlEncode(v)}</td>"))}</tr>");
            html.Append("</table>");
        }
        html.Append($"<p><img alt=\"study chart\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\"></p></body></html>");
        AtomicFile.WriteAllText(Path.Combine(directory, "study.html"), html.ToString());

        AtomicFile.WriteAllText(Path.Combine(directory, "study.json"), JsonSerializer.Serialize(new
        {
            command,
            data = new { classification = data.Classification, segmentation = data.Scenes },
            options = new { backbone = options.Backbone.ToJson(), tasks = halves.Select(t => t.ToString()), options.Pretraining, options.Adaptation, options.PromptTokens, options.SegmentationPatchSize, options.Seed },
            segmentation_all_background = data.AllBackground is { } b ? new { miou = b.MeanIoU, foreground_iou = b.ForegroundIoU } : null,
            cells = cells.Select(c => new
            {
                task = c.Task.ToString(), pretext = c.Pretext.ToString(), adaptation = c.Adaptation.ToString(),
                test_top1 = c.TestTop1, test_miou = c.TestMeanIoU, test_foreground_iou = c.TestForegroundIoU,
                trainable_parameters = c.TrainableParameters, trunk_unchanged = c.TrunkUnchanged, pretext_loss = c.PretextLoss, adaptation_loss = c.AdaptationLoss, seconds = c.Seconds, seed = c.Seed,
            }),
        }, new JsonSerializerOptions { WriteIndented = true }));
    }

    private static IEnumerable<string> Settings(StudyOptions options, IReadOnlyList<StudyTask> halves)
    {
        yield return $"Backbone: {options.Backbone}";
        if (halves.Contains(StudyTask.Segmentation))
            yield return $"Segmentation backbone: the same trunk on the scenes' size with patch {options.SegmentationPatchSize}, pretrained on the training scenes' images "
                + "(supervised: their image-level label, the largest object's class)";
        yield return FormattableString.Invariant($"Pretraining: {options.Pretraining.Steps} steps x {options.Pretraining.BatchSize} images, lr {options.Pretraining.LearningRate}; ")
            + FormattableString.Invariant($"adaptation: {options.Adaptation.Steps} steps x {options.Adaptation.BatchSize}, lr {options.Adaptation.LearningRate}; prompt tokens {options.PromptTokens}");
        yield return $"Seed {options.Seed} for every cell (initialisation, data order, pretext randomness{(halves.Contains(StudyTask.Segmentation) ? ", generated scenes" : "")}); "
            + "Untrained is the control: the initialisation every pretext task starts from, adapted the same way";
    }

    private static Table BuildTable(StudyTask task, IReadOnlyList<StudyCell> cells, DataDescription data)
    {
        var methods = cells.Select(c => c.Adaptation).Distinct().ToList();
        var pretexts = cells.Select(c => c.Pretext).Distinct().ToList();
        bool classification = task == StudyTask.Classification;
        string Figure(StudyCell c) => classification
            ? FormattableString.Invariant($"{c.TestTop1 * 100:F1}%")
            : FormattableString.Invariant($"{c.TestMeanIoU:F3} / {c.TestForegroundIoU:F3}");
        string Cell(PretextTask p, AdaptationMethod m) => cells.FirstOrDefault(c => c.Pretext == p && c.Adaptation == m) is { } c ? Figure(c) : "-";
        string Loss(PretextTask p) => cells.First(c => c.Pretext == p).PretextLoss is double loss ? loss.ToString("F4", CultureInfo.InvariantCulture) : "-";
        string Name(PretextTask p) => p == PretextTask.Untrained ? "Untrained (control)" : p.ToString();
        var rows = pretexts.Select(p => (IReadOnlyList<string>)[Name(p), .. methods.Select(m => Cell(p, m)), Loss(p)]).ToList();
        rows.Add(["trainable parameters", .. methods.Select(m => cells.First(c => c.Adaptation == m).TrainableParameters.ToString("N0", CultureInfo.InvariantCulture)), ""]);
        rows.Add(["pretrained trunk bit-identical after", .. methods.Select(m => cells.Where(c => c.Adaptation == m).Select(c => c.TrunkUnchanged).Distinct().ToList() switch
        {
            [true] => "yes (checked)",
            [false] => "no",
            _ => "in some rows",
        }), ""]);
        var title = classification
            ? $"Classification ({data.Classification}, test top-1)"
            : $"Segmentation ({data.Scenes}; test mIoU / foreground IoU)";
        return new Table(title, ["pretext", .. methods.Select(m => m.ToString()), "pretext loss"], rows);
    }

    /// <summary>One bar chart of both halves: top-1 (%) for classification, mIoU (%) for segmentation, a bar per method.</summary>
    private static byte[] Chart(IReadOnlyList<StudyCell> cells, IReadOnlyList<StudyTask> halves)
    {
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var methods = cells.Select(c => c.Adaptation).Distinct().ToList();
        var bars = new List<Bar>();
        var ticks = new List<(double Position, string Label)>();
        double position = 0;
        foreach (var task in halves)
        {
            double start = position;
            foreach (var pretext in cells.Where(c => c.Task == task).Select(c => c.Pretext).Distinct())
            {
                for (int j = 0; j < methods.Count; j++)
                    if (cells.FirstOrDefault(c => c.Task == task && c.Pretext == pretext && c.Adaptation == methods[j]) is { } c)
                        bars.Add(new Bar { Position = position + j, Value = c.Score * 100, FillColor = palette.GetColor(j) });
                ticks.Add((position + (methods.Count - 1) / 2.0, pretext.ToString()));
                position += methods.Count + 1;
            }
            var label = plot.Add.Text(task == StudyTask.Classification ? "classification: top-1" : "segmentation: mIoU", (start + position - 2) / 2, 104);
            label.LabelAlignment = Alignment.LowerCenter;
            position += 2;   // a gap between the halves
        }
        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(ticks.Select(t => t.Position).ToArray(), ticks.Select(t => t.Label).ToArray());
        for (int j = 0; j < methods.Count; j++) plot.Legend.ManualItems.Add(new LegendItem { LabelText = methods[j].ToString(), FillColor = palette.GetColor(j) });
        plot.Axes.Left.Label.Text = "test top-1 / mIoU (%)";
        plot.Legend.Alignment = Alignment.UpperLeft;
        plot.Axes.SetLimitsY(0, 125);
        plot.Title("Pretext task x adaptation");
        return plot.GetImageBytes(Math.Max(900, 60 * bars.Count / Math.Max(1, halves.Count)), 500, ImageFormat.Png);
    }
}
