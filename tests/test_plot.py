"""``tierplan plot``: the memory replay agrees with the validator; figures are written; exit statuses."""

from __future__ import annotations

import pytest

from bench_support import run_cli
from solver.bench.occupancy import occupancy
from solver.bench.schedule_plot import schedule_figure, stalls
from solver.formats import load_hardware, load_schedule, load_trace, save_schedule
from solver.model import Schedule
from solver.solve import make_instance, solve
from solver.suites import load_suite, trace_path
from solver.timing import validate

EX = "instances/examples/"
TRACE, HW, SCHED = EX + "trace.json", EX + "hardware.json", EX + "schedule.json"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TIERPLAN_CACHE", str(tmp_path_factory.getbasetemp() / "trace-cache"))


def test_plot_writes_png_svg_pdf(tmp_path):
    for suffix, magic in (("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")):
        out = tmp_path / f"s.{suffix}"
        code, _, err = run_cli(["plot", TRACE, HW, SCHED, "-o", str(out)])
        assert code == 0, err
        assert out.read_bytes()[:len(magic)] == magic


@pytest.mark.parametrize("dpi", ["0", "-5", "20000"])
def test_plot_refuses_a_dpi_out_of_range_with_exit_2(tmp_path, dpi):
    out = tmp_path / "s.png"
    code, _, err = run_cli(["plot", TRACE, HW, SCHED, "-o", str(out), "--dpi", dpi])
    assert code == 2 and "--dpi" in err and "Traceback" not in err
    assert not out.exists()


def test_plot_says_what_it_wrote(tmp_path):
    out = tmp_path / "s.png"
    code, text, _ = run_cli(["plot", TRACE, HW, SCHED, "-o", str(out)])
    assert code == 0 and str(out) in text


def test_plot_is_byte_stable(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert run_cli(["plot", TRACE, HW, SCHED, "-o", str(a)])[0] == 0
    assert run_cli(["plot", TRACE, HW, SCHED, "-o", str(b), "--title", "x"])[0] == 0
    assert run_cli(["plot", TRACE, HW, SCHED, "-o", str(b)])[0] == 0
    assert a.read_bytes() == b.read_bytes()


def test_invalid_schedule_is_drawn_and_exits_1(tmp_path):
    s = load_schedule(SCHED)
    bad = tmp_path / "bad.json"
    save_schedule(bad, Schedule(s.trace, s.hardware, s.actions[:-1], s.capacity, s.solver))
    out = tmp_path / "bad.png"
    code, _, err = run_cli(["plot", TRACE, HW, str(bad), "-o", str(out)])
    assert code == 1 and "INVALID" in err and out.is_file()
    code, _, err = run_cli(["plot", TRACE, HW, SCHED, "-o", str(out), "--capacity", "HBM=1MiB"])
    assert code == 1


def test_bad_input_exits_2(tmp_path):
    code, _, err = run_cli(["plot", TRACE, HW, SCHED, "-o", str(tmp_path / "x.gif")])
    assert code == 2 and "unknown format" in err
    code, _, err = run_cli(["plot", TRACE, HW, str(tmp_path / "none.json"), "-o", str(tmp_path / "x.png")])
    assert code == 2 and "cannot read file" in err and "Traceback" not in err


def test_example_stall_and_occupancy():
    tr, hw, s = load_trace(TRACE), load_hardware(HW), load_schedule(SCHED)
    rep = validate(tr, hw, s)
    occ = occupancy(tr, hw, s, rep)
    assert occ.peak() == dict(rep.metrics.peak)
    gaps = stalls(rep)
    compute = sum(o.duration for o in tr.ops)
    assert sum(e - a for a, e in gaps) == pytest.approx(rep.metrics.makespan - compute)
    assert occ.total("HBM")[-1] >= 0 and len(occ.times) == len(set(occ.times.tolist()))
    fig = schedule_figure(tr, hw, s, rep)
    labels = [t.get_text() for t in fig.axes[-1].get_yticklabels()]
    assert labels == ["DDR->HBM", "HBM->DDR", "compute"]


@pytest.mark.parametrize("method", ["greedy", "belady", "vdnn"])
def test_occupancy_peaks_match_the_validator_on_offloading_schedules(method):
    checked = copies = 0
    for inst in load_suite("ci").instances:
        tr, hw = load_trace(trace_path(inst)), load_hardware(inst.hardware_path)
        for budget in (1.0, 0.7, 0.5):
            out = solve(make_instance(tr, hw, budget=budget), method)
            if out.schedule is None:
                continue
            occ = occupancy(tr, hw, out.schedule, out.report)
            assert occ.peak() == dict(out.report.metrics.peak), (inst.name, budget)
            checked += 1
            copies += sum(out.report.metrics.copies.values())
    assert checked >= 4 and copies > 0


@pytest.mark.parametrize("command", ["validate", "plot", "inspect"])
def test_positional_arguments_are_described_in_help(command, capsys):
    from solver.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices[command]
    helps = {a.dest: a.help for a in sub._actions if not a.option_strings}
    assert helps and all(helps.values()), helps
