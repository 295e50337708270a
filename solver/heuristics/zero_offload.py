"""``zero-offload``: optimizer states live off the compute tier (ZeRO-Offload style placement).

ZeRO-Offload (Ren et al., USENIX ATC 2021) keeps the optimizer states (fp32 master
weights, Adam moments) in host memory, so the optimizer step's state traffic never
occupies accelerator memory between steps. In the timing model every op runs on the
compute tier, so here each optimizer state is moved out of the compute tier whenever
it is not in use: copied out as early as possible (at time 0 when it starts there),
copied back as late as possible before the op that reads or updates it, and written
back after its last update (to its final tier, or to host memory when it has none).
Everything else stays in the compute tier (tensors that start elsewhere are fetched
just in time). When that does not fit, the status is ``infeasible``. Under a time limit it polls
the clock every :data:`solver.heuristics.greedy.POLL_EVERY` tensors and stops with status
``timeout`` when the time is up.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> from solver.methods import Instance, SolveOptions
>>> tr = Trace("t", (Tensor(id="m", bytes=16, kind="optimizer_state", persistent=True),
...                  Tensor(id="x", bytes=8)),
...            (Op(id="f1", duration=4.0, outputs=("x",)), Op(id="f2", duration=4.0), Op(id="f3", duration=4.0),
...             Op(id="adam", duration=1.0, inputs=("x",), updates=("m",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 24), Tier("DDR", 64)),
...               (Link("HBM", "DDR", 16.0), Link("DDR", "HBM", 16.0)))
>>> res = plan(Instance(tr, hw), SolveOptions())
>>> res.status, sorted(a.id.split("#")[0] for a in res.schedule.actions if "#" in a.id)
('feasible', ['in', 'out'])
"""

from __future__ import annotations

from solver.deadline import OutOfTime, Poll, deadline_of
from solver.heuristics.engine import Engine, PlanningError
from solver.heuristics.greedy import POLL_EVERY, op_overflow, timed_out
from solver.methods import Instance, PlanResult, SolveOptions

STATE_KINDS = ("optimizer_state",)


def plan(instance: Instance, options: SolveOptions) -> PlanResult:
    """Plan with optimizer states off the compute tier (see the module docstring)."""
    tick = Poll(deadline_of(options), POLL_EVERY)
    try:
        eng = Engine(instance)
        msg = op_overflow(eng)
        if msg:
            return PlanResult("infeasible", message=msg)
        eng.initial_fetches(tick=tick)
        f = eng.f
        tr = f.trace
        n = f.n
        stats = {"offloaded": 0, "states": 0}
        for t, tensor in enumerate(tr.tensors):
            tick()
            touches = ([tr.producer[t]] if tr.producer[t] >= 0 else []) + list(tr.users[t])
            if tensor.kind in STATE_KINDS:
                stats["states"] += 1
                first = -1 if not f.absent_start(t) and tr.birth[t] < 0 else None
                points = ([first] if first is not None else []) + touches
                for k in range(1, len(points)):
                    a, b = points[k - 1], points[k]
                    if b > a + 1:
                        opt = eng.offload_option(t, a, b, None)
                        if opt is not None:
                            eng.commit(opt)
                            stats["offloaded"] += 1
            if tensor.persistent:
                last = touches[-1] if touches else -1
                if eng.tail(t, last) == "optional" and tensor.kind in STATE_KINDS and last + 1 < n:
                    opt = eng.offload_option(t, last, n, None)
                    if opt is not None:
                        eng.commit(opt)
        stats["hoisted"] = eng.hoist()
    except PlanningError as exc:
        return PlanResult("infeasible", message=str(exc))
    except OutOfTime:
        return timed_out("zero-offload", tick)
    return eng.result("zero-offload", stats)
