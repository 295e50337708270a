"""Performance benchmarks (run as ``python -m solver.perf.<name>``); figures go to ``results/``."""
