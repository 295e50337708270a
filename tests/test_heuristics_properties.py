"""Property test: on random instances every heuristic returns a valid schedule or says why not."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heuristics_helpers import checked_solve, random_budget, random_hardware, random_trace
from solver.methods import REGISTRY

HEURISTICS = [name for name, m in REGISTRY.items() if not m.exact]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_every_heuristic_valid_or_infeasible(seed):
    rng = random.Random(seed)
    trace = random_trace(rng)
    hardware = random_hardware(rng, trace)
    budget = random_budget(rng)
    for m in HEURISTICS:
        checked_solve(trace, hardware, budget, m)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n_ops=st.integers(20, 60))
def test_greedy_on_longer_random_traces(seed, n_ops):
    rng = random.Random(seed)
    trace = random_trace(rng, n_ops)
    hardware = random_hardware(rng, trace)
    checked_solve(trace, hardware, random_budget(rng), "greedy")
