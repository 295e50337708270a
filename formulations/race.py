"""A bound and a search run side by side: shared proof state, so each stops when they meet.

An exact planner's search (CP-SAT) finds schedules; a relaxation solved at the same time (the
window MILP of :mod:`formulations.relax`) raises a lower bound that holds for every schedule.
Once the best schedule found is within a relative ``tolerance`` of the best bound, nothing is left
to prove: the side that sees the two meet stops the other. A :class:`Race` holds the two figures
(seconds), the callables that stop each side, and a ``done`` flag the bound side polls.

It is the one mutable object the planners share between threads; every method takes its lock.

Examples
--------
>>> race = Race(tolerance=1e-7)
>>> race.offer_upper(5.0), race.offer_lower(4.0), race.met
(False, False, False)
>>> stopped = []
>>> race.on_meet(lambda: stopped.append("search"))
>>> race.offer_lower(5.0), race.met, stopped
(True, True, ['search'])
>>> race.lower, race.upper
(5.0, 5.0)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable


class Race:
    """Shared best upper (a schedule's makespan) and lower (a proven bound) figures.

    Parameters
    ----------
    tolerance : float
        The two figures meet when ``upper <= lower * (1 + tolerance)``.

    Examples
    --------
    >>> r = Race(0.0)
    >>> r.offer_upper(3.0); r.finish(); r.done
    False
    True
    """

    def __init__(self, tolerance: float) -> None:
        self._lock = threading.Lock()
        self._tol = float(tolerance)
        self._upper = math.inf
        self._lower = -math.inf
        self._done = threading.Event()
        self._stoppers: list[Callable[[], None]] = []

    @property
    def upper(self) -> float:
        """The best schedule's figure offered so far (``inf`` before any)."""
        with self._lock:
            return self._upper

    @property
    def lower(self) -> float:
        """The best proven bound offered so far (``-inf`` before any)."""
        with self._lock:
            return self._lower

    @property
    def met(self) -> bool:
        """Whether the best schedule is within the tolerance of the best bound."""
        with self._lock:
            return self._met()

    @property
    def done(self) -> bool:
        """Whether the race is over (the figures met, or :meth:`finish` was called)."""
        return self._done.is_set()

    def _met(self) -> bool:
        return math.isfinite(self._upper) and self._upper <= self._lower * (1.0 + self._tol) + 1e-15

    def on_meet(self, stop: Callable[[], None]) -> None:
        """Call ``stop`` (once) when the figures meet; at once if they already have."""
        with self._lock:
            if not self._done.is_set():
                self._stoppers.append(stop)
                return
        stop()

    def offer_upper(self, value: float) -> bool:
        """A schedule of this figure exists; returns whether the figures now meet."""
        return self._offer(value, upper=True)

    def offer_lower(self, value: float) -> bool:
        """Every schedule takes at least this; returns whether the figures now meet."""
        return self._offer(value, upper=False)

    def _offer(self, value: float, *, upper: bool) -> bool:
        with self._lock:
            if upper:
                self._upper = min(self._upper, float(value))
            else:
                self._lower = max(self._lower, float(value))
            if not self._met():
                return False
            stoppers, self._stoppers = self._stoppers, []
            self._done.set()
        for stop in stoppers:
            stop()
        return True

    def finish(self) -> None:
        """End the race (the search is over): the bound side stops at its next poll.

        The stoppers are not called: the side that finishes stops the other itself.
        """
        with self._lock:
            self._stoppers = []
            self._done.set()
