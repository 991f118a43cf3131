using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Crate.Core.Data;
using Crate.Core.IO;
using Crate.Core.Model;
using Crate.Reports.Rendering;
using Crate.Training.Analysis;
using Crate.Training.Model;
using Crate.Training.Segmentation;

namespace Crate.Reports;

/// <summary>A model to analyse, CRATE or the ViT baseline: a label for plots, where it came from, and how to build it (called once, then disposed).</summary>
public sealed record ReportCheckpoint(string Label, string Source, Func<IVisionTransformer> Load);

/// <summary>Options of <see cref="WhiteBoxReport.Write"/>.</summary>
public sealed record WhiteBoxReportOptions
{
    /// <summary>Images per forward pass while measuring. Default 100.</summary>
    public int BatchSize { get; init; } = 100;
    /// <summary>How many images get attention maps (one per class first, in data order; 0 for none). Default 4.</summary>
    public int AttentionImages { get; init; } = 4;
    /// <summary>Dictionary atoms drawn per layer (largest norm first). Default 16.</summary>
    public int AtomsShown { get; init; } = 16;
    /// <summary>eps^2 of the coding rate. Default 0.01.</summary>
    public double EpsSquared { get; init; } = CodingRate.DefaultEpsSquared;
    /// <summary>Relative threshold of the near-zero fraction (<see cref="Sparsity.NearZeroFraction"/>). Default 0.05.</summary>
    public double NearZeroTolerance { get; init; } = Sparsity.DefaultNearZeroTolerance;
    /// <summary>The command that made the report, recorded in it verbatim.</summary>
    public string Command { get; init; } = "";
}

/// <summary>Where a report is: the stage (the same text for all reports within one stage) and the overall fraction done, 0 to 1.</summary>
public sealed record ReportProgress(string Stage, double Fraction);

/// <summary>The machine a report was made on.</summary>
public sealed record MachineInfo(string Name, string Os, string Cpu, int Cores, string Runtime, string TorchSharp)
{
    /// <summary>Describes the current machine.</summary>
    public static MachineInfo Current()
    {
        string cpu = "unknown";
        if (File.Exists("/proc/cpuinfo"))
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu;
        return new MachineInfo(Environment.MachineName, RuntimeInformation.OSDescription, cpu, Environment.ProcessorCount,
            RuntimeInformation.FrameworkDescription, typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "unknown");
    }
}

/// <summary>The images written for one checkpoint (file names relative to the report folder).</summary>
public sealed record CheckpointFiles(string[] Attention, string Atoms, string Subspaces);

/// <summary>One analysed checkpoint in a report.</summary>
/// <param name="Label">Its label in plots and tables.</param>
/// <param name="Source">Where it came from.</param>
/// <param name="Architecture"><see cref="Architectures.Crate"/> or <see cref="Architectures.Vit"/>.</param>
/// <param name="Config">Its shape.</param>
/// <param name="Parameters">Trainable parameters.</param>
/// <param name="Measurements">Every number measured.</param>
/// <param name="Files">Its images.</param>
public sealed record CheckpointReport(string Label, string Source, string Architecture, CrateConfig Config, long Parameters, ModelMeasurements Measurements, CheckpointFiles Files);

/// <summary>Everything a report holds; <c>analysis.json</c> is this record.</summary>
/// <param name="Command">The command that made it.</param>
/// <param name="Created">When (UTC).</param>
/// <param name="Machine">Where.</param>
/// <param name="Data">The data set's name.</param>
/// <param name="Images">Images measured per checkpoint.</param>
/// <param name="Definitions">What each number means, in words.</param>
/// <param name="AttentionImages">Indices (in the data set) of the images with attention maps.</param>
/// <param name="Plots">File names of the curves over depth.</param>
/// <param name="Checkpoints">Per checkpoint, in the order given.</param>
public sealed record WhiteBoxReportData(
    string Command, DateTimeOffset Created, MachineInfo Machine, string Data, int Images,
    IReadOnlyDictionary<string, string> Definitions, int[] AttentionImages, string[] Plots, IReadOnlyList<CheckpointReport> Checkpoints);

/// <summary>
/// Writes a white-box report: PNG curves over depth (coding rate, sparsity, coherences) for every checkpoint (CRATE and ViT baseline alike),
/// attention-map, dictionary and subspace grids per checkpoint, one self-contained <c>report.html</c>, and
/// <c>analysis.json</c> with every number.
/// </summary>
public static class WhiteBoxReport
{
    /// <summary>File name of the JSON with all numbers.</summary>
    public const string JsonFile = "analysis.json";
    /// <summary>File name of the HTML report.</summary>
    public const string HtmlFile = "report.html";

    /// <summary>What each reported number means.</summary>
    public static IReadOnlyDictionary<string, string> Definitions { get; } = new Dictionary<string, string>
    {
        ["coding_rate"] = "R^c of layer l's input z_l: Z = LN1(z_l), Z_k = U_k Z per head with each token scaled to unit length, " +
                          "R_k = 1/2 logdet(I + p/(N eps^2) Z_k^T Z_k), p = dim_head, N = tokens incl. class token; R^c = sum_k R_k, per image. Lower = more compressed. " +
                          "U_k: CRATE's MSSA projection (query = key = value); for the ViT baseline the rows of head k's value projection W_v.",
        ["coding_rate_after_mssa"] = "The same R^c (LN1, then this layer's U) of h = z_l + MSSA(LN1(z_l)), the MSSA step's output (ViT: h = z_l + Attn(LN1(z_l))).",
        ["sparsity"] = "Fraction of exactly-zero entries of layer l's output, per image: CRATE's ISTA codes (the papers plot 1 minus this); " +
                       "the ViT's z' = h + MLP(LN2(h)), which has no ReLU at its output and is essentially never exactly zero.",
        ["near_zero"] = "Fraction of entries x of layer l's output with |x| <= tolerance x the root mean square of that image's output entries " +
                        "(tolerance in near_zero_tolerance), per image; the same scale-free threshold for both networks. Exact zeros count.",
        ["statistics"] = "mean and sample standard deviation (n - 1) over images; min and max.",
        ["dictionary"] = "Atoms are the columns of CRATE's ISTA dictionary D (dim of them), or of the ViT MLP's output weight W_2 (mlp_ratio x dim), " +
                         "which the MLP adds to a token weighted by its hidden activations; max and mean |cos| over pairs of different atoms.",
        ["subspaces"] = "Head subspaces span the rows of U_k; coherence(i, j) = ||Q_i^T Q_j||_F / sqrt(p) with Q_k an orthonormal basis " +
                        "(RMS cosine of the principal angles; 0 orthogonal, 1 identical); max_principal_cosine = largest singular value of Q_i^T Q_j over i != j.",
    };

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>
    /// Analyses every checkpoint over all of <paramref name="data"/> and writes the report into <paramref name="outDir"/>
    /// (created if needed). Returns what <c>analysis.json</c> holds.
    /// </summary>
    /// <exception cref="DataException">The data's images do not fit a checkpoint's input, or there are none.</exception>
    public static WhiteBoxReportData Write(string outDir, IReadOnlyList<ReportCheckpoint> checkpoints, ImageDataset data,
        WhiteBoxReportOptions? options = null, IProgress<ReportProgress>? progress = null)
    {
        options ??= new WhiteBoxReportOptions();
        if (checkpoints.Count == 0) throw new ArgumentException("A report needs at least one checkpoint.", nameof(checkpoints));
        if (data.Count == 0) throw new DataException($"Data '{data.Name}' holds no images to analyse.");
        Directory.CreateDirectory(outDir);
        var attentionImages = PickImages(data, options.AttentionImages);
        var slugs = Slugs(checkpoints.Select(c => c.Label).ToArray());
        var reports = new List<CheckpointReport>();
        for (int c = 0; c < checkpoints.Count; c++)
        {
            var checkpoint = checkpoints[c];
            double share = 0.95 / checkpoints.Count, start = c * share;
            progress?.Report(new ReportProgress($"{checkpoint.Label}: loading", start));
            var model = checkpoint.Load();
            using var module = model.Module;
            var measured = WhiteBox.Measure(model, data, options.BatchSize, options.EpsSquared,
                new Progress(done => progress?.Report(new ReportProgress($"{checkpoint.Label}: measuring {data.Count} images", start + 0.9 * share * done / data.Count))),
                options.NearZeroTolerance);
            progress?.Report(new ReportProgress($"{checkpoint.Label}: attention maps and dictionaries", start + 0.9 * share));
            var files = WriteCheckpointImages(outDir, slugs[c], checkpoint.Label, model, data, attentionImages, options.AtomsShown);
            reports.Add(new CheckpointReport(checkpoint.Label, checkpoint.Source, Architectures.NameOf(model), model.Config,
                module.parameters().Sum(p => p.numel()), measured, files));
        }

        progress?.Report(new ReportProgress("plots and report", 0.95));
        var plots = WriteCurves(outDir, reports);
        var report = new WhiteBoxReportData(options.Command, DateTimeOffset.UtcNow, MachineInfo.Current(), data.Name, data.Count,
            Definitions, attentionImages, plots, reports);
        AtomicFile.WriteAllText(Path.Combine(outDir, JsonFile), JsonSerializer.Serialize(report, Json));
        AtomicFile.WriteAllText(Path.Combine(outDir, HtmlFile), ReportHtml.Build(report, data, outDir));
        progress?.Report(new ReportProgress("done", 1));
        return report;
    }

    /// <summary>Reads an <c>analysis.json</c> written by <see cref="Write"/>.</summary>
    public static WhiteBoxReportData Read(string path) =>
        JsonSerializer.Deserialize<WhiteBoxReportData>(File.ReadAllText(path), Json) ?? throw new FormatException($"'{path}' holds no report.");

    /// <summary>The first image of each class in data order, then the first images not yet chosen, up to <paramref name="count"/>.</summary>
    internal static int[] PickImages(ImageDataset data, int count)
    {
        var chosen = new List<int>();
        var seen = new HashSet<int>();
        for (int i = 0; i < data.Count && chosen.Count < count; i++)
            if (seen.Add(data.Label(i))) chosen.Add(i);
        for (int i = 0; i < data.Count && chosen.Count < count; i++)
            if (!chosen.Contains(i)) chosen.Add(i);
        return chosen.ToArray();
    }

    /// <summary>File-name-safe, distinct names for the checkpoint labels.</summary>
    private static string[] Slugs(string[] labels)
    {
        var used = new HashSet<string>();
        var slugs = new string[labels.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            var slug = System.Text.RegularExpressions.Regex.Replace(labels[i].ToLowerInvariant(), "[^a-z0-9]+", "-").Trim('-');
            if (slug.Length == 0) slug = "checkpoint";
            slugs[i] = used.Add(slug) ? slug : $"{slug}-{i}";
            used.Add(slugs[i]);
        }
        return slugs;
    }

    private static CheckpointFiles WriteCheckpointImages(string outDir, string slug, string label, IVisionTransformer model, ImageDataset data, int[] images, int atomsShown)
    {
        var config = model.Config;
        var layerLabels = Enumerable.Range(0, config.Depth).Select(l => $"layer {l}").ToArray();

        var attention = images.Length > 0 ? WhiteBox.ClassTokenAttention(model, data, images) : null;
        var attentionFiles = new string[images.Length];
        for (int i = 0; i < images.Length; i++)
        {
            var tiles = new Tile?[config.Depth, config.Heads + 1];
            var pixels = new float[data.ImageSize];
            for (int k = 0; k < pixels.Length; k++) pixels[k] = data.Image(images[i])[k] / 255f;
            tiles[0, 0] = new Tile(pixels, data.Height, data.Width, TilePalette.Image);
            for (int l = 0; l < config.Depth; l++)
                for (int h = 0; h < config.Heads; h++)
                    tiles[l, h + 1] = new Tile(attention!.Maps[i][l][h], attention.GridHeight, attention.GridWidth, TilePalette.Stretched);
            attentionFiles[i] = $"{slug}-attention-{i}.png";
            var title = $"{label}: class-token attention, image {images[i]} ({data.ClassNames[data.Label(images[i])]})";
            var columns = new[] { "image" }.Concat(Enumerable.Range(0, config.Heads).Select(h => $"head {h}")).ToArray();
            WritePng(outDir, attentionFiles[i], TileGrid.Png(title, layerLabels, columns, tiles, 64));
        }

        var (atomHeight, atomWidth) = NearSquare(config.Dim);
        var operators = Enumerable.Range(0, config.Depth).Select(l => LayerOperators.Of(model, l)).ToArray();
        var atomTiles = new Tile?[config.Depth, Math.Min(atomsShown, (int)operators[0].Dictionary.shape[1])];
        for (int l = 0; l < config.Depth; l++)
        {
            var atoms = DictionaryAnalysis.Atoms(operators[l].Dictionary);
            var byNorm = Enumerable.Range(0, atoms.GetLength(0))
                .OrderByDescending(a => Enumerable.Range(0, config.Dim).Sum(d => (double)atoms[a, d] * atoms[a, d])).ToArray();
            for (int j = 0; j < atomTiles.GetLength(1); j++)
                atomTiles[l, j] = new Tile(Enumerable.Range(0, config.Dim).Select(d => atoms[byNorm[j], d]).ToArray(), atomHeight, atomWidth, TilePalette.Diverging);
        }
        var atomsFile = $"{slug}-atoms.png";
        var dictionary = model is VitModel ? "MLP output atoms (columns of W_2)" : "ISTA dictionary atoms";
        WritePng(outDir, atomsFile, TileGrid.Png($"{label}: {dictionary} (largest norm first, {atomHeight}x{atomWidth})", layerLabels,
            Enumerable.Range(1, atomTiles.GetLength(1)).Select(j => $"{j}").ToArray(), atomTiles, 48));

        var subspaceTiles = new Tile?[1, config.Depth];
        for (int l = 0; l < config.Depth; l++)
        {
            var matrix = DictionaryAnalysis.Subspaces(operators[l].Subspaces, config.Heads, config.DimHead).Matrix;
            subspaceTiles[0, l] = new Tile(matrix.SelectMany(r => r.Select(v => (float)v)).ToArray(), config.Heads, config.Heads, TilePalette.Unit);
        }
        var subspacesFile = $"{slug}-subspaces.png";
        WritePng(outDir, subspacesFile, TileGrid.Png($"{label}: head subspace coherence (0 to 1), per layer", ["heads"], layerLabels, subspaceTiles, 96));
        return new CheckpointFiles(attentionFiles, atomsFile, subspacesFile);
    }

    private static string[] WriteCurves(string outDir, IReadOnlyList<CheckpointReport> reports)
    {
        var rate = new List<Series>();
        var sparsity = new List<Series>();
        var dictionary = new List<Series>();
        var subspaces = new List<Series>();
        for (int c = 0; c < reports.Count; c++)
        {
            var (label, layers) = (reports[c].Label, reports[c].Measurements.Layers);
            var depth = layers.Select(m => (double)m.Layer).ToArray();
            // Input of layer l at x = l, after its MSSA step at x = l + 0.5: the zig-zag shows each step's effect.
            var zigzag = layers.SelectMany(m => new[] { (X: m.Layer, S: m.CodingRate), (X: m.Layer + 0.5, S: m.CodingRateAfterMssa) }).ToArray();
            rate.Add(new Series(label, zigzag.Select(p => p.X).ToArray(), zigzag.Select(p => p.S.Mean).ToArray(), zigzag.Select(p => p.S.Std).ToArray(), c));
            sparsity.Add(new Series($"{label}: exact zeros", depth, layers.Select(m => m.Sparsity.Mean).ToArray(), layers.Select(m => m.Sparsity.Std).ToArray(), c));
            sparsity.Add(new Series(FormattableString.Invariant($"{label}: |x| <= {reports[c].Measurements.NearZeroTolerance} rms"), depth, layers.Select(m => m.NearZero.Mean).ToArray(), layers.Select(m => m.NearZero.Std).ToArray(), c, Dashed: true));
            dictionary.Add(new Series($"{label}: max", depth, layers.Select(m => m.Dictionary.MaxAbsCosine).ToArray(), null, c));
            dictionary.Add(new Series($"{label}: mean", depth, layers.Select(m => m.Dictionary.MeanAbsCosine).ToArray(), null, c, Dashed: true));
            subspaces.Add(new Series($"{label}: max", depth, layers.Select(m => m.Subspaces.MaxOffDiagonal).ToArray(), null, c));
            subspaces.Add(new Series($"{label}: mean", depth, layers.Select(m => m.Subspaces.MeanOffDiagonal).ToArray(), null, c, Dashed: true));
        }
        string[] files = ["coding-rate.png", "sparsity.png", "dictionary-coherence.png", "subspace-coherence.png"];
        WritePng(outDir, files[0], Charts.Lines("Coding rate R^c (mean ± std over images)", "layer (x.5 = after the attention step)", "R^c (nats)", rate));
        WritePng(outDir, files[1], Charts.Lines("Sparsity of each layer's output (mean ± std over images)", "layer", "fraction of entries", sparsity));
        WritePng(outDir, files[2], Charts.Lines("Dictionary coherence (CRATE: ISTA D; ViT: MLP W_2)", "layer", "|cos| between atoms", dictionary));
        WritePng(outDir, files[3], Charts.Lines("Head subspace coherence", "layer", "||Q_i^T Q_j||_F / sqrt(p)", subspaces));
        return files;
    }

    /// <summary>Factors n as h x w with h the largest divisor not above sqrt(n), so atoms draw as near-square tiles.</summary>
    private static (int H, int W) NearSquare(int n)
    {
        int h = (int)Math.Sqrt(n);
        while (n % h != 0) h--;
        return (h, n / h);
    }

    private static void WritePng(string outDir, string name, byte[] png) => AtomicFile.WriteAllBytes(Path.Combine(outDir, name), png);

    /// <summary>A synchronous <see cref="IProgress{T}"/> (the BCL's posts to the thread pool, reordering reports).</summary>
    private sealed class Progress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
