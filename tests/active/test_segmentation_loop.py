"""The segmentation active-learning loop: budgets, no crop twice, resume, pretrained start, errors."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal import checkpoint
from bal.acquisition import dense, regions
from bal.active.run import run as run_segmentation
from bal.active.segmentation import (
    SegmentationConfig,
    parse_strategy,
    select_within_budget,
    unit_costs,
    unit_grid,
    unit_scores,
)
from bal.active.tasks.segmentation import (
    SegmentationTask,
    build_posterior,
    load_pretrained,
    load_segmentation_problem,
)


def _initial_mask(config, shape, seed):
    problem = load_segmentation_problem(dataclasses.replace(config, num_train=shape[0], num_test=2))
    return SegmentationTask(config, problem=problem).initial_labels(seed)
from bal.predict import predict

from .interrupt import Stop, StopAfter

# 16 x 24 images, a 2 x 3 grid of 8 x 8 crops: one image = 384 px = 6 crops
TINY = SegmentationConfig(
    num_train=8, num_test=4, image_size=(16, 24), model_kwargs={"width": 2, "depth": 1}, num_samples=2,
    strategies=("random", "bald", "entropy_crops"), grid_rows=2, grid_cols=3, initial_images=2,
    acquisition_images=1.0, cycles=2, steps=2, batch_size=4, seeds=(0,), chunk_size=8, quiet=True)

TIMING = ("train_seconds", "acquisition_seconds")


def _strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


@pytest.fixture(scope="module")
def problem():
    return load_segmentation_problem(TINY)


@pytest.fixture(scope="module")
def full_run(problem, tmp_path_factory):
    out = tmp_path_factory.mktemp("seg") / "run"
    return out, run_segmentation(TINY, out, problem=problem)


def test_records_count_pixels_and_spend_equal_budgets(full_run):
    _, records = full_run
    by = {}
    for r in records:
        by.setdefault(r["strategy"], []).append(r)
    assert sorted(by) == ["bald", "entropy_crops", "random"]
    for strategy, run in by.items():
        assert [r["cycle"] for r in run] == [0, 1, 2]
        assert run[0]["num_labeled_pixels"] == 2 * 384 and run[-1]["final"]
        for r in run:
            assert r["task"] == "segmentation" and "num_labels" not in r
            assert 0 <= r["mean_iou"] <= 1 and len(r["iou"]) == 6 and "iou_crosswalk" in r
        for a, b in zip(run, run[1:]):
            assert a["acquired_pixels"] == 384  # the budget, exactly: crops tile it
            assert b["num_labeled_pixels"] == a["num_labeled_pixels"] + a["acquired_pixels"]
    # image- and crop-level strategies have equal labeled pixels every cycle
    for c in range(3):
        assert len({by[s][c]["num_labeled_pixels"] for s in by}) == 1
    assert len(by["entropy_crops"][0]["acquired"]) == 6 and len(by["bald"][0]["acquired"]) == 1


def test_budget_selection_is_greedy_and_never_overspends():
    scores = np.array([[0.9, np.nan, 0.5], [0.7, 0.8, 0.1]])
    costs = np.array([[10, 10, 10], [10, 0, 12]])
    ids, spent = select_within_budget(scores, costs, 25)
    assert ids.tolist() == [0, 3] and spent == 20  # 4 has no cost left, 1 is NaN; 2 would overspend
    ids, spent = select_within_budget(scores, costs, 5)
    assert ids.size == 0 and spent == 0


def test_a_crop_is_never_acquired_twice(problem, tmp_path):
    # 4 pool images after the initial 2 (24 crops); 4 cycles of 5 crops' worth each (320 of 384 px)
    config = dataclasses.replace(TINY, strategies=("bald_crops", "random_crops"), num_train=6,
                                 acquisition_images=None, acquisition_pixels=5 * 64, cycles=4)
    small = dataclasses.replace(problem, train_images=problem.train_images[:6],
                                train_masks=problem.train_masks[:6])
    records = run_segmentation(config, tmp_path / "run", problem=small)
    for strategy in config.strategies:
        run = [r for r in records if r["strategy"] == strategy]
        ids = [i for r in run for i in r["acquired"]]
        assert len(ids) == 20 and len(set(ids)) == len(ids)
        assert all(r["acquired_pixels"] == 5 * 64 for r in run[:-1])
        initial = set(np.flatnonzero(_initial_mask(config, (6, 16, 24), 0).any(axis=(1, 2))).tolist())
        assert len(initial) == 2 and not initial & {i // 6 for i in ids}  # never a crop of an initial image


def test_labeled_crops_score_nan_and_streamed_scores_match_direct(problem):
    config = TINY
    post = build_posterior(config, problem.num_classes)
    variables = post.init(jax.random.key(0), problem.train_images[:1])
    strategy = parse_strategy("bald_crops")
    grid = unit_grid(strategy, 16, 24, 2, 3)
    labeled = np.zeros((8, 16, 24), bool)
    labeled[0] = True
    labeled[3, :8, :8] = True  # crop 0 of image 3
    labeled[5, 0, 0] = True  # one pixel of crop 0 of image 5
    key = jax.random.key(1)
    s = unit_scores(strategy, grid, post, variables, problem.train_images, labeled, key, num_samples=2,
                    chunk_size=8)
    assert s.shape == (8, 6)
    assert np.all(np.isnan(s[0])) and np.isnan(s[3, 0]) and np.all(np.isfinite(s[3, 1:]))
    assert np.isfinite(s[5, 0])
    # the scores streamed through predict's reduce (7 candidate images, one padded chunk) equal
    # the direct computation on the full [S, N, H, W, C]
    cand = np.arange(1, 8)
    lp = predict(post, variables, problem.train_images[cand], key, num_samples=2, chunk_size=8)
    direct = regions.region_scores(dense.pixel_scores(lp, "bald"), grid, "mean", mask=~labeled[cand])
    np.testing.assert_allclose(s[1:], np.asarray(direct), rtol=1e-5, atol=1e-6)
    costs = unit_costs(labeled, grid)
    assert costs[0].sum() == 0 and costs[3, 0] == 0 and costs[5, 0] == 63 and costs[1, 0] == 64


def test_resume_after_an_interruption_gives_identical_records(problem, full_run, tmp_path):
    _, reference = full_run

    out = tmp_path / "run"
    with pytest.raises(Stop):
        run_segmentation(TINY, out, problem=problem, progress=StopAfter(4))
    assert len((out / "results.jsonl").read_text().splitlines()) == 4
    with pytest.raises(ValueError, match="--resume"):
        run_segmentation(TINY, out, problem=problem)
    resumed = run_segmentation(TINY, out, problem=problem, resume=True)
    assert _strip(resumed) == _strip(reference)
    on_disk = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(on_disk) == len(reference)
    with pytest.raises(ValueError, match="differs in cycles"):
        run_segmentation(dataclasses.replace(TINY, cycles=1), out, problem=problem, resume=True)


def test_pretrained_checkpoint_starts_every_cycle(problem, tmp_path):
    config = dataclasses.replace(TINY, strategies=("random",), cycles=0)
    post = build_posterior(config, problem.num_classes)
    variables = post.init(jax.random.key(42), problem.train_images[:1])
    path = checkpoint.save(tmp_path / "ckpt", {"variables": variables})
    restored = load_pretrained(path, post, problem.train_images[:1])
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), restored, variables))
    # a learning rate of 1e-30 leaves the weights as they start: the record must then be the
    # checkpoint's own test metrics, not those of a fresh initialisation
    frozen = dataclasses.replace(config, pretrained=str(path), learning_rate=1e-30)
    records = run_segmentation(frozen, tmp_path / "run", problem=problem)
    assert len(records) == 1 and records[0]["final"]
    from bal.active import kernel
    from bal.active.tasks.segmentation import evaluate_segmentation

    eval_key = jax.random.split(kernel.cycle_key(0, 0), 4)[2]
    own = evaluate_segmentation(post, variables, problem.test_images, problem.test_masks, eval_key,
                                num_samples=config.num_samples, chunk_size=config.chunk_size)
    assert records[0]["mean_iou"] == pytest.approx(own["mean_iou"], abs=1e-6)
    assert records[0]["nll"] == pytest.approx(own["nll"], rel=1e-5)
    fresh = run_segmentation(dataclasses.replace(config, learning_rate=1e-30), tmp_path / "fresh", problem=problem)
    assert fresh[0]["nll"] != pytest.approx(own["nll"], rel=1e-3)
    with pytest.raises(FileNotFoundError, match="no pretrained checkpoint"):
        run_segmentation(dataclasses.replace(config, pretrained=str(tmp_path / "nope")), tmp_path / "r2",
                         problem=problem)
    wrong = checkpoint.save(tmp_path / "wrong", {"weights": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="does not hold variables"):
        load_pretrained(wrong, post, problem.train_images[:1])


@pytest.mark.parametrize("changes, message", [
    (dict(grid_rows=17), "does not fit 16x24 images"),
    (dict(grid_cols=25), "does not fit 16x24 images"),
    (dict(reduction="median"), "unknown pixel reduction 'median'"),
    (dict(strategies=("bald_tiles",)), "unknown segmentation strategy 'bald_tiles'"),
    (dict(strategies=("random_targeted",), target_classes=(5,)), "cannot be class-targeted"),
    (dict(strategies=("bald_crops_targeted",)), "needs target_classes"),
    (dict(acquisition_images=4.0), "only 2304 are left to label"),
    (dict(acquisition_images=1.0, acquisition_pixels=10), "exactly one of"),
    (dict(initial_images=9), "larger than the pool"),
    (dict(q=1.5), "q must lie in"),
    (dict(dataset="cityscapes"), "unknown segmentation dataset"),
])
def test_bad_settings_raise_clear_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **changes)


def test_target_class_out_of_range_is_refused_before_training(problem, tmp_path):
    config = dataclasses.replace(TINY, strategies=("bald_crops_targeted",), target_classes=(6,))
    with pytest.raises(ValueError, match="target class 6 is out of range"):
        run_segmentation(config, tmp_path / "run", problem=problem)
    assert not (tmp_path / "run").exists()


def test_train_steps_scale_with_label_sparsity():
    config = dataclasses.replace(TINY, steps=10, steps_per_image=2.0)
    assert config.train_steps(3 * 384, 3) == 16  # 10 + 2 per labeled image's worth of pixels
    assert config.train_steps(3 * 384, 12) == 16  # scattered crops: not scaled by default
    scaled = dataclasses.replace(config, scale_steps_by_sparsity=True)
    assert scaled.train_steps(3 * 384, 3) == 16  # whole images: factor 1
    assert scaled.train_steps(3 * 384, 12) == 64  # labels spread over 4x the images: 4x the steps
