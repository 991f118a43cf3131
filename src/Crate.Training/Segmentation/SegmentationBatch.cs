using Crate.Core.Data.Segmentation;
using Crate.Core.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training.Segmentation;

/// <summary>Turns images and masks of a <see cref="SegmentationDataset"/> into tensors.</summary>
public static class SegmentationBatch
{
    /// <summary>Images at <paramref name="indices"/> as <c>[B, C, H, W]</c> float32, scaled to [0, 1] then normalised with the configuration's mean and std.</summary>
    public static Tensor Images(SegmentationDataset data, IReadOnlyList<int> indices, CrateConfig config, Device? device = null)
    {
        if (data.Channels != config.Channels || data.Height != config.ImageHeight || data.Width != config.ImageWidth)
            throw new ArgumentException($"Data set '{data.Name}' holds {data.Channels}x{data.Height}x{data.Width} images; the model expects {config.Channels}x{config.ImageHeight}x{config.ImageWidth}.");
        int size = data.ImageSize, plane = data.Height * data.Width;
        var values = new float[indices.Count * size];
        for (int i = 0; i < indices.Count; i++)
        {
            var image = data.Image(indices[i]);
            for (int c = 0; c < data.Channels; c++)
            {
                float mean = config.MeanOf(c), scale = 1f / (255f * config.StdOf(c)), shift = mean / config.StdOf(c);
                for (int p = 0; p < plane; p++) values[i * size + c * plane + p] = image[c * plane + p] * scale - shift;   // (x/255 - mean)/std
            }
        }
        return torch.tensor(values, [indices.Count, data.Channels, data.Height, data.Width], device: device);
    }

    /// <summary>Masks at <paramref name="indices"/> as <c>[B, H, W]</c> int64 class ids (255 = ignore).</summary>
    public static Tensor Masks(SegmentationDataset data, IReadOnlyList<int> indices, Device? device = null)
    {
        var ids = new long[indices.Count * data.MaskSize];
        for (int i = 0; i < indices.Count; i++)
        {
            var mask = data.Mask(indices[i]);
            for (int p = 0; p < mask.Length; p++) ids[i * data.MaskSize + p] = mask[p];
        }
        return torch.tensor(ids, [indices.Count, data.Height, data.Width], device: device);
    }

    /// <summary>Image-level labels at <paramref name="indices"/> as int64 <c>[B]</c> (-1 for images without objects).</summary>
    public static Tensor Labels(SegmentationDataset data, IReadOnlyList<int> indices, Device? device = null) =>
        torch.tensor(indices.Select(i => (long)data.Label(i)).ToArray(), device: device);

    /// <summary>Copies a <c>[H, W]</c>-per-image tensor of class ids to bytes, image after image.</summary>
    public static byte[] ToBytes(Tensor classIds)
    {
        using var cpu = classIds.to(ScalarType.Byte, CPU).contiguous();
        return cpu.data<byte>().ToArray();
    }
}
