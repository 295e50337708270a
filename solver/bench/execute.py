"""Execute one run in a child process with hard time limits, and turn its outcome into a row.

:func:`execute_run` is the unit of work of every backend: the local pool calls it in a thread per
slot, a Dask worker calls it as a task. It starts ``python -m solver.bench.child`` in a process
group of its own, feeds it the task, and watches its messages: the planner is killed (with any
solver processes it started) when it runs past :func:`solver.bench.tasks.hard_limit` of its time
limit; loading and validating each get ``setup_limit`` seconds. A child that dies is recorded as
``crashed`` with its exit status and the tail of its output. The row is always returned; only a
cancellation (:class:`RunCancelled`) raises.

Examples
--------
>>> from solver.suites import load_suite
>>> from solver.bench.planners import MethodSpec
>>> from solver.bench.tasks import RunOptions, build_tasks, parse_budgets
>>> task = build_tasks(load_suite("ci"), [MethodSpec("keep", "keep")], RunOptions(time_limit=10),
...                    budgets=parse_budgets("1"), instances=["random-30"])[0]
>>> row = execute_run(task)
>>> row.status, row.valid, row.ops
('feasible', True, 30)
"""

from __future__ import annotations

import datetime as _dt
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from solver.bench.protocol import EOF, FrameReader
from solver.bench.rows import Row
from solver.bench.tasks import RunTask, hard_limit
from solver.bench.versions import host, library_versions, machine

#: How often a waiting run looks at its cancel flag (seconds).
POLL_S = 0.2

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class RunCancelled(Exception):
    """The sweep was interrupted while this run was in flight (its child was killed)."""


def _base_row(task: RunTask, started: str) -> Row:
    return Row(suite=task.suite, instance=task.instance, hardware=task.hardware, budget=task.budget.label,
               method=task.method.label, planner=task.method.planner, options=task.options.canonical(),
               commit=task.commit, started=started, host=host(), machine=machine(),
               versions=library_versions())


def failure_row(task: RunTask, status: str, message: str, on_this_host: bool = False) -> Row:
    """The row of a run that produced nothing (a worker died under it, an internal error...).

    Examples
    --------
    >>> from solver.suites import load_suite
    >>> from solver.bench.planners import MethodSpec
    >>> from solver.bench.tasks import RunOptions, build_tasks
    >>> t = build_tasks(load_suite("ci"), [MethodSpec("keep", "keep")], RunOptions())[0]
    >>> failure_row(t, "worker-died", "KilledWorker").status
    'worker-died'
    """
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    row = _base_row(task, started)
    if not on_this_host:
        row = row.with_(host="", machine="", versions="")
    return row.with_(status=status, message=message)


def _child_env(task: RunTask) -> dict[str, str]:
    env = dict(os.environ)
    for var in _THREAD_VARS:
        env.setdefault(var, str(task.options.threads))
    env["TIERPLAN_BENCH_HOST"] = task.host_kind
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(log: Any, limit: int = 600) -> str:
    try:
        log.flush()
        log.seek(0, os.SEEK_END)
        size = log.tell()
        log.seek(max(0, size - limit))
        text = log.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[-4:])[-limit:]


def _exit_text(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


def execute_run(task: RunTask, cancel: threading.Event | None = None) -> Row:
    """Run one task in a child process and return its row (never raises for a failed run).

    Parameters
    ----------
    task : RunTask
    cancel : threading.Event, optional
        When set, the child is killed and :class:`RunCancelled` raised.

    Returns
    -------
    Row
        With the status the run earned: the planner's, ``invalid``, ``timeout`` (killed at the hard
        limit), ``crashed`` (the child died) or ``error``.
    """
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    t_begin = time.perf_counter()
    base = _base_row(task, started)
    fields: dict[str, Any] = {}
    r, w = os.pipe()
    with tempfile.TemporaryFile(prefix="tierplan-run-") as log:
        try:
            proc = subprocess.Popen([sys.executable, "-m", "solver.bench.child", str(w)], stdin=subprocess.PIPE,
                                    stdout=log, stderr=subprocess.STDOUT, pass_fds=(w,), close_fds=True,
                                    start_new_session=True, env=_child_env(task))
        except OSError as exc:
            os.close(r)
            os.close(w)
            return base.with_(status="error", message=f"cannot start the run's process: {exc}",
                              total_s=time.perf_counter() - t_begin)
        os.close(w)
        reader = FrameReader(r)
        try:
            try:
                assert proc.stdin is not None
                proc.stdin.write(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass                      # the child died at once: its exit status tells why
            setup = task.options.setup_limit
            phase, deadline = "loading the instance", time.monotonic() + setup
            plan_start = 0.0
            limit = hard_limit(task.options.time_limit)
            while True:
                now = time.monotonic()
                wait = deadline - now
                if cancel is not None:
                    wait = min(wait, POLL_S)
                msg = reader.read(wait)
                if cancel is not None and cancel.is_set():
                    _kill(proc)
                    raise RunCancelled(task.name)
                if msg is None:
                    if time.monotonic() < deadline:
                        continue
                    _kill(proc)
                    if phase == "planning":
                        wall = time.monotonic() - plan_start
                        fields.update(status="timeout", wall_s=wall, overrun=wall / task.options.time_limit,
                                      message=f"killed after {limit:g} s (time limit {task.options.time_limit:g} s)")
                    else:
                        fields.update(status="error", message=f"{phase} took more than {setup:g} s")
                    break
                if msg is EOF:
                    try:
                        code = proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        _kill(proc)
                        code = proc.returncode
                    tail = _tail(log)
                    where = "while planning" if phase == "planning" else f"while {phase}"
                    fields.update(status="crashed", message=f"the run's process {_exit_text(code)} {where}"
                                  + (f"; output: {tail}" if tail else ""))
                    if phase == "planning":
                        fields["wall_s"] = time.monotonic() - plan_start
                        fields["overrun"] = fields["wall_s"] / task.options.time_limit
                    break
                kind, payload = msg
                if kind == "loaded":
                    fields.update(payload)
                elif kind == "planning":
                    phase, plan_start = "planning", time.monotonic()
                    deadline = plan_start + limit
                elif kind == "planned":
                    phase, deadline = "validating the schedule", time.monotonic() + setup
                    fields.update(payload)
                elif kind in ("done", "failed"):
                    fields.update(payload)
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        _kill(proc)
                    break
        except BaseException:
            _kill(proc)
            raise
        finally:
            os.close(r)
            if proc.returncode is None:
                _kill(proc)
    fields["total_s"] = time.perf_counter() - t_begin
    return base.with_(**fields)
