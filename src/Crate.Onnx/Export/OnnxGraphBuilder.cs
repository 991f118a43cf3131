using System.Runtime.InteropServices;
using Crate.Onnx.Proto;
using Google.Protobuf;

namespace Crate.Onnx.Export;

/// <summary>
/// Builds an ONNX graph node by node. Every node's single output tensor takes the node's name unless told
/// otherwise, so the graph reads like the model (<c>layer3/mssa/softmax</c>); names must be unique.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    /// <summary>The ONNX IR version written (IR 8 goes with opset 17).</summary>
    public const long IrVersion = 8;
    /// <summary>The default-domain opset the graph uses (17 is the first with LayerNormalization).</summary>
    public const long Opset = 17;

    private readonly GraphProto _graph;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public OnnxGraphBuilder(string graphName) => _graph = new GraphProto { Name = graphName };

    /// <summary>Declares a float32 graph input; a dimension is a size (<see cref="long"/>) or a symbolic name (<see cref="string"/>).</summary>
    public string Input(string name, params object[] dims)
    {
        Claim(name);
        _graph.Input.Add(ValueInfo(name, dims));
        return name;
    }

    /// <summary>Declares the float32 tensor <paramref name="name"/> (already produced by a node) a graph output.</summary>
    public void Output(string name, params object[] dims) => Output(name, TensorProto.Types.DataType.Float, dims);

    /// <summary>Declares the int64 tensor <paramref name="name"/> (already produced by a node, e.g. an ArgMax) a graph output.</summary>
    public void Int64Output(string name, params object[] dims) => Output(name, TensorProto.Types.DataType.Int64, dims);

    private void Output(string name, TensorProto.Types.DataType type, object[] dims)
    {
        if (!_names.Contains(name)) throw new InvalidOperationException($"Graph output '{name}' is produced by no node.");
        _graph.Output.Add(ValueInfo(name, dims, type));
    }

    /// <summary>Adds a float32 constant stored once in the file, returning its name.</summary>
    public string Constant(string name, long[] dims, ReadOnlySpan<float> values) =>
        AddInitializer(name, dims, TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(values));

    /// <summary>Adds an int8 constant (quantized weights) stored once in the file, returning its name.</summary>
    public string Int8Constant(string name, long[] dims, ReadOnlySpan<sbyte> values) =>
        AddInitializer(name, dims, TensorProto.Types.DataType.Int8, MemoryMarshal.AsBytes(values));

    /// <summary>Adds a 1-D int64 constant (shapes, axes), returning its name.</summary>
    public string Int64s(string name, params long[] values) =>
        AddInitializer(name, [values.Length], TensorProto.Types.DataType.Int64, MemoryMarshal.AsBytes(values.AsSpan()));

    /// <summary>Adds an int64 scalar constant (a Gather index), returning its name.</summary>
    public string Int64Scalar(string name, long value) =>
        AddInitializer(name, [], TensorProto.Types.DataType.Int64, MemoryMarshal.AsBytes(new[] { value }.AsSpan()));

    /// <summary>Adds a float32 scalar constant, returning its name.</summary>
    public string Scalar(string name, float value) => Constant(name, [], [value]);

    /// <summary>Adds a node whose output is named <paramref name="output"/> (default: the node's name); returns the output name.</summary>
    public string Node(string opType, string name, string[] inputs, string? output = null, params AttributeProto[] attributes)
    {
        output ??= name;
        AddNode(opType, name, inputs, [output], attributes);
        return output;
    }

    /// <summary>
    /// Adds a node with several outputs (e.g. <c>DynamicQuantizeLinear</c>'s value, scale and zero point), named
    /// <c>{name}:{suffix}</c> for each of <paramref name="outputSuffixes"/>; returns the output names in order.
    /// </summary>
    public string[] MultiOutputNode(string opType, string name, string[] inputs, string[] outputSuffixes, params AttributeProto[] attributes)
    {
        var outputs = outputSuffixes.Select(s => $"{name}:{s}").ToArray();
        AddNode(opType, name, inputs, outputs, attributes);
        return outputs;
    }

    private void AddNode(string opType, string name, string[] inputs, string[] outputs, AttributeProto[] attributes)
    {
        foreach (var o in outputs) Claim(o);
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
    }

    /// <summary>An integer attribute.</summary>
    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>A float attribute.</summary>
    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    /// <summary>An integer-list attribute.</summary>
    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    /// <summary>Wraps the graph in a model with IR 8, opset 17 and the given metadata.</summary>
    public ModelProto Build(string producerVersion, string docString, IEnumerable<KeyValuePair<string, string>> metadata)
    {
        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "Crate",
            ProducerVersion = producerVersion,
            Domain = "ai.crate",
            ModelVersion = 1,
            DocString = docString,
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in metadata) model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return model;
    }

    private string AddInitializer(string name, long[] dims, TensorProto.Types.DataType type, ReadOnlySpan<byte> littleEndian)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX export writes raw little-endian data; this machine is big-endian.");
        Claim(name);
        var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(littleEndian) };
        tensor.Dims.AddRange(dims);
        _graph.Initializer.Add(tensor);
        return name;
    }

    private void Claim(string name)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"ONNX graph already has a tensor named '{name}'.");
    }

    private static ValueInfoProto ValueInfo(string name, object[] dims, TensorProto.Types.DataType type = TensorProto.Types.DataType.Float)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d switch
            {
                string symbol => new TensorShapeProto.Types.Dimension { DimParam = symbol },
                long size => new TensorShapeProto.Types.Dimension { DimValue = size },
                int size => new TensorShapeProto.Types.Dimension { DimValue = size },
                _ => throw new ArgumentException($"Dimension {d} of '{name}' must be a size or a symbolic name."),
            });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
