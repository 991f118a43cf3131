using ScottPlot;
using SkiaSharp;

namespace Crate.Reports.Rendering;

/// <summary>How a tile's values become colours.</summary>
internal enum TilePalette
{
    /// <summary>Viridis, stretched from the tile's own minimum to its maximum (shapes, not levels, are compared).</summary>
    Stretched,
    /// <summary>Viridis over the fixed range [0, 1].</summary>
    Unit,
    /// <summary>Blue-white-red, symmetric around zero at the tile's largest magnitude.</summary>
    Diverging,
    /// <summary>Pixels in [0, 1]: grey for one channel, RGB for three (channel-major).</summary>
    Image,
}

/// <summary>One heat map (or image) of a grid: row-major values.</summary>
internal sealed record Tile(float[] Values, int Height, int Width, TilePalette Palette);

/// <summary>Draws a titled grid of small heat maps with row and column labels, as PNG (SkiaSharp).</summary>
internal static class TileGrid
{
    private const int Gap = 4, LabelWidth = 70, LabelHeight = 20, TitleHeight = 28;
    private static readonly IColormap Sequential = new ScottPlot.Colormaps.Viridis();
    private static readonly IColormap Diverging = new ScottPlot.Colormaps.Balance();

    /// <summary>
    /// Renders <paramref name="tiles"/> (<c>[row, column]</c>, null for an empty cell), each scaled to
    /// <paramref name="cell"/> pixels on its longer side with nearest-neighbour sampling, so patches stay visible as blocks.
    /// </summary>
    public static byte[] Png(string title, IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels, Tile?[,] tiles, int cell)
    {
        int rows = tiles.GetLength(0), cols = tiles.GetLength(1);
        using var text = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var titleFont = new SKFont(SKTypeface.Default, 15);
        using var labelFont = new SKFont(SKTypeface.Default, 12);
        // As wide as the grid, or as the title where that is longer (long checkpoint labels).
        int width = Math.Max(LabelWidth + cols * (cell + Gap) + Gap, (int)Math.Ceiling(titleFont.MeasureText(title, text)) + 2 * Gap);
        int height = TitleHeight + LabelHeight + rows * (cell + Gap) + Gap;
        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        canvas.DrawText(title, Gap, 19, SKTextAlign.Left, titleFont, text);
        for (int c = 0; c < cols && c < columnLabels.Count; c++)
            canvas.DrawText(columnLabels[c], LabelWidth + c * (cell + Gap) + cell / 2f, TitleHeight + 14, SKTextAlign.Center, labelFont, text);
        for (int r = 0; r < rows; r++)
        {
            float top = TitleHeight + LabelHeight + r * (cell + Gap);
            if (r < rowLabels.Count) canvas.DrawText(rowLabels[r], LabelWidth - 6, top + cell / 2f + 4, SKTextAlign.Right, labelFont, text);
            for (int c = 0; c < cols; c++)
            {
                if (tiles[r, c] is not { } tile) continue;
                using var bitmap = ToBitmap(tile);
                float scale = (float)cell / Math.Max(tile.Height, tile.Width);
                var target = SKRect.Create(LabelWidth + c * (cell + Gap), top, tile.Width * scale, tile.Height * scale);
                using var image = SKImage.FromBitmap(bitmap);
                canvas.DrawImage(image, target, new SKSamplingOptions(SKFilterMode.Nearest));
            }
        }
        using var snapshot = surface.Snapshot();
        using var png = snapshot.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }

    private static SKBitmap ToBitmap(Tile tile)
    {
        int plane = tile.Height * tile.Width;
        if (tile.Values.Length % plane != 0) throw new ArgumentException($"A {tile.Height}x{tile.Width} tile cannot hold {tile.Values.Length} values.");
        var bitmap = new SKBitmap(tile.Width, tile.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        var (lo, hi) = Range(tile);
        for (int i = 0; i < plane; i++)
            bitmap.SetPixel(i % tile.Width, i / tile.Width, ColorAt(tile, i, plane, lo, hi));
        return bitmap;
    }

    private static (float Lo, float Hi) Range(Tile tile) => tile.Palette switch
    {
        TilePalette.Stretched => (tile.Values.Min(), tile.Values.Max()),
        TilePalette.Diverging => (-tile.Values.Max(Math.Abs), tile.Values.Max(Math.Abs)),
        _ => (0f, 1f),
    };

    private static SKColor ColorAt(Tile tile, int i, int plane, float lo, float hi)
    {
        if (tile.Palette == TilePalette.Image)
        {
            static byte Byte(float v) => (byte)Math.Clamp(MathF.Round(v * 255), 0, 255);
            return tile.Values.Length == 3 * plane
                ? new SKColor(Byte(tile.Values[i]), Byte(tile.Values[plane + i]), Byte(tile.Values[2 * plane + i]))
                : new SKColor(Byte(tile.Values[i]), Byte(tile.Values[i]), Byte(tile.Values[i]));
        }
        double position = hi > lo ? Math.Clamp((tile.Values[i] - lo) / (hi - lo), 0, 1) : 0.5;
        var color = (tile.Palette == TilePalette.Diverging ? Diverging : Sequential).GetColor(position);
        return new SKColor(color.R, color.G, color.B);
    }
}
