"""``tierplan methods``: the registered planning methods, one line each."""

from __future__ import annotations

import argparse
import sys

from solver.fileio import dumps_json
from solver.methods import REGISTRY


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list the planning methods",
                       description="List the methods `tierplan solve --method` accepts, one line each.")
    p.add_argument("--json", action="store_true", help="machine output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.json:
        doc = [{"name": m.name, "summary": m.summary, "exact": m.exact} for m in REGISTRY.values()]
        sys.stdout.buffer.write(dumps_json(doc, indent=None) + b"\n")
        sys.stdout.flush()
        return 0
    width = max((len(n) for n in REGISTRY), default=0)
    for m in REGISTRY.values():
        print(f"{m.name.ljust(width)}  {m.summary}")
    return 0
