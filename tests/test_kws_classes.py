"""Keyword spotting's classes: chosen words (``data.keep_labels``) and every other word as one class
(``data.other_label`` at ``data.other_share``), on a Speech Commands tree in little."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sound_tf.config import Config, apply_overrides
from sound_tf.datasets import SPLITS, prepare_dataset
from sound_tf.errors import ConfigError, DatasetError

RATE_HZ = 16000
NOISE_RATE_HZ = 8000  # the noise recordings' own rate: decoded to the run's before they are cut
KEPT = ("yes", "no", "up")
OTHERS = ("cat", "dog", "bird", "tree")
#: Three training speakers, then the one validation_list.txt names and the one testing_list.txt names.
SPEAKERS = ("a1b2c3d4", "b2c3d4e5", "c3d4e5f6", "d4e5f6a7", "e5f6a7b8")
TAKES = 3
NOISE_SECONDS = {"white_noise.wav": 8.0, "pink_noise.wav": 10.0}


def _word(index: int, speaker: int, rng: np.random.Generator) -> np.ndarray:
    """0.5 s of a word: a tone for the even words, a rising chirp for the odd, a little higher per speaker."""
    t = np.arange(RATE_HZ // 2) / RATE_HZ
    base = 250.0 * (1.6 ** index) * (1 + 0.02 * speaker)
    phase = 2 * np.pi * base * t if index % 2 == 0 else 2 * np.pi * base * (t + t ** 2)  # chirp: base to 2x base
    return (0.3 * np.sin(phase) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def make_kws_tree(root: Path) -> Path:
    """``<word>/<speaker>_nohash_<take>.wav`` for the kept words and four others, the lists naming the fourth and
    fifth speakers' files, and ``_background_noise_/`` with two recordings of 8 and 10 s at 8 kHz."""
    rng = np.random.default_rng(11)
    listed: dict[str, list[str]] = {"validation_list.txt": [], "testing_list.txt": []}
    for index, word in enumerate(KEPT + OTHERS):
        (root / word).mkdir(parents=True)
        for s, speaker in enumerate(SPEAKERS):
            for take in range(TAKES):
                relative = f"{word}/{speaker}_nohash_{take}.wav"
                sf.write(root / relative, _word(index, s, rng), RATE_HZ, subtype="PCM_16")
                if s == 3:
                    listed["validation_list.txt"].append(relative)
                elif s == 4:
                    listed["testing_list.txt"].append(relative)
    for name, lines in listed.items():
        (root / name).write_text("".join(f"{line}\n" for line in lines))
    noise = root / "_background_noise_"
    noise.mkdir()
    for k, (name, seconds) in enumerate(NOISE_SECONDS.items()):
        wave = 0.2 * rng.standard_normal(int(seconds * NOISE_RATE_HZ))
        if k:  # pink-ish: a running sum, scaled back
            wave = np.cumsum(wave) * 0.02
            wave -= wave.mean()
        sf.write(noise / name, wave.astype(np.float32), NOISE_RATE_HZ, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return make_kws_tree(tmp_path_factory.mktemp("kws") / "speech_commands")


def _config(root: Path, tmp_path: Path, **more) -> Config:
    values = {"data.path": str(root), "data.format": "speech_commands", "data.cache_dir": str(tmp_path / "cache"),
              "audio.sample_rate_hz": RATE_HZ, "data.keep_labels": list(KEPT), "data.other_label": "_unknown_"}
    values.update(more)
    return apply_overrides(Config(), values)


def _speaker(path: str) -> str:
    return Path(path).name.split("_nohash_")[0]


def test_kept_words_and_other_take_their_shares_of_each_official_split(tree, tmp_path):
    lines: list[str] = []
    prepared = prepare_dataset(_config(tree, tmp_path), tmp_path / "run", log=lines.append)
    assert prepared.labels == ("_unknown_", "no", "up", "yes")
    speakers_of = {"train": set(SPEAKERS[:3]), "val": {SPEAKERS[3]}, "test": {SPEAKERS[4]}}
    for name in SPLITS:
        counts = Counter(item.label for item in prepared.splits[name])
        kept = len(KEPT) * len(speakers_of[name]) * TAKES  # 27 train, 9 val, 9 test
        assert all(counts[word] == len(speakers_of[name]) * TAKES for word in KEPT)
        total = kept / (1 - 0.1)  # the other class is a tenth of the split
        assert abs(counts["_unknown_"] - 0.1 * total) <= 1, (name, counts)
        assert counts["_unknown_"] == round(0.1 * total + 1e-9)  # 3, 1
        assert sum(counts.values()) == kept + round(0.1 * total)
        # the other class's files are other words' recordings, by the split's own speakers only
        other = [item for item in prepared.splits[name] if item.label == "_unknown_"]
        assert {Path(item.source).parent.name for item in other} <= set(OTHERS)
        assert {_speaker(item.source) for item in prepared.splits[name]} <= speakers_of[name]
    assert (lines[-1] == "data: data.other_label '_unknown_': 5 files of 4 other labels (train 3, val 1, test 1: "
                         "data.other_share 0.1 of each split), 55 left out")
    # split.csv lists them, and the run resumes from it to the same classes and files
    again = prepare_dataset(_config(tree, tmp_path), tmp_path / "run", log=lambda _: None)
    assert again.labels == prepared.labels
    assert {n: [i.cached for i in again.splits[n]] for n in SPLITS} == {
        n: [i.cached for i in prepared.splits[n]] for n in SPLITS}


def test_the_same_seed_draws_the_same_files_and_another_seed_others(tree, tmp_path):
    def drawn(seed: int, run: str) -> dict[str, list[str]]:
        prepared = prepare_dataset(_config(tree, tmp_path, **{"train.seed": seed}), tmp_path / run,
                                   log=lambda _: None)
        return {name: sorted(item.source for item in prepared.splits[name] if item.label.startswith("_"))
                for name in SPLITS}

    first, same, other = drawn(1, "a"), drawn(1, "b"), drawn(2, "c")
    assert first == same
    assert first["train"] != other["train"]
    assert [len(first[n]) for n in SPLITS] == [len(other[n]) for n in SPLITS] == [3, 1, 1]


def test_without_other_label_the_other_words_are_left_out_and_any_dataset_works(tmp_path):
    """Not only Speech Commands: a folder per class, split by fractions, other words left out."""
    root = tmp_path / "words"
    rng = np.random.default_rng(3)
    for index, word in enumerate(("on", "off", "go", "stop")):
        (root / word).mkdir(parents=True)
        for take in range(8):
            sf.write(root / word / f"{take}.wav", _word(index, take, rng), RATE_HZ, subtype="PCM_16")
    lines: list[str] = []
    prepared = prepare_dataset(_config(root, tmp_path, **{"data.format": "folder", "data.other_label": None,
                                                           "data.keep_labels": ["on", "off"]}),
                               tmp_path / "run", log=lines.append)
    assert prepared.labels == ("off", "on")
    assert sum(len(prepared.splits[n]) for n in SPLITS) == 16
    assert lines[-1] == "data: data.keep_labels: 2 labels kept; 16 files of the 2 other labels left out " \
                        "(data.other_label is not set)"


def test_the_saved_config_round_trips(tree, tmp_path):
    config = _config(tree, tmp_path, **{"data.other_share": 0.08})
    path = config.save(tmp_path / "config.json")
    assert Config.load(path) == config
    saved = json.loads(path.read_text())["data"]
    assert (saved["keep_labels"], saved["other_label"], saved["other_share"]) == (list(KEPT), "_unknown_", 0.08)


@pytest.mark.parametrize("overrides, message", [
    ({"data.other_share": -0.1}, r"data\.other_share must be in \[0, 1\) \(a share of each split\), got -0\.1"),
    ({"data.other_share": 1.0}, r"data\.other_share must be in \[0, 1\) \(a share of each split\), got 1\.0"),
    ({"data.other_label": "yes"}, r"data\.other_label='yes' is also in data\.keep_labels"),
    ({"data.keep_labels": []}, r"data\.other_label='_unknown_' is the class of every label not kept"),
])
def test_bad_values_are_refused_naming_the_setting(tree, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        _config(tree, tmp_path, **overrides)


def test_a_kept_label_no_file_has_is_refused_with_the_labels_present_and_the_closest(tree, tmp_path):
    config = _config(tree, tmp_path, **{"data.keep_labels": ["yes", "noo"]})
    with pytest.raises(DatasetError, match=r"data\.keep_labels names a label 'noo' that no file has \('noo': did you "
                                           r"mean 'no'\?\); the data's labels: bird, cat, dog, no, tree, up, yes$"):
        prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    assert not (tmp_path / "run" / "split.csv").exists()


def test_crossval_refuses_the_chosen_classes_it_does_not_build(tree, tmp_path):
    from sound_tf.crossval import run_crossval

    with pytest.raises(ConfigError, match=r"^data\.keep_labels: cross-validation does not build the chosen classes"):
        run_crossval(_config(tree, tmp_path), tmp_path / "cv", k=2, log=lambda _: None)
    assert not (tmp_path / "cv" / "fold_1").exists()
