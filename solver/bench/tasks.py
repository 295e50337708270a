"""Run tasks: everything one (instance, budget, method) run needs, self-contained and picklable.

A :class:`RunTask` carries the hardware file's bytes, the trace's source (a generator recipe, a file
path, a committed trace's bytes, or an import to run), the budget, the method and the options, so that
it runs the same in a child of this process or on a Dask worker on another machine. A task of an
instance that cannot run here (an optional import whose file is absent) carries the reason in
``skip``: the sweep records it as a ``skipped`` row without running it.

Examples
--------
>>> from solver.suites import load_suite
>>> from solver.bench.planners import MethodSpec
>>> tasks = build_tasks(load_suite("ci"), (MethodSpec("keep", "keep"),), RunOptions(time_limit=5))
>>> len(tasks) == sum(len(i.budgets) for i in load_suite("ci").instances)
True
>>> tasks[0].options.canonical()
'{"extra":{},"recompute":true,"seed":0,"threads":1,"time_limit":5.0}'
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgspec

from solver.bench.planners import MethodSpec
from solver.deadline import time_margin
from solver.errors import InputError
from solver.fileio import read_bytes
from solver.methods import SolveOptions
from solver.suites import Budget, Instance, Recipe, Suite, TraceImport, hardware_source
from solver.units import UnitError, parse_size


def hard_limit(time_limit: float) -> float:
    """Seconds a planner may run before it is killed: its time limit plus the margin every
    command promises to end within, :func:`solver.deadline.time_margin` (``max(2 s, 10%)``).

    Examples
    --------
    >>> hard_limit(10.0), hard_limit(100.0)
    (12.0, 110.0)
    """
    return time_limit + time_margin(time_limit)


@dataclass(frozen=True)
class RunOptions:
    """The solve options of a sweep (what :class:`solver.methods.SolveOptions` receives).

    Parameters
    ----------
    time_limit : float
        Seconds each planner may use; it is killed at :func:`hard_limit` of it.
    threads : int
        Solver threads (1 by default, so that results repeat run to run).
    seed : int
    recompute : bool
    extra : tuple of (key, value)
        Method-specific options.
    setup_limit : float
        Seconds allowed for loading the instance and, separately, for validating the schedule.

    Examples
    --------
    >>> RunOptions(extra=(("window", 4),)).solve_options().extra["window"]
    4
    """

    time_limit: float = 60.0
    threads: int = 1
    seed: int = 0
    recompute: bool = True
    extra: tuple[tuple[str, Any], ...] = ()
    setup_limit: float = 600.0

    def solve_options(self) -> SolveOptions:
        """The planner's options."""
        return SolveOptions(time_limit=self.time_limit, threads=self.threads, recompute=self.recompute,
                            seed=self.seed, extra=dict(self.extra))

    def canonical(self) -> str:
        """Canonical JSON of what may change a planner's answer (the ``options`` column)."""
        return json.dumps({"time_limit": float(self.time_limit), "threads": self.threads, "seed": self.seed,
                           "recompute": self.recompute, "extra": dict(self.extra)},
                          sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_canonical(cls, text: str) -> "RunOptions":
        """Inverse of :meth:`canonical` (unknown keys ignored; missing ones take defaults).

        Examples
        --------
        >>> RunOptions.from_canonical(RunOptions(time_limit=3, seed=2).canonical()).seed
        2
        """
        d = json.loads(text) if text else {}
        return cls(time_limit=float(d.get("time_limit", 60.0)), threads=int(d.get("threads", 1)),
                   seed=int(d.get("seed", 0)), recompute=bool(d.get("recompute", True)),
                   extra=tuple(sorted(dict(d.get("extra", {})).items())))


@dataclass(frozen=True)
class TraceSource:
    """Where a run's trace comes from: exactly one of a recipe, a file path, a file's bytes, or an
    import.

    Attributes
    ----------
    name : str
        The file name (for messages; its suffix says how ``data`` is encoded).
    path : str or None
        A trace file readable where the run executes.
    data : bytes or None
        The bytes of a committed trace file (shipped to remote workers).
    recipe : Recipe or None
        A generator call (regenerated, or read from the generation cache, where the run executes).
    imported : TraceImport or None
        An import (:func:`solver.suites.import_trace`), run where the run executes.
    """

    name: str
    path: str | None = None
    data: bytes | None = None
    recipe: Recipe | None = None
    imported: TraceImport | None = None

    def portable(self) -> "TraceSource":
        """The same source with a path replaced by the file's bytes, and an import by the trace it
        produces here (for runs on other machines, which may lack the file)."""
        if self.imported is not None:
            from solver.suites import import_trace
            data = msgspec.json.encode(import_trace(self.imported))
            return TraceSource(self.name, None, data, None)
        if self.path is None:
            return self
        return TraceSource(self.name, None, read_bytes(self.path), None)


@dataclass(frozen=True)
class RunTask:
    """One (instance, budget, method) run, self-contained.

    Attributes
    ----------
    suite, instance, hardware : str
        Names (``hardware`` as the suite writes it).
    hardware_file : str
        The hardware file's name (its suffix says TOML or JSON).
    hardware_data : bytes
        The hardware file's bytes.
    trace : TraceSource
    budget : Budget
    method : MethodSpec
    options : RunOptions
    commit : str
        Code version of the sweep (recorded in the row, used by ``--resume``).
    host_kind : str
        ``local`` or ``dask``: what hosts the run's child process.
    skip : str
        Why the run cannot happen here ("" when it can): the instance's
        :attr:`solver.suites.Instance.skip_reason`. The sweep records such a run as ``skipped``.
    """

    suite: str
    instance: str
    hardware: str
    hardware_file: str
    hardware_data: bytes
    trace: TraceSource
    budget: Budget
    method: MethodSpec
    options: RunOptions
    commit: str = ""
    host_kind: str = "local"
    skip: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """(instance, budget label, method label), as :attr:`solver.bench.rows.Row.key`."""
        return (self.instance, self.budget.label, self.method.label)

    @property
    def resume_key(self) -> tuple[str, str, str, str, str]:
        """As :attr:`solver.bench.rows.Row.resume_key`."""
        return (self.instance, self.budget.label, self.method.label, self.options.canonical(), self.commit)

    @property
    def name(self) -> str:
        """``instance@budget/method`` for messages and task keys."""
        return f"{self.instance}@{self.budget.label}/{self.method.label}"

    def for_host(self, host_kind: str, portable: bool = False) -> "RunTask":
        """A copy for another host (``portable`` ships committed trace files, and imported traces, as
        bytes)."""
        return replace(self, host_kind=host_kind,
                       trace=self.trace.portable() if portable and not self.skip else self.trace)


def parse_budgets(text: str, flag: str = "--budgets") -> tuple[Budget, ...]:
    """Parse ``--budgets``: comma-separated fractions of the no-offload peak or sizes.

    Examples
    --------
    >>> [b.label for b in parse_budgets("1, 0.5, 16GiB")]
    ['1', '0.5', '16.00GiB']
    """
    out: list[Budget] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            try:
                cap = parse_size(part)
            except UnitError as exc:
                raise InputError.single(flag, part, f"expected a fraction or a size: {exc}") from None
            if cap <= 0:
                raise InputError.single(flag, part, "a capacity must be > 0")
            out.append(Budget(capacity=cap))
            continue
        if not (value > 0 and math.isfinite(value)):
            raise InputError.single(flag, part, "a fraction of the no-offload peak must be > 0")
        out.append(Budget(fraction=value))
    if not out:
        raise InputError.single(flag, text, "no budget given")
    return tuple(out)


def _trace_source(inst: Instance) -> TraceSource:
    if inst.recipe is not None:
        return TraceSource(f"{inst.name}.json", recipe=inst.recipe)
    if inst.imported is not None:
        return TraceSource(f"{inst.name}.json", imported=inst.imported)
    assert inst.trace is not None
    return TraceSource(inst.trace.name, path=str(inst.trace))


def build_tasks(suite: Suite, methods: Sequence[MethodSpec], options: RunOptions,
                budgets: Sequence[Budget] | None = None, instances: Sequence[str] | None = None,
                commit: str = "") -> tuple[RunTask, ...]:
    """Every (instance, budget, method) run of a suite, in table order (the runs of an instance that
    cannot run here carry :attr:`RunTask.skip`).

    Parameters
    ----------
    suite : Suite
    methods : sequence of MethodSpec
    options : RunOptions
    budgets : sequence of Budget, optional
        Replace every instance's budgets.
    instances : sequence of str, optional
        Only these instances (in the suite's order).
    commit : str
        Code version to record.

    Raises
    ------
    InputError
        For an instance name that is not in the suite.

    Examples
    --------
    >>> from solver.suites import load_suite
    >>> from solver.bench.planners import MethodSpec
    >>> ts = build_tasks(load_suite("ci"), [MethodSpec("keep", "keep")], RunOptions(),
    ...                  budgets=parse_budgets("1"), instances=["random-30"])
    >>> [t.name for t in ts]
    ['random-30@1/keep']
    """
    chosen = list(suite.instances)
    if instances:
        for name in instances:
            suite.instance(name)
        wanted = set(instances)
        chosen = [i for i in chosen if i.name in wanted]
    hw_cache: dict[Path | str, tuple[str, bytes]] = {}
    tasks: list[RunTask] = []
    for inst in chosen:
        hw_key = inst.hardware_path if inst.hardware_path is not None else inst.hardware_document or ""
        hw = hw_cache.get(hw_key)
        if hw is None:
            hw = hw_cache[hw_key] = hardware_source(inst)
        source = _trace_source(inst)
        skip = inst.skip_reason
        for budget in (tuple(budgets) if budgets else inst.budgets):
            for m in methods:
                tasks.append(RunTask(suite.name, inst.name, inst.hardware, hw[0], hw[1], source, budget, m,
                                     options, commit, skip=skip))
    return tuple(tasks)


def instance_of(task: RunTask, hardware_path: str | Path) -> Instance:
    """The suite instance a task's recipe belongs to, with its hardware at ``hardware_path``
    (for :func:`solver.suites.trace_path`, whose cache key hashes the hardware file)."""
    return Instance(task.instance, task.hardware, Path(hardware_path), (task.budget,), None,
                    task.trace.recipe, task.suite)


def options_from_pairs(pairs: Sequence[str], flag: str = "--option") -> tuple[tuple[str, Any], ...]:
    """Parse ``KEY=VALUE`` method options; values are read as JSON when they parse, else text.

    Examples
    --------
    >>> options_from_pairs(["window=4", "backend=cbc"])
    (('backend', 'cbc'), ('window', 4))
    """
    out: dict[str, Any] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError.single(flag, item, "expected KEY=VALUE, e.g. window=4")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return tuple(sorted(out.items()))
