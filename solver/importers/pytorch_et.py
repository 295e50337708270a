"""Importer ``pytorch-et``: a PyTorch Execution Trace, optionally with its Kineto profile.

What it keeps
    The top-level operators: the children of each thread's root node, looking through
    ``record_function`` annotations (``ProfilerStep#N``, ``## forward ##``,
    ``Optimizer.step#SGD.step``...), which are scopes, not operators. Each becomes one op, in
    start order (ET node ids count op starts across threads). Everything nested inside an
    operator (``aten::t`` and ``aten::addmm`` inside ``aten::linear``; the backward kernels
    inside ``autograd::engine::evaluate_function: ...``) is folded into it.
Tensors
    Memory is per storage: views share their base's storage, so a view is not a new tensor.
    Because the profiler names storages by address, a storage id that a node outputs without
    reading it (and not as part of an enclosing op's result) starts a new tensor: the
    allocator reused that memory. A tensor's size is the largest ``(offset + extent) x
    elem_bytes`` over its views (extent from strides when the trace has them). Only tensors on
    one device are kept (``--device``; default the device with the most bytes).
Producers and users
    A tensor first seen as an input has no producer (it existed before the trace: weights,
    optimizer state, the batch); it is persistent unless its storage is later reused. A tensor
    allocated inside an op is that op's output when a later op uses it (or it is a gradient);
    otherwise it is the op's scratch memory, folded into the op's ``workspace`` as the peak of
    such temporaries over the op's nested calls. An argument the op schema marks as written
    (``Tensor(a!)``; a trailing ``_`` when the schema is missing) on a tensor that existed before
    the op makes it an ``update``.
Classification (where the trace allows)
    Phases come from the annotations: ``zero_grad``, ``optimizer``, ``backward`` (autograd
    engine ops), else ``forward``. Gradients: tensors an ``AccumulateGrad`` touches, or made in
    backward and read by the optimizer. Weights: pre-existing tensors read in forward and
    written by the optimizer (or in backward, as fused optimizers do); optimizer states:
    pre-existing tensors written by the optimizer and not read in forward; inputs:
    pre-existing read-only tensors when the trace has an optimizer step (``other`` without
    one); pre-existing tensors written in forward only (batch-norm running statistics) are
    ``other``; activations: made in forward; other backward results are gradients too.
Durations
    From the Kineto trace when given (see :mod:`solver.importers.kineto`), else roofline
    estimates (:mod:`solver.importers.roofline`) summed over each op's nested calls; ``meta``
    says which (``meta["durations"]``).

Examples
--------
>>> doc = {"schema": "1.0.1", "nodes": [
...   {"id": 1, "name": "[pytorch|profiler|execution_graph|process]", "parent": 1},
...   {"id": 2, "name": "[pytorch|profiler|execution_graph|thread]", "parent": 1},
...   {"id": 3, "name": "aten::relu", "parent": 2, "rf_id": 1, "scope": 0,
...    "inputs": [[10, 11, 0, 256, 4, "cpu"]], "input_shapes": [[256]], "input_types": ["Tensor(float)"],
...    "outputs": [[12, 13, 0, 256, 4, "cpu"]], "output_shapes": [[256]], "output_types": ["Tensor(float)"]},
...   {"id": 4, "name": "aten::sum", "parent": 2, "rf_id": 2, "scope": 0,
...    "inputs": [[12, 13, 0, 256, 4, "cpu"]], "input_shapes": [[256]], "input_types": ["Tensor(float)"],
...    "outputs": [[14, 15, 0, 1, 4, "cpu"]], "output_shapes": [[]], "output_types": ["Tensor(float)"]}]}
>>> r = import_pytorch_et(doc)
>>> [(op["id"], op["inputs"], op["outputs"]) for op in r.document["ops"]]
[('relu#3', ['s11'], ['s13']), ('sum#4', ['s13'], ['s15'])]
>>> r.document["meta"]["durations"]
'roofline'
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from solver.errors import InputError
from solver.importers.et_graph import EtGraph, is_annotation, is_root, parse_execution_trace
from solver.importers.kineto import KinetoTiming, UnitKey, kineto_timing
from solver.importers.result import ImportResult, op_entry, safe_id, tensor_entry, top_counts, trace_document
from solver.importers.roofline import Roofline, TensorShape, classify, estimate, normalize_op_name
from solver.importers.sources import Source, read_json_source

_COMM_WORDS = ("nccl", "c10d", "all_reduce", "allreduce", "all_to_all", "alltoall", "all_gather", "allgather",
               "reduce_scatter", "broadcast", "record_param_comms")


@dataclass(frozen=True)
class _Unit:
    """One kept top-level operator."""

    node: int            # index into graph.nodes
    annotations: tuple[str, ...]


class _Version:
    """One allocation of a storage (mutable while the trace is scanned; private)."""

    __slots__ = ("storage", "index", "nbytes", "unit", "initial", "creator_pos", "last_unit", "superseded",
                 "acc", "read_phases", "write_phases", "made_phase")

    def __init__(self, storage: int, index: int, unit: int, initial: bool, creator_pos: int, phase: str) -> None:
        self.storage = storage
        self.index = index
        self.nbytes = 0
        self.unit = unit
        self.initial = initial
        self.creator_pos = creator_pos
        self.last_unit = unit
        self.superseded = False
        self.acc = False
        self.read_phases: set[str] = set()
        self.write_phases: set[str] = set()
        self.made_phase = phase

    @property
    def tid(self) -> str:
        return f"s{self.storage}" if self.index == 0 else f"s{self.storage}.{self.index}"


def _phase(name: str, annotations: Sequence[str]) -> str:
    text = " ".join(annotations).lower()
    if "zero_grad" in text:
        return "zero_grad"
    if "optimizer" in text:
        return "optimizer"
    if name.startswith("autograd::engine::evaluate_function") or "backward" in text:
        return "backward"
    return "forward"


def _short_name(name: str) -> str:
    base = name.rsplit(": ", 1)[-1] if ": " in name else name
    if "#" in base and not base.startswith("#"):
        base = base.split("#", 1)[0]
    return safe_id(base.rsplit("::", 1)[-1], 40)


def _children(graph: EtGraph, file: str) -> tuple[dict[int, int], dict[int, list[int]]]:
    index: dict[int, int] = {}
    dup = 0
    for i, n in enumerate(graph.nodes):
        if n.id in index:
            dup += 1
        index[n.id] = i
    if dup:
        raise InputError.single(file, "nodes", f"{dup} node ids appear more than once")
    kids: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(graph.nodes):
        if n.parent != n.id and n.parent in index:
            kids[n.parent].append(i)
    for lst in kids.values():
        lst.sort(key=lambda i: graph.nodes[i].id)
    return index, kids


def _units(graph: EtGraph, index: Mapping[int, int], kids: Mapping[int, list[int]]) -> tuple[list[_Unit], Counter]:
    """Top-level operators in start order, looking through annotations."""
    nodes = graph.nodes
    roots = [i for i, n in enumerate(nodes) if is_root(n)]
    top: list[int]
    if roots:
        root_ids = {nodes[i].id for i in roots}
        top = [i for i, n in enumerate(nodes) if n.parent in root_ids and not is_root(n)]
    else:
        top = [i for i, n in enumerate(nodes) if n.parent not in index or n.parent == n.id]
    dropped: Counter = Counter()
    units: list[_Unit] = []
    stack: list[tuple[int, tuple[str, ...]]] = [(i, ()) for i in sorted(top, key=lambda i: nodes[i].id, reverse=True)]
    while stack:
        i, ann = stack.pop()
        n = nodes[i]
        if is_annotation(n):
            below = kids.get(n.id, [])
            if below:
                for c in reversed(below):
                    stack.append((c, ann + (n.name,)))
            else:
                dropped[n.name] += 1
            continue
        units.append(_Unit(i, ann))
    units.sort(key=lambda u: nodes[u.node].id)
    return units, dropped


def _subtree(root: int, graph: EtGraph, kids: Mapping[int, list[int]]) -> tuple[list[int], list[int]]:
    """Pre-order node indices of a subtree and, per position, the last position of its subtree."""
    seq: list[int] = []
    parent_pos: list[int] = []
    stack = [(root, -1)]
    while stack:
        i, pp = stack.pop()
        seq.append(i)
        parent_pos.append(pp)
        here = len(seq) - 1
        for c in reversed(kids.get(graph.nodes[i].id, [])):
            stack.append((c, here))
    end = list(range(len(seq)))
    for p in range(len(seq) - 1, 0, -1):
        pp = parent_pos[p]
        if end[p] > end[pp]:
            end[pp] = end[p]
    return seq, end


def _choose_device(graph: EtGraph) -> tuple[str, dict[str, int]]:
    seen: dict[tuple[int, str], int] = {}
    for n in graph.nodes:
        for t in n.inputs + n.outputs:
            key = (t.storage, t.device)
            b = t.storage_bytes
            if b > seen.get(key, -1):
                seen[key] = b
    per: dict[str, int] = defaultdict(int)
    for (_, dev), b in seen.items():
        per[dev] += b
    if not per:
        return "", {}
    dev = max(per.items(), key=lambda kv: (kv[1], kv[0].startswith("cuda"), kv[0]))[0]
    return dev, dict(per)


def _node_cost(i: int, graph: EtGraph, kids: Mapping[int, list[int]], roofline: Roofline,
               unknown: Counter) -> tuple[float, str, float]:
    """(seconds, dominant op class, that class's seconds) of a node and everything it calls."""
    n = graph.nodes[i]
    kind, known = classify(n.name)
    below = kids.get(n.id, [])
    base = normalize_op_name(n.name)
    if below and (kind in ("view", "other") or not n.has_tensors or "backward" in base):
        total = 0.0
        best_kind, best_t = "view", -1.0
        per_kind: dict[str, float] = defaultdict(float)
        for c in below:
            t, k, _ = _node_cost(c, graph, kids, roofline, unknown)
            total += t
            per_kind[k] += t
        for k, t in per_kind.items():
            if t > best_t:
                best_kind, best_t = k, t
        return total, best_kind, best_t
    if not known:
        unknown[n.name] += 1
    shapes_in = [TensorShape(t.shape if t.shape or t.numel == 1 else (t.numel,), t.itemsize) for t in n.inputs]
    shapes_out = [TensorShape(t.shape if t.shape or t.numel == 1 else (t.numel,), t.itemsize) for t in n.outputs]
    cost = estimate(n.name, shapes_in, shapes_out)
    if cost.kind == "view":
        return 0.0, "view", 0.0
    t = roofline.time(cost.flops, cost.bytes)
    return t, cost.kind, t


def _select_step(units: list[_Unit], graph: EtGraph, step: int | None,
                 file: str) -> tuple[list[_Unit], list[str], list[int]]:
    """Keep the units of one ``ProfilerStep#N`` (by node-id range), or all."""
    nodes = graph.nodes
    steps = sorted((n.id, int(n.name.split("#", 1)[1])) for n in nodes
                   if n.name.startswith("ProfilerStep#") and n.name.split("#", 1)[1].isdigit())
    found = [s for _, s in steps]
    notes: list[str] = []
    if step is None:
        if len(steps) > 1:
            notes.append(f"the trace spans {len(steps)} profiler steps ({', '.join('#' + str(s) for s in found)}); "
                         "imported them all as one trace (choose one with --profiler-step)")
        return units, notes, found
    ids = [i for i, s in steps if s == step]
    if not ids:
        raise InputError.single(file, "nodes", f"no ProfilerStep#{step} in the trace; steps: "
                                + (", ".join(str(s) for s in found) or "none"))
    lo = ids[0]
    later = [i for i, _ in steps if i > lo]
    hi = later[0] if later else math.inf
    return [u for u in units if lo <= nodes[u.node].id < hi], notes, found


def _is_grad(ver: _Version) -> bool:
    """A gradient: touched by AccumulateGrad, zeroed by zero_grad, or made in backward for the optimizer."""
    if ver.acc:
        return True
    if ver.initial:
        return "zero_grad" in ver.write_phases
    return ver.made_phase == "backward" and "optimizer" in ver.read_phases


def _kind_of(ver: _Version, has_optimizer: bool) -> str:
    """The tensor kind of a version (see the module docstring)."""
    if _is_grad(ver):
        return "gradient"
    if ver.initial:
        written = ver.write_phases - {"zero_grad"}
        trained = written & {"optimizer", "backward"}
        if trained and "forward" in ver.read_phases:
            return "weight"
        if "optimizer" in written:
            return "optimizer_state"
        if written:
            return "other"  # e.g. batch-norm running statistics, written in forward
        return "input" if has_optimizer else "other"
    return {"forward": "activation", "backward": "gradient", "zero_grad": "gradient"}.get(ver.made_phase, "other")


@dataclass(frozen=True)
class _Scan:
    """What the tensor scan found: allocations, each unit's references, phases, results."""

    versions: list[_Version]
    unit_refs: list[dict[int, list[Any]]]     # version -> [first pos, last pos, created here, written]
    unit_phase: list[str]
    results: set[int]                          # versions that are their unit's own result


def _scan(graph: EtGraph, units: Sequence[_Unit], kids: Mapping[int, list[int]], device: str) -> _Scan:
    """Walk every unit's calls in order, turning storage references into tensor versions."""
    nodes = graph.nodes
    versions: list[_Version] = []
    current: dict[int, int] = {}
    unit_refs: list[dict[int, list[Any]]] = []
    unit_phase: list[str] = []
    results: set[int] = set()
    for u, unit in enumerate(units):
        root = nodes[unit.node]
        phase = _phase(root.name, unit.annotations)
        is_acc = "AccumulateGrad" in root.name
        unit_phase.append(phase)
        seq, end = _subtree(unit.node, graph, kids)
        refs: dict[int, list[Any]] = {}

        def touch(v: int, p: int, write: bool, created: bool, nbytes: int) -> None:
            r = refs.get(v)
            if r is None:
                refs[v] = [p, p, created, write]
            else:
                r[1] = p
                r[3] = r[3] or write
            ver = versions[v]
            if nbytes > ver.nbytes:
                ver.nbytes = nbytes

        for p, ni in enumerate(seq):
            n = nodes[ni]
            in_storages = set()
            for t in n.inputs:
                if t.device != device:
                    continue
                in_storages.add(t.storage)
                v = current.get(t.storage)
                if v is None:
                    v = len(versions)
                    versions.append(_Version(t.storage, 0, u, True, -1, phase))
                    current[t.storage] = v
                touch(v, p, t.arg in n.mutated_args, False, t.storage_bytes)
            for t in n.outputs:
                if t.device != device:
                    continue
                s = t.storage
                v = current.get(s)
                if v is not None and s in in_storages:
                    touch(v, p, False, False, t.storage_bytes)
                    continue
                if v is not None:
                    ver = versions[v]
                    cp = ver.creator_pos
                    if ver.unit == u and not ver.initial and (cp == p or cp < p <= end[cp]):
                        touch(v, p, False, False, t.storage_bytes)
                        continue
                    ver.superseded = True
                    idx = ver.index + 1
                else:
                    idx = 0
                v = len(versions)
                versions.append(_Version(s, idx, u, False, p, phase))
                current[s] = v
                touch(v, p, False, True, t.storage_bytes)
        for t in root.outputs:
            v = current.get(t.storage) if t.device == device else None
            if v is not None and v in refs and refs[v][2]:
                results.add(v)
        for v, r in refs.items():
            ver = versions[v]
            ver.last_unit = u
            if is_acc:
                ver.acc = True
            if r[3]:
                ver.write_phases.add(phase)
            if not r[2]:
                ver.read_phases.add(phase)
        unit_refs.append(refs)

    return _Scan(versions, unit_refs, unit_phase, results)


def import_pytorch_et(source: Source, *, kineto: Source | None = None, rank: int | None = None,
                      member: str | None = None, kineto_member: str | None = None, device: str | None = None,
                      profiler_step: int | None = None, persistent_grads: bool = False,
                      kernelless: str = "cpu", roofline: Roofline | None = None,
                      name: str | None = None) -> ImportResult:
    """Import a PyTorch Execution Trace (and optionally its Kineto trace) as a ``tierplan.trace/1`` document.

    Parameters
    ----------
    source : path or mapping
        The ET JSON (``.json``, ``.json.gz``, or a tar/zip archive of per-rank files), or the decoded document.
    kineto : path or mapping, optional
        The paired Kineto trace for durations; without it durations are roofline estimates.
    rank : int, optional
        In archives, the member whose base name's first integer is ``rank`` (ET and Kineto alike).
    member, kineto_member : str, optional
        Archive members by name (override ``rank``).
    device : str, optional
        Keep tensors on this device (default: the device holding the most bytes).
    profiler_step : int, optional
        Keep only the ops of ``ProfilerStep#N`` (default: everything in the trace).
    persistent_grads : bool
        Keep parameter gradients alive to the end of the step (as ``zero_grad(set_to_none=True)``
        at the next step's start does), instead of freeing each after its last reader.
    kernelless : {"cpu", "zero"}
        With a Kineto trace that has GPU work: an op that launched none takes its CPU time
        (default) or zero.
    roofline : Roofline, optional
        The cost model for estimated durations (default :class:`Roofline()`).
    name : str, optional
        The trace name (default: from the file name).

    Returns
    -------
    ImportResult
        The document and the warnings (also in ``meta["warnings"]``).

    Raises
    ------
    InputError
        For an unreadable or malformed ET or Kineto file.

    Examples
    --------
    >>> import_pytorch_et({"nodes": []}).document["ops"]
    []
    """
    if kernelless not in ("cpu", "zero"):
        raise InputError.single("--kernelless", str(kernelless), "expected cpu or zero")
    model = roofline or Roofline()
    loaded = read_json_source(source, member=member, rank=rank)
    file = loaded.label
    warnings: list[str] = [loaded.note] if loaded.note else []
    graph = parse_execution_trace(loaded.document, file)
    index, kids = _children(graph, file)
    units, dropped_ann = _units(graph, index, kids)
    units, step_notes, steps = _select_step(units, graph, profiler_step, file)
    warnings.extend(step_notes)
    if dropped_ann:
        warnings.append(f"dropped {sum(dropped_ann.values())} annotations that wrap no operator: "
                        f"{top_counts(dropped_ann, 5)}")
    if graph.skipped_values:
        warnings.append(f"skipped {graph.skipped_values} tensor arguments the trace does not describe "
                        "as [tensor_id, storage_id, offset, numel, elem_bytes, device]")
    dev_bytes: dict[str, int]
    if device is None:
        device, dev_bytes = _choose_device(graph)
    else:
        _, dev_bytes = _choose_device(graph)
        if dev_bytes and device not in dev_bytes:
            raise InputError.single(file, "", f"no tensor on device {device!r}; devices: "
                                    + ", ".join(sorted(dev_bytes)))
    other_devices = {d: b for d, b in dev_bytes.items() if d != device and b > 0}
    if other_devices:
        warnings.append("left out tensors on other devices than " + repr(device) + ": "
                        + ", ".join(f"{d} (storages totalling {b} bytes)" for d, b in sorted(other_devices.items())))

    scan = _scan(graph, units, kids, device)
    versions, unit_refs, unit_phase, results = scan.versions, scan.unit_refs, scan.unit_phase, scan.results
    nodes = graph.nodes
    has_optimizer = "optimizer" in unit_phase
    zero_bytes = sum(1 for ver in versions if ver.nbytes <= 0)

    # durations
    unknown: Counter = Counter()
    costs = [_node_cost(unit.node, graph, kids, model, unknown) for unit in units]
    timing: KinetoTiming | None = None
    kineto_label = None
    if kineto is not None:
        k_loaded = read_json_source(kineto, member=kineto_member, rank=rank)
        kineto_label = k_loaded.label
        if k_loaded.note:
            warnings.append(k_loaded.note)
        spans = []
        for unit in units:
            seq, _ = _subtree(unit.node, graph, kids)
            spans.append(len(seq))
        keys = [UnitKey(nodes[unit.node].name, nodes[unit.node].rf_id, spans[u]) for u, unit in enumerate(units)]
        timing = kineto_timing(k_loaded.document, keys, kineto_label, kernelless=kernelless)
        warnings.extend(timing.warnings)

    tensors_out: list[dict[str, Any]] = []
    emitted: set[int] = set()
    ops_out: list[dict[str, Any]] = []
    dropped_units: Counter = Counter()
    dropped_time = 0.0
    estimated = 0
    temp_count = 0
    for u, unit in enumerate(units):
        root = nodes[unit.node]
        refs = unit_refs[u]
        seconds, op_kind, _ = costs[u]
        gpu = timing is not None and timing.on_gpu[u]
        if timing is not None and timing.durations[u] is not None:
            duration = float(timing.durations[u])  # type: ignore[arg-type]
        else:
            duration = seconds
            estimated += 1
        live_refs = {v: r for v, r in refs.items() if versions[v].nbytes > 0}
        if not live_refs and not gpu:
            dropped_units[root.name] += 1
            dropped_time += duration
            continue
        inputs: list[str] = []
        updates: list[str] = []
        outputs: list[str] = []
        temps: list[tuple[int, int, int]] = []
        for v, (first, last, created, written) in sorted(live_refs.items()):
            ver = versions[v]
            if created and ver.unit == u:
                grad = _is_grad(ver)
                if ver.last_unit > u or grad or v in results:
                    outputs.append(ver.tid)
                    if v not in emitted:
                        emitted.add(v)
                        persistent = grad and persistent_grads and not ver.superseded
                        tensors_out.append(tensor_entry(ver.tid, ver.nbytes, _kind_of(ver, has_optimizer), persistent))
                else:
                    temps.append((first, last, ver.nbytes))
                    temp_count += 1
                continue
            if v not in emitted:
                emitted.add(v)
                tensors_out.append(tensor_entry(ver.tid, ver.nbytes, _kind_of(ver, has_optimizer),
                                                persistent=ver.initial and not ver.superseded))
            (updates if written else inputs).append(ver.tid)
        workspace = 0
        if temps:
            events = sorted([(f, 0, b) for f, _, b in temps] + [(l, 1, -b) for _, l, b in temps])
            live = 0
            for _, _, b in events:
                live += b
                workspace = max(workspace, live)
        lname = root.name.lower()
        recomputable = unit_phase[u] != "optimizer" and not any(w in lname for w in _COMM_WORDS)
        ops_out.append(op_entry(f"{_short_name(root.name)}#{root.id}", duration, op_kind, inputs=inputs,
                                outputs=outputs, updates=updates, workspace=workspace, recomputable=recomputable))
    if dropped_units:
        warnings.append(f"dropped {sum(dropped_units.values())} ops that touch no {device or 'device'} tensor"
                        + (" and launch no GPU work" if timing is not None else "")
                        + f" ({dropped_time:.6g} s): {top_counts(dropped_units, 5)}")
    if zero_bytes:
        warnings.append(f"left out {zero_bytes} empty tensors (0 bytes)")
    if estimated and timing is None:
        warnings.append(f"no Kineto trace: all {estimated} op durations are roofline estimates from op names and "
                        "shapes")
    if unknown and (timing is None or estimated):
        warnings.append(f"{sum(unknown.values())} calls of unrecognised ops were costed as memory-bound "
                        f"elementwise work: {top_counts(unknown, 8)}")
    if not has_optimizer and any(ver.initial for ver in versions):
        warnings.append("no optimizer step in the trace: tensors that existed before it (weights and inputs "
                        "alike) are kept persistent with kind 'other'")
    kinds = Counter(t["kind"] for t in tensors_out)
    meta: dict[str, Any] = {
        "importer": "pytorch-et", "source": file, "schema": graph.schema, "device": device,
        "durations": ("kineto" if estimated == 0 else "roofline" if estimated == len(units) else "kineto+roofline")
        if timing is not None else "roofline",
        "et_nodes": len(nodes), "ops_kept": len(ops_out), "profiler_steps": steps,
        "profiler_step": profiler_step,
        "tensor_kinds": dict(sorted(kinds.items())),
        "bytes_by_kind": {k: sum(t["bytes"] for t in tensors_out if t["kind"] == k) for k in sorted(kinds)},
        "scratch_tensors_in_workspace": temp_count,
        "persistent_grads": persistent_grads,
    }
    if timing is None or estimated:
        meta["roofline"] = model.describe()
    if timing is not None:
        meta["kineto"] = {"source": kineto_label, **timing.meta}
    trace_name = name or _default_name(file)
    return ImportResult(trace_document(trace_name, tensors_out, ops_out, meta, warnings), tuple(warnings))


def _default_name(label: str) -> str:
    base = label.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".json", ".tar", ".tgz", ".zip"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base or "pytorch-et"
