"""`tierplan solve` flags of the exact methods: objectives, limits, clock, solver log, applicability.

Every figure the CLI prints or puts in its JSON is checked against an independent computation:
the written schedule validated again with :func:`solver.timing.validate`, bytes and capacities
summed from the trace, limits recomputed from the compute time or another run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foundation_helpers import cli
from solver.formats import load_hardware, load_schedule, load_trace
from solver.methods import Instance, ObjectiveResult, PlanResult, SolveOptions
from solver.model import Schedule
from solver.solve import make_instance, solve_with
from solver.timing import validate
from solver.units import format_bytes, format_time

ROOT = Path(__file__).resolve().parents[1]
TRACE = str(ROOT / "instances" / "examples" / "trace.json")
HW = str(ROOT / "instances" / "hardware" / "h100-pcie.toml")
LIMIT = "10"   # seconds per exact solve; the example solves to optimality in well under one


def _solve(*argv: str) -> tuple[int, dict | None, str, str]:
    """Run ``tierplan solve TRACE -H HW ARGV --json``: (exit status, JSON or None, stdout, stderr)."""
    rc, out, err = cli(["solve", TRACE, "--hardware", HW, "--time-limit", LIMIT, *argv, "--json"])
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    return rc, doc, out, err


def _instance():
    return load_trace(TRACE), load_hardware(HW)


def _op_need(trace) -> int:
    """The most bytes one op holds at once (its reads, writes and workspace), from the trace alone."""
    need = 0
    for op in trace.ops:
        ids = set(op.inputs) | set(op.outputs) | set(op.updates)
        need = max(need, sum(trace.tensor(t).bytes for t in ids) + op.workspace)
    return need


# ---- --write-model ------------------------------------------------------------------------------

def test_write_model_exports_the_milp(tmp_path: Path) -> None:
    model = tmp_path / "model.lp"
    rc, doc, _, _ = _solve("--budget", "0.7", "--method", "milp", "--write-model", str(model))
    assert rc == 0 and doc["status"] in ("optimal", "feasible")
    assert model.exists() and "minimize" in model.read_text().lower()


def test_unknown_objective_is_refused() -> None:
    rc, _, _, err = _solve("--method", "milp", "--objective", "fastest")
    assert rc == 2 and "--objective" in err and "Traceback" not in err


# ---- --objective min-memory ---------------------------------------------------------------------

@pytest.mark.parametrize("method", ["milp", "milp-cbc", "cpsat", "auto"])
def test_min_memory_reports_the_capacity_the_written_schedule_needs(method: str, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    rc, doc, _, err = _solve("--method", method, "--objective", "min-memory", "--max-overhead", "0.05",
                             "-o", str(path))
    assert rc == 0, err
    trace, hw = _instance()
    goal = doc["objective"]
    assert goal["kind"] == "min-memory" and goal["unit"] == "B" and goal["tier"] == "HBM"
    assert goal["max_overhead"] == 0.05 and goal["limit_source"] == "max_overhead"
    assert goal["makespan_limit"] == pytest.approx(1.05 * trace.compute_time)
    cap = goal["value"]
    assert isinstance(cap, int)
    # the file records the capacity found, and the validator checks the schedule against it
    sched = load_schedule(path)
    assert sched.capacity["HBM"] == cap == doc["capacity"]["HBM"]
    rep = validate(trace, hw, sched)
    assert rep.valid and rep.capacity["HBM"] == cap
    assert rep.metrics.peak["HBM"] == cap                     # tight: one byte less does not hold it
    assert not validate(trace, hw, sched, {"HBM": cap - 1}).valid
    assert rep.metrics.makespan <= 1.05 * trace.compute_time * (1 + 1e-9)
    assert cap < trace.no_offload_peak                        # offloading saves memory here
    # the bound is a capacity in bytes (not a makespan): between what one op needs and the value
    assert _op_need(trace) <= goal["bound"] <= cap
    if doc["status"] == "optimal":
        assert goal["bound"] == cap
    assert sched.solver["objective_result"]["value"] == cap


def test_min_memory_summary_prints_the_capacity_and_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    rc, out, err = cli(["solve", TRACE, "--hardware", HW, "--method", "cpsat", "--objective", "min-memory",
                        "--max-overhead", "0.2", "--resolution", "10us", "--time-limit", LIMIT, "-o", str(path)])
    assert rc == 0, err
    trace, hw = _instance()
    sched = load_schedule(path)
    rep = validate(trace, hw, sched)
    cap = sched.capacity["HBM"]
    assert rep.valid and rep.metrics.peak["HBM"] == cap
    assert f"min HBM capacity: {format_bytes(cap)} ({cap} B)" in out
    assert f"makespan at most {format_time(1.2 * trace.compute_time)} = (1 + 0.2) x compute" in out
    assert ("proven optimal" in out) == out.startswith("cpsat: optimal")
    assert f"peak HBM: {format_bytes(cap)} of {format_bytes(cap)}" in out


def test_min_memory_with_more_overhead_needs_no_more_memory() -> None:
    caps = []
    for ov in ("0", "0.05", "0.5"):
        rc, doc, _, err = _solve("--method", "milp", "--objective", "min-memory", "--max-overhead", ov)
        assert rc == 0, err
        caps.append(doc["objective"]["value"])
        assert doc["metrics"]["makespan"] <= (1 + float(ov)) * doc["metrics"]["compute_time"] * (1 + 1e-9)
    assert caps[0] >= caps[1] >= caps[2]


# ---- --objective min-bytes, --makespan ----------------------------------------------------------

def _moved(trace, hw, path: Path) -> tuple[int, float]:
    rep = validate(trace, hw, load_schedule(path))
    assert rep.valid
    return int(sum(rep.metrics.bytes_moved.values())), rep.metrics.makespan


def test_min_bytes_defaults_to_the_warm_start_makespan(tmp_path: Path) -> None:
    trace, hw = _instance()
    warm = []
    for heuristic in ("greedy", "keep"):      # the warm start is the better of the two
        rc, doc, _, _ = _solve("--budget", "0.7", "--method", heuristic)
        if rc == 0:
            warm.append(doc["metrics"]["makespan"])
    path = tmp_path / "s.json"
    rc, doc, _, err = _solve("--budget", "0.7", "--method", "milp", "--objective", "min-bytes", "-o", str(path))
    assert rc == 0, err
    goal = doc["objective"]
    assert goal["kind"] == "min-bytes" and goal["unit"] == "B" and goal["limit_source"] == "warm start"
    assert goal["makespan_limit"] == pytest.approx(min(warm))
    moved, makespan = _moved(trace, hw, path)
    assert goal["value"] == moved and makespan <= goal["makespan_limit"] * (1 + 1e-9)
    assert goal["bound"] <= moved
    rc, out, _ = cli(["solve", TRACE, "--hardware", HW, "--budget", "0.7", "--method", "milp", "--objective",
                      "min-bytes", "--time-limit", LIMIT])
    assert "the warm start's makespan; set it with --makespan" in out
    assert f"bytes moved: {format_bytes(moved)} ({moved} B)" in out


@pytest.mark.parametrize("method,clock", [("milp", []), ("cpsat", ["--resolution", "10us"])])
def test_min_bytes_at_a_given_makespan(method: str, clock: list[str], tmp_path: Path) -> None:
    trace, hw = _instance()
    rc, greedy, _, _ = _solve("--budget", "0.7", "--method", "greedy")
    assert rc == 0
    greedy_bytes = sum(greedy["metrics"]["bytes_moved"].values())
    limit_ms = 1000 * greedy["metrics"]["makespan"] * 1.01     # greedy's schedule keeps this limit
    path = tmp_path / "s.json"
    rc, doc, _, err = _solve("--budget", "0.7", "--method", method, *clock, "--objective", "min-bytes",
                             "--makespan", f"{limit_ms:.6f}ms", "-o", str(path))
    assert rc == 0, err
    goal = doc["objective"]
    assert goal["limit_source"] == "makespan" and goal["makespan_limit"] == pytest.approx(limit_ms / 1000)
    moved, makespan = _moved(trace, hw, path)
    assert goal["value"] == moved <= greedy_bytes
    assert makespan <= limit_ms / 1000 * (1 + 1e-9)
    if doc["status"] == "optimal":
        assert goal["bound"] == moved
    if method == "milp":    # a generous limit never needs more bytes (same model, larger space)
        rc, loose, _, _ = _solve("--budget", "0.7", "--method", method, "--objective", "min-bytes",
                                 "--makespan", "1s")
        assert rc == 0 and loose["objective"]["value"] <= moved


def test_min_bytes_below_the_compute_time_is_infeasible() -> None:
    trace, _ = _instance()
    below = 0.9 * trace.compute_time
    rc, doc, _, _ = _solve("--budget", "0.7", "--method", "milp", "--objective", "min-bytes",
                           "--makespan", f"{below * 1000:.6f}ms")
    assert rc == 1 and doc["status"] == "infeasible" and doc["metrics"] is None
    assert doc["objective"]["value"] is None
    assert doc["objective"]["makespan_limit"] == pytest.approx(below)
    assert format_time(trace.compute_time) in doc["message"]
    rc, out, _ = cli(["solve", TRACE, "--hardware", HW, "--budget", "0.7", "--method", "milp", "--objective",
                      "min-bytes", "--makespan", f"{below * 1000:.6f}ms", "--time-limit", LIMIT])
    assert rc == 1 and out.startswith("milp: infeasible") and "makespan at most" in out


@pytest.mark.parametrize("value,words", [("-1ms", "positive"), ("0", "positive"), ("3parsec", "unknown time unit")])
def test_bad_makespan_exits_2(value: str, words: str) -> None:
    rc, _, _, err = _solve("--method", "milp", "--objective", "min-bytes", f"--makespan={value}")
    assert rc == 2 and "--makespan" in err and words in err and "Traceback" not in err


# ---- --resolution -------------------------------------------------------------------------------

def test_resolution_is_used_and_reported(tmp_path: Path) -> None:
    trace, hw = _instance()
    path = tmp_path / "s.json"
    rc, doc, _, err = _solve("--budget", "0.7", "--method", "cpsat", "--resolution", "100us", "-o", str(path))
    assert rc == 0, err
    clock = doc["resolution"]
    assert clock["source"] == "given" and clock["seconds"] == pytest.approx(1e-4)
    # every op lasts a whole number of 100 us ticks; the copies (bytes / bandwidth) do not
    assert all(abs(op.duration / 1e-4 - round(op.duration / 1e-4)) < 1e-6 for op in trace.ops)
    assert clock["exact"] is False
    assert validate(trace, hw, load_schedule(path)).valid    # rounded-up durations keep it valid
    rc, out, _ = cli(["solve", TRACE, "--hardware", HW, "--budget", "0.7", "--method", "cpsat",
                      "--resolution", "100us", "--time-limit", LIMIT])
    assert "CP-SAT clock: 100.000 us per tick (--resolution; durations rounded up to whole ticks)" in out


def test_default_resolution_is_reported_for_cpsat_only() -> None:
    rc, doc, _, _ = _solve("--budget", "0.7", "--method", "cpsat")
    assert rc == 0 and doc["resolution"]["source"] in ("exact", "horizon") and doc["resolution"]["seconds"] > 0
    rc, doc, _, _ = _solve("--budget", "0.7", "--method", "milp")
    assert rc == 0 and doc["resolution"] is None


def test_a_coarse_clock_is_never_optimistic(tmp_path: Path) -> None:
    trace, hw = _instance()
    fine, coarse = tmp_path / "fine.json", tmp_path / "coarse.json"
    assert _solve("--budget", "0.7", "--method", "cpsat", "-o", str(fine))[0] == 0
    rc, doc, _, _ = _solve("--budget", "0.7", "--method", "cpsat", "--resolution", "1ms", "-o", str(coarse))
    assert rc == 0 and doc["resolution"]["seconds"] == pytest.approx(1e-3)
    rep = validate(trace, hw, load_schedule(coarse))
    assert rep.valid and rep.metrics.makespan >= validate(trace, hw, load_schedule(fine)).metrics.makespan - 1e-12
    assert doc["bound"] <= rep.metrics.makespan * (1 + 1e-9)


@pytest.mark.parametrize("value,words", [("0", "positive"), ("1e-15", "10^10"), ("1 fortnight", "unit")])
def test_bad_resolution_exits_2(value: str, words: str) -> None:
    rc, _, _, err = _solve("--method", "cpsat", f"--resolution={value}")
    assert rc == 2 and "--resolution" in err and words in err and "Traceback" not in err


# ---- --solver-log -------------------------------------------------------------------------------

@pytest.mark.parametrize("method,words", [("milp", "Presolv"), ("milp-cbc", "Result - "),
                                          ("cpsat", "Starting CP-SAT solver")])
def test_solver_log_goes_to_stderr_and_keeps_stdout_json(method: str, words: str) -> None:
    rc, doc, _, err = _solve("--budget", "0.7", "--method", method, "--solver-log")
    assert rc == 0 and doc is not None and doc["status"] in ("optimal", "feasible")   # stdout is pure JSON
    assert words in err
    rc, doc, _, err = _solve("--budget", "0.7", "--method", method)
    assert rc == 0 and err == ""


# ---- options that do not apply ------------------------------------------------------------------

@pytest.mark.parametrize("argv,flag,words", [
    (["--method", "greedy", "--objective", "min-memory"], "--objective", "milp, milp-cbc, cpsat, auto; not to greedy"),
    (["--method", "keep", "--solver-log"], "--solver-log", "not to keep"),
    (["--method", "milp", "--resolution", "1ms"], "--resolution", "cpsat, auto; not to milp"),
    (["--method", "milp-cbc", "--resolution", "1ms"], "--resolution", "not to milp-cbc"),
    (["--method", "cpsat", "--write-model", "m.lp"], "--write-model", "milp, milp-cbc, auto; not to cpsat"),
    (["--method", "milp", "--write-model", "m.txt"], "--write-model", ".mps or .lp"),
    (["--method", "milp", "--max-overhead", "0.1"], "--max-overhead", "--objective min-memory"),
    (["--method", "milp", "--objective", "min-bytes", "--max-overhead", "0.1"], "--max-overhead",
     "--objective min-memory"),
    (["--method", "milp", "--objective", "min-memory", "--makespan", "1ms"], "--makespan", "--objective min-bytes"),
    (["--method", "milp", "--objective", "min-memory", "--max-overhead=-0.1"], "--max-overhead", ">= 0"),
    (["--method", "belady", "--option", "candidates=4"], "--option candidates", "greedy; not to belady"),
    (["--method", "milp", "--option", "frobnicate=1"], "--option frobnicate", "no method reads it"),
    (["--method", "auto", "--option", "bounds=exact"], "--option bounds", "expected one of cheap, lp, milp"),
    (["--method", "greedy", "--option", "bounds=exact"], "--option bounds", "expected one of cheap, lp, milp"),
    (["--method", "auto", "--option", "windows=maybe"], "--option windows", "expected on or off"),
    (["--method", "cpsat", "--option", "race=yes"], "--option race", "expected on or off"),
    (["--method", "milp", "--option", "race=off"], "--option race", "cpsat, auto; not to milp"),
    (["--method", "cpsat", "--option", "max_cp=0"], "--option max_cp", "whole number >= 1"),
    (["--method", "milp", "--option", "max_milp=lots"], "--option max_milp", "whole number >= 1"),
])
def test_options_that_do_not_apply_exit_2(argv: list[str], flag: str, words: str) -> None:
    rc, out, err = cli(["solve", TRACE, "--hardware", HW, *argv])
    assert rc == 2 and out == "" and "Traceback" not in err
    assert err.startswith(f"error: {flag}: ") and words in err


# ---- the driver settles the objective with the validator ----------------------------------------

def _greedy_then(goal: ObjectiveResult, status: str = "optimal"):
    """A planner returning greedy's schedule with a given objective result (to test the driver)."""
    from solver.heuristics.greedy import plan as greedy

    def planner(instance: Instance, options: SolveOptions) -> PlanResult:
        res = greedy(instance, options)
        return PlanResult(status, res.schedule, objective=goal.value, message="", objective_result=goal)

    return planner


def test_driver_takes_the_capacity_from_the_validator_and_records_it():
    trace, hw = _instance()
    inst = make_instance(trace, hw, budget=0.8)
    out = solve_with(inst, "fake", _greedy_then(ObjectiveResult("min-memory", 1.0, 1.0, makespan_limit=1.0,
                                                                tier="HBM")))
    peak = validate(trace, hw.with_capacity({"HBM": inst.compute_capacity}), out.schedule).metrics.peak["HBM"]
    assert out.objective_result.value == peak and out.schedule.capacity["HBM"] == peak
    assert out.objective_result.bound == 1.0 and out.status == "feasible"     # bound short of the value
    assert validate(trace, hw, out.schedule).valid


def test_driver_refuses_a_schedule_over_the_makespan_limit():
    trace, hw = _instance()
    out = solve_with(make_instance(trace, hw, budget=0.8), "fake",
                     _greedy_then(ObjectiveResult("min-bytes", 0.0, 0.0, makespan_limit=trace.compute_time / 2)))
    assert out.status == "error" and not out.ok and "makespan limit" in out.message
    assert out.objective_result.value is None


def test_schedule_solver_field_keeps_the_makespan_for_plain_solves(tmp_path: Path):
    path = tmp_path / "s.json"
    rc, doc, _, _ = _solve("--budget", "0.7", "--method", "milp", "-o", str(path))
    assert rc == 0 and doc["objective"]["kind"] == "makespan"
    assert doc["objective"]["value"] == doc["metrics"]["makespan"]
    sched: Schedule = load_schedule(path)
    assert "objective_result" not in sched.solver and sched.solver["objective"] == doc["metrics"]["makespan"]


def test_optimal_on_a_coarse_clock_is_not_called_optimal() -> None:
    """CP-SAT proves its optimum on a 1 ms clock at once; the rounding leaves the real optimum open,
    so the model's answer is feasible, with a bound (corrected for the rounding) below the makespan.
    The planner may still call the schedule optimal, but only on a bound that holds for every
    schedule (the window relaxation)."""
    from formulations.common import build_problem
    from formulations.cpsat import CpOptions, solve_cpsat
    from formulations.planners import plan_cpsat

    trace, hw = _instance()
    inst = make_instance(trace, hw, budget=0.7)
    out = solve_cpsat(build_problem(inst.trace, inst.hardware), CpOptions(resolution=1e-3, threads=1, time_limit=10))
    assert out.stats["solver"] == "OPTIMAL"
    assert out.status == "feasible" and out.objective - out.bound > 1e-4 * out.objective
    assert "rounds durations up" in out.stats["note"]
    res = plan_cpsat(inst, SolveOptions(time_limit=10, threads=1, extra={"resolution": 1e-3}))
    rep = validate(trace, hw, res.schedule)
    if res.status == "optimal":
        proof = max(res.stats.get("window_lp_bound") or 0.0, res.stats.get("window_milp_bound") or 0.0)
        assert proof >= rep.metrics.makespan * (1 - 1e-9)
    else:
        assert rep.metrics.makespan - res.bound > 1e-4 * rep.metrics.makespan
