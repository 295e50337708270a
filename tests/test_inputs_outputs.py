"""Reliability of inputs and outputs (issue 19, sections 2-5 and 7): representable ranges, one
message and exit 2 for every unreadable input, outputs that never destroy anything, capacities
whose source is known. Each test here failed on the code before the fix."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solver.cli import main
from solver.errors import InputError
from solver.fileio import check_output_path, read_bytes, write_bytes_atomic
from solver.formats import load_hardware, load_schedule, load_trace
from solver.model import Copy, Free, Hardware, Link, Op, Run, Schedule, Tensor, Tier, Trace
from solver.timing import validate
from solver.units import MAX_BYTES, UnitError, parse_bandwidth, parse_size, parse_time

ROOT = Path(__file__).resolve().parents[1]
EX_TRACE = ROOT / "instances" / "examples" / "trace.json"
EX_HW = ROOT / "instances" / "examples" / "hardware.json"
PRESET = "laptop-sized"


def _trace_doc(sizes: list[object], duration: object = 1.0) -> dict:
    return {"format": "tierplan.trace/1", "name": "t",
            "tensors": [{"id": f"x{i}", "bytes": b} for i, b in enumerate(sizes)],
            "ops": [{"id": "a", "duration": duration, "outputs": [f"x{i}" for i in range(len(sizes))]}]}


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_clear_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines and all(ln.startswith("error: ") for ln in lines), err
    for w in words:
        assert w in err, (w, err)


# --- section 2: representable ranges ----------------------------------------------------------


@pytest.mark.parametrize("value", [1e308, 10**400, "1e30 GiB", 2**60, 4 * 10**18])
def test_a_size_past_the_representable_range_is_refused_at_load(tmp_path, value):
    f = _write(tmp_path / "t.json", _trace_doc([value, 8]))
    with pytest.raises(InputError) as exc:
        load_trace(f)
    assert "tensors[0].bytes" in str(exc.value) and "out of range" in str(exc.value)


def test_a_trace_whose_sizes_add_up_past_the_range_is_refused(tmp_path):
    f = _write(tmp_path / "t.json", _trace_doc([2**52] * 3))
    with pytest.raises(InputError, match="add up to"):
        load_trace(f)


@pytest.mark.parametrize("duration", [1e308, 1e13, "1e15 s"])
def test_a_duration_past_the_range_is_refused(tmp_path, duration):
    f = _write(tmp_path / "t.json", _trace_doc([8], duration))
    with pytest.raises(InputError, match=r"ops\[0\]\.duration"):
        load_trace(f)


def test_units_enforce_the_ranges():
    assert parse_size(MAX_BYTES) == MAX_BYTES
    for bad in (MAX_BYTES + 1, 1e308, "1e30 GiB", 10**400):
        with pytest.raises(UnitError, match="out of range"):
            parse_size(bad)
    with pytest.raises(UnitError):
        parse_time(1e308)
    for bad in (1e-300, "1e30 GB/s"):
        with pytest.raises(UnitError, match="out of range"):
            parse_bandwidth(bad)


def test_capacity_overrides_past_the_range_exit_2(capsys):
    code, _, err = _cli(["validate", str(EX_TRACE), str(EX_HW), str(EX_TRACE), "--capacity", "HBM=9e18"], capsys)
    _one_clear_error(code, err, "--capacity", "out of range")


def test_the_engines_agree_on_sizes_that_would_wrap_64_bit_integers():
    """Built through the API (files cannot hold them): the native kernel leaves them to the reference."""
    n = 9
    tr = Trace("t", tuple(Tensor(id=f"x{i}", bytes=4 * 10**18) for i in range(n)),
               (Op(id="a", duration=1.0, outputs=tuple(f"x{i}" for i in range(n))),))
    assert tr.no_offload_peak == n * 4 * 10**18 == int(tr.resident_profile().max())
    hw = Hardware("h", "HBM", (Tier("HBM", 9 * 10**18),))
    sched = Schedule("t", "h", (Run(op="a"),))
    auto, ref = validate(tr, hw, sched), validate(tr, hw, sched, engine="python")
    assert auto.to_dict() == ref.to_dict()
    assert [e.code.value for e in auto.errors] == ["capacity"]


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, MAX_BYTES // 8), min_size=1, max_size=6),
       durations=st.lists(st.sampled_from([0.0, 1e-9, 1.0, 1e12]), min_size=3, max_size=3),
       bw=st.sampled_from([1.0, 1e9, 1e18]), latency=st.sampled_from([0.0, 1e-6, 1e12]),
       cap=st.sampled_from([1, 2**40, MAX_BYTES]))
def test_engines_report_identically_on_extreme_sizes_and_durations(sizes, durations, bw, latency, cap):
    """Sizes up to 2**50, durations and latencies up to 1e12 s, bandwidths 1 B/s to 1e18 B/s: the
    native kernel and the reference give the same report, timeline included."""
    ids = [f"x{i}" for i in range(len(sizes))]
    tr = Trace("t", tuple(Tensor(id=i, bytes=b) for i, b in zip(ids, sizes)),
               (Op(id="p", duration=durations[0], outputs=tuple(ids)),
                Op(id="q", duration=durations[1]),
                Op(id="r", duration=durations[2], inputs=tuple(ids))))
    hw = Hardware("h", "HBM", (Tier("HBM", cap), Tier("DDR", MAX_BYTES)),
                  (Link("HBM", "DDR", bw, latency), Link("DDR", "HBM", bw, latency)))
    acts = [Run(op="p")]
    acts += [Copy(id=f"out{i}", tensor=i, src="HBM", dst="DDR", after=("p",)) for i in ids]
    acts += [Free(id=f"f{i}", tensor=i, tier="HBM", after=(f"out{i}",)) for i in ids]
    acts += [Run(op="q")]
    acts += [Copy(id=f"in{i}", tensor=i, src="DDR", dst="HBM", after=(f"f{i}",)) for i in ids]
    acts += [Run(op="r", after=tuple(f"in{i}" for i in ids))]
    sched = Schedule("t", "h", tuple(acts))
    auto, ref = validate(tr, hw, sched), validate(tr, hw, sched, engine="python")
    assert auto.to_dict() == ref.to_dict()
    assert auto.timeline == ref.timeline
    m = ref.metrics.makespan
    assert m == m and m < float("inf")   # finite: no overflow to inf or nan


# --- section 4: no traceback, one message naming the file, exit 2 -------------------------------


def test_deep_nesting_is_one_message(tmp_path, capsys):
    f = tmp_path / "deep.json"
    f.write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = _cli(["inspect", str(f)], capsys)
    _one_clear_error(code, err, str(f), "nested too deeply")
    g = tmp_path / "meta.json"
    g.write_text('{"format": "tierplan.trace/1", "meta": ' + '{"a": ' * 5000 + "1" + "}" * 5000
                 + ', "tensors": [], "ops": []}')
    code, _, err = _cli(["inspect", str(g)], capsys)
    _one_clear_error(code, err, str(g), "nested too deeply")


def test_a_corrupt_gzip_body_is_one_message(tmp_path, capsys):
    f = tmp_path / "t.json.gz"
    f.write_bytes(gzip.compress(EX_TRACE.read_bytes())[:-8] + b"garbage!")
    code, _, err = _cli(["inspect", str(f)], capsys)
    _one_clear_error(code, err, str(f), "broken gzip")
    f.write_bytes(b"\x1f\x8b" + bytes(range(200)))
    code, _, err = _cli(["inspect", str(f)], capsys)
    _one_clear_error(code, err, str(f), "broken gzip")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused_not_read(capsys):
    code, _, err = _cli(["inspect", "/dev/zero"], capsys)
    _one_clear_error(code, err, "/dev/zero", "not a regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_given_as_a_trace_does_not_hang(tmp_path):
    fifo = tmp_path / "trace.json"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "solver.cli", "inspect", str(fifo)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    _one_clear_error(proc.returncode, proc.stderr, str(fifo), "FIFO")


def test_decompressed_input_has_a_documented_limit_and_a_flag_to_raise_it(tmp_path, capsys):
    f = tmp_path / "t.json.gz"
    f.write_bytes(gzip.compress(EX_TRACE.read_bytes()))
    size = len(EX_TRACE.read_bytes())
    code, _, err = _cli(["--max-input", str(size - 1), "inspect", str(f)], capsys)
    _one_clear_error(code, err, str(f), "decompressed", "--max-input")
    code, out, _ = _cli(["--max-input", str(size), "inspect", str(f)], capsys)
    assert code == 0 and "ops" in out
    with pytest.raises(InputError, match="input limit"):
        read_bytes(f, limit=size - 1)
    assert os.environ.get("TIERPLAN_MAX_INPUT") is None   # main() leaves the environment as it found it


def test_bad_option_values_exit_2(capsys, tmp_path):
    code, _, err = _cli(["solve", str(EX_TRACE), "-H", str(EX_HW), "-m", "belady", "--option", "window=abc"], capsys)
    _one_clear_error(code, err, "window")
    code, _, err = _cli(["solve", str(EX_TRACE), "-H", str(EX_HW), "-m", "greedy", "--option", "candidates=0"],
                        capsys)
    _one_clear_error(code, err, "candidates")


def test_write_model_into_an_impossible_folder_fails_before_the_solve(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out, err = _cli(["solve", str(EX_TRACE), "-H", str(EX_HW), "-m", "milp", "--time-limit", "30",
                           "--write-model", str(blocker / "sub" / "m.mps")], capsys)
    _one_clear_error(code, err, "--write-model", "not a folder")
    assert out == ""   # nothing was solved


def test_terminal_escapes_in_ids_are_escaped_by_solve_and_validate(tmp_path, capsys):
    doc = json.loads(EX_TRACE.read_text())
    doc["name"] = "evil\x1b[2Jname"
    f = _write(tmp_path / "t.json", doc)
    code, out, _ = _cli(["solve", str(f), "-H", str(EX_HW), "-o", str(tmp_path / "s.json")], capsys)
    assert code == 0 and "\x1b" not in out and "evil\\x1b[2Jname" in out
    bad = json.loads((tmp_path / "s.json").read_text())
    bad["actions"][0]["after"] = ["\x1b]0;pwned\x07"]
    g = _write(tmp_path / "bad.json", bad)
    code, out, err = _cli(["validate", str(f), str(EX_HW), str(g)], capsys)
    assert code == 1 and "\x1b" not in out + err and "\x07" not in out + err


# --- section 5: outputs never destroy anything ------------------------------------------------


def test_output_onto_an_input_is_refused_and_the_input_kept(tmp_path, capsys):
    trace = tmp_path / "t.json"
    trace.write_bytes(EX_TRACE.read_bytes())
    before = trace.read_bytes()
    code, _, err = _cli(["solve", str(trace), "-H", str(EX_HW), "-o", str(trace)], capsys)
    _one_clear_error(code, err, "-o", "is an input")
    link = tmp_path / "alias.json"
    os.link(trace, link)   # same inode, another name
    code, _, err = _cli(["solve", str(trace), "-H", str(EX_HW), "-o", str(link)], capsys)
    _one_clear_error(code, err, "is an input")
    sched = tmp_path / "s.json"
    assert _cli(["solve", str(trace), "-H", str(EX_HW), "-o", str(sched)], capsys)[0] == 0
    code, _, err = _cli(["validate", str(trace), str(EX_HW), str(sched), "--timeline", str(trace)], capsys)
    _one_clear_error(code, err, "--timeline", "is an input")
    assert trace.read_bytes() == before


def test_an_existing_node_that_is_not_a_file_is_never_replaced(tmp_path, capsys):
    target = tmp_path / "real.json"
    target.write_text("keep me")
    sym = tmp_path / "sym.json"
    sym.symlink_to(target)
    code, _, err = _cli(["solve", str(EX_TRACE), "-H", str(EX_HW), "-o", str(sym)], capsys)
    _one_clear_error(code, err, "symbolic link")
    assert sym.is_symlink() and target.read_text() == "keep me"
    folder = tmp_path / "dir.json"
    folder.mkdir()
    code, _, err = _cli(["solve", str(EX_TRACE), "-H", str(EX_HW), "-o", str(folder)], capsys)
    _one_clear_error(code, err, "directory")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.json"
        os.mkfifo(fifo)
        with pytest.raises(InputError, match="FIFO"):
            write_bytes_atomic(fifo, b"x")
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_bench_out_naming_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "out"
    f.write_text("x")
    code, _, err = _cli(["bench", "ci", "--out", str(f), "--methods", "keep", "--progress", "none"], capsys)
    _one_clear_error(code, err, "--out", "not a folder")


def test_an_unwritable_output_is_one_message(tmp_path, capsys):
    code, _, err = _cli(["solve", str(EX_TRACE), "-H", str(EX_HW), "-o", "/proc/tierplan-test/s.json"], capsys)
    _one_clear_error(code, err, "/proc/tierplan-test/s.json")


def test_outputs_get_the_umask_permissions_and_are_fsynced(tmp_path, monkeypatch):
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    old = os.umask(0o027)
    try:
        write_bytes_atomic(tmp_path / "a.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o640
    assert synced, "the data must reach the disk before the rename"
    keep = tmp_path / "b.json"
    keep.write_text("x")
    os.chmod(keep, 0o604)
    write_bytes_atomic(keep, b"y")
    assert stat.S_IMODE(os.stat(keep).st_mode) == 0o604   # a replaced file keeps its mode
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_model_is_atomic(tmp_path, monkeypatch):
    """The exported model goes through the atomic writer: a failure leaves the old file whole."""
    import pulp

    import solver.fileio as fileio
    from formulations.backends import write_model

    p = pulp.LpProblem("w", pulp.LpMinimize)
    x = pulp.LpVariable("x", 0, 1)
    p += x
    target = tmp_path / "m.mps"
    target.write_text("old model")

    def boom(path, data):
        raise InputError.single(str(path), "", "disk full")

    monkeypatch.setattr(fileio, "write_bytes_atomic", boom)
    with pytest.raises(InputError):
        write_model(p, str(target))
    assert target.read_text() == "old model"
    monkeypatch.undo()
    write_model(p, str(target))
    assert "ROWS" in target.read_text()


def test_check_output_path_compares_inodes(tmp_path):
    a = tmp_path / "a.json"
    a.write_text("x")
    b = tmp_path / "b.json"
    os.link(a, b)
    with pytest.raises(InputError, match="is an input"):
        check_output_path(b, "-o", [a])
    check_output_path(tmp_path / "c.json", "-o", [a])


# --- section 3: capacities ----------------------------------------------------------------------


def test_a_budget_above_the_device_is_refused_unless_capacity_raises_it(tmp_path, capsys):
    code, _, err = _cli(["solve", str(EX_TRACE), "-H", str(EX_HW), "--budget", "1000"], capsys)
    _one_clear_error(code, err, "--budget", "more than the device")
    code, out, _ = _cli(["solve", str(EX_TRACE), "-H", str(EX_HW), "--budget", "1.0", "--capacity", "HBM=1TiB",
                         "--json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["capacity_in_force"]["HBM"]["source"] == "--budget 1"
    assert doc["capacity_in_force"]["DDR"]["source"] == "hardware"


def test_validate_reports_the_capacity_source_and_warns_about_names(tmp_path, capsys):
    sched = tmp_path / "s.json"
    assert _cli(["solve", str(EX_TRACE), "-H", str(EX_HW), "-o", str(sched)], capsys)[0] == 0
    doc = json.loads(sched.read_text())
    doc["trace"] = "another-trace"
    doc["capacity"] = {"HBM": 10**15}
    _write(sched, doc)
    code, out, err = _cli(["validate", str(EX_TRACE), str(EX_HW), str(sched), "--json"], capsys)
    rep = json.loads(out)
    assert rep["capacity"]["HBM"]["source"] == "hardware"   # 1e15 cannot raise the tier
    assert any("another-trace" in w for w in rep["warnings"])
    assert "warning:" in err and "another-trace" in err
    code, out, _ = _cli(["validate", str(EX_TRACE), str(EX_HW), str(sched), "--capacity", "HBM=1GiB"], capsys)
    assert "(--capacity)" in out


# --- section 7: preset names ------------------------------------------------------------------------


def test_preset_names_are_accepted_wherever_a_hardware_file_is_read(tmp_path, capsys):
    sched = tmp_path / "s.json"
    code, out, err = _cli(["solve", str(EX_TRACE), "-H", PRESET, "-o", str(sched)], capsys)
    assert code == 0, err
    assert _cli(["validate", str(EX_TRACE), PRESET, str(sched)], capsys)[0] == 0
    assert _cli(["inspect", str(EX_TRACE), "--hardware", PRESET], capsys)[0] == 0
    assert _cli(["bound", str(EX_TRACE), "-H", PRESET, "--time-limit", "60"], capsys)[0] == 0
    code, _, err = _cli(["solve", str(EX_TRACE), "-H", "no-such-preset"], capsys)
    _one_clear_error(code, err, "unknown hardware preset", PRESET)


def test_loaders_raise_only_input_errors_on_a_directory(tmp_path):
    for loader in (load_trace, load_hardware, load_schedule):
        with pytest.raises(InputError):
            loader(tmp_path)


def test_solve_and_bound_measure_against_one_bound_function(capsys):
    """`solve --bounds lp` reports the bound `tierplan bound` gives; by default it says it used the
    cheap ones only; both agree on what is infeasible."""
    base = [str(EX_TRACE), "-H", str(EX_HW), "--budget", "0.7", "--json"]
    code, out, _ = _cli(["bound", *base], capsys)
    assert code == 0
    bound = json.loads(out)
    assert bound["best"] == "window-lp"
    code, out, _ = _cli(["solve", *base, "--bounds", "lp"], capsys)
    solved = json.loads(out)
    assert code == 0 and solved["bound"] == bound["bound"]
    assert solved["bounds"] == bound["bounds"]
    code, out, _ = _cli(["solve", *base[:-1]], capsys)
    assert "--bounds lp adds the window LP" in out
    code, out, _ = _cli(["solve", *base[:-2], "0.5", "--json"], capsys)
    assert json.loads(out)["status"] == "infeasible"
    code, out, _ = _cli(["bound", *base[:-2], "0.5", "--json"], capsys)
    assert json.loads(out)["status"] == "infeasible" and json.loads(out)["best"] == "feasibility"
