"""Per-instance facts every heuristic planner needs, computed once.

Slots are op indices: slot ``i`` is the run of op ``i``. Estimated times are those of
the no-stall execution (every op back to back): ``start[i]`` and ``end[i]``. Tiers are
indices into ``hardware.tiers``; routes between tiers follow the fastest declared links.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, outputs=("x",)),
...                                              Op(id="b", duration=2.0, inputs=("x",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 10), Tier("DDR", 100)),
...               (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0)))
>>> f = Facts.build(tr, hw)
>>> f.start, f.end, f.base_peak, f.route[(0, 1)]
([0.0, 1.0, 3.0], [1.0, 3.0], 8, (0, 1))
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.model import AT_START, Hardware, Trace


@dataclass(frozen=True, eq=False)
class Facts:
    """What the planners read about a trace on hardware (all lists indexed by op, tensor or tier).

    Attributes
    ----------
    trace, hardware
        The instance (hardware with its capacities in force).
    n : int
        Number of ops (slots).
    dur, start, end : list[float]
        Op durations; estimated start (``len n + 1``, ``start[n]`` the total) and end times.
    size : list[int]
        Tensor bytes.
    C : int
        Compute tier index.
    cap : list[int]
        Capacity per tier.
    home : list[int]
        Tier where each tensor starts: its ``initial_tier`` for a tensor no op produces, else C.
    final : list[int]
        Final tier index of a persistent tensor with ``final_tier``, else -1.
    updates_of, writers_of : list[tuple[int, ...]]
        Per tensor: ops that update it; ops that write it (producer and updaters), sorted.
    out_bytes, ws, footprint : list[int]
        Per op: bytes of its outputs; workspace; inputs + updates + outputs + workspace.
    base : numpy.ndarray
        Per slot: compute-tier bytes when every tensor stays there from birth to death
        (tensors starting elsewhere included; see :meth:`absent_start`).
    route : dict
        ``(src, dst) -> tuple of tiers`` along the fastest links (missing when unreachable).
    route_off : dict
        The same for moves between two other tiers that do not pass through the compute tier
        (a copy staged there would take its room): missing when every route does.
    hop : dict
        ``(src, dst) -> (stream index, latency, bandwidth)`` for each declared link.
    streams : list[str]
        Stream names (one calendar each).
    """

    trace: Trace
    hardware: Hardware
    n: int
    dur: list[float]
    start: list[float]
    end: list[float]
    size: list[int]
    C: int
    cap: list[int]
    home: list[int]
    final: list[int]
    updates_of: list[tuple[int, ...]]
    writers_of: list[tuple[int, ...]]
    out_bytes: list[int]
    ws: list[int]
    footprint: list[int]
    base: Any
    route: dict[tuple[int, int], tuple[int, ...]]
    route_off: dict[tuple[int, int], tuple[int, ...]]
    hop: dict[tuple[int, int], tuple[int, float, float]]
    streams: list[str]

    @property
    def base_peak(self) -> int:
        """Largest value of :attr:`base`."""
        return int(self.base.max()) if self.n else 0

    @classmethod
    def build(cls, trace: Trace, hardware: Hardware) -> "Facts":
        """Compute the facts of ``trace`` on ``hardware`` (capacities already in force)."""
        ops, tensors = trace.ops, trace.tensors
        n = len(ops)
        dur = [float(o.duration) for o in ops]
        st = np.zeros(n + 1, dtype=np.float64)
        if n:
            st[1:] = np.cumsum(np.asarray(dur, dtype=np.float64))
        start = st.tolist()
        end = start[1:]
        tix = hardware.tier_index
        C = tix[hardware.compute_tier]
        cap = [t.capacity for t in hardware.tiers]
        size = [t.bytes for t in tensors]
        home = [tix.get(t.initial_tier, C) if (trace.producer[i] < 0 and t.initial_tier) else C
                for i, t in enumerate(tensors)]
        final = [tix.get(t.final_tier, -1) if (t.persistent and t.final_tier) else -1 for t in tensors]
        upd: list[list[int]] = [[] for _ in tensors]
        for i, us in enumerate(trace.op_updates):
            for t in us:
                upd[t].append(i)
        writers = []
        for t in range(len(tensors)):
            w = list(upd[t])
            p = trace.producer[t]
            if p >= 0:
                w.insert(0, p)
            writers.append(tuple(sorted(set(w))))
        out_bytes = [sum(size[t] for t in ws) for ws in trace.op_writes]
        wsp = [int(o.workspace) for o in ops]
        footprint = [sum(size[t] for t in r) + out_bytes[i] + wsp[i] for i, r in enumerate(trace.op_reads)]
        base = np.zeros(n + 1, dtype=np.int64)
        for t in range(len(tensors)):
            d = trace.death[t]
            if d < 0:
                continue
            b = max(trace.birth[t], 0)
            base[b] += size[t]
            base[min(d, n - 1) + 1] -= size[t]
        base = np.cumsum(base)[:n] + np.asarray(wsp, dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
        streams = list(hardware.streams)
        sidx = {s: i for i, s in enumerate(streams)}
        hop = {(tix[lk.src], tix[lk.dst]): (sidx[lk.stream], lk.latency, lk.bandwidth) for lk in hardware.links}
        route = _routes(hardware, size)
        route_off = {k: v for k, v in _routes(hardware, size, avoid=C).items() if C not in k}
        return cls(trace, hardware, n, dur, start, end, size, C, cap, home, final,
                   [tuple(u) for u in upd], writers, out_bytes, wsp, footprint, base, route, route_off, hop,
                   streams)

    # -- small queries -------------------------------------------------------------------------
    def copy_time(self, t: int, src: int, dst: int) -> float:
        """Seconds a copy of tensor ``t`` along the link ``src -> dst`` takes."""
        _, lat, bw = self.hop[(src, dst)]
        return lat + self.size[t] / bw

    def slot_after(self, time: float, lo: int = 0) -> int:
        """First slot ``>= lo`` whose estimated start is at or after ``time`` (``n`` if none)."""
        if time <= 0:
            return max(lo, 0)
        return max(lo, min(bisect_left(self.start, time, 0, self.n + 1), self.n))

    def slot_before(self, time: float) -> int:
        """Last slot whose estimated end is at or before ``time`` (-1 if none)."""
        return bisect_right(self.end, time) - 1

    def next_use(self, t: int, after: int) -> int:
        """First user of ``t`` after slot ``after`` (``n`` if none)."""
        us = self.trace.users[t]
        k = bisect_right(us, after)
        return us[k] if k < len(us) else self.n

    def last_writer(self, t: int, upto: int) -> int:
        """Last op ``<= upto`` that writes ``t`` (-1 if none)."""
        w = self.writers_of[t]
        k = bisect_right(w, upto)
        return w[k - 1] if k else -1

    def updated_between(self, t: int, lo: int, hi: int) -> bool:
        """Whether an op in ``lo < op < hi`` updates ``t``."""
        u = self.updates_of[t]
        k = bisect_right(u, lo)
        return k < len(u) and u[k] < hi

    def next_update(self, t: int, after: int) -> int:
        """First op after slot ``after`` that updates ``t`` (``n`` if none)."""
        u = self.updates_of[t]
        k = bisect_right(u, after)
        return u[k] if k < len(u) else self.n

    def last_slot(self, t: int) -> int:
        """Last slot at which ``t`` is alive (``n - 1`` for a persistent tensor; -1 if never)."""
        d = self.trace.death[t]
        return min(d, self.n - 1)

    def lower_valid_to(self, t: int, since: int) -> int:
        """Last slot through which a lower-tier copy made at ``since`` stays valid (until an update or death)."""
        return min(self.next_update(t, since) - 1, self.last_slot(t))

    def absent_start(self, t: int) -> bool:
        """Whether ``t`` starts outside the compute tier (a tensor no op produces, homed elsewhere)."""
        return self.home[t] != self.C and self.trace.birth[t] == AT_START and self.trace.death[t] >= 0

    def path_time(self, t: int, path: tuple[int, ...]) -> float:
        """Seconds to copy ``t`` hop by hop along ``path``."""
        return sum(self.copy_time(t, path[k], path[k + 1]) for k in range(len(path) - 1))


def _routes(hw: Hardware, size: list[int], avoid: int | None = None) -> dict[tuple[int, int], tuple[int, ...]]:
    """Fastest tier paths between every pair (weighted by the copy time of a typical tensor).

    Dijkstra from every tier (hardware has a handful of tiers); ties go to fewer hops, then to
    lower tier indices, so routes are deterministic. With ``avoid``, no path passes through that
    tier (it may still start or end there).
    """
    nominal = float(np.median(size)) if size else 1.0
    tix = hw.tier_index
    n = len(hw.tiers)
    adj: list[list[tuple[float, int]]] = [[] for _ in range(n)]
    for lk in hw.links:
        adj[tix[lk.src]].append((lk.copy_time(nominal), tix[lk.dst]))
    out: dict[tuple[int, int], tuple[int, ...]] = {}
    for s in range(n):
        best: dict[int, tuple[float, int, tuple[int, ...]]] = {s: (0.0, 0, (s,))}
        heap = [(0.0, 0, (s,))]
        done: set[int] = set()
        while heap:
            d, hops, path = heapq.heappop(heap)
            u = path[-1]
            if u in done:
                continue
            done.add(u)
            if u == avoid and u != s:
                continue
            for w, v in adj[u]:
                cand = (d + w, hops + 1, path + (v,))
                if v not in done and (v not in best or cand < best[v]):
                    best[v] = cand
                    heapq.heappush(heap, cand)
        for d_, (_, _, path) in best.items():
            if d_ != s:
                out[(s, d_)] = path
    return out
