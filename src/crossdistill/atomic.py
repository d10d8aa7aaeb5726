"""Files that appear whole or not at all: written under a temporary name beside the final one
(``.NAME.tmp-PID``, same folder, so the same file system) and renamed with ``os.replace``,
which is atomic. A reader, or a run that was killed mid-write, never sees half a file under
the final name: a summary whose presence marks a run finished, a checkpoint, an index."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (``.NAME.tmp-PID`` + ``suffix``, for writers
    that go by the extension); when the block ends without an error it replaces ``path``.
    Either way no temporary file is left, and on an error ``path`` is as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """``path.write_text(text)`` (UTF-8) through :func:`replaced_atomically`."""
    with replaced_atomically(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
