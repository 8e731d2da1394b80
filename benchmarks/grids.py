"""Which parameters each mode runs.

* ``quick`` -- one small instance of every case (under 2 minutes on 2 CPU cores);
* ``default`` -- the issue's cases at sizes a 2-core CPU finishes in under 15
  minutes: N = 60,000 and S = 100 only for the array-only scores; pool scoring
  at N = 10,000 (variational N = 1,000, ResNet-18 N = 512); every record states
  its sizes; and the detection study's middle cycle (two cycles of a few minutes
  each: a warm-up and the timed one);
* ``full`` -- the whole grid (N = 10,000 and 60,000, S = 20 and 100, ResNet-18 at
  N = 10,000, BatchBALD up to N = 60,000): meant for accelerators; hours on a CPU. Pools on disk at the
  issue's sizes: BALD top-10,000 of 10,000, 100,000 and 1,000,000 items; 1 vs 2 processes and 3 kills on
  100,000; Cluster-Margin selecting 10,000 of 1,000,000 (about an hour on 2 CPU cores; 785 MB in /tmp).
"""

from __future__ import annotations

FAMILIES = ("deterministic", "mc_dropout", "variational", "ensemble", "regularized_ensemble")


def quick() -> list[tuple[str, dict]]:
    return [
        ("pool_scoring", dict(model="gal_cnn", family="mc_dropout", n=2_000, num_samples=20)),
        ("acquisition_scores", dict(score="bald", n=10_000, num_samples=20)),
        ("batchbald", dict(batch=10, n=1_000, num_samples=20)),
        ("train", dict(model="gal_cnn", family="deterministic")),
        ("ensemble_vs_sequential", dict(num_members=5, steps=5, repeats=3)),
        ("al_cycle", dict(labeled=1_000, pool=5_000, epochs=2, repeats=2)),
        ("detection_scoring", dict(n=64, num_samples=10, repeats=2)),
        ("detection_cycle", dict(num_train=200, num_test=50, labeled=32, acquire=16, epochs=2, min_steps=0)),
        ("pool_scale", dict(sizes=(2_000, 8_000), k=1_000)),
    ]


def default() -> list[tuple[str, dict]]:
    cases = [
        ("pool_scoring", dict(model="gal_cnn", family="mc_dropout", n=10_000, num_samples=20)),
        ("pool_scoring", dict(model="gal_cnn", family="ensemble", n=10_000, num_samples=5)),
        ("pool_scoring", dict(model="gal_cnn", family="variational", n=1_000, num_samples=20)),
        ("pool_scoring", dict(model="resnet18", family="mc_dropout", n=512, num_samples=20)),
    ]
    for score in ("bald", "entropy"):
        for n in (10_000, 60_000):
            for s in (20, 100):
                cases.append(("acquisition_scores", dict(score=score, n=n, num_samples=s)))
    for b in (5, 10, 40):
        cases.append(("batchbald", dict(batch=b, n=1_000, num_samples=20)))
    cases.append(("batchbald", dict(batch=10, n=10_000, num_samples=20)))
    for family in FAMILIES:
        cases.append(("train", dict(model="gal_cnn", family=family)))
    cases.append(("train", dict(model="gal_cnn", family="variational", estimator="flipout")))
    cases.append(("train", dict(model="resnet18", family="deterministic", steps=2)))
    cases.append(("ensemble_vs_sequential", dict(num_members=5)))
    # one full cycle is a wall-time figure of its own (about a minute here): timed once after a warm-up cycle
    cases.append(("al_cycle", dict(labeled=1_000, pool=59_000, epochs=50, repeats=1)))
    cases.append(("detection_scoring", dict(n=512, num_samples=10)))
    # the detection study's middle cycle (300 labeled images, 20 epochs, box BALD over 1,700 pool
    # images, S = 8): a few minutes per cycle on 2 cores, timed once after a warm-up cycle
    cases.append(("detection_cycle", dict(num_train=2000, num_test=500, labeled=300, acquire=100,
                                          strategy="box_bald", epochs=20, num_samples=8, repeats=1)))
    cases.append(("pool_scale", dict(sizes=(10_000, 100_000), k=10_000)))
    cases.append(("pool_processes", dict(n=20_000, processes=2, k=1_000)))
    cases.append(("pool_resume", dict(n=20_000, kills=3, k=1_000)))
    cases.append(("pool_cluster_margin", dict(n=20_000, k=1_000, num_clusters=50)))
    return cases


def full() -> list[tuple[str, dict]]:
    cases = []
    for family in ("mc_dropout", "variational"):
        for n in (10_000, 60_000):
            for s in (20, 100):
                cases.append(("pool_scoring", dict(model="gal_cnn", family=family, n=n, num_samples=s)))
    for n in (10_000, 60_000):
        cases.append(("pool_scoring", dict(model="gal_cnn", family="ensemble", n=n, num_samples=5)))
    cases.append(("pool_scoring", dict(model="resnet18", family="mc_dropout", n=10_000, num_samples=20)))
    cases.append(("pool_scoring", dict(model="resnet18", family="variational", n=10_000, num_samples=20)))
    for score in ("bald", "entropy"):
        for n in (10_000, 60_000):
            for s in (20, 100):
                cases.append(("acquisition_scores", dict(score=score, n=n, num_samples=s)))
    for b in (5, 10, 40):
        for n in (1_000, 10_000, 60_000):
            for s in (20, 100):
                cases.append(("batchbald", dict(batch=b, n=n, num_samples=s, repeats=5)))
    for model in ("gal_cnn", "resnet18"):
        for family in FAMILIES:
            cases.append(("train", dict(model=model, family=family)))
        cases.append(("train", dict(model=model, family="variational", estimator="flipout")))
    for member_map in ("auto", "vmap", "map", "unroll"):
        cases.append(("ensemble_vs_sequential", dict(num_members=5, member_map=member_map)))
    cases.append(("al_cycle", dict(labeled=1_000, pool=59_000, epochs=50, repeats=3)))
    cases.append(("pool_scale", dict(sizes=(10_000, 100_000, 1_000_000), k=10_000)))
    cases.append(("pool_processes", dict(n=100_000, processes=2, k=10_000)))
    cases.append(("pool_resume", dict(n=100_000, kills=3, k=10_000)))
    cases.append(("pool_cluster_margin", dict(n=1_000_000, k=10_000, num_clusters=500)))
    return cases


MODES = {"quick": quick, "default": default, "full": full}
