"""One process per run folder: an advisory lock that the operating system drops with its process.

Two commands started on the same folder (or, without ``--out``, on the same resumable run) used to write
into one folder at once: the second one resumed a run still training and crashed on the first one's
files. :func:`claim_folder` takes ``<folder>/.lock`` with ``flock``, and :func:`release_folder` gives it
back when the work is done; a process that ends, even by SIGKILL, releases it too, so a killed run
resumes without clean-up. The lock file itself is never deleted (a folder emptied for ``--overwrite``
keeps it): a new file would be a second, unrelated lock. Claims count, so nested work in one process
(a cross-validation and its command line) claims and releases the same folder. On a network file system
``flock`` may not lock across machines; without ``fcntl`` (Windows) nothing is locked.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Mapping

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_FILE = ".lock"
#: Set by a command to its pid in the environment of a child that must not outlive it (see end_with_parent).
PARENT_ENV = "SOUND_TF_END_WITH_PID"
#: Set by a command in the environment of a child it hands its lock on a folder: ``<descriptor>:<lock file>``
#: (see inherit_lock).
INHERITED_ENV = "SOUND_TF_INHERITED_LOCK"
_HELD: dict[str, list[int]] = {}  # lock file (_key) -> [open descriptor holding it, claims]


@dataclass(frozen=True)
class Wording:
    """How a message names the output folder, what empties it, what reads the inputs, what gives the settings and
    the other flags: a command's flags (:data:`COMMAND`), or the arguments of the Python function that was called.

    Attributes
    ----------
    out : str
        The output folder: ``--out``, or the argument (``out_dir``).
    overwrite : str
        What empties it first: ``--overwrite``, or ``overwrite=True``.
    reader : str
        What reads the inputs: ``this command``, or the function (``run_crossval``).
    settings : str
        What gives the settings: the command's ``flags``, or the function's ``config``.
    arguments : mapping of str to str
        A Python caller's name for each other flag a message names: the argument (``--k``: ``k``), or the
        setting the flag sets (``--data``: ``data.path``). A flag not in it is named as it is (a command's).
    """

    out: str = "--out"
    overwrite: str = "--overwrite"
    reader: str = "this command"
    settings: str = "flags"
    arguments: Mapping[str, str] = field(default_factory=dict)

    def flag(self, flag: str) -> str:
        """``flag`` (``--folds``) in these words: the flag, or its argument (``folds``)."""
        return self.arguments.get(flag, flag)

    def given(self, flag: str, value: Any) -> str:
        """``flag`` given ``value`` in these words: ``--k 3``, or ``k=3``."""
        return f"{self.arguments[flag]}={value}" if flag in self.arguments else f"{flag} {value}"


#: The words of a command line.
COMMAND = Wording()


def claim_folder(folder: str | os.PathLike) -> str | None:
    """Lock ``folder`` (created if missing) for this process; ``None`` on success, else who holds it.

    The attempt does not wait. A folder this process already holds is claimed once more; give each
    successful claim back with :func:`release_folder`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return claim_file(folder / LOCK_FILE)


def claim_file(lock: str | os.PathLike) -> str | None:
    """Lock the file ``lock`` (created if missing; its folder must exist) for this process: :func:`claim_folder`
    for a lock that is not a folder's ``.lock``, such as the one beside a folder that is replaced as a whole
    (an export's bundle). Give each successful claim back with :func:`release_file`; a file removed by its
    holder as it let go, between this process's opening it and locking it, is not the lock any more: the claim
    opens the path again."""
    lock = Path(lock)
    if fcntl is None:
        return None
    key = _key(lock)
    held, claims = _HELD.get(key), 0
    if held is not None:
        try:
            same = _is_file_at(held[0], lock)
        except FileNotFoundError:
            same = False
        if same:
            held[1] += 1
            return None
        # Its lock file was deleted: that lock guards nothing any more. The new one carries the claims not
        # yet given back, so nested work still holds the folder until its outermost release.
        fd, claims = _HELD.pop(key)
        os.close(fd)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip()
            finally:
                os.close(fd)
            return holder or "another process"
        try:  # still the file at that path: not one its holder removed as it let go (release_file's remove)
            if _is_file_at(fd, lock):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    _HELD[key] = [fd, claims + 1]
    return None


def _is_file_at(fd: int, path: str | os.PathLike) -> bool:
    """Whether the open descriptor ``fd`` is the file now at ``path``: the same inode on the same device (an inode
    number alone may be another file system's). Raises ``OSError`` (``FileNotFoundError``) when ``path`` is gone."""
    return os.path.samestat(os.fstat(fd), os.stat(path))


def _key(lock: Path) -> str:
    """What :data:`_HELD` knows the lock file ``lock`` by: its path, its folder's links resolved."""
    return str(lock.parent.resolve() / lock.name)


def inherit_lock() -> None:
    """In a child given its command's lock on a folder (:func:`lock_descriptor` in ``pass_fds``, and
    :data:`INHERITED_ENV` naming it): count it as this process's claim, so the child's own claim of that folder
    succeeds where a new descriptor would find it held (by its own command). A descriptor that is not that
    folder's lock file any more is left alone. The variable is taken out of the environment (the child's
    children hold nothing)."""
    given = os.environ.pop(INHERITED_ENV, None)
    if given is None or fcntl is None:
        return
    number, _, path = given.partition(":")
    try:
        fd, lock = int(number), Path(path)
        if not _is_file_at(fd, lock):
            return
    except (ValueError, OSError):
        return
    _HELD.setdefault(_key(lock), [fd, 0])[1] += 1


def inherited_env(folder: str | os.PathLike) -> dict[str, str]:
    """The environment entry that hands a child (given :func:`lock_descriptor` in ``pass_fds``) this process's
    lock on ``folder`` (see :func:`inherit_lock`); none when this process holds none."""
    fd = lock_descriptor(folder)
    return {} if fd is None else {INHERITED_ENV: f"{fd}:{_key(Path(folder) / LOCK_FILE)}"}


def claim_or_refuse(folder: str | os.PathLike, activity: str, *, wording: Wording = COMMAND) -> None:
    """:func:`claim_folder`, or a ``ConfigError`` naming who holds ``folder`` and what it is doing there (and the
    output folder to choose instead in ``wording``: ``--out``, or a Python caller's ``out_dir``)."""
    from .errors import ConfigError

    holder = claim_folder(folder)
    if holder:
        raise ConfigError(f"{folder}: in use by {holder}, which is {activity}; wait for it to end, or choose "
                          f"another {wording.out}")


@contextlib.contextmanager
def claimed(folder: str | os.PathLike, activity: str, *, wording: Wording = COMMAND) -> Iterator[None]:
    """:func:`claim_or_refuse` ``folder`` for the block (its message in ``wording``), given back when it ends
    however it ends. A folder the claim created is removed again when the block fails while it holds nothing
    but the lock file: the work stopped before writing anything (a missing data folder, a bad setting), and
    a caller that tries again and again would otherwise collect folders holding only ``.lock``."""
    created = not os.path.lexists(folder)
    claim_or_refuse(folder, activity, wording=wording)
    try:
        yield
    except BaseException:
        if created:
            remove_if_holding_only(folder)
        raise
    finally:
        release_folder(folder)


def remove_if_holding_only(folder: str | os.PathLike, names: Collection[str] = (LOCK_FILE,), *,
                           before_removal: Callable[[], None] | None = None) -> None:
    """Remove a folder this process created when it holds nothing but files named in ``names`` (default: only
    :data:`LOCK_FILE`): the work in it stopped before keeping anything, and a command tried again and again
    would otherwise collect such folders. ``before_removal`` runs first, and only when the folder goes (a
    command closes its log file there). A folder that cannot be listed or removed stays, as it was."""
    folder = Path(folder)
    try:
        if not all(path.name in names for path in folder.iterdir()):
            return
    except OSError:
        return
    if before_removal is not None:
        before_removal()
    shutil.rmtree(folder, ignore_errors=True)


def lock_descriptor(folder: str | os.PathLike) -> int | None:
    """The open descriptor holding this process's lock on ``folder`` (``None`` when it holds none).

    A child process given it (``subprocess``'s ``pass_fds``) holds the lock with this one, and on after
    it: a command killed while its child still works on the folder leaves the folder locked.
    """
    held = _HELD.get(_key(Path(folder) / LOCK_FILE))
    return None if held is None else held[0]


def release_folder(folder: str | os.PathLike) -> None:
    """Give back one claim of ``folder``; the lock goes with the last one (the file stays)."""
    release_file(Path(folder) / LOCK_FILE)


def release_file(lock: str | os.PathLike, *, remove: bool = False) -> None:
    """Give back one claim of the lock file ``lock`` (:func:`claim_file`); the lock goes with the last one, and with
    ``remove`` the file too (deleted while still locked: a claim that opened it meanwhile sees it gone and makes
    a new one), for a lock beside a folder, where it would be left over."""
    key = _key(Path(lock))
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] <= 0:
        fd = _HELD.pop(key)[0]
        if remove:
            with contextlib.suppress(OSError):
                if _is_file_at(fd, lock):
                    os.unlink(lock)
        os.close(fd)


def in_use(folder: str | os.PathLike) -> bool | None:
    """Whether a command works in ``folder`` now: its :data:`LOCK_FILE` is held, which train, crossval and export
    do while they run there and the operating system ends with their process, SIGKILL too (``python -m
    sound_tf.compare`` tells a run still training from a stopped one by it). ``None`` when it cannot be told (no
    ``fcntl``, or the file cannot be opened); a folder without the file is not held. The test takes a shared lock
    and gives it back at once, without waiting: a command that claims the folder in that instant is refused as if
    the folder were in use."""
    if fcntl is None:
        return None
    try:
        fd = os.open(Path(folder) / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def holds(folder: str | os.PathLike, inner: str | os.PathLike) -> bool:
    """Whether ``folder`` is ``inner`` or one of its parents (after resolving links): replacing ``folder``
    would replace ``inner`` too."""
    folder, inner = Path(folder).resolve(), Path(inner).resolve()
    return folder == inner or folder in inner.parents


def refuse_emptying(folder: str | os.PathLike, inputs: dict[str, str], *, wording: Wording = COMMAND) -> None:
    """Raise before ``--overwrite`` empties ``folder`` when it holds one of the command's ``inputs`` (key -> path),
    e.g. ``data.split_file=runs/r/split.csv`` with ``--out runs/r``: the command would delete what it reads.
    The message names the folder and the overwrite in ``wording`` (a Python caller's: ``out_dir``,
    ``overwrite=True``)."""
    from .errors import ConfigError

    for key, path in inputs.items():
        if holds(folder, Path(path).expanduser()):
            raise ConfigError(f"{folder}: {wording.overwrite} would empty this folder, and {key}={path} is in it "
                              f"({wording.reader} reads it); copy it elsewhere first, or choose another {wording.out}")


def refuse_foreign_folder(folder: str | os.PathLike, *, marker: str, what: str, startup: tuple[str, ...] = (),
                          overwrite_flag: bool = True, remedy: str | None = None,
                          not_a_folder: str = "--out names a folder to create or reuse") -> None:
    """Raise unless ``folder`` may take a command's output: absent, empty, or an earlier ``what`` of ours.

    A command writes into ``--out``, and ``--overwrite`` empties it first, so a folder of the user's own
    (or the dataset) must be refused before anything is written or deleted.

    Parameters
    ----------
    folder : path-like
    marker : str
        The file that command writes early into every folder of its own (``run_state.json``, ...).
    what : str
        What such a folder holds, for the message (``"training run"``).
    startup : tuple of str
        What the command writes before ``marker``: a folder holding only these (a command stopped that
        early) is its own too. The lock file always is, and so is the temporary file an atomic write of
        ``marker`` or of a startup file leaves when the command is killed before its rename
        (:func:`abandoned_temporary`).
    overwrite_flag : bool
        Whether the command has ``--overwrite`` (the message says it empties the folder).
    remedy : str, optional
        What the message says after naming the files, for a caller that is not a command with ``--out``
        (:func:`sound_tf.trainer.train_run`); by default what is written, and to give another ``--out``.
    not_a_folder : str
        What the message says after "exists and is not a folder; " when ``folder`` is a file (or a dangling
        link): by default that ``--out`` names a folder.

    Raises
    ------
    ConfigError
        ``folder`` is a file, or holds other files.
    """
    from .errors import ConfigError

    startup = _names("startup", startup)
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder; {not_a_folder}")
    if (folder / marker).is_file():  # an earlier one of ours: its own files, whatever they are
        return
    own = (marker, *startup)
    foreign = sorted(p for p in folder.iterdir() if p.name not in (LOCK_FILE, *startup)
                     and not abandoned_temporary(p, own))
    if foreign:
        shown = ", ".join(p.name + ("/" if p.is_dir() else "") for p in foreign[:5])
        shown += f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        article = "an" if what[:1] in "aeiou" else "a"
        emptied = ", and --overwrite empties it first" if overwrite_flag else ""
        remedy = remedy or (f"the output is written into it{emptied}, so it must be new, empty or an earlier "
                            f"{what} folder: give another --out, or move those files away")
        raise ConfigError(f"{folder}: not {article} {what} folder (it holds {shown}, and no {marker}); {remedy}")


def abandoned_temporary(path: str | os.PathLike, names: tuple[str, ...]) -> bool:
    """Whether ``path`` is the temporary file of an atomic write of one of ``names``: ``.<name>.tmp`` or
    ``.<name>.<anything>.tmp`` (every atomic write of sound_tf names its file so; one that keeps an ending of
    the name, ``.<name>.<anything>.tmp.weights.h5``, too), a regular file.

    A command killed between writing such a file and renaming it into place leaves it beside the file it
    was writing. In a folder whose ``run_state.json`` (``crossval_state.json``, ``search.json``) was that
    file, or was not written yet (``split.csv`` being written), it was taken for a file of the user's own,
    and every rerun of the command refused the folder.

    Parameters
    ----------
    path : path-like
        A file in the folder.
    names : tuple of str
        The names of the files whose temporary files count.

    Returns
    -------
    bool
    """
    path = Path(path)
    name = path.name
    # after .tmp, the ending of the real name a writer insisted on (sound_tf.atomic's keep_suffix: .weights.h5)
    temporary = re.fullmatch(r"\..+\.tmp((?:\.[^.]+)*)", name)
    return (temporary is not None and path.is_file() and not path.is_symlink()
            and any((name == f".{own}.tmp{temporary[1]}" or name.startswith(f".{own}."))
                    and own.endswith(temporary[1]) for own in names))


def _names(argument: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` as a tuple of file names; a single name is refused (``keep="split.csv"`` was read as the names
    ``s``, ``p``, ``l`` ..., and split.csv was deleted)."""
    from .errors import ConfigError

    if (isinstance(names, (str, bytes, os.PathLike)) or not isinstance(names, (tuple, list, set, frozenset))
            or not all(isinstance(name, str) for name in names)):
        raise ConfigError(f"{argument} must be a tuple of file names, got {names!r}"
                          + (f"; for one name write {argument}=({names!r},)" if isinstance(names, str) else ""))
    return tuple(names)


def empty_folder(folder: str | os.PathLike, *, keep: tuple[str, ...] = ()) -> None:
    """Delete what ``folder`` holds except its lock file and the names in ``keep`` (``--overwrite``)."""
    keep = _names("keep", keep)
    for path in Path(folder).iterdir():
        if path.name in (LOCK_FILE, *keep):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (one of another user counts as running).

    ``pid`` 0 or below names no process (``kill`` would signal a process group, or every process, and
    answer True), so it is not running; ``pid`` must be a whole number (numpy integers too).
    """
    import operator

    from .errors import ConfigError

    try:
        if isinstance(pid, bool):
            raise TypeError
        pid = operator.index(pid)
    except TypeError:
        raise ConfigError(f"process_alive needs a process id (a whole number), got {pid!r}") from None
    if pid < 1:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # beyond the largest pid: no such process
        return False
    except PermissionError:
        return True
    return True


def end_with_parent() -> None:
    """In a child started with ``PARENT_ENV`` set to its command's pid (``train --export``'s export, which
    holds the run folder's lock too): end when that command ends, even by SIGKILL (Linux). A child left
    running on its own kept the folder locked, and the re-run that should export again was refused,
    naming the dead command's pid. Called by the child itself, not between fork and exec: the command is
    a multi-threaded TensorFlow process, where running Python in the forked child could deadlock."""
    expected = os.environ.pop(PARENT_ENV, None)
    if expected is None or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(expected):  # it ended before this process could ask
        raise SystemExit(128 + signal.SIGKILL)
