using System.Buffers.Binary;
using System.IO.Compression;

namespace Crate.Core.Data;

/// <summary>
/// Reads the IDX format of MNIST and Fashion-MNIST (gzipped or not): a magic number whose third byte is the
/// element type (0x08 = unsigned byte) and fourth the number of dimensions, big-endian 32-bit sizes, then data.
/// </summary>
public static class IdxReader
{
    /// <summary>Fashion-MNIST's class names.</summary>
    public static IReadOnlyList<string> FashionMnistClasses { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the data.</summary>
    public const string FashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>Reads an IDX file of unsigned bytes: its dimensions and data.</summary>
    /// <exception cref="DataException">Wrong magic number, element type, or length; the message names the file.</exception>
    public static (int[] Dims, byte[] Data) Read(string path)
    {
        if (!File.Exists(path)) throw new DataException($"IDX file '{path}' does not exist.");
        byte[] bytes;
        try
        {
            using var file = File.OpenRead(path);
            bool gz = file.Length >= 2 && file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
            file.Position = 0;
            using var stream = gz ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            bytes = memory.ToArray();
        }
        catch (InvalidDataException e) { throw new DataException($"IDX file '{path}' is not valid gzip data: {e.Message}", e); }
        return Parse(bytes, path);
    }

    /// <summary>Parses IDX bytes (already decompressed); <paramref name="source"/> names them in errors.</summary>
    public static (int[] Dims, byte[] Data) Parse(byte[] bytes, string source)
    {
        if (bytes.Length < 4) throw new DataException($"IDX file '{source}' is {bytes.Length} bytes long; it is too short for the 4-byte magic number.");
        if (bytes[0] != 0 || bytes[1] != 0)
            throw new DataException($"IDX file '{source}' has magic number 0x{BinaryPrimitives.ReadUInt32BigEndian(bytes):X8}; expected 0x000008NN (unsigned bytes, NN dimensions).");
        if (bytes[2] != 0x08) throw new DataException($"IDX file '{source}' holds element type 0x{bytes[2]:X2}; only unsigned bytes (0x08) are supported.");
        int rank = bytes[3];
        if (rank is < 1 or > 4) throw new DataException($"IDX file '{source}' declares {rank} dimensions; expected 1 to 4.");
        if (bytes.Length < 4 + 4 * rank) throw new DataException($"IDX file '{source}' ends inside its header of {rank} dimensions.");
        var dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + 4 * i));
            if (dims[i] < 0) throw new DataException($"IDX file '{source}' has a negative dimension {dims[i]}.");
            count *= dims[i];
        }
        long expected = 4 + 4 * rank + count;
        if (bytes.Length != expected)
            throw new DataException($"IDX file '{source}' is {bytes.Length} bytes; its header [{string.Join(", ", dims)}] requires {expected} (truncated or wrong file?).");
        return (dims, bytes[(4 + 4 * rank)..]);
    }

    /// <summary>Writes unsigned-byte IDX data (gzipped when the path ends in .gz).</summary>
    public static void Write(string path, int[] dims, ReadOnlySpan<byte> data)
    {
        var header = new byte[4 + 4 * dims.Length];
        header[2] = 0x08;
        header[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), dims[i]);
        var copy = data.ToArray();
        IO.AtomicFile.Write(path, s =>
        {
            // Only the gzip wrapper is disposed here: AtomicFile still flushes and closes the file stream itself.
            using var gzip = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(s, CompressionLevel.Fastest, leaveOpen: true) : null;
            var target = (Stream?)gzip ?? s;
            target.Write(header);
            target.Write(copy);
        });
    }

    /// <summary>Reads an images file (<c>[N, H, W]</c>) and a labels file (<c>[N]</c>) into a data set.</summary>
    /// <exception cref="DataException">The files disagree in count, or are malformed.</exception>
    public static ImageDataset ReadDataset(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null, int? limit = null)
    {
        var (imageDims, pixels) = Read(imagesPath);
        var (labelDims, labelBytes) = Read(labelsPath);
        if (imageDims.Length != 3) throw new DataException($"IDX images file '{imagesPath}' has {imageDims.Length} dimensions; expected 3 (count, rows, columns).");
        if (labelDims.Length != 1) throw new DataException($"IDX labels file '{labelsPath}' has {labelDims.Length} dimensions; expected 1.");
        if (imageDims[0] != labelDims[0])
            throw new DataException($"IDX images '{imagesPath}' hold {imageDims[0]} images but labels '{labelsPath}' hold {labelDims[0]} labels.");
        int n = Math.Min(imageDims[0], limit ?? int.MaxValue);
        int size = imageDims[1] * imageDims[2];
        var labels = new int[n];
        for (int i = 0; i < n; i++) labels[i] = labelBytes[i];
        int classes = classNames?.Count ?? labels.DefaultIfEmpty(0).Max() + 1;
        var names = classNames ?? Enumerable.Range(0, classes).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        for (int i = 0; i < n; i++)
        {
            if (labels[i] >= names.Count)
                throw new DataException($"IDX labels file '{labelsPath}', row {i}: label {labels[i]} is outside the {names.Count} classes.");
        }
        return new ImageDataset(Path.GetFileName(imagesPath), 1, imageDims[1], imageDims[2], pixels[..(n * size)], labels, names);
    }

    /// <summary>Fashion-MNIST's training (60,000) or test (10,000) split from Debian's package.</summary>
    /// <exception cref="DataException">The package is not installed (the message says how to install it).</exception>
    public static ImageDataset FashionMnist(bool train, int? limit = null, string directory = FashionMnistDirectory)
    {
        var prefix = train ? "train" : "t10k";
        var images = Path.Combine(directory, $"{prefix}-images-idx3-ubyte.gz");
        var labels = Path.Combine(directory, $"{prefix}-labels-idx1-ubyte.gz");
        if (!File.Exists(images))
            throw new DataException($"Fashion-MNIST is not installed ('{images}' is missing): run scripts/setup.sh, or `apt-get install dataset-fashion-mnist`.");
        return ReadDataset(images, labels, FashionMnistClasses, limit);
    }
}
