"""Helpers shared by the foundation tests (golden cases, properties, formats, CLI).

``cli`` runs ``tierplan`` in-process (fast: no interpreter start per call) and
``cli_subprocess`` runs the real console entry point (``python -m solver.cli``);
both return ``(exit status, stdout, stderr)``. An exception escaping ``main`` is
turned into a traceback on stderr, so "no traceback" checks catch it either way.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from solver.cli import main
from solver.timing import Report, _Simulation, validate


def cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """Run ``tierplan ARGV`` in-process; returns (exit status, stdout, stderr)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        try:
            rc = main(list(argv))
        except SystemExit as exc:  # argparse
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:  # noqa: BLE001 - reported as a traceback, which tests forbid
            traceback.print_exc(file=err)
            rc = 99
    finally:
        sys.stdout, sys.stderr = old_out, old_err
    out.flush()
    err.flush()
    return rc, out.buffer.getvalue().decode("utf-8"), err.buffer.getvalue().decode("utf-8")


def cli_subprocess(argv: Sequence[str], cwd: str | None = None) -> tuple[int, str, str]:
    """Run ``python -m solver.cli ARGV`` in a fresh interpreter."""
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run([sys.executable, "-m", "solver.cli", *argv], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@contextlib.contextmanager
def heap_path_forced() -> Iterator[None]:
    """Force the validator's general event source (the heap) instead of the one-sort fast path.

    ``_Simulation._compile`` sets ``static_times`` when every wait points backwards; clearing it
    after compile makes ``run`` use ``_heap_events``.
    """
    original = _Simulation._compile

    def compile_then_forget(self: _Simulation) -> None:
        original(self)
        self.static_times = None

    _Simulation._compile = compile_then_forget  # type: ignore[method-assign]
    try:
        yield
    finally:
        _Simulation._compile = original  # type: ignore[method-assign]


def fast_path_taken(trace: Any, hardware: Any, schedule: Any, capacity: Mapping[str, int] | None = None) -> bool:
    """Whether the validator would take the sorted fast path for this instance."""
    sim = _Simulation(trace, hardware, schedule, capacity)
    sim._compile()
    return sim.static_times is not None


def validate_heap(trace: Any, hardware: Any, schedule: Any, capacity: Mapping[str, int] | None = None) -> Report:
    """The pure-Python reference with the heap event source forced."""
    with heap_path_forced():
        return validate(trace, hardware, schedule, capacity, engine="python")


def validate_python(trace: Any, hardware: Any, schedule: Any, capacity: Mapping[str, int] | None = None) -> Report:
    """The pure-Python reference (sorted fast path where it applies), never the native kernel."""
    return validate(trace, hardware, schedule, capacity, engine="python")


def full_report(report: Report) -> dict[str, Any]:
    """Everything a report says, timeline and capacities included (for exact comparisons)."""
    d = report.to_dict()
    d["timeline"] = report.timeline.rows()
    d["capacity"] = dict(report.capacity)
    return d
