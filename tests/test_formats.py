"""Bad input, for every loading rule of formats-v1.md, through the CLI.

Each case writes one broken file next to good ones and runs ``tierplan validate``:
exit status 2, one ``error:`` line per problem that names the file and the JSON
path, nothing on stdout, and never a traceback. Also: TOML hardware, ``.json.gz``
traces, unit strings.
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from foundation_helpers import cli, cli_subprocess
from solver.formats import load_hardware, load_schedule, load_trace
from solver.units import UnitError, parse_bandwidth, parse_size, parse_time

TRACE: dict[str, Any] = {
    "format": "tierplan.trace/1", "name": "t",
    "tensors": [{"id": "x", "bytes": 100, "kind": "input"}, {"id": "y", "bytes": 200, "kind": "activation"},
                {"id": "w", "bytes": 50, "kind": "weight", "initial_tier": "DDR", "persistent": True,
                 "final_tier": "DDR"}],
    "ops": [{"id": "f", "duration": 1.0, "inputs": ["x"], "outputs": ["y"]},
            {"id": "g", "duration": 0.5, "inputs": ["y", "w"], "outputs": []}],
}
HW: dict[str, Any] = {
    "format": "tierplan.hardware/1", "name": "h", "compute_tier": "HBM",
    "tiers": [{"name": "HBM", "capacity": "1 KiB"}, {"name": "DDR", "capacity": "1 MiB"}],
    "links": [{"src": "HBM", "dst": "DDR", "bandwidth": "100 B/s"}, {"src": "DDR", "dst": "HBM", "bandwidth": 100}],
}
SCHED: dict[str, Any] = {
    "format": "tierplan.schedule/1", "trace": "t", "hardware": "h",
    "actions": [{"do": "copy", "id": "pf", "tensor": "w", "src": "DDR", "dst": "HBM"},
                {"do": "run", "op": "f"}, {"do": "run", "op": "g", "after": ["pf"]}],
}


def _write(path: Path, content: Any) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return path


def _files(tmp_path: Path, trace: Any = None, hw: Any = None, sched: Any = None,
           names: tuple[str, str, str] = ("trace.json", "hw.json", "sched.json")) -> list[str]:
    out = []
    for name, content, default in zip(names, (trace, hw, sched), (TRACE, HW, SCHED)):
        out.append(str(_write(tmp_path / name, default if content is None else content)))
    return out


def _expect_input_error(argv: list[str], bad_file: str, expected: list[tuple[str, str]]) -> list[str]:
    """Run the CLI; check exit 2, no traceback, one line per expected (path, words) naming the file."""
    rc, out, err = cli(argv)
    assert "Traceback" not in err, err
    assert rc == 2, (rc, out, err)
    assert out == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "no message"
    for ln in lines:
        assert ln.startswith("error: "), ln
    for path, words in expected:
        prefix = f"{bad_file}: {path}: " if path else f"{bad_file}: "
        hits = [ln for ln in lines if prefix in ln and all(w.lower() in ln.lower() for w in words.split("|"))]
        assert hits, f"no line with {prefix!r} and {words!r} in:\n{err}"
    return lines


def _mod(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    d = copy.deepcopy(base)
    for k, v in changes.items():
        if v is _DEL:
            d.pop(k, None)
        else:
            d[k] = v
    return d


_DEL = object()


def _tensors(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return copy.deepcopy(TRACE["tensors"]) + list(extra)


# --- trace rules ---------------------------------------------------------------------------------

TRACE_CASES: dict[str, tuple[Any, list[tuple[str, str]]]] = {
    "malformed_json": ('{"format": "tierplan.trace/1", "tensors": [', [("", "malformed JSON")]),
    "not_an_object": ([1, 2, 3], [("", "tierplan.trace/1")]),
    "missing_format": (_mod(TRACE, format=_DEL), [("format", "missing|tierplan.trace/1")]),
    "unknown_format": (_mod(TRACE, format="tierplan.trace/9"), [("format", "tierplan.trace/9|tierplan.trace/1")]),
    "other_files_format": (_mod(TRACE, format="tierplan.schedule/1"), [("format", "tierplan.trace/1")]),
    "tensors_not_a_list": (_mod(TRACE, tensors={"x": 1}), [("tensors", "list")]),
    "name_wrong_type": (_mod(TRACE, name=5), [("name", "string")]),
    "missing_tensor_id": (_mod(TRACE, tensors=_tensors({"bytes": 4})), [("tensors[3]", "missing|id")]),
    "missing_tensor_bytes": (_mod(TRACE, tensors=_tensors({"id": "z"})), [("tensors[3]", "missing|bytes")]),
    "missing_op_id": (_mod(TRACE, ops=TRACE["ops"] + [{"duration": 1}]), [("ops[2]", "missing|id")]),
    "missing_op_duration": (_mod(TRACE, ops=TRACE["ops"] + [{"id": "h"}]), [("ops[2]", "missing|duration")]),
    "bytes_wrong_type": (_mod(TRACE, tensors=_tensors({"id": "z", "bytes": True})), [("tensors[3].bytes", "bool")]),
    "persistent_wrong_type": (_mod(TRACE, tensors=_tensors({"id": "z", "bytes": 4, "persistent": "yes"})),
                              [("tensors[3].persistent", "bool")]),
    "inputs_wrong_type": (_mod(TRACE, ops=[dict(TRACE["ops"][0], inputs="x"), TRACE["ops"][1]]),
                          [("ops[0].inputs", "array")]),
    "duration_wrong_type": (_mod(TRACE, ops=[dict(TRACE["ops"][0], duration=[1]), TRACE["ops"][1]]),
                            [("ops[0].duration", "")]),
    "negative_bytes": (_mod(TRACE, tensors=_tensors({"id": "z", "bytes": -5})), [("tensors[3].bytes", "-5")]),
    "zero_bytes": (_mod(TRACE, tensors=_tensors({"id": "z", "bytes": 0})), [("tensors[3].bytes", "positive")]),
    "negative_size_string": (_mod(TRACE, tensors=_tensors({"id": "z", "bytes": "-2 KiB"})),
                             [("tensors[3].bytes", "positive")]),
    "negative_workspace": (_mod(TRACE, ops=[dict(TRACE["ops"][0], workspace=-1), TRACE["ops"][1]]),
                           [("ops[0].workspace", ">= 0")]),
    "negative_duration": (_mod(TRACE, ops=[dict(TRACE["ops"][0], duration=-0.5), TRACE["ops"][1]]),
                          [("ops[0].duration", ">= 0")]),
    "bad_size_unit": (_mod(TRACE, tensors=_tensors({"id": "z", "bytes": "12 XB"})),
                      [("tensors[3].bytes", "unit|XB")]),
    "bad_time_unit": (_mod(TRACE, ops=[dict(TRACE["ops"][0], duration="3 parsec"), TRACE["ops"][1]]),
                      [("ops[0].duration", "unit|parsec")]),
    "unreadable_number": (_mod(TRACE, tensors=_tensors({"id": "z", "bytes": "lots"})),
                          [("tensors[3].bytes", "lots")]),
    "size_unit_on_a_time": (_mod(TRACE, ops=[dict(TRACE["ops"][0], duration="5 GiB"), TRACE["ops"][1]]),
                            [("ops[0].duration", "unit")]),
    "unknown_input": (_mod(TRACE, ops=[TRACE["ops"][0], dict(TRACE["ops"][1], inputs=["y", "w", "x9"])]),
                      [("ops[1].inputs[2]", "unknown tensor|x9")]),
    "unknown_output": (_mod(TRACE, ops=[dict(TRACE["ops"][0], outputs=["y", "q"]), TRACE["ops"][1]]),
                       [("ops[0].outputs[1]", "unknown tensor|q")]),
    "unknown_update": (_mod(TRACE, ops=[TRACE["ops"][0], dict(TRACE["ops"][1], updates=["nope"])]),
                       [("ops[1].updates[0]", "unknown tensor|nope")]),
    "two_producers": (_mod(TRACE, ops=[TRACE["ops"][0], dict(TRACE["ops"][1], outputs=["y"])]),
                      [("ops[1].outputs[0]", "ops[0]")]),
    "consumer_before_producer": (_mod(TRACE, tensors=_tensors({"id": "late", "bytes": 8}),
                                      ops=[dict(TRACE["ops"][0], inputs=["x", "late"]),
                                           dict(TRACE["ops"][1], outputs=["late"])]),
                                 [("ops[0].inputs[1]", "late|producer")]),
    "update_before_producer": (_mod(TRACE, tensors=_tensors({"id": "late", "bytes": 8}),
                                    ops=[dict(TRACE["ops"][0], updates=["late"]),
                                         dict(TRACE["ops"][1], outputs=["late"])]),
                               [("ops[0].updates[0]", "late")]),
    "update_own_output": (_mod(TRACE, ops=[dict(TRACE["ops"][0], updates=["y"]), TRACE["ops"][1]]),
                          [("ops[0].updates[0]", "y")]),
    "duplicate_tensor_id": (_mod(TRACE, tensors=_tensors({"id": "x", "bytes": 3})),
                            [("tensors[3].id", "duplicate|x")]),
    "duplicate_op_id": (_mod(TRACE, ops=TRACE["ops"] + [{"id": "f", "duration": 1}]),
                        [("ops[2].id", "duplicate|f")]),
    "initial_tier_on_produced": (_mod(TRACE, tensors=[TRACE["tensors"][0], dict(TRACE["tensors"][1], initial_tier="DDR"),
                                                      TRACE["tensors"][2]]),
                                 [("ops[0].outputs[0]", "initial_tier")]),
    "final_tier_without_persistent": (_mod(TRACE, tensors=_tensors({"id": "z", "bytes": 4, "final_tier": "DDR"})),
                                      [("tensors[3].final_tier", "persistent")]),
    "unknown_kind": (_mod(TRACE, tensors=_tensors({"id": "z", "bytes": 4, "kind": "banana"})),
                     [("tensors[3].kind", "banana|weight")]),
}


@pytest.mark.parametrize("case", sorted(TRACE_CASES))
def test_bad_trace(tmp_path: Path, case: str) -> None:
    content, expected = TRACE_CASES[case]
    t, h, s = _files(tmp_path, trace=content)
    _expect_input_error(["validate", t, h, s], t, expected)


def test_bad_trace_through_inspect(tmp_path: Path) -> None:
    t, _, _ = _files(tmp_path, trace=TRACE_CASES["unknown_input"][0])
    _expect_input_error(["inspect", t], t, TRACE_CASES["unknown_input"][1])


def test_trace_tier_unknown_to_hardware(tmp_path: Path) -> None:
    trace = _mod(TRACE, tensors=[TRACE["tensors"][0], TRACE["tensors"][1],
                                 dict(TRACE["tensors"][2], initial_tier="NVME", final_tier="TAPE")])
    t, h, s = _files(tmp_path, trace=trace)
    _expect_input_error(["validate", t, h, s], t, [("tensors[2].initial_tier", "NVME"),
                                                   ("tensors[2].final_tier", "TAPE")])
    _expect_input_error(["inspect", t, "--hardware", h], t, [("tensors[2].initial_tier", "NVME")])


def test_all_trace_rule_problems_reported(tmp_path: Path) -> None:
    trace = _mod(TRACE, tensors=_tensors({"id": "x", "bytes": 3}, {"id": "z", "bytes": -1, "kind": "banana"},
                                         {"id": "v", "bytes": 2, "final_tier": "DDR"}),
                 ops=[dict(TRACE["ops"][0], duration=-1, inputs=["x", "x9"]), dict(TRACE["ops"][1], outputs=["y"]),
                      {"id": "f", "duration": 1, "workspace": -4}])
    t, h, s = _files(tmp_path, trace=trace)
    lines = _expect_input_error(["validate", t, h, s], t, [
        ("tensors[3].id", "duplicate"), ("tensors[4].bytes", "-1"), ("tensors[4].kind", "banana"),
        ("tensors[5].final_tier", "persistent"), ("ops[0].duration", ">= 0"), ("ops[0].inputs[1]", "x9"),
        ("ops[1].outputs[0]", "produce"), ("ops[1].inputs[0]", "also an output"), ("ops[2].id", "duplicate"),
        ("ops[2].workspace", ">= 0")])
    assert len(lines) == 10, lines


def test_all_trace_conversion_problems_reported(tmp_path: Path) -> None:
    trace = _mod(TRACE, tensors=_tensors({"id": "z", "bytes": "1 XB"}, {"bytes": 3}, {"id": "q", "bytes": True}),
                 ops=TRACE["ops"] + [{"id": "h", "duration": "2 fortnights"}, {"duration": 1}])
    t, h, s = _files(tmp_path, trace=trace)
    lines = _expect_input_error(["validate", t, h, s], t, [
        ("tensors[3].bytes", "XB"), ("tensors[4]", "id"), ("tensors[5].bytes", "bool"),
        ("ops[2].duration", "fortnights"), ("ops[3]", "id")])
    assert len(lines) == 5, lines


# --- hardware rules ------------------------------------------------------------------------------


def _links(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return copy.deepcopy(HW["links"]) + list(extra)


HW_CASES: dict[str, tuple[Any, list[tuple[str, str]]]] = {
    "malformed_json": ("{'format': 'tierplan.hardware/1'}", [("", "malformed JSON")]),
    "missing_format": (_mod(HW, format=_DEL), [("format", "tierplan.hardware/1")]),
    "unknown_format": (_mod(HW, format="tierplan.hw/1"), [("format", "tierplan.hardware/1")]),
    "unknown_compute_tier": (_mod(HW, compute_tier="GPU"), [("compute_tier", "GPU")]),
    "missing_compute_tier": (_mod(HW, compute_tier=_DEL), [("compute_tier", "missing")]),
    "no_tiers": (_mod(HW, tiers=[]), [("tiers", "non-empty")]),
    "duplicate_tier": (_mod(HW, tiers=HW["tiers"] + [{"name": "DDR", "capacity": 1}]),
                       [("tiers[2].name", "duplicate|DDR")]),
    "tier_without_name": (_mod(HW, tiers=HW["tiers"] + [{"capacity": 1}]), [("tiers[2].name", "missing")]),
    "tier_without_capacity": (_mod(HW, tiers=HW["tiers"] + [{"name": "SSD"}]), [("tiers[2].capacity", "missing")]),
    "negative_capacity": (_mod(HW, tiers=HW["tiers"] + [{"name": "SSD", "capacity": -1}]),
                          [("tiers[2].capacity", ">= 0")]),
    "bad_capacity_unit": (_mod(HW, tiers=HW["tiers"] + [{"name": "SSD", "capacity": "2 GiB/s"}]),
                          [("tiers[2].capacity", "unit")]),
    "link_to_unknown_tier": (_mod(HW, links=_links({"src": "HBM", "dst": "SSD", "bandwidth": 1})),
                             [("links[2].dst", "SSD")]),
    "link_from_unknown_tier": (_mod(HW, links=_links({"src": "L2", "dst": "HBM", "bandwidth": 1})),
                               [("links[2].src", "L2")]),
    "zero_bandwidth": (_mod(HW, links=[dict(HW["links"][0], bandwidth=0), HW["links"][1]]),
                       [("links[0].bandwidth", "> 0")]),
    "negative_bandwidth": (_mod(HW, links=[HW["links"][0], dict(HW["links"][1], bandwidth="-5 GB/s")]),
                           [("links[1].bandwidth", "> 0")]),
    "missing_bandwidth": (_mod(HW, links=[{"src": "HBM", "dst": "DDR"}, HW["links"][1]]),
                          [("links[0].bandwidth", "missing")]),
    "bad_bandwidth_unit": (_mod(HW, links=[dict(HW["links"][0], bandwidth="25 ms"), HW["links"][1]]),
                           [("links[0].bandwidth", "unit")]),
    "negative_latency": (_mod(HW, links=[dict(HW["links"][0], latency="-10us"), HW["links"][1]]),
                         [("links[0].latency", ">= 0")]),
    "bad_latency_unit": (_mod(HW, links=[dict(HW["links"][0], latency="10 GB"), HW["links"][1]]),
                         [("links[0].latency", "unit")]),
    "self_link": (_mod(HW, links=_links({"src": "HBM", "dst": "HBM", "bandwidth": 1})), [("links[2]", "HBM")]),
    "duplicate_link": (_mod(HW, links=_links({"src": "HBM", "dst": "DDR", "bandwidth": 1})),
                       [("links[2]", "duplicate")]),
    "channel_wrong_type": (_mod(HW, links=[dict(HW["links"][0], channel=3), HW["links"][1]]),
                           [("links[0].channel", "string")]),
    "links_not_a_list": (_mod(HW, links={"src": "HBM"}), [("links", "list")]),
    "compute_not_an_object": (_mod(HW, compute=[1, 2]), [("compute", "object")]),
    "name_wrong_type": (_mod(HW, name=["h"]), [("name", "string")]),
}


@pytest.mark.parametrize("case", sorted(HW_CASES))
def test_bad_hardware(tmp_path: Path, case: str) -> None:
    content, expected = HW_CASES[case]
    t, h, s = _files(tmp_path, hw=content)
    _expect_input_error(["validate", t, h, s], h, expected)


def test_all_hardware_problems_reported(tmp_path: Path) -> None:
    hw = _mod(HW, compute_tier="GPU",
              tiers=HW["tiers"] + [{"name": "DDR", "capacity": 1}, {"name": "SSD", "capacity": "x"}],
              links=_links({"src": "HBM", "dst": "NVME", "bandwidth": 0}, {"src": "DDR", "dst": "HBM", "bandwidth": 1}))
    t, h, s = _files(tmp_path, hw=hw)
    _expect_input_error(["validate", t, h, s], h, [
        ("compute_tier", "GPU"), ("tiers[2].name", "duplicate"), ("tiers[3].capacity", "x"),
        ("links[2].dst", "NVME"), ("links[2].bandwidth", "> 0"), ("links[3]", "duplicate")])


# --- TOML hardware ---------------------------------------------------------------------------------

TOML_HW = """
format = "tierplan.hardware/1"
name = "toml-box"
compute_tier = "HBM"

[[tiers]]
name = "HBM"
capacity = "1 KiB"

[[tiers]]
name = "DDR"
capacity = "1.5GB"

[[links]]
src = "HBM"
dst = "DDR"
bandwidth = "25 GB/s"
latency = "10us"

[[links]]
src = "DDR"
dst = "HBM"
bandwidth = 100
channel = "pcie"
"""


def test_toml_hardware_loads(tmp_path: Path) -> None:
    hw = load_hardware(_write(tmp_path / "hw.toml", TOML_HW))
    assert hw.name == "toml-box" and hw.compute_tier == "HBM"
    assert dict(hw.capacity) == {"HBM": 1024, "DDR": 1_500_000_000}
    lk = hw.link("HBM", "DDR")
    assert lk.bandwidth == 25e9 and lk.latency == pytest.approx(1e-5, rel=1e-15)
    assert hw.streams == ("HBM->DDR", "pcie")
    t, _, s = _files(tmp_path)
    rc, out, err = cli(["validate", t, str(tmp_path / "hw.toml"), s, "--json"])
    assert rc == 0, err
    assert json.loads(out)["metrics"]["bytes_moved"] == {"HBM->DDR": 0, "pcie": 50}


def test_malformed_toml_hardware(tmp_path: Path) -> None:
    h = str(_write(tmp_path / "hw.toml", "format = \"tierplan.hardware/1\"\n[[tiers]\nname = 1\n"))
    t, _, s = _files(tmp_path)
    _expect_input_error(["validate", t, h, s], h, [("", "TOML")])


def test_bad_toml_hardware_names_paths(tmp_path: Path) -> None:
    h = str(_write(tmp_path / "hw.toml", TOML_HW.replace('compute_tier = "HBM"', 'compute_tier = "GPU"')
                   .replace('bandwidth = 100', 'bandwidth = 0')))
    t, _, s = _files(tmp_path)
    _expect_input_error(["validate", t, h, s], h, [("compute_tier", "GPU"), ("links[1].bandwidth", "> 0")])


# --- schedule rules ------------------------------------------------------------------------------


def _actions(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return copy.deepcopy(SCHED["actions"]) + list(extra)


SCHED_CASES: dict[str, tuple[Any, list[tuple[str, str]]]] = {
    "malformed_json": ('{"format": "tierplan.schedule/1", "actions": [}', [("", "malformed JSON")]),
    "missing_format": (_mod(SCHED, format=_DEL), [("format", "tierplan.schedule/1")]),
    "unknown_format": (_mod(SCHED, format="tierplan.schedule/2"), [("format", "tierplan.schedule/1")]),
    "actions_not_a_list": (_mod(SCHED, actions={"f": "run"}), [("actions", "list")]),
    "duplicate_action_ids": (_mod(SCHED, actions=_actions({"do": "copy", "id": "pf", "tensor": "w", "src": "HBM",
                                                           "dst": "DDR"})),
                             [("actions[3].id", "duplicate|pf")]),
    "duplicate_default_run_ids": (_mod(SCHED, actions=_actions({"do": "run", "op": "f"})),
                                  [("actions[3].id", "duplicate|f")]),
    "free_without_after": (_mod(SCHED, actions=_actions({"do": "free", "id": "fr", "tensor": "w", "tier": "HBM"})),
                           [("actions[3].after", "free")]),
    "free_with_empty_after": (_mod(SCHED, actions=_actions({"do": "free", "id": "fr", "tensor": "w", "tier": "HBM",
                                                            "after": []})),
                              [("actions[3].after", "free")]),
    "unknown_do": (_mod(SCHED, actions=_actions({"do": "jump", "id": "j"})), [("actions[3].do", "jump")]),
    "missing_do": (_mod(SCHED, actions=_actions({"id": "j", "op": "f"})), [("actions[3]", "do")]),
    "copy_missing_tensor": (_mod(SCHED, actions=_actions({"do": "copy", "id": "c", "src": "HBM", "dst": "DDR"})),
                            [("actions[3]", "tensor")]),
    "after_not_a_list": (_mod(SCHED, actions=_actions({"do": "run", "op": "g", "id": "g2", "after": "pf"})),
                         [("actions[3].after", "array")]),
    "op_wrong_type": (_mod(SCHED, actions=_actions({"do": "run", "op": 5, "id": "r5"})), [("actions[3].op", "str")]),
    "free_src_wrong_type": (_mod(SCHED, actions=_actions({"do": "copy", "id": "c", "tensor": "w", "src": "HBM",
                                                          "dst": "DDR", "free_src": "yes"})),
                            [("actions[3].free_src", "bool")]),
    "negative_capacity": (_mod(SCHED, capacity={"HBM": -3}), [("capacity.HBM", ">= 0")]),
    "bad_capacity_unit": (_mod(SCHED, capacity={"HBM": "3 parsec"}), [("capacity.HBM", "unit")]),
    "capacity_not_an_object": (_mod(SCHED, capacity=[1]), [("capacity", "object")]),
    "solver_not_an_object": (_mod(SCHED, solver="greedy"), [("solver", "object")]),
}


@pytest.mark.parametrize("case", sorted(SCHED_CASES))
def test_bad_schedule(tmp_path: Path, case: str) -> None:
    content, expected = SCHED_CASES[case]
    t, h, s = _files(tmp_path, sched=content)
    _expect_input_error(["validate", t, h, s], s, expected)


def test_all_schedule_problems_reported_with_their_own_paths(tmp_path: Path) -> None:
    """Rule problems keep the JSON path of their action even when an earlier action is unreadable."""
    sched = _mod(SCHED, capacity={"HBM": -1}, actions=[
        {"do": "jump", "id": "j"},                                       # 0: unknown do
        {"do": "free", "id": "fr", "tensor": "w", "tier": "HBM"},        # 1: free without after
        {"do": "run", "op": "f"},                                        # 2
        {"do": "run", "op": "f"},                                        # 3: duplicate id f
        {"do": "copy", "tensor": "w"},                                   # 4: missing fields
        {"do": "run", "op": "g", "after": ["fr"]}])                      # 5
    t, h, s = _files(tmp_path, sched=sched)
    lines = _expect_input_error(["validate", t, h, s], s, [
        ("capacity.HBM", ">= 0"), ("actions[0].do", "jump"), ("actions[1].after", "free"),
        ("actions[3].id", "duplicate|actions[2]"), ("actions[4]", "missing")])
    assert len(lines) == 5, lines


def test_unknown_references_are_an_invalid_schedule_not_bad_input(tmp_path: Path) -> None:
    sched = _mod(SCHED, actions=_actions({"do": "run", "op": "nope", "id": "ghost"},
                                         {"do": "free", "id": "fr", "tensor": "w", "tier": "NVME", "after": ["zz"]}))
    t, h, s = _files(tmp_path, sched=sched)
    rc, out, err = cli(["validate", t, h, s, "--json"])
    assert rc == 1, err
    doc = json.loads(out)
    assert {e["code"] for e in doc["errors"]} == {"unknown-ref"}
    assert {e["action"] for e in doc["errors"]} == {"ghost", "fr"}


BAD_UTF8 = {
    "trace": b'{"format": "tierplan.trace/1", "name": "\xff\xfe", "tensors": [], "ops": []}',
    "sched": b'{"format": "tierplan.schedule/1", "trace": "\xff", "actions": []}',
    "hw": b'{"format": "tierplan.hardware/1", "name": "\xff"}',
    # a type error before the bad byte sends the trace to the generic (slow-path) decoder
    "trace_slow_path": b'{"format": "tierplan.trace/1", "tensors": 5, "name": "\xff"}',
}


@pytest.mark.parametrize("which", ["trace", "sched", "hw", "trace_slow_path"])
def test_invalid_utf8_is_malformed_json(tmp_path: Path, which: str) -> None:
    key = "trace" if which.startswith("trace") else which
    t, h, s = _files(tmp_path, **{key: BAD_UTF8[which]})
    bad = {"trace": t, "hw": h, "sched": s}[key]
    _expect_input_error(["validate", t, h, s], bad, [("", "malformed JSON")])


def test_missing_file(tmp_path: Path) -> None:
    t, h, _ = _files(tmp_path)
    missing = str(tmp_path / "nowhere.json")
    _expect_input_error(["validate", t, h, missing], missing, [("", "cannot read")])


# --- gzip --------------------------------------------------------------------------------------


def test_gz_trace_and_schedule_read_like_json(tmp_path: Path) -> None:
    t = tmp_path / "trace.json.gz"
    t.write_bytes(gzip.compress(json.dumps(TRACE).encode()))
    s = tmp_path / "sched.json.gz"
    s.write_bytes(gzip.compress(json.dumps(SCHED).encode()))
    h = _write(tmp_path / "hw.json", HW)
    assert load_trace(t).tensor("y").bytes == 200
    assert len(load_schedule(s).actions) == 3
    rc, out, err = cli(["validate", str(t), str(h), str(s), "--json"])
    assert rc == 0, err
    rc, out, err = cli(["inspect", str(t), "--json"])
    assert rc == 0 and json.loads(out)["ops"] == 2


def test_broken_gz(tmp_path: Path) -> None:
    t = str(_write(tmp_path / "trace.json.gz", b"\x1f\x8b\x08\x00garbage"))
    _, h, s = _files(tmp_path)
    _expect_input_error(["validate", t, h, s], t, [("", "gzip")])


def test_gz_with_bad_content(tmp_path: Path) -> None:
    t = tmp_path / "trace.json.gz"
    t.write_bytes(gzip.compress(json.dumps(TRACE_CASES["two_producers"][0]).encode()))
    _, h, s = _files(tmp_path)
    _expect_input_error(["validate", str(t), h, s], str(t), TRACE_CASES["two_producers"][1])
    t.write_bytes(gzip.compress(b"{not json"))
    _expect_input_error(["validate", str(t), h, s], str(t), [("", "malformed JSON")])


# --- unit strings ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [
    ("64 GiB", 64 * 2**30), ("1.5GB", 1_500_000_000), ("1 KiB", 1024), ("1 kB", 1000), ("3 MiB", 3 * 2**20),
    ("2 MB", 2_000_000), ("1 TiB", 2**40), ("1 TB", 10**12), ("7", 7), ("7 B", 7), (12, 12), ("0.5 KiB", 512),
])
def test_parse_size(text: Any, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text, value", [
    ("10us", 1e-5), ("2.5 ms", 2.5e-3), ("3 s", 3.0), ("1.5", 1.5), ("250ns", 2.5e-7), (0.25, 0.25),
])
def test_parse_time(text: Any, value: float) -> None:
    assert parse_time(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text, value", [
    ("25 GB/s", 25e9), ("1 GiB/s", 2**30), ("100 B/s", 100.0), ("1.5 MB/s", 1.5e6), (100, 100.0),
])
def test_parse_bandwidth(text: Any, value: float) -> None:
    assert parse_bandwidth(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("fn, text", [
    (parse_size, "12 XB"), (parse_size, "25 GB/s"), (parse_size, "10 ms"), (parse_size, "lots"),
    (parse_size, True), (parse_size, float("inf")), (parse_size, [1]),
    (parse_time, "5 GiB"), (parse_time, "3 parsec"), (parse_time, ""),
    (parse_bandwidth, "10 ms"), (parse_bandwidth, "fast"),
])
def test_bad_unit_strings(fn: Any, text: Any) -> None:
    with pytest.raises(UnitError):
        fn(text)


def test_unit_strings_in_every_file(tmp_path: Path) -> None:
    trace = _mod(TRACE, tensors=[dict(TRACE["tensors"][0], bytes="1 KiB"), dict(TRACE["tensors"][1], bytes="0.5kB"),
                                 dict(TRACE["tensors"][2], bytes="2 KiB")],
                 ops=[dict(TRACE["ops"][0], duration="2.5 ms", workspace="1 KiB"),
                      dict(TRACE["ops"][1], duration="500us")])
    hw = _mod(HW, tiers=[{"name": "HBM", "capacity": "5 KiB"}, {"name": "DDR", "capacity": "1.5GB"}],
              links=[{"src": "HBM", "dst": "DDR", "bandwidth": "1 MiB/s", "latency": "10us"},
                     {"src": "DDR", "dst": "HBM", "bandwidth": "1 MiB/s", "latency": "10us"}])
    sched = _mod(SCHED, capacity={"HBM": "4.5 KiB"})
    t, h, s = _files(tmp_path, trace=trace, hw=hw, sched=sched)
    tr = load_trace(t)
    assert [x.bytes for x in tr.tensors] == [1024, 500, 2048]
    assert tr.ops[0].duration == pytest.approx(0.0025, rel=1e-15) and tr.ops[0].workspace == 1024
    assert load_schedule(s).capacity["HBM"] == 4608
    rc, out, err = cli(["validate", t, h, s, "--json"])
    assert rc == 0, err
    m = json.loads(out)["metrics"]
    # pf (w, DDR->HBM): 10us + 2048 / 2**20 s = 0.001963125 s, in parallel with f (0..2.5 ms);
    # g waits for f (stream) and pf: 2.5 ms .. 3 ms
    assert m["makespan"] == pytest.approx(0.003, rel=1e-12)
    # t=0: x 1024 + y 500 + f's workspace 1024 + w arriving 2048 = 4596 <= 4.5 KiB = 4608
    # (the hardware's 4 KiB = 4096 would not do: the schedule's capacity overrides it)
    assert m["peak"] == {"HBM": 4596, "DDR": 2048}
    assert m["bytes_moved"] == {"HBM->DDR": 0, "DDR->HBM": 2048}


# --- the real console entry point ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["trace", "hw", "sched"])
def test_bad_input_via_subprocess(tmp_path: Path, which: str) -> None:
    content = {"trace": TRACE_CASES["two_producers"][0], "hw": HW_CASES["zero_bandwidth"][0],
               "sched": SCHED_CASES["unknown_do"][0]}[which]
    t, h, s = _files(tmp_path, **{which: content})
    rc, out, err = cli_subprocess(["validate", t, h, s])
    assert rc == 2
    assert "Traceback" not in err
    bad = {"trace": t, "hw": h, "sched": s}[which]
    assert err.startswith(f"error: {bad}: ")
