using Crate.Core.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet;

/// <summary>Moves Crate's in-memory <see cref="ImageDataset"/> (IDX, image folders, CSV lists, generated data) into ML.NET.</summary>
public static class CrateDataCatalog
{
    /// <summary>
    /// The images of <paramref name="dataset"/> as an <see cref="IDataView"/>: a text label column (the class name) and
    /// a byte pixel column shaped <c>[C, H, W]</c>, ready for <c>MapValueToKey</c> and Crate's estimators.
    /// </summary>
    /// <param name="catalog">The data catalog (<c>mlContext.Data</c>).</param>
    /// <param name="dataset">The images.</param>
    /// <param name="imageColumnName">The pixel column: a known-size vector of <see cref="byte"/>, dimensions <c>[C, H, W]</c>.</param>
    /// <param name="labelColumnName">The class-name column (text).</param>
    public static IDataView LoadFromImageDataset(this DataOperationsCatalog catalog, ImageDataset dataset,
        string imageColumnName = DefaultColumnNames.Image, string labelColumnName = DefaultColumnNames.Label)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var rows = Enumerable.Range(0, dataset.Count).Select(i => new ImageRow
        {
            Image = dataset.Image(i).ToArray(),
            Label = dataset.ClassNames[dataset.Label(i)],
        });
        var schema = SchemaDefinition.Create(typeof(ImageRow));
        schema[nameof(ImageRow.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Byte, dataset.Channels, dataset.Height, dataset.Width);
        schema[nameof(ImageRow.Image)].ColumnName = imageColumnName;
        schema[nameof(ImageRow.Label)].ColumnName = labelColumnName;
        return catalog.LoadFromEnumerable(rows, schema);
    }

    private sealed class ImageRow
    {
        public byte[] Image = [];
        public string Label = "";
    }
}
