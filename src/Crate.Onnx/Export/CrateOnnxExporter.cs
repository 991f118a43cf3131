using System.Globalization;
using System.Numerics.Tensors;
using System.Text.Json;
using Crate.Core.IO;
using Crate.Core.Model;
using Google.Protobuf;
using static Crate.Onnx.Export.OnnxGraphBuilder;

namespace Crate.Onnx.Export;

/// <summary>
/// Writes a CRATE network as a standard ONNX model (opset 17, IR 8, no custom operators) straight from its
/// framework-neutral weights. The graph mirrors the architecture block by block, with node names such as
/// <c>patch_embed/norm_in</c>, <c>layer3/mssa/softmax</c>, <c>layer3/ista/step</c> and <c>head/linear</c>;
/// see <see cref="CrateOnnxSchema"/> for inputs, outputs and metadata.
/// </summary>
/// <remarks>
/// Preprocessing is inside the graph: the input is raw pixels in [0, 255], normalised as
/// <c>(x / 255 - mean[c]) / std[c]</c>. Each ISTA step is folded into one constant matrix
/// <c>M = I + eta (D - D^T D)</c>, so the block is <c>Relu(x M - eta lambda)</c>: the same function as the
/// reference's three products, with one matmul. Linear weights are stored transposed (<c>[in, out]</c>) so
/// every projection is a plain <c>MatMul</c>; each weight is stored once.
/// </remarks>
public static partial class CrateOnnxExporter
{
    private const float LayerNormEpsilon = 1e-5f;

    /// <summary>Exports <paramref name="weights"/> to ONNX bytes.</summary>
    /// <exception cref="ArgumentException">An extra metadata key uses the reserved <c>crate.</c> prefix.</exception>
    public static byte[] Export(CrateWeights weights, CrateOnnxExportOptions? options = null) =>
        BuildModel(weights, options ?? new CrateOnnxExportOptions()).ToByteArray();

    /// <summary>Exports <paramref name="weights"/> to <paramref name="path"/>; the file is replaced atomically.</summary>
    /// <exception cref="ArgumentException">An extra metadata key uses the reserved <c>crate.</c> prefix.</exception>
    /// <exception cref="IOException">Writing failed; an existing file at <paramref name="path"/> is untouched.</exception>
    public static void ExportToFile(CrateWeights weights, string path, CrateOnnxExportOptions? options = null)
    {
        var model = BuildModel(weights, options ?? new CrateOnnxExportOptions());
        AtomicFile.Write(path, model.WriteTo);
    }

    internal static Proto.ModelProto BuildModel(CrateWeights weights, CrateOnnxExportOptions options)
    {
        var c = weights.Config;
        var reserved = options.ExtraMetadata.Keys.Where(k => k.StartsWith("crate.", StringComparison.Ordinal)).ToList();
        if (reserved.Count > 0)
            throw new ArgumentException($"Extra ONNX metadata keys may not start with 'crate.' (reserved): {string.Join(", ", reserved)}.", nameof(options));

        var g = new OnnxGraphBuilder($"crate_{c.Preset}");
        var outputs = new List<string>();
        var image = g.Input(CrateOnnxSchema.Image, CrateOnnxSchema.BatchDimension, (long)c.Channels, (long)c.ImageHeight, (long)c.ImageWidth);

        var precision = options.Precision;
        var normalized = Preprocess(g, c, image);
        var z = PatchEmbed(g, weights, precision, normalized);
        var mssaScale = g.Scalar("mssa.scale", (float)Math.Pow(c.DimHead, -0.5));
        var istaThreshold = g.Scalar("ista.threshold", (float)(c.IstaStep * c.IstaLambda));
        for (int i = 0; i < c.Depth; i++)
        {
            var attentionOutput = options.IncludeAttention ? CrateOnnxSchema.Attention(i) : null;
            var h = Mssa(g, weights, precision, i, z, mssaScale, attentionOutput);    // h = z + MSSA(LN1(z))
            z = Ista(g, weights, precision, i, h, istaThreshold);                      // z' = ISTA(LN2(h)), no residual
            if (attentionOutput != null)
            {
                g.Output(attentionOutput, CrateOnnxSchema.BatchDimension, (long)c.Heads, (long)c.TokenCount, (long)c.TokenCount);
                outputs.Add(attentionOutput);
            }
        }
        Head(g, weights, z);
        g.Output(CrateOnnxSchema.Logits, CrateOnnxSchema.BatchDimension, (long)c.NumClasses);
        g.Output(CrateOnnxSchema.Probabilities, CrateOnnxSchema.BatchDimension, (long)c.NumClasses);
        g.Output(CrateOnnxSchema.Features, CrateOnnxSchema.BatchDimension, (long)c.Dim);
        outputs.InsertRange(0, [CrateOnnxSchema.Logits, CrateOnnxSchema.Probabilities, CrateOnnxSchema.Features]);
        if (options.Segmentation != null) outputs.AddRange(SegmentationHead(g, c, options.Segmentation, z, normalized));
        if (options.IncludePatchTokens)
        {
            // The last layer's tokens without the class token and the prompts: Slice(z, [1+k:1+k+N]) on axis 1.
            g.Node("Slice", "tokens/drop_cls",
                [z, g.Int64s("tokens.starts", c.FirstPatchToken), g.Int64s("tokens.ends", c.TokenCount), g.Int64s("tokens.axes", 1)],
                CrateOnnxSchema.PatchTokens);
            g.Output(CrateOnnxSchema.PatchTokens, CrateOnnxSchema.BatchDimension, (long)c.NumPatches, (long)c.Dim);
            outputs.Add(CrateOnnxSchema.PatchTokens);
        }

        var doc = $"{c}. Input '{CrateOnnxSchema.Image}': float32 [batch, {c.Channels}, {c.ImageHeight}, {c.ImageWidth}], " +
                  "raw pixel values in [0, 255], normalised in the graph as (x / 255 - mean) / std." +
                  (precision == CrateOnnxPrecision.Int8 ? " The trunk's weight products are dynamically quantized to int8." : "");
        var metadata = Metadata(c, precision, outputs, options.ExtraMetadata);
        if (options.Segmentation != null) metadata = metadata.Append(new(CrateOnnxSchema.MaskClassNamesKey, JsonSerializer.Serialize(options.Segmentation.ClassNames)));
        return g.Build(CrateOnnxSchema.CrateVersion, doc, metadata);
    }

    private static IEnumerable<KeyValuePair<string, string>> Metadata(CrateConfig c, CrateOnnxPrecision precision, List<string> outputs, IReadOnlyDictionary<string, string> extra)
    {
        var channels = Enumerable.Range(0, c.Channels);
        var normalization = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["pixel_scale"] = CrateOnnxSchema.PixelScale,
            ["mean"] = channels.Select(c.MeanOf).ToArray(),
            ["std"] = channels.Select(c.StdOf).ToArray(),
        });
        var meta = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [CrateOnnxSchema.FormatKey] = CrateOnnxSchema.FormatVersion,
            [CrateOnnxSchema.VersionKey] = CrateOnnxSchema.CrateVersion,
            [CrateOnnxSchema.PresetKey] = c.Preset,
            [CrateOnnxSchema.ClassNamesKey] = JsonSerializer.Serialize(Enumerable.Range(0, c.NumClasses).Select(c.ClassName).ToArray()),
            [CrateOnnxSchema.ImageSizeKey] = string.Create(CultureInfo.InvariantCulture, $"{c.Channels}x{c.ImageHeight}x{c.ImageWidth}"),
            [CrateOnnxSchema.NormalizationKey] = normalization,
            [CrateOnnxSchema.OutputsKey] = string.Join(",", outputs),
            [CrateOnnxSchema.PrecisionKey] = CrateOnnxSchema.PrecisionName(precision),
            [CrateOnnxSchema.ConfigKey] = c.ToJson(),
        };
        foreach (var (k, v) in extra) meta[k] = v;
        return meta;
    }

    /// <summary><c>(x / 255 - mean[c]) / std[c]</c> with per-channel constants broadcast as <c>[1, C, 1, 1]</c>.</summary>
    private static string Preprocess(OnnxGraphBuilder g, CrateConfig c, string image)
    {
        long[] perChannel = [1, c.Channels, 1, 1];
        var mean = Enumerable.Range(0, c.Channels).Select(c.MeanOf).ToArray();
        var std = Enumerable.Range(0, c.Channels).Select(c.StdOf).ToArray();
        var x = g.Node("Div", "preprocess/scale", [image, g.Scalar("preprocess.pixel_scale", CrateOnnxSchema.PixelScale)]);
        x = g.Node("Sub", "preprocess/sub_mean", [x, g.Constant("preprocess.mean", perChannel, mean)]);
        return g.Node("Div", "preprocess/div_std", [x, g.Constant("preprocess.std", perChannel, std)]);
    }

    /// <summary>
    /// Patchify <c>b c (h p1) (w p2) -> b (h w) (p1 p2 c)</c>, LN -> Linear -> LN, prepend the class token, add positions;
    /// then, when the trunk has prompt tokens, insert them (without positions) after the class token: <c>[cls, prompts, patches]</c>.
    /// </summary>
    private static string PatchEmbed(OnnxGraphBuilder g, CrateWeights w, CrateOnnxPrecision precision, string x)
    {
        var c = w.Config;
        long p = c.PatchSize;
        x = g.Node("Reshape", "patch_embed/grid", [x, g.Int64s("patch_embed.grid_shape", -1, c.Channels, c.GridHeight, p, c.GridWidth, p)]);
        x = g.Node("Transpose", "patch_embed/channel_last", [x], null, Ints("perm", 0, 2, 4, 3, 5, 1)); // b, gh, gw, p1, p2, c
        x = g.Node("Reshape", "patch_embed/patches", [x, g.Int64s("patch_embed.patches_shape", -1, c.NumPatches, c.PatchDim)]);
        x = LayerNorm(g, w, "patch_embed/norm_in", "to_patch_embedding.1", x);
        x = Linear(g, w, precision, "patch_embed/linear", "to_patch_embedding.2", x, c.PatchDim, c.Dim);
        x = LayerNorm(g, w, "patch_embed/norm_out", "to_patch_embedding.3", x);

        // The class token [1, 1, dim] expanded to [batch, 1, dim]; batch comes from the input at run time.
        var batch = g.Node("Shape", "embed/batch_size", [x], null, Int("start", 0), Int("end", 1));
        var clsShape = g.Node("Concat", "embed/cls_shape", [batch, g.Int64s("embed.cls_tail", 1, c.Dim)], null, Int("axis", 0));
        var cls = g.Node("Expand", "embed/cls_expand", [Weight(g, w, "cls_token"), clsShape]);
        x = g.Node("Concat", "embed/prepend_cls", [cls, x], null, Int("axis", 1));
        x = g.Node("Add", "embed/add_pos", [x, Weight(g, w, "pos_embedding")]);
        if (c.PromptTokens == 0) return x;

        var promptShape = g.Node("Concat", "embed/prompt_shape", [batch, g.Int64s("embed.prompt_tail", c.PromptTokens, c.Dim)], null, Int("axis", 0));
        var prompts = g.Node("Expand", "embed/prompt_expand", [Weight(g, w, "prompt_tokens"), promptShape]);
        var axis = g.Int64s("embed.token_axis", 1);
        var clsWithPosition = g.Node("Slice", "embed/cls_with_pos", [x, g.Int64s("embed.cls_starts", 0), g.Int64s("embed.cls_ends", 1), axis]);
        var patches = g.Node("Slice", "embed/patches_with_pos", [x, g.Int64s("embed.patch_starts", 1), g.Int64s("embed.patch_ends", c.NumPatches + 1), axis]);
        return g.Node("Concat", "embed/insert_prompts", [clsWithPosition, prompts, patches], null, Int("axis", 1));
    }

    /// <summary>
    /// <c>z + Linear(concat_k softmax(U_k z (U_k z)^T / sqrt(p)) U_k z)</c> on <c>LN1(z)</c>, one shared projection U for q, k and v.
    /// </summary>
    private static string Mssa(OnnxGraphBuilder g, CrateWeights w, CrateOnnxPrecision precision, int layer, string z, string scale, string? attentionOutput)
    {
        var c = w.Config;
        var key = $"transformer.layers.{layer}.0";
        var scope = $"layer{layer}/mssa";
        var x = LayerNorm(g, w, $"{scope}/norm", $"{key}.norm", z);
        var uz = WeightMatMul(g, precision, $"{scope}/project", x, $"{key}.fn.qkv.weight.T", Transposed(w.Floats($"{key}.fn.qkv.weight"), c.InnerDim, c.Dim), c.Dim, c.InnerDim);
        int t = c.TokenCount;
        var split = g.Node("Reshape", $"{scope}/split_heads", [uz, g.Int64s($"{scope}.heads_shape", 0, 0, c.Heads, c.DimHead)]);
        var heads = g.Node("Transpose", $"{scope}/heads", [split], null, Ints("perm", 0, 2, 1, 3));          // [B, H, T, p]
        // Heads as one batch of B*H matrices: the keys' transpose is then a swap of the last two axes, which ONNX Runtime
        // folds into the MatMul; taken from [B, T, H, p] directly it was a copy that cost a quarter of the run.
        heads = g.Node("Reshape", $"{scope}/head_batch", [heads, g.Int64s($"{scope}.head_batch_shape", -1, t, c.DimHead)]);   // [B*H, T, p]
        var headsT = g.Node("Transpose", $"{scope}/heads_t", [heads], null, Ints("perm", 0, 2, 1));          // [B*H, p, T]
        var scores = g.Node("MatMul", $"{scope}/scores", [heads, headsT]);                                     // (U z)(U z)^T
        scores = g.Node("Mul", $"{scope}/scale", [scores, scale]);
        var attention = g.Node("Softmax", $"{scope}/softmax", [scores], null, Int("axis", -1));              // over keys
        if (attentionOutput != null)
            g.Node("Reshape", $"{scope}/attention_maps", [attention, g.Int64s($"{scope}.attention_shape", -1, c.Heads, t, t)], attentionOutput);
        var mixed = g.Node("MatMul", $"{scope}/mix", [attention, heads]);                                      // A (U z), [B*H, T, p]
        mixed = g.Node("Reshape", $"{scope}/unbatch_heads", [mixed, g.Int64s($"{scope}.unbatch_shape", -1, c.Heads, t, c.DimHead)]);
        mixed = g.Node("Transpose", $"{scope}/merge_perm", [mixed], null, Ints("perm", 0, 2, 1, 3));
        mixed = g.Node("Reshape", $"{scope}/merge_heads", [mixed, g.Int64s($"{scope}.merge_shape", 0, 0, c.InnerDim)]);
        var output = Linear(g, w, precision, $"{scope}/out", $"{key}.fn.to_out.0", mixed, c.InnerDim, c.Dim);
        return g.Node("Add", $"{scope}/residual", [z, output]);
    }

    /// <summary>
    /// <c>Relu(LN2(h) M - eta lambda)</c> with the folded step matrix <c>M = I + eta (D - D^T D)</c>; in int8 as
    /// <c>Relu(x + x A - eta lambda)</c> with <c>A = eta (D - D^T D)</c> quantized alone.
    /// </summary>
    /// <remarks>
    /// M is the identity plus a small update (entries of A are about eta / sqrt(dim)). Quantized whole, each column's
    /// scale would be set by its diagonal 1, leaving A about one int8 level: the ISTA step would mostly vanish (on a
    /// CRATE-mini with random weights, quantizing M whole moved the logits by 19% of their RMS, quantizing A alone by 5%).
    /// Quantizing A with its own scales and adding x in float32 keeps the update's resolution for one elementwise Add.
    /// </remarks>
    private static string Ista(OnnxGraphBuilder g, CrateWeights w, CrateOnnxPrecision precision, int layer, string h, string threshold)
    {
        var c = w.Config;
        var key = $"transformer.layers.{layer}.1";
        var scope = $"layer{layer}/ista";
        var x = LayerNorm(g, w, $"{scope}/norm", $"{key}.norm", h);
        var d = w.Floats($"{key}.fn.weight");
        x = precision == CrateOnnxPrecision.Int8
            ? g.Node("Add", $"{scope}/step", [x, WeightMatMul(g, precision, $"{scope}/update", x, $"{key}.fn.step_update", StepMatrix(d, c.Dim, c.IstaStep, identity: false), c.Dim, c.Dim)])
            : WeightMatMul(g, precision, $"{scope}/step", x, $"{key}.fn.step_matrix", StepMatrix(d, c.Dim, c.IstaStep), c.Dim, c.Dim);
        x = g.Node("Sub", $"{scope}/shrink", [x, threshold]);
        return g.Node("Relu", $"{scope}/relu", [x]);
    }

    /// <summary>Pool (class token or mean) into <c>features</c>, then LN -> Linear into <c>logits</c> and softmax into <c>probabilities</c>.</summary>
    private static void Head(OnnxGraphBuilder g, CrateWeights w, string z)
    {
        var c = w.Config;
        var features = c.Pool == Pooling.Mean
            ? g.Node("ReduceMean", "head/pool", [z], CrateOnnxSchema.Features, Ints("axes", 1), Int("keepdims", 0))
            : g.Node("Gather", "head/pool", [z, g.Int64Scalar("head.cls_index", 0)], CrateOnnxSchema.Features, Int("axis", 1));
        var x = LayerNorm(g, w, "head/norm", "mlp_head.0", features);
        var logits = g.Node("MatMul", "head/linear", [x, TransposedWeight(g, w, "mlp_head.1.weight", c.NumClasses, c.Dim)]);
        g.Node("Add", "head/bias", [logits, Weight(g, w, "mlp_head.1.bias")], CrateOnnxSchema.Logits);
        g.Node("Softmax", "head/softmax", [CrateOnnxSchema.Logits], CrateOnnxSchema.Probabilities, Int("axis", -1));
    }

    private static string LayerNorm(OnnxGraphBuilder g, CrateWeights w, string name, string key, string x) =>
        g.Node("LayerNormalization", name, [x, Weight(g, w, $"{key}.weight"), Weight(g, w, $"{key}.bias")], null,
            Int("axis", -1), Float("epsilon", LayerNormEpsilon));

    /// <summary><c>x W^T + b</c> as MatMul + Add, W stored transposed.</summary>
    private static string Linear(OnnxGraphBuilder g, CrateWeights w, CrateOnnxPrecision precision, string scope, string key, string x, int inFeatures, int outFeatures)
    {
        x = WeightMatMul(g, precision, $"{scope}/matmul", x, $"{key}.weight.T", Transposed(w.Floats($"{key}.weight"), outFeatures, inFeatures), inFeatures, outFeatures);
        return g.Node("Add", $"{scope}/bias", [x, Weight(g, w, $"{key}.bias")]);
    }

    /// <summary>A parameter stored as it is, under its reference key.</summary>
    private static string Weight(OnnxGraphBuilder g, CrateWeights w, string key)
    {
        var shape = CrateWeights.Layout(w.Config).First(p => p.Name == key).Shape;
        return g.Constant(key, shape, w.Floats(key));
    }

    /// <summary>A <c>[rows, cols]</c> Linear weight stored as its transpose <c>[cols, rows]</c>, named <c>key.T</c>.</summary>
    private static string TransposedWeight(OnnxGraphBuilder g, CrateWeights w, string key, int rows, int cols) =>
        TransposedConstant(g, key, w.Floats(key), rows, cols);

    /// <summary>A row-major <c>[rows, cols]</c> matrix stored as its transpose <c>[cols, rows]</c>, named <c>key.T</c>.</summary>
    private static string TransposedConstant(OnnxGraphBuilder g, string key, float[] src, int rows, int cols) =>
        g.Constant($"{key}.T", [cols, rows], Transposed(src, rows, cols));

    /// <summary>The transpose <c>[cols, rows]</c> of a row-major <c>[rows, cols]</c> matrix.</summary>
    private static float[] Transposed(float[] src, int rows, int cols)
    {
        var t = new float[src.Length];
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < cols; k++)
                t[k * rows + r] = src[r * cols + k];
        return t;
    }

    /// <summary><c>M = I + eta (D - D^T D)</c> (or without the identity) for a row-major <c>[dim, dim]</c> D, accumulated in double.</summary>
    internal static float[] StepMatrix(float[] d, int dim, double eta, bool identity = true)
    {
        // Columns of D as contiguous rows so (D^T D)[j, k] = dot(column j, column k).
        var columns = new double[dim * dim];
        for (int i = 0; i < dim; i++)
            for (int j = 0; j < dim; j++)
                columns[j * dim + i] = d[i * dim + j];
        var m = new float[dim * dim];
        Parallel.For(0, dim, j =>
        {
            var cj = columns.AsSpan(j * dim, dim);
            for (int k = 0; k < dim; k++)
            {
                var gram = TensorPrimitives.Dot<double>(cj, columns.AsSpan(k * dim, dim));
                m[j * dim + k] = (float)((identity && j == k ? 1.0 : 0.0) + eta * (d[j * dim + k] - gram));
            }
        });
        return m;
    }
}
