"""``tierplan bound TRACE --hardware HW``: lower bounds on the makespan of any valid schedule.

Reports the window LP relaxation (:mod:`formulations.relax`, valid for every schedule under the
timing model, whatever planner made it) together with the cheap bounds of
:mod:`solver.bounds`, and the best of them. ``--stage`` adds the LP relaxation of the stage
MILP, which bounds that model's schedules only (it is shown, never used as the best bound).

Exit status: 0 with a bound, 1 when a relaxation proves that no schedule fits, 2 on
unreadable input or bad options.
"""

from __future__ import annotations

import argparse
import math
import sys
from types import SimpleNamespace
from typing import Any

from solver.cli._common import add_capacity_option, load_instance
from solver.deadline import Deadline, command_deadline, deadline_of
from solver.errors import InputError
from solver.fileio import dumps_json
from solver.solve import InstanceError, make_instance
from solver.units import format_time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bound", help="lower bounds on the makespan (LP relaxation and cheap bounds)",
                       description="Lower bounds on the makespan of every valid schedule of TRACE on HW: the "
                                   "window LP relaxation of the timing model and the cheap bounds. Exit 0 with a "
                                   "bound, 1 when no schedule can fit, 2 on unreadable input.")
    p.add_argument("trace", help="trace file (tierplan.trace/1)")
    p.add_argument("--hardware", "-H", required=True, metavar="HW", help="hardware file (tierplan.hardware/1) or preset name, e.g. h100-pcie")
    add_capacity_option(p)
    p.add_argument("--budget", type=float, metavar="FRACTION",
                   help="compute-tier capacity as a fraction of the trace's no-offload peak (rounded up)")
    p.add_argument("--no-recompute", action="store_true", help="bound schedules that never recompute")
    p.add_argument("--time-limit", type=float, metavar="S",
                   help="seconds for the whole command (the LP, then --milp and --stage, share them); it ends "
                        "within S plus max(2 s, 10%%)")
    p.add_argument("--milp", action="store_true",
                   help="also solve the window relaxation as a MILP (absences and recomputes integral): at "
                        "least as strong, slower; at --time-limit its best bound so far counts")
    p.add_argument("--stage", action="store_true",
                   help="also report the stage MILP's LP relaxation (a bound for that model only)")
    p.add_argument("--json", action="store_true", help="print one JSON object (machine output)")
    p.set_defaults(func=run)


def compute_bounds(trace: Any, hardware: Any, capacity: dict[str, int], budget: float | None,
                   recompute: bool = True, time_limit: float | None = None, stage: bool = False,
                   milp: bool = False, deadline: Deadline | None = None) -> dict[str, Any]:
    """All the bounds ``tierplan bound`` reports, as a JSON-ready dict.

    ``time_limit`` (seconds from the call) and ``deadline`` (the sooner counts) cover all of it:
    the LP first, then (``milp``) the MILP in the time left, then (``stage``) the stage LP in what
    is left after that.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=2.0, inputs=("x",)),))
    >>> d = compute_bounds(tr, Hardware("h", "HBM", (Tier("HBM", 100),)), {}, None)
    >>> d["status"], d["bound"], d["best"]
    ('bound', 2.0, 'compute')
    """
    from solver.bounding import instance_bounds

    until = deadline_of(SimpleNamespace(time_limit=time_limit, deadline=deadline))
    instance = make_instance(trace, hardware, capacity, budget, within_device=True)
    bset = instance_bounds(instance, "milp" if milp else "lp", recompute=recompute, deadline=until)
    out: dict[str, Any] = {"trace": trace.name, "hardware": hardware.name,
                           "compute_tier": hardware.compute_tier, "capacity": instance.compute_capacity,
                           "compute_time": trace.compute_time,
                           "relaxation": bset.stats.get("relaxation", "not run (a cheap bound proves infeasibility)"),
                           "relaxation_stats": dict(bset.stats.get("relaxation_stats", {})),
                           "message": bset.message}
    if "relaxation_milp" in bset.stats:
        out["relaxation_milp"] = bset.stats["relaxation_milp"]
        out["relaxation_milp_stats"] = dict(bset.stats["relaxation_milp_stats"])
    out["bounds"] = {k: (v if math.isfinite(v) else "inf") for k, v in bset.bounds.items()}
    infeasible = bset.status == "infeasible"
    out["status"] = bset.status
    out["bound"] = bset.bound
    out["best"] = bset.best
    if stage and not infeasible:
        from formulations.common import build_problem
        from formulations.relax import stage_lp_bound

        problem = build_problem(trace, instance.hardware, recompute=recompute)
        out["stage_lp"] = stage_lp_bound(problem, deadline=until)
    return out


def run(args: argparse.Namespace) -> int:
    trace, hardware, caps = load_instance(args.trace, args.hardware, args.capacity)
    if args.budget is not None and not (args.budget > 0 and math.isfinite(args.budget)):
        raise InputError.single("--budget", "", f"must be a positive fraction, got {args.budget}")
    if args.time_limit is not None and not args.time_limit > 0:
        raise InputError.single("--time-limit", "", f"must be positive, got {args.time_limit}")
    try:
        doc = compute_bounds(trace, hardware, caps, args.budget, not args.no_recompute, None, args.stage,
                             args.milp, deadline=command_deadline(args.time_limit))
    except InstanceError as exc:
        raise InputError.single("--budget" if args.budget is not None else "--capacity", "", str(exc)) from None
    if args.json:
        sys.stdout.buffer.write(dumps_json(doc, indent=None) + b"\n")
        sys.stdout.flush()
    else:
        if doc["status"] == "infeasible":
            print(f"infeasible: {doc['message']}")
        else:
            print(f"lower bound {format_time(doc['bound'])} ({doc['best']}); compute {format_time(doc['compute_time'])}")
        for k, v in doc["bounds"].items():
            print(f"  {k:<12}{v if isinstance(v, str) else format_time(v)}")
        if doc.get("stage_lp") is not None:
            print(f"  {'stage-lp':<12}{format_time(doc['stage_lp'])}  (stage MILP relaxation: that model only)")
    return 1 if doc["status"] == "infeasible" else 0
