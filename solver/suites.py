"""Benchmark suites: named lists of instances (a trace and a hardware preset) and memory budgets.

A suite file (TOML or JSON, ``format = "tierplan.suite/1"``; see
``instances/README.md``) lists instances, each a committed trace file (relative
to the suite file), a generator recipe ``{kind, seed, options}``, or a trace
imported from a file that may live outside the repository
``{format, path, optional, options}``, with the hardware it runs on (a preset, a
hardware file, or one of the suite's own ``[hardware.NAME]`` tables) and the
memory budgets to test: fractions of the trace's no-offload peak and/or absolute
capacities. A ``[bench]`` table may give the methods and time limit that
``tierplan bench`` uses when the command line names none.

:func:`load_suite` checks the whole file (every problem at once, each naming the
JSON path); :func:`materialize` turns an instance into its trace document,
generating recipes deterministically and caching them under
``instances/generated/`` keyed by a hash of the recipe, the hardware file and
the generator version, and running the importer of an import exactly as
``tierplan import`` does. An optional import whose file is absent is not an
error: the instance's :attr:`Instance.skip_reason` says why it is skipped.

Examples
--------
>>> suite = load_suite("tiny")
>>> inst = suite.instances[0]
>>> doc = materialize(inst, cache_dir=False)
>>> doc["format"]
'tierplan.trace/1'
>>> Budget(fraction=0.5).capacities(no_offload_peak=1001, compute_tier="HBM")
{'HBM': 501}
>>> ext = load_suite("external")
>>> ext.bench.methods, ext.instances[0].hardware_path is None
(('auto',), True)
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgspec

from solver.errors import InputError, Problems
from solver.fileio import read_bytes, read_document, write_bytes_atomic
from solver.formats import hardware_from_document, load_hardware
from solver.model import HARDWARE_FORMAT, Hardware
from solver.units import UnitError, format_bytes, parse_size, parse_time
from solver.workloads import GENERATOR_VERSION, generate, parse_kind_options
from solver.workloads.options import Where
from solver.workloads.presets import hardware_preset_path, instances_dir

SUITE_FORMAT = "tierplan.suite/1"


def suites_dir() -> Path:
    """Folder holding the suite files."""
    return instances_dir() / "suites"


def default_cache_dir() -> Path:
    """Where generated suite traces are cached (``$TIERPLAN_CACHE`` overrides; git-ignored)."""
    env = os.environ.get("TIERPLAN_CACHE")
    return Path(env) if env else instances_dir() / "generated"


class _Table(tuple):  # type: ignore[type-arg]
    """A frozen table: ``(key, value)`` pairs, marked so that it thaws back to a dict (and an array
    of pairs, or an empty array, stays an array)."""

    __slots__ = ()


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _Table((str(k), _freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True, slots=True)
class Budget:
    """One memory budget: a fraction of the no-offload peak or an absolute compute-tier capacity,
    optionally with capacities for other tiers.

    Examples
    --------
    >>> Budget(capacity=2**30, tiers=(("DDR", 2**33),)).label
    '1.00GiB+DDR=8.00GiB'
    """

    fraction: float | None = None
    capacity: int | None = None
    tiers: tuple[tuple[str, int], ...] = ()

    @property
    def label(self) -> str:
        """Short text for tables (``0.5``, ``16.00GiB``)."""
        head = f"{self.fraction:g}" if self.fraction is not None else format_bytes(self.capacity or 0)
        extra = "".join(f"+{t}={format_bytes(c)}" for t, c in self.tiers)
        return (head + extra).replace(" ", "")

    def capacities(self, no_offload_peak: int, compute_tier: str) -> dict[str, int]:
        """Capacity overrides this budget sets: the compute tier's (a fraction is
        ``ceil(fraction * peak)``, computed exactly on the decimal fraction), then other tiers."""
        out: dict[str, int] = {}
        if self.fraction is not None:
            out[compute_tier] = math.ceil(Fraction(repr(self.fraction)) * no_offload_peak)
        elif self.capacity is not None:
            out[compute_tier] = self.capacity
        out.update(dict(self.tiers))
        return out


@dataclass(frozen=True, slots=True)
class Recipe:
    """A generator call: kind, seed and options (deep-frozen).

    Examples
    --------
    >>> Recipe("chain", 1, (("layers", 4),)).options_dict()
    {'layers': 4}
    """

    kind: str
    seed: int
    options: tuple[tuple[str, Any], ...] = ()

    def options_dict(self) -> dict[str, Any]:
        """The options as a plain dict (nested tables and arrays thawed)."""
        return {k: _thaw(v) for k, v in self.options}


def _thaw(value: Any) -> Any:
    """Undo :func:`_freeze`: tables become dicts, other tuples lists.

    Examples
    --------
    >>> _thaw(_freeze({"a": [], "b": [["x", 1]], "c": {"d": 2}}))
    {'a': [], 'b': [['x', 1]], 'c': {'d': 2}}
    """
    if isinstance(value, _Table):
        return {k: _thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class TraceImport:
    """A trace imported from a file by a registered importer (``tierplan import FORMAT``).

    Attributes
    ----------
    format : str
        The import format (``networkx``, ``onnx``, ``pytorch-et``, ``torch``).
    path : Path
        The source file, resolved against the suite file's folder (normalized).
    spec : str
        The path as the suite file writes it (for messages).
    options : tuple of (key, value)
        The importer's keyword arguments (deep-frozen), plus ``name`` and ``initial_tier``
        (``tierplan import``'s ``--name`` and ``--initial-tier``).
    optional : bool
        When true, an absent file makes the instance skipped rather than an error.
    where : str
        ``suite file: instances[i].import``, for messages.

    Examples
    --------
    >>> t = TraceImport("networkx", Path("/nowhere/g.json"), "g.json", (("time_unit", 1e-6),), True)
    >>> t.options_dict(), t.available
    ({'time_unit': 1e-06}, False)
    """

    format: str
    path: Path
    spec: str
    options: tuple[tuple[str, Any], ...] = ()
    optional: bool = False
    where: str = ""

    def options_dict(self) -> dict[str, Any]:
        """The options as a plain dict (lists thawed)."""
        return {k: _thaw(v) for k, v in self.options}

    @property
    def available(self) -> bool:
        """Whether the source file exists now."""
        return self.path.is_file()


@dataclass(frozen=True, slots=True)
class Instance:
    """One instance of a suite.

    Attributes
    ----------
    name : str
        Unique within the suite.
    hardware : str
        Preset name, path, or the name of one of the suite's ``[hardware.NAME]`` tables, as
        written in the suite file.
    hardware_path : Path or None
        The resolved hardware file; None for hardware defined in the suite file (see
        :func:`hardware_source` and :func:`load_instance_hardware`, which handle both).
    budgets : tuple of Budget
        The memory budgets to test.
    trace : Path or None
        A committed trace file, or
    recipe : Recipe or None
        a generator recipe, or
    imported : TraceImport or None
        a trace imported from a file (exactly one of the three is set).
    suite : str
        Name of the suite it belongs to.
    description : str
        What it models and why it is in the suite.
    hardware_document : str or None
        The hardware description defined in the suite file (a ``tierplan.hardware/1``
        document as canonical JSON text), when ``hardware_path`` is None.

    Examples
    --------
    >>> inst = load_suite("tiny").instance("random-30")
    >>> inst.recipe.kind, inst.hardware_path.name, inst.skip_reason
    ('random', 'laptop-sized.toml', '')
    """

    name: str
    hardware: str
    hardware_path: Path | None
    budgets: tuple[Budget, ...]
    trace: Path | None = None
    recipe: Recipe | None = None
    suite: str = ""
    description: str = ""
    imported: TraceImport | None = None
    hardware_document: str | None = None

    @property
    def skip_reason(self) -> str:
        """Why the instance cannot run here ("" when it can): an optional import whose file is
        absent (checked now, not when the suite was loaded)."""
        imp = self.imported
        if imp is None or not imp.optional or imp.available:
            return ""
        return f"optional trace file not found: {imp.path} ({imp.where or 'suite file: import'}.path = {imp.spec!r})"


@dataclass(frozen=True, slots=True)
class BenchDefaults:
    """What ``tierplan bench`` runs on a suite when the command line names nothing (the suite's
    ``[bench]`` table).

    Attributes
    ----------
    methods : tuple of str
        Method specs as ``--methods`` takes them (``auto``, ``LABEL=SPEC``, ``module:function``);
        empty: the bench's own default.
    time_limit : float or None
        Seconds per run; None: the bench's own default.

    Examples
    --------
    >>> BenchDefaults(("auto",), 300.0).methods
    ('auto',)
    """

    methods: tuple[str, ...] = ()
    time_limit: float | None = None


@dataclass(frozen=True, slots=True)
class Suite:
    """A benchmark suite.

    Examples
    --------
    >>> s = load_suite("ci")
    >>> s.instance(s.instances[0].name) is s.instances[0]
    True
    """

    name: str
    path: Path
    instances: tuple[Instance, ...]
    description: str = ""
    budgets: tuple[Budget, ...] = field(default=())
    bench: BenchDefaults = field(default_factory=BenchDefaults)

    def instance(self, name: str) -> Instance:
        """The instance called ``name``.

        Raises
        ------
        InputError
            When there is none; the message lists the names.
        """
        for inst in self.instances:
            if inst.name == name:
                return inst
        raise InputError.single(str(self.path), "instances", f"no instance {name!r}; instances: "
                                + ", ".join(i.name for i in self.instances))


def list_suites() -> list[str]:
    """Names of the suites in ``instances/suites/``.

    Examples
    --------
    >>> {"tiny", "small", "medium", "large", "ci"} <= set(list_suites())
    True
    """
    folder = suites_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.iterdir() if p.suffix in (".toml", ".json"))


def _suite_path(path_or_name: str | os.PathLike[str]) -> Path:
    text = os.fspath(path_or_name)
    p = Path(text)
    if p.is_file():
        return p
    if os.sep in text or "/" in text or p.suffix in (".toml", ".json", ".gz"):
        raise InputError.single(text, "", "suite file not found")
    for suffix in (".toml", ".json"):
        q = suites_dir() / f"{text}{suffix}"
        if q.is_file():
            return q
    raise InputError.single("suite", "", f"unknown suite {text!r}; suites: {', '.join(list_suites()) or 'none'}")


def _parse_budget(raw: Any, path: str, problems: Problems) -> Budget | None:
    if isinstance(raw, bool):
        problems.add(path, f"expected a fraction, a size or a table, got {raw!r}")
        return None
    if isinstance(raw, (int, float)):
        if not 0 < raw or not math.isfinite(raw):
            problems.add(path, f"a fraction of the no-offload peak must be > 0, got {raw!r}")
            return None
        return Budget(fraction=float(raw))
    if isinstance(raw, str):
        try:
            cap = parse_size(raw)
        except UnitError as exc:
            problems.add(path, str(exc))
            return None
        if cap <= 0:
            problems.add(path, f"a capacity must be > 0, got {raw!r}")
            return None
        return Budget(capacity=cap)
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"fraction", "capacity", "tiers"}
        if unknown:
            problems.add(path, f"unknown keys {', '.join(sorted(unknown))}; use fraction or capacity, and tiers")
            return None
        if ("fraction" in raw) == ("capacity" in raw):
            problems.add(path, "give exactly one of fraction and capacity")
            return None
        head = _parse_budget(raw.get("fraction", raw.get("capacity")),
                             f"{path}.{'fraction' if 'fraction' in raw else 'capacity'}", problems)
        if head is None:
            return None
        if "fraction" in raw and head.fraction is None or "capacity" in raw and head.capacity is None:
            problems.add(path, "fraction must be a number and capacity a size with a unit")
            return None
        tiers: list[tuple[str, int]] = []
        raw_tiers = raw.get("tiers", {})
        if not isinstance(raw_tiers, Mapping):
            problems.add(f"{path}.tiers", "expected a table of tier = size")
            return None
        for tier, size in raw_tiers.items():
            try:
                cap = parse_size(size)
            except UnitError as exc:
                problems.add(f"{path}.tiers.{tier}", str(exc))
                continue
            if cap < 0:
                problems.add(f"{path}.tiers.{tier}", f"must be >= 0, got {size!r}")
                continue
            tiers.append((str(tier), cap))
        return Budget(head.fraction, head.capacity, tuple(tiers))
    problems.add(path, f"expected a fraction, a size or a table, got {type(raw).__name__}")
    return None


def _parse_budgets(raw: Any, path: str, problems: Problems) -> tuple[Budget, ...] | None:
    if not isinstance(raw, list):
        problems.add(path, "expected a list of budgets")
        return None
    out = [_parse_budget(b, f"{path}[{i}]", problems) for i, b in enumerate(raw)]
    return tuple(b for b in out if b is not None)


def _hardware(raw: Any, base: Path, path: str, problems: Problems, defined: Mapping[str, str]
              ) -> tuple[Path | None, str | None] | None:
    """(file, None) for a preset or hardware file, (None, document) for one of the suite's own
    ``[hardware.NAME]`` tables, None (a problem recorded) otherwise."""
    if not isinstance(raw, str) or not raw:
        problems.add(path, "missing or not a preset name / file path / name of a [hardware.NAME] table")
        return None
    if raw in defined:
        return None, defined[raw]
    if "/" in raw or os.sep in raw or raw.endswith((".toml", ".json", ".gz")):
        p = (base / raw)
        if not p.is_file():
            problems.add(path, f"hardware file {raw!r} not found (relative to the suite file)")
            return None
        return p, None
    try:
        return hardware_preset_path(raw), None
    except InputError as exc:
        extra = f"; the suite defines {', '.join(sorted(defined))}" if defined else ""
        problems.add(path, exc.problems[0].message + extra)
        return None


def _parse_hardware_tables(raw: Any, file: str, problems: Problems) -> dict[str, str]:
    """The suite's ``[hardware.NAME]`` tables, each checked as a ``tierplan.hardware/1`` document
    (``format`` and ``name`` may be left out)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add("hardware", "expected a table of hardware descriptions, [hardware.NAME]")
        return {}
    out: dict[str, str] = {}
    for hname, body in raw.items():
        p = f"hardware.{hname}"
        if not isinstance(body, Mapping):
            problems.add(p, "expected a table: a tierplan.hardware/1 description (compute_tier, tiers, links)")
            continue
        doc = {"format": HARDWARE_FORMAT, "name": str(hname), **body}
        try:
            hardware_from_document(doc, file)
        except InputError as exc:
            for prob in exc.problems:
                problems.add(f"{p}.{prob.path}" if prob.path else p, prob.message)
            continue
        out[str(hname)] = msgspec.json.encode(doc, order="sorted").decode()
    return out


_METHOD_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _parse_bench(raw: Any, problems: Problems) -> BenchDefaults:
    """The suite's ``[bench]`` table (``methods``, ``time_limit``)."""
    if raw is None:
        return BenchDefaults()
    if not isinstance(raw, Mapping):
        problems.add("bench", "expected a table { methods = [...], time_limit = S }")
        return BenchDefaults()
    unknown = set(raw) - {"methods", "time_limit"}
    if unknown:
        problems.add("bench", f"unknown keys {', '.join(sorted(unknown))}; the bench table has methods and "
                     "time_limit")
    methods: list[str] = []
    raw_methods = raw.get("methods", [])
    if not isinstance(raw_methods, list) or not raw_methods:
        problems.add("bench.methods", "expected a non-empty list of method names, e.g. [\"auto\"]")
        raw_methods = []
    from solver.methods import method_names
    known = method_names()
    for i, m in enumerate(raw_methods):
        if not isinstance(m, str) or not m.strip():
            problems.add(f"bench.methods[{i}]", f"expected a method name, got {m!r}")
            continue
        label, sep, planner = m.partition("=")
        planner = (planner if sep else label).strip()
        if ":" in planner:
            if not _METHOD_PATH.match(planner):
                problems.add(f"bench.methods[{i}]", f"expected module:function, got {planner!r}")
                continue
        elif planner not in known:
            problems.add(f"bench.methods[{i}]", f"unknown method {planner!r}; registered methods: "
                         f"{', '.join(known)}")
            continue
        methods.append(m.strip())
    limit = raw.get("time_limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))
                              or not math.isfinite(limit) or limit <= 0):
        problems.add("bench.time_limit", f"expected seconds > 0, got {limit!r}")
        limit = None
    return BenchDefaults(tuple(methods), None if limit is None else float(limit))


#: Options every import takes besides the importer's own: ``tierplan import``'s ``--name`` and
#: ``--initial-tier``.
IMPORT_COMMON_OPTIONS = ("name", "initial_tier")


def _import_option(kind: str, value: Any, base: Path, path: str, problems: Problems) -> tuple[bool, Any]:
    """Check and convert one importer option value of type ``kind`` (a registry option type)."""
    if kind == "bool":
        if isinstance(value, bool):
            return True, value
        problems.add(path, f"expected true or false, got {value!r}")
    elif kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return True, value
        problems.add(path, f"expected an integer, got {value!r}")
    elif kind == "time":
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise UnitError(f"expected seconds or a time such as '1us', got {value!r}")
            seconds = parse_time(value)
        except UnitError as exc:
            problems.add(path, str(exc))
        else:
            if seconds >= 0:
                return True, seconds
            problems.add(path, f"must be >= 0, got {value!r}")
    elif kind == "shapes":
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list) and items and all(isinstance(v, str) and v for v in items):
            return True, tuple(items)
        problems.add(path, f"expected a shape string or a list of them, got {value!r}")
    elif isinstance(value, str) and value:
        return True, str(Path(os.path.normpath(base / value))) if kind == "path" else value
    else:
        problems.add(path, f"expected a non-empty string, got {value!r}")
    return False, None


def _parse_import(raw: Any, base: Path, file: str, path: str, problems: Problems) -> TraceImport | None:
    """An instance's ``import`` table ``{format, path, optional, options}``."""
    from solver.importers.registry import UnknownFormat, get_importer, importer_names

    if not isinstance(raw, Mapping):
        problems.add(path, "expected a table { format, path, optional, options }")
        return None
    unknown = set(raw) - {"format", "path", "optional", "options"}
    if unknown:
        problems.add(path, f"unknown keys {', '.join(sorted(unknown))}; an import has format, path, optional "
                     "and options")
    ok = True
    spec = None
    fmt = raw.get("format")
    if not isinstance(fmt, str):
        problems.add(f"{path}.format", f"missing or not a string; formats: {', '.join(importer_names())}")
        ok = False
    else:
        try:
            spec = get_importer(fmt)
        except UnknownFormat as exc:
            problems.add(f"{path}.format", str(exc))
            ok = False
    src = raw.get("path")
    if not isinstance(src, str) or not src:
        problems.add(f"{path}.path", "missing or not a file path (relative to the suite file)")
        ok = False
    optional = raw.get("optional", False)
    if not isinstance(optional, bool):
        problems.add(f"{path}.optional", f"expected true or false, got {optional!r}")
        ok = False
    options: list[tuple[str, Any]] = []
    raw_options = raw.get("options", {})
    if not isinstance(raw_options, Mapping):
        problems.add(f"{path}.options", "expected a table of the importer's options")
        ok = False
    elif spec is not None:
        kinds = {o.dest: o.type for o in spec.options}
        kinds.update({k: "str" for k in IMPORT_COMMON_OPTIONS})
        for key, value in raw_options.items():
            where = f"{path}.options.{key}"
            if key not in kinds:
                problems.add(where, f"unknown option of the {spec.name} importer; options: {', '.join(kinds)}")
                ok = False
                continue
            good, converted = _import_option(kinds[key], value, base, where, problems)
            ok = ok and good
            options.append((str(key), converted))
    if not isinstance(src, str) or not src:
        return None
    resolved = Path(os.path.normpath(base / src))
    if optional is False and not resolved.is_file():
        problems.add(f"{path}.path", f"trace file {src!r} not found (relative to the suite file); add "
                     "optional = true to skip the instance where the file is absent")
        return None
    if not ok or not isinstance(fmt, str):
        return None
    return TraceImport(fmt, resolved, src, tuple(options), optional is True, f"{file}: {path}")


def load_suite(path_or_name: str | os.PathLike[str]) -> Suite:
    """Read and check a suite file (a path, or the name of a suite in ``instances/suites/``).

    An optional import whose file is absent is no problem: the instance loads, and its
    :attr:`Instance.skip_reason` says why it cannot run; everything else about it is still checked.

    Raises
    ------
    InputError
        Unknown suite, or any problem in the file (all at once, with JSON paths).

    Examples
    --------
    >>> s = load_suite("tiny")
    >>> all(i.recipe or i.trace for i in s.instances)
    True
    >>> inst = load_suite("external").instances[0]
    >>> inst.imported.format, inst.imported.optional, inst.budgets[0].label
    ('networkx', True, '0.9')
    """
    path = _suite_path(path_or_name)
    file = str(path)
    doc = read_document(path)
    problems = Problems(file)
    if not isinstance(doc, Mapping):
        problems.add("", f"expected a table with format = \"{SUITE_FORMAT}\"")
        problems.raise_if_any()
    fmt = doc.get("format")
    if fmt != SUITE_FORMAT:
        problems.add("format", f"{'missing' if fmt is None else f'unknown format {fmt!r}'}; "
                     f"expected \"{SUITE_FORMAT}\"")
        problems.raise_if_any()
    unknown_top = set(doc) - {"format", "name", "description", "budgets", "instances", "hardware", "bench"}
    if unknown_top:
        problems.add("", f"unknown keys {', '.join(sorted(unknown_top))}")
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name:
        problems.add("name", "expected a non-empty string")
        name = path.stem
    description = doc.get("description", "")
    if not isinstance(description, str):
        problems.add("description", "expected a string")
        description = ""
    defaults = _parse_budgets(doc.get("budgets", [1.0]), "budgets", problems) or ()
    defined = _parse_hardware_tables(doc.get("hardware"), file, problems)
    bench = _parse_bench(doc.get("bench"), problems)
    raw_instances = doc.get("instances")
    if not isinstance(raw_instances, list) or not raw_instances:
        problems.add("instances", "expected a non-empty list of instances")
        raw_instances = []
    instances: list[Instance] = []
    seen: set[str] = set()
    base = path.parent
    for i, raw in enumerate(raw_instances):
        p = f"instances[{i}]"
        if not isinstance(raw, Mapping):
            problems.add(p, "expected a table")
            continue
        unknown = set(raw) - {"name", "hardware", "budgets", "trace", "recipe", "import", "description"}
        if unknown:
            problems.add(p, f"unknown keys {', '.join(sorted(unknown))}")
        iname = raw.get("name")
        if not isinstance(iname, str) or not iname:
            problems.add(f"{p}.name", "missing or not a non-empty string")
            continue
        if iname in seen:
            problems.add(f"{p}.name", f"duplicate instance name {iname!r}")
        seen.add(iname)
        hw = _hardware(raw.get("hardware"), base, f"{p}.hardware", problems, defined)
        budgets = _parse_budgets(raw["budgets"], f"{p}.budgets", problems) if "budgets" in raw else defaults
        if not budgets:
            problems.add(f"{p}.budgets", "no budgets: give the instance or the suite a budgets list")
        trace = recipe = imported = None
        given = [k for k in ("trace", "recipe", "import") if k in raw]
        if len(given) != 1:
            problems.add(p, "give exactly one of trace (a committed file), recipe (a generator call) and import "
                         "(a file read by an importer)" + (f"; got {', '.join(given)}" if given else ""))
        elif "trace" in raw:
            t = raw["trace"]
            if not isinstance(t, str) or not (base / t).is_file():
                problems.add(f"{p}.trace", f"trace file {t!r} not found (relative to the suite file)")
            else:
                trace = base / t
        elif "recipe" in raw:
            recipe = _parse_recipe(raw["recipe"], file, f"{p}.recipe", problems)
        else:
            imported = _parse_import(raw["import"], base, file, f"{p}.import", problems)
        desc = raw.get("description", "")
        if not isinstance(desc, str):
            problems.add(f"{p}.description", "expected a string")
            desc = ""
        if hw is not None and budgets:
            instances.append(Instance(iname, raw["hardware"], hw[0], budgets, trace, recipe, name, desc,
                                      imported, hw[1]))
    problems.raise_if_any()
    return Suite(name, path, tuple(instances), description, defaults, bench)


def _parse_recipe(raw: Any, file: str, path: str, problems: Problems) -> Recipe | None:
    if not isinstance(raw, Mapping):
        problems.add(path, "expected a table {kind, seed, options}")
        return None
    unknown = set(raw) - {"kind", "seed", "options"}
    if unknown:
        problems.add(path, f"unknown keys {', '.join(sorted(unknown))}; a recipe has kind, seed and options")
    kind = raw.get("kind")
    seed = raw.get("seed", 0)
    options = raw.get("options", {})
    ok = True
    if not isinstance(kind, str):
        problems.add(f"{path}.kind", "missing or not a string")
        ok = False
    if not isinstance(options, Mapping):
        problems.add(f"{path}.options", "expected a table")
        ok = False
    if ok and isinstance(kind, str):
        try:
            parse_kind_options(kind, options, Where(file, f"{path}.options"), check_model=True)
        except InputError as exc:
            for prob in exc.problems:
                where = prob.path.replace(f"{path}.options.kind", f"{path}.kind")
                problems.add(where, prob.message)
            ok = False
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        problems.add(f"{path}.seed", f"expected an integer >= 0, got {seed!r}")
        ok = False
    return Recipe(kind, seed, _freeze(options)) if ok and isinstance(kind, str) else None


def hardware_source(instance: Instance) -> tuple[str, bytes]:
    """(file name, bytes) of the instance's hardware: the file's (un-gzipped), or, for hardware
    defined in the suite file, its ``tierplan.hardware/1`` document as JSON (``NAME.json``).

    Examples
    --------
    >>> hardware_source(load_suite("tiny").instance("random-30"))[0]
    'laptop-sized.toml'
    >>> name, data = hardware_source(load_suite("external").instances[0])
    >>> name, data[:12]
    ('compute-only.json', b'{"compute_ti')
    """
    if instance.hardware_path is not None:
        return instance.hardware_path.name, read_bytes(instance.hardware_path)
    assert instance.hardware_document is not None, f"instance {instance.name!r} has no hardware"
    doc = msgspec.json.decode(instance.hardware_document)
    return f"{doc.get('name') or instance.hardware}.json", instance.hardware_document.encode()


def _hardware_doc_or_path(instance: Instance) -> Path | dict[str, Any]:
    if instance.hardware_path is not None:
        return instance.hardware_path
    assert instance.hardware_document is not None, f"instance {instance.name!r} has no hardware"
    return dict(msgspec.json.decode(instance.hardware_document))


def load_instance_hardware(instance: Instance) -> Hardware:
    """The instance's hardware description (from its file, or from the suite file's table).

    Examples
    --------
    >>> hw = load_instance_hardware(load_suite("external").instances[0])
    >>> hw.compute_tier, [t.name for t in hw.tiers], hw.links
    ('HBM', ['HBM'], ())
    """
    src = _hardware_doc_or_path(instance)
    if isinstance(src, Path):
        return load_hardware(src)
    return hardware_from_document(src, f"suite {instance.suite}: hardware.{instance.hardware}")


def cache_key(instance: Instance) -> str:
    """Hash of everything a recipe's trace depends on (recipe, hardware description, generator version).

    Examples
    --------
    >>> inst = load_suite("tiny").instance("chain-12-skip3")
    >>> len(cache_key(inst))
    16
    """
    if instance.recipe is None:
        raise ValueError(f"instance {instance.name!r} has no recipe")
    r = instance.recipe
    payload = msgspec.json.encode({"kind": r.kind, "seed": r.seed, "options": r.options_dict(),
                                   "generator_version": GENERATOR_VERSION,
                                   "hardware": hashlib.sha256(hardware_source(instance)[1]).hexdigest()},
                                  order="sorted")
    return hashlib.sha256(payload).hexdigest()[:16]


def _generate(instance: Instance) -> dict[str, Any]:
    r = instance.recipe
    assert r is not None
    options = r.options_dict()
    options.setdefault("name", instance.name)
    return generate(r.kind, options, seed=r.seed, hardware=_hardware_doc_or_path(instance),
                    where=Where(f"suite {instance.suite}", f"{instance.name}.recipe.options"))


def import_trace(source: TraceImport) -> dict[str, Any]:
    """Run an import: the same trace document as ``tierplan import FORMAT PATH [options]``.

    Parameters
    ----------
    source : TraceImport
        An instance's import (:attr:`Instance.imported`).

    Returns
    -------
    dict
        A ``tierplan.trace/1`` document (its ``meta.source`` names ``source.path``).

    Raises
    ------
    InputError
        An absent or unreadable file, or input the importer refuses.

    Examples
    --------
    >>> import json, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "g.json")
    >>> _ = open(p, "w").write(json.dumps({"nodes": [{"id": 0, "cost_cpu": 2, "cost_ram": 8}], "links": []}))
    >>> doc = import_trace(TraceImport("networkx", Path(p), "g.json", (("time_unit", 1e-3),)))
    >>> doc["ops"][0]["duration"], doc["name"]
    (0.002, 'g')
    """
    from solver.importers.registry import get_importer
    from solver.importers.result import with_initial_tier

    options = source.options_dict()
    initial = options.pop("initial_tier", None)
    if not source.path.is_file():
        raise InputError.single(source.where or str(source.path), "path",
                                f"trace file {source.spec!r} not found (looked for {source.path})")
    try:
        result = get_importer(source.format).load()(str(source.path), **options)   # as tierplan import does
    except ImportError as exc:
        raise InputError.single(str(source.path), "", str(exc)) from None
    doc = result.document
    return with_initial_tier(doc, initial) if initial else doc


def _unavailable(instance: Instance) -> InputError:
    imp = instance.imported
    assert imp is not None
    return InputError.single(imp.where or instance.suite, "path", f"instance {instance.name!r} is skipped: "
                             + instance.skip_reason)


def trace_path(instance: Instance, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A trace file for the instance: the committed one, or the cached generated or imported one
    (generated, or imported, and written first if missing).

    An imported trace is cached under a hash of its content, so the file is always what the
    importer makes of the source now.

    Raises
    ------
    InputError
        For a skipped instance (:attr:`Instance.skip_reason`), or a source the importer refuses.

    Examples
    --------
    >>> import tempfile
    >>> p = trace_path(load_suite("tiny").instance("random-30"), tempfile.mkdtemp())
    >>> p.suffix
    '.json'
    """
    if instance.trace is not None:
        return instance.trace
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if instance.imported is not None:
        data = msgspec.json.encode(materialize(instance, cache_dir=False)) + b"\n"
        path = folder / f"{instance.suite}--{instance.name}--{hashlib.sha256(data).hexdigest()[:16]}.json"
        if not path.is_file():
            write_bytes_atomic(path, data)
        return path
    path = folder / f"{instance.suite}--{instance.name}--{cache_key(instance)}.json"
    if not path.is_file():
        write_bytes_atomic(path, msgspec.json.encode(_generate(instance)) + b"\n")
    return path


def materialize(instance: Instance, cache_dir: str | os.PathLike[str] | None | bool = None
                ) -> dict[str, Any]:
    """The instance's trace document.

    Parameters
    ----------
    instance : Instance
        From :func:`load_suite`.
    cache_dir : path, None or False
        Cache folder for generated traces (default :func:`default_cache_dir`);
        ``False`` generates in memory without touching the disk. Imports always run in
        memory (they are cheap and the source may change).

    Returns
    -------
    dict
        A ``tierplan.trace/1`` document; the same for the same recipe, hardware file
        and generator version (a cache hit returns what a fresh generation would); for an
        import, exactly what ``tierplan import`` writes for the same file and options.

    Raises
    ------
    InputError
        For a skipped instance (:attr:`Instance.skip_reason`), or a source the importer refuses.

    Examples
    --------
    >>> inst = load_suite("tiny").instance("moe-tiny-1layer")
    >>> materialize(inst, cache_dir=False) == materialize(inst, cache_dir=False)
    True
    """
    if instance.trace is not None:
        return read_document(instance.trace)
    if instance.imported is not None:
        if instance.skip_reason:
            raise _unavailable(instance)
        return import_trace(instance.imported)
    if cache_dir is False:
        return _generate(instance)
    path = trace_path(instance, None if cache_dir in (None, True) else cache_dir)   # type: ignore[arg-type]
    return read_document(path)
