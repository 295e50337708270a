"""``belady``: demand paging with Belady's MIN eviction and a prefetch look-ahead window.

The compute tier is managed like a cache of tensors. Sweeping the ops in order, when
the planned footprint of an op exceeds the capacity, the resident tensor used
farthest in the future is evicted (Belady 1966, MIN; tensors needed within the
look-ahead window are evicted only when nothing else is left). Eviction happens on
demand: the op that needs the room waits for the copy out. A read-only tensor whose
lower-tier copy is still valid (a weight fetched from DDR and not updated since) is
dropped, not copied back. Every evicted tensor is prefetched ``window`` ops before its
next use (and tensors that start elsewhere are fetched the same way); the op that
reads it waits for it if the copy is late.

Options (``SolveOptions.extra``): ``window`` (look-ahead in ops, default 2).

Under a time limit the sweep polls the clock every :data:`solver.heuristics.greedy.POLL_EVERY`
steps and stops with status ``timeout`` (no schedule) when the time is up.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> from solver.methods import Instance, SolveOptions
>>> tr = Trace("t", (Tensor(id="x", bytes=8), Tensor(id="y", bytes=8)),
...            (Op(id="a", duration=1.0, outputs=("x",)), Op(id="b", duration=1.0, outputs=("y",)),
...             Op(id="c", duration=1.0, inputs=("y",)), Op(id="d", duration=1.0, inputs=("y",)),
...             Op(id="e", duration=1.0, inputs=("x",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 8), Tier("DDR", 64)),
...               (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0)))
>>> plan(Instance(tr, hw), SolveOptions(extra={"window": 0})).status
'feasible'
"""

from __future__ import annotations

import heapq

from solver.deadline import OutOfTime, Poll, deadline_of
from solver.heuristics.engine import Engine, PlanningError
from solver.heuristics.greedy import POLL_EVERY, op_overflow, timed_out
from solver.methods import Instance, PlanResult, SolveOptions

DEFAULT_WINDOW = 2


def plan(instance: Instance, options: SolveOptions) -> PlanResult:
    """Plan by demand paging with MIN eviction (see the module docstring)."""
    window = max(0, int(options.extra.get("window", DEFAULT_WINDOW)))
    tick = Poll(deadline_of(options), POLL_EVERY)
    try:
        eng = Engine(instance)
        msg = op_overflow(eng)
        if msg:
            return PlanResult("infeasible", message=msg)
        stats = _sweep(eng, window, tick)
    except PlanningError as exc:
        return PlanResult("infeasible", message=str(exc))
    except OutOfTime:
        return timed_out("belady", tick)
    return eng.result("belady", stats)


def _sweep(eng: Engine, window: int, tick: Poll | None = None) -> dict[str, int]:
    tick = tick if tick is not None else Poll(None)
    f = eng.f
    tr = f.trace
    n = f.n
    eng.initial_fetches(lookahead=window, tick=tick)
    heap: list[tuple[float, int, int, int]] = []     # (-next use, tensor, last touch, next touch)
    stats = {"evictions": 0, "drops": 0}

    def activate(t: int, a: int) -> None:
        b = eng.next_touch(t, a)
        if b >= n:
            if tr.tensors[t].persistent and eng.tail(t, a) == "optional" and a + 1 < n:
                heapq.heappush(heap, (-n, t, a, n))
            return
        if b > a + 1:
            heapq.heappush(heap, (-b, t, a, b))

    for t in range(len(f.size)):
        if tr.birth[t] < 0 and tr.death[t] >= 0 and not f.absent_start(t):
            activate(t, -1)
        elif f.absent_start(t) and not tr.users[t] and tr.tensors[t].persistent:
            eng.tail(t, -1)
    for s in range(n):
        tick()
        if s > 0:
            for t in sorted(set(tr.op_reads[s - 1]) | set(tr.op_writes[s - 1])):
                activate(t, s - 1)
        while eng.used(s) > eng.cap:
            opt = None
            while heap:
                tick()
                _, t, a, b = heapq.heappop(heap)
                if b <= s:
                    continue
                opt = eng.offload_option(t, a, b, s, force_m=s, force_j=max(b - window - 1, s), evict_after=s - 1)
                if opt is not None:
                    break
            if opt is None:
                raise PlanningError(f"belady: at op {tr.ops[s].id!r} the compute tier needs {eng.used(s)} bytes "
                                    f"but holds {eng.cap}, and no resident tensor can be evicted")
            eng.commit(opt)
            stats["drops" if opt.drop else "evictions"] += 1
    if n:
        for t in sorted(set(tr.op_reads[n - 1]) | set(tr.op_writes[n - 1])):
            if tr.tensors[t].persistent:
                eng.tail(t, n - 1)
    return stats
