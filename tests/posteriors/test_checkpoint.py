import jax
import pytest

from bal import checkpoint
from bal import posteriors as P
from bal.train import fit

from .tinynet import TinyNet, blobs, tree_allclose


def test_checkpoint_round_trip_resumes_training_state(tmp_path):
    post = P.deep_ensemble(P.Deterministic(TinyNet(3), 3), 2)
    x, y = blobs(40)
    res = fit(post, post.init(jax.random.key(0), x), x, y, jax.random.key(1), num_epochs=2)
    state = {"variables": res.variables, "opt_state": res.opt_state, "epoch": 2}
    path = checkpoint.save(tmp_path / "ckpt", state)
    assert checkpoint.exists(path)
    with pytest.raises(FileExistsError):
        checkpoint.save(path, state)
    like = {"variables": post.init(jax.random.key(5), x), "opt_state": res.opt_state, "epoch": 0}
    back = checkpoint.restore(path, like=like)
    assert tree_allclose(back["variables"], res.variables, rtol=0, atol=0)
    assert int(back["epoch"]) == 2
    # continuing from the restored state equals continuing from the in-memory one
    a = fit(post, res.variables, x, y, jax.random.key(2), num_epochs=1, opt_state=res.opt_state)
    b = fit(post, back["variables"], x, y, jax.random.key(2), num_epochs=1, opt_state=back["opt_state"])
    assert tree_allclose(a.variables, b.variables, rtol=0, atol=0)


def test_restore_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoint.restore(tmp_path / "nothing")
