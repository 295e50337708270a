"""One deadline for a whole command: every stage works from the time that is left.

``tierplan solve --time-limit T`` (and ``bound --milp --time-limit T``) promises to end within
``T`` plus :func:`time_margin` of it, counted from the moment the process started: loading,
warm start, bounds, model build, solve, decode and validation all come out of the one limit.
The command makes one :class:`Deadline` (:meth:`Deadline.for_command`), passes it down
(:attr:`solver.methods.SolveOptions.deadline`), and every stage takes the time left (or a share of
it, :meth:`Deadline.share`) instead of a limit of its own. Loops that may run long poll it
cheaply with a :class:`Poll` (the clock is read once every ``every`` steps) and stop with
:class:`OutOfTime`; whoever catches it returns the best result so far with an honest status
(``feasible`` with a schedule found earlier, else ``timeout``).

The clock is injectable: a test drives a deadline with a fake clock (a counter) instead of
seconds, so that what it checks never depends on the machine's speed.

Examples
--------
>>> ticks = iter(range(100))
>>> d = Deadline.after(3, clock=lambda: float(next(ticks)))     # reads 0: time is up at 3
>>> d.expired(), d.expired(), d.expired(), d.expired()           # reads 1, 2, 3, 4
(False, False, True, True)
>>> time_margin(2.0), time_margin(100.0)
(2.0, 10.0)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: The margin is the larger of this many seconds ...
MARGIN_S = 2.0
#: ... and this share of the limit.
MARGIN_SHARE = 0.1

#: A process at most this old when a command starts is taken to have been started for the command
#: (its interpreter's start and imports count against the limit); an older one is a host running
#: commands in process (a test session, a notebook), whose command's time starts at the call.
STARTUP_MAX_S = 5.0

#: Seconds a command keeps, before its time limit, to print its output and exit (the interpreter's
#: exit alone takes a few tenths of a second once the solver libraries are loaded): its stages
#: work to the limit less this.
FINISH_S = 0.5

Clock = Callable[[], float]


def time_margin(limit: float) -> float:
    """Seconds a command may run past its time limit: ``max(2 s, 10% of the limit)``.

    It covers what cannot be interrupted (a back end's last step, writing the output, the
    interpreter's exit); the bench's regression check fails a run past its limit plus this margin.

    Examples
    --------
    >>> time_margin(10.0), time_margin(60.0)
    (2.0, 6.0)
    """
    return max(MARGIN_S, MARGIN_SHARE * float(limit))


def process_age() -> float:
    """Seconds since this process started (0.0 where the system does not say).

    Read from ``/proc/self/stat`` on Linux, so that a command's deadline also counts the
    interpreter's start and the imports before the command's own code ran.

    Examples
    --------
    >>> 0.0 <= process_age() < 1e7
    True
    """
    try:
        with open("/proc/self/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
        started = int(stat.rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0
    return age if 0.0 <= age < 3600.0 else 0.0


class OutOfTime(Exception):
    """A stage saw its deadline pass (raised by :meth:`Deadline.check` and :class:`Poll`)."""


@dataclass(frozen=True)
class Deadline:
    """A point on a clock at which time is up.

    Parameters
    ----------
    at : float
        The clock's reading at which the time is up.
    clock : callable
        ``() -> float`` seconds; :func:`time.perf_counter` by default (tests pass a fake one).

    Examples
    --------
    >>> d = Deadline.after(10.0, clock=lambda: 100.0)
    >>> d.at, d.left(), d.expired()
    (110.0, 10.0, False)
    >>> d.share(0.2).left(), d.within(30.0).left(), d.share(0.5, at_least=8.0).left()
    (2.0, 10.0, 8.0)
    """

    at: float
    clock: Clock = field(default=time.perf_counter, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.perf_counter) -> "Deadline":
        """The deadline ``seconds`` from now on ``clock``.

        Examples
        --------
        >>> Deadline.after(1.5, clock=lambda: 2.0).at
        3.5
        """
        return cls(clock() + float(seconds), clock)

    @classmethod
    def for_command(cls, seconds: float, clock: Clock = time.perf_counter) -> "Deadline":
        """The deadline of a command's work given ``seconds``: counted from the start of the
        process (:func:`process_age`, when it is at most :data:`STARTUP_MAX_S` old: started for
        this command), not from the call, less :data:`FINISH_S` to print and exit.

        Examples
        --------
        >>> Deadline.for_command(5.0).left() <= 5.0 - FINISH_S
        True
        """
        age = process_age()
        return cls(clock() + float(seconds) - (age if age <= STARTUP_MAX_S else 0.0) - FINISH_S, clock)

    def now(self) -> float:
        """The clock's reading."""
        return self.clock()

    def left(self) -> float:
        """Seconds left (0.0 once expired).

        Examples
        --------
        >>> Deadline(5.0, clock=lambda: 7.0).left()
        0.0
        """
        return max(0.0, self.at - self.clock())

    def expired(self) -> bool:
        """Whether the time is up."""
        return self.clock() >= self.at

    def check(self, what: str = "") -> None:
        """Raise :class:`OutOfTime` when the time is up.

        Examples
        --------
        >>> Deadline(5.0, clock=lambda: 7.0).check("the build")
        Traceback (most recent call last):
        ...
        solver.deadline.OutOfTime: the time limit passed during the build
        """
        if self.expired():
            raise OutOfTime(f"the time limit passed{' during ' + what if what else ''}")

    def within(self, seconds: float) -> "Deadline":
        """This deadline or ``seconds`` from now, whichever is sooner (a stage's own limit).

        Examples
        --------
        >>> Deadline(10.0, clock=lambda: 0.0).within(4.0).at, Deadline(10.0, clock=lambda: 0.0).within(40.0).at
        (4.0, 10.0)
        """
        return Deadline(min(self.at, self.clock() + max(0.0, float(seconds))), self.clock)

    def share(self, fraction: float, at_least: float = 0.0, at_most: float = math.inf) -> "Deadline":
        """A stage's deadline: ``fraction`` of the time left, clamped to ``[at_least, at_most]``
        seconds, and never later than this deadline.

        Examples
        --------
        >>> d = Deadline(10.0, clock=lambda: 0.0)
        >>> d.share(0.25).at, d.share(0.01, at_least=1.0).at, d.share(0.9, at_most=3.0).at
        (2.5, 1.0, 3.0)
        """
        return self.within(min(max(fraction * self.left(), at_least), at_most))

    def reserving(self, share: float = 0.05, most: float = 2.0) -> "Deadline":
        """This deadline moved earlier by ``share`` of the time left (at most ``most`` seconds):
        a back end's deadline, keeping time to read its answer back, decode and validate it.

        Examples
        --------
        >>> Deadline(100.0, clock=lambda: 0.0).reserving().at, Deadline(10.0, clock=lambda: 0.0).reserving().at
        (98.0, 9.5)
        """
        return Deadline(self.at - min(most, share * self.left()), self.clock)

    def sooner(self, other: "Deadline | None") -> "Deadline":
        """The earlier of two deadlines on this one's clock (``other`` None: this one).

        Examples
        --------
        >>> Deadline(3.0).sooner(Deadline(2.0)).at, Deadline(3.0).sooner(None).at
        (2.0, 3.0)
        """
        if other is None or other.at >= self.at:
            return self
        return Deadline(other.at, self.clock)

    def poll(self, every: int = 256) -> "Poll":
        """A :class:`Poll` of this deadline reading the clock once every ``every`` calls."""
        return Poll(self, every)


class Poll:
    """A cheap check of a deadline for long loops: call it once per step; it reads the clock
    only once every ``every`` calls and raises :class:`OutOfTime` when the time is up.

    It holds a counter (one per loop, never shared between threads); with ``deadline`` None
    it does nothing.

    Parameters
    ----------
    deadline : Deadline or None
    every : int
        Steps between two readings of the clock (at least 1).

    Attributes
    ----------
    steps, checks : int
        Calls so far, and clock readings among them.

    Examples
    --------
    >>> reads = []
    >>> d = Deadline(2.0, clock=lambda: reads.append(1) or float(len(reads)))
    >>> p = Poll(d, every=3)
    >>> for _ in range(5):
    ...     p()
    >>> p.steps, p.checks
    (5, 1)
    >>> p()
    Traceback (most recent call last):
    ...
    solver.deadline.OutOfTime: the time limit passed after 6 steps
    """

    __slots__ = ("deadline", "every", "steps", "checks", "_next")

    def __init__(self, deadline: Deadline | None, every: int = 256) -> None:
        self.deadline = deadline
        self.every = max(1, int(every))
        self.steps = 0
        self.checks = 0
        self._next = self.every

    def __call__(self) -> None:
        """One step: read the clock when it is the turn (every ``every`` steps)."""
        self.steps += 1
        if self.deadline is None or self.steps < self._next:
            return
        self._next = self.steps + self.every
        self.checks += 1
        if self.deadline.expired():
            raise OutOfTime(f"the time limit passed after {self.steps} steps")


def command_deadline(time_limit: float | None) -> Deadline | None:
    """The deadline of a command given ``--time-limit`` (None without one, or for a value the
    command refuses): counted from the process's start (:meth:`Deadline.for_command`), so that
    loading counts; the command ends within it plus :func:`time_margin`.

    Examples
    --------
    >>> command_deadline(None) is None, command_deadline(-1.0) is None
    (True, True)
    >>> 0 < command_deadline(30.0).left() <= 30.0
    True
    """
    if time_limit is None or not time_limit > 0:
        return None
    return Deadline.for_command(time_limit)


def deadline_of(options: Any, start: float | None = None, default_limit: float | None = None) -> Deadline | None:
    """The deadline an options object (``time_limit`` seconds and/or a ``deadline``) sets: the
    sooner of its deadline and ``time_limit`` (else ``default_limit``) from ``start``.

    Parameters
    ----------
    options : object
        With ``time_limit`` (seconds or None) and ``deadline`` (a :class:`Deadline` or None), as
        :class:`solver.methods.SolveOptions` has.
    start : float, optional
        The clock's reading the limit counts from (default: now on the deadline's clock).
    default_limit : float, optional
        Seconds when ``time_limit`` is None.

    Returns
    -------
    Deadline or None
        None when there is neither a deadline nor a limit.

    Examples
    --------
    >>> from types import SimpleNamespace as O
    >>> deadline_of(O(time_limit=None, deadline=None)) is None
    True
    >>> deadline_of(O(time_limit=5.0, deadline=Deadline(3.0, clock=lambda: 0.0))).at
    3.0
    >>> deadline_of(O(time_limit=None, deadline=None), start=1.0, default_limit=60.0).at
    61.0
    """
    given: Deadline | None = getattr(options, "deadline", None)
    limit = getattr(options, "time_limit", None)
    if limit is None:
        limit = default_limit
    if limit is None:
        return given
    clock = given.clock if given is not None else time.perf_counter
    own = Deadline((clock() if start is None else start) + float(limit), clock)
    return own.sooner(given) if given is not None else own
