"""The Gal et al. 2017 study on Fashion-MNIST (same setup as mnist_gal2017).

    python experiments/fashion_mnist.py [--smoke]
"""

import dataclasses
import sys

from _common import main
from mnist_gal2017 import STUDIES as MNIST

STUDIES = {name: dataclasses.replace(c, dataset="fashion_mnist") for name, c in MNIST.items()}

if __name__ == "__main__":
    sys.exit(main("fashion_mnist", __doc__, STUDIES))
