"""Fault injection for the reliability tests; inert unless ``CROSSDISTILL_FAULT_KILL`` is set.

``CROSSDISTILL_FAULT_KILL="<point>:<n>"`` makes the process ``SIGKILL`` itself the ``n``-th
time (counted from 1 in this process) it passes ``fault_point("<point>")``, so a test can cut
a run at an exact place instead of hoping a timer lands there. The points:

- ``train-step``: an optimizer step has just been taken (in the middle of an epoch);
- ``checkpoint-write``: a checkpoint's temporary file is complete and synced, and not yet
  renamed to its final name (a write cut in half).

Nothing else reads the variable; with it unset a fault point costs one dictionary lookup.
See ``tests/robustness/faults/`` and RELIABILITY.md.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

KILL_ENV = "CROSSDISTILL_FAULT_KILL"
POINTS = ("train-step", "checkpoint-write")

_passes: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Die by ``SIGKILL`` here if ``CROSSDISTILL_FAULT_KILL`` names this point and pass."""
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    _passes[name] += 1
    if _passes[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
