"""The roofline cost model shared by the importers: op FLOPs and bytes from names and shapes.

An op's estimated duration is ``overhead + max(flops / (peak_flops * flop_efficiency),
bytes / (bandwidth * bandwidth_efficiency))``. The defaults describe one NVIDIA H100 SXM
(989 TFLOP/s dense BF16, 3.35 TB/s HBM3; see ``shared/reference/hardware.md``) at 50 % of peak
FLOP/s and 80 % of peak bandwidth, with no per-op overhead; every figure can be overridden
(``--peak-flops``, ``--bandwidth``, ``--flop-efficiency``, ``--bandwidth-efficiency``,
``--op-overhead`` on the command line).

Op names are recognised across frameworks (``aten::addmm``, ``MatMul``, ``conv2d``...) and
sorted into classes: ``matmul``, ``conv``, ``attention``, ``norm``, ``softmax``,
``embedding``, ``reduction``, ``elementwise``, ``view`` (metadata only: no cost),
``comm`` (collectives: bytes only) and ``other`` (an unrecognised name, costed as a
memory-bound elementwise op and reported by the importers as a guess).

Examples
--------
>>> cost = estimate("aten::mm", [TensorShape((64, 128), 4), TensorShape((128, 32), 4)],
...                 [TensorShape((64, 32), 4)])
>>> cost.kind, cost.flops, cost.bytes
('matmul', 524288.0, 57344.0)
>>> round(Roofline(peak_flops=1e12, bandwidth=1e9, flop_efficiency=1, bandwidth_efficiency=1)
...       .time(cost.flops, cost.bytes), 9)
5.7344e-05
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

#: Peak dense BF16 FLOP/s of one NVIDIA H100 SXM (the default roofline).
DEFAULT_PEAK_FLOPS = 989e12
#: HBM3 bandwidth of one NVIDIA H100 SXM, bytes per second.
DEFAULT_BANDWIDTH = 3.35e12
DEFAULT_FLOP_EFFICIENCY = 0.5
DEFAULT_BANDWIDTH_EFFICIENCY = 0.8


@dataclass(frozen=True)
class Roofline:
    """A roofline machine model.

    Parameters
    ----------
    peak_flops : float
        Peak FLOP/s.
    bandwidth : float
        Memory bandwidth, bytes per second.
    flop_efficiency, bandwidth_efficiency : float
        Fractions of the peaks an op reaches, in (0, 1].
    overhead : float
        Fixed seconds added to every op (launch overhead).

    Examples
    --------
    >>> Roofline().time(0, 0)
    0.0
    >>> Roofline(peak_flops=2e12, flop_efficiency=0.5).time(1e12, 0)
    1.0
    """

    peak_flops: float = DEFAULT_PEAK_FLOPS
    bandwidth: float = DEFAULT_BANDWIDTH
    flop_efficiency: float = DEFAULT_FLOP_EFFICIENCY
    bandwidth_efficiency: float = DEFAULT_BANDWIDTH_EFFICIENCY
    overhead: float = 0.0

    def __post_init__(self) -> None:
        for name in ("peak_flops", "bandwidth", "flop_efficiency", "bandwidth_efficiency"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"roofline {name} must be a positive number, got {value!r}")
        if self.flop_efficiency > 1 or self.bandwidth_efficiency > 1:
            raise ValueError("roofline efficiencies must be at most 1")
        if not (math.isfinite(self.overhead) and self.overhead >= 0):
            raise ValueError(f"roofline overhead must be >= 0, got {self.overhead!r}")

    def time(self, flops: float, nbytes: float) -> float:
        """Seconds for an op doing ``flops`` FLOPs and moving ``nbytes`` bytes."""
        compute = flops / (self.peak_flops * self.flop_efficiency)
        memory = nbytes / (self.bandwidth * self.bandwidth_efficiency)
        return self.overhead + max(compute, memory)

    def describe(self) -> dict[str, float]:
        """The model's figures, for a trace's ``meta``."""
        return {
            "peak_flops": self.peak_flops, "bandwidth": self.bandwidth,
            "flop_efficiency": self.flop_efficiency,
            "bandwidth_efficiency": self.bandwidth_efficiency, "overhead": self.overhead,
        }


@dataclass(frozen=True)
class TensorShape:
    """The shape and element size of one tensor argument.

    Examples
    --------
    >>> TensorShape((2, 3), 4).nbytes
    24
    """

    shape: tuple[int, ...]
    itemsize: int

    @property
    def numel(self) -> int:
        """Number of elements (1 for a scalar)."""
        n = 1
        for d in self.shape:
            n *= max(int(d), 0)
        return n

    @property
    def nbytes(self) -> int:
        """Bytes of the elements (not of the storage)."""
        return self.numel * self.itemsize


@dataclass(frozen=True)
class OpCost:
    """The estimated work of one op.

    Attributes
    ----------
    kind : str
        The op class (``matmul``, ``conv``, ... see the module docstring).
    flops : float
        Floating-point operations.
    bytes : float
        Bytes read and written.
    known : bool
        False when the name was not recognised (the cost is a guess).
    """

    kind: str
    flops: float
    bytes: float
    known: bool = True


_MATMUL = frozenset({"mm", "matmul", "bmm", "addmm", "baddbmm", "addbmm", "addmv", "mv", "dot", "linear",
           "gemm", "_scaled_mm", "_addmm_activation", "einsum", "tensordot", "fused_linear", "qlinear"})
_CONV = frozenset({"conv1d", "conv2d", "conv3d", "convolution", "_convolution", "cudnn_convolution",
         "mkldnn_convolution", "conv", "convinteger", "qlinearconv", "_nnpack_spatial_convolution",
         "thnn_conv2d", "slow_conv2d", "conv_depthwise2d", "_conv_depthwise2d"})
_CONV_TRANSPOSE = frozenset({"conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "convtranspose",
                   "cudnn_convolution_transpose", "slow_conv_transpose2d"})
_ATTENTION = frozenset({"scaled_dot_product_attention", "_scaled_dot_product_flash_attention",
              "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_efficient_attention",
              "_scaled_dot_product_cudnn_attention", "_flash_attention_forward",
              "_efficient_attention_forward", "attention", "multiheadattention", "_native_multi_head_attention",
              "flash_attn", "flex_attention", "_scaled_dot_product_fused_attention_overrideable"})
_NORM = frozenset({"layer_norm", "native_layer_norm", "batch_norm", "native_batch_norm", "_batch_norm_impl_index",
         "cudnn_batch_norm", "group_norm", "native_group_norm", "instance_norm", "rms_norm", "_fused_rms_norm",
         "layernormalization", "batchnormalization", "groupnormalization", "instancenormalization",
         "simplifiedlayernormalization", "rmsnormalization", "_native_batch_norm_legit",
         "_native_batch_norm_legit_no_training", "lpnormalization", "miopen_batch_norm"})
_SOFTMAX = frozenset({"softmax", "_softmax", "log_softmax", "_log_softmax", "logsoftmax", "cross_entropy_loss",
            "nll_loss", "nll_loss_forward", "nll_loss2d", "softmaxcrossentropyloss", "hardmax",
            "_safe_softmax"})
_EMBEDDING = frozenset({"embedding", "embedding_bag", "_embedding_bag", "_embedding_bag_forward_only", "gather",
              "gatherelements", "gathernd", "index_select", "index", "take", "scatter", "scatter_add",
              "scatterelements", "scatternd", "index_put", "index_add", "_index_put_impl"})
_REDUCTION = frozenset({"sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "norm", "linalg_vector_norm",
              "prod", "var", "std", "var_mean", "std_mean", "logsumexp", "cumsum", "cumprod", "all", "any",
              "reducesum", "reducemean", "reducemax", "reducemin", "reduceprod", "reducel2", "reducel1",
              "reducelogsumexp", "reducesumsquare", "globalaveragepool", "globalmaxpool", "topk", "sort",
              "_foreach_norm", "count_nonzero", "cumsum_", "nansum", "aminmax"})
_VIEW = frozenset({"view", "_unsafe_view", "reshape", "_reshape_alias", "t", "transpose", "permute", "expand",
         "expand_as", "as_strided", "slice", "select", "squeeze", "unsqueeze", "detach", "alias", "unbind",
         "split", "split_with_sizes", "chunk", "narrow", "empty", "empty_like", "empty_strided",
         "new_empty", "new_empty_strided", "lift_fresh", "lift", "resolve_conj", "resolve_neg",
         "view_as", "unflatten", "flatten", "numpy_t", "mt", "diagonal", "movedim", "swapaxes",
         "unfold", "real", "imag", "view_as_real", "view_as_complex", "_nested_view_from_buffer",
         "size", "stride", "dim", "is_nonzero", "set_", "contiguous", "_to_copy_view", "constant",
         "shape", "identity", "squeeze_", "unsqueeze_", "record_stream", "_has_compatible_shallow_copy_type",
         "detach_", "requires_grad_", "retain_grad", "sym_size", "sym_stride", "sym_numel",
         "_local_scalar_dense", "item", "to", "type_as", "lift_fresh_copy_view", "dropout_identity",
         "empty_permuted", "_assert_tensor_metadata", "_assert_async", "output", "placeholder",
         "getitem", "getattr", "_unsafe_index_view", "accumulategrad", "alias_copy", "view_copy_view",
         "constantofshape_view"})
_COMM = frozenset({"all_reduce", "allreduce", "all_gather", "allgather", "reduce_scatter", "_reduce_scatter_base",
         "_allgather_base", "all_to_all", "alltoall", "alltoall_base", "broadcast", "send", "recv",
         "barrier", "record_param_comms", "_allgather_into_tensor_coalesced", "allgather_into_tensor_coalesced",
         "reduce_scatter_tensor_coalesced", "wait", "wait_tensor", "all_reduce_coalesced", "gather_object"})
# A deliberately broad list: names that are memory-bound pointwise work, so not a guess.
_ELEMENTWISE = frozenset({
    "add", "sub", "mul", "div", "neg", "abs", "exp", "exp2", "expm1", "log", "log1p", "log2", "sqrt", "rsqrt",
    "pow", "relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardtanh", "hardswish", "hardsigmoid",
    "leaky_relu", "elu", "selu", "celu", "mish", "softplus", "threshold", "threshold_backward",
    "clamp", "clamp_min", "clamp_max", "clip", "where", "masked_fill", "fill", "zero", "zeros", "zeros_like",
    "ones", "ones_like", "full", "full_like", "copy", "clone", "_to_copy", "contiguous_copy", "lerp",
    "addcmul", "addcdiv", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge", "logical_and",
    "logical_or", "logical_not", "bitwise_and", "bitwise_or", "bitwise_not", "floor", "ceil", "round",
    "trunc", "sign", "reciprocal", "square", "sin", "cos", "erf", "erfinv", "dropout", "native_dropout",
    "native_dropout_backward", "bernoulli", "rand", "randn", "rand_like", "randn_like", "normal", "uniform",
    "randint", "arange", "linspace", "cat", "concat", "stack", "pad", "constant_pad_nd", "reflection_pad2d",
    "repeat", "tile", "flip", "roll", "tril", "triu", "masked_select", "nonzero", "cast", "sigmoid_backward",
    "tanh_backward", "gelu_backward", "silu_backward", "hardtanh_backward", "leaky_relu_backward",
    "elu_backward", "relu_backward", "mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_backward", "mse_loss_backward",
    "max_pool2d", "max_pool2d_with_indices", "max_pool2d_with_indices_backward", "avg_pool2d",
    "avg_pool2d_backward", "adaptive_avg_pool2d", "_adaptive_avg_pool2d", "_adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d", "maxpool", "averagepool", "upsample_nearest2d", "upsample_bilinear2d",
    "resize", "interpolate", "sum_to_size", "fmod", "remainder", "isnan", "isinf", "isfinite",
    "nan_to_num", "_foreach_add", "_foreach_mul", "_foreach_div", "_foreach_sub", "_foreach_addcmul",
    "_foreach_addcdiv", "_foreach_lerp", "_foreach_sqrt", "_foreach_neg", "_foreach_zero", "_foreach_copy",
    "_foreach_maximum", "_foreach_pow", "_foreach_mul_", "_fused_adam", "_fused_adamw", "_fused_sgd",
    "_fused_adagrad", "erfc", "prelu", "glu", "logit", "softshrink", "hardshrink", "mul_scalar",
    "add_scalar", "_log_softmax_backward_data", "_softmax_backward_data", "nll_loss_backward",
    "native_layer_norm_backward", "native_batch_norm_backward", "cudnn_batch_norm_backward",
    "embedding_backward", "embedding_dense_backward", "_embedding_bag_backward", "index_put_",
    "masked_scatter", "_masked_scale", "greater", "less", "equal", "not", "and", "or", "xor", "min_max",
    "relu_", "sum_backward", "expand_backward", "_pin_memory", "pin_memory", "bias_add", "biasadd",
    "dequantizelinear", "quantizelinear", "scalar_tensor", "new_zeros", "new_ones", "new_full",
    "_foreach_add_", "_amp_foreach_non_finite_check_and_unscale", "_amp_update_scale", "rsub",
    "addcmul_", "sgn", "fill_", "zero_", "copy_", "native_group_norm_backward", "linalg_vector_norm_backward",
    "_fused_dropout", "one_hot", "tanh_", "sigmoid_", "mul_", "div_", "sub_", "_foreach_clamp_min",
    "_foreach_clamp_max",
})


def normalize_op_name(name: str) -> str:
    """Reduce an op name from any framework to the lower-case base name used for classification.

    Strips namespaces (``aten::``), overloads (``.Tensor``), the in-place ``_`` suffix, ONNX
    domains, and autograd wrappers (``autograd::engine::evaluate_function: AddmmBackward0``
    becomes ``addmmbackward0``).

    Examples
    --------
    >>> normalize_op_name("aten::add_.Tensor"), normalize_op_name("MatMul"), normalize_op_name("conv2d")
    ('add', 'matmul', 'conv2d')
    """
    base = name.strip()
    if ": " in base:
        base = base.rsplit(": ", 1)[1]
    base = base.rsplit("::", 1)[-1]
    if "." in base and not base.startswith("."):
        base = base.split(".", 1)[0]
    base = base.lower()
    if base.endswith("_") and not base.endswith("__") and len(base) > 1:
        base = base[:-1]
    return base


_BACKWARD_RE = re.compile(r"_?backward\d*$")


def classify(name: str) -> tuple[str, bool]:
    """The op class of ``name`` and whether the name was recognised.

    Examples
    --------
    >>> classify("aten::linear"), classify("Conv"), classify("aten::frobnicate")
    (('matmul', True), ('conv', True), ('other', False))
    """
    base = normalize_op_name(name)
    fwd = _BACKWARD_RE.sub("", base) if "backward" in base else base
    for names, kind in ((_VIEW, "view"), (_MATMUL, "matmul"), (_CONV, "conv"), (_CONV_TRANSPOSE, "conv"),
                        (_ATTENTION, "attention"), (_NORM, "norm"), (_SOFTMAX, "softmax"),
                        (_EMBEDDING, "embedding"), (_REDUCTION, "reduction"), (_COMM, "comm"),
                        (_ELEMENTWISE, "elementwise")):
        if base in names:
            return kind, True
    if base.startswith(("convolution_backward", "cudnn_convolution_backward", "mkldnn_convolution_backward")):
        return "conv", True
    if "attention" in base:
        return "attention", True
    if fwd != base and fwd in _VIEW:
        return "elementwise", True  # the backward of a view materialises a gradient
    for names, kind in ((_MATMUL, "matmul"), (_CONV, "conv"), (_NORM, "norm"), (_SOFTMAX, "softmax"),
                        (_EMBEDDING, "embedding"), (_REDUCTION, "reduction"), (_ELEMENTWISE, "elementwise")):
        if fwd in names:
            return kind, True
    if base.startswith(("nccl", "c10d", "gloo")) or "all_reduce" in base or "allreduce" in base:
        return "comm", True
    return "other", False


def _sum_bytes(shapes: Sequence[TensorShape]) -> float:
    return float(sum(s.nbytes for s in shapes))


def _matmul_flops(name: str, inputs: Sequence[TensorShape], outputs: Sequence[TensorShape],
                  trans_a: bool = False) -> float:
    if not outputs:
        return 0.0
    base = normalize_op_name(name)
    mats = [s for s in inputs if len(s.shape) >= 1]
    if base in {"addmm", "baddbmm", "addbmm", "addmv", "_addmm_activation"} and len(mats) >= 3:
        mats = mats[1:]
    if not mats:
        return 0.0
    a = mats[0].shape
    k = a[-2] if trans_a and len(a) >= 2 else a[-1]
    return 2.0 * outputs[0].numel * max(int(k), 0)


def _conv_flops(name: str, inputs: Sequence[TensorShape], outputs: Sequence[TensorShape]) -> float:
    base = normalize_op_name(name)
    if len(inputs) < 2 or not outputs:
        return 0.0
    if base.startswith(("convolution_backward", "cudnn_convolution_backward", "mkldnn_convolution_backward")) \
            or "backward" in base:
        # inputs: grad_output, input, weight; gradients for input and weight, 2x the forward
        grad_out, weight = inputs[0], inputs[2] if len(inputs) > 2 else inputs[-1]
        if not weight.shape or weight.shape[0] == 0:
            return 0.0
        return 2.0 * 2.0 * grad_out.numel * weight.numel / weight.shape[0]
    weight = inputs[1]
    if not weight.shape or weight.shape[0] == 0:
        return 0.0
    if base in _CONV_TRANSPOSE:
        return 2.0 * inputs[0].numel * weight.numel / weight.shape[0]
    return 2.0 * outputs[0].numel * weight.numel / weight.shape[0]


def _attention_flops(name: str, inputs: Sequence[TensorShape]) -> float:
    qkv = [s for s in inputs if len(s.shape) >= 3][:3]
    if len(qkv) < 3:
        return 0.0
    q, k, v = (s.shape for s in qkv)
    batch = 1
    for d in q[:-2]:
        batch *= int(d)
    flops = 2.0 * batch * q[-2] * k[-2] * q[-1] + 2.0 * batch * q[-2] * k[-2] * v[-1]
    return flops * 2.5 if "backward" in normalize_op_name(name) else flops


def estimate(name: str, inputs: Sequence[TensorShape], outputs: Sequence[TensorShape],
             trans_a: bool = False) -> OpCost:
    """Estimate the FLOPs and bytes of one op from its name and argument shapes.

    Parameters
    ----------
    name : str
        The op name, any framework (``aten::addmm``, ``Gemm``).
    inputs, outputs : sequence of TensorShape
        The tensor arguments in order (non-tensor arguments left out).
    trans_a : bool
        For ``Gemm``: the first operand is transposed.

    Returns
    -------
    OpCost
        ``known`` is False when the name was not recognised (costed as elementwise).

    Examples
    --------
    >>> estimate("Relu", [TensorShape((10,), 4)], [TensorShape((10,), 4)])
    OpCost(kind='elementwise', flops=10.0, bytes=80.0, known=True)
    >>> estimate("aten::view", [TensorShape((10,), 4)], [TensorShape((2, 5), 4)]).bytes
    0.0
    """
    kind, known = classify(name)
    nbytes = _sum_bytes(inputs) + _sum_bytes(outputs)
    if kind == "view":
        return OpCost("view", 0.0, 0.0, True)
    if kind == "matmul":
        return OpCost(kind, _matmul_flops(name, inputs, outputs, trans_a), nbytes, True)
    if kind == "conv":
        return OpCost(kind, _conv_flops(name, inputs, outputs), nbytes, True)
    if kind == "attention":
        return OpCost(kind, _attention_flops(name, inputs), nbytes, True)
    if kind == "comm":
        return OpCost(kind, 0.0, nbytes, True)
    numel = max([s.numel for s in outputs] + [s.numel for s in inputs] + [0])
    per_elem = {"norm": 8.0, "softmax": 5.0}.get(kind, 1.0)
    return OpCost(kind, per_elem * numel, nbytes, known)
