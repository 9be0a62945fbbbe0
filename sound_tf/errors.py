"""The package's exception types.

Every error a user can cause derives from :class:`SoundTFError`, so a caller can catch one type.
Messages carry the offending value and, where there is one, the file name. :func:`is_whole` is the one
whole-number test the argument checks share (an ``int`` or NumPy integer, never a bool); :func:`counted` says a
count with its noun, singular for one (``1 file``, ``2 files``). :func:`run_cli` runs a
command's work: its errors as one line, and a stop (Ctrl-C, SIGTERM, SIGHUP) as a clean unwinding with one line.
This module imports nothing heavy: the on-device runner and the server reuse it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import numbers
import os
import signal
import sys
import threading
from typing import Callable, Iterable, Iterator, Sequence


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


def counted(count: int, name: str, *, one: str | None = None) -> str:
    """``count`` and the plural ``name`` of what it counts, said as a user reads it: ``8 files``, ``0 files``,
    ``1 file``; its first plural word is made singular for one (``1 training example``, ``1 clip in the
    dataset``, ``1 silent file``), so a message never prints ``1 file(s)``.

    Parameters
    ----------
    count : int
        How many there are (a NumPy integer too).
    name : str
        The plural words, as they follow a count other than one: ``"files"``, ``"NaN or infinite sample values"``.
    one : str, optional
        The words for one where dropping the first word's ``s`` does not make them singular: an irregular
        plural (``counted(n, "classes", one="class")``) or a word ending in ``s`` before the plural one
        (``counted(n, "class folders", one="class folder")``).

    Returns
    -------
    str
        ``"<count> <words>"``.

    Examples
    --------
    >>> [counted(n, "files") for n in (0, 1, 2)]
    ['0 files', '1 file', '2 files']
    >>> counted(1, "audio files in the folder"), counted(1, "classes", one="class"), counted(3, "classes", one="class")
    ('1 audio file in the folder', '1 class', '3 classes')
    """
    if count == 1:
        if one is not None:
            return f"1 {one}"
        words = name.split(" ")
        for index, word in enumerate(words):
            if word.endswith("s"):
                words[index] = word[:-1]
                return f"1 {' '.join(words)}"
    return f"{count} {name}"


def and_list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` (``""`` for none): names in a message.

    >>> and_list(["a"]), and_list(["a", "b"]), and_list(["a", "b", "c"])
    ('a', 'a and b', 'a, b and c')
    """
    items = list(items)
    return f"{', '.join(items[:-1])} and {items[-1]}" if len(items) > 1 else "".join(items)


_FULL_OR_READ_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "Read-only file system")


#: The signals :func:`run_cli` turns into the unwinding a Ctrl-C gets: what ``kill PID``, ``timeout``, systemd,
#: Slurm's time limit, ``docker stop`` and Kubernetes send (SIGTERM), and a terminal closing (SIGHUP).
STOP_SIGNALS = ("SIGTERM", "SIGHUP")

#: What a stopped command says of its work, after what stopped it.
_KEPT = "finished work is kept (train, crossval and tune resume from it when the same command runs again)"


class Stopped(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) raised in the main thread, as Ctrl-C raises ``KeyboardInterrupt``.

    A subclass of it, so every clean-up that a Ctrl-C runs (``finally`` blocks, context managers, ``except
    KeyboardInterrupt``) runs for these too. ``signum`` is the signal's number.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)


def stop_signal(exc: KeyboardInterrupt) -> int:
    """The signal behind a stop: a :class:`Stopped`'s, else SIGINT (Ctrl-C)."""
    return exc.signum if isinstance(exc, Stopped) else int(signal.SIGINT)


def stop_line(exc: KeyboardInterrupt) -> str:
    """The one line a command stopped by ``exc`` prints (and writes in its log):
    ``interrupted (Ctrl-C); finished work is kept ...`` or ``stopped by SIGTERM; finished work is kept ...``."""
    signum = stop_signal(exc)
    if signum == signal.SIGINT:
        return f"interrupted (Ctrl-C); {_KEPT}"
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    return f"stopped by {name}; {_KEPT}"


def is_stop_code(code: int | None) -> bool:
    """Whether ``code`` is the exit code :func:`run_cli` gives a stopped command (130, 143, 129): that command
    printed its stop line already."""
    return code in {128 + int(getattr(signal, name)) for name in ("SIGINT", *STOP_SIGNALS) if hasattr(signal, name)}


@contextlib.contextmanager
def stop_signals_raised(names: tuple[str, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, each signal in ``names`` raises :class:`Stopped` in the main thread, as Ctrl-C raises
    ``KeyboardInterrupt``; the handlers that were there before are put back after it.

    Only the first such signal raises: another one while the block unwinds (``timeout`` and Slurm signal the
    whole process group, and ``train --export`` passes its SIGTERM on to its export child; a closing terminal
    may send SIGHUP twice) would cut short the very clean-up the first one started (SIGKILL still ends the
    process at once, and a Ctrl-C still interrupts). A signal that was ignored (``nohup`` ignores SIGHUP) stays
    ignored. Outside the main thread, where Python cannot set a handler, the block runs as it is. Installed only
    by :func:`run_cli`, never on import.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def stop(signum: int, frame: object) -> None:
        nonlocal raised
        if raised:
            return
        raised = True
        raise Stopped(signum)

    previous: dict[int, object] = {}
    try:
        for name in names:
            number = getattr(signal, name, None)
            if number is None or signal.getsignal(number) == signal.SIG_IGN:
                continue
            previous[number] = signal.signal(number, stop)
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def _report_stop(exc: KeyboardInterrupt, earlier: Iterable[logging.Handler] = ()) -> int:
    """Say that the command was stopped, on stderr (unless ``train --export``'s export child said it already: see
    :func:`sound_tf.train.call_child`) and in the command's log files (not the ``earlier`` ones, open before it
    began: another command's, run before it in the same process), and return 128 + the signal's number."""
    line = stop_line(exc)
    if not getattr(exc, "shown", False):
        with contextlib.suppress(OSError, ValueError):  # SIGHUP: the terminal may be gone
            print(line, file=sys.stderr)
    log_in_files(line, [handler for handler in _log_files() if handler not in earlier])
    return 128 + stop_signal(exc)


def _log_files() -> list[logging.Handler]:
    """The root logger's handlers that write log files (``FileHandler``)."""
    return [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.FileHandler)]


def log_in_files(line: str, handlers: Iterable[logging.Handler] | None = None) -> None:
    """Write ``line`` through ``handlers``, by default those of the root logger that write log files (a
    ``FileHandler``'s: ``train.log`` of ``train`` and ``crossval``, ``tune.log``), and nowhere else: a line shown on
    stderr already, which a user reading the log of a run that stopped should find at its end."""
    if handlers is None:
        handlers = _log_files()
    record = logging.getLogger("sound_tf").makeRecord("sound_tf", logging.WARNING, __file__, 0, line, None, None)
    for handler in handlers:
        with contextlib.suppress(OSError, ValueError):
            handler.handle(record)


def run_cli(action: Callable[[], int | None], *, exit_codes: dict[type[SoundTFError], int] | None = None,
            stop_signals: tuple[str, ...] = STOP_SIGNALS) -> int:
    """Run a command's work and return its exit code: the code ``action`` returns (``None`` is 0), or
    ``error: <message>`` on stderr and a code.

    A :class:`SoundTFError` exits with 2 unless ``exit_codes`` maps its type (or a base class listed
    first) to another code. So does an ``OSError`` about a named file (an ``--out`` that is a file, a
    cache folder that cannot be created): ``error: <file>: <what the system said>``, and one about a full
    or read-only disk without a file name. A stdout whose reader went away (``| head``) returns 141 quietly
    (:func:`stdout_closed`). Ctrl-C (``KeyboardInterrupt``) and, while ``action`` runs, the ``stop_signals``
    (SIGTERM, SIGHUP: :func:`stop_signals_raised`; ``()`` for a command that handles them itself, as the server
    does) unwind the work the same way (its ``finally`` blocks and context managers run), then print one line
    (``interrupted (Ctrl-C); ...``, ``stopped by SIGTERM; ...``), write it in the command's log files
    (:func:`log_in_files`) and return 128 + the signal's number (130, 143, 129), as a shell reports it.
    Anything else is a bug and propagates with its traceback.
    """
    earlier = _log_files()  # another command's, run before this one in the same process: not this one's to end
    with stop_signals_raised(stop_signals):
        try:
            code = action()
            sys.stdout.flush()  # here, not at exit: a reader gone by then is a BrokenPipeError caught below
        except KeyboardInterrupt as exc:  # Ctrl-C or a stop signal: a stop the user asked for, not a bug
            return _report_stop(exc, earlier)
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
