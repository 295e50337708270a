"""Heuristics benchmark: greedy's planning speed on ~100,000-op traces, and every heuristic on suites.

Two parts:

1. **Scale**: generate traces of about 100,000 ops (a Llama-style training step with many
   layers and micro-batches whose optimizer states start in DDR, and a random DAG) and time
   ``greedy`` planning them at memory budgets 0.7 and 0.5 (median of ``--repeat`` runs, ops
   per second), then validate each plan once.
2. **Quality**: every heuristic on every instance of the given suites at the given budgets:
   status, overhead over pure compute time, gap to the lower bound, bytes moved, planning
   wall time; and per budget, greedy's mean overhead against each baseline's over the
   instances both can fit.

Usage::

    python -m solver.perf.greedy --out results/heuristics.md
    python -m solver.perf.greedy --suites small --budgets 0.7 --skip-scale      # quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from solver.fileio import write_text_atomic
from solver.formats import load_hardware, trace_from_document
from solver.methods import REGISTRY, SolveOptions, get_method
from solver.model import Hardware, Trace
from solver.solve import make_instance, solve
from solver.timing import validate
from solver.units import format_bytes

#: The ~100,000-op traces of the scale benchmark: (label, generator kind, options, hardware preset).
SCALE_TRACES: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("train llama-tiny 400 layers x 9 micro-batches (states in DDR)", "train",
     {"model": "llama-tiny", "layers": 400, "grad_accum": 9, "seq_len": 512, "optimizer_tier": "DDR"},
     "h100-pcie"),
    ("random DAG, 100,000 ops", "random", {"ops": 100_000}, "h100-pcie"),
)


@dataclass(frozen=True)
class Row:
    """One (instance, budget, method) result."""

    suite: str
    instance: str
    ops: int
    budget: float
    method: str
    status: str
    overhead: float | None
    gap: float | None
    moved: int
    plan_s: float
    message: str = ""


def _hardware(preset: str) -> Hardware:
    from solver.workloads.presets import hardware_preset_path
    return load_hardware(hardware_preset_path(preset))


def scale(repeat: int, budgets: tuple[float, ...], log) -> list[dict[str, Any]]:
    """Time greedy on the ~100,000-op traces."""
    from solver.workloads import generate
    out = []
    plan = get_method("greedy").load()
    for label, kind, options, preset in SCALE_TRACES:
        t0 = time.perf_counter()
        trace = trace_from_document(generate(kind, options, seed=0, hardware=preset))
        gen_s = time.perf_counter() - t0
        hw = _hardware(preset)
        for budget in budgets:
            inst = make_instance(trace, hw, None, budget)
            times = []
            res = None
            for _ in range(repeat):
                t1 = time.perf_counter()
                res = plan(inst, SolveOptions())
                times.append(time.perf_counter() - t1)
            assert res is not None
            wall = statistics.median(times)
            row = {"trace": label, "ops": len(trace.ops), "tensors": len(trace.tensors), "budget": budget,
                   "status": res.status, "plan_s": wall, "ops_per_s": len(trace.ops) / wall, "gen_s": gen_s}
            if res.schedule is not None:
                t2 = time.perf_counter()
                rep = validate(inst.trace, inst.hardware, res.schedule)
                row.update(valid=rep.valid, validate_s=time.perf_counter() - t2, actions=len(res.schedule.actions),
                           overhead=rep.metrics.overhead, moved=sum(rep.metrics.bytes_moved.values()))
            log(f"  {label} @ {budget}: {res.status}, plan {wall:.2f} s ({row['ops_per_s']:,.0f} ops/s)")
            out.append(row)
    return out


def quality(suites: list[str], budgets: tuple[float, ...], methods: list[str], log) -> list[Row]:
    """Every method on every instance of the suites at every budget."""
    from solver.suites import load_instance_hardware, load_suite, materialize
    rows = []
    for sname in suites:
        for inst in load_suite(sname).instances:
            if inst.skip_reason:
                log(f"skipped {inst.name}: {inst.skip_reason}")
                continue
            trace: Trace = trace_from_document(materialize(inst))
            hw = load_instance_hardware(inst)
            for budget in budgets:
                instance = make_instance(trace, hw, None, budget)
                for m in methods:
                    o = solve(instance, m)
                    rows.append(Row(sname, inst.name, len(trace.ops), budget, m, o.status,
                                    o.report.metrics.overhead if o.ok else None, o.gap,
                                    sum(o.report.metrics.bytes_moved.values()) if o.ok else 0, o.plan_s,
                                    "" if o.ok else o.message))
                log(f"  {sname}/{inst.name} @ {budget}: " + "  ".join(
                    f"{r.method}={_pct(r.overhead) if r.overhead is not None else r.status}"
                    for r in rows[-len(methods):]))
    return rows


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def summary(rows: list[Row], budgets: tuple[float, ...], methods: list[str]) -> list[str]:
    """Per budget: feasible counts, and greedy's mean overhead against each baseline's on common instances."""
    lines = ["| budget | method | fits | mean overhead (where it fits) | instances both fit | "
             "greedy mean there | baseline mean there |", "|---|---|---|---|---|---|---|"]
    for b in budgets:
        at = [r for r in rows if r.budget == b]
        g = {(r.suite, r.instance): r for r in at if r.method == "greedy"}
        for m in methods:
            mine = [r for r in at if r.method == m]
            ok = [r for r in mine if r.overhead is not None]
            mean = statistics.mean(r.overhead for r in ok) if ok else None
            both = [r for r in ok if g.get((r.suite, r.instance)) and g[(r.suite, r.instance)].overhead is not None]
            if m == "greedy":
                lines.append(f"| {b:g} | {m} | {len(ok)}/{len(mine)} | {_pct(mean)} | | | |")
                continue
            gm = statistics.mean(g[(r.suite, r.instance)].overhead for r in both) if both else None
            bm = statistics.mean(r.overhead for r in both) if both else None
            lines.append(f"| {b:g} | {m} | {len(ok)}/{len(mine)} | {_pct(mean)} | {len(both)} | {_pct(gm)} | "
                         f"{_pct(bm)} |")
    return lines


def markdown(scale_rows: list[dict[str, Any]], rows: list[Row], budgets: tuple[float, ...], methods: list[str],
             argv: list[str]) -> str:
    """The results page."""
    cmd = "python -m solver.perf.greedy " + " ".join(argv)
    out = ["# Heuristic planners: speed and quality", "",
           f"Regenerate with `{cmd.strip()}` (machine: {platform.processor() or platform.machine()}, "
           f"{os.cpu_count()} CPUs, Python {platform.python_version()}; one core used).", ""]
    if scale_rows:
        out += ["## Greedy on ~100,000-op traces", "",
                "Planning time is the median over repeated runs of the planner alone (the schedule is then "
                "validated once; validation is not included).", "",
                "| trace | ops | tensors | budget | status | plan (s) | ops/s | actions | validate (s) | valid | "
                "overhead | bytes moved |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in scale_rows:
            out.append(f"| {r['trace']} | {r['ops']:,} | {r['tensors']:,} | {r['budget']:g} | {r['status']} | "
                       f"{r['plan_s']:.2f} | {r['ops_per_s']:,.0f} | {r.get('actions', 0):,} | "
                       f"{r.get('validate_s', 0):.2f} | {r.get('valid', '-')} | {_pct(r.get('overhead'))} | "
                       f"{format_bytes(r.get('moved', 0))} |")
        out.append("")
    if rows:
        out += ["## Summary: mean overhead per budget", "",
                "Overhead is makespan / compute time - 1 (validated). A method that cannot fit an instance "
                "reports `infeasible` and is left out of its own mean; the last three columns compare greedy "
                "with each baseline on the instances both fit.", ""]
        out += summary(rows, budgets, methods)
        out += ["", "## Every instance", "",
                "| suite | instance | ops | budget | method | status | overhead | gap | bytes moved | plan (s) |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            out.append(f"| {r.suite} | {r.instance} | {r.ops} | {r.budget:g} | {r.method} | {r.status} | "
                       f"{_pct(r.overhead)} | {_pct(r.gap)} | {format_bytes(r.moved)} | {r.plan_s:.3f} |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", default="small,medium", help="comma-separated suites (default small,medium)")
    ap.add_argument("--budgets", default="0.7,0.5", help="comma-separated budget fractions (default 0.7,0.5)")
    ap.add_argument("--methods", default=",".join(n for n, m in REGISTRY.items() if not m.exact),
                    help="comma-separated methods (default: every heuristic)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per scale measurement (median)")
    ap.add_argument("--skip-scale", action="store_true", help="skip the ~100,000-op part")
    ap.add_argument("--skip-suites", action="store_true", help="skip the suites part")
    ap.add_argument("--out", help="write the results as Markdown here")
    args = ap.parse_args(argv)
    budgets = tuple(float(x) for x in args.budgets.split(",") if x)
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        get_method(m)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    scale_rows = [] if args.skip_scale else scale(args.repeat, budgets, log)
    rows = [] if args.skip_suites else quality([s for s in args.suites.split(",") if s], budgets, methods, log)
    text = markdown(scale_rows, rows, budgets, methods, argv)
    if args.out:
        write_text_atomic(args.out, text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
