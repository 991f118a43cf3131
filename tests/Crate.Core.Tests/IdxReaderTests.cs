using Crate.Core.Data;

namespace Crate.Core.Tests;

public class IdxReaderTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDirectory() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "crate-idx-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    [TestCase(".gz")]
    [TestCase("")]
    public void RoundTripGzippedOrPlain(string suffix)
    {
        var images = Enumerable.Range(0, 3 * 4 * 5).Select(i => (byte)(i * 7)).ToArray();
        var labels = new byte[] { 2, 0, 1 };
        var imagesPath = Path.Combine(_dir, "images" + suffix);
        var labelsPath = Path.Combine(_dir, "labels" + suffix);
        IdxReader.Write(imagesPath, [3, 4, 5], images);
        IdxReader.Write(labelsPath, [3], labels);
        var ds = IdxReader.ReadDataset(imagesPath, labelsPath, ["a", "b", "c"]);
        Assert.That((ds.Count, ds.Channels, ds.Height, ds.Width), Is.EqualTo((3, 1, 4, 5)));
        Assert.That(ds.Label(0), Is.EqualTo(2));
        Assert.That(ds.Image(2).ToArray(), Is.EqualTo(images[40..60]));
    }

    [Test]
    public void WrongMagicAndLengthAreNamed()
    {
        var path = Path.Combine(_dir, "bad");
        File.WriteAllBytes(path, [0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 5]);
        Assert.That(() => IdxReader.Read(path), Throws.TypeOf<DataException>().With.Message.Contains(path).And.Message.Contains("magic number 0x12340801"));
        File.WriteAllBytes(path, [0, 0, 0x08, 0x01, 0, 0, 0, 3, 5]);
        Assert.That(() => IdxReader.Read(path), Throws.TypeOf<DataException>().With.Message.Contains("requires 11"));
    }

    [Test]
    public void LabelOutsideTheClassesNamesTheRow()
    {
        IdxReader.Write(Path.Combine(_dir, "i"), [2, 1, 1], [0, 0]);
        IdxReader.Write(Path.Combine(_dir, "l"), [2], [0, 9]);
        Assert.That(() => IdxReader.ReadDataset(Path.Combine(_dir, "i"), Path.Combine(_dir, "l"), ["x", "y"]),
            Throws.TypeOf<DataException>().With.Message.Contains("row 1: label 9"));
    }

    [Test]
    public void FashionMnistFromDebianHasTheDocumentedShape()
    {
        if (!File.Exists(Path.Combine(IdxReader.FashionMnistDirectory, "t10k-images-idx3-ubyte.gz")))
            Assert.Fail("dataset-fashion-mnist is not installed: run scripts/setup.sh");
        var test = IdxReader.FashionMnist(train: false);
        Assert.That((test.Count, test.Height, test.Width, test.ClassNames.Count), Is.EqualTo((10_000, 28, 28, 10)));
        Assert.That(Enumerable.Range(0, 10).Select(c => test.Labels.ToArray().Count(l => l == c)), Is.All.EqualTo(1000));
    }
}
