"""Reliability promises (docs/reliability.md): messages a user can act on, no test tied to speed."""

from __future__ import annotations

from solver.feasibility import initial_reason
from solver.model import Hardware, Op, Tensor, Tier, Trace


def test_the_infeasible_at_time_0_message_gives_units_and_says_what_would_help():
    gib = 2**30
    tr = Trace("t", (Tensor(id="w", bytes=18 * gib, persistent=True, kind="optimizer_state"),),
               (Op(id="a", duration=1.0, inputs=("w",)),))
    msg = initial_reason(tr, Hardware("h", "HBM", (Tier("HBM", 4 * gib), Tier("DDR", 64 * gib))))
    assert msg is not None
    assert "18.00 GiB" in msg and "4.00 GiB" in msg
    assert "--optimizer-tier DDR" in msg and "--budget" in msg and "initial_tier" in msg


def test_a_schedule_cannot_grant_itself_memory_but_the_command_line_can():
    """A schedule's ``capacity`` above the hardware's is ignored; an explicit override raises the tier."""
    from solver.model import Run, Schedule
    from solver.timing import validate

    tr = Trace("t", (Tensor(id="x", bytes=10),), (Op(id="a", duration=1.0, outputs=("x",)),))
    hw = Hardware("h", "HBM", (Tier("HBM", 5),))
    greedy = Schedule("t", "h", (Run(op="a"),), {"HBM": 10**15})
    assert [e.code.value for e in validate(tr, hw, greedy).errors] == ["capacity"]
    assert validate(tr, hw, greedy, {"HBM": 10}).valid
    lowered = Schedule("t", "h", (Run(op="a"),), {"HBM": 4})
    assert not validate(tr, Hardware("h", "HBM", (Tier("HBM", 100),)), lowered).valid
