"""The child process of one bench run: ``python -m solver.bench.child FD``.

It reads a pickled :class:`solver.bench.tasks.RunTask` on stdin, loads the instance, and solves it
with :func:`solver.solve.solve` (registered methods) or :func:`solver.solve.solve_with`
(``module:function`` planners): lower bounds, the planner, the timing model's validation. It
reports each step on the pipe ``FD``
(see :mod:`solver.bench.protocol`). The process that started it enforces the time limits and
kills it (with its whole process group) when one passes.
"""

from __future__ import annotations

import ctypes
import gzip
import os
import pickle
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from solver.bench.protocol import send
from solver.bench.tasks import RunTask, instance_of


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the watching process dies (no orphaned planner keeps running)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _document(name: str, data: bytes) -> Any:
    from solver.fileio import decode_json, tomllib
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
        name = name[:-3] if name.endswith(".gz") else name
    if name.endswith(".toml"):
        return tomllib.loads(data.decode("utf-8"))
    return decode_json(data, name)


def load(task: RunTask) -> tuple[Any, Any]:
    """The task's (trace, hardware).

    Raises
    ------
    InputError
        Unreadable files, a generator refusing the recipe, or an importer refusing its source.
    """
    from solver.formats import hardware_from_document, load_trace, trace_from_document
    hardware = hardware_from_document(_document(task.hardware_file, task.hardware_data), task.hardware_file)
    src = task.trace
    if src.recipe is not None:
        from solver import suites
        with tempfile.TemporaryDirectory(prefix="tierplan-hw-") as tmp:
            hw_path = Path(tmp) / task.hardware_file
            hw_path.write_bytes(task.hardware_data)
            inst = instance_of(task, hw_path)
            try:
                path = suites.trace_path(inst)
            except OSError:          # no writable cache here: generate in memory
                return trace_from_document(suites.materialize(inst, cache_dir=False), src.name), hardware
        return load_trace(path), hardware
    if src.imported is not None:
        from solver.suites import import_trace
        return trace_from_document(import_trace(src.imported), src.name), hardware
    if src.data is not None:
        return trace_from_document(_document(src.name, src.data), src.name), hardware
    assert src.path is not None
    return load_trace(src.path), hardware


def _error_codes(errors: Any) -> str:
    counts = Counter(e.code.value for e in errors)
    return ";".join(f"{code}:{n}" for code, n in counts.items())


def _describe(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}{where}"


def row_fields(outcome: Any, time_limit: float | None = None) -> dict[str, Any]:
    """The row fields of a :class:`solver.solve.SolveOutcome` (status ``invalid`` for a schedule the
    validator refused; ``overrun``, the solve's wall time over ``time_limit``, with a limit)."""
    rep = outcome.report
    status = outcome.status
    if status == "error" and rep is not None and not rep.valid:
        status = "invalid"
    row: dict[str, Any] = {"status": status, "wall_s": outcome.plan_s, "message": outcome.message,
                           "bound": outcome.bound, "gap": outcome.gap}
    if time_limit is not None and time_limit > 0:
        row["overrun"] = outcome.wall_s / time_limit
    if rep is not None:
        m = rep.metrics
        row.update({
            "valid": rep.valid, "errors": _error_codes(rep.errors), "makespan": m.makespan,
            "overhead": m.overhead, "recompute_time": m.recompute_time,
            "bytes_moved": int(sum(m.bytes_moved.values())), "copies": int(sum(m.copies.values())),
            "peak": dict(m.peak),
        })
    return row


def run(task: RunTask, fd: int) -> None:
    """Run one task, reporting on ``fd``."""
    from solver.solve import solve_with
    from solver.bench.planners import load_planner
    from solver.errors import InputError
    from solver.solve import make_instance, solve

    try:
        trace, hardware = load(task)
        caps = task.budget.capacities(trace.no_offload_peak, hardware.compute_tier)
        instance = make_instance(trace, hardware, caps)
        planner = load_planner(task.method.planner) if task.method.is_path else None
    except InputError as exc:
        send(fd, "failed", {"status": "error", "message": "; ".join(str(p) for p in exc.problems)[:2000]})
        return
    except Exception as exc:  # noqa: BLE001 - anything that stops the run is reported in its row
        send(fd, "failed", {"status": "error", "message": f"loading failed: {_describe(exc)}"})
        return
    info = {"ops": len(trace.ops), "tensors": len(trace.tensors), "no_offload_peak": trace.no_offload_peak,
            "compute_time": trace.compute_time, "capacity": instance.compute_capacity}
    send(fd, "loaded", info)
    send(fd, "planning")
    t0 = time.perf_counter()
    options = task.options.solve_options()
    try:
        if planner is not None:
            outcome = solve_with(instance, task.method.label, planner, options)
        else:
            outcome = solve(instance, task.method.planner, options)
    except Exception as exc:  # noqa: BLE001
        wall = time.perf_counter() - t0
        send(fd, "done", {**info, "status": "error", "wall_s": wall, "overrun": wall / task.options.time_limit,
                          "message": f"solving failed: {_describe(exc)}"})
        return
    send(fd, "planned", {"wall_s": outcome.plan_s})
    send(fd, "done", {**info, **row_fields(outcome, task.options.time_limit)})


def main(argv: list[str]) -> int:
    """Entry point: ``python -m solver.bench.child FD`` with the pickled task on stdin."""
    _die_with_parent()
    fd = int(argv[1])
    task = pickle.loads(sys.stdin.buffer.read())
    run(task, fd)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
