"""Helpers shared by the subcommand modules."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable

from solver.errors import InputError, InputProblem
from solver.fileio import check_output_path
from solver.formats import load_hardware, load_trace
from solver.model import Hardware, Trace
from solver.units import UnitError, parse_size
from solver.workloads.presets import resolve_hardware


def capacity_overrides(items: list[str] | None, flag: str = "--capacity") -> dict[str, int]:
    """Parse ``TIER=SIZE`` items (``HBM=16GiB``) into a dict.

    Examples
    --------
    >>> capacity_overrides(["HBM=1 KiB", "DDR=10"])
    {'HBM': 1024, 'DDR': 10}
    """
    out: dict[str, int] = {}
    for item in items or []:
        name, sep, size = item.partition("=")
        if not sep or not name.strip():
            raise InputError.single(flag, item, "expected TIER=SIZE, e.g. HBM=16GiB")
        try:
            out[name.strip()] = parse_size(size.strip())
        except UnitError as exc:
            raise InputError.single(flag, item, str(exc)) from None
        if out[name.strip()] < 0:
            raise InputError.single(flag, item, "capacity must be >= 0")
    return out


def add_capacity_option(parser: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--capacity TIER=SIZE`` option."""
    parser.add_argument(
        "--capacity", action="append", metavar="TIER=SIZE", default=[],
        help="override a tier's capacity (repeatable), e.g. --capacity HBM=16GiB",
    )


def check_instance(trace: Trace, hardware: Hardware, trace_file: str) -> None:
    """Refuse a trace whose tiers the hardware lacks (InputError naming the tensor)."""
    problems = []
    for i, t in enumerate(trace.tensors):
        for fld in ("initial_tier", "final_tier"):
            v = getattr(t, fld)
            if v is not None and v not in hardware.tier_index:
                problems.append((f"tensors[{i}].{fld}", f"tier {v!r} is not in hardware {hardware.name!r} "
                                 f"(tiers: {', '.join(hardware.tier_index)})"))
    if problems:
        raise InputError([InputProblem(trace_file, p, m) for p, m in problems])


def resolve_capacity(hardware: Hardware, items: list[str]) -> dict[str, int]:
    """Parse ``--capacity`` items and check their tier names."""
    caps = capacity_overrides(items)
    for name in caps:
        if name not in hardware.tier_index:
            raise InputError.single("--capacity", name, f"unknown tier {name!r}; tiers are "
                                    f"{', '.join(hardware.tier_index)}")
    return caps


def hardware_file(spec: str, flag: str = "--hardware") -> str:
    """The hardware file of a command-line value: a path, or a preset name (``h100-pcie``).

    Examples
    --------
    >>> hardware_file("laptop-sized").endswith("laptop-sized.toml")
    True
    """
    return str(resolve_hardware(spec, flag))


def read_hardware(spec: str, flag: str = "--hardware") -> Hardware:
    """Load the hardware a command-line value names (a file or a preset name)."""
    return load_hardware(hardware_file(spec, flag))


def load_instance(trace_file: str, hardware_spec: str,
                  capacity_items: list[str] | None) -> tuple[Trace, Hardware, dict[str, int]]:
    """Read a trace and a hardware file (or preset name), check they fit together, and parse
    ``--capacity``."""
    trace = load_trace(trace_file)
    hardware = read_hardware(hardware_spec)
    check_instance(trace, hardware, trace_file)
    return trace, hardware, resolve_capacity(hardware, capacity_items or [])


def check_outputs(outputs: Iterable[tuple[str, str | None]], inputs: Iterable[str | None]) -> None:
    """Refuse, before any work, output paths that would destroy something or cannot be written.

    Parameters
    ----------
    outputs : iterable of (flag, path)
        The command's outputs (a None path is not written).
    inputs : iterable of paths
        The command's input files (None entries are skipped).

    Raises
    ------
    InputError
        An output that is an input, exists and is not a regular file, lies under a folder that
        cannot be written, or is given twice (see :func:`solver.fileio.check_output_path`).

    Examples
    --------
    >>> check_outputs([("-o", None)], ["t.json"])
    >>> check_outputs([("-o", "t.json")], ["t.json"])
    Traceback (most recent call last):
    ...
    solver.errors.InputError: -o: t.json: is an input of this command (t.json); refusing to overwrite it
    """
    ins = [str(i) for i in inputs if i is not None]
    seen: dict[str, str] = {}
    for flag, path in outputs:
        if path is None:
            continue
        check_output_path(path, flag, ins)
        real = os.path.realpath(path)
        if real in seen:
            raise InputError.single(flag, path, f"is also the path of {seen[real]}; give each output its own file")
        seen[real] = flag


def shown(text: object) -> str:
    r"""``text`` safe for a terminal: control characters (escape sequences, newlines, ...) and other
    non-printable ones are written as Python escapes, so an id in a file cannot drive the terminal.

    Examples
    --------
    >>> print(shown("ok name"), shown("evil\x1b[2Jid"), shown("tab\there"))
    ok name evil\x1b[2Jid tab\there
    """
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)
