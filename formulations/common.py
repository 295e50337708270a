"""Shared analysis for the exact formulations: positions, epochs, candidate intervals, routes.

Every formulation (the time-indexed MILP, the CP-SAT model, the LP bound) plans over the same
index sets, built here once from an instance:

* **positions**: ``-1`` is the prologue (before the first op), ``0 .. n-1`` the ops in trace
  order, ``n`` the epilogue (after the last op).
* **footprint** per position: the compute-tier bytes if every live tensor stayed resident (the
  no-offload footprint); a position is **critical** when that exceeds the capacity. Leaving the
  compute tier only helps at critical positions, which prunes most candidate intervals.
* **epochs** of a tensor: the spans between versions of its data (birth, each op that updates it,
  death). A copy made in another tier stays valid until the epoch ends (an update makes it stale;
  death releases it), so one write per epoch serves every departure in it.
* **gaps** (candidate intervals) of a tensor: between two consecutive events (birth or a use, and
  the next use; or the last use and the end of the step for a persistent tensor). In a gap the
  tensor may leave the compute tier (to a tier holding a copy of its epoch, or by being dropped
  and recomputed) and come back before the next use.

Policies shared by all formulations (they define the solution space that "optimal" refers to):
one copy tier per epoch (the home tier for data that starts elsewhere), kept until the epoch
ends; at most one departure per gap; recomputation of recomputable ops whose inputs are alive and
not updated in between (ops with several outputs only in the CP-SAT model, as one rerun shared by
their live outputs: :func:`joint_recomputes`); multi-hop routes follow the fastest path.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
...            (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, inputs=("a",), outputs=("b",)),
...             Op(id="h", duration=1.0, inputs=("a", "b"))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 6), Tier("DDR", 100)), (Link("HBM", "DDR", 4.0), Link("DDR", "HBM", 4.0)))
>>> p = build_problem(tr, hw)
>>> [(g.tensor, g.prev, g.next) for g in p.gaps]
[(0, 0, 1), (0, 1, 2), (1, 1, 2)]
>>> p.critical_positions()
(1, 2)
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from solver.deadline import Deadline, Poll
from solver.model import AT_START, Hardware, Trace
from solver.plans import route as _route

#: Position of the prologue (before the first op).
PROLOGUE = -1

#: Stream name of the compute stream (runs and recomputes).
COMPUTE = "compute"

#: tensors analysed between two readings of the clock by :func:`build_problem`
BUILD_POLL_EVERY = 64


class Unsupported(ValueError):
    """An instance the formulations cannot express (the message says which tensor and why)."""


@dataclass(frozen=True)
class Route:
    """A path of copies between two tiers along declared links, for one tensor.

    Attributes
    ----------
    tiers : tuple[str, ...]
        Tiers visited, source first.
    streams : tuple[str, ...]
        The stream of each hop.
    seconds : tuple[float, ...]
        Duration of each hop for this tensor's bytes.

    Examples
    --------
    >>> r = Route(("HBM", "DDR"), ("HBM->DDR",), (0.5,))
    >>> r.hops, r.total
    (1, 0.5)
    """

    tiers: tuple[str, ...]
    streams: tuple[str, ...]
    seconds: tuple[float, ...]

    @property
    def hops(self) -> int:
        """Number of copies along the route."""
        return len(self.streams)

    @property
    def total(self) -> float:
        """Sum of the hop durations."""
        return float(sum(self.seconds))


@dataclass(frozen=True)
class Epoch:
    """A span of one version of a tensor's data.

    Attributes
    ----------
    tensor : int
    start : int
        Op after whose end this version is valid (producer or updater), or -1 (valid at time 0).
    end : int
        Op that ends the epoch: an updater (other tiers' copies go stale at its start), the
        tensor's last use (copies die at its end), or ``n`` (the end of the step).
    stale_at_end : bool
        True when ``end`` is an updater.
    home : str or None
        Tier that holds a valid copy from the start of the epoch (the initial tier of a tensor
        that starts outside the compute tier), else None.
    tiers : tuple[str, ...]
        Tiers a copy of this epoch may live in (the home tier, or tiers reachable both ways).
    final : str or None
        Tier that must hold a copy at the end of the step (persistent tensor with a
        ``final_tier``, last epoch; the compute tier itself when it must stay there).
    gaps : tuple[int, ...]
        Indices of this epoch's gaps in :attr:`Problem.gaps`.
    """

    tensor: int
    start: int
    end: int
    stale_at_end: bool
    home: str | None
    tiers: tuple[str, ...]
    final: str | None
    gaps: tuple[int, ...]


@dataclass(frozen=True)
class Gap:
    """A candidate interval: a tensor between two consecutive events.

    Attributes
    ----------
    tensor, epoch : int
        The tensor and the index of its epoch in :attr:`Problem.epochs`.
    prev : int
        Op of the previous event (its producer, a use) or -1 (the tensor exists from time 0).
    prev_kind : str
        ``"start"``, ``"produce"``, ``"read"`` or ``"update"``.
    next : int
        Op of the next use, or ``n`` for the final gap of a persistent tensor.
    absent : bool
        The tensor starts outside the compute tier (must be fetched before ``next``).
    interior : tuple[int, int]
        First and last positions strictly between the events (prologue/epilogue included).
    crit : tuple[int, int, int]
        First and last critical position in the interior and how many there are (``(0, -1, 0)``
        when none).
    rec_last : int
        Latest op before which the producer may be recomputed (``-2``: not recomputable).
    final : bool
        The gap after the last use of a persistent tensor (nothing follows; no return).
    """

    tensor: int
    epoch: int
    prev: int
    prev_kind: str
    next: int
    absent: bool
    interior: tuple[int, int]
    crit: tuple[int, int, int]
    rec_last: int = -2
    final: bool = False

    @property
    def returns(self) -> bool:
        """Whether the tensor must be back in the compute tier at the gap's end (a use follows)."""
        return not self.final

    @property
    def useful(self) -> bool:
        """Whether leaving in this gap can matter (forced fetch, or a critical position inside)."""
        return self.absent or self.crit[2] > 0

    @property
    def recomputable(self) -> bool:
        """Whether dropping and recomputing is an option in this gap."""
        return self.rec_last >= 0


@dataclass(frozen=True, eq=False)
class Problem:
    """The shared index sets of one instance (see the module docstring).

    Attributes
    ----------
    trace, hardware : Trace, Hardware
    capacity : Mapping[str, int]
        Capacity of every tier in force.
    compute : str
        Name of the compute tier.
    footprint : tuple[int, ...]
        No-offload footprint per position ``-1 .. n`` (index ``pos + 1``).
    critical : tuple[bool, ...]
        Per position (index ``pos + 1``): footprint over capacity (or over ``cap_floor``).
    epochs, gaps : tuple
        See :class:`Epoch` and :class:`Gap`.
    routes : Mapping[tuple[int, str, str], Route]
        ``(tensor, src, dst) -> Route`` for every copy route a formulation may use.
    recompute : bool
        Whether recomputation is allowed.
    lower_cap : int
        Largest bytes any single op needs at once (inputs, outputs, workspace): no schedule fits
        a smaller compute tier.
    """

    trace: Trace
    hardware: Hardware
    capacity: Mapping[str, int]
    compute: str
    footprint: tuple[int, ...]
    critical: tuple[bool, ...]
    epochs: tuple[Epoch, ...]
    gaps: tuple[Gap, ...]
    routes: Mapping[tuple[int, str, str], Route]
    recompute: bool
    lower_cap: int

    @property
    def n(self) -> int:
        """Number of ops."""
        return len(self.trace.ops)

    @property
    def cap(self) -> int:
        """Capacity of the compute tier."""
        return self.capacity[self.compute]

    def is_critical(self, pos: int) -> bool:
        """Whether position ``pos`` (-1 .. n) is critical."""
        return self.critical[pos + 1]

    def critical_positions(self) -> tuple[int, ...]:
        """All critical positions, in order."""
        return tuple(p - 1 for p, c in enumerate(self.critical) if c)

    def route(self, tensor: int, src: str, dst: str) -> Route:
        """The route of ``tensor`` from ``src`` to ``dst`` (``KeyError`` when none was prepared)."""
        return self.routes[(tensor, src, dst)]

    def candidate_gaps(self) -> tuple[int, ...]:
        """Indices of the gaps in which leaving the compute tier can matter."""
        return tuple(i for i, g in enumerate(self.gaps) if g.useful)

    def max_hops(self) -> int:
        """Longest route any formulation may use (at least 1)."""
        return max((r.hops for r in self.routes.values()), default=1) or 1

    def alive(self, tensor: int, pos: int) -> bool:
        """Whether ``tensor`` is alive (born, not dead) at position ``pos`` under no offload."""
        tr = self.trace
        b, d = tr.birth[tensor], tr.death[tensor]
        if d == AT_START:
            return False
        lo = -1 if b == AT_START else b
        hi = self.n if tr.tensors[tensor].persistent else d
        return lo <= pos <= hi


def _routes_for(hw: Hardware, nbytes: int, src: str, dst: str, tensor: int) -> Route | None:
    path = _route(hw, src, dst, nbytes)
    if path is None or len(path) < 2:
        return None
    streams, secs = [], []
    for a, b in zip(path, path[1:]):
        lk = hw.link(a, b)
        assert lk is not None
        streams.append(lk.stream)
        secs.append(lk.copy_time(nbytes))
    return Route(tuple(path), tuple(streams), tuple(secs))


def footprints(trace: Trace) -> tuple[int, ...]:
    """No-offload compute-tier footprint per position ``-1 .. n`` (index ``pos + 1``).

    The prologue counts the tensors alive at time 0; the epilogue the persistent tensors.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op
    >>> tr = Trace("t", (Tensor(id="x", bytes=3), Tensor(id="y", bytes=5, persistent=True)),
    ...            (Op(id="f", duration=1.0, inputs=("x",), outputs=("y",), workspace=2),))
    >>> footprints(tr)
    (3, 10, 5)
    """
    prof = trace.resident_profile()
    at_rest = sum(t.bytes for i, t in enumerate(trace.tensors)
                  if trace.birth[i] == AT_START and trace.death[i] != AT_START)
    persistent = sum(t.bytes for t in trace.tensors if t.persistent)
    return (int(at_rest),) + tuple(int(x) for x in prof) + (int(persistent),)


def op_requirement(trace: Trace, op: int) -> int:
    """Bytes op ``op`` needs in the compute tier while it runs: reads, outputs, workspace.

    0 for an op of zero duration: it starts and ends within one instant and the timing model checks
    capacity after each instant, so none of it is necessarily held at a checked moment (this is a
    lower bound on what every valid schedule holds).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op
    >>> tr = Trace("t", (Tensor(id="x", bytes=3), Tensor(id="y", bytes=5)),
    ...            (Op(id="f", duration=1.0, inputs=("x",), outputs=("y",), workspace=2),
    ...             Op(id="g", duration=0.0, inputs=("y",), workspace=9)))
    >>> op_requirement(tr, 0), op_requirement(tr, 1)
    (10, 0)
    """
    if trace.ops[op].duration == 0:
        return 0
    need = set(trace.op_reads[op]) | set(trace.op_writes[op])
    return int(sum(trace.tensors[t].bytes for t in need) + trace.ops[op].workspace)


def build_problem(trace: Trace, hardware: Hardware, *, recompute: bool = True,
                  cap_floor: int | None = None, deadline: Deadline | None = None) -> Problem:
    """Analyse an instance into the index sets every formulation uses.

    Parameters
    ----------
    trace, hardware : Trace, Hardware
        Hardware with every capacity override already applied.
    recompute : bool
        Whether recomputation is an option.
    deadline : Deadline, optional
        Polled every :data:`BUILD_POLL_EVERY` tensors: past it, :class:`solver.deadline.OutOfTime`
        is raised (the analysis of a long trace takes seconds).
    cap_floor : int, optional
        Mark positions critical against this compute-tier capacity instead of the hardware's
        (the min-memory objective, whose capacity is a variable, passes its lower bound).

    Raises
    ------
    Unsupported
        When a tensor that starts outside the compute tier cannot reach it.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> build_problem(tr, Hardware("h", "HBM", (Tier("HBM", 100),))).gaps[0].prev_kind
    'start'
    """
    C = hardware.compute_tier
    cap = dict(hardware.capacity)
    n = len(trace.ops)
    fp = footprints(trace)
    limit = cap[C] if cap_floor is None else cap_floor
    # a recompute's workspace may push a position over: count the largest such workspace
    ws_extra = 0
    if recompute:
        ws_extra = max((o.workspace for o in trace.ops if o.effective_recomputable and len(o.outputs) == 1),
                       default=0)
    critical = tuple(f > limit for f in fp)
    crit_or_ws = tuple(f + ws_extra > limit for f in fp)
    routes: dict[tuple[int, str, str], Route] = {}
    others = [t.name for t in hardware.tiers if t.name != C]

    def get_route(t: int, src: str, dst: str) -> Route | None:
        key = (t, src, dst)
        if key not in routes:
            r = _routes_for(hardware, trace.tensors[t].bytes, src, dst, t)
            if r is None:
                return None
            routes[key] = r
        return routes[key]

    total_bytes = sum(t.bytes for t in trace.tensors)
    roomy = {t.name for t in hardware.tiers if t.name != C and t.capacity >= total_bytes}
    epochs: list[Epoch] = []
    gaps: list[Gap] = []
    crit_list = [p - 1 for p, c in enumerate(critical) if c]

    def crit_in(lo: int, hi: int) -> tuple[int, int, int]:
        a, b = bisect.bisect_left(crit_list, lo), bisect.bisect_right(crit_list, hi)
        return (crit_list[a], crit_list[b - 1], b - a) if b > a else (0, -1, 0)

    tick = Poll(deadline, BUILD_POLL_EVERY)
    for t, tensor in enumerate(trace.tensors):
        tick()
        death = trace.death[t]
        if death == AT_START:
            continue
        users = trace.users[t]
        prod = trace.producer[t]
        init = (tensor.initial_tier or C) if prod < 0 else C
        persistent = tensor.persistent
        final = tensor.final_tier if persistent else None
        if prod < 0 and init != C and not users:
            continue   # never needs the compute tier
        if prod < 0 and init != C and get_route(t, init, C) is None:
            raise Unsupported(f"tensor {tensor.id!r} starts in {init} but no links lead to {C}")
        # events: (op, kind)
        events: list[tuple[int, str]] = []
        if prod >= 0:
            events.append((prod, "produce"))
        else:
            events.append((-1, "start"))
        updates = set(o for o in users if t in trace.op_updates[o])
        for u in users:
            events.append((u, "update" if u in updates else "read"))
        # split into epochs at updates
        ep_bounds: list[int] = [0]
        for k in range(1, len(events)):
            if events[k][1] == "update":
                ep_bounds.append(k)
        for e_i, k0 in enumerate(ep_bounds):
            k1 = ep_bounds[e_i + 1] if e_i + 1 < len(ep_bounds) else len(events) - 1
            last_epoch = e_i + 1 == len(ep_bounds)
            start_op = events[k0][0]
            if not last_epoch:
                end_op, stale = events[k1][0], True
            else:
                end_op, stale = (n if persistent else death), False
            home = init if (e_i == 0 and prod < 0 and init != C) else None
            ep_final = final if (last_epoch and final is not None) else None
            tiers: list[str] = []
            if home is not None:
                tiers.append(home)
                if ep_final is not None and ep_final not in (home, C):
                    raise Unsupported(f"tensor {tensor.id!r} starts in {home} and must end in {ep_final}: "
                                      "moving it between two other tiers is not modelled")
            else:
                for x in others:
                    if get_route(t, C, x) is None:
                        continue
                    back = get_route(t, x, C) is not None
                    if back or x == ep_final:
                        tiers.append(x)
                tiers = _undominated(tiers, t, ep_final, roomy, get_route, C)
            ep_index = len(epochs)
            gap_ids: list[int] = []
            # gaps between consecutive events of this epoch (the updater opening the next epoch
            # closes this epoch's last gap)
            seq = [events[k] for k in range(k0, (k1 + 1) if not last_epoch else len(events))]
            pairs = list(zip(seq, seq[1:]))
            if last_epoch and persistent:
                pairs.append((seq[-1], (n, "end")))
            for (p_op, p_kind), (q_op, q_kind) in pairs:
                is_final = q_kind == "end"
                absent = p_kind == "start" and init != C
                lo = p_op + 1 if p_op >= 0 else -1
                hi = q_op - 1 if not is_final else n
                if p_kind == "start":
                    lo = -1
                crit = crit_in(lo, hi) if hi >= lo else (0, -1, 0)
                rec_last = -2
                if recompute and not is_final and prod >= 0 and p_kind != "start":
                    rec_last = _recompute_window(trace, t, p_op, q_op, crit_or_ws, lo)
                gap_ids.append(len(gaps))
                gaps.append(Gap(tensor=t, epoch=ep_index, prev=p_op, prev_kind=p_kind, next=q_op,
                                absent=absent, interior=(lo, hi), crit=crit, rec_last=rec_last,
                                final=is_final))
            epochs.append(Epoch(tensor=t, start=start_op, end=end_op, stale_at_end=stale, home=home,
                                tiers=tuple(tiers), final=ep_final, gaps=tuple(gap_ids)))
    # routes back from each copy tier (and home) for returning gaps
    for ep in epochs:
        for x in ep.tiers:
            get_route(ep.tensor, x, C)
    lower = max((op_requirement(trace, i) for i in range(n)), default=0)
    return Problem(trace=trace, hardware=hardware, capacity=MappingProxyType(cap), compute=C,
                   footprint=fp, critical=critical, epochs=tuple(epochs), gaps=tuple(gaps),
                   routes=MappingProxyType(routes), recompute=recompute, lower_cap=int(lower))


def _undominated(tiers: list[str], t: int, final: str | None, roomy: set[str], get_route, C: str) -> list[str]:
    """Drop copy tiers dominated by a roomy staging tier.

    When every route to and from tier ``X`` passes through a tier ``Y`` that can hold every
    tensor at once, resting in ``Y`` instead of ``X`` uses the same first and last hops, fewer
    copies, and no capacity that could matter: ``X`` is never needed (unless it is the final tier).
    """
    keep = []
    for x in tiers:
        out = get_route(t, C, x)
        back = get_route(t, x, C)
        if x != final and out is not None and back is not None:
            mids = set(out.tiers[1:-1]) & set(back.tiers[1:-1]) & roomy & set(tiers)
            if mids:
                continue
        keep.append(x)
    return keep


def _recompute_window(trace: Trace, t: int, prev: int, nxt: int, crit: tuple[bool, ...], lo: int) -> int:
    """Latest op before which the producer of ``t`` may rerun in the gap ``(prev, nxt)``; -2 if none.

    The producer must be recomputable with a single output; each of its inputs must still be
    alive and must not have been updated since the producer first ran.
    """
    p = trace.producer[t]
    op = trace.ops[p]
    if not op.effective_recomputable or len(trace.op_writes[p]) != 1:
        return -2
    last = _inputs_limit(trace, p, nxt)
    # useful only if some critical position lies between the drop and the recompute
    first_crit = next((q for q in range(lo, last) if crit[q + 1]), None)
    if first_crit is None or last <= prev:
        return -2
    return last


def _inputs_limit(trace: Trace, p: int, nxt: int) -> int:
    """Latest op (at most ``nxt``) before which every input of op ``p`` is still alive and not
    updated since ``p`` ran: a rerun of ``p`` must end before it."""
    last = nxt
    for j in trace.op_reads[p]:
        d = trace.death[j]
        if d != len(trace.ops) and not trace.tensors[j].persistent:
            last = min(last, d)
        for u in trace.users[j]:
            if u > p and j in trace.op_updates[u]:
                last = min(last, u)
                break
    return last


@dataclass(frozen=True)
class JointRecompute:
    """A candidate rerun of a multi-output op, restoring all its live outputs at once.

    A recompute recreates every output of the op that is alive and not in the compute tier
    (the timing model's rule), so for an op with several outputs the rerun is one decision
    shared by one gap of each live output: it runs after op ``after`` ends and before op
    ``before`` starts, a window in which no output is used, so each live output is inside
    exactly one of its gaps (``gaps``, one per live output, in output order).

    Attributes
    ----------
    op : int
    after, before : int
    gaps : tuple[int, ...]
        Indices into :attr:`Problem.gaps`.
    """

    op: int
    after: int
    before: int
    gaps: tuple[int, ...]


def joint_recomputes(problem: Problem) -> tuple[JointRecompute, ...]:
    """The candidate reruns of recomputable ops with several outputs (see :class:`JointRecompute`).

    Between two consecutive uses of any output (or the op itself and the first use), a window
    is a candidate when some output is alive in it, every live output sits in a gap that opened
    with its production or a read (not an update), the op's inputs are still valid until the
    window closes, and a critical position (counting the rerun's workspace) lies between the
    earliest such gap's start and the window's end, where dropping the outputs can help.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=1), Tensor(id="a", bytes=4), Tensor(id="b", bytes=4),
    ...                  Tensor(id="c", bytes=6)),
    ...            (Op(id="f", duration=1.0, inputs=("x",), outputs=("a", "b")),
    ...             Op(id="g", duration=1.0, outputs=("c",)), Op(id="k", duration=1.0, inputs=("c",)),
    ...             Op(id="h", duration=1.0, inputs=("a", "b", "x"))))
    >>> p = build_problem(tr, Hardware("h", "HBM", (Tier("HBM", 12),)))
    >>> [(j.op, j.after, j.before, [p.gaps[g].tensor for g in j.gaps]) for j in joint_recomputes(p)]
    [(0, 0, 3, [1, 2])]
    """
    tr = problem.trace
    n = problem.n
    if not problem.recompute:
        return ()
    cap = problem.capacity[problem.compute]
    multi = [p for p, op in enumerate(tr.ops) if len(tr.op_writes[p]) >= 2 and op.effective_recomputable
             and not any(tr.tensors[t].persistent for t in tr.op_writes[p])]
    wanted = {t for p in multi for t in tr.op_writes[p]}
    gaps_of: dict[int, list[int]] = {t: [] for t in wanted}
    for gi, g in enumerate(problem.gaps):
        if g.tensor in wanted:
            gaps_of[g.tensor].append(gi)
    out: list[JointRecompute] = []
    for p in multi:
        op = tr.ops[p]
        outs = tr.op_writes[p]
        limit = _inputs_limit(tr, p, n)
        # positions where dropping can help, counting the rerun's workspace
        tight = [q for q in range(n) if problem.footprint[q + 1] + op.workspace > cap]
        events = sorted({p, *(u for t in outs for u in tr.users[t])})
        for a, b in zip(events, events[1:]):
            end = min(b, limit)
            if end <= a:
                break
            members: list[int] = []
            for t in outs:
                if not tr.users[t] or max(tr.users[t]) < b:
                    continue          # dead by then: a rerun skips it
                g = next((gi for gi in gaps_of[t] if problem.gaps[gi].prev <= a and problem.gaps[gi].next >= b),
                         None)
                if g is None or problem.gaps[g].prev_kind not in ("produce", "read"):
                    members = []
                    break
                members.append(g)
            if not members:
                continue
            lo = min(problem.gaps[g].prev for g in members) + 1
            if bisect.bisect_left(tight, lo) == bisect.bisect_left(tight, end):
                continue          # no tight position in [lo, end)
            out.append(JointRecompute(op=p, after=a, before=end, gaps=tuple(members)))
    return tuple(out)
