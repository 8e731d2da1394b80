"""Exceptions raised by :mod:`bal.data`.

They subclass the built-in types that the API edge promises
(``FileNotFoundError`` for absent data, ``ValueError`` for bad data), so a
caller — the ``bal`` CLI in particular — can catch those and print the message,
which always names the file, what was expected and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "DatasetNotFoundError",
    "DownloadError",
    "ChecksumError",
    "FormatError",
    "UnsafePickleError",
    "UnsafeArchiveError",
]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is missing from the data directory."""

    def __str__(self) -> str:  # FileNotFoundError would prefix "[Errno ...]" otherwise
        return self.args[0] if self.args else ""


class DownloadError(DatasetNotFoundError):
    """Every URL tried for a file failed (HTTP error, timeout, refused connection)."""


class ChecksumError(ValueError):
    """A file's bytes do not match the published checksum (corrupt or truncated)."""


class FormatError(ValueError):
    """A file passed its checksum (or was not verified) but its contents are malformed."""


class UnsafePickleError(FormatError):
    """A pickle asked for a global outside the small allow-list of the CIFAR format."""


class UnsafeArchiveError(FormatError):
    """An archive member would be written outside the destination or is not a plain file."""
