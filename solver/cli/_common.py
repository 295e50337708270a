"""Helpers shared by the subcommand modules."""

from __future__ import annotations

import argparse

from solver.errors import InputError
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
