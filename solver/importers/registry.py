"""The importer registry: format name -> importer function and its options.

The registry is an immutable tuple of :class:`ImporterSpec`; an importer's module is imported
only when it runs, so optional dependencies (torch, onnx) load lazily. The options listed here
drive both the Python API (keyword arguments) and the ``tierplan import`` command line.

Examples
--------
>>> importer_names()
('networkx', 'onnx', 'pytorch-et', 'torch')
>>> get_importer("onnx").summary.split(":")[0]
'ONNX model'
>>> get_importer("caffe")
Traceback (most recent call last):
...
solver.importers.registry.UnknownFormat: unknown import format 'caffe'; valid formats: networkx, onnx, pytorch-et, torch
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from solver.importers.result import ImportResult
from solver.importers.roofline import Roofline


class UnknownFormat(ValueError):
    """An import format name that is not registered (the message lists the valid names)."""


@dataclass(frozen=True)
class Option:
    """One importer option.

    Attributes
    ----------
    flag : str
        Command-line flag (``--kineto``).
    dest : str
        The importer's keyword argument.
    help : str
        One line of help.
    type : str
        ``str``, ``path``, ``int``, ``time`` (seconds or a unit string), ``bool`` (a switch)
        or ``shapes`` (``2x8x32,2x8``; repeatable).
    metavar : str or None
        Placeholder shown in help.
    """

    flag: str
    dest: str
    help: str
    type: str = "str"
    metavar: str | None = None


@dataclass(frozen=True)
class ImporterSpec:
    """A registered import format.

    Attributes
    ----------
    name : str
        Format name used on the command line.
    summary : str
        One line for ``tierplan import --help``.
    source_help : str
        What SOURCE is.
    module, function : str
        Where the importer lives (imported on first use).
    options : tuple of Option
        Format-specific options.
    roofline : bool
        Whether the importer takes a ``roofline`` (durations estimated by the roofline model).
    """

    name: str
    summary: str
    source_help: str
    module: str
    function: str
    options: tuple[Option, ...] = ()
    roofline: bool = False

    def load(self) -> Callable[..., ImportResult]:
        """The importer function (imports its module)."""
        return getattr(importlib.import_module(self.module), self.function)


IMPORTERS: tuple[ImporterSpec, ...] = (
    ImporterSpec(
        name="networkx",
        summary="networkx node-link JSON graph (Checkmate / Moccasin benchmarks): one op per node, "
                "one output tensor each, edges are data dependencies",
        source_help="node-link JSON graph (.json or .json.gz)",
        module="solver.importers.networkx_graph", function="import_networkx",
        options=(
            Option("--duration-attr", "duration_attr", "node attribute holding the op duration "
                   "(default: detected: cost_cpu, duration, ...)", metavar="NAME"),
            Option("--bytes-attr", "bytes_attr", "node attribute holding the output bytes "
                   "(default: detected: cost_ram, out_cost, ...)", metavar="NAME"),
            Option("--time-unit", "time_unit", "seconds per unit of the duration attribute, e.g. 1us, 1ms "
                   "(default 1us, reported as a guess)", type="time", metavar="TIME"),
            Option("--order-attr", "order_attr", "graph attribute holding the execution order "
                   "(default: order; a deterministic topological sort without it)", metavar="NAME"),
        ),
    ),
    ImporterSpec(
        name="onnx",
        summary="ONNX model: shape inference, initializers as persistent weights, roofline durations",
        source_help="ONNX model file (.onnx)",
        module="solver.importers.onnx_graph", function="import_onnx",
        options=(
            Option("--input-shape", "input_shapes", "shape for a graph input with symbolic dims, "
                   "NAME=2x128 (repeatable)", type="shapes", metavar="NAME=DIMS"),
            Option("--default-dim", "default_dim", "value for symbolic dimensions not fixed by --input-shape "
                   "(default 1)", type="int", metavar="N"),
        ),
        roofline=True,
    ),
    ImporterSpec(
        name="pytorch-et",
        summary="PyTorch Execution Trace (ExecutionTraceObserver / Chakra host JSON), with optional "
                "Kineto profile for durations",
        source_help="Execution Trace JSON (.json, .json.gz, or a tar/zip of per-rank files)",
        module="solver.importers.pytorch_et", function="import_pytorch_et",
        options=(
            Option("--kineto", "kineto", "the paired Kineto (torch.profiler) trace for op durations",
                   type="path", metavar="FILE"),
            Option("--rank", "rank", "in archives, the member for this rank (first integer of the name)",
                   type="int", metavar="N"),
            Option("--member", "member", "in an ET archive, the member to read", metavar="NAME"),
            Option("--kineto-member", "kineto_member", "in a Kineto archive, the member to read", metavar="NAME"),
            Option("--device", "device", "keep tensors on this device (default: the one with the most bytes)",
                   metavar="DEV"),
            Option("--profiler-step", "profiler_step", "keep only the ops of ProfilerStep#N", type="int",
                   metavar="N"),
            Option("--persistent-grads", "persistent_grads", "keep parameter gradients to the end of the step",
                   type="bool"),
            Option("--kernelless", "kernelless", "with a GPU Kineto trace, the duration of ops that launch no "
                   "GPU work: cpu (their CPU time, default) or zero", metavar="cpu|zero"),
        ),
        roofline=True,
    ),
    ImporterSpec(
        name="torch",
        summary="torch.export / FX: trace forward and backward of a Python callable (module:function "
                "or module:Class) with fake tensors, or load a saved torch.export program",
        source_help="module:function, module:Class, path/to/file.py:Name, or a .pt2 torch.export program",
        module="solver.importers.torch_export", function="import_torch",
        options=(
            Option("--input-shape", "input_shapes", "shape of one example input, in order: 8x128 "
                   "(repeatable; suffix :int64, :bf16... for a dtype)", type="shapes", metavar="DIMS"),
            Option("--forward-only", "forward_only", "trace the forward pass only", type="bool"),
        ),
        roofline=True,
    ),
)


def importer_names() -> tuple[str, ...]:
    """Names of the registered formats, sorted."""
    return tuple(sorted(spec.name for spec in IMPORTERS))


def get_importer(name: str) -> ImporterSpec:
    """The spec of format ``name``.

    Raises
    ------
    UnknownFormat
        For an unregistered name; the message lists the valid ones.
    """
    for spec in IMPORTERS:
        if spec.name == name:
            return spec
    raise UnknownFormat(f"unknown import format {name!r}; valid formats: {', '.join(importer_names())}")


def run_import(name: str, source: str | os.PathLike[str] | Any, **options: Any) -> ImportResult:
    """Run importer ``name`` on ``source`` with keyword ``options``.

    Parameters
    ----------
    name : str
        A format from :func:`importer_names`.
    source : path or object
        What the importer reads (a file path, a ``module:function`` string, or a decoded document).
    **options
        The importer's keyword arguments (see its function); ``roofline`` takes a
        :class:`~solver.importers.roofline.Roofline`.

    Examples
    --------
    >>> doc = {"directed": True, "nodes": [{"id": 0, "cost_cpu": 5, "cost_ram": 64}], "links": []}
    >>> run_import("networkx", doc, time_unit=1e-3).document["ops"][0]["duration"]
    0.005
    """
    spec = get_importer(name)
    if "roofline" in options and options["roofline"] is None:
        options.pop("roofline")
    if not spec.roofline and isinstance(options.get("roofline"), Roofline):
        raise TypeError(f"the {name} importer takes no roofline model")
    return spec.load()(source, **options)
