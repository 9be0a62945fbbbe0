"""One process per run folder: an advisory lock that the operating system drops with its process.

Two commands started on the same folder (or, without ``--out``, on the same resumable run) used to write
into one folder at once: the second one resumed a run still training and crashed on the first one's
files. :func:`claim_folder` takes ``<folder>/.lock`` with ``flock``; a process that ends, even by
SIGKILL, releases it at once, so a killed run resumes without clean-up. Locks are held until the process
exits. Without ``fcntl`` (Windows) nothing is locked.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_FILE = ".lock"
_HELD: dict[str, int] = {}  # resolved folder -> open descriptor holding its lock


def claim_folder(folder: str | os.PathLike) -> str | None:
    """Lock ``folder`` (created if missing) for this process; ``None`` on success, else who holds it.

    Claiming a folder this process already holds succeeds again.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str(folder.resolve())
    if fcntl is None or key in _HELD:
        return None
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
        finally:
            os.close(fd)
        return holder
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    _HELD[key] = fd
    return None


def holder_of(folder: str | os.PathLike) -> str | None:
    """Who holds ``folder``'s lock (``None``: nobody else; this process's own locks do not count)."""
    folder = Path(folder)
    if fcntl is None or not (folder / LOCK_FILE).is_file() or str(folder.resolve()) in _HELD:
        return None
    fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)

