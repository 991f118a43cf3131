using Crate.Core.Model;
using Crate.Core.Weights;
using Crate.Onnx.Export;
using Crate.Training.Model;
using Crate.Training.Segmentation;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using static Crate.Onnx.Tests.TestModels;

namespace Crate.Onnx.Tests;

/// <summary>The exported segmentation graph computes the TorchSharp segmentation model's mask logits and mask.</summary>
public class SegmentationExportTests
{
    private static readonly CrateConfig Config = Mini with { ImageHeight = 32, ImageWidth = 24, Depth = 3, NumClasses = 4, ClassNames = [] };
    private static readonly string[] MaskClasses = ["background", "a", "b", "c", "d"];

    [TestCase(0, false)]
    [TestCase(2, false)]
    [TestCase(0, true)]
    [TestCase(3, true)]
    public void MaskLogitsAndMaskMatchTorchSharp(int promptTokens, bool queryHead)
    {
        torch.manual_seed(21);
        var network = new CrateModel(Config with { PromptTokens = promptTokens });
        var model = new SegmentationModel(network, MaskClasses.Length, queryHead);
        model.eval();
        using (torch.no_grad())
        {
            // A random head's logits are nearly flat; scale the coarse layer so the arg-max is decided by real margins.
            foreach (var (name, p) in model.Head.named_parameters()) if (name == "1.weight") p.mul_(8);
            // Likewise the query head's class and pixel layers, so queries name different classes and claim different pixels.
            foreach (var (name, p) in model.QueryHead?.named_parameters() ?? []) if (name is "classes.weight" or "pixel_embed.weight") p.mul_(8);
            // Fresh prompts (std 0.02) barely move the patch tokens; at std 1 a head reading the wrong tokens shows.
            network.Prompts?.mul_(50);
        }
        var path = Path.Combine(Path.GetTempPath(), $"seg-onnx-{Guid.NewGuid():N}.safetensors");
        try
        {
            SegmentationCheckpoint.Save(path, model, MaskClasses);
            var (trunk, head) = SegmentationHeadWeights.FromCheckpoint(path);
            var bytes = CrateOnnxExporter.Export(trunk, new CrateOnnxExportOptions { Segmentation = head });
            const int batch = 3;
            var pixels = RandomPixels(Config, batch, seed: 5);
            using var session = new InferenceSession(bytes, new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL });
            Assert.That(session.ModelMetadata.CustomMetadataMap[CrateOnnxSchema.MaskClassNamesKey], Is.EqualTo("[\"background\",\"a\",\"b\",\"c\",\"d\"]"));
            var input = new DenseTensor<float>(pixels, [batch, 1, 32, 24]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(CrateOnnxSchema.Image, input)]);
            var ortLogits = results.First(r => r.Name == CrateOnnxSchema.MaskLogits).AsTensor<float>().ToArray();
            var ortMask = results.First(r => r.Name == CrateOnnxSchema.Mask).AsTensor<long>();
            Assert.That(ortMask.Dimensions.ToArray(), Is.EqualTo(new[] { batch, 32, 24 }));

            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var logits = model.forward(torch.tensor(Normalize(Config, pixels), [batch, 1, 32, 24])).contiguous();
            var torchLogits = logits.data<float>().ToArray();
            var torchMask = logits.argmax(1).data<long>().ToArray();
            var std = logits.std().item<float>();
            TestContext.Out.WriteLine($"max |diff| mask_logits {MaxAbsDiff(ortLogits, torchLogits):E2}; logits std {std:F2}");
            Assert.That(std, Is.GreaterThan(0.3), "logits too flat for the tolerance to mean anything");
            Assert.That(MaxAbsDiff(ortLogits, torchLogits), Is.LessThanOrEqualTo(1e-4));
            // Masks agree wherever the winning class leads the runner-up by more than the logit tolerance.
            var flatMask = ortMask.ToArray();
            int plane = 32 * 24, compared = 0;
            for (int i = 0; i < flatMask.Length; i++)
            {
                int b = i / plane, pixel = i % plane;
                var scores = Enumerable.Range(0, MaskClasses.Length).Select(k => torchLogits[(b * MaskClasses.Length + k) * plane + pixel]).OrderDescending().ToArray();
                if (scores[0] - scores[1] <= 2e-4) continue;
                compared++;
                Assert.That(flatMask[i], Is.EqualTo(torchMask[i]), $"pixel {i}");
            }
            Assert.That(compared, Is.GreaterThan(flatMask.Length * 0.99));
            Assert.That(flatMask.Distinct().Count(), Is.GreaterThan(1), "the mask is not constant");
        }
        finally { File.Delete(path); }
    }

    [Test]
    public void CheckpointWithoutHeadIsRejectedByName()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cls-{Guid.NewGuid():N}.safetensors");
        try
        {
            SegmentationCheckpoint.Save(path, new CrateModel(Config));
            var e = Assert.Throws<SafetensorsException>(() => SegmentationHeadWeights.FromCheckpoint(path));
            Assert.That(e!.Message, Does.Contain(path).And.Contain("no segmentation head"));
            SegmentationCheckpoint.Save(path, new SegmentationModel(new VitModel(Config), 5), MaskClasses);
            e = Assert.Throws<SafetensorsException>(() => SegmentationHeadWeights.FromCheckpoint(path));
            Assert.That(e!.Message, Does.Contain("'vit' trunk"));
        }
        finally { File.Delete(path); }
    }
}
