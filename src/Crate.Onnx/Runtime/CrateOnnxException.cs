namespace Crate.Onnx.Runtime;

/// <summary>
/// A model file that cannot serve as a Crate model (unreadable, not ONNX, not exported by Crate, or
/// inconsistent), or an execution provider that cannot be had. The message names the file.
/// </summary>
public sealed class CrateOnnxException : Exception
{
    /// <summary>Creates the exception with a message naming the file and the problem.</summary>
    public CrateOnnxException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the runtime error behind it.</summary>
    public CrateOnnxException(string message, Exception inner) : base(message, inner) { }
}
