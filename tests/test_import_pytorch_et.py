"""Importer ``pytorch-et``: synthetic Execution Traces for the rules, and the real ones in ../shared/traces."""

from __future__ import annotations

import gzip
import json
import tarfile

import pytest
from test_import_helpers import assert_greedy_valid, assert_keep_valid, load_checked, shared_file

from solver.cli import main
from solver.errors import InputError
from solver.importers.pytorch_et import import_pytorch_et
from solver.importers.roofline import Roofline


class EtBuilder:
    """Builds a schema-1.1 Execution Trace (ctrl_deps, attrs) node by node."""

    def __init__(self) -> None:
        self.nodes = [{"id": 1, "name": "[pytorch|profiler|execution_trace|process]", "ctrl_deps": 1},
                      {"id": 2, "name": "[pytorch|profiler|execution_trace|thread]", "ctrl_deps": 1}]
        self.next_id = 3

    def node(self, name, parent=2, inputs=(), outputs=(), schema="", scope=0):
        nid = self.next_id
        self.next_id += 1

        def block(ts):
            return {"values": [list(t) for t in ts], "shapes": [[t[3]] for t in ts],
                    "types": ["Tensor(float)"] * len(ts)}

        self.nodes.append({"id": nid, "name": name, "ctrl_deps": parent, "inputs": block(inputs),
                           "outputs": block(outputs),
                           "attrs": [{"name": "rf_id", "type": "uint64", "value": nid},
                                     {"name": "scope", "type": "uint64", "value": scope},
                                     {"name": "op_schema", "type": "string", "value": schema}]})
        return nid

    def doc(self):
        return {"schema": "1.1.1-chakra.0.0.4", "nodes": self.nodes}


def t(storage, numel=256, device="cuda:0", tid=None, offset=0):
    """A tensor argument: [tensor_id, storage_id, offset, numel, elem_bytes, device]."""
    return (tid if tid is not None else storage + 1000, storage, offset, numel, 4, device)


def by_id(doc):
    return {o["id"]: o for o in doc["ops"]}, {x["id"]: x for x in doc["tensors"]}


def test_views_nesting_storage_reuse_and_updates():
    b = EtBuilder()
    lin = b.node("aten::linear", inputs=[t(10), t(11, 64)], outputs=[t(12)])
    b.node("aten::t", parent=lin, inputs=[t(11, 64)], outputs=[t(11, 64, tid=99)])      # a view
    b.node("aten::addmm", parent=lin, inputs=[t(11, 64), t(10)], outputs=[t(12)])         # makes the result
    b.node("aten::relu", inputs=[t(12)], outputs=[t(13)])
    b.node("aten::add_", inputs=[t(13), t(10)], outputs=[t(13)],
           schema="aten::add_.Tensor(Tensor(a!) self, Tensor other, *, Scalar alpha=1) -> Tensor(a!)")
    b.node("aten::mul", inputs=[t(13), t(13)], outputs=[t(12)])       # storage 12 reused: a new tensor
    b.node("aten::sum", inputs=[t(12)], outputs=[t(14, 1)])
    r = import_pytorch_et(b.doc())
    ops, tensors = by_id(r.document)
    assert list(ops) == ["linear#3", "relu#6", "add#7", "mul#8", "sum#9"]
    assert ops["linear#3"]["inputs"] == ["s10", "s11"] and ops["linear#3"]["outputs"] == ["s12"]
    assert ops["add#7"]["updates"] == ["s13"] and ops["add#7"]["inputs"] == ["s10"]
    assert not ops["add#7"]["recomputable"]
    assert ops["mul#8"]["outputs"] == ["s12.1"]
    assert ops["sum#9"]["outputs"] == ["s14"]          # the final result stays an output
    assert tensors["s11"]["bytes"] == 256 and tensors["s12"]["bytes"] == 1024
    assert tensors["s10"]["persistent"] and not tensors["s12"].get("persistent", False)
    trace = load_checked(r.document)
    assert_keep_valid(trace)
    assert r.document["meta"]["durations"] == "roofline"
    assert any("roofline" in w for w in r.warnings)


def test_scratch_memory_becomes_workspace():
    b = EtBuilder()
    op = b.node("aten::cross_entropy_loss", inputs=[t(20)], outputs=[t(23, 1)])
    b.node("aten::log_softmax", parent=op, inputs=[t(20)], outputs=[t(21)])
    b.node("aten::exp", parent=op, inputs=[t(21)], outputs=[t(22)])
    b.node("aten::nll_loss", parent=op, inputs=[t(22)], outputs=[t(23, 1)])
    b.node("aten::neg", inputs=[t(23, 1)], outputs=[t(24, 1)])
    r = import_pytorch_et(b.doc())
    ops, tensors = by_id(r.document)
    loss = ops["cross_entropy_loss#3"]
    assert loss["outputs"] == ["s23"] and loss["workspace"] == 2048   # s21 and s22 live together
    assert "s21" not in tensors and "s22" not in tensors
    load_checked(r.document)


def test_annotations_phases_kinds_and_steps():
    b = EtBuilder()
    step = b.node("ProfilerStep#4", scope=7)
    b.node("aten::mm", parent=step, inputs=[t(1), t(2)], outputs=[t(3)])           # forward: w=s2, x=s1
    bwd = b.node("autograd::engine::evaluate_function: MmBackward0", parent=step)
    b.node("aten::mm", parent=bwd, inputs=[t(3), t(1)], outputs=[t(4)])            # grad of w
    acc = b.node("autograd::engine::evaluate_function: torch::autograd::AccumulateGrad", parent=step)
    b.node("aten::detach", parent=acc, inputs=[t(4)], outputs=[t(4, tid=77)])
    opt = b.node("Optimizer.step#SGD.step", parent=step, scope=7)
    inplace = "aten::add_.Tensor(Tensor(a!) self, Tensor other, *, Scalar alpha=1) -> Tensor(a!)"
    b.node("aten::mul_", parent=opt, inputs=[t(5), t(4)], outputs=[t(5)],
           schema="aten::mul_.Tensor(Tensor(a!) self, Tensor other) -> Tensor(a!)")   # momentum buffer
    b.node("aten::add_", parent=opt, inputs=[t(2), t(5)], outputs=[t(2)], schema=inplace)
    b.node("aten::relu", inputs=[t(9, 8, device="cpu")], outputs=[t(8, 8, device="cpu")])   # another device
    step2 = b.node("ProfilerStep#5", scope=7)
    b.node("aten::mm", parent=step2, inputs=[t(1), t(2)], outputs=[t(6)])
    r = import_pytorch_et(b.doc())
    _, tensors = by_id(r.document)
    kinds = {k: v["kind"] for k, v in tensors.items()}
    assert kinds["s2"] == "weight" and kinds["s1"] == "input" and kinds["s5"] == "optimizer_state"
    assert kinds["s3"] == "activation" and kinds["s4"] == "gradient"
    assert any("2 profiler steps" in w for w in r.warnings)
    assert any("other devices" in w and "cpu" in w for w in r.warnings)
    assert r.document["meta"]["device"] == "cuda:0"
    opt_ops = [o for o in r.document["ops"] if o["id"].startswith(("mul#", "add#"))]
    assert all(not o["recomputable"] for o in opt_ops)
    load_checked(r.document)
    only = import_pytorch_et(b.doc(), profiler_step=5)
    assert [o["id"] for o in only.document["ops"]] == ["mm#14"]
    grads = import_pytorch_et(b.doc(), persistent_grads=True)
    assert by_id(grads.document)[1]["s4"].get("persistent")
    with pytest.raises(InputError, match="no ProfilerStep#9"):
        import_pytorch_et(b.doc(), profiler_step=9)
    with pytest.raises(InputError, match="no tensor on device"):
        import_pytorch_et(b.doc(), device="cuda:7")


def test_kineto_record_function_join_and_kernel_time():
    b = EtBuilder()
    a = b.node("aten::mm", inputs=[t(1), t(2)], outputs=[t(3)])
    c = b.node("aten::relu", inputs=[t(3)], outputs=[t(4)])
    b.node("aten::view", inputs=[t(4)], outputs=[t(4, tid=5)])
    ev = [
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 100, "dur": 20,
         "args": {"External id": 7, "Record function id": a}},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 105, "dur": 5,
         "args": {"correlation": 50}},
        {"ph": "X", "cat": "kernel", "name": "gemm", "pid": 0, "tid": 7, "ts": 130, "dur": 300,
         "args": {"correlation": 50}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::relu", "pid": 1, "tid": 1, "ts": 130, "dur": 10,
         "args": {"External id": 8, "Record function id": c}},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 1, "tid": 1, "ts": 132, "dur": 5,
         "args": {"correlation": 51}},
        {"ph": "X", "cat": "kernel", "name": "relu", "pid": 0, "tid": 7, "ts": 431, "dur": 40,
         "args": {"correlation": 51}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::view", "pid": 1, "tid": 1, "ts": 150, "dur": 3,
         "args": {"External id": 9, "Record function id": c + 1}},
    ]
    r = import_pytorch_et(b.doc(), kineto={"traceEvents": ev})
    ops, _ = by_id(r.document)
    assert ops["mm#3"]["duration"] == pytest.approx(300e-6)
    assert ops["relu#4"]["duration"] == pytest.approx(40e-6)
    assert ops["view#5"]["duration"] == pytest.approx(3e-6)        # no kernel: CPU time
    meta = r.document["meta"]
    assert meta["durations"] == "kineto" and meta["kineto"]["join"] == "record-function-id"
    zero = import_pytorch_et(b.doc(), kineto={"traceEvents": ev}, kernelless="zero")
    assert by_id(zero.document)[0]["view#5"]["duration"] == 0.0
    with pytest.raises(InputError, match="cpu or zero"):
        import_pytorch_et(b.doc(), kernelless="gpu")
    # without Record function id: name alignment picks the matching window among two iterations
    for e in ev:
        e["args"].pop("Record function id", None)
    shifted = [dict(e, ts=e["ts"] + 10_000, args=dict(e["args"], correlation=e["args"].get("correlation", 0) + 100))
               for e in ev]
    r2 = import_pytorch_et(b.doc(), kineto={"traceEvents": ev + shifted})
    assert r2.document["meta"]["kineto"]["join"] == "name-alignment"
    assert by_id(r2.document)[0]["mm#3"]["duration"] == pytest.approx(300e-6)


def test_roofline_options_change_estimates():
    b = EtBuilder()
    b.node("aten::mm", inputs=[t(1, 64 * 64), t(2, 64 * 64)], outputs=[t(3, 64 * 64)])
    doc = b.doc()
    doc["nodes"][-1]["inputs"]["shapes"] = [[64, 64], [64, 64]]
    slow = import_pytorch_et(doc, roofline=Roofline(peak_flops=1e9, flop_efficiency=1.0, bandwidth=1e15))
    assert slow.document["ops"][0]["duration"] == pytest.approx(2 * 64 ** 3 / 1e9)
    assert slow.document["meta"]["roofline"]["peak_flops"] == 1e9


@pytest.mark.parametrize("doc, message", [
    ([], "PyTorch Execution Trace"),
    ({"nodes": [{"id": "x", "name": "a", "parent": 1}]}, r"nodes\[0\].id"),
    ({"nodes": [{"id": 3, "name": 5, "ctrl_deps": 1}]}, r"nodes\[0\].name"),
    ({"nodes": [{"id": 3, "name": "a"}]}, r"nodes\[0\].parent"),
    ({"nodes": [{"id": 3, "name": "a", "parent": 1}, {"id": 3, "name": "b", "parent": 1}]}, "more than once"),
])
def test_malformed_execution_traces(doc, message):
    with pytest.raises(InputError, match=message):
        import_pytorch_et(doc)


def test_malformed_kineto():
    b = EtBuilder()
    b.node("aten::relu", inputs=[t(1)], outputs=[t(2)])
    with pytest.raises(InputError, match="traceEvents"):
        import_pytorch_et(b.doc(), kineto={"foo": 1})
    with pytest.raises(InputError, match="no CPU op events"):
        import_pytorch_et(b.doc(), kineto={"traceEvents": [{"ph": "X", "cat": "kernel", "ts": 1, "dur": 1}]})


def test_cli_truncated_and_malformed_files(tmp_path, capsys):
    b = EtBuilder()
    b.node("aten::relu", inputs=[t(1)], outputs=[t(2)])
    good = tmp_path / "et.json.gz"
    good.write_bytes(gzip.compress(json.dumps(b.doc()).encode()))
    out = tmp_path / "out.json.gz"
    assert main(["import", "pytorch-et", str(good), "-o", str(out), "--op-overhead", "1us"]) == 0
    doc = json.loads(gzip.decompress(out.read_bytes()))
    assert doc["ops"][0]["duration"] >= 1e-6
    truncated = tmp_path / "trunc.json.gz"
    truncated.write_bytes(good.read_bytes()[:40])
    half = tmp_path / "half.json"
    half.write_text(json.dumps(b.doc())[:100])
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"nodes": [{"id": 1}]}))
    for path, text in ((truncated, "trunc.json.gz"), (half, "malformed JSON"), (wrong, "nodes[0].name"),
                       (tmp_path / "missing.json", "cannot read file")):
        capsys.readouterr()
        assert main(["import", "pytorch-et", str(path), "-o", str(tmp_path / "x.json")]) == 2
        err = capsys.readouterr().err
        assert text in err and "Traceback" not in err
    capsys.readouterr()
    assert main(["import", "pytorch-et", str(good), "--kineto", str(half), "-o", str(tmp_path / "x.json")]) == 2
    assert "half.json" in capsys.readouterr().err
    archive = tmp_path / "ranks.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(good, arcname="d/et_0.json.gz")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(archive.read_bytes()[:30])
    assert main(["import", "pytorch-et", str(broken), "-o", str(tmp_path / "x.json")]) == 2
    assert main(["import", "pytorch-et", str(archive), "--rank", "3", "-o", str(tmp_path / "x.json")]) == 2
    assert "no member for rank 3" in capsys.readouterr().err
    assert main(["import", "pytorch-et", str(archive), "--rank", "0", "-o", str(tmp_path / "x.json")]) == 0


# --- real traces (../shared/traces) ----------------------------------------------------------------


def kineto_events(path, member=None):
    if str(path).endswith(".tar.gz"):
        with tarfile.open(path) as tar:
            name = next(n for n in tar.getnames() if member in n)
            return json.loads(tar.extractfile(name).read())["traceEvents"]
    return json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]


def step_gpu_time(events, window_end_us):
    """GPU time of the profiled step that ends with the optimizer step closest to ``window_end_us``:
    kernels, copies and memsets launched after the previous optimizer step ended (computed here from the
    Kineto file alone, independently of the importer)."""
    ends = sorted(e["ts"] + e["dur"] for e in events
                  if e.get("ph") == "X" and str(e.get("name", "")).startswith("Optimizer.step"))
    i = min(range(len(ends)), key=lambda i: abs(ends[i] - window_end_us))
    lo, hi = (ends[i - 1] if i > 0 else float("-inf")), ends[i]
    launch = {e["args"]["correlation"]: e["ts"] for e in events
              if e.get("cat") == "cuda_runtime" and "correlation" in e.get("args", {})}
    return 1e-6 * sum(e["dur"] for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
                      and lo < launch.get(e["args"].get("correlation"), float("nan")) <= hi)


# Durations are GPU time for ops that launch GPU work and CPU time for the others (as the issue says), so
# their sum is the step's GPU time plus a little CPU time: it must lie within [1.0, 1.1] x the step's GPU time.
TOLERANCE = (1.0, 1.10)


def test_linear_trace():
    et, kin = shared_file("linear_et.json.gz"), shared_file("linear_kineto.json.gz")
    r = import_pytorch_et(et, kineto=kin)
    doc = r.document
    meta = doc["meta"]
    assert len(doc["ops"]) == 196
    # 21 Linear(1024, 1024) layers: weights and biases
    assert meta["bytes_by_kind"]["weight"] == 21 * (1024 * 1024 + 1024) * 4
    assert meta["tensor_kinds"]["weight"] == 42
    assert meta["durations"] == "kineto" and meta["kineto"]["matched_ops"] == 196
    end = meta["kineto"]["window_start_us"] + meta["kineto"]["window_span_s"] * 1e6
    gpu = step_gpu_time(kineto_events(kin), end)
    total = sum(o["duration"] for o in doc["ops"])
    assert TOLERANCE[0] * gpu <= total <= TOLERANCE[1] * gpu
    trace = load_checked(doc)
    assert_keep_valid(trace)
    assert_greedy_valid(trace)


def test_dlrm_trace_rank_members():
    et, kin = shared_file("dlrm_pytorch_et.tar.gz"), shared_file("dlrm_kineto.tar.gz")
    for rank in (0, 3):
        r = import_pytorch_et(et, kineto=kin, rank=rank)
        doc = r.document
        meta = doc["meta"]
        assert meta["source"].endswith(f"dlrm_eg_{rank}.json")
        assert f"worker{rank}_" in meta["kineto"]["source"]
        assert len(doc["ops"]) in (253, 254)
        assert meta["kineto"]["matched_ops"] >= 0.95 * meta["kineto"]["ops"]
        end = meta["kineto"]["window_start_us"] + meta["kineto"]["window_span_s"] * 1e6
        gpu = step_gpu_time(kineto_events(kin, f"worker{rank}_"), end)
        total = sum(o["duration"] for o in doc["ops"])
        assert TOLERANCE[0] * gpu <= total <= TOLERANCE[1] * gpu
        assert meta["tensor_kinds"]["optimizer_state"] == 16       # Adagrad state_sum, one per dense parameter
        assert_keep_valid(load_checked(doc))
    default = import_pytorch_et(et)
    assert any("holds 8 JSON files" in w for w in default.warnings)


def test_resnet_trace_steps_parameters_and_mismatched_kineto():
    et, kin = shared_file("resnet_et.json.gz"), shared_file("resnet_kineto.json.gz")
    r = import_pytorch_et(et, kineto=kin)
    doc = r.document
    meta = doc["meta"]
    assert meta["profiler_steps"] == [6, 7, 8] and len(doc["ops"]) == 3186
    # ResNet-50: 161 parameter tensors, 25,557,032 parameters in fp32; SGD momentum buffers alike
    assert meta["tensor_kinds"]["weight"] == 161
    assert meta["bytes_by_kind"]["weight"] == 25_557_032 * 4
    assert meta["bytes_by_kind"]["optimizer_state"] == 25_557_032 * 4
    # the shipped Kineto trace records another network (20 convolutions per step, not 53): refused
    assert meta["kineto"]["rejected"] and meta["durations"] == "roofline"
    assert any("does not record the same program" in w for w in r.warnings)
    trace = load_checked(doc)
    assert_keep_valid(trace)
    one = import_pytorch_et(et, profiler_step=7)
    assert 1000 < len(one.document["ops"]) < 1100
    assert one.document["meta"]["bytes_by_kind"]["weight"] == 25_557_032 * 4
    assert_keep_valid(load_checked(one.document))


def test_benchmark_synthetic_trace_imports(tmp_path):
    """The benchmark's synthetic ET (solver.perf.importers) imports to a loadable trace.

    Its speed is measured by the benchmark itself (results/perf-import.md), not here.
    """
    from solver.perf.importers import synth_et

    et, _kineto = synth_et(600)
    path = tmp_path / "et.json.gz"
    path.write_bytes(gzip.compress(json.dumps(et).encode()))
    r = import_pytorch_et(path)
    load_checked(r.document)
