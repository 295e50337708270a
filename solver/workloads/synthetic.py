"""Small synthetic graphs: a chain with skip connections, and random DAGs.

These are for tests and exact-solver studies: sizes and durations are drawn
directly (no roofline), uniformly within ``±jitter`` of the given base values,
from :class:`random.Random` seeded with the seed (only ``random()`` is used, whose
sequence Python keeps stable across versions).

Examples
--------
>>> wl = build_chain(ChainOptions(layers=4, skip=2), seed=0)
>>> [op.id for op in wl.ops][:5]
['f1', 'f2', 'f3', 'f4', 'loss']
>>> len(build_random(RandomOptions(ops=20), seed=0).ops)
20
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from solver.workloads.builder import TraceBuilder, Workload, unique
from solver.workloads.options import Where, opt, options_to_dict


def _draw(rng: random.Random, base: float, jitter: float) -> float:
    """Uniform in [base (1 - jitter), base (1 + jitter)]."""
    return base * (1.0 + jitter * (2.0 * rng.random() - 1.0))


def _tier(t: str, compute: str) -> str | None:
    return t if t != compute else None


@dataclass(frozen=True)
class ChainOptions:
    """Options of the ``chain`` generator.

    Examples
    --------
    >>> ChainOptions().layers
    8
    """

    layers: int = opt(8, "forward ops in the chain", check="positive")
    skip: int = opt(2, "op i also reads the output of op i - skip when i is a multiple of skip "
                    "(0 or 1: no skip connections)", check="nonneg")
    backward: bool = opt(True, "add a loss and backward ops mirroring the chain")
    optimizer: bool = opt(False, "add one update op per weight after the backward pass")
    activation_bytes: int = opt(16 * 2**20, "mean activation size", unit="size", check="positive")
    weight_bytes: int = opt(4 * 2**20, "mean weight size (0: no weights)", unit="size", check="nonneg")
    op_time: float = opt(1e-3, "mean forward op duration (backward ops take twice as long)", unit="time",
                         check="nonneg")
    jitter: float = opt(0.5, "relative spread of sizes and durations", check="unit")
    weights_tier: str = opt("HBM", "tier where the weights start")
    compute_tier: str = opt("HBM", "name of the hardware's compute tier")


def build_chain(opts: ChainOptions, seed: int = 0, where: Where = Where()) -> Workload:
    """A chain ``f1 .. fn`` with skip connections, optionally followed by its backward pass.

    Examples
    --------
    >>> wl = build_chain(ChainOptions(layers=3, skip=0, backward=False, weight_bytes=0))
    >>> [(op.inputs, op.outputs) for op in wl.ops]
    [(('a0',), ('a1',)), (('a1',), ('a2',)), (('a2',), ('a3',))]
    """
    rng = random.Random(seed)
    n, k = opts.layers, opts.skip
    tb = TraceBuilder()

    def size(base: int) -> int:
        return max(1, round(_draw(rng, base, opts.jitter)))

    def time(base: float) -> float:
        return max(0.0, _draw(rng, base, opts.jitter))

    winit = _tier(opts.weights_tier, opts.compute_tier)
    weights = [tb.tensor(f"w{i}", size(opts.weight_bytes), "weight", initial_tier=winit, persistent=True,
                         final_tier=winit) if opts.weight_bytes else None for i in range(1, n + 1)]
    acts = [tb.tensor("a0", size(opts.activation_bytes), "input")]
    for i in range(1, n + 1):
        a = tb.tensor(f"a{i}", size(opts.activation_bytes), "activation")
        ins = [acts[i - 1]]
        if k > 1 and i % k == 0:
            ins.append(acts[i - k])
        w = weights[i - 1]
        if w is not None:
            ins.append(w)
        tb.op(f"f{i}", "layer", ins, (a,), duration=time(opts.op_time))
        acts.append(a)
    if opts.backward:
        loss = tb.tensor("loss_val", 4, "activation")
        g = tb.tensor(f"g{n}", tb.size(acts[n]), "gradient")
        tb.op("loss", "loss", (acts[n],), (loss, g), duration=time(opts.op_time / 4))
        skip_grads: dict[int, list[str]] = {}   # activation j -> gradient contributions from skips
        grads_w = []
        for i in range(n, 0, -1):
            outs = []
            if i > 1:         # no gradient for the input a0
                outs.append(tb.tensor(f"g{i - 1}", tb.size(acts[i - 1]), "gradient"))
            ins_extra = []
            if k > 1 and i % k == 0 and i > k:
                gs = tb.tensor(f"gs{i}", tb.size(acts[i - k]), "gradient")
                skip_grads.setdefault(i - k, []).append(gs)
                outs.append(gs)
                ins_extra = [acts[i - k]]
            ins = [f"g{i}"] + skip_grads.pop(i, []) + [acts[i - 1]] + ins_extra
            w = weights[i - 1]
            if w is not None:
                gw = tb.tensor(f"gw{i}", tb.size(w), "gradient")
                outs.append(gw)
                ins.append(w)
                grads_w.append((i, gw))
            tb.op(f"b{i}", "layer_bwd", unique(ins), outs, duration=time(2 * opts.op_time))
        if opts.optimizer:
            for i, gw in sorted(grads_w):
                tb.op(f"u{i}", "sgd", (gw,), (), (f"w{i}",), duration=time(opts.op_time / 4))
    meta = {"generator": "chain", "options": options_to_dict(opts), "seed": seed}
    name = f"chain-{n}" + (f"-skip{k}" if k > 1 else "") + ("-bwd" if opts.backward else "")
    return tb.build(name, "chain", meta)


@dataclass(frozen=True)
class RandomOptions:
    """Options of the ``random`` generator.

    Examples
    --------
    >>> RandomOptions().pressure
    0.3
    """

    ops: int = opt(30, "number of ops", check="positive")
    max_inputs: int = opt(3, "most inputs an op reads", check="positive")
    pressure: float = opt(0.3, "memory pressure: chance that an input is any earlier tensor rather than a "
                          "recent one (higher keeps more tensors alive, raising the no-offload peak)",
                          check="unit")
    window: int = opt(3, "how many recent outputs count as recent", check="positive")
    initial: int = opt(4, "tensors that exist from the start (weights)", check="nonneg")
    tensor_bytes: int = opt(8 * 2**20, "mean tensor size", unit="size", check="positive")
    op_time: float = opt(1e-3, "mean op duration", unit="time", check="nonneg")
    jitter: float = opt(0.9, "relative spread of sizes and durations", check="unit")
    update_prob: float = opt(0.05, "chance that an op also updates a weight in place", check="unit")
    workspace_prob: float = opt(0.1, "chance that an op needs workspace (up to a mean tensor size)",
                                check="unit")
    nonrecomputable_prob: float = opt(0.05, "chance that an op is marked not recomputable", check="unit")
    initial_tier: str = opt("HBM", "tier where the initial tensors start")
    compute_tier: str = opt("HBM", "name of the hardware's compute tier")


def build_random(opts: RandomOptions, seed: int = 0, where: Where = Where()) -> Workload:
    """A random DAG: each op reads 1..max_inputs earlier tensors and writes one new tensor.

    The last op's output is persistent (the result); initial tensors are persistent
    weights, and some ops update one of them in place.

    Examples
    --------
    >>> wl = build_random(RandomOptions(ops=5, initial=0), seed=1)
    >>> wl.ops[0].inputs
    ()
    """
    rng = random.Random(seed)
    tb = TraceBuilder()

    def size() -> int:
        return max(1, round(_draw(rng, opts.tensor_bytes, opts.jitter)))

    init = _tier(opts.initial_tier, opts.compute_tier)
    weights = [tb.tensor(f"w{i}", size(), "weight", initial_tier=init, persistent=True)
               for i in range(opts.initial)]
    made: list[str] = []
    for i in range(opts.ops):
        pool_recent = made[-opts.window:]
        n_in = 1 + int(rng.random() * opts.max_inputs)
        ins: list[str] = []
        for _ in range(n_in):
            pick_far = rng.random() < opts.pressure or not pool_recent
            pool = (made + weights) if pick_far else pool_recent
            if pool:
                ins.append(pool[int(rng.random() * len(pool))])
        if made and made[-1] not in ins and rng.random() < 0.8:
            ins.append(made[-1])        # mostly a chain, so the graph stays connected
        ins = unique(ins)
        ups: list[str] = []
        if weights and rng.random() < opts.update_prob:
            ups.append(weights[int(rng.random() * len(weights))])
            ins = [t for t in ins if t not in ups]
        last = i == opts.ops - 1
        out = tb.tensor(f"t{i}", size(), "activation", persistent=last)
        ws = round(rng.random() * opts.tensor_bytes) if rng.random() < opts.workspace_prob else 0
        dur = max(0.0, _draw(rng, opts.op_time, opts.jitter))
        fixed = rng.random() < opts.nonrecomputable_prob
        tb.op(f"op{i}", "random", ins, (out,), ups, duration=dur, workspace=ws, recomputable=not fixed)
        made.append(out)
    return tb.build(f"random-{opts.ops}-p{opts.pressure:g}-s{seed}", "random",
                    {"generator": "random", "options": options_to_dict(opts), "seed": seed})
