using Crate.Core.Data;

namespace Crate.Core.Tests.Data;

/// <summary>IDX failures beyond those in ../IdxReaderTests.cs: exact truncation sizes, broken gzip, count mismatch.</summary>
public class IdxReaderFailureTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("crate-idx-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private (string Images, string Labels) WriteSet(int count = 5)
    {
        var pixels = Enumerable.Range(0, count * 3 * 2).Select(i => (byte)(i * 7)).ToArray();
        var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 3)).ToArray();
        var images = Path.Combine(_dir, "images");
        var labelFile = Path.Combine(_dir, "labels");
        IdxReader.Write(images, [count, 3, 2], pixels);
        IdxReader.Write(labelFile, [count], labels);
        return (images, labelFile);
    }

    [Test]
    public void Truncated_file_names_the_file_and_the_sizes()
    {
        var (images, _) = WriteSet();
        var bytes = File.ReadAllBytes(images);
        File.WriteAllBytes(images, bytes[..^4]);
        var e = Assert.Throws<DataException>(() => IdxReader.Read(images))!;
        Assert.That(e.Message, Is.EqualTo($"IDX file '{images}' is {bytes.Length - 4} bytes; its header [5, 3, 2] requires {bytes.Length} (truncated or wrong file?)."));
    }

    [Test]
    public void Corrupt_gzip_is_named()
    {
        var gz = Path.Combine(_dir, "broken.gz");
        File.WriteAllBytes(gz, [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]);
        Assert.That(Assert.Throws<DataException>(() => IdxReader.Read(gz))!.Message, Does.StartWith($"IDX file '{gz}' is not valid gzip data"));
    }

    [Test]
    public void Count_mismatch_between_images_and_labels_is_reported()
    {
        var (images, _) = WriteSet();
        var labels = Path.Combine(_dir, "four-labels");
        IdxReader.Write(labels, [4], new byte[4]);
        Assert.That(Assert.Throws<DataException>(() => IdxReader.ReadDataset(images, labels))!.Message,
            Is.EqualTo($"IDX images '{images}' hold 5 images but labels '{labels}' hold 4 labels."));
    }
}
