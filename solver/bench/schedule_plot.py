"""The figure of one schedule: memory of each tier over time above a Gantt chart of its streams.

Memory panels (one per tier that holds anything, the compute tier always) stack the bytes held by
tensor kind and draw the capacity in force; the Gantt chart has one row for the compute stream and
one per link stream. Stalls, the intervals before the makespan where the compute stream is idle,
are shaded red across every panel. Times come from the validator (:mod:`solver.timing`), memory
from :mod:`solver.bench.occupancy`.

Examples
--------
>>> import tempfile, os
>>> from solver.formats import load_trace, load_hardware, load_schedule
>>> tr, hw = load_trace("instances/examples/trace.json"), load_hardware("instances/examples/hardware.json")
>>> s = load_schedule("instances/examples/schedule.json")
>>> from solver.timing import validate
>>> fig = schedule_figure(tr, hw, s, validate(tr, hw, s))
>>> len(fig.axes)
3
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solver.bench.occupancy import occupancy
from solver.model import Hardware, Schedule, Trace
from solver.timing import Report
from solver.units import format_bytes

#: Colour of each tensor kind in the memory panels.
KIND_COLOURS: dict[str, str] = {
    "weight": "#4c72b0", "activation": "#dd8452", "gradient": "#55a868", "optimizer_state": "#8172b3",
    "kv_cache": "#937860", "input": "#da8bc3", "workspace": "#8c8c8c", "other": "#ccb974",
}
#: Colour of each action kind in the Gantt chart.
ACTION_COLOURS: dict[str, str] = {"run": "#2b3a55", "recompute": "#e8a33d", "copy": "#2a9d8f"}
STALL_COLOUR = "#d62728"


def _time_unit(makespan: float) -> tuple[float, str]:
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if makespan >= 2 * scale:
            return scale, unit
    return 1e-9, "ns"


def _byte_unit(n: float) -> tuple[float, str]:
    for scale, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return float(scale), unit
    return 1.0, "B"


def stalls(report: Report) -> list[tuple[float, float]]:
    """Intervals in ``[0, makespan]`` where the compute stream runs nothing.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op, Hardware, Tier, Schedule, Run
    >>> from solver.timing import validate
    >>> tr = Trace("t", (), (Op(id="a", duration=1.0),))
    >>> stalls(validate(tr, Hardware("h", "HBM", (Tier("HBM", 1),)), Schedule("t", "h", (Run(op="a"),))))
    []
    """
    tl = report.timeline
    spans = sorted((s, e) for k, s, e in zip(tl.kinds, tl.starts, tl.ends)
                   if k in ("run", "recompute") and s is not None and e is not None)
    makespan = report.metrics.makespan
    eps = 1e-12 * max(makespan, 1e-300)
    out: list[tuple[float, float]] = []
    cursor = 0.0
    for s, e in spans:
        if s > cursor + eps:
            out.append((cursor, s))
        cursor = max(cursor, e)
    if makespan > cursor + eps:
        out.append((cursor, makespan))
    return out


def schedule_figure(trace: Trace, hardware: Hardware, schedule: Schedule, report: Report,
                    title: str | None = None) -> Any:
    """Draw the schedule (a matplotlib ``Figure``; save it with :func:`solver.bench.plots.save_figure`).

    Parameters
    ----------
    trace, hardware, schedule
        What was validated.
    report : Report
        :func:`solver.timing.validate` of them (its times, capacities and verdict are drawn).
    title : str, optional
        Default: trace, hardware, makespan and overhead.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    occ = occupancy(trace, hardware, schedule, report)
    m = report.metrics
    makespan = m.makespan if m.makespan > 0 else 1.0
    tscale, tunit = _time_unit(makespan)
    tiers = [t for t in occ.tiers if t == hardware.compute_tier or occ.peak()[t] > 0]
    streams = ["compute", *hardware.streams]
    heights = [2.2] * len(tiers) + [0.45 * len(streams) + 0.6]
    fig = Figure(figsize=(11.0, sum(heights) + 1.2))
    axes = fig.subplots(len(tiers) + 1, 1, sharex=True, gridspec_kw={"height_ratios": heights})
    axes = list(np.atleast_1d(axes))
    gaps = stalls(report)
    times = np.append(occ.times, makespan) / tscale
    used_kinds: list[str] = []
    for ax, tier in zip(axes, tiers):
        data = occ.bytes[tier]
        peak = int(data.sum(axis=1).max()) if len(data) else 0
        cap = report.capacity.get(tier)
        top_val = max(peak, 1)
        show_cap = cap is not None and cap <= 4 * top_val
        bscale, bunit = _byte_unit(max(top_val, cap if show_cap and cap else 0))
        base = np.zeros(len(occ.times))
        for j, kind in enumerate(occ.kinds):
            col = data[:, j].astype(np.float64) / bscale if len(data) else base
            if not np.any(col):
                continue
            if kind not in used_kinds:
                used_kinds.append(kind)
            ax.fill_between(times, np.append(base, base[-1:]), np.append(base + col, (base + col)[-1:]),
                            step="post", color=KIND_COLOURS.get(kind, "#cccccc"), linewidth=0)
            base = base + col
        if show_cap and cap is not None:
            ax.axhline(cap / bscale, color="black", linestyle="--", linewidth=1.0)
            ax.annotate(f"capacity {cap / bscale:.3g} {bunit}", xy=(1.0, cap / bscale), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=8)
        elif cap is not None:
            ax.annotate(f"capacity {format_bytes(cap)} (off scale)", xy=(1.0, 1.0),
                        xycoords="axes fraction", ha="right", va="top", fontsize=8)
        ax.set_ylabel(f"{tier} ({bunit})", parse_math=False)       # user text: no mathtext
        ax.set_ylim(0, max(top_val, cap if show_cap and cap else 0) / bscale * 1.08)
        ax.annotate(f"peak {peak / bscale:.3g} {bunit}", xy=(0.0, 1.0), xycoords="axes fraction", ha="left",
                    va="bottom", fontsize=8)
        for s, e in gaps:
            ax.axvspan(s / tscale, e / tscale, color=STALL_COLOUR, alpha=0.12, linewidth=0)
    gantt = axes[-1]
    tl = report.timeline
    row_of = {s: i for i, s in enumerate(streams)}
    bars: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for kind, stream, s, e in zip(tl.kinds, tl.streams, tl.starts, tl.ends):
        if s is None or e is None or kind in ("free", "noop"):
            continue
        row = 0 if kind in ("run", "recompute") else row_of.get(stream)
        if row is None:
            continue
        bars.setdefault((row, kind), []).append((s / tscale, max(e - s, 0.0) / tscale))
    for (row, kind), spans in bars.items():
        y = len(streams) - 1 - row
        gantt.broken_barh(spans, (y - 0.38, 0.76), facecolors=ACTION_COLOURS.get(kind, "#999999"),
                          edgecolor="white", linewidth=0.3)
    for s, e in gaps:
        gantt.broken_barh([(s / tscale, (e - s) / tscale)], (len(streams) - 1 - 0.45, 0.9),
                          facecolors=STALL_COLOUR, alpha=0.45, linewidth=0)
        gantt.axvspan(s / tscale, e / tscale, color=STALL_COLOUR, alpha=0.08, linewidth=0)
    gantt.set_yticks(range(len(streams)))
    gantt.set_yticklabels(list(reversed(streams)), parse_math=False)
    gantt.set_ylim(-0.6, len(streams) - 0.4)
    gantt.set_xlim(0, makespan / tscale)
    gantt.set_xlabel(f"time ({tunit})")
    stall_total = sum(e - s for s, e in gaps)
    kinds_legend = [Patch(color=KIND_COLOURS[k], label=k) for k in used_kinds]
    if kinds_legend and tiers:
        axes[0].legend(handles=kinds_legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                       title="tensor kind", title_fontsize=8, frameon=False)
    acts = [Patch(color=ACTION_COLOURS[k], label=k) for k in ("run", "recompute", "copy")
            if any(kind == k for (_, kind) in bars)]
    acts.append(Patch(color=STALL_COLOUR, alpha=0.45, label=f"stall\n{stall_total / tscale:.3g} {tunit}"))
    gantt.legend(handles=acts, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ov = "n/a" if m.overhead is None else f"{m.overhead * 100:.2f}%"
    verdict = "valid" if report.valid else f"INVALID ({len(report.errors)} errors)"
    fig.suptitle(title or f"{trace.name} on {hardware.name}: makespan {m.makespan / tscale:.4g} {tunit}, "
                 f"overhead {ov}, {verdict}", fontsize=10, parse_math=False)  # a '$' in a name is text
    fig.tight_layout()
    return fig
