"""Helpers for the solve / heuristics / bounds tests: random instances and a checked solve.

``random_instance(rng)`` draws a small trace and hardware that exercise what the
planners must handle: tensors that start in DDR or SSD, persistent tensors with final
tiers, in-place updates (stale copies), workspace, zero-duration ops, ops that may not be
recomputed, one to three tiers, shared (half-duplex) channels, one-way links and small
lower tiers. ``checked_solve`` runs the driver and checks what every solve must satisfy.
"""

from __future__ import annotations

import math
import random
from typing import Any

from solver.methods import SolveOptions
from solver.model import Hardware, Link, Op, Tensor, Tier, Trace
from solver.solve import SolveOutcome, make_instance, solve
from solver.timing import validate

MiB = 2**20


def random_trace(rng: random.Random, n_ops: int | None = None) -> Trace:
    """A random valid trace (tiers named HBM, DDR, SSD)."""
    n_ops = n_ops if n_ops is not None else rng.randint(1, 14)
    tensors: list[Tensor] = []
    ops: list[Op] = []
    pool: list[str] = []
    initial: list[str] = []
    for i in range(rng.randint(0, 4)):
        tid = f"w{i}"
        home = rng.choice([None, None, "DDR", "SSD"])
        persistent = rng.random() < 0.7
        final = rng.choice([None, None, home, "DDR", "HBM"]) if persistent else None
        tensors.append(Tensor(id=tid, bytes=rng.randint(1, 8) * MiB, kind=rng.choice(["weight", "optimizer_state"]),
                              initial_tier=home, persistent=persistent, final_tier=final))
        pool.append(tid)
        initial.append(tid)
    k = 0
    for i in range(n_ops):
        ins = rng.sample(pool, min(len(pool), rng.randint(0, 3))) if pool else []
        upd = []
        if initial and rng.random() < 0.15:
            u = rng.choice(initial)
            if u not in ins:
                upd.append(u)
        outs = []
        for _ in range(rng.choice([0, 1, 1, 1, 2])):
            tid = f"t{k}"
            k += 1
            persistent = rng.random() < 0.1
            tensors.append(Tensor(id=tid, bytes=rng.randint(1, 16) * MiB,
                                  kind=rng.choice(["activation", "activation", "gradient", "other"]),
                                  persistent=persistent,
                                  final_tier=rng.choice([None, "DDR"]) if persistent else None))
            outs.append(tid)
        dur = rng.choice([0.0, 1e-4, 5e-4, 1e-3, 2e-3, 4e-3])
        ws = rng.choice([0, 0, 0, MiB, 4 * MiB])
        ops.append(Op(id=f"op{i}", duration=dur, kind=rng.choice(["fwd", "bwd", "layer"]), inputs=tuple(ins),
                      outputs=tuple(outs), updates=tuple(upd), workspace=ws, recomputable=rng.random() < 0.85))
        pool.extend(outs)
    return Trace("rand", tuple(tensors), tuple(ops))


def random_hardware(rng: random.Random, trace: Trace) -> Hardware:
    """Random hardware with the tiers the trace names (and maybe more)."""
    needs = {t.initial_tier for t in trace.tensors} | {t.final_tier for t in trace.tensors}
    needs.discard(None)
    tiers = ["HBM"]
    if "DDR" in needs or "SSD" in needs or rng.random() < 0.8:
        tiers.append("DDR")
    if "SSD" in needs or ("DDR" in tiers and rng.random() < 0.3):
        tiers.append("SSD")
    total = sum(t.bytes for t in trace.tensors) or MiB
    caps = {"HBM": total * 4}
    for x in tiers[1:]:
        caps[x] = rng.choice([total * 4, total * 4, max(MiB, total // rng.randint(2, 6))])
    links = []
    bw = lambda: rng.choice([1e9, 4e9, 16e9, 64e9])  # noqa: E731
    lat = lambda: rng.choice([0.0, 1e-6, 1e-5])  # noqa: E731
    if "DDR" in tiers:
        shared = rng.random() < 0.25
        ch = "pcie" if shared else None
        links.append(Link("HBM", "DDR", bw(), lat(), ch))
        if rng.random() < 0.9:
            links.append(Link("DDR", "HBM", bw(), lat(), ch))
    if "SSD" in tiers:
        links.append(Link("SSD", "DDR", bw() / 4, lat()))
        if rng.random() < 0.8:
            links.append(Link("DDR", "SSD", bw() / 8, lat()))
        if rng.random() < 0.2:
            links.append(Link("SSD", "HBM", bw() / 4, lat()))
    return Hardware("rand-hw", "HBM", tuple(Tier(x, caps[x]) for x in tiers), tuple(links))


def random_budget(rng: random.Random) -> float:
    """A budget fraction (sometimes above 1)."""
    return rng.choice([1.2, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])


def checked_solve(trace: Trace, hardware: Hardware, budget: float | None, method: str,
                  options: SolveOptions | None = None) -> SolveOutcome:
    """Solve through the driver and check the invariants every solve must satisfy.

    * the status is never ``error`` (a planner's invalid schedule is a bug);
    * a returned schedule is valid when checked against the *original* hardware with its own
      ``capacity`` field, the budget given as an explicit override (a budget above the device is a
      deliberate what-if, like ``--capacity``: a schedule's own field may only lower a tier), and
      records the capacity, method, objective and bound;
    * the bound never exceeds the validated makespan.
    """
    inst = make_instance(trace, hardware, None, budget)
    out = solve(inst, method, options)
    assert out.status != "error", f"{method}: {out.message}"
    if out.ok:
        sched = out.schedule
        assert dict(sched.capacity) == dict(inst.capacity)
        rep = validate(trace, hardware, sched, dict(inst.capacity))
        assert rep.valid, f"{method}: {[str(e) for e in rep.errors[:3]]}"
        assert sched.solver["method"] == method and sched.solver["objective"] == rep.metrics.makespan
        bound = out.bound
        assert bound is not None and bound <= rep.metrics.makespan * (1 + 1e-9) + 1e-12, \
            f"{method}: bound {out.bounds} > makespan {rep.metrics.makespan}"
        if out.gap is not None:
            assert out.gap >= -1e-9
    else:
        assert out.schedule is None and out.message
    return out


def describe(trace: Trace, hardware: Hardware) -> dict[str, Any]:
    """A compact dump for failure messages."""
    return {"tensors": [(t.id, t.bytes // MiB, t.initial_tier, t.persistent, t.final_tier) for t in trace.tensors],
            "ops": [(o.id, o.duration, o.inputs, o.outputs, o.updates, o.workspace, o.recomputable)
                    for o in trace.ops],
            "tiers": [(t.name, t.capacity) for t in hardware.tiers],
            "links": [(lk.src, lk.dst, lk.bandwidth, lk.latency, lk.channel) for lk in hardware.links]}


__all__ = ["random_trace", "random_hardware", "random_budget", "checked_solve", "describe", "MiB", "math"]
