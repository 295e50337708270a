"""Link calendars: reserved busy intervals of one serial stream, in estimated time.

A planner that times its copies books each one on its stream's calendar: an
eviction as early as possible after the data is ready, a prefetch as late as
possible before its deadline. When the copies are then emitted in the order of
their reserved starts (each stream is first in, first out), every copy starts no
later than its reservation, because it starts at the later of its dependency's end
and its predecessor's end, both no later than its reserved start.

Examples
--------
>>> cal = Calendar()
>>> cal.reserve(0.0, 2.0)
>>> cal.earliest(1.0, 1.0), cal.latest(10.0, 3.0, 0.0)
(2.0, 7.0)
>>> cal.latest(2.5, 1.0, 0.0) is None
True
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence


class Calendar:
    """Busy intervals ``[start, end)`` of one stream, sorted, disjoint; touching ones merged.

    Examples
    --------
    >>> c = Calendar(); c.reserve(1.0, 1.0); c.reserve(2.0, 1.0)
    >>> c.intervals()
    [(1.0, 3.0)]
    """

    __slots__ = ("_s", "_e", "busy")

    def __init__(self) -> None:
        self._s: list[float] = []
        self._e: list[float] = []
        self.busy = 0.0

    def intervals(self) -> list[tuple[float, float]]:
        """The merged busy intervals."""
        return list(zip(self._s, self._e))

    def earliest(self, t0: float, length: float, extra: Sequence[tuple[float, float]] = ()) -> float:
        """Earliest start ``>= t0`` of a free interval of ``length``, also avoiding ``extra``."""
        while True:
            s = self._earliest(t0, length)
            clash = _first_clash(extra, s, s + length)
            if clash is None:
                return s
            t0 = clash[1]

    def _earliest(self, t0: float, length: float) -> float:
        starts, ends = self._s, self._e
        i = bisect_right(ends, t0)
        cand = t0
        n = len(starts)
        while i < n and starts[i] < cand + length:
            if ends[i] > cand:
                cand = ends[i]
            i += 1
        return cand

    def latest(self, t1: float, length: float, lo: float,
               extra: Sequence[tuple[float, float]] = ()) -> float | None:
        """Latest start ``s`` with ``lo <= s`` and ``s + length <= t1`` of a free interval (None if none)."""
        while True:
            s = self._latest(t1, length, lo)
            if s is None:
                return None
            clash = _first_clash(extra, s, s + length, last=True)
            if clash is None:
                return s
            t1 = clash[0]

    def _latest(self, t1: float, length: float, lo: float) -> float | None:
        starts, ends = self._s, self._e
        i = bisect_left(starts, t1) - 1
        end = t1
        while True:
            if end - length < lo:
                return None
            if i < 0 or ends[i] <= end - length:
                return end - length
            if starts[i] < end:
                end = starts[i]
            i -= 1

    def reserve(self, start: float, length: float) -> None:
        """Book ``[start, start + length)`` (the caller found it free)."""
        end = start + length
        self.busy += length
        starts, ends = self._s, self._e
        i = bisect_left(starts, start)
        merge_prev = i > 0 and ends[i - 1] == start
        merge_next = i < len(starts) and starts[i] == end
        if merge_prev and merge_next:
            ends[i - 1] = ends[i]
            del starts[i]
            del ends[i]
        elif merge_prev:
            ends[i - 1] = end
        elif merge_next:
            starts[i] = start
        else:
            starts.insert(i, start)
            ends.insert(i, end)

    def release(self, start: float, length: float) -> None:
        """Cancel a booking made by :meth:`reserve` with the same ``start`` and ``length``.

        Examples
        --------
        >>> c = Calendar(); c.reserve(0.0, 3.0); c.release(1.0, 1.0)
        >>> c.intervals()
        [(0.0, 1.0), (2.0, 3.0)]
        """
        end = start + length
        starts, ends = self._s, self._e
        i = bisect_right(starts, start) - 1
        if i < 0 or ends[i] < end:
            raise ValueError(f"no booking [{start}, {end}) to release")
        self.busy -= length
        bs, be = starts[i], ends[i]
        pieces = []
        if start > bs:
            pieces.append((bs, start))
        if end < be:
            pieces.append((end, be))
        starts[i:i + 1] = [a for a, _ in pieces]
        ends[i:i + 1] = [b for _, b in pieces]

    def __len__(self) -> int:
        return len(self._s)


def _first_clash(extra: Sequence[tuple[float, float]], s: float, e: float,
                 last: bool = False) -> tuple[float, float] | None:
    """An interval of ``extra`` overlapping ``[s, e)``: the latest-ending one (or earliest-starting)."""
    hit = None
    for a, b in extra:
        if a < e and s < b:
            if hit is None or (b > hit[1] if not last else a < hit[0]):
                hit = (a, b)
    return hit



class Links:
    """One :class:`Calendar` per stream of a hardware, and hop-by-hop booking of tier paths.

    Parameters
    ----------
    hop : Mapping
        ``(src tier, dst tier) -> (stream index, latency, bandwidth)``.
    n_streams : int
        Number of streams.

    Examples
    --------
    >>> links = Links({(0, 1): (0, 0.0, 2.0), (1, 0): (1, 0.0, 2.0)}, 2)
    >>> starts, end = links.asap(4, (0, 1), 1.0)
    >>> starts, end
    ((1.0,), 3.0)
    >>> links.book(4, (0, 1), starts)
    >>> links.asap(4, (0, 1), 0.0)
    ((3.0,), 5.0)
    >>> links.alap(4, (1, 0), 10.0, 0.0)
    (8.0,)
    """

    __slots__ = ("hop", "cals")

    def __init__(self, hop: "dict[tuple[int, int], tuple[int, float, float]]", n_streams: int) -> None:
        self.hop = hop
        self.cals = [Calendar() for _ in range(n_streams)]

    def length(self, nbytes: int, src: int, dst: int) -> float:
        """Seconds one copy of ``nbytes`` takes on the link ``src -> dst``."""
        _, lat, bw = self.hop[(src, dst)]
        return lat + nbytes / bw

    def asap(self, nbytes: int, path: tuple[int, ...], t0: float,
             extra: Sequence[tuple[int, float, float]] = ()) -> tuple[tuple[float, ...], float]:
        """Earliest hop-by-hop booking of ``path`` from ``t0``: (start of each hop, end of the last).

        ``extra`` lists tentative ``(stream, start, end)`` bookings to avoid as well.
        """
        starts = []
        t = t0
        for k in range(len(path) - 1):
            st, lat, bw = self.hop[(path[k], path[k + 1])]
            length = lat + nbytes / bw
            ex = [(a, b) for s, a, b in extra if s == st]
            t = self.cals[st].earliest(t, length, ex)
            starts.append(t)
            t += length
        return tuple(starts), t

    def alap(self, nbytes: int, path: tuple[int, ...], deadline: float, lo: float,
             extra: Sequence[tuple[int, float, float]] = ()) -> tuple[float, ...] | None:
        """Latest hop-by-hop booking of ``path`` ending by ``deadline``, first hop starting ``>= lo``."""
        starts: list[float] = []
        t = deadline
        for k in range(len(path) - 2, -1, -1):
            st, lat, bw = self.hop[(path[k], path[k + 1])]
            length = lat + nbytes / bw
            ex = [(a, b) for s, a, b in extra if s == st]
            s0 = self.cals[st].latest(t, length, lo, ex)
            if s0 is None:
                return None
            starts.append(s0)
            t = s0
        return tuple(reversed(starts))

    def tentative(self, nbytes: int, path: tuple[int, ...], starts: tuple[float, ...]
                  ) -> list[tuple[int, float, float]]:
        """The ``(stream, start, end)`` triples a booking would take (to pass as ``extra``)."""
        out = []
        for k, s in enumerate(starts):
            st, lat, bw = self.hop[(path[k], path[k + 1])]
            out.append((st, s, s + lat + nbytes / bw))
        return out

    def book(self, nbytes: int, path: tuple[int, ...], starts: tuple[float, ...]) -> None:
        """Reserve each hop of ``path`` at its start."""
        for k, s in enumerate(starts):
            st, lat, bw = self.hop[(path[k], path[k + 1])]
            self.cals[st].reserve(s, lat + nbytes / bw)

    def unbook(self, nbytes: int, path: tuple[int, ...], starts: tuple[float, ...]) -> None:
        """Cancel a :meth:`book` with the same arguments."""
        for k, s in enumerate(starts):
            st, lat, bw = self.hop[(path[k], path[k + 1])]
            self.cals[st].release(s, lat + nbytes / bw)
