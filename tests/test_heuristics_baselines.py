"""The baselines behave as the literature defines them (vDNN, Belady MIN with look-ahead, ZeRO-Offload)."""

from __future__ import annotations

import pytest

from heuristics_helpers import MiB, checked_solve
from solver.heuristics.phases import has_structure, layer_key, op_phases
from solver.methods import REGISTRY, SolveOptions, UnknownMethod, get_method, method_names
from solver.model import Copy, Free, Hardware, Link, Op, Tensor, Tier, Trace

GB = 1e9


def hw2(hbm: int, bw: float = 100 * GB) -> Hardware:
    return Hardware("hw", "HBM", (Tier("HBM", hbm), Tier("DDR", 2**40)),
                    (Link("HBM", "DDR", bw), Link("DDR", "HBM", bw)))


def train_like(layers: int = 4) -> Trace:
    """Forward layers L0..L{n-1} saving activations, a loss, backward layers in reverse order."""
    tensors = [Tensor(id="x", bytes=8 * MiB, kind="input")]
    ops = []
    prev = "x"
    for l in range(layers):
        a = f"L{l}.a"
        tensors.append(Tensor(id=a, bytes=32 * MiB, kind="activation"))
        ops.append(Op(id=f"L{l}.fwd", duration=2e-3, inputs=(prev,), outputs=(a,)))
        prev = a
    tensors.append(Tensor(id="g", bytes=8 * MiB, kind="gradient"))
    ops.append(Op(id="loss", duration=1e-3, inputs=(prev,), outputs=("g",)))
    g = "g"
    for l in reversed(range(layers)):
        inp = f"L{l - 1}.a" if l else "x"
        gi = f"L{l}.g"
        tensors.append(Tensor(id=gi, bytes=8 * MiB, kind="gradient"))
        ops.append(Op(id=f"L{l}.bwd", duration=4e-3, inputs=(g, inp), outputs=(gi,)))
        g = gi
    return Trace("train-like", tuple(tensors), tuple(ops))


def copies(schedule):
    return [a for a in schedule.actions if isinstance(a, Copy)]


def test_registry_lists_every_method_with_a_summary():
    assert set(method_names()) >= {"greedy", "keep", "vdnn", "belady", "zero-offload"}
    assert method_names()[0] == "greedy"
    assert all(m.summary for m in REGISTRY.values())
    with pytest.raises(UnknownMethod) as exc:
        get_method("magic")
    assert "greedy" in str(exc.value) and "belady" in str(exc.value)


def test_phase_detection():
    tr = train_like()
    ph = op_phases(tr)
    assert has_structure(ph)
    assert ph[:4] == ("F",) * 4 and set(ph[4:]) == {"B"}
    assert layer_key("mb0.L3.gate_up.dx") == "mb0.L3" and layer_key("relu") == "relu"


def test_vdnn_offloads_every_saved_activation_and_prefetches_a_layer_ahead():
    tr = train_like()
    out = checked_solve(tr, hw2(2**40), None, "vdnn")
    assert out.status == "feasible"
    moved = {c.tensor for c in copies(out.schedule) if c.src == "HBM"}
    # the activations and input read by the backward pass (the last forward output is read by the loss only)
    assert moved == {"x", "L0.a", "L1.a", "L2.a"}
    # the copy back of L{l-1}.a (read by L{l}.bwd) is issued when the previous backward layer starts
    back = {c.tensor: c for c in copies(out.schedule) if c.dst == "HBM"}
    assert back["L1.a"].after == ("loss",)         # read by L2.bwd: issued when L3.bwd (the layer before) starts
    # the next forward op waits for the copy out of the previous layer's input (vDNN's synchronisation)
    runs = {a.op: a for a in out.schedule.actions if not isinstance(a, (Copy, Free)) and hasattr(a, "op")}
    outs = {c.tensor: c.id for c in copies(out.schedule) if c.src == "HBM"}
    assert outs["L0.a"] in runs["L2.fwd"].after


def test_vdnn_without_structure_offloads_activations_with_a_gap():
    tensors = (Tensor(id="a", bytes=8 * MiB, kind="activation"), Tensor(id="b", bytes=8 * MiB, kind="activation"))
    ops = (Op(id="p", duration=1e-3, outputs=("a",)), Op(id="q", duration=1e-3, outputs=("b",)),
           Op(id="r", duration=1e-3, inputs=("b",)), Op(id="s", duration=1e-3, inputs=("a",)))
    out = checked_solve(Trace("flat", tensors, ops), hw2(2**40), None, "vdnn")
    assert {c.tensor for c in copies(out.schedule)} == {"a"}


def test_vdnn_says_infeasible_when_its_policy_does_not_fit():
    tr = train_like()
    # every op fits in 65 MiB, but prefetching a layer ahead needs two saved activations next to a backward op
    out = checked_solve(tr, hw2(65 * MiB), None, "vdnn")
    assert out.status == "infeasible" and out.message.startswith("vdnn")
    assert checked_solve(tr, hw2(65 * MiB), None, "greedy").status == "feasible"


def test_belady_evicts_the_farthest_next_use_on_demand():
    # a (used last) and b (used soon) are both resident when c arrives: MIN evicts a
    tensors = tuple(Tensor(id=t, bytes=16 * MiB, kind="activation") for t in ("a", "b", "c"))
    ops = (Op(id="pa", duration=1e-3, outputs=("a",)), Op(id="pb", duration=1e-3, outputs=("b",)),
           Op(id="pc", duration=1e-3, outputs=("c",)), Op(id="ub", duration=1e-3, inputs=("b", "c")),
           Op(id="x1", duration=1e-3), Op(id="x2", duration=1e-3), Op(id="x3", duration=1e-3),
           Op(id="ua", duration=1e-3, inputs=("a",)))
    out = checked_solve(Trace("min", tensors, ops), hw2(32 * MiB), None, "belady",
                        SolveOptions(extra={"window": 1}))
    assert out.status == "feasible"
    assert [c.tensor for c in copies(out.schedule) if c.src == "HBM"] == ["a"]
    # demand eviction: the op that needs the room (pc) waits for the copy out
    pc = next(a for a in out.schedule.actions if getattr(a, "op", None) == "pc" and not isinstance(a, Copy))
    assert any(d.startswith("out") for d in pc.after)
    # look-ahead 1: the copy back is issued after the op two before its reader
    back = next(c for c in copies(out.schedule) if c.dst == "HBM")
    assert back.after[0] == "x2"


def test_belady_drops_a_clean_weight_instead_of_copying_it_back():
    tensors = (Tensor(id="w", bytes=16 * MiB, kind="weight", initial_tier="DDR", persistent=True),
               Tensor(id="a", bytes=16 * MiB), Tensor(id="b", bytes=16 * MiB))
    ops = (Op(id="u1", duration=1e-3, inputs=("w",)), Op(id="pa", duration=1e-3, outputs=("a",)),
           Op(id="pb", duration=1e-3, inputs=("a",), outputs=("b",)), Op(id="x", duration=1e-3, inputs=("b",)),
           Op(id="u2", duration=1e-3, inputs=("w",)))
    out = checked_solve(Trace("clean", tensors, ops), hw2(32 * MiB), None, "belady")
    assert out.status == "feasible"
    assert not [c for c in copies(out.schedule) if c.tensor == "w" and c.src == "HBM"]
    assert any(isinstance(a, Free) and a.tensor == "w" for a in out.schedule.actions)


def test_zero_offload_moves_only_optimizer_states():
    tensors = (Tensor(id="w", bytes=8 * MiB, kind="weight", persistent=True),
               Tensor(id="m", bytes=32 * MiB, kind="optimizer_state", persistent=True),
               Tensor(id="a", bytes=16 * MiB, kind="activation"), Tensor(id="g", bytes=8 * MiB, kind="gradient"))
    ops = (Op(id="f", duration=4e-3, inputs=("w",), outputs=("a",)), Op(id="f2", duration=4e-3),
           Op(id="b", duration=4e-3, inputs=("a", "w"), outputs=("g",)),
           Op(id="adam", duration=1e-3, inputs=("g",), updates=("m", "w")))
    out = checked_solve(Trace("z", tensors, ops), hw2(2**40), None, "zero-offload")
    assert out.status == "feasible"
    assert {c.tensor for c in copies(out.schedule)} == {"m"}
    assert out.report.metrics.overhead == 0.0


def test_keep_moves_nothing_extra():
    out = checked_solve(train_like(), hw2(2**40), None, "keep")
    assert out.status == "feasible" and copies(out.schedule) == []
