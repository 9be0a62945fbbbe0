"""``python -m sound_tf.crossval``: k-fold cross-validation, one fresh model per fold, resumable.

Folds are the dataset's own when it has them (ESC-50: 5, UrbanSound8K: 10, a CSV manifest's ``fold``
column); otherwise they are assigned by stratified group k-fold (``--k``, default 5; clips of one
source recording share a fold). Speech Commands' lists make one split (training, validation, test), not
folds: its folds are assigned by stratified group k-fold too, each speaker in one fold. Fold ``K`` is the
test set of the run in ``OUT/fold_K``; validation is the fold before it (cyclically), so that each model trains on
the folds but two, or with only two folds a group-aware fraction carved from the training fold
(:func:`sound_tf.datasets.split_examples`). ``--val-from training`` (``data.val_from``) carves validation so from
the folds but the test fold (``data.val_fraction`` of them, each source recording's clips on one side, each class
in it when it has two recordings or more there), as many papers on UrbanSound8K and ESC-50 train on all the other
folds.
Every file is decoded once for all folds. Each fold folder is a complete run folder (``model.keras``,
``metrics.json``, ``curves.png``, ``report.html``...).

``OUT`` receives ``crossval.json`` (per-fold scores, mean and standard deviation, pooled metrics, each class's
mean and standard deviation over the folds), ``crossval.csv``, ``crossval_per_class.csv``, the pooled
``confusion_matrix.png`` and ``per_class.png`` and a ``report.html`` with every fold's training curves. Running the
same command again after a kill skips the finished folds (read back from their ``metrics.json``) and resumes the
unfinished one at its last finished epoch.

Examples
--------
    python -m sound_tf.crossval --data ~/ESC-50 --pipeline esc50 --out runs/esc50-cv
    python -m sound_tf.crossval --data my_sounds/ --k 5 --epochs 20
    python -m sound_tf.crossval --data ~/UrbanSound8K --folds 1,3 --out runs/us8k-cv
    python -m sound_tf.crossval --data ~/UrbanSound8K --val-from training --set data.val_fraction=0.1
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from numbers import Integral
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from . import atomic
from .config import Config, fold_below_1, saved_fingerprint
from .datasets import (SPLIT_FOLD_FORMATS, Example, assign_kfold, check_source, group_word, groups_tested,
                       split_examples, val_from_training_lines)
from .errors import AudioError, ConfigError, DatasetError, counted, is_whole, run_cli
from .locks import COMMAND, Wording, claimed, empty_folder, refuse_emptying, refuse_foreign_folder
from .run_state import HISTORY_FILE, epochs_recorded, read_state
from .train import LOG_FILE  # sound_tf.train.setup_logging writes it

STATE_FILE = "crossval_state.json"
DEFAULT_K = 5
#: How :func:`run_crossval`'s messages name its folder, its overwrite and the flags of the command for a Python
#: caller: its arguments, and the setting ``--data`` sets.
PYTHON_WORDING = Wording(out="out_dir", overwrite="overwrite=True", reader="run_crossval", settings="config",
                         arguments={"--folds": "folds", "--k": "k", "--data": "data.path",
                                    "--test-fold": "data.test_fold", "--val-fold": "data.val_fold",
                                    "--val-from": "data.val_from"})


# -- planning (no TensorFlow) ---------------------------------------------------------------------------
def plan_folds(examples: Sequence[Example], *, k: int = DEFAULT_K, seed: int = 0,
               data_format: str | None = None) -> tuple[list[Example], str]:
    """Give every example a fold: the dataset's own folds, or stratified group k-fold.

    Parameters
    ----------
    examples : sequence of Example
    k : int
        Number of folds when the examples have none, or their folds are one split (ignored otherwise).
    seed : int
        Shuffles the assigned folds.
    data_format : str, optional
        The layout the examples were read from: the folds of one in
        :data:`~sound_tf.datasets.SPLIT_FOLD_FORMATS` (Speech Commands' lists) are one train/validation/test
        split, replaced by stratified group k-fold (each speaker in one fold). Held out in turn, each of its
        two lists (a tenth of the data) would train a model on the other tenth alone.

    Returns
    -------
    examples : list of Example
        With ``fold`` set, in input order.
    scheme : str
        ``"official"`` or ``"stratified group k-fold"``.

    Raises
    ------
    DatasetError
        Only some examples have a fold, all share one fold, or ``k`` is out of range.
    """
    examples = list(examples)
    if not examples:
        raise DatasetError("cross-validation needs examples, got none")
    if data_format in SPLIT_FOLD_FORMATS:
        examples = [replace(ex, fold=None) for ex in examples]
    with_fold = sum(ex.fold is not None for ex in examples)
    if with_fold == len(examples):
        folds = sorted({ex.fold for ex in examples})
        if len(folds) < 2:
            raise DatasetError(f"every example is in fold {folds[0]}; cross-validation needs at least two folds")
        return examples, "official"
    if with_fold:
        raise DatasetError(f"{with_fold} of {len(examples)} examples have a fold and the others do not; give every "
                           f"example a fold or none")
    numbers = assign_kfold(examples, k, seed)
    return [replace(ex, fold=fold) for ex, fold in zip(examples, numbers)], "stratified group k-fold"


def scheme_shown(scheme: str, data_format: str) -> str:
    """How the log and the reports name a fold scheme: a CSV manifest's own ``fold`` column is the user's,
    not "official" (the word :func:`plan_folds` returns and the saved state keeps, for ESC-50's and
    UrbanSound8K's folds too)."""
    return "the manifest's fold column" if scheme == "official" and data_format == "csv" else scheme


def fold_splits(examples: Sequence[Example], fold: int, config: Config) -> dict[str, list[Example]]:
    """Train/val/test of one fold: ``test`` is ``fold``; see :func:`sound_tf.datasets.split_examples`."""
    return split_examples(examples, test_fold=fold, val_fraction=config.data.val_fraction,
                          test_fraction=config.data.test_fraction, seed=config.train.seed,
                          val_from=config.data.val_from)


def _folds_of(examples: Iterable[Example]) -> list[int]:
    return sorted({ex.fold for ex in examples if ex.fold is not None})


def folds_named(folds: Sequence[int]) -> str:
    """``fold 10``, ``folds 2-9``, ``folds 1, 3-5``: the folds a split of a fold's run is drawn from, as the log
    names them beside its clips ('fold 1: train 120, val 15, test 15 clips' said neither which folds trained nor
    which one validated)."""
    runs: list[list[int]] = []
    for fold in sorted(folds):
        if runs and fold == runs[-1][-1] + 1:
            runs[-1].append(fold)
        else:
            runs.append([fold])
    text = ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)
    return f"{'fold' if len(folds) == 1 else 'folds'} {text}"


def parse_folds(text: str | None) -> list[int] | None:
    """``"1,3"`` -> ``[1, 3]`` (``None`` stays ``None``)."""
    if text is None:
        return None
    try:
        folds = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--folds expects fold numbers separated by commas, e.g. 1,3; got {text!r}") from None
    if not folds:
        raise ConfigError(f"--folds names no fold: {text!r}")
    below = next((problem for fold in folds if (problem := fold_below_1(f"--folds {text}: a fold", fold))), None)
    if below is not None:  # was run_crossval's "run_crossval: folds must be 1 or more", after TensorFlow's start-up
        raise ConfigError(below)
    return folds


# -- state and files ------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _check_state(out_dir: Path, state: dict[str, Any], *, overwrite: bool, wording: Wording = COMMAND,
                 config: Config | None = None) -> None:
    """Start over when asked (its fold folders deleted under their locks); refuse to mix a cross-validation with
    different settings into ``out_dir`` (the messages name the folder and the overwrite in ``wording``, and the
    settings that differ from its ``config.json`` when ``config`` is given)."""
    old = _read_json(out_dir / STATE_FILE)
    if overwrite:
        # Each fold folder is deleted under its lock, as tune's best run is emptied: one another process trains
        # in (a `train --out cv/fold_2` of the user's) is refused before anything is deleted.
        folds_in = sorted(p for p in out_dir.glob("fold_*") if p.is_dir() and not p.is_symlink())
        with contextlib.ExitStack() as held:
            for fold_dir in folds_in:
                held.enter_context(claimed(fold_dir, "training or exporting this run", wording=wording))
            empty_folder(out_dir, keep=(LOG_FILE,))  # the log of this very command (and the lock) stay
        return
    keys = ("fingerprint", "scheme", "folds", "assignment")
    differs = [key for key in keys if old and old.get(key) != state.get(key)]
    if "fingerprint" in differs and saved_fingerprint(out_dir) == state.get("fingerprint"):
        differs.remove("fingerprint")  # started by an older version: only a setting added since, at its default
    if differs:
        # which settings: "(fingerprint differ)" left the user to diff two config.json files (a --strict dropped)
        from .trainer import changed_settings

        settings = changed_settings(out_dir, config) if config is not None and "fingerprint" in differs else []
        raise ConfigError(f"{out_dir}: holds a cross-validation with different settings or data "
                          f"({', '.join(differs)} {'differs' if len(differs) == 1 else 'differ'}"
                          f"{': ' + '; '.join(settings) if settings else ''}); pass {wording.overwrite} to start over "
                          f"or choose another {wording.out}")


def write_folds_csv(path: Path, examples: Sequence[Example]) -> Path:
    """The fold of every example: ``path,label,fold,group``."""
    return atomic.write_csv(path, ("path", "label", "fold", "group"),
                            ((ex.path, ex.label, ex.fold, ex.group or "") for ex in examples))


def _fold_row(fold: int, metrics: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    from .metrics import SCALAR_METRICS

    row: dict[str, Any] = {"fold": fold, "test_clips": metrics["num_examples"]}
    row.update({key: metrics[key] for key in SCALAR_METRICS})
    row.update(metrics.get("top_k_accuracy", {}))
    row["epochs"] = epochs_recorded(run_dir / HISTORY_FILE)
    row["seconds"] = read_state(run_dir).get("seconds", "")
    return row


#: The ``fold`` of ``crossval.csv``'s standard deviation row, which says which deviation it is: the row read ``std``
#: alone, while pandas' ``DataFrame.std()`` of the fold rows gives the sample one (ddof=1), 1.118 times it over 5 folds.
STD_ROW = "std (ddof=0)"


def write_crossval_csv(path: Path, rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> Path:
    """One row per fold, then ``mean`` and :data:`STD_ROW` rows (the population standard deviation, as
    ``crossval.json``'s ``std`` with its ``std_ddof``; metrics to 6 decimals)."""
    columns = list(rows[0])
    lines = [[f"{row[c]:.6f}" if c in summary["mean"] else row[c] for c in columns] for row in rows]
    lines += [[shown if c == "fold" else f"{summary[name][c]:.6f}" if c in summary[name] else "" for c in columns]
              for name, shown in (("mean", "mean"), ("std", STD_ROW))]
    return atomic.write_csv(path, columns, lines)


PER_CLASS_CSV = "crossval_per_class.csv"


def write_per_class_csv(path: Path, summary: dict[str, Any]) -> Path:
    """One row per class: the folds whose test clips hold it, its precision, recall and F1 as mean and std over
    those folds (the population std, ddof=0, as :data:`STD_ROW`; ``summary``'s ``per_class_folds``), then its
    pooled F1 and support (of the summed confusion matrix); metrics to 6 decimals, empty for a class no fold
    tested (its std, for a class one fold tested)."""
    from .metrics import PER_CLASS_SCORES

    pooled = summary["pooled"]["per_class"]
    columns = ["label", "folds", *(f"{name}_{kind}" for name in PER_CLASS_SCORES for kind in ("mean", "std")),
               "pooled_f1", "support"]
    lines = []
    for label, over in summary["per_class_folds"].items():
        # a class tested by one fold has no spread (a std of 0 would read as folds that agree): left empty
        spread = [f"{over[kind][name]:.6f}" if over["folds"] > (kind == "std") else "" for name in PER_CLASS_SCORES
                  for kind in ("mean", "std")]
        lines.append([label, over["folds"], *spread, f"{pooled[label]['f1']:.6f}", pooled[label]["support"]])
    return atomic.write_csv(path, columns, lines)


# -- the cross-validation ---------------------------------------------------------------------------------
def fold_data(splits: dict[str, list[Example]], item_of: dict[str, Any], labels: tuple[str, ...], fold: int, *,
              skipped: list[tuple[str, str]], stats: dict[str, Any], validation: str | None = None) -> Any:
    """The :class:`~sound_tf.datasets.PreparedData` of one fold, from already decoded items.

    ``item_of`` maps each readable source path to its :class:`~sound_tf.datasets.Item`; ``stats`` holds
    the dataset facts shared by every fold, to which the split sizes and class counts are added; ``validation``,
    where the fold's validation came from (:func:`validation_source`), ends its ``split_source``.
    """
    from .datasets import PreparedData

    items = {name: [item_of[ex.path] for ex in rows] for name, rows in splits.items()}
    per_class = {name: dict(sorted(Counter(item.label for item in rows).items())) for name, rows in items.items()}
    stats = {**stats, "split_source": f"cross-validation ({stats.get('scheme', 'folds')}), test fold {fold}"
                                      + (f", validation {validation}" if validation else ""),
             "classes": len(labels), "skipped": len(skipped),
             **{f"{name}_items": len(rows) for name, rows in items.items()}, "per_class": per_class}
    return PreparedData(labels=labels, splits=items, skipped=list(skipped), stats=stats)


def validation_source(splits: Mapping[str, Sequence[Example]], config: Config) -> str:
    """Where one fold's validation came from, as its log line and report name it: ``fold 10``, or the folds it was
    drawn from with the share (``folds 2-10, data.val_fraction 0.15 of it``: two folds, or ``data.val_from``
    ``training``); ``""`` without validation clips."""
    train_folds, val_folds = _folds_of(splits["train"]), _folds_of(splits["val"])
    # drawn from the training folds (two folds, or data.val_from training): named as the folds it is drawn from,
    # every fold but the test fold, where a fold none of whose groups was drawn went unnamed
    carved_from = _folds_of([*splits["train"], *splits["val"]])
    return (f"{folds_named(carved_from)}, data.val_fraction {config.data.val_fraction:g} of it"
            if set(val_folds) & set(train_folds) or config.data.val_from == "training"
            else folds_named(val_folds) if val_folds else "")


def validation_summary(config: Config, num_folds: int) -> str:
    """Where every fold's validation comes from, as a cross-validation's report and ``crossval.json`` say it."""
    if num_folds == 2:
        return f"a data.val_fraction {config.data.val_fraction:g} of the other fold, group-aware"
    if config.data.val_from == "training":
        return (f"a data.val_fraction {config.data.val_fraction:g} of the folds but the test fold, group-aware "
                f"(data.val_from training)")
    return "the fold before each test fold (data.val_from fold)"


#: :func:`fold_shares_lines`: the share of the clips below which a note says each fold trains on too few, and the --k
#: values it suggests (the smallest above the --k given that trains on that share or more).
MIN_TRAINED_SHARE = 0.5
SUGGESTED_K = (DEFAULT_K, 10)


def _trained_share(num_folds: int, config: Config, *, val_from: str | None = None) -> float:
    """The share of the clips each of ``num_folds`` folds trains on, as the folds are cut: the folds but the test
    fold, less ``data.val_fraction`` of them (two folds, or ``data.val_from`` ``training``), or the folds but two
    (``val_from``: another ``data.val_from`` than ``config``'s)."""
    if num_folds == 2 or (val_from or config.data.val_from) == "training":
        return (num_folds - 1) / num_folds * (1 - float(config.data.val_fraction))
    return (num_folds - 2) / num_folds


def fold_shares_lines(fold_split: Mapping[int, Mapping[str, Sequence[Any]]], config: Config, *, scheme: str,
                      wording: Wording = COMMAND) -> list[str]:
    """How many clips each fold trains, validates and tests on, with their shares of the fold's clips, as one line
    (said once: each fold's own line comes as it starts, among the training's); and, when training gets fewer than
    half of them, a note of a cut that gives it more. ``fold_split``: the splits of the folds that run, by fold;
    ``scheme``: :func:`plan_folds`'s (``official`` folds are the data's own, which ``--k`` does not change).

    ``crossval --k 3`` trained each fold on as many clips as it validated on (20 and 20, session 55): one fold
    tests, the one before it validates, one trains; nothing said so. It now reads ``cross-validation: each fold
    trains on 20 clips (33%), validates on 20 (33%) and tests on 20 (33%); validation is the fold before each test
    fold (data.val_from fold)`` and ``note: each fold trains on 33% of its clips, fewer than half; --k 5 trains on
    about 60%``.
    """
    if not fold_split:
        return []
    folds = len({fold for splits in fold_split.values() for rows in splits.values() for fold in _folds_of(rows)})
    sizes = {name: [len(splits[name]) for splits in fold_split.values()] for name in ("train", "val", "test")}
    totals = [sum(len(rows) for rows in splits.values()) for splits in fold_split.values()]

    def spread(values: Sequence[int], unit: str = "") -> str:  # '20', or '18-22' when the folds differ
        low, high = min(values), max(values)
        return f"{low}{unit}" if low == high else f"{low}-{high}{unit}"

    def amount(name: str, noun: str = "") -> str:  # '20 clips (33%'
        shares = [round(100 * size / total) for size, total in zip(sizes[name], totals) if total]
        return f"{spread(sizes[name])}{noun} ({spread(shares or [0], '%')}"

    lines = [f"cross-validation: each fold trains on {amount('train', ' clips')}), validates on {amount('val')}) and "
             f"tests on {amount('test')}); validation is {validation_summary(config, folds)}"]
    trained = sum(sizes["train"]) / max(sum(totals), 1)
    if trained >= MIN_TRAINED_SHARE:
        return lines
    note = f"note: each fold trains on {trained:.0%} of its clips, fewer than half"
    if scheme == "official":  # the data's own folds: --k changes nothing, validation drawn from the rest does
        drawn = _trained_share(folds, config, val_from="training")
        if folds > 2 and config.data.val_from == "fold" and drawn >= MIN_TRAINED_SHARE:
            note += (f"; {wording.given('--val-from', 'training')} validates on a data.val_fraction "
                     f"{config.data.val_fraction:g} of the other folds instead and trains on about {drawn:.0%}")
    else:
        larger = next((k for k in SUGGESTED_K if k > folds and _trained_share(k, config) >= MIN_TRAINED_SHARE), None)
        if larger is not None:
            note += f"; {wording.given('--k', larger)} trains on about {_trained_share(larger, config):.0%}"
    return [*lines, note]


def assignment_digest(examples: Sequence[Example]) -> str:
    """A short hash of which file is in which fold (a resumed cross-validation must see the same)."""
    lines = sorted(f"{ex.path}\t{ex.label}\t{ex.fold}" for ex in examples)
    return hashlib.sha1("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()[:12]


def run_crossval(config: Config, out_dir: str | Path, *, k: int = DEFAULT_K, folds: Sequence[int] | None = None,
                 overwrite: bool = False, log: Callable[[str], None] = print,
                 verbose: int | str = 0, wording: Wording = PYTHON_WORDING) -> dict[str, Any]:
    """Train and evaluate one model per fold into ``out_dir/fold_K``, then summarise every finished fold.

    Parameters
    ----------
    config : Config
        The settings of every fold's run (``data.test_fold`` / ``data.val_fold`` are not used).
    out_dir : str or Path
        The cross-validation folder; rerunning with the same settings resumes it.
    k : int
        Folds to assign when the dataset has none.
    folds : sequence of int, optional
        Run only these folds (default: all). The summary covers every finished fold.
    overwrite : bool
        Start over, deleting what ``out_dir`` holds. Without it, a folder holding a cross-validation
        with different settings is an error.
    wording : Wording
        How the messages name ``out_dir``, ``overwrite``, ``k``, ``folds`` and ``data.path``: by default as
        these arguments and that setting; ``python -m sound_tf.crossval`` passes its flags
        (:data:`sound_tf.locks.COMMAND`).

    Returns
    -------
    dict
        The content of ``crossval.json``.
    """
    folds = _fold_numbers(folds)
    out_dir = Path(out_dir)
    # A folder of the user's own (or the dataset) is never written into or emptied by overwrite (the command
    # refuses it first, in its own words: --out, --overwrite).
    emptied = ", and overwrite=True empties it first" if overwrite else ""
    refuse_foreign_folder(out_dir, marker=STATE_FILE, what="cross-validation", startup=(LOG_FILE,),
                          remedy=f"run_crossval writes a cross-validation's files into it (crossval_state.json, "
                                 f"config.json, folds.csv, fold_<K>/, crossval.json ...){emptied}; pass a new or "
                                 f"empty out_dir, or an earlier cross-validation's folder to resume it",
                          not_a_folder="out_dir names a cross-validation folder to create or resume")
    if overwrite:
        refuse_emptying(out_dir, config.input_paths(), wording=wording)
    # One per folder; the folder is free again once the cross-validation ends, even in a process that goes on.
    with claimed(out_dir, "running this cross-validation", wording=wording):
        return _run_claimed(config, out_dir, k=k, folds=folds, overwrite=overwrite, log=log, verbose=verbose,
                            wording=wording)


def _fold_numbers(folds: Any) -> list[int] | None:
    """``run_crossval``'s ``folds`` as sorted distinct fold numbers (``None`` stays ``None``: every fold).

    ``folds=[]`` ran every fold (``folds or all_folds``), 1.0 or True matched fold 1 but named its folder
    ``fold_1.0`` / ``fold_True``, and ``"1,3"`` was read as the folds ``'1'``, ``','`` and ``'3'``.
    """
    if folds is None:
        return None
    if isinstance(folds, (str, bytes, Integral)) or not isinstance(folds, Iterable):
        raise ConfigError(f"run_crossval: folds must be a list of fold numbers, e.g. [1, 3] (None: every fold), "
                          f"got {folds!r}")
    listed = list(folds)
    wrong = [fold for fold in listed if not is_whole(fold)]
    if wrong:
        raise ConfigError(f"run_crossval: folds must be whole fold numbers, got {wrong[0]!r} in {listed!r}")
    if not listed:
        raise ConfigError("run_crossval: folds names no fold; pass None to run every fold")
    below = next((problem for fold in listed if (problem := fold_below_1("run_crossval: folds", fold))), None)
    if below is not None:  # was "--folds names fold(s) [0] that do not exist", once the data was read
        raise ConfigError(f"{below} in {listed!r}")
    return sorted({int(fold) for fold in listed})


def _refuse_absent_folds(folds: Sequence[int] | None, test_fold: int | None, all_folds: Sequence[int],
                         wording: Wording, val_fold: int | None = None) -> None:
    """Refuse ``--folds`` naming a fold the data lacks, and a ``--test-fold`` or ``--val-fold`` (not used, but meant
    as the fold to test or validate on) naming one: its note said ``--folds 6 runs fold 6 alone`` of a fold 6 there
    is not, then trained every fold, and ``--val-fold 9`` was noted as unused and every fold trained."""
    unknown = sorted(set(folds or ()) - set(all_folds))
    if unknown:
        raise DatasetError(f"{wording.flag('--folds')} names {'fold' if len(unknown) == 1 else 'folds'} {unknown} that "
                           f"{'does' if len(unknown) == 1 else 'do'} not exist; folds present: {list(all_folds)}")
    if test_fold is not None and test_fold not in all_folds:
        raise DatasetError(f"{wording.given('--test-fold', test_fold)}: the data has no fold {test_fold}; folds "
                           f"present: {list(all_folds)} (every fold is the test fold once; "
                           f"{wording.flag('--folds')} chooses which run)")
    if val_fold is not None and val_fold not in all_folds:
        raise DatasetError(f"{wording.given('--val-fold', val_fold)}: the data has no fold {val_fold}; folds "
                           f"present: {list(all_folds)} (the fold before each test fold validates; "
                           f"{wording.flag('--folds')} chooses which folds run)")


#: Layouts whose listing is read whole (a manifest, not a walk of every folder): :func:`check_folds` reads it to find
#: a fold with no file there before TensorFlow starts, when no fold is named too.
LISTED_FORMATS = ("esc50", "urbansound8k", "csv")


def _refuse_folds_without_files(examples: Sequence[Example], folds: Sequence[int], root: Path, fmt: str,
                                wording: Wording) -> None:
    """Refuse a fold of ``folds`` none of whose files exists (UrbanSound8K's ``audio/fold7`` missing, a copy without
    one fold's files), before any file is decoded: a full cross-validation of such data was refused once TensorFlow
    had started and every file was decoded ('fold 7: none of its 15 files could be read (first: ...: file not
    found)'). The first file of each fold is looked at, and every file of a fold whose first is missing."""
    by_fold: dict[int, list[str]] = {}
    for ex in examples:
        by_fold.setdefault(ex.fold, []).append(ex.path)
    empty = [fold for fold in folds if by_fold.get(fold) and not any(os.path.exists(p) for p in by_fold[fold])]
    if not empty:
        return
    rest = [fold for fold in sorted(by_fold) if fold not in empty]
    shown = wording.given("--folds", rest if "--folds" in wording.arguments else ",".join(map(str, rest)))

    def why(fold: int) -> str:
        files = by_fold[fold]
        folder = root / "audio" / f"fold{fold}"
        where = (f"{folder} does not exist" if fmt == "urbansound8k" and not folder.is_dir() else
                 f"first: {files[0]}")
        return (f"fold {fold}: " + ("its 1 file does not exist" if len(files) == 1 else
                                    f"none of its {counted(len(files), 'files')} exists") + f" ({where})")

    raise DatasetError("; ".join(why(fold) for fold in empty) + "; restore "
                       + ("it" if len(empty) == 1 else "them") + " (the dataset's download), or leave "
                       + ("the fold" if len(empty) == 1 else "those folds") + f" out: {shown}")


def check_folds(config: Config, *, k: int = DEFAULT_K, folds: Sequence[int] | None = None,
                wording: Wording = PYTHON_WORDING, out_dir: str | os.PathLike | None = None) -> None:
    """Refuse ``folds``, a ``data.test_fold`` or a ``data.val_fold`` the data lacks before TensorFlow starts, in
    :func:`run_crossval`'s words (``python -m sound_tf.crossval --folds 6`` of five folds was refused after
    TensorFlow's start-up, 9.5 s here), and a fold to run none of whose files exists (a fold folder missing: it
    was refused after every file was decoded); a fold finished in ``out_dir`` runs no more and is not looked at. The
    folds are planned as :func:`run_crossval` plans them (the manifest or metadata read, folds assigned when the data
    has none; no file decoded, nor the audio folder walked: its warnings are the run's). Nothing is read for a folder
    tree when no fold is given (its walk is the run's), nor for the demo or a ``data.split_file`` (which the
    cross-validation refuses)."""
    from .datasets import choose_labels, group_by_pattern, load_examples, resolve_source

    data = config.data
    if data.path is None or data.format == "demo" or data.split_file is not None:
        return
    given = not (folds is None and data.test_fold is None and data.val_fold is None)
    if not given and data.format not in ("auto", *LISTED_FORMATS):
        return
    root, fmt = resolve_source(config, lambda line: None)
    if not given and fmt not in LISTED_FORMATS:
        return
    quiet = logging.getLogger("sound_tf.datasets")
    was = quiet.disabled
    quiet.disabled = True
    try:
        # walk=False: the audio folder is not walked for warnings no one is shown (the run's reading says them)
        grouped, _ = group_by_pattern(load_examples(root, fmt, walk=False), data.group_pattern, root, fmt)
        examples, _ = plan_folds(choose_labels(grouped, data, root)[0], k=k, seed=config.train.seed, data_format=fmt)
    finally:
        quiet.disabled = was
    all_folds = sorted({ex.fold for ex in examples})
    _refuse_absent_folds(folds, data.test_fold, all_folds, wording, data.val_fold)
    running = [fold for fold in (folds or all_folds)
               if out_dir is None or not _finished(Path(out_dir) / f"fold_{fold}")]
    _refuse_folds_without_files(examples, running, root, fmt, wording)


def _run_claimed(config: Config, out_dir: Path, *, k: int, folds: Sequence[int] | None, overwrite: bool,
                 log: Callable[[str], None], verbose: int | str, wording: Wording) -> dict[str, Any]:
    import keras

    from . import evaluation
    from .datasets import (check_two_classes, choose_labels, data_lines, draw_other, group_by_pattern,
                           listing_locator, load_examples, resolve_source, warn_speakers_not_grouped,
                           with_listed_line, write_split_csv)
    from .train import run_log
    from .trainer import imbalance_note, train_run

    if config.data.split_file is not None:
        raise ConfigError(f"data.split_file={config.data.split_file} fixes one split; cross-validation makes one "
                          f"per fold from {wording.flag('--data')} (leave data.split_file out)")
    if config.data.silence_label is not None:  # its held-out clips are one part of each noise recording, not k
        raise ConfigError(f"data.silence_label={config.data.silence_label!r}: cross-validation does not build the "
                          f"silence class (validation's and test's clips are cut from the last data.val_fraction + "
                          f"data.test_fraction of each noise recording, one part per split, not one per fold); "
                          f"train and tune do: leave data.silence_label out here")
    given = [wording.given(flag, fold) for flag, fold in (("--test-fold", config.data.test_fold),
                                                           ("--val-fold", config.data.val_fold)) if fold is not None]
    if given:  # named data.test_fold / data.val_fold to a command's --test-fold 3, and not how to test fold 3 alone
        alone = config.data.test_fold
        folds_given = wording.given("--folds", [alone] if "--folds" in wording.arguments else alone)
        log(f"note: {' and '.join(given)} {'is' if len(given) == 1 else 'are'} not used: every fold is the test fold "
            f"once" + ("" if alone is None else f" ({folds_given} runs fold {alone} alone)"))
    root, fmt = resolve_source(config, log)
    left_out: list[tuple[str, str]] = []  # recordings ffmpeg converts: in skipped.csv with its line, as train's
    loaded, grouped_line = group_by_pattern(load_examples(root, fmt, left_out=left_out), config.data.group_pattern,
                                            root, fmt)
    if grouped_line is not None:
        log(grouped_line)
    loaded, chosen = choose_labels(loaded, config.data, root)  # data.keep_labels, other_label
    check_two_classes(root, fmt, [ex.label for ex in loaded])  # before any state is written
    if fmt == "folder":  # --k folds of single files: a speaker's recordings could be in training and test
        warn_speakers_not_grouped(loaded, root)
    examples, scheme = plan_folds(loaded, k=k, seed=config.train.seed, data_format=fmt)
    if fmt in SPLIT_FOLD_FORMATS and any(ex.fold is not None for ex in loaded):
        log(f"cross-validation: the {fmt} data's folds are one split (training, validation, test), not folds to "
            f"hold out in turn: {k} folds ({wording.given('--k', k)}) are assigned by speaker instead")
    elif fmt in SPLIT_FOLD_FORMATS:  # a copy without the lists: its speakers are the groups all the same
        log(f"cross-validation: the {fmt} data has no lists: {k} folds ({wording.given('--k', k)}) are assigned by "
            f"speaker")
    if scheme == "official" and k != DEFAULT_K:
        log(f"note: {wording.given('--k', k)} is not used: the dataset has its own folds")
    all_folds = sorted({ex.fold for ex in examples})
    _refuse_absent_folds(folds, config.data.test_fold, all_folds, wording, config.data.val_fold)
    selected = list(folds) if folds else all_folds
    # What a killed cross-validation left half-written (its state, folds.csv, crossval.csv, a fold's files ...).
    atomic.remove_leftovers_in(out_dir, held=True)
    state = {"fingerprint": config.fingerprint(), "scheme": scheme, "folds": all_folds,
             "assignment": assignment_digest(examples)}
    _check_state(out_dir, state, overwrite=overwrite, wording=wording, config=config)

    labels = tuple(sorted({ex.label for ex in examples}))
    pending = [fold for fold in selected if not _finished(out_dir / f"fold_{fold}")]
    skipped: list[tuple[str, str]] = []
    item_of: dict[str, Any] = {}
    readable: list[Example] = []
    if pending:  # decode every file once, for all folds
        _refuse_folds_without_files(examples, pending, root, fmt, wording)  # a fold folder missing: before decoding
        try:
            items, skipped = evaluation.decode_examples(examples, labels, config, log=log,
                                                        where=listing_locator(root, fmt))
        except AudioError as exc:  # --strict: named with its listing's line, and no state written (below)
            raise with_listed_line(exc, root, fmt) from None
        skipped += left_out
        item_of = {item.source: item for item in items}
        readable = [ex for ex in examples if ex.path in item_of]
        if items:  # as train and tune say it: the recordings' lengths against the clip each fold trains on
            for line in data_lines([item.source for item in items], [item.cached for item in items], config):
                log(line)
        reasons = dict(skipped)
        for fold in pending:  # a fold with nothing readable would vanish from the folds, or stop a later fold
            files = [ex.path for ex in examples if ex.fold == fold]
            if not any(path in item_of for path in files):
                raise DatasetError(f"fold {fold}: " + ("its 1 file could not be read" if len(files) == 1 else
                                                       f"none of its {counted(len(files), 'files')} could be read")
                                   + f" (first: {files[0]}: "
                                   f"{reasons.get(files[0], 'unreadable')}); fix them, or leave the fold out with "
                                   f"{wording.flag('--folds')}")
    # Written once the files are read: a --strict refusal of a missing file (or a fold with none readable) left the
    # state, config.json and folds.csv of a cross-validation that never started, and the same command without
    # --strict was refused as "a cross-validation with different settings" (a folder holding only the log and the
    # lock is no cross-validation, and the command removes one it created).
    atomic.write_json(out_dir / STATE_FILE, {**_read_json(out_dir / STATE_FILE), **state, "root": str(root),
                                             "format": fmt})
    config.save(out_dir)
    write_folds_csv(out_dir / "folds.csv", examples)
    if pending:
        evaluation.write_skipped_csv(out_dir / "skipped.csv", skipped)
    else:  # every selected fold finished earlier: what their decoding left out
        skipped = evaluation.read_skipped_csv(out_dir / "skipped.csv")
        unreadable = {path for path, _ in skipped}
        readable = [ex for ex in examples if ex.path not in unreadable]
        # The data lines of a fresh run, which a resumed one left out: the lengths from the sizes of the cache files
        # the folds' decoding left (none said when any is gone: they would all be decoded again), the rates from the
        # sources' headers
        if readable:
            for line in data_lines([ex.path for ex in readable], evaluation.cached_files(readable, config), config):
                log(line)
    other = config.data.other_label
    # Each fold's splits, drawn once (each fold's run drew them again after the header had): with the other class
    # the header counts the clips each fold tests, its share of the other class drawn; each fold run here trains on them
    counted_drawn = other is not None and any(ex.label == other for ex in readable)
    fold_split = {fold: draw_other(fold_splits(readable, fold, config), config.data, config.train.seed)
                  for fold in sorted({ex.fold for ex in readable}) if counted_drawn or fold in pending}
    log(_header(examples, readable, all_folds, scheme_shown(scheme, fmt), selected, out_dir, config,
                tested={fold: len(splits["test"]) for fold, splits in fold_split.items()}))
    # how many clips each fold trains, validates and tests on: each fold's line says it among the training's
    for line in fold_shares_lines({fold: fold_split[fold] for fold in pending}, config, scheme=scheme,
                                  wording=wording):
        log(line)
    if pending:  # what data.val_from training costs, told of the first fold to run (each fold's line gives its own)
        for line in val_from_training_lines(readable, config, test_fold=pending[0], fmt=fmt):
            log(f"fold {pending[0]}: {line}")
    if chosen:  # what became of the labels not kept: left out, or one class each fold's splits take a share of
        kept = counted(len(config.data.keep_labels), "labels")
        log(f"data: data.keep_labels: {kept} kept; {counted(chosen['other_files'], 'files')} of the "
            f"{counted(chosen['other_labels'], 'other labels')} "
            + ("left out (data.other_label is not set)" if other is None else
               f"are {other!r}, of which each fold's training, validation and test split takes data.other_share "
               f"{config.data.other_share:g} (drawn with train.seed {config.train.seed})"))
    # Said once, of the data every fold's split is drawn from, where each fold's run said it again of its own; data
    # even overall leave it to each fold's run, whose training split may not be (official folds).
    # (the other class before each fold's share of it is drawn is no class of any fold's run)
    uneven = imbalance_note([ex.label for ex in readable if other is None or ex.label != other], config,
                            whose="the data's") if pending else None
    if uneven is not None:
        log(uneven)
    for fold in selected:
        fold_dir = out_dir / f"fold_{fold}"
        if fold not in pending:
            done = _read_json(fold_dir / "metrics.json")
            log(f"fold {fold}: finished earlier (accuracy {done['accuracy']:.4f}); read back from "
                f"{fold_dir / 'metrics.json'}, not retrained")
            continue
        splits = fold_split[fold]
        validation = validation_source(splits, config)
        chosen_by = f" (data.val_from {config.data.val_from})" if len(all_folds) > 2 else ""  # two folds: drawn
        data = fold_data(splits, item_of, labels, fold, skipped=skipped,
                         stats={"root": str(root), "format": fmt, "scheme": scheme_shown(scheme, fmt),
                                "files": len(examples) + len(left_out)},
                         validation=validation and validation + chosen_by)
        missing = sorted(set(labels) - {item.label for item in data.splits["train"]})
        if missing:
            log(f"warning: fold {fold}: {'class' if len(missing) == 1 else 'classes'} {missing} "
                f"{'has' if len(missing) == 1 else 'have'} no training clip; the model cannot learn "
                f"{'it' if len(missing) == 1 else 'them'}")
        # Claimed before its split is written (train_run claims it again): a fold folder another process trains
        # in is refused in this caller's words (--out, or out_dir), not train_run's run_dir, and left as it is.
        with claimed(fold_dir, "training or exporting this run", wording=wording):
            write_split_csv(fold_dir / "split.csv", splits)
            evaluation.write_skipped_csv(fold_dir / "skipped.csv", skipped)
            if read_state(fold_dir).get("status") == "running":
                log(f"fold {fold}: resuming its unfinished run")
            drawn = "" if other is None else " ({!r}: {})".format(other, ", ".join(
                f"{name} {sum(item.label == other for item in rows)}" for name, rows in data.splits.items()))
            tested = groups_tested((ex.group for ex in splits["test"]), fmt)
            log(f"fold {fold}: train {len(data.splits['train'])} ({folds_named(_folds_of(splits['train']))}), "
                f"val {len(data.splits['val'])}{f' ({validation})' if validation else ''}, "
                f"test {len(data.splits['test'])} clips{' of ' + tested if tested else ''}{drawn}")
            keras.backend.clear_session()
            with run_log(fold_dir):  # each fold folder is a complete run folder, with its own train.log
                result = train_run(config, fold_dir, data=data, log=log, verbose=verbose,
                                   note_imbalance=uneven is None)
        log(f"fold {fold}: accuracy {result.metrics['accuracy']:.4f}, macro F1 {result.metrics['macro_f1']:.4f}")
    return summarise(out_dir, all_folds, config=config, log=log)


def _header(examples: Sequence[Example], readable: Sequence[Example], all_folds: Sequence[int], scheme: str,
            selected: Sequence[int], out_dir: Path, config: Config | None = None,
            *, tested: Mapping[int, int]) -> str:
    """``cross-validation: 60 readable files of 62 (2 unreadable, listed in OUT/skipped.csv), 2 folds (official:
    1: 31, 2: 29); running folds [1, 2] into OUT``: the clips each fold tests, the unreadable files left out
    (``readable``: the files of ``examples`` decoded). With ``config``'s ``data.other_label``, a fold's test split
    holds the other class's share of its files (:func:`sound_tf.datasets.draw_other`): ``tested`` gives each fold's
    test clips as the fold's run draws them, and the line says how many files of the other labels there are (they
    were counted as tested whole)."""
    sizes = Counter(ex.fold for ex in readable)
    files = f"{len(examples)} files"
    if len(readable) < len(examples):
        files = (f"{len(readable)} readable files of {len(examples)} ({len(examples) - len(readable)} unreadable, "
                 f"listed in {out_dir / 'skipped.csv'})")
    other = config.data.other_label if config is not None else None
    shown = ""
    if other is not None and any(ex.label == other for ex in readable):
        files += f", {sum(ex.label == other for ex in readable)} of them of the other labels ({other!r})"
        sizes = Counter(tested)
        shown = f" clips tested, with data.other_share {config.data.other_share:g} of {other!r}"
    return (f"cross-validation: {files}, {len(all_folds)} folds ({scheme}: "
            + ", ".join(f"{f}: {sizes[f]}" for f in all_folds)
            + f"{shown}); running {'fold' if len(selected) == 1 else 'folds'} {selected} into {out_dir}")


#: Up to this many groups in every fold: the report names them, else it counts them.
GROUPS_NAMED = 5


def _groups_per_fold(groups: Mapping[str, set[str]], data_format: str) -> dict[str, str]:
    """The report's dataset table's line of each fold's groups in the data's own word (:func:`group_word`), which
    says who each fold tests (a speaker-wise cross-validation's: ``groups per fold``, ``fold 1: george; fold 2:
    jackson``) or how many groups it holds (ESC-50's: ``src_files per fold``, ``fold 1: 400 src_files``); nothing
    when no clip has a group. Only ``folds.csv`` and each fold's ``split.csv`` said it; it said ``groups`` where
    each fold's log line and the per-fold table said ``fsIDs``."""
    if not groups:
        return {}
    word = group_word(data_format)
    ordered = sorted(groups.items(), key=lambda kv: int(kv[0].split()[-1]))
    named = all(len(names) <= GROUPS_NAMED for _, names in ordered)
    return {f"{word}s per fold": "; ".join(f"{fold}: {', '.join(sorted(names))}" if named
                                          else f"{fold}: {counted(len(names), word + 's')}" for fold, names in ordered)}


def _with_groups(row: Mapping[str, Any], tested: str) -> dict[str, Any]:
    """A per-fold row of :func:`_fold_row` with ``test_groups`` (:func:`groups_tested`) after its ``test_clips``."""
    shown: dict[str, Any] = {}
    for column, cell in row.items():
        shown[column] = cell
        if column == "test_clips":
            shown["test_groups"] = tested
    return shown


def _finished(fold_dir: Path) -> bool:
    return read_state(fold_dir).get("status") == "done" and (fold_dir / "metrics.json").is_file()


def _near_chance_warning(fold: int, metrics: Mapping[str, Any], fold_dir: Path) -> str:
    """The summary's line for a fold whose ``metrics`` are near chance (:func:`sound_tf.metrics.near_chance`):
    ``warning: fold 1 scores near chance (balanced accuracy 0.13; chance is 0.10 with 10 classes): ...``."""
    from .metrics import chance_level

    chance = chance_level(metrics)
    return (f"warning: fold {fold} scores near chance (balanced accuracy {metrics['balanced_accuracy']:.2f}; chance is "
            f"{chance:.2f} with {round(1 / chance)} classes): its model learnt little that holds for its test clips, "
            f"and it counts in the mean over the folds as any other fold does ({fold_dir / 'report.html'})")


def _underfit_warning(out_dir: Path, done: Sequence[int]) -> str | None:
    """The summary's line for the folds whose model underfit with augmentation on (:func:`sound_tf.metrics.underfit`
    of each fold's run, as ``train``'s summary reads it; each fold's own report says it, the cross-validation's log
    did not), or ``None``: 180 FSDD digits (6 x 30, 5 folds, model.widths [16, 32, 64, 64], 40 epochs) scored 25.6%
    with the default augmentation and 72.2% without, and the log's only advice was the pooled one's, more updates."""
    from .trainer import run_validation

    under = [(fold, fit) for fold in done
             if (fit := (run_validation(out_dir / f"fold_{fold}") or {}).get("underfit")) is not None]
    if not under:
        return None
    folds = ", ".join(f"fold {fold} {fit['train_accuracy']:.2f} / {fit['val_accuracy']:.2f}" for fold, fit in under)
    return (f"warning: {len(under)} of {counted(len(done), 'folds')} underfit with augmentation on (training accuracy "
            f"at the last epoch, on augmented clips / the best validation accuracy: {folds}): augmentation makes a "
            f"short run or a small model learn slower, and the mean above may be below what the model can score; the "
            f"same crossval with --no-augment (another --out) and python -m sound_tf.compare on the two measure what "
            f"it costs, or try more epochs (--epochs) or a smaller batch (--batch-size)")


def summarise(out_dir: str | Path, all_folds: Sequence[int], *, config: Config | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write ``crossval.json``, ``crossval.csv``, the pooled figures and ``report.html`` from finished folds.

    ``crossval.json`` names the folds: ``folds`` all of them, ``folds_done`` and ``num_folds_done`` those finished
    (the ones its numbers are over), ``folds_pending`` the others and ``complete`` whether there are none.
    ``num_folds`` (:func:`sound_tf.metrics.aggregate_folds`') is the folds finished too, kept as it was for readers
    older than ``num_folds_done``: beside ``folds`` listing all of them it read as their number (``--folds 1,2,3``
    of ``--k 6``: ``num_folds`` 3, ``folds`` [1, 2, 3, 4, 5, 6])."""
    from . import evaluation, report
    from .metrics import aggregate_folds, headline, near_chance, summary_lines, write_metrics_json

    out_dir = Path(out_dir)
    done = [fold for fold in all_folds if _finished(out_dir / f"fold_{fold}")]
    if not done:
        raise DatasetError(f"{out_dir}: no fold has finished yet")
    fold_metrics = [_read_json(out_dir / f"fold_{fold}" / "metrics.json") for fold in done]
    summary = aggregate_folds(fold_metrics)
    rows = [_fold_row(fold, m, out_dir / f"fold_{fold}") for fold, m in zip(done, fold_metrics)]
    pending = [fold for fold in all_folds if fold not in done]
    config = config or Config.load(out_dir)
    validation = validation_summary(config, len(all_folds))
    # std_ddof: "std" is numpy.std's population deviation; a paper's sample one (ddof=1) is sqrt(n / (n - 1)) times it
    result = {"folds": list(all_folds), "folds_done": done, "num_folds_done": len(done), "folds_pending": pending,
              "complete": not pending, **summary, "std_ddof": 0, "validation": validation, "per_fold": rows}
    write_metrics_json(out_dir / "crossval.json", result)
    write_crossval_csv(out_dir / "crossval.csv", rows, summary)
    write_per_class_csv(out_dir / PER_CLASS_CSV, summary)
    labels = summary["labels"]
    title = f"pooled over {counted(len(done), 'folds')}"
    figures = {"Pooled confusion matrix": report.plot_confusion_matrix(
                   summary["confusion_matrix"], labels, out_dir / "confusion_matrix.png",
                   title=f"Confusion matrix, {title}"),
               "F1 per class (pooled)": report.plot_per_class(
                   summary["pooled"], out_dir / "per_class.png", title=f"F1 per class, {title} (weakest first)")}
    for fold in done:
        curves = out_dir / f"fold_{fold}" / "curves.png"
        if curves.is_file():
            figures[f"Training curves, fold {fold}"] = curves
    folds_csv = out_dir / "folds.csv"
    skipped = evaluation.read_skipped_csv(out_dir / "skipped.csv")
    unreadable = {path for path, _ in skipped}
    counts: dict[str, dict[str, int]] = {}  # readable clips per fold and class
    groups: dict[str, set[str]] = {}  # the groups (speakers, source recordings) of each fold's readable clips
    listed = 0  # every file of the folds, the skipped ones too: "files" as train, evaluate and each fold count them
    in_folds: set[str] = set()
    if folds_csv.is_file():
        with folds_csv.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                listed += 1
                in_folds.add(row["path"])
                if row["path"] in unreadable:
                    continue
                fold_counts = counts.setdefault(f"fold {row['fold']}", {})
                fold_counts[row["label"]] = fold_counts.get(row["label"], 0) + 1
                if row.get("group"):
                    groups.setdefault(f"fold {row['fold']}", set()).add(row["group"])
        listed += len(unreadable - in_folds)  # a recording ffmpeg converts is in no fold: a file all the same
    state = _read_json(out_dir / STATE_FILE)
    fmt = state.get("format", "")
    dataset = {"source": state.get("root", ""), "format": fmt,
               "folds": scheme_shown(state.get("scheme", ""), fmt), "validation": validation,
               "files": listed, "skipped": len(skipped), **_groups_per_fold(groups, fmt),
               "class_counts": dict(sorted(counts.items(), key=lambda kv: int(kv[0].split()[-1])))}
    total_counts = {label: sum(c.get(label, 0) for c in counts.values()) for label in labels} if counts else None
    notes = [f"{len(done)} of {len(all_folds)} folds finished" + (f"; pending: {pending}" if pending else ""),
             # one fold has no spread: its std of 0 read as folds that agree
             # which std: pandas' DataFrame.std() of crossval.csv's fold rows gives the sample one (ddof=1), larger
             ("mean +/- std over folds (the population std, ddof=0, as numpy.std): " if len(done) > 1
              else f"fold {done[0]} alone (no spread over one fold): ")
             + ", ".join(f"{key} {summary['mean'][key]:.4f}"
                         + (f" +/- {summary['std'][key]:.4f}" if len(done) > 1 else "")
                         for key in ("accuracy", "balanced_accuracy", "macro_f1")),
             (f"per class over folds: {PER_CLASS_CSV} and the report (precision, recall, F1: mean +/- the "
              f"population std over the folds whose test clips hold the class)" if len(done) > 1
              else f"per class: {PER_CLASS_CSV} and the report (fold {done[0]} alone: no spread)"),
             "pooled over the folds' test sets (data advice uses clips per class in the whole dataset):"]
    # A fold at chance (a model that kept its first epoch's weights) counts in the mean and in compare's paired
    # differences as any other: its own report said so, the cross-validation's log and report did not.
    notes[2:2] = [_near_chance_warning(fold, m, out_dir / f"fold_{fold}") for fold, m in zip(done, fold_metrics)
                  if near_chance(m)] + [line for line in [_underfit_warning(out_dir, done)] if line]
    # No fold's model trained on these counts (each saw only its training folds): the advice says what they are.
    pooled = summary_lines(summary["pooled"], class_counts=total_counts, count_name="clips in the dataset")
    # Its scores sat under the mean over the folds with no word on which was which (FSDD: macro F1 0.4567 pooled,
    # 0.4293 the mean): named as report.html's table names its pooled column.
    scores = headline(summary["pooled"])
    which = ("pooled (computed from the summed confusion matrix, each clip weighing alike; the mean over folds above "
             "weighs each fold alike): " if len(done) > 1 else "pooled (computed from the summed confusion matrix): ")
    notes += [which + line if line == scores else line for line in pooled]
    # The report's rows say whom each fold tests beside its clips (crossval.json and crossval.csv keep their columns).
    tested = {row["fold"]: groups_tested(groups.get(f"fold {row['fold']}", ()), fmt) for row in rows}
    table = [_with_groups(row, tested[row["fold"]]) for row in rows] if any(tested.values()) else rows
    report.write_report_html(out_dir / "report.html", title=f"Cross-validation {out_dir.name}", metrics=summary,
                             config_dict=config.to_dict(), dataset_summary=dataset,
                             figures=figures, skipped=skipped, extra_tables={"Per fold": table}, notes=notes)
    for line in notes:
        log(line)
    log(f"cross-validation folder: {out_dir} (crossval.json, crossval.csv, {PER_CLASS_CSV}, report.html)")
    return result


def data_has_folds(config: Config) -> bool:
    """Whether the data ``config`` names has folds of its own, which a cross-validation holds out in turn whatever
    ``--k`` says: ESC-50's and UrbanSound8K's, a CSV manifest's fold column (:func:`plan_folds`' ``"official"``).

    The manifest or metadata is read (its warnings, said again when the cross-validation reads it, are not said
    here); no file is decoded and nothing is imported that needs TensorFlow. Speech Commands' lists are one split,
    not folds, and a folder-per-class tree or the demo has none. A dataset that cannot be read is an error naming
    it, as the cross-validation's own reading would be.
    """
    from .datasets import load_examples, resolve_source

    data = config.data
    if data.path is None or data.format == "demo":
        return False
    root, fmt = resolve_source(config, lambda line: None)
    if fmt in SPLIT_FOLD_FORMATS or fmt == "folder":
        return False
    quiet = logging.getLogger("sound_tf.datasets")
    was = quiet.disabled
    quiet.disabled = True
    try:
        examples = load_examples(root, fmt, walk=False)  # the audio folder is not walked for warnings unsaid
    finally:
        quiet.disabled = was
    return bool(examples) and all(ex.fold is not None for ex in examples)


def default_out_dir(config: Config, k: int = DEFAULT_K, *, data_folds: bool = False) -> Path:
    """``runs/crossval-<settings fingerprint>[-k<k>]``: the same command finds its folder again to resume,
    and another ``--k`` gets a folder of its own instead of a refusal.

    When that folder does not exist, one an older sound_tf named by its fingerprint then is taken if its
    ``config.json``, read today, has the same settings (a setting added since changed the fingerprint).

    With ``data_folds`` (the data has folds of its own, :func:`data_has_folds`) ``k`` is not used, and the folder is
    the one without ``-k<k>``: ``crossval --k 3`` on a manifest with a fold column cross-validated its 4 folds in
    ``runs/crossval-<fingerprint>-k3``, a name that says 3 folds, beside the same command without ``--k``, which
    cross-validated the same folds again in ``runs/crossval-<fingerprint>``. A ``-k<k>`` folder an earlier
    sound_tf named so is still taken while the one without it does not exist.
    """
    if data_folds and k != DEFAULT_K:
        folder = default_out_dir(config)
        earlier = default_out_dir(config, k)
        return earlier if not folder.exists() and earlier.exists() else folder
    fingerprint, suffix = config.fingerprint(), f"-k{k}" if k != DEFAULT_K else ""
    folder = Path("runs") / f"crossval-{fingerprint}{suffix}"
    if not folder.exists():
        named = re.compile(rf"crossval-[0-9a-f]{{{len(fingerprint)}}}{re.escape(suffix)}")
        for older in sorted(Path("runs").glob(f"crossval-*{suffix}")):
            if named.fullmatch(older.name) and saved_fingerprint(older) == fingerprint:
                return older
    return folder


def build_parser() -> argparse.ArgumentParser:
    """The command line: the shared training flags plus ``--k``, ``--folds``, ``--out``, ``--overwrite``."""
    from .train import add_config_flags

    parser = argparse.ArgumentParser(prog="python -m sound_tf.crossval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    parser.add_argument("--k", type=int, default=DEFAULT_K,
                        help=f"folds to assign when the dataset has none (default: {DEFAULT_K})")
    parser.add_argument("--folds", help="run only these folds, e.g. 1,3 (default: all)")
    parser.add_argument("--out", type=os.path.expanduser,  # a quoted ~ too: no folder named '~' is made
                        help="cross-validation folder (default: runs/crossval-<settings fingerprint>)")
    parser.add_argument("--overwrite", action="store_true", help="start over in an existing --out folder")
    parser.add_argument("--quiet", action="store_true",
                        help="no Keras progress bars (shown only when stdout is a terminal) and none of "
                             "TensorFlow's own log lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .quiet import native_logs_held, quiet_tensorflow
    from .train import config_from_args, progress_bars, remove_if_unstarted, setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_tensorflow()
    log = logging.getLogger("sound_tf")

    def work() -> None:
        notices: list[logging.LogRecord] = []  # shown on stderr as the settings are worked out; train.log's too
        folds = parse_folds(args.folds)  # before the settings and TensorFlow: --folds 0 came after its start-up
        config = config_from_args(args, notices=notices)
        check_source(config, cross_validation=True)  # before TensorFlow loads; folds by speaker, not the lists
        # The data's own folds make --k unused: its folder is not named by it (the manifest is read for that alone)
        data_folds = args.out is None and args.k != DEFAULT_K and data_has_folds(config)
        out_dir = Path(args.out) if args.out else default_out_dir(config, args.k, data_folds=data_folds)
        # --folds 6 of 5 folds, or a fold folder missing: after its start-up (and the decoding, for the folder)
        check_folds(config, k=args.k, folds=folds, wording=COMMAND, out_dir=out_dir)
        refuse_foreign_folder(out_dir, marker=STATE_FILE, what="cross-validation", startup=(LOG_FILE,))
        existed = out_dir.exists()
        try:
            with claimed(out_dir, "running this cross-validation"):  # before its log: a refused command writes nothing
                setup_logging(out_dir, earlier=notices)
                started = time.time()
                run_crossval(config, out_dir, k=args.k, folds=folds, overwrite=args.overwrite,
                             log=log.info, verbose=progress_bars(args.quiet), wording=COMMAND)
                log.info(f"done in {time.time() - started:.0f} s")
        finally:  # as train: a folder this command created and left with only its lock and log goes again
            if not existed:
                remove_if_unstarted(out_dir)

    with native_logs_held(args.quiet):
        return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
