"""Object detection as a task of the loop: the unit is an image, and costs one label (its boxes).

The labeled state is a :class:`bal.data.Pool` of the train images:
``initial_images`` chosen per seed (the same for every strategy), then the
images each cycle acquires. One cycle trains the posterior over a CenterNet
(:mod:`bal.models.centernet`; from a fresh initialisation) on the labeled
images' packed targets (:meth:`bal.detection.centernet.Targets.packed`, the
posterior's loss is CenterNet's focal + L1 loss, see
:func:`build_posterior`) and, with ``hflip`` (default), on their mirror
images too (on 2,000 road scenes, 10 minutes of training on the 2-core CPU
reach AP50 0.76 with it and 0.67 without), evaluates it on the test split with COCO box AP
(:func:`bal.detection.metrics.evaluate`) of the boxes decoded from the
posterior-mean heatmap, scores the unlabeled images with the strategy
(:mod:`bal.active.detection_config` names them) and takes the top
``acquisition_images``. Records::

    {"task": "detection", "strategy": "box_bald", "seed": 0, "cycle": 2,
     "num_labeled_images": 300, "num_labeled_boxes": 912,
     "map": 0.41, "ap50": 0.72, "ap75": 0.42, "per_class_ap": [...], "ap_car": 0.55, ...,
     "train_steps": 600, "train_epochs": 32.0, "train_loss": 1.3, "acquired": [...],
     "curve": [{"epoch": 5.0, "step": 95, "map": 0.12, "ap50": 0.31, ..., "ap_pedestrian": 0.05}, ...]}

``curve`` (only in the cycles ``curve_every`` / ``curve_cycles`` select) is the
cycle's training curve, the talk's "mAP as a function of epochs": the test
metrics every ``curve_every`` epochs, the last point the cycle's own
evaluation. Every cycle trains from scratch, so cycle 0's curve is the base
model's (initial images only) and the last cycle's the curve of the data set a
strategy grew (:func:`bal.report.plot_detection` draws them).

Every random choice is a function of (seed, cycle): the initial images of
``default_rng([seed, 9])``, the keys of :func:`bal.active.kernel.cycle_key`
(training, evaluation, acquisition; the second detector of ``disagreement``
from the acquisition key), so a resumed run replays exactly.

Prediction streams: each chunk's posterior samples ``[S, n, H', W', C + 4]``
are reduced on the device (:func:`bal.predict.predict` with ``reduce``) to
decoded detections or to image scores, never held for the whole pool.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from bal import acquisition
from bal import data as bdata
from bal import posteriors as bposteriors
from bal.acquisition import boxes as box_acq
from bal.acquisition import dense
from bal.data.detection import DetectionDataset
from bal.active.detection_config import DetectionConfig, Strategy, parse_strategy
from bal.checks import check_target_classes
from bal.detection import centernet
from bal.detection.metrics import evaluate as coco_evaluate
from bal.models.centernet import output_hw, split_outputs
from bal.predict import Chunk, predict
from bal.active.tasks import check_model
from bal.train import fit, steps_per_epoch

__all__ = ["DetectionProblem", "load_detection_problem", "mirror", "encode", "build_posterior", "evaluate_detection",
           "mean_detections", "heatmap_scores", "box_scores", "disagreement_detections", "training_segments",
           "curve_point", "DetectionTask", "EVAL_DETECTIONS"]

#: detections per test image for AP (COCO's 100)
EVAL_DETECTIONS = 100


@dataclasses.dataclass(frozen=True)
class DetectionProblem:
    """The train (pool) and test splits and the train images' packed CenterNet targets
    ``float32 [N, H', W', C + 5]`` (encoded once: the oracle's answer for an image), and
    those of their mirror images (:func:`mirror`) for ``hflip`` training."""

    train: DetectionDataset
    test: DetectionDataset
    train_targets: np.ndarray
    #: the targets of the mirrored train images (``hflip``), or None
    flipped_targets: np.ndarray | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    @property
    def num_classes(self) -> int:
        return self.train.num_classes


def encode(dataset) -> np.ndarray:
    """Packed CenterNet targets ``float32 [N, H', W', C + 5]`` of a detection dataset."""
    return centernet.encode_targets(dataset.boxes, dataset.classes, dataset.valid, num_classes=dataset.num_classes,
                                    input_hw=dataset.images.shape[1:3]).packed()


def mirror(dataset: DetectionDataset) -> DetectionDataset:
    """The dataset mirrored left-right: images ``[:, :, ::-1]``, boxes ``x0, x1 -> W - x1, W - x0``."""
    width = dataset.images.shape[2]
    boxes = dataset.boxes.copy()
    boxes[..., 0], boxes[..., 2] = width - dataset.boxes[..., 2], width - dataset.boxes[..., 0]
    boxes[~dataset.valid] = 0.0
    return dataclasses.replace(dataset, images=np.ascontiguousarray(dataset.images[:, :, ::-1]), boxes=boxes)


def load_detection_problem(config: DetectionConfig) -> DetectionProblem:
    from bal.data.detection import load_road_scenes

    height, width = config.image_size
    kw = dict(height=height, width=width, seed=config.data_seed, night_fraction=config.night_fraction)
    train = load_road_scenes("train", config.num_train, **kw)
    test = load_road_scenes("test", config.num_test, **kw)
    return DetectionProblem(train, test, encode(train), encode(mirror(train)) if config.hflip else None)


def build_posterior(config: DetectionConfig, num_classes: int):
    """The posterior family of ``config`` over a CenterNet, trained with CenterNet's loss on packed
    targets and predicting its raw outputs ``[S, N, H', W', C + 4]`` (heatmap logits, size, offset)."""
    return bposteriors.build(
        config.posterior, config.model, num_classes, num_samples=config.num_samples,
        num_members=config.num_members, regularization=config.regularization, estimator=config.estimator,
        kl_weight=config.kl_weight, model_kwargs=config.model_kwargs,
        data_loss=centernet.loss_terms, output_transform=bposteriors.raw_outputs)


@functools.partial(jax.jit, static_argnums=0)
def _init(posterior, key, example_x):
    """``posterior.init`` as one compiled program (eagerly, every parameter's initialiser
    compiles on its own: about 70 small XLA:CPU compiles for a CenterNet, ~20 s)."""
    return posterior.init(key, example_x)


# ----------------------------------------------------------------------------- decoding
def _maps(outputs):
    """Per-sample ``(heatmap probs [S, n, H', W', C], size >= 0, offset)`` of raw outputs."""
    logits, size, offset = split_outputs(outputs)
    return jax.nn.sigmoid(logits), jnp.maximum(size, 0.0), offset  # a negative size is no box


def decode_mean(outputs, k: int) -> centernet.Detections:
    """Detections ``[n, k, ...]`` of the posterior mean (of heatmap probabilities, sizes, offsets)."""
    probs, size, offset = _maps(outputs)
    return centernet.decode(jnp.mean(probs, 0), jnp.mean(size, 0), jnp.mean(offset, 0), k=k)


@functools.lru_cache(maxsize=None)
def _mean_decoder(k: int):
    """A stable ``reduce`` (a static argument of the compiled prediction) decoding the posterior mean."""

    def reduce(chunk: Chunk):
        return decode_mean(chunk.log_probs, k)

    return reduce


def mean_detections(posterior, variables, images, key, *, k: int, chunk_size: int) -> centernet.Detections:
    """Posterior-mean detections of ``images`` (numpy, ``[N, k, ...]``), streamed over chunks."""
    return predict(posterior, variables, images, key, chunk_size=chunk_size, reduce=_mean_decoder(int(k)))


def evaluate_detection(posterior, variables, dataset, key, *, chunk_size: int = 32) -> dict:
    """COCO AP of the posterior-mean detections (top :data:`EVAL_DETECTIONS` peaks per image):
    ``map``, ``ap50``, ``ap75``, ``per_class_ap`` (``-1``: class absent from ``dataset``) and
    ``ap_<class name>`` per class."""
    dets = mean_detections(posterior, variables, dataset.images, key, k=EVAL_DETECTIONS, chunk_size=chunk_size)
    finite = np.isfinite(dets.scores) & np.isfinite(dets.boxes).all(axis=-1)
    valid = finite & (dets.scores > 0)  # peaks only (suppressed cells score 0)
    boxes = np.where(finite[..., None], dets.boxes, 0.0)
    scores = np.where(finite, dets.scores, 0.0)
    m = coco_evaluate(boxes, scores, dets.classes, valid, dataset.boxes, dataset.classes, dataset.valid,
                      num_classes=dataset.num_classes, max_dets=EVAL_DETECTIONS)
    out = {"map": float(m.map), "ap50": float(m.ap50), "ap75": float(m.ap75),
           "per_class_ap": [float(v) for v in m.per_class]}
    for name, v in zip(dataset.class_names, m.per_class):
        out[f"ap_{name}"] = float(v)
    return out


def disagreement_detections(posterior, variables_a, variables_b, images, key, *, k: int, score_threshold: float,
                            iou_threshold: float, chunk_size: int = 32):
    """The two-model disagreement of ``images`` ``[N, H, W, 3]``: ``(scores float32 [N], dets_a, dets_b)``.

    Each model's posterior-mean detections (top ``k`` peaks, :func:`mean_detections` with the same
    ``key``, numpy ``[N, k, ...]``); ``scores`` is :func:`bal.acquisition.boxes.disagreement` of the
    detections scoring ``>= score_threshold`` (1 − matched / union at ``iou_threshold``, same class).
    """
    a = mean_detections(posterior, variables_a, images, key, k=k, chunk_size=chunk_size)
    b = mean_detections(posterior, variables_b, images, key, k=k, chunk_size=chunk_size)
    s = box_acq.disagreement(a.boxes, a.classes, a.scores >= score_threshold, b.boxes, b.classes,
                             b.scores >= score_threshold, iou_threshold)
    return np.asarray(s, np.float32), a, b


def training_segments(steps: int, every: int) -> list[int]:
    """``steps`` split into segments of ``every`` steps (the last one shorter when it does not
    divide): ``training_segments(70, 30) == [30, 30, 10]``; ``every <= 0`` or ``>= steps``: ``[steps]``."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    if every <= 0 or every >= steps:
        return [steps]
    return [every] * (steps // every) + ([steps % every] if steps % every else [])


def curve_point(metrics: dict, step: int, steps_per_epoch: int) -> dict:
    """One point of a cycle's training curve: ``epoch`` (``step / steps_per_epoch``: an epoch is
    ``ceil(labeled / batch_size)`` steps), ``step``, and the :func:`evaluate_detection` metrics
    ``map``, ``ap50``, ``ap75``, ``per_class_ap``, ``ap_<class>``."""
    keep = {k: v for k, v in metrics.items() if k in ("map", "ap50", "ap75", "per_class_ap") or k.startswith("ap_")}
    return {"epoch": round(step / steps_per_epoch, 4), "step": int(step), **keep}


# ----------------------------------------------------------------------------- image scores
def heatmap_scores(outputs, score: str, how: str, q: float = 0.9, classes: tuple = (), strength: float = 1.0):
    """Location uncertainty of raw outputs ``[S, n, H', W', C + 4]``: image scores ``[n]``.

    The pointwise ``score`` of each cell's per-class Bernoulli ``(p, 1 - p)`` over the samples
    (:func:`bal.acquisition.dense.pixel_scores`), summed over classes, optionally weighted by the
    target classes' share of the cell (:func:`bal.acquisition.dense.class_targeted` on
    :func:`bal.detection.centernet.class_distribution`), reduced over cells by ``how``.
    """
    logits = split_outputs(outputs)[0]
    bernoulli = jnp.stack([jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)], axis=-1)
    u = jnp.sum(dense.pixel_scores(bernoulli, score, validate=False), axis=-1)  # [n, H', W']
    if classes:
        dist = centernet.class_distribution(jax.nn.sigmoid(logits))  # [S, n, H', W', C + 1]
        u = dense.class_targeted(u, jnp.log(dist), classes, strength=strength, validate=False)
    return dense.reduce_pixels(u, how, q=q)


def box_scores(outputs, score: str, how: str, *, k: int, score_threshold: float, iou_threshold: float,
               weights=(1.0, 1.0, 1.0), classes: tuple = (), strength: float = 1.0):
    """Box uncertainty of raw outputs ``[S, n, H', W', C + 4]``: image scores ``[n]``.

    Every sample's top-``k`` detections with score ``>= score_threshold`` are matched to the
    posterior-mean detections (the reference, same threshold) by
    :func:`bal.acquisition.boxes.box_uncertainty_batch`; class distributions are
    :func:`bal.detection.centernet.class_distribution` of the per-class heatmap probabilities.
    """
    probs, size, offset = _maps(outputs)
    per_sample = jax.vmap(lambda p, s, o: centernet.decode(p, s, o, k=k))(probs, size, offset)  # [S, n, k, ...]
    ref = centernet.decode(jnp.mean(probs, 0), jnp.mean(size, 0), jnp.mean(offset, 0), k=k)
    ref_valid = ref.scores >= score_threshold
    unc = box_acq.box_uncertainty_batch(
        per_sample.boxes, centernet.class_distribution(per_sample.class_probs),
        per_sample.scores >= score_threshold, reference_boxes=ref.boxes, reference_valid=ref_valid,
        iou_threshold=iou_threshold, validate=False)
    s = box_acq.image_scores(unc, score, how, weights=weights)
    if classes:
        s = box_acq.class_targeted(s, centernet.class_distribution(ref.class_probs), ref_valid, classes,
                                   strength=strength, validate=False)
    return s


@functools.lru_cache(maxsize=None)
def _scorer(strategy: Strategy, how: str, q: float, k: int, score_threshold: float, iou_threshold: float,
            weights: tuple, classes: tuple, strength: float):
    """A stable ``reduce(chunk) -> [n]`` image scores of a heatmap or box strategy."""
    classes = classes if strategy.targeted else ()

    def reduce(chunk: Chunk):
        if strategy.kind == "heatmap":
            return heatmap_scores(chunk.log_probs, strategy.score, how, q, classes, strength)
        return box_scores(chunk.log_probs, strategy.score, how, k=k, score_threshold=score_threshold,
                          iou_threshold=iou_threshold, weights=weights, classes=classes, strength=strength)

    return reduce


# ----------------------------------------------------------------------------- the task
class DetectionTask:
    """The :class:`bal.active.kernel.Task` of object detection; every unit (image) costs 1."""

    name = "detection"
    keeps_weights = False  # every cycle trains from a fresh initialisation

    def __init__(self, config: DetectionConfig, *, problem: DetectionProblem | None = None):
        if not isinstance(config, DetectionConfig):
            raise ValueError(f"config must be a DetectionConfig; got {type(config).__name__}")
        self.config = config
        self.problem = problem = load_detection_problem(config) if problem is None else problem
        if tuple(problem.train.images.shape[1:3]) != tuple(config.image_size):
            raise ValueError(f"the problem's images are {problem.train.images.shape[1:3]} but image_size is "
                             f"{config.image_size}")
        if len(problem.train) != config.num_train:
            raise ValueError(f"the problem has {len(problem.train)} train images but num_train is {config.num_train}")
        expected = (len(problem.train), *output_hw(config.image_size), problem.num_classes + 5)
        if tuple(problem.train_targets.shape) != expected:
            raise ValueError(f"train_targets must have shape {list(expected)}; got {list(problem.train_targets.shape)}")
        if config.hflip and (problem.flipped_targets is None or problem.flipped_targets.shape != expected):
            raise ValueError(f"hflip needs the problem's flipped_targets {list(expected)} (load_detection_problem "
                             "with hflip on encodes them)")
        check_target_classes(config.target_classes, problem.class_names)
        self.posterior = build_posterior(config, problem.num_classes)
        check_model(self.posterior, problem.train.images[:1])
        self.strategies = {s: parse_strategy(s) for s in config.strategies}
        self._cycle0 = {}  # seed -> (variables, metrics): cycle 0 is the same for every strategy

    # -- the labeled state ---------------------------------------------------
    def initial_labels(self, seed: int) -> bdata.Pool:
        n = self.config.num_train
        rng = np.random.default_rng([int(seed), 9])
        labeled = np.sort(rng.choice(n, self.config.initial_images, replace=False))
        return bdata.Pool(labeled, np.setdiff1d(np.arange(n), labeled), n)

    def apply(self, pool: bdata.Pool, acquired, strategy: str) -> bdata.Pool:
        return pool.acquire(np.asarray(acquired, np.int64))

    def counts(self, pool: bdata.Pool) -> dict:
        return {"num_labeled_images": pool.num_labeled,
                "num_labeled_boxes": int(self.problem.train.valid[pool.labeled].sum())}

    # -- one cycle -----------------------------------------------------------
    def train(self, init_key, fit_key, labeled: np.ndarray, targets=None, *, curve_key=None):
        """A posterior trained on the ``labeled`` images: ``(variables, fields)``.

        ``targets``: ``(targets, flipped)`` of the ``labeled`` images, ``float32 [n, H', W', C + 5]``
        each (``flipped`` None without ``hflip``), when the labels are not the dataset's (a human
        oracle, :class:`bal.labeling.oracle.HumanTask`); default the dataset's encoded boxes.

        ``curve_key`` (with ``curve_every > 0``): train in segments of ``curve_every`` epochs
        (segment ``j`` from ``fold_in(fit_key, j)``, the Adam state carried over) and evaluate the
        test split after every segment but the last (:func:`evaluate_detection` with
        ``curve_key``); ``fields["curve"]`` lists those points (:func:`curve_point`). Without it,
        one ``fit`` from ``fit_key``."""
        config, posterior, problem = self.config, self.posterior, self.problem
        n = len(labeled)
        x = problem.train.images[labeled]
        y, flipped = ((problem.train_targets[labeled], problem.flipped_targets[labeled] if config.hflip else None)
                      if targets is None else targets)
        if config.hflip:  # every labeled image and its mirror image
            x = np.concatenate([x, x[:, :, ::-1]])
            y = np.concatenate([y, flipped])
        per_epoch = steps_per_epoch(n, config.batch_size)
        if config.steps is not None:
            steps = config.steps
        else:  # whole epochs over the labeled images (mirrors not counted), at least min_steps
            steps = max(config.epochs, -(-config.min_steps // per_epoch)) * per_epoch
        variables = _init(posterior, init_key, x[:1])
        segments = [steps] if curve_key is None else training_segments(steps, config.curve_every * per_epoch)
        opt_state, curve, done = None, [], 0
        for j, segment in enumerate(segments):
            key = fit_key if len(segments) == 1 else jax.random.fold_in(fit_key, j)
            result = fit(posterior, variables, x, y, key, num_steps=segment, batch_size=config.batch_size,
                         learning_rate=config.learning_rate, weight_decay=config.weight_decay, num_train=n,
                         opt_state=opt_state)
            variables, opt_state, done = result.variables, result.opt_state, done + segment
            if j < len(segments) - 1:
                metrics = evaluate_detection(posterior, variables, problem.test, curve_key,
                                             chunk_size=config.chunk_size)
                curve.append(curve_point(metrics, done, per_epoch))
        batch = min(config.batch_size, len(x))
        fields = {"train_steps": steps, "train_epochs": round(steps * batch / n, 4),
                  "train_loss": float(result.history[-1]["loss"])}
        if curve_key is not None:
            fields["curve"] = curve
            fields["steps_per_epoch"] = per_epoch
        return jax.block_until_ready(variables), fields

    def records_curve(self, cycle: int) -> bool:
        """Whether cycle ``cycle`` records a training curve (``curve_every`` and ``curve_cycles``)."""
        cycles = self.config.curve_cycle_numbers
        return self.config.curve_every > 0 and (cycles is None or cycle in cycles)

    def train_and_evaluate(self, keys, pool: bdata.Pool, variables, *, seed: int, cycle: int, targets=None):
        """``targets``: the labeled images' targets when not the dataset's (see :meth:`train`).
        A cycle that :meth:`records_curve` evaluates along training with its evaluation key too
        and ends its ``curve`` with the cycle's own evaluation."""
        if cycle == 0 and seed in self._cycle0 and targets is None:
            return self._cycle0[seed]
        init_key, fit_key, eval_key = keys
        curve_key = eval_key if self.records_curve(cycle) else None
        variables, fields = self.train(init_key, fit_key, pool.labeled, targets, curve_key=curve_key)
        metrics = evaluate_detection(self.posterior, variables, self.problem.test, eval_key,
                                     chunk_size=self.config.chunk_size)
        if curve_key is not None:
            per_epoch = fields.pop("steps_per_epoch")
            fields["curve"] = [*fields["curve"], curve_point(metrics, fields["train_steps"], per_epoch)]
        out = (variables, {**fields, **metrics})
        if cycle == 0 and targets is None:
            self._cycle0[seed] = out
        return out

    def finished(self, pool: bdata.Pool, cycle: int, metrics: dict) -> bool:
        return cycle >= self.config.cycles or pool.num_unlabeled == 0

    def scores(self, key, strategy: str, pool: bdata.Pool, variables, targets=None) -> np.ndarray:
        """Image scores ``float32 [num_train]`` of ``strategy`` (NaN for labeled images: never chosen;
        ``targets``: the labeled images', for the second detector of ``disagreement``, see :meth:`train`)."""
        config, parsed = self.config, self.strategies[strategy]
        images, candidates = self.problem.train.images, pool.unlabeled
        out = np.full(config.num_train, np.nan, np.float32)
        if candidates.size == 0:
            return out
        if parsed.kind == "random":
            out[candidates] = np.asarray(jax.random.uniform(key, (config.num_train,)))[candidates]
            return out
        classes = tuple(int(c) for c in config.target_classes) if parsed.targeted else ()
        if parsed.kind == "disagreement":
            out[candidates] = self._disagreement(key, pool, variables, classes, targets)
            return out
        reduce = _scorer(parsed, config.reduction, float(config.q), int(config.max_detections),
                         float(config.score_threshold), float(config.iou_threshold),
                         tuple(float(w) for w in config.box_weights), classes, float(config.target_strength))
        s = predict(self.posterior, variables, images[candidates], key, chunk_size=config.chunk_size, reduce=reduce)
        out[candidates] = np.asarray(s, np.float32)
        return out

    def second_model(self, key, pool: bdata.Pool, targets=None):
        """The second detector of ``disagreement``: trained like the cycle's from keys of ``key``."""
        init_key, fit_key = jax.random.split(jax.random.fold_in(key, 1))
        return self.train(init_key, fit_key, pool.labeled, targets)[0]

    def _disagreement(self, key, pool: bdata.Pool, variables, classes: tuple, targets=None) -> np.ndarray:
        config = self.config
        other = self.second_model(key, pool, targets)
        s, a, _ = disagreement_detections(self.posterior, variables, other, self.problem.train.images[pool.unlabeled],
                                          key, k=int(config.max_detections),
                                          score_threshold=float(config.score_threshold),
                                          iou_threshold=float(config.iou_threshold), chunk_size=config.chunk_size)
        if classes:
            valid = a.scores >= config.score_threshold
            s = box_acq.class_targeted(s, centernet.class_distribution(a.class_probs), valid, classes,
                                       strength=config.target_strength, validate=False)
        return np.asarray(s, np.float32)

    def acquire(self, key, strategy: str, pool: bdata.Pool, variables, *, seed: int, cycle: int, targets=None):
        """``targets``: the labeled images' targets when not the dataset's (see :meth:`train`)."""
        k = min(self.config.acquisition_images, pool.num_unlabeled)
        if k == 0:
            return np.zeros(0, np.int64), {}
        scores = self.scores(key, strategy, pool, variables, targets)
        chosen = np.asarray(acquisition.top_k(None, jnp.asarray(scores), k), np.int64)
        return chosen, {}

