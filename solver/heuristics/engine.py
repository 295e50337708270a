"""The planning state shared by the window-based planners (greedy, vdnn, belady, zero-offload).

An :class:`Engine` holds, for one planner call, the instance facts, the plan being
built (:class:`~solver.heuristics.plan.PlanBuilder`), the link calendars
(:class:`~solver.heuristics.calendar.Links`) and the compute tier's planned
footprint per slot. Its moves are the building blocks every planner uses:

* :meth:`Engine.offload_option` / :meth:`Engine.commit_offload`: take a tensor out of
  the compute tier between two uses (copy out, or just drop it when a lower copy is
  still valid) and bring it back before the next use (or never, for a tail);
* :meth:`Engine.recompute_option` / :meth:`Engine.commit_recompute`: drop it and
  recompute its producer before the next use;
* :meth:`Engine.initial_fetches` and :meth:`Engine.tail`: the moves the instance
  requires whatever the method (fetch what starts elsewhere, write persistent tensors
  back to their final tier, drop what has a valid copy elsewhere after its last use).

Gaps are ``(t, a, b)``: tensor ``t`` is touched at slot ``a`` (``-1``: it exists
from time 0) and next at slot ``b`` (``n``: never again). A window is the run of
slots ``m..j`` (``a < m <= j < b``) in which it is absent.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> from solver.methods import Instance
>>> tr = Trace("t", (Tensor(id="x", bytes=8),),
...            (Op(id="a", duration=1.0, outputs=("x",)), Op(id="b1", duration=1.0),
...             Op(id="b2", duration=1.0), Op(id="b3", duration=1.0), Op(id="c", duration=1.0, inputs=("x",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 8), Tier("DDR", 100)),
...               (Link("HBM", "DDR", 16.0), Link("DDR", "HBM", 16.0)))
>>> eng = Engine(Instance(tr, hw))
>>> opt = eng.offload_option(0, 0, 4, s=2)
>>> (opt.m, opt.j, opt.stall)
(2, 2, 0.0)
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.heuristics.calendar import Links
from solver.heuristics.facts import Facts
from solver.heuristics.plan import PlanBuilder
from solver.heuristics.trees import RangeAdd, RangeMax
from solver.methods import Instance, PlanResult


class PlanningError(Exception):
    """The instance cannot be planned (the message names the op or tensor and the bytes)."""


@dataclass(frozen=True, slots=True)
class Option:
    """One way to keep tensor ``t`` out of the compute tier during gap ``(a, b)``.

    Attributes
    ----------
    kind : str
        ``"offload"`` (copy out or drop, copy back unless ``b == n``) or ``"recompute"``.
    m, j : int
        First and last absent slot.
    stall : float
        Estimated exposed time (0 when hidden behind compute).
    link_time : float
        Seconds of link time it books; for a recompute, the recompute time.
    """

    kind: str
    t: int
    a: int
    b: int
    m: int
    j: int
    stall: float
    link_time: float
    # offload details
    drop: bool = False                       # the compute copy is dropped (a valid lower copy exists)
    w: int = -1                              # first hop waits for this run
    out_path: tuple[int, ...] = ()
    out_starts: tuple[float, ...] = ()
    anchor: int = 0                          # slot waiting for the release
    stage_anchor: int = 0
    src: int = -1                            # tier the copy comes back from
    in_path: tuple[int, ...] = ()
    in_starts: tuple[float, ...] = ()
    op: int = -1                             # recomputed op
    shared: bool = False                     # the recompute is already planned (for another output)


class Engine:
    """Planning state for one planner call (see the module docstring).

    Parameters
    ----------
    instance : Instance
        Trace and hardware (capacities in force).
    track_lower : bool
        Keep range-max trees of the non-compute tiers that could fill up, so options
        can check their capacity (:meth:`lower_fits`).
    """

    def __init__(self, instance: Instance, track_lower: bool = True) -> None:
        f = Facts.build(instance.trace, instance.hardware)
        self.f = f
        self.instance = instance
        self.trees: dict[int, RangeMax] = {}
        if track_lower:
            total = sum(f.size)
            for x in range(len(f.cap)):
                if x != f.C and total > f.cap[x]:
                    self.trees[x] = RangeMax([0] * max(f.n, 1))
        self.pb = PlanBuilder(f, self._track if self.trees else None)
        self.links = Links(f.hop, len(f.streams))
        self.n = f.n
        self.cap = f.cap[f.C]
        self.adj = RangeAdd(max(f.n, 1))
        nt = len(f.size)
        self.lower_copy: list[tuple[int, int] | None] = [None] * nt   # (tier, valid through slot)
        self.remat = [-1] * nt
        self.chosen: list[list[tuple[int, int, int, int]]] = [[] for _ in range(nt)]   # (m, j, a, b)
        self.touch: list[list[int]] = [[] for _ in range(nt)]                           # extra touches
        self.touched_at: dict[int, list[int]] = {}
        self.rc_planned: set[tuple[int, int]] = set()
        # (t, b) -> [first hop index, path, starts, last absent slot j] of the copy back before b
        self.prefetch_of: dict[tuple[int, int], list[Any]] = {}
        # t -> [copy index releasing its compute copy, release time, first absent slot m, last slot]
        self.release_of: dict[int, list[Any]] = {}
        for t in range(nt):
            if f.absent_start(t):
                self.lower_copy[t] = (f.home[t], f.lower_valid_to(t, -1))
        # offload targets: tiers with a route out of and back into the compute tier, fastest first
        C = f.C
        nominal = sorted(f.size)[len(f.size) // 2] if f.size else 1
        targets = []
        for x in range(len(f.cap)):
            if x == C or (C, x) not in f.route or (x, C) not in f.route:
                continue
            po, pi = f.route[(C, x)], f.route[(x, C)]
            rt = sum(self.links.length(nominal, po[k], po[k + 1]) for k in range(len(po) - 1)) + \
                sum(self.links.length(nominal, pi[k], pi[k + 1]) for k in range(len(pi) - 1))
            targets.append((rt, x, po, pi))
        self.targets = [(x, po, pi) for _, x, po, pi in sorted(targets)]

    # -- accounting -------------------------------------------------------------------------------
    def _track(self, t: int, tier: int, lo: int, hi: int) -> None:
        tree = self.trees.get(tier)
        if tree is not None and lo <= hi:
            tree.add(max(lo, 0), hi, self.f.size[t])

    def used(self, s: int) -> int:
        """Planned compute-tier bytes during slot ``s``."""
        return int(self.f.base[s]) + self.adj.value(s)

    def lower_fits(self, tier: int, lo: int, hi: int, nbytes: int) -> bool:
        """Whether ``tier`` can hold ``nbytes`` more in slots ``lo..hi``."""
        tree = self.trees.get(tier)
        if tree is None or lo > hi:
            return True
        cap = self.f.cap[tier]
        if tree.top() + nbytes <= cap:
            return True
        return tree.max(max(lo, 0), hi) + nbytes <= cap

    def window(self, t: int, m: int, j: int, a: int, b: int) -> None:
        """Record that ``t`` is absent in slots ``m..j`` of gap ``(a, b)``."""
        if m <= j:
            self.pb.window(t, m, j)
            self.adj.add(m, j, -self.f.size[t])
        self.chosen[t].append((m, j, a, b))

    # -- gaps -------------------------------------------------------------------------------------
    def next_touch(self, t: int, a: int) -> int:
        """The first slot after ``a`` that uses ``t`` (a run, or a planned recompute reading it)."""
        b = self.f.next_use(t, a)
        ex = self.touch[t]
        if ex:
            k = bisect_right(ex, a)
            if k < len(ex) and ex[k] < b:
                b = ex[k]
        return b

    def add_touch(self, t: int, b: int) -> None:
        """A planned recompute before run ``b`` reads (or keeps) ``t``."""
        if b not in self.touch[t]:
            insort(self.touch[t], b)
            self.touched_at.setdefault(b, []).append(t)

    def writer_point(self, t: int, a: int) -> int:
        """Slot after whose run the compute copy of ``t`` holds its value as of slot ``a``."""
        w = self.f.last_writer(t, a)
        r = self.remat[t]
        return r if w < r <= a else w

    def resident_at(self, t: int, b: int) -> bool:
        """Whether ``t`` stays in the compute tier through slot ``b`` under the choices so far."""
        for (m, j, a, bb) in self.chosen[t]:
            if a < b < bb or m <= b <= j:
                return False
        return True

    def lower_valid(self, t: int, a: int) -> tuple[int, int] | None:
        """The (tier, valid-through slot) of a lower copy of ``t`` still valid after slot ``a``."""
        lc = self.lower_copy[t]
        if lc is not None and lc[1] >= a:
            return lc
        return None

    # -- options ----------------------------------------------------------------------------------
    def offload_option(self, t: int, a: int, b: int, s: int | None, force_m: int | None = None,
                       force_j: int | None = None, evict_after: int | None = None) -> Option | None:
        """The best-timed offload of ``t`` in gap ``(a, b)``, with a window containing slot ``s``.

        The copy out goes as early as possible after the last write (or the tensor is just
        dropped when a lower-tier copy is still valid), the copy back as late as possible
        before ``b``, each on its stream's calendar, so both hide behind compute. When that
        window cannot contain ``s`` it is stretched to (the run at ``s`` or at ``b`` then
        waits), and ``stall`` estimates the wait. With ``s=None`` the natural window is
        returned (None when it is empty).

        Parameters
        ----------
        force_m, force_j : int, optional
            Fixed release slot and prefetch issue slot (baselines with their own timing rules).
        evict_after : int, optional
            Issue the copy out after this run rather than after the last write (demand eviction).

        Returns
        -------
        Option or None
            None when no tier can take the tensor (no route, or full).
        """
        f = self.f
        C = f.C
        start, end = f.start, f.end
        n = self.n
        size = f.size[t]
        if not self.targets and self.lower_valid(t, a) is None:
            return None
        lc = self.lower_valid(t, a) if a >= 0 else None
        stall = 0.0
        link_time = 0.0
        out_path: tuple[int, ...] = ()
        out_starts: tuple[float, ...] = ()
        w = -1
        extra: list[tuple[int, float, float]] = []
        if lc is not None:
            src = lc[0]
            if b < n and (src, C) not in f.route:
                return None
            m = anchor = stage_anchor = a + 1
            ev_end = release = end[a]
        else:
            w0 = self.writer_point(t, a)
            if evict_after is not None:
                w0 = max(w0, evict_after)
            valid_to = f.lower_valid_to(t, max(a, 0))
            found = None
            # copy out right after the last write; if no tier has room from then on, as late as the
            # window allows (the lower tiers may have room later)
            issue_points = [w0] + ([s - 1] if s is not None and s - 1 > w0 else [])
            for w in issue_points:
                t0 = end[w] if w >= 0 else 0.0
                for x, po, _pi in self.targets:
                    if not self.lower_fits(x, w, valid_to, size):
                        continue
                    starts, last_end = self.links.asap(size, po, t0)
                    if len(po) > 2:
                        sa = f.slot_after(last_end, a + 1)
                        if any(not self.lower_fits(po[k], w, sa - 1, size) for k in range(1, len(po) - 1)):
                            continue
                    found = (x, po, starts, last_end)
                    break
                if found is not None:
                    break
            if found is None:
                return None
            src, out_path, out_starts, ev_end = found
            link_time += sum(self.links.length(size, out_path[k], out_path[k + 1])
                             for k in range(len(out_path) - 1))
            hop1_end = out_starts[0] + self.links.length(size, C, out_path[1])
            release = max(hop1_end, end[a] if a >= 0 else 0.0)
            m = f.slot_after(release, a + 1)
            if force_m is not None:
                m = force_m
            elif s is not None and m > s:
                m = s
            if m < n and release > start[m]:
                stall += release - start[m]
            anchor = m
            stage_anchor = max(f.slot_after(ev_end, a + 1), m)
            extra = self.links.tentative(size, out_path, out_starts)
        if b >= n:
            j = f.last_slot(t)
            if m > j:
                return None
            return Option("offload", t, a, b, m, j, stall, link_time, drop=lc is not None, w=w,
                          out_path=out_path, out_starts=out_starts, anchor=anchor, stage_anchor=stage_anchor,
                          src=src)
        if m >= b:
            return None
        in_path = f.route[(src, C)]
        floor = m - 1 if force_j is None else force_j       # the copy back is issued after run j >= m - 1
        if s is not None and force_j is None:
            floor = max(floor, s)
        lo = max(end[floor] if floor >= 0 else 0.0, ev_end, release)
        got = None if force_j is not None else self.links.alap(size, in_path, start[b], lo, extra)
        if got is not None:
            in_starts = got
            j = min(max(f.slot_before(in_starts[0]), floor), b - 1)
        else:
            # the link is too busy: the copy back goes in the first free gap, and the tensor stays
            # out until that copy can start anyway
            in_starts, in_end = self.links.asap(size, in_path, lo, extra)
            j = max(floor, min(f.slot_before(in_starts[0]), b - 1))
            stall += max(0.0, in_end - start[b])
        if j < m or j >= b:
            return None
        for k in range(1, len(in_path) - 1):
            if not self.lower_fits(in_path[k], j, b - 1, size):
                return None
        link_time += sum(self.links.length(size, in_path[k], in_path[k + 1]) for k in range(len(in_path) - 1))
        return Option("offload", t, a, b, m, j, stall, link_time, drop=lc is not None, w=w, out_path=out_path,
                      out_starts=out_starts, anchor=anchor, stage_anchor=stage_anchor, src=src, in_path=in_path,
                      in_starts=in_starts)

    def recompute_option(self, t: int, a: int, b: int) -> Option | None:
        """Drop ``t`` after slot ``a`` and recompute its producer before run ``b``, if allowed.

        Allowed when the producer may be recomputed, neither ``t`` nor the producer's inputs
        change in between, the inputs are alive and stay in the compute tier at ``b``,
        the producer's other live outputs stay there too, and its workspace fits.
        """
        f = self.f
        tr = f.trace
        if b >= self.n or a < 0:
            return None
        p = tr.producer[t]
        if p < 0 or not tr.ops[p].effective_recomputable or f.updated_between(t, p, b):
            return None
        shared = (b, p) in self.rc_planned
        for x in tr.op_reads[p]:
            if tr.death[x] < b or f.updated_between(x, p, b) or not self.resident_at(x, b):
                return None
        for o in tr.op_writes[p]:
            if o != t and tr.death[o] >= b and not self.resident_at(o, b):
                return None
        if not shared and f.ws[p] > f.ws[b] + f.out_bytes[b]:
            if self.used(b) - f.out_bytes[b] - f.ws[b] + f.ws[p] > self.cap:
                return None
        # what can never leave the compute tier at b must still fit: run b's own footprint plus every
        # tensor a recompute before b reads or keeps (these pins), this one's included
        own = set(tr.op_reads[b]) | set(tr.op_writes[b])
        pins = set(self.touched_at.get(b, ())) | set(tr.op_reads[p]) | \
            {o for o in tr.op_writes[p] if o != t and tr.death[o] >= b}
        pinned = sum(f.size[x] for x in pins if x not in own)
        if f.footprint[b] + pinned > self.cap:
            return None
        rec_need = sum(f.size[x] for x in pins | own if x not in tr.op_writes[b]) + f.ws[p] + \
            sum(f.size[o] for o in tr.op_writes[p] if o not in pins and o not in own)
        if rec_need > self.cap:
            return None
        cost = 0.0 if shared else f.dur[p]
        return Option("recompute", t, a, b, a + 1, b - 1, cost, cost, op=p, shared=shared)

    def extend_option(self, t: int, a: int, b: int, s: int) -> Option | None:
        """Keep ``t`` out longer: move its copy back before ``b`` to after slot ``s`` (no new copy).

        Applies when an earlier window of gap ``(a, b)`` ended before ``s``; the copy back is
        rebooked as late as possible (or, when the link is too busy, right after ``s``, and the
        run at ``b`` waits).
        """
        info = self.prefetch_of.get((t, b))
        if info is None:
            return None
        first, path, old, j_old = info
        if not (j_old < s < b):
            return None
        f = self.f
        size = f.size[t]
        self.links.unbook(size, path, old)
        try:
            lo = f.end[s]
            got = self.links.alap(size, path, f.start[b], lo)
            stall = 0.0
            if got is not None:
                starts = got
                j = min(max(f.slot_before(starts[0]), s), b - 1)
            else:
                starts, end = self.links.asap(size, path, lo)
                j = max(s, min(f.slot_before(starts[0]), b - 1))
                stall = max(0.0, end - f.start[b])
        finally:
            self.links.book(size, path, old)
        return Option("extend", t, a, b, j_old + 1, j, stall, 0.0, in_path=path, in_starts=starts)

    def advance_option(self, t: int, a: int, s: int) -> Option | None:
        """Release ``t``'s compute copy (written back after its last use) by slot ``s``: run ``s``
        waits for the write-back instead of a later run (no new copy)."""
        info = self.release_of.get(t)
        if info is None or info[2] <= s:
            return None
        _, release, m, _last = info
        stall = max(0.0, release - self.f.start[s])
        return Option("advance", t, a, self.n, s, m - 1, stall, 0.0)

    # -- commits ----------------------------------------------------------------------------------
    def commit(self, opt: Option) -> None:
        """Apply an option to the plan."""
        if opt.kind == "recompute":
            self.commit_recompute(opt)
        elif opt.kind == "extend":
            self.commit_extend(opt)
        elif opt.kind == "advance":
            info = self.release_of[opt.t]
            self.pb.copies[info[0]].anchor = opt.m
            info[2] = opt.m
            self.pb.window(opt.t, opt.m, opt.j)
            self.adj.add(opt.m, opt.j, -self.f.size[opt.t])
        else:
            self.commit_offload(opt)

    def commit_extend(self, opt: Option) -> None:
        """Rebook the copy back of an extended window and record the extra absent slots."""
        t, b = opt.t, opt.b
        info = self.prefetch_of[(t, b)]
        first, path, old, _ = info
        size = self.f.size[t]
        self.links.unbook(size, path, old)
        self.links.book(size, path, opt.in_starts)
        copies = self.pb.copies
        for k in range(len(path) - 1):
            rec = copies[first + k]
            rec.key = opt.in_starts[k]
            if k == 0:
                rec.after_run = opt.j
            if k == len(path) - 2:
                rec.issue = opt.j
        info[2], info[3] = opt.in_starts, opt.j
        if opt.m <= opt.j:
            self.pb.window(t, opt.m, opt.j)
            self.adj.add(opt.m, opt.j, -size)
        for k, (m, j, a, bb) in enumerate(self.chosen[t]):
            if bb == b and a == opt.a:
                self.chosen[t][k] = (m, opt.j, a, bb)

    def commit_offload(self, opt: Option) -> None:
        """Book and record an offload option."""
        f, pb = self.f, self.pb
        t, a, b = opt.t, opt.a, opt.b
        size = f.size[t]
        after_copy = -1
        if opt.drop:
            pb.free(t, f.C, a)
        else:
            self.links.book(size, opt.out_path, opt.out_starts)
            first = pb.evict(t, a, opt.w, opt.out_path, opt.anchor, opt.out_starts, opt.stage_anchor)
            after_copy = first + len(opt.out_path) - 2
            self.lower_copy[t] = (opt.out_path[-1], f.lower_valid_to(t, max(a, 0)))
        if b < self.n:
            self.links.book(size, opt.in_path, opt.in_starts)
            last = pb.prefetch(t, opt.j, opt.in_path, b, opt.in_starts,
                               after_copy=after_copy if len(opt.out_path) > 2 else -1)
            self.prefetch_of[(t, b)] = [last - len(opt.in_path) + 2, opt.in_path, opt.in_starts, opt.j]
            self.remat[t] = b
        self.window(t, opt.m, opt.j, a, b)

    def commit_recompute(self, opt: Option) -> None:
        """Record a recompute option (drop after ``a``, recompute before ``b``)."""
        f, tr = self.f, self.f.trace
        t, a, b, p = opt.t, opt.a, opt.b, opt.op
        self.pb.free(t, f.C, a)
        if not opt.shared:
            self.pb.recompute(b, p)
            self.rc_planned.add((b, p))
        self.remat[t] = b
        self.window(t, opt.m, opt.j, a, b)
        for x in tr.op_reads[p]:
            self.add_touch(x, b)
        for o in tr.op_writes[p]:
            if o != t and tr.death[o] >= b:
                self.add_touch(o, b)

    def hoist(self) -> int:
        """Issue each copy into the compute tier as early as the plan's memory headroom allows.

        A copy starts at the later of its issue run's end and its stream predecessor's end;
        when runs are delayed (a stall), a late issue run leaves the link idle. So each copy
        back is moved earlier (to no earlier than its stream predecessor's issue, nor before
        its own eviction) wherever the compute tier has room for the tensor meanwhile. The
        reserved times (and so the stream order) do not change. Returns how many moved.
        """
        f, pb = self.f, self.pb
        n = self.n
        if not n or not self.prefetch_of:
            return 0
        prof = pb.profile()
        extra = np.zeros(n, dtype=np.int64)
        for b, p in pb.recomputes:
            extra[b] = max(extra[b], f.ws[p] - f.out_bytes[b] - f.ws[b])
        tree = RangeMax((prof + extra).tolist())
        copies = pb.copies
        chain_of = {info[0]: (t, b) for (t, b), info in self.prefetch_of.items()}
        window_start = {}
        for t in {t for t, _ in self.prefetch_of}:
            for (m, j, a, bb) in self.chosen[t]:
                window_start[(t, bb)] = m

        def issue(i: int) -> int:
            while copies[i].after_run < 0 and copies[i].after_copy >= 0:
                i = copies[i].after_copy
            return copies[i].after_run

        by_stream: dict[int, list[int]] = {}
        for i, c in enumerate(copies):
            by_stream.setdefault(f.hop[(c.src, c.dst)][0], []).append(i)
        moved = 0
        cap = self.cap
        order = sorted(range(len(copies)), key=lambda i: (copies[i].key, i))
        prev_issue: dict[int, int] = {}
        for i in order:
            c = copies[i]
            st = f.hop[(c.src, c.dst)][0]
            floor = prev_issue.get(st, -1)
            key = chain_of.get(i)
            if key is not None:
                t, b = key
                info = self.prefetch_of[key]
                j = info[3]
                lo = max(floor, window_start.get(key, 0) - 1, -1)
                size = f.size[t]
                stages = info[1][1:-1]

                def ok(j2: int) -> bool:
                    # the tensor back in C over j2+1..j, and any staging copy earlier by as much
                    return tree.max(j2 + 1, j) + size <= cap and all(
                        self.lower_fits(x, max(j2, 0), j - 1, size) for x in stages)

                if lo < j and ok(j - 1):
                    a_, b_ = lo, j - 1          # smallest j2 in [lo, j - 1] that is ok (ok is monotone)
                    while a_ < b_:
                        mid = (a_ + b_) // 2
                        if ok(mid):
                            b_ = mid
                        else:
                            a_ = mid + 1
                    j2 = a_
                    tree.add(j2 + 1, j, size)
                    pb.unwindow(t, j2 + 1, j)
                    self.adj.add(j2 + 1, j, size)
                    for x in stages:
                        pb.held(t, x, max(j2, 0), j - 1)
                    c.after_run = j2
                    copies[i + len(info[1]) - 2].issue = j2
                    info[3] = j2
                    moved += 1
            prev_issue[st] = max(prev_issue.get(st, -1), issue(i))
        return moved

    # -- moves every plan needs ---------------------------------------------------------------------
    def initial_fetches(self, lookahead: int | None = None, tick: Callable[[], None] | None = None) -> None:
        """Fetch the tensors that start outside the compute tier before their first use.

        With ``lookahead=None`` each fetch is booked as late as possible before its first use,
        but not later than a first-in-first-out order of the fetches (by first use) allows
        (when the links cannot keep up, fetches start early rather than late); with a number
        ``W`` each is issued ``W`` ops before its first use. A tensor nobody reads stays where
        it is.

        ``tick`` is called once per tensor planned (a time limit's poll, which raises
        :class:`solver.deadline.OutOfTime` once the time is up: on a trace with many tensors
        starting off the compute tier this pass takes seconds).

        Raises
        ------
        PlanningError
            When a tensor cannot reach the compute tier along declared links.
        """
        f = self.f
        C = f.C
        tick = tick if tick is not None else (lambda: None)
        names = [t.name for t in f.hardware.tiers]
        todo = []
        for t in range(len(f.size)):
            if not f.absent_start(t):
                continue
            us = f.trace.users[t]
            if not us and f.final[t] != C:
                self.window(t, 0, f.last_slot(t), -1, self.n)
                continue
            if (f.home[t], C) not in f.route:
                raise PlanningError(f"tensor {f.trace.tensors[t].id!r} ({f.size[t]} bytes) starts in "
                                    f"{names[f.home[t]]}, which has no route of links to {names[C]}")
            todo.append((us[0] if us else self.n, t))     # a tensor that must end in C: by the end
        todo.sort()
        plan: list[tuple[int, int, tuple[float, ...]]] = []
        if lookahead is None:
            # as late as possible, but no later than the earliest first-in-first-out schedule allows:
            # an ASAP pass in first-use order, then each fetch (last first) moved as late as its
            # deadline and the later ones let
            scratch = Links(f.hop, len(f.streams))
            early = {}
            for first, t in todo:
                tick()
                path = f.route[(f.home[t], C)]
                st, _ = scratch.asap(f.size[t], path, 0.0)
                scratch.book(f.size[t], path, st)
                early[t] = st[0]
            for first, t in reversed(todo):
                tick()
                path = f.route[(f.home[t], C)]
                size = f.size[t]
                starts = self.links.alap(size, path, f.start[first], early[t])
                if starts is None:
                    starts, _ = self.links.asap(size, path, early[t])
                self.links.book(size, path, starts)
                plan.append((first, t, starts))
        else:
            for first, t in todo:
                tick()
                path = f.route[(f.home[t], C)]
                j = max(first - lookahead - 1, -1)
                starts, _ = self.links.asap(f.size[t], path, f.end[j] if j >= 0 else 0.0)
                self.links.book(f.size[t], path, starts)
                plan.append((first, t, starts))
        for first, t, starts in plan:
            tick()
            path = f.route[(f.home[t], C)]
            j = min(f.slot_before(starts[0]), first - 1, self.n - 1)
            keep = keep_to = -1
            F = f.final[t]
            if F in path[1:-1] and not f.updates_of[t]:
                # a read-only tensor passing through its final tier: keep that copy (no write-back later)
                keep_to = f.last_slot(t)
                if self.lower_fits(F, max(j, 0), keep_to, f.size[t]):
                    keep = F
                    self.lower_copy[t] = (F, keep_to)
            last = self.pb.prefetch(t, j, path, first, starts, keep=keep, keep_to=keep_to)
            self.prefetch_of[(t, first)] = [last - len(path) + 2, path, starts, j]
            self.remat[t] = first
            self.window(t, 0, j, -1, first)

    def tail(self, t: int, a: int) -> str:
        """Settle persistent tensor ``t`` after its last touch ``a``.

        Returns ``"done"`` (written back to its final tier and/or dropped from the compute
        tier when a valid copy is elsewhere), ``"keep"`` (it must end in the compute tier),
        or ``"optional"`` (it may stay, or be copied out to save memory).

        Raises
        ------
        PlanningError
            When its final tier cannot be reached along declared links.
        """
        f, pb = self.f, self.pb
        C = f.C
        F = f.final[t]
        if F == C:
            return "keep"
        names = [x.name for x in f.hardware.tiers]
        lc = self.lower_valid(t, a)
        in_c = not (a < 0 and f.absent_start(t))
        last = f.last_slot(t)
        if F < 0 or (lc is not None and lc[0] == F):
            if lc is None:
                return "optional"
            if in_c and a >= 0:
                pb.free(t, C, a)
                self.window(t, a + 1, last, a, self.n)
            return "done"
        # a move between two other tiers avoids the compute tier where it can (a copy staged
        # there takes its room)
        lower = (f.route_off.get((lc[0], F)) or f.route.get((lc[0], F))) if lc is not None else None
        if lc is not None and in_c and a >= 0 and (C, F) in f.route and lower is not None and \
                f.path_time(t, f.route[(C, F)]) < f.path_time(t, lower):
            lc = None        # copying the compute tier's copy is faster than moving the lower one
        if lc is not None:   # valid elsewhere, not in its final tier: move it there off the compute tier
            if lower is None:
                raise PlanningError(f"tensor {f.trace.tensors[t].id!r} cannot reach its final tier {names[F]} "
                                    f"from {names[lc[0]]}: no route of links")
            path = lower
            t0 = f.end[a] if a >= 0 else 0.0
            starts, _ = self.links.asap(f.size[t], path, t0)
            self.links.book(f.size[t], path, starts)
            pb.move(t, path, a, self.n, starts, max(a, 0), last)
            if in_c and a >= 0:
                pb.free(t, C, a)
                self.window(t, a + 1, last, a, self.n)
            return "done"
        if (C, F) not in f.route:
            raise PlanningError(f"tensor {f.trace.tensors[t].id!r} ({f.size[t]} bytes) cannot reach its final "
                                f"tier {names[F]} from {names[C]}: no route of links")
        path = f.route[(C, F)]
        w = self.writer_point(t, a)
        starts, last_end = self.links.asap(f.size[t], path, f.end[w] if w >= 0 else 0.0)
        hop1_end = starts[0] + self.links.length(f.size[t], C, path[1])
        m = f.slot_after(max(hop1_end, f.end[a] if a >= 0 else 0.0), a + 1)
        sa = max(f.slot_after(last_end, a + 1), m)
        self.links.book(f.size[t], path, starts)
        first = pb.evict(t, a, w, path, m, starts, sa)
        self.lower_copy[t] = (F, last)
        self.window(t, m, last, a, self.n)
        self.release_of[t] = [first, max(hop1_end, f.end[a] if a >= 0 else 0.0), m, last]
        return "done"

    # -- result -----------------------------------------------------------------------------------
    def result(self, method: str, stats: dict[str, Any] | None = None) -> PlanResult:
        """Audit the plan and emit it: ``feasible`` with the schedule, or ``infeasible`` with why."""
        over = self.pb.audit()
        if over:
            o = over[0]
            return PlanResult("infeasible", message=f"{method}: {o.describe()}", stats=stats or {})
        sched = self.pb.schedule({"method": method, "status": "feasible"}, self.instance.capacity)
        return PlanResult("feasible", sched, stats=stats or {})
