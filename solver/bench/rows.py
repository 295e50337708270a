"""Result rows: one per (instance, budget, method) run, and their CSV form.

The CSV has the fixed columns of :data:`COLUMNS` in order, with the per-tier peak columns
(``peak_<TIER>``, bytes) inserted after ``copies`` for every tier any row names. Numbers are
written so that they read back exactly (floats by ``repr``), missing values are empty cells,
booleans ``true``/``false``: :func:`parse_csv` inverts :func:`format_csv`.

Examples
--------
>>> r = Row(suite="s", instance="i", budget="0.5", method="keep", status="feasible",
...         makespan=1.25, peak={"HBM": 10})
>>> parse_csv(format_csv([r])) == [r]
True
>>> status_rank("optimal") < status_rank("feasible") < status_rank("timeout")
True
>>> import pickle; pickle.loads(pickle.dumps(r)) == r
True
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

from solver.deadline import time_margin
from solver.errors import InputError, InputProblem
from solver.fileio import read_bytes, write_text_atomic

#: Every status a row can have. ``optimal`` and ``feasible`` come with a valid schedule; the rest are
#: failures: the planner said so (``infeasible``, ``timeout``, ``error``), or the bench found out
#: (``invalid``: the validator refused the schedule; ``timeout``: killed at the hard limit;
#: ``crashed``: the run's process died; ``worker-died``: a Dask worker died running it); except
#: ``skipped``: the run did not happen because its instance is unavailable here (an optional trace
#: file is absent; ``message`` says which), which is neither a result nor a failure.
STATUSES: tuple[str, ...] = ("optimal", "feasible", "infeasible", "timeout", "error", "crashed",
                             "worker-died", "invalid", "skipped")

#: The status of a run whose instance is unavailable (not run, not a failure).
SKIPPED = "skipped"

#: Statuses that count as solved (a valid schedule).
SOLVED: frozenset[str] = frozenset({"optimal", "feasible"})

#: Columns that differ between two runs of the same deterministic sweep (timings, where, when).
VOLATILE: tuple[str, ...] = ("wall_s", "total_s", "overrun", "started", "host")

_PEAK = "peak_"


def overrun_limit(time_limit: float) -> float:
    """The largest overrun (wall / limit) a run may have: the limit plus its margin
    (:func:`solver.deadline.time_margin`, ``max(2 s, 10%)``), over the limit.

    Examples
    --------
    >>> overrun_limit(20.0), overrun_limit(100.0)
    (1.1, 1.1)
    >>> overrun_limit(2.0)
    2.0
    """
    return (time_limit + time_margin(time_limit)) / time_limit


def status_rank(status: str) -> int:
    """0 for ``optimal``, 1 for ``feasible``, 2 for every failure (the check's order; the check
    treats ``skipped`` apart, see :mod:`solver.bench.check`).

    Examples
    --------
    >>> [status_rank(s) for s in ("optimal", "feasible", "infeasible", "crashed")]
    [0, 1, 2, 2]
    """
    return {"optimal": 0, "feasible": 1}.get(status, 2)


@dataclass(frozen=True)
class Row:
    """The outcome of one run.

    Attributes
    ----------
    suite, instance, hardware : str
        Where the instance comes from (``hardware`` as the suite names it).
    ops, tensors, no_offload_peak : int or None
        Size of the trace (None when it could not be loaded).
    compute_time : float or None
        Sum of op durations (seconds).
    budget : str
        The budget's label (``0.5`` is half the no-offload peak; ``16.00GiB`` an absolute capacity).
    capacity : int or None
        Compute-tier capacity in force (bytes).
    method, planner : str
        The method's label in tables, and what runs it (a registry name or ``module:function``).
    options : str
        The solve options as canonical JSON (time limit, threads, seed, recompute, extra).
    status : str
        One of :data:`STATUSES`.
    valid : bool or None
        The validator's verdict (None when there was no schedule).
    errors : str
        Validator error codes with counts, ``code:n`` joined by ``;`` (for an invalid schedule).
    makespan, overhead, bound, gap, recompute_time : float or None
        Validator metrics (seconds; overhead = makespan / compute_time - 1); ``bound`` the best
        proven lower bound on the makespan (:mod:`solver.bounds` and the planner's own) and
        ``gap`` = makespan / bound - 1, as :func:`solver.solve.solve` reports them.
    bytes_moved, copies : int or None
        Over all link streams.
    peak : Mapping[str, int]
        Peak bytes held per tier.
    wall_s, total_s : float or None
        Planner wall time; whole run (load, plan, validate).
    overrun : float or None
        The solve's wall time (bounds, planner, validation: what the time limit covers) over the
        time limit; above :func:`overrun_limit` the run broke its limit (the regression check
        fails it). None where unknown (a results file from before the column, a run that failed
        to load).
    started, host, machine, commit, versions : str
        UTC start time (ISO 8601), host name, machine description, tierplan code version,
        ``name=version`` of tierplan, Python and the solver libraries.
    message : str
        Why a run failed (or what the planner said).
    """

    suite: str = ""
    instance: str = ""
    hardware: str = ""
    ops: int | None = None
    tensors: int | None = None
    no_offload_peak: int | None = None
    compute_time: float | None = None
    budget: str = ""
    capacity: int | None = None
    method: str = ""
    planner: str = ""
    options: str = ""
    status: str = "error"
    valid: bool | None = None
    errors: str = ""
    makespan: float | None = None
    overhead: float | None = None
    bound: float | None = None
    gap: float | None = None
    recompute_time: float | None = None
    bytes_moved: int | None = None
    copies: int | None = None
    peak: Mapping[str, int] = field(default_factory=dict)
    wall_s: float | None = None
    total_s: float | None = None
    overrun: float | None = None
    started: str = ""
    host: str = ""
    machine: str = ""
    commit: str = ""
    versions: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "peak", MappingProxyType(dict(self.peak)))

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickle by fields (a mapping proxy itself does not pickle)."""
        return (_row_from_dict, (self.as_dict(),))

    @property
    def key(self) -> tuple[str, str, str]:
        """(instance, budget, method): what the regression check matches rows on."""
        return (self.instance, self.budget, self.method)

    @property
    def resume_key(self) -> tuple[str, str, str, str, str]:
        """(instance, budget, method, options, commit): what ``--resume`` matches rows on."""
        return (self.instance, self.budget, self.method, self.options, self.commit)

    @property
    def time_limit(self) -> float | None:
        """The run's time limit in seconds, read from its ``options`` (None where it says none).

        Examples
        --------
        >>> Row(options='{"time_limit":20.0}').time_limit, Row().time_limit
        (20.0, None)
        """
        try:
            limit = json.loads(self.options).get("time_limit") if self.options else None
            return None if limit is None else float(limit)
        except (ValueError, TypeError, AttributeError):
            return None

    @property
    def over_time(self) -> bool:
        """Whether the run is known to have run past its time limit plus the margin
        (:func:`overrun_limit`); False where the overrun or the limit is unknown.

        Examples
        --------
        >>> r = Row(options='{"time_limit":10.0}')
        >>> r.with_(overrun=1.1).over_time, r.with_(overrun=1.3).over_time, r.over_time
        (False, True, False)
        """
        limit = self.time_limit
        if self.overrun is None or limit is None or not limit > 0 or not math.isfinite(self.overrun):
            return False
        return self.overrun > overrun_limit(limit)

    @property
    def solved(self) -> bool:
        """True for an optimal or feasible run with a valid schedule."""
        return self.status in SOLVED and self.valid is True

    @property
    def skipped(self) -> bool:
        """True for a run that did not happen because its instance is unavailable (status ``skipped``)."""
        return self.status == SKIPPED

    def as_dict(self) -> dict[str, Any]:
        """Field name to value (``peak`` as a plain dict)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["peak"] = dict(self.peak)
        return out

    def stable(self) -> dict[str, Any]:
        """:meth:`as_dict` without the :data:`VOLATILE` columns (what must repeat run to run)."""
        d = self.as_dict()
        for k in VOLATILE:
            d.pop(k, None)
        return d

    def with_(self, **changes: Any) -> "Row":
        """A copy with some fields replaced."""
        return replace(self, **changes)


def _row_from_dict(d: dict[str, Any]) -> Row:
    return Row(**d)


_FIELDS = {f.name: f for f in fields(Row)}
_INT = frozenset({"ops", "tensors", "no_offload_peak", "capacity", "bytes_moved", "copies"})
_FLOAT = frozenset({"compute_time", "makespan", "overhead", "bound", "gap", "recompute_time", "wall_s", "total_s",
                    "overrun"})
_BOOL = frozenset({"valid"})

#: Fixed CSV columns in order; ``peak_<TIER>`` columns go where ``peak`` stands.
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Row))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def header(rows: Iterable[Row]) -> list[str]:
    """The CSV header for these rows (fixed columns with one ``peak_<TIER>`` column per tier seen).

    Examples
    --------
    >>> header([Row(peak={"HBM": 1, "DDR": 2})])[COLUMNS.index("peak"):][:2]
    ['peak_HBM', 'peak_DDR']
    """
    tiers: dict[str, None] = {}
    for r in rows:
        for t in r.peak:
            tiers.setdefault(t, None)
    i = COLUMNS.index("peak")
    return [*COLUMNS[:i], *(_PEAK + t for t in tiers), *COLUMNS[i + 1:]]


def format_csv(rows: Sequence[Row]) -> str:
    """The rows as CSV text (header first).

    Examples
    --------
    >>> format_csv([Row(instance="i", status="timeout")]).splitlines()[1].startswith(",i,")
    True
    """
    cols = header(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        d = r.as_dict()
        peak = d.pop("peak")
        w.writerow([_cell(peak.get(c[len(_PEAK):])) if c.startswith(_PEAK) else _cell(d[c]) for c in cols])
    return buf.getvalue()


def _value(name: str, text: str, where: str) -> Any:
    if name in _INT:
        return None if text == "" else int(text)
    if name in _FLOAT:
        return None if text == "" else float(text)
    if name in _BOOL:
        if text == "":
            return None
        if text in ("true", "false"):
            return text == "true"
        raise ValueError(f"expected true, false or empty, got {text!r}")
    return text


def parse_csv(text: str, file: str = "<csv>") -> list[Row]:
    """Rows from CSV text written by :func:`format_csv` (columns may come in any order; unknown
    columns are ignored; missing ones take their defaults).

    Raises
    ------
    InputError
        For a cell that does not parse, naming the line and column.

    Examples
    --------
    >>> parse_csv("instance,budget,method,status,makespan\\ni,1,keep,feasible,2.5\\n")[0].makespan
    2.5
    """
    reader = csv.reader(io.StringIO(text))
    try:
        cols = next(reader)
    except StopIteration:
        return []
    missing = {"instance", "budget", "method", "status"} - set(cols)
    if missing:
        raise InputError.single(file, "line 1", f"not a bench results file: no column "
                                f"{', '.join(sorted(missing))}")
    problems: list[InputProblem] = []
    rows: list[Row] = []
    for lineno, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(cols):
            problems.append(InputProblem(file, f"line {lineno}", f"{len(cells)} cells, expected {len(cols)}"))
            continue
        kw: dict[str, Any] = {}
        peak: dict[str, int] = {}
        for name, text in zip(cols, cells):
            try:
                if name.startswith(_PEAK):
                    if text != "":
                        peak[name[len(_PEAK):]] = int(text)
                elif name in _FIELDS and name != "peak":
                    kw[name] = _value(name, text, file)
            except ValueError as exc:
                problems.append(InputProblem(file, f"line {lineno}, column {name}", str(exc)))
        kw["peak"] = peak
        rows.append(Row(**kw))
    if problems:
        raise InputError(problems)
    return rows


def read_csv(path: str | os.PathLike[str]) -> list[Row]:
    """Read a results CSV.

    Raises
    ------
    InputError
        Missing file or bad cells.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "r.csv")
    >>> write_csv(p, [Row(instance="i", budget="1", method="keep", status="feasible")])
    >>> read_csv(p)[0].status
    'feasible'
    """
    p = os.fspath(path)
    data = read_bytes(p)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError.single(p, "", f"not UTF-8 text: {exc}") from None
    return parse_csv(text, p)


def write_csv(path: str | os.PathLike[str], rows: Sequence[Row]) -> None:
    """Write the rows as CSV atomically (a reader never sees a half-written file)."""
    write_text_atomic(path, format_csv(rows))
