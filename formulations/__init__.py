"""Exact planning: mathematical programs over tensor placement and transfer timing.

Modules (one concept each):

* :mod:`formulations.common`: the shared analysis (positions, critical positions, epochs,
  candidate intervals, routes) and the policies that define the solution space;
* :mod:`formulations.stages`: the stage discretisation, stage plans, their loads and memory, and
  their stream program;
* :mod:`formulations.decode`: planned steps to a stream program with the waits that make it valid
  under the timing model;
* :mod:`formulations.milp`: the time-indexed stage MILP (PuLP; HiGHS, CBC or any PuLP solver);
* :mod:`formulations.cpsat`: the continuous-time CP-SAT model (OR-tools);
* :mod:`formulations.relax`: the window LP relaxation, a lower bound for every schedule;
* :mod:`formulations.backends`: solving a PuLP model and reading the back end's own status;
* :mod:`formulations.warm`: warm starts (heuristic schedules, stage heuristic, CP-SAT hints);
* :mod:`formulations.planners`: the registered methods ``milp``, ``milp-cbc``, ``cpsat``, ``auto``;
* :mod:`formulations.brute`: brute-force enumeration on tiny instances (a referee for tests).

Solver back ends (PuLP, highspy, OR-tools) are imported only when a model is solved. See
``docs/formulations.md``.

Examples
--------
>>> import formulations
>>> sorted(formulations.PLANNERS)
['auto', 'cpsat', 'milp', 'milp-cbc']
>>> formulations.planner("milp").__name__
'plan_milp'
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import Any

#: Registered method name -> planner function in :mod:`formulations.planners`.
PLANNERS = MappingProxyType({"milp": "plan_milp", "milp-cbc": "plan_milp_cbc", "cpsat": "plan_cpsat",
                             "auto": "plan_auto"})


def planner(name: str) -> Any:
    """The planner function of an exact method (``KeyError`` for an unknown name).

    Examples
    --------
    >>> planner("cpsat").__name__
    'plan_cpsat'
    """
    return getattr(importlib.import_module("formulations.planners"), PLANNERS[name])


__all__ = ["PLANNERS", "planner"]
