using System.Globalization;
using Crate.Core.Data;
using Crate.Core.Data.Segmentation;
using Crate.Core.Model;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Internal;

/// <summary>
/// Reads an ML.NET data view into Crate's in-memory data sets for training: pixels and key labels into an <see cref="ImageDataset"/>,
/// pixels and masks into a <see cref="SegmentationDataset"/>.
/// </summary>
internal static class DatasetReader
{
    /// <summary>
    /// Reads every row of <paramref name="data"/>. Images go through the chain's own preparation (resize and channel
    /// extraction), so the network trains on exactly the pixels it will score.
    /// </summary>
    /// <param name="data">The view.</param>
    /// <param name="context">The user's context (image preparation).</param>
    /// <param name="pixels">The image column.</param>
    /// <param name="label">The label column.</param>
    /// <param name="shape">The network input the pixels must fill.</param>
    /// <param name="role">"training" or "validation", for messages.</param>
    /// <exception cref="ArgumentOutOfRangeException">A missing label, a pixel outside 0..255, or images ML.NET cannot read here; the message names the column and row.</exception>
    public static ImageDataset Read(IDataView data, CatalogContext context, PixelColumn pixels, LabelColumn label, CrateConfig shape, string role)
    {
        var labels = new List<int>();
        var bytes = ReadRows(data, context, pixels, shape, role, label.Name, cursor =>
        {
            var getLabel = cursor.GetGetter<uint>(cursor.Schema[label.Name]);
            uint key = 0;
            return row =>
            {
                getLabel(ref key);
                if (key == 0)
                    throw new ArgumentOutOfRangeException(nameof(data),
                        $"The {role} label column '{label.Name}', row {row}: the label is missing (a value the key mapping did not know when it was fitted, " +
                        "i.e. a label unseen in training). Remove such rows or fit the key mapping on data that has every class.");
                labels.Add((int)key - 1);
            };
        });
        return new ImageDataset($"ML.NET {role} data", shape.Channels, shape.ImageHeight, shape.ImageWidth, bytes, labels.ToArray(), label.ClassNames);
    }

    /// <summary>
    /// Reads every row's pixels (as <see cref="Read"/> does) and mask. With <paramref name="classNames"/> null the classes are numbered
    /// 0 .. the largest id in the masks.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A pixel outside 0..255, a class id outside <paramref name="classNames"/> (and not 255), or images ML.NET
    /// cannot read here; the message names the column and row.</exception>
    public static SegmentationDataset ReadSegmentation(IDataView data, CatalogContext context, PixelColumn pixels, MaskColumn mask, CrateConfig shape,
        IReadOnlyList<string>? classNames, string role)
    {
        var masks = new List<byte>();
        int largest = 0;
        var bytes = ReadRows(data, context, pixels, shape, role, mask.Name, cursor =>
        {
            var getMask = cursor.GetGetter<VBuffer<byte>>(cursor.Schema[mask.Name]);
            var buffer = default(VBuffer<byte>);
            return row =>
            {
                getMask(ref buffer);
                int p = 0;
                foreach (var id in buffer.DenseValues())
                {
                    if (id != SegmentationDataset.IgnoreIndex)
                    {
                        if (classNames != null && id >= classNames.Count)
                            throw new ArgumentOutOfRangeException(nameof(data),
                                $"The {role} mask column '{mask.Name}', row {row}, pixel {p} (x {p % shape.ImageWidth}, y {p / shape.ImageWidth}): class id {id} is not one of " +
                                $"the {classNames.Count} classes (0..{classNames.Count - 1}) or {SegmentationDataset.IgnoreIndex} (ignore).");
                        largest = Math.Max(largest, id);
                    }
                    masks.Add(id);
                    p++;
                }
            };
        });
        var names = classNames ?? Enumerable.Range(0, Math.Max(2, largest + 1)).Select(k => k.ToString(CultureInfo.InvariantCulture)).ToArray();
        return new SegmentationDataset($"ML.NET {role} data", shape.Channels, shape.ImageHeight, shape.ImageWidth, bytes, masks.ToArray(), names);
    }

    /// <summary>
    /// The loop both readers share: prepares the images, then for every row calls the reader <paramref name="otherReader"/> made for
    /// <paramref name="otherColumn"/> (given the row number) and appends the row's pixels.
    /// </summary>
    private static byte[] ReadRows(IDataView data, CatalogContext context, PixelColumn pixels, CrateConfig shape, string role,
        string otherColumn, Func<DataViewRowCursor, Action<long>> otherReader)
    {
        var (prepare, pixelColumn) = ScoringChain.Prepare(context.Transforms, pixels, shape);
        var view = prepare.Fit(data).Transform(data);
        int length = shape.Channels * shape.ImageHeight * shape.ImageWidth;
        var bytes = new List<byte>(checked((int)Math.Min(data.GetRowCount() ?? 0, int.MaxValue / Math.Max(length, 1)) * length));
        using var cursor = view.GetRowCursor([view.Schema[pixelColumn], view.Schema[otherColumn]]);
        var readOther = otherReader(cursor);
        var readPixels = PixelReader(cursor, view.Schema[pixelColumn], pixels, role);
        long rows = 0;
        try
        {
            while (cursor.MoveNext())
            {
                readOther(cursor.Position);
                readPixels(bytes, cursor.Position);
                rows++;
            }
        }
        catch (MissingMethodException e) when (pixels.Source == PixelSource.Image)
        {
            throw ImagesUnreadable(pixels.Name, e);
        }
        if (rows == 0) throw new ArgumentOutOfRangeException(nameof(data), $"The {role} data has no rows.");
        return bytes.ToArray();
    }

    /// <summary>Appends one row's pixels as bytes. Float pixels must be 0..255 (what ExtractPixels gives); they are rounded.</summary>
    private static Action<List<byte>, long> PixelReader(DataViewRowCursor cursor, DataViewSchema.Column column, PixelColumn pixels, string role)
    {
        if (column.Type is VectorDataViewType { ItemType: var item } && item == NumberDataViewType.Byte)
        {
            var get = cursor.GetGetter<VBuffer<byte>>(column);
            var buffer = default(VBuffer<byte>);
            return (bytes, _) => { get(ref buffer); bytes.AddRange(buffer.DenseValues()); };
        }
        var getFloats = cursor.GetGetter<VBuffer<float>>(column);
        var floats = default(VBuffer<float>);
        return (bytes, row) =>
        {
            getFloats(ref floats);
            int i = 0;
            foreach (var v in floats.DenseValues())
            {
                if (!(v >= -0.5f && v < 255.5f))
                    throw new ArgumentOutOfRangeException("data",
                        $"The {role} image column '{pixels.Name}', row {row}, value {i}: pixel {v} is outside 0..255. Crate reads raw pixel values " +
                        "(as ExtractPixels gives them, without scaling); it normalises inside the model.");
                bytes.Add((byte)MathF.Round(v));
                i++;
            }
        };
    }

    /// <summary>
    /// Microsoft.ML.ImageAnalytics 5 is built against SkiaSharp 2.88 (as Crate.MLNet is); an application that also loads SkiaSharp 3
    /// (ScottPlot, or Crate.Reports, brings it) runs them on 3, whose changed members make ML.NET's pixel access fail.
    /// </summary>
    internal static NotSupportedException ImagesUnreadable(string column, Exception inner) =>
        new($"The image column '{column}' holds MLImage images, but ML.NET's image transforms cannot read pixels in this process: " +
            $"Microsoft.ML.ImageAnalytics 5 is built for SkiaSharp 2.88 and this process loaded SkiaSharp {typeof(SkiaSharp.SKBitmap).Assembly.GetName().Version} " +
            "(ScottPlot or Crate.Reports bring SkiaSharp 3). Keep them out of the application that reads MLImages, or give Crate pixels: a vector of bytes or " +
            "floats (mlContext.Data.LoadFromImageDataset with Crate's image readers, or ExtractPixels in another process).", inner);
}
