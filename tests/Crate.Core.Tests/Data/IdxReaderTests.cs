using System.IO.Compression;
using Crate.Core.Data;

namespace Crate.Core.Tests.Data;

public class IdxReaderTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("crate-idx-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private (string Images, string Labels) WriteSet(string suffix, int count = 5)
    {
        var pixels = Enumerable.Range(0, count * 3 * 2).Select(i => (byte)(i * 7)).ToArray();
        var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 3)).ToArray();
        var images = Path.Combine(_dir, "images" + suffix);
        var labelFile = Path.Combine(_dir, "labels" + suffix);
        IdxReader.Write(images, [count, 3, 2], pixels);
        IdxReader.Write(labelFile, [count], labels);
        return (images, labelFile);
    }

    [TestCase("")]
    [TestCase(".gz")]
    public void Round_trip_keeps_dimensions_pixels_and_labels(string suffix)
    {
        var (images, labels) = WriteSet(suffix);
        if (suffix == ".gz")
        {
            using var probe = File.OpenRead(images);
            Assert.That((probe.ReadByte(), probe.ReadByte()), Is.EqualTo((0x1f, 0x8b)), "a .gz path is written gzipped");
        }
        var (dims, data) = IdxReader.Read(images);
        Assert.That(dims, Is.EqualTo(new[] { 5, 3, 2 }));
        Assert.That(data, Is.EqualTo(Enumerable.Range(0, 30).Select(i => (byte)(i * 7))));
        var set = IdxReader.ReadDataset(images, labels, ["a", "b", "c"]);
        Assert.That((set.Count, set.Channels, set.Height, set.Width), Is.EqualTo((5, 1, 3, 2)));
        Assert.That(set.Labels.ToArray(), Is.EqualTo(new[] { 0, 1, 2, 0, 1 }));
        Assert.That(set.Image(4).ToArray(), Is.EqualTo(Enumerable.Range(24, 6).Select(i => (byte)(i * 7))));
    }

    [Test]
    public void Truncated_file_names_the_file_and_the_sizes()
    {
        var (images, _) = WriteSet("");
        var bytes = File.ReadAllBytes(images);
        File.WriteAllBytes(images, bytes[..^4]);
        var e = Assert.Throws<DataException>(() => IdxReader.Read(images))!;
        Assert.That(e.Message, Is.EqualTo($"IDX file '{images}' is {bytes.Length - 4} bytes; its header [5, 3, 2] requires {bytes.Length} (truncated or wrong file?)."));
    }

    [Test]
    public void Wrong_magic_and_corrupt_gzip_are_named()
    {
        var path = Path.Combine(_dir, "notidx");
        File.WriteAllBytes(path, [0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0]);
        Assert.That(Assert.Throws<DataException>(() => IdxReader.Read(path))!.Message, Does.Contain($"'{path}' has magic number 0x504B0304"));

        var gz = Path.Combine(_dir, "broken.gz");
        File.WriteAllBytes(gz, [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]);
        Assert.That(Assert.Throws<DataException>(() => IdxReader.Read(gz))!.Message, Does.StartWith($"IDX file '{gz}' is not valid gzip data"));
    }

    [Test]
    public void Label_outside_the_classes_names_file_and_row()
    {
        var (images, labels) = WriteSet("");
        var e = Assert.Throws<DataException>(() => IdxReader.ReadDataset(images, labels, ["a", "b"]))!;
        Assert.That(e.Message, Is.EqualTo($"IDX labels file '{labels}', row 2: label 2 is outside the 2 classes."));
    }

    [Test]
    public void Count_mismatch_between_images_and_labels_is_reported()
    {
        var (images, _) = WriteSet("");
        var labels = Path.Combine(_dir, "four-labels");
        IdxReader.Write(labels, [4], new byte[4]);
        Assert.That(Assert.Throws<DataException>(() => IdxReader.ReadDataset(images, labels))!.Message,
            Is.EqualTo($"IDX images '{images}' hold 5 images but labels '{labels}' hold 4 labels."));
    }
}
