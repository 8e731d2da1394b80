import jax.numpy as jnp
import numpy as np
import pytest

from bal import metrics


def _random_predictive(n=200, c=5, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 2
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = rng.integers(0, c, size=n)
    return log_probs.astype(np.float32), labels


def test_predictive_log_probs_matches_numpy():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4), size=(6, 9))  # [S, N, C]
    got = metrics.predictive_log_probs(jnp.log(probs))
    np.testing.assert_allclose(np.exp(got), probs.mean(0), rtol=1e-5)


def test_metrics_against_numpy_loops():
    log_probs, labels = _random_predictive()
    probs = np.exp(log_probs.astype(np.float64))
    acc = np.mean([np.argmax(p) == y for p, y in zip(probs, labels)])
    nll = -np.mean([np.log(p[y]) for p, y in zip(probs, labels)])
    brier = np.mean([sum((p[c] - (c == y)) ** 2 for c in range(len(p))) for p, y in zip(probs, labels)])
    # ECE with 10 equal-width bins, written independently
    conf, pred = probs.max(1), probs.argmax(1)
    ece = 0.0
    for b in range(10):
        lo, hi = b / 10, (b + 1) / 10
        in_bin = (conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs((pred[in_bin] == labels[in_bin]).mean() - conf[in_bin].mean())
    got = metrics.evaluate(log_probs, labels, num_bins=10)
    assert got["accuracy"] == pytest.approx(acc)
    assert got["nll"] == pytest.approx(nll, rel=1e-5)
    assert got["brier"] == pytest.approx(brier, rel=1e-5)
    assert got["ece"] == pytest.approx(ece, abs=1e-5)


def test_metrics_are_finite_at_probability_zero_and_one():
    log_probs = jnp.log(jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    got = metrics.evaluate(log_probs, np.array([0, 1]))
    assert got == {"accuracy": 1.0, "nll": 0.0, "brier": 0.0, "ece": 0.0}


def test_evaluate_accepts_samples_and_checks_labels():
    log_probs, labels = _random_predictive(n=10, c=3)
    stacked = np.stack([log_probs, log_probs])
    assert metrics.evaluate(stacked, labels) == pytest.approx(metrics.evaluate(log_probs, labels))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        metrics.evaluate(log_probs, labels + 3)
    with pytest.raises(ValueError, match="shape"):
        metrics.evaluate(log_probs, labels[:5])
