"""Hand-computed golden cases for the timing model (formats-v1.md).

Each folder under ``tests/golden/`` holds ``trace.json``, ``hardware.json``,
``schedule.json`` and ``expected.json``. The expected figures were worked out by
hand from the spec (the arithmetic is in each ``"why"``), never copied from the
validator. Every case runs through the Python API, through the validator's
general (heap) event source, and through ``tierplan validate --json``.

``expected.json`` keys: ``valid``; ``errors`` (a multiset of ``{code, action?,
time?}``: keys left out are not checked, ``"action": null`` means "no action");
``makespan``, ``peak``, ``bytes_moved``, ``copies`` (exact); optionally
``compute_time``, ``recompute_time``, ``overhead``, ``times`` ({action: [start,
end]}), ``api_capacity`` / ``cli_capacity`` (overrides), ``capacity_in_force``
and ``no_offload_peak``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from foundation_helpers import cli, full_report, validate_heap
from solver.formats import load_hardware, load_schedule, load_trace
from solver.timing import Code, validate

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.json").is_file())


def _approx(x: float) -> Any:
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def _load(case: str) -> tuple[Path, dict[str, Any]]:
    d = GOLDEN / case
    return d, json.loads((d / "expected.json").read_text())


def _check_errors(actual: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """``expected`` must match ``actual`` one to one (as multisets)."""
    left = list(actual)
    for want in expected:
        for k, got in enumerate(left):
            if got["code"] != want["code"]:
                continue
            if "action" in want and got["action"] != want["action"]:
                continue
            if "time" in want and got["time"] != _approx(want["time"]):
                continue
            del left[k]
            break
        else:
            pytest.fail(f"expected error {want} not found in {actual}")
    assert not left, f"unexpected errors {left}"


def _check(doc: dict[str, Any], exp: dict[str, Any]) -> None:
    """Check a ``validate --json`` style document against the expectations."""
    assert doc["valid"] is exp["valid"], doc["errors"]
    _check_errors(doc["errors"], exp["errors"])
    m = doc["metrics"]
    assert m["makespan"] == _approx(exp["makespan"])
    assert m["peak"] == exp["peak"]
    assert m["bytes_moved"] == exp["bytes_moved"]
    assert m["copies"] == exp["copies"]
    for key in ("compute_time", "recompute_time", "overhead"):
        if key in exp:
            assert m[key] == _approx(exp[key]), key


@pytest.mark.parametrize("case", CASES)
def test_golden_api(case: str) -> None:
    d, exp = _load(case)
    trace = load_trace(d / "trace.json")
    hw = load_hardware(d / "hardware.json")
    sched = load_schedule(d / "schedule.json")
    report = validate(trace, hw, sched, exp.get("api_capacity"))
    _check(report.to_dict(), exp)
    assert report.valid == (not report.errors)
    if "capacity_in_force" in exp:
        assert dict(report.capacity) == exp["capacity_in_force"]
    if "no_offload_peak" in exp:
        assert trace.no_offload_peak == exp["no_offload_peak"]
    if "times" in exp:
        rows = {r[0]: (r[3], r[4]) for r in report.timeline.rows()}
        for aid, (s, e) in exp["times"].items():
            got_s, got_e = rows[aid]
            assert (got_s is None) == (s is None) and (got_e is None) == (e is None), (aid, rows[aid])
            if s is not None:
                assert got_s == _approx(s), aid
            if e is not None:
                assert got_e == _approx(e), aid


@pytest.mark.parametrize("case", CASES)
def test_golden_heap_path_agrees(case: str) -> None:
    """The general event source gives exactly the same report as the default path."""
    d, exp = _load(case)
    trace = load_trace(d / "trace.json")
    hw = load_hardware(d / "hardware.json")
    sched = load_schedule(d / "schedule.json")
    cap = exp.get("api_capacity")
    assert full_report(validate_heap(trace, hw, sched, cap)) == full_report(validate(trace, hw, sched, cap))


@pytest.mark.parametrize("case", CASES)
def test_golden_cli(case: str) -> None:
    d, exp = _load(case)
    argv = ["validate", str(d / "trace.json"), str(d / "hardware.json"), str(d / "schedule.json"), "--json"]
    for item in exp.get("cli_capacity", []):
        argv += ["--capacity", item]
    rc, out, err = cli(argv)
    assert rc == (0 if exp["valid"] else 1), err
    assert err == ""
    doc = json.loads(out)
    _check(doc, exp)


def test_golden_coverage() -> None:
    """At least 12 cases, and at least one per error code."""
    assert len(CASES) >= 12
    seen = set()
    for case in CASES:
        seen |= {e["code"] for e in _load(case)[1]["errors"]}
    assert seen == {c.value for c in Code}


def test_channel_halves_concurrency() -> None:
    """The same schedule on a shared channel takes longer than on two directed links."""
    _, two = _load("two_links")
    _, one = _load("channel")
    assert one["makespan"] > two["makespan"]
    assert set(one["bytes_moved"]) == {"pcie"}
