using System.Diagnostics;

namespace Crate.Core.IO;

/// <summary>
/// Writes files so that a reader sees either the old complete file or the new complete file, never a
/// partial one: the bytes go to a temporary file beside the target, are flushed to disk, then renamed over it.
/// </summary>
public static class AtomicFile
{
    private const string TemporarySuffix = ".tmp";
    private static readonly AsyncLocal<Func<string, Stream>?> OpenerOverride = new();

    /// <summary>Writes <paramref name="write"/>'s output to <paramref name="path"/> atomically.</summary>
    /// <exception cref="DiskFullException">The disk filled up; the target is untouched and the temporary file removed.</exception>
    /// <exception cref="IOException">Writing failed otherwise; the target is untouched and the temporary file removed.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}{TemporarySuffix}");
        try
        {
            using (var stream = (OpenerOverride.Value ?? OpenTemporary)(temp))
            {
                write(stream);
                if (stream is FileStream file) file.Flush(flushToDisk: true);
                else stream.Flush();
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (IOException e) when (DiskFullException.IsDiskFull(e))
        {
            TryDelete(temp);
            throw new DiskFullException(full, e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically.</summary>
    /// <exception cref="DiskFullException">The disk filled up; the target is untouched.</exception>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }

    /// <summary>Writes <paramref name="text"/> (UTF-8) to <paramref name="path"/> atomically.</summary>
    /// <exception cref="DiskFullException">The disk filled up; the target is untouched.</exception>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>
    /// Makes <see cref="Write"/> open its temporary files with <paramref name="open"/> (given the temporary path) in the
    /// current execution context until the result is disposed: the seam through which a failing disk is simulated.
    /// </summary>
    public static IDisposable UseOpener(Func<string, Stream> open)
    {
        var previous = OpenerOverride.Value;
        OpenerOverride.Value = open;
        return new Restore(() => OpenerOverride.Value = previous);
    }

    /// <summary>
    /// Deletes the temporary files that writers killed mid-write (power loss, SIGKILL) left in <paramref name="directory"/>:
    /// those named by this class whose process is no longer running. Returns how many were deleted.
    /// </summary>
    public static int DeleteAbandoned(string directory)
    {
        if (!Directory.Exists(directory)) return 0;
        int deleted = 0;
        foreach (var file in Directory.EnumerateFiles(directory, "." + "*" + TemporarySuffix))
        {
            // .<target>.<pid>.<guid>.tmp
            var parts = Path.GetFileName(file).Split('.');
            if (parts.Length < 5 || !int.TryParse(parts[^3], out int pid) || IsRunning(pid)) continue;
            if (TryDelete(file)) deleted++;
        }
        return deleted;
    }

    private static Stream OpenTemporary(string path) => new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; }   // no such process
        catch (InvalidOperationException) { return false; }
    }

    private static bool TryDelete(string path)
    {
        try { File.Delete(path); return true; }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }
}
