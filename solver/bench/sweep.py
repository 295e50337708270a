"""A sweep: every run of a task list on a backend, rows written to the CSV as they arrive.

The CSV is rewritten atomically after every finished run, rows in table order (the order of the
tasks), so an interrupted sweep (Ctrl-C, a lost scheduler, a killed machine) loses at most the
runs in flight, and ``resume`` skips the runs already recorded with the same instance, budget,
method, options and code version. A task whose instance is unavailable (:attr:`RunTask.skip`, an
optional trace file that is absent) never reaches the backend: its row, status ``skipped`` with the
reason in ``message``, is written at once, and ``resume`` tries such runs again.

Examples
--------
>>> import tempfile, os
>>> from solver.suites import load_suite
>>> from solver.bench.local import LocalPool
>>> from solver.bench.planners import MethodSpec
>>> from solver.bench.tasks import RunOptions, build_tasks, parse_budgets
>>> tasks = build_tasks(load_suite("ci"), [MethodSpec("keep", "keep")], RunOptions(time_limit=10),
...                     budgets=parse_budgets("1,0.5"), instances=["random-30"])
>>> csv_path = os.path.join(tempfile.mkdtemp(), "ci.csv")
>>> with LocalPool(2) as pool:
...     res = run_sweep(tasks, pool, csv_path=csv_path)
>>> [(r.budget, r.status) for r in res.rows], res.ran
([('1', 'feasible'), ('0.5', 'infeasible')], 2)
>>> with LocalPool(2) as pool:
...     run_sweep(tasks, pool, csv_path=csv_path, previous=res.rows, resume=True).ran
0
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from solver.bench.execute import failure_row
from solver.bench.progress import NullProgress
from solver.bench.rows import SKIPPED, Row, write_csv
from solver.bench.tasks import RunTask


class Backend(Protocol):
    """What runs tasks: :class:`solver.bench.local.LocalPool` or :class:`solver.bench.cluster.DaskBackend`."""

    description: str

    @property
    def slots(self) -> int:
        """Runs that can be in flight at once."""

    def running(self) -> int:
        """Runs in flight now."""

    def run(self, tasks: Sequence[RunTask]) -> Iterator[tuple[RunTask | None, Row | None]]:
        """Yield ``(task, row)`` as runs finish, ``(None, None)`` as ticks."""


@dataclass(frozen=True)
class SweepResult:
    """What a sweep produced.

    Attributes
    ----------
    rows : tuple of Row
        Every row of the output: the sweep's runs in table order (resumed ones included), then
        rows of the previous file that the sweep does not cover.
    ran : int
        Runs executed by this sweep.
    skipped : int
        Runs skipped because ``resume`` found them.
    unavailable : int
        Runs not run because their instance is unavailable here (rows with status ``skipped``).
    """

    rows: tuple[Row, ...]
    ran: int
    skipped: int
    unavailable: int = 0

    def sweep_rows(self, tasks: Sequence[RunTask]) -> tuple[Row, ...]:
        """Only the rows of these tasks, in their order."""
        keys = {t.key for t in tasks}
        return tuple(r for r in self.rows if r.key in keys)


def merge_rows(tasks: Sequence[RunTask], done: dict[tuple[str, str, str], Row],
               previous: Sequence[Row] = ()) -> tuple[Row, ...]:
    """Rows in table order: each task's row (from ``done``, else its previous row), then previous
    rows of keys outside the tasks.

    Examples
    --------
    >>> merge_rows([], {}, [Row(instance="x")])[0].instance
    'x'
    """
    prev = {r.key: r for r in previous}
    out: list[Row] = []
    seen: set[tuple[str, str, str]] = set()
    for t in tasks:
        k = t.key
        if k in seen:
            continue
        seen.add(k)
        r = done.get(k) or prev.get(k)
        if r is not None:
            out.append(r)
    out.extend(r for r in previous if r.key not in seen)
    return tuple(out)


def run_sweep(tasks: Sequence[RunTask], backend: Backend, *, csv_path: str | os.PathLike[str] | None = None,
              previous: Sequence[Row] = (), resume: bool = False, progress: NullProgress | None = None,
              on_row: Callable[[Row], None] | None = None) -> SweepResult:
    """Run every task on ``backend`` and write the CSV after each finished run.

    Parameters
    ----------
    tasks : sequence of RunTask
        In table order.
    backend : Backend
        An entered :class:`~solver.bench.local.LocalPool` or :class:`~solver.bench.cluster.DaskBackend`.
    csv_path : path, optional
        Results file, rewritten atomically after every run.
    previous : sequence of Row
        Rows already in the results file. With ``resume``, runs whose
        :attr:`~solver.bench.rows.Row.resume_key` matches one are skipped and the file keeps every
        previous row until a run replaces it; without it, the file holds this sweep's rows only.
    resume : bool
    progress : display, optional
        See :mod:`solver.bench.progress`.
    on_row : callable, optional
        Called with each new row after it is written.

    Returns
    -------
    SweepResult

    Raises
    ------
    KeyboardInterrupt, solver.bench.cluster.SchedulerLost
        After killing the runs in flight; every finished row is already in the file.
    """
    progress = progress if progress is not None else NullProgress()
    prev = list(previous) if resume else []
    have = {r.resume_key for r in prev if r.status != SKIPPED}
    done: dict[tuple[str, str, str], Row] = {t.key: failure_row(t, SKIPPED, t.skip, on_this_host=True)
                                             for t in tasks if t.skip}
    todo = [t for t in tasks if not t.skip and t.resume_key not in have]
    skipped = len(tasks) - len(done) - len(todo)
    prev_by_key = {r.resume_key: r for r in prev}
    failed = sum(1 for t in tasks if not t.skip and t.resume_key in have and not prev_by_key[t.resume_key].solved)
    unavailable = len(done)
    if done and csv_path is not None:
        write_csv(csv_path, merge_rows(tasks, done, prev))
    progress.update(skipped + unavailable, 0, failed)
    ran = 0
    try:
        for task, row in backend.run(todo):
            if task is None or row is None:
                progress.update(skipped + unavailable + ran, backend.running(), failed)
                continue
            ran += 1
            done[task.key] = row
            if csv_path is not None:
                write_csv(csv_path, merge_rows(tasks, done, prev))
            if not row.solved:
                failed += 1
            progress.update(skipped + unavailable + ran, backend.running(), failed)
            progress.row(row)
            if on_row is not None:
                on_row(row)
    finally:
        progress.close()
    return SweepResult(merge_rows(tasks, done, prev), ran, skipped, unavailable)
