"""Benchmarks of the exact planners (``milp``, ``milp-cbc``, ``cpsat``, ``auto``), written to ``results/``.

Three benchmarks:

* ``suite``: a suite's instances x budgets x methods x time limits -> status, validated makespan,
  bound, gap, wall time, model size, and the greedy warm start beside;
* ``moccasin``: the Checkmate / Moccasin rematerialization graphs (``../shared/traces/moccasin``)
  on a one-tier machine with recomputation, budgets 0.9 and 0.8 of the peak as Moccasin defines
  them, side by side with Moccasin's published figures;
* ``brute``: random tiny instances, brute-force enumeration against ``cpsat`` and ``milp``
  (how far above the optimum the stage MILP lands on average).

Every makespan is the validator's. Usage::

    python -m solver.perf.exact suite tiny --methods milp,cpsat,auto --time-limit 10 --out results/exact-tiny.md
    python -m solver.perf.exact moccasin --method milp --time-limit 300 --threads 2 --out results/exact-moccasin.md
    python -m solver.perf.exact brute --count 20 --out results/exact-brute.md
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from solver.fileio import write_text_atomic

from formulations import PLANNERS

#: Moccasin's own figures on a 2-core machine (``shared/traces/moccasin/README.md``):
#: graph stem -> {multiplier: (status, TDI % or None, seconds or None)}.
MOCCASIN = MappingProxyType({
    "VGG16_256_224x224x3_test": {0.9: ("infeasible", None, 0.3), 0.8: ("infeasible", None, 0.3)},
    "VGG19_256_224x224x3_test": {0.9: ("infeasible", None, 0.3), 0.8: ("infeasible", None, 0.3)},
    "vgg_unet_32_416x608x3_test": {0.9: ("infeasible", None, 0.3), 0.8: ("infeasible", None, 0.3)},
    "fcn_8_vgg_32_416x608x3_test": {0.9: ("infeasible", None, 0.3), 0.8: ("infeasible", None, 0.3)},
    "segnet_32_416x608x3_test": {0.9: ("infeasible", None, 0.3), 0.8: ("infeasible", None, 0.3)},
    "MobileNet_512_224x224x3_test": {0.9: ("infeasible", None, 6.6), 0.8: ("infeasible", None, 6.7)},
    "VGG16_256_224x224x3_train": {0.9: ("optimal", 1.97, 1.3), 0.8: ("infeasible", None, 0.7)},
    "VGG19_256_224x224x3_train": {0.9: ("optimal", 0.10, 2.7), 0.8: ("optimal", 4.85, 2.7)},
    "vgg_unet_32_416x608x3_train": {0.9: ("optimal", 1.13, 9.4), 0.8: ("optimal", 1.98, 9.7)},
    "fcn_8_vgg_32_416x608x3_train": {0.9: ("optimal", 0.03, 10.2), 0.8: ("optimal", 0.14, 10.6)},
    "segnet_32_416x608x3_train": {0.9: ("optimal", 0.10, 12.8), 0.8: ("optimal", 0.21, 12.9)},
    "random_layered_n100": {0.9: ("optimal", 0.79, 33.6), 0.8: ("optimal", 2.30, 36.9)},
    "MobileNet_512_224x224x3_train": {0.9: ("optimal", 0.16, 126.0), 0.8: ("feasible", 1.35, 205.0)},
    "random_layered_n250": {0.9: ("no schedule", None, 120.0), 0.8: ("no schedule", None, 120.0)},
})


@dataclass(frozen=True)
class Row:
    """One benchmark run (makespans are the validator's)."""

    instance: str
    budget: str
    ops: int
    method: str
    limit: float
    status: str
    makespan: float | None
    bound: float | None
    wall_s: float
    variables: Any
    constraints: Any
    greedy: float | None
    compute: float
    returned: str

    @property
    def gap(self) -> float | None:
        if self.makespan is None or not self.bound or self.bound <= 0:
            return None
        return max(0.0, self.makespan / self.bound - 1.0)


def _run_one(instance: Any, method: str, limit: float, threads: int, label: str, budget: str,
            greedy: float | None = None, extra: dict[str, Any] | None = None) -> Row:
    """Run one exact planner on one instance and validate the result (as the solve driver does)."""
    from formulations import planners
    from solver.bounds import lower_bound
    from solver.methods import SolveOptions
    from solver.timing import validate

    tr = instance.trace
    t0 = time.perf_counter()
    res = getattr(planners, PLANNERS[method])(instance, SolveOptions(time_limit=limit, threads=threads,
                                                                     extra=dict(extra or {})))
    wall = time.perf_counter() - t0
    ms = None
    status = res.status
    if res.schedule is not None:
        rep = validate(tr, instance.hardware, res.schedule)
        if rep.valid:
            ms = rep.metrics.makespan
        else:
            status = "error (invalid)"
    bound = res.bound
    try:
        lb = lower_bound(instance)
        if math.isfinite(lb) and (bound is None or lb > bound):
            bound = lb
    except Exception:  # noqa: BLE001
        pass
    if ms is not None and bound is not None and bound > ms:
        bound = ms
    st = res.stats
    return Row(label, budget, len(tr.ops), method, limit, status, ms, bound, wall,
               st.get("model_variables", ""), st.get("model_constraints", ""), greedy, tr.compute_time,
               str(st.get("returned", st.get("route", ""))))


def _fmt(x: float | None, digits: int = 6) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _table(rows: list[Row]) -> list[str]:
    """Markdown lines of the suite table."""
    out = ["| instance | budget | ops | method | limit s | status | makespan s | overhead | bound s | gap | wall s | "
           "variables / constraints | greedy makespan s | greedy overhead | vs greedy | returned |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        vs = "-" if r.makespan is None or not r.greedy else f"{100 * (r.makespan / r.greedy - 1):+.2f}%"
        ov = None if r.makespan is None or not r.compute else r.makespan / r.compute - 1
        gov = None if r.greedy is None or not r.compute else r.greedy / r.compute - 1
        out.append(f"| {r.instance} | {r.budget} | {r.ops} | {r.method} | {r.limit:g} | {r.status} | "
                   f"{_fmt(r.makespan)} | {_pct(ov)} | {_fmt(r.bound)} | {_pct(r.gap)} | {r.wall_s:.1f} | "
                   f"{r.variables} / {r.constraints} | {_fmt(r.greedy)} | {_pct(gov)} | {vs} | {r.returned} |")
    return out


def _bench_suite(args: argparse.Namespace) -> list[str]:
    from solver.formats import load_trace
    from solver.methods import SolveOptions
    from solver.solve import make_instance, solve
    from solver.suites import load_instance_hardware, load_suite, trace_path

    suite = load_suite(args.suite)
    methods = args.methods.split(",")
    limits = [float(x) for x in str(args.time_limit).split(",")]
    rows: list[Row] = []
    only = set(args.instances.split(",")) if args.instances else None
    extra: dict[str, Any] = {}
    for kv in args.option or ():
        key, sep, val = kv.partition("=")
        if not sep:
            raise SystemExit(f"--option wants KEY=VALUE, got {kv!r}")
        extra[key] = val
    for inst in suite.instances:
        if only and inst.name not in only:
            continue
        if inst.skip_reason:
            print(f"skipped {inst.name}: {inst.skip_reason}", file=sys.stderr)
            continue
        tr = load_trace(trace_path(inst))
        hw = load_instance_hardware(inst)
        budgets = [float(b) for b in args.budgets.split(",")] if args.budgets else \
            [b.fraction for b in inst.budgets if b.fraction is not None]
        for b in budgets:
            instance = make_instance(tr, hw, budget=b)
            t_g = time.perf_counter()
            g = solve(instance, "greedy", SolveOptions(time_limit=max(limits)))
            gm = g.makespan
            print(f"{inst.name} {b:g} greedy: {g.status} {_fmt(gm)} ({time.perf_counter() - t_g:.1f}s)", flush=True)
            if g.status == "infeasible":
                rows.append(Row(inst.name, f"{b:g}", len(tr.ops), "(all)", max(limits), "infeasible", None, None,
                                g.wall_s, "", "", None, tr.compute_time, "no schedule fits"))
                print(f"{inst.name} {b:g}: infeasible ({g.message[:80]})", flush=True)
                continue
            for m in methods:
                for lim in limits:
                    r = _run_one(instance, m, lim, args.threads, inst.name, f"{b:g}", gm, extra)
                    rows.append(r)
                    print(f"{r.instance} {r.budget} {r.method} {r.limit:g}s: {r.status} {_fmt(r.makespan)} "
                          f"bound {_fmt(r.bound)} gap {_pct(r.gap)} ({r.wall_s:.1f}s) greedy {_fmt(gm)}", flush=True)
    n_opt = sum(r.status == "optimal" for r in rows)
    lines = [f"# Exact planners on the `{args.suite}` suite", "",
             f"{len(rows)} runs; {n_opt} proven optimal (within the formulation's space: the stage model for "
             "`milp`, the CP-SAT policies for `cpsat`/`auto`; over every schedule where the returned one "
             "meets the window relaxation's bound). Makespans are the validator's; the bound is the "
             "best of the planner's own proven bound, the window LP and MILP relaxations (for every schedule) and "
             "`solver.bounds.lower_bound`; gap = makespan / bound - 1. "
             "'returned' says which schedule came back: the model's, the greedy warm start's (`warm`), or a "
             "proof that the warm start meets a lower bound (`bound`).", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
             f"threads per solve: {args.threads}.", ""]
    lines += _table(rows)
    lines += ["", f"Command: `python -m solver.perf.exact suite {args.suite} --methods {args.methods} "
                  f"--time-limit {args.time_limit}" + (f" --budgets {args.budgets}" if args.budgets else "")
              + (f" --instances {args.instances}" if args.instances else "")
              + "".join(f" --option {kv}" for kv in args.option or ())
              + f" --threads {args.threads} --out {args.out}`", ""]
    return lines


def _moccasin_stem(path: str) -> str:
    base = os.path.basename(path)
    for k in MOCCASIN:
        if base.startswith(k):
            return k
    return base.split(".json")[0]


def _bench_moccasin(args: argparse.Namespace) -> list[str]:
    from solver.formats import trace_from_document
    from solver.model import Hardware, Tier
    from solver.solve import make_instance

    try:
        from solver.importers.networkx_graph import import_networkx
    except ImportError:   # pragma: no cover - the importer ships with tierplan
        raise SystemExit("the networkx importer (solver.importers.networkx_graph) is needed")
    folder = args.folder
    files = sorted(glob.glob(os.path.join(folder, "*.json.gz")))
    if not files:
        raise SystemExit(f"no graphs in {folder} (the shared folder is absent)")
    rows = []
    hw = Hardware("one-tier", "HBM", (Tier("HBM", 2 ** 53),))   # the representable maximum
    for f in files:
        stem = _moccasin_stem(f)
        tr = trace_from_document(import_networkx(f).document)
        for b in (0.9, 0.8):
            instance = make_instance(tr, hw, budget=b)
            r = _run_one(instance, args.method, args.time_limit, args.threads, stem, f"{b:g}")
            tdi = None if r.makespan is None else 100 * (r.makespan / tr.compute_time - 1)
            mo = MOCCASIN.get(stem, {}).get(b)
            rows.append((stem, len(tr.ops), b, r, tdi, mo))
            print(stem, b, r.status, _fmt(tdi, 4), f"{r.wall_s:.1f}s", mo, flush=True)
    lines = ["# External recomputation benchmark: Checkmate / Moccasin graphs", "",
             "Graphs of `../shared/traces/moccasin` (Moccasin repository, commit ff7ad8b1) imported with "
             "`tierplan import networkx`; one-tier hardware (the compute tier only, no links), recomputation on, "
             "budget B = ceil(M x multiplier) with M the no-offload peak (Moccasin's definition; `--budget`). "
             f"tierplan method `{args.method}`, time limit {args.time_limit:g} s, {args.threads} thread(s), on "
             f"{platform.machine()} with {os.cpu_count()} cores. TDI = total compute time including "
             "recomputation over compute time without it (makespan / compute time - 1: one compute stream, no "
             "copies). Moccasin's figures are its own (CP-SAT, 2 workers, at most 2 computations per node, "
             "two 120 s phases), from the folder's README.", "",
             "| graph | nodes | budget | tierplan status | TDI % | time s | Moccasin status | Moccasin TDI % | "
             "Moccasin time s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for stem, n, b, r, tdi, mo in rows:
        ms, mt, mtime = mo if mo else ("-", None, None)
        lines.append(f"| {stem} | {n} | {b:g} | {r.status} | {_fmt(tdi, 4)} | {r.wall_s:.1f} | {ms} | "
                     f"{'-' if mt is None else f'{mt:g}'} | {'-' if mtime is None else f'{mtime:g}'} |")
    lines += ["", "Notes:", "",
              "* `optimal` is proven within the stage model (each candidate interval is dropped and recomputed "
              "at most once, recomputations run right before an op, no transient intermediate); `infeasible` is "
              "proven either by an op that cannot fit alone or by the window LP relaxation, which holds for "
              "every schedule under tierplan's timing model.",
              "* tierplan's timing model is stricter than Moccasin's: a tensor dies at the end of its last reader "
              "in the given order and can never be recomputed after that, while Moccasin may recompute any node "
              "again from recomputed inputs. Where the table says `infeasible` but Moccasin found a schedule "
              "(the random layered graphs), no schedule exists under tierplan's rules: at some op, even every "
              "tensor that could still be recomputed later does not free enough memory.",
              "* Moccasin's infeasibility proofs hold for at most 2 computations per node; tierplan's for any "
              "number.", "",
              f"Command: `python -m solver.perf.exact moccasin --method {args.method} --time-limit "
              f"{args.time_limit:g} --threads {args.threads} --out {args.out}`", ""]
    return lines


def _bench_brute(args: argparse.Namespace) -> list[str]:
    from formulations.brute import enumerate_best, random_tiny
    from formulations.planners import plan_cpsat, plan_milp
    from solver.methods import Instance, SolveOptions
    from solver.timing import validate

    opts = SolveOptions(time_limit=30, threads=1, recompute=False, extra={"warm": "none"})
    rows = []
    seed = 0
    while len(rows) < args.count and seed < 5000:
        inst = random_tiny(seed, ops=args.ops, max_candidates=args.max_candidates)
        seed += 1
        if inst is None:
            continue
        tr, hw = inst
        t0 = time.perf_counter()
        best = enumerate_best(tr, hw, max_count=args.max_count)
        tb = time.perf_counter() - t0
        if best is None or not math.isfinite(best.makespan):
            continue
        rc = plan_cpsat(Instance(tr, hw), opts)
        rm = plan_milp(Instance(tr, hw), opts)
        vc = validate(tr, hw, rc.schedule).metrics.makespan if rc.schedule else None
        vm = validate(tr, hw, rm.schedule).metrics.makespan if rm.schedule else None
        rows.append((seed - 1, len(tr.ops), best, tb, rc.status, vc, rm.status, vm))
        print(seed - 1, best.makespan, best.count, vc, vm, flush=True)
    excess = [vm / best.makespan - 1 for (_, _, best, _, _, _, _, vm) in rows if vm is not None]
    exact = sum(1 for (_, _, best, _, _, vc, _, _) in rows if vc is not None and abs(vc - best.makespan) < 1e-9)
    lines = ["# Exact planners against brute-force enumeration", "",
             f"{len(rows)} random tiny two-tier instances ({args.ops} ops, at most {args.max_candidates} candidate "
             "intervals; `formulations.brute.random_tiny`), every schedule of the enumerated space scored by the "
             "validator (`formulations.brute.enumerate_best`).", "",
             f"* `cpsat` (validated) equals the enumerated optimum on {exact} of {len(rows)} instances.",
             f"* `milp` (validated) is above the enumerated optimum by {100 * sum(excess) / max(len(excess), 1):.2f}% "
             f"on average (max {100 * max(excess, default=0):.2f}%; {sum(1 for e in excess if e > 1e-9)} of "
             f"{len(excess)} instances above): the stage model's barriers and per-stage memory count.", "",
             "| seed | ops | enumerated schedules | enumeration s | optimum s | cpsat status | cpsat s | "
             "milp status | milp s | milp excess |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for seed_, n, best, tb, sc, vc, sm, vm in rows:
        ex = "-" if vm is None else f"{100 * (vm / best.makespan - 1):.2f}%"
        lines.append(f"| {seed_} | {n} | {best.count} | {tb:.1f} | {best.makespan:g} | {sc} | {_fmt(vc)} | {sm} | "
                     f"{_fmt(vm)} | {ex} |")
    lines += ["", f"Command: `python -m solver.perf.exact brute --count {args.count} --ops {args.ops} "
                  f"--max-candidates {args.max_candidates} --max-count {args.max_count} --out {args.out}`", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="which", required=True)
    s = sub.add_parser("suite")
    s.add_argument("suite")
    s.add_argument("--methods", default="milp,cpsat,auto")
    s.add_argument("--time-limit", default="10", help="seconds (comma-separated for several)")
    s.add_argument("--budgets", default=None, help="comma-separated fractions (default: the suite's)")
    s.add_argument("--instances", default=None, help="comma-separated instance names (default: all)")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--option", action="append", default=None, metavar="KEY=VALUE",
                   help="a planner option (SolveOptions.extra), e.g. max_cp=1 to force auto's window search")
    s.add_argument("--out", default=None)
    m = sub.add_parser("moccasin")
    m.add_argument("--folder", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared",
                                                    "traces", "moccasin"))
    m.add_argument("--method", default="auto")
    m.add_argument("--time-limit", type=float, default=300.0)
    m.add_argument("--threads", type=int, default=2)
    m.add_argument("--out", default=None)
    b = sub.add_parser("brute")
    b.add_argument("--count", type=int, default=20)
    b.add_argument("--ops", type=int, default=7)
    b.add_argument("--max-candidates", type=int, default=3)
    b.add_argument("--max-count", type=int, default=200000)
    b.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    lines = {"suite": _bench_suite, "moccasin": _bench_moccasin, "brute": _bench_brute}[args.which](args)
    text = "\n".join(lines)
    print(text)
    if args.out:
        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
