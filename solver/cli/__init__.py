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
import os
import pkgutil
import sys
from collections.abc import Sequence

from solver import __version__
from solver.errors import InputError
from solver.fileio import DEFAULT_MAX_INPUT, MAX_INPUT_ENV


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
    parser.add_argument("--max-input", metavar="SIZE", default=None,
                        help="largest input file accepted, after decompression [default: "
                             f"{DEFAULT_MAX_INPUT >> 20} MiB, or ${MAX_INPUT_ENV}]")
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
    saved = os.environ.get(MAX_INPUT_ENV)
    try:
        if args.max_input is not None:
            _set_max_input(args.max_input)
        return int(args.func(args))
    except InputError as exc:
        from solver.cli._common import shown

        for problem in exc.problems:
            print(f"error: {shown(problem)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # pragma: no cover - e.g. `tierplan inspect ... | head`
        return 0
    finally:   # the limit holds for this command (and the workers it starts), not for a caller of main()
        if saved is None:
            os.environ.pop(MAX_INPUT_ENV, None)
        else:
            os.environ[MAX_INPUT_ENV] = saved


def _set_max_input(text: str) -> None:
    """Check ``--max-input`` and hand it to the readers (and to worker processes) through the environment."""
    from solver.units import UnitError, parse_size

    try:
        limit = parse_size(text)
    except UnitError as exc:
        raise InputError.single("--max-input", text, str(exc)) from None
    if limit < 1:
        raise InputError.single("--max-input", text, "must be at least 1 byte")
    os.environ[MAX_INPUT_ENV] = str(limit)


def entry() -> None:  # pragma: no cover
    sys.exit(main())
