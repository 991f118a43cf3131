namespace Crate.Core.Data;

/// <summary>Which part of a data source to read.</summary>
public enum DataSplit
{
    /// <summary>The training part.</summary>
    Train,
    /// <summary>The held-out test part.</summary>
    Test,
}

/// <summary>
/// Opens a data set named the way the command line names it: <c>fashion-mnist</c>, <c>generated</c>, a folder
/// of class subfolders, or a CSV/TSV list. Every source is conformed to the requested channels and size.
/// </summary>
public static class DataSource
{
    /// <summary>Fashion-MNIST from Debian's <c>dataset-fashion-mnist</c> (60,000 train / 10,000 test).</summary>
    public const string FashionMnist = "fashion-mnist";
    /// <summary>The generated shapes set (<see cref="GeneratedShapes"/>).</summary>
    public const string Generated = "generated";
    /// <summary>Images in the generated training split when no limit is given.</summary>
    public const int GeneratedTrainCount = 6000;
    /// <summary>Images in the generated test split when no limit is given.</summary>
    public const int GeneratedTestCount = 1000;
    /// <summary>Added to the seed for the generated test split, so it never repeats a training image set.</summary>
    public const int GeneratedTestSeedOffset = 1_000_003;

    /// <summary>
    /// Loads <paramref name="spec"/>. A folder holding <c>train</c> and <c>test</c> (or <c>val</c>) subfolders
    /// gives the requested split; any other folder or list is read whole, whatever the split.
    /// </summary>
    /// <param name="spec"><c>fashion-mnist</c>, <c>generated</c>, a folder, or a <c>.csv</c>/<c>.tsv</c>/<c>.txt</c> list.</param>
    /// <param name="split">The split to read where the source has splits.</param>
    /// <param name="options">Channels, size, classes, limit and invalid-data handling.</param>
    /// <param name="seed">Seed of the generated set.</param>
    /// <exception cref="DataException">The source is unknown, missing or invalid.</exception>
    public static ImageReadResult Load(string spec, DataSplit split, ImageReadOptions? options = null, int seed = 0)
    {
        options ??= new();
        if (options.Channels is int channels) ImageFile.CheckChannels(channels);
        if (string.Equals(spec, FashionMnist, StringComparison.OrdinalIgnoreCase))
            return new(Conform(IdxReader.FashionMnist(split == DataSplit.Train, options.Limit), options), []);
        if (string.Equals(spec, Generated, StringComparison.OrdinalIgnoreCase))
        {
            int count = options.Limit ?? (split == DataSplit.Train ? GeneratedTrainCount : GeneratedTestCount);
            var data = GeneratedShapes.Create(count, split == DataSplit.Train ? seed : seed + GeneratedTestSeedOffset,
                options.Height ?? 28, options.Width ?? 28, options.Channels ?? 1);
            return new(Conform(data, options), []);
        }
        if (Directory.Exists(spec))
        {
            if (SplitFolders(spec) is { } parts) return ImageReader.ReadFolder(split == DataSplit.Train ? parts.Train : parts.Test, options);
            return ImageReader.ReadFolder(spec, options);
        }
        if (File.Exists(spec) && Path.GetExtension(spec).ToLowerInvariant() is ".csv" or ".tsv" or ".txt")
            return ImageReader.ReadList(spec, options);
        if (File.Exists(spec))
            throw new DataException($"Data file '{spec}' is not a .csv/.tsv/.txt list of 'path,label' rows.");
        throw new DataException($"Data source '{spec}' does not exist: use '{FashionMnist}', '{Generated}', a folder of class subfolders, or a .csv/.tsv list.");
    }

    /// <summary>Whether <paramref name="spec"/> has a held-out test split (Fashion-MNIST, generated, or a folder with train and test subfolders).</summary>
    public static bool HasTestSplit(string spec) =>
        string.Equals(spec, FashionMnist, StringComparison.OrdinalIgnoreCase) || string.Equals(spec, Generated, StringComparison.OrdinalIgnoreCase)
        || (Directory.Exists(spec) && SplitFolders(spec) != null);

    /// <summary>The train and test (or val) subfolders of a split folder, or null.</summary>
    private static (string Train, string Test)? SplitFolders(string folder)
    {
        var train = Path.Combine(folder, "train");
        var test = new[] { "test", "val", "validation" }.Select(n => Path.Combine(folder, n)).FirstOrDefault(Directory.Exists);
        return test != null && Directory.Exists(train) ? (train, test) : null;
    }

    /// <summary>
    /// Converts an in-memory data set to the channels and size <paramref name="options"/> ask for, and checks its
    /// classes against <see cref="ImageReadOptions.ClassNames"/> (the count must agree; labels are indices).
    /// </summary>
    /// <exception cref="DataException">The class counts differ.</exception>
    public static ImageDataset Conform(ImageDataset data, ImageReadOptions options)
    {
        if (options.ClassNames is { } classes && classes.Count != data.ClassNames.Count)
            throw new DataException($"Data set '{data.Name}' has {data.ClassNames.Count} classes but {classes.Count} are expected ({string.Join(", ", classes.Take(10))}).");
        int c = options.Channels ?? data.Channels, h = options.Height ?? data.Height, w = options.Width ?? data.Width;
        if (c == data.Channels && h == data.Height && w == data.Width) return data;
        if (!options.Resize && (h != data.Height || w != data.Width))
            throw new DataException($"Data set '{data.Name}' holds {data.Width}x{data.Height} images; expected {w}x{h}.");
        int size = c * h * w;
        var pixels = new byte[(long)data.Count * size];
        Parallel.For(0, data.Count, i =>
            ImageFile.Convert(data.Image(i), data.Channels, data.Height, data.Width, c, h, w).CopyTo(pixels.AsSpan(i * size, size)));
        return new ImageDataset(data.Name, c, h, w, pixels, data.Labels.ToArray(), data.ClassNames,
            Enumerable.Range(0, data.Count).Select(data.Source).ToArray());
    }
}
