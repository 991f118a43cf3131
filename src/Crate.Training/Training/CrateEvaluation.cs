using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Training.Data;
using Crate.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Crate.Training;

/// <summary>Evaluation and prediction with a trained model (no augmentation, no gradients, the model's own normalisation).</summary>
public static class CrateEvaluation
{
    /// <summary>A loader that feeds <paramref name="data"/> to a model of <paramref name="config"/> in order.</summary>
    public static BatchLoader Loader(CrateConfig config, ImageDataset data, int batchSize = 256)
    {
        if (data.Channels != config.Channels || data.Height != config.ImageHeight || data.Width != config.ImageWidth)
            throw new ArgumentException($"Data '{data.Name}' holds {data.Channels}x{data.Height}x{data.Width} images; the model takes {config.Channels}x{config.ImageHeight}x{config.ImageWidth}.");
        var channels = Enumerable.Range(0, config.Channels).ToArray();
        return new BatchLoader(data, batchSize, channels.Select(config.MeanOf).ToArray(), channels.Select(config.StdOf).ToArray());
    }

    /// <summary>Loss, top-1, top-5 and per-class accuracy of <paramref name="model"/> on <paramref name="data"/> (labels index the model's classes).</summary>
    public static EvaluationResult Evaluate(IVisionTransformer model, ImageDataset data, int batchSize = 256, CancellationToken cancellation = default)
    {
        var config = model.Config;
        if (data.ClassNames.Count > config.NumClasses)
            throw new ArgumentException($"Data '{data.Name}' has {data.ClassNames.Count} classes; the model predicts {config.NumClasses}.");
        int k = Math.Min(5, config.NumClasses);
        double lossSum = 0;
        long top1 = 0, topK = 0;
        var counts = new int[config.NumClasses];
        var correct = new int[config.NumClasses];
        model.Module.eval();
        using var noGrad = torch.no_grad();
        foreach (var batch in Loader(config, data, batchSize).Epoch(0, cancellation: cancellation))
        {
            using var scope = torch.NewDisposeScope();
            using var b = batch;
            var logits = model.Module.forward(b.Images);
            lossSum += nn.functional.cross_entropy(logits, b.Labels, reduction: nn.Reduction.Sum).item<float>();
            var (_, best) = logits.topk(k, 1);
            var hits = best.eq(b.Labels.unsqueeze(1));
            var first = hits.select(1, 0).data<bool>().ToArray();
            topK += hits.any(1).sum().item<long>();
            var labels = b.Labels.data<long>().ToArray();
            for (int i = 0; i < labels.Length; i++)
            {
                counts[labels[i]]++;
                if (first[i]) { correct[labels[i]]++; top1++; }
            }
        }
        var names = Enumerable.Range(0, config.NumClasses).Select(config.ClassName).ToArray();
        return new EvaluationResult(lossSum / data.Count, (double)top1 / data.Count, (double)topK / data.Count, k, data.Count, names, counts, correct);
    }

    /// <summary>Class probabilities (softmax) for every image of <paramref name="data"/>, <c>[images][classes]</c>.</summary>
    public static float[][] Probabilities(CrateModel model, ImageDataset data, int batchSize = 256)
    {
        var result = new List<float[]>(data.Count);
        model.eval();
        using var noGrad = torch.no_grad();
        foreach (var batch in Loader(model.Config, data, batchSize).Epoch(0))
        {
            using var scope = torch.NewDisposeScope();
            using var b = batch;
            var probabilities = model.forward(b.Images).softmax(1).contiguous().data<float>().ToArray();
            int classes = model.Config.NumClasses;
            for (int i = 0; i < b.Count; i++) result.Add(probabilities[(i * classes)..((i + 1) * classes)]);
        }
        return result.ToArray();
    }
}
