"""``tierplan solve`` and ``tierplan methods``: outputs, exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foundation_helpers import cli, cli_subprocess
from solver.fileio import write_json_atomic
from solver.formats import load_hardware, load_schedule, load_trace
from solver.methods import method_names
from solver.timing import validate

EXAMPLES = Path(__file__).resolve().parent.parent / "instances" / "examples"
TRACE = str(EXAMPLES / "trace.json")
HW = str(EXAMPLES / "hardware.json")


def test_methods_lists_one_line_each():
    rc, out, err = cli(["methods"])
    assert rc == 0 and not err
    lines = out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == list(method_names())
    rc, out, _ = cli(["methods", "--json"])
    assert rc == 0 and [m["name"] for m in json.loads(out)] == list(method_names())


def test_solve_writes_a_valid_schedule_and_prints_the_summary(tmp_path):
    path = tmp_path / "s.json"
    rc, out, err = cli(["solve", TRACE, "--hardware", HW, "--budget", "0.7", "-o", str(path)])
    assert rc == 0, err
    for words in ("greedy: feasible", "makespan", "overhead", "lower bound", "gap", "peak HBM", "HBM->DDR",
                  "wall", str(path)):
        assert words in out
    sched = load_schedule(path)
    trace, hw = load_trace(TRACE), load_hardware(HW)
    rep = validate(trace, hw, sched)             # the file carries the capacity it was made for
    assert rep.valid and sched.capacity["HBM"] == -(-7 * trace.no_offload_peak // 10)
    assert sched.solver["method"] == "greedy" and sched.solver["objective"] == rep.metrics.makespan
    rc, out, _ = cli(["validate", TRACE, HW, str(path)])
    assert rc == 0 and "VALID" in out


@pytest.mark.parametrize("method", list(method_names()))
def test_every_method_from_the_cli(method, tmp_path):
    rc, out, err = cli(["solve", TRACE, "--hardware", HW, "--method", method, "--budget", "1",
                      "--capacity", "HBM=1GiB", "--json"])   # a budget past the device needs the raise
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["method"] == method and doc["status"] in ("feasible", "optimal") and doc["valid"] is True
    assert doc["bound"] <= doc["metrics"]["makespan"] and doc["schedule_file"] is None


def test_json_output(tmp_path):
    path = tmp_path / "s.json.gz"
    rc, out, _ = cli(["solve", TRACE, "--hardware", HW, "--budget", "0.8", "--json", "-o", str(path)])
    assert rc == 0
    doc = json.loads(out)
    for key in ("status", "metrics", "bound", "bounds", "gap", "wall_s", "capacity", "schedule_file"):
        assert key in doc
    assert doc["schedule_file"] == str(path) and path.is_file()
    assert doc["metrics"]["overhead"] >= 0 and set(doc["metrics"]["peak"]) == {"HBM", "DDR"}


def test_infeasible_exits_1_names_the_op_and_writes_nothing(tmp_path):
    path = tmp_path / "never.json"
    rc, out, err = cli(["solve", TRACE, "--hardware", HW, "--budget", "0.5", "-o", str(path)])
    assert rc == 1
    assert "infeasible" in out and "op 'fwd1'" in out and "150994944 bytes" in out
    assert not path.exists() and not list(tmp_path.iterdir())
    rc, out, _ = cli(["solve", TRACE, "--hardware", HW, "--budget", "0.5", "--json"])
    assert rc == 1 and json.loads(out)["status"] == "infeasible"


def test_infeasible_capacity_override():
    rc, out, _ = cli(["solve", TRACE, "--hardware", HW, "--capacity", "HBM=100MiB", "--method", "keep"])
    assert rc == 1 and "keep: infeasible" in out


@pytest.mark.parametrize("argv,words", [
    (["--method", "magic"], "unknown method 'magic'; valid methods: greedy"),
    (["--budget", "0"], "--budget"),
    (["--budget", "-1"], "--budget"),
    (["--capacity", "NVM=1GiB"], "unknown tier 'NVM'"),
    (["--capacity", "HBM"], "TIER=SIZE"),
    (["--capacity", "HBM=100MiB", "--budget", "0.5"], "more than the device"),
    (["--budget", "1"], "more than the device's 248.00 MiB"),
    (["--time-limit", "0"], "--time-limit"),
    (["--threads", "0"], "--threads"),
    (["--option", "window"], "KEY=VALUE"),
])
def test_bad_options_exit_2_with_a_message(argv, words):
    rc, out, err = cli(["solve", TRACE, "--hardware", HW, *argv])
    assert rc == 2 and words in err and "Traceback" not in err


def test_unreadable_input_exits_2(tmp_path):
    rc, _, err = cli(["solve", str(tmp_path / "missing.json"), "--hardware", HW])
    assert rc == 2 and "missing.json" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    rc, _, err = cli(["solve", TRACE, "--hardware", str(bad)])
    assert rc == 2 and "malformed JSON" in err and "Traceback" not in err
    rc, _, err = cli(["solve", TRACE])                        # --hardware is required
    assert rc == 2


def test_trace_naming_a_tier_the_hardware_lacks(tmp_path):
    doc = json.loads(Path(TRACE).read_text())
    doc["tensors"][1]["initial_tier"] = "NVM"
    path = tmp_path / "t.json"
    write_json_atomic(path, doc)
    rc, _, err = cli(["solve", str(path), "--hardware", HW])
    assert rc == 2 and "NVM" in err


def test_method_options_reach_the_planner():
    rc, out, _ = cli(["solve", TRACE, "--hardware", HW, "--method", "belady", "--option", "window=0",
                      "--budget", "0.8", "--json"])
    assert rc == 0 and json.loads(out)["status"] == "feasible"
    rc, out, _ = cli(["solve", TRACE, "--hardware", HW, "--no-recompute", "--budget", "0.8", "--json"])
    assert rc == 0 and json.loads(out)["metrics"]["recompute_time"] == 0.0


def test_console_entry_point(tmp_path):
    path = tmp_path / "s.json"
    rc, out, err = cli_subprocess(["solve", TRACE, "--hardware", HW, "--budget", "0.7", "-o", str(path)])
    assert rc == 0 and "feasible" in out and path.is_file(), err
