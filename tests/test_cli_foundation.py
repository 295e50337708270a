"""``tierplan validate`` and ``tierplan inspect``: output shape, options, exit status, examples."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from foundation_helpers import cli, cli_subprocess
from solver.formats import load_hardware, load_schedule, load_trace
from solver.timing import validate

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = ROOT / "instances" / "examples"

SPEC_METRICS = {"makespan", "compute_time", "recompute_time", "overhead", "peak", "bytes_moved", "copies"}


def _case(name: str) -> list[str]:
    d = GOLDEN / name
    return [str(d / "trace.json"), str(d / "hardware.json"), str(d / "schedule.json")]


def _write(path: Path, obj: Any) -> str:
    path.write_text(json.dumps(obj))
    return str(path)


# --- validate: --json ------------------------------------------------------------------------


@pytest.mark.parametrize("case, rc_want", [("two_links", 0), ("err_unknown_ref", 1), ("err_deadlock", 1)])
def test_validate_json_shape(case: str, rc_want: int) -> None:
    rc, out, err = cli(["validate", *_case(case), "--json"])
    assert rc == rc_want, err
    assert err == ""
    assert len(out.strip().splitlines()) == 1       # one JSON object
    doc = json.loads(out)
    assert set(doc) == {"valid", "errors", "metrics", "capacity", "warnings"}
    assert all(set(c) == {"bytes", "source"} for c in doc["capacity"].values())
    assert doc["valid"] is (rc == 0)
    assert isinstance(doc["errors"], list) and (not doc["errors"]) == doc["valid"]
    for e in doc["errors"]:
        assert set(e) == {"code", "action", "time", "message"}
        assert isinstance(e["code"], str) and isinstance(e["message"], str) and e["message"]
        assert e["action"] is None or isinstance(e["action"], str)
        assert isinstance(e["time"], float)
    m = doc["metrics"]
    assert SPEC_METRICS <= set(m)
    assert set(m) - SPEC_METRICS <= {"peak_time"}
    hw = load_hardware(_case(case)[1])
    assert set(m["peak"]) == {t.name for t in hw.tiers}
    assert set(m["bytes_moved"]) == set(m["copies"]) == set(hw.streams)
    assert all(isinstance(v, int) for d in (m["peak"], m["bytes_moved"], m["copies"]) for v in d.values())


def test_validate_json_overhead_and_metrics_of_invalid_schedule() -> None:
    rc, out, _ = cli(["validate", *_case("err_copy_target"), "--json"])
    assert rc == 1
    m = json.loads(out)["metrics"]
    # filled in from the simulation although invalid: a 0..1, c1 0..1, c2 1..2
    assert m["makespan"] == 2.0 and m["compute_time"] == 1.0 and m["recompute_time"] == 0.0
    assert m["overhead"] == pytest.approx(2.0 / 1.0 - 1)
    assert m["bytes_moved"]["HBM->DDR"] == 200 and m["copies"]["HBM->DDR"] == 2


def test_validate_json_matches_python_api() -> None:
    files = _case("recompute")
    rc, out, _ = cli(["validate", *files, "--json"])
    assert rc == 0
    report = validate(load_trace(files[0]), load_hardware(files[1]), load_schedule(files[2]))
    assert json.loads(out) == {**json.loads(json.dumps(report.to_dict())), "warnings": []}


# --- validate: human output --------------------------------------------------------------------


# Human output goes through the real entry point: validate's human_summary binds ``out=sys.stdout``
# when its module is imported, so in-process redirection of sys.stdout does not reach it.


def test_validate_human_valid() -> None:
    rc, out, err = cli_subprocess(["validate", *_case("two_links")])
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "VALID schedule"
    assert "makespan 2.000 s" in out and "overhead" in out
    assert "peak HBM" in out and "peak DDR" in out
    assert "HBM->DDR: 1 copies" in out and "DDR->HBM: 1 copies" in out
    assert "error" not in out.lower()
    assert len(lines) < 15


def test_validate_human_invalid_lists_errors() -> None:
    rc, out, err = cli_subprocess(["validate", *_case("err_unknown_ref")])
    assert rc == 1 and err == ""
    assert out.splitlines()[0] == "INVALID schedule"
    assert "5 error(s)" in out
    assert out.count("[unknown-ref]") == 5
    assert "ghost" in out and "NVME" in out


def test_validate_human_caps_long_error_lists(tmp_path: Path) -> None:
    trace = {"format": "tierplan.trace/1", "name": "many", "tensors": [],
             "ops": [{"id": f"o{i}", "duration": 1} for i in range(30)]}
    hw = {"format": "tierplan.hardware/1", "name": "h", "compute_tier": "HBM", "tiers": [{"name": "HBM", "capacity": 1}]}
    sched = {"format": "tierplan.schedule/1", "actions": [{"do": "run", "op": "nope", "id": f"g{i}"} for i in range(30)]}
    files = [_write(tmp_path / "t.json", trace), _write(tmp_path / "h.json", hw), _write(tmp_path / "s.json", sched)]
    rc, out, _ = cli_subprocess(["validate", *files])
    assert rc == 1
    assert len(out.splitlines()) < 40 and "more" in out
    rc, out, _ = cli(["validate", *files, "--json"])
    assert len(json.loads(out)["errors"]) == 31     # 30 unknown ops + "never runs 30 ops"


# --- validate: --timeline -------------------------------------------------------------------------


def test_validate_timeline_csv(tmp_path: Path) -> None:
    out_csv = tmp_path / "sub" / "timeline.csv"
    rc, out, err = cli(["validate", *_case("fifo"), "--json", "--timeline", str(out_csv)])
    assert rc == 0, err
    json.loads(out)                                  # stdout still holds only the JSON object
    rows = list(csv.reader(io.StringIO(out_csv.read_text())))
    assert rows[0] == ["action", "kind", "stream", "start", "end"]
    got = {r[0]: (r[1], r[2], float(r[3]), float(r[4])) for r in rows[1:]}
    assert got == {"wait": ("run", "compute", 0.0, 2.0), "cq": ("copy", "DDR->HBM", 2.0, 4.0),
                   "cp": ("copy", "DDR->HBM", 4.0, 5.0), "use": ("run", "compute", 5.0, 6.0)}


def test_validate_timeline_of_actions_that_never_ran(tmp_path: Path) -> None:
    out_csv = tmp_path / "t.csv"
    rc, out, _ = cli(["validate", *_case("err_deadlock"), "--timeline", str(out_csv)])
    assert rc == 1
    rows = list(csv.reader(io.StringIO(out_csv.read_text())))
    assert rows[1:] == [["a", "run", "compute", "", ""], ["b", "run", "compute", "", ""]]


def test_validate_timeline_human_mode_and_frees(tmp_path: Path) -> None:
    out_csv = tmp_path / "t.csv"
    rc, out, _ = cli_subprocess(["validate", *_case("free_before_start"), "--timeline", str(out_csv)])
    assert rc == 0 and out.startswith("VALID")
    rows = {r[0]: r for r in csv.reader(io.StringIO(out_csv.read_text()))}
    assert rows["drop"][1:3] == ["free", ""] and float(rows["drop"][3]) == float(rows["drop"][4]) == 1.0


# --- validate: --capacity -------------------------------------------------------------------------


def test_capacity_option_overrides() -> None:
    files = _case("same_instant_fit")                # peak 200, hardware 200
    assert cli(["validate", *files])[0] == 0
    rc, out, _ = cli(["validate", *files, "--json", "--capacity", "HBM=199"])
    assert rc == 1
    doc = json.loads(out)
    assert [e["code"] for e in doc["errors"]] == ["capacity"]
    msg = doc["errors"][0]["message"]
    assert "HBM" in msg and "200" in msg and "199" in msg
    rc, out, _ = cli(["validate", *files, "--capacity", "HBM=1 KiB", "--capacity", "HBM=200"])
    assert rc == 0                                    # the last one wins
    rc, out, _ = cli(["validate", *files, "--json", "--capacity", "HBM=0.5 KiB"])
    assert rc == 0 and json.loads(out)["metrics"]["peak"]["HBM"] == 200


def test_capacity_option_beats_schedule_capacity() -> None:
    rc, out, _ = cli(["validate", *_case("capacity_schedule_override")])
    assert rc == 1                        # the schedule's HBM=200 cannot raise the hardware's 100
    rc, out, _ = cli(["validate", *_case("capacity_schedule_override"), "--capacity", "HBM=200"])
    assert rc == 0                        # the command line's explicit what-if can
    rc, out, _ = cli(["validate", *_case("capacity_schedule_override"), "--json", "--capacity", "HBM=150"])
    assert rc == 1 and [e["code"] for e in json.loads(out)["errors"]] == ["capacity"]


@pytest.mark.parametrize("item", ["HBM", "=5", "HBM=lots", "NVME=5", "HBM=-1", "HBM=5 parsec"])
def test_bad_capacity_option(item: str) -> None:
    rc, out, err = cli(["validate", *_case("same_instant_fit"), "--capacity", item])
    assert rc == 2
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith("error: --capacity")


# --- argument errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["validate"], ["validate", "a.json"], ["inspect"], ["frobnicate"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    rc, out, err = cli(argv)
    assert rc == 2
    assert "Traceback" not in err


# --- inspect --------------------------------------------------------------------------------------

INSPECT_TRACE = {
    "format": "tierplan.trace/1", "name": "insp",
    "tensors": [{"id": "w", "bytes": 1000, "kind": "weight", "persistent": True},
                {"id": "x", "bytes": 300, "kind": "input"},
                {"id": "a", "bytes": 500, "kind": "activation"},
                {"id": "g", "bytes": 200, "kind": "gradient"},
                {"id": "big", "bytes": 2000, "kind": "optimizer_state", "initial_tier": "DDR", "persistent": True}],
    "ops": [{"id": "fwd", "duration": 0.5, "inputs": ["x", "w"], "outputs": ["a"], "workspace": 100},
            {"id": "bwd", "duration": 1.25, "inputs": ["a"], "outputs": ["g"]},
            {"id": "step", "duration": 0.25, "inputs": ["g"], "updates": ["w", "big"]}],
}
# no-offload peak (everything in the compute tier from birth to death, plus workspace):
#   fwd: w 1000 + x 300 + big 2000 + a 500 + ws 100 = 3900
#   bwd: w + big + a + g = 3700 (x died after fwd); step: w + big + g = 3200  -> 3900, during fwd


def _inspect_files(tmp_path: Path, hbm: int) -> tuple[str, str]:
    t = _write(tmp_path / "t.json", INSPECT_TRACE)
    h = _write(tmp_path / "h.json", {"format": "tierplan.hardware/1", "name": "box", "compute_tier": "HBM",
                                     "tiers": [{"name": "HBM", "capacity": hbm}, {"name": "DDR", "capacity": 10**6}]})
    return t, h


def test_inspect_json(tmp_path: Path) -> None:
    t, h = _inspect_files(tmp_path, 3900)
    rc, out, err = cli(["inspect", t, "--json"])
    assert rc == 0, err
    info = json.loads(out)
    assert info["ops"] == 3 and info["tensors"] == 5
    assert info["bytes_by_kind"] == {"weight": 1000, "activation": 500, "gradient": 200, "optimizer_state": 2000,
                                     "input": 300}
    assert info["total_bytes"] == 4000
    assert info["compute_time"] == pytest.approx(2.0)
    assert info["no_offload_peak"] == 3900
    assert info["peak_op"] == "fwd"
    assert [x["id"] for x in info["largest_tensors"]] == ["big", "w", "a", "x", "g"]
    assert info["largest_tensors"][0] == {"id": "big", "bytes": 2000, "kind": "optimizer_state"}
    assert "fits" not in info
    rc, out, _ = cli(["inspect", t, "--json", "--top", "2"])
    assert [x["id"] for x in json.loads(out)["largest_tensors"]] == ["big", "w"]


@pytest.mark.parametrize("hbm, fits", [(3900, True), (3899, False)])
def test_inspect_fits(tmp_path: Path, hbm: int, fits: bool) -> None:
    t, h = _inspect_files(tmp_path, hbm)
    rc, out, _ = cli(["inspect", t, "--hardware", h, "--json"])
    assert rc == 0
    info = json.loads(out)
    assert info["fits"] is fits and info["capacity"] == hbm and info["compute_tier"] == "HBM"
    rc, out, _ = cli(["inspect", t, "--hardware", h])
    assert rc == 0
    assert ("does NOT fit" in out) == (not fits)
    assert ("fits in HBM" in out) == fits


def test_inspect_human(tmp_path: Path) -> None:
    t, _ = _inspect_files(tmp_path, 1)
    rc, out, err = cli(["inspect", t])
    assert rc == 0 and err == ""
    assert "3 ops, 5 tensors" in out
    assert "bytes by kind:" in out and "optimizer_state" in out
    assert "compute 2.000 s" in out
    assert "no-offload peak: 3.81 KiB (during op 'fwd')" in out      # 3900 / 1024
    assert "largest tensors:" in out and out.index("big") < out.index("  w ")


def test_inspect_peak_matches_keep_schedule_validation(tmp_path: Path) -> None:
    """The peak `inspect` reports is exactly what `validate` needs for the keep-everything schedule."""
    from solver.formats import save_schedule
    from solver.plans import keep_schedule
    t = _write(tmp_path / "t.json", INSPECT_TRACE)
    h = _write(tmp_path / "h.json", {
        "format": "tierplan.hardware/1", "name": "box", "compute_tier": "HBM",
        "tiers": [{"name": "HBM", "capacity": 3900}, {"name": "DDR", "capacity": 10**6}],
        "links": [{"src": "DDR", "dst": "HBM", "bandwidth": 1000}, {"src": "HBM", "dst": "DDR", "bandwidth": 1000}]})
    s = str(tmp_path / "keep.json")
    save_schedule(s, keep_schedule(load_trace(t), load_hardware(h)))
    # big starts in DDR and is fetched at t=0 (2 s), so it sits in HBM as in the no-offload profile
    assert cli(["validate", t, h, s])[0] == 0
    rc, out, _ = cli(["validate", t, h, s, "--json", "--capacity", "HBM=3899"])
    assert rc == 1 and [e["code"] for e in json.loads(out)["errors"]] == ["capacity"]


# --- the shipped examples ---------------------------------------------------------------------------


def _examples() -> list[str]:
    files = [EXAMPLES / "trace.json", EXAMPLES / "hardware.json", EXAMPLES / "schedule.json"]
    if not all(f.is_file() for f in files):
        pytest.skip("instances/examples/ not written yet")
    return [str(f) for f in files]


def test_example_schedule_validates_through_the_console_entry_point() -> None:
    files = _examples()
    rc, out, err = cli_subprocess(["validate", *files, "--json"])
    assert rc == 0, out + err
    doc = json.loads(out)
    assert doc["valid"] is True and doc["errors"] == []


def test_example_schedule_offloads_and_prefetches() -> None:
    files = _examples()
    trace, hw, sched = load_trace(files[0]), load_hardware(files[1]), load_schedule(files[2])
    C = hw.compute_tier
    copies = [a for a in sched.actions if type(a).__name__ == "Copy"]
    assert any(a.src == C for a in copies), "no offload"
    assert any(a.dst == C for a in copies), "no prefetch"
    report = validate(trace, hw, sched)
    assert report.valid
    # the example needs its offloads: keeping everything resident would not fit
    assert trace.no_offload_peak > hw.capacity[C] or report.metrics.peak[C] < trace.no_offload_peak


def test_example_inspect() -> None:
    files = _examples()
    rc, out, err = cli(["inspect", files[0], "--hardware", files[1]])
    assert rc == 0, err
    assert "no-offload peak" in out
