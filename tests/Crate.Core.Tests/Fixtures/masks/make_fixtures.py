#!/usr/bin/env python3
"""Writes the mask fixtures with Python's zlib alone (independent of the C# PNG code under test).

palette.png: 4x3 8-bit indexed PNG with a custom (non-VOC) palette: entry i = (i, 255 - i, 7*i mod 256).
gray.png:    4x3 8-bit grayscale PNG. Both hold the class ids in IDS (255 = ignore)."""
import struct, zlib

IDS = [[0, 1, 2, 255],
       [3, 0, 0, 1],
       [255, 255, 2, 2]]

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

def png(colour_type, extra_chunks):
    h, w = len(IDS), len(IDS[0])
    raw = b"".join(b"\x00" + bytes(row) for row in IDS)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
            + b"".join(extra_chunks) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

palette = b"".join(bytes([i, 255 - i, (7 * i) % 256]) for i in range(256))
open("palette.png", "wb").write(png(3, [chunk(b"PLTE", palette)]))
open("gray.png", "wb").write(png(0, []))
