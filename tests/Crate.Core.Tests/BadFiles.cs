using System.Buffers.Binary;

namespace Crate.Core.Tests;

/// <summary>Small files built in code for the bad-input tests.</summary>
internal static class BadFiles
{
    /// <summary>
    /// The 54-byte header of a 24-bit BMP claiming <paramref name="width"/> x <paramref name="height"/> pixels, with no pixel
    /// data after it: what a reader sees of a huge image before decoding (BMP, unlike PNG, has no checksums to forge).
    /// </summary>
    public static byte[] BmpHeader(int width, int height)
    {
        var header = new byte[54];
        header[0] = (byte)'B';
        header[1] = (byte)'M';
        long rowBytes = (width * 3L + 3) / 4 * 4;
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(2), (uint)Math.Min(uint.MaxValue, 54 + rowBytes * height)); // file size
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(10), 54);       // pixel data offset
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(14), 40);       // BITMAPINFOHEADER
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(header.AsSpan(26), 1);        // planes
        BinaryPrimitives.WriteInt16LittleEndian(header.AsSpan(28), 24);       // bits per pixel
        return header;
    }
}
