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


@pytest.mark.parametrize("marker, startup, left", [
    ("run_state.json", ("train.log", "split.csv", "skipped.csv"), ".split.csv.hjec7156.tmp"),  # train, decoding
    ("run_state.json", ("train.log", "split.csv", "skipped.csv"), ".run_state.json.tmp"),  # its first state
    ("crossval_state.json", ("train.log",), ".crossval_state.json.tmp"),
    ("search.json", ("tune.log", "workers"), ".search.json.vm.20144.tmp"),
    ("metrics.json", ("skipped.csv",), ".metrics.json.20144.140211.tmp"),  # evaluate --out
])
def test_a_folder_a_kill_left_with_a_half_written_file_is_still_the_commands_own(tmp_path, marker, startup, left):
    """SIGKILL between an atomic write and its rename leaves the temporary file beside the file written. Before
    the marker existed (split.csv being written, or the marker itself) the folder was refused as the user's own
    files, and every rerun of the same command failed (with --overwrite too) until it was deleted by hand."""
    (tmp_path / startup[0]).write_text("log")
    (tmp_path / locks.LOCK_FILE).write_text("")
    (tmp_path / left).write_text("split,path,lab")  # cut short
    locks.refuse_foreign_folder(tmp_path, marker=marker, what="run", startup=startup)  # no error


def test_only_temporary_files_of_the_commands_own_names_are_its_own(tmp_path):
    (tmp_path / "train.log").write_text("log")
    for name in (".notes.txt.tmp", ".split.csv.backup", "split.csv.tmp", ".split.csvx.tmp"):
        (tmp_path / name).write_text("mine")
    (tmp_path / ".run_state.json.tmp").mkdir()  # a folder is never a temporary file of ours
    with pytest.raises(ConfigError, match=r"it holds \.notes\.txt\.tmp, \.run_state\.json\.tmp/, \.split\.csv\.backup, "
                                          r"\.split\.csvx\.tmp, split\.csv\.tmp, and no run_state\.json"):
        locks.refuse_foreign_folder(tmp_path, marker="run_state.json", what="run", startup=("train.log", "split.csv"))


def test_a_link_or_a_name_running_on_past_tmp_is_not_a_temporary_file_of_ours(tmp_path):
    """Only a regular file named .<name>[.<anything>].tmp[<ending of name>] is what an atomic write left; a link
    so named (to the user's data) or a hidden .split.csv.tmpold of the user's would be taken for it, the folder
    taken for the command's own, and --overwrite would delete them."""
    (tmp_path / "train.log").write_text("log")
    (tmp_path / "mine.csv").write_text("the user's")
    (tmp_path / ".split.csv.abcd1234.tmp").symlink_to(tmp_path / "mine.csv")
    (tmp_path / ".split.csv.tmpold").write_text("the user's")
    assert not locks.abandoned_temporary(tmp_path / ".split.csv.abcd1234.tmp", ("split.csv",))
    assert not locks.abandoned_temporary(tmp_path / ".split.csv.tmpold", ("split.csv",))
    (tmp_path / "mine.csv").unlink()  # a dangling link, as well
    with pytest.raises(ConfigError, match=r"it holds \.split\.csv\.abcd1234\.tmp, \.split\.csv\.tmpold, and no"):
        locks.refuse_foreign_folder(tmp_path, marker="run_state.json", what="run", startup=("train.log", "split.csv"))
    (tmp_path / ".split.csv.abcd1234.tmp").unlink()
    (tmp_path / ".split.csv.tmpold").unlink()
    (tmp_path / ".split.csv.abcd1234.tmp").write_text("split,pa")  # the real leftover is its own
    locks.refuse_foreign_folder(tmp_path, marker="run_state.json", what="run", startup=("train.log", "split.csv"))


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


def test_a_folder_the_claim_created_goes_again_when_the_work_fails_before_writing_anything(tmp_path):
    """A Python caller's train_run / run_crossval / run_search that failed early (a missing data folder) left
    a new folder holding only ``.lock``. The folder ``claimed`` created is removed when its block raises with
    nothing else in it; one that existed, one the work wrote into, and one whose work succeeded stay."""
    def fail(folder, write=None):
        with pytest.raises(ConfigError, match="no data"):
            with locks.claimed(folder, "testing"):
                assert (folder / locks.LOCK_FILE).is_file()
                if write:
                    (folder / write).write_text("kept")
                raise ConfigError("no data")

    fail(tmp_path / "new")
    assert sorted(tmp_path.iterdir()) == []
    fail(tmp_path / "nested" / "new")
    assert [p.name for p in tmp_path.iterdir()] == ["nested"] and not any((tmp_path / "nested").iterdir())
    (tmp_path / "existed").mkdir()
    fail(tmp_path / "existed")
    assert [p.name for p in (tmp_path / "existed").iterdir()] == [locks.LOCK_FILE]
    fail(tmp_path / "written", write="split.csv")
    assert sorted(p.name for p in (tmp_path / "written").iterdir()) == [locks.LOCK_FILE, "split.csv"]
    with locks.claimed(tmp_path / "succeeded", "testing"):
        pass
    assert [p.name for p in (tmp_path / "succeeded").iterdir()] == [locks.LOCK_FILE]
    assert locks.claim_folder(tmp_path / "existed") is None  # every claim was given back
    locks.release_folder(tmp_path / "existed")


def test_a_child_handed_its_commands_lock_claims_the_folder_as_its_own(tmp_path):
    """train --export hands its export child the run folder's lock (pass_fds); the export claims the run folder as
    every export does now, and a new descriptor would find it held by its own command. With inherited_env the
    child's claim counts on the handed lock (and gives it back without freeing the folder for others); without it,
    or with a descriptor that is not that folder's lock file, the child is refused naming its command."""
    import socket

    folder = tmp_path / "run"
    assert locks.claim_folder(folder) is None
    fd = locks.lock_descriptor(folder)
    child_code = ("import sys\nfrom sound_tf import locks\nlocks.inherit_lock()\n"
                  "print(locks.claim_folder(sys.argv[1]), flush=True)\nlocks.release_folder(sys.argv[1])\n"
                  "print(locks.claim_file(sys.argv[1] + '/.lock') is None)")  # True: the handed claim is still held
    try:
        assert locks.inherited_env(folder) == {locks.INHERITED_ENV: f"{fd}:{folder.resolve() / locks.LOCK_FILE}"}
        handed = {**os.environ, **locks.inherited_env(folder)}
        other = {**os.environ, locks.INHERITED_ENV: f"{fd}:{tmp_path / 'elsewhere' / locks.LOCK_FILE}"}
        answers = [subprocess.run([sys.executable, "-c", child_code, str(folder)], pass_fds=(fd,), env=env,
                                  capture_output=True, text=True, timeout=60) for env in (handed, os.environ, other)]
        holder = f"pid {os.getpid()} on {socket.gethostname()}"
        assert [(a.returncode, a.stdout) for a in answers] == [(0, "None\nTrue\n"), (0, f"{holder}\nFalse\n"),
                                                               (0, f"{holder}\nFalse\n")], answers
        assert locks.claim_folder(folder) is None  # still this process's, after the child gave its claim back
        locks.release_folder(folder)
        refused = subprocess.run([sys.executable, "-c", child_code, str(folder)], capture_output=True, text=True,
                                 timeout=60)
        assert refused.stdout == f"{holder}\nFalse\n"
    finally:
        locks.release_folder(folder)
    assert locks.inherited_env(folder) == {}  # none held: nothing to hand on


def test_a_lock_file_removed_as_its_holder_lets_go_is_not_claimed_after_it(tmp_path, monkeypatch):
    """release_file(remove=True) deletes a lock beside a folder (an export's bundle) so none is left over. A claim
    that opened the old file before the holder removed it, and locks it after, holds a file no path names: it must
    open the path again, or two processes would hold "the" lock (the old file and a new one)."""
    lock = tmp_path / ".bundle.lock"
    real_flock = locks.fcntl.flock
    opened: list[int] = []

    def holder_lets_go_meanwhile(fd, operation):
        opened.append(os.fstat(fd).st_ino)
        if len(opened) == 1:  # the first attempt opened the old file: its holder removes it now and lets go
            os.unlink(lock)
        return real_flock(fd, operation)

    lock.write_text("pid 1 on elsewhere\n")
    monkeypatch.setattr(locks.fcntl, "flock", holder_lets_go_meanwhile)
    assert locks.claim_file(lock) is None
    assert len(opened) == 2  # it opened the path again (the new file may reuse the old one's inode number)
    held = os.fstat(locks._HELD[locks._key(lock)][0])
    assert held.st_nlink == 1 and os.path.samestat(held, os.stat(lock))  # the file the path names, not a removed one
    assert lock.read_text() == f"pid {os.getpid()} on {__import__('socket').gethostname()}\n"
    monkeypatch.setattr(locks.fcntl, "flock", real_flock)
    assert locks.claim_file(lock) is None  # a second claim of this process
    locks.release_file(lock, remove=True)
    assert lock.exists()  # one claim is still held
    locks.release_file(lock, remove=True)
    assert not lock.exists()
    assert locks.claim_file(lock) is None  # and a new claim makes it again
    locks.release_file(lock)
    assert lock.exists()  # without remove it stays, as a folder's .lock does


def test_a_lock_held_by_a_process_that_wrote_no_holder_line_is_refused_naming_another_process(tmp_path):
    """A lock file whose holder wrote nothing in it (another program's flock on it, or a holder between locking it and
    writing its line) is still held: the claim is refused, naming "another process", and the folder stays the
    holder's. The claim must not succeed because no holder is named, nor keep the file it opened (a command that
    passes over busy run folders refuses many)."""
    import fcntl

    folder = tmp_path / "run"
    folder.mkdir()
    other = os.open(folder / locks.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)  # a second open file: its own flock
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        opened = len(os.listdir("/proc/self/fd"))
        assert locks.claim_folder(folder) == "another process"
        assert len(os.listdir("/proc/self/fd")) == opened  # the refused claim closed what it opened
        assert locks.lock_descriptor(folder) is None  # nothing held, nothing to give back
        with pytest.raises(ConfigError, match=rf"^{folder}: in use by another process, which is testing; wait for it "
                                              r"to end, or choose another --out$"):
            locks.claim_or_refuse(folder, "testing")
    finally:
        os.close(other)
    assert locks.claim_folder(folder) is None  # free once it is let go
    locks.release_folder(folder)


def test_a_claim_after_the_lock_file_was_deleted_lets_go_of_the_old_one(tmp_path):
    """A folder emptied by hand (its .lock deleted) while this process holds it is locked anew on the next claim, and
    the descriptor of the deleted file is closed: a long crossval or search re-claiming such folders kept one open
    file per claim."""
    folder = tmp_path / "run"
    assert locks.claim_folder(folder) is None
    (folder / locks.LOCK_FILE).unlink()
    opened = len(os.listdir("/proc/self/fd"))
    assert locks.claim_folder(folder) is None  # the new file, carrying the claim not given back
    assert len(os.listdir("/proc/self/fd")) == opened
    assert os.path.samestat(os.fstat(locks.lock_descriptor(folder)), os.stat(folder / locks.LOCK_FILE))
    locks.release_folder(folder)
    assert locks.lock_descriptor(folder) is not None  # one claim is still held
    locks.release_folder(folder)
    assert locks.lock_descriptor(folder) is None


def test_a_lock_is_handed_to_a_child_for_a_folder_whose_name_holds_a_colon(tmp_path):
    """The handed lock is named ``<descriptor>:<lock file>``; a run folder named by the time (``runs/12:00``) has a
    colon in that path, and the child must still count the lock as its own (split at the first colon)."""
    folder = tmp_path / "runs" / "2026-01-01T12:00"
    assert locks.claim_folder(folder) is None
    fd = locks.lock_descriptor(folder)
    code = ("import sys\nfrom sound_tf import locks\nlocks.inherit_lock()\n"
            "import os\nprint(locks.lock_descriptor(sys.argv[1]), locks.claim_folder(sys.argv[1]), "
            "locks.INHERITED_ENV in os.environ)")  # taken out: the child's own children are handed nothing
    try:
        child = subprocess.run([sys.executable, "-c", code, str(folder)], pass_fds=(fd,), capture_output=True,
                               text=True, env={**os.environ, **locks.inherited_env(folder)}, timeout=60)
    finally:
        locks.release_folder(folder)
    assert (child.returncode, child.stdout) == (0, f"{fd} None False\n"), child.stderr
    other = tmp_path / "other.lock"  # a descriptor of another file, under the folder's lock file's name
    other_fd = os.open(other, os.O_RDWR | os.O_CREAT)
    try:
        assert locks.claim_folder(folder) is None
        env = {**os.environ, locks.INHERITED_ENV: f"{other_fd}:{folder.resolve() / locks.LOCK_FILE}"}
        child = subprocess.run([sys.executable, "-c", code, str(folder)], pass_fds=(other_fd,), capture_output=True,
                               text=True, env=env, timeout=60)
    finally:
        locks.release_folder(folder)
        os.close(other_fd)
    holder = f"pid {os.getpid()} on {__import__('socket').gethostname()}"
    assert (child.returncode, child.stdout) == (0, f"None {holder} False\n"), child.stderr  # it holds nothing


def test_a_stale_lock_files_longer_holder_line_is_replaced_whole(tmp_path):
    """A lock file a killed command left names that command ("pid 4194301 on a-longer-host-name"); the next claim
    writes its own line over it, whole: a shorter line written over a longer one left its tail, and a refusal read
    "in use by pid 812 on hostger-host-name"."""
    import socket

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / locks.LOCK_FILE).write_text("pid 4194301 on a-much-longer-host-name-than-this-one.example.org\n")
    assert locks.claim_folder(folder) is None
    try:
        assert (folder / locks.LOCK_FILE).read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"
    finally:
        locks.release_folder(folder)


def test_one_folder_named_by_other_paths_is_one_claim_of_this_process(tmp_path, monkeypatch):
    """A relative path, the absolute one and a path through a link to its parent name one folder: claimed under each,
    it is one lock claimed three times (a crossval's folds claimed under --out as typed and as resolved), not a
    second descriptor refused by this process's own lock."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    names = [os.path.join("runs", "r"), tmp_path / "runs" / "r", tmp_path / "link" / "r"]
    assert [locks.claim_folder(name) for name in names] == [None, None, None]
    assert len({locks.lock_descriptor(name) for name in names}) == 1
    for name in names:
        assert locks.lock_descriptor(name) is not None  # held until the third release
        locks.release_folder(name)
    assert locks.lock_descriptor(names[0]) is None


def test_a_claimed_block_lets_go_when_it_ends_and_a_refusal_names_the_callers_output_argument(tmp_path):
    """After ``claimed``'s block, succeeded or failed, this process holds nothing there (another process may claim the
    folder; a claim of this process's own would succeed either way); a refusal names the output folder in the
    caller's words (``out_dir`` for a Python caller)."""
    import fcntl

    folder = tmp_path / "run"
    with locks.claimed(folder, "testing"):
        assert locks.lock_descriptor(folder) is not None
    assert locks.lock_descriptor(folder) is None
    with pytest.raises(ConfigError, match="no data"):
        with locks.claimed(folder, "testing"):
            raise ConfigError("no data")
    assert locks.lock_descriptor(folder) is None
    other = os.open(folder / locks.LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: no descriptor of this process holds it
        with pytest.raises(ConfigError, match=r"in use by pid \d+ on .+, which is testing; wait for it to end, "
                                              r"or choose another out_dir$"):
            with locks.claimed(folder, "testing", wording=locks.Wording(out="out_dir")):
                pass
    finally:
        os.close(other)


def test_a_release_with_remove_leaves_a_lock_file_that_is_not_its_own(tmp_path):
    """release_file(remove=True) deletes the lock file it holds; when the path names another file by then (its own was
    deleted and another export made a new one, which it now holds), that file is the other's lock and stays."""
    lock = tmp_path / ".bundle.lock"
    assert locks.claim_file(lock) is None
    lock.unlink()
    lock.write_text("pid 1 on elsewhere\n")  # the next export's lock
    locks.release_file(lock, remove=True)
    assert lock.read_text() == "pid 1 on elsewhere\n"


def _stat_on_another_device(monkeypatch, path, times):
    """Make ``os.stat`` of ``path`` report the same inode number on another device, ``times`` times (then the truth):
    another file system's file, which an inode number alone does not tell apart."""
    real_stat, left = os.stat, [times]

    def stat(name, *args, **kwargs):
        result = real_stat(name, *args, **kwargs)
        if os.fspath(name) == os.fspath(path) and left[0] > 0:
            left[0] -= 1
            fields = list(result)
            fields[2] += 1  # st_dev
            return os.stat_result(fields)
        return result

    monkeypatch.setattr(locks.os, "stat", stat)
    return left


def test_a_lock_path_naming_the_same_inode_number_on_another_device_is_not_the_held_file(tmp_path, monkeypatch):
    """claim_file and release_file told the file they hold from the one at the path by st_ino alone (inherit_lock by
    st_ino and st_dev): a path that names a file of the same inode number on another file system (a folder mounted
    over, a lock file made anew there) was taken for the held lock, so a claim counted itself on a lock no path
    names and a release with remove deleted the other file. Both compare the device too now."""
    lock = tmp_path / ".bundle.lock"
    assert locks.claim_file(lock) is None
    real_flock, locked = locks.fcntl.flock, []
    monkeypatch.setattr(locks.fcntl, "flock", lambda fd, op: (locked.append(fd), real_flock(fd, op))[1])
    left = _stat_on_another_device(monkeypatch, lock, 1)
    assert locks.claim_file(lock) is None
    assert left == [0] and len(locked) == 1  # not the held file: the path was opened and locked again
    assert locks._HELD[locks._key(lock)][1] == 2  # carrying the claim not given back
    assert os.path.samestat(os.fstat(locks._HELD[locks._key(lock)][0]), os.stat(lock))
    locks.release_file(lock)

    left = _stat_on_another_device(monkeypatch, lock, 1)
    locks.release_file(lock, remove=True)  # the last claim: the path names "another" file, which stays
    assert left == [0] and lock.exists()
    assert locks.lock_descriptor(tmp_path) is None and locks._key(lock) not in locks._HELD
    assert locks.claim_file(lock) is None
    locks.release_file(lock, remove=True)  # its own file: removed
    assert not lock.exists()
