"""The regression check: compare a sweep's rows with a baseline's.

A run regresses when its schedule is invalid, when it ran past its time limit plus the margin
every command promises (its ``overrun``, wall / limit, above :func:`solver.bench.rows.overrun_limit`:
``max(2 s, 10%)`` over the limit), when its status is worse than the baseline's (optimal, then
feasible, then every failure), or when its makespan is worse than the baseline's by more than the
relative tolerance. A run of the baseline that the sweep did not produce is a regression too
(``missing``). An overrun that is unknown (a results file written before the column existed) is
no regression: only a known overrun past the limit fails. Every other difference (a better makespan, a better status, a change within the
tolerance, a run the baseline lacks) is reported but passes.

A run that was ``skipped`` (its instance is unavailable here: an optional trace file is absent)
is no regression and nothing to compare: where the baseline ran it, the difference is reported
with the verdict ``skipped`` and the reason; where both sides skipped it, it is only counted.

Examples
--------
>>> from solver.bench.rows import Row
>>> base = [Row(instance="i", budget="1", method="m", status="feasible", valid=True, makespan=1.0)]
>>> new = [Row(instance="i", budget="1", method="m", status="feasible", valid=True, makespan=1.01)]
>>> res = compare(base, new, tolerance=0.005)
>>> res.failed, [d.verdict for d in res.differences]
(True, ['REGRESSION'])
>>> compare(base, base).failed
False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solver.bench.rows import SKIPPED, Row, overrun_limit, status_rank

#: Default relative tolerance on makespans.
DEFAULT_TOLERANCE = 0.005


@dataclass(frozen=True)
class Difference:
    """One run that differs from the baseline.

    Attributes
    ----------
    key : tuple of str
        (instance, budget, method).
    baseline, current : Row or None
        None for a run only on the other side.
    verdict : str
        ``REGRESSION`` (fails the check), ``better``, ``worse within tolerance``, ``changed``,
        ``new`` or ``skipped`` (the run did not happen here; passes).
    reason : str
        What changed, in words.
    """

    key: tuple[str, str, str]
    baseline: Row | None
    current: Row | None
    verdict: str
    reason: str

    @property
    def regression(self) -> bool:
        """True when this difference fails the check."""
        return self.verdict == "REGRESSION"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check: every difference, how many runs were compared (both sides ran
    them), and how many of the current runs were skipped (instance unavailable here)."""

    differences: tuple[Difference, ...]
    compared: int
    tolerance: float
    skipped: int = 0

    @property
    def regressions(self) -> tuple[Difference, ...]:
        """The differences that fail the check."""
        return tuple(d for d in self.differences if d.regression)

    @property
    def failed(self) -> bool:
        """True when there is any regression."""
        return bool(self.regressions)


def _rel(new: float, old: float) -> float:
    if old == 0:
        return 0.0 if new == 0 else float("inf")
    return new / old - 1.0


def compare_row(base: Row | None, cur: Row | None, tolerance: float = DEFAULT_TOLERANCE) -> Difference | None:
    """The difference between one baseline row and the current one (None when they agree).

    Examples
    --------
    >>> b = Row(instance="i", budget="1", method="m", status="optimal", valid=True, makespan=2.0)
    >>> compare_row(b, b.with_(status="feasible")).reason
    'status optimal -> feasible'
    >>> compare_row(b, b.with_(makespan=1.5)).verdict
    'better'
    >>> compare_row(b, b.with_(status="skipped", valid=None, message="file absent")).verdict
    'skipped'
    >>> compare_row(b, b.with_(options='{"time_limit":10.0}', overrun=1.5)).reason
    'ran past its time limit: 15 s for a limit of 10 s (at most 12 s allowed)'
    """
    key = (cur or base).key  # type: ignore[union-attr]
    if cur is None:
        return Difference(key, base, None, "REGRESSION", "missing: the run did not happen")
    if cur.status == SKIPPED:
        if base is not None and base.status == SKIPPED:
            return None
        return Difference(key, base, cur, "skipped", f"not run here: {cur.message or 'instance unavailable'}")
    if cur.over_time:
        limit = cur.time_limit
        assert limit is not None and cur.overrun is not None
        return Difference(key, base, cur, "REGRESSION", f"ran past its time limit: {cur.overrun * limit:.3g} s for a "
                          f"limit of {limit:g} s (at most {overrun_limit(limit) * limit:.3g} s allowed)")
    if base is None:
        return Difference(key, None, cur, "new", "not in the baseline")
    if base.status == SKIPPED:
        return Difference(key, base, cur, "new", f"skipped in the baseline; now {cur.status}")
    if cur.valid is False:
        why = f"invalid schedule ({cur.errors or cur.message})"
        return Difference(key, base, cur, "REGRESSION", why)
    rb, rc = status_rank(base.status), status_rank(cur.status)
    if rc > rb:
        return Difference(key, base, cur, "REGRESSION", f"status {base.status} -> {cur.status}")
    reasons: list[str] = []
    verdict = ""
    if rc < rb:
        verdict = "better"
        reasons.append(f"status {base.status} -> {cur.status}")
    elif base.status != cur.status:
        verdict = "changed"
        reasons.append(f"status {base.status} -> {cur.status}")
    if cur.makespan is not None and base.makespan is not None and cur.solved and base.solved:
        rel = _rel(cur.makespan, base.makespan)
        if rel != 0.0:
            reasons.append(f"makespan {rel * 100:+.3f}%")
            if rel > tolerance:
                return Difference(key, base, cur, "REGRESSION", "; ".join(reasons) + f" (tolerance "
                                  f"{tolerance * 100:g}%)")
            if not verdict:
                verdict = "better" if rel < 0 else "worse within tolerance"
    if not reasons:
        return None
    return Difference(key, base, cur, verdict or "changed", "; ".join(reasons))


def compare(baseline: Sequence[Row], current: Sequence[Row], tolerance: float = DEFAULT_TOLERANCE) -> CheckResult:
    """Compare every run of ``current`` with the same (instance, budget, method) of ``baseline``.

    Parameters
    ----------
    baseline, current : sequence of Row
    tolerance : float
        Relative makespan tolerance (0.005 is 0.5%).

    Returns
    -------
    CheckResult
        Differences in baseline order, then new runs.
    """
    cur = {r.key: r for r in current}
    base = {r.key: r for r in baseline}
    diffs: list[Difference] = []
    for k, b in base.items():
        d = compare_row(b, cur.get(k), tolerance)
        if d is not None:
            diffs.append(d)
    for k, c in cur.items():
        if k not in base:
            d = compare_row(None, c, tolerance)
            if d is not None:
                diffs.append(d)
    # an invalid schedule fails the check even where the baseline has no row for it
    diffs = [Difference(d.key, d.baseline, d.current, "REGRESSION", f"invalid schedule "
                        f"({d.current.errors or d.current.message})")
             if d.verdict == "new" and d.current is not None and d.current.valid is False else d for d in diffs]
    both = set(base) & set(cur)
    skipped = sum(1 for k, c in cur.items() if c.status == SKIPPED)
    compared = sum(1 for k in both if cur[k].status != SKIPPED and base[k].status != SKIPPED)
    return CheckResult(tuple(diffs), compared, tolerance, skipped)


def _side(row: Row | None) -> str:
    if row is None:
        return "-"
    if row.makespan is not None and row.valid is not None:
        return f"{row.status} {row.makespan:.6g} s" + ("" if row.valid else " INVALID")
    return row.status


def format_check(result: CheckResult) -> str:
    """A plain-text table of every difference and a verdict line.

    Examples
    --------
    >>> print(format_check(CheckResult((), 3, 0.005)))
    check: 3 runs compared, no difference (tolerance 0.5%): PASS
    >>> print(format_check(CheckResult((), 0, 0.005, skipped=4)))
    check: 0 runs compared, 4 skipped (instance unavailable here), no difference (tolerance 0.5%): PASS
    """
    head = f"check: {result.compared} runs compared"
    if result.skipped:
        head += f", {result.skipped} skipped (instance unavailable here)"
    if not result.differences:
        return f"{head}, no difference (tolerance {result.tolerance * 100:g}%): PASS"
    cols = ["instance", "budget", "method", "baseline", "now", "verdict", "why"]
    body = [[d.key[0], d.key[1], d.key[2], _side(d.baseline), _side(d.current), d.verdict, d.reason]
            for d in result.differences]
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in body]
    n_reg = len(result.regressions)
    verdict = f"FAIL: {n_reg} regression(s)" if n_reg else "PASS"
    lines.append(f"{head}, {len(result.differences)} difference(s) (tolerance {result.tolerance * 100:g}%): "
                 f"{verdict}")
    return "\n".join(lines)
