"""Labeling the least uncertain vs the most uncertain examples vs random.

MNIST, Gal CNN with MC dropout, BALD and max entropy, 20 initial labels, 10
per cycle, 3 seeds.

    python experiments/least_vs_most.py [--smoke]
"""

import sys

from _common import main

from bal.active.config import ExperimentConfig

BASE = dict(dataset="mnist", model="gal_cnn", posterior="mc_dropout", strategies=("bald", "entropy"),
            initial_labels=20, acquisition_size=10, cycles=50, pool_subset=2000, epochs=50,
            batch_size=128, seeds=(0, 1, 2))

STUDIES = {
    "most_informative": ExperimentConfig(most_informative=True, **BASE),
    "least_informative": ExperimentConfig(most_informative=False, include_random=False, **BASE),
}

if __name__ == "__main__":
    sys.exit(main("least_vs_most", __doc__, STUDIES))
