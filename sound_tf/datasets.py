"""Labelled audio in, decoded train/val/test splits out: format detection, manifests, folds, splits.

Five layouts are read (``detect_format`` picks one), plus the built-in synthetic demo dataset:

``folder``
    One subfolder per class (``root/<label>/**/<file>``), files nested at any depth.
``csv``
    A manifest with columns ``path,label`` and optional ``fold`` and ``group``; paths relative to the
    CSV's folder.
``esc50``
    ESC-50 (``meta/esc50.csv``, ``audio/``), 5 official folds; group = ``src_file``.
``urbansound8k``
    UrbanSound8K (``metadata/UrbanSound8K.csv``, ``audio/fold*/``), 10 official folds; group = ``fsID``.
``speech_commands``
    Speech Commands (``<word>/<speaker>_nohash_<n>.wav``, ``validation_list.txt``, ``testing_list.txt``,
    ``_background_noise_/``): label = the word's folder, group = the speaker; the lists are folds 2 and 3,
    every other file fold 1 (so the default test and validation folds are the official split); the noise
    folder is no class. Without the lists, split by speaker with the fractions.

``group`` names the source recording: clips cut from one recording always land in the same split. Data whose files
bring no group (a folder per class, a CSV without ``group``) can take it from the file names with
``data.group_pattern`` (:func:`group_by_pattern`).
:func:`prepare_dataset` ties everything together for the training command: load, split (or reuse a
``split.csv``), decode once through :class:`~sound_tf.audio.DecodeCache`, report unreadable files in
``skipped.csv``.

This module must never import TensorFlow.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import math
import numbers
import os
import posixpath
import re
import shlex
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Mapping, Sequence

import numpy as np

from . import atomic
from .audio import (AUDIO_EXTENSIONS, SYSTEM_FILES, DecodeCache, cache_dir_of, convert_hint, is_audio_file,
                    is_convertible, is_hidden, source_rate_hz, walk_files, written_wav_seconds)
from .config import fold_below_1
from .demo_sounds import DEMO_CLASSES, MARKER_NAME, default_demo_dir, holds_only_demo_clips, make_demo_dataset
from .errors import AudioError, ConfigError, DatasetError, counted, is_whole

if TYPE_CHECKING:
    from .audio import CacheResult
    from .config import Config, DataConfig

__all__ = [
    "DEMO_CLASSES",
    "Example",
    "FORMATS",
    "Item",
    "PreparedData",
    "SPLITS",
    "assign_kfold",
    "check_source",
    "check_two_classes",
    "default_demo_dir",
    "detect_format",
    "group_by_pattern",
    "data_lines",
    "lengths_line",
    "load_examples",
    "longer_than_clip",
    "make_demo_dataset",
    "name_field_groups",
    "prepare_dataset",
    "rates_line",
    "read_split_csv",
    "split_examples",
    "split_shares_line",
    "warn_speakers_not_grouped",
    "write_split_csv",
]

logger = logging.getLogger(__name__)

FORMATS = ("folder", "csv", "esc50", "urbansound8k", "speech_commands")
SPLITS = ("train", "val", "test")
ESC50_META = Path("meta") / "esc50.csv"
US8K_META = Path("metadata") / "UrbanSound8K.csv"
#: Speech Commands: the background-noise folder (recordings to mix in, not a class), the lists that name the
#: validation and test files (by fold: every file they do not name is fold 1, training), and what a file's
#: name holds between the speaker and the take (``<speaker>_nohash_<n>.wav``).
SPEECH_COMMANDS_NOISE = "_background_noise_"
SPEECH_COMMANDS_LISTS = {2: "validation_list.txt", 3: "testing_list.txt"}
SPEECH_COMMANDS_NOHASH = "_nohash_"
#: Layouts whose folds are one fixed train/validation/test split, not folds to cross-validate over.
SPLIT_FOLD_FORMATS = ("speech_commands",)
SPLIT_CSV = "split.csv"
SKIPPED_CSV = "skipped.csv"
PROGRESS_EVERY_S = 10.0
SPLIT_COLUMNS = ("split", "path", "label", "fold", "group")
_EXPECTED_LAYOUTS = ("a folder with one subfolder of audio files per class, an ESC-50 folder (meta/esc50.csv), "
                     "an UrbanSound8K folder (metadata/UrbanSound8K.csv), a Speech Commands folder "
                     "(validation_list.txt, testing_list.txt), or a .csv manifest with columns path,label[,fold,group]")


@dataclass(frozen=True)
class Example:
    """One labelled audio file.

    Attributes
    ----------
    path : str
        The source file (absolute once loaded by :func:`load_examples`).
    label : str
    fold : int or None
        Official fold (ESC-50 1-5, UrbanSound8K 1-10, or a CSV's ``fold`` column); folds count from 1.
    group : str or None
        Source recording id; examples sharing a group never straddle splits. ``None`` means the file
        is its own group.

    Raises
    ------
    DatasetError
        ``fold`` is not a whole number (``True``, ``1.5``, ``"2"``) or is below 1 (naming ``path``), as the
        readers of a fold column refuse it (naming the line). A NumPy integer is kept as an ``int``.
    """

    path: str
    label: str
    fold: int | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        # Built in code (split_examples, assign_kfold, write_split_csv take these), fold 0 was one more fold,
        # True was fold 1 and "2" never equalled a fold 2.
        if self.fold is not None and not is_whole(self.fold):
            raise DatasetError(f"{self.path}: fold must be a whole number (folds count from 1) or None, "
                               f"got {self.fold!r}")
        if self.fold is not None:
            object.__setattr__(self, "fold", int(self.fold))  # a NumPy integer: split.csv and JSON take ints
        problem = _fold_below_1(self.fold)
        if problem is not None:
            raise DatasetError(f"{self.path}: {problem}")

    @property
    def group_key(self) -> str:
        """The group used for splitting (the path when no group is given)."""
        return self.group if self.group is not None else f"path:{self.path}"


@dataclass(frozen=True)
class Item:
    """A readable example with its decoded cache file and class index (what ``pipeline.py`` reads)."""

    source: str
    cached: str
    label: str
    label_index: int
    fold: int | None = None
    group: str | None = None


@dataclass(frozen=True)
class PreparedData:
    """Output of :func:`prepare_dataset`.

    Attributes
    ----------
    labels : tuple of str
        Sorted unique labels of all examples; ``Item.label_index`` indexes it.
    splits : dict
        ``{"train": [Item, ...], "val": [...], "test": [...]}``; unreadable files removed.
    skipped : list of (str, str)
        ``(path, reason)`` of every unreadable file.
    stats : dict
        Counts (files, classes, decoded, reused, skipped, per split and per class), the dataset root,
        format, split source and cache folder.
    """

    labels: tuple[str, ...]
    splits: dict[str, list[Item]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


# -- format detection and loading ------------------------------------------------------------------
def _iter_audio_files(folder: Path, *, ignored: list[Path] | None = None,
                      unlisted: list[OSError] | None = None) -> Iterable[Path]:
    """Audio files below ``folder`` at any depth, hidden files and folders skipped, in sorted order
    (:func:`.audio.walk_files`: linked folders are followed, each real folder once). Other files (not the
    system's own ``Thumbs.db``/``desktop.ini``) are appended to ``ignored``, and the errors of folders that
    cannot be listed to ``unlisted``, when given.
    """
    for path in walk_files(folder, unlisted=unlisted):
        if is_audio_file(path):
            yield path
        elif ignored is not None and path.name.lower() not in SYSTEM_FILES:
            ignored.append(path)


def _real_path(file: str | os.PathLike, real_folders: dict[str, str]) -> str:
    """``os.path.realpath(file)``, with each folder's real path resolved once in ``real_folders``: a file that is
    no symbolic link is its real folder's entry. ``realpath`` checked every part of every path, half of the time
    a folder of 100,000 recordings took to list."""
    if os.path.islink(file):
        return os.path.realpath(file)
    folder, name = os.path.split(file)
    real = real_folders.get(folder)
    if real is None:
        real = real_folders[folder] = os.path.realpath(folder)
    return os.path.join(real, name)


def _class_folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not is_hidden(p.name)), key=lambda p: p.name)


#: :func:`lengths_line`: a recording longer than the clip by no more than this is not cut (resampling's rounding).
CLIP_SLACK_SECONDS = 0.01
#: :func:`lengths_line`: the share of recordings longer than a clip that it names, where most fit a clip.
CROPPED_SHARE = 0.1


def lengths_line(cached: Sequence[str], rate_hz: int, clip_seconds: float) -> str:
    """``data: recordings last 0.30-8.00 s (median 2.10 s); ...``: the recordings' lengths against the clip
    length training crops or pads them to, read from the cache files' sizes (:func:`sound_tf.audio.written_wav_seconds`:
    no file is opened). Nothing said so: files of 0.3-8 s where a 0.5-s sound lies somewhere trained on random
    1-s crops that often missed it. Where most recordings fit a clip, it names how many do not when they are
    :data:`CROPPED_SHARE` or more (spoken words of 0.2-1.15 s trained on 0.5-s clips: a quarter of them cut, without
    a word), in place of the advice of a shorter clip when most are under half of one. With either advice it names
    the ``--clip-seconds`` that holds 95% of them whole. Train, tune and crossval log it once their data are
    decoded."""
    seconds = np.array([written_wav_seconds(path, rate_hz) for path in cached])
    low, median, high = float(seconds.min()), float(np.median(seconds)), float(seconds.max())
    line = (f"data: recordings last {low:.2f}-{high:.2f} s (median {median:.2f} s); clips are {clip_seconds:g} s "
            f"(audio.clip_seconds)")
    longer = int(np.count_nonzero(_cut_by_clip(seconds, clip_seconds)))
    # The clip length that holds most recordings whole: the shortest of their lengths that 95% or more fit in, up
    # to a tenth of a second (an interpolated 95th percentile fell between two lengths and held fewer: of 12
    # recordings, 7.45 s where 11 of 12, 92%, fit).
    at_95 = float(np.sort(seconds)[math.ceil(round(0.95 * seconds.size, 9)) - 1])
    holds = math.ceil(round(at_95 * 10, 6)) / 10
    fit = int(np.count_nonzero(seconds <= holds + CLIP_SLACK_SECONDS))
    # rounded down: 199 of 200 (99.5%) read '100%', which is all of them
    share = "all" if fit == seconds.size else f"{math.floor(round(100 * fit / seconds.size, 6))}%"
    whole = f"--clip-seconds {holds:g} holds {share} of them whole"
    if median > 2 * clip_seconds:
        line += (f": training crops a random {clip_seconds:g}-s part of each longer recording per epoch; if the "
                 f"sound fills only part of its file, a longer --clip-seconds sees it more often")
    elif longer >= CROPPED_SHARE * seconds.size:  # before the advice of a shorter clip, which would cut more
        line += (f": {longer} of {seconds.size} recordings are longer than a clip, and training crops a random "
                 f"{clip_seconds:g}-s part of each per epoch, which may cut their sound; {whole}")
    elif median < clip_seconds / 2:
        line += (": most recordings fill less than half a clip, padded with silence; a shorter --clip-seconds "
                 "trains faster" + (f" ({whole})" if holds < clip_seconds else ""))
    return line


def _cut_by_clip(seconds: np.ndarray, clip_seconds: float) -> np.ndarray:
    """Which recordings of ``seconds`` a clip of ``clip_seconds`` cuts: longer by more than
    :data:`CLIP_SLACK_SECONDS` (resampling's rounding), the one rule of :func:`lengths_line` and
    :func:`longer_than_clip`."""
    return seconds > clip_seconds + CLIP_SLACK_SECONDS


def longer_than_clip(cached: Sequence[str], rate_hz: int, clip_seconds: float) -> int:
    """How many decoded recordings (decode-cache files at ``rate_hz``, read from their sizes: no file is opened) a
    clip of ``clip_seconds`` cuts (:func:`_cut_by_clip`, as the data summary counts them): training crops a random
    clip of each, validation its first clip, so a sound in them can be cut. None of them: every recording is padded
    whole into its clip."""
    seconds = np.array([written_wav_seconds(path, rate_hz) for path in cached], dtype=np.float64)
    return int(np.count_nonzero(_cut_by_clip(seconds, clip_seconds)))


#: At most this many source headers are read for :func:`rates_line` (evenly spread over the recordings): on a
#: large dataset (Speech Commands' 105,829 files) every run read every header, seconds when warm and minutes on a
#: slow disk, for a line that is usually absent.
RATE_CHECK_FILES = 1000


#: :func:`split_shares_line`: a held-out split with this many times its fraction of the clips, or less than its
#: reciprocal, is far from it.
FAR_FROM_FRACTION = 1.5


def split_shares_line(counts: Mapping[str, int], val_fraction: float, test_fraction: float, *,
                      grouped: bool, group_source: str = "the group column") -> str | None:
    """A note when a drawn split's validation or test share of the clips (``counts``: clips per split) is far
    from its fraction (:data:`FAR_FROM_FRACTION`), ``None`` otherwise. The split takes whole groups per class
    (``grouped``: the data's groups, from ``group_source``, or a file each) and gives each held-out split at least
    one: with 4 speakers in a group column, validation and test held a quarter each against fractions of 0.15, and
    half the clips trained, with nothing in the log but the counts."""
    total = sum(counts.values())
    if total == 0:
        return None
    shares = {name: counts.get(name, 0) / total for name in ("val", "test")}
    fractions = {"val": val_fraction, "test": test_fraction}
    # rounded: 27 clips of 100 against 0.18 is 1.5 times it, which floating point makes 1.5000000000000002
    if all(round(1 / FAR_FROM_FRACTION, 6) <= round(shares[name] / fractions[name], 6) <= FAR_FROM_FRACTION
           for name in shares):
        return None
    how = (f"each class's source groups ({group_source}) go whole into one split, at least one into each "
           "held-out split, so a class of few groups" if grouped else
           "each class gives at least one file to each held-out split, so a class of few files")
    return (f"data: note: validation holds {shares['val']:.0%} of the clips and test {shares['test']:.0%}, against "
            f"data.val_fraction {val_fraction:g} and data.test_fraction {test_fraction:g}: {how} cannot match the "
            f"fractions; training has {counts.get('train', 0) / total:.0%}")


def data_lines(sources: Sequence[str], cached: Sequence[str] | None, config: Config) -> list[str]:
    """The lines train, tune and crossval log about their decoded recordings: :func:`lengths_line` of the ``cached``
    files (none when ``cached`` is ``None``: their cache files are gone) and :func:`rates_line` of the ``sources``
    when any is below the config's rate."""
    rate_hz = config.audio.sample_rate_hz
    lines = [] if cached is None else [lengths_line(cached, rate_hz, config.audio.clip_seconds)]
    if (rates := rates_line(sources, rate_hz)) is not None:
        lines.append(rates)
    return lines


def rates_line(sources: Sequence[str], rate_hz: int, *, most: int = RATE_CHECK_FILES) -> str | None:
    """``data: 3000 of 3000 recordings are 8000 Hz, below audio.sample_rate_hz 16000: ...``, or ``None`` when no
    recording is below the rate training resamples them to. Each is upsampled then, so its features above half
    its own rate hold no sound (FSDD's 8-kHz digits at the default 16 kHz: the 4-8 kHz band empty, filled by the
    generated noise alone); when every one is below it, the line names the ``--sample-rate`` that keeps all of
    their sound (their highest rate; a lower one would cut the band of those above it). The rates come from the
    source files' headers (:func:`sound_tf.audio.source_rate_hz`: the decode cache keeps no source rate), read
    from at most ``most`` recordings spread evenly over them (the line then says how many were checked).
    Train, tune and crossval log it beside :func:`lengths_line`."""
    checked = list(sources)
    if len(checked) > most:
        checked = [checked[i * len(checked) // most] for i in range(most)]
    rates = [rate for rate in map(source_rate_hz, checked) if rate is not None]
    below = Counter(rate for rate in rates if rate < rate_hz)
    if not below:
        return None
    count = sum(below.values())
    low, high = min(below), max(below)
    shown = f"{low} Hz" if low == high else f"{low}-{high} Hz"
    empty = f"{low / 2:g} Hz" if low == high else f"{low / 2:g}-{high / 2:g} Hz"
    of = f"{len(rates)}" if len(checked) == len(sources) else f"the {len(rates)} checked (of {len(sources)})"
    line = (f"data: {count} of {of} recordings are {shown}, below audio.sample_rate_hz {rate_hz}: upsampled, "
            f"so their features above {empty} hold no sound")
    if count == len(rates):
        line += (f"; --sample-rate {high} matches them and trains faster" if low == high else
                 f"; --sample-rate {high} (the highest of them) keeps all of their sound and trains faster")
    return line


def _did_you_mean(missing: Path) -> str:
    """``" (did you mean data/my_sounds?)"`` when the folder holding ``missing`` exists and holds a name close
    to its last part (a typo in the last step of ``--data``), else ``""``."""
    import difflib

    parent = missing.parent
    try:
        names = [entry.name for entry in os.scandir(parent)] if parent.is_dir() else []
    except OSError:
        return ""
    lowered = {name.lower(): name for name in names}  # My_Sounds for my_sounds too
    close = difflib.get_close_matches(missing.name.lower(), list(lowered), n=1, cutoff=0.8)
    return f" (did you mean {parent / lowered[close[0]]}?)" if close else ""


def detect_format(path: str | os.PathLike) -> str:
    """Recognise a dataset layout: ``folder``, ``csv``, ``esc50``, ``urbansound8k`` or ``speech_commands``.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` manifest or a dataset folder.

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    DatasetError
        ``path`` does not exist or matches no layout; the message says what was expected. Or it is the ``audio``
        folder of an ESC-50 or UrbanSound8K copy (or a fold folder in UrbanSound8K's): the message names the root.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: no such file or folder{_did_you_mean(root)}; expected {_EXPECTED_LAYOUTS}")
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "csv"
        raise DatasetError(f"{root}: a file that is not a .csv manifest; expected {_EXPECTED_LAYOUTS}")
    if (inside := _official_audio_folder(root)) is not None:  # UrbanSound8K's audio/: its folds are no classes
        raise DatasetError(inside)
    if (root / ESC50_META).is_file():
        return "esc50"
    if (root / US8K_META).is_file():
        return "urbansound8k"
    if _is_speech_commands(root):
        return "speech_commands"
    others: list[Path] = []
    for folder in _class_folders(root):
        if next(iter(_iter_audio_files(folder, ignored=others)), None) is not None:
            return "folder"
    loose = [p.name for p in root.iterdir() if p.is_file() and is_audio_file(p.name)]
    if loose:
        parent, classes = _sibling_classes(root)
        if classes:  # --data names one class's folder: the parent is the dataset
            # of Speech Commands, the words alone: _background_noise_ was counted among its "36 folders of audio"
            words = SPEECH_COMMANDS_NOISE in classes and _is_speech_commands(parent)
            noise = words and root.resolve().name == SPEECH_COMMANDS_NOISE
            classes = [name for name in classes if not words or name != SPEECH_COMMANDS_NOISE]
            shown = ", ".join(classes[:5]) + (", ..." if len(classes) > 5 else "")
            raise DatasetError(f"{root}: holds {counted(len(loose), 'audio files')} (e.g. {loose[0]}) but no class "
                               f"subfolders: it looks like "
                               + ("Speech Commands' folder of background noise, never a class" if noise else
                                  "one class's folder")
                               + f", and its parent {parent} holds {len(classes)} "
                               f"{'word folders' if words else 'folders of audio'} ({shown}); give the parent: "
                               f"--data {shlex.quote(str(parent))}")
        raise DatasetError(f"{root}: holds {counted(len(loose), 'audio files')} (e.g. {loose[0]}) but no class "
                           f"subfolders; "
                           f"put each class's files in a subfolder named after the class, or write a CSV "
                           f"manifest with columns path,label")
    found = ""
    if others:  # e.g. class folders of .m4a files: say what is there and how to make it readable
        kinds = Counter(path.suffix.lower() or "(no extension)" for path in others)
        found = (f"; its class folders hold "
                 f"{counted(len(others), 'files of other types', one='file of another type')} ("
                 + ", ".join(f"{k}: {n}" for k, n in kinds.most_common(4))
                 + f"): convert recordings to FLAC or WAV, e.g. ffmpeg -i {others[0].name} "
                 f"{others[0].with_suffix('.flac').name}")
    raise DatasetError(f"{root}: no audio files found (extensions {', '.join(AUDIO_EXTENSIONS)}){found}; expected "
                       f"{_EXPECTED_LAYOUTS}")


def _sibling_classes(folder: Path) -> tuple[Path, list[str]]:
    """The parent of ``folder`` (resolved: ``--data .`` has one) and the names of the folders in it, ``folder``
    among them, that hold audio files directly, when there are two or more: ``--data`` then names one class's
    folder of a folder-per-class tree, whose parent is the dataset; else no names."""
    own = folder.resolve()
    parent = own.parent
    if parent == own:
        return parent, []
    try:
        siblings = _class_folders(parent)
    except OSError:
        return parent, []
    names = []
    for sibling in siblings:
        try:
            if any(entry.is_file() and is_audio_file(entry.name) for entry in os.scandir(sibling)):
                names.append(sibling.name)
        except OSError:
            continue
    return parent, (names if len(names) >= 2 and own.name in names else [])


def _is_speech_commands(root: Path) -> bool:
    """Whether the folder ``root`` is a Speech Commands tree: word folders beside both official lists
    (``validation_list.txt``, ``testing_list.txt``), or, without the lists, beside a ``_background_noise_``
    folder with recordings named ``<speaker>_nohash_<n>`` (a copy without its lists, or recordings of one's own
    in its layout). Only the first audio file of each word folder is looked at."""
    lists = all((root / name).is_file() for name in SPEECH_COMMANDS_LISTS.values())
    if not lists and not (root / SPEECH_COMMANDS_NOISE).is_dir():
        return False
    for folder in _class_folders(root):
        if folder.name == SPEECH_COMMANDS_NOISE:
            continue
        first = next(iter(_iter_audio_files(folder)), None)
        if first is not None and (lists or SPEECH_COMMANDS_NOHASH in first.name):
            return True
    return False


#: The two folders Speech Commands' separate test set (``speech_commands_test_set_v0.02``) holds beside its words.
SPEECH_COMMANDS_TEST_SET_CLASSES = ("_unknown_", "_silence_")


def separate_test_set_note(root: Path | None) -> str | None:
    """What to do with ``root`` when it looks like Speech Commands' separate test set (word folders of
    ``<speaker>_nohash_<n>`` recordings beside its own ``_unknown_`` and ``_silence_``, without the lists and
    ``_background_noise_``), which scores a trained keyword spotter; ``None`` for any other folder. Given as
    training data it was read as a folder of 12 classes, speakers in training and test alike, without a word (or,
    with the speech_commands_12 recipe, refused for want of noise recordings, naming none of this)."""
    try:
        if root is None or not root.is_dir() or (root / SPEECH_COMMANDS_NOISE).exists() or any(
                (root / name).exists() for name in SPEECH_COMMANDS_LISTS.values()):
            return None
        folders = _class_folders(root)
        if not set(SPEECH_COMMANDS_TEST_SET_CLASSES) <= {folder.name for folder in folders}:
            return None
        words = [folder for folder in folders if folder.name not in SPEECH_COMMANDS_TEST_SET_CLASSES]
        if not any(SPEECH_COMMANDS_NOHASH in getattr(next(iter(_iter_audio_files(folder)), None), "name", "")
                   for folder in words):
            return None
    except OSError:
        return None
    return (f"{root} looks like Speech Commands' separate test set (speech_commands_test_set_v0.02: word folders "
            f"beside its own {' and '.join(SPEECH_COMMANDS_TEST_SET_CLASSES)}, without validation_list.txt, "
            f"testing_list.txt and {SPEECH_COMMANDS_NOISE}), which scores a trained model: `python -m "
            f"sound_tf.evaluate RUN --data {root}`; train on the dataset itself (speech_commands_v0.02, its lists' "
            f"split and {SPEECH_COMMANDS_NOISE}) with --pipeline speech_commands_12")


def _control_character(text: str) -> str | None:
    """The first control character of ``text`` (C0 and C1 controls, DEL, the line and paragraph separators
    U+2028/U+2029), as ``U+XXXX``; ``None`` when it has none."""
    found = next((c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
    return None if found is None else f"U+{ord(found):04X}"


_LABEL_USES = "a label goes into labels.txt (one per line), the models' metadata, reports and file names"


def _load_folder(root: Path, *, not_classes: Sequence[str] = (), layout: str = "folder",
                 left_out: list[tuple[str, str]] | None = None) -> list[Example]:
    """One example per audio file of each class folder of ``root`` (the folders named in ``not_classes``
    left out); ``layout`` names the format in the message for a ``root`` that is no folder. The recordings ffmpeg
    converts that the walk met are appended to ``left_out`` when it is given (:func:`_convertible_rows`)."""
    if not root.is_dir():
        raise DatasetError(f"{root}: format {layout!r} needs a folder with one subfolder per class")
    folders = [folder for folder in _class_folders(root) if folder.name not in not_classes]
    broken = [folder.name for folder in folders if "\n" in folder.name or "\r" in folder.name]
    if broken:  # labels.txt and the exported models' label files hold one name per line
        raise DatasetError(f"{root}: the class folder name {broken[0]!r} holds a line break; rename it")
    control = next(((folder.name, code) for folder in folders if (code := _control_character(folder.name))), None)
    if control is not None:
        raise DatasetError(f"{root}: the class folder name {control[0]!r} holds a control character ({control[1]}); "
                           f"{_LABEL_USES}: rename it")
    # A label is the folder's name without surrounding spaces, as CSV manifests and split.csv read labels
    # (a run resumed from its split.csv had " zeta" renamed "zeta", and its classes reordered).
    label_of: dict[str, str] = {}
    for folder in folders:
        label = folder.name.strip()
        if not label:
            raise DatasetError(f"{root}: the class folder name {folder.name!r} is only spaces; rename it")
        clash = next((other for other, known in label_of.items() if known == label), None)
        if clash is not None:
            raise DatasetError(f"{root}: the class folders {clash!r} and {folder.name!r} differ only in surrounding "
                               f"spaces, and both would be class {label!r}; merge or rename them")
        label_of[folder.name] = label
    ignored: list[Path] = []
    unlisted: list[OSError] = []
    examples: list[Example] = []
    first: dict[str, Example] = {}  # real path -> its first example: links must not list a file twice
    real_folders: dict[str, str] = {}
    empty, linked, across = [], [], []
    for folder in folders:
        files = list(_iter_audio_files(folder, ignored=ignored, unlisted=unlisted))
        if not files:
            empty.append(folder.name)
        for file in files:
            example = Example(path=str(file), label=label_of[folder.name])
            earlier = first.setdefault(_real_path(file, real_folders), example)
            if earlier is example:
                examples.append(example)
            elif earlier.label == example.label:
                linked.append((example, earlier))
            else:
                across.append((example, earlier))
    if across:  # through a symbolic link: one recording with two labels, possibly in training and test
        (example, earlier), count = across[0], len(across)
        raise DatasetError(f"{root}: {example.path} is {earlier.path} (a symbolic link leads to it): one file in "
                           f"classes {earlier.label!r} and {example.label!r}" +
                           (f", and {counted(count - 1, 'more files')} like it" if count > 1 else "")
                           + "; give each file one class")
    beside = [p for p in root.iterdir() if not is_hidden(p.name)]  # what lies beside the class folders
    loose = sorted(p.name for p in beside if p.is_file() and is_audio_file(p.name))
    if loose:  # beside the class folders: in no class
        one = len(loose) == 1
        logger.warning("%s directly in %s %s to no class folder and %s not used (e.g. %s); move %s into its class's "
                       "folder", counted(len(loose), "audio files"), root, "belongs" if one else "belong",
                       "is" if one else "are", loose[0], "it" if one else "each")
    dangling = sorted(p for p in beside if p.is_symlink() and not p.exists())
    if dangling:  # e.g. a class folder linked from a drive that is not mounted: its class would vanish unsaid
        one = len(dangling) == 1
        logger.warning("%s directly in %s %s to nothing and %s not used (e.g. %s -> %s); a linked class folder whose "
                       "target is missing is not a class", counted(len(dangling), "symbolic links"), root,
                       "leads" if one else "lead", "is" if one else "are", dangling[0].name, os.readlink(dangling[0]))
    _warn_left_out(root, ignored, unlisted, empty, linked)
    if left_out is not None:  # for skipped.csv: the one walk serves both (a second one took 2 s of 100,000 files)
        left_out += _convertible_rows(ignored)
    if layout == "folder" and examples:
        _warn_manifest_beside(root, [p for p in beside if p.is_file()], sorted({ex.label for ex in examples}))
    if not examples:
        raise DatasetError(f"{root}: no audio files in any class subfolder (extensions "
                           f"{', '.join(AUDIO_EXTENSIONS)})")
    return examples


def _warn_manifest_beside(root: Path, files: Sequence[Path], labels: Sequence[str]) -> None:
    """Warn when a CSV manifest (a header with ``path`` and ``label``) lies beside the folders read as classes:
    ``--data factory/`` of ``factory/manifest.csv`` beside ``audio/`` and ``noise/`` trained the classes 'audio'
    and 'noise', without a word of the manifest, where the manifest's labels were meant."""
    manifests = []
    for file in sorted(files):
        if file.suffix.lower() != ".csv":
            continue
        try:
            with file.open(encoding="utf-8-sig", newline="") as handle:
                header = [h.strip() for h in next(csv.reader([handle.readline()]), [])]
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        if all(column in header for column in MANIFEST_COLUMNS):
            manifests.append(file)
    if manifests:
        shown = ", ".join(labels[:5]) + (", ..." if len(labels) > 5 else "")
        names = ", ".join(m.name for m in manifests[:3]) + (", ..." if len(manifests) > 3 else "")
        one = len(manifests) == 1
        logger.warning("%s holds %s, %s of %s rows, beside the folders read as classes (%s): format 'folder' takes "
                       "each subfolder as a class and does not read %s; to train on %s labels, give it as data.path "
                       "(--data %s)", root, names, "a manifest" if one else "manifests", ",".join(MANIFEST_COLUMNS),
                       shown, "it" if one else "them", "its" if one else "a manifest's", manifests[0])


def _warn_left_out(root: Path, ignored: list[Path], unlisted: list[OSError], empty: list[str],
                   linked: list[tuple[Example, Example]]) -> None:
    """Say what a folder dataset holds that does not become an example (nothing is left out silently)."""
    if ignored:
        kinds = Counter(path.suffix.lower() or "(no extension)" for path in ignored)
        recorded = [path for path in ignored if is_convertible(path)]
        convert = ""
        if recorded:  # a phone's .m4a: say how to make it readable, in words a shell takes as they are
            convert = (f"; to use {'it' if len(recorded) == 1 else 'them'}, "
                       f"{convert_hint(recorded[0].relative_to(root), each=True)} "
                       f"(run in {shlex.quote(str(root))}), then remove or move the original")
        logger.warning("%s under %s %s and %s not used (%s; e.g. %s); readable: %s%s", counted(len(ignored), "files"),
                       root, "is not of an audio format sound_tf reads" if len(ignored) == 1
                       else "are not audio formats sound_tf reads", "is" if len(ignored) == 1 else "are",
                       ", ".join(f"{k}: {n}" for k, n in kinds.most_common()), ignored[0].relative_to(root),
                       " ".join(AUDIO_EXTENSIONS), convert)
    for error in unlisted:
        logger.warning("cannot list the folder %s (%s): its files are not used", error.filename,
                       error.strerror or error)
    if empty:
        logger.warning("%s under %s %s: %s", counted(len(empty), "class folders", one="class folder"), root,
                       "holds no audio files and is not a class" if len(empty) == 1
                       else "hold no audio files and are not classes",
                       ", ".join(empty[:10]) + (" ..." if len(empty) > 10 else ""))
    if linked:
        example, earlier = linked[0]
        logger.warning("%s (e.g. %s is %s)", "1 file is a symbolic link to a file already in its class and is used "
                       "once" if len(linked) == 1 else f"{counted(len(linked), 'files')} are symbolic links to a file "
                       "already in their class and are used once", example.path, earlier.path)


def _convertible_rows(ignored: Sequence[Path]) -> list[tuple[str, str]]:
    """``(path, reason)`` of each file of ``ignored`` (those a folder dataset's walk met that sound_tf does not read)
    that ffmpeg converts (:data:`~sound_tf.audio.CONVERTIBLE_EXTENSIONS`), for ``skipped.csv`` and the report: a
    phone's ``.m4a`` was named in one warning and listed nowhere a run keeps. :func:`load_examples` hands them out
    (``left_out``)."""
    return [(str(path), f"not an audio format sound_tf reads ({path.suffix}); to use it, {convert_hint(path)}, then "
                        f"remove or move the original") for path in ignored if is_convertible(path)]


class _CsvLines:
    """The lines of a CSV text, numbered, as ``csv.reader`` takes them: a line that begins with ``#`` where a
    record would begin is a comment, whatever it holds (commas, quotes), and is not handed on.

    ``csv.reader`` asks for a line only when its record needs one, so :meth:`record` (called before each
    record is read) marks where a record begins; a line of a quoted value that runs on is never a comment.
    """

    def __init__(self, text: str):
        self.first = 0  # the first line of the record read last
        self.last = 0  # the last line handed to the reader
        self.comments: list[tuple[int, str]] = []  # (line number, text)
        self._lines = enumerate(io.StringIO(text), start=1)
        self._at_start = True

    def record(self) -> None:
        self._at_start = True

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        for number, text in self._lines:
            if self._at_start and text.startswith("#"):
                self.comments.append((number, text.rstrip("\r\n")))
                continue
            if self._at_start:
                self.first, self._at_start = number, False
            self.last = number
            return text
        raise StopIteration


#: Column names a manifest's header may give its ``path`` and ``label`` columns (lower-cased, the likelier first),
#: named in the refusal of a header without them: "file,label" was refused as "missing column(s) path" without a
#: word on 'file'.
_MEANT_COLUMNS = {
    "path": ("file", "filename", "file_name", "filepath", "file_path", "fname", "audio", "audio_file", "audio_path",
             "wav", "wav_file", "clip", "recording"),
    "label": ("class", "classname", "class_name", "category", "labels", "tag", "target"),  # ESC-50's target: a number
    # the official metadata's columns, renamed in a copy ('file_name' was refused as "missing column(s) filename")
    "filename": ("file_name", "file", "fname", "path", "slice_file_name"),
    "category": ("class", "class_name", "classname", "label", "categories"),
    "src_file": ("source_file", "src", "source", "source_recording", "group"),
    "fold": ("folds", "fold_id", "cv_fold", "split"),
    "slice_file_name": ("filename", "file_name", "slice_filename", "file", "path"),
    "class": ("category", "class_name", "classname", "label"),
    "fsID": ("fsid", "freesound_id", "group"),
}


def _meant_hint(header: Sequence[str], missing: Sequence[str]) -> str:
    """``"; is column 'file' the path? name it path"`` for the missing columns a header has another usual name
    for (:data:`_MEANT_COLUMNS`), else ``""``."""
    lowered = {h.lower(): h for h in reversed(header)}  # the first of two spellings
    pairs = [(lowered[found], column) for column in missing
             for found in [next((name for name in _MEANT_COLUMNS.get(column, ()) if name in lowered), None)] if found]
    if not pairs:
        return ""
    found, wanted = " and ".join(repr(f) for f, _ in pairs), " and ".join(c for _, c in pairs)
    return (f"; is column {found} the {wanted}? name it {wanted}" if len(pairs) == 1 else
            f"; are columns {found} the {wanted}? name them {wanted}")


def _read_header(path: Path, required: Sequence[str],
                 optional: Sequence[str] = ()) -> tuple[_CsvLines, Any, list[str]]:
    """The lines, the ``csv.reader`` over them and the checked header of the CSV at ``path``, the reader at the
    first data row (:func:`_read_rows`); :func:`check_source` reads a manifest's header alone with it."""
    if not path.is_file():
        raise DatasetError(f"{path}: manifest not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a UTF-8 text CSV ({exc})") from exc
    lines = _CsvLines(text)
    reader = csv.reader(lines)
    header = _next_record(reader, lines, path)
    if header is None:
        raise DatasetError(f"{path}: empty CSV; expected a header with columns {','.join(required)}")
    header = [h.strip() for h in header]
    repeated = [h for h, n in Counter(header).items() if n > 1 and h]
    if repeated:  # which of two 'label' columns is the label?
        raise DatasetError(f"{path}: the header names column {repeated[0]!r} more than once ({header})")
    missing = [c for c in required if c not in header]
    if missing:
        lowered = [h.lower() for h in header]
        other = next((sep for sep in (";", "\t", "|") if len(header) == 1 and sep in header[0]), None)
        hint = (f"; the header looks {'tab' if other == chr(9) else repr(other)}-separated: write the CSV with "
                f"commas" if other else "; column names are case-sensitive: write them in lower case"
                if all(c in lowered for c in required) else _meant_hint(header, missing))
        official = path.resolve().parent.parent  # the dataset's folder, if this is its metadata file
        for meta, columns in ((ESC50_META, ("filename", "category")), (US8K_META, ("slice_file_name", "class"))):
            if "path" in required and all(c in header for c in columns) and path.resolve() == official / meta:
                hint = f"; this is the official metadata of a dataset: give its folder as data.path (--data {official})"
        if "\0" in text:  # UTF-16 without a byte order mark reads as UTF-8 with a NUL after every letter
            hint = "; the file holds NUL characters (U+0000): is it UTF-16 text? save it as UTF-8"
        commented = next(((number, text) for number, text in lines.comments
                          if all(c in [h.strip() for h in text.lstrip("#").split(",")] for c in required)), None)
        if commented is not None:  # "#path,label": a header written as some tools write theirs
            hint = (f"; line {commented[0]} ({commented[1]!r}) would be the header, but a line that begins with # "
                    f"is a comment: remove the #")
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; found {header}; expected "
                           f"{','.join(required)}" + (f" and optionally {','.join(optional)}" if optional else "")
                           + hint)
    miscased = [(h, c) for c in optional if c not in header for h in header if h.lower() == c.lower()]
    if miscased:  # a 'Fold' column was not read: its folds were replaced by a drawn split without a word
        raise DatasetError(f"{path}: column {miscased[0][0]!r} is not read as {miscased[0][1]!r}: column names are "
                           f"case-sensitive: write it in lower case")
    return lines, reader, header


def _read_rows(path: Path, required: Sequence[str], optional: Sequence[str] = (),
               verbatim: Sequence[str] = (), comments: list[tuple[int, str]] | None = None,
               label: str | None = None) -> list[tuple[int, dict]]:
    """Rows of a CSV as ``(line number, {column: stripped value})``; checks the header (:func:`_read_header`).

    Values of ``verbatim`` columns are kept as written (a file name may begin with a space or hold a line
    break: ``split.csv`` quotes what ``csv`` needs to). A line that begins with ``#`` is a comment (a value
    that begins with ``#`` is written quoted); comment lines are appended to ``comments`` as
    ``(line number, text)`` when given. The ``label`` column's values may hold no control character.
    """
    lines, reader, header = _read_header(path, required, optional)
    rows = []
    while True:
        values = _next_record(reader, lines, path)
        if values is None:
            break
        line = lines.first  # the record's first line: a quoted value may run over several
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise DatasetError(f"{path}, line {line}: {counted(len(values), 'values')} for "
                               f"{counted(len(header), 'columns')} {header}"
                               + _open_quote_hint(lines))
        row = {h: v if h in verbatim else v.strip() for h, v in zip(header, values)}
        for column in required:
            if not row[column]:
                raise DatasetError(f"{path}, line {line}: empty value in column {column!r}")
        broken = [h for h, v in row.items() if ("\n" in v or "\r" in v) and h not in verbatim]
        if broken:  # labels.txt and the exported models' label files hold one name per line
            raise DatasetError(f"{path}, line {line}: the value in column {broken[0]!r} holds a line break "
                               f"({row[broken[0]]!r})" + _open_quote_hint(lines))
        code = _control_character(row[label]) if label is not None else None
        if code is not None:
            raise DatasetError(f"{path}, line {line}: the label {row[label]!r} (column {label!r}) holds a control "
                               f"character ({code}); {_LABEL_USES}: remove it")
        rows.append((line, row))
    if comments is not None:
        comments.extend(lines.comments)
    if not rows:
        raise DatasetError(f"{path}: no data rows below the header")
    return rows


def _next_record(reader: Any, lines: _CsvLines, path: Path) -> list[str] | None:
    """The next record of ``reader`` (None at the end), which reads ``lines``; ``csv``'s own errors (a quoted
    value left open over more than its field size limit) are a :class:`DatasetError` naming the line the
    record began on."""
    lines.record()
    try:
        return next(reader, None)
    except csv.Error as exc:
        raise DatasetError(f"{path}, line {lines.first}: cannot read the CSV from here ({exc})"
                           + _open_quote_hint(lines)) from exc


def _open_quote_hint(lines: _CsvLines) -> str:
    """Why the record read last ran on past its first line: a value opened with a double quote that is not
    closed takes in the lines after it."""
    line = lines.first
    if lines.last <= line:
        return ""
    return (f"; the record runs from line {line} to line {lines.last}: a value that begins with a double quote "
            f"takes in every line up to the next double quote (is one on line {line} not closed?)")


def _fold_below_1(fold: Any, shown: str | None = None) -> str | None:
    """What is wrong with an example's fold below 1 (``shown``: as written), with a hint for folds numbered
    from 0; ``None`` for any other fold."""
    problem = fold_below_1("fold", fold, shown=shown)
    if problem is None:
        return None
    return problem + ("; folds numbered from 0: add 1 to every fold" if fold == 0 else "")


def _parse_fold(value: str, path: Path, line: int, *, below_1: bool = False) -> int | None:
    """The fold ``value`` of ``path``'s ``line`` (``None`` when empty); ``below_1``: a fold below 1 is read as
    written (a run's own ``split.csv``, see :func:`read_split_csv`), else refused."""
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number.is_integer():
        raise DatasetError(f"{path}, line {line}: fold must be an integer, got {value!r}")
    problem = None if below_1 else _fold_below_1(number, repr(value))
    if problem is not None:  # fold 0 was one more fold, held out as validation when fold 1 was the test fold
        raise DatasetError(f"{path}, line {line}: {problem}")
    return int(number)


def _listed_once(examples: list[Example], rows: list[tuple[int, str]], listing: Path) -> list[Example]:
    """``examples`` (one per data row of ``listing``: its line and how it names the file), unless a file is
    listed twice.

    Raises
    ------
    DatasetError
        Naming both lines: a file listed twice could land in training and test, or be scored twice.
    """
    first: dict[str, tuple[int, str]] = {}  # real path -> (line, path as listed)
    real_folders: dict[str, str] = {}
    for example, (line, named) in zip(examples, rows):
        if "\0" in example.path:  # os.path.realpath raised "ValueError: embedded null byte", a traceback
            raise DatasetError(f"{listing}, line {line}: the path {named!r} holds a NUL character (U+0000), which no "
                               f"file name can hold: is the file damaged, or not UTF-8 text?")
        real = _real_path(example.path, real_folders)  # a symbolic link to a listed file is that file
        if real in first:
            earlier_line, earlier_path = first[real]
            how = "" if earlier_path == example.path else " (a symbolic link leads from one to the other)"
            raise DatasetError(f"{listing}, line {line}: {named} is the file already listed on line "
                               f"{earlier_line}{how}; list each file once")
        first[real] = (line, example.path)
    return examples


def _is_file(path: Path) -> bool:
    """``path.is_file()``, false for a path no file can have (a comment's words: longer than a file name may
    be, where ``is_file`` raises "File name too long")."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


#: A manifest's columns: the ones it must have, and the ones it may.
MANIFEST_COLUMNS, MANIFEST_OPTIONAL = ("path", "label"), ("fold", "group")

#: Column names (lower-cased) a manifest without a ``group`` column may give its groups under: a machine's,
#: speaker's or source recording's clips, which a split drawn file by file puts in training and test alike. A
#: column ending in ``_id`` counts too. A 'machine_id' column (MIMII, DCASE task 2) was not read, without a word.
_GROUP_LIKE = ("machine", "speaker", "source", "source_file", "src_file", "recording", "session", "subject",
               "device", "unit", "patient", "client", "individual", "animal", "site", "sensor", "microphone", "fsid")


def _group_like_column(header: Sequence[str], rows: Sequence[Mapping[str, str]] = ()) -> str | None:
    """The first column of ``header`` that looks like a group (:data:`_GROUP_LIKE`), when it has no ``group``, and
    whose values in ``rows`` could be one: a value shared by two rows, and not one value per label. A 'class_id'
    (each label's number) was named, with the advice to call it group, which holds out whole classes, and a
    'file_id' (one per row) before the 'machine_id' beside it."""
    if "group" in header:
        return None
    for h in header:
        if h in MANIFEST_COLUMNS + MANIFEST_OPTIONAL or not (h.lower() in _GROUP_LIKE or h.lower().endswith("_id")):
            continue
        pairs = [(value, row["label"]) for row in rows if (value := (row.get(h) or "").strip())]
        values = {value for value, _ in pairs}
        if rows and (len(values) == len(pairs)  # one per file (or none): no group
                     or len(set(pairs)) == len(values) == len({label for _, label in pairs})):  # the label's own
            continue
        return h
    return None


def _check_csv_file(path: Path) -> None:
    """Refuse a ``path`` that is not a file to read as a CSV manifest, naming the ``--format`` that reads a folder
    of a known layout: a folder of class folders given with ``--pipeline fsdd`` (whose data.format is ``csv``) was
    told only that format 'csv' needs a .csv file, a format its user never named."""
    if path.is_file():
        return
    layout = ""
    if path.is_dir():
        try:
            found = detect_format(path)
        except DatasetError:  # no layout of its own: the message as it was
            found = None
        if found is not None:
            layout = (f"; it is a folder that --format auto reads as {found!r}: --format {found} reads it, also with "
                      f"a recipe whose data.format is 'csv'")
    raise DatasetError(f"{path}: format 'csv' needs a .csv file with columns path,label[,fold,group]{layout}")


def _load_csv(path: Path) -> list[Example]:
    _check_csv_file(path)
    comments: list[tuple[int, str]] = []
    rows = _read_rows(path, MANIFEST_COLUMNS, MANIFEST_OPTIONAL, comments=comments, label="label")
    base = path.parent.resolve()
    header = list(rows[0][1])
    split_column = next((h for h in header if h.lower() == "split"), None)
    if split_column is not None:  # a train/val/test column of the user's own: sound_tf splits by folds or fractions
        # A column 'split' of train, val and test, each used, makes the file a split file (read_split_csv) as it is.
        keep = (f"give the file as the run's split file: --set data.split_file={path} (in place of --data)"
                if split_column == "split" and {row["split"] for _, row in rows} == set(SPLITS) else
                "write it as folds (e.g. train 1, val 2, test 3 with --val-fold 2 --test-fold 3)")
        logger.warning("%s: its column %r is not read: a manifest's splits come from its 'fold' column "
                       "(--test-fold K, --val-fold K) or are drawn by fraction (data.val_fraction, "
                       "data.test_fraction); to keep the split, %s", path, split_column, keep)
    for line, text in comments:  # a row whose first value begins with # (a file's name, or a label in a manifest
        # whose label column comes first) is a comment: when it lists a file that exists, it is not used: say so
        values = next(csv.reader([text]), [])
        if len(values) != len(header):
            continue
        named, first = values[header.index("path")].strip(), values[0].strip()
        if named and _is_file(base / named):
            logger.warning("%s, line %d begins with # and is a comment, but %s is a file beside the manifest and is "
                           "not used; to list it, write the value that begins with # in double quotes (\"%s\")",
                           path, line, named, first)
    examples = []
    for line, row in rows:
        file = Path(row["path"]).expanduser()
        absolute = os.path.normpath(file if file.is_absolute() else base / file)  # a/../b.wav is b.wav
        examples.append(Example(path=absolute, label=row["label"], fold=_parse_fold(row.get("fold", ""), path, line),
                                group=row.get("group") or None))
    grouped = [line for (line, _), ex in zip(rows, examples) if ex.group is not None]
    folds_decide = all(ex.fold is not None for ex in examples)  # whole folds are held out: groups split nothing
    # Worded for train and tune's split and crossval's folds alike: both are drawn by group, file by file without one.
    if 0 < len(grouped) < len(examples) and not folds_decide:  # a row without a group is a group of its own
        lines = [line for (line, _), ex in zip(rows, examples) if ex.group is None]
        logger.warning("%s, line %d: no group, while %d of the %d rows %s one (%s without: line%s %s%s); each row "
                       "without a group is a group of its own, so a split (or crossval's folds) can put it apart from "
                       "the rest of its group (in training while they are in test): give every row its group",
                       path, lines[0],
                       len(grouped), len(examples), "has" if len(grouped) == 1 else "have",
                       counted(len(lines), "rows"), "" if len(lines) == 1 else "s",
                       ", ".join(map(str, lines[:5])), ", ..." if len(lines) > 5 else "")
    elif not grouped and all(ex.fold is None for ex in examples) and (
            like := _group_like_column(header, [row for _, row in rows])):
        logger.warning("%s: column %r is not read: without a 'group' column the split (or crossval's folds) is "
                       "drawn file by file, so one %s's recordings can be in training and in test; name the column "
                       "group to keep each %s's recordings in one split (or fold)", path, like, like, like)
    without = [line for (line, _), ex in zip(rows, examples) if ex.fold is None]
    if 0 < len(without) < len(examples):  # folds hold out whole folds: a row without one belongs to none
        with_one = len(examples) - len(without)
        raise DatasetError(f"{path}, line {without[0]}: no fold, while {with_one} of the {len(examples)} rows "
                           f"{'has' if with_one == 1 else 'have'} one ({counted(len(without), 'rows')} without); "
                           f"give every row a fold, "
                           f"or leave the fold column empty on every row to split by fractions")
    return _listed_once(examples, [(line, row["path"]) for line, row in rows], path)


def _warn_unlisted(examples: Sequence[Example], audio_dir: Path, listing: Path,
                   explained: Collection[Path] = ()) -> None:
    """Count in a warning the audio files under ``audio_dir`` that ``listing`` does not name (they are not
    used: the metadata gives each file its label and fold), but those in ``explained``, said already. Each folder's
    real path is resolved once (:func:`_real_path`): ``realpath`` of every file, listed and walked, took 0.8 s of
    UrbanSound8K's 8,732 (0.2-0.4 s now)."""
    real_folders: dict[str, str] = {}
    listed = {os.path.normcase(_real_path(ex.path, real_folders)) for ex in examples}
    listed |= {os.path.normcase(_real_path(path, real_folders)) for path in explained}
    unlisted = [path for path in _iter_audio_files(audio_dir)
                if os.path.normcase(_real_path(path, real_folders)) not in listed] if audio_dir.is_dir() else []
    if unlisted:
        are = "is" if len(unlisted) == 1 else "are"
        logger.warning("%s under %s %s not listed in %s (e.g. %s) and %s not used",
                       counted(len(unlisted), "audio files"), audio_dir, are, listing,
                       unlisted[0].relative_to(audio_dir), are)


#: The official metadata's columns, required and optional: ``meta/esc50.csv``'s and ``UrbanSound8K.csv``'s.
ESC50_COLUMNS, ESC50_OPTIONAL = ("filename", "fold", "category", "src_file"), ("target", "esc10", "take")
US8K_COLUMNS, US8K_OPTIONAL = ("slice_file_name", "fsID", "fold", "class"), ("start", "end", "salience", "classID")


def _load_esc50(root: Path, *, walk: bool = True) -> list[Example]:
    meta = root / ESC50_META
    rows = _read_rows(meta, ESC50_COLUMNS, ESC50_OPTIONAL, label="category")
    examples = _listed_once([Example(path=str(root / "audio" / row["filename"]), label=row["category"],
                                     fold=_parse_fold(row["fold"], meta, line), group=row["src_file"])
                             for line, row in rows], [(line, row["filename"]) for line, row in rows], meta)
    if walk:
        _warn_unlisted(examples, root / "audio", meta)
    return examples


def _load_urbansound8k(root: Path, *, walk: bool = True) -> list[Example]:
    meta = root / US8K_META
    rows = _read_rows(meta, US8K_COLUMNS, US8K_OPTIONAL, label="class")
    examples = []
    for line, row in rows:
        fold = _parse_fold(row["fold"], meta, line)
        examples.append(Example(path=str(root / "audio" / f"fold{fold}" / row["slice_file_name"]),
                                label=row["class"], fold=fold, group=row["fsID"]))
    examples = _listed_once(examples, [(line, str(Path(ex.path).relative_to(root / "audio")))
                                       for (line, _), ex in zip(rows, examples)], meta)
    if walk:
        _warn_unlisted(examples, root / "audio", meta, _warn_fold_folders(examples, [line for line, _ in rows], root))
    return examples


def _warn_fold_folders(examples: Sequence[Example], lines: Sequence[int], root: Path) -> list[Path]:
    """Warn of UrbanSound8K's listed files not in their fold's folder: a fold folder that does not exist (its files
    named in one line, not as many files not found), and a file that is in another fold's folder (its fold column
    wrong, or the file moved). Both are left out, as any listed file that is missing; returns the files found in
    another fold's folder, which are listed (:func:`_warn_unlisted` counted them as not). A file whose fold was
    edited read 'file not found' for the fold written and 'not listed' for the folder it is in, two lines apart."""
    meta, audio = root / US8K_META, root / "audio"
    absent_folds: dict[int, list[int]] = defaultdict(list)  # fold -> the lines of its files, its folder missing
    missing: list[tuple[int, Example]] = []
    present = {fold: (audio / f"fold{fold}").is_dir() for fold in {ex.fold for ex in examples}}
    # What each fold folder holds, listed once: not a look at each listed file on the disk.
    held = {fold: (str(audio / f"fold{fold}"), _names_in(audio / f"fold{fold}"))
            for fold, there in present.items() if there}
    for line, ex in zip(lines, examples):
        if not present[ex.fold]:
            absent_folds[ex.fold].append(line)
        elif not _held(ex.path, *held[ex.fold]):
            missing.append((line, ex))
    for fold, at in sorted(absent_folds.items()):
        logger.warning("%s: %s does not exist: the %s %s lists in fold %d (from line %d) %s not found and not used; "
                       "restore the folder from the dataset's download", root, Path("audio", f"fold{fold}"),
                       counted(len(at), "files"), meta.relative_to(root), fold, at[0],
                       "is" if len(at) == 1 else "are")
    if not missing:
        return []
    folders = sorted((f for f in audio.iterdir() if f.is_dir() and f.name.startswith("fold")), key=lambda f: f.name)
    moved = [(line, ex, found) for line, ex in missing
             if (found := [f for f in folders if f.name != f"fold{ex.fold}" and (f / Path(ex.path).name).is_file()])]
    if moved:
        shown = "; ".join(f"line {line}: {Path(ex.path).name} (fold {ex.fold}) is in "
                          + " and ".join(str(Path("audio", f.name)) for f in found)
                          for line, ex, found in moved[:5]) + ("; ..." if len(moved) > 5 else "")
        logger.warning("%s: %s listed in one fold %s in another fold's folder, not its own, and %s not used (not "
                       "found where the fold column says): %s; correct the fold column, or move the %s to the "
                       "fold's folder", meta, counted(len(moved), "files"), "is" if len(moved) == 1 else "are",
                       "is" if len(moved) == 1 else "are", shown, "file" if len(moved) == 1 else "files")
    return [f / Path(ex.path).name for _, ex, found in moved for f in found]


def _names_in(folder: Path) -> set[str] | None:
    """The names of what ``folder`` holds that exists (a symbolic link that leads nowhere left out, as
    ``os.path.exists`` leaves it out), or ``None`` when the folder cannot be listed."""
    try:
        with os.scandir(folder) as entries:
            return {entry.name for entry in entries if not entry.is_symlink() or os.path.exists(entry.path)}
    except OSError:
        return None


def _held(path: str, folder: str, names: set[str] | None) -> bool:
    """``os.path.exists(path)``, told from ``names`` (:func:`_names_in` of ``folder``) for a file directly in
    ``folder``; a path elsewhere, a name not among them (another case of it, on a disk that ignores case) or a
    folder that could not be listed is looked at on the disk."""
    parent, name = os.path.split(path)
    return (names is not None and parent == folder and name in names) or os.path.exists(path)


def _speaker(path: str) -> str | None:
    """The speaker of a Speech Commands file (``<speaker>_nohash_<n>.wav``), or None for a name without
    ``_nohash_`` (the file is then its own group)."""
    name = posixpath.basename(path.replace(os.sep, "/"))
    speaker, nohash, _ = name.partition(SPEECH_COMMANDS_NOHASH)
    return speaker if nohash and speaker else None


#: The formats whose files bring their own groups, which ``data.group_pattern`` leaves as they are.
OWN_GROUP_FORMATS = {"esc50": "ESC-50's metadata gives each clip its src_file",
                     "urbansound8k": "UrbanSound8K's metadata gives each clip its fsID",
                     "speech_commands": "Speech Commands' file names give each file its speaker"}


def group_by_pattern(examples: Sequence[Example], pattern: str | None, root: str | os.PathLike,
                     fmt: str) -> tuple[list[Example], str | None]:
    """``examples`` with the groups ``pattern`` (``data.group_pattern``) finds in their file names, and the log line
    that says so; unchanged (and no line) without a pattern or when the data brings its own groups.

    Group 1 of ``re.search(pattern, stem)`` (the file's name without its extension) is the example's group, so a split
    or crossval's folds keep the files of one speaker or source recording together. A folder per class had no way to
    say it: FSDD's digit folders (``3_jackson_12.wav``) put each speaker in training and test alike, without a word.
    A file the pattern does not match (or whose group comes out empty) stays a group of its own; one warning counts
    them with an example name. Data that brings its groups (:data:`OWN_GROUP_FORMATS`; a CSV with a ``group``
    column) keeps them, with a warning that the pattern is not used.

    Raises
    ------
    DatasetError
        The pattern matches none of the file names (naming the pattern and one name).
    """
    examples = list(examples)
    if pattern is None or not examples:
        return examples, None
    own = OWN_GROUP_FORMATS.get(fmt) or ("the manifest's group column gives the groups"
                                         if any(ex.group is not None for ex in examples) else None)
    if own is not None:
        logger.warning("data.group_pattern '%s' is not used: %s", pattern, own)
        return examples, None
    compiled = re.compile(pattern)
    stems = [Path(ex.path).stem for ex in examples]
    found = [match.group(1) or None if (match := compiled.search(stem)) else None for stem in stems]
    unmatched = [stem for stem, group in zip(stems, found) if group is None]
    if len(unmatched) == len(examples):
        raise DatasetError(f"{root}: data.group_pattern '{pattern}' matches none of the "
                           f"{counted(len(examples), 'file names')} (e.g. {stems[0]!r}; it is searched in the name "
                           f"without its extension, and its group must capture some text): fix the pattern, or leave "
                           f"it out to make each file a group of its own")
    if unmatched:
        logger.warning("data.group_pattern '%s' does not match %d of the %s (e.g. %r): each of them is a group of its "
                       "own, free to fall in any split or fold", pattern, len(unmatched),
                       counted(len(examples), "file names"), unmatched[0])
    grouped = [dataclasses.replace(ex, group=group) for ex, group in zip(examples, found)]
    first = next((stem, group) for stem, group in zip(stems, found) if group is not None)
    groups = len({group for group in found if group is not None})
    return grouped, (f"data: {counted(groups, 'groups')} from data.group_pattern '{pattern}' "
                     f"({first[0]}: {first[1]}); a group's files share one split or fold")


#: :func:`name_field_groups`: what separates the fields of a file name (``3_jackson_12``); the share of the file names
#: that must have one layout (the same number of fields) for a field to be looked at; the fewest values a field needs
#: (two could be a condition such as male and female, which is no group to hold out); the files per value it needs
#: on average; the share of its values that must each be found in two classes or more; how many the warning names.
NAME_FIELD_SEPARATORS = "_-. "
NAME_LAYOUT_SHARE = 0.9
NAME_FIELD_MIN_VALUES = 3
NAME_FIELD_FILES_PER_VALUE = 2
NAME_FIELD_SHARED_SHARE = 0.8
NAME_FIELD_SHOWN = 4


@dataclass(frozen=True)
class NameField:
    """A field of a folder's file names that recurs across its classes (:func:`name_field_groups`)."""

    position: int  # from 0, in the names split at NAME_FIELD_SEPARATORS
    pattern: str  # a data.group_pattern whose group is the field
    values: Counter  # value -> files
    classes: int  # the folder's classes
    spread: tuple[int, int, int]  # the values in two classes or more, and the fewest and most classes one is in
    example: str  # a file name (without its extension)

    def spread_words(self) -> str:
        """``each in all 10 classes``, ``each in 2 to 10 of the 10 classes``, ``5 of them in 3 of the 4 classes``."""
        shared, low, high = self.spread
        which = "each" if shared == len(self.values) else f"{shared} of them"
        if low == high == self.classes:
            return f"{which} in all {self.classes} classes"
        return f"{which} in {low if low == high else f'{low} to {high}'} of the {self.classes} classes"


def name_field_groups(examples: Sequence[Example]) -> NameField | None:
    """The field of the file names that looks like a speaker or a source recording, or None.

    FSDD as a folder per digit (``zero/0_jackson_12.wav``) names its speaker in the second field, and every speaker
    is in every digit's folder; drawn file by file, the split puts each speaker in training and test. A field
    qualifies when most names (:data:`NAME_LAYOUT_SHARE`) split into the same number of fields, it holds at least
    :data:`NAME_FIELD_MIN_VALUES` values, at least :data:`NAME_FIELD_FILES_PER_VALUE` files per value on average, each
    value with a letter and two characters or more (a take number such as ``12`` or a take letter such as ``A``
    recurs across classes too, and is no group), and most of its values (:data:`NAME_FIELD_SHARED_SHARE`) in two
    classes or more (a field that is the class itself is in one). Of several, the one with the most values; its
    pattern is checked to give each name that field.
    """
    classes = len({ex.label for ex in examples})
    if classes < 2:
        return None
    separators = f"[{re.escape(NAME_FIELD_SEPARATORS)}]+"
    stems = [Path(ex.path).stem for ex in examples]
    fields = [re.split(separators, stem) for stem in stems]
    layout, held = Counter(len(f) for f in fields).most_common(1)[0]
    if layout < 2 or held < NAME_LAYOUT_SHARE * len(examples):
        return None
    laid = [(stem, f, ex.label) for stem, f, ex in zip(stems, fields, examples) if len(f) == layout]
    best: NameField | None = None
    for position in range(layout):
        spread: dict[str, set[str]] = defaultdict(set)
        for _, f, label in laid:
            spread[f[position]].add(label)
        shared = [len(labels) for labels in spread.values() if len(labels) >= 2]
        if (len(spread) < NAME_FIELD_MIN_VALUES or len(spread) * NAME_FIELD_FILES_PER_VALUE > held
                or any(len(value) < 2 or not re.search(r"[^\W\d_]", value) for value in spread)
                or len(shared) < NAME_FIELD_SHARED_SHARE * len(spread)
                or (best is not None and len(spread) <= len(best.values))):
            continue
        pattern = _field_pattern(position, {c for stem, _, _ in laid for c in stem if c in NAME_FIELD_SEPARATORS})
        compiled = re.compile(pattern)
        if all((m := compiled.search(stem)) is not None and m.group(1) == f[position] for stem, f, _ in laid):
            best = NameField(position, pattern, Counter(f[position] for _, f, _ in laid), classes,
                             (len(shared), min(shared), max(shared)), laid[0][0])
    return best


def _field_pattern(position: int, separators: set[str]) -> str:
    """A regular expression whose one group is field ``position`` of a name whose fields ``separators`` part:
    ``^[^_]+_([^_]+)`` for the second field of ``3_jackson_12``."""
    chars = "".join(sorted(separators))
    field = "[^" + re.escape(chars).replace("\\ ", " ") + "]+"
    between = re.escape(chars) if len(chars) == 1 else "[" + re.escape(chars) + "]+"
    return "^" + (field + between) * position + "(" + field + ")"


def warn_speakers_not_grouped(examples: Sequence[Example], root: str | os.PathLike) -> None:
    """Warn when a folder dataset's files are all named ``<speaker>_nohash_<n>``, as Speech Commands' are, or
    when a field of its file names recurs across its classes (:func:`name_field_groups`), as FSDD's speakers do.

    Such a folder without the lists and ``_background_noise_`` (some word folders copied out) is read as a
    folder of classes, each file its own group, so a drawn split or ``--k`` folds can put one speaker in
    training and test; ``--format speech_commands`` groups the files by speaker, and ``data.group_pattern``
    (whose pattern the warning gives) by the field. Nothing is said when the files have groups, or when they are
    all named ``<speaker>_nohash_<n>`` and no speaker has two files.
    """
    test_set = separate_test_set_note(Path(root))
    if test_set is not None:  # its _unknown_ and _silence_ files are not named by speaker: said of the whole folder
        logger.warning("%s; read as training data, it is a folder of classes, each file its own group, so its "
                       "speakers' recordings can fall in training and test alike, and %s are trained as two more "
                       "words", test_set, " and ".join(SPEECH_COMMANDS_TEST_SET_CLASSES))
        return
    if not examples or any(ex.group for ex in examples):
        return
    speakers = Counter(_speaker(ex.path) for ex in examples)
    if None in speakers:  # not Speech Commands' names: perhaps another field of them recurs across the classes
        if (field := name_field_groups(examples)) is not None:
            values = ", ".join(value for value, _ in field.values.most_common(NAME_FIELD_SHOWN))
            more = ", ..." if len(field.values) > NAME_FIELD_SHOWN else ""
            logger.warning("the file names under %s share a field across their classes: field %d of %r holds %d "
                           "values (%s%s), %s; if it names a speaker or a source recording, a split drawn "
                           "file by file puts its recordings in training and test alike, scoring higher than new "
                           "speakers will: --set 'data.group_pattern=%s' keeps each in one split or fold", root,
                           field.position + 1, field.example, len(field.values), values, more,
                           field.spread_words(), field.pattern)
        return
    if max(speakers.values()) < 2:
        return
    logger.warning("every file under %s is named <speaker>_nohash_<n>, as Speech Commands' are, but the folder "
                   "holds neither its lists (%s) nor %s, so it is read as a folder of classes, each file its "
                   "own group: the %d speakers' recordings can fall in training and test alike; --format "
                   "speech_commands keeps each speaker's in one split or fold (and trains with its recipe)",
                   root, " and ".join(SPEECH_COMMANDS_LISTS.values()), SPEECH_COMMANDS_NOISE, len(speakers))


def _read_speech_commands_lists(root: Path) -> dict[str, tuple[int, Path, int]]:
    """``{"<word>/<file>": (fold, list file, line)}`` of the official lists (fold 2: validation_list.txt, fold 3:
    testing_list.txt); blank lines are passed over.

    Raises
    ------
    DatasetError
        Naming the list (and line): one list without the other, a list that is not UTF-8 text, a path that is
        not ``<word>/<file>`` relative to ``root``, one in ``_background_noise_``, or a file listed twice.
    """
    lists = {fold: root / name for fold, name in SPEECH_COMMANDS_LISTS.items()}
    present = [path for path in lists.values() if path.is_file()]
    if len(present) == 1:
        missing = next(path.name for path in lists.values() if not path.is_file())
        raise DatasetError(f"{root}: holds {present[0].name} but not {missing}; the two lists make the official "
                           f"split (the files they do not name are for training): restore {missing}, or remove "
                           f"both to split by speaker with data.val_fraction / data.test_fraction")
    listed: dict[str, tuple[int, Path, int]] = {}
    for fold, path in lists.items() if present else ():
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path}: not a UTF-8 text list of files ({exc})") from exc
        for line, written in enumerate(text.splitlines(), start=1):
            named = written.strip()
            if not named:
                continue
            relative = posixpath.normpath(named.replace("\\", "/"))  # a list saved on Windows (yes\x.wav)
            parts = relative.split("/")
            if posixpath.isabs(relative) or len(parts) < 2 or parts[0] in ("..", ".") or "\0" in relative:
                raise DatasetError(f"{path}, line {line}: {named!r} is not a path <word>/<file> relative to {root}, "
                                   f"as the official lists name files")
            if parts[0] == SPEECH_COMMANDS_NOISE:
                raise DatasetError(f"{path}, line {line}: {named} is in {SPEECH_COMMANDS_NOISE}, which holds "
                                   f"background noise, not a word to recognise; remove the line")
            if relative in listed:
                _, earlier, earlier_line = listed[relative]
                where = f"line {earlier_line}" if earlier == path else f"{earlier.name}, line {earlier_line}"
                raise DatasetError(f"{path}, line {line}: {named} is already listed ({where}); list each file once "
                                   f"(a file in both lists would be validated and tested on)")
            listed[relative] = (fold, path, line)
    return listed


def _load_speech_commands(root: Path) -> list[Example]:
    """Every ``<word>/*.wav`` (``_background_noise_`` is noise, not a class), group = its speaker; with the
    official lists, fold 2 (validation_list.txt), 3 (testing_list.txt) or 1 (every other file: training). A
    listed file that is missing from its word's folder is kept, as ESC-50's are, and reported as skipped when
    the data is decoded; the listed files of a word with no recordings in the tree (a copy of some words only,
    the others' folders removed) are left out, with a warning: each was a class with no readable example,
    which stopped training."""
    listed = _read_speech_commands_lists(root) if root.is_dir() else {}
    found = _load_folder(root, not_classes=(SPEECH_COMMANDS_NOISE,), layout="speech_commands")
    relatives = [Path(os.path.relpath(example.path, root)).as_posix() for example in found]  # "<word>/<file>"
    examples = [dataclasses.replace(example, fold=listed[relative][0] if relative in listed else 1 if listed else None,
                                    group=_speaker(example.path)) for example, relative in zip(found, relatives)]
    seen = set(relatives)
    label_of = {relative.split("/")[0]: example.label for example, relative in zip(found, relatives)}
    absent: Counter[str] = Counter()  # word -> its listed files, for words with no recordings here
    for relative, (fold, _, _) in listed.items():
        if relative not in seen:  # missing (or hidden): the decode cache names it in skipped.csv
            word = relative.split("/")[0]
            if word not in label_of:
                absent[word] += 1
                continue
            examples.append(Example(path=str(root / relative), label=label_of[word], fold=fold,
                                    group=_speaker(relative)))
    if absent:
        words = sorted(absent)
        files = sum(absent.values())
        logger.warning("%s named in %s %s of %s with no recordings in %s and %s not used (%s): %s",
                       counted(files, "files"), " and ".join(SPEECH_COMMANDS_LISTS.values()),
                       "is" if files == 1 else "are", counted(len(words), "words"), root, "is" if files == 1 else "are",
                       ", ".join(f"{word}: {absent[word]}" for word in words[:10])
                       + (" ..." if len(words) > 10 else ""),
                       "that word is not a class" if len(words) == 1 else "those words are not classes")
    return examples


_LOADERS: dict[str, Callable[..., list[Example]]] = {
    "folder": _load_folder,
    "csv": _load_csv,
    "esc50": _load_esc50,
    "urbansound8k": _load_urbansound8k,
    "speech_commands": _load_speech_commands,
}


#: The formats whose files a listing names, one data row each: the listing (of the root) and its columns.
_LISTINGS: dict[str, tuple[Callable[[Path], Path], Sequence[str], Sequence[str]]] = {
    "csv": (lambda root: root, MANIFEST_COLUMNS, MANIFEST_OPTIONAL),
    "esc50": (lambda root: root / ESC50_META, ESC50_COLUMNS, ESC50_OPTIONAL),
    "urbansound8k": (lambda root: root / US8K_META, US8K_COLUMNS, US8K_OPTIONAL),
}


def listed_lines(root: str | os.PathLike, format: str) -> dict[str, tuple[Path, int]]:
    """Each file a listing (a CSV manifest, ESC-50's or UrbanSound8K's metadata, Speech Commands' two lists) names,
    as :func:`load_examples` gives its path, with the listing and the line that names it first; empty for a format
    without one (a folder-per-class tree, a Speech Commands copy without its lists). Read again for the words of a
    missing file: its skip and its ``--strict`` refusal named the file alone, not the row that lists it (a file of
    Speech Commands' testing list read 'skipping .../yes/cf91a9cf_nohash_12.wav: file not found', naming no list).
    ESC-50's and UrbanSound8K's metadata is read alone (``walk=False``): their audio folder is not walked again for
    warnings the first reading gave."""
    if format == "speech_commands":
        root = Path(root).expanduser().absolute()  # as load_examples makes the files' paths
        return {str(root / relative): (listing, line)
                for relative, (_, listing, line) in _read_speech_commands_lists(root).items()}
    if format not in _LISTINGS:
        return {}
    root = Path(root)
    where, required, optional = _LISTINGS[format]
    listing = where(root)
    quiet = logging.getLogger(__name__)
    was = quiet.disabled
    quiet.disabled = True  # its warnings were given when it was loaded
    try:
        rows = _read_rows(listing, required, optional)
        # one example per data row, in their order; an official dataset's audio folder is not walked (walk=False) for
        # the warnings switched off here
        examples = _load_listed(root, format, walk=False)
    finally:
        quiet.disabled = was
    found: dict[str, tuple[Path, int]] = {}
    for (line, _), ex in zip(rows, examples):
        found.setdefault(ex.path, (listing, line))
    return found


def listed_line(root: str | os.PathLike, format: str, path: str) -> tuple[Path, int] | None:
    """The listing and the line on which it names the file ``path`` (:func:`listed_lines`), or ``None`` for a format
    without one or a path it does not list."""
    return listed_lines(root, format).get(path)


def listed_note(listing: Path, line: int) -> str:
    """Where a listing names a file, as a skip's reason and a ``--strict`` refusal add it."""
    return f"listed on line {line} of {listing}"


def listing_locator(root: str | os.PathLike, format: str) -> Callable[[str], str | None] | None:
    """For :meth:`~sound_tf.audio.DecodeCache.build`'s ``where``: the :func:`listed_note` of a file the data's listing
    names (read once, at the first file skipped), or ``None`` for a format without a listing. Outside ``--strict``,
    'skipping .../3-100061-A-9.wav: file not found' named no row of the listing to fix; it now ends
    '(listed on line 12 of .../meta/esc50.csv)', in skipped.csv too (Speech Commands: the list and its line)."""
    if format not in _LISTINGS and format != "speech_commands":
        return None
    found: dict[str, tuple[Path, int]] | None = None

    def where(path: str) -> str | None:
        nonlocal found
        if found is None:
            try:
                found = listed_lines(root, format)
            except (DatasetError, OSError):  # the listing changed since it was read: the reason as it is
                found = {}
        return listed_note(*found[path]) if path in found else None

    return where


def with_listed_line(error: AudioError, root: str | os.PathLike, format: str) -> AudioError:
    """``error`` (a file ``--strict`` refuses) with the line of the listing that names the file, when one does:
    ``.../audio/3-100061-A-9.wav: file not found (listed on line 12 of .../meta/esc50.csv)``."""
    try:
        found = listed_line(root, format, error.path)
    except (DatasetError, OSError):  # the listing changed since it was read: the error as it is
        found = None
    if found is None:
        return error
    return AudioError(error.path, f"{error.reason} ({listed_note(*found)})")


def load_examples(path: str | os.PathLike, format: str = "auto", *,
                  left_out: list[tuple[str, str]] | None = None, walk: bool = True) -> list[Example]:
    """Read a dataset's examples (label, fold, group per file), in a deterministic order.

    Parameters
    ----------
    path : str or path-like
        Dataset folder or CSV manifest.
    format : str
        ``auto`` (see :func:`detect_format`), one of :data:`FORMATS`, or ``demo`` (a folder).
    left_out : list, optional
        Of a folder-per-class tree (format ``folder``): ``(path, reason)`` of each file in its class folders that
        ffmpeg converts and sound_tf does not read (a phone's ``.m4a``) is appended, with the ffmpeg line as its
        reason, for ``skipped.csv``, from the walk that finds the examples.
    walk : bool
        ``False``: ESC-50's and UrbanSound8K's audio folders are not looked at for what only warns (the files the
        metadata does not list, UrbanSound8K's fold folders missing and its files in another fold's folder); the
        metadata is read, and refused, as ever. For a reading whose warnings are not shown, ahead of the one that
        says them (:func:`sound_tf.crossval.check_folds`) or after it (:func:`listed_lines`).

    Returns
    -------
    list of Example
        Paths are absolute. Files listed by a manifest but missing on disk are kept: the decode cache
        reports them as skipped ("file not found").

    Raises
    ------
    DatasetError
        Unknown format, no audio, or a malformed manifest (the message names the file and line).
    """
    root, format = _checked_source(path, format)
    examples = (_load_folder(root, left_out=left_out) if format == "folder"
                else _load_listed(root, format, walk=walk))
    _warn_lookalike_labels(examples, root)
    return examples


#: The official datasets whose audio lies in ``<root>/audio`` beside the metadata: their name and metadata, by format.
def _load_listed(root: Path, format: str, *, walk: bool = True) -> list[Example]:
    """The examples of a dataset its metadata, manifest or lists name (:data:`_LOADERS`); ``walk=False``: ESC-50's and
    UrbanSound8K's audio folder, looked at for what the metadata does not say, is not (the others have none)."""
    return _LOADERS[format](root, walk=walk) if format in _AUDIO_BESIDE_META else _LOADERS[format](root)


_AUDIO_BESIDE_META = {"urbansound8k": ("UrbanSound8K", US8K_META), "esc50": ("ESC-50", ESC50_META)}


def _official_audio_folder(root: Path) -> str | None:
    """Why ``root`` is no dataset of its own when it is the ``audio`` folder of an ESC-50 or UrbanSound8K copy, one
    of UrbanSound8K's ``audio/foldN`` folders, or the folder of the metadata, naming the dataset's root to give
    instead; else ``None``.

    ``--data ~/UrbanSound8K/audio`` was read as a folder of classes, fold1 ... fold10 its ten classes: a
    cross-validation trained a model to tell the folds apart (at chance) without a word, and ``--data
    .../audio/fold1`` was told to give its parent, that very audio folder. ESC-50's ``audio/`` was told to put
    each class's files in a subfolder."""
    own = root.resolve()
    for fmt, (name, meta) in _AUDIO_BESIDE_META.items():  # its metadata folder: no audio there
        if own.name == meta.parent.name and (own / meta.name).is_file():
            return (f"{root}: the {own.name} folder of the {name} dataset at {own.parent}, which holds its "
                    f"{meta.name}, not its audio; give the dataset's root folder: "
                    f"--data {shlex.quote(str(own.parent))}")
    for folder, depth in ((own, 0), (own.parent, 1)):
        if folder.name != "audio":
            continue
        for fmt, (name, meta) in _AUDIO_BESIDE_META.items():
            dataset = folder.parent
            if depth == 1 and fmt != "urbansound8k":  # only UrbanSound8K has folders (folds) inside audio/
                continue
            if not (dataset / meta).is_file():
                continue
            what = (f"the audio folder of the {name} dataset at {dataset}" if depth == 0 else
                    f"folder {own.name} inside the audio folder of the {name} dataset at {dataset}")
            then = ("; read alone, its fold1 ... fold10 folders would be taken for classes"
                    if fmt == "urbansound8k" and depth == 0 else "")
            fold = own.name[len("fold"):] if depth == 1 and own.name[len("fold"):].isdigit() else None
            only = (f" (--folds {fold} cross-validates fold {fold} alone; --test-fold {fold} tests a training run "
                    f"on it)" if fold else "")
            return (f"{root}: {what}, whose {meta.as_posix()} gives each file its class and fold{then}; give the "
                    f"dataset's root folder: --data {shlex.quote(str(dataset))}{only}")
    return None


def _checked_source(path: str | os.PathLike, format: str) -> tuple[Path, str]:
    """The absolute root and the format (detected for ``auto``) of the data at ``path``, which exists and is of a
    kind that format reads (a folder for the datasets' own layouts); :func:`load_examples`'s first checks."""
    root = Path(path).expanduser().absolute()
    if format in ("esc50", "urbansound8k") and root.is_dir() \
            and (inside := _official_audio_folder(root)) is not None:  # auto: detect_format; a forced folder: chosen
        raise DatasetError(inside)
    if format == "auto":
        format = detect_format(root)
    elif format == "demo":
        format = "folder"
    if format not in _LOADERS:
        raise DatasetError(f"unknown dataset format {format!r}; expected auto, demo or one of {', '.join(FORMATS)}")
    if not root.exists():  # not "format 'folder' needs a folder with one subfolder per class": a disk not mounted
        raise DatasetError(f"{root}: no such file or folder{_did_you_mean(root)}")
    if format in ("esc50", "urbansound8k", "speech_commands") and not root.is_dir():
        manifest = (f"; --format csv reads a CSV manifest, also with a recipe whose data.format names a dataset's "
                    f"own layout (--pipeline {format})" if root.suffix.lower() == ".csv" and root.is_file() else "")
        raise DatasetError(f"{root}: format {format!r} needs the dataset's root folder{manifest}")
    return root, format


def check_source(config: Config, *, cross_validation: bool = False) -> None:
    """Refuse the data ``config`` names for what can be told without TensorFlow and without reading its rows: a
    path that does not exist or holds no dataset layout, a manifest that is not a file or whose header lacks
    ``path`` or ``label``, ESC-50's or UrbanSound8K's metadata without one of its columns (:func:`load_examples`'s
    errors, word for word), a silence class (``data.silence_label``) with no noise recordings to cut it from, and
    Speech Commands' lists with ``data.val_from`` ``training`` (:func:`refuse_val_from_lists`; not with
    ``cross_validation``, whose folds are assigned by speaker instead of the lists).
    ``train``, ``crossval`` and ``tune`` call it before TensorFlow loads, which took 5 s before ``x.csv: missing
    column(s) path`` was printed. The demo and a ``data.split_file`` (which lists the files itself; the data is not
    read) are not checked."""
    data = config.data
    if data.split_file is not None or data.path is None or data.format == "demo":
        return
    root, fmt = _checked_source(data.path, data.format)
    if not cross_validation:
        refuse_val_from_lists(root, fmt, data)
    if fmt == "csv":
        _check_csv_file(root)
        _read_header(root, MANIFEST_COLUMNS, MANIFEST_OPTIONAL)
    elif fmt == "esc50":  # its metadata's header: a renamed column was refused after TensorFlow's start-up
        _read_header(root / ESC50_META, ESC50_COLUMNS, ESC50_OPTIONAL)
    elif fmt == "urbansound8k":
        _read_header(root / US8K_META, US8K_COLUMNS, US8K_OPTIONAL)
    if data.silence_label is not None and data.silence_share > 0:  # a silence class with no noise to cut it from
        silence_noise_dir(config, root, fmt)


def refuse_val_from_lists(root: Path, fmt: str, data: DataConfig) -> None:
    """Refuse ``data.val_from`` ``training`` for a Speech Commands folder with its lists: ``validation_list.txt``
    would train, pooled with the rest, and a ``data.val_fraction`` of every speaker but the test list's validate.
    The two lists are the benchmark's protocol (each speaker in one split, the published numbers' validation), which
    a keyword-spotting user expects kept; it was done without a word. A copy without the lists has no folds (its
    split is drawn by speaker either way), and a cross-validation assigns folds by speaker (not refused there)."""
    if (fmt != "speech_commands" or data.val_from != "training"
            or not all((root / name).is_file() for name in SPEECH_COMMANDS_LISTS.values())):
        return
    raise DatasetError(f"{root}: data.val_from 'training' (--val-from training) would train on Speech Commands' "
                       f"{SPEECH_COMMANDS_LISTS[2]} too, and validate on a data.val_fraction {data.val_fraction:g} "
                       f"drawn from it and the training speakers: the two lists are the benchmark's split, each "
                       f"speaker in one, and its validation is {SPEECH_COMMANDS_LISTS[2]}; leave --val-from training "
                       f"out (or give --val-from fold), or cross-validate by speaker with python -m sound_tf.crossval")


def _warn_lookalike_labels(examples: Sequence[Example], source: Path) -> None:
    """Labels that differ only in the spaces, hyphens or underscores between words, case, Unicode form or leading
    zeros (``dog  bark``/``dog bark``, ``bearing-fault``/``bearing_fault``, ``Dog``/``dog``, é composed or not,
    ``01``/``1``: a spreadsheet drops the zeros of the rows it saw as numbers) are different classes; say so,
    with the files of each spelling, since it is rarely meant. Every dataset format's labels pass here
    (:func:`load_examples`, and a ``data.split_file`` in :func:`prepare_dataset`)."""
    counts = Counter(ex.label for ex in examples)  # in the order the labels first appear

    def form(label: str, *, joiners: bool = True) -> str:  # joiners: a - or _ between words is a space
        text = unicodedata.normalize("NFKC", label).casefold()
        text = " ".join((text.replace("-", " ").replace("_", " ") if joiners else text).split())
        return text.lstrip("0") or "0" if text.isascii() and text.isdigit() else text

    forms: dict[str, set[str]] = defaultdict(set)
    for label in counts:  # 'bearing-fault' / 'bearing_fault' too: a typo in a few rows made a class of its own
        forms[form(label)].add(label)
    alike = [sorted(labels) for labels in forms.values() if len(labels) > 1]
    if alike:
        spaced = any(" ".join(label.split()) != label for labels in alike for label in labels)
        joined = any(len({form(label, joiners=False) for label in labels}) > 1 for labels in alike)
        how = ("the hyphens, underscores or spaces between words, case, Unicode form or leading zeros" if joined
               else "the spaces between words, case, Unicode form or leading zeros" if spaced
               else "case, Unicode form or leading zeros")
        files = "; ".join(" / ".join(f"{label!r} ({counted(counts[label], 'files')})"
                                     for label in labels) for labels in alike[:5])
        remedy = ("write them one way in its label column" if source.suffix.lower() == ".csv" and source.is_file()
                  else "give their class folders one name" if source.is_dir() else "write them one way")
        logger.warning("%s: %s only in %s%s separate classes (e.g. %s): %s%s; %s if they are one class",
                       source, "1 group of labels differs" if len(alike) == 1
                       else f"{counted(len(alike), 'groups of labels')} differ", how,
                       ", and its labels are" if len(alike) == 1 else " and are",
                       " / ".join(repr(label) for label in alike[0]), files, "; ..." if len(alike) > 5 else "", remedy)


# -- splits ----------------------------------------------------------------------------------------
#: What a fold's log line, the report's tables and train's held-out line call the groups: the metadata's own group
#: column (ESC-50's ``src_file``, UrbanSound8K's ``fsID``), Speech Commands' speakers (its files' names), and a CSV
#: manifest's ``group`` column (FSDD's speakers, as the README's manifest gives them) otherwise.
GROUP_NAMES = {"esc50": "src_file", "urbansound8k": "fsID", "speech_commands": "speaker"}
#: Up to this many groups in a fold's test clips: its log line and per-fold row name them, else they count them.
GROUPS_IN_FOLD_LINE = 3


def group_word(data_format: str) -> str:
    """What the groups of data in ``data_format`` are called (:data:`GROUP_NAMES`, else ``group``), in every place
    that names or counts them: a fold's log line, the report's per-fold table and its dataset table."""
    return GROUP_NAMES.get(data_format, "group")


def groups_tested(groups: Iterable[str | None], data_format: str) -> str:
    """The groups of a fold's test clips as its log line and per-fold row say them (:func:`group_word`):
    ``group yweweler``, ``speakers a, b, c`` (up to :data:`GROUPS_IN_FOLD_LINE`), ``40 fsIDs``; ``""`` when no clip
    has a group. The line 'fold 1: train 2000 (folds 2-5), val 500 (fold 6), test 500 clips' of FSDD by speaker did
    not say whose digits fold 1 tested (folds.csv and the report's dataset table did)."""
    names = sorted({group for group in groups if group})
    word = group_word(data_format)
    if not names:
        return ""
    if len(names) > GROUPS_IN_FOLD_LINE:
        return f"{len(names)} {word}s"
    return f"{word}{'s' if len(names) > 1 else ''} {', '.join(names)}"


def held_out_groups_line(groups: Mapping[str, Iterable[str | None]], data_format: str, source: str) -> str | None:
    """``data: each group in one split (data.group_pattern): val group lucas; test group nicolas; train 4 groups``:
    who a drawn split holds out, ``groups`` being each split's clips' groups (:func:`groups_tested`); ``None`` when
    no clip has one. A folder split by speaker said only that 'a group's files share one split or fold', and which
    speakers were tested was in ``split.csv`` alone (crossval's fold lines name them)."""
    if not any(group for name in SPLITS for group in groups.get(name, ())):
        return None
    trained = len({group for group in groups.get("train", ()) if group})
    held = "; ".join(f"{name} {tested}" for name in ("val", "test") if (tested := groups_tested(groups.get(name, ()),
                                                                                                data_format)))
    return (f"data: each {group_word(data_format)} in one split ({source}): {held}; "
            f"train {counted(trained, group_word(data_format) + 's')}")


def _group_labels(examples: Sequence[Example]) -> dict[str, str]:
    """Each group's majority label (ties: alphabetically first)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for ex in examples:
        counts[ex.group_key][ex.label] += 1
    return {g: min(c, key=lambda label: (-c[label], label)) for g, c in counts.items()}


def _partition(examples: Sequence[Example], fractions: Sequence[tuple[str, float]],
               rng: np.random.Generator) -> dict[str, str]:
    """Assign every group to one of ``fractions``' splits or ``train``, stratified by label.

    Per label, groups are shuffled and each named split takes, in that order, the groups that fit in its
    fraction of the label's examples (skipping those that would overshoot it), then the smallest group
    left if that brings it closer (or when it has none yet: every split gets at least one), as long as
    one group is left for every later split and for training. A big source recording therefore goes to
    training instead of filling a held-out split; with groups of one size this is the first groups of
    the shuffled order. A label with ``n`` groups reaches all splits when ``n >= len(fractions) + 1``;
    with fewer, the earlier splits in ``fractions`` get one group each.
    """
    group_label = _group_labels(examples)
    sizes = Counter(ex.group_key for ex in examples)
    by_label: dict[str, list[str]] = defaultdict(list)
    for group in sorted(group_label):
        by_label[group_label[group]].append(group)
    assignment: dict[str, str] = {}
    for label in sorted(by_label):
        pool = [by_label[label][i] for i in rng.permutation(len(by_label[label]))]
        total = sum(sizes[g] for g in pool)
        eligible = list(fractions)[: max(0, len(pool) - 1)]
        for position, (name, fraction) in enumerate(eligible):
            max_take = len(pool) - 1 - (len(eligible) - position - 1)  # a group stays for each later split and train
            target = fraction * total
            chosen: dict[str, None] = {}  # ordered, with set lookups
            count = 0
            for group in pool:
                if len(chosen) == max_take:
                    break
                if count + sizes[group] <= target:
                    chosen[group] = None
                    count += sizes[group]
            rest = [g for g in pool if g not in chosen]
            if rest and len(chosen) < max_take:
                smallest = min(rest, key=lambda g: sizes[g])  # the first of the smallest, in shuffled order
                if not chosen or abs(count + sizes[smallest] - target) < abs(count - target):
                    chosen[smallest] = None
            for group in chosen:
                assignment[group] = name
            pool = [g for g in pool if g not in assignment]
        for group in pool:
            assignment[group] = "train"
    return assignment


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, (bool, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)) or (
            not 0 < float(value) < 0.5):  # "0.2" was read as 0.2, "abc" a bare ValueError
        raise DatasetError(f"{name} must be in (0, 0.5), got {value!r}")
    return float(value)


def _check_seed(seed: int) -> int:
    """``seed`` as an int: ``None`` drew a different split on every call, 1.5 or "1" failed inside numpy."""
    if not is_whole(seed) or seed < 0:
        raise ConfigError(f"seed must be a whole number >= 0 (the same seed gives the same split), got {seed!r}")
    return int(seed)


def _example_list(examples: Sequence[Example], function: str) -> list[Example]:
    """``examples`` as a list of :class:`Example`; one Example or a path is refused by name."""
    if isinstance(examples, (Example, str, bytes, os.PathLike)) or not hasattr(examples, "__iter__"):
        raise ConfigError(f"{function} takes a list of Example, got {type(examples).__name__} {examples!r}"[:300])
    examples = list(examples)
    other = next((ex for ex in examples if not isinstance(ex, Example)), None)
    if other is not None:
        raise ConfigError(f"{function} takes a list of Example (e.g. from load_examples), and one item is "
                          f"{type(other).__name__} {other!r}"[:300])
    return examples


def split_examples(examples: Sequence[Example], *, test_fold: int | None = None, val_fold: int | None = None,
                   val_fraction: float = 0.15, test_fraction: float = 0.15,
                   seed: int = 0, val_from: str = "fold") -> dict[str, list[Example]]:
    """Split examples into train/val/test without leaking a clip or a source recording.

    With folds (every example has one), whole folds are held out and clips are never reshuffled:
    ``test`` is ``test_fold`` (default: the largest fold), ``val`` is ``val_fold`` (default: the fold
    before the test fold, cyclically among the folds present) and ``train`` the rest. With exactly two
    folds, or with ``val_from="training"`` (``data.val_from``), the folds but the test fold are split into
    train and a group-aware, label-stratified ``val_fraction`` for validation, drawn with ``seed`` as a split
    without folds draws it (``val_fold`` must then stay unset): a model trains on all the other folds, less that
    share, as many papers on UrbanSound8K and ESC-50 do. Every class with two groups or more in those folds is in
    validation.

    Without folds, groups (source recordings; a file without a group is its own) are assigned to
    splits per label: shuffled with ``seed``, then test and val take the number of groups whose size is
    closest to their fraction (at least one each). Every class with at least three groups appears in
    every split; one with two groups is in train and test; one with one group in train only.

    Parameters
    ----------
    examples : sequence of Example
    test_fold, val_fold : int, optional
    val_fraction, test_fraction : float
        In (0, 0.5); used without folds (``val_fraction`` also with two folds, or with ``val_from="training"``).
    seed : int
    val_from : str
        ``"fold"`` (a whole fold validates) or ``"training"`` (a ``val_fraction`` of the training folds does).

    Returns
    -------
    dict
        ``{"train": [...], "val": [...], "test": [...]}``, each in the input order.

    Raises
    ------
    DatasetError
        No examples, only some examples with a fold, fewer than two folds, a ``test_fold`` or ``val_fold``
        below 1 (folds count from 1: an :class:`Example` refuses a fold below 1 too), a fold number that
        does not exist (the message lists the folds present), ``val_fold == test_fold``, or ``val_fold`` with
        ``val_from="training"``.
    ConfigError
        ``val_from`` other than ``"fold"`` or ``"training"``.
    """
    examples = _example_list(examples, "split_examples")
    if not examples:
        raise DatasetError("cannot split an empty list of examples")
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    rng = np.random.default_rng(_check_seed(seed))
    if val_from not in ("fold", "training"):
        raise ConfigError(f"val_from must be 'fold' or 'training', got {val_from!r}")
    for name, fold in (("test_fold", test_fold), ("val_fold", val_fold)):
        if isinstance(fold, (bool, np.bool_)):  # True was fold 1
            raise DatasetError(f"{name} must be a fold number, got {fold!r}")
        problem = fold_below_1(name, fold)
        if problem is not None:  # was "does not exist" (or "given but the examples have no folds")
            raise DatasetError(problem)
    with_fold = sum(ex.fold is not None for ex in examples)
    if 0 < with_fold < len(examples):
        raise DatasetError(f"{with_fold} of {len(examples)} examples have a fold and the others do not; give "
                           f"every example a fold or none")

    if with_fold == 0:
        if test_fold is not None or val_fold is not None:
            raise DatasetError(f"test_fold={test_fold!r} / val_fold={val_fold!r} given but the examples have no "
                               f"folds; leave them unset to split by val_fraction/test_fraction")
        assignment = _partition(examples, [("test", test_fraction), ("val", val_fraction)], rng)
        return {name: [ex for ex in examples if assignment[ex.group_key] == name] for name in SPLITS}

    folds = sorted({ex.fold for ex in examples})
    if len(folds) < 2:
        raise DatasetError(f"all examples are in fold {folds[0]}; at least two folds are needed to hold one out "
                           f"(or drop the fold column to split by fractions)")
    test_defaulted = test_fold is None
    if test_defaulted:
        test_fold = folds[-1]
    if test_fold not in folds:
        raise DatasetError(f"test_fold={test_fold!r} does not exist; folds present: {folds}")
    if val_fold is not None and val_fold not in folds:
        raise DatasetError(f"val_fold={val_fold!r} does not exist; folds present: {folds}")
    if val_fold is not None and val_fold == test_fold:
        if test_defaulted:
            raise DatasetError(f"val_fold={val_fold} is the test fold: test_fold is not set and defaults to the last "
                               f"fold, {test_fold}; set test_fold (--test-fold) to another fold or choose another "
                               f"val_fold from {folds}")
        raise DatasetError(f"val_fold and test_fold are both {test_fold}; choose two different folds from {folds}")
    _warn_groups_across_folds(examples)
    test = [ex for ex in examples if ex.fold == test_fold]
    rest = [ex for ex in examples if ex.fold != test_fold]
    if len(folds) == 2 or val_from == "training":
        if val_fold is not None and val_from == "training":
            raise DatasetError(f"val_from='training' draws validation from the training folds (a val_fraction "
                               f"{val_fraction:g} of them), so val_fold={val_fold} would not be used: leave one of "
                               f"them out")
        if val_fold is not None:
            raise DatasetError(f"with only two folds {folds}, val_fold={val_fold} and test_fold={test_fold} leave no "
                               f"training fold; leave val_fold unset to carve validation from the training fold")
        assignment = _partition(rest, [("val", val_fraction)], rng)
        return {"train": [ex for ex in rest if assignment[ex.group_key] == "train"],
                "val": [ex for ex in rest if assignment[ex.group_key] == "val"],
                "test": test}
    if val_fold is None:
        val_fold = folds[(folds.index(test_fold) - 1) % len(folds)]
    return {"train": [ex for ex in rest if ex.fold != val_fold],
            "val": [ex for ex in rest if ex.fold == val_fold],
            "test": test}


def _warn_groups_across_folds(examples: Sequence[Example]) -> None:
    folds_of: dict[str, set] = defaultdict(set)
    for ex in examples:
        if ex.group is not None:
            folds_of[ex.group].add(ex.fold)
    spread = sorted(g for g, f in folds_of.items() if len(f) > 1)
    if spread:
        logger.warning("%s %s clips in more than one fold (e.g. %s): held-out folds share source recordings with "
                       "training; the folds are used as given", counted(len(spread), "groups"),
                       "has" if len(spread) == 1 else "have", spread[0])


#: The steps a smaller ``data.val_fraction`` is suggested in (:func:`val_from_training_lines`): the largest multiple
#: of the first below one training fold's share, else of the next.
VAL_FRACTION_STEPS = (Fraction(1, 20), Fraction(1, 100))


def val_from_training_lines(examples: Sequence[Example], config: Config, *, test_fold: int | None = None,
                            fmt: str | None = None) -> list[str]:
    """What ``data.val_from`` ``training`` costs the split of ``examples`` with test fold ``test_fold`` (default:
    ``config.data.test_fold``, else the last), as log lines without a prefix; none for ``data.val_from`` ``fold``,
    data without folds or with two (the two-fold split draws validation either way).

    - When ``data.val_fraction`` is at least one training fold's share (1 / their number: 0.111 of UrbanSound8K's
      nine) and the drawn validation leaves fewer training clips than a whole fold's would (``--val-from fold``),
      which is the point of drawing it lost: both splits' clips, and a smaller ``data.val_fraction`` (below that
      share, in :data:`VAL_FRACTION_STEPS`) with the clips it leaves. The clips are those the run uses: with
      ``data.other_label``, each split's share of the other class (:func:`draw_other`), not all of its files.
    - When clips of the training folds have no group (a CSV without a ``group`` column; ``fmt`` names the
      layout), each is drawn alone: one source recording's or speaker's clips can validate and train alike.
    """
    data = config.data
    folds = sorted({ex.fold for ex in examples})
    if data.val_from != "training" or None in folds or len(folds) <= 2:
        return []
    test_fold = test_fold if test_fold is not None else data.test_fold if data.test_fold is not None else folds[-1]
    training_folds = len(folds) - (test_fold in folds)
    lines = []

    def drawn(val_fraction: float, val_from: str = "training") -> dict[str, list[Example]]:
        # each split then takes its share of the other class (data.other_label), as the run's does: the line counted
        # every file of the other labels, train 184 and val 32 where the run trained on 102 and validated on 18
        return draw_other(split_examples(examples, test_fold=test_fold, val_fraction=val_fraction,
                                         seed=config.train.seed, val_from=val_from), data, config.train.seed)

    def sizes(splits: Mapping[str, Sequence[Example]]) -> str:
        return f"train {len(splits['train'])}, val {len(splits['val'])}"

    share = Fraction(1, training_folds)
    if Fraction(repr(float(data.val_fraction))) >= share:  # 0.1 as written, not the float a little above 1/10
        mine, whole = drawn(data.val_fraction), drawn(data.val_fraction, "fold")
        if len(mine["train"]) < len(whole["train"]):
            step = next((step for step in VAL_FRACTION_STEPS if math.ceil(share / step) > 1), None)
            smaller = None if step is None else float((math.ceil(share / step) - 1) * step)
            lines.append(f"data.val_fraction {data.val_fraction:g} of {training_folds} training folds validates on "
                         f"more clips than one fold ({float(share):.3g}) would: models train on fewer clips than "
                         f"with --val-from fold ({sizes(mine)}, against {sizes(whole)})"
                         + ("" if smaller is None else
                            f"; try --set data.val_fraction={smaller:g} ({sizes(drawn(smaller))})"))
    rest = [ex for ex in examples if ex.fold != test_fold]
    alone = sum(ex.group is None for ex in rest)
    if alone:
        which = (("the manifest has no group column" if fmt == "csv" else "no clip of them has a group")
                 if alone == len(rest) else f"{alone} of their {counted(len(rest), 'clips')} have no group")
        lines.append(f"data.val_from training draws validation from the training folds group by group, and {which}: "
                     f"such clips are drawn one by one, so one source recording's or speaker's clips can be in "
                     f"training and validation alike and validation may read high (a group column, as "
                     f"UrbanSound8K's fsID, keeps each on one side)")
    return lines


def assign_kfold(examples: Sequence[Example], k: int, seed: int) -> list[int]:
    """Stratified group k-fold fold numbers (1..k) for examples without official folds.

    Uses scikit-learn's ``StratifiedGroupKFold`` (shuffled with ``seed``): examples of one group share
    a fold and each fold's label distribution follows the whole set's.

    Parameters
    ----------
    examples : sequence of Example
    k : int
        Number of folds, at least 2 and at most the number of groups.
    seed : int

    Returns
    -------
    list of int
        Fold number of each example, in input order; every fold 1..k holds examples.

    Raises
    ------
    DatasetError
        No examples, ``k`` out of range, or a fold left empty (choose a smaller ``k``).
    ConfigError
        ``examples`` is not a list of :class:`Example`, or ``seed`` is not a whole number >= 0.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    examples = _example_list(examples, "assign_kfold")
    if not examples:  # was "max() arg is an empty sequence"
        raise DatasetError("cannot assign folds to an empty list of examples")
    seed = _check_seed(seed)
    groups = [ex.group_key for ex in examples]
    n_groups = len(set(groups))
    labels = [ex.label for ex in examples]
    largest = max(Counter(labels).values())  # scikit-learn needs a class with at least k members
    limit = min(n_groups, largest)
    if not is_whole(k) or not 2 <= k <= limit:
        raise DatasetError(f"k must be an integer in [2, {limit}] (the number of groups, {n_groups}, and of clips "
                           f"in the largest class, {largest}), got {k!r}")
    k = int(k)
    folds = [0] * len(examples)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(examples)), labels, groups), start=1):
        for index in held_out:
            folds[index] = fold
    empty = sorted(set(range(1, k + 1)) - set(folds))
    if empty:  # scikit-learn can put two groups in one fold and none in another when k is near the group count
        raise DatasetError(f"k={k} leaves {'fold' if len(empty) == 1 else 'folds'} {empty} without examples "
                           f"({n_groups} groups of sizes {sorted(Counter(groups).values(), reverse=True)[:12]}); "
                           f"choose a smaller k")
    return folds


# -- split files -----------------------------------------------------------------------------------
def write_split_csv(path: str | os.PathLike, splits: Mapping[str, Sequence[Example]]) -> Path:
    """Write splits as a CSV with columns ``split,path,label,fold,group`` (reusable by :func:`read_split_csv`).

    Raises
    ------
    DatasetError
        An unknown split name, a file listed twice (in one split or two: it would leak), a label or
        group with a line break, or a label with a control character: what :func:`read_split_csv`
        refuses is not written.
    ConfigError
        ``splits`` is not a mapping of split name to a list of :class:`Example`.
    """
    if not isinstance(splits, Mapping):
        raise ConfigError(f"write_split_csv takes a dict of split name -> list of Example, got {type(splits).__name__}")
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise DatasetError(f"unknown split name(s) {sorted(unknown)}; expected {', '.join(SPLITS)}")
    splits = {name: _example_list(splits[name], f"write_split_csv's {name!r} split") for name in SPLITS
              if name in splits}
    # Written, these were refused by read_split_csv when the run resumed from its split.csv.
    seen: dict[str, str] = {}
    for name, examples in splits.items():
        for ex in examples:
            broken = next((value for value in (ex.label, ex.group) if value is not None
                           and ("\n" in str(value) or "\r" in str(value))), None)
            if broken is not None:
                raise DatasetError(f"{ex.path}: the label or group {broken!r} holds a line break")
            code = _control_character(str(ex.label))
            if code is not None:
                raise DatasetError(f"{ex.path}: the label {ex.label!r} holds a control character ({code})")
            key = os.path.normpath(str(ex.path))
            if key in seen:
                raise DatasetError(f"{ex.path} is listed twice (in the {seen[key]} and {name} splits); list each "
                                   f"file once")
            seen[key] = name
    rows = [(name, ex.path, ex.label, "" if ex.fold is None else ex.fold, "" if ex.group is None else ex.group)
            for name in SPLITS for ex in splits.get(name, ())]
    return atomic.write_csv(path, SPLIT_COLUMNS, rows)


def read_split_csv(path: str | os.PathLike, *, run_file: bool = False) -> dict[str, list[Example]]:
    """Read a ``split.csv`` written by :func:`write_split_csv` (relative paths: from the CSV's folder).

    ``run_file``: ``path`` is the ``split.csv`` a run (or a search) wrote into its folder, read to resume,
    evaluate or export that run. Its folds are read as written: a run made before folds were checked, from a
    manifest numbering them from 0, holds fold 0, and its splits are already made (a ``data.split_file``, read
    to make them, refuses a fold below 1 as every manifest does).
    """
    path = Path(path).expanduser()
    rows = _read_rows(path, ("split", "path", "label"), ("fold", "group"), verbatim=("path",), label="label")
    base = path.parent.resolve()
    examples = []
    for line, row in rows:
        if row["split"] not in SPLITS:
            raise DatasetError(f"{path}, line {line}: split must be one of {', '.join(SPLITS)}, got {row['split']!r}")
        file = Path(row["path"]).expanduser()
        if row["path"] != row["path"].strip() and not (base / file).exists():  # a hand-written "a, b.wav"
            file = Path(row["path"].strip()).expanduser()
        fold = _parse_fold(row.get("fold", ""), path, line, below_1=run_file)
        examples.append((Example if fold is None or fold >= 1 else _saved_example)(
            path=os.path.normpath(file if file.is_absolute() else base / file), label=row["label"], fold=fold,
            group=row.get("group") or None))
    _listed_once(examples, [(line, row["path"]) for line, row in rows], path)  # one file in two splits leaks
    splits: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for (_, row), example in zip(rows, examples):
        splits[row["split"]].append(example)
    return splits


def _saved_example(*, path: str, label: str, fold: int | None, group: str | None) -> Example:
    """An :class:`Example` with a fold below 1 as a run's ``split.csv`` from before folds were checked holds
    it (:func:`read_split_csv` with ``run_file``): built without :meth:`Example.__post_init__`, which refuses
    such a fold for examples that are still to be split."""
    example = object.__new__(Example)
    for name, value in (("path", path), ("label", label), ("fold", fold), ("group", group)):
        object.__setattr__(example, name, value)
    return example


def _read_skipped(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["path"], row["reason"]) for row in csv.DictReader(handle) if row.get("path")]


# -- chosen labels, the other class and silence (keyword spotting's 12 classes) -----------------------
#: Where the clips of a run's silence class are written, under the decode cache's rate folder.
SILENCE_DIR = "silence"
#: Which clips of noise a run's silence class holds (split, clip, the recording and where in it, the gain).
SILENCE_CSV = "silence.csv"
SILENCE_COLUMNS = ("split", "path", "noise", "start_seconds", "gain")
#: The random streams of :func:`draw_other` and :func:`silence_slices` (with ``train.seed`` and the split's index).
_OTHER_STREAM, _SILENCE_STREAM = 1, 2


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def class_shares(kept: int, data: Any) -> tuple[int, int]:
    """``(other, silence)``: how many examples of the other class and of silence a split with ``kept`` examples of
    the kept labels takes, so that each is its share of all of the split's (``data``: a config's ``data`` section):
    the split holds ``kept / (1 - other_share - silence_share)`` examples, the shares counted only for a class
    that is set. Rounded half up."""
    other = float(data.other_share) if data.other_label is not None else 0.0
    silence = float(data.silence_share) if data.silence_label is not None else 0.0
    total = kept / (1.0 - other - silence)
    return _round_half_up(other * total), _round_half_up(silence * total)


def choose_labels(examples: Sequence[Example], data: Any, root: Path) -> tuple[list[Example], dict[str, Any]]:
    """The examples of ``data.keep_labels`` (a config's ``data`` section; all of them when it is empty), and those of
    every other label relabelled ``data.other_label`` when it is set (left out when not), before the split: a
    group (speaker) of the other labels is split whole, as any. :func:`draw_other` then takes the other class's
    share of each split. Returns the examples and what became of the other labels (for the data summary).

    Raises
    ------
    DatasetError
        A kept label matches no label of the data (naming those present, and the closest).
    """
    kept = set(data.keep_labels)
    present = Counter(ex.label for ex in examples)
    if not kept:
        return list(examples), {}
    missing = [label for label in data.keep_labels if label not in present]
    if missing:
        import difflib

        # A label kept already is no fix for another ('on': did you mean 'down'? with 'down' kept)
        candidates = [label for label in present if label not in kept]
        close = {label: found[0] for label in missing
                 for found in [difflib.get_close_matches(label, candidates, n=1, cutoff=0.6)] if found}
        hints = [f"{label!r}: did you mean {match!r}?" for label, match in close.items()]
        if SPEECH_COMMANDS_NOISE in missing:  # its folder holds files, so "no file has" alone misled
            hints.append(_noise_folder_not_a_class(data))
        shown = ", ".join(sorted(present)[:40]) + (", ..." if len(present) > 40 else "")
        # Words the data lacks (a copy of some of them, a recipe's list): the flag that keeps the others
        lacking = [label for label in missing if label not in close and label != SPEECH_COMMANDS_NOISE]
        others = [label for label in data.keep_labels if label in present]
        setting = "data.keep_labels=[" + ", ".join(json.dumps(o, ensure_ascii=False) for o in others) + "]"
        keep = f"; to keep the others alone: --set {shlex.quote(setting)}" if lacking and others else ""
        raise DatasetError(f"{root}: data.keep_labels names {'a label' if len(missing) == 1 else 'labels'} "
                           f"{', '.join(repr(m) for m in missing)} that no file has"
                           + (f" ({'; '.join(hints)})" if hints else "") + f"; the data's labels: {shown}{keep}")
    chosen, others = _relabel_others(examples, data)
    return chosen, {"other_labels": len(others), "other_files": sum(others.values())}


def _noise_folder_not_a_class(data: Any) -> str:
    """Why ``_background_noise_`` in ``data.keep_labels`` is no label: Speech Commands' noise folder is read as noise,
    never as a class (its recordings are mixed into training and, with ``data.silence_label``, cut into that class).
    A keep_labels ``['yes', '_background_noise_']`` was told only that no file has the label, though the folder
    holds recordings."""
    silence = (f"cut into clips of data.silence_label {data.silence_label!r}, the class of no speech"
               if data.silence_label else
               "cut into a class of no speech once data.silence_label is set (the speech_commands_12 recipe's "
               "'_silence_')")
    return (f"{SPEECH_COMMANDS_NOISE!r} is Speech Commands' folder of background noise, never a class: its recordings "
            f"are mixed into training clips as noise and {silence}; remove it from data.keep_labels")


def _relabel_others(examples: Sequence[Example], data: Any) -> tuple[list[Example], Counter]:
    """``examples`` with every label not in ``data.keep_labels`` (non-empty) relabelled ``data.other_label``, or left
    out when it is not set, in input order; and how many files each such label had. Training
    (:func:`choose_labels`) and evaluation (:func:`evaluation_classes`) map the labels alike, each with its own rule
    for a kept label that no file has."""
    kept = set(data.keep_labels)
    others = Counter(ex.label for ex in examples if ex.label not in kept)
    chosen = [ex if ex.label in kept else dataclasses.replace(ex, label=data.other_label) for ex in examples
              if ex.label in kept or data.other_label is not None]
    return chosen, others


def draw_other(splits: Mapping[str, Sequence[Example]], data: Any, seed: int, *,
               unreadable: Collection[str] = ()) -> dict[str, list[Example]]:
    """Each split with its other class (``data.other_label``) cut to its share (:func:`class_shares` of the
    split's examples of kept labels), drawn without replacement from ``seed`` and the split's own stream (the
    same seed draws the same files), in input order; a split with fewer keeps them all. A file of ``unreadable``
    (paths) is passed over: the next file of the same seeded order takes its place, so that a split keeps its share
    (without such files, the same draw); an unreadable file of a kept label counts for no share."""
    if data.other_label is None:
        return {name: list(splits[name]) for name in SPLITS}
    unreadable = set(unreadable)
    drawn = {}
    for index, name in enumerate(SPLITS):
        examples = list(splits[name])
        other = [i for i, ex in enumerate(examples) if ex.label == data.other_label]
        # the split's readable files of kept labels: a listed file missing took a share of others as if it trained
        kept = sum(ex.label != data.other_label and ex.path not in unreadable for ex in examples)
        wanted, _ = class_shares(kept, data)
        rng = np.random.default_rng([_check_seed(seed), _OTHER_STREAM, index])
        order = np.asarray(other, dtype=np.int64)[rng.permutation(len(other))].tolist()
        taken = set([i for i in order if examples[i].path not in unreadable][:wanted])
        drawn[name] = [ex for i, ex in enumerate(examples) if ex.label != data.other_label or i in taken]
    return drawn


def _decode_drawn(examples: Sequence[Example], splits: Mapping[str, Sequence[Example]] | None, config: Config,
                  cache: DecodeCache, progress: Callable[[int, int], None],
                  where: Callable[[str], str | None] | None = None) -> tuple[dict[str, list[Example]], CacheResult]:
    """Split (unless ``splits``, the data's folds, are given), draw the other class's share of each split
    (:func:`draw_other`) and decode only what is used: every file of a kept label first (an unreadable one takes no
    place in a split drawn by fractions: a class could lose its training), then the other class's drawn files,
    each unreadable one replaced by the next of the seeded order until the share is met or the split's files run
    out. The files of the other labels that are not drawn are never decoded (a Speech Commands tree's 80,000 other
    words' clips, of which the shares take a few thousand). Returns the splits and the decoding's result."""
    data = config.data
    other = data.other_label
    result = cache.build([ex.path for ex in examples if ex.label != other], strict=data.strict, progress=progress,
                         where=where)
    if not result.cached:  # none of the kept labels' files: the caller says so, with their reasons
        return {name: [] for name in SPLITS}, result
    if splits is None:
        splits = _split([ex for ex in examples if ex.label == other or ex.path in result.cached], config)
    unreadable = {path for path, _ in result.skipped}
    while True:
        drawn = draw_other(splits, data, config.train.seed, unreadable=unreadable)
        new = list(dict.fromkeys(ex.path for name in SPLITS for ex in drawn[name]
                                 if ex.path not in result.cached and ex.path not in unreadable))
        if not new:
            return drawn, result
        more = cache.build(new, strict=data.strict, progress=progress, where=where)
        result.cached.update(more.cached)
        result.skipped += more.skipped
        result.decoded += more.decoded
        result.reused += more.reused
        unreadable |= {path for path, _ in more.skipped}


def silence_noise_dir(config: Config, root: Path | None, fmt: str) -> Path:
    """The folder a run's silence class is cut from: ``augment.noise_dir``, else a Speech Commands folder's
    ``_background_noise_``.

    Raises
    ------
    DatasetError
        Neither is there, naming ``data.silence_label`` and ``augment.noise_dir``; or ``augment.noise_dir`` is
        missing, a file or holds no audio file (checked here, before any file is decoded, as the noise augmentation
        checks it only when it mixes noise in).
    """
    if config.augment.noise_dir is not None:
        from .audio import list_audio_folder

        folder = Path(config.augment.noise_dir).expanduser()
        problem = list_audio_folder(folder)[1]
        if problem is not None:
            raise DatasetError(f"data.silence_label={config.data.silence_label!r} cuts its clips from "
                               f"augment.noise_dir={folder}: {problem}")
        return folder
    if fmt == "speech_commands" and root is not None and (root / SPEECH_COMMANDS_NOISE).is_dir():
        return root / SPEECH_COMMANDS_NOISE
    where = (f"{root / SPEECH_COMMANDS_NOISE} does not exist" if fmt == "speech_commands" and root is not None
             else f"this is {fmt} data")
    test_set = separate_test_set_note(root)
    raise DatasetError(f"data.silence_label={config.data.silence_label!r}: its clips are cut from noise recordings, "
                       f"and there are none: augment.noise_dir is not set and no Speech Commands "
                       f"{SPEECH_COMMANDS_NOISE} folder is read ({where}); "
                       + (f"{test_set}" if test_set else
                          "set augment.noise_dir to a folder of background recordings (--set augment.noise_dir=DIR), "
                          "or leave data.silence_label out"))


def noise_regions(num_samples: int, *, val_fraction: float, test_fraction: float) -> dict[str, tuple[int, int]]:
    """``{"train": (0, a), "val": (a, b), "test": (b, num_samples)}``: the parts of a noise recording of
    ``num_samples`` that each split's silence clips are cut from, in samples: the last ``test_fraction`` of it
    for test, the ``val_fraction`` before that for validation, the rest for training (which is also all that
    training mixes in as augmentation noise, :func:`sound_tf.augment.load_noise_folder`). Held-out silence is
    thus never heard in training."""
    val_start = int(num_samples * (1.0 - float(val_fraction) - float(test_fraction)))
    test_start = max(val_start, int(num_samples * (1.0 - float(test_fraction))))
    return {"train": (0, val_start), "val": (val_start, test_start), "test": (test_start, int(num_samples))}


def silence_slices(config: Config, noise_dir: Path, counts: Mapping[str, int],
                   cache: DecodeCache) -> list[dict[str, Any]]:
    """Cut ``counts[split]`` clips (``audio.clip_seconds``) of the recordings in ``noise_dir`` for each split, from
    that split's part of each (:func:`noise_regions`), at a gain drawn uniformly in [0, 1) (rounded to 0.001; 0 is
    a silent clip), and write each once as a WAV under the decode cache (``<rate>/silence/``), where training reads
    it as any example. A recording is drawn in proportion to the clip starts its part offers, the start uniformly
    among them, all from ``train.seed`` and the split's stream: the same seed cuts the same clips, and writes
    nothing the second time. Returns one record per clip: split, path, noise (the recording), start_seconds, gain.

    Raises
    ------
    DatasetError
        ``noise_dir`` holds no readable audio, or no recording has a part long enough for a clip of a split
        that needs one.
    """
    from .audio import list_audio_folder, load_audio, write_wav

    label, rate, clip = config.data.silence_label, config.audio.sample_rate_hz, config.audio.clip_samples
    files, problem = list_audio_folder(noise_dir)
    if problem is not None:
        raise DatasetError(f"data.silence_label={label!r} cuts its clips from {noise_dir}: {problem}")
    decoded = cache.build(files, strict=config.data.strict, silent_use=None, levels=False,
                          skip_use=f"data.silence_label={label!r} cuts no clip from it")
    if not decoded.cached:
        raise DatasetError(f"data.silence_label={label!r} cuts its clips from {noise_dir}, and none of its "
                           f"{counted(len(files), 'audio files')} could be read")
    waves = {src: load_audio(cached, sample_rate_hz=rate) for src, cached in decoded.cached.items()}  # [samples]
    records: list[dict[str, Any]] = []
    for index, name in enumerate(SPLITS):
        if not counts.get(name):
            continue
        usable = []  # (source, its cache file, first start, number of starts)
        for src, wave in waves.items():
            start, end = noise_regions(wave.size, val_fraction=config.data.val_fraction,
                                       test_fraction=config.data.test_fraction)[name]
            if end - start >= clip:
                usable.append((src, Path(decoded.cached[src]), start, end - start - clip + 1))
        if not usable:
            longest = max(wave.size for wave in waves.values()) / rate
            part = {"train": f"the first {1 - config.data.val_fraction - config.data.test_fraction:.0%}",
                    "val": f"the {config.data.val_fraction:.0%} before the last {config.data.test_fraction:.0%}",
                    "test": f"the last {config.data.test_fraction:.0%}"}[name]
            raise DatasetError(f"data.silence_label={label!r}: no recording in {noise_dir} is long enough to cut a "
                               f"{config.audio.clip_seconds:g}-s {name} clip from its {name} part ({part} of each, "
                               f"data.val_fraction / data.test_fraction, so that held-out silence is not trained on); "
                               f"the longest lasts {longest:.2f} s: add longer recordings")
        starts = np.array([count for *_, count in usable], dtype=np.float64)
        rng = np.random.default_rng([_check_seed(config.train.seed), _SILENCE_STREAM, index])
        for _ in range(counts[name]):
            src, cached, first, count = usable[int(rng.choice(len(usable), p=starts / starts.sum()))]
            start = first + int(rng.integers(count))
            gain = round(float(rng.uniform(0.0, 1.0)), 3)
            key = f"{cached.name}\0{start}\0{gain}\0{clip}"
            digest = hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:12]
            path = cache.rate_dir / SILENCE_DIR / f"{Path(src).stem}-{start}-{gain:.3f}-{digest}.wav"
            if not cache.holds(path):
                write_wav(path, gain * waves[src][start:start + clip], rate, durable=False)
            records.append({"split": name, "path": str(path), "noise": src, "start_seconds": round(start / rate, 6),
                            "gain": gain})
    return records


def _refuse_share_of_none(missing: Sequence[str], data: Any, train: Sequence[Item], root: Path) -> None:
    """Refuse an other or silence class (``data`` a config's ``data`` section) that ``missing`` names because its
    share of a small training split rounds to no example: it read ``class _silence_ (0 files: ) has no training
    example; add files or remove the class``, where the share is what to raise."""
    words = sum(item.label not in (data.other_label, data.silence_label) for item in train)
    for which, (label, name) in enumerate(((data.other_label, "other"), (data.silence_label, "silence"))):
        if label is None or label not in missing or class_shares(words, data)[which]:
            continue
        rest = float(data.silence_share if which == 0 else data.other_share) if (
            data.silence_label if which == 0 else data.other_label) is not None else 0.0
        least = math.ceil(500 * (1 - rest) / (words + 0.5)) / 1000  # share * words / (1 - share - rest) >= 0.5
        while not class_shares(words, dataclasses.replace(data, **{f"{name}_share": least}))[which]:
            least = round(least + 0.001, 3)  # the float rounding of the bound
        raise DatasetError(f"{root}: class {label} has no training example: data.{name}_share "
                           f"{float(getattr(data, name + '_share')):g} of a training split with "
                           f"{counted(words, 'examples')} of the other classes rounds to none; raise data.{name}_share "
                           f"to {least:g} or more, or leave data.{name}_label out")


def _refuse_silence_of_the_data(examples: Sequence[Example], data: Any, root: Path) -> None:
    """Refuse data with a label named like ``data.silence_label`` (a folder ``_silence_`` of one's own clips) when
    the silence class is cut from noise: its files were mixed in with the cut clips without a word, or relabelled
    ``data.other_label`` (not being kept), or left out."""
    own = [ex for ex in examples if ex.label == data.silence_label]
    if not own:
        return
    label = data.silence_label
    fate = ("mixed in with the cut clips" if not data.keep_labels else
            f"relabelled {data.other_label!r} (the label is not in data.keep_labels)" if data.other_label is not None
            else "left out (the label is not in data.keep_labels)")
    raise DatasetError(f"{root}: data.silence_label {label!r} is also a label of the data "
                       f"({counted(len(own), 'files')}, e.g. {own[0].path}): the silence class is cut from noise "
                       f"recordings, and these files would be {fate}. To train on your own clips as the silence "
                       f"class, leave data.silence_label out" + (f" and add {label!r} to data.keep_labels"
                                                                 if data.keep_labels else "")
                       + "; to cut it from noise, rename the folder (or move it out of the data)")


def folds_held_apart(splits: Mapping[str, Sequence[Any]]) -> str | None:
    """``"Speech Commands' validation_list.txt and testing_list.txt, ..."`` when a split (a run's, of :class:`Example`
    or :class:`Item`) is those lists' (validation fold 2 and test fold 3 alone, beside the two lists; training holds
    neither), which keep each speaker in one split; ``None`` otherwise. The validation/test gap line
    (:func:`sound_tf.metrics.validation_gap`) advised a group column and folds to such a run."""
    folds = {name: {ex.fold for ex in splits.get(name, ())} for name in SPLITS}
    if folds["val"] != {2} or folds["test"] != {3} or folds["train"] & {2, 3}:
        return None
    tops = {Path(getattr(ex, "source", None) or ex.path).parent.parent for ex in splits["test"]}
    if not any(all((top / name).is_file() for name in SPEECH_COMMANDS_LISTS.values()) for top in tops):
        return None
    return f"Speech Commands' {' and '.join(SPEECH_COMMANDS_LISTS.values())}, which keep each speaker in one split"


def _split_fold(examples: Sequence[Example]) -> int | None:
    """The fold all of a split's ``examples`` share (Speech Commands' test split is fold 3), else ``None``: a
    silence clip of that split takes it, so that ``evaluate --fold 3`` finds it too."""
    folds = {ex.fold for ex in examples}
    return folds.pop() if len(folds) == 1 else None


def _chosen_lines(config: Config, items: Mapping[str, Sequence[Item]], chosen: Mapping[str, Any],
                  records: Sequence[Mapping[str, Any]], noise_dir: Path | None, cache: DecodeCache) -> list[str]:
    """The data summary's lines on the labels kept, the other class and the silence class (none for a run that
    keeps every label, or one resumed from its split.csv)."""
    data, lines = config.data, []
    if chosen and data.other_label is None:
        lines.append(f"data: data.keep_labels: {counted(len(data.keep_labels), 'labels')} kept; "
                     f"{counted(chosen['other_files'], 'files')} of the "
                     f"{counted(chosen['other_labels'], 'other labels')} left out (data.other_label is not set)")
    elif chosen:
        per = {name: sum(item.label == data.other_label for item in items[name]) for name in SPLITS}
        short = [name for name in SPLITS if per[name] < class_shares(
            sum(item.label not in (data.other_label, data.silence_label) for item in items[name]), data)[0]]
        lines.append(f"data: data.other_label {data.other_label!r}: {counted(sum(per.values()), 'files')} of "
                     f"{counted(chosen['other_labels'], 'other labels')} (train {per['train']}, val {per['val']}, "
                     f"test {per['test']}: data.other_share {data.other_share:g} of each split), "
                     f"{chosen['other_files'] - sum(per.values())} left out"
                     + (f"; {' and '.join(short)} had fewer than the share" if short else ""))
    if records:
        per = Counter(r["split"] for r in records)
        recordings = counted(len({r["noise"] for r in records}), "recordings")
        lines.append(f"data: data.silence_label {data.silence_label!r}: {counted(len(records), 'clips')} of "
                     f"{config.audio.clip_seconds:g} s cut from {recordings} in {noise_dir} (train {per['train']}, "
                     f"val {per['val']}, test {per['test']}: data.silence_share {data.silence_share:g} of each split; "
                     f"validation's and test's from the last "
                     f"{data.val_fraction + data.test_fraction:.0%} of each recording, which training never hears), "
                     f"in {cache.rate_dir / SILENCE_DIR}")
    return lines


def chosen_classes_lines(data: Any) -> list[str]:
    """What a config's ``data`` section makes of the labels (``data.keep_labels``, ``data.other_label`` and
    ``data.other_share``, ``data.silence_label`` and ``data.silence_share``), one line each, for the report of a run
    and of its evaluations; none for a run of every label and no silence class."""
    lines = []
    if data.keep_labels:
        lines.append(f"data.keep_labels: {', '.join(data.keep_labels)} ({counted(len(data.keep_labels), 'labels')} "
                     f"kept)")
        lines.append(f"data.other_label {data.other_label!r}: the files of every other label, data.other_share "
                     f"{float(data.other_share):g} of each split" if data.other_label is not None else
                     "data.other_label is not set: the files of every other label are left out")
    if data.silence_label is not None:
        lines.append(f"data.silence_label {data.silence_label!r}: clips cut from noise recordings, data.silence_share "
                     f"{float(data.silence_share):g} of each split" + ("" if data.cuts_silence else " (none cut)"))
    return lines


def own_class_files(examples: Sequence[Example], data: Any) -> dict[str, list[Example]]:
    """The files of ``examples`` already labelled a run's other class or silence class (``data``: its config's
    ``data`` section), by label, in input order: ``data.other_label`` when the run has one (it keeps some labels),
    ``data.silence_label`` when the run cuts silence clips (:attr:`sound_tf.config.DataConfig.cuts_silence`); either
    is then a class of the run's model. Speech Commands' separate test set (``speech_commands_test_set_v0.02``)
    holds ``_unknown_`` and ``_silence_`` folders, each file to be scored: :func:`evaluation_classes` neither draws
    from the first nor cuts clips for the second. Empty for data without such a label."""
    own_labels = {label for label, used in ((data.other_label, bool(data.keep_labels)),
                                             (data.silence_label, data.cuts_silence)) if label is not None and used}
    own: dict[str, list[Example]] = {}
    for ex in examples:
        if ex.label in own_labels:
            own.setdefault(ex.label, []).append(ex)
    return own


def evaluation_classes(examples: Sequence[Example], config: Config, root: Path,
                       fmt: str) -> tuple[list[Example], list[str]]:
    """Other data a run is evaluated on (``evaluate RUN --data``), given the run's chosen classes as its test split
    had them: ``config`` is the run's. With ``data.keep_labels`` the kept labels stay; with ``data.other_label`` the
    files of every other label become that class at ``data.other_share`` of the evaluated files, drawn as training
    drew its test split's (``train.seed``, the test split's stream: Speech Commands' ``--fold 3`` of another copy
    gets the files the run's test split holds), and without it they are left out. With ``data.silence_label``,
    ``data.silence_share`` of clips are cut from the test part of each noise recording (the last
    ``data.test_fraction``, never heard in training) of the data's own ``_background_noise_`` (a Speech Commands
    copy's), else of the run's ``augment.noise_dir``: the clips the run's test split holds when the recordings are
    the same. Where there is no noise to cut them from, the silence class is not evaluated and a line says so.
    Data whose labels already hold the run's other class or silence class (:func:`own_class_files`: Speech
    Commands' separate test set, ``speech_commands_test_set_v0.02``, has ``_unknown_`` and ``_silence_`` folders)
    is scored as labelled: every file of the data's own other class is scored as that class (none drawn, the
    share drawn only from the other words' files, if any), and every file of its own silence class as silence (no
    clip cut). Returns the examples and the lines for the log (none for a run of every label and no silence).

    Raises
    ------
    DatasetError
        No file has one of the kept labels.
    """
    data, lines = config.data, []
    own = own_class_files(examples, data)
    chosen = [ex for ex in examples if ex.label not in own]  # the data's own classes are added back as they are
    if data.keep_labels:
        if not any(ex.label in data.keep_labels for ex in examples):
            shown = ", ".join(sorted({ex.label for ex in examples})[:40])
            raise DatasetError(f"{root}: no file has one of the run's data.keep_labels {list(data.keep_labels)}; "
                               f"the data's labels: {shown}")
        relabelled, others = _relabel_others(chosen, data)
        if data.other_label is None:
            chosen = relabelled
            if others:
                lines.append(f"data: the run's data.keep_labels: {counted(len(data.keep_labels), 'labels')} evaluated; "
                             f"{counted(sum(others.values()), 'files')} of the "
                             f"{counted(len(others), 'other labels')} left out (the run has no data.other_label)")
        else:
            chosen = draw_other({"train": [], "val": [], "test": relabelled}, data, config.train.seed)["test"]
            drawn = sum(ex.label == data.other_label for ex in chosen)
            if data.other_label in own:
                lines.append(f"data: the run's data.other_label {data.other_label!r}: "
                             f"{counted(len(own[data.other_label]), 'files')} of the data's own scored as "
                             f"{data.other_label!r}, none drawn (its label is the run's other class)")
            if others or data.other_label not in own:
                lines.append(f"data: the run's data.other_label {data.other_label!r}: {counted(drawn, 'files')} of "
                             f"{counted(len(others), 'other labels')} (data.other_share {data.other_share:g} of the "
                             f"evaluated files, drawn with train.seed {config.train.seed} as the run's test split "
                             f"was), {sum(others.values()) - drawn} left out")
            chosen += own.get(data.other_label, [])
    if data.silence_label in own:
        chosen += own[data.silence_label]
        lines.append(f"data: the run's data.silence_label {data.silence_label!r}: "
                     f"{counted(len(own[data.silence_label]), 'files')} of the data's own scored as silence, no clip "
                     f"cut from noise recordings (its label is the run's silence class)")
        return chosen, lines
    if data.silence_label is None or not data.silence_share:
        return chosen, lines
    wanted = class_shares(sum(ex.label != data.other_label for ex in chosen), data)[1]
    try:
        noise_dir = root / SPEECH_COMMANDS_NOISE  # the data's own noise first, as another copy's is its own
        if fmt != "speech_commands" or not noise_dir.is_dir():
            noise_dir = silence_noise_dir(config, root, fmt)
        cache = DecodeCache(cache_dir_of(data.cache_dir), sample_rate_hz=config.audio.sample_rate_hz)
        records = silence_slices(config, noise_dir, {"test": wanted}, cache)
    except DatasetError as exc:
        lines.append(f"data: the run's data.silence_label {data.silence_label!r} is not evaluated (no clip of it is "
                     f"scored): {exc}")
        return chosen, lines
    chosen += [Example(path=r["path"], label=data.silence_label) for r in records]
    recordings = counted(len({r["noise"] for r in records}), "recordings")
    lines.append(f"data: the run's data.silence_label {data.silence_label!r}: {counted(len(records), 'clips')} of "
                 f"{config.audio.clip_seconds:g} s cut from {recordings} in {noise_dir} (data.silence_share "
                 f"{data.silence_share:g} of the evaluated files, from the last {data.test_fraction:.0%} of each "
                 f"recording as the run's test split's were)")
    return chosen, lines


# -- the one entry point of the training command ----------------------------------------------------
def resolve_source(config: Config, log: Callable[[str], Any]) -> tuple[Path, str]:
    """The dataset root and format a config names (``None`` or ``demo``: the demo dataset, generated into
    ``data.path`` or the cache if missing; ``log`` receives one line when it is generated)."""
    from .config import Config  # no import cycle at run time; config imports no TensorFlow either

    if not isinstance(config, Config):  # was "'dict' object has no attribute 'data'"
        raise ConfigError(f"resolve_source expects a sound_tf Config (e.g. config_from_recipe(...)), got "
                          f"{type(config).__name__}")
    if not callable(log):
        raise ConfigError(f"resolve_source's log must be a function taking one line (e.g. print), got {log!r}")
    data, audio = config.data, config.audio
    if data.path is None or data.format == "demo":
        kwargs = dict(clips_per_class=data.demo_clips_per_class, sample_rate_hz=audio.sample_rate_hz,
                      clip_seconds=audio.clip_seconds)
        root = (Path(data.path).expanduser() if data.path is not None
                else default_demo_dir(**kwargs, cache_dir=data.cache_dir))
        if data.path is not None and not (root / MARKER_NAME).is_file() and root.exists() and (
                not root.is_dir() or (any(root.iterdir()) and not holds_only_demo_clips(root))):
            raise DatasetError(f"{root}: data.format 'demo' (--format demo, or the demo recipe) generates the demo "
                               f"dataset into a new or empty folder (or, without --data, into the cache; it finishes a "
                               f"generation that was stopped), and this one holds other files; to train on them, set "
                               f"data.format to theirs (leave out --format demo and --pipeline demo)")
        if not (root / MARKER_NAME).is_file():
            log(f"data: generating the synthetic demo dataset ({len(DEMO_CLASSES)} classes x "
                f"{data.demo_clips_per_class} clips) in {root}")
        return make_demo_dataset(root, **kwargs), "folder"
    root = Path(data.path).expanduser().absolute()
    return root, detect_format(root) if data.format == "auto" else data.format


def _split(examples: Sequence[Example], config: Config) -> dict[str, list[Example]]:
    folds = {ex.fold for ex in examples} - {None}
    for name, flag in (("test_fold", "--test-fold"), ("val_fold", "--val-fold")):
        # named as the setting and the flag: 'train --test-fold 6' on ESC-50 was told "test_fold=6 does not exist"
        fold = getattr(config.data, name)
        if not folds or fold is None or isinstance(fold, bool) or not isinstance(fold, numbers.Integral):
            continue
        given = f"data.{name}={fold} ({flag} {fold})"
        below = fold_below_1(f"{given}: a fold", fold)
        if below is not None:
            raise DatasetError(below)
        if fold not in folds:
            raise DatasetError(f"{given}: the data has no fold {fold}; folds present: {sorted(folds)}")
    defaults = type(config.data)()
    val_drawn = config.data.val_from == "training"  # val_fraction of the training folds validates
    unused = [f"data.{name}={getattr(config.data, name)}" for name in ("test_fraction", "val_fraction")
              if getattr(config.data, name) != getattr(defaults, name) and not config.data.cuts_silence
              and (len(folds) > 2 and not (val_drawn and name == "val_fraction")
                   or (folds and name == "test_fraction"))]
    # the folds decide: with 3 or more, test and validation are whole folds; a silence class's held-out clips are cut
    # from the last val_fraction + test_fraction of each noise recording, unless data.silence_share 0 cuts none
    if unused:
        logger.warning("%s not used: the data has folds %s, and whole folds are the test (and validation) "
                       "sets; choose them with data.test_fold / data.val_fold", " and ".join(unused), sorted(folds))
    return split_examples(examples, test_fold=config.data.test_fold, val_fold=config.data.val_fold,
                          val_fraction=config.data.val_fraction, test_fraction=config.data.test_fraction,
                          seed=config.train.seed, val_from=config.data.val_from)


def check_two_classes(root: str | os.PathLike, fmt: str, labels: Sequence[str]) -> None:
    """Raise before a run keeps anything of data with fewer than two classes, saying why when its layout
    tells (``fmt``: the format it was read as; ``labels``: every example's label, or the classes)."""
    if isinstance(labels, (str, bytes)):  # "dog" was the three classes 'd', 'o', 'g'
        raise ConfigError(f"check_two_classes takes the examples' labels as a list, got the single string {labels!r}")
    root, labels = Path(root), list(labels)
    if not labels:  # was an IndexError
        raise DatasetError(f"{root}: no examples, so no classes; a classifier needs at least 2")
    if len(set(labels)) < 2:
        only = sorted(set(labels))[0]
        raise DatasetError(f"{root}: one class ({only!r}); a classifier needs at least 2"
                           + _one_class_hint(root, fmt, only))


def _one_class_hint(root: Path, fmt: str, label: str) -> str:
    """Why a folder dataset may have come out as one class, when its layout says so."""
    if fmt != "folder" or not root.is_dir():
        return ""
    try:
        detected = detect_format(root)
    except DatasetError:
        detected = "folder"
    if detected != "folder":
        return (f"; format 'folder' takes each subfolder as a class, and this looks like {detected}: use "
                f"data.format 'auto' (--format auto)")
    inner = [p.name for p in _class_folders(root / label)] if (root / label).is_dir() else []
    if len(inner) >= 2:
        return (f"; format 'folder' takes each subfolder of {root} as a class, and {label!r} holds {len(inner)} "
                f"folders ({', '.join(inner[:3])}{', ...' if len(inner) > 3 else ''}): are they the classes? "
                f"give that folder as data.path (--data {root / label})")
    manifests = sorted(p.name for p in root.glob("*.csv") if p.is_file() and not p.name.startswith("."))
    if manifests:  # labels.csv beside recordings/: a manifest given as its folder
        shown = ", ".join(manifests[:3]) + (", ..." if len(manifests) > 3 else "")
        return (f"; format 'folder' takes each subfolder of {root} as a class, and {root} holds "
                f"{counted(len(manifests), 'CSV files')} ({shown}): "
                f"is one a manifest of path,label rows? give it as data.path (--data {root / manifests[0]})")
    return f"; format 'folder' takes each subfolder of {root} as a class: add a folder per class"


def decode_progress(log: Callable[[str], Any]) -> Callable[[int, int], None]:
    """A :meth:`~sound_tf.audio.DecodeCache.build` progress callback: ``data: decoding done/count`` to ``log``
    at most every :data:`PROGRESS_EVERY_S` seconds (a cold cache of a real dataset takes minutes)."""
    last_log = [time.monotonic()]

    def progress(done: int, count: int) -> None:
        now = time.monotonic()
        if now - last_log[0] >= PROGRESS_EVERY_S:
            last_log[0] = now
            log(f"data: decoding {done}/{count}")

    return progress


def prepare_dataset(config: Config, run_dir: str | os.PathLike, *, log: Callable[[str], Any] = print) -> PreparedData:
    """Load, split and decode the dataset a config names; write ``split.csv`` and ``skipped.csv``.

    Steps: resolve ``config.data.path`` (``None`` or format ``demo``: generate the demo dataset at
    ``config.audio.sample_rate_hz`` / ``clip_seconds``); take the split from ``run_dir/split.csv`` if it
    exists (resuming a run), else from ``config.data.split_file``, else split the loaded examples with
    :func:`split_examples` (seed ``config.train.seed``); decode every file once through
    :class:`~sound_tf.audio.DecodeCache` (``config.data.cache_dir`` or the default, strict per
    ``config.data.strict``); drop unreadable files; write ``run_dir/split.csv`` (readable files only)
    and ``run_dir/skipped.csv`` (``path,reason``; when resuming, earlier skips are kept).

    Parameters
    ----------
    config : sound_tf.config.Config
    run_dir : str or path-like
        Created if missing.
    log : callable
        Receives one-line progress messages (``print`` by default).

    Returns
    -------
    PreparedData

    Raises
    ------
    DatasetError
        Nothing is readable, a split is empty, or a class has no training example.
    AudioError
        A file is unreadable and ``config.data.strict`` is set.
    ConfigError
        ``config`` is not a :class:`~sound_tf.config.Config` (e.g. a dict read from ``config.json``).
    """
    from .config import Config  # no import cycle at run time; config imports no TensorFlow either

    if not isinstance(config, Config):  # else "'dict' object has no attribute 'data'", after run_dir was made
        raise ConfigError(f"prepare_dataset expects a sound_tf Config (e.g. config_from_recipe(...)), got "
                           f"{type(config).__name__}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.data.split_file is not None:  # the split file lists the files: no dataset is read (or generated)
        root, fmt = Path(config.data.split_file).expanduser(), "split file"
        if config.data.path is not None:
            log(f"data: data.path {config.data.path} is not read: data.split_file {root} lists the files")
    else:
        root, fmt = resolve_source(config, log)
    split_path = run_dir / SPLIT_CSV
    prior_skipped: list[tuple[str, str]] = []
    data = config.data
    silence = data.silence_label is not None and data.silence_share > 0 and not split_path.is_file()
    noise_dir = silence_noise_dir(config, root, fmt) if silence else None  # before any file is decoded
    chosen: dict[str, Any] = {}  # what became of the labels not kept
    grouped_line: str | None = None  # the groups data.group_pattern finds in the file names, said
    left_out: list[tuple[str, str]] = []  # recordings ffmpeg converts, in skipped.csv with the line that does
    if split_path.is_file():
        splits, split_source = read_split_csv(split_path, run_file=True), f"reused {split_path}"
        prior_skipped = _read_skipped(run_dir / SKIPPED_CSV)
    elif config.data.split_file is not None:
        splits, split_source = read_split_csv(config.data.split_file), f"read {config.data.split_file}"
        _warn_lookalike_labels([ex for name in SPLITS for ex in splits[name]], root)
    else:
        examples, splits, split_source = load_examples(root, fmt, left_out=left_out), None, "computed"
        if silence:
            _refuse_silence_of_the_data(examples, data, root)
        examples, grouped_line = group_by_pattern(examples, data.group_pattern, root, fmt)
        if grouped_line is not None:
            log(grouped_line)
        examples, chosen = choose_labels(examples, data, root)
        if fmt == "folder":  # a split is drawn: file by file, unless the names tell the speakers
            warn_speakers_not_grouped(examples, root)
    # Folds are the dataset's own: split now, so an unreadable fold is named. A drawn split waits for the
    # decoding of the kept labels' files (_decode_drawn): an unreadable file must not take a readable one's place.
    drawn_here, folds_split = splits is None, None  # drawn here: only the files used are decoded
    if splits is None and any(ex.fold is not None for ex in examples):
        refuse_val_from_lists(root, fmt, data)
        folds_split = _split(examples, config)
        split_source = ("from the data's folds" if fmt != "speech_commands" else
                        "from the data's folds (" + ", ".join(f"{fold}: {name}" for fold, name
                                                             in SPEECH_COMMANDS_LISTS.items()) + ", 1: the rest)")
        if config.data.val_from == "training" and len({ex.fold for ex in examples}) > 2:  # two folds draw it anyway
            split_source += (f", validation a data.val_fraction {config.data.val_fraction:g} of the training folds "
                             f"(data.val_from training)")
        for line in val_from_training_lines(examples, config, fmt=fmt):
            log(f"data: {line}")
    elif splits is None and (config.data.test_fold is not None or config.data.val_fold is not None):
        given = " and ".join(f"data.{name}={getattr(config.data, name)} (--{name.replace('_', '-')})"
                             for name in ("test_fold", "val_fold") if getattr(config.data, name) is not None)
        raise DatasetError(f"{root}: {given} given, but this {fmt} data has no folds; leave it out to split by "
                           f"data.val_fraction / data.test_fraction, or use a CSV manifest with a fold column")
    all_examples = examples if splits is None else [ex for name in SPLITS for ex in splits[name]]
    if not all_examples:
        raise DatasetError(f"{root}: the split has no examples ({split_source})")
    labels = tuple(sorted({ex.label for ex in all_examples} | ({data.silence_label} if silence else set())))
    check_two_classes(root, fmt, labels)  # before decoding: the classes are known already (crossval's order)

    cache_dir = cache_dir_of(config.data.cache_dir)
    cache = DecodeCache(cache_dir, sample_rate_hz=config.audio.sample_rate_hz)
    if data.silence_label is not None and split_path.is_file():  # resumed: its silence clips, cut again if lost
        rows = {name: [ex for ex in splits[name] if ex.label == data.silence_label] for name in SPLITS}
        if not all(cache.holds(ex.path) for name in SPLITS for ex in rows[name]):
            silence_slices(config, silence_noise_dir(config, root, fmt), {n: len(rows[n]) for n in SPLITS}, cache)
    log(f"data: decode cache {cache.rate_dir}")
    where = listing_locator(root, fmt)  # a file skipped names the listing's line
    try:
        if drawn_here:
            splits, result = _decode_drawn(examples, folds_split, config, cache, decode_progress(log), where)
            tried = set(result.cached) | {path for path, _ in result.skipped}
            all_examples = [ex for ex in examples if ex.path in tried]  # the files used, the unreadable among them
        else:
            result = cache.build([ex.path for ex in all_examples], strict=config.data.strict,
                                 progress=decode_progress(log), where=where)
    except AudioError as exc:  # --strict: the row that lists it too
        raise with_listed_line(exc, root, fmt) from None
    # Resumed, the split lists only the readable files: the ones skipped before count too, as they did then.
    total = len({ex.path for ex in all_examples if ex.label != data.silence_label}  # files, not silence's clips
                | {path for path, _ in prior_skipped + left_out})
    left = chosen.get("other_files", 0) - sum(ex.label == data.other_label for ex in all_examples) if (
        chosen and data.other_label is not None) else chosen.get("other_files", 0)  # other labels' files not used
    if not result.cached:
        reasons = "; ".join(f"{p}: {r}" for p, r in result.skipped[:3])
        hint = ""
        if fmt in ("csv", "split file") and all(r.startswith("file not found") for _, r in result.skipped):
            hint = f"; relative paths in {root.name} are read from its folder, {root.parent.resolve()}"
        raise DatasetError(f"{root}: " + ("its 1 audio file could not be read" if len(result.skipped) == 1 else
                                          f"none of the {counted(len(result.skipped), 'audio files')} could be read")
                           + f" (first reasons: {reasons}){hint}")
    records: list[dict[str, Any]] = []
    if silence:  # each split's share of clips of noise, written once into the cache and read as any example
        counts = {name: class_shares(sum(ex.label != data.other_label and ex.path in result.cached
                                         for ex in splits[name]), data)[1] for name in SPLITS}
        records = silence_slices(config, noise_dir, counts, cache)
        for name in SPLITS:
            fold = _split_fold(splits[name])
            splits[name] = list(splits[name]) + [Example(path=r["path"], label=data.silence_label, fold=fold)
                                                 for r in records if r["split"] == name]
        result.cached.update((r["path"], Path(r["path"])) for r in records)

    index = {label: i for i, label in enumerate(labels)}
    kept = {name: [ex for ex in splits[name] if ex.path in result.cached] for name in SPLITS}
    items = {name: [Item(source=ex.path, cached=str(result.cached[ex.path]), label=ex.label,
                         label_index=index[ex.label], fold=ex.fold, group=ex.group) for ex in kept[name]]
             for name in SPLITS}
    skipped = list(dict.fromkeys(prior_skipped + result.skipped + left_out))

    # Checked before split.csv is written: a run folder keeps a split only when it can train on it (a
    # later run with another --data or fixed files would otherwise reuse a split that failed).
    empty = [name for name in SPLITS if not items[name]]
    unreadable = [name for name in empty if splits[name]]  # it had files, and none could be read
    if unreadable:
        reasons = dict(result.skipped)
        first = {name: splits[name][0].path for name in unreadable}
        raise DatasetError(f"{root}: " + "; ".join(
            (f"the 1 file of the {name} split" if len(splits[name]) == 1
             else f"none of the {counted(len(splits[name]), 'files')} of the {name} split")
            + (f" (fold {splits[name][0].fold})" if len({ex.fold for ex in splits[name]}) == 1
               and splits[name][0].fold is not None else "")
            + (" could not be read" if len(splits[name]) == 1 else " could be read")
            + f" (first: {first[name]}: {reasons.get(first[name], 'unreadable')})"
            for name in unreadable))
    if empty:
        sizes = ", ".join(f"{name} {len(items[name])}" for name in SPLITS)
        raise DatasetError(f"{root}: the {' and '.join(empty)} split{'s' if len(empty) > 1 else ''} ended up empty "
                           f"({sizes}; {counted(len(result.skipped), 'files')} skipped); the dataset needs at least "
                           f"3 readable files (or source groups) per class, or 3 folds")
    train_counts = Counter(item.label for item in items["train"])
    missing = [label for label in labels if train_counts[label] == 0]
    _refuse_share_of_none(missing, data, items["train"], root)
    if missing:  # where their files are: unreadable, or all held out (a class of one group: a typo's few rows)
        def whereabouts(label: str) -> str:
            files = [ex for ex in all_examples if ex.label == label]
            held = [f"{name} {n}" for name in ("val", "test")
                    if (n := sum(ex.label == label and ex.path in result.cached for ex in splits[name]))]
            lost = sum(ex.path not in result.cached for ex in files)
            groups = len({ex.group_key for ex in files})
            return (f"{label} ({counted(len(files), 'files')}: " + ", ".join(held + [f"{lost} unreadable"] * bool(lost))
                    + (f"; {counted(groups, 'groups')}" if held and groups < len(files) else "") + ")")
        unread = any(ex.label in missing and ex.path not in result.cached for ex in all_examples)
        raise DatasetError(f"{root}: {'class' if len(missing) == 1 else 'classes'} "
                           f"{', '.join(whereabouts(label) for label in missing)} "
                           f"{'has' if len(missing) == 1 else 'have'} no {'readable ' * unread}training example; "
                           f"add files or remove {'the class' if len(missing) == 1 else 'the classes'}")
    write_split_csv(split_path, kept)
    atomic.write_csv(run_dir / SKIPPED_CSV, ("path", "reason"), skipped)
    if records:
        atomic.write_csv(run_dir / SILENCE_CSV, SILENCE_COLUMNS, [[r[c] for c in SILENCE_COLUMNS] for r in records])

    per_class = {name: dict(sorted(Counter(item.label for item in items[name]).items())) for name in SPLITS}
    stats = {"root": str(root), "format": fmt, "split_source": split_source, "cache_dir": str(cache.rate_dir),
             "files": total, **({"other_labels_left_out": left} if chosen else {}), "classes": len(labels),
             "decoded": result.decoded, "reused": result.reused,
             "skipped": len(skipped), **{f"{name}_items": len(items[name]) for name in SPLITS},
             "per_class": per_class}
    decoded = [item for name in SPLITS for item in items[name]]
    for line in data_lines([item.source for item in decoded], [item.cached for item in decoded], config):
        log(line)
    # 'used': the files that train, validate and test (an unreadable one is among the skipped, not the used)
    used = len({ex.path for ex in all_examples if ex.label != data.silence_label and ex.path in result.cached})
    log((f"data: {used} files used ({left} of the other labels left out)" if left else f"data: {total} files")
        + f", {len(labels)} classes, decoded {result.decoded} / reused {result.reused}, "
        f"skipped {len(skipped)}; train {len(items['train'])}, val {len(items['val'])}, "
        f"test {len(items['test'])} ({fmt}, split {split_source})")
    if split_source == "computed" and (held := held_out_groups_line(
            {name: [item.group for item in items[name]] for name in SPLITS}, fmt,
            "data.group_pattern" if grouped_line is not None else
            "the file names" if fmt == "speech_commands" else "the group column")) is not None:
        log(held)
    chosen_lines = _chosen_lines(config, items, chosen, records, noise_dir, cache)
    for line in chosen_lines:
        log(line)
    if chosen_lines:  # the report's 'Classes chosen' (evaluation.write_run_report)
        stats["chosen_classes"] = [line.removeprefix("data: ") for line in chosen_lines]
    if split_source == "computed" and (shares := split_shares_line(
            {name: len(items[name]) for name in SPLITS}, config.data.val_fraction, config.data.test_fraction,
            grouped=any(ex.group is not None for ex in all_examples),
            group_source="data.group_pattern" if grouped_line is not None else "the group column")) is not None:
        log(shares)
    for name in ("val", "test"):
        absent = [label for label in labels if label not in per_class[name]]
        if absent:  # a class of one or two files (or source groups) cannot be in every split
            log(f"data: note: {counted(len(absent), 'classes', one='class')} {'has' if len(absent) == 1 else 'have'} "
                f"no {name} example ({', '.join(absent[:5])}"
                f"{', ...' if len(absent) > 5 else ''}): too few files or source groups; "
                + ("early stopping does not see them" if name == "val" else "the test cannot measure them"))
    return PreparedData(labels=labels, splits=items, skipped=skipped, stats=stats)
