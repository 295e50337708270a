"""Helpers shared by the bench tests (test_bench*.py, test_dask*.py): a tiny two-instance suite and an
in-process CLI runner."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Sequence
from pathlib import Path

from solver.cli import main

TWO_SUITE = """\
format = "tierplan.suite/1"
name = "two"
description = "Two tiny instances for the bench tests."
budgets = [1.0, 0.5]

[[instances]]
name = "chain-6"
description = "a short chain"
hardware = "laptop-sized"
recipe = { kind = "chain", seed = 1, options = { layers = 6, skip = 2 } }

[[instances]]
name = "random-12"
description = "a small random DAG"
hardware = "laptop-sized"
recipe = { kind = "random", seed = 1, options = { ops = 12, pressure = 0.3 } }
"""


def write_suite(folder: Path, text: str = TWO_SUITE, name: str = "two.toml") -> Path:
    """Write a suite file into ``folder``; returns its path."""
    path = folder / name
    path.write_text(text)
    return path


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """Run ``tierplan ARGV`` in-process; returns (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:   # argparse errors
            code = int(exc.code or 0)
    sys.stdout.flush()
    return code, out.getvalue(), err.getvalue()
