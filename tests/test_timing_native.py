"""The validator's native kernel (solver/_simcore.c) against the pure-Python reference.

The kernel simulates schedules that validate and gives up at the first irregularity; then the
reference runs. So on every instance ``validate`` (engine "auto") must give exactly the report of
``validate(engine="python")``, and on every valid one the kernel must be the engine that made it.
These tests skip where the kernel was not built (it is optional: no C compiler).
"""

from __future__ import annotations

import json
import random
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foundation_helpers import full_report, validate_heap, validate_python
from heuristics_helpers import random_budget, random_hardware, random_trace
from solver.formats import load_hardware, load_schedule, load_trace
from solver.methods import REGISTRY
from solver.model import Copy, Free, Hardware, Link, Op, Recompute, Run, Schedule, Tensor, Tier, Trace
from solver.solve import make_instance, solve
from solver.timing import native_available, validate
from test_properties import offload_cases, random_schedules, _hbm_ddr, _offload_schedule

needs_native = pytest.mark.skipif(not native_available(), reason="the native validator kernel is not built")

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOLDEN = Path(__file__).parent / "golden"
HEURISTICS = [name for name, m in REGISTRY.items() if not m.exact]


def assert_same(trace: Trace, hw: Hardware, sched: Schedule, capacity: Any = None) -> Any:
    """auto == python == python-heap, and the kernel made the report exactly when it is valid."""
    ref = validate_python(trace, hw, sched, capacity)
    auto = validate(trace, hw, sched, capacity)
    assert full_report(auto) == full_report(ref)
    assert full_report(validate_heap(trace, hw, sched, capacity)) == full_report(ref)
    assert ref.engine == "python"
    assert auto.engine == ("native" if ref.valid else "python")
    return auto


@needs_native
@pytest.mark.parametrize("case", sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.json").is_file()))
def test_golden_cases_agree(case: str) -> None:
    d = GOLDEN / case
    exp = json.loads((d / "expected.json").read_text())
    assert_same(load_trace(d / "trace.json"), load_hardware(d / "hardware.json"), load_schedule(d / "schedule.json"),
                exp.get("api_capacity"))


@needs_native
@SETTINGS
@given(inst=random_schedules())
def test_random_schedules_agree(inst: Any) -> None:
    assert_same(*inst)


@needs_native
@SETTINGS
@given(case=offload_cases(), channel=st.sampled_from([None, "bus"]), latency=st.sampled_from([0.0, 0.5]))
def test_offload_schedules_agree(case: Any, channel: str | None, latency: float) -> None:
    trace, t, u1, u2, explicit = case
    hw = _hbm_ddr(trace.no_offload_peak, channel=channel, latency=latency)
    assert assert_same(trace, hw, _offload_schedule(trace, t, u1, u2, explicit)).valid
    assert_same(trace, hw, _offload_schedule(trace, t, u1, u2, explicit, drop_prefetch=True))
    # and with every capacity one byte short of the simulated peak
    peak = validate(trace, hw, _offload_schedule(trace, t, u1, u2, explicit)).metrics.peak
    assert_same(trace, hw, _offload_schedule(trace, t, u1, u2, explicit),
                {k: max(v - 1, 0) for k, v in peak.items()})


@needs_native
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_heuristic_schedules_agree(seed: int) -> None:
    """Planners' schedules (offloads through several tiers, recomputes, updates, frees)."""
    rng = random.Random(seed)
    trace = random_trace(rng)
    hw = random_hardware(rng, trace)
    inst = make_instance(trace, hw, None, random_budget(rng))
    for method in HEURISTICS:
        out = solve(inst, method)
        if out.schedule is not None:
            assert assert_same(trace, hw, out.schedule).valid


@needs_native
def test_recompute_and_updates_take_the_kernel() -> None:
    """A recompute of a freed activation and an in-place update of an offloaded weight."""
    tr = Trace("t", (Tensor(id="w", bytes=100, initial_tier="DDR", persistent=True, final_tier="DDR"),
                     Tensor(id="a", bytes=50), Tensor(id="b", bytes=50)),
               (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=2.0, inputs=("a",), outputs=("b",)),
                Op(id="h", duration=1.0, inputs=("a", "b")),
                Op(id="u", duration=0.5, updates=("w",))))
    hw = Hardware("h", "HBM", (Tier("HBM", 250), Tier("DDR", 1000)),
                  (Link("HBM", "DDR", 100.0, 0.01), Link("DDR", "HBM", 100.0, 0.01)))
    sched = Schedule("t", "h", (
        Run(op="f"), Run(op="g"), Free(id="drop", tensor="a", tier="HBM", after=("g",)),
        Recompute(id="again", op="f", after=("drop",)), Run(op="h"),
        Copy(id="in", tensor="w", src="DDR", dst="HBM", after=("h",)), Run(op="u", after=("in",)),
        Copy(id="out", tensor="w", src="HBM", dst="DDR", free_src=True, after=("u",))))
    rep = assert_same(tr, hw, sched)
    assert rep.valid and rep.engine == "native", rep.errors
    assert rep.metrics.recompute_time == 1.0
    assert rep.metrics.bytes_moved == {"HBM->DDR": 100, "DDR->HBM": 100}
    # the same schedule with its copy into HBM dropped is invalid, and worded by the reference
    bad = Schedule("t", "h", tuple(a for a in sched.actions if a.id != "in"))
    rep = assert_same(tr, hw, bad)
    assert not rep.valid and rep.engine == "python"


@needs_native
def test_forward_wait_and_duplicate_ids() -> None:
    """A wait on a later action (the heap decides), and a wait on a duplicated id."""
    tr = Trace("t", (Tensor(id="x", bytes=100, initial_tier="DDR"),),
               (Op(id="a", duration=1.0), Op(id="b", duration=1.0, inputs=("x",))))
    hw = _hbm_ddr(1000)
    forward = Schedule("t", "h2", (Run(op="a"), Run(op="b", after=("pf",)),
                                   Copy(id="pf", tensor="x", src="DDR", dst="HBM")))
    rep = assert_same(tr, hw, forward)
    assert rep.valid and rep.engine == "native"
    # Two actions named "a" (the loader refuses this; an in-memory schedule may hold it): a wait
    # on "a" means the last of them, here the prefetch after it, as in the reference.
    slow = Trace("t", (Tensor(id="x", bytes=500, initial_tier="DDR"),), tr.ops)   # its copy takes 5 s
    dup = Schedule("t", "h2", (Run(op="a"), Run(op="b", after=("a",)),
                               Copy(id="a", tensor="x", src="DDR", dst="HBM")))
    rep = assert_same(slow, hw, dup)
    assert rep.valid and rep.engine == "native"
    assert rep.timeline.rows()[1][3] == 5.0     # "b" starts when the copy named "a" ends


@needs_native
def test_engine_name_is_checked() -> None:
    tr = Trace("t", (), ())
    hw = Hardware("h", "HBM", (Tier("HBM", 1),))
    with pytest.raises(ValueError, match="'auto', 'python'"):
        validate(tr, hw, Schedule("t", "h", ()), engine="c")
    assert validate(tr, hw, Schedule("t", "h", ())).engine == "native"


def test_kernel_is_built_where_a_compiler_is() -> None:
    """The kernel is optional, but where this Python can compile C the install must have built it."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc}) on this machine: the validator runs its pure-Python reference")
    assert native_available(), ("solver/_simcore.c was not built although a C compiler is present; "
                                "reinstall with `pip install -e .` and read the build log")


def test_a_long_deadlock_cycle_is_cut_and_counted():
    """A cycle of 5,000 waits is reported in one short message that says how many actions it holds."""
    from solver.model import Hardware, Op, Run, Schedule, Tensor, Tier, Trace
    from solver.timing import DEADLOCK_SHOWN, Code, validate

    n = 5000
    ops = tuple(Op(id=f"o{i}", duration=1.0) for i in range(n))
    trace = Trace("t", (Tensor(id="x", bytes=1),), ops)
    hw = Hardware("h", "HBM", (Tier("HBM", 10),))
    acts = tuple(Run(op=f"o{i}", after=(f"o{(i + 1) % n}",)) for i in range(n))
    rep = validate(trace, hw, Schedule("t", "h", acts))
    dead = [e for e in rep.errors if e.code is Code.DEADLOCK]
    assert dead and f"cycle of {n} action(s)" in dead[0].message
    assert dead[0].message.count(" -> ") <= DEADLOCK_SHOWN + 1 and len(dead[0].message) < 400
