"""Results that survive a crash: one JSON line per completed cycle.

A run directory holds ``config.json`` (the full config of the task) and
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

import contextlib
import fcntl
import json
import os
import pathlib
import pickle
from typing import Iterable

import numpy as np

from bal.active.config import Config, config_from_dict
from bal.interrupts import raise_if_interrupted

__all__ = ["RunDirectory", "read_records"]

RESULTS = "results.jsonl"
CONFIG = "config.json"
LOCK = ".lock"
WEIGHTS = "weights"

#: what every record holds, with its type (checked when a results file is read back)
_REQUIRED = {"strategy": str, "seed": int, "cycle": int}


def read_records(path) -> list[dict]:
    """All complete records of a ``results.jsonl`` (a torn last line is skipped)."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / RESULTS
    if not path.exists():
        raise FileNotFoundError(f"no results file {path}")
    records = []
    try:
        with open(path, "rb") as f:
            lines = f.readlines()
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from None
    for number, line in enumerate(lines, 1):
        if not line.endswith(b"\n"):
            break  # torn write of a killed run
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}:{number}: corrupt record ({err})") from None
        problem = _record_problem(record)
        if problem:
            raise ValueError(f"{path}:{number}: corrupt record ({problem})")
        records.append(record)
    return records


def _record_problem(record) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    for key, kind in _REQUIRED.items():
        value = record.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"{key} must be a {kind.__name__}; got {value!r}"
    if record["cycle"] < 0 or record["seed"] < 0:
        return "cycle and seed must be >= 0"
    acquired = record.get("acquired") or []
    if not isinstance(acquired, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in acquired):
        return "acquired must be a list of indices >= 0"
    return None


class RunDirectory:
    """The output directory of one experiment: ``config.json`` (any task's config,
    read back by its ``task`` setting), ``results.jsonl``, the writer lock and,
    for warm-started runs, the last weights of each run (``weights/``)."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    @property
    def results_path(self) -> pathlib.Path:
        return self.path / RESULTS

    @property
    def config_path(self) -> pathlib.Path:
        return self.path / CONFIG

    def read_config(self):
        if not self.config_path.exists():
            raise FileNotFoundError(f"{self.path} is not a bal run directory (no {CONFIG})")
        try:
            settings = json.loads(self.config_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{self.config_path} is corrupt: {err}") from None
        try:
            return config_from_dict(settings)
        except ValueError as err:
            raise ValueError(f"{self.config_path} is corrupt: {err}") from None

    @contextlib.contextmanager
    def lock(self):
        """Hold the directory's writer lock: a second writer (another ``bal run``, a
        ``--resume`` or ``--overwrite``) is refused while this one runs. ``flock``
        is released by the kernel when the holder dies, even by ``kill -9``, so a
        lock is never stale."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise ValueError(f"cannot use {self.path} as a run directory: {err.strerror}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise ValueError(f"{self.path} is in use by another bal run (pid {holder}); wait for it "
                                 "or use another --out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield self
        finally:
            os.close(fd)  # releases the lock

    def _weights_path(self, strategy: str, seed: int, cycle: int) -> pathlib.Path:
        return self.path / WEIGHTS / f"{strategy}-seed{seed}-cycle{cycle}.pkl"

    def save_weights(self, strategy: str, seed: int, cycle: int, variables) -> None:
        """Keep the weights after ``cycle`` (warm starts resume from them); drops older ones."""
        import jax

        path = self._weights_path(strategy, seed, cycle)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(jax.tree.map(np.asarray, variables), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        for old in path.parent.glob(f"{strategy}-seed{seed}-cycle*.pkl"):
            if old != path and int(old.stem.rsplit("cycle", 1)[1]) < cycle - 1:
                old.unlink()  # keep the last two: a crash between save and append needs the older

    def load_weights(self, strategy: str, seed: int, cycle: int):
        path = self._weights_path(strategy, seed, cycle)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: a warm-started run resumes from the weights "
                                    "of its last recorded cycle")
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except Exception as err:  # a truncated pickle raises several types
            raise ValueError(f"{path} is corrupt: {err}") from None

    def prepare(self, config: Config, *, resume: bool, overwrite: bool) -> list[dict]:
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
            for p in (self.path / WEIGHTS).glob("*.pkl"):
                p.unlink()
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
        raise_if_interrupted()  # a safe point: a Ctrl-C swallowed elsewhere stops the run here

    def records(self) -> list[dict]:
        return read_records(self.results_path)


def runs(records: Iterable[dict]) -> dict[tuple[str, int], list[dict]]:
    """Group records by ``(strategy, seed)``, each list sorted by cycle."""
    grouped: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        grouped.setdefault((r["strategy"], r["seed"]), []).append(r)
    return {k: sorted(v, key=lambda r: r["cycle"]) for k, v in grouped.items()}
