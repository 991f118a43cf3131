using Crate.Core.Model;
using Crate.Onnx;
using Crate.Onnx.Proto;
using Google.Protobuf;
using static Crate.Onnx.Export.OnnxGraphBuilder;

namespace Crate.MLNet.Onnx;

/// <summary>The pixel column a row-scoring graph reads: its name, element type and image geometry.</summary>
/// <param name="Column">The ML.NET column (and ONNX input) name.</param>
/// <param name="IsBytes">The column holds bytes (an ONNX uint8 input cast to float in the graph) rather than floats.</param>
/// <param name="Config">The network the pixels feed (channels and image size).</param>
internal sealed record PixelInput(string Column, bool IsBytes, CrateConfig Config);

/// <summary>
/// Rewrites an exported Crate model into the graph ML.NET's <c>ApplyOnnxModel</c> scores one row at a time.
/// </summary>
/// <remarks>
/// Why a rewritten graph rather than the exported one: <c>ApplyOnnxModel</c> binds columns to graph inputs and
/// outputs <b>by name</b> and shapes a column after the tensor. So the input is named after the user's pixel column,
/// which makes ML.NET's own schema errors name that column, and a byte column is cast to float inside the graph; the
/// outputs drop the batch dimension (<c>logits [K]</c>, <c>features [dim]</c>, <c>mask [H, W]</c>) rather than <c>[1, K]</c>. Everything else (the network,
/// its metadata) is the exported graph unchanged. The rewritten graph takes one
/// image (<c>[1, C, H, W]</c>); the exported file stays the batched one.
/// </remarks>
internal static class RowScoringGraph
{
    /// <summary>The classifier graph: the logits as a 1-D <c>[K]</c> output named <paramref name="logitsColumn"/> (ML.NET's multiclass scorer takes them from there).</summary>
    public static byte[] ForClassification(byte[] crateModel, PixelInput input, string logitsColumn)
    {
        var model = ModelProto.Parser.ParseFrom(crateModel);
        var g = model.Graph;
        var names = new Names(g, [logitsColumn, input.Column]);
        var logits = names.Internal(CrateOnnxSchema.Logits);
        BindInput(g, names, input);
        int classes = input.Config.NumClasses;
        g.Node.Add(Node("Reshape", logitsColumn, [logits, Int64Initializer(g, names.Fresh("mlnet/logits_shape"), [classes], [1])]));
        g.Output.Clear();
        g.Output.Add(Tensor(logitsColumn, TensorProto.Types.DataType.Float, classes));
        return model.ToByteArray();
    }

    /// <summary>The featurizer graph: the pooled features as a 1-D <c>[dim]</c> output named <paramref name="featuresColumn"/>.</summary>
    public static byte[] ForFeatures(byte[] crateModel, PixelInput input, string featuresColumn)
    {
        var model = ModelProto.Parser.ParseFrom(crateModel);
        var g = model.Graph;
        var names = new Names(g, [featuresColumn, input.Column]);
        var features = names.Internal(CrateOnnxSchema.Features);
        BindInput(g, names, input);
        g.Node.Add(Node("Reshape", featuresColumn, [features, Int64Initializer(g, names.Fresh("mlnet/feature_shape"), [input.Config.Dim], [1])]));
        g.Output.Clear();
        g.Output.Add(Tensor(featuresColumn, TensorProto.Types.DataType.Float, input.Config.Dim));
        return model.ToByteArray();
    }

    /// <summary>
    /// The segmentation graph: the class-id mask as a uint8 <c>[H, W]</c> output named <paramref name="maskColumn"/> (ONNX ArgMax's int64 ids,
    /// which are below 255, cast), and, when <paramref name="scoresColumn"/> is given, the per-pixel class probabilities (softmax of
    /// <c>mask_logits</c> over the classes) as a float <c>[K, H, W]</c> output of that name.
    /// </summary>
    public static byte[] ForSegmentation(byte[] crateModel, PixelInput input, int numClasses, string maskColumn, string? scoresColumn)
    {
        var model = ModelProto.Parser.ParseFrom(crateModel);
        var g = model.Graph;
        var names = new Names(g, scoresColumn == null ? [maskColumn, input.Column] : [maskColumn, scoresColumn, input.Column]);
        var mask = names.Internal(CrateOnnxSchema.Mask);
        BindInput(g, names, input);
        var c = input.Config;
        var ids = names.Fresh("mlnet/mask_bytes");
        g.Node.Add(Node("Cast", ids, [mask], Int("to", (long)TensorProto.Types.DataType.Uint8)));
        g.Node.Add(Node("Reshape", maskColumn, [ids, Int64Initializer(g, names.Fresh("mlnet/mask_shape"), [c.ImageHeight, c.ImageWidth], [2])]));
        g.Output.Clear();
        g.Output.Add(Tensor(maskColumn, TensorProto.Types.DataType.Uint8, c.ImageHeight, c.ImageWidth));
        if (scoresColumn != null)
        {
            var probabilities = names.Fresh("mlnet/mask_probabilities");
            g.Node.Add(Node("Softmax", probabilities, [names.Internal(CrateOnnxSchema.MaskLogits)], Int("axis", 1)));
            g.Node.Add(Node("Reshape", scoresColumn, [probabilities,
                Int64Initializer(g, names.Fresh("mlnet/scores_shape"), [numClasses, c.ImageHeight, c.ImageWidth], [3])]));
            g.Output.Add(Tensor(scoresColumn, TensorProto.Types.DataType.Float, numClasses, c.ImageHeight, c.ImageWidth));
        }
        return model.ToByteArray();
    }

    /// <summary>Replaces the <c>image [batch, C, H, W]</c> input with the pixel column <c>[1, C, H, W]</c> feeding it.</summary>
    private static void BindInput(GraphProto g, Names names, PixelInput input)
    {
        var image = names.Internal(CrateOnnxSchema.Image);
        var c = input.Config;
        g.Input.Clear();
        g.Input.Add(Tensor(input.Column, input.IsBytes ? TensorProto.Types.DataType.Uint8 : TensorProto.Types.DataType.Float,
            1, c.Channels, c.ImageHeight, c.ImageWidth));
        var bind = input.IsBytes
            ? Node("Cast", image, [input.Column], Int("to", (long)TensorProto.Types.DataType.Float))
            : Node("Identity", image, [input.Column]);
        g.Node.Insert(0, bind);
    }

    private static NodeProto Node(string op, string output, string[] inputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = output };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static string Int64Initializer(GraphProto g, string name, long[] values, long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Int64Data.AddRange(values);
        tensor.Dims.AddRange(dims);
        g.Initializer.Add(tensor);
        return name;
    }

    private static ValueInfoProto Tensor(string name, TensorProto.Types.DataType type, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    /// <summary>
    /// Tensor names of a graph. Names the rewrite introduces (the user's columns) win: an internal tensor that happens to
    /// carry one of them (a column called "image" or "logits") is renamed out of the way.
    /// </summary>
    private sealed class Names
    {
        private readonly GraphProto _graph;
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _renamed = new(StringComparer.Ordinal);

        public Names(GraphProto graph, IEnumerable<string> introduced)
        {
            _graph = graph;
            foreach (var n in graph.Node) { _used.UnionWith(n.Input); _used.UnionWith(n.Output); }
            foreach (var t in graph.Initializer) _used.Add(t.Name);
            foreach (var v in graph.Input.Concat(graph.Output)) _used.Add(v.Name);
            var wanted = introduced.ToList();
            foreach (var name in wanted.Where(_used.Contains).ToList())
            {
                var fresh = Fresh("crate/" + name);
                Rename(name, fresh);
                _renamed[name] = fresh;
            }
            _used.UnionWith(wanted);
        }

        /// <summary>The current name of the exported graph's tensor <paramref name="name"/>.</summary>
        public string Internal(string name) => _renamed.GetValueOrDefault(name, name);

        /// <summary>A name not yet used in the graph, based on <paramref name="stem"/>.</summary>
        public string Fresh(string stem)
        {
            var name = stem;
            for (int i = 1; !_used.Add(name); i++) name = $"{stem}_{i}";
            return name;
        }

        private void Rename(string from, string to)
        {
            foreach (var n in _graph.Node)
            {
                for (int i = 0; i < n.Input.Count; i++) if (n.Input[i] == from) n.Input[i] = to;
                for (int i = 0; i < n.Output.Count; i++) if (n.Output[i] == from) n.Output[i] = to;
            }
            foreach (var t in _graph.Initializer.Where(t => t.Name == from)) t.Name = to;
            foreach (var v in _graph.Input.Concat(_graph.Output).Concat(_graph.ValueInfo).Where(v => v.Name == from)) v.Name = to;
        }
    }
}
