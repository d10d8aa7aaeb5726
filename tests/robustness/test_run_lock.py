"""Two runs pointed at one run folder: the second is refused with one clear line; a lock
left by a killed process does not block; the lock file is never followed through a link."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import tiny_run_config
from crossdistill import api
from crossdistill.engine.run_lock import LOCK_FILE, run_lock
from crossdistill.errors import ConfigError, CrossDistillError

HOLD = (
    "import sys, time\n"
    "from crossdistill.engine.run_lock import run_lock\n"
    "with run_lock(sys.argv[1]):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(120)\n"
)


def _train_args(cache, out, name):
    settings = {"data.cache": cache, "output": out, "name": name, "model.width": 0.25}
    return ["train", *[a for k, v in settings.items() for a in ("--set", f"{k}={v}")]]


def test_second_run_on_a_held_folder_is_refused(engine_cache, tmp_path, run_cli):
    run = tmp_path / "run"
    with run_lock(run):
        code, _, err = run_cli(*_train_args(engine_cache, tmp_path, "run"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0] == (
        f"crossdistill: error: {run}: another run (pid {os.getpid()}) is writing this "
        "folder; wait for it to finish or choose another name"
    )
    assert [p.name for p in run.iterdir()] == [LOCK_FILE]  # the refused run wrote nothing


def test_lock_of_a_killed_process_does_not_block(engine_cache, tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CrossDistillError, match=rf"another run \(pid {holder.pid}\)"):
            api.train(tiny_run_config(engine_cache, tmp_path, "run"), progress=False)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    (run / "checkpoints").mkdir()
    stale = run / "checkpoints" / ".last.safetensors.tmp-999999"
    stale.write_bytes(b"a write cut by the kill")
    with run_lock(run):  # the kernel dropped the dead holder's lock
        assert not stale.exists()  # and the cut write's temporary file is cleared
        assert (run / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_lock_file_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).symlink_to(victim)
    with pytest.raises(CrossDistillError, match="cannot open the run lock"), run_lock(run):
        pass
    assert victim.read_text() == "keep me"


def test_only_rank_zero_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with run_lock(tmp_path / "run"), run_lock(tmp_path / "run"):
        assert not (tmp_path / "run").exists()


def test_a_bad_config_leaves_no_run_folder(engine_cache, tmp_path):
    with pytest.raises(ConfigError, match="target"):
        api.train(tiny_run_config(engine_cache, tmp_path, "bad", "target=null"), progress=False)
    assert not (tmp_path / "bad").exists()
