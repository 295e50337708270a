"""Resumable sweeps on the local pool: rows written as runs finish, Ctrl-C, ``--resume``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from bench_support import run_cli, write_suite
from solver.bench.local import LocalPool
from solver.bench.planners import parse_methods
from solver.bench.rows import read_csv
from solver.bench.sweep import run_sweep
from solver.bench.tasks import RunOptions, build_tasks
from solver.suites import load_suite


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TIERPLAN_CACHE", str(tmp_path_factory.getbasetemp() / "trace-cache"))


class Stop(KeyboardInterrupt):
    pass


def interrupted_then_resumed(backend_factory, tmp_path):
    """Run the two-instance suite uninterrupted; then interrupted after 3 rows and resumed."""
    suite = load_suite(write_suite(tmp_path))
    tasks = build_tasks(suite, parse_methods("keep,k2=keep"), RunOptions(time_limit=10), commit="test")
    full = tmp_path / "full.csv"
    with backend_factory() as b:
        run_sweep(tasks, b, csv_path=full)
    part = tmp_path / "part.csv"
    seen = []

    def stop_after_three(row):
        seen.append(row)
        if len(seen) == 3:
            raise Stop

    with backend_factory() as b:
        with pytest.raises(Stop):
            run_sweep(tasks, b, csv_path=part, on_row=stop_after_three)
    partial = read_csv(part)
    assert len(partial) == 3
    with backend_factory() as b:
        res = run_sweep(tasks, b, csv_path=part, previous=partial, resume=True)
    assert (res.ran, res.skipped) == (5, 3)
    assert [r.stable() for r in read_csv(part)] == [r.stable() for r in read_csv(full)]
    kept = {r.key: r for r in read_csv(part)}
    assert all(kept[r.key].started == r.started for r in partial)   # resumed rows were not rerun


def test_resume_after_interrupt_runs_only_missing_rows(tmp_path):
    interrupted_then_resumed(lambda: LocalPool(2), tmp_path)


def test_resume_reruns_rows_of_other_options_or_code(tmp_path):
    suite = load_suite(write_suite(tmp_path))
    csv_path = tmp_path / "r.csv"
    tasks = build_tasks(suite, parse_methods("keep"), RunOptions(time_limit=10), instances=["chain-6"], commit="a")
    with LocalPool(2) as b:
        first = run_sweep(tasks, b, csv_path=csv_path)
    for changed in (build_tasks(suite, parse_methods("keep"), RunOptions(time_limit=11), instances=["chain-6"],
                                commit="a"),
                    build_tasks(suite, parse_methods("keep"), RunOptions(time_limit=10), instances=["chain-6"],
                                commit="b")):
        with LocalPool(2) as b:
            res = run_sweep(changed, b, csv_path=csv_path, previous=first.rows, resume=True)
        assert (res.ran, res.skipped) == (2, 0)


def test_cli_resume_runs_only_missing_rows(tmp_path):
    suite = write_suite(tmp_path)
    out = tmp_path / "out"
    args = ["bench", str(suite), "--methods", "keep", "--out", str(out), "--no-plots", "--progress", "lines"]
    code, _, err = run_cli([*args, "--instances", "chain-6"])
    assert code == 0, err
    code, _, err = run_cli([*args, "--resume"])
    assert code == 0, err
    assert "2 run(s) done, 2 skipped" in err
    assert [(r.instance, r.budget) for r in read_csv(out / "two.csv")] == [
        ("chain-6", "1"), ("chain-6", "0.5"), ("random-12", "1"), ("random-12", "0.5")]


def test_ctrl_c_keeps_finished_rows_and_resume_completes(tmp_path):
    suite = write_suite(tmp_path)
    out = tmp_path / "out"
    csv_path = out / "two.csv"
    argv = [sys.executable, "-m", "solver.cli", "bench", str(suite), "--methods",
            "slow=solver.bench.faults:slow_keep", "--option", "sleep=0.6", "--out", str(out), "--no-plots",
            "--progress", "lines"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (csv_path.is_file() and len(read_csv(csv_path)) >= 1):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    done = read_csv(csv_path)
    assert 1 <= len(done) < 4
    # no run's process is left behind
    left = subprocess.run(["pgrep", "-f", "solver.bench.child"], capture_output=True, text=True).stdout.split()
    assert not [p for p in left if _parent(p) == proc.pid]
    code, _, err = run_cli([*argv[3:], "--resume"])
    assert code == 0, err
    assert f"{4 - len(done)} run(s) done, {len(done)} skipped" in err
    rows = read_csv(csv_path)
    assert len(rows) == 4 and all(r.planner == "solver.bench.faults:slow_keep" for r in rows)


def _parent(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1
