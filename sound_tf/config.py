"""The single source of truth for every number a run uses.

One frozen :class:`Config` travels from the recipe (``pipelines/*.toml``) and the command line through
decoding, the ``tf.data`` pipeline, the model, training, export and serving. It is saved as
``config.json`` in every run folder and export bundle, and everything downstream reads it back instead of
repeating numbers. Derived sizes (samples per clip, STFT frame sizes, feature shape) are properties, never
typed by hand.

This module must never import TensorFlow: the on-device runner and the server read configs too.

Examples
--------
>>> cfg = Config()
>>> cfg.audio.clip_samples
16000
>>> cfg = apply_overrides(cfg, {"audio.clip_seconds": 5.0, "audio.sample_rate_hz": 22050})
>>> cfg.audio.clip_samples, cfg.feature_shape
(110250, (499, 64))
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import math
import numbers
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import atomic
from .errors import ConfigError, SoundTFError, is_whole

CONFIG_FILENAME = "config.json"
RUN_STATE_FILENAME = "run_state.json"  # a training run writes it as it starts (run_state.STATE_FILE)
#: Which recordings of ``augment.noise_dir`` a run mixed in, from which epoch (``trainer.record_noise``); an export
#: bundle carries it, ``compare`` reads it.
NOISE_FILENAME = "noise.json"


def unfinished_run_hint(run_dir: Path) -> str | None:
    """What to do with ``run_dir`` when it is a training run killed before it wrote ``model.keras``, else ``None``."""
    if (run_dir / RUN_STATE_FILENAME).is_file() and not (run_dir / "model.keras").is_file():
        return f"its training has not finished: run the same train command again (with --out {run_dir}) to resume it"
    return None


#: Settings that name files or folders: made absolute and written plainly (``/data/noise/`` and ``~/noise`` are
#: ``/data/noise`` and ``/home/me/noise``, as ``--data``'s), so that a run is recognised from anywhere.
PATH_KEYS = ("data.path", "data.split_file", "augment.noise_dir")
#: Those and the decode cache (``--cache-dir``; empty is the default cache): a relative cache was read from the
#: current folder of every later command, so evaluate or export run elsewhere decoded every file again there.
ABSOLUTE_KEYS = PATH_KEYS + ("data.cache_dir",)


def load_run_config(run_dir: str | Path) -> Config:
    """A finished run folder's ``Config`` (with its labels), read without TensorFlow.

    ``evaluate``, ``predict`` and ``export`` call it before TensorFlow loads, so a mistyped or unfinished
    ``RUN_DIR`` is refused at once rather than after TensorFlow's start-up (about 7 s);
    :func:`sound_tf.evaluation.load_run` calls it before it loads the model.

    Raises
    ------
    SoundTFError
        ``run_dir`` is a ``.tflite`` file, does not exist, has no ``config.json`` or ``model.keras`` (e.g. a run
        that did not finish, or an export bundle: the message says what to do with it), or the config has no labels.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file() and run_dir.suffix.lower() == ".tflite":
        raise SoundTFError(f"{run_dir}: a TFLite model, not a run folder; classify with it using "
                           f"`python -m sound_tf.lite {run_dir} FILE...`, or pass the run folder that exported it")
    if not run_dir.exists():
        where = ("" if run_dir.is_absolute() or run_dir.expanduser() != run_dir else
                 f" in the current folder, {Path.cwd()} (train writes runs/ under the folder it is run from)")
        raise SoundTFError(f"{run_dir}: no such folder{where}; pass the folder a training run wrote")
    for name in (CONFIG_FILENAME, "model.keras"):
        if not (run_dir / name).is_file():
            # a run killed before its model was written says how to resume it
            hint = unfinished_run_hint(run_dir) or "pass the folder a training run wrote"
            if (run_dir / "export.json").is_file():  # an export bundle: config.json and models, no model.keras
                hint = (f"this is an export bundle: serve it with `python -m sound_tf.serve {run_dir}`, run one of "
                        f"its .tflite files with `python -m sound_tf.lite`, or pass the run folder it came from")
            raise SoundTFError(f"{run_dir}: not a finished run folder ({name} is missing); {hint}")
    config = Config.load(run_dir)
    if not config.labels:
        raise SoundTFError(f"{run_dir / CONFIG_FILENAME}: holds no labels; it was not written by a training run")
    return config


def _recipes_root() -> Path:
    """The folder that holds the recipe folders (``pipelines/``, ``tuning/``, ``export/``).

    Running from a checkout (a clone, or ``pip install -e .``) that is the checkout itself. An installed
    wheel has no checkout beside the package: setup.cfg's ``data_files`` put the recipes under
    ``<prefix>/share/sound_tf``. ``pip install --target DIR`` puts them in ``DIR/share/sound_tf``; for
    other schemes (a venv, ``--user``, ``--prefix``) the wheel's file list (``RECORD``) says where."""
    checkout = Path(__file__).resolve().parents[1]
    for root in (checkout, checkout / "share" / "sound_tf"):
        if (root / "pipelines" / "demo.toml").is_file():
            return root
    try:
        installed = importlib.metadata.files("sound_tf") or []
    except importlib.metadata.PackageNotFoundError:
        installed = []
    for entry in installed:
        if entry.parts[-4:] == ("share", "sound_tf", "pipelines", "demo.toml"):
            root = Path(entry.locate()).resolve().parents[1]
            if (root / "pipelines" / "demo.toml").is_file():
                return root
    return checkout


REPO_ROOT = _recipes_root()
REPO_PIPELINES = REPO_ROOT / "pipelines"
"""The recipes shipped with sound_tf (``pipelines/*.toml``), found by bare name."""
DATA_FORMATS = ("auto", "folder", "csv", "esc50", "urbansound8k", "speech_commands", "demo")
SCHEDULES = ("cosine", "plateau", "constant")
#: Seeds are below this: TensorFlow's stateless random ops take int32 seeds, and derived seeds add small offsets.
SEED_LIMIT = 2**30


def check_seed(name: str, seed: Any) -> None:
    """Raise :class:`ConfigError` naming ``name`` unless ``seed`` is an integer in ``[0, SEED_LIMIT)`` (a NumPy
    integer too, never a bool: :func:`~sound_tf.errors.is_whole`; a caller that keeps it takes ``int(seed)``)."""
    if not is_whole(seed) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(f"{name} must be an integer in [0, 2**30), got {seed!r}")


def fold_below_1(name: str, fold: Any, *, shown: str | None = None) -> str | None:
    """``"<name> must be 1 or more (folds count from 1, ...), got <fold>"`` when ``fold`` is a number below 1,
    else ``None`` (``shown``: the value as it was written; by default its ``repr``).

    The one wording of that check: the readers of a fold column (``datasets._parse_fold``), an ``Example``
    built in code and ``split_examples``' arguments (``data.test_fold`` / ``data.val_fold``) all use it.
    """
    if not isinstance(fold, numbers.Real) or not fold < 1:
        return None
    return (f"{name} must be 1 or more (folds count from 1, as ESC-50's, UrbanSound8K's and --test-fold do), "
            f"got {repr(fold) if shown is None else shown}")


def _check(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` holds (never ``assert``)."""
    if not condition:
        raise ConfigError(message)


def _normalise_fields(section: Any, name: str) -> None:
    """Give each field of a section as :meth:`Config.from_dict` reads it (the section built directly, as a
    notebook does, skipped that): a number given as text or ``True`` is refused, as is an infinite float;
    NumPy numbers become Python ones (``np.float32`` failed in :meth:`Config.to_dict`); a list becomes a
    tuple (unhashable otherwise); a path-like text setting becomes its ``str`` (``json`` cannot write it).
    Errors name ``section.key``."""
    hints = _section_hints(type(section))
    for item in fields(section):
        value = getattr(section, item.name)
        coerced = _coerce(f"{name}.{item.name}", hints[item.name], value)
        if coerced is not value:
            object.__setattr__(section, item.name, coerced)


@functools.lru_cache(maxsize=None)
def _section_hints(section_cls: type) -> dict[str, Any]:
    return typing.get_type_hints(section_cls)


# Slaney's mel scale (as in Auditory Toolbox / librosa ``htk=False``): linear below the break
# frequency, logarithmic above it. It lives here, without TensorFlow, because a config checks that each
# of its mel bands holds an FFT bin; ``frontend.py`` builds the filterbank from it.
SLANEY_HZ_PER_MEL = 200.0 / 3.0
SLANEY_BREAK_HZ = 1000.0
SLANEY_LOG_STEP = np.log(6.4) / 27.0  # natural-log step per mel above the break


def hz_to_slaney_mel(frequency_hz: np.ndarray | float) -> np.ndarray:
    """Frequencies in Hz to Slaney mels (linear below 1 kHz, logarithmic above)."""
    frequency_hz = np.asarray(frequency_hz, dtype=np.float64)
    break_mel = SLANEY_BREAK_HZ / SLANEY_HZ_PER_MEL
    linear = frequency_hz / SLANEY_HZ_PER_MEL
    safe_hz = np.maximum(frequency_hz, SLANEY_BREAK_HZ)  # avoids log(0) in the unused branch
    logarithmic = break_mel + np.log(safe_hz / SLANEY_BREAK_HZ) / SLANEY_LOG_STEP
    return np.where(frequency_hz >= SLANEY_BREAK_HZ, logarithmic, linear)


def slaney_mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    """Slaney mels back to Hz (inverse of :func:`hz_to_slaney_mel`)."""
    mels = np.asarray(mels, dtype=np.float64)
    break_mel = SLANEY_BREAK_HZ / SLANEY_HZ_PER_MEL
    linear = mels * SLANEY_HZ_PER_MEL
    logarithmic = SLANEY_BREAK_HZ * np.exp(SLANEY_LOG_STEP * (mels - break_mel))
    return np.where(mels >= break_mel, logarithmic, linear)


def slaney_mel_edges_hz(*, num_mel_bins: int, fmin_hz: float, fmax_hz: float) -> np.ndarray:
    """The ``num_mel_bins + 2`` band edges of :func:`slaney_mel_matrix` in Hz: equally spaced Slaney mels.

    Band ``m`` rises from edge ``m``, peaks at edge ``m + 1`` (its centre) and ends at edge ``m + 2``.
    """
    return slaney_mel_to_hz(np.linspace(hz_to_slaney_mel(fmin_hz), hz_to_slaney_mel(fmax_hz), num_mel_bins + 2))


@dataclass(frozen=True)
class AudioConfig:
    """How audio is decoded and cut into model inputs.

    Attributes
    ----------
    sample_rate_hz : int
        Every file is resampled (once, when cached) to this rate.
    clip_seconds : float
        Length of one model input. Shorter clips are zero-padded; longer clips are randomly cropped
        for training and evaluated over sliding windows (mean of logits).
    window_hop_seconds : float or None
        Hop between evaluation windows over long clips; ``None`` means half a clip.
    """

    sample_rate_hz: int = 16000
    clip_seconds: float = 1.0
    window_hop_seconds: float | None = None

    def __post_init__(self) -> None:
        _normalise_fields(self, "audio")
        _check(isinstance(self.sample_rate_hz, int) and 1000 <= self.sample_rate_hz <= 192000,
               f"audio.sample_rate_hz must be an integer in [1000, 192000], got {self.sample_rate_hz!r}")
        _check(0.05 <= float(self.clip_seconds) <= 600,
               f"audio.clip_seconds must be in [0.05, 600], got {self.clip_seconds!r}")
        if self.window_hop_seconds is not None:
            _check(0 < float(self.window_hop_seconds) <= float(self.clip_seconds),
                   f"audio.window_hop_seconds must be in (0, clip_seconds={self.clip_seconds}], "
                   f"got {self.window_hop_seconds!r}")

    @property
    def clip_samples(self) -> int:
        """Samples in one model input."""
        return int(round(self.sample_rate_hz * float(self.clip_seconds)))

    @property
    def window_hop_samples(self) -> int:
        """Samples between the starts of two evaluation windows."""
        hop = self.window_hop_seconds if self.window_hop_seconds is not None else self.clip_seconds / 2
        return max(1, int(round(self.sample_rate_hz * float(hop))))


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel frontend parameters (computed inside the model by ``frontend.LogMel``).

    Frames are taken without centre padding (``tf.signal.stft`` with ``pad_end=False``, librosa with
    ``center=False``), so ``num_frames = 1 + (samples - frame_length) // hop_length``.
    """

    frame_length_ms: float = 25.0
    hop_length_ms: float = 10.0
    fft_length: int | None = None
    num_mel_bins: int = 64
    fmin_hz: float = 20.0
    fmax_hz: float | None = None
    log_offset: float = 1e-6

    def __post_init__(self) -> None:
        _normalise_fields(self, "features")
        _check(1.0 <= float(self.frame_length_ms) <= 1000.0,
               f"features.frame_length_ms must be in [1, 1000], got {self.frame_length_ms!r}")
        _check(0.5 <= float(self.hop_length_ms) <= float(self.frame_length_ms),
               f"features.hop_length_ms must be in [0.5, frame_length_ms={self.frame_length_ms}], "
               f"got {self.hop_length_ms!r}")
        _check(isinstance(self.num_mel_bins, int) and 8 <= self.num_mel_bins <= 512,
               f"features.num_mel_bins must be an integer in [8, 512], got {self.num_mel_bins!r}")
        if self.fft_length is not None:
            _check(isinstance(self.fft_length, int) and self.fft_length >= 16
                   and self.fft_length & (self.fft_length - 1) == 0,
                   f"features.fft_length must be a power of two >= 16, got {self.fft_length!r}")
        _check(float(self.fmin_hz) >= 0, f"features.fmin_hz must be >= 0, got {self.fmin_hz!r}")
        if self.fmax_hz is not None:
            _check(float(self.fmax_hz) > float(self.fmin_hz),
                   f"features.fmax_hz must exceed fmin_hz={self.fmin_hz}, got {self.fmax_hz!r}")
        _check(float(self.log_offset) > 0, f"features.log_offset must be > 0, got {self.log_offset!r}")


@dataclass(frozen=True)
class DataConfig:
    """Where the labelled audio comes from and how it is split.

    Attributes
    ----------
    path : str or None
        Dataset root, folder or CSV manifest; ``None`` uses the built-in synthetic demo dataset.
    format : str
        One of ``auto, folder, csv, esc50, urbansound8k, speech_commands, demo``.
    test_fold, val_fold : int or None
        For datasets with folds: the held-out test fold (default: the last) and the validation fold
        (default: the fold before the test fold). Folds count from 1: 0 or below is refused when the
        splits are made (:func:`sound_tf.datasets.split_examples`), not here, so that the config.json of
        a run or export bundle made before folds were checked still loads (to serve, export or predict).
    val_from : str
        For datasets with three folds or more, where validation comes from: ``fold``, a whole fold (``val_fold``,
        by default the one before the test fold), so that a model trains on the folds but two; ``training``, a
        group-aware, label-stratified ``val_fraction`` of the folds but the test fold (groups: UrbanSound8K's
        ``fsID``, ESC-50's ``src_file``, a CSV's ``group`` column), drawn from ``train.seed``, as many papers on
        UrbanSound8K and ESC-50 train on all the other folds. One fold of UrbanSound8K's nine is about 0.11 of
        them: a ``val_fraction`` of 0.15 trains on fewer clips than ``fold`` does, 0.1 or less on more. With two
        folds validation is drawn so either way; without folds it is ``val_fraction`` of the data. ``training``
        together with ``val_fold`` is refused.
    val_fraction, test_fraction : float
        For datasets without folds: sizes of the stratified validation and test splits (``val_fraction`` also
        with two folds, or with ``val_from`` ``training``: the share of the training folds that validates).
    split_file : str or None
        A ``split.csv`` from an earlier run to reuse exactly.
    cache_dir : str or None
        Decode cache; ``None`` uses ``$SOUND_TF_CACHE`` or ``~/.cache/sound_tf``.
    strict : bool
        Make an unreadable file an error instead of a reported skip.
    demo_clips_per_class : int
        Size of the generated demo dataset.
    keep_labels : tuple of str
        The labels to train on (e.g. ``yes,no,up,...``); empty: every label of the data. A label that matches no
        class of the data is an error naming the labels present.
    other_label : str or None
        With ``keep_labels``: the class the files of every other label become (``_unknown_``), drawn per split at
        ``other_share``; ``None``: those files are left out.
    other_share : float
        The other class's size as a share of all examples of each split, in [0, 1) (TensorFlow's
        ``unknown_percentage`` is 10). Drawn from ``train.seed`` in each split apart, so official lists and
        groups keep their splits.
    silence_label : str or None
        A class of clip-long slices of noise recordings at a random gain in [0, 1) (``_silence_``), written once
        into the decode cache; cut from ``augment.noise_dir``, else a Speech Commands folder's
        ``_background_noise_``. ``None``: no such class.
    silence_share : float
        The silence class's size as a share of all examples of each split, in [0, 1).
    group_pattern : str or None
        For data whose files bring no group of their own (a folder per class, a CSV without a ``group`` column): a
        regular expression with exactly one capturing group, searched in each file's name without its extension;
        the group it captures is the file's group (``^\\d+_([a-z]+)_`` gives FSDD's ``3_jackson_12`` the speaker
        ``jackson``), so a split or crossval's folds keep each group whole. A file it does not match is its own
        group; matching none is an error. ``None``: each file is its own group.
    """

    path: str | None = None
    format: str = "auto"
    test_fold: int | None = None
    val_fold: int | None = None
    val_from: str = "fold"
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_file: str | None = None
    cache_dir: str | None = None
    strict: bool = False
    demo_clips_per_class: int = 60
    keep_labels: tuple[str, ...] = ()
    other_label: str | None = None
    other_share: float = 0.1
    silence_label: str | None = None
    silence_share: float = 0.1
    group_pattern: str | None = None

    #: Where validation comes from with three folds or more (see ``val_from``).
    VAL_FROM: typing.ClassVar[tuple[str, ...]] = ("fold", "training")

    def __post_init__(self) -> None:
        _normalise_fields(self, "data")
        _check(self.format in DATA_FORMATS,
               f"data.format must be one of {', '.join(DATA_FORMATS)}, got {self.format!r}")
        _check(self.val_from in self.VAL_FROM,
               f"data.val_from must be one of {', '.join(self.VAL_FROM)}, got {self.val_from!r}")
        _check(self.val_from != "training" or self.val_fold is None,
               f"data.val_from 'training' draws validation from the training folds (a data.val_fraction "
               f"{self.val_fraction:g} of them), so data.val_fold={self.val_fold}, a whole fold for validation, "
               f"would not be used: give one or the other")
        for name in ("val_fraction", "test_fraction"):  # one key a message: a flag's error names that flag
            _check(0 < float(getattr(self, name)) < 0.5,
                   f"data.{name} must be in (0, 0.5), got {getattr(self, name)!r}")
        _check(isinstance(self.demo_clips_per_class, int) and self.demo_clips_per_class >= 5,
               f"data.demo_clips_per_class must be an integer >= 5, got {self.demo_clips_per_class!r}")
        _check(self.split_file is None or (self.test_fold is None and self.val_fold is None),
               f"data.split_file fixes every split, so data.test_fold={self.test_fold} / data.val_fold="
               f"{self.val_fold} would not be used: give one or the other")
        _check(self.split_file is None or self.val_from == "fold",
               f"data.split_file fixes every split, so data.val_from {self.val_from!r} would not be used: give one or "
               f"the other")
        self._check_classes()
        self._check_group_pattern()

    def _check_group_pattern(self) -> None:
        """``group_pattern``: text that compiles as a regular expression with exactly one capturing group, and no
        ``split_file`` (whose split and groups are fixed)."""
        pattern = self.group_pattern
        if pattern is None:
            return
        _check(isinstance(pattern, str) and pattern != "",
               f"data.group_pattern must be a regular expression with one capturing group (text), got {pattern!r}")
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            raise ConfigError(f"data.group_pattern '{pattern}' is not a regular expression: {exc}") from None
        _check(groups == 1, f"data.group_pattern '{pattern}' has {groups} capturing groups; it needs exactly one, "
                            f"around the part of the file name that names the group (a speaker, a recording): "
                            f"e.g. '^\\d+_([a-z]+)_' (write (?:...) for a group that captures nothing)")
        _check(self.split_file is None, f"data.split_file fixes every split, so data.group_pattern '{pattern}' would "
                                        f"not be used: give one or the other")

    @property
    def cuts_silence(self) -> bool:
        """Whether the silence class is cut from the noise recordings: ``silence_label`` set and ``silence_share``
        above 0. At 0 no clip is drawn, and the whole of each noise recording is training's to mix in."""
        return self.silence_label is not None and float(self.silence_share) > 0

    def _check_classes(self) -> None:
        """``keep_labels``, ``other_label`` / ``other_share`` and ``silence_label`` / ``silence_share``."""
        for name in ("other_label", "silence_label"):
            value = getattr(self, name)
            _check(value is None or (isinstance(value, str) and _is_label(value)),
                   f"data.{name} must be a class name (text without line breaks) or null, got {value!r}")
        kept = self.keep_labels
        _check(all(isinstance(label, str) and _is_label(label) for label in kept),
               f"data.keep_labels must be class names (text without line breaks), got {list(kept)!r}")
        _check(len(set(kept)) == len(kept), f"data.keep_labels names a label twice: {list(kept)!r}")
        for name in ("other_share", "silence_share"):
            value = getattr(self, name)
            _check(0 <= float(value) < 1, f"data.{name} must be in [0, 1) (a share of each split), got {value!r}")
        _check(self.other_label is None or kept,
               f"data.other_label={self.other_label!r} is the class of every label not kept, and data.keep_labels "
               f"is empty (every label kept): set data.keep_labels, or leave data.other_label out")
        for name in ("other_label", "silence_label"):
            value = getattr(self, name)
            _check(value not in kept, f"data.{name}={value!r} is also in data.keep_labels: give the class "
                                      f"another name (e.g. '_unknown_', '_silence_')")
        _check(self.other_label is None or self.other_label != self.silence_label,
               f"data.other_label and data.silence_label are both {self.other_label!r}: give them different names")
        shares = [(f"data.{name}", float(getattr(self, name))) for name, label in
                  (("other_share", self.other_label), ("silence_share", self.silence_label)) if label is not None]
        _check(sum(share for _, share in shares) < 1,
               f"{' + '.join(f'{key} {share:g}' for key, share in shares)} leave no share of each split for the "
               f"kept labels: give a sum below 1")
        chosen = [f"data.{name}" for name in ("keep_labels", "other_label", "silence_label") if getattr(self, name)]
        _check(self.split_file is None or not chosen,
               f"data.split_file fixes every split and its labels, so {', '.join(chosen)} would not be used: give "
               f"one or the other")


def _is_label(text: str) -> bool:
    """Whether ``text`` can be a class name: not only spaces, no line break (labels.txt holds one per line)."""
    return bool(text.strip()) and "\n" not in text and "\r" not in text


@dataclass(frozen=True)
class AugmentConfig:
    """Training-only augmentation (see ``sound_tf/augment.py``); ``enabled=False`` turns all off.

    Each transform has its own probability. On the waveform they apply in the order mixup -> shift ->
    stretch/pitch/speed -> gain -> noise; on the features (the default) speed/stretch/pitch warp the
    mel powers first (``FeatureRescale``), then mixup, shift, gain and noise act on them
    (``FeatureAugment``); SpecAugment then masks the normalised log-mel features. Validation, test and every
    exported model never augment. The ``*_domain`` settings say where each group acts: on the log-mel
    features inside the model while training (``features``, the default for all four) or on each clip
    inside ``tf.data`` (``waveform``). With every group on the features the input pipeline only reads
    and crops clips, so training with augmentation is not input-bound on a 2-core machine (a
    phase-vocoder pass alone costs about 1.1 ms of CPU per 5-s clip in ``tf.data``; the model's
    layers about 0.1 ms per clip), and it was as accurate on FSDD (numbers in the README).

    Attributes
    ----------
    enabled : bool
        Master switch (``--no-augment`` sets it to false).
    shift_probability : float
        Probability of a time shift.
    shift_max_clip_fraction : float
        Largest shift, as a fraction of the clip length (shift drawn uniformly in +-this).
    shift_mode : str
        ``roll`` (samples wrap around) or ``zero`` (vacated samples become zeros).
    speed_probability, speed_min_factor, speed_max_factor : float
        Speed perturbation (resampling: tempo and pitch change together); a factor > 1 is faster and
        higher. The clip is then centre-cropped or zero-padded back to its length.
    stretch_probability, stretch_min_rate, stretch_max_rate : float
        Time stretch (phase vocoder: tempo changes, pitch does not); a rate > 1 is faster.
    pitch_probability, pitch_min_semitones, pitch_max_semitones : float
        Pitch shift in semitones, duration unchanged.
    rescale_domain : str
        ``features``: speed, stretch and pitch warp the log-mel features in the model while training
        (:class:`sound_tf.augment.FeatureRescale`: frames and mel bins are read at scaled times and
        frequencies); ``waveform``: they resample / phase-vocode each clip in ``tf.data``. The model
        discards phase, so ``features`` closely approximates the same change for a small fraction of
        the CPU (accuracy and cost in the README).
    gain_probability, gain_min_db, gain_max_db : float
        Random gain in dB. +-20 dB by default: recordings of one class differ in level by that much (an FSDD
        speaker 18 dB quieter than the others scored 47% held out with +-6 dB, 85% with +-20 dB; README).
    noise_probability, noise_min_snr_db, noise_max_snr_db : float
        Background noise mixed at a signal-to-noise ratio drawn uniformly in dB, against the whole clip's power,
        padding included (a 0.4-s sound in a 1-s clip stands 4 dB further above the noise; README).
    noise_dir : str or None
        Folder of background-noise recordings (decoded once through the decode cache); ``None``
        uses generated coloured noise instead (a small pool made once per run from ``train.seed``
        with stateless random ops; each example reads a random circular shift of one pool row).
    noise_colors : tuple of str
        Colours of generated noise drawn at random, from ``white`` (flat), ``pink`` (1/f power) and
        ``brown`` (1/f^2 power); ignored when ``noise_dir`` is set.
    spec_freq_mask_count, spec_freq_mask_max_bins : int
        SpecAugment frequency masks per example and the largest mask width in mel bins (at most
        ``features.num_mel_bins``).
    spec_time_mask_count : int
        SpecAugment time masks per example.
    spec_time_mask_max_fraction : float
        Largest time mask width as a fraction of the frames of a clip (so it scales with its length).
    spec_probability : float
        Probability that an example gets SpecAugment's masks at all (1: every example, as in the paper).
    mixup_probability : float
        Probability that an example is mixed with a partner.
    mixup_alpha : float
        Concentration of the symmetric Beta(alpha, alpha) distribution of the mixing weight.
    shift_gain_domain : str
        ``waveform``: shift and gain act on each clip in ``tf.data``; ``features``: on the mel powers of
        the batch inside the model while training (:class:`sound_tf.augment.FeatureAugment`: frames
        rolled or shifted in from silence, powers scaled; the same draws, at frame resolution).
    noise_domain : str
        ``waveform``: noise is mixed into each clip in ``tf.data`` at its SNR; ``features``: its mel
        powers are added to the clip's inside the model while training, at the SNR of the powers in the
        frontend's band (:class:`sound_tf.augment.FeatureAugment`; the signal-noise cross term, which
        averages out over a mel band, is left out).
    mixup_domain : str
        ``waveform``: each clip is mixed with a partner from a second shuffle in ``tf.data``;
        ``features``: the model's training step mixes the mel powers of each batch with a permutation of
        itself as the waveforms would mix (``w^2 P + (1 - w)^2 P[partner]``), and the labels alike
        (:class:`sound_tf.models.SoundClassifier`). The feature paths skip per-clip passes over the
        waveform in ``tf.data`` (cost and accuracy in the README).
    """

    NOISE_COLORS: typing.ClassVar[tuple[str, ...]] = ("white", "pink", "brown")
    SHIFT_MODES: typing.ClassVar[tuple[str, ...]] = ("roll", "zero")
    DOMAINS: typing.ClassVar[tuple[str, ...]] = ("features", "waveform")
    #: The factors speed and stretch may be drawn from; a pitch range within them looks like factors too
    #: (:meth:`range_warnings`).
    FACTOR_RANGE: typing.ClassVar[tuple[float, float]] = (0.5, 2.0)
    #: :meth:`range_warnings`: a gain range whose ends are both positive and at most this looks like linear factors
    #: (4x is +12 dB).
    LINEAR_GAIN_MAX: typing.ClassVar[float] = 4.0

    enabled: bool = True
    shift_probability: float = 0.5
    shift_max_clip_fraction: float = 0.1
    shift_mode: str = "roll"
    speed_probability: float = 0.3
    speed_min_factor: float = 0.9
    speed_max_factor: float = 1.1
    stretch_probability: float = 0.0
    stretch_min_rate: float = 0.9
    stretch_max_rate: float = 1.1
    pitch_probability: float = 0.3
    pitch_min_semitones: float = -2.0
    pitch_max_semitones: float = 2.0
    rescale_domain: str = "features"
    gain_probability: float = 0.5
    gain_min_db: float = -20.0
    gain_max_db: float = 20.0
    noise_probability: float = 0.5
    noise_min_snr_db: float = 10.0
    noise_max_snr_db: float = 30.0
    noise_dir: str | None = None
    noise_colors: tuple[str, ...] = ("white", "pink", "brown")
    spec_freq_mask_count: int = 2
    spec_freq_mask_max_bins: int = 8
    spec_time_mask_count: int = 2
    spec_time_mask_max_fraction: float = 0.1
    spec_probability: float = 1.0
    mixup_probability: float = 0.5
    mixup_alpha: float = 0.2
    shift_gain_domain: str = "features"
    noise_domain: str = "features"
    mixup_domain: str = "features"

    def __post_init__(self) -> None:
        _normalise_fields(self, "augment")
        def number(name: str) -> float:
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                   f"augment.{name} must be a finite number, got {value!r}")
            return float(value)

        def span(prefix: str, unit: str, low: float, high: float) -> None:
            lo_name, hi_name = f"{prefix}_min_{unit}", f"{prefix}_max_{unit}"
            lo, hi = number(lo_name), number(hi_name)
            _check(low <= lo <= high, f"augment.{lo_name} must be in [{low}, {high}], got {lo!r}")
            _check(low <= hi <= high, f"augment.{hi_name} must be in [{low}, {high}], got {hi!r}")
            _check(lo <= hi, f"augment.{lo_name}={lo!r} must not exceed augment.{hi_name}={hi!r}")

        def count(name: str, high: int) -> None:
            value = getattr(self, name)
            _check(is_whole(value) and 0 <= value <= high,
                   f"augment.{name} must be an integer in [0, {high}], got {value!r}")

        _check(isinstance(self.enabled, bool), f"augment.enabled must be true or false, got {self.enabled!r}")
        for name in ("shift", "speed", "stretch", "pitch", "gain", "noise", "spec", "mixup"):
            value = number(f"{name}_probability")
            percent = f" (a probability, not a percentage: {value:g}% is {value / 100:g})" if 2 <= value <= 100 else ""
            _check(0.0 <= value <= 1.0, f"augment.{name}_probability must be in [0, 1], got {value!r}{percent}")
        _check(0.0 <= number("shift_max_clip_fraction") <= 0.5,
               f"augment.shift_max_clip_fraction must be in [0, 0.5], got {self.shift_max_clip_fraction!r} (a "
               f"fraction of the clip, not seconds or samples: 0.1 shifts by up to a tenth of it)")
        _check(self.shift_mode in self.SHIFT_MODES,
               f"augment.shift_mode must be one of {', '.join(self.SHIFT_MODES)}, got {self.shift_mode!r}")
        for name in ("rescale_domain", "shift_gain_domain", "noise_domain", "mixup_domain"):
            _check(getattr(self, name) in self.DOMAINS,
                   f"augment.{name} must be one of {', '.join(self.DOMAINS)}, got {getattr(self, name)!r}")
        span("speed", "factor", *self.FACTOR_RANGE)
        span("stretch", "rate", *self.FACTOR_RANGE)
        span("pitch", "semitones", -12.0, 12.0)
        span("gain", "db", -40.0, 40.0)
        span("noise", "snr_db", -20.0, 80.0)
        if self.noise_dir is not None:
            _check(isinstance(self.noise_dir, str) and self.noise_dir.strip() != "",
                   f"augment.noise_dir must be a folder path or null, got {self.noise_dir!r}")
        colors = self.noise_colors
        _check(isinstance(colors, tuple) and len(colors) >= 1 and len(set(colors)) == len(colors)
               and all(color in self.NOISE_COLORS for color in colors),
               f"augment.noise_colors must be distinct names from {', '.join(self.NOISE_COLORS)}, got {colors!r}")
        count("spec_freq_mask_count", 16)
        count("spec_freq_mask_max_bins", 512)
        count("spec_time_mask_count", 16)
        _check(0.0 <= number("spec_time_mask_max_fraction") <= 0.5,
               f"augment.spec_time_mask_max_fraction must be in [0, 0.5], got {self.spec_time_mask_max_fraction!r} "
               f"(a fraction of the clip's frames, not frames or seconds: a mask of up to T frames in a clip of N "
               f"frames is T / N, N being the clip's length over features.hop_length_ms)")
        _check(0.0 < number("mixup_alpha") <= 10.0,
               f"augment.mixup_alpha must be in (0, 10], got {self.mixup_alpha!r}")

    def range_warnings(self) -> list[str]:
        """Warnings, one line each, for a range that is accepted but reads as given in another unit; empty when none.

        Each range is named by its keys, what it does and, when its numbers look like the other unit, what they
        would be in this one. Only ranges a transform draws from are looked at (``enabled``, its probability above 0):

        - gain (dB) without 0 dB: every clip it acts on is made louder (or quieter), never left at its level. Both
          ends positive and at most :attr:`LINEAR_GAIN_MAX` look like linear factors (as torchaudio's ``Vol`` takes
          by default): ``[0.5, 2.0]`` would be -6.0 to +6.0 dB (20 log10).
        - pitch (semitones) without 0: every clip it acts on is shifted one way. Both ends within the factors
          speed takes (:attr:`FACTOR_RANGE`) look like frequency factors: ``[0.9, 1.1]`` would be -1.8 to +1.7 semitones
          (12 log2).
        - noise (dB SNR) with both ends between 0 and 1: noise about as loud as the clip; they look like
          amplitudes of the noise against the clip (as audiomentations' ``AddGaussianNoise`` takes, absolute
          there): ``[0.001, 0.015]`` would be 36.5 to 60.0 dB SNR (-20 log10).

        Speed and stretch in percent (90-110) and a shift in percent or milliseconds are refused by their checked
        ranges already; a speed or stretch range without 1x reads as no other unit, and is not warned of.
        """
        if not self.enabled:
            return []
        lines = []

        def acts(name: str) -> bool:
            return getattr(self, f"{name}_probability") > 0

        def keys(name: str, unit: str) -> str:
            low, high = getattr(self, f"{name}_min_{unit}"), getattr(self, f"{name}_max_{unit}")
            return f"augment.{name}_min_{unit}={low:g} and augment.{name}_max_{unit}={high:g}"

        def respelt(name: str, unit: str, low: float, high: float) -> str:
            return f"--set augment.{name}_min_{unit}={low:.1f} --set augment.{name}_max_{unit}={high:.1f}"

        def amount(low: float, high: float) -> str:  # how far one way: [-10, -3] is '3 to 10'
            low, high = sorted((abs(low), abs(high)))
            return f"{low:g}" if low == high else f"{low:g} to {high:g}"

        one_way = (  # each: its keys, its words, and the other unit its numbers may be in with the conversion
            dict(name="gain", unit="db", what="a gain range in dB without 0 dB", change="made {} dB",
                 ways=("louder, never quieter", "quieter, never louder"), kept="nor left at its level",
                 reading="as linear factors (torchaudio's habit)", shown="dB", convert=lambda v: 20 * math.log10(v),
                 looks=lambda low, high: 0 < low and high <= self.LINEAR_GAIN_MAX),
            dict(name="pitch", unit="semitones", what="a pitch range in semitones without 0",
                 change="shifted {} semitones", ways=("up, never down", "down, never up"), kept="nor left at its pitch",
                 reading="as frequency factors (as augment.speed_min_factor's)", shown="semitones",
                 convert=lambda v: 12 * math.log2(v),
                 looks=lambda low, high: self.FACTOR_RANGE[0] <= low and high <= self.FACTOR_RANGE[1]),
        )
        for side in one_way:
            name, unit = side["name"], side["unit"]
            low, high = float(getattr(self, f"{name}_min_{unit}")), float(getattr(self, f"{name}_max_{unit}"))
            if not acts(name) or low <= 0.0 <= high:
                continue
            line = (f"warning: {keys(name, unit)}: {side['what']}: each clip it acts on (augment.{name}_probability "
                    f"{getattr(self, f'{name}_probability'):g}) is {side['change'].format(amount(low, high))} "
                    f"{side['ways'][low < 0]}, {side['kept']}")
            if side["looks"](low, high):
                other_low, other_high = side["convert"](low), side["convert"](high)
                line += (f"; {side['reading']} {low:g}-{high:g}x would be {other_low:.1f} to {other_high:+.1f} "
                         f"{side['shown']}: {respelt(name, unit, other_low, other_high)}")
            lines.append(line)
        low, high = float(self.noise_min_snr_db), float(self.noise_max_snr_db)
        if acts("noise") and 0 < low and high < 1:
            snr_low, snr_high = -20 * math.log10(high), -20 * math.log10(low)
            lines.append(f"warning: {keys('noise', 'snr_db')}: signal-to-noise ratios of {low:g}-{high:g} dB mix "
                         f"noise in about as loud as the clip itself; as amplitudes of the noise against the clip "
                         f"(audiomentations' AddGaussianNoise habit) they would be {snr_low:.1f} to {snr_high:.1f} "
                         f"dB SNR: {respelt('noise', 'snr_db', snr_low, snr_high)}")
        return lines

    @property
    def mixes_noise(self) -> bool:
        """Whether training mixes in noise at all (augmentation on and ``noise_probability`` above 0)."""
        return self.enabled and self.noise_probability > 0

    @property
    def reads_noise_dir(self) -> bool:
        """Whether training reads the recordings of ``noise_dir``: it mixes in noise and a folder is set."""
        return self.mixes_noise and self.noise_dir is not None


@dataclass(frozen=True)
class ModelConfig:
    """Which architecture to build and its size knobs (see ``sound_tf/models.py``).

    Attributes
    ----------
    name : str
        ``default`` (the compact CNN) or ``seed_cnn`` (the original article's SimpleAudioCNN).
    widths : tuple of int
        Channels of each convolution block of the default model.
    dropout : float
        Dropout before the classifier of the default model (``seed_cnn`` is the article's model as
        published, 0.5; neither setting may differ from its default with it).
    """

    name: str = "default"
    widths: tuple[int, ...] = (32, 64, 128, 128)
    dropout: float = 0.2

    def __post_init__(self) -> None:
        _normalise_fields(self, "model")
        _check(self.name in ("default", "seed_cnn"),
               f"model.name must be 'default' or 'seed_cnn', got {self.name!r}")
        _check(len(self.widths) >= 1 and all(isinstance(w, int) and w > 0 for w in self.widths),
               f"model.widths must be positive integers, got {self.widths!r}")
        _check(0 <= float(self.dropout) < 1, f"model.dropout must be in [0, 1), got {self.dropout!r}")
        if self.name == "seed_cnn":  # the article's model is fixed: these would be ignored
            changed = [f"model.{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                       if f.name != "name" and getattr(self, f.name) != f.default]
            _check(not changed, f"{', '.join(changed)} set for model.name='seed_cnn', which is the article's model "
                                f"as published (its own widths and dropout 0.5): these apply to the default model")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes
    ----------
    epochs : int
        Upper bound; early stopping on validation loss usually ends sooner.
    batch_size : int
    learning_rate : float
        Peak learning rate of Adam.
    weight_decay : float
        Decoupled weight decay of Adam (0 disables it).
    schedule : str
        ``cosine`` (linear warm-up, then cosine decay), ``plateau`` (halve on a validation plateau) or
        ``constant``.
    warmup_epochs : int
        Epochs of the cosine schedule's linear warm-up from 1% of ``learning_rate``; ``plateau`` and
        ``constant`` start at the full rate and do not use it.
    early_stopping_patience : int
        Epochs without a better validation loss before stopping; the best weights are restored.
    min_steps_per_epoch : int
        Fewest batches in a training epoch. A training split with fewer batches than this is cycled through
        (each pass shuffled, cropped and augmented afresh, :func:`sound_tf.pipeline.training_dataset`) so
        that an epoch still makes this many updates: patience, warm-up and the schedule count epochs, and
        108 clips in batches of 32 made 3 updates an epoch, too few for augmented training to leave chance
        before early stopping ended it (README, "On a small dataset"). 1 makes every epoch one pass.
    label_smoothing : float
    class_weights : bool
        Weight the loss by inverse class frequency.
    seed : int
        Seeds splits, shuffling, initialisation and augmentation; in ``[0, 2**30)`` (TensorFlow's stateless
        ops take int32 seeds, and derived seeds add small offsets; the augmentation layers' seeds are hashed
        from it, :func:`sound_tf.augment.layer_seed`).
    shuffle_buffer : int
    """

    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: int = 2
    early_stopping_patience: int = 8
    min_steps_per_epoch: int = 16
    label_smoothing: float = 0.0
    class_weights: bool = False
    seed: int = 0
    shuffle_buffer: int = 2048

    def __post_init__(self) -> None:
        _normalise_fields(self, "train")
        _check(isinstance(self.epochs, int) and self.epochs >= 1,
               f"train.epochs must be an integer >= 1, got {self.epochs!r}")
        _check(isinstance(self.batch_size, int) and self.batch_size >= 1,
               f"train.batch_size must be an integer >= 1, got {self.batch_size!r}")
        _check(0 < float(self.learning_rate) < 1,
               f"train.learning_rate must be in (0, 1), got {self.learning_rate!r}")
        _check(float(self.weight_decay) >= 0, f"train.weight_decay must be >= 0, got {self.weight_decay!r}")
        _check(self.schedule in SCHEDULES,
               f"train.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        _check(isinstance(self.warmup_epochs, int) and self.warmup_epochs >= 0,
               f"train.warmup_epochs must be an integer >= 0, got {self.warmup_epochs!r}")
        _check(isinstance(self.early_stopping_patience, int) and self.early_stopping_patience >= 1,
               f"train.early_stopping_patience must be an integer >= 1, got {self.early_stopping_patience!r}")
        _check(isinstance(self.min_steps_per_epoch, int) and self.min_steps_per_epoch >= 1,
               f"train.min_steps_per_epoch must be an integer >= 1, got {self.min_steps_per_epoch!r}")
        _check(0 <= float(self.label_smoothing) < 1,
               f"train.label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        check_seed("train.seed", self.seed)
        _check(isinstance(self.shuffle_buffer, int) and self.shuffle_buffer >= 1,
               f"train.shuffle_buffer must be an integer >= 1, got {self.shuffle_buffer!r}")


SECTIONS: dict[str, type] = {
    "audio": AudioConfig,
    "features": FeatureConfig,
    "data": DataConfig,
    "augment": AugmentConfig,
    "model": ModelConfig,
    "train": TrainConfig,
}


@dataclass(frozen=True)
class Config:
    """Everything a run needs; saved as ``config.json`` beside every model."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        labels = self.labels
        # Built directly, labels of any type went in: a list made the config unhashable, numbers were saved as
        # numbers (from_dict then refused the file), and a line break split a name in labels.txt.
        _check(isinstance(labels, (list, tuple))
               and all(isinstance(label, str) and label.strip() and "\n" not in label and "\r" not in label
                       for label in labels),
               f"labels must be a list of class names (non-empty text without line breaks), got {labels!r}")
        object.__setattr__(self, "labels", tuple(labels))
        frame, hop = self.frame_length_samples, self.hop_length_samples
        _check(self.audio.clip_samples >= frame,
               f"audio.clip_seconds={self.audio.clip_seconds} gives {self.audio.clip_samples} samples, "
               f"fewer than one STFT frame ({frame} samples = features.frame_length_ms="
               f"{self.features.frame_length_ms})")
        _check(hop >= 1, f"features.hop_length_ms={self.features.hop_length_ms} is under one sample")
        _check(self.fmax_hz <= self.audio.sample_rate_hz / 2,
               f"features.fmax_hz={self.features.fmax_hz} exceeds the Nyquist frequency "
               f"{self.audio.sample_rate_hz / 2} of audio.sample_rate_hz={self.audio.sample_rate_hz}")
        _check(len(set(self.labels)) == len(self.labels), f"labels must be unique, got {self.labels!r}")
        fft = self.features.fft_length
        _check(fft is None or fft >= frame,
               f"features.fft_length={fft} is shorter than one frame ({frame} samples = features.frame_length_ms="
               f"{self.features.frame_length_ms} at {self.audio.sample_rate_hz} Hz); give at least "
               f"{1 << math.ceil(math.log2(frame))}, or leave it unset for the smallest power of two that fits")
        _check(float(self.features.fmin_hz) < self.fmax_hz,
               f"features.fmin_hz={self.features.fmin_hz} must be below the mel filterbank's upper edge "
               f"{self.fmax_hz:g} Hz (features.fmax_hz, or half of audio.sample_rate_hz when unset)")
        mask_bins, mels = self.augment.spec_freq_mask_max_bins, self.features.num_mel_bins
        _check(mask_bins <= mels,
               f"augment.spec_freq_mask_max_bins={mask_bins} exceeds features.num_mel_bins={mels}: one frequency "
               f"mask could blank every mel band; give at most {mels}")
        empty = self.empty_mel_bands()
        if empty:
            raise ConfigError(
                f"{len(empty)} of features.num_mel_bins={self.features.num_mel_bins} mel bands hold no FFT bin "
                f"(bands {', '.join(map(str, empty[:6]))}{', ...' if len(empty) > 6 else ''} of those between "
                f"{self.features.fmin_hz:g} and {self.fmax_hz:g} Hz are narrower than the FFT's "
                f"{self.audio.sample_rate_hz / self.fft_length_samples:.4g} Hz bins), so "
                f"their features would be constant: use fewer mel bins, a longer features.frame_length_ms or "
                f"features.fft_length, or a higher features.fmin_hz")

    # -- derived sizes -----------------------------------------------------------------------------
    @property
    def frame_length_samples(self) -> int:
        """STFT window length in samples."""
        return int(round(self.audio.sample_rate_hz * float(self.features.frame_length_ms) / 1000.0))

    @property
    def hop_length_samples(self) -> int:
        """STFT hop in samples."""
        return int(round(self.audio.sample_rate_hz * float(self.features.hop_length_ms) / 1000.0))

    @property
    def fft_length_samples(self) -> int:
        """FFT size: the configured one (at least a frame), or the next power of two that holds a frame."""
        if self.features.fft_length is not None:
            return self.features.fft_length
        return 1 << math.ceil(math.log2(self.frame_length_samples))

    def empty_mel_bands(self) -> list[int]:
        """Indices of the mel bands whose triangle (edge ``m`` to edge ``m + 2``) holds no FFT bin."""
        edges = slaney_mel_edges_hz(num_mel_bins=self.features.num_mel_bins, fmin_hz=float(self.features.fmin_hz),
                                    fmax_hz=self.fmax_hz)  # [mel_bins + 2]
        bins = np.arange(self.fft_length_samples // 2 + 1) * (self.audio.sample_rate_hz / self.fft_length_samples)
        inside = (bins[:, None] > edges[None, :-2]) & (bins[:, None] < edges[None, 2:])  # [fft_bins, mel_bins]
        return np.flatnonzero(~inside.any(axis=0)).tolist()

    @property
    def fmax_hz(self) -> float:
        """Upper edge of the mel filterbank."""
        fmax = self.features.fmax_hz
        return float(fmax) if fmax is not None else self.audio.sample_rate_hz / 2.0

    @property
    def num_frames(self) -> int:
        """Feature frames in one clip."""
        return 1 + (self.audio.clip_samples - self.frame_length_samples) // self.hop_length_samples

    @property
    def feature_shape(self) -> tuple[int, int]:
        """``(frames, mel_bins)`` of one clip's log-mel features."""
        return (self.num_frames, self.features.num_mel_bins)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def input_paths(self) -> dict[str, str]:
        """The files and folders a run reads (``data.path``, ``data.split_file``, ``augment.noise_dir``),
        by key, where set: an ``--overwrite`` must not empty a folder that holds one of them."""
        return {key: value for key, value in (("data.path", self.data.path), ("data.split_file", self.data.split_file),
                                              ("augment.noise_dir", self.augment.noise_dir)) if value is not None}

    # -- serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Config":
        """Build a config from :meth:`to_dict` output or a recipe; unknown keys are errors."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a config must be a mapping, got {type(data).__name__}")
        unknown = set(data) - set(SECTIONS) - {"labels"}
        _check(not unknown, f"unknown config section(s) {sorted(unknown)}; expected {sorted(SECTIONS)} or labels")
        kwargs: dict[str, Any] = {}
        for name, section_cls in SECTIONS.items():
            kwargs[name] = _build_section(name, section_cls, data.get(name, {}))
        labels = data.get("labels", ())
        _check(isinstance(labels, (list, tuple)) and all(isinstance(label, str) for label in labels),
               f"labels must be a list of class names, got {labels!r}")
        kwargs["labels"] = tuple(labels)
        return cls(**kwargs)

    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` (``path`` may be the file or its folder)."""
        path = Path(path)
        if path.is_dir() or path.suffix != ".json":
            path = path / CONFIG_FILENAME
        # Whole or not at all: a resumed run rewrites its config.json, and a kill half-way through left a
        # cut-short one that every later resume, evaluate and export of the run refused.
        return atomic.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        """Read a ``config.json`` (``path`` may be the file or a run/export folder holding it)."""
        path = Path(path)
        if path.is_dir():
            path = path / CONFIG_FILENAME
        if not path.is_file():
            raise ConfigError(f"{path}: no config file here (expected {CONFIG_FILENAME} from a run or export)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # UnicodeDecodeError: e.g. an audio file
            raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
        try:
            return cls.from_dict(data)
        except ConfigError as exc:  # a hand-edited value: name the file it is in
            raise ConfigError(f"{path}: {exc}") from None

    def changed_settings(self, saved: Mapping[str, Any], *, limit: int = 4) -> list[str]:
        """``["data.path: 'a' there, 'b' now", ...]``: the settings (labels aside) in which ``saved``, a
        :meth:`to_dict` of another run or search, differs from this config, at most ``limit`` of them and then
        ``"and 3 more"`` for the rest; ``[]`` when none does. Messages join them with ``"; "``."""
        now = self.to_dict()
        changed = [f"{section}.{key}: {saved[section].get(key)!r} there, {value!r} now"
                   if isinstance(saved.get(section), Mapping) else f"{section}.{key}: absent there, {value!r} now"
                   for section, values in now.items() if section != "labels" and isinstance(values, dict)
                   for key, value in values.items()
                   if not isinstance(saved.get(section), Mapping) or saved[section].get(key) != value]
        return changed[:limit] + ([f"and {len(changed) - limit} more"] if len(changed) > limit else [])

    def differences(self, saved: Mapping[str, Any], *, limit: int = 4) -> str:
        """`` (data.path: 'a' there, 'b' now; ...)``: :meth:`changed_settings` in parentheses, after a space (as a
        message's end); ``""`` when no setting differs."""
        changed = self.changed_settings(saved, limit=limit)
        return f" ({'; '.join(changed)})" if changed else ""

    def fingerprint(self, *, exclude_labels: bool = True) -> str:
        """A short hash of the settings that define a run (used to find a run to resume)."""
        data = self.to_dict()
        if exclude_labels:
            data.pop("labels", None)
        return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def _build_section(name: str, section_cls: type, values: Any) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"config section [{name}] must be a table, got {values!r}")
    known = {f.name for f in fields(section_cls)}
    unknown = set(values) - known
    if unknown:  # a recipe's or config.json's misspelt key, with the setting it is closest to, as --set gives it
        close = []
        for key in sorted(unknown):  # a key of another section is put in its own ('clip_seconds' in [data])
            if (other := _elsewhere(str(key), name)) is not None:
                close.append(f"{key!r} belongs in [{other.partition('.')[0]}]")
            elif (foreign := _edge_impulse_hint(str(key))) is not None:
                close.append(f"{key!r}: {foreign}")
            elif (match := _closest(str(key), sorted(known))) is not None:
                close.append(f"{key!r}: did you mean {match!r}?")
        hint = f" ({'; '.join(close)})" if close else ""
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in [{name}]{hint}; known keys: {sorted(known)}")
    hints = typing.get_type_hints(section_cls)
    return section_cls(**{key: _coerce(f"{name}.{key}", hints[key], value) for key, value in values.items()})


#: What ``typing.get_origin`` gives for ``X | None`` and ``Optional[X]``.
_UNION_TYPES = (typing.Union, types.UnionType)


def _coerce(key: str, hint: Any, value: Any) -> Any:
    """Turn JSON/TOML/flag values into the field's type (lists -> tuples, ints -> floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{key} cannot be unset (null): it needs a value")
    if origin in _UNION_TYPES:
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        if isinstance(value, str):  # "16,32" or "pink brown": --set text, items read as --set reads values
            value = [v if args and args[0] is str else parse_value(v) for v in value.replace(",", " ").split() if v]
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        item = args[0] if args else str
        return tuple(_coerce(key, item, v) for v in value)
    if hint is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if isinstance(value, str) and hint in (int, float):  # "16000" in a recipe or config.json: not a number
        raise ConfigError(f"{key} must be {'an integer' if hint is int else 'a number'}, got the text {value!r} "
                          f"(write numbers without quotes)")
    if hint is int:
        if isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be an integer, got {value!r}") from None
        if not as_float.is_integer():
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return int(as_float)
    if hint is float:
        if isinstance(value, (bool, np.bool_)):  # float(True) is 1.0: a probability set to true became 1 silently
            raise ConfigError(f"{key} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, os.PathLike):  # a pathlib.Path for data.path, data.cache_dir, ...
            value = os.fspath(value)
        if not isinstance(value, str):  # a list, table, number or bool would become its Python repr
            raise ConfigError(f"{key} must be text (a string in quotes), got {value!r}")
        return value
    return value


def _field_hint(dotted: str) -> Any:
    """The type of setting ``section.key`` (``None`` when there is no such setting)."""
    section, _, key = dotted.partition(".")
    section_cls = SECTIONS.get(section)
    if section_cls is None or key not in {f.name for f in fields(section_cls)}:
        return None
    return typing.get_type_hints(section_cls)[key]


_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _typed_flag_value(dotted: str, text: str, value: Any) -> Any:
    """A ``--set`` value for the setting's type: a text setting keeps the text as typed (``1e3`` stays
    ``"1e3"``, ``true`` stays ``"true"``), and a switch also takes yes/no/on/off/1/0."""
    if value is UNSET:
        return value
    hint = _field_hint(dotted)
    if hint is str or (typing.get_origin(hint) in _UNION_TYPES and set(typing.get_args(hint)) == {str, type(None)}):
        return text
    if hint is bool and isinstance(value, (str, int)) and not isinstance(value, bool):
        word = str(value).strip().lower()
        if word in _BOOL_WORDS:
            return _BOOL_WORDS[word]
    kinds = set(typing.get_args(hint)) - {type(None)} if typing.get_origin(hint) in _UNION_TYPES else {hint}
    if isinstance(value, str) and kinds and kinds <= {int, float}:  # not a number: the recipe's hint about quotes
        # ("write numbers without quotes") spoke of quotes the flag's user never typed
        raise ConfigError(f"{dotted} must be {'an integer' if kinds == {int} else 'a number'}, got {text!r}")
    return value


#: ``--set key=null`` (or ``none``): unset a setting that may be unset (e.g. a recipe's ``features.fmax_hz``).
UNSET = type("Unset", (), {"__repr__": lambda self: "null"})()


def parse_value(text: str) -> Any:
    """Parse a ``--set key=value`` string the way TOML would (numbers, booleans, lists, strings).

    ``null`` and ``none`` give :data:`UNSET`; a list or table that is not valid TOML is an error
    (anything else that is not TOML is taken as a plain string).
    """
    if text.strip().lower() in ("null", "none"):
        return UNSET
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError as exc:
        if text.lstrip().startswith(("[", "{")):
            raise ConfigError(f"{text!r} is not a valid TOML list or table ({exc})") from None
        return text


_TIME_WARP = ("sound_tf has no SpecAugment time warp, which moves one point of the time axis, stretching the frames "
              "before it and squeezing those after; the nearest is augment.stretch_probability, the whole clip's "
              "tempo from augment.stretch_min_rate to augment.stretch_max_rate, or augment.speed_probability")
_TIME_MASKS = "augment.spec_time_mask_count, the time masks per example"
_FREQ_MASKS = "augment.spec_freq_mask_count, the frequency masks per example"

#: Edge Impulse's augmentation settings, as its visual mode names them and as its expert mode passes them to its
#: SpecAugment (``mT_num_time_masks=...``), lowercased -> the sound_tf settings that do it. A recipe or ``--set``
#: that spells one so is told these, where the closest spelling named another setting: ``mF_num_freq_masks`` was
#: asked 'did you mean spec_freq_mask_max_bins?', ``mask_time_bands`` the same, and ``enable_time_warp`` 'did you
#: mean enabled?', which turns all augmentation on.
EDGE_IMPULSE_KEYS: dict[str, str] = {
    "add_noise": "Edge Impulse's 'add noise' is augment.noise_probability, mixed at an SNR drawn from "
                 "augment.noise_min_snr_db to augment.noise_max_snr_db, lower for more noise",
    "mask_time_bands": f"Edge Impulse's 'mask time bands' is {_TIME_MASKS}; each is up to "
                       f"augment.spec_time_mask_max_fraction of the clip's frames",
    "mask_freq_bands": f"Edge Impulse's 'mask frequency bands' is {_FREQ_MASKS}; each is up to "
                       f"augment.spec_freq_mask_max_bins mel bins",
    "mask_frequency_bands": f"Edge Impulse's 'mask frequency bands' is {_FREQ_MASKS}; each is up to "
                            f"augment.spec_freq_mask_max_bins mel bins",
    "mt_num_time_masks": f"Edge Impulse's mT_num_time_masks is {_TIME_MASKS}",
    "t_time_mask_max_consecutive": "Edge Impulse's T_time_mask_max_consecutive, the widest time mask in frames, is "
                                   "augment.spec_time_mask_max_fraction, a fraction of the clip's frames: T frames of "
                                   "a clip of N frames is T / N, N being the clip's length over features.hop_length_ms",
    "mf_num_freq_masks": f"Edge Impulse's mF_num_freq_masks is {_FREQ_MASKS}",
    "f_freq_mask_max_consecutive": "Edge Impulse's F_freq_mask_max_consecutive is augment.spec_freq_mask_max_bins, "
                                   "in mel bins",
    "warp_time_axis": _TIME_WARP,
    "enable_time_warp": _TIME_WARP,
    "w_time_warp_max_distance": _TIME_WARP,
    "time_warp": _TIME_WARP,
    "mask_with_mean": "SpecAugment's masks here always hold 0 after the model's normalisation, each mel bin's mean "
                      "over the training clips, near what Edge Impulse's mask_with_mean=true fills in; no setting "
                      "changes it",
}


def _edge_impulse_hint(name: str) -> str | None:
    """What sound_tf calls Edge Impulse's augmentation setting ``name`` (any case; spaces or dashes for
    underscores), from :data:`EDGE_IMPULSE_KEYS`, else ``None``."""
    return EDGE_IMPULSE_KEYS.get(re.sub(r"[\s-]+", "_", name.strip().lower()))


def _closest(name: str, candidates: list[str]) -> str | None:
    """The candidate ``name`` is likeliest a misspelling of (``difflib``'s ratio at least 0.5), else ``None``."""
    import difflib

    found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return found[0] if found else None


def _elsewhere(name: str, section: str) -> str | None:
    """``audio.clip_seconds`` for ``clip_seconds`` in another section (``[data]``): a setting of that very name in
    another section, which a key put in the wrong one means, else ``None``. ``--set data.clip_seconds=0.5`` was
    asked 'did you mean data.demo_clips_per_class?', the closest spelling in its own section."""
    return next((f"{other}.{name}" for other, section_cls in SECTIONS.items()
                 if other != section and name in {f.name for f in fields(section_cls)}), None)


def _unknown_settings(items: Mapping[str, str]) -> str:
    """``""``, or what is wrong with each ``--set`` flag (``items``: its key -> the flag's text) that names no
    setting, all in one message, each with its flag and the setting its key is closest to, if any, then the
    sections, or the keys of a section, where no close setting was found."""
    keys = {section: [f.name for f in fields(section_cls)] for section, section_cls in SECTIONS.items()}
    problems, sections = [], set()
    for key, item in items.items():
        section, dot, name = key.partition(".")
        if name in keys.get(section, ()):
            continue
        wanted = name if dot else key  # 'epochs' for train.epochs too
        close = [match for match in [_elsewhere(wanted, section)] if match is not None and dot]  # in another section
        close = close or [f"{section}.{match}" for match in [_closest(wanted, keys.get(section, []))]
                          if match is not None]
        close = close or [f"{other}.{match}" for other, names in keys.items()  # a key of another section
                          if (match := _closest(wanted, names)) is not None][:1]
        hint = f" (did you mean {close[0]}?)" if close else ""
        if (foreign := _edge_impulse_hint(wanted)) is not None:  # closer in meaning than any spelling
            close, hint = [foreign], f" ({foreign})"
        if section in SECTIONS and name:
            problems.append(f"--set {item}: unknown key {name!r} in [{section}]{hint}")
        elif dot and section and name:
            problems.append(f"--set {item}: no section {section!r}{hint}")
        else:
            problems.append(f"--set {item}: {key!r} is not SECTION.KEY{hint}")
        if not close:
            sections.add(section if section in SECTIONS and name else None)
    if None in sections:
        problems.append(f"sections: {', '.join(SECTIONS)}")
    problems += [f"known keys in [{section}]: {', '.join(f.name for f in fields(SECTIONS[section]))}"
                 for section in sorted(sections - {None})]
    return "; ".join(problems)


def parse_set_flags(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["train.epochs=3", "model.widths=[16, 32]"]`` (``--set`` flags) -> ``{"train.epochs": 3, ...}``.

    Raises
    ------
    ConfigError
        A flag is not ``SECTION.KEY=VALUE`` or sets ``labels``; its key names no setting (every such flag is
        named, each with the setting its key is closest to); its value does not fit the setting.
    """
    keys: dict[str, str] = {}
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects SECTION.KEY=VALUE, got {item!r}")
        if key.strip() == "labels":  # a run would replace them with the data's without a word
            raise ConfigError(f"--set {item}: the classes come from the data (its class folders or manifest), "
                              f"so labels cannot be set")
        keys[key.strip()] = item.strip()  # the last flag of a key is the one kept
    unknown = _unknown_settings(keys)
    if unknown:  # all of them at once: fixing one misspelt key let the next refuse the run
        raise ConfigError(unknown)
    overrides: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            overrides[key.strip()] = _typed_flag_value(key.strip(), value.strip(), parse_value(value.strip()))
        except ConfigError as exc:
            raise ConfigError(f"--set {item}: {exc}") from None
    return overrides


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """Return ``config`` with dotted keys replaced, e.g. ``{"train.epochs": 3}``.

    ``None`` values are ignored, so unset command-line flags can be passed straight through; :data:`UNSET`
    unsets a key (an error unless it may be unset).
    """
    if not isinstance(config, Config):  # else "'dict' object has no attribute 'to_dict'"
        raise ConfigError(f"apply_overrides expects a Config as its first argument, got {type(config).__name__}")
    return Config.from_dict(_overridden(config.to_dict(), overrides))


def _overridden(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (a :meth:`Config.to_dict`, changed in place) with the dotted ``overrides``
    (see :func:`apply_overrides`)."""
    if not isinstance(overrides, Mapping):  # else "'list' object has no attribute 'items'"
        raise ConfigError(f"overrides must be a mapping of 'section.key' to a value, e.g. {{'train.epochs': 3}}, "
                          f"got {type(overrides).__name__}")
    for dotted, value in overrides.items():
        _check(isinstance(dotted, str), f"override key {dotted!r} must be text like 'train.epochs'")
        if value is None:
            continue
        value = None if value is UNSET else value
        if dotted == "labels":
            data["labels"] = list(value) if isinstance(value, (list, tuple)) else value  # checked by from_dict
            continue
        section, _, key = dotted.partition(".")
        _check(section in SECTIONS and key, f"override {dotted!r} must look like section.key with a section "
                                            f"in {sorted(SECTIONS)}")
        data.setdefault(section, {})[key] = list(value) if isinstance(value, tuple) else value
    return data


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a TOML recipe into a dict of config sections (``name``/``description`` keys dropped)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: recipe not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # UnicodeDecodeError: e.g. an audio file
        raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
    for key in ("name", "description"):
        data.pop(key, None)
    if "labels" in data:
        raise ConfigError(f"{path}: a recipe cannot set labels: the classes come from the data (its class folders "
                          f"or manifest)")
    return data


def config_from_recipe(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the recipe at ``path`` (if any), then ``overrides`` (dotted keys).

    ``path`` may also be a bare name (``esc50``) or a path into the repository's ``pipelines/``
    (``pipelines/esc50.toml``) from any folder, as ``--pipeline`` takes it (:func:`resolve_recipe`).
    """
    config = Config()
    if path is not None:
        path = resolve_recipe(path)
        recipe = load_recipe(path)  # its errors name the file
        try:
            config = Config.from_dict(recipe)
        except ConfigError as exc:
            # Valid once the flags apply (a recipe's fmax_hz=10000 with --sample-rate 22050, checked
            # against the default 16 kHz alone): the recipe and the flags are one setting.
            try:
                merged = {name: dict(values) if isinstance(values, Mapping) else values
                          for name, values in recipe.items()}
                return Config.from_dict(_overridden(merged, overrides or {}))
            except ConfigError as merged_exc:
                # Another problem once the flags apply (a typo in a --set key, --epochs 0): that one, as a
                # recipe valid alone reports it; the recipe's own, checked without the flags, may be gone.
                if str(merged_exc) != str(exc):
                    raise merged_exc from None
            raise ConfigError(f"{path}: {exc}") from exc
    return apply_overrides(config, overrides or {})


def saved_fingerprint(folder: str | Path) -> str | None:
    """The fingerprint of ``folder``'s ``config.json`` as this version reads it (``None`` if it is unreadable).

    A run or cross-validation started by an older sound_tf recorded the fingerprint of its settings then;
    read today, a setting added since takes its default, and the fingerprint is that of today's same settings.
    """
    try:
        return as_made_today(Config.load(folder)).fingerprint()
    except (ConfigError, OSError, ValueError):
        return None


def as_made_today(config: Config) -> Config:
    """A saved ``config`` as the commands make it today, to recognise a run or search begun before a change.

    A relative ``data.cache_dir`` (``--cache-dir cache``) was saved as typed until the commands made it absolute
    as they make the other paths; it is read from the current folder, as it was then, so the same command run
    from the same folder still resumes. An absolute ``data.path``, ``data.split_file`` or ``augment.noise_dir``
    given by ``--set`` or a recipe was saved as typed (``/data/noise/``, ``/data/./noise``) until the commands
    wrote it as ``--data``'s is (``/data/noise``).
    """
    values = {key: getattr(getattr(config, key.split(".")[0]), key.split(".")[1]) for key in ABSOLUTE_KEYS}
    changes = {key: normal for key, value in values.items()  # a relative path key stays as saved; the cache does not
               if (key == "data.cache_dir" or isinstance(value, str) and os.path.isabs(value))
               and (normal := absolute_if_changed(value)) is not None}
    return apply_overrides(config, changes) if changes else config


def absolute_path(path: str | os.PathLike) -> str:
    """``path`` with ``~`` expanded, read from the current folder and written plainly (no ``.``, ``..``, doubled or
    trailing ``/``): how the commands keep the paths they save, so that a run is recognised from any folder and
    any spelling of them."""
    return os.path.abspath(os.path.expanduser(path))


def absolute_if_changed(path: object) -> str | None:
    """:func:`absolute_path` of ``path`` when that is another spelling: a relative path, one that begins with ``~``,
    or an absolute one spelt with ``.``, ``..``, doubled or trailing ``/``; ``None`` when ``path`` needs no change:
    written so already, empty, or no path at all (``None``, a number)."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        return None
    absolute = absolute_path(path)
    return None if absolute == os.fspath(path) else absolute


def replace_section(config: Config, section: str, **changes: Any) -> Config:
    """``dataclasses.replace`` for one section of a frozen config."""
    return replace(config, **{section: replace(getattr(config, section), **changes)})


def find_repo_toml(name: str | Path, folder: Path, what: str) -> Path:
    """A TOML file given by path, or by bare name (``esc50``, ``esc50.toml``) in one of the repository's
    data folders (``pipelines/``, ``tuning/``, ``export/``); the error lists the names that exist."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = folder / (path.name if path.suffix == ".toml" else f"{path.name}.toml")
    # Only a bare name, or one inside the folder's own name (pipelines/esc50.toml from any folder), falls
    # back to the repository's file: a path elsewhere that does not exist is an error, not another file.
    bare = "/" not in str(name) and os.sep not in str(name)  # ./esc50.toml names a file here, and only that
    if (bare or path.parent == Path(folder.name)) and candidate.is_file():
        return candidate
    known = sorted(p.stem for p in folder.glob("*.toml"))
    raise ConfigError(f"{name}: {what} not found (looked at {path} and {candidate}; known: {known})")


def resolve_recipe(name: str | None) -> Path | None:
    """A recipe path, or a bare name looked up in the repository's pipelines/ folder."""
    return None if name is None else find_repo_toml(name, REPO_PIPELINES, "recipe")
