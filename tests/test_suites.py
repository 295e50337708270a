"""Benchmark suites: loading, sizes per suite, materialization and caching, budgets, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver.errors import InputError
from solver.fileio import dumps_json
from solver.formats import load_hardware, load_trace, trace_from_document
from solver.plans import keep_schedule
from solver.suites import Budget, cache_key, list_suites, load_suite, materialize, trace_path
from solver.timing import validate
from solver.workloads import build
from solver.workloads.presets import instances_dir

SIZES = {"tiny": (1, 40), "small": (100, 300), "medium": (1000, 3000), "large": (50_000, 10**9)}


def n_ops(inst):
    if inst.trace is not None:
        return len(load_trace(inst.trace).ops)
    r = inst.recipe
    return len(build(r.kind, r.options_dict(), seed=r.seed).ops)


def test_all_suites_present_and_load():
    assert {"tiny", "small", "medium", "large", "ci"} <= set(list_suites())
    for name in list_suites():
        suite = load_suite(name)
        assert suite.name == name and suite.instances
        assert all(inst.description for inst in suite.instances), name
        assert len({i.name for i in suite.instances}) == len(suite.instances)


@pytest.mark.parametrize("name", ["tiny", "small", "medium", "large"])
def test_suite_sizes(name):
    lo, hi = SIZES[name]
    suite = load_suite(name)
    assert len(suite.instances) >= 4
    for inst in suite.instances:
        assert lo <= n_ops(inst) <= hi, inst.name


def test_large_is_recipes_only_and_committed_files_are_small():
    assert all(i.recipe is not None and i.trace is None for i in load_suite("large").instances)
    for path in (instances_dir() / "suites").rglob("*"):
        if path.is_file() and not path.suffix == ".toml":
            assert path.name.endswith(".json.gz") and path.stat().st_size < 1_000_000, path


def test_ci_is_a_fast_subset():
    ci = load_suite("ci")
    known = {(i.name, dumps_json(i.recipe.options_dict()) if i.recipe else None)
             for s in ("tiny", "small") for i in load_suite(s).instances}
    for inst in ci.instances:
        assert (inst.name, dumps_json(inst.recipe.options_dict())) in known
        assert n_ops(inst) <= 300


@pytest.mark.parametrize("suite_name", ["tiny", "small"])
def test_keep_schedule_validates_at_budget_one(suite_name):
    suite = load_suite(suite_name)
    for inst in suite.instances:
        trace = trace_from_document(materialize(inst, cache_dir=False), file=inst.name)
        hw = load_hardware(inst.hardware_path)
        full = Budget(fraction=1.0).capacities(trace.no_offload_peak, hw.compute_tier)
        report = validate(trace, hw, keep_schedule(trace, hw), capacity=full)
        assert report.valid, (inst.name, [str(e) for e in report.errors][:3])
        if all(t.initial_tier in (None, hw.compute_tier) for t in trace.tensors):
            # everything resident from the start: the simulated peak is exactly the no-offload peak
            tight = {hw.compute_tier: trace.no_offload_peak - 1}
            assert not validate(trace, hw, keep_schedule(trace, hw), capacity=tight).valid, inst.name


def test_materialize_is_deterministic_and_cached(tmp_path):
    inst = load_suite("tiny").instance("moe-tiny-1layer")
    fresh = materialize(inst, cache_dir=False)
    assert fresh["name"] == "moe-tiny-1layer"
    path = trace_path(inst, tmp_path)
    assert path.parent == tmp_path and cache_key(inst) in path.name
    mtime = path.stat().st_mtime_ns
    assert materialize(inst, cache_dir=tmp_path) == fresh
    assert trace_path(inst, tmp_path) == path and path.stat().st_mtime_ns == mtime
    assert load_trace(path).name == "moe-tiny-1layer"
    other = load_suite("tiny").instance("chain-12-skip3")
    assert cache_key(other) != cache_key(inst)


def test_committed_trace_instance():
    inst = load_suite("tiny").instance("example-mlp")
    assert inst.trace is not None and inst.recipe is None
    assert materialize(inst)["format"] == "tierplan.trace/1"


def test_budgets():
    assert Budget(fraction=0.7).capacities(1000, "HBM") == {"HBM": 700}
    assert Budget(fraction=0.7).capacities(1001, "HBM") == {"HBM": 701}         # rounded up
    assert Budget(capacity=5, tiers=(("DDR", 9),)).capacities(1000, "HBM") == {"HBM": 5, "DDR": 9}
    assert Budget(fraction=0.5).label == "0.5"


def write_suite(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text('format = "tierplan.suite/1"\nname = "s"\n' + body)
    return p


def test_budget_forms_in_a_suite_file(tmp_path):
    p = write_suite(tmp_path, '''
budgets = [1.0, 0.5, "2 GiB", { fraction = 0.3, tiers = { DDR = "1 GiB" } }, { capacity = "1 GiB" }]
[[instances]]
name = "c"
hardware = "laptop-sized"
recipe = { kind = "chain", seed = 3, options = { layers = 3 } }
[[instances]]
name = "r"
hardware = "laptop-sized"
budgets = [0.25]
recipe = { kind = "random", options = { ops = 5 } }
''')
    suite = load_suite(p)
    c, r = suite.instances
    assert [b.fraction for b in c.budgets] == [1.0, 0.5, None, 0.3, None]
    assert c.budgets[2].capacity == 2**31 and c.budgets[3].tiers == (("DDR", 2**30),)
    assert r.budgets == (Budget(fraction=0.25),) and r.recipe.seed == 0
    assert materialize(r, cache_dir=False)["name"] == "r"


def test_bad_suite_reports_every_problem_with_paths(tmp_path):
    p = write_suite(tmp_path, '''
budgets = [0, "lots", true]
[[instances]]
name = "a"
hardware = "tpu-v9"
recipe = { kind = "train", seed = -1, options = { model = "llama3-9b" } }
[[instances]]
name = "a"
hardware = "laptop-sized"
trace = "missing.json.gz"
[[instances]]
name = "b"
hardware = "laptop-sized"
[[instances]]
name = "c"
hardware = "laptop-sized"
recipe = { kind = "shuffle" }
[[instances]]
name = "d"
hardware = "laptop-sized"
recipe = { kind = "train", options = { model = "llama-tiny", seq_len = 0, heads = 3 } }
''')
    with pytest.raises(InputError) as err:
        load_suite(p)
    text = str(err.value)
    for needle in ["budgets[0]: a fraction of the no-offload peak must be > 0",
                   "budgets[1]: cannot read 'lots'", "budgets[2]",
                   "instances[0].hardware: unknown hardware preset 'tpu-v9'",
                   "instances[0].recipe.seed", "instances[0].recipe.options.model: unknown model preset",
                   "instances[4].recipe.options.seq_len: must be > 0",
                   "instances[1].name: duplicate", "instances[1].trace: trace file 'missing.json.gz' not found",
                   "instances[2]: give exactly one of trace", "instances[3].recipe.kind: unknown workload kind"]:
        assert needle in text, needle
    assert all(line.startswith(str(p)) for line in text.splitlines())


def test_unknown_suite_and_wrong_format(tmp_path):
    with pytest.raises(InputError, match="unknown suite 'nope'; suites: .*tiny"):
        load_suite("nope")
    q = tmp_path / "q.toml"
    q.write_text('format = "tierplan.trace/1"\n')
    with pytest.raises(InputError, match='expected "tierplan.suite/1"'):
        load_suite(q)
