using Crate.Core.Model;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;

namespace Crate.MLNet.Internal;

/// <summary>What an image column holds.</summary>
internal enum PixelSource
{
    /// <summary>An <see cref="MLImage"/> (from <c>LoadImages</c>): resized and converted in the chain by ML.NET's image transforms.</summary>
    Image,
    /// <summary>A known-size vector of <see cref="float"/> pixels, 0..255, channel-major <c>[C, H, W]</c>.</summary>
    Floats,
    /// <summary>A known-size vector of <see cref="byte"/> pixels, channel-major <c>[C, H, W]</c>.</summary>
    Bytes,
}

/// <summary>
/// The image column Crate reads, resolved and checked against a schema. Every error names the column, says what
/// it holds and what Crate needs, so a mistyped or missing column is fixed without reading the source.
/// </summary>
internal sealed record PixelColumn(string Name, PixelSource Source, VectorDataViewType? VectorType)
{
    private const string Accepted = "an image (MLImage, from LoadImages) or a known-size vector of Single or Byte pixels (values 0..255, channel-major C x H x W)";

    /// <summary>Number of pixel values per row (0 for images).</summary>
    public int Length => VectorType?.Size ?? 0;

    /// <summary>Finds column <paramref name="name"/> in <paramref name="schema"/> and checks its type.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The column is missing or of a type Crate cannot read.</exception>
    public static PixelColumn Resolve(DataViewSchema schema, string name, string role = "image")
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"The input has no {role} column '{name}'. {Columns(schema)}");
        return column.Type switch
        {
            ImageDataViewType => new PixelColumn(name, PixelSource.Image, null),
            VectorDataViewType { IsKnownSize: true } v when v.ItemType == NumberDataViewType.Single => new PixelColumn(name, PixelSource.Floats, v),
            VectorDataViewType { IsKnownSize: true } v when v.ItemType == NumberDataViewType.Byte => new PixelColumn(name, PixelSource.Bytes, v),
            var type => throw new ArgumentOutOfRangeException(nameof(schema),
                $"The {role} column '{name}' is {type}; Crate needs {Accepted}."),
        };
    }

    /// <summary>The same checks on a <see cref="SchemaShape"/> (sizes are not known there; they are checked at Fit).</summary>
    public static void Check(SchemaShape shape, string name, string role = "image")
    {
        var found = shape.Where(c => c.Name == name).ToList();
        if (found.Count == 0)
            throw new ArgumentOutOfRangeException(nameof(shape), $"The input has no {role} column '{name}'. Columns: {string.Join(", ", shape.Select(c => c.Name))}.");
        var column = found[0];
        bool ok = column.Kind == SchemaShape.Column.VectorKind.Scalar
            ? column.ItemType is ImageDataViewType
            : column.Kind == SchemaShape.Column.VectorKind.Vector && (column.ItemType == NumberDataViewType.Single || column.ItemType == NumberDataViewType.Byte);
        if (!ok)
            throw new ArgumentOutOfRangeException(nameof(shape), $"The {role} column '{name}' is {column.Kind} of {column.ItemType}; Crate needs {Accepted}.");
    }

    /// <summary>Checks that a pixel vector holds exactly one <c>C x H x W</c> image of <paramref name="config"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The vector has another length.</exception>
    public void CheckShape(CrateConfig config)
    {
        int expected = config.Channels * config.ImageHeight * config.ImageWidth;
        if (Source != PixelSource.Image && Length != expected)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"The image column '{Name}' holds {Length} values per row ({VectorType}); the model takes {config.Channels}x{config.ImageHeight}x{config.ImageWidth} " +
                $"images (channels x height x width = {expected} values). Resize the images, or use a model trained for this size.");
    }

    /// <summary>
    /// The image shape of a pixel vector: its dimensions when they are <c>[C, H, W]</c> or <c>[H, W]</c>; otherwise a
    /// square grayscale (<c>n = H*H</c>) or square RGB (<c>n = 3*H*H</c>) image.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The shape cannot be told from the column; the message says which options set it.</exception>
    public (int Channels, int Height, int Width) InferShape()
    {
        var dims = VectorType!.Dimensions;
        if (dims.Length == 3) return (dims[0], dims[1], dims[2]);
        if (dims.Length == 2) return (1, dims[0], dims[1]);
        int n = Length;
        foreach (var channels in new[] { 1, 3 })
        {
            int side = (int)Math.Round(Math.Sqrt(n / (double)channels));
            if (channels * side * side == n) return (channels, side, side);
        }
        throw new ArgumentOutOfRangeException("inputSchema",
            $"The image column '{Name}' holds {n} values per row, which is not a square grayscale or RGB image; declare its shape " +
            "([VectorType(channels, height, width)]) or set the Channels, ImageHeight and ImageWidth options.");
    }

    private static string Columns(DataViewSchema schema) =>
        $"Columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"{c.Name} ({c.Type})"))}.";
}
