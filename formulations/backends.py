"""Solving a PuLP model with a named back end and reading the back end's own status.

PuLP reports ``Optimal`` after a time limit with some solvers (its HiGHS and CBC adapters both
do). The status here is read from the solver itself: the ``highspy`` model status and MIP dual
bound for HiGHS, the ``Result -`` line and bounds of the log for CBC. ``optimal`` is returned only
when the solver says it proved optimality; ``feasible`` when it stopped with a solution;
``infeasible`` only when it proved infeasibility; ``timeout`` when it stopped without a solution;
``error`` otherwise.

Back ends: ``highs`` (HiGHS through ``highspy``, the default), ``cbc`` (the CBC binary PuLP
ships), or the name of any other solver PuLP drives (``GUROBI``, ``CPLEX_CMD``...), whose status
is then PuLP's (and ``optimal`` is reported as ``feasible`` when a time limit was set, since it
cannot be told apart from a stop on time).

Time limits hold from the call, not from the moment the back end starts: with a ``deadline``
(:class:`solver.deadline.Deadline`), the model is passed to HiGHS in bulk while polling it, and
HiGHS's own limit is the time left once the model is in; CBC gets the time left after PuLP has
written its model file, and since CBC does not look at its limit during its first LP, a CBC still
running at the deadline is interrupted (SIGINT, which makes it stop with its best solution) and
killed :data:`CBC_KILL_GRACE_S` seconds later. A deadline that passes before the back end runs
gives status ``timeout`` (detail :data:`NOT_STARTED`).

Examples
--------
>>> import pulp
>>> p = pulp.LpProblem("k", pulp.LpMinimize)
>>> x = pulp.LpVariable("x", 0, 3, cat="Integer")
>>> p += x
>>> p += x >= 1.5
>>> out = solve_pulp(p, "highs")
>>> out.status, out.objective, out.bound
('optimal', 2.0, 2.0)
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from solver.deadline import Deadline, OutOfTime, Poll

#: Relative MIP gap at which a back end may stop and call it optimal.
MIP_REL_GAP = 1e-7

#: Seconds CBC gets to write its best solution after the SIGINT at the deadline, before SIGKILL.
CBC_KILL_GRACE_S = 0.5

#: The detail of a solve whose deadline passed before the back end ran.
NOT_STARTED = "time limit reached before the solve began"

#: Rows (and columns) passed to HiGHS between two readings of the clock.
PASS_POLL_EVERY = 512


@dataclass(frozen=True)
class SolverOutcome:
    """What a back end answered.

    Attributes
    ----------
    status : str
        ``optimal``, ``feasible``, ``infeasible``, ``timeout`` or ``error``.
    objective, bound : float or None
        Objective of the best solution; best proven bound (minimisation).
    wall_s : float
        Seconds spent in the back end.
    detail : str
        The back end's own status text.
    values : Mapping[str, float]
        Variable values by name (empty without a solution).
    """

    status: str
    objective: float | None
    bound: float | None
    wall_s: float
    detail: str
    values: Mapping[str, float] = field(default_factory=dict)

    @property
    def has_solution(self) -> bool:
        """Whether a solution came back."""
        return self.status in ("optimal", "feasible")


class _Descriptor1:
    """Who has file descriptor 1 pointed elsewhere: the first block to enter saves it and points
    it at its target, the last to leave restores it.

    File descriptor 1 belongs to the whole process, so blocks that run at the same time on
    several threads (the window MILP beside ``auto``'s stage MILP) must share one redirection:
    two that saved and restored it each on their own would leave it pointing at the null device
    when they end out of order. While one is in place, a later block's target is not applied (a
    native log sent to stderr meanwhile goes where the first one chose).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None

    def enter(self, devnull: bool) -> None:
        """Point descriptor 1 at the null device or at descriptor 2 unless a block already has."""
        with self._lock:
            self._depth += 1
            if self._depth > 1:
                return
            for stream in (sys.stdout, sys.__stdout__):
                try:
                    if stream is not None:
                        stream.flush()
                except (OSError, ValueError):   # pragma: no cover - closed stream
                    pass
            try:
                self._saved = os.dup(1)
            except OSError:   # pragma: no cover - no fd 1
                self._saved = None
                return
            if devnull:
                null = os.open(os.devnull, os.O_WRONLY)
                try:
                    os.dup2(null, 1)
                finally:
                    os.close(null)
            else:
                os.dup2(2, 1)

    def leave(self) -> None:
        """Restore descriptor 1 when the last block leaves."""
        with self._lock:
            self._depth -= 1
            if self._depth > 0 or self._saved is None:
                return
            try:
                os.dup2(self._saved, 1)
            finally:
                os.close(self._saved)
                self._saved = None


#: the process's one descriptor 1 (see :class:`_Descriptor1`)
_FD1 = _Descriptor1()


@contextlib.contextmanager
def _stdout_fd_to(devnull: bool) -> Iterator[None]:
    """Point file descriptor 1 at the null device (``devnull``) or at descriptor 2 while the block
    runs, flushing Python's buffers first and restoring it after (see :class:`_Descriptor1` for
    blocks that overlap on several threads)."""
    _FD1.enter(devnull)
    try:
        yield
    finally:
        _FD1.leave()


@contextlib.contextmanager
def quiet_stdout(enabled: bool = True) -> Iterator[None]:
    """Silence file descriptor 1 (native solver banners) while the block runs.

    Examples
    --------
    >>> with quiet_stdout():
    ...     pass
    """
    if not enabled:
        yield
        return
    with _stdout_fd_to(devnull=True):
        yield


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to file descriptor 2 while the block runs (a native solver's log,
    which would otherwise mix with the caller's output on stdout).

    Examples
    --------
    >>> with stdout_to_stderr():
    ...     pass
    """
    with _stdout_fd_to(devnull=False):
        yield


@contextlib.contextmanager
def follow_file(path: str, stream: Any, poll_s: float = 0.1) -> Iterator[None]:
    """Copy what is appended to ``path`` to ``stream`` while the block runs (a log being written by
    a solver process), and the rest when it ends.

    Examples
    --------
    >>> import io, tempfile
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    >>> out = io.StringIO()
    >>> with follow_file(f.name, out):
    ...     _ = f.write("line 1"); f.flush()
    >>> out.getvalue()
    'line 1'
    >>> f.close(); os.unlink(f.name)
    """
    stop = threading.Event()

    def pump() -> None:
        with open(path, encoding="utf-8", errors="replace") as fh:
            while True:
                done = stop.is_set()      # read once more after the stop: nothing is written after it
                chunk = fh.read()
                if chunk:
                    stream.write(chunk)
                    stream.flush()
                elif done:
                    return
                else:
                    stop.wait(poll_s)

    th = threading.Thread(target=pump, name="tierplan-log", daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join()


def pass_to_highs(lp: Any, mip: bool = True, tick: Callable[[], None] | None = None) -> None:
    """Pass a PuLP problem to its ``lp.solverModel`` (a ``highspy.Highs``) in bulk, as PuLP's
    own adapter does one column and one row at a time (about twice as fast; ``tick`` is called
    once per column and row, a :class:`solver.deadline.Poll` to stop a pass that runs out of time).

    Sets ``index`` on every variable and constraint, as PuLP's adapter does, for reading the
    solution back.

    Examples
    --------
    >>> import highspy, pulp
    >>> p = pulp.LpProblem("b", pulp.LpMinimize)
    >>> x, y = pulp.LpVariable("x", 0, 4, cat="Integer"), pulp.LpVariable("y", 1)
    >>> p += x + 2 * y
    >>> p += x + y >= 2.5
    >>> p.solverModel = highspy.Highs()
    >>> pass_to_highs(p)
    >>> p.solverModel.getNumCol(), p.solverModel.getNumRow(), p.solverModel.getNumNz()
    (2, 1, 2)
    """
    import highspy
    import numpy as np
    import pulp

    h = lp.solverModel
    inf = highspy.kHighsInf
    tick = tick or (lambda: None)
    mult = -1.0 if lp.sense == pulp.LpMaximize else 1.0
    variables = lp.variables()
    n = len(variables)
    cost = np.zeros(n)
    lower = np.empty(n)
    upper = np.empty(n)
    ints: list[int] = []
    objective = lp.objective if lp.objective is not None else {}
    for i, var in enumerate(variables):
        tick()
        var.index = i
        c = objective.get(var, 0.0)
        if c:
            cost[i] = mult * c
        lower[i] = -inf if var.lowBound is None else var.lowBound
        upper[i] = inf if var.upBound is None else var.upBound
        if var.cat == pulp.LpInteger and mip:
            ints.append(i)
    none = np.zeros(0, dtype=np.int32)
    if n:
        h.addCols(n, cost, lower, upper, 0, none, none, np.zeros(0))
    if ints:
        h.changeColsIntegrality(len(ints), np.array(ints, dtype=np.int32),
                                np.full(len(ints), highspy.HighsVarType.kInteger))
    cons = list(lp._constraints.values())
    m = len(cons)
    starts = np.empty(m, dtype=np.int32)
    rlo = np.empty(m)
    rup = np.empty(m)
    index: list[int] = []
    value: list[float] = []
    for r, con in enumerate(cons):
        tick()
        con.index = r
        starts[r] = len(index)
        for var, coef in con.items():
            if coef != 0:
                index.append(var.index)
                value.append(coef)
        lb, ub = con.getLb(), con.getUb()
        rlo[r] = -inf if lb is None else lb
        rup[r] = inf if ub is None else ub
    if m:
        h.addRows(m, rlo, rup, len(index), starts, np.array(index, dtype=np.int32), np.array(value, dtype=np.float64))


def _highs_solver(start: Mapping[str, float] | None, on_bound: Callable[[float], bool] | None = None,
                  offset: float = 0.0, until: Deadline | None = None, **kw: Any) -> Any:
    import highspy
    import pulp

    class _HiGHSWithStart(pulp.HiGHS):
        """PuLP's highspy adapter that also passes a MIP start, sends the log (``msg``) to
        ``sys.stderr`` through HiGHS's logging callback, passes the model in bulk and, with a
        deadline, polls it while passing the model and gives HiGHS the time left as its limit."""

        def buildSolverModel(self, lp: Any) -> None:  # noqa: N802 - PuLP's name
            pass_to_highs(lp, self.mip, Poll(until, PASS_POLL_EVERY) if until is not None else None)

        def callSolver(self, lp: Any) -> None:  # noqa: N802 - PuLP's name
            h = lp.solverModel
            if self.msg:
                h.setOptionValue("log_to_console", False)
                h.cbLogging.subscribe(_highs_log)
            if start:
                vals = [0.0] * h.getNumCol()
                for v in lp.variables():
                    x = start.get(v.name)
                    if x is None:
                        x = v.lowBound if v.lowBound is not None else 0.0
                    vals[v.index] = float(x)
                sol = highspy.HighsSolution()
                sol.col_value = vals
                sol.value_valid = True
                h.setSolution(sol)
            if on_bound is not None:
                # polled by HiGHS's branch and bound: the dual bound so far (objective constant
                # included); a True answer stops the solve (status "interrupted", bound kept)
                def poll(event: Any) -> None:
                    b = float(event.data_out.mip_dual_bound)
                    if on_bound(b + offset if abs(b) < 1e300 else -math.inf):
                        event.interrupt()

                h.cbMipInterrupt.subscribe(poll)
            if until is not None:
                until.check("the model's transfer to HiGHS")
                left = until.left()
                if self.timeLimit is None or left < float(self.timeLimit):
                    h.setOptionValue("time_limit", float(left))
            # HiGHS keeps one thread scheduler per process, sized by the first solve's `threads`;
            # a later solve asking for another count fails with status "Not Set" unless reset.
            h.resetGlobalScheduler(True)
            h.run()

    return _HiGHSWithStart(**kw)


def wait_until(proc: Any, until: Deadline | None, grace: float = CBC_KILL_GRACE_S,
               poll_s: float = 0.05) -> tuple[int | None, bool]:
    """Wait for a solver's process, interrupting it at ``until``: SIGINT (CBC then stops and writes
    its best solution), then SIGKILL ``grace`` seconds later.

    Parameters
    ----------
    proc : subprocess.Popen
        Anything with ``wait(timeout)``, ``send_signal`` and ``kill``.
    until : Deadline or None
        None waits for as long as the process runs.
    grace : float
        Seconds between SIGINT and SIGKILL (on ``until``'s clock).
    poll_s : float
        Longest single wait, in seconds.

    Returns
    -------
    (int or None, bool)
        The exit status, and whether the process was interrupted.

    Examples
    --------
    >>> import sys
    >>> p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    >>> code, stopped = wait_until(p, Deadline.after(0.2), grace=0.2)
    >>> stopped, code != 0
    (True, True)
    """
    if until is None:
        return proc.wait(), False
    stopped = False
    kill_at: float | None = None
    while True:
        left = until.left() if kill_at is None else max(0.0, kill_at - until.now())
        try:
            return proc.wait(timeout=max(0.001, min(poll_s, left))), stopped
        except subprocess.TimeoutExpired:
            pass
        if kill_at is None and until.expired():
            stopped = True
            kill_at = until.now() + grace
            try:
                proc.send_signal(signal.SIGINT)
            except (OSError, ValueError):   # pragma: no cover - already gone
                pass
        elif kill_at is not None and until.now() >= kill_at:
            try:
                proc.kill()
            except (OSError, ValueError):   # pragma: no cover - already gone
                pass
            try:
                return proc.wait(timeout=5.0), stopped
            except subprocess.TimeoutExpired:   # pragma: no cover - a process that ignores SIGKILL
                return None, stopped


def _cbc_solver(until: Deadline | None, **kw: Any) -> Any:
    import pulp
    from pulp import constants

    class _CbcUntil(pulp.PULP_CBC_CMD):
        """PuLP's CBC command that gives CBC the time left once its model file is written, and
        interrupts it at the deadline (:func:`wait_until`); an MPS model only (as PuLP's default)."""

        def solve_CBC(self, lp: Any, use_mps: bool = True) -> int:  # noqa: N802 - PuLP's name
            if until is None:
                return super().solve_CBC(lp, use_mps)
            if not self.executable(self.path):
                raise pulp.PulpSolverError(f"Pulp: cannot execute {self.path} cwd: {os.getcwd()}")
            tmp_lp, tmp_mps, tmp_sol, tmp_mst = self.create_tmp_files(lp.name, "lp", "mps", "sol", "mst")
            vs, var_names, con_names, _ = lp.writeMPS(tmp_mps, rename=1)
            args = [self.path, tmp_mps] + (["-max"] if lp.sense == constants.LpMaximize else [])
            if self.optionsDict.get("warmStart", False):
                self.writesol(tmp_mst, lp, vs, var_names, con_names)
                args += ["-mips", tmp_mst]
            if until.expired():
                self.delete_tmp_files(tmp_mps, tmp_lp, tmp_sol, tmp_mst)
                raise OutOfTime(NOT_STARTED)
            limit = until.left() if self.timeLimit is None else min(float(self.timeLimit), until.left())
            args += ["-sec", f"{max(0.01, limit):.3f}"]
            for option in self.options + self.getOptions():
                args += ("-" + option).split()
            args += ["-solve" if self.mip else "-initialSolve", "-printingOptions", "all", "-solution", tmp_sol]
            log_path = self.optionsDict.get("logPath")
            with open(log_path, "w") if log_path else open(os.devnull, "w") as pipe:
                proc = subprocess.Popen(args, stdout=pipe, stderr=pipe, stdin=subprocess.DEVNULL)
                code, stopped = wait_until(proc, until)
            if not os.path.exists(tmp_sol) or (code != 0 and not stopped):
                self.delete_tmp_files(tmp_mps, tmp_lp, tmp_sol, tmp_mst)
                if stopped:
                    raise OutOfTime("CBC was stopped at the time limit before it wrote a solution")
                raise pulp.PulpSolverError(f"Pulp: Error while executing {self.path} (exit status {code})")
            status, values, reduced, shadow, slacks, sol_status = self.readsol_MPS(tmp_sol, lp, vs, var_names,
                                                                                  con_names)
            lp.assignVarsVals(values)
            lp.assignVarsDj(reduced)
            lp.assignConsPi(shadow)
            lp.assignConsSlack(slacks, activity=True)
            lp.assignStatus(status, sol_status)
            self.delete_tmp_files(tmp_mps, tmp_lp, tmp_sol, tmp_mst)
            return status

    return _CbcUntil(**kw)


def _highs_log(event: Any) -> None:
    """Write one HiGHS log message to the current ``sys.stderr``."""
    sys.stderr.write(str(event.message))
    sys.stderr.flush()


def solve_pulp(prob: Any, backend: str = "highs", *, time_limit: float | None = None,
               threads: int | None = None, start: Mapping[str, float] | None = None, msg: bool = False,
               mip: bool = True, rel_gap: float | None = None, lp_method: str | None = None,
               on_bound: Callable[[float], bool] | None = None, deadline: Deadline | None = None) -> SolverOutcome:
    """Solve a PuLP problem (minimisation) and report the back end's own status.

    Parameters
    ----------
    prob : pulp.LpProblem
    backend : str
        ``highs``, ``cbc`` or another PuLP solver name.
    time_limit : float, optional
        Seconds from this call (passing the model to the back end included).
    threads : int, optional
    start : Mapping[str, float], optional
        A MIP start, by variable name (variables left out start at their lower bound).
    msg : bool
        Stream the back end's own log to ``sys.stderr`` (HiGHS through its logging callback, CBC
        by following its log file, other solvers by sending file descriptor 1 to 2); stdout stays
        clean for the caller's output.
    mip : bool
        False solves the LP relaxation.
    rel_gap : float, optional
        The relative MIP gap at which HiGHS or CBC stop (default :data:`MIP_REL_GAP`).
    lp_method : str, optional
        HiGHS's LP algorithm when ``mip`` is False: ``simplex``, or ``ipm`` (interior point with
        crossover, much faster on large sparse LPs); HiGHS chooses by default. Other back ends
        ignore it.
    on_bound : callable, optional
        HiGHS MILPs: called from time to time during branch and bound (possibly from HiGHS's own
        thread) with the dual bound so far, objective constant included (``-inf`` before there is
        one); returning True stops the solve, which then reads as a time limit (``feasible`` or
        ``timeout`` with that bound). Other back ends ignore it.
    deadline : Deadline, optional
        When the solve must be over, whatever ``time_limit`` says (the sooner counts); past it
        before the back end runs, the status is ``timeout`` with detail :data:`NOT_STARTED`.

    Returns
    -------
    SolverOutcome

    Examples
    --------
    >>> import pulp
    >>> p = pulp.LpProblem("i", pulp.LpMinimize)
    >>> x = pulp.LpVariable("x", 0, 1)
    >>> p += x
    >>> p += x >= 2
    >>> solve_pulp(p, "cbc").status
    'infeasible'
    """
    t0 = time.perf_counter()
    until = deadline
    if time_limit is not None:
        own = Deadline.after(time_limit, clock=deadline.clock if deadline is not None else time.perf_counter)
        until = own.sooner(deadline)
    if until is not None and until.expired():
        return SolverOutcome("timeout", None, None, 0.0, NOT_STARTED)
    offset = float(prob.objective.constant) if prob.objective is not None else 0.0
    out = _solve(prob, backend, time_limit, threads, start, msg, mip, MIP_REL_GAP if rel_gap is None else rel_gap,
                 lp_method, on_bound, offset, until)
    if offset:
        out = SolverOutcome(out.status, None if out.objective is None else out.objective + offset,
                            None if out.bound is None else out.bound + offset, out.wall_s, out.detail, out.values)
    del t0
    return out


def _solve(prob: Any, backend: str, time_limit: float | None, threads: int | None,
           start: Mapping[str, float] | None, msg: bool, mip: bool, rel_gap: float,
           lp_method: str | None = None, on_bound: Callable[[float], bool] | None = None,
           offset: float = 0.0, until: Deadline | None = None) -> SolverOutcome:
    """Run the back end; objective and bound exclude the objective's constant (as solvers report)."""
    import pulp

    t0 = time.perf_counter()
    name = backend.lower()
    if name == "highs":
        opts: dict[str, Any] = {"mip_rel_gap": rel_gap, "mip_abs_gap": 1e-9}
        if lp_method is not None and not mip:
            opts["solver"] = lp_method
        solver = _highs_solver(start if mip else None, on_bound if mip else None, offset, until, mip=mip, msg=msg,
                               timeLimit=time_limit, threads=threads, **opts)
        try:
            with quiet_stdout():
                prob.solve(solver)
        except OutOfTime:
            return SolverOutcome("timeout", None, None, time.perf_counter() - t0, NOT_STARTED)
        except Exception as exc:  # pragma: no cover - solver crash
            return SolverOutcome("error", None, None, time.perf_counter() - t0, f"HiGHS failed: {exc}")
        return _read_highs(prob, time.perf_counter() - t0, mip)
    if name == "cbc":
        fd, log = tempfile.mkstemp(suffix=".log", prefix="tierplan-cbc-")
        os.close(fd)
        try:
            if start:
                for v in prob.variables():
                    if v.name in start:
                        v.setInitialValue(start[v.name])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)   # PuLP 3 deprecates its bundled CBC
                solver = _cbc_solver(until, mip=mip, msg=False, timeLimit=time_limit, threads=threads,
                                     gapRel=rel_gap, warmStart=bool(start), logPath=log)
            try:
                with follow_file(log, sys.stderr) if msg else contextlib.nullcontext():
                    prob.solve(solver)
            except OutOfTime as exc:
                return SolverOutcome("timeout", None, None, time.perf_counter() - t0, str(exc))
            except Exception as exc:
                return SolverOutcome("error", None, None, time.perf_counter() - t0, f"CBC failed: {exc}")
            with open(log, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        finally:
            os.unlink(log)
        return _read_cbc(prob, text, time.perf_counter() - t0)
    if until is not None:
        time_limit = until.left()
    try:
        solver = pulp.getSolver(backend, msg=msg, timeLimit=time_limit, **({"threads": threads} if threads else {}))
        with stdout_to_stderr() if msg else quiet_stdout():
            prob.solve(solver)
    except Exception as exc:
        return SolverOutcome("error", None, None, time.perf_counter() - t0, f"{backend} failed: {exc}")
    wall = time.perf_counter() - t0
    st = pulp.LpStatus.get(prob.status, "Undefined")
    obj = pulp.value(prob.objective) if prob.status == 1 else None
    if prob.status == 1:
        status = "optimal" if (prob.sol_status == 1 and time_limit is None) else "feasible"
        return SolverOutcome(status, obj, obj if status == "optimal" else None, wall, st, _values(prob))
    if prob.status == -1:
        return SolverOutcome("infeasible", None, None, wall, st)
    return SolverOutcome("timeout" if time_limit else "error", None, None, wall, st)


def _values(prob: Any) -> dict[str, float]:
    return {v.name: (v.varValue if v.varValue is not None else 0.0) for v in prob.variables()}


def _read_highs(prob: Any, wall: float, mip: bool) -> SolverOutcome:
    import highspy

    h = prob.solverModel
    st = h.getModelStatus()
    info = h.getInfo()
    detail = h.modelStatusToString(st)
    MS = highspy.HighsModelStatus
    has_sol = info.primal_solution_status == 2   # kSolutionStatusFeasible
    obj = float(info.objective_function_value) if has_sol else None
    is_mip = mip and any(v.cat == "Integer" for v in prob.variables())
    if is_mip:
        bound = float(info.mip_dual_bound)
        bound = bound if abs(bound) < 1e300 else None
    else:
        bound = obj if st == MS.kOptimal else None
    if st == MS.kOptimal:
        if is_mip and obj is not None and (bound is None or obj - bound > 1e-6 * max(1.0, abs(obj))):
            # HiGHS can call a badly scaled model optimal with an open gap: do not trust it
            return SolverOutcome("feasible", obj, bound, wall, detail + " (open gap)", _values(prob))
        return SolverOutcome("optimal", obj, bound if bound is not None else obj, wall, detail, _values(prob))
    if st in (MS.kInfeasible,):
        return SolverOutcome("infeasible", None, None, wall, detail)
    if st == MS.kUnboundedOrInfeasible and not is_mip:
        return SolverOutcome("infeasible", None, None, wall, detail)
    limit = {MS.kTimeLimit, MS.kIterationLimit, MS.kInterrupt, MS.kObjectiveBound, MS.kObjectiveTarget}
    sl = getattr(MS, "kSolutionLimit", None)
    if sl is not None:
        limit.add(sl)
    if st in limit:
        if has_sol:
            return SolverOutcome("feasible", obj, bound, wall, detail, _values(prob))
        return SolverOutcome("timeout", None, bound, wall, detail)
    return SolverOutcome("error", obj, bound, wall, detail, _values(prob) if has_sol else {})


_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


def _read_cbc(prob: Any, log: str, wall: float) -> SolverOutcome:
    result = re.search(r"Result - (.*)", log)
    detail = result.group(1).strip() if result else "no result line"
    objm = re.search(r"Objective value:\s*" + _NUM, log)
    lowm = re.search(r"Lower bound:\s*" + _NUM, log)
    obj = float(objm.group(1)) if objm else None
    low = float(lowm.group(1)) if lowm else None
    d = detail.lower()
    if "optimal solution found" in d:
        return SolverOutcome("optimal", obj, obj, wall, detail, _values(prob))
    if "infeasible" in d:
        return SolverOutcome("infeasible", None, None, wall, detail)
    if d.startswith("stopped"):
        if obj is not None and abs(obj) < 1e49 and prob.sol_status in (1, 2):
            return SolverOutcome("feasible", obj, low, wall, detail, _values(prob))
        return SolverOutcome("timeout", None, low, wall, detail)
    if "linear relaxation" in d and "optimal" in d:   # LP solve
        return SolverOutcome("optimal", obj, obj, wall, detail, _values(prob))
    return SolverOutcome("error", None, None, wall, detail)


def write_model(prob: Any, path: str) -> str:
    """Export ``prob`` to ``path`` (``.mps`` or ``.lp``, chosen by the suffix); returns the path.

    The file is written atomically like every other output (PuLP writes a scratch copy, which
    :func:`solver.fileio.write_bytes_atomic` then puts in place): a killed solve leaves either
    the previous file or none, never a truncated model.

    Examples
    --------
    >>> import pulp, tempfile, os
    >>> p = pulp.LpProblem("w", pulp.LpMinimize)
    >>> x = pulp.LpVariable("x", 0, 1)
    >>> p += x
    >>> f = os.path.join(tempfile.mkdtemp(), "m.lp")
    >>> write_model(p, f) == f and os.path.getsize(f) > 0
    True
    """
    import tempfile

    from solver.fileio import write_bytes_atomic

    low = path.lower()
    if not low.endswith((".mps", ".lp")):
        raise ValueError(f"model file {path!r}: use a .mps or .lp suffix")
    with tempfile.TemporaryDirectory(prefix="tierplan-model-") as scratch:
        tmp = os.path.join(scratch, "model.mps" if low.endswith(".mps") else "model.lp")
        if low.endswith(".mps"):
            prob.writeMPS(tmp)
        else:
            prob.writeLP(tmp)
        with open(tmp, "rb") as fh:
            data = fh.read()
    write_bytes_atomic(path, data)
    return path
