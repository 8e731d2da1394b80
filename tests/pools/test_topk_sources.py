"""bal.pools.topk (exact mergeable top-k) and bal.pools.sources / pack (every source, one interface)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from bal import pools
from bal.pools.shards import array_record_available
from bal.pools.topk import RunningTopK, merge_results

from tests.pools.helpers import pool_array

needs_array_record = pytest.mark.skipif(not array_record_available(),
                                        reason="grain / array-record not installed (pip install 'bal[pools]')")


def _brute(values, k):
    v = np.where(np.isnan(values), -np.inf, values)
    order = np.lexsort((np.arange(v.size), -v))
    return order[:k]


# ----------------------------------------------------------------------------- top-k
@pytest.mark.parametrize("k", [1, 7, 50, 300])
def test_running_top_k_equals_brute_force_with_ties_and_nans(k):
    rng = np.random.default_rng(k)
    values = np.round(rng.random(1000) * 20) / 20  # many ties
    values[rng.integers(0, 1000, 30)] = np.nan
    values[:5] = -0.0
    top = RunningTopK(k)
    for a in range(0, 1000, 37):
        top.update(values[a:a + 37], np.arange(a, min(a + 37, 1000)), {"x": np.arange(a, min(a + 37, 1000))[:, None]})
    r = top.result()
    np.testing.assert_array_equal(r.indices, _brute(values, k))
    np.testing.assert_array_equal(r.payload["x"][:, 0], r.indices)  # payload travels with the items


def test_top_k_merge_of_parts_in_any_order_equals_whole():
    rng = np.random.default_rng(0)
    values = np.round(rng.random(600) * 10).astype(np.float32)
    parts = []
    for a, b in [(400, 600), (0, 150), (150, 400)]:  # out of order: ties still go to the lowest index
        t = RunningTopK(40)
        t.update(values[a:b], np.arange(a, b))
        parts.append(t.result())
    np.testing.assert_array_equal(merge_results(parts, 40).indices, _brute(values, 40))


def test_top_k_state_round_trip_and_fewer_items_than_k():
    top = RunningTopK(10)
    top.update([0.5, 0.7, 0.1], [4, 2, 9], {"e": np.eye(3, dtype=np.float32)})
    again = RunningTopK.from_state(10, top.state())
    r = again.result()
    np.testing.assert_array_equal(r.indices, [2, 4, 9])
    np.testing.assert_array_equal(r.payload["e"], np.eye(3)[[1, 0, 2]])
    with pytest.raises(ValueError, match="k must be"):
        RunningTopK(0)


# ----------------------------------------------------------------------------- sources
def test_array_source_reads_float32_and_scales_uint8():
    x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 1)
    s = pools.ArraySource(x, names="set/")
    assert s.read(0, 2).dtype == np.float32
    np.testing.assert_allclose(s.read(0, 2), x / 255.0, rtol=1e-6)
    assert s.names([1]) == ["set/1"]
    np.testing.assert_array_equal(s.indices(0, 2), [0, 1])
    with pytest.raises(ValueError, match="outside the pool"):
        s.read(1, 3)


def test_npy_shards_round_trip_names_take_subset(tmp_path):
    x = pool_array(1000)
    index = pools.pack(pools.ArraySource(x), tmp_path / "p", shard_size=300, format="npy", name_prefix="x/")
    meta = json.loads(index.read_text())
    assert [s["size"] for s in meta["shards"]] == [300, 300, 300, 100]
    src = pools.open_pool(tmp_path / "p")
    assert isinstance(src, pools.NpyShards) and len(src) == 1000 and src.item_shape == (8, 8, 1)
    np.testing.assert_array_equal(src.read(250, 950), x[250:950])  # across shards
    np.testing.assert_array_equal(src.take([999, 3, 301, 4]), x[[999, 3, 301, 4]])
    assert src.names([0, 999]) == ["x/0", "x/999"]
    sub = pools.Subset(src, np.arange(1, 1000, 3))
    np.testing.assert_array_equal(sub.read(0, 5), x[[1, 4, 7, 10, 13]])
    np.testing.assert_array_equal(sub.indices(2, 4), [7, 10])
    assert sub.names([7]) == ["x/7"]
    nested = pools.Subset(sub, [0, 2])
    np.testing.assert_array_equal(nested.indices(0, 2), [1, 7])


def test_pack_dataset_keeps_uint8_labels_and_names(tmp_path):
    from bal import data

    ds = data.load("digits", "train")
    pools.pack_dataset("digits", tmp_path / "d", shard_size=500, format="npy")
    src = pools.open_pool(tmp_path / "d")
    assert src.dtype == np.uint8 and len(src) == len(ds)
    np.testing.assert_allclose(src.read(0, 10), ds.images[:10] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(src.labels(), ds.labels)
    assert src.names([5]) == ["digits/train/5"]


def test_pack_refuses_to_overwrite_without_flag(tmp_path):
    pools.pack(pools.ArraySource(pool_array(10)), tmp_path / "p", format="npy")
    with pytest.raises(FileExistsError, match="not empty"):
        pools.pack(pools.ArraySource(pool_array(10)), tmp_path / "p", format="npy")
    pools.pack(pools.ArraySource(pool_array(12)), tmp_path / "p", format="npy", overwrite=True)
    assert len(pools.open_pool(tmp_path / "p")) == 12


@needs_array_record
def test_array_record_shards_through_grain_equal_npy(tmp_path):
    x = pool_array(700)
    pools.pack(pools.ArraySource(x), tmp_path / "p", shard_size=256, format="both")
    ar = pools.open_pool(tmp_path / "p", storage="array_record")
    assert isinstance(ar, pools.ArrayRecordShards)
    np.testing.assert_array_equal(ar.read(0, 700), x)
    np.testing.assert_array_equal(ar.read(255, 513), x[255:513])  # index-addressable: any row, any order
    np.testing.assert_array_equal(ar.take([600, 2]), x[[600, 2]])
    ds = ar.dataset()
    np.testing.assert_array_equal(ds[699], x[699])


# ----------------------------------------------------------------------------- errors naming the file
def test_errors_missing_folder_corrupt_index_shard_mismatch(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        pools.open_pool(tmp_path / "nowhere")
    pools.pack(pools.ArraySource(pool_array(100)), tmp_path / "p", shard_size=60, format="npy")
    index = tmp_path / "p" / "pool.json"
    good = index.read_text()
    index.write_text("{not json")
    with pytest.raises(ValueError, match=r"pool\.json: corrupt pool index"):
        pools.open_pool(tmp_path / "p")
    meta = json.loads(good)
    meta["shards"][1]["size"] = 41
    meta["num_items"] = 101
    index.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"shard-00001\.npy: shard size mismatch"):
        pools.open_pool(tmp_path / "p")
    index.write_text(good)
    (tmp_path / "p" / "shard-00000.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"shard-00000\.npy"):
        pools.open_pool(tmp_path / "p")


@needs_array_record
def test_array_record_size_mismatch_names_the_shard(tmp_path):
    pools.pack(pools.ArraySource(pool_array(100)), tmp_path / "p", shard_size=60, format="array_record")
    index = tmp_path / "p" / "pool.json"
    meta = json.loads(index.read_text())
    meta["shards"][0]["size"], meta["num_items"] = 61, 101
    index.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"shard-00000\.array_record: shard size mismatch"):
        pools.open_pool(tmp_path / "p")


# ----------------------------------------------------------------------------- images
def _write_images(folder, n, size=(6, 5), mode="L", fmt="png"):
    from PIL import Image

    rng = np.random.default_rng(0)
    arrays = {}
    for i in range(n):
        sub = folder / ("b" if i % 3 else "a")
        sub.mkdir(parents=True, exist_ok=True)
        shape = size if mode == "L" else size + (3,)
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        name = f"img{i:03d}.{fmt}"
        Image.fromarray(a, mode=mode).save(sub / name)
        arrays[f"{sub.name}/{name}"] = a
    return arrays


def test_image_folder_decodes_in_threads_in_order(tmp_path, monkeypatch):
    arrays = _write_images(tmp_path / "imgs", 23)
    src = pools.ImageFolder(tmp_path / "imgs", workers=4)
    names = sorted(arrays)
    assert src.names(range(len(src))) == names and src.item_shape == (6, 5, 1)
    # slow the first file of every chunk down: the thread pool must still return rows in order
    import bal.pools.images as images

    real = images._decode

    def slow(path, mode, size):
        if path.name.endswith("000.png"):
            time.sleep(0.05)
        return real(path, mode, size)

    monkeypatch.setattr(images, "_decode", slow)
    got = src.read_raw(0, 23)
    np.testing.assert_array_equal(got[..., 0], np.stack([arrays[n] for n in names]))
    assert len({t for t in src._executor._threads}) > 1


def test_image_folder_size_mismatch_and_resize_and_pack(tmp_path):
    from PIL import Image

    _write_images(tmp_path / "imgs", 4, mode="RGB", fmt="jpg")
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "imgs" / "zz.png")
    src = pools.ImageFolder(tmp_path / "imgs")
    with pytest.raises(ValueError, match=r"zz\.png is 9x9"):
        src.read(0, len(src))
    resized = pools.ImageFolder(tmp_path / "imgs", size=(4, 4))
    assert resized.read(0, 5).shape == (5, 4, 4, 3)
    pools.pack_images(tmp_path / "imgs", tmp_path / "packed", size=(4, 4), format="npy")
    packed = pools.open_pool(tmp_path / "packed")
    np.testing.assert_array_equal(packed.read_raw(0, 5), resized.read_raw(0, 5))
    assert packed.names([4]) == ["zz.png"] and packed.names([0]) == resized.names([0])
    with pytest.raises(FileNotFoundError, match="no PNG or JPEG"):
        pools.ImageFolder(tmp_path / "packed")
