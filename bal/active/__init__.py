"""The active-learning loop: one pure kernel over tasks, one driver with I/O.

    from bal.active import ExperimentConfig, run
    records = run(ExperimentConfig(dataset="mnist", strategies=["bald"]), "runs/mnist")

The modules (kernel, tasks, run, config, stopping, results) are laid out in ARCHITECTURE.md.
"""

from bal.active.config import ExperimentConfig, config_from_dict, load_config
from bal.active.run import run

__all__ = ["ExperimentConfig", "config_from_dict", "load_config", "run"]
