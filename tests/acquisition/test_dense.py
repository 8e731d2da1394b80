"""Dense acquisition: pixel scores equal the classification scores pixel by pixel; reductions; class targeting."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bal.acquisition import dense
from bal.acquisition.scores import SCORES

from .acq_helpers import random_log_probs

S, N, H, W, C = 4, 2, 3, 4, 3


def dense_log_probs(seed=0, s=S, n=N, h=H, w=W, c=C):
    return random_log_probs(s, n * h * w, c, seed=seed).reshape(s, n, h, w, c)


@pytest.mark.parametrize("score", sorted(SCORES))
def test_pixel_scores_equal_the_classification_score_of_each_pixel(score):
    lp = dense_log_probs(seed=1)
    got = np.asarray(dense.pixel_scores(lp, score))
    assert got.shape == (N, H, W)
    fn = SCORES[score]
    expected = np.empty((N, H, W), np.float32)
    for n in range(N):
        for i in range(H):
            for j in range(W):
                expected[n, i, j] = fn(lp[:, n, i, j][:, None, :])[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_pixel_scores_aliases_ranks_and_nan_free_at_certainty():
    lp = dense_log_probs(seed=2)
    np.testing.assert_array_equal(dense.pixel_scores(lp, "mutual_information"), dense.pixel_scores(lp, "bald"))
    np.testing.assert_array_equal(dense.pixel_scores(lp, "Max-Entropy"), dense.pixel_scores(lp, "entropy"))
    # one-hot predictions (log p in {0, -inf}) give finite zeros
    certain = jnp.log(jax.nn.one_hot(jnp.zeros((S, N, H, W), jnp.int32), C))
    for score in SCORES:
        out = np.asarray(dense.pixel_scores(certain, score))
        assert np.isfinite(out).all() and np.allclose(out, 0.0, atol=1e-6), score
    # a volume [S, N, D, H, W, C] works too
    assert dense.pixel_scores(lp.reshape(S, N, 1, H, W, C), "entropy").shape == (N, 1, H, W)


def test_pixel_scores_errors_name_the_problem():
    lp = dense_log_probs()
    with pytest.raises(ValueError, match=r"unknown pixel score 'badge'.*'bald'"):
        dense.pixel_scores(lp, "badge")
    with pytest.raises(ValueError, match=r"\[S, N, H, W, C\]"):
        dense.pixel_scores(lp[0, 0, 0], "bald")
    with pytest.raises(ValueError, match="no pixels"):
        dense.pixel_scores(lp[:, :, :0], "bald")
    with pytest.raises(ValueError, match="normalise"):
        dense.pixel_scores(jnp.exp(lp), "bald")  # probabilities instead of log-probabilities


# ----------------------------------------------------------------------------- reductions
U = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
              [[0.5, 0.0, 0.0], [0.0, 0.0, 2.5]]], np.float32)  # [N=2, H=2, W=3]


@pytest.mark.parametrize("how,expected", [
    ("mean", [3.5, 0.5]),
    ("sum", [21.0, 3.0]),
    ("max", [6.0, 2.5]),
    ("quantile", [5.5, 1.5]),        # q = 0.9: h = 5 * 0.9 = 4.5 -> halfway between the 5th and 6th order statistics
    ("top_mean", [6.0, 2.5]),        # top ceil(0.1 * 6) = 1 pixel
])
def test_reductions_hand_computed(how, expected):
    np.testing.assert_allclose(dense.reduce_pixels(U, how, q=0.9), expected, rtol=1e-6)


def test_reductions_with_a_mask():
    mask = np.array([[[True, False, True], [False, True, False]],
                     [[False, False, False], [False, False, False]]])  # image 1: nothing left to label
    out = {how: np.asarray(dense.reduce_pixels(U, how, q=0.5, mask=mask)) for how in dense.REDUCTIONS}
    # image 0 counts the pixels 1, 3, 5
    np.testing.assert_allclose([out["mean"][0], out["sum"][0], out["max"][0]], [3.0, 9.0, 5.0])
    np.testing.assert_allclose(out["quantile"][0], 3.0)   # median of (1, 3, 5)
    np.testing.assert_allclose(out["top_mean"][0], 4.0)   # top ceil(0.5 * 3) = 2 pixels: (3 + 5) / 2
    for how in dense.REDUCTIONS:
        assert np.isnan(out[how][1]), how                 # no pixel counted: NaN, never selected
    # an [H, W] mask broadcasts over the images
    np.testing.assert_allclose(dense.reduce_pixels(U, "sum", mask=mask[0]), [9.0, 0.5])


def test_quantile_matches_numpy_linear_interpolation_and_top_mean_its_definition():
    rng = np.random.default_rng(0)
    u = rng.gamma(1.0, size=(3, 5, 7)).astype(np.float32)
    mask = rng.uniform(size=u.shape) < 0.6
    for q in (0.0, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0):
        got = np.asarray(dense.reduce_pixels(u, "quantile", q=q, mask=mask))
        expected = [np.quantile(u[n][mask[n]].astype(np.float64), q) for n in range(3)]
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=f"q={q}")
        got = np.asarray(dense.reduce_pixels(u, "top_mean", q=q, mask=mask))
        expected = []
        for n in range(3):
            v = np.sort(u[n][mask[n]])[::-1]
            expected.append(v[: max(1, int(np.ceil(round((1 - q) * len(v), 6))))].mean())
        np.testing.assert_allclose(got, expected, rtol=1e-5, err_msg=f"q={q}")
    # the limits: quantile(1) = top_mean(1) = max, quantile(0) = min, top_mean(0) = mean
    np.testing.assert_allclose(dense.reduce_pixels(u, "top_mean", q=0.0), u.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(dense.reduce_pixels(u, "top_mean", q=1.0), u.max(axis=(1, 2)), rtol=1e-6)


def test_reductions_run_under_jit_with_a_traced_q():
    f = jax.jit(lambda u, q: dense.reduce_pixels(u, "quantile", q=q))
    np.testing.assert_allclose(f(U, 0.5), [3.5, 0.0])


def test_reduction_errors():
    with pytest.raises(ValueError, match=r"unknown pixel reduction 'median'.*'mean', 'sum', 'max', 'quantile'"):
        dense.reduce_pixels(U, "median")
    with pytest.raises(ValueError, match=r"q must lie in \[0, 1\]"):
        dense.reduce_pixels(U, "quantile", q=90)
    with pytest.raises(ValueError, match="boolean"):
        dense.reduce_pixels(U, "mean", mask=np.ones(U.shape, np.int32))
    with pytest.raises(ValueError, match="does not broadcast"):
        dense.reduce_pixels(U, "mean", mask=np.ones((2, 3, 2), bool))
    with pytest.raises(ValueError, match=r"\[\.\.\., H, W\]"):
        dense.reduce_pixels(U[0, 0], "mean")


# ----------------------------------------------------------------------------- class targeting
def test_class_targeted_hand_case():
    # two samples, one image of 1 x 2 pixels, three classes
    p = np.array([[[[[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]]],
                  [[[[0.2, 0.5, 0.3], [0.1, 0.3, 0.6]]]]], np.float32)  # [S=2, N=1, H=1, W=2, C=3]
    lp = jnp.log(p)
    # p̄ = [[0.4, 0.4, 0.2], [0.1, 0.2, 0.7]]; target classes {1, 2}: w = [0.6, 0.9]
    np.testing.assert_allclose(dense.target_mass(lp, [1, 2]), [[[0.6, 0.9]]], rtol=1e-6)
    u = jnp.asarray([[[2.0, 1.0]]])
    np.testing.assert_allclose(dense.class_targeted(u, lp, [1, 2]), [[[1.2, 0.9]]], rtol=1e-6)
    # λ = 0.5: u · (0.5 + 0.5 w)
    np.testing.assert_allclose(dense.class_targeted(u, lp, (2,), strength=0.5), [[[1.2, 0.85]]], rtol=1e-6)
    np.testing.assert_allclose(dense.class_targeted(u, lp, [0], strength=0.0), u)
    # all classes targeted: no change
    np.testing.assert_allclose(dense.class_targeted(u, lp, range(3)), u, rtol=1e-6)


def test_class_targeted_errors():
    lp = dense_log_probs()
    u = dense.pixel_scores(lp, "bald")
    with pytest.raises(ValueError, match=r"class id 3 is out of range.*C = 3.*\[0, 2\]"):
        dense.class_targeted(u, lp, [0, 3])
    with pytest.raises(ValueError, match="class id -1 is out of range"):
        dense.class_targeted(u, lp, [-1])
    with pytest.raises(ValueError, match="listed twice"):
        dense.class_targeted(u, lp, [1, 1])
    with pytest.raises(ValueError, match="empty"):
        dense.class_targeted(u, lp, [])
    with pytest.raises(ValueError, match="integers"):
        dense.class_targeted(u, lp, [1.5])
    with pytest.raises(ValueError, match=r"strength.*\[0, 1\]"):
        dense.class_targeted(u, lp, [1], strength=2.0)
    with pytest.raises(ValueError, match="pixel_scores has shape"):
        dense.class_targeted(u[:, :2], lp, [1])
