"""``tierplan solve TRACE --hardware HW``: plan a schedule, validate it, and report.

Exit status: 0 a valid schedule (written with ``-o``), 1 no schedule (infeasible,
timeout, or the method failed), 2 unreadable input or bad options.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from solver.cli._common import add_capacity_option, load_instance
from solver.errors import InputError
from solver.fileio import dumps_json
from solver.formats import save_schedule
from solver.methods import SolveOptions, UnknownMethod, get_method
from solver.solve import InstanceError, SolveOutcome, make_instance, solve
from solver.units import format_bytes, format_time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("solve", help="plan where every tensor lives and when it moves",
                       description="Plan a schedule for TRACE on HW with a registered method (see `tierplan "
                                   "methods`), validate it with the timing model, and report its makespan, "
                                   "lower bound and gap. Exit 0 with a valid schedule, 1 when there is none "
                                   "(infeasible, timeout, method failure), 2 on unreadable input.")
    p.add_argument("trace", help="trace file (tierplan.trace/1)")
    p.add_argument("--hardware", "-H", required=True, metavar="HW", help="hardware file (tierplan.hardware/1)")
    p.add_argument("--method", "-m", default="greedy", help="planning method (default greedy)")
    add_capacity_option(p)
    p.add_argument("--budget", type=float, metavar="FRACTION",
                   help="compute-tier capacity as a fraction of the trace's no-offload peak (rounded up)")
    p.add_argument("--time-limit", type=float, metavar="S", help="seconds the method may use")
    p.add_argument("--threads", type=int, metavar="N", help="solver threads (exact methods)")
    p.add_argument("--no-recompute", action="store_true", help="do not recompute; only move tensors")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="method-specific option (repeatable), e.g. --option window=4")
    g = p.add_argument_group("exact methods (milp, milp-cbc, cpsat, auto)")
    g.add_argument("--objective", choices=("makespan", "min-memory", "min-bytes"),
                   help="makespan (default); min-memory: the least compute-tier capacity whose overhead stays "
                        "within --max-overhead; min-bytes: the fewest bytes moved at the warm start's makespan")
    g.add_argument("--max-overhead", type=float, metavar="F", help="overhead limit of --objective min-memory "
                                                                    "(default 0.05)")
    g.add_argument("--write-model", metavar="FILE.mps|.lp", help="export the MILP for another solver")
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


def human_summary(out: SolveOutcome, instance_facts: dict[str, Any], path: str | None, stream=None) -> None:
    """Print the solve summary (the validator's metrics plus bound, gap and wall time)."""
    stream = stream or sys.stdout
    w = lambda s="": print(s, file=stream)  # noqa: E731
    c = instance_facts["compute_tier"]
    if not out.ok:
        w(f"{out.method}: {out.status}: {out.message}")
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
    ov = "n/a" if m.overhead is None else f"{m.overhead * 100:.2f}%"
    w(f"  makespan {format_time(m.makespan)}  compute {format_time(m.compute_time)}  "
      f"recompute {format_time(m.recompute_time)}  overhead {ov}")
    if out.bound is not None and math.isfinite(out.bound) and out.bound > 0:
        which = max(out.bounds, key=lambda k: out.bounds[k])
        gap = f"{out.gap * 100:.2f}%" if out.gap is not None else "n/a"
        w(f"  lower bound {format_time(out.bound)} ({which})  gap {gap}")
    for tier, peak in m.peak.items():
        cap = out.report.capacity.get(tier)
        w(f"  peak {tier}: {format_bytes(peak)} of {format_bytes(cap) if cap is not None else '?'}")
    moved = [(s, n) for s, n in m.bytes_moved.items() if m.copies[s]]
    for s, n in moved:
        w(f"  {s}: {m.copies[s]} copies, {format_bytes(n)}")
    if not moved:
        w("  no copies")
    w(f"  wall {format_time(out.wall_s)} (plan {format_time(out.plan_s)}, validate {format_time(out.validate_s)})")


def run(args: argparse.Namespace) -> int:
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
    try:
        instance = make_instance(trace, hardware, caps, args.budget)
    except InstanceError as exc:
        raise InputError.single("--budget" if args.budget is not None else "--capacity", "", str(exc)) from None
    extra = parse_method_options(args.option)
    for key, value in (("objective", args.objective), ("max_overhead", args.max_overhead),
                       ("write_model", args.write_model)):
        if value is not None:
            extra[key] = value
    options = SolveOptions(time_limit=args.time_limit, threads=args.threads, recompute=not args.no_recompute,
                           extra=extra)
    out = solve(instance, method.name, options)
    written = None
    if out.ok and args.output:
        save_schedule(args.output, out.schedule)
        written = args.output
    facts = {"trace": trace.name, "hardware": hardware.name, "ops": len(trace.ops),
             "compute_tier": hardware.compute_tier, "capacity": instance.compute_capacity,
             "peak": trace.no_offload_peak, "budget": args.budget}
    if args.json:
        doc = out.to_dict()
        doc.update({"trace": trace.name, "hardware": hardware.name, "ops": len(trace.ops),
                    "no_offload_peak": trace.no_offload_peak, "schedule_file": written})
        sys.stdout.buffer.write(dumps_json(doc, indent=None) + b"\n")
        sys.stdout.flush()
    else:
        human_summary(out, facts, written)
    return 0 if out.ok else 1
