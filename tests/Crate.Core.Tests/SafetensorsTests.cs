using System.Buffers.Binary;
using System.Text;
using Crate.Core.Model;
using Crate.Core.Weights;

namespace Crate.Core.Tests;

public class SafetensorsTests
{
    private static readonly CrateConfig Small = new() { Dim = 8, Depth = 2, Heads = 2, DimHead = 4, ImageHeight = 8, ImageWidth = 8, PatchSize = 4, Channels = 1, NumClasses = 3 };

    private static CrateWeights RandomWeights(CrateConfig config, int seed = 1)
    {
        var random = new Random(seed);
        var tensors = CrateWeights.Layout(config).Select(p =>
            NamedTensor.FromFloats(p.Name, p.Shape, Enumerable.Range(0, (int)NamedTensor.ElementCount(p.Shape)).Select(_ => (float)random.NextDouble() - 0.5f).ToArray()));
        return CrateWeights.Create(config, tensors, new Dictionary<string, string> { ["note"] = "test" });
    }

    private string _dir = "";

    [SetUp]
    public void MakeDirectory() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "crate-st-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void WriteReadWriteIsByteExact()
    {
        var path = Path.Combine(_dir, "w.safetensors");
        var weights = RandomWeights(Small);
        weights.Save(path);
        var first = File.ReadAllBytes(path);
        var loaded = CrateWeights.Load(path);
        Assert.That(loaded.Config, Is.EqualTo(Small).Using<CrateConfig>((a, b) => a.ToJson() == b.ToJson()));
        Assert.That(loaded.Metadata["note"], Is.EqualTo("test"));
        var again = Path.Combine(_dir, "again.safetensors");
        loaded.Save(again);
        Assert.That(File.ReadAllBytes(again), Is.EqualTo(first));
        foreach (var (name, _) in CrateWeights.Layout(Small)) Assert.That(loaded.Floats(name), Is.EqualTo(weights.Floats(name)), name);
    }

    [Test]
    public void LayoutFollowsTheFormat()
    {
        var bytes = Safetensors.Serialize([NamedTensor.FromFloats("a", [2], [1f, -2f])], new Dictionary<string, string> { ["k"] = "v" });
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.That(n % 8, Is.EqualTo(0UL), "data starts 8-byte aligned");
        var header = Encoding.UTF8.GetString(bytes, 8, (int)n).TrimEnd(' ');
        Assert.That(header, Is.EqualTo("{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"));
        Assert.That(BitConverter.ToSingle(bytes, 8 + (int)n + 4), Is.EqualTo(-2f));
    }

    [Test]
    public void DataParallelModulePrefixIsStripped()
    {
        var weights = RandomWeights(Small);
        var prefixed = weights.Tensors.Select(t => new NamedTensor("module." + t.Name, t.DType, t.Shape, t.Data));
        var loaded = CrateWeights.Create(Small, prefixed);
        Assert.That(loaded.Floats("cls_token"), Is.EqualTo(weights.Floats("cls_token")));
    }

    [Test]
    public void TruncatedFileNamesTheFileAndTheProblem()
    {
        var path = Path.Combine(_dir, "cut.safetensors");
        RandomWeights(Small).Save(path);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 10)]);
        var error = Assert.Throws<SafetensorsException>(() => CrateWeights.Load(path));
        Assert.That(error!.Message, Does.Contain(path).And.Contain("truncated"));

        File.WriteAllBytes(path, bytes[..100]);
        error = Assert.Throws<SafetensorsException>(() => CrateWeights.Load(path));
        Assert.That(error!.Message, Does.Contain("header claims").And.Contain("truncated"));

        File.WriteAllBytes(path, bytes[..5]);
        error = Assert.Throws<SafetensorsException>(() => Safetensors.Read(path));
        Assert.That(error!.Message, Does.Contain("5 bytes long"));
    }

    [Test]
    public void WrongShapedMissingAndUnexpectedTensorsAreAllNamed()
    {
        var tensors = RandomWeights(Small).Tensors.Where(t => t.Name != "cls_token")
            .Select(t => t.Name == "mlp_head.1.weight" ? NamedTensor.FromFloats(t.Name, [4, 8], new float[32]) : t)
            .Append(NamedTensor.FromFloats("extra.weight", [1], [0f]));
        var error = Assert.Throws<SafetensorsException>(() => CrateWeights.Create(Small, tensors, source: "x.safetensors"));
        Assert.That(error!.Message, Does.Contain("x.safetensors")
            .And.Contain("missing: cls_token")
            .And.Contain("unexpected: extra.weight")
            .And.Contain("mlp_head.1.weight is [4, 8], expected [3, 8]"));
    }

    [Test]
    public void OverlappingOffsetsAndBadDtypesAreRejected()
    {
        static byte[] File(string header, int dataBytes)
        {
            var h = Encoding.UTF8.GetBytes(header);
            var bytes = new byte[8 + h.Length + dataBytes];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
            h.CopyTo(bytes, 8);
            return bytes;
        }
        var overlap = File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        Assert.That(() => Safetensors.Parse(overlap, "o"), Throws.TypeOf<SafetensorsException>().With.Message.Contains("overlap"));
        var dtype = File("{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
        Assert.That(() => Safetensors.Parse(dtype, "d"), Throws.TypeOf<SafetensorsException>().With.Message.Contains("unsupported dtype 'Q7'"));
        var size = File("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
        Assert.That(() => Safetensors.Parse(size, "s"), Throws.TypeOf<SafetensorsException>().With.Message.Contains("needs 12 bytes"));
        var json = File("{\"a\":", 0);
        Assert.That(() => Safetensors.Parse(json, "j"), Throws.TypeOf<SafetensorsException>().With.Message.Contains("not JSON"));
        var ints = File("{\"cls_token\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
        Assert.That(() => Safetensors.Parse(ints, "i").Tensors[0].ToFloats(), Throws.TypeOf<SafetensorsException>().With.Message.Contains("I64"));
    }

    [Test]
    public void HalfPrecisionAndBFloat16ConvertToFloat32()
    {
        var half = new NamedTensor("h", DType.F16, [2], [0x00, 0x3C, 0x00, 0xC0]);          // 1.0, -2.0
        Assert.That(half.ToFloats(), Is.EqualTo(new[] { 1f, -2f }));
        var bf16 = new NamedTensor("b", DType.BF16, [2], [0x80, 0x3F, 0x40, 0xC0]);         // 1.0, -3.0
        Assert.That(bf16.ToFloats(), Is.EqualTo(new[] { 1f, -3f }));
    }

    [Test]
    public void A_checkpoint_of_another_preset_is_refused_naming_the_file_and_the_mismatched_tensors()
    {
        // A converted reference checkpoint (no configuration inside) of CRATE-tiny, read as CRATE-small.
        CrateConfig Input(CrateConfig preset) => preset with { ImageHeight = 16, ImageWidth = 16, PatchSize = 16, Channels = 1, NumClasses = 2 };
        var tiny = Input(CratePresets.Tiny);
        var path = Path.Combine(_dir, "crate_tiny.safetensors");
        Safetensors.Write(path, CrateWeights.Layout(tiny).Select(p => NamedTensor.FromFloats(p.Name, p.Shape, new float[NamedTensor.ElementCount(p.Shape)])));

        var small = Input(CratePresets.Small);
        var e = Assert.Throws<SafetensorsException>(() => CrateWeights.Load(path, small))!;
        Assert.That(e.Message, Does.StartWith($"Weights '{path}' do not match {small}: wrong shape: pos_embedding is [1, 2, 384], expected [1, 2, 576], "));
        Assert.That(e.Message, Does.EndWith(" and 93 more."), "all 105 mismatched tensors are counted");
        Assert.That(CrateWeights.Load(path, tiny).Config.Dim, Is.EqualTo(384), "the right preset reads it");
    }

    [Test]
    public void MissingConfigurationAsksForThePreset()
    {
        var path = Path.Combine(_dir, "bare.safetensors");
        Safetensors.Write(path, RandomWeights(Small).Tensors);
        var error = Assert.Throws<SafetensorsException>(() => CrateWeights.Load(path));
        Assert.That(error!.Message, Does.Contain("no CRATE configuration"));
        Assert.That(CrateWeights.Load(path, Small).Config.Dim, Is.EqualTo(8));
    }

    [Test]
    public void AViTBaselineFileIsNotTakenForCrateWeights()
    {
        var path = Path.Combine(_dir, "vit.safetensors");
        Safetensors.Write(path, RandomWeights(Small).Tensors, new Dictionary<string, string>
        {
            [CrateWeights.ConfigKey] = Small.ToJson(), [Crate.Core.Segmentation.SegmentationCheckpointFormat.ArchitectureKey] = "vit",
        });
        var error = Assert.Throws<SafetensorsException>(() => CrateWeights.Load(path));
        Assert.That(error!.Message, Is.EqualTo($"Weights '{path}' hold a vit network (the ViT baseline), not CRATE; 'crate analyze' reads both."));
    }
}
