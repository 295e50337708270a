"""The data model: traces, hardware, schedules.

Records that come in their hundreds of thousands (:class:`Tensor`, :class:`Op`
and the schedule actions) are frozen ``msgspec.Struct`` types: immutable,
slotted, dataclass-like records that the file reader decodes into directly,
several times faster than building dicts and then dataclasses. The aggregates
(:class:`Trace`, :class:`Hardware`, :class:`Schedule`) are frozen dataclasses
that compute their derived facts once, at construction.

The aggregates expect input that obeys the format rules; :mod:`solver.formats`
checks every rule (collecting all problems) before building them.

Examples
--------
>>> t = Trace("demo", (Tensor(id="x", bytes=8), Tensor(id="y", bytes=4)),
...           (Op(id="f", duration=1.0, inputs=("x",), outputs=("y",)),))
>>> t.no_offload_peak, t.producer, t.death
(12, (-1, 0), (0, 0))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Union

import msgspec
import numpy as np

TENSOR_KINDS: tuple[str, ...] = (
    "weight", "activation", "gradient", "optimizer_state", "kv_cache", "input", "workspace", "other",
)

TRACE_FORMAT = "tierplan.trace/1"
HARDWARE_FORMAT = "tierplan.hardware/1"
SCHEDULE_FORMAT = "tierplan.schedule/1"

#: ``birth`` value of a tensor that exists from time 0 (no producing op).
AT_START = -1


class Tensor(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A tensor of the trace (memory is counted per tensor).

    Examples
    --------
    >>> Tensor(id="w0", bytes=4096, kind="weight", persistent=True).persistent
    True
    """

    id: str
    bytes: int
    kind: str = "other"
    initial_tier: Union[str, None] = None
    persistent: bool = False
    final_tier: Union[str, None] = None


class Op(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """An operator, executed once in trace order on the compute tier.

    Examples
    --------
    >>> Op(id="mm", duration=0.001, inputs=("a", "w"), outputs=("b",)).effective_recomputable
    True
    """

    id: str
    duration: float
    kind: str = ""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    updates: tuple[str, ...] = ()
    workspace: int = 0
    recomputable: bool = True

    @property
    def effective_recomputable(self) -> bool:
        """Whether a ``recompute`` of this op is allowed (never for an op with ``updates``)."""
        return self.recomputable and not self.updates


# --- schedule actions -----------------------------------------------------------------------


class Run(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="run", tag_field="do"):
    """Execute ``op`` on the compute stream; ``id`` defaults to the op's id."""

    op: str
    id: Union[str, None] = None
    after: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.id is None:
            msgspec.structs.force_setattr(self, "id", self.op)


class Recompute(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="recompute", tag_field="do"):
    """Re-execute ``op`` on the compute stream to create its outputs again."""

    id: str
    op: str
    after: tuple[str, ...] = ()


class Copy(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="copy", tag_field="do"):
    """Copy ``tensor`` from tier ``src`` to tier ``dst`` on the link's stream."""

    id: str
    tensor: str
    src: str
    dst: str
    free_src: bool = False
    after: tuple[str, ...] = ()


class Free(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="free", tag_field="do"):
    """Release the copy of ``tensor`` in ``tier`` once everything in ``after`` has ended."""

    id: str
    tensor: str
    tier: str
    after: tuple[str, ...] = ()


Action = Union[Run, Recompute, Copy, Free]


# --- trace ------------------------------------------------------------------------------------


def _frozen(d: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True, eq=False)
class Trace:
    """A trace: tensors and ops in execution order, with derived facts computed once.

    Parameters
    ----------
    name : str
        The trace's name.
    tensors, ops : tuple
        :class:`Tensor` and :class:`Op` records obeying the format rules.
    meta : Mapping
        Free-form metadata.

    Attributes
    ----------
    tensor_index, op_index : Mapping[str, int]
        Position of each id.
    producer : tuple[int, ...]
        Producing op index per tensor, or -1.
    users : tuple[tuple[int, ...], ...]
        Op indices (sorted) that read or update each tensor.
    birth : tuple[int, ...]
        Op index at whose start the tensor is born, or ``AT_START`` (-1) for time 0.
    death : tuple[int, ...]
        Op index at whose end the tensor dies; ``AT_START`` (-1) when it dies at time 0;
        ``len(ops)`` for a persistent tensor (it lives to the end).
    op_reads, op_writes, op_updates : tuple[tuple[int, ...], ...]
        Per op: tensor indices read (inputs and updates, deduplicated), produced, updated.
    dies_after : tuple[tuple[int, ...], ...]
        Per op: tensor indices that die at its end.
    no_offload_peak : int
        Largest compute-tier footprint running every op once, back to back, with every tensor
        resident from birth to death, plus the running op's workspace.
    total_bytes : int
        Sum of every tensor's size and every op's workspace: no tier's footprint can exceed it.

    Examples
    --------
    >>> t = Trace("t", (Tensor(id="a", bytes=2),), (Op(id="o", duration=1.0, outputs=("a",)),))
    >>> t.users, t.birth, t.death
    (((),), (0,), (0,))
    """

    name: str
    tensors: tuple[Tensor, ...]
    ops: tuple[Op, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    tensor_index: Mapping[str, int] = field(init=False, repr=False)
    op_index: Mapping[str, int] = field(init=False, repr=False)
    producer: tuple[int, ...] = field(init=False, repr=False)
    users: tuple[tuple[int, ...], ...] = field(init=False, repr=False)
    birth: tuple[int, ...] = field(init=False, repr=False)
    death: tuple[int, ...] = field(init=False, repr=False)
    op_reads: tuple[tuple[int, ...], ...] = field(init=False, repr=False)
    op_writes: tuple[tuple[int, ...], ...] = field(init=False, repr=False)
    op_updates: tuple[tuple[int, ...], ...] = field(init=False, repr=False)
    dies_after: tuple[tuple[int, ...], ...] = field(init=False, repr=False)
    no_offload_peak: int = field(init=False)
    total_bytes: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = object.__setattr__
        tensors = tuple(self.tensors)
        ops = tuple(self.ops)
        s(self, "tensors", tensors)
        s(self, "ops", ops)
        s(self, "meta", _frozen(self.meta))
        tix = {t.id: i for i, t in enumerate(tensors)}
        s(self, "tensor_index", MappingProxyType(tix))
        s(self, "op_index", MappingProxyType({o.id: i for i, o in enumerate(ops)}))
        n_t, n_o = len(tensors), len(ops)
        producer = [-1] * n_t
        users: list[list[int]] = [[] for _ in range(n_t)]
        reads: list[tuple[int, ...]] = []
        writes: list[tuple[int, ...]] = []
        upds: list[tuple[int, ...]] = []
        get = tix.__getitem__
        empty: tuple[int, ...] = ()
        for i, op in enumerate(ops):
            r = tuple(map(get, op.inputs))
            if op.updates:
                u = tuple(dict.fromkeys(map(get, op.updates)))
                r = r + u
            else:
                u = empty
            if len(r) > 1 and len(set(r)) != len(r):
                r = tuple(dict.fromkeys(r))
            reads.append(r)
            upds.append(u)
            w = tuple(map(get, op.outputs))
            writes.append(w)
            for t in r:
                users[t].append(i)
            for t in w:
                producer[t] = i
        birth = [AT_START if p < 0 else p for p in producer]
        death = []
        dies: list[list[int]] = [[] for _ in range(n_o)]
        for t, tensor in enumerate(tensors):
            if tensor.persistent:
                d = n_o
            elif users[t]:
                d = users[t][-1]
            else:
                d = producer[t]  # -1 (time 0) when nothing produces it
            death.append(d)
            if 0 <= d < n_o:
                dies[d].append(t)
        s(self, "producer", tuple(producer))
        s(self, "users", tuple(tuple(u) for u in users))
        s(self, "birth", tuple(birth))
        s(self, "death", tuple(death))
        s(self, "op_reads", tuple(reads))
        s(self, "op_writes", tuple(writes))
        s(self, "op_updates", tuple(upds))
        s(self, "dies_after", tuple(tuple(d) for d in dies))
        s(self, "total_bytes", sum(t.bytes for t in tensors) + sum(o.workspace for o in ops))
        s(self, "no_offload_peak", _no_offload_peak(tensors, ops, birth, death, self.total_bytes))

    def tensor(self, tensor_id: str) -> Tensor:
        """The tensor with this id (``KeyError`` if unknown)."""
        return self.tensors[self.tensor_index[tensor_id]]

    def op(self, op_id: str) -> Op:
        """The op with this id (``KeyError`` if unknown)."""
        return self.ops[self.op_index[op_id]]

    @property
    def compute_time(self) -> float:
        """Sum of op durations."""
        return float(sum(o.duration for o in self.ops))

    def resident_profile(self) -> np.ndarray:
        """Compute-tier footprint during each op under the no-offload execution.

        An int64 array; an array of Python integers (``dtype=object``) when the trace's total
        (:attr:`total_bytes`) would not fit 64-bit arithmetic, so the figures are always exact.
        """
        return _resident(self.tensors, self.ops, self.birth, self.death, self.total_bytes)


#: totals from this size on are summed with Python integers (int64 would wrap around)
_INT64_SAFE = 2**62


def _resident(tensors: tuple[Tensor, ...], ops: tuple[Op, ...], birth: list[int] | tuple[int, ...],
              death: list[int] | tuple[int, ...], total: int) -> np.ndarray:
    n = len(ops)
    dtype: Any = np.int64 if total < _INT64_SAFE else object
    diff = np.zeros(n + 2, dtype=dtype)
    if tensors:
        b = np.fromiter((max(x, 0) for x in birth), dtype=np.int64, count=len(tensors))
        d = np.fromiter(death, dtype=np.int64, count=len(tensors))
        size = np.array([t.bytes for t in tensors], dtype=dtype)
        alive = d >= 0  # tensors dying at time 0 never occupy memory after an instant
        np.add.at(diff, b[alive], size[alive])
        np.add.at(diff, np.minimum(d[alive], n) + 1, -size[alive])
    prof = np.cumsum(diff)[:n]
    ws = np.array([o.workspace for o in ops], dtype=dtype)
    return prof + ws


def _no_offload_peak(tensors: tuple[Tensor, ...], ops: tuple[Op, ...], birth: list[int],
                     death: list[int], total: int) -> int:
    prof = _resident(tensors, ops, birth, death, total)
    at_rest = sum(t.bytes for t, b, d in zip(tensors, birth, death) if b == AT_START and d >= 0)
    if not ops:
        return int(at_rest)
    return int(max(int(prof.max()), at_rest))


# --- hardware ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tier:
    """A memory tier with a capacity in bytes.

    Examples
    --------
    >>> Tier("HBM", 64 * 2**30).capacity
    68719476736
    """

    name: str
    capacity: int


@dataclass(frozen=True, slots=True)
class Link:
    """A directed link: one serial stream (shared by the links of the same ``channel``).

    Examples
    --------
    >>> Link("HBM", "DDR", 25e9, 1e-5).stream, Link("HBM", "DDR", 25e9, 1e-5).copy_time(25e9)
    ('HBM->DDR', 1.00001)
    """

    src: str
    dst: str
    bandwidth: float
    latency: float = 0.0
    channel: str | None = None

    @property
    def stream(self) -> str:
        """The stream this link's copies queue on."""
        return self.channel if self.channel else f"{self.src}->{self.dst}"

    def copy_time(self, nbytes: int) -> float:
        """Seconds a copy of ``nbytes`` takes: ``latency + bytes / bandwidth``."""
        return self.latency + nbytes / self.bandwidth


@dataclass(frozen=True, eq=False)
class Hardware:
    """Tiers, links and the compute tier.

    Examples
    --------
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100), Tier("DDR", 1000)),
    ...               (Link("HBM", "DDR", 10.0), Link("DDR", "HBM", 10.0)))
    >>> hw.streams, hw.link("DDR", "HBM").bandwidth
    (('HBM->DDR', 'DDR->HBM'), 10.0)
    """

    name: str
    compute_tier: str
    tiers: tuple[Tier, ...]
    links: tuple[Link, ...] = ()
    compute: Mapping[str, Any] = field(default_factory=dict)

    tier_index: Mapping[str, int] = field(init=False, repr=False)
    capacity: Mapping[str, int] = field(init=False, repr=False)
    streams: tuple[str, ...] = field(init=False, repr=False)
    _links: Mapping[tuple[str, str], Link] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "tiers", tuple(self.tiers))
        s(self, "links", tuple(self.links))
        s(self, "compute", _frozen(self.compute))
        s(self, "tier_index", MappingProxyType({t.name: i for i, t in enumerate(self.tiers)}))
        s(self, "capacity", MappingProxyType({t.name: t.capacity for t in self.tiers}))
        s(self, "streams", tuple(dict.fromkeys(lk.stream for lk in self.links)))
        s(self, "_links", MappingProxyType({(lk.src, lk.dst): lk for lk in self.links}))

    def link(self, src: str, dst: str) -> Link | None:
        """The link from ``src`` to ``dst``, or None."""
        return self._links.get((src, dst))

    def with_capacity(self, overrides: Mapping[str, int]) -> "Hardware":
        """A copy with some tiers' capacities replaced (unknown names raise ``KeyError``)."""
        for name in overrides:
            if name not in self.tier_index:
                raise KeyError(name)
        tiers = tuple(Tier(t.name, int(overrides.get(t.name, t.capacity))) for t in self.tiers)
        return Hardware(self.name, self.compute_tier, tiers, self.links, self.compute)

    def neighbours(self, tier: str) -> tuple[str, ...]:
        """Tiers reachable from ``tier`` by one declared link."""
        return tuple(lk.dst for lk in self.links if lk.src == tier)


# --- schedule ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Schedule:
    """A stream program: actions with explicit waits.

    Parameters
    ----------
    trace, hardware : str
        Names of the trace and hardware it was made for.
    actions : tuple[Action, ...]
        In program order; each stream executes its actions in this order.
    capacity : Mapping[str, int]
        Capacity overrides the schedule was made for.
    solver : Mapping
        What made it: method, status, objective, bound, wall_s (informative only).

    Examples
    --------
    >>> s = Schedule("t", "h", (Run(op="a"), Copy(id="c", tensor="x", src="HBM", dst="DDR", after=("a",))))
    >>> [a.id for a in s.actions]
    ['a', 'c']
    """

    trace: str
    hardware: str
    actions: tuple[Action, ...]
    capacity: Mapping[str, int] = field(default_factory=dict)
    solver: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", tuple(self.actions))
        object.__setattr__(self, "capacity", _frozen(self.capacity))
        object.__setattr__(self, "solver", _frozen(self.solver))
