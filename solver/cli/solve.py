"""``tierplan solve TRACE --hardware HW``: plan a schedule, validate it, and report.

Exit status: 0 a valid schedule (written with ``-o``), 1 no schedule (infeasible,
timeout, or the method failed), 2 unreadable input or bad options.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from solver.cli._common import add_capacity_option, check_outputs, hardware_file, load_instance, shown
from solver.deadline import command_deadline
from solver.errors import InputError
from solver.fileio import dumps_json
from solver.formats import save_schedule
from solver.methods import (OBJECTIVES, Method, ObjectiveResult, SolveOptions, UnknownMethod, get_method,
                            methods_reading)
from solver.solve import InstanceError, SolveOutcome, make_instance, solve
from solver.units import UnitError, format_bytes, format_time, parse_time


#: The dedicated flags of ``SolveOptions.extra`` keys (any other key comes from ``--option KEY=VALUE``).
FLAG_OF_KEY: Mapping[str, str] = MappingProxyType({
    "objective": "--objective", "max_overhead": "--max-overhead", "makespan": "--makespan",
    "write_model": "--write-model", "resolution": "--resolution", "log": "--solver-log", "bounds": "--bounds",
})


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("solve", help="plan where every tensor lives and when it moves",
                       description="Plan a schedule for TRACE on HW with a registered method (see `tierplan "
                                   "methods`), validate it with the timing model, and report its makespan, "
                                   "lower bound and gap. Exit 0 with a valid schedule, 1 when there is none "
                                   "(infeasible, timeout, method failure), 2 on unreadable input or an option "
                                   "the method does not take.")
    p.add_argument("trace", help="trace file (tierplan.trace/1)")
    p.add_argument("--hardware", "-H", required=True, metavar="HW", help="hardware file (tierplan.hardware/1) or preset name, e.g. h100-pcie")
    p.add_argument("--method", "-m", default="greedy", help="planning method (default greedy)")
    add_capacity_option(p)
    p.add_argument("--budget", type=float, metavar="FRACTION",
                   help="compute-tier capacity as a fraction of the trace's no-offload peak (rounded up)")
    p.add_argument("--time-limit", type=float, metavar="S",
                   help="seconds for the whole command (loading, warm start, bounds, model, solve, validation), "
                        "any method; it ends within S plus max(2 s, 10%%) (exact methods: default 60 s of "
                        "planning; a heuristic out of time says timeout)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="solver threads (exact methods; the heuristics ignore it); with N >= 2, cpsat and auto "
                        "run their window MILP bound on one more thread beside the search")
    p.add_argument("--no-recompute", action="store_true", help="do not recompute; only move tensors")
    p.add_argument("--bounds", choices=("cheap", "lp", "milp"), default=None,
                   help="the lower bound the gap is measured against: cheap (compute, traffic, capacity; "
                        "milliseconds), lp (adds the window LP, as `tierplan bound`), milp (adds its integral "
                        "version, as `tierplan bound --milp`) [default: cheap for the heuristics, milp for the "
                        "exact methods]")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="method-specific option (repeatable), e.g. --option window=4 (belady); a key the "
                        "method does not read is refused")
    g = p.add_argument_group("exact methods (milp, milp-cbc, cpsat, auto)")
    g.add_argument("--objective", choices=OBJECTIVES,
                   help="makespan (default); min-memory: the least compute-tier capacity whose makespan stays "
                        "within (1 + --max-overhead) x the compute time; min-bytes: the fewest bytes copied "
                        "with the makespan at most --makespan (default: the warm start's makespan)")
    g.add_argument("--max-overhead", type=float, metavar="F",
                   help="overhead limit of --objective min-memory, a fraction >= 0 (default 0.05)")
    g.add_argument("--makespan", metavar="SECONDS",
                   help="makespan limit of --objective min-bytes, seconds or a unit string such as 12ms "
                        "(default: the warm start's makespan)")
    g.add_argument("--resolution", metavar="SECONDS",
                   help="cpsat, auto: seconds per tick of the CP-SAT clock, e.g. 10us (default: the largest "
                        "power of ten dividing every duration, else the horizon cut into 10^8 ticks)")
    g.add_argument("--solver-log", action="store_true",
                   help="stream the back end's own log (HiGHS, CBC, CP-SAT) to stderr")
    g.add_argument("--write-model", metavar="FILE.mps|.lp",
                   help="milp, milp-cbc, auto: export the stage MILP for another solver")
    p.add_argument("-o", "--output", metavar="SCHEDULE.json", help="write the schedule here (atomically)")
    p.add_argument("--json", action="store_true", help="print one JSON object (machine output)")
    p.set_defaults(func=run)


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_method_options(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items as a dict (numbers and booleans converted).

    Examples
    --------
    >>> parse_method_options(["window=4", "backend=cbc"])
    {'window': 4, 'backend': 'cbc'}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise InputError.single("--option", item, "expected KEY=VALUE, e.g. window=4")
        out[key.strip()] = _value(val.strip())
    return out


def method_extra(method: Method, items: list[str], flags: Mapping[str, Any]) -> dict[str, Any]:
    """``SolveOptions.extra`` for ``method``: the ``--option`` items and the dedicated flags, checked.

    Parameters
    ----------
    method : Method
    items : list of str
        ``--option KEY=VALUE`` items.
    flags : Mapping
        Values of the dedicated flags by key (see :data:`FLAG_OF_KEY`); None when not given.

    Raises
    ------
    InputError
        A key the method does not read (naming the flag and the methods that take it), an option
        of another objective (``--max-overhead`` without ``min-memory``, ``--makespan`` without
        ``min-bytes``), or a bad value (negative, not a time, an unknown model suffix, a ``bounds``,
        ``windows`` or ``race`` value not offered, a size guard that is not a whole number >= 1).

    Examples
    --------
    >>> from solver.methods import get_method
    >>> method_extra(get_method("cpsat"), ["resolution=10us"], {"objective": "min-bytes", "makespan": "12ms"})
    {'resolution': 1e-05, 'objective': 'min-bytes', 'makespan': 0.012}
    >>> method_extra(get_method("milp"), [], {"resolution": "1ms"})
    Traceback (most recent call last):
    ...
    solver.errors.InputError: --resolution: applies to cpsat, auto; not to milp
    """
    extra = parse_method_options(items)
    extra.update({k: v for k, v in flags.items() if v is not None})
    for key in extra:
        if key not in method.options:
            users = methods_reading(key)
            where = f"applies to {', '.join(users)}; not to {method.name}" if users else \
                f"no method reads it ({method.name} reads: {', '.join(method.options) or 'nothing'})"
            raise InputError.single(FLAG_OF_KEY.get(key, f"--option {key}"), "", where)
    objective = extra.get("objective", "makespan")
    if objective not in OBJECTIVES:
        raise InputError.single("--objective", "", f"unknown objective {objective!r}; expected one of "
                                f"{', '.join(OBJECTIVES)}")

    def need(key: str, obj: str) -> None:
        if key in extra and objective != obj:
            raise InputError.single(FLAG_OF_KEY[key], "", f"applies to --objective {obj}, not {objective}")

    need("max_overhead", "min-memory")
    need("makespan", "min-bytes")
    if "max_overhead" in extra:
        try:
            ov = float(extra["max_overhead"])
        except (TypeError, ValueError):
            ov = math.nan
        if not (ov >= 0 and math.isfinite(ov)):
            raise InputError.single("--max-overhead", "", f"must be a fraction >= 0, got {extra['max_overhead']}")
        extra["max_overhead"] = ov
    for key in ("makespan", "resolution"):
        if key in extra:
            try:
                sec = parse_time(extra[key])
            except UnitError as exc:
                raise InputError.single(FLAG_OF_KEY[key], "", str(exc)) from None
            if not (sec > 0 and math.isfinite(sec)):
                raise InputError.single(FLAG_OF_KEY[key], "", f"must be a positive time, got {extra[key]}")
            extra[key] = sec
    if "bounds" in extra:
        from formulations.planners import BOUND_STAGES

        if extra["bounds"] not in BOUND_STAGES:
            raise InputError.single("--option bounds", str(extra["bounds"]),
                                    f"expected one of {', '.join(BOUND_STAGES)}")
    for key in ("windows", "race"):
        if key in extra and extra[key] not in ("on", "off"):
            raise InputError.single(f"--option {key}", str(extra[key]), "expected on or off")
    for key, least in (("max_milp", 1), ("max_cp", 1), ("candidates", 1), ("window", 0)):
        if key in extra and not (isinstance(extra[key], int) and not isinstance(extra[key], bool)
                                 and extra[key] >= least):
            raise InputError.single(f"--option {key}", str(extra[key]), f"expected a whole number >= {least}")
    model = extra.get("write_model")
    if model is not None and not str(model).lower().endswith((".mps", ".lp")):
        raise InputError.single("--write-model", str(model), "use a .mps or .lp suffix")
    return extra


def clock_facts(stats: Mapping[str, Any]) -> dict[str, Any] | None:
    """The CP-SAT clock a solve used (None when no CP-SAT model was built).

    ``source`` is ``exact`` (the largest power of ten dividing every duration), ``horizon`` (the
    horizon cut into 10^8 ticks, durations rounded up), ``given`` (``--resolution``) or ``unit``
    (one tick per op: nothing can be copied, time is pure sequence and the resolution does not matter).

    Examples
    --------
    >>> clock_facts({"model_resolution_s": 1e-05, "model_exact_clock": True, "model_resolution_source": "given"})
    {'seconds': 1e-05, 'exact': True, 'source': 'given'}
    >>> clock_facts({}) is None
    True
    """
    res = stats.get("model_resolution_s")
    if res is None:
        return None
    return {"seconds": float(res), "exact": bool(stats.get("model_exact_clock")),
            "source": str(stats.get("model_resolution_source", "exact"))}


def _clock_line(clock: dict[str, Any]) -> str:
    if clock["source"] == "unit":
        return ("  CP-SAT clock: one tick per op (no copy can help: time is pure sequence, the resolution does "
                "not matter)")
    how = {"given": "--resolution", "exact": "the largest power of ten dividing every duration",
           "horizon": "the horizon cut into 10^8 ticks"}.get(clock["source"], clock["source"])
    fit = "every duration a whole number of ticks" if clock["exact"] else "durations rounded up to whole ticks"
    sec = clock["seconds"]
    tick = format_time(sec) if sec >= 1e-6 else f"{sec * 1e9:.4g} ns"
    return f"  CP-SAT clock: {tick} per tick ({how}; {fit})"


def _limit_line(goal: ObjectiveResult, compute: float) -> str:
    lim = "n/a" if goal.makespan_limit is None else format_time(goal.makespan_limit)
    ov = goal.max_overhead if goal.max_overhead is not None else 0.0
    why = {"max_overhead": f"= (1 + {ov:g}) x compute {format_time(compute)}",
           "makespan": "(--makespan)",
           "warm start": "(the warm start's makespan; set it with --makespan)"}.get(goal.limit_source or "", "")
    if goal.kind == "min-bytes" and goal.limit_source == "max_overhead":
        why += " (no warm start; set it with --makespan)"
    return f"  objective {goal.kind}: makespan at most {lim} {why}".rstrip()


def _figure_line(goal: ObjectiveResult, status: str, model: str | None) -> str:
    v = goal.value
    if v is None:
        return ""
    what = f"min {goal.tier} capacity" if goal.kind == "min-memory" else "bytes moved"
    if status == "optimal":
        how = "proven optimal" + (" (it meets a bound that holds for every schedule)" if model == "bound" else
                                  f" in the {model} model's space" if model else "")
    elif goal.bound is not None:
        gap = f", gap {(v / goal.bound - 1) * 100:.2f}%" if goal.bound > 0 else ""
        how = f"best found; bound {format_bytes(goal.bound)} ({int(goal.bound)} B){gap}"
    else:
        how = "best found; no bound"
    return f"  {what}: {format_bytes(v)} ({int(v)} B), {how}"


def human_summary(out: SolveOutcome, instance_facts: dict[str, Any], path: str | None, stream=None) -> None:
    """Print the solve summary (the validator's metrics plus bound, gap and wall time; for the
    ``min-memory`` and ``min-bytes`` objectives their figure, bound and makespan limit; the CP-SAT
    clock when a CP-SAT model was built)."""
    stream = stream or sys.stdout
    w = lambda s="": print(shown(s), file=stream)  # noqa: E731  (ids from files cannot drive the terminal)
    c = instance_facts["compute_tier"]
    goal = out.objective_result
    other = goal is not None and goal.kind != "makespan"
    clock = clock_facts(out.stats)
    if not out.ok:
        w(f"{out.method}: {out.status}: {out.message}")
        if other:
            w(_limit_line(goal, instance_facts.get("compute", 0.0)))
            if goal.bound is not None:
                w(f"  bound on {goal.kind}: {format_bytes(goal.bound)} ({int(goal.bound)} B)")
        return
    m = out.report.metrics
    where = f"written to {path}" if path else "not written (use -o FILE)"
    w(f"{out.method}: {out.status} schedule, {where}")
    budget = instance_facts.get("budget")
    cap_txt = format_bytes(instance_facts["capacity"])
    extra = f" = {budget:g} x no-offload peak {format_bytes(instance_facts['peak'])}" if budget else \
        f" (no-offload peak {format_bytes(instance_facts['peak'])})"
    w(f"  {instance_facts['trace']} ({instance_facts['ops']} ops) on {instance_facts['hardware']}: "
      f"{c} {cap_txt}{extra}")
    if out.message:
        w(f"  note: {out.message}")
    if other:
        w(_limit_line(goal, m.compute_time))
        w(_figure_line(goal, out.status, out.stats.get("model")))
    ov = "n/a" if m.overhead is None else f"{m.overhead * 100:.2f}%"
    w(f"  makespan {format_time(m.makespan)}  compute {format_time(m.compute_time)}  "
      f"recompute {format_time(m.recompute_time)}  overhead {ov}")
    if out.bound is not None and math.isfinite(out.bound) and out.bound > 0:
        which = max(out.bounds, key=lambda k: out.bounds[k])
        gap = f"{out.gap * 100:.2f}%" if out.gap is not None else "n/a"
        label = "makespan lower bound" if other else "lower bound"
        w(f"  {label} {format_time(out.bound)} ({which})  gap {gap}")
        if which in ("compute", "fetch", "writeback", "capacity") and instance_facts.get("bounds") in (None, "cheap") \
                and not instance_facts.get("exact"):
            w("  (cheap bounds only: --bounds lp adds the window LP relaxation, the bound of `tierplan bound`)")
    if clock is not None:
        w(_clock_line(clock))
    elif instance_facts.get("resolution") is not None:
        w("  CP-SAT clock: not used (no CP-SAT model was built)")
    for tier, peak in m.peak.items():
        cap = out.report.capacity.get(tier)
        src = instance_facts.get("capacity_source", {}).get(tier, "hardware")
        src = "" if src == "hardware" else f" ({src})"
        w(f"  peak {tier}: {format_bytes(peak)} of {format_bytes(cap) if cap is not None else '?'}{src}")
    moved = [(s, n) for s, n in m.bytes_moved.items() if m.copies[s]]
    for s, n in moved:
        w(f"  {s}: {m.copies[s]} copies, {format_bytes(n)}")
    if not moved:
        w("  no copies")
    w(f"  wall {format_time(out.wall_s)} (plan {format_time(out.plan_s)}, validate {format_time(out.validate_s)})")


def run(args: argparse.Namespace) -> int:
    deadline = command_deadline(args.time_limit)
    check_outputs([("-o", args.output), ("--write-model", args.write_model)],
                  [args.trace, hardware_file(args.hardware)])
    trace, hardware, caps = load_instance(args.trace, args.hardware, args.capacity)
    try:
        method = get_method(args.method)
    except UnknownMethod as exc:
        raise InputError.single("--method", "", str(exc)) from None
    if args.budget is not None and not (args.budget > 0 and math.isfinite(args.budget)):
        raise InputError.single("--budget", "", f"must be a positive fraction, got {args.budget}")
    if args.time_limit is not None and not args.time_limit > 0:
        raise InputError.single("--time-limit", "", f"must be positive, got {args.time_limit}")
    if args.threads is not None and args.threads < 1:
        raise InputError.single("--threads", "", f"must be at least 1, got {args.threads}")
    extra = method_extra(method, args.option, {
        "objective": args.objective, "max_overhead": args.max_overhead, "makespan": args.makespan,
        "write_model": args.write_model, "resolution": args.resolution, "log": True if args.solver_log else None,
        "bounds": args.bounds})
    if "resolution" in extra:
        from formulations.cpsat import MAX_EXACT_TICKS

        ticks = trace.compute_time / extra["resolution"]
        if ticks > MAX_EXACT_TICKS:
            raise InputError.single("--resolution", "", f"{extra['resolution']:.6g} s cuts the compute time alone "
                                    f"({format_time(trace.compute_time)}) into {ticks:.3g} ticks; at most 10^10 "
                                    "are allowed (give a coarser resolution)")
    try:
        instance = make_instance(trace, hardware, caps, args.budget, within_device=True)
    except InstanceError as exc:
        raise InputError.single("--budget" if args.budget is not None else "--capacity", "", str(exc)) from None
    options = SolveOptions(time_limit=args.time_limit, threads=args.threads, recompute=not args.no_recompute,
                           extra=extra, deadline=deadline)
    out = solve(instance, method.name, options)
    written = None
    if out.ok and args.output:
        save_schedule(args.output, out.schedule)
        written = args.output
    facts = {"trace": trace.name, "hardware": hardware.name, "ops": len(trace.ops),
             "compute_tier": hardware.compute_tier, "capacity": instance.compute_capacity,
             "peak": trace.no_offload_peak, "budget": args.budget, "compute": trace.compute_time,
             "resolution": extra.get("resolution"), "capacity_source": dict(instance.capacity_source),
             "bounds": extra.get("bounds"), "exact": method.exact}
    if args.json:
        doc = out.to_dict()
        doc.update({"trace": trace.name, "hardware": hardware.name, "ops": len(trace.ops),
                    "no_offload_peak": trace.no_offload_peak, "schedule_file": written,
                    "resolution": clock_facts(out.stats),
                    "capacity_in_force": {k: {"bytes": v, "source": instance.capacity_source.get(k, "hardware")}
                                          for k, v in instance.hardware.capacity.items()}})
        sys.stdout.buffer.write(dumps_json(doc, indent=None) + b"\n")
        sys.stdout.flush()
    else:
        human_summary(out, facts, written)
    return 0 if out.ok else 1
