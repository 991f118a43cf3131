using Crate.Core.Data;
using Crate.Core.Model;
using static TorchSharp.torch;

namespace Crate.Training.Analysis;

/// <summary>Turns 8-bit images into the normalised float tensors a CRATE model expects.</summary>
public static class ImageTensors
{
    /// <summary>Throws <see cref="DataException"/> when <paramref name="data"/>'s images do not have the shape <paramref name="config"/> expects.</summary>
    public static void CheckShape(ImageDataset data, CrateConfig config)
    {
        if (data.Channels != config.Channels || data.Height != config.ImageHeight || data.Width != config.ImageWidth)
            throw new DataException(
                $"Data '{data.Name}' holds {data.Height}x{data.Width}x{data.Channels} images but the model expects {config.ImageHeight}x{config.ImageWidth}x{config.Channels}.");
    }

    /// <summary>
    /// Images <paramref name="indices"/> of <paramref name="data"/> as <c>[B, C, H, W]</c> float32,
    /// <c>(pixel/255 - mean_c) / std_c</c> with the configuration's per-channel statistics.
    /// </summary>
    public static Tensor Normalised(ImageDataset data, IReadOnlyList<int> indices, CrateConfig config)
    {
        CheckShape(data, config);
        int size = data.ImageSize, plane = data.Height * data.Width;
        var values = new float[(long)indices.Count * size];
        for (int i = 0; i < indices.Count; i++)
        {
            var image = data.Image(indices[i]);
            for (int c = 0; c < data.Channels; c++)
            {
                float mean = config.MeanOf(c), scale = 1f / (255f * config.StdOf(c)), shift = mean / config.StdOf(c);
                for (int k = 0; k < plane; k++) values[(long)i * size + c * plane + k] = image[c * plane + k] * scale - shift;
            }
        }
        return tensor(values, [indices.Count, data.Channels, data.Height, data.Width]);
    }
}
