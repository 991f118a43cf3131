using Crate.Core.Model;
using Crate.Onnx.Runtime;

namespace Crate.MLNet.Internal;

/// <summary>An exported Crate ONNX model: its bytes and the configuration read from its metadata.</summary>
internal sealed record ExportedModel(byte[] Bytes, CrateConfig Config, string Source)
{
    /// <summary>Reads and checks an exported model (ONNX Runtime opens it once to validate it).</summary>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="CrateOnnxException">The file is not a Crate ONNX model.</exception>
    public static ExportedModel Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Crate ONNX model '{path}' does not exist.", path);
        return FromBytes(File.ReadAllBytes(path), path);
    }

    /// <summary>Checks exported model bytes; <paramref name="source"/> names them in errors.</summary>
    public static ExportedModel FromBytes(byte[] bytes, string source)
    {
        using var model = CrateOnnxModel.Load(bytes, source: source);
        return new ExportedModel(bytes, model.Config, source);
    }
}
