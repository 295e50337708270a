"""Benchmark: import a synthetic 30,000-node PyTorch Execution Trace (and its Kineto trace).

The synthetic ET has the shape of a real training step (schema 1.1.1, as PyTorch 2.x writes):
per layer a forward ``aten::linear`` (with nested ``aten::t``/``aten::transpose``/``aten::addmm``
calls) and ``aten::relu``; per layer in backward an ``autograd::engine::evaluate_function``
wrapper around the backward node and its ``aten::mm`` / ``aten::sum`` calls, two
``AccumulateGrad`` wrappers; then an ``Optimizer.step`` annotation with in-place updates. Storage
ids are recycled like the caching allocator does, so the importer's versioning is exercised. The
paired Kineto trace has one CPU event per node and one kernel per leaf call.

Usage::

    python -m solver.perf.importers [--nodes 30000] [--repeat 3] [--keep DIR]

Prints the node count and the best wall time of each import (reading and decoding the gzip'd
files included).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from typing import Any

from solver.formats import trace_from_document
from solver.importers.pytorch_et import import_pytorch_et


def synth_et(target_nodes: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A synthetic ET document with about ``target_nodes`` nodes, and its Kineto document."""
    nodes: list[dict[str, Any]] = [
        {"id": 1, "name": "[pytorch|profiler|execution_trace|process]", "ctrl_deps": 1,
         "inputs": {"values": [], "shapes": [], "types": []}, "outputs": {"values": [], "shapes": [], "types": []},
         "attrs": []},
        {"id": 2, "name": "[pytorch|profiler|execution_trace|thread]", "ctrl_deps": 1,
         "inputs": {"values": [], "shapes": [], "types": []}, "outputs": {"values": [], "shapes": [], "types": []},
         "attrs": [{"name": "rf_id", "type": "uint64", "value": 0}, {"name": "scope", "type": "uint64", "value": 7}]},
    ]
    events: list[dict[str, Any]] = []
    state: dict[str, Any] = {"id": 3, "ts": 1000.0, "sid": 100, "corr": 1}
    free: list[int] = []
    hidden, batch = 1024, 64

    def storage() -> int:
        if free:
            return free.pop()
        state["sid"] += 2
        return state["sid"]

    def ten(sid: int, numel: int) -> list[Any]:
        return [sid + 1, sid, 0, numel, 4, "cuda:0"]

    def node(name: str, parent: int, ins: list[list[Any]], outs: list[list[Any]], schema: str = "",
             scope: int = 0, kernel: bool = False) -> int:
        nid = state["id"]
        state["id"] += 1

        def block(ts: list[list[Any]]) -> dict[str, Any]:
            return {"values": ts, "shapes": [[t[3]] for t in ts], "types": ["Tensor(float)"] * len(ts),
                    "strides": [[1] for _ in ts]}

        nodes.append({"id": nid, "name": name, "ctrl_deps": parent, "inputs": block(ins), "outputs": block(outs),
                      "attrs": [{"name": "rf_id", "type": "uint64", "value": nid},
                                {"name": "scope", "type": "uint64", "value": scope},
                                {"name": "tid", "type": "uint64", "value": 1},
                                {"name": "op_schema", "type": "string", "value": schema}]})
        cat = "user_annotation" if scope == 7 else "cpu_op"
        events.append({"ph": "X", "cat": cat, "name": name, "pid": 1, "tid": 1, "ts": state["ts"], "dur": 5.0,
                       "args": {"External id": nid, "Record function id": nid}})
        if kernel:
            corr = state["corr"]
            state["corr"] += 1
            events.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1,
                           "ts": state["ts"] + 1, "dur": 2.0, "args": {"correlation": corr}})
            events.append({"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": state["ts"] + 3,
                           "dur": 20.0, "args": {"correlation": corr, "External id": nid}})
        state["ts"] += 1.0
        return nid

    inplace = "aten::add_.Tensor(Tensor(a!) self, Tensor other, *, Scalar alpha=1) -> Tensor(a!)"
    per_layer = 6 + 4 + 2 * 3 + 2 + 2   # forward, backward, accumulate, relu backward, optimizer nodes
    layers = max(1, -(-(target_nodes - 4) // per_layer))
    weights = [(storage(), hidden * hidden) for _ in range(layers)]
    biases = [(storage(), hidden) for _ in range(layers)]
    x = ten(storage(), batch * hidden)
    step = node("ProfilerStep#1", 2, [], [], scope=7)
    acts = [x]
    for i in range(layers):
        w, b = ten(*weights[i]), ten(*biases[i])
        out = ten(storage(), batch * hidden)
        lin = node("aten::linear", step, [acts[-1], w, b], [out])
        tr = node("aten::t", lin, [w], [w])
        node("aten::transpose", tr, [w], [w])
        node("aten::addmm", lin, [b, acts[-1], w], [out], kernel=True)
        act = ten(storage(), batch * hidden)
        relu = node("aten::relu", step, [out], [act])
        node("aten::clamp_min", relu, [out], [act], kernel=True)
        free.append(out[1])  # the pre-activation is freed: its memory is reused
        acts.append(act)
    grad = ten(storage(), batch * hidden)
    grads: list[list[Any]] = []
    for i in reversed(range(layers)):
        w = ten(*weights[i])
        ev = node("autograd::engine::evaluate_function: AddmmBackward0", step, [], [])
        bn = node("AddmmBackward0", ev, [grad], [])
        gin = ten(storage(), batch * hidden)
        gw = ten(storage(), hidden * hidden)
        gb = ten(storage(), hidden)
        node("aten::mm", bn, [grad, w], [gin], kernel=True)
        node("aten::mm", bn, [grad, acts[i]], [gw], kernel=True)
        for g in (gw, gb):
            acc = node("autograd::engine::evaluate_function: torch::autograd::AccumulateGrad", step, [], [])
            inner = node("torch::autograd::AccumulateGrad", acc, [g], [], scope=1)
            node("aten::detach", inner, [g], [g])
        ev2 = node("autograd::engine::evaluate_function: ReluBackward0", step, [], [])
        node("aten::threshold_backward", ev2, [gin, acts[i]], [ten(storage(), batch * hidden)], kernel=True)
        free.append(grad[1])
        grad = gin
        grads += [gw, gb]
    opt = node("Optimizer.step#SGD.step", step, [], [], scope=7)
    params = [p for pair in zip(reversed(weights), reversed(biases)) for p in pair]
    for g, (sid, numel) in zip(grads, params):
        node("aten::add_", opt, [ten(sid, numel), g], [ten(sid, numel)], schema=inplace, kernel=True)
    return ({"schema": "1.1.1-chakra.0.0.4", "pid": 1, "time": "", "start_ts": 0, "finish_ts": 0, "nodes": nodes},
            {"schemaVersion": 1, "traceEvents": events})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=30000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="write the synthetic files into this folder")
    args = ap.parse_args()
    et, kineto = synth_et(args.nodes)
    folder = args.keep or tempfile.mkdtemp(prefix="bench_import_")
    os.makedirs(folder, exist_ok=True)
    et_path, k_path = os.path.join(folder, "synth_et.json.gz"), os.path.join(folder, "synth_kineto.json.gz")
    with open(et_path, "wb") as fh:
        fh.write(gzip.compress(json.dumps(et).encode(), mtime=0))
    with open(k_path, "wb") as fh:
        fh.write(gzip.compress(json.dumps(kineto).encode(), mtime=0))
    print(f"ET nodes: {len(et['nodes'])}, Kineto events: {len(kineto['traceEvents'])}")
    runs: list[tuple[str, dict[str, Any]]] = [("ET only (roofline durations)", {}), ("ET + Kineto", {"kineto": k_path})]
    for label, kw in runs:
        best = float("inf")
        result = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = import_pytorch_et(et_path, **kw)
            best = min(best, time.perf_counter() - t0)
        assert result is not None
        doc = result.document
        trace = trace_from_document(doc, file=et_path)   # the output is a valid trace (not timed)
        print(f"{label}: best of {args.repeat}: {best:.2f} s -> {len(doc['ops'])} ops, {len(doc['tensors'])} tensors, "
              f"durations={doc['meta']['durations']}, no-offload peak {trace.no_offload_peak} B")


if __name__ == "__main__":
    main()
