namespace Crate.Core.Weights;

/// <summary>A safetensors file is malformed or does not match what was expected; the message names the file and the tensor.</summary>
public sealed class SafetensorsException : Exception
{
    /// <summary>Creates the exception with a specific message.</summary>
    public SafetensorsException(string message) : base(message) { }
    /// <summary>Creates the exception with a specific message and its cause.</summary>
    public SafetensorsException(string message, Exception inner) : base(message, inner) { }
}
