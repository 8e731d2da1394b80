"""Moved to :mod:`bal.backend.allocator` (issue 16); this path re-exports it unchanged.

glibc huge pages for XLA:CPU's per-call buffers: :func:`relaunch_with_huge_pages`,
:func:`cpu_environ`, :func:`huge_pages_enabled`.
"""

from bal.backend.allocator import (  # noqa: F401
    HUGE_PAGES_TUNABLE,
    cpu_environ,
    huge_pages_enabled,
    relaunch_with_huge_pages,
)

__all__ = ["HUGE_PAGES_TUNABLE", "cpu_environ", "huge_pages_enabled", "relaunch_with_huge_pages"]
