"""``tierplan inspect TRACE``: what a trace holds and whether it fits."""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from typing import Any

from solver.cli._common import check_instance, read_hardware, shown
from solver.fileio import dumps_json
from solver.formats import load_trace
from solver.model import TENSOR_KINDS, Hardware, Trace
from solver.units import format_bytes, format_time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="summarise a trace: sizes by kind, no-offload peak, fit",
                       description="Summarise TRACE: ops, tensors, bytes by kind, compute time, the "
                                   "no-offload peak in the compute tier (and whether it fits HARDWARE).")
    p.add_argument("trace", help="the trace file (.json or .json.gz)")
    p.add_argument("--hardware", metavar="HW", help="hardware file or preset name to check the fit against")
    p.add_argument("--json", action="store_true", help="machine output")
    p.add_argument("--top", type=int, default=5, help="how many of the largest tensors to list (default 5)")
    p.set_defaults(func=run)


def summarize(trace: Trace, hardware: Hardware | None = None, top: int = 5) -> dict[str, Any]:
    """The facts ``inspect`` reports, as a JSON-ready dict.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op
    >>> tr = Trace("t", (Tensor(id="x", bytes=8, kind="weight"),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> summarize(tr)["bytes_by_kind"]["weight"], summarize(tr)["no_offload_peak"]
    (8, 8)
    """
    by_kind: dict[str, int] = defaultdict(int)
    count_by_kind: dict[str, int] = defaultdict(int)
    for t in trace.tensors:
        by_kind[t.kind] += t.bytes
        count_by_kind[t.kind] += 1
    prof = trace.resident_profile()
    peak_op = int(prof.argmax()) if len(prof) else None
    largest = sorted(trace.tensors, key=lambda t: (-t.bytes, t.id))[:top]
    out: dict[str, Any] = {
        "name": trace.name,
        "ops": len(trace.ops),
        "tensors": len(trace.tensors),
        "total_bytes": sum(by_kind.values()),
        "bytes_by_kind": {k: by_kind[k] for k in TENSOR_KINDS if k in by_kind},
        "tensors_by_kind": {k: count_by_kind[k] for k in TENSOR_KINDS if k in count_by_kind},
        "compute_time": trace.compute_time,
        "no_offload_peak": trace.no_offload_peak,
        "peak_op": trace.ops[peak_op].id if peak_op is not None else None,
        "largest_tensors": [{"id": t.id, "bytes": t.bytes, "kind": t.kind} for t in largest],
    }
    if hardware is not None:
        cap = hardware.capacity[hardware.compute_tier]
        out["compute_tier"] = hardware.compute_tier
        out["capacity"] = cap
        out["fits"] = trace.no_offload_peak <= cap
    return out


def run(args: argparse.Namespace) -> int:
    trace = load_trace(args.trace)
    hw = read_hardware(args.hardware) if args.hardware else None
    if hw is not None:
        check_instance(trace, hw, args.trace)
    info = summarize(trace, hw, args.top)
    if args.json:
        sys.stdout.buffer.write(dumps_json(info) + b"\n")
        return 0
    print(f"trace {info['name']!r}: {info['ops']} ops, {info['tensors']} tensors, "
          f"{format_bytes(info['total_bytes'])} in all, compute {format_time(info['compute_time'])}")
    print("bytes by kind:")
    for k, v in info["bytes_by_kind"].items():
        print(f"  {k:<16}{format_bytes(v):>14}  ({info['tensors_by_kind'][k]} tensors)")
    print(f"no-offload peak: {format_bytes(info['no_offload_peak'])}"
          + (f" (during op {info['peak_op']!r})" if info["peak_op"] else ""))
    if hw is not None:
        verdict = "fits" if info["fits"] else "does NOT fit"
        print(f"  {verdict} in {info['compute_tier']} ({format_bytes(info['capacity'])}) of {hw.name!r}")
    print("largest tensors:")
    for t in info["largest_tensors"]:
        print(f"  {shown(t['id']):<24}{format_bytes(t['bytes']):>14}  {t['kind']}")
    return 0
