"""PyTorch training steps timed in a process of their own: no JAX loaded (issue 20, item 0).

In the same process as JAX, PyTorch shares the CPU's threads and caches with
XLA's runtime; on one AMD EPYC machine a plain PyTorch loop of the Gal CNN ran
a batch-64 step in ~14.6 ms alone but 33.5 ms beside JAX. So the peer
comparison times PyTorch both ways and compares bal against the faster.

    python -m benchmarks.peers.torch_alone --model gal_cnn --batch-size 64 --steps 20 --repeats 5

prints one JSON object: the median seconds of one epoch of ``steps`` shuffled
minibatches (Adam, dropout / GroupNorm in training mode), per step, and the
threads used. The models mirror ``bal.models.GalCNN`` and ``bal.models.ResNet18``
(32x32x3, GroupNorm, last-layer dropout) so both sides do the same arithmetic.
This module imports only torch and numpy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def setup(threads: int | None = None):
    import torch

    torch.set_num_threads(threads or (2 if torch.get_num_threads() >= 2 else 1))
    torch.manual_seed(0)
    return torch


def gal_cnn(torch, num_classes: int = 10):
    """Gal et al. 2017's CNN: conv 32x4x4, conv 32x4x4, max-pool 2, dropout .25, dense 128, dropout .5."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 4), nn.ReLU(), nn.Conv2d(32, 32, 4), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(32 * 11 * 11, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, num_classes),
    )


def resnet18(torch, num_classes: int = 10, width: int = 64, groups: int = 32):
    """ResNet-18 for 32x32 inputs as ``bal.models.ResNet18`` builds it: 3x3 stem, stages of 2 basic
    blocks (strides 1, 2, 2, 2), GroupNorm(gcd(groups, channels)), global average pool, dropout .5."""
    import math

    nn = torch.nn

    def norm(c):
        return nn.GroupNorm(math.gcd(groups, c), c)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.n1 = norm(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.n2 = norm(cout)
            self.short = None
            if stride != 1 or cin != cout:
                self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm(cout))

        def forward(self, x):
            y = torch.relu(self.n1(self.conv1(x)))
            y = self.n2(self.conv2(y))
            return torch.relu((x if self.short is None else self.short(x)) + y)

    layers = [nn.Conv2d(3, width, 3, 1, 1, bias=False), norm(width), nn.ReLU()]
    cin = width
    for stage in range(4):
        cout = width * 2**stage
        for block in range(2):
            layers.append(Block(cin, cout, 2 if stage > 0 and block == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


MODELS = {"gal_cnn": (gal_cnn, (1, 28, 28)), "resnet18": (resnet18, (3, 32, 32))}


def epoch_timer(torch, model_name: str, batch_size: int, steps: int):
    """A function running one epoch of ``steps`` Adam steps on random data (a plain PyTorch loop)."""
    build, shape = MODELS[model_name]
    n = batch_size * steps
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((n, *shape), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 10, n).astype(np.int64))
    model = build(torch)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        model.train()
        perm = torch.randperm(n)
        for s in range(steps):
            idx = perm[s * batch_size:(s + 1) * batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        return float(loss.detach())

    return epoch


def time_epochs(epoch, repeats: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        epoch()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return {"median_seconds": statistics.median(times), "min_seconds": min(times), "times": times}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.peers.torch_alone", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="gal_cnn")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if "jax" in sys.modules:  # the point of this process
        print("torch_alone: error: JAX is loaded in this process", file=sys.stderr)
        return 2
    torch = setup(args.threads)
    timing = time_epochs(epoch_timer(torch, args.model, args.batch_size, args.steps), args.repeats)
    print(json.dumps({"model": args.model, "batch_size": args.batch_size, "steps": args.steps,
                      "ms_per_step": 1e3 * timing["median_seconds"] / args.steps, "timing": timing,
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "jax_loaded": "jax" in sys.modules}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
