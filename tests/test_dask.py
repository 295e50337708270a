"""``tierplan bench --scheduler``: the same rows on a local Dask cluster, worker deaths and timeouts
recorded, resumable sweeps. Skipped when Dask is not installed (``pip install 'tierplan[dask]'``)."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from bench_support import run_cli, write_suite   # noqa: E402
from test_bench_resume import interrupted_then_resumed   # noqa: E402

from solver.bench.cluster import DaskBackend   # noqa: E402
from solver.bench.local import LocalPool   # noqa: E402
from solver.bench.planners import parse_methods   # noqa: E402
from solver.bench.rows import read_csv   # noqa: E402
from solver.bench.sweep import run_sweep   # noqa: E402
from solver.bench.tasks import RunOptions, build_tasks, parse_budgets   # noqa: E402
from solver.suites import load_suite   # noqa: E402

FAULTS = "solver.bench.faults"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TIERPLAN_CACHE", str(tmp_path_factory.getbasetemp() / "trace-cache"))


#: Methods of the comparison (two of the heuristics keep the test within seconds).
CI_METHODS = "greedy,belady"


def test_ci_suite_on_dask_gives_the_rows_of_the_process_pool(tmp_path):
    tasks = build_tasks(load_suite("ci"), parse_methods(CI_METHODS), RunOptions(time_limit=20), commit="t")
    with LocalPool(2) as pool:
        local = run_sweep(tasks, pool, csv_path=tmp_path / "local.csv").rows
    with DaskBackend("local:2") as cluster:
        dask = run_sweep(tasks, cluster, csv_path=tmp_path / "dask.csv").rows
    assert len(local) == len(tasks)
    assert [r.stable() for r in dask] == [r.stable() for r in local]
    assert any(r.solved for r in local)


def test_worker_death_and_timeout_are_recorded_and_the_sweep_completes(tmp_path):
    tasks = build_tasks(load_suite("ci"), parse_methods(f"keep,{FAULTS}:kill_worker,{FAULTS}:hang"),
                        RunOptions(time_limit=0.3), budgets=parse_budgets("1"),
                        instances=["random-30", "chain-12-skip3"])
    with DaskBackend("local:2") as cluster:
        rows = run_sweep(tasks, cluster, csv_path=tmp_path / "r.csv").rows
    status = {(r.instance, r.method): r.status for r in rows}
    assert status == {(i, m): s for i in ("chain-12-skip3", "random-30")
                      for m, s in (("keep", "feasible"), (f"{FAULTS}:kill_worker", "worker-died"),
                                   (f"{FAULTS}:hang", "timeout"))}
    assert [r.key for r in read_csv(tmp_path / "r.csv")] == [r.key for r in rows]


def test_resume_after_interrupt_on_dask(tmp_path):
    interrupted_then_resumed(lambda: DaskBackend("local:2"), tmp_path)


def test_cli_scheduler_local(tmp_path):
    suite = write_suite(tmp_path)
    out = tmp_path / "out"
    code, _, err = run_cli(["bench", str(suite), "--methods", "keep", "--scheduler", "local:2", "--dashboard",
                            "--out", str(out), "--no-plots", "--progress", "lines"])
    assert code == 0, err
    assert "Dask dashboard: http" in err
    assert len(read_csv(out / "two.csv")) == 4
    code, out_text, _ = run_cli(["bench", str(suite), "--check", str(out / "two.csv"), "--scheduler", "local:2",
                                 "--progress", "none"])
    assert code == 0 and "PASS" in out_text
