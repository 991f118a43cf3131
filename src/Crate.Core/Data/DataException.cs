namespace Crate.Core.Data;

/// <summary>Input data is unreadable or inconsistent; the message names the file (and row or image) and what was expected.</summary>
public sealed class DataException : Exception
{
    /// <summary>Creates the exception with a specific message.</summary>
    public DataException(string message) : base(message) { }
    /// <summary>Creates the exception with a specific message and its cause.</summary>
    public DataException(string message, Exception inner) : base(message, inner) { }
}
