"""Suites with imported traces outside the repository: the ``external`` suite, optional imports that
are skipped when their file is absent, suite-defined hardware, ``[bench]`` defaults, and skipped rows
in ``tierplan bench`` (CSV, summary, ``--check``)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import networkx as nx
import pytest

from bench_support import run_cli
from solver.bench.check import compare, format_check
from solver.bench.local import LocalPool
from solver.bench.planners import MethodSpec
from solver.bench.rows import Row, read_csv, write_csv
from solver.bench.summary import summary_markdown
from solver.bench.sweep import run_sweep
from solver.bench.tasks import RunOptions, build_tasks
from solver.errors import InputError
from solver.fileio import decode_json, read_document
from solver.formats import trace_from_document
from solver.importers.registry import run_import
from solver.suites import (
    hardware_source, import_trace, load_instance_hardware, load_suite, materialize, trace_path,
)
from solver.workloads.presets import instances_dir

MOCCASIN = instances_dir().parent.parent / "shared" / "traces" / "moccasin"
needs_shared = pytest.mark.skipif(not (MOCCASIN / "VGG16_256_224x224x3_test_nx.json.gz").is_file(),
                                  reason="../shared/traces/moccasin is absent")

HEAD = '''format = "tierplan.suite/1"
name = "ext"
description = "imports for the tests"
budgets = [1.0, 0.8]

[hardware.one-tier]
compute_tier = "HBM"
tiers = [{ name = "HBM", capacity = "1 TiB" }]
links = []
'''


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TIERPLAN_CACHE", str(tmp_path_factory.getbasetemp() / "trace-cache"))


def write_graph(path: Path) -> Path:
    """A tiny Checkmate-style graph (a forward chain, a backward chain, one skip edge), written as
    networkx node-link JSON, gzip'd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    g = nx.DiGraph()
    for i, (cpu, ram) in enumerate([(10, 4000), (20, 8000), (15, 6000), (25, 8000), (30, 4000)]):
        g.add_node(i, cost_cpu=cpu, cost_ram=ram, backward=i >= 3, name=f"layer{i}")
    g.add_edges_from([(0, 1), (1, 2), (2, 3), (1, 3), (3, 4), (0, 4)])
    doc = nx.node_link_data(g, edges="links")
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    return path


def write_suite(folder: Path, body: str, head: str = HEAD) -> Path:
    path = folder / "ext.toml"
    path.write_text(head + body)
    return path


def import_entry(name: str, path: str, extra: str = "", optional: bool = True) -> str:
    opt = "true" if optional else "false"
    return f'''
[[instances]]
name = "{name}"
description = "an imported graph"
hardware = "one-tier"
import = {{ format = "networkx", path = "{path}", optional = {opt}{extra} }}
'''


# --- the external suite -------------------------------------------------------------------------


def test_external_suite_lists_every_moccasin_graph_on_one_tier():
    suite = load_suite("external")
    assert suite.name == "external" and suite.description
    assert suite.bench.methods == ("auto",) and suite.bench.time_limit == 300.0
    files = set()
    for inst in suite.instances:
        imp = inst.imported
        assert imp is not None and inst.trace is None and inst.recipe is None and inst.description
        assert imp.format == "networkx" and imp.optional
        assert imp.path.parent == MOCCASIN.resolve() or imp.path.parent == Path(str(MOCCASIN))
        assert [b.label for b in inst.budgets] == ["0.9", "0.8"]
        hw = load_instance_hardware(inst)
        assert inst.hardware_path is None and inst.hardware == "compute-only"
        assert [t.name for t in hw.tiers] == ["HBM"] and hw.compute_tier == "HBM" and hw.links == ()
        files.add(imp.path.name)
    assert len(files) == len(suite.instances) == 14
    assert sum(f.endswith("_train_nx.json.gz") for f in files) == 6
    assert sum(f.endswith("_test_nx.json.gz") for f in files) == 6
    if MOCCASIN.is_dir():
        assert files == {p.name for p in MOCCASIN.glob("*.json.gz")}
        assert all(not inst.skip_reason for inst in suite.instances)


@needs_shared
def test_external_instance_is_the_networkx_import_of_its_file():
    inst = load_suite("external").instance("VGG16_256_224x224x3_test")
    doc = materialize(inst)
    assert doc == run_import("networkx", str(inst.imported.path)).document
    assert len(doc["ops"]) == 22


@needs_shared
def test_bench_external_runs_the_exact_method_on_vgg16_test(tmp_path):
    code, _, err = run_cli(["bench", "external", "--instances", "VGG16_256_224x224x3_test", "--out",
                            str(tmp_path), "--progress", "none", "--no-plots"])
    assert code == 0, err
    rows = read_csv(tmp_path / "external.csv")
    assert [(r.budget, r.method, r.status, r.ops) for r in rows] == [
        ("0.9", "auto", "infeasible", 22), ("0.8", "auto", "infeasible", 22)]
    assert all(json.loads(r.options)["recompute"] and json.loads(r.options)["time_limit"] == 300 for r in rows)
    assert "--methods auto --time-limit 300" in (tmp_path / "external.md").read_text()


# --- optional imports ---------------------------------------------------------------------------


def test_missing_optional_import_is_skipped_with_the_reason(tmp_path):
    (tmp_path / "suites").mkdir()
    suite = load_suite(write_suite(tmp_path / "suites", import_entry("gone", "../nowhere/g_nx.json.gz")))
    inst = suite.instance("gone")
    assert inst.imported.optional and not inst.imported.available
    assert inst.skip_reason == (f"optional trace file not found: {tmp_path / 'nowhere' / 'g_nx.json.gz'} "
                                f"({tmp_path / 'suites' / 'ext.toml'}: instances[0].import.path = "
                                "'../nowhere/g_nx.json.gz')")
    for call in (lambda: materialize(inst), lambda: trace_path(inst, tmp_path)):
        with pytest.raises(InputError, match="instance 'gone' is skipped: optional trace file"):
            call()
    tasks = build_tasks(suite, [MethodSpec("keep", "keep")], RunOptions(time_limit=5))
    assert len(tasks) == 2 and all(t.skip == inst.skip_reason for t in tasks)
    # the file appears: the same loaded instance is available now (checked at use, not at load)
    write_graph(tmp_path / "nowhere" / "g_nx.json.gz")
    assert inst.skip_reason == "" and materialize(inst)["format"] == "tierplan.trace/1"


def test_missing_required_import_is_a_problem(tmp_path):
    p = write_suite(tmp_path, import_entry("gone", "missing_nx.json", optional=False))
    with pytest.raises(InputError) as err:
        load_suite(p)
    assert f"{p}: instances[0].import.path: trace file 'missing_nx.json' not found (relative to the suite " \
           "file); add optional = true" in str(err.value)


def test_import_materializes_exactly_as_tierplan_import_networkx(tmp_path):
    graph = write_graph(tmp_path / "tiny_nx.json.gz")
    suite = load_suite(write_suite(tmp_path, import_entry("tiny", "tiny_nx.json.gz",
                                                          ', options = { time_unit = "1ms" }', optional=False)))
    inst = suite.instance("tiny")
    assert inst.imported.path == graph and inst.imported.options_dict() == {"time_unit": 1e-3}
    doc = materialize(inst)
    assert doc == run_import("networkx", str(graph), time_unit=1e-3).document
    out = tmp_path / "cli.json"
    code, _, err = run_cli(["import", "networkx", str(graph), "--time-unit", "1ms", "-o", str(out), "--quiet"])
    assert code == 0, err
    cli = read_document(out)
    assert decode_json(json.dumps(doc).encode(), "doc") == cli
    assert read_document(trace_path(inst, tmp_path / "cache")) == cli
    tr = trace_from_document(doc)
    assert len(tr.ops) == 5 and tr.compute_time == pytest.approx(0.1)
    # a run of the bench child and a Dask worker see the same trace
    task = build_tasks(suite, [MethodSpec("keep", "keep")], RunOptions())[0]
    assert task.trace.imported == inst.imported and not task.skip
    shipped = task.for_host("dask", portable=True).trace
    assert shipped.imported is None and decode_json(shipped.data, "x") == cli
    assert hardware_source(inst)[0] == "one-tier.json"


def test_import_options_name_and_initial_tier_match_the_cli_flags(tmp_path):
    graph = write_graph(tmp_path / "g_nx.json.gz")
    head = HEAD.replace('tiers = [{ name = "HBM", capacity = "1 TiB" }]',
                        'tiers = [{ name = "HBM", capacity = "1 TiB" }, { name = "DDR", capacity = "1 TiB" }]')
    suite = load_suite(write_suite(tmp_path, import_entry(
        "g", "g_nx.json.gz", ', options = { name = "renamed", initial_tier = "DDR", order_attr = "order" }'),
        head))
    inst = suite.instance("g")
    with pytest.raises(InputError, match="graph.order: no such graph attribute"):
        materialize(inst)
    suite = load_suite(write_suite(tmp_path, import_entry(
        "g", "g_nx.json.gz", ', options = { name = "renamed", initial_tier = "DDR" }'), head))
    out = tmp_path / "cli.json"
    code, _, err = run_cli(["import", "networkx", str(graph), "--name", "renamed", "--initial-tier", "DDR",
                            "-o", str(out), "--quiet"])
    assert code == 0, err
    assert decode_json(json.dumps(import_trace(suite.instance("g").imported)).encode(), "d") == read_document(out)


def test_recipe_on_suite_defined_hardware(tmp_path):
    suite = load_suite(write_suite(tmp_path, '''
[[instances]]
name = "chain"
description = "a chain on the one-tier machine"
hardware = "one-tier"
recipe = { kind = "chain", seed = 1, options = { layers = 3 } }
'''))
    inst = suite.instance("chain")
    assert inst.hardware_path is None and materialize(inst, cache_dir=tmp_path)["name"] == "chain"
    assert trace_path(inst, tmp_path).is_file()


# --- bad entries ----------------------------------------------------------------------------------


def test_bad_entries_report_every_problem_with_its_json_path(tmp_path):
    write_graph(tmp_path / "g_nx.json.gz")
    p = write_suite(tmp_path, '''
[[instances]]
name = "a"
description = "unknown format, optional not a bool, unknown key"
hardware = "one-tier"
import = { format = "caffe", path = "g_nx.json.gz", optional = "yes", member = 3 }

[[instances]]
name = "b"
description = "no path"
hardware = "one-tier"
import = { format = "networkx" }

[[instances]]
name = "c"
description = "bad options"
hardware = "one-tier"
import = { format = "networkx", path = "g_nx.json.gz", options = { time_unit = "1 parsec", colour = "red", duration_attr = 3 } }

[[instances]]
name = "d"
description = "two sources"
hardware = "one-tier"
recipe = { kind = "chain", options = { layers = 3 } }
import = { format = "networkx", path = "g_nx.json.gz" }

[[instances]]
name = "e"
description = "unknown hardware"
hardware = "two-tier"
import = { format = "networkx", path = "g_nx.json.gz", options = "fast" }

[hardware.broken]
compute_tier = "HBM"
tiers = [{ name = "HBM", capacity = "lots" }]

[bench]
methods = ["auto", "nope", 3]
time_limit = 0
jobs = 2
''', head='colour = "red"\n' + HEAD)
    with pytest.raises(InputError) as err:
        load_suite(p)
    text = str(err.value)
    for needle in [
        "instances[0].import.format: unknown import format 'caffe'; valid formats: networkx",
        "instances[0].import.optional: expected true or false, got 'yes'",
        "instances[0].import: unknown keys member",
        "instances[1].import.path: missing or not a file path",
        "instances[2].import.options.time_unit: unknown time unit",
        "instances[2].import.options.colour: unknown option of the networkx importer; options: duration_attr",
        "instances[2].import.options.duration_attr: expected a non-empty string, got 3",
        "instances[3]: give exactly one of trace (a committed file), recipe (a generator call) and import",
        "got recipe, import",
        "instances[4].hardware: unknown hardware preset 'two-tier'",
        "the suite defines one-tier",
        "instances[4].import.options: expected a table",
        "hardware.broken.tiers[0].capacity",
        "bench.methods[1]: unknown method 'nope'",
        "bench.methods[2]: expected a method name, got 3",
        "bench.time_limit: expected seconds > 0, got 0",
        "bench: unknown keys jobs",
        ": unknown keys colour",
    ]:
        assert needle in text, needle
    assert all(line.startswith(f"{p}: ") for line in text.splitlines())


# --- skipped runs in the bench ------------------------------------------------------------------


def two_instance_suite(tmp_path: Path) -> Path:
    """An available import and an optional one whose file is absent; [bench] picks keep, 5 s."""
    write_graph(tmp_path / "here_nx.json.gz")
    return write_suite(tmp_path, '''
[bench]
methods = ["keep"]
time_limit = 5
''' + import_entry("here", "here_nx.json.gz") + import_entry("gone", "later/gone_nx.json.gz"))


def test_bench_skips_absent_instances_exits_0_and_records_them(tmp_path):
    suite = two_instance_suite(tmp_path)
    out = tmp_path / "out"
    code, _, err = run_cli(["bench", str(suite), "--out", str(out), "--progress", "none"])
    assert code == 0, err
    assert "skipping 1 instance(s) of suite ext (2 run(s)), unavailable here:" in err
    assert f"  gone: optional trace file not found: {tmp_path / 'later' / 'gone_nx.json.gz'} " in err
    assert "2 run(s) not run: their instances are unavailable here (status 'skipped'" in err
    rows = read_csv(out / "ext.csv")
    assert [(r.instance, r.budget, r.method, r.status) for r in rows] == [
        ("here", "1", "keep", "feasible"), ("here", "0.8", "keep", "infeasible"),
        ("gone", "1", "keep", "skipped"), ("gone", "0.8", "keep", "skipped")]
    assert all(json.loads(r.options)["time_limit"] == 5 for r in rows)
    gone = [r for r in rows if r.instance == "gone"]
    assert all("not found" in r.message and r.valid is None and r.ops is None and r.commit for r in gone)
    md = (out / "ext.md").read_text()
    assert "## Skipped" in md and "| gone | 2 | optional trace file" in md
    assert "| keep | 2 | 1 | 1 |" in md            # the skipped runs are neither runs nor failures
    assert "## Failures" not in md
    assert sorted(p.name for p in (out / "ext").glob("*.png")) == ["here.png"]

    # the check: skipped runs are reported, never a regression
    code, stdout, err = run_cli(["bench", str(suite), "--check", str(out / "ext.csv"), "--progress", "none"])
    assert code == 0, err
    assert "check: 2 runs compared, 2 skipped (instance unavailable here), no difference" in stdout
    baseline = tmp_path / "baseline.csv"
    write_csv(baseline, [r.with_(status="feasible", valid=True, makespan=1.0, message="")
                         if r.instance == "gone" and r.budget == "1" else r for r in rows])
    code, stdout, err = run_cli(["bench", str(suite), "--check", str(baseline), "--progress", "none"])
    assert code == 0, stdout + err
    assert "gone" in stdout and "skipped" in stdout and "not run here: optional trace file" in stdout
    assert "PASS" in stdout

    # the file arrives: a resumed sweep runs the skipped runs and keeps the others
    tasks = build_tasks(load_suite(suite), [MethodSpec("keep", "keep")], RunOptions(time_limit=5), commit="c")
    with LocalPool(2) as pool:
        first = run_sweep(tasks, pool, csv_path=out / "api.csv")
    assert (first.ran, first.skipped, first.unavailable) == (2, 0, 2)
    write_graph(tmp_path / "later" / "gone_nx.json.gz")
    tasks = build_tasks(load_suite(suite), [MethodSpec("keep", "keep")], RunOptions(time_limit=5), commit="c")
    with LocalPool(2) as pool:
        again = run_sweep(tasks, pool, csv_path=out / "api.csv", previous=read_csv(out / "api.csv"), resume=True)
    assert (again.ran, again.skipped, again.unavailable) == (2, 2, 0)
    assert [r.status for r in read_csv(out / "api.csv")] == ["feasible", "infeasible", "feasible", "infeasible"]


def test_bench_with_every_instance_absent_exits_0(tmp_path):
    suite = write_suite(tmp_path, import_entry("gone", "nowhere_nx.json.gz"))
    out = tmp_path / "out"
    code, _, err = run_cli(["bench", str(suite), "--methods", "keep", "--out", str(out), "--progress", "none"])
    assert code == 0, err
    assert "gone: optional trace file not found: " in err and "instances[0].import.path = 'nowhere_nx" in err
    assert {r.status for r in read_csv(out / "ext.csv")} == {"skipped"}
    assert "No run happened: all 2 run(s), of 1 instance(s), were skipped" in (out / "ext.md").read_text()


def test_command_line_overrides_the_suite_bench_defaults(tmp_path):
    suite = two_instance_suite(tmp_path)
    out = tmp_path / "out"
    code, _, err = run_cli(["bench", str(suite), "--methods", "greedy", "--time-limit", "7", "--budgets", "1",
                            "--instances", "here", "--out", str(out), "--progress", "none", "--no-plots"])
    assert code == 0, err
    (row,) = read_csv(out / "ext.csv")
    assert row.method == "greedy" and json.loads(row.options)["time_limit"] == 7


def test_compare_and_summary_treat_skipped_rows_apart():
    ran = Row(instance="i", budget="1", method="m", status="optimal", valid=True, makespan=1.0, overhead=0.0)
    skip = Row(instance="i", budget="1", method="m", status="skipped", message="optional trace file absent")
    res = compare([ran], [skip])
    assert not res.failed and res.compared == 0 and res.skipped == 1
    assert [(d.verdict, d.reason) for d in res.differences] == [
        ("skipped", "not run here: optional trace file absent")]
    assert "1 skipped (instance unavailable here)" in format_check(res)
    res = compare([skip], [skip])
    assert not res.failed and res.differences == () and res.skipped == 1
    res = compare([skip], [ran])
    assert not res.failed and res.differences[0].verdict == "new"
    assert compare([skip], [ran.with_(valid=False, errors="order:1")]).failed
    md = summary_markdown([ran.with_(instance="j"), skip], "s")
    assert "| m | 1 | 1 | 0 | 1 |" in md and "| i | 1 | optional trace file absent |" in md
