"""Reading a small metadata file (``dataset.json``, a site map) with a size limit."""

from __future__ import annotations

from pathlib import Path

from crossdistill.errors import InputError


def read_bounded(path: Path, limit: int, not_what: str) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them.

    Raises:
        InputError: the file cannot be read, or it is larger than ``limit`` bytes
            ("larger than N MiB; ``not_what``").
    """
    try:
        with open(path, "rb") as handle:
            blob = handle.read(limit + 1)
    except OSError as err:
        raise InputError(path, f"cannot read: {err.strerror or err}") from None
    if len(blob) > limit:
        raise InputError(path, f"larger than {limit >> 20} MiB; {not_what}")
    return blob
