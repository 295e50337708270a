"""Brute force against the exact formulations on random tiny instances.

Every schedule of the enumerated space (which intervals leave, the order of copies on each
stream, after which op's or copy's end each copy back is issued, which write a stalled op waits
for) is scored by the validator. CP-SAT is exact for the timing model: its validated optimum
equals the best enumerated makespan. The stage MILP is exact for its stage model only: its
validated makespan is never below the enumerated optimum.
"""

from __future__ import annotations

import math

import pytest

from formulations.brute import enumerate_best, random_tiny
from formulations.planners import plan_cpsat, plan_milp
from formulations.relax import window_bound
from solver.methods import Instance, SolveOptions
from solver.timing import validate

OPTS = SolveOptions(time_limit=20, threads=1, recompute=False, extra={"warm": "none"})


def _pick(count: int, ops: int, max_candidates: int, max_count: int, seeds: range):
    out = []
    for seed in seeds:
        inst = random_tiny(seed, ops=ops, max_candidates=max_candidates)
        if inst is None:
            continue
        best = enumerate_best(*inst, max_count=max_count)
        if best is None or not math.isfinite(best.makespan):
            continue
        out.append((seed, inst, best))
        if len(out) >= count:
            break
    return out


@pytest.fixture(scope="module")
def cases():
    picked = _pick(6, ops=6, max_candidates=3, max_count=4000, seeds=range(0, 300))
    picked += _pick(2, ops=8, max_candidates=3, max_count=20000, seeds=range(100, 400))
    assert len(picked) >= 6
    return picked


def _validated(tr, hw, res):
    assert res.schedule is not None, res.message
    rep = validate(tr, hw, res.schedule)
    assert rep.valid, [e.message for e in rep.errors]
    return rep.metrics.makespan


def test_cpsat_equals_enumerated_optimum(cases):
    for seed, (tr, hw), best in cases:
        res = plan_cpsat(Instance(tr, hw), OPTS)
        assert res.status == "optimal", (seed, res.status, res.message)
        got = _validated(tr, hw, res)
        # every duration is a multiple of 0.5 s: the CP-SAT clock is exact here
        assert got == pytest.approx(best.makespan, abs=1e-9), (seed, got, best.makespan)
        assert res.stats["model_exact_clock"] is True


def test_milp_never_below_enumerated_optimum(cases):
    for seed, (tr, hw), best in cases:
        res = plan_milp(Instance(tr, hw), OPTS)
        got = _validated(tr, hw, res)
        assert got >= best.makespan - 1e-9, (seed, got, best.makespan)


def test_cpsat_no_worse_than_milp_when_both_prove(cases):
    for seed, (tr, hw), best in cases:
        rc = plan_cpsat(Instance(tr, hw), OPTS)
        rm = plan_milp(Instance(tr, hw), OPTS)
        if rc.status == rm.status == "optimal":
            assert _validated(tr, hw, rc) <= _validated(tr, hw, rm) + 1e-9, seed


def test_window_bound_below_enumerated_optimum(cases):
    for seed, (tr, hw), best in cases:
        res = window_bound(tr, hw, recompute=False)
        assert res.status == "bound"
        assert res.value <= best.makespan + 1e-9, (seed, res.value, best.makespan)


def test_enumeration_finds_the_stall_schedule():
    from solver.model import Hardware, Link, Op, Tensor, Tier, Trace

    tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
               (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, outputs=("b",)),
                Op(id="h", duration=1.0, inputs=("b",)), Op(id="i", duration=1.0, inputs=("a",))))
    hw = Hardware("h", "HBM", (Tier("HBM", 5), Tier("DDR", 100)),
                  (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0)))
    best = enumerate_best(tr, hw)
    assert best.makespan == 5.0   # write 0.5 s before g, fetch 0.5 s before i
    assert validate(tr, hw, best.schedule).valid
