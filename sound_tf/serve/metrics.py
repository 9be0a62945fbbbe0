"""Prometheus metrics of one app instance, in a registry of its own.

Each :class:`ServeMetrics` owns a ``CollectorRegistry``, so two apps in one process (tests) never share
or double-register series.

With ``--workers N`` the server runs prometheus_client's multiprocess mode: ``python -m sound_tf.serve``
gives the workers a fresh ``PROMETHEUS_MULTIPROC_DIR`` (or keeps one the caller set), every worker
writes its values there, and ``GET /metrics``, whichever worker answers it, adds them up: counters and
histograms over every worker that has run (a restarted worker's counts stay), ``sound_tf_queue_windows``
over the live workers, ``sound_tf_ready`` as the least ready live worker (1 only when all are ready).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..locks import process_alive

__all__ = ["CONTENT_TYPE_LATEST", "ServeMetrics", "multiprocess_dir"]

#: Files of live-mode gauges in a multiprocess directory: ``gauge_live<mode>_<pid>.db``.
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def multiprocess_dir() -> str | None:
    """The multiprocess directory of this process (prometheus_client reads it when it is imported)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")



# Request latency in seconds: from 5 ms (a cached TFLite call) to 30 s (a long recording on a busy host).
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
# Model inputs per model call: powers of two up to the largest allowed max_batch_size.
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
AUDIO_SECONDS_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)


class ServeMetrics:
    """The server's counters, histograms and gauges.

    Attributes
    ----------
    registry : prometheus_client.CollectorRegistry
        Rendered by :meth:`render` for ``GET /metrics``.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.shared_dir = multiprocess_dir()
        r = self.registry
        self.requests = Counter("sound_tf_http_requests", "HTTP requests by endpoint, method and status.",
                                ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("sound_tf_http_request_duration_seconds",
                                 "Time from the request's arrival to the end of its response, by endpoint.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS_SECONDS, registry=r)
        self.errors = Counter("sound_tf_errors", "Error answers (whole requests and batch entries) by kind.",
                              ["kind"], registry=r)
        self.batch_size = Histogram("sound_tf_inference_batch_size", "Model inputs (windows) per model call.",
                                    buckets=BATCH_SIZE_BUCKETS, registry=r)
        self.inference_seconds = Histogram("sound_tf_inference_duration_seconds", "Time of one model call.",
                                           buckets=LATENCY_BUCKETS_SECONDS, registry=r)
        self.audio_seconds = Histogram("sound_tf_audio_duration_seconds", "Duration of classified recordings.",
                                       buckets=AUDIO_SECONDS_BUCKETS, registry=r)
        self.queue_windows = Gauge("sound_tf_queue_windows", "Windows waiting for the model.", registry=r,
                                   multiprocess_mode="livesum")
        self.ready = Gauge("sound_tf_ready", "1 once the model is loaded and warmed up.", registry=r,
                           multiprocess_mode="livemin")
        self.model_info = Gauge("sound_tf_model_info", "The loaded model (value 1).",
                                ["backend", "num_classes", "sample_rate_hz"], registry=r, multiprocess_mode="livemax")

    def observe_batch(self, size: int, seconds: float) -> None:
        """Record one model call of ``size`` windows that took ``seconds``."""
        self.batch_size.observe(size)
        self.inference_seconds.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every series (of every worker, in multiprocess mode)."""
        if self.shared_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        for path in Path(self.shared_dir).glob("gauge_live*.db"):  # workers that died without closing
            match = _LIVE_GAUGE_FILE.fullmatch(path.name)
            if match and not process_alive(int(match.group(1))):
                multiprocess.mark_process_dead(int(match.group(1)), self.shared_dir)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, self.shared_dir)
        return generate_latest(registry)

    def close(self) -> None:
        """At shutdown: drop this process's live gauges from the multiprocess directory (counters stay)."""
        if self.shared_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.shared_dir)
