"""The talk's disagreement slide: pool images where two detectors agree least and most.

Two detectors trained independently on the same labeled images ("Model 1",
"Model 2") disagree on an image by :func:`bal.acquisition.boxes.disagreement`
(1 − matched / union of their boxes, IoU >= 0.5 and the same class). The
figure shows the ``k`` pool images of highest disagreement ("high confusion",
top row) and the ``k`` of lowest ("low confusion", bottom row), both models'
boxes drawn on each: Model 1 solid orange, Model 2 dashed blue.

From a detection run directory (the models of one cycle of one run, retrained
exactly as the run trained them: the cycle's model and the ``disagreement``
strategy's second model, from the keys of (seed, cycle))::

    python -m bal.detection.figures RUN_DIR --seed 0 --cycle 0 --k 4 --out disagreement.png

Cycle 0 (the initial images) is the same for every strategy; a later cycle
replays the acquisitions of ``--strategy`` (default ``disagreement`` when the
run has it) up to it.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

__all__ = ["MODEL_STYLES", "select_examples", "disagreement_figure", "run_examples", "run_disagreement_figure",
           "main"]

#: how each model's boxes are drawn: (label, colour, line style)
MODEL_STYLES = (("Model 1", "tab:orange", "-"), ("Model 2", "tab:blue", "--"))


def select_examples(scores, num_boxes, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(high [k], low [k])`` into ``scores [N]``: the ``k`` largest scores and the ``k``
    smallest; among equal scores those with more boxes ``num_boxes [N]`` (both models'
    together) first, then the earlier index, so that "low confusion" shows images where the
    models agree on objects rather than empty ones (and "high confusion" ones with objects
    to disagree on). ``k`` is capped at ``N // 2`` so the two rows never share an image."""
    scores, num_boxes = np.asarray(scores, np.float64), np.asarray(num_boxes)
    if scores.ndim != 1 or num_boxes.shape != scores.shape:
        raise ValueError(f"scores and num_boxes must both have shape [N]; got {scores.shape} and {num_boxes.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite (score the unlabeled images only)")
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    k = min(k, len(scores) // 2)
    if k == 0:
        raise ValueError(f"need at least 2 images to show a high and a low example; got {len(scores)}")
    high = np.lexsort((-num_boxes, -scores))[:k]
    low = np.lexsort((-num_boxes, scores))  # by score, then more boxes first
    low = np.array([i for i in low if i not in set(high.tolist())][:k])
    return high, low


def _draw(ax, image, boxes, classes, valid, class_names, colour, style):
    from matplotlib.patches import Rectangle

    for (x0, y0, x1, y1), c in zip(boxes[valid], classes[valid]):
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linestyle=style,
                               linewidth=1.4))
        name = class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(int(c))
        ax.text(x0, y0 - 1, name, color=colour, fontsize=5.5, va="bottom")


def disagreement_figure(images, dets_a, dets_b, scores, out_path, *, k: int = 4, score_threshold: float = 0.3,
                        class_names=None, ids=None, title: str | None = None, panel_size=(3.2, 2.5),
                        dpi: int = 100) -> pathlib.Path:
    """Draw the ``k`` highest- and ``k`` lowest-``scores`` images with both models' boxes; write a PNG.

    Args:
      images: ``[N, H, W, 3]`` in ``[0, 1]``.
      dets_a, dets_b: the two models' detections (:class:`bal.detection.centernet.Detections`,
        numpy ``boxes [N, D, 4]``, ``scores [N, D]``, ``classes [N, D]``); boxes scoring
        ``>= score_threshold`` are drawn (and counted for :func:`select_examples`).
      scores: ``[N]`` disagreement of each image (higher = more).
      out_path: the PNG; its size is ``(k · panel_size[0], 2 · panel_size[1] + 0.7)`` inches
        at ``dpi`` (``k`` capped as in :func:`select_examples`).
      class_names: names of the class ids, for the box labels.
      ids: ``[N]`` the images' ids shown in the panel titles (default ``0 .. N-1``).
    Returns the PNG's path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    images = np.asarray(images)
    n = len(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must have shape [N, H, W, 3]; got {images.shape}")
    sets = []
    for side, d in (("a", dets_a), ("b", dets_b)):
        boxes, det_scores, classes = (np.asarray(d.boxes), np.asarray(d.scores), np.asarray(d.classes))
        if boxes.shape[:1] != (n,) or boxes.shape[-1:] != (4,) or det_scores.shape != boxes.shape[:-1]:
            raise ValueError(f"dets_{side} must hold boxes [N={n}, D, 4] and scores [N, D]; got {boxes.shape} and "
                             f"{det_scores.shape}")
        sets.append((boxes, classes, np.isfinite(det_scores) & (det_scores >= score_threshold)))
    scores = np.asarray(scores, np.float64)
    if scores.shape != (n,):
        raise ValueError(f"scores must have shape [N={n}]; got {scores.shape}")
    ids = np.arange(n) if ids is None else np.asarray(ids)
    high, low = select_examples(scores, sets[0][2].sum(1) + sets[1][2].sum(1), k)
    k = len(high)
    width, height = panel_size
    fig, axes = plt.subplots(2, k, figsize=(k * width, 2 * height + 0.7), dpi=dpi, squeeze=False)
    for row, (chosen, label) in enumerate(((high, "high confusion"), (low, "low confusion"))):
        for col, i in enumerate(chosen):
            ax = axes[row, col]
            ax.imshow(np.clip(images[i], 0, 1), interpolation="nearest")
            for (boxes, classes, valid), (_, colour, style) in zip(sets, MODEL_STYLES):
                _draw(ax, images[i], boxes[i], classes[i], valid[i], class_names, colour, style)
            ax.set_title(f"image {int(ids[i])}: disagreement {scores[i]:.2f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(label, fontsize=9)
    handles = [Line2D([], [], color=colour, linestyle=style, label=name) for name, colour, style in MODEL_STYLES]
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title or "two detectors on pool images: highest and lowest disagreement", fontsize=10)
    fig.subplots_adjust(left=0.04, right=0.99, top=1 - 0.45 / fig.get_figheight(),
                        bottom=0.35 / fig.get_figheight(), wspace=0.05, hspace=0.25)
    out_path = pathlib.Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=dpi)
    plt.close(fig)
    return out_path


def run_examples(run_dir, *, seed: int = 0, cycle: int = 0, strategy: str | None = None, task=None) -> dict:
    """The two models of a recorded cycle and their disagreement on its unlabeled pool.

    Reads ``RUN_DIR/config.json`` and ``results.jsonl`` (a detection run, dataset oracle),
    replays ``strategy``'s acquisitions of ``seed`` before ``cycle`` (``strategy`` default
    ``disagreement`` if the run has it, else its first; cycle 0 needs none), and trains the
    cycle's model and the second detector of ``disagreement`` from the keys of ``(seed, cycle)``
    exactly as the run did (:func:`bal.active.kernel.cycle_key`). ``task``: a prebuilt
    :class:`bal.active.tasks.detection.DetectionTask` of the run's config (default: built here).

    Returns ``{"images" [U, H, W, 3], "ids" [U] (train indices of the unlabeled images),
    "scores" [U], "dets_a", "dets_b", "config", "strategy", "record" (the cycle's record),
    "class_names", "train_loss" (model 1's: the record's ``train_loss`` when the replay is exact)}``.
    """
    import json

    import jax

    from bal.active import kernel
    from bal.active.config import config_from_dict
    from bal.active.results import RESULTS, read_records
    from bal.active.tasks.detection import DetectionTask, disagreement_detections

    run_dir = pathlib.Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"no run config {config_path} (a run directory of bal run)")
    config = config_from_dict(json.loads(config_path.read_text()))
    if config.task != "detection":
        raise ValueError(f"{config_path}: task is {config.task!r}; the disagreement figure needs a detection run")
    if getattr(config, "oracle", "dataset") != "dataset":
        raise ValueError(f"{config_path}: oracle is {config.oracle!r}; the figure replays dataset-labeled runs only")
    strategy = strategy or ("disagreement" if "disagreement" in config.strategies else config.strategies[0])
    if strategy not in config.strategies:
        raise ValueError(f"strategy {strategy!r} is not one of the run's {list(config.strategies)} ({config_path})")
    records = [r for r in read_records(run_dir / RESULTS) if r["strategy"] == strategy and r["seed"] == seed]
    records.sort(key=lambda r: r["cycle"])
    record = next((r for r in records if r["cycle"] == cycle), None)
    if record is None:
        raise ValueError(f"{run_dir / RESULTS} has no cycle {cycle} of {strategy!r} seed {seed} (recorded cycles: "
                         f"{[r['cycle'] for r in records]})")
    task = DetectionTask(config) if task is None else task
    state = kernel.init(task, seed)
    for r in records[:cycle]:
        state = kernel.replay(task, strategy, state, r.get("acquired") or [])
    pool = state.labels
    if pool.num_unlabeled < 2:
        raise ValueError(f"cycle {cycle} of {strategy!r} seed {seed} leaves {pool.num_unlabeled} unlabeled images")
    init_key, fit_key, eval_key, acq_key = jax.random.split(kernel.cycle_key(seed, cycle), 4)
    curve_key = eval_key if task.records_curve(cycle) else None  # the run trained in curve segments
    model_1, fields = task.train(init_key, fit_key, pool.labeled, curve_key=curve_key)
    model_2 = task.second_model(acq_key, pool)
    images = task.problem.train.images[pool.unlabeled]
    scores, a, b = disagreement_detections(task.posterior, model_1, model_2, images, acq_key,
                                           k=int(config.max_detections), score_threshold=float(config.score_threshold),
                                           iou_threshold=float(config.iou_threshold), chunk_size=config.chunk_size)
    return {"images": images, "ids": pool.unlabeled, "scores": scores, "dets_a": a, "dets_b": b, "config": config,
            "strategy": strategy, "record": record, "class_names": task.problem.class_names,
            "train_loss": fields["train_loss"]}


def run_disagreement_figure(run_dir, out_path=None, *, seed: int = 0, cycle: int = 0, k: int = 4,
                            strategy: str | None = None, task=None) -> tuple[pathlib.Path, dict]:
    """:func:`run_examples` drawn by :func:`disagreement_figure` (default
    ``RUN_DIR/disagreement_seed<seed>_cycle<cycle>.png``); returns the path and the examples."""
    ex = run_examples(run_dir, seed=seed, cycle=cycle, strategy=strategy, task=task)
    config = ex["config"]
    labeled = ex["record"].get("num_labeled_images")
    default = pathlib.Path(run_dir) / f"disagreement_seed{seed}_cycle{cycle}.png"
    out_path = pathlib.Path(out_path) if out_path else default
    title = (f"two detectors trained on the same {labeled} labeled images (seed {seed}, cycle {cycle}): "
             f"high vs low disagreement on {len(ex['ids'])} pool images")
    path = disagreement_figure(ex["images"], ex["dets_a"], ex["dets_b"], ex["scores"], out_path, k=k,
                               score_threshold=float(config.score_threshold), class_names=ex["class_names"],
                               ids=ex["ids"], title=title)
    return path, ex


def main(argv=None) -> int:
    """``python -m bal.detection.figures RUN_DIR ...``: write the disagreement figure; one-line errors, status 2."""
    ap = argparse.ArgumentParser(prog="python -m bal.detection.figures", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", help="a detection run directory (config.json, results.jsonl)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cycle", type=int, default=0, help="the cycle whose two models are compared (default 0)")
    ap.add_argument("--strategy", default=None, help="whose acquisitions lead to --cycle (default disagreement)")
    ap.add_argument("--k", type=int, default=4, help="images per row (default 4)")
    ap.add_argument("--out", default=None, help="PNG path (default RUN_DIR/disagreement_seed<S>_cycle<C>.png)")
    args = ap.parse_args(argv)
    try:
        path, ex = run_disagreement_figure(args.run_dir, args.out, seed=args.seed, cycle=args.cycle, k=args.k,
                                           strategy=args.strategy)
    except (ValueError, OSError) as err:
        text = str(err).strip().splitlines()
        print(f"{ap.prog}: error: {text[0] if text else type(err).__name__}", file=sys.stderr)
        return 2
    s = ex["scores"]
    print(f"{path} (disagreement over {len(s)} pool images: mean {s.mean():.3f}, max {s.max():.3f}, min {s.min():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
