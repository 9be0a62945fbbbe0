"""What TensorFlow writes to the console by itself, and how ``--quiet`` keeps it out.

TensorFlow's native libraries log from C++ straight to file descriptor 2, past Python's ``logging`` and
``sys.stderr``. ``TF_CPP_MIN_LOG_LEVEL=2`` (:func:`quiet_tensorflow`) stops most of their INFO and WARNING
lines, but only when it is set before TensorFlow is imported, and a few lines escape it: the oneDNN notice
each library writes when it loads (before absl's logging reads any setting), the TFLite runtime's
``INFO: Created TensorFlow Lite XNNPACK delegate``, and the converter's ``fully_quantize: ...`` line.
:func:`native_logs_held` points descriptor 2 at a pipe for the time of a command's work, and a small process of
its own (:mod:`sound_tf.stderr_forwarder`) passes on every line but those (:func:`is_native_noise`): errors,
tracebacks and Python's warnings still reach the terminal as they are written. :func:`native_line` tells those
lines apart (with their level), for the filter and for the server, whose :func:`stderr_through` turns every line
into JSON. This module imports nothing heavy (no TensorFlow): it must run before TensorFlow does.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterator, Protocol

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
#: outlived it may hold the pipe open; its later lines are then still passed on, by a forwarder not waited for).
DRAIN_SECONDS = 10.0


def quiet_tensorflow() -> None:
    """Keep TensorFlow's native INFO and WARNING lines off (``TF_CPP_MIN_LOG_LEVEL=2``) unless the user set a
    level; it is read when TensorFlow is imported, so every CLI calls this first."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class LineSink(Protocol):
    """What :func:`stderr_through` does with the lines written to file descriptor 2."""

    def line(self, line: bytes) -> bytes:
        """The bytes to write for one complete line (with its newline; the last one may lack it)."""

    def idle(self) -> bytes:
        """The bytes to write when no line came for :data:`IDLE_SECONDS` after some did, and at the end."""

    def arguments(self) -> list[str]:
        """The strings that, given to its class, build the same sink in :func:`stderr_through`'s forwarder
        process (which imports the class's module: it must not import anything heavy)."""


#: How long :func:`stderr_through` waits for more lines before it calls its sink's ``idle``.
IDLE_SECONDS = 0.2
#: How long :func:`stderr_through` waits for its forwarder process to start before it runs its block without it.
FORWARDER_START_SECONDS = 10.0


class _DropNoise:
    """``--quiet``'s sink: every line that is not :func:`is_native_noise`, as it was written."""

    def line(self, line: bytes) -> bytes:
        return b"" if is_native_noise(line.decode("utf-8", "replace")) else line

    def idle(self) -> bytes:
        return b""

    def arguments(self) -> list[str]:
        return []


@contextlib.contextmanager
def native_logs_held(quiet: bool) -> Iterator[None]:
    """Within the block, leave TensorFlow's native INFO and WARNING lines (:func:`is_native_noise`) out of
    stderr when ``quiet``.

    File descriptor 2 (what C++ code, ``sys.stderr`` and child processes write to) is a pipe meanwhile; a
    process of its own (:func:`stderr_through`) passes each other line on to the real stderr as soon as it is
    complete, so an error line or a traceback is shown when it is written, and an exception leaving the block is
    reported by the caller after it, on the real stderr. Without ``quiet`` (or without a descriptor 2) the block
    runs as it is.
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

    Descriptor 2 is a pipe meanwhile, read by a process of its own (:mod:`sound_tf.stderr_forwarder`, which
    builds a sink equal to ``sink`` from its class and :meth:`LineSink.arguments`) that writes what the sink
    makes of each line as soon as it is complete. It outlives this process, so the lines of a process that dies
    abruptly (a native abort, ``os._exit``, a signal) are still written, and it ignores the signals a terminal
    or a process manager sends to the whole group (SIGINT, SIGTERM, SIGHUP). At the end of the block descriptor
    2 is given back and the forwarder, once it has written the lines still in the pipe, ends; the block's end
    waits for it up to :data:`DRAIN_SECONDS`. Without a descriptor 2, or when the forwarder cannot start (no
    Python to start; one that fails to build its sink reports why on stderr), the block runs as it is, its lines
    unchanged.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()  # what Python has buffered belongs before the block
    try:
        original = os.dup(2)
    except OSError:  # no stderr to hold
        yield
        return
    read_end, write_end = os.pipe()
    forwarder = _start_forwarder(sink, read_end, original)
    os.close(read_end)
    if forwarder is None:
        os.close(write_end)
        os.close(original)
        yield
        return
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(original, 2)  # closes this process's last write end of the pipe: the forwarder reads to its end
        os.close(original)
        with contextlib.suppress(subprocess.TimeoutExpired):
            forwarder.wait(DRAIN_SECONDS)


def _start_forwarder(sink: LineSink, read_end: int, stderr: int) -> subprocess.Popen | None:
    """The forwarder process passing the lines of ``read_end`` through a sink like ``sink`` to ``stderr``, once it
    has built its sink; ``None`` when it could not (no Python to start, the sink's module failed to import: its
    error is on stderr then; not POSIX), or did not within :data:`FORWARDER_START_SECONDS`."""
    if os.name != "posix":  # pass_fds, process groups and select on a pipe are POSIX's
        return None
    kind = type(sink)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # found without site (-S)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    ready_read, ready_write = os.pipe()
    try:
        forwarder = subprocess.Popen(
            [sys.executable, "-S", "-P", "-m", "sound_tf.stderr_forwarder", str(ready_write),
             f"{kind.__module__}:{kind.__qualname__}", *sink.arguments()],
            # its own process group (process_group=0): a Ctrl-C at the terminal or a signal to the command's group
            # never reaches it
            # -P: the current folder is not searched, so a sound_tf folder or a select.py there is not imported in
            # place of the command's own (which a script's sys.path never held)
            stdin=read_end, stdout=stderr, close_fds=True, pass_fds=(ready_write,), env=env, process_group=0)
    except (OSError, ValueError, TypeError):  # no sys.executable (an embedded interpreter), no processes left
        os.close(ready_read)
        return None
    finally:
        os.close(ready_write)
    with os.fdopen(ready_read, "rb", buffering=0) as ready:
        started = select.select([ready], [], [], FORWARDER_START_SECONDS)[0] and ready.read(5) == b"ready"
    if not started:
        forwarder.kill()
        forwarder.wait()
        return None
    return forwarder
