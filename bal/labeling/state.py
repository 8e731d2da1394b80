"""What a run directory keeps of people in the loop: the label store and the pending queries.

Two files beside ``config.json`` and ``results.jsonl``:

``labels.jsonl`` — the **label store**: every label a person gave, one JSON
line per pool item, in import order::

    {"index": 123, "label": 7, "batch": 2, "records": 5, "source": "/path/export.json",
     "format": "label-studio", "seconds": 12.5}

``label`` is the class index (classification), a list of boxes
``{"bbox": [x0, y0, x1, y1], "class": c}`` in pixels (detection) or the class
map of the queried region ``{"shape": [h, w], "runs": [...]}``
(segmentation, :func:`bal.labeling.masks.pack_map`); a segmentation line of a
crop carries it, ``"crop": [y0, x0, y1, x1]``. ``seconds``
(when the labeling tool says) is the label's cost: the annotation time people
spent on the item (Label Studio's ``lead_time``); runs record its sum over
the labels a cycle trained on as ``annotation_seconds``. Lines are
never changed or removed (``--overwrite`` of the run only sets ``records`` to
0, see :func:`LabelStore.rebase`); a unit (a pool item, or a crop of one: its
**key**, :func:`unit_key`) is labeled at most once. One
import is one **batch**, written all-or-nothing: the whole new file (old
lines + the batch) goes to a temporary file, is fsync'd and renamed over the
old one, so a crash leaves the store either without or with the whole batch.
``records`` is the number of records ``results.jsonl`` held when the batch was
imported: a run sees a batch from its first cycle recorded after it (its
record's position in ``results.jsonl`` is ``>= records``). That makes a
resumed run exact: the replay gives every cycle exactly the labels that had
arrived when it ran, however many imports came later.

``pending_queries.json`` — the **pending queries**: the items each paused run
has asked about and not yet received, rewritten atomically whenever a run
pauses::

    {"version": 1, "task": "classification", "dataset": "digits", "classes": ["0", ..., "9"],
     "runs": [{"strategy": "bald", "seed": 0, "next_cycle": 1, "num_labels": 20}],
     "queries": [{"index": 123, "file_name": "pool_000123.png", "strategy": "bald", "seed": 0,
                  "cycle": 0, "rank": 0, "k": 10, "score": 1.0, "score_source": "rank",
                  "model_version": "bald-seed0-cycle0",
                  "prediction": {"label": 7, "class": "7", "probability": 0.41,
                                 "model_version": "bald-seed0-cycle0"}}, ...]}

``rank`` is the item's position in its cycle's ``acquired`` list (0 = chosen
first), ``k`` that list's length. ``score`` is the acquisition score the
cycle's record holds for the item (``record["scores"][rank]``,
``score_source = "recorded"``) when it has one, else ``1 - rank / k``
(``score_source = "rank"``; today's records hold no scores). Optional fields:
``crop`` ``[y0, x0, y1, x1]`` (a crop-level segmentation unit: rows ``y0:y1``, columns
``x0:x1`` of pool image ``index``; its file is ``pool_000123_crop_8_16_24_32.png``), ``boxes``
(predicted detections ``{"bbox": [x0, y0, x1, y1], "class": c, "score": s}``), in
``prediction`` a predicted class map ``mask`` (segmentation, :func:`bal.labeling.masks.pack_map`),
and at the top ``image_size`` ``[H, W]`` of the pool images (boxes imported in percent without
their size, segmentation class maps). A query is one **unit**, keyed by :func:`query_key`: its
``index``, or ``(index, y0, x0, y1, x1)`` with a crop. A query whose unit already has a label in
the store is answered; the rest are **awaiting** labels (:func:`awaiting`).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import tempfile
from typing import Any, Iterable, NamedTuple

__all__ = ["LABELS", "PENDING", "Answer", "LabelStore", "atomic_write", "file_name", "index_of_name",
           "unit_of_name", "unit_key", "query_key", "unit_text", "read_pending", "write_pending", "update_run",
           "awaiting", "model_version", "query_score",
           "parse_class", "EXPORT_FORMATS", "IMPORT_FORMATS"]

#: what ``bal queries export`` writes and ``bal labels import`` reads
EXPORT_FORMATS = ("jsonl", "label-studio", "coco", "csv", "masks")
IMPORT_FORMATS = ("auto", "label-studio", "coco", "csv", "masks")

LABELS = "labels.jsonl"
PENDING = "pending_queries.json"
VERSION = 1

_NAME = re.compile(r"pool_(\d+)(?:_crop_(\d+)_(\d+)_(\d+)_(\d+))?\.(?:png|npy)$")


def file_name(index: int, crop=None, suffix: str = ".png") -> str:
    """The stable file name of pool item ``index`` in exports: ``pool_000123.png``; of its crop
    ``[y0, x0, y1, x1]``: ``pool_000123_crop_8_16_24_32.png``."""
    tail = "" if crop is None else "_crop_" + "_".join(str(int(v)) for v in crop)
    return f"pool_{int(index):06d}{tail}{suffix}"


def unit_of_name(name: str) -> tuple[int, tuple[int, int, int, int] | None] | None:
    """``(pool index, crop or None)`` of a file name or URL ending in ``pool_<digits>.png`` or
    ``pool_<digits>_crop_<y0>_<x0>_<y1>_<x1>.png`` (or ``.npy``; labeling tools may prefix it, e.g.
    Label Studio's ``/data/upload/1/8f3a2b1c-pool_000123.png``); else None."""
    if not isinstance(name, str):
        return None
    match = _NAME.search(name.split("?")[0].split("#")[0]) or _NAME.search(name)
    if not match:
        return None
    crop = tuple(int(v) for v in match.groups()[1:]) if match.group(2) is not None else None
    return int(match.group(1)), crop


def index_of_name(name: str) -> int | None:
    """The pool index in a file name or URL (:func:`unit_of_name`); else None."""
    unit = unit_of_name(name)
    return None if unit is None else unit[0]


def unit_key(index: int, crop=None):
    """The key of a labeled unit: the pool index, or ``(index, y0, x0, y1, x1)`` for a crop."""
    return int(index) if crop is None else (int(index), *(int(v) for v in crop))


def query_key(query: dict):
    """:func:`unit_key` of a query or label-store line (its ``index`` and optional ``crop``)."""
    return unit_key(query["index"], query.get("crop"))


def unit_text(key) -> str:
    """``"pool item 123"`` or ``"pool item 123 crop [8, 16, 24, 32]"`` for error messages."""
    return f"pool item {key}" if isinstance(key, int) else f"pool item {key[0]} crop {list(key[1:])}"


def _crop_ok(crop) -> bool:
    return (isinstance(crop, list) and len(crop) == 4 and all(_is_int(v) and v >= 0 for v in crop)
            and crop[0] < crop[2] and crop[1] < crop[3])


def parse_class(value, classes: tuple[str, ...]) -> int | None:
    """The class index of a label given as a class name (exact, then ignoring case and
    surrounding spaces) or as an integer index; None when it names no class."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < len(classes) else None
    if not isinstance(value, str):
        return None
    if value in classes:
        return classes.index(value)
    folded = [c.strip().casefold() for c in classes]
    if value.strip().casefold() in folded and folded.count(value.strip().casefold()) == 1:
        return folded.index(value.strip().casefold())
    text = value.strip()
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    return None


def model_version(strategy: str, seed: int, cycle: int) -> str:
    """The name of the model a cycle trained: ``"<strategy>-seed<seed>-cycle<cycle>"``."""
    return f"{strategy}-seed{seed}-cycle{cycle}"


def query_score(record: dict, rank: int) -> tuple[float, str]:
    """``(score, source)`` of the item at ``rank`` of ``record["acquired"]``: the recorded
    acquisition score when the record has ``scores``, else ``1 - rank / k``."""
    scores = record.get("scores")
    k = len(record.get("acquired") or [])
    if isinstance(scores, list) and len(scores) == k and isinstance(scores[rank], (int, float)):
        return float(scores[rank]), "recorded"
    return (round(1.0 - rank / k, 6) if k else 0.0), "rank"


def atomic_write(path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: a temporary file in the same directory,
    fsync'd, renamed over ``path``, then the directory fsync'd (the rename is durable)."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_seconds(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


class Answer(NamedTuple):
    """A stored label, its cost and its import (:meth:`LabelStore.answers` with ``timed=True``)."""

    label: Any
    seconds: float | None = None  # annotation time people spent on it; None: the tool did not say
    batch: int | None = None  # the import that brought it


class LabelStore:
    """The labels people gave, ``RUN_DIR/labels.jsonl`` (format in the module docstring)."""

    def __init__(self, run_dir):
        self.run_dir = pathlib.Path(run_dir)
        self.path = self.run_dir / LABELS

    def entries(self) -> list[dict]:
        """Every line, checked (a damaged file is an error naming the line, never skipped)."""
        if not self.path.exists():
            return []
        try:
            lines = self.path.read_bytes().splitlines()
        except OSError as err:
            raise ValueError(f"cannot read {self.path}: {err.strerror}") from None
        out, seen = [], {}
        for number, line in enumerate(lines, 1):
            where = f"{self.path}:{number}"
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise ValueError(f"{where}: corrupt label line ({err})") from None
            if not isinstance(entry, dict) or "label" not in entry:
                raise ValueError(f"{where}: corrupt label line (not an object with a label)")
            for key in ("index", "batch", "records"):
                if not _is_int(entry.get(key)) or entry[key] < 0:
                    raise ValueError(f"{where}: corrupt label line ({key} must be an integer >= 0)")
            if entry.get("seconds") is not None and not _is_seconds(entry["seconds"]):
                raise ValueError(f"{where}: corrupt label line (seconds must be a number >= 0)")
            if "crop" in entry and not _crop_ok(entry["crop"]):
                raise ValueError(f"{where}: corrupt label line (crop must be [y0, x0, y1, x1], y0 < y1, x0 < x1)")
            key = query_key(entry)
            if key in seen:
                raise ValueError(f"{where}: {unit_text(key)} is labeled twice (also line {seen[key]})")
            seen[key] = number
            out.append(entry)
        return out

    def answers(self, upto: int | None = None, *, timed: bool = False) -> dict[Any, Any]:
        """``{key: label}`` (:func:`unit_key`: the pool index, or ``(index, y0, x0, y1, x1)`` of a
        crop) of the batches a cycle recorded at position ``upto`` of ``results.jsonl`` sees
        (``records <= upto``); all of them when ``upto`` is None. ``timed``: the values are
        :class:`Answer` ``(label, seconds, batch)``."""
        seen = [e for e in self.entries() if upto is None or e["records"] <= upto]
        if timed:
            return {query_key(e): Answer(e["label"], e.get("seconds"), e["batch"]) for e in seen}
        return {query_key(e): e["label"] for e in seen}

    def num_batches(self) -> int:
        return max((e["batch"] for e in self.entries()), default=0)

    def append(self, labels: dict[Any, Any], *, records: int, source: str, fmt: str,
               seconds: dict[Any, float] | None = None) -> int:
        """Add one batch ``{key: label}`` all-or-nothing (keys: :func:`unit_key`); returns its
        batch number. ``seconds``: ``{key: annotation time}`` of the labels whose time is known.

        The caller holds the run directory's writer lock (no run is writing)."""
        entries = self.entries()
        known = {query_key(e) for e in entries}
        again = [k for k in labels if k in known]
        if again:
            raise ValueError(f"pool items {again[:10]} are already in {self.path} (a crop as (index, y0, x0, y1, x1))")
        seconds = {i: t for i, t in (seconds or {}).items() if t is not None}
        bad = [unit_text(k) for k, t in seconds.items() if not _is_seconds(t)]
        if bad:
            raise ValueError(f"annotation seconds of {', '.join(bad[:10])} must be numbers >= 0")
        batch = max((e["batch"] for e in entries), default=0) + 1
        old = self.path.read_bytes() if self.path.exists() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        new = b"".join(
            (json.dumps({"index": int(k if isinstance(k, int) else k[0]), "label": label, "batch": batch,
                         "records": int(records), "source": str(source), "format": fmt,
                         **({} if isinstance(k, int) else {"crop": [int(v) for v in k[1:]]}),
                         **({"seconds": round(float(seconds[k]), 3)} if k in seconds else {})},
                        sort_keys=True) + "\n").encode()
            for k, label in labels.items())
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, old + new)
        return batch

    def rebase(self) -> None:
        """After ``--overwrite``: keep every label (they are facts about the data, and were
        paid for) but let the new runs see them all from their first cycle (``records = 0``)."""
        entries = self.entries()
        if not entries or all(e["records"] == 0 for e in entries):
            return
        atomic_write(self.path, b"".join((json.dumps({**e, "records": 0}, sort_keys=True) + "\n").encode()
                                         for e in entries))


# ----------------------------------------------------------------------------- pending queries
def read_pending(run_dir) -> dict | None:
    """The pending-queries document of ``run_dir``, or None when no run has paused there."""
    path = pathlib.Path(run_dir) / PENDING
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is corrupt: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("queries"), list) or not all(
            isinstance(q, dict) and _is_int(q.get("index")) and ("crop" not in q or _crop_ok(q["crop"]))
            for q in doc["queries"]):
        raise ValueError(f"{path} is corrupt: expected an object with a list of queries")
    doc.setdefault("runs", [])
    doc.setdefault("classes", [])
    return doc


def write_pending(run_dir, doc: dict) -> pathlib.Path:
    path = pathlib.Path(run_dir) / PENDING
    atomic_write(path, (json.dumps({"version": VERSION, **doc}, indent=1, sort_keys=True) + "\n").encode())
    return path


def update_run(run_dir, strategy: str, seed: int, queries: Iterable[dict] | None, *, task: str,
               dataset: str | None, classes: Iterable[str], next_cycle: int | None = None,
               num_labels: int | None = None, image_size=None) -> pathlib.Path | None:
    """Replace run ``(strategy, seed)``'s queries in the pending file (``None``: the run is
    over, drop them); other runs' queries are kept. ``image_size``: ``[H, W]`` of the pool
    images (detection, segmentation). Returns the file (None if none is needed)."""
    doc = read_pending(run_dir) or {"task": task, "dataset": dataset, "classes": list(classes),
                                    "runs": [], "queries": []}
    mine = lambda q: q.get("strategy") == strategy and q.get("seed") == seed  # noqa: E731
    doc["queries"] = [q for q in doc["queries"] if not mine(q)] + list(queries or [])
    doc["runs"] = [r for r in doc["runs"] if not mine(r)]
    if queries is not None:
        doc["runs"].append({"strategy": strategy, "seed": seed, "next_cycle": next_cycle,
                            "num_labels": num_labels})
    doc.update(task=task, dataset=dataset, classes=list(classes))
    if image_size is not None:
        doc["image_size"] = [int(v) for v in image_size]
    if not doc["queries"] and not doc["runs"] and not (pathlib.Path(run_dir) / PENDING).exists():
        return None
    return write_pending(run_dir, doc)


def awaiting(pending: dict | None, labeled: Iterable) -> list[dict]:
    """The queries still awaiting a label, one per unit (a pool item, or a crop of one; one that
    several runs asked about is listed once, with the best ``score``; ``queried_by`` names every
    asking run), most informative first (score descending, then newer cycles, then index and
    crop). ``labeled``: the keys (:func:`unit_key`) of the labeled units."""
    if not pending:
        return []
    labeled = set(labeled)
    best: dict[Any, dict] = {}
    askers: dict[Any, list[str]] = {}
    for q in pending["queries"]:
        i = query_key(q)
        if i in labeled:
            continue
        askers.setdefault(i, []).append(model_version(q.get("strategy"), q.get("seed"), q.get("cycle")))
        if i not in best or (q.get("score", 0.0), -q.get("rank", 0)) > (best[i].get("score", 0.0),
                                                                         -best[i].get("rank", 0)):
            best[i] = q
    out = [{**q, "queried_by": askers[i]} for i, q in best.items()]
    return sorted(out, key=lambda q: (-q.get("score", 0.0), -q.get("cycle", 0), q["index"], q.get("crop") or []))
