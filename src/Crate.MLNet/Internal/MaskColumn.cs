using Crate.Core.Data.Segmentation;
using Crate.Core.Model;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Internal;

/// <summary>
/// A mask column: per-pixel class ids (0 background, 1..K-1 objects, <see cref="SegmentationDataset.IgnoreIndex"/> ignored) as a
/// known-size vector of bytes, row-major <c>[H, W]</c>. Every error names the column and says what Crate needs.
/// </summary>
internal sealed record MaskColumn(string Name, VectorDataViewType Type)
{
    /// <summary>The annotation <see cref="CrateDataCatalog.LoadFromSegmentationDataset"/> puts on mask columns: the class names, background first.</summary>
    public const string ClassNamesAnnotation = "MaskClassNames";

    private const string Accepted = "a known-size vector of Byte class ids, one per pixel (height x width, row-major; 255 = ignore)";

    /// <summary>Class ids per row.</summary>
    public int Length => Type.Size;

    /// <summary>Finds column <paramref name="name"/> in <paramref name="schema"/> and checks its type.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The column is missing or is not a known-size byte vector.</exception>
    public static MaskColumn Resolve(DataViewSchema schema, string name, string role = "mask")
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema),
                $"The input has no {role} column '{name}'. Columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"{c.Name} ({c.Type})"))}.");
        return column.Type is VectorDataViewType { IsKnownSize: true } v && v.ItemType == NumberDataViewType.Byte
            ? new MaskColumn(name, v)
            : throw new ArgumentOutOfRangeException(nameof(schema), $"The {role} column '{name}' is {column.Type}; Crate needs {Accepted}.");
    }

    /// <summary>The same checks on a <see cref="SchemaShape"/> (sizes are checked at Fit).</summary>
    public static void Check(SchemaShape shape, string name, string role = "mask")
    {
        var column = shape.FirstOrDefault(c => c.Name == name);
        if (column.Name == null)
            throw new ArgumentOutOfRangeException(nameof(shape), $"The input has no {role} column '{name}'. Columns: {string.Join(", ", shape.Select(c => c.Name))}.");
        if (column.Kind != SchemaShape.Column.VectorKind.Vector || column.ItemType != NumberDataViewType.Byte)
            throw new ArgumentOutOfRangeException(nameof(shape), $"The {role} column '{name}' is {column.Kind} of {column.ItemType}; Crate needs {Accepted}.");
    }

    /// <summary>The mask's <c>(height, width)</c> when the column declares <c>[H, W]</c> dimensions, else null.</summary>
    public (int Height, int Width)? Shape => Type.Dimensions.Length == 2 ? (Type.Dimensions[0], Type.Dimensions[1]) : null;

    /// <summary>The class names the column carries (see <see cref="ClassNamesAnnotation"/>), or null.</summary>
    public static string[]? ClassNamesOf(DataViewSchema schema, string name)
    {
        var column = schema[name];
        if (column.Annotations.Schema.GetColumnOrNull(ClassNamesAnnotation) is not { Type: VectorDataViewType { ItemType: TextDataViewType } }) return null;
        var names = default(VBuffer<ReadOnlyMemory<char>>);
        column.Annotations.GetValue(ClassNamesAnnotation, ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    /// <summary>Checks that the column holds one id per pixel of <paramref name="config"/>'s images.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The vector has another length.</exception>
    public void CheckShape(CrateConfig config, string role = "mask")
    {
        int expected = config.ImageHeight * config.ImageWidth;
        if (Length != expected)
            throw new ArgumentOutOfRangeException("inputSchema",
                $"The {role} column '{Name}' holds {Length} class ids per row ({Type}); the images are {config.ImageHeight}x{config.ImageWidth}, " +
                $"so it needs one per pixel ({expected}). Give masks the images' size (resize them with nearest-neighbour sampling).");
    }
}
