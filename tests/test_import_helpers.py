"""Shared checks for the importer tests (no tests here).

Every imported trace must load with the format's reader, and the keep-everything schedule
must validate on hardware large enough to hold its no-offload peak.
"""

from __future__ import annotations

import gzip
import math
import json
from pathlib import Path
from typing import Any

import pytest

from solver.formats import hardware_from_document, trace_from_document
from solver.model import Trace
from solver.plans import keep_schedule
from solver.timing import validate

SHARED = Path(__file__).resolve().parents[2] / "shared"
TRACES = SHARED / "traces"

BIG_HARDWARE = {"format": "tierplan.hardware/1", "name": "big", "compute_tier": "HBM",
                "tiers": [{"name": "HBM", "capacity": "1 TiB"}], "links": []}


def shared_file(*parts: str) -> Path:
    """A file under ../shared, or skip the test when the folder is absent."""
    path = TRACES.joinpath(*parts)
    if not SHARED.is_dir():
        pytest.skip(f"shared reference folder {SHARED} is absent")
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def load_checked(doc: dict[str, Any]) -> Trace:
    """Load a document with the trace reader (raises InputError for anything invalid)."""
    assert doc["format"] == "tierplan.trace/1"
    assert isinstance(doc["meta"]["warnings"], list)
    # the reader may normalise fields in place: give it a copy
    return trace_from_document(json.loads(json.dumps(doc)), file="<imported>")


def assert_keep_valid(trace: Trace) -> None:
    """The keep schedule validates on 1 TiB of compute memory (for traces far below that)."""
    assert trace.no_offload_peak < 2**40
    hw = hardware_from_document(BIG_HARDWARE, file="<big>")
    report = validate(trace, hw, keep_schedule(trace, hw))
    assert report.valid, [str(e.message) for e in report.errors[:3]]


def assert_greedy_valid(trace: Trace, fraction: float = 1.0) -> bool:
    """Solve with the ``greedy`` planner (when registered) on two tiers, the compute tier holding
    ``fraction`` of the no-offload peak; False when the planner is not there."""
    from solver.methods import Instance, SolveOptions, UnknownMethod, get_method

    try:
        method = get_method("greedy")
    except UnknownMethod:
        return False
    peak = max(1, math.ceil(trace.no_offload_peak * fraction))
    hw = hardware_from_document({
        "format": "tierplan.hardware/1", "name": "two", "compute_tier": "HBM",
        "tiers": [{"name": "HBM", "capacity": peak}, {"name": "DDR", "capacity": "1 TiB"}],
        "links": [{"src": "HBM", "dst": "DDR", "bandwidth": "25 GB/s", "latency": "10us"},
                  {"src": "DDR", "dst": "HBM", "bandwidth": "25 GB/s", "latency": "10us"}]}, file="<two>")
    result = method.load()(Instance(trace, hw, {}), SolveOptions(time_limit=20))
    assert result.schedule is not None, result.message
    report = validate(trace, hw, result.schedule)
    assert report.valid, [str(e.message) for e in report.errors[:3]]
    return True


def write_gz_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as gzip'd JSON."""
    path.write_bytes(gzip.compress(json.dumps(obj).encode()))
    return path
