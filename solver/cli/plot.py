"""``tierplan plot TRACE HARDWARE SCHEDULE -o FILE``: draw one schedule.

Memory of each tier over time (stacked by tensor kind, capacity line) above a Gantt chart of the
compute stream and each link stream, stalls shaded red; times from the timing model. Exit 0 for a
valid schedule, 1 for an invalid one (the figure is written all the same), 2 for unreadable input.

Examples
--------
>>> import tempfile, os
>>> from solver.cli import main
>>> out = os.path.join(tempfile.mkdtemp(), "s.png")
>>> main(["plot", "instances/examples/trace.json", "instances/examples/hardware.json",
...       "instances/examples/schedule.json", "-o", out])
0
>>> os.path.getsize(out) > 10_000
True
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from solver.cli._common import add_capacity_option
from solver.errors import InputError

FORMATS = ("png", "svg", "pdf")


#: the dots per inch ``--dpi`` accepts (outside it matplotlib fails or allocates gigabytes)
DPI_MIN, DPI_MAX = 10, 1200


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``plot`` subcommand."""
    p = sub.add_parser("plot", help="draw a schedule: memory per tier over time above a Gantt chart of its streams",
                       description="Draw memory of each tier over time (stacked by tensor kind, capacity line) "
                                   "above a Gantt chart of the compute and link streams, stalls highlighted. "
                                   "Exit 0 valid, 1 invalid (figure still written), 2 unreadable input.")
    p.add_argument("trace", help="the trace file (.json or .json.gz)")
    p.add_argument("hardware", help="the hardware file (.toml, .json or .json.gz) or a preset name, e.g. h100-pcie")
    p.add_argument("schedule", help="the schedule file to draw (.json or .json.gz)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="output file: .png, .svg or .pdf")
    p.add_argument("--title", help="figure title [default: trace, hardware, makespan, overhead]")
    p.add_argument("--dpi", type=int, default=120, help=f"resolution of a PNG, {DPI_MIN} to {DPI_MAX} [default: 120]")
    add_capacity_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate, draw, write; returns the exit status."""
    from solver.bench.schedule_plot import schedule_figure
    from solver.cli._common import check_outputs, hardware_file, load_instance
    from solver.fileio import write_bytes_atomic
    from solver.formats import load_schedule
    from solver.timing import validate

    fmt = Path(args.output).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError.single("--output", args.output, f"unknown format {fmt!r}; use one of "
                                f"{', '.join('.' + f for f in FORMATS)}")
    if not DPI_MIN <= args.dpi <= DPI_MAX:
        raise InputError.single("--dpi", str(args.dpi), f"must be between {DPI_MIN} and {DPI_MAX}")
    check_outputs([("-o", args.output)], [args.trace, hardware_file(args.hardware, "hardware"), args.schedule])
    trace, hardware, caps = load_instance(args.trace, args.hardware, args.capacity)
    schedule = load_schedule(args.schedule)
    from solver.cli._common import shown
    from solver.cli.validate import name_warnings

    for w in name_warnings(trace, hardware, schedule, args.schedule):
        print(f"warning: {shown(w)}", file=sys.stderr)
    report = validate(trace, hardware, schedule, caps)
    fig = schedule_figure(trace, hardware, schedule, report, args.title)
    buf = io.BytesIO()
    meta = {"Software": None} if fmt == "png" else ({"Creator": None} if fmt in ("svg", "pdf") else None)
    fig.savefig(buf, format=fmt, dpi=args.dpi, bbox_inches="tight", metadata=meta)
    write_bytes_atomic(args.output, buf.getvalue())
    print(f"plot: {len(schedule.actions)} actions drawn, written to {args.output}")
    if not report.valid:
        print(f"warning: the schedule is INVALID ({len(report.errors)} errors; see tierplan validate); the figure "
              "shows what the timing model simulated", file=sys.stderr)
        return 1
    return 0
