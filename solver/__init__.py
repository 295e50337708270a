"""tierplan: plan where every tensor of a deep-learning step lives, and when it moves.

The package is layered: :mod:`solver.model` (data model), :mod:`solver.formats`
(file formats), :mod:`solver.timing` (the validator) import nothing from the
planners; heuristics and :mod:`formulations` import the model; only the drivers
and :mod:`solver.cli` tie everything together.
"""

__version__ = "0.1.0"
