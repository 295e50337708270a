"""Seeded, skewed top-k expert routing for mixture-of-experts workloads.

Each layer has a fixed popularity over its experts, Zipf-like with exponent
``skew`` (0: uniform; 1: the r-th most popular expert is picked 1/r as often as
the first), the ranks shuffled per layer. Each token picks ``top_k`` distinct
experts by weighted sampling without replacement (Efraimidis-Spirakis keys
``log(u) / p``). Only uniform draws from one PCG64 stream are used, so the same
seed gives the same routing.

Examples
--------
>>> r = make_router(experts=8, top_k=2, layers=2, skew=1.2, seed=7)
>>> counts = r(0, 0, 16)
>>> len(counts), sum(counts)
(8, 32)
>>> make_router(8, 2, 2, 1.2, 7)(0, 0, 16) == counts
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def popularity(experts: int, skew: float, rng: np.random.Generator) -> np.ndarray:
    """Normalised Zipf-like popularity over ``experts``, ranks in a random order.

    Examples
    --------
    >>> p = popularity(4, 0.0, np.random.Generator(np.random.PCG64(0)))
    >>> p.tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    ranks = np.argsort(rng.random(experts), kind="stable")
    weights = 1.0 / (np.arange(1, experts + 1, dtype=np.float64) ** skew)
    p = np.empty(experts)
    p[ranks] = weights
    return p / p.sum()


def route_counts(p: np.ndarray, top_k: int, tokens: int, rng: np.random.Generator) -> list[int]:
    """Tokens per expert when ``tokens`` tokens each pick ``top_k`` distinct experts.

    Examples
    --------
    >>> rng = np.random.Generator(np.random.PCG64(1))
    >>> sum(route_counts(np.full(4, 0.25), 2, 10, rng))
    20
    """
    u = 1.0 - rng.random((tokens, p.size))          # in (0, 1]
    keys = np.log(u) / p
    top = np.argpartition(-keys, top_k - 1, axis=1)[:, :top_k]
    return np.bincount(top.ravel(), minlength=p.size).tolist()


def make_router(experts: int, top_k: int, layers: int, skew: float, seed: int
                ) -> Callable[[int, int, int], Sequence[int]]:
    """A router for :func:`solver.workloads.decode.build_inference`.

    The returned callable must be called in a fixed order (the generator's step and
    layer order); it draws from its own stream, created here from ``seed``.

    Examples
    --------
    >>> r = make_router(4, 1, 1, 0.0, 0)
    >>> sum(r(0, 0, 5))
    5
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    pops = [popularity(experts, skew, rng) for _ in range(layers)]

    def route(step: int, layer: int, tokens: int) -> Sequence[int]:
        return route_counts(pops[layer], top_k, tokens, rng)

    return route
