"""Labels read back from labeling tools into a run's label store (``bal labels import``).

Four formats, joined to pool items on ``pool_index`` / ``index`` when the file
carries it, else on the file name ``pool_<index>.png`` (anywhere at the end of
a path or URL, so tool prefixes such as Label Studio's upload hash are fine;
a segmentation crop on ``crop`` ``[y0, x0, y1, x1]`` or its file name
``pool_<index>_crop_<y0>_<x0>_<y1>_<x1>.png``):

* **Label Studio JSON export** — a list of tasks
  ``{"id": 1, "data": {"image": ..., "pool_index": 123}, "annotations": [{"result": [...],
  "was_cancelled": false, "ground_truth": false, ...}], ...}`` (``completions``
  of old versions too). Cancelled (skipped) annotations are ignored. A
  classification label is the one ``choices`` result of an annotation
  (``{"type": "choices", "value": {"choices": ["7"]}}``); detection labels are
  the ``rectanglelabels`` results (``x, y, width, height`` in percent of
  ``original_width`` / ``original_height``). A segmentation label is the class
  map of the task's image (the whole pool image, or the exported crop):
  pixels start unlabeled (255) and every ``brushlabels`` result (Label
  Studio's brush RLE, painted where alpha >= 128) or ``polygonlabels`` result
  (pixel centres inside the polygon) paints its class, in the order of the
  results (a later one over an earlier one, as Label Studio draws them); a
  brush or polygon drawn on an image of another size is refused
  (:mod:`bal.labeling.masks`). Several annotations of one task
  must agree, or one must be marked ground truth. A task without an
  annotation is unlabeled. The JSON-MIN export (flat objects with the
  ``label`` control's value beside the data fields) works too. The label's
  cost is the annotation time Label Studio exports (``lead_time``, seconds),
  summed over the task's annotations (skipped ones too: their time was spent);
  the label store keeps it as ``seconds``.
* **COCO instances** — ``images`` / ``annotations`` / ``categories``, categories
  joined on their names. Classification: an image's annotations must name a
  single category (no annotation: unlabeled). Detection: every listed image is
  labeled with its boxes (possibly none). Annotations with a ``score`` are
  model predictions (as ``bal queries export`` writes them) and are refused.
* **CSV** — a header with ``label`` and ``index`` and/or ``file_name``
  (``bal queries export`` writes ``index,file_name,rank,score,label``) and
  optionally ``lead_time`` (seconds spent on the item); an empty ``label`` is
  unlabeled. Classification only.
* **Mask files** (segmentation) — a folder (or one file) of one-channel PNG or
  2-D integer ``.npy`` class maps, pixel value = class index, 255 = unlabeled,
  named after the query they answer: ``pool_000123_crop_8_16_24_32.png`` is the
  class map of that crop (its size), ``pool_000123.png`` one of the whole
  image (its size), which answers the image's query and every queried crop of
  the image holding a labeled pixel (crops without one stay unlabeled; when
  only crops of the image were queried, a labeled pixel outside them is an
  error). ``bal queries export`` writes the predicted class maps so
  (``masks/``) to correct.

Boxes are pixels ``[x0, y0, x1, y1]`` (rounded to 1e-4 pixel: Label Studio's
percentages of ``original_width`` / ``original_height`` convert back exactly to
the pixel coordinates they were made from); a box must be non-empty and lie in
the image, and a Label Studio box drawn on an image of another size than the
pool's is refused.

Classes are given by name (exact, then ignoring case) or by index.
:func:`import_labels` checks the whole file against the run before anything is
written, and every problem is one line naming the file and the entry: labels
of items that were not queried, unknown classes, class maps of the wrong size,
an item twice in the file,
an item already labeled otherwise, conflicting annotations, corrupt files.
An item already labeled the same is skipped (a labeling tool's export of the
whole project holds the earlier imports' labels again). Queries the
file does not label are not an error (partial imports): they are counted and
stay queued. The labels are then appended to the store as one batch,
all-or-nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import pathlib
from typing import Any

import numpy as np

from bal.labeling import masks as lmasks
from bal.labeling import state as lstate
from bal.labeling.state import parse_class

__all__ = ["IMPORT_FORMATS", "Entry", "Imported", "read_labels", "import_labels", "detect_format"]

IMPORT_FORMATS = lstate.IMPORT_FORMATS


@dataclasses.dataclass(frozen=True)
class Entry:
    index: int
    label: Any  # class index, a list of boxes {"bbox": [x0, y0, x1, y1], "class": c}, or a class map
    where: str  # e.g. "task 3 (pool_000123.png)"
    seconds: float | None = None  # annotation time spent on it (Label Studio's lead_time); None: unknown
    crop: tuple[int, int, int, int] | None = None  # a segmentation crop (y0, x0, y1, x1) of the pool item

    @property
    def key(self):
        """The unit it labels (:func:`bal.labeling.state.unit_key`)."""
        return lstate.unit_key(self.index, self.crop)


@dataclasses.dataclass(frozen=True)
class Imported:
    path: pathlib.Path
    format: str
    batch: int
    imported: int  # labels added
    missing: int  # queries still awaiting a label
    unlabeled_entries: int  # entries of the file without a label
    seconds: float = 0.0  # annotation time of the labels added (the known part)
    timed: int = 0  # labels added with an annotation time
    again: int = 0  # entries imported before with the same label (skipped)


class _Fail(ValueError):
    pass


def _load_text(path: pathlib.Path) -> str:
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise _Fail(f"{path}: is a directory, not a labels file") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"labels file {path} does not exist") from None
    except OSError as err:
        raise _Fail(f"{path}: cannot read it ({err.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _Fail(f"{path}: corrupt file, not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise _Fail(f"{path}: the file is empty")
    return text


def _load_json(path: pathlib.Path, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _Fail(f"{path}: corrupt file, not valid JSON ({err.msg} at line {err.lineno} column "
                    f"{err.colno})") from None


def detect_format(path, text: str | None = None) -> str:
    """``label-studio``, ``coco``, ``csv`` or ``masks`` from the extension and the content."""
    path = pathlib.Path(path)
    if path.is_dir() or path.suffix.lower() in (".png", ".npy"):
        return "masks"
    if path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    text = _load_text(path) if text is None else text
    if path.suffix.lower() != ".json" and not text.lstrip().startswith(("[", "{")):
        return "csv"
    data = _load_json(path, text)
    if isinstance(data, list):
        return "label-studio"
    if isinstance(data, dict) and "images" in data:
        return "coco"
    raise _Fail(f"{path}: cannot tell the format: expected a Label Studio export (a JSON list of tasks), "
                "a COCO instances file (an object with images) or a CSV; pass --format")


# ----------------------------------------------------------------------------- helpers
def _class(path, where, value, classes) -> int:
    c = parse_class(value, classes)
    if c is None:
        shown = ", ".join(classes[:12]) + (", ..." if len(classes) > 12 else "")
        raise _Fail(f"{path}: {where}: unknown class {value!r} (classes: {shown})")
    return c


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _box(path, where, x0, y0, x1, y1, c, size=None) -> dict:
    """A box in pixels rounded to 1e-4 (``size = (H, W)``: it must lie in the image)."""
    if not all(map(_number, (x0, y0, x1, y1))) or not (x1 > x0 and y1 > y0):
        raise _Fail(f"{path}: {where}: invalid box {[x0, y0, x1, y1]!r} (need x0 < x1, y0 < y1)")
    bbox = [round(float(v), 4) for v in (x0, y0, x1, y1)]
    if size is not None and not (0 <= bbox[0] < bbox[2] <= size[1] and 0 <= bbox[1] < bbox[3] <= size[0]):
        raise _Fail(f"{path}: {where}: box {bbox} is empty or outside the {size[1]}x{size[0]} image")
    return {"bbox": bbox, "class": c}


def _seconds(path, where, value, name="lead_time") -> float | None:
    """An annotation time in seconds (None: not given)."""
    if value in (None, ""):
        return None
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if not _number(number) or not math.isfinite(number) or number < 0:
        raise _Fail(f"{path}: {where}: invalid {name} {value!r} (annotation seconds, a number >= 0)")
    return float(number)


def _where(kind: str, n, index: int | None, crop=None) -> str:
    return f"{kind} {n}" + (f" ({lstate.file_name(index, crop)})" if index is not None else "")


def _crop(path, where, value, name_value) -> tuple[int, int, int, int] | None:
    """The crop ``(y0, x0, y1, x1)`` of an explicit ``crop`` and/or a file name (they must agree)."""
    unit = lstate.unit_of_name(name_value) if name_value not in (None, "") else None
    from_name = unit[1] if unit else None
    if value is None:
        return from_name
    if not (isinstance(value, list) and len(value) == 4 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                 and v >= 0 for v in value)
            and value[0] < value[2] and value[1] < value[3]):
        raise _Fail(f"{path}: {where}: invalid crop {value!r} (expected [y0, x0, y1, x1], y0 < y1, x0 < x1)")
    if from_name is not None and tuple(value) != from_name:
        raise _Fail(f"{path}: {where}: crop {value} and file name {name_value!r} disagree")
    return tuple(value)


def _key(path, where, index_value, name_value) -> int:
    """The pool index from an explicit index and/or a file name (they must agree)."""
    index = None
    if index_value not in (None, ""):
        text = str(index_value).strip()
        if isinstance(index_value, bool) or not (isinstance(index_value, int) or text.isdigit()):
            raise _Fail(f"{path}: {where}: invalid pool index {index_value!r}")
        index = int(text)
    from_name = lstate.index_of_name(name_value) if name_value not in (None, "") else None
    if name_value not in (None, "") and from_name is None and index is None:
        raise _Fail(f"{path}: {where}: cannot tell the pool item of {name_value!r} (expected a file named "
                    "pool_<index>.png, as bal queries export writes)")
    if index is not None and from_name is not None and index != from_name:
        raise _Fail(f"{path}: {where}: pool index {index} and file name {name_value!r} disagree")
    index = from_name if index is None else index
    if index is None:
        raise _Fail(f"{path}: {where}: no pool index and no pool_<index>.png file name")
    return index


# ----------------------------------------------------------------------------- Label Studio
def _ls_rectangle(path, where, r: dict, classes, size) -> dict:
    value = r.get("value") if isinstance(r.get("value"), dict) else r
    names = value.get("rectanglelabels")
    if not isinstance(names, list) or len(names) != 1:
        raise _Fail(f"{path}: {where}: a box needs exactly one label; got {names!r}")
    if _number(value.get("rotation")) and value["rotation"] != 0:
        raise _Fail(f"{path}: {where}: rotated boxes are not supported (rotation {value['rotation']})")
    width = r.get("original_width") or value.get("original_width") or (size[1] if size else None)
    height = r.get("original_height") or value.get("original_height") or (size[0] if size else None)
    if not (_number(width) and _number(height)) or width <= 0 or height <= 0:
        raise _Fail(f"{path}: {where}: a box without original_width / original_height")
    if size and (width, height) != (size[1], size[0]):
        raise _Fail(f"{path}: {where}: a box drawn on a {width}x{height} image, but the pool images are "
                    f"{size[1]}x{size[0]}")
    x, y, w, h = (value.get(k) for k in ("x", "y", "width", "height"))
    if not all(map(_number, (x, y, w, h))):
        raise _Fail(f"{path}: {where}: a box needs numbers x, y, width, height; got {[x, y, w, h]!r}")
    sx, sy = width / 100.0, height / 100.0
    return _box(path, where, x * sx, y * sy, (x + w) * sx, (y + h) * sy, _class(path, where, names[0], classes),
                (height, width))


def _unit_size(path, where, size, crop) -> tuple[int, int]:
    """``(h, w)`` of a segmentation unit: its crop, or the pool image (the crop must lie in it)."""
    if size is None:
        raise _Fail(f"{path}: {where}: the run's pending queries do not say the pool image size")
    if crop is None:
        return size
    y0, x0, y1, x1 = crop
    if y1 > size[0] or x1 > size[1]:
        raise _Fail(f"{path}: {where}: crop {list(crop)} is outside the {size[1]}x{size[0]} pool image")
    return y1 - y0, x1 - x0


def _ls_segmentation(path, where, result, classes, unit_size) -> dict:
    """The class map (:func:`bal.labeling.masks.pack_map`) an annotation's brush and polygon
    results paint on a ``unit_size = (h, w)`` image (unpainted pixels: 255)."""
    height, width = unit_size
    out = np.full((height, width), lmasks.UNLABELED, np.uint8)
    for r in result:
        kind = r.get("type")
        if kind not in ("brushlabels", "polygonlabels"):
            continue
        value = r.get("value") if isinstance(r.get("value"), dict) else r
        names = value.get(kind)
        if not isinstance(names, list) or len(names) != 1:
            raise _Fail(f"{path}: {where}: a {'brush' if kind == 'brushlabels' else 'polygon'} needs exactly one "
                        f"label; got {names!r}")
        c = _class(path, where, names[0], classes)
        w = r.get("original_width", value.get("original_width", width))
        h = r.get("original_height", value.get("original_height", height))
        if (w, h) != (width, height):
            raise _Fail(f"{path}: {where}: a {kind} result drawn on a {w}x{h} image, but the queried "
                        f"{'crop' if 'crop' in where else 'image'} is {width}x{height}")
        try:
            if kind == "brushlabels":
                if value.get("format", "rle") != "rle":
                    raise ValueError(f"brush format {value.get('format')!r} is not rle")
                painted = lmasks.brush_to_mask(value.get("rle"), height, width)
            else:
                painted = lmasks.polygon_to_mask(value.get("points"), height, width)
        except ValueError as err:
            raise _Fail(f"{path}: {where}: {err}") from None
        out[painted] = c
    return lmasks.pack_map(out)


def _ls_annotation(path, where, result, task, classes, size):
    """A label from one annotation's results (None: no label in it); ``size``: the image's
    ``(H, W)`` (segmentation: the unit's, the crop's for a crop)."""
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        raise _Fail(f"{path}: {where}: corrupt annotation (result must be a list of objects)")
    if task == "segmentation":
        return _ls_segmentation(path, where, result, classes, size)
    if task == "detection":
        return [_ls_rectangle(path, where, r, classes, size) for r in result if r.get("type") == "rectanglelabels"]
    choices = [r for r in result if r.get("type") == "choices"]
    if not choices:
        return None
    values = [v for r in choices for v in ((r.get("value") or {}).get("choices") or [])]
    if len(values) != 1:
        raise _Fail(f"{path}: {where}: {len(values)} classes {values!r} in one annotation; a label is one class")
    return _class(path, where, values[0], classes)


def _read_label_studio(path, data, task, classes, size) -> tuple[list[Entry], int]:
    if not isinstance(data, list):
        raise _Fail(f"{path}: a Label Studio export is a JSON list of tasks; got {type(data).__name__}")
    entries, unlabeled = [], 0
    for n, t in enumerate(data):
        if not isinstance(t, dict):
            raise _Fail(f"{path}: task {n}: corrupt task (not an object)")
        name = f"task {t['id']}" if isinstance(t.get("id"), (int, str)) else f"task {n}"
        minimal = "data" not in t
        d = t if minimal else t["data"]
        if not isinstance(d, dict):
            raise _Fail(f"{path}: {name}: corrupt task ('data' is not an object)")
        index = _key(path, name, d.get("pool_index"), d.get("image"))
        crop = _crop(path, name, d.get("crop"), d.get("image")) if task == "segmentation" else None
        where = _where("task", t.get("id", n), index, crop)
        unit_size = _unit_size(path, where, size, crop) if task == "segmentation" else size
        if minimal:  # JSON-MIN: the control's value beside the data fields
            seconds = _seconds(path, where, t.get("lead_time"))
            value = t.get(FROM_NAME_MIN)
            if task == "segmentation":  # brushes under "label", polygons under "polygon"
                drawn = [(kind, v) for kind, key in (("brushlabels", FROM_NAME_MIN), ("polygonlabels", "polygon"))
                         for v in (t.get(key) or [])]
                if not drawn:
                    unlabeled += 1
                    continue
                if not all(isinstance(v, dict) for _, v in drawn):
                    raise _Fail(f"{path}: {where}: corrupt brushes or polygons (not objects)")
                label = _ls_segmentation(path, where, [{"type": kind, "value": v} for kind, v in drawn], classes,
                                         unit_size)
                entries.append(Entry(index, label, where, seconds, crop))
                continue
            if value in (None, "", []):
                unlabeled += 1
                continue
            if task == "detection":
                if not isinstance(value, list):
                    raise _Fail(f"{path}: {where}: corrupt boxes {value!r}")
                label = [_ls_rectangle(path, where, r, classes, size) for r in value]
            else:
                if isinstance(value, dict):
                    value = value.get("choices")
                if isinstance(value, list):
                    if len(value) != 1:
                        raise _Fail(f"{path}: {where}: {len(value)} classes {value!r}; a label is one class")
                    value = value[0]
                label = _class(path, where, value, classes)
            entries.append(Entry(index, label, where, seconds))
            continue
        annotations = t.get("annotations", t.get("completions")) or []
        if not isinstance(annotations, list):
            raise _Fail(f"{path}: {where}: corrupt task ('annotations' is not a list)")
        given, times = [], []
        for a in annotations:
            if not isinstance(a, dict):
                raise _Fail(f"{path}: {where}: corrupt annotation (not an object)")
            times.append(_seconds(path, where, a.get("lead_time")))
            if a.get("was_cancelled"):
                continue
            label = _ls_annotation(path, where, a.get("result"), task, classes, unit_size)
            if label is not None:
                given.append((label, bool(a.get("ground_truth"))))
        chosen = [label for label, truth in given if truth] or [label for label, _ in given]
        distinct = []
        for label in chosen:
            if label not in distinct:
                distinct.append(label)
        if not distinct:
            unlabeled += 1
            continue
        if len(distinct) > 1:
            shown = {"detection": f"{len(distinct)} box sets", "segmentation": f"{len(distinct)} class maps"}.get(
                task, [classes[c] for c in distinct] if task == "classification" else distinct)
            raise _Fail(f"{path}: {where}: annotations disagree ({shown}); mark one as ground truth "
                        "or delete the others")
        known = [t for t in times if t is not None]
        entries.append(Entry(index, distinct[0], where, sum(known) if known else None, crop))
    return entries, unlabeled


FROM_NAME_MIN = "label"  # the control name of the exported label_config.xml


# ----------------------------------------------------------------------------- COCO
def _read_coco(path, data, task, classes, size=None) -> tuple[list[Entry], int]:
    if task == "segmentation":
        raise _Fail(f"{path}: a COCO import holds classes or boxes; segmentation labels are class maps: import a "
                    "Label Studio export or a folder of mask files")
    if not isinstance(data, dict):
        raise _Fail(f"{path}: a COCO file is a JSON object with images; got {type(data).__name__}")

    def items(key, required=True):
        value = data.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
            raise _Fail(f"{path}: corrupt COCO file: {key!r} must be a list of objects")
        return value

    images, annotations = items("images"), items("annotations", required=False)
    categories = items("categories", required=bool(annotations))
    category = {}
    for n, c in enumerate(categories):
        if not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            raise _Fail(f"{path}: category {n}: corrupt category (needs an integer id and a name)")
        category[c["id"]] = (c["name"], n)
    by_id = {}
    for n, image in enumerate(images):
        image_id = image.get("id")
        if not isinstance(image_id, (int, str)) or isinstance(image_id, bool):
            raise _Fail(f"{path}: image {n}: corrupt image (no id)")
        where_ = f"image {image_id}"
        index = _key(path, where_, image.get("pool_index"), image.get("file_name"))
        if image_id in by_id:
            raise _Fail(f"{path}: {_where('image', image_id, index)}: image id {image_id} is listed twice")
        by_id[image_id] = (index, [])
    for n, a in enumerate(annotations):
        if a.get("image_id") not in by_id:
            raise _Fail(f"{path}: annotation {a.get('id', n)}: image_id {a.get('image_id')!r} is not among the images")
        index = by_id[a["image_id"]][0]
        where = f"annotation {a.get('id', n)} ({lstate.file_name(index)})"
        if "score" in a:
            raise _Fail(f"{path}: {where}: has a 'score': it is a model prediction, not a label "
                        "(delete predictions the labelers did not confirm, and the scores)")
        if a.get("category_id") not in category:
            raise _Fail(f"{path}: {where}: category_id {a.get('category_id')!r} is not among the categories")
        name = category[a["category_id"]][0]
        c = _class(path, where, name, classes)
        if task == "detection":
            b = a.get("bbox")
            if not isinstance(b, list) or len(b) != 4 or not all(map(_number, b)):
                raise _Fail(f"{path}: {where}: 'bbox' must be 4 numbers [x, y, width, height]; got {b!r}")
            by_id[a["image_id"]][1].append(_box(path, where, b[0], b[1], b[0] + b[2], b[1] + b[3], c, size))
        else:
            by_id[a["image_id"]][1].append(c)
    entries, unlabeled = [], 0
    for image_id, (index, labels) in by_id.items():
        where = _where("image", image_id, index)
        if task == "detection":
            entries.append(Entry(index, labels, where))
            continue
        distinct = sorted(set(labels))
        if not distinct:
            unlabeled += 1
        elif len(distinct) > 1:
            raise _Fail(f"{path}: {where}: annotations of {len(distinct)} categories "
                        f"({', '.join(classes[c] for c in distinct)}); a label is one class")
        else:
            entries.append(Entry(index, distinct[0], where))
    return entries, unlabeled


# ----------------------------------------------------------------------------- CSV
def _read_csv(path, text, task, classes) -> tuple[list[Entry], int]:
    if task == "detection":
        raise _Fail(f"{path}: a CSV holds one class per item; detection labels are boxes: import a COCO "
                    "file or a Label Studio export")
    if task == "segmentation":
        raise _Fail(f"{path}: a CSV holds one class per item; segmentation labels are class maps: import a "
                    "Label Studio export or a folder of mask files")
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    try:
        rows = list(csv.reader(text.splitlines(), dialect))
    except csv.Error as err:
        raise _Fail(f"{path}: corrupt CSV ({err})") from None
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "label" not in header or not ({"index", "file_name"} & set(header)):
        raise _Fail(f"{path}: corrupt CSV: the header must name a label column and index and/or "
                    f"file_name (got {', '.join(header) or 'nothing'})")
    col = {h: header.index(h) for h in ("index", "file_name", "label", "lead_time") if h in header}
    entries, unlabeled = [], 0
    for line, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise _Fail(f"{path}: line {line}: {len(row)} fields, the header has {len(header)}")
        get = lambda k: row[col[k]].strip() if k in col else None  # noqa: E731
        index = _key(path, f"line {line}", get("index"), get("file_name"))
        where = f"line {line} ({lstate.file_name(index)})"
        if not get("label"):
            unlabeled += 1
            continue
        entries.append(Entry(index, _class(path, where, get("label"), classes), where,
                             _seconds(path, where, get("lead_time"))))
    return entries, unlabeled


# ----------------------------------------------------------------------------- mask files
def _read_masks(path, task, classes, size, queries) -> tuple[list[Entry], int]:
    if task != "segmentation":
        raise _Fail(f"{path}: mask files are pixel class maps, for segmentation runs; this run is {task}")
    if not path.exists():
        raise FileNotFoundError(f"labels file {path} does not exist")
    files = sorted(f for f in path.iterdir() if f.suffix.lower() in (".png", ".npy")) if path.is_dir() else [path]
    if not files:
        raise _Fail(f"{path}: no .png or .npy mask files in the folder")
    crops_of: dict[int, list] = {}
    for k in queries:
        if not isinstance(k, int):
            crops_of.setdefault(k[0], []).append(k)
    entries, unlabeled = [], 0
    for f in files:
        unit = lstate.unit_of_name(f.name)
        if unit is None:
            raise _Fail(f"{f}: cannot tell the query (expected pool_<index>.png or "
                        "pool_<index>_crop_<y0>_<x0>_<y1>_<x1>.png or .npy, as bal queries export names them)")
        index, crop = unit
        shape = _unit_size(f.parent, f.name, size, crop)
        try:
            class_map = lmasks.read_mask_file(f)
            lmasks.check_map(class_map, shape, len(classes), str(f))
        except ValueError as err:
            raise _Fail(str(err)) from None
        whole = crop is not None or index in queries or index not in crops_of
        if whole:
            entries.append(Entry(index, lmasks.pack_map(class_map), f.name, None, crop))
        if crop is not None or index not in crops_of:
            continue
        crops = sorted(crops_of[index])  # a whole-image mask answering the queried crops of the image
        inside = np.zeros(shape, bool)
        for _, y0, x0, y1, x1 in crops:
            inside[y0:y1, x0:x1] = True
        outside = (class_map != lmasks.UNLABELED) & ~inside
        if outside.any() and not whole:
            r, c = (int(v) for v in np.argwhere(outside)[0])
            raise _Fail(f"{f}: labeled pixels outside the queried crops of pool item {index} "
                        f"({', '.join(str(list(k[1:])) for k in crops)}; [y0, x0, y1, x1]), e.g. row {r}, column {c}")
        for _, y0, x0, y1, x1 in crops:
            part = class_map[y0:y1, x0:x1]
            if (part == lmasks.UNLABELED).all():
                unlabeled += 1
                continue
            entries.append(Entry(index, lmasks.pack_map(part), f"{f.name} crop {[y0, x0, y1, x1]}", None,
                                 (y0, x0, y1, x1)))
    return entries, unlabeled


def read_labels(path, fmt: str = "auto", *, task: str = "classification", classes=(),
                image_size=None, queries=()) -> tuple[list[Entry], int, str]:
    """The labeled entries of a labels file, the number of its unlabeled entries, and its
    format (module docstring). ``image_size``: ``(H, W)`` of the pool images: boxes must lie
    in them (and boxes given in percent without their image size are of that size), class
    maps fit them. ``queries``: the keys of the queried units (a whole-image mask file
    answers the queried crops of its image)."""
    path = pathlib.Path(path)
    image_size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
    if fmt not in IMPORT_FORMATS:
        raise ValueError(f"unknown labels format {fmt!r}; choose one of {', '.join(IMPORT_FORMATS)}")
    classes = tuple(str(c) for c in classes)
    if fmt == "masks" or (fmt == "auto" and (path.is_dir() or path.suffix.lower() in (".png", ".npy"))):
        entries, unlabeled = _read_masks(path, task, classes, image_size, set(queries))
        return entries, unlabeled, "masks"
    text = _load_text(path)
    fmt = detect_format(path, text) if fmt == "auto" else fmt
    if fmt == "csv":
        entries, unlabeled = _read_csv(path, text, task, classes)
    else:
        data = _load_json(path, text)
        if fmt == "coco":
            entries, unlabeled = _read_coco(path, data, task, classes, image_size)
        else:
            entries, unlabeled = _read_label_studio(path, data, task, classes, image_size)
    return entries, unlabeled, fmt


def import_labels(run_dir, path, fmt: str = "auto") -> Imported:
    """Check a labels file against the queries of ``run_dir`` and append its labels to the
    label store as one batch (all-or-nothing). Holds the run directory's writer lock, so it
    never races a running ``bal run``.

    Raises:
      ValueError: one line naming the file and the entry (module docstring).
    """
    from bal.active.results import RunDirectory, read_records

    run = RunDirectory(run_dir)
    config = run.read_config()
    if getattr(config, "oracle", "dataset") != "human":
        raise ValueError(f"{run.path} runs with oracle = {getattr(config, 'oracle', 'dataset')!r}: its labels come "
                         "from the dataset; run with --oracle human to label queries yourself")
    path = pathlib.Path(path)
    with run.lock():
        pending = lstate.read_pending(run.path)
        if pending is None:
            raise ValueError(f"{run.path}: no queries pending (run bal run with --oracle human first)")
        store = lstate.LabelStore(run.path)
        stored = {lstate.query_key(e): e for e in store.entries()}
        waiting = lstate.awaiting(pending, stored)
        queried = {lstate.query_key(q) for q in pending["queries"]}
        entries, unlabeled, fmt = read_labels(path, fmt, task=pending.get("task", "classification"),
                                              classes=pending.get("classes") or (),
                                              image_size=pending.get("image_size"), queries=queried)
        seen: dict[Any, str] = {}
        new, again = [], 0
        for e in entries:
            unit = lstate.unit_text(e.key)
            if e.key in seen:
                raise ValueError(f"{path}: {e.where}: {unit} is labeled twice in the file (also {seen[e.key]})")
            seen[e.key] = e.where
            if e.key in stored:  # a tool's export of the whole project holds earlier labels again
                old = stored[e.key]
                if old["label"] == e.label:
                    again += 1
                    continue
                raise ValueError(f"{path}: {e.where}: {unit} is already labeled (import batch "
                                 f"{old['batch']}, from {old.get('source', '?')}: {_shown(old['label'])}); this "
                                 f"file says {_shown(e.label)}")
            if e.key not in queried:
                raise ValueError(f"{path}: {e.where}: {unit} was not queried (it is not among the "
                                 f"{len(waiting)} queries awaiting labels in {run.path})")
            new.append(e)
        if not entries:
            raise ValueError(f"{path}: holds no labels ({unlabeled} unlabeled entries; {len(waiting)} queries "
                             "await labels)")
        if not new:
            raise ValueError(f"{path}: holds no new labels (its {again} labels were imported before; "
                             f"{len(waiting)} queries await labels)")
        records = len(read_records(run.results_path)) if run.results_path.exists() else 0
        seconds = {e.key: e.seconds for e in new if e.seconds is not None}
        batch = store.append({e.key: e.label for e in new}, records=records,
                             source=str(path.resolve()), fmt=fmt, seconds=seconds)
    return Imported(path, fmt, batch, len(new), len(waiting) - len(new), unlabeled,
                    round(sum(seconds.values()), 3), len(seconds), again)


def _shown(label) -> str:
    if isinstance(label, dict) and isinstance(label.get("shape"), list) and len(label["shape"]) == 2:
        return f"a {label['shape'][1]}x{label['shape'][0]} class map"
    return f"{len(label)} boxes" if isinstance(label, list) else f"label {label!r}"
