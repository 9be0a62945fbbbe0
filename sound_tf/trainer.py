"""Train one model into a run folder, resumably, and evaluate it on the test split.

A run folder is self-describing: ``config.json`` (with the label list), ``labels.txt``, ``split.csv``,
``skipped.csv``, ``model.keras``, ``history.csv``, ``metrics.json``, ``confusion_matrix.png`` and the
rest of the evaluation files, TensorBoard logs under ``logs/``, ``checkpoints/best.weights.h5`` (and
``final.weights.h5`` once training ends), ``noise.json`` when it mixes in the recordings of
``augment.noise_dir`` (which files, from which epoch: :func:`record_noise`), and while training runs, ``backup/``
(``keras.callbacks.BackupAndRestore``). Running the same command
again after a kill resumes at the last finished epoch; the best checkpoint and early-stopping state
survive the restart.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from . import atomic, augment, pipeline
from .audio import cache_dir_of
from .config import CONFIG_FILENAME, NOISE_FILENAME, Config, TrainConfig, apply_overrides, saved_fingerprint
from .datasets import (SILENCE_CSV, SKIPPED_CSV, SPLIT_CSV, PreparedData, folds_held_apart, longer_than_clip,
                       prepare_dataset, read_split_csv)
from .errors import ConfigError, DatasetError, SoundTFError, counted, is_whole
from .evaluation import evaluate_items, write_run_report
from .frontend import compute_feature_stats
from .locks import Wording, claimed, refuse_foreign_folder
from .metrics import FitWording, overfit, underfit
from .models import build_model
from .run_state import HISTORY_FILE, STATE_FILE, read_history, read_state, write_state  # no TensorFlow there

#: What a run folder holds before its ``run_state.json``: the log (``train.log``, which the train command,
#: a cross-validation's folds and a search's ``best_run`` open first) and the dataset's ``split.csv``,
#: ``skipped.csv`` and ``silence.csv`` (a run stopped while its data decode leaves only these, as does a fold
#: given its split, and a search's ``best_run`` given the search's).
RUN_STARTUP_FILES = ("train.log", SPLIT_CSV, SKIPPED_CSV, SILENCE_CSV)
BEST_WEIGHTS = "checkpoints/best.weights.h5"
FINAL_WEIGHTS = "checkpoints/final.weights.h5"
#: How much less priority (niceness added) the threads of a training fit's input pipeline get; see
#: :class:`InputThreadPriority`.
INPUT_THREAD_NICENESS = 10


@dataclass
class RunResult:
    """What :func:`train_run` leaves behind."""

    run_dir: Path
    config: Config
    model: keras.Model
    history: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    data: PreparedData | None = None
    validation: dict[str, Any] | None = None  # the kept weights' val accuracy and clips (:func:`kept_validation`)


# -- run folder state ---------------------------------------------------------------------------------
def same_settings(run_dir: Path, state: dict, config: Config) -> bool:
    """Whether the run in ``run_dir`` (its ``run_state.json`` read as ``state``) has ``config``'s settings.

    By the fingerprint it recorded, or else by its ``config.json`` read by this version: a run started by
    an older sound_tf, whose settings lacked one added since with its old behaviour as the default,
    resumes instead of being refused as "different settings" that differ in nothing. A run that keeps the
    one-pass epochs it began with (:func:`epochs_as_begun`) has the settings of a command that does not set
    ``train.min_steps_per_epoch``, as the command that began it did not.
    """
    fingerprints = {config.fingerprint()}
    if (kept := kept_min_steps(state)) is not None and \
            config.train.min_steps_per_epoch == TrainConfig.min_steps_per_epoch:  # a command that does not set it
        fingerprints.add(apply_overrides(config, {"train.min_steps_per_epoch": kept}).fingerprint())
    return state.get("fingerprint") in fingerprints or saved_fingerprint(run_dir) in fingerprints


#: ``run_state.json``'s record that an unfinished run begun before ``train.min_steps_per_epoch`` existed keeps its
#: one-pass epochs when resumed (:func:`epochs_as_begun`): the value it trains with, 1.
KEPT_MIN_STEPS = "kept_min_steps_per_epoch"


def kept_min_steps(state: Mapping[str, Any]) -> int | None:
    """The ``train.min_steps_per_epoch`` a run's state says it keeps (:data:`KEPT_MIN_STEPS`), or ``None``."""
    kept = state.get(KEPT_MIN_STEPS)
    return kept if isinstance(kept, int) and not isinstance(kept, bool) and kept >= 1 else None


def epochs_as_begun(run_dir: Path, state: Mapping[str, Any], config: Config,
                    num_train: int) -> tuple[Config, str | None]:
    """``config`` as an unfinished run in ``run_dir`` resumes with, and the line saying why, or ``None``.

    Before ``train.min_steps_per_epoch`` (session 58) every epoch was one pass over the training clips. A run begun
    then has no such key in its ``config.json``, reads as today's default, 16, and was resumed with it: on a split
    of fewer batches a pass, its later epochs were longer than its first ones, and its learning-rate schedule,
    warm-up and early stopping, which count epochs, changed mid-run. Such a run, once it has kept an epoch (its
    backup holds one, or its training ended: ``fit_done``), keeps one-pass epochs (1), and its state records it
    (:data:`KEPT_MIN_STEPS`) for every later resume, which :func:`same_settings` takes for the same settings as a
    command that does not set the key. A split of 16 batches a pass or more trains the same either way, and is left
    as it is.
    """
    if state.get("status") != "running":  # a new run, or one whose command ended before training
        return config, None
    kept = kept_min_steps(state)
    if kept is None:
        try:
            saved = json.loads((Path(run_dir) / CONFIG_FILENAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return config, None
        if not (isinstance(saved, dict) and isinstance(saved.get("train"), dict)
                and "min_steps_per_epoch" not in saved["train"]
                and (finished_epochs(run_dir) > 0 or state.get("fit_done"))):  # it kept an epoch, or all
            return config, None
        kept = 1
    floor, batch = config.train.min_steps_per_epoch, config.train.batch_size
    if floor != TrainConfig.min_steps_per_epoch or num_train < 1 or not pipeline.cycles_clips(num_train, batch, floor):
        return config, None  # set by the command (same_settings compared it), or the same epochs either way
    per_pass = pipeline.batches_per_epoch(num_train, batch)
    return apply_overrides(config, {"train.min_steps_per_epoch": kept}), (
        f"note: this run was begun by an earlier sound_tf, whose epochs were one pass each (before "
        f"train.min_steps_per_epoch): it resumes so, {counted(per_pass, 'batches')} of {batch} an epoch over its "
        f"{num_train} training clips, where a new run makes at least {floor}, so that its epochs, learning-rate "
        f"schedule and early stopping go on as they began")


def changed_settings(run_dir: Path, config: Config, *, limit: int = 4) -> list[str]:
    """``["data.path: 'a' there, 'b' now", ...]``: the settings in which ``run_dir``'s saved config differs
    (:meth:`Config.changed_settings`); ``[]`` when none does or it cannot be read."""
    try:
        saved = Config.load(run_dir).to_dict()
    except (SoundTFError, OSError, ValueError):
        return []
    return config.changed_settings(saved, limit=limit)


def setting_differences(run_dir: Path, config: Config, *, limit: int = 4) -> str:
    """`` (data.path: 'a' there, 'b' now; ...)``: :func:`changed_settings` in parentheses, as a message's end."""
    changed = changed_settings(run_dir, config, limit=limit)
    return f" ({'; '.join(changed)})" if changed else ""


#: In a run folder that mixes in the recordings of ``augment.noise_dir``: which files they were, and from which
#: epoch on (:func:`record_noise`). config.json holds the folder's path only. A search folder keeps one too, by
#: trial (:func:`record_search_noise`), and so does each worker of a distributed search in its own folder, by the
#: trials it ran (:func:`record_worker_noise`).
NOISE_FILE = NOISE_FILENAME


@dataclass(frozen=True)
class _NoiseSteps:
    """What a noise record counts in, and how its warnings name it: a run's epochs or a search's trials."""

    key: str  # each version's first step, in noise.json
    step: str  # "epoch": "epoch 3", "epochs 3-10"
    folder: str  # "run": "of this run", "in the run folder"
    goes_on: str  # what the folder does next, with the folder as it is now
    over: str = "start over (--overwrite)"  # how to train every step on one noise but by putting the files back


_RUN_EPOCHS = _NoiseSteps(key="first_epoch", step="epoch", folder="run", goes_on="The run resumes")
_SEARCH_TRIALS = _NoiseSteps(key="first_trial", step="trial", folder="search", goes_on="The search goes on")
#: A worker counts the trials it ran itself (its tuner id in trials.csv's tuner_id column); it cannot start the
#: search over, its chief can.
_WORKER_TRIALS = _NoiseSteps(key="first_trial", step="trial", folder="worker", goes_on="The worker goes on",
                             over="start the search over (the chief's --overwrite)")


def read_noise_record(run_dir: Path, *, _steps: _NoiseSteps = _RUN_EPOCHS) -> list[dict[str, Any]]:
    """The noise folder's versions ``run_dir/noise.json`` lists (each a :meth:`sound_tf.augment.NoiseFolder.to_dict`
    with the ``first_epoch`` that mixed it in; a search folder's: ``first_trial``), oldest first; ``[]`` without the
    file, or when it is not one (edited by hand, or damaged: it is written whole), as for a run started before
    sound_tf kept it."""
    try:
        record = json.loads((Path(run_dir) / NOISE_FILE).read_text(encoding="utf-8"))
        versions = record["versions"]
        if not all(isinstance(v, dict) and is_whole(v.get(_steps.key)) for v in versions):
            return []
        return list(versions)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
        return []


def _noise_version(version: Mapping[str, Any]) -> augment.NoiseFolder | None:
    try:
        return augment.NoiseFolder.from_dict(version)
    except ValueError:
        return None


def _epochs(first: int, last: int, step: str = "epoch") -> str:
    """``epoch 3``, ``epochs 3-10`` (``step`` ``trial``: ``trials 3-10``)."""
    return f"{step} {first}" if first == last else f"{step}s {first}-{last}"


def record_noise(run_dir: Path, noise: augment.NoiseFolder | None, *, first_epoch: int, epochs: int) -> str | None:
    """Keep in ``run_dir/noise.json`` which recordings of ``augment.noise_dir`` (``noise``, as
    :func:`sound_tf.augment.load_noise_folder` found them) the epochs from ``first_epoch`` on mix in; return a
    warning for the log when the run's earlier epochs mixed in others (files added to, removed from or changed in
    the folder since), else ``None``.

    A run's settings name the folder, not its files: a run resumed after its noise folder changed was resumed
    without a word, and its config.json could not tell which noise its model was trained with. It resumes still, as
    a run whose data files changed does (it keeps its split.csv; a file gone since is skipped with a warning, one
    replaced is decoded again), and the warning says what changed and what the run does; ``noise.json`` lists each
    version of the folder with the first epoch that mixed it in. Versions whose epochs were not kept (the backup
    resumes at ``first_epoch``) are dropped. A run resumed without a ``noise.json`` (begun before sound_tf kept it,
    or the file damaged) gets a warning that its earlier epochs' noise is unknown, once: the file is written from
    then on. ``noise`` ``None`` (generated noise), or ``first_epoch`` past ``epochs``: nothing is written.
    """
    return _record_noise(run_dir, noise, first=first_epoch, last=epochs, steps=_RUN_EPOCHS)


def record_search_noise(out: Path, noise: augment.NoiseFolder | None, *, first_trial: int,
                        max_trials: int) -> str | None:
    """:func:`record_noise` for a search folder, by trial: ``out/noise.json`` keeps which recordings the trials
    from ``first_trial`` on mix in (``first_trial``: one past the trials that ended; the one a kill interrupted is
    run again), and a search continued after its noise folder changed, or one begun before sound_tf kept the file,
    gets the run's warning in a search's words."""
    return _record_noise(out, noise, first=first_trial, last=max_trials, steps=_SEARCH_TRIALS)


def record_worker_noise(worker_dir: Path, noise: augment.NoiseFolder | None, *, first_trial: int,
                        max_trials: int) -> str | None:
    """:func:`record_search_noise` for one worker of a distributed search, in its own folder (``workers/<id>/``,
    which no other process writes): ``worker_dir/noise.json`` keeps which recordings of this machine's
    ``augment.noise_dir`` the worker's trials from ``first_trial`` on mix in, counting only the trials this worker
    ran (``first_trial``: one past those it ended), and a worker started again after its noise folder changed, or
    one that ran trials before sound_tf kept the file, gets the run's warning in a worker's words. The chief runs
    no trial, and a worker's noise folder, on another machine, may hold other files than the chief's: a distributed
    search's folder has no ``noise.json`` of its own (:func:`sound_tf.tune._search_noise`), only its workers'."""
    return _record_noise(worker_dir, noise, first=first_trial, last=max_trials, steps=_WORKER_TRIALS)


def _record_noise(folder: Path, noise: augment.NoiseFolder | None, *, first: int, last: int,
                  steps: _NoiseSteps) -> str | None:
    if noise is None or first > last:  # no step left to train (a run killed after its last epoch's backup)
        return None
    kept = read_noise_record(folder, _steps=steps)
    versions = [v for v in kept if v[steps.key] < first]
    before = _noise_version(versions[-1]) if versions else None
    changes = noise.changes_since(before) if before is not None else None
    if before is None or changes:
        versions.append({steps.key: first, **noise.to_dict()})
    atomic.write_json(Path(folder) / NOISE_FILE, {"noise_dir": noise.folder, "versions": versions})
    later = (f"{steps.goes_on} with the folder as it is now: {_epochs(first, last, steps.step)} "
             f"mix{'es' * (first >= last)} in {noise.amount()} of noise")
    if first > 1 and not kept:  # trained before: by a sound_tf that kept no noise.json (or it is damaged)
        earlier = _epochs(1, first - 1, steps.step)
        return (f"warning: augment.noise_dir={noise.folder}: which of its recordings {earlier} of this "
                f"{steps.folder} mixed in is unknown (the {steps.folder} has no {NOISE_FILE}: it began before "
                f"sound_tf kept one, or the file was damaged). {later}, which {NOISE_FILE} in the {steps.folder} "
                f"folder records from now on")
    if not changes:  # the same files, no earlier record (a new run), or only versions no kept step mixed in
        return None
    trained = _epochs(versions[-2][steps.key], first - 1, steps.step)  # those that mixed in `before`
    return (f"warning: augment.noise_dir={noise.folder} has changed since {trained} of this {steps.folder} mixed in "
            f"its recordings: {changes}. {later} ({trained}: {before.amount()}; {NOISE_FILE} in the {steps.folder} "
            f"folder lists both); to train every {steps.step} on the same noise, stop this command, put the files back "
            f"and run it again, or {steps.over}")


def noise_changes(run_dir: Path, config: Config) -> str:
    """How ``config``'s ``augment.noise_dir`` differs now from the noise ``run_dir``'s last epochs mixed in
    (:meth:`sound_tf.augment.NoiseFolder.changes_since`: by the files' names, sizes, times and hashes; none decoded);
    ``""`` when it does not, or nothing says (no noise folder, or a run without ``noise.json``)."""
    from .audio import list_audio_folder

    versions = read_noise_record(run_dir)
    if not config.augment.reads_noise_dir or not versions or (before := _noise_version(versions[-1])) is None:
        return ""
    files, problem = list_audio_folder(config.augment.noise_dir)
    if problem is not None:
        return problem
    return augment.take_noise_folder(config.augment.noise_dir, files).changes_since(before)


BACKUP_DIR = "backup"
#: Inside ``backup/``: the backup training resumes from, one being written, and one being replaced.
_BACKUP_STATE, _BACKUP_SAVING, _BACKUP_REPLACED = "state", "saving", "replaced"
_BACKUP_WEIGHTS, _BACKUP_META = "latest.weights.h5", "training_metadata.json"


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` whose backup is replaced as a whole, never half-written.

    Keras overwrites its weights file in place, then its metadata. A kill or a full disk during the
    first epoch's backup left a half-written file and no earlier copy, and every resume failed loading
    it; a half-written later one made Keras fall back to the copy of the epoch before while
    ``history.csv`` and the input pipeline resumed after the epoch the metadata named. Here each backup
    is written into ``backup/saving/`` and swapped in for ``backup/state/`` by renames;
    :func:`settle_backup` completes or undoes a swap a kill interrupted, before the run reads it.
    """

    def __init__(self, backup_dir: str | os.PathLike):
        super().__init__(str(backup_dir), double_checkpoint=False)
        state = Path(backup_dir) / _BACKUP_STATE
        self._weights_path = str(state / _BACKUP_WEIGHTS)
        self._training_metadata_path = str(state / _BACKUP_META)
        self._prev_weights_path = self._prev_training_metadata_path = str(state / "no-fallback")

    def _save_model(self) -> None:
        backup = Path(self.backup_dir)
        saving, state, replaced = (backup / name for name in (_BACKUP_SAVING, _BACKUP_STATE, _BACKUP_REPLACED))
        for stale in (saving, replaced):
            shutil.rmtree(stale, ignore_errors=True)
        saving.mkdir(parents=True)
        atomic.check_room(saving / _BACKUP_WEIGHTS, bytes_to_save(self.model))  # h5py: a segfault on a full disk
        self.model.save_weights(saving / _BACKUP_WEIGHTS)
        (saving / _BACKUP_META).write_text(json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen}))
        if state.exists():
            state.rename(replaced)
        saving.rename(state)
        shutil.rmtree(replaced, ignore_errors=True)


def settle_backup(run_dir: Path, log: Callable[[str], None] = print) -> bool:
    """Leave ``backup/`` of an interrupted run with one complete backup in ``state/``, or none.

    A kill between :class:`AtomicBackupAndRestore`'s two renames leaves only ``replaced/``: it is the
    last complete backup. A half-written ``saving/`` is dropped. A backup in the layout of earlier
    versions (Keras's own files in ``backup/``) is kept when its weights read back whole, else dropped
    with a log line: that run then trains again from its first epoch. Returns whether it was dropped so.
    """
    backup = Path(run_dir) / BACKUP_DIR
    state, replaced = backup / _BACKUP_STATE, backup / _BACKUP_REPLACED
    dropped = False
    if not backup.is_dir():
        return dropped
    if not state.exists() and replaced.is_dir():
        replaced.rename(state)
    shutil.rmtree(backup / _BACKUP_SAVING, ignore_errors=True)
    shutil.rmtree(replaced, ignore_errors=True)
    legacy = [(backup / (_BACKUP_WEIGHTS + suffix), backup / (_BACKUP_META + suffix)) for suffix in ("", ".bkp")]
    if not state.exists() and any(weights.exists() for weights, _ in legacy):
        usable = next(((w, m) for w, m in legacy if _epoch_of(m) is not None and _weights_read_whole(w)), None)
        if usable is None:
            log(f"{backup}: the backup of the interrupted run is unreadable (a half-written file); training "
                f"starts again from its first epoch")
            dropped = True
        else:
            state.mkdir()
            usable[0].rename(state / _BACKUP_WEIGHTS)
            usable[1].rename(state / _BACKUP_META)
        for path in backup.iterdir():
            if path != state:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    return dropped


def _epoch_of(metadata: Path) -> int | None:
    """The epoch a backup's metadata names (``None``: missing, empty or not JSON, as a cut-short write leaves it)."""
    try:
        epoch = json.loads(metadata.read_text())["epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


def _weights_read_whole(path: Path) -> bool:
    """Whether every array of a ``.weights.h5`` file reads back (a truncated file fails here)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            arrays: list[Any] = []
            f.visititems(lambda _, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
        return True
    except (OSError, RuntimeError, ValueError, KeyError):
        return False


def finished_epochs(run_dir: Path) -> int:
    """Epochs the backup of an interrupted run holds (0 without one): where the backup resumes."""
    meta = Path(run_dir) / BACKUP_DIR / _BACKUP_STATE / _BACKUP_META
    return int(json.loads(meta.read_text())["epoch"]) if meta.is_file() else 0


def resume_history(run_dir: Path) -> dict[str, list[float]]:
    """Trim ``history.csv`` to the epochs the backup holds (a kill may land between the two writes)."""
    path = run_dir / HISTORY_FILE
    if not path.is_file():
        return {}
    done = finished_epochs(run_dir)
    with path.open(newline="") as f:  # CSVLogger ends rows with \r\n: keep them as they are
        lines = f.read().splitlines(keepends=True)
    atomic.write_text(path, "".join(lines[:1 + done]) if done else "")  # a kill leaves the untrimmed file
    return read_history(path)


# -- callbacks ------------------------------------------------------------------------------------------
class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate of the epoch's first step to its logs (so it reaches history.csv).

    Read at the epoch's start: at its end a schedule such as cosine decay already gives the next
    epoch's rate (epoch 0 of a warm-up was logged at the rate it ended on, not the 1% it began with).
    """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self._rate


class EpochLog(keras.callbacks.Callback):
    """One log line per finished epoch (console and ``train.log``): losses, accuracies, learning rate and
    the epoch's wall time, the numbers ``history.csv`` gets.

    Keras's progress bars go to stdout only (redirected, a stream of carriage returns and backspaces) and
    ``--quiet`` turns them off: without these lines the log said nothing from "training ..." to
    "evaluated ..." over all the epochs of a run.
    """

    def __init__(self, log: Callable[[str], None], epochs: int):
        super().__init__()
        self.log, self.epochs, self._started = log, epochs, time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        shown = [f"{key} {float(logs[key]):.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
                 if key in logs]
        if "learning_rate" in logs:
            shown.append(f"learning rate {float(logs['learning_rate']):.3g}")
        self.log(f"epoch {epoch + 1}/{self.epochs}: {', '.join(shown)} ({time.monotonic() - self._started:.1f} s)")


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping whose best value and patience counter continue from an earlier, killed run."""

    def __init__(self, *, previous_best: float | None, epochs_since_best: int, **kwargs: Any):
        super().__init__(**kwargs)
        self._previous_best, self._epochs_since_best = previous_best, epochs_since_best

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if self._previous_best is not None:
            self.best = self._previous_best
        self.wait = self._epochs_since_best  # epochs of a history without a finite loss count too


class ResumablePlateau(keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` whose best value, patience counter and cooldown continue from an earlier run.

    The learning rate itself comes back with the optimiser's state from the backup; the callback's own
    counters are replayed from the history of the epochs already trained (``val_loss`` and the logged
    ``learning_rate``, which is the rate before that epoch's reduction), exactly as it counted them.
    """

    def __init__(self, *, previous: Mapping[str, Sequence[float]], **kwargs: Any):
        super().__init__(**kwargs)
        self._previous = previous

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        values, rates = self._previous.get(self.monitor, []), self._previous.get("learning_rate", [])
        if values and self.monitor_op is None:
            self._set_monitor_op()
        for value, rate in zip(values, rates):
            if self.in_cooldown():
                self.cooldown_counter -= 1
                self.wait = 0
            if self._is_improvement(value, self.best):
                self.best, self.wait = value, 0
            elif not self.in_cooldown():
                self.wait += 1
                if self.wait >= self.patience and rate > np.float32(self.min_lr):  # the earlier run reduced here
                    self.cooldown_counter, self.wait = self.cooldown, 0


def save_weights_whole(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model.save_weights(path)`` written whole or not at all (:func:`sound_tf.atomic.write_with`): Keras
    writes the HDF5 file in place, and a kill or a full disk half way left a truncated file where the last
    whole one was. The temporary file ends ``.tmp.weights.h5``, as ``save_weights`` requires. A disk too
    full for it is an ``OSError`` naming the file, before h5py would end the process with a segfault."""
    return atomic.write_with(path, lambda tmp: model.save_weights(tmp), keep_suffix=".weights.h5",
                             needs_bytes=bytes_to_save(model))


def save_model_whole(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model.save(path)`` (a ``.keras`` file) written whole or not at all: Keras writes the zip archive in
    place, and a kill or a full disk half way left a truncated ``model.keras`` that made the folder look
    finished to ``evaluate``, ``export`` and the server, which then failed reading it. With none, they say
    the run has not finished and the same train command resumes it."""
    return atomic.write_with(path, lambda tmp: model.save(tmp), keep_suffix=".keras",
                             needs_bytes=bytes_to_save(model))


def bytes_to_save(model: keras.Model) -> int:
    """A generous size of a file holding ``model``'s weights and its optimizer's state (the weights files
    and ``model.keras`` hold both): their bytes, a quarter more and 1 MiB for HDF5's and the archive's
    headers and the model's config. A folder with less free space is refused before h5py starts writing:
    it ends the process with a segmentation fault when a write fails."""
    optimizer = getattr(model, "optimizer", None)  # a model never compiled has no such attribute
    optimizer = list(optimizer.variables) if optimizer is not None else []
    data = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in [*model.weights, *optimizer])
    return data + data // 4 + (1 << 20)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``keras.callbacks.ModelCheckpoint`` of the weights whose file is replaced whole, never half-written.

    Keras decides as ever whether to save (``_should_save_model``: ``save_best_only``, the monitored value,
    ``initial_value_threshold``); only the save itself goes through :func:`save_weights_whole`, so a kill
    while the best weights are written leaves the previous best ones whole. A truncated ``best.weights.h5``
    was rewritten by a resumed run only when the epoch trained again improved on the history's best again
    (bit-identical training does, on the same machine); when not, the run ended failing to load it.
    """

    def __init__(self, filepath: str | os.PathLike, **kwargs: Any):
        super().__init__(filepath, save_weights_only=True, **kwargs)

    def _save_model(self, epoch: int, batch: int | None, logs: dict | None) -> None:
        filepath = self._get_file_path(epoch, batch, logs)
        if self._should_save_model(epoch, batch, logs, filepath):
            save_weights_whole(self.model, filepath)


class MarkFitDone(keras.callbacks.Callback):
    """When ``fit`` ends, save the final weights and record ``fit_done`` in the run's state.

    It runs before ``BackupAndRestore`` deletes its backup at the end of training, so a run killed after
    that (while it saves the model, evaluates or writes its report) does not train again when resumed:
    :func:`train_run` loads the best weights (or these final ones, when no epoch improved) instead.
    """

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir

    def on_train_end(self, logs: dict | None = None) -> None:
        save_weights_whole(self.model, self.run_dir / FINAL_WEIGHTS)  # a kill leaves the previous one, or none
        write_state(self.run_dir, fit_done=True)


class RecordSeconds(keras.callbacks.Callback):
    """Writes the run's wall time so far to its state after every epoch: ``seconds`` sums the sessions
    of a resumed run (each up to its last finished epoch, then the session that completes it)."""

    def __init__(self, run_dir: Path, started: float, before: float):
        super().__init__()
        self.run_dir, self.started, self.before = run_dir, started, before

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        write_state(self.run_dir, seconds=round(self.before + time.time() - self.started, 1))


class InputThreadPriority(keras.callbacks.Callback):
    """Runs the input pipeline's threads at a lower scheduling priority than the training step (Linux).

    On a small CPU machine ``tf.data``'s threads and the training step share the cores. At equal
    priority a pipeline thread that wakes up takes a core from one of the step's threads, and the
    step's other threads wait for that one. At a lower priority the pipeline runs on the cycles the
    step leaves idle (the default model's step keeps about 1.7 of 2 cores busy here) and its prefetched
    batches cover the rest, so the step is not slowed by its input: ``bench/pipeline.py`` measures the
    difference. Priorities only order who runs first; nothing computed changes.

    At the end of each epoch's first step, the unnamed threads that started since training began (the
    input iterator's: TensorFlow names its compute pools ``tf_*``) get ``niceness`` more than the
    training thread, up to 19. Elsewhere than Linux (no per-thread priorities) it does nothing.

    Attributes
    ----------
    lowered : set of int
        Thread ids whose priority was lowered.
    """

    def __init__(self, niceness: int = INPUT_THREAD_NICENESS):
        super().__init__()
        if not is_whole(niceness) or not 0 <= niceness <= 39:
            raise ValueError(f"niceness must be an integer in [0, 39], got {niceness!r}")
        self.niceness = int(niceness)
        self.supported = sys.platform.startswith("linux") and os.path.isdir("/proc/self/task")
        self._known: set[int] = set()
        self.lowered: set[int] = set()

    @staticmethod
    def _threads() -> dict[int, str]:
        """``{thread id: name}`` of this process's threads (those that end while listed are left out)."""
        names = {}
        for entry in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{entry}/comm") as handle:
                    names[int(entry)] = handle.read().strip()
            except OSError:
                continue
        return names

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._known = set(self._threads()) if self.supported else set()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if batch != 0 or not self.supported:
            return
        with open("/proc/self/comm") as handle:
            unnamed = handle.read().strip()  # a thread nobody named carries the process's name
        target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + self.niceness)
        for tid, name in self._threads().items():
            if tid in self._known or tid in self.lowered or name != unnamed:
                continue
            try:
                os.setpriority(os.PRIO_PROCESS, tid, max(target, os.getpriority(os.PRIO_PROCESS, tid)))
                self.lowered.add(tid)
            except OSError:  # the thread ended in between
                continue


def lr_schedule(config: Config, steps_per_epoch: int) -> Any:
    t = config.train
    if t.schedule != "cosine":
        return t.learning_rate
    warmup = min(t.warmup_epochs, max(t.epochs - 1, 0)) * steps_per_epoch
    decay = max(t.epochs * steps_per_epoch - warmup, 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=t.learning_rate * (0.01 if warmup else 1.0), decay_steps=decay, alpha=0.01,
        warmup_target=t.learning_rate if warmup else None, warmup_steps=warmup)


def steps_per_epoch(num_train: int, config: Config) -> int:
    """Batches per epoch of the training pipeline (:func:`sound_tf.pipeline.steps_per_epoch`): a pass's, at least
    ``train.min_steps_per_epoch``."""
    return pipeline.steps_per_epoch(num_train, config.train.batch_size, config.train.min_steps_per_epoch)


def cycled_note(num_train: int, config: Config) -> str | None:
    """The line saying that an epoch cycles through a small training split, or ``None`` when it is one pass."""
    batch, steps = config.train.batch_size, config.train.min_steps_per_epoch
    if not pipeline.cycles_clips(num_train, batch, steps):
        return None
    clips = f"{num_train} training clip{'s' if num_train != 1 else ''}"
    fresh = "shuffled, cropped and augmented" if augments(config) else "shuffled and cropped"
    # two decimals: the demo's 512 of 504 clips read '1.0 passes', as if it were one
    return (f"an epoch is {steps} batches of {batch} (train.min_steps_per_epoch): {steps * batch / num_train:.2f} "
            f"passes over the {clips}, each {fresh} afresh, as one pass makes "
            f"{pipeline.batches_per_epoch(num_train, batch)}")


def compile_for_training(model: keras.Model, config: Config, steps: int) -> keras.Model:
    """Adam (decoupled weight decay) with the config's schedule, cross-entropy on (soft) one-hot logits."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr_schedule(config, steps),
                                        weight_decay=config.train.weight_decay or None),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.train.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
    return model


def training_datasets(config: Config, data: Any, *, first_epoch: int = 0,
                      noise_bank: np.ndarray | None = None) -> tuple[Any, Any]:
    """``(train_ds, val_ds)`` of prepared ``data`` with the config's augmentation, and class weights.

    ``train_ds`` streams epochs endlessly from epoch number ``first_epoch`` (each epoch's order and draws
    depend on the seed and its number only, see :func:`sound_tf.pipeline.training_dataset`): fit it with
    ``steps_per_epoch=steps_per_epoch(...)`` and ``initial_epoch=first_epoch``. ``noise_bank`` is
    :func:`sound_tf.augment.load_noise_bank`'s result when the caller has it (else it is loaded here).
    """
    train_paths, train_y = pipeline.label_arrays(data.splits["train"])
    val_paths, val_y = pipeline.label_arrays(data.splits["val"])
    use_aug = config.augment.enabled
    # Noise recordings are decoded only when the waveform augmenter mixes them in.
    bank = ((noise_bank if noise_bank is not None else augment.load_noise_bank(config))
            if use_aug and config.augment.noise_domain == "waveform" else None)
    waveform_augmenter = augment.training_augmenter(config, noise_bank=bank)  # None: no per-clip map
    # One budget for both memory caches (SOUND_TF_MEMORY_CACHE_MB): the training clips, read in every epoch's
    # every step, first; the validation clips get what is left (each had all of it, so together up to twice).
    left = pipeline.memory_cache_budget_bytes() - pipeline.memory_cache_plan(train_paths)[1]
    train_ds = pipeline.training_dataset(
        train_paths, train_y, config, waveform_augmenter=waveform_augmenter,
        mixup=augment.make_mixup(config) if use_aug else None,
        class_weights=pipeline.class_weight_table(train_y, config.num_classes) if config.train.class_weights
        else None, first_epoch=first_epoch, epochs=None)
    return train_ds, pipeline.evaluation_dataset(val_paths, val_y, config, memory_budget_bytes=max(left, 0))


def _callbacks(config: Config, run_dir: Path, history: dict[str, list[float]], *, started: float,
               seconds_before: float, log: Callable[[str], None] = print) -> list[keras.callbacks.Callback]:
    best, since_best = best_so_far(history.get("val_loss", []))
    # Order matters: the learning rate reaches the logs before CSVLogger writes them, and the backup is
    # written last, so a kill between the two leaves a history row that resume_history() drops.
    callbacks: list[keras.callbacks.Callback] = [
        InputThreadPriority(),
        LearningRateLogger(),
        AtomicModelCheckpoint(str(run_dir / BEST_WEIGHTS), monitor="val_loss", save_best_only=True,
                              initial_value_threshold=best),
        ResumableEarlyStopping(previous_best=best, epochs_since_best=since_best, monitor="val_loss",
                               patience=config.train.early_stopping_patience, restore_best_weights=False),
        keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE), append=True),
        EpochLog(log, config.train.epochs),
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False, profile_batch=0),
        keras.callbacks.TerminateOnNaN(),
        MarkFitDone(run_dir),
        RecordSeconds(run_dir, started, seconds_before),
        AtomicBackupAndRestore(run_dir / BACKUP_DIR),
    ]
    if config.train.schedule == "plateau":
        callbacks.insert(2, ResumablePlateau(
            previous=history, monitor="val_loss", mode="min", factor=0.5,
            patience=max(2, config.train.early_stopping_patience // 3), min_lr=config.train.learning_rate / 100))
    return callbacks


# -- the run ----------------------------------------------------------------------------------------------
def best_so_far(val_losses: Sequence[float]) -> tuple[float | None, int]:
    """``(lowest validation loss, epochs since it)`` of the epochs trained so far, as Keras's early stopping
    and checkpoint count them: a NaN or infinite loss never improves (``None`` and every epoch when no loss
    was finite). ``min`` and ``np.argmin`` took a NaN for the best: a resumed run whose history held one saved
    no better epoch again (its threshold NaN) and counted patience from the NaN epoch."""
    finite = [(loss, epoch) for epoch, loss in enumerate(val_losses) if math.isfinite(loss)]
    if not finite:
        return None, len(val_losses)
    best, at = min(finite)  # the first of equal losses: a later equal one is no improvement
    return best, len(val_losses) - 1 - at


def _early_stopped(history: Mapping[str, Sequence[float]], config: Config) -> bool:
    """Whether the epochs in ``history`` had met early stopping (as Keras counts it: not after epoch 1)."""
    losses = list(history.get("val_loss", []))
    return len(losses) > 1 and best_so_far(losses)[1] >= config.train.early_stopping_patience


def how_training_ended(history: Mapping[str, Sequence[float]], config: Config, kept: str) -> str:
    """The log line that says why training ended and which epoch's weights the model keeps (``kept``: the
    file loaded). Without it the log went from the last epoch's line to the evaluation: a run that early
    stopping ended at epoch 56 of 60 looked cut short, and which epoch it kept was not said anywhere."""
    losses, epochs = list(history.get("val_loss", [])), len(history.get("loss", []))
    best_loss, since = best_so_far(losses)
    if kept == FINAL_WEIGHTS or best_loss is None:
        return (f"training ended after epoch {epochs} of {config.train.epochs}; no epoch had a finite validation "
                f"loss, so the model keeps the last epoch's weights ({kept})")
    best = len(losses) - 1 - since
    if _early_stopped(history, config) and epochs < config.train.epochs:
        why = (f"early stopping ended training after epoch {epochs} of {config.train.epochs}: the validation "
               f"loss was not below epoch {best + 1}'s for {epochs - 1 - best} epochs (train.early_stopping_patience "
               f"{config.train.early_stopping_patience})")
    elif epochs < config.train.epochs:
        why = f"training stopped after epoch {epochs} of {config.train.epochs} (a loss of NaN or inf ends it)"
    else:
        why = f"training ended after its {epochs} epoch{'s' if epochs != 1 else ''}"
    return f"{why}; the model keeps epoch {best + 1}'s weights, its lowest validation loss ({best_loss:.4f}; {kept})"


def kept_validation(history: Mapping[str, Sequence[float]], kept: str, num_examples: int, *,
                    held_apart: str | None = None, augmented: bool | None = None,
                    patience: int | None = None) -> dict[str, Any] | None:
    """The validation accuracy of the weights the model keeps (``kept``: the file loaded), as ``{"accuracy",
    "num_examples"}``: the epoch of the lowest validation loss (:func:`how_training_ended`), or the last epoch's
    when it keeps the last; ``None`` when the history has no such accuracy. ``held_apart``
    (:func:`~sound_tf.datasets.folds_held_apart`), when given, is kept under that key for the gap line's advice, and
    the history's :func:`sound_tf.metrics.overfit`, when it says so, under ``overfit`` for the advice to a model near
    chance (:func:`sound_tf.metrics.summary_lines`), with ``augmented`` (``augment.enabled`` of the run, when known)
    in it, which the augmentation advice follows. A run that augmented gets the history's
    :func:`sound_tf.metrics.underfit` (with ``patience``, the run's ``train.early_stopping_patience`` when known),
    when it says so, under ``underfit``."""
    accuracies = list(history.get("val_accuracy", []))
    best_loss, since = best_so_far(list(history.get("val_loss", [])))
    at = len(accuracies) - 1 if kept == FINAL_WEIGHTS or best_loss is None else len(history["val_loss"]) - 1 - since
    if not 0 <= at < len(accuracies) or not math.isfinite(accuracies[at]):
        return None
    fit = overfit(history, at)
    if fit is not None and augmented is not None:
        fit["augmented"] = augmented
    under = underfit(history, patience=patience) if augmented else None
    return {"accuracy": float(accuracies[at]), "num_examples": int(num_examples),
            **({"held_apart": held_apart} if held_apart else {}), **({"overfit": fit} if fit is not None else {}),
            **({"underfit": under} if under is not None else {})}


def kept_weights(run_dir: Path) -> str:
    """The weights file a trained run keeps (relative to ``run_dir``): the lowest validation loss's, or the last
    epoch's when no epoch had a finite one (no best file was written)."""
    return BEST_WEIGHTS if (run_dir / BEST_WEIGHTS).is_file() else FINAL_WEIGHTS


def augments(config: Config) -> bool:
    """Whether training with ``config`` changes its clips: ``augment.enabled`` and a transform that acts
    (:func:`sound_tf.augment.applied_transforms`). A tuning space's ``augment_strength`` of 0 leaves ``enabled`` true
    with every probability at 0, and the best trial's run was told its clips were augmented."""
    return bool(augment.applied_transforms(config))


def run_validation(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """:func:`kept_validation` of a trained run folder: from its ``history.csv``, the weights it keeps and its
    ``split.csv``'s validation rows (the readable files, as the run validated on), and whether it augmented and its
    early-stopping patience from its ``config.json`` (not known without one). ``None`` when one of the others is
    missing or unreadable: the line it feeds is advice, not worth failing an evaluation over."""
    run_dir = Path(run_dir)
    try:
        history = read_history(run_dir / HISTORY_FILE)
        splits = read_split_csv(run_dir / SPLIT_CSV, run_file=True)
    except (OSError, ValueError, KeyError, SoundTFError):
        return None
    augmented: bool | None = None
    patience: int | None = None
    try:
        config = Config.load(run_dir)
        augmented, patience = augments(config), config.train.early_stopping_patience
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SoundTFError):  # a hand-edited one too
        pass
    return kept_validation(history, kept_weights(run_dir), len(splits["val"]), held_apart=folds_held_apart(splits),
                           augmented=augmented, patience=patience)


#: Fewer training steps per epoch than this: too few updates for early stopping's patience (in epochs).
MIN_STEPS_PER_EPOCH = 5


def smaller_batch(num_train: int, config: Config) -> int | None:
    """The largest power-of-two batch size below ``train.batch_size`` giving ``num_train`` clips at least
    :data:`MIN_STEPS_PER_EPOCH` steps per epoch (at least 2), or ``None`` when there is none."""
    size = 1 << (max(config.train.batch_size - 1, 1).bit_length() - 1)  # the power of two below it
    while size >= 2:
        if size < config.train.batch_size and pipeline.batches_per_epoch(num_train, size) >= MIN_STEPS_PER_EPOCH:
            return size
        size //= 2
    return None


def few_steps_warning(num_train: int, config: Config) -> str | None:
    """A warning when ``num_train`` clips give fewer than :data:`MIN_STEPS_PER_EPOCH` steps per epoch.

    Early stopping and the warm-up count epochs: with 44 clips in batches of 32 (2 steps per epoch) a
    patience of 8 epochs ends training after 16 more updates, and a small dataset stopped with its first
    epoch's weights, at chance (measured on 60 FSDD recordings of 4 digits; batches of 8 reached 100%).
    A run that early stopping cannot cut short (at most patience + 1 epochs: ``--epochs 6`` against the
    folder recipe's patience of 10) is told its updates in all instead (48 clips: 6 epochs of 2 steps, 12
    updates, ended at chance)."""
    steps = steps_per_epoch(num_train, config)
    if steps >= MIN_STEPS_PER_EPOCH:
        return None
    epochs, patience = config.train.epochs, config.train.early_stopping_patience
    stoppable = epochs > patience + 1  # early stopping stops after epoch patience + 1 at the earliest
    size = smaller_batch(num_train, config)
    floor = TrainConfig.min_steps_per_epoch  # a run that lowered it is pointed back at the default
    advice = (f"; --batch-size {size} gives {pipeline.batches_per_epoch(num_train, size)} steps per epoch"
              if size is not None else "; more training clips, or more epochs and a larger "
                                       "train.early_stopping_patience, give it more" if stoppable else
              "; more training clips or more epochs give it more")
    if floor > steps:
        advice += (f"; --set train.min_steps_per_epoch={floor} (the default) makes each epoch {floor} steps, cycling "
                   f"through the clips")
    why = (f"early stopping (train.early_stopping_patience {patience} epochs) may end training after too few "
           f"updates for the model to learn" if stoppable else
           f"its {epochs} epoch{'s make' if epochs != 1 else ' makes'} {epochs * steps} update"
           f"{'s' if epochs * steps != 1 else ''} in all, likely too few for the model to learn")
    clips = f"{num_train} training clip{'s' if num_train != 1 else ''} in batches of {config.train.batch_size}"
    return (f"warning: {clips} make{'s' if num_train == 1 else ''} {steps} step{'s' if steps != 1 else ''} per epoch: "
            f"{why}{advice}")


#: :func:`imbalance_note`: a training split whose largest class has this many times the clips of its smallest.
IMBALANCE_RATIO = 3.0


def imbalance_note(train_labels: Sequence[str], config: Config, *, whose: str = "the training split's") -> str | None:
    """A note when the training split's classes are far apart in size (:data:`IMBALANCE_RATIO`) and class weights
    are off: a 12:12:3 split of bird songs trained without a word of ``--class-weights``, the per-class counts
    only in report.html. ``None`` when balanced enough, or when class weights are on. ``whose``: what the labels
    are of, as the note names it (cross-validation's: ``"the data's"``, said once for all its folds)."""
    counts = Counter(train_labels)
    if config.train.class_weights or len(counts) < 2:
        return None
    least = min(counts, key=lambda label: (counts[label], label))  # of equal counts, the first name
    most = min(counts, key=lambda label: (-counts[label], label))
    low, high = counts[least], counts[most]
    if high < IMBALANCE_RATIO * low:
        return None
    return (f"note: {whose} classes range from {counted(low, 'clips')} ({least}) to {high} ({most}), "
            f"{high / low:.1f} to 1; --class-weights weighs each clip by its class's rarity, so every class counts "
            f"alike in the loss")


def balanced_accuracy(model: Any, dataset: Any, labels: Sequence[int]) -> float:
    """The mean over the classes in ``labels`` of ``model``'s recall on ``dataset``, batches of ``(waves, _)``
    in the order of ``labels`` (the validation split's first-window batches, as training scored them)."""
    scores = np.concatenate([np.asarray(model(waves, training=False)) for waves, _ in dataset])  # [clips, classes]
    truth, guess = np.asarray(labels), scores.argmax(axis=1)
    return float(np.mean([np.mean(guess[truth == c] == c) for c in np.unique(truth)]))


def chance_level_warning(validation: Mapping[str, Any] | None, config: Config, val_labels: Sequence[int],
                         num_train: int, *, cropped: bool | Callable[[], bool],
                         balanced: Callable[[], float] | None = None) -> str | None:
    """A warning when the kept epoch's validation accuracy is no better than always answering the most
    common class of the validation split: a model that learnt nothing, which evaluation and export then
    scored and exported without a word. A validation split of one class says nothing either way (always
    answering it scores 1.0, so a model right on every clip was called no better than chance): no warning;
    the split's own log names the classes it lacks. ``validation``: the kept weights' validation accuracy,
    as :func:`kept_validation` gives it (``None``: no warning). ``cropped``: whether any training or validation
    recording is longer than a clip (:func:`sound_tf.datasets.longer_than_clip`), or a function that says so, called
    only when the warning is given (it reads every file's size); only then is a --clip-seconds that holds each sound
    whole advised (recordings padded into their clips are whole already). ``balanced``: a function giving the kept
    weights' balanced accuracy on the same clips, called only when the accuracy is no better than the most common
    class's share; above chance (one over the classes the split holds) there, no warning: with classes as uneven as
    40 : 6 : 4, class weights trade a few clips of the common class for the rare ones, and a model finding most
    faults was called no better than chance."""
    counts = np.bincount(np.asarray(val_labels, dtype=np.int64)) if len(val_labels) else np.zeros(0, np.int64)
    if validation is None or np.count_nonzero(counts) < 2:
        return None
    accuracy = validation["accuracy"]
    baseline = counts.max() / len(val_labels)
    if accuracy > baseline + 1e-6:
        return None
    if balanced is not None and balanced() > 1 / np.count_nonzero(counts) + 1e-6:
        return None
    steps = steps_per_epoch(num_train, config)
    size = smaller_batch(num_train, config) if steps < MIN_STEPS_PER_EPOCH else None
    advice = (f"with {steps} step{'s' if steps != 1 else ''} per epoch it had few updates to learn from: try "
              f"--batch-size {size}" if size is not None else
              "check the labels, or try more epochs, a larger train.early_stopping_patience or a --clip-seconds "
              "that holds each sound whole" if (cropped() if callable(cropped) else cropped) else
              "check the labels, or try more epochs or a larger train.early_stopping_patience")
    return (f"warning: the model is no better than chance: its validation accuracy ({accuracy:.4f}) is no higher "
            f"than always answering the validation split's most common class ({baseline:.4f}); {advice}")


def feature_statistics(config: Config, paths: list[str], labels: list[int], *, max_clips: int = 1024):
    """Per-mel-bin mean and variance of un-augmented training clips (for the Normalization layer).

    Past ``max_clips`` clips, a sample seeded by ``train.seed`` (a split is ordered by class: its first
    clips would leave out whole classes).
    """
    if len(paths) > max_clips:
        chosen = np.sort(np.random.default_rng(config.train.seed).permutation(len(paths))[:max_clips])
        paths, labels = [paths[i] for i in chosen], [labels[i] for i in chosen]
    ds = pipeline.evaluation_dataset(paths, labels, config, memory_cache=False)  # one pass: nothing to keep
    return compute_feature_stats(config, (waves for waves, _ in ds))


@contextlib.contextmanager
def _cached_files_must_stay(config: Config) -> Iterator[None]:
    """A decoded file deleted while the run reads it (the decode cache emptied) is a one-line error."""
    cache = str(cache_dir_of(config.data.cache_dir))
    try:
        yield
    except (tf.errors.NotFoundError, FileNotFoundError) as exc:
        if isinstance(exc, FileNotFoundError):
            missing = exc.filename
        else:  # "{{function_node ...}} Error in user-defined function ...: <path>; No such file or directory"
            found = re.search(r": ((?:/|[A-Za-z]:[\\/]).*?); No such file or directory", str(exc.message))
            missing = found.group(1) if found else None
        if not (isinstance(missing, str) and os.path.abspath(missing).startswith(os.path.abspath(cache) + os.sep)):
            raise  # not a decoded file: another problem, with its own traceback
        raise DatasetError(f"{missing}: No such file or directory: a decoded file went missing while the run read "
                           f"it (was the decode cache deleted?); run the same command again: it decodes what is "
                           f"missing and resumes") from None


def train_run(config: Config, run_dir: str | Path, *, data: PreparedData | None = None,
              log: Callable[[str], None] = print, verbose: int | str = "auto",
              evaluate_test: bool = True, note_imbalance: bool = True,
              fit_wording: FitWording | None = None) -> RunResult:
    """Prepare data, train with resumable callbacks, keep the best weights, evaluate on the test split.

    Parameters
    ----------
    config
        The run's settings; the label list is filled in from the data.
    run_dir
        Run folder; when it holds an unfinished run of the same config, training resumes there. It is
        locked for this process while the run lasts (:mod:`sound_tf.locks`, as ``python -m sound_tf.train``
        locks its run folder; claims are re-entrant, so a caller holding it already goes on), and given
        back when this returns or raises.
    data
        Already prepared data (cross-validation and tuning pass their own split).
    note_imbalance
        Log :func:`imbalance_note` for the training split before training (cross-validation says it once for
        the data of all its folds instead, and passes ``False``).
    fit_wording
        The words of ``report.html``'s advice when the run overfit or underfit (default: ``train``'s); a search
        gives its best run its own (:func:`sound_tf.tune.fit_wording`), as its console summary has them.

    Raises
    ------
    ConfigError
        ``config`` is not a :class:`~sound_tf.config.Config`, ``data`` not a
        :class:`~sound_tf.datasets.PreparedData`, ``run_dir`` is a file, it holds files that are not a
        run's (the user's own: the run's files would be written among them, replacing any of the same
        name), another process holds its lock (it trains or exports there; refused before anything is
        written), or it holds a run (finished or not) with other settings: resuming it would evaluate, or go
        on training, that run's model under this config's name.
    """
    if not isinstance(config, Config):  # else "'dict' object has no attribute 'data'"
        raise ConfigError(f"train_run expects a sound_tf Config (e.g. config_from_recipe(...)), got "
                          f"{type(config).__name__}")
    if data is not None and not isinstance(data, PreparedData):
        raise ConfigError(f"train_run: data must be a PreparedData (sound_tf.datasets.prepare_dataset), got "
                          f"{type(data).__name__}")
    run_dir = Path(run_dir)
    # Before anything is written: the command line refuses such a folder as --out, and so does this.
    refuse_foreign_folder(run_dir, marker=STATE_FILE, what="training run", startup=RUN_STARTUP_FILES,
                          remedy="train_run writes a run's files into it (config.json, labels.txt, model.keras, "
                                 "report.html ...), replacing any of the same name; pass a new or empty folder, "
                                 "or an earlier run's folder to resume that run",
                          not_a_folder="run_dir names a run folder to create or resume")
    # One process per run folder, as the command: another one training there would interleave checkpoints.
    with claimed(run_dir, "training or exporting this run", wording=Wording(out="run_dir")):
        state = read_state(run_dir)
        if state.get("fingerprint"):
            if not same_settings(run_dir, state, config):
                kind = "a finished" if state.get("status") == "done" else "an unfinished"
                raise ConfigError(f"{run_dir}: holds {kind} run with different settings"
                                  f"{setting_differences(run_dir, config)}; use the same settings to resume it, or "
                                  f"another (or emptied) run folder")
        with _cached_files_must_stay(config):
            return _train_run(config, run_dir, data=data, log=log, verbose=verbose, evaluate_test=evaluate_test,
                              note_imbalance=note_imbalance, fit_wording=fit_wording)


def _train_run(config: Config, run_dir: str | Path, *, data: PreparedData | None,
               log: Callable[[str], None], verbose: int | str, evaluate_test: bool,
               note_imbalance: bool, fit_wording: FitWording | None = None) -> RunResult:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # What a killed process left half-written under a temporary name (split.csv, config.json, history.csv, the
    # checkpoints, the report's files ...), here and in checkpoints/, is written anew.
    atomic.remove_leftovers_in(run_dir, held=True)
    started = time.time()
    keras.utils.set_random_seed(config.train.seed)
    tf.config.experimental.enable_op_determinism()
    # Before any data is read or state written: a bad augment.noise_dir leaves no "running" run behind.
    noise_bank, noise_folder = augment.load_noise_folder(config) or (None, None)  # None, None without a noise folder
    data = data or prepare_dataset(config, run_dir, log=log)
    config = apply_overrides(config, {"labels": list(data.labels)})
    previous = read_state(run_dir)  # an unfinished run's sessions so far count towards its seconds
    seconds_before = float(previous.get("seconds", 0.0)) if previous.get("status") == "running" else 0.0
    config, as_begun = epochs_as_begun(run_dir, previous, config, len(data.splits["train"]))
    if as_begun is not None:
        log(as_begun)
    write_state(run_dir, status="running", fingerprint=config.fingerprint(), started=started,
                **({KEPT_MIN_STEPS: config.train.min_steps_per_epoch} if as_begun is not None else {}))
    config.save(run_dir)
    atomic.write_text(run_dir / "labels.txt", "".join(f"{label}\n" for label in config.labels))

    train_paths, train_y = pipeline.label_arrays(data.splits["train"])
    dropped = settle_backup(run_dir, log=log)  # an unreadable backup, dropped with a line saying training starts over
    # A resumed run continues with the epochs it had not trained yet: their own order and augmentation.
    train_ds, val_ds = training_datasets(config, data, first_epoch=finished_epochs(run_dir), noise_bank=noise_bank)
    mean, variance = feature_statistics(config, train_paths, train_y)
    model = build_model(config, feature_mean=mean, feature_variance=variance,
                        **augment.model_augment_layers(config, noise_bank=noise_bank))
    steps = steps_per_epoch(len(train_paths), config)
    compile_for_training(model, config, steps)

    if read_state(run_dir).get("fit_done"):  # stopped after training: its backup is gone, its weights kept
        log(f"resuming the run in {run_dir}: training had finished; saving and evaluating its best model")
    elif _early_stopped(history := resume_history(run_dir), config):  # killed between its last epoch and fit_done
        log(f"resuming the run in {run_dir}: early stopping had ended training after epoch {len(history['loss'])}; "
            f"saving and evaluating its best model")
    else:
        if history.get("loss"):
            log(f"resuming the run in {run_dir} after epoch {len(history['loss'])}")
        elif previous.get("status") == "running" and not dropped:  # a session trained here before and kept no
            # epoch: said, as a later stop's 'after epoch N' is (the rerun of a Ctrl-C in epoch 1 started it again
            # without a word)
            log(f"resuming the run in {run_dir}: it was stopped before its first epoch was kept; training starts again "
                f"from epoch 1")
        if (changed := record_noise(run_dir, noise_folder, first_epoch=finished_epochs(run_dir) + 1,
                                    epochs=config.train.epochs)) is not None:
            log(changed)
        log(f"training {config.model.name} ({model.count_params():,} parameters) on {len(train_paths)} clips, "
            f"validating on {len(data.splits['val'])}; input {config.audio.clip_samples} samples -> features "
            f"{config.feature_shape}")
        log(augment.summary_line(config, noise_folder=noise_folder))
        if (few := few_steps_warning(len(train_paths), config)) is not None:
            log(few)
        if (cycled := cycled_note(len(train_paths), config)) is not None:
            log(cycled)
        if note_imbalance and (uneven := imbalance_note([item.label for item in data.splits["train"]],
                                                        config)) is not None:
            log(uneven)
        # shuffle=False: the pipeline shuffles; Keras ignores the flag for a dataset but warns at its default.
        model.fit(train_ds, validation_data=val_ds, epochs=config.train.epochs, steps_per_epoch=steps,
                  callbacks=_callbacks(config, run_dir, history, started=started, seconds_before=seconds_before,
                                       log=log),
                  verbose=verbose, shuffle=False)

    if not model.optimizer.built:  # a resumed run that trains no more: the weights file holds Adam's state too
        model.optimizer.build(model.trainable_variables)
    kept = kept_weights(run_dir)
    history = read_history(run_dir / HISTORY_FILE)
    log(how_training_ended(history, config, kept))
    validation = kept_validation(history, kept, len(data.splits["val"]), held_apart=folds_held_apart(data.splits),
                                 augmented=augments(config), patience=config.train.early_stopping_patience)
    val_labels = [int(item.label_index) for item in data.splits["val"]]
    def cropped() -> bool:  # read only for the warning: a size read per file (100k on Speech Commands)
        return longer_than_clip([item.cached for name in ("train", "val") for item in data.splits[name]],
                                config.audio.sample_rate_hz, config.audio.clip_seconds) > 0

    model.load_weights(run_dir / kept)  # the kept weights' balanced accuracy is read only for the warning
    if (chance := chance_level_warning(validation, config, val_labels, len(train_paths), cropped=cropped,
                                       balanced=lambda: balanced_accuracy(model, val_ds, val_labels))) is not None:
        log(chance)
    save_model_whole(model, run_dir / "model.keras")
    result = RunResult(run_dir=run_dir, config=config, model=model, history=history, data=data,
                       validation=validation)
    if evaluate_test:
        result.metrics = evaluate_items(model, config, data.splits["test"], run_dir, log=log)
    # curves.png and report.html; the summary's data advice uses the training split's class counts.
    write_run_report(run_dir, config=config, metrics=result.metrics, data=data, log=log, validation=result.validation,
                     fit_wording=fit_wording)
    write_state(run_dir, status="done", seconds=round(seconds_before + time.time() - started, 1))
    return result
