"""Inference with a paged KV cache: prefill, then decode steps (dense or mixture-of-experts FFN).

A batch of ``batch`` requests, each with a ``context``-token prompt, is prefilled
(in chunks of ``prefill_chunk`` tokens, or all at once) and then decoded for
``new_tokens`` steps, one token per request per step. The KV cache of each layer
is stored in fixed-size blocks of ``block_size`` tokens per request (as vLLM and
UCM page it), so a planner can tier it block by block:

* the attention op that first writes into a block outputs it (a whole block is
  allocated, as paged attention does); later steps that write into the same
  block update it in place;
* every decode step's attention reads every block of its layer.

Per layer and step the ops are ``attn_norm``, ``qkv``, ``attn``, ``out_proj``,
``attn_res``, ``mlp_norm``, then ``gate_up``, ``swiglu``, ``down``, ``mlp_res``
(dense) or ``router``, one ``expert<j>`` op per expert that received tokens, an
optional ``shared`` expert and ``combine`` (mixture of experts, see
:mod:`solver.workloads.moe`). A step that yields a token ends with
``final_norm``, ``lm_head`` and ``sample`` on the last position of each request.

KV-cache bytes: ``2 L n_kv d e`` per token (128 KiB for Llama-3-8B in bf16), in
``L * batch * ceil((context + new_tokens) / block_size)`` blocks.

Examples
--------
>>> wl = build_decode(DecodeOptions(model="llama-tiny", context=64, new_tokens=2, block_size=32))
>>> wl.meta["blocks"], wl.meta["kv_bytes_per_token"]
(6, 2048)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from solver.workloads.builder import TraceBuilder, Workload
from solver.workloads.models import DTYPE_BYTES, ModelConfig, ModelOptions
from solver.workloads.options import Where, opt, options_to_dict
from solver.workloads.train import ADD_FLOPS, NORM_FLOPS, SWIGLU_FLOPS

#: FLOPs per vocabulary entry of sampling (softmax and draw).
SAMPLE_FLOPS = 2

#: ``route(step, layer, tokens) -> tokens per expert`` for mixture-of-experts layers.
Router = Callable[[int, int, int], Sequence[int]]


@dataclass(frozen=True)
class DecodeOptions(ModelOptions):
    """Options of the ``decode`` generator.

    Examples
    --------
    >>> DecodeOptions(model="llama3-8b").block_size
    128
    """

    batch: int = opt(1, "requests decoded together", check="positive")
    context: int = opt(2048, "prompt tokens per request", check="positive")
    new_tokens: int = opt(16, "decode steps (one new token per request each)", check="nonneg")
    block_size: int = opt(128, "tokens per KV-cache block", check="positive")
    prefill: bool = opt(True, "run the prefill; without it the prompt's KV blocks exist from the start "
                        "in kv_tier (a prefix cache)")
    prefill_chunk: int = opt(0, "tokens per prefill chunk (0: the whole prompt at once)", check="nonneg")
    weights_tier: str = opt("HBM", "tier where the weights start")
    kv_tier: str = opt("DDR", "tier of the pre-existing KV blocks (with --no-prefill)")
    compute_tier: str = opt("HBM", "name of the hardware's compute tier")


def _steps(opts: DecodeOptions) -> list[tuple[str, int, int, bool]]:
    """(prefix, first token, end token, yields a token) of every step."""
    C = opts.context
    out: list[tuple[str, int, int, bool]] = []
    if opts.prefill:
        chunk = opts.prefill_chunk or C
        starts = list(range(0, C, chunk))
        for c, t0 in enumerate(starts):
            out.append((f"p{c}", t0, min(C, t0 + chunk), c == len(starts) - 1))
    for t in range(opts.new_tokens):
        out.append((f"d{t}", C + t, C + t + 1, True))
    return out


def build_inference(cfg: ModelConfig, opts: DecodeOptions, kind: str, *, router: Router | None = None,
                    experts_tier: str | None = None, extra_meta: Mapping[str, object] | None = None,
                    where: Where = Where()) -> Workload:
    """Build an inference workload for ``cfg`` (dense, or MoE with ``router``).

    Parameters
    ----------
    cfg : ModelConfig
        The model.
    opts : DecodeOptions
        Batch, context, steps, KV blocks, tiers.
    kind : str
        Generator name recorded in the workload.
    router : callable, optional
        Required for a mixture-of-experts model: tokens per expert for (step, layer, tokens).
    experts_tier : str, optional
        Tier where expert weights start (default: ``opts.weights_tier``).
    extra_meta : dict, optional
        More ``meta`` entries.
    where : Where
        Names the options in error messages.

    Raises
    ------
    InputError
        Without prefill and without decode steps there is nothing to run.

    Examples
    --------
    >>> from solver.workloads.models import model_preset
    >>> wl = build_inference(model_preset("llama-tiny"), DecodeOptions(context=16, new_tokens=1,
    ...                      block_size=16), "decode")
    >>> [op.id for op in wl.ops][-3:]
    ['d0.final_norm', 'd0.lm_head', 'd0.sample']
    """
    if not opts.prefill and opts.new_tokens == 0:
        raise where.error("new_tokens", "must be > 0 without a prefill (nothing would run)")
    e = DTYPE_BYTES[opts.dtype]
    b, B, C = opts.batch, opts.block_size, opts.compute_tier
    h, f, V, kvd = cfg.hidden, cfg.ffn, cfg.vocab, cfg.kv_dim
    tb = TraceBuilder()

    def tier(t: str | None) -> str | None:
        return t if t and t != C else None

    w_init = tier(opts.weights_tier)
    x_init = tier(experts_tier or opts.weights_tier)
    params: dict[str, int] = {}

    def weight(wid: str, n: int, init: str | None = w_init) -> None:
        params[wid] = n
        tb.tensor(wid, n * e, "weight", initial_tier=init, persistent=True)

    weight("embed", V * h)
    for l in range(cfg.layers):
        w = f"L{l}"
        weight(f"{w}.attn_norm", h)
        weight(f"{w}.wqkv", h * (h + 2 * kvd))
        weight(f"{w}.wo", h * h)
        weight(f"{w}.mlp_norm", h)
        if cfg.is_moe:
            weight(f"{w}.router", h * cfg.experts)
            for j in range(cfg.experts):
                weight(f"{w}.expert{j}", 3 * h * cfg.expert_ffn, x_init)
            if cfg.shared_ffn:
                weight(f"{w}.shared", 3 * h * cfg.shared_ffn)
        else:
            weight(f"{w}.wgu", 2 * h * f)
            weight(f"{w}.wdown", f * h)
    weight("final_norm", h)
    head_w = "embed" if cfg.tie_embeddings else "lm_head"
    if not cfg.tie_embeddings:
        weight("lm_head", V * h)

    # paged KV cache state, per layer
    block_bytes = 2 * kvd * B * e
    full: list[list[str]] = [[] for _ in range(cfg.layers)]
    partial: list[list[str]] = [[] for _ in range(cfg.layers)]
    n_blocks = 0

    def kv_write(l: int, t0: int, t1: int, init: str | None = None, create: bool = True
                 ) -> tuple[list[str], list[str], list[str]]:
        """(blocks read, blocks updated, blocks created) when writing tokens [t0, t1) of layer l."""
        nonlocal n_blocks
        reads = list(full[l])
        ups = list(partial[l]) if t0 % B else []
        new: list[list[str]] = []
        for r in range(b):
            mine = []
            for j in range(-(-t0 // B), -(-t1 // B)):
                mine.append(tb.tensor(f"kv.L{l}.r{r}.b{j}", block_bytes, "kv_cache", initial_tier=init))
                n_blocks += 1
            new.append(mine)
        touched = [([ups[r]] if ups else []) + new[r] for r in range(b)]
        if t1 % B == 0:
            full[l].extend(blk for r in range(b) for blk in touched[r])
            partial[l] = []
        else:
            full[l].extend(blk for r in range(b) for blk in touched[r][:-1])
            partial[l] = [touched[r][-1] for r in range(b)]
        return reads, ups, [blk for r in range(b) for blk in new[r]]

    if not opts.prefill:
        for l in range(cfg.layers):
            kv_write(l, 0, opts.context, init=tier(opts.kv_tier))
    steps = _steps(opts)
    src = tb.tensor("prompt", b * opts.context * 4, "input") if opts.prefill else \
        tb.tensor("d0.tok_in", b * 4, "input")
    for step, (P, t0, t1, yields) in enumerate(steps):
        n = t1 - t0
        T = b * n
        x = tb.tensor(f"{P}.L0.x", T * h * e, "activation")
        tb.op(f"{P}.embed", "embedding", (src, "embed"), (x,), mem_bytes=T * 4 + 2 * T * h * e)
        attn_flops = b * 4 * h * ((t1 * (t1 + 1) - t0 * (t0 + 1)) // 2)
        for l in range(cfg.layers):
            p, w = f"{P}.L{l}", f"L{l}"

            def act(name: str, width: int, tokens: int = T) -> str:
                return tb.tensor(f"{p}.{name}", tokens * width * e, "activation")

            n1 = act("n1", h)
            tb.op(f"{p}.attn_norm", "rmsnorm", (x, f"{w}.attn_norm"), (n1,), flops=NORM_FLOPS * T * h)
            qkv = act("qkv_out", h + 2 * kvd)
            tb.op(f"{p}.qkv", "matmul", (n1, f"{w}.wqkv"), (qkv,), flops=2 * T * params[f"{w}.wqkv"])
            o = act("o", h)
            reads, ups, new = kv_write(l, t0, t1)
            tb.op(f"{p}.attn", "paged_attention", [qkv] + reads, [o] + new, ups, flops=attn_flops)
            ya = act("ya", h)
            tb.op(f"{p}.out_proj", "matmul", (o, f"{w}.wo"), (ya,), flops=2 * T * h * h)
            xm = act("xm", h)
            tb.op(f"{p}.attn_res", "add", (x, ya), (xm,), flops=ADD_FLOPS * T * h)
            n2 = act("n2", h)
            tb.op(f"{p}.mlp_norm", "rmsnorm", (xm, f"{w}.mlp_norm"), (n2,), flops=NORM_FLOPS * T * h)
            last = l + 1 == cfg.layers
            xn = tb.tensor(f"{P}.xL" if last else f"{P}.L{l + 1}.x", T * h * e, "activation")
            if not cfg.is_moe:
                gu = act("gu", 2 * f)
                tb.op(f"{p}.gate_up", "matmul", (n2, f"{w}.wgu"), (gu,), flops=2 * T * 2 * h * f)
                a_ = act("act", f)
                tb.op(f"{p}.swiglu", "swiglu", (gu,), (a_,), flops=SWIGLU_FLOPS * T * f)
                ym = act("ym", h)
                tb.op(f"{p}.down", "matmul", (a_, f"{w}.wdown"), (ym,), flops=2 * T * f * h)
                tb.op(f"{p}.mlp_res", "add", (xm, ym), (xn,), flops=ADD_FLOPS * T * h)
            else:
                assert router is not None, "a mixture-of-experts model needs a router"
                k, E, fe = cfg.top_k, cfg.experts, cfg.expert_ffn
                route = tb.tensor(f"{p}.route", T * k * 8, "activation")
                tb.op(f"{p}.router", "router", (n2, f"{w}.router"), (route,), flops=2 * T * h * E)
                counts = router(step, l, T)
                ys = []
                for j, nj in enumerate(counts):
                    if nj <= 0:
                        continue
                    y = act(f"y{j}", h, nj)
                    wid = f"{w}.expert{j}"
                    tb.op(f"{p}.expert{j}", "expert_mlp", (n2, route, wid), (y,),
                          flops=2 * nj * 3 * h * fe + SWIGLU_FLOPS * nj * fe,
                          mem_bytes=tb.size(wid) + tb.size(route) + 2 * nj * h * e)
                    ys.append(y)
                if cfg.shared_ffn:
                    y = act("ys", h)
                    fs = cfg.shared_ffn
                    tb.op(f"{p}.shared", "expert_mlp", (n2, f"{w}.shared"), (y,),
                          flops=2 * T * 3 * h * fs + SWIGLU_FLOPS * T * fs)
                    ys.append(y)
                tb.op(f"{p}.combine", "moe_combine", [xm, route] + ys, (xn,),
                      flops=ADD_FLOPS * T * h * (k + 1 + (1 if cfg.shared_ffn else 0)))
            x = xn
        if not yields:
            continue
        nf = tb.tensor(f"{P}.nf", b * h * e, "activation")
        tb.op(f"{P}.final_norm", "rmsnorm", (x, "final_norm"), (nf,), flops=NORM_FLOPS * b * h,
              mem_bytes=2 * b * h * e + h * e)
        logits = tb.tensor(f"{P}.logits", b * V * e, "activation")
        tb.op(f"{P}.lm_head", "matmul", (nf, head_w), (logits,), flops=2 * b * h * V)
        src = tb.tensor(f"{P}.tok", b * 4, "activation")
        tb.op(f"{P}.sample", "sample", (logits,), (src,), flops=SAMPLE_FLOPS * b * V)
    meta: dict[str, object] = {
        "generator": kind, "model": cfg.describe(), "options": options_to_dict(opts),
        "params": cfg.total_params(), "layer_params": cfg.layer_params(),
        "kv_bytes_per_token": cfg.kv_bytes_per_token(e), "block_bytes": block_bytes, "blocks": n_blocks,
        "tokens": b * (opts.context + opts.new_tokens), "flops": tb.total_flops(),
    }
    meta.update(extra_meta or {})
    name = f"{kind}-{cfg.name}-b{b}-c{opts.context}-n{opts.new_tokens}"
    return tb.build(name, kind, meta, dtype=opts.dtype)


def build_decode(opts: DecodeOptions, where: Where = Where()) -> Workload:
    """Build the ``decode`` workload of a dense model.

    Raises
    ------
    InputError
        Bad model sizes, or a mixture-of-experts model (use the ``moe`` generator).

    Examples
    --------
    >>> wl = build_decode(DecodeOptions(model="llama3-8b", layers=1, context=256, new_tokens=1))
    >>> wl.meta["kv_bytes_per_token"]
    4096
    """
    cfg = opts.resolve(where)
    if cfg.is_moe:
        raise where.error("model", f"{cfg.name} is a mixture-of-experts model; use the moe generator")
    return build_inference(cfg, opts, "decode", where=where)
