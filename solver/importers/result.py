"""What every importer returns: a ``tierplan.trace/1`` document and the warnings it raised.

An importer never drops or guesses silently: each thing it leaves out or estimates is one
warning sentence, returned in :attr:`ImportResult.warnings` and copied into the document's
``meta["warnings"]``.

Examples
--------
>>> doc = trace_document("t", [tensor_entry("x", 8)], [op_entry("f", 0.5, inputs=["x"])],
...                      meta={"importer": "demo"}, warnings=["guessed f's duration"])
>>> doc["meta"]["warnings"], doc["tensors"][0]
(["guessed f's duration"], {'id': 'x', 'bytes': 8, 'kind': 'other'})
>>> ImportResult(doc, ("guessed f's duration",)).document["format"]
'tierplan.trace/1'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TRACE_FORMAT = "tierplan.trace/1"

_ID_BAD = re.compile(r"[^A-Za-z0-9_.:\-/]+")


@dataclass(frozen=True)
class ImportResult:
    """A trace document (``tierplan.trace/1``, plain JSON data) and the importer's warnings.

    Examples
    --------
    >>> r = ImportResult({"format": "tierplan.trace/1", "name": "t", "tensors": [], "ops": []}, ())
    >>> r.warnings
    ()
    """

    document: dict[str, Any]
    warnings: tuple[str, ...]


def safe_id(text: str, limit: int = 60) -> str:
    """A compact identifier fragment: runs of unusual characters become ``_``.

    Examples
    --------
    >>> safe_id("autograd::engine::evaluate_function: AddmmBackward0")
    'autograd::engine::evaluate_function:_AddmmBackward0'
    """
    out = _ID_BAD.sub("_", str(text)).strip("_")
    return out[:limit] or "x"


def tensor_entry(tid: str, nbytes: int, kind: str = "other", persistent: bool = False,
                 initial_tier: str | None = None) -> dict[str, Any]:
    """One tensor of a trace document (fields left at their defaults are omitted).

    Examples
    --------
    >>> tensor_entry("w", 16, "weight", persistent=True)
    {'id': 'w', 'bytes': 16, 'kind': 'weight', 'persistent': True}
    """
    if not isinstance(nbytes, int) or nbytes <= 0:
        raise ValueError(f"tensor {tid!r}: bytes must be a positive integer, got {nbytes!r}")
    entry: dict[str, Any] = {"id": tid, "bytes": nbytes, "kind": kind}
    if initial_tier is not None:
        entry["initial_tier"] = initial_tier
    if persistent:
        entry["persistent"] = True
    return entry


def op_entry(oid: str, duration: float, kind: str = "", inputs: Iterable[str] = (),
             outputs: Iterable[str] = (), updates: Iterable[str] = (), workspace: int = 0,
             recomputable: bool = True) -> dict[str, Any]:
    """One op of a trace document.

    Examples
    --------
    >>> e = op_entry("mm", 1e-3, "matmul", inputs=["a", "w"], outputs=["b"])
    >>> e["inputs"], e["outputs"], e["updates"], e["recomputable"]
    (['a', 'w'], ['b'], [], True)
    """
    if not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"op {oid!r}: duration must be a finite number >= 0, got {duration!r}")
    return {"id": oid, "duration": float(duration), "kind": kind, "inputs": list(inputs),
            "outputs": list(outputs), "updates": list(updates), "workspace": int(workspace),
            "recomputable": bool(recomputable and not list(updates))}


def trace_document(name: str, tensors: list[dict[str, Any]], ops: list[dict[str, Any]],
                   meta: Mapping[str, Any] | None = None, warnings: Iterable[str] = ()) -> dict[str, Any]:
    """Assemble a ``tierplan.trace/1`` document; ``warnings`` go to ``meta["warnings"]``.

    Examples
    --------
    >>> trace_document("t", [], [])["meta"]
    {'warnings': []}
    """
    full_meta = dict(meta or {})
    full_meta["warnings"] = list(warnings)
    return {"format": TRACE_FORMAT, "name": name, "meta": full_meta, "tensors": tensors, "ops": ops}


def top_counts(counter: Mapping[str, int], limit: int = 8) -> str:
    """``a x3, b x1`` for the most common items of a count mapping.

    Examples
    --------
    >>> top_counts({"a": 3, "b": 1, "c": 2}, limit=2)
    'a x3, c x2 (and 1 more)'
    """
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{k} x{v}" for k, v in items[:limit])
    if len(items) > limit:
        text += f" (and {len(items) - limit} more)"
    return text


def with_initial_tier(document: Mapping[str, Any], tier: str) -> dict[str, Any]:
    """A copy of a trace document whose pre-existing tensors (no op outputs them) start in ``tier``.

    Importers leave ``initial_tier`` unset (the compute tier): they do not know the hardware.
    Placing weights, optimizer states and inputs in a host tier lets a planner fetch them.

    Examples
    --------
    >>> doc = trace_document("t", [tensor_entry("w", 8, "weight", True), tensor_entry("y", 4)],
    ...                      [op_entry("f", 1.0, inputs=["w"], outputs=["y"])])
    >>> [t.get("initial_tier") for t in with_initial_tier(doc, "DDR")["tensors"]]
    ['DDR', None]
    """
    produced = {t for op in document["ops"] for t in op.get("outputs", [])}
    out = dict(document)
    out["tensors"] = [dict(t, initial_tier=tier) if t["id"] not in produced else dict(t)
                      for t in document["tensors"]]
    meta = dict(document.get("meta", {}))
    meta["initial_tier"] = tier
    out["meta"] = meta
    return out
