"""sound_tf.compare: real runs side by side, their scores as their folders hold them, what differs.

Three tiny runs (3 tone classes at 8 kHz, 0.5-s clips) are trained once for the module: two on the same
split that differ in the learning rate and augmentation, one with a larger test fraction (other test clips).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sound_tf import compare
from sound_tf.config import Config, apply_overrides

SR = 8000
TONES_HZ = {"high": 2200.0, "low": 300.0, "mid": 900.0}


def _tone_tree(root: Path, clips_per_class: int) -> Path:
    rng = np.random.default_rng(0)
    for label, freq in TONES_HZ.items():
        for i in range(clips_per_class):
            t = np.arange(SR // 2) / SR
            wave = 0.3 * np.sin(2 * np.pi * freq * rng.uniform(0.97, 1.03) * t) + 0.02 * rng.standard_normal(t.size)
            (root / label).mkdir(parents=True, exist_ok=True)
            sf.write(root / label / f"{label}_{i}.wav", wave.astype(np.float32), SR, subtype="PCM_16")
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _name(path: Path) -> str:
    """A run as compare names it in its table, its lines and --csv: relative to the current folder when it is
    inside it (pytest run from /tmp, whose tmp_path is there too), else its path as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _settings(data: Path) -> dict[str, object]:
    """The runs' settings: a small model, 3 epochs on the tones in ``data``."""
    return {"data.path": str(data), "data.format": "folder", "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5,
            "model.widths": [8, 16], "train.epochs": 3, "train.batch_size": 8, "train.learning_rate": 0.02,
            "train.warmup_epochs": 0, "augment.enabled": False}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    from sound_tf.trainer import train_run

    root = tmp_path_factory.mktemp("compare")
    base = _settings(_tone_tree(root / "data", 8))
    variants = {"a": {}, "b": {"train.learning_rate": 0.005, "augment.enabled": True},
                "c": {"data.test_fraction": 0.3}}
    out = {}
    for name, overrides in variants.items():
        train_run(apply_overrides(Config(), {**base, **overrides}), root / "runs" / name, verbose=0,
                  log=lambda message: None)
        out[name] = root / "runs" / name
    return out


def _test_rows(run: Path) -> list[dict[str, str]]:
    return [row for row in _rows(run / "split.csv") if row["split"] == "test"]


@pytest.fixture(scope="module")
def crossval_run(runs, tmp_path_factory) -> Path:
    """A real 3-fold cross-validation on the runs' tones (8 clips a fold), its folds 2 epochs each."""
    from sound_tf.crossval import run_crossval

    out = tmp_path_factory.mktemp("crossval") / "cv"
    data = json.loads((runs["a"] / "config.json").read_text())["data"]["path"]
    run_crossval(apply_overrides(Config(), {**_settings(Path(data)), "train.epochs": 2}), out, k=3,
                 log=lambda message: None)
    return out


def _stopped_in_fold_3(crossval_run: Path, to: Path) -> Path:
    """What a crossval killed in the first epoch of its third fold leaves (as SIGKILL in fold 2 of an FSDD crossval
    left it): no crossval.json (written once the folds end); fold_3 running, without seconds or metrics.json, its
    history.csv empty."""
    folder = _copy(crossval_run, to)
    for name in ("crossval.json", "crossval.csv", "report.html"):
        (folder / name).unlink()
    fold = folder / "fold_3"
    (fold / "metrics.json").unlink()
    (fold / "history.csv").write_text("", encoding="utf-8")
    state = json.loads((fold / "run_state.json").read_text())
    (fold / "run_state.json").write_text(json.dumps({"status": "running", "fingerprint": state["fingerprint"],
                                                     "started": state["started"]}), encoding="utf-8")
    return folder


def test_table_holds_each_runs_own_numbers(runs, capsys):
    assert compare.main([str(runs["a"]), str(runs["b"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in ("a", "b"):
        run = runs[name]
        metrics = json.loads((run / "metrics.json").read_text())
        history = _rows(run / "history.csv")
        losses = [float(row["val_loss"]) for row in history]
        row = next(line for line in lines if line.startswith(_name(run)))
        cells = row.split()
        assert cells[1:4] == ["run", "done", str(len(history))]
        assert cells[4] == str(int(np.argmin(losses)) + 1)  # the epoch whose weights were kept
        assert cells[5] == str(len(_test_rows(run))) == str(metrics["num_examples"])
        assert cells[6] == f"{100 * metrics['accuracy']:.2f}%"
        assert cells[7] == f"{100 * metrics['balanced_accuracy']:.2f}%"
        assert cells[8] == f"{metrics['macro_f1']:.3f}"
        assert cells[9] == f"{json.loads((run / 'run_state.json').read_text())['seconds']:.0f}"
    # Only what the two runs were given differently, each run's value in order; the same test clips.
    start = next(i for i, line in enumerate(lines) if line.startswith("settings that differ"))
    end = next(i for i, line in enumerate(lines) if i > start and not line.startswith("  "))
    differ = {line.split()[0]: line.split(None, 1)[1] for line in lines[start + 1:end]}
    assert differ == {"augment.enabled": "false | true", "train.learning_rate": "0.02 | 0.005"}
    # the same test clips: compared clip by clip below, each run by its folder's name after a legend of its path
    assert lines[end:end + 3] == ["runs in the paired-over-test-clips blocks below, by the end of their folder:",
                                  f"  a  {_name(runs['a'])}", f"  b  {_name(runs['b'])}"]
    assert lines[end + 3].startswith("paired over test clips: b against a,")
    # no note but, when fewer than 6 clips tell the two apart, the McNemar test's smallest p
    assert not any(line.startswith("note:") and "exact McNemar test gives no p below" not in line for line in lines)


def test_other_test_clips_are_named_and_csv_keeps_numbers(runs, tmp_path, capsys):
    target = tmp_path / "table.csv"
    assert compare.main([str(runs["a"]), str(runs["c"]), "--csv", str(target)]) == 0
    out = capsys.readouterr().out
    assert len(_test_rows(runs["a"])) != len(_test_rows(runs["c"]))
    assert "note: 2 different sets of test clips (column test set): runs of different letters do not measure the " \
           "same thing (other data or another split)" in out
    assert "?" not in out and "data.split_file" not in out  # the seed is the same: no word about it
    table = out.splitlines()
    assert re.split(r"\s{2,}", table[0])[:7] == ["run", "kind", "status", "epochs", "best", "test clips", "test set"]
    assert [line.split()[6] for line in table[1:3]] == ["A", "B"]
    rows = _rows(target)
    assert [row["run"] for row in rows] == [_name(runs["a"]), _name(runs["c"])]
    assert [row["test_set"] for row in rows] == ["A", "B"]
    for row, name in zip(rows, "ac"):
        metrics = json.loads((runs[name] / "metrics.json").read_text())
        assert float(row["accuracy"]) == pytest.approx(metrics["accuracy"], abs=1e-12)
        assert float(row["macro_f1"]) == pytest.approx(metrics["macro_f1"], abs=1e-12)
        assert int(row["test_clips"]) == metrics["num_examples"]
    assert [row["data.test_fraction"] for row in rows] == ["0.15", "0.3"]
    assert set(rows[0]) == {*compare.CSV_COLUMNS, "accuracy_std", "balanced_accuracy_std", "macro_f1_std",
                            "data.test_fraction"}


def test_a_folder_of_runs_and_the_same_run_twice(runs, capsys):
    parent = runs["a"].parent
    assert compare.main([str(parent), str(runs["b"])]) == 0  # b is inside parent: listed once
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split()[0] for line in lines[1:] if line.startswith(_name(parent))]
    assert listed == [_name(runs[name]) for name in "abc"]
    assert compare.main([str(runs["a"])]) == 0
    assert "one run: no other to compare its settings with" in capsys.readouterr().out


def test_a_tuning_jobs_best_run_is_found_two_levels_down(runs, tmp_path, capsys):
    tree = tmp_path / "runs"
    shutil.copytree(runs["a"], tree / "tune-job" / "best_run", ignore=shutil.ignore_patterns(".lock"))
    shutil.copytree(runs["b"], tree / "tune-job" / "search" / "trial_0" / "run", ignore=shutil.ignore_patterns(".lock"))
    shutil.copytree(runs["c"], tree / "plain", ignore=shutil.ignore_patterns(".lock"))
    assert compare.main([str(tree)]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:] if line.startswith(_name(tree))]
    assert listed == [_name(tree / "plain"), _name(tree / "tune-job" / "best_run")]  # not three levels down


def test_unreadable_run_is_named_and_left_out(runs, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(runs["b"], broken, ignore=shutil.ignore_patterns(".lock"))
    (broken / "metrics.json").write_text('{"accuracy": 0.9,', encoding="utf-8")  # cut short
    assert compare.main([str(runs["a"]), str(broken)]) == 0
    captured = capsys.readouterr()
    assert f"{broken / 'metrics.json'}: not valid JSON" in captured.err and "is left out" in captured.err
    assert _name(broken) not in captured.out and _name(runs["a"]) in captured.out
    assert compare.main([str(broken)]) == 2
    assert "error: no run could be read" in capsys.readouterr().err


@pytest.mark.parametrize("make, problem", [
    (lambda root: root / "missing", "no such folder"),
    (lambda root: (root / "file.txt").write_text("x") and root / "file.txt", "a file, not a folder"),
    (lambda root: (root / "empty").mkdir() or root / "empty", "no run here"),
])
def test_folders_without_runs_are_refused(tmp_path, capsys, make, problem):
    path = make(tmp_path)
    assert compare.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {problem}")


def test_crossval_folder_shows_the_mean_and_spread(runs, tmp_path, capsys):
    """A cross-validation's folder: crossval.json's mean +- std over folds and its fold count."""
    folder = tmp_path / "cv"
    folder.mkdir()
    shutil.copy(runs["a"] / "config.json", folder / "config.json")
    per_fold = [0.8, 0.9, 0.7]
    summary = {"complete": False, "folds": [1, 2, 3], "num_folds": 2, "folds_done": [1, 2], "num_examples": 24,
               "labels": sorted(TONES_HZ),
               "mean": {"accuracy": float(np.mean(per_fold[:2])), "macro_f1": 0.8},
               "std": {"accuracy": float(np.std(per_fold[:2])), "macro_f1": 0.05}}
    (folder / "crossval.json").write_text(json.dumps(summary), encoding="utf-8")
    assert compare.main([str(folder), str(runs["a"])]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(_name(folder)))
    assert "crossval  2 of 3 folds" in row
    assert f"{100 * np.mean(per_fold[:2]):.2f}% +-{100 * np.std(per_fold[:2]):.2f}" in row
    assert "0.800 +-0.050" in row


def test_a_crossval_names_where_validation_came_from_and_compare_shows_val_from(crossval_run, tmp_path, capsys):
    """Each fold's report says where its validation came from (its dataset table's split source, as its log line),
    crossval.json and the summary report say it for every fold, and compare shows data.val_from among the settings
    that differ (from config.json). The 3-fold crossval of the tones: fold 1 validates on fold 3, the one before it;
    a copy of it told data.val_from 'training' (its summary written again) says so."""
    from sound_tf.crossval import summarise

    assert json.loads((crossval_run / "crossval.json").read_text())["validation"] == (
        "the fold before each test fold (data.val_from fold)")
    assert ("cross-validation (stratified group k-fold), test fold 1, validation fold 3 (data.val_from fold)"
            in (crossval_run / "fold_1" / "report.html").read_text(encoding="utf-8"))
    drawn = _copy(crossval_run, tmp_path / "drawn")
    for path in [drawn / "config.json", *drawn.glob("fold_*/config.json")]:
        config = json.loads(path.read_text(encoding="utf-8"))
        config["data"]["val_from"] = "training"
        path.write_text(json.dumps(config), encoding="utf-8")
    summarise(drawn, [1, 2, 3], log=lambda line: None)
    told = "a data.val_fraction 0.15 of the folds but the test fold, group-aware (data.val_from training)"
    assert json.loads((drawn / "crossval.json").read_text())["validation"] == told
    assert told in (drawn / "report.html").read_text(encoding="utf-8")
    assert compare.main([str(crossval_run), str(drawn)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"data\.val_from\s+fold \| training", out), out


def test_compare_never_imports_tensorflow(runs):
    code = ("import sys; from sound_tf import compare; "
            f"assert compare.main([{str(runs['a'])!r}, {str(runs['b'])!r}]) == 0; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "settings that differ" in done.stdout


def test_csv_never_replaces_a_file_it_did_not_write(runs, tmp_path, capsys):
    """--csv given a run's own split.csv (a slip of the shell's completion) left the run without its split."""
    run = tmp_path / "run"
    shutil.copytree(runs["a"], run, ignore=shutil.ignore_patterns(".lock"))
    split = (run / "split.csv").read_bytes()
    assert compare.main([str(run), str(runs["b"]), "--csv", str(run / "split.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --csv {run / 'split.csv'}: exists and is not a table compare wrote "
                          f"(its first line: 'split,path,label,fold,group')")
    assert (run / "split.csv").read_bytes() == split
    # A table compare wrote is replaced by the next one, with the runs now given.
    table = tmp_path / "table.csv"
    assert compare.main([str(run), str(runs["b"]), "--csv", str(table)]) == 0
    assert compare.main([str(runs["b"]), "--csv", str(table)]) == 0
    assert [row["run"] for row in _rows(table)] == [_name(runs["b"])]
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert compare.main([str(run), "--csv", str(folder)]) == 2
    assert f"--csv {folder}: a folder" in capsys.readouterr().err


def test_a_tuning_searchs_trial_is_refused_naming_its_trials_csv_and_its_best_run(runs, tmp_path, capsys):
    """A trial folder (config.json, trial.json: no run_state.json, no test scores) read 'no run here: neither it nor a
    folder inside it ... holds config.json with run_state.json (train) or crossval.json (crossval)', with no word of
    trials.csv; the search's best run alone now says where its trials stand side by side."""
    search = tmp_path / "tune-job"
    trial = search / "search" / "trial_0"
    trial.mkdir(parents=True)
    (search / "search.json").write_text("{}")
    shutil.copy(runs["a"] / "config.json", trial / "config.json")
    (trial / "trial.json").write_text("{}")
    ends = (f"side by side in {search / 'trials.csv'} (best first; `python -m sound_tf.tune --out {search} --summarize`"
            f" writes it again); the run compare reads is the search's retrained best run, {search / 'best_run'} "
            f"(trained when the search ends, unless --no-final)\n")
    for given, what in [(trial, f"a trial of the tuning search {search}"),
                        (search / "search", f"the KerasTuner project of the tuning search {search}"),
                        (search, "a tuning search with no best_run/ yet")]:
        assert compare.main([str(given)]) == 2
        assert capsys.readouterr().err == (f"error: {given}: {what}, not a run: trials are scored on the validation "
                                           f"split alone, {ends}")
    _copy(runs["a"], search / "best_run")
    assert compare.main([str(search)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "one run: no other to compare its settings with (the best run of a tuning search: its trials, scored on the "
        f"validation split, are side by side in {search / 'trials.csv'})")
    (search / "search.json").unlink()  # a folder of one run, not a search's: as before
    assert compare.main([str(search)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "one run: no other to compare its settings with"


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, ignore=shutil.ignore_patterns(".lock"))
    return to


@pytest.mark.parametrize("name", ["metrics.json", "config.json", "split.csv", "history.csv", "run_state.json"])
def test_a_file_that_cannot_be_read_leaves_its_run_out(runs, tmp_path, capsys, monkeypatch, name):
    """A file without read permission (chmod 000 binds no root, so the refusal is made here) stopped the whole
    command ('error: .../metrics.json: Permission denied', exit 2) instead of leaving that one run out."""
    run = _copy(runs["b"], tmp_path / "runs" / "b")
    _copy(runs["a"], tmp_path / "runs" / "a")
    denied = run / name
    real_open = Path.open

    def refusing_open(self, *args, **kwargs):
        if self == denied:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)
    assert compare.main([str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"warning: {denied}: cannot be read (Permission denied); {run} is left out\n"
    listed = [line.split()[0] for line in captured.out.splitlines()[1:] if line.startswith(_name(tmp_path))]
    assert listed == [_name(tmp_path / "runs" / "a")]


def test_a_subfolder_that_cannot_be_listed_is_named_and_the_others_compared(runs, tmp_path, capsys, monkeypatch):
    tree = tmp_path / "runs"
    _copy(runs["a"], tree / "a")
    _copy(runs["b"], tree / "locked" / "b")
    real_iterdir = Path.iterdir

    def refusing_iterdir(self):
        if self == tree / "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refusing_iterdir)
    assert compare.main([str(tree)]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(f"warning: {tree / 'locked'}: cannot be read (Permission denied)")
    assert [line.split()[0] for line in captured.out.splitlines()[1:2]] == [_name(tree / "a")]


@pytest.mark.parametrize("name, text, problem", [
    ("history.csv", "hello, world\n", "no column epoch; its first line: 'hello, world'"),
    ("history.csv", "[1, 2, 3]\n", "no column epoch; its first line: '[1, 2, 3]'"),
    ("split.csv", "", "no column split, path, label; it is empty"),
    ("split.csv", '{"split": "test"}\n', "no column split, path, label; its first line: '{\"split\": \"test\"}'"),
])
def test_a_csv_file_not_in_its_format_leaves_its_run_out(runs, tmp_path, capsys, name, text, problem):
    """A history.csv that is not Keras' showed the run with 0 epochs, and a split.csv without its columns
    made its test clips unknown ('?'), without a word about the file."""
    run = _copy(runs["b"], tmp_path / "b")
    (run / name).write_text(text, encoding="utf-8")
    assert compare.main([str(runs["a"]), str(run)]) == 0
    captured = capsys.readouterr()
    assert captured.err == (f"warning: {run / name}: not the file sound_tf writes there ({problem}); "
                            f"{run} is left out\n")
    assert _name(run) not in captured.out


@pytest.mark.parametrize("history", ["empty", "header"])
def test_a_run_killed_in_its_first_epoch_is_0_of_its_epochs_without_scores(runs, tmp_path, capsys, history):
    """Keras' CSVLogger creates history.csv as training begins and writes its header with epoch 1's row, so a run
    killed in its first epoch holds it empty (fold_2 of an FSDD crossval SIGKILLed there), or with its header alone
    (a resume's trim): '0 of 3' as other unfinished runs, not '0' as a run that trained none, its scores and
    seconds blank in the table and in --csv, not 0. Its files are those that kill left."""
    run = tmp_path / "killed"
    run.mkdir()
    for name in ("config.json", "labels.txt", "split.csv", "skipped.csv"):
        shutil.copy(runs["b"] / name, run / name)
    state = json.loads((runs["b"] / "run_state.json").read_text())
    (run / "run_state.json").write_text(json.dumps({"status": "running", "fingerprint": state["fingerprint"],
                                                    "started": state["started"]}), encoding="utf-8")
    header = (runs["b"] / "history.csv").read_text().splitlines()[0]
    (run / "history.csv").write_text("" if history == "empty" else header + "\r\n", encoding="utf-8")
    epochs = json.loads((run / "config.json").read_text())["train"]["epochs"]
    table = tmp_path / "table.csv"
    assert compare.main([str(run), str(runs["a"]), "--csv", str(table)]) == 0
    row = re.split(r"\s{2,}", capsys.readouterr().out.splitlines()[1])
    assert row == [_name(run), "run", "stopped", f"0 of {epochs}", "-", "-", "-", "-", "-", "-", "-"]
    written = _rows(table)[0]
    assert [written[name] for name in ("status", "epochs", "epochs_planned", "best_epoch", "test_clips", "accuracy",
                                       "balanced_accuracy", "macro_f1", "train_seconds")] == \
        ["stopped", "0", str(epochs), "", "", "", "", "", ""]


def test_test_sets_are_a_column_with_a_letter_each(runs, tmp_path, capsys):
    """With many runs the note listed every run with its letter on one line; a run whose folder lists no test
    clip, given first, took letter A's place, so the others began at B ('a: ?, b: B')."""
    lost = _copy(runs["b"], tmp_path / "lost")
    (lost / "split.csv").unlink()
    seed = _copy(runs["c"], tmp_path / "seed")
    config = json.loads((seed / "config.json").read_text())
    config["train"]["seed"] = 7
    (seed / "config.json").write_text(json.dumps(config), encoding="utf-8")
    target = tmp_path / "table.csv"
    assert compare.main([str(lost), str(runs["a"]), str(runs["b"]), str(seed), "--csv", str(target)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[6] for line in lines[1:5]] == ["?", "A", "A", "B"]  # b and a share their test clips
    note = next(i for i, line in enumerate(lines) if line.startswith("note:"))
    assert lines[note].startswith("note: 2 different sets of test clips (column test set; ?: its folder lists no "
                                  "test clip): runs of different letters do not measure the same thing")
    assert lines[note + 1].strip().startswith("a seed draws its own split") and "data.split_file" in lines[note + 1]
    assert all(len(line) <= 200 for line in lines[note:])
    assert f"not paired over test clips: {lost}, the first run given, lists no test clip (split.csv)" in lines
    assert [row["test_set"] for row in _rows(target)] == ["", "A", "A", "B"]


def _with_seed(run: Path, to: Path, seed: int) -> Path:
    _copy(run, to)
    config = json.loads((to / "config.json").read_text())
    config["train"]["seed"] = seed
    (to / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return to


def _settings_count(run: Path) -> int:
    """How many settings a run's config.json holds (the 'N of M' of compare's settings lines), counted from the
    file: the config gains settings (session 50's five data.* ones made 67 into 72)."""
    return len(compare.flat_settings(json.loads((run / "config.json").read_text(encoding="utf-8"))))


def test_settings_of_many_runs_give_each_value_its_runs(runs, tmp_path, capsys):
    """Beyond four runs each setting that differs lists its values with their runs: with 11 runs the line
    'train.seed  0 | 0 | 1 | 2 | 0 | 0 | 0 | 0 | 1 | 2 | 0' had to be counted against the table."""
    seeds = [_with_seed(runs["a"], tmp_path / f"s{seed}", seed) for seed in (1, 2, 3)]
    a, b, c = (_name(runs[name]) for name in "abc")
    assert compare.main([a, b, c, *map(str, seeds)]) == 0
    lines = capsys.readouterr().out.splitlines()
    total = _settings_count(runs["a"])
    start = lines.index(f"settings that differ (4 of {total}; each value with its runs, the most common last):")
    s1, s2, s3 = map(_name, seeds)
    assert lines[start + 1:start + 5] == [
        f"  augment.enabled      true: {b}; false: the other 5",
        f"  data.test_fraction   0.3: {c}; 0.15: the other 5",
        f"  train.learning_rate  0.005: {b}; 0.02: the other 5",
        f"  train.seed           1: {s1}; 2: {s2}; 3: {s3}; 0: the other 3",
    ]
    assert compare.by_value(["1", "2", "3"], ["x", "y", "z"]) == "1: x; 2: y; 3: z"  # no value is common


def test_runs_that_differ_in_the_seed_alone_are_averaged(runs, tmp_path, capsys):
    """An ablation's answer is each arm's mean over seeds with its spread; the table left it to the user."""
    scores = {1: (0.5, 0.45, 0.4), 2: (0.8, 0.75, 0.7)}  # accuracy, balanced accuracy, macro F1 of the copies
    copies = []
    for seed, (accuracy, balanced, f1) in scores.items():
        run = _with_seed(runs["a"], tmp_path / f"a{seed}", seed)
        metrics = json.loads((run / "metrics.json").read_text())
        metrics.update(accuracy=accuracy, balanced_accuracy=balanced, macro_f1=f1)
        (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        copies.append(run)
    b1 = _with_seed(runs["b"], tmp_path / "b1", 1)
    assert compare.main([str(runs["a"]), str(runs["b"]), str(runs["c"]), *map(str, copies), str(b1)]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("over seeds: runs whose settings differ in train.seed alone, their test scores' mean +- std:")
    header, arm_a, arm_b = (re.split(r"\s{2,}", line.strip()) for line in lines[start + 1:start + 4])
    assert header == ["accuracy", "balanced acc.", "macro F1", "seeds", "runs"]
    own = {name: json.loads((runs[name] / "metrics.json").read_text()) for name in "ab"}
    for arm, values, seeds, members in (
            (arm_a, [(own["a"]["accuracy"], own["a"]["balanced_accuracy"], own["a"]["macro_f1"]), *scores.values()],
             "0, 1, 2", [runs["a"], *copies]),
            (arm_b, [(own["b"]["accuracy"], own["b"]["balanced_accuracy"], own["b"]["macro_f1"])] * 2, "0, 1",
             [runs["b"], b1])):
        columns = np.array(values).T
        assert arm[0] == f"{100 * columns[0].mean():.2f}% +-{100 * columns[0].std():.2f}"
        assert arm[1] == f"{100 * columns[1].mean():.2f}% +-{100 * columns[1].std():.2f}"
        assert arm[2] == f"{columns[2].mean():.3f} +-{columns[2].std():.3f}"
        assert arm[3:] == [seeds, ", ".join(map(_name, members))]
    assert len(lines) == start + 4  # c, on other test clips with another test fraction, has no arm of its own


def test_runs_of_one_seed_are_no_arm_over_seeds(runs, tmp_path, capsys):
    """The same command run twice (the walkthrough of session 46: a run and its rerun after a Ctrl-C, both seed
    0) was summed up 'over seeds' as '70.83% +-0.00 ... seeds 0, 0': a spread of nothing over one seed. Such runs
    differ in no setting and are no arm; one run of another seed makes them one, the repeat counted once."""
    again = _copy(runs["a"], tmp_path / "again")
    assert compare.main([str(runs["a"]), str(again)]) == 0
    out = capsys.readouterr().out
    assert "over seeds" not in out and "settings: the same" in out
    seed1 = _with_seed(runs["a"], tmp_path / "s1", 1)
    assert compare.main([str(runs["a"]), str(again), str(seed1)]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("over seeds: runs whose settings differ in train.seed alone, their test scores' mean +- std:")
    assert lines[start + 2].endswith(f"0, 1   {_name(again)}, {_name(seed1)}")  # the copy: the same time, given last
    assert lines[start + 3] == (f"  1 repeat of a seed left out (a seed repeats its run, so it counts once, its "
                                f"newest run): {_name(runs['a'])} (seed 0)")


def test_repeats_of_a_seed_count_once_its_newest_run(runs, tmp_path, capsys):
    """The walkthrough of session 47: four runs of seeds 1, 1, 1, 2 were averaged over four values, though a run
    reproduces from its seed: three were one sample counted three times, and the spread was understated (here
    57.50% +-12.99 where seeds 1 and 2 give 65.00% +-15.00). Each seed counts once, its newest finished run; a
    line names the repeats left out."""
    made = []
    for name, seed, accuracy in (("r1", 1, 0.5), ("r1b", 1, 0.5), ("r1c", 1, 0.5), ("r2", 2, 0.8)):
        run = _with_seed(runs["a"], tmp_path / name, seed)
        metrics = json.loads((run / "metrics.json").read_text())
        metrics.update(accuracy=accuracy, balanced_accuracy=accuracy, macro_f1=accuracy)
        (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
        made.append(run)
    r1, r1b, r1c, r2 = made
    os.utime(r1 / "metrics.json", (2e9, 2e9))  # the first given is the newest of seed 1
    os.utime(r1b / "metrics.json", (1e9, 1e9))
    os.utime(r1c / "metrics.json", (1e9, 1e9))
    assert compare.main(list(map(str, made))) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("over seeds: runs whose settings differ in train.seed alone, their test scores' mean +- std:")
    arm = re.split(r"\s{2,}", lines[start + 2].strip())
    assert arm == ["65.00% +-15.00", "65.00% +-15.00", "0.650 +-0.150", "1, 2", f"{_name(r1)}, {_name(r2)}"]
    assert lines[start + 3] == (f"  2 repeats of a seed left out (a seed repeats its run, so it counts once, its "
                                f"newest run): {_name(r1b)} (seed 1), {_name(r1c)} (seed 1)")
    # a finished run is kept before a newer one that is not done (its metrics.json from before a resume)
    state = json.loads((r1 / "run_state.json").read_text())
    (r1 / "run_state.json").write_text(json.dumps({**state, "status": "running"}), encoding="utf-8")
    summaries = [compare.summarise(run) for run in made]
    assert compare.one_per_seed(summaries, [0, 1, 2, 3]) == ([2, 3], [0, 1])  # r1c: as new as r1b, given later


def test_a_quoted_tilde_is_the_home_folder(runs, tmp_path, capsys, monkeypatch):
    """--csv '~/x.csv' was the home folder's and a run given as '~/runs/a' 'no such folder'."""
    monkeypatch.setenv("HOME", str(tmp_path))
    _copy(runs["a"], tmp_path / "runs" / "a")
    _copy(runs["b"], tmp_path / "runs" / "b")
    monkeypatch.chdir(runs["a"])  # elsewhere: the runs are named by their full paths
    assert compare.main(["~/runs/a", "~/runs", "--csv", "~/table.csv"]) == 0
    out = capsys.readouterr().out
    assert [row["run"] for row in _rows(tmp_path / "table.csv")] == [str(tmp_path / "runs" / name) for name in "ab"]
    assert "  augment.enabled      false | true\n" in out


def test_a_run_folder_that_lost_a_file_is_named_not_skipped(runs, tmp_path, capsys):
    """In a folder of runs, one without its config.json or run_state.json vanished from the table unnamed."""
    tree = tmp_path / "runs"
    _copy(runs["a"], tree / "a")
    (_copy(runs["b"], tree / "b") / "config.json").unlink()
    (_copy(runs["c"], tree / "c") / "run_state.json").unlink()
    bundle = tree / "bundle"  # an export bundle beside them is no run and says nothing
    bundle.mkdir()
    shutil.copy(runs["a"] / "config.json", bundle)
    (bundle / "export.json").write_text("{}", encoding="utf-8")
    assert compare.main([str(tree)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"warning: {tree / 'b'}: left out: it holds a train run's run_state.json, metrics.json, history.csv, "
        f"model.keras but no config.json (deleted, or the run stopped as it began)",
        f"warning: {tree / 'c'}: left out: it holds a train run's metrics.json, history.csv, model.keras but no "
        f"run_state.json (deleted, or the run stopped as it began)"]
    assert [line.split()[0] for line in captured.out.splitlines()[1:2]] == [_name(tree / "a")]


def _noise_runs(runs, tmp_path, before, after):
    """Copies of run a: 'old' mixed in the noise folder ``before``, 'new' and 'new1' (seed 1) ``after``, and
    ('resumed', its warning): old's copy resumed at epoch 2 on ``after``."""
    from sound_tf.trainer import record_noise

    old, new, new_seed = (_copy(runs["a"], tmp_path / "old"), _copy(runs["a"], tmp_path / "new"),
                          _with_seed(runs["a"], tmp_path / "new1", 1))
    record_noise(old, before, first_epoch=1, epochs=3)
    for run in (new, new_seed):
        record_noise(run, after, first_epoch=1, epochs=3)
    resumed = _copy(old, tmp_path / "resumed")
    return old, new, new_seed, (resumed, record_noise(resumed, after, first_epoch=2, epochs=3))


def test_runs_that_mixed_in_other_noise_recordings_differ(runs, tmp_path, capsys):
    """config.json names augment.noise_dir, not its files: runs trained on the folder before and after a file was
    added compared as 'settings: the same', and runs of two seeds on other noise were one arm."""
    from sound_tf.augment import NoiseFolder

    files = {"n0.wav": (32044, 1), "n1.wav": (32044, 2), "n2.wav": (32044, 3)}
    before = NoiseFolder(folder="/data/noise", files=files, seconds=6.0)
    after = NoiseFolder(folder="/data/noise", files={**files, "n3.wav": (48044, 4)}, seconds=9.0)
    old, new, new_seed, resumed = _noise_runs(runs, tmp_path, before, after)
    assert resumed[1].startswith("warning: augment.noise_dir")
    resumed = resumed[0]
    assert compare.main([str(old), str(new), str(new_seed)]) == 0
    lines = capsys.readouterr().out.splitlines()
    noise = next(line for line in lines if line.startswith("  augment.noise_dir files")).split(None, 2)[2]
    first, second, third = noise.split(" | ")
    assert first.startswith("3 files, 6.0 s [") and second.startswith("4 files, 9.0 s [") and second == third
    assert compare.summarise(resumed).settings["augment.noise_dir files"] == f"{first}, then from epoch 2: {second}"
    arm = lines[lines.index("over seeds: runs whose settings differ in train.seed alone, their test scores' mean "
                            "+- std:") + 2]
    assert arm.endswith(f"0, 1   {_name(new)}, {_name(new_seed)}")  # not old: other noise


def test_runs_that_mixed_in_a_noise_file_rewritten_with_its_size_and_time_differ(runs, tmp_path, capsys):
    """noise.json keeps each file's hash, but the tag of 'augment.noise_dir files' was a digest of names, sizes and
    times: a run resumed after b.wav was rewritten with its size and time read '2 files, 4.0 s [390b1ac0], then from
    epoch 2: 2 files, 4.0 s [390b1ac0]', and runs of two seeds on other content were one arm."""
    from sound_tf.augment import NoiseFolder
    from sound_tf.trainer import record_noise

    files = {"a.wav": (64044, 1), "b.wav": (64044, 2)}
    before = NoiseFolder(folder="/data/noise", files=files, seconds=4.0, hashes={"a.wav": "1" * 32, "b.wav": "2" * 32})
    after = NoiseFolder(folder="/data/noise", files=files, seconds=4.0, hashes={"a.wav": "1" * 32, "b.wav": "3" * 32})
    old, new, new_seed, resumed = _noise_runs(runs, tmp_path, before, after)
    assert "1 file changed (b.wav)" in resumed[1]
    resumed = resumed[0]
    first, second = (compare.summarise(run).settings["augment.noise_dir files"] for run in (old, new))
    assert first.startswith("2 files, 4.0 s [") and second.startswith("2 files, 4.0 s [") and first != second
    assert compare.summarise(resumed).settings["augment.noise_dir files"] == f"{first}, then from epoch 2: {second}"
    unhashed = NoiseFolder(folder="/data/noise", files=files, seconds=4.0)  # a record from before the hashes
    plain = _copy(runs["a"], tmp_path / "plain")
    record_noise(plain, unhashed, first_epoch=1, epochs=3)
    assert compare.summarise(plain).settings["augment.noise_dir files"] == "2 files, 4.0 s [" + hashlib.sha256(
        json.dumps([{name: list(entry) for name, entry in files.items()}, []], sort_keys=True).encode()
    ).hexdigest()[:8] + "]"  # its tag as before
    assert compare.main([str(old), str(new), str(new_seed)]) == 0
    lines = capsys.readouterr().out.splitlines()
    arm = lines[lines.index("over seeds: runs whose settings differ in train.seed alone, their test scores' mean "
                            "+- std:") + 2]
    assert arm.endswith(f"0, 1   {new}, {new_seed}")  # not old: other noise


def test_a_crossvals_fold_is_no_plain_run(runs, tmp_path, capsys):
    """A fold's config.json is a plain run's: fold_1 of a stopped crossval was a 'run' with 'settings: the same',
    and averaged over seeds with the runs of the whole split it shared them with."""
    fold = _copy(runs["a"], tmp_path / "cv" / "fold_1")
    (tmp_path / "cv" / "crossval_state.json").write_text('{"folds": [1, 2, 3]}', encoding="utf-8")
    seed = _with_seed(runs["a"], tmp_path / "a1", 1)
    assert compare.main([str(runs["a"]), str(seed), str(fold)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if line.startswith(_name(fold))).split()[1] == "fold"
    assert lines[-1].endswith(f"0, 1   {_name(runs['a'])}, {_name(seed)}")
    assert compare.summarise(seed).kind == "run"  # a folder named fold_K alone is not one
    plain = _copy(runs["a"], tmp_path / "fold_2")
    assert compare.summarise(plain).kind == "run"


def test_export_column_names_the_smallest_model_that_takes_the_waveform(runs, tmp_path, capsys):
    """int8_features (log-mel in, 45% of the size here) is not what a device recording audio runs: the column
    gives the smallest artefact whose input is the waveform, with the verdict and that artefact's accuracy."""
    run = tmp_path / "exported"
    shutil.copytree(runs["a"], run, ignore=shutil.ignore_patterns(".lock"))
    waveform = {"name": "serving_default_waveform:0", "dtype": "float32"}
    artefacts = {"float16": {"input": waveform, "size_bytes": 155234, "accuracy": 0.96},
                 "dynamic": {"input": waveform, "size_bytes": 134722, "accuracy": 0.95},
                 "int8": {"input": waveform, "size_bytes": 140102, "accuracy": 0.94},
                 "int8_features": {"input": {"name": "serving_default_log_mel:0", "dtype": "int8"},
                                   "size_bytes": 63310, "accuracy": 0.93}}
    (run / "export").mkdir()
    (run / "export" / "export.json").write_text(json.dumps({"passed": False, "failures": ["int8: agreement"],
                                                            "artefacts": artefacts}), encoding="utf-8")
    assert compare.main([str(run)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(_name(run)))
    assert row.endswith(f"failed (1 check): dynamic {134722 / 1024:.0f} KB 95.0%")


def test_an_unfinished_run_gives_its_epochs_out_of_those_it_was_given(runs, tmp_path, capsys):
    """A run killed after its first epoch (its state still running, one row of history): '1 of 3', where a
    finished run's count stands alone, early stopping or not. --csv wrote its epochs as a bare '1' (FSDD: '4' for the
    table's '4 of 40'): the epochs planned are a column of their own, epochs_planned, a number each."""
    run = tmp_path / "killed"
    shutil.copytree(runs["a"], run, ignore=shutil.ignore_patterns(".lock", "metrics.json"))
    state = json.loads((run / "run_state.json").read_text())
    (run / "run_state.json").write_text(json.dumps({**state, "status": "running"}), encoding="utf-8")
    history = (run / "history.csv").read_text().splitlines()
    (run / "history.csv").write_text("\n".join(history[:2]) + "\n", encoding="utf-8")
    epochs = json.loads((run / "config.json").read_text())["train"]["epochs"]
    table = tmp_path / "table.csv"
    assert compare.main([str(run), str(runs["a"]), "--csv", str(table)]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:3]}
    assert rows[_name(run)][2:6] == ["stopped", "1", "of", str(epochs)]
    assert rows[_name(runs["a"])][2:4] == ["done", str(len(history) - 1)]
    written = _rows(table)
    assert list(written[0])[:6] == ["run", "kind", "status", "epochs", "epochs_planned", "best_epoch"]
    assert [(row["status"], int(row["epochs"]), int(row["epochs_planned"])) for row in written] == \
        [("stopped", 1, epochs), ("done", len(history) - 1, epochs)]


def test_a_row_a_kill_cut_short_is_no_epoch_of_the_run(runs, tmp_path, capsys):
    """A run killed while Keras' CSVLogger wrote its last epoch's row leaves that row without its line break, cut
    mid-line: compare counted it as an epoch ('3 of 3', as if training had ended). It is no epoch: '2 of 3', and the
    best epoch the lower validation loss of the two whose rows ended."""
    run = tmp_path / "killed"
    shutil.copytree(runs["a"], run, ignore=shutil.ignore_patterns(".lock", "metrics.json"))
    state = json.loads((run / "run_state.json").read_text())
    (run / "run_state.json").write_text(json.dumps({**state, "status": "running"}), encoding="utf-8")
    rows = _rows(run / "history.csv")
    lines = (run / "history.csv").read_text(encoding="utf-8").splitlines()
    epochs = json.loads((run / "config.json").read_text())["train"]["epochs"]
    assert len(rows) == epochs == 3
    (run / "history.csv").write_text("\r\n".join(lines[:3]) + "\r\n" + lines[3][:len(lines[3]) // 2],
                                     encoding="utf-8")
    assert compare.main([str(run), str(runs["a"])]) == 0
    cells = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(_name(run)))
    best = 1 + min(range(2), key=lambda epoch: float(rows[epoch]["val_loss"]))
    assert cells[2:7] == ["stopped", "2", "of", "3", str(best)]


def test_a_stopped_crossval_is_one_row_over_its_finished_folds(runs, crossval_run, tmp_path, capsys):
    """A crossval killed before it wrote crossval.json (a kill in fold 2 of 3 on FSDD) was not a run: its fold_K
    folders were listed, each a row of kind fold. It is one crossval row, '2 of 3 folds', with the mean +- std of
    the finished folds, the same numbers crossval's own summary of those folds writes; not averaged over seeds
    with a finished crossval, whose mean is over every fold."""
    stopped = _stopped_in_fold_3(crossval_run, tmp_path / "runs" / "stopped")
    seed = _copy(crossval_run, tmp_path / "runs" / "seed1")
    config = json.loads((seed / "config.json").read_text())
    config["train"]["seed"] = 1
    (seed / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert compare.main([str(tmp_path / "runs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split()[0] for line in lines[1:] if line.startswith(_name(tmp_path))]
    assert listed == [_name(seed), _name(stopped)]  # no fold_1, fold_2, fold_3 rows
    row = re.split(r"\s{2,}", next(line for line in lines if line.startswith(_name(stopped))))
    folds = [json.loads((stopped / f"fold_{k}" / "metrics.json").read_text()) for k in (1, 2)]
    accuracy = np.array([fold["accuracy"] for fold in folds])
    f1 = np.array([fold["macro_f1"] for fold in folds])
    assert row[1:6] == ["crossval", "2 of 3 folds, stopped", "-", "-", str(sum(fold["num_examples"] for fold in folds))]
    assert row[7] == f"{100 * accuracy.mean():.2f}% +-{100 * accuracy.std():.2f}"
    assert row[9] == f"{f1.mean():.3f} +-{f1.std():.3f}"
    assert not any(line.startswith("over seeds") for line in lines)
    # crossval's own summary of the two finished folds (folds_done [1, 2] of [1, 2, 3]) reads the same
    from sound_tf.crossval import summarise

    summarised = _copy(stopped, tmp_path / "summarised")
    written = summarise(summarised, [1, 2, 3], log=lambda message: None)
    assert (written["num_folds"], written["complete"]) == (2, False)
    mine, theirs = compare.summarise(stopped), compare.summarise(summarised)
    assert theirs.status == "2 of 3 folds"  # num_folds counts the folds done: it was '2 of 2'
    assert mine.status == "2 of 3 folds, stopped"  # no crossval.json, and no command in the folder
    assert theirs.scores == pytest.approx(mine.scores, abs=1e-12)
    assert theirs.spread == pytest.approx(mine.spread, abs=1e-12)
    assert (theirs.test_clips, theirs.test_set) == (mine.test_clips, mine.test_set)
    assert compare.summarise(crossval_run).test_set != mine.test_set  # the finished one tested fold 3's clips too


def test_a_crossval_stopped_in_its_first_fold_has_no_scores(crossval_run, tmp_path, capsys):
    folder = _stopped_in_fold_3(crossval_run, tmp_path / "cv")
    for k in (2, 1):
        shutil.rmtree(folder / f"fold_{k}")
    assert compare.main([str(folder)]) == 0
    row = re.split(r"\s{2,}", capsys.readouterr().out.splitlines()[1])
    assert row == [_name(folder), "crossval", "0 of 3 folds, stopped", "-", "-", "-", "-", "-", "-", "-", "-"]


def test_a_crossvals_seconds_are_its_folds_added_up(crossval_run, tmp_path, capsys):
    """The seconds column of a crossval row was blank: it is the training seconds of its folds added up (their
    run_state.json; a fold still running, its seconds so far), in the table and in --csv."""
    stopped = _stopped_in_fold_3(crossval_run, tmp_path / "stopped")
    state = json.loads((stopped / "fold_3" / "run_state.json").read_text())
    (stopped / "fold_3" / "run_state.json").write_text(json.dumps({**state, "seconds": 1.5}), encoding="utf-8")
    folds = [json.loads((crossval_run / f"fold_{k}" / "run_state.json").read_text())["seconds"] for k in (1, 2, 3)]
    table = tmp_path / "table.csv"
    assert compare.main([str(crossval_run), str(stopped), "--csv", str(table)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for run, total in ((crossval_run, sum(folds)), (stopped, folds[0] + folds[1] + 1.5)):
        row = re.split(r"\s{2,}", next(line for line in lines if line.startswith(_name(run))))
        assert row[-2:] == [f"{total:.0f}", "-"]
    seconds = [float(row["train_seconds"]) for row in _rows(table)]
    assert [(row["epochs"], row["epochs_planned"]) for row in _rows(table)] == [("", "")] * 2  # its folds' are theirs
    assert seconds == pytest.approx([sum(folds), folds[0] + folds[1] + 1.5])
    assert min(folds) > 0


def test_crossvals_of_two_seeds_on_other_folds_are_told_of_folds_csv(runs, crossval_run, tmp_path, capsys):
    """Two crossvals of seeds 0 and 1 (--k 2 on an FSDD manifest by speaker) drew other folds, and the note's hint
    was train's '--set data.split_file=RUN/split.csv', which crossval refuses ('fixes one split; cross-validation
    makes one per fold'). A crossval's folds.csv, a manifest with a fold column, gives another seed its folds."""
    seed = _with_seed(crossval_run, tmp_path / "seed1", 1)
    rows = _rows(seed / "folds.csv")  # seed 1 drew other folds: each clip one fold further on
    _write_rows(seed / "folds.csv", [{**row, "fold": str(int(row["fold"]) % 3 + 1)} for row in rows])
    assert compare.main([str(crossval_run), str(seed)]) == 0
    lines = capsys.readouterr().out.splitlines()
    note = next(i for i, line in enumerate(lines) if line.startswith("note:"))
    assert lines[note].startswith("note: 2 different sets of test clips")
    assert lines[note + 1] == ("      a seed draws its own folds of data without folds (crossval --k); --data "
                               "CV/folds.csv gives a crossval of another seed CV's folds")
    assert not any("data.split_file" in line for line in lines)
    # beside a train run of another seed, each kind is told its own way
    assert compare.main([str(crossval_run), str(seed), str(_with_seed(runs["a"], tmp_path / "a1", 1))]) == 0
    hints = [line.strip() for line in capsys.readouterr().out.splitlines() if line.startswith("      a seed")]
    assert [hint.split(";")[1].split()[0] for hint in hints] == ["--set", "--data"]


def test_a_crossval_of_one_fold_done_has_no_spread(crossval_run, tmp_path, capsys):
    """crossval --folds 1 writes a crossval.json of one fold, its std 0 over one value, and the row read
    '25.00% +-0.00' (a spread of nothing, as a stopped crossval's one finished fold did); two folds keep theirs."""
    from sound_tf.crossval import summarise

    asked = _copy(crossval_run, tmp_path / "asked")  # crossval --folds 1 ended, its crossval.json of that fold
    for k in (2, 3):
        shutil.rmtree(asked / f"fold_{k}")
    summarise(asked, [1, 2, 3], log=lambda message: None)
    stopped = _stopped_in_fold_3(crossval_run, tmp_path / "stopped")  # killed in fold 2: fold 1 finished
    shutil.rmtree(stopped / "fold_2")
    fold = json.loads((asked / "fold_1" / "metrics.json").read_text())
    table = tmp_path / "table.csv"
    assert compare.main([str(asked), str(stopped), str(crossval_run), "--csv", str(table)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for folder, status in ((asked, "1 of 3 folds"), (stopped, "1 of 3 folds, stopped")):
        row = re.split(r"\s{2,}", next(line for line in lines if line.startswith(_name(folder))))
        assert row[1:3] == ["crossval", status]
        assert row[6] == "A"  # both tested fold 1 alone
        assert row[7:10] == [f"{100 * fold['accuracy']:.2f}%", f"{100 * fold['balanced_accuracy']:.2f}%",
                            f"{fold['macro_f1']:.3f}"]
    done = re.split(r"\s{2,}", next(line for line in lines if line.startswith(_name(crossval_run))))
    assert done[6] == "B" and " +-" in done[7] and " +-" in done[9]
    written = _rows(table)
    assert [row["accuracy_std"] == "" for row in written] == [True, True, False]
    assert float(written[0]["accuracy"]) == pytest.approx(fold["accuracy"])


def test_runs_of_two_seeds_given_other_clips_are_not_averaged(runs, tmp_path, capsys):
    """Runs whose config differs in the seed alone were one arm even when data.path held other files for one of
    them (FSDD: seeds 0 and 1 on 3 speakers' digits, seed 2 after data.csv was rewritten for 3 other speakers,
    averaged as '42.00% +-19.30' over all three). Each run's clips are its split.csv's, whatever split the seed drew:
    seeds on the same clips are averaged, and a note names the runs given other clips."""
    a1 = _with_seed(runs["a"], tmp_path / "a1", 1)
    drawn = _rows(a1 / "split.csv")  # another seed draws another split of the same clips: still one arm
    drawn[0]["split"], drawn[-1]["split"] = drawn[-1]["split"], drawn[0]["split"]
    assert drawn[0]["split"] != drawn[-1]["split"]
    _write_rows(a1 / "split.csv", drawn)
    grown = _with_seed(runs["a"], tmp_path / "a2", 2)  # a clip added to the data folder after a and a1 trained
    rows = _rows(grown / "split.csv")
    _write_rows(grown / "split.csv", [*rows, {**rows[0], "path": rows[0]["path"].replace(".wav", "_new.wav")}])
    assert compare.main([str(runs["a"]), str(a1), str(grown)]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("over seeds: runs whose settings differ in train.seed alone, their test scores' mean +- std:")
    assert lines[start + 2].endswith(f"0, 1   {_name(runs['a'])}, {_name(a1)}")
    note = lines.index("not averaged: runs whose settings are the same but for train.seed, given other clips "
                       "(split.csv's files, labels):")
    assert note == start + 3
    assert re.fullmatch(rf"  {len(rows)} clips \[[0-9a-f]{{8}}\]: {_name(runs['a'])}, {_name(a1)}", lines[note + 1])
    assert re.fullmatch(rf"  {len(rows) + 1} clips \[[0-9a-f]{{8}}\]: {_name(grown)}", lines[note + 2])
    assert len(lines) == note + 3
    relabelled = _with_seed(runs["a"], tmp_path / "a3", 3)  # the same files, one of them under another class
    rows[0]["label"] = next(label for label in TONES_HZ if label != rows[0]["label"])
    _write_rows(relabelled / "split.csv", rows)
    assert compare.seed_groups([compare.summarise(run) for run in (runs["a"], relabelled, a1)]) == [[0, 2]]
    # runs of one seed on other clips differ in no setting: the note does not say they differ in the seed
    same_seed = _with_seed(runs["a"], tmp_path / "a4", 0)
    _write_rows(same_seed / "split.csv", rows)
    notes = compare.other_data([compare.summarise(run) for run in (runs["a"], same_seed)], ["a", "a4"])
    assert notes[0] == ("not averaged: runs whose settings are the same but for train.seed, given other clips "
                        "(split.csv's files, labels):") and len(notes) == 3


def test_a_crossval_json_behind_its_fold_folders_is_not_trusted(crossval_run, tmp_path, capsys):
    """'crossval --folds 1' writes crossval.json of fold 1; a full crossval in the same folder killed after fold 2
    (FSDD, 72 clips, 3 folds) still showed '1 of 3 folds' with fold 1's 24 test clips. The fold folders are what is
    done: a fold finished that crossval.json does not count, or counts with other scores (trained again), makes the
    row the finished folds'."""
    from sound_tf.crossval import summarise

    folder = _stopped_in_fold_3(crossval_run, tmp_path / "cv")
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for k in (2, 3):
        (folder / f"fold_{k}").rename(hidden / f"fold_{k}")
    written = summarise(folder, [1, 2, 3], log=lambda message: None)  # what crossval --folds 1 leaves
    assert written["folds_done"] == [1]
    for k in (2, 3):  # then the full crossval finished fold 2 and was killed in fold 3
        (hidden / f"fold_{k}").rename(folder / f"fold_{k}")
    folds = [json.loads((folder / f"fold_{k}" / "metrics.json").read_text()) for k in (1, 2)]
    accuracy = np.array([fold["accuracy"] for fold in folds])
    assert compare.main([str(folder)]) == 0
    row = re.split(r"\s{2,}", capsys.readouterr().out.splitlines()[1])
    assert row[:6] == [_name(folder), "crossval", "2 of 3 folds, stopped", "-", "-",
                       str(sum(fold["num_examples"] for fold in folds))]
    assert row[6] == f"{100 * accuracy.mean():.2f}% +-{100 * accuracy.std():.2f}"
    without = _copy(folder, tmp_path / "without")  # the same folds with no crossval.json at all
    (without / "crossval.json").unlink()
    mine, theirs = compare.summarise(folder), compare.summarise(without)
    assert (mine.scores, mine.spread, mine.test_set) == (theirs.scores, theirs.spread, theirs.test_set)
    # crossval.json of the folds done is trusted, their folders or not (deleted to free the disk) ...
    done = _copy(crossval_run, tmp_path / "done")
    assert compare.summarise(done).status == "done"
    shutil.rmtree(done / "fold_3")
    assert compare.summarise(done).status == "done"
    # ... unless a fold it counts was trained again since: other scores in its metrics.json
    metrics = json.loads((done / "fold_1" / "metrics.json").read_text())
    official = compare.summarise(done).scores["accuracy"]
    (done / "fold_1" / "metrics.json").write_text(json.dumps({**metrics, "accuracy": metrics["accuracy"] / 2}),
                                                   encoding="utf-8")
    again = compare.summarise(done)
    assert again.status == "2 of 3 folds, stopped"
    second = json.loads((done / "fold_2" / "metrics.json").read_text())["accuracy"]
    assert again.scores["accuracy"] == pytest.approx((metrics["accuracy"] / 2 + second) / 2, abs=1e-12)
    assert again.scores["accuracy"] != pytest.approx(official, abs=1e-6)


def test_a_run_with_a_command_in_its_folder_is_running_else_stopped(runs, crossval_run, tmp_path, capsys):
    """compare could not tell a killed run from one still training: both were 'unfinished' (FSDD, train --epochs 40
    seen in epoch 4 and after a SIGKILL), and a crossval's row was '2 of 3 folds' either way. train, crossval and
    export hold the folder's .lock while they work there, and the system drops it with their process: held is
    'running', not held 'stopped'; a crossval.json of the folds asked for (--folds) is a command that ended."""
    from sound_tf import locks

    run = _copy(runs["a"], tmp_path / "run")
    state = json.loads((run / "run_state.json").read_text())
    (run / "run_state.json").write_text(json.dumps({**state, "status": "running"}), encoding="utf-8")
    stopped = _stopped_in_fold_3(crossval_run, tmp_path / "cv")
    asked = _copy(crossval_run, tmp_path / "asked")  # crossval --folds 1 2 ended, its crossval.json of those
    shutil.rmtree(asked / "fold_3")
    from sound_tf.crossval import summarise

    summarise(asked, [1, 2, 3], log=lambda message: None)

    def statuses() -> list[str]:
        return [compare.summarise(folder).status for folder in (run, stopped, stopped / "fold_3", asked)]

    assert statuses() == ["stopped", "2 of 3 folds, stopped", "stopped", "2 of 3 folds"]
    # Held by another process, as train holds it: running; killed, stopped again.
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from sound_tf import locks; "
                               "assert all(locks.claim_folder(f) is None for f in sys.argv[1:]); print('held', "
                               "flush=True); sys.stdin.read()", str(run), str(stopped), str(stopped / "fold_3"),
                               str(asked)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert statuses() == ["running", "2 of 3 folds, running", "running", "2 of 3 folds, running"]
        assert compare.main([str(run), str(runs["a"])]) == 0
        row = re.split(r"\s{2,}", capsys.readouterr().out.splitlines()[1])
        assert row[:4] == [_name(run), "run", "running", f"{len(_rows(run / 'history.csv'))} of 3"]
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert statuses() == ["stopped", "2 of 3 folds, stopped", "stopped", "2 of 3 folds"]
    # Claimed in this process (a descriptor of its own, as a command's): held all the same, and the check takes
    # nothing from it.
    assert locks.claim_folder(run) is None
    try:
        assert compare.summarise(run).status == "running"
        assert locks.claim_folder(run) is None  # the holder's claims still count
        locks.release_folder(run)
    finally:
        locks.release_folder(run)
    assert compare.summarise(run).status == "stopped"
    assert locks.in_use(tmp_path / "nowhere") is False and compare.summarise(runs["a"]).status == "done"


def _with_labels(run: Path, to: Path, labels: list[str]) -> Path:
    _copy(run, to)
    config = json.loads((to / "config.json").read_text())
    config["labels"] = labels
    (to / "config.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    return to


def test_runs_of_as_many_classes_with_other_names_say_which_names(runs, tmp_path, capsys):
    """Runs of the same number of classes under other names each name the classes that set them apart; every run
    read 'other names', so five runs on one dataset and one on another printed 'labels  other names: the other 6'
    (six runs in all, none named), and in order 'other names | other names' for two runs that do differ."""
    birds = [_with_labels(runs["a"], tmp_path / f"birds{i}", ["owl", "robin", "wren"]) for i in range(5)]
    other = _with_labels(runs["a"], tmp_path / "other", ["Mönchsgrasmücke", "owl", "robin"])
    assert compare.main([*map(str, birds), str(other)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("labels"))
    assert line.split(None, 1)[1] == (
        f"3 classes with Mönchsgrasmücke: {_name(other)}; 3 classes with wren: the other 5")
    assert compare.main([str(birds[0]), str(other)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("labels"))
    assert line.split(None, 1)[1] == "3 classes with wren | 3 classes with Mönchsgrasmücke"
    # another count alone needs no names; a list of many names is cut short
    summaries = [compare.RunSummary(Path(name), "run", "done", {"labels": labels}) for name, labels in (
        ("x", ["a", "b"]), ("y", ["a", "b", "c"]), ("z", list("abcdefgh")), ("w", list("abstuvwx")))]
    assert compare.differing_settings(summaries)["labels"] == [
        "2 classes", "3 classes", "8 classes with c, d, e, ...", "8 classes with s, t, u, ..."]


def _edit_json(path: Path, **changes) -> dict:
    data = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps(data), encoding="utf-8")
    return data


def _arm_cells(rows: list[tuple[float, float, float]]) -> list[str]:
    """The over-seeds cells of runs' (accuracy, balanced accuracy, macro F1): their mean +- population std."""
    columns = np.array(rows).T
    return [f"{100 * columns[0].mean():.2f}% +-{100 * columns[0].std():.2f}",
            f"{100 * columns[1].mean():.2f}% +-{100 * columns[1].std():.2f}",
            f"{columns[2].mean():.3f} +-{columns[2].std():.3f}"]


def _scores(path: Path) -> tuple[float, float, float]:
    data = json.loads(path.read_text())
    return data["accuracy"], data["balanced_accuracy"], data["macro_f1"]


def _over_seeds(lines: list[str]) -> list[list[str]]:
    start = lines.index("over seeds: runs whose settings differ in train.seed alone, their test scores' mean +- std:")
    assert re.split(r"\s{2,}", lines[start + 1].strip()) == ["accuracy", "balanced acc.", "macro F1", "seeds", "runs"]
    arms = []
    for line in lines[start + 2:]:  # its arms, then the repeats left out, then any other note
        if not line.startswith("  ") or "left out" in line:
            break
        arms.append(re.split(r"\s{2,}", line.strip()))
    return arms


def test_an_augmentation_ablation_is_two_arms_and_a_run_without_scores_joins_none(runs, tmp_path, capsys):
    """Issue 3's ablation: augmentation off and on over seeds 0 and 1, the arms differing in augment.enabled alone
    (the other tests' arms differed in two settings at once), and a seed-2 run killed before its test scores: each
    arm is its own two runs' mean +- std, and the killed run, a row of its own, blanks no arm."""
    made = {}
    for name, seed, augment, accuracy in (("off0", 0, False, 0.5), ("off1", 1, False, 0.7), ("on0", 0, True, 0.8),
                                          ("on1", 1, True, 0.9)):
        run = _with_seed(runs["a"], tmp_path / name, seed)
        config = json.loads((run / "config.json").read_text())
        config["augment"]["enabled"] = augment
        (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
        _edit_json(run / "metrics.json", accuracy=accuracy, balanced_accuracy=accuracy - 0.1, macro_f1=accuracy - 0.2)
        made[name] = run
    killed = _with_seed(runs["a"], tmp_path / "off2", 2)
    (killed / "metrics.json").unlink()
    _edit_json(killed / "run_state.json", status="running")
    assert compare.main([*map(str, made.values()), str(killed)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.split(r"\s{2,}", next(line for line in lines if line.startswith(_name(killed))))[2] == "stopped"
    arms = _over_seeds(lines)
    assert arms == [[*_arm_cells([_scores(made[name] / "metrics.json") for name in names]), "0, 1",
                     ", ".join(_name(made[name]) for name in names)] for names in (("off0", "off1"), ("on0", "on1"))]
    assert arms[0][0] == "60.00% +-10.00" and arms[1][0] == "85.00% +-5.00"
    assert not any("left out" in line for line in lines)


def test_a_score_one_run_of_an_arm_does_not_give_is_left_blank(runs, tmp_path, capsys):
    """A metrics.json without balanced_accuracy (an older version's) beside one with it: the arm's balanced
    accuracy is '-', not one run's value with a spread of 0 as if two seeds agreed; the other scores are averaged."""
    older = _with_seed(runs["a"], tmp_path / "older", 1)
    metrics = json.loads((older / "metrics.json").read_text())
    del metrics["balanced_accuracy"]
    metrics.update(accuracy=0.9, macro_f1=0.85)
    (older / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    assert compare.main([str(runs["a"]), str(older)]) == 0
    [arm] = _over_seeds(capsys.readouterr().out.splitlines())
    a = _scores(runs["a"] / "metrics.json")
    both = _arm_cells([a, (0.9, 0.0, 0.85)])
    assert arm == [both[0], "-", both[2], "0, 1", f"{_name(runs['a'])}, {_name(older)}"]


def test_an_arms_seeds_and_runs_are_in_the_order_given(runs, tmp_path, capsys):
    """The run kept for a seed given first may be its newest repeat, given last: the arm still lists its runs, and
    their seeds beside them, in the table's order (seed 1's run, then seed 0's newest), not by seed."""
    first = _with_seed(runs["a"], tmp_path / "s0", 0)
    other = _with_seed(runs["a"], tmp_path / "s1", 1)
    newest = _with_seed(runs["a"], tmp_path / "s0b", 0)
    _edit_json(other / "metrics.json", accuracy=0.9)
    _edit_json(newest / "metrics.json", accuracy=0.6)
    os.utime(first / "metrics.json", (1e9, 1e9))
    os.utime(newest / "metrics.json", (2e9, 2e9))
    assert compare.main([str(first), str(other), str(newest)]) == 0
    lines = capsys.readouterr().out.splitlines()
    [arm] = _over_seeds(lines)
    assert arm[:3] == _arm_cells([_scores(other / "metrics.json"), _scores(newest / "metrics.json")])
    assert arm[0] == "75.00% +-15.00"  # 0.9 and 0.6: not first's accuracy in newest's place
    assert arm[3:] == ["1, 0", f"{_name(other)}, {_name(newest)}"]
    assert lines[-1].endswith(f"newest run): {_name(first)} (seed 0)")


def test_crossvals_of_two_seeds_are_averaged_their_newest_repeat_kept(runs, crossval_run, tmp_path, capsys):
    """Finished crossvals that differ in the seed alone are an arm over their means, each seed once (its newest
    crossval.json); a train run with the same settings and the same clips, one split's score, is in no crossval's
    arm. --csv gives each crossval's spread over folds as crossval.json holds it, score by score."""
    cv0 = _copy(crossval_run, tmp_path / "cv0")
    cv1 = _with_seed(crossval_run, tmp_path / "cv1", 1)
    cv0b = _copy(crossval_run, tmp_path / "cv0b")  # an older crossval of seed 0, given last
    for folder, accuracy in ((cv1, 0.9), (cv0b, 0.1)):
        summary = json.loads((folder / "crossval.json").read_text())
        _edit_json(folder / "crossval.json", mean={**summary["mean"], "accuracy": accuracy})
    os.utime(cv0 / "crossval.json", (2e9, 2e9))
    os.utime(cv0b / "crossval.json", (1e9, 1e9))
    run = _with_seed(runs["a"], tmp_path / "run2", 2)
    config = json.loads((run / "config.json").read_text())
    config["train"]["epochs"] = 2  # the crossval's folds' epochs: its settings are the crossval's but for the seed
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    cv_summary, run_summary = compare.summarise(cv0), compare.summarise(run)
    assert {k: v for k, v in cv_summary.settings.items() if k != compare.SEED} == \
        {k: v for k, v in run_summary.settings.items() if k != compare.SEED}
    assert cv_summary.data == run_summary.data  # the same clips: only its kind keeps it out
    table = tmp_path / "table.csv"
    assert compare.main([str(cv0), str(cv1), str(run), str(cv0b), "--csv", str(table)]) == 0
    lines = capsys.readouterr().out.splitlines()
    [arm] = _over_seeds(lines)
    means = [json.loads((folder / "crossval.json").read_text())["mean"] for folder in (cv0, cv1)]
    assert arm == [*_arm_cells([(m["accuracy"], m["balanced_accuracy"], m["macro_f1"]) for m in means]), "0, 1",
                   f"{_name(cv0)}, {_name(cv1)}"]
    assert lines[-3:] == [f"  1 repeat of a seed left out (a seed repeats its run, so it counts once, its newest run): "
                          f"{_name(cv0b)} (seed 0)", SPREAD_NOTE + SEEDS_TOO, f"wrote {table}"]
    std = json.loads((cv0 / "crossval.json").read_text())["std"]
    written = _rows(table)[0]
    assert [float(written[f"{score}_std"]) for score in compare.SCORES] == \
        pytest.approx([std[score] for score in compare.SCORES], abs=1e-12)
    assert len({round(std[score], 9) for score in compare.SCORES}) > 1  # the columns can tell one score from another


SPREAD_NOTE = ("note: +- on a crossval's row is the standard deviation over its folds, the population's (ddof=0, as "
               "numpy.std; --csv: <score>_std)")
SEEDS_TOO = "; over seeds, over the seeds' scores, the population's too"


def test_which_standard_deviation_a_crossval_row_gives_is_said(runs, crossval_run, tmp_path, capsys):
    """'88.33% +-6.67' on a crossval's row said nothing of what the spread is over or which deviation it is, and the
    over-seeds lines below give another +- (session 49's ESC-50 walkthrough, for a paper's mean +- std over 5 folds,
    whose sample std is 1.118 times it). A note says so when a row has a spread over folds, and that the over-seeds
    spread is the population's too when they are shown; train runs alone get no note."""
    cv1 = _with_seed(crossval_run, tmp_path / "cv1", 1)
    assert compare.main([str(crossval_run), str(runs["a"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == SPREAD_NOTE and sum(SPREAD_NOTE in line for line in lines) == 1
    row = next(line for line in lines if line.startswith(_name(crossval_run)))
    std = json.loads((crossval_run / "crossval.json").read_text())["std"]["accuracy"]
    assert f" +-{100 * std:.2f}" in row and std > 0  # the row's +- is crossval.json's std
    assert compare.main([str(crossval_run), str(cv1)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(_over_seeds(lines)) == 1 and lines[-1] == SPREAD_NOTE + SEEDS_TOO
    assert compare.main([str(runs["a"]), str(runs["b"])]) == 0
    assert not any(line.startswith("note: +-") for line in capsys.readouterr().out.splitlines())


def test_folds_given_by_hand_are_in_no_arm(runs, tmp_path, capsys):
    """fold_1 of two crossvals of seeds 0 and 1, given as folders: a fold is one part of its crossval's answer, its
    test fold one of k, so they are rows of kind fold and not averaged over seeds."""
    folds = []
    for seed in (0, 1):
        cv = tmp_path / f"cv{seed}"
        folds.append(_with_seed(runs["a"], cv / "fold_1", seed))
        (cv / "crossval_state.json").write_text('{"folds": [1, 2, 3]}', encoding="utf-8")
    assert compare.main(list(map(str, folds))) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[1:3]] == ["fold", "fold"]
    assert lines[3:5] == [f"settings that differ (in the order of the runs above, 1 of {_settings_count(runs['a'])}):",
                          "  train.seed  0 | 1"]
    # the same test clips and the same answers (copies of one run): compared clip by clip, no clip apart, p 1; both
    # end in fold_1, so their crossval's folder tells them apart
    assert lines[5:8] == ["runs in the paired-over-test-clips blocks below, by the end of their folder:",
                          f"  {os.path.join('cv0', 'fold_1')}  {_name(folds[0])}",
                          f"  {os.path.join('cv1', 'fold_1')}  {_name(folds[1])}"]
    assert lines[8].startswith(f"paired over test clips: {os.path.join('cv1', 'fold_1')} against ") and len(lines) == 11
    assert lines[10].split()[1:3] == ["0", "0"] and lines[10].split()[-1] == "1"


def test_a_stopped_crossvals_folds_count_only_with_their_scores(crossval_run, tmp_path, capsys):
    """A fold done whose metrics.json is gone is not finished (as crossval counts it), and a score one finished
    fold lacks is '-' in the row, not the others' mean with their spread."""
    gone = _stopped_in_fold_3(crossval_run, tmp_path / "gone")
    (gone / "fold_2" / "metrics.json").unlink()
    partial = _stopped_in_fold_3(crossval_run, tmp_path / "partial")
    metrics = json.loads((partial / "fold_2" / "metrics.json").read_text())
    del metrics["macro_f1"]
    (partial / "fold_2" / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    assert compare.main([str(gone), str(partial)]) == 0
    lines = capsys.readouterr().out.splitlines()
    fold1 = json.loads((gone / "fold_1" / "metrics.json").read_text())
    row = re.split(r"\s{2,}", next(line for line in lines if line.startswith(_name(gone))))
    assert row[1:6] == ["crossval", "1 of 3 folds, stopped", "-", "-", str(fold1["num_examples"])]
    assert row[7] == f"{100 * fold1['accuracy']:.2f}%"  # one fold: no spread
    row = re.split(r"\s{2,}", next(line for line in lines if line.startswith(_name(partial))))
    accuracy = np.array([fold1["accuracy"], metrics["accuracy"]])
    assert row[2] == "2 of 3 folds, stopped"
    assert row[7:10] == [f"{100 * accuracy.mean():.2f}% +-{100 * accuracy.std():.2f}", row[8], "-"]


@pytest.mark.parametrize("name, text, problem", [
    ("metrics.json", '[0.9, 0.8]', "holds list, not a JSON object"),
    ("crossval_state.json", '{"folds": "1,2,3"}', "not the file sound_tf writes there (no list of folds)"),
])
def test_a_json_file_not_in_its_format_leaves_its_run_out(runs, crossval_run, tmp_path, capsys, name, text, problem):
    """A metrics.json holding a list, or a crossval_state.json without its list of folds (a stopped crossval's),
    is named with its problem and its run left out; the others are compared."""
    if name == "metrics.json":
        run = _copy(runs["b"], tmp_path / "b")
    else:
        run = _stopped_in_fold_3(crossval_run, tmp_path / "cv")
    (run / name).write_text(text, encoding="utf-8")
    assert compare.main([str(runs["a"]), str(run)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"warning: {run / name}: {problem}; {run} is left out\n"
    assert _name(run) not in captured.out and _name(runs["a"]) in captured.out


#: Made-up per-fold scores (accuracy, balanced accuracy, macro F1) of two crossvals over the same four folds.
PAIRED_A = {1: (0.80, 0.75, 0.78), 2: (0.90, 0.90, 0.88), 3: (0.70, 0.60, 0.70), 4: (0.85, 0.80, 0.84)}
PAIRED_B = {1: (0.90, 0.85, 0.80), 2: (0.85, 0.90, 0.88), 3: (0.70, 0.65, 0.65), 4: (0.95, 0.95, 0.95)}


def _made_crossval(folder: Path, scores: dict[int, tuple[float, float, float]], *, augment: bool,
                   tested: dict[int, list[tuple[str, str]]] | None = None,
                   folds: tuple[int, ...] = (1, 2, 3, 4), wrong: dict[int, set[int]] | None = None) -> Path:
    """A crossval folder as crossval writes it, from made-up numbers (nothing trained): config.json, its state,
    folds.csv, crossval.json with a per_fold row for each fold of ``scores`` and a finished fold_K (run_state.json,
    metrics.json, split.csv with the fold's ``tested`` clips, two per fold unless given, and with ``wrong`` an
    errors.csv of the fold's clips of ``wrong[K]``, their indices in its ``tested``)."""
    tested = {fold: [(f"/data/{fold}_{n}.wav", "dog" if n else "cat") for n in range(2)] for fold in folds} | (
        tested or {})
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"augment": {"enabled": augment}, "train": {"seed": 0},
                                                    "data": {"path": "/data"}}), encoding="utf-8")
    (folder / "crossval_state.json").write_text(json.dumps({"folds": list(folds)}), encoding="utf-8")
    _write_rows(folder / "folds.csv", [{"path": path, "label": label, "fold": str(fold), "group": ""}
                                       for fold in folds for path, label in tested[fold]])
    names = ("accuracy", "balanced_accuracy", "macro_f1")
    rows = [{"fold": fold, **dict(zip(names, values))} for fold, values in scores.items()]
    for fold, values in scores.items():
        run = folder / f"fold_{fold}"
        run.mkdir()
        (run / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}), encoding="utf-8")
        (run / "metrics.json").write_text(json.dumps({**dict(zip(names, values)), "num_examples": len(tested[fold])}),
                                          encoding="utf-8")
        _write_rows(run / "split.csv", [{"split": "test", "path": path, "label": label} for path, label in tested[fold]]
                    + [{"split": "train", "path": f"/data/other_{fold}.wav", "label": "cat"}])
        if wrong is not None:  # as metrics.write_errors_csv writes it
            with (run / "errors.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["path", "true_label", "predicted_label", "score", "top3"])
                for at in sorted(wrong[fold]):
                    path, label = tested[fold][at]
                    other = "dog" if label == "cat" else "cat"
                    writer.writerow([path, label, other, "0.9000", f"{other}:0.90;{label}:0.10"])
    table = np.array(list(scores.values()))
    (folder / "crossval.json").write_text(json.dumps({
        "folds": list(folds), "folds_done": list(scores), "complete": len(scores) == len(folds),
        "num_folds": len(scores), "num_examples": sum(len(tested[fold]) for fold in scores), "labels": ["cat", "dog"],
        "mean": dict(zip(names, table.mean(axis=0))), "std": dict(zip(names, table.std(axis=0))),
        "per_fold": rows}), encoding="utf-8")
    return folder


def _paired(lines: list[str]) -> list[list[str]]:
    start = next(at for at, line in enumerate(lines) if line.startswith("paired over folds:"))
    return [re.split(r"\s{2,}", line.strip()) for line in lines[start + 2:start + 8]]  # below its header


def test_two_crossvals_on_the_same_folds_are_compared_fold_by_fold(tmp_path, capsys, monkeypatch):
    """default vs --no-augment on the same four folds and test clips: each fold's difference (the second minus the
    first), their mean +- the population std and the folds each wins, loses and ties, per score."""
    monkeypatch.chdir(tmp_path)
    _made_crossval(tmp_path / "aug", PAIRED_A, augment=True)
    _made_crossval(tmp_path / "noaug", PAIRED_B, augment=False)
    assert compare.main(["aug", "noaug"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ("paired over folds: noaug minus aug, on the same 4 folds and test clips (accuracies in percentage points; "
            "+- the population std of the differences, ddof=0; wins: the folds noaug scores higher; p: two-sided, tied "
            "folds left out):") in lines
    table = _paired(lines)
    # accuracy: +10, -5, 0, +10 points: mean 3.75, population std sqrt(168.75 / 4) = 6.495
    assert [row[1] for row in table] == ["+10.00", "-5.00", "+0.00", "+10.00", "+3.75 +-6.50", "2 / 1 / 1"]
    # balanced accuracy: +10, 0, +5, +15: mean 7.5, std sqrt(125 / 4) = 5.590
    assert [row[2] for row in table] == ["+10.00", "+0.00", "+5.00", "+15.00", "+7.50 +-5.59", "3 / 0 / 1"]
    # macro F1: +0.02, 0, -0.05, +0.11: mean 0.02, std sqrt(0.0134 / 4) = 0.0579
    assert [row[3] for row in table] == ["+0.020", "+0.000", "-0.050", "+0.110", "+0.020 +-0.058", "2 / 1 / 1"]
    assert [row[0] for row in table] == ["fold 1", "fold 2", "fold 3", "fold 4", "mean +- std", "wins, losses, ties"]


def _with_classes(crossval: Path, classes: dict[int, list[str]]) -> None:
    """Give each fold K of ``classes`` in ``crossval`` the per-class supports compute_metrics writes, one clip for each
    class named (the classes its balanced accuracy, and so its chance level, are over)."""
    for fold, labels in classes.items():
        path = crossval / f"fold_{fold}" / "metrics.json"
        metrics = json.loads(path.read_text(encoding="utf-8"))
        metrics["per_class"] = {label: {"support": 1} for label in labels}
        path.write_text(json.dumps(metrics), encoding="utf-8")


def test_a_paired_fold_near_chance_in_either_run_is_named_under_the_table(tmp_path, capsys, monkeypatch):
    """crossval's summary names a fold that scored near chance (its balanced accuracy no more than a quarter of the
    way from chance to 1); compare's paired table did not. Of two classes (chance 0.50, near chance up to 0.625),
    aug's fold 3 at 0.60 is named, its difference in balanced accuracy with it; the same fold over four classes
    (chance 0.25, up to 0.4375) is not, and no line is written. Fold metrics without per-class supports (the other
    tests' crossvals) say no chance level: no line either."""
    monkeypatch.chdir(tmp_path)
    aug = _made_crossval(tmp_path / "aug", PAIRED_A, augment=True)
    noaug = _made_crossval(tmp_path / "noaug", PAIRED_B, augment=False)
    assert compare.main(["aug", "noaug"]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if "near chance" in line]
    for run in (aug, noaug):
        _with_classes(run, {fold: ["cat", "dog"] for fold in PAIRED_A})
    assert compare.main(["aug", "noaug"]) == 0
    lines = capsys.readouterr().out.splitlines()
    below = lines[next(at for at, line in enumerate(lines) if line.startswith("paired over folds:")) + 9]
    # balanced accuracy of fold 3: aug 0.60, noaug 0.65 (+5 points); every other fold above 0.625 in both runs
    assert below == ("note: fold 3 of aug scored near chance (balanced accuracy 0.60; chance 0.50): its difference of "
                     "+5.00 points in balanced accuracy weighs in the mean above as any other fold's")
    # fold 3 at chance in both runs and fold 1 in noaug (0.55): each named, the differences of both folds given
    for fold, balanced in ((1, 0.55), (3, 0.50)):
        metrics_path = noaug / f"fold_{fold}" / "metrics.json"
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        metrics["balanced_accuracy"] = balanced
        metrics_path.write_text(json.dumps(metrics), encoding="utf-8")
    (noaug / "crossval.json").unlink()  # its folds' metrics.json give the scores
    assert compare.main(["aug", "noaug"]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if "near chance" in line] == [
        "note: fold 1 of noaug scored near chance (balanced accuracy 0.55; chance 0.50), fold 3 of aug scored near "
        "chance (balanced accuracy 0.60; chance 0.50), fold 3 of noaug scored near chance (balanced accuracy 0.50; "
        "chance 0.50): their differences of -20.00 and -10.00 points in balanced accuracy weigh in the mean above as "
        "any other fold's"]
    _with_classes(noaug, {fold: ["cat", "dog", "owl", "robin"] for fold in PAIRED_B})
    _with_classes(aug, {fold: ["cat", "dog", "owl", "robin"] for fold in PAIRED_A})
    assert compare.main(["aug", "noaug"]) == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if "near chance" in line]


def test_crossvals_on_other_folds_or_test_clips_are_not_paired(tmp_path, capsys, monkeypatch):
    """Another fold tested (a clip of fold 3 not the same), other folds done, or fold folders deleted (folds.csv then
    says which clips each fold tested): one line says why, and no paired numbers; the same clips from folds.csv pair."""
    monkeypatch.chdir(tmp_path)
    _made_crossval(tmp_path / "aug", PAIRED_A, augment=True)
    _made_crossval(tmp_path / "other", PAIRED_B, augment=False,
                   tested={3: [("/data/3_0.wav", "cat"), ("/data/3_9.wav", "dog")]})
    _made_crossval(tmp_path / "half", {fold: PAIRED_B[fold] for fold in (1, 2)}, augment=False)
    assert compare.main(["aug", "other", "half"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith(("not paired", "paired"))] == [
        "not paired: other and aug: fold 3 tested other clips (each fold's split.csv test rows; another seed's --k "
        "folds, or other data); their scores are not compared fold by fold",
        "not paired: half and aug: other folds done (1, 2, 3, 4 against 1, 2); their scores are not compared fold "
        "by fold"]
    gone = _made_crossval(tmp_path / "gone", PAIRED_B, augment=False)
    for fold in PAIRED_B:
        shutil.rmtree(gone / f"fold_{fold}")  # crossval.json is still read, folds.csv gives each fold's clips
    assert compare.main(["aug", "gone"]) == 0
    assert [row[1] for row in _paired(capsys.readouterr().out.splitlines())][4] == "+3.75 +-6.50"
    (gone / "folds.csv").unlink()
    assert compare.main(["aug", "gone"]) == 0
    assert ("not paired: gone and aug: the test clips of folds 1, 2, 3, 4 cannot be checked (no fold_K/split.csv and "
            "no folds.csv); their scores are not compared fold by fold") in capsys.readouterr().out.splitlines()


def test_paired_folds_tie_equal_scores_alone_and_list_folds_by_number(tmp_path, capsys, monkeypatch):
    """Folds 2, 3 and 10 of 200 test clips each: the same accuracy reached by another sum of floats (0.1 + 0.2 against
    0.3) is a tie, one clip more or fewer (0.005) a win or a loss, and fold 10 comes after fold 3 (session 52's
    mutation audit: a tie tolerance of 0.01, exact equality, and folds sorted as text passed every test). A stopped
    crossval (no crossval.json, its folds' metrics.json read) pairs the same."""
    monkeypatch.chdir(tmp_path)
    clips = 200
    first = {2: 0.3, 3: 100 / clips, 10: 100 / clips}
    other = {2: 0.1 + 0.2, 3: 101 / clips, 10: 99 / clips}
    assert other[2] != first[2]  # the float sum differs from 0.3 in its last bit
    folds = tuple(first)
    a = _made_crossval(tmp_path / "a", {fold: (value,) * 3 for fold, value in first.items()}, augment=True,
                       folds=folds)
    b = _made_crossval(tmp_path / "b", {fold: (value,) * 3 for fold, value in other.items()}, augment=False,
                       folds=folds)
    clip_changes = [round(clips * (other[fold] - first[fold])) for fold in folds]
    wins, losses = sum(n > 0 for n in clip_changes), sum(n < 0 for n in clip_changes)
    record = f"{wins} / {losses} / {len(folds) - wins - losses}"
    assert record == "1 / 1 / 1"
    diffs = np.array([other[fold] - first[fold] for fold in folds])
    expected = [[f"fold {fold}", *[f"{100 * diff:+.2f}"] * 2, f"{diff:+.3f}"] for fold, diff in zip(folds, diffs)]
    expected += [["mean +- std", *[f"{100 * diffs.mean():+.2f} +-{100 * diffs.std():.2f}"] * 2,
                  f"{diffs.mean():+.3f} +-{diffs.std():.3f}"], ["wins, losses, ties", record, record, record]]
    for stopped in (False, True):
        if stopped:
            for run in (a, b):
                (run / "crossval.json").unlink()
        assert compare.main(["a", "b"]) == 0
        assert _paired(capsys.readouterr().out.splitlines())[:len(expected)] == expected, stopped


def test_folds_on_relabelled_or_drawn_clips_or_other_fold_numbers_are_not_paired(tmp_path, capsys, monkeypatch):
    """A test clip of fold 2 relabelled, fold 4's split.csv holding a drawn clip that folds.csv does not list (a
    data.other_label share), or folds 3 and 4 done against 1 and 2 (as many): one 'not paired' line each (session 52's
    mutation audit: the label left out of a fold's clips, folds.csv read before split.csv, and folds done compared by
    their count passed every test). A crossval whose folds give no balanced accuracy pairs on the other two scores."""
    monkeypatch.chdir(tmp_path)
    _made_crossval(tmp_path / "aug", PAIRED_A, augment=True)
    _made_crossval(tmp_path / "relabelled", PAIRED_B, augment=False,
                   tested={2: [("/data/2_0.wav", "dog"), ("/data/2_1.wav", "dog")]})
    drawn = _made_crossval(tmp_path / "drawn", PAIRED_B, augment=False)
    split = drawn / "fold_4" / "split.csv"
    with split.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    _write_rows(split, rows + [{"split": "test", "path": "/data/noise_4.wav", "label": "_other_"}])
    assert compare.main(["aug", "relabelled", "drawn"]) == 0
    lines = capsys.readouterr().out.splitlines()
    reason = "tested other clips (each fold's split.csv test rows; another seed's --k folds, or other data)"
    assert [line for line in lines if line.startswith(("not paired", "paired"))] == [
        f"not paired: relabelled and aug: fold 2 {reason}; their scores are not compared fold by fold",
        f"not paired: drawn and aug: fold 4 {reason}; their scores are not compared fold by fold"]
    _made_crossval(tmp_path / "early", {fold: PAIRED_A[fold] for fold in (1, 2)}, augment=True)
    _made_crossval(tmp_path / "late", {fold: PAIRED_B[fold] for fold in (3, 4)}, augment=False)
    assert compare.main(["early", "late"]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith(("not paired", "paired"))] == [
        "not paired: late and early: other folds done (1, 2 against 3, 4); their scores are not compared fold by fold"]
    no_balanced = _made_crossval(tmp_path / "nobal", PAIRED_B, augment=False)
    summary = json.loads((no_balanced / "crossval.json").read_text())
    for row in summary["per_fold"]:
        del row["balanced_accuracy"]
    (no_balanced / "crossval.json").write_text(json.dumps(summary), encoding="utf-8")
    assert compare.main(["aug", "nobal"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[next(at for at, line in enumerate(lines) if line.startswith("paired over folds:")) + 1]
    assert re.split(r"\s{2,}", header.strip()) == ["accuracy", "macro F1"]
    table = _paired(lines)
    accuracy = np.array([PAIRED_B[fold][0] - PAIRED_A[fold][0] for fold in PAIRED_A])
    macro_f1 = np.array([PAIRED_B[fold][2] - PAIRED_A[fold][2] for fold in PAIRED_A])
    assert [row[1:] for row in table[:4]] == [[f"{100 * a:+.2f}", f"{f:+.3f}"] for a, f in zip(accuracy, macro_f1)]
    assert table[4][1:] == [f"{100 * accuracy.mean():+.2f} +-{100 * accuracy.std():.2f}",
                            f"{macro_f1.mean():+.3f} +-{macro_f1.std():.3f}"]


def test_csv_gives_the_paired_comparison_the_printed_table_gives(tmp_path, capsys, monkeypatch):
    """--csv wrote one row per run and none of the fold-by-fold comparison printed below the table: a crossval's row
    gives, against the first crossval, each score's mean and population std of the differences (fractions, as its
    scores) and its wins, losses and ties, as the printed lines do; a tie by another sum of floats (0.1 * 7 against
    0.7) is a tie; a crossval not paired names the run and why, its numbers blank; the first crossval's row and a
    fold's are blank, and with one crossval there are no paired columns."""
    monkeypatch.chdir(tmp_path)
    aug = _made_crossval(tmp_path / "aug", PAIRED_A, augment=True)
    _made_crossval(tmp_path / "noaug", PAIRED_B, augment=False)
    _made_crossval(tmp_path / "other", PAIRED_B, augment=False,
                   tested={3: [("/data/3_0.wav", "cat"), ("/data/3_9.wav", "dog")]})
    summed = {**PAIRED_B, 3: (0.1 * 7, *PAIRED_B[3][1:])}
    assert summed[3][0] != PAIRED_A[3][0]  # 0.7000000000000001: 0.7 by another sum of floats
    _made_crossval(tmp_path / "summed", summed, augment=False)
    shutil.copy(aug / "config.json", aug / "fold_1")  # a fold given alone: a run, not a crossval
    table = tmp_path / "table.csv"
    assert compare.main(["aug", "aug/fold_1", "noaug", "other", "summed", "--csv", str(table)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {row["run"]: row for row in _rows(table)}
    assert list(rows) == ["aug", os.path.join("aug", "fold_1"), "noaug", "other", "summed"]
    paired = [column for column in next(iter(rows.values())) if column.startswith("paired_")]
    pooled = ["paired_clips", "paired_both_right", "paired_only_first", "paired_only_other", "paired_both_wrong",
              "paired_mcnemar_p"]  # the folds' test clips pooled, after the columns that were there before them
    assert paired == ["paired_against", "paired_folds", *(f"paired_{score}_{part}" for score in compare.SCORES
                      for part in ("mean_diff", "std_diff", "wins", "losses", "ties", "wilcoxon_p")), "paired_note",
                      *pooled, "paired_clips_note"]
    for run in ("aug", os.path.join("aug", "fold_1")):
        assert {rows[run][column] for column in paired} == {""}, run
    for run, scores in (("noaug", PAIRED_B), ("summed", summed)):
        row = rows[run]
        assert (row["paired_against"], row["paired_folds"], row["paired_note"]) == ("aug", "4", "")
        assert {row[column] for column in pooled} == {""}, run  # no fold wrote errors.csv: the note names aug's first
        assert row["paired_clips_note"] == (f"{os.path.join('aug', 'fold_1', 'errors.csv')}: no such file (a run from "
                                            "before sound_tf wrote it, or one whose test split was not scored)")
        for at, score in enumerate(compare.SCORES):
            diffs = np.array([scores[fold][at] - PAIRED_A[fold][at] for fold in PAIRED_A])
            assert float(row[f"paired_{score}_mean_diff"]) == pytest.approx(diffs.mean(), abs=1e-12)
            assert float(row[f"paired_{score}_std_diff"]) == pytest.approx(diffs.std(), abs=1e-12)  # ddof=0
            steps = np.round(diffs * 100).astype(int)  # the scores are given to 2 decimals
            counted = [int(row[f"paired_{score}_{part}"]) for part in ("wins", "losses", "ties")]
            assert counted == [int((steps > 0).sum()), int((steps < 0).sum()), int((steps == 0).sum())], (run, score)
    # by hand: accuracy +10, -5, 0, +10 points; balanced accuracy +10, 0, +5, +15; macro F1 +0.02, 0, -0.05, +0.11
    assert [rows["noaug"][f"paired_{score}_ties"] for score in compare.SCORES] == ["1", "1", "1"]
    assert rows["summed"]["paired_accuracy_ties"] == "1"  # fold 3's 0.1 * 7 against 0.7
    noaug = rows["noaug"]
    mean, std = ({score: float(noaug[f"paired_{score}_{part}"]) for score in compare.SCORES}
                 for part in ("mean_diff", "std_diff"))
    printed = _paired(lines)  # noaug's: the same numbers as its row, to the table's decimals
    assert printed[4][1:] == [*(f"{100 * mean[score]:+.2f} +-{100 * std[score]:.2f}"
                                for score in ("accuracy", "balanced_accuracy")),
                              f"{mean['macro_f1']:+.3f} +-{std['macro_f1']:.3f}"]
    assert printed[5][1:] == [" / ".join(noaug[f"paired_{score}_{part}"] for part in ("wins", "losses", "ties"))
                              for score in compare.SCORES]
    unpaired = rows["other"]
    assert unpaired["paired_against"] == "aug"
    assert unpaired["paired_note"] == ("fold 3 tested other clips (each fold's split.csv test rows; another seed's --k "
                                       "folds, or other data)")
    assert {unpaired[column] for column in paired if column not in ("paired_against", "paired_note")} == {""}
    assert f"not paired: other and aug: {unpaired['paired_note']}; their scores are not compared fold by fold" in lines
    assert compare.main(["aug", "aug/fold_1", "--csv", str(table)]) == 0
    assert not [column for column in _rows(table)[0] if column.startswith("paired_")]


def _hand_wilcoxon(diffs: list[float]) -> float:
    """The two-sided exact Wilcoxon signed-rank p-value by hand: zero differences dropped, the others ranked by size
    (tied sizes sharing their mean rank), then every assignment of signs to those ranks enumerated, the p-value twice
    the share of sums of positive ranks as far from the middle as the observed one, or farther, at most 1."""
    import itertools

    kept = [round(diff, 9) for diff in diffs if abs(diff) > 1e-9]
    sizes = sorted(abs(diff) for diff in kept)
    ranks = [sum(at + 1 for at, size in enumerate(sizes) if size == abs(diff)) / sizes.count(abs(diff))
             for diff in kept]
    observed = sum(rank for rank, diff in zip(ranks, kept) if diff > 0)
    sums = [sum(rank for rank, positive in zip(ranks, signs) if positive)
            for signs in itertools.product((False, True), repeat=len(kept))]
    low, high = sum(total <= observed for total in sums), sum(total >= observed for total in sums)
    return min(1.0, 2 * min(low, high) / len(sums))


# Five folds: accuracy's differences all of other sizes (+10, +5, -2, +15, +8 points), balanced accuracy's with a
# tied fold and two differences of the same size (+10, 0, +5, +10, -5), macro F1's all positive (the smallest p).
WILCOXON_A = {1: (0.70, 0.70, 0.60), 2: (0.80, 0.80, 0.70), 3: (0.75, 0.75, 0.65), 4: (0.60, 0.60, 0.55),
              5: (0.65, 0.65, 0.62)}
WILCOXON_B = {1: (0.80, 0.80, 0.61), 2: (0.85, 0.80, 0.72), 3: (0.73, 0.80, 0.68), 4: (0.75, 0.70, 0.59),
              5: (0.73, 0.60, 0.67)}


def test_paired_folds_give_each_scores_exact_wilcoxon_p_as_a_hand_enumeration(tmp_path, capsys, monkeypatch):
    """The paired table's last row is each score's two-sided exact Wilcoxon signed-rank p-value, the same as the 32
    assignments of signs of 5 folds enumerated by hand: a tied fold is left out (4 folds, 16 assignments), and two
    differences of one size share their rank; five folds all won give 2 / 32 = 0.0625, the smallest p of 5 folds.
    --csv writes the same p-values as numbers beside the mean, std and counts."""
    monkeypatch.chdir(tmp_path)
    folds = tuple(WILCOXON_A)
    _made_crossval(tmp_path / "aug", WILCOXON_A, augment=True, folds=folds)
    _made_crossval(tmp_path / "noaug", WILCOXON_B, augment=False, folds=folds)
    table = tmp_path / "table.csv"
    assert compare.main(["aug", "noaug", "--csv", str(table)]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = re.split(r"\s{2,}", next(line for line in lines if line.startswith("  p (Wilcoxon, exact)")).strip())
    expected = [_hand_wilcoxon([WILCOXON_B[fold][at] - WILCOXON_A[fold][at] for fold in folds]) for at in range(3)]
    assert expected[0] == 2 * 2 / 32  # +10, +5, -2, +15, +8: the loss has rank 1, T+ = 14; T+ >= 14 in 2 of 32
    assert expected[1] == 2 * 3 / 16  # +10, +5, +10, -5 (ranks 3.5, 1.5, 3.5, 1.5): T- <= 1.5 in 3 of 16
    assert expected[2] == 2 / 32 == 0.0625
    assert row == ["p (Wilcoxon, exact)", *(f"{p:.4g}" for p in expected)]
    written = _rows(table)[1]
    assert [float(written[f"paired_{score}_wilcoxon_p"]) for score in compare.SCORES] == pytest.approx(expected,
                                                                                                       abs=1e-12)
    assert _rows(table)[0]["paired_accuracy_wilcoxon_p"] == ""  # the first crossval's row


def _p_floor_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "gives no p below 2 / 2^n" in line]


def test_a_paired_table_of_too_few_folds_that_differ_says_the_smallest_p_they_can_give(tmp_path, capsys,
                                                                                       monkeypatch):
    """Over n folds that differ the exact Wilcoxon test gives no p below 2 / 2^n, which passes 0.05 from 6 folds on;
    a p of 0.5 printed for 3 FSDD folds, one tied, was the smallest there was, and nothing said so. Five folds:
    balanced accuracy's 4 that differ can give 0.125 at best, accuracy's and macro F1's 5 0.0625 (the line names
    each); a sixth fold where each score differs but balanced accuracy (fold 2 ties) names balanced accuracy alone;
    six folds where every score differs give no line."""
    monkeypatch.chdir(tmp_path)
    _made_crossval(tmp_path / "aug5", WILCOXON_A, augment=True, folds=tuple(WILCOXON_A))
    _made_crossval(tmp_path / "noaug5", WILCOXON_B, augment=False, folds=tuple(WILCOXON_A))
    assert compare.main(["aug5", "noaug5"]) == 0
    assert _p_floor_lines(capsys.readouterr().out.splitlines()) == [
        "note: over n folds that differ (ties left out) the Wilcoxon test gives no p below 2 / 2^n: 0.125 over 4 folds "
        "(balanced acc.), 0.0625 over 5 folds (accuracy, macro F1) here, so no p of the table can reach 0.05; the "
        "folds are too few to tell the two apart, which does not say they do the same"]
    six_a, six_b = {**WILCOXON_A, 6: (0.70, 0.70, 0.60)}, {**WILCOXON_B, 6: (0.75, 0.80, 0.65)}
    _made_crossval(tmp_path / "aug6", six_a, augment=True, folds=tuple(six_a))
    _made_crossval(tmp_path / "noaug6", six_b, augment=False, folds=tuple(six_a))
    assert compare.main(["aug6", "noaug6"]) == 0
    assert _p_floor_lines(capsys.readouterr().out.splitlines()) == [
        "note: over n folds that differ (ties left out) the Wilcoxon test gives no p below 2 / 2^n: 0.0625 over 5 "
        "folds (balanced acc.) here, so no p of those scores can reach 0.05; the folds are too few to tell the two "
        "apart, which does not say they do the same"]
    _made_crossval(tmp_path / "all6", {**six_b, 2: (0.85, 0.85, 0.72)}, augment=False, folds=tuple(six_a))
    assert compare.main(["aug6", "all6"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("  p (Wilcoxon, exact)") for line in out) and not _p_floor_lines(out)


def test_wilcoxon_p_of_ties_alone_of_tied_sizes_and_of_float_sums():
    """Every fold tied is p 1; a difference of 0.1 + 0.2 - 0.3 is a tie, not the smallest difference of all; 10 folds
    all won give 2 / 1024. Three differences of one size (+10, +10, -10, +20, +30): the 32 assignments of the shared
    rank 2 give 8 / 32, where scipy's method="exact", whose table assumes no ties, gave 0.1875."""
    tied = [0.10, 0.10, -0.10, 0.20, 0.30]
    assert compare.wilcoxon_p(tied) == pytest.approx(_hand_wilcoxon(tied), abs=1e-15)
    assert _hand_wilcoxon(tied) == 8 / 32
    assert compare.wilcoxon_p([0.0, 0.0, 0.0]) == 1.0
    assert compare.wilcoxon_p([0.1 + 0.2 - 0.3, 0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(2 / 32, abs=1e-15)
    assert compare.wilcoxon_p([0.01 * (fold + 1) for fold in range(10)]) == pytest.approx(2 / 1024, abs=1e-15)


def _made_run(folder: Path, tested: list[tuple[str, str]], wrong: set[int] | None, *, root: str = "/data",
              lr: float = 0.01) -> Path:
    """A train run folder as train writes it, from made-up answers (nothing trained): config.json, run_state.json,
    split.csv with the ``tested`` clips (paths under ``root``) and one training clip, metrics.json whose accuracy and
    test clips fit, and errors.csv with a row for each clip of ``wrong`` (their indices in ``tested``; ``None``: no
    errors.csv, as a run from before it was written)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"train": {"seed": 0, "learning_rate": lr}, "data": {"path": root}}),
                                        encoding="utf-8")
    (folder / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}), encoding="utf-8")
    _write_rows(folder / "split.csv", [{"split": "test", "path": f"{root}/{path}", "label": label}
                                       for path, label in tested]
                + [{"split": "train", "path": f"{root}/train_0.wav", "label": "cat"}])
    accuracy = 1 - len(wrong or ()) / len(tested)
    (folder / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "balanced_accuracy": accuracy,
                                                     "macro_f1": accuracy, "num_examples": len(tested)}),
                                         encoding="utf-8")
    if wrong is not None:  # as metrics.write_errors_csv writes it, its header even when no clip is wrong
        with (folder / "errors.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "true_label", "predicted_label", "score", "top3"])
            for at in sorted(wrong):
                path, label = tested[at]
                other = "dog" if label == "cat" else "cat"
                writer.writerow([f"{root}/{path}", label, other, "0.9000", f"{other}:0.90;{label}:0.10"])
    return folder


def _over_clips(lines: list[str]) -> list[str]:
    """The lines of the paired-over-test-clips blocks (each header with its table) and the not-paired lines."""
    found = []
    for at, line in enumerate(lines):
        if line.startswith("paired over test clips:"):
            found.extend(lines[at:at + 3])
        elif line.startswith("not paired over test clips"):
            found.append(line)
    return found


# 30 test clips, cat and dog in turn: both runs wrong on clips 0-2, b alone wrong on 3-4, a alone wrong on 5-13.
CLIPS = [(f"{'cat' if n % 2 == 0 else 'dog'}/{n}.wav", "cat" if n % 2 == 0 else "dog") for n in range(30)]
WRONG_A = {0, 1, 2, *range(5, 14)}
WRONG_B = {0, 1, 2, 3, 4}


def test_runs_on_the_same_test_clips_get_an_exact_mcnemar_test_each_against_the_first(tmp_path, capsys, monkeypatch):
    """Two train runs scored on the same 30 clips (b's data mounted elsewhere: the same clips under data.path): 16
    both right, 2 a alone, 9 b alone, 3 neither, and the exact McNemar p, a two-sided binomial test of 9 of 11
    discordant clips, 2 * (C(11, 0) + C(11, 1) + C(11, 2)) / 2^11 by hand; a third run wrong on the very clips a is
    wrong on has no discordant clip (p 1), each against the first given."""
    monkeypatch.chdir(tmp_path)
    _made_run(tmp_path / "a", CLIPS, WRONG_A)
    _made_run(tmp_path / "b", CLIPS, WRONG_B, root="/mnt/copy", lr=0.02)
    _made_run(tmp_path / "c", CLIPS, set(WRONG_A), lr=0.03)
    assert compare.main(["a", "b", "c"]) == 0
    lines = capsys.readouterr().out.splitlines()
    discordant, b_alone = 2 + 9, 9
    p = min(1.0, 2 * sum(math.comb(discordant, k) for k in range(min(b_alone, discordant - b_alone) + 1))
            / 2 ** discordant)
    assert p == 134 / 2048
    heading = "(p: exact McNemar test, two-sided, on the clips one of the two alone gets right):"
    assert _over_clips(lines) == [
        f"paired over test clips: b against a, on the same 30 test clips {heading}",
        "  both right  only a right  only b right  both wrong  p (McNemar, exact)",
        f"  16          2             9             3           {p:.4g}",
        f"paired over test clips: c against a, on the same 30 test clips {heading}",
        "  both right  only a right  only c right  both wrong  p (McNemar, exact)",
        "  18          0             0             12          1"]
    assert f"{p:.4g}" == "0.06543"


def test_too_few_clips_that_tell_two_runs_apart_are_noted_with_the_smallest_p_they_can_give(tmp_path, capsys,
                                                                                            monkeypatch):
    """Over n clips one of two runs alone gets right the exact McNemar test gives no p below 2 / 2^n: 3 such clips,
    all a's, printed p 0.25 (FSDD's 10 test clips, default augmentation against --no-augment) and nothing said it
    was the smallest there was; 6 give 0.03125 and no note, and so do none (p 1, the counts say why)."""
    monkeypatch.chdir(tmp_path)
    _made_run(tmp_path / "a", CLIPS, {0, 1, 2})
    _made_run(tmp_path / "b", CLIPS, {0, 1, 2, 3, 4, 5}, lr=0.02)
    _made_run(tmp_path / "c", CLIPS, {0, 1, 2, *range(3, 9)}, lr=0.03)
    _made_run(tmp_path / "d", CLIPS, {0, 1, 2}, lr=0.04)
    assert compare.main(["a", "b", "c", "d"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in _over_clips(lines)[2::3]]
    assert [row[:4] for row in rows] == [["24", "3", "0", "3"], ["21", "6", "0", "3"], ["27", "0", "0", "3"]]
    assert [row[-1] for row in rows] == ["0.25", "0.03125", "1"]  # 2 / 2^3, 2 / 2^6, no clip apart
    assert [line for line in lines if line.startswith("note: ") and "McNemar" in line] == [
        "note: 3 clips tell b and a apart (one of the two alone right), and over n of them the exact McNemar test "
        "gives no p below 2 / 2^n (0.25 here), so p cannot reach 0.05; they are too few to tell which run is better, "
        "which does not say the two do the same"]


def test_runs_without_errors_csv_or_on_other_clips_are_not_paired_over_clips(tmp_path, capsys, monkeypatch):
    """A run without errors.csv (older), one whose errors.csv names a clip that is no test clip of its split.csv, one
    whose errors.csv is behind its metrics.json (another count of mistakes), and runs on other test clips: one line
    each, no block for them; the run that fits is still paired. A first run without errors.csv pairs none."""
    monkeypatch.chdir(tmp_path)
    _made_run(tmp_path / "a", CLIPS, WRONG_A)
    _made_run(tmp_path / "old", CLIPS, None, lr=0.02)
    stray = _made_run(tmp_path / "stray", CLIPS, WRONG_B, lr=0.03)
    with (stray / "errors.csv").open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(["/data/train_0.wav", "cat", "dog", "0.9000", "dog:0.90;cat:0.10"])
    behind = _made_run(tmp_path / "behind", CLIPS, WRONG_B, lr=0.04)
    _edit_json(behind / "metrics.json", accuracy=0.5)
    _made_run(tmp_path / "other", CLIPS[:20], WRONG_B, lr=0.05)
    _made_run(tmp_path / "b", CLIPS, WRONG_B, lr=0.06)
    assert compare.main(["a", "old", "stray", "behind", "other", "b"]) == 0
    found = _over_clips(capsys.readouterr().out.splitlines())
    assert found == [
        "paired over test clips: b against a, on the same 30 test clips (p: exact McNemar test, two-sided, on the "
        "clips one of the two alone gets right):",
        "  both right  only a right  only b right  both wrong  p (McNemar, exact)",
        "  16          2             9             3           0.06543",
        f"not paired over test clips: {os.path.join('old', 'errors.csv')}: no such file (a run from before sound_tf "
        "wrote it, or one whose test split was not scored); old is not compared clip by clip with a",
        f"not paired over test clips: {os.path.join('stray', 'errors.csv')}: lists 1 clip that is no test clip of "
        "its split.csv (first: train_0.wav, cat); stray is not compared clip by clip with a",
        f"not paired over test clips: {os.path.join('behind', 'errors.csv')}: 5 of 30 test clips wrong, where its "
        "metrics.json says 30 clips at accuracy 0.5000: written by another evaluation; behind is not compared clip "
        "by clip with a",
        "not paired over test clips with a: other (other test clips, or none listed: split.csv's test rows)"]
    assert compare.main(["old", "a", "b"]) == 0
    assert _over_clips(capsys.readouterr().out.splitlines()) == [
        f"not paired over test clips: {os.path.join('old', 'errors.csv')}: no such file (a run from before sound_tf "
        "wrote it, or one whose test split was not scored); the runs are not compared clip by clip with old"]


def test_real_runs_on_one_split_pair_their_errors_csv_with_their_split_csv(runs, capsys):
    """Two runs trained on the same split: their errors.csv (one row per clip) names test clips of their split.csv,
    so the block's counts add up to the test clips, and each run's right answers to its accuracy."""
    assert compare.main([str(runs["a"]), str(runs["b"])]) == 0
    found = _over_clips(capsys.readouterr().out.splitlines())
    assert len(found) == 3, found
    both, only_a, only_b, neither, p = re.split(r"\s{2,}", found[2].strip())
    clips = len(_test_rows(runs["a"]))
    assert int(both) + int(only_a) + int(only_b) + int(neither) == clips
    for run, alone in ((runs["a"], only_a), (runs["b"], only_b)):
        accuracy = json.loads((run / "metrics.json").read_text())["accuracy"]
        assert int(both) + int(alone) == round(accuracy * clips)
        assert int(neither) + int(only_a if run == runs["b"] else only_b) == len(_rows(run / "errors.csv"))
    assert 0 < float(p) <= 1


def test_paired_clips_tables_head_their_columns_with_short_names_and_a_legend_gives_each_run(tmp_path, capsys,
                                                                                            monkeypatch):
    """Four runs on the same 30 clips, each path over 60 characters: two end in the same folder (run) under long,
    different parents, two in folders of their own. The blocks name each run by the shortest ending of its path
    that no other run's ends with, a legend before them gives each its path as the table above names it, and every
    line of the tables stays under 100 characters (271 with two of the paths in its header)."""
    monkeypatch.chdir(tmp_path)
    ablation = Path("session_55_ablation_of_augmentation_on_fsdd_by_speaker")
    given = [ablation / "jackson_held_out_first_walkthrough" / "seed_1" / "run",
             ablation / "jackson_held_out_second_walkthrough" / "seed_2" / "run",
             ablation / "walkthrough_runs" / "augment_default",
             ablation / "walkthrough_runs" / "augment_off"]
    for at, (path, wrong) in enumerate(zip(given, (WRONG_A, WRONG_B, {0, 1, 2}, set(WRONG_A)))):
        _made_run(tmp_path / path, CLIPS, wrong, lr=0.01 * (at + 1))
    names = [str(path) for path in given]
    assert min(map(len, names)) > 60
    first, second = os.path.join("seed_1", "run"), os.path.join("seed_2", "run")
    assert compare.main(names) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("runs in the paired-over-test-clips blocks below, by the end of their folder:")
    assert lines[start + 1:start + 5] == [f"  {first}       {names[0]}", f"  {second}       {names[1]}",
                                          f"  augment_default  {names[2]}", f"  augment_off      {names[3]}"]
    blocks = _over_clips(lines)
    assert [line.split(",")[0] for line in blocks[::3]] == [
        f"paired over test clips: {other} against {first}" for other in (second, "augment_default", "augment_off")]
    assert [line.strip() for line in blocks[1::3]] == [
        f"both right  only {first} right  only {other} right  both wrong  p (McNemar, exact)"
        for other in (second, "augment_default", "augment_off")]
    assert [line.split() for line in blocks[2::3]] == [["16", "2", "9", "3", "0.06543"], ["18", "0", "9", "3",
                                                                                        "0.003906"],
                                                       ["18", "0", "0", "12", "1"]]
    tables = [line for at, line in enumerate(blocks) if at % 3]
    assert max(map(len, tables)) < 100, tables
    assert sum(line.startswith("runs in the paired") for line in lines) == 1
    assert all(name not in line for name in names for line in blocks)


def test_runs_not_paired_over_clips_are_named_as_the_blocks_name_them_when_a_legend_is_printed(tmp_path, capsys,
                                                                                             monkeypatch):
    """Four runs in deep folders that all end in run: the blocks named them seed_1/run and seed_2/run after a
    legend, while the lines under them named the run without errors.csv and the one on other test clips, and the
    first run again, by their full paths. The legend now gives those runs too, and the lines name every run as the
    blocks do (the errors.csv a line is about keeps its path, to be found); with no block to print there is no
    legend, and the line names the runs by their paths as the table above does."""
    monkeypatch.chdir(tmp_path)
    deep = Path("session_57_deep_folders_of_runs_that_end_alike_on_fsdd")
    given = [deep / f"{name}_walkthrough" / f"seed_{seed}" / "run"
             for seed, name in enumerate(("first", "second", "older", "other_split"), 1)]
    _made_run(tmp_path / given[0], CLIPS, WRONG_A)
    _made_run(tmp_path / given[1], CLIPS, WRONG_B, lr=0.02)
    _made_run(tmp_path / given[2], CLIPS, None, lr=0.03)  # no errors.csv
    _made_run(tmp_path / given[3], CLIPS[:20], WRONG_B, lr=0.04)
    names = [str(path) for path in given]
    shorts = [os.path.join(f"seed_{seed}", "run") for seed in range(1, 5)]
    assert compare.main(names) == 0
    lines = capsys.readouterr().out.splitlines()
    start = lines.index("runs in the paired-over-test-clips blocks below and the not-paired lines after them, by the "
                        "end of their folder:")
    assert lines[start + 1:start + 5] == [f"  {short}  {name}" for short, name in zip(shorts, names)]
    found = _over_clips(lines)
    assert found[2].split() == ["16", "2", "9", "3", "0.06543"]
    assert found[:2] + found[3:] == [
        f"paired over test clips: {shorts[1]} against {shorts[0]}, on the same 30 test clips (p: exact McNemar test, "
        "two-sided, on the clips one of the two alone gets right):",
        f"  both right  only {shorts[0]} right  only {shorts[1]} right  both wrong  p (McNemar, exact)",
        f"not paired over test clips: {os.path.join(names[2], 'errors.csv')}: no such file (a run from before "
        f"sound_tf wrote it, or one whose test split was not scored); {shorts[2]} is not compared clip by clip with "
        f"{shorts[0]}",
        f"not paired over test clips with {shorts[0]}: {shorts[3]} (other test clips, or none listed: split.csv's "
        "test rows)"]
    assert compare.main([names[2], names[0]]) == 0  # the first run has no errors.csv: no block, no legend
    lines = capsys.readouterr().out.splitlines()
    assert not [line for line in lines if line.startswith("runs in the paired")]
    assert _over_clips(lines) == [
        f"not paired over test clips: {os.path.join(names[2], 'errors.csv')}: no such file (a run from before "
        f"sound_tf wrote it, or one whose test split was not scored); the runs are not compared clip by clip with "
        f"{names[2]}"]


#: Three folds of the same ten clip names each (a clip is keyed by its fold: keyed by its path alone, the three folds'
#: clip 0 would be one clip), and the clips each of two crossvals got wrong in each fold (their indices).
POOLED_TESTED = {fold: [(f"/data/{n}.wav", "cat" if n % 2 == 0 else "dog") for n in range(10)] for fold in (1, 2, 3)}
POOLED_AUG = {1: {0, 1, 2, 3, 4}, 2: {0, 1, 2, 3}, 3: {0, 1, 2, 3, 4, 5}}
POOLED_NOAUG = {1: {0}, 2: {0, 9}, 3: {1}}


def _pooled_crossval(folder: Path, wrong: dict[int, set[int]], *, augment: bool) -> Path:
    """A crossval over :data:`POOLED_TESTED`'s folds whose folds got ``wrong``'s clips wrong: each fold's errors.csv,
    and every score of the fold its accuracy over its ten clips, as its metrics.json and crossval.json give it."""
    scores = {fold: (1 - len(clips) / len(POOLED_TESTED[fold]),) * 3 for fold, clips in wrong.items()}
    return _made_crossval(folder, scores, augment=augment, tested=POOLED_TESTED, folds=tuple(POOLED_TESTED),
                          wrong=wrong)


def test_paired_crossvals_are_compared_clip_by_clip_over_their_folds_test_clips_pooled(tmp_path, capsys,
                                                                                        monkeypatch):
    """Over 3 folds the Wilcoxon test gives no p below 0.25, and noaug won all three; pooled, their 30 test clips
    tell the two apart: by hand, both wrong on clip 0 of folds 1 and 2 and clip 1 of fold 3 (3), aug alone right on
    clip 9 of fold 2 (1), noaug alone right on 4 + 3 + 5 clips (12), both right on the other 14; the exact McNemar p
    is scipy's binomial test of 12 of 13, 2 * (1 + 13) / 2^13. The block is under the paired-over-folds table."""
    from scipy import stats

    monkeypatch.chdir(tmp_path)
    _pooled_crossval(tmp_path / "aug", POOLED_AUG, augment=True)
    _pooled_crossval(tmp_path / "noaug", POOLED_NOAUG, augment=False)
    assert compare.main(["aug", "noaug"]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = _paired(lines)  # accuracy: aug 50, 60, 40%, noaug 90, 80, 90%
    assert [row[1] for row in table] == ["+40.00", "+20.00", "+50.00", "+36.67 +-12.47", "3 / 0 / 0", "0.25"]
    p = stats.binomtest(12, 13, p=0.5, alternative="two-sided").pvalue
    assert p == pytest.approx(2 * (1 + 13) / 2 ** 13, rel=1e-12)
    block = _over_clips(lines)
    assert block == [
        "paired over test clips: noaug against aug, pooled over the test clips of the same 3 folds, 30 in all (p: "
        "exact McNemar test, two-sided, on the clips one of the two alone gets right):",
        "  both right  only aug right  only noaug right  both wrong  p (McNemar, exact)",
        f"  14          1               12                3           {p:.4g}"]
    assert f"{p:.4g}" == "0.003418"
    assert lines[lines.index(block[0]) + 3] == compare.POOLED_CAVEAT  # the pairs are not independent: said under it
    assert lines.index(block[0]) > next(at for at, line in enumerate(lines) if line.startswith("paired over folds:"))
    assert not [line for line in lines if "not paired" in line or ("McNemar" in line and line.startswith("note:"))]
    # keyed by path alone, the clips would be 10, not 30; every fold the same: no clip tells the two apart
    _pooled_crossval(tmp_path / "again", POOLED_AUG, augment=False)
    assert compare.main(["aug", "again"]) == 0
    assert _over_clips(capsys.readouterr().out.splitlines())[2].split() == ["15", "0", "0", "15", "1"]


def test_a_folds_errors_csv_missing_or_not_fitting_keeps_the_pooled_test_out_and_the_table_in(tmp_path, capsys,
                                                                                              monkeypatch):
    """A fold's errors.csv missing, one listing a clip that is no test clip of its fold (its training clip), one
    behind its metrics.json (no clip wrong where its accuracy gives one), and the first crossval's own fold without
    one: a line names the file and why, the paired-over-folds table is still printed, and there is no pooled
    block for that pair."""
    monkeypatch.chdir(tmp_path)
    _pooled_crossval(tmp_path / "aug", POOLED_AUG, augment=True)
    missing = _pooled_crossval(tmp_path / "missing", POOLED_NOAUG, augment=False)
    (missing / "fold_2" / "errors.csv").unlink()
    stray = _pooled_crossval(tmp_path / "stray", POOLED_NOAUG, augment=False)
    with (stray / "fold_3" / "errors.csv").open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(["/data/other_3.wav", "cat", "dog", "0.9000", "dog:0.90;cat:0.10"])
    behind = _pooled_crossval(tmp_path / "behind", POOLED_NOAUG, augment=False)
    with (behind / "fold_1" / "errors.csv").open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(["/data/1.wav", "dog", "cat", "0.9000", "cat:0.90;dog:0.10"])  # a test clip
    assert compare.main(["aug", "missing", "stray", "behind"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not [line for line in lines if line.startswith("paired over test clips:")]
    found = [line for line in lines if line.startswith(("paired over folds:", "not paired"))]
    assert [line.split(",")[0] for line in found[::2]] == [f"paired over folds: {run} minus aug"
                                                           for run in ("missing", "stray", "behind")]
    assert sum(line.strip().startswith(compare.WILCOXON_ROW) for line in lines) == 3
    assert found[1::2] == [
        f"not paired over test clips: {os.path.join('missing', 'fold_2', 'errors.csv')}: no such file (a run from "
        "before sound_tf wrote it, or one whose test split was not scored); missing is not compared clip by clip "
        "with aug",
        f"not paired over test clips: {os.path.join('stray', 'fold_3', 'errors.csv')}: lists 1 clip that is no test "
        "clip of its split.csv (first: other_3.wav, cat); stray is not compared clip by clip with aug",
        f"not paired over test clips: {os.path.join('behind', 'fold_1', 'errors.csv')}: 2 of 10 test clips wrong, "
        "where its metrics.json says 10 clips at accuracy 0.9000: written by another evaluation; behind is not "
        "compared clip by clip with aug"]
    assert len(_paired(lines)) == 6  # missing's table: 3 folds, its mean, its record and its p
    (tmp_path / "aug" / "fold_1" / "errors.csv").unlink()
    (missing / "fold_2" / "errors.csv").write_text("path,true_label\n/data/0.wav,cat\n/data/9.wav,dog\n",
                                                   encoding="utf-8")
    assert compare.main(["aug", "missing"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert _paired(lines)[4][1] == "3 / 0 / 0"
    assert _over_clips(lines) == [
        f"not paired over test clips: {os.path.join('aug', 'fold_1', 'errors.csv')}: no such file (a run from "
        "before sound_tf wrote it, or one whose test split was not scored); missing is not compared clip by clip "
        "with aug"]


def test_csv_gives_the_pooled_clips_the_printed_block_gives(tmp_path, capsys, monkeypatch):
    """--csv's paired_clips ... paired_mcnemar_p columns on a paired crossval's row: the pooled counts by hand (30
    clips, 14 both right, 1 aug alone, 12 noaug alone, 3 both wrong) and scipy's binomial test of 12 of 13, as the
    block prints them; empty on the first crossval's row and on the row of a crossval whose fold has no errors.csv,
    whose fold-by-fold numbers are still written."""
    from scipy import stats

    monkeypatch.chdir(tmp_path)
    _pooled_crossval(tmp_path / "aug", POOLED_AUG, augment=True)
    _pooled_crossval(tmp_path / "noaug", POOLED_NOAUG, augment=False)
    missing = _pooled_crossval(tmp_path / "missing", POOLED_NOAUG, augment=False)
    (missing / "fold_3" / "errors.csv").unlink()
    table = tmp_path / "table.csv"
    assert compare.main(["aug", "noaug", "missing", "--csv", str(table)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {row["run"]: row for row in _rows(table)}
    pooled = ["paired_clips", "paired_both_right", "paired_only_first", "paired_only_other", "paired_both_wrong"]
    header = list(rows["aug"])
    assert header[header.index("paired_note") + 1:header.index("paired_note") + 7] == [*pooled, "paired_mcnemar_p"]
    assert [int(rows["noaug"][column]) for column in pooled] == [30, 14, 1, 12, 3]
    p = stats.binomtest(12, 13, p=0.5, alternative="two-sided").pvalue
    assert float(rows["noaug"]["paired_mcnemar_p"]) == pytest.approx(p, rel=1e-12)
    assert _over_clips(lines)[2].split() == [rows["noaug"][column] for column in pooled[1:]] + [f"{p:.4g}"]
    for run in ("aug", "missing"):
        assert {rows[run][column] for column in [*pooled, "paired_mcnemar_p"]} == {""}, run
    assert (rows["aug"]["paired_clips_note"], rows["noaug"]["paired_clips_note"]) == ("", "")
    assert rows["missing"]["paired_clips_note"] == (
        f"{os.path.join('missing', 'fold_3', 'errors.csv')}: no such file (a run from before sound_tf wrote it, or one "
        "whose test split was not scored)")
    said = rows["missing"]["paired_clips_note"]
    assert f"not paired over test clips: {said}; missing is not compared clip by clip with aug" in lines
    assert (rows["missing"]["paired_against"], rows["missing"]["paired_folds"]) == ("aug", "3")
    assert float(rows["missing"]["paired_accuracy_wilcoxon_p"]) == 0.25
