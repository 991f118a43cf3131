namespace Crate.Core.IO;

/// <summary>
/// A file could not be written because its disk is full. Thrown by <see cref="AtomicFile"/>, which leaves the
/// target as it was (the previous version, or nothing) and removes its temporary file first.
/// </summary>
public sealed class DiskFullException : IOException
{
    // ENOSPC on Linux and macOS (.NET puts the raw errno in HResult on Unix); ERROR_HANDLE_DISK_FULL and ERROR_DISK_FULL on Windows.
    private const int NoSpaceErrno = 28;
    private const int WindowsHandleDiskFull = unchecked((int)0x80070027);
    private const int WindowsDiskFull = unchecked((int)0x80070070);

    /// <summary>Creates the exception for the target <paramref name="path"/>.</summary>
    public DiskFullException(string path, IOException inner)
        : base($"Cannot write '{path}': the disk is full ({FirstClause(inner.Message)}). The file was left as it was, with no partial copy.", inner)
    {
        FilePath = path;
        HResult = inner.HResult;
    }

    /// <summary>The file that was being written.</summary>
    public string FilePath { get; }

    /// <summary>Whether <paramref name="e"/> reports a full disk (by its error code, as the operating system gave it).</summary>
    public static bool IsDiskFull(IOException e) => e is DiskFullException || e.HResult is NoSpaceErrno or WindowsHandleDiskFull or WindowsDiskFull;

    // The runtime appends the temporary file's path (" : '/dir/.x.tmp'"); the target path is named instead.
    private static string FirstClause(string message)
    {
        int at = message.IndexOf(" : '", StringComparison.Ordinal);
        return at > 0 ? message[..at] : message.TrimEnd('.');
    }
}
