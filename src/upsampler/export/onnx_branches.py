"""One ONNX file holding two forms of a streaming step, chosen per call by an ``If`` node.

The step with the padding fix-up (warm-up and flush) and the one without (steady state)
compute the same audio wherever no window reaches an edge; the fix-up costs about a sixth
of a small chunk's time. ``with_steady_branch`` joins the two exported graphs::

    edges = position < warmup  or  end > 0  or  frames < chunk
    If(edges) then: the edge step   else: the steady step

Both read the outer graph's inputs; weights the two graphs share (same name, same bytes)
are stored once, in the outer graph. Every other name inside a branch gets the branch's
prefix, so no name is defined twice. Needs ``onnx``.
"""

from __future__ import annotations

from typing import Any

EDGE, STEADY = "edge", "steady"


def _branch(graph: Any, prefix: str, keep: set[str], shared: set[str]) -> Any:
    """``graph`` as an ``If`` branch: no inputs, its own names prefixed (except ``keep``:
    the outer inputs, and ``shared`` initializers, both read from the outer scope)."""
    import onnx

    outer = keep | shared

    def rename(name: str) -> str:
        return name if (not name or name in outer) else f"{prefix}/{name}"

    nodes = []
    for node in graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = rename(node.name)
        copy.input[:] = [rename(name) for name in node.input]
        copy.output[:] = [rename(name) for name in node.output]
        nodes.append(copy)
    initializers = []
    for tensor in graph.initializer:
        if tensor.name not in shared:
            copy = onnx.TensorProto()
            copy.CopyFrom(tensor)
            copy.name = rename(tensor.name)
            initializers.append(copy)
    outputs = []
    for value in graph.output:
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(value)
        copy.name = rename(value.name)
        outputs.append(copy)
    return onnx.helper.make_graph(nodes, f"{prefix}_step", [], outputs, initializers)


def with_steady_branch(edge: Any, steady: Any, warmup: int, chunk: int,
                       position: str, end: str, frames: str) -> Any:
    """A model running ``edge`` where a window may reach an edge, else ``steady`` (both
    ``ModelProto`` of one step, same inputs and outputs); see the module docstring."""
    import onnx
    from onnx import TensorProto, helper

    inputs = {value.name for value in edge.graph.input}
    steady_weights = {t.name: t.raw_data for t in steady.graph.initializer}
    shared = {t.name for t in edge.graph.initializer
              if steady_weights.get(t.name) == t.raw_data and t.raw_data}
    scalars = {"edge_warmup": warmup, "edge_zero": 0, "edge_chunk": chunk}
    constants = [helper.make_tensor(name, TensorProto.INT64, [], [value])
                 for name, value in scalars.items()]
    nodes = [
        helper.make_node("Less", [position, "edge_warmup"], ["edge_warming"]),
        helper.make_node("Greater", [end, "edge_zero"], ["edge_ended"]),
        helper.make_node("Less", [frames, "edge_chunk"], ["edge_ending"]),
        helper.make_node("Or", ["edge_warming", "edge_ended"], ["edge_either"]),
        helper.make_node("Or", ["edge_either", "edge_ending"], ["edges"]),
        helper.make_node(
            "If", ["edges"], [value.name for value in edge.graph.output],
            then_branch=_branch(edge.graph, EDGE, inputs, shared),
            else_branch=_branch(steady.graph, STEADY, inputs, shared)),
    ]
    weights = [t for t in edge.graph.initializer if t.name in shared]
    graph = helper.make_graph(nodes, "stream_step", list(edge.graph.input),
                              list(edge.graph.output), weights + constants)
    model = helper.make_model(graph, opset_imports=list(edge.opset_import),
                              producer_name=edge.producer_name)
    model.ir_version = edge.ir_version
    functions = {f.name: f for f in [*edge.functions, *steady.functions]}
    model.functions.extend(functions.values())
    onnx.checker.check_model(model)
    return model


__all__ = ["with_steady_branch"]
