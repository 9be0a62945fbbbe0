"""Structured logs: one JSON object per line on stderr, for the server and for uvicorn.

Request lines (logger ``sound_tf.serve.access``) carry ``request_id, method, path, status, duration_ms,
client`` and, on errors, ``error``; never audio content, file content or the API key.

Whatever reaches file descriptor 2 without Python's ``logging`` (TensorFlow's and the TFLite runtime's native
lines, a traceback, a Python warning, ``error: ...``) is turned into records of the same shape by
:func:`stderr_as_json` (loggers ``sound_tf.serve.native`` and ``sound_tf.serve.stderr``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from typing import Any, Iterator

from ..quiet import native_line, stderr_through

ACCESS_LOGGER = "sound_tf.serve.access"
SERVER_LOGGER = "sound_tf.serve"
#: Decoding's warnings about an upload (channels that cancel when averaged to mono) are JSON lines too.
AUDIO_LOGGER = "sound_tf.audio"
#: TensorFlow's and the TFLite runtime's native log lines, one record each (``source``: absl's ``file.cc:NN``).
NATIVE_LOGGER = "sound_tf.serve.native"
#: Other text written to stderr past ``logging``: consecutive lines (a traceback) make one record.
STDERR_LOGGER = "sound_tf.serve.stderr"
#: Text on stderr that reports an error: a traceback, ``error: ...`` (run_cli), a fatal error's dump.
_ERROR_TEXT = re.compile(r"^(Traceback \(most recent call last\):|error: |Fatal Python error)", re.MULTILINE)
#: A Python warning as ``warnings`` prints it: ``path:line: SomeWarning: message``.
_WARNING_TEXT = re.compile(r"^\S.*:\d+: \w*Warning: ", re.MULTILINE)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line; fields passed as ``extra={"fields": {...}}`` are merged in."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def logging_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server's and uvicorn's loggers (also uvicorn's ``log_config``).

    uvicorn's own access log is replaced by the server's request lines, so it is turned off.
    """
    upper = level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            SERVER_LOGGER: {"handlers": ["json"], "level": upper, "propagate": False},
            AUDIO_LOGGER: {"handlers": ["json"], "level": upper, "propagate": False},
            "uvicorn": {"handlers": ["json"], "level": upper, "propagate": False},
            "uvicorn.error": {"handlers": ["json"], "level": upper, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def configure_logging(level: str = "info") -> None:
    """Apply :func:`logging_config` to this process."""
    import logging.config

    logging.config.dictConfig(logging_config(level))


class JsonLines:
    """A :class:`sound_tf.quiet.LineSink` that writes every line of stderr as a JSON object of the server's
    shape (:class:`JsonFormatter`).

    A line that is a JSON object already (the server's and uvicorn's records) passes as it is. A native line
    (:func:`sound_tf.quiet.native_line`) is a record at its own level (absl's letter I/W/E/F: info, warning,
    error, critical; the TFLite runtime's INFO/WARNING/ERROR), left out below ``level``. Other lines are
    gathered until a line of the two other kinds or a pause, and make one record (a traceback stays one):
    ``error`` for a traceback or ``error: ...``, ``warning`` for a Python warning or any other text.
    """

    def __init__(self, level: str = "info") -> None:
        self.level = level
        self.threshold = logging.getLevelName(level.upper())
        self.formatter = JsonFormatter()
        self.pending: list[str] = []

    def line(self, line: bytes) -> bytes:
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if _is_json_object(text):
            return self.idle() + text.encode("utf-8") + b"\n"
        native = native_line(text)
        if native is None:
            self.pending.append(text)
            return b""
        fields = {"source": native.source} if native.source else {}
        return self.idle() + self._record(NATIVE_LOGGER, native.level, native.message, fields)

    def idle(self) -> bytes:
        text = "\n".join(self.pending).strip("\n")
        self.pending.clear()
        if not text.strip():
            return b""
        level = "error" if _ERROR_TEXT.search(text) else "warning"
        return self._record(STDERR_LOGGER, level, text, {})

    def arguments(self) -> list[str]:
        return [self.level]

    def _record(self, logger: str, level: str, message: str, fields: dict[str, Any]) -> bytes:
        number = logging.getLevelName(level.upper())
        if number < self.threshold:
            return b""
        record = logging.LogRecord(logger, number, "", 0, message, None, None)
        record.fields = fields
        return self.formatter.format(record).encode("utf-8") + b"\n"


def _is_json_object(text: str) -> bool:
    if not (text.startswith("{") and text.endswith("}")):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


@contextlib.contextmanager
def stderr_as_json(level: str = "info") -> Iterator[None]:
    """Within the block, every line written to file descriptor 2 reaches stderr as JSON (:class:`JsonLines`),
    child processes' (uvicorn's workers) included. Enter it before TensorFlow or the TFLite runtime loads."""
    with stderr_through(JsonLines(level)):
        yield
