"""One-epoch smoke runs of both models, the run folder's content, and resuming a killed run."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import pytest
import soundfile as sf

from conftest import claimable, hold_folder, make_speech_commands
from sound_tf.config import AugmentConfig, Config, apply_overrides
from sound_tf import train

SR = 8000
CLASSES = {"low": 300.0, "mid": 900.0, "high": 2200.0}


def make_tree(root: Path, clips_per_class: int = 10, seconds: float = 0.6, corrupt: bool = True) -> Path:
    """A folder-per-class tree of noisy tones, plus one corrupt file that must be skipped."""
    rng = np.random.default_rng(0)
    for label, freq in CLASSES.items():
        folder = root / label / "nested"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(clips_per_class):
            n = int(SR * seconds * rng.uniform(0.7, 1.3))
            t = np.arange(n) / SR
            wave = 0.3 * np.sin(2 * np.pi * freq * rng.uniform(0.95, 1.05) * t) + 0.02 * rng.standard_normal(n)
            sf.write(folder / f"{label}_{i}.wav", wave.astype(np.float32), SR, subtype="PCM_16")
    if corrupt:
        (root / "low" / "broken.wav").write_bytes(b"RIFF\x00\x00not really a wave file")
    return root


def config_from_flags(*flags: str) -> Config:
    """The config ``python -m sound_tf.train`` builds from these command-line flags."""
    parser = argparse.ArgumentParser()
    train.add_config_flags(parser)
    return train.config_from_args(parser.parse_args(list(flags)))


def _wait_for(process: subprocess.Popen, ready: Callable[[], bool], *, seconds: float = 240.0,
              step_seconds: float = 0.02) -> None:
    """Poll ``ready`` until it holds, ``process`` ends or ``seconds`` pass (the caller asserts what it needs then);
    a file not written yet, or read while a backup is swapped in (OSError, ValueError, KeyError), is not ready."""
    deadline = time.time() + seconds
    while time.time() < deadline and process.poll() is None:
        try:
            if ready():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(step_seconds)


def _flags(data: Path, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--sample-rate", str(SR), "--clip-seconds", "0.5",
            "--batch-size", "8", "--quiet", *extra]


@pytest.mark.parametrize("model", ["default", "seed_cnn"])
def test_one_epoch_run_folder(tmp_path, model, recwarn):
    data = make_tree(tmp_path / "data")
    out = tmp_path / f"run_{model}"
    # splits of different sizes, so that scoring or normalising on the wrong one shows
    assert train.main(_flags(data, out, "--epochs", "1", "--model", model, "--set", "data.val_fraction=0.1",
                             "--set", "data.test_fraction=0.2")) == 0
    # The pipeline shuffles; Keras's fit warns about its own shuffle flag unless told it is off.
    assert not [str(w.message) for w in recwarn if "shuffle" in str(w.message)]

    for name in ["model.keras", "config.json", "labels.txt", "split.csv", "skipped.csv", "history.csv",
                 "metrics.json", "confusion_matrix.png"]:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    config = Config.load(out)
    assert config.labels == tuple(sorted(CLASSES))
    assert config.model.name == model and config.audio.sample_rate_hz == SR
    assert Config.from_dict(json.loads((out / "config.json").read_text())) == config
    assert (out / "labels.txt").read_text().split() == sorted(CLASSES)

    with (out / "skipped.csv").open() as f:
        skipped = list(csv.DictReader(f))
    assert len(skipped) == 1 and skipped[0]["path"].endswith("broken.wav") and skipped[0]["reason"]

    with (out / "split.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 10
    by_split = {s: {r["path"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert all(by_split.values()) and not (by_split["train"] & by_split["test"])
    assert len(by_split["test"]) != len(by_split["val"])
    assert not (by_split["train"] & by_split["val"]) and not (by_split["val"] & by_split["test"])

    metrics = json.loads((out / "metrics.json").read_text())
    cm = np.asarray(metrics["confusion_matrix"])
    assert cm.shape == (3, 3) and cm.sum() == len(by_split["test"])
    assert np.isclose(metrics["accuracy"], np.trace(cm) / cm.sum())
    assert set(metrics["per_class"]) == set(CLASSES)
    assert sum(v["support"] for v in metrics["per_class"].values()) == cm.sum()

    with (out / "history.csv").open() as f:
        history = list(csv.DictReader(f))
    assert len(history) == 1 and {"loss", "val_loss", "accuracy", "learning_rate"} <= set(history[0])

    from sound_tf import frontend, models  # noqa: F401  (registers the custom layers)
    reloaded = keras.models.load_model(out / "model.keras")
    assert reloaded.output_shape[-1] == 3
    assert reloaded.input_shape[-1] == config.audio.clip_samples
    # the default augmentation acts on the features inside the model: its training-only layers are there
    from sound_tf.augment import FeatureAugment, FeatureRescale, SpecAugment
    kinds = {type(layer) for layer in reloaded.layers}
    assert {FeatureRescale, FeatureAugment, SpecAugment} <= kinds, kinds

    # the per-bin normalisation holds the statistics of the training clips (not of validation or test)
    from sound_tf.datasets import prepare_dataset
    from sound_tf.pipeline import label_arrays
    from sound_tf.trainer import feature_statistics
    prepared = prepare_dataset(config, out, log=lambda m: None)  # the run's own split.csv
    norm = reloaded.get_layer(models.NORMALIZATION_LAYER_NAME)
    stats = {name: feature_statistics(config, *label_arrays(prepared.splits[name])) for name in ("train", "val")}
    np.testing.assert_allclose(np.ravel(norm.mean), stats["train"][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.ravel(norm.variance), stats["train"][1], rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(stats["val"][0] - stats["train"][0])) > 1e-3  # the check could tell them apart


def test_no_augment_turns_every_augmentation_off_and_the_command_augments_without_it(tmp_path, monkeypatch):
    """``--no-augment`` gives a run whose config.json has augmentation off, whose model holds none of the
    training-only augmentation layers and whose training pipeline maps no waveform augmenter and no mixup
    over its clips. The same command without it trains with the default augmentation and all of them:
    shift, gain and mixup are set to act on the waveform here, so that both the pipeline's transforms and
    the model's (speed and pitch, noise, SpecAugment) are seen."""
    import dataclasses

    from sound_tf import frontend, models, pipeline  # noqa: F401  (registers the custom layers)
    from sound_tf.augment import FeatureAugment, FeatureRescale, SpecAugment, WaveformAugmenter

    handed: list[dict] = []  # what each run's training pipeline was given to apply per clip
    real = pipeline.training_dataset

    def recorded(*args, **kwargs):
        handed.append({key: kwargs.get(key) for key in ("waveform_augmenter", "mixup")})
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "training_dataset", recorded)
    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    waveform = ("--set", "augment.shift_gain_domain=waveform", "--set", "augment.mixup_domain=waveform")
    defaults = dataclasses.replace(AugmentConfig(), shift_gain_domain="waveform", mixup_domain="waveform")
    layer_kinds = {FeatureRescale, FeatureAugment, SpecAugment}
    for flags, enabled in (((), True), (("--no-augment",), False)):
        out = tmp_path / f"run_{enabled}"
        assert train.main(_flags(data, out, "--epochs", "1", *waveform, *flags)) == 0
        saved = json.loads((out / "config.json").read_text())["augment"]
        assert saved["enabled"] is enabled, flags
        # the flag changes nothing but the switch: every other setting is the default (or the --set one)
        assert Config.load(out).augment == dataclasses.replace(defaults, enabled=enabled), flags
        kinds = {type(layer) for layer in keras.models.load_model(out / "model.keras").layers}
        assert kinds & layer_kinds == (layer_kinds if enabled else set()), (flags, kinds)
        given = handed.pop()
        assert not handed, "one training pipeline per run"
        if enabled:
            assert isinstance(given["waveform_augmenter"], WaveformAugmenter) and callable(given["mixup"])
        else:
            assert given == {"waveform_augmenter": None, "mixup": None}


def test_a_finished_run_folder_is_not_overwritten_by_accident(tmp_path):
    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    out = tmp_path / "run"
    assert train.main(_flags(data, out, "--epochs", "1", "--no-augment")) == 0
    assert train.main(_flags(data, out, "--epochs", "1", "--no-augment")) == 2


def test_out_that_is_not_a_run_is_refused_and_overwrite_deletes_nothing_of_the_users(tmp_path, capsys):
    """``--out`` naming the dataset, or a folder of the user's own files, with or without --overwrite:
    --overwrite emptied it (the dataset's recordings were lost), and without it labels.txt and
    metrics.json were overwritten. A folder of a run stopped before run_state.json is still a run."""
    from sound_tf import trainer
    from sound_tf.errors import ConfigError

    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    assert train.main(_flags(data, data, "--epochs", "1", "--overwrite")) == 2
    err = capsys.readouterr().err
    assert f"error: {data}: not a training run folder (it holds " in err and "and no run_state.json)" in err
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # nothing deleted, nothing written

    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "labels.txt").write_text("my notes")
    (mine / "sub" / "keep.txt").write_text("keep")
    config = config_from_flags("--data", str(data))
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match=r"it holds labels\.txt, sub/, and no run_state\.json\); the output is "
                                              r"written into it, and --overwrite empties it first"):
            train.resolve_run_dir(str(mine), config, overwrite=overwrite)
    assert (mine / "labels.txt").read_text() == "my notes" and (mine / "sub" / "keep.txt").is_file()
    assert not (mine / ".lock").exists()  # refused before it was claimed

    # --overwrite of a run folder that holds what the command reads (its split.csv given as the split file,
    # or the data itself) deleted it, then failed with "manifest not found".
    run = tmp_path / "run_with_inputs"
    run.mkdir()
    (run / "run_state.json").write_text("{}")
    (run / "split.csv").write_text("split,path,label\n")
    sf.write(run / "hiss.wav", np.zeros(SR, np.float32), SR)  # a noise folder holds audio (or is refused at once)
    for key, value in (("data.split_file", run / "split.csv"), ("augment.noise_dir", run)):
        reading = config_from_flags("--data", str(data), "--set", f"{key}={value}")
        with pytest.raises(ConfigError, match=rf"{run}: --overwrite would empty this folder, and {key}={value} is in "
                                              rf"it \(this command reads it\); copy it elsewhere first"):
            train.resolve_run_dir(str(run), reading, overwrite=True)
        assert sorted(p.name for p in run.iterdir()) == ["hiss.wav", "run_state.json", "split.csv"]

    stopped = tmp_path / "stopped"  # stopped while its data decoded: only what comes before run_state.json
    stopped.mkdir()
    for name in trainer.RUN_STARTUP_FILES:
        (stopped / name).write_text("x")
    assert train.resolve_run_dir(str(stopped), config, overwrite=True) == stopped
    assert sorted(p.name for p in stopped.iterdir()) == [".lock"]


def test_a_bad_noise_folder_fails_before_the_run_is_started(tmp_path, capsys):
    """A missing or silent augment.noise_dir failed after the data was read and left the folder "running"
    with that setting, so the corrected command was refused as "an unfinished run with different settings"."""
    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    out = tmp_path / "run"
    silent = tmp_path / "silent"
    silent.mkdir()
    sf.write(silent / "zeros.wav", np.zeros(SR, np.float32), SR)
    for folder, problem in ((tmp_path / "missing", "no such folder"), (silent, "holds no readable, non-silent")):
        assert train.main(_flags(data, out, "--epochs", "1", "--set", f"augment.noise_dir={folder}")) == 2
        assert problem in capsys.readouterr().err
        assert not out.exists()  # the folder this command made held only its lock and log: removed
    # a folder that was there before the command stays, as does one that holds anything else
    out.mkdir()
    assert train.main(_flags(data, out, "--epochs", "1", "--set", f"augment.noise_dir={silent}")) == 2
    assert out.is_dir() and not (out / "run_state.json").exists() and not (out / "split.csv").exists()
    shutil.rmtree(out)
    noise = tmp_path / "noise"
    noise.mkdir()
    sf.write(noise / "hiss.wav", 0.1 * np.random.default_rng(0).standard_normal(SR).astype(np.float32), SR)
    assert train.main(_flags(data, out, "--epochs", "1", "--set", f"augment.noise_dir={noise}")) == 0
    # the log says which augmentation the run trained with, its noise folder too (1 s of noise in one file)
    said = [line for line in (out / "train.log").read_text().splitlines() if " augment: " in line]
    assert len(said) == 1 and f"noise p0.5 10-30 dB SNR (features) from {noise} (1 file, 1.0 s)" in said[0], said



def test_an_unusable_noise_folder_names_the_recipe_or_flag_it_came_from(tmp_path, monkeypatch):
    """augment.noise_dir's errors named the key and the folder, not the recipe that set it, as every other error of
    a recipe does (a missing folder and a file were both 'is not a folder'); a --set value is said to be one."""
    from sound_tf import augment_cli
    from sound_tf.audio import AUDIO_EXTENSIONS
    from sound_tf.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file.wav").write_bytes(b"RIFF")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "read_me.txt").write_text("hiss recorded on Tuesday")
    (tmp_path / "hiss").mkdir()
    sf.write(tmp_path / "hiss" / "h.flac", np.zeros(SR, np.float32), SR)
    recipe = tmp_path / "noisy.toml"
    audio_ends = " ".join(AUDIO_EXTENSIONS)
    for folder, problem in (("gone", "no such folder"), ("a_file.wav", "a file, not a folder"),
                            ("notes", f"holds no audio files (1 other file, e.g. read_me.txt; audio files end in "
                                      f"{audio_ends})")):
        recipe.write_text(f'[augment]\nnoise_dir = "{tmp_path / folder}"\n')
        for config_of in (lambda: config_from_flags("--pipeline", str(recipe)),
                          lambda: augment_cli.build_config(augment_cli.parse_args(["x.wav", "--out", "o",
                                                                                   "--pipeline", str(recipe)]))):
            with pytest.raises(ConfigError) as info:
                config_of()
            assert str(info.value) == f"{recipe}: augment.noise_dir={tmp_path / folder}: {problem}"
        with pytest.raises(ConfigError) as info:
            config_from_flags("--set", f"augment.noise_dir={folder}")
        assert str(info.value) == f"--set augment.noise_dir={tmp_path / folder}: {problem}"
    # --set wins over the recipe's folder, and is named; noise off (or --no-augment): the folder is not read
    with pytest.raises(ConfigError, match=r"^--set augment.noise_dir=.*gone: no such folder$"):
        config_from_flags("--pipeline", str(recipe), "--set", "augment.noise_dir=gone")
    assert config_from_flags("--pipeline", str(recipe), "--no-augment").augment.noise_dir == str(tmp_path / "notes")
    assert config_from_flags("--pipeline", str(recipe), "--set", "augment.noise_probability=0").augment.noise_dir \
        == str(tmp_path / "notes")
    recipe.write_text('[augment]\nnoise_dir = "hiss"\n')
    assert config_from_flags("--pipeline", str(recipe)).augment.noise_dir == str(tmp_path / "hiss")
    # the augmentation preview of a run whose noise folder is gone names the run's config.json
    apply_overrides(Config(), {"augment.noise_dir": str(tmp_path / "gone")}).save(tmp_path / "run")
    with pytest.raises(ConfigError) as info:
        augment_cli.build_config(augment_cli.parse_args(["x.wav", "--out", "o", "--run", str(tmp_path / "run")]))
    assert str(info.value) == (f"{tmp_path / 'run' / 'config.json'}: augment.noise_dir={tmp_path / 'gone'}: "
                               f"no such folder")


def test_labels_cannot_be_set_on_the_command_line():
    """``--set 'labels=["a","b"]'`` was accepted and then replaced by the data's classes without a word."""
    from sound_tf.errors import ConfigError

    with pytest.raises(ConfigError, match=r'--set labels=\["a","b"\]: the classes come from the data'):
        config_from_flags("--set", 'labels=["a","b"]')


def test_command_line_mistakes_are_one_line_errors_before_any_work(tmp_path, capsys, monkeypatch):
    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    assert train.main(_flags(data, a_file, "--epochs", "1")) == 2  # used to be a FileExistsError traceback
    assert f"error: {a_file}: exists and is not a folder; --out names a folder to create or reuse" \
        in capsys.readouterr().err
    # a quoted ~ in --out (the shell leaves it alone) is the home folder, as in --data, for every command: it was
    # checked expanded in one place and made a folder named '~' in the current one in another
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(data)
    assert train.main(_flags(data, "~/notes.txt", "--epochs", "1")) == 2
    assert f"error: {a_file}: exists and is not a folder" in capsys.readouterr().err
    from sound_tf import crossval, tune
    for parser in (crossval.build_parser(), tune.build_parser()):
        assert parser.parse_args(["--out", "~/results"]).out == str(tmp_path / "results")
    assert not (data / "~").exists()
    out = tmp_path / "run"
    assert train.main(_flags(data, out, "--epochs", "1", "--export", "micr")) == 2  # checked before training
    assert "micr" in capsys.readouterr().err and not out.exists()


def test_bad_data_is_refused_before_tensorflow_loads_by_train_crossval_and_tune(tmp_path):
    """'train --data x.csv' with the header file,label said 'missing column(s) path' after TensorFlow's start-up
    lines (5.5 s), as did crossval and tune, and a --data that does not exist too. The three commands check the data
    with datasets.check_source before TensorFlow is imported now: in a fresh process that runs them, tensorflow and
    keras are never imported, each error is load_examples's line (with the column that could be meant), every code
    is 2, and no run folder is made."""
    from sound_tf.datasets import load_examples
    from sound_tf.errors import DatasetError

    manifest, missing = tmp_path / "x.csv", tmp_path / "nope.csv"
    manifest.write_text("file,label\na.wav,dog\n")
    expected = []
    for data in (manifest, missing):
        with pytest.raises(DatasetError) as raised:
            load_examples(data)
        expected.append(f"error: {raised.value}")
    assert expected[0] == (f"error: {manifest}: missing column(s) path; found ['file', 'label']; expected path,label "
                           f"and optionally fold,group; is column 'file' the path? name it path")
    commands = [[module, "--data", str(data)] for module in ("train", "crossval", "tune")
                for data in (manifest, missing)]
    script = ("import importlib, json, sys\n"
              "codes = [importlib.import_module('sound_tf.' + argv[0]).main(argv[1:])\n"
              "         for argv in json.loads(sys.argv[1])]\n"
              "print(json.dumps([codes, [m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules]]))")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[2] * 6, []], (done.stdout, done.stderr)
    assert done.stderr.splitlines() == expected * 3, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]  # no runs/ folder


def test_an_unfinished_run_is_found_from_any_spelling_of_its_data_path_and_differences_are_named(
        tmp_path, monkeypatch):
    from sound_tf.errors import ConfigError
    from sound_tf.trainer import write_state

    data = make_tree(tmp_path / "data", clips_per_class=2, corrupt=False)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "nd").mkdir()  # a noise folder: one that is missing is refused
    sf.write(tmp_path / "nd" / "hiss.wav", np.zeros(SR, np.float32), SR)

    first = config_from_flags("--data", str(data), "--epochs", "3")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert config_from_flags("--data", "../data", "--epochs", "3").fingerprint() == first.fingerprint()
    # --set data.path=... is --data: the same absolute path, and no demo recipe (format demo) behind it
    assert config_from_flags("--set", "data.path=../data", "--epochs", "3") == first
    assert first.data.format == "folder"  # the folder-per-class tree's recipe
    # a split file lists the data: it is not the demo (format demo, the demo's epochs and rate), and its path
    # is absolute as data.path's is
    listed = config_from_flags("--set", "data.split_file=../run/split.csv")
    assert listed.data.format == "auto" and listed.train.epochs == Config().train.epochs
    assert listed.data.split_file == str(tmp_path / "run" / "split.csv")
    # and so is the noise folder: a killed run resumed from another folder was refused ('nd' there, '../nd' now)
    noisy = config_from_flags("--data", "../data", "--set", "augment.noise_dir=../nd")
    assert noisy.augment.noise_dir == str(tmp_path / "nd")
    monkeypatch.chdir(tmp_path)
    assert config_from_flags("--data", "data", "--set", "augment.noise_dir=nd") == noisy
    # a recipe's own relative paths are read from the current folder, as the flags' are
    recipe = tmp_path / "elsewhere" / "mine.toml"
    recipe.write_text('[data]\npath = "data"\n[augment]\nnoise_dir = "nd"\n')  # read from tmp_path
    from_recipe = config_from_flags("--pipeline", str(recipe))
    assert (from_recipe.data.path, from_recipe.augment.noise_dir) == (str(data), str(tmp_path / "nd"))
    # --data and --set data.path together: the layout's recipe was chosen from --data while --set's path was
    # read (a Speech Commands recipe, 16 kHz, over an ESC-50 folder); now refused, naming both
    with pytest.raises(ConfigError, match=r"--data data and --set data.path=elsewhere both name the data"):
        config_from_flags("--data", "data", "--set", "data.path=elsewhere")
    # an empty path (an unset $DATASET) is an error, not the demo or the current folder
    for flags in (("--data", ""), ("--set", "data.path="), ("--set", "augment.noise_dir= ")):
        with pytest.raises(ConfigError, match="is empty"):
            config_from_flags(*flags)
    monkeypatch.chdir(tmp_path / "elsewhere")
    run = tmp_path / "run"
    run.mkdir()
    first.save(run)
    write_state(run, status="running", fingerprint=first.fingerprint())
    assert train.resolve_run_dir(str(run), first) == run
    with pytest.raises(ConfigError, match=r"different settings \(train.epochs: 3 there, 4 now\)"):
        train.resolve_run_dir(str(run), config_from_flags("--data", "../data", "--epochs", "4"))


def test_a_relative_cache_dir_is_made_absolute(tmp_path, monkeypatch):
    """``--cache-dir cache`` was kept as 'cache' in config.json: evaluate or export run from another folder
    decoded every file again into a new 'cache' there, and the run resumed from another folder with
    another spelling of the same cache was refused (data.cache_dir differed)."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    config = config_from_flags("--data", "data", "--cache-dir", "cache")
    assert config.data.cache_dir == str(tmp_path / "cache")
    recipe = tmp_path / "mine.toml"
    recipe.write_text('[data]\ncache_dir = "cache"\n')
    assert config_from_flags("--data", "data", "--pipeline", str(recipe)) == config
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert config_from_flags("--data", "../data", "--cache-dir", "../cache") == config
    assert config_from_flags("--data", "../data", "--set", "data.cache_dir=../cache") == config
    # an empty one is still the default cache ($SOUND_TF_CACHE or ~/.cache/sound_tf), not this folder
    assert config_from_flags("--data", "../data", "--cache-dir", "").data.cache_dir == ""
    assert config_from_flags("--data", "../data").data.cache_dir is None


def test_an_empty_path_in_a_recipe_is_an_error(tmp_path, monkeypatch):
    """An empty data.path or data.split_file in a recipe was made absolute, the current folder; when the cache
    joined the paths made absolute an empty value was kept as "" (read from whatever folder a later command
    runs in) for them too. As --data "" and --set data.path= are, it is refused, naming the recipe."""
    from sound_tf.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    for key, section in (("path", "data"), ("split_file", "data")):
        recipe = tmp_path / f"{key}.toml"
        recipe.write_text(f'[{section}]\n{key} = ""\n')
        with pytest.raises(ConfigError, match=rf"^{section}\.{key} is empty in the pipeline recipe "
                                              rf"{re.escape(str(recipe))}: give a path, or leave it out$"):
            config_from_flags("--pipeline", str(recipe))
    recipe = tmp_path / "cache.toml"
    recipe.write_text('[data]\ncache_dir = ""\n')  # an empty cache is the default one
    assert config_from_flags("--data", "data", "--pipeline", str(recipe)).data.cache_dir == ""


def test_a_value_a_flag_gave_is_refused_naming_the_flag(tmp_path, monkeypatch):
    """--set augment.noise_min_snr_db=-30 printed "augment.noise_min_snr_db must be in [-20.0, 80.0], got -30.0",
    where a recipe's error names the recipe and a --set that is not a number names the flag: the user could
    not tell the flag from the recipe. A recipe's own error and a check across two keys keep their words."""
    from sound_tf.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    for flags, message in (
            (("--set", "augment.noise_min_snr_db=-30"),
             "--set augment.noise_min_snr_db=-30: augment.noise_min_snr_db must be in [-20.0, 80.0], got -30.0"),
            (("--epochs", "0"), "--epochs 0: train.epochs must be an integer >= 1, got 0"),
            (("--batch-size", "0", "--sample-rate", "5"),  # the first the config checks
             "--sample-rate 5: audio.sample_rate_hz must be an integer in [1000, 192000], got 5"),
            (("--epochs", "3", "--set", "train.epochs=0"),  # --set is applied last: its value was refused
             "--set train.epochs=0: train.epochs must be an integer >= 1, got 0"),
            (("--set", "augment.pitch_p=2"), "--set augment.pitch_p=2: unknown key 'pitch_p' in [augment] "
                                             "(did you mean augment.pitch_probability?)")):
        with pytest.raises(ConfigError) as info:
            config_from_flags(*flags)
        assert str(info.value).startswith(message), (flags, str(info.value))
    recipe = tmp_path / "mine.toml"
    recipe.write_text("[train]\nepochs = 0\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(recipe))}: train.epochs must be an integer >= 1, got 0$"):
        config_from_flags("--pipeline", str(recipe), "--batch-size", "8")
    with pytest.raises(ConfigError, match=r"^features.fmax_hz=7000.0 exceeds the Nyquist frequency 4000.0 of "
                                          r"audio.sample_rate_hz=8000$"):
        config_from_flags("--sample-rate", "8000", "--set", "features.fmax_hz=7000")


def test_every_set_flag_that_names_no_setting_is_refused_with_its_flag_in_one_message(tmp_path, monkeypatch):
    """'--set a.b=1 --set c.d=2' printed "override 'a.b' must look like section.key ...", naming neither flag, and
    two misspelt keys of one section named only the last flag ('--set train.lerning_rate=0.1: unknown key(s)
    ['epoch', 'lerning_rate'] in [train]'), of two sections only the first: fixing one, the user met the next.
    Every such flag is named at once, each with the setting it is closest to, before any value is read."""
    from sound_tf.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    for flags, message in (
            (("--set", "a.b=1", "--set", "c.d=2"),
             "--set a.b=1: no section 'a'; --set c.d=2: no section 'c'; "
             "sections: audio, features, data, augment, model, train"),
            (("--set", "train.epoch=1", "--epochs", "0", "--set", "train.lerning_rate=0.1", "--set", "model.dropot=x"),
             "--set train.epoch=1: unknown key 'epoch' in [train] (did you mean train.epochs?); "
             "--set train.lerning_rate=0.1: unknown key 'lerning_rate' in [train] (did you mean train.learning_rate?); "
             "--set model.dropot=x: unknown key 'dropot' in [model] (did you mean model.dropout?)"),
            (("--set", "train.num_mel_bins=96", "--set", "epochs=3", "--set", "train.foo=1"),
             "--set train.num_mel_bins=96: unknown key 'num_mel_bins' in [train] "
             "(did you mean features.num_mel_bins?); "
             "--set epochs=3: 'epochs' is not SECTION.KEY (did you mean train.epochs?); "
             "--set train.foo=1: unknown key 'foo' in [train]; known keys in [train]: epochs, batch_size, "
             "learning_rate, weight_decay, schedule, warmup_epochs, early_stopping_patience, min_steps_per_epoch, "
             "label_smoothing, class_weights, seed, shuffle_buffer")):
        with pytest.raises(ConfigError) as info:
            config_from_flags(*flags)
        assert str(info.value) == message, flags
    assert config_from_flags("--set", "train.epochs=2", "--set", "model.dropout=0.2").train.epochs == 2


def test_a_refused_fraction_names_the_flag_that_gave_it_not_the_other(tmp_path, monkeypatch):
    """data.val_fraction and data.test_fraction were checked in one message that began with data.val_fraction,
    so '--set data.val_fraction=0.3 --set data.test_fraction=0.7' was told '--set data.val_fraction=0.3: ...', the
    value that was fine, and '--set data.test_fraction=0.7' alone named no flag. Each is checked on its own."""
    from sound_tf.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    for flags, message in (
            (("--set", "data.val_fraction=0.3", "--set", "data.test_fraction=0.7"),
             "--set data.test_fraction=0.7: data.test_fraction must be in (0, 0.5), got 0.7"),
            (("--set", "data.test_fraction=0.7"),
             "--set data.test_fraction=0.7: data.test_fraction must be in (0, 0.5), got 0.7"),
            (("--set", "data.val_fraction=0.5", "--set", "data.test_fraction=0.2"),
             "--set data.val_fraction=0.5: data.val_fraction must be in (0, 0.5), got 0.5")):
        with pytest.raises(ConfigError) as info:
            config_from_flags(*flags)
        assert str(info.value) == message, (flags, str(info.value))
    fine = config_from_flags("--set", "data.val_fraction=0.3", "--set", "data.test_fraction=0.2")
    assert (fine.data.val_fraction, fine.data.test_fraction) == (0.3, 0.2)


def test_val_from_training_with_a_val_fold_is_refused_naming_the_flag(tmp_path, monkeypatch):
    """--set data.val_from=training validates on a share of the training folds; a --val-fold beside it would not be
    used, and the refusal says so, naming the --set flag; each alone is taken."""
    from sound_tf.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        config_from_flags("--val-fold", "3", "--set", "data.val_from=training")
    assert str(info.value) == (
        "--set data.val_from=training: data.val_from 'training' draws validation from the training folds (a "
        "data.val_fraction 0.15 of them), so data.val_fold=3, a whole fold for validation, would not be used: give "
        "one or the other")
    assert config_from_flags("--set", "data.val_from=training", "--test-fold", "2").data.val_from == "training"
    assert config_from_flags("--val-fold", "3").data.val_from == "fold"


def test_val_from_flag_sets_data_val_from_and_must_agree_with_a_set_of_it(tmp_path, monkeypatch):
    """--val-from is --set data.val_from's sugar: it sets the value, a --set of the same value beside it is taken,
    another is refused naming both flags (the last --set given), and --val-fold beside --val-from training names
    the flag that gave it."""
    from sound_tf.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    assert config_from_flags("--val-from", "training").data.val_from == "training"
    assert config_from_flags("--val-from", "fold").data.val_from == "fold"
    assert config_from_flags("--val-from", "training", "--set", "data.val_from=training").data.val_from == "training"
    with pytest.raises(ConfigError) as info:
        config_from_flags("--set", "data.val_from=training", "--val-from", "fold", "--set", "data.val_from=fold ",
                          "--set", "data.val_from=training")
    assert str(info.value) == ("--val-from fold and --set data.val_from=training disagree on where validation comes "
                               "from: give one of them")
    with pytest.raises(ConfigError) as info:
        config_from_flags("--val-fold", "3", "--val-from", "training")
    assert str(info.value).startswith("--val-from training: data.val_from 'training' draws validation from the "
                                      "training folds")
    with pytest.raises(SystemExit):  # argparse's choices
        config_from_flags("--val-from", "train")


def test_a_key_set_twice_is_refused_naming_the_set_flag_that_was_kept(tmp_path, monkeypatch):
    """Mutation audit of flag_given: of two --set flags of one key the last is kept, and a refusal of its value
    names that one, not the first, whose value was fine."""
    from sound_tf.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    for first, last in (("train.epochs=3", "train.epochs=0"), ("train.batch_size=0", "train.batch_size=-4")):
        with pytest.raises(ConfigError) as info:
            config_from_flags("--set", first, "--set", last)
        key, value = last.split("=")
        assert str(info.value).startswith(f"--set {last}: {key} must be an integer >= 1, got {value}"), str(info.value)
    assert config_from_flags("--set", "train.epochs=0", "--set", "train.epochs=3").train.epochs == 3


def test_each_training_flag_sets_its_config_value_over_the_recipe(tmp_path, monkeypatch):
    """Mutation audit of FLAG_DESTS: a flag whose entry was lost (--seed) was parsed, then dropped without a word,
    and the run trained with the recipe's value. Each flag is given a value neither the defaults nor the recipe
    hold, and the config carries it."""
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "mine.toml"
    recipe.write_text("[train]\nseed = 3\nepochs = 7\nbatch_size = 16\nlearning_rate = 0.005\nlabel_smoothing = 0.05\n"
                      "[audio]\nsample_rate_hz = 22050\nclip_seconds = 1.5\n")
    given = {"--seed": ("train.seed", 11), "--epochs": ("train.epochs", 5), "--batch-size": ("train.batch_size", 4),
             "--learning-rate": ("train.learning_rate", 0.0007), "--label-smoothing": ("train.label_smoothing", 0.2),
             "--sample-rate": ("audio.sample_rate_hz", 12000), "--clip-seconds": ("audio.clip_seconds", 0.75)}
    base = config_from_flags("--pipeline", str(recipe))
    for flag, (key, value) in given.items():
        section, name = key.split(".")
        assert getattr(getattr(base, section), name) != value, key  # the recipe's (or the default) differs
        config = config_from_flags("--pipeline", str(recipe), flag, str(value))
        assert getattr(getattr(config, section), name) == value, flag
        assert config.fingerprint() != base.fingerprint(), flag  # another run, not the recipe's resumed


def test_a_run_started_before_a_setting_was_added_resumes(tmp_path, monkeypatch):
    """Adding augment.spec_probability changed every fingerprint: a run an older version had started was
    refused as "an unfinished run with different settings" that differed in nothing."""
    from sound_tf.errors import ConfigError
    from sound_tf.locks import release_folder
    from sound_tf.trainer import write_state

    data = make_tree(tmp_path / "data", clips_per_class=2, corrupt=False)
    monkeypatch.chdir(tmp_path)
    config = config_from_flags("--data", str(data), "--epochs", "3")
    run = tmp_path / "runs" / "20260101-000000"
    run.mkdir(parents=True)
    old = config.to_dict()
    del old["augment"]["spec_probability"]  # as the older version saved it
    (run / "config.json").write_text(json.dumps(old))
    write_state(run, status="running", fingerprint="0123456789ab")  # the older version's fingerprint
    assert train.resolve_run_dir(str(run), config) == run
    release_folder(run)
    assert train.resolve_run_dir(None, config).resolve() == run  # found under runs/ too
    release_folder(run)
    other = config_from_flags("--data", str(data), "--epochs", "4")  # a setting that really differs
    with pytest.raises(ConfigError, match=r"different settings \(train.epochs: 3 there, 4 now\)"):
        train.resolve_run_dir(str(run), other)


def test_a_run_begun_before_min_steps_per_epoch_resumes_with_the_one_pass_epochs_it_began_with(
        tmp_path, monkeypatch, capsys):
    """A run an older sound_tf began (every epoch one pass; its config.json without train.min_steps_per_epoch) was
    resumed with today's 16 batches an epoch: on a split of fewer batches a pass, its later epochs were longer than
    its first ones, and its learning-rate schedule changed mid-run. It resumes with one-pass epochs, through any
    number of resumes, and trains as the older run would have uninterrupted; a command that sets another floor is
    refused as other settings."""
    import keras

    from sound_tf import trainer

    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    monkeypatch.chdir(tmp_path)

    def flags(out: Path, *more: str) -> list[str]:
        return _flags(data, out, "--epochs", "4", "--set", "train.early_stopping_patience=50",
                      "--set", "model.widths=[8,16]", *more)

    one_pass = ("--set", "train.min_steps_per_epoch=1")
    whole = tmp_path / "whole"
    assert train.main(flags(whole, *one_pass)) == 0  # as the older sound_tf trained it, uninterrupted

    class StopAfter(keras.callbacks.Callback):  # after that epoch's backup: as a Ctrl-C there
        def __init__(self, epoch: int) -> None:
            super().__init__()
            self.stop = epoch

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == self.stop:
                raise KeyboardInterrupt

    real = trainer._callbacks

    def stopped_after(epoch: int, out: Path, *more: str) -> None:
        monkeypatch.setattr(trainer, "_callbacks", lambda *a, **k: [*real(*a, **k), StopAfter(epoch)])
        assert train.main(flags(out, *more)) == 130
        monkeypatch.setattr(trainer, "_callbacks", real)

    run = tmp_path / "old"
    stopped_after(1, run, *one_pass)
    saved = json.loads((run / "config.json").read_text())
    del saved["train"]["min_steps_per_epoch"]  # as the older version saved it
    (run / "config.json").write_text(json.dumps(saved))
    trainer.write_state(run, fingerprint="0123456789ab")  # the older version's fingerprint
    with (run / "split.csv").open() as f:
        train_clips = sum(row["split"] == "train" for row in csv.DictReader(f))
    passes = -(-train_clips // 8)
    assert passes < 16  # a split the floor would cycle through
    note = (f"note: this run was begun by an earlier sound_tf, whose epochs were one pass each (before "
            f"train.min_steps_per_epoch): it resumes so, {passes} batches of 8 an epoch over its {train_clips} "
            f"training clips, where a new run makes at least 16, so that its epochs, learning-rate schedule and "
            f"early stopping go on as they began\n")
    capsys.readouterr()
    stopped_after(3, run)  # today's command, which does not set the floor: resumed after epoch 1, stopped again
    assert note in capsys.readouterr().out
    state = json.loads((run / "run_state.json").read_text())
    assert state[trainer.KEPT_MIN_STEPS] == 1 and state["status"] == "running"
    assert json.loads((run / "config.json").read_text())["train"]["min_steps_per_epoch"] == 1
    refused = flags(run, "--set", "train.min_steps_per_epoch=4")
    assert train.main(refused) == 2  # a floor the command sets is compared as any setting
    assert "train.min_steps_per_epoch: 1 there, 4 now" in capsys.readouterr().err
    assert train.main(flags(run)) == 0  # resumed after epoch 3, and finished
    assert note in capsys.readouterr().out

    def losses(folder: Path) -> list[tuple[float, float]]:
        with (folder / "history.csv").open() as f:
            return [(float(r["loss"]), float(r["val_loss"])) for r in csv.DictReader(f)]

    assert len(losses(run)) == 4
    assert losses(run) == losses(whole)  # 16-batch epochs from epoch 2 on trained other losses
    # a run begun today, and one whose split makes 16 batches a pass or more, are left as they are
    config = apply_overrides(Config(), {"train.batch_size": 8})
    kept = {"status": "running", trainer.KEPT_MIN_STEPS: 1}
    assert trainer.epochs_as_begun(run, kept, config, 16 * 8) == (config, None)
    assert trainer.epochs_as_begun(run, kept, config, 15 * 8)[0].train.min_steps_per_epoch == 1
    assert trainer.epochs_as_begun(whole, {"status": "running"}, config, train_clips) == (config, None)
    # an old run killed after training ended (no backup, fit_done) keeps them too, so its config.json says how it
    # trained; one that kept no epoch (a history row whose backup was not written, or an unreadable history.csv)
    # starts again from epoch 1 as a run of today does, without reading its history
    old_done = tmp_path / "old_done"
    old_done.mkdir()
    (old_done / "config.json").write_text(json.dumps(saved))
    (old_done / "history.csv").write_text("epoch,loss\r\n0,1.5\r\n")
    done = {"status": "running", "fit_done": True}
    assert trainer.epochs_as_begun(old_done, done, config, 15 * 8)[0].train.min_steps_per_epoch == 1
    assert trainer.epochs_as_begun(old_done, {"status": "running"}, config, 15 * 8) == (config, None)
    (old_done / "history.csv").write_bytes(b"\xff\xfe\x00 not a CSVLogger file\n")
    assert trainer.epochs_as_begun(old_done, {"status": "running"}, config, 15 * 8) == (config, None)


def test_data_in_a_layout_with_its_own_recipe_gets_that_recipe_without_pipeline(tmp_path, capsys):
    """``--data ~/ESC-50`` alone trained with the built-in defaults (16 kHz, 1-s clips, a random split
    instead of ESC-50's official folds) unless the user knew to add ``--pipeline esc50``."""
    from sound_tf.config import config_from_recipe

    esc50 = tmp_path / "ESC-50"
    (esc50 / "meta").mkdir(parents=True)
    (esc50 / "meta" / "esc50.csv").write_text("filename,fold,target,category,esc10,src_file,take\n")
    us8k = tmp_path / "UrbanSound8K"
    (us8k / "metadata").mkdir(parents=True)
    (us8k / "metadata" / "UrbanSound8K.csv").write_text("slice_file_name,fsID,start,end,salience,fold,classID,class\n")
    tree = make_tree(tmp_path / "tree", clips_per_class=1, corrupt=False)

    for root, name in ((esc50, "esc50"), (us8k, "urbansound8k")):
        capsys.readouterr()
        got = config_from_flags("--data", str(root), "--epochs", "3")
        assert got == config_from_recipe(name, {"data.path": str(root), "train.epochs": 3})
        assert got.data.format == name and got.audio.clip_seconds != Config().audio.clip_seconds
        assert f"{root} is an " in capsys.readouterr().err
        named = config_from_flags("--data", str(root), "--pipeline", "folder")  # a named recipe wins
        assert named.data.format == "folder"
    assert config_from_flags("--data", str(esc50)).audio.sample_rate_hz == 22050
    # named by --format, the layout's recipe applies too; another format named keeps the defaults
    assert config_from_flags("--data", str(esc50), "--format", "esc50") == config_from_flags("--data", str(esc50))
    assert config_from_flags("--data", str(esc50), "--format", "csv") == config_from_recipe(
        None, {"data.path": str(esc50), "data.format": "csv"})
    # a folder tree gets the folder recipe; a path that does not exist (reported when loaded) keeps the built-in
    # defaults
    capsys.readouterr()
    assert config_from_flags("--data", str(tree)) == config_from_recipe("folder", {"data.path": str(tree)})
    assert f"{tree} is a folder-per-class dataset" in capsys.readouterr().err
    missing = str(tmp_path / "missing")
    assert config_from_flags("--data", missing) == config_from_recipe(None, {"data.path": missing})
    assert capsys.readouterr().err == ""


def test_a_decode_cache_deleted_under_a_run_is_a_one_line_error(tmp_path, monkeypatch):
    """It was a TensorFlow NotFoundError traceback from inside the input pipeline."""
    import shutil

    from sound_tf import pipeline
    from sound_tf.datasets import prepare_dataset
    from sound_tf.errors import DatasetError
    from sound_tf.trainer import train_run

    data = make_tree(tmp_path / "data", clips_per_class=4, corrupt=False)
    cache = tmp_path / "my cache"  # a space in the path (home folders on macOS and Windows)
    config = config_from_flags(
        "--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--batch-size", "8", "--epochs", "1",
        "--set", f"data.cache_dir={cache}")
    prepared = prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    message = (r"No such file or directory.*: a decoded file went missing while the run read it \(was the decode "
               r"cache deleted\?\); run the same command again")
    sizes = pipeline.memory_cache_format

    def sized_then_emptied(paths, **kwargs):  # Python has seen the files; TensorFlow's reader meets them gone
        if not cache.exists():
            return None  # (streamed from the files: no more size checks)
        kept = sizes(paths, **kwargs)
        shutil.rmtree(cache)
        return kept

    monkeypatch.setattr(pipeline, "memory_cache_format", sized_then_emptied)
    with pytest.raises(DatasetError, match=message) as info:
        train_run(config, tmp_path / "run", data=prepared, log=lambda _: None, verbose=0)
    assert type(info.value.__context__).__name__ == "NotFoundError"
    assert str(info.value).startswith(f"{cache}/")  # the whole file name, without TensorFlow's node names
    monkeypatch.setattr(pipeline, "memory_cache_format", sizes)
    with pytest.raises(DatasetError, match=message) as info:  # emptied before: Python's file checks meet it
        train_run(config, tmp_path / "run", data=prepared, log=lambda _: None, verbose=0)
    assert isinstance(info.value.__context__, FileNotFoundError)
    from sound_tf import trainer

    def elsewhere(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", str(tmp_path / "not-the-cache.wav"))

    monkeypatch.setattr(trainer, "feature_statistics", elsewhere)
    prepared = prepare_dataset(config, tmp_path / "run", log=lambda _: None)  # decoded again
    with pytest.raises(FileNotFoundError):  # a missing file that is not a decoded one keeps its own error
        train_run(config, tmp_path / "run", data=prepared, log=lambda _: None, verbose=0)


def test_a_backup_cut_short_never_stops_the_run_from_resuming(tmp_path, monkeypatch):
    """A full disk (or a kill) while the backup is written: the next run resumes from the last whole
    backup. Keras wrote its backup in place, so a first epoch's cut-short backup left a half file and no
    copy, and every later run failed loading it ("bad object header version number")."""
    import errno

    from sound_tf import trainer
    from sound_tf.datasets import prepare_dataset

    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    config = config_from_flags(
        "--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--batch-size", "8",
        "--epochs", "3", "--set", "train.early_stopping_patience=50")
    run = tmp_path / "run"
    prepared = prepare_dataset(config, run, log=lambda _: None)
    whole_save = trainer.AtomicBackupAndRestore._save_model

    def disk_full_at_epoch_2(self):
        if self._current_epoch == 2:  # the second backup: half a file, then the disk is full
            saving = Path(self.backup_dir) / "saving"
            saving.mkdir(parents=True, exist_ok=True)
            (saving / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(500))
            raise OSError(errno.ENOSPC, "No space left on device")
        whole_save(self)

    monkeypatch.setattr(trainer.AtomicBackupAndRestore, "_save_model", disk_full_at_epoch_2)
    with pytest.raises(OSError, match="No space left"):
        trainer.train_run(config, run, data=prepared, log=lambda _: None, verbose=0)
    assert trainer.finished_epochs(run) == 1
    monkeypatch.setattr(trainer.AtomicBackupAndRestore, "_save_model", whole_save)
    messages: list[str] = []
    result = trainer.train_run(config, run, data=prepared, log=messages.append, verbose=0)
    assert any("resuming the run" in m and "after epoch 1" in m for m in messages)
    assert len(result.history["loss"]) == 3 and not (run / "backup").exists()

    # A run killed in the first backup by an earlier version (Keras's layout: half a weights file, no
    # copy) trains again from its first epoch, saying so.
    (run / "run_state.json").write_text(json.dumps({"status": "running"}))
    (run / "history.csv").write_text("epoch,loss\n0,1.0\n")
    legacy = run / "backup"
    legacy.mkdir()
    (legacy / "latest.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(500))
    (legacy / "training_metadata.json").write_text('{"epoch": 1, "batch": 0}')
    messages.clear()
    result = trainer.train_run(config, run, data=prepared, log=messages.append, verbose=0)
    assert any("backup of the interrupted run is unreadable" in m for m in messages)
    assert not any("resuming the run" in m for m in messages) and len(result.history["loss"]) == 3

    # Whole weights but metadata cut short (Keras rewrote it after the weights): its copy is used instead.
    import h5py

    legacy.mkdir()
    for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
        with h5py.File(legacy / name, "w") as f:
            f["w"] = np.zeros(3)
    (legacy / "training_metadata.json").write_text("")
    (legacy / "training_metadata.json.bkp").write_text('{"epoch": 1, "batch": 0}')
    trainer.settle_backup(run, log=messages.append)
    assert trainer.finished_epochs(run) == 1 and sorted(p.name for p in legacy.iterdir()) == ["state"]


_hold, _claims = hold_folder, claimable  # another process that holds a folder; whether one could claim it


def test_a_run_folder_in_use_by_another_process_is_refused_or_passed_over(tmp_path, monkeypatch):
    """Two commands on one run used to write into one folder at once: the second resumed a run still
    training and crashed on its history.csv, or (started in the same second) on its weights file."""
    from sound_tf.errors import ConfigError
    from sound_tf.locks import claim_folder, release_folder
    from sound_tf.trainer import write_state

    config = Config()
    monkeypatch.chdir(tmp_path)
    busy = tmp_path / "runs" / "20260101-000000"
    busy.mkdir(parents=True)
    write_state(busy, status="running", fingerprint=config.fingerprint())  # a resumable run...
    holder = _hold(busy)  # ...that another process is training
    try:
        assert claim_folder(busy) == f"pid {holder.pid} on {os.uname().nodename}"
        with pytest.raises(ConfigError, match=rf"{busy}: in use by pid {holder.pid} on .*, which is training or "
                                              rf"exporting this run; wait for it to end, or choose another --out"):
            train.resolve_run_dir(str(busy), config, overwrite=True)
        assert (busy / "run_state.json").is_file()  # --overwrite deleted nothing
        first = train.resolve_run_dir(None, config)
        second = train.resolve_run_dir(None, config)  # the same second, or a later one: another folder
        assert len({busy, first.absolute(), second.absolute()}) == 3
        assert not _claims(first)  # held while its work goes on...
        release_folder(first)
        assert _claims(first)  # ...and free once it is given back, though this process goes on
    finally:
        holder.kill()
        holder.wait()
    assert claim_folder(busy) is None  # a killed holder leaves the folder free
    release_folder(busy)
    (tmp_path / "runs" / "20260101-000001").mkdir()
    write_state(tmp_path / "runs" / "20260101-000001", status="running", fingerprint=config.fingerprint())
    resumed = train.resolve_run_dir(None, config)
    assert resumed == Path("runs") / "20260101-000001"  # free: resumed
    release_folder(resumed)
    fresh = train.resolve_run_dir(None, config, overwrite=True)  # --overwrite without --out: start over elsewhere
    assert fresh != resumed and sorted(p.name for p in fresh.iterdir()) == [".lock"]
    assert (resumed / "run_state.json").is_file()  # the unfinished run is kept
    release_folder(fresh)

    # --overwrite empties the folder but keeps its lock: the lock stays the one other processes see.
    (busy / "old.txt").write_text("x")
    run = train.resolve_run_dir(str(busy), config, overwrite=True)
    assert sorted(p.name for p in busy.iterdir()) == [".lock"] and not _claims(busy)
    assert train.resolve_run_dir(str(busy), config, overwrite=True) == run  # this process again: fine
    assert (busy / ".lock").is_file() and not _claims(busy)
    release_folder(busy)
    release_folder(busy)
    assert _claims(busy)


def test_killed_run_resumes_where_it_stopped(tmp_path):
    data = make_tree(tmp_path / "data", clips_per_class=40, seconds=1.0, corrupt=False)
    out = tmp_path / "run"
    epochs = 6
    cmd = [sys.executable, "-m", "sound_tf.train", *_flags(data, out, "--epochs", str(epochs),
                                                            "--set", "train.early_stopping_patience=50")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    meta = out / "backup" / "state" / "training_metadata.json"
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(first, lambda: json.loads(meta.read_text())["epoch"] >= 1, step_seconds=0.05)
    assert first.poll() is None, "the first run ended before it could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait()
    from sound_tf.trainer import settle_backup

    settle_backup(out, log=lambda _: None)  # a kill between the swap's two renames: as the next run does
    done_before = json.loads(meta.read_text())["epoch"]
    assert 1 <= done_before < epochs
    killed_state = json.loads((out / "run_state.json").read_text())
    assert killed_state["status"] == "running"
    assert killed_state["seconds"] > 0  # written after every epoch

    session = time.time()
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    session = time.time() - session
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming the run" in second.stdout
    with (out / "history.csv").open() as f:
        epochs_logged = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs_logged == list(range(epochs))  # every epoch exactly once, none repeated
    final_state = json.loads((out / "run_state.json").read_text())
    assert final_state["status"] == "done"
    # Its training time adds both sessions: the killed one up to its last epoch, and the resumed one.
    assert killed_state["seconds"] < final_state["seconds"] <= killed_state["seconds"] + session
    assert (out / "metrics.json").is_file() and not (out / "backup").exists()

    # The resumed run trained exactly as an uninterrupted one: the same data order, augmentation draws,
    # dropout masks and optimiser state after the restart, so the same losses and the same weights.
    whole = tmp_path / "uninterrupted"
    cmd_whole = [sys.executable, "-m", "sound_tf.train", *_flags(data, whole, "--epochs", str(epochs),
                                                                  "--set", "train.early_stopping_patience=50")]
    done = subprocess.run(cmd_whole, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    def losses(run):
        with (run / "history.csv").open() as f:
            return [(float(r["loss"]), float(r["val_loss"])) for r in csv.DictReader(f)]

    assert losses(out) == losses(whole)
    from sound_tf.export import load_run_model

    for a, b in zip(load_run_model(out)[1].get_weights(), load_run_model(whole)[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    raw = (out / "history.csv").read_bytes()  # the resumed rows end like the others (CSVLogger's \r\n)
    assert raw == (whole / "history.csv").read_bytes()

    # Killed after training ended (its backup deleted) but before the run was marked done: resuming
    # saves and evaluates the trained model instead of training again from the first epoch.
    history_before = (whole / "history.csv").read_bytes()
    weights_before = load_run_model(whole)[1].get_weights()
    (whole / "model.keras").unlink()
    (whole / "metrics.json").unlink()
    state = json.loads((whole / "run_state.json").read_text())
    (whole / "run_state.json").write_text(json.dumps({**state, "status": "running"}))
    again = subprocess.run(cmd_whole, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "training had finished" in again.stdout and "training default" not in again.stdout
    assert "Skipping variable loading for optimizer" not in again.stderr  # Keras warned on every such resume
    assert (whole / "history.csv").read_bytes() == history_before and (whole / "metrics.json").is_file()
    for a, b in zip(load_run_model(whole)[1].get_weights(), weights_before):
        np.testing.assert_array_equal(a, b)


def _adam_model(learning_rate: float):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model


def test_a_resumed_plateau_schedule_counts_on_as_the_uninterrupted_one():
    """ReduceLROnPlateau's counters restarted from zero on resume: the rate was halved epochs later, or never."""
    from sound_tf.trainer import ResumablePlateau

    val_losses = [1.0, 0.8, 0.81, 0.82, 0.83, 0.79, 0.80, 0.81, 0.82, 0.9, 0.95, 0.97]
    kwargs = dict(monitor="val_loss", mode="min", factor=0.5, patience=3, min_lr=0.03 / 100, cooldown=1)
    live_model = _adam_model(0.03)
    live = keras.callbacks.ReduceLROnPlateau(**kwargs)
    live.set_model(live_model)
    live.on_train_begin()
    history: dict[str, list[float]] = {"val_loss": [], "learning_rate": []}
    rates_after = []
    for epoch, value in enumerate(val_losses):
        history["val_loss"].append(value)
        history["learning_rate"].append(float(keras.ops.convert_to_numpy(live_model.optimizer.learning_rate)))
        live.on_epoch_end(epoch, {"val_loss": value})
        rates_after.append(float(keras.ops.convert_to_numpy(live_model.optimizer.learning_rate)))
    assert rates_after[3] == rates_after[0] and rates_after[4] < rates_after[3]  # the schedule did reduce
    for killed_after in range(1, len(val_losses)):  # a kill after each epoch, then the same epochs again
        model = _adam_model(rates_after[killed_after - 1])  # the backup brings the rate back
        resumed = ResumablePlateau(previous={k: v[:killed_after] for k, v in history.items()}, **kwargs)
        resumed.set_model(model)
        resumed.on_train_begin()
        replay = keras.callbacks.ReduceLROnPlateau(**kwargs)  # the uninterrupted run, stopped at the same epoch
        replay.set_model(_adam_model(0.03))
        replay.on_train_begin()
        for epoch, value in enumerate(val_losses[:killed_after]):
            replay.on_epoch_end(epoch, {"val_loss": value})
        assert (float(resumed.best), resumed.wait, resumed.cooldown_counter) == \
            (float(replay.best), replay.wait, replay.cooldown_counter), killed_after
        for epoch in range(killed_after, len(val_losses)):
            resumed.on_epoch_end(epoch, {"val_loss": val_losses[epoch]})
            assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(
                rates_after[epoch]), (killed_after, epoch)


def test_a_run_killed_after_early_stopping_fired_is_not_trained_further():
    """Resumed, the restored patience counter only stopped fit after one more epoch had been trained."""
    from sound_tf.trainer import _early_stopped

    config = apply_overrides(Config(), {"train.early_stopping_patience": 2})
    val_losses = [1.0, 0.7, 0.75, 0.72, 0.69, 0.71, 0.73]
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    stopper.set_model(_adam_model(0.01))
    stopper.on_train_begin()
    stopped_after = None
    for epoch, value in enumerate(val_losses):
        stopper.on_epoch_end(epoch, {"val_loss": value})
        if stopper.model.stop_training:
            stopped_after = epoch + 1
            break
    assert stopped_after == 4  # 0.7 at epoch 2, then two epochs without improvement
    assert [_early_stopped({"val_loss": val_losses[:n]}, config) for n in range(1, stopped_after + 1)] == \
        [n == stopped_after for n in range(1, stopped_after + 1)]


def test_normalisation_statistics_sample_every_class_of_a_large_split(monkeypatch):
    """The first 1,024 clips of a split ordered by class could leave whole classes out."""
    from sound_tf import trainer

    seen: list[list[str]] = []
    monkeypatch.setattr(trainer.pipeline, "evaluation_dataset",
                        lambda paths, labels, config, **kwargs: seen.append(paths) or [])
    monkeypatch.setattr(trainer, "compute_feature_stats", lambda config, waves: None)
    paths = [f"{label}_{i}.wav" for label in ("a", "b", "c") for i in range(40)]  # a split: ordered by class
    labels = [i // 40 for i in range(120)]
    trainer.feature_statistics(Config(), paths, labels, max_clips=30)
    trainer.feature_statistics(Config(), paths, labels, max_clips=30)
    trainer.feature_statistics(Config(), paths[:20], labels[:20], max_clips=30)
    assert seen[0] == seen[1] and len(seen[0]) == 30 and {p[0] for p in seen[0]} == {"a", "b", "c"}
    assert seen[2] == paths[:20]  # a split within the limit is used whole, in order


def test_normalisation_statistics_read_the_clips_once_without_keeping_them_in_memory(tmp_path, monkeypatch):
    """The statistics are one pass over up to 1,024 clips: a memory cache of them (451 MB of float32 for
    ESC-50's 5-s clips at 22.05 kHz) only raised the run's resident memory, by 0.7 GB there, for good."""
    import tensorflow as tf

    from sound_tf import pipeline, trainer

    config = apply_overrides(Config(), {"audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5, "labels": ["a", "b"]})
    paths = []
    for i in range(6):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], np.full(SR // 2, 0.1 * (i + 1), np.float32), SR, subtype="PCM_16")
    built = []
    original = pipeline.evaluation_dataset
    monkeypatch.setattr(trainer.pipeline, "evaluation_dataset",
                        lambda *args, **kwargs: built.append(original(*args, **kwargs)) or built[-1])
    assert pipeline.memory_cache_format(paths) == "float32"  # they would fit the memory cache
    mean, variance = trainer.feature_statistics(config, paths, [i % 2 for i in range(6)])
    assert mean.shape == variance.shape == (config.features.num_mel_bins,) and np.all(np.isfinite(mean))
    assert len(built) == 1
    ops = {node.op for node in tf.compat.v1.GraphDef.FromString(built[0]._as_serialized_graph().numpy()).node}
    assert "TensorSliceDataset" in ops and not any(op.startswith("CacheDataset") for op in ops), sorted(ops)


def test_training_and_validation_clips_share_one_memory_cache_budget(tmp_path, monkeypatch):
    """SOUND_TF_MEMORY_CACHE_MB bounds the clips a training process keeps: the training split takes its
    share first and validation gets the rest (each had the whole budget, so together up to twice it)."""
    from types import SimpleNamespace

    import tensorflow as tf

    from sound_tf import pipeline, trainer
    from sound_tf.datasets import Item

    config = apply_overrides(Config(), {"audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5, "labels": ["a", "b"],
                                        "augment.enabled": False})
    splits = {}
    for name, count in (("train", 6), ("val", 4)):
        splits[name] = []
        for i in range(count):
            path = tmp_path / f"{name}{i}.wav"
            sf.write(path, np.full(SR // 2, 0.1, np.float32), SR, subtype="PCM_16")
            splits[name].append(Item(source=str(path), cached=str(path), label="ab"[i % 2], label_index=i % 2))
    data = SimpleNamespace(splits=splits)
    train_bytes, val_bytes = (sum(os.path.getsize(item.cached) for item in splits[name]) for name in ("train", "val"))

    kept = []  # (clips, memory cache format) per dataset built
    original = pipeline._decoded
    monkeypatch.setattr(pipeline, "_decoded", lambda paths, labels, cache: kept.append((len(paths), cache))
                        or original(paths, labels, cache))
    for budget, val_cache in ((2 * (train_bytes + val_bytes), "float32"),  # both fit as float32
                              (2 * train_bytes + val_bytes, "int16"),  # validation as int16 in what is left
                              (2 * train_bytes + val_bytes // 2, None)):  # validation no longer fits
        monkeypatch.setenv("SOUND_TF_MEMORY_CACHE_MB", str(budget / 2**20))
        assert pipeline.memory_cache_format([item.cached for item in splits["val"]]) == "float32"  # alone: fits
        kept.clear()
        _, val_ds = trainer.training_datasets(config, data)
        assert kept == [(6, "float32"), (4, val_cache)], budget  # the training clips first, as float32
        assert val_ds.element_spec[0].dtype == tf.float32  # int16 in memory, float32 out


def test_a_run_whose_export_was_stopped_exports_when_the_command_runs_again(tmp_path):
    """The run was marked done before its export: the same command was refused (--out) or trained anew."""
    import shutil

    from sound_tf.trainer import read_state, write_state

    data = make_tree(tmp_path / "data", corrupt=False)
    out = tmp_path / "run"
    profile = tmp_path / "quick.toml"
    profile.write_text('name = "quick"\nartefacts = ["float32"]\nrepresentative_windows = 4\nlatency_runs = 1\n')
    flags = _flags(data, out, "--epochs", "1", "--export", str(profile))
    assert train.main(flags) == 0
    assert read_state(out)["export_done"] is True and (out / "export" / "export.json").is_file()
    history = (out / "history.csv").read_bytes()
    shutil.rmtree(out / "export")
    write_state(out, export_done=False)  # as a kill during the export leaves it
    assert train.main(flags) == 0
    assert (out / "export" / "export.json").is_file() and read_state(out)["export_done"] is True
    assert (out / "history.csv").read_bytes() == history  # not trained again
    assert train.main(flags) == 2  # exported now: a finished run, as before


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie waiting to be reaped (Linux ``/proc``)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux ``/proc``)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_killed_train_command_takes_its_export_with_it_and_frees_the_folder(tmp_path):
    """The export child outlived a killed `train --export`: unlocked, the same command run again exported
    the run alongside it (both writing the bundle); then, holding the lock, it made the re-run be refused
    naming the dead command's pid until it ended. It now ends with its parent (PR_SET_PDEATHSIG), so the
    folder is free at once and the re-run exports again."""
    from sound_tf.locks import claim_folder, release_folder

    data = make_tree(tmp_path / "data", corrupt=False)
    out = tmp_path / "run"
    profile = tmp_path / "quick.toml"  # the child is still starting TensorFlow when its parent is killed
    profile.write_text('name = "quick"\nartefacts = ["float32"]\nrepresentative_windows = 4\nlatency_runs = 1\n')
    command = [sys.executable, "-m", "sound_tf.train", *_flags(data, out, "--epochs", "1", "--export", str(profile))]
    parent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"})
    try:
        for line in parent.stdout:
            if "exporting:" in line:
                break
        # the command as a user types it again (it lacked "python": "exporting: -m sound_tf.export ...")
        # (_flags passes --quiet, which the export is given too)
        assert line.rstrip().endswith(f"exporting: python -m sound_tf.export {out} --profile {profile} --quiet"), line
        deadline = time.time() + 60
        while not _children(parent.pid) and time.time() < deadline:  # the export process has started
            time.sleep(0.05)
        children = _children(parent.pid)
        assert children, "the export process did not start"
        parent.kill()
        parent.wait(timeout=30)
        deadline = time.time() + 10
        while any(map(_running, children)) and time.time() < deadline:
            time.sleep(0.05)
        assert not any(map(_running, children)), "the export outlived its command"
        assert claim_folder(out) is None  # free at once
        release_folder(out)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_history_logs_the_learning_rate_each_epoch_began_with(tmp_path):
    """With a cosine warm-up the column showed each epoch's last rate: epoch 0 was not logged at its 1% start."""
    from sound_tf.trainer import lr_schedule, steps_per_epoch

    data = make_tree(tmp_path / "data", corrupt=False)
    out = tmp_path / "run"
    assert train.main(_flags(data, out, "--epochs", "3", "--learning-rate", "0.01",
                             "--set", "train.warmup_epochs=1", "--set", "train.early_stopping_patience=9")) == 0
    with (out / "history.csv").open(newline="") as handle:
        logged = [float(row["learning_rate"]) for row in csv.DictReader(handle)]
    config = Config.load(out)
    with (out / "split.csv").open(newline="") as handle:
        steps = steps_per_epoch(sum(row["split"] == "train" for row in csv.DictReader(handle)), config)
    schedule = lr_schedule(config, steps)
    expected = [float(schedule(epoch * steps)) for epoch in range(3)]
    assert logged == pytest.approx(expected, rel=1e-5) and logged[0] == pytest.approx(0.01 * 0.01)


def test_train_log_has_a_line_per_epoch_with_the_numbers_of_history_csv(tmp_path):
    """Keras's progress bars reach stdout only (a redirected one gets a stream of backspaces) and --quiet
    turns them off: train.log said nothing between "training ..." and "evaluated ..." over all the epochs
    (80 in the esc50 recipe)."""
    data = make_tree(tmp_path / "data", corrupt=False)
    out = tmp_path / "run"
    assert train.main(_flags(data, out, "--epochs", "2", "--set", "train.early_stopping_patience=9")) == 0
    lines = (out / "train.log").read_text().splitlines()
    epochs = [line for line in lines if " epoch " in line and "/2: " in line]
    with (out / "history.csv").open(newline="") as handle:
        history = list(csv.DictReader(handle))
    assert len(epochs) == len(history) == 2, lines
    for number, (line, row) in enumerate(zip(epochs, history), start=1):
        assert f"epoch {number}/2: loss {float(row['loss']):.4f}, accuracy {float(row['accuracy']):.4f}, " \
               f"val_loss {float(row['val_loss']):.4f}, val_accuracy {float(row['val_accuracy']):.4f}, " \
               f"learning rate {float(row['learning_rate']):.3g} (" in line, line
    starts = [i for i, line in enumerate(lines) if " training default " in line]
    ends = [i for i, line in enumerate(lines) if " evaluated " in line]
    assert starts and ends and starts[0] < lines.index(epochs[0]) < lines.index(epochs[1]) < ends[0]
    # then the test split's summary, with metrics.json's numbers, and last the run folder
    metrics = json.loads((out / "metrics.json").read_text())
    head = f"accuracy {metrics['accuracy']:.4f}  balanced accuracy {metrics['balanced_accuracy']:.4f}  macro F1 "
    assert any(head in line for line in lines[ends[0]:]), lines
    assert lines[-1].endswith(f" run folder: {out}"), lines[-1]


def test_the_final_summary_is_given_the_kept_epochs_validation_accuracy_and_the_training_class_counts(
        tmp_path, monkeypatch):
    """Mutation audit of train's summary: the lines after training are summary_lines of the test metrics with the
    training split's class counts (its data advice) and the kept epoch's validation accuracy (the line of a test
    accuracy far below it); dropping either passed every test, as a tiny run never meets the gap. A stand-in for
    train_run gives both, and the command hands them on and logs the lines, then the run folder."""
    from sound_tf import evaluation, metrics, trainer

    data = make_tree(tmp_path / "data", clips_per_class=2, corrupt=False)
    out = tmp_path / "run"
    counts = {"high": 5, "low": 4, "mid": 6}
    validation = {"accuracy": 0.875, "num_examples": 24}
    scores = {"accuracy": 0.25, "num_examples": 24}

    def trained(config, run_dir, **kwargs):
        config.save(run_dir)  # a run that kept something: its folder is not removed as unstarted
        return trainer.RunResult(run_dir=run_dir, config=config, model=None, metrics=scores, data="prepared",
                                 validation=validation)

    monkeypatch.setattr(trainer, "train_run", trained)
    monkeypatch.setattr(evaluation, "train_class_counts", lambda prepared: counts if prepared == "prepared" else None)
    handed: list[tuple] = []
    monkeypatch.setattr(metrics, "summary_lines", lambda given, **kwargs: handed.append((given, kwargs)) or
                        [f"summary of accuracy {given['accuracy']}"])
    assert train.main(_flags(data, out, "--epochs", "1")) == 0
    assert handed == [(scores, {"class_counts": counts, "validation": validation})]
    lines = (out / "train.log").read_text().splitlines()
    assert lines[-2].endswith(" summary of accuracy 0.25") and lines[-1].endswith(f" run folder: {out}")


def test_a_redirected_stdout_gets_the_epoch_lines_not_a_stream_of_progress_bar_redraws(tmp_path, capsys):
    """Keras draws its bars with carriage returns and backspaces on any POSIX stdout, a file or a pipe too:
    a redirected ESC-50 run wrote about 270 bytes of redraws per step into one line per epoch (about 35 MB
    for a 10-fold UrbanSound8K cross-validation of 60 epochs). On a terminal the bars stay."""
    data = make_tree(tmp_path / "data", corrupt=False)
    flags = [flag for flag in _flags(data, tmp_path / "run", "--epochs", "1") if flag != "--quiet"]
    assert train.main(flags) == 0
    out = capsys.readouterr().out
    assert "\x08" not in out and "\r" not in out and "\x1b[" not in out, out[:500]
    assert len([line for line in out.splitlines() if " epoch 1/1: loss " in line]) == 1, out


def test_claims_count_a_deleted_lock_file_is_locked_anew_and_emptying_keeps_what_is_asked(tmp_path):
    """Nested work in one process (crossval's command line and run_crossval) claims a folder twice: the
    first release must not free it. A lock file deleted under a holder guards nothing: claiming again locks
    the new file. empty_folder keeps the lock and the names in ``keep`` (crossval --overwrite: its train.log)."""
    from sound_tf.locks import claim_folder, empty_folder, release_folder

    folder = tmp_path / "run"
    assert claim_folder(folder) is None and claim_folder(folder) is None  # two claims
    release_folder(folder)
    assert not _claims(folder)  # one claim left: still locked
    release_folder(folder)
    assert _claims(folder)

    assert claim_folder(folder) is None
    (folder / ".lock").unlink()  # e.g. the folder emptied by hand while the run went on
    assert claim_folder(folder) is None and (folder / ".lock").is_file()
    assert not _claims(folder)  # the new lock file is locked
    release_folder(folder)
    assert not _claims(folder)  # the outer claim, made on the deleted file, still holds the new one
    release_folder(folder)
    assert _claims(folder)

    (folder / "train.log").write_text("log of this command\n")
    (folder / "old.txt").write_text("x")
    (folder / "fold_1").mkdir()
    (folder / "fold_1" / "metrics.json").write_text("{}")
    empty_folder(folder, keep=("train.log",))
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "train.log"]
    assert (folder / "train.log").read_text() == "log of this command\n"


def test_a_dataset_layout_with_a_recipe_chooses_it_unless_the_format_says_otherwise(tmp_path, capsys):
    """ESC-50 or UrbanSound8K data given without --pipeline train with their recipe (detected, or by --format
    auto or the named format); --format folder names the folder recipe; undetectable paths get none."""
    from sound_tf.datasets import ESC50_META, US8K_META

    esc50, us8k = tmp_path / "ESC-50", tmp_path / "UrbanSound8K"
    for root, meta in ((esc50, ESC50_META), (us8k, US8K_META)):
        (root / meta).parent.mkdir(parents=True)
        (root / meta).write_text("filename\n")
    for data_format in (None, "auto"):
        assert train.layout_recipe(str(esc50), data_format) == "esc50"
        assert (f"sound_tf: {esc50} is an ESC-50 dataset: using the esc50 recipe (pipelines/esc50.toml; "
                "--pipeline NAME chooses another)") in capsys.readouterr().err
    # A format given is not a detected layout: the line must not call a plain folder an ESC-50 dataset.
    plain = tmp_path / "plain"
    (plain / "dog").mkdir(parents=True)
    for root in (esc50, plain):
        assert train.layout_recipe(str(root), "esc50") == "esc50"
        assert capsys.readouterr().err == ("sound_tf: --format esc50: using the esc50 recipe (pipelines/esc50.toml; "
                                           "--pipeline NAME chooses another)\n")
    assert train.layout_recipe(str(us8k), "auto") == "urbansound8k"
    capsys.readouterr()
    assert train.layout_recipe(str(esc50), "folder") == "folder"  # the format given wins over the layout
    assert capsys.readouterr().err == ("sound_tf: --format folder: using the folder recipe (pipelines/folder.toml; "
                                       "--pipeline NAME chooses another)\n")
    assert train.layout_recipe(str(tmp_path / "missing"), None) is None  # reported later, when it is loaded


def test_a_folder_per_class_tree_gets_the_folder_recipe_and_a_csv_the_built_in_defaults(tmp_path, capsys):
    """``--data my_sounds/`` alone trained with the built-in defaults (1-s clips, 40 epochs, patience 8), not
    pipelines/folder.toml (2-s clips, 60 epochs, patience 10), which only --pipeline folder gave; a CSV manifest
    has no recipe. --pipeline still wins, and flags and --set still override the recipe."""
    from sound_tf.config import config_from_recipe

    tree = make_tree(tmp_path / "my_sounds", clips_per_class=1, corrupt=False)
    capsys.readouterr()
    got = config_from_flags("--data", str(tree))
    assert got == config_from_recipe("folder", {"data.path": str(tree)})
    assert (got.data.format, got.audio.sample_rate_hz, got.audio.clip_seconds, got.train.epochs,
            got.train.early_stopping_patience) == ("folder", 16000, 2.0, 60, 10)
    assert capsys.readouterr().err == (f"sound_tf: {tree} is a folder-per-class dataset: using the folder recipe "
                                       f"(pipelines/folder.toml; --pipeline NAME chooses another)\n")
    named = config_from_flags("--data", str(tree), "--format", "folder")
    assert named == got and capsys.readouterr().err == (
        "sound_tf: --format folder: using the folder recipe (pipelines/folder.toml; --pipeline NAME chooses another)\n")
    # flags and --set override the recipe; what they leave is the recipe's
    flagged = config_from_flags("--data", str(tree), "--clip-seconds", "0.5", "--epochs", "3",
                                "--set", "train.early_stopping_patience=4")
    assert (flagged.audio.clip_seconds, flagged.train.epochs, flagged.train.early_stopping_patience,
            flagged.train.learning_rate) == (0.5, 3, 4, 0.003)
    capsys.readouterr()
    # --pipeline wins, without a line
    esc = config_from_flags("--data", str(tree), "--pipeline", "esc50")
    assert (esc.audio.sample_rate_hz, esc.audio.clip_seconds, esc.train.epochs) == (22050, 5.0, 80)
    assert capsys.readouterr().err == ""
    # a CSV manifest of the same files keeps the built-in defaults
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,label\n" + "".join(f"{p},{p.parent.parent.name}\n" for p in sorted(tree.rglob("*.wav"))))
    csv_config = config_from_flags("--data", str(manifest))
    assert csv_config == apply_overrides(Config(), {"data.path": str(manifest)})
    assert (csv_config.data.format, csv_config.audio.clip_seconds, csv_config.train.epochs,
            csv_config.train.early_stopping_patience) == ("auto", 1.0, 40, 8)
    assert capsys.readouterr().err == ""
    # the demo, a bare command, keeps its own recipe
    demo = config_from_flags()
    assert (demo.data.format, demo.audio.clip_seconds, demo.train.epochs) == ("demo", 1.0, 60)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["crossval", "tune"])
def test_crossval_and_tune_on_a_folder_per_class_tree_use_the_folder_recipe(tmp_path, capsys, command):
    """As train: ``crossval --data my_sounds/`` and ``tune --data my_sounds/`` alone took the built-in defaults (1-s
    clips, 40 epochs), not pipelines/folder.toml; their flags still override it, --pipeline still wins."""
    import importlib

    from sound_tf.config import config_from_recipe

    parser = importlib.import_module(f"sound_tf.{command}").build_parser()
    tree = make_tree(tmp_path / "my_sounds", clips_per_class=1, corrupt=False)
    capsys.readouterr()
    config = train.config_from_args(parser.parse_args(["--data", str(tree)]))
    assert config == config_from_recipe("folder", {"data.path": str(tree)})
    assert (config.audio.clip_seconds, config.train.epochs, config.train.early_stopping_patience) == (2.0, 60, 10)
    assert capsys.readouterr().err == (f"sound_tf: {tree} is a folder-per-class dataset: using the folder recipe "
                                       f"(pipelines/folder.toml; --pipeline NAME chooses another)\n")
    flagged = train.config_from_args(parser.parse_args(["--data", str(tree), "--clip-seconds", "0.5"]))
    assert (flagged.audio.clip_seconds, flagged.train.epochs) == (0.5, 60)
    demo = train.config_from_args(parser.parse_args(["--data", str(tree), "--pipeline", "demo"]))
    assert (demo.audio.clip_seconds, demo.train.early_stopping_patience) == (1.0, 12)


def test_a_speech_commands_folder_with_no_background_recordings_trains_with_generated_noise(tmp_path, capsys):
    """A Speech Commands tree without its lists is recognised by its ``_background_noise_`` folder; one whose folder
    holds no recordings (a partial copy, or one's own words in its layout beside an empty folder) had that folder
    picked as augment.noise_dir all the same, and the run was refused for it ("holds no audio files"), a folder the
    user never named. It gets generated noise, as other data does, and no line naming the folder."""
    from sound_tf.errors import ConfigError

    root = make_speech_commands(tmp_path / "own_words", lists=False)
    for recording in (root / "_background_noise_").glob("*.wav"):
        recording.unlink()  # README.md stays, as in the real folder
    capsys.readouterr()
    got = config_from_flags("--data", str(root))
    assert (got.data.format, got.augment.noise_dir, got.augment.noise_probability) == ("speech_commands", None, 0.5)
    assert capsys.readouterr().err == (f"sound_tf: {root} is a Speech Commands dataset: using the speech_commands "
                                       f"recipe (pipelines/speech_commands.toml; --pipeline NAME chooses another)\n")
    # named with --set, the same folder is still refused, as the user asked for it
    with pytest.raises(ConfigError, match=r"^--set augment.noise_dir=.*_background_noise_: holds no audio files"):
        config_from_flags("--data", str(root), "--set", f"augment.noise_dir={root / '_background_noise_'}")


def test_a_speech_commands_folder_gets_its_recipe_and_its_background_noise(tmp_path, capsys):
    """``--data speech_commands_v0.02`` alone trained as a folder per class with the built-in defaults and
    generated noise, its ``_background_noise_`` recordings a class instead of the noise mixed in."""
    from sound_tf.config import config_from_recipe

    root = make_speech_commands(tmp_path / "speech_commands_v0.02")
    noise = str(root / "_background_noise_")
    capsys.readouterr()
    got = config_from_flags("--data", str(root), "--epochs", "3")
    assert got == config_from_recipe("speech_commands", {"data.path": str(root), "train.epochs": 3,
                                                         "augment.noise_dir": noise})
    assert (got.data.format, got.audio.sample_rate_hz, got.audio.clip_seconds, got.feature_shape) == (
        "speech_commands", 16000, 1.0, (98, 40))
    assert capsys.readouterr().err == (
        f"sound_tf: {root} is a Speech Commands dataset: using the speech_commands recipe "
        f"(pipelines/speech_commands.toml; --pipeline NAME chooses another)\n"
        f"sound_tf: augment.noise_dir: the dataset's background noise, {noise} (--set augment.noise_dir=DIR mixes "
        f"in other recordings, =null generated noise)\n")
    got.save(tmp_path / "run")  # the run's config.json keeps it
    assert json.loads((tmp_path / "run" / "config.json").read_text())["augment"]["noise_dir"] == noise
    # named by --format, and a copy without its lists, alike
    assert config_from_flags("--data", str(root), "--format", "speech_commands").augment.noise_dir == noise
    bare = make_speech_commands(tmp_path / "bare", lists=False)
    assert config_from_flags("--data", str(bare)).augment.noise_dir == str(bare / "_background_noise_")
    # a noise folder or generated noise chosen, noise or augmentation off, or another format: left alone
    capsys.readouterr()
    assert config_from_flags("--data", str(root), "--set", "augment.noise_dir=null").augment.noise_dir is None
    assert config_from_flags("--data", str(root), "--set", f"augment.noise_dir={tmp_path}").augment.noise_dir == \
        str(tmp_path)
    assert config_from_flags("--data", str(root), "--no-augment").augment.noise_dir is None
    assert config_from_flags("--data", str(root), "--set", "augment.noise_probability=0").augment.noise_dir is None
    as_folder = config_from_flags("--data", str(root), "--format", "folder")
    assert (as_folder.data.format, as_folder.augment.noise_dir) == ("folder", None)
    assert "augment.noise_dir" not in capsys.readouterr().err
    # A run reproduced from another's split file, its folder given too, mixes in the same noise (it got generated
    # noise, unlike the run whose split it reads); a split file alone names no folder
    split = tmp_path / "split.csv"
    split.write_text("split,path,label,fold,group\n")
    again = config_from_flags("--data", str(root), "--set", f"data.split_file={split}")
    assert (again.data.split_file, again.augment.noise_dir) == (str(split), noise)
    assert config_from_flags("--set", f"data.split_file={split}").augment.noise_dir is None


def test_one_epoch_on_a_speech_commands_tree_trains_on_its_official_split_with_its_noise(tmp_path, capsys):
    """``--data`` alone: the speech_commands recipe, the lists' split by speaker, _background_noise_ mixed in
    and no class of its own. The lines saying which recipe and noise folder the run got are on stderr once and
    begin its train.log (they were printed before the run folder existed, and were in no log)."""
    root = make_speech_commands(tmp_path / "speech_commands_v0.02")
    out = tmp_path / "run"
    assert train.main(["--data", str(root), "--out", str(out), "--epochs", "1", "--batch-size", "8", "--quiet"]) == 0
    printed = capsys.readouterr()
    notices = [f"sound_tf: {root} is a Speech Commands dataset: using the speech_commands recipe "
               f"(pipelines/speech_commands.toml; --pipeline NAME chooses another)",
               f"sound_tf: augment.noise_dir: the dataset's background noise, {root / '_background_noise_'} "
               f"(--set augment.noise_dir=DIR mixes in other recordings, =null generated noise)"]
    assert [printed.err.count(line) for line in notices] == [1, 1] and not any(line in printed.out for line in notices)
    first = (out / "train.log").read_text().splitlines()[:2]
    assert [re.fullmatch(r"\d\d:\d\d:\d\d (.*)", line).group(1) for line in first] == notices, first
    config = Config.load(out)
    assert (config.labels, config.data.format, config.audio.sample_rate_hz) == (("no", "up", "yes"),
                                                                                 "speech_commands", 16000)
    assert config.augment.noise_dir == str(root / "_background_noise_")
    with (out / "split.csv").open() as f:
        rows = list(csv.DictReader(f))
    for split, listed in (("val", "validation_list.txt"), ("test", "testing_list.txt")):
        assert sorted(Path(r["path"]).relative_to(root).as_posix() for r in rows if r["split"] == split) == sorted(
            (root / listed).read_text().split())
    assert {r["group"] for r in rows if r["split"] == "train"} == {"0a7c2a8d", "1b4c9b89", "2c8d1f3e", "3d9e2a4f"}
    assert len(rows) == 36
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.asarray(metrics["confusion_matrix"]).sum() == 6 and set(metrics["per_class"]) == {"no", "up", "yes"}
    log = (out / "train.log").read_text()
    assert "train 24, val 6, test 6 (speech_commands, split from the data's folds (2: validation_list.txt" in log


def test_a_claimed_block_gives_the_folder_back_however_it_ends(tmp_path):
    """``claimed`` releases on an exception too (a failed search must not keep its folder locked), and a
    nested claim inside it leaves the folder held until the outer block ends."""
    from sound_tf.errors import ConfigError
    from sound_tf.locks import claimed

    folder = tmp_path / "search"
    with pytest.raises(RuntimeError, match="trial exploded"):
        with claimed(folder, "searching"):
            with claimed(folder, "searching"):  # nested: the inner end keeps it held
                pass
            assert not _claims(folder)
            raise RuntimeError("trial exploded")
    assert _claims(folder)
    holder = _hold(folder)
    try:
        with pytest.raises(ConfigError, match=rf"{folder}: in use by pid {holder.pid} on .*, which is searching"):
            with claimed(folder, "searching"):
                pass
    finally:
        holder.kill()
        holder.wait()


def _tiny_config(data, **more) -> Config:
    overrides = {"data.path": str(data), "data.format": "folder", "audio.sample_rate_hz": SR,
                 "audio.clip_seconds": 0.5, "augment.enabled": False, "model.widths": [8, 16],
                 "train.batch_size": 8, "train.warmup_epochs": 0}
    overrides.update(more)
    return apply_overrides(Config(), overrides)


def _scripted_run(tmp_path, monkeypatch, val_losses, val_accuracies=None, *, log=lambda m: None, **more):
    """train_run on tiny data whose epochs report ``val_losses`` (a callback ahead of the trainer's own
    overwrites Keras's validation numbers, as CSVLogger, checkpoint and early stopping then read them);
    returns the result and the weights after each epoch."""
    from sound_tf import trainer

    after_epoch: list[list[np.ndarray]] = []

    class Script(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = val_losses[epoch]
            if val_accuracies is not None:
                logs["val_accuracy"] = val_accuracies[epoch]
            after_epoch.append(self.model.get_weights())

    real = trainer._callbacks
    monkeypatch.setattr(trainer, "_callbacks", lambda *a, **k: [Script(), *real(*a, **k)])
    config = _tiny_config(make_tree(tmp_path / "data", clips_per_class=6, corrupt=False),
                          **{"train.epochs": len(val_losses), **more})
    result = trainer.train_run(config, tmp_path / "run", verbose=0, log=log, evaluate_test=False)
    return result, after_epoch


def test_the_run_keeps_the_weights_of_its_lowest_validation_loss(tmp_path, monkeypatch):
    val_losses = [1.0, 0.4, 0.7, 0.6, 0.9]  # best at epoch 2 of 5; training loss keeps falling
    result, after_epoch = _scripted_run(tmp_path, monkeypatch, val_losses,
                                        **{"train.early_stopping_patience": 10, "train.learning_rate": 0.02,
                                           "train.schedule": "constant"})
    assert result.history["val_loss"] == pytest.approx(val_losses)
    assert not all(np.array_equal(a, b) for a, b in zip(after_epoch[1], after_epoch[-1]))  # it did train on
    for kept, best in zip(result.model.get_weights(), after_epoch[1]):
        np.testing.assert_array_equal(kept, best)
    from sound_tf import frontend, models  # noqa: F401  (registers the custom layers)
    saved = keras.models.load_model(result.run_dir / "model.keras")
    for kept, best in zip(saved.get_weights(), after_epoch[1]):
        np.testing.assert_array_equal(kept, best)


def test_early_stopping_counts_epochs_without_a_lower_validation_loss(tmp_path, monkeypatch):
    # patience 3: best 0.5 at epoch 2, then 3 epochs without a lower val_loss -> stops after epoch 5,
    # before the 0.3 of epoch 6. Validation accuracy rises all along: it must not be what is watched.
    val_losses = [1.0, 0.5, 0.6, 0.55, 0.7, 0.3, 0.2, 0.1]
    lines: list[str] = []
    result, _ = _scripted_run(tmp_path, monkeypatch, val_losses, [0.1 * (i + 1) for i in range(8)],
                              log=lines.append, **{"train.early_stopping_patience": 3})
    assert len(result.history["loss"]) == 5
    assert result.history["val_loss"] == pytest.approx(val_losses[:5])
    # The log says so: it went from "epoch 5/8: ..." to the evaluation, as if the run had been cut short.
    ended = lines.index("early stopping ended training after epoch 5 of 8: the validation loss was not below "
                        "epoch 2's for 3 epochs (train.early_stopping_patience 3); the model keeps epoch 2's "
                        "weights, its lowest validation loss (0.5000; checkpoints/best.weights.h5)")
    assert lines[ended - 1].startswith("epoch 5/8: ")


def test_the_log_says_why_training_ended_and_which_epoch_the_model_keeps():
    from sound_tf import trainer

    config = apply_overrides(Config(), {"train.epochs": 4, "train.early_stopping_patience": 3})
    ended = trainer.how_training_ended
    all_epochs = {"loss": [2.0, 1.5, 1.2, 1.1], "val_loss": [1.0, 0.4, 0.7, 0.45]}
    assert ended(all_epochs, config, trainer.BEST_WEIGHTS) == (
        "training ended after its 4 epochs; the model keeps epoch 2's weights, its lowest validation loss "
        "(0.4000; checkpoints/best.weights.h5)")
    nan_stopped = {"loss": [2.0, float("nan")], "val_loss": [1.0, float("nan")]}  # TerminateOnNaN
    assert ended(nan_stopped, config, trainer.BEST_WEIGHTS) == (
        "training stopped after epoch 2 of 4 (a loss of NaN or inf ends it); the model keeps epoch 1's weights, "
        "its lowest validation loss (1.0000; checkpoints/best.weights.h5)")
    never = {"loss": [float("nan")], "val_loss": [float("nan")]}  # no best checkpoint was written
    assert ended(never, config, trainer.FINAL_WEIGHTS) == (
        "training ended after epoch 1 of 4; no epoch had a finite validation loss, so the model keeps the last "
        "epoch's weights (checkpoints/final.weights.h5)")


def test_the_kept_epochs_validation_accuracy_is_the_runs(tmp_path, monkeypatch):
    """The summary's validation/test gap (metrics.validation_gap) reads the validation accuracy of the weights the
    model keeps: the epoch of the lowest validation loss, or the last when it keeps the last."""
    from sound_tf import trainer

    history = {"val_loss": [1.0, 0.4, 0.7, 0.45], "val_accuracy": [0.3, 0.74, 0.6, 0.7]}
    assert trainer.kept_validation(history, trainer.BEST_WEIGHTS, 50) == {"accuracy": 0.74, "num_examples": 50}
    assert trainer.kept_validation(history, trainer.FINAL_WEIGHTS, 50) == {"accuracy": 0.7, "num_examples": 50}
    assert trainer.kept_validation({"val_loss": [1.0]}, trainer.BEST_WEIGHTS, 50) is None
    result, _ = _scripted_run(tmp_path, monkeypatch, [1.0, 0.4, 0.7], [0.25, 0.5, 0.75],
                              **{"train.early_stopping_patience": 10})
    assert result.validation == {"accuracy": 0.5, "num_examples": len(result.data.splits["val"])}
    assert result.validation["num_examples"] > 0


def test_the_kept_epoch_is_read_from_the_end_of_short_columns_and_none_when_it_has_no_accuracy():
    """Mutation audit of kept_validation: an accuracy column shorter than the loss column (a row whose cell was
    empty) was not read past its end, a NaN accuracy was not handed on, and a history with no finite loss is the
    last epoch's, as how_training_ended says the model keeps."""
    from sound_tf import trainer

    nan = float("nan")
    losses = [1.0, 0.4, 0.7]
    best = losses.index(min(losses))  # epoch 2
    short = {"val_loss": losses, "val_accuracy": [0.3, 0.74]}  # the last row without its accuracy
    assert trainer.kept_validation(short, trainer.BEST_WEIGHTS, 6) == {"accuracy": short["val_accuracy"][best],
                                                                       "num_examples": 6}
    assert trainer.kept_validation({"val_loss": [1.0, 0.5], "val_accuracy": [0.3]}, trainer.BEST_WEIGHTS, 6) is None
    assert trainer.kept_validation({"val_loss": [1.0, 0.5], "val_accuracy": [0.3, nan]},
                                   trainer.BEST_WEIGHTS, 6) is None
    never = {"val_loss": [nan, nan], "val_accuracy": [0.25, 0.5]}
    assert "keeps the last epoch's weights" in trainer.how_training_ended({"loss": [1.0, 1.0], **never}, Config(),
                                                                            trainer.BEST_WEIGHTS)
    assert trainer.kept_validation(never, trainer.BEST_WEIGHTS, 6) == {"accuracy": never["val_accuracy"][-1],
                                                                       "num_examples": 6}


def _written_run(run: Path, history: list[tuple[float, float, float, float]], *,
                 augmented: bool | None = None, overrides: dict[str, Any] | None = None) -> Path:
    """A run folder with its ``history.csv`` (rows of accuracy, loss, val_accuracy, val_loss, as Keras's CSVLogger
    writes them), a 10-clip ``split.csv``, the best epoch's weights file and, when ``augmented`` is given, a
    ``config.json`` with that ``augment.enabled`` and ``overrides``: what run_validation reads. No training."""
    from sound_tf import trainer

    (run / "checkpoints").mkdir(parents=True)
    if augmented is not None:
        apply_overrides(Config(), {"augment.enabled": augmented, **(overrides or {})}).save(run)
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"] + [f"{i},{a},{l},{va},{vl}"
                                                            for i, (a, l, va, vl) in enumerate(history)]
    (run / "history.csv").write_text("\n".join(rows) + "\n")
    (run / "split.csv").write_text("split,path,label\n" + "".join(f"val,v{i}.wav,{i % 10}\n" for i in range(10)))
    (run / trainer.BEST_WEIGHTS).write_bytes(b"")
    return run


#: How train's fit advice says to rerun with the settings it names: the same --out is refused.
TRAIN_RERUN = (" (in a new run: a new --out, or --overwrite to replace this one; an --out that holds a finished run "
               "is refused)")


def test_a_model_near_chance_is_told_it_overfit_or_to_train_more_as_its_history_says(tmp_path):
    """A model near chance was told 'more updates (epochs, a smaller batch)' whatever its history: FSDD's fold 1
    without augmentation kept epoch 1 of 6 while training accuracy rose to 0.90 and validation stayed at 0.27 at
    best; more epochs fit its training clips further. Its history (written here, the run's numbers) now reads as
    overfit, with the augmentation, model size and data advice; a run whose validation loss still fell at its last
    epoch, or whose training accuracy stayed near chance with an early best epoch, keeps the advice to train more."""
    from sound_tf import trainer
    from sound_tf.metrics import metrics_from_confusion, summary_lines

    labels = [str(digit) for digit in range(10)]
    at_chance = metrics_from_confusion(np.eye(10, dtype=int) * 2 + 1, labels)  # 3 of 12 right per class: 0.25
    head = "the model scores near chance (balanced accuracy 0.25; chance is 0.10 with 10 classes): "
    more = "as a whole it needs more training data or more updates (epochs, a smaller batch), not one class"

    def advice(history):
        validation = trainer.run_validation(_written_run(tmp_path / f"run{len(list(tmp_path.iterdir()))}", history))
        return [line for line in summary_lines(at_chance, validation=validation) if line.startswith(head)]

    fold_1 = [(0.129, 2.957, 0.146, 2.269), (0.383, 1.779, 0.184, 2.470), (0.653, 1.019, 0.264, 2.504),
              (0.819, 0.578, 0.240, 2.486), (0.869, 0.430, 0.260, 2.520), (0.896, 0.383, 0.272, 2.442)]
    assert advice(fold_1) == [head + "it overfit its training clips: training accuracy reached 0.90 by epoch 6 while "
                              "validation accuracy was at most 0.27, and the validation loss was lowest at epoch 1 of "
                              "6, whose weights it keeps: more epochs will not help; try augmentation (--no-augment "
                              "turns it off; stronger if it was on), a smaller model (model.widths) or more training "
                              "data" + TRAIN_RERUN + ", not one class"]
    still_falling = [(0.106, 3.146, 0.116, 2.356), (0.154, 2.493, 0.158, 2.199), (0.280, 2.121, 0.212, 2.074),
                     (0.381, 1.768, 0.212, 2.048), (0.416, 1.657, 0.314, 1.988), (0.455, 1.579, 0.326, 1.960)]
    assert advice(still_falling) == [head + more]  # kept its last epoch: more updates may help
    never_fit = [(0.10, 2.30, 0.12, 2.29), (0.12, 2.29, 0.10, 2.31), (0.13, 2.28, 0.11, 2.32),
                 (0.14, 2.27, 0.10, 2.33)]
    assert advice(never_fit) == [head + more]  # an early best epoch, training accuracy itself at chance
    # the edges: two epochs after the best with a gap of 0.40 is overfit; one epoch after, or a gap of 0.39, is not
    edge = [(0.30, 2.0, 0.20, 1.9), (0.50, 1.5, 0.30, 1.8), (0.60, 1.2, 0.25, 2.0), (0.70, 0.9, 0.28, 2.1)]
    assert "it overfit its training clips" in advice(edge)[0]
    assert advice(edge[:3] + [(0.69, 0.9, 0.28, 2.1)]) == [head + more]
    assert advice(edge[:3]) == [head + more]


def test_the_overfit_advice_turns_augmentation_on_or_stronger_as_the_runs_config_json_says(tmp_path):
    """The advice to a model that overfit said 'try augmentation (--no-augment turns it off; stronger if it was on)':
    it could not tell which. run_validation reads from the run's config.json whether it augmented (training passes
    its config's): with it off, or on with no transform that acts, the advice is to turn it on, with it on to raise
    the settings it names; without a config.json, the old words."""
    from sound_tf import trainer
    from sound_tf.metrics import STRONGER_AUGMENT_KEYS, metrics_from_confusion, summary_lines

    labels = [str(digit) for digit in range(10)]
    at_chance = metrics_from_confusion(np.eye(10, dtype=int) * 2 + 1, labels)  # 3 of 12 right per class: 0.25
    fold_1 = [(0.129, 2.957, 0.146, 2.269), (0.383, 1.779, 0.184, 2.470), (0.653, 1.019, 0.264, 2.504),
              (0.819, 0.578, 0.240, 2.486), (0.869, 0.430, 0.260, 2.520), (0.896, 0.383, 0.272, 2.442)]

    def advice(augmented, **overrides):
        run = _written_run(tmp_path / f"run_{augmented}_{len(overrides)}", fold_1, augmented=augmented,
                           overrides=overrides)
        validation = trainer.run_validation(run)
        near = [line for line in summary_lines(at_chance, validation=validation) if "near chance" in line]
        assert len(near) == 1 and "it overfit its training clips" in near[0]
        return near[0].split("more epochs will not help; ")[1]

    off = ("try augmentation (it was off: train without --no-augment, with an augment.*_probability above 0), "
           "a smaller model (model.widths) or more training data" + TRAIN_RERUN + ", not one class")
    assert advice(False) == off
    # on, with no transform that acts (a tuning space's augment_strength of 0): told it was off, not to raise them
    nothing = {f"augment.{field}": 0.0 for field in AugmentConfig.__dataclass_fields__
               if field.endswith("_probability")}
    assert advice(True, **nothing) == off
    assert advice(True) == ("try stronger augmentation (it was on: raise augment.noise_probability, "
                            "augment.pitch_probability, augment.mixup_probability or augment.spec_time_mask_count), a "
                            "smaller model (model.widths) or more training data" + TRAIN_RERUN + ", not one class")
    assert advice(None) == ("try augmentation (--no-augment turns it off; stronger if it was on), a smaller model "
                            "(model.widths) or more training data" + TRAIN_RERUN + ", not one class")
    fields = {name for name in AugmentConfig.__dataclass_fields__}
    assert {key.split(".", 1)[1] for key in STRONGER_AUGMENT_KEYS} <= fields  # settings a user can raise
    # training hands its config's switch on, as run_validation reads it
    history = {"accuracy": [row[0] for row in fold_1], "val_accuracy": [row[2] for row in fold_1],
               "val_loss": [row[3] for row in fold_1]}
    assert trainer.kept_validation(history, trainer.BEST_WEIGHTS, 10, augmented=False)["overfit"]["augmented"] is False
    assert "augmented" not in trainer.kept_validation(history, trainer.BEST_WEIGHTS, 10)["overfit"]


def test_a_model_that_underfits_with_augmentation_on_is_told_that_augmentation_slows_it(tmp_path):
    """A model whose training accuracy ended low and near its validation accuracy, with augmentation on, got no
    hint that augmentation makes a short run or a small model learn slower (a small UrbanSound8K look-alike, 8
    epochs: 80.0% with augmentation, 94.7% without). Its history (the demo's, 40 clips per class, model.widths
    [16, 32], 8 epochs with augmentation: training accuracy 0.23 at the end, validation at best 0.48, test 0.43, where
    --no-augment tested 0.72) now gets a line saying so; the same
    history without augmentation, a model whose training accuracy pulled away (the gap's edge) or one that learnt
    its training clips or validates well (above 0.90) gets none."""
    from sound_tf import trainer
    from sound_tf.metrics import UNDERFIT_ACCURACY_GAP, UNDERFIT_MAX_ACCURACY, metrics_from_confusion, summary_lines

    labels = [str(digit) for digit in range(5)]
    fair = metrics_from_confusion(np.eye(5, dtype=int) * 8 + 1, labels)  # 9 of 13 right per class: not near chance
    demo = [(0.093, 3.993, 0.185, 2.548), (0.129, 2.673, 0.185, 2.154), (0.133, 2.489, 0.241, 2.038),
            (0.190, 2.333, 0.333, 1.889), (0.194, 2.215, 0.407, 1.906), (0.214, 2.160, 0.389, 1.843),
            (0.230, 2.160, 0.481, 1.786), (0.226, 2.057, 0.463, 1.748)]

    def lines(history, augmented, patience=None):
        overrides = {"train.early_stopping_patience": patience} if patience is not None else None
        validation = trainer.run_validation(_written_run(tmp_path / f"run{len(list(tmp_path.iterdir()))}", history,
                                                         augmented=augmented, overrides=overrides))
        return [line for line in summary_lines(fair, validation=validation) if "underfits" in line]

    assert lines(demo, True) == [
        "training accuracy ended at 0.23 (epoch 8, on augmented clips) and validation accuracy was at most 0.48: the "
        "model underfits, and augmentation, which was on, makes a short run or a small model learn slower; try more "
        "epochs (--epochs), a larger model (model.widths), or --no-augment to check what augmentation costs this run"
        + TRAIN_RERUN]
    assert lines(demo, False) == [] and lines(demo, None) == []  # off, or not known: nothing to say of it
    # the same accuracies, but the validation loss lowest two epochs before the end: with a patience of 2, early
    # stopping's plateau, where more epochs would not help; one epoch before the end it was still falling
    plateau = demo[:6] + [(0.230, 2.160, 0.481, 1.70), (0.226, 2.057, 0.463, 1.75), (0.226, 2.05, 0.46, 1.76)]
    assert lines(plateau, True, patience=2) == []
    assert len(lines(plateau[:-1], True, patience=2)) == 1
    # with the default patience (8) early stopping did not end it: the run ran out of epochs, as a cosine schedule's
    # last ones (learning rate near 0) leave the loss flat; 180 FSDD digits kept epoch 38 of 40 and said nothing
    assert Config().train.early_stopping_patience > 2 and len(lines(plateau, True)) == 1
    assert len(lines(plateau, True, patience=3)) == 1  # 2 epochs after the lowest: 1 short of patience 3
    assert lines(plateau + [(0.226, 2.05, 0.46, 1.76)], True, patience=3) == []  # 3 after it: early stopping's
    # the edges: training accuracy just under the gap above validation's best underfits, at the gap it does not
    best_val = 0.5
    below = [(0.3, 2.0, best_val, 1.5), (best_val + UNDERFIT_ACCURACY_GAP - 0.01, 1.0, 0.45, 1.4)]
    assert len(lines(below, True)) == 1
    assert lines([below[0], (best_val + UNDERFIT_ACCURACY_GAP, 1.0, 0.45, 1.4)], True) == []
    # a model whose training clips are nearly all right has little left to learn from them, whatever validation says,
    # and one that validates above the same edge (augmented training clips scored lower) is not held back much
    assert len(lines([(0.8, 1.0, 0.85, 0.5), (UNDERFIT_MAX_ACCURACY, 0.3, 0.88, 0.4)], True)) == 1
    assert lines([(0.8, 1.0, 0.85, 0.5), (UNDERFIT_MAX_ACCURACY + 0.01, 0.3, 0.88, 0.4)], True) == []
    assert len(lines([(0.8, 1.0, 0.85, 0.5), (0.82, 0.3, UNDERFIT_MAX_ACCURACY, 0.4)], True)) == 1
    assert lines([(0.8, 1.0, 0.85, 0.5), (0.82, 0.3, UNDERFIT_MAX_ACCURACY + 0.01, 0.4)], True) == []


def test_the_fit_advice_says_how_to_rerun_and_following_it_is_not_refused(tmp_path):
    """The advice said 'try more epochs (--epochs)', and the same command with another --epochs and the run's --out
    was refused ('holds a finished run; pass --overwrite or choose another --out'). The advice now says to give the
    rerun a new --out or --overwrite; each is taken for a finished run of other settings, and the folder is emptied
    by --overwrite."""
    from sound_tf.errors import ConfigError
    from sound_tf.locks import release_folder
    from sound_tf.metrics import metrics_from_confusion, summary_lines
    from sound_tf.trainer import kept_validation

    demo = {"accuracy": [0.093, 0.129, 0.190, 0.230, 0.226], "val_accuracy": [0.185, 0.241, 0.333, 0.481, 0.463],
            "val_loss": [2.548, 2.154, 1.889, 1.786, 1.748]}
    fair = metrics_from_confusion(np.eye(5, dtype=int) * 8 + 1, [str(digit) for digit in range(5)])
    validation = kept_validation(demo, "checkpoints/best.weights.h5", 54, augmented=True)
    under = [line for line in summary_lines(fair, validation=validation) if "underfits" in line]
    assert len(under) == 1 and under[0].endswith("try more epochs (--epochs), a larger model (model.widths), or "
                                                 "--no-augment to check what augmentation costs this run" + TRAIN_RERUN)
    config = Config()
    run = _finished_run(tmp_path / "run", config)
    (run / "history.csv").write_text("epoch,accuracy\n0,0.1\n")
    more = apply_overrides(config, {"train.epochs": config.train.epochs + 8})
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(run))}: holds a finished run; pass --overwrite"):
        train.resolve_run_dir(str(run), more)  # the same --out: refused
    new = train.resolve_run_dir(str(tmp_path / "run2"), more)  # a new --out
    assert new == tmp_path / "run2"
    release_folder(new)
    assert train.resolve_run_dir(str(run), more, overwrite=True) == run  # --overwrite: this one, emptied
    assert not (run / "history.csv").exists()
    release_folder(run)


def test_run_validation_reads_the_kept_weights_file_the_history_and_the_validation_rows(tmp_path):
    """Mutation audit of run_validation: which weights file the run keeps decides the epoch (best.weights.h5 when
    it is there, even beside final.weights.h5), the clips are split.csv's validation rows, and a missing or damaged
    split.csv or history.csv gives None (the line it feeds is advice) where it raised. A history cell that is not a
    number is NaN (as the report's curves read it), no longer a damaged file."""
    from sound_tf import trainer

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    losses, accuracies = [1.0, 0.4, 0.7, 0.6], [0.3, 0.74, 0.6, 0.65]
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss"] + [
        f"{i},0.5,1.0,{a},{v}" for i, (a, v) in enumerate(zip(accuracies, losses))]
    (run / "history.csv").write_text("\r\n".join(rows) + "\r\n")
    splits = {"train": 5, "val": 3, "test": 2}
    (run / "split.csv").write_text("split,path,label\n" + "".join(
        f"{split},{split}{i}.wav,{'ab'[i % 2]}\n" for split, n in splits.items() for i in range(n)))
    for name in (trainer.BEST_WEIGHTS, trainer.FINAL_WEIGHTS):
        (run / name).write_bytes(b"")
    best = losses.index(min(losses))
    assert trainer.run_validation(run) == {"accuracy": accuracies[best], "num_examples": splits["val"]}
    (run / trainer.BEST_WEIGHTS).unlink()  # the last epoch's weights kept
    assert trainer.run_validation(run) == {"accuracy": accuracies[-1], "num_examples": splits["val"]}
    (run / "split.csv").rename(run / "split.bak")
    assert trainer.run_validation(run) is None  # no split.csv
    (run / "split.csv").write_text("split,path,label\nnowhere,a.wav,a\n")
    assert trainer.run_validation(run) is None  # not a split the run could have written
    (run / "split.bak").rename(run / "split.csv")
    (run / "history.csv").write_text("epoch,val_accuracy,val_loss\n0,0.5,abc\n")  # not a number: NaN, the last kept
    assert trainer.run_validation(run) == {"accuracy": 0.5, "num_examples": splits["val"]}
    (run / "history.csv").write_bytes(b"epoch,val_accuracy,val_loss\n0,0.5,\xff\n")  # not UTF-8: unreadable
    assert trainer.run_validation(run) is None


def test_the_plateau_schedule_halves_the_rate_after_its_patience(tmp_path, monkeypatch):
    # early_stopping_patience 9 -> plateau patience 3. val_loss falls by 1e-6 an epoch: lower for early
    # stopping (min_delta 0), a plateau for ReduceLROnPlateau (min_delta 1e-4), so the rate halves after
    # every third epoch without stopping: 0.01 -> 0.000625 in 14 epochs (above the floor, 0.01 / 100).
    result, _ = _scripted_run(tmp_path, monkeypatch, [1.0 - 1e-6 * i for i in range(14)],
                              **{"train.early_stopping_patience": 9, "train.schedule": "plateau",
                                 "train.learning_rate": 0.01})
    assert result.history["learning_rate"] == pytest.approx(
        [0.01] * 4 + [0.005] * 3 + [0.0025] * 3 + [0.00125] * 3 + [0.000625])


def test_a_resumed_runs_seconds_add_the_earlier_sessions(tmp_path):
    """Mutation audit of _train_run's seconds: a run resumed after a kill sums its sessions' wall time in
    run_state.json. Counting the last session alone passed every test, as the killed-run test's second session
    (more epochs and the evaluation) outlasted the first; here the earlier sessions hold 500 s."""
    import time as clock

    from sound_tf import trainer

    config = _tiny_config(make_tree(tmp_path / "data", clips_per_class=4, corrupt=False), **{"train.epochs": 1})
    run = tmp_path / "run"
    run.mkdir()
    earlier = 500.0
    trainer.write_state(run, status="running", fingerprint=config.fingerprint(), seconds=earlier)
    started = clock.time()
    trainer.train_run(config, run, verbose=0, log=lambda m: None, evaluate_test=False)
    session = clock.time() - started
    state = json.loads((run / "run_state.json").read_text())
    assert state["status"] == "done" and earlier < state["seconds"] <= earlier + session + 0.1


def test_the_seed_decides_the_initial_weights(tmp_path, monkeypatch):
    from sound_tf import trainer

    data = make_tree(tmp_path / "data", clips_per_class=4, corrupt=False)
    built: list[list[np.ndarray]] = []

    class Built(Exception):
        pass

    def capture(model, config, steps):
        built.append(model.get_weights())
        raise Built

    monkeypatch.setattr(trainer, "compile_for_training", capture)
    for n, seed in enumerate((1, 1, 2)):
        with pytest.raises(Built):
            trainer.train_run(_tiny_config(data, **{"train.seed": seed, "train.epochs": 1}), tmp_path / f"run{n}",
                              verbose=0, log=lambda m: None)
    assert all(np.array_equal(a, b) for a, b in zip(built[0], built[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(built[0], built[2]))


def test_compile_uses_the_configs_rate_weight_decay_and_label_smoothing():
    from sound_tf.trainer import compile_for_training

    config = apply_overrides(Config(), {"labels": ["a", "b", "c"], "train.schedule": "constant",
                                        "train.learning_rate": 0.0123, "train.weight_decay": 0.004,
                                        "train.label_smoothing": 0.3})
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    compile_for_training(model, config, 5)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.0123)
    assert model.optimizer.weight_decay == pytest.approx(0.004)
    logits = np.array([[2.0, 0.0, -1.0]], np.float32)
    target = np.array([[1.0, 0.0, 0.0]], np.float32)
    log_p = logits[0] - np.log(np.exp(logits[0]).sum())
    smoothed = 0.7 * target[0] + 0.3 / 3  # [0.8, 0.1, 0.1]
    assert float(model.loss(target, logits)) == pytest.approx(-(smoothed * log_p).sum(), rel=1e-5)


def test_cosine_schedule_warms_up_linearly_then_decays_to_one_percent():
    from sound_tf.trainer import lr_schedule

    config = apply_overrides(Config(), {"train.epochs": 10, "train.warmup_epochs": 2, "train.learning_rate": 0.01})
    schedule = lr_schedule(config, 5)  # 10 warm-up steps, then 40 of cosine decay
    peak = 0.01

    def at(step):
        return float(schedule(step))

    assert at(0) == pytest.approx(0.01 * peak)
    assert at(5) == pytest.approx(0.01 * peak + 0.5 * 0.99 * peak)  # linear warm-up
    assert at(10) == pytest.approx(peak)
    assert at(30) == pytest.approx(peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.5))))
    assert at(50) == pytest.approx(0.01 * peak)
    no_warmup = lr_schedule(apply_overrides(config, {"train.warmup_epochs": 0}), 5)
    assert float(no_warmup(0)) == pytest.approx(peak) and float(no_warmup(50)) == pytest.approx(0.01 * peak)


def test_the_warm_up_leaves_the_last_epoch_to_the_decay_and_a_one_epoch_run_none():
    """Mutation audit of lr_schedule: the warm-up is cut to epochs - 1, so a run shorter than its warm-up still
    reaches its peak rate and decays over its last epoch to 1%, and a one-epoch run starts at the full rate.
    Without the cap, 3 epochs with train.warmup_epochs 5 warmed up over all 12 steps and never reached the peak
    before the last step, and one epoch trained at 1% to its end."""
    from sound_tf.trainer import lr_schedule

    peak, steps = 0.02, 4
    config = apply_overrides(Config(), {"train.epochs": 3, "train.warmup_epochs": 5, "train.learning_rate": peak})
    schedule = lr_schedule(config, steps)
    warm = (config.train.epochs - 1) * steps  # 8 steps: the warm-up takes every epoch but the last
    assert float(schedule(0)) == pytest.approx(0.01 * peak)
    assert float(schedule(warm // 2)) == pytest.approx(0.01 * peak + 0.5 * 0.99 * peak)
    assert float(schedule(warm)) == pytest.approx(peak)
    assert float(schedule(config.train.epochs * steps)) == pytest.approx(0.01 * peak)  # decayed over 4 steps
    one = lr_schedule(apply_overrides(config, {"train.epochs": 1}), steps)
    assert float(one(0)) == pytest.approx(peak) and float(one(steps)) == pytest.approx(0.01 * peak)


def test_the_plateau_schedule_waits_a_third_of_the_patience_and_at_least_two_epochs(tmp_path):
    """Mutation audit of the plateau schedule's callback: its patience is a third of
    train.early_stopping_patience but at least 2 epochs (patience 3 halved the rate after 2 epochs without a
    lower val_loss, not 3), it halves the rate, down to a hundredth of train.learning_rate."""
    from sound_tf import trainer

    for patience in (1, 3, 6, 7, 9, 12):
        config = apply_overrides(Config(), {"labels": ["a", "b"], "train.schedule": "plateau",
                                            "train.learning_rate": 0.04, "train.early_stopping_patience": patience})
        plateau = next(c for c in trainer._callbacks(config, tmp_path, {}, started=0.0, seconds_before=0.0)
                       if isinstance(c, keras.callbacks.ReduceLROnPlateau))
        assert (plateau.patience, plateau.factor, plateau.min_lr) == (
            max(2, patience // 3), 0.5, pytest.approx(0.04 / 100)), patience
    # in use: patience 3 -> the rate halves after the second epoch without a lower val_loss
    config = apply_overrides(config, {"train.early_stopping_patience": 3})
    model = _adam_model(0.04)
    plateau = next(c for c in trainer._callbacks(config, tmp_path, {}, started=0.0, seconds_before=0.0)
                   if isinstance(c, keras.callbacks.ReduceLROnPlateau))
    plateau.set_model(model)
    plateau.on_train_begin()
    rates = []
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.97, 0.99]):
        plateau.on_epoch_end(epoch, {"val_loss": value})
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    assert rates == pytest.approx([0.04, 0.04, 0.04, 0.02, 0.02])  # 0.9 at epoch 2, then 2 epochs above it


def test_class_weights_switch_on_and_off_from_the_command_line_over_the_recipe():
    """The urbansound8k recipe turns class weights on; --class-weights could only switch them on, so turning
    them off took --set train.class_weights=false."""
    assert config_from_flags("--pipeline", "urbansound8k").train.class_weights is True
    assert config_from_flags("--pipeline", "urbansound8k", "--no-class-weights").train.class_weights is False
    assert config_from_flags("--class-weights").train.class_weights is True
    assert config_from_flags().train.class_weights is False  # the default, without the flag


def test_class_weights_reach_training_only_when_asked_and_favour_the_rare_class(tmp_path):
    from sound_tf.datasets import prepare_dataset
    from sound_tf.trainer import training_datasets

    data = make_tree(tmp_path / "data", clips_per_class=4, corrupt=False)
    for i in range(8):  # "low" becomes 3 times as common as each other class
        (data / "low" / "nested" / f"low_{i}.wav").write_bytes((data / "low" / "nested" / "low_0.wav").read_bytes())
        (data / "low" / "nested" / f"low_x{i}.wav").write_bytes((data / "low" / "nested" / "low_1.wav").read_bytes())
    config = _tiny_config(data, **{"train.class_weights": True, "train.epochs": 1})
    prepared = prepare_dataset(config, tmp_path / "run", log=lambda m: None)
    config = apply_overrides(config, {"labels": list(prepared.labels)})
    train_labels = np.array([item.label_index for item in prepared.splits["train"]])
    counts = np.bincount(train_labels, minlength=3)
    expected = len(train_labels) / (3 * counts)  # inverse frequency, mean 1 over the clips
    train_ds, _ = training_datasets(config, prepared)
    waves, onehot, weights = next(iter(train_ds))
    np.testing.assert_allclose(weights.numpy(), expected[onehot.numpy().argmax(axis=1)], rtol=1e-6)
    assert expected[prepared.labels.index("low")] < 1 < expected[prepared.labels.index("mid")]
    plain, _ = training_datasets(apply_overrides(config, {"train.class_weights": False}), prepared)
    assert len(next(iter(plain))) == 2  # no sample weights


def test_augmentation_set_to_act_on_the_waveform_reaches_the_training_batches(tmp_path):
    """With ``*_domain = "waveform"`` the training pipeline itself applies the transforms: a -20 dB gain
    on every clip lowers every clip's level tenfold, and mixup gives soft labels. Validation is untouched."""
    from sound_tf.datasets import prepare_dataset
    from sound_tf.trainer import training_datasets

    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    off = {f"augment.{name}_probability": 0.0 for name in ("shift", "speed", "stretch", "pitch", "noise", "spec")}
    plain = _tiny_config(data, **{"train.epochs": 1, "train.seed": 5})
    prepared = prepare_dataset(plain, tmp_path / "run", log=lambda m: None)
    plain = apply_overrides(plain, {"labels": list(prepared.labels)})

    def first_batches(config):
        train_ds, val_ds = training_datasets(config, prepared)
        return next(iter(train_ds)), next(iter(val_ds))

    def rms(waves):
        return np.sqrt(np.mean(np.square(waves.numpy()), axis=1))  # [batch]

    (waves, labels), (val_waves, _) = first_batches(plain)
    quieter = apply_overrides(plain, {**off, "augment.enabled": True, "augment.shift_gain_domain": "waveform",
                                      "augment.gain_probability": 1.0, "augment.gain_min_db": -20.0,
                                      "augment.gain_max_db": -20.0, "augment.mixup_probability": 0.0})
    (soft_waves, soft_labels), (val_again, _) = first_batches(quieter)
    assert rms(waves).min() > 0.1 and rms(soft_waves).max() < 0.03  # tones of amplitude 0.3 and their tenths
    np.testing.assert_array_equal(val_again.numpy(), val_waves.numpy())
    assert np.all(soft_labels.numpy().max(axis=1) == 1.0)  # no mixup asked

    mixed = apply_overrides(plain, {**off, "augment.enabled": True, "augment.mixup_domain": "waveform",
                                    "augment.mixup_probability": 1.0, "augment.mixup_alpha": 10.0,
                                    "augment.gain_probability": 0.0})
    mixed_labels = np.concatenate([batch[1].numpy() for batch in training_datasets(mixed, prepared)[0].take(6)])
    assert np.all(labels.numpy().max(axis=1) == 1.0)
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, atol=1e-6)
    # Beta(10, 10) weights lie near 0.5: a row stays one-hot only when its partner has its own label (or is
    # itself), for 4 of the 12 training clips, so about two thirds of the rows are soft
    soft = mixed_labels.max(axis=1) < 0.9
    assert 0.4 < np.mean(soft) < 0.9 and np.all(mixed_labels[soft].max(axis=1) > 0.1)


def test_resumed_callbacks_go_on_from_the_best_epoch_of_the_history(tmp_path):
    """The checkpoint and early stopping of a resumed run start from the history's lowest val_loss and the
    epochs since it, as the uninterrupted run's would stand after those epochs."""
    from sound_tf import trainer

    config = apply_overrides(Config(), {"train.early_stopping_patience": 3, "labels": ["a", "b"]})
    before = [1.0, 0.5, 0.6, 0.7]  # best 0.5, then 2 epochs without a lower one
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    callbacks = trainer._callbacks(config, tmp_path, {"val_loss": before, "loss": [1.0] * 4}, started=0.0,
                                   seconds_before=0.0)
    stopper = next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))
    checkpoint = next(c for c in callbacks if isinstance(c, keras.callbacks.ModelCheckpoint))
    for callback in (stopper, checkpoint):
        callback.set_model(model)
        callback.on_train_begin()
    assert (stopper.best, stopper.wait, stopper.patience) == (0.5, 2, 3)
    checkpoint.on_epoch_end(4, {"val_loss": 0.55})  # worse than the best before the kill: not saved
    assert not (tmp_path / trainer.BEST_WEIGHTS).exists()
    stopper.on_epoch_end(4, {"val_loss": 0.55})
    assert model.stop_training  # the third epoch without a lower val_loss


_WEIGHTS_MODEL = """
import keras, numpy as np
from sound_tf import trainer
from sound_tf.config import Config, apply_overrides
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64), keras.layers.Dense(2)])
model.compile(optimizer="adam", loss="mse")
callbacks = trainer._callbacks(apply_overrides(Config(), {"labels": ["a", "b"]}), RUN, HISTORY, started=0.0,
                               seconds_before=0.0)
checkpoint = next(c for c in callbacks if isinstance(c, keras.callbacks.ModelCheckpoint))
done = next(c for c in callbacks if isinstance(c, trainer.MarkFitDone))
for callback in (checkpoint, done):
    callback.set_model(model)
checkpoint.on_train_begin()
"""


def test_best_and_final_weights_killed_mid_write_leave_the_previous_whole_file(tmp_path):
    """ModelCheckpoint (best.weights.h5) and MarkFitDone (final.weights.h5) wrote in place: a process killed
    half way left a truncated HDF5 file where the previous whole one was. A resumed run trains that epoch
    again and rewrote it only when the epoch improved on the best again (bit-identical training does, on one
    machine; on another, or when not, the run ended failing to load it: "truncated file: eof = 29172")."""
    from conftest import killed_mid_write
    from sound_tf import atomic, trainer
    from sound_tf.locks import abandoned_temporary

    run = tmp_path / "run"
    setup = f"from pathlib import Path\nRUN = Path({str(run)!r})\nHISTORY = {{}}\n" + _WEIGHTS_MODEL
    scope: dict = {}
    exec(setup, scope)  # epoch 0's best weights, and the final weights, written whole
    model, first = scope["model"], scope["model"].get_weights()
    scope["checkpoint"].on_epoch_end(0, {"val_loss": 1.0})
    scope["done"].on_train_end()
    best, final = run / trainer.BEST_WEIGHTS, run / trainer.FINAL_WEIGHTS
    size = best.stat().st_size
    assert final.stat().st_size == size > 16_000  # 64 x 64 float32 weights and more

    # A later epoch with a lower val_loss (a resumed run: the history's best is 1.0), and the end of training,
    # each in a process killed half way through writing its weights: other weights, the same size.
    later = setup.replace("HISTORY = {}", "HISTORY = {'val_loss': [1.0], 'loss': [1.0]}") + \
        "model.set_weights([w + 1.0 for w in model.get_weights()])\n"
    for write, target in (("checkpoint.on_epoch_end(1, {'val_loss': 0.5})", best), ("done.on_train_end()", final)):
        killed_mid_write(later, write, size // 2, tmp_path)
        assert target.stat().st_size == size, target.name
        model.set_weights([w - 5.0 for w in first])
        model.load_weights(target)  # whole, and epoch 0's weights
        for kept, before in zip(model.get_weights(), first):
            np.testing.assert_array_equal(kept, before)
        left = [p for p in target.parent.iterdir() if p.name not in ("best.weights.h5", "final.weights.h5")]
        assert len(left) == 1 and left[0].stat().st_size == size // 2  # what the kill left: a temporary file
        assert left[0].name.startswith(f".{target.name}.") and left[0].name.endswith(".tmp.weights.h5")
        assert abandoned_temporary(left[0], (target.name,))
        atomic.remove_leftovers(target)  # its process ended: removed
        assert sorted(p.name for p in target.parent.iterdir()) == ["best.weights.h5", "final.weights.h5"]


def test_the_log_drops_only_the_retracing_warning_of_keras_step_functions(tmp_path):
    """crossval and tune build a model per fold or trial; TensorFlow counted their Keras step functions as
    one function retraced and warned twice per fold from the third on. Other retracing warnings stay."""
    import logging

    from sound_tf.train import setup_logging

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    tf_log = logging.getLogger("tensorflow")
    saved_tf_handlers = tf_log.handlers[:]
    own = tmp_path / "tensorflow_own.log"  # TensorFlow's own handler, added when imported before logging is set up
    tf_log.addHandler(logging.FileHandler(own))
    try:
        setup_logging(tmp_path)
        tf_log.warning("5 out of the last 9 calls to <function TensorFlowTrainer._make_function.<locals>."
                       "multi_step_on_iterator at 0x7f3e744f6b60> triggered tf.function retracing. "
                       "Tracing is expensive")
        tf_log.warning("5 out of the last 5 calls to <function make_features at 0x7f00> triggered tf.function "
                       "retracing. Tracing is expensive")
        tf_log.warning("something else")
        for handler in root.handlers:
            handler.flush()
        lines = (tmp_path / "train.log").read_text().splitlines()
    finally:
        for handler in root.handlers + tf_log.handlers:
            handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        tf_log.handlers[:] = saved_tf_handlers
    assert len(lines) == 2 and "make_features" in lines[0] and lines[1].endswith("something else"), lines
    assert own.read_text() == ""  # each record is written once, by the run's handlers


def test_the_log_drops_the_retracing_warning_of_the_functions_made_anew_for_each_fold(tmp_path):
    """crossval computes each fold's feature statistics and scores its test clips through a tf.function made for
    that call (frontend.compute_feature_stats, pipeline.predict_logits); TensorFlow counts those of every fold as
    one function retraced, and from the third fold of a walkthrough's 4-fold FSDD cross-validation on its log
    said "5 out of the last 9 calls to <bound method LogMel.call ...> triggered tf.function retracing" and
    "... <function predict_logits.<locals>.<lambda> ...", twice each, advising to define the function outside
    the loop. Five such folds (4 clips in batches of 3) leave no such line; a function of the user's still warns."""
    import logging

    from sound_tf.frontend import compute_feature_stats
    from sound_tf.pipeline import predict_logits
    from sound_tf.train import setup_logging

    config = apply_overrides(Config(), {"audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5, "labels": ["a", "b"]})
    rng = np.random.default_rng(0)
    paths = []
    for i, seconds in enumerate((0.3, 0.5, 0.8, 1.2)):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], 0.1 * rng.standard_normal(int(SR * seconds)), SR, subtype="PCM_16")
    clips = 0.1 * rng.standard_normal((4, config.audio.clip_samples)).astype(np.float32)

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    tf_log = logging.getLogger("tensorflow")
    saved_tf_handlers, saved_tf_level = tf_log.handlers[:], tf_log.level
    try:
        setup_logging(tmp_path)
        tf_log.setLevel(logging.WARNING)
        for fold in range(5):
            compute_feature_stats(config, [clips[:3], clips[3:]])
            inputs = keras.Input((config.audio.clip_samples,))
            model = keras.Model(inputs, keras.layers.Dense(2)(inputs))  # a fresh model, as each fold trains
            assert predict_logits(model, paths, config, batch_size=3).shape == (4, 2)
        tf_log.warning("5 out of the last 5 calls to <function make_features at 0x7f00> triggered tf.function "
                       "retracing. Tracing is expensive")  # a function of the user's still warns
        for handler in root.handlers:
            handler.flush()
        lines = (tmp_path / "train.log").read_text().splitlines()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        tf_log.handlers[:] = saved_tf_handlers
        tf_log.setLevel(saved_tf_level)
    assert len(lines) == 1 and "make_features" in lines[0], lines


def test_train_run_refuses_a_run_folder_holding_a_run_with_other_settings(tmp_path):
    """From Python (the command line checks this itself), train_run in the folder of a finished 1-epoch run
    with train.epochs=3 said "training had finished", evaluated that 1-epoch model and wrote epochs=3 into
    its config.json; with other model widths it overwrote config.json, then failed loading the weights in Keras."""
    from sound_tf import trainer
    from sound_tf.errors import ConfigError

    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    run = tmp_path / "run"
    first = trainer.train_run(_tiny_config(data, **{"train.epochs": 1}), run, log=lambda _: None, verbose=0)
    assert len(first.history["loss"]) == 1
    saved = (run / "config.json").read_text()
    for more, differs in (({"train.epochs": 3}, r"train\.epochs: 1 there, 3 now"),
                          ({"train.epochs": 1, "model.widths": [8, 32]}, r"model\.widths: ")):
        with pytest.raises(ConfigError, match=rf"^{run}: holds a finished run with different settings \({differs}"):
            trainer.train_run(_tiny_config(data, **more), run, log=lambda _: None, verbose=0)
        assert (run / "config.json").read_text() == saved  # refused before anything was written
    again = trainer.train_run(_tiny_config(data, **{"train.epochs": 1}), run, log=lambda _: None, verbose=0)
    assert again.metrics["accuracy"] == first.metrics["accuracy"]  # the same settings still resume (evaluate)
    with pytest.raises(ConfigError, match=r"^train_run expects a sound_tf Config .*got dict"):
        trainer.train_run(_tiny_config(data).to_dict(), tmp_path / "other")
    with pytest.raises(ConfigError, match=r"^train_run: data must be a PreparedData .*got dict"):
        trainer.train_run(_tiny_config(data), tmp_path / "other", data={"train": []})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"file: exists and is not a folder"):
        trainer.train_run(_tiny_config(data), tmp_path / "file")


def test_train_run_refuses_a_folder_of_the_users_own_files(tmp_path):
    """From Python, train_run wrote a run (config.json, labels.txt, model.keras, report.html ...) into a folder
    of the user's own files, replacing those of the same names, where the command line refuses it as --out.
    It is refused before anything is written; a folder holding only what comes before run_state.json (a
    cross-validation fold's split and log, a lock) and an earlier run's folder are still run folders."""
    import re

    from sound_tf import trainer
    from sound_tf.datasets import prepare_dataset
    from sound_tf.errors import ConfigError

    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    config = _tiny_config(data, **{"train.epochs": 1})
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "my_notes.txt").write_text("precious")
    (mine / "config.json").write_text('{"mine": true}')  # a name a run writes
    before = {p.name: p.read_bytes() for p in mine.iterdir()}
    refused = (rf"^{re.escape(str(mine))}: not a training run folder \(it holds config\.json, my_notes\.txt, and no "
               rf"run_state\.json\); train_run writes a run's files into it \(config\.json, labels\.txt, model\.keras, "
               rf"report\.html \.\.\.\), replacing any of the same name; pass a new or empty folder, or an earlier "
               rf"run's folder to resume that run$")
    with pytest.raises(ConfigError, match=refused):
        trainer.train_run(config, mine, log=lambda _: None, verbose=0)
    run = tmp_path / "run"
    prepared = prepare_dataset(config, run, log=lambda _: None)  # split.csv, skipped.csv, as a fold has them
    with pytest.raises(ConfigError, match=refused):  # with data prepared elsewhere too
        trainer.train_run(config, mine, data=prepared, log=lambda _: None, verbose=0)
    assert {p.name: p.read_bytes() for p in mine.iterdir()} == before  # nothing written, nothing replaced
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")  # a link to nothing: not a folder either
    with pytest.raises(ConfigError, match=r"dangling: exists and is not a folder; run_dir names a run folder"):
        trainer.train_run(config, tmp_path / "dangling", data=prepared, log=lambda _: None, verbose=0)

    (run / "train.log").write_text("")
    (run / ".lock").write_text("")
    # every startup file but silence.csv, which a run of a silence class has too (data.silence_label)
    assert sorted(p.name for p in run.iterdir()) == sorted({".lock", *trainer.RUN_STARTUP_FILES} - {"silence.csv"})
    first = trainer.train_run(config, run, data=prepared, log=lambda _: None, verbose=0)
    assert len(first.history["loss"]) == 1 and (run / "model.keras").is_file()
    messages: list[str] = []
    again = trainer.train_run(config, run, log=messages.append, verbose=0)  # an earlier run's folder resumes
    assert any(f"resuming the run in {run}: training had finished" in m for m in messages), messages
    assert again.metrics["accuracy"] == first.metrics["accuracy"]


def test_train_run_that_fails_before_training_leaves_no_new_folder(tmp_path):
    """A train_run given a data folder that does not exist left its new run_dir holding only ``.lock``."""
    from sound_tf import trainer
    from sound_tf.errors import DatasetError

    config = _tiny_config(tmp_path / "no_such_data")
    with pytest.raises(DatasetError, match="no_such_data: no such file or folder"):
        trainer.train_run(config, tmp_path / "runs" / "first", log=lambda _: None, verbose=0)
    assert [p.name for p in tmp_path.iterdir()] == ["runs"] and not any((tmp_path / "runs").iterdir())


def test_train_run_refuses_a_run_folder_another_process_holds_and_gives_it_back(tmp_path):
    """train_run took no lock (only the train command did): from a notebook it trained in a folder another
    process was training in, both writing its checkpoints and state. It claims run_dir as the command does,
    is refused in its caller's words before anything is written, and gives the folder back when it returns
    or raises; a caller that holds the folder already (the command) goes on."""
    from sound_tf import trainer
    from sound_tf.errors import ConfigError
    from sound_tf.locks import claim_folder, release_folder

    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    config = _tiny_config(data, **{"train.epochs": 1})
    run = tmp_path / "run"
    run.mkdir()
    trainer.write_state(run, status="running", fingerprint=config.fingerprint())  # an unfinished run...
    holder = _hold(run)  # ...that another process trains
    try:
        before = {p.name: p.read_bytes() for p in run.iterdir()}
        with pytest.raises(ConfigError) as info:
            trainer.train_run(config, run, log=lambda _: None, verbose=0)
        assert str(info.value) == (f"{run}: in use by pid {holder.pid} on {os.uname().nodename}, which is training or "
                                   f"exporting this run; wait for it to end, or choose another run_dir")
        assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # no split, no config, no state written
    finally:
        holder.kill()
        holder.wait()
    other = _tiny_config(data, **{"train.epochs": 2})
    with pytest.raises(ConfigError, match="holds an unfinished run with different settings"):  # raised when claimed
        trainer.train_run(other, run, log=lambda _: None, verbose=0)
    assert _claims(run)  # given back when it raised
    assert claim_folder(run) is None  # as the command holds it: train_run claims it once more...
    with pytest.raises(ConfigError, match="unfinished run with different settings"):
        trainer.train_run(other, run, log=lambda _: None, verbose=0)
    assert not _claims(run)  # ...and gives back only its own claim
    release_folder(run)
    result = trainer.train_run(config, run, log=lambda _: None, verbose=0, evaluate_test=False)
    assert len(result.history["loss"]) == 1 and _claims(run)  # given back when it returned


def test_a_run_killed_while_it_wrote_its_split_or_first_state_resumes(tmp_path, capsys):
    """SIGKILL while split.csv was written (before run_state.json exists, without --export) left the folder
    ``.lock``, ``train.log`` and ``.split.csv.<random>.tmp``: every rerun of the same command was refused
    ("not a training run folder (it holds .split.csv.hjec7156.tmp, and no run_state.json)"), --overwrite too.
    So was one killed while it wrote its first run_state.json. Now it runs, and the leftovers are gone."""
    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    for left, content in ((".split.csv.hjec7156.tmp", f"split,path,label,fold,group\ntrain,{data}/lo"),
                          (".run_state.json.tmp", '{\n  "fingerprint": "83b1')):
        out = tmp_path / left.split(".")[1]
        out.mkdir()
        (out / ".lock").write_text("")
        (out / "train.log").write_text("00:00:00 data: decode cache ...\n")
        (out / left).write_text(content)  # cut short by the kill, before its rename
        assert train.main(_flags(data, out, "--epochs", "1", "--no-augment")) == 0, capsys.readouterr().err
        assert json.loads((out / "run_state.json").read_text())["status"] == "done"
        assert (out / "metrics.json").is_file() and not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_resumed_run_removes_what_killed_processes_left_half_written_and_keeps_a_live_ones(tmp_path):
    """Only the temporary files of run_state.json and the startup files were removed on resume: a process
    killed while it wrote config.json, labels.txt, history.csv, a report file or a checkpoint left its
    hidden temporary file in the run folder for good."""
    import socket

    from sound_tf import trainer

    host = socket.gethostname()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run = tmp_path / "run"
        (run / "checkpoints").mkdir(parents=True)
        (run / "run_state.json").write_text(json.dumps({"status": "running"}))  # killed before its first epoch
        dead = [f".{name}.{host}.{ended.pid}-k1ll3d00.tmp" for name in
                ("config.json", "labels.txt", "history.csv", "metrics.json", "confusion_matrix.png", "split.csv")]
        dead.append(f"checkpoints/.best.weights.h5.{host}.{ended.pid}-k1ll3d00.tmp.weights.h5")
        live = [f".config.json.{host}.{sleeper.pid}-l1ve0000.tmp",
                f"checkpoints/.best.weights.h5.{host}.{sleeper.pid}-l1ve0000.tmp.weights.h5"]
        for name in dead + live:
            (run / name).write_bytes(b"half a file")
        config = _tiny_config(make_tree(tmp_path / "data", clips_per_class=6, corrupt=False), **{"train.epochs": 1})
        result = trainer.train_run(config, run, verbose=0, log=lambda m: None, evaluate_test=False)
        assert len(result.history["loss"]) == 1
        assert [name for name in dead if (run / name).exists()] == []
        assert [name for name in live if (run / name).read_bytes() == b"half a file"] == live
        hidden = sorted(str(p.relative_to(run)) for p in run.rglob(".*.tmp*"))
        assert hidden == sorted(live)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_run_startup_files_is_still_importable_from_the_train_module():
    """RUN_STARTUP_FILES moved to sound_tf.trainer (train_run refuses a folder by it); code that read it
    from sound_tf.train, where it was documented, still does."""
    from sound_tf import trainer
    from sound_tf.train import RUN_STARTUP_FILES

    assert RUN_STARTUP_FILES is trainer.RUN_STARTUP_FILES == ("train.log", "split.csv", "skipped.csv", "silence.csv")
    assert train.RUN_STARTUP_FILES is trainer.RUN_STARTUP_FILES
    with pytest.raises(AttributeError, match="has no attribute 'NO_SUCH_NAME'"):
        train.NO_SUCH_NAME


def test_a_run_killed_while_it_saved_model_keras_is_unfinished_not_broken(tmp_path, capsys):
    """Keras wrote model.keras in place: a process killed half way (here by the file size limit, which ends
    it at once as SIGKILL does) left a truncated zip archive. The folder then looked finished, so evaluate,
    export and the server failed reading it ("File is not a zip file") instead of saying that the run had
    not finished. Now a kill leaves no model.keras, evaluate says so, and the same command completes it."""
    from conftest import killed_mid_write
    from sound_tf import evaluate

    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    run = tmp_path / "run"
    flags = _flags(data, run, "--epochs", "1", "--no-augment")
    assert train.main(flags) == 0, capsys.readouterr().err
    from sound_tf.evaluation import load_run

    model_file = run / "model.keras"
    size, weights = model_file.stat().st_size, load_run(run)[1].get_weights()
    assert size > 20_000
    # As a run killed after training, before its model was saved: the state says running, training done.
    model_file.unlink()
    state = json.loads((run / "run_state.json").read_text())
    assert state["fit_done"] is True
    (run / "run_state.json").write_text(json.dumps({**state, "status": "running"}))

    killed_mid_write("", f"from sound_tf import train\ntrain.main({flags!r})", size // 2, tmp_path)
    assert not model_file.exists()  # not half of it
    capsys.readouterr()
    assert evaluate.main([str(run)]) != 0
    err = capsys.readouterr().err
    assert "its training has not finished: run the same train command again" in err, err

    assert train.main(flags) == 0, capsys.readouterr().err
    for saved, trained in zip(load_run(run)[1].get_weights(), weights, strict=True):  # the same model, whole
        np.testing.assert_array_equal(saved, trained)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".model.keras")]  # what the kill left


def test_a_disk_too_full_for_the_weights_is_an_error_naming_them_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    """h5py ends the process with a segmentation fault when a write of Keras's weights file fails (measured:
    exit -11 in File.close on EFBIG, as on a full disk), so a run whose disk filled died without a word.
    Now a folder with less free space than the weights need is refused first, with an error naming the
    file, and the same command, run again once there is room, completes the run."""
    import collections

    from sound_tf import atomic, trainer

    scope: dict = {}
    exec(f"from pathlib import Path\nRUN = Path({str(tmp_path / 'w')!r})\nHISTORY = {{}}\n" + _WEIGHTS_MODEL, scope)
    model = scope["model"]
    scope["checkpoint"].on_epoch_end(0, {"val_loss": 1.0})
    model.optimizer.build(model.trainable_variables)
    trainer.save_model_whole(model, tmp_path / "w" / "model.keras")
    for name in (trainer.BEST_WEIGHTS, "model.keras"):  # both hold Adam's state too, built after epoch 0's save
        size, estimate = (tmp_path / "w" / name).stat().st_size, trainer.bytes_to_save(model)
        assert size < estimate < 2 * size + (1 << 20), (name, size, estimate)  # generous, not absurd

    usage = collections.namedtuple("usage", "total used free")
    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    run = tmp_path / "run"
    flags = _flags(data, run, "--epochs", "2", "--no-augment")
    with monkeypatch.context() as full:
        full.setattr(atomic.shutil, "disk_usage", lambda folder: usage(10**9, 10**9 - 4096, 4096))
        assert train.main(flags) == 2
    err = capsys.readouterr().err
    assert re.search(rf"error: {re.escape(str(run / trainer.BEST_WEIGHTS))}: No space left on device: 4,096 bytes "
                     r"free there, about [\d,]+ needed to write it; free some space and run the same command again",
                     err), err
    assert not (run / trainer.BEST_WEIGHTS).exists() and not list((run / "checkpoints").iterdir())

    assert train.main(flags) == 0  # room again, capsys.readouterr().err
    assert json.loads((run / "run_state.json").read_text())["status"] == "done"
    assert (run / trainer.BEST_WEIGHTS).is_file() and (run / "model.keras").is_file()


def test_the_room_a_model_needs_is_counted_without_an_optimizer(tmp_path):
    """A Keras model never compiled has no ``optimizer`` attribute at all: bytes_to_save, and so
    save_weights_whole, failed on it with AttributeError."""
    from sound_tf import trainer

    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(400)])  # 10 x 400 + 400 = 4,400 floats
    assert trainer.bytes_to_save(model) == 17_600 + 4_400 + (1 << 20)
    trainer.save_weights_whole(model, tmp_path / "w.weights.h5")
    assert 17_600 < (tmp_path / "w.weights.h5").stat().st_size < trainer.bytes_to_save(model)


def test_a_new_run_under_runs_names_a_finished_one_with_the_same_settings(tmp_path, monkeypatch, capsys):
    """The README's command 1 run a second time trained the whole demo again into a new folder without a
    word, though the finished run beside it had the same settings (and so, with the same seed, the same
    model). The new run now names it and says how to use it instead; another seed trains without the note."""
    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    monkeypatch.chdir(tmp_path)
    flags = ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--batch-size", "8",
             "--quiet", "--epochs", "1", "--no-augment"]
    assert train.main(flags) == 0
    [first] = (tmp_path / "runs").iterdir()
    assert "finished with these settings" not in capsys.readouterr().out
    assert train.main(flags) == 0
    out = capsys.readouterr().out
    second = next(run for run in (tmp_path / "runs").iterdir() if run.name != first.name)
    # the settings name the data's folder, not its files: recordings added to it make another model
    assert (f"runs/{first.name} finished with these settings; unless its data changed since, this new run repeats "
            f"it (the same seed and data give the same model on the same machine): `python -m sound_tf.evaluate "
            f"runs/{first.name}` or `python -m sound_tf.export runs/{first.name}` use it, --set train.seed=N trains "
            f"another") in out, out
    assert json.loads((second / "run_state.json").read_text())["status"] == "done"
    assert train.main([*flags, "--seed", "7"]) == 0
    assert "finished with these settings" not in capsys.readouterr().out


def test_a_small_training_split_is_warned_about_with_a_batch_size_that_gives_it_steps():
    """44 clips in batches of 32 made 2 steps per epoch: early stopping (8 epochs) ended a run on 60 real
    recordings after its first epochs, keeping epoch 1's weights, at chance, and nothing said why."""
    from sound_tf import trainer

    config = apply_overrides(Config(), {"train.batch_size": 32, "train.early_stopping_patience": 8,
                                        "train.min_steps_per_epoch": 1})
    assert trainer.few_steps_warning(44, config) == (
        "warning: 44 training clips in batches of 32 make 2 steps per epoch: early stopping "
        "(train.early_stopping_patience 8 epochs) may end training after too few updates for the model to learn; "
        "--batch-size 8 gives 5 steps per epoch"
        "; --set train.min_steps_per_epoch=16 (the default) makes each epoch 16 steps, cycling through the clips")
    assert trainer.few_steps_warning(160, config) is None  # 5 steps
    assert "make 4 steps per epoch" in trainer.few_steps_warning(159, config)  # 4 whole batches, the rest dropped
    assert [trainer.smaller_batch(n, config) for n in (44, 159, 100, 9, 4)] == [8, 16, 16, None, None]
    assert trainer.smaller_batch(44, apply_overrides(config, {"train.batch_size": 24})) == 8
    assert "more training clips, or more epochs" in trainer.few_steps_warning(6, config)
    # at the default train.min_steps_per_epoch, 44 clips make 16 steps an epoch, cycled: no warning, a note
    default = apply_overrides(config, {"train.min_steps_per_epoch": 16})
    assert trainer.steps_per_epoch(44, default) == 16 and trainer.few_steps_warning(44, default) is None
    assert trainer.cycled_note(44, default) == (
        "an epoch is 16 batches of 32 (train.min_steps_per_epoch): 11.64 passes over the 44 training clips, each "
        "shuffled, cropped and augmented afresh, as one pass makes 2")
    assert trainer.cycled_note(512, default) is None and trainer.steps_per_epoch(544, default) == 17
    assert ": 1.02 passes over the 504 training clips" in trainer.cycled_note(504, default)  # the demo's, not '1.0'
    plain = apply_overrides(default, {"augment.enabled": False})  # --no-augment: no word of augmentation
    assert ", each shuffled and cropped afresh, as one pass makes 2" in trainer.cycled_note(44, plain)


def test_a_small_training_split_in_a_run_early_stopping_cannot_end_is_told_its_updates_in_all():
    """`--data my_sounds --epochs 6` (the folder recipe's patience: 10) on 48 clips was warned that early
    stopping 'may end training after too few updates', which cannot end a run of 6 epochs; the run ended
    its 6 epochs, 12 updates in all, at chance."""
    from sound_tf import trainer

    config = apply_overrides(Config(), {"train.batch_size": 32, "train.early_stopping_patience": 10,
                                        "train.epochs": 6, "train.min_steps_per_epoch": 1})
    assert trainer.few_steps_warning(48, config) == (
        "warning: 48 training clips in batches of 32 make 2 steps per epoch: its 6 epochs make 12 updates in all, "
        "likely too few for the model to learn; --batch-size 8 gives 6 steps per epoch"
        "; --set train.min_steps_per_epoch=16 (the default) makes each epoch 16 steps, cycling through the clips")
    assert trainer.few_steps_warning(6, config) == (  # no smaller batch gives 5 steps: more epochs help, not patience
        "warning: 6 training clips in batches of 32 make 1 step per epoch: its 6 epochs make 6 updates in all, "
        "likely too few for the model to learn; more training clips or more epochs give it more"
        "; --set train.min_steps_per_epoch=16 (the default) makes each epoch 16 steps, cycling through the clips")
    # best at epoch 1 and no better for 10 epochs: Keras stops after epoch 11 at the earliest, the last of 11
    at_patience = apply_overrides(config, {"train.epochs": 11})
    assert "its 11 epochs make 22 updates in all" in trainer.few_steps_warning(48, at_patience)
    one_epoch = apply_overrides(config, {"train.epochs": 1})  # --epochs 1 read 'its 1 epoch make 2 updates'
    assert "make 2 steps per epoch: its 1 epoch makes 2 updates in all," in trainer.few_steps_warning(51, one_epoch)
    assert "its 1 epoch makes 1 update in all," in trainer.few_steps_warning(6, one_epoch)
    one_more = apply_overrides(config, {"train.epochs": 12})
    assert "early stopping (train.early_stopping_patience 10 epochs) may end training" in \
        trainer.few_steps_warning(48, one_more)


def kept(history):
    """The kept (lowest validation loss) epoch's validation accuracy, as a run passes it to the chance warning."""
    from sound_tf import trainer

    return trainer.kept_validation(history, trainer.BEST_WEIGHTS, 8)


def test_a_validation_split_of_one_class_is_not_called_chance():
    """Always answering the one class of a validation split scores 1.0, so a model right on every one of
    its clips (val_accuracy 1.0) was called "no better than chance", whatever it had learnt; one split
    of two classes is still measured."""
    from sound_tf import trainer

    config = apply_overrides(Config(), {"train.batch_size": 32})
    history = {"loss": [1.4, 0.3], "val_loss": [1.2, 0.1], "val_accuracy": [0.5, 1.0]}
    assert trainer.chance_level_warning(kept(history), config, [2, 2, 2, 2], 4000, cropped=True) is None
    assert trainer.chance_level_warning(kept(history), config, [], 4000, cropped=True) is None
    # no finite val accuracy
    assert trainer.chance_level_warning(None, config, [2, 2, 2, 1], 4000, cropped=True) is None
    at_chance = kept({**history, "val_accuracy": [0.5, 0.75]})
    assert trainer.chance_level_warning(at_chance, config, [2, 2, 2, 1], 4000, cropped=True) == (
        "warning: the model is no better than chance: its validation accuracy (0.7500) is no higher than always "
        "answering the validation split's most common class (0.7500); check the labels, or try more epochs, a "
        "larger train.early_stopping_patience or a --clip-seconds that holds each sound whole")


def test_a_training_split_of_uneven_classes_is_told_of_class_weights(tmp_path):
    """A 12:12:3 split of bird songs trained without a word of --class-weights (the per-class counts only in
    report.html): three times the clips in the largest class as in the smallest gets a note, unless class
    weights are on."""
    from sound_tf import trainer

    config = Config()
    weighted = apply_overrides(config, {"train.class_weights": True})
    birds = ["robin"] * 12 + ["wren"] * 12 + ["owl"] * 3
    assert trainer.imbalance_note(birds, config) == (
        "note: the training split's classes range from 3 clips (owl) to 12 (robin), 4.0 to 1; --class-weights weighs "
        "each clip by its class's rarity, so every class counts alike in the loss")
    assert trainer.imbalance_note(birds, weighted) is None
    assert trainer.imbalance_note(["a"] * 9 + ["b"] * 4, config) is None  # 2.25 to 1
    assert trainer.imbalance_note(["a"] * 9 + ["b"] * 3, config).startswith(  # 3 to 1: the edge
        "note: the training split's classes range from 3 clips (b) to 9 (a), 3.0 to 1;")
    assert "from 1 clip (b) to 5 (a)" in trainer.imbalance_note(["a"] * 5 + ["b"], config)
    assert trainer.imbalance_note(["a"] * 5, config) is None
    # in a run: the training split of a tree whose one class lost most of its clips
    root = make_tree(tmp_path / "data", clips_per_class=12, corrupt=False)
    for path in sorted((root / "low" / "nested").glob("*.wav"))[:8]:
        path.unlink()
    lines: list[str] = []
    result = trainer.train_run(_tiny_config(root, **{"train.epochs": 1}), tmp_path / "run", verbose=0,
                               log=lines.append, evaluate_test=False)
    counts = Counter(item.label for item in result.data.splits["train"])
    assert counts["low"] * 3 <= max(counts.values())
    notes = [line for line in lines if line.startswith("note: the training split's classes range")]
    assert notes == [trainer.imbalance_note([item.label for item in result.data.splits["train"]], result.config)]


def test_a_model_no_better_than_chance_is_warned_about(tmp_path, monkeypatch):
    from sound_tf import trainer

    config = apply_overrides(Config(), {"train.batch_size": 32, "train.min_steps_per_epoch": 1})  # an epoch: one pass
    history = {"loss": [1.4, 1.3, 1.2], "val_loss": [1.386, 1.39, 1.387], "val_accuracy": [0.25, 0.5, 0.25]}
    balanced = [0, 0, 1, 1, 2, 2, 3, 3]  # the kept epoch (1: the lowest val_loss) is at 0.25, the baseline
    assert trainer.chance_level_warning(kept(history), config, balanced, 44, cropped=True) == (
        "warning: the model is no better than chance: its validation accuracy (0.2500) is no higher than always "
        "answering the validation split's most common class (0.2500); with 2 steps per epoch it had few updates "
        "to learn from: try --batch-size 8")
    assert "check the labels" in trainer.chance_level_warning(kept(history), config, balanced, 4000, cropped=True)
    # 0.25 < 0.75
    assert trainer.chance_level_warning(kept(history), config, [0, 0, 0, 1], 4000, cropped=True) is not None
    better = kept({**history, "val_accuracy": [0.375, 0.5, 0.25]})
    assert trainer.chance_level_warning(better, config, balanced, 44, cropped=True) is None
    # at the default train.min_steps_per_epoch the 44 clips make 16 steps an epoch: no batch-size advice
    cycled = apply_overrides(config, {"train.min_steps_per_epoch": 16})
    assert "check the labels" in trainer.chance_level_warning(kept(history), cycled, balanced, 44, cropped=True)
    # in a run: the log line after how training ended (its balanced accuracy scripted as its accuracy is)
    lines: list[str] = []
    monkeypatch.setattr(trainer, "balanced_accuracy", lambda *args: 0.0)
    _scripted_run(tmp_path, monkeypatch, [1.0, 0.9], [0.0, 0.0], log=lines.append)
    assert any(line.startswith("warning: the model is no better than chance: its validation accuracy (0.0000)")
               for line in lines), lines


def test_a_model_above_chance_in_balanced_accuracy_is_not_called_chance_on_uneven_classes():
    """With classes as uneven as 40 : 6 : 4 (normal machines and two faults), class weights trade a few clips of
    the common class for the rare ones: 8 of 10 validation clips right, all 2 faults among them, is the 0.8 that
    always answering 'normal' scores, and was called 'no better than chance', at a balanced accuracy of 0.92.
    The balanced accuracy of the kept weights (read only then) must be at chance too, one over the classes."""
    import tensorflow as tf

    from sound_tf import trainer

    config = apply_overrides(Config(), {"train.batch_size": 32})
    labels = [0] * 8 + [1, 2]  # baseline 0.8
    at_baseline = trainer.kept_validation({"loss": [1.0], "val_loss": [0.5], "val_accuracy": [0.8]},
                                          trainer.BEST_WEIGHTS, 10)
    assert trainer.chance_level_warning(at_baseline, config, labels, 4000, cropped=False,
                                        balanced=lambda: (6 / 8 + 1 + 1) / 3) is None
    assert trainer.chance_level_warning(at_baseline, config, labels, 4000, cropped=False,
                                        balanced=lambda: 1 / 3).startswith(
        "warning: the model is no better than chance: its validation accuracy (0.8000)")
    assert trainer.chance_level_warning(at_baseline, config, labels, 4000, cropped=False) is not None  # unchecked

    def unread() -> float:
        raise AssertionError("the validation clips were scored for no warning")

    above = trainer.kept_validation({"loss": [1.0], "val_loss": [0.5], "val_accuracy": [0.9]}, trainer.BEST_WEIGHTS, 10)
    assert trainer.chance_level_warning(above, config, labels, 4000, cropped=False, balanced=unread) is None
    # the balanced accuracy of a model over batches, as the run reads it: recalls 2/4, 1/1, 1/1 -> 0.8333
    guesses = tf.one_hot([0, 0, 1, 1, 1, 2], 3)  # [clips, classes]
    batches = [(tf.range(3, dtype=tf.int32), None), (tf.range(3, 6, dtype=tf.int32), None)]
    model = lambda waves, training: tf.gather(guesses, waves)  # noqa: E731
    assert trainer.balanced_accuracy(model, batches, [0, 0, 0, 0, 1, 2]) == pytest.approx((0.5 + 1 + 1) / 3)


def test_the_chance_warning_advises_a_longer_clip_only_when_recordings_are_cropped(tmp_path, monkeypatch):
    """'... or a --clip-seconds that holds each sound whole' was advised when every recording was shorter than
    its clip (padded whole into it): the advice is given only when a training or validation recording is longer
    than the clip, which longer_than_clip counts from the decode-cache files' sizes."""
    from sound_tf import trainer
    from sound_tf.audio import write_wav
    from sound_tf.datasets import longer_than_clip

    config = apply_overrides(Config(), {"train.batch_size": 32})
    history = {"loss": [1.0], "val_loss": [0.9], "val_accuracy": [0.5]}
    padded = trainer.chance_level_warning(kept(history), config, [0, 0, 1, 1], 4000, cropped=False)
    assert padded.endswith("(0.5000); check the labels, or try more epochs or a larger "
                           "train.early_stopping_patience"), padded
    assert trainer.chance_level_warning(kept(history), config, [0, 0, 1, 1], 4000, cropped=True).endswith(
        "or a --clip-seconds that holds each sound whole")
    # given as a function (it reads every file's size), it is called only for the warning's advice
    assert trainer.chance_level_warning(kept(history), config, [0, 0, 1, 1], 4000, cropped=lambda: True) == \
        trainer.chance_level_warning(kept(history), config, [0, 0, 1, 1], 4000, cropped=True)

    def unread() -> bool:
        raise AssertionError("the recordings' lengths were read for no warning")

    learnt = kept({"loss": [1.0], "val_loss": [0.9], "val_accuracy": [0.75]})
    assert trainer.chance_level_warning(learnt, config, [0, 0, 1, 1], 4000, cropped=unread) is None
    # the count, by the data summary's rule (datasets.lengths_line): a file up to 10 ms (CLIP_SLACK_SECONDS, the
    # rounding of resampling) longer than the clip is not cropped, one sample more is
    from sound_tf.datasets import CLIP_SLACK_SECONDS, lengths_line

    clip, slack = 4000, round(CLIP_SLACK_SECONDS * SR)
    paths = []
    for name, samples in (("short", clip - 1), ("exact", clip), ("within", clip + slack), ("long", clip + slack + 1),
                          ("longer", 9000)):
        paths.append(str(write_wav(tmp_path / f"{name}.wav", np.zeros(samples, np.float32), SR)))
    assert longer_than_clip(paths, SR, clip / SR) == 2
    assert longer_than_clip(paths[:3], SR, clip / SR) == 0
    assert ": 2 of 5 recordings are longer than a clip" in lengths_line(paths, SR, clip / SR)  # the same 2
    # in a run: recordings of 0.42-0.78 s in clips of 1 s are all padded, 6 steps of 2 clips per epoch
    lines: list[str] = []
    result, _ = _scripted_run(tmp_path, monkeypatch, [1.0, 0.9], [0.0, 0.0], log=lines.append,
                              **{"audio.clip_seconds": 1.0, "train.batch_size": 2})
    items = [item.cached for name in ("train", "val") for item in result.data.splits[name]]
    audio = result.config.audio
    assert longer_than_clip(items, audio.sample_rate_hz, audio.clip_seconds) == 0
    warned = [line for line in lines if line.startswith("warning: the model is no better than chance")]
    assert len(warned) == 1 and warned[0].endswith("check the labels, or try more epochs or a larger "
                                                   "train.early_stopping_patience"), lines
    assert longer_than_clip(items, audio.sample_rate_hz, 0.5) > 0


def test_how_training_ended_on_a_runs_last_epoch_or_its_only_one():
    """Mutation audit of how_training_ended: a run that met its patience on its last epoch ran all its epochs
    (early stopping ended nothing), one epoch is 'its 1 epoch', and an infinite loss is no best, as a NaN."""
    from sound_tf import trainer

    config = apply_overrides(Config(), {"train.epochs": 4, "train.early_stopping_patience": 2})
    history = {"loss": [2.0, 1.5, 1.2, 1.1], "val_loss": [1.0, 0.4, 0.7, 0.45]}
    best = history["val_loss"].index(min(history["val_loss"]))
    assert trainer._early_stopped(history, config)  # 2 epochs since the best: patience met on epoch 4 of 4
    assert trainer.how_training_ended(history, config, trainer.BEST_WEIGHTS) == (
        f"training ended after its 4 epochs; the model keeps epoch {best + 1}'s weights, its lowest validation loss "
        f"({min(history['val_loss']):.4f}; checkpoints/best.weights.h5)")
    one = apply_overrides(config, {"train.epochs": 1})
    assert trainer.how_training_ended({"loss": [2.0], "val_loss": [0.9]}, one, trainer.BEST_WEIGHTS).startswith(
        "training ended after its 1 epoch; the model keeps epoch 1's weights")
    inf, nan = float("inf"), float("nan")
    assert trainer.best_so_far([inf, inf]) == (None, 2)
    assert trainer.best_so_far([inf, 0.8, inf]) == (0.8, 1)
    # Keras never stops after epoch 1, whatever its loss and patience
    assert not trainer._early_stopped({"val_loss": [nan]},
                                      apply_overrides(config, {"train.early_stopping_patience": 1}))


def test_the_batch_size_advice_is_the_largest_power_of_two_that_gives_five_steps():
    """Mutation audit of smaller_batch and few_steps_warning: the advice is a power of two (50 clips in batches of
    32: 16 gives 3 steps, 8 gives 6; 10 would give 5 too, but is no power of two)."""
    from sound_tf import pipeline, trainer

    config = apply_overrides(Config(), {"train.batch_size": 32, "train.early_stopping_patience": 8,
                                        "train.min_steps_per_epoch": 1})
    for clips in (50, 44, 70):
        powers = [s for s in (2, 4, 8, 16) if pipeline.batches_per_epoch(clips, s) >= trainer.MIN_STEPS_PER_EPOCH]
        assert trainer.smaller_batch(clips, config) == max(powers), clips
    assert trainer.smaller_batch(50, config) == 8


def test_a_warning_of_one_training_clip_says_it_makes_its_steps():
    """'1 training clip in batches of 32 make 1 step per epoch': the count was singular, its verb not."""
    from sound_tf import trainer

    config = apply_overrides(Config(), {"train.batch_size": 32, "train.early_stopping_patience": 8,
                                        "train.min_steps_per_epoch": 1})
    assert trainer.few_steps_warning(1, config).startswith(
        "warning: 1 training clip in batches of 32 makes 1 step per epoch: ")
    assert trainer.few_steps_warning(2, config).startswith("warning: 2 training clips in batches of 32 make 1 step ")


def test_the_chance_warning_measures_against_the_most_common_class_and_counts_steps():
    """Mutation audit of chance_level_warning: the baseline is the most common class's share (3 of 4 clips: 0.75),
    not one over the classes (0.5); 5 steps per epoch are enough (no batch-size advice); 1 step is 'step'."""
    from sound_tf import pipeline, trainer

    config = apply_overrides(Config(), {"train.batch_size": 32, "train.min_steps_per_epoch": 1})
    history = {"loss": [1.0], "val_loss": [0.9], "val_accuracy": [0.6]}
    uneven = [0, 0, 0, 1]
    baseline = Counter(uneven).most_common(1)[0][1] / len(uneven)
    warned = trainer.chance_level_warning(kept(history), config, uneven, 4000, cropped=True)
    assert warned is not None and f"than always answering the validation split's most common class ({baseline:.4f})" \
        in warned and f"its validation accuracy ({0.6:.4f})" in warned
    balanced = [0, 0, 1, 1]
    at_chance = kept({**history, "val_accuracy": [0.5]})
    five = 5 * 32
    assert pipeline.batches_per_epoch(five, 32) == trainer.MIN_STEPS_PER_EPOCH
    assert "check the labels" in trainer.chance_level_warning(at_chance, config, balanced, five, cropped=True)
    assert trainer.steps_per_epoch(32, config) == 1
    size = trainer.smaller_batch(32, config)
    assert size is not None
    assert trainer.chance_level_warning(at_chance, config, balanced, 32, cropped=True).endswith(
        f"with 1 step per epoch it had few updates to learn from: try --batch-size {size}")


def test_the_note_on_uneven_classes_names_ties_by_name_and_gives_the_ratio_to_a_decimal():
    """Mutation audit of imbalance_note: of classes of equal size the first name is given, whatever the order
    the clips came in, and the ratio is the counts' quotient (10 to 3: 3.3, not 3.0)."""
    from sound_tf import trainer

    config = Config()
    assert "from 3 clips (owl) to 12 (robin), 4.0 to 1" in trainer.imbalance_note(
        ["wren"] * 12 + ["robin"] * 12 + ["owl"] * 3, config)
    assert "from 2 clips (a) to 6 (c), 3.0 to 1" in trainer.imbalance_note(["b"] * 2 + ["c"] * 6 + ["a"] * 2, config)
    assert f"from 3 clips (b) to 10 (a), {10 / 3:.1f} to 1" in trainer.imbalance_note(["a"] * 10 + ["b"] * 3, config)


def test_a_damaged_run_state_elsewhere_under_runs_does_not_stop_a_new_run(tmp_path, monkeypatch, capsys):
    """find_resumable_run read every runs/*/run_state.json: one that was not JSON (edited by hand) ended
    every train command without --out in a JSONDecodeError traceback. It is passed over; given as --out,
    it is an error naming the file."""
    from sound_tf.errors import SoundTFError
    from sound_tf.trainer import read_state

    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    monkeypatch.chdir(tmp_path)
    damaged = tmp_path / "runs" / "20200101-000000"
    damaged.mkdir(parents=True)
    (damaged / "run_state.json").write_text('{"status": "running", "finger')
    listed = tmp_path / "runs" / "20200101-000001"
    listed.mkdir()
    (listed / "run_state.json").write_text('["running"]')
    flags = ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--batch-size", "8",
             "--quiet", "--epochs", "1", "--no-augment"]
    assert train.main(flags) == 0, capsys.readouterr().err
    assert len(list((tmp_path / "runs").iterdir())) == 3
    for run, problem in ((damaged, "not valid JSON"), (listed, "holds list, not the JSON object")):
        with pytest.raises(SoundTFError, match=re.escape(f"{run / 'run_state.json'}: {problem}")):
            read_state(run)


def test_the_backup_and_model_keras_are_refused_too_on_a_disk_too_full_for_them(tmp_path, monkeypatch):
    """The room check guards every h5py write of a run, not only the best weights: the backup of each epoch
    and model.keras (a segfault there ended the run as one in the best weights did)."""
    import collections

    from sound_tf import atomic, trainer

    scope: dict = {}
    exec(f"from pathlib import Path\nRUN = Path({str(tmp_path / 'run')!r})\nHISTORY = {{}}\n" + _WEIGHTS_MODEL, scope)
    model, callbacks = scope["model"], scope["callbacks"]
    backup = next(c for c in callbacks if isinstance(c, trainer.AtomicBackupAndRestore))
    backup.set_model(model)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda folder: usage(10**9, 10**9 - 4096, 4096))
    with pytest.raises(OSError, match="No space left on device: 4,096 bytes free there") as info:
        backup._save_model()
    assert info.value.filename.endswith("weights.h5") and "backup" in info.value.filename
    with pytest.raises(OSError, match="No space left on device") as info:
        trainer.save_model_whole(model, tmp_path / "run" / "model.keras")
    assert info.value.filename == str(tmp_path / "run" / "model.keras")
    assert not (tmp_path / "run" / "model.keras").exists()


def test_a_resumed_runs_nan_validation_loss_is_no_best_epoch():
    """The resumed run's best took min() and np.argmin() of the history: with a NaN first, the best was NaN,
    so the checkpoint (its threshold NaN) saved no later epoch, and patience counted from the NaN epoch
    where Keras counts from the lowest finite loss."""
    from sound_tf import trainer

    nan, inf = float("nan"), float("inf")
    assert trainer.best_so_far([nan, 1.0, 0.9, 0.95]) == (0.9, 1)
    assert trainer.best_so_far([0.5, nan, 0.5, inf]) == (0.5, 3)  # an equal loss later is no improvement
    assert trainer.best_so_far([nan, nan]) == (None, 2) and trainer.best_so_far([]) == (None, 0)
    config = apply_overrides(Config(), {"labels": ["a", "b"], "train.early_stopping_patience": 2})
    assert not trainer._early_stopped({"val_loss": [nan, 1.0, 0.9]}, config)  # argmin: 2 epochs since the NaN
    assert trainer._early_stopped({"val_loss": [nan, 0.9, 1.0, 1.1]}, config)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    for history, best, wait in (({"val_loss": [nan, 1.0, 0.9]}, 0.9, 0),
                                ({"val_loss": [nan, nan]}, None, 2)):  # None: as a new run starts
        callbacks = trainer._callbacks(config, Path("unused"), history, started=0.0, seconds_before=0.0)
        checkpoint = next(c for c in callbacks if isinstance(c, trainer.AtomicModelCheckpoint))
        stopping = next(c for c in callbacks if isinstance(c, trainer.ResumableEarlyStopping))
        stopping.set_model(model)
        stopping.on_train_begin()
        assert (checkpoint.best, stopping.best, stopping.wait) == (best, best, wait), history


def test_defaults_recipe_flags_and_set_overrides_take_precedence_in_that_order(tmp_path, monkeypatch):
    """A recipe's strict = true and [augment] enabled = false held only while no flag was given: --strict and
    --no-augment default to "not given", not to off and on. A flag overrides the recipe and --set the flag
    (--epochs 3 --set train.epochs=5 trains 5 epochs). --data ' ' is as empty as --data '', and ~ in --data
    is the home folder. A recipe's blank path is as empty as ''."""
    from sound_tf.errors import ConfigError

    recipe = tmp_path / "mine.toml"
    recipe.write_text('[data]\nstrict = true\n[augment]\nenabled = false\n[train]\nepochs = 7\n')
    got = config_from_flags("--pipeline", str(recipe))
    assert (got.data.strict, got.augment.enabled, got.train.epochs) == (True, False, 7)
    assert Config().data.strict is False and Config().augment.enabled is True  # the recipe's, not the defaults
    assert config_from_flags("--pipeline", str(recipe), "--epochs", "3").train.epochs == 3
    assert config_from_flags("--pipeline", str(recipe), "--epochs", "3", "--set", "train.epochs=5").train.epochs == 5
    with pytest.raises(ConfigError, match="--data is empty"):
        config_from_flags("--data", "  ")
    blank = tmp_path / "blank.toml"
    blank.write_text('[data]\nsplit_file = "  "\n')  # as empty as "", not a folder named by two spaces
    with pytest.raises(ConfigError, match=r"^data\.split_file is empty in the pipeline recipe"):
        config_from_flags("--pipeline", str(blank))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_from_flags("--data", "~/data", "--pipeline", str(recipe)).data.path == str(tmp_path / "data")


def test_a_recipes_noise_folder_and_a_folder_not_in_the_speech_commands_layout_keep_their_noise(tmp_path, capsys):
    """The Speech Commands _background_noise_ is used only when no noise folder is chosen, a recipe's included
    (it replaced the recipe's), and only for data in that layout: a folder of classes beside a
    _background_noise_ folder of its own (read with --format auto) keeps generated noise."""
    root = make_speech_commands(tmp_path / "speech_commands")
    mine = tmp_path / "mine_noise"
    mine.mkdir()
    sf.write(mine / "fan.wav", 0.1 * np.ones(SR, np.float32), SR)  # a folder training can read (check_noise_dir)
    recipe = tmp_path / "mine.toml"
    recipe.write_text(f'[data]\nformat = "speech_commands"\n[augment]\nnoise_dir = "{mine}"\n')
    assert config_from_flags("--data", str(root), "--pipeline", str(recipe)).augment.noise_dir == str(mine)
    tree = make_tree(tmp_path / "tree", clips_per_class=1, corrupt=False)
    (tree / "_background_noise_").mkdir()
    sf.write(tree / "_background_noise_" / "hiss.wav", np.zeros(SR, np.float32), SR)
    plain = tmp_path / "plain.toml"
    plain.write_text('[train]\nepochs = 1\n')  # no format: auto, and detected as a folder of classes
    capsys.readouterr()
    got = config_from_flags("--data", str(tree), "--pipeline", str(plain))
    assert (got.data.format, got.augment.noise_dir) == ("auto", None)
    assert "augment.noise_dir" not in capsys.readouterr().err
    # the Speech Commands folder read with that recipe (format auto) is detected, and gets its noise
    got = config_from_flags("--data", str(root), "--pipeline", str(plain))
    assert (got.data.format, got.augment.noise_dir) == ("auto", str(root / "_background_noise_"))


def test_set_data_format_chooses_a_layouts_recipe_as_format_does(tmp_path, capsys):
    """--set data.format=esc50 is --format esc50: the esc50 recipe (22,050 Hz, 5-s clips), said on stderr."""
    from sound_tf.config import config_from_recipe

    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,label\n")
    capsys.readouterr()
    got = config_from_flags("--data", str(manifest), "--set", "data.format=esc50")
    assert got == config_from_recipe("esc50", {"data.path": str(manifest)})
    assert got.audio.sample_rate_hz == 22050 and "--format esc50: using the esc50 recipe" in capsys.readouterr().err


def _finished_run(run: Path, config: Config, **state) -> Path:
    """A run folder whose training finished with ``config`` (its config.json and run_state.json)."""
    from sound_tf.trainer import write_state

    run.mkdir(parents=True, exist_ok=True)
    config.save(run)
    write_state(run, status="done", fingerprint=config.fingerprint(), **state)
    return run


def _no_training(monkeypatch) -> None:
    """Make ``trainer.train_run`` refuse at once: a test of what ``train`` does around a finished run."""
    from sound_tf import trainer
    from sound_tf.errors import ConfigError

    def stop(config, run_dir, *, log, verbose):
        raise ConfigError("training was asked for")

    monkeypatch.setattr(trainer, "train_run", stop)


def test_a_train_export_that_succeeds_says_so_with_its_bundle_and_sizes(tmp_path, monkeypatch, capsys):
    """`train --export micro --quiet` (session 49's keyword-spotting walkthrough): the export child prints only
    errors under --quiet, and train.log never held its lines, so a finished export left the output and the log
    ending with 'exporting: python -m sound_tf.export ...' and nothing after. Now a line gives the bundle and its
    models' sizes from its export.json (KB of 1,024 bytes, as export's log), and the bundle alone without one. A
    TFLite model's flatbuffer (the file less its appended archive, export.json's flatbuffer_bytes) is given beside
    its file, as export's log gives it: a microcontroller user read the file's size as the flash it takes. The C
    source micro.toml writes is named in export's words, where export's line named it and train's did not."""
    _no_training(monkeypatch)
    data = make_tree(tmp_path / "data", clips_per_class=1, corrupt=False)
    out = tmp_path / "run"
    settings = ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--epochs", "1"]
    _finished_run(out, config_from_flags(*settings), export_profile="micro", export_done=False)

    def export(command, *, pass_fds, env):  # a micro bundle as export writes it
        (out / "export").mkdir()
        (out / "export" / "export.json").write_text(json.dumps({"artefacts": {
            "keras": {"size_bytes": 492631},
            "int8": {"size_bytes": 128513, "flatbuffer_bytes": 121345,
                     "c_source": {"files": ["model_int8.cc", "model_int8.h"]}},
            "int8_features": {"size_bytes": 63315, "flatbuffer_bytes": 56147,
                              "c_source": {"files": ["model_int8_features.cc", "model_int8_features.h"]}}}}))
        return 0

    monkeypatch.setattr(train, "call_child", export)
    assert train.main([*settings, "--out", str(out), "--quiet", "--export", "micro"]) == 0
    line = (f"the export passed its checks: {out / 'export'} holds int8 125.5 KB (flatbuffer 118.5 KB), "
            f"int8_features 61.8 KB (flatbuffer 54.8 KB) (its export.json gives each model's latency and agreement "
            f"with Keras); C source for TensorFlow Lite Micro: model_int8.cc, model_int8.h, model_int8_features.cc "
            f"and model_int8_features.h")  # the files, as export's own last line names them (micro.toml's c_source)
    log_text = (out / "train.log").read_text()
    assert log_text.rstrip().endswith(line), log_text[-400:]
    assert line in capsys.readouterr().out
    (out / "export" / "export.json").write_text(json.dumps({"artefacts": {  # a SavedModel is no flatbuffer
        "saved_model": {"size_bytes": 251904}, "float32": {"size_bytes": 40960, "flatbuffer_bytes": 33792}}}))
    assert train.export_done_line(out / "export") == (
        f"the export passed its checks: {out / 'export'} holds saved_model 246.0 KB, float32 40.0 KB (flatbuffer "
        f"33.0 KB) (its export.json gives each model's latency and agreement with Keras)")
    (out / "export" / "export.json").write_text("{")  # damaged: the bundle alone
    assert train.export_done_line(out / "export") == (
        f"the export passed its checks: {out / 'export'} (its export.json gives each model's latency and agreement "
        f"with Keras)")


def test_a_stopped_export_is_resumed_only_by_a_command_that_exports_with_the_same_settings(tmp_path, monkeypatch):
    """Without --export, a finished run whose export was stopped is not resumed (the command would train
    nothing, export nothing and end with 0); with --export and other settings, --out refuses it as a
    finished run (it exported the old run under the new command's flags) and gives the folder back, as every
    refusal does. A new run folder is named by the time alone."""
    from sound_tf.errors import ConfigError
    from sound_tf.locks import release_folder

    monkeypatch.chdir(tmp_path)
    config = Config()
    stopped = _finished_run(tmp_path / "runs" / "20260101-000000", config, export_profile="default",
                            export_done=False)
    fresh = train.resolve_run_dir(None, config)
    assert fresh != Path("runs") / stopped.name and re.fullmatch(r"\d{8}-\d{6}", fresh.name), fresh
    release_folder(fresh)
    assert train.resolve_run_dir(None, config, exporting=True) == Path("runs") / stopped.name
    release_folder(stopped)
    other = apply_overrides(config, {"train.epochs": 3})
    for exporting in (True, False):
        with pytest.raises(ConfigError, match=rf"{stopped}: holds a finished run; pass --overwrite"):
            train.resolve_run_dir(str(stopped), other, exporting=exporting)
        assert _claims(stopped)  # refused: not kept claimed by this process


def test_a_run_that_finishes_while_it_is_claimed_is_not_resumed_and_is_given_back(tmp_path, monkeypatch):
    """find_resumable_run checks the run again once it holds it: one that another process finished between the
    look and the claim is not trained again, and its claim is given back."""
    from sound_tf import locks
    from sound_tf.locks import release_folder
    from sound_tf.trainer import write_state

    monkeypatch.chdir(tmp_path)
    config = Config()
    run = tmp_path / "runs" / "20260101-000000"
    run.mkdir(parents=True)
    write_state(run, status="running", fingerprint=config.fingerprint())
    real = locks.claim_folder

    def finished_meanwhile(folder):
        if Path(folder).resolve() == run.resolve():
            write_state(run, status="done")  # the other process ended its run just now
        return real(folder)

    monkeypatch.setattr(locks, "claim_folder", finished_meanwhile)
    got = train.resolve_run_dir(None, config)
    assert got.resolve() != run.resolve() and json.loads((run / "run_state.json").read_text())["status"] == "done"
    release_folder(got)
    assert _claims(run)


def test_run_log_writes_the_console_format_drops_per_run_retracing_and_ends_with_its_block(tmp_path):
    """crossval's fold folders and a search's best_run get their train.log from run_log: the time before each
    line as the console has it, no retracing warning of the functions made anew for each fold, and nothing
    logged after the block."""
    import logging

    tf_log, saved_level = logging.getLogger("tensorflow"), logging.getLogger("tensorflow").level
    tf_log.setLevel(logging.WARNING)
    try:
        with train.run_log(tmp_path / "fold_1"):
            logging.getLogger("sound_tf").warning("fold 1 of 3")
            tf_log.warning("5 out of the last 9 calls to <function TensorFlowTrainer._make_function.<locals>."
                           "multi_step_on_iterator at 0x7f3e> triggered tf.function retracing. Tracing is expensive")
        logging.getLogger("sound_tf").warning("fold 2 of 3")
    finally:
        tf_log.setLevel(saved_level)
    lines = (tmp_path / "fold_1" / "train.log").read_text().splitlines()
    assert len(lines) == 1 and re.fullmatch(r"\d\d:\d\d:\d\d fold 1 of 3", lines[0]), lines


def test_progress_bars_show_on_a_terminal_unless_quiet(monkeypatch):
    """Keras's bars on a terminal ("auto"), none with --quiet or on a redirected stdout (0)."""
    for isatty, quiet, expected in ((True, False, "auto"), (True, True, 0), (False, False, 0)):
        monkeypatch.setattr(sys, "stdout", type("Out", (), {"isatty": lambda self, t=isatty: t})())
        assert train.progress_bars(quiet) == expected, (isatty, quiet)


def test_a_stopped_export_runs_again_with_the_default_profile_and_its_exit_code_is_the_commands(
        tmp_path, monkeypatch):
    """`train --export` (no profile named) exports with export/default.toml; a failed export is the command's
    exit code, and the run is not marked exported, so the same command exports it again. A run killed while it
    trained (its export asked for from the start) trains on before it exports, and a run finished without
    --export is a finished run to this command, not an export to resume. (Training stops here at once.)"""
    from sound_tf.locks import PARENT_ENV, lock_descriptor
    from sound_tf.trainer import read_state, write_state

    _no_training(monkeypatch)

    data = make_tree(tmp_path / "data", clips_per_class=1, corrupt=False)
    out = tmp_path / "run"
    settings = ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--epochs", "1"]
    _finished_run(out, config_from_flags(*settings), export_profile="default", export_done=False)
    commands = []

    def export(command, *, pass_fds, env):  # the export child, told this command's pid and given its lock
        assert pass_fds == (lock_descriptor(out),) and env[PARENT_ENV] == str(os.getpid()), (pass_fds, env)
        commands.append(command)
        return code

    monkeypatch.setattr(train, "call_child", export)
    for code, quiet in ((3, ["--quiet"]), (1, ["--quiet"]), (0, [])):
        assert train.main([*settings, "--out", str(out), *quiet, "--export"]) == code
        assert read_state(out)["export_done"] is (code == 0)
    # the commands exported again after an export failed, and their line says so
    log_text = (out / "train.log").read_text()
    assert log_text.count("training had finished and its export did not (it was stopped or failed); exporting it "
                          "again") == 3
    # export's own failure (exit code 1: its refusal names --allow-degraded, a flag train refuses) is followed by
    # the export command that accepts it; an exit code of 3 is no export's failure and gets no such line
    # (the walkthrough of session 46: 'train --export micro' on 150 clips, int8_features 97.33% < 98%)
    assert log_text.count("the export failed") == 1 and (
        f"the export failed (its error is above); the trained run is kept. `python -m sound_tf.export {out} --profile "
        f"default --allow-degraded` accepts an export that missed its parity thresholds (train has no "
        f"--allow-degraded) and marks this run's export done; this command run again exports again\n") in log_text
    # --quiet is passed on: the export's progress lines printed under train --export --quiet
    assert commands[2][-3:] == [str(out), "--profile", "default"] and commands[0] == [*commands[2], "--quiet"], commands
    write_state(out, status="running", export_done=False)  # killed while it trained
    assert train.main([*settings, "--out", str(out), "--quiet", "--export"]) == 2 and len(commands) == 3
    assert read_state(out)["status"] == "running"
    unasked = _finished_run(tmp_path / "unasked", config_from_flags(*settings))
    assert train.main([*settings, "--out", str(unasked), "--quiet", "--export"]) == 2 and len(commands) == 3


def test_a_new_run_under_runs_alone_names_its_finished_twin_and_training_gets_progress_bars_on_a_terminal(
        tmp_path, monkeypatch, capsys):
    """The note naming a finished run with the same settings is for a new run under runs/: not for --out (its
    parent is no runs/ of the command's) nor for a run resumed there, and it names a finished run, not one whose
    command stopped before it trained. Training is handed Keras's progress bars
    on a terminal, and none with --quiet. (Training itself stops here at once.)"""
    from sound_tf import trainer
    from sound_tf.errors import ConfigError

    handed = []

    def stop(config, run_dir, *, log, verbose):
        handed.append(verbose)
        raise ConfigError("stopped before training")

    monkeypatch.setattr(trainer, "train_run", stop)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.chdir(tmp_path)
    data = make_tree(tmp_path / "data", clips_per_class=1, corrupt=False)
    settings = ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--epochs", "1"]
    config = config_from_flags(*settings)
    twin = _finished_run(tmp_path / "runs" / "20200101-000000", config)
    note = f"runs/{twin.name} finished with these settings"
    early = tmp_path / "runs" / "20200101-000002"  # a `train --export` stopped before training: not finished
    early.mkdir()
    trainer.write_state(early, fingerprint=config.fingerprint(), export_profile="default", export_done=False)
    holder = _hold(early)  # resumable, but held by another process: passed over
    try:
        assert train.main(settings) == 2  # a new run under runs/
    finally:
        holder.kill()
        holder.wait()
    out = capsys.readouterr().out
    assert note in out and early.name not in out, out
    assert train.main(settings) == 2  # resumed: a run that never trained is as new as one just made
    out = capsys.readouterr().out
    assert f"runs/{early.name}: its command was stopped before training began" in out and note in out, out
    assert train.main([*settings, "--out", str(tmp_path / "runs" / "mine")]) == 2
    assert "finished with these settings" not in capsys.readouterr().out
    resumed = tmp_path / "runs" / "20200101-000001"
    resumed.mkdir()
    trainer.write_state(resumed, status="running", fingerprint=config.fingerprint())
    assert train.main([*settings, "--quiet"]) == 2
    assert "finished with these settings" not in capsys.readouterr().out
    assert handed == ["auto", "auto", "auto", 0]


def test_a_path_given_with_a_tilde_by_set_or_a_recipe_is_the_home_folders(tmp_path, monkeypatch):
    """--set data.path=~/speech_commands (the shell leaves that ~ alone) and a recipe's path = "~/..." were kept
    as typed: the run was not found again from --data ~/speech_commands (another data.path, another
    fingerprint), and the Speech Commands folder's _background_noise_ was looked for in a folder named '~' of
    the current one: generated noise, without a word. They are expanded as --data's is, and so are the other
    paths, a split file's, a noise folder's and the decode cache's."""
    home = tmp_path / "home"
    root = make_speech_commands(home / "speech_commands")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    flagged = config_from_flags("--data", "~/speech_commands", "--epochs", "1")
    assert (flagged.data.path, flagged.augment.noise_dir) == (str(root), str(root / "_background_noise_"))
    assert config_from_flags("--set", "data.path=~/speech_commands", "--epochs", "1") == flagged
    (home / "noise").mkdir()
    sf.write(home / "noise" / "fan.wav", 0.1 * np.ones(SR, np.float32), SR)  # one training can read (check_noise_dir)
    recipe = tmp_path / "mine.toml"
    recipe.write_text('[data]\npath = "~/speech_commands"\nsplit_file = "~/split.csv"\ncache_dir = "~/cache"\n'
                      '[augment]\nnoise_dir = "~/noise"\n')
    got = config_from_flags("--pipeline", str(recipe))
    assert (got.data.path, got.data.split_file, got.data.cache_dir, got.augment.noise_dir) == (
        str(root), str(home / "split.csv"), str(home / "cache"), str(home / "noise"))


_CHILD = """
import os, sys, time
from pathlib import Path
out = Path(sys.argv[1])
if sys.argv[2] == "ignore":
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
(out / "pid").write_text(str(os.getpid()))
try:
    time.sleep(60)
except KeyboardInterrupt:  # an export removing its half-built bundle, slower than the parent's own Ctrl-C
    deadline = time.monotonic() + 30
    while not (out / "parent_signalled").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    (out / "cleaned").write_text("yes")
    sys.exit(130)
"""


def _interrupt_both(out: Path) -> None:
    """Ctrl-C as a terminal sends it: to the child and to this process (the parent), the child first. The child's
    clean-up waits for ``parent_signalled``, written once both signals are sent. On a loaded machine this thread
    could be held up between the two for longer than the clean-up took: the child ended, ``call_child`` returned
    its code, and the test failed with "DID NOT RAISE KeyboardInterrupt" (seen once at load 6, session 55)."""
    import threading

    def send() -> None:
        while not (out / "pid").exists():
            time.sleep(0.02)
        time.sleep(0.1)
        os.kill(int((out / "pid").read_text()), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        (out / "parent_signalled").write_text("yes")

    threading.Thread(target=send, daemon=True).start()


def test_train_export_child_ends_on_the_ctrl_c_before_train_does(tmp_path):
    """`train --export` stopped by Ctrl-C (timeout -s INT) during its export: subprocess.call killed the
    export child as soon as the parent got the KeyboardInterrupt, while the child, stopped by the same
    Ctrl-C, was removing its .export.building-* folder, which the next run then found ('removed ..., left by
    an export that was stopped'). The child now ends on its own (here 0.3 s of clean-up); one that ignores
    the signal is killed after stop_seconds."""
    for mode, stop_seconds in (("clean", 10.0), ("ignore", 0.5)):
        out = tmp_path / mode
        out.mkdir()
        _interrupt_both(out)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            train.call_child([sys.executable, "-c", _CHILD, str(out), mode], stop_seconds=stop_seconds)
        elapsed = time.monotonic() - started
        pid = int((out / "pid").read_text())
        with pytest.raises(ProcessLookupError):  # ended and reaped either way
            os.kill(pid, 0)
        if mode == "clean":
            assert (out / "cleaned").read_text() == "yes" and elapsed < 5.0
        else:
            assert not (out / "cleaned").exists() and elapsed >= 0.5


_STOP_LINE = "finished work is kept (train, crossval and tune resume from it when the same command runs again)"


def test_a_sigterm_stops_training_cleanly_and_the_same_command_resumes_after_its_last_epoch(tmp_path, capsys):
    """`kill PID`, `timeout` or a scheduler's SIGTERM ended training silently: no line on stderr or in train.log
    (which ended mid-run with no reason), exit code -15, and the folder's lock and clean-up left to the kernel.
    Now it stops as a Ctrl-C does: one line naming the signal, on stderr and at the end of train.log, exit code
    143, the folder free, and the same command resumes after the last epoch whose backup was written."""
    data = make_tree(tmp_path / "data", clips_per_class=8, corrupt=False)
    out = tmp_path / "run"
    # 40 epochs: those after the first take about 0.1 s each here, and the SIGTERM sent once the first epoch's
    # backup is seen must land before the run ends; with 12 (1.3 s left) 1 of 9 tries failed, its exit code not
    # 143 and nothing on stderr but the recipe's notice, as when the run had finished first
    cmd = [sys.executable, "-m", "sound_tf.train", *_flags(data, out, "--epochs", "40", "--no-augment",
                                                            "--set", "train.early_stopping_patience=50")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    meta = out / "backup" / "state" / "training_metadata.json"
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(first, lambda: json.loads(meta.read_text())["epoch"] >= 1)  # an epoch logged, its backup whole
    first.send_signal(signal.SIGTERM)
    said, err = first.communicate(timeout=60)
    assert first.returncode == 143, (first.returncode, said[-2000:], err[-2000:])
    assert err.splitlines()[-1] == f"stopped by SIGTERM; {_STOP_LINE}", err[-2000:]
    log = (out / "train.log").read_text()
    assert log.count("stopped by SIGTERM") == 1 and log.rstrip().endswith(f"stopped by SIGTERM; {_STOP_LINE}")
    assert json.loads((out / "run_state.json").read_text())["status"] == "running" and _claims(out)
    done_before = json.loads(meta.read_text())["epoch"]
    assert 1 <= done_before < 40
    assert train.main(cmd[3:]) == 0  # the same command, in this process
    resumed = capsys.readouterr().out
    assert f"resuming the run in {out} after epoch {done_before}\n" in resumed, resumed[-3000:]
    with (out / "history.csv").open() as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(40))  # each epoch once
    assert json.loads((out / "run_state.json").read_text())["status"] == "done"


# python -m sound_tf.train, its fit's first batch held (a marker file written) until a signal ends it: a Ctrl-C that
# always lands in the first epoch, however fast the run or slow the machine.
_HELD_IN_FIRST_BATCH = """
import runpy, sys, time
from pathlib import Path
import keras
marker = Path(sys.argv.pop(1))
class Held(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        marker.write_text("first batch")
        while True:
            time.sleep(0.05)
fit = keras.Model.fit
def held_fit(self, *args, callbacks=None, **kwargs):
    return fit(self, *args, callbacks=[*(callbacks or []), Held()], **kwargs)
keras.Model.fit = held_fit
sys.argv[0] = "sound_tf.train"
runpy.run_module("sound_tf.train", run_name="__main__", alter_sys=True)
"""


def test_a_run_stopped_by_ctrl_c_in_its_first_epoch_says_so_when_the_same_command_resumes_it(tmp_path, capsys):
    """A run stopped after epoch N is resumed with 'resuming the run in RUN after epoch N'; one stopped by a Ctrl-C
    in its first epoch was started again from epoch 1 correctly but without a word, as a new run's log reads. A real
    SIGINT to a subprocess train, sent while its first batch is held (_HELD_IN_FIRST_BATCH), before any epoch ends: the
    same command names the run it resumes and that it trains from epoch 1, trains every epoch once and finishes."""
    from sound_tf.trainer import read_history

    data = make_tree(tmp_path / "data", clips_per_class=8, corrupt=False)
    out, in_epoch = tmp_path / "run", tmp_path / "in_first_epoch"
    cmd = [sys.executable, "-m", "sound_tf.train", *_flags(data, out, "--epochs", "2", "--no-augment")]
    # The child holds its first batch until the SIGINT: sent once train.log said training was about to begin, it
    # came after both epochs of this tiny run had ended when the machine was loaded (the child finished, code 0).
    first = subprocess.Popen([sys.executable, "-c", _HELD_IN_FIRST_BATCH, str(in_epoch), *cmd[3:]],
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    _wait_for(first, in_epoch.is_file)
    first.send_signal(signal.SIGINT)
    said, err = first.communicate(timeout=60)
    assert first.returncode == 130, (first.returncode, said[-2000:], err[-2000:])
    assert err.splitlines()[-1] == f"interrupted (Ctrl-C); {_STOP_LINE}", err[-2000:]
    assert json.loads((out / "run_state.json").read_text())["status"] == "running"
    history = out / "history.csv"  # no epoch ended: none in its history, no backup of one
    assert not history.is_file() or not read_history(history).get("loss")
    assert not (out / "backup" / "state" / "training_metadata.json").exists()
    assert train.main(cmd[3:]) == 0  # the same command, in this process
    resumed = capsys.readouterr().out
    assert (f"resuming the run in {out}: it was stopped before its first epoch was kept; training starts again from "
            f"epoch 1\n") in resumed, resumed[-3000:]
    assert f"resuming the run in {out} after epoch" not in resumed
    with (out / "history.csv").open() as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]
    assert json.loads((out / "run_state.json").read_text())["status"] == "done"


_STOPPABLE_CHILD = """
import signal, sys, time
from pathlib import Path
from sound_tf.errors import run_cli
out = Path(sys.argv[1])
signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal's command has it
def work():
    try:
        (out / "pid").write_text(str(__import__("os").getpid()))
        time.sleep(60)
    finally:  # an export removing its half-built bundle
        time.sleep(0.3)
        (out / "cleaned").write_text("yes")
sys.exit(run_cli(work))
"""


def _signal_later(out: Path, signum: int, *, child_too: bool) -> None:
    """Once the child has started: ``signum`` to the child (when ``child_too``: a terminal's Ctrl-C, `timeout`'s
    signal to the group) and to this process, the parent (alone: `kill PID`, `docker stop`)."""
    import threading

    def send() -> None:
        while not (out / "pid").exists():
            time.sleep(0.02)
        time.sleep(0.1)
        if child_too:
            os.kill(int((out / "pid").read_text()), signum)
        os.kill(os.getpid(), signum)

    threading.Thread(target=send, daemon=True).start()


@pytest.mark.parametrize("name, child_too", [("SIGTERM", False), ("SIGTERM", True), ("SIGHUP", False),
                                             ("SIGINT", True)])
def test_a_stopped_train_export_stops_its_export_child_and_says_so_once(tmp_path, capfd, name, child_too):
    """`train --export` stopped during its export: a SIGTERM to train alone (`kill PID`) left the export child
    running until train's exit killed it (PR_SET_PDEATHSIG) in the middle of its work; a Ctrl-C printed the
    interrupted line twice, the child's and train's. The signal is passed on to the child (one that got it
    already ignores the second), which cleans up and says it was stopped: train does not say it again."""
    from sound_tf.errors import run_cli

    signum = getattr(signal, name)
    _signal_later(tmp_path, signum, child_too=child_too)
    started = time.monotonic()
    code = run_cli(lambda: train.call_child([sys.executable, "-c", _STOPPABLE_CHILD, str(tmp_path)]))
    elapsed = time.monotonic() - started
    assert code == 128 + signum and (tmp_path / "cleaned").read_text() == "yes" and elapsed < 10
    err = capfd.readouterr().err
    line = "interrupted (Ctrl-C)" if name == "SIGINT" else f"stopped by {name}"
    assert err == f"{line}; {_STOP_LINE}\n", err


def test_a_stopped_run_log_ends_with_the_stop_line_once(tmp_path):
    """A cross-validation's fold folder and a search's best_run (run_log) ended mid-epoch with no reason on
    Ctrl-C or SIGTERM; the line is now their last, and the block's stop goes on."""
    from sound_tf.errors import Stopped

    for folder, stop in (("fold_1", Stopped(signal.SIGTERM)), ("fold_2", KeyboardInterrupt())):
        with pytest.raises(KeyboardInterrupt):
            with train.run_log(tmp_path / folder):
                logging.getLogger("sound_tf").warning("epoch 2/20: loss 1.59")
                raise stop
        lines = (tmp_path / folder / "train.log").read_text().splitlines()
        said = "stopped by SIGTERM" if folder == "fold_1" else "interrupted (Ctrl-C)"
        assert [line[9:] for line in lines] == ["epoch 2/20: loss 1.59", f"{said}; {_STOP_LINE}"], lines


def test_a_train_export_stopped_before_training_is_resumed_or_leaves_nothing(tmp_path, monkeypatch, capsys):
    """`train --export` records its export in run_state.json before training; killed before training began
    (while its data decoded), the folder held .lock, train.log and that state, with no status: the same
    command passed it over for a new folder, without a word, every time after. A failed start (a missing
    --data) left the same folder. Now the run is resumed, in a line that names it, and a stop or a failure
    before training leaves no folder unless it kept a split (the decoded files are in the decode cache)."""
    from sound_tf import trainer
    from sound_tf.errors import ConfigError, Stopped
    from sound_tf.trainer import read_state, write_state

    started = []

    def stop(config, run_dir, *, log, verbose):
        started.append(Path(run_dir))
        raise Stopped(signal.SIGTERM)  # as a SIGTERM while the data decode

    monkeypatch.setattr(trainer, "train_run", stop)
    monkeypatch.chdir(tmp_path)
    data = make_tree(tmp_path / "data", clips_per_class=1, corrupt=False)
    settings = ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--epochs", "1"]
    fingerprint = config_from_flags(*settings).fingerprint()
    runs = tmp_path / "runs"
    for left in ((".lock", "train.log"), (".lock", "train.log", "split.csv")):  # as a SIGKILL before training
        killed = runs / "20200101-000000"
        killed.mkdir(parents=True)
        for name in left:
            (killed / name).write_text("")
        write_state(killed, fingerprint=fingerprint, export_profile="default", export_done=False)
        assert train.main([*settings, "--export"]) == 143 and started[-1] == Path("runs") / killed.name
        assert f"resuming the run in runs/{killed.name}: its command was stopped before training began\n" in \
            capsys.readouterr().out
        assert [p.name for p in runs.iterdir()] == ([killed.name] if "split.csv" in left else [])  # no new folder
    assert read_state(killed) == {"fingerprint": fingerprint, "export_profile": "default", "export_done": False}
    assert (killed / "train.log").read_text().endswith(
        f"stopped by SIGTERM; {_STOP_LINE}\n")  # its log says why it ends there
    assert train.main([*settings, "--export", "--out", str(tmp_path / "new")]) == 143
    assert not (tmp_path / "new").exists()
    monkeypatch.setattr(trainer, "train_run", lambda *a, **k: (_ for _ in ()).throw(ConfigError("no such data")))
    assert train.main([*settings, "--export", "--out", str(tmp_path / "failed")]) == 2
    assert not (tmp_path / "failed").exists() and len(started) == 3


def test_a_run_resumed_after_its_noise_folder_changed_says_what_changed_and_records_each_noise(
        tmp_path, monkeypatch, capsys):
    """config.json names the noise folder, not its files: a run resumed after recordings were added to, removed
    from or replaced in it mixed in other noise without a word (the log line said '5 files, 9.0 s' where it had
    said '4 files, 6.0 s'), nothing in the run folder told which noise its model was trained with, and a new run
    beside a finished one was told it repeats it. The run resumes still, as one whose data files changed does, and
    says what changed and what it does; noise.json lists each version of the folder from the epoch it began."""
    import keras

    from sound_tf import trainer

    data = make_tree(tmp_path / "data", clips_per_class=6, corrupt=False)
    noise = tmp_path / "noise"
    noise.mkdir()
    rng = np.random.default_rng(3)

    def write(name: str, seconds: float) -> None:
        sf.write(noise / name, 0.1 * rng.standard_normal(int(SR * seconds)), SR, subtype="PCM_16")

    write("a.wav", 1.0)
    write("b.wav", 1.0)
    sf.write(noise / "z.wav", np.zeros(SR // 2), SR, subtype="PCM_16")  # silent: left out, and named
    monkeypatch.chdir(tmp_path)
    flags = ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--batch-size", "8", "--quiet",
             "--epochs", "3", "--set", f"augment.noise_dir={noise}", "--set", "augment.noise_probability=1"]

    class StopAfterFirstEpoch(keras.callbacks.Callback):  # after the backup of epoch 1: as a Ctrl-C there
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    real = trainer._callbacks
    monkeypatch.setattr(trainer, "_callbacks", lambda *a, **k: [*real(*a, **k), StopAfterFirstEpoch()])
    assert train.main(flags) == 130
    monkeypatch.setattr(trainer, "_callbacks", real)
    [run] = (tmp_path / "runs").iterdir()
    first = capsys.readouterr().out
    assert (f"noise p1 10-30 dB SNR (features) from {noise} (2 files, 2.0 s; 1 silent file skipped: z.wav)"
            in first), first
    assert f"augment.noise_dir={noise}: 1 silent file left out of the noise (every sample is zero; silence adds " \
           f"no noise): z.wav" in first
    assert [v["first_epoch"] for v in json.loads((run / "noise.json").read_text())["versions"]] == [1]

    (noise / "a.wav").unlink()
    write("b.wav", 0.5)  # replaced
    write("c.wav", 1.0)
    write("d.wav", 1.0)
    assert train.main(flags) == 0  # the same command resumes the run, on the folder as it is now
    resumed = capsys.readouterr().out
    assert f"resuming the run in runs/{run.name} after epoch 1\n" in resumed, resumed
    assert (f"warning: augment.noise_dir={noise} has changed since epoch 1 of this run mixed in its recordings: "
            f"2 files added (c.wav, d.wav), 1 removed (a.wav), 1 changed (b.wav). The run resumes with the folder as "
            f"it is now: epochs 2-3 mix in 3 files, 2.5 s of noise (epoch 1: 2 files, 2.0 s; noise.json in the run "
            f"folder lists both); to train every epoch on the same noise, stop this command, put the files back and "
            f"run it again, or start over (--overwrite)\n") in resumed, resumed
    assert f"from {noise} (3 files, 2.5 s; 1 silent file skipped: z.wav)" in resumed
    assert json.loads((run / "run_state.json").read_text())["status"] == "done"
    with (run / "history.csv").open() as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1, 2]
    record = json.loads((run / "noise.json").read_text())
    assert record["noise_dir"] == str(noise)
    assert [(v["first_epoch"], sorted(v["files"]), v["used"], v["seconds"], v["silent"])
            for v in record["versions"]] == [(1, ["a.wav", "b.wav", "z.wav"], 2, 2.0, ["z.wav"]),
                                             (2, ["b.wav", "c.wav", "d.wav", "z.wav"], 3, 2.5, ["z.wav"])]
    assert record["versions"][1]["files"]["b.wav"] == [(noise / "b.wav").stat().st_size,
                                                       (noise / "b.wav").stat().st_mtime_ns]

    write("e.wav", 1.0)  # a new run beside the finished one does not repeat it: its noise differs
    assert train.main(flags) == 0
    again = capsys.readouterr().out
    assert (f"runs/{run.name} finished with these settings, but augment.noise_dir={noise} has changed since it "
            f"trained (1 file added (e.wav)): this new run mixes in its recordings as they are now\n") in again, again
    assert "unless its data changed since" not in again and "has changed since epoch" not in again
    [new] = [r for r in (tmp_path / "runs").iterdir() if r != run]
    assert [(v["first_epoch"], v["used"]) for v in json.loads((new / "noise.json").read_text())["versions"]] == [(1, 4)]


def test_the_noise_record_keeps_the_versions_kept_epochs_mixed_in(tmp_path):
    """A run killed before an epoch with new noise ended, then resumed on other files, is compared with the noise
    its kept epochs mixed in, not with a version no kept epoch used; the same files add no version."""
    from sound_tf import trainer
    from sound_tf.augment import NoiseFolder

    def versions() -> list[tuple[int, list[str], float]]:
        record = json.loads((tmp_path / "noise.json").read_text())
        return [(v["first_epoch"], sorted(v["files"]), v["seconds"]) for v in record["versions"]]

    one = NoiseFolder("/n", {"a.wav": (10, 1)}, seconds=1.0)
    two = NoiseFolder("/n", {"a.wav": (10, 1), "b.wav": (20, 2)}, seconds=3.0)
    other = NoiseFolder("/n", {"a.wav": (11, 5)}, seconds=1.5)
    assert trainer.record_noise(tmp_path, None, first_epoch=1, epochs=5) is None  # generated noise: no file
    assert not (tmp_path / "noise.json").exists()
    assert trainer.record_noise(tmp_path, one, first_epoch=1, epochs=5) is None
    assert trainer.record_noise(tmp_path, two, first_epoch=3, epochs=5).startswith(
        "warning: augment.noise_dir=/n has changed since epochs 1-2 of this run mixed in its recordings: 1 file added "
        "(b.wav). The run resumes with the folder as it is now: epochs 3-5 mix in 2 files, 3.0 s of noise (epochs 1-2: "
        "1 file, 1.0 s; ")
    assert versions() == [(1, ["a.wav"], 1.0), (3, ["a.wav", "b.wav"], 3.0)]
    # killed again before epoch 3 ended: epoch 3 starts anew, on other files, after epochs 1-2 of the first noise
    assert "since epochs 1-2 of this run mixed in its recordings: 1 file changed (a.wav). The run resumes with the " \
           "folder as it is now: epochs 3-5 mix in 1 file, 1.5 s of noise (epochs 1-2: 1 file, 1.0 s;" \
        in trainer.record_noise(tmp_path, other, first_epoch=3, epochs=5)
    assert versions() == [(1, ["a.wav"], 1.0), (3, ["a.wav"], 1.5)]
    assert trainer.record_noise(tmp_path, other, first_epoch=5, epochs=5) is None  # the same files
    assert versions() == [(1, ["a.wav"], 1.0), (3, ["a.wav"], 1.5)]
    assert "since epochs 3-5 of this run mixed in its recordings: 1 file changed (a.wav). The run resumes with the " \
           "folder as it is now: epoch 6 mixes in" in trainer.record_noise(tmp_path, one, first_epoch=6, epochs=6)
    assert trainer.record_noise(tmp_path, two, first_epoch=7, epochs=6) is None  # no epoch left to mix it in
    assert versions() == [(1, ["a.wav"], 1.0), (3, ["a.wav"], 1.5), (6, ["a.wav"], 1.0)]
    assert trainer.record_noise(tmp_path, two, first_epoch=1, epochs=5) is None  # nothing kept: a new start
    assert versions() == [(1, ["a.wav", "b.wav"], 3.0)]
    (tmp_path / "noise.json").write_text("{")  # damaged: the noise from here on is recorded, without a comparison
    assert "which of its recordings epochs 1-2 of this run mixed in is unknown" in trainer.record_noise(
        tmp_path, one, first_epoch=3, epochs=5)
    assert versions() == [(3, ["a.wav"], 1.0)]


def test_a_run_resumed_without_a_noise_record_says_once_that_its_earlier_noise_is_unknown(tmp_path):
    """A run begun before sound_tf kept noise.json (augment.noise_dir set, no noise.json) resumed without a word,
    as a new run does, though nothing said which noise its first epochs mixed in. It now says so once, and
    noise.json records the folder from the resumed epoch on: a later resume compares with that."""
    from sound_tf import trainer
    from sound_tf.augment import NoiseFolder

    one = NoiseFolder("/n", {"a.wav": (10, 1)}, seconds=1.0)
    two = NoiseFolder("/n", {"a.wav": (10, 1), "b.wav": (20, 2)}, seconds=3.0)
    assert trainer.record_noise(tmp_path, two, first_epoch=3, epochs=5) == (
        "warning: augment.noise_dir=/n: which of its recordings epochs 1-2 of this run mixed in is unknown (the run "
        "has no noise.json: it began before sound_tf kept one, or the file was damaged). The run resumes with the "
        "folder as it is now: epochs 3-5 mix in 2 files, 3.0 s of noise, which noise.json in the run folder records "
        "from now on")
    record = json.loads((tmp_path / "noise.json").read_text())
    assert [(v["first_epoch"], sorted(v["files"]), v["used"]) for v in record["versions"]] == [
        (3, ["a.wav", "b.wav"], 2)]
    # killed again before epoch 3 ended: said already; the record is kept as it is
    assert trainer.record_noise(tmp_path, two, first_epoch=3, epochs=5) is None
    assert trainer.record_noise(tmp_path, two, first_epoch=4, epochs=5) is None  # the same files since epoch 3
    assert "has changed since epochs 3-4 of this run" in trainer.record_noise(tmp_path, one, first_epoch=5, epochs=5)
    (tmp_path / "noise.json").unlink()
    assert trainer.record_noise(tmp_path, one, first_epoch=1, epochs=5) is None  # a new run: nothing before it
    assert trainer.record_noise(tmp_path, one, first_epoch=2, epochs=2) is None  # its record says epoch 1's noise
    (tmp_path / "noise.json").unlink()
    assert trainer.record_noise(tmp_path, one, first_epoch=2, epochs=2).endswith(
        "mixed in is unknown (the run has no noise.json: it began before sound_tf kept one, or the file was damaged). "
        "The run resumes with the folder as it is now: epoch 2 mixes in 1 file, 1.0 s of noise, which noise.json in "
        "the run folder records from now on")


def test_a_noise_record_not_in_its_format_is_no_record_and_the_changes_are_the_last_versions(tmp_path):
    """Mutation audit of read_noise_record and noise_changes: a noise.json without its versions, with a version that
    is not an object or whose first epoch is not a whole number, is read as none (as a damaged file), where it
    raised or let '1.5' through to the epoch comparisons; noise_changes compares the folder with the version the
    run's last epochs mixed in, not the first, and names the problem of a folder gone."""
    from sound_tf import augment, trainer
    from sound_tf.audio import list_audio_folder

    record = tmp_path / "noise.json"
    good = {"folder": "/n", "files": {"a.wav": [10, 1]}, "seconds": 1.0}
    for versions in ([{**good, "first_epoch": 1.5}], [{**good, "first_epoch": "1"}], [1, 2], [{**good}]):
        record.write_text(json.dumps({"noise_dir": "/n", "versions": versions}))
        assert trainer.read_noise_record(tmp_path) == [], versions
    record.write_text(json.dumps({"noise_dir": "/n"}))
    assert trainer.read_noise_record(tmp_path) == []
    record.write_text(json.dumps({"noise_dir": "/n", "versions": [{**good, "first_epoch": 1}]}))
    assert [v["first_epoch"] for v in trainer.read_noise_record(tmp_path)] == [1]

    noise = tmp_path / "noise"
    noise.mkdir()
    rng = np.random.default_rng(5)
    for name in ("a.wav", "b.wav"):
        sf.write(noise / name, 0.1 * rng.standard_normal(SR // 2), SR, subtype="PCM_16")
    config = apply_overrides(Config(), {"augment.enabled": True, "augment.noise_probability": 1.0,
                                        "augment.noise_dir": str(noise)})
    files, problem = list_audio_folder(str(noise))
    assert problem is None and len(files) == 2
    now = augment.take_noise_folder(str(noise), files)
    earlier = augment.NoiseFolder(str(noise), {"a.wav": (1, 1)}, seconds=0.5)
    run = tmp_path / "run"
    run.mkdir()
    (run / "noise.json").write_text(json.dumps({"noise_dir": str(noise), "versions": [
        {"first_epoch": 1, **earlier.to_dict()}, {"first_epoch": 3, **now.to_dict()}]}))
    assert now.changes_since(earlier) != ""
    assert trainer.noise_changes(run, config) == ""  # as the last version: epochs 3 on
    shutil.rmtree(noise)
    assert trainer.noise_changes(run, config) == list_audio_folder(str(noise))[1] != ""


def test_settle_backup_keeps_the_newest_whole_backup_and_read_history_an_empty_one(tmp_path):
    """Mutation audit of settle_backup and read_history: a kill after the swap's second rename leaves state/ (the
    new backup) beside replaced/ (the old): state/ is kept, replaced/ and a half-written saving/ dropped; a kill
    between the renames leaves replaced/ alone, which becomes state/. A history.csv trimmed to nothing or to its
    header, or with an empty cell, reads without an error."""
    from sound_tf import trainer

    run = tmp_path / "run"

    def backup(name: str, epoch: int) -> None:
        folder = run / "backup" / name
        folder.mkdir(parents=True)
        (folder / "latest.weights.h5").write_bytes(b"w")
        (folder / "training_metadata.json").write_text(json.dumps({"epoch": epoch, "batch": 0}))

    backup("state", 3)
    backup("replaced", 2)
    backup("saving", 4)
    assert trainer.settle_backup(run, log=lambda _: None) is False
    assert trainer.finished_epochs(run) == 3 and sorted(p.name for p in (run / "backup").iterdir()) == ["state"]
    shutil.rmtree(run / "backup")
    backup("replaced", 2)
    trainer.settle_backup(run, log=lambda _: None)
    assert trainer.finished_epochs(run) == 2 and sorted(p.name for p in (run / "backup").iterdir()) == ["state"]

    history = tmp_path / "history.csv"
    for text in ("", "epoch,loss,val_loss\r\n"):
        history.write_text(text)
        assert trainer.read_history(history) == {}
    history.write_text("epoch,loss,val_loss\r\n0,1.5,\r\n1,1.25,0.75\r\n")  # an empty cell is left out
    assert trainer.read_history(history)["loss"] == [1.5, 1.25]


def test_a_missing_file_outside_the_decode_cache_keeps_its_own_error(tmp_path):
    """Mutation audit of _cached_files_must_stay: a file gone from a folder whose name only begins with the
    cache's (cache2/ beside cache/) is not a decoded file, nor is a FileNotFoundError that names no file."""
    from sound_tf import trainer
    from sound_tf.audio import cache_dir_of
    from sound_tf.errors import DatasetError

    config = apply_overrides(Config(), {"data.cache_dir": str(tmp_path / "cache")})
    cache = str(cache_dir_of(config.data.cache_dir))

    def gone(name):
        with trainer._cached_files_must_stay(config):
            raise FileNotFoundError(2, "No such file or directory", name)

    with pytest.raises(DatasetError, match="a decoded file went missing"):
        gone(os.path.join(cache, "ab", "c.npy"))
    with pytest.raises(FileNotFoundError):
        gone(os.path.join(cache + "2", "ab", "c.npy"))
    with pytest.raises(FileNotFoundError):
        with trainer._cached_files_must_stay(config):
            raise FileNotFoundError("no file named")


def test_an_absolute_path_spelt_another_way_is_the_same_setting(tmp_path, monkeypatch):
    """A ~ by --set or a recipe is the home folder (4515cd9, 83bda77), but an absolute path given by --set or a
    recipe was kept as typed: --set augment.noise_dir=/data/noise/ (a shell's completion adds the slash), or
    /data/./noise, was another setting than /data/noise, so the same run given it after a kill was refused as
    'different settings (augment.noise_dir: '/data/noise' there, '/data/noise/' now)', while --data's was
    written plainly. All are now; a run saved with such a spelling still resumes."""
    from sound_tf.trainer import write_state

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    data = make_tree(tmp_path / "data", clips_per_class=2, corrupt=False)
    noise = tmp_path / "noise"
    noise.mkdir()
    sf.write(noise / "fan.wav", 0.1 * np.ones(SR, np.float32), SR)
    plain = config_from_flags("--data", str(data), "--set", f"augment.noise_dir={noise}")
    assert (plain.data.path, plain.augment.noise_dir) == (str(data), str(noise))
    for spelling in (f"{noise}/", f"{tmp_path}/./noise", f"{tmp_path}//noise", f"{data}/../noise", "~/noise",
                     "~/noise/", "noise/"):
        assert config_from_flags("--data", str(data), "--set", f"augment.noise_dir={spelling}") == plain, spelling
    for spelling in (f"{data}/", f"{tmp_path}/./data", "~/data/"):
        assert config_from_flags("--set", f"data.path={spelling}", "--set", f"augment.noise_dir={noise}/") == plain
    recipe = tmp_path / "mine.toml"
    recipe.write_text(f'[data]\npath = "{data}/"\nsplit_file = "{tmp_path}/run/./split.csv"\n'
                      f'[augment]\nnoise_dir = "{tmp_path}//noise/"\n')
    got = config_from_flags("--pipeline", str(recipe))
    assert (got.data.path, got.data.split_file, got.augment.noise_dir) == (
        str(data), str(tmp_path / "run" / "split.csv"), str(noise))
    # a run saved with a trailing slash (before this change) resumes under the plain spelling
    run = tmp_path / "run"
    run.mkdir()
    saved = apply_overrides(plain, {"augment.noise_dir": f"{noise}/", "data.path": f"{tmp_path}/./data"})
    saved.save(run)
    write_state(run, status="running", fingerprint=saved.fingerprint())
    assert saved.fingerprint() != plain.fingerprint()
    assert train.resolve_run_dir(str(run), plain) == run


_KILLED_AFTER_ITS_SPLIT = """
import os, signal, sys
from sound_tf import datasets, train
write_split_csv = datasets.write_split_csv
def killed(*args, **kwargs):  # SIGKILL once split.csv is written: no except or finally runs
    write_split_csv(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
datasets.write_split_csv = killed
sys.exit(train.main(sys.argv[1:]))
"""


def test_a_plain_train_killed_before_training_began_is_resumed_by_the_same_command(tmp_path, monkeypatch, capsys):
    """A plain `train` (no --export) SIGKILLed once split.csv was written left runs/<run> holding .lock, train.log,
    split.csv and skipped.csv, and no run_state.json: the same command started another folder without a word, the
    first one left for good (FSDD, 900 files: runs/20261205-163927 beside runs/20261205-163935). It records its
    settings' fingerprint before its data is read, as `train --export` does, so the same command resumes the run
    on its split, in a line that names it; stopped or failed before keeping anything, it still leaves no folder."""
    from sound_tf import trainer
    from sound_tf.errors import Stopped
    from sound_tf.trainer import read_state

    monkeypatch.chdir(tmp_path)
    data = make_tree(tmp_path / "data", clips_per_class=4, corrupt=False)
    settings = ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--epochs", "1",
                "--no-augment", "--quiet"]
    killed = subprocess.run([sys.executable, "-c", _KILLED_AFTER_ITS_SPLIT, *settings], capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    split = (run / "split.csv").read_text()
    assert read_state(run) == {"fingerprint": config_from_flags(*settings[:-1]).fingerprint()}  # not --quiet
    assert train.main(settings) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"resuming the run in runs/{run.name}: its command was stopped before training began\n" in out, out
    assert f"(folder, split reused runs/{run.name}/split.csv)" in out, out
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run.name]  # no second folder
    assert read_state(run)["status"] == "done" and (run / "split.csv").read_text() == split
    assert (run / "metrics.json").is_file()

    def stop(config, run_dir, *, log, verbose):  # as a Ctrl-C or SIGTERM while the data decode
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(trainer, "train_run", stop)
    assert train.main([*settings, "--seed", "5"]) == 143  # another run: a new folder, which kept nothing
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run.name]


def test_a_start_that_fails_with_a_file_error_takes_its_first_state_back(tmp_path, capsys):
    """A plain `train` records its fingerprint before its data is read, and a failed start takes it back, but only
    a SoundTFError did: one ended by an OSError that names a file, which run_cli reports as the same one-line error
    (a --cache-dir under a file: 'error: <cache>/sr8000/13: Not a directory'), kept it, so the corrected command in
    an --out folder that was there before was refused as 'an unfinished run with different settings', naming
    none, as no config.json was written yet."""
    from sound_tf.locks import release_folder

    data = make_tree(tmp_path / "data", clips_per_class=2, corrupt=False)
    out = tmp_path / "mine"
    out.mkdir()  # the user's own, empty: there before the command
    (tmp_path / "a_file").write_text("")
    bad = tmp_path / "a_file" / "cache"
    assert train.main(_flags(data, out, "--epochs", "1", "--no-augment", "--cache-dir", str(bad))) == 2
    err = capsys.readouterr().err
    assert re.search(rf"^error: {re.escape(str(bad))}/sr{SR}\S*: Not a directory$", err, re.M), err
    assert sorted(p.name for p in out.iterdir()) == [".lock", "train.log"]  # no run_state.json
    fixed = config_from_flags("--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--batch-size",
                              "8", "--epochs", "1", "--no-augment", "--cache-dir", str(tmp_path / "cache"))
    assert train.resolve_run_dir(str(out), fixed) == out  # the corrected command is not refused
    release_folder(out)


def test_a_start_stopped_while_its_data_decoded_leaves_an_earlier_out_folder_free_for_other_settings(
        tmp_path, monkeypatch, capsys):
    """Before a plain `train` recorded its fingerprint ahead of its data, a Ctrl-C or SIGTERM while the data decoded
    left an --out folder that was there before holding only train.log, and the corrected command (another --epochs)
    trained there. With the record it was refused as 'holds an unfinished run with different settings', naming
    none (FSDD, 900 files, SIGTERM 0.3 s into the decoding). A stop before split.csv was kept now takes the record
    back, as a failed start does; one after it keeps it, so the same command resumes that split."""
    from sound_tf import trainer
    from sound_tf.errors import ConfigError, Stopped
    from sound_tf.locks import release_folder
    from sound_tf.trainer import read_state

    data = make_tree(tmp_path / "data", clips_per_class=2, corrupt=False)
    out = tmp_path / "mine"
    out.mkdir()  # the user's own, empty: there before the command
    flags = ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--no-augment"]
    writes_split = []

    def stopped(config, run_dir, *, log, verbose):  # SIGTERM while the data decode (after split.csv, or before)
        if writes_split:
            (run_dir / "split.csv").write_text("split,path,label\n")
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(trainer, "train_run", stopped)
    assert train.main([*flags, "--epochs", "1", "--out", str(out), "--quiet"]) == 143
    assert sorted(p.name for p in out.iterdir()) == [".lock", "train.log"]  # no run_state.json
    assert train.resolve_run_dir(str(out), config_from_flags(*flags, "--epochs", "2")) == out  # not refused
    release_folder(out)
    writes_split.append(True)
    assert train.main([*flags, "--epochs", "1", "--out", str(out), "--quiet"]) == 143
    assert read_state(out) == {"fingerprint": config_from_flags(*flags, "--epochs", "1").fingerprint()}
    with pytest.raises(ConfigError, match="holds an unfinished run with different settings"):
        train.resolve_run_dir(str(out), config_from_flags(*flags, "--epochs", "2"))  # not handed its split
    assert train.main([*flags, "--epochs", "1", "--out", str(out), "--quiet"]) == 143
    assert "resuming the run in" in capsys.readouterr().out and read_state(out)  # the same command resumes it


def test_help_says_what_the_training_flags_do_and_a_rate_in_khz_is_told_to_be_hz(capsys):
    """A hobbyist reading train --help found --epochs, --batch-size, --clip-seconds and --seed with no word of what
    they do or their defaults, and '--sample-rate 44.1k' was told only "invalid int value: '44.1k'". Each flag
    now says what it sets and its default for a folder of recordings (pipelines/folder.toml's values), and the
    rate's error says to write it in Hz."""
    parser = argparse.ArgumentParser()
    train.add_config_flags(parser)
    helps = {action.dest: action.help for action in parser._actions}
    for dest in ("epochs", "batch_size", "learning_rate", "sample_rate", "clip_seconds", "seed", "test_fold",
                 "val_fold"):
        assert helps[dest], dest
    assert "60 for a folder of recordings" in helps["epochs"] and "early stopping" in helps["epochs"]
    assert "32 for a folder of recordings" in helps["batch_size"] and "e.g. 4" in helps["batch_size"]
    assert "16000 for a folder of recordings" in helps["sample_rate"]
    assert "2 for a folder of recordings" in helps["clip_seconds"]
    assert "(default 0)" in helps["seed"]
    # the recipes by name, where '--pipeline' said only 'a bare name such as esc50' (session 52's Speech Commands
    # 12-class walkthrough: the keyword-spotting recipe was named in the README alone), and Speech Commands' folds
    shipped = sorted(path.stem for path in Path(train.REPO_PIPELINES).glob("*.toml"))
    assert {"esc50", "speech_commands", "speech_commands_12"} <= set(shipped)
    assert f"the bare name of one in pipelines/ ({', '.join(shipped)}); speech_commands_12 is Speech Commands as a " \
           f"12-class keyword spotter (10 words, _unknown_, _silence_; data.keep_labels chooses the words)" \
        in helps["pipeline"]
    assert "Speech Commands' lists: 2 is validation_list.txt, 3 testing_list.txt" in helps["test_fold"]
    import tomllib

    folder = tomllib.loads(Path(train.REPO_PIPELINES, "folder.toml").read_text())
    assert (folder["train"]["epochs"], folder["train"]["batch_size"], folder["train"]["learning_rate"],
            folder["audio"]["sample_rate_hz"], folder["audio"]["clip_seconds"]) == (60, 32, 0.003, 16000, 2.0)
    assert Config().train.seed == 0
    assert parser.parse_args(["--sample-rate", "44100"]).sample_rate == 44100
    for typed in ("44.1k", "44.1", "16kHz"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--sample-rate", typed])
        err = capsys.readouterr().err
        assert (f"argument --sample-rate: {typed!r} is not a whole number of Hz: write the rate in Hz, e.g. 16000, "
                f"22050 or 44100 (not 44.1k); recordings of any rate are resampled to it") in err


def test_a_bare_command_says_it_uses_the_demo_and_not_recordings_of_yours(capsys):
    """'python -m sound_tf.train' with --data forgotten (session 50's novice walkthrough) began 'data: generating
    the synthetic demo dataset (9 classes x 80 clips)' and trained 720 files for minutes, with no word that her
    recordings were not read, or of --data; a line now says so (train's; crossval and tune say nothing new). --format
    demo, which asks for the demo, gets none."""
    parser = argparse.ArgumentParser()
    train.add_config_flags(parser)
    notices: list[logging.LogRecord] = []
    config = train.config_from_args(parser.parse_args([]), notices=notices, say_demo=True)
    expected = ("sound_tf: no --data given: using the built-in demo dataset (9 classes of generated sounds, not "
                "recordings of yours; pipelines/demo.toml); --data FOLDER reads a folder with one subfolder of "
                "recordings per class")
    assert capsys.readouterr().err == expected + "\n"
    assert [record.getMessage() for record in notices] == [expected]
    assert config.data.format == "demo" and config.data.path is None
    for flags in (["--format", "demo"], ["--set", "data.format=demo"]):
        train.config_from_args(parser.parse_args(flags), say_demo=True)
        assert capsys.readouterr().err == "", flags
    train.config_from_args(parser.parse_args([]))
    assert capsys.readouterr().err == ""


def test_a_gain_range_of_linear_factors_given_by_set_is_warned_of_on_stderr_and_in_the_log(capsys):
    """'--set augment.gain_min_db=0.5 --set augment.gain_max_db=2.0' (linear factors) was trained with silently, every
    clip gain acts on 0.5-2 dB louder; train, tune and crossval (config_from_args) now print the warning on stderr as
    the settings are worked out and keep it for the log, with the dB the factors are; +-6 dB gets nothing."""
    parser = argparse.ArgumentParser()
    train.add_config_flags(parser)
    notices: list[logging.LogRecord] = []
    train.config_from_args(parser.parse_args(["--set", "augment.gain_min_db=0.5", "--set", "augment.gain_max_db=2.0"]),
                           notices=notices)
    err = capsys.readouterr().err
    [warned] = [record.getMessage() for record in notices]
    assert warned.startswith("warning: augment.gain_min_db=0.5 and augment.gain_max_db=2: ") and warned + "\n" == err
    assert "would be -6.0 to +6.0 dB" in warned
    train.config_from_args(parser.parse_args(["--set", "augment.gain_min_db=-6", "--set", "augment.gain_max_db=6"]),
                           notices=notices)
    assert capsys.readouterr().err == "" and len(notices) == 1
