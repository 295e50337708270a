"""The solve driver: instances, budgets, validation of every schedule, bounds, gap, and failures."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from solver import solve as solve_mod
from solver.methods import Instance, PlanResult, SolveOptions, UnknownMethod
from solver.model import Hardware, Link, Op, Run, Schedule, Tensor, Tier, Trace
from solver.solve import InstanceError, budget_capacity, make_instance, solve

MiB = 2**20


def tiny_trace() -> Trace:
    return Trace("t", (Tensor(id="x", bytes=100), Tensor(id="y", bytes=50)),
                 (Op(id="a", duration=1.0, outputs=("x",)), Op(id="b", duration=2.0, inputs=("x",), outputs=("y",))))


def hw(cap: int = 1000) -> Hardware:
    return Hardware("h", "HBM", (Tier("HBM", cap), Tier("DDR", 10**6)),
                    (Link("HBM", "DDR", 1e6), Link("DDR", "HBM", 1e6)))


def test_budget_is_a_fraction_of_the_no_offload_peak_rounded_up_exactly():
    tr = tiny_trace()
    assert tr.no_offload_peak == 150
    assert budget_capacity(tr, 0.7) == 105          # exact decimal: no 105.00000000000001 -> 106
    assert budget_capacity(tr, 0.333) == 50         # 49.95 rounds up
    assert budget_capacity(tr, 1.0) == 150
    for bad in (0.0, -0.5, math.inf, math.nan):
        with pytest.raises(InstanceError):
            budget_capacity(tr, bad)


def test_make_instance_records_the_capacity_it_was_made_for():
    inst = make_instance(tiny_trace(), hw(), {"DDR": 5000}, budget=0.5)
    assert inst.capacity == {"DDR": 5000, "HBM": 75}
    assert inst.compute_capacity == 75 and inst.hardware.capacity["DDR"] == 5000
    assert make_instance(tiny_trace(), hw()).capacity == {}


@pytest.mark.parametrize("caps,budget,words", [
    ({"NVM": 5}, None, "unknown tier 'NVM'"),
    ({"HBM": -1}, None, ">= 0"),
])
def test_make_instance_errors(caps, budget, words):
    with pytest.raises(InstanceError, match=words):
        make_instance(tiny_trace(), hw(), caps, budget)


def test_a_budget_within_the_device_names_its_source_and_one_past_it_is_refused():
    tr = tiny_trace()
    peak = tr.no_offload_peak
    inst = make_instance(tr, hw(), {"HBM": 10 * peak}, 2.0, within_device=True)
    assert inst.compute_capacity == 2 * peak and inst.capacity_source["HBM"] == "--budget 2"
    assert inst.capacity_source["DDR"] == "hardware"
    with pytest.raises(InstanceError, match="more than the device"):
        make_instance(tr, hw(), {"HBM": peak}, 2.0, within_device=True)
    assert make_instance(tr, hw(), {"HBM": peak}, 2.0).compute_capacity == 2 * peak   # the API's what-if


def test_solve_fills_the_schedule_solver_field_from_the_validator():
    out = solve(make_instance(tiny_trace(), hw(), budget=1.0), "greedy")
    assert out.ok and out.status == "feasible"
    info = out.schedule.solver
    assert info["method"] == "greedy" and info["status"] == "feasible"
    assert info["objective"] == out.report.metrics.makespan == 3.0
    assert info["bound"] == out.bound == 3.0 and out.gap == 0.0
    assert info["wall_s"] >= 0 and out.wall_s >= out.plan_s >= 0
    assert dict(out.schedule.capacity) == {"HBM": 150}
    assert set(out.bounds) >= {"compute", "fetch", "writeback", "capacity"}
    doc = out.to_dict()
    assert doc["status"] == "feasible" and doc["metrics"]["makespan"] == 3.0 and doc["valid"] is True


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(UnknownMethod, match="valid methods: greedy"):
        solve(make_instance(tiny_trace(), hw()), "nope")


def test_infeasible_instance_names_the_op_and_bytes():
    out = solve(make_instance(tiny_trace(), hw(120)), "greedy")
    assert out.status == "infeasible" and not out.ok and out.schedule is None
    assert "op 'b'" in out.message and "150 bytes" in out.message and "120" in out.message


def _fake_method(monkeypatch, planner):
    fake = SimpleNamespace(name="fake", load=lambda: planner)
    monkeypatch.setattr(solve_mod, "get_method", lambda name: fake)


def test_an_invalid_planner_schedule_is_an_error_never_a_schedule(monkeypatch):
    def bad(instance: Instance, options: SolveOptions) -> PlanResult:
        # runs op b before op a: the validator refuses it
        return PlanResult("feasible", Schedule("t", "h", (Run(op="b"), Run(op="a"))))
    _fake_method(monkeypatch, bad)
    out = solve(make_instance(tiny_trace(), hw()), "fake")
    assert out.status == "error" and out.schedule is None and not out.ok
    assert "invalid schedule" in out.message and "order" in out.message
    assert out.report is not None and not out.report.valid


def test_a_planner_crash_is_an_error_with_its_message(monkeypatch):
    def boom(instance, options):
        raise RuntimeError("kaput")
    _fake_method(monkeypatch, boom)
    out = solve(make_instance(tiny_trace(), hw()), "fake")
    assert out.status == "error" and "kaput" in out.message


def test_planner_bound_is_used_when_larger(monkeypatch):
    from solver.plans import keep_schedule

    def with_bound(instance, options):
        return PlanResult("optimal", keep_schedule(instance.trace, instance.hardware), bound=3.0)
    _fake_method(monkeypatch, with_bound)
    out = solve(make_instance(tiny_trace(), hw()), "fake")
    assert out.status == "optimal" and out.bounds["fake"] == 3.0 and out.gap == 0.0


def test_planner_without_schedule_keeps_its_status(monkeypatch):
    _fake_method(monkeypatch, lambda i, o: PlanResult("timeout", message="ran out of time"))
    out = solve(make_instance(tiny_trace(), hw()), "fake")
    assert out.status == "timeout" and out.message == "ran out of time"


def test_every_registered_method_through_the_driver():
    from solver.methods import REGISTRY
    for name, method in REGISTRY.items():
        if method.exact:
            continue
        out = solve(make_instance(tiny_trace(), hw(), budget=1.0), name)
        assert out.ok, (name, out.message)
        assert out.schedule.solver["method"] == name
