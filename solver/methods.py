"""The planner interface and the method registry.

A planner is a function ``plan(instance, options) -> PlanResult``. It returns a
schedule and its own status; it never reports timings of its own as final (the
driver validates every schedule, and the makespan reported is the validator's).

The registry is an immutable table of entries naming the module and function of
each planner, imported only when the method is used (as PuLP's solver adapters are).

Examples
--------
>>> get_method("keep").name
'keep'
>>> get_method("nope")
Traceback (most recent call last):
...
solver.methods.UnknownMethod: unknown method 'nope'; valid methods: ...
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from solver.deadline import Deadline
from solver.model import Hardware, Schedule, Trace

#: Planner statuses, best first. ``optimal`` only when a solver proved it.
STATUSES: tuple[str, ...] = ("optimal", "feasible", "infeasible", "timeout", "error")

#: What a planner may minimise (``SolveOptions.extra["objective"]``); the heuristics minimise the makespan.
OBJECTIVES: tuple[str, ...] = ("makespan", "min-memory", "min-bytes")


@dataclass(frozen=True)
class Instance:
    """What a planner plans for: a trace on hardware whose capacities are already in force.

    Parameters
    ----------
    trace : Trace
    hardware : Hardware
        With every capacity override applied.
    capacity : Mapping[str, int]
        The overrides, recorded in the schedule's ``capacity`` field.
    capacity_source : Mapping[str, str]
        Where each tier's capacity in force comes from (``hardware``, ``--capacity``,
        ``--budget 0.5``); a tier missing here comes from the hardware.
    """

    trace: Trace
    hardware: Hardware
    capacity: Mapping[str, int] = field(default_factory=dict)
    capacity_source: Mapping[str, str] = field(default_factory=dict)

    @property
    def compute_capacity(self) -> int:
        """Capacity of the compute tier in force."""
        return self.hardware.capacity[self.hardware.compute_tier]


@dataclass(frozen=True)
class SolveOptions:
    """Options every planner accepts (each uses what applies to it).

    Parameters
    ----------
    time_limit : float or None
        Seconds of wall time the planner may use.
    threads : int or None
        Solver threads.
    recompute : bool
        Whether recomputation may be used instead of (or besides) copies.
    seed : int
        For any randomness.
    extra : Mapping
        Method-specific options (``{"window": 4}``, ``{"backend": "cbc"}``...).
    deadline : Deadline or None
        When the whole command must be done (:mod:`solver.deadline`): set by the command from its
        ``--time-limit`` so that what ran before the planner counts too. A planner stops at the
        sooner of it and ``time_limit`` from its own start.

    Examples
    --------
    >>> SolveOptions(time_limit=2.0, deadline=Deadline(5.0, clock=lambda: 0.0)).deadline.left()
    5.0
    """

    time_limit: float | None = None
    threads: int | None = None
    recompute: bool = True
    seed: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    deadline: Deadline | None = None


@dataclass(frozen=True)
class ObjectiveResult:
    """The figure an objective is about, with its proven bound and the limit it was found under.

    Parameters
    ----------
    kind : str
        One of :data:`OBJECTIVES`.
    value : float or None
        ``makespan``: seconds; ``min-memory``: the least capacity of ``tier`` (bytes) at which the
        schedule is valid; ``min-bytes``: bytes copied over all links (a multi-hop copy counts once
        per hop). None without a schedule.
    bound : float or None
        A proven lower bound on ``value`` (same unit), if any. With status ``optimal``, ``bound``
        equals ``value``.
    makespan_limit : float or None
        ``min-memory`` and ``min-bytes``: the makespan the schedule had to keep, in seconds.
    limit_source : str or None
        Where ``makespan_limit`` came from: ``"max_overhead"`` (``(1 + max_overhead)`` x the compute
        time), ``"makespan"`` (given), or ``"warm start"`` (the heuristic warm start's makespan).
    max_overhead : float or None
        The overhead allowed when the limit is ``(1 + max_overhead)`` x the compute time.
    tier : str or None
        ``min-memory``: the tier whose capacity is minimised (the compute tier).

    Examples
    --------
    >>> r = ObjectiveResult("min-memory", 2048.0, 1024.0, makespan_limit=1.05, limit_source="max_overhead",
    ...                     max_overhead=0.05, tier="HBM")
    >>> r.unit, r.to_dict()["value"], r.to_dict()["bound"]
    ('B', 2048, 1024)
    """

    kind: str
    value: float | None
    bound: float | None = None
    makespan_limit: float | None = None
    limit_source: str | None = None
    max_overhead: float | None = None
    tier: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.kind!r}; expected one of {', '.join(OBJECTIVES)}")

    @property
    def unit(self) -> str:
        """``"s"`` for the makespan, ``"B"`` (bytes) otherwise."""
        return "s" if self.kind == "makespan" else "B"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (bytes as integers); keys that do not apply to the kind are left out."""
        def num(x: float | None) -> float | int | None:
            if x is None or self.unit == "s" or not math.isfinite(x):
                return x
            return int(round(x))
        out: dict[str, Any] = {"kind": self.kind, "unit": self.unit, "value": num(self.value),
                               "bound": num(self.bound)}
        if self.kind != "makespan":
            out.update(makespan_limit=self.makespan_limit, limit_source=self.limit_source,
                       max_overhead=self.max_overhead)
        if self.kind == "min-memory":
            out["tier"] = self.tier
        return out


@dataclass(frozen=True)
class PlanResult:
    """A planner's answer (its own view; the driver validates the schedule).

    Parameters
    ----------
    status : str
        One of :data:`STATUSES`.
    schedule : Schedule or None
        None when the planner found none (``infeasible``, ``timeout``, ``error``).
    objective, bound : float or None
        The planner's own objective and a proven lower bound on the makespan, if any.
    message : str
        Why, for a planner that failed (names the op and bytes for an infeasible instance).
    stats : Mapping
        Free-form counters (model size, nodes, iterations...).
    objective_result : ObjectiveResult or None
        For a planner that minimised something other than the makespan: the figure, its bound and
        its makespan limit (``objective`` then holds the same figure, ``bound`` stays None: it is a
        bound on the makespan). The driver checks the figure against the validator's.
    """

    status: str
    schedule: Schedule | None = None
    objective: float | None = None
    bound: float | None = None
    message: str = ""
    stats: Mapping[str, Any] = field(default_factory=dict)
    objective_result: ObjectiveResult | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; expected one of {', '.join(STATUSES)}")


Planner = Callable[[Instance, SolveOptions], PlanResult]


@dataclass(frozen=True)
class Method:
    """A registry entry: a name, a one-line summary, where the planner lives, and the
    ``SolveOptions.extra`` keys it reads (``options``; the solve CLI refuses any other)."""

    name: str
    summary: str
    module: str
    function: str
    exact: bool = False
    options: tuple[str, ...] = ()

    def load(self) -> Planner:
        """Import and return the planner function."""
        return getattr(importlib.import_module(self.module), self.function)


class UnknownMethod(KeyError):
    """A method name that is not in the registry; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


#: ``SolveOptions.extra`` keys every heuristic reads: ``bounds`` (the driver's bound stage, see
#: :mod:`solver.bounding`).
_HEURISTIC_KEYS: tuple[str, ...] = ("bounds",)

#: ``SolveOptions.extra`` keys every exact planner reads (see :mod:`formulations.planners`).
_EXACT_KEYS: tuple[str, ...] = ("objective", "max_overhead", "makespan", "warm", "log", "bounds")

_ENTRIES: tuple[Method, ...] = (
    Method("greedy", "selective offload/recompute where the compute tier overflows, copies timed to hide "
           "behind compute (default)", "solver.heuristics.greedy", "plan", options=("candidates",) + _HEURISTIC_KEYS),
    Method("keep", "no offload: everything stays in (or is fetched once into) the compute tier",
           "solver.heuristics.keep", "plan", options=_HEURISTIC_KEYS),
    Method("vdnn", "vDNN: offload activations after their forward use, prefetch one layer ahead of backward use",
           "solver.heuristics.vdnn", "plan", options=_HEURISTIC_KEYS),
    Method("belady", "demand paging: evict the tensor used farthest in the future (MIN), prefetch a window ahead",
           "solver.heuristics.belady", "plan", options=("window",) + _HEURISTIC_KEYS),
    Method("zero-offload", "ZeRO-Offload placement: optimizer states live off the compute tier between uses",
           "solver.heuristics.zero_offload", "plan", options=_HEURISTIC_KEYS),
    Method("milp", "exact: time-indexed stage MILP (Checkmate/POET family) with HiGHS, warm-started from greedy",
           "formulations.planners", "plan_milp", exact=True,
           options=_EXACT_KEYS + ("write_model", "backend", "max_milp")),
    Method("milp-cbc", "exact: the same stage MILP solved with CBC", "formulations.planners", "plan_milp_cbc",
           exact=True, options=_EXACT_KEYS + ("write_model", "max_milp")),
    Method("cpsat", "exact: continuous-time CP-SAT model on an integer clock, warm-started from greedy",
           "formulations.planners", "plan_cpsat", exact=True,
           options=_EXACT_KEYS + ("resolution", "max_cp", "race")),
    Method("auto", "exact where a proof is in reach, else greedy plus a time-limited exact improvement",
           "formulations.planners", "plan_auto", exact=True,
           options=_EXACT_KEYS + ("write_model", "resolution", "max_milp", "max_cp", "windows", "race")),
)

REGISTRY: Mapping[str, Method] = MappingProxyType({m.name: m for m in _ENTRIES})


def get_method(name: str) -> Method:
    """Look up a method by name.

    Raises
    ------
    UnknownMethod
        Listing the valid names.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownMethod(f"unknown method {name!r}; valid methods: {', '.join(REGISTRY)}") from None


def method_names() -> tuple[str, ...]:
    """Registered method names, in registry order."""
    return tuple(REGISTRY)


def methods_reading(key: str) -> tuple[str, ...]:
    """Names of the registered methods that read ``SolveOptions.extra[key]``, in registry order.

    Examples
    --------
    >>> methods_reading("resolution")
    ('cpsat', 'auto')
    >>> methods_reading("window")
    ('belady',)
    """
    return tuple(m.name for m in _ENTRIES if key in m.options)
