"""Necessary conditions for any schedule to exist, with explanations that name ops and bytes.

Two things no plan can change: every op needs its inputs, updates, outputs and workspace
in the compute tier at once, and the tensors that start in the compute tier are all there
at time 0. (Capacity is checked after each instant, so an op of zero duration, which starts
and ends within one instant, and tensors that die within instant 0 are left out.)

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier
>>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, outputs=("x",), workspace=4),))
>>> print(infeasible_reason(tr, Hardware("h", "HBM", (Tier("HBM", 10),))))
op 'a' needs 12 bytes in HBM at once (inputs 0 + outputs 8 + workspace 4) but HBM holds 10 bytes
"""

from __future__ import annotations

from solver.model import AT_START, Hardware, Trace
from solver.units import format_bytes


def op_footprint_reason(trace: Trace, hardware: Hardware) -> str | None:
    """The first op whose own inputs, updates, outputs and workspace exceed the compute tier.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="x", bytes=8),), (Op(id="a", duration=1.0, outputs=("x",)),))
    >>> op_footprint_reason(tr, Hardware("h", "HBM", (Tier("HBM", 8),))) is None
    True
    """
    c = hardware.compute_tier
    cap = hardware.capacity[c]
    size = [t.bytes for t in trace.tensors]
    for i, op in enumerate(trace.ops):
        if op.duration == 0:
            continue    # it starts and ends within one instant; capacity is checked after each instant
        ins = sum(size[t] for t in trace.op_reads[i])
        outs = sum(size[t] for t in trace.op_writes[i])
        need = ins + outs + op.workspace
        if need > cap:
            return (f"op {op.id!r} needs {need} bytes in {c} at once (inputs {ins} + outputs {outs} + workspace "
                    f"{op.workspace}) but {c} holds {cap} bytes")
    return None


def held_at_start(trace: Trace, tier: str, compute_tier: str) -> list[int]:
    """The tensors every valid schedule holds in ``tier`` after instant 0.

    Those with no producer that start there, except any whose last use is one of the ops of zero
    duration at the head of the trace (they may all run, and the tensor die, within instant 0,
    before the first capacity check).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op
    >>> tr = Trace("t", (Tensor(id="a", bytes=1), Tensor(id="b", bytes=1)),
    ...            (Op(id="z", duration=0.0, inputs=("a",)), Op(id="f", duration=1.0, inputs=("b",))))
    >>> held_at_start(tr, "HBM", "HBM")
    [1]
    """
    instant = 0
    while instant < len(trace.ops) and trace.ops[instant].duration == 0:
        instant += 1
    return [i for i, t in enumerate(trace.tensors)
            if trace.birth[i] == AT_START and trace.death[i] >= 0 and (trace.death[i] >= instant or t.persistent)
            and (t.initial_tier or compute_tier) == tier]


def initial_reason(trace: Trace, hardware: Hardware) -> str | None:
    """Why the tensors that start in some tier do not fit there at time 0 (None if they do).

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier
    >>> tr = Trace("t", (Tensor(id="w", bytes=8, persistent=True),), (Op(id="a", duration=1.0, inputs=("w",)),))
    >>> print(initial_reason(tr, Hardware("h", "HBM", (Tier("HBM", 4),))))
    the tensors that start in HBM hold 8 B (8 bytes) at time 0 (largest: 'w' 8 B) but HBM holds 4 B (4 bytes); to fit, start some of them in another tier (their initial_tier; `generate train --optimizer-tier DDR` does this for optimizer states) or give HBM more room (a larger --budget or --capacity HBM=SIZE)
    """
    c = hardware.compute_tier
    for tier in [c] + [t.name for t in hardware.tiers if t.name != c]:
        cap = hardware.capacity[tier]
        start = [(trace.tensors[i].bytes, trace.tensors[i].id) for i in held_at_start(trace, tier, c)]
        total = sum(b for b, _ in start)
        if total > cap:
            top = ", ".join(f"{tid!r} {format_bytes(b)}" for b, tid in sorted(start, reverse=True)[:3])
            return (f"the tensors that start in {tier} hold {format_bytes(total)} ({total} bytes) at time 0 "
                    f"(largest: {top}) but {tier} holds {format_bytes(cap)} ({cap} bytes); to fit, start some of "
                    f"them in another tier (their initial_tier; `generate train --optimizer-tier DDR` does this for "
                    f"optimizer states) or give {tier} more room (a larger --budget or --capacity {tier}=SIZE)")
    return None


def infeasible_reason(trace: Trace, hardware: Hardware) -> str | None:
    """The first necessary condition that fails (see the module docstring), or None."""
    return op_footprint_reason(trace, hardware) or initial_reason(trace, hardware)
