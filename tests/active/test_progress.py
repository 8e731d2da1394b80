"""The progress display draws every task's records (on a terminal) and stays silent elsewhere."""

import io

import pytest

from bal.active.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


RECORDS = {
    "classification": {"strategy": "bald", "seed": 0, "cycle": 2, "num_labels": 40, "accuracy": 0.8125},
    "segmentation": {"strategy": "bald_crops", "seed": 1, "cycle": 0, "num_labeled_pixels": 30720,
                     "num_labeled_images": 10, "mean_iou": 0.4321},
    "detection": {"strategy": "box_bald", "seed": 2, "cycle": 1, "num_labeled_images": 200,
                  "num_labeled_boxes": 612, "map": 0.1066, "ap50": 0.33},
}


@pytest.mark.parametrize("task", list(RECORDS))
def test_progress_shows_each_tasks_counts_and_metric(task):
    stream = Terminal()
    progress = Progress(stream=stream)
    progress.start(total=3)
    progress.update(RECORDS[task])
    bar = progress._bar
    shown = bar.postfix
    progress.close()
    assert bar.n == 1
    expected = {"classification": ["bald seed 0 cycle 2", "labels 40", "accuracy 0.812"],
                "segmentation": ["labeled pixels 30720", "labeled images 10", "mean_iou 0.432"],
                "detection": ["labeled images 200", "labeled boxes 612", "map 0.107"]}[task]
    for part in expected:
        assert part in shown, (part, shown)
    assert "ap50" not in shown  # one headline metric


def test_progress_is_silent_off_a_terminal_and_when_quiet():
    for progress in (Progress(stream=io.StringIO()), Progress(quiet=True, stream=Terminal())):
        progress.start(total=2)
        progress.update(RECORDS["segmentation"])
        progress.close()
        assert progress._bar is None and progress.stream.getvalue() == ""
