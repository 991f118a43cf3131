using Crate.Core.Data;
using Crate.Core.Data.Segmentation;
using Crate.MLNet.Internal;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet;

/// <summary>
/// Moves Crate's in-memory data sets into ML.NET: <see cref="ImageDataset"/> (IDX, image folders, CSV lists, generated data) for
/// classification, <see cref="SegmentationDataset"/> (generated scenes, image + mask folders) for segmentation.
/// </summary>
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

    /// <summary>
    /// The images and masks of <paramref name="dataset"/> as an <see cref="IDataView"/>: a byte pixel column shaped <c>[C, H, W]</c> and a
    /// byte mask column shaped <c>[H, W]</c> (class ids, 255 = ignore) carrying the class names as its <c>MaskClassNames</c> annotation,
    /// ready for <c>mlContext.Segmentation().Trainers.Crate(...)</c>. Generated scenes come from <see cref="SceneGenerator"/>.
    /// </summary>
    /// <param name="catalog">The data catalog (<c>mlContext.Data</c>).</param>
    /// <param name="dataset">The images and masks.</param>
    /// <param name="imageColumnName">The pixel column.</param>
    /// <param name="maskColumnName">The mask column.</param>
    public static IDataView LoadFromSegmentationDataset(this DataOperationsCatalog catalog, SegmentationDataset dataset,
        string imageColumnName = DefaultColumnNames.Image, string maskColumnName = CrateSegmentationTrainer.DefaultMaskColumnName)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        var rows = Enumerable.Range(0, dataset.Count).Select(i => new SegmentationRow { Image = dataset.Image(i).ToArray(), Mask = dataset.Mask(i).ToArray() });
        var schema = SchemaDefinition.Create(typeof(SegmentationRow));
        schema[nameof(SegmentationRow.Image)].ColumnType = new VectorDataViewType(NumberDataViewType.Byte, dataset.Channels, dataset.Height, dataset.Width);
        schema[nameof(SegmentationRow.Image)].ColumnName = imageColumnName;
        var mask = schema[nameof(SegmentationRow.Mask)];
        mask.ColumnType = new VectorDataViewType(NumberDataViewType.Byte, dataset.Height, dataset.Width);
        mask.ColumnName = maskColumnName;
        var names = new VBuffer<ReadOnlyMemory<char>>(dataset.NumClasses, dataset.ClassNames.Select(n => n.AsMemory()).ToArray());
        mask.AddAnnotation(MaskColumn.ClassNamesAnnotation, names, new VectorDataViewType(TextDataViewType.Instance, dataset.NumClasses));
        return catalog.LoadFromEnumerable(rows, schema);
    }

    /// <summary>
    /// Reads an <c>images/</c> + <c>masks/</c> folder pair (see <see cref="SegmentationFolder"/>: PNG masks, indexed or grayscale or VOC colours, 255 = ignore,
    /// class names from <c>classes.txt</c>) and loads it as <see cref="LoadFromSegmentationDataset"/> does.
    /// </summary>
    /// <param name="catalog">The data catalog (<c>mlContext.Data</c>).</param>
    /// <param name="directory">The folder holding <c>images/</c> and <c>masks/</c>.</param>
    /// <param name="options">Channels, a common size, class names, a limit. Default: RGB, every pair of the first pair's size.</param>
    /// <param name="imageColumnName">The pixel column.</param>
    /// <param name="maskColumnName">The mask column.</param>
    /// <exception cref="DataException">A folder or paired image is missing, sizes disagree, or a mask holds an unknown class id; the message names the file.</exception>
    public static IDataView LoadFromSegmentationFolder(this DataOperationsCatalog catalog, string directory, SegmentationFolder.Options? options = null,
        string imageColumnName = DefaultColumnNames.Image, string maskColumnName = CrateSegmentationTrainer.DefaultMaskColumnName) =>
        catalog.LoadFromSegmentationDataset(SegmentationFolder.Read(directory, options), imageColumnName, maskColumnName);

    private sealed class ImageRow
    {
        public byte[] Image = [];
        public string Label = "";
    }

    private sealed class SegmentationRow
    {
        public byte[] Image = [];
        public byte[] Mask = [];
    }
}
