"""The ``tierplan import`` command, the importer registry and the roofline model."""

from __future__ import annotations

import pytest

from solver.cli import main
from solver.importers import Roofline, UnknownFormat, get_importer, importer_names, run_import
from solver.importers.roofline import TensorShape, classify, estimate
from solver.importers.shapes import parse_dims, parse_named_shape, parse_shape_spec


def test_help_lists_every_format(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["import", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in importer_names():
        assert name in out


def test_format_help_and_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["import", "pytorch-et", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--kineto" in out and "--peak-flops" in out
    with pytest.raises(SystemExit) as exc:
        main(["import", "caffe", "x", "-o", "y"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["import"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["import", "onnx", "m.onnx", "-o", "t.json", "--flop-efficiency", "2"])
    assert exc.value.code == 2


def test_registry():
    assert importer_names() == ("networkx", "onnx", "pytorch-et", "torch")
    with pytest.raises(UnknownFormat, match="valid formats: networkx, onnx, pytorch-et, torch"):
        get_importer("tflite")
    with pytest.raises(UnknownFormat):
        run_import("tflite", "x")
    with pytest.raises(TypeError, match="no roofline"):
        run_import("networkx", {"nodes": []}, roofline=Roofline())


def test_roofline_estimates():
    conv = estimate("aten::conv2d", [TensorShape((8, 3, 32, 32), 4), TensorShape((16, 3, 3, 3), 4)],
                    [TensorShape((8, 16, 30, 30), 4)])
    assert conv.kind == "conv" and conv.flops == 2 * 8 * 16 * 30 * 30 * 3 * 3 * 3
    q = TensorShape((2, 4, 128, 64), 2)
    att = estimate("aten::scaled_dot_product_attention", [q, q, q], [q])
    assert att.kind == "attention" and att.flops == 4 * 2 * 4 * 128 * 128 * 64
    gemm = estimate("Gemm", [TensorShape((64, 32), 4), TensorShape((64, 16), 4)], [TensorShape((32, 16), 4)],
                    trans_a=True)
    assert gemm.flops == 2 * 32 * 16 * 64
    assert classify("autograd::engine::evaluate_function: AddmmBackward0") == ("matmul", True)
    assert classify("aten::select_backward") == ("elementwise", True)
    assert estimate("aten::frob", [TensorShape((4,), 4)], [TensorShape((4,), 4)]).known is False
    model = Roofline(peak_flops=1e12, bandwidth=1e9, flop_efficiency=0.5, bandwidth_efficiency=1.0,
                     overhead=1e-6)
    assert model.time(1e12, 0) == pytest.approx(2.0 + 1e-6)
    assert model.time(0, 1e9) == pytest.approx(1.0 + 1e-6)
    with pytest.raises(ValueError):
        Roofline(peak_flops=0)


def test_shape_strings():
    assert parse_dims("2x3x4") == (2, 3, 4) and parse_dims("[1, 2]") == (1, 2)
    assert parse_named_shape("ids=4x16") == ("ids", (4, 16))
    assert parse_shape_spec("4x16:bf16") == ((4, 16), "bf16")
    with pytest.raises(ValueError):
        parse_dims("2x-1")
    with pytest.raises(ValueError):
        parse_named_shape("4x16")


@pytest.mark.parametrize("fmt, module, source", [("onnx", "onnx", "model.onnx"), ("torch", "torch", "m:Model")])
def test_missing_optional_dependency_is_a_clear_error(fmt, module, source, monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, module, None)     # makes `import <module>` fail
    assert main(["import", fmt, source, "-o", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert "pip install" in err and "Traceback" not in err


def test_initial_tier_option(tmp_path):
    import json

    src = tmp_path / "g.json"
    src.write_text(json.dumps({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 8, "param_cost": 16}],
                               "links": []}))
    out = tmp_path / "t.json"
    assert main(["import", "networkx", str(src), "--initial-tier", "DDR", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    tiers = {t["id"]: t.get("initial_tier") for t in doc["tensors"]}
    assert tiers == {"n0.param": "DDR", "n0.out": None} and doc["meta"]["initial_tier"] == "DDR"
