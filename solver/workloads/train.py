"""One training step of a Llama-style decoder: forward, loss, backward, Adam.

Per micro-batch and layer the forward pass has the ops a compiled graph has
(``attn_norm``, ``qkv``, ``attn`` (FlashAttention: no s^2 scores are stored, only
the log-sum-exp), ``out_proj``, ``attn_res``, ``mlp_norm``, ``gate_up``,
``swiglu``, ``down``, ``mlp_res``); the backward pass mirrors it with separate
input-gradient (``.dx``) and weight-gradient (``.dw``) ops for every matmul.
With gradient accumulation the first micro-batch creates each weight gradient
and later ones update it in place. The step ends with Adam ops that read the
gradient and update the fp32 master weight, momentum and variance and the
low-precision weight.

Tensors and bytes (T = micro_batch * seq_len tokens, e = bytes per element):

* weights: ``e`` per parameter; weight gradients (``grad.*``): ``e`` per parameter;
  optimizer states (``master.*``, ``adam_m.*``, ``adam_v.*``): 4 bytes each per
  parameter (no master copy when dtype is fp32), so bf16 mixed precision costs
  2 + 2 + 12 = 16 bytes per parameter;
* activations per layer and micro-batch: ``T e (8h + 2 n_kv d + 3f) + 4 b a s``:
  saved for backward x, n1, qkv, o, x_mid, n2, gate/up, act (``T e (6h + 2 n_kv d + 3f)``)
  plus the attention log-sum-exp (fp32), and two transient branch outputs;
* activation gradients (kind ``gradient``, ids ``mb*.d*``) are transient.

Examples
--------
>>> wl = build_train(TrainOptions(model="llama-tiny", seq_len=64))
>>> sum(t.bytes for t in wl.tensors if t.kind == "optimizer_state") == 12 * wl.meta["params"]
True
"""

from __future__ import annotations

from dataclasses import dataclass

from solver.workloads.builder import TraceBuilder, Workload
from solver.workloads.models import DTYPE_BYTES, ModelConfig, ModelOptions
from solver.workloads.options import Where, opt, options_to_dict

#: Nominal FLOPs per element of the elementwise ops (small next to the matmuls).
NORM_FLOPS, NORM_BWD_FLOPS, ADD_FLOPS = 4, 8, 1
SWIGLU_FLOPS, SWIGLU_BWD_FLOPS = 4, 8
LOSS_FLOPS, LOSS_BWD_FLOPS = 5, 3
ADAM_FLOPS = 12
#: Backward FLOPs of FlashAttention relative to its forward pass.
FLASH_BWD_RATIO = 2.5


@dataclass(frozen=True)
class TrainOptions(ModelOptions):
    """Options of the ``train`` generator.

    Examples
    --------
    >>> TrainOptions(model="llama3-8b").seq_len
    2048
    """

    micro_batch: int = opt(1, "sequences per micro-batch b", check="positive")
    seq_len: int = opt(2048, "sequence length s", check="positive")
    grad_accum: int = opt(1, "gradient-accumulation steps (micro-batches per optimizer step)",
                          check="positive")
    weights_tier: str = opt("HBM", "tier where the weights start")
    optimizer_tier: str = opt("HBM", "tier where the fp32 master weights and Adam states start "
                              "(DDR for ZeRO-Offload)")
    pin_final: bool = opt(True, "weights and optimizer states that start off the compute tier must "
                          "end there too (final_tier)")
    optimizer_fusion: str = opt("tensor", "one Adam op per weight tensor, per layer, or for the "
                                "whole model", choices=("tensor", "layer", "all"))
    compute_tier: str = opt("HBM", "name of the hardware's compute tier")


def _weights(cfg: ModelConfig) -> list[tuple[str, str, int]]:
    """(group, weight id, parameters) in model order."""
    h, f, V = cfg.hidden, cfg.ffn, cfg.vocab
    out = [("emb", "embed", V * h)]
    for l in range(cfg.layers):
        g = f"L{l}"
        out += [(g, f"{g}.attn_norm", h), (g, f"{g}.wqkv", h * (h + 2 * cfg.kv_dim)), (g, f"{g}.wo", h * h),
                (g, f"{g}.mlp_norm", h), (g, f"{g}.wgu", 2 * h * f), (g, f"{g}.wdown", f * h)]
    out.append(("head", "final_norm", h))
    if not cfg.tie_embeddings:
        out.append(("head", "lm_head", V * h))
    return out


def build_train(opts: TrainOptions, where: Where = Where()) -> Workload:
    """Build the training-step workload (tensors, ops, FLOPs; no durations yet).

    Parameters
    ----------
    opts : TrainOptions
        Model and step options.
    where : Where
        Names the options in error messages.

    Raises
    ------
    InputError
        Bad model sizes, or a mixture-of-experts model (training supports dense models).

    Examples
    --------
    >>> wl = build_train(TrainOptions(model="llama3-8b", layers=1, seq_len=128))
    >>> wl.meta["layer_params"]
    218112000
    """
    cfg = opts.resolve(where)
    if cfg.is_moe:
        raise where.error("model", "the train generator supports dense models only")
    e = DTYPE_BYTES[opts.dtype]
    b, s, K = opts.micro_batch, opts.seq_len, opts.grad_accum
    h, f, V, kvd = cfg.hidden, cfg.ffn, cfg.vocab, cfg.kv_dim
    T = b * s
    C = opts.compute_tier
    tb = TraceBuilder()

    def home(tier: str) -> tuple[str | None, str | None]:
        off = tier != C
        return (tier if off else None), (tier if off and opts.pin_final else None)

    w_init, w_final = home(opts.weights_tier)
    o_init, o_final = home(opts.optimizer_tier)
    weights = _weights(cfg)
    params = {wid: n for _, wid, n in weights}
    for _, wid, n in weights:
        tb.tensor(wid, n * e, "weight", initial_tier=w_init, persistent=True, final_tier=w_final)
    states = ("adam_m", "adam_v") if opts.dtype == "fp32" else ("master", "adam_m", "adam_v")
    for _, wid, n in weights:
        for st in states:
            tb.tensor(f"{st}.{wid}", 4 * n, "optimizer_state", initial_tier=o_init, persistent=True,
                      final_tier=o_final)
    head_w = "embed" if cfg.tie_embeddings else "lm_head"
    grads_made: set[str] = set()

    def wgrad(wid: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(outputs, updates) of an op contributing the gradient of ``wid``."""
        gid = f"grad.{wid}"
        if gid in grads_made:
            return (), (gid,)
        grads_made.add(gid)
        tb.tensor(gid, params[wid] * e, "gradient")
        return (gid,), ()

    def matmul_dw(oid: str, dy: str, x: str, wid: str, n_params: int) -> None:
        outs, ups = wgrad(wid)
        tb.op(oid, "matmul", (dy, x), outs, ups, flops=2 * T * n_params)

    def act(tid: str, width: int) -> str:
        return tb.tensor(tid, T * width * e, "activation")

    def grad(tid: str, width: int) -> str:
        return tb.tensor(tid, T * width * e, "gradient")

    attn_fwd = 4 * b * h * (s * (s + 1) // 2)       # causal: QK^T and PV over s(s+1)/2 pairs
    for m in range(K):
        P = f"mb{m}"
        tok = tb.tensor(f"{P}.tokens", T * 4, "input")
        lab = tb.tensor(f"{P}.labels", T * 4, "input")
        x = act(f"{P}.L0.x", h)
        tb.op(f"{P}.embed", "embedding", (tok, "embed"), (x,), mem_bytes=T * 4 + 2 * T * h * e)
        saved = []
        for l in range(cfg.layers):
            p, w = f"{P}.L{l}", f"L{l}"
            n1 = act(f"{p}.n1", h)
            tb.op(f"{p}.attn_norm", "rmsnorm", (x, f"{w}.attn_norm"), (n1,), flops=NORM_FLOPS * T * h)
            qkv = act(f"{p}.qkv_out", h + 2 * kvd)
            tb.op(f"{p}.qkv", "matmul", (n1, f"{w}.wqkv"), (qkv,), flops=2 * T * params[f"{w}.wqkv"])
            o = act(f"{p}.o", h)
            lse = tb.tensor(f"{p}.lse", b * cfg.heads * s * 4, "activation")
            tb.op(f"{p}.attn", "flash_attention", (qkv,), (o, lse), flops=attn_fwd)
            ya = act(f"{p}.ya", h)
            tb.op(f"{p}.out_proj", "matmul", (o, f"{w}.wo"), (ya,), flops=2 * T * h * h)
            xm = act(f"{p}.xm", h)
            tb.op(f"{p}.attn_res", "add", (x, ya), (xm,), flops=ADD_FLOPS * T * h)
            n2 = act(f"{p}.n2", h)
            tb.op(f"{p}.mlp_norm", "rmsnorm", (xm, f"{w}.mlp_norm"), (n2,), flops=NORM_FLOPS * T * h)
            gu = act(f"{p}.gu", 2 * f)
            tb.op(f"{p}.gate_up", "matmul", (n2, f"{w}.wgu"), (gu,), flops=2 * T * 2 * h * f)
            a_ = act(f"{p}.act", f)
            tb.op(f"{p}.swiglu", "swiglu", (gu,), (a_,), flops=SWIGLU_FLOPS * T * f)
            ym = act(f"{p}.ym", h)
            tb.op(f"{p}.down", "matmul", (a_, f"{w}.wdown"), (ym,), flops=2 * T * f * h)
            xn = act(f"{P}.L{l + 1}.x" if l + 1 < cfg.layers else f"{P}.xL", h)
            tb.op(f"{p}.mlp_res", "add", (xm, ym), (xn,), flops=ADD_FLOPS * T * h)
            saved.append((x, n1, qkv, o, lse, xm, n2, gu, a_))
            x = xn
        nf = act(f"{P}.nf", h)
        tb.op(f"{P}.final_norm", "rmsnorm", (x, "final_norm"), (nf,), flops=NORM_FLOPS * T * h)
        logits = act(f"{P}.logits", V)
        tb.op(f"{P}.lm_head", "matmul", (nf, head_w), (logits,), flops=2 * T * h * V)
        loss = tb.tensor(f"{P}.loss_val", 4, "activation")
        tb.op(f"{P}.loss", "cross_entropy", (logits, lab), (loss,), flops=LOSS_FLOPS * T * V)
        # backward
        dlogits = grad(f"{P}.dlogits", V)
        tb.op(f"{P}.loss.bwd", "cross_entropy_bwd", (logits, lab), (dlogits,), flops=LOSS_BWD_FLOPS * T * V)
        dnf = grad(f"{P}.dnf", h)
        tb.op(f"{P}.lm_head.dx", "matmul", (dlogits, head_w), (dnf,), flops=2 * T * h * V)
        matmul_dw(f"{P}.lm_head.dw", dlogits, nf, head_w, V * h)
        dx = grad(f"{P}.dxL", h)
        outs, ups = wgrad("final_norm")
        tb.op(f"{P}.final_norm.bwd", "rmsnorm_bwd", (dnf, x, "final_norm"), (dx,) + outs, ups,
              flops=NORM_BWD_FLOPS * T * h)
        for l in reversed(range(cfg.layers)):
            p, w = f"{P}.L{l}", f"L{l}"
            xl, n1, qkv, o, lse, xm, n2, gu, a_ = saved[l]
            dact = grad(f"{p}.dact", f)
            tb.op(f"{p}.down.dx", "matmul", (dx, f"{w}.wdown"), (dact,), flops=2 * T * f * h)
            matmul_dw(f"{p}.down.dw", dx, a_, f"{w}.wdown", f * h)
            dgu = grad(f"{p}.dgu", 2 * f)
            tb.op(f"{p}.swiglu.bwd", "swiglu_bwd", (dact, gu), (dgu,), flops=SWIGLU_BWD_FLOPS * T * f)
            dn2 = grad(f"{p}.dn2", h)
            tb.op(f"{p}.gate_up.dx", "matmul", (dgu, f"{w}.wgu"), (dn2,), flops=2 * T * 2 * h * f)
            matmul_dw(f"{p}.gate_up.dw", dgu, n2, f"{w}.wgu", 2 * h * f)
            dxm_p = grad(f"{p}.dxm_part", h)
            outs, ups = wgrad(f"{w}.mlp_norm")
            tb.op(f"{p}.mlp_norm.bwd", "rmsnorm_bwd", (dn2, xm, f"{w}.mlp_norm"), (dxm_p,) + outs, ups,
                  flops=NORM_BWD_FLOPS * T * h)
            dxm = grad(f"{p}.dxm", h)
            tb.op(f"{p}.mlp_res.bwd", "add", (dxm_p, dx), (dxm,), flops=ADD_FLOPS * T * h)
            do = grad(f"{p}.do", h)
            tb.op(f"{p}.out_proj.dx", "matmul", (dxm, f"{w}.wo"), (do,), flops=2 * T * h * h)
            matmul_dw(f"{p}.out_proj.dw", dxm, o, f"{w}.wo", h * h)
            dqkv = grad(f"{p}.dqkv", h + 2 * kvd)
            tb.op(f"{p}.attn.bwd", "flash_attention_bwd", (do, qkv, o, lse), (dqkv,),
                  flops=int(FLASH_BWD_RATIO * attn_fwd))
            dn1 = grad(f"{p}.dn1", h)
            tb.op(f"{p}.qkv.dx", "matmul", (dqkv, f"{w}.wqkv"), (dn1,), flops=2 * T * params[f"{w}.wqkv"])
            matmul_dw(f"{p}.qkv.dw", dqkv, n1, f"{w}.wqkv", params[f"{w}.wqkv"])
            dx_p = grad(f"{p}.dx_part", h)
            outs, ups = wgrad(f"{w}.attn_norm")
            tb.op(f"{p}.attn_norm.bwd", "rmsnorm_bwd", (dn1, xl, f"{w}.attn_norm"), (dx_p,) + outs, ups,
                  flops=NORM_BWD_FLOPS * T * h)
            dxl = grad(f"{p}.dx", h)
            tb.op(f"{p}.attn_res.bwd", "add", (dx_p, dxm), (dxl,), flops=ADD_FLOPS * T * h)
            dx = dxl
        outs, ups = wgrad("embed")
        # scatter-add of T rows; creating the gradient also zero-fills it
        tb.op(f"{P}.embed.bwd", "embedding_bwd", (dx, tok), outs, ups,
              flops=T * h, mem_bytes=T * 4 + 3 * T * h * e + (V * h * e if outs else 0))
    # optimizer step
    groups: dict[str, list[str]] = {}
    for group, wid, _ in weights:
        key = {"tensor": wid, "layer": group, "all": "all"}[opts.optimizer_fusion]
        groups.setdefault(key, []).append(wid)
    for key, wids in groups.items():
        n = sum(params[w] for w in wids)
        tb.op(f"adam.{key}", "adam", tuple(f"grad.{w}" for w in wids), (),
              tuple(f"{st}.{w}" for w in wids for st in states) + tuple(wids), flops=ADAM_FLOPS * n)
    total = cfg.total_params()
    meta = {
        "generator": "train", "model": cfg.describe(), "options": options_to_dict(opts),
        "params": total, "layer_params": cfg.layer_params(), "tokens": T * K,
        "bytes_per_param": {"weight": e, "gradient": e, "optimizer_state": 4 * len(states)},
        "flops": tb.total_flops(),
    }
    name = f"train-{cfg.name}-b{b}-s{s}" + (f"-ga{K}" if K > 1 else "")
    return tb.build(name, "train", meta, dtype=opts.dtype)
