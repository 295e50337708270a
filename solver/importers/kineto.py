"""Op durations from a Kineto profiler trace (Chrome trace JSON), joined to Execution Trace ops.

The join works on the importer's *units* (the ops it keeps, each with its name, ``rf_id``
and the size of its ET subtree):

1. When the Kineto CPU events carry ``Record function id`` (PyTorch 2.x traces recorded with
   the ET in one profiler session), a unit joins the event with its ``rf_id`` directly, as long
   as nine units in ten find an event of the same name that way.
2. Otherwise (older traces, or an ET and a Kineto trace recorded in different iterations) the
   units are aligned with the Kineto CPU events by name, in start order: a greedy, monotone
   alignment from each candidate anchor, scored on a prefix, the best few anchors aligned in full.
   A Kineto trace usually spans more iterations than the ET: this chooses the window that
   matches. Equally good windows are broken by agreement of ``External id - rf_id`` offsets,
   then by the earliest.

GPU activity (``kernel``, ``gpu_memcpy``, ``gpu_memset``) is attributed to the unit whose CPU
interval, on the launching thread, contains the runtime call with the same ``correlation``
(the ``ac2g`` flow) or, failing that, the CPU op with the kernel's ``External id``. A unit's
duration is its GPU time when it launched anything, its CPU time otherwise.

Examples
--------
>>> doc = {"traceEvents": [
...   {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 0, "dur": 10,
...    "args": {"External id": 5}},
...   {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 2, "dur": 3,
...    "args": {"correlation": 99}},
...   {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 7, "ts": 6, "dur": 40,
...    "args": {"correlation": 99, "External id": 5}}]}
>>> t = kineto_timing(doc, [UnitKey("aten::mm", 1, 1)], "k.json")
>>> round(t.durations[0], 9), t.on_gpu
(4e-05, (True,))
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from solver.errors import InputError
from solver.importers.result import top_counts

CPU_CATEGORIES = frozenset({"cpu_op", "user_annotation", "operator"})
GPU_CATEGORIES = frozenset({"kernel", "gpu_memcpy", "gpu_memset", "memcpy", "memset"})
RUNTIME_CATEGORIES = frozenset({"cuda_runtime", "cuda_driver", "runtime", "driver", "hip_runtime",
                                "hip_driver", "cuda_api"})

_PREFIX = 64
_FULL_CANDIDATES = 4


@dataclass(frozen=True)
class UnitKey:
    """What the join needs to know of one imported op.

    Attributes
    ----------
    name : str
        The ET node name.
    rf_id : int or None
        The ET node's ``rf_id``.
    span : int
        Nodes in its ET subtree (bounds how many Kineto events may nest inside it).
    """

    name: str
    rf_id: int | None
    span: int


@dataclass(frozen=True)
class KinetoTiming:
    """Durations joined from a Kineto trace.

    Attributes
    ----------
    durations : tuple of (float or None)
        Seconds per unit; None where the unit has no Kineto event.
    on_gpu : tuple of bool
        Whether a unit's duration is GPU time (else CPU time).
    meta : mapping
        Facts for the trace's ``meta["kineto"]``.
    warnings : tuple of str
        What could not be joined.
    """

    durations: tuple[float | None, ...]
    on_gpu: tuple[bool, ...]
    meta: Mapping[str, Any]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Events:
    names: list[str]
    ts: list[float]
    end: list[float]
    thread: list[tuple[Any, Any]]
    ext: list[int | None]
    rfid: list[int | None]


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _events(doc: Any, file: str) -> tuple[_Events, list[dict[str, Any]], dict[int, tuple[Any, Any, float]]]:
    if isinstance(doc, Mapping):
        raw = doc.get("traceEvents")
    else:
        raw = doc
    if not isinstance(raw, list):
        raise InputError.single(file, "traceEvents", "expected a Kineto (Chrome trace) document with a "
                                "traceEvents list")
    cpu: list[tuple[float, float, str, tuple[Any, Any], int | None, int | None]] = []
    gpu: list[dict[str, Any]] = []
    runtime: dict[int, tuple[Any, Any, float]] = {}
    for ev in raw:
        if not isinstance(ev, Mapping) or ev.get("ph") != "X":
            continue
        cat = str(ev.get("cat", "")).lower()
        ts, dur = _num(ev.get("ts")), _num(ev.get("dur"))
        if ts is None or dur is None:
            continue
        raw_args = ev.get("args")
        args: Mapping[str, Any] = raw_args if isinstance(raw_args, Mapping) else {}
        if cat in CPU_CATEGORIES:
            ext = args.get("External id")
            rf = args.get("Record function id")
            cpu.append((ts, -dur, str(ev.get("name", "")), (ev.get("pid"), ev.get("tid")),
                        ext if isinstance(ext, int) else None, rf if isinstance(rf, int) else None))
        elif cat in GPU_CATEGORIES:
            gpu.append({"ts": ts, "dur": dur, "corr": args.get("correlation"), "ext": args.get("External id")})
        elif cat in RUNTIME_CATEGORIES:
            corr = args.get("correlation")
            if isinstance(corr, int):
                runtime[corr] = (ev.get("pid"), ev.get("tid"), ts)
    if not cpu:
        raise InputError.single(file, "traceEvents", "no CPU op events (cat cpu_op or user_annotation): "
                                "not a PyTorch profiler trace")
    cpu.sort(key=lambda e: (e[0], e[1]))
    ev = _Events(names=[e[2] for e in cpu], ts=[e[0] for e in cpu], end=[e[0] - e[1] for e in cpu],
                 thread=[e[3] for e in cpu], ext=[e[4] for e in cpu], rfid=[e[5] for e in cpu])
    return ev, gpu, runtime


def _direct_join(units: Sequence[UnitKey], ev: _Events) -> list[int | None] | None:
    by_rf: dict[int, int] = {}
    for i, rf in enumerate(ev.rfid):
        if rf is not None and rf not in by_rf:
            by_rf[rf] = i
    if not by_rf:
        return None
    match: list[int | None] = []
    hits = 0
    for u in units:
        j = by_rf.get(u.rf_id) if u.rf_id is not None else None
        if j is not None and ev.names[j] == u.name:
            match.append(j)
            hits += 1
        else:
            match.append(None)
    return match if units and hits >= 0.9 * len(units) else None


def _align(units: Sequence[UnitKey], first: int, start: int, ev: _Events,
           pos_by_name: Mapping[str, list[int]], limit: int | None) -> tuple[dict[int, int], int]:
    """Greedy monotone alignment of units[first:] from Kineto position ``start``.

    Returns ({unit index: event position}, offset agreements).
    """
    matched: dict[int, int] = {}
    pos = start - 1
    busy: dict[tuple[Any, Any], float] = {}
    allowance = None  # no gap limit before the first match
    stop = len(units) if limit is None else min(len(units), first + limit)
    offset = None
    agree = 0
    for i in range(first, stop):
        u = units[i]
        cands = pos_by_name.get(u.name)
        found = -1
        if cands:
            k = bisect.bisect_right(cands, pos)
            for c in cands[k:k + 6]:
                if allowance is not None and c - pos > allowance:
                    break
                if ev.ts[c] < busy.get(ev.thread[c], float("-inf")):
                    continue
                found = c
                break
        if found < 0:
            if allowance is not None:
                allowance += 8 + 4 * u.span
            continue
        matched[i] = found
        pos = found
        busy[ev.thread[found]] = ev.end[found]
        allowance = 64 + 4 * u.span
        ext = ev.ext[found]
        if ext is not None and u.rf_id is not None:
            if offset is None:
                offset = ext - u.rf_id
            if ext - u.rf_id == offset:
                agree += 1
    return matched, agree


def _align_back(units: Sequence[UnitKey], first: int, start: int, ev: _Events,
                pos_by_name: Mapping[str, list[int]]) -> dict[int, int]:
    """Place units[:first] before the anchor at ``start``: the nearest earlier event of each name."""
    matched: dict[int, int] = {}
    pos = start
    allowance = 64 + 4 * units[first].span
    for i in range(first - 1, -1, -1):
        u = units[i]
        cands = pos_by_name.get(u.name, [])
        k = bisect.bisect_left(cands, pos) - 1
        if k >= 0 and pos - cands[k] <= allowance:
            matched[i] = cands[k]
            pos = cands[k]
            allowance = 64 + 4 * u.span
        else:
            allowance += 8 + 4 * u.span
    return matched


def _aligned_join(units: Sequence[UnitKey], ev: _Events) -> tuple[list[int | None], dict[str, Any]]:
    pos_by_name: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(ev.names):
        pos_by_name[name].append(i)
    present = [i for i in range(min(len(units), 16)) if units[i].name in pos_by_name]
    if not present:
        return [None] * len(units), {"windows": 0}
    first = min(present, key=lambda i: (len(pos_by_name[units[i].name]), i))
    scored = []
    for c in pos_by_name[units[first].name]:
        m, agree = _align(units, first, c, ev, pos_by_name, _PREFIX)
        scored.append((len(m), agree, -c))
    scored.sort(reverse=True)
    best_prefix = scored[0][:1]
    windows = sum(1 for s in scored if s[:1] == best_prefix)
    best: tuple[int, int, int] | None = None
    best_match: dict[int, int] = {}
    for s in scored[:_FULL_CANDIDATES]:
        c = -s[2]
        m, agree = _align(units, first, c, ev, pos_by_name, None)
        if first > 0:
            m.update(_align_back(units, first, c, ev, pos_by_name))
        key = (len(m), agree, -c)
        if best is None or key > best:
            best, best_match = key, m
    return [best_match.get(i) for i in range(len(units))], {"windows": windows}


def kineto_timing(doc: Any, units: Sequence[UnitKey], file: str, min_match: float = 0.5,
                  kernelless: str = "cpu") -> KinetoTiming:
    """Join Kineto durations to ``units`` (see the module docstring).

    Parameters
    ----------
    doc : Any
        The decoded Kineto JSON (an object with ``traceEvents``, or the event list).
    units : sequence of UnitKey
        The imported ops, in execution order.
    file : str
        Label for messages.
    min_match : float
        Fraction of units that must find their Kineto event; below it the Kineto trace is
        judged to be of another program and no duration is taken from it (all None).
    kernelless : {"cpu", "zero"}
        Duration of a joined op that launched no GPU work, in a trace that has GPU work: its CPU
        time (default) or zero (it does not occupy the GPU).

    Raises
    ------
    InputError
        When ``doc`` is not a profiler trace with CPU op events.
    """
    if kernelless not in ("cpu", "zero"):
        raise ValueError(f"kernelless must be 'cpu' or 'zero', got {kernelless!r}")
    ev, gpu, runtime = _events(doc, file)
    direct = _direct_join(units, ev)
    info: dict[str, Any]
    match: list[int | None]
    if direct is not None:
        match, info = direct, {"join": "record-function-id", "windows": 1}
    else:
        match, info = _aligned_join(units, ev)
        info["join"] = "name-alignment"
    # unit intervals per launching thread
    per_thread: dict[tuple[Any, Any], list[tuple[float, float, int]]] = defaultdict(list)
    for u, j in enumerate(match):
        if j is not None:
            per_thread[ev.thread[j]].append((ev.ts[j], ev.end[j], u))
    starts: dict[tuple[Any, Any], list[float]] = {}
    for key, rows in per_thread.items():
        rows.sort()
        starts[key] = [r[0] for r in rows]
    ext_pos: dict[int, int] = {}
    for i, e in enumerate(ev.ext):
        if e is not None and e not in ext_pos:
            ext_pos[e] = i

    def owner(thread: tuple[Any, Any], ts: float) -> int | None:
        rows = per_thread.get(thread)
        if not rows:
            return None
        k = bisect.bisect_right(starts[thread], ts) - 1
        for j in range(k, max(k - 4, -1), -1):
            s, e, u = rows[j]
            if s <= ts <= e:
                return u
        return None

    gpu_time = [0.0] * len(units)
    launched = [False] * len(units)
    matched_pos = [j for j in match if j is not None]
    w_start = min((ev.ts[j] for j in matched_pos), default=0.0)
    w_end = max((ev.end[j] for j in matched_pos), default=0.0)
    in_window = unattributed = 0
    in_window_time = unattributed_time = 0.0
    for g in gpu:
        launch = runtime.get(g["corr"]) if isinstance(g["corr"], int) else None
        who: int | None = None
        if launch is not None:
            who = owner((launch[0], launch[1]), launch[2])
        elif isinstance(g["ext"], int) and g["ext"] in ext_pos:
            p = ext_pos[g["ext"]]
            who = owner(ev.thread[p], ev.ts[p])
        lts = launch[2] if launch is not None else g["ts"]
        inside = w_start <= lts <= w_end
        if inside:
            in_window += 1
            in_window_time += g["dur"]
        if who is None:
            if inside:
                unattributed += 1
                unattributed_time += g["dur"]
            continue
        gpu_time[who] += g["dur"]
        launched[who] = True
    durations: list[float | None] = []
    for u, j in enumerate(match):
        if j is None:
            durations.append(None)
        elif launched[u]:
            durations.append(gpu_time[u] * 1e-6)
        elif kernelless == "zero" and gpu:
            durations.append(0.0)
        else:
            durations.append((ev.end[j] - ev.ts[j]) * 1e-6)
    warnings: list[str] = []
    missing = Counter(units[u].name for u, j in enumerate(match) if j is None)
    n_missing = sum(missing.values())
    rejected = bool(units) and (len(units) - n_missing) < min_match * len(units)
    if rejected:
        warnings.append(f"the Kineto trace matches only {len(units) - n_missing} of {len(units)} ops by name and "
                        f"order (fewer than {min_match:.0%}): it does not record the same program, so all "
                        f"durations are roofline estimates; ops it lacks: {top_counts(missing, 5)}")
        durations = [None] * len(units)
        launched = [False] * len(units)
    elif n_missing:
        warnings.append(f"{n_missing} of {len(units)} ops have no matching Kineto event; their durations are "
                        f"roofline estimates: {top_counts(missing, 5)}")
    if unattributed and not rejected:
        warnings.append(f"{unattributed} GPU activities ({unattributed_time * 1e-6:.6g} s) launched inside the "
                        "matched window could not be attributed to an imported op; left out")
    if info.get("windows", 1) > 1 and not rejected:
        warnings.append(f"{info['windows']} Kineto windows match the ET equally on a prefix; took the best "
                        "full alignment (ties: External id agreement, then the earliest)")
    meta = {
        "join": info["join"], "matched_ops": len(units) - n_missing, "ops": len(units),
        "candidate_windows": info.get("windows", 1),
        "window_start_us": w_start, "window_span_s": (w_end - w_start) * 1e-6,
        "gpu_time_in_window_s": in_window_time * 1e-6,
        "gpu_time_attributed_s": 0.0 if rejected else sum(gpu_time) * 1e-6,
        "gpu_activities": len(gpu), "ops_with_gpu_time": sum(launched), "rejected": rejected,
        "ops_without_gpu_work": ("zero" if gpu and kernelless == "zero" else "cpu time"),
    }
    return KinetoTiming(tuple(durations), tuple(launched), meta, tuple(warnings))
