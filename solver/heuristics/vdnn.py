"""``vdnn``: layer-wise offload of activations (Rhu et al., vDNN, MICRO 2016).

vDNN (the "all layers" policy) copies each layer's feature maps to host memory
during the forward pass, releases them when the forward pass no longer needs them
(the next layer waits for the copy if it is slower than the layer), and prefetches
them one layer ahead of their backward use: the copy for layer ``l`` starts when the
backward pass of layer ``l + 1`` starts.

Here: on a trace with forward/backward structure (:mod:`solver.heuristics.phases`),
every activation or input tensor read in the backward pass is copied out after its
producer, released after its last forward use (the next op waits for the copy), and
copied back when the backward layer before the one that reads it starts. On a trace
without that structure, every activation is offloaded across every gap between two
uses that leaves room, and prefetched one op ahead. Nothing else moves (tensors that
start elsewhere are fetched just in time, persistent ones written back to their final
tier). The policy ignores the capacity: when the result does not fit, the status is
``infeasible``. Under a time limit it polls the clock every
:data:`solver.heuristics.greedy.POLL_EVERY` offloads and stops with status ``timeout`` when the
time is up.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> from solver.methods import Instance, SolveOptions
>>> tr = Trace("t", (Tensor(id="a1", bytes=4, kind="activation"), Tensor(id="g", bytes=1, kind="gradient")),
...            (Op(id="f1", duration=1.0, outputs=("a1",)), Op(id="f2", duration=1.0),
...             Op(id="f3", duration=1.0), Op(id="b1", duration=1.0, inputs=("a1",), outputs=("g",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 64), Tier("DDR", 64)),
...               (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0)))
>>> res = plan(Instance(tr, hw), SolveOptions())
>>> res.status, sorted(a.id.split("#")[0] for a in res.schedule.actions if "#" in a.id)
('feasible', ['in', 'out'])
"""

from __future__ import annotations

from solver.deadline import OutOfTime, Poll, deadline_of
from solver.heuristics.engine import Engine, PlanningError
from solver.heuristics.greedy import POLL_EVERY, op_overflow, timed_out
from solver.heuristics.phases import has_structure, layer_key, op_phases
from solver.methods import Instance, PlanResult, SolveOptions

OFFLOAD_KINDS = ("activation", "input")


def plan(instance: Instance, options: SolveOptions) -> PlanResult:
    """Plan with the vDNN policy (see the module docstring)."""
    tick = Poll(deadline_of(options), POLL_EVERY)
    try:
        eng = Engine(instance)
        msg = op_overflow(eng)
        if msg:
            return PlanResult("infeasible", message=msg)
        eng.initial_fetches(tick=tick)
        gaps = _gaps(eng)
        stats = {"offloaded": 0}
        for t, a, b, j in sorted(gaps, key=lambda g: (g[1], g[0])):
            tick()
            opt = eng.offload_option(t, a, b, None, force_m=a + 1, force_j=j)
            if opt is not None and opt.m <= opt.j:
                eng.commit(opt)
                stats["offloaded"] += 1
        _tails(eng)
    except PlanningError as exc:
        return PlanResult("infeasible", message=str(exc))
    except OutOfTime:
        return timed_out("vdnn", tick)
    return eng.result("vdnn", stats)


def _gaps(eng: Engine) -> list[tuple[int, int, int, int]]:
    """(tensor, last touch, next touch, prefetch issue slot) of each offload vDNN makes."""
    f = eng.f
    tr = f.trace
    phases = op_phases(tr)
    out = []
    if has_structure(phases):
        # backward layer runs: consecutive backward ops of one layer; prefetch issue = the op before
        # the previous backward run starts
        run_start: list[int] = [0] * f.n
        prev_start = -1
        cur_start = -1
        cur_key = None
        issue_for: list[int] = [-1] * f.n
        for i, op in enumerate(tr.ops):
            if phases[i] != "B":
                cur_key = None
                continue
            k = layer_key(op.id)
            if k != cur_key:
                prev_start, cur_start, cur_key = (cur_start if cur_start >= 0 else i), i, k
            run_start[i] = cur_start
            issue_for[i] = prev_start - 1
        for t, tensor in enumerate(tr.tensors):
            if tensor.kind not in OFFLOAD_KINDS:
                continue
            us = tr.users[t]
            touches = ([tr.producer[t]] if tr.producer[t] >= 0 else []) + list(us)
            for k in range(1, len(touches)):
                a, b = touches[k - 1], touches[k]
                if phases[b] == "B" and phases[a] != "B":
                    j = min(max(issue_for[b], a + 1), b - 1)
                    if a + 1 <= j:
                        out.append((t, a, b, j))
    else:
        for t, tensor in enumerate(tr.tensors):
            if tensor.kind != "activation":
                continue
            touches = ([tr.producer[t]] if tr.producer[t] >= 0 else []) + list(tr.users[t])
            for k in range(1, len(touches)):
                a, b = touches[k - 1], touches[k]
                if b - a >= 3:
                    out.append((t, a, b, b - 2))
    return out


def _tails(eng: Engine) -> None:
    """Settle every persistent tensor after its last touch (write-backs, drops)."""
    f = eng.f
    tr = f.trace
    for t, tensor in enumerate(tr.tensors):
        if not tensor.persistent:
            continue
        touches = ([tr.producer[t]] if tr.producer[t] >= 0 else []) + list(tr.users[t])
        eng.tail(t, touches[-1] if touches else -1)
