"""``keep``: no offload; every tensor stays in (or is fetched once into) the compute tier."""

from __future__ import annotations

from solver.methods import Instance, PlanResult, SolveOptions
from solver.plans import keep_schedule


def plan(instance: Instance, options: SolveOptions) -> PlanResult:
    """Plan without offloading.

    Infeasible (with the peak and capacity in the message) when the no-offload peak exceeds
    the compute tier's capacity.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, inputs=("x",)),))
    >>> plan(Instance(tr, Hardware("h", "HBM", (Tier("HBM", 4),))), SolveOptions()).status
    'infeasible'
    """
    tr, hw = instance.trace, instance.hardware
    cap = instance.compute_capacity
    if tr.no_offload_peak > cap:
        return PlanResult("infeasible", message=f"keep needs {tr.no_offload_peak} bytes in {hw.compute_tier} "
                                                f"(the no-offload peak) but its capacity is {cap}")
    try:
        sched = keep_schedule(tr, hw, instance.capacity, {"method": "keep", "status": "feasible"})
    except ValueError as exc:
        return PlanResult("infeasible", message=str(exc))
    return PlanResult("feasible", sched)
