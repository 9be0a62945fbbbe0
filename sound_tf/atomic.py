"""Files written whole or not at all: a kill, a power cut or a full disk never leaves half a file.

Every file a later command or a resumed run reads (``config.json``, ``run_state.json``, ``split.csv``, the
evaluation CSVs and figures, a search's JSON state, ``labels.txt`` ...) is written here: into a temporary
file beside it, flushed to the disk (``fsync``), then renamed over it with :func:`os.replace`, which
replaces the old file as a whole. Until the rename the previous file, if any, is untouched; an exception
deletes the temporary file and passes on.

The temporary file is named ``.<name>.<host>.<pid>-<random>.tmp``: hidden, not ending in the real file's
suffix, so nothing listing the folder takes it for a real file, and recognised as the leftover of an
atomic write by :func:`sound_tf.locks.abandoned_temporary`. A writer that insists on a suffix (Keras's
``save_weights`` wants ``.weights.h5``) gets it after ``.tmp``, taken from the real file's name
(``keep_suffix``). A process killed before its rename leaves it; its name says which process of which host
wrote it (:func:`remove_leftovers` for one file's, :func:`remove_leftovers_in` for a whole folder's).

Only the standard library is imported: every module may use this one (``audio``, ``config`` and ``lite``
never import TensorFlow).

>>> import json, tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "state.json"
>>> _ = write_json(path, {"epoch": 3})
>>> json.loads(path.read_text())
{'epoch': 3}
>>> sorted(p.name for p in path.parent.iterdir())
['state.json']
"""

from __future__ import annotations

import contextlib
import csv
import errno
import glob
import json
import os
import re
import secrets
import shutil
import socket
import stat
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence

__all__ = ["check_room", "copy_file", "remove_leftovers", "remove_leftovers_in", "replaced_whole",
           "temporary_file_beside", "write_bytes", "write_csv", "write_json", "write_text", "write_with",
           "written_through"]

_NAME_MAX = 255  # bytes in one file name (ext4, XFS, APFS, NTFS)


def _owner_prefix(path: Path) -> str:
    """``.<name>.<host>.<pid>-``: the start of a temporary file's name for ``path``."""
    return f".{path.name}.{socket.gethostname()}.{os.getpid()}-"


def _checked_suffix(path: Path, keep_suffix: str) -> str:
    """``keep_suffix`` when ``path``'s name ends with it (after more than it), else a ``ValueError``."""
    if keep_suffix and (not keep_suffix.startswith(".") or not path.name.endswith(keep_suffix)
                        or path.name == keep_suffix):
        raise ValueError(f"keep_suffix must be a suffix of the file's name starting with '.': got "
                         f"{keep_suffix!r} for {path}")
    return keep_suffix


def written_through(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: ``path``, or the file a symbolic link there points to.

    ``open(path, "w")`` writes through a link; renamed onto the link itself, a new file would replace it (a
    ``split.csv`` linked to a shared one stopped being shared). A link to a missing file is written through
    too (the file is made); links that lead round in a loop are an ``OSError`` naming ``path``, as ``open()``
    raises, where the rename replaced the link.
    """
    path = Path(path)
    if not path.is_symlink():
        return path
    try:
        return Path(os.path.realpath(path, strict=True))
    except FileNotFoundError:  # a link to a file not made yet (or into a missing folder: refused when written)
        return Path(os.path.realpath(path))
    except OSError as exc:  # ELOOP
        raise OSError(exc.errno, f"symbolic links lead round in a loop ({exc.strerror})", str(path)) from None


def _kept_mode(path: Path) -> int | None:
    """The permission bits of the file at ``path``, which a rewrite keeps (as ``open(path, "w")`` does); ``None``
    when there is none (a new file gets the mode ``open()`` gives it under the umask of the moment)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return stat.S_IMODE(found.st_mode) if stat.S_ISREG(found.st_mode) else None


def _cut_to_fit(name: str, limit_bytes: int) -> str:
    """``name``, its last characters left off until it takes at most ``limit_bytes`` bytes on disk."""
    while len(os.fsencode(name)) > limit_bytes:
        name = name[:-1]
    return name


def temporary_file_beside(path: str | os.PathLike, *, keep_suffix: str = "") -> tuple[int, str]:
    """A new empty file in ``path``'s folder (same file system, so a rename onto ``path`` is atomic).

    Returns ``(descriptor, name)``, as :func:`tempfile.mkstemp`, but with the mode ``open()`` would leave at
    ``path``: an existing file's own, else ``0o666`` less the umask. (mkstemp's 0600, renamed into place, made a
    decode cache or a split file shared with other users (``SOUND_TF_CACHE``, ``data.split_file``) unreadable
    to them.) A name too long to carry the host and process (a file name near the 255-byte limit) is
    ``.<name>.<random>.tmp``, the name cut short as far as needed (a name of 242 to 255 bytes: no sweep
    recognises such a leftover, which stays). ``keep_suffix``, an ending of ``path``'s name (``.weights.h5``),
    follows ``.tmp``, for a writer that refuses a name without it.
    """
    path = Path(path)
    suffix = ".tmp" + _checked_suffix(path, keep_suffix)
    prefix = _owner_prefix(path)
    if len(os.fsencode(prefix + suffix)) + len("12345678") > _NAME_MAX:
        prefix = f".{_cut_to_fit(path.name, _NAME_MAX - len(os.fsencode(suffix)) - len('.12345678.'))}."
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    mode = _kept_mode(path)
    for _ in range(100):
        name = str(path.parent / f"{prefix}{secrets.token_hex(4)}{suffix}")
        try:
            fd = os.open(name, flags, 0o666)  # the kernel applies the umask, as for open()
        except FileExistsError:
            continue
        except (FileNotFoundError, PermissionError) as exc:  # name the file, not the temporary one
            raise type(exc)(exc.errno, f"cannot write {path}: {exc.strerror} for a new file in its folder "
                                       f"{path.parent} (the file is written beside itself, then renamed)") from exc
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        return fd, name
    raise FileExistsError(f"{path.parent}: no free temporary name for {path.name} in 100 tries")


@contextlib.contextmanager
def replaced_whole(path: str | os.PathLike, mode: str = "wb", *, durable: bool = True,
                   **open_kwargs: Any) -> Iterator[IO[Any]]:
    """A handle on a temporary file beside ``path`` (:func:`temporary_file_beside`), renamed over ``path`` when
    the block ends and deleted when it raises: a kill or an error never leaves half a file at ``path``.

    ``mode`` and ``open_kwargs`` go to :func:`os.fdopen` (``"w", encoding="utf-8", newline=""`` for a CSV).
    ``durable``: the data reaches the disk (``fsync``) before the rename, so a power cut cannot leave the
    new name on an empty or cut-short file; only a file whose reader checks it whole may skip it.
    """
    path = written_through(path)
    fd, tmp_name = temporary_file_beside(path)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole (parent folders are made); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_whole(path, "wb") as handle:
        handle.write(data)
    return path


def write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` whole, its line ends as they are (``newline=""``); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_whole(path, "w", encoding=encoding, newline="") as handle:
        handle.write(text)
    return path


def write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 2,
               default: Callable[[Any], Any] | None = None, allow_nan: bool = True,
               remove_ended: bool = False) -> Path:
    """Write ``data`` as JSON (``indent`` spaces, a final line break) to ``path`` whole; returns ``path``.

    ``default`` and ``allow_nan`` go to :func:`json.dumps`, which runs before anything is written (data it
    refuses leaves the previous file). ``remove_ended``: then delete the temporary files of this name that
    ended processes of this host left (:func:`remove_leftovers`), for a file rewritten again and again in a
    folder shared by several processes (a search's ``oracle.json``).
    """
    text = json.dumps(data, indent=indent, default=default, allow_nan=allow_nan) + "\n"
    path = write_text(path, text)
    if remove_ended:
        remove_leftovers(written_through(path))
    return path


def write_csv(path: str | os.PathLike, header: Sequence[Any], rows: Iterable[Sequence[Any]], *,
              lineterminator: str = "\r\n") -> Path:
    """Write ``header`` then ``rows`` with :func:`csv.writer` to ``path`` whole; returns ``path``.

    ``lineterminator``: ``csv``'s own ``"\\r\\n"`` by default, ``"\\n"`` for the files that always had it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replaced_whole(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator=lineterminator)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def check_room(path: str | os.PathLike, needs_bytes: int) -> None:
    """An ``OSError`` (``ENOSPC``, naming ``path``) unless ``path``'s folder has ``needs_bytes`` free.

    For writers that cannot fail cleanly when the disk fills under them: h5py (Keras's weights files)
    ends the process with a segmentation fault when a write fails, in its ``File.close``.
    """
    free = shutil.disk_usage(Path(path).parent).free
    if free < needs_bytes:
        raise OSError(errno.ENOSPC, f"No space left on device: {free:,} bytes free there, about {needs_bytes:,} "
                                    f"needed to write it; free some space and run the same command again",
                      str(path))


def write_with(path: str | os.PathLike, write: Callable[[Path], Any], *, keep_suffix: str = "",
               needs_bytes: int = 0) -> Path:
    """Let ``write`` write a file to a temporary path beside ``path``, then put it in place whole.

    For writers that take a file name: ``write_with(png, lambda tmp: fig.savefig(tmp, format="png"))``.
    The temporary path ends in ``.tmp``, so a writer that picks the format from the suffix must be told it;
    one that insists on a suffix gets it after ``.tmp`` with ``keep_suffix`` (an ending of ``path``'s name:
    ``write_with(best, model.save_weights, keep_suffix=".weights.h5")``). With ``needs_bytes``, a folder
    with less free space is refused first (:func:`check_room`). Returns ``path``.
    """
    given = Path(path)
    path = written_through(given)
    path.parent.mkdir(parents=True, exist_ok=True)
    if needs_bytes:
        check_room(path, needs_bytes)
    mode = _kept_mode(path)
    fd, tmp_name = temporary_file_beside(path, keep_suffix=keep_suffix)
    os.close(fd)
    try:
        write(Path(tmp_name))
        if mode is not None:  # a writer that made its file anew (h5py) gave it the umask's mode
            os.chmod(tmp_name, mode)
        with open(tmp_name, "rb") as handle:  # the writer may have replaced the file: sync what is there now
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return given


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Copy ``source``'s bytes to ``target`` whole (a kill never leaves half a copy); returns ``target``."""
    target = Path(target)
    with replaced_whole(target, "wb") as handle, open(source, "rb") as original:
        shutil.copyfileobj(original, handle)
    return target


def _owner_of(name: str, host: str) -> int | None:
    """The pid in a temporary file's ``name`` (``.<name>.<host>.<pid>[-<random>].tmp[<kept suffix>]``) when it
    is one of ``host``'s, else ``None``: another host's, no temporary file of sound_tf's, or one naming no owner."""
    found = re.fullmatch(rf"\.(.+)\.{re.escape(host)}\.(\d+)(?:-[^.]*)?\.tmp((?:\.[^.]+)*)", name)
    if found is None or not found[1].endswith(found[3]):  # a kept suffix is an ending of the real file's name
        return None
    return int(found[2])


def _ended(pid: int) -> bool:
    """Whether process ``pid`` of this host, not this one, has ended."""
    from .locks import process_alive

    return pid != os.getpid() and not process_alive(pid)


def _unlink_quietly(path: Path) -> bool:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        return False
    return True


def remove_leftovers(path: str | os.PathLike) -> None:
    """Delete the temporary files of ``path`` that ended processes of this host left beside it.

    Their names say whose they are (``.<name>.<host>.<pid>-<random>.tmp``, or ``.<name>.<host>.<pid>.tmp``
    as sound_tf named them before): those of another host, or of a process still running, may be being
    written and stay. Errors are ignored: a leftover is not worth failing the write that came before.
    """
    path = Path(path)
    host = socket.gethostname()
    prefix = f".{path.name}.{host}."
    try:
        found = list(path.parent.glob(f"{glob.escape(prefix)}*.tmp*"))
    except OSError:
        return
    for left in found:
        pid = _owner_of(left.name, host)
        if pid is not None and _ended(pid):
            _unlink_quietly(left)


#: A temporary file's name that names no owner: ``.<name>.tmp``, or ``.<name>.<random>.tmp`` (sound_tf before
#: names carried the host and process, and a name too long to carry them), its real name kept after ``.tmp``.
_OWNERLESS = re.compile(r"\.(.+?)(?:\.[a-z0-9_]{8})?\.tmp((?:\.[^.]+)*)")
#: The files that earlier versions wrote through a temporary file naming no owner, in a run, cross-validation or
#: search folder (trainer's, crossval's and tune's state, the search's trials.csv, datasets' split and skipped
#: lists, also copied into a search's best_run). Any other such name may be a file of the user's (.notes.tmp).
_EARLIER_OWNERLESS = frozenset({"run_state.json", "crossval_state.json", "trials.csv", "split.csv", "skipped.csv"})
#: The end of a name that carries an owner, of any host: ``.<pid>[-<random>].tmp[<kept suffix>]``.
_OWNED = re.compile(r".*\.\d+(?:-[^.]*)?\.tmp(?:\.[^.]+)*")


def remove_leftovers_in(folder: str | os.PathLike, *, held: bool = False) -> list[Path]:
    """Delete every temporary file an atomic write left in ``folder`` and its subfolders when its process
    was killed before the rename, whatever file it was writing; returns what was deleted.

    A temporary file whose name says it is of a process of this host that has ended goes. One of a process
    still running (a search's workers write into their chief's folder), or of another host (a folder on a
    network file system), may be being written and stays. ``held``: the caller holds ``folder``'s lock
    (:func:`sound_tf.locks.claim_folder`), so no other sound_tf process writes in it, and a temporary file
    naming no owner goes too when earlier versions wrote such a name (``.split.csv.tmp``,
    ``.split.csv.<random>.tmp``, ``.run_state.json.tmp``: :data:`_EARLIER_OWNERLESS`); a hidden ``.notes.tmp``
    or ``logs/.mydata.tmp`` is a file of the user's, and stays. Symbolic links are neither followed nor deleted;
    a file that cannot be deleted stays.
    """
    host = socket.gethostname()
    removed: list[Path] = []
    for parent, _, names in os.walk(folder):
        for name in names:
            if not name.startswith(".") or ".tmp" not in name:
                continue
            left = Path(parent) / name
            pid = _owner_of(name, host)
            if pid is not None:
                gone = _ended(pid)
            else:
                ownerless = _OWNERLESS.fullmatch(name)
                gone = (held and ownerless is not None and ownerless[1] in _EARLIER_OWNERLESS and not ownerless[2]
                        and _OWNED.fullmatch(name) is None)
            if gone and not left.is_symlink() and left.is_file() and _unlink_quietly(left):
                removed.append(left)
    return removed
