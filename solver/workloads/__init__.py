"""Workload generators: realistic LLM traces and small synthetic graphs, in ``tierplan.trace/1``.

Each kind (``train``, ``decode``, ``moe``, ``chain``, ``random``) is a pure
function of its options and a seed; :func:`generate` returns the trace document,
with op durations from the roofline model of :mod:`solver.workloads.roofline`
and the figures of a hardware preset (:mod:`solver.workloads.presets`).
See ``docs/workloads.md``.

Examples
--------
>>> doc = generate("train", {"model": "llama-tiny", "seq_len": 64}, hardware="laptop-sized")
>>> doc["name"]
'train-llama-tiny-b1-s64'
"""

from solver.workloads.kinds import (
    DEFAULT_HARDWARE, GENERATOR_VERSION, KINDS, CommonOptions, Kind, build, compute_spec, generate,
    parse_kind_options,
)
from solver.workloads.presets import hardware_preset_path, list_hardware_presets, resolve_hardware

__all__ = [
    "DEFAULT_HARDWARE", "GENERATOR_VERSION", "KINDS", "CommonOptions", "Kind", "build", "compute_spec",
    "generate", "parse_kind_options", "hardware_preset_path", "list_hardware_presets", "resolve_hardware",
]
