"""Importer ``onnx``: an ONNX model as a trace (one op per node, roofline durations).

What it keeps
    Every node of the main graph, in topological order (the file's order when it is
    topological, else a deterministic sort, with a warning). Control-flow nodes (``If``,
    ``Loop``, ``Scan``) stay opaque: their subgraphs are not expanded (warned).
Tensors
    Initializers are persistent weights that exist before the first op. Graph inputs that are
    not initializers are inputs (no producer). Every other value is the output of its node,
    sized from ONNX shape inference (``value_info``): symbolic dimensions of the graph inputs
    are fixed first from ``--input-shape NAME=DIMS``, the rest to ``--default-dim`` (warned).
    A value whose shape stays unknown is sized like its producer's largest input (warned).
    Graph outputs are persistent (they outlive the graph).
Durations
    The roofline model (:mod:`solver.importers.roofline`) from each node's FLOPs (MatMul,
    Gemm, Conv, attention) or bytes moved; ``meta["durations"]`` says so.

Needs the optional ``onnx`` package (``pip install 'tierplan[onnx]'``).

Examples
--------
>>> from onnx import TensorProto, helper  # doctest: +SKIP
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])  # doctest: +SKIP
>>> w = helper.make_tensor("w", TensorProto.FLOAT, [8, 2], [0.0] * 16)  # doctest: +SKIP
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 2])  # doctest: +SKIP
>>> g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w])  # doctest: +SKIP
>>> r = import_onnx(helper.make_model(g))  # doctest: +SKIP
>>> [(t["id"], t["bytes"], t["kind"]) for t in r.document["tensors"]]  # doctest: +SKIP
[('w', 64, 'weight'), ('x', 128, 'input'), ('y', 32, 'activation')]
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from solver.errors import InputError
from solver.importers.result import ImportResult, op_entry, safe_id, tensor_entry, top_counts, trace_document
from solver.importers.roofline import Roofline, TensorShape, estimate
from solver.importers.shapes import parse_named_shape

# ONNX TensorProto.DataType -> bytes per element (4-bit types rounded up to one byte).
_ELEM_BYTES: Mapping[int, int] = MappingProxyType({1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 8: 8, 9: 1, 10: 2,
                                                   11: 8, 12: 4, 13: 8, 14: 8, 15: 16,
               16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 21: 1, 22: 1, 23: 1})
_CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})


def require_onnx() -> Any:
    """Import ``onnx`` or raise ImportError with the install hint."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the onnx importer needs the 'onnx' package: pip install 'tierplan[onnx]' "
                          "(or pip install onnx)") from None
    return onnx


def _load(onnx: Any, source: Any) -> tuple[Any, str]:
    if isinstance(source, onnx.ModelProto):
        return source, "<model>"
    path = os.fspath(source)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError.single(path, "", f"cannot read file: {exc.strerror or exc}") from None
    try:
        model = onnx.ModelProto()
        model.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError (and others) on truncated input
        raise InputError.single(path, "", f"not a readable ONNX model: {exc}") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.input):
        raise InputError.single(path, "graph", "not a readable ONNX model: no graph (truncated or not ONNX?)")
    return model, path


def _dims(vi: Any) -> tuple[list[int | None], int]:
    t = vi.type.tensor_type
    dims: list[int | None] = []
    if t.HasField("shape"):
        for d in t.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else None)
    return dims, t.elem_type


def _fix_inputs(model: Any, given: Mapping[str, tuple[int, ...]], default_dim: int, init_names: set[str],
                warnings: list[str], file: str) -> None:
    defaulted: list[str] = []
    names = {vi.name for vi in model.graph.input}
    for name in given:
        if name not in names:
            raise InputError.single("--input-shape", name, f"no graph input named {name!r}; inputs: "
                                    + ", ".join(sorted(names - init_names)))
    for vi in model.graph.input:
        if vi.name in init_names or not vi.type.HasField("tensor_type"):
            continue
        shape = vi.type.tensor_type.shape
        if vi.name in given:
            dims = given[vi.name]
            if len(shape.dim) and len(shape.dim) != len(dims):
                raise InputError.single("--input-shape", vi.name, f"input {vi.name!r} has rank {len(shape.dim)}, "
                                        f"got {len(dims)} dims")
            del shape.dim[:]
            for d in dims:
                shape.dim.add().dim_value = d
            continue
        for d in shape.dim:
            if not d.HasField("dim_value"):
                label = d.dim_param or "?"
                d.Clear()
                d.dim_value = default_dim
                defaulted.append(f"{vi.name}.{label}")
    if defaulted:
        warnings.append(f"symbolic input dimensions set to {default_dim} (use --input-shape NAME=DIMS): "
                        + ", ".join(defaulted[:8]) + (" ..." if len(defaulted) > 8 else ""))


def _topological(nodes: Sequence[Any], available: set[str], file: str) -> tuple[list[int], bool]:
    producer: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if o:
                producer[o] = i
    deps: list[set[int]] = []
    for i, n in enumerate(nodes):
        deps.append({producer[x] for x in n.input if x and x in producer and producer[x] != i})
    in_order = all(all(d < i for d in deps[i]) for i in range(len(nodes)))
    if in_order:
        return list(range(len(nodes))), True
    users: list[list[int]] = [[] for _ in nodes]
    indeg = [len(d) for d in deps]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    ready = [i for i in range(len(nodes)) if indeg[i] == 0]
    heapq.heapify(ready)
    out: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        out.append(i)
        for j in users[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(ready, j)
    if len(out) != len(nodes):
        raise InputError.single(file, "graph.node", "the graph has a cycle")
    return out, False


def import_onnx(source: Any, *, input_shapes: Sequence[str] | Mapping[str, Sequence[int]] | None = None,
                default_dim: int = 1, roofline: Roofline | None = None, name: str | None = None) -> ImportResult:
    """Import an ONNX model as a ``tierplan.trace/1`` document.

    Parameters
    ----------
    source : path or onnx.ModelProto
        The ``.onnx`` file or a loaded model.
    input_shapes : mapping or list of ``NAME=DIMS``, optional
        Shapes for graph inputs with symbolic dimensions.
    default_dim : int
        Value for symbolic dimensions not given (default 1, warned).
    roofline : Roofline, optional
        Cost model for durations (default :class:`Roofline()`).
    name : str, optional
        Trace name (default: the graph name).

    Returns
    -------
    ImportResult

    Raises
    ------
    InputError
        An unreadable or truncated model, a bad ``--input-shape``.
    ImportError
        When ``onnx`` is not installed.
    """
    onnx = require_onnx()
    model_in, file = _load(onnx, source)
    model = onnx.ModelProto()
    model.CopyFrom(model_in)
    warnings: list[str] = []
    model_rl = roofline or Roofline()
    if default_dim < 1:
        raise InputError.single("--default-dim", "", f"must be >= 1, got {default_dim}")
    given: dict[str, tuple[int, ...]] = {}
    if isinstance(input_shapes, Mapping):
        given = {k: tuple(int(d) for d in v) for k, v in input_shapes.items()}
    elif input_shapes:
        for item in input_shapes:
            try:
                input_name, dims = parse_named_shape(item)
            except ValueError as exc:
                raise InputError.single("--input-shape", item, str(exc)) from None
            given[input_name] = dims
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    _fix_inputs(model, given, default_dim, init_names, warnings, file)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # inference errors on malformed or custom ops
        warnings.append(f"ONNX shape inference failed ({str(exc).splitlines()[0][:200]}); using the shapes in "
                        "the file only")
        inferred = model
    graph = inferred.graph

    info: dict[str, tuple[list[int | None], int]] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        if vi.type.HasField("tensor_type"):
            info.setdefault(vi.name, _dims(vi))
    inits: dict[str, tuple[list[int | None], int]] = {}
    for t in graph.initializer:
        inits[t.name] = (list(t.dims), t.data_type)
    for n in graph.node:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    info[n.output[0]] = (list(a.t.dims), a.t.data_type)

    order, was_sorted = _topological(list(graph.node), set(info) | init_names, file)
    if not was_sorted:
        warnings.append("the file's node order is not topological; sorted (ties by file position)")

    unknown_shape: list[str] = []
    guessed: list[str] = []
    elem_guess: Counter = Counter()

    def shape_of(vname: str) -> TensorShape | None:
        src = inits.get(vname) or info.get(vname)
        if src is None:
            return None
        dims, elem = src
        if any(d is None for d in dims) or (not dims and vname not in inits and elem == 0):
            return None
        size = _ELEM_BYTES.get(elem)
        if size is None:
            elem_guess[str(elem)] += 1
            size = 4
        return TensorShape(tuple(int(d) for d in dims), size)  # type: ignore[arg-type]

    tensors: list[dict[str, Any]] = []
    known: dict[str, int] = {}
    outputs_of_graph = {o.name for o in graph.output}
    for t in graph.initializer:
        s = shape_of(t.name)
        b = s.nbytes if s else 0
        if b > 0:
            tensors.append(tensor_entry(t.name, b, "weight", persistent=True))
            known[t.name] = b
    for vi in graph.input:
        if vi.name in init_names:
            continue
        s = shape_of(vi.name)
        if s is None or s.nbytes <= 0:
            unknown_shape.append(vi.name)
            continue
        tensors.append(tensor_entry(vi.name, s.nbytes, "input", persistent=vi.name in outputs_of_graph))
        known[vi.name] = s.nbytes

    ops: list[dict[str, Any]] = []
    used_ids: set[str] = set()
    control: Counter = Counter()
    unknown_ops: Counter = Counter()
    empty = 0
    for i in order:
        node = graph.node[i]
        base = safe_id(node.name, 80) if node.name else f"{node.op_type}_{i}"
        oid, k = base, 1
        while oid in used_ids:
            k += 1
            oid = f"{base}~{k}"
        used_ids.add(oid)
        if node.op_type in _CONTROL_FLOW:
            control[node.op_type] += 1
        in_shapes = [s for s in (shape_of(x) for x in node.input if x) if s is not None]
        largest_in = max((s.nbytes for s in in_shapes), default=0)
        outs: list[str] = []
        out_shapes: list[TensorShape] = []
        for o in node.output:
            if not o:
                continue
            s = shape_of(o)
            if s is None:
                b = largest_in
                guessed.append(o)
                if b > 0:
                    out_shapes.append(TensorShape((b // 4,), 4))
            else:
                b = s.nbytes
                out_shapes.append(s)
            if b <= 0:
                empty += 1
                continue
            tensors.append(tensor_entry(o, b, "activation", persistent=o in outputs_of_graph))
            known[o] = b
            outs.append(o)
        trans_a = any(a.name == "transA" and a.i == 1 for a in node.attribute)
        cost = estimate(node.op_type, in_shapes, out_shapes, trans_a=trans_a)
        if not cost.known:
            unknown_ops[node.op_type] += 1
        inputs = []
        for x in node.input:
            if x and x in known and x not in inputs:
                inputs.append(x)
        ops.append(op_entry(oid, model_rl.time(cost.flops, cost.bytes), cost.kind if cost.kind != "other"
                            else node.op_type, inputs=inputs, outputs=outs))
    missing_inputs = sorted({x for n in graph.node for x in n.input if x and x not in known})
    if unknown_shape:
        warnings.append(f"{len(unknown_shape)} graph inputs have no usable shape and were left out: "
                        + ", ".join(unknown_shape[:8]))
    if guessed:
        warnings.append(f"{len(guessed)} values have no inferred shape; each sized like its node's largest "
                        "input: " + ", ".join(guessed[:8]) + (" ..." if len(guessed) > 8 else ""))
    if missing_inputs:
        warnings.append(f"{len(missing_inputs)} node inputs name no sized value (left out of those ops' inputs): "
                        + ", ".join(missing_inputs[:8]))
    if empty:
        warnings.append(f"left out {empty} empty (0-byte) values")
    if control:
        warnings.append(f"control-flow nodes kept opaque (subgraphs not expanded): {top_counts(control)}")
    if unknown_ops:
        warnings.append(f"{sum(unknown_ops.values())} nodes of unrecognised op types were costed as memory-bound "
                        f"elementwise work: {top_counts(unknown_ops)}")
    if elem_guess:
        warnings.append(f"unknown element types taken as 4 bytes: {top_counts(elem_guess)}")
    meta = {
        "importer": "onnx", "source": file, "durations": "roofline", "roofline": model_rl.describe(),
        "opset": [f"{o.domain or 'ai.onnx'}:{o.version}" for o in model.opset_import],
        "nodes": len(graph.node), "input_shapes": {k: list(v) for k, v in given.items()},
        "default_dim": default_dim,
    }
    trace_name = name or graph.name or os.path.basename(file)
    return ImportResult(trace_document(trace_name, tensors, ops, meta, warnings), tuple(warnings))
