"""``tierplan validate TRACE HARDWARE SCHEDULE``: check a schedule with the timing model."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from typing import TextIO

from solver.cli._common import add_capacity_option, load_instance
from solver.fileio import dumps_json, write_text_atomic
from solver.formats import load_schedule
from solver.timing import Report, validate
from solver.units import format_bytes, format_time

MAX_HUMAN_ERRORS = 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a schedule against the timing model",
                       description="Simulate SCHEDULE on TRACE and HARDWARE under the timing model. "
                                   "Exit 0 valid, 1 invalid, 2 unreadable input.")
    p.add_argument("trace", help="the trace file (.json or .json.gz)")
    p.add_argument("hardware", help="the hardware file (.toml, .json or .json.gz)")
    p.add_argument("schedule", help="the schedule file to check (.json or .json.gz)")
    p.add_argument("--json", action="store_true", help="print one JSON object (machine output)")
    add_capacity_option(p)
    p.add_argument("--timeline", metavar="FILE.csv", help="write the per-action timeline as CSV")
    p.set_defaults(func=run)


def write_timeline(path: str, report: Report) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["action", "kind", "stream", "start", "end"])
    for row in report.timeline.rows():
        w.writerow(["" if v is None else (repr(v) if isinstance(v, float) else v) for v in row])
    write_text_atomic(path, buf.getvalue())


def human_summary(report: Report, out: TextIO | None = None) -> None:
    out = out if out is not None else sys.stdout
    m = report.metrics
    print(f"{'VALID' if report.valid else 'INVALID'} schedule", file=out)
    ov = "n/a" if m.overhead is None else f"{m.overhead * 100:.2f}%"
    print(f"  makespan {format_time(m.makespan)}  compute {format_time(m.compute_time)}  "
          f"recompute {format_time(m.recompute_time)}  overhead {ov}", file=out)
    for tier, peak in m.peak.items():
        cap = report.capacity.get(tier)
        print(f"  peak {tier}: {format_bytes(peak)} of {format_bytes(cap) if cap is not None else '?'} "
              f"at t={format_time(m.peak_time[tier])}", file=out)
    for stream, nbytes in m.bytes_moved.items():
        if m.copies[stream]:
            print(f"  {stream}: {m.copies[stream]} copies, {format_bytes(nbytes)}", file=out)
    if report.errors:
        print(f"  {len(report.errors)} error(s):", file=out)
        for e in report.errors[:MAX_HUMAN_ERRORS]:
            print(f"    [{e.code.value}] {e.action or '-'} at t={e.time:.9g}s: {e.message}", file=out)
        if len(report.errors) > MAX_HUMAN_ERRORS:
            print(f"    ... and {len(report.errors) - MAX_HUMAN_ERRORS} more (use --json for all)", file=out)


def run(args: argparse.Namespace) -> int:
    trace, hardware, caps = load_instance(args.trace, args.hardware, args.capacity)
    schedule = load_schedule(args.schedule)
    report = validate(trace, hardware, schedule, caps)
    if args.timeline:
        write_timeline(args.timeline, report)
    if args.json:
        sys.stdout.buffer.write(dumps_json(report.to_dict(), indent=None) + b"\n")
        sys.stdout.flush()
    else:
        human_summary(report)
    return 0 if report.valid else 1
