using Crate.Core.Data;
using Crate.Core.Model;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Internal;

/// <summary>Reads an ML.NET data view (pixels and key labels) into Crate's in-memory <see cref="ImageDataset"/> for training.</summary>
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
        var (prepare, pixelColumn) = ScoringChain.Prepare(context.Transforms, pixels, shape);
        var view = prepare.Fit(data).Transform(data);
        int length = shape.Channels * shape.ImageHeight * shape.ImageWidth;
        var bytes = new List<byte>(checked((int)Math.Min(data.GetRowCount() ?? 0, int.MaxValue / Math.Max(length, 1)) * length));
        var labels = new List<int>();
        var columns = new[] { view.Schema[pixelColumn], view.Schema[label.Name] };
        using var cursor = view.GetRowCursor(columns);
        var getLabel = cursor.GetGetter<uint>(view.Schema[label.Name]);
        var readPixels = PixelReader(cursor, view.Schema[pixelColumn], pixels, role);
        uint key = 0;
        try
        {
            while (cursor.MoveNext())
            {
                getLabel(ref key);
                if (key == 0)
                    throw new ArgumentOutOfRangeException(nameof(data),
                        $"The {role} label column '{label.Name}', row {cursor.Position}: the label is missing (a value the key mapping did not know when it was fitted, " +
                        "i.e. a label unseen in training). Remove such rows or fit the key mapping on data that has every class.");
                labels.Add((int)key - 1);
                readPixels(bytes, cursor.Position);
            }
        }
        catch (MissingMethodException e) when (pixels.Source == PixelSource.Image)
        {
            throw ImagesUnreadable(pixels.Name, e);
        }
        if (labels.Count == 0) throw new ArgumentOutOfRangeException(nameof(data), $"The {role} data has no rows.");
        return new ImageDataset($"ML.NET {role} data", shape.Channels, shape.ImageHeight, shape.ImageWidth, bytes.ToArray(), labels.ToArray(), label.ClassNames);
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
