using Crate.Core.Data;
using Crate.Core.Data.Segmentation;
using SkiaSharp;

namespace Crate.Core.Tests.Segmentation;

public class MaskPngTests
{
    // The ids written into the fixtures by Fixtures/masks/make_fixtures.py (Python zlib, independent of MaskPng).
    private static readonly byte[] FixtureIds = [0, 1, 2, 255, 3, 0, 0, 1, 255, 255, 2, 2];

    private static string Fixture(string name) => Path.Combine(TestContext.CurrentContext.TestDirectory, "Fixtures", "masks", name);

    [Test]
    public void PalettePngWithCustomPaletteReadsAsPaletteIndices()
    {
        var ids = MaskPng.Read(Fixture("palette.png"), out int h, out int w);
        Assert.That((h, w), Is.EqualTo((3, 4)));
        Assert.That(ids, Is.EqualTo(FixtureIds));
    }

    [Test]
    public void GrayscalePngReadsGrayLevelsAsIds()
    {
        var ids = MaskPng.Read(Fixture("gray.png"), out int h, out int w);
        Assert.That((h, w), Is.EqualTo((3, 4)));
        Assert.That(ids, Is.EqualTo(FixtureIds));
    }

    [Test]
    public void VocPaletteHasTheKnownColours()
    {
        // Values from the PASCAL VOC development kit's colour map.
        Assert.That(MaskPng.VocPalette[0], Is.EqualTo(((byte)0, (byte)0, (byte)0)));
        Assert.That(MaskPng.VocPalette[1], Is.EqualTo(((byte)128, (byte)0, (byte)0)));
        Assert.That(MaskPng.VocPalette[2], Is.EqualTo(((byte)0, (byte)128, (byte)0)));
        Assert.That(MaskPng.VocPalette[15], Is.EqualTo(((byte)192, (byte)128, (byte)128)));   // person
        Assert.That(MaskPng.VocPalette[255], Is.EqualTo(((byte)224, (byte)224, (byte)192)));  // ignore
    }

    [Test]
    public void EncodedMaskDecodesInSkiaToVocColoursAndReadsBackToIds()
    {
        var png = MaskPng.Encode(FixtureIds, 3, 4);
        using var bitmap = SKBitmap.Decode(png);   // Skia checks CRCs and zlib: the file is a valid PNG
        Assert.That(bitmap.GetPixel(1, 0), Is.EqualTo(new SKColor(128, 0, 0)));
        Assert.That(bitmap.GetPixel(3, 0), Is.EqualTo(new SKColor(224, 224, 192)));
        Assert.That(MaskPng.Decode(png, "memory", out _, out _), Is.EqualTo(FixtureIds));
    }

    [Test]
    public void RgbMaskInVocColoursMapsToIds()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(4, 3, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int i = 0; i < FixtureIds.Length; i++)
        {
            var (r, g, b) = MaskPng.VocPalette[FixtureIds[i]];
            bitmap.SetPixel(i % 4, i / 4, new SKColor(r, g, b));
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        Assert.That(MaskPng.Decode(data.ToArray(), "rgb.png", out _, out _), Is.EqualTo(FixtureIds));
    }

    [Test]
    public void RgbColourOutsideThePaletteNamesFileAndPixel()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(2, 2, SKColorType.Rgba8888, SKAlphaType.Opaque));
        bitmap.Erase(SKColors.Black);
        bitmap.SetPixel(1, 1, new SKColor(10, 20, 30));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        var e = Assert.Throws<DataException>(() => MaskPng.Decode(data.ToArray(), "odd.png", out _, out _));
        Assert.That(e!.Message, Does.Contain("odd.png").And.Contain("x 1, y 1").And.Contain("(10, 20, 30)"));
    }

    [Test]
    public void NonPngIsRejectedByName()
    {
        var e = Assert.Throws<DataException>(() => MaskPng.Decode(new byte[64], "junk.png", out _, out _));
        Assert.That(e!.Message, Does.Contain("junk.png").And.Contain("not a PNG"));
    }
}
