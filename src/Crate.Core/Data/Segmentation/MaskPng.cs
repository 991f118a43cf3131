using System.Buffers.Binary;
using System.IO.Compression;
using SkiaSharp;

namespace Crate.Core.Data.Segmentation;

/// <summary>
/// Segmentation masks as PNG files: reads class ids from indexed (palette) PNGs as PASCAL VOC stores them,
/// from 8-bit grayscale PNGs (the value is the class id), and from RGB PNGs painted in the VOC palette;
/// writes indexed PNGs in the VOC palette.
/// </summary>
/// <remarks>
/// SkiaSharp decodes an indexed PNG to colours, not to palette indices, so the reader parses the PNG's
/// <c>IHDR</c> and <c>PLTE</c> chunks itself and maps each decoded colour back to its palette index.
/// </remarks>
public static class MaskPng
{
    private static readonly byte[] Signature = [137, 80, 78, 71, 13, 10, 26, 10];

    /// <summary>
    /// The 256-colour PASCAL VOC palette: entry i spreads the bits of i over the high bits of R, G and B
    /// (0 black, 1 (128,0,0), ..., 255 (224,224,192), the colour VOC uses for its ignore/boundary label 255).
    /// </summary>
    public static IReadOnlyList<(byte R, byte G, byte B)> VocPalette { get; } = BuildVocPalette();

    private static (byte, byte, byte)[] BuildVocPalette()
    {
        var palette = new (byte, byte, byte)[256];
        for (int i = 0; i < 256; i++)
        {
            int r = 0, g = 0, b = 0, c = i;
            for (int j = 0; j < 8; j++, c >>= 3)
            {
                r |= (c & 1) << (7 - j);
                g |= ((c >> 1) & 1) << (7 - j);
                b |= ((c >> 2) & 1) << (7 - j);
            }
            palette[i] = ((byte)r, (byte)g, (byte)b);
        }
        return palette;
    }

    /// <summary>Reads a mask PNG as class ids, row-major <c>[height, width]</c>.</summary>
    /// <exception cref="DataException">The file is missing, not a PNG, or holds a colour that is no class; the message names the file.</exception>
    public static byte[] Read(string path, out int height, out int width)
    {
        if (!File.Exists(path)) throw new DataException($"Mask '{path}' does not exist.");
        return Decode(File.ReadAllBytes(path), path, out height, out width);
    }

    /// <summary>Decodes mask PNG bytes; <paramref name="source"/> names them in errors.</summary>
    public static byte[] Decode(byte[] png, string source, out int height, out int width)
    {
        var header = ReadHeader(png, source);
        var rgba = DecodeRgba(png, source, out height, out width);
        var ids = new byte[height * width];
        switch (header.ColourType)
        {
            case 3: // indexed: map colours back through the file's own palette
                var lookup = new Dictionary<int, byte>();
                for (int i = header.Palette.Length - 1; i >= 0; i--) lookup[Pack(header.Palette[i])] = (byte)i; // the first index wins on duplicate colours
                MapColours(rgba, ids, lookup, source, width, "the file's palette");
                break;
            case 0 or 4: // grayscale (with alpha): the gray level is the class id
                if (header.BitDepth == 16) throw new DataException($"Mask '{source}' is a 16-bit grayscale PNG; save masks as 8-bit grayscale or indexed PNGs.");
                int levels = (1 << header.BitDepth) - 1;   // Skia expands 1/2/4-bit gray to 0..255
                for (int i = 0; i < ids.Length; i++) ids[i] = (byte)(rgba[4 * i] * levels / 255);
                break;
            default:   // true colour: masks painted in the VOC palette
                var voc = new Dictionary<int, byte>();
                for (int i = VocPalette.Count - 1; i >= 0; i--) voc[Pack(VocPalette[i])] = (byte)i;
                MapColours(rgba, ids, voc, source, width, "the PASCAL VOC palette");
                break;
        }
        return ids;
    }

    /// <summary>Writes class ids <c>[height, width]</c> as an 8-bit indexed PNG (VOC palette unless given), atomically.</summary>
    public static void Write(string path, ReadOnlySpan<byte> ids, int height, int width, IReadOnlyList<(byte R, byte G, byte B)>? palette = null)
    {
        var bytes = Encode(ids, height, width, palette);
        IO.AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>Encodes class ids <c>[height, width]</c> as an 8-bit indexed PNG (VOC palette unless given).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> ids, int height, int width, IReadOnlyList<(byte R, byte G, byte B)>? palette = null)
    {
        if (ids.Length != height * width) throw new ArgumentException($"{ids.Length} mask values for a {height}x{width} mask.");
        palette ??= VocPalette;
        if (palette.Count is 0 or > 256) throw new ArgumentException($"A PNG palette holds 1 to 256 colours, got {palette.Count}.");
        using var png = new MemoryStream();
        png.Write(Signature);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;  // bit depth
        ihdr[9] = 3;  // colour type: indexed
        WriteChunk(png, "IHDR", ihdr);
        WriteChunk(png, "PLTE", palette.SelectMany(c => new[] { c.R, c.G, c.B }).ToArray());
        using (var raw = new MemoryStream())
        {
            using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
            {
                for (int y = 0; y < height; y++)
                {
                    z.WriteByte(0); // filter type None
                    z.Write(ids.Slice(y * width, width));
                }
            }
            WriteChunk(png, "IDAT", raw.ToArray());
        }
        WriteChunk(png, "IEND", []);
        return png.ToArray();
    }

    private readonly record struct PngHeader(int BitDepth, int ColourType, (byte R, byte G, byte B)[] Palette);

    private static PngHeader ReadHeader(byte[] png, string source)
    {
        if (png.Length < 8 + 25 || !png.AsSpan(0, 8).SequenceEqual(Signature)) throw new DataException($"Mask '{source}' is not a PNG file.");
        int bitDepth = -1, colourType = -1;
        (byte, byte, byte)[] palette = [];
        for (int at = 8; at + 12 <= png.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(at));
            if (length < 0 || at + 12L + length > png.Length) throw new DataException($"Mask '{source}' is a truncated PNG (chunk at byte {at}).");
            var type = System.Text.Encoding.ASCII.GetString(png, at + 4, 4);
            var data = png.AsSpan(at + 8, length);
            if (type == "IHDR") { bitDepth = data[8]; colourType = data[9]; }
            else if (type == "PLTE")
            {
                palette = new (byte, byte, byte)[length / 3];
                for (int i = 0; i < palette.Length; i++) palette[i] = (data[3 * i], data[3 * i + 1], data[3 * i + 2]);
            }
            else if (type is "IDAT" or "IEND") break; // PLTE precedes the image data
            at += 12 + length;
        }
        if (colourType < 0) throw new DataException($"Mask '{source}' has no IHDR chunk.");
        if (colourType == 3 && palette.Length == 0) throw new DataException($"Mask '{source}' is an indexed PNG without a PLTE chunk.");
        return new PngHeader(bitDepth, colourType, palette);
    }

    private static byte[] DecodeRgba(byte[] png, string source, out int height, out int width)
    {
        using var codec = SKCodec.Create(new SKMemoryStream(png)) ?? throw new DataException($"Mask '{source}' could not be decoded as a PNG.");
        ImageFile.CheckSize($"Mask '{source}'", codec.Info.Width, codec.Info.Height);
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result == SKCodecResult.IncompleteInput) throw new DataException($"Mask '{source}' is a truncated PNG.");
        if (result != SKCodecResult.Success) throw new DataException($"Mask '{source}' could not be decoded: {result}.");
        var rgba = SkiaPixels.Read(bitmap);
        (height, width) = (info.Height, info.Width);
        return rgba;
    }

    private static void MapColours(byte[] rgba, byte[] ids, Dictionary<int, byte> lookup, string source, int width, string paletteName)
    {
        for (int i = 0; i < ids.Length; i++)
        {
            int key = (rgba[4 * i] << 16) | (rgba[4 * i + 1] << 8) | rgba[4 * i + 2];
            if (!lookup.TryGetValue(key, out ids[i]))
                throw new DataException($"Mask '{source}': pixel (x {i % width}, y {i / width}) has colour ({rgba[4 * i]}, {rgba[4 * i + 1]}, {rgba[4 * i + 2]}), which is not in {paletteName}.");
        }
    }

    private static int Pack((byte R, byte G, byte B) c) => (c.R << 16) | (c.G << 8) | c.B;

    private static void WriteChunk(Stream png, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        png.Write(word);
        var typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        png.Write(typeBytes);
        png.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typeBytes, data));
        png.Write(word);
    }

    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    // PNG's CRC-32 (ISO 3309) over the chunk type and data.
    private static uint Crc32(byte[] type, byte[] data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var b in type) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        foreach (var b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
