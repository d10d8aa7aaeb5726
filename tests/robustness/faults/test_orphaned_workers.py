"""A grid process killed outright (SIGKILL, or SIGTERM, which skips its clean-up) must not
leave its worker processes training on: they exit, and the next invocation resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc (Linux)")

#: A grid process: two pool workers each busy with a long task, their pids printed.
GRID = """
import os, sys, time
from crossdistill.reproduce.launchers import ProcessPoolLauncher
launcher = ProcessPoolLauncher(2, threads=1)
futures = [launcher._pool.submit(time.sleep, 120) for _ in range(2)]
while len(launcher._pool._processes) < 2:
    time.sleep(0.05)
print(" ".join(str(pid) for pid in launcher._pool._processes), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_exit_when_the_grid_process_dies(sig):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3] / "src")}
    grid = subprocess.Popen(
        [sys.executable, "-c", GRID], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        workers = [int(pid) for pid in grid.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
        grid.send_signal(sig)
        grid.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers), "a worker outlived its grid process"
    finally:
        grid.kill()
        grid.wait()
