"""``tierplan bench SUITE``: run methods over a benchmark suite; tables, plots, regression checks.

Every (instance, budget, method) run executes in its own process with a hard time limit, on a
local pool (``--jobs N``) or a Dask cluster (``--scheduler``); every schedule is validated with the
timing model. Outputs: ``OUT/<suite>.csv`` (one row per run, written as runs finish),
``OUT/<suite>.md`` (summary tables) and ``OUT/<suite>/<instance>.png`` (overhead versus budget).

``--check BASELINE.csv`` reruns the baseline's runs and exits 1 when a schedule is invalid, a status
is worse or a makespan is worse by more than ``--tolerance``; it prints every difference.

Methods and time limit come from the command line, else (with ``--check``) the baseline, else the
suite's ``[bench]`` table, else the defaults (every non-exact method, 60 s). The runs of an instance
that is unavailable here (an optional trace file that is absent) are not run: they are said on
stderr and recorded with status ``skipped``, and the exit status stays 0.

Examples
--------
>>> import tempfile
>>> from solver.cli import main
>>> out = tempfile.mkdtemp()
>>> main(["bench", "ci", "--methods", "keep", "--budgets", "1", "--instances", "random-30",
...       "--out", out, "--progress", "none", "--no-plots"])
0
>>> main(["bench", "ci", "--check", f"{out}/ci.csv", "--instances", "random-30", "--budgets", "1",
...       "--progress", "none"])
check: 1 runs compared, no difference (tolerance 0.5%): PASS
0
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from solver.errors import InputError

if TYPE_CHECKING:   # imported lazily at run time, so that other commands start fast
    from solver.bench.rows import Row
    from solver.bench.sweep import SweepResult
    from solver.bench.tasks import RunTask
    from solver.suites import Suite

DEFAULT_TIME_LIMIT = 60.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand."""
    p = sub.add_parser(
        "bench", help="run methods over a benchmark suite: CSV, Markdown tables, plots, regression check",
        description="Run every (instance, budget, method) of SUITE, each in its own process with a hard time "
                    "limit, validate every schedule, and write OUT/SUITE.csv, OUT/SUITE.md and OUT/SUITE/*.png. "
                    "With --check, rerun a baseline's runs and exit 1 on any regression.")
    p.add_argument("suite", help="suite name (instances/suites/NAME.toml) or suite file")
    g = p.add_argument_group("what to run")
    g.add_argument("--methods", metavar="M,M,...",
                   help="methods: registered names, module:function for custom planners, LABEL=SPEC to name "
                        "one [default: with --check, the baseline's; else the suite's [bench] methods; else "
                        "every registered non-exact method]")
    g.add_argument("--budgets", metavar="B,B,...",
                   help="memory budgets replacing the suite's: fractions of the no-offload peak or sizes "
                        "(1,0.7,0.5 or 16GiB)")
    g.add_argument("--instances", metavar="NAME,...", help="only these instances of the suite")
    g.add_argument("--time-limit", type=float, metavar="S",
                   help=f"seconds per run; a planner is killed at S + max(2 s, 10%%) [default: with --check, "
                        f"the baseline's; else the suite's [bench] time_limit; else {DEFAULT_TIME_LIMIT:g}]")
    g.add_argument("--threads", type=int, metavar="N", help="solver threads per run [default: 1]")
    g.add_argument("--seed", type=int, metavar="N", help="seed passed to every planner [default: 0]")
    g.add_argument("--no-recompute", action="store_true", help="forbid recomputation")
    g.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="method-specific option (repeatable), e.g. --option window=4")
    g = p.add_argument_group("where to run")
    g.add_argument("--jobs", type=int, default=1, metavar="N", help="runs in parallel on this machine [default: 1]")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on Dask: a scheduler address (tcp://host:8786) or local:N for a local cluster of N "
                        "workers (needs pip install 'tierplan[dask]')")
    g.add_argument("--dashboard", action="store_true", help="print the Dask dashboard link")
    g = p.add_argument_group("outputs")
    g.add_argument("--out", metavar="DIR",
                   help="output folder [default: results; with --check, nothing is written unless given]")
    g.add_argument("--resume", action="store_true",
                   help="skip runs already in OUT/SUITE.csv with the same instance, budget, method, options "
                        "and code version")
    g.add_argument("--no-plots", action="store_true", help="do not draw OUT/SUITE/*.png")
    g.add_argument("--progress", choices=("auto", "bar", "lines", "none"), default="auto",
                   help="progress display [default: a bar on a terminal, a line per run otherwise]")
    g = p.add_argument_group("regression check")
    g.add_argument("--check", metavar="BASELINE.csv", help="rerun the baseline's runs and compare; exit 1 on "
                   "an invalid schedule, a worse status, or a makespan worse than the tolerance")
    g.add_argument("--tolerance", type=float, default=None, metavar="REL",
                   help="relative makespan tolerance of --check [default: 0.005]")
    p.set_defaults(func=run)


def _command(args: argparse.Namespace, methods: str, time_limit: float) -> str:
    parts = ["tierplan", "bench", args.suite, "--methods", methods, "--time-limit", f"{time_limit:g}"]
    for flag, value in (("--budgets", args.budgets), ("--instances", args.instances), ("--threads", args.threads),
                        ("--seed", args.seed)):
        if value is not None:
            parts += [flag, str(value)]
    if args.no_recompute:
        parts.append("--no-recompute")
    for opt in args.option:
        parts += ["--option", opt]
    parts += ["--jobs", str(args.jobs)]
    if args.out is not None:
        parts += ["--out", args.out]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    """Run the sweep (and the check); 0 done, 1 regression or lost scheduler, 2 bad input, 130 Ctrl-C."""
    from solver.bench.check import DEFAULT_TOLERANCE, compare, format_check
    from solver.bench.planners import MethodSpec, parse_methods
    from solver.bench.rows import read_csv
    from solver.bench.tasks import RunOptions, build_tasks, options_from_pairs, parse_budgets
    from solver.bench.versions import code_version
    from solver.methods import REGISTRY
    from solver.suites import load_suite

    if args.jobs < 1:
        raise InputError.single("--jobs", str(args.jobs), "must be >= 1")
    if args.time_limit is not None and not args.time_limit > 0:
        raise InputError.single("--time-limit", str(args.time_limit), "must be > 0")
    if args.check and args.resume:
        raise InputError.single("--resume", "", "cannot be combined with --check (a check reruns everything)")
    if args.tolerance is not None and not args.tolerance >= 0:
        raise InputError.single("--tolerance", str(args.tolerance), "must be >= 0")
    suite = load_suite(args.suite)
    baseline = read_csv(args.check) if args.check else None
    if baseline is not None and not baseline:
        raise InputError.single(args.check, "", "the baseline has no rows")
    base_opts = RunOptions()
    if args.methods:
        methods = parse_methods(args.methods)
    elif baseline:
        specs = dict.fromkeys((r.method, r.planner or r.method) for r in baseline)
        methods = parse_methods(",".join(label if label == planner else f"{label}={planner}"
                                         for label, planner in specs))
    elif suite.bench.methods:
        methods = parse_methods(",".join(suite.bench.methods), f"{suite.path}: bench.methods")
    else:
        methods = tuple(MethodSpec(m.name, m.name) for m in REGISTRY.values() if not m.exact)
    if baseline:
        base_opts = RunOptions.from_canonical(baseline[0].options)
    extra = options_from_pairs(args.option) if args.option else base_opts.extra
    options = RunOptions(
        time_limit=args.time_limit if args.time_limit is not None else
        (base_opts.time_limit if baseline else suite.bench.time_limit or DEFAULT_TIME_LIMIT),
        threads=args.threads if args.threads is not None else base_opts.threads,
        seed=args.seed if args.seed is not None else base_opts.seed,
        recompute=(not args.no_recompute) if (args.no_recompute or not baseline) else base_opts.recompute,
        extra=extra)
    budgets = parse_budgets(args.budgets) if args.budgets else None
    instances = [s.strip() for s in args.instances.split(",") if s.strip()] if args.instances else None
    tasks = build_tasks(suite, methods, options, budgets, instances, commit=code_version())
    out = Path(args.out) if args.out is not None else (None if args.check else Path("results"))
    if out is not None:
        _check_out_folder(out)
    csv_path = out / f"{suite.name}.csv" if out is not None else None
    previous = read_csv(csv_path) if (args.resume and csv_path is not None and csv_path.is_file()) else []
    command = _command(args, ",".join(m.label if m.label == m.planner else f"{m.label}={m.planner}"
                                      for m in methods), options.time_limit)
    _report_unavailable(suite, tasks)

    try:
        result = _sweep(args, suite, tasks, csv_path, previous)
    except _Abort as stop:
        return stop.status
    rows = list(result.sweep_rows(tasks)) if args.check else list(result.rows)
    if out is not None:
        _write_reports(args, suite, rows, out, command)
    if baseline is not None:
        tol = args.tolerance if args.tolerance is not None else DEFAULT_TOLERANCE
        mine = {t.key for t in tasks}
        verdict = compare([r for r in baseline if r.key in mine or not (instances or budgets or args.methods)],
                          [r for r in rows if r.key in mine], tol)
        print(format_check(verdict))
        return 1 if verdict.failed else 0
    return 0


class _Abort(Exception):
    """The sweep stopped early; ``status`` is the exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _materialize(suite: Suite, tasks: Sequence[RunTask]) -> None:
    """Generate (or find in the cache) the traces of the recipes the tasks use, once, before the runs."""
    from solver.suites import trace_path
    wanted = {t.instance for t in tasks}
    for inst in suite.instances:
        if inst.name in wanted and inst.recipe is not None:
            trace_path(inst)


def _sweep(args: argparse.Namespace, suite: Suite, tasks: Sequence[RunTask], csv_path: Path | None,
           previous: Sequence[Row]) -> SweepResult:
    """Run the sweep on the chosen backend; raises :class:`_Abort` when it stops early."""
    from solver.bench.progress import make_progress
    from solver.bench.sweep import run_sweep

    if args.scheduler:
        from solver.bench.cluster import DaskBackend, SchedulerLost
        backend = DaskBackend(args.scheduler, dashboard=args.dashboard)
        lost: tuple[type[BaseException], ...] = (SchedulerLost,)
        if backend.mode == "local":
            _materialize(suite, tasks)
    else:
        from solver.bench.local import LocalPool
        if args.dashboard:
            print("note: --dashboard applies to Dask (--scheduler) only", file=sys.stderr)
        backend = LocalPool(args.jobs)
        lost = ()
        _materialize(suite, tasks)
    with backend:
        link = getattr(backend, "dashboard_link", "")
        if args.dashboard:
            print(f"Dask dashboard: {link or 'not available (install bokeh>=3.1 for it)'}", file=sys.stderr)
        progress = make_progress(len(tasks), args.progress, f"bench {suite.name}")
        try:
            result = run_sweep(tasks, backend, csv_path=csv_path, previous=previous, resume=args.resume,
                               progress=progress)
        except KeyboardInterrupt:
            _report_partial(csv_path, "interrupted")
            raise _Abort(130) from None
        except lost as exc:   # type: ignore[misc]
            _report_partial(csv_path, f"lost the Dask scheduler ({exc})")
            raise _Abort(1) from None
    if not args.check and args.progress != "none":
        print(f"{result.ran} run(s) done, {result.skipped} skipped (already in {csv_path})"
              if result.skipped else f"{result.ran} run(s) done", file=sys.stderr)
    if result.unavailable:
        print(f"{result.unavailable} run(s) not run: their instances are unavailable here (status 'skipped'"
              + (f" in {csv_path})" if csv_path is not None else ")"), file=sys.stderr)
    return result


def _report_unavailable(suite: Suite, tasks: Sequence[RunTask]) -> None:
    """Say on stderr which instances are skipped and why (before the sweep starts)."""
    why: dict[str, str] = {}
    runs: dict[str, int] = {}
    for t in tasks:
        if t.skip:
            why.setdefault(t.instance, t.skip)
            runs[t.instance] = runs.get(t.instance, 0) + 1
    if not why:
        return
    print(f"skipping {len(why)} instance(s) of suite {suite.name} ({sum(runs.values())} run(s)), unavailable here:",
          file=sys.stderr)
    for name, reason in why.items():
        print(f"  {name}: {reason}", file=sys.stderr)


def _check_out_folder(out: Path) -> None:
    """Refuse, before any run, an ``--out`` that is not a folder (nor can become one)."""
    if out.exists() and not out.is_dir():
        raise InputError.single("--out", str(out), "is a file, not a folder (--out names the folder of the "
                                "results: OUT/SUITE.csv, OUT/SUITE.md, plots)")
    from solver.fileio import check_output_path

    check_output_path(out / ".probe", "--out")


def _report_partial(csv_path: Path | None, why: str) -> None:
    if csv_path is not None and os.path.exists(csv_path):
        print(f"{why}: the finished runs are in {csv_path}; rerun with --resume to run only the missing ones",
              file=sys.stderr)
    else:
        print(f"{why}: no results written", file=sys.stderr)


def _write_reports(args: argparse.Namespace, suite: Suite, rows: Sequence[Row], out: Path, command: str) -> None:
    """Write OUT/SUITE.md and the plots (and, for a check, OUT/SUITE.csv)."""
    from solver.bench.plots import overhead_plots
    from solver.bench.rows import write_csv
    from solver.bench.summary import summary_markdown
    from solver.fileio import write_text_atomic

    if args.check:
        write_csv(out / f"{suite.name}.csv", rows)
    write_text_atomic(out / f"{suite.name}.md", summary_markdown(rows, suite.name, suite.description, command))
    if not args.no_plots:
        overhead_plots(rows, out / suite.name, suite.name)
