"""Importer ``onnx``: a small model built with onnx.helper."""

from __future__ import annotations

import numpy as np
import pytest
from test_import_helpers import assert_greedy_valid, assert_keep_valid, load_checked

from solver.cli import main
from solver.errors import InputError
from solver.importers.onnx_graph import import_onnx
from solver.importers.roofline import Roofline

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
from onnx import TensorProto, helper  # noqa: E402


def weight(name, *dims):
    data = np.zeros(int(np.prod(dims)), dtype=np.float32).tobytes()
    return helper.make_tensor(name, TensorProto.FLOAT, list(dims), data, raw=True)


def mlp(batch="batch", shuffled=False):
    """x[batch, 64] -> MatMul(64x128) -> Add -> Relu -> Gemm(128x10) -> Softmax."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Add", ["h", "b1"], ["h2"], name="bias1"),
             helper.make_node("Relu", ["h2"], ["h3"], name="relu"),
             helper.make_node("Gemm", ["h3", "w2", "b2"], ["logits"], name="fc2"),
             helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=1)]
    if shuffled:
        nodes = nodes[::-1]
    graph = helper.make_graph(nodes, "mlp", [x], [y], [weight("w1", 64, 128), weight("b1", 128),
                                                         weight("w2", 128, 10), weight("b2", 10)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_mlp_weights_activations_and_roofline():
    r = import_onnx(mlp(), input_shapes=["x=32x64"], roofline=Roofline(peak_flops=1e12, bandwidth=1e15,
                                                                      flop_efficiency=1.0))
    doc = r.document
    tensors = {t["id"]: t for t in doc["tensors"]}
    assert {k for k, t in tensors.items() if t["kind"] == "weight"} == {"w1", "b1", "w2", "b2"}
    assert all(tensors[k]["persistent"] for k in ("w1", "b1", "w2", "b2"))
    assert tensors["w1"]["bytes"] == 64 * 128 * 4 and tensors["x"]["bytes"] == 32 * 64 * 4
    assert tensors["h3"]["bytes"] == 32 * 128 * 4 and tensors["logits"]["kind"] == "activation"
    assert tensors["y"]["persistent"]
    ops = {o["id"]: o for o in doc["ops"]}
    assert list(ops) == ["fc1", "bias1", "relu", "fc2", "softmax"]
    assert ops["fc1"]["inputs"] == ["x", "w1"] and ops["fc1"]["kind"] == "matmul"
    assert ops["fc1"]["duration"] == pytest.approx(2 * 32 * 64 * 128 / 1e12)
    assert ops["fc2"]["duration"] == pytest.approx(2 * 32 * 128 * 10 / 1e12)
    assert doc["meta"]["durations"] == "roofline" and r.warnings == ()
    trace = load_checked(doc)
    assert_keep_valid(trace)
    assert_greedy_valid(trace)


def test_symbolic_dims_and_order_are_reported():
    r = import_onnx(mlp(shuffled=True))
    assert [o["id"] for o in r.document["ops"]] == ["fc1", "bias1", "relu", "fc2", "softmax"]
    assert any("not topological" in w for w in r.warnings)
    assert any("symbolic input dimensions set to 1" in w and "x.batch" in w for w in r.warnings)
    assert r.document["meta"]["warnings"] == list(r.warnings)
    load_checked(r.document)


def test_file_cli_and_bad_inputs(tmp_path, capsys):
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp(), str(path))
    out = tmp_path / "t.json.gz"
    assert main(["import", "onnx", str(path), "--input-shape", "x=8x64", "-o", str(out)]) == 0
    truncated = tmp_path / "trunc.onnx"
    truncated.write_bytes(path.read_bytes()[:200])
    capsys.readouterr()
    assert main(["import", "onnx", str(truncated), "-o", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "trunc.onnx" in err and "not a readable ONNX model" in err and "Traceback" not in err
    assert main(["import", "onnx", str(path), "--input-shape", "z=8x64", "-o", str(tmp_path / "x.json")]) == 2
    assert "no graph input named 'z'" in capsys.readouterr().err
    with pytest.raises(InputError, match="rank"):
        import_onnx(str(path), input_shapes={"x": (8, 64, 2)})
    with pytest.raises(InputError, match="cannot read file"):
        import_onnx(str(tmp_path / "missing.onnx"))
