"""Every study config in experiments/configs runs (tiny, offline) through the one loop.

A smoke version of a study keeps its task, strategies, acquisition rule and
posterior family, and shrinks data, model, budget and seeds so it runs in
seconds; the records it writes are checked, not only counted.
"""

import dataclasses
import pathlib
import subprocess
import sys

import pytest

from bal.active.config import config_from_dict, load_config
from bal.active.run import run

CONFIGS = sorted((pathlib.Path(__file__).parent.parent / "experiments" / "configs").glob("*.toml"))

SMOKE = {
    "classification": dict(dataset="digits", model="mlp", model_kwargs={}, data_dir=None, repeat=1,
                           num_samples=4, initial_labels=20, epochs=3, seeds=(0,), pool_subset=300,
                           num_members=2, target_accuracy=None),
    "segmentation": dict(num_train=24, num_test=8, image_size=(16, 24), model_kwargs={"width": 4},
                         num_samples=2, initial_images=4, acquisition_images=2.0, acquisition_pixels=None,
                         cycles=1, steps=2, steps_per_image=0.0, batch_size=4, seeds=(0,), chunk_size=8),
    "detection": dict(num_train=24, num_test=8, image_size=(32, 48), model_kwargs={"widths": (4, 8, 8), "head_width": 8,
                      "num_groups": 4}, num_samples=2, initial_images=6, acquisition_images=4, cycles=1, epochs=None,
                      steps=2, min_steps=0, batch_size=4, seeds=(0,), chunk_size=8),
}


def smoke(config):
    overrides = dict(SMOKE[config.task])
    if config.task == "classification":
        if config.growth is not None:  # keep the growth rule, bounded
            overrides.update(cycles=2, label_budget=None)
        else:
            overrides.update(acquisition_size=10, cycles=2, label_budget=None)
        if config.posterior not in ("ensemble", "regularized_ensemble"):
            overrides["num_members"] = None
    return dataclasses.replace(config, **overrides)


def test_every_study_has_a_config():
    names = {p.stem for p in CONFIGS}
    assert {"mnist_gal2017", "fashion_mnist", "growth_10pct", "least_vs_most_mnist", "batch_acquisition_mnist",
            "batch_acquisition_repeated_mnist", "cifar10_variational_flipout", "segmentation_crops_vs_images",
            "segmentation_targeting", "detection_road_scenes", "fashion_mnist_stopping",
            "posterior_families_mc_dropout", "posterior_families_variational",
            "posterior_families_regularized_ensemble", "posterior_families_ensemble"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_study_smoke(path, tmp_path):
    config = smoke(config_from_dict(load_config(path)))
    records = run(config, tmp_path)
    strategies = config.all_strategies if config.task == "classification" else config.strategies
    assert {r["strategy"] for r in records} == set(strategies)
    for strategy in strategies:
        recs = [r for r in records if r["strategy"] == strategy]
        assert [r["cycle"] for r in recs] == list(range(len(recs))) and recs[-1]["final"]
        acquired = [i for r in recs for i in r["acquired"]]
        if config.task == "classification":
            assert len(recs) == 3
            counts = [r["num_labels"] for r in recs]
            for a, b, r in zip(counts, counts[1:], recs):
                assert b == a + len(r["acquired"]) and len(r["acquired"]) == config.acquisition_count(a)
            assert len(set(acquired)) == len(acquired), "an item acquired twice"
        elif config.task == "segmentation":
            assert len(recs) == 2 and all(r["task"] == "segmentation" for r in recs)
            assert recs[1]["num_labeled_pixels"] == recs[0]["num_labeled_pixels"] + recs[0]["acquired_pixels"]
            assert len(set(acquired)) == len(acquired), "a unit acquired twice"
        else:
            assert len(recs) == 2 and all(r["task"] == "detection" and 0 <= r["map"] <= 1 for r in recs)
            assert [r["num_labeled_images"] for r in recs] == [6, 10] and len(set(acquired)) == 4


def test_cifar10_without_data_says_how_to_get_it(tmp_path):
    path = next(p for p in CONFIGS if p.stem.startswith("cifar10"))
    res = subprocess.run([sys.executable, "-m", "bal.cli", "run", str(path), "--quiet", "--cycles", "1",
                          "--out", str(tmp_path / "r"), "--data-dir", str(tmp_path / "empty")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert "cifar-10-python.tar.gz" in res.stderr and "download" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "config.json").exists()
