"""The exact planners on instances of the ``tiny`` suite (short time limits).

* never worse than the greedy warm start;
* the bound they report never exceeds their validated makespan;
* where both prove optimality, CP-SAT's validated makespan is no worse than the stage MILP's
  (within the CP-SAT clock's resolution): the continuous model contains the stage model.
"""

from __future__ import annotations

import pytest

from formulations.planners import plan_auto, plan_cpsat, plan_milp
from solver.formats import load_hardware, load_trace
from solver.methods import SolveOptions
from solver.solve import make_instance, solve
from solver.suites import load_suite, trace_path
from solver.timing import validate

CASES = [("example-mlp", 0.8), ("chain-8-weights-ddr", 0.8), ("random-30", 0.6), ("moe-tiny-1layer", 0.8),
         ("decode-tiny-1layer", 0.8), ("random-40-dense", 0.6)]
LIMIT = 3.0


@pytest.fixture(scope="module")
def runs():
    suite = load_suite("tiny")
    out = {}
    for name, budget in CASES:
        inst = suite.instance(name)
        tr = load_trace(trace_path(inst))
        hw = load_hardware(inst.hardware_path)
        instance = make_instance(tr, hw, budget=budget)
        greedy = solve(instance, "greedy", SolveOptions(time_limit=LIMIT))
        res = {}
        for method, fn in (("milp", plan_milp), ("cpsat", plan_cpsat), ("auto", plan_auto)):
            r = fn(instance, SolveOptions(time_limit=LIMIT, threads=1))
            rep = validate(tr, instance.hardware, r.schedule) if r.schedule is not None else None
            res[method] = (r, rep)
        out[(name, budget)] = (instance, greedy, res)
    return out


def test_valid_and_never_worse_than_greedy(runs):
    for key, (instance, greedy, res) in runs.items():
        assert greedy.ok, key
        for method, (r, rep) in res.items():
            assert rep is not None and rep.valid, (key, method, r.status, r.message)
            assert r.status in ("optimal", "feasible")
            assert rep.metrics.makespan <= greedy.makespan * (1 + 1e-9), (key, method)


def test_bound_never_exceeds_validated_makespan(runs):
    for key, (_, _, res) in runs.items():
        for method, (r, rep) in res.items():
            if r.bound is not None:
                assert r.bound <= rep.metrics.makespan * (1 + 1e-9), (key, method, r.bound)


def test_cpsat_no_worse_than_milp_when_both_optimal(runs):
    both = 0
    for key, (instance, _, res) in runs.items():
        (rm, vm), (rc, vc) = res["milp"], res["cpsat"]
        if rm.status == "optimal" and rc.status == "optimal":
            both += 1
            tol = rc.stats.get("model_resolution_s", 0.0) * (2 * len(instance.trace.ops) + 10)
            assert vc.metrics.makespan <= vm.metrics.makespan + tol, key
    assert both >= 1
