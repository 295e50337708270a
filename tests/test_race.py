"""The race between a bound and a search: shared figures, stopping each side, the planners' use."""

from __future__ import annotations

import random
import threading

import pytest

from formulations.backends import solve_pulp
from formulations.race import Race


def test_figures_meet_within_the_tolerance_only() -> None:
    race = Race(0.01)
    assert not race.offer_upper(10.0)
    assert not race.offer_lower(9.8)          # 10 > 9.8 * 1.01
    assert not race.met and not race.done
    assert race.offer_lower(9.91)             # 10 <= 9.91 * 1.01
    assert race.met and race.done
    # the best of each side is kept
    race.offer_upper(12.0)
    race.offer_lower(5.0)
    assert (race.upper, race.lower) == (10.0, 9.91)


def test_stoppers_run_once_when_the_figures_meet_and_at_once_afterwards() -> None:
    race = Race(0.0)
    calls: list[str] = []
    race.on_meet(lambda: calls.append("a"))
    race.offer_upper(3.0)
    assert calls == []
    race.offer_lower(3.0)
    race.offer_lower(3.0)
    assert calls == ["a"]
    race.on_meet(lambda: calls.append("b"))   # registered after the end: called at once
    assert calls == ["a", "b"]


def test_finish_ends_the_race_without_calling_the_stoppers() -> None:
    race = Race(0.0)
    calls: list[str] = []
    race.on_meet(lambda: calls.append("a"))
    race.finish()
    assert race.done and not race.met and calls == []


def test_offers_from_many_threads_keep_the_extremes() -> None:
    race = Race(0.0)
    vals = [random.Random(k).uniform(1, 100) for k in range(400)]

    def offer(chunk: list[float]) -> None:
        for v in chunk:
            race.offer_upper(v + 200)
            race.offer_lower(v)

    threads = [threading.Thread(target=offer, args=(vals[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert race.upper == min(vals) + 200 and race.lower == max(vals)


def _knapsack():
    import pulp

    rng = random.Random(7)
    w = [rng.randint(20, 60) for _ in range(40)]
    v = [rng.randint(20, 60) for _ in range(40)]
    p = pulp.LpProblem("k", pulp.LpMinimize)
    x = [pulp.LpVariable(f"x{i}", cat="Binary") for i in range(40)]
    p += 5000 - pulp.lpSum(vi * xi for vi, xi in zip(v, x))     # a constant the bound must include
    p += pulp.lpSum(wi * xi for wi, xi in zip(w, x)) <= sum(w) // 2 + 1
    return p


def test_the_highs_bound_poll_sees_the_bound_with_the_constant_and_can_stop_the_solve() -> None:
    full = solve_pulp(_knapsack(), "highs", threads=1)
    assert full.status == "optimal"
    seen: list[float] = []
    watched = solve_pulp(_knapsack(), "highs", threads=1, on_bound=lambda b: bool(seen.append(b)))
    assert watched.status == "optimal" and watched.objective == pytest.approx(full.objective)
    assert seen, "HiGHS never polled"
    finite = [b for b in seen if b > -1e300]
    assert finite and all(b <= full.objective + 1e-6 for b in finite)
    assert max(finite) > full.objective - 100 > 3000    # the constant 5000 is counted
    stopped = solve_pulp(_knapsack(), "highs", threads=1, on_bound=lambda b: True)
    assert stopped.status in ("feasible", "timeout")
    assert stopped.bound is None or stopped.bound <= full.objective + 1e-6


def _example(budget: float = 0.8):
    from pathlib import Path

    from solver.formats import load_hardware, load_trace
    from solver.solve import make_instance

    ex = Path(__file__).resolve().parents[1] / "instances" / "examples"
    return make_instance(load_trace(ex / "trace.json"), load_hardware(ex / "hardware.json"), budget=budget)


@pytest.mark.parametrize("method", ["cpsat", "auto"])
def test_with_two_threads_the_window_milp_runs_beside_cpsat_and_its_proof_stops_the_search(method) -> None:
    """On the example at 0.8 the window LP does not settle the greedy schedule and the window
    MILP proves it optimal: raced beside CP-SAT, its bound stops the search long before the limit."""
    from formulations.planners import plan_auto, plan_cpsat
    from solver.methods import SolveOptions
    from solver.timing import validate

    inst = _example()
    fn = {"cpsat": plan_cpsat, "auto": plan_auto}[method]
    res = fn(inst, SolveOptions(time_limit=60, threads=2))
    assert res.stats.get("race") is True
    rep = validate(inst.trace, inst.hardware, res.schedule)
    assert rep.valid and res.status == "optimal"
    assert res.bound <= rep.metrics.makespan <= res.bound * (1 + 1e-7)
    # stopped by a proof (status optimal above), not by the limit: no wall-clock assert, since how
    # soon the proof comes depends on the machine's speed
    if res.stats["model_solver"] != "OPTIMAL":
        # CP-SAT did not prove it in its own space (with the stage MILP's plan to start from, `auto`
        # sometimes does, and the window MILP is then stopped before it finishes): the window
        # MILP's bound did, and stopped the search
        assert res.stats["window_milp"] == "bound"
        assert res.stats["window_lp_bound"] < res.stats["window_milp_bound"] == pytest.approx(res.bound)


@pytest.mark.parametrize("threads,extra", [(1, {}), (2, {"race": "off"})])
def test_with_one_thread_or_race_off_the_window_milp_runs_first_and_alone(threads, extra) -> None:
    from formulations.planners import plan_cpsat
    from solver.methods import SolveOptions

    res = plan_cpsat(_example(), SolveOptions(time_limit=60, threads=threads, extra=extra))
    assert "race" not in res.stats and res.stats["route"] == "bound" and res.status == "optimal"


def test_the_window_milp_is_told_to_stop_when_the_search_ends_first(monkeypatch) -> None:
    """A bound side that never finishes on its own: it is polled until the search is over."""
    import time

    from formulations import planners, relax
    from formulations.relax import BoundResult
    from solver.methods import SolveOptions

    inst = _example()
    polls: list[bool] = []
    real = relax.window_bound

    def endless(trace, hardware, **kw):
        if not kw.get("integral"):
            return real(trace, hardware, **kw)
        on_bound = kw["on_bound"]
        while not on_bound(trace.compute_time):
            polls.append(False)
            time.sleep(0.01)
        polls.append(True)
        return BoundResult("bound", trace.compute_time, "", {"solve_s": 0.0, "proven": False})

    monkeypatch.setattr(relax, "window_bound", endless)
    t0 = time.perf_counter()
    res = planners.plan_cpsat(inst, SolveOptions(time_limit=8, threads=2))
    assert time.perf_counter() - t0 < 8 + 30   # the limit is honoured (generous slack for a loaded machine)
    assert polls and polls[-1] is True and res.stats.get("race") is True
    # CP-SAT proved its own optimum (or ran out of time); the schedule is valid either way
    assert res.schedule is not None and res.status in ("optimal", "feasible")


def test_auto_starts_the_window_milp_beside_its_stage_milp(monkeypatch) -> None:
    """With two threads `auto`'s stage MILP no longer runs alone: the window MILP starts with it."""
    from formulations import planners, relax
    from solver.methods import SolveOptions
    from solver.timing import validate

    started = threading.Event()
    seen: list[bool] = []
    real_bound, real_milp = relax.window_bound, planners._run_milp

    def bound(trace, hardware, **kw):
        if kw.get("integral"):
            started.set()
        return real_bound(trace, hardware, **kw)

    limits: list[tuple[float, float | None]] = []

    def stage_milp(*args, **kw):
        seen.append(started.wait(timeout=20))   # the window MILP is running (or has run) meanwhile
        limits.append((args[7], kw.get("soft")))
        return real_milp(*args, **kw)

    monkeypatch.setattr(relax, "window_bound", bound)
    monkeypatch.setattr(planners, "_run_milp", stage_milp)
    inst = _example()
    res = planners.plan_auto(inst, SolveOptions(time_limit=60, threads=2))
    assert res.stats["route"] == "milp+cpsat" and res.stats.get("race") is True
    assert seen == [True]
    # its job is a plan (the bound is the window MILP's): a soft limit at its share, a later hard one
    (hard, soft), = limits
    assert soft is not None and soft < hard <= planners.STAGE_ROOT_GRACE * soft + 1e-9
    assert validate(inst.trace, inst.hardware, res.schedule).valid and res.status == "optimal"


def test_cpsat_searches_first_when_the_bound_is_proven_before_it_starts(monkeypatch) -> None:
    """When the window MILP has proven its bound (not met) before CP-SAT starts, what is left is to
    find a schedule: CP-SAT gives part of its time to neighbourhood search alone first."""
    from formulations import planners, relax
    from formulations.relax import BoundResult
    from solver.methods import SolveOptions
    from solver.timing import validate

    finished = threading.Event()
    real_bound, real_milp, real_cpsat = relax.window_bound, planners._run_milp, planners._run_cpsat
    shares: list[float] = []

    def bound(trace, hardware, **kw):
        if not kw.get("integral"):
            return real_bound(trace, hardware, **kw)
        try:   # proven, below every schedule, so the search must still find one that meets it
            return BoundResult("bound", trace.compute_time, "", {"solve_s": 0.0, "proven": True})
        finally:
            finished.set()

    def stage_milp(*args, **kw):
        finished.wait(timeout=20)
        return real_milp(*args, **kw)

    def cpsat(*args, **kw):
        shares.append(args[-1] if len(args) > 10 else kw.get("lns_first", 0.0))
        return real_cpsat(*args, **kw)

    monkeypatch.setattr(relax, "window_bound", bound)
    monkeypatch.setattr(planners, "_run_milp", stage_milp)
    monkeypatch.setattr(planners, "_run_cpsat", cpsat)
    inst = _example()
    res = planners.plan_auto(inst, SolveOptions(time_limit=6, threads=2))
    assert res.stats["route"] == "milp+cpsat" and res.stats.get("race") is True
    assert shares == [planners.RACE_LNS_SHARE] and "model_lns_s" in res.stats
    assert validate(inst.trace, inst.hardware, res.schedule).valid
    # no race (one thread): CP-SAT proves or searches with its whole portfolio from the start
    shares.clear()
    res = planners.plan_cpsat(inst, SolveOptions(time_limit=3, threads=1))
    assert shares in ([], [0.0]) and "model_lns_s" not in res.stats


def test_overlapping_silenced_blocks_on_two_threads_restore_stdout() -> None:
    """File descriptor 1 is the process's: blocks that silence it on two threads and end out of
    order leave it where it was (each saving and restoring it alone left it at the null device)."""
    import os

    from formulations.backends import quiet_stdout

    before = os.fstat(1)
    null = os.stat(os.devnull)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    during: list[bool] = []

    def first() -> None:
        with quiet_stdout():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with quiet_stdout():
            second_in.set()
            first_out.wait(5)
            during.append(os.fstat(1).st_rdev == null.st_rdev and os.fstat(1).st_ino == null.st_ino)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    after = os.fstat(1)
    assert during == [True]         # still silenced while the second block runs
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
