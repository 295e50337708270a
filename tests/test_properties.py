"""Property tests (hypothesis) for the timing model over random small traces.

- The keep-everything schedule validates exactly when the compute tier's capacity is at least the
  no-offload peak that ``inspect`` reports, and its makespan is the sum of the op durations.
- A valid offload schedule (offload a tensor after one use, prefetch it before the next) turns
  invalid with the expected code when its prefetch is deleted, its free is moved before a use, or a
  tier's capacity shrinks below the simulated peak.
- The validator is deterministic, and its two event sources (the one-sort fast path and the heap)
  give identical reports.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from foundation_helpers import fast_path_taken, full_report, validate_heap
from solver.cli.inspect import summarize
from solver.formats import trace_from_document
from solver.model import Copy, Free, Hardware, Link, Op, Recompute, Run, Schedule, Tensor, Tier, Trace
from solver.plans import keep_schedule
from solver.timing import validate

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

POSITIVE = st.one_of(st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0]),
                     st.floats(min_value=1e-3, max_value=10.0, allow_nan=False, allow_infinity=False))
ANY_DURATION = st.one_of(POSITIVE, st.just(0.0), st.just(1e-17))


@st.composite
def trace_docs(draw: Any, durations: Any = POSITIVE, max_ops: int = 7) -> dict[str, Any]:
    """A random legal ``tierplan.trace/1`` document; tensors without a producer start in HBM."""
    tensors: list[dict[str, Any]] = []
    ops: list[dict[str, Any]] = []
    existing: list[str] = []
    for i in range(draw(st.integers(0, 3))):
        tid = f"i{i}"
        tensors.append({"id": tid, "bytes": draw(st.integers(1, 400)), "persistent": draw(st.booleans())})
        existing.append(tid)
    for j in range(draw(st.integers(1, max_ops))):
        inputs = draw(st.lists(st.sampled_from(existing), max_size=3, unique=True)) if existing else []
        rest = [t for t in existing if t not in inputs]
        updates = draw(st.lists(st.sampled_from(rest), max_size=1, unique=True)) if rest and draw(
            st.integers(0, 4)) == 0 else []
        outputs = []
        for k in range(draw(st.integers(0, 2))):
            tid = f"t{j}_{k}"
            tensors.append({"id": tid, "bytes": draw(st.integers(1, 400)),
                            "persistent": draw(st.integers(0, 5)) == 0})
            outputs.append(tid)
        ops.append({"id": f"op{j}", "duration": draw(durations), "inputs": inputs, "outputs": outputs,
                    "updates": updates, "workspace": draw(st.sampled_from([0, 0, 0, 8, 100])),
                    "recomputable": draw(st.booleans())})
        existing.extend(outputs)
    return {"format": "tierplan.trace/1", "name": "random", "tensors": tensors, "ops": ops}


def _hbm_only(capacity: int) -> Hardware:
    return Hardware("h1", "HBM", (Tier("HBM", capacity),))


def _hbm_ddr(hbm: int, ddr: int = 10**9, channel: str | None = None, latency: float = 0.0) -> Hardware:
    return Hardware("h2", "HBM", (Tier("HBM", hbm), Tier("DDR", ddr)),
                    (Link("HBM", "DDR", 100.0, latency, channel), Link("DDR", "HBM", 100.0, latency, channel)))


def _serial_sum(xs: list[float]) -> float:
    """Left-to-right float sum (what back-to-back execution gives; ``sum`` may compensate)."""
    t = 0.0
    for x in xs:
        t += x
    return t


# --- the keep-everything schedule ------------------------------------------------------------


@SETTINGS
@given(doc=trace_docs(), slack=st.integers(-50, 50), two_tiers=st.booleans())
def test_keep_valid_iff_capacity_covers_no_offload_peak(doc: dict[str, Any], slack: int, two_tiers: bool) -> None:
    trace = trace_from_document(doc)
    peak = trace.no_offload_peak
    assert summarize(trace)["no_offload_peak"] == peak     # the figure `inspect` reports
    cap = max(0, peak + slack)
    hw = _hbm_ddr(cap) if two_tiers else _hbm_only(cap)
    report = validate(trace, hw, keep_schedule(trace, hw))
    assert report.valid == (cap >= peak), report.errors
    if not report.valid:
        assert report.codes() == {"capacity"}
    m = report.metrics
    assert m.makespan == _serial_sum([o.duration for o in trace.ops])
    assert m.compute_time == m.makespan or abs(m.compute_time - m.makespan) <= 1e-12 * m.makespan
    assert m.recompute_time == 0
    assert m.peak["HBM"] == peak                      # positive durations: the simulation sees every op
    assert all(v == 0 for v in m.bytes_moved.values())


@SETTINGS
@given(doc=trace_docs(durations=ANY_DURATION))
def test_keep_with_zero_durations_never_exceeds_no_offload_peak(doc: dict[str, Any]) -> None:
    """With zero-duration ops an instant may hide an op's footprint, never add to it."""
    trace = trace_from_document(doc)
    report = validate(trace, _hbm_only(trace.no_offload_peak), keep_schedule(trace, _hbm_only(0)))
    assert report.valid, report.errors
    assert report.metrics.peak["HBM"] <= trace.no_offload_peak


# --- offload schedules and their mutations ----------------------------------------------------


def _gaps(trace: Trace) -> list[tuple[int, int, int]]:
    """(tensor, use, next use) for every pair of consecutive users of a tensor."""
    out = []
    for t, users in enumerate(trace.users):
        for a, b in zip(users, users[1:]):
            out.append((t, a, b))
    return out


def _offload_schedule(trace: Trace, t: int, u1: int, u2: int, explicit_free: bool,
                      drop_prefetch: bool = False, free_after: str | None = None) -> Schedule:
    """Run every op in order; offload tensor ``t`` after op ``u1``, prefetch it before op ``u2``.

    ``explicit_free`` uses a copy plus a ``free`` (instead of ``free_src``); ``free_after`` makes
    that free wait for another action instead; ``drop_prefetch`` deletes the prefetch (op ``u2``
    then waits for what the prefetch waited for, the offload: without any wait it would race the
    offload, which is a ``busy`` error rather than a missing input).
    """
    tid = trace.tensors[t].id
    actions: list[Any] = []
    for i, op in enumerate(trace.ops):
        after: tuple[str, ...] = ()
        if i == u2:
            if drop_prefetch:        # the prefetch is gone; its user keeps the prefetch's own wait
                after = ("off",)
            else:
                actions.append(Copy(id="pf", tensor=tid, src="DDR", dst="HBM", after=("off",)))
                after = ("pf",)
        actions.append(Run(op=op.id, after=after))
        if i == u1:
            actions.append(Copy(id="off", tensor=tid, src="HBM", dst="DDR", free_src=not explicit_free,
                                after=(op.id,)))
            if explicit_free:
                actions.append(Free(id="fr", tensor=tid, tier="HBM", after=(free_after or "off",)))
    return Schedule(trace.name, "h2", tuple(actions))


@st.composite
def offload_cases(draw: Any, need_earlier_op: bool = False) -> tuple[Trace, int, int, int, bool]:
    trace = trace_from_document(draw(trace_docs(max_ops=8)))
    gaps = [g for g in _gaps(trace) if not need_earlier_op or g[1] >= 1]
    assume(gaps)
    t, u1, u2 = draw(st.sampled_from(gaps))
    return trace, t, u1, u2, draw(st.booleans())


@SETTINGS
@given(case=offload_cases(), channel=st.sampled_from([None, "bus"]), latency=st.sampled_from([0.0, 0.5]))
def test_offload_schedule_is_valid_and_prefetch_deletion_breaks_it(case: Any, channel: str | None,
                                                                   latency: float) -> None:
    trace, t, u1, u2, explicit = case
    hw = _hbm_ddr(trace.no_offload_peak, channel=channel, latency=latency)
    good = validate(trace, hw, _offload_schedule(trace, t, u1, u2, explicit))
    assert good.valid, good.errors
    nbytes = trace.tensors[t].bytes
    assert sum(good.metrics.bytes_moved.values()) == 2 * nbytes
    assert sum(good.metrics.copies.values()) == 2
    assert good.metrics.peak["HBM"] <= trace.no_offload_peak
    assert good.metrics.peak["DDR"] == nbytes
    assert good.metrics.makespan >= _serial_sum([o.duration for o in trace.ops]) - 1e-12

    bad = validate(trace, hw, _offload_schedule(trace, t, u1, u2, explicit, drop_prefetch=True))
    assert not bad.valid
    assert "missing-input" in bad.codes()
    # the tensor is never brought back: later users miss it; an update can also lose a persistent one
    assert bad.codes() <= {"missing-input", "lost"}
    first = [e for e in bad.errors if e.code.value == "missing-input"]
    assert trace.ops[u2].id in {e.action for e in first}


@SETTINGS
@given(case=offload_cases(need_earlier_op=True))
def test_moving_the_free_before_a_use_breaks_it(case: Any) -> None:
    trace, t, u1, u2, _ = case
    hw = _hbm_ddr(trace.no_offload_peak)
    good = validate(trace, hw, _offload_schedule(trace, t, u1, u2, explicit_free=True))
    assert good.valid, good.errors
    # the free now happens when op u1-1 ends, i.e. before op u1 (a user) starts
    moved = _offload_schedule(trace, t, u1, u2, explicit_free=True, free_after=trace.ops[u1 - 1].id)
    bad = validate(trace, hw, moved)
    assert not bad.valid
    assert "missing-input" in bad.codes()
    assert trace.ops[u1].id in {e.action for e in bad.errors if e.code.value == "missing-input"}
    assert bad.codes() <= {"missing-input", "copy-source", "lost"}


@SETTINGS
@given(case=offload_cases(), tier=st.sampled_from(["HBM", "DDR"]))
def test_capacity_below_simulated_peak_breaks_it(case: Any, tier: str) -> None:
    trace, t, u1, u2, explicit = case
    hw = _hbm_ddr(trace.no_offload_peak)
    sched = _offload_schedule(trace, t, u1, u2, explicit)
    good = validate(trace, hw, sched)
    assert good.valid, good.errors
    peak = good.metrics.peak[tier]
    assert peak > 0   # the offloaded tensor is in HBM before its first use and in DDR after it
    exact = validate(trace, hw, sched, {tier: peak})
    assert exact.valid, exact.errors
    bad = validate(trace, hw, sched, {tier: peak - 1})
    assert bad.codes() == {"capacity"}
    err = bad.errors[0]
    assert tier in err.message and str(peak - 1) in err.message
    # the metrics do not depend on the capacity
    assert bad.metrics == good.metrics


# --- determinism and the two event sources ------------------------------------------------------


@st.composite
def random_schedules(draw: Any) -> tuple[Trace, Hardware, Schedule]:
    """A random (mostly invalid) schedule whose waits all point backwards."""
    trace = trace_from_document(draw(trace_docs(durations=ANY_DURATION, max_ops=6)))
    tiers = ["HBM", "DDR", "SSD"]
    channel = draw(st.sampled_from([None, "bus"]))
    lat = draw(st.sampled_from([0.0, 1e-17, 0.25]))
    hw = Hardware("h3", "HBM", tuple(Tier(n, draw(st.integers(0, 1500))) for n in tiers),
                  (Link("HBM", "DDR", 100.0, lat, channel), Link("DDR", "HBM", 100.0, lat, channel),
                   Link("DDR", "SSD", 50.0, lat)))
    tensor_ids = [x.id for x in trace.tensors] or ["nothing"]
    actions: list[Any] = []
    ids: list[str] = []

    def waits(nonempty: bool = False) -> tuple[str, ...]:
        if not ids:
            return ()
        w = draw(st.lists(st.sampled_from(ids), min_size=1 if nonempty else 0, max_size=2, unique=True))
        return tuple(w)

    k = 0
    for op in trace.ops:
        for _ in range(draw(st.integers(0, 2))):
            k += 1
            what = draw(st.sampled_from(["copy", "copy", "free", "recompute"]))
            if what == "copy":
                src, dst = draw(st.sampled_from([("HBM", "DDR"), ("DDR", "HBM"), ("DDR", "SSD"), ("HBM", "SSD")]))
                actions.append(Copy(id=f"c{k}", tensor=draw(st.sampled_from(tensor_ids)), src=src, dst=dst,
                                    free_src=draw(st.booleans()), after=waits()))
            elif what == "free" and ids:
                actions.append(Free(id=f"f{k}", tensor=draw(st.sampled_from(tensor_ids)),
                                    tier=draw(st.sampled_from(tiers)), after=waits(nonempty=True)))
            elif what == "recompute":
                actions.append(Recompute(id=f"r{k}", op=draw(st.sampled_from([o.id for o in trace.ops])),
                                         after=waits()))
            else:
                continue
            ids.append(actions[-1].id)
        if draw(st.integers(0, 9)):          # sometimes an op is skipped
            actions.append(Run(op=op.id, after=waits()))
            ids.append(op.id)
    return trace, hw, Schedule(trace.name, hw.name, tuple(actions))


@SETTINGS
@given(inst=random_schedules())
def test_heap_and_sorted_paths_agree(inst: tuple[Trace, Hardware, Schedule]) -> None:
    trace, hw, sched = inst
    fast = full_report(validate(trace, hw, sched))
    assert full_report(validate_heap(trace, hw, sched)) == fast


@SETTINGS
@given(inst=random_schedules())
def test_validator_is_deterministic(inst: tuple[Trace, Hardware, Schedule]) -> None:
    trace, hw, sched = inst
    assert full_report(validate(trace, hw, sched)) == full_report(validate(trace, hw, sched))


@SETTINGS
@given(case=offload_cases())
def test_offload_schedules_agree_on_both_paths(case: Any) -> None:
    trace, t, u1, u2, explicit = case
    hw = _hbm_ddr(trace.no_offload_peak)
    for sched in (_offload_schedule(trace, t, u1, u2, explicit),
                  _offload_schedule(trace, t, u1, u2, explicit, drop_prefetch=True)):
        assert full_report(validate_heap(trace, hw, sched)) == full_report(validate(trace, hw, sched))


def test_forward_wait_takes_the_heap_path_with_the_same_result() -> None:
    """One ``after`` that points forward switches to the heap; the timing is the same."""
    tr = Trace("t", (Tensor(id="x", bytes=100, initial_tier="DDR"),),
               (Op(id="a", duration=1.0), Op(id="b", duration=1.0, inputs=("x",))))
    hw = _hbm_ddr(1000)
    backward = Schedule("t", "h2", (Copy(id="pf", tensor="x", src="DDR", dst="HBM"), Run(op="a"),
                                    Run(op="b", after=("pf",))))
    forward = Schedule("t", "h2", (Run(op="a"), Run(op="b", after=("pf",)),
                                   Copy(id="pf", tensor="x", src="DDR", dst="HBM")))
    assert fast_path_taken(tr, hw, backward)
    assert not fast_path_taken(tr, hw, forward)
    r1, r2 = validate(tr, hw, backward), validate(tr, hw, forward)
    assert r1.valid and r2.valid
    assert r1.metrics == r2.metrics


def test_tiny_duration_absorbed_by_float_addition_agrees_on_both_paths() -> None:
    """Regression: a positive duration that vanishes when added to the start time (1.0 + 1e-17 == 1.0)
    must be ordered like a zero-duration action by the sorted fast path, as the heap orders it."""
    tr = Trace("t", (Tensor(id="x", bytes=100), Tensor(id="y", bytes=100)),
               (Op(id="a", duration=1.0, outputs=("x",)),
                Op(id="b", duration=1e-17, inputs=("x",), outputs=("y",)),
                Op(id="c", duration=1.0, inputs=("y",))))
    hw = _hbm_only(1000)
    sched = keep_schedule(tr, hw)
    fast, heap = validate(tr, hw, sched), validate_heap(tr, hw, sched)
    assert heap.valid, heap.errors
    assert full_report(fast) == full_report(heap)
    # same with a free waiting on the absorbed action at that instant
    tr2 = Trace("t2", (Tensor(id="k", bytes=100, persistent=True), Tensor(id="m", bytes=100)),
                (Op(id="w", duration=1.0), Op(id="z", duration=1e-17, inputs=("k",)),
                 Op(id="g", duration=1.0, outputs=("m",))))
    hw2 = _hbm_ddr(100, 100)
    s2 = Schedule("t2", "h2", (Copy(id="save", tensor="k", src="HBM", dst="DDR"), Run(op="w"), Run(op="z"),
                               Free(id="drop", tensor="k", tier="HBM", after=("z",)), Run(op="g")))
    fast2, heap2 = validate(tr2, hw2, s2), validate_heap(tr2, hw2, s2)
    assert heap2.valid, heap2.errors
    assert full_report(fast2) == full_report(heap2)
