"""Progress display for long runs: cycle, labels, last accuracy, ETA.

Uses tqdm, which draws on a terminal and stays silent when stderr is not one
(CI logs, pipes); ``quiet=True`` silences it everywhere.
"""

from __future__ import annotations

import sys

#: the metric shown per task: classification, segmentation, detection
HEADLINE = ("accuracy", "mean_iou", "map")


class Progress:
    """Receives ``start(total, done)``, ``update(record)`` per cycle, ``close()``."""

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = sys.stderr if stream is None else stream
        self._bar = None

    def start(self, total: int, done: int = 0) -> None:
        if self.quiet or not getattr(self.stream, "isatty", lambda: False)():
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, initial=done, unit="cycle", file=self.stream,
                         dynamic_ncols=True)

    def update(self, record: dict) -> None:
        if self._bar is None:
            return
        # every task's label counts (num_labels; num_labeled_pixels / _images / _boxes) and headline metric
        counts = [f"{k[len('num_'):].replace('_', ' ')} {v}" for k, v in record.items() if k.startswith("num_")]
        metric = [f"{m} {record[m]:.3f}" for m in HEADLINE if m in record][:1]
        self._bar.set_postfix_str(" ".join([f"{record['strategy']} seed {record['seed']} cycle {record['cycle']}",
                                            *counts, *metric]), refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
