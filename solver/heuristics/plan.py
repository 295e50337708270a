"""A residency plan and its emission as a stream program.

Heuristic planners describe their decisions to a :class:`PlanBuilder` (one per
planner call, never shared): which tensors are absent from the compute tier in
which slots (*windows*), and the copies, frees and recomputes that make that true.
The builder then checks the plan with a conservative slot-level account of every
tier (:meth:`PlanBuilder.audit`) and emits a :class:`~solver.model.Schedule` whose
waits make that account hold whatever the actual timing is.

Slot rules (why the emitted schedule fits when the audit passes):

* Each copy has an *anchor*: the first compute action of that slot waits for it.
  A copy that releases a compute-tier copy (``free_src``, or a free after it) is
  anchored at the first slot where the tensor is counted absent, so its release
  has happened when that slot starts; a prefetch is anchored at the slot that
  reads the tensor.
* A copy into the compute tier issued after run ``j`` is counted from slot
  ``j + 1``; it also waits for every release anchored at ``j + 1`` or earlier, so
  when run ``j + 1`` is delayed the tier never holds both.
* In the other tiers a copy issued after run ``j`` is counted from slot ``j``, a
  copy released by an anchored action up to the slot before the anchor, a copy
  made stale by an update up to the slot before the update, and one released by
  its tensor's death up to that slot.
* A recompute before run ``b`` holds what slot ``b`` holds, less run ``b``'s
  outputs and workspace, plus the recomputed op's workspace.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> from solver.heuristics.facts import Facts
>>> tr = Trace("t", (Tensor(id="x", bytes=8),),
...            (Op(id="a", duration=1.0, outputs=("x",)), Op(id="b", duration=1.0),
...             Op(id="c", duration=1.0, inputs=("x",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 8), Tier("DDR", 100)),
...               (Link("HBM", "DDR", 16.0), Link("DDR", "HBM", 16.0)))
>>> pb = PlanBuilder(Facts.build(tr, hw))
>>> pb.evict(0, a=0, w=0, path=(0, 1), anchor=1, keys=(1.0,))
0
>>> pb.prefetch(0, j=1, path=(1, 0), anchor=2, keys=(2.0,))
1
>>> pb.window(0, 1, 1)
>>> pb.audit()
[]
>>> [a.id for a in pb.schedule({"method": "demo"}).actions]
['a', 'out#0', 'b', 'in#1', 'c']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.heuristics.facts import Facts
from solver.model import Action, Copy, Free, Recompute, Run, Schedule


@dataclass(frozen=True, slots=True)
class Overflow:
    """A tier over its capacity in the plan's account.

    Examples
    --------
    >>> Overflow("HBM", 3, "op7", 120, 100).excess
    20
    """

    tier: str
    slot: int
    op: str
    held: int
    capacity: int

    @property
    def excess(self) -> int:
        """Bytes over capacity."""
        return self.held - self.capacity

    def describe(self) -> str:
        """One sentence for a person."""
        return (f"{self.tier} would hold {self.held} bytes during op {self.op!r} (slot {self.slot}), "
                f"over its capacity of {self.capacity} bytes")


class CopyRec:
    """One planned copy (mutable while planning; emitted as a :class:`~solver.model.Copy`)."""

    __slots__ = ("tensor", "src", "dst", "free_src", "after_run", "after_copy", "anchor", "key",
                 "release_c", "issue")

    def __init__(self, tensor: int, src: int, dst: int, free_src: bool, after_run: int, after_copy: int,
                 anchor: int, key: float, release_c: bool = False, issue: int | None = None) -> None:
        self.tensor = tensor
        self.src = src
        self.dst = dst
        self.free_src = free_src
        self.after_run = after_run
        self.after_copy = after_copy
        self.anchor = anchor
        self.key = key
        self.release_c = release_c
        self.issue = issue        # set on a copy into the compute tier: its chain's issue slot


class PlanBuilder:
    """Collects a plan's windows, copies, frees and recomputes; audits and emits it.

    Parameters
    ----------
    facts : Facts
        The instance.
    on_held : callable, optional
        Called as ``on_held(tensor, tier, first, last)`` for every non-compute-tier record
        (a planner keeping its own capacity account).

    Notes
    -----
    Home copies of tensors that start outside the compute tier are recorded at
    construction; everything else is added by the planner.
    """

    def __init__(self, facts: Facts, on_held: Callable[[int, int, int, int], None] | None = None) -> None:
        self.f = facts
        self.on_held = on_held
        self.copies: list[CopyRec] = []
        self.frees: list[tuple[int, int, int, int]] = []       # tensor, tier, after_run, after_copy
        self.recomputes: list[tuple[int, int]] = []             # slot, op
        self.windows: list[tuple[int, int, int]] = []           # tensor, first, last absent slot
        self.back: list[tuple[int, int, int]] = []              # tensor, first, last slot present again
        self.lower: list[tuple[int, int, int, int]] = []        # tensor, tier, first, last slot held
        for t in range(len(facts.size)):
            if facts.absent_start(t):
                self.held(t, facts.home[t], 0, facts.lower_valid_to(t, -1))

    # -- recording -------------------------------------------------------------------------------
    def window(self, t: int, first: int, last: int) -> None:
        """Tensor ``t`` is absent from the compute tier in slots ``first..last``."""
        if first <= last:
            self.windows.append((t, first, last))

    def unwindow(self, t: int, first: int, last: int) -> None:
        """Tensor ``t`` is present again in slots ``first..last`` of an earlier window."""
        if first <= last:
            self.back.append((t, first, last))

    def held(self, t: int, tier: int, first: int, last: int) -> None:
        """Tensor ``t`` has a copy in the non-compute ``tier`` in slots ``first..last`` (account only).

        A copy that exists only between two slots (issued after run ``first`` and released
        before run ``first + 1``) is counted in slot ``first`` (slot 0 when issued at time 0).
        """
        first = max(first, 0)
        last = max(last, first)
        self.lower.append((t, tier, first, last))
        if self.on_held is not None:
            self.on_held(t, tier, first, last)

    def add_copy(self, rec: CopyRec) -> int:
        """Record a copy; returns its index."""
        self.copies.append(rec)
        return len(self.copies) - 1

    def free(self, t: int, tier: int, after_run: int, after_copy: int = -1) -> None:
        """Release ``t``'s copy in ``tier`` after run ``after_run`` (and copy ``after_copy``)."""
        self.frees.append((t, tier, after_run, after_copy))

    def recompute(self, slot: int, op: int) -> None:
        """Re-run ``op`` just before run ``slot``."""
        self.recomputes.append((slot, op))

    # -- composite moves --------------------------------------------------------------------------
    def evict(self, t: int, a: int, w: int, path: tuple[int, ...], anchor: int, keys: tuple[float, ...],
              stage_anchor: int | None = None) -> int:
        """Copy ``t`` out of the compute tier along ``path`` and release it there.

        The first hop starts after run ``w`` (the last write; -1: at time 0); the compute
        copy is released by that hop (``free_src``) when ``w == a``, else by a free after
        it and run ``a`` (the last read). Staging copies on later hops are released by
        the next hop. Returns the index of the first hop.

        Parameters
        ----------
        anchor : int
            Slot whose first compute action waits for the first hop (the release).
        stage_anchor : int, optional
            Slot that waits for the last hop (default ``anchor``).
        """
        f = self.f
        stage_anchor = anchor if stage_anchor is None else stage_anchor
        ws = max(w, 0)
        first = self.add_copy(CopyRec(t, path[0], path[1], w == a, w, -1, anchor, keys[0], release_c=True))
        if w != a:
            self.free(t, path[0], a, first)
        prev = first
        for k in range(1, len(path) - 1):
            self.held(t, path[k], ws, stage_anchor - 1)
            prev = self.add_copy(CopyRec(t, path[k], path[k + 1], True, -1, prev, stage_anchor, keys[k]))
        self.held(t, path[-1], ws, f.lower_valid_to(t, max(a, 0)))
        return first

    def prefetch(self, t: int, j: int, path: tuple[int, ...], anchor: int, keys: tuple[float, ...],
                 after_copy: int = -1, keep: int = -1, keep_to: int = -1) -> int:
        """Copy ``t`` into the compute tier along ``path``, issued after run ``j`` (-1: time 0).

        The source copy stays; staging copies are released by the next hop, except the one in
        tier ``keep`` (held through slot ``keep_to``). Run ``anchor`` waits for the last hop;
        the first hop also waits for copy ``after_copy``. Returns the index of the last hop.
        """
        prev = after_copy
        for k in range(len(path) - 1):
            last = k == len(path) - 2
            rec = CopyRec(t, path[k], path[k + 1], k > 0 and path[k] != keep, j if k == 0 else -1, prev, anchor,
                          keys[k], issue=j if last else None)
            prev = self.add_copy(rec)
            if not last:
                self.held(t, path[k + 1], max(j, 0), keep_to if path[k + 1] == keep else anchor - 1)
        return prev

    def move(self, t: int, path: tuple[int, ...], after_run: int, anchor: int, keys: tuple[float, ...],
             first_slot: int, keep_last_to: int) -> int:
        """Copy ``t`` between non-compute tiers along ``path`` (the source copy stays).

        ``t`` is absent from the compute tier meanwhile; a path through it stages ``t`` there, which
        is counted there from ``first_slot`` to ``keep_last_to`` (its exact stay depends on the
        links' queues), so the audit refuses a plan the staged copy would overflow.
        """
        prev = -1
        for k in range(len(path) - 1):
            prev = self.add_copy(CopyRec(t, path[k], path[k + 1], k > 0, after_run if k == 0 else -1, prev,
                                         anchor, keys[k]))
            last = k == len(path) - 2
            if path[k + 1] == self.f.C:
                self.unwindow(t, max(first_slot, 0), keep_last_to)
            else:
                self.held(t, path[k + 1], first_slot, keep_last_to if last else anchor - 1)
        return prev

    # -- account ----------------------------------------------------------------------------------
    def profile(self) -> np.ndarray:
        """Compute-tier bytes per slot under the plan (int64 array)."""
        f = self.f
        n = f.n
        diff = np.zeros(n + 1, dtype=np.int64)
        for rows, sign in ((self.windows, -1), (self.back, 1)):
            if rows:
                w = np.asarray(rows, dtype=np.int64)
                sz = np.asarray(f.size, dtype=np.int64)[w[:, 0]] * sign
                np.add.at(diff, w[:, 1], sz)
                np.add.at(diff, np.minimum(w[:, 2], n - 1) + 1, -sz)
        return f.base + np.cumsum(diff)[:n]

    def lower_profiles(self) -> dict[int, np.ndarray]:
        """Bytes per slot in each non-compute tier holding something."""
        f = self.f
        n = max(f.n, 1)
        out: dict[int, np.ndarray] = {}
        if not self.lower:
            return out
        arr = np.asarray(self.lower, dtype=np.int64)
        sz = np.asarray(f.size, dtype=np.int64)[arr[:, 0]]
        for tier in np.unique(arr[:, 1]).tolist():
            sel = arr[:, 1] == tier
            diff = np.zeros(n + 1, dtype=np.int64)
            lo = np.clip(arr[sel, 2], 0, n - 1)
            hi = np.clip(arr[sel, 3], -1, n - 1)
            ok = lo <= hi
            np.add.at(diff, lo[ok], sz[sel][ok])
            np.add.at(diff, hi[ok] + 1, -sz[sel][ok])
            out[int(tier)] = np.cumsum(diff)[:n]
        return out

    def audit(self) -> list[Overflow]:
        """Every tier-slot over capacity in the plan's account (empty when the plan fits)."""
        f = self.f
        names = [t.name for t in f.hardware.tiers]
        ops = f.trace.ops
        out: list[Overflow] = []
        if f.n:
            prof = self.profile()
            cap = f.cap[f.C]
            for s in np.flatnonzero(prof > cap)[:1].tolist():
                out.append(Overflow(names[f.C], s, ops[s].id, int(prof[s]), cap))
            for b, p in self.recomputes:
                held = int(prof[b]) - f.out_bytes[b] - f.ws[b] + f.ws[p]
                if held > cap:
                    out.append(Overflow(names[f.C], b, ops[p].id, held, cap))
                    break
        for tier, prof in self.lower_profiles().items():
            cap = f.cap[tier]
            over = np.flatnonzero(prof > cap)
            if len(over):
                s = int(over[0])
                out.append(Overflow(names[tier], s, ops[min(s, f.n - 1)].id if f.n else "-", int(prof[s]), cap))
        return out

    # -- emission ---------------------------------------------------------------------------------
    def schedule(self, solver: Mapping[str, Any], capacity: Mapping[str, int] | None = None) -> Schedule:
        """Emit the plan as a schedule (runs in trace order; each stream in key order)."""
        f = self.f
        tr, hw = f.trace, f.hardware
        ops, tensors = tr.ops, tr.tensors
        names = [t.name for t in hw.tiers]
        n = f.n
        sep = "#"
        while any(sep in o.id for o in ops):
            sep += "#"
        copies = self.copies
        nc = len(copies)
        cid = [f"{'in' if c.dst == f.C else ('out' if c.src == f.C else 'mv')}{sep}{i}"
               for i, c in enumerate(copies)]
        # the first compute action of each slot waits for the copies anchored there (earlier anchors
        # are waited for by earlier slots); a copy into C issued after run j also waits for the
        # releases anchored at j + 1 (earlier ones are waited for by run j, which it waits for)
        slot_deps: list[list[int]] = [[] for _ in range(n)]
        release_at: dict[int, list[int]] = {}
        for i, c in enumerate(copies):
            if 0 <= c.anchor < n:
                slot_deps[c.anchor].append(i)
                if c.release_c:
                    release_at.setdefault(c.anchor, []).append(i)
        gap_deps = {i: release_at[c.issue + 1] for i, c in enumerate(copies)
                    if c.issue is not None and c.issue + 1 in release_at}
        # sort keys (time, rank, seq): rank places an action right after what it waits for when
        # times tie (a copy issued after run j sorts after run j and before run j + 1)
        items: list[tuple[float, float, int, Action]] = []
        rec_at: dict[int, list[int]] = {}
        for b, p in self.recomputes:
            rec_at.setdefault(b, []).append(p)
        seq = 0
        start, end = f.start, f.end
        for i, op in enumerate(ops):
            deps = [cid[k] for k in slot_deps[i]]
            for p in sorted(rec_at.get(i, ())):
                items.append((start[i], i - 0.5, seq, Recompute(id=f"rc{sep}{seq}", op=ops[p].id,
                                                               after=tuple(deps))))
                deps = []
                seq += 1
            items.append((start[i], float(i), seq, Run(op=op.id, after=tuple(deps))))
            seq += 1
        rank = [0.0] * nc
        for i, c in enumerate(copies):
            after: list[str] = []
            r = -1.0
            if c.after_run >= 0:
                after.append(ops[c.after_run].id)
                r = c.after_run + 0.25
            if c.after_copy >= 0:
                after.append(cid[c.after_copy])
                r = max(r, rank[c.after_copy] + 1e-3)
            for k in gap_deps.get(i, ()):
                if k != c.after_copy and k != i:
                    after.append(cid[k])
            rank[i] = r
            items.append((c.key, r, seq + i, Copy(id=cid[i], tensor=tensors[c.tensor].id, src=names[c.src],
                                                  dst=names[c.dst], free_src=c.free_src, after=tuple(after))))
        seq += nc
        for k, (t, tier, ar, ac) in enumerate(self.frees):
            after = []
            key, r = 0.0, -1.0
            if ar >= 0:
                after.append(ops[ar].id)
                key, r = end[ar], ar + 0.3
            if ac >= 0:
                after.append(cid[ac])
                key, r = max(key, copies[ac].key), max(r, rank[ac] + 1e-3)
            items.append((key, r, seq + k, Free(id=f"free{sep}{k}", tensor=tensors[t].id, tier=names[tier],
                                                after=tuple(after))))
        items.sort(key=lambda x: (x[0], x[1], x[2]))
        actions = _waits_first([x[3] for x in items])
        return Schedule(tr.name, hw.name, tuple(actions), dict(capacity or {}), dict(solver))


def _waits_first(actions: list[Action]) -> list[Action]:
    """Order actions so that every wait points backwards, keeping the given order where it can.

    The order of the copies of one stream is its first-in-first-out order, so a wait that
    points forwards can close a cycle through a stream. When a wait points forwards, the
    actions are re-emitted by a topological sort of the explicit waits and the compute
    stream's order, choosing the earliest action of the given order among those ready; each
    stream's order is then the emission order, so every wait, explicit or implied by a
    stream, points backwards. Returns ``actions`` itself when nothing points forwards.
    """
    where = {a.id: i for i, a in enumerate(actions)}
    if all(where.get(d, -1) < i for i, a in enumerate(actions) for d in a.after):
        return actions
    import heapq
    n = len(actions)
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    prev_compute = -1
    for i, a in enumerate(actions):
        preds = {where[d] for d in a.after if d in where}
        if isinstance(a, (Run, Recompute)):
            if prev_compute >= 0:
                preds.add(prev_compute)
            prev_compute = i
        for p in preds:
            succ[p].append(i)
        indeg[i] = len(preds)
    heap = [i for i in range(n) if indeg[i] == 0]
    heapq.heapify(heap)
    out: list[Action] = []
    while heap:
        i = heapq.heappop(heap)
        out.append(actions[i])
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(heap, j)
    return out if len(out) == n else actions
