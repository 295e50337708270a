"""``tierplan import FORMAT SOURCE [options] -o TRACE.json.gz``: bring a framework trace in.

The formats and their options come from :mod:`solver.importers.registry`; ``tierplan import
--help`` lists them and ``tierplan import FORMAT --help`` shows one format's options. Warnings
(what the importer dropped or guessed) are printed to stderr and kept in the trace's ``meta``.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from solver.cli._common import check_outputs
from solver.errors import InputError
from solver.fileio import write_json_atomic
from solver.importers.registry import IMPORTERS, ImporterSpec, Option
from solver.importers.result import with_initial_tier
from solver.importers.roofline import (
    DEFAULT_BANDWIDTH, DEFAULT_BANDWIDTH_EFFICIENCY, DEFAULT_FLOP_EFFICIENCY, DEFAULT_PEAK_FLOPS, Roofline,
)
from solver.units import UnitError, parse_bandwidth, parse_time

_FLOPS_RE = re.compile(r"^\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*([kMGTP]?)\s*(?:FLOP/s|FLOPS|flop/s|flops)?\s*$")
_SCALE = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}


def _flops(text: str) -> float:
    """``989e12``, ``989T``, ``989 TFLOP/s`` -> FLOP/s."""
    m = _FLOPS_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"cannot read {text!r} as FLOP/s (e.g. 989e12 or '989 TFLOP/s')")
    return float(m.group(1)) * _SCALE[m.group(2)]


def _time(text: str) -> float:
    try:
        value = parse_time(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _bandwidth(text: str) -> float:
    try:
        return parse_bandwidth(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def _add_option(parser: argparse.ArgumentParser, opt: Option) -> None:
    kwargs: dict[str, Any] = {"dest": opt.dest, "help": opt.help}
    if opt.type == "bool":
        parser.add_argument(opt.flag, action="store_true", default=None, **kwargs)
        return
    if opt.metavar:
        kwargs["metavar"] = opt.metavar
    if opt.type == "int":
        kwargs["type"] = int
    elif opt.type == "time":
        kwargs["type"] = _time
    elif opt.type == "shapes":
        kwargs["action"] = "append"
    parser.add_argument(opt.flag, **kwargs)


def _add_format(sub: argparse._SubParsersAction, spec: ImporterSpec) -> None:
    p = sub.add_parser(spec.name, help=spec.summary, description=spec.summary + ".")
    p.add_argument("source", metavar="SOURCE", help=spec.source_help)
    p.add_argument("-o", "--output", required=True, metavar="TRACE.json.gz",
                   help="the trace file to write (gzip'd when it ends in .gz)")
    p.add_argument("--name", help="trace name (default: from the source)")
    p.add_argument("--quiet", action="store_true", help="do not print warnings (they stay in meta)")
    p.add_argument("--initial-tier", metavar="TIER",
                   help="start the tensors that exist before the first op (weights, optimizer states, inputs) "
                        "in TIER instead of the compute tier")
    group = p.add_argument_group(f"{spec.name} options")
    for opt in spec.options:
        _add_option(group, opt)
    if spec.roofline:
        r = p.add_argument_group("roofline model (estimated durations)")
        r.add_argument("--peak-flops", type=_flops, default=DEFAULT_PEAK_FLOPS, metavar="FLOP/S",
                       help=f"peak FLOP/s (default {DEFAULT_PEAK_FLOPS:.4g}: H100 SXM dense BF16)")
        r.add_argument("--bandwidth", type=_bandwidth, default=DEFAULT_BANDWIDTH, metavar="BW",
                       help=f"memory bandwidth, e.g. '3.35 TB/s' (default {DEFAULT_BANDWIDTH:.4g} B/s)")
        r.add_argument("--flop-efficiency", type=_fraction, default=DEFAULT_FLOP_EFFICIENCY, metavar="F",
                       help=f"fraction of peak FLOP/s reached (default {DEFAULT_FLOP_EFFICIENCY})")
        r.add_argument("--bandwidth-efficiency", type=_fraction, default=DEFAULT_BANDWIDTH_EFFICIENCY,
                       metavar="F", help=f"fraction of bandwidth reached (default {DEFAULT_BANDWIDTH_EFFICIENCY})")
        r.add_argument("--op-overhead", type=_time, default=0.0, metavar="TIME",
                       help="fixed time added to every op, e.g. 5us (default 0)")
    p.set_defaults(func=run, import_spec=spec)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``tierplan import`` with one sub-command per format."""
    p = sub.add_parser(
        "import", help="convert a framework trace or graph into a tierplan trace",
        description="Convert a trace from a framework or benchmark into a tierplan.trace/1 file. "
                    "Run 'tierplan import FORMAT --help' for a format's options.")
    fsub = p.add_subparsers(dest="import_format", metavar="FORMAT", title="formats", parser_class=type(p))
    for spec in sorted(IMPORTERS, key=lambda s: s.name):
        _add_format(fsub, spec)
    p.set_defaults(func=_no_format, import_parser=p)


def _no_format(args: argparse.Namespace) -> int:
    args.import_parser.print_help(sys.stderr)
    return 2


def _check_range(doc: dict[str, Any], source: str) -> None:
    """Refuse a source whose sizes or durations are out of the range a trace may hold (docs/formats.md),
    rather than write a trace that no command can read."""
    from solver.formats import first_out_of_range

    bad = first_out_of_range(doc)
    if bad is not None:
        raise InputError.single(source, "", f"the imported trace's {bad[0]} is out of range: {bad[1]}")


def run(args: argparse.Namespace) -> int:
    """Run one importer and write its trace; 0 on success, 2 on unreadable input."""
    spec: ImporterSpec = args.import_spec
    options: dict[str, Any] = {}
    for opt in spec.options:
        value = getattr(args, opt.dest, None)
        if value is not None:
            options[opt.dest] = value
    if spec.roofline:
        options["roofline"] = Roofline(peak_flops=args.peak_flops, bandwidth=args.bandwidth,
                                       flop_efficiency=args.flop_efficiency,
                                       bandwidth_efficiency=args.bandwidth_efficiency, overhead=args.op_overhead)
    if args.name:
        options["name"] = args.name
    check_outputs([("-o", args.output)], [args.source])
    try:
        result = spec.load()(args.source, **options)
    except ImportError as exc:
        raise InputError.single(args.source, "", str(exc)) from None
    doc = result.document
    _check_range(doc, args.source)
    if args.initial_tier:
        doc = with_initial_tier(doc, args.initial_tier)
    try:
        write_json_atomic(args.output, doc, indent=None)
    except OSError as exc:
        raise InputError.single(args.output, "", f"cannot write: {exc.strerror or exc}") from None
    if not args.quiet:
        for w in result.warnings:
            print(f"warning: {w}", file=sys.stderr)
    total = sum(op["duration"] for op in doc["ops"])
    print(f"{args.output}: {len(doc['ops'])} ops, {len(doc['tensors'])} tensors, "
          f"{total:.6g} s of compute ({doc['meta'].get('durations', 'from the source')} durations), "
          f"{len(result.warnings)} warnings", file=sys.stderr)
    return 0
