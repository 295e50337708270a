"""Warm starts for the exact formulations.

* :func:`best_heuristic` runs the registered heuristics (``greedy``, then ``keep``) and keeps
  the best schedule the validator accepts: the exact methods return it whenever they cannot do
  better, so a time-limited exact solve is never worse than it.
* :func:`stage_heuristic` builds a stage plan that is feasible in the stage model by
  construction (the MILP's MIP start, and a fallback when no heuristic is registered).
* :func:`cp_hint` reads any valid schedule back into the CP-SAT model's decisions (which gaps
  leave, how, and when), as a solution hint.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier
>>> from solver.methods import Instance
>>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
>>> w = best_heuristic(Instance(tr, Hardware("h", "HBM", (Tier("HBM", 100),))), time_limit=5)
>>> w.method, w.makespan
('greedy', 1.0)
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from collections.abc import Mapping

from solver.deadline import Deadline
from solver.methods import Instance, SolveOptions, get_method, method_names

from solver.model import Copy, Free, Recompute, Schedule
from solver.timing import Report, validate

from formulations.common import Problem
from formulations.stages import REC, Choice, Layout, StagePlan, evaluate

#: Heuristics tried for the warm start, in order (those registered).
WARM_METHODS = ("greedy", "keep")


@dataclass(frozen=True)
class Warm:
    """A validated warm-start schedule.

    Attributes
    ----------
    method : str
        The heuristic that made it.
    schedule : Schedule
    report : Report
        Its (valid) validation report.
    """

    method: str
    schedule: Schedule
    report: Report = field(repr=False)

    @property
    def makespan(self) -> float:
        """Validated makespan."""
        return self.report.metrics.makespan


def best_heuristic(instance: Instance, time_limit: float | None = None, recompute: bool = True,
                   methods: tuple[str, ...] = WARM_METHODS, deadline: Deadline | None = None) -> Warm | None:
    """The best valid schedule among the registered heuristics ``methods`` (None if none is valid).

    Parameters
    ----------
    instance : Instance
    time_limit : float, optional
        Seconds for all of them together (from this call).
    recompute : bool
    methods : tuple[str, ...]
        Heuristics to try (unregistered names are skipped).
    deadline : Deadline, optional
        When they must be done, whatever ``time_limit`` says (the sooner counts): each heuristic
        stops there (status ``timeout``, no warm start from it). ``keep``, one linear pass and the
        fallback, is tried whatever the time left.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> best_heuristic(Instance(tr, hw)).method
    'greedy'
    """
    best: Warm | None = None
    known = set(method_names())
    until = deadline
    if time_limit is not None:
        until = Deadline.after(time_limit, clock=deadline.clock if deadline is not None else time.perf_counter
                               ).sooner(deadline)
    for name in methods:
        if name not in known:
            continue
        try:
            res = get_method(name).load()(instance, SolveOptions(recompute=recompute, deadline=until))
        except Exception:  # noqa: BLE001 - a failing heuristic only means no warm start from it
            continue
        if res.schedule is None:
            continue
        sched = res.schedule
        if dict(sched.capacity) != dict(instance.capacity):
            sched = Schedule(sched.trace, sched.hardware, sched.actions, dict(instance.capacity), sched.solver)
        rep = validate(instance.trace, instance.hardware, sched)
        if not rep.valid:
            continue
        if best is None or rep.metrics.makespan < best.makespan:
            best = Warm(name, sched, rep)
    return best


# ------------------------------------------------------------------------------------------------
# stage heuristic

def stage_heuristic(problem: Problem, layout: Layout, deadline: Deadline | float | None = None) -> StagePlan | None:
    """A stage plan feasible in the stage model, built greedily (None when it gets stuck).

    Sweeping the critical stages in order, while a stage holds too much it sends out the
    largest tensor that can be away there: by its epoch's copy (written as early as possible,
    fetched back in the stage before its use) or by recompute (just before its use), keeping the
    inputs of planned recomputes in place. ``deadline`` (a :class:`~solver.deadline.Deadline`, or a
    :func:`time.perf_counter` reading) is checked once per stage: None once it has passed.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
    >>> from formulations.common import build_problem
    >>> from formulations.stages import layout_for
    >>> tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
    ...            (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, outputs=("b",)),
    ...             Op(id="h", duration=1.0, inputs=("b",)), Op(id="i", duration=1.0, inputs=("a",))))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 5), Tier("DDR", 100)),
    ...               (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0)))
    >>> p = build_problem(tr, hw)
    >>> plan = stage_heuristic(p, layout_for(p))
    >>> [c.via for c in plan.choices]
    ['DDR']
    """
    tr = problem.trace
    C = problem.compute
    lay = layout
    K = lay.K
    cap = problem.cap
    writes: dict[tuple[int, str], int] = {}
    choices: dict[int, Choice] = {}
    pinned: dict[int, set[int]] = defaultdict(set)      # tensor -> stages it must stay valid
    # forced fetches
    for gi, g in enumerate(problem.gaps):
        if g.absent:
            ep = problem.epochs[g.epoch]
            lo, hi = lay.between(g.prev, g.next)
            choices[gi] = Choice(gi, ep.home, lo, hi)
    # mandatory final writes
    for e, ep in enumerate(problem.epochs):
        if ep.final is not None and ep.final not in (C, ep.home):
            r = problem.route(ep.tensor, C, ep.final)
            w0 = 0 if ep.start < 0 else lay.stage(ep.start) + 1
            writes[(e, ep.final)] = min(w0 + r.hops, K)

    def usage() -> list[int]:
        return list(evaluate(problem, lay, StagePlan(writes, tuple(choices.values()))).usage)

    def candidates(k: int) -> list[tuple[float, int, Choice, tuple[int, str] | None, int]]:
        out = []
        for gi, g in enumerate(problem.gaps):
            if gi in choices or g.absent:
                continue
            S_lo, S_hi = lay.between(g.prev, g.next)
            if not S_lo <= k <= S_hi:
                continue
            ep = problem.epochs[g.epoch]
            size = tr.tensors[g.tensor].bytes
            if pinned[g.tensor] & set(range(S_lo, S_hi + 2)):
                continue
            used = [x for (e, x) in writes if e == g.epoch]
            for x in ep.tiers:
                if used and x not in used and ep.home != x:
                    continue
                if not g.final and (g.tensor, x, C) not in problem.routes:
                    continue
                if ep.home == x:
                    leave, wkey = S_lo, None
                elif (g.epoch, x) in writes:
                    leave, wkey = max(S_lo, writes[(g.epoch, x)]), None
                else:
                    hops = problem.route(g.tensor, C, x).hops
                    w0 = 0 if ep.start < 0 else lay.stage(ep.start) + 1
                    w0 = max(w0, S_lo - 1 if g.prev_kind == "read" else S_lo)
                    if ep.end < problem.n and w0 + hops > lay.stage(ep.end):
                        continue
                    leave, wkey = max(S_lo, w0 + hops), (g.epoch, x)
                back = None if g.final else S_hi
                if leave > k or (back is not None and back <= k):
                    continue
                cost = problem.route(g.tensor, x, C).total if not g.final else 0.0
                out.append((cost, size, Choice(gi, x, leave, back), wkey, gi))
            if g.recomputable and not g.final:
                Ri = lay.stage(g.rec_last)
                if Ri > k and S_lo <= k:
                    p = tr.producer[g.tensor]
                    ok = True
                    for j in tr.op_reads[p]:
                        for cj in choices.values():
                            gj = problem.gaps[cj.gap]
                            if gj.tensor != j:
                                continue
                            hi = K if cj.back is None else cj.back
                            if cj.leave <= Ri < hi + (0 if cj.via == REC else 1):
                                ok = False
                    if ok:
                        out.append((tr.ops[p].duration, size, Choice(gi, REC, S_lo, Ri), None, gi))
        out.sort(key=lambda c: (-c[1], c[0]))
        return out

    u = usage()
    for k in range(K):
        if deadline is not None and (deadline.expired() if isinstance(deadline, Deadline)
                                     else time.perf_counter() > deadline):
            return None
        while u[k] > cap:
            cands = candidates(k)
            if not cands:
                return None
            _, _, ch, wkey, gi = cands[0]
            if wkey is not None:
                writes[wkey] = ch.leave
            choices[gi] = ch
            if ch.via == REC:
                p = tr.producer[problem.gaps[gi].tensor]
                for j in tr.op_reads[p]:
                    pinned[j].add(ch.back)
            u = usage()
    ev = evaluate(problem, lay, StagePlan(writes, tuple(choices.values())))
    if any(x > cap for x in ev.usage):
        return None
    for tier, use in ev.tier_usage.items():
        if any(x > problem.capacity[tier] for x in use):
            return None
    return StagePlan(writes, tuple(choices.values()))


# ------------------------------------------------------------------------------------------------
# reading a schedule back into the formulations' decisions

def replay(schedule: Schedule, durations: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Start and end of every action when each lasts ``durations[id]`` (frees: 0).

    The same precedence rules as the validator (stream order and ``after`` waits), without
    memory: used to put a schedule on another clock (CP-SAT's rounded durations). A schedule
    whose waits keep its memory safe whatever the durations stays valid on that clock.

    Examples
    --------
    >>> from solver.model import Schedule, Run, Copy
    >>> s = Schedule("t", "h", (Run(op="a"), Copy(id="c", tensor="x", src="A", dst="B", after=("a",)),
    ...                         Run(op="b", after=("c",))))
    >>> replay(s, {"a": 2, "c": 3, "b": 1})
    {'a': (0, 2), 'c': (2, 5), 'b': (5, 6)}
    """
    acts = schedule.actions
    preds: dict[str, list[str]] = {}
    last: dict[str, str] = {}
    for a in acts:
        ps = list(a.after)
        if isinstance(a, Copy):
            st = ("link", a.src, a.dst)
        elif isinstance(a, Free):
            st = None
        else:
            st = ("compute",)
        key = str(st)
        if st is not None:
            if key in last:
                ps.append(last[key])
            last[key] = a.id
        preds[a.id] = ps
    out: dict[str, tuple[float, float]] = {}
    pending = {a.id: len(set(preds[a.id])) for a in acts}
    succ: dict[str, list[str]] = defaultdict(list)
    for a in acts:
        for p in set(preds[a.id]):
            succ[p].append(a.id)
    ready = [a.id for a in acts if pending[a.id] == 0]
    kind = {a.id: a for a in acts}
    while ready:
        i = ready.pop()
        begin = max((out[p][1] for p in set(preds[i])), default=0)
        d = 0 if isinstance(kind[i], Free) else durations.get(i, 0)
        out[i] = (begin, begin + d)
        for j in succ[i]:
            pending[j] -= 1
            if pending[j] == 0:
                ready.append(j)
    return out


def cp_values(problem: Problem, schedule: Schedule, times: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    """The CP-SAT model's variables (by name) for a schedule whose actions have ``times``.

    Reads which gaps leave the compute tier and how (``l_<gap>_<via>``), the writes
    (``w_<epoch>_<tier>`` and their hops ``ws_...``), releases and returns (``r``, ``b``, ``v``),
    the copies back (``fs_...``) and recomputes (``rcs``), and the op starts (``s<op>``).
    Decisions that the model cannot express are simply not named.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Schedule, Run
    >>> from formulations.common import build_problem
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> cp_values(build_problem(tr, hw), Schedule("t", "h", (Run(op="f"),)), {"f": (0, 1)})
    {'s0': 0, 'makespan': 1}
    """
    tr = problem.trace
    C = problem.compute
    vals: dict[str, Any] = {}
    run_start: dict[int, float] = {}
    run_end: dict[int, float] = {}
    releases: dict[int, list[float]] = defaultdict(list)
    arrivals: dict[int, list[tuple[float, Any]]] = defaultdict(list)
    copies_of: dict[int, list[Copy]] = defaultdict(list)
    for a in schedule.actions:
        if a.id not in times:
            continue
        st, en = times[a.id]
        if type(a).__name__ == "Run":
            i = tr.op_index[a.op]
            run_start[i], run_end[i] = st, en
            vals[f"s{i}"] = st
        elif isinstance(a, Free) and a.tier == C:
            releases[tr.tensor_index[a.tensor]].append(st)
        elif isinstance(a, Copy):
            t = tr.tensor_index[a.tensor]
            copies_of[t].append(a)
            if a.src == C and a.free_src:
                releases[t].append(en)
            if a.dst == C:
                arrivals[t].append((st, a))
        elif isinstance(a, Recompute):
            p = tr.op_index[a.op]
            for t in tr.op_writes[p]:
                arrivals[t].append((st, a))
    vals["makespan"] = max((z for _, z in times.values()), default=0)

    def chain_back(t: int, last: Copy) -> list[Copy]:
        hops = [last]
        cur = last
        while True:
            prev = [c for c in copies_of[t] if c.dst == cur.src and times[c.id][1] <= times[cur.id][0]]
            if not prev or cur.src == C:
                break
            cand = max(prev, key=lambda c: times[c.id][1])
            if cand.src == C:
                break
            hops.insert(0, cand)
            cur = cand
            if len(hops) > 8:
                break
        return hops

    used_writes: set[str] = set()
    for gi, g in enumerate(problem.gaps):
        lo = run_end.get(g.prev, 0) if g.prev >= 0 else 0
        hi = run_start.get(g.next, float("inf")) if g.next < problem.n else float("inf")
        ep = problem.epochs[g.epoch]
        if g.absent:
            arr = [(x, c) for x, c in arrivals[g.tensor] if x <= hi and isinstance(c, Copy)]
            if not arr:
                continue
            b, c = arr[0]
            hops = chain_back(g.tensor, c)
            if hops[0].src != ep.home:
                continue
            vals[f"l_{gi}_{ep.home}"] = 1
            vals[f"lv{gi}"] = 1
            vals[f"r{gi}"] = 0
            for h, cc in enumerate(hops):
                vals[f"fs_{gi}_{ep.home}_{h}"] = times[cc.id][0]
            vals[f"b{gi}"], vals[f"v{gi}"] = b, times[c.id][1]
            continue
        rel = [x for x in releases[g.tensor] if lo <= x <= hi]
        if not rel:
            continue
        r = min(rel)
        if g.final:
            tier = next((c2.dst for c2 in copies_of[g.tensor] if c2.src == C), ep.home)
            if tier is None:
                continue
            vals[f"l_{gi}_{tier}"] = 1
            vals[f"lv{gi}"] = 1
            vals[f"r{gi}"] = r
            continue
        arr = [(x, c) for x, c in arrivals[g.tensor] if r <= x <= hi]
        if not arr:
            continue
        b, c = arr[0]
        if isinstance(c, Recompute):
            vals[f"l_{gi}_@recompute"] = 1
            vals[f"rcs{gi}"] = b
        else:
            hops = chain_back(g.tensor, c)
            via = hops[0].src
            vals[f"l_{gi}_{via}"] = 1
            for h, cc in enumerate(hops):
                vals[f"fs_{gi}_{via}_{h}"] = times[cc.id][0]
        vals[f"lv{gi}"] = 1
        vals[f"r{gi}"], vals[f"b{gi}"], vals[f"v{gi}"] = r, b, times[c.id][1]
    for e, ep in enumerate(problem.epochs):
        lo = run_end.get(ep.start, 0) if ep.start >= 0 else 0
        hi = run_start.get(ep.end, float("inf")) if ep.end < problem.n else float("inf")
        for c in copies_of[ep.tensor]:
            if c.src != C or c.id in used_writes or not lo <= times[c.id][0] <= hi:
                continue
            hops = [c]
            while True:
                nxt = [c2 for c2 in copies_of[ep.tensor] if c2.src == hops[-1].dst and c2.dst != C
                       and times[c2.id][0] >= times[hops[-1].id][1] and c2.id not in used_writes]
                if not nxt:
                    break
                hops.append(min(nxt, key=lambda c2: times[c2.id][0]))
            x = hops[-1].dst
            used_writes.update(h.id for h in hops)
            vals[f"w_{e}_{x}"] = 1
            for h, cc in enumerate(hops):
                vals[f"ws_{e}_{x}_{h}"] = times[cc.id][0]
            break
    return vals


def cp_hint(problem: Problem, schedule: Schedule, report: Report) -> dict[str, Any]:
    """The CP-SAT decisions a valid schedule makes, on the validator's clock (seconds).

    Returns ``{"lits": {name: 0|1}, "times": {name: seconds}, "makespan": seconds}`` (see
    :func:`cp_values` for the names); kept for callers that only need the decisions.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Schedule, Run
    >>> from solver.timing import validate
    >>> from formulations.common import build_problem
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> s = Schedule("t", "h", (Run(op="f"),))
    >>> cp_hint(build_problem(tr, hw), s, validate(tr, hw, s))["times"]
    {'s0': 0.0}
    """
    tl = report.timeline
    times = {i: (a, z) for i, a, z in zip(tl.ids, tl.starts, tl.ends) if a is not None}
    vals = cp_values(problem, schedule, times)
    lits = {k: v for k, v in vals.items() if k.startswith(("l_", "w_"))}
    tms = {k: v for k, v in vals.items() if k.startswith("s") and k[1:].isdigit()}
    tms.update({k: v for k, v in vals.items() if k[:1] in "rb" and k[1:].isdigit()})
    return {"lits": lits, "times": tms, "makespan": report.metrics.makespan}
