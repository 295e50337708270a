"""The Dask backend: every run is a Dask task on a cluster (``--scheduler``).

``local:N`` starts a local cluster of N single-threaded worker processes; any other address
(``tcp://host:8786``) connects to a running scheduler. Each task is
:func:`solver.bench.execute.execute_run` on a self-contained :class:`~solver.bench.tasks.RunTask`
(trace recipe or bytes, hardware bytes, options): the worker starts the run's child process,
enforces its time limit, validates the schedule and returns the row. A task whose worker died
(Dask's ``KilledWorker``) is recorded as ``worker-died``. Dask is imported only here, and only
when a scheduler is asked for (``pip install 'tierplan[dask]'``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from solver.bench.execute import execute_run, failure_row
from solver.bench.rows import Row
from solver.bench.tasks import RunTask
from solver.errors import InputError

#: Install hint printed when Dask is missing.
INSTALL_HINT = "pip install 'tierplan[dask]'  (or: pip install 'dask[distributed]')"

#: Worker deaths a run of a local cluster may cause before it is recorded as ``worker-died``.
ALLOWED_FAILURES = 1

#: Seconds between progress ticks while runs are in flight.
TICK_S = 0.5


class SchedulerLost(RuntimeError):
    """The connection to the Dask scheduler was lost; the runs in flight are lost too."""


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise InputError.single("--scheduler", "", f"Dask is not installed; install it with: {INSTALL_HINT}") \
            from None
    return distributed


def parse_scheduler(text: str) -> tuple[str, int | str]:
    """``("local", N)`` for ``local:N``, ``("address", ADDRESS)`` otherwise.

    Examples
    --------
    >>> parse_scheduler("local:4"), parse_scheduler("tcp://10.0.0.1:8786")
    (('local', 4), ('address', 'tcp://10.0.0.1:8786'))
    """
    if text.startswith("local:") or text == "local":
        n_text = text.partition(":")[2] or "1"
        try:
            n = int(n_text)
        except ValueError:
            n = 0
        if n < 1:
            raise InputError.single("--scheduler", text, "expected local:N with N >= 1 workers")
        return ("local", n)
    if "://" not in text and ":" not in text:
        raise InputError.single("--scheduler", text, "expected a scheduler address (tcp://host:8786) or local:N")
    return ("address", text)


class DaskBackend:
    """Runs tasks on a Dask cluster (a context manager).

    Parameters
    ----------
    scheduler : str
        ``local:N`` or a scheduler address.
    dashboard : bool
        Serve the dashboard of a local cluster (on a free port); :attr:`dashboard_link` is its URL.
    """

    def __init__(self, scheduler: str, dashboard: bool = False) -> None:
        self.scheduler = scheduler
        self.mode, self.target = parse_scheduler(scheduler)
        self.dashboard = dashboard
        self.client: Any = None
        self.cluster: Any = None
        self._futures: list[Any] = []

    @property
    def description(self) -> str:
        """What runs the sweep, for messages."""
        if self.mode == "local":
            return f"local Dask cluster of {self.target} workers"
        return f"Dask scheduler {self.target}"

    def __enter__(self) -> "DaskBackend":
        distributed = _import_distributed()
        import dask
        if self.mode == "local":
            # A worker holds only the run it executes (queued scheduling, saturation 1), and a run whose
            # worker died is retried once elsewhere: a run that kills its worker is recorded after its
            # second victim, one that merely shared a dying worker gets another chance.
            with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                                  "distributed.scheduler.worker-saturation": 1.0}):
                self.cluster = distributed.LocalCluster(
                    n_workers=int(self.target), threads_per_worker=1, processes=True, memory_limit=0,
                    dashboard_address=":0" if self.dashboard else None, silence_logs=logging.CRITICAL,
                    scheduler_kwargs={} if self.dashboard else {"dashboard": False})
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(self.target, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise InputError.single("--scheduler", str(self.target), f"cannot reach the scheduler: {exc}") \
                    from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dashboard_link(self) -> str:
        """The Dask dashboard's URL ('' when there is none)."""
        try:
            return str(self.client.dashboard_link) if self.client is not None else ""
        except Exception:  # noqa: BLE001 - no dashboard (bokeh missing...)
            return ""

    @property
    def slots(self) -> int:
        """Worker threads in the cluster now."""
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001
            return 1

    def running(self) -> int:
        """Tasks the workers are processing now."""
        try:
            return sum(len(v) for v in self.client.processing().values())
        except Exception:  # noqa: BLE001
            return 0

    def run(self, tasks: Sequence[RunTask]) -> Iterator[tuple[RunTask | None, Row | None]]:
        """Submit every task; yield ``(task, row)`` as they finish and ``(None, None)`` ticks.

        Raises
        ------
        SchedulerLost
            When the scheduler goes away (the runs in flight are lost; rerun with ``--resume``).
        """
        distributed = _import_distributed()
        client = self.client
        assert client is not None, "use DaskBackend as a context manager"
        stamp = time.time_ns()
        shipped = [t.for_host("dask", portable=True) for t in tasks]
        keys = ["tierplan-run-" + hashlib.sha256(f"{i}|{t.name}|{t.options.canonical()}|{stamp}".encode())
                .hexdigest()[:20] for i, t in enumerate(shipped)]
        # one batch, so that the scheduler sees one group of root tasks and queues them rather than
        # piling them on workers (a worker then holds only the runs it executes)
        futures = client.map(execute_run, shipped, key=keys, pure=False, retries=0) if shipped else []
        by_key: dict[str, RunTask] = {f.key: t for f, t in zip(futures, tasks)}
        self._futures = futures
        ac = distributed.as_completed(futures)
        try:
            while not ac.is_empty():
                batch = ac.next_batch(block=False) if ac.has_ready() else []
                if not batch:
                    time.sleep(TICK_S / 5)
                    if not ac.has_ready():
                        yield None, None
                    continue
                for fut in batch:
                    yield by_key[fut.key], self._row(fut, by_key[fut.key], distributed)
        finally:
            if not ac.is_empty():
                self.cancel()

    def _row(self, fut: Any, task: RunTask, distributed: Any) -> Row:
        if fut.status == "finished":
            return fut.result()
        if fut.status == "cancelled":
            raise SchedulerLost(f"run {task.name} was cancelled: the scheduler or the client went away")
        try:
            exc = fut.exception()
        except Exception as err:  # noqa: BLE001 - a lost connection raises here
            raise SchedulerLost(str(err)) from err
        if isinstance(exc, distributed.KilledWorker):
            return failure_row(task, "worker-died", "the Dask worker running it died, and so did the one that "
                               "retried it (KilledWorker)")
        if isinstance(exc, (distributed.comm.CommClosedError, OSError)):
            raise SchedulerLost(f"{type(exc).__name__}: {exc}")
        return failure_row(task, "error", f"the Dask task failed: {type(exc).__name__}: {exc}")

    def cancel(self) -> None:
        """Cancel the tasks not finished yet."""
        if self.client is not None and self._futures:
            try:
                self.client.cancel([f for f in self._futures if not f.done()])
            except Exception:  # noqa: BLE001
                pass

    def close(self) -> None:
        """Disconnect (and stop a local cluster)."""
        if self.client is not None:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001
                pass
            self.client = None
        if self.cluster is not None:
            try:
                self.cluster.close()
            except Exception:  # noqa: BLE001
                pass
            self.cluster = None
