using static Crate.Onnx.Export.OnnxGraphBuilder;
using Crate.Core.Model;

namespace Crate.Onnx.Export;

public static partial class CrateOnnxExporter
{
    /// <summary>
    /// The segmentation head on the last layer's tokens <paramref name="z"/>, mirroring <c>PatchSegmentationHead</c>:
    /// drop the class token and any prompt tokens; <c>LN -> Linear(dim, K*p*p)</c>; put each patch's p x p pixels in place
    /// (<c>[B, gh, gw, K, p, p] -> [B, K, gh, p, gw, p] -> [B, K, H, W]</c>); refine with
    /// <c>Conv3x3 -> Relu -> Conv3x3</c> over <c>[coarse, normalised image]</c> and add; <c>mask</c> = ArgMax over classes.
    /// </summary>
    private static IEnumerable<string> SegmentationHead(OnnxGraphBuilder g, CrateConfig c, SegmentationHeadWeights head, string z, string normalized)
    {
        long k = head.NumClasses, p = c.PatchSize;
        string Const(string name) => g.Constant($"seg_head.{name}", SegmentationHeadWeights.Layout(c, head.NumClasses).First(t => t.Name == name).Shape, head.Floats(name));
        var tokens = g.Node("Slice", "seg_head/drop_cls",
            [z, g.Int64s("seg_head.starts", c.FirstPatchToken), g.Int64s("seg_head.ends", c.TokenCount), g.Int64s("seg_head.axes", 1)]);
        var x = g.Node("LayerNormalization", "seg_head/norm", [tokens, Const("0.weight"), Const("0.bias")], null,
            Int("axis", -1), Float("epsilon", LayerNormEpsilon));
        x = g.Node("MatMul", "seg_head/linear/matmul", [x, TransposedConstant(g, "seg_head.1.weight", head.Floats("1.weight"), (int)(k * p * p), c.Dim)]);
        x = g.Node("Add", "seg_head/linear/bias", [x, Const("1.bias")]);
        x = g.Node("Reshape", "seg_head/per_pixel", [x, g.Int64s("seg_head.grid_shape", -1, c.GridHeight, c.GridWidth, k, p, p)]);
        x = g.Node("Transpose", "seg_head/place", [x], null, Ints("perm", 0, 3, 1, 4, 2, 5));
        var coarse = g.Node("Reshape", "seg_head/coarse", [x, g.Int64s("seg_head.image_shape", -1, k, c.ImageHeight, c.ImageWidth)]);
        var both = g.Node("Concat", "seg_head/refine/input", [coarse, normalized], null, Int("axis", 1));
        var conv = new[] { Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1) };
        var h = g.Node("Conv", "seg_head/refine/conv0", [both, Const("refine.0.weight"), Const("refine.0.bias")], null, conv);
        h = g.Node("Relu", "seg_head/refine/relu", [h]);
        h = g.Node("Conv", "seg_head/refine/conv2", [h, Const("refine.2.weight"), Const("refine.2.bias")], null, conv);
        g.Node("Add", "seg_head/logits", [coarse, h], CrateOnnxSchema.MaskLogits);
        g.Node("ArgMax", "seg_head/argmax", [CrateOnnxSchema.MaskLogits], CrateOnnxSchema.Mask, Int("axis", 1), Int("keepdims", 0));
        g.Output(CrateOnnxSchema.MaskLogits, CrateOnnxSchema.BatchDimension, k, (long)c.ImageHeight, (long)c.ImageWidth);
        g.Int64Output(CrateOnnxSchema.Mask, CrateOnnxSchema.BatchDimension, (long)c.ImageHeight, (long)c.ImageWidth);
        return [CrateOnnxSchema.MaskLogits, CrateOnnxSchema.Mask];
    }
}
