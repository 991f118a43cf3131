using Crate.Core.IO;

namespace Crate.Tests.Shared;

/// <summary>
/// A disk that fills up: used through <see cref="AtomicFile.UseOpener"/>, it creates the temporary file for real and lets
/// <paramref name="capacity"/> bytes through, then fails the write as Linux does (ENOSPC, errno 28, with the runtime's message).
/// Only writes whose target file name is <paramref name="target"/> (or every write, when null) fail, and only from the
/// <paramref name="fromWrite"/>-th such write on (1-based).
/// </summary>
internal sealed class FullDisk(long capacity, string? target = null, int fromWrite = 1)
{
    private int _writes;

    /// <summary>Writes that failed.</summary>
    public int Failures { get; private set; }

    /// <summary>Opens <paramref name="temporaryPath"/> as <see cref="AtomicFile"/> would, failing when this write is one to fail.</summary>
    public Stream Open(string temporaryPath)
    {
        var file = new FileStream(temporaryPath, FileMode.CreateNew, FileAccess.Write);
        // Temporary names are ".<target>.<pid>.<guid>.tmp".
        if (target != null && !Path.GetFileName(temporaryPath).StartsWith($".{target}.", StringComparison.Ordinal)) return file;
        if (Interlocked.Increment(ref _writes) < fromWrite) return file;
        Failures++;
        return new FillingStream(file, capacity, temporaryPath);
    }

    private sealed class FillingStream(FileStream inner, long capacity, string path) : Stream
    {
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            long room = Math.Max(0, capacity - inner.Length);
            inner.Write(buffer[..(int)Math.Min(room, buffer.Length)]);
            if (buffer.Length > room) throw new IOException($"No space left on device : '{path}'", 28);
        }

        public override void Flush() => inner.Flush();
        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
