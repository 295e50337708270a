"""Forward / backward / optimizer structure of a trace, read from its tensor kinds and op names.

The workload generators mark gradients with tensor kind ``gradient`` and optimizer
states with ``optimizer_state``; backward ops carry ``bwd``, ``.dx`` or ``.dw`` in their
kind or id. An op is *backward* when it writes or reads a gradient (or carries such a
marker), *optimizer* when it updates a weight or an optimizer state, else *forward*.
Layers are read from op ids with a layer component (``mb0.L3.qkv`` is in layer
``mb0.L3``); ops without one are each their own layer.

Examples
--------
>>> from solver.model import Trace, Tensor, Op
>>> tr = Trace("t", (Tensor(id="a", bytes=1, kind="activation"), Tensor(id="g", bytes=1, kind="gradient")),
...            (Op(id="f1", duration=1.0, outputs=("a",)), Op(id="b1", duration=1.0, inputs=("a",), outputs=("g",))))
>>> op_phases(tr)
('F', 'B')
>>> layer_key("mb0.L12.gate_up.dx"), layer_key("b3")
('mb0.L12', 'b3')
"""

from __future__ import annotations

import re

from solver.model import Trace

_BWD_MARK = re.compile(r"(bwd|backward|grad)|(^|[._/])(dx|dw|dgrad|wgrad)($|[._/])", re.IGNORECASE)
_LAYER = re.compile(r"^(.*?(?:^|[._/])(?:L|layer|layers|block|blk|h)[._]?\d+)(?=$|[._/])", re.IGNORECASE)


def op_phases(trace: Trace) -> tuple[str, ...]:
    """Per op: ``"F"`` forward, ``"B"`` backward, ``"O"`` optimizer.

    Examples
    --------
    >>> from solver.model import Trace, Tensor, Op
    >>> tr = Trace("t", (Tensor(id="w", bytes=1, kind="weight"),), (Op(id="sgd", duration=1.0, updates=("w",)),))
    >>> op_phases(tr)
    ('O',)
    """
    kinds = [t.kind for t in trace.tensors]
    out = []
    for i, op in enumerate(trace.ops):
        if any(kinds[t] in ("optimizer_state", "weight") for t in trace.op_updates[i]):
            out.append("O")
        elif (any(kinds[t] == "gradient" for t in trace.op_writes[i])
              or any(kinds[t] == "gradient" for t in trace.op_reads[i])
              or _BWD_MARK.search(op.kind or "") or _BWD_MARK.search(op.id)):
            out.append("B")
        else:
            out.append("F")
    return tuple(out)


def has_structure(phases: tuple[str, ...]) -> bool:
    """Whether the trace has both forward and backward ops.

    Examples
    --------
    >>> has_structure(("F", "F", "O")), has_structure(("F", "B"))
    (False, True)
    """
    return "F" in phases and "B" in phases


def layer_key(op_id: str) -> str:
    """The layer an op belongs to, from its id (the op id itself when it names no layer).

    Examples
    --------
    >>> layer_key("L3.attn"), layer_key("block_2.mlp"), layer_key("relu")
    ('L3', 'block_2', 'relu')
    """
    m = _LAYER.match(op_id)
    return m.group(1) if m else op_id
