"""Importer ``networkx``: node-link JSON graphs of the Checkmate and Moccasin benchmarks.

One op per node, with one output tensor (the node's output); an edge ``u -> v`` means ``v``
reads ``u``'s output. Both conventions of ``shared/traces/moccasin`` are detected:

* Checkmate graphs: node key ``id``, node attributes ``cost_cpu`` (duration) and ``cost_ram``
  (output bytes), ``backward`` and ``name``; links keyed ``source``/``target``.
* Moccasin random layered graphs: node key ``name``, attributes ``duration`` and ``out_cost``
  (the graph attributes ``node_duration_tag`` / ``node_output_cost_tag`` name them), links keyed
  ``"0"``/``"1"``, graph attribute ``order`` giving the execution order.

Execution order: the graph attribute ``order`` (``--order-attr``) when present (it must list
every node once and respect every edge), else a deterministic topological sort (Kahn's
algorithm, ready nodes taken by integer id, else by file position).

Memory semantics match Moccasin's budget definition: an output is allocated when its node
starts and freed after its last reader ends (a node nobody reads frees it at its own end), so
the trace's no-offload peak equals Moccasin's ``M`` and ``B = ceil(M x multiplier)`` is
``--budget multiplier``. A nonzero ``param_cost`` (``node_param_cost_tag``) becomes a persistent
weight read by its node (all zero in the shipped graphs).

Examples
--------
>>> doc = {"directed": True, "graph": {}, "nodes": [
...     {"id": 0, "cost_cpu": 10, "cost_ram": 100}, {"id": 1, "cost_cpu": 20, "cost_ram": 50}],
...     "links": [{"source": 0, "target": 1}]}
>>> r = import_networkx(doc, time_unit=1e-3)
>>> [(o["id"], o["duration"], o["inputs"], o["outputs"]) for o in r.document["ops"]]
[('n0', 0.01, [], ['n0.out']), ('n1', 0.02, ['n0.out'], ['n1.out'])]
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from typing import Any

from solver.errors import InputError, Problems
from solver.importers.result import ImportResult, op_entry, safe_id, tensor_entry, trace_document
from solver.importers.sources import Source, read_json_source

DURATION_ATTRS = ("cost_cpu", "duration", "cost", "time", "runtime", "compute_cost")
BYTES_ATTRS = ("cost_ram", "out_cost", "output_bytes", "bytes", "memory", "mem", "size", "output_size")
DEFAULT_TIME_UNIT = 1e-6


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _pick_attr(nodes: list[Mapping[str, Any]], given: str | None, tag: Any, candidates: tuple[str, ...]) -> str | None:
    if given is not None:
        return given
    if isinstance(tag, str) and nodes and all(tag in n for n in nodes):
        return tag
    for name in candidates:
        if nodes and all(name in n for n in nodes):
            return name
    return None


def _link_keys(links: list[Any], graph: Mapping[str, Any], file: str) -> tuple[str, str]:
    if not links:
        return "source", "target"
    first = links[0]
    if not isinstance(first, Mapping):
        raise InputError.single(file, "links[0]", f"expected an object, got {type(first).__name__}")
    for pair in (("source", "target"), ("0", "1"), ("u", "v"), ("src", "dst")):
        if pair[0] in first and pair[1] in first:
            return pair
    raise InputError.single(file, "links[0]", "cannot tell the link's source and target keys (tried "
                            "source/target, \"0\"/\"1\", u/v, src/dst)")


def _order(ids: list[Any], preds: Mapping[Any, list[Any]], succs: Mapping[Any, list[Any]], given: Any,
           attr: str, file: str) -> list[Any]:
    position = {nid: i for i, nid in enumerate(ids)}
    if given is not None:
        if not isinstance(given, list):
            raise InputError.single(file, f"graph.{attr}", f"expected a list of node ids, got {type(given).__name__}")
        seen: set[Any] = set()
        for i, nid in enumerate(given):
            if nid not in position:
                raise InputError.single(file, f"graph.{attr}[{i}]", f"unknown node {nid!r}")
            if nid in seen:
                raise InputError.single(file, f"graph.{attr}[{i}]", f"node {nid!r} appears twice")
            seen.add(nid)
        if len(seen) != len(ids):
            missing = [nid for nid in ids if nid not in seen][:5]
            raise InputError.single(file, f"graph.{attr}", f"lists {len(seen)} of {len(ids)} nodes; missing "
                                    + ", ".join(repr(m) for m in missing))
        at = {nid: i for i, nid in enumerate(given)}
        for v, us in preds.items():
            for u in us:
                if at[u] > at[v]:
                    raise InputError.single(file, f"graph.{attr}", f"node {v!r} comes before its input {u!r}: "
                                            "the order is not topological")
        return list(given)
    use_ids = all(isinstance(n, int) and not isinstance(n, bool) for n in ids)
    key = {nid: (nid if use_ids else position[nid]) for nid in ids}
    indeg = {nid: len(preds.get(nid, ())) for nid in ids}
    ready = [(key[nid], position[nid], nid) for nid in ids if indeg[nid] == 0]
    heapq.heapify(ready)
    out: list[Any] = []
    while ready:
        _, _, nid = heapq.heappop(ready)
        out.append(nid)
        for w in succs.get(nid, ()):
            indeg[w] -= 1
            if indeg[w] == 0:
                heapq.heappush(ready, (key[w], position[w], w))
    if len(out) != len(ids):
        stuck = [nid for nid in ids if indeg[nid] > 0][:5]
        raise InputError.single(file, "links", "the graph has a cycle through "
                                + ", ".join(repr(s) for s in stuck))
    return out


def import_networkx(source: Source, *, duration_attr: str | None = None, bytes_attr: str | None = None,
                    time_unit: float | None = None, order_attr: str | None = None,
                    name: str | None = None) -> ImportResult:
    """Import a node-link JSON graph (Checkmate / Moccasin) as a ``tierplan.trace/1`` document.

    Parameters
    ----------
    source : path or mapping
        The node-link JSON (``.json``/``.json.gz``) or the decoded document.
    duration_attr, bytes_attr : str, optional
        Node attributes for the op duration and the output bytes (default: detected).
    time_unit : float, optional
        Seconds per duration unit (default 1e-6, reported as a guess).
    order_attr : str, optional
        Graph attribute holding the execution order (default ``order``).
    name : str, optional
        Trace name (default: the graph's ``name`` attribute, else the file name).

    Returns
    -------
    ImportResult

    Raises
    ------
    InputError
        Not a node-link graph, unknown node in a link, a cycle, a bad order, a missing or
        negative attribute.

    Examples
    --------
    >>> doc = {"graph": {"order": [1, 0]}, "nodes": [{"name": 0, "duration": 0, "out_cost": 8},
    ...        {"name": 1, "duration": 3, "out_cost": 8}], "links": []}
    >>> [o["id"] for o in import_networkx(doc).document["ops"]]
    ['n1', 'n0']
    """
    loaded = read_json_source(source)
    file = loaded.label
    doc = loaded.document
    if not isinstance(doc, Mapping) or not isinstance(doc.get("nodes"), list):
        raise InputError.single(file, "", 'expected a networkx node-link JSON object with a "nodes" list')
    nodes = doc["nodes"]
    links = doc.get("links", doc.get("edges", []))
    if not isinstance(links, list):
        raise InputError.single(file, "links", f"expected a list, got {type(links).__name__}")
    raw_graph = doc.get("graph")
    graph: Mapping[str, Any] = raw_graph if isinstance(raw_graph, Mapping) else {}
    problems = Problems(file)
    for i, n in enumerate(nodes):
        if not isinstance(n, Mapping):
            problems.add(f"nodes[{i}]", f"expected an object, got {type(n).__name__}")
    problems.raise_if_any()
    if all("id" in n for n in nodes):
        node_key = "id"
    elif all("name" in n for n in nodes):
        node_key = "name"
    else:
        raise InputError.single(file, "nodes", 'every node needs an "id" (or, in Moccasin graphs, a "name") key')
    warnings: list[str] = []
    d_attr = _pick_attr(nodes, duration_attr, graph.get("node_duration_tag"), DURATION_ATTRS)
    b_attr = _pick_attr(nodes, bytes_attr, graph.get("node_output_cost_tag"), BYTES_ATTRS)
    if b_attr is None:
        raise InputError.single(file, "nodes", "no output-size attribute found on every node (tried "
                                + ", ".join(BYTES_ATTRS) + "); name it with --bytes-attr")
    if d_attr is None:
        warnings.append("no duration attribute found on every node (tried " + ", ".join(DURATION_ATTRS)
                        + "); all durations set to 0 (name one with --duration-attr)")
    p_attr = graph.get("node_param_cost_tag") if isinstance(graph.get("node_param_cost_tag"), str) else "param_cost"
    if time_unit is None:
        unit = DEFAULT_TIME_UNIT
        if d_attr is not None:
            warnings.append(f"the file does not state the unit of {d_attr!r}; took 1 unit = {unit:g} s "
                            "(set --time-unit)")
    else:
        unit = float(time_unit)
        if not (math.isfinite(unit) and unit > 0):
            raise InputError.single("--time-unit", "", f"must be a positive time, got {time_unit!r}")

    ids: list[Any] = []
    index: dict[Any, int] = {}
    for i, n in enumerate(nodes):
        nid = n[node_key]
        if isinstance(nid, (list, dict)) or nid is None:
            problems.add(f"nodes[{i}].{node_key}", f"expected a scalar node id, got {nid!r}")
            continue
        if nid in index:
            problems.add(f"nodes[{i}].{node_key}", f"node {nid!r} appears twice")
            continue
        index[nid] = i
        ids.append(nid)
    problems.raise_if_any()
    src_key, dst_key = _link_keys(links, graph, file)
    preds: dict[Any, list[Any]] = {}
    succs: dict[Any, list[Any]] = {}
    seen_edges: set[tuple[Any, Any]] = set()
    for i, link in enumerate(links):
        if not isinstance(link, Mapping) or src_key not in link or dst_key not in link:
            problems.add(f"links[{i}]", f"expected an object with {src_key!r} and {dst_key!r}")
            continue
        u, v = link[src_key], link[dst_key]
        bad = False
        for which, x in ((src_key, u), (dst_key, v)):
            if isinstance(x, (list, dict)) or x not in index:
                problems.add(f"links[{i}].{which}", f"unknown node {x!r}")
                bad = True
        if bad:
            continue
        if u == v:
            problems.add(f"links[{i}]", f"self-loop on node {u!r}")
            continue
        if (u, v) in seen_edges:
            continue
        seen_edges.add((u, v))
        preds.setdefault(v, []).append(u)
        succs.setdefault(u, []).append(v)
        if len(problems.items) >= 20:
            break
    problems.raise_if_any()
    o_attr = order_attr or "order"
    if order_attr is not None and graph.get(o_attr) is None:
        raise InputError.single(file, f"graph.{o_attr}", "no such graph attribute")
    order = _order(ids, preds, succs, graph.get(o_attr), o_attr, file)

    durations: dict[Any, float] = {}
    sizes: dict[Any, int] = {}
    params: dict[Any, int] = {}
    zero = 0
    for nid in ids:
        i = index[nid]
        n = nodes[i]
        if d_attr is not None:
            d = _number(n.get(d_attr))
            if d is None or d < 0:
                problems.add(f"nodes[{i}].{d_attr}", f"expected a number >= 0, got {n.get(d_attr)!r}")
            else:
                durations[nid] = d * unit
        else:
            durations[nid] = 0.0
        b = _number(n.get(b_attr))
        if b is None or b < 0:
            problems.add(f"nodes[{i}].{b_attr}", f"expected a number of bytes >= 0, got {n.get(b_attr)!r}")
        else:
            sizes[nid] = max(int(math.ceil(b)), 1)
            zero += b == 0
        pc = _number(n.get(p_attr)) if p_attr in n else None
        if pc is not None and pc > 0:
            params[nid] = int(math.ceil(pc))
        if len(problems.items) >= 20:
            break
    problems.raise_if_any()
    if zero:
        warnings.append(f"{zero} nodes have a 0-byte output; given 1 byte each (trace tensors are > 0 bytes)")

    def op_id(nid: Any) -> str:
        return f"n{safe_id(str(nid), 80)}"

    used: set[str] = set()
    ids_map: dict[Any, str] = {}
    for nid in order:
        base = op_id(nid)
        oid, k = base, 1
        while oid in used:
            k += 1
            oid = f"{base}~{k}"
        used.add(oid)
        ids_map[nid] = oid
    position = {nid: i for i, nid in enumerate(order)}
    tensors: list[dict[str, Any]] = []
    ops: list[dict[str, Any]] = []
    for nid in order:
        n = nodes[index[nid]]
        backward = n.get("backward") is True
        label = n.get("name") if node_key == "id" and isinstance(n.get("name"), str) else ""
        oid = ids_map[nid]
        inputs = [f"{ids_map[u]}.out" for u in sorted(preds.get(nid, []), key=lambda u: position[u])]
        if nid in params:
            tensors.append(tensor_entry(f"{oid}.param", params[nid], "weight", persistent=True))
            inputs.append(f"{oid}.param")
        tensors.append(tensor_entry(f"{oid}.out", sizes[nid], "gradient" if backward else "activation"))
        ops.append(op_entry(oid, durations[nid], label or ("backward" if backward else ""), inputs=inputs,
                            outputs=[f"{oid}.out"]))
    if params:
        warnings.append(f"{len(params)} nodes have parameters ({p_attr}); each became a persistent weight read "
                        "by its node, so the no-offload peak includes them")
    convention = "moccasin" if node_key == "name" or src_key == "0" else "checkmate"
    trace_name = name or (graph.get("name") if isinstance(graph.get("name"), str) else None) or _stem(file)
    meta = {
        "importer": "networkx", "source": file, "convention": convention,
        "duration_attr": d_attr, "bytes_attr": b_attr, "time_unit_s": unit,
        "order": f"graph.{o_attr}" if graph.get(o_attr) is not None else "topological sort",
        "nodes": len(ids), "edges": len(seen_edges),
        "budget_note": "no-offload peak = Moccasin's M (outputs allocated at node start, freed after the "
                       "last reader ends); Moccasin's budget B = ceil(M x multiplier) is --budget multiplier",
    }
    return ImportResult(trace_document(trace_name, tensors, ops, meta, warnings), tuple(warnings))


def _stem(label: str) -> str:
    base = label.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".json"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base or "graph"
