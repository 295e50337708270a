"""The time-indexed MILP over stages (Checkmate/POET family), built once with PuLP.

Stages are the ops in order (see :mod:`formulations.stages`). Variables are *steps* (monotone
0/1 sequences over stages), which bound better than pulses here; a pulse (the stage of a copy)
is the difference of two consecutive steps:

* ``c[e,X,k]``: the copy of epoch ``e`` in tier ``X`` is valid from stage ``k`` (its write
  runs in the stages before; one write per epoch at most, one tier per epoch);
* ``L[g,X,k]``: in gap ``g`` the tensor has left the compute tier by stage ``k`` (``L <= c``);
* ``B[g,X,k]``: its prefetch from ``X`` has reached the compute tier by stage ``k`` (``B <= L``,
  and ``B = L`` at the stage before the next use);
* ``y[g]``, ``R[g,k]``: dropped after the previous use, recomputed by stage ``k``;
* ``D[k]``: duration of stage ``k`` (at least the op plus its recomputes, and at least each
  stream's copies).

Constraint groups (each written once; the back end only changes the solver): memory of every
tier at every stage where it can overflow; link time per stage and stream; recompute inputs
valid; one way out per gap; copies before departures; prefetch after departure and before the
use. Tightening: intervals are pruned to those covering a critical stage, a departure may only
start at the first critical stage it covers (dominance: leaving earlier saves nothing), a
prefetch may only end after it (otherwise the departure is useless), a departure happens as soon
as the copy exists (dominance cut), cover cuts (at least ``m_k`` tensors must be out at a
critical stage ``k``, ``m_k`` from the largest sizes).

Objectives: ``makespan`` (sum of stage durations), ``min-memory`` (smallest compute-tier
capacity with makespan at most ``(1 + max_overhead)`` times the compute time), ``min-bytes``
(fewest bytes copied with makespan at most a target).

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> from formulations.common import build_problem
>>> tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
...            (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, outputs=("b",)),
...             Op(id="h", duration=1.0, inputs=("b",)), Op(id="i", duration=1.0, inputs=("a",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 5), Tier("DDR", 100)),
...               (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0)))
>>> res = solve_stage_milp(build_problem(tr, hw), MilpOptions())
>>> res.status, res.objective
('optimal', 5.0)
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from solver.deadline import Deadline, OutOfTime, Poll

from formulations.backends import SolverOutcome, solve_pulp, write_model
from formulations.common import Problem
from formulations.stages import REC, Choice, Layout, StagePlan, evaluate, layout_for, stage_footprints

OBJECTIVES = ("makespan", "min-memory", "min-bytes")

#: Steps of the model's build (options, stages, ranges) between two readings of the clock.
BUILD_POLL_EVERY = 64


@dataclass(frozen=True)
class MilpOptions:
    """Options of the stage MILP.

    Parameters
    ----------
    backend : str
        ``highs`` (default), ``cbc``, or any PuLP solver name.
    objective : str
        One of :data:`OBJECTIVES`.
    max_overhead : float or None
        ``min-memory``: makespan at most ``(1 + max_overhead) * compute_time`` (default 0.05).
    makespan : float or None
        ``min-bytes``: makespan limit in seconds (default: ``(1 + max_overhead) * compute_time``).
    relax : bool
        Solve the LP relaxation only.
    time_limit : float or None
        Seconds for the whole solve, building the model included.
    threads : int or None
    write_model : str or None
        Export the model (``.mps`` / ``.lp``) before solving.
    cuts : bool
        Add the cover cuts.
    msg : bool
        Show the solver log.
    soft_limit : float or None
        HiGHS only: seconds after which the solve stops at its next poll of the interrupt callback
        (between steps of its own search), with its best plan; ``time_limit`` stays the hard
        limit. HiGHS does not poll inside the sub-MIPs of its primal heuristics, which it sizes
        by the time left before ``time_limit``, so one started before ``soft_limit`` runs to its
        end instead of being cut short.
    deadline : Deadline or None
        When the solve must be over, whatever ``time_limit`` says (the sooner counts). The build
        polls it: a model that cannot be built in time gives status ``timeout`` without a plan.
    """

    backend: str = "highs"
    objective: str = "makespan"
    max_overhead: float | None = None
    makespan: float | None = None
    relax: bool = False
    time_limit: float | None = None
    threads: int | None = None
    write_model: str | None = None
    cuts: bool = True
    msg: bool = False
    soft_limit: float | None = None
    deadline: Deadline | None = None


@dataclass(frozen=True)
class MilpResult:
    """The stage MILP's answer.

    Attributes
    ----------
    status : str
        Back-end status (see :mod:`formulations.backends`); ``infeasible`` means the stage
        model has no solution.
    plan : StagePlan or None
        Decoded decisions.
    objective, bound : float or None
        In seconds (makespan), bytes (min-memory, min-bytes).
    capacity : int or None
        ``min-memory``: the compute-tier capacity chosen.
    stats : Mapping
        Model size and solver details.
    """

    status: str
    plan: StagePlan | None
    objective: float | None
    bound: float | None
    capacity: int | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# index sets

@dataclass(frozen=True)
class _Opt:
    """One way out of one gap: ``via`` a tier (copy) or :data:`REC`, with its step ranges."""

    gap: int
    via: str
    L: tuple[int, int] | None      # stages with a departure variable (None: constant)
    L_const: int                   # value of L over the absent-capable range when L is None
    absent: tuple[int, int]        # stages where the tensor may be absent
    B: tuple[int, int] | None      # return-step range (last hop stage / recompute stage)
    hops_back: int


class _Index:
    """Variable index sets of one problem (private helper; built once per model)."""

    def __init__(self, problem: Problem, layout: Layout, crit_stage: list[bool]) -> None:
        self.problem, self.layout = problem, layout
        tr = problem.trace
        C = problem.compute
        lay = layout
        self.opts: list[_Opt] = []
        self.c_range: dict[tuple[int, str], tuple[int, int]] = {}
        c_lo: dict[tuple[int, str], int] = {}
        c_need: dict[tuple[int, str], int] = defaultdict(lambda: -1)
        # earliest stage a write may make a copy valid
        for e, ep in enumerate(problem.epochs):
            if ep.home is not None:
                continue
            w0 = 0 if ep.start < 0 else lay.stage(ep.start) + 1
            for x in ep.tiers:
                c_lo[(e, x)] = w0 + problem.route(ep.tensor, C, x).hops
        for gi, g in enumerate(problem.gaps):
            if not g.useful and not (g.final and problem.epochs[g.epoch].final not in (None, C)):
                continue
            ep = problem.epochs[g.epoch]
            S_lo, S_hi = lay.between(g.prev, g.next)
            if S_hi < S_lo:
                continue
            if g.final and ep.final == C:
                continue
            for x in ep.tiers:
                home = ep.home == x
                if not g.final:
                    if (g.tensor, x, C) not in problem.routes:
                        continue
                    hb = problem.route(g.tensor, x, C).hops
                else:
                    hb = 0
                if g.absent:
                    b_lo = max(S_lo + hb - 1, 0)
                    if b_lo > S_hi:
                        continue
                    self.opts.append(_Opt(gi, x, None, 1, (S_lo, S_hi), (b_lo, S_hi), hb))
                    continue
                cap_hi = S_hi if g.final else S_hi - 1
                earliest = S_lo if home else max(S_lo, c_lo[(g.epoch, x)])
                crit = [k for k in range(earliest, cap_hi + 1) if crit_stage[k]]
                if not crit:
                    continue
                Lo, Hi = crit[0], crit[-1]
                B = None
                if not g.final:
                    b_lo = max(Lo + 1, hb - 1)
                    if b_lo > S_hi:
                        continue
                    B = (b_lo, S_hi)
                    if hb > 1 and not home:
                        c_need[(g.epoch, x)] = max(c_need[(g.epoch, x)], S_hi - hb + 1)
                if not home:
                    c_need[(g.epoch, x)] = max(c_need[(g.epoch, x)], Hi)
                self.opts.append(_Opt(gi, x, (Lo, Hi), 0, (S_lo, S_hi if g.final else S_hi - 1), B, hb))
            if g.recomputable and not g.final and not g.absent:
                Ri = lay.stage(g.rec_last)
                crit = [k for k in range(S_lo, Ri) if crit_stage[k]]
                if crit:
                    self.opts.append(_Opt(gi, REC, None, 0, (S_lo, Ri - 1), (crit[0] + 1, Ri), 0))
        for e, ep in enumerate(problem.epochs):
            if ep.home is not None:
                continue
            for x in ep.tiers:
                key = (e, x)
                need = c_need.get(key, -1)
                if ep.final == x:
                    need = lay.K
                if need < 0:
                    continue
                hi = lay.K if ep.end >= problem.n else lay.stage(ep.end)
                hi = min(hi, need) if ep.final != x else hi
                if c_lo[key] > hi:
                    continue
                self.c_range[key] = (c_lo[key], hi)
        # drop copy options whose epoch copy cannot exist in time
        keep = []
        for o in self.opts:
            ep = problem.epochs[problem.gaps[o.gap].epoch]
            if o.via != REC and ep.home != o.via and (problem.gaps[o.gap].epoch, o.via) not in self.c_range:
                continue
            keep.append(o)
        self.opts = keep
        self.by_gap: dict[int, list[_Opt]] = defaultdict(list)
        for o in self.opts:
            self.by_gap[o.gap].append(o)
        del tr


# ------------------------------------------------------------------------------------------------
# model

@dataclass(frozen=True)
class StageModel:
    """A built PuLP model with its variable maps (see :func:`build_stage_milp`)."""

    problem: Problem
    layout: Layout
    prob: Any
    index: Any
    c: Mapping[tuple[int, str, int], Any]
    L: Mapping[tuple[int, str, int], Any]
    B: Mapping[tuple[int, str, int], Any]
    y: Mapping[int, Any]
    D: Mapping[int, Any]
    cap_var: Any
    unit: float
    bscale: float
    infeasible_at: int | None
    options: MilpOptions
    build_s: float


def build_stage_milp(problem: Problem, opts: MilpOptions) -> StageModel:
    """Build the stage MILP of ``problem`` (no solve).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> from formulations.common import build_problem
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> m = build_stage_milp(build_problem(tr, Hardware("h", "HBM", (Tier("HBM", 100),))), MilpOptions())
    >>> len(m.prob.variables())
    0
    """
    import pulp

    t0 = time.perf_counter()
    if opts.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {opts.objective!r}; expected one of {', '.join(OBJECTIVES)}")
    tr = problem.trace
    C = problem.compute
    min_mem = opts.objective == "min-memory"
    limit = problem.lower_cap if min_mem else problem.cap
    lay = layout_for(problem, limit)
    K = lay.K
    fp = list(stage_footprints(problem, lay))
    crit_stage = [fp[k] > limit for k in range(K)]
    idx = _Index(problem, lay, crit_stage)
    cat = "Continuous" if opts.relax else "Binary"
    prob = pulp.LpProblem("tierplan_stage", pulp.LpMinimize)
    V = pulp.LpVariable
    # numerical scaling: times in units of the mean op duration, bytes in units of the capacity
    # (for min-memory, of the largest stage footprint: the capacity may be orders of magnitude
    # larger than anything the model counts, and the solver's tolerances would swallow tensors)
    unit = max(tr.compute_time / max(len(tr.ops), 1), 1e-12)
    bscale = float(max(max(fp, default=1), 1)) if min_mem else float(max(problem.cap, 1))

    # ---- variables ---------------------------------------------------------------------------
    tick = Poll(opts.deadline, BUILD_POLL_EVERY)
    c: dict[tuple[int, str, int], Any] = {}
    for (e, x), (lo, hi) in idx.c_range.items():
        tick()
        for k in range(lo, hi + 1):
            c[(e, x, k)] = V(f"c_{e}_{x}_{k}", 0, 1, cat)
        for k in range(lo, hi):
            prob += c[(e, x, k)] <= c[(e, x, k + 1)], f"cmono_{e}_{x}_{k}"
    L: dict[tuple[int, str, int], Any] = {}
    B: dict[tuple[int, str, int], Any] = {}
    y: dict[int, Any] = {}
    for o in idx.opts:
        tick()
        g = problem.gaps[o.gap]
        if o.via == REC:
            y[o.gap] = V(f"y_{o.gap}", 0, 1, cat)
        elif o.L is not None:
            for k in range(o.L[0], o.L[1] + 1):
                L[(o.gap, o.via, k)] = V(f"L_{o.gap}_{o.via}_{k}", 0, 1, cat)
            for k in range(o.L[0], o.L[1]):
                prob += L[(o.gap, o.via, k)] <= L[(o.gap, o.via, k + 1)], f"Lmono_{o.gap}_{o.via}_{k}"
        if o.B is not None:
            for k in range(o.B[0], o.B[1] + 1):
                B[(o.gap, o.via, k)] = V(f"B_{o.gap}_{o.via}_{k}", 0, 1, cat)
            for k in range(o.B[0], o.B[1]):
                prob += B[(o.gap, o.via, k)] <= B[(o.gap, o.via, k + 1)], f"Bmono_{o.gap}_{o.via}_{k}"
        del g

    def c_val(e: int, x: str, k: int) -> Any:
        ep = problem.epochs[e]
        if ep.home == x:
            return 1
        rng = idx.c_range.get((e, x))
        if rng is None or k < rng[0]:
            return 0
        return c[(e, x, min(k, rng[1]))]

    def L_val(o: _Opt, k: int) -> Any:
        """Departed by stage k (over the absent-capable range)."""
        if o.via == REC:
            return y[o.gap] if o.absent[0] <= k else 0
        if o.L is None:
            return o.L_const if o.absent[0] <= k else 0
        if k < o.L[0]:
            return 0
        return L[(o.gap, o.via, min(k, o.L[1]))]

    def B_val(o: _Opt, k: int) -> Any:
        if o.B is None or k < o.B[0]:
            return 0
        return B[(o.gap, o.via, min(k, o.B[1]))]

    def last_L(o: _Opt) -> Any:
        if o.via == REC:
            return y[o.gap]
        if o.L is None:
            return o.L_const
        return L[(o.gap, o.via, o.L[1])]

    def absent(o: _Opt, k: int) -> Any:
        """Absent from the compute tier during stage k (memory)."""
        if not (o.absent[0] <= k <= (o.absent[1] if o.B is None else o.B[1])):
            return 0
        return L_val(o, k) - B_val(o, k)

    def invalid(o: _Opt, k: int) -> Any:
        """Not valid in the compute tier at the start of stage k's compute (recompute inputs)."""
        if not (o.absent[0] <= k <= (o.absent[1] if o.B is None else o.B[1] + 1)):
            return 0
        if o.via == REC:
            return L_val(o, k) - B_val(o, k)
        return L_val(o, k) - B_val(o, k - 1)

    # ---- gap constraints ---------------------------------------------------------------------
    for gi, olist in idx.by_gap.items():
        tick()
        g = problem.gaps[gi]
        ep = problem.epochs[g.epoch]
        if not g.absent:
            outs = [last_L(o) for o in olist]
            if len(outs) > 1:
                prob += pulp.lpSum(outs) <= 1, f"oneway_{gi}"
        for o in olist:
            if o.via == REC:
                prob += B[(gi, REC, o.B[1])] == y[gi], f"recback_{gi}"
                continue
            home = ep.home == o.via
            if o.L is not None and not home:
                for k in range(o.L[0], o.L[1] + 1):
                    cv = c_val(g.epoch, o.via, k)
                    prob += L[(gi, o.via, k)] <= cv, f"Lc_{gi}_{o.via}_{k}"
                    if k < o.L[1] and not isinstance(cv, int):
                        prob += L[(gi, o.via, k)] >= cv + L[(gi, o.via, o.L[1])] - 1, f"Ldom_{gi}_{o.via}_{k}"
            elif o.L is not None and home:
                # a clean copy already exists: depart exactly at the first critical stage
                for k in range(o.L[0], o.L[1]):
                    prob += L[(gi, o.via, k)] == L[(gi, o.via, o.L[1])], f"Lhome_{gi}_{o.via}_{k}"
            if o.B is not None:
                for k in range(o.B[0], o.B[1] + 1):
                    prob += B[(gi, o.via, k)] <= L_val(o, k), f"BL_{gi}_{o.via}_{k}"
                    if o.hops_back > 1 and not home:
                        prob += B[(gi, o.via, k)] <= c_val(g.epoch, o.via, k - o.hops_back + 1), \
                            f"Bc_{gi}_{o.via}_{k}"
                prob += B[(gi, o.via, o.B[1])] == last_L(o), f"back_{gi}_{o.via}"
    # a write reads a valid copy in the compute tier
    opts_of_epoch: dict[int, list[_Opt]] = defaultdict(list)
    for o in idx.opts:
        opts_of_epoch[problem.gaps[o.gap].epoch].append(o)
    for (e, x), (lo, hi) in idx.c_range.items():
        tick()
        hw_ = problem.route(problem.epochs[e].tensor, C, x).hops
        for j in range(lo, hi + 1):
            k = j - hw_
            bad = [L_val(o, k) - B_val(o, k - 1) for o in opts_of_epoch.get(e, ())
                   if o.absent[0] <= k <= (o.absent[1] if o.B is None else o.B[1])]
            bad = [b for b in bad if not (isinstance(b, int) and b == 0)]
            if bad:
                pulse = c[(e, x, j)] - (c[(e, x, j - 1)] if j > lo else 0)
                prob += pulse + pulp.lpSum(bad) <= 1, f"wsrc_{e}_{x}_{j}"
    # one tier per epoch, final copies
    for e, ep in enumerate(problem.epochs):
        if ep.home is not None:
            continue
        ends = [c[(e, x, idx.c_range[(e, x)][1])] for x in ep.tiers if (e, x) in idx.c_range]
        if len(ends) > 1:
            prob += pulp.lpSum(ends) <= 1, f"onetier_{e}"
        if ep.final is not None and ep.final != C:
            key = (e, ep.final)
            if key not in idx.c_range:
                return _dead_model(problem, lay, prob, idx, unit, opts, t0, -1)
            prob += c[(e, ep.final, idx.c_range[key][1])] == 1, f"final_{e}"

    # ---- recompute inputs valid --------------------------------------------------------------
    rec_events: dict[int, list[tuple[_Opt, Any]]] = defaultdict(list)   # stage -> (opt, pulse)
    opts_of_tensor: dict[int, list[_Opt]] = defaultdict(list)
    for o in idx.opts:
        opts_of_tensor[problem.gaps[o.gap].tensor].append(o)
    for o in idx.opts:
        tick()
        if o.via != REC:
            continue
        g = problem.gaps[o.gap]
        p = tr.producer[g.tensor]
        for k in range(o.B[0], o.B[1] + 1):
            pulse = B[(o.gap, REC, k)] - (B[(o.gap, REC, k - 1)] if k > o.B[0] else 0)
            rec_events[k].append((o, pulse))
            for j in tr.op_reads[p]:
                bad = [invalid(oj, k) for oj in opts_of_tensor.get(j, ())
                       if _covers(problem, oj, k)]
                bad = [b for b in bad if not isinstance(b, int) or b]
                if bad:
                    prob += pulse <= 1 - pulp.lpSum(bad), f"recin_{o.gap}_{k}_{j}"

    # ---- memory of the compute tier ----------------------------------------------------------
    cap_var = None
    if min_mem:
        cap_var = V("capacity", problem.lower_cap / bscale, problem.cap / bscale, "Continuous")
    absent_at: dict[int, list[tuple[int, Any]]] = defaultdict(list)   # stage -> (bytes, expr)
    for o in idx.opts:
        tick()
        size = tr.tensors[problem.gaps[o.gap].tensor].bytes
        hi = o.absent[1] if o.B is None else o.B[1]
        for k in range(o.absent[0], hi + 1):
            a = absent(o, k)
            if isinstance(a, int) and a == 0:
                continue
            absent_at[k].append((size, a))
    infeasible_at = None
    n_mem = 0
    for k in range(K):
        tick()
        ws_terms = [(tr.ops[tr.producer[problem.gaps[o.gap].tensor]].workspace, pulse)
                    for o, pulse in rec_events.get(k, ())]
        ws_terms = [(w, p) for w, p in ws_terms if w > 0]
        ws_max = sum(w for w, _ in ws_terms)
        if not min_mem and fp[k] + ws_max <= problem.cap:
            continue
        if min_mem and fp[k] + ws_max <= problem.lower_cap:
            continue
        freed = pulp.lpSum((s / bscale) * a for s, a in absent_at.get(k, ()))
        extra = pulp.lpSum((w / bscale) * p for w, p in ws_terms)
        rhs = cap_var if min_mem else problem.cap / bscale
        if not min_mem:
            most = sum(s for s, _ in absent_at.get(k, ()))
            if fp[k] - most > problem.cap:
                infeasible_at = k
                break
        prob += fp[k] / bscale - freed + extra <= rhs, f"mem_{k}"
        n_mem += 1
        if opts.cuts and not min_mem and fp[k] > problem.cap:
            sizes = sorted((s for s, _ in absent_at.get(k, ())), reverse=True)
            need, acc, m = fp[k] - problem.cap, 0, 0
            for s in sizes:
                if acc >= need:
                    break
                acc += s
                m += 1
            if m > 1:
                prob += pulp.lpSum(a for _, a in absent_at[k]) >= m, f"cover_{k}"
    if infeasible_at is not None:
        return _dead_model(problem, lay, prob, idx, unit, opts, t0, infeasible_at)

    # ---- memory of the other tiers -----------------------------------------------------------
    _tier_capacity(problem, lay, idx, prob, c_val, B, opts)

    # ---- stage durations ---------------------------------------------------------------------
    loads: dict[tuple[int, str], list[tuple[float, Any]]] = defaultdict(list)
    for (e, x), (lo, hi) in idx.c_range.items():
        tick()
        ep = problem.epochs[e]
        r = problem.route(ep.tensor, C, x)
        for k in range(lo, hi + 1):
            pulse = c[(e, x, k)] - (c[(e, x, k - 1)] if k > lo else 0)
            for h in range(r.hops):
                loads[(k - r.hops + h, r.streams[h])].append((r.seconds[h], pulse))
    for o in idx.opts:
        if o.via == REC or o.B is None:
            continue
        r = problem.route(problem.gaps[o.gap].tensor, o.via, C)
        for k in range(o.B[0], o.B[1] + 1):
            pulse = B[(o.gap, o.via, k)] - (B[(o.gap, o.via, k - 1)] if k > o.B[0] else 0)
            for h in range(r.hops):
                loads[(k - r.hops + 1 + h, r.streams[h])].append((r.seconds[h], pulse))
    op_time = [0.0] * K
    for i, op in enumerate(tr.ops):
        op_time[lay.stage(i)] = op.duration / unit
    D: dict[int, Any] = {}
    stream_at: dict[int, list[str]] = defaultdict(list)
    for (k, s) in loads:
        stream_at[k].append(s)
    total: list[Any] = []
    for k in range(K):
        tick()
        comp = [(tr.ops[tr.producer[problem.gaps[o.gap].tensor]].duration / unit, pulse)
                for o, pulse in rec_events.get(k, ())]
        if not comp and not stream_at.get(k):
            total.append(op_time[k])
            continue
        D[k] = V(f"D_{k}", op_time[k], None, "Continuous")
        if comp:
            prob += D[k] >= op_time[k] + pulp.lpSum(d * p for d, p in comp), f"dcomp_{k}"
        for s in stream_at.get(k, ()):
            prob += D[k] >= pulp.lpSum((sec / unit) * p for sec, p in loads[(k, s)]), f"dlink_{k}_{s}"
        total.append(D[k])
    makespan = pulp.lpSum(total)
    if opts.objective == "makespan":
        prob += makespan
    elif opts.objective == "min-memory":
        ov = 0.05 if opts.max_overhead is None else opts.max_overhead
        prob += makespan <= (1.0 + ov) * tr.compute_time / unit, "overhead"
        prob += cap_var
    else:
        ov = 0.05 if opts.max_overhead is None else opts.max_overhead
        target = opts.makespan if opts.makespan is not None else (1.0 + ov) * tr.compute_time
        prob += makespan <= target / unit, "makespan_limit"
        moved = []
        for (e, x), (lo, hi) in idx.c_range.items():
            ep = problem.epochs[e]
            nb = tr.tensors[ep.tensor].bytes * problem.route(ep.tensor, C, x).hops
            moved.append(nb * c[(e, x, hi)])
        for o in idx.opts:
            if o.via == REC or o.B is None:
                continue
            nb = tr.tensors[problem.gaps[o.gap].tensor].bytes * o.hops_back
            moved.append(nb * B[(o.gap, o.via, o.B[1])])
        scale = max((t.bytes for t in tr.tensors), default=1)
        prob += (1.0 / scale) * pulp.lpSum(moved)
    return StageModel(problem, lay, prob, idx, c, L, B, y, D, cap_var, unit, bscale, None, opts,
                      time.perf_counter() - t0)


def _covers(problem: Problem, o: _Opt, k: int) -> bool:
    hi = o.absent[1] if o.B is None else o.B[1] + 1
    return o.absent[0] <= k <= hi


def _dead_model(problem: Problem, lay: Layout, prob: Any, idx: _Index, unit: float, opts: MilpOptions,
                t0: float, at: int) -> StageModel:
    return StageModel(problem, lay, prob, idx, {}, {}, {}, {}, {}, None, unit, float(max(problem.cap, 1)), at, opts,
                      time.perf_counter() - t0)


def _tier_capacity(problem: Problem, lay: Layout, idx: _Index, prob: Any, c_val: Any, B: Any,
                   opts: MilpOptions) -> None:
    """Capacity of every non-compute tier, where the copies that may sit there could overflow it."""
    import pulp

    tr = problem.trace
    C = problem.compute
    K = lay.K
    for tier in problem.hardware.tiers:
        X = tier.name
        if X == C:
            continue
        cap = problem.capacity[X]
        terms: dict[int, list[tuple[int, Any]]] = defaultdict(list)
        # copies kept for their epoch
        for e, ep in enumerate(problem.epochs):
            size = tr.tensors[ep.tensor].bytes
            last = K - 1 if ep.end >= problem.n else lay.stage(ep.end)
            if ep.home == X:
                for k in range(0, last + 1):
                    terms[k].append((size, 1))
                continue
            if (e, X) in idx.c_range:
                lo, _ = idx.c_range[(e, X)]
                for k in range(lo - 1, last + 1):
                    terms[k].append((size, c_val(e, X, k + 1)))
            # staging through X on a multi-hop write
            for x2 in ep.tiers:
                if (e, x2) not in idx.c_range:
                    continue
                r = problem.route(ep.tensor, C, x2)
                if X not in r.tiers[1:-1]:
                    continue
                h = r.tiers.index(X) - 1   # hop that brings it to X
                lo, hi = idx.c_range[(e, x2)]
                for kj in range(lo, hi + 1):
                    pulse = c_val(e, x2, kj) - c_val(e, x2, kj - 1)
                    for k in (kj - r.hops + h, kj - r.hops + h + 1):
                        terms[k].append((size, pulse))
        for o in idx.opts:
            if o.via == REC or o.B is None:
                continue
            r = problem.route(problem.gaps[o.gap].tensor, o.via, C)
            if X not in r.tiers[1:-1]:
                continue
            size = tr.tensors[problem.gaps[o.gap].tensor].bytes
            h = r.tiers.index(X) - 1
            for kf in range(o.B[0], o.B[1] + 1):
                pulse = B[(o.gap, o.via, kf)] - (B[(o.gap, o.via, kf - 1)] if kf > o.B[0] else 0)
                for k in (kf - r.hops + 1 + h, kf - r.hops + 2 + h):
                    terms[k].append((size, pulse))
        for k, lst in terms.items():
            if not 0 <= k < K:
                continue
            if sum(s for s, _ in lst) <= cap:
                continue
            if cap <= 0:
                cap = 1
            prob += pulp.lpSum((s / cap) * v for s, v in lst) <= 1, f"tier_{X}_{k}"
    del opts


# ------------------------------------------------------------------------------------------------
# start values, solve, decode

def start_values(model: StageModel, plan: StagePlan) -> dict[str, float]:
    """Variable values (by name) of ``plan`` in ``model``, for a MIP start (best effort).

    Choices that do not fit the model's pruned ranges are left out (the gap stays resident).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> from formulations.common import build_problem
    >>> m = build_stage_milp(build_problem(tr, hw), MilpOptions())
    >>> start_values(m, StagePlan())
    {}
    """
    lay = model.layout
    vals: dict[str, float] = {}
    problem = model.problem
    for (e, x, k), v in model.c.items():
        jump = plan.writes.get((e, x))
        vals[v.name] = 1.0 if jump is not None and k >= jump else 0.0
    chosen = {ch.gap: ch for ch in plan.choices}
    for o in model.index.opts:
        ch = chosen.get(o.gap)
        hit = ch is not None and ch.via == o.via
        if o.via == REC:
            vals[model.y[o.gap].name] = 1.0 if hit else 0.0
        if o.L is not None:
            for k in range(o.L[0], o.L[1] + 1):
                vals[model.L[(o.gap, o.via, k)].name] = 1.0 if hit and k >= ch.leave else 0.0
        if o.B is not None:
            for k in range(o.B[0], o.B[1] + 1):
                on = hit and (ch.back is not None and k >= ch.back or o.L is None and not hit)
                vals[model.B[(o.gap, o.via, k)].name] = 1.0 if on else 0.0
    ev = evaluate(problem, lay, plan)
    for k, v in model.D.items():
        vals[v.name] = ev.durations[k] / model.unit
    if model.cap_var is not None:
        vals[model.cap_var.name] = float(max(ev.usage)) / model.bscale
    return vals


def extract_plan(model: StageModel, values: Mapping[str, float]) -> StagePlan:
    """The :class:`StagePlan` of a solution (values rounded to 0/1).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> from formulations.common import build_problem
    >>> extract_plan(build_stage_milp(build_problem(tr, hw), MilpOptions()), {}).choices
    ()
    """
    problem = model.problem

    def on(v: Any) -> bool:
        return values.get(v.name, 0.0) > 0.5

    writes: dict[tuple[int, str], int] = {}
    for (e, x), (lo, hi) in model.index.c_range.items():
        for k in range(lo, hi + 1):
            if on(model.c[(e, x, k)]):
                writes[(e, x)] = k
                break
    choices: list[Choice] = []
    for o in model.index.opts:
        g = problem.gaps[o.gap]
        if o.via == REC:
            if not on(model.y[o.gap]):
                continue
            back = next(k for k in range(o.B[0], o.B[1] + 1) if on(model.B[(o.gap, REC, k)]))
            choices.append(Choice(o.gap, REC, o.absent[0], back))
            continue
        if o.L is None:
            leave = o.absent[0]
        else:
            if not on(model.L[(o.gap, o.via, o.L[1])]):
                continue
            leave = next(k for k in range(o.L[0], o.L[1] + 1) if on(model.L[(o.gap, o.via, k)]))
        back = None
        if o.B is not None:
            back = next(k for k in range(o.B[0], o.B[1] + 1) if on(model.B[(o.gap, o.via, k)]))
        del g
        choices.append(Choice(o.gap, o.via, leave, back))
    return StagePlan(writes, tuple(choices))


def solve_stage_milp(problem: Problem, opts: MilpOptions, start: StagePlan | None = None) -> MilpResult:
    """Build, solve and decode the stage MILP.

    Parameters
    ----------
    problem : Problem
    opts : MilpOptions
    start : StagePlan, optional
        A MIP start (the warm start mapped into stages).

    Returns
    -------
    MilpResult
        Objective and bound in seconds for ``makespan``; bytes otherwise.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> from formulations.common import build_problem
    >>> solve_stage_milp(build_problem(tr, hw), MilpOptions()).status
    'optimal'
    >>> solve_stage_milp(build_problem(tr, hw), MilpOptions(deadline=Deadline(0.0, clock=lambda: 1.0))).status
    'timeout'
    """
    t0 = time.perf_counter()
    until = opts.deadline
    if opts.time_limit is not None:
        until = Deadline.after(opts.time_limit, clock=until.clock if until is not None else time.perf_counter
                               ).sooner(until)
    try:
        if until is not None:
            until.check("the stage MILP's build")
        model = build_stage_milp(problem, replace(opts, deadline=until))
    except OutOfTime:
        why = "the time limit passed before the stage MILP was built"
        if opts.write_model:
            why += f" (the model was not written to {opts.write_model})"
        return MilpResult("timeout", None, None, None,
                          stats={"build_s": round(time.perf_counter() - t0, 3), "built": False, "message": why})
    stats: dict[str, Any] = {"build_s": round(model.build_s, 3)}
    if model.infeasible_at is not None:
        k = model.infeasible_at
        pos = model.layout.pos(k)
        where = "the prologue" if pos < 0 else ("the epilogue" if pos >= problem.n
                                                 else f"op {problem.trace.ops[pos].id!r}")
        msg = (f"the stage model cannot fit {where}: even with every candidate tensor out, "
               f"{problem.compute} would hold more than {problem.cap} bytes")
        return MilpResult("infeasible", None, None, None, stats={**stats, "message": msg})
    prob = model.prob
    stats.update(variables=len(prob.variables()), constraints=prob.numConstraints(),
                 stages=model.layout.K, options=len(model.index.opts))
    if opts.write_model:
        write_model(prob, opts.write_model)
    if not prob.variables():
        plan = StagePlan()
        ev = evaluate(problem, model.layout, plan)
        return MilpResult("optimal", plan, ev.makespan, ev.makespan, None, stats)
    sv = start_values(model, start) if start is not None and not opts.relax else None
    on_bound = None
    if opts.soft_limit is not None and opts.backend == "highs" and not opts.relax:
        soft_at = t0 + opts.soft_limit

        def on_bound(_bound: float) -> bool:
            return time.perf_counter() >= soft_at
    out: SolverOutcome = solve_pulp(prob, opts.backend, threads=opts.threads, start=sv, deadline=until,
                                    msg=opts.msg, mip=not opts.relax, on_bound=on_bound)
    stats.update(solver=out.detail, solve_s=round(out.wall_s, 3))
    scale = _objective_scale(model)
    bound = out.bound * scale if out.bound is not None else None
    if not out.has_solution:
        return MilpResult(out.status, None, None, bound, stats=stats)
    if opts.relax:
        return MilpResult(out.status, None, out.objective * scale, bound, stats=stats)
    plan = extract_plan(model, out.values)
    cap = None
    if model.cap_var is not None:
        # the plan's own stage usage (exact integers), not the solver's capacity variable, which
        # may sit below it by the solver's feasibility tolerance
        cap = int(max(evaluate(problem, model.layout, plan).usage, default=0))
        stats["capacity_var"] = out.values.get(model.cap_var.name, 0.0) * model.bscale
    return MilpResult(out.status, plan, out.objective * scale, bound, cap, stats)


def _objective_scale(model: StageModel) -> float:
    o = model.options.objective
    if o == "makespan":
        return model.unit
    if o == "min-memory":
        return model.bscale
    return float(max((t.bytes for t in model.problem.trace.tensors), default=1))
