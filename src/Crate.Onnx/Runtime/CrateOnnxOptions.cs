using Microsoft.ML.OnnxRuntime;

namespace Crate.Onnx.Runtime;

/// <summary>Where ONNX Runtime executes the model.</summary>
public enum CrateExecutionProvider
{
    /// <summary>ONNX Runtime's CPU provider (always available).</summary>
    Cpu,
    /// <summary>
    /// NVIDIA CUDA. Needs the GPU native package: applications build with <c>-p:CrateGpu=true</c>, which swaps
    /// <c>Microsoft.ML.OnnxRuntime</c> for <c>Microsoft.ML.OnnxRuntime.Gpu</c> (CUDA 12 and cuDNN 9 on the host).
    /// </summary>
    Cuda,
}

/// <summary>How <see cref="CrateOnnxModel"/> creates its ONNX Runtime session and splits batches.</summary>
public sealed record CrateOnnxOptions
{
    /// <summary>Threads one inference may use; 0 (default) lets ONNX Runtime pick (one per physical core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Graph optimisation level; default <see cref="GraphOptimizationLevel.ORT_ENABLE_ALL"/>.</summary>
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>If set, ONNX Runtime writes the optimised graph here (an ONNX file later sessions may load directly). Default none.</summary>
    public string? OptimizedModelPath { get; init; }

    /// <summary>Execution provider to request; default <see cref="CrateExecutionProvider.Cpu"/>.</summary>
    public CrateExecutionProvider ExecutionProvider { get; init; } = CrateExecutionProvider.Cpu;

    /// <summary>CUDA device id when <see cref="ExecutionProvider"/> is CUDA; default 0.</summary>
    public int DeviceId { get; init; }

    /// <summary>
    /// When CUDA is requested but unavailable: true (default) runs on the CPU after one warning; false throws
    /// <see cref="CrateOnnxException"/>.
    /// </summary>
    public bool FallbackToCpu { get; init; } = true;

    /// <summary>Largest batch sent to ONNX Runtime in one run; bigger inputs are split into chunks of this size. Default 64.</summary>
    public int MaxBatch { get; init; } = 64;

    /// <summary>Receives warnings (the CUDA fallback); default writes them to standard error.</summary>
    public Action<string>? Warning { get; init; }
}
