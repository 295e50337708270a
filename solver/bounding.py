"""The bounds of an instance, by stage: one function for ``tierplan solve`` and ``tierplan bound``.

A *stage* names how far to go (:data:`STAGES`):

* ``cheap``: the registered bounds of :mod:`solver.bounds` (compute, traffic, capacity), milliseconds;
* ``lp``: plus the window LP relaxation of the timing model (:func:`formulations.relax.window_bound`),
  seconds even on small traces;
* ``milp``: plus its integral version, tighter and slower.

Every stage first checks :func:`solver.feasibility.infeasible_reason` (what starts in a tier, or
one op's own footprint, cannot fit), so both commands agree on what is infeasible.

Every figure is a lower bound on the makespan of *every* valid schedule, so the largest is the
bound an answer's gap is measured against; an infinite one proves that nothing fits. The LP and
MILP share the caller's deadline; one that runs out of time contributes nothing (it is still
honest: the cheap bounds hold).

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier
>>> from solver.methods import Instance
>>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=2.0, inputs=("x",)),))
>>> b = instance_bounds(Instance(tr, Hardware("h", "HBM", (Tier("HBM", 100),))))
>>> b.status, b.bound, b.best
('bound', 2.0, 'compute')
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from solver.bounds import lower_bounds
from solver.deadline import Deadline
from solver.feasibility import infeasible_reason
from solver.methods import Instance

#: the stages, cheapest first
STAGES: tuple[str, ...] = ("cheap", "lp", "milp")


@dataclass(frozen=True)
class BoundSet:
    """The bounds of one instance.

    Attributes
    ----------
    stage : str
        The last stage asked for (see :data:`STAGES`).
    bounds : Mapping[str, float]
        Seconds by name (``inf``: nothing fits).
    status : str
        ``bound``, or ``infeasible`` when one of them proves that nothing fits.
    best : str or None
        The name of the largest finite bound; when infeasible, of the proof: a bound's name, or
        ``feasibility`` (:func:`solver.feasibility.infeasible_reason`: what starts in a tier, or
        one op's own footprint, does not fit).
    message : str
        Why the instance is infeasible, or what a relaxation reported.
    stats : Mapping[str, Any]
        ``relaxation`` / ``relaxation_milp`` (statuses) and their solver statistics.
    """

    stage: str
    bounds: Mapping[str, float]
    status: str
    best: str | None
    message: str = ""
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def bound(self) -> float | None:
        """The largest finite bound (None when infeasible or there is none)."""
        if self.status != "bound" or self.best is None:
            return None
        return float(self.bounds[self.best])


def instance_bounds(instance: Instance, stage: str = "cheap", *, recompute: bool = True,
                    deadline: Deadline | None = None) -> BoundSet:
    """Every lower bound of ``instance`` up to ``stage``.

    Parameters
    ----------
    instance : Instance
    stage : {"cheap", "lp", "milp"}
    recompute : bool
        Whether schedules may recompute (the relaxations then allow it too).
    deadline : Deadline, optional
        The LP, then the MILP (keeping a reserve for the caller), run within it.

    Raises
    ------
    ValueError
        For an unknown stage (the message lists the valid ones).
    """
    if stage not in STAGES:
        raise ValueError(f"unknown bounds stage {stage!r}; expected one of {', '.join(STAGES)}")
    cheap = {k: float(v) for k, v in lower_bounds(instance).items()}
    reason = infeasible_reason(instance.trace, instance.hardware)
    if reason is not None:   # what starts in a tier, or one op's footprint, does not fit: no relaxation needed
        return BoundSet(stage, cheap, "infeasible", "feasibility", reason)
    bounds = dict(cheap)
    stats: dict[str, Any] = {}
    message = ""
    relaxed_infeasible = None
    if stage != "cheap" and not any(math.isinf(v) for v in cheap.values()):
        from formulations.relax import window_bound

        tr, hw = instance.trace, instance.hardware
        res = window_bound(tr, hw, recompute=recompute, deadline=deadline)
        stats.update({"relaxation": res.status, "relaxation_stats": dict(res.stats)})
        message = res.message
        if res.status == "infeasible":
            relaxed_infeasible = "window-lp"
        elif res.status == "bound":
            bounds["window-lp"] = float(res.value)
            if stage == "milp":
                mres = window_bound(tr, hw, recompute=recompute, integral=True,
                                    deadline=None if deadline is None else deadline.reserving())
                stats.update({"relaxation_milp": mres.status, "relaxation_milp_stats": dict(mres.stats)})
                if mres.status == "infeasible":
                    relaxed_infeasible = "window-milp"
                    message = mres.message
                elif mres.status == "bound":
                    bounds["window-milp"] = float(mres.value)
    proof = next((k for k, v in cheap.items() if math.isinf(v)), relaxed_infeasible)
    if proof is not None:
        return BoundSet(stage, bounds, "infeasible", proof,
                        message or f"the {proof} bound proves that nothing fits", stats)
    finite = {k: v for k, v in bounds.items() if math.isfinite(v)}
    best = max(finite, key=lambda k: finite[k]) if finite else None
    return BoundSet(stage, bounds, "bound", best, message, stats)
