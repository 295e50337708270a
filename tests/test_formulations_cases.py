"""Hand-made cases for the exact planners: tiers, recompute, weights, updates, objectives, status."""

from __future__ import annotations

import json
import os

import pytest

from formulations.backends import solve_pulp
from formulations.common import build_problem
from formulations.planners import plan_auto, plan_cpsat, plan_milp, plan_milp_cbc
from solver.model import Copy, Free, Hardware, Link, Op, Recompute, Tensor, Tier, Trace
from solver.methods import Instance, SolveOptions
from solver.timing import validate

EXACT = {"milp": plan_milp, "milp-cbc": plan_milp_cbc, "cpsat": plan_cpsat, "auto": plan_auto}


def _opts(**extra):
    return SolveOptions(time_limit=20, threads=1, extra=extra)


def _check(tr, hw, res):
    assert res.schedule is not None, res.message
    rep = validate(tr, hw, res.schedule)
    assert rep.valid, [e.message for e in rep.errors]
    if res.bound is not None:
        assert res.bound <= rep.metrics.makespan * (1 + 1e-9) + 1e-12
    return rep


# ---- three tiers: the copy must go to SSD through DDR -------------------------------------------

def _three_tier():
    # both activations must be out while g's 16-byte output exists; DDR holds only one of them,
    # so the other goes on to SSD (staged through DDR) and comes back the same way
    filler = [Op(id=f"p{i}", duration=4.0) for i in range(1, 4)]
    ops = ([Op(id="f1", duration=1.0, outputs=("a1",)), Op(id="f2", duration=1.0, outputs=("a2",))] + filler
           + [Op(id="g", duration=4.0, outputs=("b",)), Op(id="h", duration=4.0, inputs=("b",)),
              Op(id="i1", duration=1.0, inputs=("a1",)), Op(id="p6", duration=4.0), Op(id="p7", duration=4.0),
              Op(id="i2", duration=1.0, inputs=("a2",))])
    tr = Trace("three", (Tensor(id="a1", bytes=8), Tensor(id="a2", bytes=8), Tensor(id="b", bytes=16)), tuple(ops))
    hw = Hardware("h3", "HBM", (Tier("HBM", 16), Tier("DDR", 8), Tier("SSD", 1000)),
                  (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0),
                   Link("DDR", "SSD", 8.0), Link("SSD", "DDR", 8.0)))
    return tr, hw


@pytest.mark.parametrize("method", ["milp", "cpsat"])
def test_three_tiers_route_through_ddr_to_ssd(method):
    tr, hw = _three_tier()
    res = EXACT[method](Instance(tr, hw), SolveOptions(time_limit=20, threads=1, recompute=False,
                                                       extra={"warm": "none"}))
    rep = _check(tr, hw, res)
    hops = {(a.src, a.dst) for a in res.schedule.actions if isinstance(a, Copy)}
    assert {("HBM", "DDR"), ("DDR", "SSD"), ("SSD", "DDR"), ("DDR", "HBM")} <= hops
    assert rep.metrics.peak["DDR"] <= 8


# ---- recompute ------------------------------------------------------------------------------------

def _one_tier_chain():
    tr = Trace("rc", (Tensor(id="x", bytes=2), Tensor(id="a", bytes=6), Tensor(id="b", bytes=6),
                      Tensor(id="c", bytes=2)),
               (Op(id="f", duration=1.0, inputs=("x",), outputs=("a",)),
                Op(id="g", duration=3.0, inputs=("a",), outputs=("b",)),
                Op(id="h", duration=3.0, inputs=("b",), outputs=("c",)),
                Op(id="k", duration=1.0, inputs=("a", "c", "x"))))
    hw = Hardware("one", "HBM", (Tier("HBM", 14),))
    return tr, hw


@pytest.mark.parametrize("method", ["milp", "milp-cbc", "cpsat", "auto"])
def test_recompute_on_one_tier(method):
    tr, hw = _one_tier_chain()
    assert tr.no_offload_peak > 14
    res = EXACT[method](Instance(tr, hw), _opts())
    rep = _check(tr, hw, res)
    assert any(isinstance(a, Recompute) and a.op == "f" for a in res.schedule.actions)
    assert rep.metrics.makespan == pytest.approx(9.0)
    if method in ("milp", "milp-cbc", "auto"):
        assert res.status == "optimal"


def test_recompute_refused_without_option():
    tr, hw = _one_tier_chain()
    res = plan_cpsat(Instance(tr, hw), SolveOptions(time_limit=10, threads=1, recompute=False))
    assert res.schedule is None
    assert res.status in ("infeasible", "error")


# ---- recompute of an op with two outputs: one rerun restores both -------------------------------

def _two_outputs(tiers: int):
    # f makes a and b; while c lives both must be out of HBM (9 bytes), and h needs both again:
    # one rerun of f restores them (the timing model recreates every absent live output), which
    # beats copying 8 bytes out and back over a slow link
    tr = Trace("two", (Tensor(id="x", bytes=1), Tensor(id="a", bytes=4), Tensor(id="b", bytes=4),
                       Tensor(id="c", bytes=6)),
               (Op(id="f", duration=1.0, inputs=("x",), outputs=("a", "b")),
                Op(id="g", duration=1.0, outputs=("c",)), Op(id="k", duration=1.0, inputs=("c",)),
                Op(id="h", duration=1.0, inputs=("a", "b", "x"))))
    if tiers == 1:
        return tr, Hardware("one", "HBM", (Tier("HBM", 9),))
    return tr, Hardware("two", "HBM", (Tier("HBM", 9), Tier("DDR", 100)),
                        (Link("HBM", "DDR", 1.0), Link("DDR", "HBM", 1.0)))


@pytest.mark.parametrize("tiers", [1, 2])
@pytest.mark.parametrize("method", ["cpsat", "auto"])
def test_multi_output_op_is_recomputed_once(method, tiers):
    tr, hw = _two_outputs(tiers)
    res = EXACT[method](Instance(tr, hw), _opts(warm="none"))
    rep = _check(tr, hw, res)
    reruns = [a for a in res.schedule.actions if isinstance(a, Recompute)]
    assert [a.op for a in reruns] == ["f"]
    assert rep.metrics.makespan == pytest.approx(5.0)
    assert res.status == "optimal"


def test_joint_rerun_keeps_a_present_output_in_place():
    # only a must leave (cap 10): the rerun still recreates nothing that is present, so b may stay
    tr, _ = _two_outputs(1)
    hw = Hardware("one", "HBM", (Tier("HBM", 10),))
    res = plan_cpsat(Instance(tr, hw), _opts(warm="none"))
    rep = _check(tr, hw, res)
    assert rep.metrics.makespan == pytest.approx(5.0)
    assert res.status == "optimal"


# ---- read-only weights: dropped, not written back; updated weights: written back ------------------

def _weights(update: bool):
    ops = [Op(id="fwd", duration=2.0, inputs=("w", "x"), outputs=("y",)),
           Op(id="mid", duration=6.0, outputs=("z",)),
           Op(id="use", duration=6.0, inputs=("z",)),
           Op(id="bwd", duration=2.0, inputs=("w", "y"))]
    if update:
        ops.append(Op(id="opt", duration=1.0, updates=("w",)))
    tr = Trace("wts", (Tensor(id="w", bytes=6, kind="weight", initial_tier="DDR", persistent=True,
                              final_tier="DDR"),
                       Tensor(id="x", bytes=1), Tensor(id="y", bytes=2), Tensor(id="z", bytes=6)), tuple(ops))
    hw = Hardware("h2", "HBM", (Tier("HBM", 10), Tier("DDR", 100)),
                  (Link("HBM", "DDR", 6.0), Link("DDR", "HBM", 6.0)))
    return tr, hw


@pytest.mark.parametrize("method", ["milp", "cpsat"])
def test_read_only_weight_is_dropped_not_written_back(method):
    tr, hw = _weights(update=False)
    res = EXACT[method](Instance(tr, hw), _opts())
    _check(tr, hw, res)
    acts = res.schedule.actions
    assert not any(isinstance(a, Copy) and a.tensor == "w" and a.src == "HBM" for a in acts)
    assert any(isinstance(a, Free) and a.tensor == "w" and a.tier == "HBM" for a in acts)
    fetches = [a for a in acts if isinstance(a, Copy) and a.tensor == "w" and a.dst == "HBM"]
    assert len(fetches) == 2


@pytest.mark.parametrize("method", ["milp", "cpsat"])
def test_updated_weight_is_written_back(method):
    tr, hw = _weights(update=True)
    res = EXACT[method](Instance(tr, hw), _opts())
    _check(tr, hw, res)
    outs = [a for a in res.schedule.actions if isinstance(a, Copy) and a.tensor == "w" and a.src == "HBM"]
    assert outs, "the updated weight must be copied back to its final tier"


# ---- objectives --------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["milp", "cpsat"])
def test_min_memory_objective(method):
    tr, hw = _one_tier_chain()
    hw = hw.with_capacity({"HBM": 100})
    res = EXACT[method](Instance(tr, hw), _opts(objective="min-memory", max_overhead=0.2))
    rep = _check(tr, hw, res)
    cap = res.stats["capacity"]
    assert cap == res.objective < tr.no_offload_peak
    assert rep.metrics.peak["HBM"] <= cap
    assert validate(tr, hw.with_capacity({"HBM": cap}), res.schedule).valid
    assert rep.metrics.makespan <= 1.2 * tr.compute_time + 1e-9


def test_min_bytes_objective_moves_less_than_makespan_optimum():
    tr, hw = _weights(update=False)
    fast = plan_cpsat(Instance(tr, hw), _opts())
    ms = validate(tr, hw, fast.schedule).metrics.makespan
    res = plan_milp(Instance(tr, hw), _opts(objective="min-bytes", makespan=ms * 2))
    rep = _check(tr, hw, res)
    assert rep.metrics.makespan <= ms * 2 + 1e-9
    assert res.objective == sum(rep.metrics.bytes_moved.values())


def test_unknown_objective_is_an_error():
    tr, hw = _one_tier_chain()
    assert plan_milp(Instance(tr, hw), _opts(objective="fastest")).status == "error"


# ---- model export ------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mps", ".lp"])
def test_write_model(tmp_path, suffix):
    tr, hw = _one_tier_chain()
    path = os.fspath(tmp_path / f"model{suffix}")
    res = plan_milp(Instance(tr, hw), _opts(write_model=path))
    assert res.schedule is not None and os.path.getsize(path) > 0


# ---- honest status -----------------------------------------------------------------------------

def _hard_knapsack():
    import random

    import pulp

    rng = random.Random(3)
    p = pulp.LpProblem("hard", pulp.LpMinimize)
    xs = [pulp.LpVariable(f"x{i}", 0, 1, cat="Binary") for i in range(90)]
    for j in range(60):
        p += pulp.lpSum(rng.randint(1, 30) * x for x in rng.sample(xs, 25)) >= 180
    p += pulp.lpSum(rng.randint(5, 50) * x for x in xs)
    return p


@pytest.mark.parametrize("backend", ["highs", "cbc"])
def test_no_optimal_after_time_limit(backend):
    out = solve_pulp(_hard_knapsack(), backend, time_limit=0.3)
    assert out.status in ("feasible", "timeout")
    if out.status == "feasible":
        assert out.bound is None or out.bound <= out.objective + 1e-9


def test_cpsat_not_optimal_when_stopped_early():
    from solver.suites import load_suite, trace_path
    from solver.formats import load_hardware, load_trace
    from solver.solve import make_instance

    inst = load_suite("tiny").instance("train-tiny-1layer")
    tr = load_trace(trace_path(inst))
    hw = load_hardware(inst.hardware_path)
    I = make_instance(tr, hw, budget=0.8)
    res = plan_cpsat(I, SolveOptions(time_limit=2, threads=1))
    assert res.status == "feasible"       # stopped by the limit, never "optimal"
    _check(tr, I.hardware, res)


def test_infeasible_when_an_op_does_not_fit():
    tr, hw = _one_tier_chain()
    res = plan_milp(Instance(tr, hw.with_capacity({"HBM": 9})), _opts())
    assert res.status == "infeasible" and res.schedule is None


def test_auto_uses_the_milp_when_only_recompute_can_help():
    tr, hw = _one_tier_chain()
    # without a warm start (with one, the window MILP bound proves greedy's schedule optimal first)
    res = plan_auto(Instance(tr, hw), SolveOptions(time_limit=20, threads=1, extra={"warm": "none"}))
    assert res.stats["route"] == "milp" and res.status == "optimal"


# ---- shared analysis -----------------------------------------------------------------------------

def test_gaps_and_epochs_split_at_updates():
    tr, hw = _weights(update=True)
    p = build_problem(tr, hw)
    w = tr.tensor_index["w"]
    eps = [e for e in p.epochs if e.tensor == w]
    assert [(e.start, e.end, e.stale_at_end, e.home) for e in eps] == [(-1, 4, True, "DDR"), (4, 5, False, None)]
    assert eps[1].final == "DDR"


def test_registry_lists_the_exact_methods():
    from solver.methods import get_method

    for name in ("milp", "milp-cbc", "cpsat", "auto"):
        m = get_method(name)
        assert m.exact and callable(m.load())


# ---- tierplan bound ------------------------------------------------------------------------------

def test_bound_cli(tmp_path, capsys):
    from solver.cli import main
    from solver.formats import hardware_to_document, trace_to_document

    tr, hw = _weights(update=True)
    tp, hp = tmp_path / "t.json", tmp_path / "h.json"
    tp.write_text(json.dumps(trace_to_document(tr)))
    hp.write_text(json.dumps(hardware_to_document(hw)))
    assert main(["bound", str(tp), "-H", str(hp), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    res = plan_cpsat(Instance(tr, hw), _opts())
    assert doc["status"] == "bound"
    assert doc["bound"] <= validate(tr, hw, res.schedule).metrics.makespan + 1e-9
    assert main(["bound", str(tp), "-H", str(hp), "--capacity", "HBM=5"]) == 1


def test_bound_cli_milp_meets_the_example_optimum(capsys):
    """The example at 80% of its peak: a0 (64 MiB) is out during bwd1 and a 16 MiB tensor during
    bwd0, each returning after the run it sits out, so every schedule takes 13 ms + 1.352 ms +
    0.3455 ms; the integral relaxation proves it and greedy's schedule meets it."""
    from pathlib import Path

    from solver.cli import main
    from solver.formats import load_hardware, load_trace
    from solver.solve import make_instance

    ex = Path(__file__).resolve().parents[1] / "instances" / "examples"
    args = ["bound", str(ex / "trace.json"), "-H", str(ex / "hardware.json"), "--budget", "0.8", "--json"]
    assert main(args + ["--milp"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["best"] == "window-milp" and doc["relaxation_milp"] == "bound"
    assert doc["bounds"]["window-milp"] > doc["bounds"]["window-lp"]
    assert doc["bound"] == pytest.approx(0.013 + 2 * 1e-5 + (64 + 16) * 2**20 / 50e9, rel=1e-6)
    assert main(args) == 0
    assert "window-milp" not in json.loads(capsys.readouterr().out)["bounds"]
    inst = make_instance(load_trace(ex / "trace.json"), load_hardware(ex / "hardware.json"), budget=0.8)
    for plan in (plan_cpsat, plan_milp):
        res = plan(inst, _opts())
        assert res.status == "optimal"
        assert res.stats["window_milp_bound"] == pytest.approx(doc["bound"], rel=1e-9)
        assert validate(inst.trace, inst.hardware, res.schedule).metrics.makespan <= res.bound * (1 + 1e-9)


def test_bounds_option_picks_the_last_bound_computed():
    """``bounds=lp`` stops before the window MILP and ``bounds=cheap`` before the window LP; the
    planner still returns a valid schedule, and an unknown value is an error naming the valid ones."""
    from pathlib import Path

    from solver.formats import load_hardware, load_trace
    from solver.solve import make_instance

    ex = Path(__file__).resolve().parents[1] / "instances" / "examples"
    inst = make_instance(load_trace(ex / "trace.json"), load_hardware(ex / "hardware.json"), budget=0.8)
    full = plan_cpsat(inst, _opts())
    assert "window_lp_bound" in full.stats and "window_milp_bound" in full.stats
    lp = plan_cpsat(inst, _opts(bounds="lp"))
    assert "window_lp_bound" in lp.stats and "window_milp" not in lp.stats
    cheap = plan_cpsat(inst, _opts(bounds="cheap"))
    assert "window_lp" not in cheap.stats and "window_milp" not in cheap.stats
    for res in (lp, cheap):
        _check(inst.trace, inst.hardware, res)
    bad = plan_auto(inst, _opts(bounds="exact"))
    assert bad.status == "error" and "cheap, lp, milp" in bad.message


@pytest.mark.parametrize("threads,interleaved", [(1, True), (2, False)])
def test_one_cpsat_worker_interleaves_the_portfolio(monkeypatch, threads, interleaved):
    """With one worker CP-SAT runs its portfolio (neighbourhood search from the hint included) in
    turns; with more, the workers run it side by side."""
    from ortools.sat.python import cp_model

    from formulations.cpsat import CpOptions, solve_cpsat

    seen = []
    original = cp_model.CpSolver.solve

    def spy(self, model, *args, **kwargs):
        if not self.parameters.stop_after_first_solution:     # the main solve, not a hint completion
            seen.append((self.parameters.num_workers, self.parameters.interleave_search))
        return original(self, model, *args, **kwargs)

    monkeypatch.setattr(cp_model.CpSolver, "solve", spy)
    tr, hw = _three_tier()
    res = solve_cpsat(build_problem(tr, hw), CpOptions(threads=threads, time_limit=5))
    assert res.status == "optimal"
    assert seen == [(threads, interleaved)]


def _tiny(name: str, budget: float):
    from solver.formats import load_hardware, load_trace
    from solver.solve import make_instance
    from solver.suites import load_suite, trace_path

    inst = next(i for i in load_suite("tiny").instances if i.name == name)
    return make_instance(load_trace(trace_path(inst)), load_hardware(inst.hardware_path), budget=budget)


def test_neighbourhood_search_first_then_the_portfolio_proves(monkeypatch):
    """With ``lns_first`` CP-SAT first improves its hint by neighbourhood search alone (which
    cannot prove this case), then its whole portfolio goes on from the best solution found and
    proves it: the proof is still CP-SAT's own. How soon the proof comes depends on the machine: on
    a loaded one the 20 s may end first, and the answer is then an honest ``feasible``."""
    from ortools.sat.python import cp_model

    from formulations.cpsat import CpOptions, solve_cpsat
    from formulations.warm import best_heuristic

    seen = []
    original = cp_model.CpSolver.solve

    def spy(self, model, *args, **kwargs):
        if not self.parameters.stop_after_first_solution:
            seen.append((self.parameters.use_lns_only, len(model.proto.solution_hint.vars)))
        return original(self, model, *args, **kwargs)

    monkeypatch.setattr(cp_model.CpSolver, "solve", spy)
    inst = _tiny("chain-8-weights-ddr", 0.6)
    warm = best_heuristic(inst, time_limit=2.0)
    problem = build_problem(inst.trace, inst.hardware)
    res = solve_cpsat(problem, CpOptions(threads=2, time_limit=20, lns_first=0.1, warm=warm.schedule))
    assert [lns for lns, _ in seen] == [True, False] and all(n > 0 for _, n in seen)
    assert res.stats["lns_solver"] == "FEASIBLE" and 0 < res.stats["lns_s"] <= 20 * 0.1 + 10   # honoured
    assert res.status in ("optimal", "feasible") and res.objective < warm.makespan
    # without a starting solution there is nothing to improve: the portfolio alone
    seen.clear()
    res = solve_cpsat(problem, CpOptions(threads=2, time_limit=2, lns_first=0.1))
    assert [lns for lns, _ in seen] == [False] and "lns_s" not in res.stats


def test_a_soft_limit_stops_the_stage_milp_at_highs_next_poll():
    """``soft_limit`` ends the solve at HiGHS's next poll after it, long before the hard limit,
    with the best plan so far (status ``feasible``: the search was stopped, not finished), or
    ``timeout`` when no plan was found by then (on a busy core it may not be: the test checks that
    the limit is honoured, never that work finishes within a time)."""
    import time

    from formulations.milp import MilpOptions, solve_stage_milp

    inst = _tiny("moe-tiny-1layer", 0.4)
    problem = build_problem(inst.trace, inst.hardware)
    t0 = time.perf_counter()
    res = solve_stage_milp(problem, MilpOptions(threads=1, time_limit=60, soft_limit=0.5))
    assert time.perf_counter() - t0 < 30          # honoured with generous slack: far below the hard 60 s
    assert "nterrupt" in res.stats["solver"]
    if res.plan is not None:
        assert res.status == "feasible"
        assert res.bound is not None and res.bound <= res.objective
    else:
        assert res.status == "timeout"
