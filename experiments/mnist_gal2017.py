"""Gal, Islam & Ghahramani 2017, "Deep Bayesian Active Learning with Image Data".

MNIST, the Gal CNN, 20 class-balanced initial labels, 10 acquired per cycle,
100 cycles, BALD / variation ratios / max entropy / mean std / random, 3 seeds;
scoring a random 2,000-item pool subset per cycle as the paper did. The same
study is repeated with the mean-field variational and the regularized-ensemble
posteriors. The paper reports, for 10 % / 5 % test error, BALD 145 / 335 labels
and random 255 / 835.

    python experiments/mnist_gal2017.py [--smoke] [--cycles N] [--seeds 0 1 2]
"""

import sys

from _common import main

from bal.active.config import ExperimentConfig

GAL = dict(dataset="mnist", model="gal_cnn", initial_labels=20, initial_balanced=True,
           acquisition_size=10, cycles=100, pool_subset=2000, num_samples=20, epochs=50,
           batch_size=128, weight_decay=0.0, seeds=(0, 1, 2),
           strategies=("bald", "variation_ratios", "entropy", "mean_std"))

STUDIES = {
    "mc_dropout": ExperimentConfig(posterior="mc_dropout", **GAL),
    "variational": ExperimentConfig(posterior="variational", estimator="flipout", **GAL),
    "regularized_ensemble": ExperimentConfig(posterior="regularized_ensemble", num_members=8,
                                             regularization=1e-3, **GAL),
}

if __name__ == "__main__":
    sys.exit(main("mnist_gal2017", __doc__, STUDIES))
