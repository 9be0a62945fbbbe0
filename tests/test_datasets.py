"""datasets.py: layout detection, manifests, folds, leak-free splits, split files, demo data, prepare_dataset."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import soundfile as sf

from sound_tf import demo_sounds
from sound_tf.config import Config, apply_overrides
from sound_tf.datasets import (DEMO_CLASSES, SPLITS, Example, assign_kfold, default_demo_dir, detect_format,
                               load_examples, make_demo_dataset, prepare_dataset, read_split_csv, resolve_source,
                               name_field_groups, split_examples, write_split_csv)
from sound_tf.errors import AudioError, ConfigError, DatasetError

from conftest import SPEECH_SPEAKERS, make_speech_commands, sine


@contextlib.contextmanager
def calls_to(name: str) -> Iterator[list[str]]:
    """The paths ``os.path.<name>`` (``realpath``, ``exists``) is called with inside the block; it still answers."""
    calls: list[str] = []
    real = getattr(os.path, name)

    def spy(path, *args, **kwargs):
        calls.append(os.fspath(path))
        return real(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os.path, name, spy)
        yield calls

RATE_HZ = 8000


def write_tone(path: Path, freq_hz: float = 440.0, seconds: float = 0.1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, sine(freq_hz, seconds, RATE_HZ), RATE_HZ, subtype="PCM_16")
    return path


def make_folder_tree(root: Path, classes=("cat", "dog", "owl"), per_class: int = 4) -> Path:
    for c, label in enumerate(classes):
        for i in range(per_class):
            write_tone(root / label / f"{label}_{i}.wav", 300.0 + 100 * c + 10 * i)
    return root


def make_esc50(root: Path, categories=("dog", "rain"), sources_per_fold: int = 2, takes: int = 2) -> Path:
    rows = []
    for fold in range(1, 6):
        for target, category in enumerate(categories):
            for s in range(sources_per_fold):
                src_file = f"{fold}{target}{s}"
                for take in "ABCDEFG"[:takes]:
                    name = f"{fold}-{src_file}-{take}-{target}.wav"
                    rows.append([name, fold, target, category, "False", src_file, take])
                    write_tone(root / "audio" / name)
    (root / "meta").mkdir(parents=True)
    with (root / "meta" / "esc50.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        writer.writerows(rows)
    return root


def make_us8k(root: Path, classes=("siren", "drilling"), folds: int = 10) -> Path:
    rows = []
    for fold in range(1, folds + 1):
        for class_id, name in enumerate(classes):
            fs_id = 1000 * fold + class_id
            for slice_index in range(2):
                file_name = f"{fs_id}-{class_id}-0-{slice_index}.wav"
                rows.append([file_name, fs_id, 0.0, 4.0, 1, fold, class_id, name])
                write_tone(root / "audio" / f"fold{fold}" / file_name)
    (root / "metadata").mkdir(parents=True)
    with (root / "metadata" / "UrbanSound8K.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"])
        writer.writerows(rows)
    return root


def assert_no_leak(splits: dict[str, list[Example]], *, by_group: bool) -> None:
    seen: dict[str, str] = {}
    for name, examples in splits.items():
        for ex in examples:
            key = ex.group if by_group and ex.group is not None else ex.path
            assert seen.setdefault(key, name) == name, f"{key} is in {seen[key]} and {name}"
    paths = [ex.path for examples in splits.values() for ex in examples]
    assert len(paths) == len(set(paths))


# -- detection and loading -------------------------------------------------------------------------
def test_detects_each_layout(tmp_path):
    assert detect_format(make_folder_tree(tmp_path / "folder")) == "folder"
    assert detect_format(make_esc50(tmp_path / "esc")) == "esc50"
    assert detect_format(make_us8k(tmp_path / "us8k", folds=2)) == "urbansound8k"
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,label\nfolder/cat/cat_0.wav,cat\n")
    assert detect_format(manifest) == "csv"
    shouted = tmp_path / "LIST.CSV"  # as some tools (and FAT file systems) name it
    shouted.write_text(manifest.read_text())
    assert detect_format(shouted) == "csv"


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file or folder"),
    ("empty", "no audio files found"),
    ("loose", "no class subfolders"),
    ("text", "not a .csv manifest"),
])
def test_detection_errors_say_what_was_expected(tmp_path, case, message):
    target = tmp_path / case
    if case == "empty":
        (target / "sub").mkdir(parents=True)
        (target / "sub" / "readme.txt").write_text("no audio")
    elif case == "loose":
        write_tone(target / "a.wav")
    elif case == "text":
        target = tmp_path / "notes.txt"
        target.write_text("x")
    with pytest.raises(DatasetError, match=message) as info:
        detect_format(target)
    assert str(target) in str(info.value)
    if case == "loose":  # one loose recording, then two
        assert f"{target}: holds 1 audio file (e.g. a.wav) but no class subfolders; " in str(info.value)
        write_tone(target / "b.wav")
        with pytest.raises(DatasetError, match=re.escape(f"{target}: holds 2 audio files (e.g. ")):
            detect_format(target)
    if case != "loose":
        assert "one subfolder of audio files per class" in str(info.value)


def test_class_folders_of_unreadable_types_are_named_and_wave_files_are_audio(tmp_path):
    root = tmp_path / "m4a"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(2):
            (root / label / f"{label}{i}.m4a").write_bytes(b"....ftypM4A ")
    with pytest.raises(DatasetError, match=r"no audio files found .*; its class folders hold 4 files of other "
                                           r"types \(.m4a: 4\): convert recordings to FLAC or WAV, e.g. ffmpeg -i "
                                           r"cat0.m4a cat0.flac"):
        detect_format(root)
    single = tmp_path / "one_m4a"
    (single / "cat").mkdir(parents=True)
    (single / "cat" / "purr.m4a").write_bytes(b"....ftypM4A ")
    with pytest.raises(DatasetError, match=r"; its class folders hold 1 file of another type \(.m4a: 1\): convert"):
        detect_format(single)
    wave = make_folder_tree(tmp_path / "wave", per_class=2)
    for path in wave.rglob("*.wav"):
        path.rename(path.with_suffix(".wave"))  # another spelling of WAV
    assert detect_format(wave) == "folder" and len(load_examples(wave)) == 6


def test_folder_layout_nested_hidden_and_extensions(tmp_path):
    root = make_folder_tree(tmp_path / "data", per_class=2)
    write_tone(root / "cat" / "indoor" / "deep" / "purr.FLAC")
    sf.write(root / "dog" / "bark.ogg", sine(500.0, 0.1, RATE_HZ), RATE_HZ)
    write_tone(root / "dog" / ".hidden.wav")
    write_tone(root / "dog" / ".cache" / "x.wav")
    write_tone(root / ".trash" / "y.wav")
    (root / "owl" / "notes.txt").write_text("not audio")
    sf.write(root / "owl" / "hoot.caf", sine(700.0, 0.1, RATE_HZ), RATE_HZ, format="CAF", subtype="PCM_16")
    sf.write(root / "owl" / "call.snd", sine(900.0, 0.1, RATE_HZ), RATE_HZ, format="AU", subtype="PCM_16")  # Sun/NeXT
    (root / "owl" / "wav").mkdir()  # a folder named like an extension is not a file

    examples = load_examples(root)

    relative = [(Path(ex.path).relative_to(root.resolve()).as_posix(), ex.label) for ex in examples]
    assert relative == [("cat/cat_0.wav", "cat"), ("cat/cat_1.wav", "cat"), ("cat/indoor/deep/purr.FLAC", "cat"),
                        ("dog/bark.ogg", "dog"), ("dog/dog_0.wav", "dog"), ("dog/dog_1.wav", "dog"),
                        ("owl/call.snd", "owl"), ("owl/hoot.caf", "owl"), ("owl/owl_0.wav", "owl"),
                        ("owl/owl_1.wav", "owl")]
    assert all(Path(ex.path).is_absolute() and ex.fold is None and ex.group is None for ex in examples)
    assert load_examples(root, "folder") == examples


def test_folder_layout_follows_linked_folders_once(tmp_path):
    root = make_folder_tree(tmp_path / "data", per_class=2)
    elsewhere = make_folder_tree(tmp_path / "more", classes=("cat",), per_class=3)
    (root / "cat" / "linked").symlink_to(elsewhere / "cat", target_is_directory=True)
    (root / "dog" / "loop").symlink_to(root / "dog", target_is_directory=True)  # a link to its own parent
    labels = Counter(ex.label for ex in load_examples(root))
    assert labels == {"cat": 5, "dog": 2, "owl": 2}


def test_a_folder_dataset_resolves_each_folder_once_not_each_file(tmp_path):
    """os.path.realpath checks every part of a path: called for each file, it was half the time a folder of
    100,000 recordings took to list. Each folder is resolved once now, and a file only when it is a link; what the
    links do is unchanged (a linked class folder's files are the class's, a linked file is used once)."""
    per_class = 12
    root = make_folder_tree(tmp_path / "data", per_class=per_class)
    (root / "cat" / "again.wav").symlink_to(root / "cat" / "cat_0.wav")
    (root / "bird").symlink_to(root / "owl", target_is_directory=True)  # the same files in two classes
    with calls_to("realpath") as calls, pytest.raises(
            DatasetError, match=r"data/owl/owl_0.wav is .*bird/owl_0.wav \(a symbolic link leads to it\): one "
                                r"file in classes 'bird' and 'owl', and 11 more files like it"):
        load_examples(root)
    assert [path for path in calls if path.endswith(".wav")] == [str(root / "cat" / "again.wav")]  # the link alone
    assert len(calls) <= 12 < 4 * per_class  # the root and each class folder, a few times: once per file before
    (root / "bird").unlink()
    examples = load_examples(root)
    assert Counter(ex.label for ex in examples) == {"cat": per_class, "dog": per_class, "owl": per_class}


def test_a_link_from_a_class_folder_to_itself_is_not_walked(tmp_path, caplog):
    """dog/loop -> dog: the class folder is walked once, so its files are not met again through the link
    (and reported as links to files already in their class)."""
    root = make_folder_tree(tmp_path / "data", per_class=2)
    (root / "dog" / "loop").symlink_to(root / "dog", target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        examples = load_examples(root)
    assert Counter(ex.label for ex in examples) == {"cat": 2, "dog": 2, "owl": 2}
    assert "symbolic link" not in caplog.text and all("loop" not in ex.path for ex in examples)


def test_what_a_folder_dataset_leaves_out_is_said(tmp_path, caplog, monkeypatch):
    """Files in formats not read, empty class folders, folders that cannot be listed and links to a file
    already listed used to disappear without a word."""
    root = make_folder_tree(tmp_path / "data", per_class=2)
    for name in ("a.m4a", "b.m4a", "c.AAC"):
        (root / "dog" / name).write_bytes(b"\0" * 64)
    (root / "dog" / "Thumbs.db").write_bytes(b"\0")  # the system's own: not worth a word
    (root / "dog" / ".DS_Store").write_bytes(b"\0")
    (root / "empty").mkdir()
    (root / "phone").mkdir()
    (root / "phone" / "memo.m4a").write_bytes(b"\0" * 64)
    (root / "cat" / "again.wav").symlink_to(root / "cat" / "cat_0.wav")
    (root / "cat" / "and_again.wav").symlink_to(root / "cat" / "cat_0.wav")
    write_tone(root / "owl" / "locked" / "x.wav")
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":  # what chmod 000 does for a user without root's capabilities
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        examples = load_examples(root)
    assert Counter(ex.label for ex in examples) == {"cat": 2, "dog": 2, "owl": 2}
    assert f"4 files under {root} are not audio formats sound_tf reads and are not used (.m4a: 3, .aac: 1; e.g. " \
           f"dog/a.m4a)" in caplog.text
    assert f"2 class folders under {root} hold no audio files and are not classes: empty, phone" in caplog.text
    assert f"cannot list the folder {root.resolve() / 'owl' / 'locked'} (Permission denied)" in caplog.text
    assert "2 files are symbolic links to a file already in their class and are used once" in caplog.text


def test_one_class_folder_as_data_names_its_parent(tmp_path, monkeypatch):
    """--data naming one class's folder ('Cats/cat - Mimi' of a tree of five) was told to put each class's files
    in a subfolder named after the class, which they were; the parent is now named as the --data to give, quoted
    for a shell when it has a space, and '--data .' from inside the class folder names it too."""
    root = tmp_path / "My Cats"
    for name in ("cat - Mimi", "Kettle boiling", "cat - Luna "):
        write_tone(root / name / "a.wav")
    (root / "notes").mkdir()  # a folder without audio is not counted
    expected = (f"{root / 'cat - Mimi'}: holds 1 audio file (e.g. a.wav) but no class subfolders: it looks like one "
                f"class's folder, and its parent {root} holds 3 folders of audio (Kettle boiling, cat - Luna , "
                f"cat - Mimi); give the parent: --data '{root}'")
    with pytest.raises(DatasetError) as info:
        detect_format(root / "cat - Mimi")
    assert str(info.value) == expected
    monkeypatch.chdir(root / "cat - Mimi")
    with pytest.raises(DatasetError, match=re.escape(f"its parent {root} holds 3 folders of audio")):
        detect_format(Path("."))
    # a folder of loose recordings beside no other class keeps the advice to make class folders
    write_tone(tmp_path / "alone" / "only" / "a.wav")
    with pytest.raises(DatasetError, match="put each class's files in a subfolder named after the class"):
        detect_format(tmp_path / "alone" / "only")


def test_a_recording_in_a_format_not_read_is_told_how_to_convert_it(tmp_path, caplog):
    """A phone's 'doorbell from iphone.m4a' (AAC) was named as not read, with the extensions that are, and no word of
    how to use it; the warning now gives the ffmpeg line for it, quoted for a shell, and the folder to run it in.
    Other files left out (notes.txt) get no such line."""
    root = make_folder_tree(tmp_path / "data", classes=("cat", "dog"))
    (root / "dog" / "doorbell from iphone.m4a").write_bytes(b"\0\0\0\x20ftypM4A " + b"\0" * 64)
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert {ex.label for ex in load_examples(root)} == {"cat", "dog"}
    assert (f"1 file under {root} is not of an audio format sound_tf reads and is not used (.m4a: 1; e.g. "
            f"dog/doorbell from iphone.m4a); readable: .wav ") in caplog.text
    assert (f".rf64; to use it, convert each to FLAC or WAV, e.g. ffmpeg -i 'dog/doorbell from iphone.m4a' "
            f"'dog/doorbell from iphone.flac' (run in {root}), then remove or move the original") in caplog.text
    caplog.clear()
    (root / "dog" / "doorbell from iphone.m4a").unlink()
    (root / "cat" / "notes.txt").write_text("Mimi: 3 years")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        load_examples(root)
    assert "(.txt: 1; e.g. cat/notes.txt)" in caplog.text
    assert "ffmpeg" not in caplog.text


def test_a_recording_ffmpeg_converts_is_listed_in_skipped_csv_with_the_line(tmp_path, folder_walks):
    """A phone's .m4a in a class folder was named in one warning at load time, and neither skipped.csv nor the data
    line ('12 files ..., skipped 0') nor the report listed it: a user reading the run did not see it was left out. It
    is a skipped file now, with the ffmpeg line as its reason; a notes.txt is not (it is no recording). The walk that
    finds the examples finds it: each class folder was walked a second time for it (2 s of 100,000 files)."""
    root = make_folder_tree(tmp_path / "data", classes=("cat", "dog"), per_class=4)
    memo = root / "dog" / "doorbell from iphone.m4a"
    memo.write_bytes(b"\0\0\0\x20ftypM4A " + b"\0" * 64)
    (root / "cat" / "notes.txt").write_text("Mimi: 3 years")
    lines: list[str] = []
    prepared = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lines.append)
    reason = (f"not an audio format sound_tf reads (.m4a); to use it, convert it to FLAC or WAV, e.g. ffmpeg -i "
              f"'{memo}' '{memo.with_suffix('.flac')}', then remove or move the original")
    assert prepared.skipped == [(str(memo), reason)]
    with (tmp_path / "run" / "skipped.csv").open(newline="") as handle:
        assert list(csv.reader(handle)) == [["path", "reason"], [str(memo), reason]]
    assert any(line.startswith("data: 9 files, 2 classes, decoded 8 / reused 0, skipped 1;") for line in lines), lines
    assert sum(len(items) for items in prepared.splits.values()) == 8
    assert folder_walks == {"cat": 1, "dog": 1}
    # resumed from its split.csv: the same row, once
    resumed = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lines.append)
    assert resumed.skipped == [(str(memo), reason)] and resumed.stats["files"] == 9


def test_a_folder_datasets_warnings_say_a_count_of_one_in_the_singular(tmp_path, caplog):
    """They said "1 file(s) under ... are not audio formats", "1 class folder(s) ... hold no audio files and are not
    classes" and "1 file(s) are symbolic links"; two stray recordings and two broken links are said in the plural."""
    root = make_folder_tree(tmp_path / "data", classes=("cat", "dog"))
    (root / "dog" / "memo.m4a").write_bytes(b"\0" * 64)
    (root / "empty").mkdir()
    (root / "cat" / "again.wav").symlink_to(root / "cat" / "cat_0.wav")
    write_tone(root / "stray.wav")
    write_tone(root / "stray2.wav")
    (root / "owl").symlink_to(tmp_path / "unmounted" / "owl")
    (root / "bat").symlink_to(tmp_path / "unmounted" / "bat")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert {ex.label for ex in load_examples(root)} == {"cat", "dog"}
    assert f"1 file under {root} is not of an audio format sound_tf reads and is not used (.m4a: 1; e.g. " \
           f"dog/memo.m4a)" in caplog.text
    assert f"1 class folder under {root} holds no audio files and is not a class: empty" in caplog.text
    assert "1 file is a symbolic link to a file already in its class and is used once (e.g. " in caplog.text
    assert f"2 audio files directly in {root} belong to no class folder and are not used (e.g. stray.wav); move " \
           f"each into its class's folder" in caplog.text
    assert f"2 symbolic links directly in {root} lead to nothing and are not used (e.g. bat -> " in caplog.text


def test_one_file_in_two_classes_through_a_link_is_refused(tmp_path):
    root = make_folder_tree(tmp_path / "data", per_class=2)
    (root / "dog" / "all").symlink_to(root, target_is_directory=True)  # every class again, under dog
    with pytest.raises(DatasetError, match=r"dog/all/cat/cat_0.wav is .*cat/cat_0.wav \(a symbolic link leads to "
                                           r"it\): one file in classes 'cat' and 'dog', and 3 more files like "
                                           r"it; give each file one class"):
        load_examples(root)


def test_a_file_name_with_a_line_break_trains_and_its_split_reads_back(tmp_path):
    root = make_folder_tree(tmp_path / "data", per_class=3)
    odd = write_tone(root / "cat" / "two\nlines.wav")
    spaced = write_tone(root / "dog" / " leading space.wav")
    examples = load_examples(root)
    assert {str(odd.resolve()), str(spaced.resolve())} <= {ex.path for ex in examples}
    splits = split_examples(examples, seed=0)
    write_split_csv(tmp_path / "split.csv", splits)
    assert read_split_csv(tmp_path / "split.csv") == splits  # it used to fail: "holds a line break"
    hand = tmp_path / "hand.csv"  # written by hand, with spaces after the commas
    hand.write_text(f"split, path, label\ntrain, data/cat/cat_0.wav, cat\ntest, data/dog/ leading space.wav, dog\n")
    assert [ex.path for name in ("train", "test") for ex in read_split_csv(hand)[name]] == [
        str(tmp_path / "data" / "cat" / "cat_0.wav"), str(tmp_path / "data" / "dog" / " leading space.wav")]


def test_line_breaks_in_labels_are_refused_when_the_data_is_read(tmp_path):
    """labels.txt and the models' label files hold one name per line: such a label used to train and
    only fail at export."""
    write_tone(tmp_path / "a.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text('path,label\na.wav,"two\nlines"\n')
    with pytest.raises(DatasetError,
                       match=r"line 2: the value in column 'label' holds a line break"):  # where it begins
        load_examples(manifest)
    root = make_folder_tree(tmp_path / "tree", per_class=1)
    (root / "owl").rename(root / "owl\nbird")
    with pytest.raises(DatasetError, match=r"class folder name 'owl\\nbird' holds a line break"):
        load_examples(root)


def test_demo_format_refuses_a_folder_with_other_files(tmp_path):
    root = make_folder_tree(tmp_path / "mine", per_class=1)
    config = config_for(root, tmp_path, **{"data.format": "demo", "data.demo_clips_per_class": 5})
    with pytest.raises(DatasetError, match=r"data.format .demo. \(--format demo, or the demo recipe\).*holds other "
                                           r"files; to train on them, set data.format to theirs "
                                           r"\(leave out --format demo and --pipeline demo\)"):
        prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    assert sorted(p.name for p in root.iterdir()) == ["cat", "dog", "owl"]  # nothing generated into it


def test_demo_format_finishes_an_interrupted_generation_into_a_given_folder(tmp_path):
    """--data X --format demo stopped while writing the clips left X with class folders and no marker, and
    the next run refused X as a folder with other files; the generation is finished instead, while a clip
    of the user's own in a demo class folder is still refused."""
    from sound_tf.datasets import resolve_source

    root = tmp_path / "demo"
    config = config_for(root, tmp_path, **{"data.format": "demo", "data.demo_clips_per_class": 5})
    resolve_source(config, log=lambda _: None)
    complete = sorted(p.relative_to(root) for p in root.rglob("*.wav"))
    assert len(complete) == 5 * len(DEMO_CLASSES)
    # what a kill part-way leaves: no marker, the last classes missing, a half-written clip's temporary file
    (root / demo_sounds.MARKER_NAME).unlink()
    for name in DEMO_CLASSES[1:]:
        shutil.rmtree(root / name)
    first = DEMO_CLASSES[0]
    (root / first / f"{first}_002.wav").unlink()
    (root / first / f".{first}_002.wav.host.123-abc.tmp").write_bytes(b"RIFF")
    lines: list[str] = []
    assert resolve_source(config, log=lines.append) == (root, "folder")
    assert lines and "generating the synthetic demo dataset" in lines[0]
    assert sorted(p.relative_to(root) for p in root.rglob("*.wav")) == complete
    assert (root / demo_sounds.MARKER_NAME).is_file()

    (root / demo_sounds.MARKER_NAME).unlink()
    write_tone(root / first / "mine.wav")
    with pytest.raises(DatasetError, match=r"holds other files"):
        resolve_source(config, log=lambda _: None)
    assert not (root / demo_sounds.MARKER_NAME).exists()


def test_demo_format_refuses_a_linked_class_folder_and_keeps_its_files(tmp_path):
    """A demo class folder that is a symbolic link to the user's own folder passed as an interrupted generation:
    the clips were written through the link into the user's folder, and its pluck_007.wav, past the 5 clips per
    class asked for, deleted. make_demo_dataset writes no link, so a folder with one is refused, and a linked
    clip too."""
    from sound_tf.datasets import resolve_source

    source = tmp_path / "source"
    config = config_for(source, tmp_path, **{"data.format": "demo", "data.demo_clips_per_class": 5})
    resolve_source(config, log=lambda _: None)
    (source / demo_sounds.MARKER_NAME).unlink()
    assert demo_sounds.holds_only_demo_clips(source)
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(source / "pluck" / "pluck_000.wav", mine / "pluck_007.wav")
    before = (mine / "pluck_007.wav").read_bytes()
    root = tmp_path / "demo"
    shutil.copytree(source, root)
    shutil.rmtree(root / "pluck")
    (root / "pluck").symlink_to(mine, target_is_directory=True)
    config = config_for(root, tmp_path, **{"data.format": "demo", "data.demo_clips_per_class": 5})
    assert not demo_sounds.holds_only_demo_clips(root)
    with pytest.raises(DatasetError, match=r"holds other files"):
        resolve_source(config, log=lambda _: None)
    assert [p.name for p in mine.iterdir()] == ["pluck_007.wav"] and (mine / "pluck_007.wav").read_bytes() == before
    assert not (root / demo_sounds.MARKER_NAME).exists()

    (root / "pluck").unlink()
    (root / "pluck").mkdir()
    (root / "pluck" / "pluck_000.wav").symlink_to(mine / "pluck_007.wav")
    assert not demo_sounds.holds_only_demo_clips(root)


def test_demo_format_finishes_an_interrupted_generation_that_finder_opened(tmp_path):
    """macOS's Finder leaves a .DS_Store in each folder it shows, and hides it: a user who looked into an
    interrupted generation was refused it as a folder that 'holds other files', none of which Finder showed.
    The folder loader skips hidden files, so the generation is finished, the .DS_Store files left as they are."""
    from sound_tf.datasets import resolve_source

    root = tmp_path / "demo"
    config = config_for(root, tmp_path, **{"data.format": "demo", "data.demo_clips_per_class": 5})
    resolve_source(config, log=lambda _: None)
    (root / demo_sounds.MARKER_NAME).unlink()
    shutil.rmtree(root / DEMO_CLASSES[-1])
    for folder in (root, root / DEMO_CLASSES[0]):
        (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    assert demo_sounds.holds_only_demo_clips(root)
    lines: list[str] = []
    assert resolve_source(config, log=lines.append) == (root, "folder")
    assert lines and "generating the synthetic demo dataset" in lines[0]
    assert len(list(root.rglob("*.wav"))) == 5 * len(DEMO_CLASSES)
    assert (root / ".DS_Store").read_bytes() == b"\x00\x00\x00\x01Bud1"
    (root / demo_sounds.MARKER_NAME).unlink()
    (root / ".DS_Store").unlink()
    (root / ".DS_Store").mkdir()  # a folder of that name is not Finder's
    assert not demo_sounds.holds_only_demo_clips(root)


def test_csv_manifest_relative_paths_folds_groups_and_missing_files(tmp_path):
    write_tone(tmp_path / "clips" / "a.wav")
    manifest = tmp_path / "clips" / "manifest.csv"
    manifest.write_text("\ufeffpath, label ,fold,group\n"
                        "a.wav,yes,1,spk1\n"
                        f"{tmp_path / 'elsewhere.wav'},no,2,\n"
                        "\n"
                        "sub/missing.wav,no,2.0,spk2\n"
                        "sub/../b.wav,yes,1,spk3\n")
    examples = load_examples(manifest)
    assert examples == [
        Example(str((tmp_path / "clips" / "a.wav").resolve()), "yes", 1, "spk1"),
        Example(str(tmp_path / "elsewhere.wav"), "no", 2, None),
        Example(str((tmp_path / "clips" / "sub" / "missing.wav").resolve()), "no", 2, "spk2"),
        Example(str((tmp_path / "clips" / "b.wav").resolve()), "yes", 1, "spk3"),  # sub/../b.wav is b.wav
    ]


@pytest.mark.parametrize("content, message", [
    # the column that could be meant is named: 'file' was passed over in silence
    ("file,label\na.wav,x\n", r"missing column\(s\) path; found \['file', 'label'\]; expected path,label "
                              r"and optionally fold,group; is column 'file' the path\? name it path$"),
    ("Filename,Category,fold\na.wav,x,1\n", r"missing column\(s\) path, label; .*; are columns 'Filename' and "
                                           r"'Category' the path and label\? name them path and label$"),
    ("path;label\na.wav;x\n", r"found \['path;label'\]; .*; the header looks ';'-separated: write the CSV with commas"),
    ("path\tlabel\na.wav\tx\n", r"the header looks tab-separated: write the CSV with commas"),
    ("Path,Label\na.wav,x\n", r"missing column\(s\) path, label; .*; column names are case-sensitive: write them in "
                              r"lower case"),
    ("path,label\na.wav,\n", r"line 2: empty value in column 'label'"),
    # an optional column in another case was not read: its folds were replaced by a drawn split without a word
    ("path,label,Fold\na.wav,x,1\n", r"column 'Fold' is not read as 'fold': column names are case-sensitive: write "
                                     r"it in lower case$"),
    ("path,label,fold,GROUP\na.wav,x,1,s1\n", r"column 'GROUP' is not read as 'group'"),
    ("path,label,fold\na.wav,x,1\nb.wav,y,one\n", r"line 3: fold must be an integer, got 'one'"),
    ("path,label,fold\na.wav,x,2.0\nb.wav,y,1.5\n", r"line 3: fold must be an integer, got '1\.5'"),  # 2.0 is 2
    # it was "1 of 3 examples have a fold and the others do not", naming neither the manifest nor the row
    ("path,label,fold\na.wav,x,1\nb.wav,y,\nc.wav,y,2\n", r"line 3: no fold, while 2 of the 3 rows have one \(1 row "
                                                       r"without\); give every row a fold"),
    ("path,label,fold\na.wav,x,1\nb.wav,y,\nc.wav,y,\n", r"line 3: no fold, while 1 of the 3 rows has one \(2 rows "
                                                     r"without\); give every row a fold"),
    ("path,label\na.wav,x,extra\n", r"line 2: 3 values for 2 columns \['path', 'label'\]$"),
    ("path,label\n", "no data rows"),
    ("path,label\nsub/a.wav,x\nb.wav,y\nsub/../sub/a.wav,y\n",
     r"line 4: sub/\.\./sub/a\.wav is the file already listed on line 2"),
])
def test_csv_errors_name_file_and_row(tmp_path, content, message):
    manifest = tmp_path / "bad.csv"
    manifest.write_text(content)
    with pytest.raises(DatasetError, match=message) as info:
        load_examples(manifest)
    assert str(manifest) in str(info.value)


def _manifest_warnings(manifest: Path, text: str, caplog) -> list[str]:
    """The warnings of loading ``manifest`` written as ``text`` (its files are written as tones first)."""
    for line in text.splitlines()[1:]:
        if not (manifest.parent / line.split(",")[0]).exists():
            write_tone(manifest.parent / line.split(",")[0])
    manifest.write_text(text)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert len(load_examples(manifest)) == len(text.splitlines()) - 1
    return [r.getMessage() for r in caplog.records]


#: The start of the warning about a manifest's split column, after the manifest's path.
SPLIT_NOT_READ = ("is not read: a manifest's splits come from its 'fold' column (--test-fold K, --val-fold K) or "
                  "are drawn by fraction (data.val_fraction, data.test_fraction); to keep the split, ")


def test_a_manifests_split_column_is_named_as_not_read_with_the_folds_that_keep_it(tmp_path, caplog):
    """A column 'split' (train/val/test) was dropped without a word and the split drawn by fraction."""
    manifest = tmp_path / "clips.csv"
    as_folds = "write it as folds (e.g. train 1, val 2, test 3 with --val-fold 2 --test-fold 3)"
    assert _manifest_warnings(manifest, "path,label,split\na.wav,x,train\nb.wav,y,test\n", caplog) == [
        f"{manifest}: its column 'split' {SPLIT_NOT_READ}{as_folds}"]
    # in another case too
    assert _manifest_warnings(manifest, "path,label,Split\na.wav,x,train\nb.wav,y,val\n", caplog) == [
        f"{manifest}: its column 'Split' {SPLIT_NOT_READ}{as_folds}"]
    assert _manifest_warnings(manifest, "path,label,fold\na.wav,x,1\nb.wav,y,3\n", caplog) == []


def test_a_manifests_train_val_test_column_is_pointed_to_data_split_file(tmp_path, caplog):
    """A manifest whose 'split' column holds train, val and test is a split file as it is (read_split_csv
    reads it: one file per split here), but the warning told the user to rewrite it as folds."""
    manifest = tmp_path / "clips.csv"
    assert _manifest_warnings(manifest, "path,label,split\na.wav,x,train\nb.wav,y,val\nc.wav,x,test\n", caplog) == [
        f"{manifest}: its column 'split' {SPLIT_NOT_READ}give the file as the run's split file: "
        f"--set data.split_file={manifest} (in place of --data)"]
    splits = read_split_csv(manifest)
    assert {name: [Path(ex.path).name for ex in splits[name]] for name in splits} == {
        "train": ["a.wav"], "val": ["b.wav"], "test": ["c.wav"]}


def test_the_official_metadata_given_as_the_manifest_points_to_the_dataset_folder(tmp_path):
    """--data ESC-50/meta/esc50.csv read it as a CSV manifest: "missing column(s) path, label", no word of
    the folder that would have worked."""
    root = make_esc50(tmp_path / "ESC-50")
    with pytest.raises(DatasetError, match=rf"this is the official metadata of a dataset: give its folder as "
                                           rf"data.path \(--data {re.escape(str(root.resolve()))}\)$"):
        load_examples(root / "meta" / "esc50.csv")
    other = tmp_path / "mine.csv"  # the same columns elsewhere: no such hint, the columns that could be meant
    other.write_text((root / "meta" / "esc50.csv").read_text())
    with pytest.raises(DatasetError, match=r"expected path,label and optionally fold,group; are columns 'filename' and "
                                           r"'category' the path and label\? name them path and label$"):
        load_examples(other)


@pytest.mark.parametrize("maker, meta, renamed, hint", [
    (make_esc50, "meta/esc50.csv", ("filename", "file_name"), "is column 'file_name' the filename? name it filename"),
    (make_esc50, "meta/esc50.csv", ("category", "class"), "is column 'class' the category? name it category"),
    (make_us8k, "metadata/UrbanSound8K.csv", ("class", "category"), "is column 'category' the class? name it class"),
])
def test_official_metadata_with_a_renamed_column_is_refused_before_tensorflow_with_the_column_meant(
        tmp_path, maker, meta, renamed, hint):
    """An ESC-50 copy whose meta/esc50.csv had 'file_name' for filename was refused by crossval after TensorFlow's
    start-up (8.5 s here) with "missing column(s) filename; found [...]" and no word of 'file_name'
    (session 49's ESC-50 walkthrough): check_source read a CSV manifest's header alone. It reads the official
    metadata's header too now, load_examples' message word for word, which names the column that may be meant."""
    from sound_tf.datasets import check_source

    root = maker(tmp_path / "data")
    path = root / meta
    original = path.read_text()
    header, rest = original.split("\n", 1)
    path.write_text(",".join(renamed[1] if name == renamed[0] else name for name in header.split(",")) + "\n" + rest)
    with pytest.raises(DatasetError) as loading:
        load_examples(root)
    assert str(loading.value).endswith(f"; {hint}"), loading.value
    assert f"missing column(s) {renamed[0]}; found [" in str(loading.value)
    for fmt in ("auto", "esc50" if "esc50" in meta else "urbansound8k"):
        config = apply_overrides(Config(), {"data.path": str(root), "data.format": fmt})
        with pytest.raises(DatasetError) as checking:
            check_source(config)
        assert str(checking.value) == str(loading.value)
    path.write_text(original)  # the header put back: nothing to say
    check_source(apply_overrides(Config(), {"data.path": str(root)}))


def test_a_test_or_validation_fold_the_data_lacks_is_named_as_the_setting_and_its_flag(tmp_path):
    """'train --data ~/ESC-50 --test-fold 6' was told 'error: test_fold=6 does not exist; folds present: [1, 2, 3, 4,
    5]' and '--test-fold 0' 'test_fold must be 1 or more', split_examples' argument, which neither a command's user
    nor a Config's sets (session 49's ESC-50 walkthrough). The split of a config names data.test_fold and the flag."""
    from sound_tf.datasets import _split

    examples = load_examples(make_esc50(tmp_path / "ESC-50"))
    for name, flag, fold, said in (
            ("test_fold", "--test-fold", 6, "the data has no fold 6; folds present: [1, 2, 3, 4, 5]"),
            ("val_fold", "--val-fold", 9, "the data has no fold 9; folds present: [1, 2, 3, 4, 5]"),
            ("test_fold", "--test-fold", 0, "a fold must be 1 or more (folds count from 1, as ESC-50's, "
                                            "UrbanSound8K's and --test-fold do), got 0")):
        config = apply_overrides(Config(), {f"data.{name}": fold})
        with pytest.raises(DatasetError) as info:
            _split(examples, config)
        assert str(info.value) == f"data.{name}={fold} ({flag} {fold}): {said}"
    splits = _split(examples, apply_overrides(Config(), {"data.test_fold": 2, "data.val_fold": 5}))
    assert ({ex.fold for ex in splits["test"]}, {ex.fold for ex in splits["val"]}) == ({2}, {5})


def test_a_quote_left_open_in_a_manifest_names_the_line_it_opened_on(tmp_path):
    """A value opened with a double quote and not closed takes in the lines below it: the error named the
    last line of the file, and past csv's field size limit (a manifest of a few thousand rows) it was a
    traceback (_csv.Error), not an error naming the manifest."""
    manifest = tmp_path / "m.csv"
    manifest.write_text('path,label\na.wav,x\n"b.wav,hi-hat\nc.wav,y\nd.wav,z\n')
    with pytest.raises(DatasetError, match=r"m.csv, line 3: 1 value for 2 columns .*; the record runs from "
                                           r"line 3 to line 5: a value that begins with a double quote takes in every "
                                           r"line up to the next double quote \(is one on line 3 not closed\?\)"):
        load_examples(manifest)
    manifest.write_text('path,label\na.wav,x\nb.wav,"hi-hat\n' + "c.wav,y\n" * 20000)
    with pytest.raises(DatasetError, match=r"m.csv, line 3: cannot read the CSV from here \(field larger than field "
                                           r"limit \(131072\)\); the record runs from line 3 to line 16387"):
        load_examples(manifest)


def test_labels_that_differ_only_in_case_or_unicode_form_are_pointed_out(tmp_path, caplog):
    root = make_folder_tree(tmp_path / "data", classes=("dog", "Dog", "caf\u00e9", "cafe\u0301", "owl"), per_class=1)
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len({ex.label for ex in load_examples(root)}) == 5  # still five classes: the names are the labels
    assert "2 groups of labels differ only in case, Unicode form or leading zeros and are separate classes" \
        in caplog.text
    caplog.clear()
    manifest = tmp_path / "digits.csv"  # "01" saved by a spreadsheet as 1 on some rows: two classes, said
    manifest.write_text("path,label\na.wav,01\nb.wav,1\nc.wav,10\nd.wav,2\ne.wav,00\nf.wav,0\n")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len({ex.label for ex in load_examples(manifest)}) == 6
    assert "2 groups of labels differ only in case, Unicode form or leading zeros and are separate classes (e.g. " \
           "'01' / '1')" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        load_examples(make_folder_tree(tmp_path / "plain", per_class=1))
    assert "differ only in case" not in caplog.text


def test_esc50_parsing(tmp_path):
    root = make_esc50(tmp_path / "ESC-50")
    examples = load_examples(root)
    assert len(examples) == 5 * 2 * 2 * 2
    first = examples[0]
    assert first == Example(str(root.resolve() / "audio" / "1-100-A-0.wav"), "dog", 1, "100")
    assert all(Path(ex.path).is_file() for ex in examples)
    assert Counter(ex.fold for ex in examples) == {f: 8 for f in range(1, 6)}


def test_an_official_datasets_audio_folder_is_refused_naming_its_root(tmp_path):
    """UrbanSound8K's audio/ was read as a folder of classes, fold1 ... fold10 its classes (a cross-validation
    trained a model to tell the folds apart, at chance, without a word); audio/fold1 was told to give audio/."""
    us8k = make_us8k(tmp_path / "UrbanSound8K", folds=3)
    root = us8k.resolve()
    with pytest.raises(DatasetError) as caught:
        detect_format(us8k / "audio")
    assert str(caught.value) == (f"{root / 'audio'}: the audio folder of the UrbanSound8K dataset at {root}, whose "
                                 f"metadata/UrbanSound8K.csv gives each file its class and fold; read alone, its "
                                 f"fold1 ... fold10 folders would be taken for classes; give the dataset's root "
                                 f"folder: --data {root}")
    with pytest.raises(DatasetError, match=re.escape(
            f"{root / 'audio' / 'fold2'}: folder fold2 inside the audio folder of the UrbanSound8K dataset at {root}, "
            f"whose metadata/UrbanSound8K.csv gives each file its class and fold; give the dataset's root folder: "
            f"--data {root} (--folds 2 cross-validates fold 2 alone; --test-fold 2 tests a training run on it)")):
        load_examples(us8k / "audio" / "fold2")
    for fmt in ("auto", "urbansound8k"):  # forced: it read 'audio/metadata/UrbanSound8K.csv: manifest not found'
        with pytest.raises(DatasetError, match=re.escape(f"give the dataset's root folder: --data {root}")):
            load_examples(us8k / "audio", fmt)
    assert {ex.label for ex in load_examples(us8k / "audio", "folder")} == {"fold1", "fold2", "fold3"}  # as asked
    esc50 = make_esc50(tmp_path / "ESC-50").resolve()
    with pytest.raises(DatasetError, match=re.escape(
            f"{esc50 / 'audio'}: the audio folder of the ESC-50 dataset at {esc50}, whose meta/esc50.csv gives each "
            f"file its class and fold; give the dataset's root folder: --data {esc50}")):
        detect_format(esc50 / "audio")  # it was told to put each class's files in a subfolder
    with pytest.raises(DatasetError, match=re.escape(  # it read 'no audio files found (extensions ...); expected ...'
            f"{root / 'metadata'}: the metadata folder of the UrbanSound8K dataset at {root}, which holds its "
            f"UrbanSound8K.csv, not its audio; give the dataset's root folder: --data {root}")):
        detect_format(us8k / "metadata")
    plain = make_folder_tree(tmp_path / "audio")  # a folder of classes named audio, no metadata beside it
    assert detect_format(plain) == "folder"


def test_a_manifest_under_an_official_format_is_told_format_csv(tmp_path):
    """A manifest of UrbanSound8K's foreground slices given with --pipeline urbansound8k (whose data.format is
    urbansound8k) read 'format 'urbansound8k' needs the dataset's root folder', naming no way to read it."""
    us8k = make_us8k(tmp_path / "UrbanSound8K", folds=2)
    manifest = us8k / "foreground.csv"
    manifest.write_text("path,label,fold,group\naudio/fold1/1000-0-0-0.wav,siren,1,1000\n"
                        "audio/fold2/2001-1-0-0.wav,drilling,2,2001\n")
    for fmt in ("urbansound8k", "esc50"):
        with pytest.raises(DatasetError) as caught:
            load_examples(manifest, fmt)
        assert str(caught.value) == (f"{manifest.resolve()}: format {fmt!r} needs the dataset's root folder; --format "
                                     f"csv reads a CSV manifest, also with a recipe whose data.format names a "
                                     f"dataset's own layout (--pipeline {fmt})")
    assert [ex.fold for ex in load_examples(manifest, "csv")] == [1, 2]
    with pytest.raises(DatasetError) as caught:  # not a manifest: the refusal as it was
        load_examples(us8k / "audio" / "fold1" / "1000-0-0-0.wav", "urbansound8k")
    assert str(caught.value).endswith("format 'urbansound8k' needs the dataset's root folder")



def test_a_folder_read_as_csv_is_told_the_format_that_reads_it(tmp_path):
    """A folder of class folders given with --pipeline fsdd (whose data.format is csv) was told "format 'csv' needs
    a .csv file", a format its user never typed, naming no way to read the folder with that recipe."""
    from sound_tf.datasets import check_source
    root = make_folder_tree(tmp_path / "digits")
    expected = (f"{root.resolve()}: format 'csv' needs a .csv file with columns path,label[,fold,group]; it is a "
                f"folder that --format auto reads as 'folder': --format folder reads it, also with a recipe whose "
                f"data.format is 'csv'")
    with pytest.raises(DatasetError) as caught:  # before TensorFlow starts: train, crossval and tune
        check_source(config_for(root, tmp_path, **{"data.format": "csv"}))
    assert str(caught.value) == expected
    with pytest.raises(DatasetError) as caught:  # and as the examples are loaded
        load_examples(root, "csv")
    assert str(caught.value) == expected
    assert len(load_examples(root, "folder")) == 12  # what the message offers reads it: 3 classes x 4
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError) as caught:  # a folder of no layout: nothing to offer
        load_examples(empty, "csv")
    assert str(caught.value) == (f"{empty.resolve()}: format 'csv' needs a .csv file with columns "
                                 f"path,label[,fold,group]")

def test_urbansound8k_parsing(tmp_path):
    root = make_us8k(tmp_path / "UrbanSound8K")
    examples = load_examples(root, "urbansound8k")
    assert len(examples) == 10 * 2 * 2
    ex = next(e for e in examples if e.fold == 7 and e.label == "drilling")
    assert ex.path == str(root.resolve() / "audio" / "fold7" / "7001-1-0-0.wav")
    assert ex.group == "7001"
    assert all(Path(e.path).is_file() for e in examples)


def test_official_metadata_that_lists_a_file_twice_is_refused(tmp_path):
    """A copied row used to score one clip twice, or (with another fold) put it in training and test."""
    esc50 = make_esc50(tmp_path / "ESC-50")
    meta = esc50 / "meta" / "esc50.csv"
    lines = meta.read_text().splitlines()
    name, _, rest = lines[1].partition(",")
    meta.write_text("\n".join(lines + [f"{name},5,{rest.split(',', 1)[1]}"]) + "\n")  # fold 1's file again, fold 5
    with pytest.raises(DatasetError, match=rf"esc50.csv, line {len(lines) + 1}: {re.escape(name)} is the file already "
                                           rf"listed on line 2; list each file once"):
        load_examples(esc50)
    us8k = make_us8k(tmp_path / "UrbanSound8K", folds=2)
    meta = us8k / "metadata" / "UrbanSound8K.csv"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join(lines + [lines[3]]) + "\n")
    with pytest.raises(DatasetError, match=rf"UrbanSound8K.csv, line {len(lines) + 1}: fold1/{lines[3].split(',')[0]} "
                                           rf"is the file already listed on line 4"):
        load_examples(us8k, "urbansound8k")


def test_audio_files_the_official_metadata_does_not_list_are_counted(tmp_path, caplog):
    esc50 = make_esc50(tmp_path / "ESC-50")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len(load_examples(esc50)) == 40
    assert "not listed" not in caplog.text
    write_tone(esc50 / "audio" / "extra" / "6-999-A-0.wav")
    write_tone(esc50 / "audio" / "7-999-A-0.flac")
    (esc50 / "audio" / "notes.txt").write_text("not audio")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len(load_examples(esc50)) == 40
    assert f"2 audio files under {esc50.resolve() / 'audio'} are not listed in" in caplog.text
    assert "(e.g. 7-999-A-0.flac) and are not used" in caplog.text

    us8k = make_us8k(tmp_path / "UrbanSound8K", folds=3)
    write_tone(us8k / "audio" / "fold3" / "9999-0-0-0.wav")  # listed nowhere
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len(load_examples(us8k, "urbansound8k")) == 12
    assert "1 audio file under" in caplog.text and f"is not listed in" in caplog.text
    assert f"(e.g. {Path('fold3', '9999-0-0-0.wav')}) and is not used" in caplog.text


def test_official_metadata_resolves_each_folder_once_and_follows_linked_files(tmp_path, caplog):
    """ESC-50's listed files and the files walked under audio/ were each resolved with os.path.realpath, which checks
    every part of every path (0.8 s of UrbanSound8K's 8,732 files for the files not listed alone). Each folder is
    resolved once now, and a file only when it is a link: a listed file that links to a recording elsewhere under
    audio/ is that recording, a link to a listed file is the listed file, and a linked folder's file is counted."""
    esc50 = make_esc50(tmp_path / "ESC-50")
    listed = sorted((esc50 / "audio").iterdir())
    (esc50 / "audio" / "takes").mkdir()
    listed[0].rename(esc50 / "audio" / "takes" / "original.wav")  # the listed name links to it
    listed[0].symlink_to(esc50 / "audio" / "takes" / "original.wav")
    (esc50 / "audio" / "again").mkdir()
    (esc50 / "audio" / "again" / "copy.wav").symlink_to(listed[1])
    write_tone(tmp_path / "elsewhere" / "9-999-A-0.wav")  # in a linked folder, listed nowhere
    (esc50 / "audio" / "more").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    links = [str(listed[0].absolute()), str(esc50.absolute() / "audio" / "again" / "copy.wav")]
    with calls_to("realpath") as calls, caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len(load_examples(esc50)) == 40
    # the links alone: the listed one for the check of files listed twice, for the listed files and as walked
    assert sorted(path for path in calls if path.endswith(".wav")) == sorted([links[0]] * 3 + [links[1]])
    # audio/ once per reading, not once per file: the files listed twice, the listed files, the walk (its loop check)
    assert calls.count(str(esc50.absolute() / "audio")) == 3
    assert f"1 audio file under {esc50.absolute() / 'audio'} is not listed in" in caplog.text
    assert f"(e.g. {Path('more', '9-999-A-0.wav')}) and is not used" in caplog.text
    (esc50 / "audio" / "more").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len(load_examples(esc50)) == 40
    assert "not listed" not in caplog.text  # original.wav is listed (through its link), copy.wav is a listed file


def test_urbansound8k_files_out_of_their_folds_folder_are_named_with_their_line(tmp_path, caplog):
    """A file whose fold column was edited (or that was moved to another fold's folder) read 'file not found' for the
    fold written and, two lines away, 'not listed' for the folder it is in; a fold folder missing read as many
    'file not found' lines as its files, and nothing of the folder."""
    us8k = make_us8k(tmp_path / "UrbanSound8K", folds=3)
    meta = us8k / "metadata" / "UrbanSound8K.csv"
    moved = us8k / "audio" / "fold2" / "2000-0-0-0.wav"  # line 6 (fold 2's first row)
    moved.rename(us8k / "audio" / "fold3" / moved.name)
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        examples = load_examples(us8k, "urbansound8k")
    assert len(examples) == 12 and not os.path.exists(next(ex.path for ex in examples if ex.path.endswith(moved.name)))
    assert (f"{meta.resolve()}: 1 file listed in one fold is in another fold's folder, not its own, and is not used "
            f"(not found where the fold column says): line 6: 2000-0-0-0.wav (fold 2) is in "
            f"{Path('audio', 'fold3')}; correct the fold column, or move the file to the fold's folder") in caplog.text
    assert "not listed" not in caplog.text  # it is listed: the line above says where it is
    shutil.rmtree(us8k / "audio" / "fold1")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len(load_examples(us8k, "urbansound8k")) == 12
    assert (f"{us8k.resolve()}: {Path('audio', 'fold1')} does not exist: the 4 files "
            f"{Path('metadata', 'UrbanSound8K.csv')} lists in fold 1 (from line 2) are not found and not used; "
            f"restore the folder from the dataset's download") in caplog.text
    assert "1 file listed in one fold is in another" in caplog.text  # fold 1's files: named as a folder, not moved


def test_urbansound8k_fold_folders_are_listed_once_not_each_file_looked_at(tmp_path, caplog):
    """The check of UrbanSound8K's fold folders looked at each listed file on the disk; it lists each fold folder
    once and looks only at the files not in it. A link there that leads nowhere is missing, as before: the file it
    names, in another fold's folder, is named as moved."""
    us8k = make_us8k(tmp_path / "UrbanSound8K", folds=3)
    meta = us8k / "metadata" / "UrbanSound8K.csv"
    linked = us8k / "audio" / "fold2" / "2000-0-0-0.wav"  # line 6 (fold 2's first row)
    linked.rename(us8k / "audio" / "fold3" / linked.name)
    linked.symlink_to(tmp_path / "unmounted" / linked.name)
    gone = us8k / "audio" / "fold1" / "1001-1-0-1.wav"
    gone.unlink()
    with calls_to("exists") as looked_at, caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len(load_examples(us8k, "urbansound8k")) == 12
    assert {path for path in looked_at if path.endswith(".wav")} == {str(linked.absolute()), str(gone.absolute())}
    assert (f"{meta.absolute()}: 1 file listed in one fold is in another fold's folder, not its own, and is not used "
            f"(not found where the fold column says): line 6: 2000-0-0-0.wav (fold 2) is in "
            f"{Path('audio', 'fold3')}; correct the fold column") in caplog.text
    assert "not listed" not in caplog.text and "1001-1-0-1.wav" not in caplog.text  # missing: the decoding says it


def test_official_metadata_read_without_walking_says_nothing_of_the_audio_folder_and_is_refused_as_ever(
        tmp_path, caplog, folder_walks):
    """load_examples(walk=False) (the early checks of crossval) reads ESC-50's metadata without walking audio/ for
    the files it does not list and gives the examples the walk's reading gives; ESC-50's and UrbanSound8K's metadata
    listing a file twice is refused as that reading refuses it (session 53's mutation audit: ESC-50 walked with
    walk=False, and the check of files listed twice passed over with it, passed every test)."""
    esc50 = make_esc50(tmp_path / "ESC-50")
    write_tone(esc50 / "audio" / "9-999-A-0.wav")  # listed nowhere
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        quiet = load_examples(esc50, walk=False)
    assert not folder_walks and "not listed" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert load_examples(esc50) == quiet and len(quiet) == 40
    assert folder_walks == {"audio": 1} and "(e.g. 9-999-A-0.wav) and is not used" in caplog.text
    meta = esc50 / "meta" / "esc50.csv"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(DatasetError, match=rf"esc50.csv, line {len(lines) + 1}: {re.escape(lines[1].split(',')[0])} is "
                                           rf"the file already listed on line 2"):
        load_examples(esc50, walk=False)
    us8k = make_us8k(tmp_path / "UrbanSound8K", folds=2)
    meta = us8k / "metadata" / "UrbanSound8K.csv"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join(lines + [lines[3]]) + "\n")
    with pytest.raises(DatasetError, match=rf"UrbanSound8K.csv, line {len(lines) + 1}: "
                                           rf"fold1/{re.escape(lines[3].split(',')[0])} is the file already listed "
                                           rf"on line 4"):
        load_examples(us8k, "urbansound8k", walk=False)


# -- splits ----------------------------------------------------------------------------------------
def test_esc50_folds_default_and_never_leak(tmp_path):
    examples = load_examples(make_esc50(tmp_path / "esc"))
    splits = split_examples(examples)
    assert {ex.fold for ex in splits["test"]} == {5}
    assert {ex.fold for ex in splits["val"]} == {4}
    assert {ex.fold for ex in splits["train"]} == {1, 2, 3}
    assert sum(map(len, splits.values())) == len(examples)
    assert_no_leak(splits, by_group=True)
    assert_no_leak(split_examples(examples, test_fold=1), by_group=True)


def test_urbansound8k_fold_choice_is_cyclic_and_validated(tmp_path):
    examples = load_examples(make_us8k(tmp_path / "us8k"))
    splits = split_examples(examples, test_fold=1)
    assert ({ex.fold for ex in splits["test"]}, {ex.fold for ex in splits["val"]}) == ({1}, {10})
    assert {ex.fold for ex in splits["train"]} == set(range(2, 10))
    assert_no_leak(splits, by_group=True)
    assert {ex.fold for ex in split_examples(examples, test_fold=3, val_fold=7)["val"]} == {7}
    with pytest.raises(DatasetError, match=r"test_fold=11 does not exist; folds present: \[1, 2, .*10\]"):
        split_examples(examples, test_fold=11)
    with pytest.raises(DatasetError, match="val_fold and test_fold are both 4"):
        split_examples(examples, test_fold=4, val_fold=4)
    with pytest.raises(DatasetError, match=r"val_fold=10 is the test fold: test_fold is not set and defaults to the "
                                           r"last fold, 10; set test_fold \(--test-fold\)"):
        split_examples(examples, val_fold=10)


def test_two_folds_carve_validation_from_the_training_fold_by_group():
    examples = [Example(f"/d/{fold}_{label}_{g}_{k}.wav", label, fold, f"{fold}{label}{g}")
                for fold in (1, 2) for label in ("a", "b") for g in range(5) for k in range(3)]
    splits = split_examples(examples, val_fraction=0.2, seed=3)
    assert {ex.fold for ex in splits["test"]} == {2}
    assert {ex.fold for ex in splits["train"]} == {ex.fold for ex in splits["val"]} == {1}
    assert Counter(ex.label for ex in splits["val"]) == {"a": 3, "b": 3}  # one 3-clip group of each class
    assert_no_leak(splits, by_group=True)
    # val_fraction (not test_fraction) sizes it: 0.4 of each class's 15 clips is two 3-clip groups
    wider = split_examples(examples, val_fraction=0.4, test_fraction=0.1, seed=3)
    assert Counter(ex.label for ex in wider["val"]) == {"a": 6, "b": 6}
    assert Counter(ex.label for ex in wider["train"]) == {"a": 9, "b": 9}
    assert wider["test"] == splits["test"]
    with pytest.raises(DatasetError, match="only two folds"):
        split_examples(examples, val_fold=1)


def test_val_from_training_draws_validation_from_every_training_fold_by_group(tmp_path):
    """data.val_from 'training' (session 52's UrbanSound8K walkthrough: each model trained on 8 of the 10 folds, as
    the fold before the test fold validated): validation is a group-aware, label-stratified val_fraction of the nine
    other folds, the test fold as it was. UrbanSound8K's groups are its fsID: 3 classes x 9 folds of one 2-slice fsID
    each make 18 training slices a class, of which 0.15 (2.7) is one fsID: 2 slices a class validate, 16 train."""
    examples = load_examples(make_us8k(tmp_path / "us8k", classes=("siren", "drilling", "dog_bark")))
    default = split_examples(examples, test_fold=1)
    assert split_examples(examples, test_fold=1, val_from="fold") == default  # the default, unchanged
    assert ({ex.fold for ex in default["val"]}, len(default["train"]), len(default["val"])) == ({10}, 48, 6)
    splits = split_examples(examples, test_fold=1, val_from="training")
    assert splits["test"] == default["test"] and {ex.fold for ex in splits["test"]} == {1}  # the test fold untouched
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (48, 6, 6)
    assert Counter(ex.label for ex in splits["val"]) == {"siren": 2, "drilling": 2, "dog_bark": 2}
    assert {ex.fold for ex in splits["train"] + splits["val"]} == set(range(2, 11))  # all nine other folds
    assert len({ex.fold for ex in splits["train"]}) == 9  # no fold wholly validates: every one trains
    assert_no_leak(splits, by_group=True)  # no fsID in both training and validation
    assert all(len({ex.group for ex in splits["val"] if ex.label == label}) == 1 for label in ("siren", "drilling"))
    again = split_examples(examples, test_fold=1, val_from="training")
    assert again == splits  # the same seed, the same split
    draws = {tuple(sorted(ex.group for ex in split_examples(examples, test_fold=1, val_from="training",
                                                              seed=seed)["val"])) for seed in range(6)}
    assert len(draws) > 1  # another seed, another draw
    wider = split_examples(examples, test_fold=4, val_from="training", val_fraction=0.3)
    assert Counter(ex.label for ex in wider["val"]) == {"siren": 6, "drilling": 6, "dog_bark": 6}  # 0.3 of 18: 3 fsIDs
    assert {ex.fold for ex in wider["test"]} == {4} and 4 not in {ex.fold for ex in wider["val"] + wider["train"]}
    with pytest.raises(DatasetError, match=r"val_from='training' draws validation from the training folds \(a "
                                           r"val_fraction 0.15 of them\), so val_fold=3 would not be used"):
        split_examples(examples, test_fold=1, val_fold=3, val_from="training")
    with pytest.raises(ConfigError, match="val_from must be 'fold' or 'training', got 'train'"):
        split_examples(examples, val_from="train")


def test_val_from_training_keeps_esc50_sources_and_csv_groups_whole_and_needs_two_groups_a_class(tmp_path):
    """The groups it draws by are each format's Example.group: ESC-50's src_file (the clip the 5-s excerpts were cut
    from, takes A, B, ...), a CSV's group column. A class with one group in the training folds cannot be in both
    training and validation: it trains, and the classes with two groups or more are all in validation."""
    esc = load_examples(make_esc50(tmp_path / "esc", categories=("dog", "rain", "crow"), takes=3))
    assert {ex.group for ex in esc if Path(ex.path).name == "2-210-B-1.wav"} == {"210"}  # src_file
    splits = split_examples(esc, val_from="training", val_fraction=0.2, seed=5)
    assert {ex.fold for ex in splits["test"]} == {5} and len(splits["test"]) == 18  # the last fold, as by default
    assert {ex.fold for ex in splits["train"] + splits["val"]} == {1, 2, 3, 4}
    # 8 sources x 3 takes = 24 clips a class, 0.2 of them 4.8: two sources (6 clips) is further than one (3)
    assert Counter(ex.label for ex in splits["val"]) == {"dog": 6, "rain": 6, "crow": 6}
    assert_no_leak(splits, by_group=True)
    manifest = tmp_path / "csv" / "list.csv"
    rows = [(f"{label}{fold}_{i}.wav", label, fold, f"{label}{fold}{i // 2}")
            for fold in (1, 2, 3, 4) for label in ("cat", "dog") for i in range(4)]
    rows += [(f"owl{fold}.wav", "owl", fold, "owl-one-bird") for fold in (1, 2, 3)]  # one group over the folds
    for name, *_ in rows:
        write_tone(manifest.parent / name)
    manifest.write_text("path,label,fold,group\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    examples = load_examples(manifest)
    assert {ex.group for ex in examples if ex.label == "owl"} == {"owl-one-bird"}
    splits = split_examples(examples, test_fold=4, val_from="training", val_fraction=0.2)
    assert Counter(ex.label for ex in splits["val"]) == {"cat": 2, "dog": 2}  # one 2-clip group of 12 each
    assert Counter(ex.label for ex in splits["train"]) == {"cat": 10, "dog": 10, "owl": 3}  # owl's one group trains
    assert_no_leak(splits, by_group=True)


def test_fractions_must_be_under_a_half():
    examples = [Example(f"/{label}{i}.wav", label) for label in "xy" for i in range(6)]
    for name in ("val_fraction", "test_fraction"):
        for value in (0.5, 0.0):
            with pytest.raises(DatasetError, match=rf"{name} must be in \(0, 0.5\), got {value}"):
                split_examples(examples, **{name: value})
    assert sum(map(len, split_examples(examples, val_fraction=0.49, test_fraction=0.49).values())) == 12


def test_fold_errors():
    with pytest.raises(DatasetError, match="1 of 2 examples have a fold"):
        split_examples([Example("/a.wav", "x", 1), Example("/b.wav", "x")])
    with pytest.raises(DatasetError, match="all examples are in fold 3"):
        split_examples([Example("/a.wav", "x", 3), Example("/b.wav", "y", 3)])
    with pytest.raises(DatasetError, match="no folds"):
        split_examples([Example("/a.wav", "x")], test_fold=1)


def _grouped_examples(rng: np.random.Generator) -> list[Example]:
    """Three classes of unequal size, recordings of 1-4 clips each."""
    examples = []
    for label, recordings in (("bird", 12), ("car", 7), ("rain", 3)):
        for r in range(recordings):
            for clip in range(int(rng.integers(1, 5))):
                examples.append(Example(f"/data/{label}/{r}_{clip}.wav", label, group=f"{label}-rec{r}"))
    return examples


def test_stratified_split_is_group_aware_deterministic_and_complete(rng):
    examples = _grouped_examples(rng)
    splits = split_examples(examples, seed=5)

    assert split_examples(examples, seed=5) == splits
    assert split_examples(examples, seed=6) != splits
    assert_no_leak(splits, by_group=True)
    assert sum(map(len, splits.values())) == len(examples)
    for name in ("train", "val", "test"):
        assert {ex.label for ex in splits[name]} == {"bird", "car", "rain"}, name
    birds = [ex for ex in examples if ex.label == "bird"]
    test_birds = [ex for ex in splits["test"] if ex.label == "bird"]
    assert abs(len(test_birds) - 0.15 * len(birds)) <= 4  # within one recording of the target


def test_stratified_split_small_classes_and_ungrouped_files():
    examples = ([Example(f"/x/a{i}.wav", "a") for i in range(20)]
                + [Example("/x/b0.wav", "b"), Example("/x/b1.wav", "b"), Example("/x/c0.wav", "c")])
    splits = split_examples(examples, val_fraction=0.25, test_fraction=0.25)
    counts = {name: Counter(ex.label for ex in splits[name]) for name in splits}
    assert counts["test"]["a"] == 5 and counts["val"]["a"] == 5 and counts["train"]["a"] == 10
    assert (counts["train"]["b"], counts["test"]["b"], counts["val"]["b"]) == (1, 1, 0)
    assert counts["train"]["c"] == 1
    assert_no_leak(splits, by_group=False)


def test_assign_kfold_keeps_groups_together_and_stratifies(rng):
    examples = _grouped_examples(rng)
    folds = assign_kfold(examples, 3, seed=0)
    assert folds == assign_kfold(examples, 3, seed=0)
    assert set(folds) == {1, 2, 3}
    by_group: dict[str, set] = {}
    for ex, fold in zip(examples, folds):
        by_group.setdefault(ex.group, set()).add(fold)
    assert all(len(f) == 1 for f in by_group.values())
    for fold in (1, 2, 3):
        assert {ex.label for ex, f in zip(examples, folds) if f == fold} == {"bird", "car", "rain"}
    with pytest.raises(DatasetError, match=r"k must be an integer in \[2, 22\]"):
        assign_kfold(examples, 23, seed=0)
    few = [Example(f"/d/{label}_{i}.wav", label) for label in ("bird", "car", "rain") for i in range(4)]
    with pytest.raises(DatasetError, match=r"k must be an integer in \[2, 4\] .*largest class, 4\), got 5"):
        assign_kfold(few, 5, seed=0)  # 12 groups, but scikit-learn needs a class of at least k clips


def test_split_csv_round_trip(tmp_path):
    splits = {"train": [Example("/a/1.wav", "x", 1, "g1"), Example("/a/2.wav", "y, z", None, None)],
              "val": [Example("/a/3.wav", "x", 2, "g,2")], "test": []}
    path = write_split_csv(tmp_path / "split.csv", splits)
    assert path.read_text().splitlines()[0] == "split,path,label,fold,group"
    assert read_split_csv(path) == splits
    path.write_text("split,path,label\nholdout,/a.wav,x\n")
    with pytest.raises(DatasetError, match="line 2: split must be one of train, val, test, got 'holdout'"):
        read_split_csv(path)


# -- demo dataset ----------------------------------------------------------------------------------
def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.wav"))}


def _rms_and_active_seconds(samples: np.ndarray, sample_rate_hz: int) -> tuple[float, float]:
    hop = sample_rate_hz // 100
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop)  # [frames, hop]
    level_db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    active = np.nonzero(level_db > np.percentile(level_db, 10) + 6.0)[0]
    return 10 * np.log10(np.mean(samples ** 2)), (active[-1] - active[0] + 1) * hop / sample_rate_hz


def test_demo_dataset_is_deterministic_and_not_separable_by_level_or_length(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    first = make_demo_dataset(tmp_path / "one", clips_per_class=16)
    second = make_demo_dataset(tmp_path / "two", clips_per_class=16)
    assert _digest(first) == _digest(second)
    assert len(DEMO_CLASSES) >= 8
    assert sorted(p.name for p in first.iterdir() if p.is_dir()) == sorted(DEMO_CLASSES)
    written = (first / DEMO_CLASSES[0] / sorted(p.name for p in (first / DEMO_CLASSES[0]).iterdir())[0]).stat()
    assert make_demo_dataset(first, clips_per_class=16) == first  # complete: left alone, not written again
    assert (first / DEMO_CLASSES[0] / sorted(p.name for p in (first / DEMO_CLASSES[0]).iterdir())[0]).stat() \
        .st_mtime_ns == written.st_mtime_ns
    with pytest.raises(DatasetError, match="clips_per_class must be an integer >= 1, got 0"):
        make_demo_dataset(tmp_path / "none", clips_per_class=0)
    assert _digest(first) == _digest(second)

    features, labels = [], []
    for c, name in enumerate(DEMO_CLASSES):
        files = sorted((first / name).glob("*.wav"))
        assert len(files) == 16
        for path in files:
            samples, rate_hz = sf.read(path, dtype="float32")
            assert (rate_hz, len(samples)) == (16000, 16000)
            features.append(_rms_and_active_seconds(samples, rate_hz))
            labels.append(c)
    features, labels = np.array(features), np.array(labels)
    for c in range(len(DEMO_CLASSES)):
        rms, seconds = features[labels == c].T
        assert np.ptp(rms) > 8.0 and np.ptp(seconds) > 0.25       # every class spans wide ranges ...
        others = features[labels != c]
        assert others[:, 0].min() < np.median(rms) < others[:, 0].max()  # ... inside everyone else's
        assert others[:, 1].min() < np.median(seconds) < others[:, 1].max()
    chance = 1.0 / len(DEMO_CLASSES)
    accuracy = cross_val_score(LogisticRegression(max_iter=2000), features, labels, cv=4).mean()
    assert accuracy < 2.5 * chance


def test_demo_chirps_sweep_the_right_way(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", clips_per_class=6, sample_rate_hz=16000)
    hop, size = 160, 512
    for name, sign in (("rising_chirp", 1), ("falling_chirp", -1)):
        for path in sorted((root / name).glob("*.wav")):
            samples = sf.read(path, dtype="float32")[0]
            frames = np.lib.stride_tricks.sliding_window_view(samples, size)[::hop] * np.hanning(size)
            power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [frames, bins]
            loud = np.nonzero(power.sum(1) > 0.25 * power.sum(1).max())[0]
            peaks_hz = power[loud].argmax(1) * 16000 / size
            quarter = max(1, len(loud) // 4)
            change = np.median(peaks_hz[-quarter:]) / np.median(peaks_hz[:quarter])
            assert change ** sign > 1.3, (path.name, change)


def test_demo_regenerates_on_other_parameters_and_default_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUND_TF_CACHE", str(tmp_path / "cache"))
    expected = tmp_path / "cache" / "demo" / "v1-c7-sr8000-1s-seed0"
    assert default_demo_dir(clips_per_class=7, sample_rate_hz=8000) == expected
    assert default_demo_dir() != default_demo_dir(seed=1)
    # --cache-dir (data.cache_dir) holds the demo too, as it holds the decoded files
    mine = tmp_path / "mine" / "demo" / "v1-c7-sr8000-1s-seed0"
    assert default_demo_dir(clips_per_class=7, sample_rate_hz=8000, cache_dir=str(tmp_path / "mine")) == mine
    from sound_tf.config import config_from_recipe
    config = config_from_recipe("demo", {"data.cache_dir": str(tmp_path / "mine"), "data.demo_clips_per_class": 5,
                                          "audio.sample_rate_hz": 8000, "audio.clip_seconds": 0.5})
    root, _ = resolve_source(config, print)
    assert root.parent == tmp_path / "mine" / "demo" and not (tmp_path / "cache" / "demo" / root.name).exists()
    root = make_demo_dataset(tmp_path / "demo", clips_per_class=3, sample_rate_hz=8000, clip_seconds=0.5)
    make_demo_dataset(root, clips_per_class=2, sample_rate_hz=8000, clip_seconds=0.5)
    assert len(list(root.rglob("*.wav"))) == 2 * len(DEMO_CLASSES)
    assert sf.info(next(root.rglob("*.wav"))).frames == 4000



class _AtOneEnd:
    """A stand-in for the generator that draws every uniform value and integer at one end of its range (the
    low end, or the high end: the largest integer), and the noise itself from a real generator."""

    def __init__(self, high: bool):
        self.high, self.noise = high, np.random.default_rng(0)

    def uniform(self, low=0.0, high=1.0):
        return float(high if self.high else low)

    def integers(self, low, high):
        return int(high - 1 if self.high else low)

    def random(self):
        return 0.999 if self.high else 0.0

    def standard_normal(self, size):
        return self.noise.standard_normal(size)


def _at_one_end(name: str, high: bool, rate_hz: int = 16000) -> np.ndarray:
    return demo_sounds.render_demo_clip(name, sample_rate_hz=rate_hz, clip_seconds=1.0,
                                        rng=_AtOneEnd(high)).astype(np.float64)


def _level_db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(samples))))


def _tracked_hz(samples: np.ndarray, rate_hz: int, low_hz: float, high_hz: float, size: int = 1024) -> np.ndarray:
    """The loudest frequency between ``low_hz`` and ``high_hz`` of each Hann-windowed frame (hop size / 8)."""
    frames = np.lib.stride_tricks.sliding_window_view(samples, size)[::size // 8] * np.hanning(size)
    spectrum = np.abs(np.fft.rfft(frames, axis=1))  # [frames, bins]
    hz = np.fft.rfftfreq(size, 1 / rate_hz)
    band = (hz >= low_hz) & (hz <= high_hz)
    return hz[band][spectrum[:, band].argmax(axis=1)]


def _spectral_peaks_hz(samples: np.ndarray, rate_hz: int, floor_db: float = -40.0) -> list[int]:
    """Local maxima of the Hann-windowed power spectrum within ``floor_db`` of the largest, in whole Hz."""
    power = np.abs(np.fft.rfft(samples * np.hanning(samples.size))) ** 2
    hz = np.fft.rfftfreq(samples.size, 1 / rate_hz)
    level = 10 * np.log10(power / power.max() + 1e-30)
    return [round(float(hz[i])) for i in range(1, power.size - 1)
            if level[i] > floor_db and power[i] >= power[i - 1] and power[i] >= power[i + 1]]


@pytest.mark.parametrize("high", [False, True], ids=["low_ends", "high_ends"])
def test_demo_clips_reach_both_ends_of_the_documented_shared_ranges(high):
    """Every class draws its event's length, onset, level, background SNR and colour and its fades from the
    ranges the module documents. Drawn at their low ends (30 % of the clip at its start, -38 dBFS, 10 dB SNR,
    white noise, 5-ms attack, 10-ms release) and at their high ends (90 % ending the clip, -20 dBFS, 30 dB,
    a 0.9 low-pass, 30 and 80 ms), each 1-s clip measures so: the background alone before or after the event
    at the level and colour drawn, the event at its level (plus the noise under it), and the steady harmonic
    tone starting and ending where the event does, faded in and out over the drawn times."""
    rate = 16000
    fraction, rms_dbfs, snr_db, attack, release = (0.9, -20.0, 30.0, 480, 1280) if high else (0.3, -38.0, 10.0, 80, 160)
    event_samples = round(fraction * rate)
    onset = rate - event_samples if high else 0
    limited = []
    for name in DEMO_CLASSES:
        clip = _at_one_end(name, high)
        peak = np.max(np.abs(clip))
        if peak >= 0.99 - 1e-6:
            limited.append(name)
        assert peak <= 0.99 + 1e-6, name
        background = np.concatenate([clip[:onset], clip[onset + event_samples:]])
        event = clip[onset:onset + event_samples]
        if peak < 0.99 - 1e-6:  # else brought down to the limit, its SNR kept (a loud pulse train)
            assert _level_db(event) == pytest.approx(rms_dbfs + 10 * np.log10(1 + 10 ** (-snr_db / 10)), abs=0.1), name
        assert _level_db(event) - _level_db(background) == pytest.approx(snr_db, abs=0.5), name
        power = np.abs(np.fft.rfft(background)) ** 2
        tilt_db = 10 * np.log10(power[power.size // 2:].mean() / power[:power.size // 2].mean())  # upper half vs lower
        assert (tilt_db < -12.0) if high else (abs(tilt_db) < 1.0), (name, tilt_db)
    assert limited == (["pulse_train"] if high else [])  # its clicks peaked above 0.99
    tone = _at_one_end("harmonic_tone", high)[onset:onset + event_samples]
    steady = _level_db(tone[attack:-release])
    assert _level_db(tone[:1600]) > steady - 3.0 and _level_db(tone[-1600:]) > steady - 6.0  # in place, not later
    assert _level_db(tone[attack:attack + 800]) == pytest.approx(steady, abs=0.5)  # faded in by then ...
    assert _level_db(tone[-release - 800:-release]) == pytest.approx(steady, abs=0.5)  # ... and not yet out
    assert _level_db(tone[:attack // 4]) < steady - 9.0 and _level_db(tone[-release // 4:]) < steady - 9.0


def test_demo_classes_have_the_shapes_the_module_documents():
    """Each class at the high ends of its own ranges (16 kHz unless said): the harmonic tone's partials at
    1.5 kHz and its harmonics below 45 % of the rate (4 at 16 kHz, 2 at 8 kHz), its fundamental capped at a
    fifth of a 4-kHz rate (800 Hz); the rising chirp sweeping from 800 Hz up 3x (2.25x at 8 kHz, so that its
    second harmonic stays below 45 % of the rate); the vibrato 12 % deep about 1.5 kHz where the plain tone
    holds; the tremolo's 10-ms frames 20 dB and more apart; 16 clicks in the pulse train's 0.9 s (20 a second,
    10 % late each); the noise burst within its octave about 3 kHz; the two-tone alternating 1.2 and 1.92 kHz;
    the pluck at its loudest within 10 ms and 20 dB quieter at its end."""
    event = slice(1600, None)  # the high ends: the event fills the last 0.9 s
    assert _spectral_peaks_hz(_at_one_end("harmonic_tone", True)[event], 16000) == [1500, 3000, 4500, 6000]
    assert _spectral_peaks_hz(_at_one_end("harmonic_tone", True, 8000)[800:], 8000) == [1500, 3000]
    assert _spectral_peaks_hz(_at_one_end("harmonic_tone", True, 4000)[400:], 4000) == [800, 1600]
    for rate, top_hz in ((16000, 2400), (8000, 1800)):
        swept = _tracked_hz(_at_one_end("rising_chirp", True, rate)[rate // 10:], rate, 100, 0.45 * rate)
        assert swept[0] == pytest.approx(800 * 1.1, rel=0.1) and top_hz * 0.85 < swept.max() <= top_hz * 1.02, rate
    vibrato = _tracked_hz(_at_one_end("vibrato_tone", True)[event], 16000, 1000, 2000)
    plain = _tracked_hz(_at_one_end("harmonic_tone", True)[event], 16000, 1000, 2000)
    assert vibrato.min() < 1500 * 0.9 and vibrato.max() > 1500 * 1.1 and np.ptp(plain) == 0
    for name, apart_db in (("tremolo_tone", (20.0, 60.0)), ("harmonic_tone", (0.0, 0.5))):
        middle = _at_one_end(name, True)[1600 + 480:-1280]
        frames_db = 10 * np.log10(np.mean(middle[:middle.size // 160 * 160].reshape(-1, 160) ** 2, axis=1))
        assert apart_db[0] <= np.ptp(frames_db) <= apart_db[1], name
    pulses = _at_one_end("pulse_train", True)[event]
    envelope = np.sqrt(np.convolve(pulses ** 2, np.ones(80) / 80, "same"))  # 5-ms RMS
    rises = np.nonzero((envelope[1:] > 0.05 * envelope.max()) & (envelope[:-1] <= 0.05 * envelope.max()))[0]
    clicks = []
    for rise in rises:  # a click's own noise crosses the threshold again as it decays
        if not clicks or rise - clicks[-1] > 0.04 * 16000:
            clicks.append(rise)
    assert len(clicks) == 16
    burst = _at_one_end("noise_burst", True)[event]
    power = np.abs(np.fft.rfft(burst)) ** 2
    hz = np.fft.rfftfreq(burst.size, 1 / 16000)
    assert power[(hz > 3000 / 2 ** 0.625) & (hz < 3000 * 2 ** 0.625)].sum() > 0.99 * power.sum()
    alternating = _tracked_hz(_at_one_end("two_tone", True)[event], 16000, 800, 2500)
    low, high = (np.mean(np.abs(alternating - hz) < 40) for hz in (1200, 1920))
    assert low > 0.4 and high > 0.4
    pluck = _at_one_end("pluck", True)[event]
    blocks_db = [_level_db(pluck[i:i + 80]) for i in range(0, 1600, 80)]  # 5-ms blocks of the first 100 ms
    assert np.argmax(blocks_db) <= 1 and _level_db(pluck[:1600]) - _level_db(pluck[-1600:]) > 20.0


#: Each class's first two clips (``<class>_000.wav``, ``_001``) of the 1-s, 16-kHz demo: their level in dBFS, for
#: seeds 0 and 1. DEMO_VERSION names the generator: a change to what it draws or in which order moves these.
PINNED_LEVELS_DBFS = {
    0: [(-38.36, -29.86), (-24.37, -34.82), (-31.10, -24.68), (-32.86, -40.24), (-31.36, -23.19), (-33.20, -36.08),
        (-27.43, -26.76), (-28.36, -26.21), (-36.13, -26.25)],
    1: [(-37.56, -24.64), (-31.45, -28.44), (-32.69, -25.18), (-34.88, -24.83), (-24.02, -27.34), (-24.98, -36.55),
        (-27.59, -25.38), (-29.10, -30.72), (-27.71, -22.92)],
}


def test_demo_dataset_of_a_seed_is_the_one_its_version_names(tmp_path):
    """Version 1 of the demo: its nine classes in the order that seeds them (class index), each clip seeded by
    [seed, class, clip], pinned by the levels of its first clips for seeds 0 and 1; WAVs at the rate asked
    (8 kHz: an 8-kHz header, 4000 frames in 0.5 s) and clips of round(seconds x rate) samples (0.57 s at
    44.1 kHz: 25137, where the product is 25136.999...)."""
    assert demo_sounds.DEMO_VERSION == 1 and DEMO_CLASSES == (
        "rising_chirp", "falling_chirp", "harmonic_tone", "vibrato_tone", "tremolo_tone", "pulse_train",
        "noise_burst", "two_tone", "pluck")
    for seed, levels in PINNED_LEVELS_DBFS.items():
        root = make_demo_dataset(tmp_path / f"seed{seed}", clips_per_class=2, seed=seed)
        for name, pinned in zip(DEMO_CLASSES, levels):
            measured = [_level_db(sf.read(root / name / f"{name}_{index:03d}.wav", dtype="float64")[0])
                        for index in range(2)]
            assert measured == [pytest.approx(level, abs=0.006) for level in pinned], (seed, name)
    root = make_demo_dataset(tmp_path / "8k", clips_per_class=1, sample_rate_hz=8000, clip_seconds=0.5)
    for name in DEMO_CLASSES:
        info = sf.info(str(root / name / f"{name}_000.wav"))
        assert (info.samplerate, info.frames, info.subtype) == (8000, 4000, "PCM_16")
    clip = demo_sounds.render_demo_clip("pluck", sample_rate_hz=44100, clip_seconds=0.57, rng=np.random.default_rng(0))
    assert clip.shape == (25137,) and clip.dtype == np.float32
    with pytest.raises(DatasetError, match="unknown demo class 'dog'; expected one of rising_chirp, falling_chirp, "
                                           "harmonic_tone, .*, pluck$"):
        demo_sounds.render_demo_clip("dog", sample_rate_hz=8000, clip_seconds=0.1, rng=np.random.default_rng(0))


def test_make_demo_dataset_never_takes_a_half_written_folder_for_a_complete_one(tmp_path, monkeypatch):
    """The marker that says a demo folder is complete is written last and removed before a folder of other
    parameters is replaced: a generation stopped part-way (here after 5 clips) leaves none, old or new, so the
    next call with either parameters writes the folder whole. A marker that is not JSON is an interrupted
    generation's; one that names a folder of no demo class (notes/) deletes only the class folders it names, whole (a
    pluck/take_2.wav too). A root
    given as ~/... is in the home folder."""
    small = {"sample_rate_hz": 8000, "clip_seconds": 0.05}
    expected = _digest(make_demo_dataset(tmp_path / "fresh", clips_per_class=2, **small))
    root = make_demo_dataset(tmp_path / "demo", clips_per_class=2, **small)
    marker = root / demo_sounds.MARKER_NAME
    written, write_wav = [], demo_sounds.write_wav

    def stopping(*args, **kwargs):
        if len(written) == 5:
            raise KeyboardInterrupt
        written.append(args[0])
        return write_wav(*args, **kwargs)

    monkeypatch.setattr(demo_sounds, "write_wav", stopping)
    with pytest.raises(KeyboardInterrupt):
        make_demo_dataset(root, clips_per_class=3, **small)
    monkeypatch.setattr(demo_sounds, "write_wav", write_wav)
    assert len(written) == 5 and not marker.exists()
    assert make_demo_dataset(root, clips_per_class=2, **small) == root and _digest(root) == expected

    (root / "notes").mkdir()
    (root / "notes" / "mine.txt").write_text("mine")
    shutil.copy(root / "pluck" / "pluck_000.wav", root / "pluck" / "take_2.wav")  # of an older generator, say
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "seed": 9, "classes": ["notes", "pluck"]}))
    make_demo_dataset(root, clips_per_class=2, **small)
    assert (root / "notes" / "mine.txt").read_text() == "mine" and _digest(root) == expected
    marker.write_text("{not json")
    make_demo_dataset(root, clips_per_class=2, **small)
    assert json.loads(marker.read_text())["clips_per_class"] == 2 and _digest(root) == expected

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert make_demo_dataset("~/demo", clips_per_class=1, **small) == tmp_path / "home" / "demo"
    assert len(list((tmp_path / "home" / "demo").rglob("*.wav"))) == len(DEMO_CLASSES)
    assert not (tmp_path / "~").exists()

# -- prepare_dataset -------------------------------------------------------------------------------
def config_for(path: Path | None, tmp_path: Path, **overrides) -> Config:
    values = {"data.path": None if path is None else str(path), "data.cache_dir": str(tmp_path / "cache"),
              "audio.sample_rate_hz": RATE_HZ, **overrides}
    return apply_overrides(Config(), values)


def test_prepare_dataset_skips_a_corrupt_file_and_resumes(tmp_path):
    root = make_folder_tree(tmp_path / "data", per_class=5)
    corrupt = root / "dog" / "broken.wav"
    corrupt.write_bytes(b"RIFF" + bytes(range(200)))
    lines: list[str] = []

    prepared = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lines.append)

    assert prepared.labels == ("cat", "dog", "owl")
    assert prepared.skipped == [(str(corrupt.resolve()), prepared.skipped[0][1])]
    assert "not a readable audio file" in prepared.skipped[0][1]
    with (tmp_path / "run" / "skipped.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"path": str(corrupt.resolve()), "reason": prepared.skipped[0][1]}]
    items = [item for name in ("train", "val", "test") for item in prepared.splits[name]]
    assert len(items) == 15 and str(corrupt.resolve()) not in {i.source for i in items}
    for item in items:
        assert prepared.labels[item.label_index] == item.label
        assert sf.info(item.cached).samplerate == RATE_HZ and sf.info(item.cached).subtype == "PCM_16"
    written = read_split_csv(tmp_path / "run" / "split.csv")
    assert {n: [e.path for e in v] for n, v in written.items()} == \
        {n: [i.source for i in v] for n, v in prepared.splits.items()}
    assert (prepared.stats["decoded"], prepared.stats["skipped"]) == (15, 1)
    assert lines[-1].startswith("data: 16 files, 3 classes, decoded 15 / reused 0, skipped 1")

    resumed = prepare_dataset(config_for(root, tmp_path, **{"train.seed": 99}), tmp_path / "run", log=lines.append)
    assert resumed.splits == prepared.splits and resumed.skipped == prepared.skipped
    assert (resumed.stats["decoded"], resumed.stats["reused"]) == (0, 15)
    # the same file count as the first run's (split.csv lists only the 15 readable files)
    assert lines[-1].startswith("data: 16 files, 3 classes, decoded 0 / reused 15, skipped 1")
    assert resumed.stats["files"] == prepared.stats["files"] == 16
    assert len(list(csv.DictReader((tmp_path / "run" / "skipped.csv").open()))) == 1


def test_a_drawn_split_far_from_its_fractions_is_said(tmp_path):
    """Four speakers in a group column: each class deals one speaker to validation and one to test, a quarter
    of the clips each against fractions of 0.15, and the log gave only the counts."""
    from sound_tf.datasets import split_shares_line

    rows = ["path,label,group"]
    for label, freq in (("yes", 300.0), ("no", 500.0)):
        for speaker in range(4):
            for take in range(3):
                name = f"{label}_{speaker}_{take}.wav"
                write_tone(tmp_path / "data" / name, freq + 10 * take)
                rows.append(f"{name},{label},spk{speaker}")
    (tmp_path / "data" / "labels.csv").write_text("\n".join(rows) + "\n")
    lines: list[str] = []
    prepared = prepare_dataset(config_for(tmp_path / "data" / "labels.csv", tmp_path), tmp_path / "run",
                               log=lines.append)
    counts = {name: len(prepared.splits[name]) for name in SPLITS}
    assert counts == {"train": 12, "val": 6, "test": 6}
    assert lines[-1] == ("data: note: validation holds 25% of the clips and test 25%, against data.val_fraction "
                         "0.15 and data.test_fraction 0.15: each class's source groups (the group column) go whole "
                         "into one split, at least one into each held-out split, so a class of few groups cannot "
                         "match the fractions; training has 50%")
    # a split close to its fractions says nothing; one far from either does, and a file is its own group
    assert split_shares_line({"train": 70, "val": 15, "test": 15}, 0.15, 0.15, grouped=True) is None
    assert split_shares_line({"train": 72, "val": 14, "test": 14}, 0.2, 0.1, grouped=False) is None  # 0.7x, 1.4x
    few = split_shares_line({"train": 6, "val": 1, "test": 3}, 0.15, 0.15, grouped=False)
    assert few is not None and "validation holds 10% of the clips and test 30%" in few and "few files cannot" in few
    assert split_shares_line({"train": 0, "val": 0, "test": 0}, 0.15, 0.15, grouped=False) is None
    # 1.5 and 2/3 times a fraction are not far (the README: under 2/3 or over 1.5 times); 27% against 0.18 was, as
    # floating point made 0.27 / 0.18 1.5000000000000002; just beyond either bound is
    assert split_shares_line({"train": 46, "val": 27, "test": 27}, 0.18, 0.18, grouped=False) is None
    assert split_shares_line({"train": 76, "val": 12, "test": 12}, 0.18, 0.18, grouped=False) is None
    assert split_shares_line({"train": 44, "val": 28, "test": 28}, 0.18, 0.18, grouped=False) is not None
    assert split_shares_line({"train": 78, "val": 11, "test": 11}, 0.18, 0.18, grouped=False) is not None
    # a split read from a file (resumed) is not drawn: no note
    lines.clear()
    prepare_dataset(config_for(tmp_path / "data" / "labels.csv", tmp_path), tmp_path / "run", log=lines.append)
    assert not any("data: note: validation holds" in line for line in lines)


def test_prepare_dataset_header_only_skipped_csv_and_split_file(tmp_path):
    root = make_folder_tree(tmp_path / "data")
    first = prepare_dataset(config_for(root, tmp_path), tmp_path / "run1", log=lambda _: None)
    assert (tmp_path / "run1" / "skipped.csv").read_text().strip() == "path,reason"
    again = prepare_dataset(config_for(root, tmp_path, **{"data.split_file": str(tmp_path / "run1" / "split.csv"),
                                                          "train.seed": 7}),
                            tmp_path / "run2", log=lambda _: None)
    assert again.splits == first.splits and again.stats["decoded"] == 0
    # The split file lists the files: without --data nothing is generated (the demo was, and went unused) ...
    messages: list[str] = []
    third = prepare_dataset(config_for(None, tmp_path, **{"data.split_file": str(tmp_path / "run1" / "split.csv")}),
                            tmp_path / "run3", log=messages.append)
    assert third.splits == first.splits and not any("demo" in m for m in messages)
    assert not (tmp_path / "cache" / "demo").exists() and third.stats["format"] == "split file"
    # ... it cannot be combined with folds, which it would overrule ...
    with pytest.raises(ConfigError, match=r"data.split_file fixes every split, so data.test_fold=2 / data.val_fold="
                                          r"None would not be used"):
        config_for(root, tmp_path, **{"data.split_file": "split.csv", "data.test_fold": 2})
    # ... and one file in two splits (training and test) is refused
    rows = (tmp_path / "run1" / "split.csv").read_text().splitlines()
    test_row = next(i for i, row in enumerate(rows) if row.startswith("test,"))
    leaky = tmp_path / "leaky.csv"
    leaky.write_text("\n".join(rows + ["train," + rows[test_row].split(",", 1)[1]]) + "\n")
    with pytest.raises(DatasetError, match=rf"leaky.csv, line {len(rows) + 1}: .* is the file already listed on line "
                                           rf"{test_row + 1}; list each file once"):
        prepare_dataset(config_for(root, tmp_path, **{"data.split_file": str(leaky)}), tmp_path / "run4",
                        log=lambda _: None)


def test_a_split_whose_files_are_all_unreadable_is_named(tmp_path):
    """It used to read "split(s) test ended up empty ... needs 3 folds" for a dataset of 3 folds."""
    rows = ["path,label,fold"]
    for fold in (1, 2, 3):
        for label in ("a", "b"):
            path = tmp_path / "clips" / f"{label}{fold}.wav"
            if fold == 3:
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(b"garbage" * 10)
            else:
                write_tone(path)
            rows.append(f"{path.name},{label},{fold}")
    (tmp_path / "clips" / "clips.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"none of the 2 files of the test split \(fold 3\) could be read "
                                           r"\(first: .*a3.wav: not a readable audio file"):
        prepare_dataset(config_for(tmp_path / "clips" / "clips.csv", tmp_path), tmp_path / "run", log=lambda _: None)
    (tmp_path / "clips" / "clips.csv").write_text("\n".join(rows[:-1]) + "\n")  # fold 3 of one file: said so
    with pytest.raises(DatasetError, match=r"the 1 file of the test split \(fold 3\) could not be read "
                                           r"\(first: .*a3.wav: not a readable audio file"):
        prepare_dataset(config_for(tmp_path / "clips" / "clips.csv", tmp_path), tmp_path / "run", log=lambda _: None)


def test_groups_with_clips_in_more_than_one_fold_are_counted_in_the_singular_and_the_plural(caplog):
    """It said "1 group(s) have clips in more than one fold"."""
    spread = [Example(path=f"/x/{i}.wav", label="ab"[i % 2], fold=1 + i % 3, group=f"g{i // 4}") for i in range(12)]
    one = [dataclasses.replace(ex, group="s" if i < 2 else f"g{i}") for i, ex in enumerate(spread)]
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        split_examples(spread, test_fold=1)
        split_examples(one, test_fold=1)
    assert [record.getMessage().split(": held-out")[0] for record in caplog.records] == [
        "3 groups have clips in more than one fold (e.g. g0)", "1 group has clips in more than one fold (e.g. s)"]


def test_split_fractions_that_folds_make_unused_are_pointed_out(tmp_path, caplog):
    us8k = make_us8k(tmp_path / "us8k", folds=3)
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        data = prepare_dataset(config_for(us8k, tmp_path, **{"data.test_fraction": 0.3}), tmp_path / "run",
                               log=lambda _: None)
    assert {item.fold for item in data.splits["test"]} == {3}  # a whole fold, as documented
    assert "data.test_fraction=0.3 not used: the data has folds [1, 2, 3]" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        prepare_dataset(config_for(us8k, tmp_path), tmp_path / "run2", log=lambda _: None)
    assert "not used" not in caplog.text
    # two folds: the test set is a whole fold, but validation is still carved by val_fraction
    two = tmp_path / "two" / "list.csv"
    rows = [(f"{label}{fold}_{i}.wav", label, fold) for fold in (1, 2) for label in ("cat", "dog") for i in range(4)]
    for name, _, _ in rows:
        write_tone(two.parent / name)
    two.write_text("path,label,fold\n" + "".join(f"{n},{label},{fold}\n" for n, label, fold in rows))
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        prepare_dataset(config_for(two, tmp_path, **{"data.test_fraction": 0.3, "data.val_fraction": 0.3}),
                        tmp_path / "run3", log=lambda _: None)
    assert "data.test_fraction=0.3 not used: the data has folds [1, 2]" in caplog.text
    assert "val_fraction" not in caplog.text


def test_val_from_training_in_a_run_uses_val_fraction_and_says_so(tmp_path, caplog):
    """train's split with data.val_from 'training': validation is drawn from the training folds (split.csv holds it),
    the data line names it, and data.val_fraction, used now, is no longer pointed out as unused (test_fraction is)."""
    us8k = make_us8k(tmp_path / "us8k", folds=4)
    lines: list[str] = []
    config = config_for(us8k, tmp_path, **{"data.val_from": "training", "data.val_fraction": 0.3,
                                           "data.test_fraction": 0.3, "train.seed": 1})
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        data = prepare_dataset(config, tmp_path / "run", log=lines.append)
    assert "data.test_fraction=0.3 not used: the data has folds [1, 2, 3, 4]" in caplog.text
    assert "val_fraction=0.3 not used" not in caplog.text
    # 2 classes x 3 training folds of one 2-slice fsID: 0.3 of 6 slices (1.8) is one fsID a class
    assert ("train 8, val 4, test 4 (urbansound8k, split from the data's folds, validation a data.val_fraction 0.3 "
            "of the training folds (data.val_from training))") in "\n".join(lines)
    assert {item.fold for item in data.splits["test"]} == {4}
    assert Counter(item.label for item in data.splits["val"]) == {"siren": 2, "drilling": 2}
    saved = read_split_csv(tmp_path / "run" / "split.csv")  # seed 1 draws drilling's fsID of fold 1, siren's of 3
    assert sorted((ex.label, ex.fold) for ex in saved["val"]) == [("drilling", 1)] * 2 + [("siren", 3)] * 2
    assert {ex.fold for ex in saved["train"]} == {1, 2, 3}  # by default fold 3 validated and 1-2 trained
    assert {ex.group for ex in saved["val"]}.isdisjoint({ex.group for ex in saved["train"]})


def test_val_from_training_names_a_val_fraction_that_trains_on_fewer_clips_than_a_fold(tmp_path):
    """data.val_from 'training' is there to train on more clips; a data.val_fraction of at least one training fold's
    share (1/9 = 0.111 of nine) validates on more clips than a fold and trains on fewer, and a line says so with both
    splits' clips and a smaller fraction's. 10 folds of 2 classes x 3 groups x 2 clips, test fold 10: fold 9
    validates 12 of the 108; 0.15 of a class's 27 groups (4.05) draws 4 (val 16, train 92), 0.1 (2.7) and 0.12
    (3.24) draw 3 (val 12, as the fold): at 0.12, above 0.111 by the ratio, the clips say nothing is lost. Without
    groups, 0.1 of a class's 54 clips (5.4) draws 5 (val 10), and another line says the clips are drawn alone."""
    from sound_tf.datasets import val_from_training_lines

    examples = [Example(path=f"/x/{label}{fold}_{group}_{i}.wav", label=label, fold=fold,
                        group=f"{label}{fold}-{group}")
                for fold in range(1, 11) for label in ("cat", "dog") for group in range(3) for i in range(2)]
    drawn = apply_overrides(Config(), {"data.val_from": "training"})
    share = ("data.val_fraction 0.15 of 9 training folds validates on more clips than one fold (0.111) would: models "
             "train on fewer clips than with --val-from fold (train 92, val 16, against train 96, val 12); try --set "
             "data.val_fraction=0.1 (train {})")
    assert val_from_training_lines(examples, drawn, fmt="csv") == [share.format("96, val 12")]
    splits = split_examples(examples, test_fold=10, val_from="training")
    assert (len(splits["train"]), len(splits["val"])) == (92, 16)  # the line's numbers are the run's split
    for fraction in (0.12, 0.1):
        assert val_from_training_lines(examples, apply_overrides(drawn, {"data.val_fraction": fraction})) == []
    assert val_from_training_lines(examples, Config()) == []  # val_from fold
    # test fold 1: folds 2-10 train, the same share; three folds (two training folds: 1/2) never reach it
    assert len(val_from_training_lines(examples, drawn, test_fold=1)) == 1
    three = [ex for ex in examples if ex.fold <= 3]
    assert val_from_training_lines(three, apply_overrides(drawn, {"data.val_fraction": 0.45})) == []
    alone = [dataclasses.replace(ex, group=None) for ex in examples]
    told = ("data.val_from training draws validation from the training folds group by group, and {}: such clips are "
            "drawn one by one, so one source recording's or speaker's clips can be in training and validation alike "
            "and validation may read high (a group column, as UrbanSound8K's fsID, keeps each on one side)")
    assert val_from_training_lines(alone, drawn, fmt="csv") == [
        share.format("98, val 10"), told.format("the manifest has no group column")]
    some = [dataclasses.replace(ex, group=None) if ex.fold == 2 and ex.label == "cat" else ex for ex in examples]
    assert val_from_training_lines(some, apply_overrides(drawn, {"data.val_fraction": 0.1}), fmt="csv") == [
        told.format("6 of their 108 clips have no group")]
    assert val_from_training_lines(alone, apply_overrides(drawn, {"data.val_fraction": 0.1}), test_fold=2,
                                   fmt="urbansound8k") == [told.format("no clip of them has a group")]


def test_val_from_training_counts_the_clips_of_the_other_class_its_splits_take():
    """With data.other_label, the line counted every file of the other labels in the training folds, before each
    split takes its share of them: the run trains and validates on fewer. The folds of the test above, each with 3
    groups x 4 clips of '_other_' (108 in the nine training folds): 0.15 of its 27 groups draws 4 (16 clips) into
    validation as of a kept class; then each split takes data.other_share 0.1 of its clips, its kept clips / 0.9,
    rounded half up: train 92 + 10 (10.2), val 16 + 2 (1.78); with fold 9 validating, train 96 + 11 (10.7), val
    12 + 1 (1.33). The line read 'train 184, val 32, against train 192, val 24'."""
    from sound_tf.crossval import fold_splits
    from sound_tf.datasets import draw_other, val_from_training_lines

    kept = [Example(path=f"/x/{label}{fold}_{group}_{i}.wav", label=label, fold=fold, group=f"{label}{fold}-{group}")
            for fold in range(1, 11) for label in ("cat", "dog") for group in range(3) for i in range(2)]
    other = [Example(path=f"/x/o{fold}_{group}_{i}.wav", label="_other_", fold=fold, group=f"o{fold}-{group}")
             for fold in range(1, 11) for group in range(3) for i in range(4)]
    config = apply_overrides(Config(), {"data.val_from": "training", "data.keep_labels": ["cat", "dog"],
                                        "data.other_label": "_other_"})
    assert val_from_training_lines(kept + other, config, fmt="csv") == [
        "data.val_fraction 0.15 of 9 training folds validates on more clips than one fold (0.111) would: models train "
        "on fewer clips than with --val-from fold (train 102, val 18, against train 107, val 13); try --set "
        "data.val_fraction=0.1 (train 107, val 13)"]
    run = draw_other(fold_splits(kept + other, 10, config), config.data, config.train.seed)  # as crossval draws it
    assert (len(run["train"]), len(run["val"])) == (102, 18)
    assert Counter(ex.label for ex in run["val"])["_other_"] == 2


def test_a_run_of_a_manifest_without_groups_is_told_what_val_from_training_costs(tmp_path):
    """train's data lines with data.val_from 'training' on a CSV with a fold column and no group column: 4 folds of
    2 classes x 3 clips, test fold 4; 0.4 of a class's 9 training clips (3.6) draws 4 (val 8, train 10), where fold
    3 validates 6 (train 12); 0.3, the largest multiple of 0.05 below one of three folds' share, draws 3 (2.7)."""
    rows = [(f"{label}{fold}_{i}.wav", label, fold) for fold in (1, 2, 3, 4) for label in ("cat", "dog")
            for i in range(3)]
    manifest = tmp_path / "data" / "list.csv"
    for name, label, _ in rows:
        write_tone(manifest.parent / name, 440.0 if label == "cat" else 880.0)
    manifest.write_text("path,label,fold\n" + "".join(f"{n},{label},{fold}\n" for n, label, fold in rows))
    lines: list[str] = []
    data = prepare_dataset(config_for(manifest, tmp_path, **{"data.val_from": "training", "data.val_fraction": 0.4}),
                           tmp_path / "run", log=lines.append)
    assert ("data: data.val_fraction 0.4 of 3 training folds validates on more clips than one fold (0.333) would: "
            "models train on fewer clips than with --val-from fold (train 10, val 8, against train 12, val 6); try "
            "--set data.val_fraction=0.3 (train 12, val 6)") in lines
    assert ("data: data.val_from training draws validation from the training folds group by group, and the manifest "
            "has no group column: such clips") in "\n".join(lines)
    assert (len(data.splits["train"]), len(data.splits["val"])) == (10, 8)
    lines.clear()
    prepare_dataset(config_for(manifest, tmp_path, **{"data.val_fraction": 0.4}), tmp_path / "fold", log=lines.append)
    assert not any("val_from" in line or "val_fraction 0.4" in line for line in lines)  # val_from fold: nothing


def test_split_fractions_are_pointed_out_as_unused_when_no_silence_clip_is_cut(caplog):
    """A run's silence class cuts its validation and test clips from the last data.val_fraction + data.test_fraction
    of each noise recording, so with folds the fractions are used and no warning is given; with data.silence_share 0
    no clip is cut (DataConfig.cuts_silence) and the whole noise recording is training's, yet data.silence_label
    alone kept the warning back: a test_fraction the folds make unused was not pointed out."""
    from sound_tf.datasets import _split

    examples = [Example(path=f"/x/{label}{fold}_{i}.wav", label=label, fold=fold)
                for fold in (1, 2, 3) for label in ("cat", "dog") for i in range(2)]
    said = "data.test_fraction=0.3 not used: the data has folds [1, 2, 3]"
    for share, warned in ((0.1, False), (0.0, True)):
        config = apply_overrides(Config(), {"data.test_fraction": 0.3, "data.silence_label": "_silence_",
                                            "data.silence_share": share})
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
            splits = _split(examples, config)
        assert {ex.fold for ex in splits["test"]} == {3}
        assert (said in caplog.text) is warned, (share, caplog.text)


def test_an_unreadable_file_never_takes_a_readable_ones_place_in_a_drawn_split(tmp_path):
    """The split used to be drawn before decoding: with some seeds a class's only training file was the
    corrupt one, and the run stopped ("no readable training example") with readable files in val/test."""
    root = make_folder_tree(tmp_path / "data", classes=("dog", "owl"), per_class=6)
    write_tone(root / "cat" / "a.wav")
    write_tone(root / "cat" / "b.wav")
    (root / "cat" / "c.wav").write_bytes(b"garbage" * 10)
    for seed in range(12):
        config = apply_overrides(config_for(root, tmp_path), {"train.seed": seed})
        data = prepare_dataset(config, tmp_path / f"run{seed}", log=lambda _: None)
        assert Counter(item.label for item in data.splits["train"])["cat"] >= 1, seed
        assert [Path(p).name for p, _ in data.skipped] == ["c.wav"]
        assert sum(len(items) for items in data.splits.values()) == 14  # every readable file has a split


def test_prepare_dataset_all_corrupt_raises(tmp_path):
    root = tmp_path / "data"
    for label in ("a", "b"):
        for i in range(3):
            (root / label).mkdir(parents=True, exist_ok=True)
            (root / label / f"{i}.wav").write_bytes(b"garbage" * 10)
    with pytest.raises(DatasetError, match=r"none of the 6 audio files could be read") as info:
        prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lambda _: None)
    assert str(root) in str(info.value) and "not a readable audio file" in str(info.value)

    # a manifest whose paths were written from another folder: the message says where they are read from
    (tmp_path / "lists").mkdir()
    manifest = tmp_path / "lists" / "m.csv"
    manifest.write_text("path,label\n" + "".join(f"data/{label}/{i}.wav,{label}\n" for label in "ab" for i in range(3)))
    with pytest.raises(DatasetError, match=rf"first reasons: {tmp_path}/lists/data/a/0.wav: file not found \(listed on "
                                           rf"line 2 of {manifest}\); .*; "
                                           rf"relative paths in m.csv are read from its folder, {tmp_path}/lists$"):
        prepare_dataset(config_for(manifest, tmp_path), tmp_path / "run2", log=lambda _: None)
    # some found (and corrupt), some not: the paths are right, so no word about where they are read from
    manifest.write_text("path,label\n"
                        + "".join(f"../data/{label}/{i}.wav,{label}\n" for label in "ab" for i in range(3))
                        + "../data/c/0.wav,c\n")
    with pytest.raises(DatasetError, match=r"none of the 7 audio files could be read") as info:
        prepare_dataset(config_for(manifest, tmp_path), tmp_path / "run3", log=lambda _: None)
    assert "relative paths" not in str(info.value)


def test_prepare_dataset_strict_raises_and_missing_class_training_data(tmp_path):
    root = make_folder_tree(tmp_path / "data")
    (root / "cat" / "zz_broken.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        prepare_dataset(config_for(root, tmp_path, **{"data.strict": True}), tmp_path / "run", log=lambda _: None)

    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,fold\n" + "".join(
        f"data/cat/cat_{i}.wav,cat,{i + 1}\n" for i in range(3)) + "data/dog/missing.wav,dog,1\n")
    with pytest.raises(DatasetError, match=r"class dog \(1 file: 1 unreadable\) has no readable training example; add "
                                           r"files or remove the class$"):
        prepare_dataset(config_for(manifest, tmp_path), tmp_path / "run2", log=lambda _: None)


def test_a_class_whose_files_are_all_held_out_is_told_where_they_are(tmp_path):
    """A label typo in a few rows of one machine ('bearing-fault' for bearing_fault) is a class of one group, which
    the split puts in validation or test whole: the run stopped with 'class bearing-fault has no readable training
    example', though every file was readable, and no word of where they were. It now counts them by split and
    group, and says 'readable' only when some could not be read."""
    for i in range(42):
        write_tone(tmp_path / "audio" / f"{i}.wav", 300.0 + 10 * i)
    fault = ["bearing-fault" if i < 7 else "bearing_fault" for i in range(42)]  # machine m0's three rows misspelt
    rows = [f"audio/{i}.wav,{'normal' if i % 7 < 4 else fault[i]},m{i // 7}" for i in range(42)]
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,group\n" + "\n".join(rows) + "\n")
    held = None
    for seed in range(20):  # a seed that holds the machine out, in val or in test
        config = apply_overrides(config_for(manifest, tmp_path), {"train.seed": seed})
        try:
            prepare_dataset(config, tmp_path / f"run{seed}", log=lambda _: None)
        except DatasetError as exc:
            held = str(exc)
            break
    assert held is not None
    assert re.search(r"m.csv: class bearing-fault \(3 files: (val|test) 3; 1 group\) has no training example; add "
                     r"files or remove the class$", held), held


def test_prepare_dataset_refuses_a_test_fold_of_data_without_folds_before_decoding(tmp_path):
    """--test-fold on a folder tree (no folds) is refused by its flag before a file is decoded: on a large
    dataset the old message came after the whole decode and named only split_examples' ``test_fold``."""
    root = make_folder_tree(tmp_path / "data")
    for given, named in (({"data.test_fold": 2}, "data.test_fold=2 (--test-fold)"),
                         ({"data.val_fold": 1}, "data.val_fold=1 (--val-fold)"),
                         ({"data.test_fold": 2, "data.val_fold": 1},
                          "data.test_fold=2 (--test-fold) and data.val_fold=1 (--val-fold)")):
        config = config_for(root, tmp_path, **given)
        with pytest.raises(DatasetError, match=re.escape(f"{root}: {named} given, but this folder data has no folds")):
            prepare_dataset(config, tmp_path / "run", log=lambda _: None)
        assert not Path(config.data.cache_dir).exists()  # nothing was decoded
        assert not (tmp_path / "run" / "split.csv").exists()


def test_prepare_dataset_reports_an_empty_split_and_keeps_no_split_of_it(tmp_path):
    """A failed preparation writes no split.csv: the next run into the folder, with the files fixed or
    another --data, splits its own data (it used to reuse the failed split and fail, or train on it)."""
    root = make_folder_tree(tmp_path / "data", per_class=2)
    with pytest.raises(DatasetError, match=r"the val split ended up empty \(train \d+, val 0, test \d+; 0 files "
                                           r"skipped\)"):
        prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lambda _: None)
    assert not (tmp_path / "run" / "split.csv").exists() and not (tmp_path / "run" / "skipped.csv").exists()
    make_folder_tree(root, per_class=6)
    prepared = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lambda _: None)
    assert prepared.stats["split_source"] == "computed"
    assert sum(len(items) for items in prepared.splits.values()) == 18


def test_prepare_dataset_builds_the_demo_when_no_path_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUND_TF_CACHE", str(tmp_path / "home_cache"))
    config = config_for(None, tmp_path, **{"data.demo_clips_per_class": 5, "audio.clip_seconds": 0.5})
    prepared = prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    assert prepared.labels == tuple(sorted(DEMO_CLASSES))
    assert Path(prepared.stats["root"]) == default_demo_dir(clips_per_class=5, sample_rate_hz=RATE_HZ,
                                                            clip_seconds=0.5, cache_dir=config.data.cache_dir)
    assert config.data.cache_dir and not (tmp_path / "home_cache" / "demo").exists()  # data.cache_dir holds it
    counts = {name: Counter(i.label for i in prepared.splits[name]) for name in prepared.splits}
    assert all(counts["test"][label] == 1 and counts["val"][label] == 1 and counts["train"][label] == 3
               for label in DEMO_CLASSES)
    assert sf.info(prepared.splits["train"][0].cached).frames == RATE_HZ // 2


def test_unequal_fractions_go_to_the_split_they_name():
    """test_fraction sizes the test split and val_fraction the validation split (never the other way)."""
    examples = [Example(f"/x/{label}{i}.wav", label) for label in ("a", "b") for i in range(40)]
    splits = split_examples(examples, val_fraction=0.1, test_fraction=0.4, seed=0)
    counts = {name: Counter(ex.label for ex in splits[name]) for name in splits}
    assert counts["test"] == {"a": 16, "b": 16}   # 0.4 * 40 per class
    assert counts["val"] == {"a": 4, "b": 4}      # 0.1 * 40 per class
    assert counts["train"] == {"a": 20, "b": 20}


def test_prepare_dataset_draws_the_split_from_train_seed_and_the_fractions(tmp_path):
    """train.seed and data.val_fraction / data.test_fraction reach the split the training command uses."""
    root = make_folder_tree(tmp_path / "data", per_class=20)
    examples = load_examples(root)
    drawn = {}
    for seed in (0, 1):
        config = config_for(root, tmp_path, **{"train.seed": seed, "data.test_fraction": 0.3,
                                                "data.val_fraction": 0.1})
        prepared = prepare_dataset(config, tmp_path / f"run{seed}", log=lambda _: None)
        drawn[seed] = {name: [item.source for item in items] for name, items in prepared.splits.items()}
        expected = split_examples(examples, seed=seed, test_fraction=0.3, val_fraction=0.1)
        assert drawn[seed] == {name: [ex.path for ex in exs] for name, exs in expected.items()}
        assert Counter(i.label for i in prepared.splits["test"]) == {"cat": 6, "dog": 6, "owl": 6}  # 0.3 * 20
        assert Counter(i.label for i in prepared.splits["val"]) == {"cat": 2, "dog": 2, "owl": 2}   # 0.1 * 20
    assert drawn[0]["test"] != drawn[1]["test"]  # another seed, another draw


def test_prepare_dataset_test_fold_is_the_test_set_and_the_fold_before_it_validation(tmp_path):
    """README: `--test-fold K` is the test set, the fold before it (cyclically) validation."""
    us8k = make_us8k(tmp_path / "us8k", folds=4)
    cases = [({"data.test_fold": 1}, 1, 4), ({"data.test_fold": 3}, 3, 2),
             ({"data.test_fold": 2, "data.val_fold": 4}, 2, 4)]
    for n, (overrides, test_fold, val_fold) in enumerate(cases):
        data = prepare_dataset(config_for(us8k, tmp_path, **overrides), tmp_path / f"run{n}", log=lambda _: None)
        assert {i.fold for i in data.splits["test"]} == {test_fold}, overrides
        assert {i.fold for i in data.splits["val"]} == {val_fold}, overrides
        assert {i.fold for i in data.splits["train"]} == {1, 2, 3, 4} - {test_fold, val_fold}, overrides


def test_labels_are_sorted_whatever_order_the_manifest_lists_them(tmp_path):
    """PreparedData.labels is sorted (documented): a manifest listing zebra before ant must not reorder the
    class indices, which the exported label files and evaluation rely on."""
    lines = ["path,label"]
    for label in ("zebra", "mole", "ant"):
        for i in range(4):
            write_tone(tmp_path / "clips" / f"{label}{i}.wav", 300.0 + 50 * i)
            lines.append(f"{label}{i}.wav,{label}")
    (tmp_path / "clips" / "m.csv").write_text("\n".join(lines) + "\n")
    data = prepare_dataset(config_for(tmp_path / "clips" / "m.csv", tmp_path), tmp_path / "run", log=lambda _: None)
    assert data.labels == ("ant", "mole", "zebra")
    for items in data.splits.values():
        for item in items:
            assert data.labels[item.label_index] == item.label


def test_fractions_count_clips_not_recordings():
    """20 recordings of 4 clips per class: 15% of 80 clips is 12 clips, i.e. 3 recordings (not 15% of 20)."""
    examples = [Example(f"/d/{label}/{r}_{k}.wav", label, group=f"{label}{r}")
                for label in ("a", "b") for r in range(20) for k in range(4)]
    splits = split_examples(examples, seed=1)
    for name, clips in (("test", 12), ("val", 12), ("train", 56)):
        assert Counter(ex.label for ex in splits[name]) == {"a": clips, "b": clips}, name


@pytest.mark.parametrize("seed", range(8))
def test_a_class_of_three_recordings_reaches_every_split_whatever_their_sizes(seed):
    """Documented: n >= 3 groups reach train, val and test. Large fractions must not let the test split take
    two of the three recordings (whichever order the shuffle gives)."""
    examples = [Example(f"/d/{g}_{k}.wav", "a", group=g) for g, size in (("g1", 1), ("g2", 1), ("g3", 4))
                for k in range(size)]
    splits = split_examples(examples, val_fraction=0.45, test_fraction=0.45, seed=seed)
    assert all(len({ex.group for ex in splits[name]}) == 1 for name in ("train", "val", "test"))


def test_a_big_recording_goes_to_training_not_to_a_held_out_split():
    """A class of one 10-clip recording and five 2-clip ones: the held-out splits took whichever recording
    the shuffle put first, so in 7 of 20 seeds validation or test held half the class and training 8 of 20."""
    examples = [Example(f"/d/{g}_{k}.wav", "a", group=g) for g, size in (("big", 10), *((f"s{i}", 2) for i in range(5)))
                for k in range(size)]
    examples += [Example(f"/d/b{i}.wav", "b") for i in range(20)]
    for seed in range(20):
        splits = split_examples(examples, seed=seed)
        counts = {name: Counter(ex.label for ex in splits[name])["a"] for name in splits}
        assert counts == {"train": 16, "val": 2, "test": 2}, (seed, counts)  # 15% of 20 is 3: one 2-clip recording
        assert {ex.group for ex in splits["train"]} >= {"big"}


def test_a_held_out_split_takes_the_smallest_recording_when_none_fits_its_share():
    """Recordings of 8, 4, 4 and 4 clips: 15% of 20 is 3, which none fits, so test and validation each take
    a 4-clip one (the smallest), never the 8-clip one, whichever order the shuffle gives."""
    examples = [Example(f"/d/{g}_{k}.wav", "a", group=g) for g, size in (("big", 8), ("m1", 4), ("m2", 4), ("m3", 4))
                for k in range(size)]
    for seed in range(20):
        splits = split_examples(examples, seed=seed)
        assert {name: len(splits[name]) for name in splits} == {"train": 12, "val": 4, "test": 4}, seed
        assert "big" in {ex.group for ex in splits["train"]}


def test_a_recording_exactly_the_size_of_a_splits_share_fits_it():
    """Recordings of 3, 2, 5, 5 and 5 clips: 15% of 20 is 3 clips, which the 3-clip recording fills exactly.
    The test split takes it whenever the shuffle reaches it before the 2-clip one (and then holds 3 clips)."""
    examples = [Example(f"/d/{g}_{k}.wav", "a", group=g)
                for g, size in (("three", 3), ("two", 2), ("f1", 5), ("f2", 5), ("f3", 5)) for k in range(size)]
    held = [len(split_examples(examples, seed=seed)["test"]) for seed in range(20)]
    assert set(held) == {2, 3}, held  # 3 (the exact share) with some shuffles, never more


@pytest.mark.parametrize("seed", range(6))
def test_a_recording_is_stratified_under_its_majority_label(seed):
    """Three recordings of mostly 'bird' (3 bird clips and 1 'ant' clip each) and three 1-clip 'ant'
    recordings: the bird recordings are stratified as bird, so bird reaches train, val and test."""
    examples = [Example(f"/d/r{r}_{k}.wav", "bird" if k < 3 else "ant", group=f"r{r}")
                for r in range(3) for k in range(4)]
    examples += [Example(f"/d/a{r}.wav", "ant", group=f"a{r}") for r in range(3)]
    splits = split_examples(examples, seed=seed)
    for name in ("train", "val", "test"):
        assert Counter(ex.label for ex in splits[name]) == {"bird": 3, "ant": 2}, name


def test_a_recording_split_evenly_between_two_labels_is_stratified_under_the_alphabetically_first():
    """A group's label is its majority label; a tie goes to the alphabetically first label, whichever
    the group's clips list first."""
    from sound_tf.datasets import _group_labels

    def clips(group, labels):
        return [Example(f"/d/{group}_{n}.wav", label, group=group) for n, label in enumerate(labels)]

    examples = (clips("tie", ["zebra", "zebra", "ant", "ant"]) + clips("tie3", ["owl", "cat", "bee"])
                + clips("most", ["ant", "zebra", "zebra"]) + [Example("/d/alone.wav", "owl")])
    assert _group_labels(examples) == {"tie": "ant", "tie3": "bee", "most": "zebra", "path:/d/alone.wav": "owl"}
    # Stratified under "ant": with two other 1-clip "ant" recordings the three reach train, val and test.
    examples = clips("tie", ["zebra", "zebra", "ant", "ant"]) + clips("a1", ["ant"]) + clips("a2", ["ant"])
    for seed in range(4):
        splits = split_examples(examples, seed=seed)
        assert all(len({ex.group for ex in splits[name]}) == 1 for name in ("train", "val", "test")), seed


def test_split_csv_lists_only_the_readable_files_of_a_fold_split(tmp_path):
    """Documented: split.csv holds readable files only. With folds the split is made before decoding, so
    an unreadable file is in `splits` and must be left out of the file."""
    rows = ["path,label,fold"]
    for fold in (1, 2, 3):
        for label in ("a", "b"):
            for i in range(2):
                write_tone(tmp_path / "clips" / f"{label}{fold}{i}.wav", 300.0 + 100 * i)
                rows.append(f"{label}{fold}{i}.wav,{label},{fold}")
    (tmp_path / "clips" / "a10.wav").write_bytes(b"garbage" * 10)
    (tmp_path / "clips" / "m.csv").write_text("\n".join(rows) + "\n")
    data = prepare_dataset(config_for(tmp_path / "clips" / "m.csv", tmp_path), tmp_path / "run", log=lambda _: None)
    written = read_split_csv(tmp_path / "run" / "split.csv")
    assert sum(map(len, written.values())) == 11
    assert str(tmp_path / "clips" / "a10.wav") not in {ex.path for exs in written.values() for ex in exs}
    assert ({n: [e.path for e in v] for n, v in written.items()}
            == {n: [i.source for i in v] for n, v in data.splits.items()})


def test_classes_missing_from_validation_or_test_are_noted(tmp_path):
    """A class of one file trains but is in neither held-out split: the log says so for each split."""
    root = make_folder_tree(tmp_path / "data", classes=("cat", "dog"), per_class=6)
    write_tone(root / "rare" / "only.wav")
    lines: list[str] = []
    data = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lines.append)
    assert [item.label for item in data.splits["train"]].count("rare") == 1
    notes = [line for line in lines if line.startswith("data: note:")]
    assert [note.split(":")[2].strip() for note in notes] == ["1 class has no val example (rare)",
                                                            "1 class has no test example (rare)"]
    assert "early stopping does not see them" in notes[0] and "the test cannot measure them" in notes[1]


def test_one_class_is_refused_before_the_run_folder_keeps_a_split(tmp_path):
    """A folder of one class failed only when the model was built, after split.csv was written: the run then
    reused that one-class split even once the data was fixed, and could never train."""
    root = make_folder_tree(tmp_path / "data", classes=("alpha",))
    with pytest.raises(DatasetError, match=r"one class \('alpha'\); a classifier needs at least 2; format 'folder' "
                                           r"takes each subfolder of .*data as a class: add a folder per class"):
        prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lambda _: None)
    assert not (tmp_path / "run" / "split.csv").exists()
    assert not list((tmp_path / "cache").rglob("*.wav"))  # refused before decoding (it decoded every file first)
    make_folder_tree(root, classes=("beta",))  # the data fixed: the same run folder trains on it
    assert prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lambda _: None).labels == ("alpha", "beta")

    nested = make_folder_tree(tmp_path / "one_level_up" / "sounds")  # --data one level above the classes
    with pytest.raises(DatasetError, match=r"one class \('sounds'\).*'sounds' holds 3 folders \(cat, dog, owl\): are "
                                           r"they the classes\? give that folder as data.path "
                                           r"\(--data .*one_level_up/sounds\)"):
        prepare_dataset(config_for(nested.parent, tmp_path), tmp_path / "run2", log=lambda _: None)
    pair = make_folder_tree(tmp_path / "pair_up" / "sounds", classes=("cat", "dog"))  # two classes are classes too
    with pytest.raises(DatasetError, match=r"'sounds' holds 2 folders \(cat, dog\): are they the classes\?"):
        prepare_dataset(config_for(pair.parent, tmp_path), tmp_path / "run4", log=lambda _: None)
    # a CSV of labels beside a folder of recordings, the folder given in place of the CSV (session 46's walkthrough:
    # 'add a folder per class' only)
    beside = make_folder_tree(tmp_path / "birds", classes=("recordings",))
    (beside / "labels.csv").write_text("path,label\n", encoding="utf-8")
    (beside / ".labels.csv.swp").write_text("", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"one class \('recordings'\).*, and .*birds holds 1 CSV file "
                                           r"\(labels.csv\): is one a manifest of path,label rows\? give it as "
                                           r"data.path \(--data .*birds/labels.csv\)$"):
        prepare_dataset(config_for(beside, tmp_path), tmp_path / "run5", log=lambda _: None)
    (beside / "extra.csv").write_text("path,label\n", encoding="utf-8")  # two: the plural ('1 CSV file(s)' before)
    with pytest.raises(DatasetError, match=r", and .*birds holds 2 CSV files \(extra.csv, labels.csv\): is one a "):
        prepare_dataset(config_for(beside, tmp_path), tmp_path / "run6", log=lambda _: None)
    esc50 = make_esc50(tmp_path / "esc50")  # forced to 'folder' (e.g. --pipeline folder): one class, 'audio'
    with pytest.raises(DatasetError,
                       match=r"one class \('audio'\).*this looks like esc50: use data.format 'auto' \(--format auto\)"):
        prepare_dataset(config_for(esc50, tmp_path, **{"data.format": "folder"}), tmp_path / "run3", log=lambda _: None)


def test_class_folder_names_lose_surrounding_spaces_as_split_csv_reads_them(tmp_path):
    """Labels of ' zeta' and 'gamma ' came back from split.csv stripped on resume: the classes were renamed
    and reordered between sessions of one run (output 0 changed class part-way through training)."""
    root = make_folder_tree(tmp_path / "data", classes=(" zeta", "beta", "gamma "))
    first = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lambda _: None)
    resumed = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lambda _: None)  # reads split.csv
    assert first.labels == resumed.labels == ("beta", "gamma", "zeta")
    assert {n: [i.label for i in items] for n, items in first.splits.items()} == \
        {n: [i.label for i in items] for n, items in resumed.splits.items()}
    make_folder_tree(root, classes=("zeta",))
    with pytest.raises(DatasetError, match=r"class folders ' zeta' and 'zeta' differ only in surrounding spaces"):
        load_examples(root)
    blank = make_folder_tree(tmp_path / "blank", classes=("a", "  "))
    with pytest.raises(DatasetError, match=r"the class folder name '  ' is only spaces"):
        load_examples(blank)


def test_a_manifest_naming_a_column_twice_is_refused(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,label\na.wav,dog,cat\n")
    with pytest.raises(DatasetError, match=r"m.csv: the header names column 'label' more than once"):
        load_examples(manifest)


def test_a_manifest_listing_one_file_twice_through_a_link_is_refused(tmp_path):
    """Two rows naming one recording, once through a symbolic link and with another label: it could be
    trained on as one class and tested as the other."""
    write_tone(tmp_path / "clips" / "a0.wav")
    write_tone(tmp_path / "clips" / "b0.wav", 500.0)
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "link.wav").symlink_to(tmp_path / "clips" / "a0.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\nclips/a0.wav,alpha\nclips/b0.wav,beta\nlinks/link.wav,beta\n")
    with pytest.raises(DatasetError, match=r"m.csv, line 4: links/link.wav is the file already listed on line 2 "
                                           r"\(a symbolic link leads from one to the other\); list each file once"):
        load_examples(manifest)


def test_audio_files_beside_the_class_folders_are_pointed_out(tmp_path, caplog):
    root = make_folder_tree(tmp_path / "data")
    write_tone(root / "stray.wav")
    (root / "README.txt").write_text("about the data")
    with caplog.at_level("WARNING"):
        examples = load_examples(root)
    assert len(examples) == 12 and all("stray" not in ex.path for ex in examples)
    assert f"1 audio file directly in {root} belongs to no class folder and is not used (e.g. stray.wav); move it " \
           f"into its class's folder" in caplog.text


def test_a_class_folder_link_that_leads_to_nothing_is_pointed_out(tmp_path, caplog):
    """A class folder linked from a drive that is not mounted was left out without a word: its class
    vanished from the data."""
    root = make_folder_tree(tmp_path / "data", classes=("cat", "dog"))
    (root / "owl").symlink_to(tmp_path / "unmounted" / "owl")
    with caplog.at_level("WARNING"):
        examples = load_examples(root)
    assert {ex.label for ex in examples} == {"cat", "dog"}
    assert (f"1 symbolic link directly in {root} leads to nothing and is not used (e.g. owl -> "
            f"{tmp_path / 'unmounted' / 'owl'}); a linked class folder whose target is missing is not a class") \
        in caplog.text


def test_check_two_classes_from_python(tmp_path):
    from sound_tf.datasets import check_two_classes

    # A single label string was iterated: "dog" passed as the three classes 'd', 'o', 'g'.
    with pytest.raises(ConfigError, match="labels as a list, got the single string 'dog'"):
        check_two_classes(tmp_path, "csv", "dog")
    with pytest.raises(DatasetError, match="no examples, so no classes"):  # was an IndexError
        check_two_classes(tmp_path, "csv", [])
    (tmp_path / "dog").mkdir()
    # A str root (as researchers pass paths) failed with "'str' object has no attribute 'is_dir'".
    with pytest.raises(DatasetError, match=r"one class \('dog'\).*add a folder per class"):
        check_two_classes(str(tmp_path), "folder", ["dog", "dog"])
    check_two_classes(str(tmp_path), "folder", ("dog", "rain"))


def test_split_and_kfold_arguments_from_python():
    examples = [Example(f"/d/{label}{i}.wav", label) for label in "abc" for i in range(20)]
    # seed=None drew another split on every call; 1.5 and "1" failed inside numpy.
    for seed in (None, 1.5, "1", -1, True, np.True_):
        with pytest.raises(ConfigError, match=f"seed must be a whole number >= 0.*got {re.escape(repr(seed))}"):
            split_examples(examples, seed=seed)
        with pytest.raises(ConfigError, match="seed must be a whole number >= 0"):
            assign_kfold(examples, 3, seed)
    assert split_examples(examples, seed=np.int64(4)) == split_examples(examples, seed=4)
    # val_fraction="0.2" was read as 0.2; "abc" was a bare ValueError.
    for value in ("0.2", "abc"):
        with pytest.raises(DatasetError, match=r"val_fraction must be in \(0, 0.5\), got "):
            split_examples(examples, val_fraction=value)
    # One Example, or a folder path, failed as "'Example' object is not iterable" / "'str' has no attribute 'fold'".
    for wrong in (examples[0], "/data/dogs"):
        with pytest.raises(ConfigError, match="split_examples takes a list of Example"):
            split_examples(wrong)
        with pytest.raises(ConfigError, match="assign_kfold takes a list of Example"):
            assign_kfold(wrong, 3, 0)
    with pytest.raises(DatasetError, match="cannot assign folds to an empty list"):  # was max() of nothing
        assign_kfold([], 3, 0)
    folded = [Example(f"/d/{label}{i}.wav", label, fold=i % 5 + 1) for label in "abc" for i in range(20)]
    with pytest.raises(DatasetError, match="test_fold must be a fold number, got True"):  # was fold 1
        split_examples(folded, test_fold=True)
    split = split_examples(folded, test_fold=np.int64(2), val_fold=np.int64(3))
    assert ({ex.fold for ex in split["test"]}, {ex.fold for ex in split["val"]}) == ({2}, {3})
    # k as a numpy integer was refused: "k must be an integer in [2, 20] ..., got np.int64(5)".
    assert assign_kfold(examples, np.int64(5), 0) == assign_kfold(examples, 5, 0)
    assert Counter(assign_kfold(examples, np.int64(5), 0)) == {n: 12 for n in range(1, 6)}


@pytest.mark.filterwarnings("ignore:The least populated class in y:UserWarning")  # sklearn, on purpose here
def test_assign_kfold_never_leaves_a_fold_empty():
    # 7 groups, k=7: scikit-learn put two groups in fold 7 and none in fold 6, which then held no examples
    # (cross-validation's fold 6 failed with "test_fold=6 does not exist").
    rng = np.random.default_rng(2)
    examples = []
    for label in "abc"[: int(rng.integers(1, 3))] + "c":
        for group in range(int(rng.integers(1, 6))):
            examples += [Example(f"/d/{label}{group}_{i}.wav", label, group=f"{label}{group}")
                         for i in range(int(rng.integers(1, 6)))]
    assert len({ex.group for ex in examples}) == 7
    with pytest.raises(DatasetError, match=r"k=7 leaves fold \[6\] without examples.*choose a smaller k"):
        assign_kfold(examples, 7, 2)
    folds = assign_kfold(examples, 3, 2)
    assert sorted(set(folds)) == [1, 2, 3]
    assert all(len({f for ex, f in zip(examples, folds) if ex.group == g}) == 1 for g in {ex.group for ex in examples})


def test_make_demo_dataset_checks_its_arguments_before_writing(tmp_path):
    # seed=np.int64(3) generated every clip, then failed writing the marker ("int64 is not JSON serializable")
    # and left a folder of clips without one; np.int64(2) clips were refused; sample_rate_hz=0 and
    # clip_seconds="0.1" failed inside numpy.
    root = make_demo_dataset(tmp_path / "np", clips_per_class=np.int64(1), seed=np.int64(3),
                             clip_seconds=np.float64(0.1), sample_rate_hz=np.int32(8000))
    marker = json.loads((root / ".sound_tf_demo.json").read_text())
    assert ((marker["clips_per_class"], marker["seed"], marker["sample_rate_hz"], marker["clip_seconds"])
            == (1, 3, 8000, 0.1))
    assert sf.info(str(root / DEMO_CLASSES[0] / f"{DEMO_CLASSES[0]}_000.wav")).frames == 800
    plain = make_demo_dataset(tmp_path / "plain", clips_per_class=1, seed=3, clip_seconds=0.1, sample_rate_hz=8000)
    assert _digest(plain) == _digest(root)
    for kwargs, message in (({"seed": -1}, "seed must be an integer >= 0, got -1"),
                            ({"seed": None}, "seed must be an integer >= 0, got None"),
                            ({"sample_rate_hz": 0}, "sample_rate_hz must be an integer >= 1000, got 0"),
                            ({"sample_rate_hz": "16000"}, "sample_rate_hz must be an integer >= 1000, got '16000'"),
                            ({"sample_rate_hz": 400000}, r"sample_rate_hz must be in \[1000, 192000\], got 400000"),
                            ({"clip_seconds": "0.1"}, r"clip_seconds must be a number in \[0.05, 600\], got '0.1'"),
                            ({"clip_seconds": True}, r"clip_seconds must be a number in \[0.05, 600\], got True")):
        with pytest.raises(DatasetError, match=message):
            make_demo_dataset(tmp_path / "bad", clips_per_class=1, **kwargs)
        assert not (tmp_path / "bad").exists()


def test_write_split_csv_writes_only_what_read_split_csv_reads(tmp_path):
    odd = [Example("/x/a,b.wav", "dog", group="g,1"), Example('/x/q"uote.wav', 'qu"o', fold=2),
           Example("/x/ünï 雨.wav", "ünï"), Example("/x/ lead and trail .wav", "ca,t"),
           Example("/x/new\nline.wav", "d")]
    splits = {"train": odd[:3], "val": odd[3:4], "test": odd[4:]}
    assert read_split_csv(write_split_csv(tmp_path / "odd.csv", splits)) == splits
    # A file in two splits (or twice in one), or a label with a line break, was written, and the run that
    # resumed from the file was refused by read_split_csv.
    with pytest.raises(DatasetError, match=r"/x/a.wav is listed twice \(in the train and test splits\)"):
        write_split_csv(tmp_path / "leak.csv",
                        {"train": [Example("/x/a.wav", "d")], "test": [Example("/x/a.wav", "d")]})
    with pytest.raises(DatasetError, match="/x/b.wav: the label or group 'rain\\\\ny' holds a line break"):
        write_split_csv(tmp_path / "break.csv", {"train": [Example("/x/b.wav", "rain\ny")]})
    with pytest.raises(ConfigError, match="write_split_csv's 'train' split takes a list of Example"):
        write_split_csv(tmp_path / "one.csv", {"train": Example("/x/a.wav", "d")})  # was "'Example' is not iterable"
    with pytest.raises(ConfigError, match="write_split_csv takes a dict of split name"):
        write_split_csv(tmp_path / "list.csv", [Example("/x/a.wav", "d")])
    assert not any((tmp_path / name).exists() for name in ("leak.csv", "break.csv", "one.csv", "list.csv"))


def test_resolve_source_names_a_wrong_config_or_log(tmp_path):
    with pytest.raises(ConfigError, match="resolve_source expects a sound_tf Config.*got dict"):
        resolve_source({"data": {"path": str(tmp_path)}}, print)  # was "'dict' object has no attribute 'data'"
    write_tone(tmp_path / "dog" / "a.wav")
    config = apply_overrides(Config(), {"data.path": str(tmp_path)})
    with pytest.raises(ConfigError, match="resolve_source's log must be a function"):
        resolve_source(config, "verbose")
    assert resolve_source(config, print) == (tmp_path, "folder")


def test_a_line_that_begins_with_a_hash_is_a_comment_whatever_it_holds(tmp_path, caplog):
    """A comment with commas ("# recorded in 2024, mono") was a data row, later skipped as "file not found";
    one without commas was "1 value(s) for 2 column(s)"."""
    for name in ("a.wav", "b.wav", "#7.wav", "#8.wav"):
        write_tone(tmp_path / name)
    manifest = tmp_path / "m.csv"
    manifest.write_text('# made by hand\npath,label\n# recorded in 2024, mono\na.wav,dog\n# a 5" speaker, "loud\n'
                        'b.wav,cat\n"#7.wav",owl\n#8.wav,owl\n')
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        examples = load_examples(manifest)
    assert [(Path(ex.path).name, ex.label) for ex in examples] == [("a.wav", "dog"), ("b.wav", "cat"),
                                                                    ("#7.wav", "owl")]
    # the one file listed unquoted after a #: not used, and said, with how to list it
    assert f'{manifest}, line 8 begins with # and is a comment, but #8.wav is a file beside the manifest and is not ' \
           f'used; to list it, write the value that begins with # in double quotes ("#8.wav")' in caplog.text
    # A manifest whose label column comes first: a label that begins with # made its row a comment
    caplog.clear()
    manifest.write_text("label,path\ndog,a.wav\n#1 cat,b.wav\n# notes, none\n")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert [Path(ex.path).name for ex in load_examples(manifest)] == ["a.wav"]
    assert f'{manifest}, line 3 begins with # and is a comment, but b.wav is a file beside the manifest and is not ' \
           f'used; to list it, write the value that begins with # in double quotes ("#1 cat")' in caplog.text
    assert "line 4" not in caplog.text
    manifest.write_text("path,label\n# one, two\na.wav,dog\n# three, four\nb.wav\n")  # line numbers stay the file's
    with pytest.raises(DatasetError, match=r"m.csv, line 5: 1 value for 2 columns"):
        load_examples(manifest)
    manifest.write_text('path,label\na.wav,"dog\n# not a comment: inside a quoted value"\n')
    with pytest.raises(DatasetError, match=r"line 2: the value in column 'label' holds a line break"):
        load_examples(manifest)
    manifest.write_text("#path,label\na.wav,dog\n")
    with pytest.raises(DatasetError, match=r"missing column\(s\) path, label; found \['a.wav', 'dog'\]; expected "
                                           r"path,label and optionally fold,group; line 1 \('#path,label'\) would be "
                                           r"the header, but a line that begins with # is a comment: remove the #$"):
        load_examples(manifest)


def test_a_fold_below_1_is_refused_with_the_file_line_and_value(tmp_path):
    """Fold 0 was one more fold (held out as validation when fold 1 was the test), and fold -1 an
    UrbanSound8K folder 'fold-1'; folds count from 1 in the official datasets and in --test-fold."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,fold\n" + "".join(f"{c}{f}.wav,{c},{f}\n" for f in (1, 0, 2) for c in "ab"))
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(manifest))}, line 4: fold must be 1 or more "
                                           r"\(folds count from 1, as ESC-50's, UrbanSound8K's and --test-fold do\), "
                                           r"got '0'; folds numbered from 0: add 1 to every fold$"):
        load_examples(manifest)
    manifest.write_text("path,label,fold\na.wav,a,1\nb.wav,b,-2.0\n")
    with pytest.raises(DatasetError, match=r"m.csv, line 3: fold must be 1 or more .*, got '-2.0'$"):
        load_examples(manifest)
    us8k = make_us8k(tmp_path / "us8k", folds=2)
    meta = us8k / "metadata" / "UrbanSound8K.csv"
    meta.write_text(meta.read_text().replace(",1,0,siren\n", ",0,0,siren\n", 1))
    with pytest.raises(DatasetError, match=r"UrbanSound8K.csv, line 2: fold must be 1 or more .*, got '0'"):
        load_examples(us8k)
    split = tmp_path / "split.csv"  # a hand-written data.split_file too
    split.write_text("split,path,label,fold,group\ntrain,a.wav,a,1,\nval,b.wav,b,2,\ntest,c.wav,a,0,\n")
    with pytest.raises(DatasetError, match=r"split.csv, line 4: fold must be 1 or more .*, got '0'"):
        read_split_csv(split)


@pytest.mark.parametrize("character", ["\x00", "\x1b", "\t", "\x7f", "\x85", "\u2028", "\u2029"])
def test_a_label_with_a_control_character_is_refused_by_every_reader(tmp_path, character):
    """A NUL, an escape or a line separator in a label was a class: it went into labels.txt (where
    U+2028 and U+0085 split a line for str.splitlines), the models' metadata, reports and file names."""
    label = f"dog{character}bark"
    shown = re.escape(repr(label))
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label\na.wav,cat\nb.wav,{label}\n")
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(manifest))}, line 3: the label {shown} \(column "
                                           rf"'label'\) holds a control character \(U\+{ord(character):04X}\); a "
                                           r"label goes into labels.txt \(one per line\), the models' metadata, "
                                           r"reports and file names: remove it$"):
        load_examples(manifest)
    esc50 = make_esc50(tmp_path / "esc50", sources_per_fold=1, takes=1)
    meta = esc50 / "meta" / "esc50.csv"
    meta.write_text(meta.read_text().replace(",rain,", f",{label},", 1))
    with pytest.raises(DatasetError, match=rf"esc50.csv, line 3: the label {shown} \(column 'category'\) holds a "
                                           r"control character"):
        load_examples(esc50)
    us8k = make_us8k(tmp_path / "us8k", folds=2)
    meta = us8k / "metadata" / "UrbanSound8K.csv"
    meta.write_text(meta.read_text().replace(",siren\n", f",{label}\n", 1))
    with pytest.raises(DatasetError, match=rf"UrbanSound8K.csv, line 2: the label {shown} \(column 'class'\)"):
        load_examples(us8k)
    split = tmp_path / "split.csv"
    split.write_text(f"split,path,label,fold,group\ntrain,a.wav,cat,,\ntest,b.wav,{label},,\n")
    with pytest.raises(DatasetError, match=rf"split.csv, line 3: the label {shown} \(column 'label'\)"):
        read_split_csv(split)
    with pytest.raises(DatasetError, match=rf"b.wav: the label {shown} holds a control character"):
        write_split_csv(tmp_path / "out.csv", {"train": [Example("/x/a.wav", "cat")],
                                               "test": [Example("/x/b.wav", label)]})
    assert not (tmp_path / "out.csv").exists()
    if character != "\x00":  # a file name cannot hold NUL
        root = make_folder_tree(tmp_path / "tree", per_class=1)
        (root / "owl").rename(root / label)
        with pytest.raises(DatasetError, match=rf"the class folder name {shown} holds a control character "
                                               rf"\(U\+{ord(character):04X}\); a label goes into labels.txt"):
            load_examples(root)


def test_a_path_holding_nul_is_refused_naming_its_line_not_a_traceback(tmp_path):
    """A NUL in a manifest's path (a damaged file) raised "ValueError: embedded null byte" from
    os.path.realpath, a traceback out of train; and a UTF-16 manifest without a byte order mark, which reads
    as UTF-8 with a NUL after every letter, was refused without saying why its columns looked so."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.wav,cat\nb\0.wav,dog\n")
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(manifest))}, line 3: the path 'b\\x00.wav' holds a NUL "
                                           r"character \(U\+0000\), which no file name can hold"):
        load_examples(manifest)
    split = tmp_path / "split.csv"
    split.write_text("split,path,label,fold,group\ntrain,a.wav,cat,,\ntest,b\0.wav,dog,,\n")
    with pytest.raises(DatasetError, match=r"split.csv, line 3: the path 'b\\x00.wav' holds a NUL character"):
        read_split_csv(split)
    manifest.write_bytes("path,label\na.wav,cat\nb.wav,dog\n".encode("utf-16-le"))
    with pytest.raises(DatasetError, match=r"missing column\(s\) path, label; .*; the file holds NUL characters "
                                           r"\(U\+0000\): is it UTF-16 text\? save it as UTF-8$"):
        load_examples(manifest)


def test_labels_that_differ_only_in_a_hyphen_or_an_underscore_are_pointed_out(tmp_path, caplog):
    """'bearing-fault' typed in 3 rows of 'bearing_fault' made a class of its own without a word (only spaces, case,
    Unicode form and leading zeros were compared); 'hi-hat' / 'Hi-Hat' still differ in case alone."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n" + "".join(f"{i}.wav,bearing_fault\n" for i in range(5))
                        + "".join(f"x{i}.wav,bearing-fault\n" for i in range(3)) + "n.wav,normal\nh.wav,hi-hat\n"
                        + "H.wav,Hi-Hat\n")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len({ex.label for ex in load_examples(manifest)}) == 5  # nothing merged
    assert (f"{manifest.resolve()}: 2 groups of labels differ only in the hyphens, underscores or spaces between "
            f"words, case, Unicode form or leading zeros and are separate classes (e.g. 'bearing-fault' / "
            f"'bearing_fault'): 'bearing-fault' (3 files) / 'bearing_fault' (5 files); 'Hi-Hat' (1 file) / 'hi-hat' "
            f"(1 file); write them one way in its label column if they are one class") in caplog.text
    caplog.clear()
    manifest.write_text("path,label\nh.wav,hi-hat\nH.wav,Hi-Hat\nn.wav,snare_drum\n")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        load_examples(manifest)
    assert "1 group of labels differs only in case, Unicode form or leading zeros, and its labels are separate " \
           "classes (e.g. 'Hi-Hat' / 'hi-hat')" in caplog.text


def test_a_manifest_column_that_looks_like_a_group_is_named_when_there_is_no_group_column(tmp_path, caplog):
    """A manifest's 'machine_id' column (MIMII's, DCASE task 2's) was not read, without a word: the split, drawn
    file by file, put each machine's recordings in training and test alike, and the test scored machines
    training had heard. It is named, with the column to call it; a manifest with a group or folds is not."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,machine_id,duration\n" + "".join(
        f"{i}.wav,{'ab'[i % 2]},pump_0{i % 3},10\n" for i in range(6)))
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert {ex.group for ex in load_examples(manifest)} == {None}
    assert (f"{manifest.resolve()}: column 'machine_id' is not read: without a 'group' column the split (or "
            f"crossval's folds) is drawn file by file, so one machine_id's recordings can be in training and in test; "
            f"name the column group to keep each machine_id's recordings in one split (or fold)") in caplog.text
    for header, quiet in (("path,label,speaker,group", "speaker"), ("path,label,machine_id,fold", "machine_id"),
                          ("path,label,duration,notes", "duration")):
        caplog.clear()
        manifest.write_text(header + "\n" + "".join(f"{i}.wav,{'ab'[i % 2]},s{i % 3},{1 + i % 3}\n" for i in range(6)))
        with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
            load_examples(manifest)
        assert "is not read" not in caplog.text, header
    caplog.clear()
    manifest.write_text("path,label,Speaker\n" + "".join(f"{i}.wav,{'ab'[i % 2]},s{i % 3}\n" for i in range(6)))
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        load_examples(manifest)
    assert "column 'Speaker' is not read" in caplog.text


def test_an_id_column_of_one_value_per_file_or_per_label_is_not_called_a_group(tmp_path, caplog):
    """A 'class_id' (each label's number) was named with the advice to call it group, which would hold out whole
    classes, and a 'file_id' (one per row) was named in place of the 'machine_id' beside it; a column of empty
    cells is no group either."""
    manifest = tmp_path / "m.csv"
    for header, values, named in (("class_id", lambda i: str(i % 2), None), ("file_id", lambda i: f"f{i}", None),
                                  ("machine_id", lambda i: "", None),
                                  ("file_id,machine_id", lambda i: f"f{i},m{i % 3}", "machine_id"),
                                  ("class_id,speaker", lambda i: f"{i % 2},s{i // 2}", "speaker")):
        caplog.clear()
        manifest.write_text(f"path,label,{header}\n" + "".join(f"{i}.wav,{'ab'[i % 2]},{values(i)}\n"
                                                                 for i in range(6)))
        with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
            assert len(load_examples(manifest)) == 6
        if named is None:
            assert "is not read" not in caplog.text, header
        else:
            assert f"column {named!r} is not read: without a 'group' column" in caplog.text, header
            assert caplog.text.count("is not read") == 1


def test_rows_without_a_group_among_rows_with_one_are_named(tmp_path, caplog):
    """Three empty 'group' cells of 120 rows made three groups of one file each, free to land in test while the
    rest of their machine trained, without a word. The first line, the count and the lines are named; a manifest
    whose rows all have a group, or none, gets no such line."""
    manifest = tmp_path / "m.csv"
    rows = [f"{i}.wav,{'ab'[i % 2]},m{i % 4}" for i in range(10)]
    for i in (2, 5, 8):
        rows[i] = rows[i].rsplit(",", 1)[0] + ","
    manifest.write_text("path,label,group\n" + "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        examples = load_examples(manifest)
    assert [ex.group for ex in examples].count(None) == 3
    assert (f"{manifest.resolve()}, line 4: no group, while 7 of the 10 rows have one (3 rows without: lines 4, 7, "
            f"10); each row without a group is a group of its own, so a split (or crossval's folds) can put it apart "
            f"from the rest of its group (in training while they are in test): give every row its group") in caplog.text
    # a fold on every row decides the split (and crossval holds out those folds): the groups split nothing
    caplog.clear()
    manifest.write_text("path,label,group,fold\n" + "".join(f"{row},{1 + i % 3}\n" for i, row in enumerate(rows)))
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert [ex.fold for ex in load_examples(manifest)][:4] == [1, 2, 3, 1]
    assert "no group" not in caplog.text
    for cells in (lambda i: f"m{i % 4}", lambda i: ""):
        caplog.clear()
        manifest.write_text("path,label,group\n" + "".join(f"{i}.wav,{'ab'[i % 2]},{cells(i)}\n" for i in range(10)))
        with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
            load_examples(manifest)
        assert "no group" not in caplog.text


def test_labels_that_differ_only_in_inner_spaces_are_pointed_out_with_the_files_of_each(tmp_path, caplog):
    """'dog  bark' and 'dog bark' were two classes without a word; a warning now names every spelling
    and how many files each has (they stay separate classes: nothing is merged)."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\na.wav,dog bark\nb.wav,dog  bark\nc.wav,dog bark\nd.wav,Dog Bark\ne.wav,cat\n"
                        "f.wav,Cat\nh.wav,Cat\n")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert len({ex.label for ex in load_examples(manifest)}) == 5
    assert (f"{manifest.resolve()}: 2 groups of labels differ only in the spaces between words, case, Unicode form "
            f"or leading zeros and are separate classes (e.g. 'Dog Bark' / 'dog  bark' / 'dog bark'): 'Dog Bark' "
            f"(1 file) / 'dog  bark' (1 file) / 'dog bark' (2 files); 'Cat' (2 files) / 'cat' (1 file); write them "
            f"one way in its label column if they are one class") in caplog.text
    caplog.clear()
    root = make_folder_tree(tmp_path / "tree", classes=("dog bark", "dog  bark", "owl"), per_class=2)
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        load_examples(root)
    assert ": 1 group of labels differs only in the spaces between words, case, Unicode form or leading zeros, " \
           "and its labels are separate classes (e.g. 'dog  bark' / 'dog bark'): 'dog  bark' (2 files) / " \
           "'dog bark' (2 files); give their class folders one name if they are one class" in caplog.text
    caplog.clear()
    split = tmp_path / "split.csv"  # a hand-written data.split_file: its labels are checked as a dataset's are
    for name in ("a", "b", "c", "d", "e"):
        write_tone(tmp_path / f"{name}.wav")
    split.write_text("split,path,label,fold,group\ntrain,a.wav,dog bark,,\ntrain,b.wav,dog  bark,,\n"
                     "train,c.wav,owl,,\nval,d.wav,owl,,\ntest,e.wav,owl,,\n")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        prepared = prepare_dataset(config_for(None, tmp_path, **{"data.split_file": str(split)}), tmp_path / "run",
                                   log=lambda _: None)
    assert prepared.labels == ("dog  bark", "dog bark", "owl")
    assert f"{split}: 1 group of labels differs only in the spaces between words, case, Unicode form or leading " \
           f"zeros, and its labels are separate classes (e.g. 'dog  bark' / 'dog bark'): 'dog  bark' (1 file) / " \
           f"'dog bark' (1 file)" in caplog.text


def test_a_manifest_path_with_backslashes_says_the_forward_slash_path_exists(tmp_path):
    r"""'audio\dog\2.wav' (a manifest written on Windows) was skipped as 'file not found' with no hint; the
    path is not rewritten, but the reason names the file that exists."""
    rows = ["path,label"]
    for c, label in enumerate(("cat", "dog", "owl")):
        for i in range(3):
            write_tone(tmp_path / "audio" / label / f"{i}.wav", 300.0 + 100 * c + 10 * i)
            rows.append(f"audio\\{label}\\{i}.wav,{label}" if (label, i) == ("dog", 2)
                        else f"audio/{label}/{i}.wav,{label}")
    rows.append("audio\\dog\\9.wav,dog")  # no such file either way: the plain reason
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(rows) + "\n")
    prepared = prepare_dataset(config_for(manifest, tmp_path), tmp_path / "run", log=lambda _: None)
    written = tmp_path / "audio\\dog\\2.wav"
    reason = (f"file not found; its path holds backslashes (\\), which are not folder separators here, and "
              f"{tmp_path}/audio/dog/2.wav exists: write the path with forward slashes (/)")
    reason += f" (listed on line 7 of {manifest})"
    assert prepared.skipped == [(str(written), reason), (str(tmp_path / "audio\\dog\\9.wav"),
                                                         f"file not found (listed on line 11 of {manifest})")]
    with (tmp_path / "run" / "skipped.csv").open(newline="") as handle:
        assert list(csv.reader(handle))[1] == [str(written), reason]


def test_a_missing_listed_file_is_skipped_with_its_listings_line(tmp_path, caplog):
    """Outside --strict, 'skipping .../gone.wav: file not found' named no row of the manifest to fix (the --strict
    refusal named it): the warning, prepared.skipped and skipped.csv (still path,reason) name the line now, counted
    as the file's lines (a comment line too), for a CSV manifest and ESC-50's metadata; a folder names none."""
    rows = ["path,label", "# recorded in 2024, mono"]
    for c, label in enumerate(("cat", "dog", "owl")):
        for i in range(3):
            rows.append(f"audio/{label}/{i}.wav,{label}")
            if (label, i) != ("dog", 1):
                write_tone(tmp_path / "audio" / label / f"{i}.wav", 300.0 + 100 * c + 10 * i)
    manifest = tmp_path / "m.csv"
    manifest.write_text("\n".join(rows) + "\n")
    gone = str(tmp_path / "audio" / "dog" / "1.wav")
    reason = f"file not found (listed on line 7 of {manifest})"
    with caplog.at_level(logging.WARNING, logger="sound_tf.audio"):
        prepared = prepare_dataset(config_for(manifest, tmp_path), tmp_path / "run", log=lambda _: None)
    assert prepared.skipped == [(gone, reason)]
    assert f"skipping {gone}: {reason}" in [record.getMessage() for record in caplog.records]
    with (tmp_path / "run" / "skipped.csv").open(newline="") as handle:
        assert list(csv.reader(handle)) == [["path", "reason"], [gone, reason]]

    esc = make_esc50(tmp_path / "esc")
    name = sorted((esc / "audio").iterdir())[5]
    name.unlink()
    prepared = prepare_dataset(config_for(esc, tmp_path), tmp_path / "esc_run", log=lambda _: None)
    meta = (esc / "meta" / "esc50.csv").read_text().splitlines()
    line = next(n for n, text in enumerate(meta, start=1) if text.startswith(name.name + ","))
    assert line > 2 and prepared.skipped == [(str(name), f"file not found (listed on line {line} of "
                                                         f"{esc / 'meta' / 'esc50.csv'})")]


def test_the_listings_lines_are_read_without_walking_the_official_datasets_audio_folders(tmp_path, monkeypatch,
                                                                                         folder_walks):
    """listed_lines (the line of a missing file, read when one is skipped) reads ESC-50's and UrbanSound8K's
    metadata with their warnings off: it walked audio/ and looked at UrbanSound8K's fold folders all the same, for
    warnings no one saw (the run's reading had said them). It reads the metadata alone now, each file at its line."""
    from sound_tf import datasets
    from sound_tf.datasets import listed_lines

    esc50 = make_esc50(tmp_path / "ESC-50")
    write_tone(esc50 / "audio" / "9-999-A-0.wav")  # listed nowhere: a walk would have something to say
    us8k = make_us8k(tmp_path / "UrbanSound8K", folds=3)
    write_tone(us8k / "audio" / "fold3" / "9999-0-0-0.wav")
    looked = []
    fold_folders = datasets._warn_fold_folders
    monkeypatch.setattr(datasets, "_warn_fold_folders", lambda *args: looked.append(args) or fold_folders(*args))
    expected = {}
    for root, meta, where in ((esc50, esc50 / "meta" / "esc50.csv", lambda row: row[0]),
                              (us8k, us8k / "metadata" / "UrbanSound8K.csv", lambda row: f"fold{row[5]}/{row[0]}")):
        with meta.open(newline="") as handle:
            expected[root] = {str(root / "audio" / where(row)): (meta, line)
                              for line, row in enumerate(list(csv.reader(handle))[1:], start=2)}
    assert listed_lines(esc50, "esc50") == expected[esc50] and len(expected[esc50]) == 40
    assert listed_lines(us8k, "urbansound8k") == expected[us8k] and len(expected[us8k]) == 12
    assert not folder_walks and not looked
    load_examples(us8k, "urbansound8k")  # the run's reading walks it, and looks at the fold folders, once
    assert folder_walks == {"audio": 1} and len(looked) == 1


def test_an_example_built_in_code_with_a_fold_below_1_is_refused_in_the_readers_words(tmp_path):
    """split_examples, assign_kfold and write_split_csv took Example(fold=0) built in Python, which every
    reader of a fold column refuses: fold 0 became one more fold (the validation fold before fold 1)."""
    why = re.escape("fold must be 1 or more (folds count from 1, as ESC-50's, UrbanSound8K's and --test-fold do), "
                    "got ")
    zero = re.escape("; folds numbered from 0: add 1 to every fold")

    def examples(folds):
        return [Example(f"/x/{c}{fold}.wav", c, fold=fold) for fold in folds for c in "ab"]

    with pytest.raises(DatasetError, match=rf"^/x/a0\.wav: {why}0{zero}$"):
        split_examples(examples((0, 1, 2)))
    with pytest.raises(DatasetError, match=rf"^/x/a-1\.wav: {why}-1$"):
        assign_kfold(examples((1, -1, 2, 3)), 2, 0)
    with pytest.raises(DatasetError, match=rf"^/x/a0\.wav: {why}0{zero}$"):
        write_split_csv(tmp_path / "split.csv", {"train": examples((1,)), "test": examples((0,))})
    assert not (tmp_path / "split.csv").exists()
    with pytest.raises(DatasetError, match=rf"^/x/a1\.wav: {why}0{zero}$"):
        dataclasses.replace(examples((1,))[0], fold=np.int64(0))  # as crossval gives examples their folds
    for name in ("test_fold", "val_fold"):  # was "test_fold=0 does not exist; folds present: [1, 2, 3]"
        with pytest.raises(DatasetError, match=rf"^{name} must be 1 or more \(folds count from 1, .*\), got 0$"):
            split_examples(examples((1, 2, 3)), **{name: 0})
    assert [ex.fold for ex in split_examples(examples((1, 2, 3)), test_fold=1)["val"]] == [3, 3]


def test_an_example_built_in_code_takes_a_whole_fold_only_and_keeps_a_numpy_one_as_an_int():
    """Example checked only for folds below 1: fold=True became fold 1, 1.5 a fold of its own, and "2" a fold
    that never equalled 2. A NumPy integer (as crossval assigns folds) is kept as an int, for split.csv and JSON."""
    for fold in (True, np.True_, 1.5, "2", 2.0):
        with pytest.raises(DatasetError, match=rf"^/x/a\.wav: fold must be a whole number \(folds count from 1\) "
                                               rf"or None, got {re.escape(repr(fold))}$"):
            Example("/x/a.wav", "a", fold=fold)
    example = Example("/x/a.wav", "a", fold=np.int64(2))
    assert example.fold == 2 and type(example.fold) is int
    assert Example("/x/a.wav", "a").fold is None


def test_a_run_made_from_folds_numbered_from_0_is_still_resumed_evaluated_and_exported(tmp_path):
    """Before folds were checked, a manifest numbering them from 0 trained, and its run's split.csv holds
    fold 0; config.json with test_fold 0 still loads (to serve, export or predict), so the run's own
    split.csv, which resume, evaluate and export read, must too. A data.split_file still refuses it."""
    root = make_folder_tree(tmp_path / "data", per_class=3)
    run = tmp_path / "run"
    run.mkdir()
    folds = {"train": 0, "val": 1, "test": 2}
    with (run / "split.csv").open("w", newline="") as handle:  # as write_split_csv wrote it then
        writer = csv.writer(handle)
        writer.writerow(["split", "path", "label", "fold", "group"])
        for i, (name, fold) in enumerate(folds.items()):
            writer.writerows((name, str(root / label / f"{label}_{i}.wav"), label, fold, "")
                             for label in ("cat", "dog", "owl"))
    config = config_for(root, tmp_path, **{"data.test_fold": 2, "data.val_fold": 1})

    prepared = prepare_dataset(config, run, log=lambda _: None)  # a resumed run reuses its split.csv

    assert {name: {item.fold for item in items} for name, items in prepared.splits.items()} == \
        {name: {fold} for name, fold in folds.items()}
    read = read_split_csv(run / "split.csv", run_file=True)  # export's and evaluation's reading
    assert {name: [ex.fold for ex in examples] for name, examples in read.items()} == \
        {name: [fold] * 3 for name, fold in folds.items()}
    with pytest.raises(DatasetError, match=r"split.csv, line 2: fold must be 1 or more .*, got '0'"):
        read_split_csv(run / "split.csv")  # as data.split_file: refused, as every manifest refuses it


def test_a_comment_line_longer_than_a_file_name_is_read_as_a_comment(tmp_path):
    """A manifest's comment is checked for a file of its first field's name (a path that begins with #,
    listed unquoted); a comment of more than 255 bytes before its first comma raised "File name too long"."""
    root = make_folder_tree(tmp_path / "data", classes=("cat", "dog"), per_class=1)
    manifest = root / "m.csv"
    note = "# Recordings made in the garden in spring; the labels are the species heard " * 5
    manifest.write_text(f"{note}\npath,label\n{note}\ncat/cat_0.wav,cat\ndog/dog_0.wav,dog\n")
    assert [(Path(ex.path).name, ex.label) for ex in load_examples(manifest)] == [("cat_0.wav", "cat"),
                                                                                    ("dog_0.wav", "dog")]


def test_a_missing_data_path_with_a_near_name_beside_it_asks_if_that_was_meant(tmp_path):
    """--data data/my_sound/ said only "no such file or folder" beside data/my_sounds."""
    make_folder_tree(tmp_path / "my_sounds")
    (tmp_path / "clips.csv").write_text("path,label\n")
    for given, meant in (("my_sound", "my_sounds"), ("my_sound/", "my_sounds"), ("My_Sounds", "my_sounds"),
                         ("clip.csv", "clips.csv"), ("elsewhere/my_sounds", None), ("birds", None)):
        with pytest.raises(DatasetError) as info:
            detect_format(str(tmp_path / given))
        hint = f" (did you mean {tmp_path / meant}?)" if meant else ""
        assert str(info.value).startswith(f"{Path(str(tmp_path / given))}: no such file or folder{hint}; expected "), \
            (given, str(info.value))


def test_a_missing_path_read_in_a_named_format_says_it_is_missing(tmp_path):
    """A run of the folder recipe (data.format 'folder') resumed while its disk was not mounted said "format 'folder'
    needs a folder with one subfolder per class", as if the folder were there in another layout; ESC-50's "needs the
    dataset's root folder", a CSV's "needs a .csv file with columns path,label"."""
    make_folder_tree(tmp_path / "my_sounds")
    for format in ("folder", "demo", "csv", "esc50", "urbansound8k", "speech_commands"):
        for given, hint in (("my_sound", f" (did you mean {tmp_path / 'my_sounds'}?)"), ("birds", "")):
            with pytest.raises(DatasetError) as info:
                load_examples(tmp_path / given, format)
            assert str(info.value) == f"{tmp_path / given}: no such file or folder{hint}", (format, str(info.value))


def test_the_data_summary_gives_the_recordings_lengths_against_the_clip_length(tmp_path):
    """Nothing compared the recordings' lengths with the clip length: files of 0.3-8 s holding a short sound
    trained on random 1-s crops that often missed it, without a word."""
    lengths = {"cat": (0.3, 4.0, 6.0, 8.0), "dog": (3.0, 5.0, 2.5, 7.0), "owl": (4.5, 3.5, 6.5, 2.0)}
    for label, seconds in lengths.items():
        for i, length in enumerate(seconds):
            write_tone(tmp_path / "data" / label / f"{i}.wav", seconds=length)
    lines: list[str] = []
    prepare_dataset(config_for(tmp_path / "data", tmp_path, **{"audio.clip_seconds": 1.0}), tmp_path / "run",
                    log=lines.append)
    every = sorted(length for seconds in lengths.values() for length in seconds)
    # the shortest of their lengths that 95% or more fit in: of 12 recordings, all 12 (the interpolated 95th
    # percentile, 7.45 s, held 11: 92%)
    holds = every[int(np.ceil(0.95 * len(every))) - 1]
    assert holds == max(every)
    assert (f"data: recordings last 0.30-8.00 s (median {np.median(every):.2f} s); clips are 1 s (audio.clip_seconds): "
            f"training crops a random 1-s part of each longer recording per epoch; if the sound fills only part of "
            f"its file, a longer --clip-seconds sees it more often") in lines, lines
    lines.clear()
    prepare_dataset(config_for(tmp_path / "data", tmp_path, **{"audio.clip_seconds": 20.0}), tmp_path / "run20",
                    log=lines.append)
    assert [line for line in lines if line.startswith("data: recordings last")] == [
        f"data: recordings last 0.30-8.00 s (median {np.median(every):.2f} s); clips are 20 s (audio.clip_seconds): "
        f"most recordings fill less than half a clip, padded with silence; a shorter --clip-seconds trains faster "
        f"(--clip-seconds {holds:g} holds all of them whole)"]
    lines.clear()
    prepare_dataset(config_for(tmp_path / "data", tmp_path, **{"audio.clip_seconds": 4.0}), tmp_path / "run4",
                    log=lines.append)
    assert (f"data: recordings last 0.30-8.00 s (median {np.median(every):.2f} s); clips are 4 s (audio.clip_seconds): "
            f"6 of 12 recordings are longer than a clip, and training crops a random 4-s part of each per epoch, which "
            f"may cut their sound; --clip-seconds {holds:g} holds all of them whole") in lines, lines
    lines.clear()
    prepare_dataset(config_for(tmp_path / "data", tmp_path, **{"audio.clip_seconds": 8.0}), tmp_path / "run8",
                    log=lines.append)
    assert f"data: recordings last 0.30-8.00 s (median {np.median(every):.2f} s); clips are 8 s (audio.clip_seconds)" \
        in lines, lines


def test_the_lengths_line_names_the_recordings_a_clip_cuts_and_the_clip_that_holds_them(tmp_path):
    """Session 49's keyword-spotting walkthrough: spoken digits of 0.19-1.15 s (median 0.40 s) at the Speech Commands
    recipe's 1-s clips were told 'a shorter --clip-seconds trains faster', and at --clip-seconds 0.5 a quarter of the
    words were cropped at random each epoch without a word. Where most recordings fit a clip, 10% or more that do not
    are counted, and a --clip-seconds that holds 95% of them whole (up to a tenth of a second) is named."""
    from sound_tf.audio import write_wav
    from sound_tf.datasets import lengths_line

    def files(seconds: list[float]) -> list[str]:
        paths = []
        for i, length in enumerate(seconds):
            path = tmp_path / f"{len(seconds)}_{i:03d}.wav"
            write_wav(path, np.zeros(round(length * RATE_HZ), np.float32), RATE_HZ)
            paths.append(str(path))
        return paths

    # 20 words: 15 of 0.3-0.44 s, 4 of 0.6-0.75 s, one of 1.15 s (the 95th percentile: 0.77 s)
    words = files([0.30 + 0.01 * i for i in range(15)] + [0.6, 0.65, 0.7, 0.75, 1.15])
    head = "data: recordings last 0.30-1.15 s (median 0.40 s); clips are"
    assert lengths_line(words, RATE_HZ, 1.0) == (
        f"{head} 1 s (audio.clip_seconds): most recordings fill less than half a clip, padded with silence; a shorter "
        f"--clip-seconds trains faster (--clip-seconds 0.8 holds 95% of them whole)")
    assert lengths_line(words, RATE_HZ, 0.5) == (
        f"{head} 0.5 s (audio.clip_seconds): 5 of 20 recordings are longer than a clip, and training crops a random "
        f"0.5-s part of each per epoch, which may cut their sound; --clip-seconds 0.8 holds 95% of them whole")
    assert lengths_line(words, RATE_HZ, 0.7) == (  # 2 of 20 (10%): still said
        f"{head} 0.7 s (audio.clip_seconds): 2 of 20 recordings are longer than a clip, and training crops a random "
        f"0.7-s part of each per epoch, which may cut their sound; --clip-seconds 0.8 holds 95% of them whole")
    assert lengths_line(words, RATE_HZ, 0.75) == f"{head} 0.75 s (audio.clip_seconds)"  # 1 of 20 (5%): not
    # Recordings of the clip's length (Speech Commands' 1-s files, ESC-50's 5-s ones) are not cut: nothing said
    assert lengths_line(files([1.0] * 10), RATE_HZ, 1.0) == (
        "data: recordings last 1.00-1.00 s (median 1.00 s); clips are 1 s (audio.clip_seconds)")
    # Short recordings that all fit a clip of the shorter length
    assert lengths_line(files([0.5] * 4), RATE_HZ, 2.0).endswith(
        "a shorter --clip-seconds trains faster (--clip-seconds 0.5 holds all of them whole)")
    # 199 of 200 held is not all of them, nor '100%' (99.5% rounded to nearest): the share is rounded down
    assert lengths_line(files([0.3] * 199 + [0.9]), RATE_HZ, 1.0).endswith(
        "a shorter --clip-seconds trains faster (--clip-seconds 0.3 holds 99% of them whole)")
    # Most under half a clip, but 5 of 12 longer than it: cut, not told to shorten the clip
    assert lengths_line(files([0.2] * 7 + [3.0] * 5), RATE_HZ, 1.0) == (
        "data: recordings last 0.20-3.00 s (median 0.20 s); clips are 1 s (audio.clip_seconds): 5 of 12 recordings "
        "are longer than a clip, and training crops a random 1-s part of each per epoch, which may cut their sound; "
        "--clip-seconds 3 holds all of them whole")



def test_recordings_below_the_training_rate_are_said_to_be_upsampled(tmp_path):
    """FSDD's 8-kHz digits trained at the default 16 kHz were upsampled without a word: their features above 4 kHz
    held no sound (the generated noise alone filled them), and nothing named the --sample-rate that matches them."""
    for label in ("cat", "dog", "owl"):
        for i in range(4):
            path = tmp_path / "data" / label / f"{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, sine(300.0 + 50 * i, 0.5, 8000), 8000, subtype="PCM_16")
    lines: list[str] = []
    prepare_dataset(config_for(tmp_path / "data", tmp_path, **{"audio.sample_rate_hz": 16000}), tmp_path / "run16",
                    log=lines.append)
    assert [line for line in lines if " Hz, below " in line] == [
        "data: 12 of 12 recordings are 8000 Hz, below audio.sample_rate_hz 16000: upsampled, so their features above "
        "4000 Hz hold no sound; --sample-rate 8000 matches them and trains faster"], lines
    lines.clear()  # at their own rate, or below it: nothing to say
    for rate_hz in (8000, 4000):
        prepare_dataset(config_for(tmp_path / "data", tmp_path, **{"audio.sample_rate_hz": rate_hz}),
                        tmp_path / f"run{rate_hz}", log=lines.append)
    assert not [line for line in lines if "below audio.sample_rate_hz" in line], lines
    # A few below among recordings at 22.05 kHz: said, with no rate to match them (most are above it)
    for label in ("cat", "dog", "owl"):
        for i in range(4, 10):
            sf.write(tmp_path / "data" / label / f"{i}.wav", sine(440.0, 0.5, 22050), 22050, subtype="PCM_16")
    sf.write(tmp_path / "data" / "owl" / "0.wav", sine(440.0, 0.5, 11025), 11025, subtype="PCM_16")
    lines.clear()
    prepare_dataset(config_for(tmp_path / "data", tmp_path, **{"audio.sample_rate_hz": 16000}), tmp_path / "mixed",
                    log=lines.append)
    assert [line for line in lines if " below " in line] == [
        "data: 12 of 30 recordings are 8000-11025 Hz, below audio.sample_rate_hz 16000: upsampled, so their features "
        "above 4000-5512.5 Hz hold no sound"], lines


def test_the_rates_line_reads_a_bounded_sample_and_suggests_only_a_rate_that_keeps_every_recordings_sound(tmp_path):
    """Every run read every source header (Speech Commands: 105,829 files, seconds to minutes per run for a line that
    is usually absent); a rate was suggested when most recordings were below it, also when the rest were above it
    (--sample-rate 8000 for 8-kHz and 44.1-kHz files cut the 44.1-kHz ones' band), and with 8 and 11.025 kHz
    files "--sample-rate 11025 matches them" though the 8-kHz ones are still upsampled."""
    from sound_tf.datasets import rates_line

    def wavs(rate: int, count: int, start: int) -> list[str]:
        paths = []
        for i in range(start, start + count):
            path = tmp_path / f"{i:03d}.wav"
            sf.write(path, sine(300.0, 0.1, rate), rate, subtype="PCM_16")
            paths.append(str(path))
        return paths

    eight, cd = wavs(8000, 20, 0), wavs(44100, 10, 20)
    assert rates_line(eight + cd, 16000) == (
        "data: 20 of 30 recordings are 8000 Hz, below audio.sample_rate_hz 16000: upsampled, so their features above "
        "4000 Hz hold no sound")
    assert rates_line(eight + cd, 16000, most=10) == (
        "data: 7 of the 10 checked (of 30) recordings are 8000 Hz, below audio.sample_rate_hz 16000: upsampled, so "
        "their features above 4000 Hz hold no sound")
    eleven = wavs(11025, 5, 30)
    assert rates_line(eight + eleven, 16000) == (
        "data: 25 of 25 recordings are 8000-11025 Hz, below audio.sample_rate_hz 16000: upsampled, so their features "
        "above 4000-5512.5 Hz hold no sound; --sample-rate 11025 (the highest of them) keeps all of their sound and "
        "trains faster")
    assert rates_line(eight + eleven, 11025) == (
        "data: 20 of 25 recordings are 8000 Hz, below audio.sample_rate_hz 11025: upsampled, so their features above "
        "4000 Hz hold no sound")


# -- Speech Commands -------------------------------------------------------------------------------
def _relative(root: Path, examples) -> list[str]:
    """The examples' (or items') paths from ``root``, as the official lists write them, sorted."""
    return sorted(Path(getattr(ex, "path", None) or ex.source).relative_to(root.absolute()).as_posix()
                  for ex in examples)


def _list_of(root: Path, name: str) -> list[str]:
    return sorted(line for line in (root / name).read_text().splitlines() if line)


def test_a_speech_commands_folder_is_detected_by_its_lists_or_its_noise_folder_and_speaker_names(tmp_path):
    """It was read as a folder per class: ``_background_noise_`` a class, the lists not read."""
    assert detect_format(make_speech_commands(tmp_path / "sc")) == "speech_commands"
    without_lists = make_speech_commands(tmp_path / "partial", lists=False)
    assert detect_format(without_lists) == "speech_commands"
    # Neither lists nor a noise folder: nothing says what the names mean; a plain folder of classes
    shutil.rmtree(without_lists / "_background_noise_")
    assert detect_format(without_lists) == "folder"
    # A noise folder beside files not named <speaker>_nohash_<n>: a folder dataset with a class of that name
    plain = make_folder_tree(tmp_path / "plain")
    write_tone(plain / "_background_noise_" / "hum.wav")
    assert detect_format(plain) == "folder"


def test_speech_commands_words_speakers_and_folds_come_from_the_tree_and_its_lists(tmp_path, caplog):
    root = make_speech_commands(tmp_path / "speech_commands_v0.02")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        examples = load_examples(root)
    assert caplog.text == ""  # the READMEs, the lists and the noise folder are not left-out data
    assert Counter(ex.label for ex in examples) == {"yes": 12, "no": 12, "up": 12}  # no _background_noise_ class
    assert all(ex.group == Path(ex.path).name.split("_nohash_")[0] for ex in examples)
    assert {ex.group for ex in examples} == set(SPEECH_SPEAKERS)
    assert _relative(root, [ex for ex in examples if ex.fold == 2]) == _list_of(root, "validation_list.txt")
    assert _relative(root, [ex for ex in examples if ex.fold == 3]) == _list_of(root, "testing_list.txt")
    assert {ex.group for ex in examples if ex.fold == 1} == set(SPEECH_SPEAKERS[:4])
    assert Counter(ex.fold for ex in examples) == {1: 24, 2: 6, 3: 6}
    assert load_examples(root, "speech_commands") == examples
    # The same tree without its lists: no folds (split by speaker), the same words and speakers
    bare = make_speech_commands(tmp_path / "bare", lists=False)
    unlisted = load_examples(bare)
    assert {ex.fold for ex in unlisted} == {None}
    assert [(ex.label, ex.group) for ex in unlisted] == [(ex.label, ex.group) for ex in examples]


def test_speech_commands_lists_with_val_from_training_are_refused_naming_the_list_and_the_fix(tmp_path):
    """data.val_from 'training' pooled validation_list.txt into training and validated on a share of every speaker but
    the test list's, without a word; the lists are the benchmark's split, so train and tune refuse it before
    TensorFlow starts (check_source) and prepare_dataset too, nothing written. crossval, whose folds are by speaker,
    and a copy without the lists (no folds: drawn by speaker either way) are not refused."""
    from sound_tf.datasets import check_source

    root = make_speech_commands(tmp_path / "sc")
    config = config_for(root, tmp_path, **{"data.val_from": "training"})
    message = (f"{root}: data.val_from 'training' (--val-from training) would train on Speech Commands' "
               f"validation_list.txt too, and validate on a data.val_fraction 0.15 drawn from it and the training "
               f"speakers: the two lists are the benchmark's split, each speaker in one, and its validation is "
               f"validation_list.txt; leave --val-from training out (or give --val-from fold), or cross-validate by "
               f"speaker with python -m sound_tf.crossval")
    with pytest.raises(DatasetError) as info:
        check_source(config)
    assert str(info.value) == message
    with pytest.raises(DatasetError) as info:
        prepare_dataset(config, tmp_path / "run", log=lambda _: None)
    assert str(info.value) == message and not (tmp_path / "run" / "split.csv").exists()
    check_source(config, cross_validation=True)
    check_source(config_for(root, tmp_path))  # val_from fold: the lists split it
    bare = make_speech_commands(tmp_path / "bare", lists=False)
    check_source(config_for(bare, tmp_path, **{"data.val_from": "training"}))
    prepared = prepare_dataset(config_for(bare, tmp_path, **{"data.val_from": "training"}), tmp_path / "bare-run",
                               log=lambda _: None)
    assert all(prepared.splits[name] for name in SPLITS)


def test_speech_commands_splits_are_the_official_lists_and_keep_each_speaker_in_one(tmp_path):
    root = make_speech_commands(tmp_path / "sc")
    lines: list[str] = []
    prepared = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lines.append)
    assert prepared.labels == ("no", "up", "yes")
    assert _relative(root, prepared.splits["val"]) == _list_of(root, "validation_list.txt")
    assert _relative(root, prepared.splits["test"]) == _list_of(root, "testing_list.txt")
    listed = set(_list_of(root, "validation_list.txt") + _list_of(root, "testing_list.txt"))
    assert _relative(root, prepared.splits["train"]) == sorted(
        path.relative_to(root).as_posix() for path in root.glob("[!_]*/*.wav") if path.relative_to(root).as_posix()
        not in listed)
    speakers = {name: {item.group for item in prepared.splits[name]} for name in SPLITS}
    assert speakers == {"train": set(SPEECH_SPEAKERS[:4]), "val": {SPEECH_SPEAKERS[4]}, "test": {SPEECH_SPEAKERS[5]}}
    assert lines[-1] == ("data: 36 files, 3 classes, decoded 36 / reused 0, skipped 0; train 24, val 6, test 6 "
                         "(speech_commands, split from the data's folds (2: validation_list.txt, 3: testing_list.txt, "
                         "1: the rest))")
    written = read_split_csv(tmp_path / "run" / "split.csv")
    assert {ex.group for ex in written["test"]} == {SPEECH_SPEAKERS[5]}


def test_speech_commands_without_lists_splits_by_speaker(tmp_path):
    """A copy without its lists (or recordings of one's own in its layout) is split by the fractions, each
    speaker's recordings in one split."""
    root = make_speech_commands(tmp_path / "sc", lists=False)
    lines: list[str] = []
    prepared = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lines.append)
    assert prepared.labels == ("no", "up", "yes")
    speakers = {name: {item.group for item in prepared.splits[name]} for name in SPLITS}
    assert [len(speakers[name]) for name in SPLITS] == [4, 1, 1]  # 15% of 36 clips: one speaker's 6
    assert set.union(*speakers.values()) == set(SPEECH_SPEAKERS)
    assert all(Counter(item.label for item in prepared.splits[name]) == {"yes": 2 * len(speakers[name]),
                                                                          "no": 2 * len(speakers[name]),
                                                                          "up": 2 * len(speakers[name])}
               for name in SPLITS)
    assert lines[-2].endswith("train 24, val 6, test 6 (speech_commands, split computed)")
    (val,), (test,) = speakers["val"], speakers["test"]
    assert lines[-1] == f"data: each speaker in one split (the file names): val speaker {val}; test speaker {test}; " \
                        f"train 4 speakers"


def test_word_folders_copied_without_lists_or_noise_folder_warn_that_speakers_are_not_grouped(tmp_path, caplog):
    """Some word folders copied out of Speech Commands (neither lists nor _background_noise_) are a folder of
    classes, each file its own group: the drawn split put speakers in training and test alike, and nothing said
    so; the warning names --format speech_commands, which keeps each speaker in one split."""
    root = make_speech_commands(tmp_path / "words", lists=False)
    shutil.rmtree(root / "_background_noise_")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        prepared = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lambda _: None)
    speakers = {name: {Path(item.source).name.split("_nohash_")[0] for item in prepared.splits[name]}
                for name in SPLITS}
    assert speakers["train"] & speakers["test"]  # what the warning is about
    assert [record.getMessage() for record in caplog.records] == [
        f"every file under {root} is named <speaker>_nohash_<n>, as Speech Commands' are, but the folder holds "
        f"neither its lists (validation_list.txt and testing_list.txt) nor _background_noise_, so it is read as a "
        f"folder of classes, each file its own group: the 6 speakers' recordings can fall in training and test "
        f"alike; --format speech_commands keeps each speaker's in one split or fold (and trains with its recipe)"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        grouped = prepare_dataset(config_for(root, tmp_path, **{"data.format": "speech_commands"}),
                                  tmp_path / "grouped", log=lambda _: None)
        prepare_dataset(config_for(make_folder_tree(tmp_path / "plain"), tmp_path), tmp_path / "plain_run",
                        log=lambda _: None)  # names that tell no speaker
    assert caplog.records == []
    assert [len({item.group for item in grouped.splits[name]}) for name in SPLITS] == [4, 1, 1]


def test_a_missing_file_a_speech_commands_list_names_is_skipped_and_reported(tmp_path):
    """As ESC-50's: kept as an example, reported in skipped.csv by the decoding (with the list's line, as ESC-50's
    metadata row is named), its split one file short."""
    root = make_speech_commands(tmp_path / "sc")
    gone = root / _list_of(root, "testing_list.txt")[0]
    gone.unlink()
    prepared = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lambda _: None)
    reason = f"file not found (listed on line 1 of {(root / 'testing_list.txt').absolute()})"
    assert prepared.skipped == [(str(gone.absolute()), reason)]
    with (tmp_path / "run" / "skipped.csv").open() as handle:
        assert list(csv.DictReader(handle)) == [{"path": str(gone.absolute()), "reason": reason}]
    assert [len(prepared.splits[name]) for name in SPLITS] == [24, 6, 5]
    assert str(gone.absolute()) not in {item.source for name in SPLITS for item in prepared.splits[name]}


def test_the_listed_files_of_a_word_whose_folder_was_removed_are_left_out_with_a_warning(tmp_path, caplog):
    """A copy of some words only, with the official lists: the removed word's listed files were a class with no
    readable training example, which stopped training ('class(es) up have no readable training example; ...
    remove the class'), and evaluate --data would have called them unknown labels."""
    root = make_speech_commands(tmp_path / "sc")
    shutil.rmtree(root / "up")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        examples = load_examples(root)
    assert Counter(ex.label for ex in examples) == {"yes": 12, "no": 12}
    assert Counter(ex.fold for ex in examples) == {1: 16, 2: 4, 3: 4}
    assert [record.getMessage() for record in caplog.records] == [
        f"4 files named in validation_list.txt and testing_list.txt are of 1 word with no recordings in {root} "
        f"and are not used (up: 4): that word is not a class"]
    prepared = prepare_dataset(config_for(root, tmp_path), tmp_path / "run", log=lambda _: None)
    assert prepared.labels == ("no", "yes")
    assert ([len(prepared.splits[name]) for name in SPLITS], prepared.skipped) == ([16, 4, 4], [])
    # A file missing from a word that is still there is kept, and reported as skipped when decoded
    gone = root / _list_of(root, "testing_list.txt")[0]
    gone.unlink()
    assert str(gone) in {ex.path for ex in load_examples(root)}


def test_speech_commands_lists_written_on_windows_are_read_as_the_official_ones(tmp_path):
    """A list saved on Windows (backslashes, CRLF line ends, a byte order mark) names the same files: the
    backslashes were refused as "not a path <word>/<file>"."""
    root = make_speech_commands(tmp_path / "sc")
    official = load_examples(root)
    for name in ("validation_list.txt", "testing_list.txt"):
        listed = _list_of(root, name)
        (root / name).write_bytes(b"\xef\xbb\xbf" + "".join(f"{line.replace('/', chr(92))}\r\n"
                                                            for line in listed).encode())
    assert load_examples(root) == official
    assert Counter(ex.fold for ex in official) == {1: 24, 2: 6, 3: 6}


@pytest.mark.parametrize("case, message", [
    ("one list", r"sc: holds validation_list.txt but not testing_list.txt; the two lists make the official split"),
    ("noise listed", r"testing_list.txt, line 7: _background_noise_/white_noise.wav is in _background_noise_, which "
                     r"holds background noise, not a word to recognise"),
    ("in both lists", r"testing_list.txt, line 7: yes/4eaf3b5a_nohash_1.wav is already listed \(validation_list.txt, "
                      r"line 6\); list each file once"),
    ("twice in one", r"testing_list.txt, line 7: no/5fb04c6b_nohash_0.wav is already listed \(line 1\)"),
    ("no word folder", r"testing_list.txt, line 7: 'yes_nohash_0.wav' is not a path <word>/<file> relative to"),
])
def test_speech_commands_lists_that_cannot_be_the_split_are_refused_naming_the_line(tmp_path, case, message):
    root = make_speech_commands(tmp_path / "sc")
    testing = root / "testing_list.txt"
    added = {"noise listed": "_background_noise_/white_noise.wav", "in both lists": "yes/4eaf3b5a_nohash_1.wav",
             "twice in one": "no/5fb04c6b_nohash_0.wav", "no word folder": "yes_nohash_0.wav"}
    if case == "one list":
        testing.unlink()
    else:
        testing.write_text(testing.read_text() + added[case] + "\n")
    with pytest.raises(DatasetError, match=message):
        load_examples(root)


# -- the split's edges, as a mutation audit of the split code found them unguarded ------------------------------
def test_a_drawn_split_is_the_same_whatever_order_the_examples_are_listed_in():
    """A manifest's rows in another order list the same files: the same seed draws the same split (each split
    keeps the input's order), as groups are dealt from their sorted names, not from where they are listed."""
    examples = [Example(f"/d/{label}/{r}_{k}.wav", label, group=f"{label}{r}")
                for label in ("a", "b") for r in range(8) for k in range(1 + r % 3)]
    reordered = examples[::-1]
    for seed in range(4):
        splits, again = split_examples(examples, seed=seed), split_examples(reordered, seed=seed)
        assert {name: sorted(ex.path for ex in exs) for name, exs in again.items()} == \
            {name: sorted(ex.path for ex in exs) for name, exs in splits.items()}, seed
        assert again["test"] == [ex for ex in reordered if ex in splits["test"]]


def test_two_groups_across_folds_are_counted_in_the_plural_and_files_without_a_group_are_no_group(caplog):
    """'2 groups have', not 'has'; and files without a group (ESC-50-like folds of single files) are each their
    own group, in one fold, so nothing is said of them."""
    spread = [Example(f"/x/{i}.wav", "ab"[i % 2], fold=1 + i % 3, group=f"g{i}" if i > 3 else f"s{i // 2}")
              for i in range(12)]
    ungrouped = [dataclasses.replace(ex, group=None) for ex in spread]
    mixed = [dataclasses.replace(ex, group=None) if i < 6 else dataclasses.replace(ex, group=f"g{i}")
             for i, ex in enumerate(spread)]
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        split_examples(spread, test_fold=1)
        split_examples(ungrouped, test_fold=1)
        split_examples(mixed, test_fold=1)
    across = sorted({ex.group for ex in spread if len({e.fold for e in spread if e.group == ex.group}) > 1})
    assert across == ["s0", "s1"]
    assert [record.getMessage().split(": held-out")[0] for record in caplog.records] == [
        f"{len(across)} groups have clips in more than one fold (e.g. {across[0]})"]


def test_write_split_csv_refuses_one_file_under_two_spellings_of_its_path(tmp_path):
    """/x/a.wav and /x/./a.wav are one file, which read_split_csv (normalising the paths) refuses as listed twice."""
    splits = {"train": [Example("/x/a.wav", "d"), Example("/x/b.wav", "d")], "test": [Example("/x/./a.wav", "d")]}
    with pytest.raises(DatasetError, match=r"/x/\./a.wav is listed twice \(in the train and test splits\)"):
        write_split_csv(tmp_path / "split.csv", splits)
    assert not (tmp_path / "split.csv").exists()


def test_a_runs_split_csv_with_fold_0_keeps_its_groups(tmp_path):
    """A run's own split.csv holding fold 0 (read without the fold check) keeps each file's group, and an empty
    group cell is no group, as for any other fold."""
    path = tmp_path / "split.csv"
    rows = [("train", "a.wav", "x", 0, "rec1"), ("train", "b.wav", "y", 0, ""), ("test", "c.wav", "x", 1, "rec2")]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("split", "path", "label", "fold", "group"), *rows])
    splits = read_split_csv(path, run_file=True)
    read = [(name, Path(ex.path).name, ex.label, ex.fold, ex.group) for name in SPLITS for ex in splits[name]]
    assert read == [(name, file, label, fold, group or None) for name, file, label, fold, group in rows]
    assert [ex.group_key for ex in splits["train"]] == ["rec1", f"path:{tmp_path / 'b.wav'}"]


def test_the_lengths_line_speaks_only_beyond_twice_and_below_half_a_clip(tmp_path):
    """README: a word after a colon when most recordings are over twice a clip or under half of one; a median of
    exactly 2 or 0.5 clips is neither."""
    from sound_tf.audio import write_wav
    from sound_tf.datasets import lengths_line

    def line(seconds, clip_seconds):
        files = [write_wav(tmp_path / f"{n}_{s}.wav", np.zeros(round(s * RATE_HZ), np.float32), RATE_HZ)
                 for n, s in enumerate(seconds)]
        return lengths_line([str(f) for f in files], RATE_HZ, clip_seconds)

    for clip_seconds in (1.0, 0.5):
        median = 2 * clip_seconds  # not over twice a clip: the line names the recordings cut (2 of 3), not the crop
        assert line([median / 2, median, 3 * median], clip_seconds) == (
            f"data: recordings last {median / 2:.2f}-{3 * median:.2f} s (median {median:.2f} s); clips are "
            f"{clip_seconds:g} s (audio.clip_seconds): 2 of 3 recordings are longer than a clip, and training crops "
            f"a random {clip_seconds:g}-s part of each per epoch, which may cut their sound; --clip-seconds "
            f"{3 * median:g} holds all of them whole")
        assert line([median, median + 0.25, 4], clip_seconds).startswith(
            f"data: recordings last {median:.2f}-4.00 s (median {median + 0.25:.2f} s); clips are {clip_seconds:g} s "
            f"(audio.clip_seconds): training crops a random {clip_seconds:g}-s part")
        half = clip_seconds / 2
        assert line([half / 2, half, clip_seconds], clip_seconds).endswith("(audio.clip_seconds)")  # none cut
        assert line([half / 4, half - 0.125, clip_seconds], clip_seconds).endswith(
            ": most recordings fill less than half a clip, padded with silence; a shorter --clip-seconds trains faster")


def test_the_rates_line_names_a_rate_when_every_recording_read_is_below_it(tmp_path):
    """The rate is named when every recording whose header was read is below the training rate: of a sample of
    them (``most``), or beside a file whose header cannot be read (its rate unknown, left out of the count)."""
    from sound_tf.datasets import rates_line

    paths = []
    for i, rate in enumerate([8000] * 20 + [11025] * 5):
        sf.write(tmp_path / f"{i:03d}.wav", sine(300.0, 0.1, rate), rate, subtype="PCM_16")
        paths.append(str(tmp_path / f"{i:03d}.wav"))
    sampled = [paths[i * len(paths) // 10] for i in range(10)]
    high = max(sf.info(path).samplerate for path in sampled)
    assert high == 11025
    assert rates_line(paths, 16000, most=10) == (
        f"data: 10 of the 10 checked (of {len(paths)}) recordings are 8000-{high} Hz, below audio.sample_rate_hz "
        f"16000: upsampled, so their features above 4000-{high / 2:g} Hz hold no sound; --sample-rate {high} (the "
        f"highest of them) keeps all of their sound and trains faster")
    (tmp_path / "broken.wav").write_bytes(b"RIFF-not-a-wave")
    assert rates_line(paths[:20] + [str(tmp_path / "broken.wav")], 16000) == (
        "data: 20 of 20 recordings are 8000 Hz, below audio.sample_rate_hz 16000: upsampled, so their features above "
        "4000 Hz hold no sound; --sample-rate 8000 matches them and trains faster")


def test_a_manifest_beside_the_folders_read_as_classes_is_named(tmp_path, caplog):
    """'--data factory/' of factory/manifest.csv beside audio/ and noise/ (session 50's walkthrough) trained the
    classes 'audio' and 'noise', without a word of the manifest the user meant. A CSV with path and label
    columns beside the class folders is named, with the --data that reads it; another CSV is not."""
    root = tmp_path / "factory"
    for name in ("audio/a.wav", "audio/b.wav", "noise/n.wav"):
        write_tone(root / name)
    (root / "manifest.csv").write_text("path,label,machine_id\naudio/a.wav,normal,m1\naudio/b.wav,fault,m2\n")
    (root / "notes.csv").write_text("machine,site\nm1,hall 2\n")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert sorted({ex.label for ex in load_examples(root)}) == ["audio", "noise"]  # still the folders
    assert (f"{root} holds manifest.csv, a manifest of path,label rows, beside the folders read as classes (audio, "
            f"noise): format 'folder' takes each subfolder as a class and does not read it; to train on its labels, "
            f"give it as data.path (--data {root / 'manifest.csv'})") in caplog.text
    caplog.clear()
    (root / "manifest.csv").unlink()
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        load_examples(root)
    assert "manifest" not in caplog.text


# -- data.group_pattern: groups from the file names --------------------------------------------------------
SPEAKER_PATTERN = r"^\d+_([a-z]+)_"
DIGIT_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def make_digit_folders(root: Path, speakers=DIGIT_SPEAKERS, takes: int = 2) -> Path:
    """FSDD laid out as a folder per digit: ``root/<digit name>/<digit>_<speaker>_<take>.wav``, a tone each."""
    for digit, name in enumerate(("zero", "one", "two")):
        for s, speaker in enumerate(speakers):
            for take in range(takes):
                write_tone(root / name / f"{digit}_{speaker}_{take}.wav", 300.0 + 200 * digit + 10 * s + take)
    return root


def _speakers_by_split(prepared) -> dict[str, set[str]]:
    """The speaker each split's files name (``<digit>_<speaker>_<take>``), read from the file names."""
    return {name: {Path(item.source).stem.split("_")[1] for item in prepared.splits[name]} for name in SPLITS}


def test_group_pattern_groups_a_folder_by_speaker_so_no_speaker_is_in_two_splits(tmp_path):
    """FSDD as digit folders split file by file put every speaker in training and test; data.group_pattern gives each
    file the speaker its name holds, the split keeps each speaker whole, the log says so and names the speakers
    validation and test hold (split.csv alone did), and split.csv keeps the groups."""
    root = make_digit_folders(tmp_path / "digits")
    plain_lines: list[str] = []
    plain = prepare_dataset(config_for(root, tmp_path), tmp_path / "plain", log=plain_lines.append)
    assert not any(line.startswith("data: each group in one split") for line in plain_lines), plain_lines
    alone = _speakers_by_split(plain)
    assert alone["train"] & alone["test"] and alone["train"] & alone["val"]  # what the pattern is for
    lines: list[str] = []
    prepared = prepare_dataset(config_for(root, tmp_path, **{"data.group_pattern": SPEAKER_PATTERN}),
                               tmp_path / "grouped", log=lines.append)
    speakers = _speakers_by_split(prepared)
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                or speakers["val"] & speakers["test"])
    assert set.union(*speakers.values()) == set(DIGIT_SPEAKERS)
    assert all(item.group == Path(item.source).stem.split("_")[1] for name in SPLITS for item in prepared.splits[name])
    first = Path(load_examples(root)[0].path).stem
    assert (f"data: 6 groups from data.group_pattern '{SPEAKER_PATTERN}' ({first}: {first.split('_')[1]}); a group's "
            f"files share one split or fold") in lines
    held = {name: ("group " if len(speakers[name]) == 1 else "groups ") + ", ".join(sorted(speakers[name]))
            for name in ("val", "test")}
    assert (f"data: each group in one split (data.group_pattern): val {held['val']}; test {held['test']}; "
            f"train {len(speakers['train'])} groups") in lines, lines
    saved = read_split_csv(tmp_path / "grouped" / "split.csv")
    assert {ex.group for name in SPLITS for ex in saved[name]} == set(DIGIT_SPEAKERS)


def test_group_pattern_names_the_files_it_does_not_match_in_one_line(tmp_path, caplog):
    """A file whose name the pattern does not match is a group of its own; one warning counts them and names one."""
    from sound_tf.datasets import group_by_pattern

    root = make_digit_folders(tmp_path / "digits", speakers=("george", "theo"))
    for i in range(3):
        write_tone(root / "one" / f"take{i}.wav")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        examples, line = group_by_pattern(load_examples(root), SPEAKER_PATTERN, root, "folder")
    assert {Path(ex.path).stem: ex.group for ex in examples if ex.group is None} == {f"take{i}": None for i in range(3)}
    assert Counter(ex.group for ex in examples if ex.group is not None) == {"george": 6, "theo": 6}
    assert line is not None and line.startswith("data: 2 groups from")
    assert [record.getMessage() for record in caplog.records] == [
        f"data.group_pattern '{SPEAKER_PATTERN}' does not match 3 of the 15 file names (e.g. 'take0'): each of them "
        f"is a group of its own, free to fall in any split or fold"]


def test_a_group_pattern_that_matches_no_file_name_is_an_error(tmp_path):
    """A pattern that matches nothing is a mistake (a typo, a name's other layout), not 'every file its own group'."""
    root = make_digit_folders(tmp_path / "digits", speakers=("george", "theo"))
    first = Path(load_examples(root)[0].path).stem
    with pytest.raises(DatasetError, match=re.escape(
            f"{root}: data.group_pattern '^speaker-(\\w+)' matches none of the 12 file names (e.g. '{first}'; it is "
            f"searched in the name without its extension")):
        prepare_dataset(config_for(root, tmp_path, **{"data.group_pattern": r"^speaker-(\w+)"}), tmp_path / "run",
                        log=lambda _: None)
    assert not (tmp_path / "run" / "split.csv").exists()


def test_group_pattern_leaves_the_groups_data_brings_and_groups_a_manifest_without_them(tmp_path, caplog):
    """A CSV's group column (and Speech Commands' speakers) are the data's own groups: kept, the pattern said unused.
    A manifest without a group column gets its groups from the pattern, as a folder does."""
    from sound_tf.datasets import group_by_pattern

    root = make_digit_folders(tmp_path / "digits", speakers=("george", "theo"))
    paths = sorted(root.rglob("*.wav"))
    (root / "grouped.csv").write_text("path,label,group\n" + "".join(
        f"{p.relative_to(root).as_posix()},{p.parent.name},room{p.stem[-1]}\n" for p in paths))
    (root / "plain.csv").write_text("path,label\n" + "".join(
        f"{p.relative_to(root).as_posix()},{p.parent.name}\n" for p in paths))
    own = load_examples(root / "grouped.csv")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert group_by_pattern(own, SPEAKER_PATTERN, root / "grouped.csv", "csv") == (own, None)
    assert {ex.group for ex in own} == {"room0", "room1"}
    assert [record.getMessage() for record in caplog.records] == [
        f"data.group_pattern '{SPEAKER_PATTERN}' is not used: the manifest's group column gives the groups"]
    plain, line = group_by_pattern(load_examples(root / "plain.csv"), SPEAKER_PATTERN, root / "plain.csv", "csv")
    assert Counter(ex.group for ex in plain) == {"george": 6, "theo": 6} and line is not None
    speech = load_examples(make_speech_commands(tmp_path / "sc"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        assert group_by_pattern(speech, r"^(\w+)_", tmp_path / "sc", "speech_commands") == (speech, None)
    assert "is not used: Speech Commands' file names give each file its speaker" in caplog.text


@pytest.mark.parametrize("pattern, message", [
    (r"^\d+_[a-z]+_", r"data.group_pattern '^\d+_[a-z]+_' has 0 capturing groups; it needs exactly one"),
    (r"^(\d+)_([a-z]+)_", r"data.group_pattern '^(\d+)_([a-z]+)_' has 2 capturing groups; it needs exactly one"),
    (r"^\d+_([a-z]+_", r"data.group_pattern '^\d+_([a-z]+_' is not a regular expression: missing ), unterminated "
                       r"subpattern"),
    ("", "data.group_pattern must be a regular expression with one capturing group (text), got ''"),
])
def test_a_group_pattern_without_exactly_one_group_or_that_does_not_compile_is_refused(pattern, message):
    """Checked with the other data settings (a recipe, --set, config.json), naming the setting and the problem."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_overrides(Config(), {"data.group_pattern": pattern})
    with pytest.raises(ConfigError, match=re.escape(
            f"data.split_file fixes every split, so data.group_pattern '{SPEAKER_PATTERN}' would not be used")):
        apply_overrides(Config(), {"data.group_pattern": SPEAKER_PATTERN, "data.split_file": "runs/r/split.csv"})


def test_a_folder_whose_names_share_a_speaker_field_across_classes_is_told_the_group_pattern_that_holds_it(
        tmp_path, caplog):
    """FSDD as digit folders, drawn file by file, put each speaker in training and test without a word (session 54:
    0.58 by file against 0.40 by speaker). The warning names the field, its values and a data.group_pattern; that
    pattern keeps each speaker in one split, and with it given nothing is said."""
    root = make_digit_folders(tmp_path / "digits")
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        plain = prepare_dataset(config_for(root, tmp_path), tmp_path / "plain", log=lambda _: None)
    first = Path(load_examples(root)[0].path).stem
    pattern = "^[^_]+_([^_]+)"
    assert [record.getMessage() for record in caplog.records] == [
        f"the file names under {root} share a field across their classes: field 2 of {first!r} holds 6 values "
        f"(george, jackson, lucas, nicolas, ...), each in all 3 classes; if it names a speaker or a source recording, "
        f"a split drawn file by file puts its recordings in training and test alike, scoring higher than new "
        f"speakers will: --set 'data.group_pattern={pattern}' keeps each in one split or fold"]
    alone = _speakers_by_split(plain)
    assert alone["train"] & alone["test"]  # what the warning is about
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"):
        grouped = prepare_dataset(config_for(root, tmp_path, **{"data.group_pattern": pattern}),
                                  tmp_path / "grouped", log=lambda _: None)
    assert not caplog.records
    speakers = _speakers_by_split(grouped)
    assert not (speakers["train"] & speakers["test"] or speakers["train"] & speakers["val"]
                or speakers["val"] & speakers["test"])


def _named(names_by_label: dict[str, list[str]]) -> list[Example]:
    return [Example(path=f"/data/{label}/{name}.wav", label=label) for label, names in names_by_label.items()
            for name in names]


def test_name_fields_that_are_takes_the_class_or_a_two_valued_condition_are_not_taken_for_groups():
    """What recurs across classes without being a group: take numbers (``dog_3``, the demo's names), take letters
    (ESC-50's ``1-100032-A-0`` copied into class folders), the class name itself, and a field of two values
    (``female``/``male``: holding one out would test on one sex alone); and a field spread over a single class
    in most of its values."""
    takes = _named({label: [f"{label}_{i}" for i in range(6)] for label in ("dog", "cat", "bird")})
    letters = _named({label: [f"{fold}-{100 * fold + k}-{take}-{k}" for fold in (1, 2) for take in "ABC"]
                      for k, label in enumerate(("dog", "cat", "bird"))})
    sexes = _named({label: [f"{label}_{sex}_{i}" for sex in ("female", "male") for i in range(3)]
                    for label in ("dog", "cat", "bird")})
    apart = _named({label: [f"take_{label}{s}x_{i}" for s in range(3) for i in range(2)] + [f"take_common_{label}"]
                    for label in ("dog", "cat", "bird")})
    assert [name_field_groups(examples) for examples in (takes, letters, sexes, apart)] == [None] * 4
    # The same names with a third speaker-like field: found, and its pattern gives each name its field.
    speakers = _named({label: [f"{label}-{who}-{i}" for who in ("ann", "bo", "cy") for i in range(2)]
                       for label in ("dog", "cat")})
    field = name_field_groups(speakers)
    assert (field.position, field.pattern, dict(field.values), field.spread) == (1, r"^[^\-]+\-([^\-]+)",
                                                                                   {"ann": 4, "bo": 4, "cy": 4},
                                                                                   (3, 2, 2))
    assert field.spread_words() == "each in all 2 classes"
    assert [re.search(field.pattern, Path(ex.path).stem).group(1) for ex in speakers[:3]] == ["ann", "ann", "bo"]
    assert apply_overrides(Config(), {"data.group_pattern": SPEAKER_PATTERN}).data.group_pattern == SPEAKER_PATTERN
