"""The stage discretisation: stages, stage plans, their stream program, loads and memory.

Stages are the ops in trace order, with ``P`` prologue stages before the first op and ``P``
epilogue stages after the last (``P`` = the longest route, so that a multi-hop copy can run
before the first op or after the last), and a *gap slot* (a stage without an op) before each op
near a critical position, where a copy can run between two ops while the compute stream waits.
In a stage, the op (after any recomputes planned there)
runs on the compute stream while the stage's copies run on their link streams; the next stage
starts when all of them have ended (a barrier). A stage therefore lasts as long as its longest
stream, and the makespan is the sum of the stage durations.

Memory is counted conservatively: a tensor occupies a tier during every stage in which it is
there at any instant (a copy allocates its destination from the start of its stage; a release
takes effect from the next stage). A hop of a multi-hop route takes one stage; the hops of one
route run in consecutive stages.

A :class:`StagePlan` is the formulation-independent answer of a stage model: in which stage each
epoch's copy is written, and for each gap that leaves the compute tier, how (a copy tier or
recompute), from which stage it is absent and in which stage it comes back.

Examples
--------
>>> lay = Layout(n=3, P=1)
>>> lay.K, lay.stage(0), lay.pos(0), lay.pos(4), lay.between(-1, 3)
(5, 1, -1, 3, (0, 4))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from formulations.common import COMPUTE, Problem
from formulations.decode import Step, unique_ids

#: The ``via`` of a choice that drops the tensor and recomputes its producer.
REC = "@recompute"


@dataclass(frozen=True)
class Layout:
    """The stages of a problem, in time order.

    Attributes
    ----------
    n : int
        Number of ops.
    P : int
        Prologue and epilogue stages (each).
    slots : frozenset[int]
        Ops preceded by a *gap slot*: a stage with no op, in which copies run while the
        compute stream waits (a stall), so that a tensor can leave or come back between two ops.

    Examples
    --------
    >>> lay = Layout(n=3, P=1, slots=frozenset({2}))
    >>> lay.K, lay.op_stage, lay.pos(3), lay.is_op(3), lay.between(0, 2)
    (6, (1, 2, 4), 2, False, (2, 3))
    """

    n: int
    P: int
    slots: frozenset[int] = frozenset()
    op_stage: tuple[int, ...] = field(init=False)
    _pos: tuple[int, ...] = field(init=False, repr=False)
    _is_op: tuple[bool, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pos: list[int] = [-1] * self.P
        is_op: list[bool] = [False] * self.P
        ops: list[int] = []
        for i in range(self.n):
            if i in self.slots and i > 0:
                pos.append(i)
                is_op.append(False)
            ops.append(len(pos))
            pos.append(i)
            is_op.append(True)
        pos.extend([self.n] * self.P)
        is_op.extend([False] * self.P)
        object.__setattr__(self, "op_stage", tuple(ops))
        object.__setattr__(self, "_pos", tuple(pos))
        object.__setattr__(self, "_is_op", tuple(is_op))

    @property
    def K(self) -> int:
        """Number of stages."""
        return len(self._pos)

    def stage(self, op: int) -> int:
        """Stage of op ``op`` (``n``: one past the last stage)."""
        return self.op_stage[op] if op < self.n else self.K

    def pos(self, k: int) -> int:
        """Position of stage ``k``: -1 prologue, the op it runs or precedes, ``n`` epilogue."""
        return self._pos[k]

    def is_op(self, k: int) -> bool:
        """Whether stage ``k`` runs an op."""
        return self._is_op[k]

    def between(self, prev: int, nxt: int) -> tuple[int, int]:
        """First and last stage strictly between op ``prev`` (-1: time 0) and op ``nxt`` (``n``: the end)."""
        first = 0 if prev < 0 else self.op_stage[prev] + 1
        last = self.K - 1 if nxt >= self.n else self.op_stage[nxt] - 1
        return first, last


def stage_footprints(problem: Problem, layout: Layout) -> tuple[int, ...]:
    """No-offload compute-tier bytes per stage (a gap slot holds neither the op's outputs nor
    its workspace).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> from formulations.common import build_problem
    >>> tr = Trace("t", (Tensor(id="x", bytes=8), Tensor(id="y", bytes=2)),
    ...            (Op(id="f", duration=1.0, outputs=("x",)), Op(id="g", duration=1.0, inputs=("x",), outputs=("y",))))
    >>> p = build_problem(tr, Hardware("h", "HBM", (Tier("HBM", 100),)))
    >>> stage_footprints(p, Layout(2, 1, frozenset({1})))
    (0, 8, 8, 10, 0)
    """
    tr = problem.trace
    born = [0] * problem.n
    for t, b in enumerate(tr.birth):
        if b >= 0:
            born[b] += tr.tensors[t].bytes
    out = []
    for k in range(layout.K):
        p = layout.pos(k)
        f = problem.footprint[p + 1]
        if 0 <= p < problem.n and not layout.is_op(k):
            f -= tr.ops[p].workspace + born[p]
        out.append(int(f))
    return tuple(out)


def layout_for(problem: Problem, limit: int | None = None) -> Layout:
    """The layout of a problem.

    ``P`` is its longest route; a gap slot precedes every op that is critical or follows a
    critical op (against ``limit``, by default the compute tier's capacity).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> from formulations.common import build_problem
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> layout_for(build_problem(tr, Hardware("h", "HBM", (Tier("HBM", 100),)))).K
    3
    """
    lim = problem.cap if limit is None else limit
    fp = problem.footprint
    slots = frozenset(i for i in range(1, problem.n) if fp[i + 1] > lim or fp[i] > lim)
    return Layout(n=problem.n, P=problem.max_hops(), slots=slots)


@dataclass(frozen=True)
class Choice:
    """How one gap leaves the compute tier.

    Attributes
    ----------
    gap : int
        Index in :attr:`Problem.gaps`.
    via : str
        The copy tier it returns from (or rests in), or :data:`REC`.
    leave : int
        First stage in which the tensor is absent.
    back : int or None
        Stage of the return: the stage of the last hop of the prefetch (the tensor is present
        from it), or the stage whose compute stream recomputes it; None for a final gap.
    """

    gap: int
    via: str
    leave: int
    back: int | None


@dataclass(frozen=True)
class StagePlan:
    """A stage model's decisions.

    Attributes
    ----------
    writes : Mapping[tuple[int, str], int]
        ``(epoch, tier) -> stage`` from which the copy written for that epoch is valid (its
        last hop runs in the stage before).
    choices : tuple[Choice, ...]
        One per gap that leaves.
    """

    writes: Mapping[tuple[int, str], int] = field(default_factory=dict)
    choices: tuple[Choice, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "writes", MappingProxyType(dict(self.writes)))
        object.__setattr__(self, "choices", tuple(sorted(self.choices, key=lambda c: c.gap)))


@dataclass(frozen=True)
class StageEval:
    """Loads and memory of a stage plan.

    Attributes
    ----------
    durations : tuple[float, ...]
        Per stage: the longest stream (compute included).
    usage : tuple[int, ...]
        Per stage: compute-tier bytes (conservative count).
    tier_usage : Mapping[str, tuple[int, ...]]
        Per other tier, per stage.
    """

    durations: tuple[float, ...]
    usage: tuple[int, ...]
    tier_usage: Mapping[str, tuple[int, ...]]

    @property
    def makespan(self) -> float:
        """Sum of the stage durations."""
        return float(sum(self.durations))


def evaluate(problem: Problem, layout: Layout, plan: StagePlan) -> StageEval:
    """Stage durations and per-tier memory of ``plan`` (the stage model's own accounting).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> from formulations.common import build_problem
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> p = build_problem(tr, Hardware("h", "HBM", (Tier("HBM", 100),)))
    >>> ev = evaluate(p, layout_for(p), StagePlan())
    >>> ev.makespan, ev.usage
    (1.0, (8, 8, 0))
    """
    K = layout.K
    tr = problem.trace
    dur = [0.0] * K
    loads: dict[str, list[float]] = {}
    for i, op in enumerate(tr.ops):
        dur[layout.stage(i)] += op.duration
    usage = list(stage_footprints(problem, layout))
    tiers = [t.name for t in problem.hardware.tiers if t.name != problem.compute]
    tier_usage = {x: [0] * K for x in tiers}

    def add_load(stream: str, k: int, sec: float) -> None:
        loads.setdefault(stream, [0.0] * K)[k] += sec

    def occupy(tier: str, lo: int, hi: int, nbytes: int) -> None:
        if tier in tier_usage:
            for k in range(max(lo, 0), min(hi, K - 1) + 1):
                tier_usage[tier][k] += nbytes

    for (e, x), k in plan.writes.items():
        ep = problem.epochs[e]
        t = ep.tensor
        r = problem.route(t, problem.compute, x)
        size = tr.tensors[t].bytes
        for h in range(r.hops):
            add_load(r.streams[h], k - r.hops + h, r.seconds[h])
            if h + 1 < r.hops:
                occupy(r.tiers[h + 1], k - r.hops + h, k - r.hops + h + 1, size)
        occupy(x, k - 1, epoch_last_stage(problem, layout, e), size)
    for e, ep in enumerate(problem.epochs):
        if ep.home is not None:
            occupy(ep.home, 0, epoch_last_stage(problem, layout, e), tr.tensors[ep.tensor].bytes)
    for ch in plan.choices:
        g = problem.gaps[ch.gap]
        size = tr.tensors[g.tensor].bytes
        hi = ch.back if ch.back is not None else K
        for k in range(ch.leave, hi):
            usage[k] -= size
        if ch.back is None:
            continue
        if ch.via == REC:
            p = tr.producer[g.tensor]
            dur[ch.back] += tr.ops[p].duration
            usage[ch.back] += tr.ops[p].workspace
            continue
        r = problem.route(g.tensor, ch.via, problem.compute)
        for h in range(r.hops):
            k = ch.back - r.hops + 1 + h
            add_load(r.streams[h], k, r.seconds[h])
            if h + 1 < r.hops:
                occupy(r.tiers[h + 1], k, k + 1, size)
    for k in range(K):
        for st in loads.values():
            if st[k] > dur[k]:
                dur[k] = st[k]
    return StageEval(tuple(dur), tuple(usage), MappingProxyType({x: tuple(v) for x, v in tier_usage.items()}))


def epoch_last_stage(problem: Problem, layout: Layout, e: int) -> int:
    """Last stage in which a copy of epoch ``e`` in another tier exists (conservatively).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> from formulations.common import build_problem
    >>> p = build_problem(tr, hw)
    >>> epoch_last_stage(p, layout_for(p), 0)
    1
    """
    ep = problem.epochs[e]
    if ep.end >= problem.n:
        return layout.K - 1
    return layout.stage(ep.end)


def plan_steps(problem: Problem, layout: Layout, plan: StagePlan) -> list[Step]:
    """The planned actions of ``plan`` (barrier sync), with their data waits.

    Runs and recomputes are ranked in trace order inside a stage (recomputes first, in
    producer order, so that a recompute finds an input recomputed before it); copies keep the
    order of their routes.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> from formulations.common import build_problem
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> p = build_problem(tr, Hardware("h", "HBM", (Tier("HBM", 100),)))
    >>> [s.id for s in plan_steps(p, layout_for(p), StagePlan())]
    ['f']
    """
    tr = problem.trace
    C = problem.compute
    fresh = unique_ids([o.id for o in tr.ops])
    steps: list[Step] = []
    # compute stream per stage: recomputes then the run
    recs: dict[int, list[tuple[int, Choice]]] = {}
    for ch in plan.choices:
        if ch.via == REC and ch.back is not None:
            recs.setdefault(ch.back, []).append((tr.producer[problem.gaps[ch.gap].tensor], ch))
    last_compute: list[str | None] = [None] * layout.K   # last compute action at stages <= k
    rank = 0
    rec_id: dict[int, str] = {}
    prev: str | None = None
    for k in range(layout.K):
        for p, ch in sorted(recs.get(k, []), key=lambda x: x[0]):
            sid = fresh(f"recompute:{tr.ops[p].id}:{k}")
            steps.append(Step(sid, "recompute", op=tr.ops[p].id, stream=COMPUTE, stage=k, rank=rank,
                              key=("rec", ch.gap)))
            rec_id[ch.gap] = sid
            rank += 1
            prev = sid
        pos = layout.pos(k)
        if layout.is_op(k):
            steps.append(Step(tr.ops[pos].id, "run", op=tr.ops[pos].id, stream=COMPUTE, stage=k, rank=rank,
                              key=("run", pos)))
            rank += 1
            prev = tr.ops[pos].id
        last_compute[k] = prev
    write_first: dict[tuple[int, str], tuple[int, str]] = {}
    for (e, x), kv in sorted(plan.writes.items()):
        ep = problem.epochs[e]
        tid = tr.tensors[ep.tensor].id
        r = problem.route(ep.tensor, C, x)
        before: tuple[str, ...] = ()
        for h in range(r.hops):
            k = kv - r.hops + h
            sid = fresh(f"write:{tid}:{r.tiers[h + 1]}")
            steps.append(Step(sid, "copy", tensor=tid, src=r.tiers[h], dst=r.tiers[h + 1], free_src=h > 0,
                              stream=r.streams[h], stage=k, deps=before, rank=h, key=("write", e, x, h)))
            if h == 0:
                write_first[(e, x)] = (k, sid)
            before = (sid,)
    for ch in plan.choices:
        g = problem.gaps[ch.gap]
        tid = tr.tensors[g.tensor].id
        free_id = None
        if not g.absent:
            deps: list[str] = []
            lc = last_compute[ch.leave - 1] if ch.leave >= 1 else None
            if lc is not None:
                deps.append(lc)
            wf = write_first.get((g.epoch, ch.via))
            if wf is not None and wf[0] <= ch.leave - 1:
                deps.append(wf[1])
            if not deps:
                raise ValueError(f"tensor {tid!r} leaves {C} before anything happened")
            free_id = fresh(f"drop:{tid}:{ch.gap}")
            steps.append(Step(free_id, "free", tensor=tid, dst=C, stage=ch.leave - 1, deps=tuple(deps),
                              key=("drop", ch.gap)))
        if ch.back is None or ch.via == REC:
            continue
        r = problem.route(g.tensor, ch.via, C)
        before = ()
        for h in range(r.hops):
            k = ch.back - r.hops + 1 + h
            sid = fresh(f"fetch:{tid}:{r.tiers[h + 1]}")
            steps.append(Step(sid, "copy", tensor=tid, src=r.tiers[h], dst=r.tiers[h + 1], free_src=h > 0,
                              stream=r.streams[h], stage=k, deps=before, rank=h, key=("fetch", ch.gap, ch.via, h)))
            before = (sid,)
    return steps


def stage_times(steps: list[Step], durations: dict[str, float]) -> dict[str, tuple[float, float]]:
    """Start and end of every step under the barrier timing, for given step durations.

    Stage ``k`` starts when every action of the stages before it has ended; inside a stage each
    stream runs its steps back to back in program order. Frees take no time: they happen when
    the last action they wait for ends.

    Examples
    --------
    >>> st = [Step("a", "run", stream="compute", stage=0), Step("x", "copy", stream="L", stage=0),
    ...       Step("b", "run", stream="compute", stage=1)]
    >>> stage_times(st, {"a": 1.0, "x": 3.0, "b": 2.0})
    {'a': (0.0, 1.0), 'x': (0.0, 3.0), 'b': (3.0, 5.0)}
    """
    from formulations.decode import _order_key

    timed = sorted((s for s in steps if s.kind != "free"), key=_order_key("barrier"))
    out: dict[str, tuple[float, float]] = {}
    t0 = 0.0
    k_cur = None
    cursor: dict[str, float] = {}
    stage_end = 0.0
    for s in timed:
        if s.stage != k_cur:
            t0 = stage_end
            cursor = {}
            k_cur = s.stage
        a = cursor.get(s.stream, t0)
        z = a + durations[s.id]
        cursor[s.stream] = z
        out[s.id] = (a, z)
        stage_end = max(stage_end, z)
    for s in steps:
        if s.kind == "free":
            z = max((out[d][1] for d in s.deps if d in out), default=0.0)
            out[s.id] = (z, z)
    return out
