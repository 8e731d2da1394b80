"""Pools of up to a million items on disk (issue 18): the scale, multi-process, Cluster-Margin and resume figures.

Every case generates an MNIST-shaped ``uint8`` pool deterministically
(:class:`GeneratedMnist`: pixel ``j`` of row ``i`` is a hash of ``(seed, i, j)``)
into ``.npy`` shards with :func:`bal.pools.pack` and scores it in fresh child
processes (``python -m benchmarks.pool_scale SPEC``), so each child's peak RSS
(``VmHWM``) is that job's own. The model is the MC-dropout Gal CNN with
randomly initialised weights (``init`` seed 0): the speed of a pass does not
depend on the weights or the pixels. Every record states the load average
(the machine may be shared) and the child's process CPU time.

* :func:`pool_scale` -- BALD top-``k`` over pools of several sizes: wall time,
  items/s, seconds per item and peak RSS per size;
* :func:`pool_processes` -- the same pool scored by one process and by ``P``
  processes on ``jax.distributed`` (127.0.0.1): the selections must be equal;
* :func:`pool_cluster_margin` -- the one-off clustering (:func:`bal.pools.fit_clusters`)
  and one Cluster-Margin selection, its streamed margin pass and the
  selection step timed apart;
* :func:`pool_resume` -- a pass killed with ``SIGKILL`` at random progress
  points, resumed from its state file each time: the final selection against
  an uninterrupted pass, and the rows / chunks / shards scored twice.

Pools are written into ``workdir`` and stay there: a later case given the same
folder reuses a pool of the same size, seed and shard size, and the selection
an earlier uninterrupted pass left beside it (``*.npy``, named by the job's
parameters) as its reference. Without ``workdir``, a temporary folder under
``/tmp`` is used and deleted at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from bal.pools.sources import PoolSource

MNIST_SHAPE = (28, 28, 1)
MODEL, FAMILY, NUM_CLASSES = "gal_cnn", "mc_dropout", 10
RSS_LIMIT_MB = 1.5 * 1024
REPO = pathlib.Path(__file__).resolve().parent.parent

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def generated_rows(start: int, stop: int, seed: int = 0) -> np.ndarray:
    """``uint8 [stop - start, 28, 28, 1]``: pixel ``j`` of row ``i`` is a splitmix64 hash of ``(seed, i, j)``;
    pixels below 160 of 255 are zeroed (about 63 % zeros, an MNIST-like share of background)."""
    width = int(np.prod(MNIST_SHAPE))
    with np.errstate(over="ignore"):
        x = (np.arange(start, stop, dtype=np.uint64)[:, None] * np.uint64(width)
             + np.arange(width, dtype=np.uint64)[None, :] + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15))
        x ^= x >> np.uint64(30)
        x *= _M1
        x ^= x >> np.uint64(27)
        x *= _M2
        x ^= x >> np.uint64(31)
    pixels = (x >> np.uint64(56)).astype(np.uint8)
    pixels[pixels < 160] = 0
    return pixels.reshape((stop - start,) + MNIST_SHAPE)


class GeneratedMnist(PoolSource):
    """``n`` MNIST-shaped ``uint8`` items made on demand by :func:`generated_rows` (no memory, any size)."""

    item_shape = MNIST_SHAPE
    dtype = np.dtype(np.uint8)

    def __init__(self, n: int, seed: int = 0):
        if n < 1:
            raise ValueError(f"a generated pool needs n >= 1 items; got {n}")
        self.n, self.seed = int(n), int(seed)

    def __len__(self):
        return self.n

    def read_raw(self, start, stop):
        if not 0 <= start <= stop <= self.n:
            raise ValueError(f"rows [{start}, {stop}) are outside the pool of {self.n} items")
        return generated_rows(start, stop, self.seed)


def make_pool(folder, n: int, *, seed: int = 0, shard_size: int = 65_536) -> tuple[pathlib.Path, float]:
    """Pack :class:`GeneratedMnist` ``(n, seed)`` as ``.npy`` shards into ``folder`` (reused when it already
    holds that pool); returns ``(folder, seconds spent writing)``."""
    from bal.pools.pack import pack

    folder = pathlib.Path(folder)
    index = folder / "pool.json"
    description = f"benchmarks.pool_scale.GeneratedMnist n={n} seed={seed} shard_size={shard_size}"
    if index.is_file() and json.loads(index.read_text()).get("source") == description:
        return folder, 0.0
    t0 = time.perf_counter()
    pack(GeneratedMnist(n, seed), folder, shard_size=shard_size, format="npy", description=description,
         overwrite=True, chunk=8192)
    return folder, time.perf_counter() - t0


# ----------------------------------------------------------------------------- the child process
def _vm(field: str) -> float:
    """``/proc/self/status`` ``field`` (e.g. ``VmHWM``) in MB, or NaN off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _job(spec: dict) -> dict:
    """One scoring job in this process (``spec`` from :func:`_spawn`); returns its JSON-able report."""
    if spec.get("processes", 1) > 1:
        from bal.pools.distributed import initialize

        initialize(spec["coordinator"], spec["processes"], spec["process_id"])
    import jax

    from bal import posteriors, pools
    from bal.pools.cluster_margin import cluster_margin, negative_margin
    from bal.predict import default_chunk_size
    from bal.runtime import huge_pages_enabled

    load = [round(x, 2) for x in os.getloadavg()]
    source = pools.open_pool(spec["pool"])
    if spec.get("tiny"):  # tests: the tiny MLP of tests/pools/helpers.py on any item shape
        post = posteriors.build(FAMILY, "mlp", NUM_CLASSES, num_samples=spec["num_samples"],
                                model_kwargs={"hidden_sizes": (16,)})
    else:
        post = posteriors.build(FAMILY, MODEL, NUM_CLASSES, num_samples=spec["num_samples"])
    variables = post.init(jax.random.key(spec.get("init_seed", 0)),
                          np.zeros((1,) + tuple(source.item_shape), np.float32))
    key = jax.random.key(spec.get("key_seed", 1))
    chunk = spec.get("chunk_size") or default_chunk_size()
    options = dict(num_samples=spec["num_samples"], chunk_size=chunk)
    k = min(spec["k"], len(source))
    report = {"num_items": len(source), "chunk_size": chunk, "glibc_huge_pages": huge_pages_enabled(),
              "processes": jax.process_count(), "process_index": jax.process_index(), "devices": jax.device_count()}
    cpu0 = _cpu_seconds()

    t0 = time.perf_counter()  # compile on the first two chunks, so the timed pass has no fixed costs
    pools.score_pool(post, variables, source, key, min(k, 2 * chunk), stop=min(len(source), 2 * chunk),
                     strategy=negative_margin if spec["what"] == "cluster_margin" else "bald", **options)
    report["warmup_seconds"] = time.perf_counter() - t0
    report["rss_after_warmup_mb"] = _vm("VmRSS")

    if spec["what"] == "score":
        delay = float(spec.get("chunk_delay", 0.0))  # tests: a tiny pool must not finish before it is killed

        def progress(done, total):
            print(f"progress {done}", flush=True)
            time.sleep(delay)

        t0 = time.perf_counter()
        if jax.process_count() > 1:
            result = pools.score_distributed(post, variables, source, key, k, state_path=spec.get("state"),
                                             save_every=spec.get("save_every", 256), **options)
        else:
            result = pools.score_pool(post, variables, source, key, k, state_path=spec.get("state"),
                                      save_every=spec.get("save_every", 256),
                                      progress=progress if spec.get("report_progress") else None, **options)
        report.update(seconds=time.perf_counter() - t0, num_scored=result.num_scored,
                      resumed_from=result.resumed_from)
        selection = result.indices
    elif spec["what"] == "cluster_margin":
        clusters_dir = pathlib.Path(spec["clusters"])
        t0 = time.perf_counter()
        clusters = pools.fit_clusters(post, variables, source, key, num_clusters=spec["num_clusters"],
                                      method=spec.get("method", "hac"), sample_size=spec["sample_size"],
                                      out=clusters_dir, **options)
        report["clustering_seconds"] = time.perf_counter() - t0
        report["num_clusters"] = clusters.num_clusters
        report["rss_after_clustering_mb"] = _vm("VmRSS")
        # bal.pools.cluster_margin.select_pool, its two parts timed apart
        m = min(len(source), spec.get("candidates_per_item", 10) * k)
        t0 = time.perf_counter()
        margins = pools.score(post, variables, source, key, m, strategy=negative_margin, **options)
        t1 = time.perf_counter()
        picked = cluster_margin(-margins.scores, np.asarray(clusters.ids[margins.indices]), k,
                                num_candidates=margins.indices.size)
        selection = margins.indices[picked]
        t2 = time.perf_counter()
        report.update(margin_pass_seconds=t1 - t0, selection_step_seconds=t2 - t1, seconds=t2 - t0,
                      num_scored=margins.num_scored, num_candidates=int(margins.indices.size))
    else:
        raise ValueError(f"unknown job {spec['what']!r}")
    # the kernel updates VmHWM lazily (per-thread RSS counters), so it can trail an earlier VmRSS
    # reading by a few KB: the peak is at least every RSS seen
    peak = max(_vm("VmHWM"), _vm("VmRSS"), report.get("rss_after_warmup_mb", 0.0))
    report.update(cpu_seconds=_cpu_seconds() - cpu0, peak_rss_mb=peak,
                  ru_maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  load_average=[load, [round(x, 2) for x in os.getloadavg()]])
    if spec.get("out") and jax.process_index() == 0:
        out = pathlib.Path(spec["out"])
        tmp = out.with_name(out.name + ".tmp.npy")
        np.save(tmp, np.asarray(selection, np.int64))
        os.replace(tmp, out)
    if jax.process_count() > 1:
        jax.distributed.shutdown()
    return report


def _child_env() -> dict:
    """The children's environment: one CPU device per process (so chunks match across process counts)."""
    from bal.runtime import cpu_environ

    env = cpu_environ()  # glibc huge pages, as `bal run` and the other benchmark children
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    return env


def _spawn(spec: dict, stderr=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.pool_scale", json.dumps(spec)], cwd=REPO,
                            env=_child_env(), stdout=subprocess.PIPE, stderr=stderr, text=True)


def _finish(proc: subprocess.Popen, what: str) -> dict:
    out, err = proc.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (err or out).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{what} failed (status {proc.returncode}): {tail[0]}")
    return json.loads(lines[-1])


def _run(spec: dict) -> dict:
    return _finish(_spawn(spec), f"the {spec['what']} job on {spec['pool']}")


# ----------------------------------------------------------------------------- shared by the cases
@contextlib.contextmanager
def _workdir(workdir):
    """``workdir`` (created if missing, kept), or a temporary folder under ``/tmp`` removed at the end."""
    if workdir is not None:
        path = pathlib.Path(workdir)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    path = pathlib.Path(tempfile.mkdtemp(prefix="bal-pool-scale-", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def pool_in(workdir, n: int, seed: int = 0, shard_size: int = 65_536) -> tuple[pathlib.Path, float]:
    """:func:`make_pool` into ``workdir``'s folder for ``(n, seed, shard_size)``: ``(folder, seconds writing)``."""
    folder = pathlib.Path(workdir) / f"mnist-{n}-seed{seed}-shards{shard_size}"
    return make_pool(folder, n, seed=seed, shard_size=shard_size)


def selection_file(pool: pathlib.Path, what: str, k: int, num_samples: int, chunk: int, tiny: bool) -> pathlib.Path:
    """Where a job's selection (``int64`` global indices, in rank order) is saved beside its pool."""
    return pool / f"{what}-k{k}-S{num_samples}-chunk{chunk}-init0-key1{'-tiny' if tiny else ''}.npy"


def _chunk(chunk_size):
    from bal.predict import default_chunk_size

    return int(chunk_size or default_chunk_size())


def _params(**p) -> dict:
    return {"model": "mlp (16 hidden)" if p.get("tiny") else MODEL, "family": FAMILY,
            "weights": "random init (seed 0)", "storage": "npy shards",
            "data": "generated uint8 28x28x1 (benchmarks.pool_scale.generated_rows)", **p}


def _timing(seconds: float, first: float | None = None) -> dict:
    """A harness timing of one timed run (a pass over a big pool is run once)."""
    return {"median_seconds": seconds, "min_seconds": seconds, "max_seconds": seconds, "repeats": 1,
            "first_seconds": seconds if first is None else first,
            "compile_seconds": 0.0 if first is None else max(0.0, first - seconds)}


def _record(case: str, params: dict, timing: dict, **extra) -> dict:
    from benchmarks.harness import environment

    return {"case": case, "params": params, **timing, **extra, "env": environment(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _slim(report: dict) -> dict:
    return {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in report.items()}


# ----------------------------------------------------------------------------- the cases
def pool_scale(*, sizes=(10_000, 100_000), num_samples: int = 20, k: int = 10_000, chunk_size: int | None = None,
               shard_size: int = 65_536, seed: int = 0, workdir=None, tiny: bool = False,
               repeats: int = 1) -> dict:
    """MC-dropout BALD top-``k`` (``score_pool`` on ``.npy`` shards) over generated pools of each size, each in a
    fresh process: seconds, items/s, seconds per item and peak RSS (``VmHWM``) per size.

    ``tiny`` (tests) swaps the Gal CNN for a 16-unit MLP. ``repeats`` is accepted for the runner and ignored:
    each size is one pass, after a compiling warm-up on its first two chunks.
    """
    del repeats
    chunk = _chunk(chunk_size)
    runs = []
    with _workdir(workdir) as work:
        for n in sorted(sizes):
            pool, pack_seconds = pool_in(work, n, seed, shard_size)
            job, out = _bald_job(pool, k, num_samples, chunk, tiny, n)
            rep = _run({**job, "out": str(out)})
            selected = np.load(out)
            runs.append(_slim({"n": n, "pack_seconds": pack_seconds, **rep,
                               "items_per_second": n / rep["seconds"], "seconds_per_item": rep["seconds"] / n,
                               "microseconds_per_item": 1e6 * rep["seconds"] / n,
                               "rss_under_1_5_gb": rep["peak_rss_mb"] < RSS_LIMIT_MB,
                               "selected": int(selected.size), "selection_head": selected[:5].tolist()}))
    per_item = [r["seconds_per_item"] for r in runs]
    largest = runs[-1]
    params = _params(sizes=sorted(sizes), num_samples=num_samples, k=k, chunk_size=chunk, shard_size=shard_size,
                     seed=seed, strategy="bald", tiny=tiny)
    return _record("pool_scale", params, _timing(largest["seconds"], largest["seconds"] + largest["warmup_seconds"]),
                   runs=runs, items_per_second=largest["items_per_second"],
                   seconds_per_item_vs_smallest=[round(p / per_item[0], 3) for p in per_item],
                   max_peak_rss_mb=max(r["peak_rss_mb"] for r in runs),
                   peak_rss_under_1_5_gb_at_every_size=all(r["rss_under_1_5_gb"] for r in runs))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bald_job(pool, k: int, num_samples: int, chunk: int, tiny: bool, n: int):
    """The child job's settings for a BALD top-``k`` pass over ``pool`` and the file its selection goes to."""
    job = {"what": "score", "pool": str(pool), "k": k, "num_samples": num_samples, "chunk_size": chunk, "tiny": tiny}
    return job, selection_file(pool, "bald", min(k, n), num_samples, chunk, tiny)


def pool_processes(*, n: int = 100_000, processes: int = 2, num_samples: int = 20, k: int = 10_000,
                   chunk_size: int | None = None, shard_size: int = 65_536, seed: int = 0, workdir=None,
                   tiny: bool = False, repeats: int = 1) -> dict:
    """The same pool, key and ``k`` scored by 1 process and by ``processes`` processes on ``jax.distributed``
    (coordinator 127.0.0.1, one CPU device each): equal selections and both throughputs."""
    del repeats
    chunk = _chunk(chunk_size)
    with _workdir(workdir) as work:
        pool, pack_seconds = pool_in(work, n, seed, shard_size)
        base, one_out = _bald_job(pool, k, num_samples, chunk, tiny, n)
        one = _run({**base, "out": str(one_out)})
        many_out = pool / f"processes{processes}-{one_out.name}"
        port = _free_port()
        t0 = time.perf_counter()
        procs = [_spawn({**base, "processes": processes, "process_id": i, "coordinator": f"127.0.0.1:{port}",
                         "out": str(many_out)}) for i in range(processes)]
        try:
            many = [_finish(p, f"process {i} of {processes}") for i, p in enumerate(procs)]
        finally:
            for p in procs:
                p.kill()
                p.wait()
        wall_many = time.perf_counter() - t0
        a, b = np.load(one_out), np.load(many_out)
    equal = bool(a.shape == b.shape and np.array_equal(a, b))
    seconds_many = max(r["seconds"] for r in many)  # the pass ends when the slowest process has merged
    params = _params(n=n, processes=processes, num_samples=num_samples, k=k, chunk_size=chunk,
                     shard_size=shard_size, seed=seed, strategy="bald", tiny=tiny,
                     coordinator="127.0.0.1", devices_per_process=1)
    return _record("pool_processes", params, _timing(seconds_many), equal_selection=equal,
                   selected=int(a.size), pack_seconds=pack_seconds,
                   one_process=_slim({**one, "items_per_second": n / one["seconds"]}),
                   many_processes=[_slim(r) for r in many],
                   items_per_second=n / seconds_many, items_per_second_one_process=n / one["seconds"],
                   speedup_vs_one_process=one["seconds"] / seconds_many,
                   wall_seconds_with_startup=wall_many)


def pool_cluster_margin(*, n: int = 1_000_000, k: int = 10_000, num_clusters: int = 500, sample_size: int = 4096,
                        num_samples: int = 20, chunk_size: int | None = None, shard_size: int = 65_536,
                        seed: int = 0, workdir=None, tiny: bool = False,
                        repeats: int = 1) -> dict:
    """Cluster-Margin on a generated pool: the one-off clustering (``fit_clusters``: the Gal CNN's dense-128
    embeddings, averaged over the S dropout samples, of ``sample_size`` random items clustered by average-linkage
    HAC; every item then assigned to the nearest centroid in one streamed pass) and one selection of ``k``
    (``cluster_margin_pool``'s streamed margin pass keeping ``10 k`` candidates, then the round-robin step)."""
    del repeats
    chunk = _chunk(chunk_size)
    with _workdir(workdir) as work:
        pool, pack_seconds = pool_in(work, n, seed, shard_size)
        out = selection_file(pool, f"cluster-margin-c{num_clusters}-m{sample_size}", min(k, n), num_samples, chunk,
                              tiny)
        rep = _run({"what": "cluster_margin", "pool": str(pool), "k": k, "num_samples": num_samples,
                    "chunk_size": chunk, "num_clusters": num_clusters, "sample_size": sample_size,
                    "clusters": str(pool / f"clusters-c{num_clusters}-m{sample_size}"), "out": str(out),
                    "tiny": tiny})
        selected = np.load(out)
    params = _params(n=n, k=k, num_clusters=num_clusters, sample_size=sample_size, method="hac",
                     num_samples=num_samples, chunk_size=chunk, shard_size=shard_size, seed=seed, candidates=10 * k,
                     tiny=tiny,
                     clustered="mean over the S dropout samples of the "
                               f"{'hidden-16' if tiny else 'dense-128 (penultimate)'} activations")
    return _record("pool_cluster_margin", params, _timing(rep["seconds"]), pack_seconds=pack_seconds,
                   clustering_seconds=rep["clustering_seconds"], selection_seconds=rep["seconds"],
                   margin_pass_seconds=rep["margin_pass_seconds"],
                   selection_step_seconds=rep["selection_step_seconds"],
                   items_per_second=n / rep["seconds"], selected=int(selected.size),
                   distinct_selected=int(np.unique(selected).size), child=_slim(rep))


def _kill_at(spec: dict, target: int) -> int:
    """Run a scoring job, ``SIGKILL`` it once it reports ``target`` rows done; the last row count it reported."""
    proc = _spawn(spec, stderr=subprocess.DEVNULL)  # only stdout is read while it runs: a full stderr pipe stalls
    done = 0
    try:
        for line in proc.stdout:
            if line.startswith("progress "):
                done = int(line.split()[1])
                if done >= target:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
        proc.wait()
        rest = proc.stdout.read()  # lines written before the kill landed
        for line in rest.splitlines():
            if line.startswith("progress "):
                done = int(line.split()[1])
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    if proc.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the scoring job ended (status {proc.returncode}) before it reached row {target}")
    return done


def pool_resume(*, n: int = 100_000, kills: int = 3, num_samples: int = 20, k: int = 10_000,
                chunk_size: int | None = None, shard_size: int = 65_536, save_every: int = 1, seed: int = 0,
                kill_seed: int = 0, chunk_delay: float = 0.0, workdir=None, tiny: bool = False,
                repeats: int = 1) -> dict:
    """A pass killed with ``SIGKILL`` at ``kills`` random progress points (uniform in 5-95 % of the pool, seed
    ``kill_seed``), resumed from its state file each time: the final selection against an uninterrupted pass
    (reused from ``workdir`` when a finished one is there), and what was scored twice: rows reported done by
    the killed process (``progress``, called after the state is saved) but not in its state, whole chunks
    among them, and shards finished before a kill and scored again after it."""
    del repeats
    chunk = _chunk(chunk_size)
    with _workdir(workdir) as work:
        pool, pack_seconds = pool_in(work, n, seed, shard_size)
        base, reference = _bald_job(pool, k, num_samples, chunk, tiny, n)
        reused = reference.is_file()
        if not reused:
            _run({**base, "out": str(reference)})
        state = pool / f"resume-{reference.stem}.state"
        state.unlink(missing_ok=True)
        out = pool / f"resumed-{reference.name}"
        spec = {**base, "state": str(state), "save_every": save_every, "report_progress": True,
                "chunk_delay": chunk_delay}
        points = np.sort(np.random.default_rng(kill_seed).uniform(0.05, 0.95, kills) * n).astype(int)
        shards = [s["size"] for s in json.loads((pool / "pool.json").read_text())["shards"]]
        shard_ends = np.cumsum(shards)
        t0 = time.perf_counter()
        attempts = []
        for target in points:
            done = _kill_at(spec, int(target))
            resume = _state_next(state)
            finished_again = [i for i, end in enumerate(shard_ends) if end <= done and resume < end]
            attempts.append({"kill_at_row": int(target), "reported_done": done, "state_next": resume,
                             "rows_rescored": max(0, done - resume),
                             "chunks_rescored": max(0, done - resume) // chunk,
                             "finished_shards_rescored": finished_again})
        final = _run({**spec, "out": str(out)})
        wall = time.perf_counter() - t0
        got, want = np.load(out), np.load(reference)
        state.unlink(missing_ok=True)
    equal = bool(got.shape == want.shape and np.array_equal(got, want))
    params = _params(n=n, kills=kills, kill_seed=kill_seed, num_samples=num_samples, k=k, chunk_size=chunk,
                     shard_size=shard_size, save_every=save_every, seed=seed, strategy="bald", tiny=tiny,
                     chunk_delay=chunk_delay)
    return _record("pool_resume", params, _timing(wall), equal_to_uninterrupted=equal, selected=int(got.size),
                   reference="reused from an earlier uninterrupted pass" if reused else "scored now",
                   attempts=attempts, final=_slim(final), pack_seconds=pack_seconds,
                   rows_rescored=sum(a["rows_rescored"] for a in attempts),
                   chunks_rescored=sum(a["chunks_rescored"] for a in attempts),
                   finished_shards_rescored=sum(len(a["finished_shards_rescored"]) for a in attempts),
                   note="median_seconds: wall time of all runs (killed and final) with their start-ups")


def _state_next(path: pathlib.Path) -> int:
    """The row a job resumes at from its state file (0 when there is none yet)."""
    if not path.exists():
        return 0
    with np.load(path) as z:
        return int(json.loads(bytes(z["meta"]).decode())["next"])


def _main(argv) -> int:
    spec = json.loads(argv[0])
    print(json.dumps(_job(spec)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
