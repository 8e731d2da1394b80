"""Test configuration shared by the whole suite.

JAX reads ``XLA_FLAGS`` and ``JAX_PLATFORMS`` once, when it initialises its
backends, so they are set here before anything imports jax: every test runs on
the CPU with 8 simulated devices, which exercises the sharded code paths on
any machine (a laptop, CI, or a GPU host).
"""

import os

os.environ["JAX_PLATFORMS"] = "cpu"
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
    os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()

import pathlib  # noqa: E402
import tempfile  # noqa: E402

# A persistent compilation cache shared by the test process and the CLI
# subprocesses some tests start: the same computations compile once.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), f"bal-jax-cache-{os.getuid()}")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
# The unpadded-conv forward is measured per machine outside the tests (bal.backend.calibrate);
# the suite pins one so its numbers and run time do not depend on the machine it runs on.
os.environ.setdefault("BAL_CONV_FORWARD", "patches")

import pytest  # noqa: E402

# The real MNIST / Fashion-MNIST files live in ../shared/datasets beside the repo
# on the project's machines; BAL_DATA_DIR overrides that.
_REPO = pathlib.Path(__file__).resolve().parent.parent
_SHARED = _REPO.parent / "shared" / "datasets"


def real_data_dir():
    """The directory holding the real dataset files, or None when absent."""
    env = os.environ.get("BAL_DATA_DIR")
    for candidate in ([pathlib.Path(env)] if env else []) + [_SHARED]:
        if (candidate / "mnist" / "train-images-idx3-ubyte.gz").exists():
            return candidate
    return None


@pytest.fixture
def real_data():
    """Path of the real datasets; skips the test cleanly when they are absent."""
    path = real_data_dir()
    if path is None:
        pytest.skip("real MNIST files not found (set BAL_DATA_DIR or provide ../shared/datasets)")
    return path


@pytest.fixture(scope="module")
def rbg_keys():
    """Every key of a module (the kernel's too) from the "rbg" generator: XLA:CPU compiles it in a
    fraction of threefry's time (a CenterNet's initialisers: ~4 s against ~20 s). The loop only
    splits and folds its keys, whatever the generator. Use with
    ``pytestmark = pytest.mark.usefixtures("rbg_keys")``."""
    import jax

    before = jax.config.jax_default_prng_impl
    jax.config.update("jax_default_prng_impl", "rbg")
    yield
    jax.config.update("jax_default_prng_impl", before)


#: record fields that differ between two runs of the same computation
TIMING = ("train_seconds", "acquisition_seconds")


def strip_timing(records):
    """Records without their timings, for comparing runs."""
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]
