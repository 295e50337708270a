"""Reading a PyTorch Execution Trace (the JSON ``ExecutionTraceObserver`` writes) into plain records.

Two schema families are read: 1.0.x (``parent``, ``inputs`` as a list with ``input_shapes`` and
``input_types`` beside it, fields at the node's top level) and 1.1.x / Chakra host traces
(``ctrl_deps``, ``inputs: {values, shapes, types, strides}``, fields under ``attrs``). A tensor
argument is ``[tensor_id, storage_id, offset, numel, elem_bytes, device]``; ``offset`` counts
elements. Ids of tensors and storages come from object addresses, so the profiler reuses an
id when memory is reused: a storage id names a *place*, not one allocation.

Examples
--------
>>> doc = {"schema": "1.0.1", "nodes": [
...   {"id": 1, "name": "[pytorch|profiler|execution_graph|process]", "parent": 1},
...   {"id": 2, "name": "[pytorch|profiler|execution_graph|thread]", "parent": 1},
...   {"id": 3, "name": "aten::relu", "parent": 2, "rf_id": 1, "scope": 0, "op_schema": "",
...    "inputs": [[10, 11, 0, 4, 4, "cpu"]], "input_shapes": [[4]], "input_types": ["Tensor(float)"],
...    "outputs": [[12, 13, 0, 4, 4, "cpu"]], "output_shapes": [[4]], "output_types": ["Tensor(float)"]}]}
>>> g = parse_execution_trace(doc, "et.json")
>>> [n.name for n in g.nodes], g.nodes[2].outputs[0].storage, g.nodes[2].outputs[0].nbytes
(['[pytorch|profiler|execution_graph|process]', '[pytorch|profiler|execution_graph|thread]', 'aten::relu'], 13, 16)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from solver.errors import InputError, Problems

#: ``scope`` of a ``record_function`` annotation (RecordScope::USER_SCOPE).
USER_SCOPE = 7

_ANNOTATION_RE = re.compile(r"^(ProfilerStep#\d+|## .* ##|Optimizer\.(step|zero_grad)#.*|enumerate\(DataLoader\).*|"
                            r"DistributedDataParallel\..*|\[pytorch\|profiler\|.*\])$")


@dataclass(frozen=True, slots=True)
class EtTensor:
    """One tensor argument of an ET node.

    Attributes
    ----------
    storage : int
        Storage id (memory is counted per storage).
    tensor : int
        Tensor id.
    offset : int
        Storage offset, in elements.
    numel, itemsize : int
        Elements and bytes per element.
    device : str
        ``"cuda:0"``, ``"cpu"``...
    shape : tuple of int
        Sizes, when the trace gives them (else empty).
    extent : int
        Elements of the storage this view spans from its offset (from strides when given).
    arg : int
        Index of the node argument this tensor came from.
    """

    storage: int
    tensor: int
    offset: int
    numel: int
    itemsize: int
    device: str
    shape: tuple[int, ...]
    extent: int
    arg: int

    @property
    def nbytes(self) -> int:
        """Bytes of this view's elements."""
        return self.numel * self.itemsize

    @property
    def storage_bytes(self) -> int:
        """Bytes of the storage this view needs at least (offset plus extent)."""
        return (self.offset + self.extent) * self.itemsize if self.extent > 0 else 0


@dataclass(frozen=True, slots=True)
class EtNode:
    """One node of an Execution Trace, normalised across schemas."""

    id: int
    name: str
    parent: int
    rf_id: int | None
    scope: int | None
    tid: int | None
    schema: str
    inputs: tuple[EtTensor, ...]
    outputs: tuple[EtTensor, ...]
    mutated_args: frozenset[int]

    @property
    def has_tensors(self) -> bool:
        """Whether the node has any tensor argument or result."""
        return bool(self.inputs or self.outputs)


@dataclass(frozen=True)
class EtGraph:
    """A parsed Execution Trace: nodes in file order plus the header fields."""

    schema: str
    nodes: tuple[EtNode, ...]
    header: Mapping[str, Any]
    skipped_values: int


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _tensor_tuple(v: Any) -> bool:
    if type(v) is not list or len(v) < 5:
        return False
    a, b, c, d, e = v[:5]
    return (type(a) is int and type(b) is int and type(c) is int and type(d) is int and type(e) is int
            and (len(v) == 5 or type(v[5]) is str))


def _extent(numel: int, shape: Any, strides: Any) -> int:
    if numel <= 0:
        return 0
    if type(shape) is list and type(strides) is list and len(shape) == len(strides):
        span = 1
        try:
            for d, s in zip(shape, strides):
                if d > 1:
                    span += (d - 1) * abs(s)
        except TypeError:
            return numel
        return max(span, 1)
    return numel


def _shape(v: Any) -> tuple[int, ...]:
    if type(v) is list and all(type(d) is int for d in v):
        return tuple(v)
    return ()


def _mutated_positions(schema: str, cache: dict[str, frozenset[int]]) -> frozenset[int]:
    """Argument positions a schema marks as written (``Tensor(a!)``)."""
    hit = cache.get(schema)
    if hit is not None:
        return hit
    out: set[int] = set()
    start = schema.find("(")
    if start >= 0:
        depth, pos, arg, i = 0, start + 1, 0, start + 1
        body_end = len(schema)
        while i < len(schema):
            c = schema[i]
            if c in "([":
                depth += 1
            elif c in ")]":
                if depth == 0:
                    body_end = i
                    break
                depth -= 1
            elif c == "," and depth == 0:
                text = schema[pos:i].strip()
                if text != "*":
                    if "!" in text.split(" ")[0]:
                        out.add(arg)
                    arg += 1
                pos = i + 1
            i += 1
        text = schema[pos:body_end].strip()
        if text and text != "*" and "!" in text.split(" ")[0]:
            out.add(arg)
    result = frozenset(out)
    cache[schema] = result
    return result


def _inplace_by_name(name: str) -> bool:
    base = name.rsplit("::", 1)[-1].split(".", 1)[0]
    return base.endswith("_") and not base.endswith("__")


def _collect(values: Any, shapes: Any, strides: Any, types: Any, problems: Problems, path: str,
             counters: list[int]) -> tuple[EtTensor, ...]:
    if not isinstance(values, list):
        problems.add(path, f"expected a list of argument values, got {type(values).__name__}")
        return ()
    out: list[EtTensor] = []
    for i, v in enumerate(values):
        typ = types[i] if isinstance(types, list) and i < len(types) and isinstance(types[i], str) else ""
        if typ and "Tensor" not in typ:
            continue
        shp = shapes[i] if isinstance(shapes, list) and i < len(shapes) else None
        std = strides[i] if isinstance(strides, list) and i < len(strides) else None
        if _tensor_tuple(v):
            items = [(v, shp, std)]
        elif isinstance(v, list) and v and all(_tensor_tuple(x) for x in v):
            items = [(x, shp[j] if isinstance(shp, list) and j < len(shp) else None,
                      std[j] if isinstance(std, list) and j < len(std) else None) for j, x in enumerate(v)]
        else:
            if typ.startswith("Tensor") and v not in (None, "<None>", [], ""):
                counters[0] += 1
            continue
        for t, sh, st in items:
            tensor_id, storage, offset, numel, itemsize = t[:5]
            device = t[5] if len(t) > 5 else ""
            if numel < 0 or itemsize < 0 or offset < 0:
                counters[0] += 1
                continue
            out.append(EtTensor(storage=storage, tensor=tensor_id, offset=offset, numel=numel,
                                itemsize=itemsize, device=device, shape=_shape(sh),
                                extent=_extent(numel, sh, st), arg=i))
    return tuple(out)


def parse_execution_trace(doc: Any, file: str) -> EtGraph:
    """Normalise an Execution Trace document into an :class:`EtGraph`.

    Parameters
    ----------
    doc : Any
        The decoded JSON.
    file : str
        Label for messages.

    Raises
    ------
    InputError
        When the document is not an Execution Trace (no ``nodes`` list, a node without an
        integer ``id``, a string ``name`` or a parent).

    Examples
    --------
    >>> parse_execution_trace({"nodes": []}, "e.json").nodes
    ()
    >>> parse_execution_trace([], "e.json")
    Traceback (most recent call last):
    ...
    solver.errors.InputError: e.json: expected a PyTorch Execution Trace object with a "nodes" list, got list
    """
    problems = Problems(file)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("nodes"), list):
        got = type(doc).__name__ if not isinstance(doc, Mapping) else "an object without a nodes list"
        raise InputError.single(file, "", f'expected a PyTorch Execution Trace object with a "nodes" list, got {got}')
    schema = str(doc.get("schema", ""))
    cache: dict[str, frozenset[int]] = {}
    nodes: list[EtNode] = []
    counters = [0]
    for i, raw in enumerate(doc["nodes"]):
        path = f"nodes[{i}]"
        if not isinstance(raw, Mapping):
            problems.add(path, f"expected an object, got {type(raw).__name__}")
            continue
        attrs: dict[str, Any] = {}
        if isinstance(raw.get("attrs"), list):
            for a in raw["attrs"]:
                if isinstance(a, Mapping) and isinstance(a.get("name"), str):
                    attrs[a["name"]] = a.get("value")
        nid: Any = raw.get("id")
        name: Any = raw.get("name")
        parent = raw.get("parent", raw.get("ctrl_deps", attrs.get("parent")))
        bad = False
        if not _is_int(nid):
            problems.add(f"{path}.id", f"expected an integer node id, got {nid!r}")
            bad = True
        if not isinstance(name, str):
            problems.add(f"{path}.name", f"expected a string op name, got {name!r}")
            bad = True
        if not _is_int(parent):
            problems.add(f"{path}.parent", f"expected an integer parent (or ctrl_deps), got {parent!r}")
            bad = True
        if bad:
            if len(problems.items) >= 20:
                break
            continue

        def field(key: str) -> Any:
            return raw[key] if key in raw else attrs.get(key)

        ins, outs = raw.get("inputs", []), raw.get("outputs", [])
        if isinstance(ins, Mapping):
            in_t = _collect(ins.get("values", []), ins.get("shapes"), ins.get("strides"), ins.get("types"),
                            problems, f"{path}.inputs.values", counters)
        else:
            in_t = _collect(ins, raw.get("input_shapes"), raw.get("input_strides"), raw.get("input_types"),
                            problems, f"{path}.inputs", counters)
        if isinstance(outs, Mapping):
            out_t = _collect(outs.get("values", []), outs.get("shapes"), outs.get("strides"), outs.get("types"),
                             problems, f"{path}.outputs.values", counters)
        else:
            out_t = _collect(outs, raw.get("output_shapes"), raw.get("output_strides"), raw.get("output_types"),
                             problems, f"{path}.outputs", counters)
        op_schema = field("op_schema")
        op_schema = op_schema if isinstance(op_schema, str) else ""
        if op_schema:
            mutated = _mutated_positions(op_schema, cache)
        else:
            mutated = frozenset({0}) if in_t and _inplace_by_name(name) else frozenset()
        rf = field("rf_id")
        scope = field("scope")
        tid = field("tid")
        nodes.append(EtNode(id=nid, name=name, parent=parent, rf_id=rf if _is_int(rf) else None,
                            scope=scope if _is_int(scope) else None, tid=tid if _is_int(tid) else None,
                            schema=op_schema, inputs=in_t, outputs=out_t, mutated_args=mutated))
    problems.raise_if_any()
    header = {k: v for k, v in doc.items() if k != "nodes"}
    return EtGraph(schema=schema, nodes=tuple(nodes), header=header, skipped_values=counters[0])


def is_annotation(node: EtNode) -> bool:
    """Whether a node is a ``record_function`` annotation rather than an operator.

    Examples
    --------
    >>> n = EtNode(1, "ProfilerStep#3", 0, 1, 7, 1, "", (), (), frozenset())
    >>> is_annotation(n)
    True
    """
    if node.has_tensors:
        return False
    if node.scope == USER_SCOPE:
        return True
    return bool(_ANNOTATION_RE.match(node.name))


def is_root(node: EtNode) -> bool:
    """Whether a node is the profiler's process or thread wrapper node."""
    return node.name.startswith("[pytorch|profiler|") or node.parent == node.id
