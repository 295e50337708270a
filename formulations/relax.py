"""A lower bound on the makespan of *every* valid schedule: the window LP relaxation.

The stage MILP and the CP-SAT model search restricted spaces (their policies), so their own
bounds speak for those spaces only. This LP relaxes the timing model itself, so its optimum is a
lower bound for any planner (``tierplan bound``). Let ``tau_i`` be the start of op ``i`` in any
valid schedule; cut time into windows ``W_0 = [0, tau_0)``, ``W_{i+1} = [tau_i, tau_{i+1})``,
the last op's window up to its end, and the epilogue. Then:

* each window lasts at least its op's duration plus the recomputes run in it, and at least the
  copy time each stream spends in it (a copy that spans windows is split pro rata);
* at ``tau_i`` the compute tier holds op ``i``'s inputs, outputs and workspace plus every other
  live tensor that is not absent: ``a[g, i]`` is the fraction of a tensor absent at ``tau_i``
  in its gap ``g``;
* being absent at ``tau_i`` requires a copy of the tensor's current version elsewhere (its
  initial copy, or a write out of the compute tier finished before ``tau_i``) or a recompute of
  its producer after ``tau_i``; and, when a use follows, a return after ``tau_i`` and before
  that use (a copy in, or a recompute);
* tensors that start elsewhere must be copied in before their first use; persistent tensors
  whose final tier holds a stale copy must be written there after their last update.
* one copy may serve several of these needs, so each copy is one variable, never charged twice:
  the fetch of a tensor that starts elsewhere also ends its absences before its first use, and a
  copy out of the last version of a persistent tensor is both an eviction and its write-back.

Copies of multi-hop routes are charged on their compute-tier hop only, a recompute of an op
restores all its outputs at once, and nothing else about the inputs of recomputes is assumed,
so every valid schedule maps to a feasible LP point with no larger objective. An infeasible LP
proves that no schedule fits.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
...            (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, outputs=("b",)),
...             Op(id="h", duration=1.0, inputs=("b",)), Op(id="i", duration=1.0, inputs=("a",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 5), Tier("DDR", 100)),
...               (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0)))
>>> res = window_bound(tr, hw)
>>> res.status, round(res.value, 6)
('bound', 4.0)
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from solver.model import AT_START, Hardware, Trace

from formulations.backends import solve_pulp
from formulations.common import footprints, op_requirement
from solver.plans import route


@dataclass(frozen=True)
class BoundResult:
    """The relaxation's answer.

    Attributes
    ----------
    status : str
        ``bound`` (``value`` is a lower bound on the makespan of every valid schedule),
        ``infeasible`` (no schedule fits), or ``error``/``timeout``/``skipped`` (too large for
        ``max_absence``); ``value`` is then the compute time, still a valid bound.
    value : float
        The bound, seconds.
    message : str
    stats : Mapping
    """

    status: str
    value: float
    message: str = ""
    stats: Mapping[str, Any] = field(default_factory=dict)


def window_bound(trace: Trace, hardware: Hardware, *, recompute: bool = True, time_limit: float | None = None,
                 backend: str = "highs", max_absence: int | None = None) -> BoundResult:
    """Solve the window LP relaxation (see the module docstring).

    Parameters
    ----------
    trace, hardware : Trace, Hardware
        Capacities in force already applied to ``hardware``.
    recompute : bool
        Whether schedules may recompute (False removes that way back, raising the bound).
    time_limit : float, optional
    backend : str
        An LP back end PuLP drives (``highs`` by default).
    max_absence : int, optional
        Give up (status ``skipped``, value the compute time) before building an LP with more
        absence variables than this (one per tensor and tight op inside one of its gaps).

    Returns
    -------
    BoundResult

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> window_bound(tr, hw.with_capacity({"HBM": 4})).status
    'infeasible'
    """
    import pulp

    t0 = time.perf_counter()
    C = hardware.compute_tier
    cap = hardware.capacity[C]
    n = len(trace.ops)
    compute = trace.compute_time
    for i in range(n):
        need = op_requirement(trace, i)
        if need > cap:
            return BoundResult("infeasible", compute, f"op {trace.ops[i].id!r} needs {need} bytes in {C} at "
                                                      f"once but {C} holds {cap}")
    fp = footprints(trace)      # index pos + 1 ; we use op starts: the op's footprint bounds it
    # usage at tau_i: alive tensors + workspace of op i (= resident_profile) exactly
    # ops whose start is checked against capacity: an op of zero duration starts and ends within one
    # instant, and capacity is checked after each instant, so its footprint need never be held
    crit = [i for i in range(n) if fp[i + 1] > cap and trace.ops[i].duration > 0]
    if max_absence is not None:
        size = _absence_count(trace, crit)
        if size > max_absence:
            return BoundResult("skipped", compute, f"the relaxation would have {size} absence variables "
                                                   f"(limit {max_absence})", {"absence_vars": size})
    prob = pulp.LpProblem("tierplan_window_bound", pulp.LpMinimize)
    V = pulp.LpVariable
    W = n + 2     # windows 0 .. n+1
    # windows: 0 prologue, i+1 for op i, n+1 epilogue
    work: dict[tuple[int, str], list[tuple[float, Any]]] = defaultdict(list)   # (window, stream)
    comp: dict[int, list[tuple[float, Any]]] = defaultdict(list)
    absent_at: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    rec_vars: dict[tuple[int, int], Any] = {}
    others = [t.name for t in hardware.tiers if t.name != C]
    lines: list[Any] = []

    def rec_var(p: int, w: int) -> Any:
        key = (p, w)
        if key not in rec_vars:
            rec_vars[key] = V(f"rec_{p}_{w}", 0, None)
            comp[w].append((trace.ops[p].duration, rec_vars[key]))
        return rec_vars[key]

    routes: dict[tuple[int, str, str], list[str] | None] = {}

    def hop_first(t: int, src: str, dst: str) -> tuple[str, float] | None:
        key = (t, src, dst)
        if key not in routes:
            routes[key] = route(hardware, src, dst, trace.tensors[t].bytes)
        path = routes[key]
        if path is None or len(path) < 2:
            return None
        a, b = (path[0], path[1]) if src == C else (path[-2], path[-1])
        lk = hardware.link(a, b)
        return lk.stream, lk.copy_time(trace.tensors[t].bytes)

    n_a = 0
    for t, tensor in enumerate(trace.tensors):
        death = trace.death[t]
        if death == AT_START:
            continue
        prod = trace.producer[t]
        users = trace.users[t]
        init = (tensor.initial_tier or C) if prod < 0 else C
        upd = [u for u in users if t in trace.op_updates[u]]
        last_version = max(upd) if upd else (prod if prod >= 0 else -1)
        # A version made in the compute tier (by the producer or an update) of a persistent tensor
        # whose final tier is elsewhere must leave the compute tier after it is made. (A tensor that
        # starts elsewhere and is never updated may reach its final tier without the compute tier:
        # nothing is charged for it.)
        final = tensor.final_tier if tensor.persistent else None
        must_write = final is not None and final != C and last_version >= 0
        # Copies out of the compute tier of each version, per tier: (window, variable). One copy
        # out serves every absence of its version and the write-back of the last version.
        writes: dict[int, list[tuple[int, Any]]] = {}
        crit_after = {v: max((i for i in crit if i > v), default=-1) for v in {-1, *upd, prod}}

        def write_vars(version: int) -> list[tuple[int, Any]] | None:
            if version not in writes:
                lo = version + 1 if version >= 0 else 0      # after the version's op ends
                hi = W - 1 if (must_write and version == last_version) else crit_after[version]
                got: list[tuple[int, Any]] = []
                for x in others:
                    h = hop_first(t, C, x)
                    if h is None:
                        continue
                    for w in range(lo, hi + 1):
                        v = V(f"wr_{t}_{version}_{x}_{w}", 0, None)
                        work[(w, h[0])].append((h[1], v))
                        got.append((w, v))
                writes[version] = got
            return writes[version]

        if must_write:
            wb = write_vars(last_version)
            if not wb:
                return BoundResult("infeasible", compute, f"tensor {tensor.id!r} cannot leave {C}")
            lines.append(pulp.lpSum(v for _, v in wb) >= 1)
        # Copies into the compute tier before the first use of a tensor that starts elsewhere (from
        # any tier: only the hop into the compute tier is charged). The same copy brings it back
        # for every absence before that use.
        fetch: list[tuple[int, Any]] = []
        if prod < 0 and init != C and users:
            for x in others:
                h = hop_first(t, x, C)
                if h is None:
                    continue
                for w in range(users[0] + 1):
                    v = V(f"fetch_{t}_{x}_{w}", 0, None)
                    work[(w, h[0])].append((h[1], v))
                    fetch.append((w, v))
            if not fetch:
                return BoundResult("infeasible", compute, f"tensor {tensor.id!r} cannot reach {C}")
            lines.append(pulp.lpSum(v for _, v in fetch) >= 1)
        # gaps: (prev, next) with the ops strictly between; versions change at updates
        version = prod if prod >= 0 else -1
        for (p_op, q_op) in _gaps(trace, t):
            if p_op >= 0 and p_op in upd:
                version = p_op
            inside = [i for i in crit if p_op < i < q_op]
            if not inside:
                continue
            # the initial copy elsewhere stands in for a write until the first update
            home = prod < 0 and init != C and version == -1
            returning = q_op < n
            rets: list[tuple[int, Any]] = []
            if returning and p_op == -1 and fetch:
                rets = fetch
            elif returning:
                for x in others:
                    h = hop_first(t, x, C)
                    if h is None:
                        continue
                    for w in range(inside[0] + 1, q_op + 1):
                        v = V(f"ret_{t}_{p_op}_{x}_{w}", 0, None)
                        work[(w, h[0])].append((h[1], v))
                        rets.append((w, v))
            recs: dict[int, Any] = {}
            if recompute and prod >= 0 and trace.ops[prod].effective_recomputable and returning:
                dead_before = min((trace.death[j] for j in trace.op_reads[prod]
                                   if not trace.tensors[j].persistent and trace.death[j] >= 0), default=n)
                for w in range(inside[0] + 1, min(q_op, dead_before) + 1):
                    recs[w] = rec_var(prod, w)
            out = None if home else write_vars(version)
            for i in inside:
                a = V(f"a_{t}_{p_op}_{i}", 0, 1)
                n_a += 1
                absent_at[i].append((tensor.bytes, a))
                later_rec = [recs[w] for w in recs if w >= i + 1]
                if out is not None:
                    # absent at tau_i: a copy of this version left before tau_i, or a recompute follows
                    lines.append(a <= pulp.lpSum(v for w, v in out if w <= i) + pulp.lpSum(later_rec))
                if returning:
                    # and it comes back after tau_i, before its next use
                    lines.append(a <= pulp.lpSum(v for w, v in rets if w >= i + 1) + pulp.lpSum(later_rec))
    prof = trace.resident_profile()
    for i in crit:
        lines.append(int(prof[i]) - pulp.lpSum(s * a for s, a in absent_at.get(i, ())) <= cap)
    D = [V(f"D_{w}", 0, None) for w in range(W)]
    for w in range(W):
        base = trace.ops[w - 1].duration if 1 <= w <= n else 0.0
        lines.append(D[w] >= base + pulp.lpSum(d * v for d, v in comp.get(w, ())))
    streams = {s for (_, s) in work}
    for w in range(W):
        for s in streams:
            if (w, s) in work:
                lines.append(D[w] >= pulp.lpSum(d * v for d, v in work[(w, s)]))
    unit = max(compute, 1e-12)
    prob += (1.0 / unit) * pulp.lpSum(D)
    for k, c in enumerate(lines):
        prob += c, f"c{k}"
    build = time.perf_counter() - t0
    out = solve_pulp(prob, backend, time_limit=time_limit, mip=False)
    stats = {"variables": len(prob.variables()), "constraints": prob.numConstraints(), "absence_vars": n_a,
             "critical_ops": len(crit), "build_s": round(build, 3), "solve_s": round(out.wall_s, 3),
             "solver": out.detail}
    if out.status == "infeasible":
        return BoundResult("infeasible", compute, "the window relaxation has no solution: no schedule fits "
                                                  f"{C} at {cap} bytes", stats)
    if out.status != "optimal" or out.objective is None:
        return BoundResult("timeout" if out.status == "timeout" else "error", compute,
                           f"LP stopped: {out.detail}", stats)
    # the LP's optimum (a floating-point figure) minus a hair, never below the compute time
    val = max(compute, out.objective * unit * (1 - 1e-9))
    return BoundResult("bound", float(val), "", stats)


def _gaps(trace: Trace, t: int) -> list[tuple[int, int]]:
    """Tensor ``t``'s gaps ``(prev, next)``: between its producer (-1: time 0) and its uses, and from
    its last use to the end (``len(trace.ops)``) when it is persistent."""
    events = [trace.producer[t] if trace.producer[t] >= 0 else -1, *trace.users[t]]
    if trace.tensors[t].persistent:
        events.append(len(trace.ops))
    return list(zip(events, events[1:]))


def _absence_count(trace: Trace, crit: list[int]) -> int:
    """How many absence variables :func:`window_bound` creates: per tensor and gap, the tight ops
    strictly inside it."""
    return sum(bisect.bisect_left(crit, q_op) - bisect.bisect_right(crit, p_op)
               for t in range(len(trace.tensors)) if trace.death[t] != AT_START for p_op, q_op in _gaps(trace, t))


def stage_lp_bound(problem: Any, time_limit: float | None = None) -> float | None:
    """LP relaxation of the stage MILP (a bound for the stage model only, not for every schedule).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> from formulations.common import build_problem
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=2.0, inputs=("x",)),))
    >>> stage_lp_bound(build_problem(tr, Hardware("h", "HBM", (Tier("HBM", 100),))))
    2.0
    """
    from formulations.milp import MilpOptions, solve_stage_milp

    res = solve_stage_milp(problem, MilpOptions(relax=True, time_limit=time_limit))
    return res.objective
