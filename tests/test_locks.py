"""sound_tf.locks used from Python: one process per folder, emptying a folder, and whether a process runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from sound_tf import locks
from sound_tf.errors import ConfigError


def test_empty_folder_refuses_a_single_name_as_keep(tmp_path):
    # keep="split.csv" was read as the names "s", "p", "l" ...: split.csv was deleted and a file "s" kept.
    for name in ("split.csv", "s", "other.txt"):
        (tmp_path / name).write_text(name)
    with pytest.raises(ConfigError, match=r"keep must be a tuple of file names.*keep=\('split.csv',\)"):
        locks.empty_folder(tmp_path, keep="split.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt", "s", "split.csv"]  # nothing deleted
    locks.empty_folder(tmp_path, keep=("split.csv",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split.csv"]


def test_refuse_foreign_folder_refuses_a_single_name_as_startup(tmp_path):
    (tmp_path / "run.log").write_text("log")
    (tmp_path / "r").write_text("not ours")  # a character of "run.log": was taken for a startup file
    with pytest.raises(ConfigError, match="startup must be a tuple of file names"):
        locks.refuse_foreign_folder(tmp_path, marker="state.json", what="run", startup="run.log")
    with pytest.raises(ConfigError, match=r"not a run folder \(it holds r, and no state.json\)"):
        locks.refuse_foreign_folder(tmp_path, marker="state.json", what="run", startup=("run.log",))


def test_process_alive_answers_no_for_pids_that_name_no_process():
    # os.kill(0, 0) signals this process group and os.kill(-1, 0) every process: both answered True.
    assert locks.process_alive(os.getpid()) is True
    assert locks.process_alive(0) is False
    assert locks.process_alive(-1) is False
    assert locks.process_alive(2 ** 40) is False  # was an OverflowError
    import numpy as np
    assert locks.process_alive(np.int64(os.getpid())) is True
    for bad in ("123", 1.5, True):
        with pytest.raises(ConfigError, match="process_alive needs a process id"):
            locks.process_alive(bad)


def test_a_child_process_holding_a_claim_refuses_others_until_sigkill(tmp_path):
    folder = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from sound_tf import locks; "
                              f"print(locks.claim_folder({str(folder)!r}), flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "None"  # the child holds it
        assert locks.claim_folder(folder) == f"pid {child.pid} on {__import__('socket').gethostname()}"
        with pytest.raises(ConfigError, match=f"in use by pid {child.pid} .*which is testing"):
            with locks.claimed(folder, "testing"):
                pass
        assert locks.process_alive(child.pid)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert not locks.process_alive(child.pid)
    assert locks.claim_folder(folder) is None  # the killed process's lock went with it
    locks.release_folder(folder)
    assert (folder / locks.LOCK_FILE).is_file()
