"""Every registered heuristic on every instance of the tiny and small suites, at budgets 1.0, 0.7, 0.5.

A method either returns a schedule that the validator accepts (checked against the
original hardware with only the schedule's own ``capacity`` field, its bound below its
makespan), or says why it cannot (``infeasible``); it never returns an invalid schedule
(status ``error``).
"""

from __future__ import annotations

import pytest

from heuristics_helpers import checked_solve
from solver.formats import load_hardware, trace_from_document
from solver.methods import REGISTRY
from solver.suites import load_suite, materialize

HEURISTICS = [name for name, m in REGISTRY.items() if not m.exact]
BUDGETS = (1.0, 0.7, 0.5)
CASES = [(s, inst.name) for s in ("tiny", "small") for inst in load_suite(s).instances]


@pytest.fixture(scope="module")
def instances(tmp_path_factory):
    cache = tmp_path_factory.mktemp("suite-cache")
    out = {}
    for suite in ("tiny", "small"):
        for inst in load_suite(suite).instances:
            out[(suite, inst.name)] = (trace_from_document(materialize(inst, cache_dir=cache)),
                                       load_hardware(inst.hardware_path))
    return out


@pytest.mark.parametrize("suite,name", CASES, ids=[f"{s}/{n}" for s, n in CASES])
def test_every_method_valid_or_infeasible(instances, suite, name):
    trace, hardware = instances[(suite, name)]
    statuses = {}
    for budget in BUDGETS:
        for method in HEURISTICS:
            out = checked_solve(trace, hardware, budget, method)
            statuses[(budget, method)] = out.status
            assert out.status in ("feasible", "optimal", "infeasible"), (method, budget, out.message)
    # the selective planner fits whenever a baseline does
    for budget in BUDGETS:
        if any(statuses[(budget, m)] == "feasible" for m in HEURISTICS):
            assert statuses[(budget, "greedy")] == "feasible", budget


def test_keep_at_full_budget_on_suites_that_fit(instances):
    """At budget 1.0 (the no-offload peak) keep fits unless the trace starts with more than fits."""
    trace, hardware = instances[("tiny", "chain-12-skip3")]
    assert checked_solve(trace, hardware, 1.0, "keep").status == "feasible"
