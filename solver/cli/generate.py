"""``tierplan generate KIND [options] -o TRACE.json[.gz]``: write a generated trace.

Every kind's flags are derived from its options dataclass (see
:mod:`solver.workloads.options`), so ``tierplan generate train --help`` lists
exactly what the Python API accepts. Bad options exit with status 2 and one
line per problem.

Examples
--------
>>> import tempfile, os
>>> out = os.path.join(tempfile.mkdtemp(), "c.json")
>>> from solver.cli import main
>>> main(["generate", "chain", "--layers", "3", "-o", out, "--quiet"])
0
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from solver.cli._common import check_outputs
from solver.errors import InputError
from solver.fileio import write_json_atomic
from solver.units import format_bytes, format_time
from solver.workloads import KINDS, CommonOptions, generate, list_hardware_presets
from solver.workloads.kinds import DEFAULT_HARDWARE
from solver.workloads.models import list_model_presets
from solver.workloads.options import Where, add_arguments, options_from_args

#: Traces with more ops than this are written without indentation unless --indent is given.
COMPACT_ABOVE_OPS = 10_000


def register(subparsers: Any) -> None:
    """Add the ``generate`` subcommand (one sub-subcommand per workload kind)."""
    p = subparsers.add_parser(
        "generate", help="generate a workload trace (train, decode, moe, chain, random)",
        description="Generate a tierplan.trace/1 file. Same options and seed give byte-identical output.")
    p.add_argument("--list", action="store_true", help="list kinds, model presets and hardware presets")
    p.set_defaults(func=_run, gen_kind=None, gen_parser=p)
    kinds = p.add_subparsers(dest="gen_kind", metavar="KIND", parser_class=type(p))
    for k in KINDS.values():
        kp = kinds.add_parser(k.name, help=k.summary, description=k.summary)
        add_arguments(kp, k.options)
        g = kp.add_argument_group("output and timing")
        g.add_argument("-o", "--output", required=True, metavar="TRACE",
                       help="output file (.json, or .json.gz for gzip)")
        g.add_argument("--seed", default="0", metavar="N", help="seed of every random choice [default: 0]")
        g.add_argument("--indent", default=None, metavar="N",
                       help=f"JSON indentation; 0 for compact [default: 1, compact above "
                            f"{COMPACT_ABOVE_OPS:,} ops]")
        g.add_argument("--quiet", action="store_true", help="print nothing on success")
        if k.roofline:
            g.add_argument("--hardware", default=None, metavar="NAME|FILE",
                           help=f"hardware preset or file whose compute figures time the ops and whose "
                                f"tiers the *-tier options name [default: {DEFAULT_HARDWARE}]")
            add_arguments(g, CommonOptions)   # type: ignore[arg-type]
        else:
            g.add_argument("--hardware", default=None, metavar="NAME|FILE",
                           help="hardware preset or file whose tiers the *-tier options must name "
                                "(durations are drawn, not timed)")
            g.add_argument("--name", dest="opt_name", default=None, metavar="NAME",
                           help="trace name (default: derived from the options)")
        kp.set_defaults(func=_run, gen_parser=kp)


def _int_arg(text: str | None, flag: str, minimum: int) -> int | None:
    if text is None:
        return None
    try:
        v = int(text)
    except ValueError:
        raise InputError.single(flag, "", f"expected an integer, got {text!r}") from None
    if v < minimum:
        raise InputError.single(flag, "", f"must be >= {minimum}, got {v}")
    return v


def _listing() -> str:
    lines = ["kinds:"]
    lines += [f"  {k.name:8s} {k.summary}" for k in KINDS.values()]
    lines.append("model presets: " + ", ".join(list_model_presets()))
    lines.append("hardware presets: " + (", ".join(list_hardware_presets()) or "(none found)"))
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    if args.list:
        print(_listing())
        return 0
    if args.gen_kind is None:
        args.gen_parser.print_help(sys.stderr)
        return 2
    k = KINDS[args.gen_kind]
    problems = []
    seed, indent = 0, None
    try:
        seed = _int_arg(args.seed, "--seed", 0) or 0
    except InputError as exc:
        problems += exc.problems
    try:
        indent = _int_arg(args.indent, "--indent", 0)
    except InputError as exc:
        problems += exc.problems
    hw_arg = getattr(args, "hardware", None)
    hw_path = hw_arg if hw_arg and os.path.exists(hw_arg) else None
    try:
        check_outputs([("-o", args.output)], [hw_path])
    except InputError as exc:
        problems += exc.problems
    options = options_from_args(k.options, args)
    options.update(options_from_args(CommonOptions, args))
    try:
        doc = generate(k.name, options, seed=seed, hardware=getattr(args, "hardware", None),
                       where=Where(cli=True))
    except InputError as exc:
        raise InputError(problems + exc.problems) from None
    if problems:
        raise InputError(problems)
    n_ops = len(doc["ops"])
    if indent is None:
        indent = 1 if n_ops <= COMPACT_ABOVE_OPS else 0
    write_json_atomic(args.output, doc, indent=indent or None)
    if not args.quiet:
        by_kind: dict[str, int] = {}
        for t in doc["tensors"]:
            by_kind[t["kind"]] = by_kind.get(t["kind"], 0) + t["bytes"]
        compute = sum(op["duration"] for op in doc["ops"])
        kinds = ", ".join(f"{kind} {format_bytes(b)}" for kind, b in sorted(by_kind.items()))
        print(f"wrote {args.output}: {doc['name']}, {n_ops:,} ops, {len(doc['tensors']):,} tensors, "
              f"compute {format_time(compute)}; bytes by kind: {kinds}")
    return 0
