"""The CP-SAT model: continuous time on an integer clock.

Every action is an interval on an integer clock of ``resolution`` seconds per tick (chosen once,
in :func:`choose_resolution`; durations are rounded *up*, so the clock never promises more than
the validator delivers). Ops are fixed-order intervals on the compute stream; copies are optional
intervals (present when the formulation chooses them), one ``NoOverlap`` per link stream and one
for the compute stream (runs and recomputes). Each tier's occupancy is a ``Cumulative`` over the
pieces of time a tensor spends there: a tensor's residency in the compute tier is cut, at every
candidate interval, at its release ``r`` and its return ``b`` (``r = b`` when it stays).

Decisions follow the policies of :mod:`formulations.common` (one copy tier per epoch, one
departure per gap...). A run starts after the return of every input that left; a prefetch starts
after the release (the compute tier must not hold the tensor) and after the copy it reads was
written; a recompute starts when its inputs are valid (for every input that may be out at that
time, a disjunction: before it leaves or after it is back). A rerun of an op with several outputs
is one optional interval shared by one gap of each live output (its literal is their common leave
option; each returns when it ends), within a window where no output is used
(:func:`formulations.common.joint_recomputes`).

The solution is decoded with event waits (:mod:`formulations.decode`), so the validated makespan
is at most the model's makespan times the resolution. When no copy can happen (one tier, or no
candidate copy), time is pure sequence: every op takes one tick and the objective is the total
recompute time, which makes the model independent of the clock's resolution.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> from formulations.common import build_problem
>>> tr = Trace("t", (Tensor(id="a", bytes=4), Tensor(id="b", bytes=4)),
...            (Op(id="f", duration=1.0, outputs=("a",)), Op(id="g", duration=1.0, outputs=("b",)),
...             Op(id="h", duration=1.0, inputs=("b",)), Op(id="i", duration=1.0, inputs=("a",))))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 5), Tier("DDR", 100)),
...               (Link("HBM", "DDR", 8.0), Link("DDR", "HBM", 8.0)))
>>> res = solve_cpsat(build_problem(tr, hw), CpOptions(threads=1))
>>> res.status, res.objective
('optimal', 5.0)
"""

from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from solver.deadline import Deadline, OutOfTime, Poll
from solver.model import AT_START

from formulations.common import COMPUTE, JointRecompute, Problem, joint_recomputes
from formulations.decode import Step, unique_ids

OBJECTIVES = ("makespan", "min-memory", "min-bytes")

#: Largest clock (ticks) used when durations share no exact unit.
MAX_TICKS = 10 ** 8

#: Largest clock (ticks over the horizon) of an exact unit or of a resolution given by the caller.
MAX_EXACT_TICKS = 10 ** 10

#: Most absence booleans the redundant constraints at critical op starts may add (``_start_cuts``):
#: the ops with the largest overflow get them first. On the `small` suite, cutting at every
#: overflowing op made the model 8x larger (29,000 variables) and the search slower.
START_CUTS_MAX = 3000

#: On a clock that rounds durations up, CP-SAT's optimum is ``optimal`` only when the bound
#: corrected for the rounding (:func:`rounding_slack`) is within this share of the objective;
#: otherwise the answer is ``feasible`` with that bound.
CLOCK_OPTIMAL_REL = 1e-4

#: Steps of the model's build (gaps, tensors) between two readings of the clock.
BUILD_POLL_EVERY = 64

#: Fewest seconds a search is given once it starts (CP-SAT needs a moment to load the model).
MIN_SEARCH_S = 0.05


@dataclass(frozen=True)
class CpOptions:
    """Options of the CP-SAT model.

    Parameters
    ----------
    objective : str
        ``makespan``, ``min-memory`` or ``min-bytes``.
    max_overhead, makespan : float or None
        As for :class:`formulations.milp.MilpOptions`.
    time_limit : float or None
        Seconds for the whole solve, building the model and completing the hints included.
    deadline : Deadline or None
        When the solve must be over, whatever ``time_limit`` says (the sooner counts); the build
        polls it (status ``timeout`` when it passes before the search).
    threads : int or None
        CP-SAT workers.
    seed : int
    resolution : float or None
        Seconds per tick (default: chosen by :func:`choose_resolution`); durations that are not a
        whole number of ticks are rounded up. At most :data:`MAX_EXACT_TICKS` ticks over the
        horizon (the sum of every duration the model may use), else ``ValueError``.
    warm : Schedule or None
        A valid schedule to start from: replayed on the model's clock and read back into the
        model's variables (:func:`formulations.warm.cp_values`).
    log : bool
        Show the CP-SAT log.
    memory : str
        ``cumulative`` (default) or ``reservoir``: how compute-tier occupancy is constrained.
    stage_plan : tuple or None
        ``(layout, plan)``: a stage plan, turned into a complete feasible hint.
    race : formulations.race.Race or None
        Makespan only: every schedule found is offered to it (seconds), and the search stops as
        soon as one meets the bound proven beside it (then ``feasible``: the proof is the race's).
    measure : callable or None
        With ``race``: ``measure(steps)`` gives the validated makespan of a solution's planned
        steps (None if invalid); offered instead of the model's own figure, which the clock's
        rounding may overstate.
    lns_first : float
        With a starting solution and a time limit: the share of the time left that CP-SAT spends
        in neighbourhood search alone (``use_lns_only``, every worker improving the hint) before
        its whole portfolio (which proves) goes on from the best solution found. For a search
        whose bound is proven elsewhere (:class:`formulations.race.Race`), where what is left is
        to find a schedule that meets it.
    """

    objective: str = "makespan"
    max_overhead: float | None = None
    makespan: float | None = None
    time_limit: float | None = None
    threads: int | None = None
    seed: int = 0
    resolution: float | None = None
    warm: Any = None
    log: bool = False
    memory: str = "cumulative"
    stage_plan: Any = None
    race: Any = None
    measure: Any = None
    lns_first: float = 0.0
    deadline: Deadline | None = None


@dataclass(frozen=True)
class CpResult:
    """The CP-SAT model's answer.

    Attributes
    ----------
    status : str
        ``optimal``, ``feasible``, ``infeasible`` (of the model), ``timeout`` or ``error``.
    steps : list of Step or None
        Planned actions (clock in ticks) for :func:`formulations.decode.to_actions` (``event``).
    objective, bound : float or None
        Seconds (makespan) or bytes; the bound is corrected for duration rounding.
    capacity : int or None
        ``min-memory``: the capacity chosen.
    resolution : float
        Seconds per tick.
    exact_clock : bool
        Whether every duration is a whole number of ticks.
    stats : Mapping
        Includes ``resolution_s``, ``exact_clock`` and ``resolution_source``: ``exact`` (the largest
        power of ten dividing every duration), ``horizon`` (the horizon cut into :data:`MAX_TICKS`),
        ``given`` (``CpOptions.resolution``) or ``unit`` (one tick per op: no copy can happen and
        the objective is the recompute time, so the clock does not matter).
    """

    status: str
    steps: list[Step] | None
    objective: float | None
    bound: float | None
    capacity: int | None
    resolution: float
    exact_clock: bool
    stats: Mapping[str, Any] = field(default_factory=dict)


def choose_resolution(durations: list[float], max_ticks: int = MAX_TICKS) -> tuple[float, bool]:
    """Seconds per tick for these durations, and whether it is exact.

    The largest power of ten of which every duration is a whole multiple (within 1e-9
    relative) is exact; otherwise the horizon (sum of durations) is cut into ``max_ticks``.

    Examples
    --------
    >>> choose_resolution([0.5, 1.25, 2.0])
    (0.01, True)
    >>> choose_resolution([3.0, 7.0])
    (1.0, True)
    >>> res, exact = choose_resolution([1 / 3, 1.0]); exact
    False
    """
    pos = [d for d in durations if d > 0]
    if not pos:
        return 1.0, True
    horizon = math.fsum(pos)
    top = int(math.floor(math.log10(max(pos))))
    for k in range(top, -16, -1):
        u = 10.0 ** k
        if horizon / u > MAX_EXACT_TICKS:
            break
        if all(_whole(d / u) for d in pos):
            return u, True
    return horizon / max_ticks, False


def rounding_slack(n_actions: int) -> int:
    """Ticks by which a clock that rounds durations up may overstate the optimum.

    Map every time ``x`` of a schedule to ``floor(x / res) + K(x)``, with ``K(x)`` the number of
    distinct start or end times up to ``x``. The map is monotone, so every precedence and every
    overlap (hence every capacity) of the schedule is kept, and it stretches each action to at
    least its rounded-up duration: the image is a solution of the ticked model whose makespan
    exceeds the real one (in ticks) by at most ``K``, that is ``2 * n_actions + 1`` for a model
    with ``n_actions`` timed actions. The model's bound minus this slack bounds the real optimum.

    Examples
    --------
    >>> rounding_slack(10)
    21
    """
    return 2 * n_actions + 1


def _whole(q: float) -> bool:
    """Whether ``q`` is a whole number up to floating-point noise."""
    return abs(q - round(q)) <= 1e-6 + 1e-12 * abs(q)


def _ticks(sec: float, res: float) -> int:
    """Ticks of ``sec`` seconds, rounded up (a whole number of ticks up to noise stays as is)."""
    q = sec / res
    if _whole(q):
        return int(round(q))
    return int(math.ceil(q))


class _Model:
    """Builds the CP-SAT model of a problem (private; one per solve)."""

    def __init__(self, problem: Problem, opts: CpOptions) -> None:
        from ortools.sat.python import cp_model

        self.cp = cp_model
        self.problem = problem
        self.opts = opts
        self.m = cp_model.CpModel()
        tr = problem.trace
        C = problem.compute
        self.C = C
        # ---- options per gap -----------------------------------------------------------------
        self.gap_opts: dict[int, list[str]] = {}
        copy_possible = False
        for gi, g in enumerate(problem.gaps):
            ep = problem.epochs[g.epoch]
            if g.final and ep.final == C:
                continue
            need_final = g.final and ep.final is not None and ep.final not in (C, ep.home)
            if not g.useful and not need_final:
                continue
            vias: list[str] = []
            for x in ep.tiers:
                if g.final or (g.tensor, x, C) in problem.routes:
                    vias.append(x)
            if g.recomputable and not g.final and not g.absent:
                vias.append("@recompute")
            if g.absent:
                vias = [ep.home] if ep.home in vias else []
                if not vias:
                    raise ValueError(f"tensor {tr.tensors[g.tensor].id!r} cannot reach {C}")
            if vias:
                self.gap_opts[gi] = vias
                copy_possible |= any(not v.startswith("@") for v in vias)
        # reruns of multi-output ops: one shared option of the gaps (that can help) it ends
        self.joint: list[tuple[JointRecompute, tuple[int, ...]]] = []
        for jr in joint_recomputes(problem):
            members = tuple(gi for gi in jr.gaps if problem.gaps[gi].useful)
            if members:
                for gi in members:
                    self.gap_opts.setdefault(gi, []).append(f"@joint{len(self.joint)}")
                self.joint.append((jr, members))
        # epochs needing a write
        self.writes: dict[tuple[int, str], None] = {}
        for gi, vias in self.gap_opts.items():
            e = problem.gaps[gi].epoch
            for x in vias:
                if not x.startswith("@") and problem.epochs[e].home != x:
                    self.writes[(e, x)] = None
        for e, ep in enumerate(problem.epochs):
            if ep.final is not None and ep.final not in (C, ep.home):
                if (ep.tensor, C, ep.final) not in problem.routes:
                    raise ValueError(f"tensor {tr.tensors[ep.tensor].id!r} cannot reach its final tier")
                self.writes[(e, ep.final)] = None
                copy_possible = True
        self.unit_mode = not copy_possible and opts.objective == "makespan"
        # ---- clock ---------------------------------------------------------------------------
        durs = [o.duration for o in tr.ops]
        for (e, x) in self.writes:
            durs.extend(problem.route(problem.epochs[e].tensor, C, x).seconds)
        for gi, vias in self.gap_opts.items():
            g = problem.gaps[gi]
            for x in vias:
                if x == "@recompute":
                    durs.append(tr.ops[tr.producer[g.tensor]].duration)
                elif not g.final and not x.startswith("@"):
                    durs.extend(problem.route(g.tensor, x, C).seconds)
        durs.extend(tr.ops[jr.op].duration for jr, _ in self.joint)
        if self.unit_mode:
            self.res, self.exact, self.res_source = 1.0, True, "unit"
            obj_durs = [tr.ops[tr.producer[problem.gaps[gi].tensor]].duration
                        for gi, v in self.gap_opts.items() if "@recompute" in v]
            obj_durs += [tr.ops[jr.op].duration for jr, _ in self.joint]
            self.obj_res, self.obj_exact = choose_resolution(obj_durs + durs)
        elif opts.resolution is not None:
            if not (opts.resolution > 0 and math.isfinite(opts.resolution)):
                raise ValueError(f"resolution must be a positive number of seconds, got {opts.resolution}")
            ticks = math.fsum(d for d in durs if d > 0) / opts.resolution
            if ticks > MAX_EXACT_TICKS:
                raise ValueError(f"a resolution of {opts.resolution:.6g} s cuts the horizon of "
                                 f"{math.fsum(durs):.6g} s into {ticks:.3g} ticks; at most 10^10 are "
                                 "allowed (give a coarser resolution)")
            self.res, self.res_source = opts.resolution, "given"
            self.exact = all(_whole(d / self.res) for d in durs)
        else:
            self.res, self.exact = choose_resolution(durs)
            self.res_source = "exact" if self.exact else "horizon"
        self.n_actions = len(durs)

    def dur(self, sec: float) -> int:
        """Ticks of an action lasting ``sec`` seconds."""
        if self.unit_mode:
            return 1
        return _ticks(sec, self.res)

    # ------------------------------------------------------------------------------------------
    def build(self) -> None:
        m, problem = self.m, self.problem
        tr = problem.trace
        C = self.C
        n = problem.n
        opts = self.opts
        op_d = [self.dur(o.duration) for o in tr.ops]
        extra = 0
        for (e, x) in self.writes:
            extra += sum(self.dur(s) for s in problem.route(problem.epochs[e].tensor, C, x).seconds)
        for gi, vias in self.gap_opts.items():
            g = problem.gaps[gi]
            for x in vias:
                if x == "@recompute":
                    extra += self.dur(tr.ops[tr.producer[g.tensor]].duration)
                elif not g.final and not x.startswith("@"):
                    extra += sum(self.dur(s) for s in problem.route(g.tensor, x, C).seconds)
        extra += sum(self.dur(tr.ops[jr.op].duration) for jr, _ in self.joint)
        H = sum(op_d) + extra + 1
        self.H = H
        NV = m.new_int_var
        # ---- runs ----------------------------------------------------------------------------
        s = [NV(0, H, f"s{i}") for i in range(n)]
        runs = [m.new_interval_var(s[i], op_d[i], s[i] + op_d[i], f"run{i}") for i in range(n)]
        for i in range(n - 1):
            m.add(s[i + 1] >= s[i] + op_d[i])
        self.s, self.op_d = s, op_d
        M = NV(0, H, "makespan")
        self.M = M
        if n:
            m.add(M >= s[n - 1] + op_d[n - 1])

        def e_op(i: int) -> Any:
            return s[i] + op_d[i]

        compute_iv = list(runs)
        streams: dict[str, list[Any]] = defaultdict(list)
        cum_C: list[tuple[Any, Any]] = []       # (interval, demand)
        cum_T: dict[str, list[tuple[Any, int]]] = defaultdict(list)
        for i, op in enumerate(tr.ops):
            if op.workspace > 0:
                cum_C.append((runs[i], op.workspace))
        # ---- writes (one per epoch and tier) -------------------------------------------------
        self.w_lit: dict[tuple[int, str], Any] = {}
        self.w_hops: dict[tuple[int, str], list[tuple[Any, Any, int]]] = {}   # (start, interval, dur)
        for (e, x) in self.writes:
            ep = problem.epochs[e]
            r = problem.route(ep.tensor, C, x)
            lit = m.new_bool_var(f"w_{e}_{x}")
            hops = []
            prev_end = None
            for h in range(r.hops):
                d = self.dur(r.seconds[h])
                st = NV(0, H, f"ws_{e}_{x}_{h}")
                iv = m.new_optional_interval_var(st, d, st + d, lit, f"w_{e}_{x}_{h}")
                streams[r.streams[h]].append(iv)
                if prev_end is not None:
                    m.add(st >= prev_end).only_enforce_if(lit)
                prev_end = st + d
                hops.append((st, iv, d))
            if ep.start >= 0:
                m.add(hops[0][0] >= e_op(ep.start)).only_enforce_if(lit)
            if ep.end < n:
                m.add(prev_end <= s[ep.end]).only_enforce_if(lit)
            m.add(M >= prev_end).only_enforce_if(lit)
            size = tr.tensors[ep.tensor].bytes
            # intermediate tiers: from a hop's start to the next hop's end
            for h in range(r.hops - 1):
                st_h, _, _ = hops[h]
                st_n, _, d_n = hops[h + 1]
                sz = NV(0, H, f"wi_{e}_{x}_{h}")
                piece = m.new_optional_interval_var(st_h, sz, st_n + d_n, lit, f"wip_{e}_{x}_{h}")
                cum_T[r.tiers[h + 1]].append((piece, size))
            self.w_lit[(e, x)] = lit
            self.w_hops[(e, x)] = hops
        for e, ep in enumerate(problem.epochs):
            keys = [(e, x) for x in ep.tiers if (e, x) in self.w_lit]
            if len(keys) > 1:
                m.add(sum(self.w_lit[k] for k in keys) <= 1)
            if ep.final is not None and ep.final not in (C, ep.home):
                m.add(self.w_lit[(e, ep.final)] == 1)

        def epoch_end_time(e: int) -> Any:
            ep = problem.epochs[e]
            if ep.end >= n:
                return M
            return s[ep.end] if ep.stale_at_end else e_op(ep.end)

        for (e, x), lit in self.w_lit.items():
            ep = problem.epochs[e]
            st_last, _, d_last = self.w_hops[(e, x)][-1]
            sz = NV(0, H, f"wx_{e}_{x}")
            piece = m.new_optional_interval_var(st_last, sz, epoch_end_time(e), lit, f"wxp_{e}_{x}")
            cum_T[x].append((piece, tr.tensors[ep.tensor].bytes))
        for e, ep in enumerate(problem.epochs):
            if ep.home is not None:
                end = epoch_end_time(e)
                sz = NV(0, H, f"home_{e}")
                piece = m.new_interval_var(0, sz, end, f"homep_{e}")
                cum_T[ep.home].append((piece, tr.tensors[ep.tensor].bytes))
        # ---- reruns of multi-output ops ------------------------------------------------------
        self.j_lit: list[Any] = []
        self.jrc: list[tuple[Any, Any, int]] = []
        for k, (jr, _) in enumerate(self.joint):
            lit = m.new_bool_var(f"jl{k}")
            d = self.dur(tr.ops[jr.op].duration)
            st = NV(0, H, f"jrs{k}")
            iv = m.new_optional_interval_var(st, d, st + d, lit, f"jrc{k}")
            compute_iv.append(iv)
            if tr.ops[jr.op].workspace > 0:
                cum_C.append((iv, tr.ops[jr.op].workspace))
            m.add(st >= e_op(jr.after)).only_enforce_if(lit)
            m.add(st + d <= s[jr.before]).only_enforce_if(lit)
            self.j_lit.append(lit)
            self.jrc.append((st, iv, d))
        # ---- gaps ----------------------------------------------------------------------------
        self.lit: dict[tuple[int, str], Any] = {}
        self.r: dict[int, Any] = {}
        self.b: dict[int, Any] = {}
        self.v: dict[int, Any] = {}
        self.leave: dict[int, Any] = {}
        self.f_hops: dict[tuple[int, str], list[tuple[Any, Any, int]]] = {}
        self.rc: dict[int, tuple[Any, Any, int]] = {}
        tick = Poll(opts.deadline, BUILD_POLL_EVERY)
        for gi, vias in self.gap_opts.items():
            tick()
            g = problem.gaps[gi]
            ep = problem.epochs[g.epoch]
            size = tr.tensors[g.tensor].bytes
            r_g = NV(0, H, f"r{gi}")
            lits = {x: self.j_lit[int(x[6:])] if x.startswith("@joint") else m.new_bool_var(f"l_{gi}_{x}")
                    for x in vias}
            self.lit.update({(gi, x): l for x, l in lits.items()})
            lv = m.new_bool_var(f"lv{gi}")
            m.add(sum(lits.values()) == lv)
            self.leave[gi] = lv
            self.r[gi] = r_g
            if g.absent:
                m.add(lv == 1)
                m.add(r_g == 0)
            elif g.prev >= 0:
                m.add(r_g >= e_op(g.prev))
            if g.final:
                m.add(r_g == M).only_enforce_if(lv.Not())
                m.add(r_g <= M)
                for x, l in lits.items():
                    if (g.epoch, x) in self.w_hops:
                        st_last, _, d_last = self.w_hops[(g.epoch, x)][-1]
                        m.add(r_g >= st_last + d_last).only_enforce_if(l)
                        m.add(self.w_lit[(g.epoch, x)] == 1).only_enforce_if(l)
                continue
            b_g = NV(0, H, f"b{gi}")
            v_g = NV(0, H, f"v{gi}")
            self.b[gi], self.v[gi] = b_g, v_g
            m.add(r_g <= b_g)
            m.add(b_g == r_g).only_enforce_if(lv.Not())
            m.add(v_g == b_g).only_enforce_if(lv.Not())
            nxt = g.next
            for x, l in lits.items():
                if x == "@recompute":
                    p = tr.producer[g.tensor]
                    d = self.dur(tr.ops[p].duration)
                    st = NV(0, H, f"rcs{gi}")
                    iv = m.new_optional_interval_var(st, d, st + d, l, f"rc{gi}")
                    compute_iv.append(iv)
                    if tr.ops[p].workspace > 0:
                        cum_C.append((iv, tr.ops[p].workspace))
                    m.add(b_g == st).only_enforce_if(l)
                    m.add(v_g == st + d).only_enforce_if(l)
                    m.add(st + d <= s[g.rec_last]).only_enforce_if(l)
                    self.rc[gi] = (st, iv, d)
                    continue
                if x.startswith("@joint"):
                    st, _, d = self.jrc[int(x[6:])]
                    m.add(b_g == st).only_enforce_if(l)
                    m.add(v_g == st + d).only_enforce_if(l)
                    continue
                r = problem.route(g.tensor, x, C)
                home = ep.home == x
                if not home:
                    st_last, _, d_last = self.w_hops[(g.epoch, x)][-1]
                    m.add(self.w_lit[(g.epoch, x)] == 1).only_enforce_if(l)
                    m.add(r_g >= st_last + d_last).only_enforce_if(l)
                hops = []
                prev_end = None
                for h in range(r.hops):
                    d = self.dur(r.seconds[h])
                    st = NV(0, H, f"fs_{gi}_{x}_{h}")
                    iv = m.new_optional_interval_var(st, d, st + d, l, f"f_{gi}_{x}_{h}")
                    streams[r.streams[h]].append(iv)
                    if prev_end is not None:
                        m.add(st >= prev_end).only_enforce_if(l)
                    else:
                        # staging tiers hold one copy of a tensor at a time: fetch after the release
                        m.add(st >= r_g).only_enforce_if(l)
                        if not home:
                            m.add(st >= st_last + d_last).only_enforce_if(l)
                    prev_end = st + d
                    hops.append((st, iv, d))
                for h in range(r.hops - 1):
                    sz = NV(0, H, f"fi_{gi}_{x}_{h}")
                    piece = m.new_optional_interval_var(hops[h][0], sz, hops[h + 1][0] + hops[h + 1][2], l,
                                                        f"fip_{gi}_{x}_{h}")
                    cum_T[r.tiers[h + 1]].append((piece, size))
                m.add(hops[-1][0] >= r_g).only_enforce_if(l)
                m.add(b_g == hops[-1][0]).only_enforce_if(l)
                m.add(v_g == prev_end).only_enforce_if(l)
                self.f_hops[(gi, x)] = hops
            if nxt < n:
                m.add(s[nxt] >= v_g)
        # ---- recompute inputs valid and writes read a valid copy ------------------------------
        gaps_of: dict[int, list[int]] = defaultdict(list)
        for gi in self.gap_opts:
            gaps_of[problem.gaps[gi].tensor].append(gi)
        for gi, (st, iv, d) in self.rc.items():
            g = problem.gaps[gi]
            lrec = self.lit[(gi, "@recompute")]
            p = tr.producer[g.tensor]
            for j in tr.op_reads[p]:
                for gj in gaps_of.get(j, ()):
                    q = problem.gaps[gj]
                    if q.prev >= g.rec_last or (q.next <= g.prev and not q.final):
                        continue
                    self._either(st, d, gj, [lrec, self.leave[gj]], f"rin{gi}_{gj}")
        for k, (jr, _) in enumerate(self.joint):
            st, _, d = self.jrc[k]
            for j in tr.op_reads[jr.op]:
                for gj in gaps_of.get(j, ()):
                    q = problem.gaps[gj]
                    if q.prev >= jr.before or (q.next <= jr.after and not q.final):
                        continue
                    self._either(st, d, gj, [self.j_lit[k], self.leave[gj]], f"jin{k}_{gj}")
        for (e, x), hops in self.w_hops.items():
            st0, _, d0 = hops[0]
            for gj in gaps_of.get(problem.epochs[e].tensor, ()):
                if problem.gaps[gj].epoch != e:
                    continue
                if all(v == x for v in self.gap_opts[gj]):
                    continue   # its departures already wait for this write
                self._either(st0, d0, gj, [self.w_lit[(e, x)], self.leave[gj]], f"wsrc{e}_{gj}")
        # ---- residency in the compute tier ---------------------------------------------------
        for t, tensor in enumerate(tr.tensors):
            tick()
            if tr.death[t] == AT_START:
                continue
            prod = tr.producer[t]
            init = (tensor.initial_tier or C) if prod < 0 else C
            gl = sorted(gaps_of.get(t, ()), key=lambda q: (problem.gaps[q].prev, problem.gaps[q].next))
            if prod < 0 and init != C and not gl:
                continue
            if prod >= 0:
                cur: Any = s[prod]
            else:
                cur = 0
            pieces: list[tuple[Any, Any]] = []
            final_done = False
            for gi in gl:
                g = problem.gaps[gi]
                if g.absent:
                    cur = self.b[gi]
                    continue
                pieces.append((cur, self.r[gi]))
                if g.final:
                    final_done = True
                    break
                cur = self.b[gi]
            if not final_done:
                if tensor.persistent:
                    end = M
                else:
                    d = tr.death[t]
                    end = e_op(d) if d >= 0 else 0
                pieces.append((cur, end))
            for k, (a, z) in enumerate(pieces):
                sz = NV(0, H, f"res{t}_{k}")
                iv = m.new_interval_var(a, sz, z, f"resp{t}_{k}")
                cum_C.append((iv, tensor.bytes))
        # ---- resources -----------------------------------------------------------------------
        m.add_no_overlap(compute_iv)
        for ivs in streams.values():
            if len(ivs) > 1:
                m.add_no_overlap(ivs)
        self.cap_var = None
        if opts.objective == "min-memory":
            self.cap_var = NV(problem.lower_cap, problem.cap, "capacity")
            m.add_cumulative([iv for iv, _ in cum_C], [dd for _, dd in cum_C], self.cap_var)
        elif getattr(opts, "memory", "cumulative") == "reservoir":
            times, deltas = [], []
            for iv, dd in cum_C:
                times += [iv.start_expr(), iv.end_expr()]
                deltas += [dd, -dd]
            m.add_reservoir_constraint(times, deltas, 0, problem.cap)
        else:
            m.add_cumulative([iv for iv, _ in cum_C], [dd for _, dd in cum_C], problem.cap)
        for tier, lst in cum_T.items():
            cap = problem.capacity[tier]
            if sum(dd for _, dd in lst) <= cap:
                continue
            m.add_cumulative([iv for iv, _ in lst], [dd for _, dd in lst], cap)
        self.streams = streams
        self._start_cuts()
        # ---- objective -----------------------------------------------------------------------
        if opts.objective == "makespan":
            if self.unit_mode:
                w = []
                for gi, (st, iv, d) in self.rc.items():
                    p = tr.ops[tr.producer[problem.gaps[gi].tensor]]
                    w.append((_ticks(p.duration, self.obj_res), self.lit[(gi, "@recompute")]))
                for k, (jr, _) in enumerate(self.joint):
                    w.append((_ticks(tr.ops[jr.op].duration, self.obj_res), self.j_lit[k]))
                m.minimize(sum(c * l for c, l in w) if w else 0)
                self.rec_w = w
            else:
                m.minimize(M)
        else:
            ov = 0.05 if opts.max_overhead is None else opts.max_overhead
            if opts.objective == "min-memory" or opts.makespan is None:
                limit = (1.0 + ov) * tr.compute_time
            else:
                limit = opts.makespan
            m.add(M <= int(math.floor(limit / self.res + 1e-9)))
            if opts.objective == "min-memory":
                m.minimize(self.cap_var)
            else:
                moved = []
                for (e, x), lit in self.w_lit.items():
                    moved.append((tr.tensors[problem.epochs[e].tensor].bytes * len(self.w_hops[(e, x)]), lit))
                for (gi, x), hops in self.f_hops.items():
                    moved.append((tr.tensors[problem.gaps[gi].tensor].bytes * len(hops), self.lit[(gi, x)]))
                m.minimize(sum(c * l for c, l in moved) if moved else 0)

    def _start_cuts(self) -> None:
        """Redundant constraints at the start of every op that overflows the compute tier.

        They follow from the others (the cumulative holds at every instant) but give CP-SAT's
        search and linear relaxation what the cumulative hides: at ``s[i]`` a tensor is *absent*
        (``a[g, i]``) when its gap ``g`` has released it and its return has not begun. Then

        * the absent bytes cover op ``i``'s overflow (a knapsack): the footprint of the tensors the
          model keeps in the compute tier at ``s[i]`` unless they leave, minus the capacity;
        * on each link stream, the first hops of the writes that the absent tensors' copies wait
          for (one per tensor) all end by ``s[i]``, one after another from time 0: their total
          duration is at most ``s[i]``.

        The second ties the stalls to the copies out, which the cumulative alone leaves CP-SAT to
        discover by search (train-tiny-1layer at 0.8 went from 2.6% unproven to proven in 7 s).
        Ops are taken by decreasing overflow while the booleans stay within :data:`START_CUTS_MAX`.
        """
        problem, m, tr = self.problem, self.m, self.problem.trace
        n, C = problem.n, self.C
        prof = tr.resident_profile()
        # tensors the no-offload footprint counts but the model never holds in the compute tier
        never: list[tuple[int, int]] = []
        covered = {problem.gaps[gi].tensor for gi in self.gap_opts}
        for t, tensor in enumerate(tr.tensors):
            prod = tr.producer[t]
            init = (tensor.initial_tier or C) if prod < 0 else C
            if tr.death[t] >= 0 and prod < 0 and init != C and t not in covered:
                never.append((tensor.bytes, tr.death[t]))
        cap: Any = self.cap_var if self.cap_var is not None else problem.cap
        floor = problem.lower_cap if self.cap_var is not None else problem.cap
        by_op: dict[int, list[int]] = defaultdict(list)
        for gi in self.gap_opts:
            g = problem.gaps[gi]
            lo = 0 if g.absent else g.prev + 1
            hi = n - 1 if g.final else g.next - 1
            for i in range(max(lo, 0), min(hi, n - 1) + 1):
                by_op[i].append(gi)
        todo = []
        for i, gis in by_op.items():
            base = int(prof[i]) - sum(b for b, d in never if d >= i)
            if base > floor and self.op_d[i] > 0:
                todo.append((base, i, gis))
        # the copy tiers of each gap whose copies wait for a write out of the compute tier
        written = {gi: [x for x in vias if (problem.gaps[gi].epoch, x) in self.w_hops
                        and problem.epochs[problem.gaps[gi].epoch].home != x]
                   for gi, vias in self.gap_opts.items()}
        budget = START_CUTS_MAX
        for base, i, gis in sorted(todo, key=lambda x: (-x[0], x[1])):
            cost = sum(1 + len(self.gap_opts[gi]) for gi in gis)     # at least the booleans it adds
            if cost > budget:
                continue
            budget -= cost
            absent = []
            writes: dict[str, list[tuple[int, Any]]] = defaultdict(list)
            for gi in gis:
                g = problem.gaps[gi]
                a = m.new_bool_var(f"abs{gi}_{i}")
                m.add(a <= self.leave[gi])
                m.add(self.r[gi] <= self.s[i]).only_enforce_if(a)
                if gi in self.b:
                    m.add(self.b[gi] >= self.s[i] + 1).only_enforce_if(a)
                absent.append((tr.tensors[g.tensor].bytes, a))
                for x in written[gi]:
                    y = m.new_bool_var(f"absw{gi}_{i}_{x}")
                    m.add(y >= a + self.lit[(gi, x)] - 1)
                    stream = problem.route(g.tensor, C, x).streams[0]
                    writes[stream].append((self.w_hops[(g.epoch, x)][0][2], y))
            m.add(sum(b * a for b, a in absent) >= base - cap)
            for items in writes.values():
                m.add(sum(d * y for d, y in items) <= self.s[i])

    def _either(self, st: Any, d: int, gj: int, when: list[Any], name: str) -> None:
        """Under ``when``: the interval [st, st + d) ends before gap gj's release or starts after
        its return (a final gap never returns)."""
        m = self.m
        q = self.problem.gaps[gj]
        if q.final or gj not in self.v:
            m.add(st + d <= self.r[gj]).only_enforce_if(when)
            return
        z = m.new_bool_var(name)
        m.add(st + d <= self.r[gj]).only_enforce_if(when + [z])
        m.add(st >= self.v[gj]).only_enforce_if(when + [z.Not()])


def solve_cpsat(problem: Problem, opts: CpOptions) -> CpResult:
    """Build, solve and decode the CP-SAT model.

    Returns
    -------
    CpResult
        With planned steps on the model's clock.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="f", duration=1.0, inputs=("x",)),))
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
    >>> from formulations.common import build_problem
    >>> res = solve_cpsat(build_problem(tr, hw), CpOptions(threads=1))
    >>> res.status, res.objective, res.exact_clock
    ('optimal', 1.0, True)
    """
    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    if opts.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {opts.objective!r}; expected one of {', '.join(OBJECTIVES)}")
    until = opts.deadline
    if opts.time_limit is not None:
        until = Deadline.after(opts.time_limit, clock=until.clock if until is not None else time.perf_counter
                               ).sooner(until)
    mm = _Model(problem, replace(opts, deadline=until))
    try:
        if until is not None:
            until.check("the CP-SAT model's build")
        mm.build()
        if until is not None:
            until.check("the CP-SAT model's build")
    except OutOfTime:
        return CpResult("timeout", None, None, None, None, mm.res, mm.exact,
                        {"build_s": round(time.perf_counter() - t0, 3), "built": False,
                         "message": "the time limit passed before the CP-SAT model was built",
                         "resolution_s": mm.res, "exact_clock": mm.exact, "resolution_source": mm.res_source})
    build_s = time.perf_counter() - t0
    stats_hint = "none"
    starts: list[tuple[int, list[int], str]] = []

    def budget() -> float:
        """Seconds for completing one hint: a tenth of the limit, at most a tenth of the time left."""
        b = max(0.5, 0.1 * (opts.time_limit or 60.0))
        return b if until is None else max(MIN_SEARCH_S, min(b, 0.1 * until.left()))

    if opts.warm is not None:
        got = _complete(mm, _warm_values(mm, opts.warm), opts.threads or 1, budget())
        if got is not None:
            starts.append((got[0], got[1], "warm schedule"))
    if opts.stage_plan is not None:
        sh = _stage_hint(mm, *opts.stage_plan)
        if sh is not None:
            got = _complete(mm, sh[0], opts.threads or 1, budget())
            if got is not None:
                starts.append((got[0], got[1], "stage plan"))
    mm.m.clear_hints()
    if starts:
        obj, sol, stats_hint = min(starts, key=lambda x: x[0])
        _hint(mm, sol)

    def search(left: float | None, lns_only: bool) -> tuple[Any, Any]:
        solver = cp_model.CpSolver()
        prm = solver.parameters
        if left is not None:
            prm.max_time_in_seconds = max(MIN_SEARCH_S, left)
        prm.num_workers = opts.threads or 1
        # one worker alone runs one search and no neighbourhood search; interleaving runs CP-SAT's
        # portfolio (LNS from the hint included) in turns on the one thread: on the tiny suite at
        # 10 s it proved 19 of 23 feasible cases instead of 18 and found a shorter schedule on each
        # of the other four (results/exact.md)
        prm.interleave_search = prm.num_workers == 1
        prm.use_lns_only = lns_only
        prm.random_seed = opts.seed
        prm.log_search_progress = opts.log
        if opts.log:
            # CP-SAT's own log, line by line, on stderr (stdout may carry the caller's JSON)
            prm.log_to_stdout = False
            solver.log_callback = _log_line
        callback = None
        if opts.race is not None and opts.objective == "makespan":
            callback = _offer_to(mm, opts.race, opts.measure)
            opts.race.on_meet(solver.stop_search)
        return solver, solver.solve(mm.m, callback)

    def left() -> float | None:
        return None if until is None else until.left()

    t_search = time.perf_counter()
    first = None
    stats_lns: dict[str, Any] = {}
    if opts.lns_first > 0 and starts and until is not None:
        # neighbourhood search alone from the hint, then the whole portfolio from its best
        lns_s = opts.lns_first * (left() or 0.0)
        first = search(lns_s, True)
        stats_lns = {"lns_s": round(first[0].wall_time, 3), "lns_solver": first[0].status_name(first[1])}
        if first[1] in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            mm.m.clear_hints()
            _hint(mm, list(first[0].response_proto.solution))
    solver, code = (first if first is not None and (first[1] == cp_model.OPTIMAL or (
        opts.race is not None and opts.race.done)) else search(left(), False))
    if first is not None and first[1] in (cp_model.OPTIMAL, cp_model.FEASIBLE) and (
            code not in (cp_model.OPTIMAL, cp_model.FEASIBLE)
            or first[0].objective_value < solver.objective_value):
        # the portfolio lost the neighbourhood search's solution (it does not keep every hint)
        code, solver = cp_model.FEASIBLE, first[0]
    name = solver.status_name(code)
    stats: dict[str, Any] = {"build_s": round(build_s, 3), "solve_s": round(time.perf_counter() - t_search, 3),
                             "hint": stats_hint,
                             "solver": name, "resolution_s": mm.res, "exact_clock": mm.exact,
                             "resolution_source": mm.res_source,
                             "unit_clock": mm.unit_mode, "horizon_ticks": mm.H,
                             "variables": len(mm.m.proto.variables), "constraints": len(mm.m.proto.constraints),
                             **stats_lns}
    if code == cp_model.OPTIMAL:
        status = "optimal"
    elif code == cp_model.FEASIBLE:
        status = "feasible"
    elif code == cp_model.INFEASIBLE:
        return CpResult("infeasible", None, None, None, None, mm.res, mm.exact, stats)
    elif code == cp_model.UNKNOWN:
        return CpResult("timeout", None, None, None, None, mm.res, mm.exact, stats)
    else:
        return CpResult("error", None, None, None, None, mm.res, mm.exact, {**stats, "message": name})
    obj, bound = _objective(mm, solver)
    if status == "optimal" and obj is not None and bound is not None and \
            obj - bound > CLOCK_OPTIMAL_REL * max(abs(obj), 1e-300):
        # optimal on a clock that rounds durations up: the real optimum may lie lower
        status = "feasible"
        stats["note"] = (f"optimal on a clock of {mm.res:.4g} s per tick that rounds durations up; the "
                         f"rounding leaves a gap of {(obj - bound) / obj:.3%}")
    steps = _decode(mm, solver)
    cap = int(solver.value(mm.cap_var)) if mm.cap_var is not None else None
    return CpResult(status, steps, obj, bound, cap, mm.res, mm.exact, stats)


def _hint(mm: _Model, solution: list[int]) -> None:
    """Hint every variable of the model with a complete solution (in the model's variable order)."""
    for i, val in enumerate(solution):
        mm.m.add_hint(mm.m.get_int_var_from_proto_index(i), val)


def _log_line(line: str) -> None:
    """Write one line of the CP-SAT log to the current ``sys.stderr``."""
    print(line, file=sys.stderr, flush=True)


def _offer_to(mm: _Model, race: Any, measure: Callable[[list[Step]], float | None] | None) -> Any:
    """A solution callback that offers each schedule's makespan to ``race`` (validated by
    ``measure`` when given) and stops the search once it meets the race's bound."""
    from ortools.sat.python import cp_model

    class _Offer(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            value = _seconds(mm, self.objective_value)
            if measure is not None:
                real = measure(_decode(mm, self))
                if real is not None:
                    value = min(value, real)
            if race.offer_upper(value):
                self.stop_search()

    return _Offer()


def _seconds(mm: _Model, value: float) -> float:
    """The makespan, seconds, of a value of the ``makespan`` objective."""
    if mm.unit_mode:
        return float(value * mm.obj_res + mm.problem.trace.compute_time)
    return float(value * mm.res)


def _objective(mm: _Model, solver: Any) -> tuple[float, float]:
    tr = mm.problem.trace
    o = mm.opts.objective
    if o == "makespan":
        if mm.unit_mode:
            val = _seconds(mm, solver.objective_value)
            bnd = solver.best_objective_bound * mm.obj_res + tr.compute_time
            if not mm.obj_exact:
                bnd -= len(mm.rec_w) * mm.obj_res
            return float(val), float(max(bnd, tr.compute_time))
        val = _seconds(mm, solver.objective_value)
        bnd = solver.best_objective_bound
        if not mm.exact:
            bnd -= rounding_slack(mm.n_actions)
        return float(val), float(max(bnd * mm.res, tr.compute_time))
    return float(solver.objective_value), float(solver.best_objective_bound)


def _decode(mm: _Model, solver: Any) -> list[Step]:
    """Planned steps (clock in ticks) of the solution."""
    problem, C = mm.problem, mm.C
    tr = problem.trace
    V = solver.value
    fresh = unique_ids([o.id for o in tr.ops])
    steps: list[Step] = []
    s = [V(x) for x in mm.s]
    run_id = [o.id for o in tr.ops]
    for i, op in enumerate(tr.ops):
        steps.append(Step(op.id, "run", op=op.id, stream=COMPUTE, start=s[i], end=s[i] + mm.op_d[i], rank=i))
    # readers of each tensor in the compute tier: (start, end, id)
    readers: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for i in range(problem.n):
        for t in tr.op_reads[i]:
            readers[t].append((s[i], s[i] + mm.op_d[i], run_id[i]))
    back_id: dict[int, str] = {}
    write_ids: dict[tuple[int, str], list[str]] = {}
    for (e, x), lit in mm.w_lit.items():
        if not V(lit):
            continue
        ep = problem.epochs[e]
        tid = tr.tensors[ep.tensor].id
        r = problem.route(ep.tensor, C, x)
        ids = []
        deps: tuple[str, ...] = (run_id[ep.start],) if ep.start >= 0 else ()
        for h, (st, _, d) in enumerate(mm.w_hops[(e, x)]):
            sid = fresh(f"write:{tid}:{r.tiers[h + 1]}")
            a = V(st)
            steps.append(Step(sid, "copy", tensor=tid, src=r.tiers[h], dst=r.tiers[h + 1], free_src=h > 0,
                              stream=r.streams[h], start=a, end=a + d, deps=deps, rank=h))
            if h == 0:
                readers[ep.tensor].append((a, a + d, sid))
            ids.append(sid)
            deps = (sid,)
        write_ids[(e, x)] = ids
    rc_plan: dict[int, tuple[int, int, str]] = {}
    for gi, (st, _, d) in mm.rc.items():
        if not V(mm.lit[(gi, "@recompute")]):
            continue
        g = problem.gaps[gi]
        p = tr.producer[g.tensor]
        a = V(st)
        sid = fresh(f"recompute:{tr.ops[p].id}:{gi}")
        rc_plan[gi] = (a, a + d, sid)
        for j in tr.op_reads[p]:
            readers[j].append((a, a + d, sid))
    joint_plan: dict[int, tuple[int, int, str, list[str]]] = {}
    for k, (jr, _) in enumerate(mm.joint):
        if not V(mm.j_lit[k]):
            continue
        st, _, d = mm.jrc[k]
        a = V(st)
        sid = fresh(f"recompute:{tr.ops[jr.op].id}:j{k}")
        joint_plan[k] = (a, a + d, sid, [])
        for j in tr.op_reads[jr.op]:
            readers[j].append((a, a + d, sid))
    for gi, vias in mm.gap_opts.items():
        g = problem.gaps[gi]
        via = next((x for x in vias if V(mm.lit[(gi, x)])), None)
        if via is None:
            continue
        tid = tr.tensors[g.tensor].id
        rt = V(mm.r[gi])
        free_id = None
        if not g.absent:
            deps = [rid for (a, z, rid) in readers[g.tensor] if z <= rt]
            deps = _latest(deps, steps, readers[g.tensor], rt)
            if g.prev >= 0 and run_id[g.prev] not in deps:
                deps.append(run_id[g.prev])
            free_id = fresh(f"drop:{tid}:{gi}")
            steps.append(Step(free_id, "free", tensor=tid, dst=C, start=rt, end=rt, deps=tuple(deps)))
        if g.final:
            continue
        if via == "@recompute":
            a, z, sid = rc_plan[gi]
            p = tr.producer[g.tensor]
            steps.append(Step(sid, "recompute", op=tr.ops[p].id, stream=COMPUTE, start=a, end=z,
                              deps=(free_id,) if free_id else (), rank=-1))
            back_id[gi] = sid
            continue
        if via.startswith("@joint"):
            plan = joint_plan[int(via[6:])]
            if free_id:
                plan[3].append(free_id)
            back_id[gi] = plan[2]
            continue
        r = problem.route(g.tensor, via, C)
        ep = problem.epochs[g.epoch]
        deps2: tuple[str, ...] = ()
        if ep.home != via:
            deps2 = (write_ids[(g.epoch, via)][-1],)
        hops = mm.f_hops[(gi, via)]
        for h, (st, _, d) in enumerate(hops):
            a = V(st)
            sid = fresh(f"fetch:{tid}:{r.tiers[h + 1]}")
            dd = deps2 + ((free_id,) if (h == r.hops - 1 and free_id) else ())
            steps.append(Step(sid, "copy", tensor=tid, src=r.tiers[h], dst=r.tiers[h + 1], free_src=h > 0,
                              stream=r.streams[h], start=a, end=a + d, deps=dd, rank=h))
            deps2 = (sid,)
        back_id[gi] = deps2[0]
    for k, (a, z, sid, frees) in joint_plan.items():
        steps.append(Step(sid, "recompute", op=tr.ops[mm.joint[k][0].op].id, stream=COMPUTE, start=a, end=z,
                          deps=tuple(frees), rank=-1))
    # data waits of runs and recomputes on returns
    out: list[Step] = []
    by_next: dict[int, list[str]] = defaultdict(list)
    for gi, sid in back_id.items():
        by_next[problem.gaps[gi].next].append(sid)
    ends = {st.id: st.end for st in steps}
    for st in steps:
        if st.kind == "run":
            i = tr.op_index[st.op]
            extra = tuple(by_next.get(i, ()))
            out.append(Step(st.id, st.kind, op=st.op, stream=st.stream, start=st.start, end=st.end,
                            deps=st.deps + extra, rank=st.rank))
        elif st.kind == "recompute":
            p = tr.op_index[st.op]
            extra = []
            for j in tr.op_reads[p]:
                for gj, sid in back_id.items():
                    if problem.gaps[gj].tensor == j and ends[sid] <= st.start:
                        extra.append(sid)
            out.append(Step(st.id, st.kind, op=st.op, stream=st.stream, start=st.start, end=st.end,
                            deps=st.deps + tuple(extra), rank=st.rank))
        else:
            out.append(st)
    return out


def _latest(deps: list[str], steps: list[Step], readers: list[tuple[int, int, str]], rt: int) -> list[str]:
    """Keep, per stream, only the latest reader (the others end before it on the same stream)."""
    stream_of = {st.id: st.stream for st in steps}
    best: dict[str, tuple[int, str]] = {}
    for (a, z, rid) in readers:
        if z > rt or rid not in deps:
            continue
        key = stream_of.get(rid, rid)
        if key not in best or best[key][0] < z:
            best[key] = (z, rid)
    return [rid for _, rid in best.values()]


def _warm_values(mm: _Model, schedule: Any) -> dict[str, int]:
    """A schedule's decisions and times on the model's clock, by variable name.

    The schedule is replayed with the model's rounded durations (its waits keep it valid on any
    clock) and read back (:func:`formulations.warm.cp_values`); choices it does not make are 0.
    """
    from solver.model import Copy, Free, Recompute, Run

    from formulations.warm import cp_values, replay

    problem = mm.problem
    tr = problem.trace
    hw = problem.hardware
    dur: dict[str, float] = {}
    for a in schedule.actions:
        if isinstance(a, Run) or isinstance(a, Recompute):
            dur[a.id] = mm.dur(tr.op(a.op).duration)
        elif isinstance(a, Copy):
            lk = hw.link(a.src, a.dst)
            dur[a.id] = mm.dur(lk.copy_time(tr.tensor(a.tensor).bytes)) if lk is not None else 0
        elif isinstance(a, Free):
            dur[a.id] = 0
    if mm.unit_mode:
        dur = {k: (1 if v else 0) for k, v in dur.items()}
        for a in schedule.actions:
            if isinstance(a, (Run, Recompute)):
                dur[a.id] = 1
    vals = cp_values(problem, schedule, replay(schedule, dur))
    # a rerun of a multi-output op: the shared option whose window holds it, ending every member
    for kj, (jr, members) in enumerate(mm.joint):
        at = [vals[f"rcs{gi}"] for gi in members if vals.get(f"l_{gi}_@recompute") and f"rcs{gi}" in vals]
        if not at or f"s{jr.after}" not in vals or f"s{jr.before}" not in vals:
            continue
        b, d = at[0], mm.dur(tr.ops[jr.op].duration)
        if not (vals[f"s{jr.after}"] + mm.op_d[jr.after] <= b and b + d <= vals[f"s{jr.before}"]):
            continue
        vals[f"jl{kj}"], vals[f"jrs{kj}"] = 1, b
        for gi in members:
            for x in mm.gap_opts[gi]:
                vals.pop(f"l_{gi}_{x}", None)
            vals.pop(f"l_{gi}_@recompute", None)
            vals[f"lv{gi}"] = 1
            vals[f"r{gi}"] = min(vals.get(f"r{gi}", b), b)
            vals[f"b{gi}"], vals[f"v{gi}"] = b, b + d
    # a choice the model does not offer is dropped
    for gi in mm.gap_opts:
        if vals.get(f"lv{gi}") and not any(vals.get(f"jl{x[6:]}" if x.startswith("@joint") else f"l_{gi}_{x}")
                                           for x in mm.gap_opts[gi]):
            for k in (f"lv{gi}", f"r{gi}", f"b{gi}", f"v{gi}"):
                vals.pop(k, None)
    for (gi, x) in mm.lit:
        if not x.startswith("@joint"):
            vals.setdefault(f"l_{gi}_{x}", 0)
        vals.setdefault(f"lv{gi}", 0)
    for kj in range(len(mm.joint)):
        vals.setdefault(f"jl{kj}", 0)
    for (e, x) in mm.w_lit:
        vals.setdefault(f"w_{e}_{x}", 0)
    return {k: int(round(v)) for k, v in vals.items() if v is not None and v != float("inf")}


def _complete(mm: _Model, values: Mapping[str, int], threads: int, limit: float) -> tuple[int, list[int]] | None:
    """Complete ``values`` (held fixed) into a full solution of the model by a short solve.

    The values are imposed on a copy of the model, whose solution then gives every variable.
    Returns the objective and every variable's value (in the model's variable order), or None
    when the values do not fit the model (a warm start outside the formulation's policies) or
    time runs out.
    """
    from ortools.sat.python import cp_model

    m2 = mm.m.clone()
    n = len(mm.m.proto.variables)
    for i, v in enumerate(mm.m.proto.variables):
        if v.name in values:
            m2.add(m2.get_int_var_from_proto_index(i) == int(values[v.name]))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit
    solver.parameters.num_workers = threads
    solver.parameters.stop_after_first_solution = True
    code = solver.solve(m2)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return int(round(solver.objective_value)), list(solver.response_proto.solution)[:n]


def _stage_hint(mm: _Model, layout: Any, plan: Any) -> tuple[dict[str, int], int] | None:
    """The model's variables for a stage plan, on the model's clock (a feasible solution).

    Barrier timing with the model's rounded durations keeps every stage's memory within the
    stage model's (conservative) count, so the values satisfy the model; returns them with the
    objective in ticks, or None when the plan uses a choice the model does not offer.
    """
    from formulations.stages import REC, plan_steps, stage_times

    problem = mm.problem
    tr = problem.trace
    C = mm.C
    steps = plan_steps(problem, layout, plan)
    dur: dict[str, float] = {}
    by_key = {}
    for st in steps:
        by_key[st.key] = st
        k = st.key
        if st.kind == "free" or not k:
            continue
        if k[0] == "run":
            dur[st.id] = mm.op_d[k[1]]
        elif k[0] == "rec":
            dur[st.id] = mm.dur(tr.ops[tr.producer[problem.gaps[k[1]].tensor]].duration)
        elif k[0] == "write":
            e, x, h = k[1:]
            dur[st.id] = mm.dur(problem.route(problem.epochs[e].tensor, C, x).seconds[h])
        else:
            gi, x, h = k[1:]
            dur[st.id] = mm.dur(problem.route(problem.gaps[gi].tensor, x, C).seconds[h])
    times = stage_times(steps, dur)
    vals: dict[str, int] = {}
    run_end = {}
    for i in range(problem.n):
        a, z = times[by_key[("run", i)].id]
        vals[f"s{i}"] = int(a)
        run_end[i] = int(z)
    makespan = int(max((z for _, z in times.values()), default=0))
    write_end: dict[tuple[int, str], int] = {}
    for (e, x) in mm.w_lit:
        on = (e, x) in plan.writes
        vals[f"w_{e}_{x}"] = int(on)
        if not on:
            continue
        hops = len(mm.w_hops[(e, x)])
        for h in range(hops):
            st = by_key.get(("write", e, x, h))
            if st is None:
                return None
            vals[f"ws_{e}_{x}_{h}"] = int(times[st.id][0])
        write_end[(e, x)] = int(times[by_key[("write", e, x, hops - 1)].id][1])
    if any(key not in mm.w_lit for key in plan.writes):
        return None
    chosen = {ch.gap: ch for ch in plan.choices}
    for gi, vias in mm.gap_opts.items():
        g = problem.gaps[gi]
        ch = chosen.get(gi)
        prev_end = run_end[g.prev] if g.prev >= 0 else 0
        if ch is None or ch.via not in vias:
            if g.absent or ch is not None:
                return None
            for x in vias:
                vals[f"l_{gi}_{x}"] = 0
            vals[f"lv{gi}"] = 0
            if g.final:
                vals[f"r{gi}"] = makespan
            else:
                vals[f"r{gi}"] = vals[f"b{gi}"] = vals[f"v{gi}"] = prev_end
            continue
        for x in vias:
            vals[f"l_{gi}_{x}"] = int(x == ch.via)
        vals[f"lv{gi}"] = 1
        if g.absent:
            r = 0
        else:
            r = int(times[by_key[("drop", gi)].id][1])
            if (g.epoch, ch.via) in write_end:
                r = max(r, write_end[(g.epoch, ch.via)])
        vals[f"r{gi}"] = r
        if g.final:
            continue
        if ch.via == REC:
            a, z = times[by_key[("rec", gi)].id]
            vals[f"rcs{gi}"] = int(a)
        else:
            hops = len(mm.f_hops[(gi, ch.via)])
            for h in range(hops):
                vals[f"fs_{gi}_{ch.via}_{h}"] = int(times[by_key[("fetch", gi, ch.via, h)].id][0])
            a, z = times[by_key[("fetch", gi, ch.via, hops - 1)].id]
        vals[f"b{gi}"], vals[f"v{gi}"] = int(a), int(z)
    vals["makespan"] = makespan
    obj = makespan
    if mm.unit_mode:
        obj = sum(c for c, l in getattr(mm, "rec_w", []) if vals.get(l.name, 0))
    return vals, obj
