"""``tierplan validate TRACE HARDWARE SCHEDULE``: check a schedule with the timing model."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from typing import TextIO

from solver.cli._common import add_capacity_option, check_outputs, hardware_file, load_instance, shown
from solver.fileio import dumps_json, write_text_atomic
from solver.formats import load_schedule
from solver.model import Hardware, Schedule, Trace
from solver.timing import Report, validate
from solver.units import format_bytes, format_time

MAX_HUMAN_ERRORS = 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a schedule against the timing model",
                       description="Simulate SCHEDULE on TRACE and HARDWARE under the timing model. "
                                   "Exit 0 valid, 1 invalid, 2 unreadable input.")
    p.add_argument("trace", help="the trace file (.json or .json.gz)")
    p.add_argument("hardware", help="the hardware file (.toml, .json or .json.gz) or a preset name, e.g. h100-pcie")
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


#: how the summary names where a capacity came from (the hardware file's figure goes unsaid)
_SOURCE_WORDS = {"hardware": "", "schedule": " (lowered by the schedule)", "override": " (--capacity)"}


def name_warnings(trace: Trace, hardware: Hardware, schedule: Schedule, schedule_file: str) -> list[str]:
    """Warnings for a schedule whose ``trace`` / ``hardware`` names differ from the files given.

    The commonest mistake is checking a schedule against the wrong trace or hardware; an empty
    name in the schedule says nothing and is not warned about.

    Examples
    --------
    >>> from solver.model import Hardware, Schedule, Tier, Trace
    >>> name_warnings(Trace("a", (), ()), Hardware("h", "A", (Tier("A", 1),)), Schedule("b", "h", ()), "s.json")
    ["s.json: the schedule was made for trace 'b', but the trace given is 'a'"]
    """
    out = []
    for what, planned, given in (("trace", schedule.trace, trace.name), ("hardware", schedule.hardware, hardware.name)):
        if planned and planned != given:
            out.append(f"{schedule_file}: the schedule was made for {what} {planned!r}, but the {what} given is "
                       f"{given!r}")
    return out


def human_summary(report: Report, out: TextIO | None = None) -> None:
    out = out if out is not None else sys.stdout

    def say(text: str, file: TextIO) -> None:   # ids from files cannot drive the terminal
        print(shown(text), file=file)

    m = report.metrics
    say(f"{'VALID' if report.valid else 'INVALID'} schedule", file=out)
    ov = "n/a" if m.overhead is None else f"{m.overhead * 100:.2f}%"
    say(f"  makespan {format_time(m.makespan)}  compute {format_time(m.compute_time)}  "
        f"recompute {format_time(m.recompute_time)}  overhead {ov}", file=out)
    for tier, peak in m.peak.items():
        cap = report.capacity.get(tier)
        src = _SOURCE_WORDS.get(report.capacity_source.get(tier, "hardware"), "")
        say(f"  peak {tier}: {format_bytes(peak)} of {format_bytes(cap) if cap is not None else '?'}{src} "
            f"at t={format_time(m.peak_time[tier])}", file=out)
    for stream, nbytes in m.bytes_moved.items():
        if m.copies[stream]:
            say(f"  {stream}: {m.copies[stream]} copies, {format_bytes(nbytes)}", file=out)
    if report.errors:
        say(f"  {len(report.errors)} error(s):", file=out)
        for e in report.errors[:MAX_HUMAN_ERRORS]:
            say(f"    [{e.code.value}] {e.action or '-'} at t={e.time:.9g}s: {e.message}", file=out)
        if len(report.errors) > MAX_HUMAN_ERRORS:
            say(f"    ... and {len(report.errors) - MAX_HUMAN_ERRORS} more (use --json for all)", file=out)


def run(args: argparse.Namespace) -> int:
    check_outputs([("--timeline", args.timeline)], [args.trace, hardware_file(args.hardware, "hardware"),
                                                    args.schedule])
    trace, hardware, caps = load_instance(args.trace, args.hardware, args.capacity)
    schedule = load_schedule(args.schedule)
    report = validate(trace, hardware, schedule, caps)
    warnings = name_warnings(trace, hardware, schedule, args.schedule)
    for w in warnings:
        print(f"warning: {shown(w)}", file=sys.stderr)
    if args.timeline:
        write_timeline(args.timeline, report)
    if args.json:
        sys.stdout.buffer.write(dumps_json({**report.to_dict(), "warnings": warnings}, indent=None) + b"\n")
        sys.stdout.flush()
    else:
        human_summary(report)
    return 0 if report.valid else 1
