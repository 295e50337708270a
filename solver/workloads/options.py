"""Typed generator options: one frozen dataclass per workload kind, read from a mapping or the CLI.

Each option is a dataclass field declared with :func:`opt`, whose metadata holds
its help text, its unit (sizes and times accept unit strings such as ``"64 MiB"``
or ``"2 ms"``), a range check and the allowed choices. :func:`parse_options`
builds an options object from a plain mapping (a suite recipe or a Python
call), collecting every problem into one :class:`~solver.errors.InputError`;
:func:`add_arguments` and :func:`options_from_args` derive the command-line flags
from the same fields, so the CLI and the Python API cannot drift apart.

Examples
--------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo:
...     n: int = opt(4, "how many", check="positive")
...     size: int = opt(1024, "bytes", unit="size")
>>> parse_options(Demo, {"size": "2 KiB"})
Demo(n=4, size=2048)
>>> parse_options(Demo, {"n": -1})
Traceback (most recent call last):
...
solver.errors.InputError: options: n: must be > 0, got -1
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from solver.errors import InputError, InputProblem
from solver.units import UnitError, parse_size, parse_time

_CHECKS = {
    "positive": (lambda v: v > 0, "must be > 0"),
    "nonneg": (lambda v: v >= 0, "must be >= 0"),
    "fraction": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "unit": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
}


def opt(default: Any, help: str, *, unit: str | None = None, check: str | None = None,
        choices: tuple[str, ...] | None = None) -> Any:
    """Declare an option field.

    Parameters
    ----------
    default : Any
        Default value (``None`` for "not given").
    help : str
        One line for ``--help``.
    unit : {"size", "time"}, optional
        Accept unit strings (``"64 MiB"``, ``"2 ms"``).
    check : {"positive", "nonneg", "fraction", "unit"}, optional
        Range check applied to numbers.
    choices : tuple of str, optional
        Allowed string values.

    Examples
    --------
    >>> f = opt(1, "x", check="positive")
    >>> f.metadata["check"]
    'positive'
    """
    return dataclasses.field(default=default, metadata={"help": help, "unit": unit, "check": check,
                                                        "choices": choices})


@dataclass(frozen=True, slots=True)
class Where:
    """Where options come from, for error messages.

    ``cli=True`` names problems after the flag (``--kv-heads``); otherwise after the
    file and the JSON path (``suite.toml: instances[2].recipe.options.hidden``).

    Examples
    --------
    >>> Where("s.toml", "instances[0].recipe.options").at("hidden")
    ('s.toml', 'instances[0].recipe.options.hidden')
    >>> Where(cli=True).at("kv_heads")
    ('--kv-heads', '')
    """

    file: str = "options"
    prefix: str = ""
    cli: bool = False

    def at(self, name: str) -> tuple[str, str]:
        """(file, path) naming option ``name``."""
        if self.cli:
            return f"--{name.replace('_', '-')}", ""
        return self.file, f"{self.prefix}.{name}" if self.prefix else name

    def problem(self, name: str, message: str) -> InputProblem:
        """An :class:`InputProblem` about option ``name``."""
        return InputProblem(*self.at(name), message)

    def error(self, name: str, message: str) -> InputError:
        """An :class:`InputError` holding one problem about option ``name``."""
        return InputError([self.problem(name, message)])


def _base_types(tp: Any) -> tuple[set[type], bool]:
    """The concrete types of an annotation and whether ``None`` is allowed."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    allowed = {a for a in args if a is not type(None)}
    return allowed, type(None) in args


def _convert(value: Any, tp: Any, meta: Mapping[str, Any], cli: bool) -> Any:
    """Convert one value to its field's type; raises ValueError with a message."""
    allowed, nullable = _base_types(tp)
    if value is None:
        if nullable:
            return None
        raise ValueError("may not be empty")
    unit = meta.get("unit")
    if bool in allowed:
        if isinstance(value, bool):
            return value
        if cli and isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"expected true or false, got {value!r}")
    if int in allowed:
        if isinstance(value, str):
            text = value.strip()
            try:
                return parse_size(text) if unit == "size" else int(text)
            except (UnitError, ValueError):
                hint = " or a size such as \"64 MiB\"" if unit == "size" else ""
                raise ValueError(f"expected an integer{hint}, got {value!r}") from None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"expected an integer, got {value!r}")
    if float in allowed:
        if isinstance(value, str):
            try:
                out = parse_time(value) if unit == "time" else float(value)
            except (UnitError, ValueError):
                hint = " or a time such as \"2 ms\"" if unit == "time" else ""
                raise ValueError(f"expected a number{hint}, got {value!r}") from None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out = float(value)
        else:
            raise ValueError(f"expected a number, got {value!r}")
        if not math.isfinite(out):
            raise ValueError(f"expected a finite number, got {value!r}")
        return out
    if str in allowed:
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a non-empty string, got {value!r}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ValueError(f"unknown value {value!r}; choose one of {', '.join(choices)}")
        return value
    raise TypeError(f"unsupported option type {tp!r}")  # pragma: no cover - programming error


def parse_options(cls: type, values: Mapping[str, Any] | None, where: Where = Where()) -> Any:
    """Build an options dataclass from a mapping, checking names, types and ranges.

    Raises
    ------
    InputError
        One problem per unknown name or bad value (unknown names list the valid ones).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class D:
    ...     x: float = opt(1.0, "x", check="fraction")
    >>> parse_options(D, {"y": 1})
    Traceback (most recent call last):
    ...
    solver.errors.InputError: options: y: unknown option; valid options: x
    """
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    problems: list[InputProblem] = []
    for name in values:
        if name not in fields:
            problems.append(where.problem(name, f"unknown option; valid options: {', '.join(fields)}"))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in values:
            continue
        try:
            v = _convert(values[name], hints[name], f.metadata, where.cli)
        except ValueError as exc:
            problems.append(where.problem(name, str(exc)))
            continue
        check = f.metadata.get("check")
        if check and isinstance(v, (int, float)) and not isinstance(v, bool):
            ok, msg = _CHECKS[check]
            if not ok(v):
                problems.append(where.problem(name, f"{msg}, got {values[name]!r}"))
                continue
        kwargs[name] = v
    if problems:
        raise InputError(problems)
    return cls(**kwargs)


def options_to_dict(options: Any) -> dict[str, Any]:
    """Options as a plain dict (for a trace's ``meta``).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class D:
    ...     x: int = opt(1, "x")
    >>> options_to_dict(D())
    {'x': 1}
    """
    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one ``--flag`` per option field (values are checked later by :func:`options_from_args`)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        allowed, _ = _base_types(hints[f.name])
        flag = f"--{f.name.replace('_', '-')}"
        help_text = f.metadata.get("help", "")
        if f.metadata.get("choices"):
            help_text += f" ({', '.join(f.metadata['choices'])})"
        if f.default is not None:
            help_text += f" [default: {f.default}]"
        if bool in allowed:
            parser.add_argument(flag, dest=f"opt_{f.name}", action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        else:
            metavar = {"size": "SIZE", "time": "TIME"}.get(f.metadata.get("unit") or "",
                                                         "N" if int in allowed else
                                                         "X" if float in allowed else "NAME")
            parser.add_argument(flag, dest=f"opt_{f.name}", default=None, metavar=metavar, help=help_text)


def options_from_args(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line (flags left out are omitted)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        v = getattr(args, f"opt_{f.name}", None)
        if v is not None:
            out[f.name] = v
    return out
