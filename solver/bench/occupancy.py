"""Memory held in each tier over time, by tensor kind, replayed from the validator's timeline.

The replay follows the timing model's memory rules (see ``docs/formats.md``) on the start and end
times the validator computed (:attr:`solver.timing.Report.timeline`): a run or recompute allocates
its outputs and workspace in the compute tier at its start and releases the workspace at its end;
a copy allocates in its destination at its start and, with ``free_src``, releases the source at its
end; a free releases at once; an update drops the copies in other tiers; a tensor dying at the end
of its last user releases every copy. Events of one instant go ends, frees, starts. For a valid
schedule the peaks equal the validator's; for an invalid one the replay is tolerant (it shows what
the timing model simulated, without its error checks).

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Schedule, Run
>>> from solver.timing import validate
>>> tr = Trace("t", (Tensor(id="x", bytes=10, kind="activation"),), (Op(id="a", duration=2.0, outputs=("x",)),))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 100),))
>>> s = Schedule("t", "h", (Run(op="a"),))
>>> occ = occupancy(tr, hw, s, validate(tr, hw, s))
>>> occ.times.tolist(), occ.total("HBM").tolist(), occ.peak()
([0.0, 2.0], [10, 0], {'HBM': 10})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from solver.model import AT_START, TENSOR_KINDS, Copy, Free, Hardware, Recompute, Run, Schedule, Trace
from solver.timing import Report


@dataclass(frozen=True)
class Occupancy:
    """Bytes held per tier and tensor kind after each instant.

    Attributes
    ----------
    times : numpy.ndarray
        The instants (seconds, increasing); the state holds until the next one.
    tiers : tuple of str
    kinds : tuple of str
        Tensor kinds (:data:`solver.model.TENSOR_KINDS`; op workspace counts as ``workspace``).
    bytes : Mapping[str, numpy.ndarray]
        Per tier, an int64 array ``[len(times), len(kinds)]``.
    """

    times: np.ndarray
    tiers: tuple[str, ...]
    kinds: tuple[str, ...]
    bytes: Mapping[str, np.ndarray]

    def total(self, tier: str) -> np.ndarray:
        """Bytes held in ``tier`` after each instant."""
        return self.bytes[tier].sum(axis=1)

    def peak(self) -> dict[str, int]:
        """Largest bytes held per tier."""
        return {t: int(self.total(t).max()) if len(self.times) else 0 for t in self.tiers}


def occupancy(trace: Trace, hardware: Hardware, schedule: Schedule, report: Report) -> Occupancy:
    """Replay the memory of ``schedule`` on the times of ``report`` (the validator's verdict on it).

    Parameters
    ----------
    trace, hardware, schedule
        What was validated.
    report : Report
        :func:`solver.timing.validate` of them.

    Returns
    -------
    Occupancy
    """
    kinds = TENSOR_KINDS
    kind_ix = {k: i for i, k in enumerate(kinds)}
    ws_kind = kind_ix["workspace"]
    tiers = tuple(t.name for t in hardware.tiers)
    tier_ix = hardware.tier_index
    C = tier_ix[hardware.compute_tier]
    T, K = len(tiers), len(kinds)
    tkind = [kind_ix.get(t.kind, kind_ix["other"]) for t in trace.tensors]
    nbytes = [t.bytes for t in trace.tensors]
    usage = np.zeros((T, K), dtype=np.int64)
    present: set[tuple[int, int]] = set()
    alive = [0] * len(trace.tensors)      # 0 unborn, 1 alive, 2 dead

    def alloc(t: int, tier: int) -> None:
        if (t, tier) not in present:
            present.add((t, tier))
            usage[tier, tkind[t]] += nbytes[t]

    def release(t: int, tier: int) -> None:
        if (t, tier) in present:
            present.discard((t, tier))
            usage[tier, tkind[t]] -= nbytes[t]

    for t, tensor in enumerate(trace.tensors):
        if trace.birth[t] == AT_START and trace.death[t] != AT_START:
            alloc(t, tier_ix.get(tensor.initial_tier or hardware.compute_tier, C))
            alive[t] = 1

    tl = report.timeline
    events: list[tuple[float, int, int]] = []
    actions = schedule.actions
    for i, a in enumerate(actions):
        s, e = tl.starts[i], tl.ends[i]
        if s is None:
            continue
        if type(a) is Free:
            events.append((s, 1, i))
        else:
            events.append((s, 2, i))
            events.append((e if e is not None else s, 0, i))
    events.sort()
    op_ix, t_ix = trace.op_index, trace.tensor_index
    times: list[float] = []
    snaps: list[np.ndarray] = []
    now = None
    for time, phase, i in events:
        if now is not None and time != now:
            times.append(now)
            snaps.append(usage.copy())
        now = time
        a = actions[i]
        typ = type(a)
        if typ is Run or typ is Recompute:
            o = op_ix.get(a.op, -1)
            if o < 0:
                continue
            op = trace.ops[o]
            if phase == 2:
                for t in trace.op_updates[o]:
                    for tier in range(T):
                        if tier != C:
                            release(t, tier)
                for t in trace.op_writes[o]:
                    if typ is Recompute and alive[t] != 1:
                        continue
                    alive[t] = 1
                    alloc(t, C)
                usage[C, ws_kind] += op.workspace
            else:
                usage[C, ws_kind] -= op.workspace
                if typ is Run:
                    for t in trace.dies_after[o]:
                        for tier in range(T):
                            release(t, tier)
                        alive[t] = 2
        elif typ is Copy:
            t = t_ix.get(a.tensor, -1)
            if t < 0 or a.src not in tier_ix or a.dst not in tier_ix or alive[t] != 1:
                continue
            if phase == 2:
                alloc(t, tier_ix[a.dst])
            elif a.free_src:
                release(t, tier_ix[a.src])
        elif typ is Free:
            t = t_ix.get(a.tensor, -1)
            if t >= 0 and a.tier in tier_ix and alive[t] == 1:
                release(t, tier_ix[a.tier])
    if now is not None:
        times.append(now)
        snaps.append(usage.copy())
    arr = np.stack(snaps) if snaps else np.zeros((0, T, K), dtype=np.int64)
    return Occupancy(np.asarray(times, dtype=np.float64), tiers, kinds,
                     {name: arr[:, j, :] for j, name in enumerate(tiers)})
