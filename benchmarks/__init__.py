"""Speed and memory benchmarks of ``bal``: ``python -m benchmarks [--quick | --full]``."""
