"""The window LP relaxation (formulations/relax.py) is a lower bound for *every* valid schedule.

Regression cases: one copy can serve two purposes in a schedule (the fetch of a tensor that
starts elsewhere also brings it back after an absence; the eviction of a persistent tensor's
last version is also its write-back), and the relaxation must not charge it twice. Each case
builds a valid schedule by hand, validates it, and checks the bound does not exceed its makespan.
Then a property test: on random instances, the bound never exceeds any planner's validated
makespan.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formulations.relax import window_bound
from heuristics_helpers import random_budget, random_hardware, random_trace
from solver.methods import REGISTRY
from solver.model import Copy, Hardware, Link, Op, Run, Schedule, Tensor, Tier, Trace
from solver.solve import make_instance, solve
from solver.timing import validate


def _hw(hbm: int, bandwidth: float) -> Hardware:
    return Hardware("h", "HBM", (Tier("HBM", hbm), Tier("DDR", 10_000)),
                    (Link("HBM", "DDR", bandwidth), Link("DDR", "HBM", bandwidth)))


def test_a_fetch_that_also_ends_an_absence_is_charged_once() -> None:
    # w starts in DDR; it must stay out of HBM while y lives (ops f0, f1), and its one fetch
    # (2 s) overlaps f2 (2 s): makespan = compute time = 3.25 s.
    tr = Trace("t", (Tensor(id="w", bytes=100, initial_tier="DDR"), Tensor(id="y", bytes=100)),
               (Op(id="f0", duration=0.125, outputs=("y",)), Op(id="f1", duration=0.125, inputs=("y",)),
                Op(id="f2", duration=2.0), Op(id="f3", duration=1.0, inputs=("w",))))
    hw = _hw(100, 50.0)
    sched = Schedule("t", "h", (Run(op="f0"), Run(op="f1"),
                                Copy(id="in", tensor="w", src="DDR", dst="HBM", after=("f1",)),
                                Run(op="f2"), Run(op="f3", after=("in",))))
    rep = validate(tr, hw, sched)
    assert rep.valid, rep.errors
    assert rep.metrics.makespan == 3.25
    res = window_bound(tr, hw)
    assert res.status == "bound"
    assert res.value <= rep.metrics.makespan


def test_an_eviction_that_is_also_the_write_back_is_charged_once() -> None:
    # p (persistent, final tier DDR) is made by f0 and must be out of HBM when z is made; its one
    # write (3 s, free_src) overlaps f1 (3 s) and is also its write-back: makespan 5 s.
    tr = Trace("t", (Tensor(id="p", bytes=300, persistent=True, final_tier="DDR"), Tensor(id="z", bytes=300)),
               (Op(id="f0", duration=1.0, outputs=("p",)), Op(id="f1", duration=3.0),
                Op(id="f2", duration=0.5, outputs=("z",)), Op(id="f3", duration=0.5, inputs=("z",))))
    hw = _hw(300, 100.0)
    sched = Schedule("t", "h", (Run(op="f0"), Copy(id="out", tensor="p", src="HBM", dst="DDR", free_src=True,
                                                   after=("f0",)),
                                Run(op="f1"), Run(op="f2", after=("out",)), Run(op="f3")))
    rep = validate(tr, hw, sched)
    assert rep.valid, rep.errors
    assert rep.metrics.makespan == 5.0
    res = window_bound(tr, hw)
    assert res.status == "bound"
    assert res.value <= rep.metrics.makespan


HEURISTICS = [name for name, m in REGISTRY.items() if not m.exact]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_bound_never_exceeds_a_validated_makespan(seed: int) -> None:
    rng = random.Random(seed)
    trace = random_trace(rng)
    hw = random_hardware(rng, trace)
    inst = make_instance(trace, hw, None, random_budget(rng))
    res = window_bound(trace, inst.hardware)
    for method in HEURISTICS:
        out = solve(inst, method)
        if out.schedule is None:
            continue
        rep = validate(trace, hw, out.schedule)
        assert rep.valid
        if res.status == "infeasible":
            pytest.fail(f"the relaxation says infeasible but {method} found a valid schedule")
        assert res.value <= rep.metrics.makespan * (1 + 1e-9), (method, res.value, rep.metrics.makespan)


def test_an_op_of_zero_duration_is_never_held_at_a_checked_instant() -> None:
    # z starts and ends within one instant (t = 1): a and b coexist only inside it, and capacity is
    # checked after each instant, so keeping everything in HBM at 150 bytes is valid.
    from formulations.planners import capacity_floor
    from solver.bounds import lower_bound
    from solver.feasibility import infeasible_reason
    from solver.methods import Instance
    from solver.plans import keep_schedule

    tr = Trace("t", (Tensor(id="a", bytes=100), Tensor(id="b", bytes=100)),
               (Op(id="f", duration=1.0, outputs=("a",)), Op(id="z", duration=0.0, inputs=("a",), outputs=("b",),
                                                             workspace=500),
                Op(id="g", duration=1.0, inputs=("b",))))
    hw = _hw(150, 100.0)
    rep = validate(tr, hw, keep_schedule(tr, hw))
    assert rep.valid, rep.errors
    assert infeasible_reason(tr, hw) is None
    res = window_bound(tr, hw)
    assert res.status == "bound" and res.value <= rep.metrics.makespan
    assert lower_bound(Instance(tr, hw)) <= rep.metrics.makespan
    assert capacity_floor(tr, "HBM") <= rep.metrics.peak["HBM"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_bound_never_exceeds_the_exact_planners_makespan(seed: int) -> None:
    """CP-SAT finds schedules the heuristics miss (zero-duration ops, overlapped copies)."""
    from solver.methods import SolveOptions

    rng = random.Random(seed)
    trace = random_trace(rng, 12)
    hw = random_hardware(rng, trace)
    inst = make_instance(trace, hw, None, random_budget(rng))
    res = window_bound(trace, inst.hardware)
    out = solve(inst, "cpsat", SolveOptions(time_limit=1.0, threads=1))
    if out.schedule is not None:
        rep = validate(trace, hw, out.schedule)
        assert rep.valid
        assert res.status != "infeasible"
        assert res.value <= rep.metrics.makespan * (1 + 1e-9)


# ---- run and stall windows, the integral relaxation, and the solver's numerics ------------------

def _scaled(trace: Trace, hw: Hardware, time_scale: float, byte_scale: int) -> tuple[Trace, Hardware]:
    """The same instance in other units: every time times ``time_scale``, every size times ``byte_scale``."""
    import dataclasses

    import msgspec

    ops = tuple(msgspec.structs.replace(o, duration=o.duration * time_scale, workspace=o.workspace * byte_scale)
                for o in trace.ops)
    tensors = tuple(msgspec.structs.replace(t, bytes=t.bytes * byte_scale) for t in trace.tensors)
    tiers = tuple(dataclasses.replace(t, capacity=t.capacity * byte_scale) for t in hw.tiers)
    links = tuple(dataclasses.replace(lk, bandwidth=lk.bandwidth * byte_scale / time_scale,
                                      latency=lk.latency * time_scale) for lk in hw.links)
    return Trace(trace.name, tensors, ops), Hardware(hw.name, hw.compute_tier, tiers, links)


def _return_after_run_case() -> tuple[Trace, Hardware]:
    # a (4 B) must be out of HBM (5 B) from g's start (b is made) to h's end (b dies): its write
    # (0.5 s) stalls g and its return (0.5 s) cannot overlap h, so it stalls i: 5 s + 1 s.
    tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
               (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, outputs=("b",)),
                Op(id="h", duration=2.0, inputs=("b",)), Op(id="i", duration=1.0, inputs=("a",))))
    return tr, _hw(5, 8.0)


def test_a_return_cannot_overlap_a_run_during_which_the_tensor_is_out() -> None:
    tr, hw = _return_after_run_case()
    sched = Schedule("t", "h", (Run(op="f"), Copy(id="out", tensor="a", src="HBM", dst="DDR", free_src=True,
                                                   after=("f",)),
                                Run(op="g", after=("out",)), Run(op="h"),
                                Copy(id="in", tensor="a", src="DDR", dst="HBM", after=("h",)),
                                Run(op="i", after=("in",))))
    rep = validate(tr, hw, sched)
    assert rep.valid, rep.errors
    assert rep.metrics.makespan == 6.0
    # the second checked instant of h (its last allocation) keeps the return out of h's run: the
    # integral relaxation meets the optimum, with or without recomputation (which costs f's 1 s)
    for recompute in (False, True):
        res = window_bound(tr, hw, integral=True, recompute=recompute)
        assert res.status == "bound"
        assert res.value == pytest.approx(6.0, rel=1e-7)
        assert res.value <= rep.metrics.makespan
    # the LP keeps 3/4 of a out (8 - 4 x 3/4 = 5 B): 3/8 s of write before g and 3/8 s of return
    # after h (checking op starts only, the return would hide behind h: 5.375 s)
    lp = window_bound(tr, hw, recompute=False)
    assert lp.value == pytest.approx(5.75, rel=1e-7)


def test_the_integral_relaxation_is_tighter_and_still_a_bound() -> None:
    # the module's example: the optimum is 5 s (tests/test_formulations_brute.py enumerates it)
    tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
               (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, outputs=("b",)),
                Op(id="h", duration=1.0, inputs=("b",)), Op(id="i", duration=1.0, inputs=("a",))))
    hw = _hw(5, 8.0)
    lp = window_bound(tr, hw)
    milp = window_bound(tr, hw, integral=True)
    assert lp.status == milp.status == "bound"
    assert lp.value == pytest.approx(4.5, rel=1e-7)
    assert milp.value == pytest.approx(5.0, rel=1e-7)    # whole absences: the optimum
    assert milp.stats["integral"] is True and milp.stats["proven"] is True


MAGNITUDES = [(1.0, 1), (1e-6, 1), (1e-5, 1000), (1e3, 1)]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), magnitude=st.sampled_from(MAGNITUDES))
def test_bounds_in_any_units_never_exceed_a_validated_makespan(seed: int, magnitude: tuple[float, int]) -> None:
    """Microsecond ops and gigabyte tensors in one model once made HiGHS cut off valid schedules."""
    rng = random.Random(seed)
    trace, hw = _scaled(*(lambda t: (t, random_hardware(rng, t)))(random_trace(rng, rng.choice([6, 8, 12]))),
                        *magnitude)
    inst = make_instance(trace, hw, None, random_budget(rng))
    best = None
    for method in ("greedy", "belady", "vdnn"):
        out = solve(inst, method)
        if out.schedule is not None:
            rep = validate(trace, inst.hardware, out.schedule)
            assert rep.valid
            best = rep.metrics.makespan if best is None else min(best, rep.metrics.makespan)
    for integral in (False, True):
        res = window_bound(trace, inst.hardware, integral=integral, time_limit=30)
        if best is not None:
            assert res.status != "infeasible", (integral, res.message)
            assert res.value <= best * (1 + 1e-9), (integral, magnitude, res.value, best)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), magnitude=st.sampled_from(MAGNITUDES[1:]))
def test_bounds_do_not_depend_on_the_units(seed: int, magnitude: tuple[float, int]) -> None:
    rng = random.Random(seed)
    trace = random_trace(rng, rng.choice([6, 8, 12]))
    hw = random_hardware(rng, trace)
    budget = random_budget(rng)
    base = make_instance(trace, hw, None, budget)
    t2, h2 = _scaled(trace, base.hardware, *magnitude)
    for integral in (False, True):
        a = window_bound(trace, base.hardware, integral=integral, time_limit=30)
        b = window_bound(t2, h2, integral=integral, time_limit=30)
        assert a.status == b.status
        if a.status == "bound" and a.stats.get("proven") and b.stats.get("proven"):
            assert b.value == pytest.approx(a.value * magnitude[0], rel=1e-6), (integral, magnitude)
    lp = window_bound(trace, base.hardware)
    milp = window_bound(trace, base.hardware, integral=True)
    if lp.status == milp.status == "bound":
        assert milp.value >= lp.value * (1 - 1e-7)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_the_chained_sums_and_the_simplex_change_nothing(seed: int) -> None:
    """The LP's running sums as chains of variables (each copy read once) and the interior-point
    solve give the same optimum as the sums spelled out in every row and the dual simplex."""
    import formulations.relax as relax

    rng = random.Random(seed)
    trace = random_trace(rng, rng.choice([8, 12, 16]))
    inst = make_instance(trace, random_hardware(rng, trace), None, random_budget(rng))
    chained = window_bound(trace, inst.hardware)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(relax, "_CHAIN_MIN", 10**9)
        m.setattr(relax, "LP_METHOD", "simplex")
        spelled = window_bound(trace, inst.hardware)
    assert chained.status == spelled.status
    if chained.status == "bound":
        assert chained.value == pytest.approx(spelled.value, rel=1e-7)
        if chained.stats["critical_ops"] > 2:
            # the chains only pay off, and only appear, past a few copies per sum
            assert chained.stats["variables"] >= spelled.stats["variables"]
