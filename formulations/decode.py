"""Decoding a formulation's choices into a stream program with explicit waits.

A formulation decides *what* happens (runs, recomputes, copies, frees) and *when* in its own
timing (a stage index for the time-indexed MILP, an integer clock for CP-SAT). The validator,
however, computes every time itself from the waits: an action starts at the latest end among
its ``after`` list and its stream predecessor. The waits written here make the validator's
times never later than the formulation's and keep every memory event in the planned order, so a
schedule that is feasible in the formulation is valid under the timing model, with a makespan no
larger than the formulation's objective:

* ``sync="barrier"`` (stages): every action of stage ``k`` waits for the last action, on every
  stream, of the stages before ``k``. Stage ``k`` then lasts exactly its longest stream.
* ``sync="event"`` (clock): every action waits for the last action on each other stream whose
  planned end is no later than its planned start. Any action that ended before another started in
  the plan has ended before it starts in the validator, so releases happen before the
  allocations that rely on them.

Frees take no stream; they wait for the actions named in their ``deps`` (readers and writers of
the copy they release) and happen no later than planned.

Examples
--------
>>> steps = [Step("a", "run", op="a", stream="compute", start=0, end=1, stage=0),
...          Step("x", "copy", tensor="t", src="HBM", dst="DDR", stream="HBM->DDR", start=1, end=3, stage=1),
...          Step("b", "run", op="b", stream="compute", start=3, end=4, stage=2)]
>>> [(type(a).__name__, a.after) for a in to_actions(steps, "barrier")]
[('Run', ()), ('Copy', ('a',)), ('Run', ('x',))]
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from solver.model import Action, Copy, Free, Recompute, Run, Schedule

from formulations.common import COMPUTE


@dataclass(frozen=True)
class Step:
    """One planned action.

    Attributes
    ----------
    id : str
        Action id (unique).
    kind : str
        ``"run"``, ``"recompute"``, ``"copy"`` or ``"free"``.
    op, tensor, src, dst : str
        What it acts on (``dst`` is the tier of a free).
    free_src : bool
        For a copy: release the source at its end.
    stream : str
        ``"compute"``, a link stream, or ``""`` for a free.
    start, end : float
        Planned times in the formulation's clock (for a free: its planned instant).
    stage : int
        Planned stage (barrier sync).
    deps : tuple[str, ...]
        Waits required by data (the copy it reads, the readers a free must let finish...).
    rank : int
        Tie-break among steps with the same start (and order inside a stage's stream).
    key : tuple
        What the formulation calls it (bookkeeping only; not part of the schedule).
    """

    id: str
    kind: str
    op: str = ""
    tensor: str = ""
    src: str = ""
    dst: str = ""
    free_src: bool = False
    stream: str = ""
    start: float = 0.0
    end: float = 0.0
    stage: int = 0
    deps: tuple[str, ...] = ()
    rank: int = 0
    key: tuple = ()


def _action(step: Step, after: tuple[str, ...]) -> Action:
    if step.kind == "run":
        return Run(op=step.op, id=step.id, after=after)
    if step.kind == "recompute":
        return Recompute(id=step.id, op=step.op, after=after)
    if step.kind == "copy":
        return Copy(id=step.id, tensor=step.tensor, src=step.src, dst=step.dst, free_src=step.free_src,
                    after=after)
    if step.kind == "free":
        return Free(id=step.id, tensor=step.tensor, tier=step.dst, after=after)
    raise ValueError(f"unknown step kind {step.kind!r}")


def _order_key(sync: str):
    if sync == "barrier":
        return lambda s: (s.stage, 0 if s.stream == COMPUTE else 1, s.rank, s.start)
    return lambda s: (s.start, s.end, s.rank)


def to_actions(steps: Sequence[Step], sync: str) -> list[Action]:
    """Order the steps into a stream program and add the waits of ``sync`` mode.

    Parameters
    ----------
    steps : sequence of Step
        Every planned action (frees included).
    sync : str
        ``"barrier"`` or ``"event"`` (see the module docstring).

    Returns
    -------
    list of Action
        In program order; each stream's actions appear in planned order.

    Examples
    --------
    >>> st = [Step("a", "run", op="a", stream="compute", start=0, end=2),
    ...       Step("x", "copy", tensor="t", src="DDR", dst="HBM", stream="DDR->HBM", start=0, end=1),
    ...       Step("b", "run", op="b", stream="compute", start=2, end=3, deps=("x",))]
    >>> [(a.id, a.after) for a in to_actions(st, "event")]
    [('x', ()), ('a', ()), ('b', ('x',))]
    """
    if sync not in ("barrier", "event"):
        raise ValueError(f"unknown sync mode {sync!r}")
    key = _order_key(sync)
    timed = sorted((s for s in steps if s.kind != "free"), key=key)
    frees = [s for s in steps if s.kind == "free"]
    streams: dict[str, list[int]] = {}
    for i, s in enumerate(timed):
        streams.setdefault(s.stream, []).append(i)
    afters: list[tuple[str, ...]] = []
    if sync == "barrier":
        # last action (program order) on each stream among stages < k
        last_before: dict[int, dict[str, str]] = {}
        current: dict[str, str] = {}
        stages = sorted({s.stage for s in timed})
        by_stage: dict[int, list[Step]] = {}
        for s in timed:
            by_stage.setdefault(s.stage, []).append(s)
        for k in stages:
            last_before[k] = dict(current)
            for s in by_stage[k]:
                current[s.stream] = s.id
        for s in timed:
            waits = [w for st, w in last_before[s.stage].items() if st != s.stream]
            afters.append(_merge(s.deps, waits))
    else:
        ends = {st: [timed[i].end for i in idx] for st, idx in streams.items()}
        for i, s in enumerate(timed):
            waits = []
            for st, idx in streams.items():
                if st == s.stream:
                    continue
                # last action on st, before s in program order, ending no later than s starts
                limit = bisect.bisect_left(idx, i)
                p = bisect.bisect_right(ends[st], s.start, 0, limit) - 1
                if p >= 0:
                    waits.append(timed[idx[p]].id)
            afters.append(_merge(s.deps, waits))
    actions: list[Action] = [_action(s, a) for s, a in zip(timed, afters)]
    # frees go right after the last action they wait for
    index = {s.id: i for i, s in enumerate(timed)}
    slots: dict[int, list[Action]] = {}
    for f in frees:
        if not f.deps:
            raise ValueError(f"free {f.id!r} waits for nothing")
        at = max(index.get(d, len(timed) - 1) for d in f.deps)
        slots.setdefault(at, []).append(_action(f, tuple(dict.fromkeys(f.deps))))
    out: list[Action] = []
    for i, a in enumerate(actions):
        out.append(a)
        out.extend(slots.get(i, ()))
    return out


def _merge(deps: Iterable[str], waits: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*deps, *waits]))


def unique_ids(taken: Iterable[str]):
    """A function that returns ids unused by ``taken`` and by its own earlier answers.

    Examples
    --------
    >>> new = unique_ids(["a"])
    >>> new("a"), new("a"), new("b")
    ('a#1', 'a#2', 'b')
    """
    used = set(taken)

    def fresh(base: str) -> str:
        name, k = base, 0
        while name in used:
            k += 1
            name = f"{base}#{k}"
        used.add(name)
        return name

    return fresh


def make_schedule(trace_name: str, hardware_name: str, steps: Sequence[Step], sync: str,
                  capacity: Mapping[str, int] | None = None,
                  solver: Mapping[str, Any] | None = None) -> Schedule:
    """Build the :class:`~solver.model.Schedule` for planned ``steps``.

    Examples
    --------
    >>> s = make_schedule("t", "h", [Step("a", "run", op="a", stream="compute", end=1)], "event")
    >>> [a.id for a in s.actions]
    ['a']
    """
    return Schedule(trace_name, hardware_name, tuple(to_actions(steps, sync)), dict(capacity or {}),
                    dict(solver or {}))
