"""Heuristic planners and baselines (each module one method; see :mod:`solver.methods`)."""
