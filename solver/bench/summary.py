"""The Markdown summary of a sweep: per instance and budget each method's overhead and gap (the
best in bold), and per method its geometric-mean overhead, wins and failures. Runs that were
``skipped`` (instance unavailable here) count in none of these: they are listed, per instance with
the reason, in a section of their own.

Examples
--------
>>> from solver.bench.rows import SKIPPED, Row
>>> rows = [Row(instance="i", budget="1", method=m, status="feasible", valid=True, makespan=ms,
...             overhead=ms - 1.0, gap=0.0) for m, ms in (("a", 1.1), ("b", 1.2))]
>>> text = summary_markdown(rows, "demo")
>>> "**10.00%**" in text and "| b |" in text
True
>>> round(geometric_mean_overhead([0.0, 0.21]), 4)
0.1
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from solver.bench.rows import SKIPPED, Row

#: Relative makespan difference within which two methods tie for best.
TIE = 1e-9


def geometric_mean_overhead(overheads: Sequence[float]) -> float:
    """``(prod(1 + o)) ** (1/n) - 1``: the mean slowdown over compute time.

    Examples
    --------
    >>> geometric_mean_overhead([0.0, 0.0])
    0.0
    """
    if not overheads:
        return float("nan")
    return math.exp(sum(math.log1p(max(o, -0.999999)) for o in overheads) / len(overheads)) - 1.0


def _overrun(x: float, over: int) -> str:
    """``0.95x``; with the runs past their limit plus margin (``1.30x (2 over)``); ``-`` unknown."""
    if not math.isfinite(x):
        return "-"
    return f"{x:.2f}x" + (f" ({over} over)" if over else "")


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x * 100:.2f}%"


def _methods(rows: Sequence[Row]) -> list[str]:
    return list(dict.fromkeys(r.method for r in rows))


def _groups(rows: Sequence[Row]) -> dict[tuple[str, str], dict[str, Row]]:
    out: dict[tuple[str, str], dict[str, Row]] = {}
    for r in rows:
        out.setdefault((r.instance, r.budget), {})[r.method] = r
    return out


def best_methods(group: Mapping[str, Row]) -> set[str]:
    """Methods with the lowest makespan among the solved runs of one (instance, budget).

    Examples
    --------
    >>> r = Row(status="feasible", valid=True, makespan=1.0)
    >>> sorted(best_methods({"a": r, "b": r, "c": r.with_(makespan=2.0)}))
    ['a', 'b']
    """
    solved = {m: r.makespan for m, r in group.items() if r.solved and r.makespan is not None}
    if not solved:
        return set()
    best = min(solved.values())
    return {m for m, v in solved.items() if v <= best * (1 + TIE)}


def _cell(r: Row | None, bold: bool) -> str:
    if r is None:
        return ""
    if not r.solved:
        return r.status
    text = _pct(r.overhead)
    if bold:
        text = f"**{text}**"
    if r.gap is not None:
        text += f" (gap {_pct(r.gap)})"
    return text


def method_stats(rows: Sequence[Row]) -> list[dict[str, object]]:
    """Per method: runs, solved, failures, wins, geometric-mean overhead over the (instance, budget)
    pairs every method solved (``gmean_common``) and over its own solved runs (``gmean_own``),
    mean planner wall time, and the largest overrun (the solve's wall time over its time limit;
    NaN where no run of the method says) with how many runs broke the limit plus its margin.

    Examples
    --------
    >>> r = Row(instance="i", budget="1", method="a", status="feasible", valid=True, makespan=1.0, overhead=0.0)
    >>> method_stats([r])[0]["wins"]
    1
    """
    methods = _methods(rows)
    groups = _groups(rows)
    common = [g for g in groups.values() if all(m in g and g[m].solved for m in methods)]
    out = []
    for m in methods:
        mine = [r for r in rows if r.method == m]
        solved = [r for r in mine if r.solved]
        wins = sum(1 for g in groups.values() if m in best_methods(g))
        walls = [r.wall_s for r in mine if r.wall_s is not None]
        overruns = [r.overrun for r in mine if r.overrun is not None]
        out.append({
            "method": m, "runs": len(mine), "solved": len(solved), "failures": len(mine) - len(solved),
            "wins": wins,
            "gmean_common": geometric_mean_overhead([g[m].overhead for g in common if g[m].overhead is not None]),
            "common": len(common),
            "gmean_own": geometric_mean_overhead([r.overhead for r in solved if r.overhead is not None]),
            "mean_wall_s": sum(walls) / len(walls) if walls else float("nan"),
            "max_overrun": max(overruns) if overruns else float("nan"),
            "over_time": sum(1 for r in mine if r.over_time),
        })
    return out


def summary_markdown(rows: Sequence[Row], suite: str, description: str = "", command: str = "") -> str:
    """The Markdown summary of a sweep's rows.

    Parameters
    ----------
    rows : sequence of Row
    suite : str
        Suite name (the title).
    description : str
        The suite's description.
    command : str
        The command that produced the rows (shown so that a reader can rerun it).
    """
    skipped = [r for r in rows if r.status == SKIPPED]
    rows = [r for r in rows if r.status != SKIPPED]
    methods = _methods(rows)
    groups = _groups(rows)
    lines = [f"# Benchmark results: suite `{suite}`", ""]
    if description:
        lines += [description, ""]
    first = rows[0] if rows else (skipped[0] if skipped else None)
    if command:
        lines += ["Regenerate with:", "", "```bash", command, "```", ""]
    if first is not None:
        commits = sorted({r.commit for r in rows or skipped if r.commit})
        machines = sorted({r.machine for r in rows or skipped if r.machine})
        lines += [f"- code version: {', '.join(f'`{c}`' for c in commits) or 'unknown'}",
                  f"- libraries: `{first.versions}`" if first.versions else "- libraries: unknown",
                  f"- machine: {'; '.join(machines) or 'unknown'}",
                  f"- options: `{first.options}`", ""]
    if not rows and skipped:
        return "\n".join(lines + _skipped_section(skipped, False)) + "\n"
    lines += ["Overhead is makespan / compute time - 1 under the timing model (lower is better); gap is "
              "makespan / lower bound - 1 (the bound: the best of solver.bounds and the planner's own). The best method of each row is in **bold**. A budget is "
              "a fraction of the trace's no-offload peak (or an absolute compute-tier capacity). A failed run "
              "shows its status. Overrun is the solve's wall time over its time limit; past the limit plus "
              "max(2 s, 10%) it is a regression.", ""]
    lines += ["## Per method", "",
              "| method | runs | solved | failures | wins | geo-mean overhead (all solved by every method) "
              "| geo-mean overhead (own solved runs) | mean planner time | max overrun (wall / limit) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in method_stats(rows):
        wall = s["mean_wall_s"]
        lines.append(f"| {s['method']} | {s['runs']} | {s['solved']} | {s['failures']} | {s['wins']} | "
                     f"{_pct(s['gmean_common'])} (n={s['common']}) | {_pct(s['gmean_own'])} | "   # type: ignore[arg-type]
                     f"{'-' if not isinstance(wall, float) or math.isnan(wall) else f'{wall:.3g} s'} | "
                     f"{_overrun(s['max_overrun'], s['over_time'])} |")  # type: ignore[arg-type]
    lines += ["", "## Per instance and budget", "",
              "| instance | ops | budget | capacity | " + " | ".join(methods) + " |",
              "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in methods) + " |"]
    for (inst, budget), g in groups.items():
        best = best_methods(g)
        any_row = next(iter(g.values()))
        ops = "" if any_row.ops is None else str(any_row.ops)
        cap = next((r.capacity for r in g.values() if r.capacity is not None), None)
        cap_text = "" if cap is None else _bytes(cap)
        cells = [_cell(g.get(m), m in best) for m in methods]
        lines.append(f"| {inst} | {ops} | {budget} | {cap_text} | " + " | ".join(cells) + " |")
    failures = [r for r in rows if not r.solved and r.status not in ("infeasible",)]
    if failures:
        lines += ["", "## Failures", "", "| instance | budget | method | status | message |",
                  "| --- | ---: | --- | --- | --- |"]
        for r in failures:
            msg = r.message.replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| {r.instance} | {r.budget} | {r.method} | {r.status} | {msg} |")
    if skipped:
        lines += [""] + _skipped_section(skipped, True)[:-1]
    return "\n".join(lines) + "\n"


def _skipped_section(skipped: Sequence[Row], any_ran: bool) -> list[str]:
    """Markdown lines listing the skipped runs per instance, with the reason."""
    per: dict[str, list[Row]] = {}
    for r in skipped:
        per.setdefault(r.instance, []).append(r)
    head = (f"{len(skipped)} run(s) of {len(per)} instance(s) were skipped: the instance is unavailable here "
            "(status `skipped`; not results, not failures)." if any_ran else
            f"No run happened: all {len(skipped)} run(s), of {len(per)} instance(s), were skipped because the "
            "instances are unavailable here (status `skipped`).")
    lines = ["## Skipped", "", head, "", "| instance | runs | why |", "| --- | ---: | --- |"]
    for inst, rs in per.items():
        msg = rs[0].message.replace("|", "\\|").replace("\n", " ")[:300]
        lines.append(f"| {inst} | {len(rs)} | {msg} |")
    return lines + [""]


def _bytes(n: int) -> str:
    from solver.units import format_bytes
    return format_bytes(n).replace(" ", "\u00a0")
