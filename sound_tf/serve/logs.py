"""Structured logs: one JSON object per line on stderr, for the server and for uvicorn.

Request lines (logger ``sound_tf.serve.access``) carry ``request_id, method, path, status, duration_ms,
client`` and, on errors, ``error``; never audio content, file content or the API key.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

ACCESS_LOGGER = "sound_tf.serve.access"
SERVER_LOGGER = "sound_tf.serve"
#: Decoding's warnings about an upload (channels that cancel when averaged to mono) are JSON lines too.
AUDIO_LOGGER = "sound_tf.audio"


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
