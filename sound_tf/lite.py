"""On-device runner: classify audio files with one exported ``.tflite`` file, without TensorFlow.

Imports only NumPy, soundfile/soxr (through :mod:`sound_tf.audio`) and ``ai-edge-litert``; never
TensorFlow or Keras (a test holds this). Everything the runner needs -- labels, sample rate, clip and
hop sizes -- is read from the model file itself (see :mod:`sound_tf.tflite_meta`).

A recording of any length and rate is decoded, resampled to the model's rate and cut into windows of
``clip_samples`` every ``hop_samples`` (the last one zero-padded, exactly as evaluation does: see
:func:`sound_tf.audio.split_windows`). Each window gets class probabilities; the overall result is
the softmax of the *mean logits* over windows, the rule ``sound_tf.evaluation`` scores clips with.
Exported models output both ``logits`` and ``probabilities`` for that reason: averaging int8
probabilities would not work, since every probability under 1/256 reads as 0 while the mean of logits
is dominated by exactly those small values. (A model with a probabilities output only is aggregated
with the mean log-probability, which ranks classes the same way for float models.) Averaged, a recording of
several sounds and silence gets a low, shared answer; its events (:func:`window_events`) say what was heard
when: runs of consecutive windows of one top class at ``--min-probability`` or more, the run's silence and
other classes left out.

Command line::

    python -m sound_tf.lite MODEL.tflite FILE_OR_FOLDER... [--hop-seconds S] [--top-k K] [--min-probability P]
                            [--json] [--threads N]

Library::

    classifier = LiteClassifier("export/model_int8.tflite")
    result = classifier.classify_file("street.wav", top_k=3)
    result["label"], [w["label"] for w in result["windows"]]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .audio import (check_finite_windows, check_wave, check_windows, expand_audio_inputs, left_out_note, load_audio,
                    resample_wave, silent_note, split_windows)
from .errors import AudioError, ConfigError, SoundTFError, counted, is_whole, run_cli, stop_signal
from .quiet import native_logs_held
from .tflite_meta import ModelMetadata, read_metadata

__all__ = ["DEFAULT_MIN_PROBABILITY", "KERNELS", "LiteClassifier", "aggregate_logits", "check_min_probability",
           "check_top_k", "event_lines", "not_event_labels", "op_resolver_type", "softmax", "top_classes",
           "window_events", "window_logits", "window_probabilities", "window_timeline", "main"]

#: Signature output names of exported models.
LOGITS, PROBABILITIES = "logits", "probabilities"
#: The kernel sets :class:`LiteClassifier` can run a model with: ``"default"``, the runtime's built-in kernels with
#: its default delegate (XNNPACK on a CPU) taking the ops it supports, as a phone or desktop build runs them; and
#: ``"builtin"``, TFLite's built-in kernels alone, as a build without XNNPACK runs them. They differ beyond
#: rounding for quantised models: XNNPACK's int8 and dynamic-range kernels round and quantise on the fly in
#: their own way.
KERNELS = ("default", "builtin")
#: The probability a window's top class needs for the window to be part of an event (``--min-probability``'s
#: default; see :func:`window_events`).
DEFAULT_MIN_PROBABILITY = 0.5


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def aggregate_logits(logits: np.ndarray) -> np.ndarray:
    """One recording's class probabilities from its windows' logits: ``softmax(mean over windows)``.

    Parameters
    ----------
    logits : numpy.ndarray
        ``[windows, classes]``.

    Returns
    -------
    numpy.ndarray
        ``[classes]`` float64, the evaluation's clip score.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ConfigError(f"aggregate_logits expects [windows, classes] with windows >= 1, got shape {logits.shape}")
    return softmax(logits.mean(axis=0))


def window_logits(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """``[windows, classes]`` scores whose mean over windows :func:`aggregate_logits` turns into a clip's
    probabilities: the logits output, or for a model without one the log-probabilities."""
    if LOGITS in outputs:
        return np.asarray(outputs[LOGITS], np.float64)
    return np.log(np.maximum(np.asarray(outputs[PROBABILITIES], np.float64), np.finfo(np.float32).tiny))


def window_probabilities(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """``[windows, classes]``: each window scored by the clip rule applied to it alone (the softmax of
    :func:`window_logits`), so a one-window recording's window and overall results are one number (an
    int8 model's own probabilities output moves in steps of 1/256)."""
    return softmax(window_logits(outputs))


def top_classes(probabilities: np.ndarray, labels: Sequence[str], k: int) -> list[dict[str, Any]]:
    """The ``k`` most probable classes of ``probabilities`` ``[classes]``, best first, as ``{label, probability}``
    with the probability to 6 decimals (ties keep class order); what every answer of predict, lite and the
    server lists."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": labels[i], "probability": round(float(probabilities[i]), 6)} for i in order]


def window_timeline(probabilities: np.ndarray, labels: Sequence[str], *, hop_samples: int, clip_samples: int,
                    total_samples: int, sample_rate_hz: int, top_k: int) -> list[dict[str, Any]]:
    """The per-window timeline that ``predict``, ``lite`` and the server all answer.

    Parameters
    ----------
    probabilities : numpy.ndarray
        ``[windows, classes]``, e.g. :func:`window_probabilities`; window ``i`` starts at ``i * hop_samples``.
    labels : sequence of str
    hop_samples, clip_samples, total_samples, sample_rate_hz : int
        The windows' hop and length, the recording's length in samples and its rate.
    top_k : int
        Classes listed per window (already checked and capped, see :func:`check_top_k`).

    Returns
    -------
    list of dict
        Per window: ``index``, ``start_seconds``, ``end_seconds`` (the end of the real audio in it; the
        last windows of a recording are padded), ``label`` and ``probability`` of its best class, and
        ``top_k`` (its ``top_k`` best classes). Times to 1 microsecond, probabilities to 6 decimals.
    """
    rate = float(sample_rate_hz)
    timeline = []
    for index, row in enumerate(np.asarray(probabilities)):  # [classes] per window
        start = index * int(hop_samples)
        top = top_classes(row, labels, top_k)
        timeline.append({"index": index, "start_seconds": round(start / rate, 6),
                         "end_seconds": round(min(start + int(clip_samples), int(total_samples)) / rate, 6),
                         "label": top[0]["label"], "probability": top[0]["probability"], "top_k": top})
    return timeline


def not_event_labels(labels: Sequence[str], *, silence_label: str | None,
                     other_label: str | None) -> tuple[str, ...]:
    """The classes of ``labels`` that are never events: the run's ``data.silence_label`` (``_silence_``) and
    ``data.other_label`` (``_unknown_``), those of them the model has; ``()`` for a model with neither."""
    return tuple(label for label in (silence_label, other_label) if label is not None and label in labels)


def check_min_probability(value: Any, *, name: str = "min_probability") -> float:
    """``value`` as a float; a ``ConfigError`` naming ``name`` unless it is a number in [0, 1]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0.0 <= number <= 1.0:  # NaN fails both comparisons
        raise ConfigError(f"{name} must be a probability from 0 to 1, got {value!r}")
    return number


def window_events(timeline: Sequence[Mapping[str, Any]], *, min_probability: float = DEFAULT_MIN_PROBABILITY,
                  leave_out: Sequence[str] = ()) -> list[dict[str, Any]]:
    """What was heard when: runs of consecutive windows of one top class, each at ``min_probability`` or more.

    A window whose top class is in ``leave_out`` (the silence and other classes: :func:`not_event_labels`) or
    whose top probability is below ``min_probability`` belongs to no event and ends the one before it, as
    does a window of another top class.

    Parameters
    ----------
    timeline : sequence of dict
        :func:`window_timeline`'s windows, in order (``index``, ``start_seconds``, ``end_seconds``, ``label``,
        ``probability``).
    min_probability : float
        In [0, 1] (:data:`DEFAULT_MIN_PROBABILITY`).
    leave_out : sequence of str
        Classes that are never events.

    Returns
    -------
    list of dict
        Per event: ``start_seconds`` (its first window's start), ``end_seconds`` (its last window's end: the
        end of the real audio in it), ``label``, ``peak_probability`` (its windows' highest) and the indices
        ``first_window`` and ``last_window``.

    Examples
    --------
    >>> timeline = window_timeline(np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]]), ["yes", "_silence_"],
    ...                            hop_samples=4, clip_samples=8, total_samples=20, sample_rate_hz=8, top_k=1)
    >>> window_events(timeline, leave_out=["_silence_"])
    [{'start_seconds': 0.0, 'end_seconds': 1.5, 'label': 'yes', 'peak_probability': 0.9, 'first_window': 0, \
'last_window': 1}]
    """
    threshold = check_min_probability(min_probability)
    events: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for window in timeline:
        label, probability = window["label"], float(window["probability"])
        if label in leave_out or probability < threshold:
            current = None
        elif current is not None and current["label"] == label:
            current["end_seconds"] = max(current["end_seconds"], window["end_seconds"])
            current["peak_probability"] = max(current["peak_probability"], probability)
            current["last_window"] = window["index"]
        else:
            current = {"start_seconds": window["start_seconds"], "end_seconds": window["end_seconds"], "label": label,
                       "peak_probability": probability, "first_window": window["index"],
                       "last_window": window["index"]}
            events.append(current)
    return events


def event_lines(events: Sequence[Mapping[str, Any]], *, min_probability: float,
                leave_out: Sequence[str] = ()) -> list[str]:
    """The text ``lite`` and ``predict --windows`` print after a recording's windows: a heading saying what an event
    is here, then one ``start-end s: label (peak p)`` line per event (or ``none`` on the heading)."""
    kept = f", not {' or '.join(shown_label(label) for label in leave_out)}" if leave_out else ""
    heading = f"  events (one top class over consecutive windows, each at >= {min_probability:g}{kept}):"
    if not events:
        return [f"{heading} none"]
    width = max(len(f"{e['start_seconds']:.2f}") for e in events)
    return [heading] + [f"    {e['start_seconds']:>{width}.2f}-{e['end_seconds']:.2f} s: {shown_label(e['label'])} "
                        f"(peak {e['peak_probability']:.3f})" for e in events]


def _dequantize(values: np.ndarray, detail: Mapping[str, Any]) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return values.astype(np.float32, copy=True)
    scale, zero_point = detail["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def op_resolver_type(kernels: str) -> Any:
    """The LiteRT ``OpResolverType`` of one of :data:`KERNELS`."""
    from ai_edge_litert.interpreter import OpResolverType

    if kernels not in KERNELS:
        raise ConfigError(f"kernels must be one of {list(KERNELS)}, got {kernels!r}")
    return OpResolverType.AUTO if kernels == "default" else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


def check_top_k(top_k: int, num_classes: int, *, name: str = "top_k") -> int:
    """``top_k`` capped at ``num_classes``; a ``ConfigError`` naming ``name`` unless it is an integer >= 1."""
    if not is_whole(top_k) or top_k < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {top_k!r}")
    return min(int(top_k), num_classes)


def features_model_hint(model_path: str | os.PathLike, input_kind: str) -> str:
    """Why a features model (``model_int8_features.tflite``) is refused and what to do: where its
    ``features.json`` is (beside it in the export folder, and inside the file) and which model of the same
    folder classifies audio (``model_int8.tflite`` first, the small one for a device)."""
    path = Path(model_path)
    siblings = sorted(p.name for p in path.parent.glob("model_*.tflite")
                      if p.is_file() and p.name != path.name and not p.name.endswith("_features.tflite"))
    waveform = next((name for name in ("model_int8.tflite", *siblings) if name in siblings), None)
    use = (f"to classify recordings use a waveform model: {path.parent / waveform}" if waveform is not None else
           "to classify recordings use a waveform model of the same export (model_int8.tflite or "
           "model_float32.tflite)")
    return (f"this model takes {input_kind!r} input (normalised log-mel features), not a waveform, so this runner "
            f"cannot feed it; it is for a device that computes the features itself as features.json describes (in "
            f"the export folder, and inside this file: python -m zipfile -e {path} DIR); {use}")


class LiteClassifier:
    """A sound classifier backed by one exported ``.tflite`` file.

    The interpreter is guarded by a lock, so one instance may be shared by the threads of a server.

    Parameters
    ----------
    model_path : str or path-like
        A waveform-input model written by ``python -m sound_tf.export`` (``model_float32.tflite``,
        ``model_float16.tflite``, ``model_dynamic.tflite`` or ``model_int8.tflite``).
    num_threads : int
        Interpreter threads (1 = the single-core latency reported in ``export.json``).
    kernels : {"default", "builtin"}
        ``"default"`` (the runtime's default delegate, XNNPACK, where it applies) or ``"builtin"`` (TFLite's
        built-in kernels only, what a device without XNNPACK runs; see :data:`KERNELS`).

    Attributes
    ----------
    labels : tuple of str
        Class names in output order.
    sample_rate_hz : int
        Rate the model expects; files are resampled to it.
    clip_samples : int
        Samples in one model input (one window).
    window_hop_samples : int
        Default hop between windows over long recordings (the run's evaluation hop).
    metadata : ModelMetadata
        Everything embedded in the file (``metadata.info["config"]`` is the run's config).
    not_events : tuple of str
        The run's silence and other classes (its config's ``data.silence_label`` and ``data.other_label``) the
        model has, which are never :func:`window_events`; ``()`` for a model without them or without a config.

    Raises
    ------
    ConfigError
        The file is missing, not a whole TFLite model (empty, truncated or damaged, or another kind of
        file: see :func:`sound_tf.tflite_meta.read_metadata`), carries no sound_tf metadata, or takes log-mel
        features instead of a waveform (``model_int8_features.tflite`` is for microcontrollers: see
        ``features.json``).
    """

    def __init__(self, model_path: str | os.PathLike, *, num_threads: int = 1, kernels: str = "default"):
        from ai_edge_litert.interpreter import Interpreter  # the only runtime dependency beyond NumPy

        if not is_whole(num_threads) or num_threads < 1:
            raise ConfigError(f"num_threads must be an integer >= 1, got {num_threads!r}")
        resolver = op_resolver_type(kernels)  # a bad name is refused before the file is read
        self.kernels = kernels
        num_threads = int(num_threads)  # np.int64 from a config or an argparse type goes to LiteRT as int
        self.model_path = Path(model_path)
        self.metadata: ModelMetadata = read_metadata(self.model_path)
        info = self.metadata.info
        if info["input_kind"] != "waveform":
            raise ConfigError(f"{self.model_path}: {features_model_hint(self.model_path, info['input_kind'])}")
        self.labels: tuple[str, ...] = self.metadata.labels
        self.sample_rate_hz: int = self.metadata.sample_rate_hz
        self.clip_samples: int = self.metadata.clip_samples
        self.window_hop_samples: int = self.metadata.window_hop_samples
        self.variant: str = str(info["variant"])
        run_config = info.get("config")
        data = run_config.get("data") if isinstance(run_config, Mapping) else None
        data = data if isinstance(data, Mapping) else {}
        self.not_events: tuple[str, ...] = not_event_labels(self.labels, silence_label=data.get("silence_label"),
                                                            other_label=data.get("other_label"))
        self.num_threads = num_threads
        try:
            self._interpreter = Interpreter(model_path=str(self.model_path), num_threads=num_threads,
                                            experimental_op_resolver_type=resolver)
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"{self.model_path}: LiteRT cannot load this model ({exc})") from exc
        self._lock = threading.Lock()
        inputs = self._interpreter.get_input_details()
        if len(inputs) != 1:
            raise ConfigError(f"{self.model_path}: expected one input, got {len(inputs)}")
        self._input = inputs[0]
        self._outputs = self._named_outputs()
        signature = [int(d) for d in self._input["shape_signature"]]
        if len(signature) != 2 or signature[1] != self.clip_samples:
            raise ConfigError(f"{self.model_path}: input shape {signature} does not match "
                              f"[batch, clip_samples={self.clip_samples}] from the metadata")
        for name, detail in self._outputs.items():
            if int(detail["shape_signature"][-1]) != len(self.labels):
                raise ConfigError(f"{self.model_path}: output {name!r} has {int(detail['shape_signature'][-1])} "
                                  f"classes but the model carries {len(self.labels)} labels")
        self._batch = int(self._input["shape"][0])  # 1 for exported models (their batch is resizable)
        self._interpreter.allocate_tensors()

    def _named_outputs(self) -> dict[str, dict[str, Any]]:
        """Output details by signature name (``logits``, ``probabilities``)."""
        outputs = self._interpreter.get_output_details()
        signatures = self._interpreter.get_signature_list()
        if len(signatures) == 1:
            named = self._interpreter.get_signature_runner(next(iter(signatures))).get_output_details()
            by_index = {o["index"]: o for o in outputs}
            found = {name: by_index[d["index"]] for name, d in named.items() if name in (LOGITS, PROBABILITIES)}
            if PROBABILITIES in found:
                return found
        if len(outputs) == 1:
            return {PROBABILITIES: outputs[0]}
        raise ConfigError(f"{self.model_path}: expected a {PROBABILITIES!r} output (and optionally {LOGITS!r}), "
                          f"got outputs {[o['name'] for o in outputs]}")

    # -- inference --------------------------------------------------------------------------------------
    def _quantize_input(self, windows: np.ndarray) -> np.ndarray:
        dtype = self._input["dtype"]
        if dtype == np.float32:
            return windows
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(windows / scale) + zero_point, info.min, info.max).astype(dtype)

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Invoke on ``[batch, clip_samples]`` at the allocated batch size; the caller holds the lock."""
        self._interpreter.set_tensor(self._input["index"], self._quantize_input(batch))
        self._interpreter.invoke()
        return {name: _dequantize(self._interpreter.get_tensor(d["index"]), d) for name, d in self._outputs.items()}

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs for model inputs: ``{"probabilities": [n, classes], "logits": [n, classes]}`` float32.

        ``logits`` is missing for a model without that output. Windows go through the interpreter one
        at a time (its allocated batch, 1 for exported models): on a CPU that is faster than batches --
        for the esc50 model (5-s windows, one thread), 20 windows as one batch cost 1.6-2.3x more per
        window than 20 single invokes, and resizing the input reallocates every tensor.

        Parameters
        ----------
        windows : numpy.ndarray
            ``[n, clip_samples]`` finite float waveforms at :attr:`sample_rate_hz`, ``n >= 1``.
        """
        windows = check_windows(windows, clip_samples=self.clip_samples)  # [n, clip_samples] float32
        step = self._batch
        parts: list[dict[str, np.ndarray]] = []
        with self._lock:
            for start in range(0, windows.shape[0], step):
                chunk = np.ascontiguousarray(windows[start:start + step])  # [<= batch, clip_samples]
                rows = chunk.shape[0]
                check_finite_windows(chunk, first=start)  # per chunk: `windows` may be a view of overlapping ones
                if rows != step:  # a model with a fixed batch > 1: pad the tail
                    chunk = np.concatenate([chunk, np.zeros((step - rows, self.clip_samples), np.float32)])
                parts.append({name: value[:rows] for name, value in self._run(chunk).items()})
        return {name: np.concatenate([part[name] for part in parts]) for name in self._outputs}

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities ``[n, classes]`` float32 of windows ``[n, clip_samples]`` (see :meth:`predict`)."""
        return self.predict(windows)[PROBABILITIES]

    def aggregate(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Overall ``[classes]`` probabilities of one recording from :meth:`predict`'s outputs for its windows.

        ``softmax(mean logits)``; without a logits output, ``softmax(mean log-probability)``.
        """
        return aggregate_logits(window_logits(outputs))

    def classify(self, wave: np.ndarray, *, top_k: int = 3, hop_samples: int | None = None,
                 name: str = "waveform", sample_rate_hz: int | None = None,
                 min_probability: float = DEFAULT_MIN_PROBABILITY) -> dict[str, Any]:
        """Classify a recording of any length.

        Parameters
        ----------
        wave : numpy.ndarray
            ``[samples]`` float mono samples in [-1, 1], at :attr:`sample_rate_hz` unless ``sample_rate_hz``
            says otherwise.
        top_k : int
            How many classes the overall result lists.
        hop_samples : int, optional
            Hop between windows (default :attr:`window_hop_samples`); ``1 <= hop <= clip_samples``.
        name : str
            Used in error messages (the file name).
        sample_rate_hz : int, optional
            The rate ``wave`` was recorded at, when it is not the model's: the wave is resampled as files are
            (an array cannot tell its rate, so a 44.1 kHz buffer given without it is heard 2.76x slower by a
            16 kHz model). Windows, hops and ``duration_seconds`` count samples at the model's rate.
        min_probability : float
            In [0, 1]: the top probability a window needs to be part of an event (:func:`window_events`).

        Returns
        -------
        dict
            The field names of ``sound_tf.predict --json`` and the server: ``label`` and ``probability``
            (the overall top class), ``top_k`` (``top_k`` dicts of ``label`` and ``probability``),
            ``windows`` (one dict per window, see :func:`window_timeline`), ``events`` (runs of windows of one
            class, not :attr:`not_events`, at ``min_probability`` or more: :func:`window_events`), ``duration_seconds``,
            ``hop_seconds``, ``num_windows`` and ``aggregation``; ``warning`` too for a silent recording
            (:func:`sound_tf.audio.silent_note`: its classes say nothing of a sound).
        """
        k = check_top_k(top_k, len(self.labels))
        threshold = check_min_probability(min_probability)
        hop = self.window_hop_samples if hop_samples is None else hop_samples
        if not is_whole(hop) or not 1 <= hop <= self.clip_samples:
            raise ConfigError(f"hop_samples must be an integer in [1, clip_samples={self.clip_samples}], got {hop!r}")
        wave = check_wave(wave, name) if sample_rate_hz is None else resample_wave(
            wave, source_rate_hz=sample_rate_hz, sample_rate_hz=self.sample_rate_hz, name=name)
        windows = split_windows(wave.astype(np.float32, copy=False), clip_samples=self.clip_samples,
                                hop_samples=int(hop), copy=False)  # [windows, clip_samples], a view
        outputs = self.predict(windows)
        overall = self.aggregate(outputs)  # [classes]
        rate = float(self.sample_rate_hz)
        timeline = window_timeline(window_probabilities(outputs), self.labels, hop_samples=int(hop),
                                   clip_samples=self.clip_samples, total_samples=wave.shape[0],
                                   sample_rate_hz=self.sample_rate_hz, top_k=k)
        top = top_classes(overall, self.labels, k)
        result = {"label": top[0]["label"], "probability": top[0]["probability"], "top_k": top, "windows": timeline,
                  "events": window_events(timeline, min_probability=threshold, leave_out=self.not_events),
                  "num_windows": len(timeline), "duration_seconds": round(wave.shape[0] / rate, 6),
                  "hop_seconds": round(int(hop) / rate, 6),
                  "aggregation": "softmax of the mean logits over windows" if LOGITS in outputs
                  else "softmax of the mean log-probability over windows"}
        warning = silent_note(wave, self.sample_rate_hz)
        if warning is not None:
            result["warning"] = warning
        return result

    def classify_file(self, path: str | os.PathLike, *, top_k: int = 3, hop_samples: int | None = None,
                      min_probability: float = DEFAULT_MIN_PROBABILITY) -> dict[str, Any]:
        """Decode ``path`` (any format and rate soundfile reads), resample, and :meth:`classify` it.

        The result also holds ``file``. Raises :class:`~sound_tf.errors.AudioError` for unreadable files.
        """
        wave = load_audio(path, sample_rate_hz=self.sample_rate_hz)  # [samples]
        return {"file": str(path), **self.classify(wave, top_k=top_k, hop_samples=hop_samples, name=str(path),
                                                   min_probability=min_probability)}


# -- command line -----------------------------------------------------------------------------------------
def shown_label(label: str) -> str:
    """A class name as the plain-text output of this command and ``sound_tf.predict`` prints it: as it is, or in
    double quotes (JSON's escapes) when it is empty or holds a space, a comma or a quote. A folder ``dog bark`` printed
    ``dog bark 0.912, car 0.050``, and a label ``a, b`` one that reads as two; ``"dog bark" 0.912`` is one label."""
    plain = label != "" and not any(char.isspace() or char in ",\"'" for char in label)
    return label if plain else json.dumps(label, ensure_ascii=False)


def _format_result(result: dict[str, Any], *, min_probability: float = DEFAULT_MIN_PROBABILITY,
                   not_events: Sequence[str] = ()) -> str:
    top = ", ".join(f"{shown_label(t['label'])} {t['probability']:.3f}" for t in result["top_k"])
    lines = [f"{result['file']} ({result['duration_seconds']:.2f} s, {result['num_windows']} window"
             f"{'s' if result['num_windows'] != 1 else ''})"]
    if result["num_windows"] > 1:
        width = max(len(f"{w['end_seconds']:.2f}") for w in result["windows"])
        for w in result["windows"]:
            lines.append(f"  {w['start_seconds']:>{width}.2f}-{w['end_seconds']:.2f} s  {shown_label(w['label'])}  "
                         f"{w['probability']:.3f}")
        lines.append(f"  overall: {top}")
        lines += event_lines(result["events"], min_probability=min_probability, leave_out=not_events)
    else:
        lines.append(f"  {top}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sound_tf.lite",
        description="Classify audio files with an exported .tflite model (no TensorFlow needed). Files of "
                    "any length and rate are resampled to the model's rate; long files are cut into windows "
                    "and get a timeline of top labels, the overall result and the events (what was heard when).")
    parser.add_argument("model", help="a .tflite file written by python -m sound_tf.export, e.g. "
                                      "RUN/export/model_int8.tflite (or its float32, float16 or dynamic model; not "
                                      "model_int8_features.tflite, which takes features, not audio); its labels, "
                                      "rate and window sizes are inside it, so it is the one file a device needs")
    parser.add_argument("files", nargs="+", metavar="FILE_OR_FOLDER",
                        help="audio files (WAV, FLAC, OGG, MP3, ...) or folders of them (searched recursively); "
                             "files, not a stream: record a microphone to a file first")
    parser.add_argument("--hop-seconds", type=float, default=None,
                        help="hop between windows (default: the run's evaluation hop stored in the model)")
    parser.add_argument("--top-k", type=int, default=3,
                        help="classes listed in the overall result and, with --json, in each window's top_k "
                             "(default 3; the number of classes lists every class's probability in every window)")
    parser.add_argument("--min-probability", type=float, default=DEFAULT_MIN_PROBABILITY,
                        help=f"the top probability a window needs to be part of an event (default "
                             f"{DEFAULT_MIN_PROBABILITY}): the events, printed after a long recording's windows (and "
                             "as each result's events with --json), merge consecutive windows of one top class, not "
                             "the run's silence or other class (_silence_, _unknown_), each at this probability or "
                             "more, into one 'start-end s: label (peak p)'")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    parser.add_argument("--quiet", action="store_true",
                        help="none of the TFLite runtime's own log lines: the results, notes and errors only")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns 0, or 1 when a file failed, 2 on a usage or model error, as the other commands
    do (:func:`sound_tf.errors.run_cli`): 141 when the reader of stdout went away (``| head``), and 130, 143 or 129
    with one line on stderr when Ctrl-C, SIGTERM or SIGHUP stops it (the results printed so far stay printed; with
    ``--json``, the document of the files classified so far is printed then, with ``stopped``, the signal's name,
    and ``files_left``, how many files were not classified)."""
    args = _parser().parse_args(argv)
    with native_logs_held(args.quiet):  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        return run_cli(lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    """The command's work: a bad flag or model is a ``SoundTFError`` (2, from :func:`run_cli`); a file that cannot
    be classified is reported and the others classified (1). With ``--json``, a stop anywhere in it prints the
    document of the results so far (the model's fields ``null`` while it loads, ``files_left`` ``null`` while the
    files are listed)."""
    classifier: LiteClassifier | None = None
    files: list[tuple[str, str | None]] | None = None
    results: list[dict[str, Any]] = []
    failed = 0

    def print_json(**stop: Any) -> None:
        known = classifier is not None
        print(json.dumps({"model": str(args.model), "variant": classifier.variant if known else None,
                          "labels": list(classifier.labels) if known else None,
                          "sample_rate_hz": classifier.sample_rate_hz if known else None, "results": results,
                          **stop}, indent=2))

    try:
        if args.threads < 1:
            raise ConfigError(f"--threads must be an integer >= 1, got {args.threads}")
        min_probability = check_min_probability(args.min_probability, name="--min-probability")
        classifier = LiteClassifier(args.model, num_threads=args.threads)
        hop_samples = None
        if args.hop_seconds is not None:
            rate = classifier.sample_rate_hz
            samples = args.hop_seconds * rate if math.isfinite(args.hop_seconds) else 0.0
            hop_samples = int(round(samples))
            # the range the message states, checked before rounding (1e-9: 1/rate itself passes)
            if not 1 - 1e-9 <= samples <= classifier.clip_samples + 1e-9:
                raise ConfigError(f"--hop-seconds must be from one sample (1/{rate} s) to the clip length "
                                  f"({classifier.clip_samples / rate:g} s), got {args.hop_seconds}")
        check_top_k(args.top_k, len(classifier.labels), name="--top-k")
        left_out: list[str] = []
        files = expand_audio_inputs(args.files, left_out=left_out)
        if left_out:
            print(left_out_note(left_out), file=sys.stderr)
        for path, problem in files:
            try:
                if problem is not None:
                    raise AudioError(path, problem)
                result = classifier.classify_file(path, top_k=args.top_k, hop_samples=hop_samples,
                                                  min_probability=min_probability)
            except SoundTFError as exc:
                failed += 1
                results.append({"file": str(path), "error": getattr(exc, "reason", str(exc))})  # as predict --json
                if not args.json:
                    print(f"error: {exc}", file=sys.stderr)
                continue
            results.append(result)
            if not args.json:
                print(_format_result(result, min_probability=min_probability, not_events=classifier.not_events),
                      flush=True)
                if "warning" in result:  # after its result, as predict prints it
                    print(f"warning: {path}: {result['warning']}", file=sys.stderr)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: the text printed so far stays; JSON is one document
        if args.json:  # so the results so far, saying the command was stopped and how many files it did not get to
            try:  # (none known before the files are listed: null)
                print_json(stopped=signal.Signals(stop_signal(exc)).name,
                           files_left=None if files is None else len(files) - len(results))
            except BrokenPipeError:  # the reader went away too: 141, as run_cli gives it
                raise
            except (OSError, ValueError):  # SIGHUP: the terminal may be gone; the stop goes on
                pass
        raise
    if args.json:
        print_json()
    elif failed and len(files) > 1:  # the count after the results, as predict gives it: the errors scroll away
        print("error: no file could be classified" if failed == len(files) else
              f"error: {failed} of {counted(len(files), 'files')} could not be classified", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
