"""bal vs the PyTorch tools users would otherwise pick, same work, same process.

    .venv-peers/bin/python -m benchmarks.peers.compare [--quick] [--out FILE]

Needs ``torch``, ``baal`` and ``batchbald_redux`` beside ``bal`` in one
environment (see ``shared/notes-peers.md``; ``pip install -e .`` into it). Cases
(each prints one JSON object with both timings and ``ratio = peer / bal``):

* ``pool_scoring_vs_baal`` -- Gal CNN with MC dropout, ``S`` samples over ``N``
  pool images, BALD, top-k. BaaL: ``ModelWrapper.predict_on_dataset`` (its MC
  loop, ``patch_module``'d dropout) + ``baal.active.heuristics.BALD``. bal:
  ``bal.predict.predict`` streaming BALD per chunk + ``top_k``.
* ``batchbald_vs_redux`` -- ``batchbald_redux.batchbald.get_batchbald_batch``
  vs ``bal.acquisition.batchbald`` on the same ``[S, N, C]`` log-probabilities
  (float64 for the peer, as in its examples), and whether they select the same
  items (while the joint is exact the choices must agree).
* ``train_step_vs_torch`` -- the Gal CNN train step (batch 64, Adam, dropout on)
  in plain PyTorch vs ``bal.train.fit``, per step.

Both libraries get the same 2 threads; runs are sequential, never concurrent.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time

import numpy as np

from bal.runtime import relaunch_with_huge_pages
from benchmarks.harness import environment, measure
from benchmarks.peers import torch_alone


def _torch_setup():
    return torch_alone.setup()


def _gal_cnn_torch(torch, num_classes=10):
    return torch_alone.gal_cnn(torch, num_classes)


def pool_scoring_vs_baal(n: int, num_samples: int, k: int = 10, repeats: int = 5, peer_repeats: int = 3) -> dict:
    torch = _torch_setup()
    import jax
    import jax.numpy as jnp
    from baal.active.heuristics import BALD
    from baal.bayesian.dropout import patch_module
    from baal.modelwrapper import ModelWrapper, TrainingArgs

    from bal import acquisition, posteriors
    from bal.predict import predict
    from benchmarks.cases import _bald_scores

    x = np.random.default_rng(0).random((n, 28, 28, 1), dtype=np.float32)
    # BaaL, idiomatically: a TensorDataset, the MC-dropout-patched model, predict_on_dataset + BALD
    model = patch_module(_gal_cnn_torch(torch))
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                                             torch.zeros(n, dtype=torch.long))
    args = TrainingArgs(criterion=torch.nn.CrossEntropyLoss(), optimizer=None, batch_size=2048, epoch=1,
                        use_cuda=False, workers=0)
    wrapper = ModelWrapper(model, args)
    heuristic = BALD()

    def peer():
        with contextlib.redirect_stdout(sys.stderr):  # baal logs to stdout; keep stdout for the JSON
            preds = wrapper.predict_on_dataset(dataset, iterations=num_samples, verbose=False)  # [N, C, S] logits
        return heuristic(preds)[:k]

    post = posteriors.build("mc_dropout", "gal_cnn", 10, num_samples=num_samples)
    variables = post.init(jax.random.key(0), jnp.asarray(x[:2]))
    key = jax.random.key(1)

    def ours():
        scores = predict(post, variables, x, key, num_samples=num_samples, reduce=_bald_scores)
        return jax.block_until_ready(acquisition.top_k(None, jnp.asarray(scores), k))

    # eager PyTorch has nothing to compile: its first call counts (it takes minutes at N = 10,000)
    t_peer = measure(peer, repeats=peer_repeats, warmup=0, time_first=True)
    t_bal = measure(ours, repeats=repeats)
    return _result("pool_scoring_vs_baal", {"n": n, "num_samples": num_samples, "k": k, "model": "gal_cnn",
                                            "family": "mc_dropout"}, t_bal, t_peer, "baal")


def batchbald_vs_redux(n: int, num_samples: int, batch: int = 10, repeats: int = 5, peer_repeats: int | None = None
                       ) -> dict:
    torch = _torch_setup()
    import jax
    import jax.numpy as jnp
    from batchbald_redux.batchbald import get_batchbald_batch

    from bal import acquisition

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(num_samples, n, 10)) * 2.0
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))  # [S, N, C] float64
    peer_input = torch.from_numpy(log_probs.transpose(1, 0, 2).copy())  # [N, K, C] as batchbald_redux expects
    num_configs = 10_000

    def peer():
        with contextlib.redirect_stdout(sys.stderr), contextlib.redirect_stderr(io.StringIO()):  # tqdm bars
            return get_batchbald_batch(peer_input, batch, num_configs, dtype=torch.double)

    lp = jnp.asarray(log_probs, jnp.float32)
    key = jax.random.key(0)

    def ours():
        return jax.block_until_ready(acquisition.batchbald(key, lp, batch, num_configs=num_configs,
                                                           validate=False).indices)

    peer_result = {}

    def peer_once():
        peer_result["indices"] = list(peer().indices)

    # redux is eager PyTorch (nothing to compile): its first call is a fair sample
    t_peer = measure(peer_once, repeats=peer_repeats or repeats, warmup=0, time_first=True)
    t_bal = measure(ours, repeats=repeats)
    peer_idx = peer_result["indices"]
    bal_idx = [int(i) for i in ours()]
    # redux's joint is exact while 10^m <= num_configs, i.e. for the first log10(num_configs) picks
    exact = int(np.floor(np.log(num_configs) / np.log(10)))
    agree = peer_idx[: exact + 1] == bal_idx[: exact + 1]
    return _result("batchbald_vs_redux", {"n": n, "num_samples": num_samples, "batch": batch,
                                          "num_configs": num_configs}, t_bal, t_peer, "batchbald_redux",
                   same_selection=peer_idx == bal_idx, same_exact_prefix=agree, exact_prefix=exact + 1,
                   bal_indices=bal_idx, peer_indices=[int(i) for i in peer_idx])


def _standalone(model: str, batch_size: int, steps: int, repeats: int) -> dict | None:
    """The PyTorch loop timed in a process of its own (no JAX loaded): :mod:`torch_alone`."""
    cmd = [sys.executable, "-m", "benchmarks.peers.torch_alone", "--model", model, "--batch-size", str(batch_size),
           "--steps", str(steps), "--repeats", str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"peers: standalone PyTorch failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def train_step_vs_torch(batch_size: int = 64, steps: int = 20, repeats: int = 5, model: str = "gal_cnn") -> dict:
    """One epoch of ``steps`` Adam steps, bal (``fit``) against a plain PyTorch loop, PyTorch timed both in
    this process and alone (issue 20: compare against the faster)."""
    torch = _torch_setup()
    import jax
    import jax.numpy as jnp

    from bal import posteriors
    from bal.train import fit

    peer = torch_alone.epoch_timer(torch, model, batch_size, steps)
    shape = torch_alone.MODELS[model][1]
    n = batch_size * steps
    rng = np.random.default_rng(0)
    x = rng.random((n, shape[1], shape[2], shape[0]), dtype=np.float32)  # NHWC for bal
    y = rng.integers(0, 10, n).astype(np.int32)
    post = posteriors.build("deterministic", model, 10)  # dropout / GroupNorm in training mode, as in torch
    variables = post.init(jax.random.key(0), jnp.asarray(x[:2]))

    def ours():
        return jax.block_until_ready(fit(post, variables, x, y, jax.random.key(1), num_epochs=1,
                                         batch_size=batch_size).variables)

    t_peer = measure(peer, repeats=repeats)
    t_bal = measure(ours, repeats=repeats)
    alone = _standalone(model, batch_size, steps, repeats)
    in_process_ms = 1e3 * t_peer["median_seconds"] / steps
    alone_ms = alone["ms_per_step"] if alone else None
    fastest = min(in_process_ms, alone_ms) if alone_ms else in_process_ms
    bal_ms = 1e3 * t_bal["median_seconds"] / steps
    return _result(f"train_step_vs_torch{'' if model == 'gal_cnn' else '_' + model}",
                   {"model": model, "batch_size": batch_size, "steps": steps, "optimizer": "adam"},
                   t_bal, t_peer, "torch", bal_ms_per_step=bal_ms, peer_ms_per_step=in_process_ms,
                   peer_alone_ms_per_step=alone_ms, ratio_vs_fastest_peer=fastest / bal_ms)


def _result(case, params, t_bal, t_peer, peer, **extra) -> dict:
    import torch

    return {
        "case": case, "params": params, "peer": peer, "bal": t_bal, "peer_timing": t_peer,
        "ratio": t_peer["median_seconds"] / t_bal["median_seconds"], **extra,
        "env": {**environment(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.peers.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a minute or two)")
    ap.add_argument("--out", default=None, help="also append the JSON lines to this file")
    ap.add_argument("--big-batchbald", action="store_true",
                    help="also BatchBALD at N = 10,000 (batchbald_redux takes ~10 min per call on 2 cores)")
    args = ap.parse_args(argv)
    relaunch_with_huge_pages()  # as `python -m benchmarks` runs its cases; it serves PyTorch's allocations too
    try:
        import baal  # noqa: F401
        import batchbald_redux  # noqa: F401
        import torch  # noqa: F401
    except ImportError as err:
        print(f"peers: error: {err}. Install the peers in a separate venv as shared/notes-peers.md says, "
              "plus `pip install -e .` of bal, and run this with that venv's python.", file=sys.stderr)
        return 2
    if args.quick:
        jobs = [lambda: pool_scoring_vs_baal(2_000, 20, repeats=3, peer_repeats=1), lambda: batchbald_vs_redux(1_000, 20, repeats=3, peer_repeats=1),
                lambda: train_step_vs_torch(steps=10, repeats=3),
                lambda: train_step_vs_torch(steps=3, repeats=2, model="resnet18")]
    else:
        jobs = [lambda: pool_scoring_vs_baal(10_000, 20), lambda: train_step_vs_torch(),
                lambda: train_step_vs_torch(steps=10, repeats=3, model="resnet18"),
                lambda: batchbald_vs_redux(1_000, 20, peer_repeats=3)]
        if args.big_batchbald:
            jobs.append(lambda: batchbald_vs_redux(10_000, 20, repeats=5, peer_repeats=1))
    for job in jobs:
        rec = job()
        line = json.dumps(rec, sort_keys=True)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
        print(f"{rec['case']:<22} {rec['params']}  bal {rec['bal']['median_seconds']:.3f} s  "
              f"{rec['peer']} {rec['peer_timing']['median_seconds']:.3f} s  ratio {rec['ratio']:.1f}x",
              file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
