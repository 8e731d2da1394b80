"""bal.backend: one policy per process, overridable, chunk sizes from the caches, old import paths."""

import dataclasses

import jax
import pytest

import bal.backend as backend
from bal.backend import Policy, accelerator_policy, cpu_chunk_sizes, cpu_policy, use
from bal.backend.policy import cache_sizes

KB, MB = 1 << 10, 1 << 20


def test_policy_resolves_once_and_follows_the_backend(monkeypatch):
    monkeypatch.delenv("BAL_CONV_REWRITE", raising=False)
    first = backend.policy()
    assert backend.policy() is first  # cached for the process
    if jax.default_backend() == "cpu":
        assert first == cpu_policy()
        assert (first.sample_map, first.member_map, first.train_map, first.conv_rewrite) == ("map", "map",
                                                                                           "unroll", True)
    else:
        assert first == accelerator_policy()


def test_use_and_set_policy_override_and_restore(monkeypatch):
    monkeypatch.delenv("BAL_CONV_REWRITE", raising=False)
    base = backend.policy()
    acc = accelerator_policy()
    with use(acc) as p:
        assert p is acc and backend.policy() is acc
        inner = dataclasses.replace(acc, chunk_size=7)
        with use(inner):
            assert backend.policy().chunk_size == 7
        assert backend.policy() is acc
    assert backend.policy() is base
    backend.set_policy(acc)
    try:
        assert backend.policy() is acc
    finally:
        backend.set_policy(None)
    assert backend.policy() is base
    with pytest.raises(ValueError):
        backend.set_policy("vmap")


def test_accelerator_policy_values():
    p = accelerator_policy()
    assert (p.chunk_size, p.sample_map, p.member_map, p.train_map, p.conv_rewrite) == (2048, "vmap", "vmap",
                                                                                      "vmap", False)


def test_env_switch_turns_the_conv_rewrite_off(monkeypatch):
    from bal.nn import ops

    monkeypatch.setenv("BAL_CONV_REWRITE", "0")
    assert not backend.policy().conv_rewrite and not ops.rewrite_enabled()
    with use(cpu_policy()):
        assert not backend.policy().conv_rewrite
    monkeypatch.setenv("BAL_CONV_REWRITE", "1")
    with use(cpu_policy()):
        assert backend.policy().conv_rewrite and ops.rewrite_enabled()


@pytest.mark.parametrize("bad", [dict(chunk_size=0), dict(chunk_size=True), dict(sample_map="pmap"),
                                 dict(member_map="loop"), dict(conv_rewrite=1), dict(im2col_chunk_bytes=-1),
                                 dict(train_map="scan"), dict(conv_forward="im2col")])
def test_policy_fields_are_checked(bad):
    with pytest.raises(ValueError):
        dataclasses.replace(cpu_policy({}), **bad)


@pytest.mark.parametrize("caches,expected", [
    ({}, (128, 4 * MB)),                                                   # unknown: the AMD outcome
    ({"L1d": 32 * KB, "L2": 512 * KB, "L3": 16 * MB}, (128, 4 * MB)),     # AMD EPYC (Zen 2/3), measured
    ({"L1d": 32 * KB, "L2": 1 * MB, "L3": 32 * MB}, (128, 4 * MB)),       # AMD EPYC (Zen 4)
    ({"L1d": 48 * KB, "L2": 2 * MB, "L3": 260 * MB}, (128, 8 * MB)),      # the Intel Xeon VM, measured
    ({"L2": 3 * MB}, (128, 8 * MB)),
    ({"L2": 4 * MB}, (256, 8 * MB)),
    ({"L2": 16 * MB}, (1024, 8 * MB)),
    ({"L2": 1 << 30}, (2048, 8 * MB)),
    ({"L2": 256 * KB}, (128, 4 * MB)),
])
def test_cpu_chunk_sizes_follow_the_documented_rule(caches, expected):
    assert cpu_chunk_sizes(caches) == expected
    p = cpu_policy(caches)
    assert (p.chunk_size, p.im2col_chunk_bytes) == expected


def test_cache_sizes_reads_sysfs(tmp_path):
    for i, (level, kind, size) in enumerate([("1", "Data", "48K"), ("1", "Instruction", "32K"),
                                             ("2", "Unified", "2048K"), ("3", "Unified", "266240K")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    assert cache_sizes(str(tmp_path)) == {"L1d": 48 * KB, "L2": 2 * MB, "L3": 266240 * KB}
    assert cache_sizes(str(tmp_path / "missing")) == {}


def test_harness_reuses_cache_sizes():
    harness = pytest.importorskip("benchmarks.harness")
    assert harness.cache_sizes is cache_sizes


def test_old_import_paths_still_work():
    from bal import runtime
    from bal.backend import allocator, conv
    from bal.nn import ops
    from bal.nn.ops import conv_general_dilated, max_pool
    from bal.runtime import relaunch_with_huge_pages

    assert conv_general_dilated is conv.conv_general_dilated is backend.conv_general_dilated
    assert max_pool is conv.max_pool and ops.weight_gradient is conv.weight_gradient
    assert relaunch_with_huge_pages is allocator.relaunch_with_huge_pages is backend.relaunch_with_huge_pages
    assert runtime.cpu_environ is allocator.cpu_environ


def test_readers_follow_the_policy():
    from bal.posteriors.base import resolve_sample_map
    from bal.predict import default_chunk_size

    custom = Policy(chunk_size=33, sample_map="unroll", member_map="vmap", conv_rewrite=False,
                    im2col_chunk_bytes=MB, train_map="map")
    with use(custom):
        assert default_chunk_size() == 33
        assert resolve_sample_map("auto") == "unroll"
        assert resolve_sample_map("auto", members=True) == "vmap"
        assert resolve_sample_map("auto", training=True) == "map"
        assert resolve_sample_map("vmap", training=True) == "vmap"  # explicit choices win
        assert not backend.rewrite_enabled()
