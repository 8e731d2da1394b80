"""A human oracle: the loop's labeling step answered from a label store instead of the dataset.

With ``oracle = "human"`` the loop's task is wrapped in a :class:`HumanTask`.
Everything but labeling is the wrapped task's: training, metrics, acquisition.
Labeling splits in two steps:

* ``apply(labels, acquired)`` (the kernel's, at the end of a cycle) only
  **queues** the acquired units: they leave the pool (no later cycle queries
  them again) but are not labeled;
* ``receive(labels, answers)`` (:func:`bal.active.kernel.receive`, before a
  cycle) labels the queued units whose answers arrived — the labels people
  imported into the run's label store (:mod:`bal.labeling.state`).

The semantics, exactly:

* The initial labeled set (and a ``validation_size`` hold-out) keep the
  dataset's labels: they are the seed set a project starts from. People
  answer the acquisitions only.
* Before every cycle the run receives every stored label of a queued unit.
  If units are queued and none of them got a label from an import the run
  has not seen yet, the run **pauses** ("awaiting labels"): its queries go to
  the pending-queries file and the driver moves on. Resuming with no new label
  pauses again at once. A unit another run's query had people label already
  (the strategies of an experiment may ask for the same item) is received at
  once, but does not count as new: the run still waits for an import that
  answers its other queries, as the dataset oracle would have answered them
  all.
* **Partial imports**: a cycle runs as soon as at least one new label has
  arrived. It trains on the labeled units only; the queued units without a
  label stay queued — out of the pool and out of training — until their
  labels arrive (they are then received before the next cycle, in any later
  import) and are listed again in every export. The cycle still acquires its
  full ``k`` new units, but the label budget and the stopping checks count
  the queued units as spent (they are paid for once labeled), so a budget is
  never overdrawn.
* When a run ends (cycles or budget reached, pool exhausted) its queued
  units are dropped from the pending file: the final cycle trained on what
  was labeled by then.
* With every query answered before each resume, a run is exactly the
  dataset-oracle run of the same seed (same labeled sets, same records but
  ``annotation_seconds``).
* Every record of the run carries ``annotation_seconds``: the annotation time
  people spent on the labels the cycle trained on (the sum of the label
  store's ``seconds``, Label Studio's ``lead_time``; labels imported without a
  time count 0, the initial labels are the dataset's and free). It is the
  x axis of ``bal summary``'s annotation-time curves.

Three tasks take a human oracle:

* **classification**: a label is a class index; the wrapped state is a
  :class:`bal.active.tasks.classification.Labels` whose ``y`` gets people's
  classes.
* **detection**: a label is an image's boxes, a list of
  ``{"bbox": [x0, y0, x1, y1], "class": c}`` in pixels (possibly empty: no
  object); the wrapped state is the detection task's :class:`bal.data.Pool`
  and people's boxes (``HumanLabels.given``) are encoded into CenterNet targets
  (:func:`encode_boxes`) that the detection task trains on instead of the
  dataset's (``targets=`` of :meth:`bal.active.tasks.detection.DetectionTask.train`).
  ``num_labeled_boxes`` counts people's boxes. Acquisition sees the labeled
  images as labeled and the queued ones as neither labeled nor acquirable.
* **segmentation**: a unit is a whole image or a crop of the strategy's grid,
  queued as its rectangle ``(image, y0, x0, y1, x1)`` (``HumanLabels.queued``
  is ``int64 [Q, 5]``; a query keys on the pool index, or ``(index, y0, x0,
  y1, x1)`` for a crop: :func:`bal.labeling.state.unit_key`, so the strategies
  of an experiment that ask for the same image or crop share its label). A
  label is the class map of the rectangle, ``{"shape": [h, w], "runs": [...]}``
  (:mod:`bal.labeling.masks`: class indices, 255 where people gave none).
  Receiving it marks exactly the rectangle's pixels labeled (the wrapped
  state is the labeled-pixel mask ``bool [N, H, W]``) and the task trains on
  people's classes there (``masks=`` of
  :meth:`bal.active.tasks.segmentation.SegmentationTask.train_and_evaluate`).
  Acquisition sees the queued pixels as labeled: no unit is queued twice, and
  the pixel budget counts them as spent.
"""

from __future__ import annotations

import types
from typing import Any, Mapping, NamedTuple

import numpy as np

from bal.labeling import state as lstate
from bal.labeling.state import parse_class  # noqa: F401 (re-exported)

__all__ = ["HUMAN_TASKS", "HumanLabels", "HumanTask", "class_names", "parse_class", "encode_boxes", "check_boxes",
           "unit_rects", "rect_key", "key_rect"]

#: the tasks whose acquisitions people can label
HUMAN_TASKS = ("classification", "detection", "segmentation")
_NONE: Mapping[int, Any] = types.MappingProxyType({})


class HumanLabels(NamedTuple):
    """The wrapped task's labeled state and the units queued for people to label."""

    labels: Any  # the wrapped task's labeled state (queued units are not labeled)
    queued: np.ndarray  # int64 [Q] (segmentation: [Q, 5] rectangles), in the order they were acquired
    given: Mapping[int, Any] = _NONE  # people's labels received so far, {unit: label}
    seconds: float = 0.0  # the annotation time of ``given`` (the known part)
    batch_seen: int = 0  # the newest import among the answers received so far (0: none)


def class_names(config, num_classes: int) -> tuple[str, ...]:
    """The dataset's class names (``bal.data`` registry), else ``"0" .. "C-1"``."""
    try:
        from bal.data.registry import get_info

        names = tuple(get_info(config.dataset).class_names)
    except (ValueError, AttributeError):
        names = ()
    return names if len(names) == num_classes else tuple(str(i) for i in range(num_classes))


def check_boxes(boxes, image_size, num_classes: int, where: str) -> None:
    """Raise a one-line ``ValueError`` starting with ``where`` unless ``boxes`` is a list of
    ``{"bbox": [x0, y0, x1, y1], "class": c}`` with ``0 <= x0 < x1 <= W``, ``0 <= y0 < y1 <= H``
    (``image_size = (H, W)``) and ``0 <= c < num_classes``."""
    height, width = image_size
    if not isinstance(boxes, list):
        raise ValueError(f"{where}: boxes must be a list of {{'bbox': [x0, y0, x1, y1], 'class': c}}; got {boxes!r}")
    for j, box in enumerate(boxes):
        b = box.get("bbox") if isinstance(box, dict) else None
        c = box.get("class") if isinstance(box, dict) else None
        if not (isinstance(b, list) and len(b) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)):
            raise ValueError(f"{where}: box {j} is not {{'bbox': [x0, y0, x1, y1], 'class': c}}: {box!r}")
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < num_classes:
            raise ValueError(f"{where}: box {j} has class {c!r}, not a class index 0..{num_classes - 1}")
        x0, y0, x1, y1 = b
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(f"{where}: box {j} {b} is empty or outside the {width}x{height} image")


def encode_boxes(boxes: list, image_size, num_classes: int, *, flip: bool = False) -> np.ndarray:
    """CenterNet targets ``float32 [n, H', W', C + 5]`` of ``n`` images' box lists (see
    :func:`check_boxes`), boxes mirrored left-right with ``flip`` (as
    :func:`bal.active.tasks.detection.mirror`). Per image the same as encoding the dataset's
    boxes in the same order (:func:`bal.active.tasks.detection.encode`)."""
    from bal.detection import centernet

    n, k = len(boxes), max([len(b) for b in boxes] + [1])
    xyxy, classes, valid = np.zeros((n, k, 4)), np.zeros((n, k), np.int32), np.zeros((n, k), bool)
    width = image_size[1]
    for i, image in enumerate(boxes):
        for j, box in enumerate(image):
            x0, y0, x1, y1 = (float(v) for v in box["bbox"])
            xyxy[i, j] = (width - x1, y0, width - x0, y1) if flip else (x0, y0, x1, y1)
            classes[i, j], valid[i, j] = int(box["class"]), True
    return centernet.encode_targets(xyxy, classes, valid, num_classes=num_classes,
                                    input_hw=tuple(image_size)).packed()


def unit_rects(ids, grid) -> np.ndarray:
    """The rectangles ``int64 [K, 5]`` ``(image, y0, x0, y1, x1)`` of the flat unit ids ``int [K]`` of
    a crop grid (:class:`bal.acquisition.regions.Regions`; unit ``i * R + r`` is crop ``r`` of image ``i``)."""
    ids = np.asarray(ids, np.int64).reshape(-1)
    out = np.zeros((ids.size, 5), np.int64)
    for n, (image, r) in enumerate(zip(*np.divmod(ids, grid.num_regions))):
        top, bottom, left, right = grid.box(int(r))
        out[n] = (image, top, left, bottom, right)
    return out


def rect_key(rect, image_size):
    """The unit key (:func:`bal.labeling.state.unit_key`) of a rectangle ``(image, y0, x0, y1, x1)``:
    the pool index when it is the whole ``image_size = (H, W)`` image, else the crop's tuple."""
    image, y0, x0, y1, x1 = (int(v) for v in rect)
    whole = (y0, x0, y1, x1) == (0, 0, int(image_size[0]), int(image_size[1]))
    return lstate.unit_key(image, None if whole else (y0, x0, y1, x1))


def key_rect(key, image_size) -> tuple[int, int, int, int, int]:
    """The rectangle ``(image, y0, x0, y1, x1)`` of a unit key (the inverse of :func:`rect_key`)."""
    if isinstance(key, int):
        return key, 0, 0, int(image_size[0]), int(image_size[1])
    return tuple(int(v) for v in key)


def _pixel_classes(chunk):
    """A ``reduce``: the predictive's most probable class ``int32 [n, H, W]`` and its probability."""
    import jax
    import jax.numpy as jnp

    log_p = jax.nn.logsumexp(chunk.log_probs, axis=0) - jnp.log(chunk.log_probs.shape[0])
    return jnp.argmax(log_p, axis=-1).astype(jnp.int32), jnp.exp(jnp.max(log_p, axis=-1))


def _answer(value) -> tuple[Any, float | None, int | None]:
    return (value.label, value.seconds, value.batch) if isinstance(value, lstate.Answer) else (value, None, None)


class HumanTask:
    """A classification, detection or segmentation task whose acquisitions are labeled by people
    (see the module docstring).

    Args:
      task: a :class:`bal.active.tasks.classification.ClassificationTask`,
        :class:`bal.active.tasks.detection.DetectionTask` or
        :class:`bal.active.tasks.segmentation.SegmentationTask`.
      run_dir: the run directory holding the label store and the pending-queries file.
    """

    human = True

    def __init__(self, task, run_dir):
        name = getattr(task, "name", None)
        if name not in HUMAN_TASKS or not hasattr(task, "problem"):
            raise ValueError(f"oracle = 'human' is supported for {', '.join(HUMAN_TASKS)} runs only; got a "
                             f"{name or type(task).__name__} task")
        self.task = task
        self.store = lstate.LabelStore(run_dir)
        self.run_dir = self.store.run_dir
        self.detection = name == "detection"
        self.segmentation = name == "segmentation"
        if self.detection:
            self.classes = tuple(str(c) for c in task.problem.class_names)
            self.image_size = tuple(int(v) for v in task.problem.train.images.shape[1:3])
        elif self.segmentation:
            self.classes = tuple(str(c) for c in task.problem.class_names)
            self.image_size = tuple(int(v) for v in task.problem.train_images.shape[1:3])
            if len(self.classes) > 255:
                raise ValueError(f"oracle = 'human' labels segmentation with class maps of 0..254 (255: unlabeled); "
                                 f"got {len(self.classes)} classes")
        else:
            self.classes = class_names(task.config, task.problem.num_classes)
            self.image_size = None

    def __getattr__(self, name):  # config, problem, posterior, expected_cycles, keeps_weights ...
        if name == "task" or name.endswith("_runs"):  # never side by side: one run at a time
            raise AttributeError(name)
        return getattr(self.task, name)

    @property
    def name(self) -> str:
        return self.task.name

    # -- the wrapped state ----------------------------------------------------
    def _pool(self, inner):
        return inner if self.detection else inner.pool

    def _with_pool(self, inner, pool):
        return pool if self.detection else inner._replace(pool=pool)

    def _keys(self, queued: np.ndarray) -> list:
        """The unit keys of queued units (:func:`bal.labeling.state.unit_key`)."""
        if self.segmentation:
            return [rect_key(row, self.image_size) for row in queued]
        return queued.tolist()

    def _queued_pixels(self, queued: np.ndarray) -> np.ndarray:
        """Segmentation: the pixels ``bool [N, H, W]`` of the queued rectangles."""
        out = np.zeros((len(self.task.problem.train_images), *self.image_size), bool)
        for i, y0, x0, y1, x1 in queued.tolist():
            out[i, y0:y1, x0:x1] = True
        return out

    def _masks(self, labels: HumanLabels):
        """Segmentation: ``{"masks": int32 [N, H, W]}``, the dataset's classes with people's
        class maps over the rectangles they labeled, or ``{}`` when people labeled none."""
        if not self.segmentation or not labels.given:
            return {}
        from bal.labeling.masks import unpack_map

        masks = np.array(self.task.problem.train_masks, np.int32)
        for key, label in labels.given.items():
            i, y0, x0, y1, x1 = key_rect(key, self.image_size)
            masks[i, y0:y1, x0:x1] = unpack_map(label, f"{self.store.path}: {lstate.unit_text(key)}")
        return {"masks": masks}

    def _targets(self, labels: HumanLabels):
        """Detection: ``{"targets": (targets, flipped)}`` of the labeled images with people's boxes
        encoded (:func:`encode_boxes`), or ``{}`` when people labeled none of them."""
        if not self.detection:
            return {}
        labeled = labels.labels.labeled
        mine = np.asarray([j for j, i in enumerate(labeled.tolist()) if i in labels.given], np.int64)
        if not mine.size:
            return {}
        problem, hflip = self.task.problem, self.task.config.hflip
        boxes = [labels.given[int(labeled[j])] for j in mine]
        targets = problem.train_targets[labeled]  # a copy (fancy indexing)
        targets[mine] = encode_boxes(boxes, self.image_size, problem.num_classes)
        flipped = None
        if hflip:
            flipped = problem.flipped_targets[labeled]
            flipped[mine] = encode_boxes(boxes, self.image_size, problem.num_classes, flip=True)
        return {"targets": (targets, flipped)}

    # -- the kernel's Task ----------------------------------------------------
    def initial_labels(self, seed: int) -> HumanLabels:
        return HumanLabels(self.task.initial_labels(seed), np.zeros((0, 5) if self.segmentation else 0, np.int64))

    def counts(self, labels: HumanLabels) -> dict:
        out = dict(self.task.counts(labels.labels))
        if self.detection:  # people's boxes, not the dataset's, for the images they labeled
            pool = labels.labels
            theirs = np.asarray([i for i in pool.labeled.tolist() if i not in labels.given], np.int64)
            out["num_labeled_boxes"] = int(self.task.problem.train.valid[theirs].sum()) + sum(
                len(b) for i, b in labels.given.items())
        out["annotation_seconds"] = round(float(labels.seconds), 3)
        return out

    def train_and_evaluate(self, keys, labels: HumanLabels, variables, *, seed: int, cycle: int):
        return self.task.train_and_evaluate(keys, labels.labels, variables, seed=seed, cycle=cycle,
                                            **self._targets(labels), **self._masks(labels))

    def _taken(self, labels: HumanLabels):
        """The wrapped state acquisition sees: the queued units are never picked again.
        Classification and segmentation count them as labeled (the label budget has paid for
        them); detection keeps them out of both (its second ``disagreement`` detector trains on
        the labeled images). Training never sees this view."""
        inner = labels.labels
        if not labels.queued.size:
            return inner
        if self.segmentation:
            return inner | self._queued_pixels(labels.queued)
        from bal.data import Pool

        pool = self._pool(inner)
        labeled = pool.labeled if self.detection else np.union1d(pool.labeled, labels.queued)
        return self._with_pool(inner, Pool(labeled, np.setdiff1d(pool.unlabeled, labels.queued), pool.num_examples))

    def finished(self, labels: HumanLabels, cycle: int, metrics: dict) -> bool:
        return self.task.finished(self._taken(labels), cycle, metrics)

    def acquire(self, key, strategy: str, labels: HumanLabels, variables, *, seed: int, cycle: int):
        return self.task.acquire(key, strategy, self._taken(labels), variables, seed=seed, cycle=cycle,
                                 **self._targets(labels))

    def apply(self, labels: HumanLabels, acquired, strategy: str) -> HumanLabels:
        """Queue ``acquired`` for people to label (see :meth:`receive`)."""
        acquired = np.asarray(acquired, np.int64).reshape(-1)
        if self.segmentation:
            grid = self.task.grids[strategy]
            if ((acquired < 0) | (acquired >= len(labels.labels) * grid.num_regions)).any():
                raise ValueError(f"unit ids {acquired.tolist()[:10]} are outside the pool's "
                                 f"{len(labels.labels)} x {grid.num_regions} units")
            rects, taken = unit_rects(acquired, grid), self._taken(labels)
            busy = [int(u) for u, (i, y0, x0, y1, x1) in zip(acquired, rects.tolist())
                    if taken[i, y0:y1, x0:x1].any()]
            if busy or np.unique(acquired).size != acquired.size:
                raise ValueError(f"units {busy[:10] or acquired.tolist()[:10]} are not unlabeled (labeled or "
                                 "queued pixels, or a repeat)")
            return labels._replace(queued=np.concatenate([labels.queued, rects]))
        free = np.setdiff1d(self._pool(labels.labels).unlabeled, labels.queued)
        outside = np.setdiff1d(acquired, free)
        if outside.size or np.unique(acquired).size != acquired.size:
            raise ValueError(f"indices {outside[:10].tolist() or acquired.tolist()[:10]} are not in the "
                             "unlabeled pool (or repeat)")
        return labels._replace(queued=np.concatenate([labels.queued, acquired]))

    def receive(self, labels: HumanLabels, answers: dict) -> tuple[HumanLabels, int]:
        """Label the queued units that ``answers`` holds (``{key: label}``, or
        ``{key: Answer(label, seconds, batch)}``; keys: :func:`bal.labeling.state.unit_key`);
        returns the new state and how many of them are new: from an import newer than every
        answer received before (``batch`` above ``labels.batch_seen``; an answer without a batch
        is new). A run steps when some are."""
        batches = [a.batch for a in answers.values() if isinstance(a, lstate.Answer) and a.batch is not None]
        seen = max([labels.batch_seen, *batches])
        keys = self._keys(labels.queued)
        answered = np.asarray([k in answers for k in keys], bool)
        if not answered.any():
            return labels._replace(batch_seen=seen), 0
        got = [k for k, a in zip(keys, answered) if a]
        inner, given, seconds, new = labels.labels, dict(labels.given), labels.seconds, 0
        for i in got:
            label, spent, batch = _answer(answers[i])
            new += batch is None or batch > labels.batch_seen
            where = f"{self.store.path}: {lstate.unit_text(i)}"
            if self.detection:
                check_boxes(label, self.image_size, len(self.classes), where)
            elif self.segmentation:
                from bal.labeling.masks import check_map, unpack_map

                _, y0, x0, y1, x1 = key_rect(i, self.image_size)
                check_map(unpack_map(label, where), (y1 - y0, x1 - x0), len(self.classes), where)
            elif isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(self.classes):
                raise ValueError(f"{where} has label {label!r}, not a class index 0..{len(self.classes) - 1}")
            given[i] = label
            seconds += float(spent or 0.0)
        if self.segmentation:
            inner = inner.copy()
            for i, y0, x0, y1, x1 in labels.queued[answered].tolist():
                inner[i, y0:y1, x0:x1] = True
        elif self.detection:
            inner = inner.acquire(np.asarray(got, np.int64))
        else:
            got = np.asarray(got, np.int64)
            y = inner.y.copy()
            y[got] = [given[i] for i in got.tolist()]
            inner = inner._replace(pool=inner.pool.acquire(got), y=y)
        rest = labels.queued[~answered]
        return HumanLabels(inner, rest, types.MappingProxyType(given), seconds, seen), int(new)

    def awaiting(self, labels: HumanLabels) -> bool:
        return bool(labels.queued.size)

    def answers(self, upto: int | None = None) -> dict:
        """``{index: Answer(label, seconds)}`` of the labels a cycle at ``results.jsonl``
        position ``upto`` sees (:meth:`bal.labeling.state.LabelStore.answers`)."""
        return self.store.answers(upto, timed=True)

    # -- the pause -------------------------------------------------------------
    def predictions(self, variables, indices, *, strategy: str, seed: int, cycle: int) -> list[dict]:
        """The model's pre-annotation of each of ``indices`` (unit keys), the fields a query gets:
        ``{"prediction": {label, class, probability, model_version}}`` (classification),
        ``{"boxes": [{"bbox", "class", "score"}, ...]}`` (detection: the posterior-mean
        detections scoring at least ``score_threshold``, clipped to the image) or
        ``{"prediction": {mask, confidence, model_version}}`` (segmentation: the predictive's most
        probable class of every pixel of the unit, :func:`bal.labeling.masks.pack_map`, and the mean
        of its probability)."""
        import jax

        from bal.active.kernel import cycle_key

        key = jax.random.fold_in(cycle_key(seed, cycle), 0x1AB)  # apart from the loop's keys
        task, config = self.task, self.task.config
        if self.segmentation:
            from bal.labeling.masks import pack_map
            from bal.predict import predict

            rects = [key_rect(k, self.image_size) for k in indices]
            images = sorted({r[0] for r in rects})
            row = {i: n for n, i in enumerate(images)}
            classes, confidence = (np.asarray(a) for a in predict(
                task.posterior, variables, task.problem.train_images[np.asarray(images, np.int64)], key,
                num_samples=config.num_samples, chunk_size=config.chunk_size, reduce=_pixel_classes))
            version = lstate.model_version(strategy, seed, cycle)
            return [{"prediction": {"mask": pack_map(classes[row[i], y0:y1, x0:x1]),
                                    "confidence": round(float(confidence[row[i], y0:y1, x0:x1].mean()), 6),
                                    "model_version": version}} for i, y0, x0, y1, x1 in rects]
        idx = np.asarray(indices, np.int64)
        if self.detection:
            from bal.active.tasks.detection import mean_detections

            dets = mean_detections(task.posterior, variables, task.problem.train.images[idx], key,
                                   k=config.max_detections, chunk_size=config.chunk_size)
            height, width = self.image_size
            out = []
            for boxes, scores, classes in zip(np.asarray(dets.boxes, np.float64), np.asarray(dets.scores),
                                              np.asarray(dets.classes)):
                found = []
                for b, score, c in zip(boxes, scores, classes):
                    if not (np.isfinite(score) and np.isfinite(b).all() and score >= config.score_threshold):
                        continue
                    x0, x1 = (round(float(np.clip(v, 0, width)), 2) for v in (b[0], b[2]))
                    y0, y1 = (round(float(np.clip(v, 0, height)), 2) for v in (b[1], b[3]))
                    if x1 > x0 and y1 > y0:
                        found.append({"bbox": [x0, y0, x1, y1], "class": int(c), "score": round(float(score), 4)})
                out.append({"boxes": found})
            return out
        from bal.predict import predict, predictive

        log_p = np.asarray(predict(task.posterior, variables, task.problem.train_x[idx], key,
                                   chunk_size=config.chunk_size, reduce=predictive))
        probs = np.exp(log_p)
        version = lstate.model_version(strategy, seed, cycle)
        return [{"prediction": {"label": int(c), "class": self.classes[int(c)], "probability": round(float(p[c]), 6),
                                "model_version": version}} for c, p in zip(probs.argmax(-1), probs)]

    def pause(self, strategy: str, seed: int, state, records: list[dict], *, fresh: bool):
        """Write run ``(strategy, seed)``'s queued units to the pending-queries file (none once
        the run is final). ``fresh``: ``state.variables`` is the model of the last record, so its
        predictions are (re)computed; otherwise earlier predictions are kept."""
        config = self.task.config
        meta = dict(task=self.name, dataset=getattr(config, "dataset", None), classes=self.classes,
                    image_size=self.image_size)
        if state.final:
            return lstate.update_run(self.run_dir, strategy, seed, None, **meta)
        asked = {}
        for r in records:
            units = r.get("acquired") or []
            if self.segmentation:
                units = [rect_key(row, self.image_size) for row in unit_rects(units, self.task.grids[strategy])]
            for rank, i in enumerate(units):
                asked[i] = (r, rank)
        old = {lstate.query_key(q): q for q in (lstate.read_pending(self.run_dir) or {"queries": []})["queries"]
               if q.get("strategy") == strategy and q.get("seed") == seed}
        queued = self._keys(state.labels.queued)
        predictions = {}
        if fresh and state.variables is not None and queued and records:
            predictions = dict(zip(queued, self.predictions(state.variables, queued, strategy=strategy, seed=seed,
                                                            cycle=records[-1]["cycle"])))
        queries = []
        for i in queued:
            r, rank = asked[i]
            score, source = lstate.query_score(r, rank)
            index, crop = (i, None) if isinstance(i, int) else (i[0], list(i[1:]))
            q = {"index": index, "file_name": lstate.file_name(index, crop), "strategy": strategy, "seed": seed,
                 "cycle": r["cycle"], "rank": rank, "k": len(r["acquired"]), "score": score,
                 "score_source": source, "model_version": lstate.model_version(strategy, seed, r["cycle"]),
                 **({"crop": crop} if crop else {})}
            earlier = {k: old[i][k] for k in ("prediction", "boxes") if k in old.get(i, {})}
            q.update(predictions.get(i) or earlier)
            queries.append(q)
        labeled = state.labels.labels
        num_labels = int(labeled.sum()) if self.segmentation else int(self._pool(labeled).num_labeled)
        return lstate.update_run(self.run_dir, strategy, seed, queries, next_cycle=state.cycle,
                                 num_labels=num_labels, **meta)
