"""Process settings that make XLA:CPU faster, for programs to opt into at start.

XLA:CPU allocates a compiled program's buffers afresh on every call, and
glibc's ``malloc`` serves big blocks with fresh ``mmap`` pages that it returns
on ``free``: every train step or pool chunk whose buffers are big first
touches new 4 KB pages, and those page faults cost as much as the arithmetic.
glibc's ``glibc.malloc.hugetlb=1`` tunable makes malloc ask for transparent
huge pages (2 MB: 512x fewer faults). Measured on the 2-core CPU (float32,
``fit`` steps; two runs each):

    Gal CNN step, batch 64                            41 ms -> 41 ms
    Gal CNN step, batch 128, MC dropout               102 ms -> 83 ms
    5-member Gal CNN ensemble step, batch 64          248-252 ms -> 207-208 ms
    MC-dropout BALD over 10,000 items, chunks 2,048   5.0 s -> 3.8 s (chunks of 128: unchanged)

Freed memory still goes back to the OS. (Keeping it instead, with
``mallopt``'s one-arena/no-mmap/no-trim settings, also gave the ensemble 216 ms
but slowed the single step to 44-54 ms through the shared arena's lock.)

glibc reads tunables only when a process starts, so the setting is an
environment variable: :func:`cpu_environ` gives it to child processes, and
:func:`relaunch_with_huge_pages` restarts the current program with it, which
``bal run``, the experiment scripts and the benchmarks do first thing.
``BAL_TUNE_ALLOCATOR=0`` switches both off. In your own scripts, export
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` or call the relaunch first. It needs
transparent huge pages in ``madvise`` or ``always`` mode (the Linux default).
"""

from __future__ import annotations

import os
import platform
import sys

__all__ = ["HUGE_PAGES_TUNABLE", "cpu_environ", "huge_pages_enabled", "relaunch_with_huge_pages"]

HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"
_RELAUNCHED = "BAL_RELAUNCHED"


def _applicable() -> bool:
    return (os.environ.get("BAL_TUNE_ALLOCATOR", "1") != "0" and platform.system() == "Linux"
            and platform.libc_ver()[0] == "glibc")


def huge_pages_enabled(environ=None) -> bool:
    """Whether ``environ`` (default: this process's) asks glibc malloc for huge pages."""
    tunables = (os.environ if environ is None else environ).get("GLIBC_TUNABLES", "")
    return HUGE_PAGES_TUNABLE in tunables.split(":")


def cpu_environ(environ=None) -> dict:
    """A copy of ``environ`` (default ``os.environ``) for a child process, with the tunable added.

    Unchanged off Linux/glibc or with ``BAL_TUNE_ALLOCATOR=0``.
    """
    env = dict(os.environ if environ is None else environ)
    if _applicable() and not huge_pages_enabled(env):
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), HUGE_PAGES_TUNABLE]))
    return env


def relaunch_with_huge_pages() -> None:
    """Restart this program (same interpreter, same command line) with the tunable set.

    For a program's entry point, before it does any work: ``os.execve``
    replaces the process, so nothing done before the call survives. Returns
    (doing nothing) when the tunable is already set, after one relaunch, off
    Linux/glibc, with ``BAL_TUNE_ALLOCATOR=0``, or when there is no command
    line to rerun (an interactive session).
    """
    if not _applicable() or huge_pages_enabled() or os.environ.get(_RELAUNCHED):
        return
    argv = list(getattr(sys, "orig_argv", []))
    if len(argv) < 2:  # a bare interpreter: interactive
        return
    env = cpu_environ()
    env[_RELAUNCHED] = "1"  # never loop, even if glibc ignored the tunable
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
