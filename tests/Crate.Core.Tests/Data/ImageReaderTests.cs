using Crate.Core.Data;
using SkiaSharp;

namespace Crate.Core.Tests.Data;

public class ImageReaderTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("crate-images-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    /// <summary>A 6x4 image whose pixels differ by position and <paramref name="seed"/>; gray, or RGB with distinct channels.</summary>
    private static byte[] Pattern(int seed, int channels) =>
        Enumerable.Range(0, channels * 24).Select(i => (byte)((i * 37 + seed * 11) % 256)).ToArray();

    private string Png(string relative, int seed, int channels = 1, int height = 4, int width = 6)
    {
        var path = Path.Combine(_dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var pixels = Enumerable.Range(0, channels * height * width).Select(i => (byte)((i * 37 + seed * 11) % 256)).ToArray();
        ImageFile.SavePng(path, pixels, channels, height, width);
        return path;
    }

    [Test]
    public void A_huge_image_is_refused_from_its_header_naming_the_file_and_the_limit()
    {
        Png("set/a/small.png", 1);
        // A BMP header claiming 12000x9000 pixels (108 megapixels) and no pixel data: refused before anything is allocated.
        var huge = Path.Combine(_dir, "set/a/huge.bmp");
        File.WriteAllBytes(huge, BadFiles.BmpHeader(12_000, 9_000));
        var e = Assert.Throws<DataException>(() => ImageReader.ReadFolder(Path.Combine(_dir, "set")));
        Assert.That(e!.Message, Is.EqualTo($"Image '{huge}' is 12000x9000 (108 megapixels); Crate decodes images of at most 100 megapixels. Downscale it first."));

        var skipped = ImageReader.ReadFolder(Path.Combine(_dir, "set"), new ImageReadOptions { SkipInvalid = true });
        Assert.That(skipped.Data.Count, Is.EqualTo(1));
        Assert.That(skipped.Skipped, Is.EqualTo(new[] { e.Message }));
    }

    [Test]
    public void A_truncated_jpeg_is_named_as_corrupt()
    {
        var path = Path.Combine(_dir, "set/a/photo.jpg");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using (var bitmap = new SKBitmap(new SKImageInfo(64, 48, SKColorType.Rgba8888, SKAlphaType.Opaque)))
        {
            for (int y = 0; y < 48; y++) for (int x = 0; x < 64; x++) bitmap.SetPixel(x, y, new SKColor((byte)(x * 4), (byte)(y * 5), 90));
            using var jpeg = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
            var bytes = jpeg.ToArray();
            File.WriteAllBytes(path, bytes[..(bytes.Length * 3 / 4)]);   // the header whole, the scan cut short
        }
        var e = Assert.Throws<DataException>(() => ImageReader.ReadFolder(Path.Combine(_dir, "set")))!;
        Assert.That(e.Message, Is.EqualTo($"Image '{path}' is corrupt: decoding stopped with 'IncompleteInput'."));
    }

    [TestCase(2)]
    [TestCase(4)]
    public void A_channel_count_other_than_gray_or_rgb_is_refused_before_reading(int channels)
    {
        Png("set/a/x.png", 1);
        foreach (var source in new[] { Path.Combine(_dir, "set"), DataSource.Generated })
        {
            var e = Assert.Throws<ArgumentException>(() => DataSource.Load(source, DataSplit.Train, new ImageReadOptions { Channels = channels, Limit = 10 }));
            Assert.That(e!.Message, Is.EqualTo($"Images can be read with 1 (grayscale) or 3 (RGB) channels, not {channels}."), source);
        }
    }

    [Test]
    public void An_empty_data_set_is_named()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "set/a"));
        File.WriteAllText(Path.Combine(_dir, "set/a/readme.txt"), "no images here");
        var folder = Assert.Throws<DataException>(() => ImageReader.ReadFolder(Path.Combine(_dir, "set")));
        Assert.That(folder!.Message, Is.EqualTo($"'{Path.Combine(_dir, "set")}' holds no images."));

        var list = Path.Combine(_dir, "list.csv");
        File.WriteAllText(list, "path,label\n\n");
        var rows = Assert.Throws<DataException>(() => ImageReader.ReadList(list));
        Assert.That(rows!.Message, Is.EqualTo($"'{list}' holds no images."));

        var none = Path.Combine(_dir, "none");
        Directory.CreateDirectory(none);
        var noClasses = Assert.Throws<DataException>(() => ImageReader.ReadFolder(none));
        Assert.That(noClasses!.Message, Is.EqualTo($"Image folder '{none}' has no class subfolders (expected {none}/<class>/<image>.png)."));
    }

    [Test]
    public void Folder_classes_are_subfolders_and_png_pixels_are_exact()
    {
        Png("set/dog/b.png", 1);
        Png("set/cat/a.png", 2);
        Png("set/cat/b.png", 3);
        File.WriteAllText(Path.Combine(_dir, "set/cat/notes.txt"), "ignored: not an image");
        var result = ImageReader.ReadFolder(Path.Combine(_dir, "set"));
        var data = result.Data;
        Assert.That(data.ClassNames, Is.EqualTo(new[] { "cat", "dog" }));
        Assert.That(data.Labels.ToArray(), Is.EqualTo(new[] { 0, 0, 1 }));
        Assert.That((data.Channels, data.Height, data.Width), Is.EqualTo((1, 4, 6)));
        Assert.That(data.Image(0).ToArray(), Is.EqualTo(Pattern(2, 1)));
        Assert.That(data.Image(2).ToArray(), Is.EqualTo(Pattern(1, 1)));
        Assert.That(data.Source(1), Does.EndWith("cat/b.png"));
        Assert.That(result.Skipped, Is.Empty);
    }

    [Test]
    public void Rgb_images_keep_three_planes_and_can_be_read_as_gray()
    {
        Png("rgb/x/a.png", 4, channels: 3);
        var rgb = ImageReader.ReadFolder(Path.Combine(_dir, "rgb")).Data;
        Assert.That(rgb.Channels, Is.EqualTo(3));
        Assert.That(rgb.Image(0).ToArray(), Is.EqualTo(Pattern(4, 3)));

        var gray = ImageReader.ReadFolder(Path.Combine(_dir, "rgb"), new ImageReadOptions { Channels = 1 }).Data;
        var p = Pattern(4, 3);
        var expected = Enumerable.Range(0, 24).Select(i => (byte)Math.Round(0.299 * p[i] + 0.587 * p[24 + i] + 0.114 * p[48 + i]));
        Assert.That(gray.Image(0).ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void Images_are_resized_to_the_requested_size_or_rejected_when_resizing_is_off()
    {
        var big = Path.Combine(_dir, "sizes/a/big.png");
        Directory.CreateDirectory(Path.GetDirectoryName(big)!);
        ImageFile.SavePng(big, Enumerable.Repeat((byte)200, 8 * 8).ToArray(), 1, 8, 8);
        var data = ImageReader.ReadFolder(Path.Combine(_dir, "sizes"), new ImageReadOptions { Height = 4, Width = 4 }).Data;
        Assert.That((data.Height, data.Width), Is.EqualTo((4, 4)));
        Assert.That(data.Image(0).ToArray(), Is.All.EqualTo((byte)200), "a flat image stays flat when resized");

        var e = Assert.Throws<DataException>(() =>
            ImageReader.ReadFolder(Path.Combine(_dir, "sizes"), new ImageReadOptions { Height = 4, Width = 4, Resize = false }))!;
        Assert.That(e.Message, Is.EqualTo($"Image '{big}' is 8x8; expected 4x4."));
    }

    [Test]
    public void Corrupt_and_empty_files_are_named_or_skipped_with_a_count()
    {
        Png("bad/a/good.png", 1);
        var truncated = Png("bad/a/truncated.png", 2, height: 40, width: 40);
        File.WriteAllBytes(truncated, File.ReadAllBytes(truncated)[..60]);
        var empty = Path.Combine(_dir, "bad/b/empty.png");
        Directory.CreateDirectory(Path.GetDirectoryName(empty)!);
        File.WriteAllBytes(empty, []);
        var garbage = Path.Combine(_dir, "bad/b/garbage.jpg");
        File.WriteAllText(garbage, "this is not a JPEG");

        var e = Assert.Throws<DataException>(() => ImageReader.ReadFolder(Path.Combine(_dir, "bad")))!;
        Assert.That(e.Message, Does.StartWith($"Image '{truncated}' is corrupt"));

        var result = ImageReader.ReadFolder(Path.Combine(_dir, "bad"), new ImageReadOptions { SkipInvalid = true });
        Assert.That(result.Data.Count, Is.EqualTo(1));
        Assert.That(result.Data.ClassNames, Is.EqualTo(new[] { "a", "b" }), "a class whose images were all skipped stays a class");
        Assert.That(result.Skipped, Has.Count.EqualTo(3));
        Assert.That(result.Skipped, Has.Some.EqualTo($"Image '{empty}' is empty (0 bytes)."));
        Assert.That(result.Skipped, Has.Some.StartsWith($"Image '{garbage}' is not a readable image"));
    }

    [Test]
    public void Csv_list_resolves_relative_paths_reads_a_header_and_quoted_fields()
    {
        Png("imgs/one.png", 1);
        Png("imgs/two, with comma.png", 2);
        var list = Path.Combine(_dir, "list.csv");
        File.WriteAllLines(list, ["path,label", "imgs/one.png,zebra", "\"imgs/two, with comma.png\",ant", ""]);
        var data = ImageReader.ReadList(list).Data;
        Assert.That(data.ClassNames, Is.EqualTo(new[] { "ant", "zebra" }));
        Assert.That(data.Labels.ToArray(), Is.EqualTo(new[] { 1, 0 }));
        Assert.That(data.Image(1).ToArray(), Is.EqualTo(Pattern(2, 1)));
    }

    [Test]
    public void Tsv_list_with_integer_labels_and_no_header()
    {
        Png("a.png", 1);
        Png("b.png", 2);
        var list = Path.Combine(_dir, "list.tsv");
        File.WriteAllLines(list, [$"{Path.Combine(_dir, "a.png")}\t2", "b.png\t0"]);
        var data = ImageReader.ReadList(list).Data;
        Assert.That(data.ClassNames, Is.EqualTo(new[] { "0", "1", "2" }));
        Assert.That(data.Labels.ToArray(), Is.EqualTo(new[] { 2, 0 }));
    }

    [Test]
    public void Unknown_label_names_the_line_and_the_classes()
    {
        Png("a.png", 1);
        var list = Path.Combine(_dir, "list.csv");
        File.WriteAllLines(list, ["path,label", "a.png,cat", "a.png,zebra"]);
        var e = Assert.Throws<DataException>(() => ImageReader.ReadList(list, new ImageReadOptions { ClassNames = ["cat", "dog"] }))!;
        Assert.That(e.Message, Is.EqualTo($"{list} line 3: label 'zebra' of '{Path.Combine(_dir, "a.png")}' is not one of the 2 classes (cat, dog)."));

        var skipped = ImageReader.ReadList(list, new ImageReadOptions { ClassNames = ["cat", "dog"], SkipInvalid = true });
        Assert.That((skipped.Data.Count, skipped.Skipped.Count), Is.EqualTo((1, 1)));
    }

    [Test]
    public void Missing_image_and_malformed_row_name_the_line()
    {
        Png("a.png", 1);
        var list = Path.Combine(_dir, "list.csv");
        File.WriteAllLines(list, ["a.png,x", "missing.png,x"]);
        var e = Assert.Throws<DataException>(() => ImageReader.ReadList(list))!;
        Assert.That(e.Message, Does.StartWith($"{list} line 2 ('{Path.Combine(_dir, "missing.png")}'): Image '{Path.Combine(_dir, "missing.png")}' cannot be read"));

        File.WriteAllLines(list, ["a.png,x", "a.png"]);
        Assert.That(Assert.Throws<DataException>(() => ImageReader.ReadList(list))!.Message, Is.EqualTo($"{list} line 2: expected 'path,label', got 'a.png'."));
    }

    [Test]
    public void Generated_shapes_are_deterministic_balanced_and_prefix_stable()
    {
        var a = GeneratedShapes.Create(40, seed: 3);
        var b = GeneratedShapes.Create(40, seed: 3);
        var longer = GeneratedShapes.Create(60, seed: 3);
        var other = GeneratedShapes.Create(40, seed: 4);
        Assert.That(b.Image(17).ToArray(), Is.EqualTo(a.Image(17).ToArray()));
        Assert.That(longer.Image(39).ToArray(), Is.EqualTo(a.Image(39).ToArray()));
        Assert.That(other.Image(17).ToArray(), Is.Not.EqualTo(a.Image(17).ToArray()));
        Assert.That(a.Labels.ToArray().GroupBy(l => l).Select(g => g.Count()), Is.All.EqualTo(4));
        var rgb = GeneratedShapes.Create(10, seed: 3, height: 16, width: 20, channels: 3);
        Assert.That((rgb.Channels, rgb.Height, rgb.Width), Is.EqualTo((3, 16, 20)));
    }

    [Test]
    public void Data_source_errors_say_what_is_accepted()
    {
        var e = Assert.Throws<DataException>(() => DataSource.Load(Path.Combine(_dir, "nowhere"), DataSplit.Train))!;
        Assert.That(e.Message, Is.EqualTo($"Data source '{Path.Combine(_dir, "nowhere")}' does not exist: use 'fashion-mnist', 'generated', a folder of class subfolders, or a .csv/.tsv list."));
    }

    [Test]
    public void Folder_with_train_and_test_subfolders_gives_the_split()
    {
        Png("split/train/a/1.png", 1);
        Png("split/train/b/2.png", 2);
        Png("split/test/a/3.png", 3);
        Png("split/test/b/4.png", 4);
        Png("split/test/b/5.png", 5);
        Assert.That(DataSource.Load(Path.Combine(_dir, "split"), DataSplit.Train).Data.Count, Is.EqualTo(2));
        Assert.That(DataSource.Load(Path.Combine(_dir, "split"), DataSplit.Test).Data.Count, Is.EqualTo(3));
        Assert.That(DataSource.HasTestSplit(Path.Combine(_dir, "split")), Is.True);
        Assert.That(DataSource.HasTestSplit(Path.Combine(_dir, "split", "train")), Is.False);
    }

    [Test]
    public void Conform_converts_gray_to_rgb_and_resizes()
    {
        var gray = GeneratedShapes.Create(3, seed: 1, height: 8, width: 8);
        var rgb = DataSource.Conform(gray, new ImageReadOptions { Channels = 3 });
        Assert.That(rgb.Channels, Is.EqualTo(3));
        Assert.That(rgb.Image(2)[128..192].ToArray(), Is.EqualTo(gray.Image(2).ToArray()), "each colour plane is the gray plane");
        var resized = DataSource.Conform(gray, new ImageReadOptions { Height = 16, Width = 12 });
        Assert.That((resized.Height, resized.Width, resized.Count), Is.EqualTo((16, 12, 3)));
        var e = Assert.Throws<DataException>(() => DataSource.Conform(gray, new ImageReadOptions { ClassNames = ["a", "b"] }))!;
        Assert.That(e.Message, Does.Contain("has 10 classes but 2 are expected"));
    }
}
