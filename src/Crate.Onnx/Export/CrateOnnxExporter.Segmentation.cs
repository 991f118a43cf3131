using static Crate.Onnx.Export.OnnxGraphBuilder;
using Crate.Core.Model;
using Crate.Core.Segmentation;

namespace Crate.Onnx.Export;

public static partial class CrateOnnxExporter
{
    /// <summary>
    /// The segmentation head on the last layer's tokens <paramref name="z"/>, mirroring <c>PatchSegmentationHead</c>:
    /// drop the class token and any prompt tokens; <c>LN -> Linear(dim, K*p*p)</c>; put each patch's p x p pixels in place
    /// (<c>[B, gh, gw, K, p, p] -> [B, K, gh, p, gw, p] -> [B, K, H, W]</c>); refine with
    /// <c>Conv3x3 -> Relu -> Conv3x3</c> over <c>[coarse, normalised image]</c> and add; with a query head, add its per-pixel
    /// log-probabilities (<see cref="QueryHead"/>) and take the log-softmax over classes; <c>mask</c> = ArgMax over classes.
    /// </summary>
    private static IEnumerable<string> SegmentationHead(OnnxGraphBuilder g, CrateConfig c, SegmentationHeadWeights head, string z, string normalized)
    {
        long k = head.NumClasses, p = c.PatchSize;
        string Const(string name) => g.Constant($"seg_head.{name}", SegmentationHeadWeights.Layout(c, head.NumClasses, head.HasQueryHead).First(t => t.Name == name).Shape, head.Floats(name));
        var tokens = g.Node("Slice", "seg_head/drop_cls",
            [z, g.Int64s("seg_head.starts", c.FirstPatchToken), g.Int64s("seg_head.ends", c.TokenCount), g.Int64s("seg_head.axes", 1)]);
        var x = g.Node("LayerNormalization", "seg_head/norm", [tokens, Const("0.weight"), Const("0.bias")], null,
            Int("axis", -1), Float("epsilon", LayerNormEpsilon));
        x = g.Node("MatMul", "seg_head/linear/matmul", [x, TransposedConstant(g, "seg_head.1.weight", head.Floats("1.weight"), (int)(k * p * p), c.Dim)]);
        x = g.Node("Add", "seg_head/linear/bias", [x, Const("1.bias")]);
        var coarse = PutInPlace(g, "seg_head", x, k, c);
        var both = g.Node("Concat", "seg_head/refine/input", [coarse, normalized], null, Int("axis", 1));
        var conv = new[] { Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1) };
        var h = g.Node("Conv", "seg_head/refine/conv0", [both, Const("refine.0.weight"), Const("refine.0.bias")], null, conv);
        h = g.Node("Relu", "seg_head/refine/relu", [h]);
        h = g.Node("Conv", "seg_head/refine/conv2", [h, Const("refine.2.weight"), Const("refine.2.bias")], null, conv);
        if (head.HasQueryHead)
        {
            var logits = g.Node("Add", "seg_head/patch_logits", [coarse, h]);
            var mixed = g.Node("Add", "seg_head/with_queries", [logits, QueryHead(g, c, head, z, tokens, Const)]);
            g.Node("LogSoftmax", "seg_head/logits", [mixed], CrateOnnxSchema.MaskLogits, Int("axis", 1));
        }
        else g.Node("Add", "seg_head/logits", [coarse, h], CrateOnnxSchema.MaskLogits);
        g.Node("ArgMax", "seg_head/argmax", [CrateOnnxSchema.MaskLogits], CrateOnnxSchema.Mask, Int("axis", 1), Int("keepdims", 0));
        g.Output(CrateOnnxSchema.MaskLogits, CrateOnnxSchema.BatchDimension, k, (long)c.ImageHeight, (long)c.ImageWidth);
        g.Int64Output(CrateOnnxSchema.Mask, CrateOnnxSchema.BatchDimension, (long)c.ImageHeight, (long)c.ImageWidth);
        return [CrateOnnxSchema.MaskLogits, CrateOnnxSchema.Mask];
    }

    /// <summary>
    /// Per-patch features <c>[B, N, C*p*p]</c> (feature index = (c, p1, p2)) to per-pixel maps <c>[B, C, H, W]</c>:
    /// <c>[B, gh, gw, C, p, p] -> [B, C, gh, p, gw, p] -> [B, C, H, W]</c>, as Crate.Training's <c>PatchSegmentationHead.PutInPlace</c>.
    /// </summary>
    private static string PutInPlace(OnnxGraphBuilder g, string scope, string perPatch, long channels, CrateConfig c)
    {
        long p = c.PatchSize;
        var x = g.Node("Reshape", $"{scope}/per_pixel", [perPatch, g.Int64s($"{scope}.grid_shape", -1, c.GridHeight, c.GridWidth, channels, p, p)]);
        x = g.Node("Transpose", $"{scope}/place", [x], null, Ints("perm", 0, 3, 1, 4, 2, 5));
        return g.Node("Reshape", $"{scope}/in_place", [x, g.Int64s($"{scope}.image_shape", -1, channels, c.ImageHeight, c.ImageWidth)]);
    }

    /// <summary>
    /// Crate.Training's <c>QueryMaskHead</c>: the class and prompt tokens of <paramref name="z"/> as queries, each giving class
    /// log-probabilities (<c>LN -> Linear -> LogSoftmax</c>) and a mask embedding; the patch tokens give each pixel an embedding
    /// (<c>LN -> Linear(dim, E*p*p)</c>, put in place); pixel log-probabilities
    /// <c>ReduceLogSumExp_q(LogSoftmax_q(queries . pixels / sqrt(E)) + class log-probabilities)</c> as <c>[B, K, H, W]</c>.
    /// </summary>
    private static string QueryHead(OnnxGraphBuilder g, CrateConfig c, SegmentationHeadWeights head, string z, string patchTokens, Func<string, string> weight)
    {
        long k = head.NumClasses, p = c.PatchSize, e = SegmentationCheckpointFormat.QueryEmbeddingWidth;
        string Linear(string name, string x, string key, long outputs) =>
            g.Node("Add", $"query_head/{name}/bias",
                [g.Node("MatMul", $"query_head/{name}/matmul", [x, TransposedConstant(g, $"seg_head.{key}.weight", head.Floats($"{key}.weight"), (int)outputs, c.Dim)]), weight($"{key}.bias")]);
        string Norm(string name, string x, string key) =>
            g.Node("LayerNormalization", $"query_head/{name}", [x, weight($"{key}.weight"), weight($"{key}.bias")], null, Int("axis", -1), Float("epsilon", LayerNormEpsilon));

        var queries = g.Node("Slice", "query_head/queries", [z, g.Int64s("query_head.starts", 0), g.Int64s("query_head.ends", c.FirstPatchToken), g.Int64s("query_head.axes", 1)]);
        queries = Norm("query_norm", queries, "query_head.query_norm");
        var classLogProbs = g.Node("LogSoftmax", "query_head/class_log_probs", [Linear("classes", queries, "query_head.classes", k)], null, Int("axis", -1));   // [B, Q, K]
        var queryEmbedding = Linear("query_embed", queries, "query_head.query_embed", e);                                                                    // [B, Q, E]
        var pixels = Linear("pixel_embed", Norm("pixel_norm", patchTokens, "query_head.pixel_norm"), "query_head.pixel_embed", e * p * p);
        pixels = g.Node("Reshape", "query_head/pixels", [PutInPlace(g, "query_head", pixels, e, c), g.Int64s("query_head.pixels_shape", -1, e, (long)c.ImageHeight * c.ImageWidth)]);   // [B, E, HW]
        var scores = g.Node("Mul", "query_head/scale", [g.Node("MatMul", "query_head/scores", [queryEmbedding, pixels]), g.Scalar("query_head.scale", (float)(1 / Math.Sqrt(e)))]);
        var assignment = g.Node("LogSoftmax", "query_head/assignment", [scores], null, Int("axis", 1));                                                  // over queries
        var joint = g.Node("Add", "query_head/joint",
            [g.Node("Unsqueeze", "query_head/assignment_4d", [assignment, g.Int64s("query_head.class_axis", 2)]),                                       // [B, Q, 1, HW]
             g.Node("Unsqueeze", "query_head/classes_4d", [classLogProbs, g.Int64s("query_head.pixel_axis", 3)])]);                                     // [B, Q, K, 1]
        var mixture = g.Node("ReduceLogSumExp", "query_head/mixture", [joint], null, Ints("axes", 1), Int("keepdims", 0));                            // [B, K, HW]
        return g.Node("Reshape", "query_head/log_probs", [mixture, g.Int64s("query_head.log_probs_shape", -1, k, c.ImageHeight, c.ImageWidth)]);
    }
}
