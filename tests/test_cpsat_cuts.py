"""The CP-SAT model's redundant constraints at critical op starts (``_Model._start_cuts``) must
not cut off any solution: with and without them the model has the same optimum."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formulations import cpsat
from formulations.common import Unsupported, build_problem
from heuristics_helpers import random_budget, random_hardware, random_trace
from solver.solve import make_instance


def _solve(problem, cuts: bool, monkeypatch) -> cpsat.CpResult:
    with monkeypatch.context() as mp:
        if not cuts:
            mp.setattr(cpsat._Model, "_start_cuts", lambda self: None)
        return cpsat.solve_cpsat(problem, cpsat.CpOptions(threads=1, time_limit=5))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1))
def test_cuts_keep_the_optimum(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    trace = random_trace(rng, rng.randint(2, 10))
    inst = make_instance(trace, random_hardware(rng, trace), None, random_budget(rng))
    try:
        problem = build_problem(trace, inst.hardware)
    except Unsupported:
        return
    try:
        with_cuts = _solve(problem, True, monkeypatch)
    except ValueError:      # outside the model (a tensor cannot reach its final tier): no cuts built
        return
    without = _solve(problem, False, monkeypatch)
    if with_cuts.status == "optimal" and without.status == "optimal":
        assert with_cuts.objective == pytest.approx(without.objective, rel=1e-9, abs=1e-12)
    # cuts may prove infeasibility sooner (the other side timing out), never remove every solution
    if with_cuts.status == "infeasible":
        assert without.status not in ("optimal", "feasible")


def test_writes_from_time_zero_bound_the_first_stall() -> None:
    # two 4-byte persistent tensors start in HBM and are read only by the last op; y (8 bytes)
    # needs all of HBM, so both must be written out first: 1 s each on one stream from time 0,
    # so f1 starts at 2 s (the cut on the write stream is tight here); y dies after f2, and the
    # two copies back take 1 s each: makespan 7 s, the brute-force optimum
    from formulations.brute import enumerate_best
    from solver.model import Hardware, Link, Op, Tensor, Tier, Trace

    tr = Trace("w", (Tensor(id="w1", bytes=4, persistent=True), Tensor(id="w2", bytes=4, persistent=True),
                     Tensor(id="y", bytes=8)),
               (Op(id="f0", duration=1.0), Op(id="f1", duration=1.0, outputs=("y",)),
                Op(id="f2", duration=1.0, inputs=("y",)), Op(id="f3", duration=1.0, inputs=("w1", "w2"))))
    hw = Hardware("h", "HBM", (Tier("HBM", 8), Tier("DDR", 100)), (Link("HBM", "DDR", 4.0), Link("DDR", "HBM", 4.0)))
    brute = enumerate_best(tr, hw)
    assert brute.makespan == pytest.approx(7.0)
    # the model itself (the planner would also return other candidates' schedules)
    res = cpsat.solve_cpsat(build_problem(tr, hw), cpsat.CpOptions(threads=1, time_limit=20))
    assert res.status == "optimal" and res.exact_clock
    assert res.objective == pytest.approx(brute.makespan)
