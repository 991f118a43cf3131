using Crate.Core.Data;
using Crate.Core.Data.Segmentation;
using SkiaSharp;

namespace Crate.Core.Tests.Segmentation;

public class SegmentationFolderTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("crate-seg-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static SegmentationDataset Scenes(int count, int seed = 3) =>
        SceneGenerator.Generate(ObjectBank.Shapes(50, seed), count, new SceneOptions { Size = 32, MinScale = 0.5, MaxScale = 0.9, Seed = seed }, "test");

    [Test]
    public void SavedScenesReadBackIdentically()
    {
        var scenes = Scenes(5);
        scenes.Save(_dir);
        var read = SegmentationFolder.Read(_dir, new SegmentationFolder.Options { Channels = 1 });
        Assert.That(read.Count, Is.EqualTo(5));
        Assert.That(read.ClassNames, Is.EqualTo(scenes.ClassNames));
        for (int i = 0; i < 5; i++)
        {
            Assert.That(read.Image(i).ToArray(), Is.EqualTo(scenes.Image(i).ToArray()), $"image {i}");
            Assert.That(read.Mask(i).ToArray(), Is.EqualTo(scenes.Mask(i).ToArray()), $"mask {i}");
            Assert.That(read.Label(i), Is.EqualTo(scenes.Label(i)));
        }
    }

    [Test]
    public void IgnoreIndexIsKeptAndNotCountedForTheLabel()
    {
        WritePair("a", 4, 3, [0, 1, 2, 255, 255, 255, 255, 255, 2, 2, 0, 0]);
        var read = SegmentationFolder.Read(Path.Combine(_dir, "images"), Path.Combine(_dir, "masks"),
            new SegmentationFolder.Options { ClassNames = ["background", "a", "b"] });
        Assert.That(read.Mask(0).ToArray()[3], Is.EqualTo(SegmentationDataset.IgnoreIndex));
        Assert.That(read.Label(0), Is.EqualTo(1), "class 2 covers 3 pixels, class 1 one; ignored pixels count for none");
        Assert.That(read.Channels, Is.EqualTo(3));
    }

    [Test]
    public void UnknownClassIdNamesTheMask()
    {
        WritePair("b", 4, 3, [0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        var e = Assert.Throws<DataException>(() => SegmentationFolder.Read(Path.Combine(_dir, "images"), Path.Combine(_dir, "masks"),
            new SegmentationFolder.Options { ClassNames = ["background", "a", "b"] }));
        Assert.That(e!.Message, Does.Contain("b.png").And.Contain("class id 7").And.Contain("x 2, y 0"));
    }

    [Test]
    public void ImageAndMaskOfDifferentSizesAreRejectedByName()
    {
        WritePair("c", 4, 3, new byte[12], imageWidth: 5);
        var e = Assert.Throws<DataException>(() => SegmentationFolder.Read(Path.Combine(_dir, "images"), Path.Combine(_dir, "masks")));
        Assert.That(e!.Message, Does.Contain("c.png").And.Contain("5x3").And.Contain("4x3"));
    }

    [Test]
    public void DifferentSizedPairsNeedResizingAndResizeNearest()
    {
        WritePair("d1", 4, 4, Enumerable.Repeat((byte)1, 16).ToArray());
        WritePair("d2", 2, 2, [0, 1, 2, 255]);
        var images = Path.Combine(_dir, "images");
        var masks = Path.Combine(_dir, "masks");
        var classes = new[] { "background", "a", "b" };
        var e = Assert.Throws<DataException>(() => SegmentationFolder.Read(images, masks, new SegmentationFolder.Options { ClassNames = classes }));
        Assert.That(e!.Message, Does.Contain("d2.jpg").And.Contain("2x2"));
        var read = SegmentationFolder.Read(images, masks, new SegmentationFolder.Options { ClassNames = classes, Size = 4 });
        // Nearest neighbour 2x2 -> 4x4: every source pixel becomes a 2x2 block, ids never blended.
        Assert.That(read.Mask(1).ToArray(), Is.EqualTo(new byte[] { 0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 255, 255, 2, 2, 255, 255 }));
    }

    [Test]
    public void MaskWithoutImageIsNamed()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "images"));
        MaskPng.Write(Path.Combine(_dir, "masks", "lonely.png"), new byte[4], 2, 2);
        var e = Assert.Throws<DataException>(() => SegmentationFolder.Read(_dir));
        Assert.That(e!.Message, Does.Contain("lonely.png").And.Contain("no image"));
    }

    [Test]
    public void A_huge_image_beside_its_mask_is_refused_before_decoding()
    {
        WritePair("e", 4, 3, new byte[12]);
        var image = Path.Combine(_dir, "images", "e.jpg");
        File.Delete(image);
        var huge = Path.Combine(_dir, "images", "e.bmp");
        File.WriteAllBytes(huge, BadFiles.BmpHeader(20_000, 10_000));
        var e = Assert.Throws<DataException>(() => SegmentationFolder.Read(_dir));
        Assert.That(e!.Message, Is.EqualTo($"Image '{huge}' is 20000x10000 (200 megapixels); Crate decodes images of at most 100 megapixels. Downscale it first."));
    }

    [Test]
    public void A_channel_count_other_than_gray_or_rgb_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => SegmentationFolder.Read(_dir, new SegmentationFolder.Options { Channels = 4 }));
        Assert.That(e!.Message, Is.EqualTo("Images can be read with 1 (grayscale) or 3 (RGB) channels, not 4."));
    }

    private void WritePair(string stem, int width, int height, byte[] ids, int? imageWidth = null)
    {
        Directory.CreateDirectory(Path.Combine(_dir, "images"));
        MaskPng.Write(Path.Combine(_dir, "masks", stem + ".png"), ids, height, width);
        using var bitmap = new SKBitmap(new SKImageInfo(imageWidth ?? width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        bitmap.Erase(new SKColor(10, 200, 30));
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 95);
        File.WriteAllBytes(Path.Combine(_dir, "images", stem + ".jpg"), data.ToArray());
    }
}
