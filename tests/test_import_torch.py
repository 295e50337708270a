"""Importer ``torch``: forward and backward traced with fake tensors (no real memory)."""

from __future__ import annotations

import textwrap

import pytest
from test_import_helpers import assert_greedy_valid, assert_keep_valid, load_checked

from solver.cli import main
from solver.errors import InputError
from solver.importers import run_import
from solver.importers.torch_export import import_torch

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

MODEL_FILE = textwrap.dedent("""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            make = lambda: torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64,
                                                            batch_first=True, dropout=0.0)
            self.layers = torch.nn.Sequential(make(), make())
            self.head = torch.nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.layers(x))

    def matmul_relu(a, b):
        return (a @ b).relu()
""")


@pytest.fixture()
def model_file(tmp_path):
    path = tmp_path / "tiny_model.py"
    path.write_text(MODEL_FILE)
    return path


def test_module_class_forward_and_backward(model_file):
    r = import_torch(f"{model_file}:Tiny", input_shapes=["2x8x32"])
    doc = r.document
    exec_ns: dict = {}
    exec(MODEL_FILE, exec_ns)
    real = exec_ns["Tiny"]()
    params = list(real.parameters())
    weights = [t for t in doc["tensors"] if t["kind"] == "weight"]
    assert len(weights) == len(params)
    assert sum(t["bytes"] for t in weights) == sum(p.numel() * 4 for p in params)
    assert all(t.get("persistent") for t in weights)
    grads = [t for t in doc["tensors"] if t["kind"] == "gradient" and t.get("persistent")]
    assert len(grads) == len(params)                       # one persistent gradient per parameter
    assert any(t["kind"] == "input" and t["bytes"] == 2 * 8 * 32 * 4 for t in doc["tensors"])
    assert {o["kind"] for o in doc["ops"]} >= {"matmul", "norm"}
    assert doc["meta"]["durations"] == "roofline" and doc["meta"]["parameters"] == len(params)
    trace = load_checked(doc)
    assert_keep_valid(trace)
    assert_greedy_valid(trace)
    fwd = import_torch(f"{model_file}:Tiny", input_shapes=["2x8x32"], forward_only=True)
    assert len(fwd.document["ops"]) < len(doc["ops"])
    assert not any(t["kind"] == "gradient" for t in fwd.document["tensors"])
    assert_keep_valid(load_checked(fwd.document))


def test_plain_function_and_module_object(model_file):
    r = run_import("torch", f"{model_file}:matmul_relu", input_shapes=["4x8", (8, 3)])
    ops = [o["kind"] for o in r.document["ops"]]
    assert ops.count("matmul") == 3                        # forward, and the two input gradients
    load_checked(r.document)
    lin = import_torch(torch.nn.Linear(16, 4), input_shapes=["8x16"])
    assert sum(t["bytes"] for t in lin.document["tensors"] if t["kind"] == "weight") == (16 * 4 + 4) * 4
    emb = import_torch(torch.nn.Embedding(100, 8), input_shapes=["4x5:int64"])
    assert any(t["kind"] == "input" and t["bytes"] == 4 * 5 * 8 for t in emb.document["tensors"])


def test_saved_export_program(tmp_path):
    path = tmp_path / "lin.pt2"
    torch.export.save(torch.export.export(torch.nn.Linear(16, 4), (torch.randn(8, 16),)), str(path))
    r = import_torch(str(path))
    assert r.document["meta"]["traced"] == "torch.export program"
    assert sum(t["bytes"] for t in r.document["tensors"] if t["kind"] == "weight") == (16 * 4 + 4) * 4
    assert_keep_valid(load_checked(r.document))


def test_bad_sources(model_file, tmp_path, capsys):
    with pytest.raises(InputError, match="cannot import"):
        import_torch("no_such_module_xyz:Model", input_shapes=["2"])
    with pytest.raises(InputError, match="no attribute"):
        import_torch(f"{model_file}:Nope", input_shapes=["2"])
    with pytest.raises(InputError, match="no example inputs"):
        import_torch(f"{model_file}:Tiny")
    with pytest.raises(InputError, match="cannot read shape"):
        import_torch(f"{model_file}:Tiny", input_shapes=["2xq"])
    with pytest.raises(InputError, match="tracing failed"):
        import_torch(f"{model_file}:Tiny", input_shapes=["2x8x31"])
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"PK\x03\x04 truncated")
    capsys.readouterr()
    assert main(["import", "torch", str(bad), "-o", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.pt2" in err and "Traceback" not in err.split("error:")[-1]


def test_cli_torch(model_file, tmp_path):
    out = tmp_path / "t.json.gz"
    assert main(["import", "torch", f"{model_file}:Tiny", "--input-shape", "2x8x32", "--peak-flops", "100T",
                 "--bandwidth", "1 TB/s", "-o", str(out)]) == 0
    from solver.formats import load_trace

    trace = load_trace(out)
    assert len(trace.ops) > 50
