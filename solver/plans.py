"""Building blocks for planners: routes between tiers and the keep-everything schedule.

Examples
--------
>>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Link
>>> tr = Trace("t", (Tensor(id="w", bytes=8, initial_tier="DDR", persistent=True),),
...            (Op(id="a", duration=1.0, inputs=("w",)),))
>>> hw = Hardware("h", "HBM", (Tier("HBM", 10), Tier("DDR", 10)), (Link("DDR", "HBM", 8.0),))
>>> [type(a).__name__ for a in keep_schedule(tr, hw).actions]
['Copy', 'Run']
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from solver.model import Action, Copy, Hardware, Run, Schedule, Trace


def route(hardware: Hardware, src: str, dst: str, nbytes: int = 1) -> list[str] | None:
    """Fastest sequence of tiers from ``src`` to ``dst`` along declared links (None if unreachable).

    Examples
    --------
    >>> from solver.model import Hardware, Tier, Link
    >>> hw = Hardware("h", "HBM", (Tier("HBM", 1), Tier("DDR", 1), Tier("SSD", 1)),
    ...               (Link("HBM", "DDR", 10.0), Link("DDR", "SSD", 1.0)))
    >>> route(hw, "HBM", "SSD")
    ['HBM', 'DDR', 'SSD']
    """
    if src == dst:
        return [src]
    g = nx.DiGraph()
    g.add_nodes_from(t.name for t in hardware.tiers)
    for lk in hardware.links:
        g.add_edge(lk.src, lk.dst, weight=lk.copy_time(nbytes))
    try:
        return list(nx.shortest_path(g, src, dst, weight="weight"))
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return None


def keep_schedule(trace: Trace, hardware: Hardware, capacity: Mapping[str, int] | None = None,
                  solver: Mapping[str, object] | None = None) -> Schedule:
    """The no-offload schedule: run every op in order, everything stays in the compute tier.

    Tensors that start off the compute tier are fetched once, at time 0 (along the fastest
    route); persistent tensors with a ``final_tier`` whose copy there is stale or missing are
    written back after their last use.

    Raises
    ------
    ValueError
        When a tensor cannot reach the compute tier (or its final tier) along declared links.
    """
    C = hardware.compute_tier
    actions: list[Action] = []
    ready: dict[int, list[str]] = {}     # tensor -> copy ids the first user must wait for
    for t, tensor in enumerate(trace.tensors):
        home = tensor.initial_tier or C
        if trace.producer[t] >= 0 or home == C:
            continue
        if not trace.users[t] and not (tensor.persistent and tensor.final_tier == C):
            continue
        path = route(hardware, home, C, tensor.bytes)
        if path is None:
            raise ValueError(f"tensor {tensor.id!r} in {home} cannot reach {C}: no route of links")
        prev: list[str] = []
        for k in range(len(path) - 1):
            cid = f"fetch:{tensor.id}:{path[k + 1]}"
            # intermediate hops release their staging copy; the home copy stays valid
            actions.append(Copy(id=cid, tensor=tensor.id, src=path[k], dst=path[k + 1],
                                free_src=k > 0, after=tuple(prev)))
            prev = [cid]
        ready[t] = prev
    writebacks: dict[int, list[Action]] = {}
    for t, tensor in enumerate(trace.tensors):
        ft = tensor.final_tier
        if not tensor.persistent or ft is None or ft == C:
            continue
        home = tensor.initial_tier or C
        if trace.producer[t] < 0 and home == ft and not any(t in trace.op_updates[o] for o in trace.users[t]):
            continue   # its copy in the final tier is still valid
        last = max(trace.users[t]) if trace.users[t] else trace.producer[t]
        src = home if last < 0 else C     # never brought into C: copy it from where it starts
        path = route(hardware, src, ft, tensor.bytes)
        if path is None:
            raise ValueError(f"tensor {tensor.id!r} cannot reach its final tier {ft} from {src}")
        after = (trace.ops[last].id,) if last >= 0 else ()
        chain: list[Action] = []
        for k in range(len(path) - 1):
            cid = f"writeback:{tensor.id}:{path[k + 1]}"
            chain.append(Copy(id=cid, tensor=tensor.id, src=path[k], dst=path[k + 1],
                              free_src=k > 0, after=after))
            after = (cid,)
        writebacks.setdefault(max(last, 0), []).extend(chain)
    for i, op in enumerate(trace.ops):
        waits: list[str] = []
        for t in trace.op_reads[i]:
            if t in ready:
                waits.extend(ready.pop(t))
        actions.append(Run(op=op.id, after=tuple(waits)))
        actions.extend(writebacks.pop(i, ()))
    return Schedule(trace.name, hardware.name, tuple(actions), dict(capacity or {}),
                    dict(solver or {"method": "keep"}))
