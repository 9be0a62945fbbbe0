"""The process that passes a command's stderr through a line sink: ``python -m sound_tf.stderr_forwarder``.

:func:`sound_tf.quiet.stderr_through` points the command's file descriptor 2 at a pipe and starts this module
with the pipe's reading end as its stdin and the real stderr as its stdout. It writes what the sink (``--quiet``'s
filter, the server's JSON lines) makes of each line as soon as the line is complete, and ends when every writer
has closed the pipe: the command, and any child of it that inherited descriptor 2. Being a process of its own, it
outlives a command that dies abruptly (a native ``abort()`` after absl's ``F... Check failed`` line,
``os._exit``, a segfault's faulthandler dump, SIGKILL) and still writes the lines the command left in the pipe.
It ignores SIGINT, SIGTERM and SIGHUP, so a Ctrl-C or a SIGTERM to the command's process group does not end it
before the command's last lines. It imports nothing heavy (the sink's module must not either): it starts in
a few hundredths of a second.

Usage: ``python -m sound_tf.stderr_forwarder READY_FD MODULE:SINK [ARGUMENT ...]``: the sink is
``getattr(import_module(MODULE), SINK)(*ARGUMENTS)``; a byte on ``READY_FD`` tells the command it is built.
"""

from __future__ import annotations

import importlib
import os
import select
import signal
import sys
from typing import Iterator, Sequence

from .quiet import IDLE_SECONDS, LineSink

#: The signals a terminal or a process manager sends to a whole process group; the forwarder outlives them.
IGNORED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGTTOU")


def main(argv: Sequence[str] | None = None) -> int:
    for name in IGNORED_SIGNALS:  # SIGTTOU: a forwarder in a background group still writes to a terminal
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or ":" not in args[1]:
        print(f"usage: python -m sound_tf.stderr_forwarder READY_FD MODULE:SINK [ARGUMENT ...], got {args}",
              file=sys.stderr)
        return 2
    ready_fd, (module, _, name), arguments = int(args[0]), args[1].partition(":"), args[2:]
    sink = getattr(importlib.import_module(module), name)(*arguments)
    os.write(ready_fd, b"ready")
    os.close(ready_fd)
    pass_on(0, 1, sink)
    return 0


def pass_on(read_end: int, forward_to: int, sink: LineSink) -> None:
    """Write what ``sink`` makes of each line of ``read_end`` to ``forward_to``, until the pipe ends."""
    for data in _lines(read_end, sink):
        _write_all(forward_to, data)


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


if __name__ == "__main__":
    sys.exit(main())
