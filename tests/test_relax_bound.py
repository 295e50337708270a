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
