"""The KerasTuner classes of a search (:mod:`sound_tf.tune`): its oracles and tuners.

They subclass KerasTuner's, so this module imports ``keras_tuner`` (and with it TensorFlow); ``tune`` imports it
only when a search makes its tuner, which keeps ``python -m sound_tf.tune --help`` and argument errors free of
TensorFlow's start-up. Each name is still importable from :mod:`sound_tf.tune`, where it was.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import keras_tuner as kt

from .errors import counted
from .tune import ENDED_STATUSES, IDLE_POLL_SECONDS, _write_json_atomic, log, trial_line


# -- oracles: KerasTuner's, plus a time budget, worker bookkeeping and release of dead workers -------------
class SearchOracleMixin:
    """Adds to a KerasTuner oracle: a deadline, who ran each trial, and releasing silent workers.

    ``assignments`` (trial id -> tuner ids that were handed the trial, in order) is saved in
    ``oracle.json``, so the chief's oracle records which worker ran every trial.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline: float | None = None
        self.assignments: dict[str, list[str]] = {}
        self.stopped = False
        self.budget_spent = False
        #: tuner id -> trial id of the trials that were running when the project was saved (see reload()).
        self.in_flight: dict[str, str] = {}

    @kt.synchronized
    def create_trial(self, tuner_id: str):
        if self.deadline is not None and time.time() >= self.deadline and tuner_id not in self.ongoing_trials:
            if not self.budget_spent:
                log.info(f"time budget spent after {counted(len(self.trials), 'trials')}: no new trials; running ones "
                         f"finish")
            self.budget_spent = True
            self.max_trials = max(len(self.trials), 1)  # KerasTuner then answers STOPPED
        trial = super().create_trial(tuner_id)
        if trial.status == "STOPPED" and self.ongoing_trials and not self.budget_spent:
            # Other workers still run trials; if one of them dies its trial comes back to the queue,
            # so keep this worker polling (IDLE) instead of letting it exit.
            self.tuner_ids.add(tuner_id)
            return kt.engine.trial.Trial(self.get_space(), trial_id=trial.trial_id, status="IDLE")
        if trial.status == "RUNNING":
            given = self.assignments.setdefault(trial.trial_id, [])
            if not given or given[-1] != tuner_id:
                given.append(tuner_id)
                self.save()
        elif trial.status == "STOPPED":
            self.stopped = True
        return trial

    @kt.synchronized
    def end_trial(self, trial: Any) -> None:
        # A trial queued to run again may still end: one in flight when the chief restarted (reload() queues
        # every trial saved as ongoing, while its worker still runs it) or one of a worker released as silent
        # that was only slow. It used to stay queued, and was handed out and trained a second time.
        # KerasTuner queues the trial again itself when it retries it (an INVALID trial with retries left).
        if trial.status in ENDED_STATUSES and trial.trial_id in self._retry_queue:
            self._retry_queue = [trial_id for trial_id in self._retry_queue if trial_id != trial.trial_id]
        super().end_trial(trial)

    @kt.synchronized
    def running_trial(self, tuner_id: str) -> str | None:
        """The id of the trial the oracle holds as ``tuner_id``'s (it hands it to that id again), if any."""
        trial = self.ongoing_trials.get(tuner_id)
        return None if trial is None else trial.trial_id

    @kt.synchronized
    def active_tuners(self) -> set[str]:
        """Workers that hold a trial or have not been told to stop."""
        return set(self.tuner_ids) | set(self.ongoing_trials)

    @kt.synchronized
    def release_tuner(self, tuner_id: str, reason: str) -> str | None:
        """Forget a dead worker; its trial (if any) is queued to run again. Returns that trial's id."""
        trial = self.ongoing_trials.pop(tuner_id, None)
        self.tuner_ids.discard(tuner_id)
        if trial is None:
            return None
        trial.message = reason
        if trial.trial_id not in self._retry_queue:
            self._retry_queue.append(trial.trial_id)
        self._save_trial(trial)
        self.save()
        return trial.trial_id

    @kt.synchronized
    def finished(self) -> bool:
        """No trial left to hand out or waiting for a result, and no worker still connected."""
        exhausted = bool(self.max_trials) and len(self.trials) >= self.max_trials and not self._retry_queue
        return (self.stopped or exhausted) and not self.ongoing_trials and not self.tuner_ids

    def reload(self) -> None:
        super().reload()
        # KerasTuner saves oracle.json in end_trial before it drops the ended trial from ongoing_trials, and
        # reload() queues every saved ongoing trial again: re-running a finished distributed search ran its
        # last trial a second time, and a chief without workers waited for it forever.
        # (An INVALID trial in the queue waits for a retry KerasTuner grants it.)
        ended = ("COMPLETED", "FAILED")
        self._retry_queue = [trial_id for trial_id in self._retry_queue
                             if trial_id not in self.trials or self.trials[trial_id].status not in ended]

    @kt.synchronized
    def resume_in_flight(self, running: Callable[[str], str | None]) -> dict[str, str]:
        """A restarted chief: hold the trials that were running as their workers' again, when they still run them.

        reload() queues every trial that was running, to run again; but a worker keeps running its trial while
        the chief is away (KerasTuner's client waits for the oracle to answer again), and the next worker that
        asked for a trial was handed it too and trained it a second time. ``running(tuner_id)`` is the trial
        a worker's heartbeat says it runs; each trial that was running for that worker leaves the queue and
        is that worker's again. A dead worker's heartbeat stays silent, and the chief releases it (its trial
        is queued again) after ``--worker-timeout``, as any silent worker.

        Returns
        -------
        dict
            Tuner id -> trial id of the trials given back to their workers.
        """
        resumed: dict[str, str] = {}
        for tid, trial_id in sorted(self.in_flight.items()):
            trial = self.trials.get(trial_id)
            if trial is None or trial.status != "RUNNING" or trial_id not in self._retry_queue \
                    or tid in self.ongoing_trials or running(tid) != trial_id:
                continue
            self._retry_queue = [queued for queued in self._retry_queue if queued != trial_id]
            self.ongoing_trials[tid] = trial
            self.tuner_ids.add(tid)
            resumed[tid] = trial_id
        self.in_flight = {}
        if resumed:
            self.save()
        return resumed

    def save(self) -> None:
        # KerasTuner writes its JSON files in place: a search killed while it wrote oracle.json (or a trial's
        # trial.json) left the file empty or cut, and every rerun stopped with a JSONDecodeError traceback.
        _write_json_atomic(Path(self._get_oracle_fname()), self.get_state())

    def _save_trial(self, trial: Any) -> None:
        _write_json_atomic(Path(self._get_trial_dir(trial.trial_id)) / "trial.json", trial.get_state())

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["assignments"] = self.assignments
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.assignments = {k: list(v) for k, v in state.get("assignments", {}).items()}
        self.in_flight = {str(k): str(v) for k, v in state.get("ongoing_trials", {}).items()}


class RandomSearchOracle(SearchOracleMixin, kt.oracles.RandomSearchOracle):
    """KerasTuner's random search with :class:`SearchOracleMixin`."""


class BayesianOracle(SearchOracleMixin, kt.oracles.BayesianOptimizationOracle):
    """KerasTuner's Gaussian-process Bayesian optimisation with :class:`SearchOracleMixin`."""


class HyperbandOracle(SearchOracleMixin, kt.oracles.HyperbandOracle):
    """KerasTuner's Hyperband with :class:`SearchOracleMixin`."""


ORACLES = {"random": RandomSearchOracle, "bayesian": BayesianOracle, "hyperband": HyperbandOracle}


class SoundTunerMixin:
    """KerasTuner's Tuner (or Hyperband, for its epochs and warm starts) built on our own oracle.

    Saves each trial's config as ``config.json`` in its trial folder, tracks the running trial for the
    heartbeat, and waits a little between polls while the oracle answers IDLE.
    """

    def __init__(self, oracle: Any, hypermodel: Any, **kwargs: Any) -> None:
        # kt.Hyperband.__init__ would build its own oracle: skip it, keep its run_trial and warm starts.
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)
        self.current_trial_id: str | None = None
        self._asked = self._ran = False
        #: A worker's OracleWatch.answered: a trial handed out is the chief's oracle answering.
        self.oracle_answered: Callable[[str], None] | None = None

    def pre_create_trial(self) -> None:
        # KerasTuner asks again at once after an IDLE answer; wait a little between such polls.
        if self._asked and not self._ran:
            time.sleep(IDLE_POLL_SECONDS)
        self._asked, self._ran = True, False

    def on_trial_begin(self, trial: Any) -> None:
        super().on_trial_begin(trial)
        self.current_trial_id, self._ran = trial.trial_id, True
        if self.oracle_answered is not None:
            self.oracle_answered(trial.trial_id)
        log = getattr(self.hypermodel, "log", None)
        if log is not None:  # the epoch lines that follow are this trial's: tune.log did not say whose they were
            space = getattr(self.hypermodel, "space", None)
            log(trial_line(trial.trial_id, trial.hyperparameters.values,
                           [p.name for p in space.params] if space is not None else ()))
        saved = Path(self.get_trial_dir(trial.trial_id)) / "config.json"
        if log is not None and saved.is_file():  # a restarted worker's trial 0 read as a first run
            log(f"trial {trial.trial_id} was begun before and did not end (its folder holds config.json): it runs "
                f"again from its beginning")
        try:
            config = self.hypermodel.trial_config(trial.hyperparameters.copy())
        except kt.errors.FailedTrialError:
            return  # build() fails the trial with the reason
        config.save(saved)

    def on_trial_end(self, trial: Any) -> None:
        self.current_trial_id = None
        super().on_trial_end(trial)

    def save(self) -> None:
        # as SearchOracleMixin.save: <tuner id>.json, written in place, was empty after a kill at the wrong time
        if not self._is_worker():
            self.oracle.save()
        _write_json_atomic(Path(self._get_tuner_fname()), self.get_state())


class SoundTuner(SoundTunerMixin, kt.Tuner):
    """Random search and Bayesian optimisation."""


class SoundHyperbandTuner(SoundTunerMixin, kt.Hyperband):
    """Hyperband: trials get ``tuner/epochs`` and continue from the checkpoint of an earlier round."""
