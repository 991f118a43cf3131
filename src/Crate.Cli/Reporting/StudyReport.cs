using System.Globalization;
using System.Text;
using System.Text.Json;
using Crate.Core.IO;
using Crate.Training.Adaptation;
using Crate.Training.Study;
using ScottPlot;

namespace Crate.Cli.Reporting;

/// <summary>Writes a study's table as Markdown, HTML (with the chart embedded), PNG and JSON.</summary>
internal static class StudyReport
{
    public static void Write(string directory, IReadOnlyList<StudyCell> cells, StudyOptions options, string command, string dataName)
    {
        Directory.CreateDirectory(directory);
        var methods = cells.Select(c => c.Adaptation).Distinct().ToList();
        var pretexts = cells.Select(c => c.Pretext).Distinct().ToList();
        string Cell(PretextTask p, AdaptationMethod m) =>
            cells.FirstOrDefault(c => c.Pretext == p && c.Adaptation == m) is { } c ? $"{c.TestTop1 * 100:F1}%" : "-";
        string Params(AdaptationMethod m) => cells.First(c => c.Adaptation == m).TrainableParameters.ToString("N0", CultureInfo.InvariantCulture);

        var md = new StringBuilder();
        md.AppendLine($"# Pretext x adaptation study ({dataName} classification, test top-1)").AppendLine();
        md.AppendLine($"Command: `{command}`  ").AppendLine($"Date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; machine: {Environment.ProcessorCount} cores  ");
        md.AppendLine($"Backbone: {options.Backbone}  ");
        md.AppendLine($"Pretraining: {options.Pretraining.Steps} steps x {options.Pretraining.BatchSize} images, lr {options.Pretraining.LearningRate}; adaptation: {options.Adaptation.Steps} steps x {options.Adaptation.BatchSize}, lr {options.Adaptation.LearningRate}; seed {options.Seed}").AppendLine();
        md.AppendLine("| pretext | " + string.Join(" | ", methods) + " | pretext loss |");
        md.AppendLine("|---|" + string.Concat(methods.Select(_ => "---:|")) + "---:|");
        foreach (var p in pretexts)
            md.AppendLine($"| {p} | " + string.Join(" | ", methods.Select(m => Cell(p, m))) + $" | {cells.First(c => c.Pretext == p).PretextLoss:F4} |");
        md.AppendLine("| trainable parameters | " + string.Join(" | ", methods.Select(Params)) + " | |");
        AtomicFile.WriteAllText(Path.Combine(directory, "study.md"), md.ToString());

        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var bars = new List<Bar>();
        for (int i = 0; i < pretexts.Count; i++)
        for (int j = 0; j < methods.Count; j++)
        {
            var c = cells.First(x => x.Pretext == pretexts[i] && x.Adaptation == methods[j]);
            bars.Add(new Bar { Position = i * (methods.Count + 1) + j, Value = c.TestTop1 * 100, FillColor = palette.GetColor(j) });
        }
        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks(pretexts.Select((_, i) => i * (methods.Count + 1) + (methods.Count - 1) / 2.0).ToArray(), pretexts.Select(p => p.ToString()).ToArray());
        for (int j = 0; j < methods.Count; j++) plot.Legend.ManualItems.Add(new LegendItem { LabelText = methods[j].ToString(), FillColor = palette.GetColor(j) });
        plot.Axes.Left.Label.Text = "test top-1 (%)";
        plot.Axes.SetLimitsY(0, 100);
        plot.Title($"Pretext task x adaptation ({dataName})");
        var png = plot.GetImageBytes(900, 500, ImageFormat.Png);
        AtomicFile.WriteAllBytes(Path.Combine(directory, "study.png"), png);

        var html = new StringBuilder("<!doctype html><html><head><meta charset=\"utf-8\"><title>Crate study</title>");
        html.Append("<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child{text-align:left}</style></head><body>");
        html.Append("<h1>Pretext task x adaptation</h1>");
        html.Append($"<p><code>{System.Net.WebUtility.HtmlEncode(command)}</code></p><table><tr><th>pretext</th>");
        foreach (var m in methods) html.Append($"<th>{m}</th>");
        html.Append("</tr>");
        foreach (var p in pretexts) html.Append($"<tr><td>{p}</td>{string.Concat(methods.Select(m => $"<td>{Cell(p, m)}</td>"))}</tr>");
        html.Append($"<tr><td>trainable parameters</td>{string.Concat(methods.Select(m => $"<td>{Params(m)}</td>"))}</tr></table>");
        html.Append($"<p><img alt=\"study chart\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\"></p></body></html>");
        AtomicFile.WriteAllText(Path.Combine(directory, "study.html"), html.ToString());

        AtomicFile.WriteAllText(Path.Combine(directory, "study.json"), JsonSerializer.Serialize(new { command, data = dataName, options = new { backbone = options.Backbone.ToJson(), options.Pretraining, options.Adaptation, options.Seed }, cells = cells.Select(c => new { pretext = c.Pretext.ToString(), adaptation = c.Adaptation.ToString(), test_top1 = c.TestTop1, trainable_parameters = c.TrainableParameters, pretext_loss = c.PretextLoss, adaptation_loss = c.AdaptationLoss, seconds = c.Seconds }) }, new JsonSerializerOptions { WriteIndented = true }));
    }
}
