"""Shared by the bal.pools tests."""

import pathlib

import pytest

_HERE = pathlib.Path(__file__).parent

# orbax leaves an unawaited read coroutine behind when a restore does not fit the target (the CLI's
# "checkpoint of another model" error test); it is collected whenever the GC runs, maybe in a later test
_ORBAX_COROUTINE = pytest.mark.filterwarnings(
    "ignore:.*_read_array_index_and_device_put:pytest.PytestUnraisableExceptionWarning")


def pytest_collection_modifyitems(items):
    for item in items:
        if _HERE in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(_ORBAX_COROUTINE)
