"""Importer ``torch``: trace a PyTorch model's forward and backward with fake tensors.

Sources
    ``package.module:Name`` or ``path/to/file.py:Name`` where ``Name`` is an ``nn.Module``
    class (built with no arguments on the ``meta`` device: no real memory), an ``nn.Module``
    instance, a factory function taking no arguments, or a function of the example inputs; or
    a program saved with ``torch.export.save`` (``.pt2``), whose module is traced again.
    Python callers may pass the module or function object itself.
Example inputs
    ``--input-shape 8x128`` once per positional input, in order, with an optional dtype
    suffix (``8x128:int64``; default float32). A ``.pt2`` program brings its own.
Tracing
    ``make_fx`` in fake-tensor mode traces ``loss = sum of the model's floating outputs`` and
    ``torch.autograd.grad(loss, parameters)`` (``--forward-only``: the forward alone) into one
    ATen graph; nothing runs and nothing is allocated.
What it keeps
    One op per ATen call that allocates or writes memory; view ops (no new storage, no
    write) are folded into their users. Tensors are storages (views share them); sizes are
    the storages' bytes. Parameters are persistent weights, buffers persistent ``other``,
    example inputs ``input``; results up to the loss are activations, later ones gradients;
    the graph's outputs (loss, parameter gradients) are persistent. Durations are roofline
    estimates (:mod:`solver.importers.roofline`), stated in ``meta``.

Needs the optional ``torch`` package (``pip install 'tierplan[torch]'``).

Examples
--------
>>> import torch  # doctest: +SKIP
>>> r = import_torch(torch.nn.Linear(16, 4), input_shapes=["8x16"])  # doctest: +SKIP
>>> sorted(t["kind"] for t in r.document["tensors"])  # doctest: +SKIP
['activation', 'activation', 'gradient', 'gradient', ..., 'input', 'weight', 'weight']
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from solver.errors import InputError
from solver.importers.result import ImportResult, op_entry, safe_id, tensor_entry, top_counts, trace_document
from solver.importers.roofline import Roofline, TensorShape, estimate
from solver.importers.shapes import parse_shape_spec

_DTYPES: Mapping[str, str] = MappingProxyType({
    "float32": "float32", "float": "float32", "fp32": "float32", "f32": "float32",
    "float16": "float16", "half": "float16", "fp16": "float16", "f16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16", "float64": "float64", "double": "float64", "fp64": "float64",
    "int64": "int64", "long": "int64", "int32": "int32", "int": "int32", "int16": "int16", "int8": "int8",
    "uint8": "uint8", "bool": "bool",
})


def require_torch() -> Any:
    """Import ``torch`` or raise ImportError with the install hint."""
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("the torch importer needs PyTorch: pip install 'tierplan[torch]' "
                          "(CPU build: pip install torch==2.13.0)") from None
    return torch


def _resolve(spec: str) -> Any:
    """``module:attr`` or ``file.py:attr`` -> the object."""
    mod_part, sep, attr = spec.rpartition(":")
    if not sep or not mod_part or not attr:
        raise InputError.single(spec, "", "expected module:Name, path/to/file.py:Name, or a .pt2 file")
    try:
        if mod_part.endswith(".py") or os.sep in mod_part or "/" in mod_part:
            if not os.path.isfile(mod_part):
                raise InputError.single(mod_part, "", "no such Python file")
            name = "_tierplan_import_" + safe_id(os.path.splitext(os.path.basename(mod_part))[0])
            loader_spec = importlib.util.spec_from_file_location(name, mod_part)
            if loader_spec is None or loader_spec.loader is None:
                raise InputError.single(mod_part, "", "cannot load this file as a Python module")
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(mod_part)
    except InputError:
        raise
    except Exception as exc:
        raise InputError.single(spec, "", f"cannot import {mod_part!r}: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InputError.single(spec, "", f"{mod_part!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _example_inputs(torch: Any, input_shapes: Sequence[Any] | None) -> list[Any]:
    out = []
    for item in input_shapes or []:
        if isinstance(item, torch.Tensor):
            out.append(item.to("meta"))
            continue
        if isinstance(item, str):
            try:
                dims, dtype = parse_shape_spec(item)
            except ValueError as exc:
                raise InputError.single("--input-shape", item, str(exc)) from None
        else:
            dims, dtype = tuple(int(d) for d in item), None
        key = _DTYPES.get((dtype or "float32").lower())
        if key is None:
            raise InputError.single("--input-shape", str(item), f"unknown dtype {dtype!r}; use one of "
                                    + ", ".join(sorted(set(_DTYPES.values()))))
        out.append(torch.empty(dims, dtype=getattr(torch, key), device="meta"))
    return out


def _required_params(fn: Any) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    return sum(1 for p in sig.parameters.values()
               if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _model_from(torch: Any, source: Any, label: str) -> tuple[Any, list[Any] | None, str]:
    """(module or function, example inputs if the source brings them, description)."""
    if isinstance(source, (str, os.PathLike)) and str(source).endswith((".pt2", ".pt")) and os.path.isfile(source):
        path = os.fspath(source)
        try:
            ep = torch.export.load(path)
        except Exception as exc:
            raise InputError.single(path, "", f"not a readable torch.export program: {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        examples = None
        try:
            ex = ep.example_inputs
            if ex is not None:
                examples = [t.to("meta") for t in ex[0] if isinstance(t, torch.Tensor)]
        except Exception:
            examples = None
        return ep.module(), examples, "torch.export program"
    obj = _resolve(str(source)) if isinstance(source, (str, os.PathLike)) else source
    nn = torch.nn
    try:
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            with torch.device("meta"):
                return obj(), None, f"nn.Module class {obj.__name__} (built on meta)"
        if isinstance(obj, nn.Module):
            return obj, None, f"nn.Module {type(obj).__name__}"
        if callable(obj) and _required_params(obj) == 0:
            with torch.device("meta"):
                built = obj()
            if isinstance(built, nn.Module) or callable(built):
                return built, None, f"factory {getattr(obj, '__name__', label)}"
            raise InputError.single(label, "", "the factory returned neither an nn.Module nor a callable")
        if callable(obj):
            return obj, None, f"function {getattr(obj, '__name__', label)}"
    except InputError:
        raise
    except Exception as exc:
        raise InputError.single(label, "", f"cannot build the model: {type(exc).__name__}: {exc}") from None
    raise InputError.single(label, "", f"{type(obj).__name__} is not an nn.Module, a class or a function")


def _model_device(torch: Any, model: Any) -> Any:
    if isinstance(model, torch.nn.Module):
        for t in list(model.parameters()) + list(model.buffers()):
            return t.device
    return None


def _trace(torch: Any, model: Any, inputs: list[Any], forward_only: bool) -> tuple[Any, list[str], int, int]:
    """The joint graph, parameter names, number of buffers, number of example inputs."""
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.func import functional_call

    is_module = isinstance(model, torch.nn.Module)
    params = dict(model.named_parameters()) if is_module else {}
    buffers = dict(model.named_buffers()) if is_module else {}
    names = list(params)

    def reduce(out: Any) -> Any:
        leaves = [t for t in torch.utils._pytree.tree_leaves(out)
                  if isinstance(t, torch.Tensor) and t.is_floating_point()]
        if not leaves:
            raise InputError.single("<model>", "", "the model returns no floating-point tensor to differentiate")
        loss = leaves[0].float().sum()
        for t in leaves[1:]:
            loss = loss + t.float().sum()
        return loss

    def step(p: dict[str, Any], b: dict[str, Any], *xs: Any) -> Any:
        wrt = list(p.values())
        if not forward_only and not p:
            xs = tuple(x.requires_grad_() if x.is_floating_point() else x for x in xs)
            wrt = [x for x in xs if x.is_floating_point()]
            if not wrt:
                raise InputError.single("<model>", "", "nothing to differentiate: no parameters and no "
                                        "floating inputs (use --forward-only)")
        out = functional_call(model, {**p, **b}, xs) if is_module else model(*xs)
        if forward_only:
            return out
        loss = reduce(out)
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
        return loss, grads

    if not is_module:
        inputs = [x.detach() for x in inputs]
    gm = make_fx(step, tracing_mode="fake")(params, buffers, *inputs)
    gm.graph.eliminate_dead_code()
    return gm, names, len(buffers), len(inputs)


def import_torch(source: Any, *, input_shapes: Sequence[Any] | None = None, forward_only: bool = False,
                 roofline: Roofline | None = None, name: str | None = None) -> ImportResult:
    """Trace a PyTorch model or function (forward and backward, fake tensors) into a trace document.

    Parameters
    ----------
    source : str, path or object
        ``module:Name``, ``file.py:Name``, a ``.pt2`` torch.export program, or the module/function.
    input_shapes : sequence, optional
        One example input per positional argument: ``"8x128"``, ``"8x128:int64"``, a shape tuple,
        or a tensor (its shape and dtype are used). Required unless a ``.pt2`` brings examples.
    forward_only : bool
        Trace the forward pass only.
    roofline : Roofline, optional
        Cost model for durations (default :class:`Roofline()`).
    name : str, optional
        Trace name.

    Returns
    -------
    ImportResult

    Raises
    ------
    InputError
        An unimportable source, missing or bad input shapes, or a model that cannot be traced.
    ImportError
        When torch is not installed.
    """
    torch = require_torch()
    label = str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__
    model, examples, described = _model_from(torch, source, label)
    inputs = _example_inputs(torch, input_shapes) if input_shapes else (examples or [])
    device = _model_device(torch, model)
    if device is not None and device.type != "meta":
        # a module with real parameters: example inputs must share their device (make_fx fakes them all)
        inputs = [torch.empty(x.shape, dtype=x.dtype, device=device) for x in inputs]
    if not inputs:
        raise InputError.single(label, "", "no example inputs: give one --input-shape per model input "
                                "(e.g. --input-shape 8x128)")
    warnings: list[str] = []
    try:
        gm, param_names, n_buffers, n_inputs = _trace(torch, model, inputs, forward_only)
    except InputError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError.single(label, "", f"tracing failed: {type(exc).__name__}: {text[:300]}") from None
    return _graph_to_trace(torch, gm, param_names, n_buffers, n_inputs, forward_only, roofline or Roofline(),
                           name or _default_name(label), label, described, warnings)


def _default_name(label: str) -> str:
    base = label.rsplit(":", 1)[-1] if ":" in label else os.path.basename(label)
    return safe_id(base.rsplit(".", 1)[0] if base.endswith((".pt2", ".pt")) else base, 60)


def _graph_to_trace(torch: Any, gm: Any, param_names: list[str], n_buffers: int, n_inputs: int,
                    forward_only: bool, model_rl: Roofline, trace_name: str, label: str, described: str,
                    warnings: list[str]) -> ImportResult:
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.utils._pytree import tree_leaves

    def key_of(val: Any) -> Any:
        try:
            return StorageWeakRef(val.untyped_storage()).cdata
        except Exception:
            return ("tensor", id(val))

    def nbytes_of(val: Any) -> int:
        try:
            return int(val.untyped_storage().nbytes())
        except Exception:
            return int(val.numel() * val.element_size())

    def shape_of(val: Any) -> TensorShape:
        return TensorShape(tuple(int(d) for d in val.shape), int(val.element_size()))

    nodes = list(gm.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    tensors: dict[Any, dict[str, Any]] = {}
    order: list[Any] = []
    kinds: list[str] = ["weight"] * len(param_names) + ["other"] * n_buffers + ["input"] * n_inputs
    labels: list[str] = ([f"param:{p}" for p in param_names] + [f"buffer:{i}" for i in range(n_buffers)]
                         + [f"input{i}" for i in range(n_inputs)])
    for i, ph in enumerate(placeholders):
        val = ph.meta.get("val")
        if not isinstance(val, torch.Tensor):
            continue
        k = key_of(val)
        if k in tensors:
            continue
        kind = kinds[i] if i < len(kinds) else "input"
        tensors[k] = {"id": labels[i] if i < len(labels) else ph.name, "bytes": nbytes_of(val), "kind": kind,
                      "persistent": kind in ("weight", "other")}
        order.append(k)
    out_node = next(n for n in nodes if n.op == "output")
    out_leaves = [a for a in tree_leaves(out_node.args) if hasattr(a, "meta")]
    loss_node = out_leaves[0] if out_leaves and not forward_only else None
    position = {n: i for i, n in enumerate(nodes)}
    loss_pos = position.get(loss_node, len(nodes)) if loss_node is not None else len(nodes)

    ops: list[dict[str, Any]] = []
    folded = 0
    unknown: Counter = Counter()
    non_tensor = 0
    for n in nodes:
        if n.op != "call_function":
            continue
        schema = getattr(n.target, "_schema", None)
        opname = schema.name if schema is not None else getattr(n.target, "__name__", str(n.target))
        vals = [v for v in tree_leaves(n.meta.get("val")) if isinstance(v, torch.Tensor)]
        arg_nodes = [a for a in tree_leaves((n.args, n.kwargs)) if hasattr(a, "meta")]
        in_vals = [a.meta.get("val") for a in arg_nodes if isinstance(a.meta.get("val"), torch.Tensor)]
        written: set[Any] = set()
        if schema is not None:
            for arg, value in zip(schema.arguments, n.args):
                if arg.alias_info is not None and arg.alias_info.is_write:
                    for leaf in tree_leaves(value):
                        if hasattr(leaf, "meta") and isinstance(leaf.meta.get("val"), torch.Tensor):
                            written.add(key_of(leaf.meta["val"]))
            for arg in schema.arguments:
                if arg.alias_info is not None and arg.alias_info.is_write and arg.name in n.kwargs:
                    for leaf in tree_leaves(n.kwargs[arg.name]):
                        if hasattr(leaf, "meta") and isinstance(leaf.meta.get("val"), torch.Tensor):
                            written.add(key_of(leaf.meta["val"]))
        new: list[Any] = []
        for v in vals:
            k = key_of(v)
            if k not in tensors and k not in new:
                new.append(k)
                b = nbytes_of(v)
                if b <= 0:
                    continue
                tensors[k] = {"id": f"t:{n.name}" if len(vals) == 1 else f"t:{n.name}.{len(new) - 1}",
                              "bytes": b, "kind": "activation" if position[n] <= loss_pos else "gradient",
                              "persistent": False}
                order.append(k)
        if not vals and not in_vals:
            non_tensor += 1
            continue
        new = [k for k in new if k in tensors]
        if not new and not written:
            folded += 1
            continue
        reads: list[str] = []
        updates: list[str] = []
        for v in in_vals:
            k = key_of(v)
            if k not in tensors or k in new:
                continue
            tid = tensors[k]["id"]
            target = updates if k in written else reads
            if tid not in target:
                target.append(tid)
        reads = [r for r in reads if r not in updates]
        cost = estimate(opname, [shape_of(v) for v in in_vals], [shape_of(v) for v in vals])
        if not cost.known:
            unknown[opname] += 1
        ops.append(op_entry(n.name, model_rl.time(cost.flops, cost.bytes), cost.kind, inputs=reads,
                            outputs=[tensors[k]["id"] for k in new], updates=updates))
    for leaf in out_leaves:
        val = leaf.meta.get("val")
        if isinstance(val, torch.Tensor) and key_of(val) in tensors:
            tensors[key_of(val)]["persistent"] = True
    used = {t for op in ops for t in op["inputs"] + op["outputs"] + op["updates"]}
    unused = [tensors[k]["id"] for k in order if tensors[k]["id"] not in used]
    doc_tensors = [tensor_entry(tensors[k]["id"], tensors[k]["bytes"], tensors[k]["kind"], tensors[k]["persistent"])
                   for k in order if tensors[k]["id"] in used or tensors[k]["persistent"]]
    if unused:
        warnings.append(f"{len(unused)} graph inputs are used by no op that allocates or writes memory (kept "
                        "when persistent): " + ", ".join(unused[:6]))
    if folded:
        warnings.append(f"folded {folded} view ops (no new storage, no write) into their users")
    if unknown:
        warnings.append(f"{sum(unknown.values())} calls of unrecognised ops were costed as memory-bound "
                        f"elementwise work: {top_counts(unknown)}")
    warnings.append("durations are roofline estimates from op names and shapes")
    meta = {
        "importer": "torch", "source": label, "traced": described, "torch": str(torch.__version__),
        "graph": "forward" if forward_only else "forward+backward (loss = sum of floating outputs)",
        "durations": "roofline", "roofline": model_rl.describe(), "aten_nodes": len(nodes),
        "parameters": len(param_names),
    }
    return ImportResult(trace_document(trace_name, doc_tensors, ops, meta, warnings), tuple(warnings))


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: tierplan import torch SOURCE --input-shape DIMS -o TRACE.json.gz")
