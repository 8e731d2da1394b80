"""The queries awaiting labels, written for labeling tools (``bal queries export``).

:func:`export_queries` writes, into one directory (default ``RUN_DIR/queries``),
the images of the queried pool items as PNG (``pool_000123.png``, the stable
name every format joins on; a queried segmentation crop ``[y0, x0, y1, x1]`` is
its own image, ``pool_000123_crop_8_16_24_32.png``, pixels ``y0:y1, x0:x1``)
and, for every awaiting query, most informative first:

``queries.jsonl``
    one object per query: ``index``, ``file_name``, ``rank`` (position in its
    cycle's ``acquired``), ``score`` and ``score_source`` (``"recorded"``, or
    ``"rank"``: ``1 - rank / k``, as records hold no scores yet), ``strategy``,
    ``seed``, ``cycle``, ``model_version`` (``"<strategy>-seed<seed>-cycle<cycle>"``),
    ``queried_by`` (every run that asked), and when known ``prediction``
    (class, probability, the model that predicted; segmentation: the predicted
    class ``mask`` of the unit, :func:`bal.labeling.masks.pack_map`, and its
    ``confidence``), ``crop`` ``[y0, x0, y1, x1]`` (crop-level segmentation) and
    ``boxes`` (predicted detections).
``tasks.json``
    Label Studio tasks with pre-annotations ("import pre-annotated data"):
    ``data.image`` (``--image-root`` + file name), the query fields in ``data``
    (``pool_index`` is what the import joins on), and one prediction per task
    with ``model_version``, ``result`` (a ``choices`` result with the predicted
    class; ``rectanglelabels`` for predicted boxes; for segmentation one
    ``brushlabels`` result per predicted class, its pixels as Label Studio's
    brush RLE, :func:`bal.labeling.masks.mask_to_brush`, over the exported
    image or crop) and ``score`` =
    ``position / n`` of the task in this export: Label Studio's Data Manager
    shows the lowest prediction score first, so sorting by it (or uncertainty
    sampling) serves the most informative query first.
``label_config.xml``
    a labeling interface whose names match the predictions (``<Image name="image">``,
    ``<Choices name="label">``, ``<RectangleLabels name="label">``, or for
    segmentation ``<BrushLabels name="label">`` and ``<PolygonLabels name="polygon">``,
    a colour per class).
``coco.json``
    COCO: ``images`` (``id`` = pool index, ``file_name``, size, query fields),
    ``categories`` (``id`` = class + 1) and, for detection, the predicted boxes as
    ``annotations`` with a ``score`` (an import refuses scored annotations:
    predictions are not labels).
``queries.csv`` (classification)
    ``index,file_name,rank,score,label`` with ``label`` empty, to fill with a
    class name.
``masks/`` (segmentation, which exports no ``coco.json`` and ``queries.csv``)
    the predicted class map of every query with a prediction, as an 8-bit
    grey PNG named like its image (pixel value = class index): correct them
    in any image editor and import the folder (``bal labels import RUN_DIR
    DIR``, :mod:`bal.labeling.imports`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import pathlib
from xml.sax.saxutils import quoteattr

import numpy as np

from bal.labeling import state as lstate
from bal.labeling.masks import mask_to_brush, unpack_map, write_mask_png

__all__ = ["FORMATS", "Export", "export_queries", "pool_images", "label_config", "image_url"]

FORMATS = lstate.EXPORT_FORMATS
#: what a segmentation run exports (COCO and the CSV hold classes or boxes, not class maps)
SEGMENTATION_FORMATS = ("jsonl", "label-studio", "masks")
#: what a detection run's queries export as
DETECTION_FORMATS = ("jsonl", "label-studio", "coco")
FROM_NAME, TO_NAME = "label", "image"


@dataclasses.dataclass(frozen=True)
class Export:
    out: pathlib.Path
    files: tuple[pathlib.Path, ...]
    count: int


def pool_images(config):
    """The pool images of a run's config, ``[N, H, W, C]`` (float in [0, 1] or uint8)."""
    task = getattr(config, "task", "classification")
    if task == "classification":
        from bal.active.tasks.classification import load_problem

        return load_problem(config).train_x
    if task == "detection":
        from bal.active.tasks.detection import load_detection_problem

        return load_detection_problem(config).train.images
    if task == "segmentation":
        from bal.active.tasks.segmentation import load_segmentation_problem

        return load_segmentation_problem(config).train_images
    raise ValueError(f"no pool images for task {task!r}")


def _uint8(image) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"cannot write an image of shape {list(np.shape(image))} as PNG")
    return a


def image_url(image_root: str | None, name: str) -> str:
    """``name`` under ``image_root`` (a URL prefix such as ``http://host:8081/`` or
    ``/data/local-files/?d=queries/``, or a directory); the bare name without a root."""
    if not image_root:
        return name
    if image_root.endswith(("/", "=")):
        return image_root + name
    return f"{image_root}/{name}"


#: brush / polygon colours of the segmentation classes, in turn
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
POLYGON = "polygon"  # the name of segmentation's PolygonLabels control


def label_config(classes, task: str = "classification") -> str:
    """A Label Studio labeling interface for the exported tasks."""
    if task == "segmentation":
        lines = []
        for tag, name in (("BrushLabels", FROM_NAME), ("PolygonLabels", POLYGON)):
            lines.append(f"  <{tag} name={quoteattr(name)} toName={quoteattr(TO_NAME)}>")
            lines += [f"    <Label value={quoteattr(str(c))} background={quoteattr(PALETTE[n % len(PALETTE)])}/>"
                      for n, c in enumerate(classes)]
            lines.append(f"  </{tag}>")
        return ("<View>\n" f"  <Image name={quoteattr(TO_NAME)} value=\"$image\" zoom=\"true\"/>\n"
                + "\n".join(lines) + "\n</View>\n")
    tag = "RectangleLabels" if task == "detection" else "Choices"
    item = "Label" if task == "detection" else "Choice"
    extra = "" if task == "detection" else ' choice="single" showInline="true"'
    lines = [f"  <{tag} name={quoteattr(FROM_NAME)} toName={quoteattr(TO_NAME)}{extra}>"]
    lines += [f"    <{item} value={quoteattr(str(c))}/>" for c in classes]
    lines += [f"  </{tag}>"]
    return ("<View>\n" f"  <Image name={quoteattr(TO_NAME)} value=\"$image\"/>\n" + "\n".join(lines)
            + "\n</View>\n")


def _row(q: dict) -> dict:
    keys = ("index", "file_name", "rank", "k", "score", "score_source", "strategy", "seed", "cycle",
            "model_version", "queried_by", "prediction", "crop", "boxes")
    return {k: q[k] for k in keys if k in q}


def _ls_task(q: dict, position: int, n: int, image_root, classes, size) -> dict:
    height, width = size
    data = {"image": image_url(image_root, q["file_name"]), "pool_index": q["index"],
            "file_name": q["file_name"], "rank": q.get("rank"), "acquisition_score": q.get("score"),
            "strategy": q.get("strategy"), "seed": q.get("seed"), "cycle": q.get("cycle"),
            "model_version": q.get("model_version")}
    if "crop" in q:
        data["crop"] = q["crop"]
    result, version = [], q.get("model_version")
    prediction = q.get("prediction")
    if prediction and "mask" in prediction:  # segmentation: a brush per predicted class
        version = prediction.get("model_version", version)
        data["predicted_confidence"] = prediction.get("confidence")
        unit = lstate.unit_text(lstate.query_key(q))
        predicted = unpack_map(prediction["mask"], f"the predicted mask of {unit}")
        if predicted.shape != (height, width):
            raise ValueError(f"the predicted mask of {unit} is {predicted.shape[1]}x{predicted.shape[0]}, its "
                             f"image {width}x{height}")
        for c in np.unique(predicted[predicted < len(classes)]).tolist():
            result.append({"id": f"q{q['index']}r{q.get('rank', 0)}c{c}", "from_name": FROM_NAME,
                           "to_name": TO_NAME, "type": "brushlabels", "original_width": int(width),
                           "original_height": int(height), "image_rotation": 0,
                           "value": {"format": "rle", "rle": mask_to_brush(predicted == c),
                                     "brushlabels": [classes[c]]}})
    elif prediction:
        version = prediction.get("model_version", version)
        data["predicted_class"] = prediction.get("class")
        data["predicted_probability"] = prediction.get("probability")
        result.append({"id": f"q{q['index']}", "from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                       "value": {"choices": [prediction.get("class")]}})
    for j, box in enumerate(q.get("boxes") or []):
        x0, y0, x1, y1 = (float(v) for v in box["bbox"])
        result.append({"id": f"q{q['index']}b{j}", "from_name": FROM_NAME, "to_name": TO_NAME,
                       "type": "rectanglelabels", "original_width": int(width), "original_height": int(height),
                       "image_rotation": 0, "score": box.get("score"),
                       "value": {"x": 100 * x0 / width, "y": 100 * y0 / height, "width": 100 * (x1 - x0) / width,
                                 "height": 100 * (y1 - y0) / height, "rotation": 0,
                                 "rectanglelabels": [classes[int(box["class"])]]}})
    return {"data": data, "predictions": [{"model_version": version, "score": round(position / n, 6),
                                           "result": result}]}


def _coco(rows, classes, sizes, run_dir) -> dict:
    images, annotations = [], []
    for q, (height, width) in zip(rows, sizes):
        image = {"id": q["index"], "file_name": q["file_name"], "width": int(width), "height": int(height),
                 "rank": q.get("rank"), "acquisition_score": q.get("score"), "strategy": q.get("strategy"),
                 "cycle": q.get("cycle"), "model_version": q.get("model_version")}
        if "crop" in q:
            image["crop"] = q["crop"]
        if "label" in (q.get("prediction") or {}):
            image["predicted_category_id"] = int(q["prediction"]["label"]) + 1
        images.append(image)
        for box in q.get("boxes") or []:
            x0, y0, x1, y1 = (float(v) for v in box["bbox"])
            annotations.append({"id": len(annotations) + 1, "image_id": q["index"],
                                "category_id": int(box["class"]) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                                "area": (x1 - x0) * (y1 - y0), "iscrowd": 0, "score": box.get("score")})
    return {"info": {"description": f"bal queries awaiting labels in {run_dir}", "version": "1"},
            "licenses": [], "images": images, "annotations": annotations,
            "categories": [{"id": c + 1, "name": str(name), "supercategory": "class"}
                           for c, name in enumerate(classes)]}


def _csv(rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "file_name", "rank", "score", "label"])
    for q in rows:
        writer.writerow([q["index"], q["file_name"], q.get("rank", ""), q.get("score", ""), ""])
    return buffer.getvalue()


def export_queries(run_dir, out=None, formats="all", image_root: str | None = None,
                   images=None) -> Export:
    """Write the queries awaiting labels in ``run_dir`` (format in the module docstring).

    Args:
      run_dir: a run directory with a pending-queries file.
      out: the output directory (default ``RUN_DIR/queries``).
      formats: ``"all"`` or some of :data:`FORMATS`.
      image_root: URL or directory prefix of ``data.image`` in Label Studio tasks.
      images: the pool images ``[N, H, W, C]`` (default: loaded from the run's config).

    Returns the directory, the files written and the number of queries (0: nothing awaits
    labels, nothing written).
    """
    from bal.active.results import RunDirectory

    run_dir = pathlib.Path(run_dir)
    formats = FORMATS if formats in ("all", None) else ((formats,) if isinstance(formats, str) else tuple(formats))
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}; choose all or {', '.join(FORMATS)}")
    pending = lstate.read_pending(run_dir)
    if pending is None:
        RunDirectory(run_dir).read_config()  # a clear error for a directory that is no run
        raise ValueError(f"{run_dir}: no queries pending (no run with oracle = 'human' has paused here)")
    task = pending.get("task", "classification")
    # a CSV holds one class per item: no format for boxes (detection) or pixels (segmentation)
    fit = {"segmentation": SEGMENTATION_FORMATS, "detection": DETECTION_FORMATS}.get(
        task, tuple(f for f in FORMATS if f != "masks"))
    unfit = [f for f in formats if f not in fit]
    if unfit and formats != FORMATS:
        raise ValueError(f"{run_dir}: a {task} run's queries export as {', '.join(fit)}, not {', '.join(unfit)}")
    formats = tuple(f for f in formats if f in fit)
    rows = [_row(q) for q in lstate.awaiting(pending, lstate.LabelStore(run_dir).answers())]
    out = run_dir / "queries" if out is None else pathlib.Path(out)
    if not rows:
        return Export(out, (), 0)
    if images is None:
        images = pool_images(RunDirectory(run_dir).read_config())
    classes = [str(c) for c in pending.get("classes") or []]
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    files, sizes = [], []
    for q in rows:
        if not 0 <= q["index"] < len(images):
            raise ValueError(f"{run_dir / lstate.PENDING}: pool item {q['index']} is outside the pool "
                             f"of {len(images)} images")
        pixels = _uint8(images[q["index"]])
        if "crop" in q:
            y0, x0, y1, x1 = q["crop"]
            if not (y1 <= pixels.shape[0] and x1 <= pixels.shape[1]):
                raise ValueError(f"{run_dir / lstate.PENDING}: crop {q['crop']} of pool item {q['index']} is "
                                 f"outside its {pixels.shape[1]}x{pixels.shape[0]} image")
            pixels = pixels[y0:y1, x0:x1]
        sizes.append(pixels.shape[:2])
        path = out / q["file_name"]
        Image.fromarray(pixels).save(path, format="PNG")
        files.append(path)

    def write(name: str, text: str):
        path = out / name
        lstate.atomic_write(path, text.encode())
        files.append(path)

    if "jsonl" in formats:
        write("queries.jsonl", "".join(json.dumps(q, sort_keys=True) + "\n" for q in rows))
    if "label-studio" in formats:
        tasks = [_ls_task(q, p, len(rows), image_root, classes, size)
                 for p, (q, size) in enumerate(zip(rows, sizes))]
        write("tasks.json", json.dumps(tasks, indent=1) + "\n")
        write("label_config.xml", label_config(classes, task))
    if "coco" in formats:
        write("coco.json", json.dumps(_coco(rows, classes, sizes, run_dir), indent=1) + "\n")
    if "csv" in formats:
        write("queries.csv", _csv(rows))
    if "masks" in formats:
        predicted = [q for q in rows if "mask" in (q.get("prediction") or {})]
        if predicted:
            (out / "masks").mkdir(exist_ok=True)
        for q in predicted:
            path = out / "masks" / q["file_name"]
            write_mask_png(path, unpack_map(q["prediction"]["mask"], f"{run_dir / lstate.PENDING}: "
                                            f"{lstate.unit_text(lstate.query_key(q))}"))
            files.append(path)
    return Export(out, tuple(files), len(rows))
