"""``python -m sound_tf.tune``: a KerasTuner search over a ``tuning/*.toml`` space, locally or distributed.

The search trains on the training split and ranks trials on the validation split only; early stopping
ends each trial. When it is over, the best configuration is retrained as an ordinary run folder
(``best_run/``, the same files as ``sound_tf.train``), the only time the test split is used.

Everything lives in one results folder (``--out``)::

    search.json          what defines this search (space, base config): a rerun must match it; the
                         hyperparameters it does not search (none of their values changes a trial), and the
                         most epochs of a trial (trial_epochs), which a resumed search and its workers keep
    tune.log             the log (a worker's: workers/<id>/tune.log); chief.json: the chief's state
    noise.json           with augment.noise_dir: which of its recordings the trials mixed in, from which trial
                         (a distributed search has none: each worker's trials are in workers/<id>/noise.json,
                         counting the trials that worker ran)
    split.csv            the split the search used (skipped.csv: unreadable files)
    search/              the KerasTuner project: oracle.json, trial_<id>/{trial.json, config.json, ...}
    feature_stats/       normalisation statistics per distinct frontend (<hash>.npz)
    logs/                TensorBoard logs with the HParams dashboard (one folder per trial)
    workers/<id>/        distributed mode: each worker's heartbeat.json, its own split and noise.json
    trials.csv           one row per trial, best first; trials.png: the objective per trial and against
                         the most influential hyperparameter; best_hparams.json: the winner
    best_run/            the retrained best model (evaluate, export and serve it as any run)

A hyperparameter none of whose values changes a trial with the run's settings (``augment_strength`` with
``--no-augment``, ``augment.gain_max_db`` with ``augment.gain_probability = 0``: see
:meth:`sound_tf.hypermodel.SearchSpace.inert`) is not searched, and the log says so;
when none is left the search is refused. A search keeps the choice it began with (its ``search.json``), so
it resumes, and its workers join it, with the same declared space.

Re-running the same command continues an interrupted search (KerasTuner reloads the project; the trial
that was running is run again) and reuses a finished best run; ``--overwrite`` starts afresh. A larger
``--max-trials`` extends a finished search.

Memory: trials run one after another in one process and Keras' session is cleared before each build
(KerasTuner does it), but TensorFlow 2.21 still keeps about 20-25 MB per trained model (measured with
the default CNN on FSDD; plain ``model.fit`` on NumPy arrays leaks the same, see tensorflow#61791).
For searches of hundreds of trials, run them in chunks: ``--max-trials 50``, then the same command with
``--max-trials 100``, each in a fresh process.

Distributed search (KerasTuner's chief/worker mode) is chosen by environment variables, with the same
command and the same ``--out`` folder (shared, e.g. over NFS) on every machine::

    KERASTUNER_TUNER_ID=chief   KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 python -m sound_tf.tune ...
    KERASTUNER_TUNER_ID=tuner0  KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 python -m sound_tf.tune ...

The chief only runs the oracle (it hands out trials and records results) and, when all trials are
done, writes the outputs and trains the best run. Workers run trials. Each worker writes a heartbeat
file every few seconds; when a worker's heartbeat stops for ``--worker-timeout`` seconds the chief
releases it: its trial goes back to the queue and the next worker that asks runs it again. (Plain
KerasTuner 1.4.8 keeps a dead worker's trial "running" forever and its chief then never exits.) A chief
started again continues the search; workers wait for it, and a trial a worker still runs (its heartbeat
says so) stays that worker's instead of running a second time elsewhere. Each worker needs its own
``KERASTUNER_TUNER_ID``: a second live worker with the same id is refused.

Examples
--------
    python -m sound_tf.tune --pipeline demo --tuning tiny --out runs/tune-demo
    python -m sound_tf.tune --data ~/ESC-50 --pipeline esc50 --tuning default --max-trials 30 --time-budget 240
    python -m sound_tf.tune --out runs/tune-demo --summarize     # rewrite trials.csv/png from the folder
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import glob
import io
import json
import logging
import math
import os
import shlex
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from . import atomic
from .config import NOISE_FILENAME, Config, apply_overrides, as_made_today
from .errors import ConfigError, SoundTFError, and_list, counted, is_whole, run_cli
from .locks import COMMAND, Wording, claimed, empty_folder, process_alive, refuse_emptying, refuse_foreign_folder
from .metrics import FitWording, augmentation_advice
PROJECT = "search"
SEARCH_FILE = "search.json"
#: search.json's list of the space's hyperparameters the search does not search (absent: it searches them all).
NOT_SEARCHED = "not_searched"
#: search.json's most epochs of a trial (absent: a search begun before it was recorded; see :func:`trial_epochs`).
TRIAL_EPOCHS = "trial_epochs"
#: How :func:`run_search`'s messages name its folder, its overwrite, its settings and the flags of the command for
#: a Python caller: its arguments, and the [search] setting --max-trials sets.
PYTHON_WORDING = Wording(out="out", overwrite="overwrite=True", reader="run_search", settings="config",
                         arguments={"--worker-timeout": "worker_timeout_seconds",
                                    "--time-budget": "time_budget_minutes", "--max-trials": "[search] max_trials",
                                    "--no-final": "final=False"})
#: What a search writes before its search.json: the log of its command, and the workers' folders of
#: workers started before the chief.
SEARCH_STARTUP = ("tune.log", "workers")
CHIEF_FILE = "chief.json"
HEARTBEAT_FILE = "heartbeat.json"
HEARTBEAT_SECONDS = 2.0
IDLE_POLL_SECONDS = 2.0
DEFAULT_WORKER_TIMEOUT_SECONDS = 120.0
WORKER_WAIT_SECONDS = 600.0
#: How often a waiting worker says what it waits for (the chief's search.json, then its oracle).
WORKER_REPORT_SECONDS = 30.0
#: How long KerasTuner 1.4.8's client waits for an oracle that does not answer (its oracle_client.TIMEOUT).
ORACLE_CLIENT_TIMEOUT_SECONDS = 3600.0
#: KerasTuner's statuses of a trial that has ended (one that has not is RUNNING).
ENDED_STATUSES = ("COMPLETED", "FAILED", "INVALID")
HYPERBAND_KEYS = ("tuner/epochs", "tuner/initial_epoch", "tuner/bracket", "tuner/round", "tuner/trial_id")
log = logging.getLogger("sound_tf")


# -- roles ------------------------------------------------------------------------------------------------
def current_role() -> str:
    """``local``, ``chief`` or ``worker``, from KerasTuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "local"
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if not os.environ.get(v)]
    if missing:
        raise ConfigError(f"KERASTUNER_ORACLE_IP is set but {' and '.join(missing)} not: a distributed search "
                          "needs all three (KERASTUNER_TUNER_ID=chief on the chief, tuner0, tuner1, ... on workers)")
    oracle_port(os.environ["KERASTUNER_ORACLE_PORT"])
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def oracle_port(port: str) -> int:
    """``KERASTUNER_ORACLE_PORT`` as a number in 1..65535 (``ConfigError`` naming the variable otherwise: 99999
    was a traceback on the chief and a worker)."""
    try:
        number = int(port)
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise ConfigError(f"KERASTUNER_ORACLE_PORT={port}: not a port number (1 to 65535)")
    return number


def tuner_id() -> str:
    return os.environ.get("KERASTUNER_TUNER_ID", "tuner0")


#: KerasTuner's oracles and tuners as a search uses them, which moved to :mod:`sound_tf.tuners` (they subclass
#: KerasTuner's, which imports TensorFlow).
_TUNER_CLASSES = ("SearchOracleMixin", "RandomSearchOracle", "BayesianOracle", "HyperbandOracle", "ORACLES",
                 "SoundTunerMixin", "SoundTuner", "SoundHyperbandTuner")


def __getattr__(name: str) -> Any:
    """The names of ``_TUNER_CLASSES`` are still importable from here, where they were: read when asked for, as
    this module does not import KerasTuner or TensorFlow (``--help`` and argument errors come back without them)."""
    if name in _TUNER_CLASSES:
        from . import tuners
        return getattr(tuners, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def in_space_order(values: Mapping[str, Any], names: Sequence[str] = ()) -> list[tuple[str, Any]]:
    """``values``' items in the order of ``names`` (the space's tables), any others after them as they come: a
    worker's trial arrives from the oracle with its values grouped by type (``dropout=0.1, learning_rate=...,
    depth=2``), where the space, trials.csv and a local search's log give ``depth=2, width_multiplier=...``."""
    place = {name: i for i, name in enumerate(names)}
    return sorted(values.items(), key=lambda item: place.get(item[0], len(place)))


def values_text(values: Mapping[str, Any], names: Sequence[str] = ()) -> str:
    """``depth=2, learning_rate=0.00172968, ...``: a trial's values in the order of ``names``, Hyperband's own keys
    left out, a float to 6 significant digits (a log-sampled rate printed ``0.0017296754729136264``; the exact value
    is in ``best_hparams.json`` and the trial's ``trial.json``)."""
    return ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in in_space_order(values, names) if k not in HYPERBAND_KEYS)


def trial_line(trial_id: str, values: Mapping[str, Any], names: Sequence[str] = ()) -> str:
    """``trial 3: depth=2, width_multiplier=0.5, ...``, the log line a trial begins with, its values in the order
    of ``names`` (:func:`in_space_order`; a Hyperband round adds the epoch it trains to and the trial it
    continues)."""
    line = f"trial {trial_id}: " + values_text(values, names)
    if "tuner/epochs" in values:
        line += f" (Hyperband round: up to epoch {values['tuner/epochs']}"
        if values.get("tuner/trial_id"):
            line += f", continuing trial {values['tuner/trial_id']} from epoch {values.get('tuner/initial_epoch', 0)}"
        line += ")"
    return line


def oracle_options(objective: Any, *, seed: int) -> dict[str, Any]:
    """What every oracle of a search is made with.

    Failed trials do not stop the search (``--max-trials`` and ``--time-budget`` bound it): KerasTuner's
    limit of 3 failures in a row raised inside the oracle, which left the search without its outputs,
    unable to resume (it counts over the whole history, so the next failure raised again) and, in a
    distributed search, a chief waiting forever on the oracle's lock. Values valid alone but not together
    fail their trial at once, and a space may hold many such combinations.
    """
    # KerasTuner treats seed 0 as "draw a random seed", so shift by one.
    return dict(objective=objective, seed=seed + 1, max_retries_per_trial=0, max_consecutive_failed_trials=None)


def make_tuner(space: SearchSpace, hypermodel: Any, out: Path, *, seed: int,
               deadline: float | None = None) -> Any:
    """The KerasTuner tuner for ``space.settings.tuner`` over ``hypermodel``, in ``out/search``.

    An existing project is always reloaded (``--overwrite`` deletes the folder before this).
    """
    import keras_tuner as kt

    from .tuners import ORACLES, SoundHyperbandTuner, SoundTuner

    s = space.settings
    common = oracle_options(kt.Objective(s.objective, direction=s.direction), seed=seed)
    oracle_cls = ORACLES[s.tuner]
    if s.tuner == "random":
        oracle = oracle_cls(max_trials=s.max_trials, **common)
    elif s.tuner == "bayesian":
        initial = s.initial_points or max(3, min(3 * len(space.searched), s.max_trials // 3))
        oracle = oracle_cls(max_trials=s.max_trials, num_initial_points=initial, **common)
    else:
        oracle = oracle_cls(max_epochs=hypermodel.trial_overrides["train.epochs"], factor=s.hyperband_factor,
                            hyperband_iterations=1, **common)
        oracle.max_trials = s.max_trials
    oracle.deadline = deadline
    tuner_cls = SoundHyperbandTuner if s.tuner == "hyperband" else SoundTuner
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):  # KerasTuner prints 'Reloading Tuner from <out>/search/tuner0.json'
            return tuner_cls(oracle, hypermodel, directory=str(out), project_name=PROJECT, overwrite=False)
    finally:  # also when building the default model fails: what was printed before the error stays
        # that line, past the log and --quiet, says again what the log's 'continuing the search in' says
        for line in printed.getvalue().splitlines():
            if not line.startswith("Reloading Tuner from "):
                print(line)


# -- heartbeats ---------------------------------------------------------------------------------------------
#: JSON state of a search (oracle.json, trial.json, heartbeats, ...), written whole. The folder is shared by the
#: chief and its workers, perhaps on other hosts: after each write, the temporary files of this name that this
#: host's ended processes left (killed between their write and rename) go, one more after each kill otherwise.
_write_json_atomic = functools.partial(atomic.write_json, default=str, remove_ended=True)


def _read_heartbeat(path: Path) -> tuple[bytes | None, dict[str, Any]]:
    """A heartbeat file's bytes (``None`` when missing) and its content (``{}`` when unreadable)."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None, {}
    try:
        content = json.loads(raw)
    except ValueError:
        return raw, {}
    return raw, content if isinstance(content, dict) else {}


#: Heartbeat file -> its bytes when :meth:`Heartbeat.refuse_a_twin` watched it stay unchanged: a worker checks
#: before it writes its log, and again on entering its heartbeat, without watching the same stale file twice.
_STALE_HEARTBEATS: dict[Path, bytes] = {}


class Heartbeat:
    """A worker's daemon thread rewriting ``workers/<id>/heartbeat.json`` every ``interval`` seconds.

    Each heartbeat carries a ``token`` of this process (host, pid, start time). Two workers started with
    one ``KERASTUNER_TUNER_ID`` each ran every trial (the oracle hands a tuner id's trial to whoever asks
    with that id) and one of them hung, without a word: on entering, a worker whose heartbeat file keeps
    changing under another token refuses to start (:meth:`refuse_a_twin`), and a worker that finds its
    file rewritten by another process says so in its log.
    """

    def __init__(self, path: Path, tuner: Any, *, interval: float = HEARTBEAT_SECONDS):
        self.path, self.tuner, self.interval = Path(path), tuner, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.beats = 0
        self.token = f"{socket.gethostname()}:{os.getpid()}:{time.time():.6f}"
        self._twin_reported = False

    def beat(self) -> None:
        if self.beats and not self._twin_reported:
            _, content = _read_heartbeat(self.path)
            if content.get("token") not in (None, self.token):
                self._twin_reported = True
                log.error(f"another process ({_who(content)}) also writes {self.path}: two workers run as "
                          f"{self.tuner.tuner_id!r} and each trial runs twice; stop one and give every worker "
                          f"its own KERASTUNER_TUNER_ID")
        self.beats += 1
        _write_json_atomic(self.path, {"tuner_id": self.tuner.tuner_id, "host": socket.gethostname(),
                                       "pid": os.getpid(), "token": self.token,
                                       "trial_id": self.tuner.current_trial_id, "beat": self.beats,
                                       "time": time.time()})

    def refuse_a_twin(self) -> None:
        """Raise when another live process beats for this tuner id.

        That is when the heartbeat file changes, under another token, within 3 heartbeat periods (the
        other machine's clock is not used). A file of a process of this host that has ended, or one that
        stays unchanged (a worker that died or stopped), is no twin.

        Raises
        ------
        ConfigError
            Naming the tuner id and the other process.
        """
        raw, content = _read_heartbeat(self.path)
        if raw is None or content.get("token") == self.token or raw == _STALE_HEARTBEATS.get(self.path):
            return
        pid = content.get("pid")
        if content.get("host") == socket.gethostname() and isinstance(pid, int) and not isinstance(pid, bool) \
                and (pid == os.getpid() or not process_alive(pid)):  # a damaged "pid": true is watched, not fatal
            return
        watch_until = time.monotonic() + 3 * HEARTBEAT_SECONDS
        while time.monotonic() < watch_until:
            time.sleep(min(0.25, HEARTBEAT_SECONDS / 4))
            now, content = _read_heartbeat(self.path)
            if now is not None and now != raw and content.get("token") != self.token:
                tid = self.tuner.tuner_id
                raise ConfigError(f"another process ({_who(content)}) is running as worker {tid!r}: its heartbeat "
                                  f"{self.path} is being written; give every worker its own KERASTUNER_TUNER_ID "
                                  f"(tuner0, tuner1, ...), or stop that one first")
        _STALE_HEARTBEATS[self.path] = raw

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except OSError as exc:  # a shared folder may hiccup; the chief tolerates a few missed beats
                log.warning(f"heartbeat to {self.path} failed: {exc}")

    def __enter__(self) -> "Heartbeat":
        self.refuse_a_twin()
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval * 2)


def _who(heartbeat: Mapping[str, Any]) -> str:
    """``pid 123 on host-b``: the process a heartbeat's content names."""
    return f"pid {heartbeat.get('pid', '?')} on {heartbeat.get('host', '?')}"


class HeartbeatWatch:
    """The chief's view of worker heartbeats.

    A worker is silent when its heartbeat file has not changed for ``timeout`` seconds of the chief's
    clock (so the clocks of other machines do not matter). A worker whose file never appears counts as
    silent ``timeout`` seconds after the chief first saw it: workers write the file before they contact
    the oracle, so a missing file means a dead worker or a results folder that is not shared.
    """

    def __init__(self, folder: Path, timeout: float):
        self.folder, self.timeout = Path(folder), timeout
        self._seen: dict[str, tuple[bytes | None, float]] = {}
        self._every: dict[str, tuple[bytes | None, float]] = {}
        self._tokens: dict[str, tuple[str, dict[str, Any]]] = {}  # tuner id -> its process's token, heartbeat
        self._seen_tokens: dict[str, set[str]] = {}
        self._restarts: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def restarted(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """Workers whose heartbeat came from a new process since :meth:`beating` last read it: (tuner id, the
        earlier process's heartbeat, the new one's), each once (a worker started again with its id)."""
        restarts, self._restarts = self._restarts, []
        return restarts

    def beating(self) -> list[str]:
        """The workers, busy or idle, whose heartbeat file changed within ``timeout`` seconds (one first seen
        counts as changed then); the chief calls it on each turn of its loop, so that a release can say when no
        worker is left to run the trial."""
        now = time.monotonic()
        for path in sorted(self.folder.glob(f"*/{HEARTBEAT_FILE}")):
            tid, (content, beat) = path.parent.name, _read_heartbeat(path)
            if tid not in self._every or self._every[tid][0] != content:
                self._every[tid] = (content, now)
                token = beat.get("token")
                if isinstance(token, str):
                    seen = self._seen_tokens.setdefault(tid, set())
                    if tid in self._tokens and token not in seen:
                        self._restarts.append((tid, self._tokens[tid][1], beat))
                    seen.add(token)
                    self._tokens[tid] = (token, beat)
        return [tid for tid, (_, changed) in self._every.items() if now - changed <= self.timeout]

    def silent(self, tuner_ids: set[str]) -> list[str]:
        now, result = time.monotonic(), []
        for tid in sorted(tuner_ids):
            content = _read_heartbeat(self.folder / tid / HEARTBEAT_FILE)[0]
            previous = self._seen.get(tid)
            if previous is None or previous[0] != content:
                self._seen[tid] = (content, now)
            elif now - previous[1] > self.timeout:
                result.append(tid)
                del self._seen[tid]
        return result


# -- reading a search back ------------------------------------------------------------------------------------
@dataclass
class TrialRecord:
    """One trial as stored in the project folder.

    Attributes
    ----------
    trial_id : str
    status : str
        KerasTuner's ``COMPLETED``, ``FAILED``, ``INVALID`` or ``RUNNING``, or ``INTERRUPTED`` for a
        trial queued to run again (its worker died or the search was stopped during it).
    score : float or None
        The objective (validation split) at the trial's best epoch.
    metrics : dict
        Validation metrics at the best epoch, ``epochs``, ``best_epoch``, ``seconds``, ``params``, ``rss_mb``.
    values : dict
        Hyperparameter values (Hyperband adds ``tuner/*`` entries).
    tuner_ids : list of str
        Tuners (workers) that were handed the trial, in order; the last one ran it to the end.
    message : str
        Why a trial failed or was interrupted.
    """

    trial_id: str
    status: str
    score: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    tuner_ids: list[str] = field(default_factory=list)
    message: str = ""
    finished: int | None = None

    @property
    def ranked(self) -> bool:
        """Whether the trial completed with a finite objective: it is ranked, counted as completed and may be
        the best. A diverged trial (an infinite ``val_loss``) completed without one."""
        return self.score is not None and math.isfinite(self.score)


def _id_order(trial_id: str) -> tuple[int, str]:
    """Trial ids as numbers: KerasTuner pads them to the width of ``max_trials``, so a search extended
    from 6 to 11 trials has ids 0..5 and then 06..10, which sort as strings as 0, 06, 07, ..., 1, 10, 2."""
    return (int(trial_id), trial_id) if trial_id.isdigit() else (2**31, trial_id)


def load_trials(out: str | Path, direction: str | None = None) -> list[TrialRecord]:
    """Every trial of the search in ``out``, completed ones best first, then the rest by id (as numbers).

    ``direction`` is ``"min"`` or ``"max"``; by default the objective's of the search (its ``search.json``):
    a fixed ``"min"`` put the worst trial of a ``val_accuracy`` search first.

    Raises
    ------
    ConfigError
        ``out`` holds no search, or ``direction`` is neither ``"min"`` nor ``"max"``.
    """
    import keras_tuner as kt

    from .hypermodel import OBJECTIVES

    project = Path(out) / PROJECT
    if not project.is_dir() and not (Path(out) / SEARCH_FILE).is_file():  # a mistyped folder: no trials, as a
        raise ConfigError(f"{out}: no search here (no {SEARCH_FILE} or {PROJECT}/)")  # search that ran none
    if direction is None:
        try:
            objective = json.loads((Path(out) / SEARCH_FILE).read_text())["settings"]["objective"]
        except (OSError, ValueError, KeyError, TypeError):
            objective = None
        direction = OBJECTIVES.get(objective, "min")
    if direction not in ("min", "max"):  # any other text ranked as "max"
        raise ConfigError(f"direction must be 'min' or 'max', got {direction!r}")
    oracle_file = project / "oracle.json"
    state = json.loads(oracle_file.read_text()) if oracle_file.is_file() else {}
    assignments, retry = state.get("assignments", {}), set(state.get("retry_queue", []))
    finished = {trial_id: place for place, trial_id in enumerate(state.get("end_order", []))}
    records = []
    for path in sorted(project.glob("trial_*/trial.json"), key=lambda p: _id_order(p.parent.name[len("trial_"):])):
        trial = kt.engine.trial.Trial.load(str(path))
        metrics = {}
        for name in trial.metrics.metrics:
            value = trial.metrics.get_last_value(name)
            if value is not None:
                metrics[name] = float(value)
        status = str(trial.status)
        if trial.trial_id in retry and status == "RUNNING":
            status = "INTERRUPTED"
        score = float(trial.score) if trial.score is not None and status == "COMPLETED" else None
        records.append(TrialRecord(trial_id=trial.trial_id, status=status, score=score, metrics=metrics,
                                   values=dict(trial.hyperparameters.values),
                                   tuner_ids=list(assignments.get(trial.trial_id, [])),
                                   message=(trial.message or "").strip().splitlines()[-1] if trial.message else "",
                                   finished=finished.get(trial.trial_id)))
    done = sorted((r for r in records if r.ranked),
                  key=lambda r: r.score if direction == "min" else -r.score)
    ranked = {r.trial_id for r in done}
    return done + [r for r in records if r.trial_id not in ranked]


def _importance(records: Sequence[TrialRecord], names: Sequence[str]) -> tuple[str | None, float]:
    """The hyperparameter whose values rank-correlate most with the objective (|Spearman rho|)."""
    from scipy.stats import spearmanr
    done = [r for r in records if r.ranked]
    best_name, best_rho = None, -1.0
    for name in names:
        raw = [r.values.get(name) for r in done]
        if len(done) < 3 or any(v is None for v in raw) or len(set(map(str, raw))) < 2:
            continue
        order = {v: i for i, v in enumerate(sorted(set(raw), key=lambda v: (isinstance(v, str), v)))}
        rho = spearmanr([order[v] for v in raw], [r.score for r in done]).statistic
        if math.isfinite(rho) and abs(rho) > best_rho:
            best_name, best_rho = name, abs(float(rho))
    return best_name, best_rho


def _ended_trials(records: Iterable[TrialRecord]) -> set[str]:
    """Ids of the trials that completed or failed (not running, interrupted or waiting)."""
    return {r.trial_id for r in records if r.status in ENDED_STATUSES}


def in_finish_order(records: Iterable[TrialRecord]) -> list[TrialRecord]:
    """``records`` in the order their trials ended (the oracle's), then the others by id as numbers."""
    return sorted(records, key=lambda r: (r.finished is None, r.finished or 0, _id_order(r.trial_id)))


#: trials.png labels each point of its left plot with the trial's id up to this many completed trials
PLOT_LABELLED_TRIALS = 30


def plot_trials(records: Sequence[TrialRecord], space: SearchSpace, path: str | Path) -> Path:
    """``trials.png``: the objective of each trial in run order with the best so far, and the objective
    against the most influential hyperparameter (largest |Spearman rho|)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    objective, direction = space.settings.objective, space.settings.direction
    done = in_finish_order(r for r in records if r.ranked)
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    if done:
        x = list(range(1, len(done) + 1))
        scores = [r.score for r in done]
        running = [min(scores[:i]) if direction == "min" else max(scores[:i]) for i in x]
        left.plot(x, scores, "o", label="trial")
        left.step(x, running, where="post", label="best so far")
        left.legend()
        if len(done) <= PLOT_LABELLED_TRIALS:  # the ids trials.csv and the log give, which the finish order is not
            for place, r in zip(x, done):
                left.annotate(r.trial_id, (place, r.score), textcoords="offset points", xytext=(4, 4), fontsize=8)
    left.xaxis.set_major_locator(MaxNLocator(integer=True))  # a count: it had ticks at 1.25, 1.50, ...
    left.set_xlabel("trial (in the order they finished; each labelled with its trial_id)"
                    if 0 < len(done) <= PLOT_LABELLED_TRIALS else "trial (in the order they finished)")
    left.set_ylabel(f"{objective} (validation)")
    left.set_title(f"{counted(len(done), 'completed trials')} of {len(records)}")
    name, rho = _importance(records, [p.name for p in space.searched])
    if name is None:
        right.text(0.5, 0.5, "fewer than 3 completed trials with\ndifferent values: no importance yet",
                   ha="center", va="center", transform=right.transAxes)
        right.set_axis_off()
    else:
        values = [r.values[name] for r in done]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            right.plot(values, [r.score for r in done], "o")
            param = next(p for p in space.searched if p.name == name)
            if param.sampling == "log":
                right.set_xscale("log")
            elif all(isinstance(v, int) for v in values):  # depth 2-5 had ticks at 2.25, 2.50, ...
                right.xaxis.set_major_locator(MaxNLocator(integer=True))
        else:
            labels = sorted(set(map(str, values)))
            right.plot([labels.index(str(v)) for v in values], [r.score for r in done], "o")
            right.set_xticks(range(len(labels)), labels)
        right.set_xlabel(name)
        right.set_ylabel(objective)
        right.set_title(f"most influential: {name} (|Spearman rho| = {rho:.2f})")
    return atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def write_summary(out: str | Path, space: SearchSpace, config: Config | None = None) -> TrialRecord | None:
    """Write ``trials.csv``, ``trials.png`` and ``best_hparams.json`` from the project in ``out``.

    Returns the best trial (``None`` when no trial completed; then no ``best_hparams.json``).
    """
    out = Path(out)
    records = load_trials(out, space.settings.direction)
    objective = space.settings.objective
    hp_names = [p.name for p in space.searched]
    extra_hp = sorted({k for r in records for k in r.values if k not in hp_names})
    metric_names = sorted({k for r in records for k in r.metrics if k.startswith("val_") and k != objective})
    header = ["rank", "trial_id", "status", "tuner_id", objective, *metric_names, "epochs", "best_epoch",
              "seconds", "params", "rss_mb", *hp_names, *extra_hp, "message"]
    rows = [[rank if r.ranked else "", r.trial_id, r.status, r.tuner_ids[-1] if r.tuner_ids else "",
             "" if r.score is None else f"{r.score:.6g}",
             *[_fmt(r.metrics.get(k)) for k in metric_names],
             *[_fmt(r.metrics.get(k), integer=True) for k in ("epochs", "best_epoch")],
             _fmt(r.metrics.get("seconds")), _fmt(r.metrics.get("params"), integer=True),
             _fmt(r.metrics.get("rss_mb")), *[_fmt(r.values.get(k)) for k in hp_names + extra_hp], r.message]
            for rank, r in enumerate(records, start=1)]
    atomic.write_csv(out / "trials.csv", header, rows)
    plot_trials(records, space, out / "trials.png")
    best = records[0] if records and records[0].ranked else None
    if best is not None:
        values = {p.name: best.values[p.name] for p in space.searched if p.name in best.values}
        summary = {"objective": objective, "direction": space.settings.direction, "score": best.score,
                   "trial_id": best.trial_id, "tuner_id": best.tuner_ids[-1] if best.tuner_ids else None,
                   "hyperparameters": values, "space": space.source,
                   "completed_trials": sum(r.ranked for r in records), "trials": len(records)}
        if space.dropped:  # every value of each gave the same settings: no best value to name
            summary["not_searched"] = [p.name for p in space.params if p.name in space.dropped]
        if config is not None:
            summary["overrides"] = space.overrides(config, values)
        _write_json_atomic(out / "best_hparams.json", summary)
    return best


def _fmt(value: Any, *, integer: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(round(value))) if integer else f"{value:.6g}"
    return str(value)


# -- the search job ---------------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """What :func:`run_search` leaves behind (a worker's has no trials or best run)."""

    out: Path
    role: str
    best: TrialRecord | None = None
    best_config: Config | None = None
    best_run: Path | None = None
    test_metrics: dict[str, Any] | None = None
    trials: list[TrialRecord] = field(default_factory=list)
    space: SearchSpace | None = None  # the space searched: the declared one without what it did not search


def search_identity(config: Config, space: SearchSpace) -> dict[str, Any]:
    """What a rerun (or a worker) must share with the search in a folder to join it."""
    return {"space": space.name, "space_fingerprint": space.fingerprint(),
            "config_fingerprint": config.fingerprint()}


def _same_search(saved: Mapping[str, Any], identity: Mapping[str, Any]) -> bool:
    """Whether a ``search.json`` (``saved``) holds the search ``identity`` names.

    By the fingerprints it recorded, or else by its ``config`` read by this version: a search started by an
    older sound_tf, whose settings lacked one added since with its old behaviour as the default, continues
    instead of being refused as "other settings" that differ in nothing.
    """
    if {k: saved.get(k) for k in identity} == identity:
        return True
    if (saved.get("space"), saved.get("space_fingerprint")) != (identity["space"], identity["space_fingerprint"]):
        return False
    try:
        return as_made_today(Config.from_dict(saved.get("config"))).fingerprint() == identity["config_fingerprint"]
    except ConfigError:
        return False


def trial_epochs(config: Config, space: SearchSpace, saved: Mapping[str, Any] | None = None, *,
                 source: str | Path = SEARCH_FILE) -> int:
    """The most epochs a trial trains: ``[search]`` epochs, capped by the ``train.epochs`` the best run trains
    with (``config`` with ``[fixed]``), so that no trial measures more training than the final model gets.

    Parameters
    ----------
    config : Config
        The search's base settings (pipeline recipe and flags).
    space : SearchSpace
    saved : mapping, optional
        The ``search.json`` of the search continued or joined: it keeps the cap it records. One that records
        none (begun before sound_tf recorded it) keeps the cap of that time, ``[search]`` epochs capped by
        ``config``'s ``train.epochs``, whatever ``[fixed]`` sets.
    source : str or Path
        The file ``saved`` was read from, for the error.

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        When ``saved`` records a cap that is not a whole number >= 1 (``"3"``, ``0``, ``2.5``, ``true``): it fell
        back to the old rule without a word, so the search went on with trials of another length than it began with.
    """
    if saved is None:
        return min(space.settings.epochs, space.trial_config(config, {}).train.epochs)
    if TRIAL_EPOCHS not in saved:
        return min(space.settings.epochs, config.train.epochs)
    recorded = saved[TRIAL_EPOCHS]
    if not is_whole(recorded) or recorded < 1:
        raise ConfigError(f"{source}: {TRIAL_EPOCHS} must be a whole number >= 1 (the most epochs of a trial of "
                          f"this search), got {recorded!r}; put back the cap the search began with, or start it over")
    return int(recorded)


def _saved_not_searched(saved: Mapping[str, Any], space: SearchSpace) -> list[str]:
    """The hyperparameters a ``search.json`` (``saved``) records as not searched; none for a search begun before
    sound_tf left any out (it declared them all, and goes on doing so)."""
    names = saved.get(NOT_SEARCHED)
    known = {p.name for p in space.params}
    return [name for name in names if name in known] if isinstance(names, list) else []


def _continued_search(out: Path | None, config: Config, space: SearchSpace) -> Mapping[str, Any] | None:
    """The ``search.json`` in ``out`` when it holds this search (a rerun continues it), else ``None``."""
    if out is None:
        return None
    try:
        saved = json.loads((Path(out) / SEARCH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) and _same_search(saved, search_identity(config, space)) else None


def _prepare_folder(out: Path, config: Config, space: SearchSpace, role: str, *, overwrite: bool,
                    log: Callable[[str], None], inert: Mapping[str, Any] | None = None,
                    wording: Wording = COMMAND) -> list[str]:
    """Check ``out`` against this search and write its ``search.json``; return the names of the hyperparameters
    the search does not declare: those :meth:`SearchSpace.inert` finds for a new search, those its
    ``search.json`` records for one continued (none when it began before sound_tf left any out), the chief's
    for a worker, so that the oracle's space never changes under a search and chief and workers agree
    (``inert``: :meth:`SearchSpace.inert` of ``config``, when the caller has it). Messages name the folder, the
    overwrite and the settings in ``wording``."""
    identity = search_identity(config, space)
    search_file = out / SEARCH_FILE
    if role == "worker":
        waited = reported = time.monotonic()
        while not search_file.is_file():
            if time.monotonic() - waited > WORKER_WAIT_SECONDS:
                raise ConfigError(f"{search_file}: not written by a chief within {WORKER_WAIT_SECONDS:.0f} s; "
                                  f"start the chief first, with the same {wording.out} (a shared folder)")
            if time.monotonic() - reported >= WORKER_REPORT_SECONDS:  # it used to wait 10 minutes without a word
                log(f"worker {tuner_id()}: waiting for a chief to write {search_file} (is the chief started, and "
                    f"is {wording.out} the same shared folder on every machine?); waiting up to "
                    f"{WORKER_WAIT_SECONDS:.0f} s in all")
                reported = time.monotonic()
            time.sleep(min(1.0, WORKER_REPORT_SECONDS))
        saved = json.loads(search_file.read_text())
        chief_config = saved.get("config") if isinstance(saved.get("config"), Mapping) else {}
        chief_data = chief_config.get("data") or {}
        # the data may be mounted elsewhere on this machine: the split check (_worker_data) compares them; and
        # its decode cache is its own (the same decoded clips wherever they are kept): `--cache-dir cache` run
        # from another folder (made absolute there) joined the chief as it did when it was kept as typed
        elsewhere = {f"data.{name}": chief_data.get(name) for name in ("path", "cache_dir")
                     if isinstance(chief_data.get(name), str) and chief_data.get(name) != getattr(config.data, name)}
        if elsewhere:
            config = apply_overrides(config, elsewhere)
            identity = search_identity(config, space)
        if not _same_search(saved, identity):
            raise ConfigError(f"{search_file}: the chief's search differs from this worker's"
                              f"{_search_differences(saved, config, space)}; start every worker with the chief's "
                              f"{wording.settings} and space"
                              + _chief_values(chief_config, config, wording, space=_chief_space(saved, space, wording)))
        return _saved_not_searched(saved, space)
    # a folder of the user's own files was refused by run_search, before it claimed the folder
    if overwrite and out.exists():
        refuse_emptying(out, config.input_paths(), wording=wording)
        best_run = out / "best_run"  # emptied under its lock, as the command's --overwrite: a run may train there
        with claimed(best_run, "training in it", wording=wording) if best_run.is_dir() else contextlib.nullcontext():
            log(f"{wording.overwrite}: deleting {out}")
            if best_run.is_dir():
                empty_folder(best_run)
            empty_folder(out, keep=("best_run",))  # their lock files stay: the locks other processes see
    if search_file.is_file():
        saved = json.loads(search_file.read_text())
        if not _same_search(saved, identity):
            raise ConfigError(f"{out}: holds a search with other settings{_search_differences(saved, config, space)}; "
                              f"pass {wording.overwrite} to start over or use the same {wording.settings} and space "
                              f"to continue it")
        log(f"continuing the search in {out}")
        not_searched = _saved_not_searched(saved, space)
    else:
        saved = None
        not_searched = list(space.inert(config) if inert is None else inert)
    out.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(search_file, {**identity, "space_source": space.source, "space_toml": _space_text(space),
                                     "settings": dataclasses.asdict(space.settings), "config": config.to_dict(),
                                     NOT_SEARCHED: not_searched,
                                     TRIAL_EPOCHS: trial_epochs(config, space, saved, source=search_file),
                                     "updated": time.strftime("%Y-%m-%d %H:%M:%S")})
    return not_searched


def _refuse_foreign_folder(out: Path, *, overwrite: bool) -> None:
    """Refuse an ``out`` of the user's own files in :func:`run_search`'s words, before anything is written into it
    or deleted (the command refuses them first, as ``--out``)."""
    emptied = ", and overwrite=True empties it first" if overwrite else ""
    refuse_foreign_folder(out, marker=SEARCH_FILE, what="search", startup=SEARCH_STARTUP,
                          remedy=f"run_search writes a search's files into it (search.json, tune.log, search/, "
                                 f"trials.csv, best_run/ ...){emptied}; pass a new or empty out, or an earlier "
                                 f"search's folder to continue it")


def _search_differences(saved: Mapping[str, Any], config: Config, space: SearchSpace) -> str:
    """`` (search space: ...; train.epochs: 3 there, 5 now)``: how a ``search.json`` differs from this run."""
    notes = []
    if (saved.get("space"), saved.get("space_fingerprint")) != (space.name, space.fingerprint()):
        same_name = saved.get("space") == space.name
        there = saved.get("settings") if isinstance(saved.get("settings"), Mapping) else {}
        now = dataclasses.asdict(space.settings)
        # [search] settings that define the trials (not max_trials: a larger one extends a search), by name
        # (--tuner, --trial-epochs) rather than as a fingerprint
        settings = [f"[search] {key}: {there[key]!r} there, {value!r} now" for key, value in now.items()
                    if key != "max_trials" and key in there and there[key] != value]
        if not same_name:
            notes.append(f"search space {saved.get('space')!r} there, {space.name!r} now")
        elif settings:
            notes += settings
        else:
            notes.append(f"search space {space.name!r} with other contents: fingerprint "
                         f"{saved.get('space_fingerprint')} there, {space.fingerprint()} now")
    if saved.get("config_fingerprint") != config.fingerprint():
        changed = config.changed_settings(saved.get("config") if isinstance(saved.get("config"), Mapping) else {})
        notes.append("; ".join(changed) if changed else "other settings")
    return f" ({'; '.join(notes)})" if notes else ""


def _chief_space(saved: Mapping[str, Any], space: SearchSpace, wording: Wording = COMMAND) -> str | None:
    """``--tuning tiny``: the flag that gives a worker its chief's search space, when it names another one (a space of
    the repository's ``tuning/`` by name, any other by the chief's path to it); ``None`` for a Python caller, or
    where the names agree. A worker started with ``--tuning default`` beside a chief's ``tiny`` was told
    ``(search space 'tiny' there, 'default' now); start every worker with the chief's flags and space``, and no
    flag."""
    source = saved.get("space_source")
    if wording.settings != COMMAND.settings or saved.get("space") == space.name or not isinstance(source, str):
        return None
    from .config import REPO_ROOT

    path = Path(source)
    bundled = path.suffix == ".toml" and path.parent.resolve() == (REPO_ROOT / "tuning").resolve()
    return f"--tuning {shlex.quote(path.stem if bundled else source)}"


def _chief_values(chief: Mapping[str, Any], config: Config, wording: Wording = COMMAND, *, limit: int = 4,
                  space: str | None = None) -> str:
    """`` (this one needs --batch-size 32)``: what gives a worker the chief's value of each setting in which they
    differ, as the worker's refusal ends: a flag of the command when one sets it (``--batch-size 32``,
    ``--class-weights``, ``--strict``), else ``--set KEY=VALUE``; a Python caller (:data:`PYTHON_WORDING`) is
    named the settings (``train.batch_size=32``). ``""`` when no setting differs (the search space does).
    ``chief``: the chief's config, as its ``search.json`` keeps it. The worker was told only ``(train.batch_size:
    32 there, 8 now); start every worker with the chief's flags and space``, and no flag is named train.batch_size."""
    from .train import FLAG_DESTS

    needed = [space] if space else []  # ``space``: the flag that gives the chief's space (_chief_space)
    for section, values in config.to_dict().items():
        there = chief.get(section)
        if section == "labels" or not isinstance(values, dict) or not isinstance(there, Mapping):
            continue
        for name, value in values.items():
            key = f"{section}.{name}"
            if name not in there or there[name] == value:
                continue
            chief_value, dest = there[name], FLAG_DESTS.get(key)
            if wording.settings != COMMAND.settings:
                needed.append(f"{key}={chief_value!r}")
            elif dest is not None and isinstance(chief_value, (int, float, str)) and not isinstance(chief_value, bool):
                needed.append(f"--{dest.replace('_', '-')} {shlex.quote(str(chief_value))}")
            elif dest == "class_weights" and isinstance(chief_value, bool):
                needed.append("--class-weights" if chief_value else "--no-class-weights")
            elif dest == "strict" and isinstance(chief_value, bool):  # the flag only turns it on
                needed.append("--strict" if chief_value else "no --strict")
            else:  # TOML's words, as --set reads them: null, true, [8, 16], "text"; quoted for the shell
                toml = "null" if chief_value is None else json.dumps(chief_value)
                needed.append(f"--set {shlex.quote(f'{key}={toml}')}")
    if not needed:
        return ""
    more = f" and {len(needed) - limit} more" if len(needed) > limit else ""
    return f" (this one needs {', '.join(needed[:limit])}{more})"


def _check_same_split(chief_split: Path, worker_split: Path, wording: Wording = COMMAND) -> None:
    """A worker must train and validate on the chief's split: compare (split, label, file name) counts.

    File names, not paths, so that machines may mount the data in different places. The message names what
    gives the settings in ``wording``.
    """
    from collections import Counter
    from .datasets import read_split_csv
    from .errors import DatasetError
    if not chief_split.is_file():
        return  # the chief is still preparing; its split comes from the same seed and data
    splits = [read_split_csv(path) for path in (chief_split, worker_split)]
    counts = [Counter((name, ex.label, Path(ex.path).name) for name, items in split.items() for ex in items)
              for split in splits]
    if counts[0] != counts[1]:
        raise DatasetError(f"{worker_split}: this worker's split differs from the chief's {chief_split}: "
                           f"{_split_differences(*splits)}; every machine needs the same data and {wording.settings}")


def _split_differences(chief: Mapping[str, Sequence[Any]], worker: Mapping[str, Sequence[Any]], limit: int = 3) -> str:
    """How a worker's split differs from its chief's, in files (``label/name``): their counts, then the files only
    one of them holds and those in another split, at most ``limit`` of each. It read '(e.g. [('test', '0',
    '0_jackson_5.wav'), ...])', three tuples of which one machine's copy of the data held one extra file."""
    def files(split: Mapping[str, Sequence[Any]]) -> dict[str, str]:
        return {f"{ex.label}/{Path(ex.path).name}": name for name, items in split.items() for ex in items}

    def sizes(split: Mapping[str, Sequence[Any]]) -> str:
        return ", ".join(f"{name} {len(items)}" for name, items in split.items())

    def listed(names: Sequence[str]) -> str:
        more = f" and {len(names) - limit} more" if len(names) > limit else ""
        return ", ".join(names[:limit]) + more

    there, here = files(chief), files(worker)
    parts = [f"{sum(map(len, worker.values()))} files here ({sizes(worker)}), "
             f"{sum(map(len, chief.values()))} the chief's ({sizes(chief)})"]
    if only_here := sorted(set(here) - set(there)):
        parts.append(f"{len(only_here)} only here: {listed(only_here)}")
    if only_there := sorted(set(there) - set(here)):
        parts.append(f"{len(only_there)} only the chief's: {listed(only_there)}")
    if moved := sorted(key for key in set(here) & set(there) if here[key] != there[key]):
        parts.append(f"{len(moved)} in another split here" + (" (a file more or less moves others)"
                                                                if only_here or only_there else "")
                     + ": " + listed([f"{key} ({there[key]} there, {here[key]} here)" for key in moved]))
    return "; ".join(parts)


def _worker_data(config: Config, out: Path, folder: Path, log: Callable[[str], None],
                 wording: Wording = COMMAND) -> Any:
    """Worker: its data, split in ``folder`` and checked against the chief's ``out/split.csv`` (its refusal
    in ``wording``).

    A split that differs from the chief's is deleted before the error is raised: a worker kept it, reused
    it on every later start and was refused forever, even once its data were fixed. A split kept from an
    earlier start that differs is computed again once from the data before the worker is refused.
    """
    from .datasets import SPLIT_CSV, prepare_dataset
    from .errors import DatasetError
    split = folder / SPLIT_CSV
    reused = split.is_file()
    while True:
        data = prepare_dataset(config, folder, log=log)
        try:
            _check_same_split(out / SPLIT_CSV, split, wording)
            return data
        except DatasetError:
            split.unlink(missing_ok=True)
            if not reused:
                raise
        log(f"worker {tuner_id()}: the split it kept in {split} differs from the chief's; splitting the data again")
        reused = False


def _space_text(space: SearchSpace) -> str | None:
    path = Path(space.source)
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _final_run(config: Config, run_dir: Path, data: Any, out: Path, *, log: Callable[[str], None],
               verbose: int | str, wording: Wording = COMMAND,
               advice: FitWording | None = None) -> dict[str, Any] | None:
    """Train (or resume, or reuse) the best configuration in ``run_dir`` and evaluate it on the test split (a
    ``run_dir`` in use is refused naming the search folder in ``wording``). Its ``report.html`` words the advice to
    a run that overfit or underfit with ``advice`` (:func:`fit_wording`), as the search's summary does; it had
    ``train``'s words, which name no trial and tell a user to change what the search varied.

    The search's ``split.csv``, ``skipped.csv`` (and ``silence.csv``) are copied in first, whole or not at all,
    every time: they were copied in place after training, and a search killed in between left a finished best run
    without them or with half a ``split.csv``; every rerun took the run as trained and failed reading it (export,
    too).
    """
    from .datasets import SILENCE_CSV
    from .train import run_log
    from .trainer import read_state, same_settings, train_run

    final = apply_overrides(config, {"labels": list(data.labels)})
    with claimed(run_dir, "training in it", wording=wording):  # e.g. a `train --out .../best_run` of the user's
        state = read_state(run_dir)
        if state and not same_settings(run_dir, state, final):
            log(f"{run_dir} holds another configuration (the best trial changed): training it again")
            empty_folder(run_dir)
            state = {}
        atomic.remove_leftovers_in(run_dir, held=True)  # what a killed search left half-written in it
        for name in ("split.csv", "skipped.csv", SILENCE_CSV):  # silence.csv: which noise its silence clips are
            if (out / name).is_file():
                atomic.copy_file(out / name, run_dir / name)
        if state.get("status") == "done" and (run_dir / "metrics.json").is_file():
            log(f"best run already trained in {run_dir}")
            return json.loads((run_dir / "metrics.json").read_text())
        # said only now: a rerun of a finished search printed it, then 'best run already trained'
        log(f"retraining the best configuration for up to {counted(final.train.epochs, 'epochs')} in {run_dir}; the "
            "test split is used only now")
        with run_log(run_dir):  # an ordinary run folder, with its own train.log
            result = train_run(final, run_dir, data=data, log=log, verbose=verbose, fit_wording=advice)
        return result.metrics


def check_search(config: Config, space: SearchSpace, *, time_budget_minutes: float | None,
                 worker_timeout_seconds: float, resuming: str | Path | None = None,
                 wording: Wording = COMMAND) -> None:
    """Every check that needs no data: run before ``--overwrite`` deletes anything, and by :func:`run_search`.

    ``resuming`` is the folder the search continues in, if any (not one ``--overwrite`` empties): a search
    begun there before sound_tf left out hyperparameters that change nothing goes on as it began. The
    messages name the limits and what gives the settings in ``wording`` (:func:`run_search`'s: its arguments).

    Raises
    ------
    ConfigError
        A limit is out of range, a value of the space cannot be used with ``config``, no hyperparameter of
        the space changes a trial with ``config`` (nothing to search), or a chief's port is taken (two
        chiefs on one port would both listen, and workers would join either search).
    """
    if not worker_timeout_seconds >= 5 * HEARTBEAT_SECONDS:  # NaN too: no worker would ever be released
        raise ConfigError(f"{wording.flag('--worker-timeout')} must be at least {5 * HEARTBEAT_SECONDS:.0f} s "
                          f"(heartbeats come every {HEARTBEAT_SECONDS:.0f} s), got {worker_timeout_seconds}")
    if time_budget_minutes is not None and not time_budget_minutes > 0:
        raise ConfigError(f"{wording.flag('--time-budget')} must be > 0 minutes, got {time_budget_minutes}")
    space.check_values(config)
    role = current_role()
    if role != "worker":  # a worker searches what its chief does
        continued = _continued_search(Path(resuming) if resuming is not None else None, config, space)
        inert = space.inert(config) if continued is None else {}
        if len(inert) == len(space.params):
            why = "; ".join(f"{name}: {unchanging.why}" for name, unchanging in inert.items())
            raise ConfigError(f"{space.source}: no hyperparameter of this space changes a trial with these settings, "
                              f"so there is nothing to search: {why}; change the {wording.settings}, [fixed] or "
                              f"the space")
    if role == "chief":
        _check_port_free(os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"])


def _check_port_free(host: str, port: str) -> None:
    """Raise unless ``host:port`` can be bound (gRPC's server reuses ports, so a second chief would not fail)."""
    try:
        addresses = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"KERASTUNER_ORACLE_IP={host} KERASTUNER_ORACLE_PORT={port}: not an address to serve "
                          f"on ({exc})") from None
    for family, kind, proto, _, address in addresses[:1]:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
            try:
                probe.bind(address)
            except OSError as exc:
                import errno

                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(f"{host}:{port}: the oracle's port is in use; another chief may be serving "
                                      f"there: stop it or choose another KERASTUNER_ORACLE_PORT") from None
                raise ConfigError(f"{host}:{port}: the chief cannot serve the oracle there ({exc.strerror})") from None


def _oracle_silence(host: str, port: int) -> str | None:
    """``None`` when something accepts connections at ``host:port`` (the chief's oracle), else why not."""
    try:
        with socket.create_connection((host, port), timeout=5.0):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _wait_for_oracle(host: str, port: str, out: Path, log: Callable[[str], None], *,
                     wait_seconds: float = WORKER_WAIT_SECONDS, report_seconds: float | None = None,
                     wording: Wording = COMMAND) -> None:
    """Worker: return once something accepts connections at ``host:port``, the chief's oracle.

    KerasTuner's client would otherwise wait there without a word, for ever, when the address is wrong.
    This says every ``report_seconds`` (default :data:`WORKER_REPORT_SECONDS`) what it waits for, names the
    port the chief in ``out`` serves on (its ``chief.json``) when that is another one, and gives up after
    ``wait_seconds`` (flags named in ``wording``).

    Raises
    ------
    ConfigError
        ``port`` is not a port number, or nothing answered within ``wait_seconds``.
    """
    number = oracle_port(port)
    report_seconds = WORKER_REPORT_SECONDS if report_seconds is None else report_seconds
    began = time.monotonic()
    reported: float | None = None
    while True:
        reason = _oracle_silence(host, number)
        if reason is None:
            return
        given_up = time.monotonic() - began > wait_seconds
        if given_up or reported is None or time.monotonic() - reported >= report_seconds:  # chief.json read only here
            hint, ended = _chief_hint(out, port, wording)
            if given_up:
                advice = ("" if ended
                          else "; give every worker the chief's KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT")
                raise ConfigError(f"{host}:{port}: no oracle answered there within {wait_seconds:g} s ({reason})"
                                  f"{hint}{advice}")
            log(f"worker {tuner_id()}: no oracle answers at {host}:{port} yet ({reason}){hint}; waiting up to "
                f"{wait_seconds:g} s for the chief")
            reported = time.monotonic()
        time.sleep(1.0)


class OracleWatch:
    """A worker's daemon thread that says when the chief's oracle stops answering, and when it is back.

    KerasTuner's client waits up to an hour for an oracle that has gone (a chief killed mid-search), without
    a word. Every ``interval`` seconds this tries to connect to ``host:port``; while nothing answers it logs
    how long the chief has been away (trying again every ``probe`` seconds, without a word), and once it
    answers again it says so. A trial handed to the worker (:meth:`answered`) says so too: the chief came back
    while the worker waited for its next trial, and the line read 'answers again, after 60 s' up to
    ``interval`` seconds after that trial's first lines.
    """

    def __init__(self, host: str, port: str, log: Callable[[str], None], *, interval: float | None = None,
                 probe: float | None = None):
        self.host, self.port, self.log = host, oracle_port(port), log
        self.interval = WORKER_REPORT_SECONDS if interval is None else interval
        self.probe = min(self.interval, IDLE_POLL_SECONDS if probe is None else probe)
        self.gone_since: float | None = None
        self._lock = threading.Lock()  # check() in the thread, answered() in the worker's search
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="oracle-watch", daemon=True)

    def check(self) -> bool:
        """Try the oracle once; log what changed (or how long it has been away). Whether it answered."""
        reason = _oracle_silence(self.host, self.port)
        if reason is not None:
            with self._lock:
                now = time.monotonic()
                # its first line read 'has not answered for 0 s' of a chief killed a moment before
                away = "stopped answering" if self.gone_since is None else \
                    f"has not answered for {now - self.gone_since:.0f} s"
                if self.gone_since is None:
                    self.gone_since = now
            self.log(f"worker {tuner_id()}: the chief's oracle at {self.host}:{self.port} {away} "
                     f"({reason}); this worker waits for it (KerasTuner "
                     f"gives up after {ORACLE_CLIENT_TIMEOUT_SECONDS / 60:.0f} min): start the chief again with the "
                     f"same command and it continues the search")
            return False
        self.answered()
        return True

    def answered(self, trial_id: str | None = None) -> None:
        """The oracle answered (it handed this worker trial ``trial_id``): say it is back, if it was away."""
        with self._lock:
            if self.gone_since is None:
                return
            away, self.gone_since = time.monotonic() - self.gone_since, None
        given = "" if trial_id is None else f": it hands this worker trial {trial_id}"
        self.log(f"worker {tuner_id()}: the chief's oracle at {self.host}:{self.port} answers again, after "
                 f"{away:.0f} s{given}")

    def _run(self) -> None:
        report = time.monotonic() + self.interval
        while not self._stop.wait(self.interval if self.gone_since is None else self.probe):
            # while the chief is away, try every `probe` s, so its return is said when it happens
            if self.gone_since is not None and time.monotonic() < report \
                    and _oracle_silence(self.host, self.port) is not None:
                continue
            self.check()
            report = time.monotonic() + self.interval

    def __enter__(self) -> "OracleWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)


def _oracle_gone(exc: Exception, host: str, port: str) -> SoundTFError:
    """The error of a worker whose KerasTuner client gave up on the oracle (``exc``, a ``grpc.RpcError``)."""
    code = exc.code() if callable(getattr(exc, "code", None)) else None
    return SoundTFError(f"worker {tuner_id()}: the chief's oracle at {host}:{port} stopped answering "
                        f"({getattr(code, 'name', code)}); start the chief again with the same command (it "
                        f"continues the search), then this worker")


def _chief_hint(out: Path, port: str, wording: Wording = COMMAND) -> tuple[str, bool]:
    """What ``out``'s ``chief.json`` says that explains the wait (``; ...`` or ``""``), and whether the search ended.

    A serving chief on another port (the worker's address is wrong), or a chief that has finished its
    search (a worker started after the search waits for a chief that extends it, then gives up).
    """
    try:
        chief = json.loads((out / CHIEF_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "", False
    if not isinstance(chief, dict):
        return "", False
    if chief.get("status") == "serving" and str(chief.get("port")) != port:
        return f"; the chief in {out} serves on {chief.get('ip')}:{chief.get('port')} ({out / CHIEF_FILE})", False
    if chief.get("status") == "finished":
        when = chief.get("finished")
        at = (" at " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
              if isinstance(when, (int, float)) else "")
        return (f"; the chief in {out} finished its search{at} ({out / CHIEF_FILE}): this worker only helps a "
                f"chief started again to extend it (a larger {wording.flag('--max-trials')})"), True
    return "", False


def _no_notebook_output_outside_notebooks() -> None:
    """KerasTuner 1.4.8 takes any process that can import IPython for a notebook (``get_ipython()`` is
    ``None`` outside one, and ``"Terminal"`` is not in ``"NoneType"``) and "clears the cell" before every
    trial: ANSI line erasures and carriage returns on a terminal or in a redirected log. Outside an
    IPython shell its plain-text display is what runs."""
    from keras_tuner.src import utils as kt_utils

    try:
        import IPython

        shell = IPython.get_ipython()
    except ImportError:
        shell = None
    if kt_utils.IS_NOTEBOOK and shell is None:
        kt_utils.IS_NOTEBOOK = False


def run_search(config: Config, space: SearchSpace, out: str | Path, *, overwrite: bool = False,
               time_budget_minutes: float | None = None,
               worker_timeout_seconds: float = DEFAULT_WORKER_TIMEOUT_SECONDS, final: bool = True,
               log: Callable[[str], None] = print, verbose: int | str = 0,
               progress: int | str | None = None, wording: Wording = PYTHON_WORDING) -> SearchResult:
    """Run (or continue, or join) the search over ``space`` and write its outputs into ``out``.

    Parameters
    ----------
    config : Config
        Base settings (recipe and flags). The best run's ``train.epochs`` (this one's, or ``[fixed]``'s when it
        sets it) also caps the epochs of a trial (:func:`trial_epochs`).
    space : SearchSpace
        Hyperparameters and ``[search]`` settings (``replace_settings`` applies command-line changes).
    out : path
        Results folder; shared by chief and workers in a distributed search. A local search and a chief lock
        it for this process while the search lasts (:mod:`sound_tf.locks`, as ``python -m sound_tf.tune``
        does; claims are re-entrant, so a caller holding it already goes on) and give it back when this
        returns or raises; an ``out`` another process holds is refused before anything is written or
        deleted. A worker locks nothing: it writes under ``out/workers/<id>`` of the chief's folder.
    overwrite : bool
        Delete ``out`` first (local and chief only; a worker never deletes). ``out/best_run`` is emptied
        under its lock too (refused while another process trains there), and kept with its lock file.
    time_budget_minutes : float, optional
        No new trial starts after this many minutes; running trials finish.
    worker_timeout_seconds : float
        Chief: seconds without a heartbeat after which a worker counts as dead.
    final : bool
        Retrain the best configuration into ``out/best_run`` and evaluate it on the test split.
    verbose : int or str
        KerasTuner's trial tables, and Keras's progress bars unless ``progress`` is given.
    progress : int or str, optional
        Keras's progress bars in the trials and the best run (``python -m sound_tf.tune``: on a terminal only).
    wording : Wording
        How the messages name ``out``, ``overwrite``, ``config``, ``worker_timeout_seconds``,
        ``time_budget_minutes`` and ``space``'s ``[search] max_trials``: by default as these arguments;
        ``python -m sound_tf.tune`` passes its flags (:data:`sound_tf.locks.COMMAND`).

    Returns
    -------
    SearchResult

    Raises
    ------
    ConfigError
        Among others: another process holds ``out`` (a local search or a chief), or ``out/best_run`` (with
        ``overwrite``, or when the best configuration is retrained there).
    """
    if not isinstance(config, Config):  # else "'str' object has no attribute ..." somewhere inside
        raise ConfigError(f"run_search: config must be a Config (sound_tf.config.config_from_recipe), "
                          f"got {type(config).__name__}")
    from . import augment
    from .hypermodel import SearchSpace

    if not isinstance(space, SearchSpace):
        raise ConfigError(f"run_search: space must be a SearchSpace (SearchSpace.from_toml('tiny')), got {space!r}")
    for name, value in (("overwrite", overwrite), ("final", final)):
        if not isinstance(value, (bool, np.bool_)):  # "no" counted as true: overwrite="no" deleted the search
            raise ConfigError(f"run_search: {name} must be True or False, got {value!r}")
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not out.is_dir():  # the command refuses it as --out
        raise ConfigError(f"{out}: exists and is not a folder; out names a search folder to create or continue")
    _no_notebook_output_outside_notebooks()
    role = current_role()
    if role != "local":
        log(f"distributed search: this process is {tuner_id()!r} ({role}), oracle at "
            f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}")
    check_search(config, space, time_budget_minutes=time_budget_minutes, worker_timeout_seconds=worker_timeout_seconds,
                 resuming=None if overwrite else out, wording=wording)
    started = time.time()
    # Decoded once for every trial, and before anything is written: a bad noise folder is an error of the
    # command, not a failed first trial.
    noise_bank, noise_folder = augment.load_noise_folder(space.trial_config(config, {})) or (None, None)
    search = dict(overwrite=overwrite, time_budget_minutes=time_budget_minutes,
                  worker_timeout_seconds=worker_timeout_seconds, final=final, log=log, verbose=verbose,
                  progress=progress, wording=wording, role=role, started=started, noise_bank=noise_bank,
                  noise_folder=noise_folder)
    if role == "worker":  # workers share the chief's folder (each writes under workers/<id>), which the chief holds
        return _run_claimed(config, space, out, **search)
    _refuse_foreign_folder(out, overwrite=overwrite)  # before its lock file is written into it
    # One search per folder, as the command: a second one rewrote search.json under it, or emptied it.
    with claimed(out, "running a search in it", wording=wording):
        return _run_claimed(config, space, out, **search)


def _search_noise(out: Path, role: str, noise: Any, *, first_trial: int, max_trials: int,
                  final: bool = True) -> str | None:
    """The search folder's ``noise.json`` for a local search or a chief (``role``) whose trials from ``first_trial`` on
    mix in ``noise`` (an :class:`sound_tf.augment.NoiseFolder`, ``None`` without ``augment.noise_dir``), and the line
    to log (``None``: nothing to say).

    A local search runs its trials: ``out/noise.json`` keeps which recordings they mix in, as a resumed run, and the
    line warns of a folder changed since the trials that ended mixed it in
    (:func:`sound_tf.trainer.record_search_noise`). A chief runs no trial: its copy of the folder, on its own
    machine, is no trial's noise, so it writes no ``noise.json`` (each worker keeps its own,
    ``workers/<id>/noise.json``, :func:`sound_tf.trainer.record_worker_noise`), and the line says where they are
    (and, with ``final``, where the best run the chief trains keeps its own).
    A ``noise.json`` already in ``out`` (the trials of a local search before it, or a chief of sound_tf before this)
    is left as it is."""
    if role == "chief":
        if noise is None:
            return None
        best = f" (the best run, which the chief trains, in {out / 'best_run' / NOISE_FILENAME})" if final else ""
        return (f"chief: augment.noise_dir={noise.folder}: the chief runs no trial, so the search folder keeps no "
                f"{NOISE_FILENAME}; each worker records the recordings its own trials mix in, in "
                f"{out / 'workers' / '<id>' / NOISE_FILENAME}{best}")
    from .trainer import record_search_noise

    # As a resumed run: the trials still to run mix in the folder as it is now; say so when it changed since
    # the trials that ended mixed it in (noise.json lists each version from the trial it began with).
    return record_search_noise(out, noise, first_trial=first_trial, max_trials=max_trials)


def _run_claimed(config: Config, space: SearchSpace, out: Path, *, overwrite: bool, time_budget_minutes: float | None,
                 worker_timeout_seconds: float, final: bool, log: Callable[[str], None], verbose: int | str,
                 progress: int | str | None, wording: Wording, role: str, started: float,
                 noise_bank: Any, noise_folder: Any) -> SearchResult:
    """The work of :func:`run_search` in its checked (and, but for a worker's, claimed) ``out``."""
    from .datasets import prepare_dataset
    from .hypermodel import SoundHyperModel

    fresh = overwrite or not (out / SEARCH_FILE).is_file()
    # What killed processes (this search before, its workers) left half-written; a running worker's stays.
    atomic.remove_leftovers_in(out)
    inert = space.inert(config)
    not_searched = _prepare_folder(out, config, space, role, overwrite=overwrite and role != "worker", log=log,
                                   inert=inert, wording=wording)
    space = space.without(not_searched, config, inert=inert)  # what KerasTuner is given; fingerprint unchanged
    if not space.searched:  # check_search refuses such a search; a search.json written otherwise may not
        raise ConfigError(f"{out / SEARCH_FILE}: records every hyperparameter of {space.source} as not searched: "
                          f"nothing to search; pass {wording.overwrite} to start over")
    if role == "worker":
        data = _worker_data(config, out, out / "workers" / tuner_id(), log, wording)
    else:
        try:
            data = prepare_dataset(config, out, log=log)
        except SoundTFError:
            # A search whose data could not be read never started: without this, the corrected command
            # (another --data, the files fixed) was refused as "a search with other settings".
            if fresh:
                (out / SEARCH_FILE).unlink(missing_ok=True)
            raise
    config = apply_overrides(config, {"labels": list(data.labels)})
    # the cap search.json records (a worker's: the chief's), for every trial of the search however often it resumes
    epochs = trial_epochs(config, space, json.loads((out / SEARCH_FILE).read_text(encoding="utf-8")),
                          source=out / SEARCH_FILE)
    searched = (f"{len(space.searched)} of {counted(len(space.params), 'hyperparameters')}" if space.dropped
                else counted(len(space.params), "hyperparameters"))
    log(f"search space {space.name!r} ({space.source}): {searched}, "
        f"{space.settings.tuner} tuner, up to {counted(space.settings.max_trials, 'trials')} of up to "
        f"{counted(epochs, 'epochs')}, "
        f"objective {space.settings.objective}; {len(data.splits['train'])} training and "
        f"{len(data.splits['val'])} validation clips")
    for name in space.dropped:
        why = inert[name].why if name in inert else f"as {out / SEARCH_FILE} records since the search began"
        log(f"{name}: every value gives the same settings ({why}); not searched")
    for name, unchanging in inert.items():
        if name not in space.dropped:
            log(f"{name}: every value gives the same settings ({unchanging.why}), but this search began by searching "
                f"it, before sound_tf left such hyperparameters out: it goes on searching it ({wording.overwrite} "
                f"starts a search without it)")
    hypermodel = SoundHyperModel(config, space, data, stats_dir=out / "feature_stats", trial_epochs=epochs,
                                 trial_patience=space.settings.early_stopping_patience, noise_bank=noise_bank,
                                 progress=progress, log=log)
    deadline = started + 60.0 * time_budget_minutes if time_budget_minutes else None
    seed = space.settings.seed if space.settings.seed is not None else config.train.seed
    import keras_tuner as kt

    try:  # KerasTuner builds the model of the space's default values here
        tuner = make_tuner(space, hypermodel, out, seed=seed, deadline=deadline)
    except kt.errors.FailedTrialError as exc:
        raise ConfigError(f"{space.source}: the search space's default values do not make a valid model ({exc}); "
                          f"give the [hp.*] tables defaults that go together") from None
    import keras
    search_kwargs = dict(verbose=verbose, callbacks=[
        keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False, profile_batch=0)])

    if role == "worker":
        host, port = os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"]
        _wait_for_oracle(host, port, out, log, wording=wording)
        from .trainer import record_worker_noise

        # The chief runs no trial: this worker keeps which recordings its own trials mix in (its machine's copy of
        # the folder), in its own folder, counting the trials it ran to the end (the oracle's, now it answers).
        ran = sum(1 for r in load_trials(out) if r.status in ENDED_STATUSES and r.tuner_ids[-1:] == [tuner_id()])
        if (changed := record_worker_noise(out / "workers" / tuner_id(), noise_folder, first_trial=ran + 1,
                                           max_trials=space.settings.max_trials)) is not None:
            log(changed)
        log(f"worker {tuner_id()}: asking the oracle at {host}:{port} for trials")
        import grpc

        with Heartbeat(out / "workers" / tuner_id() / HEARTBEAT_FILE, tuner), OracleWatch(host, port, log) as watch:
            tuner.oracle_answered = watch.answered  # said before the trial's first line, not up to 30 s after
            try:
                tuner.search(**search_kwargs)
            except grpc.RpcError as exc:  # KerasTuner's client gave up on the oracle: a traceback otherwise
                raise _oracle_gone(exc, host, port) from None
        log(f"worker {tuner_id()} done: the oracle has no more trials")
        return SearchResult(out=out, role=role)
    tuner.save()  # so that a search killed in its first trial reloads too
    ended_before = _ended_trials(load_trials(out))
    if (noise_line := _search_noise(out, role, noise_folder, first_trial=len(ended_before) + 1,
                                    max_trials=space.settings.max_trials, final=final)) is not None:
        log(noise_line)
    if role == "chief":
        _serve(tuner, out, worker_timeout_seconds, search_kwargs, log, wording)
    else:
        tuner.search(**search_kwargs)

    best = write_summary(out, space, config)
    result = SearchResult(out=out, role=role, best=best, trials=load_trials(out, space.settings.direction),
                          space=space)
    done = sum(r.ranked for r in result.trials)
    ran = len(_ended_trials(result.trials) - ended_before)
    log(f"{done} of {counted(len(result.trials), 'trials')} completed; {ran} ended in this run, which took "
        f"{time.time() - started:.0f} s; results in {out / 'trials.csv'}")
    if (exhausted := _space_exhausted(space, result.trials)) is not None:
        log(exhausted)
    if best is None:
        log("no trial completed: no best model to train")
        return result
    result.best_config = hypermodel.final_config(best.values)
    log(f"best trial {best.trial_id}: {space.settings.objective} = {best.score:.4g} with "
        + values_text(best.values, [p.name for p in space.params]))
    if final:
        result.best_run = out / "best_run"
        result.test_metrics = _final_run(result.best_config, result.best_run, data, out, log=log,
                                         verbose=verbose if progress is None else progress, wording=wording,
                                         advice=fit_wording(space, best, result.best_config, result.best_run,
                                                            wording))
    elif not (out / "best_run" / "metrics.json").is_file():  # it ended at the line above, best_run/ unnamed
        log(f"best run not trained ({wording.flag('--no-final')}): run the search again without it to train the best "
            f"configuration in {out / 'best_run'} (its values as --set overrides: {out / 'best_hparams.json'})")
    return result


def _space_exhausted(space: SearchSpace, trials: Sequence[TrialRecord]) -> str | None:
    """The line for a search that ended short of ``max_trials`` because its space holds fewer configurations and
    every one was tried ('4 of 4 trials completed' said nothing of it), else ``None``. Hyperband is left out: its
    brackets, not ``max_trials``, decide how many trials it runs."""
    total = space.configurations()
    if total is None or space.settings.tuner == "hyperband" or len(trials) >= space.settings.max_trials:
        return None
    names = [p.name for p in space.searched]
    tried = {json.dumps([t.values.get(n) for n in names], default=str) for t in trials if t.status != "INTERRUPTED"}
    if len(tried) < total:
        return None
    return (f"the space holds only {counted(total, 'configurations')}: every one was tried, so the search ended "
            f"before the {space.settings.max_trials} trials asked")


#: The config key the fit advice names for the size of the model (:func:`fit_wording`).
MODEL_SIZE_KEY = "model.widths"
#: The prefix of the augmentation settings' config keys (:func:`fit_wording`).
AUGMENT_PREFIX = "augment."


def _changed_in(space: SearchSpace, key: str, flag: str) -> str:
    """Where a user changes ``key`` for the best run: the space's ``[fixed]`` table when it sets the key (which
    overrides the flags), else ``flag``."""
    return f"[fixed] {key} in {space.source}" if key in space.fixed else flag


def _varied(space: SearchSpace, params: Sequence[HyperParam], best: TrialRecord, remedy: str, direction: str) -> str:
    """``a smaller model than the best trial's (the search varied depth and width_multiplier, and it took depth=2,
    width_multiplier=0.5: smaller values in tuning/tiny.toml)``: the advice ``remedy`` on a setting the search varied
    with ``params``."""
    names = [p.name for p in params]
    took = values_text({name: best.values[name] for name in names if name in best.values}, names)
    return (f"{remedy} than the best trial's (the search varied {and_list(names)}, and it took {took}: {direction} "
            f"values in {space.source})")


def fit_wording(space: SearchSpace, best: TrialRecord, best_config: Config, best_run: Path,
                wording: Wording = COMMAND) -> FitWording:
    """The words of the advice a search's summary gives when its retrained best run overfit or underfit
    (:func:`sound_tf.metrics.summary_lines`, from ``best_run``'s history as ``train``'s summary reads its run's).

    The advice concerns the best trial's configuration, retrained in ``best_run``. A setting it names that ``space``
    searched (the model's size through ``model.widths``, augmentation through ``augment.*`` keys) is said to be
    varied already, with the best trial's values, and the change is to the space's values; the others are named as
    a user changes them for another search: ``--epochs``, ``--set``, ``--no-augment``, or ``[fixed]`` when the space
    sets them there. Each is another search, which the search folder (``best_run``'s parent) refuses as one with
    other settings: the advice says to give it a new ``--out``, or ``--overwrite`` to start the folder over (in
    ``wording``, :func:`run_search`'s: ``out`` and ``overwrite=True`` for a Python caller). ``space`` is the space
    searched (:attr:`SearchResult.space`: a hyperparameter it did not search varied nothing);
    ``best_config`` the best run's settings (whether it augmented).
    """
    from .trainer import augments

    sized = [p for p in space.searched if MODEL_SIZE_KEY in p.keys]
    augmenting = [p for p in space.searched if any(key.startswith(AUGMENT_PREFIX) for key in p.keys)]

    def model(size: str) -> str:
        if sized:
            return _varied(space, sized, best, f"a {size} model", size)
        return f"a {size} model ({_changed_in(space, MODEL_SIZE_KEY, '--set ' + MODEL_SIZE_KEY)})"

    stronger = (_varied(space, augmenting, best, "stronger augmentation", "stronger") if augmenting
                else augmentation_advice(augments(best_config)))
    weaker = (_varied(space, augmenting, best, "weaker augmentation", "weaker") if augmenting
              else "--no-augment to check what augmentation costs the best run")
    epochs = f"more epochs for the best run ({_changed_in(space, 'train.epochs', '--epochs')})"
    return FitWording(model=f"the best trial's configuration (trial {best.trial_id}, retrained in {best_run})",
                      overfit_remedies=f"{stronger}, {model('smaller')} or more training data",
                      underfit_remedies=f"{epochs}, {model('larger')}, or {weaker}",
                      rerun=f"in a new search: a new {wording.out}, or {wording.overwrite} to start {best_run.parent} "
                            f"over; the same {wording.out} with other settings is refused")


def _serve(tuner: Any, out: Path, worker_timeout: float, search_kwargs: dict[str, Any],
           log: Callable[[str], None], wording: Wording = COMMAND) -> None:
    """Chief: serve the oracle in a thread until every trial is done, releasing silent workers (its log names
    the folder, the settings and the flags in ``wording``)."""
    oracle = tuner.oracle
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            tuner.search(**search_kwargs)  # the chief's search serves the oracle over gRPC
        except BaseException as exc:  # e.g. the port is taken
            failure.append(exc)

    _resume_in_flight(oracle, out, log, wording)  # before any worker can ask for a trial
    server = threading.Thread(target=serve, name="oracle-server", daemon=True)
    server.start()
    _write_json_atomic(out / CHIEF_FILE, {"status": "serving", "pid": os.getpid(), "host": socket.gethostname(),
                                          "ip": os.environ["KERASTUNER_ORACLE_IP"],
                                          "port": os.environ["KERASTUNER_ORACLE_PORT"], "started": time.time()})
    log(f"chief: serving the oracle; start workers with KERASTUNER_TUNER_ID=tuner0, tuner1, ... and the same "
        f"{wording.settings} and {wording.out} {out}")
    watch = HeartbeatWatch(out / "workers", worker_timeout)
    while server.is_alive():
        time.sleep(0.5)
        beating = watch.beating()
        for tid, before, now in watch.restarted():  # the chief's log said nothing of a worker started again
            trial_id = oracle.running_trial(tid)
            log(f"chief: worker {tid} started again ({_who(now)}; it was {_who(before)})"
                + (f": trial {trial_id}, which it was running, is handed back to it and runs again from its "
                   f"beginning" if trial_id is not None else ""))
        for tid in watch.silent(oracle.active_tuners()):
            trial_id = oracle.release_tuner(tid, f"worker {tid} sent no heartbeat for {worker_timeout:.0f} s")
            hint = "" if (out / "workers" / tid / HEARTBEAT_FILE).is_file() else \
                f" (it never wrote {out / 'workers' / tid / HEARTBEAT_FILE}: is {wording.out} shared with it?)"
            # with its last worker dead the chief waited on, silent: say that the search waits for one
            alone = "" if [t for t in beating if t != tid] else (
                f"; no other worker's heartbeat in {out / 'workers'} changed for {worker_timeout:.0f} s, so the "
                f"search waits for a worker: start one (KERASTUNER_TUNER_ID={tid} again, with the same "
                f"{wording.settings} and {wording.out} {out})")
            log(f"chief: worker {tid} is silent for {worker_timeout:.0f} s{hint}: released"
                + (f"; trial {trial_id} will run again on the next worker that asks" if trial_id else "") + alone)
        if oracle.finished():
            break
    if failure or not oracle.finished():
        raise SoundTFError(f"the oracle server on {os.environ['KERASTUNER_ORACLE_IP']}:"
                           f"{os.environ['KERASTUNER_ORACLE_PORT']} stopped: {failure[0] if failure else 'unknown'}")
    _write_json_atomic(out / CHIEF_FILE, {"status": "finished", "pid": os.getpid(), "finished": time.time()})
    log("chief: all trials are done")


def _resume_in_flight(oracle: Any, out: Path, log: Callable[[str], None],
                      wording: Wording = COMMAND) -> dict[str, str]:
    """Chief: give the trials that were running when it stopped back to the workers whose heartbeats say they
    still run them (:meth:`SearchOracleMixin.resume_in_flight`; the log names the worker timeout in
    ``wording``)."""
    resumed = oracle.resume_in_flight(lambda tid: _read_heartbeat(out / "workers" / tid / HEARTBEAT_FILE)[1].get(
        "trial_id"))
    for tid, trial_id in resumed.items():
        log(f"chief: worker {tid} was running trial {trial_id} when the chief stopped, and its heartbeat names that "
            f"trial: it stays {tid}'s (and runs again elsewhere only if {tid} is silent for "
            f"{wording.flag('--worker-timeout')})")
    return resumed


# -- command line -------------------------------------------------------------------------------------------------
def default_out(config: Config, space: SearchSpace) -> Path:
    """``runs/tune-<space>-<hash>``: the same command reaches the same folder (and resumes there).

    When that folder does not exist, one an older sound_tf named by its settings then is taken if its
    ``search.json`` holds this search (a setting added since changed the hash; see :func:`_same_search`).
    """
    import hashlib
    key = hashlib.sha1(f"{config.fingerprint()}{space.fingerprint()}".encode()).hexdigest()[:8]
    folder = Path("runs") / f"tune-{space.name}-{key}"
    if not folder.exists():
        identity = search_identity(config, space)
        for older in sorted(Path("runs").glob(f"tune-{glob.escape(space.name)}-" + "[0-9a-f]" * len(key))):
            try:
                saved = json.loads((older / SEARCH_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(saved, dict) and _same_search(saved, identity):
                return older
    return folder


def build_parser() -> argparse.ArgumentParser:
    from .train import add_config_flags
    parser = argparse.ArgumentParser(prog="python -m sound_tf.tune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    parser.add_argument("--tuning", default="default",
                        help="search space: tuning/<name>.toml or a path (default: default)")
    parser.add_argument("--tuner", choices=["hyperband", "bayesian", "random"], help="override [search] tuner")
    parser.add_argument("--max-trials", type=int, help="override [search] max_trials")
    parser.add_argument("--trial-epochs", type=int,
                        help="override [search] epochs (most epochs per trial), capped by the best run's "
                             "train.epochs: the space's [fixed] train.epochs when it sets one, else the pipeline "
                             "recipe's, --epochs or --set")
    parser.add_argument("--time-budget", type=float, metavar="MIN",
                        help="start no new trial after this many minutes (running trials finish)")
    parser.add_argument("--out", type=os.path.expanduser,  # a quoted ~ too: no folder named '~' is made
                        help="results folder (default: runs/tune-<space>-<hash of the settings>)")
    parser.add_argument("--overwrite", action="store_true", help="delete --out and start a fresh search")
    parser.add_argument("--summarize", action="store_true",
                        help="only rewrite trials.csv, trials.png and best_hparams.json from --out")
    parser.add_argument("--no-final", action="store_true", help="do not retrain the best configuration")
    parser.add_argument("--worker-timeout", type=float, default=DEFAULT_WORKER_TIMEOUT_SECONDS, metavar="SECONDS",
                        help="chief: release a worker whose heartbeat stopped this long ago (default: 120)")
    parser.add_argument("--quiet", action="store_true",
                        help="no Keras progress bars (shown only when stdout is a terminal), trial tables or "
                             "TensorFlow's own log lines")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .quiet import native_logs_held, quiet_tensorflow
    from .datasets import check_source
    from .train import config_from_args, setup_logging
    quiet_tensorflow()

    def work() -> int:
        if args.summarize:
            return _summarize(args)
        for flag, value in (("--max-trials", args.max_trials), ("--trial-epochs", args.trial_epochs)):
            if value is not None and value < 1:  # was "search.max_trials must be ...", a name the user never typed
                raise ConfigError(f"{flag} must be at least 1, got {value}")
        notices: list[logging.LogRecord] = []  # shown on stderr as the settings are worked out; tune.log's too
        config = config_from_args(args, notices=notices)
        check_source(config)  # before TensorFlow loads, with KerasTuner, on the next line
        from .hypermodel import SearchSpace  # KerasTuner, and TensorFlow with it
        space = SearchSpace.from_toml(args.tuning).replace_settings(
            tuner=args.tuner, max_trials=args.max_trials, epochs=args.trial_epochs)
        out = Path(args.out) if args.out else default_out(config, space)
        setup_logging(None)
        role = current_role()
        check_search(config, space, time_budget_minutes=args.time_budget, worker_timeout_seconds=args.worker_timeout,
                     resuming=None if args.overwrite else out)
        if role == "worker":  # workers share the chief's folder (each writes under workers/<id>)
            return _search(args, config, space, out, role, notices)
        # before --overwrite empties it
        refuse_foreign_folder(out, marker=SEARCH_FILE, what="search", startup=SEARCH_STARTUP)
        if args.overwrite:
            refuse_emptying(out, config.input_paths())
        with claimed(out, "running a search in it"):  # a second search there used to corrupt or delete it
            if args.overwrite:  # only after every check: nothing is lost to a typo
                best_run = out / "best_run"
                if best_run.is_dir():  # its lock file stays too: e.g. a `train --out .../best_run` may hold it
                    with claimed(best_run, "training in it"):
                        empty_folder(best_run)
                empty_folder(out, keep=("best_run",))
            return _search(args, config, space, out, role, notices)

    # --summarize rewrites two files of a folder, but reads its space with sound_tf.hypermodel, which imports
    # KerasTuner and TensorFlow: their start-up lines (absl's notice and the oneDNN one, twice) were all it
    # printed besides its 'wrote' line. Errors and tracebacks still pass.
    with native_logs_held(args.quiet or args.summarize):
        return run_cli(work)


def _search(args: argparse.Namespace, config: Config, space: SearchSpace, out: Path, role: str,
            notices: Sequence[logging.LogRecord] = ()) -> int:
    """The search of one ``tune`` command, its outputs and log, in a checked (and, but for a worker,
    claimed) ``out``; its log begins with ``notices``, the lines on stderr as its settings were worked out
    (:func:`sound_tf.train.notice`)."""
    from .train import log_earlier, log_file_handler, progress_bars

    log_dir = out / "workers" / tuner_id() if role == "worker" else out
    if role == "worker":  # before its log: a twin refused only on entering its heartbeat wrote into the live one's
        from types import SimpleNamespace
        Heartbeat(log_dir / HEARTBEAT_FILE, SimpleNamespace(tuner_id=tuner_id())).refuse_a_twin()
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = log_file_handler(log_dir / "tune.log")
    logging.getLogger().addHandler(handler)
    log_earlier(handler, notices)
    result = run_search(config, space, out, overwrite=False, time_budget_minutes=args.time_budget,
                        worker_timeout_seconds=args.worker_timeout, final=not args.no_final, log=log.info,
                        verbose=0 if args.quiet else "auto", progress=progress_bars(args.quiet), wording=COMMAND)
    if result.test_metrics:
        from .evaluation import train_class_counts
        from .metrics import summary_lines
        from .trainer import run_validation
        counts = validation = wording = None
        if result.best_run is not None:
            counts = train_class_counts(run_dir=result.best_run)  # advice from training counts
            # the retrained best run's history and kept epoch, as train's summary reads its run's: the gap between
            # validation and test, and whether it overfit or underfit, in the words of a search
            validation = run_validation(result.best_run)
            wording = fit_wording(result.space, result.best, result.best_config, result.best_run)
        for line in summary_lines(result.test_metrics, class_counts=counts, validation=validation,
                                  fit_wording=wording):
            log.info(line)
    if result.best_run is not None:
        log.info(f"best run folder: {result.best_run}")
    if role != "worker" and result.best is None:  # a search that found nothing has failed
        print(f"error: no trial of the search completed; each failed trial's error is in {out / 'trials.csv'}",
              file=sys.stderr)
        return 1
    return 0


def _summarize(args: argparse.Namespace) -> int:
    if not args.out:
        raise ConfigError("--summarize needs --out (the search folder)")
    out = Path(args.out)
    search_file = out / SEARCH_FILE
    if not search_file.is_file():
        raise ConfigError(f"{out}: no {SEARCH_FILE} here; not a search folder")
    saved = json.loads(search_file.read_text())
    import tomllib

    from .hypermodel import SearchSpace

    if saved.get("space_toml"):
        space = SearchSpace.from_dict(tomllib.loads(saved["space_toml"]), source=saved.get("space_source", "?"))
    else:
        space = SearchSpace.from_toml(args.tuning)
    space = space.replace_settings(**{k: v for k, v in saved.get("settings", {}).items()
                                      if k in ("objective", "tuner")})
    config = Config.from_dict(saved["config"]) if saved.get("config") else None
    not_searched = _saved_not_searched(saved, space)
    if not_searched and config is not None:  # the columns and best values of what the search declared
        space = space.without(not_searched, config)
    best = write_summary(out, space, config)
    print(f"wrote {out / 'trials.csv'} and {out / 'trials.png'}"
          + (f"; best trial {best.trial_id}: {space.settings.objective} = {best.score:.4g}" if best else
             "; no completed trial yet"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
