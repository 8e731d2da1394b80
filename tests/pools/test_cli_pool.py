"""`bal pool pack` / `bal pool score` (bal.cli_pool): datasets and image folders, top-k JSON, one-line errors."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from bal import checkpoint, pools
from bal.cli import _Parser
from bal.cli_pool import add_commands, main

from tests.pools.helpers import tiny_posterior


def _bal(argv):
    """``bal ARGV`` with the pool commands added as the lead registers them in bal.cli."""
    parser = _Parser(prog="bal")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_commands(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def _one_line_error(capsys, code):
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_pack_digits_and_score_from_a_checkpoint(tmp_path, capsys):
    assert _bal(["pool", "pack", "digits", str(tmp_path / "pool"), "--shard-size", "500", "--format", "npy"]) == 0
    assert "packed 1438 items of (8, 8, 1) uint8 into 3 shards (npy)" in capsys.readouterr().out
    post, variables = tiny_posterior()
    checkpoint.save(tmp_path / "ckpt", {"variables": variables})
    out = tmp_path / "top.json"
    argv = ["score", str(tmp_path / "pool"), "--checkpoint", str(tmp_path / "ckpt"), "--model", "mlp",
            "--posterior", "mc_dropout", "--num-classes", "10", "--model-kwargs", '{"hidden_sizes": [16]}',
            "-k", "12", "--num-samples", "4", "--chunk-size", "64", "--out", str(out),
            "--state", str(tmp_path / "score.state")]
    assert main(argv) == 0
    assert "top 12 by bald written to" in capsys.readouterr().out
    record = json.loads(out.read_text())
    source = pools.open_pool(tmp_path / "pool")
    want = pools.score_pool(post, variables, source, jax.random.key(0), 12, num_samples=4, chunk_size=64)
    assert record["indices"] == want.indices.tolist()
    assert record["names"] == [f"digits/train/{i}" for i in want.indices]
    np.testing.assert_allclose(record["scores"], want.scores)
    assert record["num_items"] == 1438 and record["processes"] == 1 and record["items_per_second"] > 0
    assert (tmp_path / "score.state").exists()


def test_pack_an_image_folder_and_score_it_directly(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i:02d}.png")
    assert main(["pack", str(tmp_path / "imgs"), str(tmp_path / "pool"), "--size", "8", "8", "--format", "npy"]) == 0
    assert "packed 40 items of (8, 8, 1) uint8" in capsys.readouterr().out
    post, variables = tiny_posterior()
    checkpoint.save(tmp_path / "ckpt", variables)
    common = ["--checkpoint", str(tmp_path / "ckpt"), "--model", "mlp", "--posterior", "mc_dropout",
              "--num-classes", "10", "--model-kwargs", '{"hidden_sizes": [16]}', "-k", "5", "--num-samples", "4",
              "--strategy", "margin"]
    assert main(["score", str(tmp_path / "pool"), *common, "--out", str(tmp_path / "a.json")]) == 0
    assert main(["score", str(tmp_path / "imgs"), *common, "--size", "8", "8", "--out", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert a["indices"] == b["indices"] and a["names"] == b["names"]
    assert all(n.endswith(".png") for n in a["names"])


def test_one_line_errors_name_the_file(tmp_path, capsys):
    err = _one_line_error(capsys, main(["pack", str(tmp_path / "missing"), str(tmp_path / "out")]))
    assert "missing is neither a dataset" in err
    pools.pack(pools.ArraySource(np.zeros((100, 8, 8, 1), np.float32)), tmp_path / "pool", shard_size=60,
               format="npy")
    post, variables = tiny_posterior()
    checkpoint.save(tmp_path / "ckpt", variables)
    score = ["--checkpoint", str(tmp_path / "ckpt"), "--model", "mlp", "--posterior", "mc_dropout",
             "--num-classes", "10", "--model-kwargs", '{"hidden_sizes": [16]}', "--out", str(tmp_path / "o.json")]
    err = _one_line_error(capsys, main(["score", str(tmp_path / "nowhere"), *score]))
    assert "pool" in err and "nowhere does not exist" in err
    index = tmp_path / "pool" / "pool.json"
    good = index.read_text()
    index.write_text("[1, 2")
    err = _one_line_error(capsys, main(["score", str(tmp_path / "pool"), *score]))
    assert f"{index}: corrupt pool index" in err
    meta = json.loads(good)
    meta["shards"][0]["size"], meta["num_items"] = 59, 99
    index.write_text(json.dumps(meta))
    err = _one_line_error(capsys, main(["score", str(tmp_path / "pool"), *score]))
    assert "shard-00000.npy: shard size mismatch: the file holds 60 rows" in err
    index.write_text(good)
    err = _one_line_error(capsys, main(["score", str(tmp_path / "pool"), *score[:-2], "--checkpoint",
                                        str(tmp_path / "no-ckpt"), "--out", str(tmp_path / "o.json")]))
    assert "no checkpoint at" in err and "no-ckpt" in err
    bad = [a if a != '{"hidden_sizes": [16]}' else '{"hidden_sizes": [32]}' for a in score]
    err = _one_line_error(capsys, main(["score", str(tmp_path / "pool"), *bad]))
    assert "does not hold variables of this posterior/model" in err
    import gc

    gc.collect()  # collect orbax's abandoned coroutine now (its warning is filtered in conftest.py)
    with pytest.raises(SystemExit):
        main(["score", str(tmp_path / "pool")])  # --checkpoint etc. are required
