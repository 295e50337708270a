"""The default backend: a pool of local slots, each running one run's child process at a time.

Threads only wait on children here (each run is its own process), so ``jobs`` threads give
``jobs`` runs in parallel.

Examples
--------
>>> from solver.suites import load_suite
>>> from solver.bench.planners import MethodSpec
>>> from solver.bench.tasks import RunOptions, build_tasks, parse_budgets
>>> tasks = build_tasks(load_suite("ci"), [MethodSpec("keep", "keep")], RunOptions(time_limit=10),
...                     budgets=parse_budgets("1"), instances=["random-30", "chain-12-skip3"])
>>> with LocalPool(jobs=2) as pool:
...     sorted(row.instance for _, row in pool.run(tasks) if row is not None)
['chain-12-skip3', 'random-30']
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from solver.bench.execute import RunCancelled, execute_run, failure_row
from solver.bench.rows import Row
from solver.bench.tasks import RunTask

#: Seconds between progress ticks while runs are in flight.
TICK_S = 0.5


class LocalPool:
    """Runs tasks on this machine, ``jobs`` at a time (a context manager).

    Parameters
    ----------
    jobs : int
        Runs in parallel.
    """

    description = "local process pool"

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = max(1, int(jobs))
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._running = 0
        self._executor: ThreadPoolExecutor | None = None

    def __enter__(self) -> "LocalPool":
        self._executor = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="tierplan-run")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def slots(self) -> int:
        """Runs that can be in flight at once."""
        return self.jobs

    def running(self) -> int:
        """Runs in flight now."""
        with self._lock:
            return self._running

    def _one(self, task: RunTask) -> Row:
        with self._lock:
            self._running += 1
        try:
            return execute_run(task, self._cancel)
        except RunCancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in the harness must not stop the sweep
            return failure_row(task, "error", f"the bench harness failed: {type(exc).__name__}: {exc}", True)
        finally:
            with self._lock:
                self._running -= 1

    def run(self, tasks: Sequence[RunTask]) -> Iterator[tuple[RunTask | None, Row | None]]:
        """Yield ``(task, row)`` as runs finish, and ``(None, None)`` ticks every :data:`TICK_S` s.

        Closing the iterator early (an exception in the consumer, Ctrl-C) kills the runs in flight.
        """
        assert self._executor is not None, "use LocalPool as a context manager"
        futures: dict[Future[Row], RunTask] = {self._executor.submit(self._one, t): t for t in tasks}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=TICK_S, return_when=FIRST_COMPLETED)
                if not done:
                    yield None, None
                for fut in done:
                    yield futures[fut], fut.result()
        finally:
            if pending:
                self.cancel()
                for fut in pending:
                    fut.cancel()
                wait(pending)

    def cancel(self) -> None:
        """Kill the runs in flight and start no new ones."""
        self._cancel.set()

    def close(self) -> None:
        """Stop the pool (kills the runs in flight)."""
        if self._executor is not None:
            self._cancel.set()
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
