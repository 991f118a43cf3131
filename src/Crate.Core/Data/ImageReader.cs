using System.Globalization;
using System.Text;

namespace Crate.Core.Data;

/// <summary>How image files become an <see cref="ImageDataset"/>.</summary>
public sealed record ImageReadOptions
{
    /// <summary>Channels to produce (1 or 3). Default null: 1 when every image is gray (R = G = B), else 3.</summary>
    public int? Channels { get; init; }
    /// <summary>Target height. Default null: the first image's height.</summary>
    public int? Height { get; init; }
    /// <summary>Target width. Default null: the first image's width.</summary>
    public int? Width { get; init; }
    /// <summary>Resize images of another size (default true); when false they are invalid.</summary>
    public bool Resize { get; init; } = true;
    /// <summary>
    /// The class set, in order (for example a trained model's classes). Default null: folder names, or the
    /// labels found in a list. Labels outside a given set are invalid.
    /// </summary>
    public IReadOnlyList<string>? ClassNames { get; init; }
    /// <summary>Skip invalid images and rows, counting them, instead of stopping at the first (default false).</summary>
    public bool SkipInvalid { get; init; }
    /// <summary>Read at most this many images (a seeded, class-mixed subset). Default null: all.</summary>
    public int? Limit { get; init; }
}

/// <summary>A data set read from files, with the problems skipped on the way (empty unless <see cref="ImageReadOptions.SkipInvalid"/>).</summary>
/// <param name="Data">The images that were read.</param>
/// <param name="Skipped">One message per skipped image or row, naming it and the reason.</param>
public sealed record ImageReadResult(ImageDataset Data, IReadOnlyList<string> Skipped);

/// <summary>
/// Reads labelled image files: a folder with one subfolder per class, or a CSV/TSV list of <c>path,label</c>.
/// Errors are <see cref="DataException"/>s naming the file (and the list's line).
/// </summary>
public static class ImageReader
{
    /// <summary>One image to read: its file, where it was named (for messages) and its class.</summary>
    private sealed record Entry(string Path, string Where, int Label);

    /// <summary>
    /// Reads <c>root/&lt;class&gt;/&lt;image&gt;</c>: classes are the subfolder names in ordinal order (or
    /// <see cref="ImageReadOptions.ClassNames"/>); files without an image extension are ignored.
    /// </summary>
    /// <exception cref="DataException">No class folders, a folder outside the given classes, or an invalid image.</exception>
    public static ImageReadResult ReadFolder(string root, ImageReadOptions? options = null)
    {
        options ??= new();
        if (!Directory.Exists(root)) throw new DataException($"Image folder '{root}' does not exist.");
        var folders = Directory.GetDirectories(root).Select(Path.GetFileName).OfType<string>()
            .Where(n => !n.StartsWith('.')).Order(StringComparer.Ordinal).ToList();
        if (folders.Count == 0) throw new DataException($"Image folder '{root}' has no class subfolders (expected {root}/<class>/<image>.png).");
        var classes = options.ClassNames ?? folders;
        var skipped = new List<string>();
        var entries = new List<Entry>();
        foreach (var folder in folders)
        {
            int label = IndexOf(classes, folder);
            var files = Directory.GetFiles(Path.Combine(root, folder)).Where(ImageFile.HasImageExtension).Order(StringComparer.Ordinal).ToList();
            if (label < 0)
            {
                var message = $"Class folder '{Path.Combine(root, folder)}' is not one of the {classes.Count} classes ({Summarise(classes)}).";
                if (!options.SkipInvalid) throw new DataException(message);
                skipped.AddRange(files.Select(f => $"{f}: {message}"));
                continue;
            }
            entries.AddRange(files.Select(f => new Entry(f, f, label)));
        }
        return Decode(root, entries, classes, options, skipped);
    }

    /// <summary>
    /// Reads a CSV (comma) or TSV (tab: <c>.tsv</c> files, or a first line with a tab) list of <c>path,label</c>
    /// rows. Relative paths are resolved against the list's folder. The first row is a header when its path
    /// has no image extension (e.g. <c>path,label</c>). Labels are class names, or class indices; without
    /// <see cref="ImageReadOptions.ClassNames"/> the classes are the labels found (0..max when all are integers).
    /// Fields may be double-quoted; blank lines are ignored.
    /// </summary>
    /// <exception cref="DataException">A malformed row, a label outside the classes, or an invalid image; the message names the line.</exception>
    public static ImageReadResult ReadList(string listPath, ImageReadOptions? options = null)
    {
        options ??= new();
        if (!File.Exists(listPath)) throw new DataException($"Image list '{listPath}' does not exist.");
        var lines = File.ReadAllLines(listPath);
        char separator = listPath.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) || (lines.Length > 0 && lines[0].Contains('\t')) ? '\t' : ',';
        var folder = Path.GetDirectoryName(Path.GetFullPath(listPath))!;
        var skipped = new List<string>();
        var rows = new List<(string Path, string Label, string Where)>();
        bool firstRow = true;
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            var where = $"{listPath} line {i + 1}";
            var fields = SplitRow(lines[i], separator);
            bool header = firstRow && !ImageFile.HasImageExtension(fields[0].Trim());
            firstRow = false;
            if (header) continue;
            if (fields.Count < 2 || fields[0].Trim().Length == 0 || fields[1].Trim().Length == 0)
            {
                var message = $"{where}: expected 'path{separator}label', got '{lines[i]}'.";
                if (!options.SkipInvalid) throw new DataException(message);
                skipped.Add(message);
                continue;
            }
            rows.Add((Path.Combine(folder, fields[0].Trim()), fields[1].Trim(), where));
        }
        var classes = options.ClassNames ?? ClassesOf(rows.Select(r => r.Label));
        var entries = new List<Entry>(rows.Count);
        foreach (var (path, labelText, where) in rows)
        {
            int label = IndexOf(classes, labelText);
            if (label < 0 && int.TryParse(labelText, NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < classes.Count) label = index;
            if (label < 0)
            {
                var message = $"{where}: label '{labelText}' of '{path}' is not one of the {classes.Count} classes ({Summarise(classes)}).";
                if (!options.SkipInvalid) throw new DataException(message);
                skipped.Add(message);
                continue;
            }
            entries.Add(new Entry(path, $"{where} ('{path}')", label));
        }
        return Decode(listPath, entries, classes, options, skipped);
    }

    /// <summary>Integers 0..max when every label is a non-negative integer, otherwise the distinct names in ordinal order.</summary>
    private static IReadOnlyList<string> ClassesOf(IEnumerable<string> labels)
    {
        var distinct = labels.Distinct(StringComparer.Ordinal).ToList();
        if (distinct.Count > 0 && distinct.All(l => int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            int max = distinct.Max(l => int.Parse(l, CultureInfo.InvariantCulture));
            return Enumerable.Range(0, max + 1).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        }
        return distinct.Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Splits one CSV/TSV row; a field in double quotes may contain the separator and doubled quotes.</summary>
    private static List<string> SplitRow(string line, char separator)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char ch = line[i];
            if (quoted)
            {
                if (ch == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                else if (ch == '"') quoted = false;
                else field.Append(ch);
            }
            else if (ch == '"' && field.ToString().Trim().Length == 0) { field.Clear(); quoted = true; }
            else if (ch == separator) { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(ch);
        }
        fields.Add(field.ToString());
        return fields;
    }

    private static ImageReadResult Decode(string name, List<Entry> entries, IReadOnlyList<string> classes, ImageReadOptions options, List<string> skipped)
    {
        if (options.Limit is int limit && limit < entries.Count)
        {
            // A seeded subset keeps every class represented (the entries are grouped by class); original order is kept.
            var order = Enumerable.Range(0, entries.Count).ToArray();
            new Random(0).Shuffle(order);
            entries = order[..limit].Order().Select(i => entries[i]).ToList();
        }
        if (entries.Count == 0) throw new DataException($"'{name}' holds no images{(skipped.Count > 0 ? $" ({skipped.Count} skipped: {skipped[0]})" : "")}.");

        int? height = options.Height, width = options.Width;
        var decoded = new ImageFile.Decoded?[entries.Count];
        var errors = new string?[entries.Count];
        Parallel.For(0, entries.Count, i =>
        {
            try { decoded[i] = ImageFile.Decode(entries[i].Path); }
            catch (DataException e) { errors[i] = entries[i].Where == entries[i].Path ? e.Message : $"{entries[i].Where}: {e.Message}"; }
        });
        var first = decoded.FirstOrDefault(d => d != null);
        height ??= first?.Height;
        width ??= first?.Width;
        int channels = options.Channels ?? (decoded.All(d => d == null || d.IsGray) ? 1 : 3);

        var pixels = new List<byte[]>(entries.Count);
        var labels = new List<int>(entries.Count);
        var sources = new List<string>(entries.Count);
        for (int i = 0; i < entries.Count; i++)
        {
            if (decoded[i] is { } image)
            {
                try
                {
                    pixels.Add(image.ToPlanes(entries[i].Path, channels, height!.Value, width!.Value, options.Resize));
                    labels.Add(entries[i].Label);
                    sources.Add(entries[i].Path);
                    continue;
                }
                catch (DataException e) { errors[i] = entries[i].Where == entries[i].Path ? e.Message : $"{entries[i].Where}: {e.Message}"; }
            }
            if (!options.SkipInvalid) throw new DataException(errors[i]!);
            skipped.Add(errors[i]!);
        }
        if (pixels.Count == 0) throw new DataException($"'{name}' holds no readable images ({skipped.Count} skipped; first: {skipped[0]}).");
        var all = new byte[(long)pixels.Count * pixels[0].Length];
        for (int i = 0; i < pixels.Count; i++) pixels[i].CopyTo(all, (long)i * pixels[0].Length);
        var data = new ImageDataset(name, channels, height!.Value, width!.Value, all, labels.ToArray(), classes, sources.ToArray());
        return new ImageReadResult(data, skipped);
    }

    private static int IndexOf(IReadOnlyList<string> classes, string name)
    {
        for (int i = 0; i < classes.Count; i++) if (string.Equals(classes[i], name, StringComparison.Ordinal)) return i;
        return -1;
    }

    private static string Summarise(IReadOnlyList<string> names) =>
        names.Count <= 10 ? string.Join(", ", names) : string.Join(", ", names.Take(10)) + ", ...";
}
