"""Importer ``networkx``: Checkmate / Moccasin node-link graphs."""

from __future__ import annotations

import gzip
import json
import math

import pytest
from test_import_helpers import TRACES, assert_keep_valid, load_checked, shared_file

from solver.cli import main
from solver.errors import InputError
from solver.importers import run_import
from solver.importers.networkx_graph import import_networkx

MOCCASIN = sorted((TRACES / "moccasin").glob("*.json.gz")) if (TRACES / "moccasin").is_dir() else []


def moccasin_m(doc: dict) -> int:
    """Moccasin's M, computed here from the definition: outputs allocated at node start, freed after
    the last reader ends (a node nobody reads frees its output at its own end)."""
    nodes = doc["nodes"]
    key = "id" if all("id" in n for n in nodes) else "name"
    links = doc["links"]
    src, dst = ("source", "target") if links and "source" in links[0] else ("0", "1")
    order = doc["graph"].get("order") or [n[key] for n in nodes]
    pos = {v: i for i, v in enumerate(order)}
    size = {n[key]: n.get("cost_ram", n.get("out_cost")) for n in nodes}
    last = dict(pos)
    for link in links:
        last[link[src]] = max(last[link[src]], pos[link[dst]])
    return max(sum(size[v] for v in order if pos[v] <= i <= last[v]) for i in range(len(order)))


def test_small_graph_topological_order_and_semantics():
    doc = {"directed": True, "graph": {}, "nodes": [
        {"id": 2, "cost_cpu": 3, "cost_ram": 30}, {"id": 0, "cost_cpu": 1, "cost_ram": 10},
        {"id": 1, "cost_cpu": 2, "cost_ram": 20, "backward": True}],
        "links": [{"source": 0, "target": 2}, {"source": 0, "target": 1}, {"source": 1, "target": 2}]}
    r = import_networkx(doc, time_unit=1e-3)
    ops = r.document["ops"]
    assert [o["id"] for o in ops] == ["n0", "n1", "n2"]
    assert ops[2]["inputs"] == ["n0.out", "n1.out"]
    assert [o["duration"] for o in ops] == [0.001, 0.002, 0.003]
    kinds = {t["id"]: t["kind"] for t in r.document["tensors"]}
    assert kinds["n1.out"] == "gradient" and kinds["n0.out"] == "activation"
    trace = load_checked(r.document)
    assert trace.no_offload_peak == 60
    assert_keep_valid(trace)
    assert r.warnings == () and r.document["meta"]["warnings"] == []


def test_order_attribute_and_moccasin_keys():
    doc = {"graph": {"order": [0, 2, 1], "node_duration_tag": "duration", "node_output_cost_tag": "out_cost"},
           "nodes": [{"name": 0, "duration": 0, "out_cost": 5}, {"name": 1, "duration": 7, "out_cost": 0},
                     {"name": 2, "duration": 4, "out_cost": 6}],
           "links": [{"0": 0, "1": 1}, {"0": 2, "1": 1}]}
    r = run_import("networkx", doc)
    assert [o["id"] for o in r.document["ops"]] == ["n0", "n2", "n1"]
    assert r.document["meta"]["convention"] == "moccasin"
    assert any("0-byte output" in w for w in r.warnings)
    assert any("does not state the unit" in w for w in r.warnings)
    assert r.document["meta"]["warnings"] == list(r.warnings)


def test_attribute_options():
    doc = {"nodes": [{"id": "a", "t": 2.5, "m": 100, "cost_cpu": 1, "cost_ram": 1}], "links": []}
    r = import_networkx(doc, duration_attr="t", bytes_attr="m", time_unit=1.0)
    assert r.document["ops"][0]["duration"] == 2.5
    assert r.document["tensors"][0]["bytes"] == 100


@pytest.mark.parametrize("doc, message", [
    ({"nodes": [{"id": 0, "cost_ram": 1}], "links": [{"source": 0, "target": 9}]}, "unknown node 9"),
    ({"nodes": [{"id": 0, "cost_ram": 1}, {"id": 1, "cost_ram": 1}],
      "links": [{"source": 0, "target": 1}, {"source": 1, "target": 0}]}, "cycle"),
    ({"graph": {"order": [1, 0]}, "nodes": [{"id": 0, "cost_ram": 1}, {"id": 1, "cost_ram": 1}],
      "links": [{"source": 0, "target": 1}]}, "not topological"),
    ({"nodes": [{"id": 0, "cost_ram": -4}], "links": []}, "cost_ram"),
    ({"nodes": [{"id": 0}], "links": []}, "--bytes-attr"),
    ({"edges": "x", "nodes": []}, "expected a list"),
    ([1, 2], "node-link"),
])
def test_malformed_graphs(doc, message):
    with pytest.raises(InputError, match=message):
        import_networkx(doc)


@pytest.mark.skipif(not MOCCASIN, reason="../shared/traces/moccasin is absent")
@pytest.mark.parametrize("path", MOCCASIN, ids=lambda p: p.name[:30])
def test_moccasin_graphs_peak_equals_moccasin_m(path):
    raw = json.loads(gzip.decompress(path.read_bytes()))
    r = import_networkx(path, time_unit=1e-3)
    trace = load_checked(r.document)
    assert len(trace.ops) == len(raw["nodes"])
    assert trace.no_offload_peak == moccasin_m(raw)
    # budget B = ceil(M x multiplier) is `--budget multiplier` on this trace
    assert math.ceil(trace.no_offload_peak * 0.9) == math.ceil(moccasin_m(raw) * 0.9)
    if "order" in raw["graph"]:
        assert [o.id for o in trace.ops] == [f"n{v}" for v in raw["graph"]["order"]]
    assert_keep_valid(trace)


def test_moccasin_counts_and_durations():
    path = shared_file("moccasin", "VGG16_256_224x224x3_train_nx.json.gz")
    raw = json.loads(gzip.decompress(path.read_bytes()))
    r = import_networkx(path, time_unit=1e-6)
    assert len(r.document["ops"]) == 45
    total = sum(o["duration"] for o in r.document["ops"])
    assert total == pytest.approx(sum(n["cost_cpu"] for n in raw["nodes"]) * 1e-6)
    assert r.document["meta"]["convention"] == "checkmate"


def test_cli_networkx_and_truncated_file(tmp_path, capsys):
    src = tmp_path / "g.json.gz"
    src.write_bytes(gzip.compress(json.dumps(
        {"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 8}], "links": []}).encode()))
    out = tmp_path / "t.json.gz"
    assert main(["import", "networkx", str(src), "--time-unit", "1ms", "-o", str(out)]) == 0
    doc = json.loads(gzip.decompress(out.read_bytes()))
    assert doc["ops"][0]["duration"] == 0.001
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(src.read_bytes()[:20])
    capsys.readouterr()
    assert main(["import", "networkx", str(bad), "-o", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.json.gz" in err and "Traceback" not in err
    plain = tmp_path / "bad.json"
    plain.write_text('{"nodes": [{"id": 0, "cost_ram"')
    assert main(["import", "networkx", str(plain), "-o", str(tmp_path / "x.json")]) == 2
    assert "malformed JSON" in capsys.readouterr().err
