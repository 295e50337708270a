"""Validator benchmark: a synthetic schedule of about 1,000,000 actions over a 333,000-op trace.

Each op ``i`` produces ``a<i>``, read by ops ``i+1`` and ``i+3``. After op ``i+1`` the tensor is
offloaded to DDR (``free_src``) and prefetched back before op ``i+3``: one run and two copies
per op. Measures (1) the simulation alone, model in memory to report, and (2)
``tierplan validate --json`` end to end (read the three files, simulate, report), median of
``--repeat`` runs, on one core.

Usage::

    python -m solver.perf.validator --ops 333334 --repeat 3 --out results/perf-validator.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from solver.fileio import write_json_atomic, write_text_atomic
from solver.formats import load_hardware, load_schedule, load_trace


def make_documents(n_ops: int) -> tuple[dict, dict, dict]:
    """Trace, hardware and schedule documents of the benchmark (about ``3 * n_ops`` actions)."""
    size = 1 << 20
    tensors = [{"id": "x", "bytes": size, "kind": "input"}]
    ops = []
    for i in range(n_ops):
        ins = ["x"] if i == 0 else [f"a{i - 1}"]
        if i >= 3:
            ins.append(f"a{i - 3}")
        tensors.append({"id": f"a{i}", "bytes": size, "kind": "activation"})
        ops.append({"id": f"op{i}", "duration": 1e-3, "inputs": ins, "outputs": [f"a{i}"]})
    trace = {"format": "tierplan.trace/1", "name": "perf", "tensors": tensors, "ops": ops}
    hw = {"format": "tierplan.hardware/1", "name": "perf-hw", "compute_tier": "HBM",
          "tiers": [{"name": "HBM", "capacity": 16 * size}, {"name": "DDR", "capacity": 1 << 50}],
          "links": [{"src": "HBM", "dst": "DDR", "bandwidth": 64 * size * 1000.0, "latency": 1e-6},
                    {"src": "DDR", "dst": "HBM", "bandwidth": 64 * size * 1000.0, "latency": 1e-6}]}
    actions: list[dict] = []
    prefetch_of: dict[int, str] = {}
    for i in range(n_ops):
        after = []
        j = i - 3
        if j >= 0 and j in prefetch_of:
            after.append(prefetch_of.pop(j))
        actions.append({"do": "run", "op": f"op{i}", "after": after})
        k = i - 1     # a<k>'s first reader (op k+1 = i) just ran; its second reader is op k+3
        if k >= 0 and k + 3 < n_ops:
            actions.append({"id": f"out{k}", "do": "copy", "tensor": f"a{k}", "src": "HBM", "dst": "DDR",
                            "free_src": True, "after": [f"op{i}"]})
            actions.append({"id": f"in{k}", "do": "copy", "tensor": f"a{k}", "src": "DDR", "dst": "HBM",
                            "free_src": True, "after": [f"out{k}"]})
            prefetch_of[k] = f"in{k}"
    sched = {"format": "tierplan.schedule/1", "trace": "perf", "hardware": "perf-hw", "actions": actions}
    return trace, hw, sched


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=333_334)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the figures as Markdown here")
    args = ap.parse_args(argv)
    from solver.timing import validate

    with tempfile.TemporaryDirectory() as d:
        paths = [os.path.join(d, f) for f in ("trace.json", "hw.json", "schedule.json")]
        for p, doc in zip(paths, make_documents(args.ops)):
            write_json_atomic(p, doc, indent=None)
        trace, hw, sched = load_trace(paths[0]), load_hardware(paths[1]), load_schedule(paths[2])
        n_actions = len(sched.actions)
        sim: dict[str, list[float]] = {"auto": [], "python": []}
        engine = "python"
        for _ in range(args.repeat):
            for eng, times in sim.items():
                t0 = time.perf_counter()
                rep = validate(trace, hw, sched, engine=eng)
                times.append(time.perf_counter() - t0)
                assert rep.valid, rep.errors[:3]
                if eng == "auto":
                    engine = rep.engine
        e2e: list[float] = []
        del trace, sched
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "solver.cli", "validate", *paths, "--json"],
                                  stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
            e2e.append(time.perf_counter() - t0)
            assert proc.returncode == 0
    s_med, p_med, e_med = statistics.median(sim["auto"]), statistics.median(sim["python"]), statistics.median(e2e)
    s_rate, e_rate = n_actions / s_med, n_actions / e_med
    default = "native kernel (solver/_simcore.c)" if engine == "native" else \
        "pure-Python reference (the native kernel is not built here)"
    lines = [
        "# Validator performance",
        "",
        f"Synthetic schedule: {n_actions:,} actions (runs and copies) over a {args.ops:,}-op trace; "
        f"median of {args.repeat} runs on {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, one process (one core).",
        "",
        "| measurement | median time | actions per second | target |",
        "| --- | --- | --- | --- |",
        f"| simulation (model in memory to report), default engine: {default} | {s_med:.2f} s | "
        f"{s_rate:,.0f} | >= 500,000 ({'met' if s_rate >= 500_000 else 'not met'}) |",
        f"| simulation, pure-Python reference (`validate(..., engine=\"python\")`) | {p_med:.2f} s | "
        f"{n_actions / p_med:,.0f} | (the oracle) |",
        f"| `tierplan validate --json` end to end | {e_med:.2f} s | {e_rate:,.0f} | "
        f">= 100,000 ({'met' if e_rate >= 100_000 else 'not met'}) |",
        "",
        "The native kernel simulates schedules that validate and gives up at the first irregularity;",
        "the pure-Python reference then runs and words every error (tests/test_timing_native.py checks",
        "that both give identical reports). End to end includes starting Python and reading the files",
        "with the typed msgspec decoder, which checks every format rule.",
        "",
        "Command: `python -m solver.perf.validator --ops "
        f"{args.ops} --repeat {args.repeat} --out results/perf-validator.md`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
