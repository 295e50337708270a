"""``greedy``: the selective planner (offload or recompute what is cheapest, only where needed).

In the spirit of HyperOffload's cost model: the planner sweeps the ops in order,
keeping the compute tier's planned footprint per op. Where it exceeds the capacity,
it considers the *candidate intervals* alive there (a tensor between two uses, between
its birth and first use, or after its last use for a persistent tensor), and for each
estimates the memory it frees and the transfer or recompute time it risks exposing:

* an offload books its copy out as early as possible after the last write (or just
  drops the tensor when a lower-tier copy is still valid) and its copy back as late as
  possible before the next use, on each link's FIFO calendar, so the copies hide
  behind compute; the exposed time is what does not fit;
* a recompute costs its producer's duration (nothing when another output already
  recomputes that op there).

Candidates are visited farthest next use first (Belady's order) and scored by useful
bytes times the span they cover per second of link time; an option that exposes no time
always beats one that does, and exposed options are compared by time per byte freed.
When a non-compute tier is full, the copy goes to the next tier along the declared
links (DDR to SSD). The plan is audited slot by slot and emitted with waits that make
the audit hold whatever the timing (see :mod:`solver.heuristics.plan`); the driver
then validates it.

Options (``SolveOptions.extra``): ``candidates`` (how many candidates to evaluate per
decision; default 64, fewer on traces over 20,000 ops, down to 12 at 100,000).

With a time limit (``SolveOptions.time_limit`` or ``deadline``) the sweep polls the clock every
:data:`POLL_EVERY` steps (ops swept and candidates evaluated); when the time is up it stops with
status ``timeout`` and no schedule (a half-swept plan does not fit the capacity, so there is no
valid schedule to return).

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> from solver.methods import Instance, SolveOptions
>>> tr = Trace("t", (Tensor(id="big", bytes=100), Tensor(id="y", bytes=10)),
...            (Op(id="f", duration=1.0, outputs=("big",)), Op(id="g", duration=10.0, outputs=("y",)),
...             Op(id="h", duration=1.0, inputs=("big", "y"))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 110), Tier("DDR", 1000)),
...               (Link("HBM", "DDR", 100.0), Link("DDR", "HBM", 100.0)))
>>> res = plan(Instance(tr, hw), SolveOptions())
>>> res.status, [a.id for a in res.schedule.actions if a.id.startswith(("in", "out"))]
('feasible', [])
"""

from __future__ import annotations

import heapq
from typing import Any

from solver.deadline import OutOfTime, Poll, deadline_of
from solver.feasibility import infeasible_reason
from solver.heuristics.engine import Engine, Option, PlanningError
from solver.methods import Instance, PlanResult, SolveOptions

#: Candidates evaluated per decision (the best of them is chosen)...
DEFAULT_CANDIDATES = 64
#: ... on traces of up to CANDIDATE_BUDGET / DEFAULT_CANDIDATES ops; longer traces get
#: CANDIDATE_BUDGET / ops of them, but at least MIN_CANDIDATES.
CANDIDATE_BUDGET = 1_280_000
MIN_CANDIDATES = 12

#: Steps (ops swept, candidates evaluated) between two readings of the clock under a time limit.
POLL_EVERY = 64


def plan(instance: Instance, options: SolveOptions) -> PlanResult:
    """Plan with the selective greedy (see the module docstring).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> from solver.methods import Instance, SolveOptions
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, outputs=("x",)),))
    >>> plan(Instance(tr, Hardware("h", "HBM", (Tier("HBM", 4),))), SolveOptions()).status
    'infeasible'
    """
    tick = Poll(deadline_of(options), POLL_EVERY)
    try:
        eng = Engine(instance)
        msg = op_overflow(eng)
        if msg:
            return PlanResult("infeasible", message=msg)
        if "candidates" in options.extra:
            k = int(options.extra["candidates"])
        else:       # fewer per decision on long traces, so planning time stays about linear in the ops
            k = max(MIN_CANDIDATES, min(DEFAULT_CANDIDATES, CANDIDATE_BUDGET // max(eng.n, 1)))
        stats = _Sweep(eng, max(1, k), options.recompute, tick).run()
        stats["hoisted"] = eng.hoist()
    except PlanningError as exc:
        return PlanResult("infeasible", message=str(exc))
    except OutOfTime:
        return timed_out("greedy", tick)
    return eng.result("greedy", stats)


def timed_out(method: str, tick: Poll) -> PlanResult:
    """The answer of a heuristic stopped by its time limit: ``timeout``, no schedule.

    Examples
    --------
    >>> from solver.deadline import Deadline
    >>> res = timed_out("greedy", Poll(Deadline(0.0, clock=lambda: 1.0), 1))
    >>> res.status, res.message
    ('timeout', 'greedy: stopped at the time limit after 0 steps, with no complete schedule')
    """
    return PlanResult("timeout", message=f"{method}: stopped at the time limit after {tick.steps} steps, with no "
                                         "complete schedule", stats={"steps": tick.steps, "clock_checks": tick.checks})


def _neg(key: tuple[int, float]) -> tuple[int, float]:
    """Negated score, for Python's min-heaps."""
    return (-key[0], -key[1])


#: Weight of an exposed option's link time in its cost (when copies are exposed the links are the
#: bottleneck, and every second booked there delays later copies).
LINK_WEIGHT = 1.0

#: A re-evaluated score is taken when within this fraction of the next (stale, optimistic) one:
#: the bookings that lowered it usually lower the others as much.
TOLERANCE = 0.2


def _close_enough(fresh: tuple[int, float], next_neg: tuple[int, float]) -> bool:
    """Whether a fresh score is (nearly) no worse than the next pooled one (given negated)."""
    nxt = (-next_neg[0], -next_neg[1])
    if fresh[0] != nxt[0]:
        return fresh[0] > nxt[0]
    return fresh[1] >= nxt[1] - TOLERANCE * abs(nxt[1])


def op_overflow(eng: Engine) -> str | None:
    """Why no plan can fit (see :func:`solver.feasibility.infeasible_reason`), or None.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, outputs=("x",), workspace=4),))
    >>> print(op_overflow(Engine(Instance(tr, Hardware("h", "HBM", (Tier("HBM", 10),))))))
    op 'a' needs 12 bytes in HBM at once (inputs 0 + outputs 8 + workspace 4) but HBM holds 10 bytes
    """
    return infeasible_reason(eng.f.trace, eng.f.hardware)


class _Sweep:
    """One greedy sweep over the slots (private, single use)."""

    def __init__(self, eng: Engine, k: int, recompute: bool, tick: Poll | None = None) -> None:
        self.eng = eng
        self.k = k
        self.allow_rc = recompute
        self.tick = tick if tick is not None else Poll(None)
        f = eng.f
        self.heap: list[tuple[float, int, int, int, int, int, int]] = []
        self.reopen: dict[int, list[tuple[int, int, int]]] = {}
        self.version = [0] * len(f.size)
        self.live: list[tuple[int, int] | None] = [None] * len(f.size)
        self.tie = 0
        self.stats = {"offloads": 0, "drops": 0, "recomputes": 0, "forced": 0, "evaluated": 0}

    # -- candidates -------------------------------------------------------------------------------
    def push(self, t: int, a: int, b: int, extend: bool = False) -> None:
        f = self.eng.f
        key = -f.start[min(b, f.n)] - (1.0 if b >= f.n else 0.0)
        self.tie += 1
        heapq.heappush(self.heap, (key, self.tie, t, a, b, -1 if extend else self.version[t], int(extend)))
        if not extend:
            self.live[t] = (a, b)

    def watch(self, t: int, a: int, b: int) -> None:
        """After the window of gap ``(a, b)`` ends, offer to extend it."""
        info = self.eng.prefetch_of.get((t, b))
        if info is not None and info[3] < b - 1:
            self.reopen.setdefault(info[3] + 1, []).append((t, a, b))

    def activate(self, t: int, a: int) -> None:
        """Open the gap of ``t`` after its touch at slot ``a``."""
        eng, f = self.eng, self.eng.f
        n = f.n
        b = eng.next_touch(t, a)
        if b >= n:
            if f.trace.tensors[t].persistent:
                how = eng.tail(t, a)
                if how == "optional" and a + 1 < n:
                    self.push(t, a, n)
                elif how == "done" and t in eng.release_of and eng.release_of[t][2] > a + 1:
                    self.push(t, a, n, extend=True)
            return
        if b > a + 1:
            self.push(t, a, b)

    def split(self, x: int, b: int) -> None:
        """A recompute before run ``b`` reads ``x``: its live gap now ends at ``b``."""
        g = self.live[x]
        if g is not None and g[0] < b < g[1]:
            self.version[x] += 1
            self.push(x, g[0], b)

    # -- sweep ------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        eng, f = self.eng, self.eng.f
        n = f.n
        tr = f.trace
        eng.initial_fetches(tick=self.tick)
        for (t, b) in list(eng.prefetch_of):
            self.watch(t, -1, b)
        for t in range(len(f.size)):
            if tr.birth[t] < 0 and tr.death[t] >= 0 and not f.absent_start(t):
                self.activate(t, -1)
            elif f.absent_start(t) and not tr.users[t] and tr.tensors[t].persistent:
                eng.tail(t, -1)
        cap = eng.cap
        tick = self.tick
        for s in range(n):
            tick()
            if s > 0:
                prev = s - 1
                touched = set(tr.op_reads[prev]) | set(tr.op_writes[prev])
                touched.update(eng.touched_at.get(prev, ()))
                for t in sorted(touched):
                    self.activate(t, prev)
            for t, a, b in self.reopen.pop(s, ()):
                self.push(t, a, b, extend=True)
            used = eng.used(s)
            if used > cap:
                self.resolve(s, used)
        if n:
            last = set(tr.op_reads[n - 1]) | set(tr.op_writes[n - 1]) | set(eng.touched_at.get(n - 1, ()))
            for t in sorted(last):
                if eng.next_touch(t, n - 1) >= n and tr.tensors[t].persistent:
                    eng.tail(t, n - 1)
        return dict(self.stats)

    def evaluate(self, entry: tuple[float, int, int, int, int, int, int], s: int, excess: int
                 ) -> tuple[tuple[int, float], Option] | None:
        """The best option for a heap entry at slot ``s`` and its score (None: the entry is dead)."""
        eng = self.eng
        _, _, t, a, b, ver, ext = entry
        if b <= s and not (ext and b >= eng.n):
            return None
        self.tick()
        self.stats["evaluated"] += 1
        if ext:
            o0 = eng.extend_option(t, a, b, s) if b < eng.n else eng.advance_option(t, a, s)
            return None if o0 is None else (self.score(o0, s, excess), o0)
        if ver != self.version[t] or self.live[t] != (a, b):
            return None
        best = None
        o1 = eng.offload_option(t, a, b, s)
        if o1 is not None:
            best = (self.score(o1, s, excess), o1)
        if self.allow_rc and (o1 is None or o1.stall > 0 or o1.link_time > 0):
            o2 = eng.recompute_option(t, a, b)
            if o2 is not None:
                k2 = self.score(o2, s, excess)
                if best is None or k2 > best[0]:
                    best = (k2, o2)
        return best

    def resolve(self, s: int, used: int) -> None:
        """Choose options until slot ``s`` fits (lazy greedy over a pool of evaluated candidates).

        Up to ``k`` candidates, farthest next use first, are evaluated. Scores only fall as the
        links fill and the excess shrinks, so a pooled score is an upper bound: the best pooled
        candidate is re-evaluated, and taken when it still beats the next one.
        """
        eng = self.eng
        cap = eng.cap
        heap = self.heap
        pool: list[tuple[tuple[int, float], int, Option, tuple, int]] = []   # max-heap by score
        stamp = 0
        fetched = 0
        tie = 0

        def fill(upto: int) -> None:
            nonlocal fetched, tie
            while heap and len(pool) < upto:
                entry = heapq.heappop(heap)
                got = self.evaluate(entry, s, used - cap)
                if got is None:
                    continue
                fetched += 1
                tie += 1
                heapq.heappush(pool, (_neg(got[0]), tie, got[1], entry, stamp))

        fill(self.k)
        while used > cap:
            chosen = None
            while pool:
                negkey, _, opt, entry, st = heapq.heappop(pool)
                if st == stamp:
                    chosen = opt
                    break
                got = self.evaluate(entry, s, used - cap)
                if got is None:
                    if len(pool) < self.k // 2:
                        fill(self.k)
                    continue
                tie += 1
                if not pool or _close_enough(got[0], pool[0][0]):
                    chosen = got[1]
                    break
                heapq.heappush(pool, (_neg(got[0]), tie, got[1], entry, stamp))
            if chosen is None:
                raise PlanningError(self.explain(s, used))
            self.apply(chosen)
            stamp += 1
            used = eng.used(s)
            if used > cap and len(pool) < self.k // 2:
                fill(self.k)
        for _, _, _, entry, _ in pool:
            heapq.heappush(heap, entry)

    def score(self, o: Option, s: int, excess: int) -> tuple[int, float]:
        """(class, value): options that expose no time first, by useful byte-seconds per link second;
        then the least exposed time per useful byte."""
        f = self.eng.f
        useful = min(f.size[o.t], excess)
        if o.stall <= 0:
            span = f.end[min(o.j, f.n - 1)] - f.start[s]
            if o.kind != "offload":      # a free recompute or an extension: no copy at all
                return (1, useful * max(span, 1e-12) / 1e-12)
            return (1, useful * max(span, 1e-12) / (o.link_time + 1e-12))
        return (0, -(o.stall + LINK_WEIGHT * o.link_time) / useful)

    def apply(self, o: Option) -> None:
        eng = self.eng
        eng.commit(o)
        if o.kind in ("extend", "advance"):
            self.stats[o.kind + "s"] = self.stats.get(o.kind + "s", 0) + 1
            if o.kind == "extend":
                self.watch(o.t, o.a, o.b)
            if o.stall > 0:
                self.stats["forced"] += 1
            return
        self.live[o.t] = None
        if o.kind == "offload" and o.b < eng.n:
            self.watch(o.t, o.a, o.b)
        if o.kind == "recompute":
            self.stats["recomputes"] += 1
            tr = eng.f.trace
            for x in tr.op_reads[o.op]:
                self.split(x, o.b)
            for y in tr.op_writes[o.op]:
                if y != o.t:
                    self.split(y, o.b)
        else:
            self.stats["drops" if o.drop else "offloads"] += 1
        if o.stall > 0:
            self.stats["forced"] += 1

    def explain(self, s: int, used: int) -> str:
        f = self.eng.f
        op = f.trace.ops[s]
        cname = f.hardware.compute_tier
        own = f.footprint[s]
        return (f"at op {op.id!r} the compute tier {cname} needs {used} bytes but holds {self.eng.cap}: the op "
                f"itself needs {own} bytes (inputs, outputs, workspace) and the other {used - own} bytes of live "
                f"tensors cannot be moved out (no link to another tier, and not recomputable)")
