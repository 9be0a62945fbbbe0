"""Export a trained run for deployment: SavedModel, TFLite variants, parity checks and metadata.

``python -m sound_tf.export RUN_DIR [--profile NAME|PATH] [--out DIR] [--allow-degraded]`` writes a
self-describing bundle (default ``RUN_DIR/export/``):

``saved_model/``
    ``serving_default``: ``waveform`` float32 ``[batch, clip_samples]`` at the run's rate ->
    ``probabilities`` ``[batch, classes]``, ``logits`` ``[batch, classes]`` and ``labels``
    ``[batch, classes]`` (the class names, one row per example, so row-format serving works too);
    ``clip_samples`` is fixed: pad a shorter recording, cut a longer one into windows. The same function
    is the endpoint ``serve``; the signature ``metadata`` (no input) gives ``labels``, ``sample_rate_hz``,
    ``clip_samples`` and ``window_hop_samples``. Loads with ``tf.saved_model.load`` or
    ``keras.layers.TFSMLayer`` (its default endpoint); needs no sound_tf code.
``model_float32.tflite``, ``model_float16.tflite``, ``model_dynamic.tflite``, ``model_int8.tflite``
    Waveform ``[batch, clip_samples]`` (resizable batch) -> ``probabilities`` and ``logits``
    ``[batch, classes]`` (signature outputs; logits are what windows of a long recording average).
    ``float16`` stores float16 weights; ``dynamic`` int8 network weights with float activations;
    ``int8`` is full-integer quantised from the normalisation on, calibrated on windows of *training*
    clips only. In both, the log-mel frontend (framing, DFT as matrix products, power, mel projection,
    log) computes in float32, its constant matrices stored as float16: a power spectrum spans more than 100 dB and an
    int8 waveform only 48 dB, so 8 bits there would erase quiet sounds. ``export.json`` lists every
    artefact's ops with the dtype they compute in.
``model_int8_features.tflite`` + ``features.json``
    Fully integer network for microcontrollers that compute the features themselves: int8 input, the
    normalised log-mel ``[1, frames, mel_bins]``; int8 outputs ``probabilities`` and ``logits``.
    ``features.json`` holds every number needed to compute the input identically (framing, window,
    FFT size, the mel filterbank's rule and weights, log offset, normalisation mean and variance,
    input/output quantisation).
``model_int8.cc`` + ``model_int8.h``, ``model_int8_features.cc`` + ``model_int8_features.h``
    With the profile's ``c_source`` (``micro``'s): each int8 model as C++ source for TensorFlow Lite Micro, the
    flatbuffer alone in an ``alignas(16)`` array, and a header with the labels, rate, window, input shape and
    input/output quantisation (:mod:`sound_tf.c_source`).
``labels.txt``, ``config.json``, ``export.json``, ``analysis/*.txt``
    Labels, the run's config, the measurements below and the TFLite analyzer's view of each graph.
``noise.json``
    Of a run that mixed in the recordings of ``augment.noise_dir``: which ones (the run's own file, copied;
    ``config.json`` names only the folder).

Every ``.tflite`` file also carries its labels, sample rate, clip and hop sizes (and, for the features
model, ``features.json``) as an appended archive of associated files (:mod:`sound_tf.tflite_meta`),
so one file is enough on a device (``python -m sound_tf.lite``).

Parity: the same function scores every artefact (Keras, SavedModel, each TFLite file) on the run's
test split -- the clip's windows (:func:`sound_tf.audio.split_windows`, the evaluation's hop), logits
and probabilities per window, the softmax of the mean logits per clip (the evaluation's rule, see
:func:`sound_tf.lite.aggregate_logits`) -- and records its accuracy, its top-1 agreement with Keras,
its size, a lower bound of the RAM its activations take (TFLite files: ``activation_bytes_peak``, the peak of
the live non-constant tensors, :func:`sound_tf.tflite_meta.activation_memory`) and its median single-clip
latency (batch 1; one thread for TFLite, and for TensorFlow when
run from the command line). TFLite files run with the runtime's default delegate (XNNPACK) taking the ops it
supports; ``float16``, ``dynamic``, ``int8`` and ``int8_features`` are measured again on TFLite's built-in
kernels alone (``builtin_kernels`` in ``export.json``), which a device without XNNPACK runs and which
round quantised arithmetic differently. Each artefact's pass reads the test clips again from the run's
decode cache, one clip's windows in memory at a time (:class:`CachedWindows`). Export fails when an
artefact, on either kernel set, misses the profile's thresholds unless ``--allow-degraded`` (``export.json``
then records ``passed: false`` and ``allow_degraded: true``, and the server serves the bundle with a warning).

Top-1 agreement with Keras needs no label: where the test split has too few clips to hold an artefact to its
threshold (one clip weighs more than it allows: under 34 for 97%, under 200 for 99.5%), it is measured on the
validation clips too, then the training clips int8 is not calibrated on, then those it is, until there are
enough (:func:`agreement_splits`; training clips, which Keras is surer of, come last). Accuracy and its drop
stay the test split's. A check whose clips are still too few -- every clip of a small run, or the accuracy
drop on fewer than 100 test clips -- is held to one clip: one clip that differs (or one test clip lost, net)
passes, two fail. The log says so, and ``export.json`` records each check's splits and what it was held to
(``checks``) and each artefact's clips that differ per split (``agreement_by_split``).

The bundle is built in a new folder beside ``--out`` and moved into place only once it is complete, replacing
any previous bundle there as a whole: a failed export (or Ctrl-C) leaves the previous bundle (or nothing), and
no stale file of another run or profile survives a re-export. An existing ``--out`` that holds files export
does not write is refused, never replaced. An export holds the run folder's lock and its bundle folder's
(:func:`export_claims`): one whose run is still training, or whose ``--out`` another export is writing, is refused.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import glob
import io
import json
import os
import re
import secrets
import shutil
import socket
import sys
import tempfile
import time
import tomllib
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

if __name__ == "__main__":  # started by `train --export`: end with it, from before TensorFlow's start-up on
    from sound_tf.locks import end_with_parent

    end_with_parent()

import numpy as np
import soundfile as sf

from . import __version__
from .audio import DecodeCache, cache_dir_of, count_windows, split_windows
from .c_source import MicroModel, c_source_note, missing_ops_warning, write_c_source
from .config import CONFIG_FILENAME, NOISE_FILENAME, REPO_ROOT, Config, find_repo_toml, load_run_config
from .datasets import read_split_csv
from .errors import AudioError, ConfigError, SoundTFError, and_list, counted, is_whole, run_cli
from .lite import LOGITS, PROBABILITIES, LiteClassifier, aggregate_logits, op_resolver_type, window_probabilities
from .locks import claim_file, claim_folder, holds, inherit_lock, process_alive, release_file, release_folder
from .quiet import native_logs_held, quiet_tensorflow
from .run_state import export_pending, read_state, write_state
from .tflite_meta import FEATURES_FILE, activation_memory, embed_metadata, failed_artefacts

__all__ = ["ARTEFACTS", "ExportError", "ExportProfile", "ExportResult", "check_request", "check_thresholds",
           "export_claims", "export_run", "feature_spec", "load_profile", "load_run_model", "main", "tflite_op_summary"]

REPO_PROFILES = REPO_ROOT / "export"
ARTEFACTS = ("saved_model", "float32", "float16", "dynamic", "int8", "int8_features")
FLOAT_ARTEFACTS = frozenset({"saved_model", "float32", "float16"})
#: The artefacts calibrated on training windows (:func:`representative_windows`).
CALIBRATED_ARTEFACTS = frozenset({"int8", "int8_features"})
#: The int8 artefacts a profile's ``c_source`` writes as C++ source for TensorFlow Lite Micro.
C_SOURCE_ARTEFACTS = ("int8", "int8_features")
#: TFLite artefacts measured a second time on TFLite's built-in kernels alone (``builtin_kernels`` in export.json):
#: the first pass runs the runtime's default delegate (XNNPACK), which a device without it (many Android and
#: embedded builds) does not. float32 is left out: its kernel sets differ by float rounding only.
BUILTIN_KERNEL_ARTEFACTS = ("float16", "dynamic", "int8", "int8_features")
BUILTIN_KERNELS = "builtin_kernels"
TFLITE_FILES = {"float32": "model_float32.tflite", "float16": "model_float16.tflite",
                "dynamic": "model_dynamic.tflite", "int8": "model_int8.tflite",
                "int8_features": "model_int8_features.tflite"}
EXPORT_JSON = "export.json"
LABELS_FILE = "labels.txt"
NOISE_FILE = NOISE_FILENAME  # the run's, as sound_tf.trainer writes it
ANALYSIS_DIR = "analysis"
SAVED_MODEL_DIR = "saved_model"
# Everything a bundle folder may hold: an existing --out with anything else is not replaced.
BUNDLE_NAMES = frozenset({CONFIG_FILENAME, LABELS_FILE, NOISE_FILE, EXPORT_JSON, FEATURES_FILE, ANALYSIS_DIR,
                          SAVED_MODEL_DIR})
_BUNDLE_MODEL_NAME = re.compile(r"model_[A-Za-z0-9_]+\.(?:tflite|cc|h)")  # .cc, .h: c_source's
PRECISION_NOTES = {
    "float32": "all float32",
    "float16": "weights and frontend constants stored as float16, computed in float32",
    "dynamic": "network weights >= 1024 values stored as int8 (hybrid kernels); the log-mel frontend computes in "
               "float32 from float16-stored constants",
    "int8": "log-mel frontend (framing, window, DFT, power, mel projection, log) in float32 from float16-stored "
            "constants; from the normalisation on int8 (activations and weights), dequantised outputs",
    "int8_features": "fully integer: int8 input (normalised log-mel), weights, activations and outputs; latency "
                     "is the network alone (features computed outside the model)",
}
#: What each TFLite artefact's ``activation_bytes_peak`` in ``export.json`` is (see
#: :func:`sound_tf.tflite_meta.activation_memory`); the log gives it as ``RAM >= ... KB`` beside the size, after the
#: ``flatbuffer ... KB`` a device's flash holds (the file less its appended archive: ``flatbuffer_bytes``).
ACTIVATION_MEMORY_NOTE = (
    "activation_bytes_peak: an estimate of the RAM a TFLite model's activations need (TFLite Micro's tensor arena), "
    "the largest sum, over its operators in execution order, of the bytes of the non-constant tensors alive at an "
    "operator (from the operator that writes a tensor, or the start for the input, to the last one that reads it, or "
    "the end for the outputs; batch 1); activation_peak_op is that operator's index and name. Weights (constant "
    "tensors) are flash, not counted. A lower bound: a planner's arena adds alignment and fragmentation (TFLite "
    "Micro's greedy planner), and kernels' scratch buffers and the interpreter's own structures come on top")
RAM_COLUMN = len(f"flatbuffer {0:7.1f} KB  RAM >= {0:7.1f} KB  ")  # the log's column of both (blank for the SavedModel)
_WARMUP_RUNS = 3
FEW_CALIBRATION_WINDOWS = 100  # TensorFlow's post-training quantisation guide asks for ~100-500 samples


@functools.cache
def _frontend_name() -> re.Pattern[str]:
    """What the TFLite tensor names of the frontend contain: the layer's name as a path component ("…/log_mel_1/…").
    Made when first asked for: ``models`` imports TensorFlow, which this module imports only when it needs it."""
    from . import models

    return re.compile(rf"(^|/){re.escape(models.LOG_MEL_LAYER_NAME)}(_\d+)?/")

Log = Callable[[str], None]


class ExportError(SoundTFError):
    """An artefact could not be built, or it disagrees with the Keras model beyond the thresholds."""


# -- profile ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportProfile:
    """What to build and how strictly to check it (``export/<name>.toml``).

    Attributes
    ----------
    name : str
    artefacts : tuple of str
        A subset of :data:`ARTEFACTS`; the Keras model is always measured as the reference.
    representative_windows : int
        Training-split windows used to calibrate the int8 models (and no test or validation clip).
    latency_runs : int
        Timed single-clip runs per artefact (after warm-up); ``export.json`` keeps the median.
    float_min_agreement : float
        Minimum top-1 agreement with Keras of ``saved_model``, ``float32``, ``float16``: on the test clips, and
        more splits when they are too few to hold an artefact to it (see :func:`check_thresholds`).
    quantized_min_agreement : float
        The same for ``dynamic``, ``int8`` and ``int8_features``.
    quantized_max_accuracy_drop_points : float
        Maximum test accuracy lost by a quantised artefact against Keras, in percentage points (one test clip
        where one clip weighs more).
    c_source : bool
        Also write each int8 artefact (:data:`C_SOURCE_ARTEFACTS`) as C++ source for TensorFlow Lite Micro,
        ``model_int8.cc`` and ``model_int8.h`` beside ``model_int8.tflite`` (:mod:`sound_tf.c_source`); a profile
        that asks for it must export one of them.
    """

    name: str = "default"
    artefacts: tuple[str, ...] = ARTEFACTS
    representative_windows: int = 300
    latency_runs: int = 50
    float_min_agreement: float = 0.995
    quantized_min_agreement: float = 0.97
    quantized_max_accuracy_drop_points: float = 1.0
    c_source: bool = False

    def __post_init__(self) -> None:
        unknown = [a for a in self.artefacts if a not in ARTEFACTS]
        if unknown or not self.artefacts or len(set(self.artefacts)) != len(self.artefacts):
            named = f" ({', '.join(map(repr, unknown))} is not one)" if unknown else ""
            raise ConfigError(f"profile {self.name!r}: artefacts must be distinct names from {list(ARTEFACTS)}, "
                              f"got {list(self.artefacts)}{named}")
        for key in ("representative_windows", "latency_runs"):
            value = getattr(self, key)
            if not is_whole(value) or value < 1:
                raise ConfigError(f"profile {self.name!r}: {key} must be an integer >= 1, got {value!r}")
            object.__setattr__(self, key, int(value))  # a numpy integer: to_dict() goes to JSON
        for key in ("float_min_agreement", "quantized_min_agreement"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"profile {self.name!r}: thresholds.{key} must be a fraction in [0, 1], "
                                  f"got {value!r}")
        drop = self.quantized_max_accuracy_drop_points
        if not isinstance(drop, (int, float)) or isinstance(drop, bool) or not 0.0 <= drop <= 100.0:
            raise ConfigError(f"profile {self.name!r}: thresholds.quantized_max_accuracy_drop_points must be in "
                              f"[0, 100] percentage points, got {drop!r}")
        if not isinstance(self.c_source, (bool, np.bool_)):  # "false" would count as true
            raise ConfigError(f"profile {self.name!r}: c_source must be true or false, got {self.c_source!r}")
        object.__setattr__(self, "c_source", bool(self.c_source))  # np.True_: to_dict() goes to JSON
        if self.c_source and not set(C_SOURCE_ARTEFACTS) & set(self.artefacts):
            raise ConfigError(f"profile {self.name!r}: c_source writes the C source of {and_list(C_SOURCE_ARTEFACTS)}, "
                              f"and artefacts {list(self.artefacts)} holds none of them; add one or drop c_source")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "profile") -> "ExportProfile":
        """Build from TOML-shaped data: top-level keys plus a ``[thresholds]`` table."""
        data = dict(data)
        data.pop("description", None)
        thresholds = data.pop("thresholds", {})
        if not isinstance(thresholds, Mapping):
            raise ConfigError(f"{source}: [thresholds] must be a table, got {thresholds!r}")
        top = {"name", "artefacts", "representative_windows", "latency_runs", "c_source"}
        limits = {"float_min_agreement", "quantized_min_agreement", "quantized_max_accuracy_drop_points"}
        unknown = sorted(set(data) - top) + [f"thresholds.{k}" for k in sorted(set(thresholds) - limits)]
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; known: {sorted(top)} and "
                              f"thresholds.{{{', '.join(sorted(limits))}}}")
        if "artefacts" in data:
            if not isinstance(data["artefacts"], (list, tuple)):
                raise ConfigError(f"{source}: artefacts must be a list, got {data['artefacts']!r}")
            data["artefacts"] = tuple(str(a) for a in data["artefacts"])
        try:
            return cls(**data, **thresholds)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "artefacts": list(self.artefacts)}


def load_profile(profile: str | Path | ExportProfile | None) -> ExportProfile:
    """A profile from a TOML path, a bare name in the repository's ``export/`` folder, TOML-shaped data
    (``{"artefacts": [...], "thresholds": {...}}``), or the defaults."""
    if profile is None or isinstance(profile, ExportProfile):
        return profile or ExportProfile()
    if isinstance(profile, Mapping):  # was "expected str, bytes or os.PathLike object, not dict"
        return ExportProfile.from_dict({"name": "custom", **profile}, source="profile")
    if not isinstance(profile, (str, os.PathLike)):
        raise ConfigError(f"profile must be an ExportProfile, a profile name or TOML path, or a dict of its keys, "
                          f"got {type(profile).__name__} {profile!r:.80}")
    path = find_repo_toml(profile, REPO_PROFILES, "export profile")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # UnicodeDecodeError: e.g. an audio file
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    return ExportProfile.from_dict({"name": path.stem, **data}, source=str(path))


# -- the run's model and data ---------------------------------------------------------------------------------
def load_run_model(run_dir: str | Path) -> tuple[Config, keras.Model]:
    """The run's config (with labels) and its ``model.keras``, checked against each other (see
    :func:`sound_tf.evaluation.load_run`)."""
    from .evaluation import load_run

    return load_run(run_dir, compile=False)  # for conversion: no optimizer state


class CachedWindows(Sequence[np.ndarray]):
    """Each clip's windows ``[windows, clip_samples]``, read again from its decode-cache WAV whenever taken.

    The windows of a whole split at once are more than its audio (float32, short clips padded to a
    window, each sample of a long one held about twice at the default half-clip hop): about 300 MB for
    one UrbanSound8K fold (837 clips of 88 200 samples), several GB for a larger test split. Export
    scores every artefact clip by clip, so it holds one clip's windows at a time and reads the cache
    again for each artefact (16-bit WAVs already at the model's rate: cheap next to inference). A clip
    is read as evaluation reads it: 16-bit PCM / 32768 in float32, as ``tf.audio.decode_wav``, then
    :func:`sound_tf.audio.split_windows`.

    Parameters
    ----------
    paths : sequence of Path
        One cache file per clip, in clip order.
    clip_samples, hop_samples : int
        The run's window and hop.

    Attributes
    ----------
    counts : list of int
        Windows per clip, from each file's header (no samples read).
    """

    def __init__(self, paths: Sequence[Path], *, clip_samples: int, hop_samples: int):
        self.paths = [Path(p) for p in paths]
        self.clip_samples, self.hop_samples = clip_samples, hop_samples
        self.counts = [count_windows(self._frames(path), clip_samples=clip_samples, hop_samples=hop_samples)
                       for path in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        path = self.paths[index]  # IndexError ends iteration
        try:
            wave, _ = sf.read(path, dtype="float32")  # [samples]: 16-bit PCM / 32768, as tf.audio.decode_wav
        except (sf.LibsndfileError, OSError) as exc:
            raise self._unreadable(path, exc) from None
        windows = split_windows(wave, clip_samples=self.clip_samples, hop_samples=self.hop_samples)
        expected = self.counts[index]
        if len(windows) != expected:
            raise AudioError(path, f"decode-cache file changed while export read it: {len(windows)} windows now, "
                                   f"{expected} when export began; run export again")
        return windows  # [windows, clip_samples]

    def __iter__(self) -> Iterator[np.ndarray]:
        for index in range(len(self)):
            yield self[index]

    def take(self, indices: Sequence[int]) -> "CachedWindows":
        """The clips at ``indices``, in that order (their window counts kept: no file is read)."""
        taken = CachedWindows([], clip_samples=self.clip_samples, hop_samples=self.hop_samples)
        taken.paths = [self.paths[i] for i in indices]
        taken.counts = [self.counts[i] for i in indices]
        return taken

    def _frames(self, path: Path) -> int:
        try:
            return sf.info(str(path)).frames
        except (sf.LibsndfileError, OSError) as exc:
            raise self._unreadable(path, exc) from None

    @staticmethod
    def _unreadable(path: Path, exc: Exception) -> AudioError:
        if not path.exists():
            return AudioError(path, "decode-cache file disappeared while export read it (the cache was cleaned or "
                                    "deleted meanwhile?); run export again to decode it again")
        return AudioError(path, f"decode-cache file cannot be read ({exc}); delete it and run export again")


@dataclass
class Clips:
    """Clips of one split, decoded as evaluation reads them (the run's 16-bit cache files).

    From :func:`read_clips`, ``windows`` is a :class:`CachedWindows`: iterating it reads one clip at a
    time. A list of arrays works too (tests).
    """

    sources: list[str]
    label_indices: np.ndarray  # [clips]
    windows: Sequence[np.ndarray]  # per clip [windows, clip_samples]

    @property
    def window_counts(self) -> list[int]:
        """Windows per clip (read from the cache files' headers, not their samples)."""
        if isinstance(self.windows, CachedWindows):
            return list(self.windows.counts)
        return [len(w) for w in self.windows]

    @property
    def num_windows(self) -> int:
        return sum(self.window_counts)

    def take(self, indices: Sequence[int]) -> "Clips":
        """The clips at ``indices``, in that order; no clip is read."""
        indices = list(indices)
        windows = (self.windows.take(indices) if isinstance(self.windows, CachedWindows)
                   else [self.windows[i] for i in indices])
        return Clips(sources=[self.sources[i] for i in indices],
                     label_indices=self.label_indices[np.asarray(indices, np.int64)], windows=windows)


def read_clips(run_dir: Path, config: Config, split: str, *, limit: int | None = None,
               seed: int | None = None) -> Clips:
    """The clips of ``split`` in the run's ``split.csv``, cached (strictly) and counted; their windows are
    read when taken (:class:`CachedWindows`).

    ``seed`` shuffles the clips first (for a representative sample); ``limit`` keeps that many.
    """
    split_path = run_dir / "split.csv"
    if not split_path.is_file():
        raise ConfigError(f"{split_path}: missing; export needs the run's split to measure and calibrate")
    examples = read_split_csv(split_path, run_file=True)[split]
    if not examples:
        raise ConfigError(f"{split_path}: the {split!r} split is empty")
    if seed is not None:
        examples = [examples[i] for i in np.random.default_rng(seed).permutation(len(examples))]
    examples = examples[:limit] if limit is not None else examples
    index = {label: i for i, label in enumerate(config.labels)}
    unknown = sorted({ex.label for ex in examples} - set(index))
    if unknown:
        raise ConfigError(f"{split_path}: labels {unknown} are not among the model's {list(config.labels)}")
    cache_dir = cache_dir_of(config.data.cache_dir)
    cached = DecodeCache(cache_dir, sample_rate_hz=config.audio.sample_rate_hz).build(
        [ex.path for ex in examples], strict=True).cached
    windows = CachedWindows([cached[ex.path] for ex in examples], clip_samples=config.audio.clip_samples,
                            hop_samples=config.audio.window_hop_samples)
    return Clips(sources=[ex.path for ex in examples],
                 label_indices=np.asarray([index[ex.label] for ex in examples], np.int64), windows=windows)


def few_windows_warning(found: int, asked: int) -> str | None:
    """A caution when int8 calibrates on fewer training windows than the profile asks for and fewer than
    :data:`FEW_CALIBRATION_WINDOWS`: each tensor's int8 range is the range those windows reached, so a
    louder test clip is clipped. Before, 9 windows of a tiny dataset calibrated int8 without a word. A
    profile that asks for few windows on purpose gets no caution."""
    if found >= min(asked, FEW_CALIBRATION_WINDOWS):
        return None
    return (f"warning: int8 calibrates on only {found} training window{'s' if found != 1 else ''} (the profile "
            f"asks for {asked}; {FEW_CALIBRATION_WINDOWS} or more is usual): each tensor's int8 range is what "
            "those windows reached, so louder or different audio may be clipped; the agreement checks below "
            "measure what that cost, and more training clips (or longer ones) give int8 more to calibrate on")


def fewer_windows_note(found: int, asked: int, clips: int, profile: str) -> str | None:
    """A line when int8 calibrates on fewer training windows than ``profile`` asks for (``asked``), but not so few
    that :func:`few_windows_warning` cautions: how many it used, and why (the ``clips`` training clips hold no more;
    :func:`read_clips` reads up to ``asked`` of them, each one window or more). The micro profile asks for 1000, and
    a small dataset's 283 calibrated int8 without a word; export.json gives both numbers (``representative``'s
    ``windows`` and the profile's ``representative_windows``)."""
    if found >= asked or found < min(asked, FEW_CALIBRATION_WINDOWS):
        return None
    return (f"int8 calibrates on {found} training windows, fewer than the {asked} the {profile} profile asks for "
            f"(representative_windows): that is every window of the training split's {counted(clips, 'clips')}")


def representative_windows(clips: Clips, count: int) -> np.ndarray:
    """Up to ``count`` windows, taking each clip's windows in turn (``[n, clip_samples]``); reads only the
    clips it takes from."""
    chosen: list[np.ndarray] = []
    for windows in clips.windows:
        chosen.extend(windows[: count - len(chosen)])
        if len(chosen) >= count:
            break
    return np.stack(chosen).astype(np.float32)


# -- building the artefacts -------------------------------------------------------------------------------------
def _archive(model: keras.Model, fn: Callable, spec: tf.TensorSpec, path: Path, *,
             extra: dict[str, Callable[[], dict[str, tf.Tensor]]] | None = None) -> Path:
    """Write ``fn`` as the ``serving_default`` signature of a SavedModel tracking ``model``'s variables.

    With ``extra`` (name -> function of no input), ``fn`` is the endpoint ``serve`` (what
    ``keras.layers.TFSMLayer`` calls by default), ``serving_default`` its alias, and each extra function
    a signature of its own.
    """
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve" if extra else "serving_default", fn, input_signature=[spec])
    for name, extra_fn in (extra or {}).items():
        archive.add_endpoint(name, extra_fn, input_signature=[])
    archive.write_out(str(path), verbose=False)
    return path


def save_serving_model(model: keras.Model, config: Config, path: str | Path) -> Path:
    """Write the bundle's SavedModel: waveform -> probabilities, logits and label strings."""
    import tensorflow as tf

    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    labels = tf.constant(list(config.labels))  # [classes]

    def serve(waveform: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = model(waveform, training=False)  # [batch, classes]
        batch_labels = tf.broadcast_to(labels[tf.newaxis], tf.shape(logits))  # [batch, classes]
        return {"probabilities": tf.nn.softmax(logits), "logits": logits, "labels": batch_labels}

    def metadata() -> dict[str, tf.Tensor]:  # what a caller needs to prepare the input
        return {"labels": labels, "sample_rate_hz": tf.constant(config.audio.sample_rate_hz, tf.int64),
                "clip_samples": tf.constant(config.audio.clip_samples, tf.int64),
                "window_hop_samples": tf.constant(config.audio.window_hop_samples, tf.int64)}

    spec = tf.TensorSpec([None, config.audio.clip_samples], tf.float32, name="waveform")
    return _archive(model, serve, spec, path, extra={"metadata": metadata})


def frontend_model(model: keras.Model) -> keras.Model:
    """Waveform ``[batch, samples]`` -> normalised log-mel ``[batch, frames, mel_bins]`` (the model's own layers)."""
    import keras

    from . import models

    return keras.Model(model.input, model.get_layer(models.NORMALIZATION_LAYER_NAME).output, name="features")


def network_model(model: keras.Model) -> keras.Model:
    """Normalised log-mel ``[batch, frames, mel_bins]`` -> logits: the model after its normalisation."""
    import keras

    from . import models

    return keras.Model(model.get_layer(models.NORMALIZATION_LAYER_NAME).output, model.output, name="network")


def tflite_source(model: keras.Model, config: Config, path: str | Path) -> Path:
    """The SavedModel the waveform TFLite variants are converted from: waveform -> logits, probabilities.

    The model's frontend is switched to the DFT as matrix products (:func:`sound_tf.frontend.for_tflite`,
    same outputs), which TFLite runs several times faster than its RFFT2D kernel. (Converting from a
    SavedModel freezes the Keras 3 variables; ``from_concrete_functions`` leaves them as resource
    variables the int8 calibrator cannot read.)
    """
    import tensorflow as tf

    from . import frontend

    lite_model = frontend.for_tflite(model)
    spec = tf.TensorSpec([None, config.audio.clip_samples], tf.float32, name="waveform")
    return _archive(lite_model, lambda waveform: _outputs(lite_model(waveform, training=False)), spec, Path(path))


def _outputs(logits: tf.Tensor) -> dict[str, tf.Tensor]:
    import tensorflow as tf

    return {LOGITS: logits, PROBABILITIES: tf.nn.softmax(logits)}  # [batch, classes] each


def _frontend_nodes(model_bytes: bytes) -> list[str]:
    """Output tensor names of the ops of the log-mel frontend in a (calibrated float) TFLite model."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model_bytes,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tensors = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [tensors[i] for op in interpreter._get_ops_details() for i in op["outputs"]
            if _frontend_name().search(tensors[i])]


@contextlib.contextmanager
def _calibrating() -> Iterator[None]:
    """Around an int8 conversion: TensorFlow's calibrator runs ``tf.lite.Interpreter``, which warns that it is
    deprecated in favour of LiteRT. sound_tf runs every model with ai-edge-litert; the warning is not
    the user's to act on, so it is left out (other warnings pass)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated",
                                category=UserWarning)
        yield


def convert_waveform_model(source: Path, variant: str, *, representative: np.ndarray | None = None,
                           float32: bytes | None = None) -> bytes:
    """TFLite FlatBuffer of waveform ``[batch, clip_samples]`` -> logits and probabilities for one variant.

    Parameters
    ----------
    source : Path
        From :func:`tflite_source`.
    variant : str
        ``float32``, ``float16``, ``dynamic`` or ``int8``.
    representative : numpy.ndarray, optional
        ``[n, clip_samples]`` training windows; required for ``int8``, whose frontend ops are kept
        float (see the module docstring) through the quantization debugger's node deny-list.
    float32 : bytes, optional
        The float32 conversion, if already made (``dynamic`` copies the frontend constants from it).
    """
    import tensorflow as tf

    from . import models

    converter = tf.lite.TFLiteConverter.from_saved_model(str(source))
    if variant == "float32":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    if variant == "dynamic":
        dynamic = float_frontend_weights(converter.convert(), float32 or convert_waveform_model(source, "float32"))
        return float16_frontend_constants(dynamic)
    if variant != "int8":
        raise ConfigError(f"unknown waveform TFLite variant {variant!r}")
    if representative is None or len(representative) == 0:
        raise ExportError("int8 conversion needs representative training windows")

    def dataset():
        for window in representative:
            yield [window[np.newaxis]]  # [1, clip_samples]

    converter.representative_dataset = dataset
    with _calibrating():
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=dataset)
        nodes = _frontend_nodes(debugger.calibrated_model)
        if not nodes:
            raise ExportError(f"found no ops of the {models.LOG_MEL_LAYER_NAME!r} layer in the converted graph; "
                              f"cannot keep the frontend in float32")
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes)
        quantized = debugger.get_nondebug_quantized_model()
    return float16_frontend_constants(quantized)


def float_frontend_weights(dynamic: bytes, float32: bytes) -> bytes:
    """Give the frontend ops of a dynamic-range model back their float32 constants.

    Dynamic-range quantisation stores every large constant as int8 and runs "hybrid" kernels that
    quantise their *input* to 8 bits on the fly. For the frontend's DFT and mel matrices that input is
    a waveform or a power spectrum: 8 bits (48 dB) erase every band quieter than the loudest one by
    more than that (on the test model, 40% window agreement with Keras). The converter has no deny-list
    for this mode, so the matching float32 constants are copied back from the float conversion of the
    same graph (ops matched by output tensor name), leaving int8 weights in the network only.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(dynamic))
    reference = flatbuffer_utils.read_model_from_bytearray(bytearray(float32))
    graph, ref_graph = model.subgraphs[0], reference.subgraphs[0]

    def name(g: Any, index: int) -> str:
        return g.tensors[index].name.decode()

    ref_ops = {name(ref_graph, op.outputs[0]): op for op in ref_graph.operators}
    restored = 0
    for op in graph.operators:
        out_name = name(graph, op.outputs[0])
        if not _frontend_name().search(out_name):
            continue
        for position, index in enumerate(op.inputs):
            tensor = graph.tensors[index] if index >= 0 else None
            if tensor is None or tensor.type != schema.TensorType.INT8 or model.buffers[tensor.buffer].data is None:
                continue
            ref_op = ref_ops.get(out_name)
            ref_tensor = ref_graph.tensors[ref_op.inputs[position]] if ref_op is not None else None
            if ref_tensor is None or list(ref_tensor.shape) != list(tensor.shape) \
                    or ref_tensor.type != schema.TensorType.FLOAT32:
                raise ExportError(f"dynamic: cannot match the int8 constant {tensor.name.decode()!r} of frontend op "
                                  f"{out_name!r} to a float32 constant of the float model")
            tensor.type, tensor.quantization = schema.TensorType.FLOAT32, None
            model.buffers[tensor.buffer].data = reference.buffers[ref_tensor.buffer].data
            restored += 1
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if restored else dynamic


def float16_frontend_constants(data: bytes, *, min_elements: int = 1024) -> bytes:
    """Store the frontend's large float32 constants as float16, expanded to float32 when the model loads.

    The frontend of an int8 or dynamic model computes in float32, and its DFT and mel matrices would
    otherwise be most of the file (about 280 KB of 350 KB for 5-s clips at 22.05 kHz). Each constant
    of at least ``min_elements`` values becomes a float16 tensor feeding a ``DEQUANTIZE`` op -- the
    pattern TFLite's own float16 conversion writes, which the runtime evaluates once at load -- so the
    arithmetic stays float32 and only the stored coefficients are rounded (relative error <= 2^-11,
    the precision of the float16 artefact).
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    codes = [i for i, c in enumerate(model.operatorCodes)
             if c.builtinCode == schema.BuiltinOperator.DEQUANTIZE and c.version >= 3]
    if codes:
        dequantize = codes[0]
    else:
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
        code.version = 3  # version 3 reads float16
        model.operatorCodes.append(code)
        dequantize = len(model.operatorCodes) - 1
    replaced: dict[int, int] = {}  # float32 constant -> float32 output of its DEQUANTIZE
    new_ops = []
    for op in graph.operators:
        if not _frontend_name().search(graph.tensors[op.outputs[0]].name.decode()):
            continue
        for position, index in enumerate(op.inputs):
            tensor = graph.tensors[index] if index >= 0 else None
            buffer = model.buffers[tensor.buffer].data if tensor is not None else None
            if tensor is None or tensor.type != schema.TensorType.FLOAT32 or buffer is None \
                    or len(buffer) < 4 * min_elements:
                continue
            if index not in replaced:
                values = np.frombuffer(bytes(buffer), dtype="<f4")
                model.buffers[tensor.buffer].data = np.frombuffer(values.astype("<f2").tobytes(), np.uint8)
                tensor.type = schema.TensorType.FLOAT16
                expanded = schema.TensorT()
                expanded.shape, expanded.type, expanded.buffer = list(tensor.shape), schema.TensorType.FLOAT32, 0
                expanded.name = tensor.name + b"/float32"
                expanded.shapeSignature, expanded.hasRank = tensor.shapeSignature, tensor.hasRank
                graph.tensors.append(expanded)
                replaced[index] = len(graph.tensors) - 1
                dequantize_op = schema.OperatorT()
                dequantize_op.opcodeIndex, dequantize_op.inputs = dequantize, [index]
                dequantize_op.outputs = [replaced[index]]
                new_ops.append(dequantize_op)
            op.inputs[position] = replaced[index]
    if not new_ops:
        return data
    graph.operators = new_ops + list(graph.operators)  # constants first, as the float16 converter does
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def convert_features_model(model: keras.Model, config: Config, work: Path, representative: np.ndarray) -> bytes:
    """Fully integer TFLite FlatBuffer for microcontrollers.

    Input int8 normalised log-mel ``[1, frames, mel_bins]``; outputs int8 ``logits`` and
    ``probabilities`` ``[1, classes]``. ``representative`` holds float features ``[n, frames, mel_bins]``
    of training windows.
    """
    import tensorflow as tf

    network = network_model(model)
    spec = tf.TensorSpec([1, *config.feature_shape], tf.float32, name="log_mel")
    source = _archive(network, lambda log_mel: _outputs(network(log_mel, training=False)), spec,
                      work / "features_source")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(source))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8

    def dataset():
        for features in representative:
            yield [features[np.newaxis]]  # [1, frames, mel_bins]

    converter.representative_dataset = dataset
    with _calibrating():
        return converter.convert()


def feature_spec(model: keras.Model, config: Config) -> dict[str, Any]:
    """Everything needed to compute the features model's input without TensorFlow (``features.json``)."""
    import keras

    from . import frontend, models

    log_mel = model.get_layer(models.LOG_MEL_LAYER_NAME)
    params = {key: log_mel.get_config()[key] for key in
              ("sample_rate_hz", "frame_length_samples", "hop_length_samples", "fft_length", "num_mel_bins",
               "fmin_hz", "fmax_hz", "log_offset")}
    mel = frontend.slaney_mel_matrix(sample_rate_hz=params["sample_rate_hz"], fft_length=params["fft_length"],
                                     num_mel_bins=params["num_mel_bins"], fmin_hz=params["fmin_hz"],
                                     fmax_hz=params["fmax_hz"])  # [fft_bins, mel_bins]
    bands = []
    for band in mel.T:  # [fft_bins]
        nonzero = np.flatnonzero(band)
        first = int(nonzero[0]) if nonzero.size else 0
        last = int(nonzero[-1]) + 1 if nonzero.size else 0
        bands.append({"first_bin": first, "weights": [float(w) for w in band[first:last]]})
    norm = model.get_layer(models.NORMALIZATION_LAYER_NAME)
    mean = np.asarray(keras.ops.convert_to_numpy(norm.mean), np.float64).reshape(-1)
    variance = np.asarray(keras.ops.convert_to_numpy(norm.variance), np.float64).reshape(-1)
    samples, frame, hop = config.audio.clip_samples, params["frame_length_samples"], params["hop_length_samples"]
    return {
        "description": "Input of model_int8_features.tflite: the normalised log-mel features of one clip, "
                       "computed as below, then quantised with input.scale / input.zero_point.",
        "sample_rate_hz": params["sample_rate_hz"],
        "clip_samples": samples,
        "window_hop_samples": config.audio.window_hop_samples,
        "labels": list(config.labels),
        "framing": {
            "frame_length_samples": frame, "hop_length_samples": hop, "num_frames": log_mel.num_frames(samples),
            "rule": "frame t holds samples [t * hop, t * hop + frame_length) of the clip (float in [-1, 1]: 16-bit "
                    "PCM / 32768, as the model was trained on; a clip is clip_samples at sample_rate_hz, a shorter "
                    "recording zero-padded at its end, a longer one cut into clips every window_hop_samples, the "
                    "last zero-padded); no centre or end padding of the frames, so num_frames = 1 + (clip_samples "
                    "- frame_length) // hop",
        },
        "window": {"type": "periodic_hann", "rule": "w[n] = 0.5 - 0.5 * cos(2 * pi * n / frame_length), "
                                                    "n = 0 .. frame_length - 1; the frame is multiplied by w"},
        "spectrum": {"fft_length": params["fft_length"], "fft_bins": params["fft_length"] // 2 + 1,
                     "rule": "zero-pad the windowed frame at the end to fft_length, real DFT, power = re^2 + im^2 "
                             "for bins k = 0 .. fft_length / 2 (bin k is k * sample_rate_hz / fft_length Hz)"},
        "mel": {
            "num_mel_bins": params["num_mel_bins"], "fmin_hz": params["fmin_hz"], "fmax_hz": params["fmax_hz"],
            "scale": "slaney", "normalisation": "slaney",
            "rule": "edges: num_mel_bins + 2 points equally spaced in Slaney mel between fmin_hz and fmax_hz, "
                    "where mel(f) = f / (200 / 3) below 1000 Hz and 15 + ln(f / 1000) / (ln(6.4) / 27) above; "
                    "band m is the triangle rising from edge m to edge m+1 and falling to edge m+2 (in Hz, "
                    "evaluated at each bin's frequency, clipped at 0), scaled by 2 / (edge[m+2] - edge[m]). "
                    "mel_power[m] = sum_k power[k] * weight[m][k]; same as librosa.filters.mel(htk=False, "
                    "norm='slaney')",
            "bands": bands,
            "bands_rule": "bands[m].weights[j] is the weight of FFT bin bands[m].first_bin + j; other bins weigh 0",
        },
        "log": {"offset": params["log_offset"], "rule": "log_mel = ln(mel_power + offset) (natural log)"},
        "normalisation": {"mean": mean.tolist(), "variance": variance.tolist(),
                          "epsilon": float(keras.backend.epsilon()),
                          "rule": "x[t, m] = (log_mel[t, m] - mean[m]) / max(sqrt(variance[m]), epsilon)"},
        "layout": "input tensor [1, num_frames, num_mel_bins], frames in time order",
    }


# -- measuring ------------------------------------------------------------------------------------------------
class _Runner:
    """One artefact behind one interface: ``predict([n, clip_samples]) -> {"logits", "probabilities"}``."""

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def time_one(self, window: np.ndarray) -> float:
        started = time.perf_counter()
        self.predict(window)
        return time.perf_counter() - started


class _KerasRunner(_Runner):
    def __init__(self, model: keras.Model):
        import tensorflow as tf

        self.model = model
        self._infer = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        logits = self._infer(tf.constant(windows)).numpy()  # [n, classes]
        return {LOGITS: logits, PROBABILITIES: tf.nn.softmax(logits).numpy()}

    def time_one(self, window: np.ndarray) -> float:  # the plain eager call a user writes: model(x)
        started = time.perf_counter()
        self.model(window, training=False)
        return time.perf_counter() - started


class _KerasPredictRunner(_KerasRunner):
    def time_one(self, window: np.ndarray) -> float:
        started = time.perf_counter()
        self.model.predict(window, verbose=0)
        return time.perf_counter() - started


class _SavedModelRunner(_Runner):
    def __init__(self, path: Path):
        import tensorflow as tf

        self._loaded = tf.saved_model.load(str(path))
        self._signature = self._loaded.signatures["serving_default"]

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        outputs = self._signature(waveform=tf.constant(windows))
        return {LOGITS: outputs[LOGITS].numpy(), PROBABILITIES: outputs[PROBABILITIES].numpy()}


class _LiteRunner(_Runner):
    def __init__(self, path: Path, *, kernels: str = "default"):
        self.classifier = LiteClassifier(path, num_threads=1, kernels=kernels)

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        return self.classifier.predict(windows)


class _FeaturesRunner(_Runner):
    """The int8 features model; features come from the Keras model's own frontend (float)."""

    def __init__(self, path: Path, features: keras.Model, *, kernels: str = "default"):
        import tensorflow as tf
        from ai_edge_litert.interpreter import Interpreter

        self._features = tf.function(lambda x: features(x, training=False), reduce_retracing=True)
        self._interpreter = Interpreter(model_path=str(path), num_threads=1,
                                        experimental_op_resolver_type=op_resolver_type(kernels))
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        by_index = {d["index"]: d for d in self._interpreter.get_output_details()}
        self._outputs = {name: by_index[d["index"]] for name, d in
                         self._interpreter.get_signature_runner().get_output_details().items()}

    def run_features(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """``[n, frames, mel_bins]`` float features -> outputs ``[n, classes]``, one invoke per row."""
        scale, zero_point = self._input["quantization"]
        rows: dict[str, list[np.ndarray]] = {name: [] for name in self._outputs}
        for row in features:
            q = np.clip(np.round(row / scale) + zero_point, -128, 127).astype(np.int8)[np.newaxis]
            self._interpreter.set_tensor(self._input["index"], q)
            self._interpreter.invoke()
            for name, detail in self._outputs.items():
                out_scale, out_zero = detail["quantization"]
                value = self._interpreter.get_tensor(detail["index"])[0]
                rows[name].append((value.astype(np.float32) - out_zero) * out_scale)
        return {name: np.stack(values) for name, values in rows.items()}

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        return self.run_features(self._features(tf.constant(windows)).numpy())

    def time_one(self, window: np.ndarray) -> float:  # the network alone, as on a microcontroller
        import tensorflow as tf

        features = self._features(tf.constant(window)).numpy()
        started = time.perf_counter()
        self.run_features(features)
        return time.perf_counter() - started


def _tflite_runner(variant: str, path: Path, features: keras.Model | None, *, kernels: str = "default") -> _Runner:
    """The runner of one TFLite artefact on one kernel set (:data:`sound_tf.lite.KERNELS`)."""
    if variant == "int8_features":
        return _FeaturesRunner(path, features, kernels=kernels)
    return _LiteRunner(path, kernels=kernels)


def score_clips(runner: _Runner, clips: Clips) -> tuple[np.ndarray, np.ndarray]:
    """The same scoring for every artefact.

    Returns ``(clip probabilities [clips, classes], window probabilities [windows, classes])``; a clip's
    probabilities are the softmax of its windows' mean logits, as evaluation scores it, and a window's the
    softmax of its own logits, as lite and the server report it (an int8 model's own probabilities output
    moves in steps of 1/256, whose ties made its argmax disagree with Keras where the logits did not).
    """
    per_clip, per_window = [], []
    for windows in clips.windows:
        outputs = runner.predict(windows)  # [windows, classes] each
        per_window.append(window_probabilities(outputs))
        per_clip.append(aggregate_logits(outputs[LOGITS]))
    return np.stack(per_clip), np.concatenate(per_window)


def median_latency_ms(runner: _Runner, window: np.ndarray, runs: int) -> float:
    """Median wall time of ``runs`` single-clip predictions (after warm-up), in milliseconds."""
    for _ in range(_WARMUP_RUNS):
        runner.time_one(window)
    return 1000.0 * float(np.median([runner.time_one(window) for _ in range(runs)]))


def _size_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def tflite_op_summary(model_bytes: bytes) -> dict[str, Any]:
    """Ops of a TFLite graph grouped by the dtype they compute in (their first output's dtype).

    Returns ``{"ops": {dtype: {op: count}}, "float_ops": [...], "int8_ops": [...], "hybrid_ops": [...],
    "input": {...}, "outputs": {name: {...}}}``. ``QUANTIZE``/``DEQUANTIZE`` appear under their output dtype;
    ``hybrid_ops`` compute in float from int8 weights (dynamic-range quantisation);
    ``float16_constants`` counts constants stored as float16 (expanded to float32 at load). Each output gives its
    ``output_index``, its place among the model's outputs: TFLite Micro reads no signature and finds an output by
    its place (``interpreter.output(output_index)``).
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model_bytes,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops: dict[str, dict[str, int]] = {}
    hybrid: set[str] = set()
    for op in interpreter._get_ops_details():
        dtype = np.dtype(tensors[op["outputs"][0]]["dtype"]).name
        ops.setdefault(dtype, {}).setdefault(op["op_name"], 0)
        ops[dtype][op["op_name"]] += 1
        inputs = {np.dtype(tensors[i]["dtype"]).name for i in op["inputs"] if i >= 0}
        if dtype == "float32" and "int8" in inputs and op["op_name"] != "DEQUANTIZE":
            hybrid.add(op["op_name"])  # int8 weights, float activations (dynamic-range quantisation)

    def describe(detail: Mapping[str, Any]) -> dict[str, Any]:
        scale, zero_point = detail["quantization"]
        return {"name": detail["name"], "shape": [int(d) for d in detail["shape_signature"]],
                "dtype": np.dtype(detail["dtype"]).name,
                **({"scale": float(scale), "zero_point": int(zero_point)} if scale else {})}

    floats = sorted({name for dtype in ("float32", "complex64", "float16") for name in ops.get(dtype, {})})
    named = interpreter.get_signature_runner().get_output_details()  # signature name -> tensor
    order = [detail["index"] for detail in interpreter.get_output_details()]  # tensor of each output, in place order
    return {"ops": ops, "float_ops": floats, "int8_ops": sorted(ops.get("int8", {})), "hybrid_ops": sorted(hybrid),
            "float16_constants": sum(1 for t in tensors.values() if np.dtype(t["dtype"]) == np.float16),
            "input": describe(interpreter.get_input_details()[0]),
            "outputs": {name: {**describe(detail), "output_index": order.index(detail["index"])}
                        for name, detail in sorted(named.items())}}


def _check_frontend_float(model_bytes: bytes, variant: str) -> None:
    """Raise unless every op of the log-mel frontend computes in float (int8 would erase quiet sounds)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=model_bytes,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    bad = sorted({op["op_name"] for op in interpreter._get_ops_details()
                  if _frontend_name().search(tensors[op["outputs"][0]]["name"])
                  and any(np.dtype(tensors[i]["dtype"]) == np.int8 for i in [*op["inputs"], *op["outputs"]] if i >= 0)})
    if bad:
        raise ExportError(f"{variant}: frontend ops {bad} compute with int8 tensors; the log-mel frontend "
                          f"must stay float32")


def _analyzer_text(model_bytes: bytes) -> str:
    import tensorflow as tf

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        tf.lite.experimental.Analyzer.analyze(model_content=model_bytes)
    return buffer.getvalue()


# -- checking ---------------------------------------------------------------------------------------------------
#: Where top-1 agreement with Keras is measured, in this order, when the test split alone has too few clips to hold
#: an artefact to its threshold: agreement needs no label. ``train`` holds the training clips int8 is not calibrated
#: on (all of them when no int8 artefact is built), ``calibration`` those whose windows calibrate it.
AGREEMENT_SPLITS = ("test", "val", "train", "calibration")
AGREEMENT_SPLIT_NAMES = {"test": "test", "val": "validation", "train": "training clip{s} int8 is not calibrated on",
                         "calibration": "training clip{s} int8 is calibrated on"}


def _split_name(split: str, calibrated: bool) -> str:
    """A split's name in the log; without an int8 artefact nothing is calibrated, and ``train`` is every training
    clip."""
    return AGREEMENT_SPLIT_NAMES[split] if calibrated or split != "train" else "training clip{s}"


def too_few_clips(clips: int, allowed_points: float) -> bool:
    """Whether one clip of ``clips`` weighs more than the ``allowed_points`` percentage points a threshold allows,
    so that the clips cannot hold an artefact to it (one clip that differs already misses it). A threshold that
    allows nothing (0 points, agreement 100%) is held as it is by any number of clips."""
    return clips > 0 and allowed_points > 0 and 100.0 / clips > allowed_points


def clips_to_resolve(allowed_points: float) -> int:
    """The fewest clips that can hold an artefact to a threshold allowing ``allowed_points`` (:func:`too_few_clips`):
    34 for 97% agreement (3 points), 100 for a 1-point accuracy drop, 200 for 99.5% agreement."""
    if allowed_points <= 0:
        return 1
    count = max(1, int(np.ceil(100.0 / allowed_points)))
    while too_few_clips(count, allowed_points):  # the same floating-point comparison as the checks
        count += 1
    while count > 1 and not too_few_clips(count - 1, allowed_points):
        count -= 1
    return count


def agreement_points(minimum: float) -> float:
    """Percentage points of agreement a ``minimum`` agreement allows to be lost."""
    return 100 * (1 - minimum)


def agreement_splits(sizes: Mapping[str, int], minimum: float) -> tuple[str, ...]:
    """The splits on which top-1 agreement with Keras is held to ``minimum``: the test split, then each of
    :data:`AGREEMENT_SPLITS` in turn while the clips taken are too few to hold an artefact to it
    (:func:`too_few_clips`) and a split with clips is left. ``sizes`` maps those splits to clip counts."""
    allowed = agreement_points(minimum)
    chosen, clips = ["test"], int(sizes.get("test", 0))
    for split in AGREEMENT_SPLITS[1:]:
        if not too_few_clips(clips, allowed):
            break
        if sizes.get(split, 0):
            chosen.append(split)
            clips += int(sizes[split])
    return tuple(chosen)


def check_plan(sizes: Mapping[str, int], profile: ExportProfile) -> dict[str, dict[str, Any]]:
    """Which clips each check of ``profile`` is measured on and what it is held to (``export.json``'s ``checks``).

    ``sizes`` maps :data:`AGREEMENT_SPLITS` to clip counts. Top-1 agreement with Keras needs no label: it is
    measured on the splits :func:`agreement_splits` takes for its threshold, and held to it (``"held_to":
    "threshold"``) unless even those clips are too few, then to one clip (``"one clip"``). The accuracy drop needs
    labels the model never saw: the test split alone, held to one clip where one test clip weighs more than the
    threshold. A check is listed when the profile builds an artefact it applies to.
    """
    plan: dict[str, dict[str, Any]] = {}
    floats = [a for a in profile.artefacts if a in FLOAT_ARTEFACTS]
    quantized = [a for a in profile.artefacts if a not in FLOAT_ARTEFACTS]
    for kind, names, minimum in (("float", floats, profile.float_min_agreement),
                                 ("quantized", quantized, profile.quantized_min_agreement)):
        if not names:
            continue
        splits = agreement_splits(sizes, minimum)
        clips = sum(int(sizes.get(split, 0)) for split in splits)
        allowed = agreement_points(minimum)
        plan[f"{kind}_agreement"] = {
            "artefacts": names, "setting": f"thresholds.{kind}_min_agreement", "threshold": minimum,
            "allowed_points": round(allowed, 9), "clips_needed": clips_to_resolve(allowed),
            "splits": {split: int(sizes.get(split, 0)) for split in splits}, "clips": clips,
            "held_to": "one clip" if too_few_clips(clips, allowed) else "threshold"}
    if quantized:
        limit, clips = profile.quantized_max_accuracy_drop_points, int(sizes.get("test", 0))
        plan["quantized_accuracy_drop"] = {
            "artefacts": quantized, "setting": "thresholds.quantized_max_accuracy_drop_points", "threshold": limit,
            "allowed_points": limit, "clips_needed": clips_to_resolve(limit), "splits": {"test": clips},
            "clips": clips, "held_to": "one clip" if too_few_clips(clips, limit) else "threshold"}
    return plan


def _threshold_text(check: Mapping[str, Any]) -> str:
    """``97.00%`` for an agreement check, ``1 point`` for the accuracy drop."""
    if check["setting"].endswith("_agreement"):
        return f"{100 * check['threshold']:.2f}%"
    return f"{check['threshold']:g} point{'' if check['threshold'] == 1 else 's'}"


def check_plan_lines(plan: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The log lines that say where a check is measured on more than the test split or held to one clip (none
    when every check is held to its threshold on the test split, as on a large one)."""
    lines = []
    calibrated = any(a in CALIBRATED_ARTEFACTS for check in plan.values() for a in check["artefacts"])
    for key, check in plan.items():
        splits, names = check["splits"], and_list(check["artefacts"])
        test = int(splits.get("test", 0))
        agreement = key.endswith("_agreement")
        if check["held_to"] != "one clip" and len(splits) == 1:
            continue
        needs = (f"{_threshold_text(check)} ({check['setting']}) needs {check['clips_needed']} clips, where one of "
                 f"{test} test clips is {100 / max(test, 1):.2f} points")
        if not agreement:
            line = f"accuracy drop of {names} is measured on the {test} test clips: {needs}"
        elif len(splits) > 1:  # why more than the test split: its clips alone are too few
            taken = ", ".join(f"{count} {_split_name(split, calibrated).format(s='' if count == 1 else 's')}"
                              for split, count in splits.items())
            line = (f"agreement with Keras of {names} is measured on {check['clips']} clips ({taken}; agreement "
                    f"needs no label), as {_threshold_text(check)} ({check['setting']}) needs "
                    f"{check['clips_needed']} clips and one of the {test} test clips alone is "
                    f"{100 / max(test, 1):.2f} points")
        else:
            line = f"agreement with Keras of {names} is measured on the {test} test clips, all the run has: {needs}"
        if check["held_to"] == "one clip":
            held = "one clip that differs passes" if agreement else "one test clip lost passes"
            line += (f"; with no more clips in the run, {held} and two fail" if agreement and len(splits) > 1
                     else f", so {held} and two fail")
        lines.append(line)
    return lines


def _by_split(entry: Mapping[str, Any]) -> str:
    """``1 of 12 test, 0 of 12 val, 2 of 44 calibration`` from an entry's ``agreement_by_split``."""
    return ", ".join(f"{int(counts['disagreements'])} of {int(counts['clips'])} {split}"
                     for split, counts in entry.get("agreement_by_split", {}).items())


def _agreement_failure(name: str, artefact: str, entry: Mapping[str, Any], minimum: float, setting: str) -> str | None:
    """The failure message of an entry's agreement, or ``None`` when it passes.

    Held to ``minimum`` when its clips can hold it there; on clips too few for that (all the run has: export
    takes more splits until there are enough, :func:`agreement_splits`), to one clip: one clip that differs
    passes, two fail."""
    agreement = float(entry["agreement"])
    clips = int(entry.get("agreement_clips", entry.get("clips")) or 0)
    pooled = len(entry.get("agreement_by_split", {})) > 1
    which = "clips" if pooled else "test clips"
    allowed = agreement_points(minimum)
    differ = entry.get("disagreements")
    if differ is None and clips:
        differ = round((1 - agreement) * clips)
    detail = f" ({_by_split(entry)})" if pooled else ""
    if differ is not None and too_few_clips(clips, allowed):  # the one-clip floor
        if int(differ) <= 1:
            return None
        return (f"{name}: top-1 agreement with Keras {100 * agreement:.2f}%, {int(differ)} of {clips} {which} differ"
                f"{detail}: more than the one clip it is held to, as {clips} {which}, all the run has, cannot hold "
                f"{artefact} to {100 * minimum:.2f}% (thresholds.{setting}: one clip is {100 / clips:.2f} points, more "
                f"than the {allowed:.2f} allowed; {clips_to_resolve(allowed)} clips would)")
    if agreement >= minimum:
        return None
    message = f"{name}: top-1 agreement with Keras {100 * agreement:.2f}% < {100 * minimum:.2f}% (thresholds.{setting})"
    if differ is not None and "disagreements" in entry:
        message += f"; {int(differ)} of {clips} {which} differ{detail}"
    return message


def _drop_failure(name: str, artefact: str, entry: Mapping[str, Any], limit: float) -> str | None:
    """The failure message of an entry's test accuracy drop, or ``None`` when it passes.

    Held to ``limit`` points when the test split can hold it there, counted in whole clips (1 of 100 is 1 point, within
    a 1-point limit, whatever the rounding of the two accuracies); where one test clip weighs more, to one clip: one
    clip lost (net of the clips gained) passes, two fail."""
    drop = float(entry["accuracy_drop_points"])
    clips = int(entry.get("clips") or 0)
    below = f"{name}: test accuracy {100 * entry['accuracy']:.2f}% is {drop:.2f} points below Keras"
    lost = round(drop * clips / 100)  # a whole number of clips: no rounding of the points decides it
    if clips and abs(drop * clips / 100 - lost) < 1e-6:
        drop = 100 * lost / clips  # 1 clip of 100 is 1 point, not 0.9 - 0.89 = 1.0000000000000009 points
    if too_few_clips(clips, limit):  # the one-clip floor
        if lost <= 1:
            return None
        return (f"{below}, {lost} of {clips} test clips: more than the one clip it is held to, as {clips} test "
                f"clips cannot hold {artefact} to {limit:g} point{'' if limit == 1 else 's'} "
                f"(thresholds.quantized_max_accuracy_drop_points: one clip is {100 / clips:.2f} points; "
                f"{clips_to_resolve(limit)} clips would)")
    if drop > limit:
        return f"{below} (> {limit:g}, thresholds.quantized_max_accuracy_drop_points)"
    return None


def check_thresholds(artefacts: Mapping[str, Mapping[str, Any]], profile: ExportProfile) -> list[str]:
    """Failure messages of every artefact that misses the profile's thresholds (empty when all pass).

    ``artefacts`` maps names to entries with ``agreement`` (fraction) and ``accuracy_drop_points``, and
    optionally counts: ``clips`` (test clips: the accuracy's), ``disagreements`` and ``agreement_clips`` (the
    clips the agreement was measured on, the test clips when absent) and ``agreement_by_split`` ({split:
    {"clips", "disagreements"}}). With counts a message says how many clips differ, and a check whose clips are
    too few to hold it to its threshold (one clip weighs more than the threshold allows, :func:`too_few_clips`)
    is held to one clip instead: one clip that differs from Keras (or one test clip lost, net) passes, two fail.
    Export measures agreement on more splits before it comes to that (:func:`agreement_splits`), so clips too few
    for agreement are all the run has. An entry's ``builtin_kernels`` (the same artefact on TFLite's built-in
    kernels alone) is held to the same thresholds, as ``"<name> (built-in kernels)"``: a device without XNNPACK
    runs those kernels.
    """
    failures = []
    checked = []  # (name in messages, entry, artefact)
    for name, entry in artefacts.items():
        if name == "keras":
            continue
        checked.append((name, entry, name))
        if BUILTIN_KERNELS in entry:
            checked.append((f"{name} (built-in kernels)", entry[BUILTIN_KERNELS], name))
    for name, entry, artefact in checked:
        is_float = artefact in FLOAT_ARTEFACTS
        minimum = profile.float_min_agreement if is_float else profile.quantized_min_agreement
        setting = "float_min_agreement" if is_float else "quantized_min_agreement"
        failures.append(_agreement_failure(name, artefact, entry, minimum, setting))
        if not is_float:
            failures.append(_drop_failure(name, artefact, entry, profile.quantized_max_accuracy_drop_points))
    return [failure for failure in failures if failure is not None]


# -- the stage ----------------------------------------------------------------------------------------------------
@dataclass
class ExportResult:
    """What :func:`export_run` wrote."""

    out_dir: Path
    report: dict[str, Any]
    failures: list[str] = field(default_factory=list)

    def path(self, artefact: str) -> Path:
        """The file or folder of an artefact (``"saved_model"``, ``"int8"``, ...)."""
        return self.out_dir / self.report["artefacts"][artefact]["file"]


def micro_model(config: Config, variant: str, summary: Mapping[str, Any]) -> MicroModel:
    """What the C header of an int8 artefact says (:mod:`sound_tf.c_source`): the run's labels, rate, window and hop
    from ``config``, the input shape of one window from ``config`` too, and the input's and outputs' types and
    quantisation from the model itself (``summary``: :func:`tflite_op_summary`, as ``features.json`` has them), and
    the ops its graph uses (``summary``'s ``ops``, every dtype's)."""
    features = variant == "int8_features"
    shape = (1, *config.feature_shape) if features else (1, config.audio.clip_samples)
    what = ("the normalised log-mel features of one window (computed as features.json says)" if features
            else "one window of the waveform")
    return MicroModel(labels=list(config.labels), sample_rate_hz=config.audio.sample_rate_hz,
                      clip_samples=config.audio.clip_samples, window_hop_samples=config.audio.window_hop_samples,
                      input_shape=shape, input=summary["input"], outputs=summary["outputs"],
                      description=f"{TFLITE_FILES[variant]}: input {what}; {PRECISION_NOTES[variant]}.",
                      ops=sorted({op for by_dtype in summary["ops"].values() for op in by_dtype}))


def _model_info(config: Config, variant: str, input_kind: str) -> dict[str, Any]:
    return {"sample_rate_hz": config.audio.sample_rate_hz, "clip_samples": config.audio.clip_samples,
            "clip_seconds": config.audio.clip_seconds, "window_hop_samples": config.audio.window_hop_samples,
            "input_kind": input_kind, "variant": variant, "outputs": [LOGITS, PROBABILITIES],
            "sound_tf_version": __version__, "config_fingerprint": config.fingerprint(), "config": config.to_dict()}


def export_run(run_dir: str | Path, *, profile: str | Path | ExportProfile | None = None,
               out_dir: str | Path | None = None, allow_degraded: bool = False, log: Log = print) -> ExportResult:
    """Build, measure and check the deployment bundle of a trained run.

    Parameters
    ----------
    run_dir : path
        A finished run folder (``config.json``, ``model.keras``, ``split.csv``).
    profile : ExportProfile, path, name or dict, optional
        Artefacts, representative sample size and thresholds (default: :class:`ExportProfile` defaults,
        the same as ``export/default.toml``).
    out_dir : path, optional
        Bundle folder (default ``run_dir/export``). It is built beside this folder and moved into place
        when complete, replacing a previous bundle as a whole; on any failure the folder is left as it was.
    allow_degraded : bool
        Keep going when an artefact misses a threshold (the failures are listed in ``export.json``).
    log : callable
        Receives one-line progress messages.

    Returns
    -------
    ExportResult

    Raises
    ------
    ExportError
        An artefact misses a threshold (unless ``allow_degraded``) or cannot be converted, or the
        finished bundle cannot be moved into place.
    ConfigError
        The run folder or profile is invalid, or ``out_dir`` exists and is not an export bundle.
    """
    if not isinstance(allow_degraded, (bool, np.bool_)):  # "no" or "false" would count as true
        raise ConfigError(f"allow_degraded must be True or False, got {allow_degraded!r}")
    run_dir, profile, out = check_request(run_dir, profile, out_dir)  # before the long work
    with export_claims(run_dir, out):
        config, model = load_run_model(run_dir)
        _remove_abandoned_stages(out, log=log)
        stage = _new_sibling(out, "building")
        try:
            report = _write_bundle(run_dir, config, model, profile, stage, allow_degraded=allow_degraded, log=log)
            failures = report["failures"]
            if failures and not allow_degraded:
                kept = f"the bundle in {out} is unchanged" if out.exists() else f"nothing was written to {out}"
                raise ExportError(f"export failed the parity thresholds ({kept}; {_missed_and_met(report)}; pass "
                                  f"--allow-degraded to write the bundle with every artefact, export.json listing "
                                  f"these failures):\n  " + "\n  ".join(failures))
            _check_replaceable(out, run_dir=run_dir)  # again: the folder may have changed meanwhile
            _move_into_place(stage, out, log=log)
        finally:
            shutil.rmtree(stage, ignore_errors=True)  # a failed export leaves no half bundle behind
        record_run_export(run_dir, profile, out)  # only now: a failed or stopped export is still pending
    for failure in failures:
        log(f"export: DEGRADED {failure}")
    sources = c_source_note(report["artefacts"])  # train --export's last line words it the same
    log(f"export: wrote {out}" + (f" ({sources})" if sources else ""))
    return ExportResult(out_dir=out, report=report, failures=failures)


def _missed_and_met(report: Mapping[str, Any]) -> str:
    """Which artefacts of ``report`` missed the thresholds and which met them, for the refusal: a run whose int8
    features model alone missed them (2 of 60 test clips) was told to pass --allow-degraded, without a word that
    its SavedModel, float32, float16, dynamic and int8 models, the ones ``lite`` and the server run, had passed."""
    names = [name for name in report["artefacts"] if name != "keras"]
    missed = failed_artefacts(names, report["failures"])
    met = [name for name in names if name not in missed]
    said = f"{and_list(missed)} missed them" + (f", {and_list(met)} met them" if met else "")
    if "int8_features" in missed and len(missed) == 1:
        said += (" (int8_features is the microcontroller's model, on log-mel features it computes itself; lite and the "
                 "server run the others)")
    return said


def check_request(run_dir: str | Path, profile: str | Path | ExportProfile | None,
                  out_dir: str | Path | None) -> tuple[Path, ExportProfile, Path]:
    """The run folder, profile and bundle folder :func:`export_run` works with, checked without TensorFlow: the
    profile must load and ``out_dir`` (default ``run_dir/export``) be one export may replace
    (:func:`_check_replaceable`). ``python -m sound_tf.export`` calls it before TensorFlow's start-up, so a mistyped
    ``--profile`` or a wrong ``--out`` is refused at once, and :func:`export_run` calls it again.

    Raises
    ------
    ConfigError
        The profile does not load, or ``out_dir`` is a file, holds the run, or holds files export does not write.
    """
    run_dir = Path(run_dir)
    profile = load_profile(profile)
    out = Path(out_dir) if out_dir is not None else run_dir / "export"
    if out.is_symlink() or out.name in ("", ".", ".."):
        out = out.resolve()  # the folder itself is replaced: work beside the real one
    _check_replaceable(out, run_dir=run_dir)
    return run_dir, profile, out


def bundle_lock(out: Path) -> Path:
    """The lock file of the bundle folder ``out``: beside it (``.<name>.lock``), since ``out`` is replaced as a
    whole and a lock file in it would go with it. Removed when the export ends (``release_file``'s ``remove``)."""
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def export_claims(run_dir: Path, out: Path) -> Iterator[None]:
    """Hold, for the block, the run folder's lock (the one ``train`` holds while it trains there, and hands its
    ``--export`` child) and the bundle folder's (:func:`bundle_lock`), or refuse: two exports into one ``--out``, or
    an export of a run still training, wrote into one folder at once. Claims count, so the command takes them
    before TensorFlow's start-up and :func:`export_run` again. A run folder this user may not write in (read-only)
    is exported without its lock, as before: nothing is written into it unless ``--out`` is in it.

    Raises
    ------
    ConfigError
        Another process holds either lock; the message names the folder and that process (``pid N on host``).
    """
    try:
        holder = claim_folder(run_dir)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        run_claimed = False
    else:
        if holder:
            raise ConfigError(f"{run_dir}: in use by {holder}, which is training or exporting this run; wait for it "
                              f"to end, then export it")
        run_claimed = True
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        lock = bundle_lock(out)
        holder = claim_file(lock)
        if holder:
            raise ConfigError(f"{out}: in use by {holder}, which is exporting into this folder; wait for it to end, "
                              f"or give another --out")
        try:
            yield
        finally:
            release_file(lock, remove=True)  # not left beside the bundle (a killed export's is taken by the next)
    finally:
        if run_claimed:
            release_folder(run_dir)


def record_run_export(run_dir: Path, profile: ExportProfile, out: Path) -> bool:
    """Mark, in the run's ``run_state.json``, the export its ``train --export`` asked for as done, when the bundle
    just written in ``out`` is that export: the run's own bundle folder (``RUN_DIR/export``), built with the same
    profile, of a run whose state names it and says it is not done (:func:`sound_tf.run_state.export_pending`).
    Returns whether it marked it.

    ``train --export`` recorded it only for its own export child, so a run whose export had been stopped or had
    failed stayed "export pending" after a ``python -m sound_tf.export RUN_DIR`` that wrote the bundle, and the same
    ``train --export`` exported it again. An export to another folder or with another profile leaves the state as it
    is (the export asked for is still not in the run's folder), and so does a state that is damaged or names a
    profile that no longer loads (``train --export`` reports those itself).
    """
    if Path(out).resolve() != (Path(run_dir) / "export").resolve():
        return False
    try:
        state = read_state(run_dir)
        if not export_pending(state) or load_profile(state["export_profile"]) != profile:
            return False
    except SoundTFError:
        return False
    write_state(run_dir, export_done=True)
    return True


def _check_replaceable(out: Path, *, run_dir: Path) -> None:
    """Raise unless ``out`` is absent, an empty folder or an export bundle (only names export writes).

    Raises
    ------
    ConfigError
        ``out`` is a file, the run folder or a folder holding it, or a folder with other files.
    """
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; give --out a bundle folder to create or replace")
    if holds(out, run_dir):
        raise ConfigError(f"{out}: this folder holds the run {run_dir}, and export replaces its --out as a whole; "
                          f"give another --out (default {run_dir / 'export'})")
    foreign = [p.relative_to(out).as_posix() for p in _foreign_files(out)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ConfigError(f"{out}: not an export bundle (it holds {shown}, which export does not write); export "
                          f"replaces its --out as a whole, so it refuses this folder: give another --out, or "
                          f"move those files away")
    if any(out.iterdir()) and not _is_export_report(out / EXPORT_JSON):
        raise ConfigError(f"{out}: holds bundle-like files but no {EXPORT_JSON} written by an export, so it may be "
                          f"someone's own files; export replaces its --out as a whole and refuses this folder: give "
                          f"another --out, or empty it")


def _foreign_files(out: Path) -> list[Path]:
    """What ``out`` holds that an export does not write, at every depth (an ``analysis/`` or
    ``saved_model/`` of the user's own must not be deleted with the bundle it is taken for)."""
    foreign = [p for p in sorted(out.iterdir())
               if p.name not in BUNDLE_NAMES and not _BUNDLE_MODEL_NAME.fullmatch(p.name)]
    analysis, saved = out / ANALYSIS_DIR, out / SAVED_MODEL_DIR
    if analysis.is_dir():
        foreign += [p for p in sorted(analysis.iterdir())
                    if not (p.suffix == ".txt" and _BUNDLE_MODEL_NAME.fullmatch(p.stem + ".tflite"))]
    if saved.is_dir():  # a SavedModel: saved_model.pb, fingerprint.pb, variables/variables.*, assets/
        for path in sorted(saved.rglob("*")):
            top = path.relative_to(saved).parts[0]
            if not (top in ("saved_model.pb", "fingerprint.pb", "assets")
                    or (top == "variables" and (path.is_dir() or path.name.startswith("variables.")))):
                foreign.append(path)
    for name in (analysis, saved, out / EXPORT_JSON, out / CONFIG_FILENAME, out / LABELS_FILE, out / NOISE_FILE,
                 out / FEATURES_FILE):
        if name.exists() and name.is_dir() != (name in (analysis, saved)):
            foreign.append(name)  # a folder where export writes a file, or the reverse
    return foreign


def _is_export_report(path: Path) -> bool:
    """Whether ``path`` is an ``export.json`` as :func:`export_run` writes it."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(report, dict) and {"artefacts", "passed", "config_fingerprint"} <= set(report)


def _new_sibling(path: Path, purpose: str) -> Path:
    """A new empty folder beside ``path`` (same parent, so renaming between them is atomic).

    Made with ``mkdir`` (not ``tempfile.mkdtemp``, whose 0700 mode the bundle would keep): the bundle
    gets the permissions any new folder gets, and a server running as another user can read it. The
    name carries this process's id and host, so a later export can tell a folder abandoned by a killed
    export (:func:`_remove_abandoned_stages`) from one that another export is still writing.
    """
    sibling = path.with_name(f".{path.name}.{purpose}-{os.getpid()}@{socket.gethostname()}-{secrets.token_hex(6)}")
    sibling.mkdir()
    return sibling


def _remove_abandoned_stages(out: Path, *, log: Log) -> None:
    """Clear away the staging folders beside ``out`` whose export process (on this host) no longer runs.

    An export stopped by SIGKILL or a power cut cannot run its ``finally``; its half-built bundle would
    stay beside ``out`` as a hidden folder for good. So would the previous bundle of one stopped while it
    swapped the new one in (:func:`_move_into_place`): its ``replaced`` folder, holding only
    ``<out's name>/``, is put back as ``out`` when ``out`` is missing (stopped between the two renames: it
    is the only copy), and deleted when a bundle is in ``out`` (stopped after them). Folders of a live
    process, of another host (a shared disk), named otherwise or holding anything else are left alone. A
    process id no process can have (0, or beyond the largest) names no running export
    (:func:`sound_tf.locks.process_alive`).
    """
    if os.name != "posix":  # os.kill(pid, 0) only tests for a process on POSIX
        return
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(building|replaced)-(\d+)@(.+)-[0-9a-f]{{12}}")
    host = socket.gethostname()
    for folder in sorted(out.parent.glob(f".{glob.escape(out.name)}.*-*")):
        match = pattern.fullmatch(folder.name)
        if match is None or match[3] != host or not folder.is_dir() or folder.is_symlink():
            continue
        pid = int(match[2])
        if process_alive(pid):  # that export is still running (or the process is another user's)
            continue
        if match[1] == "replaced":
            held = [path.name for path in folder.iterdir()]
            if held not in ([], [out.name]) or (folder / out.name).is_symlink():
                continue  # not what an export moves aside: never delete what may be the only copy
            if held and not out.exists() and not out.is_symlink():
                try:
                    (folder / out.name).rename(out)
                except OSError as exc:  # left as it is, the previous bundle stays there
                    log(f"export: could not put the previous bundle in {folder / out.name} back in {out} ({exc})")
                    continue
                log(f"export: put the previous bundle back in {out}, moved aside by an export that was "
                    f"stopped (process {pid})")
        shutil.rmtree(folder, ignore_errors=True)
        log(f"export: removed {folder}, left by an export that was stopped (process {pid})")


def _move_into_place(stage: Path, out: Path, *, log: Log) -> None:
    """Rename the finished bundle ``stage`` to ``out``, replacing a previous bundle there as a whole.

    Both are in one folder, so each rename is atomic. A previous bundle is renamed away first (Windows
    cannot rename onto an existing folder, nor rename a folder whose files are open), the new one renamed
    in, and only then the old one deleted; if the new one cannot be renamed in, the old one is put back.
    """
    trash: Path | None = None
    try:
        if not out.exists():
            stage.rename(out)
            return
        trash = _new_sibling(out, "replaced")
        try:
            out.rename(trash / out.name)
            try:
                stage.rename(out)
            except OSError:
                (trash / out.name).rename(out)
                raise
        finally:
            if out.exists():  # never delete the only copy of the previous bundle
                shutil.rmtree(trash, ignore_errors=True)
        if trash.exists():
            log(f"export: could not delete the previous bundle, now in {trash}; delete it by hand")
    except OSError as exc:
        previous = (f"the previous bundle is now in {trash / out.name}" if trash and (trash / out.name).exists()
                    else "the previous bundle, if any, is unchanged")
        raise ExportError(f"{out}: could not move the new bundle into place ({exc}); {previous}") from exc


def _write_bundle(run_dir: Path, config: Config, model: keras.Model, profile: ExportProfile, out: Path, *,
                  allow_degraded: bool, log: Log) -> dict[str, Any]:
    """Build, measure and check every artefact into the new folder ``out``; returns ``export.json``'s content."""
    import keras
    import tensorflow as tf

    labels = list(config.labels)
    config.save(out)
    (out / LABELS_FILE).write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
    if (run_dir / NOISE_FILE).is_file():  # which noise recordings the model trained with: config.json names the folder
        shutil.copyfile(run_dir / NOISE_FILE, out / NOISE_FILE)

    test = read_clips(run_dir, config, "test")
    calibrated = bool(CALIBRATED_ARTEFACTS & set(profile.artefacts))  # only these read training clips
    train = (read_clips(run_dir, config, "train", limit=profile.representative_windows, seed=config.train.seed)
             if calibrated else None)
    representative = (representative_windows(train, profile.representative_windows) if train is not None
                      else np.zeros((0, config.audio.clip_samples), np.float32))  # [n, clip_samples]
    # The training clips whose windows calibrate int8: named in the log, export.json, and the agreement plan.
    calibration_clips = list(_clips_used(train, len(representative))) if train is not None else []
    calibration = (f"; calibrating int8 on {len(representative)} windows of {len(calibration_clips)} training clips"
                   if train is not None else "")
    log(f"export: {len(test.sources)} test clips ({test.num_windows} windows){calibration}")
    caution = (few_windows_warning(len(representative), profile.representative_windows)
               or fewer_windows_note(len(representative), profile.representative_windows, len(train.sources),
                                     profile.name) if train is not None else None)
    if caution:
        log(f"export: {caution}")
    calibration_sources = set(calibration_clips)
    plan = check_plan(_agreement_split_sizes(run_dir, len(test.sources), calibration_sources), profile)
    for text in check_plan_lines(plan):
        log(f"export: {text}")
    more = _agreement_clips(run_dir, config, {split for check in plan.values() for split in check["splits"]},
                            calibration_sources)  # split -> Clips, beyond the test split
    probe = test.windows[0][:1].copy()  # [1, clip_samples]: the latency input (not its clip's other windows)

    keras_runner = _KerasRunner(model)
    keras_probs, keras_windows = score_clips(keras_runner, test)
    keras_pred = keras_probs.argmax(axis=1)
    keras_accuracy = float(np.mean(keras_pred == test.label_indices))
    keras_more = {split: score_clips(keras_runner, clips)[0].argmax(axis=1) for split, clips in more.items()}
    entries: dict[str, dict[str, Any]] = {"keras": {
        "file": str((run_dir / "model.keras").resolve()), "size_bytes": _size_bytes(run_dir / "model.keras"),
        "latency_ms": median_latency_ms(keras_runner, probe, profile.latency_runs),
        "latency_predict_ms": median_latency_ms(_KerasPredictRunner(model), probe, profile.latency_runs),
        "accuracy": keras_accuracy, "agreement": 1.0, "accuracy_drop_points": 0.0}}
    log(f"export: keras test accuracy {100 * keras_accuracy:.2f}%")

    def scored(name: str, runner: _Runner) -> tuple[dict[str, Any], np.ndarray]:
        """Latency, accuracy and agreement with Keras of one runner of artefact ``name``; and its window
        probabilities. Accuracy is the test split's; agreement is over the splits its check takes (``plan``)."""
        probs, window_probs = score_clips(runner, test)
        pred = probs.argmax(axis=1)
        accuracy = float(np.mean(pred == test.label_indices))
        agrees = {"test": pred == keras_pred}  # split -> [clips] bool
        check = plan["float_agreement" if name in FLOAT_ARTEFACTS else "quantized_agreement"]
        for split in check["splits"]:
            if split != "test":
                agrees[split] = score_clips(runner, more[split])[0].argmax(axis=1) == keras_more[split]
        agree = np.concatenate(list(agrees.values()))  # [agreement clips]
        return {"latency_ms": median_latency_ms(runner, probe, profile.latency_runs),
                "accuracy": accuracy, "agreement": float(np.mean(agree)),
                "clips": int(pred.size), "agreement_clips": int(agree.size),
                "disagreements": int(np.count_nonzero(~agree)),
                "agreement_by_split": {split: {"clips": int(a.size), "disagreements": int(np.count_nonzero(~a))}
                                       for split, a in agrees.items()},
                "accuracy_drop_points": 100.0 * (keras_accuracy - accuracy),
                "window_agreement": float(np.mean(window_probs.argmax(axis=1) == keras_windows.argmax(axis=1))),
                "max_abs_probability_diff": float(np.abs(window_probs - keras_windows).max())}, window_probs

    def line(entry: Mapping[str, Any]) -> str:
        over = f" of {entry['agreement_clips']} clips" if entry["agreement_clips"] != entry["clips"] else ""
        return (f"{entry['latency_ms']:7.2f} ms  accuracy {100 * entry['accuracy']:6.2f}%  agreement "
                f"{100 * entry['agreement']:6.2f}%{over}  probabilities {entry['max_abs_probability_diff']:.4f} "
                f"from Keras")

    def measure(name: str, runner: _Runner, path: Path, builtin: _Runner | None = None,
                activation: Mapping[str, Any] | None = None, flatbuffer_bytes: int | None = None) -> dict[str, Any]:
        """``builtin``: the same artefact on TFLite's built-in kernels alone, measured as a second kernel set;
        ``activation``: a TFLite model's :func:`activation_memory`, and ``flatbuffer_bytes`` the model without the
        archive appended to its file (what a microcontroller's flash holds), both logged beside its size."""
        entry, window_probs = scored(name, runner)
        entry = {"file": path.name, "size_bytes": _size_bytes(path), **entry}
        memory = (f"flatbuffer {flatbuffer_bytes / 1024:7.1f} KB  "
                  f"RAM >= {activation['activation_bytes_peak'] / 1024:7.1f} KB  "
                  if activation is not None and flatbuffer_bytes is not None
                  else " " * RAM_COLUMN)  # RAM: a lower bound, the activations alone
        log(f"export: {name:<13} {entry['size_bytes'] / 1024:8.1f} KB  {memory}{line(entry)}")
        if builtin is not None:
            other, other_windows = scored(name, builtin)
            other["max_abs_probability_diff_from_default_kernels"] = float(np.abs(other_windows - window_probs).max())
            entry[BUILTIN_KERNELS] = other
            log(f"export: {'  built-in kernels':<{27 + RAM_COLUMN}}{line(other)}, "  # columns under the line above
                f"{other['max_abs_probability_diff_from_default_kernels']:.4f} from XNNPACK")
        return entry

    with tempfile.TemporaryDirectory(prefix="sound_tf_export_") as tmp:
        work = Path(tmp)
        if "saved_model" in profile.artefacts:
            path = save_serving_model(model, config, out / SAVED_MODEL_DIR)
            entries["saved_model"] = measure("saved_model", _SavedModelRunner(path), path)
        features = frontend_model(model) if "int8_features" in profile.artefacts else None
        source: Path | None = None  # the SavedModel the waveform variants are converted from
        float32: bytes | None = None
        (out / ANALYSIS_DIR).mkdir(exist_ok=True)
        for variant in [a for a in profile.artefacts if a in TFLITE_FILES]:
            path = out / TFLITE_FILES[variant]
            if variant == "int8_features":
                rep_features = features.predict(representative, verbose=0)  # [n, frames, mel_bins]
                flat = convert_features_model(model, config, work, rep_features)
                spec = feature_spec(model, config)
                summary = tflite_op_summary(flat)
                spec["input"], spec["outputs"] = summary["input"], summary["outputs"]
                spec["quantisation_rule"] = ("q = clip(round(x / input.scale) + input.zero_point, -128, 127); "
                                             "value = (q_out - outputs[name].zero_point) * outputs[name].scale, "
                                             "q_out being the model's output at place outputs[name].output_index "
                                             "(TFLite Micro, which reads no signature: "
                                             "interpreter.output(output_index)); "
                                             "average logits over the windows of a long recording")
                spec_bytes = json.dumps(spec, indent=1).encode("utf-8")
                (out / FEATURES_FILE).write_bytes(spec_bytes)
                data = embed_metadata(flat, labels=labels, info=_model_info(config, variant, "log_mel"),
                                      extra_files={FEATURES_FILE: spec_bytes})
            else:
                if source is None:
                    source = tflite_source(model, config, work / "source")
                flat = convert_waveform_model(source, variant, representative=representative, float32=float32)
                float32 = flat if variant == "float32" else float32
                if variant in ("int8", "dynamic"):
                    _check_frontend_float(flat, variant)
                summary = tflite_op_summary(flat)
                data = embed_metadata(flat, labels=labels, info=_model_info(config, variant, "waveform"))
            path.write_bytes(data)
            (out / ANALYSIS_DIR / f"{path.stem}.txt").write_text(_analyzer_text(flat), encoding="utf-8")
            builtin = (_tflite_runner(variant, path, features, kernels="builtin")
                       if variant in BUILTIN_KERNEL_ARTEFACTS else None)
            activation = activation_memory(flat)
            entries[variant] = {**measure(variant, _tflite_runner(variant, path, features), path, builtin, activation,
                                          len(flat)),
                                "flatbuffer_bytes": len(flat), **activation, **summary}
            entries[variant]["precision"] = PRECISION_NOTES[variant]
            if profile.c_source and variant in C_SOURCE_ARTEFACTS:
                entries[variant]["c_source"] = write_c_source(flat, path, micro_model(config, variant, summary))
                warning = missing_ops_warning(entries[variant]["c_source"])  # the header says so too, and the done line
                if warning:
                    log(f"export: WARNING {warning}")

    failures = check_thresholds(entries, profile)
    report = {
        "run_dir": str(run_dir.resolve()), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sound_tf_version": __version__, "tensorflow_version": tf.__version__, "keras_version": keras.__version__,
        "profile": profile.to_dict(), "labels": labels, "sample_rate_hz": config.audio.sample_rate_hz,
        "clip_samples": config.audio.clip_samples, "window_hop_samples": config.audio.window_hop_samples,
        "config_fingerprint": config.fingerprint(),
        "scoring": "per clip: windows every window_hop_samples (tail zero-padded), logits per window, softmax of "
                   "their mean (as evaluation); accuracy and accuracy_drop_points over the run's test split; top-1 "
                   "agreement with Keras (agreement, disagreements) over agreement_clips: the test split, and where "
                   "its clips are too few to hold an artefact to its threshold the further splits named under "
                   "checks (agreement_by_split counts each); window_agreement and max_abs_probability_diff compare "
                   "single windows of the test split. TFLite files run with the runtime's default delegate "
                   "(XNNPACK) where it applies; builtin_kernels holds the same "
                   "measurements of float16, dynamic, int8 and int8_features on TFLite's built-in kernels alone "
                   "(no delegate, as a device without XNNPACK runs them), held to the same thresholds, and their "
                   "max_abs_probability_diff_from_default_kernels",
        "activation_memory": {"what": ACTIVATION_MEMORY_NOTE},
        "latency": {"what": "median wall time of one single-clip prediction (batch 1) after warm-up",
                    "runs": profile.latency_runs, "tflite_threads": 1,
                    "tensorflow_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default"},
        "test": {"clips": len(test.sources), "windows": test.num_windows, "run_accuracy": _run_accuracy(run_dir)},
        "representative": ({"split": "train", "windows": int(len(representative)),
                            "sources": calibration_clips} if train is not None else None),
        "checks": {"what": "the clips each check is measured on (splits: test, val, train = training clips int8 "
                           "is not calibrated on, calibration = training clips it is calibrated on) and what it is "
                           "held to: its threshold, or one clip where those clips are too few for it (one clip "
                           "weighs more than allowed_points): one clip that differs (or one test clip lost) "
                           "passes, two fail. Agreement needs no label and takes more splits, in that order, until "
                           "it has clips_needed or none is left; the accuracy drop is the test split's",
                   **plan},
        "artefacts": entries, "passed": not failures, "failures": failures, "allow_degraded": allow_degraded,
    }
    (out / EXPORT_JSON).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _agreement_split_sizes(run_dir: Path, test_clips: int, calibration: set[str]) -> dict[str, int]:
    """Clips of each of :data:`AGREEMENT_SPLITS` in the run's ``split.csv`` (``calibration``: the training clips
    whose windows calibrate int8); nothing is decoded."""
    splits = read_split_csv(run_dir / "split.csv", run_file=True)
    train = splits["train"]
    calibrating = sum(1 for ex in train if ex.path in calibration)
    return {"test": test_clips, "val": len(splits["val"]), "train": len(train) - calibrating,
            "calibration": calibrating}


def _agreement_clips(run_dir: Path, config: Config, splits: set[str], calibration: set[str]) -> dict[str, Clips]:
    """The clips of ``splits`` other than the test split (:data:`AGREEMENT_SPLITS`), read only when asked for."""
    more: dict[str, Clips] = {}
    if "val" in splits:
        more["val"] = read_clips(run_dir, config, "val")
    if {"train", "calibration"} & splits:
        train = read_clips(run_dir, config, "train")
        calibrating = [source in calibration for source in train.sources]
        for split, wanted in (("train", False), ("calibration", True)):
            if split in splits:
                more[split] = train.take([i for i, c in enumerate(calibrating) if c == wanted])
    return more


def _clips_used(clips: Clips, count: int):
    """Sources of the clips whose windows :func:`representative_windows` took."""
    taken = 0
    for source, clip_windows in zip(clips.sources, clips.window_counts):  # counts: no clip is read
        if taken >= count:
            return
        taken += clip_windows
        yield source


def _run_accuracy(run_dir: Path) -> float | None:
    path = run_dir / "metrics.json"
    try:
        return float(json.loads(path.read_text())["accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- command line --------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sound_tf.export``; returns 0, 1 when a threshold failed, 2 on bad input."""
    parser = argparse.ArgumentParser(prog="python -m sound_tf.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a finished training run folder")
    parser.add_argument("--profile", help="export/<name>.toml or a bare name: default, float_only, micro")
    parser.add_argument("--out", type=os.path.expanduser,  # a quoted ~ too: no folder named '~' is made
                        help="bundle folder (default RUN_DIR/export); built beside it and swapped in only when "
                             "complete, replacing a previous bundle as a whole")
    parser.add_argument("--allow-degraded", action="store_true",
                        help="write the bundle even when an artefact misses a parity threshold")
    parser.add_argument("--quiet", action="store_true",
                        help="print only errors (no progress lines, none of TensorFlow's own log lines)")
    args = parser.parse_args(argv)
    quiet_tensorflow()

    def work() -> None:
        load_run_config(args.run_dir)  # a mistyped or unfinished RUN_DIR is refused before TensorFlow loads,
        run_dir, _, out = check_request(args.run_dir, args.profile, args.out)  # a bad --profile or --out too,
        inherit_lock()  # (train --export's child: the run folder's lock is its command's, handed to it)
        with export_claims(run_dir, out):  # and a run or bundle folder another process works in
            import tensorflow as tf

            # Latency is reported for one thread; TensorFlow must be told before it runs its first op.
            with contextlib.suppress(RuntimeError):
                tf.config.threading.set_intra_op_parallelism_threads(1)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            export_run(args.run_dir, profile=args.profile, out_dir=args.out, allow_degraded=args.allow_degraded,
                       log=(lambda message: None) if args.quiet else print)

    with native_logs_held(args.quiet):  # TensorFlow's start-up (in work), the converter's, the TFLite runtime's lines
        return run_cli(work, exit_codes={ExportError: 1})  # 1: an artefact missed a parity threshold


if __name__ == "__main__":
    sys.exit(main())
