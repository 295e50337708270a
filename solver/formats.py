"""The three file formats: reading (with every rule checked) and writing.

Readers collect every problem they find (file, JSON path, message) and raise one
:class:`~solver.errors.InputError`. Large files take a fast path (a typed msgspec
decode straight into the model's records); a file with unit strings or a type
error takes the slow path, which checks element by element so that all problems
are reported, not just the first.

Examples
--------
>>> doc = {"format": "tierplan.trace/1", "name": "t",
...        "tensors": [{"id": "x", "bytes": "1 KiB"}],
...        "ops": [{"id": "f", "duration": "2 ms", "inputs": ["x"]}]}
>>> tr = trace_from_document(doc)
>>> tr.tensors[0].bytes, tr.ops[0].duration
(1024, 0.002)
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from typing import Any, Iterator, Union

import msgspec

from solver.errors import InputError, Problems
from solver.fileio import decode_json, read_bytes, read_document, too_deep, write_json_atomic
from solver.model import (
    HARDWARE_FORMAT, SCHEDULE_FORMAT, TENSOR_KINDS, TRACE_FORMAT, Action, Free, Hardware, Link,
    Op, Schedule, Tensor, Tier, Trace,
)
from solver.units import MAX_BYTES, MAX_SECONDS, UnitError, parse_bandwidth, parse_size, parse_time

PathLike = Union[str, "os.PathLike[str]"]


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC while decoding many small acyclic records (a large speed-up)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# --- wire documents (fast path) -------------------------------------------------------------


class _TraceDoc(msgspec.Struct, kw_only=True, gc=False):
    format: Union[str, None] = None
    name: str = ""
    meta: dict[str, Any] = {}
    tensors: list[Tensor] = []
    ops: list[Op] = []


class _ScheduleDoc(msgspec.Struct, kw_only=True, gc=False):
    format: Union[str, None] = None
    trace: str = ""
    hardware: str = ""
    capacity: dict[str, int] = {}
    solver: dict[str, Any] = {}
    actions: list[Action] = []


def _typed_decode(data: bytes, file: str, typ: Any, expected_format: str) -> Any:
    """The fast path: decode straight into model records.

    Returns None when the document needs the slow path (unit strings, a type error, a missing
    or unknown ``format``), which reports every problem.
    """
    with _no_gc():
        try:
            wire = msgspec.json.decode(data, type=typ)
        except msgspec.ValidationError:
            return None
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:   # bad UTF-8 is malformed JSON too
            raise InputError.single(file, "", f"malformed JSON: {exc}") from None
        except RecursionError:
            raise too_deep(file) from None
    return wire if wire.format == expected_format else None


_PATH_RE = re.compile(r" - at `\$(.*)`$")


def _msgspec_problem(exc: msgspec.ValidationError, prefix: str) -> tuple[str, str]:
    """Split a msgspec message into (json path, message) with ``prefix`` for ``$``."""
    text = str(exc)
    m = _PATH_RE.search(text)
    rest = ""
    if m:
        rest = m.group(1)
        text = text[: m.start()]
    path = f"{prefix}{rest}" if prefix else rest.lstrip(".")
    return path, text[:1].lower() + text[1:] if text else text


def _check_format(doc: Any, expected: str, problems: Problems) -> bool:
    if not isinstance(doc, dict):
        problems.add("", f"expected a JSON object with \"format\": \"{expected}\"")
        return False
    fmt = doc.get("format")
    if fmt is None:
        problems.add("format", f"missing; expected \"{expected}\"")
        return False
    if fmt != expected:
        problems.add("format", f"unknown format {fmt!r}; expected \"{expected}\"")
        return False
    return True


def _convert_list(doc: dict[str, Any], key: str, typ: Any, problems: Problems,
                  units: Mapping[str, Callable[[object], Any]],
                  positions: list[int] | None = None) -> list[Any]:
    """Convert ``doc[key]`` element by element, normalising unit fields; collect problems.

    When ``positions`` is given, the index in ``doc[key]`` of each converted element is appended
    to it (elements that fail to convert are left out of the result).
    """
    raw = doc.get(key, [])
    if not isinstance(raw, list):
        problems.add(key, f"expected a list, got {type(raw).__name__}")
        return []
    out = []
    for i, elem in enumerate(raw):
        path = f"{key}[{i}]"
        if not isinstance(elem, dict):
            problems.add(path, f"expected an object, got {type(elem).__name__}")
            continue
        ok = True
        for fname, parse in units.items():
            if fname in elem and isinstance(elem[fname], (str, float)) and not isinstance(elem[fname], bool):
                try:
                    elem[fname] = parse(elem[fname])
                except UnitError as exc:
                    problems.add(f"{path}.{fname}", str(exc))
                    ok = False
        if not ok:
            continue
        try:
            out.append(msgspec.convert(elem, typ))
        except msgspec.ValidationError as exc:
            problems.add(*_msgspec_problem(exc, path))
            continue
        if positions is not None:
            positions.append(i)
    return out


# --- trace ------------------------------------------------------------------------------------


def _trace_rules(tensors: list[Tensor], ops: list[Op], problems: Problems) -> None:
    """Check every trace rule of the spec, recording all problems.

    One cheap pass finds the offending records; messages and JSON paths are built only for them.
    """
    kinds = frozenset(TENSOR_KINDS)
    tix: dict[str, int] = {}
    for i, t in enumerate(tensors):
        if tix.setdefault(t.id, i) != i:
            problems.add(f"tensors[{i}].id", f"duplicate tensor id {t.id!r} (first at tensors[{tix[t.id]}])")
    for i in [i for i, t in enumerate(tensors)
              if not 0 < t.bytes <= MAX_BYTES or t.kind not in kinds
              or (t.final_tier is not None and not t.persistent)]:
        t, p = tensors[i], f"tensors[{i}]"
        if t.bytes <= 0:
            problems.add(f"{p}.bytes", f"must be a positive integer, got {t.bytes}")
        elif t.bytes > MAX_BYTES:
            problems.add(f"{p}.bytes", f"out of range: {_big(t.bytes)} B (at most 2**53 B = 8 PiB)")
        if t.kind not in kinds:
            problems.add(f"{p}.kind", f"unknown kind {t.kind!r}; expected one of {', '.join(TENSOR_KINDS)}")
        if t.final_tier is not None and not t.persistent:
            problems.add(f"{p}.final_tier", "only allowed on a persistent tensor (set \"persistent\": true)")
    seen_ops: dict[str, int] = {}
    producer: dict[str, int] = {}
    suspect: list[int] = []
    for j, op in enumerate(ops):
        if seen_ops.setdefault(op.id, j) != j:
            problems.add(f"ops[{j}].id", f"duplicate op id {op.id!r} (first at ops[{seen_ops[op.id]}])")
        for x in op.outputs:
            if producer.setdefault(x, j) != j or x not in tix:
                suspect.append(j)
        if len(op.outputs) > 1 and len(set(op.outputs)) != len(op.outputs):
            suspect.append(j)
    for j, op in enumerate(ops):
        if not 0 <= op.duration <= MAX_SECONDS or not 0 <= op.workspace <= MAX_BYTES:
            suspect.append(j)
            continue
        for x in op.inputs:
            if producer.get(x, -1) >= j or x not in tix:
                suspect.append(j)
                break
        else:
            for x in op.updates:
                if producer.get(x, -1) >= j or x not in tix:
                    suspect.append(j)
                    break
    for i, t in enumerate(tensors):
        if t.initial_tier is not None and t.id in producer:
            j = producer[t.id]
            k = ops[j].outputs.index(t.id)
            problems.add(f"ops[{j}].outputs[{k}]", f"tensor {t.id!r} has an initial_tier, so no op may output it")
    for j in sorted(set(suspect)):
        _op_problems(j, ops[j], tix, producer, problems)
    if not problems.items:
        total = sum(t.bytes for t in tensors) + sum(o.workspace for o in ops)
        if total > MAX_BYTES:
            problems.add("tensors", f"out of range: the sizes and workspaces add up to {_big(total)} B "
                                    "(a trace's total is at most 2**53 B = 8 PiB)")


def _big(n: int) -> str:
    """A byte count short enough for a message."""
    return str(n) if n < 10**20 else f"~1e{len(str(n)) - 1}"


def _op_problems(j: int, op: Op, tix: dict[str, int], producer: dict[str, int], problems: Problems) -> None:
    """Record the problems of one op flagged by the fast pass of :func:`_trace_rules`."""
    p = f"ops[{j}]"
    if not 0 <= op.duration <= MAX_SECONDS:
        problems.add(f"{p}.duration",
                     f"must be a finite number >= 0 and at most 1e12 (seconds), got {op.duration:.6g}")
    if op.workspace < 0:
        problems.add(f"{p}.workspace", f"must be >= 0, got {op.workspace}")
    elif op.workspace > MAX_BYTES:
        problems.add(f"{p}.workspace", f"out of range: {_big(op.workspace)} B (at most 2**53 B = 8 PiB)")
    outs = set(op.outputs)
    for k, x in enumerate(op.outputs):
        q = f"{p}.outputs[{k}]"
        if x not in tix:
            problems.add(q, f"unknown tensor {x!r}")
        elif producer[x] != j:
            problems.add(q, f"tensor {x!r} already produced by ops[{producer[x]}] (a tensor has at most one "
                            "producer)")
        elif op.outputs.index(x) != k:
            problems.add(q, f"tensor {x!r} is listed twice in outputs")
    for field_name, names in (("inputs", op.inputs), ("updates", op.updates)):
        for k, x in enumerate(names):
            q = f"{p}.{field_name}[{k}]"
            if x not in tix:
                problems.add(q, f"unknown tensor {x!r}")
            elif x in outs:
                problems.add(q, f"tensor {x!r} is also an output of this op")
            elif producer.get(x, -1) > j:
                problems.add(q, f"tensor {x!r} is used before its producer runs (ops[{producer[x]}])")


def first_out_of_range(doc: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first figure of a trace document outside the representable ranges, as (JSON path,
    reason), or None. For writers (generators, importers): refuse what no loader would read.

    Examples
    --------
    >>> first_out_of_range({"tensors": [{"id": "x", "bytes": 2**60}], "ops": []})
    ('tensors[0].bytes', 'size 1.153e+18 B is out of range (at most 2**53 B = 8 PiB)')
    >>> first_out_of_range({"tensors": [{"id": "x", "bytes": 8}], "ops": [{"duration": 1.0}]}) is None
    True
    """
    items: list[tuple[str, Any, Callable[[object], Any]]] = []
    for j, o in enumerate(doc.get("ops", [])):
        items.append((f"ops[{j}].duration", o.get("duration", 0.0), parse_time))
        items.append((f"ops[{j}].workspace", o.get("workspace", 0), parse_size))
    total = 0
    for i, t in enumerate(doc.get("tensors", [])):
        items.append((f"tensors[{i}].bytes", t.get("bytes", 0), parse_size))
    for path, value, parse in items:
        try:
            v = parse(value)
        except UnitError as exc:
            return path, str(exc)
        if parse is parse_size:
            total += v
    if total > MAX_BYTES:
        return "tensors", f"the sizes and workspaces add up to {_big(total)} B (at most 2**53 B = 8 PiB)"
    return None


def trace_from_document(doc: Any, file: str = "<trace>") -> Trace:
    """Build a :class:`Trace` from a decoded document, checking every rule.

    Parameters
    ----------
    doc : dict
        A ``tierplan.trace/1`` document (numbers or unit strings).
    file : str
        Label used in error messages.

    Raises
    ------
    InputError
        With one problem per broken rule.

    Examples
    --------
    >>> trace_from_document({"format": "tierplan.trace/1", "tensors": [], "ops": []}).no_offload_peak
    0
    """
    problems = Problems(file)
    if not _check_format(doc, TRACE_FORMAT, problems):
        problems.raise_if_any()
    name = doc.get("name", "")
    if not isinstance(name, str):
        problems.add("name", "expected a string")
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        problems.add("meta", "expected an object")
        meta = {}
    with _no_gc():
        tensors = _convert_list(doc, "tensors", Tensor, problems,
                                {"bytes": parse_size})
        ops = _convert_list(doc, "ops", Op, problems,
                            {"duration": parse_time, "workspace": parse_size})
    problems.raise_if_any()
    return _finish_trace(name if isinstance(name, str) else "", meta, tensors, ops, problems)


def _finish_trace(name: str, meta: dict[str, Any], tensors: list[Tensor], ops: list[Op],
                  problems: Problems) -> Trace:
    _trace_rules(tensors, ops, problems)
    problems.raise_if_any()
    with _no_gc():
        return Trace(name, tuple(tensors), tuple(ops), meta)


def load_trace(path: PathLike) -> Trace:
    """Read a trace file (``.json`` or ``.json.gz``), checking every rule.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.json")
    >>> save_trace(p, Trace("t", (), ()))
    >>> load_trace(p).name
    't'
    """
    file = str(path)
    data = read_bytes(file)
    try:
        wire = _typed_decode(data, file, _TraceDoc, TRACE_FORMAT)
        if wire is None:
            return trace_from_document(decode_json(data, file), file)
        return _finish_trace(wire.name, wire.meta, wire.tensors, wire.ops, Problems(file))
    except RecursionError:   # e.g. a "meta" nested thousands deep
        raise too_deep(file) from None


def trace_to_document(trace: Trace) -> dict[str, Any]:
    """The ``tierplan.trace/1`` document of a trace (defaults omitted)."""
    tensors = []
    for t in trace.tensors:
        d: dict[str, Any] = {"id": t.id, "bytes": t.bytes, "kind": t.kind}
        if t.initial_tier is not None:
            d["initial_tier"] = t.initial_tier
        if t.persistent:
            d["persistent"] = True
        if t.final_tier is not None:
            d["final_tier"] = t.final_tier
        tensors.append(d)
    ops = []
    for o in trace.ops:
        d = {"id": o.id, "duration": o.duration, "kind": o.kind, "inputs": list(o.inputs),
             "outputs": list(o.outputs)}
        if o.updates:
            d["updates"] = list(o.updates)
        if o.workspace:
            d["workspace"] = o.workspace
        if not o.recomputable:
            d["recomputable"] = False
        ops.append(d)
    return {"format": TRACE_FORMAT, "name": trace.name, "meta": dict(trace.meta), "tensors": tensors, "ops": ops}


def save_trace(path: PathLike, trace: Trace) -> None:
    """Write a trace atomically (gzip for ``.gz``)."""
    write_json_atomic(path, trace_to_document(trace))


# --- hardware ---------------------------------------------------------------------------------


def hardware_from_document(doc: Any, file: str = "<hardware>") -> Hardware:
    """Build a :class:`Hardware` from a decoded JSON or TOML document, checking every rule.

    Examples
    --------
    >>> hw = hardware_from_document({"format": "tierplan.hardware/1", "name": "h", "compute_tier": "HBM",
    ...     "tiers": [{"name": "HBM", "capacity": "1 GiB"}, {"name": "DDR", "capacity": "8 GiB"}],
    ...     "links": [{"src": "HBM", "dst": "DDR", "bandwidth": "25 GB/s", "latency": "10us"}]})
    >>> hw.capacity["HBM"], hw.link("HBM", "DDR").latency
    (1073741824, 1e-05)
    """
    problems = Problems(file)
    if not _check_format(doc, HARDWARE_FORMAT, problems):
        problems.raise_if_any()
    name = doc.get("name", "")
    if not isinstance(name, str):
        problems.add("name", "expected a string")
        name = ""
    tiers: list[Tier] = []
    raw_tiers = doc.get("tiers")
    if not isinstance(raw_tiers, list) or not raw_tiers:
        problems.add("tiers", "expected a non-empty list of tiers")
        raw_tiers = []
    names: set[str] = set()
    for i, t in enumerate(raw_tiers):
        p = f"tiers[{i}]"
        if not isinstance(t, dict):
            problems.add(p, "expected an object")
            continue
        tname = t.get("name")
        if not isinstance(tname, str) or not tname:
            problems.add(f"{p}.name", "missing or not a non-empty string")
            continue
        if tname in names:
            problems.add(f"{p}.name", f"duplicate tier name {tname!r}")
        names.add(tname)
        if "capacity" not in t:
            problems.add(f"{p}.capacity", "missing")
            continue
        try:
            cap = parse_size(t["capacity"])
        except UnitError as exc:
            problems.add(f"{p}.capacity", str(exc))
            continue
        if cap < 0:
            problems.add(f"{p}.capacity", f"must be >= 0, got {cap}")
        tiers.append(Tier(tname, cap))
    compute_tier = doc.get("compute_tier")
    if not isinstance(compute_tier, str):
        problems.add("compute_tier", "missing or not a string")
        compute_tier = ""
    elif names and compute_tier not in names:
        problems.add("compute_tier", f"unknown tier {compute_tier!r}; tiers are {', '.join(sorted(names))}")
    links: list[Link] = []
    raw_links = doc.get("links", [])
    if not isinstance(raw_links, list):
        problems.add("links", "expected a list")
        raw_links = []
    pairs: dict[tuple[str, str], int] = {}
    for i, lk in enumerate(raw_links):
        p = f"links[{i}]"
        if not isinstance(lk, dict):
            problems.add(p, "expected an object")
            continue
        ok = True
        ends = []
        for end in ("src", "dst"):
            v = lk.get(end)
            if not isinstance(v, str):
                problems.add(f"{p}.{end}", "missing or not a string")
                ok = False
            elif v not in names:
                problems.add(f"{p}.{end}", f"unknown tier {v!r}")
                ok = False
            ends.append(v)
        if ok and ends[0] == ends[1]:
            problems.add(p, f"a link must join two different tiers, got {ends[0]!r} -> {ends[1]!r}")
            ok = False
        if ok and (ends[0], ends[1]) in pairs:
            problems.add(p, f"duplicate link {ends[0]}->{ends[1]} (first at links[{pairs[(ends[0], ends[1])]}])")
            ok = False
        try:
            bw = parse_bandwidth(lk["bandwidth"]) if "bandwidth" in lk else None
            if bw is None:
                problems.add(f"{p}.bandwidth", "missing")
                ok = False
            elif bw <= 0:
                problems.add(f"{p}.bandwidth", f"must be > 0, got {bw}")
                ok = False
        except UnitError as exc:
            problems.add(f"{p}.bandwidth", str(exc))
            ok = False
        try:
            lat = parse_time(lk.get("latency", 0.0))
            if lat < 0:
                problems.add(f"{p}.latency", f"must be >= 0, got {lat}")
                ok = False
        except UnitError as exc:
            problems.add(f"{p}.latency", str(exc))
            ok = False
        channel = lk.get("channel")
        if channel is not None and not isinstance(channel, str):
            problems.add(f"{p}.channel", "expected a string")
            ok = False
        if ok:
            pairs[(ends[0], ends[1])] = i
            links.append(Link(ends[0], ends[1], bw, lat, channel or None))  # type: ignore[arg-type]
    compute = doc.get("compute", {})
    if not isinstance(compute, dict):
        problems.add("compute", "expected an object")
        compute = {}
    problems.raise_if_any()
    return Hardware(name, compute_tier, tuple(tiers), tuple(links), compute)


def load_hardware(path: PathLike) -> Hardware:
    """Read a hardware file (JSON, JSON.gz or TOML)."""
    file = str(path)
    doc = read_document(file)
    try:
        return hardware_from_document(doc, file)
    except RecursionError:
        raise too_deep(file) from None


def hardware_to_document(hw: Hardware) -> dict[str, Any]:
    """The ``tierplan.hardware/1`` document of a hardware description."""
    links = []
    for lk in hw.links:
        d: dict[str, Any] = {"src": lk.src, "dst": lk.dst, "bandwidth": lk.bandwidth, "latency": lk.latency}
        if lk.channel:
            d["channel"] = lk.channel
        links.append(d)
    return {"format": HARDWARE_FORMAT, "name": hw.name, "compute_tier": hw.compute_tier,
            "tiers": [{"name": t.name, "capacity": t.capacity} for t in hw.tiers], "links": links,
            "compute": dict(hw.compute)}


# --- schedule ---------------------------------------------------------------------------------


def _schedule_rules(actions: list[Action], problems: Problems, positions: list[int] | None = None) -> None:
    """Check the schedule rules; ``positions[k]`` is the index in the file of ``actions[k]``."""
    seen: dict[str, int] = {}
    for k, a in enumerate(actions):
        i = positions[k] if positions is not None else k
        if a.id in seen:
            problems.add(f"actions[{i}].id", f"duplicate action id {a.id!r} (first at actions[{seen[a.id]}])")
        else:
            seen[a.id] = i
        if type(a) is Free and not a.after:
            problems.add(f"actions[{i}].after", "a free must wait for at least one action (non-empty \"after\")")


def _capacity_map(raw: Any, problems: Problems) -> dict[str, int]:
    if not isinstance(raw, dict):
        problems.add("capacity", "expected an object {tier: size}")
        return {}
    out = {}
    for k, v in raw.items():
        try:
            out[k] = parse_size(v)
            if out[k] < 0:
                problems.add(f"capacity.{k}", "must be >= 0")
        except UnitError as exc:
            problems.add(f"capacity.{k}", str(exc))
    return out


def schedule_from_document(doc: Any, file: str = "<schedule>") -> Schedule:
    """Build a :class:`Schedule` from a decoded document.

    Unknown references (ops, tensors, tiers, action ids) are not input errors: the
    validator reports them as ``unknown-ref``.

    Examples
    --------
    >>> s = schedule_from_document({"format": "tierplan.schedule/1", "actions": [{"do": "run", "op": "a"}]})
    >>> s.actions[0].id
    'a'
    """
    problems = Problems(file)
    if not _check_format(doc, SCHEDULE_FORMAT, problems):
        problems.raise_if_any()
    for key in ("trace", "hardware"):
        if not isinstance(doc.get(key, ""), str):
            problems.add(key, "expected a string")
    solver = doc.get("solver", {})
    if not isinstance(solver, dict):
        problems.add("solver", "expected an object")
        solver = {}
    capacity = _capacity_map(doc.get("capacity", {}), problems)
    positions: list[int] = []
    with _no_gc():
        actions = _convert_list(doc, "actions", Action, problems, {}, positions)
    _schedule_rules(actions, problems, positions)
    problems.raise_if_any()
    return Schedule(str(doc.get("trace", "")), str(doc.get("hardware", "")), tuple(actions), capacity, solver)


def load_schedule(path: PathLike) -> Schedule:
    """Read a schedule file (``.json`` or ``.json.gz``)."""
    file = str(path)
    data = read_bytes(file)
    try:
        return _schedule_from_bytes(data, file)
    except RecursionError:
        raise too_deep(file) from None


def _schedule_from_bytes(data: bytes, file: str) -> Schedule:
    wire = _typed_decode(data, file, _ScheduleDoc, SCHEDULE_FORMAT)
    if wire is None:
        return schedule_from_document(decode_json(data, file), file)
    problems = Problems(file)
    for k, v in wire.capacity.items():
        if v < 0:
            problems.add(f"capacity.{k}", "must be >= 0")
        elif v > MAX_BYTES:
            problems.add(f"capacity.{k}", f"out of range: {_big(v)} B (at most 2**53 B = 8 PiB)")
    _schedule_rules(wire.actions, problems)
    problems.raise_if_any()
    with _no_gc():
        return Schedule(wire.trace, wire.hardware, tuple(wire.actions), wire.capacity, wire.solver)


def schedule_to_document(schedule: Schedule) -> dict[str, Any]:
    """The ``tierplan.schedule/1`` document of a schedule."""
    return {
        "format": SCHEDULE_FORMAT, "trace": schedule.trace, "hardware": schedule.hardware,
        "capacity": dict(schedule.capacity), "solver": dict(schedule.solver),
        "actions": [msgspec.to_builtins(a) for a in schedule.actions],
    }


def save_schedule(path: PathLike, schedule: Schedule) -> None:
    """Write a schedule atomically (gzip for ``.gz``)."""
    write_json_atomic(path, schedule_to_document(schedule))
