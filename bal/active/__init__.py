"""The active-learning loop: one pure kernel over tasks, one driver with I/O.

    from bal.active import ExperimentConfig, run
    records = run(ExperimentConfig(dataset="mnist", strategies=["bald"]), "runs/mnist")

- :mod:`bal.active.kernel`: ``init`` / ``step`` / ``replay`` over a ``Task``;
- :mod:`bal.active.tasks`: classification and segmentation;
- :mod:`bal.active.run`: strategies x seeds, records, resume, the writer lock;
- :mod:`bal.active.config`: the strictly checked settings of every task;
- :mod:`bal.active.results`: the run directory (``config.json``, ``results.jsonl``).
"""

from bal.active.config import ExperimentConfig, config_from_dict, load_config
from bal.active.run import run

__all__ = ["ExperimentConfig", "config_from_dict", "load_config", "run"]
