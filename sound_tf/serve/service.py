"""What the endpoints do, apart from HTTP: check and decode an upload, batch it through the model, answer.

:class:`ClassifierService` owns the backend, the :class:`~sound_tf.serve.batcher.MicroBatcher` and the
metrics. Decoding runs in worker threads (libsndfile and soxr release the GIL) and the model in the
batcher's thread, so the event loop only moves bytes.

Every refusal is a :class:`ServeError` with an HTTP status, a short machine-readable ``kind`` and a
message that names the file and the problem.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import anyio
import numpy as np
import soundfile as sf

from ..audio import (AUDIO_EXTENSIONS, READABLE_FORMATS, SF_ERR_UNRECOGNISED_FORMAT, convert_hint, decode_bytes,
                     is_convertible, silent_note, split_windows, truncation_problem, wav_codec_problem)
from ..errors import AudioError, SoundTFError, counted
from ..lite import DEFAULT_MIN_PROBABILITY, top_classes, window_events, window_probabilities, window_timeline
from .backends import Backend, load_backend
from .batcher import BatcherClosed, MicroBatcher, QueueFull
from .metrics import ServeMetrics
from .settings import ServeSettings, env_name

__all__ = ["ClassifierService", "DecodedUpload", "ServeError"]

log = logging.getLogger("sound_tf.serve")

# libsndfile error codes (sndfile.h) that mean "this is not a format or encoding I read" (with
# audio.SF_ERR_UNRECOGNISED_FORMAT).
_SF_ERR_UNSUPPORTED_ENCODING = 4
# libsndfile's internal SFE_UNIMPLEMENTED, which it also reports: a container it knows holding a codec it does
# not decode (e.g. a WAVE_FORMAT_EXTENSIBLE file with an MP3 sub-format): unsupported, not corrupt.
_SF_ERR_UNIMPLEMENTED = 18
#: Samples (frames x channels) an upload may decode to, per second of ``max_audio_seconds``: 96-kHz stereo.
#: The whole file is decoded as float32 before the downmix, so this bounds the memory of one request.
DECODED_SAMPLES_PER_SECOND = 2 * 96_000
# Client-supplied file names are only echoed in messages: keep them short and printable.
_MAX_NAME_CHARS = 120


class ServeError(SoundTFError):
    """A request the server refuses, with what to answer.

    Parameters
    ----------
    status : int
        HTTP status code.
    kind : str
        Short machine-readable error kind (``empty_file``, ``unsupported_format``, ...).
    detail : str
        A message that names the problem (and the file, where there is one).
    """

    def __init__(self, status: int, kind: str, detail: str):
        self.status = status
        self.kind = kind
        self.detail = detail
        super().__init__(detail)


def safe_filename(name: str | None) -> str:
    """The client's file name, reduced to a short printable base name for messages (never a path)."""
    if not name:
        return "upload"
    base = re.split(r"[\\/]", str(name))[-1].strip()  # before '?' stands in: "  \t " was named '?', not 'upload'
    base = "".join(ch if ch.isprintable() else "?" for ch in base) or "upload"
    return base[:_MAX_NAME_CHARS]


@dataclass(frozen=True)
class DecodedUpload:
    """An upload decoded at the model's rate and cut into model windows."""

    name: str
    windows: np.ndarray  # [windows, clip_samples]
    samples: int  # the recording's length at the model's rate
    duration_seconds: float
    source_sample_rate_hz: int
    channels: int
    warning: str | None = None  # audio.silent_note: a silent recording's classes say nothing of a sound


class ClassifierService:
    """The model, the batcher, the limits and the metrics of one app.

    Parameters
    ----------
    settings : ServeSettings
    metrics : ServeMetrics
    backend : Backend, optional
        An already loaded backend (tests); by default the model of ``settings.model_dir`` is loaded in
        a background thread when :meth:`start` runs, and ``/ready`` answers 503 until it is warmed up.
    """

    def __init__(self, settings: ServeSettings, metrics: ServeMetrics, backend: Backend | None = None):
        self.settings = settings
        self.metrics = metrics
        self.backend: Backend | None = backend
        self.state = "loading"
        self.error: str | None = None
        self.batcher: MicroBatcher | None = None
        self._decode_limiter: anyio.CapacityLimiter | None = None
        self._load_task: asyncio.Task | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state == "ready"

    async def start(self) -> None:
        """Load (in a thread) and warm up the model, then start the batcher; errors set ``state='failed'``."""
        self._decode_limiter = anyio.CapacityLimiter(self.settings.decode_threads)
        self._load_task = asyncio.get_running_loop().create_task(self._load(), name="sound_tf-load-model")

    async def wait_ready(self, timeout_seconds: float | None = None) -> None:
        """Wait until loading has finished (successfully or not)."""
        if self._load_task is not None:
            await asyncio.wait_for(asyncio.shield(self._load_task), timeout_seconds)

    async def _load(self) -> None:
        s = self.settings
        began = time.perf_counter()
        try:
            if self.backend is None:
                self.backend = await anyio.to_thread.run_sync(
                    lambda: load_backend(s.model_dir, s.backend, tflite_variant=s.tflite_variant,
                                         num_threads=s.inference_threads))
            backend = self.backend
            sizes = tuple(sorted({1, s.max_batch_size}))
            await anyio.to_thread.run_sync(lambda: backend.warm_up(sizes))
        except Exception as exc:  # a model that cannot load leaves the process alive but not ready
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("model failed to load", extra={"fields": {"model_dir": str(s.model_dir)}})
            return
        wait_ms = s.max_wait_ms if backend.batches_pay_off else 0.0  # TFLite: run what is there at once
        if wait_ms != s.max_wait_ms and "max_wait_ms" in s.model_fields_set:
            log.warning(f"max_wait_ms={s.max_wait_ms:g} is not used: the {backend.name} backend runs each window as "
                        f"soon as it is there (batching does not pay off on it); it applies to the keras and "
                        f"savedmodel backends")
        self.batcher = MicroBatcher(backend.predict, max_batch_size=s.max_batch_size, max_wait_ms=wait_ms,
                                    max_queue_windows=s.max_queue_windows, on_batch=self.metrics.observe_batch,
                                    on_queue=self.metrics.queue_windows.set)
        self.batcher.start()
        self.metrics.model_info.labels(backend=backend.name, num_classes=str(backend.num_classes),
                                       sample_rate_hz=str(backend.sample_rate_hz)).set(1)
        self.metrics.ready.set(1)
        self.state = "ready"
        log.info("model ready", extra={"fields": {
            "backend": backend.name, "path": str(backend.path), "classes": backend.num_classes,
            "sample_rate_hz": backend.sample_rate_hz, "clip_samples": backend.clip_samples,
            "max_batch_size": s.max_batch_size, "max_wait_ms": wait_ms,
            "load_seconds": round(time.perf_counter() - began, 3)}})

    async def stop(self) -> None:
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
            try:
                await self._load_task
            except (asyncio.CancelledError, Exception):
                pass
        if self.batcher is not None:
            await self.batcher.stop()
        self.metrics.ready.set(0)
        if self.state == "ready":
            self.state = "stopped"

    def describe(self) -> dict[str, Any]:
        """The loaded model's numbers (for ``/ready``)."""
        b = self.backend
        if b is None or not self.ready:
            return {}
        return {"backend": b.name, "model_file": b.path.name, "variant": b.variant,
                "num_classes": b.num_classes, "sample_rate_hz": b.sample_rate_hz,
                "clip_seconds": b.clip_samples / b.sample_rate_hz,
                "window_hop_seconds": b.window_hop_samples / b.sample_rate_hz,
                "max_batch_size": self.settings.max_batch_size,
                "max_wait_ms": self.batcher.max_wait_seconds * 1000.0 if self.batcher else self.settings.max_wait_ms}

    def require_ready(self) -> Backend:
        if not self.ready or self.backend is None:
            detail = (f"the model failed to load ({self.error})" if self.state == "failed"
                      else "the model is still loading; retry when GET /ready answers 200")
            raise ServeError(503, "not_ready", detail)
        return self.backend

    # -- one upload -----------------------------------------------------------------------------------
    def _probe(self, data: bytes, name: str) -> Any:
        """Read the header only: format, rate, length; refuse what is not audio, truncated or too long."""
        if len(data) == 0:
            raise ServeError(422, "empty_file", f"{name}: empty file (0 bytes)")
        try:
            info = sf.info(io.BytesIO(data))
        except sf.LibsndfileError as exc:
            codec = wav_codec_problem(data)
            if codec:  # libsndfile calls an unknown WAV codec a malformed 'fmt ' chunk
                raise ServeError(415, "unsupported_format", f"{name}: {codec}") from None
            reason = exc.error_string.rstrip(".")
            if exc.code in (SF_ERR_UNRECOGNISED_FORMAT, _SF_ERR_UNSUPPORTED_ENCODING, _SF_ERR_UNIMPLEMENTED):
                suffix = PurePath(name).suffix.lower()
                named = (f", though its name ends in {suffix}: a damaged file, or another kind of file under that "
                         f"name" if exc.code == SF_ERR_UNRECOGNISED_FORMAT and suffix in AUDIO_EXTENSIONS else "")
                convert = (f"; {convert_hint(PurePath(name).name)}"  # a phone's .m4a: the CLI's ffmpeg line
                           if exc.code == SF_ERR_UNRECOGNISED_FORMAT and is_convertible(name) else "")
                raise ServeError(415, "unsupported_format",
                                 f"{name}: not an audio format the server reads (libsndfile: {reason}){named}; "
                                 f"send {READABLE_FORMATS}{convert}") from None
            raise ServeError(422, "corrupt_audio", f"{name}: corrupt audio file (libsndfile: {reason})") from None
        except (RuntimeError, ValueError, TypeError) as exc:
            raise ServeError(422, "corrupt_audio", f"{name}: corrupt audio file ({exc})") from None
        truncated = truncation_problem(info.extra_info)  # as training, predict and lite refuse it
        if truncated:
            raise ServeError(422, "truncated_audio", f"{name}: {truncated}")
        if info.samplerate <= 0:
            raise ServeError(422, "corrupt_audio", f"{name}: invalid sample rate {info.samplerate} Hz in the header")
        duration = info.frames / info.samplerate
        if duration > self.settings.max_audio_seconds:
            raise ServeError(413, "audio_too_long", f"{name}: {duration:.1f} s of audio exceeds the limit of "
                                                    f"{self.settings.max_audio_seconds:g} s per file (the server's "
                                                    f"{env_name('max_audio_seconds')})")
        budget = int(self.settings.max_audio_seconds * DECODED_SAMPLES_PER_SECOND)
        if info.frames * info.channels > budget:  # decoded as float32 before the downmix: a small FLAC can need GBs
            raise ServeError(413, "audio_too_large",
                             f"{name}: {counted(info.channels, 'channels')} at {info.samplerate} Hz for "
                             f"{duration:.1f} s decode to {info.frames * info.channels} samples, over the limit of "
                             f"{budget} ({self.settings.max_audio_seconds:g} s of "
                             f"{DECODED_SAMPLES_PER_SECOND // 2000}-kHz stereo, the server's "
                             f"{env_name('max_audio_seconds')}); send fewer channels or a lower rate")
        return info

    def decode(self, data: bytes, name: str) -> DecodedUpload:
        """Check, decode (any format, rate and channels) and window one upload (runs in a thread)."""
        backend = self.require_ready()
        info = self._probe(data, name)
        try:
            wave = decode_bytes(data, sample_rate_hz=backend.sample_rate_hz, name=name)  # [samples]
        except AudioError as exc:
            raise ServeError(422, "invalid_audio", str(exc)) from None
        windows = split_windows(wave, clip_samples=backend.clip_samples,
                                hop_samples=backend.window_hop_samples)  # [windows, clip_samples]
        return DecodedUpload(name=name, windows=np.ascontiguousarray(windows, dtype=np.float32), samples=wave.shape[0],
                             duration_seconds=wave.shape[0] / backend.sample_rate_hz,
                             source_sample_rate_hz=int(info.samplerate), channels=int(info.channels),
                             warning=silent_note(wave, backend.sample_rate_hz))

    async def classify(self, data: bytes, *, filename: str | None, top_k: int, with_windows: bool,
                       min_probability: float = DEFAULT_MIN_PROBABILITY) -> dict[str, Any]:
        """Decode ``data`` off the event loop, batch it through the model, and build the answer.

        ``with_windows`` adds the per-window timeline (:func:`sound_tf.lite.window_timeline`) and its events
        (:func:`sound_tf.lite.window_events` at ``min_probability``, already checked to be in [0, 1], the backend's
        ``not_events`` left out), the fields ``lite --json`` and ``predict --windows --json`` answer.

        Raises
        ------
        ServeError
            Bad audio (413/415/422), model not ready, queue full or too slow (503).
        """
        began = time.perf_counter()
        backend = self.require_ready()
        name = safe_filename(filename)
        batcher = self.batcher
        if batcher is None:
            raise ServeError(503, "not_ready", "the model is not running")
        with batcher.incoming():  # the batcher may wait for this upload while it is decoded
            upload = await anyio.to_thread.run_sync(self.decode, data, name, limiter=self._decode_limiter)
        self.metrics.audio_seconds.observe(upload.duration_seconds)
        try:
            outputs = await asyncio.wait_for(batcher.submit(upload.windows),
                                             self.settings.request_timeout_seconds)  # [windows, classes] each
        except QueueFull as exc:
            raise ServeError(503, "overloaded", str(exc)) from None
        except BatcherClosed as exc:
            raise ServeError(503, "not_ready", str(exc)) from None
        except TimeoutError:
            raise ServeError(503, "timeout", f"{name}: no answer from the model within "
                                             f"{self.settings.request_timeout_seconds:g} s; try again") from None
        except Exception as exc:  # the batcher has logged the traceback
            raise ServeError(500, "inference_failed",
                             f"{name}: the model failed on this request ({type(exc).__name__}); "
                             f"the request id is in the logs") from None
        clip = backend.aggregate(outputs)  # [classes]
        k = max(1, min(int(top_k), backend.num_classes))
        top = top_classes(clip, backend.labels, k)  # rounded like every window's and like predict's and lite's
        result: dict[str, Any] = {
            "filename": name,
            "label": top[0]["label"],
            "predicted_class": int(np.argmax(clip)),  # the first best, as top_classes orders ties
            "probability": top[0]["probability"],
            "top_k": top,
            "duration_seconds": round(upload.duration_seconds, 6),
            "sample_rate_hz": upload.source_sample_rate_hz,
            "channels": upload.channels,
            "num_windows": int(upload.windows.shape[0]),
        }
        if upload.warning is not None:
            result["warning"] = upload.warning
        if with_windows:
            probabilities = window_probabilities(outputs)  # [windows, classes]
            result["windows"] = window_timeline(probabilities, backend.labels, hop_samples=backend.window_hop_samples,
                                                clip_samples=backend.clip_samples, total_samples=upload.samples,
                                                sample_rate_hz=backend.sample_rate_hz, top_k=k)
            result["events"] = window_events(result["windows"], min_probability=min_probability,
                                             leave_out=backend.not_events)
            for window, row in zip(result["windows"], probabilities):
                window["predicted_class"] = int(np.argmax(row))
        result["processing_ms"] = round((time.perf_counter() - began) * 1000.0, 3)
        return result
