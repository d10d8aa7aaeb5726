"""One writer per run folder: an advisory lock on ``RUN/.lock`` held for the run's life.

The lock is ``flock(LOCK_EX | LOCK_NB)`` on ``RUN/.lock``, which holds the holder's pid (for
the message only). The kernel releases a flock when its holder dies, ``kill -9`` included,
so a crashed run never blocks its ``--resume``; a second live run on the same folder is
refused at once with a :class:`CrossDistillError`. Once the lock is held, temporary files
of checkpoint writes cut short by an earlier crash are removed.

Under ``torchrun`` only rank 0 takes the lock: the ranks of one launch are one run. Where
there is no ``flock`` (Windows) runs are not locked.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from crossdistill.engine.checkpoint import discard_partial_writes
from crossdistill.engine.run_folder import RunFolder
from crossdistill.errors import CrossDistillError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None

LOCK_FILE = RunFolder(Path()).lock.name
F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the lock of ``run_dir`` (created if missing) for the ``with`` block.

    Raises:
        CrossDistillError: another live process holds it.
    """
    run_dir = Path(run_dir)
    if fcntl is None or int(os.environ.get("RANK", "0") or 0) != 0:
        yield run_dir
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = RunFolder(run_dir).lock
    # O_NOFOLLOW: a symbolic link planted as .lock is never followed (nor written through).
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as err:
        raise CrossDistillError(f"{path}: cannot open the run lock ({err.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise CrossDistillError(
            f"{run_dir}: another run (pid {holder}) is writing this folder; wait for it to "
            "finish or choose another name"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        discard_partial_writes(RunFolder(run_dir).checkpoints)
        yield run_dir
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def exclusive_run(train: F) -> F:
    """Decorate ``train(config, ...)`` to run under the lock of ``config.output / config.name``.

    The folders the call created are removed again when it fails before writing anything
    but the lock (a bad config): a rejected configuration leaves no trace.
    """

    @functools.wraps(train)
    def locked(config, *args, **kwargs):
        run_dir = RunFolder.of(config).path
        created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
        with run_lock(run_dir):
            try:
                return train(config, *args, **kwargs)
            except BaseException:
                if created and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
                    RunFolder(run_dir).lock.unlink()
                    for folder in created:  # deepest first; stops at one that is not empty
                        try:
                            folder.rmdir()
                        except OSError:
                            break
                raise

    return locked  # type: ignore[return-value]
