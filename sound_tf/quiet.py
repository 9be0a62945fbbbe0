"""What TensorFlow writes to the console by itself, and how ``--quiet`` keeps it out.

TensorFlow's native libraries log from C++ straight to file descriptor 2, past Python's ``logging`` and
``sys.stderr``. ``TF_CPP_MIN_LOG_LEVEL=2`` (:func:`quiet_tensorflow`) stops most of their INFO and WARNING
lines, but only when it is set before TensorFlow is imported, and a few lines escape it: the oneDNN notice
each library writes when it loads (before absl's logging reads any setting), the TFLite runtime's
``INFO: Created TensorFlow Lite XNNPACK delegate``, and the converter's ``fully_quantize: ...`` line.
:func:`native_logs_held` points descriptor 2 at a pipe for the time of a command's work and passes on every
line but those (:data:`NATIVE_NOISE`): errors, tracebacks and Python's warnings still reach the terminal as
they are written. This module imports nothing heavy (no TensorFlow): it must run before TensorFlow does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import threading
from typing import Iterator, Sequence

#: A line TensorFlow's native code writes that ``--quiet`` leaves out: an absl INFO or WARNING line
#: (``I0000 00:00:1796440877.037388    6200 reader.cc:83] ...``), absl's notice that it logs before being set
#: up, the TFLite runtime's INFO lines and the MLIR quantizer's settings line. ERROR and FATAL lines pass.
NATIVE_NOISE = re.compile(r"[IW]\d{4} [\d:.]+ +\d+ [^\s\]]+:\d+\] "
                          r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                          r"|INFO: "
                          r"|fully_quantize: \d")
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


@contextlib.contextmanager
def native_logs_held(quiet: bool) -> Iterator[None]:
    """Within the block, leave TensorFlow's native log lines (:data:`NATIVE_NOISE`) out of stderr when ``quiet``.

    File descriptor 2 (what C++ code, ``sys.stderr`` and child processes write to) is a pipe meanwhile; a
    thread passes each other line on to the real stderr as soon as it is complete, so an error line or a
    traceback is shown when it is written, and an exception leaving the block is reported by the caller
    after it, on the real stderr. Without ``quiet`` (or without a descriptor 2) the block runs as it is.
    """
    if not quiet:
        yield
        return
    quiet_tensorflow()
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
    thread = threading.Thread(target=_pass_on, args=(read_end, forward_to), name="sound_tf-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(original, 2)  # closes this process's last write end of the pipe: the thread reads to its end
        os.close(original)
        thread.join(DRAIN_SECONDS)


def _pass_on(read_end: int, forward_to: int) -> None:
    """Copy the lines of ``read_end`` that are not :data:`NATIVE_NOISE` to ``forward_to``, until the pipe ends."""
    with open(read_end, "rb", closefd=True) as pipe:
        try:
            for line in pipe:
                if not NATIVE_NOISE.match(line.decode("utf-8", "replace")):
                    _write_all(forward_to, line)
        finally:
            os.close(forward_to)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except OSError:  # the real stderr went away: nothing is left to show the line on
            return
