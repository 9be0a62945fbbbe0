"""sound_tf.atomic: every writer leaves the previous file whole, and no temporary file, when its write stops
half way (a full disk, an exception, a failed rename), and a killed one leaves only a temporary file that the
folder checks recognise and clean up."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import disk_full_after, killed_mid_write

from sound_tf import atomic
from sound_tf.locks import abandoned_temporary

OLD = "previous, complete content\n"
BIG = 50_000  # bytes each writer tries to write; the disk fills after LIMIT
LIMIT = 4096


def _figure(path: Path) -> None:  # a writer that takes a file name and writes in several pieces, as savefig
    with open(path, "wb") as handle:
        for _ in range(BIG // 1000):
            handle.write(b"p" * 1000)
            handle.flush()


WRITERS = {
    "text": lambda path: atomic.write_text(path, "t" * BIG),
    "bytes": lambda path: atomic.write_bytes(path, b"b" * BIG),
    "json": lambda path: atomic.write_json(path, {"key": "j" * BIG}),
    "csv": lambda path: atomic.write_csv(path, ("path", "reason"), [(f"{i}.wav", "x" * 40) for i in range(1000)]),
    "with": lambda path: atomic.write_with(path, _figure),
    "copy": lambda path: atomic.copy_file(path.with_name("source.bin"), path),
    "replaced_whole": lambda path: _write_handle(path),
}


def _write_handle(path: Path) -> None:
    with atomic.replaced_whole(path, "wb") as handle:
        handle.write(b"h" * BIG)


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_a_write_the_full_disk_stops_half_way_leaves_the_previous_file(tmp_path, kind):
    target = tmp_path / "state.out"
    target.write_text(OLD)
    (tmp_path / "source.bin").write_bytes(b"s" * BIG)
    with disk_full_after(LIMIT), pytest.raises(OSError, match="File too large"):
        WRITERS[kind](target)
    assert target.read_text() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.bin", "state.out"]
    WRITERS[kind](target)  # and with room, the new content, whole
    assert target.stat().st_size > 10 * LIMIT


def test_what_each_writer_writes(tmp_path):
    assert atomic.write_text(tmp_path / "a.txt", "x\r\ny\n").read_bytes() == b"x\r\ny\n"  # line ends as given
    assert json.loads(atomic.write_json(tmp_path / "a.json", {"a": [1, 2]}).read_text()) == {"a": [1, 2]}
    assert (tmp_path / "a.json").read_text().endswith("]\n}\n")
    assert atomic.write_csv(tmp_path / "a.csv", ("p", "q"), [("1,2", 3)]).read_bytes() == b'p,q\r\n"1,2",3\r\n'
    assert atomic.write_csv(tmp_path / "n.csv", ("p",), [(1,)], lineterminator="\n").read_bytes() == b"p\n1\n"
    assert atomic.write_bytes(tmp_path / "sub" / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"  # folders made
    with pytest.raises(ValueError, match="Out of range float values"):  # refused before anything is written
        atomic.write_json(tmp_path / "a.json", {"a": float("nan")}, allow_nan=False)
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": [1, 2]}


def test_a_callback_that_raises_half_way_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "confusion_matrix.png"
    target.write_text(OLD)
    seen = []

    def savefig(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_bytes(b"\x89PNG half")
        raise RuntimeError("the figure could not be drawn")

    with pytest.raises(RuntimeError, match="could not be drawn"):
        atomic.write_with(target, savefig)
    assert target.read_text() == OLD and sorted(tmp_path.iterdir()) == [target]
    # the path given to the writer: hidden, beside the file, in .tmp, and recognised as a temporary of it
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".confusion_matrix.png.")
    assert seen[0].suffix == ".tmp"


def test_a_failed_rename_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "config.json"
    target.write_text(OLD)

    def no_rename(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", no_rename)
    for write in (lambda: atomic.write_json(target, {"a": 1}), lambda: atomic.write_with(target, _figure)):
        with pytest.raises(PermissionError):
            write()
        assert target.read_text() == OLD and sorted(tmp_path.iterdir()) == [target]


def test_the_data_reaches_the_disk_before_the_rename(tmp_path, monkeypatch):
    """Without fsync a power cut after the rename can leave the new name on an empty file (delayed allocation)."""
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.fstat(fd).st_size)), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", Path(b).name)), real_replace(a, b)))
    atomic.write_text(tmp_path / "a.txt", "12345")
    atomic.write_with(tmp_path / "b.png", _figure)
    assert calls == [("fsync", 5), ("replace", "a.txt"), ("fsync", BIG), ("replace", "b.png")]
    calls.clear()
    with atomic.replaced_whole(tmp_path / "c.wav", "wb", durable=False) as handle:  # a file checked whole on read
        handle.write(b"abc")
    assert calls == [("replace", "c.wav")] and (tmp_path / "c.wav").read_bytes() == b"abc"


def test_a_new_file_gets_the_mode_open_gives_under_the_umask_of_the_moment(tmp_path):
    """The mode was read once, at import, by setting the process-wide umask to 022 for an instant: a umask set
    later (027 here) was ignored, and a file another thread made in that instant got 644."""
    for mask in (0o027, 0o077, 0o002):
        old = os.umask(mask)
        try:
            atomic.write_text(tmp_path / f"a{mask:o}.txt", "x")
            atomic.write_with(tmp_path / f"b{mask:o}.png", _figure)
            with open(tmp_path / f"c{mask:o}.txt", "w") as handle:  # what open() gives
                handle.write("x")
        finally:
            os.umask(old)
        modes = {stat.S_IMODE((tmp_path / f"{kind}{mask:o}.{ext}").stat().st_mode)
                 for kind, ext in (("a", "txt"), ("b", "png"), ("c", "txt"))}
        assert modes == {0o666 & ~mask}


def test_a_rewritten_file_keeps_its_mode_and_a_linked_one_is_written_through_its_link(tmp_path):
    """open(path, "w") keeps a file's mode and writes through a symbolic link; the renamed temporary file gave a
    config.json set to 640 the umask's 644, and replaced a linked split.csv by a file of its own."""
    kept = tmp_path / "config.json"
    kept.write_text("{}")
    kept.chmod(0o640)
    atomic.write_json(kept, {"a": 1})
    atomic.write_with(kept, lambda tmp: Path(tmp).write_text("{}"))  # a writer that makes its file anew
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    shared = tmp_path / "shared" / "split.csv"
    shared.parent.mkdir()
    shared.write_text("old")
    link = tmp_path / "run" / "split.csv"
    link.parent.mkdir()
    link.symlink_to(shared)
    assert atomic.write_csv(link, ["split"], [["train"]]) == link
    assert link.is_symlink() and shared.read_bytes() == b"split\r\ntrain\r\n"
    assert atomic.write_with(link, lambda tmp: Path(tmp).write_text("png")) == link
    assert link.is_symlink() and shared.read_text() == "png"
    assert sorted(p.name for p in link.parent.iterdir()) == ["split.csv"]
    assert sorted(p.name for p in shared.parent.iterdir()) == ["split.csv"]
    loop, back = tmp_path / "loop.csv", tmp_path / "back.csv"  # open() raises ELOOP; the rename replaced the link
    loop.symlink_to(back)
    back.symlink_to(loop)
    with pytest.raises(OSError, match="symbolic links lead round in a loop") as refused:
        atomic.write_text(loop, "x")
    assert refused.value.filename == str(loop) and loop.is_symlink() and back.is_symlink()
    with pytest.raises(OSError):
        open(loop, "w")


def test_a_process_killed_mid_write_leaves_the_previous_file_and_a_temporary_named_as_its_own(tmp_path):
    target = tmp_path / "run_state.json"
    target.write_text(OLD)
    killed_mid_write("from sound_tf import atomic", f"atomic.write_json({str(target)!r}, {{'x': 'y' * {BIG}}})",
                     LIMIT, tmp_path)
    assert target.read_text() == OLD
    left = [p for p in tmp_path.iterdir() if p != target]
    assert len(left) == 1 and left[0].stat().st_size == LIMIT  # the half it wrote, under its temporary name
    assert abandoned_temporary(left[0], ("run_state.json",)) and not abandoned_temporary(left[0], ("state.json",))
    assert left[0].name.startswith(f".run_state.json.{socket.gethostname()}.")
    # its writer ended: the next write that asks for it removes it; a live process's and another host's stay
    live = tmp_path / f".run_state.json.{socket.gethostname()}.{os.getppid()}-abcd1234.tmp"
    other_host = tmp_path / f".run_state.json.{socket.gethostname()}.x.{left[0].name.split('.')[-2]}.tmp"
    for path in (live, other_host):
        path.write_text("{")
    atomic.write_json(target, {"x": 1}, remove_ended=True)
    assert json.loads(target.read_text()) == {"x": 1}
    assert sorted(tmp_path.iterdir()) == sorted([target, live, other_host])


def _ended_pid() -> int:
    """The pid of a process of this host that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_writer_that_insists_on_a_suffix_gets_it_after_tmp(tmp_path):
    """Keras's save_weights refuses a name not ending .weights.h5, and every temporary name ended .tmp: the
    weights files could not be written through this module, and were written in place."""
    import re

    target = tmp_path / "best.weights.h5"
    target.write_text(OLD)
    seen = []

    def save_weights(tmp: Path) -> None:
        if not tmp.name.endswith(".weights.h5"):
            raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={tmp}")
        seen.append(tmp.name)
        tmp.write_bytes(b"w" * 10)

    for bad in ("weights.h5", ".weights.h5x", ".best.weights.h5", "best.weights.h5"):
        with pytest.raises(ValueError, match=f"keep_suffix must be a suffix of the file's name.*{re.escape(bad)}"):
            atomic.write_with(target, save_weights, keep_suffix=bad)
    assert target.read_text() == OLD and sorted(tmp_path.iterdir()) == [target]
    atomic.write_with(target, save_weights, keep_suffix=".weights.h5")
    assert target.read_bytes() == b"w" * 10 and sorted(tmp_path.iterdir()) == [target]
    assert re.fullmatch(rf"\.best\.weights\.h5\.{re.escape(socket.gethostname())}\.{os.getpid()}-[a-z0-9_]+"
                        rf"\.tmp\.weights\.h5", seen[0]), seen
    # what a kill leaves is recognised as the file's temporary, and removed once its process has ended
    dead = tmp_path / f".best.weights.h5.{socket.gethostname()}.{_ended_pid()}-abcd1234.tmp.weights.h5"
    live = tmp_path / f".best.weights.h5.{socket.gethostname()}.{os.getppid()}-abcd1234.tmp.weights.h5"
    other = tmp_path / f".best.weights.h5.{socket.gethostname()}.{_ended_pid()}-abcd1234.tmp.keras"  # not its ending
    for path in (dead, live, other):
        path.write_bytes(b"\x89HDF half")
    assert abandoned_temporary(dead, ("best.weights.h5",)) and not abandoned_temporary(dead, ("weights.h5",))
    assert not abandoned_temporary(other, ("best.weights.h5",))
    atomic.remove_leftovers(target)
    assert sorted(tmp_path.iterdir()) == sorted([target, live, other])


def test_a_folder_sweep_removes_every_leftover_of_an_ended_process_of_this_host_and_nothing_else(tmp_path):
    """Leftovers were removed one name at a time (a run's state and startup files, oracle.json): those of
    config.json, labels.txt, history.csv, the report's files and the checkpoints stayed for good."""
    host, dead = socket.gethostname(), _ended_pid()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "checkpoints").mkdir()
        gone = [f".config.json.{host}.{dead}-abcd1234.tmp", f".labels.txt.{host}.{dead}-x_9.tmp",
                f".history.csv.{host}.{dead}.tmp", f".curves.png.{host}.{dead}-zz.tmp",
                f"checkpoints/.best.weights.h5.{host}.{dead}-q1.tmp.weights.h5"]
        stay = [f".config.json.{host}.{sleeper.pid}-abcd1234.tmp",  # its process still runs
                f"checkpoints/.final.weights.h5.{host}.{sleeper.pid}-q1.tmp.weights.h5",
                f".config.json.other-host.{dead}-abcd1234.tmp",  # another host's
                f".config.json.{host}.{dead}-abcd1234.tmp.keras",  # not an ending of config.json
                "config.json", ".notes.txt", f"notes.{host}.{dead}.tmp"]  # the user's
        ownerless = [".split.csv.hjec7156.tmp", ".run_state.json.tmp"]  # earlier versions' names
        for name in gone + stay + ownerless:
            (tmp_path / name).write_text("half")
        os.symlink(tmp_path / "config.json", tmp_path / f".skipped.csv.{host}.{dead}-ab.tmp")  # a link stays
        removed = atomic.remove_leftovers_in(tmp_path)
        assert sorted(removed) == sorted(tmp_path / name for name in gone)
        kept = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir())
        assert kept == sorted(stay + ownerless + [f".skipped.csv.{host}.{dead}-ab.tmp"])
        # a folder the caller holds: the temporary files that name no owner go too, the live process's stay
        assert sorted(atomic.remove_leftovers_in(tmp_path, held=True)) == sorted(tmp_path / n for n in ownerless)
        assert all((tmp_path / name).exists() for name in stay)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_held_folder_sweep_leaves_the_users_hidden_tmp_files_in_it_and_its_subfolders(tmp_path):
    """A held folder's sweep deleted every hidden name ending in .tmp that names no owner, in every subfolder:
    a user's .notes.tmp, logs/.mydata.tmp or export/.backup.csv.tmp went with the leftovers of earlier versions
    (7 of 7 deleted). Only the names those versions wrote without an owner go."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "export").mkdir()
    (tmp_path / "fold_2").mkdir()
    users = [".notes.tmp", ".backup.tmp", "logs/.mydata.tmp", "export/.backup.csv.tmp", "logs/.events.abcdefgh.tmp",
             ".config.json.tmp", ".report.html.tmp.html", ".split.csv.tmp.csv"]
    earlier = [".split.csv.hjec7156.tmp", ".run_state.json.tmp", "fold_2/.split.csv.z58hcf9_.tmp",
               ".crossval_state.json.tmp", ".trials.csv.tmp", "fold_2/.skipped.csv.q1w2e3r4.tmp"]
    for name in users + earlier:
        (tmp_path / name).write_text("half")
    removed = atomic.remove_leftovers_in(tmp_path, held=True)
    assert sorted(str(p.relative_to(tmp_path)) for p in removed) == sorted(earlier)
    kept = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert kept == sorted(users)


def test_the_module_imports_no_tensorflow():
    code = "import sys\nimport sound_tf.atomic\nprint(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('tensorflow', 'keras', 'numpy')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_link_into_a_missing_folder_is_refused_naming_the_file(tmp_path):
    """open() refuses to write through a link into a folder that does not exist; the error names the file."""
    link = tmp_path / "split.csv"
    link.symlink_to(tmp_path / "gone" / "split.csv")
    with pytest.raises(FileNotFoundError) as raised:
        atomic.write_text(link, "x")
    assert str(raised.value) == (f"[Errno 2] cannot write {tmp_path / 'gone' / 'split.csv'}: No such file or "
                                 f"directory for a new file in its folder {tmp_path / 'gone'} (the file is written "
                                 "beside itself, then renamed)")
    assert link.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == ["split.csv"]


def test_check_room_refuses_a_folder_with_less_free_space_than_needed_and_names_the_file(tmp_path, monkeypatch):
    """Keras's weights files are written by h5py, which ends the process with a segfault when the disk fills under
    it: write_with(needs_bytes=...) must refuse first, asking the file's folder (the file itself is not made yet),
    and a folder with exactly the bytes needed is enough."""
    target = tmp_path / "checkpoints" / "best.weights.h5"
    asked = []

    def disk_usage(folder):
        asked.append(Path(folder))
        return shutil._ntuple_diskusage(10_000_000, 9_000_000, 1_000_000)

    monkeypatch.setattr(atomic.shutil, "disk_usage", disk_usage)
    atomic.check_room(target, 1_000_000)  # exactly what is free
    atomic.check_room(target, 4096)
    with pytest.raises(OSError) as refused:
        atomic.check_room(target, 1_000_001)
    assert refused.value.errno == errno.ENOSPC and refused.value.filename == str(target)
    assert "1,000,000 bytes free there, about 1,000,001 needed" in str(refused.value)
    assert asked == [tmp_path / "checkpoints"] * 3
    target.parent.mkdir()
    target.write_text(OLD)
    written = []
    with pytest.raises(OSError, match="No space left on device: 1,000,000 bytes free there, about 2,000,000"):
        atomic.write_with(target, lambda tmp: written.append(tmp), needs_bytes=2_000_000)
    assert written == [] and target.read_text() == OLD and sorted(target.parent.iterdir()) == [target]
    atomic.write_with(target, lambda tmp: tmp.write_bytes(b"w" * 1000), needs_bytes=1_000_000)
    assert target.read_bytes() == b"w" * 1000
    monkeypatch.undo()  # the real disk: a new file in a folder that has room, and a need no disk meets
    atomic.check_room(tmp_path / "new.keras", 1)
    with pytest.raises(OSError, match="No space left on device"):
        atomic.check_room(tmp_path / "new.keras", shutil.disk_usage(tmp_path).free + 2 ** 50)


def test_a_writer_that_makes_its_file_anew_still_leaves_the_files_mode(tmp_path):
    """A writer that deletes the path it is given and makes a new file there (h5py, or a writer renaming its own
    temporary file onto it) gives it the umask's mode: config.json set to 640 came back 644."""
    kept = tmp_path / "best.weights.h5"
    kept.write_text("old")
    kept.chmod(0o640)

    def anew(tmp: Path) -> None:
        tmp.unlink()
        tmp.write_bytes(b"new")

    old = os.umask(0o022)
    try:
        atomic.write_with(kept, anew)
    finally:
        os.umask(old)
    assert kept.read_bytes() == b"new" and stat.S_IMODE(kept.stat().st_mode) == 0o640


def test_a_file_whose_name_is_near_the_length_limit_is_written(tmp_path):
    """The temporary name adds the host, the pid and 8 random characters to the file's name: for a 240-byte name
    that passes 255 bytes, and the write would fail with 'File name too long'."""
    target = tmp_path / ("n" * 236 + ".csv")
    atomic.write_csv(target, ("path",), [("a.wav",)])
    atomic.write_with(target, lambda tmp: tmp.write_text("x"))
    assert target.read_text() == "x" and sorted(tmp_path.iterdir()) == [target]


def test_a_file_whose_name_is_at_the_length_limit_is_written(tmp_path):
    """A name of 242 to 255 bytes, which open() writes, was refused with 'File name too long' naming the temporary
    file: even .<name>.<random>.tmp passed 255 bytes. The name is cut short in the temporary name (a keep_suffix
    still ends it), in bytes: 'é' takes two."""
    seen = []
    for name, keep in (("n" * 251 + ".csv", ""), ("é" * 60 + "w" * 124 + ".weights.h5", ".weights.h5")):
        target = tmp_path / name
        assert len(os.fsencode(target.name)) == 255
        atomic.write_text(target, "old")
        atomic.write_with(target, lambda tmp: (seen.append(tmp.name), tmp.write_text("new")), keep_suffix=keep)
        assert target.read_text() == "new" and sorted(tmp_path.iterdir()) == [target]
        target.unlink()
    assert [len(os.fsencode(name)) for name in seen] == [255, 255]
    assert seen[0].startswith("." + "n" * 200) and seen[1].startswith("." + "é" * 60)
    assert seen[0].endswith(".tmp") and seen[1].endswith(".tmp.weights.h5")


def test_remove_ended_removes_the_leftovers_beside_the_linked_file(tmp_path):
    """A rewritten file reached through a symbolic link leaves its temporary files beside the file it writes,
    not beside the link: remove_ended looked beside the link, and an ended writer's leftover stayed."""
    shared = tmp_path / "shared" / "oracle.json"
    shared.parent.mkdir()
    shared.write_text("{}")
    link = tmp_path / "search" / "oracle.json"
    link.parent.mkdir()
    link.symlink_to(shared)
    left = shared.parent / f".oracle.json.{socket.gethostname()}.{_ended_pid()}-abcd1234.tmp"
    left.write_text("{")
    atomic.write_json(link, {"trial": 4}, remove_ended=True)
    assert json.loads(shared.read_text()) == {"trial": 4} and link.is_symlink()
    assert sorted(shared.parent.iterdir()) == [shared]


def test_a_folder_that_refuses_new_files_is_an_error_naming_the_file(tmp_path, monkeypatch):
    """A read-only folder (another user's, a read-only mount) refuses the temporary file: the error named only the
    temporary name, .labels.txt.vm.4242-1f2e3d4c.tmp, which the user never asked for."""
    locked = tmp_path / "shared"
    locked.mkdir()
    real_open = os.open

    def refusing_open(name, flags, mode=0o777, **kwargs):  # root writes into a 0o555 folder: refuse as it would
        if Path(name).parent == locked and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", name)
        return real_open(name, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(PermissionError) as refused:
        atomic.write_text(locked / "labels.txt", "dog\n")
    assert str(refused.value) == (f"[Errno 13] cannot write {locked / 'labels.txt'}: Permission denied for a new "
                                  f"file in its folder {locked} (the file is written beside itself, then renamed)")
    assert sorted(locked.iterdir()) == []
