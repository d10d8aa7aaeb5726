"""Set-up of a grid's worker process: torch threads, and an exit soon after its grid dies.

Kept out of :mod:`crossdistill.reproduce` (whose package imports torch and the whole stack)
so that a freshly spawned worker watches its grid process before it imports anything heavy:
a grid killed while its workers are still starting leaves none of them behind
(RELIABILITY.md #1b).
"""

from __future__ import annotations

import os
import threading
import time

from crossdistill.monai_without_mlflow import hide_mlflow_from_monai


def limit_torch_threads(threads: int) -> None:
    """Let torch use ``threads`` CPU threads in this (worker) process."""
    import torch

    torch.set_num_threads(threads)


def _exit_when_orphaned(parent: int, every_s: float) -> None:
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)  # the grid process is gone: the run resumes from its last checkpoint later


def init_worker(threads: int, parent: int, every_s: float = 1.0) -> None:
    """Set up a worker process: exit within ``every_s`` seconds of the grid process
    ``parent`` dying (killed, or stopped by a signal that skips its clean-up) instead of
    training on unobserved and holding the run's lock; then ``threads`` torch threads. MONAI
    is later imported without MLflow (:mod:`crossdistill.monai_without_mlflow`)."""
    watch = threading.Thread(target=_exit_when_orphaned, args=(parent, every_s), daemon=True)
    watch.start()
    hide_mlflow_from_monai()
    limit_torch_threads(threads)
