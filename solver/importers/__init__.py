"""Importers: traces from frameworks and benchmarks, as ``tierplan.trace/1`` documents.

Each format has one module with one pure function returning an
:class:`~solver.importers.result.ImportResult` (the document plus the warnings, which are
also in the document's ``meta["warnings"]``). :mod:`solver.importers.registry` maps format
names to them; :mod:`solver.importers.roofline` is the shared cost model for estimated
durations. Optional dependencies (``torch``, ``onnx``) are imported only by their importer.

Examples
--------
>>> from solver.importers import importer_names, run_import
>>> importer_names()
('networkx', 'onnx', 'pytorch-et', 'torch')
>>> doc = {"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 8}], "links": []}
>>> run_import("networkx", doc).document["format"]
'tierplan.trace/1'
"""

from solver.importers.registry import (
    IMPORTERS, ImporterSpec, Option, UnknownFormat, get_importer, importer_names, run_import,
)
from solver.importers.result import ImportResult
from solver.importers.roofline import Roofline

__all__ = [
    "IMPORTERS", "ImportResult", "ImporterSpec", "Option", "Roofline", "UnknownFormat", "get_importer",
    "importer_names", "run_import",
]
