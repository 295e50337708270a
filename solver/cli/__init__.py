"""The ``tierplan`` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
taking the parsed arguments and returning the exit status. Modules are
discovered by name, so adding a command is adding a module.

Exit status everywhere: 0 success, 1 a negative answer (invalid schedule,
infeasible instance, regression), 2 unreadable input or bad options.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from solver import __version__
from solver.errors import InputError


class _Parser(argparse.ArgumentParser):
    """argparse with exit status 2 and one-line messages (its default already uses 2)."""


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand module registered.

    Examples
    --------
    >>> p = build_parser()
    >>> p.prog
    'tierplan'
    """
    parser = _Parser(prog="tierplan", description="Plan tensor placement and movement across memory tiers.")
    parser.add_argument("--version", action="version", version=f"tierplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (also used as the console script)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # pragma: no cover - e.g. `tierplan inspect ... | head`
        return 0


def entry() -> None:  # pragma: no cover
    sys.exit(main())
