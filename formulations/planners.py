"""The exact planners registered as ``milp``, ``milp-cbc``, ``cpsat`` and ``auto``.

Each planner:

1. refuses instances no schedule can fit (an op that does not fit on its own...);
2. runs the best registered heuristic (``greedy``, else ``keep``) as the warm start;
3. builds its formulation (:mod:`formulations.milp` or :mod:`formulations.cpsat`), passes the
   warm start (MIP start / solution hint), solves within the time limit with the threads given
   (with two or more, CP-SAT's search races the window MILP bound on one more thread:
   :mod:`formulations.race`);
4. decodes the solution into a schedule with waits, validates it, and returns whichever of it
   and the warm start is better, so it is never worse than the warm start.

Status is honest: ``optimal`` only when the back end proved the formulation's optimum and that
schedule is returned (optimal *within the formulation's space*: see :mod:`formulations.common`
for the policies; the stage MILP's space is the stage model); ``feasible`` with the best bound
otherwise; ``infeasible`` only when a relaxation valid for every schedule proves it;
``timeout``/``error`` when there is no schedule at all.

Options (``SolveOptions.extra``):

* ``objective``: ``makespan`` (default), ``min-memory`` (smallest compute-tier capacity whose
  makespan stays within ``(1 + max_overhead)`` x the compute time), ``min-bytes`` (fewest bytes
  copied within the makespan ``makespan``, default the warm start's);
* ``max_overhead`` (default 0.05), ``makespan`` (seconds, or a unit string such as ``"12ms"``);
* ``write_model``: export the MILP to ``FILE.mps`` / ``FILE.lp`` before solving;
* ``backend`` (MILP): ``highs``, ``cbc`` or any PuLP solver name;
* ``warm``: ``"none"`` to skip the heuristic warm start;
* ``resolution`` (CP-SAT): seconds per tick (or a unit string); ``log``: stream the back end's
  log to stderr;
* ``race`` (``cpsat``, ``auto``): ``off`` computes the window MILP bound before CP-SAT's search
  even with two threads or more, instead of beside it (:mod:`formulations.race`).

For ``min-memory`` and ``min-bytes`` the result carries an :class:`~solver.methods.ObjectiveResult`:
the figure (capacity or bytes, the validator's), a bound in the same unit (the back end's bound
rounded up to :func:`byte_granularity`; for ``min-memory`` at least :func:`capacity_floor`) and
the makespan limit with where it came from. ``optimal`` needs the back end's proof *and* a bound
that reaches the figure. A makespan limit below a lower bound valid for every schedule
(:func:`solver.bounds.lower_bound`, or the window LP relaxation when the model finds nothing) is
``infeasible``; a model with no schedule within the limit while nothing rules one out is ``error``.

Without ``time_limit`` the exact planners stop after :data:`DEFAULT_TIME_LIMIT` seconds.

Time: every stage works from one deadline (:mod:`solver.deadline`): ``SolveOptions.deadline``
(set by the command, so that loading counts) or ``time_limit`` from the planner's start, whichever
is sooner. The warm start, each bound, each model's build and each solve gets a share of the time
*left* (never a limit of its own), builds poll the clock, and a model that cannot be built or
solved in time leaves the warm start (status ``feasible``; ``timeout`` when there is none).

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> from solver.methods import Instance, SolveOptions
>>> tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
...            (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, outputs=("b",)),
...             Op(id="h", duration=1.0, inputs=("b",)), Op(id="i", duration=1.0, inputs=("a",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 5), Tier("DDR", 100)),
...               (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0)))
>>> res = plan_cpsat(Instance(tr, hw), SolveOptions(time_limit=10, threads=1))
>>> res.status, res.objective
('optimal', 5.0)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

from solver.deadline import Deadline, OutOfTime, deadline_of
from solver.feasibility import held_at_start, infeasible_reason
from solver.methods import OBJECTIVES, Instance, ObjectiveResult, PlanResult, SolveOptions
from solver.model import Schedule, Trace
from solver.timing import Report, validate
from solver.units import format_time, parse_time

from formulations.backends import MIP_REL_GAP
from formulations.common import Problem, Unsupported, build_problem, joint_recomputes, op_requirement
from formulations.decode import make_schedule
from formulations.race import Race
from formulations.warm import Warm, best_heuristic, stage_heuristic

#: Seconds an exact planner runs when no time limit is given.
DEFAULT_TIME_LIMIT = 60.0

#: Overhead allowed by ``min-memory`` when ``max_overhead`` is not given.
DEFAULT_MAX_OVERHEAD = 0.05

#: Share of ``auto``'s time given to the stage MILP before CP-SAT continues from its plan.
AUTO_MILP_SHARE = 0.4

#: With the window MILP racing beside it (the bound is its job), ``auto``'s stage MILP is there for
#: its plan: it stops at its share of the time at HiGHS's next poll (``MilpOptions.soft_limit``),
#: with a hard limit of this multiple of the share, so that a heuristic sub-MIP under way is not cut
#: short (moe-tiny-1layer 0.4 at 10 s: its 0.761 ms plan, found at the end of the root after
#: 3.7 s, on 6 of 6 runs instead of 0 of 6 under the plain limit).
STAGE_ROOT_GRACE = 1.5

#: Share of the time left that CP-SAT spends in neighbourhood search alone, from its hint, when the
#: window MILP racing beside it has already proven its bound (what is left is to find a schedule
#: that meets it), before CP-SAT's whole portfolio (which proves) goes on from the best found.
RACE_LNS_SHARE = 0.5

#: Largest stage MILP built (estimated stage x option pairs); beyond it the warm start is returned.
MILP_MAX_SIZE = 400_000

#: Largest CP-SAT model built (gap options); beyond it the warm start is returned.
CP_MAX_SIZE = 40_000

#: ``auto`` solves one model of the whole instance up to this many gap options; past it (and past
#: both size guards) it improves the warm start window by window. Measured at budget 0.5
#: (results/exact.md): up to 551 options (``small``) one model did better on two of three feasible
#: cases in 60 s (one proven optimal); at 2,850 (``medium`` train-1b-ga3-state-in-ddr) one model
#: gained 0.03% on greedy in 300 s where the window search gained 1.84%.
#: ``extra["windows"] = "off"`` keeps one model at any size within the guards.
AUTO_WHOLE_MAX_SIZE = 1_000

#: ``auto``'s window search re-plans windows of the trace whose model has at most this many gap
#: options (:mod:`formulations.windows`).
WINDOW_MAX_SIZE = 4_000

#: The window LP relaxation (a makespan bound for every schedule) gets this share of the time
#: limit, at most ``WINDOW_LP_MAX_S`` seconds, and is skipped beyond ``WINDOW_LP_MAX_ABSENCE``
#: absence variables.
WINDOW_LP_SHARE = 0.2
WINDOW_LP_MAX_S = 30.0
WINDOW_LP_MAX_ABSENCE = 200_000

#: The bounds the exact planners compute before searching, in order, each only when the previous
#: ones do not settle the warm start: the cheap bounds of :mod:`solver.bounds`, the window LP
#: relaxation, its integral version. ``extra["bounds"]`` names the last one run (default ``milp``).
BOUND_STAGES = ("cheap", "lp", "milp")

#: When the warm start does not meet the LP bound, the same relaxation with integral absences and
#: recomputes (a MILP, still a bound for every schedule; its best bound counts when the time share
#: runs out) is solved on instances with at most ``WINDOW_MILP_MAX_ABSENCE`` absence variables,
#: within this share of the time limit (at most ``WINDOW_MILP_MAX_S`` seconds).
WINDOW_MILP_SHARE = 0.25
WINDOW_MILP_MAX_S = 60.0
WINDOW_MILP_MAX_ABSENCE = 6_000


def model_sizes(problem: Problem) -> tuple[int, int]:
    """Estimated sizes of the two formulations: (stage x option pairs, gap options).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> model_sizes(build_problem(tr, Hardware("h", "HBM", (Tier("HBM", 100),))))
    (0, 0)
    """
    stage = opts = 0
    for g in problem.gaps:
        if not g.useful:
            continue
        k = len(problem.epochs[g.epoch].tiers) + (1 if g.recomputable else 0)
        opts += k
        stage += k * max(1, g.interior[1] - g.interior[0] + 1)
    return stage, opts

#: A schedule whose validated figure is within this share of a lower bound that holds for every
#: schedule is reported ``optimal``: the relative gap at which the MILP back ends stop
#: (:data:`formulations.backends.MIP_REL_GAP`), since the bounds themselves come from LP and MILP
#: solvers with tolerances of that order.
BOUND_OPTIMAL_REL = MIP_REL_GAP


def plan_milp(instance: Instance, options: SolveOptions) -> PlanResult:
    """``milp``: the stage MILP with HiGHS (``extra["backend"]`` picks another back end).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> plan_milp(Instance(tr, Hardware("h", "HBM", (Tier("HBM", 100),))), SolveOptions()).status
    'optimal'
    """
    return _plan(instance, options, "milp", str(options.extra.get("backend", "highs")))


def plan_milp_cbc(instance: Instance, options: SolveOptions) -> PlanResult:
    """``milp-cbc``: the stage MILP with CBC.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> plan_milp_cbc(Instance(tr, hw), SolveOptions()).status
    'optimal'
    """
    return _plan(instance, options, "milp", "cbc")


def plan_cpsat(instance: Instance, options: SolveOptions) -> PlanResult:
    """``cpsat``: the continuous-time CP-SAT model.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> plan_cpsat(Instance(tr, hw), SolveOptions()).schedule.actions[0].op
    'f'
    """
    return _plan(instance, options, "cpsat", "cpsat")


def plan_auto(instance: Instance, options: SolveOptions) -> PlanResult:
    """``auto``: the stage MILP where no copy and no rerun of a multi-output op can help
    (recomputation of single-output ops only: it proves optimality fast there), else the stage
    MILP for part of the time and CP-SAT from its plan and the warm start for the rest; past
    :data:`AUTO_WHOLE_MAX_SIZE` gap options (or both size guards) the window search. Whatever the
    size, the result is never worse than the warm start.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> res = plan_auto(Instance(tr, Hardware("h", "HBM", (Tier("HBM", 100),))), SolveOptions())
    >>> res.status, res.stats["route"]
    ('optimal', 'bound')
    """
    return _plan(instance, options, "auto", "cpsat")


# ------------------------------------------------------------------------------------------------

def _score(objective: str, report: Report, limit: float | None, compute_tier: str) -> float:
    """The objective value of a validated schedule (inf when it breaks the objective's limit)."""
    m = report.metrics
    if objective == "makespan":
        return m.makespan
    if limit is not None and m.makespan > limit * (1 + 1e-9) + 1e-12:
        return math.inf
    if objective == "min-memory":
        return float(m.peak.get(compute_tier, 0))
    return float(sum(m.bytes_moved.values()))


def _universal_bound(instance: Instance) -> float | None:
    try:
        from solver.bounds import lower_bound
        return float(lower_bound(instance))
    except Exception:  # noqa: BLE001 - the bounds module is optional here
        return None


def _stage_share(dl: Deadline, limit_s: float, share: float, most: float) -> Deadline:
    """A bound stage's deadline: ``share`` of the time limit ``limit_s`` (at least a second, but
    never more than half the time left, nor ``most`` seconds), never past ``dl``."""
    return dl.within(min(most, max(min(1.0, 0.5 * dl.left()), share * limit_s)))


def _window_lp(instance: Instance, options: SolveOptions, limit_s: float, dl: Deadline, integral: bool = False,
               race: Race | None = None) -> Any:
    """The window relaxation (a bound for every schedule), within a share of the time limit
    ``limit_s`` (never past ``dl``, its build included) and skipped on instances where it would be
    too large to build (LP) or solve (MILP) quickly.

    With ``race`` (the MILP only) it runs on one thread until ``dl`` beside the search,
    offering its bound to the race as it rises and stopping once the race is over."""
    from formulations.relax import window_bound

    if not integral:
        return window_bound(instance.trace, instance.hardware, recompute=options.recompute,
                            deadline=_stage_share(dl, limit_s, WINDOW_LP_SHARE, WINDOW_LP_MAX_S),
                            max_absence=WINDOW_LP_MAX_ABSENCE, threads=options.threads)
    if race is None:
        return window_bound(instance.trace, instance.hardware, recompute=options.recompute, integral=True,
                            deadline=_stage_share(dl, limit_s, WINDOW_MILP_SHARE, WINDOW_MILP_MAX_S),
                            max_absence=WINDOW_MILP_MAX_ABSENCE, threads=options.threads)

    def poll(value: float) -> bool:
        race.offer_lower(value)
        return race.done

    rb = window_bound(instance.trace, instance.hardware, recompute=options.recompute, integral=True,
                      deadline=_backend_deadline(dl), max_absence=WINDOW_MILP_MAX_ABSENCE, threads=1, on_bound=poll)
    if rb.status in ("bound", "infeasible"):
        # HiGHS may solve it without ever polling; no schedule at all ends the race too
        race.offer_lower(rb.value if rb.status == "bound" else math.inf)
    return rb


def meets_bound(value: float, bound: float | None) -> bool:
    """Whether a schedule's figure is within :data:`BOUND_OPTIMAL_REL` of a lower bound.

    Examples
    --------
    >>> meets_bound(1.0, 1.0), meets_bound(1.0 + 1e-9, 1.0), meets_bound(1.01, 1.0), meets_bound(1.0, None)
    (True, True, False, False)
    """
    return bound is not None and value <= bound * (1 + BOUND_OPTIMAL_REL) + 1e-15


def capacity_floor(trace: Trace, compute_tier: str) -> int:
    """Bytes no schedule can do without in the compute tier: the largest op's need (inputs, outputs,
    workspace) and the tensors that start there, whichever is more.

    A lower bound on the ``min-memory`` objective for every schedule.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op
    >>> tr = Trace("t", (Tensor(id="w", bytes=8), Tensor(id="y", bytes=5)),
    ...            (Op(id="f", duration=1.0, outputs=("y",), workspace=2), Op(id="g", duration=1.0, inputs=("w",))))
    >>> capacity_floor(tr, "HBM")
    8
    """
    need = max((op_requirement(trace, i) for i in range(len(trace.ops))), default=0)
    start = sum(trace.tensors[i].bytes for i in held_at_start(trace, compute_tier, compute_tier))
    return int(max(need, start))


def byte_granularity(trace: Trace) -> int:
    """The greatest common divisor of every tensor size and op workspace (1 when there are none).

    Capacities and bytes moved are sums of these, so a lower bound on them rounds up to a multiple
    of it (:func:`round_bytes_bound`).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op
    >>> tr = Trace("t", (Tensor(id="a", bytes=4096), Tensor(id="b", bytes=6144)),
    ...            (Op(id="f", duration=1.0, outputs=("a", "b")),))
    >>> byte_granularity(tr)
    2048
    """
    sizes = [t.bytes for t in trace.tensors if t.bytes > 0] + [o.workspace for o in trace.ops if o.workspace > 0]
    return math.gcd(*sizes) if sizes else 1


def round_bytes_bound(bound: float | None, granularity: int) -> float | None:
    """A back end's lower bound on a byte objective, rounded up to the next multiple of ``granularity``.

    Every achievable value is such a multiple, so the rounded bound is still a bound; it removes the
    back end's tolerances (a MILP stops within a relative gap of 1e-7 and reads bytes in scaled
    units). Float noise of 1e-9 relative is discounted first.

    Examples
    --------
    >>> round_bytes_bound(4095.9999, 4096), round_bytes_bound(4096.0000001, 4096), round_bytes_bound(None, 8)
    (4096.0, 4096.0, None)
    """
    if bound is None or not math.isfinite(bound):
        return None
    g = max(1, int(granularity))
    return float(max(0, math.ceil((bound - 1e-9 * max(1.0, abs(bound))) / g)) * g)


def _plan(instance: Instance, options: SolveOptions, formulation: str, backend: str) -> PlanResult:
    t0 = time.perf_counter()
    tr, hw = instance.trace, instance.hardware
    C = hw.compute_tier
    extra: Mapping[str, Any] = options.extra
    objective = str(extra.get("objective", "makespan"))
    if objective not in OBJECTIVES:
        return PlanResult("error", message=f"unknown objective {objective!r}; expected makespan, min-memory "
                                           "or min-bytes")
    try:
        max_ov = float(extra.get("max_overhead", DEFAULT_MAX_OVERHEAD))
        given = None if extra.get("makespan") is None else parse_time(extra["makespan"])
        res_s = None if extra.get("resolution") is None else parse_time(extra["resolution"])
    except (TypeError, ValueError) as exc:
        return PlanResult("error", message=f"max_overhead, makespan and resolution must be numbers: {exc}")
    if not (max_ov >= 0 and math.isfinite(max_ov)):
        return PlanResult("error", message=f"max_overhead must be a finite number >= 0, got {max_ov}")
    for key, val in (("makespan", given), ("resolution", res_s)):
        if val is not None and not (val > 0 and math.isfinite(val)):
            return PlanResult("error", message=f"{key} must be a positive number of seconds, got {val}")
    bounds = str(extra.get("bounds", "milp"))
    if bounds not in BOUND_STAGES:
        return PlanResult("error", message=f"unknown bounds {bounds!r}; expected one of {', '.join(BOUND_STAGES)}")
    dl = deadline_of(options, None, DEFAULT_TIME_LIMIT)
    assert dl is not None
    limit_s = dl.left()
    why = infeasible_reason(tr, hw)
    if why is not None:
        return PlanResult("infeasible", message=why)
    stats: dict[str, Any] = {"formulation": formulation, "objective": objective}
    # ---- warm start ---------------------------------------------------------------------------
    warm: Warm | None = None
    if str(extra.get("warm", "")) != "none":
        warm = best_heuristic(instance, recompute=options.recompute,
                              deadline=dl.within(max(min(1.0, 0.5 * dl.left()), 0.2 * limit_s)))
    # ---- the objective's makespan limit and its proven floor -----------------------------------
    target: float | None = None
    source: str | None = None
    if objective == "min-memory":
        target, source = (1.0 + max_ov) * tr.compute_time, "max_overhead"
    elif objective == "min-bytes":
        if given is not None:
            target, source = given, "makespan"
        elif warm is not None:
            target, source = warm.makespan, "warm start"
        else:
            target, source = (1.0 + max_ov) * tr.compute_time, "max_overhead"
    floor = capacity_floor(tr, C) if objective == "min-memory" else None
    grain = byte_granularity(tr)

    def goal(value: float | None, bound: float | None) -> ObjectiveResult | None:
        """The objective's figure (None for the makespan, which the driver reports)."""
        if objective == "makespan":
            return None
        b = round_bytes_bound(bound, grain)
        if floor is not None:
            b = float(floor) if b is None else max(b, float(floor))
        if b is not None and value is not None and math.isfinite(value):
            b = min(b, value)
        return ObjectiveResult(objective, value, b, makespan_limit=target, limit_source=source,
                               max_overhead=max_ov if source == "max_overhead" else None,
                               tier=C if objective == "min-memory" else None)

    if target is not None:
        stats.update(makespan_limit=target, limit_source=source)
        lb = _universal_bound(instance)
        if lb is not None and lb > target * (1 + 1e-9) + 1e-12:
            return PlanResult("infeasible", message=f"no schedule finishes within the makespan limit of "
                              f"{format_time(target)}: every schedule takes at least {format_time(lb)} (lower bound)",
                              stats=stats, objective_result=goal(None, None))
    warm_score = _score(objective, warm.report, target, C) if warm is not None else math.inf
    if warm is not None:
        stats.update(warm_method=warm.method, warm_makespan=warm.makespan, warm_score=warm_score)
    # ---- bounds for every schedule, and a proof without solving when the warm start meets one ----
    # the cheap bounds first; the window LP relaxation only when they do not settle it, and its
    # integral version only when the LP does not either
    universal = _universal_bound(instance)

    def record(kind: str, rb: Any) -> PlanResult | None:
        """Take window relaxation ``kind``'s answer: ``infeasible`` when it proves no schedule fits."""
        nonlocal universal
        stats.update({f"window_{kind}": rb.status, f"window_{kind}_s": rb.stats.get("solve_s")})
        if rb.status == "infeasible":
            return PlanResult("infeasible", message=f"{rb.message} (the window {kind.upper()} relaxation, "
                                                    "which holds for every schedule)", stats=stats)
        if rb.status == "bound" and (universal is None or rb.value > universal):
            universal = rb.value
            stats[f"window_{kind}_bound"] = rb.value
        return None

    def settle(kind: str) -> PlanResult | None:
        """Compute bound stage ``kind``; a result when it proves infeasibility or the warm start."""
        if kind != "cheap" and objective == "makespan":
            done = record(kind, _window_lp(instance, options, limit_s, dl, integral=kind == "milp"))
            if done is not None:
                return done
        if objective == "makespan" and warm is not None and not extra.get("write_model"):
            lb = universal
            if lb is not None and meets_bound(warm.makespan, lb):
                stats.update(route="bound", wall_s=round(time.perf_counter() - t0, 3))
                return PlanResult("optimal", _tag(warm.schedule, formulation, "optimal", warm.makespan, lb),
                                  objective=warm.makespan, bound=lb,
                                  message=f"the {warm.method} schedule meets the lower bound", stats=stats)
        return None

    # with two threads or more the window MILP may run beside CP-SAT's search (a race: the first
    # to meet the other's figure stops both) instead of before it; deferred until the route is known
    racing = (objective == "makespan" and formulation in ("cpsat", "auto") and (options.threads or 1) >= 2
              and not extra.get("write_model") and extra.get("race", "on") != "off")
    defer_milp = False
    for kind in BOUND_STAGES[:BOUND_STAGES.index(bounds) + 1]:
        if kind == "milp" and stats.get("window_lp") != "bound":
            continue
        if kind == "milp" and racing:
            defer_milp = True
            continue
        done = settle(kind)
        if done is not None:
            return done
    if objective == "min-memory" and warm is not None and warm_score <= floor and not extra.get("write_model"):
        stats.update(route="bound", model="bound", wall_s=round(time.perf_counter() - t0, 3))
        return _result("optimal", warm.schedule, formulation, objective, warm_score, None, stats,
                       goal(warm_score, floor), f"the {warm.method} schedule meets the capacity floor")
    try:
        problem = build_problem(tr, hw, recompute=options.recompute, cap_floor=floor, deadline=dl.reserving())
    except Unsupported as exc:
        return _warm_result(warm, warm_score, "error", f"{formulation}: {exc}", stats, formulation, objective,
                            goal(warm_score, None), universal)
    except OutOfTime:
        stats.update(wall_s=round(time.perf_counter() - t0, 3))
        return _warm_result(warm, warm_score, "timeout", f"{formulation}: the time limit came while analysing the "
                            "instance for a model", stats, formulation, objective, goal(warm_score, None), universal)
    stage_size, cp_size = model_sizes(problem)
    stats.update(size_stage=stage_size, size_options=cp_size)
    too_big_milp = stage_size > int(extra.get("max_milp", MILP_MAX_SIZE))
    too_big_cp = cp_size > int(extra.get("max_cp", CP_MAX_SIZE))
    # (a model to write is a model of the whole instance)
    beyond_whole = cp_size > AUTO_WHOLE_MAX_SIZE and not extra.get("write_model")
    windows = formulation == "auto" and (beyond_whole or (too_big_cp and too_big_milp)) and \
        objective == "makespan" and warm is not None and extra.get("windows", "on") != "off"
    copies = any(problem.epochs[g.epoch].tiers for g in problem.gaps if g.useful)
    # reruns of multi-output ops are CP-SAT's alone (the stage MILP reruns single-output ops only)
    joint = bool(joint_recomputes(problem))
    # the search is CP-SAT: `cpsat`, or `auto` on a whole model with copies to plan
    cp_search = not windows and not too_big_cp and (formulation == "cpsat" or (
        formulation == "auto" and (too_big_milp or ((copies or joint) and objective == "makespan"))))
    if defer_milp and not cp_search:
        defer_milp = False
        done = settle("milp")
        if done is not None:
            return done
    if windows and warm is not None:
        return _plan_windows(instance, options, warm, t0, dl, universal, stats)
    if (formulation == "milp" and too_big_milp) or (formulation == "cpsat" and too_big_cp) or \
            (formulation == "auto" and too_big_cp and too_big_milp):
        return _warm_result(warm, warm_score, "timeout", f"{formulation}: the model would be too large for this "
                            f"machine ({stage_size} stage options, {cp_size} gap options)", stats, formulation,
                            objective, goal(warm_score, None), universal)
    seed_plan = None
    milp_sched = None
    if formulation == "auto" and too_big_milp:
        formulation = "cpsat"
        stats["route"] = "cpsat (stage MILP too large)"
    race: Race | None = None
    pool: ThreadPoolExecutor | None = None
    side = None
    if defer_milp:
        # the window MILP runs on a thread of its own from here to the end of the search: beside
        # `auto`'s stage MILP (whose branch and bound leaves the other core idle) and then CP-SAT
        race = Race(BOUND_OPTIMAL_REL)
        if universal is not None:
            race.offer_lower(universal)
        if warm is not None:
            race.offer_upper(warm.makespan)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tierplan-window-milp")
        side = pool.submit(_window_lp, instance, options, limit_s, dl, True, race)
    try:
        if formulation == "auto":
            if not (copies or joint) or objective != "makespan":
                stats["route"] = "milp"
                formulation, backend = "milp", "highs"
            else:
                # the stage MILP first (strong bounds, quick plans), then CP-SAT from its plan
                stats["route"] = "milp+cpsat"
                part = min(_left(dl), max(1.0, AUTO_MILP_SHARE * _left(dl)))
                if race is None:
                    out = _run_milp(problem, instance, options, "highs", objective, max_ov, target, part, dl=dl)
                else:
                    # the bound is the window MILP's: the stage MILP's job is a plan (see STAGE_ROOT_GRACE)
                    hard = min(STAGE_ROOT_GRACE * part, max(part, _left(dl) - part))
                    out = _run_milp(problem, instance, options, "highs", objective, max_ov, target, hard, soft=part,
                                    dl=dl)
                stats.update({f"milp_{k}": v for k, v in out[5].items()
                              if k in ("model_solver", "model_objective")})
                seed_plan = out[6]
                milp_sched = out[0]
                formulation = "cpsat"
        if formulation == "milp":
            sched, status, obj, bound, cap, st, _ = _run_milp(problem, instance, options, backend, objective,
                                                              max_ov, target, dl.left(), dl=dl)
        else:
            # the bound side proved its bound before the search began: search for a schedule first
            lns = RACE_LNS_SHARE if (side is not None and side.done() and side.result().status == "bound"
                                     and race is not None and not race.done) else 0.0
            sched, status, obj, bound, cap, st = _run_cpsat(problem, instance, options, objective, max_ov,
                                                            target, dl.left(), warm, seed_plan, race, lns, dl=dl)
    finally:
        if race is not None and pool is not None:
            race.finish()
            pool.shutdown(wait=True)
    if side is not None:
        stats["race"] = True
        done = record("milp", side.result())
        if done is not None:
            return done
    stats.update(st)
    model_bound = bound if status in ("optimal", "feasible", "timeout") else None
    # ---- compare with the warm start -------------------------------------------------------------
    model_score = math.inf
    report = None
    if sched is not None:
        report = validate(tr, hw, sched, {C: cap} if cap is not None else None)
        if not report.valid:
            first = report.errors[0]
            stats["decode_error"] = f"[{first.code.value}] {first.action}: {first.message}"
            sched = None
        else:
            model_score = _score(objective, report, target, C)
            if not math.isfinite(model_score):
                stats["decode_error"] = f"the model's schedule breaks the makespan limit of {format_time(target)}"
                sched = None
    if milp_sched is not None:
        rep2 = validate(tr, hw, milp_sched)
        if rep2.valid and _score(objective, rep2, target, C) < model_score * (1 - 1e-12):
            sched, report, model_score = milp_sched, rep2, _score(objective, rep2, target, C)
            status, bound = "feasible", None
            stats["returned_from"] = "milp"
    stats["wall_s"] = round(time.perf_counter() - t0, 3)
    if sched is None and (warm is None or not math.isfinite(warm_score)):
        if status in ("optimal", "feasible"):
            status = "error"
        if status == "infeasible" and objective == "makespan":
            return _infeasible(instance, options, formulation, stats, dl)
        msg = stats.get("decode_error") or stats.get("message") or f"{formulation} found no schedule ({status})"
        if objective == "makespan":
            stage_fb = _stage_fallback(problem, instance)
            if stage_fb is not None:
                stats["returned"] = "stage-heuristic"
                return PlanResult("feasible", stage_fb[0], objective=stage_fb[1], message=str(msg), stats=stats)
        else:
            if status == "infeasible":
                proof = _limit_infeasible(instance, options, target, stats, dl)
                if proof is not None:
                    return PlanResult("infeasible", message=proof, stats=stats, objective_result=goal(None, None))
                status = "error"
                msg = (f"the {formulation} formulation has no schedule within the makespan limit of "
                       f"{format_time(target)} in its space; a schedule outside it may exist (no bound rules it out)")
            if warm is not None:
                msg = f"{msg}; the {warm.method} warm start takes {format_time(warm.makespan)}, over the limit"
        return PlanResult(status, message=str(msg), stats=stats, objective_result=goal(None, model_bound))
    if sched is None or (warm is not None and warm_score < model_score * (1 - 1e-12)):
        assert warm is not None
        note = {"infeasible": f"the {formulation} formulation has no schedule in its space",
                "timeout": f"{formulation} found no schedule within the time limit",
                "error": f"{formulation} failed"}.get(status, f"{formulation} did not beat the warm start")
        if "decode_error" in stats:
            note = f"{formulation}'s schedule failed validation ({stats['decode_error']})"
        elif status == "error" and stats.get("message"):
            note = f"{formulation} failed: {stats['message']}"
        elif status == "timeout" and stats.get("message"):
            note = f"{formulation}: {stats['message']}"
        return _warm_result(warm, warm_score, "feasible", note, stats, formulation, objective,
                            goal(warm_score, model_bound), universal)
    stats["returned"] = "model"
    stats["model"] = "stage MILP" if formulation == "milp" or stats.get("returned_from") == "milp" else "CP-SAT"
    final_status = status if status in ("optimal", "feasible") else "feasible"
    if bound is not None and bound > model_score:
        bound = model_score       # float noise or rounding of the clock
    if objective == "makespan" and bound is not None:
        ub = universal
        if ub is not None and ub > bound:
            bound = min(ub, model_score)
            if meets_bound(model_score, bound):
                final_status = "optimal"    # the schedule meets a bound that holds for every schedule
    figure = goal(model_score, model_bound)
    message = "" if final_status == "optimal" else "stopped at the time limit" if status == "feasible" else ""
    if figure is not None and final_status == "optimal" and (figure.bound is None or figure.bound < model_score):
        final_status = "feasible"   # the back end's proof does not reach the validated figure
        message = (f"{formulation} reported its optimum, but its bound ({figure.bound} B) does not reach the "
                   f"validated {objective} figure ({model_score:.0f} B)")
    if objective == "min-memory":
        sched = Schedule(sched.trace, sched.hardware, sched.actions, dict(instance.capacity), sched.solver)
    return _result(final_status, sched, formulation, objective, model_score, bound, {**stats, "model_bound": bound},
                   figure, message)


def _plan_windows(instance: Instance, options: SolveOptions, warm: Warm, started: float, dl: Deadline,
                  bound: float | None, stats: dict[str, Any]) -> PlanResult:
    """``auto`` on an instance too large for one model (or for a proof by one): the warm start
    improved window by window (:mod:`formulations.windows`), each window solved by ``auto`` itself
    within a time slice. ``started`` is when the solve began (for ``wall_s``)."""
    from formulations.windows import improve_by_windows

    t0 = time.perf_counter()

    def size(sub: Instance) -> int:
        try:
            return model_sizes(build_problem(sub.trace, sub.hardware, recompute=options.recompute))[1]
        except Unsupported:
            return 0

    def solve_window(sub: Instance, seconds: float) -> Schedule | None:
        opts = SolveOptions(time_limit=seconds, threads=options.threads, seed=options.seed,
                            recompute=options.recompute, extra={"windows": "off", "bounds": "lp"}, deadline=dl)
        res = _plan(sub, opts, "auto", "cpsat")
        return res.schedule if res.status in ("optimal", "feasible") else None

    out = improve_by_windows(instance, warm.schedule, solve_window, _left(dl) + time.perf_counter(),
                             size=size, max_size=WINDOW_MAX_SIZE)
    stats.update(route="windows", windows=out.stats["windows"], windows_accepted=out.stats["accepted"],
                 windows_rejected=dict(out.stats["rejected"]), windows_examples=dict(out.stats.get("examples", {})),
                 window_ops=out.stats.get("window_ops"),
                 windows_s=round(time.perf_counter() - t0, 3))
    if out.makespan >= warm.makespan * (1 - 1e-12):
        return _warm_result(warm, warm.makespan, "feasible", f"auto: no window of the trace improved on the warm "
                            f"start ({out.stats['windows']} tried; {stats['size_options']} gap options, too many "
                            "for one model)",
                            stats, "auto", "makespan", None, bound)
    stats["returned"] = "windows"
    stats["wall_s"] = round(time.perf_counter() - started, 3)
    b = None if bound is None else min(bound, out.makespan)
    status = "optimal" if meets_bound(out.makespan, b) else "feasible"
    return _result(status, out.schedule, "auto", "makespan", out.makespan, b, stats, None,
                   f"improved window by window from the {warm.method} schedule "
                   f"({out.stats['accepted']} of {out.stats['windows']} windows accepted)")


def _result(status: str, schedule: Schedule, formulation: str, objective: str, score: float,
            bound: float | None, stats: dict[str, Any], figure: ObjectiveResult | None,
            message: str) -> PlanResult:
    """A planner's answer with a schedule: ``bound`` is the makespan bound (dropped for other objectives)."""
    if objective == "min-memory":
        stats = {**stats, "capacity": int(score)}
    mb = bound if objective == "makespan" else None
    return PlanResult(status, _tag(schedule, formulation, status, score, mb), objective=score, bound=mb,
                      message=message, stats=stats, objective_result=figure)


def _warm_result(warm: Warm | None, warm_score: float, status: str, note: str, stats: dict[str, Any],
                 formulation: str, objective: str, figure: ObjectiveResult | None,
                 bound: float | None = None) -> PlanResult:
    """The warm start instead of the model's schedule (``status`` when there is no usable warm start)."""
    if warm is None or not math.isfinite(warm_score):
        if warm is not None:
            note = f"{note}; the {warm.method} warm start takes {format_time(warm.makespan)}, over the makespan limit"
        return PlanResult(status, message=note, stats=stats,
                          objective_result=None if figure is None else replace(figure, value=None))
    stats["returned"] = "warm"
    if bound is not None and objective == "makespan":
        if meets_bound(warm_score, bound):
            # a bound for every schedule (``bound`` is only ever one here) that the warm start meets
            return _result("optimal", warm.schedule, formulation, objective, warm_score, min(bound, warm_score),
                           stats, figure, f"the {warm.method} schedule meets the lower bound")
        bound = min(bound, warm_score)
    return _result("feasible", warm.schedule, formulation, objective, warm_score, bound, stats, figure,
                   f"{note}; returning the {warm.method} schedule")


def _left(dl: Deadline) -> float:
    """Seconds a back end may use before ``dl``, keeping a margin to decode and validate (0.0
    once it has passed)."""
    left = dl.left()
    return max(0.0, left - min(2.0, 0.05 * left))


def _stage_deadline(seconds: float, dl: Deadline | None) -> Deadline:
    """``seconds`` from now, never past ``dl`` (on its clock)."""
    return Deadline.after(seconds) if dl is None else dl.within(seconds)


def _backend_deadline(dl: Deadline) -> Deadline:
    """``dl`` less the margin that :func:`_left` keeps to decode and validate."""
    return dl.reserving(0.05, 2.0)


def _tag(s: Schedule, method: str, status: str, objective: float | None, bound: float | None) -> Schedule:
    info = {"method": method, "status": status, "objective": objective, "bound": bound}
    return Schedule(s.trace, s.hardware, s.actions, dict(s.capacity), info)


def _limit_infeasible(instance: Instance, options: SolveOptions, target: float, stats: dict[str, Any],
                      dl: Deadline | None = None) -> str | None:
    """Why no schedule keeps the makespan limit ``target``, when the window LP relaxation proves it.

    The relaxation bounds the makespan of every schedule at the instance's capacity, hence at any
    smaller one (``min-memory`` searches below it).
    """
    from formulations.relax import window_bound

    rb = window_bound(instance.trace, instance.hardware, recompute=options.recompute, time_limit=30.0, deadline=dl)
    stats["relaxation"] = rb.status
    if rb.status == "infeasible":
        return rb.message
    if rb.status == "bound" and rb.value is not None and rb.value > target * (1 + 1e-9) + 1e-12:
        return (f"no schedule finishes within the makespan limit of {format_time(target)}: the window LP "
                f"relaxation proves every schedule takes at least {format_time(rb.value)}")
    return None


def _infeasible(instance: Instance, options: SolveOptions, formulation: str, stats: dict[str, Any],
                dl: Deadline | None = None) -> PlanResult:
    """The formulation has no solution: infeasible only when the window relaxation proves it."""
    from formulations.relax import window_bound

    rb = window_bound(instance.trace, instance.hardware, recompute=options.recompute, time_limit=30.0, deadline=dl)
    stats["relaxation"] = rb.status
    if rb.status == "infeasible":
        return PlanResult("infeasible", message=rb.message, stats=stats)
    return PlanResult("error", message=f"the {formulation} formulation has no schedule in its space, but a "
                                       "schedule outside it may exist (the relaxation does not rule it out)",
                      bound=rb.value if rb.status == "bound" else None, stats=stats)


def _stage_fallback(problem: Problem, instance: Instance) -> tuple[Schedule, float] | None:
    from formulations.stages import layout_for, plan_steps

    lay = layout_for(problem)
    plan = stage_heuristic(problem, lay)
    if plan is None:
        return None
    s = make_schedule(instance.trace.name, instance.hardware.name, plan_steps(problem, lay, plan), "barrier",
                      instance.capacity, {"method": "stage-heuristic"})
    rep = validate(instance.trace, instance.hardware, s)
    return (s, rep.metrics.makespan) if rep.valid else None


def _run_milp(problem: Problem, instance: Instance, options: SolveOptions, backend: str, objective: str,
              max_ov: float, target: float | None, remaining: float, soft: float | None = None,
              dl: Deadline | None = None) -> tuple[Any, ...]:
    """The stage MILP (its MIP start, build, solve and decode) within ``remaining`` seconds, never
    past ``dl``."""
    until = _stage_deadline(remaining, dl)
    from formulations.milp import MilpOptions, solve_stage_milp
    from formulations.stages import layout_for, plan_steps

    extra = options.extra
    limit = problem.lower_cap if objective == "min-memory" else None
    lay = layout_for(problem, limit)
    t_in = time.perf_counter()
    start = stage_heuristic(problem, lay, deadline=until.share(0.1)) \
        if objective == "makespan" else None
    opts = MilpOptions(backend=backend, objective=objective, max_overhead=max_ov,
                       makespan=target if objective == "min-bytes" else None,
                       deadline=_backend_deadline(until), threads=options.threads,
                       write_model=extra.get("write_model"), msg=bool(extra.get("log", False)),
                       soft_limit=None if soft is None else max(0.5, soft - (time.perf_counter() - t_in)))
    res = solve_stage_milp(problem, opts, start)
    st = {f"model_{k}": v for k, v in res.stats.items()}
    st["backend"] = backend
    st["mip_start"] = start is not None
    if res.plan is None:
        if "message" in res.stats:
            st["message"] = res.stats["message"]
        return None, res.status, None, res.bound, None, st, None
    steps = plan_steps(problem, lay, res.plan)
    cap = res.capacity if objective == "min-memory" else None
    caps = dict(instance.capacity)
    if cap is not None:
        caps[problem.compute] = cap
    sched = make_schedule(instance.trace.name, instance.hardware.name, steps, "barrier", caps,
                          {"method": "milp"})
    bound = res.bound
    st["model_objective"] = res.objective
    return sched, res.status, res.objective, bound, cap, st, (lay, res.plan)


def _validated_makespan(instance: Instance, steps: list[Any]) -> float | None:
    """The validated makespan of a CP-SAT solution's planned steps (None if invalid): the figure
    the search offers to a race."""
    s = make_schedule(instance.trace.name, instance.hardware.name, steps, "event", dict(instance.capacity),
                      {"method": "cpsat"})
    rep = validate(instance.trace, instance.hardware, s)
    return rep.metrics.makespan if rep.valid else None


def _run_cpsat(problem: Problem, instance: Instance, options: SolveOptions, objective: str, max_ov: float,
               target: float | None, remaining: float, warm: Warm | None,
               seed_plan: tuple[Any, Any] | None = None, race: Race | None = None,
               lns_first: float = 0.0, dl: Deadline | None = None) -> tuple[Any, ...]:
    """The CP-SAT model (its hints, build, search and decode) within ``remaining`` seconds, never
    past ``dl``."""
    until = _stage_deadline(remaining, dl)
    from formulations.cpsat import CpOptions, solve_cpsat

    from formulations.stages import layout_for

    extra = options.extra
    stage_plan = seed_plan
    if objective == "makespan" and stage_plan is None:
        lay = layout_for(problem)
        plan = stage_heuristic(problem, lay, deadline=until.share(0.1))
        if plan is not None:
            stage_plan = (lay, plan)
    res_s = extra.get("resolution")
    opts = CpOptions(stage_plan=stage_plan, objective=objective, max_overhead=max_ov,
                     makespan=target if objective == "min-bytes" else None,
                     deadline=_backend_deadline(until), threads=options.threads, seed=options.seed,
                     resolution=None if res_s is None else parse_time(res_s),
                     warm=warm.schedule if warm is not None else None, log=bool(extra.get("log", False)),
                     race=race, measure=None if race is None else partial(_validated_makespan, instance),
                     lns_first=lns_first)
    try:
        res = solve_cpsat(problem, opts)
    except ValueError as exc:
        return None, "error", None, None, None, {"message": str(exc)}
    st = {f"model_{k}": v for k, v in res.stats.items()}
    st["model_objective"], st["model_bound"] = res.objective, res.bound
    if res.steps is None:
        if "message" in res.stats:
            st["message"] = res.stats["message"]
        return None, res.status, None, res.bound, None, st
    caps = dict(instance.capacity)
    if res.capacity is not None:
        caps[problem.compute] = res.capacity
    sched = make_schedule(instance.trace.name, instance.hardware.name, res.steps, "event", caps,
                          {"method": "cpsat"})
    return sched, res.status, res.objective, res.bound, res.capacity, st
