using Crate.Core.Model;
using Crate.Core.Weights;

namespace Crate.Core.Tests;

/// <summary>Random mutations of a valid weights file: the reader may only ever fail with its own exception type.</summary>
public class SafetensorsFuzzTests
{
    [Test]
    public void MutatedFilesFailOnlyWithSafetensorsException([Values(1, 2, 3)] int seed)
    {
        var config = new CrateConfig { Dim = 8, Depth = 1, Heads = 2, DimHead = 4, ImageHeight = 4, ImageWidth = 4, PatchSize = 2, Channels = 1, NumClasses = 2 };
        var tensors = CrateWeights.Layout(config).Select(p => NamedTensor.FromFloats(p.Name, p.Shape, new float[NamedTensor.ElementCount(p.Shape)]));
        var valid = Safetensors.Serialize(tensors, new Dictionary<string, string> { [CrateWeights.ConfigKey] = config.ToJson() });
        int headerEnd = 8 + (int)BitConverter.ToUInt64(valid, 0);
        var random = new Random(seed);
        int rejected = 0, accepted = 0;
        for (int round = 0; round < 2000; round++)
        {
            var bytes = (byte[])valid.Clone();
            switch (random.Next(5))
            {
                case 0: // flip bytes, mostly in the header where structure lives
                    for (int k = random.Next(1, 4); k > 0; k--) bytes[random.Next(random.Next(2) == 0 ? headerEnd : bytes.Length)] ^= (byte)random.Next(1, 256);
                    break;
                case 1: // truncate
                    bytes = bytes[..random.Next(bytes.Length)];
                    break;
                case 2: // overwrite the header length
                    BitConverter.GetBytes((ulong)random.NextInt64()).CopyTo(bytes, 0);
                    break;
                case 3: // replace a digit in the header (shapes, offsets)
                    var digits = Enumerable.Range(8, headerEnd - 8).Where(i => bytes[i] is >= (byte)'0' and <= (byte)'9').ToArray();
                    bytes[digits[random.Next(digits.Length)]] = (byte)('0' + random.Next(10));
                    break;
                default: // append garbage
                    bytes = [.. bytes, .. Enumerable.Range(0, random.Next(1, 64)).Select(_ => (byte)random.Next(256))];
                    break;
            }
            try
            {
                var file = Safetensors.Parse(bytes, "fuzz");
                CrateWeights.Create(config, file.Tensors, file.Metadata, "fuzz").Tensors.ToList().ForEach(t => t.ToFloats());
                accepted++;
            }
            catch (SafetensorsException) { rejected++; }
        }
        Assert.That(rejected, Is.GreaterThan(1000), "most mutations must be detected");
        TestContext.Out.WriteLine($"rejected {rejected}, accepted {accepted} (harmless mutations, e.g. flipped weight bytes)");
    }
}
