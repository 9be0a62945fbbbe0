"""The config: derived sizes, JSON round trip, recipes, overrides and validation messages."""

from __future__ import annotations

import configparser
import dataclasses
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sound_tf.config import (EDGE_IMPULSE_KEYS, REPO_ROOT, Config, ConfigError, apply_overrides, config_from_recipe,
                             parse_set_flags, resolve_recipe)
from sound_tf.errors import DatasetError


def test_derived_sizes_follow_the_numbers():
    config = apply_overrides(Config(), {"audio.sample_rate_hz": 22050, "audio.clip_seconds": 5.0,
                                        "features.frame_length_ms": 46.44, "features.hop_length_ms": 23.22})
    assert config.audio.clip_samples == 110250
    assert (config.frame_length_samples, config.hop_length_samples, config.fft_length_samples) == (1024, 512, 1024)
    assert config.num_frames == 1 + (110250 - 1024) // 512 == 214
    assert config.feature_shape == (214, 64)
    assert config.fmax_hz == 11025.0
    assert config.audio.window_hop_samples == 55125  # half a clip by default


def test_a_run_killed_while_it_rewrites_config_json_keeps_the_previous_one(tmp_path):
    """A resumed run, each cross-validation and search writes config.json again. It was written in place: a
    process killed half way left its first 1,000 bytes (of 2,034), and every resume, evaluate and export of
    the run refused it as not JSON. Written whole, the previous file stays until the new one replaces it."""
    from conftest import killed_mid_write

    before = apply_overrides(Config(), {"labels": ["dog", "rain"]})
    path = before.save(tmp_path / "run")
    size = path.stat().st_size
    assert size > 1000
    killed_mid_write("from sound_tf.config import Config, apply_overrides",
                     f"apply_overrides(Config(), {{'labels': ['dog', 'rain', 'sea']}}).save({str(path)!r})", 1000,
                     tmp_path)
    assert path.stat().st_size == size and Config.load(path) == before
    left = [p.name for p in path.parent.iterdir() if p != path]  # the temporary file the kill left: the run's own
    assert len(left) == 1 and left[0].startswith(".config.json.") and left[0].endswith(".tmp")
    after = apply_overrides(Config(), {"labels": ["dog", "rain", "sea"]})
    assert Config.load(after.save(path)) == after


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
    # a hand-edited value is an error that names the file it is in
    data = json.loads(path.read_text())
    data["audio"]["sample_rate_hz"] = -5
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: audio.sample_rate_hz must be"):
        Config.load(tmp_path)


@pytest.mark.parametrize("key, value", [
    ("audio.sample_rate_hz", 22050), ("audio.clip_seconds", 2.0), ("features.num_mel_bins", 48),
    ("features.hop_length_ms", 12.5), ("data.val_fraction", 0.2), ("augment.enabled", False),
    ("augment.pitch_probability", 0.9), ("augment.noise_domain", "waveform"), ("augment.spec_probability", 0.5),
    ("model.widths", [8, 16]), ("train.learning_rate", 0.01), ("train.class_weights", True),
])
def test_every_section_takes_part_in_the_fingerprint(key, value):
    """A run resumes only with the settings it started with: a change anywhere is another fingerprint, and
    ``differences`` names it; the labels, which come from the data, are not part of it."""
    config = Config()
    changed = apply_overrides(config, {key: value})
    assert changed.fingerprint() != config.fingerprint()
    assert changed.differences(config.to_dict()).startswith(f" ({key}: ")
    assert apply_overrides(config, {"labels": ["a", "b"]}).fingerprint() == config.fingerprint()


def test_recipes_load_and_flags_override_them():
    for name in ("demo", "folder", "esc50", "urbansound8k", "fsdd", "speech_commands", "speech_commands_12"):
        config = config_from_recipe(resolve_recipe(name))
        assert config.num_frames >= 1
    twelve = config_from_recipe(resolve_recipe("speech_commands_12")).data  # the 10 words, _unknown_, _silence_
    assert (len(twelve.keep_labels), twelve.other_label, twelve.other_share, twelve.silence_label,
            twelve.silence_share) == (10, "_unknown_", 0.1, "_silence_", 0.1)
    flags = parse_set_flags(["train.epochs=3", "model.widths=[8, 16]", "augment.enabled=false"])
    assert flags == {"train.epochs": 3, "model.widths": [8, 16], "augment.enabled": False}
    config = config_from_recipe(resolve_recipe("esc50"), flags)
    assert (config.train.epochs, config.model.widths, config.augment.enabled) == (3, (8, 16), False)
    assert config.audio.sample_rate_hz == 22050  # untouched recipe values stay


def test_a_frequency_mask_wider_than_the_mel_bands_is_refused():
    """A mask as wide as every band is the limit; one wider could only blank the whole spectrogram."""
    assert apply_overrides(Config(), {"features.num_mel_bins": 16,
                                      "augment.spec_freq_mask_max_bins": 16}).augment.spec_freq_mask_max_bins == 16
    with pytest.raises(ConfigError, match=r"^augment.spec_freq_mask_max_bins=17 exceeds features.num_mel_bins=16: "
                                          r".*give at most 16"):
        apply_overrides(Config(), {"features.num_mel_bins": 16, "augment.spec_freq_mask_max_bins": 17})


def test_a_rejected_mel_layout_is_the_one_that_gives_constant_features():
    """The check agrees with the filterbank the frontend builds: a band without an FFT bin is all zeros."""
    from sound_tf.frontend import slaney_mel_matrix

    counts = []
    for mels, frame_ms, fft_length in ((128, 10.0, 256), (256, 25.0, 512), (64, 25.0, 512), (128, 25.0, 1024)):
        matrix = slaney_mel_matrix(sample_rate_hz=16000, fft_length=fft_length, num_mel_bins=mels, fmin_hz=20.0,
                                   fmax_hz=8000.0)  # [fft_bins, mels]
        dead = np.flatnonzero(matrix.max(axis=0) == 0).tolist()
        counts.append(len(dead))
        values = {"features.num_mel_bins": mels, "features.frame_length_ms": frame_ms,
                  "features.fft_length": fft_length, "features.fmin_hz": 20.0}
        if dead:
            with pytest.raises(ConfigError, match=rf"^{len(dead)} of features.num_mel_bins={mels} mel bands .*bands "
                                                  rf"{', '.join(map(str, dead[:6]))}\b"):
                apply_overrides(Config(), values)
        else:
            assert apply_overrides(Config(), values).empty_mel_bands() == []
    assert counts == [12, 24, 0, 0]  # 128 bands need more than 256 FFT points, 256 bands more than 512


@pytest.mark.parametrize("overrides, message", [
    ({"audio.sample_rate_hz": 500}, "audio.sample_rate_hz"),
    ({"features.fmax_hz": 9000.0}, "Nyquist"),
    ({"audio.clip_seconds": 0.05, "features.frame_length_ms": 100.0}, "fewer than one STFT frame"),
    ({"train.schedule": "linear"}, "train.schedule"),
    ({"train.epochs": 2.5}, "train.epochs must be an integer"),
    ({"train.seed": -5}, "train.seed must be an integer in [0, 2**30), got -5"),
    ({"train.seed": 2**31}, "train.seed must be an integer in [0, 2**30)"),
    ({"train.shuffle_buffer": 0}, "train.shuffle_buffer must be an integer >= 1"),
    ({"model.nope": 1}, "unknown key(s) ['nope'] in [model] ('nope': did you mean 'name'?); known keys: "),
    ({"labels": ["a", "a"]}, "labels must be unique"),
    ({"train.weight_decay": float("inf")}, "train.weight_decay must be a finite number, got inf"),
    ({"features.log_offset": float("nan")}, "features.log_offset must be a finite number, got nan"),
    # a recipe's or config.json's types are kept: text is not a number, and a number or list is not a path
    ({"audio.sample_rate_hz": "16000"}, "audio.sample_rate_hz must be an integer, got the text '16000'"),
    ({"train.learning_rate": "0.01"}, "train.learning_rate must be a number, got the text '0.01'"),
    ({"train.class_weights": "yes"}, "train.class_weights must be true or false, got 'yes'"),
    ({"data.path": ["a", "b"]}, "data.path must be text (a string in quotes), got ['a', 'b']"),
    ({"data.split_file": 5}, "data.split_file must be text (a string in quotes), got 5"),
    ({"augment.noise_dir": True}, "augment.noise_dir must be text (a string in quotes), got True"),
    ({"features.fmin_hz": 9000.0}, "features.fmin_hz=9000.0 must be below the mel filterbank's upper edge 8000 Hz"),
    ({"features.fmin_hz": 3000.0, "features.fmax_hz": 2000.0}, "features.fmax_hz must exceed fmin_hz=3000.0"),
    ({"features.fft_length": 64}, "features.fft_length=64 is shorter than one frame (400 samples"),
    ({"model.name": "seed_cnn", "model.dropout": 0.9},  # it was silently ignored (the article's model: 0.5)
     "model.dropout=0.9 set for model.name='seed_cnn', which is the article's model as published"),
    ({"features.num_mel_bins": 128, "features.frame_length_ms": 10.0},
     "12 of features.num_mel_bins=128 mel bands hold no FFT bin (bands 2, 5, 10, 13, 18, 21, ... of those"),
])
def test_bad_values_name_the_key_and_the_value(overrides, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), overrides)
    assert message in str(info.value)


def test_a_recipes_misspelt_keys_are_given_the_setting_they_are_closest_to(tmp_path):
    """A recipe (or a hand-edited config.json) with 'epoch' listed the section's keys; --set named the close
    setting, and so does the recipe's message, for each misspelt key that has one."""
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"train": {"epoch": 3, "lerning_rate": 0.1, "zzz": 1}})
    known = sorted(f.name for f in dataclasses.fields(Config().train))
    assert str(info.value) == ("unknown key(s) ['epoch', 'lerning_rate', 'zzz'] in [train] ('epoch': did you mean "
                               f"'epochs'?; 'lerning_rate': did you mean 'learning_rate'?); known keys: {known}")
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"model": {"zzz": 1}})  # no key close to it: the known keys alone
    assert str(info.value).startswith("unknown key(s) ['zzz'] in [model]; known keys: [")


def test_a_key_put_in_the_wrong_section_is_sent_to_its_own():
    """'--set data.clip_seconds=0.5' (session 49's keyword-spotting walkthrough) was asked 'did you mean
    data.demo_clips_per_class?', the closest spelling in [data], where the setting is audio.clip_seconds; a recipe's
    [data] clip_seconds the same. A key that is a setting of another section is named there, before any close
    spelling in its own; a misspelling in its own section keeps its hint."""
    cases = {"data.clip_seconds=0.5": "unknown key 'clip_seconds' in [data] (did you mean audio.clip_seconds?)",
             "train.sample_rate_hz=8000":
                 "unknown key 'sample_rate_hz' in [train] (did you mean audio.sample_rate_hz?)",
             "data.noise_dir=/n": "unknown key 'noise_dir' in [data] (did you mean augment.noise_dir?)",
             "audio.clip_second=1": "unknown key 'clip_second' in [audio] (did you mean audio.clip_seconds?)"}
    for flag, message in cases.items():
        with pytest.raises(ConfigError) as info:
            parse_set_flags([flag])
        assert str(info.value) == f"--set {flag}: {message}", str(info.value)
    with pytest.raises(ConfigError) as info:
        Config.from_dict({"data": {"clip_seconds": 0.5, "formt": "folder"}})
    known = sorted(f.name for f in dataclasses.fields(Config().data))
    assert str(info.value) == ("unknown key(s) ['clip_seconds', 'formt'] in [data] ('clip_seconds' belongs in [audio]; "
                               f"'formt': did you mean 'format'?); known keys: {known}")


def test_edge_impulses_augmentation_names_are_given_the_settings_that_do_it(tmp_path):
    """An Edge Impulse user's names (its expert mode's SpecAugment arguments, its visual mode's settings) got the
    closest spelling, another setting: mF_num_freq_masks and mask_time_bands 'did you mean spec_freq_mask_max_bins?',
    enable_time_warp 'did you mean enabled?' (which turns augmentation on, not a warp), add_noise 'noise_dir'. Each is
    now told the setting that does it, in a recipe and in --set, and every setting named exists."""
    augment_keys = {f.name for f in dataclasses.fields(Config().augment)}
    named = {name: re.findall(r"augment\.([a-z_]+)", hint) for name, hint in EDGE_IMPULSE_KEYS.items()}
    assert all(set(keys) <= augment_keys for keys in named.values()), named
    assert [name for name, keys in named.items() if not keys] == ["mask_with_mean"]  # the one without a setting
    wanted = {"mF_num_freq_masks": "augment.spec_freq_mask_count", "mT_num_time_masks": "augment.spec_time_mask_count",
              "F_freq_mask_max_consecutive": "augment.spec_freq_mask_max_bins",
              "T_time_mask_max_consecutive": "augment.spec_time_mask_max_fraction",
              "mask_time_bands": "augment.spec_time_mask_count", "Mask frequency bands": "augment.spec_freq_mask_count",
              "add_noise": "augment.noise_probability", "enable_time_warp": "augment.stretch_probability",
              "warp-time-axis": "augment.stretch_probability"}
    for name, setting in wanted.items():
        with pytest.raises(ConfigError) as info:
            parse_set_flags([f"augment.{name}=1"])
        message = str(info.value)
        assert message.startswith(f"--set augment.{name}=1: unknown key {name!r} in [augment] (Edge Impulse's ") or (
            "no SpecAugment time warp" in message), message
        assert setting in message and "did you mean" not in message, message
    with pytest.raises(ConfigError) as info:  # the sound_tf key is named, not augment.enabled
        parse_set_flags(["augment.enable_time_warp=true"])
    assert "augment.enabled" not in str(info.value)
    recipe = tmp_path / "ei.toml"
    recipe.write_text("[augment]\nmF_num_freq_masks = 3\nT_time_mask_max_consecutive = 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config_from_recipe(recipe)
    message = str(info.value)
    assert ("'mF_num_freq_masks': Edge Impulse's mF_num_freq_masks is augment.spec_freq_mask_count, the frequency "
            "masks per example") in message
    assert ("'T_time_mask_max_consecutive': Edge Impulse's T_time_mask_max_consecutive, the widest time mask in "
            "frames, is augment.spec_time_mask_max_fraction, a fraction of the clip's frames") in message
    assert "did you mean" not in message
    with pytest.raises(ConfigError) as info:  # a misspelt key of sound_tf's own keeps its closest spelling
        parse_set_flags(["augment.spec_time_mask_cout=1"])
    assert "(did you mean augment.spec_time_mask_count?)" in str(info.value)


def test_a_probability_given_as_a_percentage_and_a_fraction_given_in_frames_say_what_the_setting_takes():
    """'--set augment.noise_probability=50' (Edge Impulse's and many a GUI's 50%) said only 'must be in [0, 1],
    got 50.0', and spec_time_mask_max_fraction=10 (ten frames) 'must be in [0, 0.5]'; each now says what it takes,
    with the value converted where it can be."""
    cases = {"augment.noise_probability=50": "augment.noise_probability must be in [0, 1], got 50.0 (a probability, "
                                             "not a percentage: 50% is 0.5)",
             "augment.spec_probability=5": "augment.spec_probability must be in [0, 1], got 5.0 (a probability, not a "
                                           "percentage: 5% is 0.05)",
             "augment.mixup_probability=500": "augment.mixup_probability must be in [0, 1], got 500.0",
             "augment.gain_probability=1.5": "augment.gain_probability must be in [0, 1], got 1.5",
             "augment.spec_time_mask_max_fraction=10": "augment.spec_time_mask_max_fraction must be in [0, 0.5], got "
                                                       "10.0 (a fraction of the clip's frames, not frames or seconds: "
                                                       "a mask of up to T frames in a clip of N frames is T / N",
             "augment.shift_max_clip_fraction=2": "augment.shift_max_clip_fraction must be in [0, 0.5], got 2.0 (a "
                                                  "fraction of the clip, not seconds or samples"}
    for flag, message in cases.items():
        with pytest.raises(ConfigError) as info:
            apply_overrides(Config(), parse_set_flags([flag]))
        if "(" in message:
            assert str(info.value).startswith(message), str(info.value)
        else:  # no hint where the value is not a percentage
            assert str(info.value) == message
    taken = apply_overrides(Config(), parse_set_flags(["augment.noise_probability=0.5"]))
    assert taken.augment.noise_probability == 0.5


def test_set_flags_read_values_by_the_settings_type():
    """A text setting keeps what was typed (--set data.path=1e3 was the path '1000.0', and true the folder
    'True'); a switch takes yes/no/on/off/1/0; numbers and lists parse as TOML."""
    flags = parse_set_flags(["data.path=1e3", "data.cache_dir=true", "augment.noise_dir=1_000",
                             "train.class_weights=yes", "train.label_smoothing=0.1", "model.widths=16,32",
                             "augment.noise_colors=pink brown", "features.fmax_hz=null"])
    assert flags["data.path"] == "1e3" and flags["data.cache_dir"] == "true" and flags["augment.noise_dir"] == "1_000"
    assert flags["train.class_weights"] is True and flags["train.label_smoothing"] == 0.1
    config = apply_overrides(Config(), {k: v for k, v in flags.items() if k != "data.path"})
    assert config.model.widths == (16, 32) and config.augment.noise_colors == ("pink", "brown")
    assert parse_set_flags(["train.class_weights=off"])["train.class_weights"] is False
    with pytest.raises(ConfigError, match="train.class_weights must be true or false, got 'maybe'"):
        apply_overrides(Config(), parse_set_flags(["train.class_weights=maybe"]))


def test_the_readme_recipe_path_works_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the README's snippet says config_from_recipe("pipelines/esc50.toml")
    expected = config_from_recipe(resolve_recipe("esc50"))
    assert config_from_recipe("pipelines/esc50.toml") == config_from_recipe("esc50") == expected
    assert expected.audio.sample_rate_hz == 22050
    # ./esc50.toml names a file in this folder: the repository's is not taken in its place
    with pytest.raises(ConfigError, match=r"\./esc50.toml: recipe not found"):
        resolve_recipe("./esc50.toml")


def test_a_recipe_is_checked_with_the_flags_applied(tmp_path):
    """[features] fmax_hz = 10000 with --sample-rate 22050 was refused: the recipe was checked at 16 kHz alone."""
    recipe = tmp_path / "wide.toml"
    recipe.write_text("[features]\nfmax_hz = 10000.0\n")
    config = config_from_recipe(recipe, {"audio.sample_rate_hz": 22050})
    assert config.fmax_hz == 10000.0 and config.audio.sample_rate_hz == 22050
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(recipe))}: .*Nyquist"):  # still wrong alone: named
        config_from_recipe(recipe)


def test_a_flag_error_is_reported_when_the_recipe_needs_the_flags(tmp_path):
    """With a recipe valid only once the flags apply, any other bad flag gave the recipe's error at 16 kHz,
    naming a sample rate the command line had changed and hiding the flag's own mistake."""
    recipe = tmp_path / "wide.toml"
    recipe.write_text("[features]\nfmax_hz = 10000.0\n")
    with pytest.raises(ConfigError, match=r"^unknown key\(s\) \['epoch'\] in \[train\]"):
        config_from_recipe(recipe, {"audio.sample_rate_hz": 22050, "train.epoch": 3})
    with pytest.raises(ConfigError, match=r"^train.epochs must be an integer >= 1, got 0"):
        config_from_recipe(recipe, {"audio.sample_rate_hz": 22050, "train.epochs": 0})
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(recipe))}: .*Nyquist"):  # no flag fixes it: named
        config_from_recipe(recipe, {"train.epochs": 3})


REPO = Path(__file__).resolve().parents[1]
RECIPE_FOLDERS = ("pipelines", "tuning", "export")


def test_setup_cfg_ships_every_recipe_with_the_wheel():
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    shipped = {}
    for target, patterns in setup["options.data_files"].items():
        for pattern in patterns.split(","):
            shipped.update({p.relative_to(REPO).as_posix(): target for p in REPO.glob(pattern.strip())})
    expected = {f"{folder}/{p.name}": f"share/sound_tf/{folder}"
                for folder in RECIPE_FOLDERS for p in (REPO / folder).glob("*.toml")}
    assert shipped == expected and len(expected) >= 8


@pytest.mark.parametrize("scheme", ["--target", "--prefix"])
def test_an_installed_wheel_finds_its_recipes_by_name(tmp_path, scheme):
    # pip install sound_tf (no checkout beside the package) used to find no recipe: `train` dropped the
    # demo recipe silently and `--pipeline esc50`, `--tuning tiny`, `--profile micro` were "not found".
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for folder in ("sound_tf", *RECIPE_FOLDERS):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
                    str(source)], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("sound_tf-*.whl")
    # --ignore-installed: with --prefix, pip would first uninstall the sound_tf the test suite runs from.
    subprocess.run([*pip, "install", "--no-deps", "--ignore-installed", scheme, str(tmp_path / "inst"),
                    str(wheel)], check=True, cwd=tmp_path)
    (package,) = (tmp_path / "inst").rglob("sound_tf/config.py")
    probe = ("import sound_tf.config as c; from pathlib import Path; "
             "print(Path(c.__file__).resolve()); print(c.resolve_recipe('esc50').resolve()); "
             "print(sorted(p.name for p in (c.REPO_ROOT / 'tuning').glob('*.toml')))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(package.parents[1]), "PATH": ""}).stdout
    config_py, esc50, tuning = out.splitlines()
    assert Path(config_py) == package.resolve()  # the installed copy, not this checkout
    root = (tmp_path / "inst").resolve()
    assert Path(esc50) == root / "share" / "sound_tf" / "pipelines" / "esc50.toml"
    assert tuning == str(sorted(p.name for p in (REPO / "tuning").glob("*.toml")))


def test_missing_recipe_and_bad_set_flag_are_clear_errors():
    with pytest.raises(ConfigError, match="recipe not found.*known: \\['demo'"):
        resolve_recipe("no_such_recipe")
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        parse_set_flags(["train.epochs"])
    with pytest.raises(ConfigError, match=r"--set model.widths=\[16, 32: '\[16, 32' is not a valid TOML list"):
        parse_set_flags(["model.widths=[16, 32"])  # was taken as the string '[16, 32'


def test_set_null_unsets_what_may_be_unset_and_nothing_else(tmp_path):
    recipe = tmp_path / "narrow.toml"
    recipe.write_text('[features]\nfmax_hz = 4000.0\n[augment]\nnoise_dir = "noises"\n')
    config = config_from_recipe(recipe, parse_set_flags(["features.fmax_hz=null", "augment.noise_dir=None"]))
    assert (config.features.fmax_hz, config.augment.noise_dir, config.fmax_hz) == (None, None, 8000.0)
    assert config_from_recipe(recipe).features.fmax_hz == 4000.0
    with pytest.raises(ConfigError, match=r"train.epochs cannot be unset \(null\): it needs a value"):
        apply_overrides(config, parse_set_flags(["train.epochs=null"]))
    with pytest.raises(ConfigError, match="train.epochs cannot be unset"):  # a config.json edited by hand
        Config.from_dict({"train": {"epochs": None}})


def test_a_recipe_cannot_set_labels_and_its_errors_name_it_once(tmp_path):
    recipe = tmp_path / "labelled.toml"
    recipe.write_text('labels = ["x", "y"]\n[train]\nepochs = 3\n')
    with pytest.raises(ConfigError, match=r"labelled.toml: a recipe cannot set labels: the classes come from the data"):
        config_from_recipe(recipe)  # it used to be accepted and then replaced by the data's classes
    with pytest.raises(ConfigError, match=r"labels must be a list of class names, got 5"):
        Config.from_dict({"labels": 5})  # it used to be a TypeError
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\n")
    with pytest.raises(ConfigError) as info:
        config_from_recipe(broken)
    assert str(info.value).startswith(f"{broken}: invalid TOML") and str(info.value).count(str(broken)) == 1


def test_a_binary_file_given_as_a_recipe_space_profile_or_config_is_an_error_naming_it(tmp_path):
    """An audio file (or a recipe saved as Latin-1) passed to --pipeline, --tuning, --profile or show --run
    was a UnicodeDecodeError traceback."""
    from sound_tf.export import load_profile
    from sound_tf.hypermodel import SearchSpace

    binary = tmp_path / "clip.wav"
    binary.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \xff\x80")
    for read, kind in ((config_from_recipe, "invalid TOML"), (SearchSpace.from_toml, "invalid TOML"),
                       (load_profile, "invalid TOML"), (Config.load, "not valid JSON")):
        with pytest.raises(ConfigError) as info:
            read(binary)
        message = str(info.value)
        assert message.startswith(f"{binary}: {kind} ('utf-8' codec can't decode byte 0xff in position 16"), message


@pytest.mark.parametrize("rate_hz, seconds, samples", [(44100, 0.35, 15435), (8000, 2.01, 16080), (48000, 0.29, 13920)])
def test_clip_samples_is_the_nearest_whole_sample(rate_hz, seconds, samples):
    """44100 * 0.35 is 15434.999999999998 in floating point: truncating it loses a sample."""
    config = apply_overrides(Config(), {"audio.sample_rate_hz": rate_hz, "audio.clip_seconds": seconds})
    assert config.audio.clip_samples == samples


def test_stft_sizes_are_the_nearest_whole_samples():
    # The esc50 recipe's 22.05 kHz with tuning/default.toml's 32-ms frame and 12.5-ms hop: 705.6 and 275.625 samples
    config = apply_overrides(Config(), {"audio.sample_rate_hz": 22050, "audio.clip_seconds": 5.0,
                                        "features.frame_length_ms": 32.0, "features.hop_length_ms": 12.5})
    assert (config.frame_length_samples, config.hop_length_samples, config.fft_length_samples) == (706, 276, 1024)
    assert config.num_frames == 1 + (110250 - 706) // 276 == 397


@pytest.mark.parametrize("overrides", [
    {"audio.clip_seconds": 1.0, "audio.window_hop_seconds": 1.0},         # windows end to end
    {"features.frame_length_ms": 20.0, "features.hop_length_ms": 20.0},   # frames end to end
    {"audio.sample_rate_hz": 192000},                                     # the documented upper bound
    {"train.seed": 2**30 - 1},
    {"audio.clip_seconds": 0.05, "features.frame_length_ms": 50.0},      # a clip of exactly one frame (800 samples)
    {"features.frame_length_ms": 32.0, "features.fft_length": 512},       # an FFT as long as the frame
    {"audio.sample_rate_hz": 1000, "features.num_mel_bins": 8},           # the documented lower bound
    {"features.fmin_hz": 0.0},                                            # the filterbank from 0 Hz
    {"augment.gain_min_db": 6.0, "augment.gain_max_db": 6.0},             # a span of one value: a fixed gain
    {"augment.speed_min_factor": 0.5, "augment.speed_max_factor": 2.0},   # the span's own bounds
])
def test_inclusive_bounds_are_accepted(overrides):
    apply_overrides(Config(), overrides)


@pytest.mark.parametrize("overrides, message", [
    ({"train.seed": 2**30}, "train.seed must be an integer in [0, 2**30), got 1073741824"),
    ({"data.test_fraction": 0.5}, "data.test_fraction must be in (0, 0.5), got 0.5"),
    ({"data.val_fraction": 0.5}, "data.val_fraction must be in (0, 0.5), got 0.5"),
    ({"audio.window_hop_seconds": 1.01}, "audio.window_hop_seconds must be in (0, clip_seconds=1.0]"),
    ({"data.val_fraction": 0.0}, "data.val_fraction must be in (0, 0.5), got 0.0"),
    ({"data.test_fraction": 0.0}, "data.test_fraction must be in (0, 0.5), got 0.0"),
    ({"features.fft_length": 768}, "features.fft_length must be a power of two >= 16, got 768"),  # >= a frame (400)
    ({"data.split_file": "split.csv", "data.val_fold": 1},
     "data.split_file fixes every split, so data.test_fold=None / data.val_fold=1 would not be used"),
    ({"audio.sample_rate_hz": 999}, "audio.sample_rate_hz must be an integer in [1000, 192000], got 999"),
    ({"data.val_from": "train"}, "data.val_from must be one of fold, training, got 'train'"),
    ({"data.val_from": "training", "data.val_fold": 3},
     "data.val_from 'training' draws validation from the training folds (a data.val_fraction 0.15 of them), so "
     "data.val_fold=3, a whole fold for validation, would not be used: give one or the other"),
    ({"data.val_from": "training", "data.split_file": "split.csv"},
     "data.split_file fixes every split, so data.val_from 'training' would not be used"),
])
def test_exclusive_bounds_are_refused(overrides, message):
    with pytest.raises(ConfigError) as info:
        apply_overrides(Config(), overrides)
    assert message in str(info.value)


def test_a_band_whose_only_bin_sits_on_its_edge_is_empty():
    """At 8 kHz with a 256-point FFT the bins are 31.25 Hz apart and fmin 500 Hz is bin 16: with 118 bands the
    first band's only bin is its lower edge, where its triangle is 0 (the frontend's column is all zeros)."""
    from sound_tf.frontend import slaney_mel_matrix

    matrix = slaney_mel_matrix(sample_rate_hz=8000, fft_length=256, num_mel_bins=118, fmin_hz=500.0, fmax_hz=4000.0)
    assert np.flatnonzero(matrix.max(axis=0) == 0).tolist() == [0]
    with pytest.raises(ConfigError, match=r"^1 of features.num_mel_bins=118 mel bands hold no FFT bin \(bands 0 "):
        apply_overrides(Config(), {"audio.sample_rate_hz": 8000, "features.fft_length": 256,
                                   "features.num_mel_bins": 118, "features.fmin_hz": 500.0})


def test_sections_built_directly_take_their_values_as_from_dict_reads_them(tmp_path):
    """A notebook builds sections directly, which skipped from_dict's reading of each value: np.float32 failed in
    to_dict (not JSON serializable), a pathlib.Path for data.path too, the text "1.0" was kept and saved, so the
    saved config.json could not be loaded, True was a number, an infinite log_offset made every feature inf, a
    list of widths made the config unhashable, and labels of any type went in."""
    from sound_tf.config import AudioConfig, DataConfig, FeatureConfig, ModelConfig, TrainConfig

    config = Config(audio=AudioConfig(sample_rate_hz=np.int64(22050), clip_seconds=np.float32(0.5)),
                    data=DataConfig(path=tmp_path / "data", strict=np.True_),
                    model=ModelConfig(widths=[16, np.int64(32)]), labels=["dog", "rain"])
    assert config.audio.sample_rate_hz == 22050 and type(config.audio.sample_rate_hz) is int
    assert config.audio.clip_samples == 11025 and type(config.audio.clip_seconds) is float
    assert config.data.path == str(tmp_path / "data") and config.data.strict is True
    assert config.model.widths == (16, 32) and config.labels == ("dog", "rain")
    hash(config)
    assert Config.load(config.save(tmp_path / "run")) == config  # round trip through config.json
    assert config.fingerprint() == Config.from_dict(config.to_dict()).fingerprint()
    for build, message in [
        (lambda: AudioConfig(clip_seconds="1.0"), "audio.clip_seconds must be a number, got the text '1.0'"),
        (lambda: AudioConfig(clip_seconds=True), "audio.clip_seconds must be a number, got True"),
        (lambda: FeatureConfig(log_offset=float("inf")), "features.log_offset must be a finite number, got inf"),
        (lambda: TrainConfig(weight_decay=float("inf")), "train.weight_decay must be a finite number, got inf"),
        (lambda: ModelConfig(widths=(True, 64)), "model.widths must be an integer, got True"),
        (lambda: DataConfig(strict=1), "data.strict must be true or false, got 1"),
        (lambda: Config(labels=(1, 2)), r"labels must be a list of class names .*got \(1, 2\)"),
        (lambda: Config(labels=("a\nb", "c")), "labels must be a list of class names"),
    ]:
        with pytest.raises(ConfigError, match=message):
            build()


def test_apply_overrides_names_arguments_of_the_wrong_kind():
    """A list of pairs, a dict for the config or a key that is not text failed with AttributeError ('list' object
    has no attribute 'items', 'dict' object has no attribute 'to_dict', 'int' object has no attribute 'partition')."""
    with pytest.raises(ConfigError, match="overrides must be a mapping of 'section.key' to a value.*got list"):
        apply_overrides(Config(), [("train.epochs", 3)])
    with pytest.raises(ConfigError, match="overrides must be a mapping.*got list"):
        config_from_recipe(None, [("train.epochs", 3)])
    with pytest.raises(ConfigError, match="apply_overrides expects a Config as its first argument, got dict"):
        apply_overrides({"train": {"epochs": 3}}, {})
    with pytest.raises(ConfigError, match="override key 3 must be text"):
        apply_overrides(Config(), {3: 1})
    assert apply_overrides(Config(), {"train.epochs": 3}).train.epochs == 3


def test_a_saved_config_with_test_fold_0_still_loads_and_the_split_refuses_it_in_the_readers_words(tmp_path):
    """data.test_fold = 0 was accepted (a 0-based manifest read before folds were checked). A run or export
    bundle saved then must still load (to serve, export or predict); making the splits refuses it, in the
    words the readers use for a fold column's 0."""
    from sound_tf.datasets import Example, split_examples

    saved = Config().to_dict()
    saved["data"]["test_fold"] = 0
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert Config.load(tmp_path).data.test_fold == 0
    examples = [Example(path=f"/d/{label}{i}.wav", label=label, fold=i % 3 + 1) for label in "ab" for i in range(9)]
    why = re.escape("must be 1 or more (folds count from 1, as ESC-50's, UrbanSound8K's and --test-fold do), got 0")
    with pytest.raises(DatasetError, match=rf"test_fold.*{why}"):
        split_examples(examples, test_fold=0)


#: What a whole-number argument must not be: a bool of either kind, a whole float, text, a 0-d array.
NOT_WHOLE = [True, False, np.True_, 2.0, np.float64(2.0), "2", np.array(2), None]


def test_is_whole_takes_python_and_numpy_integers_and_no_bool():
    from sound_tf.errors import is_whole

    for value in (0, -3, 2**40, np.int64(3), np.int32(-1), np.uint8(7), np.intp(5)):
        assert is_whole(value) is True, repr(value)
    for value in NOT_WHOLE:
        assert is_whole(value) is False, repr(value)


def test_counted_says_one_in_the_singular_and_every_other_count_in_the_plural():
    """The one helper behind every count in a message: ``1 file``, ``0 files``, ``3 files``; its first plural
    word is made singular for one (metrics' advice said ``1 training example``, augment's ``1 silent file``),
    and ``one`` gives the words where dropping an ``s`` does not make them singular."""
    from sound_tf.errors import counted

    assert [counted(n, "files") for n in (0, 1, 2, 17)] == ["0 files", "1 file", "2 files", "17 files"]
    assert counted(np.int64(1), "files") == "1 file" and counted(np.int64(5), "files") == "5 files"
    assert counted(1, "training examples") == "1 training example"
    assert counted(1, "clips in the dataset") == "1 clip in the dataset"
    assert counted(1, "silent files") == "1 silent file" and counted(2, "silent files") == "2 silent files"
    assert counted(1, "NaN or infinite sample values") == "1 NaN or infinite sample value"
    assert counted(1, "classes", one="class") == "1 class" and counted(3, "classes", one="class") == "3 classes"
    assert counted(1, "class folders", one="class folder") == "1 class folder"
    assert counted(0, "class folders", one="class folder") == "0 class folders"
    assert counted(1, "data") == "1 data"  # no plural word: the words as given


def test_check_seed_takes_a_numpy_integer_as_the_seed_it_is():
    """check_seed took only ``int``: a seed drawn from a numpy array (``np.int64(3)``) was refused, as "must be an
    integer", where datasets' seeds took it."""
    from sound_tf.config import SEED_LIMIT, check_seed

    for seed in (np.int64(3), np.uint16(0), np.int32(SEED_LIMIT - 1)):
        check_seed("search.seed", seed)
    for seed in [*NOT_WHOLE, np.int64(-1), np.int64(SEED_LIMIT)]:
        with pytest.raises(ConfigError, match=rf"^search\.seed must be an integer in \[0, 2\*\*30\), got "
                                              rf"{re.escape(repr(seed))}$"):
            check_seed("search.seed", seed)


def test_a_run_saved_with_a_relative_cache_dir_is_still_recognised_from_the_same_folder(tmp_path, monkeypatch):
    """The commands kept --cache-dir as typed; they now make it absolute, as the other paths. A run, cross-
    validation or search saved with ``data.cache_dir = "cache"`` reads it from the current folder, as it was
    read then: the same command from the same folder still resumes it, and from elsewhere it is another cache."""
    from sound_tf import tune
    from sound_tf.config import saved_fingerprint
    from sound_tf.hypermodel import SearchSpace

    monkeypatch.chdir(tmp_path)
    then = apply_overrides(Config(), {"data.cache_dir": "cache"})
    now = apply_overrides(Config(), {"data.cache_dir": str(tmp_path / "cache")})
    then.save(tmp_path / "run")
    assert then.fingerprint() != now.fingerprint() == saved_fingerprint(tmp_path / "run")
    space = SearchSpace.from_toml(REPO_ROOT / "tuning" / "tiny.toml")
    saved = {**tune.search_identity(then, space), "config": then.to_dict()}
    assert tune._same_search(saved, tune.search_identity(now, space))
    monkeypatch.chdir(tmp_path / "run")
    assert saved_fingerprint(tmp_path / "run") != now.fingerprint()
    assert not tune._same_search(saved, tune.search_identity(now, space))


def test_a_set_flag_that_is_not_a_number_says_so_without_speaking_of_quotes():
    """--set train.epochs=abc said "got the text 'abc' (write numbers without quotes)": the user typed none."""
    from sound_tf.config import parse_set_flags

    for item, kind in (("train.epochs=abc", "an integer"), ("train.learning_rate=fast", "a number"),
                       ("features.fmax_hz=high", "a number")):
        with pytest.raises(ConfigError) as info:
            parse_set_flags([item])
        key, value = item.split("=")
        assert str(info.value) == f"--set {item}: {key} must be {kind}, got {value!r}"
    assert parse_set_flags(["train.epochs=3", "features.fmax_hz=null", "train.learning_rate=1e-3"])["train.epochs"] == 3


def test_an_unknown_key_without_a_close_setting_lists_its_sections_keys_and_an_unknown_section_the_sections():
    """'--set model.zzz=1' names the keys of [model], where the user was looking, and '--set zoo.bar=1' the
    sections; both flags at once give both lists, each once."""
    model_keys = ", ".join(f.name for f in dataclasses.fields(Config().model))
    sections = ", ".join(f.name for f in dataclasses.fields(Config()) if f.name != "labels")
    cases = {("model.zzz=1",): f"--set model.zzz=1: unknown key 'zzz' in [model]; known keys in [model]: {model_keys}",
             ("zoo.bar=1",): f"--set zoo.bar=1: no section 'zoo'; sections: {sections}",
             ("model.zzz=1", "zoo.bar=1"): f"--set model.zzz=1: unknown key 'zzz' in [model]; --set zoo.bar=1: no "
                                           f"section 'zoo'; sections: {sections}; known keys in [model]: {model_keys}"}
    for flags, message in cases.items():
        with pytest.raises(ConfigError) as info:
            parse_set_flags(list(flags))
        assert str(info.value) == message


@pytest.mark.parametrize("word, value", [("YES", True), ("On", True), (" TRUE ", True), ("No", False), ("OFF", False),
                                         ("0", False), ("1", True)])
def test_a_switch_takes_its_words_in_any_case(word, value):
    """--set train.class_weights=Yes (as a shell user types it) is true, as yes is."""
    flags = parse_set_flags([f"train.class_weights={word}"])
    assert flags["train.class_weights"] is value
    assert apply_overrides(Config(), flags).train.class_weights is value


def test_a_misspelt_section_is_refused_not_left_at_its_defaults(tmp_path):
    """A recipe's [trian] (or a config.json's) would leave every train setting at its default without a word."""
    recipe = tmp_path / "typo.toml"
    recipe.write_text("[trian]\nepochs = 3\n")
    expected = sorted(f.name for f in dataclasses.fields(Config()) if f.name != "labels")
    with pytest.raises(ConfigError) as info:
        config_from_recipe(recipe)
    assert str(info.value) == f"{recipe}: unknown config section(s) ['trian']; expected {expected} or labels"
    with pytest.raises(ConfigError, match=r"unknown config section\(s\) \['trian'\]"):
        Config.from_dict({**Config().to_dict(), "trian": {"epochs": 3}})


def test_an_override_of_none_is_a_flag_not_given_and_keeps_the_setting():
    """Commands pass their unset flags straight through as None: the recipe's values stay (None is not null)."""
    config = apply_overrides(Config(), {"train.epochs": 3, "features.fmax_hz": 4000.0})
    kept = apply_overrides(config, {"train.epochs": None, "features.fmax_hz": None, "data.path": None})
    assert kept == config and (kept.train.epochs, kept.features.fmax_hz) == (3, 4000.0)


def test_a_saved_configs_differences_compare_lists_as_saved(tmp_path):
    """to_dict is what config.json holds (tuples as lists): a run's saved settings equal today's, and a changed
    list is named as both sides read, not as a tuple against a list."""
    config = Config()
    config.save(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert config.to_dict() == saved and config.differences(saved) == ""
    narrow = apply_overrides(config, {"model.widths": [16, 32]})
    assert narrow.differences(saved) == f" (model.widths: {list(config.model.widths)!r} there, [16, 32] now)"


def test_a_relative_run_folder_that_is_not_there_names_the_current_folder(tmp_path, monkeypatch):
    """'python -m sound_tf.predict runs/20261206-064051 new.mp3' typed in the folder of the recordings, not the one
    train ran in (session 50's novice walkthrough), read 'runs/20261206-064051: no such folder; pass the folder a
    training run wrote', with no word that runs/ is looked for in the current folder; it now names that folder and
    where train wrote runs/. An absolute path is named as it was."""
    from sound_tf.config import load_run_config
    from sound_tf.errors import SoundTFError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SoundTFError) as info:
        load_run_config("runs/20261206-064051")
    assert str(info.value) == (f"runs/20261206-064051: no such folder in the current folder, {tmp_path} (train "
                               f"writes runs/ under the folder it is run from); pass the folder a training run wrote")
    with pytest.raises(SoundTFError) as info:
        load_run_config(tmp_path / "runs" / "x")
    assert str(info.value) == f"{tmp_path / 'runs' / 'x'}: no such folder; pass the folder a training run wrote"


def test_val_from_defaults_to_a_fold_and_round_trips(tmp_path):
    """data.val_from: 'fold' by default (a config.json saved before it existed loads so, and resumes: its
    fingerprint is today's), 'training' saved and read back."""
    from sound_tf.config import saved_fingerprint

    assert Config().data.val_from == "fold"
    drawn = apply_overrides(Config(), {"data.val_from": "training", "data.test_fold": 2})
    drawn.save(tmp_path)
    assert Config.load(tmp_path) == drawn and Config.load(tmp_path).data.val_from == "training"
    older = json.loads((tmp_path / "config.json").read_text())
    del older["data"]["val_from"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(older))
    assert Config.load(tmp_path / "old").data.val_from == "fold"
    assert saved_fingerprint(tmp_path / "old") == apply_overrides(drawn, {"data.val_from": "fold"}).fingerprint()
    assert saved_fingerprint(tmp_path / "old") != drawn.fingerprint()


def test_the_readmes_edge_impulse_table_names_real_settings_with_their_defaults():
    """The README's 'Coming from Edge Impulse' table gives each Edge Impulse setting its sound_tf keys: every key it
    names in its right-hand column is an [augment] setting, shown with its default where it gives one, and every
    Edge Impulse argument it names is one the config's hints (EDGE_IMPULSE_KEYS) answer."""
    defaults = {f.name: f.default for f in dataclasses.fields(Config().augment)}
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("### Coming from Edge Impulse")
    rows = [line for line in readme[start:readme.index("\n### ", start + 1)].splitlines() if line.startswith("| ")]
    named = set()
    for row in rows[1:]:  # after the header (its rule, |---|---|, is not taken)
        edge_impulse, ours = row.split(" | ")[:2]
        for argument in re.findall(r"`([A-Za-z_]+)`", edge_impulse):
            assert argument.lower() in EDGE_IMPULSE_KEYS, argument
        for key, default in re.findall(r"`([a-z_]+)`(?: \(([\d.]+)\))?", ours):
            assert key in defaults, key
            named.add(key)
            if default:
                assert float(default) == defaults[key], (key, default)
    assert {"noise_probability", "spec_time_mask_count", "spec_freq_mask_count", "stretch_probability"} <= named


def test_the_readmes_augment_key_list_names_every_key_with_its_default_and_its_range():
    """The Augmentation section lists the [augment] keys a recipe or --set can tune (a newcomer found them only in
    config.py or in an unknown key's error): every AugmentConfig field is named there, each probability with its
    default, and each range's bounds, written as its error writes them, are the ones the config refuses just past."""
    from sound_tf.config import AugmentConfig

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("The keys, in a recipe's `[augment]` table")
    block = readme[start:readme.index("The unit is in the key's name", start)]
    for field in dataclasses.fields(AugmentConfig):
        assert f"`{field.name}`" in block, field.name
        if field.name.endswith("_probability"):
            assert f"`{field.name}` ({field.default:g})" in block, field.name
    for prefix, unit, low, high in (("speed", "factor", 0.5, 2.0), ("stretch", "rate", 0.5, 2.0),
                                    ("pitch", "semitones", -12, 12), ("gain", "db", -40, 40),
                                    ("noise", "snr_db", -20, 80)):
        line = block[block.index(f"`{prefix}_max_{unit}`"):]
        assert line[:line.index("\n- ")].replace("\n  ", " ").count(f"in [{low:.1f}, {high:.1f}]") == 1, prefix
        for key, value in ((f"{prefix}_min_{unit}", low - 0.5), (f"{prefix}_max_{unit}", high + 0.5)):
            with pytest.raises(ConfigError, match=re.escape(f"augment.{key} must be in [{low:.1f}, {high:.1f}]")):
                apply_overrides(Config(), {f"augment.{key}": value})
        for value in (low, high):
            apply_overrides(Config(), {f"augment.{prefix}_min_{unit}": value, f"augment.{prefix}_max_{unit}": value})


def _range_warnings(**augment) -> list[str]:
    config = apply_overrides(Config(), {f"augment.{key}": value for key, value in augment.items()})
    return config.augment.range_warnings()


def test_a_gain_range_of_linear_factors_is_warned_of_with_its_decibels():
    """``gain_min_db = 0.5``, ``gain_max_db = 2.0`` (a linear factor, as torchaudio's Vol takes) lies inside the checked
    [-40, 40] and was accepted silently: every clip gain acts on was made 0.5-2 dB louder, never quieter, never at its
    own level. It is now warned of with the factors' dB, 20 log10: -6.0 and +6.0 (0.5x and 2x); a range with 0 dB in
    it is not, nor one no clip is drawn from; one of only negative dB is warned of without a factor's reading."""
    assert (round(20 * math.log10(0.5), 1), round(20 * math.log10(2.0), 1)) == (-6.0, 6.0)
    [line] = _range_warnings(gain_min_db=0.5, gain_max_db=2.0)
    assert line.startswith("warning: augment.gain_min_db=0.5 and augment.gain_max_db=2: a gain range in dB without "
                           "0 dB: each clip it acts on (augment.gain_probability 0.5) is made 0.5 to 2 dB louder, "
                           "never quieter, nor left at its level; "), line
    assert line.endswith("0.5-2x would be -6.0 to +6.0 dB: --set augment.gain_min_db=-6.0 --set "
                         "augment.gain_max_db=6.0"), line
    for factors in ([-6.0, 6.0], [0.0, 2.0], [-20.0, 20.0]):
        assert _range_warnings(gain_min_db=factors[0], gain_max_db=factors[1]) == [], factors
    assert _range_warnings(gain_min_db=0.5, gain_max_db=2.0, gain_probability=0.0) == []
    assert _range_warnings(gain_min_db=0.5, gain_max_db=2.0, enabled=False) == []
    [quieter] = _range_warnings(gain_min_db=-10.0, gain_max_db=-3.0)
    assert "is made 3 to 10 dB quieter, never louder, nor left at its level" in quieter and "factor" not in quieter
    [louder] = _range_warnings(gain_min_db=3.0, gain_max_db=12.0)  # 12 is no likely factor: dB as meant, one way
    assert "made 3 to 12 dB louder" in louder and "factor" not in louder
    [line] = _range_warnings(gain_min_db=0.25, gain_max_db=4.0)
    assert "0.25-4x would be -12.0 to +12.0 dB" in line  # 20 log10(4) = 12.04


def test_pitch_factors_and_snrs_below_1_db_are_warned_of_and_the_refused_units_stay_refused():
    """The other ranges checked the same way: a pitch range in frequency factors (0.9-1.1, as speed's) shifted every
    clip 0.9-1.1 semitones up; its semitones are 12 log2(f). An SNR of 0.001-0.015 dB (noise amplitudes, as
    audiomentations' AddGaussianNoise takes) mixed noise as loud as the clip; as noise-to-clip amplitudes they are
    -20 log10(a) dB. Speed in percent and a shift in percent were refused already and still are."""
    [pitch] = _range_warnings(pitch_min_semitones=0.9, pitch_max_semitones=1.1)
    low, high = 12 * math.log2(0.9), 12 * math.log2(1.1)
    assert (round(low, 1), round(high, 1)) == (-1.8, 1.7)
    assert "is shifted 0.9 to 1.1 semitones up, never down, nor left at its pitch" in pitch
    assert pitch.endswith("0.9-1.1x would be -1.8 to +1.7 semitones: --set augment.pitch_min_semitones=-1.8 --set "
                          "augment.pitch_max_semitones=1.7"), pitch
    [down] = _range_warnings(pitch_min_semitones=-4.0, pitch_max_semitones=-1.0)
    assert "shifted 1 to 4 semitones down, never up" in down and "factor" not in down
    [noise] = _range_warnings(noise_min_snr_db=0.001, noise_max_snr_db=0.015)
    assert (round(-20 * math.log10(0.015), 1), round(-20 * math.log10(0.001), 1)) == (36.5, 60.0)
    assert noise.startswith("warning: augment.noise_min_snr_db=0.001 and augment.noise_max_snr_db=0.015: "
                            "signal-to-noise ratios of 0.001-0.015 dB mix noise in about as loud as the clip"), noise
    assert noise.endswith("would be 36.5 to 60.0 dB SNR: --set augment.noise_min_snr_db=36.5 --set "
                          "augment.noise_max_snr_db=60.0"), noise
    assert _range_warnings() == []  # the defaults: gain +-20 dB, pitch +-2, 10-30 dB SNR
    assert _range_warnings(noise_min_snr_db=0.0, noise_max_snr_db=0.5) == []  # 0 dB itself: a hard setting, as meant
    assert _range_warnings(speed_min_factor=1.1, speed_max_factor=1.3, stretch_min_rate=0.6, stretch_max_rate=0.8) == []
    for key, value in (("speed_max_factor", 110.0), ("shift_max_clip_fraction", 10.0)):
        with pytest.raises(ConfigError, match=re.escape(f"augment.{key} must be in [")):
            apply_overrides(Config(), {f"augment.{key}": value})
