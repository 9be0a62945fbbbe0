"""The tunable model: a search space read from a TOML recipe and :class:`SoundHyperModel`.

A search space (``tuning/*.toml``) lists hyperparameters, each tied to a dotted config key; a trial's
values become :func:`~sound_tf.config.apply_overrides` overrides, so every trial is an ordinary
:class:`~sound_tf.config.Config` (saved as ``config.json`` in its trial folder) and the best one trains
into an ordinary run folder. ``SoundHyperModel.build(hp)`` is independent of the search: it works on a
fresh ``keras_tuner.HyperParameters()`` and returns a compiled model.

Recipe layout::

    name = "default"
    [search]                      # how to search (see SearchSettings)
    objective = "val_loss"
    tuner = "bayesian"
    max_trials = 20
    epochs = 12
    [fixed]                       # config overrides applied to every trial and to the final model
                                  # (train.epochs and train.early_stopping_patience: the final model's only;
                                  # train.epochs also caps [search] epochs)
    "train.schedule" = "cosine"
    [hp.learning_rate]            # one table per hyperparameter; its name is the table name
    key = "train.learning_rate"
    min = 3e-4
    max = 1e-2
    sampling = "log"

A hyperparameter is a choice (``values = [...]``), an integer or float range (``min``, ``max``,
optional ``step``, ``sampling = "linear" | "log"``; with ``log`` a ``step`` is a factor > 1: ``min``, ``min *
step``, ...) or a ``type = "boolean"``. Its ``mode`` says how the
drawn value reaches the config:

- ``set`` (default): ``key`` takes the value.
- ``depth``: ``key`` (a tuple such as ``model.widths``) takes the first ``value`` entries of ``base``.
- ``scale``: every key in ``keys`` is its current value times the drawn value; integers (and tuples of
  integers such as widths) are rounded to the nearest multiple of ``round_to``; ``clip`` bounds keys,
  e.g. probabilities to ``[0, 1]`` or widths to at least 8 channels.

Modes apply in the order set -> depth -> scale, so a width multiplier scales the widths chosen by depth.

Every trial trains with ``[search]``'s ``epochs`` (capped by the final model's ``train.epochs``, ``[fixed]``'s
when it sets it: :func:`sound_tf.tune.trial_epochs`) and
``early_stopping_patience``, whatever the space sets (:data:`TRIAL_KEYS`), so no hyperparameter may set
``train.epochs`` or ``train.early_stopping_patience``: all its trials would be the same, and the best run would
train with a value no trial measured. The final model takes them from the pipeline recipe and flags, or from
``[fixed]`` when it sets them (there they reach the final model only).

A hyperparameter none of whose values changes a trial with this run's settings (pipeline recipe, flags,
``[fixed]``) is not searched (:meth:`SearchSpace.inert`, :meth:`SearchSpace.without`): ``augment_strength``
when augmentation is off (``--no-augment``) or when the probabilities it scales are all 0, a setting of a
transform whose probability is 0 (``augment.gain_max_db`` with ``augment.gain_probability = 0``: the transform
never runs, :data:`TRANSFORM_SETTINGS`) or that another leaves unread (``augment.spec_freq_mask_max_bins`` with
``augment.spec_freq_mask_count = 0``, ``augment.shift_mode`` with ``augment.shift_max_clip_fraction = 0``,
``augment.noise_colors`` with an ``augment.noise_dir``, a ``*_domain`` whose transforms are all at probability 0:
:data:`IDLE_WHILE`), a scale whose keys clip or round to the same value at every factor, a
choice of one value. Every value of it gives the same settings, so KerasTuner is not given it: it neither
draws nor records it.

Examples
--------
>>> space = SearchSpace.from_toml("tuning/tiny.toml")
>>> hypermodel = SoundHyperModel(Config(labels=("a", "b")), space)
>>> model = hypermodel.build(keras_tuner.HyperParameters())  # the space's default values
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import keras
import keras_tuner
import numpy as np

from . import atomic, augment, pipeline
from .config import REPO_ROOT, SECTIONS, Config, apply_overrides, check_seed, find_repo_toml
from .errors import ConfigError, SoundTFError, is_whole
from .models import build_model
from .trainer import (EpochLog, InputThreadPriority, compile_for_training, feature_statistics, steps_per_epoch,
                      training_datasets)

REPO_TUNING = REPO_ROOT / "tuning"
OBJECTIVES = {"val_loss": "min", "val_accuracy": "max"}
TUNERS = ("hyperband", "bayesian", "random")
MODES = ("set", "depth", "scale")
KINDS = ("choice", "int", "float", "boolean")
_MODE_ORDER = {mode: index for index, mode in enumerate(MODES)}
_HP_KEYS = {"key", "keys", "mode", "type", "values", "min", "max", "step", "sampling", "default", "base",
            "round_to", "clip", "description"}
_SEARCH_KEYS = {"objective", "tuner", "max_trials", "epochs", "early_stopping_patience", "hyperband_factor",
                "initial_points", "seed"}
#: Most values of a stepped range enumerated to tell whether it changes a trial (more: its ends, middle and default).
_MAX_CANDIDATES = 256
#: Most value combinations of the hyperparameters sharing a config section tried for that: more, and they are searched.
_MAX_COMBINATIONS = 4096
#: Config keys every trial takes from ``[search]``, whatever the space sets (:attr:`SoundHyperModel.trial_overrides`):
#: key -> the ``[search]`` setting. A hyperparameter on one would draw values no trial trains with.
TRIAL_KEYS = {"train.epochs": "epochs", "train.early_stopping_patience": "early_stopping_patience"}
_ABSENT = object()  # a hyperparameter left out of a combination (the settings without it)
#: :meth:`SearchSpace.inert`'s last result, by space and config (see there).
_INERT_MEMO: dict[str, dict[str, "NotSearched"]] = {}


def _is_data_key(key: str) -> bool:
    """A key a search may not set: every trial trains on the data decoded once, at the recipe's rate."""
    return key == "audio.sample_rate_hz" or key.startswith("data.")


def _is_real(value: Any) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value: Any) -> Any:
    """``value`` with numpy numbers and arrays (at any depth) as Python numbers and lists, as TOML gives them:
    a space built in Python refused ``np.int64`` choices, took ``np.int64`` bounds for a float range and
    accepted ``np.float64`` ones."""
    if isinstance(value, Mapping):
        return {key: _plain(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(inner) for inner in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def _off_grid(value: float, low: float, high: float, step: float, log: bool) -> str:
    """Empty when ``value`` is one of a stepped range's values (``low + k * step``, or ``low * step ** k`` when
    ``log``), else those values in short, ``value`` and the one or two values nearest it: ``(16, 24, 32, ..., 64),
    got 20: the nearest are 16 and 24``."""
    position = math.log(value / low) / math.log(step) if log and value > 0 else (value - low) / step
    if abs(position - round(position)) <= 1e-9 * max(1.0, abs(position)):
        return ""
    at = (lambda k: low * step ** k) if log else (lambda k: low + k * step)
    count = math.floor(math.log(high / low) / math.log(step) + 1e-9) if log else math.floor((high - low) / step + 1e-9)
    shown = lambda v: f"{v:.6g}"  # 0.1 * 3 is 0.30000000000000004
    grid = ", ".join(shown(at(k)) for k in range(min(count, 2) + 1)) + (
        f", ..., {shown(at(count))}" if count > 3 else f", {shown(at(count))}" if count == 3 else "")
    nearest = [shown(at(k)) for k in (math.floor(position), math.ceil(position)) if 0 <= k <= count]
    return (f"({grid}), got {value!r}: the nearest "
            f"{'are ' + ' and '.join(nearest) if len(nearest) > 1 else 'is ' + nearest[0]}")


def _fail(source: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {message}")


#: The top-level keys of a space's TOML.
_TOP_KEYS = frozenset({"name", "description", "search", "fixed", "hp"})


def _unknown_keys(unknown: set[str], known: Any) -> str:
    """``unknown`` listed, each with the known key it likeliest misspells: ``['max_trial'] ('max_trial': did you
    mean 'max_trials'?)``, as config's sections name theirs."""
    import difflib

    close = [f"{key!r}: did you mean {found[0]!r}?" for key in sorted(map(str, unknown))
             for found in [difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)] if found]
    return f"{sorted(map(str, unknown))}" + (f" ({'; '.join(close)})" if close else "")


def config_value(config: Config, key: str) -> Any:
    """The value of a dotted key such as ``model.widths`` (``ConfigError`` for unknown keys)."""
    section, _, name = key.partition(".")
    if section not in SECTIONS or name not in {f.name for f in dataclasses.fields(SECTIONS[section])}:
        raise ConfigError(f"unknown config key {key!r}; expected section.key with a section in {sorted(SECTIONS)} "
                          f"and a field of that section")
    return getattr(getattr(config, section), name)


#: Each transform of :class:`~sound_tf.config.AugmentConfig`, as the log names it: its probability field and the
#: fields only it reads. At probability 0 it never runs, and training is bit for bit the same whatever those are,
#: in either domain (``test_a_transform_at_probability_0_reads_none_of_its_settings`` in tests/test_augment.py).
#: Not among them: the ``*_domain`` settings, which place whole groups of transforms (the pipeline's steps, the
#: model's layers and their draws: :data:`IDLE_WHILE` leaves one out only while every transform it places is at
#: probability 0), and ``noise_dir``, a path naming input data (it keeps counting, although nothing reads the
#: folder while noise is off: :func:`sound_tf.augment.reads_noise_dir`).
TRANSFORM_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "time shift": ("shift_probability", ("shift_max_clip_fraction", "shift_mode")),
    "speed change": ("speed_probability", ("speed_min_factor", "speed_max_factor")),
    "time stretch": ("stretch_probability", ("stretch_min_rate", "stretch_max_rate")),
    "pitch shift": ("pitch_probability", ("pitch_min_semitones", "pitch_max_semitones")),
    "gain": ("gain_probability", ("gain_min_db", "gain_max_db")),
    "noise": ("noise_probability", ("noise_min_snr_db", "noise_max_snr_db", "noise_colors")),
    "SpecAugment": ("spec_probability", ("spec_freq_mask_count", "spec_freq_mask_max_bins", "spec_time_mask_count",
                                         "spec_time_mask_max_fraction")),
    "mixup": ("mixup_probability", ("mixup_alpha",)),
}


@dataclass(frozen=True)
class Idle:
    """``augment`` settings training does not read while other ``augment`` settings have given values.

    Configs that have every ``when`` value and agree outside ``settings`` train bit for bit alike (each rule of
    :data:`IDLE_WHILE` is proven so in tests/test_augment.py). ``settings`` may hold ``when``'s own fields: a
    transform at probability 0 and one without masks are both "SpecAugment is off", so both leave out all its
    settings and compare equal (:func:`_in_effect`).

    Attributes
    ----------
    names : tuple of str
        What is idle then, as the log names it (transforms of :data:`TRANSFORM_SETTINGS`, or parts of one).
    state : str
        How, for the log: ``"off"``, or a phrase that follows the names (``"moves clips by 0 samples"``).
    when : tuple of (str, Any)
        ``augment`` field and its value (:data:`SET`: any but ``None``).
    settings : tuple of str
        The ``augment`` fields not read then.
    """

    names: tuple[str, ...]
    state: str
    when: tuple[tuple[str, Any], ...]
    settings: tuple[str, ...]

    def holds(self, config: Config) -> bool:
        """Whether every field of :attr:`when` has its value in ``config``."""
        return all(_has(getattr(config.augment, name), value) for name, value in self.when)


class _Set:
    """:data:`SET`."""

    def __repr__(self) -> str:
        return "SET"


#: An :class:`Idle` condition's value that means "set": anything but ``None`` (``augment.noise_dir``, a folder).
SET = _Set()


def _has(value: Any, wanted: Any) -> bool:
    """Whether a setting's ``value`` is ``wanted`` as an :class:`Idle` condition means it (:data:`SET`: not None)."""
    return value is not None if wanted is SET else value == wanted


def _conditions_text(when: Mapping[str, Any]) -> str:
    """``augment.a = 0, augment.noise_dir set``: :class:`Idle` conditions for the log."""
    return ", ".join(f"augment.{name} set" if value is SET else _settings_text({f"augment.{name}": value})
                     for name, value in when.items())


#: Each ``*_domain`` setting of :class:`~sound_tf.config.AugmentConfig` and the transforms it places.
DOMAIN_TRANSFORMS = {"rescale_domain": ("speed change", "time stretch", "pitch shift"),
                     "shift_gain_domain": ("time shift", "gain"), "noise_domain": ("noise",),
                     "mixup_domain": ("mixup",)}
#: Every rule by which training leaves ``augment`` settings unread (see :class:`Idle`), most common first: a
#: transform at probability 0 (:data:`TRANSFORM_SETTINGS`, its probability too), SpecAugment without masks (both
#: counts 0: :func:`sound_tf.augment.spec_augment_layer` builds none), a mask width without masks of its kind
#: (the layer draws ``[batch, 0]`` bands: no width is read, and the draws of the other kind are the same), the
#: shift mode with a shift range of 0 (a roll by 0 and a zero-filled shift by 0 give the clip back), the noise
#: colours with a noise folder (its recordings are mixed in, nothing is generated), and a domain with every
#: transform it places at probability 0 (the pipeline's steps and the model's layers are the same either way).
IDLE_WHILE: tuple[Idle, ...] = (
    *(Idle((name,), "off", ((probability, 0),), (probability, *names))
      for name, (probability, names) in TRANSFORM_SETTINGS.items()),
    Idle(("SpecAugment",), "off", (("spec_freq_mask_count", 0), ("spec_time_mask_count", 0)),
         ("spec_probability", *TRANSFORM_SETTINGS["SpecAugment"][1])),
    Idle(("SpecAugment's frequency masking",), "off", (("spec_freq_mask_count", 0),), ("spec_freq_mask_max_bins",)),
    Idle(("SpecAugment's time masking",), "off", (("spec_time_mask_count", 0),), ("spec_time_mask_max_fraction",)),
    Idle(("time shift",), "moves clips by 0 samples", (("shift_max_clip_fraction", 0),), ("shift_mode",)),
    Idle(("noise",), "comes from the recordings of augment.noise_dir", (("noise_dir", SET),), ("noise_colors",)),
    *(Idle(names, "off", tuple((TRANSFORM_SETTINGS[name][0], 0) for name in names), (domain,))
      for domain, names in DOMAIN_TRANSFORMS.items()),
)


def _idle_rules(key: str) -> list[Idle]:
    """The rules of :data:`IDLE_WHILE` that leave ``key`` (``augment.<setting>``) unread, but for those that it is a
    condition of (a setting does not make itself unread)."""
    section, _, name = key.partition(".")
    if section != "augment":
        return []
    return [rule for rule in IDLE_WHILE if name in rule.settings and name not in dict(rule.when)]


def _in_effect(config: Config) -> str:
    """What of ``config`` a trial trains with, as text to compare: all of it, but with augmentation off
    (``augment.enabled = false``) none of the other ``augment.*`` settings is read, and of the others none that a
    rule of :data:`IDLE_WHILE` leaves unread (``augment.gain_max_db`` with ``augment.gain_probability = 0``,
    ``augment.spec_freq_mask_max_bins`` with ``augment.spec_freq_mask_count = 0``)."""
    data = config.to_dict()
    if not config.augment.enabled:
        data["augment"] = {"enabled": False}
    else:
        for rule in IDLE_WHILE:
            if rule.holds(config):
                for name in rule.settings:
                    data["augment"].pop(name, None)
    return json.dumps(data, sort_keys=True, default=str)


def _listed(keys: Sequence[str]) -> str:
    return ", ".join(keys[:-1]) + f" and {keys[-1]}" if len(keys) > 1 else keys[0]


def _settings_text(settings: Mapping[str, Any]) -> str:
    """``a.b = 1, c.d = [8, 16]`` (numbers as short as they read)."""
    def shown(value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(shown(v) for v in value) + "]"
        return f"{value:g}" if isinstance(value, float) else repr(value)
    return ", ".join(f"{key} = {shown(value)}" for key, value in settings.items())


def _is_zero(value: Any) -> bool:
    return all(_is_zero(v) for v in value) if isinstance(value, (list, tuple)) else value == 0


@dataclass(frozen=True)
class NotSearched:
    """A hyperparameter that changes nothing in a run (see :meth:`SearchSpace.inert`).

    Attributes
    ----------
    held : Any
        The value its trials are given (any of its values gives the same settings); ``None`` when every value
        leaves the settings as they are without it, so it is not applied at all (the base config's values).
    why : str
        What makes every value the same, for the log.
    """

    held: Any
    why: str


@dataclass(frozen=True)
class HyperParam:
    """One hyperparameter of a search space and how its value reaches the config.

    Attributes
    ----------
    name : str
        The KerasTuner name (a column of ``trials.csv``).
    keys : tuple of str
        Dotted config keys it controls (one, except for ``scale``).
    mode : str
        ``set``, ``depth`` or ``scale`` (see the module docstring).
    kind : str
        ``choice``, ``int``, ``float`` or ``boolean``.
    values : tuple or None
        Choices.
    min_value, max_value, step : float or None
        Range of ``int`` and ``float`` hyperparameters.
    sampling : str
        ``linear`` or ``log`` (ranges).
    default : Any
        Value of the untuned model; ``None`` means the base config's value (``set``), the base
        length (``depth``) or 1 (``scale``) when the space holds it.
    base : tuple of int or None
        ``depth``: the full list the first ``value`` entries are taken from.
    round_to : int
        ``scale``: integers are rounded to the nearest multiple of this.
    clip : dict
        ``scale``: key -> (low, high) bounds of the scaled value.
    """

    name: str
    keys: tuple[str, ...]
    mode: str = "set"
    kind: str = "choice"
    values: tuple[Any, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    step: float | None = None
    sampling: str = "linear"
    default: Any = None
    base: tuple[int, ...] | None = None
    round_to: int = 1
    clip: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any], source: str) -> "HyperParam":
        """Validate one ``[hp.<name>]`` table of a recipe."""
        where = f"{source} [hp.{name}]"
        if not isinstance(table, Mapping):
            raise _fail(where, f"must be a table, got {table!r}")
        unknown = set(table) - _HP_KEYS
        if unknown:
            raise _fail(where, f"unknown key(s) {_unknown_keys(unknown, _HP_KEYS)}; known keys: {sorted(_HP_KEYS)}")
        mode = table.get("mode", "set")
        if mode not in MODES:
            raise _fail(where, f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if ("key" in table) == ("keys" in table):
            raise _fail(where, "give exactly one of key = \"section.name\" or keys = [...]")
        keys = (table["key"],) if "key" in table else table["keys"]
        if isinstance(keys, str) or not isinstance(keys, (list, tuple)) or not keys \
                or not all(isinstance(k, str) for k in keys):
            raise _fail(where, f"keys must be a non-empty list of \"section.name\" strings, got {keys!r}")
        if mode != "scale" and len(keys) != 1:
            raise _fail(where, f"mode {mode!r} controls one key, got {list(keys)!r}")
        for key in keys:
            try:
                current = config_value(Config(), key)
            except ConfigError as exc:
                raise _fail(where, str(exc)) from None
            if _is_data_key(key):
                raise _fail(where, f"{key} cannot be searched: every trial trains on the same data, decoded "
                                   f"once; set it with --set or in the pipeline recipe")
            if key in TRIAL_KEYS:  # every trial trained alike, and the final model took a value no trial measured
                raise _fail(where, f"{key} cannot be searched: trials take their epochs and patience from [search] "
                                   f"({', '.join(TRIAL_KEYS.values())}) whatever value is drawn, and the final model "
                                   f"from the pipeline recipe's {_listed(list(TRIAL_KEYS))} (or --epochs, --set); "
                                   f"set them there")
            numbers = current if isinstance(current, (list, tuple)) else [current]
            if mode == "scale" and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
                raise _fail(where, f"mode \"scale\" multiplies numbers, and {key} is {current!r}")
            if mode == "depth" and not isinstance(current, (list, tuple)):  # was a TypeError traceback mid-search
                raise _fail(where, f"mode \"depth\" sets a list (such as model.widths) to the first entries of base, "
                                   f"and {key} is {current!r}")

        kind = table.get("type")
        if kind is None:
            if "values" in table:
                kind = "choice"
            elif "min" in table and "max" in table:
                numbers = [table["min"], table["max"], table.get("step", 1)]
                kind = "int" if all(isinstance(v, int) and not isinstance(v, bool) for v in numbers) else "float"
            else:
                raise _fail(where, "give values = [...], min and max, or type = \"boolean\"")
        if kind not in KINDS:
            raise _fail(where, f"type must be one of {', '.join(KINDS)}, got {kind!r}")

        values = min_value = max_value = step = None
        sampling = table.get("sampling", "linear")
        if sampling not in ("linear", "log"):
            raise _fail(where, f"sampling must be linear or log, got {sampling!r}")
        if kind == "choice":
            values = table.get("values")
            if not isinstance(values, (list, tuple)) or not values:
                raise _fail(where, f"values must be a non-empty list, got {values!r}")
            if not all(isinstance(v, (bool, int, float, str)) for v in values):
                raise _fail(where, f"values must be numbers, strings or booleans, got {values!r}")
            if any(isinstance(v, float) for v in values) and all(isinstance(v, (int, float)) and not
                                                                 isinstance(v, bool) for v in values):
                values = [float(v) for v in values]  # KerasTuner wants one type per choice
            if len({type(v) for v in values}) != 1 or len(set(values)) != len(values):
                raise _fail(where, f"values must be distinct and of one type, got {values!r}")
            values = tuple(values)
        elif kind in ("int", "float"):
            try:
                min_value, max_value = float(table["min"]), float(table["max"])
                step = float(table["step"]) if "step" in table else None
            except (KeyError, TypeError, ValueError):
                raise _fail(where, f"a {kind} range needs numeric min and max, got min={table.get('min')!r}, "
                                   f"max={table.get('max')!r}, step={table.get('step')!r}") from None
            if not all(math.isfinite(v) for v in (min_value, max_value, 1.0 if step is None else step)):
                raise _fail(where, f"a {kind} range needs finite min, max and step, got min={min_value}, "
                                   f"max={max_value}, step={step}")  # nan/inf: a trial's draw crashed
            if not min_value < max_value:  # read 'needs min < max and step > 0, ..., step=None' without a step
                single = f" (one value: write values = [{table['min']!r}])" if min_value == max_value else ""
                raise _fail(where, f"needs min < max, got min={table['min']!r}, max={table['max']!r}{single}")
            if step is not None and step <= 0:
                raise _fail(where, f"needs step > 0, got step={table['step']!r}")
            if sampling == "log" and min_value <= 0:
                raise _fail(where, f"log sampling needs min > 0, got {min_value}")
            if sampling == "log" and step is not None and step <= 1:  # was KerasTuner's ValueError traceback
                raise _fail(where, f"with log sampling, step is a factor (min, min * step, min * step^2, ...) "
                                   f"and must be > 1, got step={step}")
            if kind == "int" and not all(float(v).is_integer() for v in (min_value, max_value, step or 1)):
                raise _fail(where, f"an int range needs integer min, max and step, got {table!r}")

        base = None
        if mode == "depth":
            base = table.get("base")
            if not isinstance(base, (list, tuple)) or not all(isinstance(w, int) and w > 0 for w in base):
                raise _fail(where, f"mode \"depth\" needs base = [positive integers], got {base!r}")
            depths = values if kind == "choice" else (min_value, max_value)
            if kind not in ("choice", "int") or not all(isinstance(d, (int, float)) and float(d).is_integer()
                                                       and 1 <= d <= len(base) for d in depths):
                raise _fail(where, f"depths must be integers in [1, len(base)={len(base)}], got {list(depths)!r}")
            base = tuple(base)
        round_to = table.get("round_to", 1)
        if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:  # true is not 1
            raise _fail(where, f"round_to must be an integer >= 1, got {round_to!r}")
        clip = table.get("clip", {})
        if not isinstance(clip, Mapping) or set(clip) - set(keys) or not all(
                isinstance(b, (list, tuple)) and len(b) == 2 and all(_is_real(x) for x in b) and b[0] <= b[1]
                for b in clip.values()):
            raise _fail(where, f"clip must map some of keys {list(keys)} to [low, high], got {clip!r}")
        if mode == "scale" and (kind not in ("choice", "float", "int")
                                or kind == "choice" and not all(_is_real(v) for v in values)):
            # values = ["x", "y"] passed, and the first trial failed with float('x')'s ValueError traceback
            raise _fail(where, f"mode \"scale\" multiplies keys by numbers, got "
                               f"{list(values) if kind == 'choice' else 'type = ' + repr(kind)}")
        default = table.get("default")
        if default is not None and ((kind == "choice" and default not in values) or (
                kind in ("int", "float") and not (isinstance(default, (int, float)) and not isinstance(default, bool)
                                                  and min_value <= default <= max_value))
                or (kind == "boolean" and not isinstance(default, bool))):  # was KerasTuner's ValueError traceback
            allowed = f"one of {list(values)}" if kind == "choice" else "true or false" if kind == "boolean" else \
                f"a number in [{min_value}, {max_value}]"
            raise _fail(where, f"default must be {allowed}, got {default!r}")
        if default is not None and kind in ("int", "float") and (step is not None or kind == "int"):
            off = _off_grid(default, min_value, max_value, step or 1.0, sampling == "log" and step is not None)
            if off:  # min 16, step 8, default 20 was accepted: KerasTuner draws 16, 24, ..., never 20
                raise _fail(where, f"default must be one of the range's values {off}")
        return cls(name=name, keys=tuple(keys), mode=mode, kind=kind, values=values, min_value=min_value,
                   max_value=max_value, step=step, sampling=sampling, default=default, base=base,
                   round_to=round_to, clip={k: (float(lo), float(hi)) for k, (lo, hi) in clip.items()})

    # -- KerasTuner ------------------------------------------------------------------------------------
    def _natural_default(self, config: Config) -> Any:
        """The value that reproduces ``config`` when the space allows it, else ``None``."""
        if self.mode == "scale":
            candidate: Any = 1.0 if self.kind != "int" else 1
        elif self.mode == "depth":
            current = config_value(config, self.keys[0])
            candidate = len(current) if self.base is not None and tuple(current) == self.base[:len(current)] \
                else None
        else:
            candidate = config_value(config, self.keys[0])
        if candidate is None:
            return None
        if self.kind == "choice":
            return next((v for v in self.values or () if v == candidate
                         and isinstance(v, bool) == isinstance(candidate, bool)), None)
        if self.kind == "boolean":
            return candidate if isinstance(candidate, bool) else None
        if isinstance(candidate, (int, float)) and not isinstance(candidate, bool) \
                and self.min_value is not None and self.max_value is not None \
                and self.min_value <= candidate <= self.max_value:
            return int(candidate) if self.kind == "int" else float(candidate)
        return None

    def default_value(self, config: Config) -> Any:
        """The value of the untuned model: ``default``, else the one that reproduces ``config`` (or ``None``)."""
        return self.default if self.default is not None else self._natural_default(config)

    def value_count(self) -> int | None:
        """How many values KerasTuner may draw: every choice, both booleans, each step of a stepped (or int)
        range; ``None`` for a float range without ``step``, which holds endless values."""
        if self.kind == "choice":
            return len(self.values or ())
        if self.kind == "boolean":
            return 2
        if self.step is None and self.kind != "int":
            return None
        low, high, step = float(self.min_value), float(self.max_value), self.step or 1.0
        if self.sampling == "log" and self.step is not None:
            return math.floor(math.log(high / low) / math.log(step) + 1e-9) + 1
        return math.floor((high - low) / step + 1e-9) + 1

    def candidates(self, config: Config) -> tuple[Any, ...] | None:
        """Values that stand for all this hyperparameter may take: every choice, both booleans, every value of a
        stepped range (an int range steps by 1), else a range's ends, middle and default; ``None`` for a stepped
        range of more than :data:`_MAX_CANDIDATES` values.

        The ends suffice for a range: each mode maps it monotonically (``set`` and ``depth`` to distinct values,
        ``scale`` through rounding and clipping), so values between the ends give nothing the ends do not.
        """
        if self.kind == "choice":
            return tuple(self.values or ())
        if self.kind == "boolean":
            return (False, True)
        low, high = float(self.min_value), float(self.max_value)
        if self.step or self.kind == "int":
            step = self.step or 1.0
            log = self.sampling == "log" and self.step is not None
            values: list[float] = []
            value = low
            while value <= high + 1e-9 * (step if not log else high) and len(values) <= _MAX_CANDIDATES:
                values.append(min(value, high))
                value = low * step ** len(values) if log else low + len(values) * step
            if len(values) <= _MAX_CANDIDATES:
                return tuple(int(round(v)) if self.kind == "int" else v for v in values)
        middle = math.sqrt(low * high) if self.sampling == "log" else (low + high) / 2
        values = [low, high, middle]
        default = self.default_value(config)
        if default is not None:
            values.append(default)
        result = [int(round(v)) if self.kind == "int" else float(v) for v in values]
        return tuple(dict.fromkeys(result))

    def declare(self, hp: keras_tuner.HyperParameters, config: Config) -> Any:
        """Register this hyperparameter on ``hp`` and return its value for the current trial."""
        default = self.default_value(config)
        kwargs = {} if default is None else {"default": default}
        if self.kind == "choice":
            return hp.Choice(self.name, list(self.values or ()), **kwargs)
        if self.kind == "boolean":
            return hp.Boolean(self.name, **kwargs)
        if self.kind == "int":
            return hp.Int(self.name, int(self.min_value), int(self.max_value),
                          step=int(self.step) if self.step else None, sampling=self.sampling, **kwargs)
        high = self.max_value
        if self.step and self.sampling == "linear":
            # KerasTuner counts a stepped float range's values as (max - min) // step + 1, in floats:
            # 0.5 // 0.1 is 4.0, so min = 0, max = 0.5, step = 0.1 never drew 0.5. When max is a whole number
            # of steps from min, a hair more than max gives KerasTuner that count (it draws min + k * step).
            steps = (self.max_value - self.min_value) / self.step
            if abs(steps - round(steps)) <= 1e-9 * max(1.0, abs(steps)):
                high = self.max_value + 1e-6 * self.step
        return hp.Float(self.name, self.min_value, high, step=self.step, sampling=self.sampling, **kwargs)

    def overrides(self, value: Any, current: Callable[[str], Any]) -> dict[str, Any]:
        """Dotted-key overrides for ``value``; ``current(key)`` reads the value set so far."""
        value = self._at_most_max(value)
        if self.mode == "set":
            return {self.keys[0]: value}
        if self.mode == "depth":
            base = self.base or ()
            if isinstance(value, bool) or not _is_real(value) or not float(value).is_integer() \
                    or not 1 <= value <= len(base):  # base[:7] of 3 widths was a depth-3 model, silently
                raise ConfigError(f"[hp.{self.name}] depth must be an integer in [1, {len(base)}] (the length of "
                                  f"base), got {value!r}")
            return {self.keys[0]: list(base[:int(value)])}
        result: dict[str, Any] = {}
        for key in self.keys:
            now = current(key)
            low, high = self.clip.get(key, (-math.inf, math.inf))
            if isinstance(now, (tuple, list)):
                result[key] = [self._scale(v, float(value), low, high) for v in now]
            elif isinstance(now, (int, float)) and not isinstance(now, bool):
                result[key] = self._scale(now, float(value), low, high)
            else:
                raise ConfigError(f"[hp.{self.name}] cannot scale {key}={now!r}: not a number")
        return result

    def _at_most_max(self, value: Any) -> Any:
        """A stepped float range's top value as ``max``: KerasTuner draws ``min + k * step`` up to the hair over
        ``max`` that :meth:`declare` gives it, so 0.09 + 13 * 0.07 is 1.0000000000000002 for ``max = 1.0``,
        which a [0, 1] setting refuses (the trial failed as an invalid combination)."""
        if self.kind == "float" and self.step and self.sampling == "linear" and _is_real(value) \
                and self.max_value < value <= self.max_value + 1e-6 * self.step:
            return float(self.max_value)
        return value

    def _scale(self, base: float, factor: float, low: float, high: float) -> float | int:
        """``base * factor`` within ``[low, high]``; integers to the nearest multiple of ``round_to``."""
        scaled = min(max(base * factor, low), high)
        if isinstance(base, int):
            return int(min(max(round(scaled / self.round_to) * self.round_to, low), high))
        return float(scaled)


@dataclass(frozen=True)
class SearchSettings:
    """The ``[search]`` table: how trials are chosen and how long each may train.

    Attributes
    ----------
    objective : str
        ``val_loss`` (minimised) or ``val_accuracy`` (maximised), measured on the validation split.
    tuner : str
        ``hyperband``, ``bayesian`` or ``random``.
    max_trials : int
        Trials to run (Hyperband: an upper bound on top of its brackets).
    epochs : int
        Most epochs of one trial (Hyperband's ``max_epochs``); never more than the final model's ``train.epochs``.
    early_stopping_patience : int
        Epochs without a better objective before a trial stops.
    hyperband_factor : int
        Hyperband's reduction factor (keep the best 1/factor of each round).
    initial_points : int or None
        Bayesian optimisation: random trials before the Gaussian process proposes any; ``None`` means a
        third of ``max_trials`` (at least 3, at most 3 per hyperparameter). KerasTuner's own default,
        3 per hyperparameter, would make a 20-trial search over 9 hyperparameters purely random.
    seed : int or None
        Seed of the oracle's sampling; ``None`` uses ``train.seed``.
    """

    objective: str = "val_loss"
    tuner: str = "bayesian"
    max_trials: int = 10
    epochs: int = 10
    early_stopping_patience: int = 3
    hyperband_factor: int = 3
    initial_points: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"search.objective must be one of {sorted(OBJECTIVES)}, got {self.objective!r}")
        if self.tuner not in TUNERS:
            raise ConfigError(f"search.tuner must be one of {', '.join(TUNERS)}, got {self.tuner!r}")
        for name in ("max_trials", "epochs", "early_stopping_patience"):
            value = getattr(self, name)
            if not is_whole(value) or value < 1:
                raise ConfigError(f"search.{name} must be an integer >= 1, got {value!r}")
        if self.initial_points is not None and (not is_whole(self.initial_points) or self.initial_points < 1):
            raise ConfigError(f"search.initial_points must be an integer >= 1, got {self.initial_points!r}")
        if not is_whole(self.hyperband_factor) or self.hyperband_factor < 2:
            raise ConfigError(f"search.hyperband_factor must be an integer >= 2, got {self.hyperband_factor!r}")
        if self.seed is not None:
            check_seed("search.seed", self.seed)
        for name in ("max_trials", "epochs", "early_stopping_patience", "hyperband_factor", "initial_points", "seed"):
            if getattr(self, name) is not None:  # a numpy integer goes to KerasTuner and JSON as an int
                object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def direction(self) -> str:
        """``min`` or ``max``."""
        return OBJECTIVES[self.objective]


@dataclass(frozen=True)
class SearchSpace:
    """A parsed ``tuning/*.toml`` recipe.

    Attributes
    ----------
    name : str
    settings : SearchSettings
    fixed : dict
        Dotted-key config overrides applied before the hyperparameters (trials and final model; the trials
        replace its :data:`TRIAL_KEYS` with ``[search]``'s settings).
    params : tuple of HyperParam
        Every hyperparameter of the recipe (what :meth:`fingerprint` covers).
    source : str
        The file it came from (for messages).
    dropped : dict
        Name -> held value of the hyperparameters this run does not search (:meth:`without`): they are not
        declared to KerasTuner, and every trial and the final model get them at the held value (``None``: not
        applied, the base config's values). :attr:`searched` are the others.
    """

    name: str
    settings: SearchSettings
    fixed: Mapping[str, Any]
    params: tuple[HyperParam, ...]
    source: str = "<dict>"
    description: str = ""
    dropped: Mapping[str, Any] = field(default_factory=dict)

    @property
    def searched(self) -> tuple[HyperParam, ...]:
        """The hyperparameters declared to KerasTuner: all but :attr:`dropped`."""
        return tuple(p for p in self.params if p.name not in self.dropped)

    def configurations(self) -> int | None:
        """How many distinct sets of values the searched hyperparameters hold (``None``: endless, a float range
        without ``step``). A random or Bayesian search that has tried them all stops short of ``max_trials``."""
        counts = [p.value_count() for p in self.searched]
        return None if None in counts else math.prod(counts)

    @classmethod
    def from_toml(cls, path: str | Path) -> "SearchSpace":
        """Read and validate a space: a path, or a name in the repository's ``tuning/`` folder (``tiny``,
        ``tuning/tiny.toml``), as ``--tuning`` takes it (``ConfigError`` naming the file on any problem)."""
        path = find_repo_toml(path, REPO_TUNING, "search space")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # UnicodeDecodeError: e.g. an audio file
            raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> "SearchSpace":
        """A space from a recipe's tables (as :func:`tomllib.loads` gives them; numpy numbers and arrays count
        as Python numbers and lists); ``ConfigError`` naming ``source`` on any problem."""
        if not isinstance(data, Mapping):
            raise _fail(source, f"a search space is a table of [search], [fixed] and [hp.<name>], got {data!r}")
        data = _plain(data)
        unknown = set(data) - _TOP_KEYS
        if unknown:
            raise _fail(source, f"unknown top-level key(s) {_unknown_keys(unknown, _TOP_KEYS)}; expected name, "
                                "description, [search], [fixed] and [hp.<name>] tables")
        search = data.get("search", {})
        if not isinstance(search, Mapping):
            raise _fail(source, f"[search] must be a table of {sorted(_SEARCH_KEYS)}, got {search!r}")
        if set(search) - _SEARCH_KEYS:  # named the table whole: {'tuner': 'random', 'max_trial': 2, ...}
            raise _fail(source, f"[search]: unknown key(s) {_unknown_keys(set(search) - _SEARCH_KEYS, _SEARCH_KEYS)};"
                                f" [search] may hold {sorted(_SEARCH_KEYS)}")
        try:
            settings = SearchSettings(**search)
        except (ConfigError, TypeError) as exc:
            raise _fail(source, str(exc)) from None
        fixed = data.get("fixed", {})
        if not isinstance(fixed, Mapping):
            raise _fail(source, f"[fixed] must be a table of \"section.key\" = value, got {fixed!r}")
        # TOML reads an unquoted train.batch_size = 8 as a [fixed.train] table: the same override
        fixed = {f"{key}.{inner}" if isinstance(value, Mapping) else key: inner_value
                 for key, value in fixed.items()
                 for inner, inner_value in (value.items() if isinstance(value, Mapping) else [(None, value)])}
        try:
            apply_overrides(Config(), fixed)
        except ConfigError as exc:
            raise _fail(source, f"[fixed]: {exc}") from None
        data_keys = sorted(key for key in fixed if _is_data_key(key))
        if data_keys:
            raise _fail(source, f"[fixed]: {', '.join(data_keys)} cannot be set by a search space: the data are "
                                f"decoded once from the pipeline recipe and flags; set them there (or with --set)")
        tables = data.get("hp", {})
        if not isinstance(tables, Mapping) or not tables:
            raise _fail(source, "needs at least one [hp.<name>] table")
        params = tuple(HyperParam.from_table(name, table, source) for name, table in tables.items())
        owners: dict[str, str] = {}
        for param in params:  # scaling multiplies what set and depth chose, wherever it stands in the file
            for key in param.keys if param.mode != "scale" else ():
                if key in owners:
                    raise _fail(source, f"[hp.{param.name}] and [hp.{owners[key]}] both set {key}")
                owners[key] = param.name
        return cls(name=str(data.get("name", Path(source).stem)), settings=settings, fixed=fixed, params=params,
                   source=source, description=str(data.get("description", "")))

    def check_values(self, config: Config) -> None:
        """Raise when a value a ``set`` parameter may take is invalid on its own for ``config``.

        Each choice (or each end of a range) is applied alone to ``config`` with ``[fixed]``: a value
        that can never make a valid model is a mistake in the recipe, reported before the search starts
        (it used to surface as a failed trial's traceback, or stop the search when it was the default).
        Values valid alone but not together remain failed trials, as KerasTuner records them.

        Raises
        ------
        ConfigError
            Naming the recipe, the ``[hp.<name>]`` table and the value.
        """
        try:
            base = apply_overrides(config, self.fixed)
        except ConfigError as exc:  # valid with the defaults, not with this run's settings (its sample rate...)
            raise _fail(self.source, f"[fixed]: {exc}") from None
        for param in self.params:
            if param.mode != "set":
                continue
            if param.kind == "choice":
                candidates = list(param.values)
            elif param.kind == "boolean":
                candidates = [False, True]
            else:
                candidates = [int(v) if param.kind == "int" else v for v in (param.min_value, param.max_value)]
                if param.kind == "float":  # and a value inside: a float range on an integer key fails there
                    candidates.append(param.min_value + 0.381966 * (param.max_value - param.min_value))
            for value in candidates:
                try:
                    apply_overrides(base, {param.keys[0]: value})
                except ConfigError as exc:
                    raise _fail(f"{self.source} [hp.{param.name}]",
                                f"the value {value!r} cannot be used: {exc}") from None

    def replace_settings(self, **changes: Any) -> "SearchSpace":
        """The space with some ``[search]`` settings replaced (``None`` values ignored)."""
        changes = {k: _plain(v) for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, **changes))

    def fingerprint(self) -> str:
        """A hash of what defines the trials (not max_trials or the tuner's budget): of the recipe, so the same
        whichever hyperparameters a run leaves out (they follow from the recipe and the base config)."""
        data = {"fixed": self.fixed, "params": [dataclasses.asdict(p) for p in self.params],
                "objective": self.settings.objective, "tuner": self.settings.tuner,
                "epochs": self.settings.epochs, "patience": self.settings.early_stopping_patience,
                "factor": self.settings.hyperband_factor, "initial_points": self.settings.initial_points,
                "seed": self.settings.seed}
        return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def declare(self, hp: keras_tuner.HyperParameters, config: Config) -> dict[str, Any]:
        """Register every searched hyperparameter on ``hp``; returns ``{name: value}`` for the current trial."""
        return {param.name: param.declare(hp, config) for param in self.searched}

    def check_names(self, names: Sequence[str]) -> None:
        """Raise ``ConfigError`` for names that are not searched hyperparameters of the space (KerasTuner's
        ``tuner/*`` entries aside): a misspelt name was ignored, and its value silently replaced by the default;
        a value for one this run does not search would be ignored too."""
        known = [p.name for p in self.searched]
        unknown = [name for name in names if name not in known and not str(name).startswith("tuner/")]
        left_out = [name for name in unknown if name in self.dropped]
        if left_out:
            raise _fail(self.source, f"{', '.join(map(repr, left_out))} not searched in this run (every value gives "
                                     f"the same settings), yet given a value; searched: {', '.join(known)}")
        if unknown:
            raise _fail(self.source, f"no hyperparameter {', '.join(map(repr, unknown))} in this space; its "
                                     f"hyperparameters are {', '.join(known)}")

    def overrides(self, config: Config, values: Mapping[str, Any]) -> dict[str, Any]:
        """Dotted-key overrides (``[fixed]`` first) for hyperparameter ``values`` and the held values of
        :attr:`dropped` (names the space does not search are a ``ConfigError``; KerasTuner's ``tuner/*``
        entries are ignored)."""
        self.check_names(list(values))
        held = {name: value for name, value in self.dropped.items() if value is not None}
        return self._overrides(config, {**values, **held})

    def _overrides(self, config: Config, values: Mapping[str, Any]) -> dict[str, Any]:
        overrides: dict[str, Any] = dict(self.fixed)
        fixed_config = apply_overrides(config, self.fixed)

        def current(key: str) -> Any:
            return overrides[key] if key in overrides else config_value(fixed_config, key)

        for param in sorted(self.params, key=lambda p: _MODE_ORDER[p.mode]):
            if param.name in values:
                overrides.update(param.overrides(values[param.name], current))
        return overrides

    def inert(self, config: Config) -> dict[str, NotSearched]:
        """The hyperparameters that change no trial with ``config`` (the pipeline recipe and flags) and
        ``[fixed]``: name -> :class:`NotSearched`, in the file's order.

        One is inert when all its :meth:`HyperParam.candidates` give the same trial settings (as
        :func:`_in_effect` compares them: with augmentation off the other ``augment.*`` do not count, nor the
        settings a rule of :data:`IDLE_WHILE` leaves unread, such as ``augment.gain_max_db`` with
        ``augment.gain_probability = 0``) for
        every combination of the candidates of the other hyperparameters of its config sections (only those
        can change what it sets). It is searched whenever that cannot be told: a candidate makes an invalid
        config, a stepped range has too many values, or the combinations are more than
        :data:`_MAX_COMBINATIONS`. The result depends on the space and ``config`` only (not on
        :attr:`dropped`), so the same command decides the same. It is computed once per process for a
        space and config (up to :data:`_MAX_COMBINATIONS` configs per group, some seconds: a search asks
        for it three times as it starts: the command's checks, :func:`sound_tf.tune.run_search`'s, and its own).
        """
        key = json.dumps({"fixed": self.fixed, "params": [dataclasses.asdict(p) for p in self.params],
                          "config": config.to_dict()}, sort_keys=True, default=str)
        if key not in _INERT_MEMO:
            _INERT_MEMO.clear()  # one space and config at a time: a process runs one search
            _INERT_MEMO[key] = self._inert(config)
        return dict(_INERT_MEMO[key])

    def _inert(self, config: Config) -> dict[str, NotSearched]:
        base = apply_overrides(config, self.fixed)
        result: dict[str, NotSearched] = {}
        for group in self._section_groups():
            candidates = [param.candidates(config) for param in group]
            if any(c is None for c in candidates) or math.prod(len(c) + 1 for c in candidates) > _MAX_COMBINATIONS:
                continue
            outcomes: dict[tuple[Any, ...], str | None] = {}
            for combination in itertools.product(*[(*c, _ABSENT) for c in candidates]):
                values = {p.name: v for p, v in zip(group, combination) if v is not _ABSENT}
                try:
                    outcomes[combination] = _in_effect(apply_overrides(config, self._overrides(config, values)))
                except ConfigError:
                    outcomes[combination] = None  # cannot tell: searched
            for index, param in enumerate(group):
                others = [c for i, c in enumerate(candidates) if i != index]
                same = leaves = True
                for rest in itertools.product(*others):  # the others' values; then this one's, and without it
                    *row, without = [outcomes[(*rest[:index], value, *rest[index:])]
                                     for value in (*candidates[index], _ABSENT)]
                    if len(set(row)) != 1 or None in row:
                        same = False
                        break
                    leaves = leaves and without == row[0]
                if same:
                    default = param.default_value(config)
                    held = None if leaves else default if default is not None else candidates[index][0]
                    result[param.name] = NotSearched(held=held, why=self._why_inert(param, base, config, held))
        return {p.name: result[p.name] for p in self.params if p.name in result}

    def _section_groups(self) -> list[list[HyperParam]]:
        """The hyperparameters in groups that share config sections (directly or through another), in file order."""
        groups: list[tuple[set[str], list[HyperParam]]] = []
        for param in self.params:
            sections = {key.partition(".")[0] for key in param.keys}
            joined = [g for g in groups if g[0] & sections]
            merged = (sections.union(*(g[0] for g in joined)), [p for g in joined for p in g[1]] + [param])
            groups = [g for g in groups if not g[0] & sections] + [merged]
        order = {p.name: i for i, p in enumerate(self.params)}
        return [sorted(g[1], key=lambda p: order[p.name]) for g in groups]

    def _why_inert(self, param: HyperParam, base: Config, config: Config, held: Any) -> str:
        """Why every value of ``param`` gives the same settings (``base``: ``config`` with ``[fixed]``)."""
        keys = list(param.keys)
        one = len(keys) == 1
        if not base.augment.enabled and all(k.startswith("augment.") and k != "augment.enabled" for k in keys) \
                and not any("augment.enabled" in p.keys for p in self.params):
            return (f"augmentation is off in this run's settings (augment.enabled = false: --no-augment, the pipeline "
                    f"recipe or [fixed]), so {_listed(keys)} {'changes' if one else 'change'} nothing")
        idle = {key: self._idle_in_every_trial(key, config) for key in keys}
        unread = [key for key in keys if idle[key] is not None]
        if unread == keys:
            return (f"{self._why_idle([idle[key] for key in keys])}, so {_listed(keys)} "
                    f"{'changes' if one else 'change'} nothing")
        now = {key: config_value(base, key) for key in keys}
        if held is None and param.mode == "scale" and all(_is_zero(v) or k in unread for k, v in now.items()):
            zeros = [key for key in keys if key not in unread]
            why = f"it scales {_listed(zeros)}, which {'is' if len(zeros) == 1 else 'are all'} 0 in this run's settings"
            if unread:  # and settings of transforms that never run
                why += (f", and {_listed(unread)}, which {'changes' if len(unread) == 1 else 'change'} nothing: "
                        f"{self._why_idle([idle[key] for key in unread])}")
            return why
        if held is None:
            return (f"{_settings_text(now)} in this run's settings, and every value of it leaves "
                    f"{'it' if one else 'them'} so")
        given = apply_overrides(config, self._overrides(config, {param.name: held}))
        return f"every value of it gives {_settings_text({key: config_value(given, key) for key in keys})}, kept"

    def _idle_in_every_trial(self, key: str, config: Config) -> Idle | None:
        """The first rule of :data:`IDLE_WHILE` that leaves ``key`` unread in every trial (:meth:`_in_every_trial`),
        or ``None``."""
        return next((rule for rule in _idle_rules(key)
                     if all(self._in_every_trial(f"augment.{name}", value, config) for name, value in rule.when)),
                    None)

    def _in_every_trial(self, key: str, wanted: Any, config: Config) -> bool:
        """Whether ``key`` is ``wanted`` (as :class:`Idle` means it) in every trial: in ``config`` with ``[fixed]``
        at every combination of the values of the hyperparameters that set or scale it (combinations that make no
        valid config aside)."""
        setters = [p for p in self.params if key in p.keys]
        candidates = [p.candidates(config) for p in setters]
        if any(c is None for c in candidates):
            return False
        values = []
        for combination in itertools.product(*candidates):
            values_of = {p.name: value for p, value in zip(setters, combination)}
            try:
                trial = apply_overrides(config, self._overrides(config, values_of))
            except ConfigError:
                continue
            values.append(config_value(trial, key))
        return bool(values) and all(_has(value, wanted) for value in values)

    def _why_idle(self, rules: Sequence[Idle]) -> str:
        """What ``rules`` (of :data:`IDLE_WHILE`, each holding in every trial) leave idle, for the log, and where
        that comes from: ``gain is off in this run's settings (augment.gain_probability = 0: ...)``."""
        rules = list(dict.fromkeys(rules))
        off = list(dict.fromkeys(name for rule in rules if rule.state == "off" for name in rule.names))
        clauses = [f"{_listed(off)} {'is' if len(off) == 1 else 'are'} off"] if off else []
        clauses += [f"{_listed(list(rule.names))} {rule.state}" for rule in rules if rule.state != "off"]
        when = dict(pair for rule in rules for pair in rule.when)
        conditions = _conditions_text(when)
        setters = [f"[hp.{p.name}]" for p in self.params if {p_key.partition(".")[2] for p_key in p.keys
                                                               if p_key.startswith("augment.")} & set(when)]
        text = " and ".join(clauses)
        if not setters:
            return f"{text} in this run's settings ({conditions}: the pipeline recipe, --set or [fixed])"
        return (f"{text} in every trial ({conditions} with this run's settings, the pipeline recipe, --set or [fixed], "
                f"at every value of {_listed(setters)})")

    def without(self, names: Sequence[str], config: Config, *,
                inert: Mapping[str, NotSearched] | None = None) -> "SearchSpace":
        """This space with ``names`` not searched: not declared to KerasTuner, held where :meth:`inert` holds
        them (``inert``: its result for ``config``, when the caller has it); a name it does not find inert, as
        a search folder may record one, at its default."""
        known = {p.name: p for p in self.params}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise _fail(self.source, f"no hyperparameter {', '.join(map(repr, unknown))} in this space; its "
                                     f"hyperparameters are {', '.join(known)}")
        if inert is None:
            inert = self.inert(config) if names else {}
        dropped = {name: inert[name].held if name in inert else known[name].default_value(config) for name in names}
        return dataclasses.replace(self, dropped=dropped)

    def trial_config(self, config: Config, values: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Config:
        """``config`` with ``[fixed]``, the hyperparameter ``values`` and then ``extra`` applied."""
        overrides = self.overrides(config, values)
        overrides.update(extra or {})
        return apply_overrides(config, overrides)


# -- training pieces shared with the trainer --------------------------------------------------------------
def resident_memory_mb() -> float:
    """This process's resident set size in MB (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class FeatureStatsCache:
    """Per-mel-bin normalisation statistics, computed once per distinct frontend and cached.

    Feature parameters are tuned, so each distinct ``[audio]`` + ``[features]`` pair needs its own
    statistics of the training clips. They are kept in memory and, when ``cache_dir`` is given, as
    ``<hash>.npz`` files (shared by the workers of a distributed search and kept across resumes).
    """

    def __init__(self, train_items: Sequence[Any], cache_dir: str | Path | None = None):
        self.paths, self.labels = pipeline.label_arrays(train_items)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._memory: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @staticmethod
    def key(config: Config) -> str:
        data = {"audio": dataclasses.asdict(config.audio), "features": dataclasses.asdict(config.features)}
        return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]

    def __call__(self, config: Config) -> tuple[np.ndarray, np.ndarray]:
        key = self.key(config)
        if key in self._memory:
            return self._memory[key]
        path = self.cache_dir / f"{key}.npz" if self.cache_dir is not None else None
        stats = None
        if path is not None and path.is_file():
            try:
                with np.load(path) as saved:
                    stats = (saved["mean"], saved["variance"])
            except (OSError, KeyError, ValueError):
                stats = None  # a half-written file from a killed process: recompute
        if stats is None or stats[0].shape != (config.features.num_mel_bins,):
            stats = feature_statistics(config, self.paths, self.labels)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic.replaced_whole(path, "wb") as handle:
                    np.savez(handle, mean=stats[0], variance=stats[1])
        self._memory[key] = stats
        return stats


class SoundHyperModel(keras_tuner.HyperModel):
    """Builds and fits one trial's model from a search space.

    Parameters
    ----------
    config : Config
        The base settings (recipe and flags) with ``labels`` filled in.
    space : SearchSpace
        The hyperparameters and the ``[search]`` settings.
    data : PreparedData, optional
        Train and validation splits (``datasets.prepare_dataset``). Without it ``build`` still works,
        with identity normalisation and one step per epoch, and ``fit`` cannot run.
    stats_dir : path, optional
        Where feature statistics are cached as files.
    trial_epochs, trial_patience : int, optional
        Override ``train.epochs`` / ``train.early_stopping_patience`` in trial configs (the final model
        keeps the base values).
    noise_bank : numpy.ndarray, optional
        :func:`sound_tf.augment.load_noise_bank` of the base config's ``augment.noise_dir``, when the
        caller has loaded it. Trials share one bank per noise folder and sample rate, decoded once
        (here, when not given).
    progress : int or str, optional
        Keras's ``verbose`` for the trials' fits (None: KerasTuner's).
    log : callable, optional
        Gets one line per finished trial epoch (:class:`sound_tf.trainer.EpochLog`), as training logs them.
    """

    def __init__(self, config: Config, space: SearchSpace, data: Any = None, *,
                 stats_dir: str | Path | None = None, trial_epochs: int | None = None,
                 trial_patience: int | None = None, noise_bank: np.ndarray | None = None,
                 progress: int | str | None = None, log: Callable[[str], None] | None = None):
        if not isinstance(space, SearchSpace):  # was "'str' object has no attribute 'name'"
            raise ConfigError(f"SoundHyperModel: space must be a SearchSpace (SearchSpace.from_toml('tiny')), "
                              f"got {space!r}")
        for name, value in (("trial_epochs", trial_epochs), ("trial_patience", trial_patience)):
            # 0 failed every trial as an "invalid combination" of hyperparameters that were all fine
            if value is not None and (not is_whole(value) or value < 1):
                raise ConfigError(f"SoundHyperModel: {name} must be an integer >= 1 (or None), got {value!r}")
        super().__init__(name=f"sound_tf_{space.name}", tunable=True)
        if not isinstance(config, Config) or len(config.labels) < 2:
            raise ConfigError(f"a search needs a Config with at least 2 labels, got "
                              f"{config.labels if isinstance(config, Config) else config!r}")
        self.config, self.space, self.data = config, space, data
        given = {"epochs": trial_epochs, "early_stopping_patience": trial_patience}
        self.trial_overrides = {key: None if given[setting] is None else int(given[setting])
                                for key, setting in TRIAL_KEYS.items()}
        self.progress = progress  # fit verbosity apart from KerasTuner's (its trial tables); None: the same
        self.log = log  # one line per trial epoch (as train's EpochLog), when given
        self.stats = FeatureStatsCache(data.splits["train"], stats_dir) if data is not None else None
        self._noise_banks: dict[tuple[Any, ...], np.ndarray] = {}
        if noise_bank is not None:
            self._noise_banks[self._noise_key(config)] = noise_bank
        self._build_started = time.time()
        space.trial_config(config, {})  # fail now, not in a trial, when [fixed] does not fit the config

    @staticmethod
    def _noise_key(config: Config) -> tuple[Any, ...]:
        return (str(config.augment.noise_dir), config.audio.sample_rate_hz, str(config.data.cache_dir),
                config.data.strict, config.data.cuts_silence, config.data.val_fraction,
                config.data.test_fraction)  # the last three: the part of each recording mixed in

    def noise_bank(self, config: Config) -> np.ndarray | None:
        """The trial's noise recordings (:func:`sound_tf.augment.load_noise_bank`), decoded once per folder."""
        if not augment.reads_noise_dir(config):
            return None
        key = self._noise_key(config)
        if key not in self._noise_banks:
            self._noise_banks[key] = augment.load_noise_bank(config)
        return self._noise_banks[key]

    def final_config(self, values: Mapping[str, Any]) -> Config:
        """The config of a full training run with hyperparameter ``values`` (base epochs and patience)."""
        return self.space.trial_config(self.config, values)

    def trial_config(self, hp: keras_tuner.HyperParameters) -> Config:
        """Declare the space on ``hp`` and return the trial's config.

        Raises
        ------
        keras_tuner.errors.FailedTrialError
            When the drawn values make an invalid config (e.g. a hop longer than the frame); the search
            records the trial as failed and goes on.
        ConfigError
            When ``hp`` holds a name the space does not have (KerasTuner's ``tuner/*`` aside).
        """
        self.space.check_names(list(hp.values))  # e.g. hp.Fixed("learning_rat", ...) built the default rate
        values = self.space.declare(hp, self.config)
        try:
            return self.space.trial_config(self.config, values, self.trial_overrides)
        except ConfigError as exc:
            raise keras_tuner.errors.FailedTrialError(f"invalid combination {values}: {exc}") from None

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """A compiled model for the values in ``hp`` (defaults for values it does not hold yet)."""
        self._build_started = time.time()
        config = self.trial_config(hp)
        keras.utils.set_random_seed(config.train.seed)
        mean, variance = self.stats(config) if self.stats is not None else (None, None)
        try:
            model = build_model(config, feature_mean=mean, feature_variance=variance,
                                **augment.model_augment_layers(config, noise_bank=self.noise_bank(config)))
        except SoundTFError as exc:
            raise keras_tuner.errors.FailedTrialError(f"cannot build {hp.values}: {exc}") from None
        num_train = len(self.data.splits["train"]) if self.data is not None else 1
        return compile_for_training(model, config, steps_per_epoch(num_train, config))

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Train on the training split, validate on the validation split, stop early.

        Returns the validation metrics of the best epoch (by the objective) plus ``epochs`` (the last epoch
        trained), ``best_epoch``, ``seconds`` (build + fit), ``params`` and ``rss_mb`` (resident memory
        after the trial), which the oracle stores with the trial. Epochs count from the start of the
        training a Hyperband trial continues (``initial_epoch``), so ``best_epoch <= epochs``: trials.csv
        showed a continued trial's 2 epochs run as ``epochs`` 2 with a ``best_epoch`` of 4.
        """
        if self.data is None:
            raise ConfigError("SoundHyperModel.fit needs prepared data (pass data=...)")
        config = self.trial_config(hp)
        settings = self.space.settings
        first_epoch = int(kwargs.get("initial_epoch", 0))  # Hyperband continues trials from their last epoch
        train_ds, val_ds = training_datasets(config, self.data, first_epoch=first_epoch,
                                             noise_bank=self.noise_bank(config))
        kwargs.setdefault("steps_per_epoch", steps_per_epoch(len(self.data.splits["train"]), config))
        callbacks = list(kwargs.pop("callbacks", []))
        callbacks.append(keras.callbacks.EarlyStopping(monitor=settings.objective, mode=settings.direction,
                                                       patience=config.train.early_stopping_patience))
        callbacks.append(keras.callbacks.TerminateOnNaN())
        callbacks.append(InputThreadPriority())  # as in training: the input pipeline yields to the step
        kwargs.setdefault("epochs", config.train.epochs)
        kwargs.setdefault("shuffle", False)  # as in training: the pipeline shuffles (Keras would only warn)
        if self.log is not None:  # a redirected log said nothing between a trial's start and its end
            callbacks.append(EpochLog(self.log, kwargs["epochs"]))
        if self.progress is not None:
            kwargs["verbose"] = self.progress
        history = model.fit(train_ds, validation_data=val_ds, callbacks=callbacks, **kwargs).history
        scores = np.asarray(history.get(settings.objective, [np.nan]), np.float64)
        if np.all(np.isnan(scores)):
            raise keras_tuner.errors.FailedTrialError(f"no finite {settings.objective} in {history}")
        best = int(np.nanargmin(scores) if settings.direction == "min" else np.nanargmax(scores))
        metrics = {name: float(values[best]) for name, values in history.items()
                   if name.startswith("val_") and len(values) > best}
        metrics.update(epochs=float(first_epoch + len(scores)), best_epoch=float(first_epoch + best + 1),
                       seconds=round(time.time() - self._build_started, 2), params=float(model.count_params()),
                       rss_mb=round(resident_memory_mb(), 1))
        return metrics


__all__ = ["HyperParam", "NotSearched", "SearchSettings", "SearchSpace", "SoundHyperModel", "FeatureStatsCache",
           "config_value", "compile_for_training", "training_datasets", "steps_per_epoch", "resident_memory_mb"]
