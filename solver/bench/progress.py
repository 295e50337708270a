"""Progress of a sweep: runs done, running and without a schedule, with an ETA.

The third count (``failed`` in the API) is every finished run without a valid schedule, whatever
the reason (``infeasible``, ``timeout``, ``error``): the displays call it "no schedule", since a
heuristic's ``infeasible`` is an answer, not a failure of the run.

:func:`make_progress` picks a rich progress bar on a terminal, one line per finished run
otherwise (CI logs), or nothing. Every display has the same three methods: ``update(done,
running, failed)``, ``row(row)`` and ``close()``.

Examples
--------
>>> import io
>>> out = io.StringIO()
>>> p = LineProgress(total=2, out=out)
>>> from solver.bench.rows import Row
>>> p.update(1, 1, 0)
>>> p.row(Row(instance="i", budget="1", method="keep", status="feasible", makespan=0.5, total_s=0.2))
>>> out.getvalue().split()[:3]
['[1/2]', 'i', 'budget']
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from solver.bench.rows import Row, SOLVED


def describe(row: Row) -> str:
    """One line for a finished run.

    Examples
    --------
    >>> describe(Row(instance="i", budget="0.5", method="m", status="timeout", message="killed"))
    'i budget 0.5 m: timeout (killed)'
    """
    head = f"{row.instance} budget {row.budget} {row.method}: {row.status}"
    if row.status in SOLVED and row.valid and row.overhead is not None:
        head += f", overhead {row.overhead * 100:.2f}%"
    elif row.message:
        head += f" ({row.message[:120]})"
    if row.total_s is not None:
        head += f" [{row.total_s:.1f} s]"
    return head


class NullProgress:
    """Shows nothing."""

    def update(self, done: int, running: int, failed: int) -> None:
        """Counts changed."""

    def row(self, row: Row) -> None:
        """A run finished."""

    def close(self) -> None:
        """The sweep ended."""


class LineProgress(NullProgress):
    """One line per finished run, with the counts and an ETA (for logs)."""

    def __init__(self, total: int, out: TextIO | None = None) -> None:
        self.total = total
        self.out = out if out is not None else sys.stderr
        self.start = time.monotonic()
        self.done = self.running = self.failed = 0

    def update(self, done: int, running: int, failed: int) -> None:
        self.done, self.running, self.failed = done, running, failed

    def row(self, row: Row) -> None:
        n = max(self.done, 1)
        elapsed = time.monotonic() - self.start
        eta = elapsed / n * (self.total - n)
        print(f"[{n}/{self.total}] {describe(row)}  (running {self.running}, no schedule {self.failed}, "
              f"eta {eta:.0f} s)", file=self.out, flush=True)


class RichProgress(NullProgress):
    """A rich progress bar: done/total, running, failed, elapsed and ETA."""

    def __init__(self, total: int, description: str = "bench") -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("running {task.fields[running]}  no schedule {task.fields[failed]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console,
            transient=False)
        self.task: Any = self.progress.add_task(description, total=total, running=0, failed=0)
        self.progress.start()

    def update(self, done: int, running: int, failed: int) -> None:
        self.progress.update(self.task, completed=done, running=running, failed=failed)

    def row(self, row: Row) -> None:
        if row.status not in SOLVED:
            self.progress.console.print(f"[yellow]{describe(row)}")

    def close(self) -> None:
        self.progress.stop()


def make_progress(total: int, mode: str = "auto", description: str = "bench") -> NullProgress:
    """A progress display: ``mode`` is ``auto`` (a bar on a terminal, lines otherwise), ``bar``,
    ``lines`` or ``none``.

    Examples
    --------
    >>> type(make_progress(3, "none")).__name__
    'NullProgress'
    """
    if mode == "none":
        return NullProgress()
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        return RichProgress(total, description)
    return LineProgress(total)
