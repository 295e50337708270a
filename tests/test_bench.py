"""``tierplan bench``: outputs of a sweep, the CSV schema, the regression check, failures recorded."""

from __future__ import annotations

import csv
import io
import pickle
import sys
from pathlib import Path

import pytest

from bench_support import run_cli, write_suite
from solver.bench.check import compare, compare_row, format_check
from solver.bench.planners import parse_methods
from solver.bench.rows import COLUMNS, Row, format_csv, parse_csv, read_csv, status_rank, write_csv
from solver.bench.summary import best_methods, geometric_mean_overhead, summary_markdown
from solver.bench.tasks import RunOptions, hard_limit, parse_budgets
from solver.errors import InputError

FAULTS = "solver.bench.faults"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TIERPLAN_CACHE", str(tmp_path_factory.getbasetemp() / "trace-cache"))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One bench run of the two-instance suite (keep, budgets 1 and 0.5), shared by the tests."""
    root = tmp_path_factory.mktemp("sweep")
    mp = pytest.MonkeyPatch()
    mp.setenv("TIERPLAN_CACHE", str(tmp_path_factory.getbasetemp() / "trace-cache"))
    suite = write_suite(root)
    out = root / "out"
    code, stdout, stderr = run_cli(["bench", str(suite), "--methods", "keep,k2=keep", "--time-limit", "10",
                                    "--jobs", "2", "--out", str(out), "--progress", "lines"])
    mp.undo()
    return {"code": code, "stderr": stderr, "suite": suite, "out": out, "csv": out / "two.csv"}


def check(sweep, baseline: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(["bench", str(sweep["suite"]), "--check", str(baseline), "--jobs", "2", "--progress", "none",
                    *extra])


# --- a sweep writes the CSV, the Markdown and the plots --------------------------------------


def test_sweep_writes_csv_markdown_and_plots(sweep):
    assert sweep["code"] == 0, sweep["stderr"]
    rows = read_csv(sweep["csv"])
    assert [(r.instance, r.budget, r.method) for r in rows] == [
        (i, b, m) for i in ("chain-6", "random-12") for b in ("1", "0.5") for m in ("keep", "k2")]
    for r in rows:
        assert r.ops and r.tensors and r.no_offload_peak and r.capacity and r.commit and r.versions and r.machine
        assert r.planner == "keep" and r.options and r.started and r.host and r.total_s is not None
    full = [r for r in rows if r.budget == "1"]
    assert all(r.status == "feasible" and r.valid and r.makespan > 0 and r.overhead is not None for r in full)
    assert all(r.bound is not None and 0 <= r.gap <= 1 and r.peak["HBM"] <= r.capacity for r in full)
    half = [r for r in rows if r.budget == "0.5"]
    assert all(r.status == "infeasible" and r.valid is None and r.makespan is None and r.message for r in half)
    assert all(r.capacity * 2 >= r.no_offload_peak for r in half)

    md = (sweep["out"] / "two.md").read_text()
    assert "# Benchmark results: suite `two`" in md and "tierplan bench" in md
    assert "| chain-6 |" in md and "| random-12 |" in md and "**" in md
    assert "geo-mean overhead" in md and "wins" in md and "failures" in md
    pngs = sorted(p.name for p in (sweep["out"] / "two").glob("*.png"))
    assert pngs == ["chain-6.png", "random-12.png"]
    assert all((sweep["out"] / "two" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert "[8/8]" in sweep["stderr"]


def test_csv_round_trips(sweep):
    text = sweep["csv"].read_text()
    rows = read_csv(sweep["csv"])
    assert format_csv(rows) == text
    assert parse_csv(format_csv(rows)) == rows
    header = next(csv.reader(io.StringIO(text)))
    assert header[:3] == ["suite", "instance", "hardware"] and "peak_HBM" in header and "peak_DDR" in header
    for col in ("makespan", "overhead", "bound", "gap", "bytes_moved", "copies", "recompute_time", "wall_s",
                "commit", "versions", "machine", "host", "status", "capacity", "budget", "ops", "tensors"):
        assert col in header


def test_row_csv_round_trip_of_every_kind_of_value():
    rows = [Row(suite="s", instance="a,b \"q\"", budget="16.00GiB", method="m", status="invalid", valid=False,
                makespan=1e-9 / 3, overhead=-0.0, peak={"HBM": 2**40 + 1, "X": 0}, message="line1\nline2"),
            Row(instance="i", budget="1", method="m", status="timeout", wall_s=2.5, peak={"DDR": 5})]
    back = parse_csv(format_csv(rows))
    assert back == rows
    assert pickle.loads(pickle.dumps(rows[0])) == rows[0]
    assert back[0].peak == {"HBM": 2**40 + 1, "X": 0} and back[1].peak == {"DDR": 5}


def test_parse_csv_reports_bad_cells():
    text = format_csv([Row(instance="i", budget="1", method="m", status="feasible", makespan=1.0)])
    bad = text.replace(",1.0,", ",fast,", 1)
    with pytest.raises(InputError) as err:
        parse_csv(bad, "base.csv")
    assert "base.csv: line 2, column makespan" in str(err.value)
    with pytest.raises(InputError, match="not a bench results file"):
        parse_csv("a,b\n1,2\n", "x.csv")
    assert COLUMNS[0] == "suite"


# --- the regression check ----------------------------------------------------------------------


def test_check_passes_against_its_own_output(sweep):
    code, out, err = check(sweep, sweep["csv"])
    assert code == 0, out + err
    assert "8 runs compared, no difference" in out and "PASS" in out


def test_check_fails_when_the_baseline_is_better_than_reality(sweep, tmp_path):
    rows = read_csv(sweep["csv"])
    target = next(r for r in rows if r.instance == "random-12" and r.budget == "1" and r.method == "keep")
    better = [r.with_(makespan=r.makespan * 0.9) if r is target else r for r in rows]
    base = tmp_path / "base.csv"
    write_csv(base, better)
    code, out, _ = check(sweep, base)
    assert code == 1
    line = next(ln for ln in out.splitlines() if ln.startswith("random-12"))
    assert "REGRESSION" in line and "makespan +11.111%" in line and "keep" in line
    assert "FAIL: 1 regression(s)" in out


def test_check_reports_improvements_and_changes_within_tolerance(sweep, tmp_path):
    rows = read_csv(sweep["csv"])
    changed = [r.with_(makespan=r.makespan * 1.5) if r.budget == "1" and r.method == "keep" else
               r.with_(makespan=r.makespan * 0.999) if r.budget == "1" else r for r in rows]
    base = tmp_path / "base.csv"
    write_csv(base, changed)
    code, out, _ = check(sweep, base)
    assert code == 0, out
    assert out.count("better") == 2 and out.count("worse within tolerance") == 2 and "PASS" in out
    code, out, _ = check(sweep, base, "--tolerance", "0")
    assert code == 1 and out.count("REGRESSION") == 2


def test_check_fails_when_a_schedule_is_made_invalid(sweep):
    # the baseline's method k2 now runs a planner whose schedule misses an op
    code, out, _ = check(sweep, sweep["csv"], "--methods", f"keep,k2={FAULTS}:invalid")
    assert code == 1
    bad = [ln for ln in out.splitlines() if "REGRESSION" in ln]
    assert len(bad) == 2 and all("k2" in ln and "invalid schedule (order:1" in ln for ln in bad)
    assert all("INVALID" in ln for ln in bad)


def test_check_fails_when_a_status_is_downgraded(sweep, tmp_path):
    rows = read_csv(sweep["csv"])
    base = tmp_path / "base.csv"
    write_csv(base, [r.with_(status="optimal") if r.status == "feasible" and r.instance == "chain-6"
                     and r.method == "keep" else r for r in rows])
    code, out, _ = check(sweep, base)
    assert code == 1
    assert "status optimal -> feasible" in out and out.count("REGRESSION") == 1


def test_check_fails_when_a_run_is_missing_or_a_method_fails(sweep, tmp_path):
    rows = read_csv(sweep["csv"])
    base = tmp_path / "base.csv"
    write_csv(base, rows + [rows[0].with_(budget="0.75")])
    code, out, _ = check(sweep, base)
    assert code == 1 and "missing" in out
    code, out, _ = check(sweep, sweep["csv"], "--methods", f"keep,k2={FAULTS}:raise_error", "--budgets", "1")
    assert code == 1 and "status feasible -> error" in out


def test_compare_rules():
    b = Row(instance="i", budget="1", method="m", status="feasible", valid=True, makespan=2.0)
    assert compare_row(b, b) is None
    assert compare_row(b, b.with_(makespan=2.0 * 1.004)).verdict == "worse within tolerance"
    assert compare_row(b, b.with_(makespan=2.0 * 1.006)).regression
    assert compare_row(b, b.with_(status="optimal")).verdict == "better"
    assert compare_row(b, b.with_(status="timeout", valid=None, makespan=None)).regression
    fail = b.with_(status="infeasible", valid=None, makespan=None)
    assert compare_row(fail, fail.with_(status="timeout")).verdict == "changed"
    assert compare_row(fail, b).verdict == "better"
    res = compare([b], [b, b.with_(instance="j", valid=False, status="invalid")])
    assert res.failed and "invalid schedule" in format_check(res)
    assert [status_rank(s) for s in ("optimal", "feasible", "infeasible", "worker-died")] == [0, 1, 2, 2]


def test_runs_are_deterministic(sweep, tmp_path):
    out = tmp_path / "again"
    code, _, err = run_cli(["bench", str(sweep["suite"]), "--methods", "keep,k2=keep", "--time-limit", "10",
                            "--out", str(out), "--progress", "none", "--no-plots"])
    assert code == 0, err
    def results(rows):   # the code version may move between the two sweeps in a working tree being edited
        return [{k: v for k, v in r.stable().items() if k != "commit"} for r in rows]
    assert results(read_csv(out / "two.csv")) == results(read_csv(sweep["csv"]))


# --- failures are recorded and the sweep goes on -------------------------------------------------


def test_crash_timeout_and_errors_are_recorded_and_the_sweep_completes(sweep, tmp_path):
    out = tmp_path / "faulty"
    methods = f"keep,{FAULTS}:crash,{FAULTS}:hang,slow={FAULTS}:oversleep,{FAULTS}:raise_error"
    code, _, err = run_cli(["bench", str(sweep["suite"]), "--methods", methods, "--budgets", "1",
                            "--instances", "random-12", "--time-limit", "0.2", "--jobs", "2", "--out", str(out),
                            "--progress", "lines", "--no-plots"])
    assert code == 0, err
    rows = {r.method: r for r in read_csv(out / "two.csv")}
    assert rows["keep"].status == "feasible" and rows["keep"].valid
    assert rows[f"{FAULTS}:crash"].status == "crashed" and "SIGKILL" in rows[f"{FAULTS}:crash"].message
    for m in (f"{FAULTS}:hang", "slow"):
        assert rows[m].status == "timeout", rows[m]
        assert rows[m].wall_s >= hard_limit(0.2) and f"killed after {hard_limit(0.2):g} s" in rows[m].message
        assert rows[m].ops == 12 and rows[m].capacity
    assert rows[f"{FAULTS}:raise_error"].status == "error" and "RuntimeError" in rows[f"{FAULTS}:raise_error"].message
    md = (out / "two.md").read_text()
    assert "## Failures" in md and "crashed" in md and "timeout" in md


# --- options and bad input ---------------------------------------------------------------------


def test_bad_options_exit_2(sweep):
    for argv, needle in (
        (["--methods", "nope"], "unknown method 'nope'"),
        (["--methods", "no.such.module:plan"], "cannot load planner"),
        (["--methods", "keep,keep"], "given twice"),
        (["--budgets", "0"], "must be > 0"),
        (["--budgets", "lots"], "expected a fraction or a size"),
        (["--instances", "nope"], "no instance 'nope'"),
        (["--jobs", "0"], "must be >= 1"),
        (["--check", "/nonexistent.csv"], "cannot read file"),
        (["--scheduler", "local:0"], "local:N"),
    ):
        code, _, err = run_cli(["bench", str(sweep["suite"]), *argv, "--progress", "none"])
        assert code == 2, (argv, err)
        assert needle in err and "Traceback" not in err, (argv, err)
    code, _, err = run_cli(["bench", "no-such-suite"])
    assert code == 2 and "unknown suite" in err


def test_parsers():
    assert [b.label for b in parse_budgets("1,0.7, 16GiB")] == ["1", "0.7", "16.00GiB"]
    specs = parse_methods("keep,x=solver.bench.faults:invalid")
    assert [(s.label, s.planner, s.is_path) for s in specs] == [
        ("keep", "keep", False), ("x", "solver.bench.faults:invalid", True)]
    opts = RunOptions(time_limit=3, extra=(("window", 4),))
    assert RunOptions.from_canonical(opts.canonical()) == opts


def test_summary_bold_best_wins_and_geomean():
    def r(inst, m, ms, status="feasible"):
        ok = status == "feasible"
        return Row(instance=inst, budget="1", method=m, status=status, valid=True if ok else None,
                   makespan=ms if ok else None, overhead=ms - 1 if ok else None, gap=0.0 if ok else None)
    rows = [r("a", "x", 1.1), r("a", "y", 1.2), r("b", "x", 1.5), r("b", "y", 1.5), r("c", "x", 0, "timeout"),
            r("c", "y", 1.0)]
    md = summary_markdown(rows, "s")
    assert "| a |  | 1 |  | **10.00%** (gap 0.00%) | 20.00% (gap 0.00%) |" in md
    assert "| b |  | 1 |  | **50.00%** (gap 0.00%) | **50.00%** (gap 0.00%) |" in md
    assert "| c |  | 1 |  | timeout | **0.00%** (gap 0.00%) |" in md
    assert "| x | 3 | 2 | 1 | 2 |" in md and "| y | 3 | 3 | 0 | 2 |" in md
    assert best_methods({"x": rows[0], "y": rows[1]}) == {"x"}
    assert geometric_mean_overhead([0.0, 0.21]) == pytest.approx(0.1)


def test_scheduler_without_dask_says_how_to_install(sweep, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)   # makes `import distributed` fail
    code, _, err = run_cli(["bench", str(sweep["suite"]), "--methods", "keep", "--scheduler", "local:2",
                            "--progress", "none"])
    assert code == 2 and "pip install 'tierplan[dask]'" in err and "Traceback" not in err
