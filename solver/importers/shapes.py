"""Shape strings given on the command line: ``2x128``, ``x=2x128``, ``8x128:int64``.

Examples
--------
>>> parse_dims("2x128"), parse_dims("[2, 128]"), parse_dims("")
((2, 128), (2, 128), ())
>>> parse_named_shape("input_ids=2x16")
('input_ids', (2, 16))
>>> parse_shape_spec("8x128:int64")
((8, 128), 'int64')
"""

from __future__ import annotations

import re

_SEP = re.compile(r"[x,×\s]+")


def parse_dims(text: str) -> tuple[int, ...]:
    """Dimensions from ``2x128`` (also ``2,128`` or ``[2, 128]``; empty for a scalar).

    Raises
    ------
    ValueError
        For anything but non-negative integers.
    """
    body = text.strip().strip("[]()").strip()
    if not body:
        return ()
    dims = []
    for part in _SEP.split(body):
        if not part:
            continue
        if not part.isdigit():
            raise ValueError(f"cannot read shape {text!r}: {part!r} is not a non-negative integer")
        dims.append(int(part))
    return tuple(dims)


def parse_named_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=DIMS`` -> (name, dims).

    Raises
    ------
    ValueError
        Without ``=`` or with bad dimensions.
    """
    name, sep, dims = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected NAME=DIMS (e.g. input=2x128), got {text!r}")
    return name.strip(), parse_dims(dims)


def parse_shape_spec(text: str) -> tuple[tuple[int, ...], str | None]:
    """``DIMS[:DTYPE]`` -> (dims, dtype name or None).

    Raises
    ------
    ValueError
        With bad dimensions.
    """
    dims, sep, dtype = text.partition(":")
    return parse_dims(dims), (dtype.strip() or None) if sep else None
