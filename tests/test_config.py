"""The config: derived sizes, JSON round trip, recipes, overrides and validation messages."""

from __future__ import annotations

import json

import pytest

from sound_tf.config import (Config, ConfigError, apply_overrides, config_from_recipe, parse_set_flags,
                             resolve_recipe)


def test_derived_sizes_follow_the_numbers():
    config = apply_overrides(Config(), {"audio.sample_rate_hz": 22050, "audio.clip_seconds": 5.0,
                                        "features.frame_length_ms": 46.44, "features.hop_length_ms": 23.22})
    assert config.audio.clip_samples == 110250
    assert (config.frame_length_samples, config.hop_length_samples, config.fft_length_samples) == (1024, 512, 1024)
    assert config.num_frames == 1 + (110250 - 1024) // 512 == 214
    assert config.feature_shape == (214, 64)
    assert config.fmax_hz == 11025.0
    assert config.audio.window_hop_samples == 55125  # half a clip by default


def test_json_round_trip_is_exact(tmp_path):
    config = apply_overrides(config_from_recipe(resolve_recipe("esc50")),
                             {"labels": ["dog", "rain"], "model.widths": [16, 32], "augment.noise_colors": ["pink"]})
    path = config.save(tmp_path)
    assert path.name == "config.json"
    loaded = Config.load(tmp_path)
    assert loaded == config and loaded.model.widths == (16, 32) and loaded.labels == ("dog", "rain")
    assert json.loads(path.read_text())["audio"]["sample_rate_hz"] == 22050
    assert loaded.fingerprint() == config.fingerprint()
    assert apply_overrides(config, {"train.seed": 1}).fingerprint() != config.fingerprint()


def test_recipes_load_and_flags_override_them():
    for name in ("demo", "folder", "esc50", "urbansound8k", "fsdd"):
        config = config_from_recipe(resolve_recipe(name))
        assert config.num_frames >= 1
    flags = parse_set_flags(["train.epochs=3", "model.widths=[8, 16]", "augment.enabled=false"])
    assert flags == {"train.epochs": 3, "model.widths": [8, 16], "augment.enabled": False}
    config = config_from_recipe(resolve_recipe("esc50"), flags)
    assert (config.train.epochs, config.model.widths, config.augment.enabled) == (3, (8, 16), False)
    assert config.audio.sample_rate_hz == 22050  # untouched recipe values stay


@pytest.mark.parametrize("overrides, message", [
    ({"audio.sample_rate_hz": 500}, "audio.sample_rate_hz"),
    ({"features.fmax_hz": 9000.0}, "Nyquist"),
    ({"audio.clip_seconds": 0.05, "features.frame_length_ms": 100.0}, "fewer than one STFT frame"),
    ({"train.schedule": "linear"}, "train.schedule"),
    ({"train.epochs": 2.5}, "train.epochs must be an integer"),
    ({"train.seed": -5}, "train.seed must be an integer in [0, 2**30), got -5"),
    ({"train.seed": 2**31}, "train.seed must be an integer in [0, 2**30)"),
    ({"train.shuffle_buffer": 0}, "train.shuffle_buffer must be an integer >= 1"),
    ({"model.nope": 1}, "unknown key(s) ['nope'] in [model]"),
    ({"labels": ["a", "a"]}, "labels must be unique"),
])
def test_bad_values_name_the_key_and_the_value(overrides, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), overrides)
    assert message in str(info.value)


def test_missing_recipe_and_bad_set_flag_are_clear_errors():
    with pytest.raises(ConfigError, match="recipe not found.*known: \\['demo'"):
        resolve_recipe("no_such_recipe")
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        parse_set_flags(["train.epochs"])
