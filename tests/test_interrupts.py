"""A Ctrl-C swallowed where Python cannot raise it (a gc callback, ``__del__``) still stops the run."""

import gc
import os
import signal
import subprocess
import sys

import pytest

from bal.interrupts import catch_interrupts, interrupted, raise_if_interrupted


class _InterruptedWhileCollected:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)  # the handler raises here, and Python swallows it


@pytest.fixture(autouse=True)
def default_sigint():
    """Python's own SIGINT handler for each test: a suite started in the background (``nohup ...
    &``, as CI may be) inherits SIGINT ignored, and the handler must be restored to what it was."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_swallowed_in_del_is_raised_at_the_next_safe_point(capsys):
    with catch_interrupts():
        _InterruptedWhileCollected()
        gc.collect()
        assert interrupted()  # the run went on past the interrupt ...
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()  # ... and stops at the next safe point
    assert "Exception ignored" not in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler before, restored


def test_other_unraisable_exceptions_are_still_reported():
    code = ("from bal.interrupts import catch_interrupts\n"
            "class A:\n    def __del__(self):\n        raise RuntimeError('boom')\n"
            "with catch_interrupts():\n    A()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "RuntimeError: boom" in res.stderr


def test_the_records_writer_is_a_safe_point(tmp_path):
    from bal.active.results import RunDirectory

    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    with catch_interrupts():
        _InterruptedWhileCollected()
        gc.collect()
        with pytest.raises(KeyboardInterrupt):
            run.append({"strategy": "bald", "seed": 0, "cycle": 0})
    assert run.records()[-1]["cycle"] == 0  # the record was written before the stop


def test_an_ignored_sigint_is_ignored_again_afterwards():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with catch_interrupts():
        assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # bal run stays interruptible
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
