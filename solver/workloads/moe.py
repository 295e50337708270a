"""Mixture-of-experts inference (Mixtral / DeepSeek style) with off-device expert weights.

The same prefill-and-decode structure as :mod:`solver.workloads.decode`, with
each layer's FFN replaced by a router, one op per expert that received tokens
this step (top-k routing drawn by :mod:`solver.workloads.routing`, skewed so some
experts are hot and others cold) and an optional always-active shared expert.
Expert weights start in ``experts_tier`` (DDR by default), so a planner decides
which experts to bring on-device and when.

Examples
--------
>>> wl = build_moe(MoeOptions(model="moe-tiny", context=32, new_tokens=2, block_size=16), seed=3)
>>> sum(1 for op in wl.ops if op.kind == "expert_mlp") <= 2 * 3 * 8
True
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.workloads.builder import Workload
from solver.workloads.decode import DecodeOptions, build_inference
from solver.workloads.options import Where, opt
from solver.workloads.routing import make_router


@dataclass(frozen=True)
class MoeOptions(DecodeOptions):
    """Options of the ``moe`` generator.

    Examples
    --------
    >>> MoeOptions(model="mixtral-8x7b").experts_tier
    'DDR'
    """

    batch: int = opt(8, "requests decoded together", check="positive")
    context: int = opt(512, "prompt tokens per request", check="positive")
    experts: int | None = opt(None, "routed experts per layer E (overrides the preset)")
    top_k: int | None = opt(None, "experts per token k")
    expert_ffn: int | None = opt(None, "FFN size of each expert")
    shared_ffn: int | None = opt(None, "FFN size of the always-active shared expert (0: none)")
    skew: float = opt(1.0, "Zipf exponent of expert popularity (0: uniform routing)", check="nonneg")
    experts_tier: str = opt("DDR", "tier where expert weights start")


def build_moe(opts: MoeOptions, seed: int = 0, where: Where = Where()) -> Workload:
    """Build the ``moe`` workload; routing is drawn from ``seed``.

    Raises
    ------
    InputError
        Bad sizes, or a dense model (give experts, top_k and expert_ffn, or an MoE preset).

    Examples
    --------
    >>> a = build_moe(MoeOptions(model="moe-tiny", context=16, new_tokens=1, block_size=16), seed=1)
    >>> a.meta["routing"]["seed"]
    1
    """
    cfg = opts.resolve(where)
    if not cfg.is_moe:
        raise where.error("experts", f"{cfg.name} is a dense model; give an MoE preset or experts, "
                          "top_k and expert_ffn")
    router = make_router(cfg.experts, cfg.top_k, cfg.layers, opts.skew, seed)
    meta = {"routing": {"seed": seed, "skew": opts.skew, "distribution": "zipf, ranks shuffled per layer"}}
    return build_inference(cfg, opts, "moe", router=router, experts_tier=opts.experts_tier, extra_meta=meta,
                           where=where)

