"""The benchmark cases: pool scoring, acquisition alone, training, one end-to-end cycle (MNIST, detection),
and pools on disk up to a million items (:mod:`benchmarks.pool_scale`).

Every case is a function ``case(repeats=..., **params) -> dict`` returning one
record (see :mod:`benchmarks.harness`). The grids of parameters per mode live in
:mod:`benchmarks.grids`. Inputs are random arrays of the real shapes (MNIST
``[N, 28, 28, 1]``, CIFAR ``[N, 32, 32, 3]``): speed does not depend on the
pixel values; the end-to-end cycle uses the real MNIST when it is on disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from bal import acquisition, data, posteriors
from bal.posteriors.base import resolve_sample_map
from bal.predict import default_chunk_size, predict
from bal.train import fit
from benchmarks.harness import block, measure, peak_bf16_flops, record, utilisation
from benchmarks.pool_scale import pool_cluster_margin, pool_processes, pool_resume, pool_scale

SHAPES = {"gal_cnn": (28, 28, 1), "mlp": (28, 28, 1), "lenet5": (28, 28, 1), "resnet18": (32, 32, 3)}
NUM_CLASSES = 10


def _inputs(model: str, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n,) + SHAPES[model], dtype=np.float32)


def _labels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 1).integers(0, NUM_CLASSES, n).astype(np.int32)


def _log_probs(s: int, n: int, c: int = NUM_CLASSES, seed: int = 0) -> jax.Array:
    logits = np.random.default_rng(seed).normal(size=(s, n, c)).astype(np.float32) * 2.0
    return jax.nn.log_softmax(jnp.asarray(logits), axis=-1)


def _posterior(family: str, model: str, num_samples: int, num_members: int = 5, **kw):
    members = num_members if "ensemble" in family else None
    return posteriors.build(family, model, NUM_CLASSES, num_samples=num_samples, num_members=members, **kw)


def _bald_scores(chunk):
    """Stream BALD per pool chunk: ``[S, n, C] -> [n]`` on the device."""
    return acquisition.bald(chunk.log_probs, validate=False)


# --------------------------------------------------------------------------- pool scoring


def pool_scoring(*, model: str, family: str, n: int, num_samples: int, k: int = 10, chunk_size: int | None = None,
                 repeats: int = 5) -> dict:
    """Posterior predictive + BALD + top-k over a pool of ``n`` inputs (``bal.predict`` streaming)."""
    chunk_size = chunk_size or default_chunk_size()
    post = _posterior(family, model, num_samples)
    s = post.num_samples_for(num_samples if "ensemble" not in family else None)
    x = _inputs(model, n)
    variables = post.init(jax.random.key(0), jnp.asarray(x[:2]))
    key = jax.random.key(1)

    def run():
        scores = predict(post, variables, x, key, num_samples=s, reduce=_bald_scores, chunk_size=chunk_size)
        return block(acquisition.top_k(None, jnp.asarray(scores), k))

    timing = measure(run, repeats=repeats)
    extra = {"items_per_second": n / timing["median_seconds"],
             "forward_passes_per_second": n * s / timing["median_seconds"]}
    flops = _executed_flops(post, variables, x[:chunk_size], s) * (n / min(n, chunk_size))
    if flops:
        extra.update(utilisation(flops, timing["median_seconds"]))
        extra["tflops_per_second"] = flops / timing["median_seconds"] / 1e12
        peak = peak_bf16_flops()
        if peak:
            extra["mfu_vs_bf16_peak"] = flops / timing["median_seconds"] / peak
    params = {"model": model, "family": family, "n": n, "num_samples": s, "k": k, "chunk_size": chunk_size,
              "sample_map": resolve_sample_map(getattr(post, "sample_map", getattr(post, "member_map", "auto")))}
    return record("pool_scoring", params, timing, **extra)


@contextlib.contextmanager
def _loop_free():
    """``bal.nn.ops``' CPU rewrites off while tracing: XLA counts a loop body once, whatever
    its trip count, and the rewrites' patch matmuls loop over batch chunks."""
    previous = os.environ.get("BAL_CONV_REWRITE")
    os.environ["BAL_CONV_REWRITE"] = "0"  # read when tracing
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("BAL_CONV_REWRITE")
        else:
            os.environ["BAL_CONV_REWRITE"] = previous


def _flops(fn, *args) -> float | None:
    """FLOPs of one call of the jitted ``fn`` (XLA's cost analysis), or None."""
    try:
        with _loop_free():
            cost = jax.jit(fn).lower(*args).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return float(cost.get("flops", 0.0)) or None
    except Exception:  # cost analysis is best-effort and backend-dependent
        return None


def _executed_flops(post, variables, x_chunk, s) -> float | None:
    """FLOPs one chunk's posterior samples execute, counted on a loop-free program computing
    the same thing: samples (members) vmapped and the CPU rewrites off. A noise-free trunk is
    still computed once, as when timed."""
    field = "member_map" if hasattr(post, "member_map") else "sample_map"
    loop_free = dataclasses.replace(post, **{field: "vmap"})
    return _flops(lambda v, x, key: loop_free.predict(v, x, key, s), variables, jnp.asarray(x_chunk),
                  jax.random.key(0))


def _step_flops(post, variables, x_batch, y_batch) -> float | None:
    """FLOPs of one training step's loss and gradient (the optimiser update is negligible)."""
    def grad(v, x, y, key):
        return jax.grad(lambda p: post.loss({**v, "params": p}, x, y, key, num_train=len(y))[0])(v["params"])

    return _flops(grad, variables, jnp.asarray(x_batch), jnp.asarray(y_batch), jax.random.key(0))


# --------------------------------------------------------------------------- acquisition alone


def scores_alone(*, score: str, n: int, num_samples: int, repeats: int = 5) -> dict:
    """A pointwise score (``bald``, ``entropy``, ...) over device-resident ``[S, N, C]``."""
    lp = _log_probs(num_samples, n)
    fn = jax.jit(lambda lp: getattr(acquisition, score)(lp, validate=False))
    timing = measure(lambda: block(fn(lp)), repeats=repeats)
    return record("acquisition_scores", {"score": score, "n": n, "num_samples": num_samples, "classes": NUM_CLASSES},
                  timing, items_per_second=n / timing["median_seconds"])


def batchbald_alone(*, batch: int, n: int, num_samples: int, repeats: int = 5) -> dict:
    """Greedy BatchBALD selecting ``batch`` of ``n`` items from ``[S, N, C]``."""
    lp = _log_probs(num_samples, n)
    key = jax.random.key(0)
    timing = measure(lambda: block(acquisition.batchbald(key, lp, batch, validate=False).indices), repeats=repeats)
    return record("batchbald", {"batch": batch, "n": n, "num_samples": num_samples, "classes": NUM_CLASSES},
                  timing)


# --------------------------------------------------------------------------- training


def train_steps(*, model: str, family: str, batch_size: int = 64, steps: int = 10, num_members: int = 5,
                estimator: str = "reparam", repeats: int = 5) -> dict:
    """Examples per second of ``bal.train.fit`` (one epoch of ``steps`` Adam steps)."""
    post = _posterior(family, model, 1 if family in ("mc_dropout", "variational") else 20,
                      num_members=num_members, estimator=estimator)
    n = batch_size * steps
    x, y = _inputs(model, n), _labels(n)
    variables = post.init(jax.random.key(0), jnp.asarray(x[:2]))

    def run():
        return block(fit(post, variables, x, y, jax.random.key(1), num_epochs=1, batch_size=batch_size).variables)

    timing = measure(run, repeats=repeats)
    step_flops = _step_flops(post, variables, x[:batch_size], y[:batch_size])
    extra = utilisation(step_flops * steps if step_flops else None, timing["median_seconds"])
    members = num_members if "ensemble" in family else 1
    params = {"model": model, "family": family, "batch_size": batch_size, "steps": steps, "members": members,
              "estimator": estimator if family == "variational" else None}
    return record("train", params, timing, seconds_per_step=timing["median_seconds"] / steps,
                  examples_per_second=n * members / timing["median_seconds"], **extra)


def ensemble_vs_sequential(*, model: str = "gal_cnn", num_members: int = 5, batch_size: int = 64, steps: int = 10,
                           member_map: str = "auto", repeats: int = 5) -> dict:
    """One epoch of an M-member ensemble in one jitted step vs M members trained one after another."""
    n = batch_size * steps
    x, y = _inputs(model, n), _labels(n)
    single = posteriors.build("deterministic", model, NUM_CLASSES)
    ens = posteriors.build("ensemble", model, NUM_CLASSES, num_members=num_members, sample_map=member_map)
    v_ens = ens.init(jax.random.key(0), jnp.asarray(x[:2]))
    v_members = [jax.tree.map(lambda a, m=m: a[m], v_ens) for m in range(num_members)]
    keys = ens.member_keys(jax.random.key(1))

    def together():
        return block(fit(ens, v_ens, x, y, jax.random.key(1), num_epochs=1, batch_size=batch_size).variables)

    def sequential():
        return [block(fit(single, v, x, y, keys[m], num_epochs=1, batch_size=batch_size).variables)
                for m, v in enumerate(v_members)]

    t_seq = measure(sequential, repeats=repeats)
    t_ens = measure(together, repeats=repeats)
    params = {"model": model, "members": num_members, "batch_size": batch_size, "steps": steps,
              "member_map": resolve_sample_map(member_map, training=True)}
    return record("ensemble_vs_sequential", params, t_ens, sequential=t_seq,
                  speedup_vs_sequential=t_seq["median_seconds"] / t_ens["median_seconds"])


# --------------------------------------------------------------------------- end to end


def al_cycle(*, labeled: int = 1000, pool: int = 59_000, num_samples: int = 20, acquire: int = 10,
             epochs: int = 50, batch_size: int = 128, repeats: int = 3) -> dict:
    """One active-learning cycle on MNIST through the loop kernel (``bal.active.kernel.step``):
    train the MC-dropout Gal CNN on ``labeled`` random labels (from scratch), evaluate on 256
    test items, score the ``pool`` unlabeled items with BALD (S samples), select ``acquire``."""
    from bal.active import kernel
    from bal.active.config import ExperimentConfig
    from bal.active.tasks.classification import ClassificationTask, Problem

    x_all, data_source = None, "mnist"
    try:
        ds = data.load("mnist", "train")
        x_all, y_all = ds.images.astype(np.float32) / 255.0, ds.labels.astype(np.int32)
    except (FileNotFoundError, ValueError):  # no MNIST on disk: random data of the same shape
        pass
    if x_all is None or len(x_all) < labeled + pool:
        x_all, y_all, data_source = _inputs("gal_cnn", labeled + pool), _labels(labeled + pool), "random"
    x_all, y_all = x_all[:labeled + pool], np.asarray(y_all[:labeled + pool], np.int32)
    problem = Problem(x_all, y_all, x_all[:256], y_all[:256], NUM_CLASSES)
    config = ExperimentConfig(dataset="mnist", model="gal_cnn", posterior="mc_dropout", num_samples=num_samples,
                              strategies=("bald",), include_random=False, initial_labels=labeled,
                              initial_balanced=False, acquisition_size=acquire, cycles=1, epochs=epochs,
                              batch_size=batch_size, seeds=(0,), quiet=True)
    task = ClassificationTask(config, problem=problem)
    state = kernel.init(task, 0)
    split = {}

    def cycle():
        _, info = kernel.step(task, "bald", state)
        split.update(train_seconds=info.record["train_seconds"],
                     score_seconds=info.record["acquisition_seconds"])
        return info.acquired

    timing = measure(cycle, repeats=repeats)
    params = {"labeled": labeled, "pool": pool, "num_samples": num_samples, "acquire": acquire, "epochs": epochs,
              "batch_size": batch_size, "data": data_source, "model": "gal_cnn", "family": "mc_dropout",
              "note": "train_seconds includes evaluating 256 test items"}
    return record("al_cycle", params, timing, last_split=split)


def detection_scoring(*, n: int = 512, num_samples: int = 10, height: int = 96, width: int = 128,
                      chunk_size: int = 32, model_kwargs: dict | None = None, repeats: int = 3) -> dict:
    """Images per second of location-BALD scoring with an MC-dropout CenterNet (S samples):
    chunked prediction of ``[S, n, H/4, W/4, C + 4]`` reduced on the device to image scores."""
    from bal.active.tasks.detection import heatmap_scores
    from bal.data.detection import load_road_scenes
    from bal.detection import centernet

    data = load_road_scenes("train", num_images=n, height=height, width=width)
    post = posteriors.build("mc_dropout", "centernet", data.num_classes, num_samples=num_samples,
                            data_loss=centernet.loss_terms, output_transform=posteriors.raw_outputs,
                            model_kwargs=model_kwargs)
    variables = post.init(jax.random.key(0), data.images[:1])

    def reduce(chunk):
        return heatmap_scores(chunk.log_probs, "bald", "max")

    def run():
        return predict(post, variables, data.images, jax.random.key(1), chunk_size=chunk_size, reduce=reduce)

    timing = measure(run, repeats=repeats)
    params = {"n": n, "num_samples": num_samples, "height": height, "width": width, "chunk_size": chunk_size,
              "model": "centernet", "family": "mc_dropout", "score": "bald_heatmap", "model_kwargs": model_kwargs}
    return record("detection_scoring", params, timing, images_per_second=n / timing["median_seconds"])


def detection_cycle(*, num_train: int = 2000, num_test: int = 500, labeled: int = 300, acquire: int = 100,
                    strategy: str = "box_bald", epochs: int = 20, min_steps: int = 200, num_samples: int = 8,
                    height: int = 96, width: int = 128, batch_size: int = 16, chunk_size: int = 32,
                    model_kwargs: dict | None = None, repeats: int = 1) -> dict:
    """One detection cycle through the loop kernel (``bal.active.kernel.step``) on the road-scene set:
    train an MC-dropout CenterNet from scratch on ``labeled`` random images (``epochs``, hflip),
    evaluate COCO AP on ``num_test`` test images, score the ``num_train - labeled`` unlabeled images
    with ``strategy`` (S = ``num_samples``) and select ``acquire``. The study's middle cycle by
    default (experiments/configs/detection_road_scenes.toml). Also records the process CPU time per
    cycle and the load average, as the CPU may be shared."""
    import resource

    from bal import data as bdata
    from bal.active import kernel
    from bal.active.detection_config import DetectionConfig
    from bal.active.tasks.detection import DetectionTask, load_detection_problem

    config = DetectionConfig(num_train=num_train, num_test=num_test, image_size=(height, width),
                             model_kwargs=model_kwargs or {}, num_samples=num_samples, strategies=(strategy,),
                             initial_images=labeled, acquisition_images=acquire, cycles=2, epochs=epochs,
                             min_steps=min_steps, batch_size=batch_size, chunk_size=chunk_size, seeds=(0,),
                             quiet=True)
    task = DetectionTask(config, problem=load_detection_problem(config))
    chosen = np.sort(np.random.default_rng(0).choice(num_train, labeled, replace=False))
    # cycle 1 of 2 (it acquires): not cycle 0, whose model the task keeps per seed (every strategy shares it)
    state = kernel.LoopState(0, 1, bdata.Pool(chosen, np.setdiff1d(np.arange(num_train), chosen), num_train))
    split, cpu = {}, []

    def cycle():
        before = resource.getrusage(resource.RUSAGE_SELF)
        _, info = kernel.step(task, strategy, state)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        r = info.record
        split.update(train_evaluate_seconds=r["train_seconds"], acquisition_seconds=r["acquisition_seconds"],
                     train_steps=r["train_steps"], map=r["map"])
        return info.acquired

    load_before = os.getloadavg()
    timing = measure(cycle, repeats=repeats)
    params = {"num_train": num_train, "num_test": num_test, "labeled": labeled, "acquire": acquire,
              "strategy": strategy, "epochs": epochs, "min_steps": min_steps, "num_samples": num_samples,
              "height": height, "width": width, "batch_size": batch_size, "chunk_size": chunk_size,
              "model": "centernet", "family": "mc_dropout", "hflip": True, "model_kwargs": model_kwargs,
              "note": "train_evaluate_seconds: training and the test-set evaluation"}
    return record("detection_cycle", params, timing, last_split=split,
                  cpu_seconds_per_cycle=float(np.median(cpu[1:] if len(cpu) > 1 else cpu)),
                  load_average_1min=[round(load_before[0], 2), round(os.getloadavg()[0], 2)],
                  images_scored_per_second=(num_train - labeled) / split["acquisition_seconds"])


CASES = {
    "pool_scoring": pool_scoring,
    "acquisition_scores": scores_alone,
    "batchbald": batchbald_alone,
    "train": train_steps,
    "ensemble_vs_sequential": ensemble_vs_sequential,
    "al_cycle": al_cycle,
    "detection_scoring": detection_scoring,
    "detection_cycle": detection_cycle,
    # pools on disk, up to a million items (issue 18): benchmarks/pool_scale.py
    "pool_scale": pool_scale,
    "pool_processes": pool_processes,
    "pool_cluster_margin": pool_cluster_margin,
    "pool_resume": pool_resume,
}
