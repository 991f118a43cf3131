using System.Reflection;
using Crate.Onnx.Runtime;
using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace Crate.MLNet.Internal;

/// <summary>
/// What a catalog extension outside ML.NET needs from the user's <see cref="MLContext"/>: its environment (seed,
/// logging), a transforms catalog on it, and the ONNX Runtime device it asks for.
/// </summary>
/// <remarks>
/// Catalogs hide their environment behind an internal interface, and catalogs hold the context's inner environment,
/// not the <see cref="MLContext"/> itself (ML.NET's own extensions use internal helpers). Reading it by reflection is
/// the only way a third-party extension method honours the user's seed, <see cref="MLContext.GpuDeviceId"/> and
/// <see cref="MLContext.FallbackToCpu"/>; a failure says so plainly rather than silently using defaults.
/// </remarks>
internal sealed class CatalogContext
{
    private const BindingFlags Members = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    private CatalogContext(IHostEnvironment environment, TransformsCatalog transforms)
    {
        Environment = environment;
        Transforms = transforms;
    }

    /// <summary>The environment of the user's context.</summary>
    public IHostEnvironment Environment { get; }
    /// <summary>A transforms catalog on that environment.</summary>
    public TransformsCatalog Transforms { get; }
    /// <summary>The context's <see cref="MLContext.GpuDeviceId"/>, read now (it may be set after the estimator is created).</summary>
    public int? GpuDeviceId => (int?)Setting(nameof(MLContext.GpuDeviceId));
    /// <summary>The context's <see cref="MLContext.FallbackToCpu"/>, read now.</summary>
    public bool FallbackToCpu => (bool)Setting(nameof(MLContext.FallbackToCpu))!;

    /// <summary>The context behind a transforms catalog (<c>mlContext.Transforms</c>).</summary>
    public static CatalogContext Of(TransformsCatalog catalog) => new(EnvironmentOf(catalog), catalog);

    /// <summary>The context behind any other catalog (e.g. <c>mlContext.MulticlassClassification.Trainers</c>).</summary>
    public static CatalogContext Of(object catalog)
    {
        var env = EnvironmentOf(catalog);
        var transforms = (TransformsCatalog?)typeof(TransformsCatalog).GetConstructor(Members, [typeof(IHostEnvironment)])?.Invoke([env])
            ?? throw Unsupported(catalog, "a TransformsCatalog constructor taking its environment");
        return new CatalogContext(env, transforms);
    }

    /// <summary>
    /// Where <c>ApplyOnnxModel</c> for <paramref name="onnx"/> should come from: the user's catalog and <see cref="MLContext.GpuDeviceId"/> when
    /// ONNX Runtime can start CUDA on that device (or none is asked for); when it cannot and <see cref="MLContext.FallbackToCpu"/> allows,
    /// a CPU-only catalog, after one warning on the context's log and standard error.
    /// </summary>
    /// <remarks>
    /// ML.NET's fallback catches only ONNX Runtime's errors, not the missing CUDA entry point of ONNX Runtime's CPU package, and it takes
    /// the context's device whenever the call names none; so Crate asks ONNX Runtime first (through <see cref="CrateOnnxModel"/>, which
    /// knows both failures) and, to stay on the CPU, builds the transformer on a context that asks for no GPU.
    /// </remarks>
    /// <exception cref="CrateOnnxException">CUDA is unavailable and the context does not allow falling back to the CPU.</exception>
    public (TransformsCatalog Catalog, int? GpuDeviceId) OnnxScoring(byte[] onnx, string component)
    {
        if (GpuDeviceId is not int device) return (Transforms, null);
        using var channel = Environment.Start(component);
        var options = new CrateOnnxOptions
        {
            ExecutionProvider = CrateExecutionProvider.Cuda, DeviceId = device, FallbackToCpu = FallbackToCpu,
            Warning = message =>
            {
                channel.Warning(MessageSensitivity.None, message);
                Console.Error.WriteLine(message);
            },
        };
        using var probe = CrateOnnxModel.Load(onnx, options, "the Crate model");
        return probe.ExecutionProvider == CrateExecutionProvider.Cuda ? (Transforms, device) : (new MLContext().Transforms, null);
    }

    /// <summary>A seed drawn from the context's random source: fixed when the context was created with a seed, random otherwise.</summary>
    public int DrawSeed(string component) => Environment.Register(component).Rand.Next();

    private static IHostEnvironment EnvironmentOf(object catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        for (var type = catalog.GetType(); type != null; type = type.BaseType)
        {
            var property = type.GetProperties(Members | BindingFlags.DeclaredOnly)
                .FirstOrDefault(p => p.PropertyType == typeof(IHostEnvironment) && (p.Name == "Environment" || p.Name.EndsWith(".Environment", StringComparison.Ordinal)));
            if (property?.GetValue(catalog) is IHostEnvironment env) return env;
        }
        throw Unsupported(catalog, "an Environment property");
    }

    private object? Setting(string name)
    {
        var property = Environment.GetType().GetProperty(name, Members)
            ?? throw Unsupported(Environment, $"a {name} property");
        return property.GetValue(Environment);
    }

    private static NotSupportedException Unsupported(object what, string missing) =>
        new($"Crate.MLNet reads the MLContext behind a catalog, but this ML.NET's {what.GetType().Name} has no {missing}; Crate.MLNet is built for ML.NET 5.");
}
