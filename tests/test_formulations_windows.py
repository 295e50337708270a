"""`auto` past the size guards: the window search (formulations/windows.py).

Every schedule it returns is checked again with the validator on the whole instance; the search
must never return anything worse than the schedule it was given.
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formulations.planners import plan_auto, plan_cpsat
from formulations.windows import _Skip, cut_window, improve_by_windows, residency, stitch
from heuristics_helpers import random_budget, random_hardware, random_trace
from solver.formats import load_trace
from solver.methods import SolveOptions
from solver.solve import make_instance, solve
from solver.suites import load_instance_hardware, load_suite, trace_path
from solver.timing import validate

FORCE = {"max_cp": 1, "max_milp": 1}   # every model "too large": auto takes the window route


def _tiny(name: str, budget: float):
    inst = load_suite("tiny").instance(name)
    return make_instance(load_trace(trace_path(inst)), load_instance_hardware(inst), budget=budget)


def _greedy(instance):
    res = solve(instance, "greedy", SolveOptions(time_limit=10))
    assert res.schedule is not None
    return res.schedule


def test_residency_matches_a_hand_count() -> None:
    inst = _tiny("decode-tiny-prefix-ddr", 1.0)
    tr, hw = inst.trace, inst.hardware
    s = _greedy(inst)
    rep = validate(tr, hw, s, dict(inst.capacity))
    start = residency(tr, hw, s, rep, 0.0)
    # before anything ran: exactly the tensors no op produces, each in its initial tier
    expect = {t: frozenset({x.initial_tier or hw.compute_tier}) for t, x in enumerate(tr.tensors)
              if tr.producer[t] < 0 and tr.death[t] >= 0}
    assert start == expect
    end = residency(tr, hw, s, rep, float("inf"))
    for t, x in enumerate(tr.tensors):
        if x.persistent:
            assert end.get(t), f"persistent tensor {x.id} held nowhere at the end"
        elif tr.death[t] < len(tr.ops):
            assert t not in end, f"tensor {x.id} outlives its death"


@pytest.mark.parametrize("name,budget", [("decode-tiny-1layer", 0.8), ("chain-8-weights-ddr", 0.6),
                                         ("moe-tiny-1layer", 0.4)])
def test_a_window_solved_exactly_stitches_into_a_valid_schedule(name: str, budget: float) -> None:
    inst = _tiny(name, budget)
    tr, hw = inst.trace, inst.hardware
    s = _greedy(inst)
    rep = validate(tr, hw, s, dict(inst.capacity))
    n = len(tr.ops)
    stitched = 0
    for a, b in ((0, n // 2), (n // 3, 2 * n // 3), (n // 2, n)):
        try:
            win = cut_window(inst, s, rep, a, b)
        except _Skip:
            continue
        assert [o.id for o in win.instance.trace.ops] == [o.id for o in tr.ops[a:b]]
        res = plan_cpsat(win.instance, SolveOptions(time_limit=3, threads=1))
        if res.schedule is None:
            continue    # neither greedy nor CP-SAT found a plan for this window in 3 s
        new = stitch(inst, s, rep, win, res.schedule)
        r2 = validate(tr, hw, new, dict(inst.capacity))
        assert r2.valid, r2.errors[0]
        stitched += 1
    assert stitched >= 1


def test_auto_past_the_guards_improves_window_by_window() -> None:
    inst = _tiny("decode-tiny-1layer", 0.8)
    warm = validate(inst.trace, inst.hardware, _greedy(inst), dict(inst.capacity)).metrics.makespan
    res = plan_auto(inst, SolveOptions(time_limit=8, threads=1, extra=dict(FORCE)))
    assert res.stats["route"] == "windows" and res.stats["windows"] >= 1
    rep = validate(inst.trace, inst.hardware, res.schedule, dict(inst.capacity))
    assert rep.valid and rep.metrics.makespan <= warm * (1 + 1e-12)
    assert res.objective == pytest.approx(rep.metrics.makespan)
    assert res.bound is None or res.bound <= rep.metrics.makespan * (1 + 1e-9)
    assert res.status in ("optimal", "feasible")
    if res.status == "optimal":
        assert res.bound >= rep.metrics.makespan * (1 - 1e-9)


def test_windows_off_returns_the_warm_start() -> None:
    inst = _tiny("decode-tiny-1layer", 0.8)
    res = plan_auto(inst, SolveOptions(time_limit=8, threads=1, extra={**FORCE, "windows": "off"}))
    assert res.stats.get("route") != "windows" and res.stats["returned"] == "warm"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_window_search_never_worse_and_always_valid(seed: int) -> None:
    rng = random.Random(seed)
    trace = random_trace(rng, rng.randint(8, 30))
    hw = random_hardware(rng, trace)
    inst = make_instance(trace, hw, budget=random_budget(rng))
    g = solve(inst, "greedy", SolveOptions(time_limit=5))
    if g.schedule is None:
        return
    before = validate(trace, hw, g.schedule, dict(inst.capacity)).metrics.makespan

    def sub(instance, seconds):
        r = solve(instance, "greedy", SolveOptions(time_limit=seconds))
        return r.schedule

    out = improve_by_windows(inst, g.schedule, sub, time.perf_counter() + 3, window_ops=rng.randint(2, 12))
    rep = validate(trace, hw, out.schedule, dict(inst.capacity))
    assert rep.valid and rep.metrics.makespan == pytest.approx(out.makespan)
    assert out.makespan <= before * (1 + 1e-12)


def test_auto_takes_the_window_search_past_the_whole_model_size(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Within the size guards too: past ``AUTO_WHOLE_MAX_SIZE`` gap options ``auto`` searches
    window by window; ``windows=off`` and a model to write keep one model of the whole instance."""
    import formulations.planners as planners
    from formulations.common import build_problem
    from formulations.planners import model_sizes

    inst = _tiny("decode-tiny-1layer", 0.8)
    options = model_sizes(build_problem(inst.trace, inst.hardware))[1]
    assert 0 < options <= planners.AUTO_WHOLE_MAX_SIZE
    below = plan_auto(inst, SolveOptions(time_limit=4, threads=1, extra={"bounds": "lp"}))
    assert below.stats["route"] != "windows"
    monkeypatch.setattr(planners, "AUTO_WHOLE_MAX_SIZE", options - 1)
    past = plan_auto(inst, SolveOptions(time_limit=4, threads=1, extra={"bounds": "lp"}))
    assert past.stats["route"] == "windows"
    assert validate(inst.trace, inst.hardware, past.schedule, dict(inst.capacity)).valid
    whole = plan_auto(inst, SolveOptions(time_limit=4, threads=1, extra={"bounds": "lp", "windows": "off"}))
    assert whole.stats["route"] != "windows" and whole.stats.get("size_options") == options
    model = tmp_path / "whole.lp"
    written = plan_auto(inst, SolveOptions(time_limit=4, threads=1, extra={"bounds": "lp", "write_model": str(model)}))
    assert written.stats["route"] != "windows" and model.stat().st_size > 0
