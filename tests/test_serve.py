"""The HTTP service in-process: every endpoint, every bad input, limits, logs, metrics and batching.

The model here is a stand-in backend without TensorFlow: it scores each window by its spectral peak
against three tone classes, so answers are known in advance (a 900 Hz tone is ``mid`` whatever its file
format, rate or channel count). The real backends (Keras, SavedModel, TFLite) and a real uvicorn server
are exercised in ``test_serve_e2e.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import subprocess
import sys
import struct
import threading
import time
from pathlib import Path

import httpx2
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from sound_tf.audio import split_windows
from sound_tf.config import Config, apply_overrides
from sound_tf.errors import ConfigError
from sound_tf.lite import DEFAULT_MIN_PROBABILITY, window_events
from sound_tf.serve import ServeSettings, create_app
from sound_tf.serve.__main__ import parse_args, settings_from_args
from sound_tf.serve.backends import Backend, ModelInfo, resolve_backend
from sound_tf.serve.batcher import BatcherClosed, MicroBatcher, QueueFull
from sound_tf.serve.logs import ACCESS_LOGGER, JsonFormatter, JsonLines, stderr_as_json
from sound_tf.serve.service import safe_filename
from sound_tf.tflite_meta import embed_metadata

TONES_HZ = {"low": 300.0, "mid": 900.0, "high": 2200.0}
CONFIG = apply_overrides(Config(), {"audio.sample_rate_hz": 8000, "audio.clip_seconds": 0.5,
                                    "labels": list(TONES_HZ)})


class ToneBackend(Backend):
    """Logits from each window's spectral peak: ``-8 |log2(peak / tone)|`` per class; silence scores all 0.

    Like an exported model it answers ``logits`` and ``probabilities``. ``delay_seconds`` makes each
    model call slow (to watch batching), ``gate`` holds the warm-up until it is set (to watch
    ``/ready``), and every call's batch size is recorded.
    """

    name = "tones"

    def __init__(self, config: Config = CONFIG, *, delay_seconds: float = 0.0, gate: threading.Event | None = None,
                 wrong_classes: bool = False):
        super().__init__(Path("stand-in"), ModelInfo.from_config(config))
        self.delay_seconds = delay_seconds
        self.gate = gate
        self.wrong_classes = wrong_classes
        self.fail_next = False
        self.calls: list[int] = []
        self.tones_hz = np.array([TONES_HZ[label] for label in self.labels])

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        self.calls.append(int(windows.shape[0]))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the model ran out of memory")
        spectrum = np.abs(np.fft.rfft(windows, axis=1))  # [n, bins]
        peak_hz = np.argmax(spectrum, axis=1) * self.sample_rate_hz / windows.shape[1]  # [n]
        distance = np.abs(np.log2(np.maximum(peak_hz, 1.0)[:, None] / self.tones_hz[None, :]))  # [n, classes]
        logits = -8.0 * distance
        logits[spectrum.max(axis=1) < 1e-6] = 0.0  # silence: no preference
        if self.wrong_classes:
            logits = logits[:, :-1]
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return {"logits": logits.astype(np.float32), "probabilities": probabilities.astype(np.float32)}


def tone(freq_hz: float, seconds: float, sample_rate_hz: int, channels: int = 1, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate_hz))) / sample_rate_hz
    wave = (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave


def encode(samples: np.ndarray, sample_rate_hz: int, fmt: str = "WAV", subtype: str | None = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate_hz, format=fmt, subtype=subtype)
    return buffer.getvalue()


def settings(tmp_path, **changes) -> ServeSettings:
    return ServeSettings(model_dir=tmp_path, max_wait_ms=changes.pop("max_wait_ms", 2.0), **changes)


def wait_ready(client: TestClient, timeout_seconds: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while client.get("/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError("the app never got ready")
        time.sleep(0.01)


@pytest.fixture
def backend() -> ToneBackend:
    return ToneBackend()


@pytest.fixture
def client(tmp_path, backend):
    app = create_app(settings(tmp_path), backend=backend)
    with TestClient(app) as test_client:
        wait_ready(test_client)
        yield test_client


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` from Prometheus text."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


# -- classification --------------------------------------------------------------------------------------
@pytest.mark.parametrize("label, fmt, subtype, rate, channels", [
    ("low", "WAV", "PCM_16", 8000, 1),
    ("mid", "FLAC", "PCM_24", 44100, 2),
    ("high", "OGG", "VORBIS", 22050, 1),
    ("mid", "WAV", "FLOAT", 16000, 3),
])
def test_classify_any_format_rate_and_channels(client, label, fmt, subtype, rate, channels):
    data = encode(tone(TONES_HZ[label], 1.3, rate, channels), rate, fmt, subtype)
    response = client.post("/classify", files={"file": (f"clip.{fmt.lower()}", data)}, params={"top_k": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] == label and body["predicted_class"] == list(TONES_HZ).index(label)
    assert body["probability"] > 0.9 and body["top_k"][0] == {"label": label, "probability": body["probability"]}
    assert len(body["top_k"]) == 2 and body["top_k"][1]["probability"] < 0.1
    assert body["duration_seconds"] == pytest.approx(1.3, abs=1e-3)
    assert body["sample_rate_hz"] == rate and body["channels"] == channels
    # 1.3 s, 0.5-s windows every 0.25 s (half a clip): 1 + ceil((1.3 - 0.5) / 0.25) = 5 windows
    assert body["num_windows"] == 5 and "windows" not in body
    assert body["request_id"] == response.headers["x-request-id"] and body["processing_ms"] > 0


def test_article_path_and_default_top_k(client):
    data = encode(tone(300, 0.5, 8000), 8000)
    response = client.post("/classify/", files={"file": ("a.wav", data)})
    assert response.status_code == 200
    body = response.json()
    assert body["predicted_class"] == 0 and len(body["top_k"]) == 3  # default_top_k = 3 = all classes
    assert sum(item["probability"] for item in body["top_k"]) == pytest.approx(1.0, abs=3e-6)
    # to 6 decimals, as each window's and as predict and lite answer
    assert all(item["probability"] == round(item["probability"], 6) for item in body["top_k"])
    assert body["probability"] == body["top_k"][0]["probability"] and body["label"] == body["top_k"][0]["label"]
    # top_k above the number of classes is capped
    assert len(client.post("/classify?top_k=50", files={"file": ("a.wav", data)}).json()["top_k"]) == 3


def test_the_default_top_k_is_three_labels_of_a_model_with_more(tmp_path):
    """The stand-in has exactly three classes, so "3 = all" hid what default_top_k is: a number of labels."""
    backend = ToneBackend()
    backend.labels += ("top",)
    backend.tones_hz = np.append(backend.tones_hz, 3500.0)
    data = encode(tone(3500, 0.5, 8000), 8000)
    with TestClient(create_app(settings(tmp_path), backend=backend)) as client:
        wait_ready(client)
        body = client.post("/classify", files={"file": ("a.wav", data)}).json()
    assert body["label"] == "top" and body["predicted_class"] == 3
    assert [item["label"] for item in body["top_k"]][:1] == ["top"] and len(body["top_k"]) == 3  # the documented 3
    with TestClient(create_app(settings(tmp_path, default_top_k=4), backend=backend)) as client:
        wait_ready(client)
        assert len(client.post("/classify", files={"file": ("a.wav", data)}).json()["top_k"]) == 4


def test_windows_timeline_follows_the_recording(client):
    rate = 8000
    wave = np.concatenate([tone(300, 1.0, rate), tone(2200, 1.0, rate), tone(900, 1.0, rate)])
    response = client.post("/classify?windows=true", files={"file": ("long.wav", encode(wave, rate))})
    assert response.status_code == 200
    timeline = response.json()["windows"]
    # 3 s, 0.5-s windows every 0.25 s: 1 + ceil(2.5 / 0.25) = 11 windows
    assert [w["start_seconds"] for w in timeline] == pytest.approx(np.arange(11) * 0.25)
    assert timeline[-1]["end_seconds"] == pytest.approx(3.0)
    whole = {0: "low", 1: "low", 4: "high", 5: "high", 8: "mid", 9: "mid", 10: "mid"}  # windows inside one tone
    assert {i: timeline[i]["label"] for i in whole} == whole
    assert all(timeline[i]["probability"] > 0.9 for i in whole)
    # each window lists its best classes (the request's top_k, default 3 = all), as predict and lite do
    assert all(len(w["top_k"]) == 3 and w["top_k"][0] == {"label": w["label"], "probability": w["probability"]}
               and w["predicted_class"] == list(TONES_HZ).index(w["label"]) for w in timeline)
    assert sum(t["probability"] for t in timeline[4]["top_k"]) == pytest.approx(1.0, abs=3e-6)


def test_windows_answer_the_events_lite_gives(client):
    """low, high, mid for 1 s each: three events, each from its first window's start to its last window's end over
    windows of its label alone, the events sound_tf.lite answers for the same timeline (and the batch's too)."""
    rate = 8000
    data = encode(np.concatenate([tone(300, 1.0, rate), tone(2200, 1.0, rate), tone(900, 1.0, rate)]), rate)
    body = client.post("/classify?windows=true", files={"file": ("long.wav", data)}).json()
    timeline, events = body["windows"], body["events"]
    assert [e["label"] for e in events] == ["low", "high", "mid"]
    assert [(e["first_window"], e["last_window"]) for e in events] == [(0, 2), (3, 7), (8, 10)]  # every window
    for event in events:
        inside = timeline[event["first_window"]:event["last_window"] + 1]
        assert {w["label"] for w in inside} == {event["label"]}
        assert (event["start_seconds"], event["end_seconds"]) == (inside[0]["start_seconds"], inside[-1]["end_seconds"])
        assert event["peak_probability"] == max(w["probability"] for w in inside) > 0.99
    assert [(e["start_seconds"], e["end_seconds"]) for e in events] == [(0.0, 1.0), (0.75, 2.25), (2.0, 3.0)]
    assert events == window_events(timeline, min_probability=DEFAULT_MIN_PROBABILITY)
    batch = client.post("/classify/batch?windows=true", files=[("files", ("long.wav", data))]).json()
    assert batch["results"][0]["events"] == events
    assert "events" not in client.post("/classify", files={"file": ("long.wav", data)}).json()  # no windows asked
    assert "events" not in client.post("/classify/batch", files=[("files", ("long.wav", data))]).json()["results"][0]


def test_min_probability_sets_which_windows_make_an_event(client):
    """A 500-Hz tone lies between low (300 Hz) and mid (900 Hz): its windows read low at 1 / (1 + exp(-8 (log2(900 /
    500) - log2(500 / 300)))) = 0.708, part of the low event at the default 0.5 and not at min_probability=0.8."""
    rate = 8000
    data = encode(np.concatenate([tone(300, 1.0, rate), tone(500, 1.0, rate)]), rate)
    between = 1.0 / (1.0 + np.exp(-8.0 * (np.log2(900 / 500) - np.log2(500 / 300))))
    body = client.post("/classify?windows=true", files={"file": ("two.wav", data)}).json()
    timeline = body["windows"]
    assert [w["label"] for w in timeline] == ["low"] * 7  # 2 s: windows at 0, 0.25, ..., 1.5 s
    assert [w["probability"] for w in timeline[4:]] == pytest.approx([between] * 3, abs=1e-4)  # from 1 s on
    assert [(e["label"], e["first_window"], e["last_window"], e["end_seconds"]) for e in body["events"]] == \
        [("low", 0, 6, 2.0)]
    strict = client.post("/classify?windows=true&min_probability=0.8", files={"file": ("two.wav", data)}).json()
    assert strict["windows"] == timeline
    assert timeline[3]["probability"] > 0.99  # 0.75-1.25 s, half of each tone: its spectral peak is 300 Hz's
    assert [(e["label"], e["first_window"], e["last_window"], e["end_seconds"]) for e in strict["events"]] == \
        [("low", 0, 3, 1.25)]
    assert strict["events"] == window_events(timeline, min_probability=0.8)
    batch = client.post("/classify/batch?windows=true&min_probability=0.8", files=[("files", ("two.wav", data))])
    assert batch.json()["results"][0]["events"] == strict["events"]  # the batch's threshold is the query's too
    at_between = client.post(f"/classify?windows=true&min_probability={timeline[-1]['probability']}",
                             files={"file": ("two.wav", data)}).json()["events"]
    assert [(e["first_window"], e["last_window"]) for e in at_between] == [(0, 6)]  # "at or above" the threshold


def test_without_min_probability_a_window_needs_lites_default_to_join_an_event(client):
    """A silent second between two low tones: the stand-in has no preference there, so those windows read low at
    1 / 3, below the default min_probability; the low event ends before them and another starts after, as at an
    explicit 0.5 (session 53's mutation audit: a default of 0 passed every test), on /classify and the batch."""
    rate = 8000
    data = encode(np.concatenate([tone(300, 1.0, rate), np.zeros(rate, np.float32), tone(300, 1.0, rate)]), rate)
    uniform = 1.0 / len(TONES_HZ)
    assert uniform < DEFAULT_MIN_PROBABILITY
    body = client.post("/classify?windows=true", files={"file": ("gap.wav", data)}).json()
    timeline = body["windows"]
    silent = [w["index"] for w in timeline if w["start_seconds"] >= 1.0 and w["end_seconds"] <= 2.0]
    assert silent == [4, 5, 6]  # 1.0-1.5, 1.25-1.75 and 1.5-2.0 s
    assert [w["label"] for w in timeline] == ["low"] * 11  # ties keep class order
    assert [timeline[i]["probability"] for i in silent] == pytest.approx([uniform] * 3, abs=1e-6)
    before, after = [(e["first_window"], e["last_window"]) for e in body["events"]]
    assert (before, after) == ((0, silent[0] - 1), (silent[-1] + 1, len(timeline) - 1))
    explicit = client.post(f"/classify?windows=true&min_probability={DEFAULT_MIN_PROBABILITY}",
                           files={"file": ("gap.wav", data)}).json()
    assert explicit["events"] == body["events"]
    batch = client.post("/classify/batch?windows=true", files=[("files", ("gap.wav", data))]).json()
    assert batch["results"][0]["events"] == body["events"]
    low = client.post(f"/classify?windows=true&min_probability={uniform / 2}", files={"file": ("gap.wav", data)})
    assert [(e["first_window"], e["last_window"]) for e in low.json()["events"]] == [(0, len(timeline) - 1)]


@pytest.mark.parametrize("overrides", [{"data.silence_label": "high"},
                                       {"data.keep_labels": ["low", "mid"], "data.other_label": "high"}])
def test_the_runs_silence_and_other_classes_are_never_events(tmp_path, overrides):
    """A run whose data.silence_label, or data.other_label (session 53's mutation audit: other_label left out of
    ModelInfo.from_config passed every test), is 'high': its windows end the event before them and make none, as
    lite's not_events do; the same timeline with 'high' counted would have a high event."""
    config = apply_overrides(CONFIG, overrides)
    backend = ToneBackend(config)
    assert backend.not_events == ("high",)
    rate = 8000
    data = encode(np.concatenate([tone(300, 1.0, rate), tone(2200, 1.0, rate), tone(300, 1.0, rate)]), rate)
    with TestClient(create_app(settings(tmp_path), backend=backend)) as client:
        wait_ready(client)
        body = client.post("/classify?windows=true", files={"file": ("gap.wav", data)}).json()
    timeline = body["windows"]
    assert [w["label"] for w in timeline][3:8] == ["high"] * 5
    assert [(e["label"], e["first_window"], e["last_window"]) for e in body["events"]] == [("low", 0, 2),
                                                                                          ("low", 8, 10)]
    assert body["events"] == window_events(timeline, leave_out=("high",))
    assert [e["label"] for e in window_events(timeline)] == ["low", "high", "low"]


def test_the_tflite_backend_leaves_out_the_classes_lite_leaves_out(monkeypatch):
    """The TFLite backend's not_events are the on-device runner's (read from the config inside the model), and a
    bundle's config.json that names none is not refused for it: export writes the classes, not the events, into
    the model."""
    from sound_tf import lite
    from sound_tf.serve.backends import LiteBackend, check_describes

    class StandIn:  # what LiteClassifier reads from a model file whose run has data.silence_label 'high'
        labels, variant, not_events = tuple(TONES_HZ), "float32", ("high",)
        sample_rate_hz, clip_samples, window_hop_samples = 8000, 4000, 2000

        def __init__(self, model_path, *, num_threads):
            pass

    monkeypatch.setattr(lite, "LiteClassifier", StandIn)
    served = LiteBackend(Path("model_float32.tflite"))
    assert served.not_events == ("high",)
    said = ModelInfo.from_config(CONFIG)
    assert said.not_events == ()
    check_describes(said, ModelInfo(labels=served.labels, sample_rate_hz=8000, clip_samples=4000,
                                    window_hop_samples=2000, not_events=served.not_events), served.path)


@pytest.mark.parametrize("path", ["/classify", "/classify/batch"])
def test_a_min_probability_outside_0_to_1_or_without_windows_is_a_422_naming_it(client, path):
    field = "files" if path.endswith("batch") else "file"
    data = encode(tone(300, 1.0, 8000), 8000)
    for value in ("1.5", "-0.1", "nan"):
        response = client.post(f"{path}?windows=true&min_probability={value}", files=[(field, ("a.wav", data))])
        assert response.status_code == 422 and response.json()["error"] == "invalid_parameter", value
        assert response.json()["detail"] == f"query parameter min_probability must be a probability from 0 to 1, " \
                                            f"got {float(value)!r}"
    response = client.post(f"{path}?min_probability=0.8", files=[(field, ("a.wav", data))])  # it would change nothing
    assert response.status_code == 422 and response.json()["error"] == "invalid_parameter"
    assert response.json()["detail"] == "min_probability=0.8 sets the events of a windowed answer: add windows=true"
    for value in ("0", "1"):  # the ends of the range are allowed
        assert client.post(f"{path}?windows=true&min_probability={value}",
                           files=[(field, ("a.wav", data))]).status_code == 200


@pytest.mark.parametrize("path", ["/classify", "/classify/batch"])
def test_a_min_probability_that_is_no_number_is_the_422_of_one_outside_0_to_1(client, path):
    """min_probability=abc was FastAPI's "query.min_probability: Input should be a valid number, unable to parse
    string as a number (got 'abc')", where 1.5 is told the range: it now gets the same words, with the value given
    (a long one cut to 60 characters and '...'), with or without windows=true, and beside another bad parameter."""
    field = "files" if path.endswith("batch") else "file"
    data = encode(tone(300, 1.0, 8000), 8000)
    range_words = "query parameter min_probability must be a probability from 0 to 1, got "
    for query, given in (("windows=true&min_probability=abc", "'abc'"), ("windows=true&min_probability=", "''"),
                         ("min_probability=high", "'high'"),  # the value is refused before the missing windows=true
                         ("windows=true&min_probability=" + "9" * 59 + "x" * 41, repr("9" * 59 + "x" + "...")),
                         ("windows=true&min_probability=0.5" + "0" * 57 + "x", repr("0.5" + "0" * 57 + "..."))):
        response = client.post(f"{path}?{query}", files=[(field, ("a.wav", data))])
        assert response.status_code == 422 and response.json()["error"] == "invalid_parameter", query
        assert response.json()["detail"] == range_words + given, query
    response = client.post(f"{path}?windows=true&min_probability=abc&top_k=0", files=[(field, ("a.wav", data))])
    assert response.status_code == 422 and response.json()["error"] == "invalid_parameter"
    assert response.json()["detail"] == "query.top_k: Input should be greater than or equal to 1 (got '0'); " \
                                        + range_words + "'abc'"


def test_silent_audio_is_classified_normally(client):
    response = client.post("/classify", files={"file": ("silence.wav", encode(np.zeros(8000, np.float32), 8000))})
    assert response.status_code == 200
    probabilities = [item["probability"] for item in response.json()["top_k"]]
    assert probabilities == pytest.approx([1 / 3] * 3, abs=1e-6)
    # ... and said to be silence: its labels are the model's answer to nothing (a tone's answer says nothing of it)
    assert response.json()["warning"] == ("silent: every sample is zero (in 16-bit PCM) over its 1.00 s; its classes "
                                          "are the model's answer to silence, not to a sound")
    quiet = np.zeros(8000, np.float32)
    quiet[4000] = 1 / 32768  # one step of 16-bit PCM: a recording, however quiet
    for name, data in (("quiet.wav", encode(quiet, 8000)), ("tone.wav", encode(tone(900, 0.5, 8000), 8000))):
        assert "warning" not in client.post("/classify", files={"file": (name, data)}).json()
    batch = client.post("/classify/batch", files=[("files", ("a.wav", encode(np.zeros(4000, np.float32), 8000))),
                                                  ("files", ("b.wav", encode(tone(900, 0.5, 8000), 8000)))]).json()
    assert [r.get("warning", "")[:7] for r in batch["results"]] == ["silent:", ""]


def test_clip_score_is_the_softmax_of_mean_logits(client, backend):
    """A recording whose windows disagree: the answer is softmax(mean logits), as evaluation scores it."""
    rate = 8000
    wave = np.concatenate([tone(300, 0.5, rate), tone(900, 0.75, rate)])  # windows: low, mixed, mid, mid
    windows = split_windows(wave, clip_samples=backend.clip_samples, hop_samples=backend.window_hop_samples)
    mean = backend.predict(windows)["logits"].astype(np.float64).mean(axis=0)  # [classes]
    expected = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()
    body = client.post("/classify?top_k=3", files={"file": ("two.wav", encode(wave, rate, "WAV", "FLOAT"))}).json()
    assert body["num_windows"] == 4
    got = {item["label"]: item["probability"] for item in body["top_k"]}
    np.testing.assert_allclose([got[label] for label in backend.labels], expected, atol=1e-6)


def test_batch_endpoint_fails_only_the_bad_file(client):
    files = [("files", ("low.wav", encode(tone(300, 0.7, 8000), 8000))),
             ("files", ("notes.txt", b"just some text, not audio at all " * 20)),
             ("files", ("high.flac", encode(tone(2200, 0.7, 32000), 32000, "FLAC", "PCM_16")))]
    response = client.post("/classify/batch", files=files)
    assert response.status_code == 200
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (2, 1)
    first, bad, last = body["results"]
    assert (first["filename"], first["label"]) == ("low.wav", "low")
    assert (last["filename"], last["label"]) == ("high.flac", "high")
    assert bad["filename"] == "notes.txt" and bad["error"] == "unsupported_format" and bad["status"] == 415
    assert "notes.txt" in bad["detail"] and "though its name ends" not in bad["detail"]  # a .txt is not audio by name
    # a failed entry is counted by kind, like a failed request, and the good files' durations are recorded
    samples = metric_samples(client.get("/metrics").text)
    assert samples[("sound_tf_errors_total", (("kind", "unsupported_format"),))] == 1
    assert samples[("sound_tf_audio_duration_seconds_count", ())] == 2
    assert samples[("sound_tf_audio_duration_seconds_sum", ())] == pytest.approx(1.4)
    assert samples[("sound_tf_audio_duration_seconds_bucket", (("le", "0.5"),))] == 0
    assert samples[("sound_tf_audio_duration_seconds_bucket", (("le", "1.0"),))] == 2


def test_two_files_sent_to_classify_are_refused_not_one_dropped(client):
    """``curl -F file=@a.wav -F file=@b.ogg /classify`` answered 200 for b.ogg alone: a.wav vanished."""
    low, high = encode(tone(300, 0.7, 8000), 8000), encode(tone(2200, 0.7, 8000), 8000)
    response = client.post("/classify", files=[("file", ("low.wav", low)), ("file", ("high.wav", high))])
    assert response.status_code == 422 and response.json()["error"] == "invalid_parameter", response.text
    assert response.json()["detail"] == ("2 parts named 'file' in one request: /classify takes one recording; "
                                         "send several as 'files' to /classify/batch")
    one = client.post("/classify", files={"file": ("high.wav", high)})
    assert one.status_code == 200 and one.json()["label"] == "high"


def test_batch_limits(tmp_path, backend):
    app = create_app(settings(tmp_path, max_files_per_request=2), backend=backend)
    with TestClient(app) as client:
        wait_ready(client)
        data = encode(tone(300, 0.5, 8000), 8000)
        response = client.post("/classify/batch", files=[("files", (f"{i}.wav", data)) for i in range(3)])
        assert response.status_code == 413 and response.json()["error"] == "too_many_files"
        assert response.json()["detail"] == \
            "3 files in one request; the limit is 2 (the server's SOUND_TF_MAX_FILES_PER_REQUEST)"
        response = client.post("/classify/batch", data={"note": "no files"})
        assert response.status_code == 422 and response.json()["error"] == "missing_field"
        assert "'files'" in response.json()["detail"]


def test_labels_health_ready_docs(client):
    assert client.get("/labels").json() == {"labels": ["low", "mid", "high"], "num_classes": 3}
    assert client.get("/health").json() == {"status": "ok", "model": "ready"}
    ready = client.get("/ready").json()
    assert ready["status"] == "ready" and ready["backend"] == "tones"
    assert ready["sample_rate_hz"] == 8000 and ready["clip_seconds"] == 0.5 and ready["window_hop_seconds"] == 0.25
    schema = client.get("/openapi.json").json()
    for path in ["/classify", "/classify/", "/classify/batch", "/labels", "/health", "/ready", "/metrics"]:
        assert path in schema["paths"], path
    assert "file" in json.dumps(schema["components"]) and client.get("/docs").status_code == 200


# -- bad input: the server answers with the problem and keeps serving ----------------------------------------
def _truncated_wav() -> bytes:
    data = encode(tone(300, 1.0, 8000), 8000)
    return data[: len(data) // 2]


def _nan_wav() -> bytes:
    wave = tone(300, 0.5, 8000)
    wave[100:110] = np.nan
    return encode(wave, 8000, "WAV", "FLOAT")


def _corrupt_flac() -> bytes:
    data = encode(tone(300, 1.0, 8000), 8000, "FLAC", "PCM_16")
    return data[: len(data) // 2]


@pytest.mark.parametrize("filename, payload, status, kind, words", [
    ("empty.wav", b"", 422, "empty_file", ["empty.wav", "0 bytes"]),
    ("photo.wav", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, 415, "unsupported_format",
     ["photo.wav", "not an audio format", "though its name ends in .wav: a damaged file, or another kind of file"]),
    ("cut.wav", _truncated_wav(), 422, "truncated_audio",
     ["cut.wav", "truncated", "declares 16000 bytes", "holds 7978"]),
    ("broken.flac", _corrupt_flac(), 422, "invalid_audio", ["broken.flac", "libsndfile"]),
    ("broken.ogg", encode(tone(300, 1.0, 8000), 8000, "OGG", "VORBIS")[:300], 422, "corrupt_audio",
     ["broken.ogg", "malformed"]),
    ("nan.wav", _nan_wav(), 422, "invalid_audio", ["nan.wav", "10 NaN"]),
    ("pcm.wav", encode(np.round(tone(300, 0.5, 8000) * 32767), 8000, "WAV", "FLOAT"), 422, "invalid_audio",
     ["pcm.wav", "whole numbers up to 16384", "integer PCM stored as floats"]),
    ("doorbell from iphone.m4a", b"\0\0\0\x20ftypM4A " + b"\0" * 64, 415, "unsupported_format",  # a phone's AAC
     ["doorbell from iphone.m4a: not an audio format", "; convert it to FLAC or WAV, e.g. ffmpeg -i "
      "'doorbell from iphone.m4a' 'doorbell from iphone.flac'"]),
], ids=["empty", "not-audio", "truncated-wav", "corrupt-flac", "corrupt-ogg", "nan", "int-pcm-as-floats", "m4a"])
def test_bad_audio_is_refused_with_its_problem(client, filename, payload, status, kind, words):
    response = client.post("/classify", files={"file": (filename, payload)})
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == kind and set(body) == {"error", "detail", "request_id"}
    for word in words:
        assert word in body["detail"], (word, body["detail"])
    assert body["request_id"] == response.headers["x-request-id"]
    # ...and the next request is served normally
    good = client.post("/classify", files={"file": ("ok.wav", encode(tone(900, 0.5, 8000), 8000))})
    assert good.status_code == 200 and good.json()["label"] == "mid"


def test_missing_field_and_bad_parameters(client):
    response = client.post("/classify", data={"wrong": "field"})
    assert response.status_code == 422 and response.json()["error"] == "missing_field"
    assert "'file'" in response.json()["detail"]
    response = client.post("/classify", content=encode(tone(300, 0.5, 8000), 8000),
                           headers={"content-type": "audio/wav"})  # raw body instead of multipart
    assert response.status_code == 422 and response.json()["error"] == "missing_field"
    assert "missing form field 'file': the body was sent as audio/wav, not as multipart/form-data" \
        in response.json()["detail"]
    cut = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
           + encode(tone(300, 0.5, 8000), 8000)[:100])  # no closing boundary: the parser drops the part
    response = client.post("/classify", content=cut, headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 422 and response.json()["error"] == "missing_field"
    assert "it is incomplete: it must end with its closing boundary" in response.json()["detail"]
    data = encode(tone(300, 0.5, 8000), 8000)
    for request in ({"url": "/classify", "files": {"file": ("", data)}},  # a part without a filename is text
                    {"url": "/classify", "data": {"file": "clip.wav"}},
                    {"url": "/classify/batch", "files": [("files", ("a.wav", data)), ("files", ("", data))]}):
        response = client.post(**request)
        assert response.status_code == 422 and response.json()["error"] == "missing_field", request
        field = "'files'" if request["url"].endswith("batch") else "'file'"
        assert response.json()["detail"].startswith(f"form field {field} arrived as text, not as a file")
        assert "RIFF" not in response.json()["detail"]  # the upload's bytes are not echoed back
    response = client.post("/classify?top_k=0", files={"file": ("a.wav", data)})
    assert response.status_code == 422 and response.json()["error"] == "invalid_parameter"
    assert "top_k" in response.json()["detail"] and "'0'" in response.json()["detail"]
    response = client.get("/nowhere")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert response.json()["detail"] == "no endpoint GET /nowhere; see /docs"  # not Starlette's bare "Not Found"
    response = client.get("/classify")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert response.headers["allow"] == "POST"  # RFC 9110: a 405 says what is allowed (it was dropped)
    assert "GET" in client.put("/health").headers["allow"].split(", ")
    for probe in ("/health", "/ready"):  # uptime checkers send HEAD
        response = client.head(probe)
        assert response.status_code == 200 and response.content == b""


def test_missing_field_names_the_parts_that_came(client):
    # curl -F upload=@a.wav was told only "missing form field 'file': the multipart body holds no such part"
    data = encode(tone(300, 0.5, 8000), 8000)
    response = client.post("/classify", files={"upload": ("a.wav", data)})
    assert response.status_code == 422 and response.json()["error"] == "missing_field"
    assert response.json()["detail"].startswith(
        "missing form field 'file': the multipart body's part is named 'upload'; send the audio as a file")
    response = client.post("/classify", files=[("files", ("a.wav", data)), ("note", ("b.wav", data))])
    assert response.json()["detail"].startswith("missing form field 'file': the multipart body's parts are named "
                                                "'files', 'note' ('files' is the field of /classify/batch); send")
    response = client.post("/classify/batch", files={"file": ("a.wav", data)})
    assert response.status_code == 422 and response.json()["detail"].startswith(
        "missing form field 'files': the multipart body's part is named 'file' ('file' is the field of /classify)")
    good = client.post("/classify", files={"file": ("a.wav", data)})
    assert good.status_code == 200 and good.json()["label"] == "low"


def test_upload_and_duration_limits(tmp_path, backend):
    limit = 64 * 1024
    app = create_app(settings(tmp_path, max_upload_bytes=limit, max_audio_seconds=2.0), backend=backend)
    with TestClient(app) as client:
        wait_ready(client)
        big = encode(tone(300, 6.0, 8000), 8000)  # 96 kB of PCM
        response = client.post("/classify", files={"file": ("big.wav", big)})
        assert response.status_code == 413 and response.json()["error"] == "upload_too_large"
        assert str(limit) in response.json()["detail"]
        long = encode(tone(300, 3.0, 8000, amplitude=0.1), 8000, "WAV", "PCM_U8")  # 24 kB, 3 s
        response = client.post("/classify", files={"file": ("long.wav", long)})
        assert response.status_code == 413 and response.json()["error"] == "audio_too_long"
        assert "3.0 s" in response.json()["detail"] and "2 s" in response.json()["detail"]
        bomb = io.BytesIO()  # 1 s of silence, 8 channels at 655,350 Hz: 20 kB of FLAC, 21 MB decoded
        sf.write(bomb, np.zeros((655_350, 8), np.int16), 655_350, format="FLAC", subtype="PCM_16")
        assert len(bomb.getvalue()) < limit
        response = client.post("/classify", files={"file": ("bomb.flac", bomb.getvalue())})
        assert response.status_code == 413 and response.json()["error"] == "audio_too_large"
        assert response.json()["detail"] == ("bomb.flac: 8 channels at 655350 Hz for 1.0 s decode to 5242800 samples, "
                                             "over the limit of 384000 (2 s of 96-kHz stereo, the server's "
                                             "SOUND_TF_MAX_AUDIO_SECONDS); send fewer channels or a lower rate")
        mono = io.BytesIO()  # one channel at that rate is over the limit too, and said in the singular
        sf.write(mono, np.zeros(655_350, np.int16), 655_350, format="FLAC", subtype="PCM_16")
        response = client.post("/classify", files={"file": ("mono.flac", mono.getvalue())})
        assert response.status_code == 413 and "mono.flac: 1 channel at 655350 Hz for 1.0 s decode to 655350 " \
            "samples, over the limit of 384000" in response.json()["detail"]
        assert client.post("/classify",
                           files={"file": ("ok.wav", encode(tone(300, 1.0, 8000), 8000))}).status_code == 200
        client.post("/nowhere", files={"file": ("big.wav", big)})  # refused up front too, but routes nowhere
        samples = metric_samples(client.get("/metrics").text)
    # a body refused before routing (its declared size) still counts under the endpoint it was sent to
    status = {code: samples.get(("sound_tf_http_requests_total", (("endpoint", endpoint), ("method", "POST"),
                                                                  ("status", "413"))), 0)
              for code, endpoint in (("classify", "/classify"), ("nowhere", "unmatched"))}
    assert status == {"classify": 4, "nowhere": 1}  # too large by its size, too long, too large decoded (twice)


def _call_asgi(app, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks, chunk_delay: float,
               with_headers: bool = False):
    """Drive the ASGI app directly with a body sent in ``chunks`` (``None`` = the client stalls forever); with
    ``with_headers``, the response's headers ``{name: value}`` (bytes) come back too."""
    sent: list[dict] = []
    consumed = {"chunks": 0}

    async def run():
        async with app.router.lifespan_context(app):
            await app.state.service.wait_ready(10)
            queue = list(chunks)

            async def receive():
                if not queue:
                    await asyncio.sleep(3600)
                chunk = queue.pop(0)
                if chunk is None:
                    await asyncio.sleep(3600)
                await asyncio.sleep(chunk_delay)
                consumed["chunks"] += 1
                return {"type": "http.request", "body": chunk, "more_body": True}

            async def send(message):
                sent.append(message)

            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                     "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                     "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000),
                     "server": ("127.0.0.1", 8000)}
            await app(scope, receive, send)

    asyncio.run(run())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    if with_headers:
        return start["status"], json.loads(body), consumed["chunks"], dict(start["headers"])
    return start["status"], json.loads(body), consumed["chunks"]


def test_streamed_body_over_the_limit_is_cut_off_early(tmp_path, backend):
    limit = 64 * 1024
    app = create_app(settings(tmp_path, max_upload_bytes=limit), backend=backend)
    headers = [(b"content-type", b"multipart/form-data; boundary=xyz")]  # no Content-Length: chunked
    part = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    endless = [part + b"a" * 8192] + [b"a" * 8192] * 1000  # would be 8 MB
    status, body, consumed = _call_asgi(app, "POST", "/classify", headers, endless, 0.0)
    assert status == 413 and body["error"] == "upload_too_large"
    assert consumed == (limit - len(part)) // 8192 + 1  # stopped at the first chunk past the limit, not at 8 MB


def test_a_limits_error_names_the_variable_that_raises_it(tmp_path, backend, monkeypatch):
    """audio_too_long and upload_too_large gave the limit and not what sets it (the server has no flag for either):
    each names its SOUND_TF_* variable, and a server started with that variable above the upload takes it."""
    long = encode(tone(300, 3.0, 8000, amplitude=0.1), 8000, "WAV", "PCM_U8")  # 24 kB, 3 s
    headers = [(b"content-type", b"multipart/form-data; boundary=xyz")]  # no Content-Length: counted as it streams
    part = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    named: list[str] = []
    with TestClient(create_app(settings(tmp_path, max_upload_bytes=16 * 1024, max_audio_seconds=2.0),
                               backend=backend)) as client:
        wait_ready(client)
        refused = client.post("/classify", files={"file": ("long.wav", long)})  # declared: 24 kB and more
        assert refused.json()["detail"].endswith(" exceeds the upload limit of 16384 bytes (the server's "
                                                 "SOUND_TF_MAX_UPLOAD_BYTES)"), refused.json()
        named.append(re.search(r"the server's (SOUND_TF_\w+)\)$", refused.json()["detail"])[1])
    status, body, _ = _call_asgi(create_app(settings(tmp_path, max_upload_bytes=16 * 1024), backend=backend),
                                 "POST", "/classify", headers, [part + b"a" * 8192] * 3, 0.0)
    assert (status, body["detail"]) == (413, "the request body exceeds the upload limit of 16384 bytes (the server's "
                                             "SOUND_TF_MAX_UPLOAD_BYTES)")
    answers = []
    for upload_bytes, audio_seconds in ((16 * 1024, 2.0), (64 * 1024, 2.0), (64 * 1024, 3.5)):  # the named variables
        monkeypatch.setenv(named[0], str(upload_bytes))
        if len(named) > 1:
            monkeypatch.setenv(named[1], str(audio_seconds))
        with TestClient(create_app(ServeSettings(model_dir=tmp_path, max_wait_ms=2.0, **(
                {} if len(named) > 1 else {"max_audio_seconds": audio_seconds})), backend=backend)) as client:
            wait_ready(client)
            answer = client.post("/classify", files={"file": ("long.wav", long)})
            answers.append((answer.status_code, answer.json().get("error")))
            if answer.json().get("error") == "audio_too_long":
                assert answer.json()["detail"] == ("long.wav: 3.0 s of audio exceeds the limit of 2 s per file (the "
                                                   "server's SOUND_TF_MAX_AUDIO_SECONDS)")
                named.append(re.search(r"the server's (SOUND_TF_\w+)\)$", answer.json()["detail"])[1])
    assert answers == [(413, "upload_too_large"), (413, "audio_too_long"), (200, None)]


def test_declared_length_over_the_limit_is_refused_before_reading(tmp_path, backend):
    app = create_app(settings(tmp_path, max_upload_bytes=64 * 1024), backend=backend)
    headers = [(b"content-type", b"multipart/form-data; boundary=xyz"), (b"content-length", b"1000000000")]
    status, body, consumed = _call_asgi(app, "POST", "/classify", headers, [b"x" * 100] * 5, 0.0)
    assert status == 413 and body["error"] == "upload_too_large" and "1000000000 bytes" in body["detail"]
    assert consumed == 0


def test_slow_client_times_out(tmp_path, backend):
    app = create_app(settings(tmp_path, body_timeout_seconds=0.3), backend=backend)
    headers = [(b"content-type", b"multipart/form-data; boundary=xyz"), (b"content-length", b"5000")]
    began = time.perf_counter()
    status, body, consumed = _call_asgi(app, "POST", "/classify", headers, [b"--xyz\r\n", None], 0.0)
    assert status == 408 and body["error"] == "body_timeout" and "0.3 s" in body["detail"]
    assert consumed == 1 and time.perf_counter() - began < 5


@pytest.mark.parametrize("path", ["/classify", "/classify/batch"])
def test_a_body_that_timed_out_closes_the_connection(tmp_path, backend, path):
    """A 408 leaves the rest of the body unread: on a kept connection it would be parsed as the next request, so
    the answer closes it, as a 413's does (nothing checked the 408's header)."""
    app = create_app(settings(tmp_path, body_timeout_seconds=0.3), backend=backend)
    headers = [(b"content-type", b"multipart/form-data; boundary=xyz"), (b"content-length", b"5000")]
    status, body, consumed, sent = _call_asgi(app, "POST", path, headers, [b"--xyz\r\n", None], 0.0, with_headers=True)
    assert (status, body["error"], consumed) == (408, "body_timeout", 1)
    assert sent[b"connection"] == b"close" and sent[b"x-request-id"].decode() == body["request_id"]


def test_model_timeout(tmp_path):
    slow = ToneBackend(delay_seconds=0.5)
    app = create_app(settings(tmp_path, request_timeout_seconds=0.1), backend=slow)
    with TestClient(app) as client:
        wait_ready(client)
        data = encode(tone(300, 0.5, 8000), 8000)
        response = client.post("/classify", files={"file": ("a.wav", data)})
        assert response.status_code == 503 and response.json()["error"] == "timeout"
        assert "0.1 s" in response.json()["detail"]
        slow.delay_seconds = 0.0
        time.sleep(0.6)
        assert client.post("/classify", files={"file": ("a.wav", data)}).status_code == 200


def test_a_model_failure_fails_only_its_request(client, backend):
    data = encode(tone(300, 0.5, 8000), 8000)
    backend.fail_next = True
    response = client.post("/classify", files={"file": ("a.wav", data)})
    assert response.status_code == 500 and response.json()["error"] == "inference_failed"
    assert "RuntimeError" in response.json()["detail"] and "memory" not in response.json()["detail"]
    assert client.post("/classify", files={"file": ("a.wav", data)}).json()["label"] == "low"


def test_not_ready_until_warmed_up_then_ready(tmp_path):
    gate = threading.Event()
    app = create_app(settings(tmp_path), backend=ToneBackend(gate=gate))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200 and client.get("/health").json()["model"] == "loading"
        assert client.get("/ready").status_code == 503 and client.get("/ready").json()["status"] == "loading"
        response = client.post("/classify", files={"file": ("a.wav", encode(tone(300, 0.5, 8000), 8000))})
        assert response.status_code == 503 and response.json()["error"] == "not_ready"
        # the batch endpoint too: a 503 to retry, not a 200 whose every entry failed
        response = client.post("/classify/batch", files=[("files", (f"{i}.wav", encode(tone(300, 0.5, 8000), 8000)))
                                                         for i in range(2)])
        assert response.status_code == 503 and response.json()["error"] == "not_ready", response.text
        assert "still loading" in response.json()["detail"]
        gate.set()
        wait_ready(client)
        assert client.post("/classify",
                           files={"file": ("a.wav", encode(tone(300, 0.5, 8000), 8000))}).status_code == 200
    service = app.state.service  # shut down: what /ready would answer during the grace period
    assert service.state == "stopped" and not service.ready and service.describe() == {}


def test_a_model_that_fails_to_load_is_reported(tmp_path):
    app = create_app(settings(tmp_path), backend=ToneBackend(wrong_classes=True))
    with TestClient(app) as client:
        for _ in range(100):
            if client.get("/ready").json()["status"] == "failed":
                break
            time.sleep(0.02)
        ready = client.get("/ready")
        assert ready.status_code == 503 and "3 labels" in ready.json()["detail"]
        assert client.get("/health").status_code == 503
        response = client.get("/labels")
        assert response.status_code == 503 and "failed to load" in response.json()["detail"]


def test_create_app_refuses_what_is_not_settings_or_a_backend(tmp_path):
    """create_app("runs/x") failed with "'str' object has no attribute 'model_dir'", and backend="tflite"
    built an app whose model "failed to load" with "'str' object has no attribute 'warm_up'"."""
    for bad in (str(tmp_path), tmp_path, {"model_dir": str(tmp_path)}):
        with pytest.raises(ConfigError, match=rf"create_app takes ServeSettings, e.g. create_app\(ServeSettings\("
                                              rf"model_dir=...\)\), got {type(bad).__name__} "):
            create_app(bad)
    with pytest.raises(ConfigError, match=r"backend must be a loaded Backend .*got str 'tflite'; choose the kind "
                                          r"with ServeSettings\(backend=...\)"):
        create_app(settings(tmp_path), backend="tflite")
    with TestClient(create_app(settings(tmp_path), backend=ToneBackend())) as client:
        wait_ready(client)  # the model loads in the background: /labels answers 503 until it is ready
        assert client.get("/labels").json()["labels"] == list(TONES_HZ)


def test_settings_refuse_an_unknown_keyword(tmp_path, monkeypatch):
    """ServeSettings(model_dir=..., default_topk=5) dropped the misspelt setting without a word (extra="ignore",
    there for other SOUND_TF_* variables), so the server answered 3 labels; an unknown keyword is now an error,
    while an unrelated SOUND_TF_* variable still is not."""
    with pytest.raises(ConfigError, match=r"ServeSettings: unknown setting\(s\) \['default_topk'\] \(default_topk: "
                                          r"did you mean default_top_k\?\); the settings are model_dir, backend, "):
        ServeSettings(model_dir=tmp_path, default_topk=5)
    with pytest.raises(ConfigError, match=r"\['thread', 'top_k'\]"):
        ServeSettings(model_dir=tmp_path, top_k=5, thread=2)
    monkeypatch.setenv("SOUND_TF_CACHE", str(tmp_path / "cache"))
    assert ServeSettings(model_dir=tmp_path, default_top_k=5).default_top_k == 5


def test_wrong_model_folder_fails_at_start(tmp_path):
    with pytest.raises(ConfigError, match="model folder not found"):
        create_app(ServeSettings(model_dir=tmp_path / "missing"))
    model = tmp_path / "model_int8.tflite"  # one model of a bundle instead of the bundle: not "not found"
    model.write_bytes(b"\0" * 8)
    with pytest.raises(ConfigError) as error:
        create_app(ServeSettings(model_dir=model))
    assert str(error.value) == (f"{model}: a file, not a model folder; pass the run folder or export bundle that "
                                f"holds it ({tmp_path}) with --tflite-variant int8")
    model.unlink()
    with pytest.raises(ConfigError, match="no config.json"):
        create_app(ServeSettings(model_dir=tmp_path))
    CONFIG.save(tmp_path)
    with pytest.raises(ConfigError, match="found none of model_float32.tflite"):
        create_app(ServeSettings(model_dir=tmp_path))


def stand_in_tflite(variant: str) -> bytes:
    """A FlatBuffer header with the export's metadata appended (enough for resolve_backend, not a model)."""
    info = {"sample_rate_hz": CONFIG.audio.sample_rate_hz, "clip_samples": CONFIG.audio.clip_samples,
            "window_hop_samples": CONFIG.audio.window_hop_samples, "variant": variant,
            "input_kind": "log_mel" if variant.endswith("_features") else "waveform"}
    return embed_metadata(b"\0\0\0\0TFL3" + bytes(8), labels=CONFIG.labels, info=info)


def fake_bundle(folder: Path, artefacts=("saved_model", "float32"), *, passed: bool = True,
                allow_degraded: bool = False, failures=()) -> Path:
    """An export bundle's layout with placeholder model files (resolving a backend reads a TFLite file's
    metadata, so those carry it, but never loads a model)."""
    folder.mkdir(parents=True, exist_ok=True)
    CONFIG.save(folder)
    files = {}
    for name in artefacts:
        if name == "saved_model":
            (folder / "saved_model").mkdir()
            (folder / "saved_model" / "saved_model.pb").write_bytes(b"s")
            files[name] = "saved_model"
        else:
            files[name] = f"model_{name}.tflite"
            (folder / files[name]).write_bytes(stand_in_tflite(name))
    report = {"artefacts": {"keras": {"file": "/runs/r/model.keras"}, **{k: {"file": f} for k, f in files.items()}},
              "passed": passed, "failures": list(failures), "allow_degraded": allow_degraded}
    (folder / "export.json").write_text(json.dumps(report))
    return folder


def test_backend_resolution_order(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    CONFIG.save(run)
    (run / "model.keras").write_bytes(b"k")
    assert resolve_backend(run) == ("keras", run / "model.keras")  # a run folder needs no export.json
    bundle = fake_bundle(tmp_path / "bundle", ("saved_model",))
    assert resolve_backend(bundle)[0] == "savedmodel"
    bundle = fake_bundle(tmp_path / "bundle2", ("saved_model", "int8"))
    assert resolve_backend(bundle)[0] == "savedmodel"  # the float32 file is the default variant
    assert resolve_backend(bundle, tflite_variant="int8") == ("tflite", bundle / "model_int8.tflite")
    with pytest.raises(ConfigError, match="model_float32.tflite, which is missing.*model_int8.tflite"):
        resolve_backend(bundle, "tflite")
    bundle = fake_bundle(tmp_path / "bundle3", ("saved_model", "float32", "int8"))
    assert resolve_backend(bundle) == ("tflite", bundle / "model_float32.tflite")


def test_a_tflite_variant_that_is_not_in_the_bundle_is_an_error(tmp_path):
    bundle = fake_bundle(tmp_path / "bundle", ("saved_model", "float32", "int8"))
    expected = (r"model_int9.tflite, which is missing \(TFLite variants the server can feed here: float32 "
                r"\(model_float32.tflite\), int8 ")
    with pytest.raises(ConfigError, match=expected):  # never a silent fall back to the SavedModel
        resolve_backend(bundle, tflite_variant="int9")
    with pytest.raises(ConfigError, match=expected):
        create_app(settings_from_args(parse_args([str(bundle), "--tflite-variant", "int9"])))
    with pytest.raises(ConfigError, match=expected):
        resolve_backend(bundle, "tflite", tflite_variant="int9")
    (bundle / "model_float32.tflite").unlink()
    (bundle / "model_int8.tflite").unlink()
    with pytest.raises(ConfigError, match="model_float32.tflite, which is missing .this folder has no model_"):
        create_app(ServeSettings(model_dir=bundle, tflite_variant="float32"))
    assert resolve_backend(bundle) == ("savedmodel", bundle / "saved_model")  # no variant asked for: fine


def test_a_bundle_without_float32_serves_its_best_waveform_variant(tmp_path):
    """A micro-profile bundle (int8 and int8_features only) used to need --tflite-variant int8."""
    micro = fake_bundle(tmp_path / "micro", ("int8", "int8_features"))
    assert resolve_backend(micro) == ("tflite", micro / "model_int8.tflite")
    both = fake_bundle(tmp_path / "both", ("dynamic", "int8"))
    assert resolve_backend(both) == ("tflite", both / "model_dynamic.tflite")
    saved = fake_bundle(tmp_path / "saved", ("saved_model", "int8"))
    assert resolve_backend(saved) == ("savedmodel", saved / "saved_model")  # auto: the SavedModel before int8
    only_features = fake_bundle(tmp_path / "features", ("int8_features",))
    with pytest.raises(ConfigError, match=r"found none of model_float32.tflite, saved_model/, model.keras \(this "
                                          r"folder's TFLite models \(model_int8_features.tflite\) take features, not "
                                          r"a waveform: export a waveform variant"):
        resolve_backend(only_features)  # it used to suggest --tflite-variant int8_features, which is refused


def test_serving_a_run_killed_before_its_model_was_written_says_to_resume_it(tmp_path):
    """A run folder holding config.json and run_state.json but no model: the message says to run the train
    command again, as evaluate, predict and export do, instead of only listing the missing files."""
    run = tmp_path / "run"
    run.mkdir()
    CONFIG.save(run)
    resume = rf"its training has not finished: run the same train command again \(with --out {run}\) to resume it"
    with pytest.raises(ConfigError, match=r"found none of model_float32.tflite, saved_model/, model.keras \(this "
                                          r"folder has no model_\*.tflite file\)$"):
        resolve_backend(run)  # no run_state.json: not a run, so no word about resuming
    (run / "run_state.json").write_text("{}")
    with pytest.raises(ConfigError, match=rf"found none of model_float32.tflite, saved_model/, model.keras "
                                          rf"\({resume}\)"):
        resolve_backend(run)
    with pytest.raises(ConfigError, match=rf"the keras backend needs {run}/model.keras, which is missing; {resume}"):
        resolve_backend(run, "keras")
    (run / "config.json").unlink()
    with pytest.raises(ConfigError, match=rf"{run}: no config.json; {resume}"):
        resolve_backend(run)
    (run / "run_state.json").unlink()
    with pytest.raises(ConfigError, match=r"no config.json; expected a run folder or an export bundle"):
        resolve_backend(run)


def test_a_tflite_variant_the_server_cannot_run_is_refused_at_start_up(tmp_path):
    bundle = fake_bundle(tmp_path / "bundle", ("saved_model", "float32", "int8", "int8_features"))
    with pytest.raises(ConfigError, match=r"model_int8_features.tflite: this model takes 'log_mel' input, not a "
                                          r"waveform, so the server cannot feed it uploads \(TFLite variants the "
                                          r"server can feed here: float32 \(model_float32.tflite\), int8 "
                                          r"\(model_int8.tflite\); choose"):  # not int8_features itself
        create_app(settings_from_args(parse_args([str(bundle), "--tflite-variant", "int8_features"])))
    with pytest.raises(ConfigError, match="takes 'log_mel' input"):
        resolve_backend(bundle, "tflite", tflite_variant="int8_features")
    for backend in ("savedmodel", "keras"):  # a variant is a TFLite choice: never silently ignored
        with pytest.raises(ConfigError, match=f"--tflite-variant int8 .SOUND_TF_TFLITE_VARIANT. chooses a TFLite "
                                              f"model, but the backend is {backend}"):
            create_app(settings_from_args(parse_args([str(bundle), "--backend", backend, "--tflite-variant", "int8"])))
    assert resolve_backend(bundle, "savedmodel") == ("savedmodel", bundle / "saved_model")
    assert resolve_backend(bundle, tflite_variant="int8") == ("tflite", bundle / "model_int8.tflite")


def test_a_bundle_that_failed_its_checks_is_not_served(tmp_path):
    failure = "float32: top-1 agreement with Keras 90.00% < 99.50% (thresholds.float_min_agreement)"
    bundle = fake_bundle(tmp_path / "bundle", passed=False, failures=[failure])
    with pytest.raises(ConfigError, match=r"export.json: this export failed its parity checks and was not accepted "
                                          r"with --allow-degraded(.|\n)*float32: top-1 agreement with Keras 90.00%"):
        create_app(ServeSettings(model_dir=bundle))
    with pytest.raises(ConfigError, match="failed its parity checks"):
        resolve_backend(bundle, "savedmodel")
    (bundle / "export.json").write_text("{not json")
    with pytest.raises(ConfigError, match="export.json: cannot read the export report"):
        resolve_backend(bundle)


def test_a_degraded_bundle_accepted_by_the_user_is_served_with_a_warning(tmp_path, monkeypatch, caplog):
    from sound_tf.serve import backends

    failure = "float32: top-1 agreement with Keras 90.00% < 99.50% (thresholds.float_min_agreement)"
    bundle = fake_bundle(tmp_path / "bundle", passed=False, allow_degraded=True, failures=[failure])
    monkeypatch.setattr(backends, "LiteBackend", lambda path, num_threads: ToneBackend())  # the file is a stand-in
    monkeypatch.setattr(logging.getLogger("sound_tf.serve"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="sound_tf.serve"):
        assert backends.load_backend(bundle).labels == CONFIG.labels
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == ("serving a degraded export: float32, the model served, failed its parity checks and "
                               "was accepted with --allow-degraded")
    assert line["artefact"] == "float32" and line["artefact_failed"] is True and line["failures"] == [failure]
    caplog.clear()
    # session 54's 10 digits: int8_features alone failed, float32 is served; "its parity checks failed" read as
    # the served model's. An int8 failure on the built-in kernels is int8's, not int8_features' nor float32's.
    for failures, failed in ((["int8_features: top-1 agreement with Keras 96.67% < 97.00% "
                               "(thresholds.quantized_min_agreement); 2 of 60 test clips differ"], "int8_features"),
                             (["int8 (built-in kernels): top-1 agreement with Keras 96.00% < 97.00% "
                               "(thresholds.quantized_min_agreement); 4 of 100 test clips differ",
                               "int8_features: top-1 agreement with Keras 90.00% < 97.00% "
                               "(thresholds.quantized_min_agreement)"], "int8 and int8_features")):
        other = fake_bundle(tmp_path / failed.replace(" ", "_"), ("saved_model", "float32", "int8", "int8_features"),
                            passed=False, allow_degraded=True, failures=failures)
        with caplog.at_level(logging.WARNING, logger="sound_tf.serve"):
            assert backends.load_backend(other).labels == CONFIG.labels
        [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
        line = json.loads(JsonFormatter().format(record))
        assert line["message"] == (f"serving a degraded export: float32, the model served, passed its parity checks; "
                                   f"{failed} failed theirs, accepted with --allow-degraded")
        assert line["artefact"] == "float32" and line["artefact_failed"] is False and line["failures"] == failures
        caplog.clear()
    passed = fake_bundle(tmp_path / "passed")
    with caplog.at_level(logging.WARNING, logger="sound_tf.serve"):
        assert backends.load_backend(passed).labels == CONFIG.labels
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []  # a sound export: no warning


def _run_folder_beside_a_bundle(tmp_path, monkeypatch, caplog):
    """A run folder (a stand-in model.keras served by ToneBackend) and what loading it logs of its export bundle."""
    from sound_tf.serve import backends

    run = tmp_path / "run"
    run.mkdir()
    CONFIG.save(run)
    (run / "model.keras").write_bytes(b"k")
    monkeypatch.setattr(backends, "KerasBackend", lambda path, info: ToneBackend())  # the file is a stand-in
    monkeypatch.setattr(logging.getLogger("sound_tf.serve"), "propagate", True)

    def notes() -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sound_tf.serve"):
            assert backends.load_backend(run).labels == CONFIG.labels
        return [r.getMessage() for r in caplog.records if "export bundle" in r.getMessage()]

    return run, notes


def test_a_run_folder_served_with_keras_points_to_its_export_bundle(tmp_path, monkeypatch, caplog):
    """'serve RUN' loaded model.keras with TensorFlow (9-10 s) beside RUN/export, whose float32 TFLite model
    loads in 0.06 s, and the log said nothing of the bundle."""
    from sound_tf.serve import backends

    run, notes = _run_folder_beside_a_bundle(tmp_path, monkeypatch, caplog)
    assert notes() == []  # no export yet: nothing to point to
    fake_bundle(run / "export")
    assert notes() == [f"serving the run folder's model.keras with TensorFlow; its export bundle {run / 'export'} "
                       f"would be served with TFLite, which loads in a fraction of the time: "
                       f"python -m sound_tf.serve {run / 'export'}"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sound_tf.serve"):  # --backend keras chose it: no note
        backends.load_backend(run, "keras")
    assert not [r for r in caplog.records if "export bundle" in r.getMessage()]


def test_a_run_folder_served_with_keras_names_only_a_bundle_served_with_tflite(tmp_path, monkeypatch, caplog):
    """The note named any RUN/export holding an export.json: one of a profile of saved_model alone (served with
    TensorFlow again, not TFLite), one of int8_features alone, or one whose export failed its checks (both
    refused by the server) were each called 'served with TFLite, which loads in a fraction of the time'."""
    import shutil

    run, notes = _run_folder_beside_a_bundle(tmp_path, monkeypatch, caplog)
    for artefacts, passed in ((("saved_model",), True), (("int8_features",), True),
                              (("saved_model", "float32"), False)):
        shutil.rmtree(run / "export", ignore_errors=True)
        fake_bundle(run / "export", artefacts, passed=passed, failures=() if passed else ["float32: agreement 0.9"])
        assert notes() == [], (artefacts, passed)
    shutil.rmtree(run / "export")
    fake_bundle(run / "export", ("int8", "int8_features"))  # a micro bundle: its int8 model is served
    assert len(notes()) == 1


def test_a_run_folder_is_served_with_the_labels_rate_and_windows_of_its_config(tmp_path, monkeypatch):
    """The served numbers come from the run's config.json, in its order: a 16-kHz run of 1-s clips every 0.4 s
    with its labels in training order (not sorted) is served as such; a config without labels is refused by name."""
    from sound_tf.serve import backends

    run = tmp_path / "run"
    run.mkdir()
    config = apply_overrides(Config(), {"audio.sample_rate_hz": 16000, "audio.clip_seconds": 1.0,
                                        "audio.window_hop_seconds": 0.4, "labels": ["mid", "high", "low"]})
    config.save(run)
    (run / "model.keras").write_bytes(b"k")
    given = []
    monkeypatch.setattr(backends, "KerasBackend", lambda path, info: given.append(info) or ToneBackend(config))
    served = backends.load_backend(run)
    assert given == [ModelInfo(labels=("mid", "high", "low"), sample_rate_hz=16000, clip_samples=16000,
                               window_hop_samples=round(0.4 * 16000))]
    assert (served.labels, served.sample_rate_hz, served.clip_samples, served.window_hop_samples) == \
        (("mid", "high", "low"), 16000, 16000, 6400)
    apply_overrides(Config(), {"audio.sample_rate_hz": 16000}).save(run)  # no labels: a run that never finished
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(run / 'config.json'))}: the config has no labels "
                                          rf"\(was the model trained to the end\?\)$"):
        backends.load_backend(run)


def test_a_bundles_config_must_give_the_numbers_written_into_its_model(tmp_path):
    """check_describes names every number that differs between config.json and the served model."""
    from sound_tf.serve.backends import check_describes

    stored = ModelInfo.from_config(CONFIG)
    check_describes(stored, stored, tmp_path / "model_float32.tflite")  # the same numbers: nothing to say
    edited = ModelInfo(labels=stored.labels, sample_rate_hz=16000, clip_samples=stored.clip_samples,
                       window_hop_samples=stored.window_hop_samples // 2)
    with pytest.raises(ConfigError) as error:
        check_describes(edited, stored, tmp_path / "model_float32.tflite")
    assert str(error.value) == (
        f"{tmp_path / 'config.json'}: does not describe {tmp_path / 'model_float32.tflite'} (sample_rate_hz "
        f"{stored.sample_rate_hz} in the model, 16000 in config.json; window_hop_samples "
        f"{stored.window_hop_samples} in the model, {stored.window_hop_samples // 2} in config.json); it was edited "
        f"after export: restore it or export again")


def test_a_request_waiting_when_the_batcher_stops_is_a_503_not_ready(tmp_path, backend):
    """During the shutdown grace period the batcher is stopped: a request that reaches it then is told to retry
    (503 not_ready), not answered as a model failure (500)."""
    app = create_app(settings(tmp_path), backend=backend)
    data = encode(tone(300, 0.5, 8000), 8000)

    async def run():
        async with app.router.lifespan_context(app):
            await app.state.service.wait_ready(10)
            async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://test") as http:
                before = await http.post("/classify", files={"file": ("a.wav", data)})
                await app.state.service.batcher.stop()
                return before, await http.post("/classify", files={"file": ("a.wav", data)})

    before, after = asyncio.run(run())
    assert before.status_code == 200 and before.json()["label"] == "low"
    assert after.status_code == 503, after.text
    assert (after.json()["error"], after.json()["detail"]) == ("not_ready", "the model is not running")



def test_an_upload_whose_channels_cancel_is_classified_and_named_in_a_json_log_line(client, monkeypatch, caplog):
    """Averaged to mono, a stereo upload whose right channel is minus the left is silence: it was classified as
    silence and nothing said so. It is still classified (200); decoding's warning names the upload and how far
    the mix is below its channels, and the server's logging set-up writes it as a JSON line like its own."""
    from sound_tf.serve.logs import logging_config

    assert logging_config("info")["loggers"]["sound_tf.audio"] == {"handlers": ["json"], "level": "INFO",
                                                                   "propagate": False}
    monkeypatch.setattr(logging.getLogger("sound_tf.audio"), "propagate", True)  # an earlier test's set-up: to caplog
    wave = tone(TONES_HZ["mid"], 1.0, 16000)
    opposite = encode(np.stack([wave, -0.95 * wave], axis=1), 16000, subtype="FLOAT")  # mix 0.025 x the tone
    same = encode(np.stack([wave, wave], axis=1), 16000, subtype="FLOAT")
    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        cancelled = client.post("/classify", files={"file": ("C:\\rec\\phase.wav", opposite)})
        kept = client.post("/classify", files={"file": ("same.wav", same)})
    assert cancelled.status_code == 200 and kept.status_code == 200, (cancelled.text, kept.text)
    assert kept.json()["label"] == "mid" and cancelled.json()["channels"] == 2
    expected_db = 10 * np.log10(((1 + 0.95 ** 2) / 2) / 0.025 ** 2)  # 31.8 dB
    [line] = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "sound_tf.audio"]
    assert line["level"] == "warning" and line["file"] == "phase.wav" and line["channels"] == 2
    assert line["cancelled_db"] == round(expected_db, 1) == 31.8
    assert line["message"].startswith("phase.wav: its 2 channels cancel out when averaged to mono: the mix is 31.8 dB "
                                      "below the channels' mean level of -9.2 dBFS. Are they in opposite phase?")


def test_a_bundle_copied_to_a_device_without_its_json_files_says_which_to_copy(tmp_path):
    """A Raspberry Pi given the bundle's model_int8.tflite alone, or with one of config.json and export.json
    (session 51's walkthrough), was told 'holds model_int8.tflite but no export.json ... export again: python -m
    sound_tf.export RUN_DIR --out pi' (a device without TensorFlow exports nothing) or 'no config.json; expected a
    run folder or an export bundle'. Both now name the files to copy beside the model, and the lite runner that
    needs none of them; a folder without .tflite models reads as before."""
    bundle = fake_bundle(tmp_path / "export", ("int8", "int8_features"))
    lite_hint = "`python -m sound_tf.lite {}/model_int8.tflite FILE` runs the .tflite alone)"
    for copied, missing in ((("model_int8.tflite",), "config.json and export.json beside the model too (the server "
                                                     "reads them"),
                            (("model_int8.tflite", "config.json"), "export.json beside the model too (the server reads "
                                                                   "it"),
                            (("model_int8_features.tflite", "model_int8.tflite", "export.json"),
                             "config.json beside the model too (the server reads it")):
        pi = tmp_path / f"pi{len(copied)}"
        pi.mkdir()
        for name in copied:
            (pi / name).write_bytes((bundle / name).read_bytes())
        with pytest.raises(ConfigError) as error:
            resolve_backend(pi)
        assert f"; copied to a device, copy the export folder's {missing}; {lite_hint.format(pi)}" in str(error.value)
        assert str(error.value).startswith(f"{pi}: no config.json; expected a run folder or an export bundle; "
                                           if "export.json" in copied else
                                           f"{pi}: holds model_int8.tflite but no export.json, so it is not a "
                                           f"complete export bundle (an export that failed or was interrupted, or "
                                           f"files copied by hand); copied to a device, "), str(error.value)
        assert str(error.value).endswith(f"runs the .tflite alone)" if "export.json" in copied else
                                         f"; otherwise export again: python -m sound_tf.export RUN_DIR --out {pi}")
    half = tmp_path / "half"  # no .tflite model: the export's own failure, told as before
    half.mkdir()
    (half / "saved_model").mkdir()
    with pytest.raises(ConfigError, match=re.escape(f"{half}: holds saved_model/ but no export.json, so it is not a "
                                                    f"complete export bundle (an export that failed or was "
                                                    f"interrupted, or files copied by hand); export again: ")):
        resolve_backend(half)


def test_half_written_or_stale_bundles_are_refused(tmp_path):
    half = tmp_path / "half"  # an export that died after writing its SavedModel and config.json
    half.mkdir()
    CONFIG.save(half)
    (half / "saved_model").mkdir()
    (half / "saved_model" / "saved_model.pb").write_bytes(b"s")
    with pytest.raises(ConfigError, match=re.escape(f"{half}: holds saved_model/ but no export.json, so it is not a "
                                                    f"complete export bundle")):
        create_app(ServeSettings(model_dir=half))
    bare = tmp_path / "bare"  # model files and nothing else
    bare.mkdir()
    (bare / "model_float32.tflite").write_bytes(b"t")
    with pytest.raises(ConfigError, match=re.escape(f"{bare}: holds model_float32.tflite but no export.json")):
        resolve_backend(bare)
    # a file the bundle's export.json does not list is a leftover of another export (another run's classes)
    stale = fake_bundle(tmp_path / "stale", ("int8",))
    (stale / "model_float32.tflite").write_bytes(b"t")
    with pytest.raises(ConfigError, match=r"model_float32.tflite: not listed in .*export.json \(which lists "
                                          r"model_int8.tflite\), so it is left over from another export"):
        create_app(ServeSettings(model_dir=stale))
    assert resolve_backend(stale, tflite_variant="int8") == ("tflite", stale / "model_int8.tflite")


# -- security, logs, request ids, CORS, metrics ----------------------------------------------------------------
def test_api_key(tmp_path, backend):
    app = create_app(settings(tmp_path, api_key="s3cret"), backend=backend)
    data = encode(tone(300, 0.5, 8000), 8000)
    with TestClient(app) as client:
        wait_ready(client)
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200
        response = client.post("/classify", files={"file": ("a.wav", data)})
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        assert response.json()["detail"] == "this server needs an API key in the X-API-Key header"
        wrong = client.get("/labels", headers={"X-API-Key": "wrong"})
        assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong X-API-Key header"
        assert client.get("/metrics").status_code == 401
        for near in ("s3cret ", "s3cret2", "s3cre", "S3CRET", ""):  # the key exactly, nothing that starts or ends it
            refused = client.get("/labels", headers={"X-API-Key": near})
            assert refused.status_code == 401 and refused.json()["detail"] == "wrong X-API-Key header", near
        ok = client.post("/classify", files={"file": ("a.wav", data)}, headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 200 and ok.json()["label"] == "low"
        assert "APIKeyHeader" in json.dumps(client.get("/openapi.json").json()["components"]["securitySchemes"])


def test_request_ids_and_json_log_lines(client, caplog):
    data = encode(tone(300, 0.5, 8000), 8000)
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        given = client.post("/classify", files={"file": ("a.wav", data)}, headers={"X-Request-ID": "job-42.a"})
        odd = client.post("/classify", files={"file": ("a.wav", b"")}, headers={"X-Request-ID": "two words"})
    assert given.headers["x-request-id"] == "job-42.a" and given.json()["request_id"] == "job-42.a"
    generated = odd.headers["x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0 and odd.json()["request_id"] == generated
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [line["request_id"] for line in lines] == ["job-42.a", generated]
    first, second = lines
    assert {"request_id", "method", "path", "status", "duration_ms", "client", "body_bytes", "level",
            "time", "logger", "message"} == set(first)
    assert (first["method"], first["path"], first["status"]) == ("POST", "/classify", 200)
    assert first["body_bytes"] > len(data) and first["duration_ms"] > 0
    assert (second["status"], second["error"]) == (422, "empty_file")
    assert "RIFF" not in json.dumps(lines)  # no audio content in the logs


def test_the_default_limits(tmp_path, backend):
    """ServeSettings' defaults, as a server started without settings applies them: 32 windows per model call and
    a 5-ms batching wait (--help), 16 files per batch request (README), 20 MiB per upload, 120 s of audio per
    file, 30 s for the model and for the body; and the model is warmed up at both batch sizes it will see (1 and
    max_batch_size). Each of these could change without failing a test (found by a mutation pass)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert re.search(r"at most (\d+) files per request", readme)[1] == "16"
    defaults = ServeSettings(model_dir=tmp_path)
    assert (defaults.request_timeout_seconds, defaults.body_timeout_seconds) == (30.0, 30.0)
    app = create_app(defaults, backend=backend)
    with TestClient(app) as client:
        wait_ready(client)
        assert backend.calls == [1, 32]  # the warm-up, before any request
        ready = client.get("/ready").json()
        assert (ready["max_batch_size"], ready["max_wait_ms"]) == (32, 5.0)
        files = [("files", (f"{i}.wav", encode(tone(300, 0.5, 8000), 8000))) for i in range(17)]
        response = client.post("/classify/batch", files=files)
        assert response.status_code == 413 and response.json()["detail"] == \
            "17 files in one request; the limit is 16 (the server's SOUND_TF_MAX_FILES_PER_REQUEST)"
        long = encode(tone(300, 121.0, 8000, amplitude=0.1), 8000, "WAV", "PCM_U8")  # 968 kB
        response = client.post("/classify", files={"file": ("long.wav", long)})
        assert response.status_code == 413 and response.json()["detail"] == (
            "long.wav: 121.0 s of audio exceeds the limit of 120 s per file (the server's SOUND_TF_MAX_AUDIO_SECONDS)")
    status, body, consumed = _call_asgi(create_app(defaults, backend=backend), "POST", "/classify",
                                        [(b"content-type", b"multipart/form-data; boundary=xyz"),
                                         (b"content-length", str(20 * 1024 * 1024 + 1).encode())], [None], 0.0)
    assert (status, consumed) == (413, 0) and body["detail"] == (
        "the request body (20971521 bytes) exceeds the upload limit of 20971520 bytes (the server's "
        "SOUND_TF_MAX_UPLOAD_BYTES)")


def test_a_request_id_is_echoed_up_to_128_characters(client):
    data = encode(tone(300, 0.5, 8000), 8000)
    longest, too_long = "r" * 128, "r" * 129
    assert client.post("/classify", files={"file": ("a.wav", data)},
                       headers={"X-Request-ID": longest}).headers["x-request-id"] == longest
    replaced = client.post("/classify", files={"file": ("a.wav", data)}, headers={"X-Request-ID": too_long})
    assert replaced.headers["x-request-id"] != too_long and len(replaced.headers["x-request-id"]) == 32


def test_client_errors_log_at_info_and_server_errors_at_warning(client, backend, caplog):
    """A refused upload is the client's problem (info); a failure of the server's own is a warning."""
    data = encode(tone(300, 0.5, 8000), 8000)
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.post("/classify", files={"file": ("a.wav", data)})
        client.post("/classify", files={"file": ("a.wav", b"")})
        backend.fail_next = True
        client.post("/classify", files={"file": ("a.wav", data)})
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(line["status"], line["level"]) for line in lines] == [(200, "info"), (422, "info"), (500, "warning")]


@pytest.mark.parametrize("sent, shown", [
    ("C:\\Users\\me\\dog.wav", "dog.wav"),  # a Windows client's full path
    ("recordings\\2024\\dog.wav", "dog.wav"),  # a relative one (the multipart parser keeps it as sent)
    ("../../etc/dog.wav", "dog.wav"),
    ("x" * 300 + ".wav", "x" * 120),
], ids=["windows-path", "windows-relative-path", "posix-path", "long"])
def test_a_client_file_name_is_echoed_as_a_short_base_name(client, sent, shown):
    good = client.post("/classify", files={"file": (sent, encode(tone(300, 0.5, 8000), 8000))})
    assert good.status_code == 200 and good.json()["filename"] == shown
    bad = client.post("/classify", files={"file": (sent, b"")})
    assert bad.json()["detail"] == f"{shown}: empty file (0 bytes)"


def test_cors_is_off_unless_configured(tmp_path, backend):
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(settings(tmp_path), backend=backend)) as client:
        response = client.options("/classify", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-origin" not in client.get("/health",
                                                               headers={"Origin": "https://app.example"}).headers
    app = create_app(settings(tmp_path, cors_origins="https://app.example"), backend=backend)
    with TestClient(app) as client:
        response = client.options("/classify", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        other = client.options("/classify", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_a_browser_page_can_send_the_api_key_and_read_the_request_id(tmp_path, backend):
    """With CORS and an API key, a page's fetch() sends X-API-Key: the browser's preflight (an OPTIONS without the
    key) must be answered with the header allowed, and the answer's X-Request-ID must be exposed for the page to
    read it. Nothing checked either: a preflight refused with 401, or the key left out of the allowed headers,
    made every call from the page fail; an unexposed X-Request-ID reads as null."""
    app = create_app(settings(tmp_path, cors_origins="https://app.example", api_key="s3cret"), backend=backend)
    data = encode(tone(300, 0.5, 8000), 8000)
    with TestClient(app) as client:
        wait_ready(client)
        preflight = client.options("/classify", headers={"Origin": "https://app.example",
                                                         "Access-Control-Request-Method": "POST",
                                                         "Access-Control-Request-Headers": "x-api-key"})
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower().split(", ")
        answer = client.post("/classify", files={"file": ("a.wav", data)},
                             headers={"Origin": "https://app.example", "X-API-Key": "s3cret"})
        assert answer.status_code == 200 and answer.json()["label"] == "low"
        assert answer.headers["access-control-expose-headers"].lower() == "x-request-id"
        assert answer.headers["x-request-id"] == answer.json()["request_id"]


def test_metrics_count_requests_errors_and_batches(client):
    data = encode(tone(300, 1.0, 8000), 8000)
    for _ in range(3):
        assert client.post("/classify", files={"file": ("a.wav", data)}).status_code == 200
    client.post("/classify", files={"file": ("e.wav", b"")})
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = metric_samples(response.text)
    ok = ("sound_tf_http_requests_total", (("endpoint", "/classify"), ("method", "POST"), ("status", "200")))
    assert samples[ok] == 3
    assert samples[("sound_tf_http_requests_total", (("endpoint", "/classify"), ("method", "POST"),
                                                     ("status", "422")))] == 1
    assert samples[("sound_tf_errors_total", (("kind", "empty_file"),))] == 1
    # each 1-s recording is 3 windows: 3 requests -> 9 windows through the model
    assert samples[("sound_tf_inference_batch_size_sum", ())] == 9
    # every model call is timed as well as sized (the warm-up's two calls go straight to the backend)
    calls = samples[("sound_tf_inference_batch_size_count", ())]
    assert calls >= 3 and samples[("sound_tf_inference_duration_seconds_count", ())] == calls
    assert samples[("sound_tf_inference_duration_seconds_sum", ())] > 0
    assert samples[("sound_tf_http_request_duration_seconds_count", (("endpoint", "/classify"),))] == 4
    assert samples[("sound_tf_ready", ())] == 1


# -- micro-batching ---------------------------------------------------------------------------------------
def test_concurrent_requests_are_batched(tmp_path):
    slow = ToneBackend(delay_seconds=0.05)
    app = create_app(settings(tmp_path, max_batch_size=8, max_wait_ms=5), backend=slow)
    clips = {label: encode(tone(freq, 0.5, 8000), 8000) for label, freq in TONES_HZ.items()}
    labels = [list(TONES_HZ)[i % 3] for i in range(12)]

    async def run():
        async with app.router.lifespan_context(app):
            await app.state.service.wait_ready(10)
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
                responses = await asyncio.gather(*(http.post("/classify", files={"file": (f"{i}.wav", clips[label])})
                                                   for i, label in enumerate(labels)))
                metrics = (await http.get("/metrics")).text
        return responses, metrics

    responses, metrics = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 12
    assert [r.json()["label"] for r in responses] == labels  # every request got its own rows back
    samples = metric_samples(metrics)
    calls = samples[("sound_tf_inference_batch_size_count", ())]
    # warm-up calls go straight to the backend; the batcher saw 12 windows in fewer than 12 calls
    assert samples[("sound_tf_inference_batch_size_sum", ())] == 12 and calls < 12
    assert samples[("sound_tf_inference_batch_size_bucket", (("le", "1.0"),))] < calls  # some call had > 1
    assert max(slow.calls) > 1 and max(slow.calls) <= 8


def test_overload_is_refused_with_503(tmp_path):
    """The first upload is in the model (held there), the next two wait (the limit), the fourth is refused. Each
    step waits for the one before to be seen, so a busy machine cannot reorder them (sleeps of 0.1-0.2 s did)."""
    entered, release = threading.Event(), threading.Event()

    class Held(ToneBackend):
        held = False

        def predict(self, windows):
            if self.held:
                entered.set()
                release.wait(10)
            return super().predict(windows)

    backend = Held()
    app = create_app(settings(tmp_path, max_queue_windows=2, max_wait_ms=0), backend=backend)
    data = encode(tone(300, 0.5, 8000), 8000)  # one window each

    async def run():
        async with app.router.lifespan_context(app):
            await app.state.service.wait_ready(10)
            backend.held = True  # after the warm-up's call
            async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://test") as http:
                async def waiting_windows():
                    return metric_samples((await http.get("/metrics")).text)[("sound_tf_queue_windows", ())]

                async def until(done):
                    for _ in range(1000):
                        if await done():
                            return
                        await asyncio.sleep(0.01)
                    raise AssertionError("the server did not get there in 10 s")

                async def upload():
                    return await http.post("/classify", files={"file": ("a.wav", data)})

                first = asyncio.ensure_future(upload())
                await until(lambda: asyncio.sleep(0, entered.is_set()))
                second = asyncio.ensure_future(upload())
                await until(lambda: _equals(waiting_windows(), 1))
                third = asyncio.ensure_future(upload())
                await until(lambda: _equals(waiting_windows(), 2))
                refused, waiting = await upload(), await waiting_windows()
                release.set()
                return [await first, await second, await third, refused], waiting

    responses, waiting = asyncio.run(run())
    assert waiting == 2  # the gauge shows the two waiting windows
    assert [r.status_code for r in responses] == [200, 200, 200, 503]
    assert responses[3].json()["error"] == "overloaded" and "limit 2" in responses[3].json()["detail"]
    assert all(r.json()["label"] == responses[0].json()["label"] for r in responses[:3])


async def _equals(value, expected) -> bool:
    return await value == expected


def test_batcher_chunks_fails_and_recovers():
    calls = []
    reported = []  # the on_batch metric hook: one report per model call, of that call's size
    gate = threading.Event()

    def predict(windows):
        gate.wait(10)
        calls.append(windows.shape[0])
        if windows[0, 0] < 0:
            raise RuntimeError("model exploded")
        return {"x": np.repeat(windows[:, :1], 2, axis=1)}  # row i -> [w_i, w_i]: rows must come back in order

    async def run():
        batcher = MicroBatcher(predict, max_batch_size=32, max_wait_ms=1, max_queue_windows=100,
                               on_batch=lambda count, seconds: reported.append(count))
        batcher.start()
        gate.set()
        big = np.arange(70, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
        out = (await batcher.submit(big))["x"]  # more than max_batch_size: run alone, in chunks
        np.testing.assert_array_equal(out[:, 0], np.arange(70))
        with pytest.raises(RuntimeError, match="exploded"):
            await batcher.submit(-np.ones((2, 4), np.float32))
        again = (await batcher.submit(np.full((3, 4), 5, np.float32)))["x"]  # the worker survived the failure
        alone = (await batcher.submit(np.ones((150, 4), np.float32)))["x"]  # over the queue limit, but alone
        gate.clear()
        first = asyncio.ensure_future(batcher.submit(np.ones((1, 4), np.float32)))  # taken, stuck in the model
        while batcher.waiting_windows:
            await asyncio.sleep(0.001)
        waiting = asyncio.ensure_future(batcher.submit(np.ones((60, 4), np.float32)))
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull, match="60 windows are already waiting.*limit 100"):
            await batcher.submit(np.zeros((41, 4), np.float32))
        gate.set()
        await asyncio.gather(first, waiting)
        await batcher.stop()
        return again, alone

    again, alone = asyncio.run(run())
    assert calls[:3] == [32, 32, 6] and calls[3] == 2 and (again == 5).all() and alone.shape == (150, 2)
    assert reported == calls[:3] + calls[4:]  # one report per model call, of its size; none for the failed call


def test_batcher_takes_a_numpy_integer_batch_size_as_an_int_and_never_a_bool():
    """max_batch_size took only ``int``: ``np.int64(4)`` was refused; a numpy size chunks requests as 4 does."""
    def predict(windows):
        calls.append(windows.shape[0])
        return {"x": windows[:, :1]}

    async def run():
        batcher = MicroBatcher(predict, max_batch_size=np.int64(4), max_wait_ms=0, max_queue_windows=100)
        assert batcher.max_batch_size == 4 and type(batcher.max_batch_size) is int
        batcher.start()
        out = (await batcher.submit(np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)))["x"]
        await batcher.stop()
        return out

    calls = []
    np.testing.assert_array_equal(asyncio.run(run())[:, 0], np.arange(10))
    assert calls == [4, 4, 2]
    for value in (True, np.True_, 2.0, "2", np.array(2), np.int64(0)):
        with pytest.raises(ValueError, match=rf"^max_batch_size must be an integer >= 1, got "
                                             rf"{re.escape(repr(value))}$"):
            MicroBatcher(predict, max_batch_size=value, max_wait_ms=0, max_queue_windows=100)


def test_batcher_waits_only_for_announced_requests():
    calls = []

    def predict(windows):
        calls.append(windows.shape[0])
        return {"probabilities": np.zeros((windows.shape[0], 2), np.float32)}

    async def run():
        batcher = MicroBatcher(predict, max_batch_size=8, max_wait_ms=2000, max_queue_windows=100)
        batcher.start()
        began = time.perf_counter()
        await batcher.submit(np.zeros((1, 4), np.float32))  # alone: no 2-s wait
        lone_seconds = time.perf_counter() - began

        async def announced(delay_seconds: float):
            with batcher.incoming():
                await asyncio.sleep(delay_seconds)  # stands for decoding
            return await batcher.submit(np.zeros((1, 4), np.float32))

        on_their_way = [asyncio.ensure_future(announced(0.2)), asyncio.ensure_future(announced(0.3))]
        await asyncio.sleep(0)  # both are being "decoded" now
        await asyncio.gather(batcher.submit(np.zeros((1, 4), np.float32)), *on_their_way)  # one call for all
        await batcher.stop()
        return lone_seconds

    lone_seconds = asyncio.run(run())
    assert lone_seconds < 0.5 and calls == [1, 3]


def test_the_batching_wait_ends_at_max_wait_on_a_full_batch_or_when_an_announced_request_gives_up():
    """max_wait_ms bounds what a request waits for others being decoded: a slow decode (2 s) does not hold a
    request past the 200-ms wait; a batch already full does not wait at all; and an announced request whose
    decoding failed (it never submits) ends the wait at once instead of at the 3-s deadline."""
    calls = []

    def predict(windows):
        calls.append(windows.shape[0])
        return {"x": windows[:, :1]}

    async def announced(batcher, decode_seconds: float, fails: bool = False):
        with batcher.incoming():
            await asyncio.sleep(decode_seconds)  # stands for decoding
            if fails:
                raise ValueError("corrupt upload")
        return await batcher.submit(np.zeros((1, 4), np.float32))

    async def seconds_for(batcher, windows: int, decode_seconds: float, fails: bool = False) -> float:
        batcher.start()
        other = asyncio.ensure_future(announced(batcher, decode_seconds, fails))
        await asyncio.sleep(0)  # it is being decoded now
        began = time.perf_counter()
        await batcher.submit(np.zeros((windows, 4), np.float32))
        took = time.perf_counter() - began
        other.cancel()
        await asyncio.gather(other, return_exceptions=True)
        await batcher.stop()
        return took

    async def run():
        return (await seconds_for(MicroBatcher(predict, max_batch_size=8, max_wait_ms=200, max_queue_windows=100),
                                  1, decode_seconds=2.0),
                await seconds_for(MicroBatcher(predict, max_batch_size=2, max_wait_ms=3000, max_queue_windows=100),
                                  2, decode_seconds=2.0),
                await seconds_for(MicroBatcher(predict, max_batch_size=8, max_wait_ms=3000, max_queue_windows=100),
                                  1, decode_seconds=0.1, fails=True))

    past_the_wait, full, gave_up = asyncio.run(run())
    assert 0.15 < past_the_wait < 1.0, past_the_wait
    assert full < 1.0 and 0.05 < gave_up < 1.0, (full, gave_up)
    assert calls == [1, 2, 1]  # each went alone


def test_requests_that_fill_max_batch_size_exactly_share_one_call():
    calls = []
    gate = threading.Event()

    def predict(windows):
        gate.wait(10)
        calls.append(windows.shape[0])
        return {"x": windows[:, :1]}

    async def run():
        batcher = MicroBatcher(predict, max_batch_size=4, max_wait_ms=0, max_queue_windows=100)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(np.zeros((1, 4), np.float32)))  # held in the model
        await asyncio.sleep(0.01)
        while batcher.waiting_windows:  # taken into the model call
            await asyncio.sleep(0.001)
        pair = [asyncio.ensure_future(batcher.submit(np.ones((2, 4), np.float32))) for _ in range(2)]
        await asyncio.sleep(0.01)
        assert batcher.waiting_windows == 4
        gate.set()
        await asyncio.gather(first, *pair)
        await batcher.stop()

    asyncio.run(run())
    assert calls == [1, 4]  # 2 + 2 windows: one call of max_batch_size, not two of 2


def test_requests_still_waiting_at_shutdown_get_batcher_closed():
    """On shutdown a request waiting behind a model call fails at once with BatcherClosed (the service answers
    it 503 not_ready): it must not hang until the client gives up."""
    gate = threading.Event()

    def predict(windows):
        gate.wait(10)
        return {"x": windows[:, :1]}

    async def run():
        batcher = MicroBatcher(predict, max_batch_size=4, max_wait_ms=0, max_queue_windows=100)
        batcher.start()
        running = asyncio.ensure_future(batcher.submit(np.zeros((1, 4), np.float32)))
        await asyncio.sleep(0.01)
        while batcher.waiting_windows:  # taken into the model call
            await asyncio.sleep(0.001)
        waiting = asyncio.ensure_future(batcher.submit(np.zeros((3, 4), np.float32)))
        await asyncio.sleep(0.01)
        assert batcher.waiting_windows == 3
        threading.Timer(0.2, gate.set).start()  # the model call ends while stop() waits for its thread
        await batcher.stop()
        outcomes = []
        for request in (running, waiting):
            try:
                await asyncio.wait_for(request, 2)
                outcomes.append("answered")
            except BatcherClosed as exc:
                outcomes.append(str(exc))
        return outcomes, batcher.waiting_windows

    assert asyncio.run(run()) == (["the server is shutting down"] * 2, 0)


def test_a_request_that_gives_up_loses_its_rows_and_no_one_else_s():
    """A caller that leaves (timeout, disconnect) while its windows are in the model, or still waiting:
    the others get exactly their own rows, and a waiting request that left never reaches the model."""
    calls = []
    gates = [threading.Event() for _ in range(3)]
    seen = []

    def predict(windows):
        calls.append(windows[:, 0].tolist())
        gates[len(calls) - 1].wait(10)
        return {"x": windows[:, :1] * 10}

    def rows(first, count):  # windows whose first sample is first, first + 1, ...
        return (np.arange(first, first + count, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32))

    async def until(condition):
        for _ in range(5000):
            if condition():
                return
            await asyncio.sleep(0.001)
        raise AssertionError("timed out")

    async def run():
        batcher = MicroBatcher(predict, max_batch_size=16, max_wait_ms=0, max_queue_windows=100,
                               on_batch=lambda count, seconds: seen.append(count))
        batcher.start()
        a = asyncio.ensure_future(batcher.submit(rows(0, 1)))
        await until(lambda: len(calls) == 1)  # a is in the model
        b = asyncio.ensure_future(batcher.submit(rows(100, 2)))
        c = asyncio.ensure_future(batcher.submit(rows(200, 3)))
        d = asyncio.ensure_future(batcher.submit(rows(300, 1)))
        await until(lambda: batcher.waiting_windows == 6)
        gates[0].set()
        await a
        await until(lambda: len(calls) == 2)  # b, c and d share the second call
        b.cancel()
        e = asyncio.ensure_future(batcher.submit(rows(400, 4)))  # waits behind the call
        f = asyncio.ensure_future(batcher.submit(rows(500, 2)))
        await until(lambda: batcher.waiting_windows == 6)
        e.cancel()  # leaves before the model sees it
        await asyncio.sleep(0.01)
        gates[1].set()
        c_out, d_out = (await c)["x"][:, 0], (await d)["x"][:, 0]
        await until(lambda: len(calls) == 3)
        gates[2].set()
        f_out = (await f)["x"][:, 0]
        waiting = batcher.waiting_windows
        await batcher.stop()
        return c_out, d_out, f_out, b.cancelled(), waiting

    c_out, d_out, f_out, b_cancelled, waiting = asyncio.run(run())
    assert b_cancelled
    np.testing.assert_array_equal(c_out, [2000, 2010, 2020])  # c's own rows, not the ones b left behind
    np.testing.assert_array_equal(d_out, [3000])
    np.testing.assert_array_equal(f_out, [5000, 5010])
    assert calls == [[0], [100, 101, 200, 201, 202, 300], [500, 501]]  # e's 4 windows never ran
    assert seen == [1, 6, 2] and waiting == 0


def test_the_batching_wait_lasts_max_wait_ms_and_no_longer():
    """A request waits max_wait_ms (600 ms here) for an announced request that is still being decoded, then runs."""
    called = []

    def predict(windows):
        called.append(time.perf_counter())
        return {"x": windows[:, :1]}

    async def run():
        batcher = MicroBatcher(predict, max_batch_size=8, max_wait_ms=600, max_queue_windows=100)
        batcher.start()
        with batcher.incoming():  # stands for an upload whose decoding takes longer than the wait
            began = time.perf_counter()
            await batcher.submit(np.zeros((1, 4), np.float32))
        await batcher.stop()
        return called[0] - began

    waited = asyncio.run(run())
    assert 0.55 < waited < 0.95, waited


def test_a_failed_model_call_fails_every_request_in_it_and_the_next_call_runs():
    """Two requests share a call that fails: both get the error at once (neither waits for a timeout), and a
    request after them is answered; a model answering fewer rows than windows is an error, not a shift of rows."""
    gate = threading.Event()
    calls = []

    def predict(windows):
        gate.wait(10)
        calls.append(windows.shape[0])
        if windows[0, 0] < 0:
            raise RuntimeError("model exploded")
        if windows[0, 0] == 7:
            return {"x": windows[:-1, :1]}  # one row short
        return {"x": windows[:, :1]}

    async def run():
        batcher = MicroBatcher(predict, max_batch_size=8, max_wait_ms=0, max_queue_windows=100)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(np.ones((1, 4), np.float32)))  # held in the model
        await asyncio.sleep(0.01)
        while batcher.waiting_windows:  # taken into the model call
            await asyncio.sleep(0.001)
        failing = [asyncio.ensure_future(batcher.submit(-np.ones((n, 4), np.float32))) for n in (2, 3)]
        await asyncio.sleep(0.01)
        gate.set()
        outcomes = await asyncio.wait_for(asyncio.gather(first, *failing, return_exceptions=True), 3)
        after = await asyncio.wait_for(batcher.submit(np.full((2, 4), 5, np.float32)), 3)
        with pytest.raises(RuntimeError, match=r"^the model's output 'x' has shape \(2, 1\) for 3 windows$"):
            await asyncio.wait_for(batcher.submit(np.full((3, 4), 7, np.float32)), 3)
        with pytest.raises(ValueError, match="at least one window"):
            await batcher.submit(np.zeros((0, 4), np.float32))
        await batcher.stop()
        return outcomes, after

    outcomes, after = asyncio.run(run())
    assert outcomes[0]["x"].shape == (1, 1)
    assert [str(o) for o in outcomes[1:]] == ["model exploded"] * 2
    assert calls[:3] == [1, 5, 2] and after["x"][:, 0].tolist() == [5.0, 5.0]


def test_a_batcher_refuses_a_wait_that_is_not_a_number():
    """NaN passed 'max_wait_ms < 0' and would make every batching wait's deadline NaN."""
    for value in (float("nan"), -1.0):
        with pytest.raises(ValueError, match=r"^max_wait_ms must be >= 0, got "):
            MicroBatcher(lambda w: {"x": w}, max_batch_size=4, max_wait_ms=value, max_queue_windows=10)


# -- settings and command line ----------------------------------------------------------------------------
def test_settings_from_environment_and_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUND_TF_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("SOUND_TF_MAX_BATCH_SIZE", "7")
    monkeypatch.setenv("SOUND_TF_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("SOUND_TF_API_KEY", "sekret-value-9")
    monkeypatch.setenv("SOUND_TF_PORT", "9001")
    s = settings_from_args(parse_args(["--port", "9100", "--backend", "tflite"]))
    assert s.model_dir == tmp_path and s.max_batch_size == 7 and s.port == 9100 and s.backend == "tflite"
    # every flag reaches the settings, over the environment (SOUND_TF_MAX_BATCH_SIZE=7 here)
    flags = settings_from_args(parse_args([str(tmp_path / "m"), "--host", "0.0.0.0", "--workers", "3",
                                           "--tflite-variant", "int8", "--max-batch-size", "9",
                                           "--max-wait-ms", "12.5", "--log-level", "warning"]))
    assert (flags.model_dir, flags.host, flags.workers, flags.tflite_variant, flags.max_batch_size, flags.max_wait_ms,
            flags.log_level) == (tmp_path / "m", "0.0.0.0", 3, "int8", 9, 12.5, "warning")
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.api_key.get_secret_value() == "sekret-value-9" and "sekret" not in repr(s)
    env = s.to_env()
    assert env["SOUND_TF_PORT"] == "9100" and json.loads(env["SOUND_TF_CORS_ORIGINS"]) == s.cors_origins
    monkeypatch.setenv("SOUND_TF_API_KEY", "")
    assert ServeSettings().api_key is None
    with pytest.raises(Exception, match="max_batch_size"):
        ServeSettings(max_batch_size=0)
    monkeypatch.setenv("SOUND_TF_MAX_AUDIO_SECONDS", "inf")  # was accepted, then every upload failed with 500
    with pytest.raises(Exception, match="max_audio_seconds(.|\n)*finite number"):
        ServeSettings()
    monkeypatch.delenv("SOUND_TF_MAX_AUDIO_SECONDS")
    monkeypatch.setenv("SOUND_TF_MAX_CONCURRENCY", "none")  # documented "int or None": it could not be unset
    unlimited = ServeSettings()
    assert unlimited.max_concurrency is None and ServeSettings(max_concurrency=5).max_concurrency == 5
    monkeypatch.delenv("SOUND_TF_MAX_CONCURRENCY")
    for name, value in unlimited.to_env().items():  # as --workers hands the settings on: unset stays unset
        monkeypatch.setenv(name, value)
    assert ServeSettings() == unlimited
    monkeypatch.setenv("SOUND_TF_API_KEY", "none")  # "none" unsets nothing else: this is a key
    assert ServeSettings().api_key.get_secret_value() == "none"


def test_settings_from_the_environment_forgive_case_and_stray_commas(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUND_TF_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("SOUND_TF_CORS_ORIGINS", "https://a.example,, https://b.example,")  # an edited list
    monkeypatch.setenv("SOUND_TF_MAX_CONCURRENCY", " None ")
    monkeypatch.setenv("SOUND_TF_LOG_LEVEL", "WARNING")
    s = ServeSettings()
    assert s.cors_origins == ["https://a.example", "https://b.example"]  # no "" origin
    assert s.max_concurrency is None and s.log_level == "warning"


def test_workers_are_handed_the_api_key_itself_and_a_blank_key_is_none(tmp_path, monkeypatch):
    """--workers N hands the settings to each worker as SOUND_TF_* variables (to_env): the key must go as itself,
    not as pydantic's mask '**********' (every worker would then refuse the real key with 401); and a key of
    spaces, like an empty one, is no key rather than one that a header of spaces matches."""
    given = ServeSettings(model_dir=tmp_path, api_key="s3cret-9", workers=2)
    env = given.to_env()
    assert env["SOUND_TF_API_KEY"] == "s3cret-9" and env["SOUND_TF_WORKERS"] == "2"
    for name, value in env.items():  # what a worker process reads
        monkeypatch.setenv(name, value)
    worker = ServeSettings()
    assert worker == given and worker.api_key.get_secret_value() == "s3cret-9"
    monkeypatch.setenv("SOUND_TF_API_KEY", "   ")
    assert ServeSettings().api_key is None


def test_settings_refuse_an_upload_limit_under_a_kibibyte_and_a_default_top_k_of_0(tmp_path):
    """SOUND_TF_MAX_UPLOAD_BYTES=20 (meant as MiB) would refuse every upload; default_top_k=0 would be read as
    'not given' and answer one label. Both are refused at start, naming the setting; the floors themselves pass."""
    for field, bad, floor in (("max_upload_bytes", 1023, 1024), ("default_top_k", 0, 1)):
        with pytest.raises(ValidationError, match=rf"{field}\n  Input should be greater than or equal to "
                                                           rf"{floor}"):
            ServeSettings(model_dir=tmp_path, **{field: bad})
        assert getattr(ServeSettings(model_dir=tmp_path, **{field: floor}), field) == floor


def test_the_shutdown_grace_period_is_a_setting(tmp_path, monkeypatch):
    import uvicorn

    from sound_tf.serve.__main__ import main

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.append(kwargs))
    monkeypatch.setattr("sound_tf.serve.app.create_app", lambda settings: None)
    assert main([str(tmp_path)]) == 0
    monkeypatch.setenv("SOUND_TF_SHUTDOWN_GRACE_SECONDS", "25")
    assert main([str(tmp_path)]) == 0
    assert [kwargs["timeout_graceful_shutdown"] for kwargs in started] == [8, 25]  # 8: inside docker stop's 10 s
    # the connection limits reach uvicorn too: 256 connections + tasks, idle ones closed after 5 s
    assert [(kwargs["limit_concurrency"], kwargs["timeout_keep_alive"]) for kwargs in started] == [(256, 5)] * 2
    monkeypatch.setenv("SOUND_TF_MAX_CONCURRENCY", "none")
    monkeypatch.setenv("SOUND_TF_SHUTDOWN_GRACE_SECONDS", "8")
    assert main([str(tmp_path)]) == 0 and started[-1]["limit_concurrency"] is None
    started.pop()
    monkeypatch.setenv("SOUND_TF_SHUTDOWN_GRACE_SECONDS", "-1")
    assert main([str(tmp_path)]) == 2 and len(started) == 2


# -- stderr as JSON: native lines, tracebacks and other text past logging ----------------------------------------
ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = "I0000 00:00:1796442088.776231   27985 port.cc:153] oneDNN custom operations are on.\n"
XNNPACK = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
NATIVE_WARNING = "W0000 00:00:1796442088.9   27985 helpers.cc:364] Ignored output_format.\n"
NATIVE_ERROR = "E0000 00:00:1796442075.963898   27604 node_def_util.cc:682] NodeDef mentions attribute x\n"
OWN = '{"time": "2026-12-05T03:41:34.528Z", "level": "info", "logger": "uvicorn.error", "message": "Started"}\n'
THREAD_TRACEBACK = ('Exception in thread loader:\nTraceback (most recent call last):\n'
                    '  File "/x/backends.py", line 9, in load\n    raise ValueError("bad model")\n'
                    'ValueError: bad model\n')
PY_WARNING = '/x/keras.py:12: UserWarning: a Python warning\n  warnings.warn("a Python warning")\n'


def _write_fd2(text: str) -> None:
    data = text.encode()
    while data:
        data = data[os.write(2, data):]


def test_every_line_of_stderr_becomes_a_json_record_of_the_servers_shape(capfd):
    """TensorFlow's and the TFLite runtime's native lines were written as they are, between the JSON lines; a
    traceback is one record, the server's own lines pass as they are, and the order is kept."""
    with stderr_as_json("info"):
        _write_fd2((ABSL_NOTICE + ONEDNN)[:50])  # a line written in two pieces is one line
        _write_fd2((ABSL_NOTICE + ONEDNN)[50:] + OWN)
        _write_fd2(THREAD_TRACEBACK[:40])
        _write_fd2(THREAD_TRACEBACK[40:])
        time.sleep(0.6)  # a pause ends a block of plain text
        _write_fd2(PY_WARNING)
        _write_fd2(XNNPACK + NATIVE_ERROR)
    out, err = capfd.readouterr()
    records = [json.loads(line) for line in err.splitlines()]
    assert out == "" and all(isinstance(record, dict) for record in records)
    assert [(r["level"], r["logger"], r["message"]) for r in records] == [
        ("info", "sound_tf.serve.native", ABSL_NOTICE.strip()),
        ("info", "sound_tf.serve.native", "oneDNN custom operations are on."),
        ("info", "uvicorn.error", "Started"),
        ("error", "sound_tf.serve.stderr", THREAD_TRACEBACK.strip()),
        ("warning", "sound_tf.serve.stderr", PY_WARNING.rstrip()),
        ("info", "sound_tf.serve.native", "Created TensorFlow Lite XNNPACK delegate for CPU."),
        ("error", "sound_tf.serve.native", "NodeDef mentions attribute x")]
    assert records[1]["source"] == "port.cc:153" and records[6]["source"] == "node_def_util.cc:682"
    assert "source" not in records[0] and err.splitlines()[2] == OWN.strip()
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]) for r in records)


@pytest.mark.parametrize("level, shown", [
    ("debug", ["info", "info", "warning", "error", "warning", "error"]),
    ("warning", ["warning", "error", "warning", "error"]),
    ("error", ["error", "error"])])
def test_native_lines_and_other_text_respect_the_log_level(level, shown):
    sink = JsonLines(level)
    written = b"".join(sink.line(line.encode()) for line in [ONEDNN, XNNPACK, NATIVE_WARNING, NATIVE_ERROR])
    written += b"".join(sink.line(line.encode() + b"\n") for line in PY_WARNING.splitlines()) + sink.idle()
    written += b"".join(sink.line(line.encode() + b"\n") for line in THREAD_TRACEBACK.splitlines()) + sink.idle()
    written += sink.line(OWN.encode())  # the server's own lines were filtered by logging already
    records = [json.loads(line) for line in written.decode().splitlines()]
    assert [record["level"] for record in records] == shown + ["info"]
    assert records[-1]["logger"] == "uvicorn.error" and sink.idle() == b""


def test_a_start_up_error_and_an_unexpected_traceback_are_json_records(tmp_path):
    """A setting refused (``error: ...``) and a bug's traceback out of the server's main were plain text."""
    env = {**os.environ, "SOUND_TF_SHUTDOWN_GRACE_SECONDS": "-1"}
    refused = subprocess.run([sys.executable, "-m", "sound_tf.serve", str(tmp_path)], capture_output=True,
                             text=True, env=env, timeout=120)
    assert refused.returncode == 2 and refused.stdout == ""
    [record] = [json.loads(line) for line in refused.stderr.splitlines()]
    assert record["level"] == "error" and record["logger"] == "sound_tf.serve.stderr"
    assert record["message"].startswith("error: shutdown_grace_seconds (SOUND_TF_SHUTDOWN_GRACE_SECONDS): ")
    script = ("import sys, uvicorn\nimport sound_tf.serve.app as app\nfrom sound_tf.serve.__main__ import main\n"
              "def run(*args, **kwargs):\n    raise RuntimeError('a bug in the server')\n"
              "uvicorn.run = run\napp.create_app = lambda settings: None\nsys.exit(main([sys.argv[1]]))\n")
    crashed = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                             timeout=120)
    assert crashed.returncode == 1 and crashed.stdout == ""
    [record] = [json.loads(line) for line in crashed.stderr.splitlines()]
    assert (record["level"], record["logger"]) == ("error", "sound_tf.serve")
    assert record["message"] == "the server stopped on an unexpected error"
    assert record["exception"].startswith("Traceback (most recent call last):")
    assert record["exception"].endswith("RuntimeError: a bug in the server")


def test_uvicorns_own_access_lines_stay_off_under_the_servers_logging():
    """The server writes one access line per request (sound_tf.serve.access); under its logging set-up uvicorn's
    own access logger, which an app run by one's own uvicorn command (create_app_from_env) still feeds, writes
    nothing, so a request is not logged twice. uvicorn's error logger and the server's own are JSON lines."""
    code = ("import logging\nfrom sound_tf.serve.logs import configure_logging\nconfigure_logging('info')\n"
            "logging.getLogger('uvicorn.access').info('127.0.0.1:5000 - \"POST /classify HTTP/1.1\" 200')\n"
            "logging.getLogger('uvicorn.error').info('Started server process')\n"
            "logging.getLogger('sound_tf.serve.access').info('request')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "", done.stderr
    assert [(r["logger"], r["message"]) for r in map(json.loads, done.stderr.splitlines())] == [
        ("uvicorn.error", "Started server process"), ("sound_tf.serve.access", "request")]


def test_the_json_sink_loads_without_the_web_stack_or_tensorflow():
    """stderr's forwarder process builds JsonLines from sound_tf.serve.logs: importing it loaded the serve package's
    __init__, and with it fastapi, starlette, pydantic and uvicorn (0.7 s of start-up); the package's names
    (create_app, ServeSettings) are still there, loaded when first used."""
    code = ("import sys\nimport sound_tf.serve.logs\n"
            "heavy = ('fastapi', 'starlette', 'pydantic', 'uvicorn', 'tensorflow', 'keras', 'numpy')\n"
            "print(sorted({name.partition('.')[0] for name in sys.modules} & set(heavy)))\n"
            "import sound_tf.serve as serve\nprint(serve.create_app.__module__, serve.ServeSettings.__module__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded, names = done.stdout.splitlines()
    assert loaded == "[]", loaded  # what is loaded, not how long it took: a timed assert failed on a busy machine
    assert names == "sound_tf.serve.app sound_tf.serve.settings"


def _multipart(data: bytes, filename: str = "a.wav", boundary: str = "xyz") -> bytes:
    return (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()


def test_every_limit_admits_exactly_its_value(tmp_path, backend):
    """max_upload_bytes, max_audio_seconds and max_files_per_request are the largest values accepted."""
    body = _multipart(encode(tone(300, 2.0, 8000), 8000))  # 2.0 s, 32 kB of PCM
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    app = create_app(settings(tmp_path, max_upload_bytes=len(body), max_audio_seconds=2.0, max_files_per_request=2),
                     backend=backend)
    with TestClient(app) as client:
        wait_ready(client)
        declared = client.post("/classify", content=body, headers=headers)  # Content-Length == the limit
        assert declared.status_code == 200, declared.text
        assert declared.json()["label"] == "low" and declared.json()["duration_seconds"] == 2.0
        streamed = client.post("/classify", content=iter([body[:1000], body[1000:]]), headers=headers)  # chunked
        assert streamed.status_code == 200, streamed.text
        over = client.post("/classify", content=body + b"\r\n", headers=headers)  # two bytes over the limit
        assert over.status_code == 413 and over.json()["error"] == "upload_too_large"
        files = [("files", (f"{i}.wav", encode(tone(900, 0.5, 8000), 8000))) for i in range(2)]
        pair = client.post("/classify/batch", files=files)
        assert pair.status_code == 200 and pair.json()["succeeded"] == 2


def test_a_multipart_part_header_over_the_parsers_limit_is_a_413_that_says_so(client, tmp_path, backend):
    """A file name of thousands of characters overflows python-multipart's part header line limit (4224 bytes in
    0.0.34): Starlette answered 400 "Invalid multipart data.", which did not say what was wrong. The limit is
    kept; the answer names it. Other bodies the parser refuses are still 400s, with the parser's reason."""
    from python_multipart.multipart import DEFAULT_MAX_HEADER_SIZE

    data = encode(tone(300, 0.5, 8000), 8000)
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    line = 'Content-Disposition: form-data; name="file"; filename=""'  # the part's header line, less the name
    longest = DEFAULT_MAX_HEADER_SIZE - len(line)  # 4168 characters
    assert longest == 4168
    kept = client.post("/classify", content=_multipart(data, "a" * longest), headers=headers)
    assert kept.status_code == 200 and kept.json()["label"] == "low", kept.text
    assert kept.json()["filename"] == "a" * 120  # echoed cut to 120 characters
    limit_detail = ("a part of the multipart body has a header line longer than 4224 bytes, the limit of the server's "
                    "multipart parser (python-multipart): a file name of thousands of characters? send the file "
                    "under a shorter name")
    for name in ("a" * (longest + 1), "b" * 8200 + ".wav"):
        over = client.post("/classify", content=_multipart(data, name), headers=headers)
        assert over.status_code == 413 and over.headers["connection"] == "close", over.text
        assert over.json() == {"error": "part_header_too_large", "detail": limit_detail,
                               "request_id": over.headers["x-request-id"]}
    batch = client.post("/classify/batch", files=[("files", ("a.wav", data)), ("files", ("c" * 5000, data))])
    assert batch.status_code == 413 and batch.json()["detail"] == limit_detail
    extra = "".join(f"X-Extra-{i}: 1\r\n" for i in range(8))  # 9 header lines in the part: the parser takes 8
    crowded = _multipart(data).replace(b"Content-Type:", extra.encode() + b"Content-Type:")
    many = client.post("/classify", content=crowded, headers=headers)
    assert many.status_code == 413 and many.json()["error"] == "too_many_part_headers"
    assert "more header lines than the server's multipart parser (python-multipart) takes (8)" in many.json()["detail"]
    spaced = _multipart(data).replace(b"Content-Type:", b"Content Type:")  # a space in a header's name
    bad = client.post("/classify", content=spaced, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"
    at = spaced.index(b"Content Type") + len("Content")  # 77: the space's offset in the body
    assert bad.json()["detail"] == (f"invalid multipart/form-data body (python-multipart: Found invalid character "
                                    f"' ' (32) in header at {at})")


def test_the_decoded_size_limit_counts_channels(tmp_path, backend):
    """1 s of 8 channels at 96 kHz is 768,000 samples: over the 2-s budget of 2 x 96,000 x 2 = 384,000,
    although its 96,000 frames alone are not."""
    app = create_app(settings(tmp_path, max_audio_seconds=2.0), backend=backend)
    flac = io.BytesIO()
    sf.write(flac, np.zeros((96_000, 8), np.int16), 96_000, format="FLAC", subtype="PCM_16")
    with TestClient(app) as client:
        wait_ready(client)
        response = client.post("/classify", files={"file": ("octo.flac", flac.getvalue())})
        assert response.status_code == 413 and response.json()["error"] == "audio_too_large"
        assert "decode to 768000 samples, over the limit of 384000 (2 s of 96-kHz stereo, the server's " \
            "SOUND_TF_MAX_AUDIO_SECONDS)" in response.json()["detail"]
        exact = io.BytesIO()  # 4 channels x 96,000 frames = 384,000 samples: the budget itself is admitted
        sf.write(exact, np.zeros((96_000, 4), np.int16), 96_000, format="FLAC", subtype="PCM_16")
        response = client.post("/classify", files={"file": ("quad.flac", exact.getvalue())})
        assert response.status_code == 200 and response.json()["channels"] == 4, response.text


def test_a_streaming_wav_header_is_not_truncation(client):
    """Streaming writers leave the data size at 0xFFFFFFFF: that is a whole file, not a truncated one."""
    data = bytearray(encode(tone(900, 1.0, 8000), 8000))
    at = data.index(b"data") + 4
    data[at:at + 4] = struct.pack("<I", 0xFFFFFFFF)
    response = client.post("/classify", files={"file": ("live.wav", bytes(data))})
    assert response.status_code == 200, response.text
    assert response.json()["label"] == "mid" and response.json()["duration_seconds"] == pytest.approx(1.0)


def test_a_known_container_with_an_unsupported_codec_is_415(client):
    """A CAF holding AAC (as Apple devices record): libsndfile knows the container, not the codec."""
    desc = struct.pack(">d4sIIIII", 8000.0, b"aac ", 0, 0, 1024, 1, 0)
    payload = struct.pack(">I", 0) + bytes(2000)
    caf = (b"caff" + struct.pack(">HH", 1, 0) + b"desc" + struct.pack(">q", len(desc)) + desc
           + b"data" + struct.pack(">q", len(payload)) + payload)
    response = client.post("/classify", files={"file": ("memo.caf", caf)})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_format", response.text


def test_an_aiff_c_in_a_codec_libsndfile_does_not_decode_is_415(client):
    """An AIFF-C holding QDesign Music 2 (old QuickTime recordings): libsndfile reads the container and calls
    the codec unimplemented, which is an unsupported format, not a corrupt file."""
    rate = bytes.fromhex("400BFA00000000000000")  # 8000.0 as an 80-bit float
    comm = struct.pack(">hIh", 1, 1000, 16) + rate + b"QDM2" + b"\x00\x00"
    ssnd = struct.pack(">II", 0, 0) + bytes(2000)
    body = (b"AIFC" + b"FVER" + struct.pack(">II", 4, 0xA2805140) + b"COMM" + struct.pack(">I", len(comm)) + comm
            + b"SSND" + struct.pack(">I", len(ssnd)) + ssnd)
    response = client.post("/classify", files={"file": ("old.aifc", b"FORM" + struct.pack(">I", len(body)) + body)})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_format", response.text
    assert response.json()["detail"].startswith("old.aifc: not an audio format the server reads (libsndfile: ")


@pytest.mark.parametrize("tag, extension, named", [
    (0xFFFE, struct.pack("<HHI", 22, 16, 4) + b"\x55\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71",
     "WAVE_FORMAT_EXTENSIBLE sub-format 0x0055, MPEG layer III"),  # libsndfile: "unimplemented format"
    (0x0161, b"\x00\x00", "WAVE format tag 0x0161, Windows Media Audio"),  # libsndfile: "malformed 'fmt ' chunk"
], ids=["extensible-mp3", "wma"])
def test_a_wav_holding_a_codec_libsndfile_does_not_decode_is_415(client, tag, extension, named):
    """A well-formed WAV whose codec libsndfile lacks is an unsupported format, not a corrupt file, and
    the answer names the codec (libsndfile calls a plain WAV's unknown codec a malformed 'fmt ' chunk)."""
    fmt = struct.pack("<HHIIHH", tag, 1, 8000, 16000, 2, 16) + extension
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 16000) + bytes(16000)
    response = client.post("/classify", files={"file": ("x.wav", b"RIFF" + struct.pack("<I", len(body)) + body)})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_format", response.text
    assert response.json()["detail"].startswith(f"x.wav: a WAV file whose audio is in a codec libsndfile does not "
                                                f"decode ({named}); convert it to PCM WAV or FLAC"), response.text


def test_the_last_window_ends_where_the_recording_ends(client):
    """2.9 s: windows start every 0.25 s up to 2.5 s; the last two end at 2.75 s and 2.9 s (not 3.0 s)."""
    body = client.post("/classify?windows=true",
                       files={"file": ("odd.wav", encode(tone(900, 2.9, 8000), 8000))}).json()
    timeline = body["windows"]
    assert len(timeline) == body["num_windows"] == 11
    assert [w["end_seconds"] for w in timeline[-3:]] == pytest.approx([2.5, 2.75, 2.9])


def test_the_duration_is_given_to_the_microsecond(client):
    """1001 samples at 8 kHz are 0.125125 s: the answer keeps 6 decimals, as the timeline does."""
    body = client.post("/classify", files={"file": ("short.wav", encode(tone(900, 1001 / 8000, 8000), 8000))}).json()
    assert body["duration_seconds"] == round(1001 / 8000, 6) and body["duration_seconds"] != round(1001 / 8000, 3)


class ProbabilitiesOnly(ToneBackend):
    """A model that answers probabilities but no logits (e.g. a SavedModel exported elsewhere)."""

    def predict(self, windows):
        return {"probabilities": super().predict(windows)["probabilities"]}


def test_a_model_without_logits_is_scored_like_one_with_them(tmp_path):
    """softmax(mean log p) == softmax(mean logits): log p differs from the logits by a constant per window."""
    rate = 8000
    wave = np.concatenate([tone(300, 0.5, rate), tone(900, 0.75, rate)])  # windows: low, mixed, mid, mid
    data = encode(wave, rate, "WAV", "FLOAT")
    answers = []
    for model in (ToneBackend(), ProbabilitiesOnly()):
        with TestClient(create_app(settings(tmp_path), backend=model)) as client:
            wait_ready(client)
            top = client.post("/classify?top_k=3", files={"file": ("two.wav", data)}).json()["top_k"]
            answers.append({item["label"]: item["probability"] for item in top})
    with_logits, without = answers
    assert max(with_logits.values()) < 0.99  # the windows disagree: the rule matters
    assert without == pytest.approx(with_logits, abs=1e-5)


def test_a_body_cut_off_mid_stream_closes_the_connection(tmp_path, backend):
    app = create_app(settings(tmp_path, max_upload_bytes=64 * 1024), backend=backend)
    part = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    with TestClient(app) as client:
        wait_ready(client)
        response = client.post("/classify", content=iter([part] + [b"a" * 8192] * 20),
                               headers={"content-type": "multipart/form-data; boundary=xyz"})
        assert response.status_code == 413 and response.json()["error"] == "upload_too_large"
        assert response.headers["connection"] == "close"  # the unread rest of the body must not be parsed


def test_batch_takes_top_k_and_windows_like_classify(client):
    files = [("files", ("low.wav", encode(tone(300, 1.0, 8000), 8000))),
             ("files", ("high.wav", encode(tone(2200, 0.5, 8000), 8000)))]
    body = client.post("/classify/batch?top_k=1&windows=true", files=files).json()
    low, high = body["results"]
    assert [t["label"] for t in low["top_k"]] == ["low"] and [t["label"] for t in high["top_k"]] == ["high"]
    assert all(len(w["top_k"]) == 1 for r in (low, high) for w in r["windows"])  # each window: the request's top_k
    assert [len(r["windows"]) for r in (low, high)] == [3, 1]  # 1.0 s: windows at 0, 0.25, 0.5 s
    assert [w["start_seconds"] for w in low["windows"]] == [0.0, 0.25, 0.5]


def test_batch_entries_take_the_servers_default_top_k(tmp_path, backend):
    """/classify/batch without top_k answers the server's default_top_k labels per file, as /classify does."""
    files = [("files", (f"{label}.wav", encode(tone(hz, 0.5, 8000), 8000))) for label, hz in TONES_HZ.items()]
    for default in (1, 2):
        with TestClient(create_app(settings(tmp_path, default_top_k=default), backend=backend)) as client:
            wait_ready(client)
            body = client.post("/classify/batch", files=files).json()
        assert [[t["label"] for t in r["top_k"]][:1] for r in body["results"]] == [[label] for label in TONES_HZ]
        assert [len(r["top_k"]) for r in body["results"]] == [default] * len(TONES_HZ)


@pytest.mark.parametrize("sent, shown", [
    ("a\x1b[31mb\x07.wav", "a?[31mb?.wav"),  # a terminal escape and a bell: never echoed into a log or a page
    ("recordings/", "upload"),  # a name that is only a folder
    ("   ", "upload"),
    ("  \t \n", "upload"),  # only white space, a tab and a line break among it: was '?'
    (" \tmemo.wav\r\n", "memo.wav"),  # surrounding white space is no part of the name
    ("a\tb.wav", "a?b.wav"),
    ("", "upload"),
])
def test_a_file_name_is_echoed_printable_or_as_upload(sent, shown):
    """safe_filename replaces characters that are not printable and gives 'upload' for a name with no base."""
    assert safe_filename(sent) == shown


def test_an_unparsable_content_length_is_a_400_before_reading(tmp_path, backend):
    """A Content-Length that is not a number is refused in JSON before a byte is read (uvicorn's h11 parser
    refuses it before the app; another ASGI server may pass it on)."""
    app = create_app(settings(tmp_path), backend=backend)
    headers = [(b"content-type", b"multipart/form-data; boundary=xyz"), (b"content-length", b"12kB")]
    status, body, consumed = _call_asgi(app, "POST", "/classify", headers, [b"x" * 100], 0.0)
    assert (status, body["error"], consumed) == (400, "bad_request", 0)
    assert body["detail"] == "invalid Content-Length header '12kB'"


class FailingAggregate(ToneBackend):
    """A bug after the model call: an exception that is no ServeError."""

    def aggregate(self, outputs):
        raise ValueError("a bug after the model call")


def test_an_unexpected_error_is_a_500_json_answer_and_the_server_goes_on(tmp_path):
    """An exception of the server's own is a 500 internal_error with the request id (not a 503 that asks the
    client to retry the same bug), and the next request is served."""
    backend = FailingAggregate()
    data = encode(tone(300, 0.5, 8000), 8000)
    with TestClient(create_app(settings(tmp_path), backend=backend)) as client:
        wait_ready(client)
        response = client.post("/classify", files={"file": ("a.wav", data)})
        assert response.status_code == 500, response.text
        assert response.json() == {"error": "internal_error", "request_id": response.headers["x-request-id"],
                                   "detail": "internal server error; the request id is in the logs"}
        backend.aggregate = ToneBackend.aggregate.__get__(backend)
        assert client.post("/classify", files={"file": ("a.wav", data)}).json()["label"] == "low"



class FailingOnHigh(ToneBackend):
    """A bug after the model call on one recording only: the one whose windows score 'high' best."""

    def aggregate(self, outputs):
        probabilities = super().aggregate(outputs)
        if self.labels[int(np.argmax(probabilities))] == "high":
            raise ValueError("a bug after the model call")
        return probabilities


def test_an_unexpected_error_in_one_file_of_a_batch_fails_that_entry_alone(tmp_path):
    """/classify/batch: an exception of the server's own on one file is that entry's 500 internal_error (logged
    with the request id and the file's name); the request is a 200 and the other files keep their answers,
    where the whole request was a 500 and every result was lost."""
    backend = FailingOnHigh()
    files = [("files", (f"{label}.wav", encode(tone(hz, 0.5, 8000), 8000))) for label, hz in TONES_HZ.items()]
    with TestClient(create_app(settings(tmp_path), backend=backend)) as client:
        wait_ready(client)
        records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.ERROR)
        handler.emit = records.append  # the server's logger may not propagate (configure_logging): listen on it
        logging.getLogger("sound_tf.serve").addHandler(handler)
        try:
            response = client.post("/classify/batch", files=files)
        finally:
            logging.getLogger("sound_tf.serve").removeHandler(handler)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["succeeded"], body["failed"]) == (2, 1)
        by_name = {entry["filename"]: entry for entry in body["results"]}
        assert [by_name[name].get("label") for name in ("low.wav", "mid.wav")] == ["low", "mid"]
        assert by_name["high.wav"] == {"filename": "high.wav", "error": "internal_error", "status": 500,
                                       "detail": "internal server error; the request id is in the logs"}
        logged = [r for r in records if r.getMessage() == "unhandled error"]
        assert len(logged) == 1 and logged[0].exc_info[0] is ValueError
        assert logged[0].fields == {"request_id": body["request_id"], "filename": "high.wav"}
        metrics = client.get("/metrics").text
        assert 'sound_tf_errors_total{kind="internal_error"} 1.0' in metrics, metrics

def _concurrent_posts(app, uploads, decode_seconds):
    """POST each ``(name, data)`` of ``uploads`` to /classify at once; each decode takes ``decode_seconds[name]``
    longer. Returns the responses and the most decodes that ran at the same time."""
    service = app.state.service
    running = {"now": 0, "most": 0}
    lock = threading.Lock()

    async def run():
        async with app.router.lifespan_context(app):
            await service.wait_ready(10)
            decode = service.decode

            def slow_decode(data, name):
                with lock:
                    running["now"] += 1
                    running["most"] = max(running["most"], running["now"])
                time.sleep(decode_seconds[name])
                with lock:
                    running["now"] -= 1
                return decode(data, name)

            service.decode = slow_decode
            async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://test") as http:
                return await asyncio.gather(*(http.post("/classify", files={"file": upload}) for upload in uploads))

    return asyncio.run(run()), running["most"]


def test_uploads_are_decoded_at_most_decode_threads_at_a_time(tmp_path):
    """SOUND_TF_DECODE_THREADS bounds the uploads decoded at once (each holds its whole decoded audio)."""
    uploads = [(f"{i}.wav", encode(tone(list(TONES_HZ.values())[i % 3], 0.5, 8000), 8000)) for i in range(6)]
    for threads in (1, 2):
        app = create_app(settings(tmp_path, decode_threads=threads), backend=ToneBackend())
        responses, most = _concurrent_posts(app, uploads, {name: 0.1 for name, _ in uploads})
        assert [r.json()["label"] for r in responses] == [list(TONES_HZ)[i % 3] for i in range(6)]
        assert most == threads


def test_an_upload_being_decoded_joins_the_batch_of_one_already_decoded(tmp_path):
    """While b.wav is decoded (0.3 s), a.wav (decoded in 0.05 s) waits for it, up to max_wait_ms: one model call
    of both windows, not two calls of one."""
    backend = ToneBackend()
    app = create_app(settings(tmp_path, max_wait_ms=1000), backend=backend)
    uploads = [("a.wav", encode(tone(300, 0.5, 8000), 8000)), ("b.wav", encode(tone(2200, 0.5, 8000), 8000))]
    responses, _ = _concurrent_posts(app, uploads, {"a.wav": 0.05, "b.wav": 0.3})
    assert [r.json()["label"] for r in responses] == ["low", "high"]
    assert backend.calls == [1, 32, 2]  # the warm-up's two, then one call for both uploads


def test_a_bundle_without_float32_prefers_float16_to_quantised_variants(tmp_path):

    bundle = fake_bundle(tmp_path / "b", ("float16", "dynamic", "int8"))
    assert resolve_backend(bundle) == ("tflite", bundle / "model_float16.tflite")


def test_a_batching_wait_the_backend_does_not_use_is_pointed_out(tmp_path):
    """--max-wait-ms on the TFLite backend (a bundle's default) was dropped without a word: /ready and the
    log said 0.0 and nothing said why."""
    import logging

    from sound_tf.serve import service

    quick = ToneBackend()
    quick.batches_pay_off = False  # as the TFLite backend
    records: list[logging.LogRecord] = []
    catcher = logging.Handler(logging.WARNING)
    catcher.emit = records.append  # the service's own logger: the server's logging set-up may not propagate
    service.log.addHandler(catcher)
    level = service.log.level  # an earlier test's server may have set another level
    service.log.setLevel(logging.WARNING)
    try:
        for given, warned in ((settings(tmp_path, max_wait_ms=20), True), (ServeSettings(model_dir=tmp_path), False)):
            records.clear()
            with TestClient(create_app(given, backend=quick)) as test_client:
                wait_ready(test_client)
                assert test_client.get("/ready").json()["max_wait_ms"] == 0.0  # the wait in use, not the one given
            said = [r.getMessage() for r in records if "is not used" in r.getMessage()]
            assert said == ([f"max_wait_ms=20 is not used: the {quick.name} backend runs each window as soon as it "
                             "is there (batching does not pay off on it); it applies to the keras and savedmodel "
                             "backends"] if warned else []), said
    finally:
        service.log.removeHandler(catcher)
        service.log.setLevel(level)


def test_the_readmes_table_of_server_limits_gives_the_settings_defaults():
    """Each row of the README's table of server limits names a ServeSettings field by its environment variable
    and gives its default: a changed default, or a renamed setting, must change the table too."""
    from conftest import REPO
    from sound_tf.serve.settings import ServeSettings

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Z_]+)` \| (\S+)(?: \([^)]*\))? \| .+ \|$", readme, flags=re.MULTILINE)
    assert len(rows) == 10, rows
    fields = ServeSettings.model_fields
    for name, default in rows:
        field = fields[name.lower()]  # a KeyError names a row whose setting does not exist
        assert float(default) == float(field.default), (name, default, field.default)


# -- found by the mutation audit of session 52 ------------------------------------------------------------------
def test_only_a_name_ffmpeg_converts_is_given_the_ffmpeg_line(client):
    """An upload libsndfile does not recognise is told to convert with ffmpeg only when its name is one ffmpeg
    converts (a phone's .m4a); a text file or a picture named .wav is not told to run ffmpeg on it."""
    payload = b"\0\0\0\x20ftypM4A " + b"\0" * 64
    for name in ("memo.m4a", "notes.txt", "photo.wav"):
        response = client.post("/classify", files={"file": (name, payload)})
        assert response.status_code == 415 and response.json()["error"] == "unsupported_format", response.text
        stem = name.rsplit(".", 1)[0]
        told = f"convert it to FLAC or WAV, e.g. ffmpeg -i {name} {stem}.flac"
        assert (told in response.json()["detail"]) == name.endswith(".m4a"), response.json()["detail"]
        assert ("ffmpeg" in response.json()["detail"]) == name.endswith(".m4a")


def test_tied_classes_answer_the_first_of_them_as_predicted_class(client, backend):
    """Silence scores every class alike: predicted_class is the first of the tied classes, the one top_k lists
    first (and label names), for the recording and for each window."""
    response = client.post("/classify?windows=true&top_k=3",
                           files={"file": ("silence.wav", encode(np.zeros(6000, np.float32), 8000))})
    body = response.json()
    probabilities = [item["probability"] for item in body["top_k"]]
    assert len(set(probabilities)) == 1  # a tie of all three
    first = list(backend.labels).index(body["top_k"][0]["label"])
    assert body["predicted_class"] == first == 0 and body["label"] == backend.labels[first]
    assert len(body["windows"]) == 1 + int(np.ceil((6000 - 4000) / 2000))  # 0.75 s: windows at 0 and 0.25 s
    assert [w["predicted_class"] for w in body["windows"]] == [list(backend.labels).index(w["label"])
                                                               for w in body["windows"]] == [0, 0]


def test_host_and_port_flags_reach_uvicorn_over_the_environment(tmp_path, monkeypatch):
    """--host and --port are where uvicorn listens; --port 0 (any free port) is a flag given, not one left out."""
    import uvicorn

    from sound_tf.serve.__main__ import main

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.append(kwargs))
    monkeypatch.setattr("sound_tf.serve.app.create_app", lambda settings: None)
    monkeypatch.setenv("SOUND_TF_PORT", "9001")
    monkeypatch.setenv("SOUND_TF_HOST", "127.0.0.2")
    assert main([str(tmp_path)]) == 0
    assert main([str(tmp_path), "--host", "0.0.0.0", "--port", "9123"]) == 0
    assert main([str(tmp_path), "--port", "0"]) == 0
    assert [(kwargs["host"], kwargs["port"]) for kwargs in started] == [("127.0.0.2", 9001), ("0.0.0.0", 9123),
                                                                         ("127.0.0.2", 0)]


def test_the_duration_is_the_decoded_recordings_and_the_timeline_ends_with_it(client):
    """1001 frames at 44.1 kHz (22.698 ms) decode to 182 samples at the model's 8 kHz: the answer's duration is
    that recording's, 182 / 8000 s, the end of its last window in the timeline, as predict and lite answer."""
    from sound_tf.audio import decode_bytes

    data = encode(tone(900, 1001 / 44100, 44100), 44100)
    samples = decode_bytes(data, sample_rate_hz=8000).shape[0]
    assert samples != 1001 * 8000 / 44100  # not a whole number of samples at the model's rate
    body = client.post("/classify?windows=true", files={"file": ("short.wav", data)}).json()
    assert body["duration_seconds"] == round(samples / 8000, 6) == body["windows"][-1]["end_seconds"]
    assert body["sample_rate_hz"] == 44100 and body["num_windows"] == 1


def test_ready_names_the_model_file_and_variant_served(tmp_path):
    backend = ToneBackend()
    backend.path, backend.variant = tmp_path / "bundle" / "model_int8.tflite", "int8"
    with TestClient(create_app(settings(tmp_path), backend=backend)) as client:
        wait_ready(client)
        ready = client.get("/ready").json()
    assert (ready["backend"], ready["model_file"], ready["variant"]) == ("tones", "model_int8.tflite", "int8")


def test_a_model_folder_that_is_not_there_stops_the_server_before_uvicorn_starts(tmp_path, monkeypatch):
    """With one worker or several, a wrong MODEL_DIR is an error at start (exit 2), not workers that fail one after
    another under uvicorn's supervisor."""
    import uvicorn

    from sound_tf.serve.__main__ import main

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.append(kwargs))
    for name in ("PROMETHEUS_MULTIPROC_DIR", *ServeSettings(model_dir=tmp_path).to_env()):
        monkeypatch.delenv(name, raising=False)  # what a run with --workers would set, undone after the test
    missing = tmp_path / "nowhere"
    for workers in ("1", "2"):
        assert main([str(missing), "--workers", workers]) == 2  # its message: test_wrong_model_folder_fails_at_start
    assert started == []
