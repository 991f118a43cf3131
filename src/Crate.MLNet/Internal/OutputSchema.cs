using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Internal;

/// <summary>The <see cref="SchemaShape"/> of Crate's output columns, for estimators' <c>GetOutputSchema</c>.</summary>
internal static class OutputSchema
{
    // ML.NET builds SchemaShape columns only through internal members; SchemaShape.Create(DataViewSchema) is the one
    // that turns a schema built with the public DataViewSchema.Builder into them.
    private static readonly Func<DataViewSchema, SchemaShape> CreateShape =
        typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, [typeof(DataViewSchema)])
            ?.CreateDelegate<Func<DataViewSchema, SchemaShape>>()
        ?? throw new MissingMethodException("This ML.NET version has no SchemaShape.Create(DataViewSchema); Crate.MLNet is built for ML.NET 5.");

    /// <summary><paramref name="input"/> plus <c>Score</c> (a vector of floats) and <c>PredictedLabel</c> (a key with text values).</summary>
    /// <remarks>A schema shape records kinds, not sizes, so any class count gives the same shape.</remarks>
    public static SchemaShape Classification(SchemaShape input, string scoreColumn, string predictedLabelColumn)
    {
        const int classes = 2;
        var namesType = new VectorDataViewType(TextDataViewType.Instance, classes);
        var names = new VBuffer<ReadOnlyMemory<char>>(classes, Enumerable.Range(0, classes).Select(k => k.ToString().AsMemory()).ToArray());
        ValueGetter<VBuffer<ReadOnlyMemory<char>>> getNames = (ref VBuffer<ReadOnlyMemory<char>> value) => names.CopyTo(ref value);

        var slotNames = new DataViewSchema.Annotations.Builder();
        slotNames.Add("SlotNames", namesType, getNames);
        var keyValues = new DataViewSchema.Annotations.Builder();
        keyValues.Add("KeyValues", namesType, getNames);

        var added = new DataViewSchema.Builder();
        added.AddColumn(scoreColumn, new VectorDataViewType(NumberDataViewType.Single, classes), slotNames.ToAnnotations());
        added.AddColumn(predictedLabelColumn, new KeyDataViewType(typeof(uint), classes), keyValues.ToAnnotations());
        return Merge(input, added.ToSchema());
    }

    /// <summary><paramref name="input"/> plus a vector of floats.</summary>
    public static SchemaShape Features(SchemaShape input, string featuresColumn)
    {
        var added = new DataViewSchema.Builder();
        added.AddColumn(featuresColumn, new VectorDataViewType(NumberDataViewType.Single, 1));
        return Merge(input, added.ToSchema());
    }

    /// <summary><paramref name="input"/> plus a vector of bytes (the predicted mask) and, when named, a vector of floats (the mask scores).</summary>
    public static SchemaShape Segmentation(SchemaShape input, string predictedMaskColumn, string? scoresColumn)
    {
        var added = new DataViewSchema.Builder();
        added.AddColumn(predictedMaskColumn, new VectorDataViewType(NumberDataViewType.Byte, 1, 1));
        if (scoresColumn != null) added.AddColumn(scoresColumn, new VectorDataViewType(NumberDataViewType.Single, 1, 1, 1));
        return Merge(input, added.ToSchema());
    }

    /// <summary>Input columns with the added ones replacing any of the same name, as a transformer's output hides them.</summary>
    private static SchemaShape Merge(SchemaShape input, DataViewSchema added)
    {
        var columns = input.ToDictionary(c => c.Name);
        foreach (var c in CreateShape(added)) columns[c.Name] = c;
        return new SchemaShape(columns.Values);
    }
}
