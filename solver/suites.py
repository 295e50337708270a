"""Benchmark suites: named lists of instances (a trace and a hardware preset) and memory budgets.

A suite file (TOML or JSON, ``format = "tierplan.suite/1"``; see
``instances/README.md``) lists instances, each either a committed trace file
(relative to the suite file) or a generator recipe ``{kind, seed, options}``,
with the hardware preset it runs on and the memory budgets to test: fractions
of the trace's no-offload peak and/or absolute capacities.

:func:`load_suite` checks the whole file (every problem at once, each naming the
JSON path); :func:`materialize` turns an instance into its trace document,
generating recipes deterministically and caching them under
``instances/generated/`` keyed by a hash of the recipe, the hardware file and
the generator version.

Examples
--------
>>> suite = load_suite("tiny")
>>> inst = suite.instances[0]
>>> doc = materialize(inst, cache_dir=False)
>>> doc["format"]
'tierplan.trace/1'
>>> Budget(fraction=0.5).capacities(no_offload_peak=1001, compute_tier="HBM")
{'HBM': 501}
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgspec

from solver.errors import InputError, Problems
from solver.fileio import read_bytes, read_document, write_bytes_atomic
from solver.units import UnitError, format_bytes, parse_size
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


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple((str(k), _freeze(v)) for k, v in value.items())
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
        return _thaw(self.options)


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                                        for p in value):
        return {k: _thaw(v) for k, v in value}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Instance:
    """One instance of a suite.

    Attributes
    ----------
    name : str
        Unique within the suite.
    hardware : str
        Preset name or path, as written in the suite file.
    hardware_path : Path
        The resolved hardware file.
    budgets : tuple of Budget
        The memory budgets to test.
    trace : Path or None
        A committed trace file, or
    recipe : Recipe or None
        a generator recipe (exactly one of the two is set).
    suite : str
        Name of the suite it belongs to.
    description : str
        What it models and why it is in the suite.
    """

    name: str
    hardware: str
    hardware_path: Path
    budgets: tuple[Budget, ...]
    trace: Path | None = None
    recipe: Recipe | None = None
    suite: str = ""
    description: str = ""


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


def _hardware(raw: Any, base: Path, path: str, problems: Problems) -> Path | None:
    if not isinstance(raw, str) or not raw:
        problems.add(path, "missing or not a preset name / file path")
        return None
    if "/" in raw or os.sep in raw or raw.endswith((".toml", ".json", ".gz")):
        p = (base / raw)
        if not p.is_file():
            problems.add(path, f"hardware file {raw!r} not found (relative to the suite file)")
            return None
        return p
    try:
        return hardware_preset_path(raw)
    except InputError as exc:
        problems.add(path, exc.problems[0].message)
        return None


def load_suite(path_or_name: str | os.PathLike[str]) -> Suite:
    """Read and check a suite file (a path, or the name of a suite in ``instances/suites/``).

    Raises
    ------
    InputError
        Unknown suite, or any problem in the file (all at once, with JSON paths).

    Examples
    --------
    >>> s = load_suite("tiny")
    >>> all(i.recipe or i.trace for i in s.instances)
    True
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
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name:
        problems.add("name", "expected a non-empty string")
        name = path.stem
    description = doc.get("description", "")
    if not isinstance(description, str):
        problems.add("description", "expected a string")
        description = ""
    defaults = _parse_budgets(doc.get("budgets", [1.0]), "budgets", problems) or ()
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
        unknown = set(raw) - {"name", "hardware", "budgets", "trace", "recipe", "description"}
        if unknown:
            problems.add(p, f"unknown keys {', '.join(sorted(unknown))}")
        iname = raw.get("name")
        if not isinstance(iname, str) or not iname:
            problems.add(f"{p}.name", "missing or not a non-empty string")
            continue
        if iname in seen:
            problems.add(f"{p}.name", f"duplicate instance name {iname!r}")
        seen.add(iname)
        hw = _hardware(raw.get("hardware"), base, f"{p}.hardware", problems)
        budgets = _parse_budgets(raw["budgets"], f"{p}.budgets", problems) if "budgets" in raw else defaults
        if not budgets:
            problems.add(f"{p}.budgets", "no budgets: give the instance or the suite a budgets list")
        trace = recipe = None
        if ("trace" in raw) == ("recipe" in raw):
            problems.add(p, "give exactly one of trace (a committed file) and recipe (a generator call)")
        elif "trace" in raw:
            t = raw["trace"]
            if not isinstance(t, str) or not (base / t).is_file():
                problems.add(f"{p}.trace", f"trace file {t!r} not found (relative to the suite file)")
            else:
                trace = base / t
        else:
            recipe = _parse_recipe(raw["recipe"], file, f"{p}.recipe", problems)
        desc = raw.get("description", "")
        if not isinstance(desc, str):
            problems.add(f"{p}.description", "expected a string")
            desc = ""
        if hw is not None and budgets:
            instances.append(Instance(iname, raw["hardware"], hw, budgets, trace, recipe, name, desc))
    problems.raise_if_any()
    return Suite(name, path, tuple(instances), description, defaults)


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


def cache_key(instance: Instance) -> str:
    """Hash of everything a recipe's trace depends on (recipe, hardware file, generator version).

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
                                   "hardware": hashlib.sha256(read_bytes(instance.hardware_path)).hexdigest()},
                                  order="sorted")
    return hashlib.sha256(payload).hexdigest()[:16]


def _generate(instance: Instance) -> dict[str, Any]:
    r = instance.recipe
    assert r is not None
    options = r.options_dict()
    options.setdefault("name", instance.name)
    return generate(r.kind, options, seed=r.seed, hardware=instance.hardware_path,
                    where=Where(f"suite {instance.suite}", f"{instance.name}.recipe.options"))


def trace_path(instance: Instance, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A trace file for the instance: the committed one, or the cached generated one
    (generated and written first if missing).

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
        ``False`` generates in memory without touching the disk.

    Returns
    -------
    dict
        A ``tierplan.trace/1`` document; the same for the same recipe, hardware file
        and generator version (a cache hit returns what a fresh generation would).

    Examples
    --------
    >>> inst = load_suite("tiny").instance("moe-tiny-1layer")
    >>> materialize(inst, cache_dir=False) == materialize(inst, cache_dir=False)
    True
    """
    if instance.trace is not None:
        return read_document(instance.trace)
    if cache_dir is False:
        return _generate(instance)
    path = trace_path(instance, None if cache_dir in (None, True) else cache_dir)   # type: ignore[arg-type]
    return read_document(path)
