"""Unit strings: sizes, times and bandwidths.

Wherever a number is expected in a file, a string with a unit is accepted:
``"64 GiB"``, ``"1.5GB"``, ``"25 GB/s"``, ``"10us"``, ``"2.5 ms"``. Binary prefixes
(KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (kB, MB, GB, TB) powers of 1000.

The representable ranges (docs/formats.md, "Representable ranges") are constants here: every
size, and a trace's total, is at most :data:`MAX_BYTES` (2**53, exact in a float and far from
the native validator's 64-bit integers); every duration and latency at most :data:`MAX_SECONDS`;
every bandwidth within [:data:`MIN_BANDWIDTH`, :data:`MAX_BANDWIDTH`], so that no transfer time or
makespan can overflow to infinity.
"""

from __future__ import annotations

import math
import re

_NUMBER = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"

SIZE_UNITS: dict[str, int] = {
    "": 1, "B": 1,
    "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50,
}
#: seconds per unit, as (multiplier, divisor) so that "10us" is exactly 10 / 1e6
TIME_UNITS: dict[str, tuple[float, float]] = {
    "": (1.0, 1.0), "s": (1.0, 1.0), "ms": (1.0, 1e3), "us": (1.0, 1e6), "µs": (1.0, 1e6),
    "ns": (1.0, 1e9), "min": (60.0, 1.0), "h": (3600.0, 1.0),
}

#: the largest size in bytes (of one tensor, a workspace, a capacity, and of a trace's total)
MAX_BYTES: int = 2**53
#: the longest duration or latency in seconds (about 31,700 years: abstract cost units, such as
#: the Checkmate/Moccasin graphs' op costs, reach 1e9)
MAX_SECONDS: float = 1e12
#: the slowest and fastest link bandwidths in bytes per second
MIN_BANDWIDTH: float = 1.0
MAX_BANDWIDTH: float = 1e18

_RE = re.compile(rf"^{_NUMBER}([A-Za-zµ/]*)\s*$")


class UnitError(ValueError):
    """A value that is not a number nor a string with a known unit."""


def _split(text: str) -> tuple[float, str]:
    m = _RE.match(text)
    if not m:
        raise UnitError(f"cannot read {text!r} as a number with a unit")
    return float(m.group(1)), m.group(2)


def _check_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnitError(f"expected a number or a string with a unit, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UnitError(f"expected a finite number, got {value!r}")
    return value


def parse_size(value: object) -> int:
    """Parse a size in bytes.

    Parameters
    ----------
    value : int, float or str
        A number of bytes, or a string such as ``"64 GiB"``.

    Returns
    -------
    int
        Bytes, rounded up to a whole byte.

    Examples
    --------
    >>> parse_size("1.5 KiB"), parse_size("2GB"), parse_size(7)
    (1536, 2000000000, 7)
    """
    if isinstance(value, str):
        num, unit = _split(value)
        if unit not in SIZE_UNITS:
            raise UnitError(f"unknown size unit {unit!r} in {value!r} (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)")
        value = num * SIZE_UNITS[unit]
    v = _check_number(value)
    if abs(v) > MAX_BYTES:
        raise UnitError(f"size {_short(v)} B is out of range (at most 2**53 B = 8 PiB)")
    return int(v) if float(v).is_integer() else math.ceil(v)


def parse_time(value: object) -> float:
    """Parse a duration in seconds.

    Examples
    --------
    >>> parse_time("10us"), parse_time("2.5 ms"), parse_time(0.5)
    (1e-05, 0.0025, 0.5)
    """
    if isinstance(value, str):
        num, unit = _split(value)
        if unit not in TIME_UNITS:
            raise UnitError(f"unknown time unit {unit!r} in {value!r} (use s, ms, us, ns)")
        mul, div = TIME_UNITS[unit]
        return _time_in_range(_check_number(num * mul / div))
    return _time_in_range(float(_check_number(value)))


def _time_in_range(t: float) -> float:
    if abs(t) > MAX_SECONDS:
        raise UnitError(f"time {_short(t)} s is out of range (at most 1e12 s)")
    return t


def parse_bandwidth(value: object) -> float:
    """Parse a bandwidth in bytes per second.

    Examples
    --------
    >>> parse_bandwidth("25 GB/s"), parse_bandwidth("1 GiB/s"), parse_bandwidth(100)
    (25000000000.0, 1073741824.0, 100.0)
    """
    if isinstance(value, str):
        num, unit = _split(value)
        base = unit[:-2] if unit.endswith("/s") else unit
        if base not in SIZE_UNITS:
            raise UnitError(f"unknown bandwidth unit {unit!r} in {value!r} (use B/s, MB/s, GB/s, GiB/s, ...)")
        value = num * SIZE_UNITS[base]
    bw = float(_check_number(value))
    if bw > MAX_BANDWIDTH:
        raise UnitError(f"bandwidth {_short(bw)} B/s is out of range (at most 1e18 B/s)")
    if 0 < bw < MIN_BANDWIDTH:
        raise UnitError(f"bandwidth {_short(bw)} B/s is out of range (at least 1 B/s)")
    return bw


def _short(v: float) -> str:
    """A number short enough for a message (a 400-digit integer prints as ``1e+399``)."""
    try:
        return f"{v:.4g}"
    except OverflowError:  # pragma: no cover - an int too large even for a float
        return f"~1e{len(str(abs(int(v)))) - 1}"


def format_bytes(n: float) -> str:
    """Human-readable bytes with a binary prefix.

    Examples
    --------
    >>> format_bytes(1536), format_bytes(3 * 2**30)
    ('1.50 KiB', '3.00 GiB')
    """
    try:
        n = float(n)
    except OverflowError:   # an integer past a double's range: say its order of magnitude
        return f"~1e{len(str(abs(int(n)))) - 1} B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} PiB"  # pragma: no cover


def format_time(t: float) -> str:
    """Human-readable seconds.

    Examples
    --------
    >>> format_time(0.0025), format_time(12.5)
    ('2.500 ms', '12.500 s')
    """
    if t == 0:
        return "0 s"
    if abs(t) < 1e-3:
        return f"{t * 1e6:.3f} us"
    if abs(t) < 1:
        return f"{t * 1e3:.3f} ms"
    return f"{t:.3f} s"
