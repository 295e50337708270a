"""`tierplan solve` flags of the exact methods reach the planner (SolveOptions.extra)."""

from __future__ import annotations

import json
from pathlib import Path

from solver.cli import main

ROOT = Path(__file__).resolve().parents[1]
TRACE = str(ROOT / "instances" / "examples" / "trace.json")
HW = str(ROOT / "instances" / "hardware" / "h100-pcie.toml")


def test_write_model_exports_the_milp(tmp_path: Path, capsys) -> None:
    model = tmp_path / "model.lp"
    rc = main(["solve", TRACE, "--hardware", HW, "--budget", "0.7", "--method", "milp", "--time-limit", "20",
               "--write-model", str(model), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] in ("optimal", "feasible")
    assert model.exists() and "minimize" in model.read_text().lower()


def test_unknown_objective_is_refused(capsys) -> None:
    try:
        main(["solve", TRACE, "--hardware", HW, "--method", "milp", "--objective", "fastest"])
    except SystemExit as exc:
        assert exc.code == 2
    else:  # pragma: no cover
        raise AssertionError("argparse should refuse an unknown objective")


def test_min_memory_objective_runs_to_a_valid_schedule(capsys) -> None:
    rc = main(["solve", TRACE, "--hardware", HW, "--method", "milp", "--objective", "min-memory",
               "--max-overhead", "0.05", "--time-limit", "20", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] in ("optimal", "feasible")
