"""A lower bound on the makespan of *every* valid schedule: the window LP relaxation.

The stage MILP and the CP-SAT model search restricted spaces (their policies), so their own
bounds speak for those spaces only. This LP relaxes the timing model itself, so its optimum is a
lower bound for any planner (``tierplan bound``). Let ``tau_i`` be the start of op ``i`` in any
valid schedule and ``e_i = tau_i + d_i`` its end; cut time into the prologue ``[0, tau_0)``, for
each op its run window ``[tau_i, e_i)`` (exactly ``d_i`` long) and its stall window
``[e_i, tau_{i+1})`` (the last one is the epilogue). The makespan is the compute time plus the
prologue and the stall windows. Then:

* a stall window (and the prologue) lasts at least the recomputes run in it (the compute stream
  runs nothing else there, and nothing but the op during a run) and at least the copy time each
  stream spends in it; a run window holds at most ``d_i`` of copy time per stream (a copy that
  spans windows is split pro rata);
* capacity is checked at two instants of each op that overflows the compute tier: ``tau_i``, and
  ``t_i``, the last instant in the run at which anything is allocated (``tau_i`` when nothing
  is). At both the tier holds op ``i``'s inputs, outputs and workspace plus every other live
  tensor that is not absent: ``a[g, i, k]`` is the share of a tensor absent at instant ``k`` in
  its gap ``g``;
* being absent requires a copy of the tensor's current version elsewhere (its initial copy, or a
  write out of the compute tier finished by then) or a recompute of its producer later; and,
  when a use follows, a return before that use: after ``tau_i`` for the first instant, and in
  the stall window of op ``i`` or later for the second (a copy into the compute tier allocates
  when it starts, and nothing is allocated in the run after ``t_i``);
* tensors that start elsewhere must be copied in before their first use; persistent tensors
  whose final tier holds a stale copy must be written there after their last update.
* one copy may serve several of these needs, so each copy is one variable, never charged twice:
  the fetch of a tensor that starts elsewhere also ends its absences before its first use, and a
  copy out of the last version of a persistent tensor is both an eviction and its write-back.

Copies of multi-hop routes are charged on their compute-tier hop only, a recompute of an op
restores all its outputs at once, and nothing else about the inputs of recomputes is assumed,
so every valid schedule maps to a feasible LP point with no larger objective. An infeasible LP
proves that no schedule fits. With ``integral=True`` the absences are binary and the recomputes
whole numbers per stall window (a real schedule's are): a MILP, still a relaxation of every
schedule and much tighter; a time-limited solve gives its dual bound.

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
('bound', 4.5)
>>> round(window_bound(tr, hw, integral=True).value, 6)   # the optimum
5.0
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from solver.deadline import Deadline, OutOfTime, Poll
from solver.model import AT_START, Hardware, Trace

from formulations.backends import NOT_STARTED, solve_pulp
from formulations.common import footprints, op_requirement
from solver.plans import route


#: HiGHS's algorithm for the LP: interior point (with crossover to a basic optimum) solves the
#: large, sparse, degenerate window LPs several times faster than the dual simplex
LP_METHOD = "ipm"


#: in the LP, running sums over more items than this become chains of variables (see
#: :func:`_running_sums`; with the interior point, 3-4x faster on 128-211-op instances); the MILP
#: keeps them written out (HiGHS's branch and bound closed the tiny suite's MILPs faster so: 13 s
#: against 20 s in all, leaving out one that hit its time limit either way)
_CHAIN_MIN = 4


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


#: Steps of the relaxation's build (tensors, gaps, constraints) between two readings of the clock.
BUILD_POLL_EVERY = 64


def window_bound(trace: Trace, hardware: Hardware, *, recompute: bool = True, time_limit: float | None = None,
                 backend: str = "highs", max_absence: int | None = None, integral: bool = False,
                 threads: int | None = None, on_bound: Callable[[float], bool] | None = None,
                 deadline: Deadline | None = None) -> BoundResult:
    """Solve the window LP relaxation (see the module docstring).

    Parameters
    ----------
    trace, hardware : Trace, Hardware
        Capacities in force already applied to ``hardware``.
    recompute : bool
        Whether schedules may recompute (False removes that way back, raising the bound).
    time_limit : float, optional
        Seconds for the whole call: building the model counts (the build polls the clock and
        gives up with status ``timeout`` when the time is up).
    deadline : Deadline, optional
        When the call must be over, whatever ``time_limit`` says (the sooner counts).
    backend : str
        An LP back end PuLP drives (``highs`` by default).
    max_absence : int, optional
        Give up (status ``skipped``, value the compute time) before building an LP with more
        absence variables than this (two per tensor and tight op inside one of its gaps).
    integral : bool
        Binary absences and whole recomputes (a MILP): tighter, slower. Stats ``proven`` says
        whether the MILP was solved to optimality or its dual bound was taken at the time limit.
    threads : int, optional
        Threads for the back end.
    on_bound : callable, optional
        MILP with HiGHS: called now and then during the solve with the bound proven so far
        (seconds, a bound for every schedule like the final one); returning True stops the solve,
        whose result is then the bound reached (``proven`` False, unless it was already optimal).

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
    >>> window_bound(tr, hw, deadline=Deadline(0.0, clock=lambda: 1.0)).status
    'timeout'
    """
    until = deadline
    if time_limit is not None:
        own = Deadline.after(time_limit, clock=deadline.clock if deadline is not None else time.perf_counter)
        until = own.sooner(deadline)
    t0 = time.perf_counter()
    try:
        return _window_bound(trace, hardware, recompute, backend, max_absence, integral, threads, on_bound, until)
    except OutOfTime:
        return BoundResult("timeout", trace.compute_time, f"{'MILP' if integral else 'LP'} stopped: the time limit "
                           "passed while the relaxation was being built",
                           {"build_s": round(time.perf_counter() - t0, 3), "solver": NOT_STARTED, "integral": integral})


def _window_bound(trace: Trace, hardware: Hardware, recompute: bool, backend: str, max_absence: int | None,
                  integral: bool, threads: int | None, on_bound: Callable[[float], bool] | None,
                  until: Deadline | None) -> BoundResult:
    """:func:`window_bound` with its deadline (raises :class:`OutOfTime` while building)."""
    import pulp

    t0 = time.perf_counter()
    tick = Poll(until, BUILD_POLL_EVERY)
    if until is not None:
        until.check("the relaxation's build")
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
    # times in units of the compute time and bytes in units of the capacity, so that the solver
    # sees coefficients near 1 (seconds of 1e-8 and bytes of 1e9 in one row trip its tolerances)
    unit = max(compute, 1e-12)
    cap_unit = float(max(cap, 1))
    V = pulp.LpVariable
    # a MILP: being absent at an instant is yes or no, and a recompute lies whole in one stall
    # window (copies may still be split between windows)
    absence_cat = "Binary" if integral else "Continuous"
    chain = not integral
    rec_cat = "Integer" if integral else "Continuous"
    W = 2 * n + 1     # windows: 0 prologue, then run i (2i + 1) and stall i (2i + 2); the last is the epilogue
    work: dict[tuple[int, str], list[tuple[float, Any]]] = defaultdict(list)   # (window, stream)
    comp: dict[int, list[tuple[float, Any]]] = defaultdict(list)
    absent_at: dict[tuple[int, int], list[tuple[int, Any]]] = defaultdict(list)   # (op, instant)
    rec_vars: dict[tuple[int, int], Any] = {}
    others = [t.name for t in hardware.tiers if t.name != C]
    lines: list[Any] = []

    def rec_var(p: int, j: int) -> Any:
        """A recompute of op ``p`` in the stall window after op ``j`` (the compute stream is busy
        during runs, so recomputes run in stall windows only)."""
        key = (p, j)
        if key not in rec_vars:
            rec_vars[key] = V(f"rec_{p}_{j}", 0, None, rec_cat)
            comp[stall_window(j)].append((trace.ops[p].duration / unit, rec_vars[key]))
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
        return lk.stream, lk.copy_time(trace.tensors[t].bytes) / unit

    def hops(t: int, out_of_compute: bool) -> list[tuple[str, float]]:
        """The distinct compute-tier hops (stream, scaled copy time) of tensor ``t``'s routes out of
        (or into) the compute tier: routes to several tiers over one first hop need one variable."""
        got = {hop_first(t, C, x) if out_of_compute else hop_first(t, x, C) for x in others}
        return sorted(h for h in got if h is not None)

    n_a = 0
    for t, tensor in enumerate(trace.tensors):
        tick()
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
        write_sums: dict[int, dict[int, Any]] = {}
        crit_after = {v: max((i for i in crit if i > v), default=-1) for v in {-1, *upd, prod}}

        def write_vars(version: int) -> list[tuple[int, Any]] | None:
            if version not in writes:
                lo = stall_window(version) if version >= 0 else 0      # after the version's op ends
                hi = W - 1 if (must_write and version == last_version) else run_window(crit_after[version])
                got: list[tuple[int, Any]] = []
                for x, h in enumerate(hops(t, out_of_compute=True)):
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
            for x, h in enumerate(hops(t, out_of_compute=False)):
                for w in range(run_window(users[0])):
                    v = V(f"fetch_{t}_{x}_{w}", 0, None)
                    work[(w, h[0])].append((h[1], v))
                    fetch.append((w, v))
            if not fetch:
                return BoundResult("infeasible", compute, f"tensor {tensor.id!r} cannot reach {C}")
            lines.append(pulp.lpSum(v for _, v in fetch) >= 1)
        # gaps: (prev, next) with the ops strictly between; versions change at updates
        gap_list: list[tuple[int, int, int, list[int]]] = []
        version = prod if prod >= 0 else -1
        for (p_op, q_op) in _gaps(trace, t):
            if p_op >= 0 and p_op in upd:
                version = p_op
            inside = [i for i in crit if p_op < i < q_op]
            if inside:
                gap_list.append((p_op, q_op, version, inside))
        # the instants at which each version's copies out are counted (see below)
        write_queries: dict[int, set[int]] = defaultdict(set)
        for _, _, version, inside in gap_list:
            write_queries[version].update(w for i in inside for w in (stall_window(i - 1), run_window(i)))
        for p_op, q_op, version, inside in gap_list:
            tick()
            # the initial copy elsewhere stands in for a write until the first update
            home = prod < 0 and init != C and version == -1
            returning = q_op < n
            rets: list[tuple[int, Any]] = []
            if returning and p_op == -1 and fetch:
                rets = fetch
            elif returning:
                for x, h in enumerate(hops(t, out_of_compute=False)):
                    for w in range(run_window(inside[0]), run_window(q_op)):
                        v = V(f"ret_{t}_{p_op}_{x}_{w}", 0, None)
                        work[(w, h[0])].append((h[1], v))
                        rets.append((w, v))
            recs: list[tuple[int, Any]] = []
            if recompute and prod >= 0 and trace.ops[prod].effective_recomputable and returning:
                dead_before = min((trace.death[j] for j in trace.op_reads[prod]
                                   if not trace.tensors[j].persistent and trace.death[j] >= 0), default=n)
                recs = [(j, rec_var(prod, j)) for j in range(inside[0], min(q_op, dead_before))]
            # running sums: copies out by a window, returns from a window on, recomputes from an op on
            if home:
                out = None
            else:
                if version not in write_sums:
                    write_sums[version] = _running_sums(write_vars(version), write_queries[version], suffix=False,
                                                        name=f"wsum_{t}_{version}", lines=lines, chain=chain)
                out = write_sums[version]
            back = (_running_sums(rets, {w for i in inside for w in (run_window(i), stall_window(i))}, suffix=True,
                                  name=f"rsum_{t}_{p_op}", lines=lines, chain=chain) if returning else {})
            later = _running_sums(recs, set(inside), suffix=True, name=f"csum_{t}_{p_op}", lines=lines, chain=chain)
            for i in inside:
                later_rec = later[i]
                # two checked instants in op i's run: its start, and the last allocation in the run
                # (the start itself when nothing is allocated later); nothing is allocated in the
                # run after the second, so a tensor absent there comes back after the run ends
                for instant, written_by, back_from in ((0, stall_window(i - 1), run_window(i)),
                                                       (1, run_window(i), stall_window(i))):
                    a = V(f"a_{t}_{p_op}_{i}_{instant}", 0, 1, absence_cat)
                    n_a += 1
                    absent_at[(i, instant)].append((tensor.bytes, a))
                    if out is not None:
                        # absent then: a copy of this version left before, or a recompute follows
                        lines.append(a <= out[written_by] + later_rec)
                    if returning:
                        # and it comes back after that instant, before its next use
                        lines.append(a <= back[back_from] + later_rec)
    prof = trace.resident_profile()
    for i in crit:
        for instant in (0, 1):
            lines.append(int(prof[i]) / cap_unit
                         - pulp.lpSum((s / cap_unit) * a for s, a in absent_at.get((i, instant), ())) <= cap / cap_unit)
    D: dict[int, Any] = {0: V("D_pro", 0, None)}
    for i in range(n):
        D[stall_window(i)] = V(f"D_stall_{i}", 0, None)
    for w, var in D.items():
        lines.append(var >= pulp.lpSum(d * v for d, v in comp.get(w, ())))
    for (w, s), items in work.items():
        cap_w = D[w] if w in D else trace.ops[(w - 1) // 2].duration / unit
        lines.append(pulp.lpSum(d * v for d, v in items) <= cap_w)
    prob += pulp.lpSum(D.values()) + compute / unit
    for k, c in enumerate(lines):
        tick()
        prob += c, f"c{k}"
    build = time.perf_counter() - t0
    def seconds(value: float) -> float:
        # the optimum, or the MILP's best bound at its time limit (a floating-point figure), minus a
        # hair; never below the compute time (nor when there is no bound yet: -inf)
        return float(max(compute, value * unit * (1 - 1e-9)))

    # the MILP is solved to a zero gap: its dual bound is the figure, and small models close fast
    out = solve_pulp(prob, backend, mip=integral, threads=threads, rel_gap=0.0, deadline=until,
                     lp_method=LP_METHOD, on_bound=None if on_bound is None else (lambda b: on_bound(seconds(b))))
    stats = {"variables": len(prob.variables()), "constraints": prob.numConstraints(), "absence_vars": n_a,
             "critical_ops": len(crit), "build_s": round(build, 3), "solve_s": round(out.wall_s, 3),
             "solver": out.detail, "integral": integral}
    if out.status == "infeasible":
        return BoundResult("infeasible", compute, "the window relaxation has no solution: no schedule fits "
                                                  f"{C} at {cap} bytes", stats)
    # an LP's optimum; a MILP's dual bound (its incumbent may sit above the optimum by the gap)
    value = out.bound if integral else out.objective if out.status == "optimal" else None
    if value is None:
        return BoundResult("timeout" if out.status == "timeout" else "error", compute,
                           f"{'MILP' if integral else 'LP'} stopped: {out.detail}", stats)
    stats["proven"] = out.status == "optimal"
    return BoundResult("bound", seconds(value), "", stats)


def _running_sums(items: list[tuple[int, Any]], queries: set[int], *, suffix: bool, name: str,
                  lines: list[Any], chain: bool = True) -> dict[int, Any]:
    """For each query ``q``, an expression no larger than the sum of the ``(key, var)`` items with
    ``key <= q`` (``key >= q`` when ``suffix``).

    Many constraints read overlapping sums of one long list of copies; written out, each would
    repeat the list (the LP's nonzeros grow with its square). Past a few items the sums become a
    chain of variables, ``S(q_k) <= S(q_{k-1}) + (items between)``, each item read once: the same
    feasible set for whatever is bounded above by these sums. ``chain=False`` writes every sum out.
    """
    import pulp

    qs = sorted(queries, reverse=suffix)
    if not chain or len(items) <= _CHAIN_MIN or len(qs) <= 1:
        return {q: pulp.lpSum(v for k, v in items if (k >= q if suffix else k <= q)) for q in qs}
    ordered = sorted(items, key=lambda kv: kv[0], reverse=suffix)
    sums: dict[int, Any] = {}
    prev: Any = None
    pos = 0
    for q in qs:
        seg = []
        while pos < len(ordered) and (ordered[pos][0] >= q if suffix else ordered[pos][0] <= q):
            seg.append(ordered[pos][1])
            pos += 1
        s = pulp.LpVariable(f"{name}_{q}", 0, None)
        lines.append(s <= pulp.lpSum(seg) + (prev if prev is not None else 0))
        sums[q] = prev = s
    return sums


def _gaps(trace: Trace, t: int) -> list[tuple[int, int]]:
    """Tensor ``t``'s gaps ``(prev, next)``: between its producer (-1: time 0) and its uses, and from
    its last use to the end (``len(trace.ops)``) when it is persistent."""
    events = [trace.producer[t] if trace.producer[t] >= 0 else -1, *trace.users[t]]
    if trace.tensors[t].persistent:
        events.append(len(trace.ops))
    return list(zip(events, events[1:]))


def run_window(i: int) -> int:
    """The window of op ``i``'s run (windows alternate: prologue, run 0, stall 0, run 1, ...).

    Examples
    --------
    >>> run_window(0), stall_window(0), stall_window(-1)
    (1, 2, 0)
    """
    return 2 * i + 1


def stall_window(i: int) -> int:
    """The window from the end of op ``i``'s run to the start of the next (``stall_window(-1)``: the prologue)."""
    return 2 * i + 2


def _absence_count(trace: Trace, crit: list[int]) -> int:
    """How many absence variables :func:`window_bound` creates: per tensor and gap, two for each
    tight op strictly inside it."""
    return 2 * sum(bisect.bisect_left(crit, q_op) - bisect.bisect_right(crit, p_op)
               for t in range(len(trace.tensors)) if trace.death[t] != AT_START for p_op, q_op in _gaps(trace, t))


def stage_lp_bound(problem: Any, time_limit: float | None = None, deadline: Deadline | None = None) -> float | None:
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

    res = solve_stage_milp(problem, MilpOptions(relax=True, time_limit=time_limit, deadline=deadline))
    return res.objective
