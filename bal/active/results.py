"""Results that survive a crash: one JSON line per completed cycle.

A run directory holds ``config.json`` (the full :class:`ExperimentConfig`) and
``results.jsonl``, one record per completed cycle and run::

    {"strategy": "bald", "seed": 0, "cycle": 3, "num_labels": 50,
     "accuracy": 0.91, "nll": 0.31, "ece": 0.04, "brier": 0.14,
     "train_seconds": 2.1, "acquisition_seconds": 0.3, "acquired": [17, 4203, ...]}

Each record is written with one ``write`` of a whole line, flushed and
fsync'd before the next cycle starts, so a killed process loses at most the
cycle it was in. A torn last line (killed during the write) is dropped when the
file is read back, and truncated away before appending resumes.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Iterable

from bal.active.config import ExperimentConfig

__all__ = ["RunDirectory", "read_records"]

RESULTS = "results.jsonl"
CONFIG = "config.json"


def read_records(path) -> list[dict]:
    """All complete records of a ``results.jsonl`` (a torn last line is skipped)."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / RESULTS
    if not path.exists():
        raise FileNotFoundError(f"no results file {path}")
    records = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # torn write of a killed run
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} holds a corrupt record: {err}") from None
    return records


class RunDirectory:
    """The output directory of one experiment (config + results).

    ``config_class`` is the config dataclass stored in ``config.json``
    (default :class:`ExperimentConfig`); any class with ``from_dict``,
    ``compatible_with`` and ``dumps`` works (e.g. the segmentation loop's
    ``SegmentationConfig``).
    """

    def __init__(self, path, config_class=ExperimentConfig):
        self.path = pathlib.Path(path)
        self.config_class = config_class

    @property
    def results_path(self) -> pathlib.Path:
        return self.path / RESULTS

    @property
    def config_path(self) -> pathlib.Path:
        return self.path / CONFIG

    def read_config(self):
        if not self.config_path.exists():
            raise FileNotFoundError(f"{self.path} is not a bal run directory (no {CONFIG})")
        return self.config_class.from_dict(json.loads(self.config_path.read_text()))

    def prepare(self, config: ExperimentConfig, *, resume: bool, overwrite: bool) -> list[dict]:
        """Make the directory ready for ``config``; return the records to resume from.

        A directory that already holds results needs ``resume`` (same config) or
        ``overwrite`` (start again); anything else is an error, before any training.
        """
        if resume and overwrite:
            raise ValueError("choose one of --resume and --overwrite")
        has_results = self.results_path.exists() or self.config_path.exists()
        if has_results and overwrite:
            for p in (self.results_path, self.config_path):
                p.unlink(missing_ok=True)
            has_results = False
        if has_results:
            old = self.read_config()
            diff = old.compatible_with(config)
            if diff:
                raise ValueError(
                    f"{self.path} holds results of a different config (differs in "
                    f"{', '.join(diff)}); use another directory or --overwrite"
                )
            if not resume:
                raise ValueError(
                    f"{self.path} already holds results; pass --resume to continue them "
                    "or --overwrite to start again"
                )
            records = read_records(self.results_path) if self.results_path.exists() else []
            self._drop_torn_tail()
            return records
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(config.dumps())
        os.replace(tmp, self.config_path)
        return []

    def _drop_torn_tail(self) -> None:
        if not self.results_path.exists():
            return
        data = self.results_path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            with open(self.results_path, "r+b") as f:
                f.truncate(end)

    def append(self, record: dict) -> None:
        """Append one record durably (one write, flush, fsync)."""
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        with open(self.results_path, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def records(self) -> list[dict]:
        return read_records(self.results_path)


def runs(records: Iterable[dict]) -> dict[tuple[str, int], list[dict]]:
    """Group records by ``(strategy, seed)``, each list sorted by cycle."""
    grouped: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        grouped.setdefault((r["strategy"], r["seed"]), []).append(r)
    return {k: sorted(v, key=lambda r: r["cycle"]) for k, v in grouped.items()}
