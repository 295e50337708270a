"""Reruns of ops with several outputs in the CP-SAT model (``formulations.common.joint_recomputes``).

The timing model's recompute recreates every live output that is not in the compute tier, so the
model treats a rerun of a multi-output op as one decision shared by one gap of each live output.
Hand-made cases are in ``test_formulations_cases.py``; here, random chains where half the ops have
two outputs, on one tier (recomputation only) or two, check that whatever the model plans decodes
to a valid schedule, that its reported bound holds, and that the candidates respect the rules the
docs state.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formulations.common import Unsupported, build_problem, joint_recomputes, op_requirement
from formulations.planners import plan_cpsat
from solver.methods import SolveOptions
from solver.model import Hardware, Link, Op, Recompute, Tensor, Tier, Trace
from solver.solve import make_instance
from solver.timing import validate


def _instance(seed: int):
    rng = random.Random(seed)
    tensors: list[Tensor] = []
    ops: list[Op] = []
    pool: list[str] = []
    for i in range(rng.randint(3, 8)):
        ins = tuple(rng.sample(pool, min(len(pool), rng.randint(0, 2))))
        outs = tuple(f"t{i}_{k}" for k in range(rng.choice([1, 2, 2])))
        tensors += [Tensor(id=o, bytes=rng.randint(1, 8)) for o in outs]
        ops.append(Op(id=f"op{i}", duration=rng.choice([0.5, 1.0, 2.0, 3.0]), inputs=ins, outputs=outs,
                      workspace=rng.choice([0, 0, 1]), recomputable=rng.random() < 0.9))
        pool.extend(outs)
    trace = Trace("multi", tuple(tensors), tuple(ops))
    if rng.random() < 0.5:
        hw = Hardware("one", "HBM", (Tier("HBM", 10**6),))
    else:
        bw = rng.choice([1.0, 4.0, 16.0])
        hw = Hardware("two", "HBM", (Tier("HBM", 10**6), Tier("DDR", 10**6)),
                      (Link("HBM", "DDR", bw), Link("DDR", "HBM", bw)))
    # between the largest single op's need and the no-offload peak
    need = max(op_requirement(trace, i) for i in range(len(ops)))
    cap = need + int(rng.random() * max(0, trace.no_offload_peak - need))
    return make_instance(trace, hw, {"HBM": cap})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_candidates_follow_the_rules(seed: int) -> None:
    inst = _instance(seed)
    tr = inst.trace
    try:
        problem = build_problem(tr, inst.hardware)
    except Unsupported:      # e.g. a tensor starts in a tier with no way into the compute tier
        return
    for jr in joint_recomputes(problem):
        op = tr.ops[jr.op]
        assert len(tr.op_writes[jr.op]) >= 2 and op.effective_recomputable
        assert jr.op <= jr.after < jr.before
        members = [problem.gaps[g] for g in jr.gaps]
        # one gap per live output, each covering the window, none opened by an update
        assert len({g.tensor for g in members}) == len(members)
        for g in members:
            assert g.tensor in tr.op_writes[jr.op]
            assert g.prev <= jr.after and g.next >= jr.before
            assert g.prev_kind in ("produce", "read")
        live = {t for t in tr.op_writes[jr.op] if tr.users[t] and max(tr.users[t]) >= jr.before}
        assert {g.tensor for g in members} == live
        # no output is used inside the window
        for t in tr.op_writes[jr.op]:
            assert not any(jr.after < u < jr.before for u in tr.users[t])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_cpsat_plans_with_reruns_validate(seed: int) -> None:
    inst = _instance(seed)
    res = plan_cpsat(inst, SolveOptions(time_limit=5, threads=1, extra={"warm": "none"}))
    if res.schedule is None:
        return
    rep = validate(inst.trace, inst.hardware, res.schedule)
    assert rep.valid, [e.message for e in rep.errors]
    if res.bound is not None:
        assert res.bound <= rep.metrics.makespan * (1 + 1e-9) + 1e-12
    # on an exact clock the model's own makespan is what the decoded schedule achieves, or more
    # (the decoding only removes idle time); below it, the model promised something it cannot do
    st = res.stats
    if st.get("returned") == "model" and st.get("model_exact_clock") and st.get("model_objective") is not None:
        assert rep.metrics.makespan <= st["model_objective"] * (1 + 1e-9) + 1e-9
    assert all(isinstance(a, Recompute) or not a.id.startswith("recompute:") for a in res.schedule.actions)
