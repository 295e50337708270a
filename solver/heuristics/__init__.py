"""Heuristic planners and baselines (each method one module; see :mod:`solver.methods`).

Methods: :mod:`~solver.heuristics.greedy` (the selective planner), :mod:`~solver.heuristics.keep`,
:mod:`~solver.heuristics.vdnn`, :mod:`~solver.heuristics.belady`, :mod:`~solver.heuristics.zero_offload`.

Shared machinery: :mod:`~solver.heuristics.facts` (per-instance facts and estimated times),
:mod:`~solver.heuristics.calendar` (link calendars), :mod:`~solver.heuristics.trees` (range
trees), :mod:`~solver.heuristics.plan` (a plan's slot account and its emission as a schedule),
:mod:`~solver.heuristics.engine` (the planning state and moves the window-based planners share),
:mod:`~solver.heuristics.phases` (forward/backward structure of a trace).
"""
