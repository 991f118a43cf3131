using System.Globalization;
using System.Net;
using System.Text;
using Crate.Core.Data;
using Crate.Training.Analysis;
using Crate.Training.Segmentation;

namespace Crate.Reports;

/// <summary>Builds the single-file HTML report: every PNG inlined as base64, so the file can be mailed or archived alone.</summary>
internal static class ReportHtml
{
    public static string Build(WhiteBoxReportData report, ImageDataset data, string imageDir)
    {
        var html = new StringBuilder();
        html.Append("""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>White-box report</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
            table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
            th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
            th { background: #f3f3f3; } td.l, th.l { text-align: left; }
            code { background: #f3f3f3; padding: 2px 4px; word-break: break-all; }
            img { max-width: 100%; margin: 0.5em 0; display: block; }
            dt { font-weight: bold; margin-top: 0.5em; }
            </style></head><body>
            <h1>White-box report</h1>

            """);
        var m = report.Machine;
        html.Append("<table>");
        Row(html, "command", $"<code>{E(report.Command)}</code>");
        Row(html, "created", E(report.Created.ToString("u", CultureInfo.InvariantCulture)));
        Row(html, "machine", E($"{m.Name}: {m.Cpu}, {m.Cores} cores, {m.Os}, {m.Runtime}, TorchSharp {m.TorchSharp}"));
        Row(html, "data", E($"{report.Data}: {report.Images} images"));
        html.Append("</table>\n");

        html.Append("<h2>Checkpoints</h2>\n<table><tr><th class=l>label</th><th class=l>source</th><th class=l>network</th><th class=l>shape</th><th>parameters</th><th>accuracy on these images</th></tr>\n");
        foreach (var c in report.Checkpoints)
        {
            var accuracy = c.Measurements.Accuracy is { } a ? F(100 * a, "F2") + "%" : "n/a";
            html.Append($"<tr><td class=l>{E(c.Label)}</td><td class=l>{E(c.Source)}</td><td class=l>{E(c.Architecture)}</td><td class=l>{E(c.Config.ToString())}</td>" +
                        $"<td>{c.Parameters:N0}</td><td>{accuracy}</td></tr>\n");
        }
        html.Append("</table>\n");

        html.Append("<h2>Per layer</h2>\n<p>mean ± standard deviation over images; the attention change is the mean R<sup>c</sup> after the attention " +
                    "(MSSA) step minus before it. Zeros and near zeros are fractions of the layer's output entries (CRATE: its ISTA codes).</p>\n");
        html.Append("<table><tr><th class=l>checkpoint</th><th>layer</th><th>R<sup>c</sup> of input</th><th>R<sup>c</sup> after attention</th><th>attention change</th>" +
                    "<th>exact zeros</th><th>near zero</th><th>atoms |cos| max / mean</th><th>subspaces max / mean</th></tr>\n");
        foreach (var c in report.Checkpoints)
            foreach (var l in c.Measurements.Layers)
            {
                html.Append($"<tr><td class=l>{E(c.Label)}</td><td>{l.Layer}</td><td>{S(l.CodingRate, "F2")}</td><td>{S(l.CodingRateAfterMssa, "F2")}</td>" +
                            $"<td>{F(l.CodingRateAfterMssa.Mean - l.CodingRate.Mean, "+0.00;-0.00")}</td><td>{S(l.Sparsity, "F4")}</td><td>{S(l.NearZero, "F4")}</td>" +
                            $"<td>{F(l.Dictionary.MaxAbsCosine, "F3")} / {F(l.Dictionary.MeanAbsCosine, "F3")}</td>" +
                            $"<td>{F(l.Subspaces.MaxOffDiagonal, "F3")} / {F(l.Subspaces.MeanOffDiagonal, "F3")}</td></tr>\n");
            }
        html.Append("</table>\n<h2>Definitions</h2>\n<dl>\n");
        foreach (var (key, text) in report.Definitions) html.Append($"<dt>{E(key)}</dt><dd>{E(text)}</dd>\n");
        html.Append("</dl>\n<h2>Curves over depth</h2>\n");
        foreach (var plot in report.Plots) Image(html, imageDir, plot);

        foreach (var c in report.Checkpoints)
        {
            html.Append($"<h2>{E(c.Label)}</h2>\n<h3>Class-token attention</h3>\n" +
                        "<p>Rows are layers, columns heads; each map is the class token's attention to the patches, colour-stretched per map.</p>\n");
            foreach (var file in c.Files.Attention) Image(html, imageDir, file);
            html.Append(c.Architecture == Architectures.Vit
                ? "<h3>MLP output atoms (columns of W<sub>2</sub>) and value subspaces</h3>\n"
                : "<h3>Dictionary and subspaces</h3>\n");
            Image(html, imageDir, c.Files.Atoms);
            Image(html, imageDir, c.Files.Subspaces);
        }
        html.Append($"<p>Attention images: {E(string.Join(", ", report.AttentionImages.Select(i => $"#{i} {data.ClassNames[data.Label(i)]}")))}. " +
                    $"All numbers are in <code>{WhiteBoxReport.JsonFile}</code>.</p>\n</body></html>\n");
        return html.ToString();
    }

    private static void Row(StringBuilder html, string key, string valueHtml) =>
        html.Append($"<tr><th class=l>{E(key)}</th><td class=l>{valueHtml}</td></tr>");

    private static void Image(StringBuilder html, string dir, string file) =>
        html.Append($"<img alt=\"{E(file)}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(Path.Combine(dir, file)))}\">\n");

    private static string E(string text) => WebUtility.HtmlEncode(text);
    private static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
    private static string S(Statistic s, string format) => $"{F(s.Mean, format)} ± {F(s.Std, format)}";
}
