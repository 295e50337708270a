"""Large-neighbourhood search over windows of the trace: re-plan a stretch of ops exactly.

An instance too large for one exact model is improved a window at a time. For a window of ops
``[a, b)`` of a valid schedule ``S`` (the incumbent):

1. **Cut.** ``S``'s actions that start before op ``a``'s run are the *prefix*, those that start
   at or after op ``b``'s run the *suffix*, the rest the old window. The state after the prefix
   (which tiers hold a valid copy of each tensor) and after the old window are read from ``S``'s
   validated timeline (:func:`residency`).
2. **Sub-instance.** The window's ops with the tensors they touch and the tensors alive across
   it: a tensor that exists at the cut starts in a tier holding it (the compute tier when it is
   there); one that the suffix still needs is persistent and must end in a tier that holds it
   after the old window (the compute tier first). Copies in other tiers that the sub-instance
   cannot name (a tensor held in two tiers) stay where they are (*hidden copies*).
3. **Solve.** The caller's exact planner solves the sub-instance within a time slice.
4. **Stitch.** Prefix, then the new window (every action waits for the prefix's last action on
   each stream), then repairs (copies and frees that restore the state the suffix expects), then
   the suffix (its first action on each stream and every free wait for the window and the
   repairs). A copy of the new window into a tier that holds a hidden copy of the same data is
   dropped. The stitched schedule is validated on the whole instance and kept only when it is
   valid and shorter.

The barriers cost some overlap at the cuts, and a window is only accepted when the validator
says the whole schedule got shorter, so the search never returns a worse schedule than it was
given, and every schedule it returns is valid.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link, Schedule, Run
>>> from solver.timing import validate
>>> tr = Trace("t", (Tensor(id="a", bytes=4),), (Op(id="f", duration=1.0, outputs=("a",)),
...                                              Op(id="g", duration=1.0, inputs=("a",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 8),))
>>> s = Schedule("t", "h", (Run(op="f"), Run(op="g")))
>>> sorted(residency(tr, hw, s, validate(tr, hw, s), 1.0)[0])
['HBM']
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from solver.methods import Instance
from solver.model import AT_START, Copy, Free, Hardware, Op, Recompute, Run, Schedule, Tensor, Trace
from solver.timing import Report, validate

#: Most seconds one window's exact solve gets.
WINDOW_MAX_S = 20.0

#: Smallest window tried once every larger one has been tried.
MIN_WINDOW_OPS = 8

#: A planner for a sub-instance: ``(instance, seconds) -> schedule or None``.
SubSolver = Callable[[Instance, float], "Schedule | None"]


@dataclass(frozen=True)
class Window:
    """A sub-instance cut from a schedule, with what is needed to stitch its plan back.

    Attributes
    ----------
    start, stop : int
        The window's ops are ``start .. stop - 1`` of the whole trace.
    instance : Instance
        The sub-instance (same hardware and capacities).
    before, after : Mapping[int, frozenset[str]]
        Tiers holding each tensor (whole-trace index) after the prefix and after the old window.
    hidden : Mapping[int, frozenset[str]]
        Copies that exist at the cut but that the sub-instance does not name.
    drop_at_cut : tuple[tuple[int, str], ...]
        Copies freed before the new window: tensors that the old window dropped without using.
    recompute_at_cut : tuple[int, ...]
        Ops recomputed before the new window: producers of tensors that the window uses but that
        are held nowhere at its start (``before`` already counts them in the compute tier).
    """

    start: int
    stop: int
    instance: Instance
    before: Mapping[int, frozenset[str]]
    after: Mapping[int, frozenset[str]]
    hidden: Mapping[int, frozenset[str]]
    drop_at_cut: tuple[tuple[int, str], ...]
    recompute_at_cut: tuple[int, ...] = ()


@dataclass(frozen=True)
class SearchResult:
    """What :func:`improve_by_windows` did.

    Attributes
    ----------
    schedule : Schedule
        The best schedule (the one given when nothing was better).
    makespan : float
        Its validated makespan.
    stats : Mapping[str, Any]
        ``windows`` (tried), ``accepted``, ``rejected`` (reason -> count), ``window_ops`` (the
        last window size) and ``start_makespan``.
    """

    schedule: Schedule
    makespan: float
    stats: Mapping[str, Any] = field(default_factory=dict)


class _Skip(Exception):
    """A window that cannot be cut or stitched (the message says why)."""


def _times(report: Report) -> dict[str, tuple[float, float, str]]:
    tl = report.timeline
    return {i: (a, z, st) for i, a, z, st in zip(tl.ids, tl.starts, tl.ends, tl.streams) if a is not None}


def residency(trace: Trace, hardware: Hardware, schedule: Schedule, report: Report,
              cutoff: float, start: Mapping[int, frozenset[str]] | None = None,
              actions: Sequence[Any] | None = None,
              times: Mapping[str, tuple[float, float, str]] | None = None) -> dict[int, frozenset[str]]:
    """Tiers holding a valid copy of each tensor once every action that starts before ``cutoff``
    has ended (tensors held nowhere are left out).

    ``start`` (default: the trace's initial state) and ``actions``/``times`` (default: the
    schedule's, with the report's timeline) let a caller continue from a given state.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link, Schedule, Run, Copy
    >>> from solver.timing import validate
    >>> tr = Trace("t", (Tensor(id="a", bytes=4),), (Op(id="f", duration=1.0, outputs=("a",)),
    ...                                              Op(id="g", duration=1.0, inputs=("a",))))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 8), Tier("DDR", 8)),
    ...               (Link("HBM", "DDR", 4.0), Link("DDR", "HBM", 4.0)))
    >>> s = Schedule("t", "h", (Run(op="f"), Copy(id="c", tensor="a", src="HBM", dst="DDR",
    ...                                             free_src=True, after=("f",)),
    ...                         Copy(id="d", tensor="a", src="DDR", dst="HBM", after=("c",)),
    ...                         Run(op="g", after=("d",))))
    >>> rep = validate(tr, hw, s)
    >>> sorted(residency(tr, hw, s, rep, 1.5)[0]), sorted(residency(tr, hw, s, rep, 2.5)[0])
    (['DDR'], ['DDR', 'HBM'])
    """
    C = hardware.compute_tier
    acts = schedule.actions if actions is None else actions
    tm = _times(report) if times is None else times
    held: dict[int, set[str]] = {}
    if start is None:
        for t, tensor in enumerate(trace.tensors):
            if trace.producer[t] < 0 and trace.death[t] != AT_START:
                held[t] = {tensor.initial_tier or C}
    else:
        held = {t: set(v) for t, v in start.items()}
    events: list[tuple[float, int, int, Any]] = []
    for seq, a in enumerate(acts):
        if a.id not in tm:
            continue
        st, en, _ = tm[a.id]
        if st >= cutoff:
            continue
        if isinstance(a, Free):
            events.append((st, 1, seq, a))
        else:
            events.append((en, 0, seq, a))
            if isinstance(a, Run) and trace.op_updates[trace.op_index[a.op]]:
                events.append((st, 2, seq, a))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    ti = trace.tensor_index
    for _, phase, _, a in events:
        if isinstance(a, Run):
            i = trace.op_index[a.op]
            if phase == 2:
                for t in trace.op_updates[i]:
                    held[t] = {C}
                continue
            for t in trace.op_writes[i]:
                held.setdefault(t, set()).add(C)
            for t in trace.dies_after[i]:
                held.pop(t, None)
        elif isinstance(a, Recompute):
            for t in trace.op_writes[trace.op_index[a.op]]:
                if t in held or trace.producer[t] >= 0:
                    held.setdefault(t, set()).add(C)
        elif isinstance(a, Copy):
            t = ti[a.tensor]
            s = held.setdefault(t, set())
            s.add(a.dst)
            if a.free_src:
                s.discard(a.src)
        else:
            s = held.get(ti[a.tensor])
            if s is not None:
                s.discard(a.tier)
    return {t: frozenset(v) for t, v in held.items() if v}


def cut_window(instance: Instance, schedule: Schedule, report: Report, start: int, stop: int) -> Window:
    """The sub-instance of ops ``start .. stop - 1`` of a valid schedule (see the module docstring).

    Raises
    ------
    _Skip
        When the window cannot be expressed (a tensor used in it is held nowhere at the cut: the
        old window recomputes it from outside).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Schedule, Run
    >>> from solver.timing import validate
    >>> tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
    ...            (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, inputs=("a",), outputs=("b",)),
    ...             Op(id="h", duration=1.0, inputs=("a", "b"))))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 8),))
    >>> s = Schedule("t", "h", (Run(op="f"), Run(op="g"), Run(op="h")))
    >>> w = cut_window(Instance(tr, hw), s, validate(tr, hw, s), 1, 2)
    >>> [(x.id, x.initial_tier, x.persistent, x.final_tier) for x in w.instance.trace.tensors]
    [('a', 'HBM', True, 'HBM'), ('b', None, True, 'HBM')]
    """
    tr, hw = instance.trace, instance.hardware
    C = hw.compute_tier
    n = len(tr.ops)
    tm = _times(report)
    t_a = tm[_run_id(schedule, tr.ops[start].id)][0]
    t_b = tm[_run_id(schedule, tr.ops[stop].id)][0] if stop < n else math.inf
    before = residency(tr, hw, schedule, report, t_a)
    after = residency(tr, hw, schedule, report, t_b)
    touched: set[int] = set()
    for i in range(start, stop):
        touched.update(tr.op_reads[i])
        touched.update(tr.op_writes[i])
    needed_after = {t for t in range(len(tr.tensors))
                    if tr.death[t] != AT_START and (tr.tensors[t].persistent or tr.death[t] >= stop)
                    and (tr.producer[t] < stop)}
    # tensors alive across the window that hold compute-tier memory before or after it
    keep = sorted(touched | {t for t in needed_after if t in before
                             and (C in before[t] or C in after.get(t, frozenset()))})
    tensors: list[Tensor] = []
    hidden: dict[int, frozenset[str]] = {}
    drop: list[tuple[int, str]] = []
    redo: list[int] = []
    for t in keep:
        x = tr.tensors[t]
        inside = start <= tr.producer[t] < stop
        init = None
        if not inside:
            held = before.get(t, frozenset())
            if not held:
                held = _recompute_at_cut(tr, hw, before, t, start, stop)
                redo.append(tr.producer[t])
                before[t] = held
            if C in held:
                init = C
            else:
                direct = [y for y in sorted(held) if hw.link(y, C) is not None]
                init = direct[0] if direct else sorted(held)[0]
            if len(held) > 1:
                hidden[t] = held - {init}
        persistent, final = False, None
        if t in needed_after:
            end = after.get(t, frozenset())
            if end:
                persistent = True
                final = C if C in end else sorted(end)[0]
            elif t not in touched:
                drop.extend((t, y) for y in sorted(before.get(t, ())))
                continue
        tensors.append(Tensor(id=x.id, bytes=x.bytes, kind=x.kind, initial_tier=init, persistent=persistent,
                              final_tier=final))
    ids = {x.id for x in tensors}
    ops = []
    for op in tr.ops[start:stop]:
        ops.append(Op(id=op.id, duration=op.duration, kind=op.kind, inputs=tuple(v for v in op.inputs if v in ids),
                      outputs=tuple(v for v in op.outputs if v in ids),
                      updates=tuple(v for v in op.updates if v in ids), workspace=op.workspace,
                      recomputable=op.recomputable))
    try:
        sub = Trace(f"{tr.name}[{start}:{stop}]", tuple(tensors), tuple(ops))
    except (ValueError, TypeError) as exc:
        raise _Skip(f"the window's trace is not well formed: {exc}") from exc
    return Window(start, stop, Instance(sub, hw, dict(instance.capacity)), before, after, hidden, tuple(drop),
                  tuple(dict.fromkeys(redo)))


def _recompute_at_cut(trace: Trace, hardware: Hardware, before: Mapping[int, frozenset[str]], t: int,
                      start: int, stop: int) -> frozenset[str]:
    """Tensor ``t`` is used in the window but held nowhere at its start (the old window recomputed
    it): recompute its producer at the cut, which needs a recomputable single-output producer
    whose inputs are in the compute tier there."""
    C = hardware.compute_tier
    p = trace.producer[t]
    x = trace.tensors[t].id
    if p < 0 or not trace.ops[p].effective_recomputable:
        raise _Skip(f"tensor {x!r} is used in the window but held nowhere at its start")
    alive = [u for u in trace.op_writes[p] if u == t or trace.death[u] >= start]
    if len(alive) > 1:
        raise _Skip(f"tensor {x!r} is held nowhere at the window's start and its producer has other live outputs")
    missing = [trace.tensors[u].id for u in trace.op_reads[p] if C not in before.get(u, frozenset())]
    if missing:
        raise _Skip(f"tensor {x!r} is held nowhere at the window's start and its producer's inputs "
                    f"({', '.join(missing)}) are not in {C}")
    return frozenset({C})


def _run_id(schedule: Schedule, op: str) -> str:
    for a in schedule.actions:
        if isinstance(a, Run) and a.op == op:
            return a.id
    raise _Skip(f"the schedule does not run op {op!r}")


def stitch(instance: Instance, schedule: Schedule, report: Report, window: Window,
           plan: Schedule) -> Schedule:
    """The schedule with the window's plan in place of the old window (see the module docstring).

    Raises
    ------
    _Skip
        When the state the suffix expects cannot be restored by one copy per missing tier.
    """
    tr, hw = instance.trace, instance.hardware
    C = hw.compute_tier
    n = len(tr.ops)
    tm = _times(report)
    t_a = tm[_run_id(schedule, tr.ops[window.start].id)][0]
    t_b = tm[_run_id(schedule, tr.ops[window.stop].id)][0] if window.stop < n else math.inf
    prefix, old, suffix = [], [], []
    for a in schedule.actions:
        st = tm[a.id][0] if a.id in tm else math.inf
        (prefix if st < t_a else suffix if st >= t_b else old).append(a)
    taken = {a.id for a in schedule.actions}
    serial = itertools.count(1)

    def fresh(base: str) -> str:
        while True:
            cand = f"{base}~w{next(serial)}"
            if cand not in taken:
                taken.add(cand)
                return cand

    def tails(acts: Sequence[Any]) -> list[str]:
        """The last action on each stream."""
        last = {_stream(hw, a): a.id for a in acts if not isinstance(a, Free)}
        return list(last.values())

    barrier1 = tails(prefix)
    new: list[Any] = []
    for t, tier in window.drop_at_cut:
        new.append(Free(id=fresh(f"free-{tr.tensors[t].id}"), tensor=tr.tensors[t].id, tier=tier,
                        after=tuple(barrier1) or (prefix[-1].id,)))
    for p in window.recompute_at_cut:
        rc = Recompute(id=fresh(f"recompute-{tr.ops[p].id}"), op=tr.ops[p].id, after=tuple(barrier1))
        new.append(rc)
    barrier1 = barrier1 + [a.id for a in new if isinstance(a, Recompute)]
    # ---- the window's plan: fresh ids, the barrier, hidden copies ------------------------------
    sub_rep = validate(window.instance.trace, hw, plan)
    if not sub_rep.valid:
        raise _Skip("the window's plan is not valid for its sub-instance")
    sub_tm = _times(sub_rep)
    rename: dict[str, str] = {}
    plan_copies = {a.id for a in plan.actions if isinstance(a, Copy)}
    for a in plan.actions:
        rename[a.id] = a.id if isinstance(a, Run) else fresh(a.id)
    dropped: dict[str, tuple[str, ...]] = {}
    hidden = {tr.tensors[t].id: set(v) for t, v in window.hidden.items()}
    updates_at: dict[str, list[float]] = {}
    for a in plan.actions:
        if isinstance(a, Run):
            for u in window.instance.trace.op(a.op).updates:
                updates_at.setdefault(u, []).append(sub_tm[a.id][0])
    body: list[Any] = []
    early: dict[str, tuple[float, float, str]] = {}
    for a in plan.actions:
        deps = tuple(dict.fromkeys(d2 for d in a.after for d2 in dropped.get(d, (rename[d],))))
        if isinstance(a, Copy) and a.dst in hidden.get(a.tensor, ()):
            st = sub_tm[a.id][0]
            if not any(u <= st for u in updates_at.get(a.tensor, ())):
                # the destination already holds this very data: no copy, but the source is released
                if a.free_src:
                    body.append(Free(id=rename[a.id], tensor=a.tensor, tier=a.src, after=deps or tuple(barrier1)))
                else:
                    dropped[a.id] = deps
                continue
        kw: dict[str, Any] = {"after": tuple(dict.fromkeys(deps + tuple(barrier1)))}
        if isinstance(a, Run):
            body.append(Run(op=a.op, id=a.id, **kw))
        elif isinstance(a, Recompute):
            body.append(Recompute(id=rename[a.id], op=a.op, **kw))
        elif isinstance(a, Copy):
            body.append(Copy(id=rename[a.id], tensor=a.tensor, src=a.src, dst=a.dst, free_src=a.free_src, **kw))
        else:
            body.append(Free(id=rename[a.id], tensor=a.tensor, tier=a.tier, after=kw["after"] or (prefix[-1].id,)))
    # tensors the suffix recomputes die early in the sub-instance: release them where they die there
    sub = window.instance.trace
    for j, x in enumerate(sub.tensors):
        t = tr.tensor_index[x.id]
        d = sub.death[j]
        if x.persistent or d == AT_START or not (tr.tensors[t].persistent or tr.death[t] >= window.stop):
            continue
        body.append(Free(id=fresh(f"die-{x.id}"), tensor=x.id, tier=C, after=(sub.ops[d].id,)))
        plan_times_free = sub_tm[sub.ops[d].id]
        early[body[-1].id] = (plan_times_free[1], plan_times_free[1], "")
    new.extend(body)
    # ---- repairs: the state the suffix expects ----------------------------------------------
    start_state = {t: frozenset(v) for t, v in window.before.items()}
    for t, tier in window.drop_at_cut:
        start_state[t] = start_state.get(t, frozenset()) - {tier}
    back = {v: k for k, v in rename.items()}
    new_tm: dict[str, tuple[float, float, str]] = {}
    for x in body:
        if x.id in early:
            new_tm[x.id] = early[x.id]
            continue
        st, en, stream = sub_tm[back[x.id]]
        new_tm[x.id] = (en, en, stream) if isinstance(x, Free) and back[x.id] in plan_copies else (st, en, stream)
    state = residency(tr, hw, schedule, report, math.inf, start=start_state, actions=new, times=new_tm)
    barrier2 = tails(new) or barrier1
    repairs: list[Any] = []
    frees: list[Any] = []
    for t, want in window.after.items():
        if tr.death[t] != AT_START and not tr.tensors[t].persistent and tr.death[t] < window.stop:
            continue
        have = state.get(t, frozenset())
        tid = tr.tensors[t].id
        for y in sorted(want - have):
            src = next((s for s in sorted(have, key=lambda s: s != C) if hw.link(s, y) is not None), None)
            if src is None:
                raise _Skip(f"tensor {tid!r} must be in {y} after the window and no link leads there")
            repairs.append(Copy(id=fresh(f"fix-{tid}"), tensor=tid, src=src, dst=y, after=tuple(barrier2)))
    for t, have in state.items():
        want = window.after.get(t, frozenset())
        alive_after = tr.tensors[t].persistent or tr.death[t] >= window.stop
        if not alive_after:
            continue
        for y in sorted(have - want):
            tid = tr.tensors[t].id
            deps = tuple(barrier2) + tuple(r.id for r in repairs if r.tensor == tid)
            frees.append(Free(id=fresh(f"drop-{tid}"), tensor=tid, tier=y, after=deps))
    barrier3 = list(dict.fromkeys(barrier2 + [r.id for r in repairs] + [f.id for f in frees]))
    # ---- the suffix waits for all of it ---------------------------------------------------------
    old_ids = {a.id for a in old}
    seen: set[str] = set()
    tail: list[Any] = []
    for a in suffix:
        deps = [d for d in a.after if d not in old_ids]
        key = _stream(hw, a)
        if key is None or key not in seen or len(deps) != len(a.after):
            deps = list(dict.fromkeys(deps + barrier3))
        if key is not None:
            seen.add(key)
        tail.append(_with_after(a, tuple(deps)))
    actions = tuple(prefix) + tuple(new) + tuple(repairs) + tuple(frees) + tuple(tail)
    return Schedule(schedule.trace, schedule.hardware, actions, dict(schedule.capacity), schedule.solver)


def _stream(hardware: Hardware, a: Any) -> str | None:
    """The stream an action runs on, as the validator names it (None for a free)."""
    if isinstance(a, Free):
        return None
    if isinstance(a, Copy):
        link = hardware.link(a.src, a.dst)
        return link.stream if link is not None else f"{a.src}->{a.dst}"
    return "compute"


def _with_after(a: Any, after: tuple[str, ...]) -> Any:
    """The action with another ``after`` list."""
    return msgspec.structs.replace(a, after=after)


def _stalls(trace: Trace, schedule: Schedule, report: Report) -> list[float]:
    """Per op, the compute stream's idle time just before its run."""
    tm = _times(report)
    out: list[float] = []
    prev_end = 0.0
    runs = {a.op: a.id for a in schedule.actions if isinstance(a, Run)}
    for op in trace.ops:
        st, en, _ = tm[runs[op.id]]
        out.append(max(0.0, st - prev_end))
        prev_end = en
    return out


def improve_by_windows(instance: Instance, schedule: Schedule, solve: SubSolver, deadline: float,
                       size: Callable[[Instance], int] | None = None, max_size: int = 4000,
                       window_ops: int = 64) -> SearchResult:
    """Improve a valid schedule window by window until ``deadline`` (``time.perf_counter()``).

    Windows are tried where the compute stream waits longest (the stalls before each run, summed
    over the window), each re-planned by ``solve`` within a share of the time left; ``size``
    (the sub-instance's model size) halves the window until it is at most ``max_size``.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Schedule, Run
    >>> tr = Trace("t", (Tensor(id="a", bytes=4),), (Op(id="f", duration=1.0, outputs=("a",)),
    ...                                              Op(id="g", duration=1.0, inputs=("a",))))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 8),))
    >>> s = Schedule("t", "h", (Run(op="f"), Run(op="g")))
    >>> res = improve_by_windows(Instance(tr, hw), s, lambda i, t: None, time.perf_counter() + 1)
    >>> res.makespan, res.stats["accepted"]
    (2.0, 0)
    """
    tr = instance.trace
    n = len(tr.ops)
    t_v = time.perf_counter()
    rep = validate(tr, instance.hardware, schedule)
    # each window ends with a stitch and a validation of the whole schedule: keep time for both
    margin = 0.5 + 3.0 * (time.perf_counter() - t_v)
    if not rep.valid:
        raise ValueError("improve_by_windows needs a valid schedule")
    best, best_ms = schedule, rep.metrics.makespan
    stats: dict[str, Any] = {"start_makespan": best_ms, "windows": 0, "accepted": 0, "rejected": {}}
    w = max(1, min(window_ops, n))
    tried: set[tuple[int, int]] = set()

    def reject(why: str, detail: str = "") -> None:
        stats["rejected"][why] = stats["rejected"].get(why, 0) + 1
        if detail:
            stats.setdefault("examples", {}).setdefault(why, detail)

    while n and time.perf_counter() < deadline - margin - 1.0:
        stalls = _stalls(tr, best, rep)
        if sum(stalls) <= 0:
            break
        cands = []
        for a in range(0, n, max(1, w // 2)):
            b = min(n, a + w)
            if (a, b) not in tried:
                cands.append((-sum(stalls[a:b]), a, b))
        cands = [c for c in cands if c[0] < 0]
        if not cands:
            if w <= MIN_WINDOW_OPS:
                break
            w = max(MIN_WINDOW_OPS, w // 2)    # other cut points, smaller models
            continue
        cands.sort()
        _, a, b = cands[0]
        tried.add((a, b))
        stats["windows"] += 1
        try:
            win = cut_window(instance, best, rep, a, b)
        except _Skip as exc:
            reject("cut", str(exc))
            continue
        if size is not None and size(win.instance) > max_size and w > 2:
            w = max(2, w // 2)
            tried.discard((a, b))
            stats["windows"] -= 1
            continue
        left = deadline - time.perf_counter() - margin
        if left < 1.0:
            break
        plan = solve(win.instance, max(1.0, min(left, max(2.0, min(WINDOW_MAX_S, left / 6)))))
        if plan is None:
            reject("no plan")
            continue
        try:
            cand = stitch(instance, best, rep, win, plan)
        except _Skip as exc:
            reject("stitch", str(exc))
            continue
        r2 = validate(tr, instance.hardware, cand)
        if not r2.valid:
            reject(f"invalid ({r2.errors[0].code.value})", f"{r2.errors[0].action}: {r2.errors[0].message}")
            continue
        if r2.metrics.makespan < best_ms * (1 - 1e-9):
            best, best_ms, rep = cand, r2.metrics.makespan, r2
            stats["accepted"] += 1
            tried = {k for k in tried if k[1] <= a or k[0] >= b}
        else:
            reject("not shorter")
    stats["window_ops"] = w
    stats["makespan"] = best_ms
    return SearchResult(best, best_ms, stats)
