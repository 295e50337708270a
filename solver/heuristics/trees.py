"""Array trees for planners: range-add / point-query (Fenwick) and range-add / range-max.

Planners keep a per-slot memory profile that many windows (contiguous runs of
slots) adjust; these two structures make each adjustment and query
``O(log n)``. They are plain local objects owned by one planner call.

Examples
--------
>>> f = RangeAdd(5)
>>> f.add(1, 3, -4)
>>> [f.value(i) for i in range(5)]
[0, -4, -4, -4, 0]
>>> m = RangeMax([1, 5, 2, 0])
>>> m.add(0, 1, 10)
>>> m.max(0, 3), m.max(2, 3)
(15, 2)
"""

from __future__ import annotations

from collections.abc import Sequence


class RangeAdd:
    """Fenwick tree over ``n`` slots: add a value to a slot range, read one slot.

    Examples
    --------
    >>> f = RangeAdd(3)
    >>> f.add(0, 2, 7)
    >>> f.value(2)
    7
    """

    __slots__ = ("n", "_t")

    def __init__(self, n: int) -> None:
        self.n = n
        self._t = [0] * (n + 2)

    def _add(self, i: int, v: int) -> None:
        t = self._t
        i += 1
        n = self.n + 1
        while i <= n:
            t[i] += v
            i += i & -i

    def add(self, lo: int, hi: int, v: int) -> None:
        """Add ``v`` to slots ``lo..hi`` (inclusive; clipped to the array)."""
        lo = max(lo, 0)
        hi = min(hi, self.n - 1)
        if lo > hi:
            return
        self._add(lo, v)
        self._add(hi + 1, -v)

    def value(self, i: int) -> int:
        """The sum of everything added over slot ``i``."""
        t = self._t
        i += 1
        s = 0
        while i > 0:
            s += t[i]
            i -= i & -i
        return s


class RangeMax:
    """Segment tree with lazy range add and range max (iterative, non-recursive).

    Parameters
    ----------
    values : Sequence[int]
        Initial values per slot.

    Examples
    --------
    >>> m = RangeMax([0, 0, 0])
    >>> m.add(1, 2, 3); m.max(0, 0), m.max(0, 2)
    (0, 3)
    """

    __slots__ = ("n", "h", "_t", "_d")

    def __init__(self, values: Sequence[int]) -> None:
        n = max(1, len(values))
        self.n = n
        self.h = n.bit_length()
        t = [0] * (2 * n)
        t[n:n + len(values)] = list(values)
        for i in range(n - 1, 0, -1):
            t[i] = max(t[2 * i], t[2 * i + 1])
        self._t = t
        self._d = [0] * n

    def _apply(self, p: int, v: int) -> None:
        self._t[p] += v
        if p < self.n:
            self._d[p] += v

    def _build(self, p: int) -> None:
        t, d = self._t, self._d
        while p > 1:
            p >>= 1
            t[p] = max(t[2 * p], t[2 * p + 1]) + d[p]

    def _push(self, p: int) -> None:
        d = self._d
        for s in range(self.h, 0, -1):
            i = p >> s
            if d[i]:
                self._apply(2 * i, d[i])
                self._apply(2 * i + 1, d[i])
                d[i] = 0

    def add(self, lo: int, hi: int, v: int) -> None:
        """Add ``v`` to slots ``lo..hi`` (inclusive; clipped to the array)."""
        lo = max(lo, 0)
        hi = min(hi, self.n - 1)
        if lo > hi or v == 0:
            return
        l0 = l = lo + self.n
        r0 = r = hi + 1 + self.n
        while l < r:
            if l & 1:
                self._apply(l, v)
                l += 1
            if r & 1:
                r -= 1
                self._apply(r, v)
            l >>= 1
            r >>= 1
        self._build(l0)
        self._build(r0 - 1)

    def top(self) -> int:
        """Largest value over all slots."""
        return self._t[1] if self.n > 1 else self._t[self.n]

    def max(self, lo: int, hi: int) -> int:
        """Largest value over slots ``lo..hi`` (inclusive; clipped); a very negative number when empty."""
        lo = max(lo, 0)
        hi = min(hi, self.n - 1)
        if lo > hi:
            return -(1 << 62)
        l = lo + self.n
        r = hi + 1 + self.n
        self._push(l)
        self._push(r - 1)
        t = self._t
        res = -(1 << 62)
        while l < r:
            if l & 1:
                if t[l] > res:
                    res = t[l]
                l += 1
            if r & 1:
                r -= 1
                if t[r] > res:
                    res = t[r]
            l >>= 1
            r >>= 1
        return res
