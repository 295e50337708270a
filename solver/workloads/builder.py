"""Workloads before timing: tensors and ops with FLOP and byte counts, and their trace documents.

Generators build a :class:`Workload` with a :class:`TraceBuilder` (a local,
single-use accumulator), then :func:`to_trace` turns it into a
``tierplan.trace/1`` document, timing each op with the roofline model of
:mod:`solver.workloads.roofline` (or keeping a duration the generator set).

Examples
--------
>>> b = TraceBuilder()
>>> b.tensor("w", 8, "weight", persistent=True)
'w'
>>> b.tensor("y", 4, "activation")
'y'
>>> b.op("f", "matmul", inputs=("w",), outputs=("y",), flops=64)
>>> wl = b.build("demo", kind="example")
>>> wl.total_flops(), wl.ops[0].mem_bytes
(64, 12)
>>> doc = to_trace(wl, None)
>>> doc["ops"][0]["duration"]
0.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from solver.workloads.roofline import ComputeSpec

TRACE_FORMAT = "tierplan.trace/1"


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A tensor of a workload (the fields of the trace format).

    Examples
    --------
    >>> TensorSpec("w", 4, "weight").persistent
    False
    """

    id: str
    bytes: int
    kind: str
    initial_tier: str | None = None
    persistent: bool = False
    final_tier: str | None = None


@dataclass(frozen=True, slots=True)
class OpSpec:
    """An op of a workload, with the FLOPs and memory traffic the roofline model times.

    ``duration`` is set only by generators that choose times directly (the synthetic
    kinds); otherwise it is ``None`` and :func:`to_trace` computes it.

    Examples
    --------
    >>> OpSpec("f", "matmul", ("a",), ("b",), (), flops=10, mem_bytes=8).recomputable
    True
    """

    id: str
    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    updates: tuple[str, ...]
    flops: int = 0
    mem_bytes: int = 0
    duration: float | None = None
    workspace: int = 0
    recomputable: bool = True


@dataclass(frozen=True, slots=True)
class Workload:
    """A generated workload: tensors, ops in execution order, and free-form metadata.

    Examples
    --------
    >>> Workload("w", "chain", (), (), {}).total_flops()
    0
    """

    name: str
    kind: str
    tensors: tuple[TensorSpec, ...]
    ops: tuple[OpSpec, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)
    dtype: str = "bf16"

    def total_flops(self) -> int:
        """Sum of the ops' FLOPs."""
        return sum(op.flops for op in self.ops)

    def bytes_by_kind(self) -> dict[str, int]:
        """Total tensor bytes per tensor kind.

        Examples
        --------
        >>> Workload("w", "x", (TensorSpec("a", 3, "weight"),), ()).bytes_by_kind()
        {'weight': 3}
        """
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.kind] = out.get(t.kind, 0) + t.bytes
        return out


class TraceBuilder:
    """Accumulates tensors and ops for one generator call (never shared between calls).

    ``op`` computes a default memory traffic of inputs + outputs + twice the updates
    (read and written) when ``mem_bytes`` is not given.
    """

    def __init__(self) -> None:
        self._tensors: list[TensorSpec] = []
        self._ops: list[OpSpec] = []
        self._size: dict[str, int] = {}
        self._op_ids: set[str] = set()

    def tensor(self, tid: str, nbytes: int, kind: str, *, initial_tier: str | None = None,
               persistent: bool = False, final_tier: str | None = None) -> str:
        """Declare a tensor; returns its id. Sizes below one byte are raised to one."""
        if tid in self._size:
            raise ValueError(f"duplicate tensor id {tid!r}")
        nbytes = max(1, int(nbytes))
        self._size[tid] = nbytes
        self._tensors.append(TensorSpec(tid, nbytes, kind, initial_tier, persistent,
                                        final_tier if persistent else None))
        return tid

    def size(self, tid: str) -> int:
        """Bytes of a declared tensor."""
        return self._size[tid]

    def op(self, oid: str, kind: str, inputs: Sequence[str] = (), outputs: Sequence[str] = (),
           updates: Sequence[str] = (), *, flops: float = 0, mem_bytes: float | None = None,
           duration: float | None = None, workspace: int = 0, recomputable: bool = True) -> None:
        """Append an op (execution order is the order of calls); an op with updates is not recomputable."""
        if oid in self._op_ids:
            raise ValueError(f"duplicate op id {oid!r}")
        self._op_ids.add(oid)
        if mem_bytes is None:
            size = self._size
            mem_bytes = (sum(size[t] for t in inputs) + sum(size[t] for t in outputs)
                         + 2 * sum(size[t] for t in updates))
        self._ops.append(OpSpec(oid, kind, tuple(inputs), tuple(outputs), tuple(updates), int(flops),
                                int(mem_bytes), duration, int(workspace), recomputable and not updates))

    def total_flops(self) -> int:
        """FLOPs of the ops declared so far."""
        return sum(op.flops for op in self._ops)

    def build(self, name: str, kind: str, meta: Mapping[str, Any] | None = None,
              dtype: str = "bf16") -> Workload:
        """Freeze what was declared into a :class:`Workload`."""
        return Workload(name, kind, tuple(self._tensors), tuple(self._ops), dict(meta or {}), dtype)


def _tensor_doc(t: TensorSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"id": t.id, "bytes": t.bytes, "kind": t.kind}
    if t.initial_tier is not None:
        d["initial_tier"] = t.initial_tier
    if t.persistent:
        d["persistent"] = True
        if t.final_tier is not None:
            d["final_tier"] = t.final_tier
    return d


def to_trace(workload: Workload, compute: ComputeSpec | None, meta: Mapping[str, Any] | None = None
             ) -> dict[str, Any]:
    """The ``tierplan.trace/1`` document of a workload.

    Parameters
    ----------
    workload : Workload
        What a generator built.
    compute : ComputeSpec or None
        Figures for the roofline model; ops without a preset duration need it
        (with ``None`` they get duration 0).
    meta : mapping, optional
        Extra entries for the document's ``meta`` (merged over the workload's).

    Returns
    -------
    dict
        Plain JSON-ready data. Ops list ``inputs``, ``outputs`` and ``updates``
        always; ``workspace`` only when non-zero; ``recomputable`` only when false.

    Examples
    --------
    >>> wl = Workload("w", "x", (TensorSpec("a", 4, "input"),),
    ...               (OpSpec("f", "k", ("a",), (), (), flops=2e12, mem_bytes=4),))
    >>> spec = ComputeSpec((("bf16", 1e12),), 1e9, 1.0, 1.0)
    >>> to_trace(wl, spec)["ops"][0]["duration"]
    2.0
    """
    timed = compute is not None and any(op.duration is None for op in workload.ops)
    if timed:
        assert compute is not None
        peak = compute.peak(workload.dtype) * compute.compute_efficiency
        bw = compute.hbm_bandwidth * compute.memory_efficiency
    ops: list[dict[str, Any]] = []
    for op in workload.ops:
        if op.duration is not None:
            dur = float(op.duration)
        elif not timed:
            dur = 0.0
        else:
            dur = max(op.flops / peak, op.mem_bytes / bw)
        d: dict[str, Any] = {"id": op.id, "duration": dur, "kind": op.kind, "inputs": list(op.inputs),
                             "outputs": list(op.outputs), "updates": list(op.updates)}
        if op.workspace:
            d["workspace"] = op.workspace
        if not op.recomputable:
            d["recomputable"] = False
        ops.append(d)
    full_meta = dict(workload.meta)
    full_meta.update(meta or {})
    if timed:
        assert compute is not None
        full_meta["roofline"] = compute.describe()
    return {"format": TRACE_FORMAT, "name": workload.name, "meta": full_meta,
            "tensors": [_tensor_doc(t) for t in workload.tensors], "ops": ops}


def unique(items: Iterable[str]) -> list[str]:
    """Items in first-seen order without repeats.

    Examples
    --------
    >>> unique(["a", "b", "a"])
    ['a', 'b']
    """
    return list(dict.fromkeys(items))
