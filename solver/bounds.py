"""Lower bounds on the makespan of any valid schedule of an instance.

Each bound is a function ``Instance -> float`` (``math.inf`` when it proves that
nothing fits) registered in :data:`BOUNDS`; :func:`lower_bounds` evaluates them and
:func:`lower_bound` takes the largest. Bounds marked ``expensive`` (such as an LP
relaxation) run only when asked for. Every bound holds under the timing model of the
formats spec: every op runs once, in trace order, on one compute stream; a copy of
``b`` bytes keeps its stream busy for ``latency + b / bandwidth``; a tensor is in a
tier from the start of the action that allocates it there.

* ``compute``: the sum of the op durations.
* ``fetch``: tensors that start outside the compute tier and are read must be copied
  in before their first reader starts, over the links into the compute tier: for every
  op ``i``, the transfer time of the tensors first read by ops up to ``i`` (their bytes
  over the inbound bandwidth, or, latency included, their copy times spread over the
  inbound streams, whichever is larger) + (durations of ops ``i`` onwards).
* ``writeback``: a persistent tensor whose final tier is not the compute tier and that
  an op writes must be copied out after its last write ends: for every op ``i``,
  (durations up to ``i``) + the transfer time (as for ``fetch``) of the tensors last
  written by ops from ``i`` on.
* ``capacity``: when the tensors alive at the start of op ``i`` exceed the compute
  tier, the excess must be absent there at that instant; whatever of it is read later
  must come back after that instant, by a copy in (inbound link time, and each copy
  must arrive before its next reader starts, after which the remaining ops still run)
  or by recomputing its producer (compute time). The bound minimises over fractional
  mixes of the two (recomputing an op restores all its outputs at once; copies are
  charged to the tensors read last) and is evaluated at the instants with the largest
  excess.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> from solver.methods import Instance
>>> tr = Trace("t", (Tensor(id="w", bytes=100, initial_tier="DDR"),),
...            (Op(id="a", duration=1.0, inputs=("w",)),))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 1000), Tier("DDR", 1000)), (Link("DDR", "HBM", 50.0),))
>>> lower_bounds(Instance(tr, hw))
{'compute': 1.0, 'fetch': 3.0, 'writeback': 0.0, 'capacity': 0.0}
>>> lower_bound(Instance(tr, hw))
3.0
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from solver.methods import Instance
from solver.model import Hardware

#: How many instants the capacity bound examines (those with the largest excess).
CAPACITY_INSTANTS = 64

BoundFn = Callable[[Instance], float]


@dataclass(frozen=True)
class BoundEntry:
    """A registered bound: a name, where its function lives, and whether it is expensive."""

    name: str
    module: str
    function: str
    expensive: bool = False

    def load(self) -> BoundFn:
        """Import and return the bound function."""
        return getattr(importlib.import_module(self.module), self.function)


def _bandwidth(hw: Hardware, into: bool) -> float:
    """Aggregate bandwidth of the streams carrying links into (or out of) the compute tier."""
    best: dict[str, float] = {}
    C = hw.compute_tier
    for lk in hw.links:
        if (lk.dst == C) if into else (lk.src == C):
            best[lk.stream] = max(best.get(lk.stream, 0.0), lk.bandwidth)
    return float(sum(best.values()))


def _copy_work(hw: Hardware, into: bool, nbytes: np.ndarray) -> tuple[np.ndarray, int]:
    """Per tensor, the least time one copy into (out of) the compute tier takes on any link
    (latency included), and how many streams such copies can use at once."""
    C = hw.compute_tier
    links = [lk for lk in hw.links if ((lk.dst == C) if into else (lk.src == C))]
    k = len({lk.stream for lk in links})
    work = np.min(np.stack([lk.latency + nbytes / lk.bandwidth for lk in links]), axis=0)
    return work, k


def compute_bound(instance: Instance) -> float:
    """The sum of op durations.

    Examples
    --------
    >>> from solver.model import Trace, Op, Hardware, Tier
    >>> compute_bound(Instance(Trace("t", (), (Op(id="a", duration=2.0),)), Hardware("h", "A", (Tier("A", 1),))))
    2.0
    """
    return float(sum(o.duration for o in instance.trace.ops))


def fetch_bound(instance: Instance) -> float:
    """Inbound copies of tensors that start elsewhere, before their first readers (see module docs).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
    >>> tr = Trace("t", (Tensor(id="w", bytes=10, initial_tier="B"),), (Op(id="a", duration=1.0, inputs=("w",)),))
    >>> fetch_bound(Instance(tr, Hardware("h", "A", (Tier("A", 99), Tier("B", 99)), (Link("B", "A", 5.0),))))
    3.0
    """
    tr, hw = instance.trace, instance.hardware
    n = len(tr.ops)
    C = hw.compute_tier
    first, nbytes = [], []
    for t, tensor in enumerate(tr.tensors):
        if tr.producer[t] < 0 and tensor.initial_tier not in (None, C):
            if tr.users[t]:
                first.append(tr.users[t][0])
            elif tensor.persistent and tensor.final_tier == C:
                first.append(n)            # must be in the compute tier by the end
            else:
                continue
            nbytes.append(tensor.bytes)
    if not first:
        return 0.0
    bw = _bandwidth(hw, into=True)
    if bw <= 0:
        return math.inf
    sizes = np.asarray(nbytes, dtype=np.float64)
    work, k = _copy_work(hw, True, sizes)
    need = np.zeros(n + 1, dtype=np.float64)
    need_work = np.zeros(n + 1, dtype=np.float64)
    np.add.at(need, first, sizes)
    np.add.at(need_work, first, work)
    dur = np.asarray([o.duration for o in tr.ops] + [0.0], dtype=np.float64)
    suffix = np.cumsum(dur[::-1])[::-1]
    transfer = np.maximum(np.cumsum(need) / bw, np.cumsum(need_work) / k)
    return float(np.max(transfer + suffix))


def writeback_bound(instance: Instance) -> float:
    """Outbound copies of persistent tensors written on the compute tier to another final tier.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
    >>> tr = Trace("t", (Tensor(id="w", bytes=10, persistent=True, final_tier="B"),),
    ...            (Op(id="a", duration=1.0, outputs=("w",)),))
    >>> writeback_bound(Instance(tr, Hardware("h", "A", (Tier("A", 99), Tier("B", 99)), (Link("A", "B", 5.0),))))
    3.0
    """
    tr, hw = instance.trace, instance.hardware
    n = len(tr.ops)
    if n == 0:
        return 0.0
    C = hw.compute_tier
    upd: dict[int, int] = {}
    for i, us in enumerate(tr.op_updates):
        for t in us:
            upd[t] = i
    lasts, nbytes = [], []
    for t, tensor in enumerate(tr.tensors):
        if not tensor.persistent or tensor.final_tier in (None, C):
            continue
        last = max(tr.producer[t], upd.get(t, -1))
        if last >= 0:
            lasts.append(last)
            nbytes.append(tensor.bytes)
    if not lasts:
        return 0.0
    bw = _bandwidth(hw, into=False)
    if bw <= 0:
        return math.inf
    sizes = np.asarray(nbytes, dtype=np.float64)
    work, k = _copy_work(hw, False, sizes)
    out = np.zeros(n, dtype=np.float64)
    out_work = np.zeros(n, dtype=np.float64)
    np.add.at(out, lasts, sizes)
    np.add.at(out_work, lasts, work)
    dur = np.asarray([o.duration for o in tr.ops], dtype=np.float64)
    ends = np.cumsum(dur)                       # a write-back starts after its writer ends
    after = np.maximum(np.cumsum(out[::-1])[::-1] / bw, np.cumsum(out_work[::-1])[::-1] / k)
    return float(np.max(ends + after))


def capacity_bound(instance: Instance) -> float:
    """Restoring what must be absent at the tightest instants (see the module docstring).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
    >>> tr = Trace("t", (Tensor(id="x", bytes=10, initial_tier="B"), Tensor(id="y", bytes=10, initial_tier="B")),
    ...            (Op(id="a", duration=1.0, inputs=("x",)), Op(id="b", duration=1.0, inputs=("y",))))
    >>> hw = Hardware("h", "A", (Tier("A", 10), Tier("B", 99)), (Link("B", "A", 5.0), Link("A", "B", 5.0)))
    >>> capacity_bound(Instance(tr, hw))
    3.0
    """
    tr, hw = instance.trace, instance.hardware
    n = len(tr.ops)
    if n == 0:
        return 0.0
    cap = hw.capacity[hw.compute_tier]
    prof = tr.resident_profile()
    excess = prof - cap
    # an op of zero duration starts and ends within one instant: its start is never checked
    timed = np.asarray([o.duration > 0 for o in tr.ops], dtype=bool)
    cand = np.flatnonzero((excess > 0) & timed)
    if len(cand) == 0:
        return 0.0
    nt = len(tr.tensors)
    size = np.asarray([t.bytes for t in tr.tensors], dtype=np.int64)
    birth = np.maximum(np.asarray(tr.birth, dtype=np.int64), 0)
    death = np.asarray(tr.death, dtype=np.int64)
    last_user = np.asarray([u[-1] if u else -1 for u in tr.users], dtype=np.int64)
    producer = np.asarray(tr.producer, dtype=np.int64)
    rec = np.asarray([p >= 0 and tr.ops[p].effective_recomputable for p in tr.producer], dtype=bool)
    dur = np.asarray([o.duration for o in tr.ops], dtype=np.float64)
    total = float(dur.sum())
    start = np.concatenate([[0.0], np.cumsum(dur)[:-1]])
    bw = _bandwidth(hw, into=True)
    pick = cand[np.argsort(-excess[cand], kind="stable")[:CAPACITY_INSTANTS]]
    if bw > 0:
        late = cand[np.argsort(-(start[cand] + excess[cand] / bw), kind="stable")[:CAPACITY_INSTANTS]]
        pick = np.unique(np.concatenate([pick, late]))
    best = 0.0
    # every (tensor, user) pair as one sorted key, so that the next use after op i of many tensors
    # at once is one searchsorted (a tensor in `later` has a user after i)
    stride = n + 1
    keys = np.fromiter((t * stride + u for t, us in enumerate(tr.users) for u in us), dtype=np.int64)
    for i in pick.tolist():
        used = np.zeros(nt, dtype=bool)
        used[list(tr.op_reads[i])] = True
        used[list(tr.op_writes[i])] = True
        alive = (birth <= i) & (death >= i) & ~used
        later = alive & (last_user > i)
        free = int(size[alive & ~later].sum())
        need = int(excess[i]) - free
        if need <= 0:
            continue
        cand = np.flatnonzero(later)
        base = cand.astype(np.int64) * stride
        nxt = keys[np.searchsorted(keys, base + i, side="right")] - base
        lb = _mix_bound(need, later & rec, size, producer, dur, total, float(start[i]), bw,
                        size[cand].astype(np.float64), nxt, total - start)
        if lb > best:
            best = lb
            if math.isinf(best):
                return best
    return best


def _mix_bound(need: int, rec_mask: np.ndarray, size: np.ndarray, producer: np.ndarray, dur: np.ndarray,
               total: float, t_i: float, bw: float, cand_size: np.ndarray, cand_next: np.ndarray,
               tail: np.ndarray) -> float:
    """min over y of max(total + R(y), D(need - y)).

    ``R(y)``: least compute time recomputing ``y`` bytes (fractional; recomputing an op restores all its
    outputs). ``D(c)``: least time by which ``c`` copied-back bytes can be in place: they start after
    ``t_i``, share the inbound bandwidth, and each must arrive before its next reader starts, after which
    the remaining ops still run: ``t_i + max_u (bytes due by u) / bw + tail[u]``, where the bytes due by
    ``u`` are fewest when the copied tensors are those read last.
    """
    if rec_mask.any():
        per_op = np.bincount(producer[rec_mask], weights=size[rec_mask].astype(np.float64))
        ops = np.flatnonzero(per_op > 0)
        gains = per_op[ops]
        costs = dur[ops]
        order = np.argsort(costs / gains, kind="stable")
        cum_g = np.concatenate([[0.0], np.cumsum(gains[order])])
        cum_c = np.concatenate([[0.0], np.cumsum(costs[order])])
    else:
        cum_g = cum_c = np.zeros(1)
    y_max = float(min(need, cum_g[-1]))

    def rec_cost(y: float) -> float:
        return float(np.interp(y, cum_g, cum_c))

    if bw <= 0:
        return math.inf if y_max < need else total + rec_cost(need)
    # deadlines: the distinct next uses u (ascending) and the candidate bytes read after each
    order = np.argsort(cand_next, kind="stable")
    nu = cand_next[order]
    sz = cand_size[order]
    uniq, first = np.unique(nu, return_index=True)
    suffix = np.concatenate([np.cumsum(sz[::-1])[::-1], [0.0]])
    after = np.concatenate([suffix[np.concatenate([first[1:], [len(nu)]])], [0.0]])
    tails = np.concatenate([tail[uniq], [0.0]])   # the last entry: everything back before the makespan

    def a_(y: float) -> float:
        return total + rec_cost(y)

    def b_(y: float) -> float:
        return t_i + float(np.max(np.maximum(0.0, (need - y) - after) / bw + tails))

    if a_(0.0) >= b_(0.0):
        return a_(0.0)
    if a_(y_max) <= b_(y_max):
        return b_(y_max)
    lo, hi = 0.0, y_max          # a_ - b_ increases with y: bracket the crossing
    for _ in range(60):
        mid = (lo + hi) / 2
        if a_(mid) < b_(mid):
            lo = mid
        else:
            hi = mid
    return max(a_(lo), b_(hi))   # the optimum lies between the two: this never overestimates it


#: The registered bounds, cheapest first. An expensive bound (an LP relaxation) runs only on request.
BOUNDS: tuple[BoundEntry, ...] = (
    BoundEntry("compute", "solver.bounds", "compute_bound"),
    BoundEntry("fetch", "solver.bounds", "fetch_bound"),
    BoundEntry("writeback", "solver.bounds", "writeback_bound"),
    BoundEntry("capacity", "solver.bounds", "capacity_bound"),
)


def lower_bounds(instance: Instance, expensive: bool = False,
                 extra: Mapping[str, BoundFn] | None = None) -> dict[str, float]:
    """Every registered bound of ``instance`` (plus ``extra`` ones), by name.

    Parameters
    ----------
    expensive : bool
        Also run the bounds registered as expensive.
    extra : Mapping[str, callable], optional
        More bound functions to evaluate (e.g. a solver's own relaxation).

    Examples
    --------
    >>> from solver.model import Trace, Op, Hardware, Tier
    >>> inst = Instance(Trace("t", (), (Op(id="a", duration=2.0),)), Hardware("h", "A", (Tier("A", 1),)))
    >>> lower_bounds(inst, extra={"two": lambda i: 2.5})["two"]
    2.5
    """
    out: dict[str, float] = {}
    for entry in BOUNDS:
        if entry.expensive and not expensive:
            continue
        out[entry.name] = float(entry.load()(instance))
    for name, fn in (extra or {}).items():
        out[name] = float(fn(instance))
    return out


def lower_bound(instance: Instance, expensive: bool = False) -> float:
    """The largest of :func:`lower_bounds` (``inf`` when one proves nothing fits).

    Examples
    --------
    >>> from solver.model import Trace, Op, Hardware, Tier
    >>> lower_bound(Instance(Trace("t", (), (Op(id="a", duration=2.0),)), Hardware("h", "A", (Tier("A", 1),))))
    2.0
    """
    vals = lower_bounds(instance, expensive)
    return max(vals.values(), default=0.0)


__all__ = ["BOUNDS", "BoundEntry", "CAPACITY_INSTANTS", "compute_bound", "fetch_bound", "writeback_bound",
           "capacity_bound", "lower_bounds", "lower_bound"]
