"""Transformer model configurations and their closed-form parameter accounting.

A :class:`ModelConfig` describes a Llama-style decoder (RMSNorm, grouped-query
attention, SwiGLU MLP) or its mixture-of-experts variant. Presets hold the
published sizes of well-known models plus a few small ones for tests; explicit
sizes override any preset field.

Parameter counts follow ``llm-accounting.md``: per dense layer
``2h^2 + 2 h n_kv d + 3 h f + 2h`` (q and o, k and v, gate/up/down, two norms).

Examples
--------
>>> cfg = model_preset("llama3-8b")
>>> cfg.layer_params(), cfg.total_params()
(218112000, 8030261248)
>>> cfg.kv_bytes_per_token(2)
131072
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from solver.errors import InputError, InputProblem
from solver.workloads.options import Where, opt

#: Bytes per element of the supported data types.
DTYPE_BYTES: Mapping[str, int] = MappingProxyType({"bf16": 2, "fp16": 2, "fp32": 4})


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Sizes of a decoder-only transformer.

    Parameters
    ----------
    name : str
        Preset name, or ``"custom"``.
    layers, hidden, heads, kv_heads, ffn, vocab : int
        L, h, a (query heads), n_kv (key/value heads), f (dense FFN size), V.
    tie_embeddings : bool
        Whether the output head shares the embedding matrix.
    experts, top_k, expert_ffn : int
        Routed experts per layer, experts per token and each expert's FFN size
        (all 0 for a dense model).
    shared_ffn : int
        FFN size of the always-active shared expert (0: none).

    Examples
    --------
    >>> ModelConfig("m", layers=2, hidden=64, heads=4, kv_heads=2, ffn=128, vocab=100).head_dim
    16
    """

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    tie_embeddings: bool = False
    experts: int = 0
    top_k: int = 0
    expert_ffn: int = 0
    shared_ffn: int = 0

    @property
    def head_dim(self) -> int:
        """d = h / a."""
        return self.hidden // self.heads

    @property
    def is_moe(self) -> bool:
        """Whether the FFN of every layer is a mixture of experts."""
        return self.experts > 0

    @property
    def kv_dim(self) -> int:
        """n_kv * d, the width of K (and of V)."""
        return self.kv_heads * self.head_dim

    def attention_params(self) -> int:
        """q, k, v and o projections: 2h^2 + 2 h n_kv d."""
        h = self.hidden
        return 2 * h * h + 2 * h * self.kv_dim

    def mlp_params(self) -> int:
        """Dense SwiGLU MLP: 3 h f; for MoE, router + experts + shared expert."""
        h = self.hidden
        if self.is_moe:
            return h * self.experts + self.experts * 3 * h * self.expert_ffn + 3 * h * self.shared_ffn
        return 3 * h * self.ffn

    def layer_params(self) -> int:
        """Parameters of one layer (attention, MLP and two RMSNorms)."""
        return self.attention_params() + self.mlp_params() + 2 * self.hidden

    def embedding_params(self) -> int:
        """Input embedding, output head (unless tied) and the final norm."""
        emb = self.vocab * self.hidden
        return emb + (0 if self.tie_embeddings else emb) + self.hidden

    def total_params(self) -> int:
        """All parameters of the model."""
        return self.layers * self.layer_params() + self.embedding_params()

    def active_params_per_token(self) -> int:
        """Parameters a token's forward pass multiplies by, excluding the embedding lookup."""
        h = self.hidden
        if self.is_moe:
            mlp = h * self.experts + self.top_k * 3 * h * self.expert_ffn + 3 * h * self.shared_ffn
        else:
            mlp = 3 * h * self.ffn
        return self.layers * (self.attention_params() + mlp) + self.vocab * h

    def describe(self) -> dict[str, Any]:
        """The sizes as a JSON-friendly dict (recorded in a trace's ``meta``)."""
        return {"name": self.name, "layers": self.layers, "hidden": self.hidden, "heads": self.heads,
                "kv_heads": self.kv_heads, "ffn": self.ffn, "vocab": self.vocab,
                "tie_embeddings": self.tie_embeddings, "experts": self.experts, "top_k": self.top_k,
                "expert_ffn": self.expert_ffn, "shared_ffn": self.shared_ffn}

    def kv_bytes_per_token(self, elem_bytes: int) -> int:
        """KV-cache bytes per token over all layers: 2 L n_kv d bytes_per_element."""
        return 2 * self.layers * self.kv_dim * elem_bytes


_PRESETS: Mapping[str, ModelConfig] = MappingProxyType({
    # Meta Llama 3 / 3.1 / 3.2 model cards (config.json of the released checkpoints).
    "llama3-8b": ModelConfig("llama3-8b", 32, 4096, 32, 8, 14336, 128256),
    "llama3-70b": ModelConfig("llama3-70b", 80, 8192, 64, 8, 28672, 128256),
    "llama3-405b": ModelConfig("llama3-405b", 126, 16384, 128, 8, 53248, 128256),
    "llama3.2-1b": ModelConfig("llama3.2-1b", 16, 2048, 32, 8, 8192, 128256, tie_embeddings=True),
    "llama3.2-3b": ModelConfig("llama3.2-3b", 28, 3072, 24, 8, 8192, 128256, tie_embeddings=True),
    # Small made-up models for tests and exact-solver studies.
    "llama-tiny": ModelConfig("llama-tiny", 2, 512, 8, 4, 1408, 8192, tie_embeddings=True),
    "llama-small": ModelConfig("llama-small", 4, 1024, 16, 4, 2816, 16384),
    # Mixture of experts: Mixtral (Jiang et al. 2024), Qwen1.5-MoE-A2.7B (60 routed
    # experts, top-4, plus a shared expert of 4 x 1408), and a tiny one for tests.
    "mixtral-8x7b": ModelConfig("mixtral-8x7b", 32, 4096, 32, 8, 0, 32000,
                                experts=8, top_k=2, expert_ffn=14336),
    "mixtral-8x22b": ModelConfig("mixtral-8x22b", 56, 6144, 48, 8, 0, 32768,
                                 experts=8, top_k=2, expert_ffn=16384),
    "qwen1.5-moe-a2.7b": ModelConfig("qwen1.5-moe-a2.7b", 24, 2048, 16, 16, 0, 151936,
                                     experts=60, top_k=4, expert_ffn=1408, shared_ffn=5632),
    "moe-tiny": ModelConfig("moe-tiny", 2, 256, 4, 2, 0, 2048, tie_embeddings=True,
                            experts=8, top_k=2, expert_ffn=512),
})


def list_model_presets() -> list[str]:
    """Names of the model presets, sorted.

    Examples
    --------
    >>> "llama3-70b" in list_model_presets()
    True
    """
    return sorted(_PRESETS)


def model_preset(name: str, where: Where = Where()) -> ModelConfig:
    """The preset named ``name``.

    Raises
    ------
    InputError
        For an unknown name; the message lists the valid ones.

    Examples
    --------
    >>> model_preset("llama3-70b").layer_params()
    855654400
    """
    try:
        return _PRESETS[name]
    except KeyError:
        raise where.error("model", f"unknown model preset {name!r}; valid presets: "
                          f"{', '.join(list_model_presets())}") from None


_SIZE_FIELDS = ("layers", "hidden", "heads", "kv_heads", "ffn", "vocab",
                "experts", "top_k", "expert_ffn", "shared_ffn")


@dataclass(frozen=True)
class ModelOptions:
    """How a generator's user picks a model: a preset, explicit sizes, or a preset with overrides.

    Examples
    --------
    >>> ModelOptions(model="llama3-8b", layers=2).resolve().layers
    2
    """

    model: str | None = opt(None, "model preset: " + ", ".join(sorted(_PRESETS)))
    layers: int | None = opt(None, "number of layers L (overrides the preset)")
    hidden: int | None = opt(None, "hidden size h")
    heads: int | None = opt(None, "query heads a (must divide hidden)")
    kv_heads: int | None = opt(None, "key/value heads n_kv (must divide heads; default: heads)")
    ffn: int | None = opt(None, "FFN (intermediate) size f")
    vocab: int | None = opt(None, "vocabulary size V")
    tie_embeddings: bool | None = opt(None, "share the embedding matrix with the output head")
    dtype: str = opt("bf16", "data type of weights and activations", choices=tuple(DTYPE_BYTES))

    def resolve(self, where: Where = Where()) -> ModelConfig:
        """The :class:`ModelConfig` these options describe (see :func:`resolve_model`)."""
        overrides = {f: getattr(self, f, None) for f in _SIZE_FIELDS}
        overrides["tie_embeddings"] = self.tie_embeddings
        return resolve_model(self.model, overrides, where)


def resolve_model(preset: str | None, overrides: Mapping[str, Any], where: Where = Where()) -> ModelConfig:
    """A model from an optional preset and explicit sizes (``None`` values are ignored).

    Parameters
    ----------
    preset : str or None
        Preset name; without one, ``layers``, ``hidden``, ``heads``, ``ffn`` (or the
        expert sizes) and ``vocab`` are required and ``kv_heads`` defaults to ``heads``.
    overrides : mapping
        Any of the :class:`ModelConfig` size fields and ``tie_embeddings``.
    where : Where
        Names the options in error messages.

    Raises
    ------
    InputError
        Unknown preset, missing or non-positive sizes, heads not dividing hidden,
        KV heads not dividing heads.

    Examples
    --------
    >>> resolve_model("llama3-8b", {"layers": 2}).layers
    2
    >>> resolve_model(None, {"layers": 1, "hidden": 64, "heads": 4, "ffn": 128, "vocab": 10}).kv_heads
    4
    >>> resolve_model(None, {"layers": 1, "hidden": 64, "heads": 5, "ffn": 128, "vocab": 10})
    Traceback (most recent call last):
    ...
    solver.errors.InputError: options: heads: 5 heads do not divide hidden size 64
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if preset is not None:
        if preset not in _PRESETS:
            raise where.error("model", f"unknown model preset {preset!r}; valid presets: "
                              f"{', '.join(list_model_presets())}")
        cfg = _PRESETS[preset]
        base: dict[str, Any] = {f: getattr(cfg, f) for f in _SIZE_FIELDS}
        base["tie_embeddings"] = cfg.tie_embeddings
        changed = {k for k, v in given.items() if base.get(k) != v}
        name = cfg.name if not changed else cfg.name + "+" + ",".join(
            f"{k}={given[k]}" for k in sorted(changed))
    else:
        missing = [f for f in ("layers", "hidden", "heads", "vocab") if f not in given]
        if "ffn" not in given and "experts" not in given:
            missing.append("ffn")
        if missing:
            raise where.error("model", "give a model preset or explicit sizes; missing: "
                              + ", ".join(missing) + f" (presets: {', '.join(list_model_presets())})")
        base = {"kv_heads": given.get("heads"), "ffn": 0, "experts": 0, "top_k": 0, "expert_ffn": 0,
                "shared_ffn": 0, "tie_embeddings": False}
        name = "custom"
    base.update(given)
    problems: list[InputProblem] = []
    for f in ("layers", "hidden", "heads", "kv_heads", "vocab"):
        if isinstance(base[f], bool) or not isinstance(base[f], int) or base[f] <= 0:
            problems.append(where.problem(f, f"must be a positive integer, got {base[f]!r}"))
    for f in ("ffn", "experts", "top_k", "expert_ffn", "shared_ffn"):
        if isinstance(base[f], bool) or not isinstance(base[f], int) or base[f] < 0:
            problems.append(where.problem(f, f"must be an integer >= 0, got {base[f]!r}"))
    if problems:
        raise InputError(problems)
    h, a, kv = base["hidden"], base["heads"], base["kv_heads"]
    if h % a:
        problems.append(where.problem("heads", f"{a} heads do not divide hidden size {h}"))
    elif a % kv:
        problems.append(where.problem("kv_heads", f"{kv} KV heads do not divide {a} query heads"))
    if base["experts"]:
        if not 1 <= base["top_k"] <= base["experts"]:
            problems.append(where.problem("top_k", f"must be between 1 and experts={base['experts']}, "
                                          f"got {base['top_k']}"))
        if base["expert_ffn"] <= 0:
            problems.append(where.problem("expert_ffn", "must be > 0 for a mixture-of-experts model"))
    elif base["ffn"] <= 0:
        problems.append(where.problem("ffn", "must be > 0 for a dense model"))
    if problems:
        raise InputError(problems)
    return ModelConfig(name=name, **base)
