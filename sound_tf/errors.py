"""The package's exception types.

Every error a user can cause derives from :class:`SoundTFError`, so a caller can catch one type.
Messages carry the offending value and, where there is one, the file name. :func:`is_whole` is the one
whole-number test the argument checks share (an ``int`` or NumPy integer, never a bool).
This module imports nothing heavy: the on-device runner and the server reuse it.
"""

from __future__ import annotations

import errno
import numbers
import os
import sys
from typing import Callable


class SoundTFError(Exception):
    """Base class of every error sound_tf raises on purpose."""


class ConfigError(SoundTFError, ValueError):
    """A configuration value, recipe or flag is invalid."""


class AudioError(SoundTFError):
    """An audio file cannot be read or is not usable.

    Parameters
    ----------
    path : str
        The file that failed.
    reason : str
        What is wrong with it, in words a user can act on.
    """

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DatasetError(SoundTFError):
    """A dataset folder, manifest or split is invalid."""


def is_whole(value: object) -> bool:
    """Whether ``value`` is a whole number as an argument: a Python ``int`` or a NumPy integer (any
    :class:`numbers.Integral`), never ``True`` or ``False``.

    ``bool`` is a subclass of ``int``, so ``isinstance(True, int)`` let ``True`` pass as 1; ``numpy.bool_``
    is not integral. A float (``2.0``), text (``"2"``) and an array (``np.array(2)``) are not whole
    numbers. A check that keeps the value, or hands it to code that needs a real ``int`` (JSON, ``range``,
    KerasTuner), converts it with ``int(value)`` once this test passed; its range check stays its own.

    Parameters
    ----------
    value : object
        The argument to test.

    Returns
    -------
    bool
        ``True`` for an ``int`` or NumPy integer that is not a bool.

    Examples
    --------
    >>> import numpy as np
    >>> [is_whole(v) for v in (3, np.int64(3), np.uint8(3), True, np.bool_(True), 3.0, "3", np.array(3))]
    [True, True, True, False, False, False, False, False]
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


_FULL_OR_READ_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "Read-only file system")


def run_cli(action: Callable[[], int | None], *, exit_codes: dict[type[SoundTFError], int] | None = None) -> int:
    """Run a command's work and return its exit code: the code ``action`` returns (``None`` is 0), or
    ``error: <message>`` on stderr and a code.

    A :class:`SoundTFError` exits with 2 unless ``exit_codes`` maps its type (or a base class listed
    first) to another code. So does an ``OSError`` about a named file (an ``--out`` that is a file, a
    cache folder that cannot be created): ``error: <file>: <what the system said>``, and one about a full
    or read-only disk without a file name. A stdout whose reader went away (``| head``) returns 141 quietly
    (:func:`stdout_closed`). Ctrl-C (``KeyboardInterrupt``) prints one line and returns 130.
    Anything else is a bug and propagates with its traceback.
    """
    try:
        code = action()
        sys.stdout.flush()  # here, not at exit: a reader gone by then is a BrokenPipeError caught below
    except KeyboardInterrupt:  # Ctrl-C: a stop the user asked for, not a bug with a traceback
        print("interrupted (Ctrl-C); finished work is kept (train, crossval and tune resume from it "
              "when the same command runs again)", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C
    except SoundTFError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return next((code for kind, code in (exit_codes or {}).items() if isinstance(exc, kind)), 2)
    except BrokenPipeError:  # stdout's reader went away (`| head`): not a bug with a traceback
        return stdout_closed()
    except OSError as exc:
        if exc.filename is not None:
            print(f"error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        if exc.errno not in _FULL_OR_READ_ONLY and _full_disk_text(exc) is None:
            raise
        _print_full_disk(exc.strerror or str(exc))
        return 2
    except Exception as exc:  # TensorFlow's own, e.g. ResourceExhaustedError from a SavedModel write
        reason = _full_disk_text(exc) if type(exc).__module__.startswith("tensorflow") else None
        if reason is None:
            raise
        _print_full_disk(reason)
        return 2
    return 0 if code is None else int(code)


def stdout_closed() -> int:
    """What a command does when the reader of its stdout went away (``... --json | head``): stdout is
    pointed at ``/dev/null``, so the interpreter's last flush does not print a second ``BrokenPipeError``,
    and the code is 141 (128 + SIGPIPE), what a shell reports for a command a closed pipe stopped."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor (pytest's capture)
        pass
    return 141


def _full_disk_text(exc: BaseException) -> str | None:
    """Which of :data:`_FULL_TEXTS` an error's message holds (h5py, libsndfile and TensorFlow raise a full
    or read-only disk without an ``errno`` or a file name)."""
    return next((text for text in _FULL_TEXTS if text in str(exc)), None)


def _print_full_disk(reason: str) -> None:
    print(f"error: {reason}: a file could not be written (the error names none); free some space or choose "
          f"another folder, then run the same command again", file=sys.stderr)
