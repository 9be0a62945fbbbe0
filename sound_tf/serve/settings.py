"""Server settings: command-line flags, then ``SOUND_TF_*`` environment variables, then defaults.

Every setting has an environment variable named ``SOUND_TF_`` + the upper-case field name, e.g.
``SOUND_TF_MODEL_DIR``, ``SOUND_TF_MAX_BATCH_SIZE``, ``SOUND_TF_API_KEY``. Lists (``cors_origins``) are
comma-separated (``SOUND_TF_CORS_ORIGINS=https://a.example,https://b.example``) or a JSON list.

Numbers about the model (sample rate, clip length, window hop, labels) are not settings: they are read
from the model folder's ``config.json``.

This module imports no TensorFlow.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ..errors import ConfigError

ENV_PREFIX = "SOUND_TF_"
BACKENDS = ("auto", "tflite", "savedmodel", "keras")
MEBIBYTE = 1024 * 1024


def env_name(setting: str) -> str:
    """The environment variable of a :class:`ServeSettings` field: ``max_audio_seconds`` ->
    ``SOUND_TF_MAX_AUDIO_SECONDS``; a limit's error names it, as the setting that raises the limit."""
    return f"{ENV_PREFIX}{setting.upper()}"


class ServeSettings(BaseSettings):
    """Everything ``python -m sound_tf.serve`` can be told.

    Attributes
    ----------
    model_dir : pathlib.Path
        A run folder (``model.keras`` + ``config.json``) or an export bundle (``config.json``,
        ``labels.txt``, ``saved_model/``, ``model_*.tflite``).
    backend : str
        ``auto`` (TFLite when the bundle has ``model_{tflite_variant}.tflite``, else the SavedModel, else
        ``model.keras``), ``tflite``, ``savedmodel`` or ``keras``.
    tflite_variant : str or None
        Which ``model_{variant}.tflite`` of a bundle the ``tflite`` backend runs (``float32``, ``int8``...).
        Unset means ``float32`` when the bundle has it (else ``auto`` takes the SavedModel); a variant that
        is set must exist (a start-up error lists the bundle's variants), ``auto`` never falls back from it.
    inference_threads : int
        Threads of the TFLite interpreter. One (the default) keeps the other cores free for decoding and
        HTTP while the batcher runs the model; more threads only lower the latency of a lone request and
        lose throughput when the cores are busy (measured in ``bench/serve.py``).
    host, port, workers
        Where uvicorn listens and how many processes it runs (each loads its own model and batcher).
    max_batch_size : int
        Most windows (model inputs) in one model call.
    max_wait_ms : float
        How long the batcher waits for requests still being decoded after the first one arrives
        (``keras`` and ``savedmodel`` backends; TFLite runs window by window, so it never waits).
    max_queue_windows : int
        Windows allowed to wait for the model; beyond it requests get 503 ``overloaded``.
    max_upload_bytes : int
        Largest request body (413 ``upload_too_large``); checked from ``Content-Length`` before reading
        and counted while the body streams in.
    max_audio_seconds : float
        Longest recording accepted (413 ``audio_too_long``), checked from the file header before decoding.
        It also bounds the decoded size: at most this many seconds of 96-kHz stereo, in frames x channels
        (413 ``audio_too_large``), so a small file with many channels at a huge rate is refused unread.
    max_files_per_request : int
        Most files in one ``/classify/batch`` request.
    default_top_k : int
        Labels returned when the request does not give ``top_k``.
    request_timeout_seconds : float
        Longest wait for the model once the upload is decoded (503 ``timeout``).
    body_timeout_seconds : float
        Longest time a client may take to send its request body (408 ``body_timeout``).
    keep_alive_seconds : int
        Idle connections are closed after this: keep-alive ones (uvicorn ``timeout_keep_alive``), and
        new ones whose first request headers have not arrived (:mod:`sound_tf.serve.protocol`).
    max_concurrency : int or None
        Connections + tasks before uvicorn answers 503 (uvicorn ``limit_concurrency``);
        ``SOUND_TF_MAX_CONCURRENCY=none`` removes the limit.
    shutdown_grace_seconds : int
        On SIGTERM or Ctrl-C the server stops accepting connections and lets requests in flight finish
        for up to this long, then closes the rest (uvicorn ``timeout_graceful_shutdown``). It must stay
        under the orchestrator's own grace period before SIGKILL: the default fits ``docker stop``'s 10 s;
        Kubernetes allows 30 s.
    decode_threads : int
        Uploads decoded at the same time (threads outside the event loop).
    api_key : SecretStr or None
        When set (``SOUND_TF_API_KEY``), every endpoint except ``/health``, ``/ready`` and the API
        documentation needs the header ``X-API-Key`` with this value (401 otherwise).
    cors_origins : list of str
        Origins allowed by CORS; empty (the default) means no CORS headers at all.
    log_level : str
        ``debug``, ``info``, ``warning`` or ``error``.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    model_dir: Path
    backend: Literal["auto", "tflite", "savedmodel", "keras"] = "auto"
    tflite_variant: str | None = Field(None, pattern=r"^[A-Za-z0-9_]+$")
    inference_threads: int = Field(1, ge=1, le=64)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    max_batch_size: int = Field(32, ge=1, le=1024)
    max_wait_ms: float = Field(5.0, ge=0, le=1000)
    max_queue_windows: int = Field(256, ge=1)
    max_upload_bytes: int = Field(20 * MEBIBYTE, ge=1024)
    max_audio_seconds: float = Field(120.0, gt=0, allow_inf_nan=False)  # it also sizes the decode budget
    max_files_per_request: int = Field(16, ge=1, le=1000)
    default_top_k: int = Field(3, ge=1)
    request_timeout_seconds: float = Field(30.0, gt=0)
    body_timeout_seconds: float = Field(30.0, gt=0)
    keep_alive_seconds: int = Field(5, ge=1)
    max_concurrency: int | None = Field(256, ge=1)
    shutdown_grace_seconds: int = Field(8, ge=0, le=3600)
    decode_threads: int = Field(4, ge=1, le=64)
    api_key: SecretStr | None = None
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def __init__(self, /, **values: Any) -> None:
        # extra="ignore" lets other SOUND_TF_* variables (SOUND_TF_CACHE) be; a keyword was dropped with them
        unknown = sorted(key for key in values if key not in type(self).model_fields and not key.startswith("_"))
        if unknown:
            near = {key: difflib.get_close_matches(key, list(type(self).model_fields), n=1) for key in unknown}
            hints = "".join(f" ({key}: did you mean {match[0]}?)" for key, match in near.items() if match)
            raise ConfigError(f"ServeSettings: unknown setting(s) {unknown}{hints}; the settings are "
                              f"{', '.join(type(self).model_fields)}")
        super().__init__(**values)

    @field_validator("max_concurrency", mode="before")
    @classmethod
    def _unlimited(cls, value: Any) -> Any:
        """``none`` from the environment removes the limit (only here: an API key "none" stays a key)."""
        return None if isinstance(value, str) and value.strip().lower() == "none" else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        """Accept ``a,b`` or a JSON list from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        """``SOUND_TF_API_KEY=`` (empty) means no key rather than an empty key that anyone matches."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    def to_env(self) -> dict[str, str]:
        """These settings as ``SOUND_TF_*`` variables (how ``--workers N`` hands them to each worker)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                if type(self).model_fields[name].default is not None:
                    env[env_name(name)] = "none"  # unset on purpose: max_concurrency (_unlimited)
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, list):
                value = json.dumps(value)
            env[env_name(name)] = str(value)
        return env
