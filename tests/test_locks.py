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
