using System.Net;
using System.Net.Sockets;

namespace Crate.Web.Tests;

/// <summary>
/// A minimal static file server on a free loopback port, for pages under test: URL path prefixes map to folders
/// (the longest matching prefix wins). GET only; anything else, or outside the folders, is 404.
/// </summary>
internal sealed class StaticFileServer : IDisposable
{
    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript",
        [".mjs"] = "text/javascript",
        [".css"] = "text/css",
        [".wasm"] = "application/wasm", // lets onnxruntime-web compile the WebAssembly while it streams
        [".json"] = "application/json",
        [".png"] = "image/png",
    };

    private readonly HttpListener _listener;
    private readonly (string Prefix, string Folder)[] _mounts;
    private readonly Task _loop;

    /// <summary>Starts serving; <paramref name="mounts"/> pairs URL path prefixes (starting and ending with '/') with folders.</summary>
    public StaticFileServer(params (string UrlPrefix, string Folder)[] mounts)
    {
        _mounts = mounts.Select(m => (m.UrlPrefix, Path.GetFullPath(m.Folder))).OrderByDescending(m => m.UrlPrefix.Length).ToArray();
        (_listener, Url) = Listen();
        _loop = Task.Run(ServeAsync);
    }

    /// <summary>The server's root, <c>http://127.0.0.1:PORT/</c>.</summary>
    public string Url { get; }

    private static (HttpListener, string) Listen()
    {
        // HttpListener cannot bind port 0: take a port the system reports free, and try again if another process takes it first.
        for (int attempt = 1; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var url = $"http://127.0.0.1:{port}/";
            var listener = new HttpListener();
            listener.Prefixes.Add(url);
            try
            {
                listener.Start();
                return (listener, url);
            }
            catch (HttpListenerException) when (attempt < 10)
            {
                listener.Close();
            }
        }
    }

    private async Task ServeAsync()
    {
        while (true)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
            _ = Task.Run(() => Respond(context));
        }
    }

    private void Respond(HttpListenerContext context)
    {
        using var response = context.Response;
        try
        {
            var file = context.Request.HttpMethod == "GET" ? Resolve(Uri.UnescapeDataString(context.Request.Url!.AbsolutePath)) : null;
            if (file == null)
            {
                response.StatusCode = (int)HttpStatusCode.NotFound;
                return;
            }
            var bytes = File.ReadAllBytes(file);
            response.ContentType = ContentTypes.GetValueOrDefault(Path.GetExtension(file), "application/octet-stream");
            response.ContentLength64 = bytes.Length;
            response.OutputStream.Write(bytes);
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
        {
            // The browser went away mid-response (page closed): nothing to answer.
        }
    }

    private string? Resolve(string path)
    {
        if (path.EndsWith('/')) path += "index.html";
        foreach (var (prefix, folder) in _mounts)
        {
            if (!path.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var full = Path.GetFullPath(Path.Combine(folder, path[prefix.Length..]));
            bool inside = full.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal);
            return inside && File.Exists(full) ? full : null;
        }
        return null;
    }

    /// <summary>Stops listening; requests in flight are dropped.</summary>
    public void Dispose()
    {
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}
