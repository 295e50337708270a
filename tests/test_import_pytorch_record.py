"""End to end: record a real Execution Trace and Kineto profile of a small transformer on the CPU
(forward, backward, Adam step), import it, and check sizes against the model."""

from __future__ import annotations

import json

import pytest
from test_import_helpers import assert_greedy_valid, assert_keep_valid, load_checked

from solver.cli import main
from solver.importers.pytorch_et import import_pytorch_et
from solver.importers.result import with_initial_tier

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

pytestmark = pytest.mark.filterwarnings("ignore:.*Profiler clears events:UserWarning")

B, S, D, H, F, LAYERS = 2, 8, 32, 4, 64, 2


def build():
    torch.manual_seed(0)
    layers = [torch.nn.TransformerEncoderLayer(d_model=D, nhead=H, dim_feedforward=F, batch_first=True,
                                               dropout=0.0) for _ in range(LAYERS)]
    model = torch.nn.Sequential(*layers)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), torch.randn(B, S, D)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    from torch.profiler import ExecutionTraceObserver, ProfilerActivity, profile, schedule

    folder = tmp_path_factory.mktemp("record")
    et_path, kineto_path = folder / "et.json", folder / "kineto.json"
    model, opt, x = build()

    def step():
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()

    step()  # Adam creates its state on the first step: record the second
    observer = ExecutionTraceObserver()
    observer.register_callback(str(et_path))
    with profile(activities=[ProfilerActivity.CPU], execution_trace_observer=observer,
                 schedule=schedule(wait=0, warmup=1, active=1),
                 on_trace_ready=lambda p: p.export_chrome_trace(str(kineto_path))) as prof:
        for _ in range(2):
            step()
            prof.step()
    assert et_path.exists() and kineto_path.exists()
    return et_path, kineto_path, model, x


def test_recorded_trace_sizes_and_durations(recorded):
    et_path, kineto_path, model, x = recorded
    r = import_pytorch_et(et_path, kineto=kineto_path)
    doc, meta = r.document, r.document["meta"]
    params = list(model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    assert meta["device"] == "cpu"
    assert meta["tensor_kinds"]["weight"] == len(params)
    assert meta["bytes_by_kind"]["weight"] == param_bytes
    # Adam: exp_avg and exp_avg_sq per parameter, plus a scalar step counter each
    assert 2 * param_bytes <= meta["bytes_by_kind"]["optimizer_state"] <= 2 * param_bytes + 8 * len(params)
    assert meta["bytes_by_kind"]["gradient"] >= param_bytes
    sizes = {t["bytes"] for t in doc["tensors"] if t["kind"] == "activation"}
    assert B * S * D * 4 in sizes              # a layer's output
    assert B * S * F * 4 in sizes              # the feed-forward hidden activation
    assert B * S * 3 * D * 4 in sizes          # the packed q, k, v projection
    assert any(t["kind"] == "input" and t["bytes"] == x.numel() * 4 for t in doc["tensors"])
    kin = meta["kineto"]
    assert kin["join"] == "record-function-id" and kin["matched_ops"] >= 0.95 * kin["ops"]
    events = json.loads(kineto_path.read_text())["traceEvents"]
    step = max(e["dur"] for e in events if str(e.get("name", "")).startswith("ProfilerStep#")) * 1e-6
    total = sum(o["duration"] for o in doc["ops"])
    # CPU durations of the top-level ops: within the profiled step, which adds Python time between them
    assert 0.2 * step <= total <= 1.01 * step
    trace = load_checked(doc)
    assert_keep_valid(trace)
    assert_greedy_valid(trace)
    # with the pre-existing tensors (weights, Adam state, the batch) in host memory, greedy fits half the peak
    assert_greedy_valid(load_checked(with_initial_tier(doc, "DDR")), fraction=0.5)


def test_recorded_trace_without_kineto_uses_roofline(recorded, tmp_path, capsys):
    et_path, _, _, _ = recorded
    r = import_pytorch_et(et_path)
    assert r.document["meta"]["durations"] == "roofline"
    assert any("no Kineto trace" in w for w in r.warnings)
    assert all(o["duration"] >= 0 for o in r.document["ops"])
    assert_keep_valid(load_checked(r.document))
    out = tmp_path / "t.json.gz"
    assert main(["import", "pytorch-et", str(et_path), "--quiet", "-o", str(out)]) == 0
    assert "roofline" in capsys.readouterr().err
