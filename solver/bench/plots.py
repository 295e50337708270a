"""Plots of a sweep: overhead versus memory budget, one figure per instance, one line per method.

Figures are drawn with matplotlib's object API on the Agg canvas (no display, no global state)
and written atomically; they carry their own titles, axis labels and legends so that they read
without the CSV.

Examples
--------
>>> import tempfile
>>> from solver.bench.rows import Row
>>> rows = [Row(instance="i", hardware="h", ops=3, budget=b, no_offload_peak=100, capacity=int(100 * float(b)),
...             method="keep", status="feasible", valid=True, makespan=1.0, overhead=0.1 * float(b))
...         for b in ("1", "0.5")]
>>> [p.name for p in overhead_plots(rows, tempfile.mkdtemp(), "demo")]
['i.png']
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from solver.bench.rows import Row
from solver.fileio import write_bytes_atomic

#: Marker styles cycled over methods (colours come from matplotlib's default cycle).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def safe_name(name: str) -> str:
    """A file-name-safe form of an instance name.

    Examples
    --------
    >>> safe_name("a/b c")
    'a_b_c'
    """
    return re.sub(r"[^A-Za-z0-9_.+\-]", "_", name)


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> None:
    """Write a matplotlib figure as PNG atomically, without the software tag (stable bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    write_bytes_atomic(path, buf.getvalue())


def _budget_x(r: Row) -> float | None:
    if r.capacity is not None and r.no_offload_peak:
        return r.capacity / r.no_offload_peak
    try:
        return float(r.budget)
    except ValueError:
        return None


def overhead_figure(rows: Sequence[Row], instance: str, suite: str = "") -> Any:
    """The overhead-versus-budget figure of one instance (a matplotlib ``Figure``)."""
    from matplotlib.figure import Figure

    mine = [r for r in rows if r.instance == instance]
    methods = list(dict.fromkeys(r.method for r in mine))
    fig = Figure(figsize=(7.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    fail_y = None
    solved_vals = [r.overhead * 100 for r in mine if r.solved and r.overhead is not None]
    top = max(solved_vals) if solved_vals else 1.0
    fail_y = top * 1.12 + 1.0
    any_fail = False
    for i, m in enumerate(methods):
        pts = sorted((x, r) for r in mine if r.method == m and (x := _budget_x(r)) is not None)
        ok = [(x, r.overhead * 100) for x, r in pts if r.solved and r.overhead is not None]
        bad = [x for x, r in pts if not r.solved]
        marker = MARKERS[i % len(MARKERS)]
        line = ax.plot([p[0] for p in ok], [p[1] for p in ok], marker=marker, label=m, linewidth=1.6,
                       markersize=6)[0]
        if bad:
            any_fail = True
            y = fail_y * (1 + 0.035 * i)
            ax.plot(bad, [y] * len(bad), linestyle="none", marker="x", color=line.get_color(),
                    markersize=8, markeredgewidth=2)
    if any_fail:
        top_band = fail_y * (1 + 0.035 * max(len(methods) - 1, 0))
        ax.axhspan(fail_y * 0.97 - 0.5, top_band * 1.03 + 0.5, color="0.93", zorder=0, linewidth=0)
        ax.set_ylim(top=top_band * 1.06 + 1.0)
        ticks = [t for t in ax.get_yticks() if 0 <= t < fail_y * 0.9]
        ax.set_yticks([*ticks, (fail_y + top_band) / 2])
        ax.set_yticklabels([f"{t:g}" for t in ticks] + ["failed"])
    ax.set_xlabel("memory budget (fraction of the no-offload peak)")
    ax.set_ylabel("overhead over compute time (%)")
    first = mine[0] if mine else Row()
    detail = ", ".join(p for p in (f"{first.ops} ops" if first.ops else "", first.hardware) if p)
    ax.set_title(f"{instance}" + (f" ({detail})" if detail else "") + (f" - suite {suite}" if suite else ""),
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    low = min([0.0, *solved_vals])
    ax.set_ylim(bottom=low - 0.02 * (fail_y - low))
    if methods:
        ax.legend(fontsize=8, loc="best", title="method", title_fontsize=8)
    return fig


def overhead_plots(rows: Sequence[Row], out_dir: str | os.PathLike[str], suite: str = "") -> list[Path]:
    """Write ``<out_dir>/<instance>.png`` for every instance of the rows that ran (``skipped`` rows
    are left out); returns the paths."""
    folder = Path(out_dir)
    paths = []
    rows = [r for r in rows if not r.skipped]
    for inst in dict.fromkeys(r.instance for r in rows):
        fig = overhead_figure(rows, inst, suite)
        path = folder / f"{safe_name(inst)}.png"
        save_figure(fig, path)
        paths.append(path)
    return paths
