"""The roofline op time model used by the workload generators.

An op that performs ``flops`` floating-point operations and moves ``mem_bytes``
bytes through the compute tier's memory takes::

    time = max(flops / (peak_flops[dtype] * compute_efficiency),
               mem_bytes / (hbm_bandwidth * memory_efficiency))

The figures come from the ``compute`` table of a ``tierplan.hardware/1`` file::

    [compute]
    peak_flops = { bf16 = "376 TFLOP/s", fp16 = "376 TFLOP/s", fp32 = "94 TFLOP/s" }
    hbm_bandwidth = "1.6 TB/s"
    compute_efficiency = 0.6     # fraction of peak FLOP/s a large matmul reaches
    memory_efficiency = 0.8      # fraction of peak bandwidth a streaming kernel reaches

Examples
--------
>>> spec = ComputeSpec((("bf16", 100e12),), hbm_bandwidth=1e12, compute_efficiency=0.5,
...                    memory_efficiency=1.0)
>>> spec.op_time(flops=1e12, mem_bytes=1e9, dtype="bf16")   # compute-bound: 1e12 / 5e13
0.02
>>> spec.op_time(flops=1e9, mem_bytes=1e10, dtype="bf16")   # memory-bound: 1e10 / 1e12
0.01
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from solver.errors import InputError, Problems
from solver.units import UnitError, parse_bandwidth

#: Used when neither the hardware file nor the options give an efficiency.
DEFAULT_COMPUTE_EFFICIENCY = 0.6
DEFAULT_MEMORY_EFFICIENCY = 0.8

_FLOPS_RE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([kMGTPE]?)(?:FLOP/s|FLOPS|flop/s)\s*$")
_FLOPS_PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def parse_flops(value: object) -> float:
    """Parse a FLOP rate: a number, or a string such as ``"752 TFLOP/s"``.

    Examples
    --------
    >>> parse_flops("752 TFLOP/s"), parse_flops(1e12)
    (752000000000000.0, 1000000000000.0)
    """
    if isinstance(value, str):
        m = _FLOPS_RE.match(value)
        if not m:
            raise UnitError(f"cannot read {value!r} as a FLOP rate (e.g. \"752 TFLOP/s\")")
        return float(m.group(1)) * _FLOPS_PREFIX[m.group(2)]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UnitError(f"expected a number or a string such as \"752 TFLOP/s\", got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class ComputeSpec:
    """Compute figures of one accelerator, for the roofline model.

    Parameters
    ----------
    peak_flops : tuple of (dtype, FLOP/s) pairs
        Dense peak rate per data type.
    hbm_bandwidth : float
        Compute-tier memory bandwidth, bytes per second.
    compute_efficiency, memory_efficiency : float
        Fractions (0, 1] of the peaks that kernels reach.
    source : str
        Where the figures came from (the hardware name).

    Examples
    --------
    >>> ComputeSpec((("bf16", 1e12),), 1e11).peak("bf16")
    1000000000000.0
    """

    peak_flops: tuple[tuple[str, float], ...]
    hbm_bandwidth: float
    compute_efficiency: float = DEFAULT_COMPUTE_EFFICIENCY
    memory_efficiency: float = DEFAULT_MEMORY_EFFICIENCY
    source: str = ""

    def peak(self, dtype: str) -> float:
        """Peak FLOP/s for ``dtype``.

        Raises
        ------
        InputError
            When the hardware gives no figure for ``dtype``.
        """
        for name, rate in self.peak_flops:
            if name == dtype:
                return rate
        have = ", ".join(n for n, _ in self.peak_flops)
        raise InputError.single(self.source or "<hardware>", "compute.peak_flops",
                                f"no peak FLOP rate for dtype {dtype!r} (have: {have})")

    def op_time(self, flops: float, mem_bytes: float, dtype: str) -> float:
        """Roofline time of one op, seconds."""
        return max(flops / (self.peak(dtype) * self.compute_efficiency),
                   mem_bytes / (self.hbm_bandwidth * self.memory_efficiency))

    def with_efficiency(self, compute: float | None = None, memory: float | None = None) -> "ComputeSpec":
        """A copy with the efficiencies replaced where given.

        Examples
        --------
        >>> ComputeSpec((("bf16", 1.0),), 1.0).with_efficiency(compute=0.9).compute_efficiency
        0.9
        """
        return ComputeSpec(self.peak_flops, self.hbm_bandwidth,
                           self.compute_efficiency if compute is None else compute,
                           self.memory_efficiency if memory is None else memory, self.source)

    def describe(self) -> dict[str, Any]:
        """The figures as a JSON-friendly dict (recorded in a trace's ``meta``)."""
        return {"hardware": self.source, "peak_flops": dict(self.peak_flops),
                "hbm_bandwidth": self.hbm_bandwidth, "compute_efficiency": self.compute_efficiency,
                "memory_efficiency": self.memory_efficiency,
                "formula": "max(flops / (peak_flops[dtype] * compute_efficiency), "
                           "bytes / (hbm_bandwidth * memory_efficiency))"}


def compute_spec_from_hardware(doc: Mapping[str, Any], file: str = "<hardware>") -> ComputeSpec:
    """Read the ``compute`` table of a hardware document.

    Raises
    ------
    InputError
        When the table is missing or a figure is malformed (message names ``compute.<field>``).

    Examples
    --------
    >>> compute_spec_from_hardware({"name": "x", "compute": {"peak_flops": {"bf16": "1 TFLOP/s"},
    ...                             "hbm_bandwidth": "1 TB/s"}}).hbm_bandwidth
    1000000000000.0
    """
    problems = Problems(file)
    comp = doc.get("compute") if isinstance(doc, Mapping) else None
    if not isinstance(comp, Mapping) or not comp:
        problems.add("compute", "missing: the generators need peak_flops and hbm_bandwidth to time ops")
        problems.raise_if_any()
    assert isinstance(comp, Mapping)
    peaks: list[tuple[str, float]] = []
    raw = comp.get("peak_flops")
    if not isinstance(raw, Mapping) or not raw:
        problems.add("compute.peak_flops", "expected a table of dtype = FLOP rate, e.g. { bf16 = \"752 TFLOP/s\" }")
    else:
        for dtype, v in raw.items():
            try:
                rate = parse_flops(v)
            except UnitError as exc:
                problems.add(f"compute.peak_flops.{dtype}", str(exc))
                continue
            if rate <= 0:
                problems.add(f"compute.peak_flops.{dtype}", f"must be > 0, got {rate}")
            peaks.append((str(dtype), rate))
    bw = 0.0
    if "hbm_bandwidth" not in comp:
        problems.add("compute.hbm_bandwidth", "missing")
    else:
        try:
            bw = parse_bandwidth(comp["hbm_bandwidth"])
            if bw <= 0:
                problems.add("compute.hbm_bandwidth", f"must be > 0, got {bw}")
        except UnitError as exc:
            problems.add("compute.hbm_bandwidth", str(exc))
    effs = {}
    for key, default in (("compute_efficiency", DEFAULT_COMPUTE_EFFICIENCY),
                         ("memory_efficiency", DEFAULT_MEMORY_EFFICIENCY)):
        v = comp.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
            problems.add(f"compute.{key}", f"must be a number in (0, 1], got {v!r}")
            v = default
        effs[key] = float(v)
    problems.raise_if_any()
    name = doc.get("name") if isinstance(doc.get("name"), str) else file
    return ComputeSpec(tuple(sorted(peaks)), bw, effs["compute_efficiency"], effs["memory_efficiency"],
                       str(name))
