"""What TensorFlow writes to the console by itself, and how ``--quiet`` keeps it out.

TensorFlow's native libraries log from C++ straight to file descriptor 2, past Python's ``logging`` and
``sys.stderr``. ``TF_CPP_MIN_LOG_LEVEL=2`` (:func:`quiet_tensorflow`) stops most of their INFO and WARNING
lines, but only when it is set before TensorFlow is imported, and a few lines escape it: the oneDNN notice
each library writes when it loads (before absl's logging reads any setting), the TFLite runtime's
``INFO: Created TensorFlow Lite XNNPACK delegate``, and the converter's ``fully_quantize: ...`` line.
:func:`native_logs_held` points descriptor 2 at a pipe for the time of a command's work and passes on every
line but those (:func:`is_native_noise`): errors, tracebacks and Python's warnings still reach the terminal as
they are written. :func:`native_line` tells those lines apart (with their level), for the filter and for the
server, whose :func:`stderr_through` turns every line into JSON. This module imports nothing heavy (no
TensorFlow): it must run before TensorFlow does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import select
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence

#: An absl line of TensorFlow's or the TFLite runtime's native code: severity letter, date, time, thread, source.
#: ``I0000 00:00:1796440877.037388    6200 reader.cc:83] message``
_ABSL_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ ([^\s\]]+:\d+)\] ?(.*)", re.DOTALL)
_ABSL_LEVELS = {"I": "info", "W": "warning", "E": "error", "F": "critical"}
#: absl's notice that it logs before being set up (written once by each library that loads it): not a problem.
_ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
#: The TFLite runtime's own logger (``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``).
_TFLITE_LINE = re.compile(r"(INFO|WARNING|ERROR): (.*)", re.DOTALL)
#: The MLIR quantizer's settings line, printed by the converter at info level with no prefix.
_QUANTIZER_LINE = re.compile(r"fully_quantize: \d")
#: Native levels below this one are what ``--quiet`` leaves out; errors and fatal lines always pass.
QUIET_HIDES = ("info", "warning")


@dataclass(frozen=True)
class NativeLine:
    """A line of TensorFlow's or the TFLite runtime's native logging: its ``level`` (logging's name, lower
    case: ``info``, ``warning``, ``error`` or ``critical``), its ``message`` (the line without absl's prefix)
    and, for an absl line, its ``source`` (``port.cc:153``; else ``""``)."""

    level: str
    message: str
    source: str = ""


def native_line(line: str) -> NativeLine | None:
    """The native log line ``line`` is (its trailing newline ignored), or ``None`` for any other text.

    >>> native_line("W0000 00:00:1796440877.037000    6200 helpers.cc:364] Ignored output_format.")
    NativeLine(level='warning', message='Ignored output_format.', source='helpers.cc:364')
    >>> native_line("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.").level
    'info'
    >>> native_line("Traceback (most recent call last):") is None
    True
    """
    line = line.rstrip("\r\n")
    absl = _ABSL_LINE.match(line)
    if absl:
        return NativeLine(_ABSL_LEVELS[absl.group(1)], absl.group(3), absl.group(2))
    if line == _ABSL_NOTICE:
        return NativeLine("info", line)
    tflite = _TFLITE_LINE.match(line)
    if tflite:
        return NativeLine(tflite.group(1).lower(), tflite.group(2))
    if _QUANTIZER_LINE.match(line):
        return NativeLine("info", line)
    return None


def is_native_noise(line: str) -> bool:
    """Whether ``--quiet`` leaves ``line`` out: a native INFO or WARNING line (:func:`native_line`)."""
    native = native_line(line)
    return native is not None and native.level in QUIET_HIDES


#: How long the end of a held block waits for the lines still in the pipe (a child process of the command that
#: outlived it may hold the pipe open; its later lines are then still passed on, by a thread that is not waited for).
DRAIN_SECONDS = 10.0


def quiet_tensorflow() -> None:
    """Keep TensorFlow's native INFO and WARNING lines off (``TF_CPP_MIN_LOG_LEVEL=2``) unless the user set a
    level; it is read when TensorFlow is imported, so every CLI calls this first."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_requested(argv: Sequence[str]) -> bool:
    """Whether a command line holds ``--quiet`` (or an abbreviation argparse accepts), for a CLI module that
    imports TensorFlow before its ``main`` parses the arguments."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_known_args(list(argv))[0].quiet


def import_tensorflow(*, quiet: bool) -> None:
    """Import TensorFlow with :func:`quiet_tensorflow`'s setting, its start-up lines held when ``quiet``."""
    quiet_tensorflow()
    with native_logs_held(quiet):
        import tensorflow  # noqa: F401


class LineSink(Protocol):
    """What :func:`stderr_through` does with the lines written to file descriptor 2."""

    def line(self, line: bytes) -> bytes:
        """The bytes to write for one complete line (with its newline; the last one may lack it)."""

    def idle(self) -> bytes:
        """The bytes to write when no line came for :data:`IDLE_SECONDS` after some did, and at the end."""


#: How long :func:`stderr_through` waits for more lines before it calls its sink's ``idle``.
IDLE_SECONDS = 0.2
#: How long a SIGTERM that ends the process within :func:`stderr_through`'s block waits for the lines still in the
#: pipe before the process ends (a child of the command may hold the pipe open, as for :data:`DRAIN_SECONDS`).
SIGTERM_DRAIN_SECONDS = 1.0


class _DropNoise:
    """``--quiet``'s sink: every line that is not :func:`is_native_noise`, as it was written."""

    def line(self, line: bytes) -> bytes:
        return b"" if is_native_noise(line.decode("utf-8", "replace")) else line

    def idle(self) -> bytes:
        return b""


@contextlib.contextmanager
def native_logs_held(quiet: bool) -> Iterator[None]:
    """Within the block, leave TensorFlow's native INFO and WARNING lines (:func:`is_native_noise`) out of
    stderr when ``quiet``.

    File descriptor 2 (what C++ code, ``sys.stderr`` and child processes write to) is a pipe meanwhile; a
    thread passes each other line on to the real stderr as soon as it is complete, so an error line or a
    traceback is shown when it is written, and an exception leaving the block is reported by the caller
    after it, on the real stderr. Without ``quiet`` (or without a descriptor 2) the block runs as it is.
    """
    if not quiet:
        yield
        return
    quiet_tensorflow()
    with stderr_through(_DropNoise()):
        yield


@contextlib.contextmanager
def stderr_through(sink: LineSink) -> Iterator[None]:
    """Within the block, every line written to file descriptor 2 (by C++ code, ``sys.stderr`` or child
    processes started meanwhile) goes through ``sink`` on its way to the real stderr, in order.

    A thread reads the pipe that descriptor 2 is meanwhile and writes what ``sink`` makes of each line as soon
    as it is complete. At the end of the block descriptor 2 is given back and the thread writes the lines
    still in the pipe (waiting up to :data:`DRAIN_SECONDS`); a SIGTERM within it (when the signal had its default
    action) does the same, waiting up to :data:`SIGTERM_DRAIN_SECONDS`, before it ends the process as before.
    Without a descriptor 2 the block runs as it is.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()  # what Python has buffered belongs before the block
    try:
        original = os.dup(2)
    except OSError:  # no stderr to hold
        yield
        return
    read_end, write_end = os.pipe()
    forward_to = os.dup(original)  # the thread's own: it may outlive the block (see DRAIN_SECONDS)
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_pass_on, args=(read_end, forward_to, sink), name="sound_tf-stderr",
                              daemon=True)
    thread.start()

    def give_back() -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(original, 2)  # closes this process's last write end of the pipe: the thread reads to its end

    def end_by_sigterm(signum: int, frame: Any) -> None:
        # SIGTERM still ends the process by that signal, but after the lines in the pipe: uvicorn raises it again
        # once its server has shut down, and its last lines were lost with the thread that had still to write them
        give_back()
        thread.join(SIGTERM_DRAIN_SECONDS)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)

    previous = _take_signal(signal.SIGTERM, end_by_sigterm)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        give_back()
        os.close(original)
        thread.join(DRAIN_SECONDS)


def _take_signal(signum: int, handler: Callable[[int, Any], None]) -> Any:
    """Install ``handler`` for ``signum`` and return the one it replaced, when this thread may (the main one) and
    the signal has its default action; else leave it (an ignored signal, a handler of the caller's) and return
    ``None``."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signum) != signal.SIG_DFL:
        return None
    return signal.signal(signum, handler)


def _pass_on(read_end: int, forward_to: int, sink: LineSink) -> None:
    """Write what ``sink`` makes of each line of ``read_end`` to ``forward_to``, until the pipe ends."""
    try:
        for line in _lines(read_end, sink):
            _write_all(forward_to, line)
    finally:
        os.close(read_end)
        os.close(forward_to)


def _lines(read_end: int, sink: LineSink) -> Iterator[bytes]:
    """``sink``'s output for the lines of the pipe ``read_end``, its ``idle`` output after a pause, to the end."""
    partial = b""
    waiting = False  # lines came since the last call of sink.idle
    while True:
        if waiting and not select.select([read_end], [], [], IDLE_SECONDS)[0]:
            yield sink.idle()
            waiting = False
            continue
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        *complete, partial = (partial + chunk).split(b"\n")
        for line in complete:
            yield sink.line(line + b"\n")
        waiting = True
    if partial:
        yield sink.line(partial)
    yield sink.idle()


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except OSError:  # the real stderr went away: nothing is left to show the line on
            return
