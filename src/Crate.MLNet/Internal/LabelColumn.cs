using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Internal;

/// <summary>The key-typed label column: its class count and class names (the key values, in key order).</summary>
internal sealed record LabelColumn(string Name, string[] ClassNames)
{
    private const string Fix = "Map the labels to keys first, e.g. mlContext.Transforms.Conversion.MapValueToKey(\"{0}\") before the trainer.";

    /// <summary>Finds and checks the label column.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Missing, not a key type, or a key type without a known count.</exception>
    public static LabelColumn Resolve(DataViewSchema schema, string name, string role = "label")
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(nameof(schema),
                $"The input has no {role} column '{name}'. Columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"{c.Name} ({c.Type})"))}.");
        if (column.Type is not KeyDataViewType key)
            throw new ArgumentOutOfRangeException(nameof(schema), $"The {role} column '{name}' is {column.Type}; Crate needs a key type. {string.Format(CultureInfo.InvariantCulture, Fix, name)}");
        if (key.Count is 0 or > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(schema), $"The {role} column '{name}' is a key type of unknown or unbounded count ({key}); Crate needs the number of classes.");
        return new LabelColumn(name, ClassNamesOf(column, (int)key.Count));
    }

    /// <summary>The same checks on a <see cref="SchemaShape"/> (which records that a column is a key, not how many values it has).</summary>
    public static void Check(SchemaShape shape, string name)
    {
        var column = shape.FirstOrDefault(c => c.Name == name);
        if (column.Name == null)
            throw new ArgumentOutOfRangeException(nameof(shape), $"The input has no label column '{name}'. Columns: {string.Join(", ", shape.Select(c => c.Name))}.");
        if (!column.IsKey || column.Kind != SchemaShape.Column.VectorKind.Scalar)
            throw new ArgumentOutOfRangeException(nameof(shape), $"The label column '{name}' is {(column.IsKey ? "a key " : "")}{column.Kind} of {column.ItemType}; Crate needs a scalar key type. {string.Format(CultureInfo.InvariantCulture, Fix, name)}");
    }

    /// <summary>Key values as text when the column has them (text or any other type, formatted invariantly), else "0", "1", ...</summary>
    private static string[] ClassNamesOf(DataViewSchema.Column column, int count)
    {
        var valuesType = column.Annotations.Schema.GetColumnOrNull("KeyValues")?.Type as VectorDataViewType;
        if (valuesType == null || valuesType.Size != count)
            return Enumerable.Range(0, count).Select(k => k.ToString(CultureInfo.InvariantCulture)).ToArray();
        var read = typeof(LabelColumn).GetMethod(nameof(KeyValues), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
            .MakeGenericMethod(valuesType.ItemType.RawType);
        return (string[])read.Invoke(null, [column])!;
    }

    private static string[] KeyValues<T>(DataViewSchema.Column column)
    {
        var values = default(VBuffer<T>);
        column.GetKeyValues(ref values);
        return values.DenseValues().Select(v => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "").ToArray();
    }

    /// <summary>A validation set's label column must be the same key mapping as the training one.</summary>
    public void CheckSameClasses(LabelColumn other, string role)
    {
        if (!other.ClassNames.SequenceEqual(ClassNames))
            throw new ArgumentOutOfRangeException(nameof(other),
                $"The {role} label column '{other.Name}' has classes [{string.Join(", ", other.ClassNames)}], the training data [{string.Join(", ", ClassNames)}]; " +
                "map both with the same fitted MapValueToKey transformer.");
    }
}
