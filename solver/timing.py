"""The timing model: a deterministic event simulation that validates a schedule.

This is the only referee in tierplan. It computes every start and end itself from
the schedule's waits and the hardware's links (it never reads a solver's timings),
tracks every copy of every tensor in every tier, and reports typed errors with
stable codes (:class:`Code`) plus metrics.

Events are kept in a heap of ``(time, phase, sequence)``: at one instant, ends
(phase 0) come before frees (phase 1), which come before starts (phase 2), and
starts follow the order of their actions in the schedule.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Schedule, Run
>>> tr = Trace("t", (Tensor(id="x", bytes=10),), (Op(id="a", duration=2.0, outputs=("x",)),))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
>>> rep = validate(tr, hw, Schedule("t", "h", (Run(op="a"),)))
>>> rep.valid, rep.metrics.makespan, rep.metrics.peak["HBM"]
(True, 2.0, 10)
"""

from __future__ import annotations

import enum
import gc
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from solver.model import AT_START, Copy, Free, Hardware, Recompute, Run, Schedule, Trace


#: how many action ids a deadlock message names at most (a longer cycle is cut in the middle)
DEADLOCK_SHOWN = 8


class Code(str, enum.Enum):
    """Stable validator error codes (the formats spec's table)."""

    ORDER = "order"
    UNKNOWN_REF = "unknown-ref"
    DEADLOCK = "deadlock"
    NO_LINK = "no-link"
    MISSING_INPUT = "missing-input"
    COPY_SOURCE = "copy-source"
    COPY_TARGET = "copy-target"
    FREE_MISSING = "free-missing"
    BUSY = "busy"
    DEAD_TENSOR = "dead-tensor"
    RECOMPUTE = "recompute"
    CAPACITY = "capacity"
    LOST = "lost"

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.value


@dataclass(frozen=True, slots=True)
class ScheduleError:
    """One validation error.

    Attributes
    ----------
    code : Code
        Stable code.
    action : str or None
        The action concerned (None for whole-schedule errors such as a missing op).
    time : float
        Simulated time at which it was detected.
    message : str
        One sentence a person can act on.
    """

    code: Code
    action: str | None
    time: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"code": self.code.value, "action": self.action, "time": self.time, "message": self.message}


@dataclass(frozen=True)
class Metrics:
    """What the simulation measured (filled in even for an invalid schedule).

    Attributes
    ----------
    makespan : float
        Latest end of any action.
    compute_time, recompute_time : float
        Sum of run durations; sum of recompute durations.
    overhead : float or None
        ``makespan / compute_time - 1`` (None when compute_time is 0 and makespan is not).
    peak, peak_time : Mapping[str, ...]
        Per tier: largest bytes held after an instant, and the first instant it was reached.
    bytes_moved, copies : Mapping[str, ...]
        Per stream: bytes copied and number of copies.
    """

    makespan: float
    compute_time: float
    recompute_time: float
    overhead: float | None
    peak: Mapping[str, int]
    peak_time: Mapping[str, float]
    bytes_moved: Mapping[str, int]
    copies: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "makespan": self.makespan, "compute_time": self.compute_time,
            "recompute_time": self.recompute_time, "overhead": self.overhead,
            "peak": dict(self.peak), "peak_time": dict(self.peak_time),
            "bytes_moved": dict(self.bytes_moved), "copies": dict(self.copies),
        }


@dataclass(frozen=True)
class Timeline:
    """Per-action timeline, in schedule order (start and end are None for an action that never ran)."""

    ids: tuple[str, ...]
    kinds: tuple[str, ...]
    streams: tuple[str, ...]
    starts: tuple[float | None, ...]
    ends: tuple[float | None, ...]

    def rows(self) -> list[tuple[str, str, str, float | None, float | None]]:
        """(id, kind, stream, start, end) rows."""
        return list(zip(self.ids, self.kinds, self.streams, self.starts, self.ends))


@dataclass(frozen=True)
class Report:
    """The validator's verdict.

    Attributes
    ----------
    valid : bool
        True when there is no error.
    errors : tuple[ScheduleError, ...]
        In the order found.
    metrics : Metrics
    timeline : Timeline
    capacity : Mapping[str, int]
        The capacities the schedule was checked against.
    capacity_source : Mapping[str, str]
        Where each of them came from: ``hardware`` (the hardware file), ``schedule`` (the
        schedule's own ``capacity`` lowered it) or ``override`` (an explicit ``--capacity``).
    engine : str
        ``"native"`` when the native kernel simulated it, ``"python"`` for the reference.
    """

    valid: bool
    errors: tuple[ScheduleError, ...]
    metrics: Metrics
    timeline: Timeline = field(repr=False)
    capacity: Mapping[str, int] = field(default_factory=dict)
    engine: str = "python"
    capacity_source: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``validate --json`` object."""
        return {"valid": self.valid, "errors": [e.to_dict() for e in self.errors],
                "metrics": self.metrics.to_dict(),
                "capacity": {k: {"bytes": v, "source": self.capacity_source.get(k, "hardware")}
                             for k, v in self.capacity.items()}}

    def codes(self) -> set[str]:
        """The set of error codes present."""
        return {e.code.value for e in self.errors}


_END, _FREE, _START = 0, 1, 2
_RUN, _RECOMPUTE, _COPY, _FREEK, _NOOP = 0, 1, 2, 3, 4
_KIND_NAMES = ("run", "recompute", "copy", "free", "noop")
_VALID, _ARRIVING = 2, 1


def _sequential_sum(values: Iterator[float]) -> float:
    """Left-to-right float sum (``sum`` compensates on Python >= 3.12; the native kernel does not)."""
    total = 0.0
    for v in values:
        total += v
    return total


def effective_capacity(hardware: Hardware, schedule: Schedule | None = None,
                       overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """Capacities in force: the hardware's, lowered by the schedule's ``capacity``, then ``overrides``.

    A schedule cannot grant itself memory: its ``capacity`` entries only *lower* a tier below the
    hardware's figure (a larger entry is ignored). ``overrides`` (the command line's explicit
    ``--capacity``, a user's deliberate what-if) replace the figure either way. Unknown tier names
    in ``overrides`` raise ``KeyError``; unknown names in the schedule are ignored here (the
    validator reports them as ``unknown-ref``).

    Examples
    --------
    >>> from solver.model import Hardware, Schedule, Tier
    >>> hw = Hardware("h", "A", (Tier("A", 5),))
    >>> effective_capacity(hw, None, {"A": 3}), effective_capacity(hw, None, {"A": 9})
    ({'A': 3}, {'A': 9})
    >>> effective_capacity(hw, Schedule("t", "h", (), {"A": 10**15})), effective_capacity(hw, Schedule("t", "h", (), {"A": 2}))
    ({'A': 5}, {'A': 2})
    """
    cap = dict(hardware.capacity)
    if schedule is not None:
        for k, v in schedule.capacity.items():
            if k in cap:
                cap[k] = min(cap[k], int(v))
    for k, v in (overrides or {}).items():
        if k not in cap:
            raise KeyError(k)
        cap[k] = int(v)
    return cap


def capacity_sources(hardware: Hardware, schedule: Schedule | None = None,
                     overrides: Mapping[str, int] | None = None) -> dict[str, str]:
    """Where each capacity of :func:`effective_capacity` comes from.

    ``"override"`` (an explicit ``overrides`` entry), ``"schedule"`` (the schedule's own
    ``capacity`` is below the hardware's) or ``"hardware"``.

    Examples
    --------
    >>> from solver.model import Hardware, Schedule, Tier
    >>> hw = Hardware("h", "A", (Tier("A", 5), Tier("B", 9), Tier("C", 1)))
    >>> capacity_sources(hw, Schedule("t", "h", (), {"A": 2, "C": 7}), {"B": 3})
    {'A': 'schedule', 'B': 'override', 'C': 'hardware'}
    """
    hw_cap = hardware.capacity
    out = {k: "hardware" for k in hw_cap}
    if schedule is not None:
        for k, v in schedule.capacity.items():
            if k in out and int(v) < hw_cap[k]:
                out[k] = "schedule"
    for k in overrides or {}:
        if k in out:
            out[k] = "override"
    return out


def validate(trace: Trace, hardware: Hardware, schedule: Schedule,
             capacity: Mapping[str, int] | None = None, *, engine: str = "auto") -> Report:
    """Simulate ``schedule`` under the timing model and report validity and metrics.

    Parameters
    ----------
    trace, hardware, schedule
        The instance and the stream program to check.
    capacity : Mapping[str, int], optional
        Capacity overrides (take precedence over the schedule's own ``capacity``).
    engine : {"auto", "python"}
        ``"auto"`` (default) first tries the native kernel (``solver._simcore``, built from C at
        install time where a compiler is available): it simulates a schedule that validates and
        gives up at the first irregularity, and then the pure-Python reference runs and reports
        every error. ``"python"`` runs the reference only. Both give the same report; which one
        produced it is ``Report.engine``.

    Returns
    -------
    Report

    Raises
    ------
    KeyError
        When ``capacity`` names a tier the hardware lacks.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Schedule, Run
    >>> tr = Trace("t", (Tensor(id="x", bytes=10),), (Op(id="a", duration=1.0, outputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 5),))
    >>> [e.code.value for e in validate(tr, hw, Schedule("t", "h", (Run(op="a"),))).errors]
    ['capacity']
    """
    if engine not in ("auto", "python"):
        raise ValueError(f"unknown engine {engine!r}; valid: 'auto', 'python'")
    was = gc.isenabled()
    gc.disable()   # the simulation allocates many small acyclic objects: the cyclic GC only slows it
    try:
        sim = _Simulation(trace, hardware, schedule, capacity)
        if engine == "auto":
            report = sim.run_native()
            if report is not None:
                return report
        return sim.run()
    finally:
        if was:
            gc.enable()


#: sizes and capacities from this figure on are left to the reference (Python integers never wrap)
_INT64_SAFE = 2**62


def native_available() -> bool:
    """Whether the native kernel of the validator was built (it is optional).

    Examples
    --------
    >>> isinstance(native_available(), bool)
    True
    """
    return _native_core() is not None


def _native_core() -> Any:
    try:
        from solver import _simcore
    except ImportError:
        return None
    return _simcore


class _Simulation:
    """One validation run (private; all state lives here, nothing is shared)."""

    def __init__(self, trace: Trace, hardware: Hardware, schedule: Schedule,
                 capacity: Mapping[str, int] | None) -> None:
        self.trace = trace
        self.hw = hardware
        self.schedule = schedule
        self.errors: list[ScheduleError] = []
        self.cap_map = effective_capacity(hardware, schedule, capacity)
        self.cap_source = capacity_sources(hardware, schedule, capacity)
        self.tier_names = [t.name for t in hardware.tiers]
        self.T = len(self.tier_names)
        self.C = hardware.tier_index[hardware.compute_tier]
        self.cap = [self.cap_map[n] for n in self.tier_names]
        self.pending_errors: list[tuple[Code, int, str]] = []
        # streams (0 = compute, then the links' streams) and, per link, by source then destination:
        # (source tier, destination tier, latency, bandwidth, stream), for both engines
        self.streams = ["compute"] + list(hardware.streams)
        stream_ix = {st: i for i, st in enumerate(self.streams)}
        tier_ix = hardware.tier_index
        self.links: dict[str, dict[str, tuple[int, int, float, float, int]]] = {}
        for lk in hardware.links:
            self.links.setdefault(lk.src, {})[lk.dst] = (tier_ix[lk.src], tier_ix[lk.dst], float(lk.latency),
                                                         float(lk.bandwidth), stream_ix[lk.stream])
        for k in schedule.capacity:
            if k not in hardware.tier_index:
                self.errors.append(ScheduleError(Code.UNKNOWN_REF, None, 0.0,
                                                 f"the schedule's capacity names unknown tier {k!r}"))

    # -- compile ----------------------------------------------------------------------------
    def _compile(self) -> None:
        tr, hw = self.trace, self.hw
        actions = self.schedule.actions
        n = len(actions)
        self.n = n
        index = {a.id: i for i, a in enumerate(actions)}
        tix, oix, tier_ix = tr.tensor_index, tr.op_index, hw.tier_index
        streams = self.streams
        links = self.links
        no_links: dict[str, tuple[int, int, float, float, int]] = {}
        kind = [0] * n
        arg = [0] * n          # op index (run/recompute) or tensor index (copy/free)
        src = [0] * n
        dst = [0] * n          # dst tier (copy) or tier (free)
        dur = [0.0] * n
        stream = [-1] * n
        free_src = [False] * n
        preds: list[tuple[int, ...]] = [()] * n
        t_start = [0.0] * n
        t_end = [0.0] * n
        forward = True       # every wait points to an earlier action: times in one forward pass
        pend = self.pending_errors
        ops = tr.ops
        tensors = tr.tensors
        last_on_stream = [-1] * len(streams)
        index_get = index.get
        for i, a in enumerate(actions):
            typ = type(a)
            if typ is Run or typ is Recompute:
                o = oix.get(a.op, -1)
                if o < 0:
                    pend.append((Code.UNKNOWN_REF, i, f"unknown op {a.op!r}"))
                    kind[i] = _NOOP
                else:
                    kind[i] = _RUN if typ is Run else _RECOMPUTE
                    arg[i] = o
                    dur[i] = ops[o].duration
                st = 0
            elif typ is Copy:
                st = -1
                t = tix.get(a.tensor, -1)
                info = links.get(a.src, no_links).get(a.dst)
                if t < 0:
                    pend.append((Code.UNKNOWN_REF, i, f"unknown tensor {a.tensor!r}"))
                if info is None:
                    if a.src not in tier_ix or a.dst not in tier_ix:
                        bad = a.dst if a.src in tier_ix else a.src
                        pend.append((Code.UNKNOWN_REF, i, f"unknown tier {bad!r}"))
                    else:
                        pend.append((Code.NO_LINK, i, f"no link joins {a.src} to {a.dst}; copy along declared "
                                                      "links (two copies where there is no direct link)"))
                if t < 0 or info is None:
                    kind[i] = _NOOP
                else:
                    kind[i] = _COPY
                    arg[i] = t
                    src[i], dst[i], latency, bandwidth, st = info
                    free_src[i] = a.free_src
                    dur[i] = latency + tensors[t].bytes / bandwidth
            else:
                st = -1
                t = tix.get(a.tensor, -1)
                d = tier_ix.get(a.tier, -1)
                if t < 0:
                    pend.append((Code.UNKNOWN_REF, i, f"unknown tensor {a.tensor!r}"))
                if d < 0:
                    pend.append((Code.UNKNOWN_REF, i, f"unknown tier {a.tier!r}"))
                kind[i] = _FREEK if t >= 0 and d >= 0 else _NOOP
                arg[i], dst[i] = t, d
            if a.after or st >= 0:
                ps = []
                for dep in a.after:
                    j = index_get(dep, -1)
                    if j < 0:
                        pend.append((Code.UNKNOWN_REF, i, f"waits for unknown action {dep!r}"))
                    else:
                        ps.append(j)
                if st >= 0:
                    stream[i] = st
                    prev = last_on_stream[st]
                    if prev >= 0:
                        ps.append(prev)
                    last_on_stream[st] = i
                preds[i] = tuple(ps)
                if forward:
                    begin = 0.0
                    for j in ps:
                        if j >= i:
                            forward = False
                            break
                        e = t_end[j]
                        if e > begin:
                            begin = e
                    t_start[i] = begin
                    t_end[i] = begin + dur[i]
            elif forward:
                t_end[i] = dur[i]
        self.kind, self.arg, self.src, self.dst, self.dur = kind, arg, src, dst, dur
        self.stream, self.free_src, self.preds = stream, free_src, preds
        if forward:
            # A free waiting on an action that ends at the instant it starts (zero duration, or one
            # too short to move the float clock: 1.0 + 1e-17 == 1.0) and at the free's instant is
            # the one case where sorting by (time, phase, sequence) differs from the event heap.
            for i in range(n):
                if kind[i] == _FREEK or kind[i] == _NOOP and type(actions[i]) is Free:
                    if any(t_end[j] == t_start[j] and kind[j] != _FREEK and t_end[j] == t_start[i]
                           for j in preds[i]):
                        forward = False
                        break
        self.static_times = (t_start, t_end) if forward else None
        self.index = index

    def _err(self, code: Code, a: int | None, time: float, message: str) -> None:
        aid = self.schedule.actions[a].id if a is not None else None
        self.errors.append(ScheduleError(code, aid, time, message))

    def _check_order(self) -> None:
        runs = [(i, self.arg[i]) for i in range(self.n) if self.kind[i] == _RUN]
        n_ops = len(self.trace.ops)
        if [o for _, o in runs] == list(range(n_ops)):
            return
        seen: dict[int, int] = {}
        ops = self.trace.ops
        for i, o in runs:
            if o in seen:
                self._err(Code.ORDER, i, 0.0, f"op {ops[o].id!r} is run twice; each op runs exactly once "
                                              "(use a recompute action to run it again)")
            else:
                seen[o] = i
        missing = [ops[o].id for o in range(n_ops) if o not in seen]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            self._err(Code.ORDER, None, 0.0, f"the compute stream never runs {len(missing)} op(s): "
                                             f"{', '.join(repr(m) for m in missing[:5])}{more}")
        firsts = [o for i, o in runs if seen[o] == i]
        for k in range(1, len(firsts)):
            if firsts[k] < firsts[k - 1]:
                self._err(Code.ORDER, seen[firsts[k]], 0.0,
                          f"op {ops[firsts[k]].id!r} runs after {ops[firsts[k - 1]].id!r}, against trace order")
                break

    # -- simulate ---------------------------------------------------------------------------
    def run(self) -> Report:
        self._compile()
        self._check_order()
        tr = self.trace
        n, T, C = self.n, self.T, self.C
        kind, arg, srcs, dsts, dur = self.kind, self.arg, self.src, self.dst, self.dur
        free_src = self.free_src
        ops, tensors = tr.ops, tr.tensors
        nbytes = [t.bytes for t in tensors]
        reads, writes, upds, dies = tr.op_reads, tr.op_writes, tr.op_updates, tr.dies_after
        recomputable = [o.effective_recomputable for o in ops]
        ws = [o.workspace for o in ops]
        state = bytearray(len(tensors) * T)   # tensor * T + tier -> 0 absent, _ARRIVING, _VALID
        usage = [0] * T
        cap = self.cap
        peak = [0] * T
        peak_time = [0.0] * T
        over_first: list[tuple[float, int, int] | None] = [None] * T
        over_count = [0] * T
        last_alloc = [-1] * T
        alive = bytearray(len(tensors))   # 0 unborn, 1 alive, 2 dead
        copy_alloc = bytearray(n)
        copy_read = bytearray(n)
        start: list[float | None] = [None] * n
        end: list[float | None] = [None] * n
        n_streams = len(self.streams)
        moved = [0] * n_streams
        copies = [0] * n_streams
        stream = self.stream
        names = self.tier_names
        err = self._err
        ids = [a.id for a in self.schedule.actions]
        # Every stream is serial: at most one compute action and one copy per link stream are in
        # flight, so "who reads or writes this copy now" is a scan of the streams, not a counter.
        running_op = -1                   # op index of the compute action in flight
        running_outs: tuple[int, ...] = ()
        inflight = [-1] * n_streams       # copy action in flight per stream (index 0 unused)
        link_streams = range(1, n_streams)

        for t, tensor in enumerate(tensors):
            if tr.birth[t] == AT_START and tr.death[t] != AT_START:
                tier = self.hw.tier_index.get(tensor.initial_tier or self.hw.compute_tier, C)
                state[t * T + tier] = _VALID
                usage[tier] += nbytes[t]
                alive[t] = 1

        def in_use(t: int, tier: int) -> bool:
            if tier == C and running_op >= 0 and t in reads[running_op]:
                return True
            for st in link_streams:
                c = inflight[st]
                if c >= 0 and arg[c] == t and (srcs[c] == tier and copy_read[c] or dsts[c] == tier):
                    return True
            return False

        def release(key: int, t: int, tier: int, a: int, now: float, why: str) -> None:
            if state[key] == _ARRIVING or in_use(t, tier):
                err(Code.BUSY, a, now, f"tensor {tensors[t].id!r} in {names[tier]} is {why} while it is "
                                       "being read or written; wait for the reader or copy to end first")
            state[key] = 0
            usage[tier] -= nbytes[t]

        if self.static_times is not None:
            start, end = self.static_times
            events = self._sorted_events(start, end)
        else:
            events = self._heap_events(start, end)
        now = 0.0
        dirty = True   # an allocation happened in this instant: check capacity and peaks

        def close_instant(t_now: float) -> None:
            for tier in range(T):
                u = usage[tier]
                if u > peak[tier]:
                    peak[tier] = u
                    peak_time[tier] = t_now
                if u > cap[tier]:
                    over_count[tier] += 1
                    if over_first[tier] is None:
                        over_first[tier] = (t_now, u, last_alloc[tier])

        for tnow, phase, a in events:
            if tnow != now:
                if dirty:
                    close_instant(now)
                    dirty = False
                now = tnow
            k = kind[a]
            if phase == _START:
                if k == _RUN or k == _RECOMPUTE:
                    o = arg[a]
                    if k == _RECOMPUTE and not recomputable[o]:
                        err(Code.RECOMPUTE, a, now, f"op {ops[o].id!r} may not be recomputed "
                            f"({'it has updates' if ops[o].updates else 'recomputable is false'})")
                    for t in reads[o]:
                        if state[t * T + C] != _VALID:
                            key = t * T + C
                            where = "it has died" if alive[t] == 2 else (
                                "it is still arriving" if state[key] == _ARRIVING else "it is not there")
                            err(Code.MISSING_INPUT, a, now, f"op {ops[o].id!r} starts but its input "
                                f"{tensors[t].id!r} has no valid copy in {names[C]} ({where}); "
                                "prefetch it and wait for the copy")
                    for t in upds[o]:
                        for st in link_streams:
                            c = inflight[st]
                            if c >= 0 and arg[c] == t and copy_read[c]:
                                err(Code.BUSY, a, now, f"op {ops[o].id!r} updates {tensors[t].id!r} while "
                                                       f"copy {ids[c]!r} reads it; wait for the copy to end")
                        for tier in range(T):
                            if tier != C and state[t * T + tier]:
                                release(t * T + tier, t, tier, a, now, "made stale by an update")
                    outs = []
                    for t in writes[o]:
                        key = t * T + C
                        if k == _RECOMPUTE:
                            if alive[t] == 0:
                                err(Code.DEAD_TENSOR, a, now, f"recompute of {ops[o].id!r} before its first "
                                                              f"run: {tensors[t].id!r} does not exist yet")
                                continue
                            if alive[t] == 2 or state[key]:
                                continue
                        elif state[key]:
                            continue
                        alive[t] = 1
                        state[key] = _ARRIVING
                        usage[C] += nbytes[t]
                        outs.append(t)
                    running_op = o
                    running_outs = tuple(outs)
                    usage[C] += ws[o]
                    last_alloc[C] = a
                    dirty = True
                elif k == _COPY:
                    t, s, d = arg[a], srcs[a], dsts[a]
                    st = stream[a]
                    copies[st] += 1
                    moved[st] += nbytes[t]
                    inflight[st] = a
                    if alive[t] != 1:
                        err(Code.DEAD_TENSOR, a, now, f"copy of {tensors[t].id!r} "
                            f"{'before its producer started' if alive[t] == 0 else 'after it died'}")
                    else:
                        skey, dkey = t * T + s, t * T + d
                        if state[skey] != _VALID:
                            err(Code.COPY_SOURCE, a, now, f"copy of {tensors[t].id!r} starts but it has no "
                                f"valid copy in {names[s]}; wait for the copy that brings it there")
                        else:
                            copy_read[a] = 1
                            if running_op >= 0 and t in upds[running_op]:
                                err(Code.BUSY, a, now, f"copy of {tensors[t].id!r} reads it while op "
                                    f"{ops[running_op].id!r} updates it; wait for the update to end")
                        if state[dkey]:
                            err(Code.COPY_TARGET, a, now, f"copy of {tensors[t].id!r} into {names[d]} but "
                                f"{names[d]} already holds it ({'valid' if state[dkey] == _VALID else 'arriving'})")
                        else:
                            state[dkey] = _ARRIVING
                            usage[d] += nbytes[t]
                            copy_alloc[a] = 1
                            last_alloc[d] = a
                            dirty = True
                continue
            if phase == _FREE:
                t, tier = arg[a], dsts[a]
                if alive[t] != 1:
                    err(Code.DEAD_TENSOR, a, now, f"free of {tensors[t].id!r} "
                        f"{'before its producer started' if alive[t] == 0 else 'after it died'}")
                else:
                    key = t * T + tier
                    if not state[key]:
                        err(Code.FREE_MISSING, a, now, f"free of {tensors[t].id!r} in {names[tier]}, "
                                                       "which holds no copy of it")
                    else:
                        release(key, t, tier, a, now, "freed")
            else:  # end
                if k == _RUN or k == _RECOMPUTE:
                    o = arg[a]
                    for t in running_outs:
                        key = t * T + C
                        if state[key] == _ARRIVING:
                            state[key] = _VALID
                    usage[C] -= ws[o]
                    running_op = -1
                    running_outs = ()
                    if k == _RUN:
                        for t in dies[o]:
                            for tier in range(T):
                                key = t * T + tier
                                if state[key]:
                                    release(key, t, tier, a, now, "released at its death")
                            alive[t] = 2
                elif k == _COPY:
                    t, s, d = arg[a], srcs[a], dsts[a]
                    inflight[stream[a]] = -1
                    skey, dkey = t * T + s, t * T + d
                    if copy_alloc[a] and state[dkey] == _ARRIVING:
                        state[dkey] = _VALID
                    if free_src[a] and alive[t] == 1:
                        if state[skey]:
                            release(skey, t, s, a, now, "released by free_src")
                        elif copy_read[a]:
                            err(Code.FREE_MISSING, a, now, f"free_src of {tensors[t].id!r} in {names[s]}, "
                                                           "whose copy is already gone")
        if dirty:
            close_instant(now)

        # deadlock: actions that never started
        never = [i for i in range(n) if start[i] is None]
        if never:
            self._report_deadlock(never)
        for tier in range(T):
            first = over_first[tier]
            if first is not None:
                t_at, held, who = first
                more = f" (over capacity at {over_count[tier]} instants; peak {peak[tier]} bytes)" \
                    if over_count[tier] > 1 else ""
                err(Code.CAPACITY, who if who >= 0 else None, t_at,
                    f"{names[tier]} holds {held} bytes at t={t_at:.9g}s, over its capacity of {cap[tier]} "
                    f"bytes{more}")
        for t, tensor in enumerate(tensors):
            if tensor.persistent:
                if tensor.final_tier is not None:
                    ft = self.hw.tier_index.get(tensor.final_tier, -1)
                    ok = ft >= 0 and state[t * T + ft] == _VALID
                    if not ok:
                        err(Code.LOST, None, now, f"persistent tensor {tensor.id!r} ends with no valid copy "
                                                  f"in its final tier {tensor.final_tier}")
                elif not any(state[t * T + tier] == _VALID for tier in range(T)):
                    err(Code.LOST, None, now, f"persistent tensor {tensor.id!r} ends with no valid copy anywhere")
        for code, i, msg in self.pending_errors:
            err(code, i, start[i] if start[i] is not None else 0.0, msg)
        compute_time = _sequential_sum(dur[i] for i in range(n) if kind[i] == _RUN)
        recompute_time = _sequential_sum(dur[i] for i in range(n) if kind[i] == _RECOMPUTE)
        makespan = max((e for e in end if e is not None), default=0.0)
        timeline = Timeline(
            ids=tuple(ids), kinds=tuple(_KIND_NAMES[k] for k in kind),
            streams=tuple(self.streams[s] if s >= 0 else "" for s in stream),
            starts=tuple(start), ends=tuple(end),
        )
        return self._report(compute_time, recompute_time, makespan, peak, peak_time, moved, copies, timeline,
                            "python")

    def _report(self, compute_time: float, recompute_time: float, makespan: float, peak: list[int],
                peak_time: list[float], moved: list[int], copies: list[int], timeline: Timeline,
                engine: str) -> Report:
        if compute_time > 0:
            overhead: float | None = makespan / compute_time - 1.0
        else:
            overhead = 0.0 if makespan == 0 else None
        names = self.tier_names
        metrics = Metrics(
            makespan=makespan, compute_time=compute_time, recompute_time=recompute_time, overhead=overhead,
            peak=dict(zip(names, peak)), peak_time=dict(zip(names, peak_time)),
            bytes_moved={s: moved[i] for i, s in enumerate(self.streams) if i > 0},
            copies={s: copies[i] for i, s in enumerate(self.streams) if i > 0},
        )
        return Report(valid=not self.errors, errors=tuple(self.errors), metrics=metrics, timeline=timeline,
                      capacity=dict(self.cap_map), engine=engine, capacity_source=dict(self.cap_source))

    def run_native(self) -> Report | None:
        """The native kernel's report of a schedule that validates; None when it is not built, or
        gave up (then :meth:`run`, the reference, finds and words the errors)."""
        core = _native_core()
        if core is None or self.errors:
            return None
        tr, hw = self.trace, self.hw
        if tr.total_bytes >= _INT64_SAFE or any(c >= _INT64_SAFE for c in self.cap):
            return None   # the kernel sums in 64-bit integers: the reference's are exact at any size
        tier_ix = hw.tier_index
        streams = self.streams
        compute = hw.compute_tier
        init = [tier_ix.get(t.initial_tier or compute, self.C) if b == AT_START and d != AT_START else -1
                for t, b, d in zip(tr.tensors, tr.birth, tr.death)]
        final = [-1 if not t.persistent else (-2 if t.final_tier is None else tier_ix.get(t.final_tier, -3))
                 for t in tr.tensors]
        ops = tr.ops
        out = core.simulate(
            list(self.schedule.actions), (Run, Recompute, Copy, Free), dict(tr.op_index), tuple(o.id for o in ops),
            dict(tr.tensor_index), tuple(t.id for t in tr.tensors), dict(tier_ix),
            self.links, len(streams), [o.duration for o in ops], [o.workspace for o in ops],
            [1 if o.effective_recomputable else 0 for o in ops], tr.op_reads, tr.op_writes, tr.op_updates,
            tr.dies_after, [t.bytes for t in tr.tensors], init, final, self.cap, self.C, _KIND_NAMES,
            tuple(streams))
        if out is None:
            return None
        ids, kinds, stream_names, starts, ends, peak, peak_time, moved, copies, comp, recomp, makespan = out
        timeline = Timeline(ids=tuple(ids), kinds=tuple(kinds), streams=tuple(stream_names),
                            starts=tuple(starts), ends=tuple(ends))
        return self._report(comp, recomp, makespan, peak, peak_time, moved, copies, timeline, "native")

    def _sorted_events(self, start: list[float], end: list[float]) -> Iterator[tuple[float, int, int]]:
        """Events in (time, phase, sequence) order by one sort (valid when waits point backwards).

        An action that ends at the instant it starts (zero duration, or a duration too small to
        change the float time) has its end sorted right after its own start, where the heap
        would pop it.
        """
        n = self.n
        kind = self.kind
        st = np.asarray(start, dtype=np.float64)
        en = np.asarray(end, dtype=np.float64)
        seq = np.arange(n, dtype=np.int64)
        kinds = np.asarray(kind, dtype=np.int8)
        is_free = kinds == _FREEK
        zero = (en == st) & ~is_free
        # start (or free) events
        s_phase = np.where(is_free, _FREE, _START).astype(np.int8)
        # end events of non-frees
        has_end = ~is_free
        e_idx = seq[has_end]
        e_time = en[has_end]
        e_sort_phase = np.where(zero[has_end], _START, _END).astype(np.int8)
        e_sub = zero[has_end].astype(np.int8)
        times = np.concatenate([st, e_time])
        sort_phase = np.concatenate([s_phase, e_sort_phase])
        seqs = np.concatenate([seq, e_idx])
        sub = np.concatenate([np.zeros(n, dtype=np.int8), e_sub])
        phase = np.concatenate([s_phase, np.full(len(e_idx), _END, dtype=np.int8)])
        order = np.lexsort((sub, seqs, sort_phase, times))
        return zip(times[order].tolist(), phase[order].tolist(), seqs[order].tolist())

    def _heap_events(self, start: list[float | None], end: list[float | None]) -> Iterator[tuple[float, int, int]]:
        """Events from a heap of (time, phase, sequence): the general case (any wait order)."""
        n, kind, dur, preds = self.n, self.kind, self.dur, self.preds
        succs: list[list[int]] = [[] for _ in range(n)]
        pending = [len(p) for p in preds]
        for i, ps in enumerate(preds):
            for j in ps:
                succs[j].append(i)
        heap: list[tuple[float, int, int]] = []
        push, pop = heapq.heappush, heapq.heappop
        for i in range(n):
            if pending[i] == 0:
                push(heap, (0.0, _FREE if kind[i] == _FREEK else _START, i))
        while heap:
            ev = pop(heap)
            now, phase, a = ev
            if phase == _START:
                start[a] = now
            yield ev
            if phase == _START:
                push(heap, (now + dur[a], _END, a))
                continue
            if phase == _FREE:
                start[a] = now
            end[a] = now
            for b in succs[a]:
                pending[b] -= 1
                if pending[b] == 0:
                    push(heap, (now, _FREE if kind[b] == _FREEK else _START, b))

    def _report_deadlock(self, never: list[int]) -> None:
        stuck = set(never)
        preds = {i: [j for j in self.preds[i] if j in stuck] for i in never}
        # walk predecessors among stuck actions until a repeat: that is a cycle
        seen: dict[int, int] = {}
        path: list[int] = []
        cur = never[0]
        while cur not in seen and preds[cur]:
            seen[cur] = len(path)
            path.append(cur)
            cur = preds[cur][0]
        ids = self.schedule.actions
        if cur in seen:
            cycle = list(reversed(path[seen[cur]:]))
            loop = [ids[i].id for i in cycle + [cycle[0]]]
            if len(loop) > DEADLOCK_SHOWN + 1:   # a long cycle is cut, not printed whole on one line
                half = DEADLOCK_SHOWN // 2
                loop = loop[:half] + [f"... {len(loop) - 2 * half} more ..."] + loop[-half:]
            names = " -> ".join(loop)
            self._err(Code.DEADLOCK, cycle[0], 0.0, f"waits form a cycle of {len(cycle)} action(s) ({names}), so "
                                                    f"{len(never)} action(s) never start; remove one of these waits")
        else:  # pragma: no cover - every stuck action has a stuck predecessor
            self._err(Code.DEADLOCK, never[0], 0.0, f"{len(never)} action(s) never start")
