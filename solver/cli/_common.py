"""Helpers shared by the subcommand modules."""

from __future__ import annotations

import argparse

from solver.errors import InputError, InputProblem
from solver.formats import load_hardware, load_trace
from solver.model import Hardware, Trace
from solver.units import UnitError, parse_size


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


def load_instance(trace_file: str, hardware_file: str,
                  capacity_items: list[str] | None) -> tuple[Trace, Hardware, dict[str, int]]:
    """Read a trace and a hardware file, check they fit together, and parse ``--capacity``."""
    trace = load_trace(trace_file)
    hardware = load_hardware(hardware_file)
    check_instance(trace, hardware, trace_file)
    return trace, hardware, resolve_capacity(hardware, capacity_items or [])
