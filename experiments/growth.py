"""Growing the labeled set by a fraction per cycle: 10 %, 33 % and 100 %.

MNIST, Gal CNN with MC dropout, 20 class-balanced initial labels, BALD vs
random, until 1,000 labels, 3 seeds.

    python experiments/growth.py [--smoke]
"""

import sys

from _common import main

from bal.active.config import ExperimentConfig

BASE = dict(dataset="mnist", model="gal_cnn", posterior="mc_dropout", strategies=("bald",),
            initial_labels=20, acquisition_size=None, cycles=None, label_budget=1000,
            pool_subset=2000, epochs=50, batch_size=128, seeds=(0, 1, 2))

STUDIES = {f"growth_{int(g * 100)}pct": ExperimentConfig(growth=g, **BASE) for g in (0.10, 0.33, 1.0)}

if __name__ == "__main__":
    sys.exit(main("growth", __doc__, STUDIES))
