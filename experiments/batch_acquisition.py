"""BatchBALD vs top-k BALD vs PowerBALD vs random, acquisition size 10.

MNIST and Repeated MNIST (every training image three times, Gaussian noise
σ = 0.1 on the copies; Kirsch, van Amersfoort & Gal 2019), 20 class-balanced
initial labels, MC dropout. The BatchBALD paper reports labels to 90 %
accuracy BatchBALD ≈ 90 vs BALD ≈ 120, to 95 % ≈ 200 vs ≈ 250; on Repeated
MNIST top-k BALD falls behind random.

    python experiments/batch_acquisition.py [--smoke]
"""

import sys

from _common import main

from bal.active.config import ExperimentConfig

BASE = dict(dataset="mnist", model="gal_cnn", posterior="mc_dropout",
            strategies=("batchbald", "bald", "powerbald"), initial_labels=20, acquisition_size=10,
            cycles=30, pool_subset=2000, num_samples=20, epochs=50, batch_size=64, seeds=(0, 1, 2),
            acquisition_params={"batchbald": {"num_configs": 10000}})

STUDIES = {
    "mnist": ExperimentConfig(**BASE),
    "repeated_mnist": ExperimentConfig(repeat=3, repeat_noise=0.1, **BASE),
}

if __name__ == "__main__":
    sys.exit(main("batch_acquisition", __doc__, STUDIES))
