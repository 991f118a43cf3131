using System.Globalization;

namespace SceneSegmentation;

/// <summary>How much the sample trains and evaluates; defaults finish in a few minutes on two cores.</summary>
public sealed record Settings
{
    /// <summary>Generated training scenes.</summary>
    public int TrainScenes { get; init; } = 3_000;
    /// <summary>Generated test scenes (objects never seen in training).</summary>
    public int TestScenes { get; init; } = 500;
    /// <summary>Epochs.</summary>
    public int Epochs { get; init; } = 6;
    /// <summary>Token width of the trunk (null: the mini preset's 192).</summary>
    public int? Dim { get; init; } = 128;
    /// <summary>Layers of the trunk (null: the mini preset's 6).</summary>
    public int? Depth { get; init; } = 4;
    /// <summary>Where the model files and overlays go; default next to the sample's binaries (ignored by git).</summary>
    public string OutputDirectory { get; init; } = AppContext.BaseDirectory;
    /// <summary>The exported ONNX network, for batched scoring and other runtimes.</summary>
    public string OnnxPath => Path.GetFullPath(Path.Combine(OutputDirectory, "SceneSegmentationModel.onnx"));

    /// <summary>Reads <c>--train N --test N --epochs N --dim N --depth N --output DIR</c>.</summary>
    public static Settings Parse(string[] args)
    {
        var s = new Settings();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int Number() => int.Parse(Value(), CultureInfo.InvariantCulture);
            s = args[i] switch
            {
                "--train" => s with { TrainScenes = Number() },
                "--test" => s with { TestScenes = Number() },
                "--epochs" => s with { Epochs = Number() },
                "--dim" => s with { Dim = Number() },
                "--depth" => s with { Depth = Number() },
                "--output" => s with { OutputDirectory = Value() },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'. Options: --train N --test N --epochs N --dim N --depth N --output DIR."),
            };
        }
        return s;
    }
}
