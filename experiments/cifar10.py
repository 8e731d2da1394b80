"""CIFAR-10 with ResNet-18: variational (Flipout) and a regularized ensemble,
entropy and margin policies against random.

Needs CIFAR-10 in the data directory (``cifar10/cifar-10-python.tar.gz``);
where it is missing this script says how to get it and stops. ``--smoke`` runs
a tiny offline version instead.

    python experiments/cifar10.py [--smoke]
"""

import sys

from _common import main

from bal.active.config import ExperimentConfig

BASE = dict(dataset="cifar10", model="resnet18", strategies=("entropy", "margin"),
            initial_labels=1000, acquisition_size=1000, cycles=10, pool_subset=10000,
            num_samples=20, epochs=60, batch_size=128, learning_rate=1e-3, seeds=(0, 1, 2))

STUDIES = {
    "variational_flipout": ExperimentConfig(posterior="variational", estimator="flipout", **BASE),
    "regularized_ensemble": ExperimentConfig(posterior="regularized_ensemble", num_members=8,
                                             regularization=1e-3, **BASE),
}

if __name__ == "__main__":
    sys.exit(main("cifar10", __doc__, STUDIES))
