"""The registry of workload kinds and :func:`generate`, the one entry point behind ``tierplan generate``.

Examples
--------
>>> doc = generate("chain", {"layers": 3, "skip": 0}, seed=1)
>>> doc["format"], len(doc["ops"])
('tierplan.trace/1', 7)
>>> sorted(KINDS)
['chain', 'decode', 'moe', 'random', 'train']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from solver.errors import InputError
from solver.fileio import read_document
from solver.workloads.builder import Workload, to_trace
from solver.workloads.decode import DecodeOptions, build_decode
from solver.workloads.moe import MoeOptions, build_moe
from solver.workloads.options import Where, opt, parse_options
from solver.workloads.presets import resolve_hardware
from solver.workloads.roofline import ComputeSpec, compute_spec_from_hardware
from solver.workloads.synthetic import ChainOptions, RandomOptions, build_chain, build_random
from solver.workloads.train import TrainOptions, build_train

#: Bumped whenever a generator's output for the same inputs changes (invalidates caches).
GENERATOR_VERSION = 1

#: Hardware whose compute figures time the ops when none is given.
DEFAULT_HARDWARE = "ascend-910b"


@dataclass(frozen=True, slots=True)
class Kind:
    """One workload kind.

    Parameters
    ----------
    name : str
        The ``KIND`` of ``tierplan generate KIND``.
    summary : str
        One line for ``--help``.
    options : type
        Its options dataclass.
    build : callable
        ``build(options, seed, where) -> Workload``.
    roofline : bool
        Whether op durations come from the roofline model (needs hardware figures).
    """

    name: str
    summary: str
    options: type
    build: Callable[[Any, int, Where], Workload]
    roofline: bool


KINDS: Mapping[str, Kind] = MappingProxyType({
    "train": Kind("train", "one training step of a Llama-style decoder (forward, backward, Adam)",
                  TrainOptions, lambda o, s, w: build_train(o, w), True),
    "decode": Kind("decode", "prefill plus decode steps with a paged KV cache",
                   DecodeOptions, lambda o, s, w: build_decode(o, w), True),
    "moe": Kind("moe", "mixture-of-experts inference with seeded skewed routing, experts off-device",
                MoeOptions, build_moe, True),
    "chain": Kind("chain", "a chain with skip connections and its backward pass (synthetic)",
                  ChainOptions, build_chain, False),
    "random": Kind("random", "a random DAG of a given size and memory pressure (synthetic)",
                   RandomOptions, build_random, False),
})


@dataclass(frozen=True)
class CommonOptions:
    """Options every kind accepts.

    Examples
    --------
    >>> CommonOptions().compute_efficiency is None
    True
    """

    name: str | None = opt(None, "trace name (default: derived from the options)")
    compute_efficiency: float | None = opt(None, "fraction of peak FLOP/s reached (default: the "
                                           "hardware file's)", check="fraction")
    memory_efficiency: float | None = opt(None, "fraction of HBM bandwidth reached (default: the "
                                          "hardware file's)", check="fraction")


def kind(name: str, where: Where = Where()) -> Kind:
    """The registered kind ``name``.

    Raises
    ------
    InputError
        For an unknown kind; the message lists the valid ones.

    Examples
    --------
    >>> kind("train").options.__name__
    'TrainOptions'
    """
    try:
        return KINDS[name]
    except KeyError:
        raise where.error("kind", f"unknown workload kind {name!r}; valid kinds: {', '.join(KINDS)}") from None


def parse_kind_options(name: str, options: Mapping[str, Any] | None, where: Where = Where(),
                       check_model: bool = False) -> tuple[Any, CommonOptions]:
    """Check ``options`` for kind ``name``: (kind options, common options).

    With ``check_model``, the model sizes are resolved too (unknown preset, heads
    not dividing hidden...), as building would.

    Raises
    ------
    InputError
        Unknown kind or option names, bad values (all problems at once).

    Examples
    --------
    >>> opts, common = parse_kind_options("chain", {"layers": 3, "name": "c"})
    >>> opts.layers, common.name
    (3, 'c')
    """
    k = kind(name, where)
    values = dict(options or {})
    common_names = set(CommonOptions.__dataclass_fields__)
    common_vals = {key: values.pop(key) for key in list(values) if key in common_names}
    problems = []
    parsed = None
    common = CommonOptions()
    try:
        parsed = parse_options(k.options, values, where)
    except InputError as exc:
        problems += exc.problems
    try:
        common = parse_options(CommonOptions, common_vals, where)
    except InputError as exc:
        problems += exc.problems
    if parsed is not None and check_model and hasattr(parsed, "resolve"):
        try:
            parsed.resolve(where)
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)
    return parsed, common


def build(name: str, options: Mapping[str, Any] | None = None, *, seed: int = 0,
          where: Where = Where()) -> Workload:
    """Build the (untimed) workload of kind ``name``: tensors, ops with FLOPs and bytes.

    Examples
    --------
    >>> build("train", {"model": "llama-tiny", "seq_len": 32}).kind
    'train'
    """
    opts, _ = parse_kind_options(name, options, where)
    return KINDS[name].build(opts, seed, where)


def _hardware_document(hardware: str | os.PathLike[str] | Mapping[str, Any] | None, where: str
                       ) -> tuple[Mapping[str, Any], str]:
    """(document, label) of a preset name, hardware file or hardware document."""
    if isinstance(hardware, Mapping):
        return hardware, str(hardware.get("name", "<hardware>"))
    path = resolve_hardware(DEFAULT_HARDWARE if hardware is None else hardware, where)
    doc = read_document(path)
    from solver.formats import hardware_from_document
    hardware_from_document(doc, str(path))    # every rule checked: problems name the file (not a crash later)
    return doc, str(path)


def compute_spec(hardware: str | os.PathLike[str] | Mapping[str, Any] | None, where: str = "hardware"
                 ) -> ComputeSpec:
    """Compute figures from a preset name, a hardware file, or a hardware document.

    Examples
    --------
    >>> compute_spec("h100-pcie").hbm_bandwidth
    2000000000000.0
    """
    doc, label = _hardware_document(hardware, where)
    return compute_spec_from_hardware(doc, label)


def check_tiers(options: Any, hardware: Mapping[str, Any], where: Where = Where()) -> None:
    """Check that the ``*_tier`` options name tiers of ``hardware`` and ``compute_tier`` is its compute tier.

    Raises
    ------
    InputError
        One problem per tier option that does not fit the hardware.

    Examples
    --------
    >>> from solver.workloads.train import TrainOptions
    >>> hw = {"name": "h", "compute_tier": "HBM", "tiers": [{"name": "HBM"}]}
    >>> check_tiers(TrainOptions(weights_tier="DDR"), hw)
    Traceback (most recent call last):
    ...
    solver.errors.InputError: options: weights_tier: hardware h has no tier 'DDR' (tiers: HBM)
    """
    raw = hardware.get("tiers")
    names = [t.get("name") for t in raw if isinstance(t, Mapping)] if isinstance(raw, list) else []
    label = hardware.get("name", "<hardware>")
    problems = []
    for f in fields(options):
        if not f.name.endswith("_tier"):
            continue
        if f.name == "kv_tier" and getattr(options, "prefill", False):
            continue        # only pre-existing KV blocks (no prefill) are placed there
        value = getattr(options, f.name)
        if f.name == "compute_tier":
            if value != hardware.get("compute_tier"):
                problems.append(where.problem(f.name, f"hardware {label} computes in "
                                              f"{hardware.get('compute_tier')!r}, not {value!r}"))
        elif names and value not in names:
            problems.append(where.problem(f.name, f"hardware {label} has no tier {value!r} "
                                          f"(tiers: {', '.join(map(str, names))})"))
    if problems:
        raise InputError(problems)


def _check_range(doc: Mapping[str, Any], opts: Any, where: Where) -> None:
    """Refuse options whose trace the loaders would refuse (a duration or size out of the range of
    docs/formats.md): exit 2 naming the option, not exit 0 with an unreadable file."""
    from solver.formats import first_out_of_range

    bad = first_out_of_range(doc)
    if bad is None:
        return
    names = [f.name for f in fields(opts)]
    suffix = "_time" if ".duration" in bad[0] else "_bytes"
    opt = next((n for n in names if n.endswith(suffix)), "compute_efficiency" if suffix == "_time" else "model")
    raise InputError([where.problem(opt, f"gives {bad[0]} out of range ({bad[1]}); use a smaller value")])


def generate(name: str, options: Mapping[str, Any] | None = None, *, seed: int = 0,
             hardware: str | os.PathLike[str] | Mapping[str, Any] | None = None,
             where: Where = Where()) -> dict[str, Any]:
    """Generate a ``tierplan.trace/1`` document.

    Parameters
    ----------
    name : str
        Workload kind: ``train``, ``decode``, ``moe``, ``chain`` or ``random``.
    options : mapping, optional
        The kind's options (see its options dataclass) plus ``name``,
        ``compute_efficiency`` and ``memory_efficiency``.
    seed : int
        Seed of every random choice (routing, synthetic sizes); same seed, same document.
    hardware : str, path or mapping, optional
        Preset name, hardware file or document whose ``compute`` figures time the ops
        (default :data:`DEFAULT_HARDWARE`); the ``*_tier`` options must name its tiers.
        The synthetic kinds read it only when given, to check tier names.
    where : Where
        Names the options in error messages.

    Returns
    -------
    dict
        The trace document (plain data; write it with :func:`solver.fileio.write_json_atomic`).

    Raises
    ------
    InputError
        Unknown kind, preset or option; bad values.

    Examples
    --------
    >>> doc = generate("decode", {"model": "llama-tiny", "context": 32, "new_tokens": 1, "block_size": 16},
    ...                hardware="laptop-sized")
    >>> doc["meta"]["roofline"]["hardware"]
    'laptop-sized'
    """
    opts, common = parse_kind_options(name, options, where)
    k = KINDS[name]
    spec = None
    if k.roofline or hardware is not None:
        hw_doc, label = _hardware_document(hardware, "--hardware" if where.cli else "hardware")
        check_tiers(opts, hw_doc, where)
        if k.roofline:
            spec = compute_spec_from_hardware(hw_doc, label).with_efficiency(
                common.compute_efficiency, common.memory_efficiency)
    wl = k.build(opts, seed, where)
    doc = to_trace(wl, spec, {"kind": name, "seed": seed, "generator_version": GENERATOR_VERSION})
    _check_range(doc, opts, where)
    if common.name:
        doc["name"] = common.name
    return doc
