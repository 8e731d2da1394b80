"""Where a Gal CNN train step spends its time: each piece jitted and timed alone (issue 20).

    python -m benchmarks.step_profile [--batch-size 64] [--repeats 20]

prints one JSON object: the median milliseconds of the whole step (``bal.train``'s
loss, gradient and Adam update with dropout on) and of its pieces, each piece's
FLOPs (XLA's cost analysis) and its share of the float32 matmul FLOP/s measured
in the same run. The pieces overlap nothing and together account for the step up
to XLA's fusion across them, so the largest rows say what bounds the step. The
same step in PyTorch is ``benchmarks.peers.torch_alone``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import jax
import jax.numpy as jnp
import optax

from bal.backend import conv_general_dilated, max_pool, policy, use
from bal.models import GalCNN
from bal.runtime import relaunch_with_huge_pages
from benchmarks.harness import block, environment, matmul_flops, measure


def _conv(x, w):
    return conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _flops(fn, *args) -> float | None:
    """FLOPs of ``fn`` by XLA's cost analysis of its loop-free form (the rewrites' chunk loops
    would be counted once), so utilisations compare like with like."""
    with use(dataclasses.replace(policy(), conv_rewrite=False)):
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return (cost or {}).get("flops")


def pieces(batch_size: int, key) -> dict:
    """``name -> (function, args)``: the step and its parts at the Gal CNN's shapes on MNIST."""
    k = jax.random.split(key, 8)
    x = jax.random.uniform(k[0], (batch_size, 28, 28, 1))
    y = jax.random.randint(k[1], (batch_size,), 0, 10)
    model = GalCNN(num_classes=10)
    variables = model.init(k[2], x)
    params = variables["params"]
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)

    def loss(p, key):
        logits = model.apply({"params": p}, x, train=True, rngs={"dropout": key})
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(p, s, key):
        g = jax.grad(loss)(p, key)
        updates, s = optimizer.update(g, s, p)
        return optax.apply_updates(p, updates), s

    w1, w2 = params["conv1"]["kernel"], params["conv2"]["kernel"]
    h1 = jax.nn.relu(_conv(x, w1))                      # [B, 25, 25, 32]
    h2 = jax.nn.relu(_conv(h1, w2))                     # [B, 22, 22, 32]
    g2 = jnp.ones_like(h2)
    pooled = max_pool(h2, (2, 2), strides=(2, 2))       # [B, 11, 11, 32]
    flat = pooled.reshape(batch_size, -1)
    fc1, fc2 = params["fc1"], params["fc2"]

    def dense(f):
        h = jax.nn.relu(f @ fc1["kernel"] + fc1["bias"])
        return jnp.sum(h @ fc2["kernel"] + fc2["bias"])

    grads = jax.grad(loss)(params, k[3])
    return {
        "step (grad + Adam)": (step, (params, opt_state, k[4])),
        "loss + grad": (jax.grad(loss), (params, k[4])),
        "forward, dropout on": (loss, (params, k[4])),
        "conv1 forward + kernel gradient": (
            lambda w: jax.grad(lambda w: jnp.sum(jax.nn.relu(_conv(x, w))))(w), (w1,)),
        "conv2 forward": (lambda h, w: _conv(h, w), (h1, w2)),
        "conv2 kernel gradient": (lambda h, w, g: jax.vjp(lambda w: _conv(h, w), w)[1](g)[0], (h1, w2, g2)),
        "conv2 input gradient": (lambda h, w, g: jax.vjp(lambda h: _conv(h, w), h)[1](g)[0], (h1, w2, g2)),
        "max-pool forward + gradient": (
            lambda h: jax.grad(lambda h: jnp.sum(max_pool(h, (2, 2), strides=(2, 2)) ** 2))(h), (h2,)),
        "dense layers forward + gradient": (jax.grad(dense), (flat,)),
        "dropout masks": (lambda key: (jax.random.bernoulli(key, 0.75, pooled.shape),
                                       jax.random.bernoulli(key, 0.5, (batch_size, 128))), (k[5],)),
        "Adam update": (lambda g, s, p: optax.apply_updates(p, optimizer.update(g, s, p)[0]),
                        (grads, opt_state, params)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    peak = matmul_flops()
    rows = {}
    for name, (fn, fargs) in pieces(args.batch_size, jax.random.key(0)).items():
        jitted = jax.jit(fn)
        block(jitted(*fargs))
        t = measure(lambda: block(jitted(*fargs)), repeats=args.repeats)["median_seconds"]
        flops = _flops(fn, *fargs)
        rows[name] = {"ms": round(1e3 * t, 3), "gflop": None if flops is None else round(flops / 1e9, 4),
                      "utilisation": None if not flops else round(flops / t / peak, 3)}
        print(f"{name:34s} {1e3 * t:8.2f} ms", file=sys.stderr)
    print(json.dumps({"case": "gal_cnn_step_profile", "params": {"batch_size": args.batch_size,
                      "repeats": args.repeats}, "pieces": rows, "env": environment()}))
    return 0


if __name__ == "__main__":
    relaunch_with_huge_pages()  # as `python -m benchmarks` runs its cases
    sys.exit(main())
