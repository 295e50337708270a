"""``keep``: no offload; every tensor stays in (or is fetched once into) the compute tier.

The schedule is :func:`solver.plans.keep_schedule`: tensors that start elsewhere are
fetched at time 0, persistent tensors are written back to their final tier after their
last use, and nothing else moves. It is one linear pass (the fallback warm start of the exact
methods when ``greedy`` runs out of time), so it does not poll a time limit.
"""

from __future__ import annotations

from solver.feasibility import infeasible_reason
from solver.methods import Instance, PlanResult, SolveOptions
from solver.model import Copy
from solver.plans import keep_schedule
from solver.timing import validate


def plan(instance: Instance, options: SolveOptions) -> PlanResult:
    """Plan without offloading.

    Infeasible (with the peak and capacity in the message) when the no-offload peak exceeds
    the compute tier's capacity, or when the copies it needs overfill another tier.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, inputs=("x",)),))
    >>> plan(Instance(tr, Hardware("h", "HBM", (Tier("HBM", 4),))), SolveOptions()).status
    'infeasible'
    """
    tr, hw = instance.trace, instance.hardware
    cap = instance.compute_capacity
    why = infeasible_reason(tr, hw)
    if why:
        return PlanResult("infeasible", message=f"keep: {why}")
    if tr.no_offload_peak > cap:
        return PlanResult("infeasible", message=f"keep needs {tr.no_offload_peak} bytes in {hw.compute_tier} "
                                                f"(the no-offload peak) but its capacity is {cap}")
    try:
        sched = keep_schedule(tr, hw, instance.capacity, {"method": "keep", "status": "feasible"})
    except ValueError as exc:
        return PlanResult("infeasible", message=str(exc))
    if _may_overfill(instance, sched):
        rep = validate(tr, hw, sched)
        if not rep.valid:
            e = rep.errors[0]
            return PlanResult("infeasible", message=f"keep: its fetches and write-backs do not fit: {e.message}")
    return PlanResult("feasible", sched)


def _may_overfill(instance: Instance, sched) -> bool:
    """Whether the copies into non-compute tiers could exceed a capacity (a cheap upper bound)."""
    tr, hw = instance.trace, instance.hardware
    c = hw.compute_tier
    worst = {t.name: 0 for t in hw.tiers}
    for i, t in enumerate(tr.tensors):
        if tr.birth[i] < 0 and tr.death[i] >= 0:
            worst[t.initial_tier or c] += t.bytes
    size = {t.id: t.bytes for t in tr.tensors}
    for a in sched.actions:
        if isinstance(a, Copy) and a.dst != c:
            worst[a.dst] += size[a.tensor]
    return any(worst[name] > hw.capacity[name] for name in worst if name != c)
