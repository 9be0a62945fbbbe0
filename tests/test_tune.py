"""KerasTuner search: the space -> config mapping, a local search with every output, resume after an
interruption, the time budget, releasing dead workers, and a real chief + two workers on 127.0.0.1."""

from __future__ import annotations

import csv
import dataclasses
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np
import pytest
import soundfile as sf

from conftest import claimable, environment_as_a_user_starts_it, hold_folder
from sound_tf.config import AudioConfig, Config, apply_overrides, config_from_recipe
from sound_tf.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tuning" / "tiny.toml"
DEFAULT = REPO / "tuning" / "default.toml"
SR = 8000
CLASSES = {"low": 300.0, "mid": 900.0, "high": 2200.0}


def make_tones(root: Path, clips_per_class: int = 8) -> Path:
    """Three classes of noisy 0.5-s tones at 8 kHz (seeded)."""
    rng = np.random.default_rng(0)
    for label, freq in CLASSES.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(clips_per_class):
            n = int(SR * 0.5 * rng.uniform(0.7, 1.3))
            t = np.arange(n) / SR
            wave = 0.3 * np.sin(2 * np.pi * freq * rng.uniform(0.97, 1.03) * t) + 0.02 * rng.standard_normal(n)
            sf.write(root / label / f"{label}_{i}.wav", wave.astype(np.float32), SR, subtype="PCM_16")
    return root


def _random_oracle(tmp_path: Path, *, max_trials: int):
    """A seeded random-search oracle over one float in ``tmp_path``'s project folder, as the chief builds it."""
    import keras_tuner as kt

    from sound_tf import tune

    made = tune.RandomSearchOracle(max_trials=max_trials,
                                   **tune.oracle_options(kt.Objective("val_loss", "min"), seed=0))
    made._set_project_dir(str(tmp_path), tune.PROJECT)
    made.hyperparameters.Float("x", 0.0, 1.0)
    return made


def base_config(data: Path) -> Config:
    """The config the command builds from ``cli_flags(data, ...)``: a folder-per-class tree gets the folder recipe."""
    return config_from_recipe("folder", {"data.path": str(data), "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5,
                                     "train.epochs": 1, "augment.enabled": False})


def folder_recipe_line(data: Path) -> str:
    """What the command prints on stderr for a folder-per-class tree given with --data alone."""
    return (f"sound_tf: {data} is a folder-per-class dataset: using the folder recipe (pipelines/folder.toml; "
            f"--pipeline NAME chooses another)\n")


def cli_flags(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--epochs", "1", "--no-augment",
            "--tuning", str(TINY), "--out", str(out), "--quiet", *extra]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def trial_files(out: Path) -> dict[str, dict]:
    return {p.parent.name.removeprefix("trial_"): json.loads(p.read_text())
            for p in sorted((out / "search").glob("trial_*/trial.json"))}


# -- the space ---------------------------------------------------------------------------------------------
def test_default_space_reproduces_the_default_model_and_maps_each_mode():
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_toml(DEFAULT)
    config = Config(labels=("a", "b"))
    values = space.declare(kt.HyperParameters(), config)
    # The defaults of the space are the untuned model: the trial config equals the base config.
    assert space.trial_config(config, values) == config
    assert values["depth"] == 4 and values["width_multiplier"] == 1.0 and values["learning_rate"] == 3e-3

    tuned = space.trial_config(config, {**values, "depth": 5, "width_multiplier": 1.5, "augment_strength": 1.5,
                                        "hop_length_ms": 12.5, "num_mel_bins": 96, "weight_decay": 0.0})
    assert tuned.model.widths == (48, 96, 192, 192, 384)  # depth first, then x1.5 on multiples of 8
    assert tuned.augment.noise_probability == pytest.approx(0.75)  # 0.5 x 1.5
    assert tuned.augment.mixup_probability == pytest.approx(0.75)
    assert tuned.augment.spec_time_mask_count == 3  # round(2 x 1.5)
    assert tuned.augment.gain_max_db == config.augment.gain_max_db  # ranges are not scaled
    assert tuned.hop_length_samples == 200 and tuned.features.num_mel_bins == 96
    assert tuned.train.weight_decay == 0.0

    off = space.trial_config(config, {**values, "augment_strength": 0.0, "width_multiplier": 0.5, "depth": 2})
    assert off.augment.noise_probability == 0.0 and off.augment.spec_freq_mask_count == 0
    assert off.model.widths == (16, 32)

    capped = SearchSpace.from_dict({"hp": {"s": {"keys": ["augment.noise_probability"], "mode": "scale",
                                                 "values": [3.0], "clip": {"augment.noise_probability": [0, 1]}}}})
    assert capped.trial_config(config, {"s": 3.0}).augment.noise_probability == 1.0  # 1.5 capped at 1


def test_modes_apply_set_depth_then_scale_in_any_order_of_the_file():
    """A scale table before the depth table of the same key was refused as "both set", and the order of the
    modes is what makes a width multiplier scale the widths depth chose."""
    from sound_tf.hypermodel import SearchSpace

    tables = {"w": {"keys": ["model.widths"], "mode": "scale", "values": [1.0, 2.0]},
              "d": {"key": "model.widths", "mode": "depth", "base": [8, 16, 32], "values": [2, 3]},
              "lr": {"keys": ["train.learning_rate"], "mode": "scale", "values": [0.5, 1.0]},
              "rate": {"key": "train.learning_rate", "values": [0.01, 0.02]}}
    config = Config(labels=("a", "b"))
    for order in (["w", "d", "lr", "rate"], ["d", "rate", "w", "lr"]):
        space = SearchSpace.from_dict({"hp": {name: tables[name] for name in order}})
        trial = space.trial_config(config, {"w": 2.0, "d": 2, "lr": 0.5, "rate": 0.02})
        assert trial.model.widths == (16, 32) and trial.train.learning_rate == pytest.approx(0.01)
    with pytest.raises(ConfigError, match=r"\[hp.again\] and \[hp.d\] both set model.widths"):
        SearchSpace.from_dict({"hp": {**tables, "again": {"key": "model.widths", "mode": "depth", "base": [8, 8],
                                                                "values": [1, 2]}}})


def test_a_hyperparameter_no_value_of_which_changes_a_trial_is_not_searched():
    """With --no-augment, augment_strength scaled settings augmentation never reads: KerasTuner drew it,
    recorded it, counted its values as different configurations and named a best value that meant nothing."""
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_toml(DEFAULT)
    on = Config(labels=("a", "b"))
    off = apply_overrides(on, {"augment.enabled": False})  # what --no-augment sets
    assert space.inert(on) == {}  # augmentation on: searched as before
    assert "augment_strength" in space.without(list(space.inert(on)), on).declare(kt.HyperParameters(), on)
    inert = space.inert(off)
    assert list(inert) == ["augment_strength"] and inert["augment_strength"].held is None
    assert "augmentation is off" in inert["augment_strength"].why and "--no-augment" in inert["augment_strength"].why
    assert "augment.noise_probability" in inert["augment_strength"].why
    searched = space.without(list(inert), off)
    hp = kt.HyperParameters()
    values = searched.declare(hp, off)
    assert "augment_strength" not in values and "augment_strength" not in hp.values
    assert [p.name for p in searched.searched] == [p.name for p in space.params if p.name != "augment_strength"]
    assert searched.fingerprint() == space.fingerprint()  # a resumed search is the same search
    assert searched.trial_config(off, values) == off  # the base config's augment settings, not some scaled ones
    with pytest.raises(ConfigError, match=r"'augment_strength' not searched in this run"):
        searched.trial_config(off, {**values, "augment_strength": 1.5})

    # The probabilities it scales all 0 (augmentation on): 0 x anything is 0.
    tiny = SearchSpace.from_toml(TINY)
    zeros = apply_overrides(on, {"augment.gain_probability": 0.0, "augment.noise_probability": 0.0,
                                 "augment.spec_time_mask_count": 0})
    assert {name: n.why for name, n in tiny.inert(zeros).items()} == {"augment_strength": (
        "it scales augment.gain_probability, augment.noise_probability and augment.spec_time_mask_count, which are "
        "all 0 in this run's settings")}
    assert tiny.inert(apply_overrides(zeros, {"augment.noise_probability": 0.1})) == {}
    # ... or made 0 by [fixed]; a set table on one of them makes the scale count again.
    fixed = SearchSpace.from_dict({"fixed": {"augment.noise_probability": 0.0}, "hp": {
        "s": {"keys": ["augment.noise_probability"], "mode": "scale", "values": [0.5, 2.0]},
        "lr": {"key": "train.learning_rate", "values": [0.001, 0.01]}}})
    assert list(fixed.inert(on)) == ["s"]
    both = SearchSpace.from_dict({"fixed": {"augment.noise_probability": 0.0}, "hp": {
        "s": {"keys": ["augment.noise_probability"], "mode": "scale", "values": [0.5, 1.0]},
        "p": {"key": "augment.noise_probability", "values": [0.0, 0.4]}}})
    assert both.inert(on) == {}
    # Clipped to the same value at every factor; a stepped range checked at every step.
    clipped = SearchSpace.from_dict({"hp": {
        "s": {"keys": ["augment.noise_probability"], "mode": "scale", "min": 2.0, "max": 3.0, "step": 0.5,
              "clip": {"augment.noise_probability": [0.0, 1.0]}},
        "lr": {"key": "train.learning_rate", "values": [0.001, 0.01]}}})
    certain = apply_overrides(on, {"augment.noise_probability": 1.0})
    assert list(clipped.inert(certain)) == ["s"] and clipped.inert(certain)["s"].held is None  # stays 1.0
    assert clipped.inert(apply_overrides(on, {"augment.noise_probability": 0.2})) == {}  # 0.4, 0.5, 0.6
    # 0.5 x 2, x 2.5, x 3 are all 1.0 after the clip, not the unscaled 0.5: held at one of its values
    half = clipped.without(["s"], on)
    assert clipped.inert(on)["s"].held == 2.0 and half.trial_config(on, {"lr": 0.01}).augment.noise_probability == 1.0
    # One value: every trial had it, and so does the final model (not the base config's).
    one = SearchSpace.from_dict({"hp": {"drop": {"key": "model.dropout", "values": [0.3]},
                                        "lr": {"key": "train.learning_rate", "values": [0.001, 0.01]}}})
    held = one.without(list(one.inert(on)), on)
    assert held.dropped == {"drop": 0.3}
    assert held.trial_config(on, {"lr": 0.01}).model.dropout == 0.3
    assert "model.dropout = 0.3" in one.inert(on)["drop"].why
    # A range whose ends differ always changes something.
    assert SearchSpace.from_dict({"hp": {"drop": {"key": "model.dropout", "min": 0.0, "max": 0.5}}}).inert(off) == {}


#: Another value of each setting only its own transform reads (tests/test_augment.py proves that one at
#: probability 0 reads none of them).
OTHER_VALUES = {"shift_max_clip_fraction": 0.3, "shift_mode": "zero", "speed_min_factor": 0.7, "speed_max_factor": 1.3,
                "stretch_min_rate": 0.8, "stretch_max_rate": 1.25, "pitch_min_semitones": -4.0,
                "pitch_max_semitones": 3.0, "gain_min_db": -12.0, "gain_max_db": 9.0, "noise_min_snr_db": 0.0,
                "noise_max_snr_db": 15.0, "noise_colors": ["brown"], "spec_freq_mask_count": 4,
                "spec_freq_mask_max_bins": 16, "spec_time_mask_count": 3, "spec_time_mask_max_fraction": 0.3,
                "mixup_alpha": 5.0}


def test_the_settings_of_a_transform_at_probability_0_do_not_count_and_every_augment_setting_is_placed():
    """_in_effect compares what a trial trains with: a transform's own settings while its probability is 0 do
    not count, in either domain; its probability and noise_dir always do, a *_domain setting while a transform it
    places runs."""
    from sound_tf.config import AugmentConfig
    from sound_tf.hypermodel import DOMAIN_TRANSFORMS, TRANSFORM_SETTINGS, _in_effect

    on = apply_overrides(Config(labels=("a", "b")), {f"augment.{p}": 0.5 for p, _ in TRANSFORM_SETTINGS.values()})
    for probability, names in TRANSFORM_SETTINGS.values():
        for name in names:
            for domain in ("features", "waveform"):
                base = apply_overrides(on, {f"augment.{d}": domain for d in ("rescale_domain", "shift_gain_domain",
                                                                            "noise_domain", "mixup_domain")})
                off = apply_overrides(base, {f"augment.{probability}": 0.0})
                other = {f"augment.{name}": OTHER_VALUES[name]}
                assert _in_effect(apply_overrides(off, other)) == _in_effect(off), name
                assert _in_effect(apply_overrides(base, other)) != _in_effect(base), name
    # with every probability 0 the noise folder and a probability count; a domain counts once one of the
    # transforms it places runs (tests/test_augment.py proves a domain unread while none does)
    zeros = apply_overrides(on, {f"augment.{p}": 0.0 for p, _ in TRANSFORM_SETTINGS.values()})
    for key, value in {"augment.noise_dir": "/somewhere/noise", "augment.gain_probability": 0.5}.items():
        assert _in_effect(apply_overrides(zeros, {key: value})) != _in_effect(zeros), key
    for domain, transforms in DOMAIN_TRANSFORMS.items():
        assert _in_effect(apply_overrides(zeros, {f"augment.{domain}": "waveform"})) == _in_effect(zeros), domain
        for transform in transforms:
            running = apply_overrides(zeros, {f"augment.{TRANSFORM_SETTINGS[transform][0]}": 0.5})
            assert _in_effect(apply_overrides(running, {f"augment.{domain}": "waveform"})) != _in_effect(running)
    # The table places every field of AugmentConfig: a new one is the table's or says why not.
    own = [name for _, names in TRANSFORM_SETTINGS.values() for name in names]
    probabilities = [probability for probability, _ in TRANSFORM_SETTINGS.values()]
    kept = ["enabled", "rescale_domain", "shift_gain_domain", "noise_domain", "mixup_domain", "noise_dir"]
    assert sorted(own + probabilities + kept) == sorted(f.name for f in dataclasses.fields(AugmentConfig))
    assert len(set(own)) == len(own) and set(own) == set(OTHER_VALUES)
    assert all(name.startswith(probability.removesuffix("probability")) for probability, names
               in TRANSFORM_SETTINGS.values() for name in names)


def test_a_setting_of_a_transform_that_never_runs_is_not_searched():
    """A space searching augment.gain_max_db with augment.gain_probability = 0 (the recipe, --set or [fixed]):
    every trial trained alike, yet KerasTuner counted its values as different configurations and
    best_hparams.json named a best gain_max_db. Left out now, and the log says why; a space that searches the
    probability too searches both."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    lr = {"key": "train.learning_rate", "values": [0.001, 0.01]}
    space = SearchSpace.from_dict({"hp": {"gain_max": {"key": "augment.gain_max_db", "values": [3.0, 9.0]}, "lr": lr}})
    on = Config(labels=("a", "b"))
    silent = apply_overrides(on, {"augment.gain_probability": 0.0})  # as --set augment.gain_probability=0 gives it
    inert = space.inert(silent)
    assert list(inert) == ["gain_max"] and inert["gain_max"].held is None  # the base config's gain_max_db
    assert inert["gain_max"].why == ("gain is off in this run's settings (augment.gain_probability = 0: the pipeline "
                                     "recipe, --set or [fixed]), so augment.gain_max_db changes nothing")
    assert space.inert(apply_overrides(on, {"augment.gain_probability": 0.5})) == {}  # gain runs: searched
    assert space.inert(apply_overrides(silent, {"augment.gain_probability": 1e-3})) == {}
    on_waveform = apply_overrides(silent, {"augment.shift_gain_domain": "waveform"})
    assert space.inert(on_waveform) == {"gain_max": inert["gain_max"]}  # either domain
    assert space.without(list(inert), silent).trial_config(silent, {"lr": 0.01}).augment == silent.augment
    # ... from [fixed] alike
    fixed = SearchSpace.from_dict({"fixed": {"augment.gain_probability": 0.0},
                                   "hp": {"gain_max": {"key": "augment.gain_max_db", "values": [3.0, 9.0]}, "lr": lr}})
    assert list(fixed.inert(on)) == ["gain_max"] and "augment.gain_probability = 0" in fixed.inert(on)["gain_max"].why
    # The probability searched too: each changes a trial where the other lets it (gain_probability 0.5 for
    # gain_max_db, every gain_max_db for gain_probability), so both are searched.
    both = SearchSpace.from_dict({"hp": {"gain_max": {"key": "augment.gain_max_db", "values": [3.0, 9.0]},
                                         "gain_p": {"key": "augment.gain_probability", "values": [0.0, 0.5]}}})
    assert both.inert(silent) == {} and both.inert(on) == {}
    # A scale that leaves the probability 0 at every factor: still never runs, and the log names the scale.
    scaled = SearchSpace.from_dict({"hp": {
        "strength": {"keys": ["augment.gain_probability", "augment.noise_probability"], "mode": "scale",
                     "values": [0.5, 1.0, 2.0], "clip": {"augment.gain_probability": [0.0, 1.0],
                                                        "augment.noise_probability": [0.0, 1.0]}},
        "gain_max": {"key": "augment.gain_max_db", "values": [3.0, 9.0]}}})
    assert list(scaled.inert(silent)) == ["gain_max"] and scaled.inert(on) == {}
    assert scaled.inert(silent)["gain_max"].why == (
        "gain is off in every trial (augment.gain_probability = 0 with this run's settings, the pipeline recipe, "
        "--set or [fixed], at every value of [hp.strength]), so augment.gain_max_db changes nothing")
    # Mixup and SpecAugment: their settings alike, and mixup's domain; the noise folder is searched all the same.
    rest = SearchSpace.from_dict({"hp": {
        "alpha": {"key": "augment.mixup_alpha", "values": [0.2, 1.0]},
        "bins": {"key": "augment.spec_freq_mask_max_bins", "values": [4, 16]},
        "masks": {"key": "augment.spec_time_mask_count", "min": 1, "max": 4},
        "width": {"key": "augment.spec_time_mask_max_fraction", "values": [0.05, 0.2]},
        "mixup_domain": {"key": "augment.mixup_domain", "values": ["features", "waveform"]},
        "noise_dir": {"key": "augment.noise_dir", "values": ["/data/noise_a", "/data/noise_b"]}, "lr": lr}})
    assert rest.inert(on) == {}
    quiet = apply_overrides(on, {"augment.mixup_probability": 0.0, "augment.spec_probability": 0.0,
                                 "augment.noise_probability": 0.0})
    inert = rest.inert(quiet)
    assert list(inert) == ["alpha", "bins", "masks", "width", "mixup_domain"]
    assert all(n.held is None for n in inert.values())
    assert inert["mixup_domain"].why == ("mixup is off in this run's settings (augment.mixup_probability = 0: the "
                                         "pipeline recipe, --set or [fixed]), so augment.mixup_domain changes nothing")
    assert inert["alpha"].why == ("mixup is off in this run's settings (augment.mixup_probability = 0: the pipeline "
                                  "recipe, --set or [fixed]), so augment.mixup_alpha changes nothing")
    assert inert["masks"].why == ("SpecAugment is off in this run's settings (augment.spec_probability = 0: the "
                                  "pipeline recipe, --set or [fixed]), so augment.spec_time_mask_count changes nothing")
    assert list(rest.inert(apply_overrides(quiet, {"augment.spec_probability": 0.5}))) == ["alpha", "mixup_domain"]
    # tiny.toml's augment_strength: the probabilities it scales 0, and the masks it scales unread.
    tiny = SearchSpace.from_toml(TINY)
    unmasked = apply_overrides(on, {"augment.gain_probability": 0.0, "augment.noise_probability": 0.0,
                                    "augment.spec_probability": 0.0})
    assert {name: n.why for name, n in tiny.inert(unmasked).items()} == {"augment_strength": (
        "it scales augment.gain_probability and augment.noise_probability, which are all 0 in this run's settings, "
        "and augment.spec_time_mask_count, which changes nothing: SpecAugment is off in this run's settings "
        "(augment.spec_probability = 0: the pipeline recipe, --set or [fixed])")}
    # The command says why before anything runs when nothing is left to search.
    alone = SearchSpace.from_dict({"hp": {"gain_max": {"key": "augment.gain_max_db", "values": [3.0, 9.0]}}})
    with pytest.raises(ConfigError, match=r"nothing to search: gain_max: gain is off in this run's settings "
                                          r"\(augment.gain_probability = 0: the pipeline recipe, --set or \[fixed\]\)"):
        tune.check_search(silent, alone, time_budget_minutes=None, worker_timeout_seconds=120.0)


def test_a_mask_setting_is_not_searched_while_there_are_no_masks_of_its_kind():
    """SpecAugment reads a frequency mask's width only with frequency masks (augment.spec_freq_mask_count > 0), a
    time mask's only with time masks, and its probability only with masks of either kind (tests/test_augment.py):
    a search of one of them while its masks are off trained every trial alike. Left out, and the log names the
    count that makes it so."""
    import keras_tuner as kt
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    tables = {"bins": {"key": "augment.spec_freq_mask_max_bins", "values": [4, 16]},
              "width": {"key": "augment.spec_time_mask_max_fraction", "values": [0.05, 0.2]},
              "spec_p": {"key": "augment.spec_probability", "values": [0.5, 1.0]},
              "lr": {"key": "train.learning_rate", "values": [0.001, 0.01]}}
    space = SearchSpace.from_dict({"hp": tables})
    on = Config(labels=("a", "b"))
    assert space.inert(on) == {}
    no_freq = apply_overrides(on, {"augment.spec_freq_mask_count": 0})
    inert = space.inert(no_freq)
    assert list(inert) == ["bins"] and inert["bins"].held is None
    assert inert["bins"].why == (
        "SpecAugment's frequency masking is off in this run's settings (augment.spec_freq_mask_count = 0: the pipeline "
        "recipe, --set or [fixed]), so augment.spec_freq_mask_max_bins changes nothing")
    hp = kt.HyperParameters()
    assert set(space.without(list(inert), no_freq).declare(hp, no_freq)) == {"width", "spec_p", "lr"}
    assert "bins" not in hp.values
    no_time = apply_overrides(on, {"augment.spec_time_mask_count": 0})
    assert {name: n.why for name, n in space.inert(no_time).items()} == {"width": (
        "SpecAugment's time masking is off in this run's settings (augment.spec_time_mask_count = 0: the pipeline "
        "recipe, --set or [fixed]), so augment.spec_time_mask_max_fraction changes nothing")}
    no_masks = apply_overrides(no_freq, {"augment.spec_time_mask_count": 0})
    inert = space.inert(no_masks)
    assert list(inert) == ["bins", "width", "spec_p"] and all(n.held is None for n in inert.values())
    assert inert["spec_p"].why == (
        "SpecAugment is off in this run's settings (augment.spec_freq_mask_count = 0, augment.spec_time_mask_count "
        "= 0: the pipeline recipe, --set or [fixed]), so augment.spec_probability changes nothing")
    assert inert["bins"].why.startswith("SpecAugment is off in this run's settings (augment.spec_freq_mask_count = 0")
    # SpecAugment off either way: a probability of 0 and no masks compare alike
    unmasked = SearchSpace.from_dict({"hp": {"spec_p": {"key": "augment.spec_probability", "values": [0.0, 0.5]},
                                             "lr": tables["lr"]}})
    assert list(unmasked.inert(no_masks)) == ["spec_p"] and unmasked.inert(on) == {}
    # The count searched too: the width counts wherever a count lets it; a count 0 at every factor leaves it out.
    counted = SearchSpace.from_dict({"hp": {"bins": tables["bins"], "freq": {
        "key": "augment.spec_freq_mask_count", "values": [0, 2]}}})
    assert counted.inert(no_freq) == {}
    scaled = SearchSpace.from_dict({"hp": {"bins": tables["bins"], "masks": {
        "keys": ["augment.spec_freq_mask_count", "augment.spec_time_mask_count"], "mode": "scale",
        "values": [0.5, 2.0]}}})
    assert scaled.inert(apply_overrides(on, {"augment.spec_freq_mask_count": 1})) == {}
    assert scaled.inert(no_freq)["bins"].why == (
        "SpecAugment's frequency masking is off in every trial (augment.spec_freq_mask_count = 0 with this run's "
        "settings, the pipeline recipe, --set or [fixed], at every value of [hp.masks]), so "
        "augment.spec_freq_mask_max_bins changes nothing")
    # The command says why before anything runs when nothing is left to search.
    alone = SearchSpace.from_dict({"hp": {"bins": tables["bins"]}})
    with pytest.raises(ConfigError, match=re.escape("nothing to search: bins: SpecAugment's frequency masking is off "
                                                    "in this run's settings (augment.spec_freq_mask_count = 0")):
        tune.check_search(no_freq, alone, time_budget_minutes=None, worker_timeout_seconds=120.0)


def test_the_shift_mode_is_not_searched_while_the_shift_range_is_0():
    """A roll by 0 samples and a zero-filled shift by 0 are the clip itself (tests/test_augment.py): with
    augment.shift_max_clip_fraction = 0 every trial of a search of augment.shift_mode trained alike."""
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"hp": {"mode": {"key": "augment.shift_mode", "values": ["roll", "zero"]},
                                          "lr": {"key": "train.learning_rate", "values": [0.001, 0.01]}}})
    on = apply_overrides(Config(labels=("a", "b")), {"augment.shift_probability": 0.5})
    assert space.inert(on) == {}
    still = apply_overrides(on, {"augment.shift_max_clip_fraction": 0.0})
    for domain in ("features", "waveform"):
        inert = space.inert(apply_overrides(still, {"augment.shift_gain_domain": domain}))
        assert list(inert) == ["mode"] and inert["mode"].held is None
        assert inert["mode"].why == (
            "time shift moves clips by 0 samples in this run's settings (augment.shift_max_clip_fraction = 0: the "
            "pipeline recipe, --set or [fixed]), so augment.shift_mode changes nothing")
    assert "mode" not in space.without(["mode"], still).declare(kt.HyperParameters(), still)
    # the range searched too: the mode counts wherever it is not 0
    ranged = SearchSpace.from_dict({"hp": {"mode": {"key": "augment.shift_mode", "values": ["roll", "zero"]},
                                           "range": {"key": "augment.shift_max_clip_fraction", "values": [0.0, 0.2]}}})
    assert ranged.inert(still) == {}
    # the probability 0 says it first: the transform never runs
    assert space.inert(apply_overrides(still, {"augment.shift_probability": 0.0}))["mode"].why.startswith(
        "time shift is off in this run's settings (augment.shift_probability = 0")


def test_the_noise_colours_are_not_searched_while_noise_comes_from_a_folder():
    """With augment.noise_dir set, noise is mixed in from its recordings and none is generated, in either domain
    (tests/test_augment.py): a search of augment.noise_colors trained every trial alike."""
    from sound_tf.hypermodel import SearchSpace

    colours = {"key": "augment.noise_colors", "values": ["white", "pink"]}
    space = SearchSpace.from_dict({"hp": {"colours": colours,
                                          "lr": {"key": "train.learning_rate", "values": [0.001, 0.01]}}})
    on = apply_overrides(Config(labels=("a", "b")), {"augment.noise_probability": 0.5})
    assert space.inert(on) == {}
    recorded = apply_overrides(on, {"augment.noise_dir": "/data/noise"})
    for domain in ("features", "waveform"):
        inert = space.inert(apply_overrides(recorded, {"augment.noise_domain": domain}))
        assert list(inert) == ["colours"] and inert["colours"].held is None
        assert inert["colours"].why == (
            "noise comes from the recordings of augment.noise_dir in this run's settings (augment.noise_dir set: the "
            "pipeline recipe, --set or [fixed]), so augment.noise_colors changes nothing")
    folders = SearchSpace.from_dict({"hp": {"colours": colours, "dir": {
        "key": "augment.noise_dir", "values": ["/data/noise_a", "/data/noise_b"]}}})
    # a folder in every trial, whichever: the folder itself is searched
    assert list(folders.inert(on)) == ["colours"] and "at every value of [hp.dir]" in folders.inert(on)["colours"].why


def test_a_domain_is_not_searched_while_every_transform_it_places_is_at_probability_0():
    """Where a group of transforms acts (augment.*_domain) makes no difference while all of them are at
    probability 0 (tests/test_augment.py): a search of it trained every trial alike. The log names the
    probabilities."""
    from sound_tf.hypermodel import SearchSpace

    where = {"values": ["features", "waveform"]}
    space = SearchSpace.from_dict({"hp": {
        "rescale": {"key": "augment.rescale_domain", **where},
        "shift_gain": {"key": "augment.shift_gain_domain", **where},
        "noise": {"key": "augment.noise_domain", **where}, "mixup": {"key": "augment.mixup_domain", **where},
        "lr": {"key": "train.learning_rate", "values": [0.001, 0.01]}}})
    on = apply_overrides(Config(labels=("a", "b")), {f"augment.{name}_probability": 0.5 for name in
                                                     ("shift", "speed", "stretch", "pitch", "gain", "noise", "mixup")})
    assert space.inert(on) == {}
    unscaled = apply_overrides(on, {"augment.speed_probability": 0.0, "augment.stretch_probability": 0.0})
    assert space.inert(unscaled) == {}  # pitch shift still runs
    unscaled = apply_overrides(unscaled, {"augment.pitch_probability": 0.0})
    inert = space.inert(unscaled)
    assert list(inert) == ["rescale"] and inert["rescale"].held is None
    assert inert["rescale"].why == (
        "speed change, time stretch and pitch shift are off in this run's settings (augment.speed_probability = 0, "
        "augment.stretch_probability = 0, augment.pitch_probability = 0: the pipeline recipe, --set or [fixed]), so "
        "augment.rescale_domain changes nothing")
    quiet = apply_overrides(unscaled, {f"augment.{name}_probability": 0.0 for name in ("shift", "gain", "noise")})
    assert list(space.inert(quiet)) == ["rescale", "shift_gain", "noise"]
    assert space.inert(quiet)["shift_gain"].why.startswith(
        "time shift and gain are off in this run's settings (augment.shift_probability = 0, "
        "augment.gain_probability = 0: ")
    # a probability searched in the group: the domain counts wherever it is not 0
    searched = SearchSpace.from_dict({"hp": {"noise": {"key": "augment.noise_domain", **where},
                                             "p": {"key": "augment.noise_probability", "values": [0.0, 0.3]}}})
    assert searched.inert(quiet) == {}


def test_a_search_begun_searching_a_setting_of_a_transform_that_never_runs_goes_on_searching_it(tmp_path, monkeypatch):
    """A search begun before sound_tf left out the settings of transforms at probability 0 declared
    gain_max_db, and its oracle holds it: it resumes declaring it; a new search leaves it out."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"search": {"tuner": "random", "max_trials": 2, "epochs": 1}, "hp": {
        "gain_max": {"key": "augment.gain_max_db", "values": [3.0, 9.0]},
        "lr": {"key": "train.learning_rate", "values": [0.001, 0.01]}}})
    config = apply_overrides(base_config(tmp_path / "data"), {"augment.enabled": True,
                                                              "augment.gain_probability": 0.0})
    fresh = tmp_path / "fresh"
    assert tune._prepare_folder(fresh, config, space, "local", overwrite=False, log=lambda m: None) == ["gain_max"]
    assert json.loads((fresh / tune.SEARCH_FILE).read_text())[tune.NOT_SEARCHED] == ["gain_max"]
    begun = tmp_path / "begun"
    with monkeypatch.context() as patched:  # as sound_tf found it before: gain_max_db searched
        patched.setattr(SearchSpace, "inert", lambda self, config: {})
        assert tune._prepare_folder(begun, config, space, "local", overwrite=False, log=lambda m: None) == []
    assert json.loads((begun / tune.SEARCH_FILE).read_text())[tune.NOT_SEARCHED] == []
    assert tune._prepare_folder(begun, config, space, "local", overwrite=False, log=lambda m: None) == []
    assert tune._prepare_folder(begun, config, space, "worker", overwrite=False, log=lambda m: None) == []
    assert json.loads((begun / tune.SEARCH_FILE).read_text())[tune.NOT_SEARCHED] == []
    assert tune._prepare_folder(fresh, config, space, "worker", overwrite=False, log=lambda m: None) == ["gain_max"]
    alone = SearchSpace.from_dict({"hp": {"gain_max": {"key": "augment.gain_max_db", "values": [3.0, 9.0]}}})
    older = tmp_path / "older"
    with monkeypatch.context() as patched:
        patched.setattr(SearchSpace, "inert", lambda self, config: {})
        tune._prepare_folder(older, config, alone, "local", overwrite=False, log=lambda m: None)
    tune.check_search(config, alone, time_budget_minutes=None, worker_timeout_seconds=120.0, resuming=older)
    with pytest.raises(ConfigError, match="nothing to search: gain_max: gain is off"):
        tune.check_search(config, alone, time_budget_minutes=None, worker_timeout_seconds=120.0)


def test_an_explicit_default_is_the_untuned_value_over_the_configs():
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"hp": {
        "rate": {"key": "train.learning_rate", "values": [0.001, 0.003, 0.01], "default": 0.01},
        "drop": {"key": "model.dropout", "min": 0.0, "max": 0.5, "default": 0.4},
        "bins": {"key": "features.num_mel_bins", "values": [24, 32, 64]}}})
    config = apply_overrides(Config(labels=("a", "b")), {"train.learning_rate": 0.003, "model.dropout": 0.1,
                                                         "features.num_mel_bins": 32})
    # the config's own values are in the space; the explicit defaults win, and "bins" takes the config's
    assert space.declare(kt.HyperParameters(), config) == {"rate": 0.01, "drop": 0.4, "bins": 32}


def test_a_default_on_a_stepped_range_is_accepted_and_declared():
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace

    # 0.3 is 2.9999999999999996 steps of 0.1 from 0, and 0.008 three factors of 2 from 0.001, in floats
    space = SearchSpace.from_dict({"hp": {
        "bins": {"key": "features.num_mel_bins", "min": 16, "max": 64, "step": 8, "default": 56},
        "drop": {"key": "model.dropout", "min": 0.0, "max": 0.5, "step": 0.1, "default": 0.3},
        "rate": {"key": "train.learning_rate", "min": 0.001, "max": 0.01, "step": 2, "sampling": "log",
                 "default": 0.008}}})
    assert space.declare(kt.HyperParameters(), Config(labels=("a", "b"))) == {"bins": 56, "drop": 0.3, "rate": 0.008}


def test_the_best_run_trains_the_trials_values_and_fixed_with_the_base_epochs():
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    space = SearchSpace.from_toml(TINY)  # [fixed] train.batch_size = 8
    config = apply_overrides(Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES)),
                             {"train.epochs": 7, "train.early_stopping_patience": 5})
    hypermodel = SoundHyperModel(config, space, trial_epochs=2, trial_patience=1)
    values = {"depth": 2, "width_multiplier": 0.5, "learning_rate": 0.002, "num_mel_bins": 24}
    final = hypermodel.final_config(values)
    assert final == space.trial_config(config, values)
    assert final.model.widths == (4, 8) and final.features.num_mel_bins == 24 and final.train.batch_size == 8
    assert final.train.learning_rate == pytest.approx(0.002)
    assert (final.train.epochs, final.train.early_stopping_patience) == (7, 5)  # not the trials' 2 and 1


def _trial_overridden_keys() -> list[str]:
    """The config keys a trial takes from [search] whatever the space sets, as the hypermodel overrides them."""
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    hypermodel = SoundHyperModel(Config(labels=("a", "b")), SearchSpace.from_toml(TINY), trial_epochs=2,
                                 trial_patience=1)
    return sorted(hypermodel.trial_overrides)


@pytest.mark.parametrize("mode", ["set", "scale"])
def test_a_hyperparameter_on_a_key_every_trial_takes_from_search_is_refused_naming_it(tmp_path, mode):
    """[hp.epochs] key = "train.epochs" was searched: every trial trained [search] epochs whatever it drew, so
    all trials were alike, and the best run trained the drawn value, which best_hparams.json named as the best
    though no trial measured it. Such a space is refused as it loads, for each key the trials override."""
    from sound_tf.hypermodel import SearchSpace

    keys = _trial_overridden_keys()
    assert keys == ["train.early_stopping_patience", "train.epochs"]
    for key in keys:
        path = tmp_path / "space.toml"
        table = f'key = "{key}"\nvalues = [10, 20]\n' if mode == "set" else \
            f'keys = ["train.learning_rate", "{key}"]\nmode = "scale"\nvalues = [0.5, 2.0]\n'
        path.write_text(f'[search]\nepochs = 3\n[hp.learning_rate]\nkey = "model.dropout"\nvalues = [0.1, 0.2]\n'
                        f'[hp.longer]\n{table}')
        with pytest.raises(ConfigError) as info:
            SearchSpace.from_toml(path)
        assert str(info.value) == (
            f"{path} [hp.longer]: {key} cannot be searched: trials take their epochs and patience from [search] "
            f"(epochs, early_stopping_patience) whatever value is drawn, and the final model from the pipeline "
            f"recipe's train.epochs and train.early_stopping_patience (or --epochs, --set); set them there")


def test_a_space_searching_the_trials_epochs_is_refused_before_overwrite_deletes_the_search(tmp_path, capsys):
    from sound_tf import tune

    out = tmp_path / "search"
    out.mkdir()
    (out / tune.SEARCH_FILE).write_text("{}")
    (out / "trials.csv").write_text("kept\n")
    space = tmp_path / "epochs.toml"
    space.write_text(TINY.read_text() + '\n[hp.epochs]\nkey = "train.epochs"\nvalues = [10, 20]\n')
    # (data of one recording, which pass the check made before TensorFlow loads: a command that got past the space
    # would fail on them, after --overwrite)
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    sf.write(data / "a" / "a.wav", np.zeros(SR // 10, np.float32), SR)
    assert tune.main(["--data", str(data), "--tuning", str(space), "--out", str(out), "--overwrite"]) == 2
    assert f"error: {space} [hp.epochs]: train.epochs cannot be searched: " in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["search.json", "trials.csv"]


def test_fixed_epochs_and_patience_set_the_final_models_and_the_trials_take_the_searchs():
    """[fixed] train.epochs is not refused as a hyperparameter on it is: the best run trains with it (a value
    the space chose for the final model, not one drawn and left unmeasured); the trials take [search]'s."""
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    data = tomllib.loads(TINY.read_text())
    data["fixed"].update({"train.epochs": 9, "train.early_stopping_patience": 4})
    space = SearchSpace.from_dict(data, source="fixed.toml")
    config = Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES))
    space.check_values(config)
    hypermodel = SoundHyperModel(config, space, trial_epochs=2, trial_patience=1)
    trial = hypermodel.trial_config(kt.HyperParameters())
    assert (trial.train.epochs, trial.train.early_stopping_patience) == (2, 1)
    final = hypermodel.final_config({})
    assert (final.train.epochs, final.train.early_stopping_patience) == (9, 4)


@pytest.mark.parametrize("hp, message", [
    ({"key": "model.nope", "values": [1, 2]}, "unknown config key 'model.nope'"),
    ({"key": "model.dropout", "values": [0.1], "colour": 1}, "unknown key(s) ['colour']"),
    ({"key": "model.widths", "mode": "depth", "base": [8, 16], "values": [2, 3]}, "len(base)=2"),
    ({"key": "train.learning_rate", "min": 0.0, "max": 0.1, "sampling": "log"}, "log sampling needs min > 0"),
    # KerasTuner's step is a factor under log sampling: was its ValueError traceback when the tuner was made
    ({"key": "train.learning_rate", "min": 0.001, "max": 0.01, "step": 0.001, "sampling": "log"},
     "with log sampling, step is a factor (min, min * step, min * step^2, ...) and must be > 1, got step=0.001"),
    ({"key": "features.num_mel_bins", "min": 16, "max": 64, "step": 1, "sampling": "log"}, "must be > 1, got step=1.0"),
    ({"key": "model.dropout", "mode": "stretch", "values": [0.1]}, "mode must be one of"),
    # every trial trains on data decoded once, at the recipe's rate: a searched rate trained on the wrong one
    ({"key": "audio.sample_rate_hz", "values": [8000, 16000]}, "audio.sample_rate_hz cannot be searched"),
    ({"key": "train.learning_rate", "values": [0.001, 0.01], "default": 0.5}, "default must be one of [0.001, 0.01]"),
    ({"key": "model.dropout", "min": 0.1, "max": 0.3, "default": 0.5}, "default must be a number in [0.1, 0.3]"),
    # were accepted, though KerasTuner draws only the range's steps (16, 24, ...): the README says defaults must be
    # among the values
    ({"key": "features.num_mel_bins", "min": 16, "max": 64, "step": 8, "default": 20},
     "default must be one of the range's values (16, 24, 32, ..., 64), got 20: the nearest are 16 and 24"),
    ({"key": "features.num_mel_bins", "min": 16, "max": 64, "default": 20.5},
     "default must be one of the range's values (16, 17, 18, ..., 64), got 20.5: the nearest are 20 and 21"),
    ({"key": "model.dropout", "min": 0.0, "max": 0.5, "step": 0.1, "default": 0.25},
     "default must be one of the range's values (0, 0.1, 0.2, ..., 0.5), got 0.25: the nearest are 0.2 and 0.3"),
    ({"key": "train.learning_rate", "min": 0.001, "max": 0.01, "step": 2, "sampling": "log", "default": 0.003},
     "default must be one of the range's values (0.001, 0.002, 0.004, 0.008), got 0.003: the nearest are 0.002 "
     "and 0.004"),
    ({"key": "features.num_mel_bins", "min": 16, "max": 60, "step": 8, "default": 59},
     "default must be one of the range's values (16, 24, 32, ..., 56), got 59: the nearest is 56"),
    # was KerasTuner's ValueError traceback once the data were decoded
    ({"key": "augment.enabled", "type": "boolean", "default": 3}, "default must be true or false, got 3"),
    ({"key": "model.name", "mode": "scale", "values": [1.0, 2.0]}, "mode \"scale\" multiplies numbers"),
    ({"keys": ["model.widths"], "mode": "scale", "values": [1.0], "round_to": True}, "round_to must be an integer"),
    # were accepted, and the first trial failed with float("half")'s ValueError traceback
    ({"keys": ["model.dropout"], "mode": "scale", "values": ["half", "double"]},
     "mode \"scale\" multiplies keys by numbers, got ['half', 'double']"),
    ({"keys": ["model.dropout"], "mode": "scale", "values": [True, False]},
     "mode \"scale\" multiplies keys by numbers, got [True, False]"),
    # was a TypeError traceback once the data were decoded, leaving a search folder behind
    ({"key": "train.learning_rate", "mode": "depth", "base": [1, 2], "values": [1, 2]}, "mode \"depth\" sets a list"),
    # the second key was never set: only keys[0] takes a set value
    ({"keys": ["model.dropout", "train.learning_rate"], "values": [0.1, 0.2]},
     "mode 'set' controls one key, got ['model.dropout', 'train.learning_rate']"),
    # int(16.5) was drawn from: 16 is not in the range written
    ({"key": "features.num_mel_bins", "type": "int", "min": 16.5, "max": 32}, "an int range needs integer min, max"),
])
def test_bad_spaces_fail_with_the_file_and_the_value(tmp_path, hp, message):
    from sound_tf.hypermodel import SearchSpace

    path = tmp_path / "bad.toml"
    lines = ["[hp.x]"] + [f"{k} = {json.dumps(v)}" for k, v in hp.items()]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_toml(path)
    assert str(path) in str(info.value) and message in str(info.value)


@pytest.mark.parametrize("text, message", [
    # was "[search] may hold [...], got {'tuner': 'random', 'max_trial': 2, 'epochs': 1}": the table whole
    ('[search]\ntuner = "random"\nmax_trial = 2\nepochs = 1\n[hp.x]\nkey = "model.dropout"\nvalues = [0.1, 0.2]\n',
     "[search]: unknown key(s) ['max_trial'] ('max_trial': did you mean 'max_trials'?); [search] may hold ['early_"),
    ('[serach]\ntuner = "random"\n[hp.x]\nkey = "model.dropout"\nvalues = [0.1, 0.2]\n',
     "unknown top-level key(s) ['serach'] ('serach': did you mean 'search'?); expected name"),
    ('[hp.x]\nkey = "train.learning_rate"\nmin = 0.001\nmax = 0.01\nsampeling = "log"\n',
     "[hp.x]: unknown key(s) ['sampeling'] ('sampeling': did you mean 'sampling'?); known keys: ['base'"),
    ('[hp.x]\nkey = "model.dropout"\nvalues = [0.1]\ncolour = 1\n', "[hp.x]: unknown key(s) ['colour']; known keys"),
    # was "needs min < max and step > 0, got min=0.01, max=0.001, step=None", of a table without a step
    ('[hp.x]\nkey = "train.learning_rate"\nmin = 0.01\nmax = 0.001\nsampling = "log"\n',
     "[hp.x]: needs min < max, got min=0.01, max=0.001"),
    ('[hp.x]\nkey = "model.dropout"\nmin = 0.2\nmax = 0.2\n',
     "[hp.x]: needs min < max, got min=0.2, max=0.2 (one value: write values = [0.2])"),
    ('[hp.x]\nkey = "model.dropout"\nmin = 0.1\nmax = 0.3\nstep = -0.1\n', "[hp.x]: needs step > 0, got step=-0.1"),
])
def test_a_misspelt_key_or_a_reversed_range_is_named_with_its_fix(tmp_path, text, message):
    from sound_tf.hypermodel import SearchSpace

    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_toml(path)
    assert str(info.value).startswith(f"{path}") and message in str(info.value)
    assert "step=None" not in str(info.value)


@pytest.mark.parametrize("bounds", ["min = 0.001\nmax = 0.01\nstep = nan", "min = 0.001\nmax = 0.01\nstep = inf",
                                    "keys = [\"model.widths\"]\nmode = \"scale\"\nmin = 0.5\nmax = inf"])
def test_a_range_that_is_not_finite_fails_with_the_file(tmp_path, bounds):
    """step = nan passed 'step > 0' and max = inf passed 'min < max': the space loaded, and a trial's draw
    raised ValueError (int(nan)) or OverflowError (widths scaled by inf) in the middle of the search."""
    from sound_tf.hypermodel import SearchSpace

    path = tmp_path / "bad.toml"
    key = "" if "keys" in bounds else "key = \"train.learning_rate\"\n"
    path.write_text(f"[hp.x]\n{key}{bounds}\n")
    with pytest.raises(ConfigError, match=r"\[hp.x\]: a float range needs finite min, max and step, got .*(nan|inf)") \
            as info:
        SearchSpace.from_toml(path)
    assert str(info.value).startswith(str(path))


def test_a_space_is_found_by_name_from_any_folder_as_tune_finds_it(tmp_path, monkeypatch):
    from sound_tf.hypermodel import SearchSpace

    monkeypatch.chdir(tmp_path)  # the hypermodel's own example, "tuning/tiny.toml", outside the repository
    expected = SearchSpace.from_toml(TINY).fingerprint()
    for name in ("tiny", "tiny.toml", "tuning/tiny.toml"):
        assert SearchSpace.from_toml(name).fingerprint() == expected
    with pytest.raises(ConfigError, match=r"huge: search space not found .*known: \['default', 'tiny'\]"):
        SearchSpace.from_toml("huge")
    with pytest.raises(ConfigError, match="mine/tiny.toml: search space not found"):  # not the repository's tiny
        SearchSpace.from_toml(tmp_path / "mine" / "tiny.toml")


def test_bad_search_settings_are_refused():
    from sound_tf.hypermodel import SearchSpace

    hp = {"x": {"key": "model.dropout", "values": [0.1]}}
    with pytest.raises(ConfigError, match="search.objective must be one of .* got 'accuracy'"):
        SearchSpace.from_dict({"search": {"objective": "accuracy"}, "hp": hp})
    with pytest.raises(ConfigError, match="search.max_trials must be an integer >= 1, got 0"):
        SearchSpace.from_dict({"search": {"max_trials": 0}, "hp": hp})
    with pytest.raises(ConfigError, match=r"\[fixed\]: unknown key"):
        SearchSpace.from_dict({"fixed": {"train.nope": 1}, "hp": hp})
    with pytest.raises(ConfigError, match=r"clip must map some of keys \['model.widths'\] to \[low, high\]"):
        SearchSpace.from_dict({"hp": {"w": {"keys": ["model.widths"], "mode": "scale", "values": [2.0],
                                            "clip": {"model.widths": ["a", 5]}}}})  # was a ValueError traceback
    with pytest.raises(ConfigError, match=r"clip must map some of keys \['model.widths'\] to \[low, high\]"):
        SearchSpace.from_dict({"hp": {"w": {"keys": ["model.widths"], "mode": "scale", "values": [2.0],
                                            "clip": {"model.widths": [64, 8]}}}})  # every width came out 8
    for fixed in (5, ["train.epochs"]):  # were a TypeError and a ValueError traceback
        with pytest.raises(ConfigError, match=r"\[fixed\] must be a table of \"section.key\" = value"):
            SearchSpace.from_dict({"fixed": fixed, "hp": hp})
    # TOML reads an unquoted train.batch_size = 8 as a nested table: the same override as the quoted key
    unquoted = SearchSpace.from_dict(tomllib.loads("[fixed]\ntrain.batch_size = 8\n[hp.x]\nkey = \"model.dropout\"\n"
                                                   "values = [0.1]\n"))
    assert unquoted.fixed == SearchSpace.from_dict({"fixed": {"train.batch_size": 8}, "hp": hp}).fixed \
        == {"train.batch_size": 8}


def test_values_that_never_make_a_valid_model_are_refused_before_the_search(tmp_path):
    """They used to surface as a failed trial's traceback, or stop the search when they were the default."""
    from sound_tf.hypermodel import SearchSpace

    hp = {"bins": {"key": "features.num_mel_bins", "values": [24, -16]}}
    with pytest.raises(ConfigError, match=r"\[hp.bins\]: the value -16 cannot be used: features.num_mel_bins"):
        SearchSpace.from_dict({"hp": hp}).check_values(Config())
    with pytest.raises(ConfigError, match=r"\[fixed\]: data.path cannot be set by a search space"):
        SearchSpace.from_dict({"fixed": {"data.path": "x"}, "hp": hp})
    SearchSpace.from_toml(TINY).check_values(Config())  # the shipped spaces pass
    # [fixed] valid with the defaults but not with the run's settings: the message named no file
    narrow = SearchSpace.from_dict({"fixed": {"features.fmax_hz": 6000.0}, "hp": hp}, source="narrow.toml")
    with pytest.raises(ConfigError, match=r"^narrow.toml: \[fixed\]: features.fmax_hz=6000.0 exceeds the Nyquist"):
        narrow.check_values(apply_overrides(Config(), {"audio.sample_rate_hz": 8000}))
    # a float range on an integer key: both ends are whole numbers, but every trial drew 18.15 and failed
    for table in ({"min": 16, "max": 32.0}, {"min": 1, "max": 5, "step": 0.5}):
        floats = {"bins": {"key": "features.num_mel_bins", **table}}
        with pytest.raises(ConfigError, match=r"\[hp.bins\]: the value 2?\d\.\d+ cannot be used: "
                                              r"features.num_mel_bins must be an integer"):
            SearchSpace.from_dict({"hp": floats}).check_values(Config())
    SearchSpace.from_dict(
        {"hp": {"bins": {"key": "features.num_mel_bins", "min": 16, "max": 32}}}).check_values(Config())


def test_a_range_whose_max_never_makes_a_valid_model_is_refused_before_the_search():
    """Both ends of a range are checked, not only its min: a max past a setting's bounds failed every trial
    that drew near it."""
    from sound_tf.hypermodel import SearchSpace

    for key, table, value, bounds in (
            ("augment.noise_probability", {"min": 0.25, "max": 1.5}, "1.5", r"must be in \[0, 1\], got 1.5"),
            ("augment.spec_time_mask_count", {"min": 1, "max": 20}, "20", r"must be an integer in \[0, 16\], got 20")):
        with pytest.raises(ConfigError, match=rf"\[hp.x\]: the value {value} cannot be used: {key} {bounds}$"):
            SearchSpace.from_dict({"hp": {"x": {"key": key, **table}}}).check_values(Config())


def test_a_reloaded_oracle_does_not_run_an_ended_trial_again(tmp_path):
    """A distributed chief's oracle.json still lists the last trial as ongoing (KerasTuner saves before
    it drops it), and reload() queued it again: re-running a finished search trained it twice, and a chief
    without workers waited for it forever."""
    import keras_tuner as kt

    from sound_tf import tune

    def oracle():
        made = tune.RandomSearchOracle(objective=kt.Objective("val_loss", "min"), max_trials=2, seed=1)
        made._set_project_dir(str(tmp_path), "project")
        made.hyperparameters.Float("x", 0.0, 1.0)
        return made

    first = oracle()
    trial = first.create_trial("tuner0")
    first.update_trial(trial.trial_id, {"val_loss": 0.5})
    trial.status = "COMPLETED"
    first.end_trial(trial)
    first.ongoing_trials = {"tuner0": first.trials[trial.trial_id]}  # as the chief's oracle.json has it
    first.save()
    running = first.create_trial("tuner1")  # one still running when the chief stopped: that one runs again
    first.save()
    again = oracle()
    again.reload()
    assert again._retry_queue == [running.trial_id]


def test_a_reloaded_oracle_does_not_run_a_failed_trial_again(tmp_path):
    """As a completed one: a trial that failed while the chief's oracle.json still listed it as ongoing is not
    queued again by reload()."""
    def oracle():
        return _random_oracle(tmp_path, max_trials=3)

    first = oracle()
    failed = first.create_trial("tuner0")
    failed.status = "FAILED"
    first.end_trial(failed)
    first.ongoing_trials = {"tuner0": first.trials[failed.trial_id]}  # as the chief's oracle.json has it
    first.save()
    again = oracle()
    again.reload()
    assert again._retry_queue == []
    assert again.create_trial("tuner1").trial_id != failed.trial_id


def test_a_search_killed_while_it_saves_its_state_keeps_the_state_it_had(tmp_path):
    """KerasTuner wrote oracle.json, trial.json and <tuner id>.json in place: a search killed during a write
    left the file empty or cut, and every rerun stopped with a JSONDecodeError traceback. Here each write is
    stopped after 64 bytes (a file size limit), as a kill would stop it."""
    import resource

    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    space = SearchSpace.from_toml(TINY)
    hypermodel = SoundHyperModel(Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES)),
                                 space)
    tuner = tune.make_tuner(space, hypermodel, tmp_path, seed=0)
    oracle = tuner.oracle
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_loss": 0.5})
    tuner.save()
    files = [tmp_path / "search" / name
             for name in ("oracle.json", f"trial_{trial.trial_id}/trial.json", "tuner0.json")]
    before = [path.read_bytes() for path in files]
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed pytest
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, limits[1]))
    try:
        for save in (oracle.save, lambda: oracle._save_trial(trial), tuner.save):
            with pytest.raises(Exception):
                save()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    assert [path.read_bytes() for path in files] == before
    again = tune.make_tuner(space, hypermodel, tmp_path, seed=0)  # reloads the project
    assert list(again.oracle.trials) == [trial.trial_id]


def test_a_reloaded_search_prints_no_line_of_keras_tuners_past_the_log(tmp_path, capsys):
    """KerasTuner printed 'Reloading Tuner from <out>/search/tuner0.json' each time a search resumed, a worker
    joined or a finished search was read again: a line without a time, under --quiet too, where the log had
    just said 'continuing the search in <out>'."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    space = SearchSpace.from_toml(TINY)
    hypermodel = SoundHyperModel(Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES)),
                                 space)
    tuner = tune.make_tuner(space, hypermodel, tmp_path, seed=0)
    trial = tuner.oracle.create_trial("tuner0")
    tuner.oracle.update_trial(trial.trial_id, {"val_loss": 0.5})
    tuner.save()
    capsys.readouterr()
    again = tune.make_tuner(space, hypermodel, tmp_path, seed=0)
    assert list(again.oracle.trials) == [trial.trial_id]  # reloaded
    assert "Reloading" not in capsys.readouterr().out


def test_what_building_the_tuner_printed_stays_when_it_fails(tmp_path, capsys, monkeypatch):
    """make_tuner holds back what KerasTuner prints while it builds, to drop its 'Reloading Tuner from' line; a
    build that failed (the space's default values make no valid model) lost every line printed before the error."""
    import keras_tuner as kt

    from sound_tf import tune, tuners
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    def failing(*args, **kwargs):
        print("Reloading Tuner from x/search/tuner0.json")
        print("building the model of the default values")
        raise kt.errors.FailedTrialError("no valid model")

    space = SearchSpace.from_toml(TINY)
    monkeypatch.setattr(tuners, "SoundTuner", failing)
    monkeypatch.setattr(tuners, "SoundHyperbandTuner", failing)
    hypermodel = SoundHyperModel(Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES)),
                                 space)
    with pytest.raises(kt.errors.FailedTrialError):
        tune.make_tuner(space, hypermodel, tmp_path, seed=0)
    assert capsys.readouterr().out == "building the model of the default values\n"


def test_the_temporary_file_of_a_process_killed_while_it_saved_goes_away(tmp_path):
    """oracle.json, trial.json, heartbeat.json, ... are written to a temporary file renamed over them: one of a
    process killed between the two stayed forever, one more after each kill and resume. Only those of this
    host's ended processes can go: another host's, or a live process's, may be being written."""
    from sound_tf import tune

    host = socket.gethostname()
    ended = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                               text=True).stdout)
    target = tmp_path / "oracle.json"
    dead = tmp_path / f".oracle.json.{host}.{ended}.tmp"
    kept = [tmp_path / f".oracle.json.{host}.{os.getppid()}.tmp",  # a live process of this host
            tmp_path / f".oracle.json.machine-b.{ended}.tmp",  # another host's
            tmp_path / f".trial.json.{host}.{ended}.tmp"]  # another file's
    for path in [dead, *kept]:
        path.write_text('{"cut')
    tune._write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(tmp_path.iterdir()) == sorted([target, *kept])


def test_trials_in_flight_when_the_chief_restarted_are_not_run_again_once_they_end(tmp_path):
    """reload() queues every trial that was running; it kept them queued after their workers reported them
    ended, so each was handed out and trained a second time."""
    from sound_tf import tune

    def oracle():
        return _random_oracle(tmp_path, max_trials=3)

    first = oracle()
    a, b = first.create_trial("tuner0"), first.create_trial("tuner1")
    first.save()  # the chief stops while tuner0 and tuner1 run a and b; a new chief reloads the project
    chief = oracle()
    chief.reload()
    assert sorted(chief._retry_queue) == sorted([a.trial_id, b.trial_id])
    chief.update_trial(a.trial_id, {"val_loss": 0.5})  # the workers report to the new chief
    a.status = "COMPLETED"
    chief.end_trial(a)
    b.status = "FAILED"
    chief.end_trial(b)
    assert chief._retry_queue == []
    state = json.loads((tmp_path / tune.PROJECT / "oracle.json").read_text())
    assert state["retry_queue"] == []
    third = chief.create_trial("tuner0")
    assert third.status == "RUNNING" and third.trial_id not in (a.trial_id, b.trial_id)
    chief.update_trial(third.trial_id, {"val_loss": 0.4})
    third.status = "COMPLETED"
    chief.end_trial(third)
    assert chief.create_trial("tuner0").status == "STOPPED" and chief.finished()
    assert {t.trial_id: t.status for t in chief.trials.values()} == {
        a.trial_id: "COMPLETED", b.trial_id: "FAILED", third.trial_id: "COMPLETED"}


def test_a_restarted_chief_leaves_a_trial_with_the_worker_still_running_it(tmp_path):
    """reload() queued every running trial: the next worker that asked was handed one another worker still
    ran, and it was trained twice. A trial whose worker's heartbeat no longer names it runs again."""
    from sound_tf import tune

    def oracle():
        return _random_oracle(tmp_path, max_trials=4)

    first = oracle()
    a, b, c = first.create_trial("tuner0"), first.create_trial("tuner1"), first.create_trial("tuner2")
    first.save()  # the chief stops while the three run
    for tid, running in (("tuner0", a.trial_id), ("tuner1", None)):  # tuner1 was between trials; tuner2 never beat
        path = tmp_path / "workers" / tid / tune.HEARTBEAT_FILE
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"tuner_id": tid, "trial_id": running, "beat": 3}))
    chief = oracle()
    chief.reload()
    messages: list[str] = []
    assert tune._resume_in_flight(chief, tmp_path, messages.append) == {"tuner0": a.trial_id}
    assert messages == [f"chief: worker tuner0 was running trial {a.trial_id} when the chief stopped, and its "
                        f"heartbeat names that trial: it stays tuner0's (and runs again elsewhere only if tuner0 is "
                        f"silent for --worker-timeout)"]
    assert sorted(chief._retry_queue) == sorted([b.trial_id, c.trial_id])
    # oracle.json says so at once (trials.csv of --summarize, a chief restarted again): a runs, b and c wait
    assert {r.trial_id: r.status for r in tune.load_trials(tmp_path)} == {
        a.trial_id: "RUNNING", b.trial_id: "INTERRUPTED", c.trial_id: "INTERRUPTED"}
    assert {chief.create_trial("tuner3").trial_id, chief.create_trial("tuner4").trial_id} == {b.trial_id, c.trial_id}
    assert chief.create_trial("tuner0").trial_id == a.trial_id  # (as a worker started again under its id)
    assert not chief.finished() and "tuner0" in chief.active_tuners()  # its heartbeat is watched
    assert tune._resume_in_flight(chief, tmp_path, messages.append) == {}  # once, after the reload
    # tuner0 goes silent: released as any worker, and its trial runs again on the next worker that asks
    assert chief.release_tuner("tuner0", "worker tuner0 sent no heartbeat for 120 s") == a.trial_id
    assert chief.create_trial("tuner5").trial_id == a.trial_id


def _val_accuracy_search(folder: Path, accuracies: Sequence[float | None]) -> tuple[Any, list[str]]:
    """A search in ``folder`` (its search.json) on ``val_accuracy`` whose trials scored ``accuracies`` in
    turn (``None``: a failed trial); returns its space and the trial ids."""
    import keras_tuner as kt

    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_toml(TINY).replace_settings(objective="val_accuracy")
    tune._prepare_folder(folder, Config(), space, "local", overwrite=False, log=lambda m: None)  # its search.json
    oracle = tune.RandomSearchOracle(max_trials=len(accuracies),
                                     **tune.oracle_options(kt.Objective("val_accuracy", "max"), seed=0))
    oracle._set_project_dir(str(folder), tune.PROJECT)
    oracle.hyperparameters.Float("x", 0.0, 1.0)
    ids = []
    for accuracy in accuracies:
        trial = oracle.create_trial("tuner0")
        ids.append(trial.trial_id)
        if accuracy is not None:
            oracle.update_trial(trial.trial_id, {"val_accuracy": accuracy, "val_loss": 1 - accuracy})
        trial.status = "COMPLETED" if accuracy is not None else "FAILED"
        oracle.end_trial(trial)
    return space, ids


def test_a_maximised_objective_ranks_the_highest_first(tmp_path):
    from sound_tf import tune

    space, ids = _val_accuracy_search(tmp_path, (0.5, 0.9, 0.7, None))
    expected = [ids[1], ids[2], ids[0], ids[3]]
    assert [r.trial_id for r in tune.load_trials(tmp_path, "max")] == expected
    assert [r.trial_id for r in tune.load_trials(tmp_path, "min")] == [ids[0], ids[2], ids[1], ids[3]]
    best = tune.write_summary(tmp_path, space)
    rows = read_csv(tmp_path / "trials.csv")
    assert [(r["rank"], r["trial_id"], r["val_accuracy"]) for r in rows] == [
        ("1", ids[1], "0.9"), ("2", ids[2], "0.7"), ("3", ids[0], "0.5"), ("", ids[3], "")]
    assert best.trial_id == ids[1]
    saved = json.loads((tmp_path / "best_hparams.json").read_text())
    assert (saved["trial_id"], saved["direction"], saved["score"]) == (ids[1], "max", pytest.approx(0.9))
    # --summarize ranks by the search's objective (search.json), not by the one its space file names (val_loss)
    (tmp_path / "best_hparams.json").unlink()
    assert tune.main(["--out", str(tmp_path), "--summarize"]) == 0
    summarized = json.loads((tmp_path / "best_hparams.json").read_text())
    assert {k: summarized[k] for k in ("objective", "direction", "trial_id", "score")} == {
        "objective": "val_accuracy", "direction": "max", "trial_id": ids[1], "score": saved["score"]}


def test_summarize_prints_its_line_without_tensorflows_start_up(tmp_path):
    """--summarize without --quiet printed absl's notice and TensorFlow's oneDNN line, twice, on stderr."""
    _val_accuracy_search(tmp_path, (0.5, 0.9))
    environment = environment_as_a_user_starts_it()  # TensorFlow's oneDNN notice written on any x86 CPU
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO), environment.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "sound_tf.tune", "--out", str(tmp_path), "--summarize"], cwd=REPO,
                          env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
    assert done.stdout == (f"wrote {tmp_path / 'trials.csv'} and {tmp_path / 'trials.png'}; best trial "
                           f"{tune_best_id(tmp_path)}: val_accuracy = 0.9\n")
    missing = subprocess.run([sys.executable, "-m", "sound_tf.tune", "--out", str(tmp_path / "nothing"), "--summarize"],
                             cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert (missing.returncode, missing.stdout) == (2, "")  # its error still shows
    assert missing.stderr == f"error: {tmp_path / 'nothing'}: no search.json here; not a search folder\n"


def tune_best_id(out: Path) -> str:
    return json.loads((out / "best_hparams.json").read_text())["trial_id"]


def test_each_tuner_gets_the_spaces_objective_direction_and_budget(tmp_path):
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    config = Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES))
    space = SearchSpace.from_toml(TINY).replace_settings(objective="val_accuracy")  # 5 hyperparameters
    hypermodel = SoundHyperModel(config, space, trial_epochs=3)

    def oracle(name, **settings):
        chosen = space.replace_settings(**settings)
        tuner = tune.make_tuner(chosen, hypermodel, tmp_path / name, seed=0)
        made = tuner.oracle
        assert (made.objective.name, made.objective.direction) == ("val_accuracy", "max")
        return made

    assert oracle("random", tuner="random", max_trials=5).max_trials == 5
    given = oracle("bayesian", tuner="bayesian", max_trials=30, initial_points=2)
    assert (given.max_trials, given.num_initial_points) == (30, 2)
    # None: a third of max_trials, at least 3 and at most 3 per hyperparameter
    assert oracle("bayesian-30", tuner="bayesian", max_trials=30).num_initial_points == 10
    assert oracle("bayesian-60", tuner="bayesian", max_trials=60).num_initial_points == 15
    assert oracle("bayesian-4", tuner="bayesian", max_trials=4).num_initial_points == 3
    hyperband = oracle("hyperband", tuner="hyperband", max_trials=7, hyperband_factor=2)
    assert (hyperband.max_trials, hyperband.max_epochs, hyperband.factor) == (7, 3, 2)


def test_failed_trials_in_a_row_do_not_stop_or_wedge_the_search(tmp_path):
    """With KerasTuner's limit, the third failure in a row raised inside the oracle: no outputs, a search
    that failed again on every resume, and a distributed chief waiting forever on the oracle's lock."""
    import keras_tuner as kt

    from sound_tf import tune

    oracle = tune.RandomSearchOracle(max_trials=8, **tune.oracle_options(kt.Objective("val_loss", "min"), seed=0))
    oracle._set_project_dir(str(tmp_path), "project")
    oracle.hyperparameters.Float("x", 0.0, 1.0)
    for index in range(6):
        trial = oracle.create_trial("tuner0")
        if index < 5:
            trial.status = "FAILED"
        else:
            oracle.update_trial(trial.trial_id, {"val_loss": 0.5})
            trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert [t.status for t in oracle.trials.values()] == ["FAILED"] * 5 + ["COMPLETED"]
    assert oracle.create_trial("tuner0").status == "RUNNING"  # the oracle answers on


def test_overwrite_deletes_nothing_when_a_flag_is_wrong(tmp_path, capsys):
    from sound_tf import tune

    out = tmp_path / "search"
    out.mkdir()
    (out / "trials.csv").write_text("kept\n")
    code = tune.main(["--tuning", str(TINY), "--out", str(out), "--overwrite", "--time-budget", "0"])
    assert code == 2 and "--time-budget must be > 0" in capsys.readouterr().err
    assert (out / "trials.csv").read_text() == "kept\n"


@pytest.mark.parametrize("flag, value", [("--max-trials", "0"), ("--max-trials", "-2"), ("--trial-epochs", "0")])
def test_a_count_flag_below_one_is_refused_naming_the_flag(tmp_path, capsys, flag, value):
    """It was refused as "search.max_trials must be an integer >= 1", naming a setting of the space file
    rather than the flag that was given."""
    from sound_tf import tune

    code = tune.main(["--tuning", str(TINY), "--out", str(tmp_path / "out"), flag, value])
    assert code == 2 and capsys.readouterr().err.strip() == f"error: {flag} must be at least 1, got {value}"
    assert not (tmp_path / "out").exists()


def test_a_search_whose_data_could_not_be_read_does_not_hold_back_the_corrected_command(tmp_path, capsys):
    """A typo in --data left search.json behind, and the command with the right --data was refused as
    "holds a search with other settings (data.path: ...)" until --overwrite."""
    from sound_tf import tune

    out = tmp_path / "search"
    for data in ("typo", "still_missing"):
        code = tune.main(["--data", str(tmp_path / data), "--tuning", str(TINY), "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and f"error: {tmp_path / data}: no such file or folder" in err, err
        assert not (out / tune.SEARCH_FILE).exists()

def test_a_continued_search_whose_data_cannot_be_read_keeps_its_search_json(tmp_path):
    """Only a search that never started loses its search.json when its data cannot be read: one begun
    earlier keeps it (its trial epochs and what it does not search), and the same command continues it once
    the data are back (a disk not mounted, say)."""
    import shutil

    from sound_tf import tune
    from sound_tf.errors import SoundTFError
    from sound_tf.hypermodel import SearchSpace

    data, out = make_tones(tmp_path / "data", clips_per_class=5), tmp_path / "search"
    config, space = base_config(data), SearchSpace.from_toml(TINY)
    tune._prepare_folder(out, config, space, "local", overwrite=False, log=lambda m: None)
    before = json.loads((out / tune.SEARCH_FILE).read_text())
    shutil.rmtree(data)
    with pytest.raises(SoundTFError, match="no such file or folder"):
        tune.run_search(config, space, out, final=False, log=lambda m: None)
    after = json.loads((out / tune.SEARCH_FILE).read_text())
    assert {k: v for k, v in after.items() if k != "updated"} == {k: v for k, v in before.items() if k != "updated"}
    assert after[tune.TRIAL_EPOCHS] == 1


def test_a_space_counts_its_configurations():
    from sound_tf.hypermodel import SearchSpace

    def count(**hp):
        return SearchSpace.from_dict({"hp": {name: table for name, table in hp.items()}}).configurations()

    rate = {"key": "train.learning_rate", "values": [0.001, 0.003, 0.01]}
    assert count(rate=rate, aug={"key": "augment.enabled", "type": "boolean"}) == 6
    assert count(rate=rate, bins={"key": "features.num_mel_bins", "min": 16, "max": 60, "step": 8}) == 3 * 6  # 16..56
    assert count(rate=rate, bins={"key": "features.num_mel_bins", "min": 16, "max": 20}) == 3 * 5  # an int steps by 1
    assert count(rate=rate, drop={"key": "model.dropout", "min": 0.0, "max": 0.5, "step": 0.1}) == 3 * 6
    assert count(lr={"key": "train.learning_rate", "min": 0.001, "max": 0.01, "step": 2, "sampling": "log"}) == 4
    assert count(rate=rate, drop={"key": "model.dropout", "min": 0.0, "max": 0.5}) is None  # endless


def test_a_search_whose_space_runs_out_says_so(tmp_path):
    """A random search over 2 configurations asked for 4 trials ended at '2 of 2 trials completed' without saying
    the space ran out."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    data = make_tones(tmp_path / "data", clips_per_class=5)
    space = SearchSpace.from_dict({"search": {"tuner": "random", "max_trials": 4, "epochs": 1}, "hp": {
        "lr": {"key": "train.learning_rate", "values": [0.001, 0.01]}}})
    lines: list[str] = []
    result = tune.run_search(base_config(data), space, tmp_path / "search", final=False, log=lines.append)
    assert sorted(t.values["lr"] for t in result.trials) == [0.001, 0.01]
    ended = [line for line in lines if "trials completed" in line]
    assert len(ended) == 1 and ended[0].startswith("2 of 2 trials completed")
    assert lines[lines.index(ended[0]) + 1] == ("the space holds only 2 configurations: every one was tried, so the "
                                                "search ended before the 4 trials asked")
    # asked for no more trials than the space holds: nothing to say
    space = space.replace_settings(max_trials=2)
    lines.clear()
    tune.run_search(base_config(data), space, tmp_path / "two", final=False, log=lines.append)
    assert any(line.startswith("2 of 2 trials completed") for line in lines)
    assert not any("configurations" in line for line in lines)


def test_an_out_holding_other_files_is_refused_and_overwrite_deletes_nothing(tmp_path, capsys):
    """tune --out FOLDER --overwrite emptied a folder of the user's own."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    assert tune.main(["--tuning", str(TINY), "--out", str(mine), "--overwrite"]) == 2
    assert (f"error: {mine}: not a search folder (it holds notes.txt, and no search.json); the output is written "
            f"into it, and --overwrite empties it first") in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not a search folder"):
        tune.run_search(Config(), SearchSpace.from_toml(TINY), mine, overwrite=True, log=lambda m: None)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_run_search_refuses_a_folder_of_the_users_own_files_in_a_python_callers_words(tmp_path, capsys):
    """From Python, run_search refused such a folder in the command's words ("give another --out, or move those
    files away", "--overwrite empties it first"), though the caller passed out and overwrite=True. It now
    names what it was given; the command keeps its own words."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    written = "run_search writes a search's files into it (search.json, tune.log, search/, trials.csv, best_run/ ...)"
    resume = "; pass a new or empty out, or an earlier search's folder to continue it"
    for overwrite, emptied in ((False, ""), (True, ", and overwrite=True empties it first")):
        with pytest.raises(ConfigError) as info:
            tune.run_search(Config(), SearchSpace.from_toml(TINY), mine, overwrite=overwrite, log=lambda m: None)
        assert str(info.value) == (f"{mine}: not a search folder (it holds notes.txt, and no search.json); "
                                   f"{written}{emptied}{resume}")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert tune.main(["--tuning", str(TINY), "--out", str(mine)]) == 2  # the command's words are its own
    assert capsys.readouterr().err.strip() == (
        f"error: {mine}: not a search folder (it holds notes.txt, and no search.json); the output is written into "
        f"it, and --overwrite empties it first, so it must be new, empty or an earlier search folder: give another "
        f"--out, or move those files away")

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError) as info:
        tune.run_search(Config(), SearchSpace.from_toml(TINY), a_file, log=lambda m: None)
    assert str(info.value) == f"{a_file}: exists and is not a folder; out names a search folder to create or continue"
    assert tune.main(["--tuning", str(TINY), "--out", str(a_file)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {a_file}: exists and is not a folder; --out names a folder " \
                                              f"to create or reuse"


def test_run_search_names_its_callers_out_and_overwrite_and_the_command_its_flags(tmp_path, capsys):
    """run_search, called from Python, said "--overwrite would empty this folder ... choose another --out" and
    "pass --overwrite to start over", though the caller passed out and overwrite=True; it now names them, and
    the command keeps --overwrite and --out."""
    import shutil

    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace
    from sound_tf.train import config_from_args

    space, out = SearchSpace.from_toml(TINY), tmp_path / "search"
    data = make_tones(tmp_path / "data", clips_per_class=2)
    config = config_from_args(tune.build_parser().parse_args(cli_flags(data, out)))
    tune._prepare_folder(out, apply_overrides(config, {"train.epochs": 2}), space, "local", overwrite=False,
                         log=lambda m: None)
    saved = (out / tune.SEARCH_FILE).read_text()
    other = f"{out}: holds a search with other settings (train.epochs: 2 there, 1 now); pass "
    with pytest.raises(ConfigError) as info:
        tune.run_search(config, space, out, log=lambda m: None)
    # (it said "use the same flags and space" too: a Python caller gives a config)
    assert str(info.value) == f"{other}overwrite=True to start over or use the same config and space to continue it"
    capsys.readouterr()
    assert tune.main(cli_flags(data, out)) == 2
    assert capsys.readouterr().err == (f"{folder_recipe_line(data)}error: {other}--overwrite to start over or use the "
                                       f"same flags and space to continue it\n")

    inside = out / "data"  # the search folder holds the data it reads: not emptied
    shutil.copytree(data, inside)
    with pytest.raises(ConfigError) as info:
        tune.run_search(apply_overrides(config, {"data.path": str(inside)}), space, out, overwrite=True,
                        log=lambda m: None)
    assert str(info.value) == (f"{out}: overwrite=True would empty this folder, and data.path={inside} is in it "
                               f"(run_search reads it); copy it elsewhere first, or choose another out")
    assert tune.main(cli_flags(inside, out, "--overwrite")) == 2
    assert capsys.readouterr().err.strip() == (
        f"{folder_recipe_line(inside)}error: {out}: --overwrite would empty this folder, and data.path={inside} "
        f"is in it (this command reads it); copy it elsewhere first, or choose another --out")
    assert (out / tune.SEARCH_FILE).read_text() == saved and len(list(inside.rglob("*.wav"))) == 6


def test_trials_are_plotted_in_the_order_they_ended():
    """A search extended from 6 to 11 trials has ids 0..5 and 06..10: sorted as strings, trials.png put
    them as 0, 06, 07, 08, 09, 1, 10, 2, ... and drew a wrong "best so far" curve."""
    from sound_tf.tune import TrialRecord, in_finish_order

    ids = [str(i) for i in range(6)] + [f"{i:02d}" for i in range(6, 11)]
    shuffled = [TrialRecord(trial_id=t, status="COMPLETED", score=1.0) for t in reversed(ids)]
    assert [r.trial_id for r in in_finish_order(shuffled)] == ids
    ended = [TrialRecord(trial_id=t, status="COMPLETED", score=1.0, finished=place)
             for place, t in enumerate(["3", "0", "1"])] + [TrialRecord(trial_id="2", status="RUNNING", score=None)]
    assert [r.trial_id for r in in_finish_order(ended)] == ["3", "0", "1", "2"]


def test_the_summary_names_the_worker_that_ran_a_trial_to_the_end_and_counts_completed_trials(tmp_path):
    """A trial handed to tuner1, which died, and run again by tuner0: trials.csv and best_hparams.json name
    tuner0 (the last one); best_hparams.json counts the completed trials, not every trial."""
    import keras_tuner as kt

    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    oracle = tune.RandomSearchOracle(max_trials=2, **tune.oracle_options(kt.Objective("val_loss", "min"), seed=0))
    oracle._set_project_dir(str(tmp_path), tune.PROJECT)
    oracle.hyperparameters.Float("x", 0.0, 1.0)
    a = oracle.create_trial("tuner1")
    oracle.release_tuner("tuner1", "worker tuner1 sent no heartbeat for 120 s")
    again = oracle.create_trial("tuner0")
    oracle.update_trial(again.trial_id, {"val_loss": 0.5})
    again.status = "COMPLETED"
    oracle.end_trial(again)
    failed = oracle.create_trial("tuner2")
    failed.status = "FAILED"
    oracle.end_trial(failed)
    best = tune.write_summary(tmp_path, SearchSpace.from_toml(TINY))
    assert best.trial_id == a.trial_id and best.tuner_ids == ["tuner1", "tuner0"]
    rows = {row["trial_id"]: row for row in read_csv(tmp_path / "trials.csv")}
    assert (rows[a.trial_id]["tuner_id"], rows[a.trial_id]["status"]) == ("tuner0", "COMPLETED")
    assert (rows[failed.trial_id]["tuner_id"], rows[failed.trial_id]["status"]) == ("tuner2", "FAILED")
    summary = json.loads((tmp_path / "best_hparams.json").read_text())
    assert (summary["tuner_id"], summary["completed_trials"], summary["trials"]) == ("tuner0", 1, 2)


def test_a_search_folder_in_use_is_refused_and_kept(tmp_path, capsys):
    """A second tune command on the same --out trained the same trials over the first's (or, with
    --overwrite, deleted its folder under it, and the first then reported success)."""
    from sound_tf import tune

    data = make_tones(tmp_path / "data", clips_per_class=4)
    out = tmp_path / "out"
    out.mkdir()
    (out / "search.json").write_text("{}")
    holder = hold_folder(out)
    try:
        assert tune.main(cli_flags(data, out, "--overwrite")) == 2
        assert "which is running a search in it" in capsys.readouterr().err
        assert (out / "search.json").read_text() == "{}"  # nothing deleted
    finally:
        holder.kill()
        holder.wait()


_hold, _claims = hold_folder, claimable  # another process that holds a folder; whether one could claim it


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): b"" if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def test_run_search_refuses_an_out_another_process_holds_and_gives_it_back(tmp_path, monkeypatch):
    """Only the command locked out: run_search from a notebook rewrote search.json under a running search, and
    with overwrite=True emptied its folder. A local search and a chief claim out as the command does (refused in
    the caller's words before anything is written or deleted, given back however they end); a worker, which
    shares the chief's folder, claims nothing."""
    from sound_tf import locks, tune
    from sound_tf.hypermodel import SearchSpace

    space, out = SearchSpace.from_toml(TINY), tmp_path / "search"
    (out / "best_run").mkdir(parents=True)
    (out / "search.json").write_text("{}")  # another search's folder (other settings)
    (out / "best_run" / "model.keras").write_text("kept")
    holder = _hold(out)
    try:
        before = _contents(out)
        in_use = (f"{out}: in use by pid {holder.pid} on {socket.gethostname()}, which is running a search in it; "
                  f"wait for it to end, or choose another out")
        for overwrite in (False, True):
            with pytest.raises(ConfigError) as info:
                tune.run_search(Config(), space, out, overwrite=overwrite, log=lambda m: None)
            assert str(info.value) == in_use
            assert _contents(out) == before  # nothing written, nothing deleted
        _as_chief(monkeypatch)
        with pytest.raises(ConfigError) as info:  # a chief holds it as a local search does
            tune.run_search(Config(), space, out, overwrite=True, log=lambda m: None)
        assert str(info.value) == in_use and _contents(out) == before
        monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")  # a worker joins the folder its chief holds
        with pytest.raises(ConfigError, match="the chief's search differs from this worker's"):
            tune.run_search(Config(), space, out, log=lambda m: None)
        monkeypatch.delenv("KERASTUNER_ORACLE_IP")
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(ConfigError, match="holds a search with other settings"):  # raised when claimed
        tune.run_search(Config(), space, out, log=lambda m: None)
    assert _claims(out)  # given back
    assert locks.claim_folder(out) is None  # as the command holds it: run_search claims it once more...
    with pytest.raises(ConfigError, match="holds a search with other settings"):
        tune.run_search(Config(), space, out, log=lambda m: None)
    assert not _claims(out)  # ...and gives back only its own claim
    locks.release_folder(out)
    assert _claims(out)


def test_run_search_overwrite_empties_best_run_only_when_no_other_process_holds_it(tmp_path):
    """The command's --overwrite empties best_run under its lock (a `train --out .../best_run` may train there);
    run_search(overwrite=True) deleted it, lock file and all, under the run training there."""
    from sound_tf import tune
    from sound_tf.errors import DatasetError
    from sound_tf.hypermodel import SearchSpace

    space, out = SearchSpace.from_toml(TINY), tmp_path / "search"
    config = base_config(tmp_path / "missing")  # no data: the search stops once its folder is emptied
    tune._prepare_folder(out, config, space, "local", overwrite=False, log=lambda m: None)  # a search's folder
    (out / "best_run").mkdir()
    (out / "best_run" / "model.keras").write_text("training")
    holder = _hold(out / "best_run")
    try:
        before = _contents(out)
        with pytest.raises(ConfigError) as info:
            tune.run_search(config, space, out, overwrite=True, log=lambda m: None)
        assert str(info.value) == (f"{out / 'best_run'}: in use by pid {holder.pid} on {socket.gethostname()}, which "
                                   f"is training in it; wait for it to end, or choose another out")
        after = _contents(out)
        assert after.pop(".lock") and after == before  # nothing deleted (out's lock file is new: it was claimed)
    finally:
        holder.kill()
        holder.wait()
    assert _claims(out) and _claims(out / "best_run")  # both given back
    messages: list[str] = []
    with pytest.raises(DatasetError, match="missing"):  # emptied, then its data is missing
        tune.run_search(config, space, out, overwrite=True, log=messages.append)
    assert f"overwrite=True: deleting {out}" in messages
    assert sorted(_contents(out)) == [".lock", "best_run", "best_run/.lock"]  # emptied; the locks stay
    assert _claims(out) and _claims(out / "best_run")


def test_a_best_run_folder_in_use_is_refused_in_the_callers_words(tmp_path, monkeypatch, capsys):
    """run_search told a Python caller whose best_run another process held to "choose another --out"; it names
    out now, and the command keeps --out. No trial runs: a stand-in tuner, and a best trial as if one had."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace
    from sound_tf.train import config_from_args

    class Tuner:
        def save(self) -> None:
            pass

        def search(self, **kwargs: Any) -> None:
            pass

    monkeypatch.setattr(tune, "make_tuner", lambda *args, **kwargs: Tuner())
    best = tune.TrialRecord(trial_id="0", status="COMPLETED", score=0.5)
    monkeypatch.setattr(tune, "write_summary", lambda *args, **kwargs: best)
    data, out = make_tones(tmp_path / "data", clips_per_class=5), tmp_path / "search"
    flags, space = cli_flags(data, out), SearchSpace.from_toml(TINY)
    config = config_from_args(tune.build_parser().parse_args(flags))
    tune._prepare_folder(out, config, space, "local", overwrite=False, log=lambda m: None)  # a search's folder
    holder = hold_folder(out / 'best_run')
    try:
        in_use = (f"{out / 'best_run'}: in use by pid {holder.pid} on {socket.gethostname()}, which is training in "
                  f"it; wait for it to end, or choose another ")
        with pytest.raises(ConfigError) as info:
            tune.run_search(config, space, out, log=lambda m: None)
        assert str(info.value) == f"{in_use}out"
        capsys.readouterr()
        assert tune.main(flags) == 2
        assert capsys.readouterr().err == f"{folder_recipe_line(data)}error: {in_use}--out\n"
    finally:
        holder.kill()
        holder.wait()


def test_a_chief_refuses_a_port_another_chief_serves(monkeypatch):
    """gRPC servers reuse ports, so a second chief used to start on the first one's port and take its workers."""
    from sound_tf import tune

    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as gRPC's server does
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
        from sound_tf.hypermodel import SearchSpace

        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}: the oracle's port is in use"):
            tune.check_search(Config(), SearchSpace.from_toml(TINY), time_budget_minutes=None,
                              worker_timeout_seconds=60.0)


@pytest.mark.parametrize("tuner_id", ["chief", "tuner0"])
def test_an_oracle_port_out_of_range_is_refused_naming_the_variable(monkeypatch, tuner_id):
    """KERASTUNER_ORACLE_PORT=99999 was an OverflowError traceback on the chief and on workers."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    for port in ("99999", "0", "-1", "80a"):
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", port)
        with pytest.raises(ConfigError) as refused:
            tune.check_search(Config(), SearchSpace.from_toml(TINY), time_budget_minutes=None,
                              worker_timeout_seconds=60.0)
        assert str(refused.value) == f"KERASTUNER_ORACLE_PORT={port}: not a port number (1 to 65535)"
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "65535")
    assert tune.current_role() == ("chief" if tuner_id == "chief" else "worker")


def test_the_role_follows_kerastuners_own_rule_for_the_chief(monkeypatch):
    """KerasTuner serves the oracle from any process whose KERASTUNER_TUNER_ID contains "chief" (chief-eu,
    chief0): such a process must act as the chief here too, not ask itself for trials as a worker."""
    from keras_tuner.src.distribute import utils as kt_distribute
    from sound_tf import tune

    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    for tid in ("chief", "chief-eu", "chief0", "tuner0", "worker-7"):
        monkeypatch.setenv("KERASTUNER_TUNER_ID", tid)
        assert tune.current_role() == ("chief" if kt_distribute.is_chief_oracle() else "worker"), tid
    assert tune.current_role() == "worker"
    monkeypatch.delenv("KERASTUNER_ORACLE_IP")
    assert tune.current_role() == "local"


def test_a_worker_says_what_it_waits_for_and_gives_up_on_an_address_nobody_serves(tmp_path, monkeypatch):
    """KerasTuner's client waited for ever, without a word, on a wrong KERASTUNER_ORACLE_PORT."""
    from sound_tf import tune

    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner3")
    with socket.socket() as chief:  # something that accepts connections, as the chief's oracle does
        chief.bind(("127.0.0.1", 0))
        chief.listen()
        port = chief.getsockname()[1]
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            wrong = unused.getsockname()[1]  # bound, never listening: connections are refused
            (tmp_path / "chief.json").write_text(json.dumps({"status": "serving", "ip": "127.0.0.1",
                                                             "port": str(port)}))
            messages: list[str] = []
            tune._wait_for_oracle("127.0.0.1", str(port), tmp_path, messages.append)
            assert messages == []  # the chief answers: no wait, nothing to say
            began = time.monotonic()
            with pytest.raises(ConfigError) as refused:
                tune._wait_for_oracle("127.0.0.1", str(wrong), tmp_path, messages.append, wait_seconds=2.5,
                                      report_seconds=1.0)
    assert 2.5 <= time.monotonic() - began < 10.0
    hint = f"the chief in {tmp_path} serves on 127.0.0.1:{port} ({tmp_path / 'chief.json'})"
    assert str(refused.value) == (f"127.0.0.1:{wrong}: no oracle answered there within 2.5 s (Connection refused); "
                                  f"{hint}; give every worker the chief's KERASTUNER_ORACLE_IP and "
                                  f"KERASTUNER_ORACLE_PORT")
    assert 2 <= len(messages) <= 4 and all(m == f"worker tuner3: no oracle answers at 127.0.0.1:{wrong} yet "
                                              f"(Connection refused); {hint}; waiting up to 2.5 s for the chief"
                                           for m in messages)
    with pytest.raises(ConfigError, match="KERASTUNER_ORACLE_PORT=80a: not a port number"):
        tune._wait_for_oracle("127.0.0.1", "80a", tmp_path, messages.append)


@pytest.fixture
def away_chief(monkeypatch):
    """Worker tuner2 and a chief's port that nothing answers (bound, not listening: ``chief.held.listen()`` brings the
    chief back); ``chief.watch(interval=...)`` is an OracleWatch of it, whose lines go to ``chief.messages``, each
    beginning with ``chief.prefix``."""
    from types import SimpleNamespace

    from sound_tf import tune

    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner2")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        messages: list[str] = []

        def watch(**kwargs):
            return tune.OracleWatch("127.0.0.1", str(port), messages.append, **kwargs)

        yield SimpleNamespace(held=held, port=port, messages=messages, watch=watch,
                              prefix=f"worker tuner2: the chief's oracle at 127.0.0.1:{port}")


@pytest.fixture
def clock(monkeypatch):
    """tune's monotonic clock, stopped at 100 s and moved by hand (``clock[0] = 130.0``)."""
    from sound_tf import tune

    now = [100.0]
    monkeypatch.setattr(tune.time, "monotonic", lambda: now[0])
    return now


def test_a_worker_says_when_the_chief_stops_answering_and_when_it_is_back(away_chief):
    """A chief killed mid-search left its workers waiting without a word (KerasTuner's client waits an hour)."""
    from sound_tf import tune

    messages, prefix = away_chief.messages, away_chief.prefix
    with away_chief.watch(interval=0.2) as watch:
        deadline = time.monotonic() + 20
        while len(messages) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        away_chief.held.listen()  # the chief is back
        while not any("answers again" in m for m in messages) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert watch.gone_since is None and watch.check() and len(messages) >= 4
    # its first line read 'has not answered for 0 s'
    assert messages[0] == (f"{prefix} stopped answering (Connection refused); this worker waits for it (KerasTuner "
                           "gives up after 60 min): start the chief again with the same command and it continues the "
                           "search")
    away = [m for m in messages if "has not answered" in m]
    assert len(away) >= 2 and all(m.startswith(f"{prefix} has not answered for ") for m in away)
    assert away[0].partition(" s (")[2] == messages[0].partition(" (")[2]
    assert messages[-1].startswith(f"{prefix} answers again, after ")
    assert messages.index(messages[-1]) == len(messages) - 1 and "answers again" not in " ".join(messages[:-1])

    import grpc

    class GaveUp(grpc.RpcError):  # what KerasTuner's client raises after its hour
        def code(self):
            return grpc.StatusCode.DEADLINE_EXCEEDED

    assert str(tune._oracle_gone(GaveUp(), "10.0.0.1", "8000")) == (
        "worker tuner2: the chief's oracle at 10.0.0.1:8000 stopped answering (DEADLINE_EXCEEDED); start the chief "
        "again with the same command (it continues the search), then this worker")


def test_a_worker_counts_the_chiefs_absence_from_when_it_began(away_chief, clock):
    watch, prefix = away_chief.watch(interval=60.0), away_chief.prefix
    assert not watch.check()
    clock[0] = 130.0
    assert not watch.check()
    away_chief.held.listen()
    clock[0] = 145.0
    assert watch.check() and watch.check()
    # the first line read 'has not answered for 0 s'
    assert [m.partition(" (")[0] for m in away_chief.messages[:2]] == [f"{prefix} stopped answering",
                                                                        f"{prefix} has not answered for 30 s"]
    assert away_chief.messages[2:] == [f"{prefix} answers again, after 45 s"]


def _hook_worker(trials: Path, log: Callable[[str], None], *, config: Config | None = None,
                 answered: Callable[[str], None] | None = None) -> Any:
    """A worker of SoundTunerMixin's on_trial_begin hook alone (no oracle, no model): its trial folders in ``trials``,
    its lines to ``log``, its hypermodel's trial config ``config`` (``None``: the trial cannot be built), and
    ``answered`` told of each trial it begins (a chief's watch, OracleWatch.answered)."""
    import keras_tuner as kt

    from sound_tf import tuners

    class Base:
        def on_trial_begin(self, trial):
            pass

    class Hypermodel:
        space = None

        def __init__(self):
            self.log = log

        def trial_config(self, hp):
            if config is None:
                raise kt.errors.FailedTrialError("not built here")
            return config

    class Worker(tuners.SoundTunerMixin, Base):
        def __init__(self):
            self.hypermodel, self.oracle_answered = Hypermodel(), answered

        def get_trial_dir(self, trial_id):
            (trials / f"trial_{trial_id}").mkdir(exist_ok=True)
            return str(trials / f"trial_{trial_id}")

    return Worker()


def test_a_worker_says_the_chief_is_back_before_the_trial_it_hands_out(tmp_path, away_chief, clock):
    """The worker's tune.log read 'answers again, after 60 s' below the first lines of the next trial the chief
    handed it: its watch checked every 30 s, and the worker had asked for a trial meanwhile."""
    import keras_tuner as kt

    messages = away_chief.messages
    watch = away_chief.watch(interval=60.0)
    assert not watch.check()
    worker = _hook_worker(tmp_path, messages.append, answered=watch.answered)
    away_chief.held.listen()
    clock[0] = 147.0
    trial = kt.engine.trial.Trial(kt.HyperParameters(), trial_id="3", status="RUNNING")
    trial.hyperparameters.values = {"lr": 0.01}
    worker.on_trial_begin(trial)
    clock[0] = 160.0
    assert watch.check()  # the watch's next check: said already
    assert messages[1:] == [f"{away_chief.prefix} answers again, after 47 s: it hands this worker trial 3",
                            "trial 3: lr=0.01"]
    watch.answered("4")  # the chief was not away: nothing to say
    assert len(messages) == 3


def test_a_worker_says_the_chief_is_back_when_it_is_not_at_its_next_report(away_chief):
    """While the chief is away the watch tries it every `probe` s: its return was said up to 30 s late."""
    messages = away_chief.messages
    watch = away_chief.watch(interval=60.0, probe=0.1)
    assert not watch.check()  # as the thread's check finds it
    with watch:
        time.sleep(0.3)  # a few silent probes: no line
        assert len(messages) == 1
        away_chief.held.listen()
        deadline = time.monotonic() + 10
        while len(messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert watch.gone_since is None
    assert messages[1] == f"{away_chief.prefix} answers again, after 0 s"


def test_a_worker_is_pointed_to_the_chiefs_port_only_when_it_is_another_one(tmp_path):
    from sound_tf import tune

    (tmp_path / "chief.json").write_text(json.dumps({"status": "serving", "ip": "10.0.0.1", "port": "8000"}))
    assert tune._chief_hint(tmp_path, "8000") == ("", False)  # the right port: the chief may be starting
    assert tune._chief_hint(tmp_path, "8001") == (
        f"; the chief in {tmp_path} serves on 10.0.0.1:8000 ({tmp_path / 'chief.json'})", False)


def test_a_worker_whose_data_is_mounted_elsewhere_joins_the_chiefs_search(tmp_path):
    """Machines may mount the data in different places: a worker's --data differing from the chief's is no
    reason to refuse it (its split, compared by file names, checks the data), and its split then matches."""
    from sound_tf import tune
    from sound_tf.datasets import Example, write_split_csv
    from sound_tf.hypermodel import SearchSpace

    space, out = SearchSpace.from_toml(TINY), tmp_path / "shared"
    chief = apply_overrides(Config(), {"data.path": "/mnt/nfs/tones"})
    tune._prepare_folder(out, chief, space, "chief", overwrite=False, log=lambda m: None)
    worker = apply_overrides(Config(), {"data.path": "/srv/data/tones"})
    tune._prepare_folder(out, worker, space, "worker", overwrite=False, log=lambda m: None)  # not refused
    with pytest.raises(ConfigError, match=r"the chief's search differs from this worker's \(train.epochs: "):
        tune._prepare_folder(out, apply_overrides(worker, {"train.epochs": chief.train.epochs + 1}), space, "worker",
                             overwrite=False, log=lambda m: None)

    def split(root: str, *, rename: bool = False) -> dict[str, list[Example]]:
        return {"train": [Example(f"{root}/low/a.wav", "low"), Example(f"{root}/mid/b.wav", "mid")],
                "val": [Example(f"{root}/low/{'x' if rename else 'c'}.wav", "low")], "test": []}

    write_split_csv(tmp_path / "chief.csv", split("/mnt/nfs/tones"))
    write_split_csv(tmp_path / "worker.csv", split("/srv/data/tones"))
    tune._check_same_split(tmp_path / "chief.csv", tmp_path / "worker.csv")  # the same files: no error
    write_split_csv(tmp_path / "other.csv", split("/srv/data/tones", rename=True))
    from sound_tf.errors import DatasetError
    with pytest.raises(DatasetError) as info:
        tune._check_same_split(tmp_path / "chief.csv", tmp_path / "other.csv")
    # was "(e.g. [('val', 'low', 'c.wav'), ('val', 'low', 'x.wav')])", the tuples of both sides in one list
    assert str(info.value) == (f"{tmp_path / 'other.csv'}: this worker's split differs from the chief's "
                               f"{tmp_path / 'chief.csv'}: 3 files here (train 2, val 1, test 0), 3 the chief's "
                               "(train 2, val 1, test 0); 1 only here: low/x.wav; 1 only the chief's: low/c.wav; "
                               "every machine needs the same data and flags")
    # one machine's copy holds a file more: it and the files it moved to another split are named
    bigger = split("/srv/data/tones")
    bigger["val"].append(Example("/srv/data/tones/mid/d.wav", "mid"))
    bigger["train"], bigger["test"] = bigger["train"][:1], [bigger["train"][1]]
    write_split_csv(tmp_path / "bigger.csv", bigger)
    with pytest.raises(DatasetError) as info:
        tune._check_same_split(tmp_path / "chief.csv", tmp_path / "bigger.csv")
    assert (": 4 files here (train 1, val 2, test 1), 3 the chief's (train 2, val 1, test 0); 1 only here: mid/d.wav; "
            "1 in another split here (a file more or less moves others): mid/b.wav (train there, test here); every "
            "machine needs") in str(info.value)


def test_a_worker_with_another_search_space_is_told_the_chiefs_tuning_flag(tmp_path):
    """Was '(search space 'tiny' there, 'default' now); start every worker with the chief's flags and space', and no
    flag: the worker's refusal names --tuning as it names --batch-size (a space of tuning/ by name, else the chief's
    path), the flags of other settings after it."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace
    from sound_tf.locks import Wording

    out, config = tmp_path / "shared", Config()
    tune._prepare_folder(out, config, SearchSpace.from_toml(TINY), "chief", overwrite=False, log=lambda m: None)
    with pytest.raises(ConfigError) as info:
        tune._prepare_folder(out, apply_overrides(config, {"train.batch_size": 8}), SearchSpace.from_toml(DEFAULT),
                             "worker", overwrite=False, log=lambda m: None)
    assert str(info.value) == (f"{out / 'search.json'}: the chief's search differs from this worker's (search space "
                               "'tiny' there, 'default' now; train.batch_size: 32 there, 8 now); start every worker "
                               "with the chief's flags and space (this one needs --tuning tiny, --batch-size 32)")
    own = tmp_path / "my space.toml"
    own.write_text(TINY.read_text().replace('name = "tiny"', 'name = "mine"'))
    other = tmp_path / "other"
    tune._prepare_folder(other, config, SearchSpace.from_toml(own), "chief", overwrite=False, log=lambda m: None)
    with pytest.raises(ConfigError, match=re.escape(f"(this one needs --tuning '{own}')") + "$"):
        tune._prepare_folder(other, config, SearchSpace.from_toml(TINY), "worker", overwrite=False, log=lambda m: None)
    # a Python caller passes a SearchSpace, not a flag: nothing is named for the space
    with pytest.raises(ConfigError, match=r"start every worker with the chief's config and space$"):
        tune._prepare_folder(other, config, SearchSpace.from_toml(TINY), "worker", overwrite=False,
                             log=lambda m: None, wording=Wording(settings="config"))


def test_a_search_without_its_final_run_says_how_to_train_it(tmp_path):
    """--no-final ended at 'best trial 1: ...' with no word of best_run/: the last line says it was not trained and
    how to train it, in the caller's words (final=False here, --no-final for the command); once best_run/ holds a
    trained run, a search extended with --no-final does not say so."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    data = make_tones(tmp_path / "data", clips_per_class=4)
    config, out = base_config(data), tmp_path / "search"
    space = SearchSpace.from_toml(TINY).replace_settings(max_trials=1)
    messages: list[str] = []
    tune.run_search(config, space, out, final=False, log=messages.append)
    assert messages[-2].startswith("best trial ")
    assert messages[-1] == (f"best run not trained (final=False): run the search again without it to train the best "
                            f"configuration in {out / 'best_run'} (its values as --set overrides: "
                            f"{out / 'best_hparams.json'})")
    assert not (out / "best_run").exists()
    (out / "best_run").mkdir()
    (out / "best_run" / "metrics.json").write_text("{}")  # as a trained best run holds
    messages.clear()
    tune.run_search(config, space, out, final=False, log=messages.append, wording=tune.COMMAND)
    assert messages[-1].startswith("best trial ")
    shutil.rmtree(out / "best_run")
    messages.clear()
    tune.run_search(config, space, out, final=False, log=messages.append, wording=tune.COMMAND)
    assert messages[-1].startswith("best run not trained (--no-final): run the search again without it")


def test_a_worker_with_a_decode_cache_of_its_own_joins_the_chiefs_search(tmp_path, monkeypatch):
    """``--cache-dir cache`` was kept as typed, so a worker started with the chief's command from another folder
    (another machine's home) joined it; made absolute, the two caches differed and the worker was refused. A
    decode cache holds the same clips wherever it is: the worker keeps its own, and other settings still count."""
    import argparse

    from sound_tf import tune, train
    from sound_tf.hypermodel import SearchSpace

    def flags(folder: Path, *more: str) -> Config:
        folder.mkdir(parents=True, exist_ok=True)
        monkeypatch.chdir(folder)
        parser = argparse.ArgumentParser()
        train.add_config_flags(parser)
        return train.config_from_args(parser.parse_args(["--data", "/mnt/nfs/tones", "--cache-dir", "cache", *more]))

    space, out = SearchSpace.from_toml(TINY), tmp_path / "shared"
    chief = flags(tmp_path / "alice")
    tune._prepare_folder(out, chief, space, "chief", overwrite=False, log=lambda m: None)
    worker = flags(tmp_path / "bob")
    assert worker.data.cache_dir != chief.data.cache_dir
    tune._prepare_folder(out, worker, space, "worker", overwrite=False, log=lambda m: None)  # not refused
    with pytest.raises(ConfigError, match=r"the chief's search differs from this worker's \(train.epochs: "):
        tune._prepare_folder(out, flags(tmp_path / "bob", "--epochs", str(chief.train.epochs + 1)), space, "worker",
                             overwrite=False, log=lambda m: None)


def test_a_python_worker_is_told_of_the_chiefs_config_and_the_command_of_its_flags(tmp_path, monkeypatch, capsys):
    """A worker run from Python whose settings differ from its chief's was told to start "with the chief's flags
    and space"; it is told of the chief's config now, and the command keeps its flags."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    data = make_tones(tmp_path / "data", clips_per_class=2)
    config, space, out = base_config(data), SearchSpace.from_toml(TINY), tmp_path / "shared"
    tune._prepare_folder(out, apply_overrides(config, {"train.epochs": 2}), space, "chief", overwrite=False,
                         log=lambda m: None)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    differs = (f"{out / tune.SEARCH_FILE}: the chief's search differs from this worker's (train.epochs: 2 there, 1 "
               f"now); start every worker with the chief's ")
    with pytest.raises(ConfigError) as info:
        tune.run_search(config, space, out, log=lambda m: None)
    assert str(info.value) == f"{differs}config and space (this one needs train.epochs=2)"
    assert tune.main(cli_flags(data, out)) == 2
    assert capsys.readouterr().err == f"{folder_recipe_line(data)}error: {differs}flags and space (this one needs " \
                                      f"--epochs 2)\n"


def test_a_worker_of_another_batch_size_is_told_the_flag_that_gives_it_the_chiefs(tmp_path):
    """A worker started with another batch size than its chief's was refused with '(train.batch_size: 32 there, 8
    now); start every worker with the chief's flags and space', and no flag is named train.batch_size: it is told
    the flag that gives it the chief's value (--batch-size 32), --set for a setting without a flag of its own, and
    the setting itself when run from Python."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    space, out = SearchSpace.from_toml(TINY), tmp_path / "shared"
    chief = apply_overrides(Config(), {"train.batch_size": 32, "model.widths": [8, 16], "train.class_weights": True})
    tune._prepare_folder(out, chief, space, "chief", overwrite=False, log=lambda m: None)
    worker = apply_overrides(chief, {"train.batch_size": 8})
    with pytest.raises(ConfigError) as refused:
        tune._prepare_folder(out, worker, space, "worker", overwrite=False, log=lambda m: None)
    assert str(refused.value).endswith("(train.batch_size: 32 there, 8 now); start every worker with the chief's "
                                       "flags and space (this one needs --batch-size 32)"), refused.value
    with pytest.raises(ConfigError) as refused:
        tune._prepare_folder(out, worker, space, "worker", overwrite=False, log=lambda m: None,
                             wording=tune.PYTHON_WORDING)
    assert str(refused.value).endswith("; start every worker with the chief's config and space (this one needs "
                                       "train.batch_size=32)"), refused.value
    others = apply_overrides(Config(), {"train.batch_size": 16, "model.widths": [4, 8]})  # class weights off too
    with pytest.raises(ConfigError) as refused:
        tune._prepare_folder(out, others, space, "worker", overwrite=False, log=lambda m: None)
    assert str(refused.value).endswith(" (this one needs --set 'model.widths=[8, 16]', --batch-size 32, "
                                       "--class-weights)"), refused.value  # quoted: a shell splits it at the space
    assert tune._chief_values(chief.to_dict(), chief) == ""
    # a worker with --strict beside a chief without it is told to leave the flag out (there is no --no-strict)
    assert tune._chief_values(chief.to_dict(), apply_overrides(chief, {"data.strict": True})) == \
        " (this one needs no --strict)"
    assert tune._chief_values(apply_overrides(chief, {"data.strict": True}).to_dict(), chief) == \
        " (this one needs --strict)"


def test_a_python_worker_names_its_out_and_max_trials_and_the_command_its_flags(tmp_path, monkeypatch, capsys):
    """A worker run from Python that waited for its chief's search.json asked "is --out the same shared folder"
    and gave up with "start the chief first, with the same --out"; one whose chief had finished was told that
    only a chief started again with "a larger --max-trials" needs it. It names out and [search] max_trials now,
    and the command keeps its flags. No trial runs: the worker gives up before it asks for one."""
    import functools

    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace
    from sound_tf.train import config_from_args

    monkeypatch.setattr(tune, "WORKER_WAIT_SECONDS", 1.0)
    monkeypatch.setattr(tune, "WORKER_REPORT_SECONDS", 0.4)
    monkeypatch.setattr(tune, "_wait_for_oracle", functools.partial(tune._wait_for_oracle, wait_seconds=0.5,
                                                                    report_seconds=10.0))
    monkeypatch.setattr(tune, "make_tuner", lambda *args, **kwargs: None)  # not used before the oracle answers
    data, space = make_tones(tmp_path / "data", clips_per_class=5), SearchSpace.from_toml(TINY)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: the finished chief's port
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(unused.getsockname()[1]))
        monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
        for name, folder, max_trials in (("python", "out", "[search] max_trials"),
                                         ("command", "--out", "--max-trials")):
            out = tmp_path / name
            flags = cli_flags(data, out)
            config = config_from_args(tune.build_parser().parse_args(flags))
            waited = (f"worker tuner1: waiting for a chief to write {out / tune.SEARCH_FILE} (is the chief started, "
                      f"and is {folder} the same shared folder on every machine?); waiting up to 1 s in all")
            no_chief = (f"{out / tune.SEARCH_FILE}: not written by a chief within 1 s; start the chief first, with "
                        f"the same {folder} (a shared folder)")
            ended = f"this worker only helps a chief started again to extend it (a larger {max_trials})"
            messages: list[str] = []
            if name == "python":
                with pytest.raises(ConfigError) as info:
                    tune.run_search(config, space, out, log=messages.append)
                refused = str(info.value)
            else:
                capsys.readouterr()
                assert tune.main(flags) == 2
                said = capsys.readouterr()
                assert said.err.startswith(f"{folder_recipe_line(data)}error: ")
                refused, messages = said.err.strip().removeprefix(f"{folder_recipe_line(data)}error: "), \
                    said.out.splitlines()
            assert refused == no_chief
            assert messages and all(m.endswith(waited) for m in messages if "waiting for a chief" in m), messages
            assert any("waiting for a chief" in m for m in messages), messages

            tune._prepare_folder(out, config, space, "chief", overwrite=False, log=lambda m: None)
            (out / tune.CHIEF_FILE).write_text(json.dumps({"status": "finished", "pid": 1, "finished": 1.8e9}))
            if name == "python":
                with pytest.raises(ConfigError) as info:
                    tune.run_search(config, space, out, log=lambda m: None)
                refused = str(info.value)
            else:
                assert tune.main(flags) == 2
                refused = capsys.readouterr().err.strip()
            assert refused.endswith(ended), refused


def test_a_changed_search_setting_is_named_but_a_larger_max_trials_is_not(tmp_path):
    """A larger --max-trials extends a search; with another --tuner as well, only the tuner is the difference."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    space, out = SearchSpace.from_toml(TINY), tmp_path / "out"
    tune._prepare_folder(out, Config(), space, "local", overwrite=False, log=lambda m: None)
    saved = json.loads((out / "search.json").read_text())
    other = "bayesian" if space.settings.tuner != "bayesian" else "random"
    changed = space.replace_settings(tuner=other, max_trials=space.settings.max_trials + 5)
    assert tune._search_differences(saved, Config(), changed) == (
        f" ([search] tuner: {space.settings.tuner!r} there, {other!r} now)")
    extended = space.replace_settings(max_trials=space.settings.max_trials + 5)
    assert tune._search_differences(saved, Config(), extended) == "" and tune._same_search(
        saved, tune.search_identity(Config(), extended))


def test_the_worker_timeout_must_span_five_heartbeats(monkeypatch):
    """A timeout of fewer than 5 heartbeat periods releases live workers that missed a beat or two."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    space, least = SearchSpace.from_toml(TINY), 5 * tune.HEARTBEAT_SECONDS
    with pytest.raises(ConfigError) as refused:
        tune.check_search(Config(), space, time_budget_minutes=None, worker_timeout_seconds=least - 0.5)
    assert str(refused.value) == (f"--worker-timeout must be at least {least:.0f} s (heartbeats come every "
                                  f"{tune.HEARTBEAT_SECONDS:.0f} s), got {least - 0.5}")
    tune.check_search(Config(), space, time_budget_minutes=None, worker_timeout_seconds=least)
    # nan passed the check (nan < 25 is false), and a silent worker's trial was never released
    with pytest.raises(ConfigError, match=r"--worker-timeout must be at least .*, got nan"):
        tune.check_search(Config(), space, time_budget_minutes=None, worker_timeout_seconds=float("nan"))


def test_run_search_names_its_limits_as_its_arguments_and_the_command_as_its_flags(tmp_path, capsys, monkeypatch):
    """run_search told a Python caller "--worker-timeout must be at least ..." and "--time-budget must be > 0",
    flags it never passed; it names worker_timeout_seconds and time_budget_minutes now, and the command keeps its
    flags. Both are refused before anything is read or written."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    space, out = SearchSpace.from_toml(TINY), tmp_path / "search"
    short = (f" must be at least {5 * tune.HEARTBEAT_SECONDS:.0f} s (heartbeats come every "
             f"{tune.HEARTBEAT_SECONDS:.0f} s), got 3.0")
    with pytest.raises(ConfigError) as info:
        tune.run_search(Config(), space, out, worker_timeout_seconds=3.0, log=lambda m: None)
    assert str(info.value) == f"worker_timeout_seconds{short}"
    with pytest.raises(ConfigError) as info:
        tune.run_search(Config(), space, out, time_budget_minutes=0, log=lambda m: None)
    assert str(info.value) == "time_budget_minutes must be > 0 minutes, got 0"
    assert not out.exists()
    assert tune.main(["--tuning", str(TINY), "--out", str(out), "--worker-timeout", "3"]) == 2
    assert capsys.readouterr().err.strip() == f"error: --worker-timeout{short}"
    assert tune.main(["--tuning", str(TINY), "--out", str(out), "--time-budget", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --time-budget must be > 0 minutes, got 0.0"
    assert not out.exists()


def test_a_worker_waiting_for_the_chiefs_search_json_says_so_every_little_while(tmp_path, monkeypatch):
    """A worker waiting for search.json said nothing for up to 600 s (a chief not started yet, or an --out
    that is not the chief's shared folder)."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner2")
    monkeypatch.setattr(tune, "WORKER_WAIT_SECONDS", 2.5)
    monkeypatch.setattr(tune, "WORKER_REPORT_SECONDS", 0.5)
    out = tmp_path / "shared"
    messages: list[str] = []
    with pytest.raises(ConfigError, match="search.json: not written by a chief within 2 s; start the chief first"):
        tune._prepare_folder(out, Config(), SearchSpace.from_toml(TINY), "worker", overwrite=False,
                             log=messages.append)
    expected = (f"worker tuner2: waiting for a chief to write {out / 'search.json'} (is the chief started, and is "
                f"--out the same shared folder on every machine?); waiting up to 2 s in all")
    assert 2 <= len(messages) <= 6 and set(messages) == {expected}, messages


def test_a_worker_started_after_the_search_ended_says_so(tmp_path, monkeypatch):
    """A worker of a finished search waited ten minutes, then blamed its address; chief.json said why."""
    from sound_tf import tune

    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    finished = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
    (tmp_path / "chief.json").write_text(json.dumps({"status": "finished", "pid": 1, "finished": finished}))
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # the finished chief's port: nobody listens any more
        messages: list[str] = []
        with pytest.raises(ConfigError) as refused:
            tune._wait_for_oracle("127.0.0.1", str(port), tmp_path, messages.append, wait_seconds=1.5,
                                  report_seconds=10.0)
    ended = (f"; the chief in {tmp_path} finished its search at 2027-01-15 08:00:00 UTC ({tmp_path / 'chief.json'}): "
             f"this worker only helps a chief started again to extend it (a larger --max-trials)")
    assert messages == [f"worker tuner1: no oracle answers at 127.0.0.1:{port} yet (Connection refused){ended}; "
                        f"waiting up to 1.5 s for the chief"]
    assert str(refused.value) == f"127.0.0.1:{port}: no oracle answered there within 1.5 s (Connection refused){ended}"


def test_a_search_in_which_no_trial_completed_exits_with_an_error(tmp_path, monkeypatch, capsys):
    """Every trial failed ('no trial completed: no best model to train'), and tune exited 0."""
    from sound_tf import tune

    monkeypatch.setattr(tune, "run_search", lambda *a, **k: tune.SearchResult(out=tmp_path / "s", role="local"))
    assert tune.main(["--format", "demo", "--tuning", str(TINY), "--out", str(tmp_path / "s")]) == 1
    assert f"error: no trial of the search completed; each failed trial's error is in {tmp_path / 's' / 'trials.csv'}" \
        in capsys.readouterr().err


def test_a_redirected_stdout_gets_the_trial_tables_not_a_stream_of_progress_bar_redraws(tmp_path, capsys,
                                                                                        monkeypatch):
    """As train and crossval: Keras draws its bars with carriage returns and backspaces on a file or a pipe
    too, and a redirected search wrote them for every step of every trial and of the best run. KerasTuner
    also took any process that can import IPython for a notebook and erased the "cell" before every trial
    with ANSI codes: its conclusion is simulated here, whether or not IPython is installed."""
    import types

    from keras_tuner.src import utils as kt_utils

    from sound_tf import tune

    monkeypatch.setattr(kt_utils, "IS_NOTEBOOK", True)  # what KerasTuner concludes when IPython imports
    monkeypatch.setattr(kt_utils, "display", types.SimpleNamespace(clear_output=lambda: print("\x1b[2K\r", end="")),
                        raising=False)
    data = make_tones(tmp_path / "data", clips_per_class=6)
    flags = [flag for flag in cli_flags(data, tmp_path / "out", "--max-trials", "1") if flag != "--quiet"]
    assert tune.main(flags) == 0
    out = capsys.readouterr().out
    assert "\x08" not in out and "\r" not in out and "\x1b[" not in out, out[:500]
    assert "Trial 1 Complete" in out  # KerasTuner's tables stay: they are plain lines
    assert (tmp_path / "out" / "best_run" / "metrics.json").is_file()


def test_build_works_apart_from_the_search():
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel
    from sound_tf.models import build_model

    space = SearchSpace.from_toml(TINY)
    config = Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES))
    hypermodel = SoundHyperModel(config, space)
    hp = kt.HyperParameters()
    hp.Fixed("depth", 3)
    hp.Fixed("width_multiplier", 0.5)
    hp.Fixed("num_mel_bins", 24)
    model = hypermodel.build(hp)
    expected = build_model(apply_overrides(config, {"model.widths": [4, 8, 8], "features.num_mel_bins": 24}))
    assert model.count_params() == expected.count_params()
    assert model.input_shape == (None, 4000) and model.output_shape == (None, 3)
    assert model.optimizer is not None and model.loss is not None  # compiled, ready for fit
    assert model.get_layer("log_mel").num_mel_bins == 24


# -- local search ------------------------------------------------------------------------------------------
def test_the_default_folder_an_older_version_named_is_found_again(tmp_path, monkeypatch):
    """An added setting changes the hash in the default folder's name: the same command continues the
    search an older version started there (its search.json's settings read today are the same)."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    monkeypatch.chdir(tmp_path)
    config, space = Config(), SearchSpace.from_toml(TINY)
    today = tune.default_out(config, space)
    assert today.parent == Path("runs") and today.name.startswith("tune-tiny-") and not today.exists()
    for name, settings in (("tune-tiny-0123abcd", apply_overrides(config, {"train.epochs": 7})),
                           ("tune-default-4567abcd", config), ("tune-tiny-89abcdef", config)):
        saved = {**tune.search_identity(config, space), "config_fingerprint": "0123456789ab",
                 "config": settings.to_dict()}
        del saved["config"]["augment"]["spec_probability"]  # a setting added since
        if name.startswith("tune-default"):
            saved["space"] = "default"
        (tmp_path / "runs" / name).mkdir(parents=True)
        (tmp_path / "runs" / name / tune.SEARCH_FILE).write_text(json.dumps(saved))
    assert tune.default_out(config, space) == Path("runs") / "tune-tiny-89abcdef"
    today.mkdir()
    assert tune.default_out(config, space) == today


def test_local_search_resumes_after_interruption_and_writes_every_output(tmp_path, monkeypatch):
    from sound_tf import frontend, models  # noqa: F401  (registers the custom layers)
    from sound_tf import tune
    from sound_tf.datasets import prepare_dataset
    from sound_tf.evaluation import evaluate_items
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    data = make_tones(tmp_path / "data")
    out = tmp_path / "search"
    config = base_config(data)
    space = SearchSpace.from_toml(TINY)
    real_fit = SoundHyperModel.fit
    fits: list[dict] = []

    def interrupted_fit(self, hp, model, *args, **kwargs):
        if len(fits) == 1:
            raise KeyboardInterrupt  # killed during the second trial
        fits.append(dict(hp.values))
        return real_fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(SoundHyperModel, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        tune.run_search(config, space.replace_settings(max_trials=2), out, log=lambda m: None)
    first = trial_files(out)
    assert [t["status"] for t in first.values()] == ["COMPLETED", "RUNNING"]
    done_before = (out / "search" / "trial_0" / "trial.json").read_bytes()

    def counting_fit(self, hp, model, *args, **kwargs):
        fits.append(dict(hp.values))
        return real_fit(self, hp, model, *args, **kwargs)

    monkeypatch.setattr(SoundHyperModel, "fit", counting_fit)
    messages: list[str] = []
    result = tune.run_search(config, space.replace_settings(max_trials=3), out, log=messages.append)
    # The interrupted trial ran again with its own values, then exactly one new trial; trial 0 untouched.
    assert len(fits) == 3 and fits[1] == {k: v for k, v in first["1"]["hyperparameters"]["values"].items()}
    assert (out / "search" / "trial_0" / "trial.json").read_bytes() == done_before
    trials = trial_files(out)
    assert sorted(trials) == ["0", "1", "2"] and all(t["status"] == "COMPLETED" for t in trials.values())
    # The summary counts what this run did: the interrupted trial and the new one, not trial 0.
    assert any(m.startswith("3 of 3 trials completed; 2 ended in this run,") for m in messages), messages
    # Each trial epoch has its log line, as training's epochs do (a redirected log said nothing in between).
    summary = next(i for i, m in enumerate(messages) if m.startswith("3 of 3 trials completed"))
    epoch_lines = [m for m in messages[:summary] if m.startswith("epoch ")]
    assert len(epoch_lines) == 2 and all(m.startswith("epoch 1/1: loss ") and "val_loss" in m for m in epoch_lines)

    # trials.csv: one row per trial, best (lowest val_loss) first, scores equal to the oracle's.
    rows = read_csv(out / "trials.csv")
    assert [r["trial_id"] for r in rows] == sorted(trials, key=lambda t: trials[t]["score"])
    for row in rows:
        assert float(row["val_loss"]) == pytest.approx(trials[row["trial_id"]]["score"], rel=1e-5)
        assert row["epochs"] == "1" and int(row["params"]) > 0 and float(row["seconds"]) > 0
        assert row["tuner_id"] == "tuner0" and row["status"] == "COMPLETED"
        assert {"depth", "width_multiplier", "learning_rate", "num_mel_bins"} <= set(row)
    # Keras' session is cleared between trials: memory stays flat (a leak of the data or the model of
    # each trial would add tens of MB per trial).
    rss = [float(r["rss_mb"]) for r in sorted(rows, key=lambda r: r["trial_id"])]
    assert rss[2] - rss[1] < 100, rss
    assert (out / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = json.loads((out / "best_hparams.json").read_text())
    assert best["trial_id"] == rows[0]["trial_id"]
    assert best["score"] == pytest.approx(float(rows[0]["val_loss"]), rel=1e-5)
    assert result.best.trial_id == best["trial_id"]

    # The best configuration became an ordinary run folder that loads and evaluates the same way.
    run = out / "best_run"
    run_config = Config.load(run)
    assert run_config.features.num_mel_bins == best["hyperparameters"]["num_mel_bins"]
    assert list(run_config.model.widths) == best["overrides"]["model.widths"]
    assert run_config.train.learning_rate == pytest.approx(best["hyperparameters"]["learning_rate"])
    assert run_config.labels == tuple(sorted(CLASSES))
    for name in ("model.keras", "config.json", "labels.txt", "split.csv", "skipped.csv", "history.csv",
                 "metrics.json", "confusion_matrix.png", "train.log"):
        assert (run / name).is_file(), name
    assert (run / "split.csv").read_text() == (out / "split.csv").read_text()
    model = keras.models.load_model(run / "model.keras")
    prepared = prepare_dataset(run_config, run, log=lambda m: None)  # reuses run/split.csv
    metrics = evaluate_items(model, run_config, prepared.splits["test"], tmp_path / "eval", log=lambda m: None)
    saved = json.loads((run / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(saved["accuracy"])
    assert np.sum(metrics["confusion_matrix"]) == len(prepared.splits["test"])

    # Each trial folder holds its config as a normal config.json.
    trial_config = Config.load(out / "search" / "trial_0" / "config.json")
    assert trial_config.train.epochs == 1 and trial_config.labels == tuple(sorted(CLASSES))

    # Running the finished search again trains nothing; --summarize rewrites the same table.
    fits.clear()
    messages.clear()
    again = tune.run_search(config, space.replace_settings(max_trials=3), out, log=messages.append)
    assert fits == [] and again.best.trial_id == best["trial_id"]
    assert any(m.startswith("3 of 3 trials completed; 0 ended in this run,") for m in messages), messages
    assert any("best run already trained" in m for m in messages)
    assert not any(m.startswith("retraining the best configuration") for m in messages), messages  # it was said
    table = (out / "trials.csv").read_text()
    (out / "trials.csv").unlink()
    assert tune.main(["--out", str(out), "--summarize"]) == 0
    assert (out / "trials.csv").read_text() == table

    # Started by an older version, whose settings lacked one added since (at its old behaviour, the default):
    # the search continues and the best run is kept, not trained again.
    for path, key in ((out / tune.SEARCH_FILE, "config_fingerprint"),
                      (out / "best_run" / "run_state.json", "fingerprint")):
        older = json.loads(path.read_text())
        older[key] = "0123456789ab"
        path.write_text(json.dumps(older))
    for path in (out / tune.SEARCH_FILE, out / "best_run" / "config.json"):
        older = json.loads(path.read_text())
        settings = older["config"] if "config" in older and "augment" not in older else older
        del settings["augment"]["spec_probability"]
        path.write_text(json.dumps(older))
    tune._prepare_folder(out, config, space, "worker", overwrite=False, log=lambda m: None)  # a worker joins
    elsewhere = apply_overrides(config, {"data.path": str(tmp_path / "mounted" / "elsewhere")})
    tune._prepare_folder(out, elsewhere, space, "worker", overwrite=False, log=lambda m: None)  # data mounted elsewhere
    messages.clear()
    again = tune.run_search(config, space.replace_settings(max_trials=3), out, log=messages.append)
    assert fits == [] and again.best.trial_id == best["trial_id"]
    assert any("best run already trained" in m for m in messages), messages
    assert json.loads((out / tune.SEARCH_FILE).read_text())["config_fingerprint"] == config.fingerprint()

    # Another space in the same folder is refused rather than mixed in, and the message says what differs.
    with pytest.raises(ConfigError, match=r"other settings \(\[search\] tuner: 'random' there, 'bayesian' now\); "
                                          r"pass overwrite=True"):
        tune.run_search(config, space.replace_settings(tuner="bayesian"), out, log=lambda m: None)
    with pytest.raises(ConfigError) as refused:  # a worker started with another --trial-epochs: named
        tune._prepare_folder(out, config, space.replace_settings(epochs=space.settings.epochs + 1), "worker",
                             overwrite=False, log=lambda m: None)
    assert f"differs from this worker's ([search] epochs: {space.settings.epochs} there, " \
           f"{space.settings.epochs + 1} now)" in str(refused.value)
    edited = dataclasses.replace(space, fixed={**space.fixed, "train.batch_size": 3})  # the file's tables changed
    with pytest.raises(ConfigError, match=r"other settings \(search space 'tiny' with other contents: fingerprint "
                                          r"\w+ there, \w+ now\); pass overwrite=True"):
        tune.run_search(config, edited, out, log=lambda m: None)
    longer = apply_overrides(config, {"train.epochs": 2})
    with pytest.raises(ConfigError, match=r"other settings \(train.epochs: 1 there, 2 now\); pass overwrite=True"):
        tune.run_search(longer, space, out, log=lambda m: None)
    with pytest.raises(ConfigError) as refused:  # a worker started with other flags: the key, not the whole file
        tune._prepare_folder(out, longer, space, "worker", overwrite=False, log=lambda m: None)
    assert str(refused.value) == (f"{out / 'search.json'}: the chief's search differs from this worker's "
                                  f"(train.epochs: 1 there, 2 now); start every worker with the chief's flags "
                                  f"and space (this one needs --epochs 1)")


def test_a_best_run_killed_before_it_had_the_searchs_split_gets_it_whole_when_resumed(tmp_path):
    """The search's split.csv and skipped.csv were copied into best_run in place, after training: a search
    killed in between left a finished best run with half a split.csv (or none, or no skipped.csv), and every
    rerun took the run as trained and stopped reading it ("best_run/split.csv, line 649: 2 value(s) for 5
    column(s)"; export failed too). They are now copied in, whole, before the run is trained or reused."""
    from types import SimpleNamespace

    from sound_tf import trainer, tune

    out, run = tmp_path / "search", tmp_path / "search" / "best_run"
    run.mkdir(parents=True)
    rows = "".join(f"{split},/data/{label}/{label}_{i}.wav,{label},,\n" for split in ("train", "val", "test")
                   for label in sorted(CLASSES) for i in range(4))
    (out / "split.csv").write_text("split,path,label,fold,group\n" + rows)
    (out / "skipped.csv").write_text("path,reason\n/data/low/broken.wav,not an audio file\n")
    config = apply_overrides(Config(), {"data.path": "/data", "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5})
    data = SimpleNamespace(labels=tuple(sorted(CLASSES)))
    final = apply_overrides(config, {"labels": list(data.labels)})
    final.save(run)
    trainer.write_state(run, status="done", fingerprint=final.fingerprint(), fit_done=True)
    (run / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    (run / "split.csv").write_text((out / "split.csv").read_text()[:100])  # the kill: half a copy, no skipped.csv
    (run / ".split.csv.q1w2e3r4.tmp").write_text("split,pa")  # and a copy cut short before its rename
    messages: list[str] = []
    metrics = tune._final_run(config, run, data, out, log=messages.append, verbose=0)
    assert metrics == {"accuracy": 0.5} and any("best run already trained" in m for m in messages), messages
    assert not any(m.startswith("retraining") for m in messages), messages  # a rerun was told both
    for name in ("split.csv", "skipped.csv"):
        assert (run / name).read_text() == (out / name).read_text(), name
    assert not list(run.glob("*.tmp"))

def test_a_best_run_of_another_configuration_is_trained_again_not_reused(tmp_path, monkeypatch):
    """A search extended with more trials may find another best trial: best_run/, done with the old one's
    settings (learning rate 0.01), is emptied and trained with the new ones, not reported as trained."""
    from types import SimpleNamespace

    from sound_tf import trainer, tune

    out, run = tmp_path / "search", tmp_path / "search" / "best_run"
    run.mkdir(parents=True)
    config = apply_overrides(Config(), {"data.path": "/data", "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5})
    data = SimpleNamespace(labels=tuple(sorted(CLASSES)))
    earlier = apply_overrides(config, {"labels": list(data.labels), "train.learning_rate": 0.01})
    earlier.save(run)
    trainer.write_state(run, status="done", fingerprint=earlier.fingerprint(), fit_done=True)
    (run / "metrics.json").write_text(json.dumps({"accuracy": 0.5}))
    trained: list[float] = []

    def train_run(final, run_dir, **kwargs):
        trained.append(final.train.learning_rate)
        assert not (run_dir / "metrics.json").exists()  # the earlier run's results are gone first
        return SimpleNamespace(metrics={"accuracy": 0.75})

    monkeypatch.setattr(trainer, "train_run", train_run)
    messages: list[str] = []
    assert tune._final_run(config, run, data, out, log=messages.append, verbose=0) == {"accuracy": 0.75}
    assert trained == [config.train.learning_rate] == [3e-3]
    assert f"{run} holds another configuration (the best trial changed): training it again" in messages
    assert messages[-1] == (f"retraining the best configuration for up to {config.train.epochs} epochs in {run}; "
                            "the test split is used only now")
    messages.clear()  # one epoch (a tiny search's --epochs 1) read 'for up to 1 epochs'
    tune._final_run(apply_overrides(config, {"train.epochs": 1}), run, data, out, log=messages.append, verbose=0)
    assert messages[-1] == (f"retraining the best configuration for up to 1 epoch in {run}; the test split is used "
                            "only now")


#: A history (accuracy, loss, val_accuracy, val_loss per epoch) that overfit: FSDD's fold 1 by speaker without
#: augmentation, as test_train has it (kept epoch 1 of 6, training accuracy 0.90 against validation's 0.27 at best).
OVERFIT_HISTORY = [(0.129, 2.957, 0.146, 2.269), (0.383, 1.779, 0.184, 2.470), (0.653, 1.019, 0.264, 2.504),
                   (0.819, 0.578, 0.240, 2.486), (0.869, 0.430, 0.260, 2.520), (0.896, 0.383, 0.272, 2.442)]
#: One that underfit with augmentation on: the demo's (40 clips per class, model.widths [16, 32], 8 epochs), as
#: test_train has it (training accuracy 0.23 at the end, validation 0.48 at best, its loss still falling).
UNDERFIT_HISTORY = [(0.093, 3.993, 0.185, 2.548), (0.129, 2.673, 0.185, 2.154), (0.133, 2.489, 0.241, 2.038),
                    (0.190, 2.333, 0.333, 1.889), (0.194, 2.215, 0.407, 1.906), (0.214, 2.160, 0.389, 1.843),
                    (0.230, 2.160, 0.481, 1.786), (0.226, 2.057, 0.463, 1.748)]
#: One that learnt: both accuracies above 0.9 and its last epoch kept.
LEARNT_HISTORY = [(0.60, 1.00, 0.55, 1.10), (0.85, 0.50, 0.80, 0.60), (0.97, 0.10, 0.93, 0.25)]


def _fit_lines(history: Sequence[tuple[float, float, float, float]], wording: Any, *, augmented: bool,
               classes: int = 10) -> list[str]:
    """The lines of the summary of a test scored near chance (``classes`` 10, 3 of 12 right per class) or well (5, 9
    of 13) that speak of fitting, for a best run of ``history`` that augmented or not."""
    from sound_tf import trainer
    from sound_tf.metrics import metrics_from_confusion, summary_lines

    metrics = metrics_from_confusion(np.eye(classes, dtype=int) * (2 if classes == 10 else 8) + 1,
                                     [str(label) for label in range(classes)])
    columns = {"accuracy": [row[0] for row in history], "loss": [row[1] for row in history],
               "val_accuracy": [row[2] for row in history], "val_loss": [row[3] for row in history]}
    validation = trainer.kept_validation(columns, trainer.BEST_WEIGHTS, 10, augmented=augmented)
    return [line for line in summary_lines(metrics, validation=validation, fit_wording=wording)
            if "overfit its" in line or "underfits" in line]


def test_the_fit_advice_of_a_search_names_its_best_trial_and_what_the_search_varied():
    """tune's summary gave no validation to summary_lines, so a best run that overfit or underfit said nothing of
    it; train's words, given it, would tell a user to change the model's size or augmentation that the search had
    varied. fit_wording names the best trial and its retrained run, says which hyperparameters varied the settings
    the advice names (model.widths, augment.*) and the values the best trial took, and names the others as a user
    changes them for a search: --set, --epochs, or the space's [fixed] when it sets them."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    run = Path("runs/tune-x/best_run")
    subject = f"the best trial's configuration (trial 2, retrained in {run})"
    best = tune.TrialRecord("2", "COMPLETED", 0.4, values={"depth": 2, "width_multiplier": 0.5, "learning_rate": 0.002,
                                                           "num_mel_bins": 16, "augment_strength": 1.0})
    tiny = SearchSpace.from_toml(TINY)
    config = base_config(Path("data"))
    on = apply_overrides(config, {"augment.enabled": True})
    wording = tune.fit_wording(tiny, best, on, run)
    model = "the search varied depth and width_multiplier, and it took depth=2, width_multiplier=0.5"
    augment = "the search varied augment_strength, and it took augment_strength=1"
    # each remedy is another search, which the search folder refuses: the advice says how to rerun
    rerun = (f" (in a new search: a new --out, or --overwrite to start {run.parent} over; the same --out with other "
             "settings is refused)")
    overfit = (subject + " overfit its training clips: training accuracy reached 0.90 by epoch 6 while validation "
               "accuracy was at most 0.27, and the validation loss was lowest at epoch 1 of 6, whose weights it keeps: "
               f"more epochs will not help; try stronger augmentation than the best trial's ({augment}: stronger "
               f"values in {TINY}), a smaller model than the best trial's ({model}: smaller values in {TINY}) or more "
               "training data" + rerun)
    assert _fit_lines(OVERFIT_HISTORY, wording, augmented=True) == [
        "the model scores near chance (balanced accuracy 0.25; chance is 0.10 with 10 classes): " + overfit
        + ", not one class"]
    assert _fit_lines(OVERFIT_HISTORY, wording, augmented=True, classes=5) == [overfit]  # not near chance: its own
    assert _fit_lines(UNDERFIT_HISTORY, wording, augmented=True, classes=5) == [
        subject + ": training accuracy ended at 0.23 (epoch 8, on augmented clips) and validation accuracy was at most "
        "0.48: the model underfits, and augmentation, which was on, makes a short run or a small model learn slower; "
        f"try more epochs for the best run (--epochs), a larger model than the best trial's ({model}: larger values "
        f"in {TINY}), or weaker augmentation than the best trial's ({augment}: weaker values in {TINY})" + rerun]
    # a Python caller of run_search is told its arguments
    python = tune.fit_wording(tiny, best, on, run, tune.PYTHON_WORDING)
    assert _fit_lines(UNDERFIT_HISTORY, python, augmented=True, classes=5)[0].endswith(
        f" (in a new search: a new out, or overwrite=True to start {run.parent} over; the same out with other settings "
        "is refused)")
    assert _fit_lines(LEARNT_HISTORY, wording, augmented=True) == []  # near chance on test, but it did not overfit
    assert _fit_lines(LEARNT_HISTORY, wording, augmented=True, classes=5) == []

    # a space that varies neither the model's size nor augmentation, and fixes the best run's epochs: the advice
    # names them as train's does, with the flag or the [fixed] key that sets them for a search
    table = tomllib.loads(TINY.read_text())
    table["hp"] = {"learning_rate": table["hp"]["learning_rate"]}
    table["fixed"]["train.epochs"] = 9
    rate_only = SearchSpace.from_dict(table, source="rate.toml")
    off = tune.fit_wording(rate_only, best, config, run)
    assert _fit_lines(OVERFIT_HISTORY, off, augmented=False)[0].split("more epochs will not help; ")[1] == (
        "try augmentation (it was off: train without --no-augment, with an augment.*_probability above 0), a "
        "smaller model (--set model.widths) or more training data" + rerun + ", not one class")
    assert _fit_lines(UNDERFIT_HISTORY, tune.fit_wording(rate_only, best, on, run), augmented=True,
                      classes=5)[0].split("; try ")[1] == (
        "more epochs for the best run ([fixed] train.epochs in rate.toml), a larger model (--set model.widths), or "
        "--no-augment to check what augmentation costs the best run" + rerun)
    assert _fit_lines(UNDERFIT_HISTORY, off, augmented=False, classes=5) == []  # no augmentation: nothing to say
    # a hyperparameter the search did not search varied nothing (augment_strength, with augmentation off in config)
    held = tiny.without(["augment_strength"], config)
    assert "augment_strength" not in _fit_lines(OVERFIT_HISTORY, tune.fit_wording(held, best, on, run),
                                                augmented=True)[0]
    # train's own words stay when no wording is given
    assert _fit_lines(UNDERFIT_HISTORY, None, augmented=True, classes=5)[0].startswith("training accuracy ended at")


def test_a_rerun_the_fit_advice_of_a_search_asks_for_is_not_refused(tmp_path):
    """tune's advice said 'more epochs for the best run (--epochs)', and the same command with another --epochs was
    refused ('holds a search with other settings (train.epochs: 1 there, 9 now); pass --overwrite ...'). The advice
    now names a new --out or --overwrite, and the search folder takes either rerun."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace
    from sound_tf.train import config_from_args

    space, out = SearchSpace.from_toml(TINY), tmp_path / "search"
    data = make_tones(tmp_path / "data", clips_per_class=2)
    config = config_from_args(tune.build_parser().parse_args(cli_flags(data, out)))
    best = tune.TrialRecord("0", "COMPLETED", 0.4, values={"depth": 2, "width_multiplier": 0.5,
                                                           "augment_strength": 1.0})
    on = apply_overrides(config, {"augment.enabled": True})
    advice = _fit_lines(UNDERFIT_HISTORY, tune.fit_wording(space, best, on, out / "best_run"), augmented=True,
                        classes=5)[0]
    assert "try more epochs for the best run (--epochs), " in advice
    assert advice.endswith(f"(in a new search: a new --out, or --overwrite to start {out} over; the same --out with "
                           "other settings is refused)")
    tune._prepare_folder(out, config, space, "local", overwrite=False, log=lambda m: None)
    more = apply_overrides(config, {"train.epochs": 9})
    with pytest.raises(ConfigError, match=r"holds a search with other settings \(train.epochs: 1 there, 9 now\)"):
        tune._prepare_folder(out, more, space, "local", overwrite=False, log=lambda m: None)  # the same --out
    tune._prepare_folder(tmp_path / "new", more, space, "local", overwrite=False, log=lambda m: None)  # a new --out
    tune._prepare_folder(out, more, space, "local", overwrite=True, log=lambda m: None)  # --overwrite
    for folder in (out, tmp_path / "new"):
        assert json.loads((folder / tune.SEARCH_FILE).read_text())["config"]["train"]["epochs"] == 9


def _write_history(run: Path, history: Sequence[tuple[float, float, float, float]]) -> None:
    """``run``'s ``history.csv`` replaced by ``history``, in Keras's CSVLogger columns."""
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"] + [f"{epoch},{a},{l},{va},{vl}"
                                                            for epoch, (a, l, va, vl) in enumerate(history)]
    (run / "history.csv").write_text("\n".join(rows) + "\n")


def test_a_search_whose_best_run_underfit_says_so_and_one_whose_best_run_learnt_does_not(tmp_path, monkeypatch):
    """The command's summary judges the retrained best run's history.csv, as train's summary its run's: a search
    run again (its best run reused) after that history is made the demo's that underfit with augmentation on logs
    the underfit line in a search's words, and after it is made one that learnt, no line of fitting. The best run's
    report.html kept train's words ('try more epochs (--epochs), ...', no trial named) while the console named the
    best trial: it now has the search's, as the best run is trained (its history judged underfit here)."""
    from sound_tf import trainer, tune

    data = make_tones(tmp_path / "data", clips_per_class=6)
    out = tmp_path / "out"
    flags = [flag for flag in cli_flags(data, out, "--max-trials", "1") if flag != "--no-augment"]
    with monkeypatch.context() as patch:  # whatever one epoch on these tones gives, the best run underfit
        patch.setattr(trainer, "underfit",
                      lambda history, **_: {"epochs": 1, "train_accuracy": 0.3, "val_accuracy": 0.4})
        assert tune.main(flags) == 0
    best = json.loads((out / "best_hparams.json").read_text())
    log = out / "tune.log"
    report = html.unescape((out / "best_run" / "report.html").read_text())
    said = [line for line in report.splitlines() if "underfits" in line]
    assert len(said) == 1, said
    assert said[0].startswith(f"the best trial's configuration (trial {best['trial_id']}, retrained in "
                              f"{out / 'best_run'}): training accuracy ended at 0.30 (epoch 1, on augmented clips)")
    assert said[0].endswith(f"weaker values in {TINY}) (in a new search: a new --out, or --overwrite to start {out} "
                            "over; the same --out with other settings is refused)")
    assert said[0] in log.read_text()  # the console's line, word for word

    def rerun(history: Sequence[tuple[float, float, float, float]]) -> list[str]:
        _write_history(out / "best_run", history)
        before = len(log.read_text().splitlines())
        assert tune.main(flags) == 0
        lines = [line.split(" ", 1)[1] for line in log.read_text().splitlines()[before:]]
        assert any(line.startswith("best run already trained") for line in lines), lines
        return [line for line in lines if "overfit its" in line or "underfits" in line]

    underfit = rerun(UNDERFIT_HISTORY)
    assert len(underfit) == 1, underfit
    assert underfit[0].startswith(f"the best trial's configuration (trial {best['trial_id']}, retrained in "
                                  f"{out / 'best_run'}): training accuracy ended at 0.23 (epoch 8, on augmented clips)")
    assert "or weaker augmentation than the best trial's (the search varied augment_strength, and it took " \
           f"augment_strength={best['hyperparameters']['augment_strength']:.6g}" in underfit[0]
    assert rerun(LEARNT_HISTORY) == []


def test_a_space_in_which_nothing_changes_a_trial_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    table = tomllib.loads(TINY.read_text())["hp"]["augment_strength"]
    recipe = tmp_path / "only_augment.toml"
    recipe.write_text('[search]\ntuner = "random"\nmax_trials = 2\nepochs = 1\n[hp.augment_strength]\n'
                      + "".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items() if key != "clip"))
    space = SearchSpace.from_toml(recipe)
    off = base_config(tmp_path / "data")  # --no-augment
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(recipe))}: no hyperparameter of this space changes a "
                                          r"trial with these settings, so there is nothing to search: "
                                          r"augment_strength: augmentation is off in this run's settings"):
        tune.check_search(off, space, time_budget_minutes=None, worker_timeout_seconds=120.0)
    tune.check_search(apply_overrides(off, {"augment.enabled": True}), space, time_budget_minutes=None,
                      worker_timeout_seconds=120.0)  # augmentation on: something to search
    # The command refuses it before --overwrite deletes the folder, or run_search writes anything.
    out = tmp_path / "search"
    out.mkdir()
    (out / "trials.csv").write_text("kept\n")
    assert tune.main(cli_flags(make_tones(tmp_path / "data"), out, "--tuning", str(recipe), "--overwrite")) == 2
    err = capsys.readouterr().err.strip()
    assert "nothing to search: augment_strength: augmentation is off" in err
    assert err.endswith("; change the flags, [fixed] or the space"), err
    assert (out / "trials.csv").read_text() == "kept\n"
    with pytest.raises(ConfigError, match=r"nothing to search: .*; change the config, \[fixed\] or the space$"):
        tune.run_search(off, space, tmp_path / "fresh", log=lambda m: None)  # it said "change the flags"
    assert not (tmp_path / "fresh").exists()
    # A search begun before sound_tf left such hyperparameters out (no "not_searched" in its search.json)
    # searched it, and goes on as it began; with --overwrite it would start afresh, and is refused.
    begun = tmp_path / "begun"
    monkeypatch.setattr(SearchSpace, "inert", lambda self, config: {})
    tune._prepare_folder(begun, off, space, "local", overwrite=False, log=lambda m: None)
    monkeypatch.undo()
    saved = json.loads((begun / tune.SEARCH_FILE).read_text())
    del saved[tune.NOT_SEARCHED]
    (begun / tune.SEARCH_FILE).write_text(json.dumps(saved))
    tune.check_search(off, space, time_budget_minutes=None, worker_timeout_seconds=120.0, resuming=begun)
    assert tune._prepare_folder(begun, off, space, "local", overwrite=False, log=lambda m: None) == []
    with pytest.raises(ConfigError, match="nothing to search"):
        tune.check_search(off, space, time_budget_minutes=None, worker_timeout_seconds=120.0)


def test_a_search_with_augmentation_off_neither_draws_nor_records_augment_strength(tmp_path, monkeypatch):
    """--no-augment: augment_strength was drawn, recorded and reported as a best value; it is now left out,
    once said in the log, the same in a resumed search and for a joining worker, and the best run keeps the
    base settings. A search begun before (its oracle holds augment_strength) goes on searching it."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    data = make_tones(tmp_path / "data", clips_per_class=5)
    out = tmp_path / "search"
    config = base_config(data)  # augment.enabled false, as --no-augment sets it
    space = SearchSpace.from_toml(TINY)
    messages: list[str] = []
    result = tune.run_search(config, space.replace_settings(max_trials=2), out, log=messages.append)
    said = [m for m in messages if m.startswith("augment_strength:")]
    assert said == ["augment_strength: every value gives the same settings (augmentation is off in this run's "
                    "settings (augment.enabled = false: --no-augment, the pipeline recipe or [fixed]), so "
                    "augment.gain_probability, augment.noise_probability and augment.spec_time_mask_count change "
                    "nothing); not searched"]
    assert any("4 of 5 hyperparameters" in m for m in messages), messages
    oracle = json.loads((out / "search" / "oracle.json").read_text())
    declared = {hp["config"]["name"] for hp in oracle["hyperparameters"]["space"]}
    assert declared == {"depth", "width_multiplier", "learning_rate", "num_mel_bins"}
    trials = trial_files(out)
    assert len(trials) == 2 and all("augment_strength" not in t["hyperparameters"]["values"] for t in trials.values())
    assert "augment_strength" not in read_csv(out / "trials.csv")[0]
    best = json.loads((out / "best_hparams.json").read_text())
    assert "augment_strength" not in best["hyperparameters"] and best["not_searched"] == ["augment_strength"]
    assert json.loads((out / tune.SEARCH_FILE).read_text())[tune.NOT_SEARCHED] == ["augment_strength"]
    assert Config.load(out / "best_run").augment == config.augment  # the base settings, none scaled
    assert result.best_config.augment == config.augment
    # A worker joins with the chief's declared space; a rerun continues with it and runs one more trial.
    joined = tune._prepare_folder(out, config, space, "worker", overwrite=False, log=lambda m: None)
    assert joined == ["augment_strength"]
    messages.clear()
    tune.run_search(config, space.replace_settings(max_trials=3), out, log=messages.append, final=False)
    assert len(trial_files(out)) == 3 and [m for m in messages if m.startswith("augment_strength:")] == said
    assert all("augment_strength" not in t["hyperparameters"]["values"] for t in trial_files(out).values())
    table = (out / "trials.csv").read_text()
    assert tune.main(["--out", str(out), "--summarize"]) == 0 and (out / "trials.csv").read_text() == table
    # Other flags (augmentation on) are refused as before: another search.
    with pytest.raises(ConfigError, match=r"other settings \(augment.enabled: False there, True now\)"):
        tune.run_search(apply_overrides(config, {"augment.enabled": True}), space, out, log=lambda m: None)

    # A search begun before sound_tf left it out declared augment_strength, and its oracle holds it: it resumes
    # declaring it (a space without it failed the first new trial on the oracle's augment_strength value).
    older = tmp_path / "older"
    with monkeypatch.context() as patched:
        patched.setattr(SearchSpace, "inert", lambda self, config: {})
        tune.run_search(config, space.replace_settings(max_trials=1), older, log=lambda m: None, final=False)
    saved = json.loads((older / tune.SEARCH_FILE).read_text())
    del saved[tune.NOT_SEARCHED]
    (older / tune.SEARCH_FILE).write_text(json.dumps(saved))
    assert "augment_strength" in trial_files(older)["0"]["hyperparameters"]["values"]
    messages.clear()
    tune.run_search(config, space.replace_settings(max_trials=2), older, log=messages.append, final=False)
    trials = trial_files(older)
    assert [t["status"] for t in trials.values()] == ["COMPLETED", "COMPLETED"]
    assert all("augment_strength" in t["hyperparameters"]["values"] for t in trials.values())
    assert any(m.startswith("augment_strength: every value gives the same settings") and "goes on searching it" in m
               for m in messages), messages
    assert tune._prepare_folder(older, config, space, "worker", overwrite=False, log=lambda m: None) == []
    assert "augment_strength" in read_csv(older / "trials.csv")[0]


def test_a_worker_refused_for_its_split_keeps_no_split_that_refuses_it_once_the_data_are_fixed(tmp_path, monkeypatch,
                                                                                               capsys):
    """A refused worker kept workers/<id>/split.csv, reused it on every start and was refused forever."""
    import shutil

    from sound_tf import tune
    from sound_tf.datasets import prepare_dataset
    from sound_tf.errors import DatasetError
    from sound_tf.hypermodel import SearchSpace

    class Reached(Exception):
        """The worker got past its data and would build its tuner now."""

    def reached(*args, **kwargs):
        raise Reached

    data = make_tones(tmp_path / "data", clips_per_class=5)
    config, space, out = base_config(data), SearchSpace.from_toml(TINY), tmp_path / "shared"
    tune._prepare_folder(out, config, space, "chief", overwrite=False, log=lambda m: None)
    prepare_dataset(config, out, log=lambda m: None)  # the chief's split.csv
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    monkeypatch.setattr(tune, "make_tuner", reached)
    mine = out / "workers" / "tuner1" / "split.csv"

    aside = tmp_path / "low_0.wav"
    shutil.move(data / "low" / "low_0.wav", aside)  # this machine's copy of the data lacks a file
    prepare_dataset(config, tmp_path / "stale", log=lambda m: None)  # (a split of that data, for later)
    with pytest.raises(DatasetError, match="this worker's split differs from the chief's .*; every machine needs the "
                                           "same data and config$"):  # (a Python worker was told "and flags")
        tune.run_search(config, space, out, final=False, log=lambda m: None)
    assert not mine.exists()
    assert tune.main(cli_flags(data, out)) == 2  # the command's words: its flags
    assert capsys.readouterr().err.strip().endswith("; every machine needs the same data and flags")
    assert not mine.exists()
    shutil.move(aside, data / "low" / "low_0.wav")  # fixed: the worker joins
    with pytest.raises(Reached):
        tune.run_search(config, space, out, final=False, log=lambda m: None)
    assert mine.read_text() == (out / "split.csv").read_text()

    # A split an older version kept after refusing the worker: split again from the (fixed) data.
    shutil.copyfile(tmp_path / "stale" / "split.csv", mine)
    messages: list[str] = []
    with pytest.raises(Reached):
        tune.run_search(config, space, out, final=False, log=messages.append)
    assert mine.read_text() == (out / "split.csv").read_text()
    assert f"worker tuner1: the split it kept in {mine} differs from the chief's; splitting the data again" in messages


def test_noise_recordings_are_checked_before_the_search_and_decoded_once_for_every_trial(tmp_path, monkeypatch):
    from sound_tf import augment, tune
    from sound_tf.hypermodel import SearchSpace

    data = make_tones(tmp_path / "data", clips_per_class=4)
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    config = apply_overrides(base_config(data), {
        "augment.enabled": True, "augment.noise_dir": str(tmp_path / "missing"), "augment.noise_probability": 1.0})
    space = SearchSpace.from_toml(TINY).replace_settings(max_trials=2)
    out = tmp_path / "search"
    with pytest.raises(ConfigError, match="augment.noise_dir=.*missing: no such folder"):
        tune.run_search(config, space, out, final=False, log=lambda m: None)
    assert not (out / tune.SEARCH_FILE).exists() and not (out / "search").exists()  # no trial, no state

    rng = np.random.default_rng(1)
    sf.write(noise_dir / "hum.wav", (0.1 * rng.standard_normal(SR)).astype(np.float32), SR)
    loads: list[str] = []
    real_load = augment.load_noise_folder

    def counting_load(cfg, **kwargs):
        loads.append(cfg.augment.noise_dir)
        return real_load(cfg, **kwargs)

    monkeypatch.setattr(augment, "load_noise_folder", counting_load)  # load_noise_bank calls it too
    noisy = apply_overrides(config, {"augment.noise_dir": str(noise_dir)})
    result = tune.run_search(noisy, space, out, final=False, log=lambda m: None)
    assert sum(r.status == "COMPLETED" for r in result.trials) == 2
    assert loads == [str(noise_dir)]  # once for the search, not once per trial's pipeline and model


def _noisy_tones(tmp_path: Path) -> tuple[Path, np.random.Generator, Config]:
    """Tones of 4 clips per class and a noise folder of one second's hum (``hum.wav``), mixed into every clip: the
    folder, the generator that wrote it (for more files) and the config."""
    data = make_tones(tmp_path / "data", clips_per_class=4)
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    rng = np.random.default_rng(1)
    sf.write(noise_dir / "hum.wav", (0.1 * rng.standard_normal(SR)).astype(np.float32), SR, subtype="PCM_16")
    config = apply_overrides(base_config(data), {"augment.enabled": True, "augment.noise_dir": str(noise_dir),
                                                 "augment.noise_probability": 1.0})
    return noise_dir, rng, config


def test_a_search_continued_after_its_noise_folder_changed_says_so(tmp_path):
    """A search continued (killed, or extended by --max-trials) after files of augment.noise_dir were added,
    removed or replaced trained its next trials on other noise without a word, as a resumed `train` did before
    noise.json. The search folder keeps noise.json by trial, and the run's warning (trainer.record_noise's code)
    says what changed; one without noise.json (begun before it was kept) says once that the noise is unknown."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    noise_dir, rng, config = _noisy_tones(tmp_path)
    space = SearchSpace.from_toml(TINY)
    out = tmp_path / "search"

    def search(max_trials: int) -> list[str]:
        messages: list[str] = []
        tune.run_search(config, space.replace_settings(max_trials=max_trials), out, final=False, log=messages.append)
        return [m for m in messages if m.startswith("warning: augment.noise_dir")]

    def versions() -> list[tuple[int, list[str], float]]:
        record = json.loads((out / "noise.json").read_text())
        assert record["noise_dir"] == str(noise_dir)
        return [(v["first_trial"], sorted(v["files"]), v["seconds"]) for v in record["versions"]]

    assert search(2) == []
    assert versions() == [(1, ["hum.wav"], 1.0)]
    sf.write(noise_dir / "fan.wav", (0.1 * rng.standard_normal(SR // 2)).astype(np.float32), SR, subtype="PCM_16")
    assert search(3) == [
        f"warning: augment.noise_dir={noise_dir} has changed since trials 1-2 of this search mixed in its recordings: "
        f"1 file added (fan.wav). The search goes on with the folder as it is now: trial 3 mixes in 2 files, 1.5 s of "
        f"noise (trials 1-2: 1 file, 1.0 s; noise.json in the search folder lists both); to train every trial on the "
        f"same noise, stop this command, put the files back and run it again, or start over (--overwrite)"]
    assert versions() == [(1, ["hum.wav"], 1.0), (3, ["fan.wav", "hum.wav"], 1.5)]
    assert search(3) == []  # nothing left to run: nothing recorded
    (out / "noise.json").unlink()  # as a search begun before sound_tf kept it
    assert search(4) == [
        f"warning: augment.noise_dir={noise_dir}: which of its recordings trials 1-3 of this search mixed in is "
        f"unknown (the search has no noise.json: it began before sound_tf kept one, or the file was damaged). The "
        f"search goes on with the folder as it is now: trial 4 mixes in 2 files, 1.5 s of noise, which noise.json "
        f"in the search folder records from now on"]
    assert versions() == [(4, ["fan.wav", "hum.wav"], 1.5)]


def test_a_workers_trials_record_their_noise_in_its_own_folder_counting_the_trials_it_ran(tmp_path, monkeypatch):
    """In a chief/worker search only the chief wrote noise.json, from its own copy of augment.noise_dir, and it runs
    no trial: which recordings a worker's trials mixed in was recorded nowhere. Each worker keeps workers/<id>/
    noise.json before it asks for trials, by the trials it ran to the end (trials.csv's tuner_id): a worker that
    joins a search others ran trials of begins at its trial 1 without a warning, and one started again after its
    folder changed, or without the file, gets the search's warning in a worker's words."""
    from types import SimpleNamespace

    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    noise_dir, rng, config = _noisy_tones(tmp_path)
    space, out = SearchSpace.from_toml(TINY).replace_settings(max_trials=6), tmp_path / "shared"
    tune._prepare_folder(out, config, space, "chief", overwrite=False, log=lambda m: None)  # the chief's search.json
    seen: dict[str, Any] = {}

    def make_tuner(space, hypermodel, out, *, seed, deadline=None):  # a worker whose oracle hands out no trial
        def search(**kwargs):
            seen["noise"] = json.loads((out / "workers" / os.environ["KERASTUNER_TUNER_ID"] / "noise.json").read_text())
        return SimpleNamespace(tuner_id=os.environ["KERASTUNER_TUNER_ID"], current_trial_id=None, search=search)

    class Watch:
        def __init__(self, *args):
            self.answered = None

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(tune, "make_tuner", make_tuner)
    monkeypatch.setattr(tune, "_wait_for_oracle", lambda *args, **kwargs: None)  # the chief answers at once
    monkeypatch.setattr(tune, "OracleWatch", Watch)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")

    def worker(tid: str) -> list[str]:
        messages: list[str] = []
        monkeypatch.setenv("KERASTUNER_TUNER_ID", tid)
        assert tune.run_search(config, space, out, final=False, log=messages.append).role == "worker"
        assert seen.pop("noise") == json.loads((out / "workers" / tid / "noise.json").read_text())  # before trials
        return [m for m in messages if m.startswith("warning: augment.noise_dir")]

    def versions(tid: str) -> list[tuple[int, list[str], float]]:
        record = json.loads((out / "workers" / tid / "noise.json").read_text())
        assert record["noise_dir"] == str(noise_dir)
        return [(v["first_trial"], sorted(v["files"]), v["seconds"]) for v in record["versions"]]

    assert worker("tuner1") == [] and versions("tuner1") == [(1, ["hum.wav"], 1.0)]
    oracle = _random_oracle(out, max_trials=6)  # the chief's: tuner1 ends 2 trials, tuner0 1, tuner1 is running one
    for tid, status in (("tuner1", "COMPLETED"), ("tuner0", "COMPLETED"), ("tuner1", "FAILED"), ("tuner1", None)):
        trial = oracle.create_trial(tid)
        if status is not None:
            oracle.update_trial(trial.trial_id, {"val_loss": 0.5})
            trial.status = status
            oracle.end_trial(trial)
    oracle.save()
    sf.write(noise_dir / "fan.wav", (0.1 * rng.standard_normal(SR // 2)).astype(np.float32), SR, subtype="PCM_16")
    assert worker("tuner1") == [
        f"warning: augment.noise_dir={noise_dir} has changed since trials 1-2 of this worker mixed in its recordings: "
        f"1 file added (fan.wav). The worker goes on with the folder as it is now: trials 3-6 mix in 2 files, 1.5 s of "
        f"noise (trials 1-2: 1 file, 1.0 s; noise.json in the worker folder lists both); to train every trial on the "
        f"same noise, stop this command, put the files back and run it again, or start the search over (the chief's "
        f"--overwrite)"]
    assert versions("tuner1") == [(1, ["hum.wav"], 1.0), (3, ["fan.wav", "hum.wav"], 1.5)]
    assert worker("tuner2") == [] and versions("tuner2") == [(1, ["fan.wav", "hum.wav"], 1.5)]  # joins late
    assert worker("tuner0") == [  # ran a trial before sound_tf kept a worker's noise.json
        f"warning: augment.noise_dir={noise_dir}: which of its recordings trial 1 of this worker mixed in is unknown "
        f"(the worker has no noise.json: it began before sound_tf kept one, or the file was damaged). The worker goes "
        f"on with the folder as it is now: trials 2-6 mix in 2 files, 1.5 s of noise, which noise.json in the worker "
        f"folder records from now on"]
    assert versions("tuner0") == [(2, ["fan.wav", "hum.wav"], 1.5)]
    assert not (out / "noise.json").exists()  # the chief's own, which no worker writes


def test_a_chief_keeps_no_noise_json_of_its_own_and_says_where_the_workers_keep_theirs(tmp_path, monkeypatch):
    """A chief wrote the search folder's noise.json from its own copy of augment.noise_dir, though it runs no trial:
    beside the workers' workers/<id>/noise.json it read as the noise of the search's trials, from trial 1. It now
    writes none (one there before, from a local search's trials, is left as it is) and its log says where the
    workers' records are; without a noise folder it says nothing. The oracle is not served (_serve faked): no
    worker asks for a trial."""
    from types import SimpleNamespace

    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    noise_dir, _, config = _noisy_tones(tmp_path)
    space, out = SearchSpace.from_toml(TINY).replace_settings(max_trials=2), tmp_path / "shared"
    served: list[bool] = []  # whether the search folder had a noise.json when the chief began to serve

    def serve(tuner, out, *args, **kwargs):
        served.append((out / "noise.json").exists())

    monkeypatch.setattr(tune, "_serve", serve)
    _as_chief(monkeypatch)

    def chief() -> list[str]:
        messages: list[str] = []
        assert tune.run_search(config, space, out, final=False, log=messages.append).role == "chief"
        return [m for m in messages if "augment.noise_dir" in m]

    said = (f"chief: augment.noise_dir={noise_dir}: the chief runs no trial, so the search folder keeps no noise.json; "
            f"each worker records the recordings its own trials mix in, in {out / 'workers' / '<id>' / 'noise.json'}")
    assert chief() == [said]  # final=False: no best run is trained, so none is named
    with_final = tune._search_noise(out, "chief", SimpleNamespace(folder=noise_dir), first_trial=1, max_trials=2,
                                    final=True)
    assert with_final == f"{said} (the best run, which the chief trains, in {out / 'best_run' / 'noise.json'})"
    assert served == [False] and not (out / "noise.json").exists()
    kept = b'{"noise_dir": "/data/noise", "versions": []}'
    (out / "noise.json").write_bytes(kept)  # a local search's, before the search was distributed
    assert len(chief()) == 1 and (out / "noise.json").read_bytes() == kept
    assert served == [False, True]
    (out / "noise.json").unlink()
    assert tune._search_noise(out, "chief", None, first_trial=1, max_trials=2) is None  # no noise folder
    assert not (out / "noise.json").exists()


def test_time_budget_lets_the_running_trial_finish_and_starts_no_other(tmp_path, recwarn):
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    data = make_tones(tmp_path / "data", clips_per_class=6)
    space = SearchSpace.from_toml(TINY).replace_settings(max_trials=3, tuner="hyperband")
    result = tune.run_search(base_config(data), space, tmp_path / "out", time_budget_minutes=1e-4, final=False,
                             log=lambda m: None)
    assert [t.status for t in result.trials] == ["COMPLETED"]
    assert result.trials[0].values["tuner/epochs"] == 1  # Hyperband's budget for the trial
    assert result.best_run is None and not (tmp_path / "out" / "best_run").exists()
    assert not [str(w.message) for w in recwarn if "shuffle" in str(w.message)]  # the pipeline shuffles
    with pytest.raises(ConfigError, match="time_budget_minutes must be > 0"):
        tune.run_search(base_config(data), space, tmp_path / "out", time_budget_minutes=0)


def test_the_search_gets_the_spaces_seed_and_a_deadline_in_minutes(tmp_path, monkeypatch):
    """[search] seed, when given, seeds the tuner rather than train.seed; --time-budget counts minutes."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    class Reached(Exception):
        """run_search built its tuner."""

    made: list[dict] = []

    def make_tuner(space, hypermodel, out, *, seed, deadline=None):
        made.append({"seed": seed, "deadline": deadline})
        raise Reached

    monkeypatch.setattr(tune, "make_tuner", make_tuner)
    data = make_tones(tmp_path / "data", clips_per_class=5)
    config = apply_overrides(base_config(data), {"train.seed": 3})
    space = SearchSpace.from_toml(TINY)
    for settings, budget in (({"seed": 11}, 2.0), ({}, None)):
        began = time.time()
        with pytest.raises(Reached):
            tune.run_search(config, space.replace_settings(**settings), tmp_path / f"out{len(made)}", final=False,
                            time_budget_minutes=budget, log=lambda m: None)
        if budget is not None:
            assert began + 60.0 * budget - 1.0 <= made[-1]["deadline"] <= time.time() + 60.0 * budget
    assert [m["seed"] for m in made] == [11, 3] and made[1]["deadline"] is None


def test_the_base_epochs_cap_every_trial(tmp_path):
    """train.epochs (--epochs) caps a trial's epochs, whatever [search] epochs says."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    data = make_tones(tmp_path / "data", clips_per_class=6)
    space = SearchSpace.from_toml(TINY).replace_settings(max_trials=1, epochs=3)
    messages: list[str] = []
    result = tune.run_search(base_config(data), space, tmp_path / "out", final=False, log=messages.append)
    [trial] = result.trials
    assert trial.status == "COMPLETED" and trial.metrics["epochs"] == 1 == base_config(data).train.epochs
    assert any("up to 1 trial of up to 1 epoch, " in m for m in messages), messages
    assert any(m.startswith("1 of 1 trial completed; 1 ended in this run,") for m in messages), messages


def test_tune_log_names_each_trial_and_its_values_before_its_epoch_lines(tmp_path):
    """tune.log had one line per trial epoch but none saying which trial they were: a walkthrough's 3-trial FSDD
    search logged "epoch 1/3 ... epoch 3/3, epoch 1/3, epoch 2/3, epoch 1/3 ..." with nothing between them, so
    the early-stopped trial and each trial's values could only be guessed from trials.csv."""
    from sound_tf import tune

    data = make_tones(tmp_path / "data", clips_per_class=6)
    out = tmp_path / "out"
    assert tune.main(cli_flags(data, out, "--max-trials", "2", "--no-final")) == 0
    lines = [line.split(" ", 1)[1] for line in (out / "tune.log").read_text().splitlines()]
    shown = [line for line in lines if line.startswith(("trial ", "epoch "))]
    trials = trial_files(out)
    expected = []
    for trial_id in ("0", "1"):
        values = trials[trial_id]["hyperparameters"]["values"]
        expected += ["trial " + trial_id + ": " + ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                                                            for k, v in values.items()), "epoch 1/1"]
    assert [line if line.startswith("trial ") else line.split(":")[0] for line in shown] == expected, shown
    space_line = next(line for line in lines if line.startswith("search space "))
    assert f": {len(trials['0']['hyperparameters']['values'])} of 5 hyperparameters, " in space_line, space_line
    assert set(trials["0"]["hyperparameters"]["values"]) == {"depth", "width_multiplier", "learning_rate",
                                                            "num_mel_bins"}  # augment_strength: not searched
    hyperband = {"depth": 3, "learning_rate": 0.002, "tuner/epochs": 4, "tuner/initial_epoch": 2,
                 "tuner/bracket": 1, "tuner/round": 1, "tuner/trial_id": "0005"}
    assert tune.trial_line("0007", hyperband) == ("trial 0007: depth=3, learning_rate=0.002 (Hyperband round: up to "
                                                  "epoch 4, continuing trial 0005 from epoch 2)")
    assert tune.trial_line("0001", {**hyperband, "tuner/trial_id": None, "tuner/initial_epoch": 0}) == \
        "trial 0001: depth=3, learning_rate=0.002 (Hyperband round: up to epoch 4)"


def test_a_trials_floats_are_shown_to_six_significant_digits_and_one_hyperparameter_is_singular():
    """A log-sampled rate was printed 'learning_rate=0.0017296754729136264' in every trial and best-trial line
    (session 51's distributed-tuning walkthrough); best_hparams.json keeps the exact value."""
    from sound_tf import tune

    rate = 0.0017296754729136264
    line = tune.trial_line("2", {"learning_rate": rate, "depth": 3, "dropout": 0.25, "pool": True})
    assert line == "trial 2: learning_rate=0.00172968, depth=3, dropout=0.25, pool=True"
    shown = float(line.split("learning_rate=")[1].split(",")[0])
    assert shown != rate and abs(shown - rate) <= 5e-6 * rate


def test_a_workers_trial_line_gives_its_values_in_the_spaces_order():
    """A worker logged 'trial 1: dropout=0.2, learning_rate=..., depth=4, width_multiplier=0.75, ...' (the oracle
    sends values grouped by type) and its chief 'best trial 0: dropout=0.1, ...', where the space, trials.csv and
    a local search give 'depth=..., width_multiplier=..., dropout=...'."""
    import keras_tuner as kt

    from sound_tf import tune

    names = ["depth", "width_multiplier", "dropout", "learning_rate"]
    hp = kt.HyperParameters()
    hp.Int("depth", 2, 5)
    hp.Choice("width_multiplier", [0.5, 0.75])
    hp.Float("dropout", 0.0, 0.5, step=0.1)
    hp.Float("learning_rate", 3e-4, 1e-2, sampling="log")
    hp.values.update({"depth": 4, "width_multiplier": 0.75, "dropout": 0.2, "learning_rate": 0.001})
    received = kt.HyperParameters.from_proto(hp.to_proto()).values  # as a worker gets it from the oracle
    assert list(received) != names  # grouped by type: what the worker printed
    assert tune.trial_line("1", received, names) == \
        "trial 1: depth=4, width_multiplier=0.75, dropout=0.2, learning_rate=0.001"
    assert tune.trial_line("1", {"x": 1, **received}, names).endswith("learning_rate=0.001, x=1")  # others after


def test_the_trial_epochs_help_says_what_caps_a_trial():
    """--trial-epochs' help said "--epochs caps every training", but a [fixed] train.epochs caps the trials when
    the space sets it (trial_epochs), whatever --epochs says."""
    from sound_tf import tune

    [trial_epochs] = [action for action in tune.build_parser()._actions if "--trial-epochs" in action.option_strings]
    assert trial_epochs.help == ("override [search] epochs (most epochs per trial), capped by the best run's "
                                 "train.epochs: the space's [fixed] train.epochs when it sets one, else the "
                                 "pipeline recipe's, --epochs or --set")


def _fixed_epochs_space(fixed_epochs: int, search_epochs: int, **settings: Any):
    """The tiny space with ``[fixed] train.epochs`` and ``[search] epochs`` set."""
    from sound_tf.hypermodel import SearchSpace

    data = tomllib.loads(TINY.read_text())
    data["fixed"]["train.epochs"] = fixed_epochs
    return SearchSpace.from_dict(data, source="fixed.toml").replace_settings(epochs=search_epochs, **settings)


def test_fixed_epochs_cap_every_trial_as_they_cap_the_best_run(tmp_path):
    """[fixed] train.epochs = 1 with [search] epochs = 3: the best run trained 1 epoch, but the trials were capped
    by the base config's train.epochs (3), so they trained up to 3 and measured training it never got."""
    from sound_tf import tune

    data = make_tones(tmp_path / "data", clips_per_class=6)
    config = apply_overrides(base_config(data), {"train.epochs": 3})
    space = _fixed_epochs_space(1, 3, max_trials=1)
    messages: list[str] = []
    result = tune.run_search(config, space, tmp_path / "out", final=False, log=messages.append)
    [trial] = result.trials
    assert trial.status == "COMPLETED" and trial.metrics["epochs"] == 1  # patience 1: 2 or 3 when not capped
    assert result.best_config.train.epochs == 1
    assert any("up to 1 trial of up to 1 epoch, " in m for m in messages), messages
    assert json.loads((tmp_path / "out" / tune.SEARCH_FILE).read_text())[tune.TRIAL_EPOCHS] == 1


def test_a_search_keeps_the_trial_epochs_it_began_with_and_its_workers_take_them(tmp_path, monkeypatch):
    """The cap is recorded in search.json: a worker takes the chief's, and a search begun before it was recorded
    (no trial_epochs there) resumes, and is joined, with the cap it began with: [search] epochs capped by the
    base config's train.epochs, whatever [fixed] sets."""
    from sound_tf import tune

    class Reached(Exception):
        """run_search built its hypermodel."""

    caps: list[int] = []

    def make_tuner(space, hypermodel, out, *, seed, deadline=None):
        caps.append(hypermodel.trial_overrides["train.epochs"])
        raise Reached

    monkeypatch.setattr(tune, "make_tuner", make_tuner)
    data = make_tones(tmp_path / "data", clips_per_class=5)
    config, space, out = apply_overrides(base_config(data), {"train.epochs": 3}), _fixed_epochs_space(1, 3), \
        tmp_path / "search"

    def search(**env: str) -> list[str]:
        messages: list[str] = []
        with monkeypatch.context() as patched, pytest.raises(Reached):
            for name, value in env.items():
                patched.setenv(name, value)
            tune.run_search(config, space, out, final=False, log=messages.append)
        return messages

    worker = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": "1", "KERASTUNER_TUNER_ID": "tuner1"}
    messages = search()
    assert caps == [1] and json.loads((out / tune.SEARCH_FILE).read_text())[tune.TRIAL_EPOCHS] == 1
    assert any("trials of up to 1 epoch, " in m for m in messages), messages
    search(**worker)
    assert caps == [1, 1]

    saved = json.loads((out / tune.SEARCH_FILE).read_text())
    del saved[tune.TRIAL_EPOCHS]  # as sound_tf wrote it before it recorded the cap
    (out / tune.SEARCH_FILE).write_text(json.dumps(saved))
    search(**worker)  # a worker of this version joining an older chief's search
    messages = search()  # the search resumed
    assert caps == [1, 1, 3, 3] and json.loads((out / tune.SEARCH_FILE).read_text())[tune.TRIAL_EPOCHS] == 3
    assert any("trials of up to 3 epochs, " in m for m in messages), messages
    search()
    search(**worker)
    assert caps == [1, 1, 3, 3, 3, 3]


@pytest.mark.parametrize("bad", ["3", 0, -2, 2.5, 3.0, True, None, [3]])
def test_a_search_json_whose_trial_epochs_is_not_a_whole_number_from_1_is_refused_naming_it(tmp_path, bad):
    """A malformed cap fell back to the old rule ([search] epochs capped by train.epochs) without a word, so a
    resumed search's trials trained for another number of epochs than it began with. Only a search.json without
    one (begun before sound_tf recorded it) keeps that rule."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"search": {"epochs": 4}, "hp": {
        "lr": {"key": "train.learning_rate", "values": [0.001, 0.01]}}})
    config = apply_overrides(base_config(tmp_path / "data"), {"train.epochs": 6})
    assert tune.trial_epochs(config, space, {}) == 4 and tune.trial_epochs(config, space, {tune.TRIAL_EPOCHS: 2}) == 2
    assert tune.trial_epochs(config, space, {tune.TRIAL_EPOCHS: np.int64(2)}) == 2
    with pytest.raises(ConfigError, match=re.escape(f"there/search.json: trial_epochs must be a whole number >= 1 "
                                                    f"(the most epochs of a trial of this search), got {bad!r}")):
        tune.trial_epochs(config, space, {tune.TRIAL_EPOCHS: bad}, source="there/search.json")
    out = tmp_path / "search"
    tune._prepare_folder(out, config, space, "local", overwrite=False, log=lambda m: None)
    saved = json.loads((out / tune.SEARCH_FILE).read_text())
    assert saved[tune.TRIAL_EPOCHS] == 4
    (out / tune.SEARCH_FILE).write_text(json.dumps({**saved, tune.TRIAL_EPOCHS: bad}))
    with pytest.raises(ConfigError, match=re.escape(f"{out / tune.SEARCH_FILE}: trial_epochs must be a whole number")):
        tune._prepare_folder(out, config, space, "local", overwrite=False, log=lambda m: None)
    assert json.loads((out / tune.SEARCH_FILE).read_text())[tune.TRIAL_EPOCHS] == bad  # left as it was


# -- distributed bookkeeping (no processes) ----------------------------------------------------------------
def test_a_released_worker_trial_goes_to_the_next_worker_and_others_wait_for_it(tmp_path):
    import keras_tuner as kt
    from sound_tf import tune

    oracle = tune.RandomSearchOracle(objective=kt.Objective("val_loss", "min"), max_trials=2, seed=1)
    oracle._set_project_dir(str(tmp_path), "search")
    hp = kt.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle.update_space(hp)
    a = oracle.create_trial("tuner0")
    b = oracle.create_trial("tuner1")
    assert (a.status, b.status) == ("RUNNING", "RUNNING")
    oracle.update_trial(a.trial_id, {"val_loss": 0.5})
    a.status = "COMPLETED"
    oracle.end_trial(a)
    # Every trial is handed out but tuner1's may still fail: tuner0 waits instead of exiting.
    assert oracle.create_trial("tuner0").status == "IDLE" and not oracle.finished()
    assert oracle.release_tuner("tuner1", "worker tuner1 sent no heartbeat for 10 s") == b.trial_id
    again = oracle.create_trial("tuner0")
    assert again.status == "RUNNING" and again.trial_id == b.trial_id
    assert again.hyperparameters.values == b.hyperparameters.values
    oracle.update_trial(again.trial_id, {"val_loss": 0.4})
    again.status = "COMPLETED"
    oracle.end_trial(again)
    assert oracle.create_trial("tuner0").status == "STOPPED" and oracle.finished()
    state = json.loads((tmp_path / "search" / "oracle.json").read_text())
    assert state["assignments"] == {a.trial_id: ["tuner0"], b.trial_id: ["tuner1", "tuner0"]}


def test_the_chief_finishes_only_when_no_trial_is_queued_and_every_worker_was_told_to_stop(tmp_path):
    """finished() ends the chief's oracle server: a trial queued again (its worker released) must still be
    handed out, and a worker that asked and was told to wait must still be told to stop, or it asks a
    chief that has gone."""
    import keras_tuner as kt

    from sound_tf import tune

    oracle = tune.RandomSearchOracle(max_trials=1, **tune.oracle_options(kt.Objective("val_loss", "min"), seed=0))
    oracle._set_project_dir(str(tmp_path), "search")
    oracle.hyperparameters.Float("x", 0.0, 1.0)
    a = oracle.create_trial("tuner0")
    assert oracle.release_tuner("tuner0", "worker tuner0 sent no heartbeat for 10 s") == a.trial_id
    assert not oracle.finished()  # every trial was handed out, but one waits to run again
    again = oracle.create_trial("tuner1")
    assert again.trial_id == a.trial_id and oracle.create_trial("tuner2").status == "IDLE"  # tuner2 waits
    oracle.update_trial(again.trial_id, {"val_loss": 0.5})
    again.status = "COMPLETED"
    oracle.end_trial(again)
    assert not oracle.finished() and oracle.active_tuners() == {"tuner1", "tuner2"}
    assert oracle.create_trial("tuner1").status == "STOPPED" and not oracle.finished()
    assert oracle.create_trial("tuner2").status == "STOPPED" and oracle.finished()


def test_a_spent_time_budget_starts_no_trial_and_tells_idle_workers_to_stop(tmp_path):
    """After the deadline the running trial finishes, no other starts, and a worker that asks is told to stop
    at once (not to wait, as while trials that could come back to the queue are running)."""
    import keras_tuner as kt

    from sound_tf import tune

    oracle = tune.RandomSearchOracle(max_trials=5, **tune.oracle_options(kt.Objective("val_loss", "min"), seed=0))
    oracle._set_project_dir(str(tmp_path), "search")
    oracle.hyperparameters.Float("x", 0.0, 1.0)
    a = oracle.create_trial("tuner0")
    oracle.deadline = time.time() - 1.0  # the budget is spent while tuner0 runs a
    assert oracle.create_trial("tuner0").trial_id == a.trial_id  # still its own
    assert oracle.create_trial("tuner1").status == "STOPPED" and not oracle.finished()
    oracle.update_trial(a.trial_id, {"val_loss": 0.5})
    a.status = "COMPLETED"
    oracle.end_trial(a)
    assert oracle.create_trial("tuner0").status == "STOPPED" and oracle.finished()
    assert list(oracle.trials) == [a.trial_id] and oracle.budget_spent


def test_a_worker_given_back_its_trial_is_told_to_stop_before_the_chief_finishes(tmp_path):
    """A restarted chief gives tuner0 back the trial its heartbeat names; once tuner0 ends it, the chief must
    still answer tuner0's next request (STOPPED) before it finishes, or tuner0 asks a chief that has gone."""
    from sound_tf import tune

    def oracle():
        return _random_oracle(tmp_path, max_trials=1)

    first = oracle()
    a = first.create_trial("tuner0")
    first.save()  # the chief stops while tuner0 runs a
    beat = tmp_path / "workers" / "tuner0" / tune.HEARTBEAT_FILE
    beat.parent.mkdir(parents=True)
    beat.write_text(json.dumps({"tuner_id": "tuner0", "trial_id": a.trial_id, "beat": 7}))
    chief = oracle()
    chief.reload()
    assert tune._resume_in_flight(chief, tmp_path, lambda _: None) == {"tuner0": a.trial_id}
    chief.update_trial(a.trial_id, {"val_loss": 0.5})
    a.status = "COMPLETED"
    chief.end_trial(a)
    assert not chief.finished() and chief.active_tuners() == {"tuner0"}
    assert chief.create_trial("tuner0").status == "STOPPED" and chief.finished()


def test_seed_0_draws_the_same_trials_every_time(tmp_path):
    """KerasTuner takes seed 0 for "draw a random seed": train.seed 0 (the default) must still repeat a search."""
    import keras_tuner as kt

    from sound_tf import tune

    def first_values(name, seed):
        made = tune.RandomSearchOracle(max_trials=3, **tune.oracle_options(kt.Objective("val_loss", "min"), seed=seed))
        made._set_project_dir(str(tmp_path), name)
        made.hyperparameters.Float("x", 0.0, 1.0)
        made.hyperparameters.Int("n", 1, 10_000)
        return [made.create_trial(f"tuner{i}").hyperparameters.values for i in range(3)]

    assert first_values("a", 0) == first_values("b", 0) != first_values("c", 1)


def test_a_trial_queued_to_run_again_reads_back_as_interrupted(tmp_path):
    """trials.csv says INTERRUPTED (with the reason) for a trial whose worker was released, not RUNNING."""
    import keras_tuner as kt

    from sound_tf import tune

    oracle = tune.RandomSearchOracle(max_trials=2, **tune.oracle_options(kt.Objective("val_loss", "min"), seed=0))
    oracle._set_project_dir(str(tmp_path), tune.PROJECT)
    oracle.hyperparameters.Float("x", 0.0, 1.0)
    a, b = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    oracle.release_tuner("tuner1", "worker tuner1 sent no heartbeat for 120 s")
    records = {r.trial_id: r for r in tune.load_trials(tmp_path)}
    assert (records[a.trial_id].status, records[a.trial_id].message) == ("RUNNING", "")
    assert (records[b.trial_id].status, records[b.trial_id].message) == (
        "INTERRUPTED", "worker tuner1 sent no heartbeat for 120 s")
    assert records[b.trial_id].tuner_ids == ["tuner1"] and records[b.trial_id].score is None


def test_a_failed_trials_message_reads_back_as_its_last_line(tmp_path):
    """A failed trial's message is KerasTuner's whole traceback; trials.csv gives its last line, the error itself."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    oracle = _random_oracle(tmp_path, max_trials=1)
    failed = oracle.create_trial("tuner0")
    failed.status = "FAILED"
    failed.message = ("Traceback (most recent call last):\n  File \"hypermodel.py\", line 12, in build\n"
                      "ValueError: width 3 is below the kernel's 5\n")
    oracle.end_trial(failed)
    last = failed.message.strip().splitlines()[-1]
    assert [r.message for r in tune.load_trials(tmp_path)] == [last]
    tune.write_summary(tmp_path, SearchSpace.from_toml(TINY))
    assert [(r["trial_id"], r["message"]) for r in read_csv(tmp_path / "trials.csv")] == [(failed.trial_id, last)]


def test_trials_read_back_by_id_as_numbers_and_ties_in_id_order(tmp_path):
    """A search extended from 2 to 11 trials has ids 0, 1, then 02..10: the unranked trials read back as numbers
    (not 0, 02, ..., 1, 10 as strings), and completed trials of equal score keep their id order."""
    from sound_tf import tune

    oracle = _random_oracle(tmp_path, max_trials=2)
    losses = {}
    for index in range(11):
        if index == 2:
            oracle.max_trials = 11  # the same search run again with --max-trials 11
        trial = oracle.create_trial("tuner0")
        if index % 3 == 0:
            trial.status = "FAILED"
        else:
            losses[trial.trial_id] = 0.25 if index % 2 else 0.5
            oracle.update_trial(trial.trial_id, {"val_loss": losses[trial.trial_id]})
            trial.status = "COMPLETED"
        oracle.end_trial(trial)
    ids = list(oracle.trials)
    assert ids[:3] == ["0", "1", "02"] and ids[-1] == "10"
    ranked = sorted(losses, key=lambda t: (losses[t], int(t)))
    unranked = sorted((t for t in ids if t not in losses), key=int)
    records = tune.load_trials(tmp_path, "min")
    assert [r.trial_id for r in records] == ranked + unranked
    assert [r.score for r in records[:len(ranked)]] == pytest.approx([losses[t] for t in ranked])


def test_a_search_without_its_search_json_ranks_its_val_loss_lowest_first(tmp_path):
    """load_trials reads the direction from search.json; without it (a KerasTuner project alone) the default
    objective's, val_loss: lowest first."""
    from sound_tf import tune

    oracle = _random_oracle(tmp_path, max_trials=3)
    for loss in (0.4, 0.2, 0.9):
        trial = oracle.create_trial("tuner0")
        oracle.update_trial(trial.trial_id, {"val_loss": loss})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert not (tmp_path / tune.SEARCH_FILE).exists()
    scores = {t.trial_id: t.score for t in oracle.trials.values()}
    assert [r.trial_id for r in tune.load_trials(tmp_path)] == sorted(scores, key=scores.get)


def test_a_time_budget_spent_before_the_first_trial_runs_that_trial_alone(tmp_path):
    """A deadline already past when the first worker asks (a slow start, a tiny --time-budget): one trial runs,
    so the search has a result, and every other ask is told to stop."""
    oracle = _random_oracle(tmp_path, max_trials=5)
    oracle.deadline = time.time() - 1.0
    first = oracle.create_trial("tuner0")
    assert first.status == "RUNNING" and oracle.budget_spent
    assert oracle.create_trial("tuner1").status == "STOPPED"
    oracle.update_trial(first.trial_id, {"val_loss": 0.5})
    first.status = "COMPLETED"
    oracle.end_trial(first)
    assert oracle.create_trial("tuner0").status == "STOPPED" and oracle.finished()
    assert list(oracle.trials) == [first.trial_id]


def test_a_worker_logs_its_trial_line_in_the_spaces_order(tmp_path):
    """on_trial_begin's line 'trial N: ...': a worker gets its values from the oracle grouped by type, and logged
    them so; the line follows the space's order, as a local search's and trials.csv's."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    space = SearchSpace.from_toml(TINY)
    lines: list[str] = []
    hypermodel = SoundHyperModel(Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES)),
                                 space, log=lines.append)
    tuner = tune.make_tuner(space, hypermodel, tmp_path, seed=0)
    trial = tuner.oracle.create_trial(tuner.tuner_id)
    values = dict(trial.hyperparameters.values)
    trial.hyperparameters.values = dict(reversed(list(values.items())))  # a worker's come in another order
    names = [p.name for p in space.params]
    tuner.on_trial_begin(trial)
    assert lines == [f"trial {trial.trial_id}: " + tune.values_text(values, names)]
    assert [part.split("=")[0] for part in lines[0].split(": ", 1)[1].split(", ")] == [n for n in names if n in values]
    assert list(values) != list(trial.hyperparameters.values)  # the line is not just the order it came in



def test_the_trials_ended_are_those_that_completed_or_failed():
    """'N ended in this run' counts these: a failed trial ended, a running, interrupted or waiting one did not."""
    from sound_tf import tune

    statuses = ["COMPLETED", "FAILED", "INVALID", "RUNNING", "INTERRUPTED", "IDLE"]
    records = [tune.TrialRecord(trial_id=str(i), status=s, score=None) for i, s in enumerate(statuses)]
    assert tune._ended_trials(records) == {str(i) for i, s in enumerate(statuses) if s in tune.ENDED_STATUSES} \
        == {"0", "1", "2"}


def test_a_continued_search_counts_the_trials_it_ended_and_names_the_best_values_in_the_spaces_order(
        tmp_path, monkeypatch):
    """A failed trial of the first run is not one that 'ended in this run' of the second; and the 'best trial'
    line gives the values in the space's order whatever the order of its trial.json (a chief's trial.json has
    them grouped by type, as the oracle received them)."""
    import keras_tuner as kt

    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    losses = iter([None, 0.3, None])  # trial 0 fails, trial 1 scores 0.3, trial 2 (the second run) fails

    def quick_fit(self, hp, model, *args, **kwargs):
        loss = next(losses)
        if loss is None:
            raise kt.errors.FailedTrialError("no valid model")
        return {"val_loss": loss}

    monkeypatch.setattr(SoundHyperModel, "fit", quick_fit)
    data = make_tones(tmp_path / "data", clips_per_class=4)
    space, out = SearchSpace.from_toml(TINY), tmp_path / "out"
    tune.run_search(base_config(data), space.replace_settings(max_trials=2), out, final=False, log=lambda m: None)
    path = out / tune.PROJECT / "trial_1" / "trial.json"
    saved = json.loads(path.read_text())
    values = saved["hyperparameters"]["values"]
    saved["hyperparameters"]["values"] = dict(reversed(list(values.items())))
    path.write_text(json.dumps(saved))
    messages: list[str] = []
    result = tune.run_search(base_config(data), space.replace_settings(max_trials=3), out, final=False,
                             log=messages.append)
    assert [(r.trial_id, r.status) for r in result.trials] == [("1", "COMPLETED"), ("0", "FAILED"), ("2", "FAILED")]
    assert any(m.startswith("1 of 3 trials completed; 1 ended in this run,") for m in messages), messages
    in_order = tune.values_text(values, [p.name for p in space.params])
    assert f"best trial 1: val_loss = 0.3 with {in_order}" in messages, messages
    assert [part.split("=")[0] for part in in_order.split(", ")] == [p.name for p in space.params if p.name in values]


def test_a_search_that_drew_every_combination_of_its_space_ends(tmp_path):
    """A space of 2 combinations with max_trials 5: KerasTuner answers STOPPED after the 2 (no new values to
    draw), with fewer trials than max_trials; the chief must count that search finished once its workers were
    told to stop, or it serves the oracle for ever."""
    import keras_tuner as kt

    from sound_tf import tune

    oracle = tune.RandomSearchOracle(max_trials=5, **tune.oracle_options(kt.Objective("val_loss", "min"), seed=0))
    oracle._set_project_dir(str(tmp_path), tune.PROJECT)
    oracle.hyperparameters.Choice("width", [8, 16])
    for loss in (0.5, 0.4):
        trial = oracle.create_trial("tuner0")
        oracle.update_trial(trial.trial_id, {"val_loss": loss})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert not oracle.finished()  # tuner0 was not told to stop yet
    assert oracle.create_trial("tuner0").status == "STOPPED"
    assert sorted(t.hyperparameters.values["width"] for t in oracle.trials.values()) == [8, 16]
    assert len(oracle.trials) == 2 and oracle.finished()


def test_the_chief_finishes_when_every_worker_dies_after_the_last_trial(tmp_path):
    """Both trials of a 2-trial search completed, then both workers died before asking for another (so none
    was told to stop): once the chief releases them, nothing is left to run or wait for, and it finishes."""
    from sound_tf import tune

    oracle = _random_oracle(tmp_path, max_trials=2)
    for tid, loss in (("tuner0", 0.5), ("tuner1", 0.4)):
        trial = oracle.create_trial(tid)
        oracle.update_trial(trial.trial_id, {"val_loss": loss})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    assert not oracle.finished() and oracle.active_tuners() == {"tuner0", "tuner1"}
    assert [oracle.release_tuner(tid, "silent") for tid in ("tuner0", "tuner1")] == [None, None]
    assert oracle.finished()


def test_oracle_json_names_the_worker_of_a_trial_once_as_soon_as_it_is_handed_out(tmp_path):
    """A chief killed during a trial reloads who was handed it (trials.csv's worker column), and a worker
    started again under its id that is handed its own trial back is not listed twice."""
    from sound_tf import tune

    oracle = _random_oracle(tmp_path, max_trials=2)
    a = oracle.create_trial("tuner0")

    def saved() -> dict:
        return json.loads((tmp_path / tune.PROJECT / "oracle.json").read_text())["assignments"]

    assert saved() == {a.trial_id: ["tuner0"]}
    assert oracle.create_trial("tuner0").trial_id == a.trial_id  # tuner0 restarted, asking under its id
    b = oracle.create_trial("tuner1")
    assert saved() == {a.trial_id: ["tuner0"], b.trial_id: ["tuner1"]}
    chief = _random_oracle(tmp_path, max_trials=2)  # the chief stops and starts again
    chief.reload()
    assert {r.trial_id: r.tuner_ids for r in tune.load_trials(tmp_path)} == {a.trial_id: ["tuner0"],
                                                                             b.trial_id: ["tuner1"]}
    assert chief.assignments == {a.trial_id: ["tuner0"], b.trial_id: ["tuner1"]}


def test_a_workers_heartbeat_names_the_trial_it_runs_and_none_once_it_ended(tmp_path):
    """A restarted chief gives a trial back to the worker whose heartbeat names it (resume_in_flight): the
    heartbeat must name the trial from its start, and stop naming it once it ended, or a chief restarted then
    would hold an ended trial for a worker that asks for the next one."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    space = SearchSpace.from_toml(TINY)
    hypermodel = SoundHyperModel(Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES)),
                                 space)
    tuner = tune.make_tuner(space, hypermodel, tmp_path, seed=0)
    path = tmp_path / "workers" / tuner.tuner_id / tune.HEARTBEAT_FILE
    path.parent.mkdir(parents=True)
    heartbeat = tune.Heartbeat(path, tuner, interval=60.0)  # beaten by hand here, not by its thread
    heartbeat.beat()
    assert json.loads(path.read_text())["trial_id"] is None
    trial = tuner.oracle.create_trial(tuner.tuner_id)
    tuner.on_trial_begin(trial)
    heartbeat.beat()
    assert (json.loads(path.read_text())["trial_id"], json.loads(path.read_text())["beat"]) == (trial.trial_id, 2)
    tuner.oracle.update_trial(trial.trial_id, {"val_loss": 0.5})
    trial.status = "COMPLETED"
    tuner.on_trial_end(trial)
    heartbeat.beat()
    assert (json.loads(path.read_text())["trial_id"], json.loads(path.read_text())["beat"]) == (None, 3)


def test_the_default_worker_timeout_is_the_120_s_the_readme_gives(tmp_path):
    import inspect

    from sound_tf import tune

    assert tune.build_parser().parse_args([]).worker_timeout == 120.0
    assert inspect.signature(tune.run_search).parameters["worker_timeout_seconds"].default == 120.0
    assert "silent for `--worker-timeout` s (default 120)" in (REPO / "README.md").read_text()
    assert "(default: 120)" in tune.build_parser().format_help()


def test_trials_read_back_in_the_order_they_ended_not_the_order_they_began(tmp_path):
    """trials.png's left plot is in finish order: of trials begun a, b, c, c ended first, then a; b runs."""
    from sound_tf import tune

    oracle = _random_oracle(tmp_path, max_trials=3)
    a, b, c = (oracle.create_trial(f"tuner{i}") for i in range(3))
    for trial, loss in ((c, 0.3), (a, 0.5)):
        oracle.update_trial(trial.trial_id, {"val_loss": loss})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    records = tune.load_trials(tmp_path, "min")
    assert {r.trial_id: r.finished for r in records} == {c.trial_id: 0, a.trial_id: 1, b.trial_id: None}
    assert [r.trial_id for r in tune.in_finish_order(records)] == [c.trial_id, a.trial_id, b.trial_id]


@pytest.mark.filterwarnings("ignore:All-NaN axis encountered:RuntimeWarning")  # KerasTuner's scoring, on purpose here
def test_a_trial_whose_objective_was_never_a_number_is_neither_ranked_nor_counted(tmp_path):
    """KerasTuner scores a trial whose val_accuracy was NaN at every epoch NaN and fails it (INVALID, then FAILED
    without retries): it reads back without a score, gets no rank in trials.csv and is not counted as completed."""
    from sound_tf import tune

    space, ids = _val_accuracy_search(tmp_path, (0.5, float("nan"), 0.7))
    records = tune.load_trials(tmp_path)
    assert [(r.trial_id, r.status, r.score) for r in records] == [
        (ids[2], "COMPLETED", pytest.approx(0.7)), (ids[0], "COMPLETED", pytest.approx(0.5)), (ids[1], "FAILED", None)]
    tune.write_summary(tmp_path, space)
    rows = read_csv(tmp_path / "trials.csv")
    assert [(r["rank"], r["trial_id"], r["status"], r["val_accuracy"]) for r in rows] == [
        ("1", ids[2], "COMPLETED", "0.7"), ("2", ids[0], "COMPLETED", "0.5"), ("", ids[1], "FAILED", "")]
    summary = json.loads((tmp_path / "best_hparams.json").read_text())
    assert (summary["trial_id"], summary["completed_trials"], summary["trials"]) == (ids[2], 2, 3)


def test_trials_csv_has_the_objective_once_and_the_other_validation_metrics_beside_it(tmp_path):
    from sound_tf import tune

    space, ids = _val_accuracy_search(tmp_path, (0.5, 0.9))
    tune.write_summary(tmp_path, space)
    with (tmp_path / "trials.csv").open(newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header[:7] == ["rank", "trial_id", "status", "tuner_id", "val_accuracy", "val_loss", "epochs"]
    assert header.count("val_accuracy") == 1
    assert [row[:6] for row in rows] == [["1", ids[1], "COMPLETED", "tuner0", "0.9", "0.1"],
                                         ["2", ids[0], "COMPLETED", "tuner0", "0.5", "0.5"]]


def test_trials_png_draws_the_best_so_far_in_the_objectives_direction(tmp_path, monkeypatch):
    """The left plot's step line is the lowest val_loss so far, and the highest val_accuracy so far."""
    from matplotlib.figure import Figure

    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    drawn: list[Figure] = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: (drawn.append(self),
                                                                          savefig(self, *args, **kwargs))[1])
    scores = [0.5, 0.3, 0.4, 0.2]
    records = [tune.TrialRecord(trial_id=str(i), status="COMPLETED", score=s, finished=i) for i, s in enumerate(scores)]
    for objective, best in (("val_loss", [0.5, 0.3, 0.3, 0.2]), ("val_accuracy", [0.5, 0.5, 0.5, 0.5])):
        space = SearchSpace.from_toml(TINY).replace_settings(objective=objective)
        tune.plot_trials(records, space, tmp_path / f"{objective}.png")
        points, best_so_far = drawn[-1].axes[0].get_lines()
        assert list(points.get_ydata()) == scores and list(best_so_far.get_ydata()) == best, objective


def test_trials_png_counts_trials_in_whole_numbers_and_names_each_trials_id(tmp_path, monkeypatch):
    """A search of 3 trials drew its left plot with ticks at 1.00, 1.25, ... 3.00 and its depth axis at 2.00,
    2.25, ...; the points, placed by finish order 1-3, did not say which of trials.csv's ids 0-2 they were."""
    from matplotlib.figure import Figure

    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    drawn: list[Figure] = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: (drawn.append(self),
                                                                          savefig(self, *args, **kwargs))[1])
    space = SearchSpace.from_toml(REPO / "tuning" / "default.toml")
    runs = [("2", 1.30, 2), ("0", 1.37, 4), ("1", 1.39, 5)]  # finished in this order
    records = [tune.TrialRecord(trial_id=tid, status="COMPLETED", score=score, finished=place, values={"depth": depth})
               for place, (tid, score, depth) in enumerate(runs)]
    tune.plot_trials(records, space, tmp_path / "trials.png")
    left, right = drawn[-1].axes
    drawn[-1].canvas.draw()
    for axis in (left, right):
        ticks = [t for t in axis.get_xticks() if axis.get_xlim()[0] <= t <= axis.get_xlim()[1]]
        assert ticks and all(t == int(t) for t in ticks), (axis.get_xlabel(), ticks)
    assert right.get_xlabel() == "depth"
    assert [(t.get_text(), t.xy) for t in left.texts] == [("2", (1, 1.30)), ("0", (2, 1.37)), ("1", (3, 1.39))]
    assert left.get_xlabel() == "trial (in the order they finished; each labelled with its trial_id)"


def test_importance_needs_three_completed_trials():
    """Two points always rank-correlate perfectly: the most influential hyperparameter is named from 3 on."""
    from sound_tf import tune

    records = [tune.TrialRecord(trial_id=str(i), status="COMPLETED", score=score, values={"lr": lr, "width": w})
               for i, (score, lr, w) in enumerate([(0.9, 1e-3, 8), (0.5, 1e-2, 8), (0.4, 3e-2, 16)])]
    assert tune._importance(records[:2], ["lr", "width"]) == (None, -1.0)
    name, rho = tune._importance(records, ["lr", "width"])
    assert name == "lr" and rho == pytest.approx(1.0)


def _tuner0_holds_a_trial(tmp_path, monkeypatch):
    """A chief's oracle of one trial, as ``tune._serve`` serves it, and the trial tuner0 took."""
    import keras_tuner as kt

    from sound_tf import tune

    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    oracle = tune.RandomSearchOracle(max_trials=1, **tune.oracle_options(kt.Objective("val_loss", "min"), seed=0))
    oracle._set_project_dir(str(tmp_path), tune.PROJECT)
    oracle.hyperparameters.Float("x", 0.0, 1.0)
    a = oracle.create_trial("tuner0")
    return oracle, a


def _tuner1_takes_the_released_trial(oracle, beats=None):
    """The workers as the chief's oracle server sees them, for ``tune._serve``'s search: tuner1 waits (writing its
    heartbeat to ``beats`` when given) until tuner0's trial is released, runs it and is told the search stopped."""
    def search(**kwargs):
        deadline = time.monotonic() + 30
        count = 0
        while "tuner0" in oracle.ongoing_trials and time.monotonic() < deadline:
            count += 1
            if beats is not None:
                beats.write_text(json.dumps({"tuner_id": "tuner1", "beat": count}))
            time.sleep(0.05)
        again = oracle.create_trial("tuner1")
        oracle.update_trial(again.trial_id, {"val_loss": 0.5})
        again.status = "COMPLETED"
        oracle.end_trial(again)
        oracle.create_trial("tuner1")  # STOPPED

    return search


def test_a_released_trial_with_another_worker_beating_is_not_told_to_wait_for_one(tmp_path, monkeypatch):
    """With its one worker killed mid-trial, the chief said 'trial 1 will run again on the next worker that
    asks' and then nothing, waiting for good. It now says when no other worker's heartbeat moves; here tuner1
    beats (idle), so the release line ends as before."""
    from types import SimpleNamespace

    from sound_tf import tune

    oracle, a = _tuner0_holds_a_trial(tmp_path, monkeypatch)
    beats = tmp_path / "workers" / "tuner1" / tune.HEARTBEAT_FILE
    beats.parent.mkdir(parents=True)
    search = _tuner1_takes_the_released_trial(oracle, beats)  # tuner1 beats while it waits
    messages: list[str] = []
    tune._serve(SimpleNamespace(oracle=oracle, search=search), tmp_path, 1.0, {}, messages.append)
    released = [m for m in messages if ": released" in m]
    assert len(released) == 1, messages
    released = released[0]
    assert released.endswith(f"released; trial {a.trial_id} will run again on the next worker that asks"), released
    assert messages[-1] == "chief: all trials are done"


def test_the_chief_releases_a_worker_that_never_wrote_a_heartbeat_and_says_why(tmp_path, monkeypatch):
    """_serve with a stand-in oracle server: tuner0 took a trial and never wrote its heartbeat (an --out not
    shared with it); it is released after --worker-timeout, the message asks whether --out is shared, and
    the trial goes to the next worker. A server that stops before the search is done is an error."""
    from types import SimpleNamespace

    import keras_tuner as kt

    from sound_tf import tune
    from sound_tf.errors import SoundTFError

    oracle, a = _tuner0_holds_a_trial(tmp_path, monkeypatch)
    search = _tuner1_takes_the_released_trial(oracle)
    messages: list[str] = []
    tune._serve(SimpleNamespace(oracle=oracle, search=search), tmp_path, 1.0, {}, messages.append)
    beat = tmp_path / "workers" / "tuner0" / tune.HEARTBEAT_FILE
    assert f"chief: worker tuner0 is silent for 1 s (it never wrote {beat}: is --out shared with it?): released; " \
           f"trial {a.trial_id} will run again on the next worker that asks; no other worker's heartbeat in " \
           f"{tmp_path / 'workers'} changed for 1 s, so the search waits for a worker: start one " \
           f"(KERASTUNER_TUNER_ID=tuner0 again, with the same flags and --out {tmp_path})" in messages
    assert messages[-1] == "chief: all trials are done" and oracle.trials[a.trial_id].status == "COMPLETED"
    assert json.loads((tmp_path / "chief.json").read_text())["status"] == "finished"

    early = tune.RandomSearchOracle(max_trials=2, **tune.oracle_options(kt.Objective("val_loss", "min"), seed=0))
    early._set_project_dir(str(tmp_path / "early"), tune.PROJECT)
    early.hyperparameters.Float("x", 0.0, 1.0)
    with pytest.raises(SoundTFError, match="the oracle server on 127.0.0.1:8000 stopped: unknown"):
        tune._serve(SimpleNamespace(oracle=early, search=lambda **kwargs: None), tmp_path / "early", 60.0, {},
                    lambda m: None)
    assert not (tmp_path / "early" / "chief.json").is_file() or json.loads(
        (tmp_path / "early" / "chief.json").read_text())["status"] != "finished"


def test_a_python_chief_names_its_config_out_and_worker_timeout_and_the_command_its_flags(tmp_path, monkeypatch,
                                                                                           capsys):
    """A chief run from Python logged "start workers with ... the same flags and --out", "is --out shared with
    it?" and "runs again elsewhere only if tuner0 is silent for --worker-timeout"; it names its config, out and
    worker_timeout_seconds now, and the command keeps its flags. No trial runs: a stand-in for KerasTuner's
    search, in which tuner1 takes a trial and never beats, over the oracle of a search in which tuner0 was
    running a trial when the chief stopped; the server stops before the search is done (an error)."""
    from types import SimpleNamespace

    from sound_tf import tune
    from sound_tf.errors import SoundTFError
    from sound_tf.hypermodel import SearchSpace
    from sound_tf.train import config_from_args

    monkeypatch.setattr(tune, "HEARTBEAT_SECONDS", 0.2)  # so that a worker timeout of 1 s is allowed
    data, space = make_tones(tmp_path / "data", clips_per_class=5), SearchSpace.from_toml(TINY)

    def make_tuner(space, hypermodel, out, *, seed, deadline=None):
        oracle = _random_oracle(out, max_trials=4)
        oracle.reload()

        def search(**kwargs):
            oracle.create_trial("tuner1")
            deadline = time.monotonic() + 30
            while "tuner1" in oracle.ongoing_trials and time.monotonic() < deadline:
                time.sleep(0.05)

        return SimpleNamespace(oracle=oracle, search=search, save=lambda: None)

    monkeypatch.setattr(tune, "make_tuner", make_tuner)
    _as_chief(monkeypatch)
    for name, settings, folder, timeout in (("python", "config", "out", "worker_timeout_seconds"),
                                            ("command", "flags", "--out", "--worker-timeout")):
        out = tmp_path / name
        flags = cli_flags(data, out, "--worker-timeout", "1")
        config = config_from_args(tune.build_parser().parse_args(flags))
        tune._prepare_folder(out, config, space, "chief", overwrite=False, log=lambda m: None)
        stopped = _random_oracle(out, max_trials=4)
        running = stopped.create_trial("tuner0").trial_id
        stopped.save()  # the chief stops while tuner0 runs the trial, and tuner0 goes on beating for it
        beat = out / "workers" / "tuner0" / tune.HEARTBEAT_FILE
        beat.parent.mkdir(parents=True)
        beat.write_text(json.dumps({"tuner_id": "tuner0", "trial_id": running, "beat": 3}))
        messages: list[str] = []
        if name == "python":
            with pytest.raises(SoundTFError, match="the oracle server on .* stopped"):
                tune.run_search(config, space, out, worker_timeout_seconds=1.0, log=messages.append)
        else:
            assert tune.main(flags) == 2
            messages = capsys.readouterr().out.splitlines()
        for line in (f"chief: serving the oracle; start workers with KERASTUNER_TUNER_ID=tuner0, tuner1, ... and the "
                     f"same {settings} and {folder} {out}",
                     f"chief: worker tuner0 was running trial {running} when the chief stopped, and its heartbeat "
                     f"names that trial: it stays tuner0's (and runs again elsewhere only if tuner0 is silent for "
                     f"{timeout})",
                     f"chief: worker tuner1 is silent for 1 s (it never wrote "
                     f"{out / 'workers' / 'tuner1' / tune.HEARTBEAT_FILE}: is {folder} shared with it?): released"):
            assert any(line in m for m in messages), (line, messages)


def test_a_waiting_worker_polls_the_oracle_every_little_while_not_in_a_busy_loop(monkeypatch):
    """KerasTuner asks again at once after an IDLE answer: each ask that follows one without a trial waits."""
    from types import SimpleNamespace

    from sound_tf import tune

    slept: list[float] = []
    monkeypatch.setattr(tune.time, "sleep", slept.append)
    worker = SimpleNamespace(_asked=False, _ran=False)
    tune.SoundTunerMixin.pre_create_trial(worker)  # the first ask
    assert slept == []
    tune.SoundTunerMixin.pre_create_trial(worker)  # answered IDLE: wait before the next
    tune.SoundTunerMixin.pre_create_trial(worker)
    assert slept == [tune.IDLE_POLL_SECONDS] * 2
    worker._ran = True  # a trial ran (on_trial_begin): ask for the next at once
    tune.SoundTunerMixin.pre_create_trial(worker)
    assert slept == [tune.IDLE_POLL_SECONDS] * 2


def test_heartbeat_watch_uses_its_own_clock(tmp_path, monkeypatch):
    from sound_tf import tune

    clock = [100.0]
    monkeypatch.setattr(tune.time, "monotonic", lambda: clock[0])
    watch = tune.HeartbeatWatch(tmp_path, timeout=10.0)
    beat = tmp_path / "tuner0" / tune.HEARTBEAT_FILE
    beat.parent.mkdir()
    beat.write_text('{"beat": 1, "time": 0}')  # a wrong worker clock does not matter
    assert watch.silent({"tuner0", "tuner1"}) == []
    clock[0] = 109.0
    beat.write_text('{"beat": 2, "time": 0}')
    assert watch.silent({"tuner0", "tuner1"}) == []
    clock[0] = 112.0  # tuner1 never wrote a heartbeat: silent 12 s after it was first seen
    assert watch.silent({"tuner0", "tuner1"}) == ["tuner1"]
    clock[0] = 120.0  # tuner0's last change was at 109
    assert watch.silent({"tuner0"}) == ["tuner0"]


def test_the_chief_says_when_a_worker_starts_again_and_which_trial_it_runs_again(tmp_path, monkeypatch):
    """A worker killed mid-trial and started again with its id was handed its trial back, and ran it again from
    its beginning: the chief's log said nothing, and the worker's showed 'trial 0: ...' as a first run."""
    from types import SimpleNamespace

    from sound_tf import tune

    def beat(tid: str, pid: int, number: int) -> None:
        path = tmp_path / "workers" / tid / tune.HEARTBEAT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"tuner_id": tid, "host": "machine-b", "pid": pid, "token": f"machine-b:{pid}:1.5",
                                    "beat": number}))

    beat("tuner0", 100, 1)
    beat("tuner1", 200, 1)
    lines: list[str] = []

    class Oracle:
        turns = 0

        def resume_in_flight(self, running):
            return {}

        def active_tuners(self):
            return {"tuner0", "tuner1"}

        def running_trial(self, tid):
            return {"tuner0": "3"}.get(tid)

        def finished(self):
            self.turns += 1
            if self.turns == 2:  # the chief has read both heartbeats once: restart both workers
                beat("tuner0", 101, 1)
                beat("tuner1", 201, 1)
                beat("tuner2", 300, 1)  # a worker first seen: no restart
            if self.turns == 4:
                beat("tuner0", 101, 2)  # the new process beats on: said once
            return self.turns >= 6

    served = threading.Event()
    tuner = SimpleNamespace(oracle=Oracle(), search=lambda **kwargs: served.wait(30))
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setattr(tune.time, "sleep", lambda seconds: None)
    try:
        tune._serve(tuner, tmp_path, 120.0, {}, lines.append)
    finally:
        served.set()
    restarts = [line for line in lines if "started again" in line]
    assert restarts == [
        "chief: worker tuner0 started again (pid 101 on machine-b; it was pid 100 on machine-b): trial 3, which it "
        "was running, is handed back to it and runs again from its beginning",
        "chief: worker tuner1 started again (pid 201 on machine-b; it was pid 200 on machine-b)"]


def test_a_worker_says_a_trial_it_begins_was_begun_before(tmp_path):
    """The trial a restarted worker is handed back read 'trial 3: lr=0.01', as a first run."""
    import keras_tuner as kt

    lines: list[str] = []
    trial = kt.engine.trial.Trial(kt.HyperParameters(), trial_id="3", status="RUNNING")
    trial.hyperparameters.values = {"lr": 0.01}
    config = Config(labels=("a", "b"))
    _hook_worker(tmp_path, lines.append, config=config).on_trial_begin(trial)
    assert lines == ["trial 3: lr=0.01"] and (tmp_path / "trial_3" / "config.json").is_file()
    _hook_worker(tmp_path, lines.append, config=config).on_trial_begin(trial)  # handed back after a restart
    assert lines[1:] == ["trial 3: lr=0.01", "trial 3 was begun before and did not end (its folder holds "
                                             "config.json): it runs again from its beginning"]


def _beat_as_tuner3_on_machine_b(path: Path, stop: threading.Event) -> None:
    """A live worker tuner3 on another machine: its heartbeat file at ``path`` changes until ``stop`` is set."""
    beat = 0
    while not stop.is_set():
        beat += 1
        tmp = path.with_name("other.tmp")
        tmp.write_text(json.dumps({"tuner_id": "tuner3", "host": "machine-b", "pid": 4242,
                                   "token": "machine-b:4242:1.5", "beat": beat, "time": 0}))
        tmp.replace(path)
        time.sleep(0.05)


def test_a_second_worker_with_the_same_tuner_id_is_refused(tmp_path, monkeypatch):
    """Two workers started as tuner3 each ran every trial, and one of them hung: nothing noticed."""
    from types import SimpleNamespace

    from sound_tf import tune

    monkeypatch.setattr(tune, "HEARTBEAT_SECONDS", 0.5)  # a file that does not change for 1.5 s is stale
    path = tmp_path / "workers" / "tuner3" / tune.HEARTBEAT_FILE
    path.parent.mkdir(parents=True)
    tuner = SimpleNamespace(tuner_id="tuner3", current_trial_id=None)
    stop = threading.Event()

    writer = threading.Thread(target=_beat_as_tuner3_on_machine_b, args=(path, stop), daemon=True)
    writer.start()
    while not path.is_file():
        time.sleep(0.01)
    try:
        with pytest.raises(ConfigError) as refused:
            with tune.Heartbeat(path, tuner, interval=0.2):
                pass
    finally:
        stop.set()
        writer.join()
    assert str(refused.value) == (f"another process (pid 4242 on machine-b) is running as worker 'tuner3': its "
                                  f"heartbeat {path} is being written; give every worker its own "
                                  f"KERASTUNER_TUNER_ID (tuner0, tuner1, ...), or stop that one first")
    assert json.loads(path.read_text())["host"] == "machine-b"  # not overwritten

    began = time.monotonic()  # the other worker stopped: its file no longer changes, and this one starts
    with tune.Heartbeat(path, tuner, interval=0.2) as heart:
        assert json.loads(path.read_text())["token"] == heart.token
    assert 1.5 <= time.monotonic() - began < 5
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path.write_text(json.dumps({"tuner_id": "tuner3", "host": socket.gethostname(), "pid": int(ended.stdout),
                                "token": "x", "beat": 1, "time": 0}))
    began = time.monotonic()  # a process of this machine that has ended: no need to watch its file
    with tune.Heartbeat(path, tuner, interval=0.2):
        pass
    assert time.monotonic() - began < 1.0

    errors: list[str] = []  # two that started at the same instant: the first beat after says so
    monkeypatch.setattr(tune, "log", SimpleNamespace(error=errors.append, warning=errors.append))
    with tune.Heartbeat(path, tuner, interval=30) as heart:
        path.write_text(json.dumps({"tuner_id": "tuner3", "host": "machine-b", "pid": 4242, "token": "y"}))
        heart.beat()
        heart.beat()
    assert errors == [f"another process (pid 4242 on machine-b) also writes {path}: two workers run as 'tuner3' "
                      f"and each trial runs twice; stop one and give every worker its own KERASTUNER_TUNER_ID"]


def test_a_refused_twin_writes_nothing_into_the_live_workers_log(tmp_path, monkeypatch, capsys):
    """A second worker started as tuner3 was refused only on entering its heartbeat, when its start-up lines
    had already gone into the live tuner3's workers/tuner3/tune.log."""
    import logging
    from types import SimpleNamespace

    from sound_tf import tune

    monkeypatch.setattr(tune, "HEARTBEAT_SECONDS", 0.5)  # a file that does not change for 1.5 s is stale
    for name, value in (("KERASTUNER_ORACLE_IP", "127.0.0.1"), ("KERASTUNER_ORACLE_PORT", "8000"),
                        ("KERASTUNER_TUNER_ID", "tuner3")):
        monkeypatch.setenv(name, value)
    out = tmp_path / "shared"
    live = out / "workers" / "tuner3"
    live.mkdir(parents=True)
    (live / "tune.log").write_text("the live worker's log\n")
    path = live / tune.HEARTBEAT_FILE

    def run_search(config, space, out, *, log, **kwargs):  # a worker's start-up lines, then its heartbeat
        log("distributed search: this process is 'tuner3' (worker)")
        with tune.Heartbeat(path, SimpleNamespace(tuner_id="tuner3", current_trial_id=None), interval=0.2):
            pass
        return tune.SearchResult(out=out, role="worker")

    monkeypatch.setattr(tune, "run_search", run_search)
    stop = threading.Event()

    writer = threading.Thread(target=_beat_as_tuner3_on_machine_b, args=(path, stop), daemon=True)
    writer.start()
    while not path.is_file():
        time.sleep(0.01)
    root = logging.getLogger()
    handlers = root.handlers[:]
    flags = ["--format", "demo", "--tuning", str(TINY), "--out", str(out)]
    try:
        assert tune.main(flags) == 2
        stop.set()
        writer.join()
        assert "error: another process (pid 4242 on machine-b) is running as worker 'tuner3'" in capsys.readouterr().err
        assert (live / "tune.log").read_text() == "the live worker's log\n"

        # tuner3 restarted on another machine: its old file is watched once (before the log), and on entering
        # the heartbeat it is known to be stale, not watched a second time
        skipped: list[bool] = []
        real_refuse = tune.Heartbeat.refuse_a_twin

        def refuse_a_twin(self):
            skipped.append(self.path.read_bytes() == tune._STALE_HEARTBEATS.get(self.path))
            return real_refuse(self)

        monkeypatch.setattr(tune.Heartbeat, "refuse_a_twin", refuse_a_twin)
        assert tune.main(flags) == 0
        assert skipped == [False, True]
        assert json.loads(path.read_text())["host"] == socket.gethostname()
    finally:
        stop.set()
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()


# -- real processes ----------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_chief(monkeypatch) -> None:
    """Make this process a distributed search's chief, its oracle on a free local port, as KerasTuner reads it."""
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(_free_port()))
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def test_script_runs_a_chief_and_two_workers_that_share_the_trials(tmp_path):
    data = make_tones(tmp_path / "data")
    out = tmp_path / "shared"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    script = subprocess.Popen(["bash", str(REPO / "scripts" / "tune_distributed.sh"), "-n", "2",
                               "-p", str(_free_port()), *cli_flags(data, out, "--max-trials", "3")],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        output, _ = script.communicate(timeout=420)
    finally:
        _stop([script])
    assert script.returncode == 0, output[-3000:]

    trials = trial_files(out)
    assert sorted(trials) == ["0", "1", "2"]
    assert all(t["status"] == "COMPLETED" for t in trials.values())
    # The chief's oracle recorded every trial and who ran it: both workers ran trials.
    assignments = json.loads((out / "search" / "oracle.json").read_text())["assignments"]
    assert sorted(assignments) == sorted(trials)
    ran = [who[-1] for who in assignments.values()]
    assert set(ran) == {"tuner0", "tuner1"}, assignments
    rows = read_csv(out / "trials.csv")
    assert sorted(r["tuner_id"] for r in rows) == sorted(ran)
    for tid in ("tuner0", "tuner1"):
        beat = json.loads((out / "workers" / tid / "heartbeat.json").read_text())
        assert beat["tuner_id"] == tid and beat["beat"] >= 1
    assert json.loads((out / "chief.json").read_text())["status"] == "finished"
    assert (out / "best_run" / "model.keras").is_file() and (out / "best_run" / "metrics.json").is_file()


def test_a_killed_worker_trial_is_run_again_by_another_worker(tmp_path):
    data = make_tones(tmp_path / "data", clips_per_class=6)
    out = tmp_path / "shared"
    port = _free_port()
    base_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERASTUNER_ORACLE_IP": "127.0.0.1",
                "KERASTUNER_ORACLE_PORT": str(port),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    flags = cli_flags(data, out, "--max-trials", "2", "--worker-timeout", "10", "--no-final")

    def start(tuner_id: str, log_name: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "sound_tf.tune", *flags],
                                env={**base_env, "KERASTUNER_TUNER_ID": tuner_id}, cwd=tmp_path,
                                stdout=(tmp_path / log_name).open("w"), stderr=subprocess.STDOUT,
                                start_new_session=True)

    procs = [start("chief", "chief.log")]
    try:
        deadline = time.time() + 240
        while not (out / "chief.json").is_file():
            assert procs[0].poll() is None and time.time() < deadline, (tmp_path / "chief.log").read_text()[-3000:]
            time.sleep(0.2)
        doomed = start("tuner1", "tuner1.log")
        procs.append(doomed)
        beat = out / "workers" / "tuner1" / "heartbeat.json"
        while True:  # kill tuner1 in the middle of its first trial
            assert doomed.poll() is None and time.time() < deadline, (tmp_path / "tuner1.log").read_text()[-3000:]
            if beat.is_file():
                if len(procs) == 2:  # tuner1 is asking for a trial: start tuner0 (it imports meanwhile)
                    procs.append(start("tuner0", "tuner0.log"))
                try:
                    if json.loads(beat.read_text())["trial_id"] is not None:
                        break
                except (json.JSONDecodeError, KeyError):
                    pass
            time.sleep(0.2)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
        procs[0].wait(timeout=300)
        assert procs[0].returncode == 0, (tmp_path / "chief.log").read_text()[-3000:]
        procs[2].wait(timeout=30)
        assert procs[2].returncode == 0, (tmp_path / "tuner0.log").read_text()[-3000:]
    finally:
        _stop(procs)

    trials = trial_files(out)
    assert sorted(trials) == ["0", "1"] and all(t["status"] == "COMPLETED" for t in trials.values())
    # tuner1 was handed trial 0 first (it was the only worker); tuner0 ran it again and ran trial 1.
    assignments = json.loads((out / "search" / "oracle.json").read_text())["assignments"]
    assert assignments == {"0": ["tuner1", "tuner0"], "1": ["tuner0"]}
    assert "worker tuner1 is silent" in (tmp_path / "chief.log").read_text()
    rows = read_csv(out / "trials.csv")
    assert {r["tuner_id"] for r in rows} == {"tuner0"}


def _script(val_losses, val_accuracies):
    class Script(keras.callbacks.Callback):  # ahead of the trial's early stopping: it reads these numbers
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"], logs["val_accuracy"] = val_losses[epoch], val_accuracies[epoch]
    return Script()


def test_a_trial_reports_its_best_epoch_by_the_objective_and_stops_on_it(tmp_path):
    import keras_tuner as kt
    from sound_tf.datasets import prepare_dataset
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    config = base_config(make_tones(tmp_path / "data", clips_per_class=4))
    data = prepare_dataset(config, tmp_path / "run", log=lambda m: None)
    config = apply_overrides(config, {"labels": list(data.labels)})
    space = SearchSpace.from_toml(TINY)
    losses, accuracies = [0.9, 0.3, 0.5, 0.2, 0.1], [0.2, 0.6, 0.5, 0.4, 0.9]

    by_loss = SoundHyperModel(config, space, data, trial_patience=5)
    hp = kt.HyperParameters()
    metrics = by_loss.fit(hp, by_loss.build(hp), callbacks=[_script(losses, accuracies)], epochs=3, verbose=0)
    assert (metrics["epochs"], metrics["best_epoch"]) == (3.0, 2.0)
    assert (metrics["val_loss"], metrics["val_accuracy"]) == pytest.approx((0.3, 0.6))
    # Hyperband continues a trial: epochs 3 and 4 of it, numbered from the start of the trial (trials.csv
    # showed epochs 2 and best_epoch 4).
    metrics = by_loss.fit(hp, by_loss.build(hp), callbacks=[_script(losses, accuracies)], initial_epoch=2, epochs=4,
                          verbose=0)
    assert (metrics["epochs"], metrics["best_epoch"], metrics["val_loss"]) == (4.0, 4.0, pytest.approx(0.2))

    # Objective val_accuracy (maximised), patience 1: stops after epoch 3 (0.5 < 0.6), best is epoch 2,
    # although val_loss rose at epoch 2 (watching val_loss would have stopped there).
    by_accuracy = SoundHyperModel(config, space.replace_settings(objective="val_accuracy"), data, trial_patience=1)
    hp = kt.HyperParameters()
    metrics = by_accuracy.fit(hp, by_accuracy.build(hp), callbacks=[_script([0.5, 0.6, 0.7, 0.1, 0.1], accuracies)],
                              epochs=5, verbose=0)
    assert (metrics["epochs"], metrics["best_epoch"]) == (3.0, 2.0)
    assert (metrics["val_accuracy"], metrics["val_loss"]) == pytest.approx((0.6, 0.6))


def test_build_compiles_with_the_trials_rate_statistics_and_seed(tmp_path):
    import keras_tuner as kt
    from sound_tf.datasets import prepare_dataset
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel
    from sound_tf.trainer import feature_statistics
    from sound_tf import pipeline

    config = base_config(make_tones(tmp_path / "data", clips_per_class=4))  # 1 epoch: no warm-up
    data = prepare_dataset(config, tmp_path / "run", log=lambda m: None)
    config = apply_overrides(config, {"labels": list(data.labels)})
    hypermodel = SoundHyperModel(config, SearchSpace.from_toml(TINY), data)
    hp = kt.HyperParameters()
    hp.Fixed("learning_rate", 0.0042)
    hp.Fixed("num_mel_bins", 24)
    model = hypermodel.build(hp)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.0042)
    trial = apply_overrides(config, {"train.learning_rate": 0.0042, "features.num_mel_bins": 24})
    mean, variance = feature_statistics(trial, *pipeline.label_arrays(data.splits["train"]))
    normalize = model.get_layer("normalize")
    np.testing.assert_allclose(np.ravel(normalize.mean), mean, rtol=1e-5)
    np.testing.assert_allclose(np.ravel(normalize.variance), variance, rtol=1e-5)
    assert np.abs(mean).max() > 1  # not the identity normalisation

    def weights(seed):
        hm = SoundHyperModel(apply_overrides(config, {"train.seed": seed}), SearchSpace.from_toml(TINY))
        return hm.build(kt.HyperParameters()).get_weights()

    assert all(np.array_equal(a, b) for a, b in zip(weights(1), weights(1)))
    assert not all(np.array_equal(a, b) for a, b in zip(weights(1), weights(2)))


def test_a_continued_trial_trains_on_the_epochs_it_continues_with_not_the_first_again(tmp_path, monkeypatch):
    """Hyperband continues a trial from its last epoch (initial_epoch): its training data are those epochs' order
    and crops (as a resumed run's), not the first epoch's served again, an epoch of the training split's batches."""
    import keras_tuner as kt
    from sound_tf import hypermodel
    from sound_tf.datasets import prepare_dataset
    from sound_tf.trainer import steps_per_epoch, training_datasets

    config = base_config(make_tones(tmp_path / "data", clips_per_class=8))
    data = prepare_dataset(config, tmp_path / "run", log=lambda m: None)
    config = apply_overrides(config, {"labels": list(data.labels)})
    served, steps = [], []

    def spied(*args, **kwargs):
        train_ds, val_ds = training_datasets(*args, **kwargs)
        served.append(next(iter(train_ds))[0].numpy())
        return train_ds, val_ds

    monkeypatch.setattr(hypermodel, "training_datasets", spied)
    model = hypermodel.SoundHyperModel(config, hypermodel.SearchSpace.from_toml(TINY), data)
    hp = kt.HyperParameters()
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: steps.append(batch))
    model.fit(hp, model.build(hp), initial_epoch=2, epochs=3, callbacks=[counter], verbose=0)
    trial = model.trial_config(hp)
    # and the epoch it trained was the training split's batches, not the validation split's
    train, val = (steps_per_epoch(len(data.splits[name]), trial) for name in ("train", "val"))
    assert len(steps) == train != val
    first, third = (next(iter(training_datasets(trial, data, first_epoch=e)[0]))[0].numpy() for e in (0, 2))
    assert not np.array_equal(first, third)
    np.testing.assert_array_equal(served[0], third)


def test_build_gives_the_model_the_trials_spec_augment_not_the_base_configs():
    """tiny.toml's augment_strength scales augment.spec_time_mask_count: the model's SpecAugment layer masks as
    many bands as the trial's config says (0 at strength 0), not the base config's 2."""
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    config = Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES))
    assert config.augment.enabled and config.augment.spec_time_mask_count == 2
    hypermodel = SoundHyperModel(config, SearchSpace.from_toml(TINY))
    for strength in (0.0, 1.0):
        hp = kt.HyperParameters()
        hp.Fixed("augment_strength", strength)
        layer = hypermodel.build(hp).get_layer("spec_augment")
        trial = hypermodel.trial_config(hp)
        assert trial.augment.spec_time_mask_count == round(config.augment.spec_time_mask_count * strength)
        assert (layer.time_mask_count, layer.freq_mask_count) == (trial.augment.spec_time_mask_count,
                                                                   trial.augment.spec_freq_mask_count)


def test_a_configs_value_at_either_end_of_a_range_is_the_untuned_value():
    """The untuned model is the config's when a range holds its value, its ends included: at the max, KerasTuner
    was given no default and took the min."""
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace

    config = Config(labels=("a", "b"))
    rate, bins = config.train.learning_rate, config.features.num_mel_bins
    for rates, binses in (((rate, 4 * rate), (bins, 2 * bins)), ((rate / 4, rate), (bins // 2, bins))):
        space = SearchSpace.from_dict({"hp": {
            "rate": {"key": "train.learning_rate", "min": rates[0], "max": rates[1], "sampling": "log"},
            "bins": {"key": "features.num_mel_bins", "min": binses[0], "max": binses[1], "step": 16}}})
        values = space.declare(kt.HyperParameters(), config)
        assert values == {"rate": rate, "bins": bins}
        assert space.trial_config(config, values) == config


def test_scaled_widths_round_to_the_nearest_multiple():
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"hp": {"w": {"keys": ["model.widths"], "mode": "scale", "values": [1.0, 1.4],
                                                "round_to": 8}}})
    config = Config(labels=("a", "b"))  # widths (32, 64, 128, 128)
    # 44.8, 89.6, 179.2 -> 48, 88, 176 (nearest multiples of 8, not the ones below)
    assert space.trial_config(config, {"w": 1.4}).model.widths == (48, 88, 176, 176)


def test_a_stepped_float_range_draws_its_max():
    """KerasTuner counted min = 0, max = 0.5, step = 0.1 as 0.5 // 0.1 + 1 = 5 values (floats): default.toml's
    dropout never drew 0.5, and 0.1..0.7 step 0.2 never drew 0.7."""
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace

    dropout = next(p for p in SearchSpace.from_toml(DEFAULT).params if p.name == "dropout")
    space = SearchSpace.from_dict({"hp": {"dropout": {"key": "model.dropout", "min": 0.0, "max": 0.5, "step": 0.1},
                                          "odd": {"key": "augment.noise_probability", "min": 0.1, "max": 0.7,
                                                  "step": 0.2},
                                          "off_grid": {"key": "augment.gain_probability", "min": 0.0, "max": 0.55,
                                                       "step": 0.1}}})
    assert (dropout.min_value, dropout.max_value, dropout.step) == (0.0, 0.5, 0.1)
    hp = kt.HyperParameters()
    space.declare(hp, Config(labels=("a", "b")))
    drawn = {h.name: sorted({round(h.random_sample(seed=s), 9) for s in range(400)}) for h in hp.space}
    assert drawn["dropout"] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert drawn["odd"] == [0.1, 0.3, 0.5, 0.7]
    assert drawn["off_grid"] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]  # 0.55 is not on the grid: never drawn
    assert max(h.random_sample(seed=s) for h in hp.space for s in range(400)) <= 0.7 + 1e-9


def test_load_trials_ranks_by_the_searchs_own_objective_and_refuses_what_it_cannot_rank(tmp_path):
    """load_trials(out) ranked a val_accuracy search lowest first (its direction defaulted to "min"),
    ranked any other text ("maximize") as "max", and gave [] for a folder holding no search."""
    from sound_tf import tune

    _, ids = _val_accuracy_search(tmp_path, (0.5, 0.9, 0.7))
    assert [r.score for r in tune.load_trials(tmp_path)] == pytest.approx([0.9, 0.7, 0.5])
    assert [r.trial_id for r in tune.load_trials(tmp_path)] == [ids[1], ids[2], ids[0]]
    assert [r.trial_id for r in tune.load_trials(tmp_path, "min")] == [ids[0], ids[2], ids[1]]
    with pytest.raises(ConfigError, match=r"direction must be 'min' or 'max', got 'minimize'"):
        tune.load_trials(tmp_path, "minimize")
    with pytest.raises(ConfigError, match="no search here"):
        tune.load_trials(tmp_path / "serach")


@pytest.mark.parametrize("arguments, message", [
    ({"overwrite": "no"}, "overwrite must be True or False, got 'no'"),
    ({"final": "no"}, "final must be True or False, got 'no'"),
    ({"space": "tiny"}, "space must be a SearchSpace"),
])
def test_run_search_refuses_arguments_it_cannot_use_before_touching_the_folder(tmp_path, arguments, message):
    """run_search(..., overwrite="no") counted the text as true and deleted the search in the folder."""
    from sound_tf import tune
    from sound_tf.hypermodel import SearchSpace

    out = tmp_path / "search"
    config = base_config(tmp_path / "no-such-data")
    space = SearchSpace.from_toml(TINY)
    tune._prepare_folder(out, config, space, "local", overwrite=False, log=lambda m: None)
    (out / "trials.csv").write_text("rank,trial_id\n1,0\n")
    kwargs = {"space": space, **arguments}
    with pytest.raises(ConfigError, match=message):
        tune.run_search(config, out=out, log=lambda m: None, **kwargs)
    assert (out / "trials.csv").read_text() == "rank,trial_id\n1,0\n" and (out / tune.SEARCH_FILE).is_file()


def test_a_misspelt_or_impossible_hyperparameter_is_refused_not_replaced_by_the_default():
    """build(hp) with hp.Fixed("learning_rat", 0.005) built the default rate, final_config({"learning_rat": ...})
    gave the untuned config, and a depth beyond base (7 of 3 widths) was a depth-3 model, all silently."""
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    space = SearchSpace.from_toml(TINY)  # depth: base [8, 16, 16]
    config = Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES))
    hypermodel = SoundHyperModel(config, space)
    with pytest.raises(ConfigError, match=r"tiny.toml: no hyperparameter 'learning_rat' in this space; its "
                                          r"hyperparameters are depth, width_multiplier, learning_rate"):
        hypermodel.final_config({"learning_rat": 0.005})
    hp = kt.HyperParameters()
    hp.Fixed("learning_rat", 0.005)
    with pytest.raises(ConfigError, match="no hyperparameter 'learning_rat'"):
        hypermodel.build(hp)
    for depth in (7, 0, 2.5):
        with pytest.raises(ConfigError, match=rf"\[hp.depth\] depth must be an integer in \[1, 3\].*got {depth}"):
            space.trial_config(config, {"depth": depth})
    hp = kt.HyperParameters()
    hp.Fixed("depth", 7)
    with pytest.raises(kt.errors.FailedTrialError, match=r"depth must be an integer in \[1, 3\]"):
        hypermodel.build(hp)
    # what a search holds still maps: KerasTuner's Hyperband entries are not hyperparameters of the space
    final = hypermodel.final_config({"depth": 3, "learning_rate": 0.005, "tuner/epochs": 2, "tuner/round": 0})
    assert final.model.widths == (8, 16, 16) and final.train.learning_rate == pytest.approx(0.005)


def test_a_space_built_in_python_takes_numpy_numbers_as_the_toml_numbers_they_are():
    """from_dict refused np.int64 choices and search settings, took np.int64 bounds for a float range (the
    int key then got floats) and accepted np.float64 ones: numpy numbers now count as Python's."""
    from sound_tf.hypermodel import SearchSpace

    plain = {"search": {"max_trials": 3, "epochs": 2},
             "hp": {"bins": {"key": "features.num_mel_bins", "values": [16, 24]},
                    "drop": {"key": "model.dropout", "values": [0.1, 0.2]},
                    "rate": {"key": "train.learning_rate", "min": 0.001, "max": 0.01, "default": 0.005}}}
    numpy = {"search": {"max_trials": np.int64(3), "epochs": np.array(2)},
             "hp": {"bins": {"key": "features.num_mel_bins", "values": [np.int64(16), np.int64(24)]},
                    "drop": {"key": "model.dropout", "values": np.array([0.1, 0.2])},
                    "rate": {"key": "train.learning_rate", "min": 0.001, "max": 0.01, "default": np.float64(0.005)}}}
    assert SearchSpace.from_dict(numpy) == SearchSpace.from_dict(plain)
    assert SearchSpace.from_dict(numpy).settings.max_trials == 3
    assert SearchSpace.from_dict(plain).replace_settings(max_trials=np.int64(5)).settings.max_trials == 5
    ranged = SearchSpace.from_dict({"hp": {"mels": {"key": "features.num_mel_bins", "min": np.int64(16),
                                                    "max": np.int32(32), "step": np.array(8)}}}).params[0]
    assert ranged.kind == "int" and (ranged.min_value, ranged.max_value, ranged.step) == (16, 32, 8)
    with pytest.raises(ConfigError, match=r"<dict>: a search space is a table"):
        SearchSpace.from_dict([("hp", {})])


def test_search_settings_built_in_python_take_numpy_integers_as_ints():
    """SearchSettings took only ``int``: ``SearchSettings(max_trials=np.int64(5))`` (built directly, not through
    from_dict) was refused, and so was a numpy seed; they are kept as ints, as KerasTuner saves them to JSON."""
    from sound_tf.hypermodel import SearchSettings

    settings = SearchSettings(max_trials=np.int64(5), epochs=np.int32(2), early_stopping_patience=np.uint8(1),
                              hyperband_factor=np.int64(3), initial_points=np.int64(4), seed=np.int64(7))
    values = dataclasses.asdict(settings)
    assert {k: values[k] for k in ("max_trials", "epochs", "early_stopping_patience", "hyperband_factor",
                                   "initial_points", "seed")} == {"max_trials": 5, "epochs": 2,
                                                                  "early_stopping_patience": 1, "hyperband_factor": 3,
                                                                  "initial_points": 4, "seed": 7}
    assert all(type(v) is int for k, v in values.items() if k not in ("objective", "tuner"))
    json.dumps(values)
    for value in (True, np.True_, 2.0, "2", np.array(2)):
        with pytest.raises(ConfigError, match=rf"^search\.max_trials must be an integer >= 1, got "
                                              rf"{re.escape(repr(value))}$"):
            SearchSettings(max_trials=value)
        with pytest.raises(ConfigError, match=rf"^search\.hyperband_factor must be an integer >= 2, got "
                                              rf"{re.escape(repr(value))}$"):
            SearchSettings(hyperband_factor=value)
        with pytest.raises(ConfigError, match=r"^search\.seed must be an integer in \[0, 2\*\*30\)"):
            SearchSettings(seed=value)


@pytest.mark.parametrize("arguments, message", [
    ({"trial_epochs": 0}, "trial_epochs must be an integer >= 1 (or None), got 0"),
    ({"trial_patience": True}, "trial_patience must be an integer >= 1 (or None), got True"),
    ({"trial_epochs": np.True_}, "trial_epochs must be an integer >= 1 (or None), got np.True_"),
    ({"trial_epochs": 2.5}, "trial_epochs must be an integer >= 1 (or None), got 2.5"),
    ({"space": "tiny"}, "space must be a SearchSpace"),
])
def test_the_hypermodel_refuses_trial_settings_it_cannot_use_naming_them(arguments, message):
    """trial_epochs=0 made every trial fail as an "invalid combination" of hyperparameters that were all fine."""
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    config = Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES))
    with pytest.raises(ConfigError, match=re.escape(message)):
        SoundHyperModel(config, **{"space": SearchSpace.from_toml(TINY), **arguments})


def test_the_hypermodel_takes_numpy_trial_settings():
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    config = Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES))
    hypermodel = SoundHyperModel(config, SearchSpace.from_toml(TINY), trial_epochs=np.int64(2),
                                 trial_patience=np.int32(1))
    trial = hypermodel.trial_config(kt.HyperParameters())
    assert (trial.train.epochs, trial.train.early_stopping_patience) == (2, 1)
    # make_tuner gives it to Hyperband as max_epochs, which the oracle saves as JSON (np.int64 is not JSON)
    oracle = kt.oracles.HyperbandOracle(objective="val_loss", max_epochs=hypermodel.trial_overrides["train.epochs"])
    assert json.loads(json.dumps(oracle.get_state()))["max_epochs"] == 2


def test_a_stepped_float_range_at_a_settings_bound_gives_a_valid_config_at_its_max():
    """The hair over max given to KerasTuner let it draw min + k * step past max: 0.09 + 13 * 0.07 is
    1.0000000000000002, refused by augment.noise_probability's [0, 1], so every trial drawing the top value
    failed as an invalid combination (before, KerasTuner never drew it). The top value is taken as max."""
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"hp": {"noise": {"key": "augment.noise_probability", "min": 0.09, "max": 1.0,
                                                    "step": 0.07}}})
    config = Config(labels=("a", "b"))
    hp = kt.HyperParameters()
    space.declare(hp, config)
    top = list(hp.space[0].values)[-1]
    assert top > 1.0 and top == pytest.approx(1.0)  # what KerasTuner draws, and records as the trial's value
    assert space.trial_config(config, {"noise": top}).augment.noise_probability == 1.0
    with pytest.raises(ConfigError):  # a value beyond the range is still refused by the setting
        space.trial_config(config, {"noise": 1.01})


def test_the_inert_check_is_computed_once_as_a_search_starts(monkeypatch):
    """SearchSpace.inert builds up to 4096 configs per group of hyperparameters (about 10 s for six choices
    on train.*), and a search asked for it three times before its first trial (the command's check_search,
    run_search's, and run_search itself): the same space and config reuse the first answer."""
    from sound_tf import hypermodel, tune
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_toml(TINY)
    off = apply_overrides(Config(labels=("a", "b")), {"augment.enabled": False})
    built = []
    real = hypermodel._in_effect
    monkeypatch.setattr(hypermodel, "_in_effect", lambda config: built.append(1) or real(config))
    first = space.inert(off)
    once = len(built)
    assert list(first) == ["augment_strength"] and once > 0
    tune.check_search(off, space, time_budget_minutes=None, worker_timeout_seconds=600.0)
    assert space.inert(off) == first and len(built) == once  # the same answer, not built again
    first.clear()  # a caller's copy: changing it changes no later answer
    assert list(space.inert(off)) == ["augment_strength"]
    on = apply_overrides(off, {"augment.enabled": True})
    assert space.inert(on) == {} and len(built) > once  # another config: computed for it
    assert SearchSpace.from_toml(DEFAULT).inert(off) != {} and list(space.inert(off)) == ["augment_strength"]


def test_a_trial_whose_objective_diverged_to_infinity_is_not_ranked_and_not_the_best(tmp_path):
    """load_trials left an infinite score unranked but write_summary ranked it: a search whose trials all
    diverged named the first of them the best (completed_trials 2 of 2) and would have trained it again."""
    from sound_tf import tune

    inf = float("inf")
    space, ids = _val_accuracy_search(tmp_path / "one", (0.5, inf, 0.7))
    tune.write_summary(tmp_path / "one", space)
    rows = read_csv(tmp_path / "one" / "trials.csv")
    assert [(r["rank"], r["trial_id"]) for r in rows] == [("1", ids[2]), ("2", ids[0]), ("", ids[1])]
    summary = json.loads((tmp_path / "one" / "best_hparams.json").read_text())
    assert (summary["trial_id"], summary["completed_trials"], summary["trials"]) == (ids[2], 2, 3)

    space, ids = _val_accuracy_search(tmp_path / "all", (inf, inf))
    assert tune.write_summary(tmp_path / "all", space) is None
    assert [r["rank"] for r in read_csv(tmp_path / "all" / "trials.csv")] == ["", ""]
    assert not (tmp_path / "all" / "best_hparams.json").exists()


def test_a_scaled_width_rounded_past_its_clip_is_clipped_again():
    """Rounding comes after the clip: 8 x 0.5 = 4 rounds to 0 with round_to 8 (a model of 0 channels, a failed
    trial) and 64 clipped to 60 rounds to 64; the clip is the last word, so they are 4 and 60."""
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"hp": {"w": {"keys": ["model.widths"], "mode": "scale", "values": [0.5, 1.0],
                                                "round_to": 8, "clip": {"model.widths": [4, 60]}}}})
    config = apply_overrides(Config(labels=("a", "b")), {"model.widths": [8, 64]})
    assert space.trial_config(config, {"w": 0.5}).model.widths == (4, 32)
    assert space.trial_config(config, {"w": 1.0}).model.widths == (8, 60)


def test_a_depth_reproduces_the_configs_widths_only_when_they_are_the_first_entries_of_base():
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"hp": {"depth": {"key": "model.widths", "mode": "depth", "base": [8, 16, 16],
                                                    "min": 1, "max": 3}}})
    depth = space.params[0]
    config = Config(labels=("a", "b"))
    assert depth.default_value(apply_overrides(config, {"model.widths": [8, 16]})) == 2
    # (16, 32) is no depth of base: no value reproduces it, so the untuned model is KerasTuner's (the min)
    assert depth.default_value(apply_overrides(config, {"model.widths": [16, 32]})) is None
    # base's first entry, not its second
    assert depth.default_value(apply_overrides(config, {"model.widths": [8, 32]})) is None


def test_every_value_of_a_stepped_range_stands_for_it_up_to_its_max():
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"hp": {
        "drop": {"key": "model.dropout", "min": 0.0, "max": 0.5, "step": 0.1},
        "masks": {"key": "augment.spec_time_mask_count", "min": 1, "max": 2},
        "rate": {"key": "train.learning_rate", "min": 0.001, "max": 0.008, "step": 2.0, "sampling": "log"}}})
    config = Config(labels=("a", "b"))
    drop, masks, rate = (p.candidates(config) for p in space.params)
    assert drop == pytest.approx((0.0, 0.1, 0.2, 0.3, 0.4, 0.5))
    assert masks == (1, 2)
    assert rate == pytest.approx((0.001, 0.002, 0.004, 0.008))
    # a range of two values whose top alone differs is searched
    assert space.inert(config) == {}


def test_a_stepped_int_range_draws_its_steps_and_a_log_range_draws_evenly_in_the_log():
    """KerasTuner draws what declare gives it: num_mel_bins 16..64 step 16 only 16, 32, 48 and 64, and the
    learning rate 3e-4..1e-2 (a log range) as often below their geometric mean (1.7e-3) as above it."""
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"hp": {"bins": {"key": "features.num_mel_bins", "min": 16, "max": 64, "step": 16},
                                          "rate": {"key": "train.learning_rate", "min": 0.0003, "max": 0.01,
                                                   "sampling": "log"}}})
    hp = kt.HyperParameters()
    space.declare(hp, Config(labels=("a", "b")))
    bins, rate = hp.space
    assert sorted({bins.random_sample(seed=s) for s in range(200)}) == [16, 32, 48, 64]
    rates = np.array([rate.random_sample(seed=s) for s in range(400)])
    assert rates.min() >= 0.0003 and rates.max() <= 0.01
    # evenly in the log: about half below sqrt(3e-4 * 1e-2); a linear draw puts 15% there
    assert 0.4 < np.mean(rates < np.sqrt(0.0003 * 0.01)) < 0.6


def test_an_int_range_sampled_in_the_log_draws_evenly_in_the_log():
    """sampling = "log" reaches KerasTuner for an int range as for a float one: 8..128 draws as often below
    their geometric mean, 32, as above it (a linear draw puts a fifth of its draws there)."""
    import keras_tuner as kt
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"hp": {"batch": {"key": "train.batch_size", "min": 8, "max": 128,
                                                    "sampling": "log"}}})
    hp = kt.HyperParameters()
    space.declare(hp, Config(labels=("a", "b")))
    draws = np.array([hp.space[0].random_sample(seed=s) for s in range(400)])
    assert draws.min() >= 8 and draws.max() <= 128 and np.all(draws == np.round(draws))
    assert 0.4 < np.mean(draws < np.sqrt(8 * 128)) < 0.6


def test_a_choice_of_whole_and_fractional_numbers_is_a_choice_of_floats():
    """weight_decay values = [0, 0.0001] (TOML reads 0 as an integer) is a choice of 0.0 and 0.0001."""
    from sound_tf.hypermodel import SearchSpace

    space = SearchSpace.from_dict({"hp": {"wd": {"key": "train.weight_decay", "values": [0, 0.0001]}}})
    assert space.params[0].values == (0.0, 0.0001) and type(space.params[0].values[0]) is float
    assert space.trial_config(Config(labels=("a", "b")), {"wd": 0.0}).train.weight_decay == 0.0


def test_a_fixed_table_the_runs_settings_refuse_is_refused_as_the_hypermodel_is_made():
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel

    space = SearchSpace.from_dict({"fixed": {"features.fmax_hz": 6000.0},
                                   "hp": {"rate": {"key": "train.learning_rate", "values": [0.001, 0.01]}}})
    config = Config(audio=AudioConfig(sample_rate_hz=SR, clip_seconds=0.5), labels=tuple(CLASSES))
    with pytest.raises(ConfigError, match=r"features.fmax_hz=6000.0 exceeds the Nyquist"):
        SoundHyperModel(config, space)


def test_feature_statistics_are_computed_for_each_clip_length_too(monkeypatch):
    """The statistics are of the clips as the model sees them: a searched audio.clip_seconds pads or crops them
    otherwise, so each clip length (with the same frontend) gets its own."""
    from sound_tf import hypermodel

    seen = []

    def statistics(config, paths, labels):
        seen.append(config.audio.clip_seconds)
        return np.full(config.features.num_mel_bins, config.audio.clip_seconds, np.float32), \
            np.ones(config.features.num_mel_bins, np.float32)

    monkeypatch.setattr(hypermodel, "feature_statistics", statistics)
    cache = hypermodel.FeatureStatsCache([])
    config = Config(labels=("a", "b"))
    longer = apply_overrides(config, {"audio.clip_seconds": 2.0})
    assert cache(config)[0][0] == 1.0 and cache(longer)[0][0] == 2.0 and cache(config)[0][0] == 1.0
    assert seen == [1.0, 2.0]


def test_build_schedules_the_rate_over_the_trials_epochs_of_the_training_splits_batches(tmp_path):
    """The cosine schedule spans the trial's epochs x batches per epoch of the training split."""
    import keras_tuner as kt
    from sound_tf.datasets import prepare_dataset
    from sound_tf.hypermodel import SearchSpace, SoundHyperModel
    from sound_tf.trainer import steps_per_epoch

    config = base_config(make_tones(tmp_path / "data", clips_per_class=4))
    data = prepare_dataset(config, tmp_path / "run", log=lambda m: None)
    config = apply_overrides(config, {"labels": list(data.labels), "train.batch_size": 2, "train.warmup_epochs": 0,
                                      "train.schedule": "cosine"})
    space = SearchSpace.from_dict({"hp": {"rate": {"key": "train.learning_rate", "values": [0.004, 0.01]}}})
    hypermodel = SoundHyperModel(config, space, data, trial_epochs=3)
    hp = kt.HyperParameters()
    hp.Fixed("rate", 0.004)
    optimizer = hypermodel.build(hp).optimizer
    steps = steps_per_epoch(len(data.splits["train"]), config)
    # a pass makes 3 batches of 2, fewer than train.min_steps_per_epoch: an epoch is 16 steps, cycling the clips
    assert steps == config.train.min_steps_per_epoch == 16 > len(data.splits["train"]) // 2 >= 3
    optimizer.iterations.assign(steps)  # after one epoch of three: cos(pi / 3) of the way, 0.7525 of the rate
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.004 * 0.7525, rel=1e-4)


def test_the_time_budget_line_counts_the_trials_in_the_singular_and_the_plural(tmp_path, caplog):
    """It said "time budget spent after 1 trial(s)"."""
    import logging
    import time as clock

    for made, said in ((1, "1 trial"), (2, "2 trials")):
        oracle = _random_oracle(tmp_path / said, max_trials=5)
        for index in range(made):
            assert oracle.create_trial(f"tuner{index}").status == "RUNNING"
        oracle.deadline = clock.time() - 1.0
        caplog.clear()
        with caplog.at_level(logging.INFO):
            assert oracle.create_trial("late").status == "STOPPED"
        assert f"time budget spent after {said}: no new trials; running ones finish" in caplog.messages
