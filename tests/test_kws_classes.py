"""Keyword spotting's 12 classes: chosen words (``data.keep_labels``), every other word as one class
(``data.other_label`` at ``data.other_share``) and clips of background noise as silence (``data.silence_label`` at
``data.silence_share``), on a Speech Commands tree in little."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sound_tf.config import Config, apply_overrides
from sound_tf.datasets import (SILENCE_CSV, SPLITS, check_source, class_shares, noise_regions, prepare_dataset,
                               read_split_csv)
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
              "audio.sample_rate_hz": RATE_HZ, "data.keep_labels": list(KEPT), "data.other_label": "_unknown_",
              "data.silence_label": "_silence_"}
    values.update(more)
    return apply_overrides(Config(), values)


def _speaker(path: str) -> str:
    return Path(path).name.split("_nohash_")[0]


def test_kept_words_other_and_silence_take_their_shares_of_each_official_split(tree, tmp_path):
    lines: list[str] = []
    prepared = prepare_dataset(_config(tree, tmp_path), tmp_path / "run", log=lines.append)
    assert prepared.labels == ("_silence_", "_unknown_", "no", "up", "yes")
    speakers_of = {"train": set(SPEAKERS[:3]), "val": {SPEAKERS[3]}, "test": {SPEAKERS[4]}}
    for name in SPLITS:
        counts = Counter(item.label for item in prepared.splits[name])
        kept = len(KEPT) * len(speakers_of[name]) * TAKES  # 27 train, 9 val, 9 test
        assert all(counts[word] == len(speakers_of[name]) * TAKES for word in KEPT)
        total = kept / (1 - 0.1 - 0.1)  # each of the two classes is a tenth of the split
        for label in ("_unknown_", "_silence_"):
            assert abs(counts[label] - 0.1 * total) <= 1, (name, label, counts)
            assert counts[label] == round(0.1 * total + 1e-9)  # 3.375 -> 3, 1.125 -> 1
        assert sum(counts.values()) == kept + 2 * round(0.1 * total)
        # the other class's files are other words' recordings, by the split's own speakers only
        other = [item for item in prepared.splits[name] if item.label == "_unknown_"]
        assert {Path(item.source).parent.name for item in other} <= set(OTHERS)
        words = [item for item in prepared.splits[name] if item.label != "_silence_"]
        assert {_speaker(item.source) for item in words} <= speakers_of[name]
    assert (lines[-2] == "data: data.other_label '_unknown_': 5 files of 4 other labels (train 3, val 1, test 1: "
                         "data.other_share 0.1 of each split), 55 left out")
    assert lines[-1].startswith(f"data: data.silence_label '_silence_': 5 clips of 1 s cut from ")
    assert "(train 3, val 1, test 1: data.silence_share 0.1 of each split;" in lines[-1]
    # split.csv lists them, and the run resumes from it to the same classes and files
    again = prepare_dataset(_config(tree, tmp_path), tmp_path / "run", log=lambda _: None)
    assert again.labels == prepared.labels
    assert {n: [i.cached for i in again.splits[n]] for n in SPLITS} == {
        n: [i.cached for i in prepared.splits[n]] for n in SPLITS}
    # a cache emptied since: the resumed run cuts the same clips again, where they were
    silence = sorted(i.cached for n in SPLITS for i in prepared.splits[n] if i.label == "_silence_")
    for path in silence:
        Path(path).unlink()
    resumed = prepare_dataset(_config(tree, tmp_path), tmp_path / "run", log=lambda _: None)
    assert sorted(i.cached for n in SPLITS for i in resumed.splits[n] if i.label == "_silence_") == silence
    assert all(Path(path).is_file() for path in silence)


def test_the_same_seed_draws_the_same_files_and_another_seed_others(tree, tmp_path):
    def drawn(seed: int, run: str) -> dict[str, list[str]]:
        prepared = prepare_dataset(_config(tree, tmp_path, **{"train.seed": seed}), tmp_path / run,
                                   log=lambda _: None)
        return {name: sorted(item.source for item in prepared.splits[name] if item.label.startswith("_"))
                for name in SPLITS}

    first, same, other = drawn(1, "a"), drawn(1, "b"), drawn(2, "c")
    assert first == same
    assert first["train"] != other["train"]
    assert [len(first[n]) for n in SPLITS] == [len(other[n]) for n in SPLITS] == [6, 2, 2]


def test_without_other_label_the_other_words_are_left_out_and_any_dataset_works(tmp_path):
    """Not only Speech Commands: a folder per class, split by fractions, other words left out."""
    root = tmp_path / "words"
    rng = np.random.default_rng(3)
    for index, word in enumerate(("on", "off", "go", "stop")):
        (root / word).mkdir(parents=True)
        for take in range(8):
            sf.write(root / word / f"{take}.wav", _word(index, take, rng), RATE_HZ, subtype="PCM_16")
    lines: list[str] = []
    config = _config(root, tmp_path, **{"data.format": "folder", "data.other_label": None,
                                        "data.keep_labels": ["on", "off"], "data.silence_label": None})
    prepared = prepare_dataset(config, tmp_path / "run", log=lines.append)
    assert prepared.labels == ("off", "on")
    assert sum(len(prepared.splits[n]) for n in SPLITS) == 16
    assert lines[-1] == "data: data.keep_labels: 2 labels kept; 16 files of the 2 other labels left out " \
                        "(data.other_label is not set)"


def _four_words(tmp_path: Path) -> tuple[Path, Path]:
    """A folder per word (8 takes of 0.5 s each, split by fractions) and a folder of one 10-s noise recording."""
    root, noise = tmp_path / "words", tmp_path / "noise"
    rng = np.random.default_rng(3)
    for index, word in enumerate(("on", "off", "go", "stop")):
        (root / word).mkdir(parents=True)
        for take in range(8):
            sf.write(root / word / f"{take}.wav", _word(index, take, rng), RATE_HZ, subtype="PCM_16")
    noise.mkdir()
    sf.write(noise / "hum.wav", (0.1 * rng.standard_normal(10 * RATE_HZ)).astype(np.float32), RATE_HZ)
    return root, noise


def test_a_silence_share_of_0_adds_no_class_on_a_drawn_split(tmp_path):
    """A share in [0, 1) is accepted: 0 is no silence class, and a split drawn by fractions took it as a resumed
    run's (TypeError: 'NoneType' object is not subscriptable)."""
    root, noise = _four_words(tmp_path)
    config = _config(root, tmp_path, **{"data.format": "folder", "data.other_label": None,
                                        "augment.noise_dir": str(noise),
                                        "data.keep_labels": ["on", "off"], "data.silence_share": 0.0})
    prepared = prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    assert prepared.labels == ("off", "on")
    assert [len(prepared.splits[n]) for n in SPLITS] == [12, 2, 2]
    assert not (tmp_path / "run" / SILENCE_CSV).exists()


@pytest.mark.parametrize("name, share, least", [("silence", 0.02, 0.04), ("other", 0.02, 0.04)])
def test_a_share_that_rounds_to_no_training_example_is_refused_naming_the_share_to_give(tmp_path, name, share, least):
    """12 training clips of the kept words: a share of 0.02 is 12 / 0.98 * 0.02 = 0.24 clips, rounded to none; the
    error read 'class _silence_ (0 files: ) has no training example; add files or remove the class'."""
    root, noise = _four_words(tmp_path)
    other = {"data.other_label": "_unknown_" if name == "other" else None,
             "data.silence_label": "_silence_" if name == "silence" else None}
    config = _config(root, tmp_path, **{"data.format": "folder", "augment.noise_dir": str(noise),
                                        "data.keep_labels": ["on", "off"], f"data.{name}_share": share, **other})
    label = other[f"data.{name}_label"]
    with pytest.raises(DatasetError, match=(
            rf"words: class {label} has no training example: data\.{name}_share 0\.02 of a training split with 12 "
            rf"examples of the other classes rounds to none; raise data\.{name}_share to 0\.04 or more, or leave "
            rf"data\.{name}_label out$")):
        prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    assert not (tmp_path / "run" / "split.csv").exists()
    prepared = prepare_dataset(apply_overrides(config, {f"data.{name}_share": least}), tmp_path / "run",
                               log=lambda _: None)
    assert Counter(item.label for item in prepared.splits["train"])[label] == 1  # 12 / 0.96 * 0.04 = 0.5: one
    with pytest.raises(DatasetError, match=r"rounds to none; raise data\.\w+_share to 0\.04 or more"):
        prepare_dataset(apply_overrides(config, {f"data.{name}_share": 0.039}), tmp_path / "run2",
                        log=lambda _: None)


def test_silence_clips_are_a_clip_long_no_louder_than_their_noise_and_held_out_ones_come_from_other_parts(
        tree, tmp_path):
    config = _config(tree, tmp_path, **{"data.silence_share": 0.5, "data.other_share": 0.2})
    prepared = prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    with (tmp_path / "run" / SILENCE_CSV).open() as f:
        records = list(csv.DictReader(f))
    assert Counter(r["split"] for r in records) == {name: class_shares(n, config.data)[1]
                                                    for name, n in (("train", 27), ("val", 9), ("test", 9))}
    assert len(records) == 45 + 15 + 15  # a half of 54, 18, 18
    silence = {item.cached for name in SPLITS for item in prepared.splits[name] if item.label == "_silence_"}
    assert silence == {r["path"] for r in records}
    noise = {}
    for r in records:
        if r["noise"] not in noise:  # the recording at the run's rate, as it was cut
            wave, rate = sf.read(r["noise"], dtype="float64")
            import soxr
            noise[r["noise"]] = soxr.resample(wave, rate, RATE_HZ, quality="HQ")
        clip, rate = sf.read(r["path"], dtype="float64")
        assert rate == RATE_HZ and clip.size == RATE_HZ  # one clip of 1 s at the run's rate
        source = noise[r["noise"]]
        start = round(float(r["start_seconds"]) * RATE_HZ)
        part = source[start:start + RATE_HZ]
        gain = float(r["gain"])
        assert 0 <= gain < 1
        rms, part_rms = np.sqrt(np.mean(clip ** 2)), np.sqrt(np.mean(part ** 2))
        assert rms <= part_rms + 1e-4, (rms, part_rms)
        assert rms == pytest.approx(gain * part_rms, abs=2e-3)  # the gain, with 16-bit rounding
        regions = noise_regions(source.size, val_fraction=0.15, test_fraction=0.15)
        low, high = regions[r["split"]]
        assert low <= start and start + RATE_HZ <= high, (r, regions)
    # held out: every validation and test clip lies after every part a training clip was cut from
    for name in ("val", "test"):
        for r in (r for r in records if r["split"] == name):
            start = round(float(r["start_seconds"]) * RATE_HZ)
            trained = [round(float(t["start_seconds"]) * RATE_HZ) for t in records
                       if t["split"] == "train" and t["noise"] == r["noise"]]
            assert all(start >= t + RATE_HZ for t in trained)
    # gains spread over [0, 1)
    gains = [float(r["gain"]) for r in records]
    assert min(gains) < 0.2 and max(gains) > 0.8


def test_training_mixes_in_only_the_training_part_of_each_noise_recording(tree, tmp_path):
    from sound_tf.augment import load_noise_folder

    noise_dir = str(tree / "_background_noise_")
    with_silence = _config(tree, tmp_path, **{"augment.noise_dir": noise_dir})
    without = _config(tree, tmp_path, **{"augment.noise_dir": noise_dir, "data.silence_label": None})
    bank, _ = load_noise_folder(with_silence)
    whole, _ = load_noise_folder(without)
    seconds = sum(NOISE_SECONDS.values())
    assert whole.size == pytest.approx(seconds * RATE_HZ, abs=2)
    assert bank.size == pytest.approx(0.7 * seconds * RATE_HZ, abs=4)
    first = int(NOISE_SECONDS["pink_noise.wav"] * RATE_HZ)  # the files in name order: pink first
    np.testing.assert_array_equal(bank[:int(0.7 * first)], whole[:int(0.7 * first)])


def test_the_saved_config_round_trips(tree, tmp_path):
    config = _config(tree, tmp_path, **{"data.other_share": 0.08, "data.silence_share": 0.12})
    path = config.save(tmp_path / "config.json")
    assert Config.load(path) == config
    saved = json.loads(path.read_text())["data"]
    assert (saved["keep_labels"], saved["other_label"], saved["other_share"], saved["silence_label"],
            saved["silence_share"]) == (list(KEPT), "_unknown_", 0.08, "_silence_", 0.12)


@pytest.mark.parametrize("overrides, message", [
    ({"data.other_share": -0.1}, r"data\.other_share must be in \[0, 1\) \(a share of each split\), got -0\.1"),
    ({"data.silence_share": 1.0}, r"data\.silence_share must be in \[0, 1\) \(a share of each split\), got 1\.0"),
    ({"data.other_label": "yes"}, r"data\.other_label='yes' is also in data\.keep_labels"),
    ({"data.silence_label": "_unknown_"}, r"data\.other_label and data\.silence_label are both '_unknown_'"),
    ({"data.other_share": 0.5, "data.silence_share": 0.5},
     r"data\.other_share 0\.5 \+ data\.silence_share 0\.5 leave no share of each split for the kept labels"),
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


def test_kept_words_the_data_lacks_are_refused_with_the_flag_that_keeps_the_others(tmp_path):
    """The speech_commands_12 recipe on a copy holding 6 of its 10 words (session 52's walkthrough) read '... names
    labels 'on', 'off', 'stop', 'go' that no file has ('on': did you mean 'down'?); ...': 'down' was kept already, and
    nothing said how to keep the six. A label kept already is no longer offered, and the --set that keeps the others
    ends the message; a typo still gets its closest label, and no --set."""
    import shlex

    from sound_tf.config import REPO_PIPELINES, config_from_recipe, parse_set_flags
    from sound_tf.datasets import Example, choose_labels

    words = ("yes", "no", "up", "down", "left", "right", "bed", "cat", "happy", "wow")
    examples = [Example(path=str(tmp_path / word / f"s{k}_nohash_0.wav"), label=word, group=f"s{k}")
                for word in words for k in range(2)]
    recipe = config_from_recipe(REPO_PIPELINES / "speech_commands_12.toml")
    with pytest.raises(DatasetError) as refused:
        choose_labels(examples, recipe.data, tmp_path)
    assert str(refused.value) == (
        f"{tmp_path}: data.keep_labels names labels 'on', 'off', 'stop', 'go' that no file has; the data's labels: "
        f"bed, cat, down, happy, left, no, right, up, wow, yes; to keep the others alone: --set "
        f"'data.keep_labels=[\"yes\", \"no\", \"up\", \"down\", \"left\", \"right\"]'")
    kept = apply_overrides(recipe, {"data.keep_labels": ["yes", "noo", "up"]})
    with pytest.raises(DatasetError, match=r"names a label 'noo' that no file has \('noo': did you mean 'no'\?\); "
                                           r"the data's labels: bed, cat, down, happy, left, no, right, up, wow, yes$"):
        choose_labels(examples, kept.data, tmp_path)
    # the --set it gives, as the shell hands it over, keeps the six words
    flag = shlex.split(str(refused.value).split("to keep the others alone: ")[1])
    assert flag[0] == "--set"
    six = apply_overrides(recipe, parse_set_flags(flag[1:]))
    assert six.data.keep_labels == ("yes", "no", "up", "down", "left", "right")
    choose_labels(examples, six.data, tmp_path)


def test_background_noise_as_a_kept_label_is_refused_saying_it_is_the_noise_not_a_class(tree, tmp_path):
    """``_background_noise_`` in data.keep_labels was told only 'names a label ... that no file has', though its
    folder holds recordings: it now says the folder is noise (mixed in, cut into the silence class), never a class."""
    config = _config(tree, tmp_path, **{"data.keep_labels": ["yes", "_background_noise_"]})
    with pytest.raises(DatasetError, match=r"data\.keep_labels names a label '_background_noise_' that no file has "
                                           r"\('_background_noise_' is Speech Commands' folder of background noise, "
                                           r"never a class: its recordings are mixed into training clips as noise "
                                           r"and cut into clips of data\.silence_label '_silence_', the class of no "
                                           r"speech; remove it from data\.keep_labels\); the data's labels: bird, "):
        prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    config = _config(tree, tmp_path, **{"data.keep_labels": ["yes", "_background_noise_"], "data.silence_label": None})
    with pytest.raises(DatasetError, match=r"cut into a class of no speech once data\.silence_label is set \(the "
                                           r"speech_commands_12 recipe's '_silence_'\)"):
        prepare_dataset(config, tmp_path / "run2", log=lambda _: None)


def test_a_listed_file_that_is_missing_is_skipped_naming_its_list_and_line(tmp_path):
    """A file testing_list.txt names, missing from its word's folder, read 'skipping .../yes/<speaker>_nohash_1.wav:
    file not found' (and so in skipped.csv and the --strict refusal), naming neither list: it now names the list and
    the line, as a CSV manifest's row is named."""
    from sound_tf.errors import AudioError

    root = make_kws_tree(tmp_path / "sc")
    testing = root / "testing_list.txt"
    line, relative = next((n, text) for n, text in enumerate(testing.read_text().splitlines(), start=1)
                          if text == f"yes/{SPEAKERS[4]}_nohash_1.wav")
    (root / relative).unlink()
    prepared = prepare_dataset(_config(root, tmp_path), tmp_path / "run", log=lambda _: None)
    reason = f"file not found (listed on line {line} of {testing})"
    assert line == 2 and prepared.skipped == [(str(root / relative), reason)]
    with (tmp_path / "run" / "skipped.csv").open(newline="") as handle:
        assert list(csv.reader(handle))[1] == [str(root / relative), reason]
    with pytest.raises(AudioError, match=re.escape(f"{root / relative}: {reason}")):
        prepare_dataset(_config(root, tmp_path, **{"data.strict": True}), tmp_path / "strict", log=lambda _: None)


def test_a_missing_listed_file_is_not_counted_as_used_and_takes_no_share_of_the_other_class(tmp_path):
    """A Speech Commands copy lacking one file testing_list.txt names read 'data: 810 files used ..., decoded 809 /
    reused 0, skipped 1', the missing file among the used; and the test split's other-class share was drawn for its
    listed files, the missing one among them (9 words' files at data.other_share 0.3: 5 '_unknown_' files where the
    8 that test take 4). The used are now the files that train, validate and test, and the share is the readable's."""
    root = make_kws_tree(tmp_path / "sc")
    (root / f"yes/{SPEAKERS[4]}_nohash_1.wav").unlink()
    config = _config(root, tmp_path, **{"data.other_share": 0.3})
    lines: list[str] = []
    prepared = prepare_dataset(config, tmp_path / "run", log=lines.append)
    test = Counter(item.label for item in prepared.splits["test"])
    assert sum(test[word] for word in KEPT) == 8
    assert class_shares(9, config.data) == (5, 2) and class_shares(8, config.data) == (4, 1)  # 4.5 and 1.5 round up
    assert (test["_unknown_"], test["_silence_"]) == (4, 1)
    files = {item.source for name in SPLITS for item in prepared.splits[name] if item.label != "_silence_"}
    assert len(files) == 27 + 9 + 8 + (14 + 5 + 4)  # the words' files, and the other class's of train, val, test
    left = len(OTHERS) * len(SPEAKERS) * TAKES - 23  # 60 - 23 = 37
    summary = next(line for line in lines if "classes, decoded" in line)
    assert summary.startswith(f"data: 67 files used ({left} of the other labels left out), 5 classes, decoded 67 / "
                              f"reused 0, skipped 1; ")


def test_a_folder_of_the_tree_as_data_names_the_parent_and_counts_its_words_alone(tree):
    """--data .../speech_commands/_background_noise_ was told it looked like one class's folder, its parent holding
    '8 folders of audio (_background_noise_, bird, cat, dog, no, ...)': the noise folder counted as a word's. It is
    now told what it is, and the parent's word folders alone are counted; a word's folder too."""
    from sound_tf.datasets import detect_format

    words = sorted(KEPT + OTHERS)
    with pytest.raises(DatasetError) as info:
        detect_format(tree / "_background_noise_")
    assert str(info.value) in [  # e.g. the folder's first entry listed
        f"{tree / '_background_noise_'}: holds 2 audio files (e.g. {name}) but no class subfolders: it looks like "
        f"Speech Commands' folder of background noise, never a class, and its parent {tree} holds 7 word folders "
        f"({', '.join(words[:5])}, ...); give the parent: --data {tree}" for name in NOISE_SECONDS]
    with pytest.raises(DatasetError, match=re.escape(f"audio files (e.g. ") + r"\S+" + re.escape(
            f") but no class subfolders: it looks like one class's folder, and its parent {tree} holds 7 word folders ("
            f"{', '.join(words[:5])}, ...); give the parent")):
        detect_format(tree / "yes")


HELD_APART = ("Speech Commands' validation_list.txt and testing_list.txt, which keep each speaker in one split")


def test_the_gap_line_of_a_split_by_the_lists_advises_no_group_column(tree, tmp_path):
    """A run split by Speech Commands' lists (which keep speakers apart) whose test accuracy was far below
    validation's was told 'If validation shares speakers or recordings with training, keep each in one split (a
    CSV's group column, or a fold column with --test-fold and --val-fold)'. The gap line now names the lists and
    advises no group column; a split drawn by fractions is advised as before."""
    from sound_tf import trainer
    from sound_tf.datasets import folds_held_apart
    from sound_tf.metrics import validation_gap

    run = tmp_path / "run"
    prepared = prepare_dataset(_config(tree, tmp_path), run, log=lambda _: None)
    assert folds_held_apart(prepared.splits) == HELD_APART
    (run / "history.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.0,0.9,0.4\n")
    (run / trainer.BEST_WEIGHTS).parent.mkdir(parents=True, exist_ok=True)
    (run / trainer.BEST_WEIGHTS).write_bytes(b"")
    validation = trainer.run_validation(run)  # evaluate's, from split.csv
    n_val = len(prepared.splits["val"])
    assert validation == {"accuracy": 0.9, "num_examples": n_val, "held_apart": HELD_APART}
    metrics = {"accuracy": 0.5, "num_examples": 40}
    line = validation_gap(metrics, {**validation, "num_examples": 40})
    assert line == (f"test accuracy 0.50 (40 clips) is far below validation accuracy 0.90 (40 clips): validation and "
                    f"test are {HELD_APART}, so training shares no speaker or recording with them; the test clips "
                    f"differ from the validation clips in another way (their speakers or recording conditions, or a "
                    f"draw of few clips), and validation, which chose the kept epoch, overstates what the model does "
                    f"on new data. `python -m sound_tf.crossval` measures over several held-out sets (the data's "
                    f"folds, or --k K) how far a score moves from one to another")
    assert "group column" not in line
    plain = validation_gap(metrics, {"accuracy": 0.9, "num_examples": 40})
    assert "a CSV's group column" in plain and "Speech Commands" not in plain
    # a split by fractions, the lists' folds given otherwise, or the lists gone: no such split
    words = _words_and_others(tmp_path / "words")
    drawn = prepare_dataset(_config(words, tmp_path, **{"data.format": "folder", "data.silence_label": None}),
                            tmp_path / "drawn", log=lambda _: None)
    assert folds_held_apart(drawn.splits) is None
    swapped = {"train": prepared.splits["train"], "val": prepared.splits["test"], "test": prepared.splits["val"]}
    assert folds_held_apart(swapped) is None
    listless = tmp_path / "listless"
    listless.mkdir()
    moved = {name: [dataclasses.replace(ex, path=str(listless / Path(ex.path).name)) for ex in examples]
             for name, examples in read_split_csv(run / "split.csv", run_file=True).items()}
    assert folds_held_apart(moved) is None


def test_the_augment_line_says_the_noise_mixed_in_is_the_first_part_of_each_recording(tree, tmp_path):
    """With a silence class, training mixes in only the first 70% of each noise recording; the augment line read
    'from .../_background_noise_ (2 files, 12.6 s)' of recordings lasting 18 s, with no word of why. It now says which
    part is mixed in and what the rest is for; without a clip cut (a share of 0) the whole is, and the line is as
    before."""
    from sound_tf import augment

    noise = tree / "_background_noise_"
    config = _config(tree, tmp_path, **{"augment.noise_dir": str(noise), "augment.spec_probability": 0.0,
                                        **{f"augment.{name}_probability": 0.0
                                           for name in ("shift", "speed", "pitch", "gain", "mixup")}})
    assert augment.summary_line(config) == (
        f"augment: noise p0.5 10-30 dB SNR (features) from {noise} (2 files, 12.6 s; the first 70% of each recording: "
        f"validation's and test's _silence_ clips are cut from the rest)")
    whole = apply_overrides(config, {"data.silence_share": 0.0})  # no clip cut: the whole is mixed in
    assert augment.summary_line(whole) == f"augment: noise p0.5 10-30 dB SNR (features) from {noise} (2 files, 18.0 s)"


def test_silence_without_noise_is_refused_naming_both_settings(tmp_path):
    root = make_kws_tree(tmp_path / "sc")
    for file in (root / "_background_noise_").iterdir():
        file.unlink()
    (root / "_background_noise_").rmdir()
    config = _config(root, tmp_path)
    message = (r"data\.silence_label='_silence_': its clips are cut from noise recordings, and there are none: "
               r"augment\.noise_dir is not set and no Speech Commands _background_noise_ folder is read")
    with pytest.raises(DatasetError, match=message):
        check_source(config)  # before TensorFlow starts
    with pytest.raises(DatasetError, match=message):
        prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    # a noise folder of one's own is cut from instead
    noise = tmp_path / "noise"
    noise.mkdir()
    sf.write(noise / "hum.wav", (0.1 * np.random.default_rng(0).standard_normal(10 * RATE_HZ)).astype(np.float32),
             RATE_HZ)
    prepared = prepare_dataset(_config(root, tmp_path, **{"augment.noise_dir": str(noise)}), tmp_path / "run",
                               log=lambda _: None)
    assert Counter(item.label for item in prepared.splits["test"])["_silence_"] == 1


def test_a_missing_noise_dir_of_the_silence_class_is_refused_before_any_file_is_decoded(tree, tmp_path):
    """With augmentation off (so that nothing else reads it), augment.noise_dir was not checked until the silence
    clips were cut, after TensorFlow's start-up and the decoding of every file."""
    config = _config(tree, tmp_path, **{"augment.enabled": False, "augment.noise_dir": str(tmp_path / "nois")})
    message = (r"^data\.silence_label='_silence_' cuts its clips from augment\.noise_dir=.*nois: no such folder$")
    with pytest.raises(DatasetError, match=message):
        check_source(config)  # before TensorFlow starts
    lines: list[str] = []
    with pytest.raises(DatasetError, match=message):
        prepare_dataset(config, tmp_path / "run", log=lines.append)
    assert not any(line.startswith("data: decode cache") for line in lines)


def test_a_short_training_run_learns_the_12_style_classes_and_predict_answers_one(tree, tmp_path, capsys,
                                                                                    monkeypatch):
    """``train --data <Speech Commands> --set data.keep_labels=...``: the speech_commands recipe, its noise cut into
    silence, and a run whose labels (labels.txt, config.json) are the kept words, _silence_ and _unknown_."""
    from sound_tf import metrics as M, predict, train

    gaps: list = []  # the validation each summary's gap line is given: the split by the lists is named
    real_gap = M.validation_gap
    monkeypatch.setattr(M, "validation_gap", lambda metrics, validation: gaps.append(validation) or real_gap(
        metrics, validation))

    out = tmp_path / "run"
    args = ["--data", str(tree), "--out", str(out), "--epochs", "2", "--batch-size", "8", "--quiet",
            "--cache-dir", str(tmp_path / "cache"), "--set", "data.keep_labels=yes,no,up",
            "--set", "data.other_label=_unknown_", "--set", "data.silence_label=_silence_",
            "--set", "model.widths=[8, 16]", "--set", "train.warmup_epochs=0"]
    assert train.main(args) == 0
    assert gaps and all(v is not None and v["held_apart"] == HELD_APART for v in gaps)
    log = (out / "train.log").read_text()
    assert "data: data.other_label '_unknown_': 5 files of 4 other labels (train 3, val 1, test 1" in log
    assert "data: data.silence_label '_silence_': 5 clips of 1 s cut from " in log
    config = Config.load(out)
    assert config.labels == ("_silence_", "_unknown_", "no", "up", "yes")
    assert (config.data.keep_labels, config.data.other_label, config.data.silence_label) == (
        KEPT, "_unknown_", "_silence_")
    assert (out / "labels.txt").read_text().split() == list(config.labels)
    split = read_split_csv(out / "split.csv", run_file=True)
    assert Counter(ex.label for ex in split["test"]) == {"yes": 3, "no": 3, "up": 3, "_unknown_": 1, "_silence_": 1}
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["per_class"]) == set(config.labels) and np.asarray(metrics["confusion_matrix"]).sum() == 11
    capsys.readouterr()
    silence_clip = next(ex.path for ex in split["test"] if ex.label == "_silence_")
    assert predict.main([str(out), silence_clip, "--json", "--top-k", "1"]) == 0
    answer = json.loads(capsys.readouterr().out.splitlines()[0])
    assert answer["label"] in config.labels and answer["top_k"][0]["label"] == answer["label"]
    # evaluate --data of the data's testing list scores the 12-style classes as the run's test split had them
    # (it was refused: the other words were labels the model did not know)
    from sound_tf import evaluate

    assert evaluate.main([str(out), "--data", str(tree), "--fold", "3", "--out", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    assert "data: the run's data.other_label '_unknown_': 1 file of 4 other labels" in printed
    scored = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert {label: scored["per_class"][label]["support"] for label in config.labels} == {
        "_silence_": 1, "_unknown_": 1, "no": 3, "up": 3, "yes": 3}
    assert scored["accuracy"] == pytest.approx(metrics["accuracy"])  # the run's own test split, file for file
    # both reports say what the run made of the labels (evaluate's said nothing of them), then what became of the
    # files: the run's split, or the evaluated copy's
    import html

    def chosen_section(path: Path) -> list[str]:
        page = html.unescape(path.read_text())
        return page.split("<h3>Classes chosen</h3><pre class=\"notes\">", 1)[1].split("</pre>", 1)[0].splitlines()

    configured = ["data.keep_labels: yes, no, up (3 labels kept)",
                  "data.other_label '_unknown_': the files of every other label, data.other_share 0.1 of each split",
                  "data.silence_label '_silence_': clips cut from noise recordings, data.silence_share 0.1 of each "
                  "split"]
    trained, evaluated = chosen_section(out / "report.html"), chosen_section(tmp_path / "ev" / "report.html")
    assert trained[:3] == evaluated[:3] == configured
    assert trained[3].startswith("data.other_label '_unknown_': 5 files of 4 other labels (train 3, val 1, test 1")
    assert trained[4].startswith("data.silence_label '_silence_': 5 clips of 1 s cut from 1 recording in ")
    assert evaluated[3].startswith("the run's data.other_label '_unknown_': 1 file of 4 other labels")
    assert evaluated[4].startswith("the run's data.silence_label '_silence_': 1 clip of 1 s cut from ")
    assert len(trained) == len(evaluated) == 5


def test_crossval_builds_the_kept_labels_and_the_other_class_per_fold_and_refuses_silence(tree, tmp_path):
    """``crossval --set data.keep_labels=... --set data.other_label=_unknown_`` (it refused data.keep_labels): each
    fold's splits hold the kept words and the other class at its share of each split, as train builds them."""
    from sound_tf.crossval import run_crossval

    with pytest.raises(ConfigError, match=r"^data\.silence_label='_silence_': cross-validation does not build the "
                                          r"silence class \(validation's and test's clips are cut from the last"):
        run_crossval(_config(tree, tmp_path), tmp_path / "refused", k=2, log=lambda _: None)
    assert not (tmp_path / "refused" / "fold_1").exists()
    config = _config(tree, tmp_path, **{"data.silence_label": None, "train.epochs": 1, "train.batch_size": 8,
                                        "model.widths": [8, 16], "train.warmup_epochs": 0, "augment.enabled": False})
    lines: list[str] = []
    run_crossval(config, tmp_path / "cv", k=2, folds=[1], log=lines.append)
    with (tmp_path / "cv" / "folds.csv").open() as f:
        assert {row["label"] for row in csv.DictReader(f)} == {"yes", "no", "up", "_unknown_"}
    assert Config.load(tmp_path / "cv" / "fold_1").labels == ("_unknown_", "no", "up", "yes")
    split = read_split_csv(tmp_path / "cv" / "fold_1" / "split.csv", run_file=True)
    for name in SPLITS:
        counts = Counter(ex.label for ex in split[name])
        words = sum(counts[word] for word in KEPT)
        assert words and counts["_unknown_"] == class_shares(words, config.data)[0]
        assert {Path(ex.path).parent.name for ex in split[name] if ex.label == "_unknown_"} <= set(OTHERS)
    assert ("data: data.keep_labels: 3 labels kept; 60 files of the 4 other labels are '_unknown_', of which each "
            "fold's training, validation and test split takes data.other_share 0.1 (drawn with train.seed 0)") in lines
    test = Counter(ex.label for ex in split["test"])
    assert any(line.startswith("fold 1: train ") and line.endswith(f"test {test['_unknown_']})") for line in lines)
    # the header counts the clips each fold tests, its share of the other class drawn (it counted all 60 files of the
    # other labels as tested); fold 1's is the test split fold 1 ran
    header = next(line for line in lines if line.startswith("cross-validation: 105 files"))
    sizes = dict(re.findall(r"(\d+): (\d+)", header.split("(", 2)[2]))
    assert header.startswith("cross-validation: 105 files, 60 of them of the other labels ('_unknown_'), 2 folds (")
    assert int(sizes["1"]) == sum(test.values())
    assert ("clips tested, with data.other_share 0.1 of '_unknown_'); running fold [1] into " in header)
    with (tmp_path / "cv" / "folds.csv").open() as f:
        folds = Counter((row["fold"], row["label"] == "_unknown_") for row in csv.DictReader(f))
    for fold in ("1", "2"):  # each fold's words and its drawn share of the other class (one in 10 of the clips)
        assert int(sizes[fold]) == folds[(fold, False)] + class_shares(folds[(fold, False)], config.data)[0]
    # without data.other_label the other labels' files are left out of every fold
    run_crossval(dataclasses.replace(config, data=dataclasses.replace(config.data, other_label=None)),
                 tmp_path / "cv-kept", k=2, folds=[1], log=lines.append)
    with (tmp_path / "cv-kept" / "folds.csv").open() as f:
        assert Counter(row["label"] for row in csv.DictReader(f)) == {word: 15 for word in KEPT}


def _relative(path: str, root: Path) -> str:
    return Path(path).relative_to(root).as_posix()


def test_evaluate_data_applies_the_runs_classes_to_another_copy_as_its_test_split_had_them(tree, tmp_path):
    """``evaluate RUN --data <another Speech Commands copy> --fold 3``: the other words become _unknown_ at the run's
    share, drawn as the run's test split drew them, and _silence_ is cut from the copy's own noise; the other words
    were labels the model did not know (an error, or left out with --skip-unknown-labels)."""
    import shutil

    from sound_tf.evaluate import select_examples

    config = _config(tree, tmp_path)
    prepared = prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    config = apply_overrides(config, {"labels": list(prepared.labels)})
    copy = tmp_path / "copy"
    shutil.copytree(tree, copy)
    lines: list[str] = []
    examples, name, left_out = select_examples(tmp_path / "run", config.labels, data=str(copy), fold=3,
                                               config=config, log=lines.append)
    assert (name, left_out) == ("copy_fold3", 0)
    test = prepared.splits["test"]
    words = sorted((_relative(ex.path, copy), ex.label) for ex in examples if ex.label != "_silence_")
    assert words == sorted((_relative(item.source, tree), item.label) for item in test if item.label != "_silence_")
    assert Counter(ex.label for ex in examples) == {"yes": 3, "no": 3, "up": 3, "_unknown_": 1, "_silence_": 1}
    silence = [ex.path for ex in examples if ex.label == "_silence_"]
    assert Path(silence[0]).is_file() and sf.info(silence[0]).frames == RATE_HZ
    with (tmp_path / "run" / SILENCE_CSV).open() as f:
        trained = next(r for r in csv.DictReader(f) if r["split"] == "test")
    assert sf.read(silence[0])[0] == pytest.approx(sf.read(trained["path"])[0])  # the same noise, the same clip
    assert lines[0] == ("data: the run's data.other_label '_unknown_': 1 file of 4 other labels (data.other_share "
                        "0.1 of the evaluated files, drawn with train.seed 0 as the run's test split was), 11 left out")
    assert lines[1].startswith(f"data: the run's data.silence_label '_silence_': 1 clip of 1 s cut from 1 recording "
                               f"in {copy / '_background_noise_'} (data.silence_share 0.1")
    # without noise to cut from, the silence class is said not to be evaluated; without other_label, left out
    shutil.rmtree(copy / "_background_noise_")
    bare = dataclasses.replace(config, data=dataclasses.replace(config.data, other_label=None),
                               augment=dataclasses.replace(config.augment, noise_dir=str(tmp_path / "gone")))
    lines.clear()
    examples, _, _ = select_examples(tmp_path / "run", config.labels, data=str(copy), config=bare, log=lines.append)
    assert Counter(ex.label for ex in examples) == {"yes": 15, "no": 15, "up": 15}
    assert lines[0] == ("data: the run's data.keep_labels: 3 labels evaluated; 60 files of the 4 other labels left "
                        "out (the run has no data.other_label)")
    assert lines[1].startswith("data: the run's data.silence_label '_silence_' is not evaluated (no clip of it is "
                               "scored): ")
    assert lines[1].endswith(f"cuts its clips from augment.noise_dir={tmp_path / 'gone'}: no such folder")


def test_evaluate_data_applies_the_other_class_alone_and_the_silence_class_alone(tree, tmp_path):
    """A run of data.keep_labels and data.other_label without a silence class, and one of data.silence_label over
    every word: evaluate --data --fold 3 applies each by itself (the test above has both, so either setting alone
    could have been passed over: the other words then refused as labels the model does not know, and no _silence_
    clip scored)."""
    from sound_tf.evaluate import select_examples

    for name, more in (("other", {"data.silence_label": None}), ("silence", {"data.keep_labels": [],
                                                                            "data.other_label": None})):
        config = _config(tree, tmp_path / name, **more)
        prepared = prepare_dataset(config, tmp_path / name / "run", log=lambda _: None)
        config = apply_overrides(config, {"labels": list(prepared.labels)})
        lines: list[str] = []
        examples, _, left_out = select_examples(tmp_path / name / "run", config.labels, data=str(tree), fold=3,
                                                config=config, log=lines.append)
        trained = Counter(item.label for item in prepared.splits["test"])
        assert Counter(ex.label for ex in examples) == trained and left_out == 0, name
        assert len(lines) == 1, lines
    assert trained["_silence_"] >= 1 and set(trained) == {*KEPT, *OTHERS, "_silence_"}


def test_tune_builds_the_classes_train_builds_and_its_best_run_lists_the_silence_clips(tree, tmp_path):
    """``tune`` with the three settings: the search's split is train's (the same summary lines and classes), and its
    best_run holds the search's silence.csv beside its split.csv (it held split.csv and skipped.csv alone)."""
    from sound_tf import tune

    out = tmp_path / "search"
    args = ["--data", str(tree), "--out", str(out), "--tuning", "tiny", "--max-trials", "1", "--epochs", "1",
            "--quiet", "--cache-dir", str(tmp_path / "cache"), "--set", "data.keep_labels=yes,no,up",
            "--set", "data.other_label=_unknown_", "--set", "data.silence_label=_silence_"]
    assert tune.main(args) == 0
    log = (out / "tune.log").read_text()
    assert "data: data.other_label '_unknown_': 5 files of 4 other labels (train 3, val 1, test 1" in log
    best = out / "best_run"
    assert Config.load(best).labels == ("_silence_", "_unknown_", "no", "up", "yes")
    assert (best / SILENCE_CSV).read_text() == (out / SILENCE_CSV).read_text()
    split = read_split_csv(best / "split.csv", run_file=True)
    with (best / SILENCE_CSV).open() as f:
        listed = {r["path"] for r in csv.DictReader(f)}
    assert listed == {ex.path for name in SPLITS for ex in split[name] if ex.label == "_silence_"}
    assert len(listed) == 5


def test_training_and_evaluation_relabel_the_other_labels_through_one_helper(tmp_path):
    """choose_labels (training) and evaluation_classes (evaluate --data) map the labels not kept with the one helper,
    _relabel_others; they differ only in the rule for a kept label that no file has."""
    from sound_tf.datasets import Example, _relabel_others, choose_labels, evaluation_classes

    examples = [Example(path=f"{word}/{k}.wav", label=word) for word in ("yes", "cat", "no", "dog") for k in range(4)]
    config = apply_overrides(Config(), {"data.keep_labels": ["yes", "no"], "data.other_label": "_unknown_",
                                        "data.other_share": 0.2})
    relabelled, others = _relabel_others(examples, config.data)
    assert [ex.label for ex in relabelled] == ["yes"] * 4 + ["_unknown_"] * 4 + ["no"] * 4 + ["_unknown_"] * 4
    assert [ex.path for ex in relabelled] == [ex.path for ex in examples] and others == {"cat": 4, "dog": 4}
    assert choose_labels(examples, config.data, tmp_path)[0] == relabelled
    evaluated, _ = evaluation_classes(examples, config, tmp_path, "folder")
    assert [ex for ex in evaluated if ex.label != "_unknown_"] == [ex for ex in relabelled if ex.label != "_unknown_"]
    assert len(evaluated) == 8 + 2 and set(evaluated) <= set(relabelled)  # 8 / 0.8 * 0.2 = 2 of the 8 others
    left_out = dataclasses.replace(config, data=dataclasses.replace(config.data, other_label=None))
    words, others = _relabel_others(examples, left_out.data)
    assert [ex.label for ex in words] == ["yes"] * 4 + ["no"] * 4 and others == {"cat": 4, "dog": 4}
    assert choose_labels(examples, left_out.data, tmp_path)[0] == words
    assert evaluation_classes(examples, left_out, tmp_path, "folder")[0] == words
    # the two rules: training refuses any kept label that no file has, evaluation only when none is present
    partial = apply_overrides(config, {"data.keep_labels": ["yes", "up"]})
    with pytest.raises(DatasetError, match=r"data\.keep_labels names a label 'up' that no file has"):
        choose_labels(examples, partial.data, tmp_path)
    assert Counter(ex.label for ex in evaluation_classes(examples, partial, tmp_path, "folder")[0]) == {
        "yes": 4, "_unknown_": 1}
    with pytest.raises(DatasetError, match=r"no file has one of the run's data\.keep_labels \['up', 'down'\]"):
        evaluation_classes(examples, apply_overrides(config, {"data.keep_labels": ["up", "down"]}), tmp_path, "folder")


def _words_and_others(root: Path, *, kept: int = 20, others: int = 10) -> Path:
    """A folder per word, split by fractions: the kept words with ``kept`` takes each, four other words with
    ``others`` each (0.5 s at 16 kHz)."""
    rng = np.random.default_rng(5)
    for index, word in enumerate(KEPT + OTHERS):
        (root / word).mkdir(parents=True)
        for take in range(kept if word in KEPT else others):
            sf.write(root / word / f"{take}.wav", _word(index, take, rng), RATE_HZ, subtype="PCM_16")
    return root


def test_without_folds_only_the_drawn_files_of_the_other_labels_are_decoded_and_the_count_says_so(tmp_path):
    """A split drawn by fractions decoded every other-label file before drawing each split's share (a Speech Commands
    tree without its lists: 80,000 clips of other words decoded for a few thousand), and the count line said
    'data: 100 files' of the 67 it used. The split is the one drawn before, file for file."""
    from sound_tf.datasets import Example, _relabel_others, draw_other, split_examples

    root = _words_and_others(tmp_path / "words")
    config = _config(root, tmp_path, **{"data.format": "folder", "data.silence_label": None})
    lines: list[str] = []
    prepared = prepare_dataset(config, tmp_path / "run", log=lines.append)
    used = [item.source for name in SPLITS for item in prepared.splits[name]]
    counts = {name: Counter(item.label for item in prepared.splits[name])["_unknown_"] for name in SPLITS}
    assert counts == {"train": 5, "val": 1, "test": 1}  # 42 / 0.9 * 0.1 = 4.7; 9 / 0.9 * 0.1 = 1
    cached = sorted((tmp_path / "cache" / f"sr{RATE_HZ}").rglob("*.wav"))
    assert len(cached) == len(used) == 60 + 7  # the 40 other-label files less the 7 drawn: never decoded
    line = next(line for line in lines if "classes, decoded" in line)
    assert line == ("data: 67 files used (33 of the other labels left out), 4 classes, decoded 67 / reused 0, "
                    "skipped 0; train 47, val 10, test 10 (folder, split computed)")
    assert prepared.stats["files"] == 67 and prepared.stats["other_labels_left_out"] == 33
    # the very files the draw after decoding everything took
    examples = [Example(path=str(p), label=p.parent.name) for p in sorted(root.rglob("*.wav"))]
    expected = draw_other(split_examples(_relabel_others(examples, config.data)[0], seed=0), config.data, 0)
    assert {name: sorted(item.source for item in prepared.splits[name]) for name in SPLITS} == {
        name: sorted(ex.path for ex in expected[name]) for name in SPLITS}


@pytest.mark.parametrize("layout", ["folds", "fractions"])
def test_an_unreadable_drawn_other_file_is_replaced_by_the_next_of_the_draw_and_listed_as_skipped(tmp_path, layout):
    """Speech Commands' folds drew the other class's share before decoding, and an unreadable file drawn left its
    split one short of the share ('test had fewer than the share'); it is now replaced by the next file of the same
    seeded order, and listed in skipped.csv as any unreadable file."""
    import shutil

    root = make_kws_tree(tmp_path / "sc") if layout == "folds" else _words_and_others(tmp_path / "words")
    config = _config(root, tmp_path, **{"data.silence_label": None,
                                        **({} if layout == "folds" else {"data.format": "folder"})})
    first = prepare_dataset(config, tmp_path / "first", log=lambda _: None)
    drawn = [item.source for item in first.splits["test"] if item.label == "_unknown_"]
    assert len(drawn) == 1
    Path(drawn[0]).write_bytes(b"not audio at all")  # the file the test split drew: unreadable now
    shutil.rmtree(tmp_path / "cache")
    lines: list[str] = []
    again = prepare_dataset(config, tmp_path / "again", log=lines.append)
    replaced = [item.source for item in again.splits["test"] if item.label == "_unknown_"]
    assert len(replaced) == 1 and replaced != drawn
    assert Path(replaced[0]).parent.name in OTHERS
    for name in ("train", "val"):  # the other splits' draws are as they were
        assert sorted(i.source for i in again.splits[name]) == sorted(i.source for i in first.splits[name])
    assert [i.source for i in again.splits["test"] if i.label != "_unknown_"] == [
        i.source for i in first.splits["test"] if i.label != "_unknown_"]
    with (tmp_path / "again" / "skipped.csv").open() as f:
        assert [row["path"] for row in csv.DictReader(f)] == drawn
    summary = next(line for line in lines if "classes, decoded" in line)
    used = sum(len(first.splits[name]) for name in SPLITS)  # and the unreadable file, tried
    words, others = (45, 60) if layout == "folds" else (60, 40)
    assert summary.startswith(f"data: {used} files used ({others - (used - words) - 1} of the other labels left "
                              f"out), 4 classes, decoded {used} / reused 0, skipped 1")
    assert "had fewer than the share" not in lines[-1]


def test_with_a_silence_share_of_0_training_mixes_in_the_whole_of_each_noise_recording(tree, tmp_path):
    """data.silence_share 0 cuts no silence clip, and augmentation still mixed in only the first 70% of each noise
    recording, keeping back a part for held-out silence that no split has."""
    from sound_tf.augment import load_noise_folder

    noise_dir = str(tree / "_background_noise_")
    none_cut = _config(tree, tmp_path, **{"augment.noise_dir": noise_dir, "data.silence_share": 0.0})
    assert not none_cut.data.cuts_silence and _config(tree, tmp_path).data.cuts_silence
    bank, _ = load_noise_folder(none_cut)
    whole, _ = load_noise_folder(_config(tree, tmp_path, **{"augment.noise_dir": noise_dir,
                                                            "data.silence_label": None}))
    assert bank.size == whole.size == pytest.approx(sum(NOISE_SECONDS.values()) * RATE_HZ, abs=2)
    np.testing.assert_array_equal(bank, whole)


@pytest.mark.parametrize("keep, fate", [
    (True, r"relabelled '_unknown_' \(the label is not in data\.keep_labels\)\. To train on your own clips as the "
           r"silence class, leave data\.silence_label out and add '_silence_' to data\.keep_labels; "),
    (False, r"mixed in with the cut clips\. To train on your own clips as the silence class, leave "
            r"data\.silence_label out; "),
])
def test_a_folder_of_the_data_named_like_the_silence_class_is_refused_saying_what_it_would_become(tmp_path, keep,
                                                                                                  fate):
    """A user's own _silence_ folder was relabelled _unknown_ (not kept) or merged with the cut clips, without a
    word; Speech Commands has _background_noise_ but no _silence_ folder."""
    import shutil

    root = make_kws_tree(tmp_path / "sc")
    (root / "_silence_").mkdir()
    for k in range(3):
        sf.write(root / "_silence_" / f"quiet_nohash_{k}.wav", np.zeros(RATE_HZ, np.float32), RATE_HZ)
    more = {} if keep else {"data.keep_labels": [], "data.other_label": None}
    config = _config(root, tmp_path, **more)
    with pytest.raises(DatasetError, match=rf"^{root}: data\.silence_label '_silence_' is also a label of the data "
                                           rf"\(3 files, e\.g\. {root}/_silence_/quiet_nohash_0\.wav\): the silence "
                                           rf"class is cut from noise recordings, and these files would be {fate}"
                                           rf"to cut it from noise, rename the folder \(or move it out of the data\)$"):
        prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    assert not (tmp_path / "run" / "split.csv").exists()
    # as the message says: without data.silence_label (and with the label kept) the clips are a class of their own
    kept = {"data.keep_labels": list(KEPT) + ["_silence_"]} if keep else {}
    own = prepare_dataset(_config(root, tmp_path, **{**more, **kept, "data.silence_label": None}), tmp_path / "own",
                          log=lambda _: None)
    assert sum(Counter(item.label for item in own.splits[name])["_silence_"] for name in SPLITS) == 3
    assert not (tmp_path / "own" / SILENCE_CSV).exists()
    shutil.rmtree(root / "_silence_")  # and without the folder, the clips are cut from noise
    assert "_silence_" in prepare_dataset(config, tmp_path / "cut", log=lambda _: None).labels


def make_official_test_set(root: Path, tree: Path, *, other_words: tuple[str, ...] = ()) -> Path:
    """Speech Commands' separate test set (``speech_commands_test_set_v0.02``) in little: the kept words' folders
    (the testing list's speaker's 3 takes each), ``_unknown_`` with 4 files of other words, ``_silence_`` with 3
    clips of noise at four gains, no lists and no ``_background_noise_``; ``other_words`` are copied in whole."""
    import shutil

    for word in KEPT + other_words:
        (root / word).mkdir(parents=True)
        for path in sorted((tree / word).glob("*.wav")):
            if word in other_words or path.name.startswith(SPEAKERS[4]):
                shutil.copy(path, root / word / path.name)
    (root / "_unknown_").mkdir()
    for word, take in (("cat", 0), ("cat", 1), ("dog", 0), ("bird", 2)):
        shutil.copy(tree / word / f"{SPEAKERS[4]}_nohash_{take}.wav", root / "_unknown_" / f"{word}_{take}.wav")
    (root / "_silence_").mkdir()
    rng = np.random.default_rng(3)
    for k, gain in enumerate((0.0, 0.05, 0.2)):
        sf.write(root / "_silence_" / f"silence_{k}.wav", (gain * rng.standard_normal(RATE_HZ)).astype(np.float32),
                 RATE_HZ, subtype="PCM_16")
    return root


def test_the_separate_test_set_given_as_training_data_is_named_with_the_command_that_scores_it(tree, tmp_path, caplog):
    """speech_commands_test_set_v0.02 given to train: with the speech_commands_12 recipe it was refused for want of
    noise recordings alone ('set augment.noise_dir ...'), and as a folder it trained 5 classes (its _unknown_ and
    _silence_ among them) with speakers in training and test alike, without a word. Both now say what the folder is
    and how it is used; the dataset itself, and a test set given its noise, are not taken for it."""
    import logging
    import shutil

    from sound_tf.datasets import load_examples, separate_test_set_note, warn_speakers_not_grouped

    official = make_official_test_set(tmp_path / "speech_commands_test_set", tree)
    said = (rf"{re.escape(str(official))} looks like Speech Commands' separate test set \(speech_commands_test_set_v0"
            rf"\.02: word folders beside its own _unknown_ and _silence_, without validation_list\.txt, testing_list"
            rf"\.txt and _background_noise_\), which scores a trained model: `python -m sound_tf\.evaluate RUN --data "
            rf"{re.escape(str(official))}`; train on the dataset itself \(speech_commands_v0\.02, its lists' split and "
            rf"_background_noise_\) with --pipeline speech_commands_12")
    with pytest.raises(DatasetError, match=r"no Speech Commands _background_noise_ folder is read \(.*does not "
                                           r"exist\); " + said + "$"):
        check_source(_config(official, tmp_path))
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        warn_speakers_not_grouped(load_examples(official, "folder"), official)
    assert len(caplog.records) == 1
    assert re.fullmatch(said + r"; read as training data, it is a folder of classes, each file its own group, so its "
                               r"speakers' recordings can fall in training and test alike, and _unknown_ and "
                               r"_silence_ are trained as two more words", caplog.records[0].getMessage())
    assert separate_test_set_note(tree) is None  # the lists and _background_noise_: the dataset
    (official / "_background_noise_").mkdir()
    assert separate_test_set_note(official) is None
    (official / "_background_noise_").rmdir()
    shutil.rmtree(official / "_silence_")
    assert separate_test_set_note(official) is None


def test_evaluate_data_scores_the_datas_own_unknown_and_silence_files_as_labelled(tree, tmp_path):
    """``evaluate RUN --data speech_commands_test_set_v0.02`` (word folders beside its own _unknown_ and _silence_):
    every file is scored as labelled. The _silence_ files were relabelled _unknown_ (not a kept label) and drawn with
    the _unknown_ files at data.other_share (here 2 of the 7 scored), and silence clips were cut besides."""
    from sound_tf.evaluate import select_examples

    config = _config(tree, tmp_path)
    prepared = prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    config = apply_overrides(config, {"labels": list(prepared.labels)})
    official = make_official_test_set(tmp_path / "speech_commands_test_set", tree)
    lines: list[str] = []
    examples, name, left_out = select_examples(tmp_path / "run", config.labels, data=str(official), config=config,
                                               log=lines.append)
    assert (name, left_out) == ("speech_commands_test_set", 0)
    assert Counter(ex.label for ex in examples) == {"yes": 3, "no": 3, "up": 3, "_unknown_": 4, "_silence_": 3}
    for label in ("_unknown_", "_silence_"):  # the folder's files, each one: none drawn, no clip cut
        assert sorted(ex.path for ex in examples if ex.label == label) == sorted(
            str(path) for path in (official / label).glob("*.wav"))
    assert lines == ["data: the run's data.other_label '_unknown_': 4 files of the data's own scored as '_unknown_', "
                     "none drawn (its label is the run's other class)",
                     "data: the run's data.silence_label '_silence_': 3 files of the data's own scored as silence, "
                     "no clip cut from noise recordings (its label is the run's silence class)"]


def test_evaluate_data_draws_other_words_beside_the_datas_own_unknown_files_as_before(tree, tmp_path):
    """Other words' folders beside the data's own _unknown_: theirs are still relabelled and drawn at the run's share,
    the very files drawn from the data without the own folders, and the own _unknown_ files are all scored."""
    import shutil

    from sound_tf.evaluate import select_examples

    config = _config(tree, tmp_path)
    prepared = prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    config = apply_overrides(config, {"labels": list(prepared.labels)})
    official = make_official_test_set(tmp_path / "mixed", tree, other_words=OTHERS)
    lines: list[str] = []
    examples, _, _ = select_examples(tmp_path / "run", config.labels, data=str(official), config=config,
                                     log=lines.append)
    own = {str(path) for path in (official / "_unknown_").glob("*.wav")}
    drawn = sorted(ex.path for ex in examples if ex.label == "_unknown_" and ex.path not in own)
    assert sorted(ex.path for ex in examples if ex.label == "_unknown_" and ex.path in own) == sorted(own)
    assert len(drawn) == class_shares(9, config.data)[0] == 1
    assert Counter(ex.label for ex in examples) == {"yes": 3, "no": 3, "up": 3, "_unknown_": 5, "_silence_": 3}
    assert lines[1] == ("data: the run's data.other_label '_unknown_': 1 file of 4 other labels (data.other_share 0.1 "
                        "of the evaluated files, drawn with train.seed 0 as the run's test split was), 59 left out")
    assert lines[0].startswith("data: the run's data.other_label '_unknown_': 4 files of the data's own")
    assert lines[2].startswith("data: the run's data.silence_label '_silence_': 3 files of the data's own")
    shutil.rmtree(official / "_unknown_")
    shutil.rmtree(official / "_silence_")
    before, _, _ = select_examples(tmp_path / "run", config.labels, data=str(official), config=config,
                                   log=lambda _: None)
    assert sorted(ex.path for ex in before if ex.label == "_unknown_") == drawn


def test_evaluate_data_scores_the_datas_own_silence_files_for_a_run_of_every_word_and_silence(tree, tmp_path):
    """A run of data.silence_label over every word (no other class) and data with its own _silence_ folder: its files
    are scored as silence and no clip is cut (they were scored, and clips were cut besides from the run's noise, or,
    with none, a line said that the silence class was not evaluated)."""
    from sound_tf.evaluate import select_examples

    config = _config(tree, tmp_path, **{"data.keep_labels": [], "data.other_label": None})
    prepared = prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    config = apply_overrides(config, {"labels": list(prepared.labels)})
    official = make_official_test_set(tmp_path / "words", tree, other_words=OTHERS)
    (official / "_unknown_").rename(tmp_path / "unknown_elsewhere")  # a label the run does not know
    lines: list[str] = []
    examples, _, _ = select_examples(tmp_path / "run", config.labels, data=str(official), config=config,
                                     log=lines.append)
    assert Counter(ex.label for ex in examples) == {**{word: 3 for word in KEPT}, **{word: 15 for word in OTHERS},
                                                    "_silence_": 3}
    assert {Path(ex.path).parent for ex in examples if ex.label == "_silence_"} == {official / "_silence_"}
    assert lines == ["data: the run's data.silence_label '_silence_': 3 files of the data's own scored as silence, "
                     "no clip cut from noise recordings (its label is the run's silence class)"]


def test_the_lists_split_is_told_only_with_both_lists_and_test_fold_3_apart_from_training(tree, tmp_path):
    """folds_held_apart names the lists' split only when training holds neither fold 2 nor 3, the test split is fold 3
    and both lists lie beside the clips (session 52's mutation audit: training holding a fold-3 clip, a test split of
    fold 1 and one list alone were each taken for the lists' split, and every test passed)."""
    from sound_tf.datasets import SPEECH_COMMANDS_LISTS, folds_held_apart

    prepare_dataset(_config(tree, tmp_path), tmp_path / "run", log=lambda _: None)
    splits = read_split_csv(tmp_path / "run" / "split.csv", run_file=True)  # the run's split, as evaluate reads it
    assert folds_held_apart(splits) == HELD_APART
    assert {ex.fold for ex in splits["train"]} & {2, 3} == set()
    assert folds_held_apart({**splits, "train": splits["train"] + splits["test"][:1]}) is None
    assert folds_held_apart({**splits, "test": splits["train"]}) is None
    for kept in SPEECH_COMMANDS_LISTS.values():  # a copy beside one list alone; beside both, the lists' split
        top = tmp_path / kept.split(".")[0] / "speech_commands"
        (top / kept).parent.mkdir(parents=True)
        (top / kept).write_text("")
        moved = {name: [dataclasses.replace(ex, path=str(top / Path(ex.path).parent.name / Path(ex.path).name))
                        for ex in examples] for name, examples in splits.items()}
        assert folds_held_apart(moved) is None, kept
    for name in SPEECH_COMMANDS_LISTS.values():
        (top / name).write_text("")
    assert folds_held_apart(moved) == HELD_APART
