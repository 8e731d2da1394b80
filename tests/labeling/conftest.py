"""Shared pieces of the people-in-the-loop tests: tiny human-oracle configs and hand-made run directories."""

import json

import numpy as np
import pytest

from bal.active.config import ExperimentConfig
from bal.labeling import state as lstate

#: a human-oracle run small enough to train in seconds on two busy cores
TINY = dict(dataset="digits", model="mlp", posterior="mc_dropout", num_samples=3, strategies=("bald",),
            include_random=False, seeds=(0,), cycles=2, epochs=2, initial_labels=20, acquisition_size=6,
            pool_subset=300, batch_size=8, quiet=True, oracle="human")


def pytest_configure(config):
    config.addinivalue_line("markers", "labelstudio: starts a local Label Studio server (its own virtual environment, "
                                       "scripts/labelstudio-env); deselect with -m 'not labelstudio'")


TIMING = ("train_seconds", "acquisition_seconds", "annotation_seconds")  # annotation: human runs only


def strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


@pytest.fixture(scope="session")
def digits_labels():
    """The true labels of the digits pool (what a careful labeler answers)."""
    from bal.active.tasks.classification import load_problem

    return load_problem(ExperimentConfig(**TINY)).train_y


def make_run_dir(path, indices=(5, 17, 42, 99), *, record=True, task="classification", classes=None):
    """A paused human-oracle run directory by hand: config, one record, pending queries of ``indices``."""
    config = ExperimentConfig(**TINY)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(config.dumps())
    if record:
        r = {"task": "classification", "strategy": "bald", "seed": 0, "cycle": 0, "num_labels": 20,
             "accuracy": 0.5, "acquired": list(indices), "final": False}
        (path / "results.jsonl").write_text(json.dumps(r) + "\n")
    queries = []
    for rank, i in enumerate(indices):
        score, source = lstate.query_score({"acquired": list(indices)}, rank)
        queries.append({"index": i, "file_name": lstate.file_name(i), "strategy": "bald", "seed": 0, "cycle": 0,
                        "rank": rank, "k": len(indices), "score": score, "score_source": source,
                        "model_version": "bald-seed0-cycle0"})
    classes = [str(c) for c in range(10)] if classes is None else classes
    lstate.write_pending(path, {"task": task, "dataset": "digits", "classes": classes,
                                "runs": [{"strategy": "bald", "seed": 0, "next_cycle": 1, "num_labels": 20}],
                                "queries": queries})
    return path


@pytest.fixture
def run_dir(tmp_path):
    return make_run_dir(tmp_path / "run")


def fake_images(n=128, shape=(8, 8, 1), seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


#: a segmentation run small enough to train in seconds: 16 x 24 road scenes, a 2 x 3 grid of 8 x 8
#: crops, 2 initial images, 2 cycles of one image's worth of pixels (tests/active/test_segmentation_loop.py)
SEGMENTATION = dict(
    num_train=8, num_test=4, image_size=(16, 24), model_kwargs={"width": 2, "depth": 1}, num_samples=2,
    strategies=("bald", "entropy_crops"), grid_rows=2, grid_cols=3, initial_images=2, acquisition_images=1.0,
    cycles=2, steps=2, batch_size=4, seeds=(0,), chunk_size=8, quiet=True, oracle="human")

#: the classes of the road_markings segmentation set
ROAD_CLASSES = ["background", "road", "lane_solid", "lane_dashed", "road_edge", "crosswalk"]


def make_segmentation_run_dir(path, units=((3, None), (5, (0, 0, 8, 8)), (5, (8, 16, 16, 24)))):
    """A paused human-oracle segmentation run directory by hand: config and the pending queries of
    ``units`` ``(pool index, crop [y0, x0, y1, x1] or None)`` of 16 x 24 images."""
    from bal.active.segmentation import SegmentationConfig

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(SegmentationConfig(**SEGMENTATION).dumps())
    queries = []
    for rank, (i, crop) in enumerate(units):
        queries.append({"index": i, "file_name": lstate.file_name(i, crop), "strategy": "entropy_crops", "seed": 0,
                        "cycle": 0, "rank": rank, "k": len(units), "score": 1.0 - rank / len(units),
                        "score_source": "rank", "model_version": "entropy_crops-seed0-cycle0",
                        **({"crop": list(crop)} if crop else {})})
    lstate.write_pending(path, {"task": "segmentation", "dataset": "road_markings", "classes": ROAD_CLASSES,
                                "image_size": [16, 24], "queries": queries,
                                "runs": [{"strategy": "entropy_crops", "seed": 0, "next_cycle": 1,
                                          "num_labels": 768}]})
    return path
