"""Misbehaving planners, for testing the bench harness and a cluster set-up.

Use them as custom methods: ``tierplan bench ci --methods keep,solver.bench.faults:crash``. Each
records what a real failure looks like in the results: the sweep must record it and go on.

- :func:`crash`: the run's process dies at once (as a segfaulting solver would): ``crashed``.
- :func:`hang`: never returns: ``timeout`` at the hard limit.
- :func:`oversleep`: sleeps a second past its hard limit, then answers ``keep``'s plan: ``timeout``.
- :func:`raise_error`: raises an exception: ``error``.
- :func:`invalid`: ``keep``'s schedule without its last action: ``invalid``.
- :func:`kill_worker`: kills the process hosting the run (a Dask worker: ``worker-died``); in the
  local pool, where that process is the sweep itself, it crashes the run instead.
- :func:`slow_keep`: ``keep`` after a pause of ``extra["sleep"]`` seconds (default 0.5), for
  interrupting sweeps in tests.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier
>>> from solver.methods import Instance, SolveOptions
>>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, outputs=("x",)),))
>>> res = invalid(Instance(tr, Hardware("h", "HBM", (Tier("HBM", 64),))), SolveOptions())
>>> res.status, len(res.schedule.actions)
('feasible', 0)
"""

from __future__ import annotations

import os
import signal
import time

from solver.bench.tasks import hard_limit
from solver.heuristics import keep
from solver.methods import Instance, PlanResult, SolveOptions
from solver.model import Schedule


def crash(instance: Instance, options: SolveOptions) -> PlanResult:
    """Die at once with SIGKILL, as a solver killed by the kernel would."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")  # pragma: no cover


def hang(instance: Instance, options: SolveOptions) -> PlanResult:
    """Never return."""
    while True:
        time.sleep(3600)


def oversleep(instance: Instance, options: SolveOptions) -> PlanResult:
    """Sleep a second past the hard limit of the time limit, then plan like ``keep``."""
    time.sleep(hard_limit(options.time_limit or 1.0) + 1.0)
    return keep.plan(instance, options)


def raise_error(instance: Instance, options: SolveOptions) -> PlanResult:
    """Raise ``RuntimeError``."""
    raise RuntimeError("planner failure injected by solver.bench.faults:raise_error")


def invalid(instance: Instance, options: SolveOptions) -> PlanResult:
    """``keep``'s plan with its last action dropped (the compute stream misses an op)."""
    res = keep.plan(instance, options)
    if res.schedule is None:
        return res
    s = res.schedule
    return PlanResult("feasible", Schedule(s.trace, s.hardware, s.actions[:-1], s.capacity, s.solver))


def kill_worker(instance: Instance, options: SolveOptions) -> PlanResult:
    """Kill the process that hosts this run when it is a Dask worker; otherwise crash the run."""
    if os.environ.get("TIERPLAN_BENCH_HOST") == "dask":
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")  # pragma: no cover


def slow_keep(instance: Instance, options: SolveOptions) -> PlanResult:
    """``keep`` after sleeping ``options.extra["sleep"]`` seconds (default 0.5)."""
    time.sleep(float(options.extra.get("sleep", 0.5)))
    return keep.plan(instance, options)
