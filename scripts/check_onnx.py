#!/usr/bin/python3
"""Runs the official ONNX checker (full_check: strict shape inference) on a model and prints a JSON summary.

Usage: /usr/bin/python3 scripts/check_onnx.py MODEL.onnx
Exit status 0 when the model passes; 1 when it fails (the checker's message on stderr); 2 when the `onnx`
package is missing (Debian's python3-onnx: run scripts/setup.sh).
"""
import json
import sys

try:
    import onnx
except ImportError:
    sys.stderr.write("the Python 'onnx' package is missing for %s: run scripts/setup.sh (installs Debian's python3-onnx)\n" % sys.executable)
    sys.exit(2)


def shape(value_info):
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims]


def main(path):
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        sys.stderr.write("ONNX checker rejected %s: %s\n" % (path, e))
        return 1
    graph = model.graph
    print(json.dumps({
        "onnx_version": onnx.__version__,
        "ir_version": model.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": model.producer_name,
        "inputs": {i.name: shape(i) for i in graph.input},
        "outputs": {o.name: shape(o) for o in graph.output},
        "op_types": sorted({n.op_type for n in graph.node}),
        "node_domains": sorted({n.domain for n in graph.node}),
        "nodes": len(graph.node),
        "initializers": len(graph.initializer),
        "metadata": {p.key: p.value for p in model.metadata_props},
    }))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(64)
    sys.exit(main(sys.argv[1]))
