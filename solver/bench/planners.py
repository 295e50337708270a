"""Which planner a bench run uses: a registry method or a ``module:function`` path, with a label.

``--methods`` takes a comma-separated list of specs: ``greedy`` (a registered method, see
:mod:`solver.methods`), ``pkg.mod:func`` (any importable function with the planner signature
``plan(instance, options) -> PlanResult``, for custom planners), or ``LABEL=SPEC`` to name a run
in tables (``cpsat60=cpsat``, ``mine=mypkg.plan:plan``).

Examples
--------
>>> [(m.label, m.planner) for m in parse_methods("keep, fast=solver.heuristics.keep:plan")]
[('keep', 'keep'), ('fast', 'solver.heuristics.keep:plan')]
>>> load_planner("keep").__name__
'plan'
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from solver.errors import InputError
from solver.methods import Planner, UnknownMethod, get_method, method_names

_LABEL = re.compile(r"^[A-Za-z0-9_.+\-]+$")
_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A method as a bench run knows it.

    Attributes
    ----------
    label : str
        Its name in the CSV and the tables.
    planner : str
        A registry name or ``module:function``.

    Examples
    --------
    >>> MethodSpec("keep", "keep").is_path, MethodSpec("x", "a.b:c").is_path
    (False, True)
    """

    label: str
    planner: str

    @property
    def is_path(self) -> bool:
        """True for a ``module:function`` planner."""
        return ":" in self.planner


def parse_method(text: str, flag: str = "--methods") -> MethodSpec:
    """Parse one spec (``NAME``, ``module:function`` or ``LABEL=SPEC``) and check it exists.

    Raises
    ------
    InputError
        Unknown method (listing the registered ones), a malformed path, or a module or function
        that cannot be imported.

    Examples
    --------
    >>> parse_method("k=keep")
    MethodSpec(label='k', planner='keep')
    """
    text = text.strip()
    label, sep, planner = text.partition("=")
    if not sep:
        label, planner = text, text
    label, planner = label.strip(), planner.strip()
    if not label or not _LABEL.match(label.replace(":", "")):
        raise InputError.single(flag, text, "a method label may hold letters, digits and _ . + - :")
    if ":" in planner:
        if not _PATH.match(planner):
            raise InputError.single(flag, text, "expected module:function, e.g. mypkg.planners:plan")
    else:
        try:
            get_method(planner)
        except UnknownMethod:
            raise InputError.single(flag, text, f"unknown method {planner!r}; registered methods: "
                                    f"{', '.join(method_names())} (or give a custom planner as "
                                    "module:function)") from None
    spec = MethodSpec(label, planner)
    try:
        load_planner(spec.planner)
    except (ImportError, AttributeError) as exc:
        raise InputError.single(flag, text, f"cannot load planner {planner!r}: {exc}") from None
    return spec


def parse_methods(text: str, flag: str = "--methods") -> tuple[MethodSpec, ...]:
    """Parse a comma-separated list of specs (labels must be distinct).

    Examples
    --------
    >>> [m.label for m in parse_methods("keep,k2=keep")]
    ['keep', 'k2']
    """
    specs = [parse_method(part, flag) for part in text.split(",") if part.strip()]
    if not specs:
        raise InputError.single(flag, text, "no method given")
    seen: set[str] = set()
    for s in specs:
        if s.label in seen:
            raise InputError.single(flag, text, f"method label {s.label!r} given twice; name one LABEL=SPEC")
        seen.add(s.label)
    return tuple(specs)


def load_planner(planner: str) -> Planner:
    """Import the planner function of a registry name or ``module:function`` path.

    Raises
    ------
    UnknownMethod, ImportError, AttributeError
        When it does not exist.

    Examples
    --------
    >>> callable(load_planner("solver.heuristics.keep:plan"))
    True
    """
    if ":" in planner:
        module, _, func = planner.partition(":")
        fn = getattr(importlib.import_module(module), func)
        if not callable(fn):
            raise AttributeError(f"{planner} is not callable")
        return fn
    return get_method(planner).load()
