"""Brute-force enumeration of copy schedules on tiny instances (a referee for the formulations).

The space enumerated: which candidate intervals leave the compute tier; the order of the copies
on each link stream; for each copy back into the compute tier, the action after whose end it is
issued (an op's end or a write's end, or none); and for each op at a critical position, the
write (if any) it waits for, so that the compute stream may stall until memory is released. A write (the copy out of an epoch, made
at most once and kept) starts as soon as its tensor is valid and its stream is free (starting a
write later never helps); a departure frees the compute-tier copy once its reader and its write
have ended; a run waits for its inputs' copies back. Every candidate schedule is scored by the
validator, which alone decides validity and makespan.

Scope: tensors produced by ops or starting in the compute tier, hardware whose copy tiers are
reachable by direct links, no recomputation. The number of schedules grows as (subsets) x
(orders) x (triggers): keep it to a few candidate intervals.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
...            (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, outputs=("b",)),
...             Op(id="h", duration=1.0, inputs=("b",)), Op(id="i", duration=1.0, inputs=("a",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 5), Tier("DDR", 100)),
...               (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0)))
>>> res = enumerate_best(tr, hw)
>>> res.makespan, res.count > 0
(5.0, True)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from solver.model import Action, Copy, Free, Hardware, Run, Schedule, Trace
from solver.timing import validate

from formulations.common import build_problem


@dataclass(frozen=True)
class BruteResult:
    """Best makespan found by enumeration (``inf`` when no schedule is valid).

    Attributes
    ----------
    makespan : float
    schedule : Schedule or None
        A best schedule.
    count : int
        Schedules validated.
    """

    makespan: float
    schedule: Schedule | None
    count: int


def enumerate_best(trace: Trace, hardware: Hardware, tier: str | None = None, max_leaving: int = 4,
                   max_count: int | None = None) -> BruteResult | None:
    """Enumerate copy schedules (see the module docstring) and return the best valid one.

    Parameters
    ----------
    trace, hardware : Trace, Hardware
    tier : str, optional
        The copy tier (default: the first non-compute tier with links both ways).
    max_leaving : int
        Largest number of intervals that leave at once.
    max_count : int, optional
        Give up (return None) after validating this many schedules.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> from solver.model import Link
    >>> hw2 = Hardware("h", "HBM", (Tier("HBM", 100), Tier("DDR", 9)), (Link("HBM", "DDR", 1.0), Link("DDR", "HBM", 1.0)))
    >>> r = enumerate_best(tr, hw2)
    >>> r.makespan, r.count
    (1.0, 1)
    """
    C = hardware.compute_tier
    if tier is None:
        tier = next(t.name for t in hardware.tiers
                    if t.name != C and hardware.link(C, t.name) and hardware.link(t.name, C))
    X = tier
    problem = build_problem(trace, hardware, recompute=False)
    cands = [gi for gi in problem.candidate_gaps()
             if not problem.gaps[gi].final and not problem.gaps[gi].absent]
    ops = trace.ops
    best_ms, best_s, count = math.inf, None, 0
    for k in range(0, min(max_leaving, len(cands)) + 1):
        for subset in itertools.combinations(cands, k):
            epochs = sorted({problem.gaps[g].epoch for g in subset})
            writes = [e for e in epochs if problem.epochs[e].home != X]
            for w_order in itertools.permutations(writes):
                for f_order in itertools.permutations(subset):
                    trig_choices = []
                    for g in f_order:
                        gap = problem.gaps[g]
                        opts: list[str | None] = [None]
                        opts += [ops[i].id for i in range(max(gap.prev, 0), gap.next)]
                        opts += [f"w{e}" for e in writes]
                        trig_choices.append(opts)
                    stall_ops = []
                    stall_choices = []
                    for i in range(len(ops)):
                        if not problem.is_critical(i):
                            continue
                        ws = [f"w{problem.gaps[g].epoch}" for g in subset
                              if problem.gaps[g].prev < i < problem.gaps[g].next
                              and problem.epochs[problem.gaps[g].epoch].home != X]
                        if ws:
                            stall_ops.append(i)
                            stall_choices.append([None] + sorted(set(ws)))
                    for trig in itertools.product(*trig_choices):
                        for stall in itertools.product(*stall_choices):
                            s = _build(trace, problem, X, w_order, f_order, trig, dict(zip(stall_ops, stall)))
                            rep = validate(trace, hardware, s)
                            count += 1
                            if max_count is not None and count > max_count:
                                return None
                            if rep.valid and rep.metrics.makespan < best_ms:
                                best_ms, best_s = rep.metrics.makespan, s
    return BruteResult(best_ms, best_s, count)


def _build(trace: Trace, problem, X: str, w_order, f_order, trig, stall) -> Schedule:
    C = problem.compute
    ops = trace.ops
    acts: list[Action] = []
    for e in w_order:
        ep = problem.epochs[e]
        tid = trace.tensors[ep.tensor].id
        after = (ops[ep.start].id,) if ep.start >= 0 else ()
        acts.append(Copy(id=f"w{e}", tensor=tid, src=C, dst=X, after=after))
    waits: dict[int, list[str]] = {}
    for g, tg in zip(f_order, trig):
        gap = problem.gaps[g]
        tid = trace.tensors[gap.tensor].id
        deps = [ops[gap.prev].id] if gap.prev >= 0 else []
        if problem.epochs[gap.epoch].home != X:
            deps.append(f"w{gap.epoch}")
        acts.append(Free(id=f"d{g}", tensor=tid, tier=C, after=tuple(deps)))
        fa = [f"d{g}"] + ([f"w{gap.epoch}"] if problem.epochs[gap.epoch].home != X else [])
        if tg is not None:
            fa.append(tg)
        acts.append(Copy(id=f"p{g}", tensor=tid, src=X, dst=C, after=tuple(dict.fromkeys(fa))))
        waits.setdefault(gap.next, []).append(f"p{g}")
    for i, op in enumerate(ops):
        extra = (stall[i],) if stall.get(i) else ()
        acts.append(Run(op=op.id, after=tuple(waits.get(i, ())) + extra))
    return Schedule(trace.name, "hw", tuple(acts))


def random_tiny(seed: int, ops: int = 5, max_candidates: int = 4) -> tuple[Trace, Hardware] | None:
    """A random tiny two-tier instance that needs offloading (None when the draw has none, or
    has more than ``max_candidates`` candidate intervals).

    Sizes and durations are whole numbers and the links move 2 bytes per second, so every time
    is a multiple of 0.5 s (an exact clock for CP-SAT).

    Examples
    --------
    >>> inst = next(x for x in (random_tiny(s) for s in range(50)) if x is not None)
    >>> inst[0].no_offload_peak > inst[1].capacity["HBM"]
    True
    """
    import random

    from solver.model import Link, Op, Tensor, Tier

    rng = random.Random(seed)
    tensors: list[Tensor] = []
    op_list: list[Op] = []
    outs: list[str] = []
    for i in range(ops):
        inputs = []
        if outs:
            inputs.append(outs[-1])
        if len(outs) >= 2 and rng.random() < 0.6:
            inputs.append(outs[rng.randrange(0, len(outs) - 1)])
        tid = f"t{i}"
        tensors.append(Tensor(id=tid, bytes=rng.randint(1, 6)))
        outs.append(tid)
        op_list.append(Op(id=f"o{i}", duration=float(rng.randint(1, 4)), inputs=tuple(dict.fromkeys(inputs)),
                          outputs=(tid,)))
    trace = Trace(f"rand{seed}", tuple(tensors), tuple(op_list))
    from formulations.common import op_requirement
    low = max(op_requirement(trace, i) for i in range(ops))
    peak = trace.no_offload_peak
    if peak <= low:
        return None
    cap = low + int(rng.random() * (peak - low))
    if cap >= peak:
        return None
    hw = Hardware("two-tier", "HBM", (Tier("HBM", cap), Tier("DDR", 10 ** 6)),
                  (Link("HBM", "DDR", 2.0), Link("DDR", "HBM", 2.0)))
    p = build_problem(trace, hw, recompute=False)
    nc = len([g for g in p.candidate_gaps() if not p.gaps[g].final])
    if nc == 0 or nc > max_candidates:
        return None
    return trace, hw
