"""Typed errors for unreadable input.

Every problem found while reading a file is an :class:`InputProblem` naming the
file and the JSON path; loaders collect all problems and raise one
:class:`InputError` carrying them, which the CLI prints one per line (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputProblem:
    """One problem in an input file.

    Parameters
    ----------
    file : str
        The file (or a label such as ``"<trace>"`` for in-memory input).
    path : str
        JSON path of the offending value, e.g. ``ops[17].inputs[2]``; empty for the whole file.
    message : str
        What is wrong, in one sentence.

    Examples
    --------
    >>> str(InputProblem("t.json", "ops[0].duration", "must be >= 0, got -1"))
    't.json: ops[0].duration: must be >= 0, got -1'
    """

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}: {where}{self.message}"


class InputError(Exception):
    """Input that cannot be read: one or more :class:`InputProblem`.

    Examples
    --------
    >>> err = InputError([InputProblem("hw.json", "tiers", "must not be empty")])
    >>> print(err)
    hw.json: tiers: must not be empty
    """

    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, path: str, message: str) -> "InputError":
        """Build an error holding one problem."""
        return cls([InputProblem(file, path, message)])


class Problems:
    """A collector of :class:`InputProblem` for one file (not shared; one per load).

    Examples
    --------
    >>> p = Problems("t.json")
    >>> p.add("ops[0]", "bad")
    >>> p.raise_if_any()
    Traceback (most recent call last):
    ...
    solver.errors.InputError: t.json: ops[0]: bad
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[InputProblem] = []

    def add(self, path: str, message: str) -> None:
        """Record one problem at ``path``."""
        self.items.append(InputProblem(self.file, path, message))

    def raise_if_any(self) -> None:
        """Raise :class:`InputError` if any problem was recorded."""
        if self.items:
            raise InputError(self.items)
