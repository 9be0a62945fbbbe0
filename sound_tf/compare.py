"""``python -m sound_tf.compare``: runs side by side, their scores and the settings they differ in.

An ablation (augmentation on and off, two learning rates, three seeds) leaves one run folder per run;
this command reads what each folder already holds (``config.json``, ``metrics.json``, ``history.csv``,
``run_state.json``, ``export/export.json``; a cross-validation's ``crossval.json``, or for one stopped before
it or after a fold its ``crossval.json`` does not count, ``crossval_state.json`` and its finished folds'
``metrics.json``) and prints one row per
run with its test scores, then every setting whose value is not the same in all of them. When the runs
were scored on different test clips (another split, other data), it says so: their scores do not
measure the same thing. Runs that differ in their seed alone and were given the same clips are averaged, one line
per arm of the ablation with its spread. Cross-validations run on the same folds and test clips are compared fold
by fold, each against the first given: the differences, their mean and spread, the folds each wins and an exact
Wilcoxon signed-rank test's p-value. Train runs scored on the same test clips are compared clip by clip, each against
the first given, from their ``errors.csv``: the clips both get right, each alone, neither, and an exact McNemar test's
p-value; and so are paired cross-validations, over all their folds' test clips pooled, from each fold's
``errors.csv`` (over 5 folds the Wilcoxon test gives no p below 0.0625). Nothing is trained or loaded, and TensorFlow
is not imported.

A folder that is not a run itself stands for the runs in it, down to two levels (``runs/`` with its
train and crossval folders and a tuning job's ``best_run``), in name order. A run that cannot be read (a
file not JSON, not in the format sound_tf writes, or without read permission) is named on stderr with its
problem and left out, and so is a subfolder that cannot be listed.

Examples
--------
    python -m sound_tf.compare runs/
    python -m sound_tf.compare runs/aug runs/noaug --csv ablation.csv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from . import atomic
from .audio import printable_path
from .config import CONFIG_FILENAME, NOISE_FILENAME, RUN_STATE_FILENAME
from .errors import SoundTFError, counted, run_cli
from .locks import in_use
from .run_state import HISTORY_FILE, HistoryError, epochs_recorded, read_history

CROSSVAL_FILENAME = "crossval.json"
EXPORT_FILENAME = "export.json"  # in the run's default export folder, export/

SCORES = ("accuracy", "balanced_accuracy", "macro_f1")  # metrics.json's, crossval.json's means
#: Each score's column header in the printed tables.
SCORE_HEADERS = dict(zip(SCORES, ("accuracy", "balanced acc.", "macro F1")))
#: The columns of the table and of ``--csv``, before the settings that differ.
COLUMNS = ("run", "kind", "status", "epochs", "best_epoch", "test_clips", "test_set", "accuracy", "balanced_accuracy",
           "macro_f1", "train_seconds", "export")
#: ``--csv``'s columns (then each score's spread and the settings that differ): the table's, and beside the epochs
#: trained those the run was given (``train.epochs``), which the table shows for an unfinished run as ``5 of 30``.
CSV_COLUMNS = (*COLUMNS[:4], "epochs_planned", *COLUMNS[4:])


class CompareError(SoundTFError, ValueError):
    """A folder that holds no run, or a run file that cannot be read."""


@dataclass
class RunSummary:
    """What one run folder says about itself (``None``: the folder does not say)."""

    path: Path
    kind: str  # "run", "crossval", or "fold" (a train run a crossval made: fold_K in its folder)
    status: str  # "done", "running" or "stopped" (RUNNING, STOPPED), a crossval's "2 of 3 folds[, running]"
    settings: dict[str, Any]
    epochs: int | None = None
    best_epoch: int | None = None  # 1-based, the lowest val_loss
    test_clips: int | None = None
    scores: dict[str, float] = field(default_factory=dict)  # accuracy, balanced_accuracy, macro_f1
    spread: dict[str, float] = field(default_factory=dict)  # a cross-validation's std over folds
    seconds: float | None = None
    export: str | None = None
    test_set: str | None = None  # a digest of the clips the scores come from
    #: a train run's test clips, each as its path under data.path (:func:`_clip_key`) and its label: the rows of
    #: its ``split.csv`` that :attr:`test_set` is the digest of (``None``: no split.csv)
    test_keys: frozenset[tuple[str, str]] | None = None
    data: str | None = None  # a digest of every clip the run was given, with its label (split.csv, folds.csv)
    data_clips: int | None = None  # how many
    #: a cross-validation's scores per fold done (``{"1": {"accuracy": ...}}``: crossval.json's ``per_fold``, or its
    #: finished folds' metrics.json) and each fold's test clips as a digest (its ``fold_K/split.csv``'s test rows, or
    #: ``folds.csv``'s rows of the fold when its folder is gone; ``None``: neither says)
    fold_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    fold_tests: dict[str, str | None] = field(default_factory=dict)
    #: each fold's test clips that :attr:`fold_tests` is the digest of, as :attr:`test_keys` names a train run's
    fold_test_keys: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    #: a cross-validation's finished folds' ``metrics.json`` as read (``{}`` for a fold folder deleted since), which
    #: :func:`paired_comparisons` asks whether a fold scored near chance
    fold_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)


def _unreadable(path: Path, exc: OSError) -> CompareError:
    return CompareError(f"{printable_path(path)}: cannot be read ({exc.strerror or exc})")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompareError(f"{printable_path(path)}: not valid JSON ({exc})") from None
    except OSError as exc:  # no permission to read it, an I/O error
        raise _unreadable(path, exc) from None


def _read_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, ``None`` when there is no such file."""
    if not path.is_file():
        return None
    data = _read_json(path)
    if not isinstance(data, dict):
        raise CompareError(f"{printable_path(path)}: holds {type(data).__name__}, not a JSON object")
    return data


CROSSVAL_STATE_FILENAME = "crossval_state.json"  # sound_tf.crossval.STATE_FILE (crossval imports TensorFlow)


def is_fold(run_dir: Path) -> bool:
    """A train run folder that a cross-validation made, ``fold_K`` beside its ``crossval_state.json``: its
    config.json is the same as a plain run's, yet it trained on other clips (the folds but two)."""
    return re.fullmatch(r"fold_\d+", run_dir.name) is not None and (run_dir.parent / CROSSVAL_STATE_FILENAME).is_file()


def is_run(folder: Path) -> bool:
    """A folder ``train`` (``run_state.json``) or ``crossval`` (``crossval.json``, or ``crossval_state.json`` alone
    when it stopped before its summary) wrote, with its config."""
    return (folder / CONFIG_FILENAME).is_file() and any(
        (folder / name).is_file() for name in (RUN_STATE_FILENAME, CROSSVAL_FILENAME, CROSSVAL_STATE_FILENAME))


#: Files only a train run's folder holds: a folder with one of them that is not a run lost a file it needs.
RUN_FILES = (RUN_STATE_FILENAME, "metrics.json", HISTORY_FILE, "model.keras")


def _run_trace(folder: Path) -> str:
    """What says that ``folder`` (not a run) was one, and what it lacks (``""``: nothing): ``a train run's
    metrics.json but no config.json ...``. An export bundle (``config.json``, no run file) says nothing."""
    found = [name for name in RUN_FILES if (folder / name).is_file()]
    if not found:
        return ""
    missing = [name for name in (CONFIG_FILENAME, RUN_STATE_FILENAME) if not (folder / name).is_file()]
    return f"a train run's {', '.join(found)} but no {' or '.join(missing)} (deleted, or the run stopped as it began)"


def _runs_in(folder: Path, *, depth: int) -> list[Path]:
    """``folder`` when it is a run, else the runs in its subfolders (by name) down to ``depth`` levels: ``runs/``
    holds train's and crossval's folders, and a tuning job's ``runs/<tune>/best_run``. A subfolder that cannot
    be read is named on stderr and left out; ``folder`` itself, an error (``OSError``)."""
    if is_run(folder):
        return [folder]
    if trace := _run_trace(folder):
        print(f"warning: {printable_path(folder)}: left out: it holds {trace}", file=sys.stderr)
    if depth == 0:
        return []
    children = sorted((child for child in folder.iterdir() if child.is_dir()), key=lambda child: child.name)
    runs = []
    for child in children:
        try:
            runs.extend(_runs_in(child, depth=depth - 1))
        except OSError as exc:
            print(f"warning: {printable_path(exc.filename or child)}: cannot be read ({exc.strerror or exc}); the "
                  f"runs in it, if any, are left out", file=sys.stderr)
    return runs


#: What marks a folder as ``python -m sound_tf.tune``'s ``--out`` (tune's ``SEARCH_FILE``; tune imports KerasTuner).
TUNE_SEARCH_FILE = "search.json"


def tuning_search(folder: Path) -> Path | None:
    """The tuning search (tune's ``--out``) that ``folder`` is, or whose ``search/``, ``search/trial_<id>/`` or
    ``best_run/`` it is; ``None`` for any other folder."""
    for candidate in (folder, folder.parent, folder.parent.parent):
        if (candidate / TUNE_SEARCH_FILE).is_file() and (candidate / "search").is_dir():
            return candidate
    return None


def _not_a_run_of_the_search(folder: Path, search: Path) -> str:
    """Why a tuning search's trial (or the search without a best run yet) is no run compare reads, and where its
    trials stand side by side. A trial folder read 'no run here: neither it nor a folder inside it (two levels down)
    holds config.json with run_state.json (train) or crossval.json (crossval)', true and no help."""
    what = ("a trial" if folder.parent.name == "search" and folder.name.startswith("trial_")
            else "the KerasTuner project" if folder != search else "a tuning search with no best_run/ yet")
    where = "" if folder == search else f" of the tuning search {printable_path(search)}"
    return (f"{printable_path(folder)}: {what}{where}, not a run: trials are scored on the validation split alone, "
            f"side by side in {printable_path(search / 'trials.csv')} (best first; `python -m sound_tf.tune --out "
            f"{printable_path(search)} --summarize` writes it again); the run compare reads is the search's "
            f"retrained best run, {printable_path(search / 'best_run')} (trained when the search ends, unless "
            f"--no-final)")


def find_runs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The run folders ``paths`` name: each one that is a run, else the runs in it (:func:`_runs_in`).

    Raises
    ------
    CompareError
        A path that is not a folder, or a folder with no run in it (two levels down).
    """
    runs: list[Path] = []
    for given in paths:
        folder = Path(given).expanduser()  # a quoted ~ too, as --csv and the other commands' paths
        if not folder.is_dir():
            problem = "no such folder" if not folder.exists() else "a file, not a folder"
            raise CompareError(f"{printable_path(folder)}: {problem}; give run folders (those train, crossval "
                               f"and tune write) or a folder holding them")
        found = _runs_in(folder, depth=2)
        if not found and (search := tuning_search(folder)) is not None:
            raise CompareError(_not_a_run_of_the_search(folder, search))
        if not found:
            raise CompareError(f"{printable_path(folder)}: no run here: neither it nor a folder inside it (two "
                               f"levels down) holds {CONFIG_FILENAME} with {RUN_STATE_FILENAME} (train) or "
                               f"{CROSSVAL_FILENAME} (crossval)")
        runs.extend(run for run in found if run.resolve() not in {seen.resolve() for seen in runs})
    return runs


def flat_settings(config: dict[str, Any]) -> dict[str, Any]:
    """``config.json`` as ``{"section.field": value}``; the class list stays one entry, ``labels``."""
    flat: dict[str, Any] = {}
    for section, values in config.items():
        if isinstance(values, dict):
            flat.update({f"{section}.{name}": value for name, value in values.items()})
        else:
            flat[section] = values
    return flat


def _test_set_digest(rows: list[tuple[str, ...]]) -> str | None:
    return hashlib.sha256("\n".join("\t".join(row) for row in sorted(rows)).encode()).hexdigest()[:12] if rows else None


def _data_digest(rows: Sequence[dict[str, str]], root: str | None) -> tuple[str | None, int]:
    """Which clips a run was given, with their labels (every row of its ``split.csv``, or a crossval's
    ``folds.csv``), as a digest and their count: runs of two seeds draw other splits of the same clips, while the
    same ``data.path`` read after files were added, removed or relabelled gives other clips. It does not see a
    file whose sound changed under the same name."""
    clips = sorted({(_clip_key(row.get("path", ""), root), row.get("label", "")) for row in rows})
    return _test_set_digest(clips), len(clips)


def _clip_key(path: str, root: str | None) -> str:
    """A clip's path from its dataset's folder, so that the same data read from two places compares equal."""
    if root:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return path


def _read_csv_rows(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    """The rows of the CSV file ``path``, whose header must name the ``required`` columns (a file with no
    header at all is one without them)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header, rows = reader.fieldnames, list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CompareError(f"{printable_path(path)}: not a readable CSV file ({exc})") from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    missing = [name for name in required if name not in (header or [])]
    if missing:
        found = "it is empty" if header is None else f"its first line: {','.join(header)[:60]!r}"
        raise CompareError(f"{printable_path(path)}: not the file sound_tf writes there (no column "
                           f"{', '.join(missing)}; {found})")
    return rows


def _history(path: Path) -> tuple[int | None, int | None]:
    """Epochs trained and the 1-based epoch of the lowest ``val_loss`` in Keras' ``history.csv``
    (:func:`~sound_tf.run_state.read_history`: a row a kill left half-written is no epoch)."""
    if not path.is_file():
        return None, None
    try:
        history = read_history(path)
    except HistoryError as exc:
        raise CompareError(f"{printable_path(exc.path)}: {exc.problem}") from None
    losses = history.get("val_loss", [])
    finite = [(loss, epoch) for epoch, loss in enumerate(losses, 1) if math.isfinite(loss)]
    return epochs_recorded(history), (min(finite)[1] if finite else None)


def _export_line(run_dir: Path) -> str | None:
    """``passed: int8 137 KB 97.0%`` from the run's ``export/export.json``: the verdict and the smallest
    artefact written that takes the waveform, with its size and test accuracy."""
    report = _read_object(run_dir / "export" / EXPORT_FILENAME)
    if report is None:
        return None
    failures = len(report.get("failures") or [])
    verdict = "passed" if report.get("passed") else f"failed ({counted(failures, 'checks')})"
    artefacts = {name: value for name, value in (report.get("artefacts") or {}).items()
                 if isinstance(value, dict) and isinstance(value.get("size_bytes"), (int, float))}
    # A model for the waveform (frontend inside), as predict, lite and serve take: int8_features wants log-mel
    # features computed outside it, so it is not what a device that records audio would run.
    whole = {name: value for name, value in artefacts.items()
             if "waveform" in str((value.get("input") or {}).get("name", ""))}
    if not artefacts:
        return verdict
    name, smallest = min((whole or artefacts).items(), key=lambda item: item[1]["size_bytes"])
    accuracy = smallest.get("accuracy")
    shown = f" {100 * accuracy:.1f}%" if isinstance(accuracy, (int, float)) else ""
    return f"{verdict}: {name} {smallest['size_bytes'] / 1024:.0f} KB{shown}"


#: The pseudo-setting of the noise recordings a run mixed in: config.json names augment.noise_dir, not its files.
NOISE_SETTING = "augment.noise_dir files"


def _noise_files(run_dir: Path) -> str | None:
    """The recordings of ``augment.noise_dir`` the run mixed in, from its ``noise.json``, as ``3 files, 6.0 s
    [1f0c2a9b]`` (the tag: a digest of their names, sizes, times and hashes, so that other files of the same count
    differ; a record from before the hashes: of names, sizes and times),
    each later version of the folder as ``, then from epoch 3: ...``; ``None`` without the file."""
    record = _read_object(run_dir / NOISE_FILENAME)
    if record is None:
        return None
    versions = record.get("versions")
    try:
        parts = []
        for version in versions:
            files = {str(name): list(entry) for name, entry in version["files"].items()}
            left_out = [*version.get("silent", []), *version.get("unreadable", [])]
            # the files' hashes too (a file rewritten with its size and time), when the record has them: a record
            # from before them keeps the tag it had
            hashes = [{str(name): str(digest) for name, digest in version["hashes"].items()}] \
                if version.get("hashes") else []
            tag = hashlib.sha256(json.dumps([files, sorted(left_out), *hashes],
                                            sort_keys=True).encode()).hexdigest()[:8]
            used = len(files) - len(left_out)
            text = f"{counted(used, 'files')}, {float(version.get('seconds', 0.0)):.1f} s [{tag}]"
            parts.append(text if not parts else f"then from epoch {int(version['first_epoch'])}: {text}")
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise CompareError(f"{printable_path(run_dir / NOISE_FILENAME)}: not the file sound_tf writes there "
                           f"({type(exc).__name__}: {exc})") from None
    return ", ".join(parts) if parts else None


#: The status of a train run not done: a command still works in its folder, none does (killed, or stopped by an
#: error), or which of the two cannot be told (:func:`sound_tf.locks.in_use`).
RUNNING, STOPPED, UNFINISHED = "running", "stopped", "unfinished"


def _unfinished_status(folder: Path) -> str:
    return {True: RUNNING, False: STOPPED}.get(in_use(folder), UNFINISHED)


def _fold_finished(fold_dir: Path) -> bool:
    """As ``sound_tf.crossval`` counts a fold finished: its run's state is done and it wrote ``metrics.json``."""
    return (_read_object(fold_dir / RUN_STATE_FILENAME) or {}).get("status") == "done" and \
        (fold_dir / "metrics.json").is_file()


def _folds_seconds(run_dir: Path, folds: Sequence[Any]) -> float | None:
    """The training seconds of a crossval's folds added up (each fold folder's ``run_state.json``; an unfinished
    fold's so far), as a plain run's are its sessions'; ``None`` when no fold says. The decoding done once for all
    folds before them is not in it."""
    seconds = [(_read_object(run_dir / f"fold_{fold}" / RUN_STATE_FILENAME) or {}).get("seconds") for fold in folds]
    given = [float(value) for value in seconds if isinstance(value, (int, float)) and not isinstance(value, bool)]
    return sum(given) if given else None


def _summary_current(crossval: dict[str, Any], finished: dict[str, dict[str, Any]]) -> bool:
    """Whether ``crossval.json`` is the record of the folds finished now (``finished``: each one's ``metrics.json``
    by its number): each of them is among its ``folds_done`` with the scores its ``per_fold`` row gives. crossval
    writes it once its folds end, so a later crossval in the same folder (the folds after a ``--folds 1``) killed
    after a fold finished leaves it behind the fold folders; a fold of ``folds_done`` whose folder was deleted since
    (its model, to free the disk) leaves it current."""
    done = {str(fold) for fold in crossval.get("folds_done") or []}
    rows = {str(row.get("fold")): row for row in crossval.get("per_fold") or [] if isinstance(row, dict)}
    for fold, metrics in finished.items():
        if fold not in done:
            return False
        if fold in rows:  # a fold trained again since (its folder emptied and the crossval run again)
            for name in SCORES:
                mine, theirs = metrics.get(name), rows[fold].get(name)
                if isinstance(mine, (int, float)) and isinstance(theirs, (int, float)) and \
                        not math.isclose(mine, theirs, rel_tol=0, abs_tol=1e-12):
                    return False
    return True


def _crossval_summary(run_dir: Path, settings: dict[str, Any], root: str | None) -> RunSummary:
    """A cross-validation's row: ``crossval.json``'s mean +- std over the folds done, or, for one stopped before it
    wrote that file (crossval writes it once its folds end) or after a fold it does not count finished, the same
    from the folds finished so far (their ``metrics.json``); its status ``done`` or ``2 of 5 folds`` (its folds:
    ``crossval_state.json``'s)."""
    state = _read_object(run_dir / CROSSVAL_STATE_FILENAME) or {}
    crossval = _read_object(run_dir / CROSSVAL_FILENAME)
    summary = RunSummary(run_dir, "crossval", "done", settings)
    listed = state.get("folds") if isinstance(state.get("folds"), list) else (crossval or {}).get("folds")
    finished = [fold for fold in listed if _fold_finished(run_dir / f"fold_{fold}")] if isinstance(listed, list) \
        else []
    # read once: whether crossval.json is current, the scores when it is not, and which folds scored near chance
    summary.fold_metrics = {str(fold): _read_object(run_dir / f"fold_{fold}" / "metrics.json") or {}
                            for fold in finished}
    if crossval is not None and not _summary_current(crossval, summary.fold_metrics):
        crossval = None  # behind its fold folders: what they hold is newer
    if crossval is not None:
        folds, done = crossval.get("folds") or state.get("folds"), list(crossval.get("folds_done") or [])
        complete = bool(crossval.get("complete"))
        labels, summary.test_clips = crossval.get("labels"), crossval.get("num_examples")
        for row in crossval.get("per_fold") or []:
            if isinstance(row, dict) and str(row.get("fold")) in {str(fold) for fold in done}:
                summary.fold_scores[str(row["fold"])] = {name: float(row[name]) for name in SCORES
                                                         if isinstance(row.get(name), (int, float))}
        for name in SCORES:
            mean, std = (crossval.get(key) or {} for key in ("mean", "std"))
            if isinstance(mean.get(name), (int, float)):
                summary.scores[name] = float(mean[name])
            if isinstance(std.get(name), (int, float)):
                summary.spread[name] = float(std[name])
    else:  # stopped (killed, or still running) before its summary: what its finished folds hold
        folds = listed
        if not isinstance(folds, list):
            raise CompareError(f"{printable_path(run_dir / CROSSVAL_STATE_FILENAME)}: not the file sound_tf writes "
                               f"there (no list of folds)")
        done = finished
        metrics = [summary.fold_metrics[str(fold)] for fold in done]
        complete = bool(folds) and len(done) == len(folds)
        labels = metrics[0].get("labels") if metrics else None
        for fold, scores in zip(done, metrics):
            summary.fold_scores[str(fold)] = {name: float(scores[name]) for name in SCORES
                                              if isinstance(scores.get(name), (int, float))}
        clips = [fold.get("num_examples") for fold in metrics]
        summary.test_clips = sum(clips) if clips and all(isinstance(n, int) for n in clips) else None
        for name in SCORES:  # the population's standard deviation, as crossval's (metrics.aggregate_folds)
            values = [float(fold[name]) for fold in metrics if isinstance(fold.get(name), (int, float))]
            if values and len(values) == len(metrics):
                summary.scores[name], summary.spread[name] = statistics.fmean(values), statistics.pstdev(values)
    # crossval.json's num_folds counts the folds done; its folds (and the state's) are all of them
    total = len(folds) if isinstance(folds, list) else (crossval or {}).get("num_folds")
    summary.seconds = _folds_seconds(run_dir, folds if isinstance(folds, list) else done)
    summary.status = "done" if complete else f"{len(done)} of {total} folds"
    if not complete:  # a crossval.json of the folds done is a command that ended (--folds), not one stopped
        now = _unfinished_status(run_dir)
        if now == RUNNING or (now == STOPPED and crossval is None):
            summary.status += f", {now}"
    if len(done) < 2:  # one fold's scores have no spread: crossval.json's std 0 of one value read '+-0.00'
        summary.spread = {}
    if isinstance(labels, list) and not settings.get("labels"):
        settings["labels"] = labels  # its config.json is the folds' template, without classes
    folds_csv = run_dir / "folds.csv"
    rows = []
    if folds_csv.is_file():  # the clips of the folds done, each a test clip once: the digest of their assignment
        scored = {str(fold) for fold in done}
        rows = _read_csv_rows(folds_csv, ("path", "label", "fold"))
        summary.test_set = _test_set_digest([(_clip_key(row.get("path", ""), root), row.get("label", ""),
                                              row.get("fold", "")) for row in rows if row.get("fold") in scored])
        summary.data, summary.data_clips = _data_digest(rows, root)
    for fold in done:
        tested = _fold_test_set(run_dir / f"fold_{fold}", str(fold), rows, root)
        summary.fold_tests[str(fold)], summary.fold_test_keys[str(fold)] = _test_set_digest(tested), frozenset(tested)
    return summary


def _fold_test_set(fold_dir: Path, fold: str, folds_rows: Sequence[dict[str, str]],
                   root: str | None) -> list[tuple[str, str]]:
    """The clips a crossval's fold tested, each as its path under ``data.path`` (:func:`_clip_key`) and its label:
    its ``split.csv``'s test rows (with ``data.other_label`` a share of the other class's files, which ``folds.csv``
    does not tell), or ``folds.csv``'s rows of the fold when its folder is gone; none when neither file says."""
    split = fold_dir / "split.csv"
    if split.is_file():
        rows = [row for row in _read_csv_rows(split, ("split", "path", "label")) if row.get("split") == "test"]
    else:
        rows = [row for row in folds_rows if row.get("fold") == fold]
    return [(_clip_key(row.get("path", ""), root), row.get("label", "")) for row in rows]


def summarise(run_dir: str | os.PathLike) -> RunSummary:
    """What ``run_dir`` (a train or crossval folder) says about its run.

    Raises
    ------
    CompareError
        One of its files is not what its command writes (not JSON, not an object, an unreadable CSV).
    """
    run_dir = Path(run_dir)
    config = _read_object(run_dir / CONFIG_FILENAME) or {}
    settings = flat_settings(config)
    root = settings.get("data.path") if isinstance(settings.get("data.path"), str) else None
    if (run_dir / CROSSVAL_FILENAME).is_file() or (run_dir / CROSSVAL_STATE_FILENAME).is_file():
        return _crossval_summary(run_dir, settings, root)
    state = _read_object(run_dir / RUN_STATE_FILENAME) or {}
    status = "done" if state.get("status") == "done" else _unfinished_status(run_dir)
    summary = RunSummary(run_dir, "fold" if is_fold(run_dir) else "run", status, settings)
    summary.epochs, summary.best_epoch = _history(run_dir / HISTORY_FILE)
    if isinstance(state.get("seconds"), (int, float)):
        summary.seconds = float(state["seconds"])
    metrics = _read_object(run_dir / "metrics.json")
    if metrics is not None:
        summary.test_clips = metrics.get("num_examples")
        summary.scores = {name: float(metrics[name]) for name in SCORES
                          if isinstance(metrics.get(name), (int, float))}
    split = run_dir / "split.csv"
    if split.is_file():
        rows = _read_csv_rows(split, ("split", "path", "label"))
        tested = [(_clip_key(row.get("path", ""), root), row.get("label", "")) for row in rows
                  if row.get("split") == "test"]
        summary.test_set, summary.test_keys = _test_set_digest(tested), frozenset(tested)
        summary.data, summary.data_clips = _data_digest(rows, root)
    summary.export = _export_line(run_dir)
    noise = _noise_files(run_dir)
    if noise is not None:
        summary.settings[NOISE_SETTING] = noise
    return summary


def _jsonish(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def differing_settings(summaries: Sequence[RunSummary]) -> dict[str, list[str]]:
    """``{setting: [its value in each run]}`` for every setting not the same in all of them (a setting one
    run lacks, as a config from an older version, shows as ``-``). ``labels`` shows as its class count,
    with the names that set it apart when runs of that count have other names (:func:`_labels_cells`)."""
    keys = sorted({key for summary in summaries for key in summary.settings})
    differ: dict[str, list[str]] = {}
    for key in keys:
        values = [summary.settings.get(key, _MISSING) for summary in summaries]
        if all(value == values[0] for value in values[1:]):
            continue
        if key == "labels" and all(isinstance(value, list) for value in values):
            differ[key] = _labels_cells(values)
        else:
            differ[key] = ["-" if value is _MISSING else _jsonish(value) for value in values]
    return differ


_MISSING = object()
#: Of the names that set a run's classes apart, this many are given, then ``...``.
LABELS_NAMED = 3


def _labels_cells(values: Sequence[list]) -> list[str]:
    """Each run's class list as its count, ``3 classes``, and when runs of that count have other names, the
    names it holds that not every run does: ``3 classes with wren`` beside ``3 classes with Mönchsgrasmücke``.
    Every run of one count read ``other names``, the runs that had the same classes too, so six runs of which
    one had other classes printed ``labels  other names: the other 6``."""
    shared = set.intersection(*(set(map(str, value)) for value in values))
    lists_of_count: dict[int, set[tuple[str, ...]]] = defaultdict(set)
    for value in values:
        lists_of_count[len(value)].add(tuple(map(str, value)))
    cells = []
    for value in values:
        cell = counted(len(value), "classes", one="class")
        own = [name for name in map(str, value) if name not in shared]
        if len(lists_of_count[len(value)]) > 1 and own:
            cell += " with " + ", ".join(own[:LABELS_NAMED]) + (", ..." if len(own) > LABELS_NAMED else "")
        cells.append(cell)
    return cells


#: Up to this many runs, and lines this wide, the settings that differ give each run's value in the runs' order.
IN_ORDER_RUNS, IN_ORDER_WIDTH = 4, 120


def by_value(values: Sequence[str], names: Sequence[str]) -> str:
    """One setting's ``values`` (one per run) as each value with the ``names`` of its runs, in the order the
    values first appear, the most common value last as ``the other N`` when it is more than one run's:
    ``false: runs/noaug-s0, runs/noaug-s1; true: the other 7``."""
    runs: dict[str, list[str]] = {}
    for value, name in zip(values, names):
        runs.setdefault(value, []).append(name)
    common = max(runs, key=lambda value: len(runs[value]))  # the first of the most common ones
    parts = [f"{value}: {', '.join(members)}" for value, members in runs.items()
             if value != common or len(members) == 1]
    if len(runs[common]) > 1:
        parts.append(f"{common}: the other {len(runs[common])}")
    return "; ".join(parts)


def _percent(summary: RunSummary, name: str) -> str:
    if name not in summary.scores:
        return "-"
    text = f"{100 * summary.scores[name]:.2f}%"
    return text + (f" +-{100 * summary.spread[name]:.2f}" if name in summary.spread else "")


def test_set_letters(summaries: Sequence[RunSummary]) -> list[str]:
    """Each run's test clips as a letter, the same for the same clips: ``A`` for the first run's, then ``B``, ...
    (``Z``, then ``A2``), in the order of the runs; ``?`` for a run whose folder lists none."""
    letters: dict[str, str] = {}
    for digest in (summary.test_set for summary in summaries if summary.test_set is not None):
        index = len(letters)
        letters.setdefault(digest, chr(ord("A") + index % 26) + (str(index // 26 + 1) if index >= 26 else ""))
    return ["?" if summary.test_set is None else letters[summary.test_set] for summary in summaries]


def _planned(summary: RunSummary) -> int | None:
    """The epochs a train run (or fold) was given, its ``train.epochs``; ``None`` for a run without epochs trained
    (a crossval's row) or a config that does not say."""
    planned = summary.settings.get("train.epochs")
    if summary.epochs is None or not isinstance(planned, int) or isinstance(planned, bool):
        return None
    return planned


def _epochs_cell(summary: RunSummary) -> str:
    """The epochs trained; an unfinished run's out of those it was given (``5 of 30``), a finished one's alone
    (early stopping ends most before ``train.epochs``)."""
    if summary.epochs is None:
        return "-"
    if summary.status in (RUNNING, STOPPED, UNFINISHED) and _planned(summary) is not None:
        return f"{summary.epochs} of {_planned(summary)}"
    return str(summary.epochs)


def table_rows(summaries: Sequence[RunSummary], names: Sequence[str],
               letters: Sequence[str] | None = None) -> list[list[str]]:
    """One row of :data:`COLUMNS` per run, as printed (``-``: the run does not say); the test set's column only
    with ``letters`` (:func:`test_set_letters`)."""
    rows = []
    for index, (name, summary) in enumerate(zip(names, summaries)):
        f1 = summary.scores.get("macro_f1")
        rows.append([name, summary.kind, summary.status,
                     _epochs_cell(summary),
                     "-" if summary.best_epoch is None else str(summary.best_epoch),
                     "-" if summary.test_clips is None else str(summary.test_clips),
                     *([] if letters is None else [letters[index]]),
                     _percent(summary, "accuracy"), _percent(summary, "balanced_accuracy"),
                     "-" if f1 is None else f"{f1:.3f}" + (f" +-{summary.spread['macro_f1']:.3f}"
                                                          if "macro_f1" in summary.spread else ""),
                     "-" if summary.seconds is None else f"{summary.seconds:.0f}",
                     summary.export or "-"])
    return rows


def csv_row(name: str, summary: RunSummary, letter: str = "") -> list[Any]:
    """The row of :data:`CSV_COLUMNS` (then each score's spread over folds) ``--csv`` writes: numbers as numbers
    (scores as fractions), empty where the run does not say; the epochs trained and those planned in two columns
    (the table's ``5 of 30``, a number a spreadsheet reads each); ``letter``, its test set's
    (:func:`test_set_letters`; ``?`` written empty)."""
    def given(value: Any) -> Any:
        return "" if value is None else value

    return [name, summary.kind, summary.status, given(summary.epochs), given(_planned(summary)),
            given(summary.best_epoch),
            given(summary.test_clips), "" if letter == "?" else letter,
            *(given(summary.scores.get(score)) for score in SCORES),
            given(summary.seconds), given(summary.export), *(given(summary.spread.get(score)) for score in SCORES)]


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip()
            for line in (header, *rows)]


def _names(runs: Sequence[Path]) -> list[str]:
    """Each run as the user may type it: relative to the current folder when it is inside it."""
    here = Path.cwd().resolve()
    names = []
    for run in runs:
        try:
            names.append(printable_path(run.resolve().relative_to(here)))
        except ValueError:
            names.append(printable_path(run))
    return names


def short_names(names: Sequence[str]) -> list[str]:
    """Each of ``names`` (runs as :func:`_names` gives them) as its shortest ending of folders that no other name
    ends with in as many folders: the last folder alone (``aug``) unless another run's ends the same, then as many
    of its parents as tell them apart (``s55/aug`` and ``s56/aug``); a name given twice shortens alike."""
    parts = [Path(name).parts for name in names]

    def ending(at: int, count: int) -> str:
        return str(Path(*parts[at][-count:])) if parts[at] else names[at]

    shorts = []
    for at, name in enumerate(names):
        others = [other for other in range(len(names)) if other != at and names[other] != name]
        count = next((count for count in range(1, len(parts[at]) + 1)
                      if all(ending(at, count) != ending(other, count) for other in others)), len(parts[at]))
        shorts.append(ending(at, count))
    return shorts


SEED = "train.seed"


def _seed_arms(summaries: Sequence[RunSummary]) -> list[list[list[int]]]:
    """The runs (their indices) that have test scores and settings the same but for :data:`SEED`, in the order of
    their first run, each such set as its runs on the same clips (:attr:`RunSummary.data`); a crossval's folds are
    in none, and neither is a crossval with folds still to run (its mean is over some of them)."""
    arms: dict[str, dict[str | None, list[int]]] = {}
    for index, summary in enumerate(summaries):
        # folds differ in their test fold; an unfinished crossval's mean is over fewer folds than a finished one's
        if "accuracy" in summary.scores and summary.kind != "fold" and (summary.kind != "crossval"
                                                                         or summary.status == "done"):
            rest = {key: value for key, value in summary.settings.items() if key != SEED}
            key = json.dumps([summary.kind, rest], sort_keys=True, default=str)
            arms.setdefault(key, {}).setdefault(summary.data, []).append(index)
    return [list(by_data.values()) for by_data in arms.values()]


def seed_groups(summaries: Sequence[RunSummary]) -> list[list[int]]:
    """The runs (their indices) that have test scores, settings the same but for :data:`SEED` and the same clips,
    in groups of two or more that hold two seeds or more (a seed ablation's repeats; runs of one seed only, the
    same command run again, differ in no setting), in the order of their first run (:func:`_seed_arms`)."""
    return [members for arm in _seed_arms(summaries) for members in arm
            if len({json.dumps(summaries[index].settings.get(SEED), default=str) for index in members}) > 1]


def other_data(summaries: Sequence[RunSummary], names: Sequence[str]) -> list[str]:
    """A note for each set of runs whose settings differ in :data:`SEED` alone but that were given other clips (the
    same ``data.path`` read after its files changed): those are not averaged together, and the note says why."""
    lines = []
    for arm in _seed_arms(summaries):
        if len(arm) < 2:
            continue
        # "the same but for": two runs of one seed given other clips differ in no setting at all
        lines.append("not averaged: runs whose settings are the same but for train.seed, given other clips "
                     "(split.csv's files, labels):")
        for members in arm:
            first = summaries[members[0]]
            clips = ("no split.csv" if first.data is None
                     else f"{counted(first.data_clips, 'clips')} [{first.data[:8]}]")
            lines.append(f"  {clips}: {', '.join(names[index] for index in members)}")
    return lines


def _scored_at(summary: RunSummary) -> float:
    """When the run wrote its scores (its ``metrics.json``, a crossval's ``crossval.json``), 0 when not known."""
    times = []
    for name in ("metrics.json", CROSSVAL_FILENAME):
        try:
            times.append((summary.path / name).stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def one_per_seed(summaries: Sequence[RunSummary], members: Sequence[int]) -> tuple[list[int], list[int]]:
    """``members`` (indices of one of :func:`seed_groups`) as one run per seed, in their order, and the repeats
    left out: a run reproduces from its seed (the same history and metrics), so a seed's second run is the same
    sample again, and counting it would shrink the spread. The run kept is the seed's newest finished one (done,
    then the latest scores, then the last given)."""
    rank = {index: (summaries[index].status == "done", _scored_at(summaries[index]), index) for index in members}
    newest: dict[str, int] = {}
    for index in members:
        seed = json.dumps(summaries[index].settings.get(SEED), default=str)
        if seed not in newest or rank[index] > rank[newest[seed]]:
            newest[seed] = index
    kept = sorted(newest.values())
    return kept, [index for index in members if index not in kept]


def over_seeds(summaries: Sequence[RunSummary], names: Sequence[str]) -> list[str]:
    """Each of :func:`seed_groups` as its scores' mean +- standard deviation over its seeds, one run each
    (:func:`one_per_seed`; the population's, as crossval's over folds), then its seeds and runs: an ablation's
    answer with its seed-to-seed spread; a line names the repeats of a seed left out."""
    groups = seed_groups(summaries)
    if not groups:
        return []
    rows, repeats = [], []
    for group in groups:
        members, left_out = one_per_seed(summaries, group)
        repeats.extend(left_out)
        cells = []
        for score in SCORES:
            values = [summaries[index].scores[score] for index in members if score in summaries[index].scores]
            if len(values) < len(members):
                cells.append("-")
            elif score == "macro_f1":
                cells.append(f"{statistics.fmean(values):.3f} +-{statistics.pstdev(values):.3f}")
            else:
                cells.append(f"{100 * statistics.fmean(values):.2f}% +-{100 * statistics.pstdev(values):.2f}")
        seeds = ", ".join(_jsonish(summaries[index].settings.get(SEED, "-")) for index in members)
        rows.append([*cells, seeds, ", ".join(names[index] for index in members)])
    header = ["accuracy", "balanced acc.", "macro F1", "seeds", "runs"]
    lines = ["over seeds: runs whose settings differ in train.seed alone, their test scores' mean +- std:",
             *(f"  {line}" for line in _aligned(header, rows))]
    if repeats:
        lines.append(f"  {counted(len(repeats), 'repeats')} of a seed left out (a seed repeats its run, so it counts "
                     f"once, its newest run): "
                     + ", ".join(f"{names[index]} (seed {_jsonish(summaries[index].settings.get(SEED, '-'))})"
                                 for index in repeats))
    return lines


def _points(score: str, value: float, *, sign: bool = True) -> str:
    """A difference of ``score``: accuracies in percentage points to 2 decimals (as the table's ``+-``), macro F1
    to 3 (``+1.67``, ``-0.020``)."""
    return f"{value:{'+' if sign else ''}.3f}" if score == "macro_f1" else f"{100 * value:{'+' if sign else ''}.2f}"


def _not_paired(first: RunSummary, other: RunSummary) -> str | None:
    """Why two crossvals' folds cannot be paired (``None``: they can): other folds done, or a fold tested on other
    clips, or clips that neither folder lists."""
    mine, theirs = list(first.fold_scores), list(other.fold_scores)
    if not mine or not theirs:
        return "no fold of one of them is done"
    if set(mine) != set(theirs):
        def listed(folds: Sequence[str]) -> str:
            return ", ".join(sorted(folds, key=int))
        return f"other folds done ({listed(mine)} against {listed(theirs)})"
    unknown = sorted((fold for fold in mine if first.fold_tests.get(fold) is None
                      or other.fold_tests.get(fold) is None), key=int)
    if unknown:
        return (f"the test clips of {'fold' if len(unknown) == 1 else 'folds'} {', '.join(unknown)} cannot be "
                f"checked (no fold_K/split.csv and no folds.csv)")
    differ = sorted((fold for fold in mine if first.fold_tests[fold] != other.fold_tests[fold]), key=int)
    if differ:
        return (f"{'fold' if len(differ) == 1 else 'folds'} {', '.join(differ)} tested other clips (each fold's "
                f"split.csv test rows; another seed's --k folds, or other data)")
    missing = [score for score in SCORES if any(score not in run.fold_scores[fold]
                                                for run in (first, other) for fold in mine)]
    if len(missing) == len(SCORES):
        return "no fold gives its scores"
    return None


@dataclass
class PairedFolds:
    """One cross-validation against the first one given, fold by fold (:func:`paired_comparisons`): what the
    printed ``paired over folds`` table (:func:`paired_folds`) and ``--csv``'s ``paired_`` columns
    (:func:`paired_cells`) both show, computed once."""

    first: int  # the index (in the runs compared) of the first crossval given, the one the others are measured against
    other: int  # this crossval's index
    why: str | None = None  # why their folds cannot be paired (:func:`_not_paired`); ``None``: they are
    folds: list[str] = field(default_factory=list)  # the folds done, by number
    #: each score both give on every fold: the differences (the other minus the first) in the order of ``folds``,
    #: their mean and standard deviation (the population's, as crossval's) and the folds the other wins, loses, ties
    diffs: dict[str, list[float]] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: each score's two-sided exact Wilcoxon signed-rank p-value over the folds (:func:`wilcoxon_p`)
    p: dict[str, float] = field(default_factory=dict)
    #: the folds either run scored near chance on (:func:`sound_tf.metrics.near_chance` of its ``metrics.json``):
    #: the fold, the run's index, its balanced accuracy and its chance level, in the order of ``folds``
    near_chance: list[tuple[str, int, float, float]] = field(default_factory=list)
    #: the two clip by clip, over the test clips of every fold pooled (:func:`_pooled_clips`), or why not: the message
    #: of a fold's ``errors.csv`` that is missing or does not fit; both ``None`` when the folds are not paired
    over_clips: PairedClips | None = None
    over_clips_why: str | None = None


def paired_comparisons(summaries: Sequence[RunSummary]) -> list[PairedFolds]:
    """Each cross-validation after the first one given against that first (none with fewer than two): unpaired with
    :func:`_not_paired`'s reason, or paired on the same folds and test clips, each score both give on every fold
    with its differences, their mean +- standard deviation, how many folds each one wins, ties counted, and the
    exact Wilcoxon test's p-value (:func:`wilcoxon_p`); and clip by clip over the folds' test clips pooled, with
    the exact McNemar test's p-value, or why not (:func:`_pooled_clips`)."""
    crossvals = [index for index, summary in enumerate(summaries) if summary.kind == "crossval"]
    if len(crossvals) < 2:
        return []
    first = crossvals[0]
    comparisons = []
    for index in crossvals[1:]:
        a, b = summaries[first], summaries[index]
        paired = PairedFolds(first, index, _not_paired(a, b))
        comparisons.append(paired)
        if paired.why is not None:
            continue
        paired.folds = sorted(a.fold_scores, key=int)
        for score in SCORES:
            if not all(score in run.fold_scores[fold] for run in (a, b) for fold in paired.folds):
                continue
            diffs = [b.fold_scores[fold][score] - a.fold_scores[fold][score] for fold in paired.folds]
            # a tie: the same score to 12 decimals (a fold's accuracy is a count over the same clips)
            outcomes = Counter(0 if math.isclose(diff, 0.0, rel_tol=0, abs_tol=1e-12) else 1 if diff > 0 else -1
                               for diff in diffs)
            paired.diffs[score] = diffs
            paired.mean[score], paired.std[score] = statistics.fmean(diffs), statistics.pstdev(diffs)
            paired.outcomes[score] = (outcomes[1], outcomes[-1], outcomes[0])
            paired.p[score] = wilcoxon_p(diffs)
        paired.near_chance = _near_chance_folds([(first, a), (index, b)], paired.folds)
        paired.over_clips, paired.over_clips_why = _pooled_clips(first, a, index, b, paired.folds)
    return comparisons


def _pooled_clips(first: int, a: RunSummary, other: int, b: RunSummary,
                  folds: Sequence[str]) -> tuple[PairedClips | None, str | None]:
    """Two crossvals paired over ``folds`` (the same test clips in each: :func:`_not_paired`), clip by clip over
    every fold's test clips pooled, a clip keyed by its fold, from each fold's ``errors.csv``
    (:func:`_pooled_misclassified`): the counts and the exact McNemar test's p-value, or ``None`` and the message of
    the first ``errors.csv`` that is missing or does not fit."""
    try:
        wrong_a = _pooled_misclassified(a, folds)
        wrong_b = _pooled_misclassified(b, folds)
    except CompareError as exc:
        return None, str(exc)
    clips = sum(len(a.fold_test_keys.get(fold, ())) for fold in folds)
    return _clip_counts(first, other, clips, wrong_a, wrong_b), None


#: The decimals the differences are rounded to before the Wilcoxon test (as the ties of the wins, losses and ties: a
#: fold's score is a count over the same clips, and 0.1 + 0.2 - 0.3 is no difference).
TIE_DECIMALS = 12


def wilcoxon_p(diffs: Sequence[float]) -> float:
    """The two-sided exact Wilcoxon signed-rank p-value of paired differences (``scipy.stats.wilcoxon``).

    The differences are rounded to :data:`TIE_DECIMALS` first, as scipy's documentation asks of differences of
    floats, so that equal scores reached by other sums are zeros and equal differences ties. Zero differences are
    dropped (``zero_method="wilcox"``, scipy's default, Wilcoxon's own rule), and the test is over the others. With
    no tie among them, ``method="exact"``; with ties, whose null distribution that method does not give exactly (its
    documentation says so and recommends a permutation method instead), every one of the 2^n assignments of signs is
    enumerated (``scipy.stats.PermutationMethod``, exhaustive), which is exact. No difference but zeros: 1.0.

    Parameters
    ----------
    diffs : sequence of float
        One difference per fold (the other run's score minus the first's).

    Returns
    -------
    float
        The p-value. With n differences not zero, it is never below 2 / 2^n (0.0625 for 5 folds, 0.125 for 4).
    """
    import numpy as np
    from scipy import stats

    rounded = np.round(np.asarray(diffs, dtype=np.float64), TIE_DECIMALS)  # [folds]
    nonzero = np.abs(rounded[rounded != 0])
    if nonzero.size == 0:  # every fold tied: the one assignment of signs is the one observed
        return 1.0
    exact = len(np.unique(nonzero)) == nonzero.size
    # batch: the sign assignments scored at once, so that many folds do not hold 2^n of them in memory
    method = "exact" if exact else stats.PermutationMethod(n_resamples=math.inf, batch=WILCOXON_BATCH)
    return float(stats.wilcoxon(rounded, zero_method="wilcox", alternative="two-sided", method=method).pvalue)


#: How many of the 2^n sign assignments an exhaustive Wilcoxon test with ties scores at once (:func:`wilcoxon_p`).
WILCOXON_BATCH = 4096


def _near_chance_folds(runs: Sequence[tuple[int, RunSummary]],
                       folds: Sequence[str]) -> list[tuple[str, int, float, float]]:
    """Each of ``folds`` that one of ``runs`` (their index and summary) scored near chance on, as crossval names it
    in its own summary (:func:`sound_tf.metrics.near_chance` of the fold's ``metrics.json``): ``(fold, index,
    balanced accuracy, chance level)``. A fold whose folder is gone, or whose ``metrics.json`` has no per-class
    supports to count its classes by, is not known to be near chance and is left out."""
    if not any(run.fold_metrics.get(fold) for _, run in runs for fold in folds):
        return []
    from .metrics import MetricsError, chance_level, near_chance

    found = []
    for fold in folds:
        for index, run in runs:
            metrics = run.fold_metrics.get(fold)
            try:
                if metrics and near_chance(metrics):
                    found.append((fold, index, float(metrics["balanced_accuracy"]), chance_level(metrics)))
            except MetricsError:  # no per_class: its classes, and so its chance level, are not known
                continue
    return found


def paired_folds(comparisons: Sequence[PairedFolds], names: Sequence[str]) -> list[str]:
    """:func:`paired_comparisons` as a paper compares cross-validations: for each, one line saying why it is not
    paired, or a table of each fold's difference (accuracies in percentage points, macro F1 to 3 decimals), their
    mean +- standard deviation, the folds the other wins, loses and ties and the exact Wilcoxon test's p-value
    (:func:`wilcoxon_p`), per score; under it, the block of the two over their folds' test clips pooled, as
    :func:`paired_clips_lines` prints two train runs', with :data:`POOLED_CAVEAT` under it, or one line naming the
    fold's ``errors.csv`` that kept it out and why."""
    lines: list[str] = []
    for paired in comparisons:
        first, other = names[paired.first], names[paired.other]
        if paired.why is not None:
            lines.append(f"not paired: {other} and {first}: {paired.why}; their scores are not compared fold by fold")
            continue
        scores = list(paired.diffs)
        rows = [[f"fold {fold}", *(_points(score, paired.diffs[score][at]) for score in scores)]
                for at, fold in enumerate(paired.folds)]
        rows.append(["mean +- std", *(f"{_points(score, paired.mean[score])} "
                                      f"+-{_points(score, paired.std[score], sign=False)}" for score in scores)])
        rows.append(["wins, losses, ties", *(" / ".join(map(str, paired.outcomes[score])) for score in scores)])
        rows.append([WILCOXON_ROW, *(_p_value(paired.p[score]) for score in scores)])
        header = ["", *(SCORE_HEADERS[score] for score in scores)]
        lines.append(f"paired over folds: {other} minus {first}, on the same {counted(len(paired.folds), 'folds')} "
                     f"and test clips (accuracies in percentage points; +- the population std of the differences, "
                     f"ddof=0; wins: the folds {other} scores higher; p: two-sided, tied folds left out):")
        lines.extend(f"  {line}" for line in _aligned(header, rows))
        if paired.near_chance:
            lines.append(_near_chance_line(paired, names))
        if (floor := _p_floor_line(paired)) is not None:
            lines.append(floor)
        if paired.over_clips is not None:
            folds = counted(len(paired.folds), "folds")
            lines.extend(_mcnemar_block(paired.over_clips, first, other, f"pooled over the test clips of the same "
                                                                         f"{folds}, {paired.over_clips.clips} in all"))
            lines.append(POOLED_CAVEAT)
        elif paired.over_clips_why is not None:
            lines.append(_not_paired_clips_line(NotPairedClips(paired.first, (paired.other,), paired.over_clips_why),
                                                names))
    return lines


#: The level :func:`_p_floor_line` measures the Wilcoxon test's smallest p against: the one a paper reports at.
SIGNIFICANCE_LEVEL = 0.05


def smallest_p(n: int) -> float:
    """The smallest two-sided p an exact sign-based test gives over ``n`` informative pairs (folds that differ for
    the Wilcoxon test, clips one run alone gets right for McNemar's): every one on the same side, 2 / 2^n."""
    return 2 / 2 ** n


def _p_floor_line(paired: PairedFolds) -> str | None:
    """The line under a paired table whose folds that differ are too few for a p-value below
    :data:`SIGNIFICANCE_LEVEL`: the smallest p the test gives over n of them is 2 / 2^n (:func:`wilcoxon_p`), per
    score (``note: ... 2 / 2^n: 0.5 over 2 folds (accuracy, balanced acc., macro F1) here, ...``); ``None`` when
    every score's folds could reach it, or none differ. Three FSDD folds with one tied printed p 0.5 for 'noaug won
    both folds that differ', the smallest p there was, and nothing said so."""
    by_count: dict[int, list[str]] = {}
    for score, (wins, losses, _) in paired.outcomes.items():
        if wins + losses and smallest_p(wins + losses) > SIGNIFICANCE_LEVEL:
            by_count.setdefault(wins + losses, []).append(SCORE_HEADERS[score])
    if not by_count:
        return None
    floors = ", ".join(f"{_p_value(smallest_p(n))} over {counted(n, 'folds')} ({', '.join(scores)})"
                       for n, scores in sorted(by_count.items()))
    every = sum(map(len, by_count.values())) == len(paired.outcomes)
    return (f"note: over n folds that differ (ties left out) the Wilcoxon test gives no p below 2 / 2^n: {floors} "
            f"here, so no p of {'the table' if every else 'those scores'} can reach {SIGNIFICANCE_LEVEL:g}; the folds "
            "are too few to tell the two apart, which does not say they do the same")


#: The line under a pooled paired-over-test-clips block (:func:`paired_folds`): the test takes the clips as
#: independent pairs, which a fold's clips, scored by the same two models, are not quite.
POOLED_CAVEAT = ("note: the pooled test takes each clip as an independent pair, where a fold's clips share that fold's "
                 "two models (and, in folds by group, a speaker or recording), so its p can be smaller than the data "
                 "warrant; read it beside the fold table above, not in place of it")

#: The paired table's row of each score's p-value (:func:`wilcoxon_p`).
WILCOXON_ROW = "p (Wilcoxon, exact)"


def _p_value(p: float) -> str:
    """A p-value as printed: 4 significant digits (``0.0625``, ``0.001953``, ``1.907e-06``)."""
    return f"{p:.4g}"


def _near_chance_line(paired: PairedFolds, names: Sequence[str]) -> str:
    """The line under a paired table that names its folds either run scored near chance on (crossval's summary
    names them, compare's table did not): ``note: fold 1 of noaug scored near chance (balanced accuracy 0.13; chance
    0.10): its difference of -44.20 points in balanced accuracy weighs in the mean above as any other fold's``."""
    said = ", ".join(f"fold {fold} of {names[index]} scored near chance (balanced accuracy {balanced:.2f}; chance "
                     f"{chance:.2f})" for fold, index, balanced, chance in paired.near_chance)
    folds = list(dict.fromkeys(fold for fold, *_ in paired.near_chance))  # a fold both runs scored near chance: once
    one = len(folds) == 1
    if "balanced_accuracy" not in paired.diffs:  # a run whose folds give no balanced accuracy: the other scores
        return f"note: {said}: {'it weighs' if one else 'they weigh'} in the mean above as any other fold"
    diffs = [_points("balanced_accuracy", paired.diffs["balanced_accuracy"][paired.folds.index(fold)])
             for fold in folds]
    shown = diffs[0] if one else f"{', '.join(diffs[:-1])} and {diffs[-1]}"
    return (f"note: {said}: {'its difference' if one else 'their differences'} of {shown} points in balanced accuracy "
            f"{'weighs' if one else 'weigh'} in the mean above as any other fold's")


#: ``--csv``'s columns of a paired comparison (:class:`PairedFolds`), after each score's spread, when two or more
#: crossvals are compared: the run measured against, the folds paired, then per score the differences' mean and
#: population std (fractions, as the scores), the folds won, lost and tied and the Wilcoxon test's p-value
#: (:func:`wilcoxon_p`), then why a crossval is not paired; then its folds' test clips pooled
#: (:attr:`PairedFolds.over_clips`): their count, the clips both right, the first alone, the other alone, neither, and
#: the McNemar test's p-value (:func:`mcnemar_p`), then why they are not (:attr:`PairedFolds.over_clips_why`: a fold's
#: ``errors.csv`` missing or not fitting, as the line printed under the table says).
PAIRED_PARTS = ("mean_diff", "std_diff", "wins", "losses", "ties", "wilcoxon_p")  # each score's, paired_<score>_<part>
PAIRED_CLIP_COLUMNS = ("paired_clips", "paired_both_right", "paired_only_first", "paired_only_other",
                       "paired_both_wrong", "paired_mcnemar_p")
PAIRED_COLUMNS = ("paired_against", "paired_folds",
                  *(f"paired_{score}_{part}" for score in SCORES for part in PAIRED_PARTS), "paired_note",
                  *PAIRED_CLIP_COLUMNS, "paired_clips_note")


def paired_cells(comparisons: Sequence[PairedFolds], names: Sequence[str]) -> list[list[Any]]:
    """Each run's cells of :data:`PAIRED_COLUMNS` (``[]`` each when fewer than two crossvals are compared): empty on
    the first crossval's row and on a row that is not a crossval's; a crossval not paired names the run it is not
    paired with and why (``paired_note``), its numbers empty; a paired one its numbers as numbers, empty for a score
    some fold does not give, and its pooled clips' counts and McNemar p (:data:`PAIRED_CLIP_COLUMNS`) empty when a
    fold's ``errors.csv`` kept them out, ``paired_clips_note`` saying why (as the line printed under its table)."""
    if not comparisons:
        return [[] for _ in names]
    cells: list[list[Any]] = [[""] * len(PAIRED_COLUMNS) for _ in names]
    for paired in comparisons:
        numbers: list[Any] = []
        for score in SCORES:  # an unpaired crossval's diffs are empty
            if score in paired.diffs:
                numbers.extend([paired.mean[score], paired.std[score], *paired.outcomes[score], paired.p[score]])
            else:
                numbers.extend([""] * len(PAIRED_PARTS))
        clips = paired.over_clips
        cells[paired.other] = [names[paired.first], "" if paired.why is not None else len(paired.folds), *numbers,
                               paired.why or "",
                               *([""] * len(PAIRED_CLIP_COLUMNS) if clips is None else
                                 [clips.clips, clips.both_right, clips.only_first, clips.only_other, clips.both_wrong,
                                  clips.p]), paired.over_clips_why or ""]
    return cells


ERRORS_FILENAME = "errors.csv"  # sound_tf.evaluation.evaluate_items's, beside metrics.json (it imports TensorFlow)


@dataclass
class PairedClips:
    """One train run against the first one given, clip by clip on the same test clips (:func:`paired_clips`): the
    clips both get right, the first alone, the other alone, neither, and the exact McNemar test's p-value."""

    first: int  # the index (in the runs compared) of the first train run given
    other: int
    clips: int
    both_right: int
    only_first: int
    only_other: int
    both_wrong: int
    p: float


def _data_root(settings: dict[str, Any]) -> str | None:
    """A run's ``data.path``, the folder its clips' paths are keyed under (:func:`_clip_key`); ``None``: not given."""
    return settings.get("data.path") if isinstance(settings.get("data.path"), str) else None


def _wrong_clips(path: Path, root: str | None, tested: frozenset[tuple[str, str]], *, listed_in: str,
                 test_clips: Any, accuracy: float | None) -> frozenset[tuple[str, str]]:
    """The test clips the ``errors.csv`` at ``path`` says were got wrong, checked against the clips scored and the
    ``metrics.json`` beside it: its rows (one per clip, however many windows a long clip was scored over: their
    logits are averaged into one answer), each as its path under ``root`` (:func:`_clip_key`) and its label.

    Parameters
    ----------
    path : Path
        The ``errors.csv`` of a train run, or of one fold of a crossval.
    root : str or None
        The ``data.path`` the run's clips are keyed under (:func:`_data_root`).
    tested : frozenset of (str, str)
        The clips that run tested, keyed alike (:attr:`RunSummary.test_keys`, or one of
        :attr:`RunSummary.fold_test_keys`).
    listed_in : str
        Where ``tested`` was read, as the message names it (``its split.csv``).
    test_clips, accuracy
        Its ``metrics.json``'s ``num_examples`` and ``accuracy`` (``None``: not given, not checked).

    Raises
    ------
    CompareError
        No ``errors.csv`` (a run from before it was written, or one whose test was not scored), one not in its
        format, or one that does not fit the clips tested and ``metrics.json`` (a clip that is no test clip, or
        another count of mistakes than its accuracy gives).
    """
    if not path.is_file():
        raise CompareError(f"{printable_path(path)}: no such file (a run from before sound_tf wrote it, or one whose "
                           f"test split was not scored)")
    rows = _read_csv_rows(path, ("path", "true_label"))
    wrong = frozenset((_clip_key(row.get("path", ""), root), row.get("true_label", "")) for row in rows)
    strangers = sorted(wrong - tested)
    if strangers:
        raise CompareError(f"{printable_path(path)}: lists {counted(len(strangers), 'clips')} that "
                           f"{'is' if len(strangers) == 1 else 'are'} no test clip of {listed_in} (first: "
                           f"{strangers[0][0]}, {strangers[0][1]})")
    if test_clips not in (None, len(tested)) or (
            accuracy is not None and round(accuracy * len(tested)) != len(tested) - len(wrong)):
        said = "-" if accuracy is None else f"{accuracy:.4f}"
        raise CompareError(f"{printable_path(path)}: {len(wrong)} of {counted(len(tested), 'test clips')} wrong, "
                           f"where its metrics.json says {test_clips} clips at accuracy {said}: written by "
                           f"another evaluation")
    return wrong


def _misclassified(summary: RunSummary) -> frozenset[tuple[str, str]]:
    """The test clips a train run got wrong, as :attr:`RunSummary.test_keys` names them: the rows of its
    ``errors.csv``, checked against its ``split.csv`` and ``metrics.json`` (:func:`_wrong_clips`).

    Raises
    ------
    CompareError
        Its ``errors.csv`` is missing, not in its format, or does not fit (:func:`_wrong_clips`): the run is not
        paired clip by clip.
    """
    return _wrong_clips(summary.path / ERRORS_FILENAME, _data_root(summary.settings), summary.test_keys or frozenset(),
                        listed_in="its split.csv", test_clips=summary.test_clips,
                        accuracy=summary.scores.get("accuracy"))


def _fold_misclassified(summary: RunSummary, fold: str) -> frozenset[tuple[str, str]]:
    """The test clips a crossval's ``fold`` got wrong, as :attr:`RunSummary.fold_test_keys` names them: the rows of
    its ``fold_K/errors.csv``, checked against the fold's test clips and its ``metrics.json`` (:func:`_wrong_clips`;
    crossval.json's accuracy of the fold when its ``metrics.json`` is not read).

    Raises
    ------
    CompareError
        The fold's ``errors.csv`` is missing, not in its format, or does not fit (:func:`_wrong_clips`).
    """
    fold_dir = summary.path / f"fold_{fold}"
    metrics = summary.fold_metrics.get(fold) or {}
    accuracy = metrics.get("accuracy", summary.fold_scores.get(fold, {}).get("accuracy"))
    listed_in = "its split.csv" if (fold_dir / "split.csv").is_file() else f"fold {fold} in folds.csv"
    return _wrong_clips(fold_dir / ERRORS_FILENAME, _data_root(summary.settings),
                        summary.fold_test_keys.get(fold, frozenset()), listed_in=listed_in,
                        test_clips=metrics.get("num_examples"),
                        accuracy=float(accuracy) if isinstance(accuracy, (int, float)) else None)


def _pooled_misclassified(summary: RunSummary, folds: Sequence[str]) -> frozenset[tuple[str, str, str]]:
    """The test clips a crossval got wrong over ``folds``, each as ``(fold, path, label)``: a clip is keyed by the
    fold that tested it (:func:`_fold_misclassified`).

    Raises
    ------
    CompareError
        The first of its folds' ``errors.csv`` that is missing or does not fit.
    """
    return frozenset((fold, *clip) for fold in folds for clip in _fold_misclassified(summary, fold))


def _clip_counts(first: int, other: int, clips: int, wrong_first: frozenset, wrong_other: frozenset) -> PairedClips:
    """Two runs (their indices) compared on the same ``clips`` test clips from the clips each got wrong: the counts
    of the exact McNemar test and its p-value (:func:`mcnemar_p`)."""
    only_first, only_other = len(wrong_other - wrong_first), len(wrong_first - wrong_other)
    return PairedClips(first, other, clips, clips - len(wrong_first | wrong_other), only_first, only_other,
                       len(wrong_first & wrong_other), mcnemar_p(only_first, only_other))


def mcnemar_p(only_first: int, only_other: int) -> float:
    """The exact McNemar test's two-sided p-value: a binomial test (``scipy.stats.binomtest``, p = 0.5) of the
    clips one run alone gets right among the clips exactly one of the two gets right; 1.0 when there are none."""
    if only_first + only_other == 0:  # no clip tells the two apart
        return 1.0
    from scipy import stats

    return float(stats.binomtest(only_other, only_first + only_other, p=0.5, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class NotPairedClips:
    """Train runs :func:`paired_clips` does not pair with the first one given (``first``, an index in the runs
    compared), and why: ``why`` is the message of an ``errors.csv`` that cannot be used (:func:`_misclassified`),
    ``None`` for ``runs`` scored on other test clips. ``runs`` empty: the first run pairs none, its ``errors.csv``
    (``why``) or its ``split.csv``, which lists no test clip (``None``), being of no use."""

    first: int
    runs: tuple[int, ...] = ()
    why: str | None = None


def paired_clips(summaries: Sequence[RunSummary]) -> tuple[list[PairedClips], list[NotPairedClips]]:
    """Each train run (or fold) after the first one given against that first, clip by clip, when both were scored on
    the same test clips (:attr:`RunSummary.test_set`) and their ``errors.csv`` say which they got wrong
    (:func:`_misclassified`): the counts of the exact McNemar test and its p-value (:func:`mcnemar_p`). Also the
    runs that are not paired, and why (no usable ``errors.csv``; other test clips), one entry per reason."""
    singles = [index for index, summary in enumerate(summaries) if summary.kind != "crossval"]
    if len(singles) < 2:
        return [], []
    first, others = singles[0], singles[1:]
    a = summaries[first]
    if a.test_set is None:
        return [], [NotPairedClips(first)]
    try:
        wrong_a = _misclassified(a)
    except CompareError as exc:
        return [], [NotPairedClips(first, why=str(exc))]
    comparisons, unpaired, elsewhere = [], [], []
    for index in others:
        b = summaries[index]
        if b.test_set != a.test_set:
            elsewhere.append(index)
            continue
        try:
            wrong_b = _misclassified(b)
        except CompareError as exc:
            unpaired.append(NotPairedClips(first, (index,), str(exc)))
            continue
        comparisons.append(_clip_counts(first, index, len(a.test_keys or ()), wrong_a, wrong_b))
    if elsewhere:
        unpaired.append(NotPairedClips(first, tuple(elsewhere)))
    return comparisons, unpaired


def _not_paired_clips_line(unpaired: NotPairedClips, names: Sequence[str]) -> str:
    """The line that says why :class:`NotPairedClips`' runs are not paired, naming runs by ``names``."""
    first = names[unpaired.first]
    if unpaired.runs and unpaired.why is None:
        return (f"not paired over test clips with {first}: {', '.join(names[index] for index in unpaired.runs)} "
                f"(other test clips, or none listed: split.csv's test rows)")
    if unpaired.runs:
        return (f"not paired over test clips: {unpaired.why}; {names[unpaired.runs[0]]} is not compared clip by clip "
                f"with {first}")
    if unpaired.why is None:
        return f"not paired over test clips: {first}, the first run given, lists no test clip (split.csv)"
    return f"not paired over test clips: {unpaired.why}; the runs are not compared clip by clip with {first}"


def paired_clips_lines(comparisons: Sequence[PairedClips], names: Sequence[str],
                       unpaired: Sequence[NotPairedClips] = ()) -> list[str]:
    """Each of :func:`paired_clips` as a short block: the clips both runs get right, the first alone, the other
    alone, neither, and the exact McNemar test's p-value; then a line for each of ``unpaired``. With a block to
    print, the blocks and those lines name runs by :func:`short_names` (a column headed by two run paths made a
    table hundreds of characters wide), after one legend of each shortened name's run as the table above names it;
    the lines alone name runs by ``names``."""
    shorts = short_names(names)
    blocks = {index for paired in comparisons for index in (paired.first, paired.other)}
    named = {index for item in unpaired for index in (item.first, *item.runs)}
    shown = blocks | named if comparisons else set()  # the lines alone get no legend
    shortened = sorted(index for index in shown if shorts[index] != names[index])
    lines = []
    if shortened:
        width = max(len(shorts[index]) for index in shortened)
        after = " and the not-paired lines after them" if named - blocks else ""
        lines.append(f"runs in the paired-over-test-clips blocks below{after}, by the end of their folder:")
        lines.extend(f"  {shorts[index].ljust(width)}  {names[index]}" for index in shortened)
    else:  # nothing shortened, or no block: the runs' names as the table above gives them
        shorts = list(names)
    for paired in comparisons:
        lines.extend(_mcnemar_block(paired, shorts[paired.first], shorts[paired.other],
                                    f"on the same {counted(paired.clips, 'test clips')}"))
    lines.extend(_not_paired_clips_line(item, shorts) for item in unpaired)
    return lines


def _mcnemar_block(paired: PairedClips, first: str, other: str, clips: str) -> list[str]:
    """One paired-over-test-clips block, the runs named ``first`` and ``other`` and their clips said as ``clips``
    (``on the same 30 test clips``): its header, the clips both right, each alone, neither and the McNemar p, then a
    note when the clips that tell the two apart are too few for a p below :data:`SIGNIFICANCE_LEVEL`."""
    lines = [f"paired over test clips: {other} against {first}, {clips} (p: exact McNemar test, two-sided, on the "
             f"clips one of the two alone gets right):"]
    header = ["both right", f"only {first} right", f"only {other} right", "both wrong", MCNEMAR_COLUMN]
    row = [str(paired.both_right), str(paired.only_first), str(paired.only_other), str(paired.both_wrong),
           _p_value(paired.p)]
    lines.extend(f"  {line}" for line in _aligned(header, [row]))
    apart = paired.only_first + paired.only_other
    if apart and (floor := smallest_p(apart)) > SIGNIFICANCE_LEVEL:  # as the paired folds' note
        lines.append(f"note: {counted(apart, 'clips')} tell {other} and {first} apart (one of the two alone "
                     f"right), and over n of them the exact McNemar test gives no p below 2 / 2^n "
                     f"({_p_value(floor)} here), so p cannot reach {SIGNIFICANCE_LEVEL:g}; they are too few to "
                     "tell which run is better, which does not say the two do the same")
    return lines


#: The paired-over-clips block's column of the p-value (:func:`mcnemar_p`).
MCNEMAR_COLUMN = "p (McNemar, exact)"


def check_csv_target(path: str | os.PathLike) -> None:
    """Refuse a ``--csv`` file that exists and is not a table this command wrote (its first line starts with
    :data:`COLUMNS`): a run's ``split.csv`` or ``history.csv`` given by mistake would be replaced whole.

    Raises
    ------
    CompareError
        ``path`` is a folder, or a file whose first line is not this command's header.
    """
    path = Path(path)
    if path.is_dir():
        raise CompareError(f"--csv {printable_path(path)}: a folder; give a file name ending in .csv")
    if not path.exists():
        return
    try:
        with path.open("rb") as handle:
            first = handle.readline(4096).decode("utf-8", "replace").rstrip("\r\n")
    except OSError as exc:
        raise CompareError(f"--csv {printable_path(path)}: cannot be read to check what it holds "
                           f"({exc.strerror or exc})") from None
    if not first.startswith(",".join(COLUMNS[:3]) + ","):
        shown = first if len(first) <= 60 else first[:57] + "..."
        raise CompareError(f"--csv {printable_path(path)}: exists and is not a table compare wrote (its first line: "
                           f"{shown!r}), so it is left as it is; give a new file name, or delete that file first")


def compare(paths: Sequence[str | os.PathLike], *, csv_path: str | os.PathLike | None = None) -> list[str]:
    """The lines :func:`main` prints for ``paths`` (runs, or folders of runs); with ``csv_path``, the same
    table plus, for two or more crossvals, the paired comparison's :data:`PAIRED_COLUMNS` and one column per
    differing setting is written there (a file there that this command did not write is refused:
    :func:`check_csv_target`). A run whose files cannot be read is
    named on stderr and left out.

    Raises
    ------
    CompareError
        A path holds no run, or no run could be read.
    """
    if csv_path is not None:
        check_csv_target(csv_path)
    summaries = []
    for run in find_runs(paths):
        try:
            summaries.append(summarise(run))
        except CompareError as exc:
            print(f"warning: {exc}; {printable_path(run)} is left out", file=sys.stderr)
    if not summaries:
        raise CompareError("no run could be read (the warnings above say why)")
    names = _names([summary.path for summary in summaries])
    letters = test_set_letters(summaries)
    other_clips = len(summaries) > 1 and len({summary.test_set for summary in summaries}) > 1
    rows = table_rows(summaries, names, letters if other_clips else None)
    header = ["run", "kind", "status", "epochs", "best", "test clips", *(["test set"] if other_clips else []),
              "accuracy", "balanced acc.", "macro F1", "train s", "export"]
    lines = _aligned(header, rows)
    differ = differing_settings(summaries)
    if len(summaries) == 1:
        only = summaries[0].path
        search = tuning_search(only) if only.name == "best_run" else None
        lines.append("one run: no other to compare its settings with" + (
            f" (the best run of a tuning search: its trials, scored on the validation split, are side by side in "
            f"{printable_path(search / 'trials.csv')})" if search is not None else ""))
    elif not differ:
        lines.append(f"settings: the same in all {len(summaries)} runs (seed too)")
    else:
        of = f"{len(differ)} of {len({key for summary in summaries for key in summary.settings})}"
        width = max(len(key) for key in differ)
        in_order = [f"  {key.ljust(width)}  {' | '.join(values)}" for key, values in differ.items()]
        if len(summaries) <= IN_ORDER_RUNS and all(len(line) <= IN_ORDER_WIDTH for line in in_order):
            lines.append(f"settings that differ (in the order of the runs above, {of}):")
            lines.extend(in_order)
        else:  # a tenth value of a row of ten is found by counting; a value with its runs is read
            lines.append(f"settings that differ ({of}; each value with its runs, the most common last):")
            lines.extend(f"  {key.ljust(width)}  {by_value(values, names)}" for key, values in differ.items())
    if other_clips:
        known = len(set(letters) - {"?"})
        unknown = "; ?: its folder lists no test clip" if "?" in letters else ""
        lines.append(f"note: {counted(known, 'different sets')} of test clips "
                     f"(column test set{unknown}): runs of different letters do not measure the same thing "
                     f"(other data or another split)")
        if SEED in differ and any(summary.kind != "crossval" for summary in summaries):
            lines.append("      a seed draws its own split of data without folds; --set data.split_file=RUN/split.csv "
                         "gives another seed the same test clips as RUN")
        if SEED in differ and any(summary.kind == "crossval" for summary in summaries):
            # crossval refuses data.split_file (one split, not folds); its folds.csv is a manifest with a fold column
            lines.append("      a seed draws its own folds of data without folds (crossval --k); --data CV/folds.csv "
                         "gives a crossval of another seed CV's folds")
    comparisons = paired_comparisons(summaries)
    lines.extend(paired_folds(comparisons, names))
    over_clips, unpaired = paired_clips(summaries)
    lines.extend(paired_clips_lines(over_clips, names, unpaired))
    seeds = over_seeds(summaries, names)
    lines.extend(seeds)
    lines.extend(other_data(summaries, names))
    if any(summary.spread for summary in summaries):  # which +-: a paper's sample std (ddof=1) is larger
        lines.append("note: +- on a crossval's row is the standard deviation over its folds, the population's (ddof=0, "
                     "as numpy.std; --csv: <score>_std)" + ("; over seeds, over the seeds' scores, the population's "
                                                            "too" if seeds else ""))
    if csv_path is not None:
        paired = paired_cells(comparisons, names)
        atomic.write_csv(csv_path, [*CSV_COLUMNS, *(f"{name}_std" for name in SCORES),
                                    *(PAIRED_COLUMNS if comparisons else ()), *differ],
                         [[*csv_row(name, summary, letters[index]), *paired[index],
                           *(values[index] for values in differ.values())]
                          for index, (name, summary) in enumerate(zip(names, summaries))])
        lines.append(f"wrote {printable_path(csv_path)}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sound_tf.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="a run folder (train's, crossval's) or a folder of them (runs/)")
    parser.add_argument("--csv", type=os.path.expanduser, metavar="FILE",
                        help="also write the table, with one column per setting that differs (and with two or more "
                             "crossvals their paired comparison's paired_* columns), to this CSV file")
    args = parser.parse_args(argv)
    if args.csv is not None and Path(args.csv).suffix.lower() != ".csv":
        parser.error(f"--csv {args.csv}: give a file name ending in .csv")

    def work() -> None:
        for line in compare(args.runs, csv_path=args.csv):
            print(line)

    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
