"""The solve driver: build an instance, run a registered planner, validate, bound, report.

Every schedule a planner returns goes through the validator (:func:`solver.timing.validate`);
the makespan reported is the validator's, and a planner's invalid schedule is reported as
status ``error`` and never returned as a schedule. The bound is the largest of the
planner's own proven bound and :func:`solver.bounding.instance_bounds` (the function ``tierplan
bound`` uses: the cheap bounds, and for a heuristic the window LP or MILP that ``bounds`` asks
for; an exact planner runs those itself). For a planner that minimised
something else (``min-memory``, ``min-bytes``), the figure reported is the validator's too
(:func:`settle_objective`): the least capacity is the schedule's peak, recorded in its
``capacity`` field and validated again there.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier
>>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, outputs=("x",)),))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
>>> out = solve(make_instance(tr, hw, budget=1.0), "greedy")
>>> out.status, out.makespan, out.gap, out.schedule.solver["objective"]
('feasible', 1.0, 0.0, 1.0)
>>> make_instance(tr, hw, budget=0.5).capacity
{'HBM': 4}
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from solver.bounding import STAGES, instance_bounds
from solver.deadline import deadline_of
from solver.methods import Instance, ObjectiveResult, Planner, PlanResult, SolveOptions, get_method
from solver.model import Hardware, Schedule, Trace
from solver.timing import Report, validate
from solver.units import MAX_BYTES, format_bytes


class InstanceError(ValueError):
    """Capacity overrides or a budget that do not make sense for the hardware."""


@dataclass(frozen=True)
class SolveOutcome:
    """What a solve produced.

    Attributes
    ----------
    method, status : str
        The method and its final status (``optimal``, ``feasible``, ``infeasible``, ``timeout``,
        ``error``; ``error`` also when the planner's schedule failed validation).
    schedule : Schedule or None
        The validated schedule, its ``solver`` field filled in; None unless the status is
        ``optimal`` or ``feasible``.
    report : Report or None
        The validator's report of the planner's schedule (also when it was invalid).
    bound : float or None
        The best lower bound on the makespan; ``bounds`` has each one by name.
    gap : float or None
        ``makespan / bound - 1`` (None without a schedule or a positive finite bound).
    wall_s, plan_s, validate_s : float
        Seconds: in all, planning, validating.
    message : str
        Why, when there is no schedule.
    capacity : Mapping[str, int]
        The capacity overrides the schedule was made for (recorded in its ``capacity`` field); for
        ``min-memory`` the compute tier's entry is the least capacity found.
    stats : Mapping
        The planner's counters.
    objective_result : ObjectiveResult or None
        What the solve minimised: its kind, the validator's figure (``value``), the proven bound and
        the makespan limit (None only when the instance was refused before planning).
    """

    method: str
    status: str
    schedule: Schedule | None
    report: Report | None
    bound: float | None
    bounds: Mapping[str, float]
    gap: float | None
    wall_s: float
    plan_s: float
    validate_s: float
    message: str = ""
    capacity: Mapping[str, int] = field(default_factory=dict)
    stats: Mapping[str, Any] = field(default_factory=dict)
    objective_result: ObjectiveResult | None = None

    @property
    def ok(self) -> bool:
        """Whether there is a valid schedule."""
        return self.schedule is not None

    @property
    def makespan(self) -> float | None:
        """The validated makespan (None without a valid schedule)."""
        return self.report.metrics.makespan if self.ok and self.report is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no actions)."""
        rep = self.report
        return {
            "method": self.method, "status": self.status, "message": self.message,
            "valid": bool(rep.valid) if rep is not None else None,
            "metrics": rep.metrics.to_dict() if rep is not None and self.ok else None,
            "errors": [e.to_dict() for e in rep.errors] if rep is not None and not rep.valid else [],
            "bound": _finite(self.bound), "bounds": {k: _finite(v) for k, v in self.bounds.items()},
            "gap": self.gap, "wall_s": self.wall_s, "plan_s": self.plan_s, "validate_s": self.validate_s,
            "capacity": dict(self.capacity), "stats": dict(self.stats),
            "objective": self.objective_result.to_dict() if self.objective_result is not None else None,
        }


def _finite(x: float | None) -> float | str | None:
    if x is None:
        return None
    return x if math.isfinite(x) else "inf"


def budget_capacity(trace: Trace, budget: float) -> int:
    """``budget`` times the trace's no-offload peak, rounded up to a whole byte (exact decimal arithmetic).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op
    >>> tr = Trace("t", (Tensor(id="x", bytes=100),), (Op(id="a", duration=1.0, outputs=("x",)),))
    >>> budget_capacity(tr, 0.7), budget_capacity(tr, 0.333)
    (70, 34)
    """
    if not (budget > 0) or not math.isfinite(budget):
        raise InstanceError(f"budget must be a positive fraction of the no-offload peak, got {budget!r}")
    exact = Fraction(str(budget)) * trace.no_offload_peak
    return int(math.ceil(exact))


def make_instance(trace: Trace, hardware: Hardware, capacity_overrides: Mapping[str, int] | None = None,
                  budget: float | None = None, *, within_device: bool = False) -> Instance:
    """The instance of ``trace`` on ``hardware`` with capacity overrides and an optional budget.

    Parameters
    ----------
    capacity_overrides : Mapping[str, int], optional
        Tier name -> bytes.
    budget : float, optional
        Sets the compute tier's capacity to this fraction of ``trace.no_offload_peak``,
        rounded up to a whole byte; it replaces the compute tier's figure (as an override would).
    within_device : bool
        Refuse a budget above the device: the hardware's capacity of the compute tier, or the
        override of it when ``capacity_overrides`` raises it (a deliberate what-if). The command
        line sets it; benchmark suites and the API treat a budget as the capacity to plan for.

    Returns
    -------
    Instance
        With ``capacity_source`` saying where each tier's capacity comes from.

    Raises
    ------
    InstanceError
        An unknown tier, a negative capacity, a non-positive budget, a budget above the
        device's capacity (``within_device``), or a trace larger than the representable range.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=10),), (Op(id="a", duration=1.0, outputs=("x",)),))
    >>> make_instance(tr, Hardware("h", "HBM", (Tier("HBM", 99), Tier("DDR", 5))), {"DDR": 50}, 0.5).capacity
    {'DDR': 50, 'HBM': 5}
    """
    if trace.total_bytes > MAX_BYTES:
        raise InstanceError(f"trace {trace.name!r} holds {trace.total_bytes} B in all, more than the representable "
                            "2**53 B (docs/formats.md, Representable ranges)")
    caps: dict[str, int] = {}
    source = {name: "hardware" for name in hardware.tier_index}
    for name, size in (capacity_overrides or {}).items():
        if name not in hardware.tier_index:
            raise InstanceError(f"unknown tier {name!r}; tiers are {', '.join(hardware.tier_index)}")
        if int(size) < 0:
            raise InstanceError(f"capacity of {name} must be >= 0, got {size}")
        caps[name] = int(size)
        source[name] = "--capacity"
    if budget is not None:
        c = hardware.compute_tier
        device = caps.get(c, hardware.capacity[c])
        want = budget_capacity(trace, budget)
        if within_device and want > device:
            where = "--capacity" if c in caps else f"hardware {hardware.name!r}"
            raise InstanceError(f"budget {budget:g} x no-offload peak {format_bytes(trace.no_offload_peak)} = "
                                f"{format_bytes(want)} ({want} B) of {c}, more than the device's "
                                f"{format_bytes(device)} ({device} B, {where}); give a smaller budget, or raise "
                                f"the tier explicitly with --capacity {c}=SIZE")
        caps[c] = want
        source[c] = f"--budget {budget:g}"
    return Instance(trace, hardware.with_capacity(caps) if caps else hardware, caps, source)


def _is_exact(name: str) -> bool:
    """Whether ``name`` is a registered exact method (it runs the relaxations itself)."""
    from solver.methods import REGISTRY

    m = REGISTRY.get(name)
    return m is not None and m.exact


def solve(instance: Instance, method_name: str = "greedy", options: SolveOptions | None = None) -> SolveOutcome:
    """Run ``method_name`` on ``instance``, validate its schedule, and bound it.

    Raises
    ------
    solver.methods.UnknownMethod
        When the method is not registered (the message lists the valid ones).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, outputs=("x",)),))
    >>> out = solve(make_instance(tr, Hardware("h", "HBM", (Tier("HBM", 4),))), "keep")
    >>> out.status, out.message
    ('infeasible', "op 'a' needs 8 bytes in HBM at once (inputs 0 + outputs 8 + workspace 0) but HBM holds 4 bytes")
    """
    method = get_method(method_name)
    try:
        planner: Planner = method.load()
    except Exception as exc:  # noqa: BLE001 - a broken registry entry is reported, not raised
        load_error = f"{method.name} could not be loaded: {type(exc).__name__}: {exc}"

        def planner(instance: Instance, options: SolveOptions) -> PlanResult:
            return PlanResult("error", message=load_error)
    return solve_with(instance, method.name, planner, options)


def solve_with(instance: Instance, name: str, planner: Planner,
               options: SolveOptions | None = None) -> SolveOutcome:
    """Run a planner function on ``instance`` under the same rules as a registered method.

    The infeasibility check and lower bounds come first; the planner's schedule is validated;
    a planner that raises or returns an invalid schedule gets status ``error``.

    Parameters
    ----------
    instance : Instance
    name : str
        The method's name in the outcome.
    planner : callable
        ``plan(instance, options) -> PlanResult``.
    options : SolveOptions, optional

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> from solver.heuristics.keep import plan
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, outputs=("x",)),))
    >>> out = solve_with(make_instance(tr, Hardware("h", "HBM", (Tier("HBM", 100),))), "mine", plan)
    >>> out.method, out.status, out.makespan, out.gap
    ('mine', 'feasible', 1.0, 0.0)
    """
    options = options or SolveOptions()
    t0 = time.perf_counter()
    # one deadline for the whole solve (bounds, planner, validation): the caller's, else the time limit from now
    deadline = deadline_of(options)
    if deadline is not None and deadline is not options.deadline:
        options = replace(options, deadline=deadline)
    # the bounds: the same function as `tierplan bound`, to the stage asked for (an exact planner
    # runs the relaxations itself, within its own time shares, and reports its bound)
    stage = "cheap" if _is_exact(name) else str(options.extra.get("bounds", "cheap"))
    bset = instance_bounds(instance, stage if stage in STAGES else "cheap", recompute=options.recompute,
                           deadline=None if deadline is None else deadline.share(0.5))
    bounds = dict(bset.bounds)
    why = bset.message if bset.best == "feasibility" else None
    if why is None and any(math.isinf(v) for v in bounds.values()):
        why = "no schedule can fit: " + ", ".join(f"the {k} bound is infinite" for k, v in bounds.items()
                                                  if math.isinf(v))
    if why is None and bset.status == "infeasible":
        why = f"no schedule can fit: {bset.message}"
    if why is not None:
        wall = time.perf_counter() - t0
        return SolveOutcome(name, "infeasible", None, None, None, bounds, None, wall, 0.0, 0.0, why,
                            dict(instance.capacity))
    t1 = time.perf_counter()
    try:
        result = planner(instance, options)
        if not isinstance(result, PlanResult):
            raise TypeError(f"the planner returned {type(result).__name__}, not a PlanResult")
    except Exception as exc:  # noqa: BLE001 - a planner bug is reported, not raised to the user
        result = PlanResult("error", message=f"{name} failed: {type(exc).__name__}: {exc}")
    plan_s = time.perf_counter() - t1
    bound_vals = dict(bounds)
    if result.bound is not None:
        bound_vals[name] = float(result.bound)
    bound = max(bound_vals.values(), default=0.0)
    goal = result.objective_result
    if goal is not None and goal.kind == "makespan":
        goal = None
    caps = dict(instance.capacity)
    if result.schedule is None:
        status = result.status if result.status not in ("optimal", "feasible") else "error"
        msg = result.message or f"{name} returned no schedule"
        wall = time.perf_counter() - t0
        return SolveOutcome(name, status, None, None, bound, bound_vals, None, wall, plan_s, 0.0, msg,
                            caps, result.stats, _no_value(goal))
    t2 = time.perf_counter()
    sched = result.schedule
    if dict(sched.capacity) != caps:
        sched = Schedule(sched.trace, sched.hardware, sched.actions, caps, sched.solver)
    report = validate(instance.trace, instance.hardware, sched)
    if not report.valid:
        first = report.errors[0]
        msg = (f"{name} produced an invalid schedule ({len(report.errors)} error(s)); first: "
               f"[{first.code.value}] {first.action or '-'} at t={first.time:.9g}s: {first.message}")
        wall = time.perf_counter() - t0
        return SolveOutcome(name, "error", None, report, bound, bound_vals, None, wall, plan_s,
                            time.perf_counter() - t2, msg, caps, result.stats, _no_value(goal))
    makespan = report.metrics.makespan
    gap = makespan / bound - 1.0 if bound > 0 and math.isfinite(bound) else None
    if gap is not None and abs(gap) < 1e-12:
        gap = 0.0
    status = result.status if result.status in ("optimal", "feasible") else "feasible"
    message = result.message
    if goal is None:
        goal = ObjectiveResult("makespan", makespan, bound if 0 < bound < math.inf else None)
    else:
        settled = settle_objective(instance, sched, report, goal, status)
        if isinstance(settled, str):
            wall = time.perf_counter() - t0
            return SolveOutcome(name, "error", None, report, bound, bound_vals, None, wall, plan_s,
                                time.perf_counter() - t2, f"{name}: {settled}", caps, result.stats,
                                _no_value(goal))
        report, goal, new_status, caps = settled
        if new_status != status:
            short = "no bound" if goal.bound is None else f"the bound ({goal.bound:.0f} B)"
            message = (f"{goal.kind}: {short} does not reach the validated figure ({goal.value:.0f} B): not "
                       "proven optimal" + (f"; {message}" if message else ""))
            status = new_status
    validate_s = time.perf_counter() - t2
    wall = time.perf_counter() - t0
    info: dict[str, Any] = {"method": name, "status": status, "objective": makespan,
                            "bound": bound if math.isfinite(bound) else None, "wall_s": plan_s}
    if goal.kind != "makespan":
        info["objective_result"] = goal.to_dict()
    sched = Schedule(sched.trace, sched.hardware, sched.actions, caps, info)
    return SolveOutcome(name, status, sched, report, bound, bound_vals, gap, wall, plan_s, validate_s,
                        message, caps, result.stats, goal)


def settle_objective(instance: Instance, schedule: Schedule, report: Report, goal: ObjectiveResult,
                     status: str) -> tuple[Report, ObjectiveResult, str, dict[str, int]] | str:
    """The validator's figure for a ``min-memory`` or ``min-bytes`` result, or why it fails.

    The value is the validator's, not the planner's: ``min-memory`` the compute tier's peak (the
    schedule is validated again at that capacity, which is then recorded in its ``capacity``
    field), ``min-bytes`` the bytes moved over every link. The schedule must keep the makespan
    limit. The planner's bound is clipped to the value, and ``optimal`` is kept only when the
    bound reaches the value.

    Parameters
    ----------
    instance : Instance
    schedule : Schedule
        Valid at the instance's capacity (``report``).
    report : Report
    goal : ObjectiveResult
        The planner's.
    status : str
        The planner's status (``optimal`` or ``feasible``).

    Returns
    -------
    tuple or str
        ``(report, objective result, status, capacity overrides)``, or a message when the schedule
        breaks the makespan limit or is not valid at its own peak.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> from solver.heuristics.keep import plan
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, outputs=("x",)),))
    >>> inst = make_instance(tr, Hardware("h", "HBM", (Tier("HBM", 100),)))
    >>> s = plan(inst, SolveOptions()).schedule
    >>> rep, goal, status, caps = settle_objective(inst, s, validate(tr, inst.hardware, s),
    ...                                            ObjectiveResult("min-memory", 8, 8, makespan_limit=1.0), "optimal")
    >>> goal.value, status, caps, rep.valid
    (8.0, 'optimal', {'HBM': 8}, True)
    >>> settle_objective(inst, s, validate(tr, inst.hardware, s),
    ...                  ObjectiveResult("min-bytes", 0, 0, makespan_limit=0.5), "optimal")
    'the schedule takes 1 s, over the min-bytes makespan limit of 0.5 s'
    """
    m = report.metrics
    caps = dict(instance.capacity)
    limit = goal.makespan_limit
    if limit is not None and m.makespan > limit * (1 + 1e-9) + 1e-12:
        return f"the schedule takes {m.makespan:.9g} s, over the {goal.kind} makespan limit of {limit:.9g} s"
    if goal.kind == "min-memory":
        C = instance.hardware.compute_tier
        value = float(m.peak.get(C, 0))
        caps[C] = int(value)
        at_peak = Schedule(schedule.trace, schedule.hardware, schedule.actions, caps, schedule.solver)
        report = validate(instance.trace, instance.hardware, at_peak)
        if not report.valid:
            return f"the schedule is not valid at its own {C} peak of {int(value)} bytes"
    else:
        value = float(sum(m.bytes_moved.values()))
    bound = None if goal.bound is None else min(float(goal.bound), value)
    if status == "optimal" and (bound is None or bound < value):
        status = "feasible"
    return report, replace(goal, value=value, bound=bound), status, caps


def _no_value(goal: ObjectiveResult | None) -> ObjectiveResult | None:
    return None if goal is None else replace(goal, value=None)
