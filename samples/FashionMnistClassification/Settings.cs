using System.Globalization;

namespace FashionMnistClassification;

/// <summary>How much the sample trains and evaluates; defaults finish in a few minutes on two cores.</summary>
public sealed record Settings
{
    /// <summary>Training images (of 60,000).</summary>
    public int TrainImages { get; init; } = 12_000;
    /// <summary>Test images (of 10,000).</summary>
    public int TestImages { get; init; } = 2_000;
    /// <summary>Epochs.</summary>
    public int Epochs { get; init; } = 4;
    /// <summary>Cap on optimiser steps per epoch (null: all).</summary>
    public int? StepsPerEpoch { get; init; }
    /// <summary>Where the model files go; default next to the sample's binaries (ignored by git).</summary>
    public string OutputDirectory { get; init; } = AppContext.BaseDirectory;
    /// <summary>The exported ONNX network, for batched scoring and other runtimes.</summary>
    public string OnnxPath => Path.GetFullPath(Path.Combine(OutputDirectory, "FashionMnistModel.onnx"));

    /// <summary>Reads <c>--train N --test N --epochs N --steps N --output DIR</c>.</summary>
    public static Settings Parse(string[] args)
    {
        var s = new Settings();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Number() => int.Parse(Value(), CultureInfo.InvariantCulture);
            s = args[i] switch
            {
                "--train" => s with { TrainImages = Number() },
                "--test" => s with { TestImages = Number() },
                "--epochs" => s with { Epochs = Number() },
                "--steps" => s with { StepsPerEpoch = Number() },
                "--output" => s with { OutputDirectory = Value() },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'. Options: --train N --test N --epochs N --steps N --output DIR."),
            };
        }
        return s;
    }
}
