"""Time limits are limits: one deadline for the whole command, every stage working from the time left.

No test here depends on the machine's speed. Behaviours are driven by deterministic knobs: a fake
clock (a counter, or a value the test moves), a deadline that has already passed, a poll counter.
Where a real clock is involved, only an upper bound with generous slack is checked (the limit is
*honoured*), never that work *finishes* within a time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from solver.bench.check import compare
from solver.bench.rows import Row, format_csv, overrun_limit, parse_csv, read_csv
from solver.bench.summary import method_stats, summary_markdown
from solver.deadline import FINISH_S, Deadline, OutOfTime, Poll, command_deadline, deadline_of, process_age, time_margin
from solver.formats import trace_from_document
from solver.methods import SolveOptions
from solver.solve import make_instance, solve
from solver.timing import validate
from solver.workloads import generate

ROOT = Path(__file__).resolve().parents[1]
SLACK_S = 20.0    # generous: a limit is honoured when the wall time stays below limit + this


class Counter:
    """A fake clock: each reading is one more than the last (0, 1, 2...)."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return float(self.reads - 1)


class Manual:
    """A fake clock the test moves by hand."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def expired() -> Deadline:
    """A deadline that has passed (on a clock that never moves)."""
    return Deadline(0.0, clock=Manual(1.0))


@pytest.fixture(scope="module")
def train71():
    """The 71-op llama-tiny training step on ascend-910b at 70% of its no-offload peak."""
    from solver.workloads import hardware_preset_path
    from solver.formats import load_hardware

    doc = generate("train", {"model": "llama-tiny"}, hardware="ascend-910b")
    trace = trace_from_document(doc, "train71")
    hw = load_hardware(hardware_preset_path("ascend-910b"))
    return make_instance(trace, hw, budget=0.7)


@pytest.fixture(scope="module")
def random400():
    from solver.workloads import hardware_preset_path
    from solver.formats import load_hardware

    doc = generate("random", {"ops": 400, "pressure": 0.5}, hardware="h100-pcie")
    trace = trace_from_document(doc, "random400")
    hw = load_hardware(hardware_preset_path("h100-pcie"))
    return make_instance(trace, hw, budget=0.5)


# ------------------------------------------------------------------------------------------------
# the deadline itself

def test_the_margin_is_the_larger_of_two_seconds_and_a_tenth() -> None:
    assert time_margin(1.0) == 2.0 and time_margin(20.0) == 2.0 and time_margin(60.0) == 6.0
    assert overrun_limit(2.0) == 2.0 and overrun_limit(100.0) == pytest.approx(1.1)


def test_a_deadline_on_a_fake_clock() -> None:
    clock = Manual(10.0)
    d = Deadline.after(5.0, clock=clock)
    assert d.at == 15.0 and d.left() == 5.0 and not d.expired()
    assert d.share(0.2).at == 11.0 and d.within(100.0).at == 15.0 and d.reserving().at == pytest.approx(14.75)
    assert d.sooner(Deadline(12.0)).at == 12.0 and d.sooner(None) is d
    clock.t = 15.0
    assert d.expired() and d.left() == 0.0
    with pytest.raises(OutOfTime):
        d.check("a stage")


def test_the_sooner_of_a_given_deadline_and_the_time_limit_counts() -> None:
    clock = Manual(0.0)
    given = Deadline(3.0, clock=clock)
    assert deadline_of(SolveOptions(time_limit=10.0, deadline=given)).at == 3.0
    assert deadline_of(SolveOptions(time_limit=1.0, deadline=given)).at == 1.0
    assert deadline_of(SolveOptions()) is None
    assert deadline_of(SolveOptions(), default_limit=60.0).left() <= 60.0


def test_a_poll_reads_the_clock_once_every_n_steps() -> None:
    clock = Counter()
    p = Poll(Deadline(3.0, clock=clock), every=10)   # readings 0, 1, 2 pass; 3 is the deadline
    with pytest.raises(OutOfTime):
        for _ in range(1000):
            p()
    assert p.steps == 40 and p.checks == 4 and clock.reads == 4
    idle = Poll(None, every=1)
    for _ in range(100):
        idle()
    assert idle.checks == 0


def test_a_command_deadline_counts_from_the_start_of_the_process(monkeypatch) -> None:
    import solver.deadline as sd

    assert process_age() > 0.0             # this process started before the test ran
    d = command_deadline(30.0)
    assert d is not None and d.left() <= 30.0 - FINISH_S
    assert command_deadline(None) is None and command_deadline(0.0) is None
    # a process started for the command: its start counts; a long-running host: the call starts it
    monkeypatch.setattr(sd, "process_age", lambda: 1.25)
    assert Deadline.for_command(10.0, clock=Manual(0.0)).at == 10.0 - 1.25 - FINISH_S
    monkeypatch.setattr(sd, "process_age", lambda: sd.STARTUP_MAX_S + 100.0)
    assert Deadline.for_command(10.0, clock=Manual(0.0)).at == 10.0 - FINISH_S


# ------------------------------------------------------------------------------------------------
# heuristics

@pytest.mark.parametrize("method", ["greedy", "belady", "vdnn", "zero-offload"])
def test_a_heuristic_out_of_time_says_timeout(method, random400) -> None:
    out = solve(random400, method, SolveOptions(deadline=expired()))
    assert out.status == "timeout" and not out.ok and "time limit" in out.message
    # the same run without a limit plans (or says why not), it does not time out
    assert solve(random400, method, SolveOptions()).status != "timeout"


def test_greedy_polls_the_clock_every_n_steps_and_stops_at_the_deadline(random400) -> None:
    from solver.heuristics.greedy import POLL_EVERY, plan

    clock = Counter()
    res = plan(random400, SolveOptions(deadline=Deadline(5.0, clock=clock)))
    assert res.status == "timeout" and res.schedule is None
    assert res.stats["clock_checks"] == 6 == clock.reads and res.stats["steps"] == 6 * POLL_EVERY
    free = plan(random400, SolveOptions(deadline=Deadline(1e9, clock=Counter())))
    assert free.status == "feasible" and validate(random400.trace, random400.hardware, free.schedule).valid


def test_the_heuristics_take_the_time_limit_from_the_options(random400) -> None:
    """``time_limit`` alone (no deadline) is a limit too: here one too short for any real sweep."""
    out = solve(random400, "greedy", SolveOptions(time_limit=1e-9))
    assert out.status == "timeout"


# ------------------------------------------------------------------------------------------------
# back ends

def _small_milp():
    import pulp

    p = pulp.LpProblem("k", pulp.LpMinimize)
    x = pulp.LpVariable("x", 0, 3, cat="Integer")
    p += x
    p += x >= 1.5
    return p


@pytest.mark.parametrize("backend", ["highs", "cbc"])
def test_a_solve_whose_deadline_has_passed_does_not_start(backend) -> None:
    from formulations.backends import NOT_STARTED, solve_pulp

    out = solve_pulp(_small_milp(), backend, deadline=expired())
    assert out.status == "timeout" and out.detail == NOT_STARTED and not out.has_solution


def test_highs_gets_the_time_left_once_the_model_is_in() -> None:
    from formulations.backends import solve_pulp

    p = _small_milp()
    out = solve_pulp(p, "highs", time_limit=1e6, deadline=Deadline(7.5, clock=Manual(0.0)))
    assert out.status == "optimal"
    assert p.solverModel.getOptionValue("time_limit")[-1] == 7.5


def test_the_model_pass_to_highs_polls_its_deadline() -> None:
    """A deadline that passes while the model is passed to HiGHS (the clock moves on each
    reading) stops before HiGHS runs."""
    from formulations.backends import NOT_STARTED, solve_pulp
    import pulp

    p = pulp.LpProblem("big", pulp.LpMinimize)
    xs = [pulp.LpVariable(f"x{i}", 0, 1) for i in range(3000)]
    p += pulp.lpSum(xs)
    for i in range(0, 3000, 2):
        p += xs[i] + xs[i + 1] >= 1
    clock = Counter()
    out = solve_pulp(p, "highs", deadline=Deadline(3.0, clock=clock))
    assert out.status == "timeout" and out.detail == NOT_STARTED
    assert 3 <= clock.reads < 20


class _Stuck:
    """A fake solver process that never exits on its own; records the signals it gets."""

    def __init__(self, clock: Manual, dies_on: str) -> None:
        self.clock, self.dies_on, self.got = clock, dies_on, []
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        self.clock.t += 1.0
        raise subprocess.TimeoutExpired("cbc", timeout or 0.0)

    def send_signal(self, sig: int) -> None:
        self.got.append("INT" if sig == signal.SIGINT else str(sig))
        if self.dies_on == "INT":
            self.returncode = 0

    def kill(self) -> None:
        self.got.append("KILL")
        self.returncode = -9


def test_a_solver_process_running_past_the_deadline_is_interrupted_then_killed() -> None:
    from formulations.backends import wait_until

    clock = Manual(0.0)
    stubborn = _Stuck(clock, dies_on="KILL")
    code, stopped = wait_until(stubborn, Deadline(3.0, clock=clock), grace=2.0)
    assert stopped and code == -9 and stubborn.got == ["INT", "KILL"] and clock.t == 5.0
    clock2 = Manual(0.0)
    polite = _Stuck(clock2, dies_on="INT")
    code, stopped = wait_until(polite, Deadline(2.0, clock=clock2), grace=2.0)
    assert stopped and code == 0 and polite.got == ["INT"]


def test_cbc_is_stopped_at_the_deadline() -> None:
    """A hard knapsack CBC cannot close quickly: with a deadline 0.5 s away the call is over well
    within the slack (honoured, whatever the machine), and never says optimal."""
    import random

    import pulp

    from formulations.backends import solve_pulp

    rng = random.Random(3)
    p = pulp.LpProblem("hard", pulp.LpMinimize)
    xs = [pulp.LpVariable(f"x{i}", 0, 1, cat="Binary") for i in range(120)]
    for _ in range(80):
        p += pulp.lpSum(rng.randint(1, 30) * x for x in rng.sample(xs, 25)) >= 180
    p += pulp.lpSum(rng.randint(5, 50) * x for x in xs)
    t0 = time.perf_counter()
    out = solve_pulp(p, "cbc", deadline=Deadline.after(0.5))
    assert time.perf_counter() - t0 < 0.5 + SLACK_S
    assert out.status in ("feasible", "timeout", "optimal")
    if out.status == "optimal":     # solved outright before the deadline: then it is a proof
        assert out.bound == out.objective


# ------------------------------------------------------------------------------------------------
# bounds and models

def test_the_window_relaxation_is_not_built_after_its_deadline(train71) -> None:
    from formulations.relax import window_bound

    for integral in (False, True):
        rb = window_bound(train71.trace, train71.hardware, integral=integral, deadline=expired())
        assert rb.status == "timeout" and rb.stats["solver"] != "Optimal"


def test_the_window_relaxation_build_polls_its_deadline(train71) -> None:
    from formulations.relax import BUILD_POLL_EVERY, window_bound

    clock = Counter()
    rb = window_bound(train71.trace, train71.hardware, deadline=Deadline(4.0, clock=clock))
    assert rb.status == "timeout" and "built" in rb.message
    assert clock.reads == 5        # one check before the build, then one every BUILD_POLL_EVERY steps
    assert BUILD_POLL_EVERY >= 1


def test_bound_shares_one_deadline_between_the_lp_and_the_milp(train71, monkeypatch) -> None:
    """`bound --milp`: the MILP gets what the LP left of the one deadline (not a limit of its own)."""
    from formulations import relax
    from solver.cli.bound import compute_bounds

    seen: list[tuple[bool, Any, Any]] = []
    real = relax.window_bound

    def spy(trace, hardware, **kw):
        seen.append((kw.get("integral", False), kw.get("time_limit"), kw.get("deadline")))
        return real(trace, hardware, **kw)

    monkeypatch.setattr(relax, "window_bound", spy)
    clock = Manual(0.0)
    d = Deadline(50.0, clock=clock)
    doc = compute_bounds(train71.trace, train71.hardware, {}, 0.7, milp=True, deadline=d)
    assert doc["status"] == "bound"
    assert seen and all(tl is None and dl is not None and dl.at <= 50.0 for _, tl, dl in seen)
    # past the deadline nothing is solved: the cheap bounds remain
    seen.clear()
    doc = compute_bounds(train71.trace, train71.hardware, {}, 0.7, milp=True, deadline=expired())
    assert doc["relaxation"] == "timeout" and "window-milp" not in doc["bounds"] and doc["bound"] > 0


class _BuildTakesForever:
    """Wraps a model builder: the build 'takes' ``seconds`` on the fake clock (moved before it runs),
    so that the build's own polls see the deadline pass."""

    def __init__(self, real: Any, clock: Manual, seconds: float) -> None:
        self.real, self.clock, self.seconds, self.calls = real, clock, seconds, 0

    def __call__(self, *args: Any, **kw: Any) -> Any:
        self.calls += 1
        self.clock.t += self.seconds
        return self.real(*args, **kw)


def _no_solve(*args: Any, **kw: Any) -> Any:
    raise AssertionError("the back end must not run after the deadline")


@pytest.mark.parametrize("method", ["milp", "milp-cbc"])
def test_a_stage_milp_that_cannot_be_built_in_time_falls_back_to_the_warm_start(method, train71, monkeypatch):
    from formulations import milp, planners

    clock = Manual(0.0)
    slow = _BuildTakesForever(milp.build_stage_milp, clock, 1000.0)
    monkeypatch.setattr(milp, "build_stage_milp", slow)
    monkeypatch.setattr(milp, "solve_pulp", _no_solve)
    fn = {"milp": planners.plan_milp, "milp-cbc": planners.plan_milp_cbc}[method]
    res = fn(train71, SolveOptions(deadline=Deadline(100.0, clock=clock), extra={"bounds": "cheap"}))
    assert slow.calls == 1
    assert res.status == "feasible" and res.stats["returned"] == "warm"      # never optimal after a time limit
    assert "before the stage MILP was built" in res.message
    assert validate(train71.trace, train71.hardware, res.schedule).valid


def test_a_cpsat_model_that_cannot_be_built_in_time_falls_back_to_the_warm_start(train71, monkeypatch):
    from formulations import cpsat, planners

    clock = Manual(0.0)
    real_build = cpsat._Model.build

    def slow_build(self):
        clock.t += 1000.0
        return real_build(self)

    monkeypatch.setattr(cpsat._Model, "build", slow_build)
    res = planners.plan_cpsat(train71, SolveOptions(deadline=Deadline(100.0, clock=clock), threads=1,
                                                    extra={"bounds": "cheap"}))
    assert res.status == "feasible" and res.stats["returned"] == "warm"
    assert "CP-SAT model was built" in res.message
    assert validate(train71.trace, train71.hardware, res.schedule).valid


def _example(budget: float = 0.8):
    from solver.formats import load_hardware, load_trace

    ex = ROOT / "instances" / "examples"
    return make_instance(load_trace(ex / "trace.json"), load_hardware(ex / "hardware.json"), budget=budget)


def test_every_exact_stage_gets_a_share_of_one_deadline(monkeypatch) -> None:
    """No stage of ``milp`` gets a limit of its own: the warm start, the window LP and the stage
    MILP each get a deadline no later than the planner's one."""
    from formulations import milp, planners, relax, warm

    clock = Manual(0.0)
    top = Deadline(40.0, clock=clock)
    got: dict[str, list[Any]] = {"warm": [], "lp": [], "milp": []}
    real_warm, real_lp, real_solve = warm.best_heuristic, relax.window_bound, milp.solve_stage_milp

    def spy_warm(instance, time_limit=None, recompute=True, methods=warm.WARM_METHODS, deadline=None):
        got["warm"].append((time_limit, deadline))
        return real_warm(instance, time_limit, recompute, methods, deadline)

    def spy_lp(trace, hardware, **kw):
        got["lp"].append((kw.get("time_limit"), kw.get("deadline")))
        return real_lp(trace, hardware, **kw)

    def spy_solve(problem, opts, start=None):
        got["milp"].append((opts.time_limit, opts.deadline))
        return milp.MilpResult("timeout", None, None, None, stats={"message": "stopped by the test"})

    monkeypatch.setattr(planners, "best_heuristic", spy_warm)
    monkeypatch.setattr(relax, "window_bound", spy_lp)
    monkeypatch.setattr(milp, "solve_stage_milp", spy_solve)
    res = planners.plan_milp(_example(), SolveOptions(deadline=top, extra={"bounds": "lp"}))
    assert res.status == "feasible"
    for stage, calls in got.items():
        assert calls, stage
        for limit, d in calls:
            assert limit is None and d is not None and d.at <= top.at, stage
    assert got["warm"][0][1].at <= 0.2 * 40.0 + 1e-9     # a share, not the whole limit


# ------------------------------------------------------------------------------------------------
# the whole command

def _cli(args: list[str], timeout: float) -> tuple[int, str, str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "solver.cli", *args], capture_output=True, text=True, cwd=ROOT,
                       env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - t0


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tl") / "train71.json"
    doc = generate("train", {"model": "llama-tiny"}, hardware="ascend-910b")
    path.write_text(json.dumps(doc))
    return str(path)


def test_solve_with_a_limit_already_spent_says_timeout(train_file) -> None:
    """A limit shorter than the interpreter's own start has passed before greedy runs:
    deterministically, the command says timeout (exit 1) instead of ignoring the limit."""
    rc, out, err, _ = _cli(["solve", train_file, "-H", str(ROOT / "instances/hardware/ascend-910b.toml"),
                            "--budget", "0.7", "--time-limit", "0.001", "--json"], timeout=120)
    assert rc == 1, err
    doc = json.loads(out)
    assert doc["status"] == "timeout" and "time limit" in doc["message"]


@pytest.mark.parametrize("method,limit", [("milp", 2.0), ("milp-cbc", 3.0), ("auto", 3.0)])
def test_solve_honours_its_time_limit(method, limit, train_file) -> None:
    rc, out, err, wall = _cli(["solve", train_file, "-H", str(ROOT / "instances/hardware/ascend-910b.toml"),
                               "--budget", "0.7", "--method", method, "--time-limit", str(limit), "--json"],
                              timeout=limit + 120)
    assert wall < limit + SLACK_S
    assert rc in (0, 1), err
    doc = json.loads(out)
    assert doc["status"] in ("optimal", "feasible", "timeout")
    if doc["status"] == "optimal":      # only with a proof: a bound the schedule meets
        assert doc["gap"] is not None and doc["gap"] <= 1e-6


def test_bound_milp_honours_its_time_limit(train_file) -> None:
    rc, out, err, wall = _cli(["bound", train_file, "-H", str(ROOT / "instances/hardware/ascend-910b.toml"),
                               "--budget", "0.7", "--milp", "--time-limit", "2", "--json"], timeout=150)
    assert wall < 2.0 + SLACK_S
    assert rc == 0, err
    assert json.loads(out)["status"] == "bound"


# ------------------------------------------------------------------------------------------------
# the bench: the overrun column and its check

def _row(**kw: Any) -> Row:
    base = dict(instance="i", budget="0.5", method="m", status="feasible", valid=True, makespan=1.0,
                options='{"extra":{},"recompute":true,"seed":0,"threads":1,"time_limit":10.0}')
    base.update(kw)
    return Row(**base)


def test_the_overrun_is_a_column_that_reads_back() -> None:
    r = _row(overrun=0.75)
    text = format_csv([r])
    assert "overrun" in text.splitlines()[0].split(",")
    assert parse_csv(text) == [r]


def test_a_run_past_its_limit_plus_margin_is_a_regression() -> None:
    base = [_row(overrun=0.5)]
    assert not compare(base, [_row(overrun=1.19)]).failed        # 11.9 s of 10 + 2
    res = compare(base, [_row(overrun=1.25)])                     # 12.5 s
    assert res.failed and "time limit" in res.regressions[0].reason
    # also for a run the baseline lacks
    assert compare([], [_row(overrun=3.0)]).failed


def test_an_unknown_overrun_is_no_regression() -> None:
    assert not compare([_row()], [_row()]).failed
    assert not compare([_row()], [_row(overrun=0.9)]).failed


def test_an_old_results_file_without_the_column_still_reads() -> None:
    rows = read_csv(ROOT / "results" / "ci.csv")
    assert rows and all(r.overrun is None for r in rows)
    assert "overrun" not in (ROOT / "results" / "ci.csv").read_text().splitlines()[0]
    assert not compare(rows, rows).failed
    ok = [r.with_(overrun=0.01) for r in rows]
    assert not compare(rows, ok).failed


def test_the_summary_shows_the_largest_overrun() -> None:
    rows = [_row(method="a", overrun=0.4), _row(method="a", instance="j", overrun=1.5), _row(method="b")]
    stats = {s["method"]: s for s in method_stats(rows)}
    assert stats["a"]["max_overrun"] == 1.5 and stats["a"]["over_time"] == 1
    text = summary_markdown(rows, "demo")
    assert "max overrun (wall / limit)" in text and "1.50x (1 over)" in text


def test_a_bench_row_carries_the_solves_overrun() -> None:
    from types import SimpleNamespace

    from solver.bench.child import row_fields

    outcome = SimpleNamespace(report=None, status="timeout", plan_s=4.0, wall_s=5.0, message="", bound=None, gap=None)
    assert row_fields(outcome, 10.0)["overrun"] == 0.5
    assert "overrun" not in row_fields(outcome)


def test_the_instance_analysis_of_the_exact_methods_polls_the_deadline():
    """`build_problem` (seconds on a 2,600-op decode trace) stops at a passed deadline."""
    from formulations.common import build_problem
    from solver.deadline import Deadline, OutOfTime
    from solver.model import Hardware, Op, Tensor, Tier, Trace

    n = 300   # more tensors than the poll's period, so the clock is read
    tr = Trace("t", tuple(Tensor(id=f"x{i}", bytes=8) for i in range(n)),
               tuple(Op(id=f"o{i}", duration=1.0, inputs=(f"x{i - 1}",) if i else (), outputs=(f"x{i}",))
                     for i in range(n)))
    hw = Hardware("h", "HBM", (Tier("HBM", 10**6),))
    assert build_problem(tr, hw, deadline=Deadline(10.0, clock=lambda: 0.0)).epochs
    with pytest.raises(OutOfTime):
        build_problem(tr, hw, deadline=Deadline(0.0, clock=lambda: 1.0))


def test_the_initial_fetches_of_the_heuristics_poll_the_time_limit():
    """The fetch pass (seconds on traces with many tensors starting off the compute tier) ticks once
    per tensor, so a heuristic's time limit interrupts it."""
    from solver.heuristics.engine import Engine
    from solver.model import Hardware, Link, Op, Tensor, Tier, Trace
    from solver.methods import Instance

    tensors = tuple(Tensor(id=f"w{i}", bytes=8, initial_tier="DDR") for i in range(5))
    ops = tuple(Op(id=f"o{i}", duration=1.0, inputs=(f"w{i}",)) for i in range(5))
    hw = Hardware("h", "HBM", (Tier("HBM", 100), Tier("DDR", 100)),
                  (Link("HBM", "DDR", 1e9), Link("DDR", "HBM", 1e9)))
    calls: list[int] = []
    Engine(Instance(Trace("t", tensors, ops), hw)).initial_fetches(tick=lambda: calls.append(1))
    assert len(calls) == 3 * 5   # the ASAP pass, the ALAP pass and the booking, once per tensor

    def stop() -> None:
        raise RuntimeError("time is up")

    with pytest.raises(RuntimeError):
        Engine(Instance(Trace("t", tensors, ops), hw)).initial_fetches(tick=stop)
