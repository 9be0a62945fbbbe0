"""sound_tf.crossval: leak-free folds (official and assigned), per-fold results, and resuming."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SPEECH_SPEAKERS, hold_folder, make_speech_commands
from sound_tf.config import Config, apply_overrides
from sound_tf.crossval import fold_splits, parse_folds, plan_folds
from sound_tf.datasets import load_examples
from sound_tf.errors import ConfigError, DatasetError

SR = 8000
TONES_HZ = {"high": 2200.0, "low": 300.0, "mid": 900.0}


# -- fold assignment (no training) -----------------------------------------------------------------------
def _esc50(root: Path) -> Path:
    """ESC-50 metadata: 4 classes x 5 folds x 2 source recordings, each cut into 2 takes."""
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for c, category in enumerate(["dog", "rain", "siren", "clock"]):
        for fold in range(1, 6):
            for s in range(2):
                src = f"{100000 + 1000 * c + 10 * fold + s}"
                rows += [f"{fold}-{src}-{take}-{c}.wav,{fold},{c},{category},False,{src},{take}" for take in "AB"]
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


def _urbansound8k(root: Path) -> Path:
    """UrbanSound8K metadata: 3 classes x 10 folds, each fold one recording (fsID) cut into 3 slices."""
    rows = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for c, name in enumerate(["siren", "drilling", "dog_bark"]):
        for fold in range(1, 11):
            fsid = 5000 + 100 * c + fold
            rows += [f"{fsid}-{c}-0-{i}.wav,{fsid},{i}.0,{i + 1}.0,1,{fold},{c},{name}" for i in range(3)]
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join(rows) + "\n")
    return root


def _three_fold_manifest(root: Path) -> Path:
    """``root/clips.csv``: one 0.25-s tone of each class in each of folds 1-3 (column ``fold``), beside it."""
    rows = ["path,label,fold"]
    for fold in (1, 2, 3):
        for label, freq in TONES_HZ.items():
            sf.write(root / f"{label}_{fold}.wav", 0.3 * np.sin(2 * np.pi * freq * np.arange(SR // 4) / SR), SR)
            rows.append(f"{label}_{fold}.wav,{label},{fold}")
    (root / "clips.csv").write_text("\n".join(rows) + "\n")
    return root / "clips.csv"


def _grouped_manifest(root: Path) -> Path:
    """A CSV without folds: 3 classes x 8 recordings, each cut into 1-3 clips (column ``group``)."""
    root.mkdir(parents=True)
    rows = ["path,label,group"]
    for label in TONES_HZ:
        for g in range(8):
            rows += [f"{label}/{label}_{g}_{i}.wav,{label},{label}-rec{g}" for i in range(1 + g % 3)]
    (root / "clips.csv").write_text("\n".join(rows) + "\n")
    return root / "clips.csv"


def _check_no_leak(examples, scheme_expected: str, num_folds: int, *, k: int = 5, data_format: str | None = None):
    config = Config()
    planned, scheme = plan_folds(examples, k=k, seed=3, **({"data_format": data_format} if data_format else {}))
    assert scheme == scheme_expected
    folds = sorted({ex.fold for ex in planned})
    assert folds == list(range(1, num_folds + 1))
    tested = defaultdict(int)
    for fold in folds:
        splits = fold_splits(planned, fold, config)
        assert all(splits.values()), f"fold {fold} has an empty split"
        paths = {name: {ex.path for ex in rows} for name, rows in splits.items()}
        groups = {name: {ex.group_key for ex in rows} for name, rows in splits.items()}
        for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
            assert not paths[a] & paths[b], (fold, a, b)
            assert not groups[a] & groups[b], (fold, a, b)  # no source recording on both sides
        assert sum(len(p) for p in paths.values()) == len(examples)
        for ex in splits["test"]:
            assert ex.fold == fold
            tested[ex.path] += 1
    assert len(tested) == len(examples) and set(tested.values()) == {1}  # every clip tested exactly once
    return planned


def test_official_folds_of_esc50_and_urbansound8k_never_leak(tmp_path):
    esc = load_examples(_esc50(tmp_path / "esc50"))
    planned = _check_no_leak(esc, "official", 5, k=3)  # --k is ignored for official folds
    assert [ex.fold for ex in planned] == [ex.fold for ex in esc]  # clips are never reshuffled
    us8k = load_examples(_urbansound8k(tmp_path / "us8k"))
    planned = _check_no_leak(us8k, "official", 10)
    assert [ex.fold for ex in planned] == [ex.fold for ex in us8k]


def test_speech_commands_lists_are_one_split_so_its_folds_are_assigned_by_speaker(tmp_path):
    """Its lists as folds, crossval held out the validation and test lists (a tenth each) in turn, training a
    model on the other tenth alone, and tested on the training files once."""
    examples = load_examples(make_speech_commands(tmp_path / "sc"))
    assert {ex.fold for ex in examples} == {1, 2, 3}
    planned = _check_no_leak(examples, "stratified group k-fold", 3, k=3, data_format="speech_commands")
    speakers_of = {fold: {ex.group for ex in planned if ex.fold == fold} for fold in (1, 2, 3)}
    assert sorted(map(len, speakers_of.values())) == [2, 2, 2]  # 6 speakers, each in one fold
    assert set.union(*speakers_of.values()) == set(SPEECH_SPEAKERS)
    assert all(Counter(ex.label for ex in planned if ex.fold == fold) == {"yes": 4, "no": 4, "up": 4}
               for fold in (1, 2, 3))
    # The lists are not a format's folds elsewhere: a CSV of the same folds keeps them
    assert plan_folds(examples, k=3)[1] == "official"


def test_assigned_folds_keep_recordings_together_and_stratify(tmp_path):
    examples = load_examples(_grouped_manifest(tmp_path / "grouped"))
    planned = _check_no_leak(examples, "stratified group k-fold", 4, k=4)
    folds_of_group = defaultdict(set)
    for ex in planned:
        folds_of_group[ex.group].add(ex.fold)
    assert all(len(f) == 1 for f in folds_of_group.values())
    for fold in range(1, 5):  # 8 recordings per class over 4 folds: every class in every fold
        assert {ex.label for ex in planned if ex.fold == fold} == set(TONES_HZ)
    # The seed shuffles the assignment: the same seed gives the same folds, another seed others.
    from sound_tf.datasets import assign_kfold

    folds_of = {seed: [ex.fold for ex in plan_folds(examples, k=4, seed=seed)[0]] for seed in (3, 4)}
    assert [ex.fold for ex in planned] == folds_of[3] == assign_kfold(examples, 4, 3)
    assert folds_of[4] == assign_kfold(examples, 4, 4) != folds_of[3]
    with pytest.raises(DatasetError, match=r"k must be an integer in \[2, 15\]"):
        plan_folds(examples, k=25)


def _older_settings(folder: Path, config: Config) -> None:
    """``folder/config.json`` as an older version wrote ``config``: without a setting added since."""
    folder.mkdir(parents=True)
    data = config.to_dict()
    del data["augment"]["spec_probability"]
    (folder / "config.json").write_text(json.dumps(data))


def test_the_default_folder_an_older_version_named_is_found_again(tmp_path, monkeypatch):
    """An added setting changes the fingerprint, and so the default folder's name: the same command finds
    the folder an older version started (when its settings read today are the same) instead of a new one."""
    from sound_tf.crossval import default_out_dir

    monkeypatch.chdir(tmp_path)
    config, other = Config(), apply_overrides(Config(), {"train.epochs": 7})
    assert default_out_dir(config) == Path("runs") / f"crossval-{config.fingerprint()}"  # nothing there yet
    _older_settings(tmp_path / "runs" / "crossval-0123456789ab-k8", config)  # another --k
    _older_settings(tmp_path / "runs" / "crossval-ba9876543210", other)  # other settings
    (tmp_path / "runs" / "crossval-notes").mkdir()
    assert default_out_dir(config) == Path("runs") / f"crossval-{config.fingerprint()}"
    assert default_out_dir(config, 8) == Path("runs") / "crossval-0123456789ab-k8"
    assert default_out_dir(other) == Path("runs") / "crossval-ba9876543210"
    _older_settings(tmp_path / "runs" / "crossval-00112233aabb", config)
    assert default_out_dir(config) == Path("runs") / "crossval-00112233aabb"
    (tmp_path / "runs" / f"crossval-{config.fingerprint()}").mkdir()  # today's name, once it exists, wins
    assert default_out_dir(config) == Path("runs") / f"crossval-{config.fingerprint()}"


def test_fold_arguments_are_validated(tmp_path, capsys):
    from sound_tf import crossval
    from sound_tf.config import apply_overrides
    from sound_tf.crossval import run_crossval

    from sound_tf.crossval import DEFAULT_K, default_out_dir

    assert parse_folds("3, 1,3") == [1, 3] and parse_folds(None) is None
    # another --k is another cross-validation: its own default folder (the same one was refused, or overwritten)
    assert default_out_dir(Config()) == default_out_dir(Config(), DEFAULT_K) == Path(
        "runs") / f"crossval-{Config().fingerprint()}"
    assert default_out_dir(Config(), 8) == Path("runs") / f"crossval-{Config().fingerprint()}-k8"
    with pytest.raises(ConfigError, match="1,x"):
        parse_folds("1,x")
    # a fold whose every file is unreadable is named before any fold trains (it used to stop a later fold)
    rows = ["path,label,fold"]
    for fold in (1, 2, 3):
        for label, freq in TONES_HZ.items():
            path = tmp_path / f"{label}_{fold}.wav"
            if fold == 2:
                path.write_bytes(b"RIFF\x00\x00 not a wave file")
            else:
                sf.write(path, 0.3 * np.sin(2 * np.pi * freq * np.arange(SR // 2) / SR), SR)
            rows.append(f"{path.name},{label},{fold}")
    (tmp_path / "clips.csv").write_text("\n".join(rows) + "\n")
    broken = apply_overrides(Config(), {"data.path": str(tmp_path / "clips.csv"), "audio.sample_rate_hz": SR,
                                        "data.cache_dir": str(tmp_path / "cache")})
    unreadable = r"fold 2: none of its 3 files could be read \(first: .*high_2.wav: not a readable audio file.*\); "
    with pytest.raises(DatasetError, match=rf"{unreadable}fix them, or leave the fold out with folds$"):
        run_crossval(broken, tmp_path / "cv_broken", log=lambda m: None)  # it said "with --folds" to a Python caller
    assert not (tmp_path / "cv_broken" / "fold_1").exists()
    assert crossval.main(["--data", str(tmp_path / "clips.csv"), "--sample-rate", str(SR), "--cache-dir",
                          str(tmp_path / "cache"), "--out", str(tmp_path / "cv_broken"), "--quiet"]) == 2
    assert re.fullmatch(rf"error: {unreadable}fix them, or leave the fold out with --folds",
                        capsys.readouterr().err.strip())
    (tmp_path / "clips.csv").write_text("\n".join(row for row in rows if not row.startswith(("low_2", "mid_2")))
                                        + "\n")  # fold 2 of one file: it said "none of its 1 file(s)"
    with pytest.raises(DatasetError, match=r"^fold 2: its 1 file could not be read \(first: .*high_2.wav: "):
        run_crossval(broken, tmp_path / "cv_broken_one", log=lambda m: None)
    one = tmp_path / "one"  # one class: refused before the folder holds any state (fixed data then runs there)
    (one / "only").mkdir(parents=True)
    sf.write(one / "only" / "a.wav", np.zeros(SR // 2, np.float32), SR)
    with pytest.raises(DatasetError, match=r"one class \('only'\); a classifier needs at least 2"):
        run_crossval(apply_overrides(Config(), {"data.path": str(one)}), tmp_path / "cv_one", log=lambda m: None)
    assert not (tmp_path / "cv_one").exists()  # the folder it created, holding only its lock, goes again
    config = apply_overrides(Config(), {"data.path": str(tmp_path), "data.split_file": str(tmp_path / "split.csv")})
    fixed = f"data.split_file={tmp_path / 'split.csv'} fixes one split; cross-validation makes one per fold from "
    with pytest.raises(ConfigError) as info:
        run_crossval(config, tmp_path / "cv", log=lambda m: None)  # it was silently ignored
    assert str(info.value) == f"{fixed}data.path (leave data.split_file out)"  # it said "from --data"
    assert crossval.main(["--data", str(tmp_path), "--set", f"data.split_file={tmp_path / 'split.csv'}", "--out",
                          str(tmp_path / "cv"), "--quiet"]) == 2
    assert capsys.readouterr().err == (f"{_folder_recipe_line(tmp_path)}error: {fixed}--data (leave data.split_file "
                                       f"out)\n")


def test_a_partial_summary_names_the_folds_that_ran_with_their_own_numbers(tmp_path):
    """Folds 2 and 4 of 4 finished (e.g. ``--folds 2,4``): each row of the summary is that fold's, with its
    own test clips, scores, epochs and seconds (not the first folds' names on them). No training."""
    from sound_tf.crossval import summarise
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid"]
    out = tmp_path / "cv"
    # fold 2: 3 clips, 2 right, 2 epochs, 11 s; fold 4: 6 clips, all right, 3 epochs, 25 s
    finished = {2: ([0, 1, 2], [0, 1, 1], 2, 11.0), 4: ([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2], 3, 25.0)}
    for fold, (y_true, y_pred, epochs, seconds) in finished.items():
        fold_dir = out / f"fold_{fold}"
        fold_dir.mkdir(parents=True)
        write_metrics_json(fold_dir / "metrics.json", compute_metrics(y_true, np.eye(3)[y_pred], labels))
        (fold_dir / "run_state.json").write_text(json.dumps({"status": "done", "seconds": seconds}))
        (fold_dir / "history.csv").write_text("epoch,loss\n" + "".join(f"{e},{1.0 / (e + 1)}\n" for e in range(epochs)))
    (out / "fold_3").mkdir()  # started, not finished
    (out / "fold_3" / "run_state.json").write_text(json.dumps({"status": "running"}))

    result = summarise(out, [1, 2, 3, 4], config=Config(), log=lambda m: None)
    assert (result["folds_done"], result["folds_pending"], result["complete"]) == ([2, 4], [1, 3], False)
    # the folds finished, counted under a name that says so; num_folds (the same) stays for older readers
    written = json.loads((out / "crossval.json").read_text())
    assert (written["folds"], written["num_folds_done"], written["num_folds"]) == ([1, 2, 3, 4], 2, 2)
    assert [(r["fold"], r["test_clips"], r["accuracy"], r["epochs"], r["seconds"]) for r in result["per_fold"]] == [
        (2, 3, pytest.approx(2 / 3), 2, 11.0), (4, 6, 1.0, 3, 25.0)]
    assert result["mean"]["accuracy"] == pytest.approx((2 / 3 + 1) / 2) and result["num_examples"] == 9
    with (out / "crossval.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["fold"], r["test_clips"], r["accuracy"], r["epochs"]) for r in table[:2]] == [
        ("2", "3", "0.666667", "2"), ("4", "6", "1.000000", "3")]
    assert [r["fold"] for r in table] == ["2", "4", "mean", "std (ddof=0)"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "2 of 4 folds finished; pending: [1, 3]" in page


def test_per_class_numbers_are_given_as_mean_and_std_over_the_folds_that_test_the_class(tmp_path):
    """crossval.json's per_class_folds, crossval_per_class.csv and the report give each class's precision, recall
    and F1 as mean and population std over the folds whose test clips hold it (fold 3 has no clip of mid, which it
    predicted once: its precision 0 there is left out); the pooled numbers stay beside them. No training."""
    from sound_tf.crossval import summarise
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid"]
    out = tmp_path / "cv"
    folds = {1: ([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2]),  # all right
             2: ([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 2]),  # a high taken for low
             3: ([0, 0, 1, 1], [0, 0, 1, 2])}  # no mid clip; a low taken for mid
    for fold, (y_true, y_pred) in folds.items():
        fold_dir = out / f"fold_{fold}"
        fold_dir.mkdir(parents=True)
        write_metrics_json(fold_dir / "metrics.json", compute_metrics(y_true, np.eye(3)[y_pred], labels))
        (fold_dir / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
    lines: list[str] = []
    result = summarise(out, [1, 2, 3], config=Config(), log=lines.append)
    over = json.loads((out / "crossval.json").read_text())["per_class_folds"]
    assert over == result["per_class_folds"]
    assert [over[label]["folds"] for label in labels] == [3, 3, 2]
    # high: recall 1, 0.5, 1; F1 1, 2/3, 1.  low: precision 1, 2/3, 1; recall 1, 1, 0.5; F1 1, 0.8, 2/3
    assert over["high"]["mean"] == pytest.approx({"precision": 1.0, "recall": 5 / 6, "f1": 8 / 9})
    assert over["high"]["std"] == pytest.approx({"precision": 0.0, "recall": 0.235702, "f1": 0.157135}, abs=1e-6)
    assert over["low"]["mean"] == pytest.approx({"precision": 8 / 9, "recall": 5 / 6, "f1": 37 / 45})
    assert over["low"]["std"]["f1"] == pytest.approx(0.136987, abs=1e-6)
    assert over["mid"] == {"folds": 2, "mean": {"precision": 1.0, "recall": 1.0, "f1": 1.0},
                           "std": {"precision": 0.0, "recall": 0.0, "f1": 0.0}}
    assert result["pooled"]["per_class"]["mid"]["precision"] == pytest.approx(0.8)  # fold 3's mid counts pooled
    with (out / "crossval_per_class.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["label"], r["folds"], r["recall_mean"], r["recall_std"], r["f1_mean"], r["f1_std"], r["pooled_f1"],
             r["support"]) for r in table] == [
        ("high", "3", "0.833333", "0.235702", "0.888889", "0.157135", "0.909091", "6"),
        ("low", "3", "0.833333", "0.235702", "0.822222", "0.136987", "0.833333", "6"),
        ("mid", "2", "1.000000", "0.000000", "1.000000", "0.000000", "0.888889", "4")]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<h3>Per class over the folds</h3>" in page
    assert ("<tr><td>high</td><td class=\"num\">3</td><td class=\"num\">1.0000</td><td class=\"num\">0.0000</td>"
            "<td class=\"num\">0.8333</td><td class=\"num\">0.2357</td><td class=\"num\">0.8889</td>"
            "<td class=\"num\">0.1571</td></tr>") in page
    assert any(line.startswith("per class over folds: crossval_per_class.csv and the report") for line in lines)


def test_the_pooled_data_advice_names_its_counts_as_the_dataset_not_a_training_split(tmp_path):
    """The pooled advice counts each class's clips over every fold (20 here); no fold's model trained on
    20 clips of a class (each trained on the other fold's 10), so the sentence must not call them training
    examples. No training."""
    from sound_tf.crossval import summarise, write_folds_csv
    from sound_tf.datasets import Example
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid"]
    out = tmp_path / "cv"
    for fold in (1, 2):  # every fold: mid taken for high three times, the rest right
        fold_dir = out / f"fold_{fold}"
        fold_dir.mkdir(parents=True)
        write_metrics_json(fold_dir / "metrics.json",
                           compute_metrics([0, 0, 0, 1, 1, 1, 2, 2, 2], np.eye(3)[[0, 0, 0, 1, 1, 1, 0, 0, 0]], labels))
        (fold_dir / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
    write_folds_csv(out / "folds.csv", [Example(path=f"{label}/{fold}_{i}.wav", label=label, fold=fold)
                                        for label in labels for fold in (1, 2) for i in range(10)])
    lines: list[str] = []
    result = summarise(out, [1, 2], config=Config(), log=lines.append)
    assert result["pooled"]["per_class"]["mid"]["f1"] == 0.0
    assert result["pooled"]["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    advice = [line for line in lines if line.startswith("  mid: F1") and "despite" in line]
    assert advice == ["  mid: F1 0.00 (macro 0.56) despite 20 clips in the dataset, most often mistaken for high "
                      "(6x); add more varied examples or check its labels."]
    assert "training examples" not in (out / "report.html").read_text(encoding="utf-8")


def test_a_fold_near_chance_is_named_in_the_summary_and_the_report(tmp_path):
    """A fold whose model scores near chance (FSDD leave-one-speaker-out without augmentation: 0.128 with 10 digits,
    its model keeping epoch 1's weights) is named with its balanced accuracy and chance, in the log and the report:
    its own report said it, the cross-validation's mean (and compare's paired differences) took it without a word.
    A fold that learnt is not named. No training."""
    from sound_tf.crossval import summarise
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid", "none"]
    out = tmp_path / "cv"
    truth = [0, 0, 1, 1, 2, 2, 3, 3]
    folds = {1: [0, 0, 1, 1, 2, 2, 3, 0],  # 7 of 8 right
             2: [0, 0, 0, 0, 0, 0, 0, 0]}  # always 'high': balanced accuracy 0.25, chance with 4 classes
    for fold, guesses in folds.items():
        fold_dir = out / f"fold_{fold}"
        fold_dir.mkdir(parents=True)
        write_metrics_json(fold_dir / "metrics.json", compute_metrics(truth, np.eye(4)[guesses], labels))
        (fold_dir / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
    lines: list[str] = []
    result = summarise(out, [1, 2], config=Config(), log=lines.append)
    warned = [line for line in lines if line.startswith("warning: fold")]
    assert warned == [f"warning: fold 2 scores near chance (balanced accuracy 0.25; chance is 0.25 with 4 classes): "
                      f"its model learnt little that holds for its test clips, and it counts in the mean over the "
                      f"folds as any other fold does ({out / 'fold_2' / 'report.html'})"]
    assert lines.index(warned[0]) == 2 and lines[1].startswith("mean +/- std over folds")  # beside the mean it is in
    assert warned[0] in (out / "report.html").read_text(encoding="utf-8")
    # the pooled scores say they are pooled, as report.html's pooled column: their macro F1 is not the folds' mean
    pooled = [line for line in lines if "macro F1" in line]
    assert pooled == ["pooled (computed from the summed confusion matrix, each clip weighing alike; the mean over "
                      f"folds above weighs each fold alike): accuracy {9 / 16:.4f}  balanced accuracy "
                      f"{result['pooled']['balanced_accuracy']:.4f}  macro F1 {result['pooled']['macro_f1']:.4f}"]
    assert f"{result['pooled']['macro_f1']:.4f}" != f"{result['mean']['macro_f1']:.4f}"


#: Fold 1 of 180 FSDD digits (6 x 30, 5 folds, model.widths [16, 32, 64, 64], 40 epochs, default augmentation), its
#: epochs 1, 11, 21, 31 and 37-40 (accuracy, loss, val_accuracy, val_loss): training accuracy 0.24 at the end,
#: validation 0.39 at best, the validation loss lowest 3 epochs before the end as the cosine schedule's learning rate
#: neared 0.
UNDERFIT_FOLD = [(0.198, 3.947, 0.167, 1.792), (0.219, 1.914, 0.306, 1.778), (0.354, 1.825, 0.306, 1.676),
                 (0.250, 1.927, 0.389, 1.627), (0.219, 1.837, 0.361, 1.6159), (0.260, 1.712, 0.361, 1.6215),
                 (0.250, 1.856, 0.361, 1.6163), (0.240, 1.868, 0.361, 1.6161)]
#: A fold that learnt: training accuracy 0.97 at the end, validation 0.93.
LEARNT_FOLD = [(0.60, 1.00, 0.55, 1.10), (0.85, 0.50, 0.80, 0.60), (0.97, 0.10, 0.93, 0.25)]


def test_folds_that_underfit_with_augmentation_on_are_named_in_the_summary_and_the_report(tmp_path):
    """Five folds of 180 FSDD digits scored 25.6% with the default augmentation and 72.2% without, and the
    cross-validation's log advised more updates alone (its pooled summary, near chance): each fold's history said the
    model underfit, with a training accuracy below its validation one. A fold whose history underfits with
    augmentation on (fold 1's measured epochs, patience 10 as the folder recipe's) is now named with its two
    accuracies, after the mean, in the log and the report; a fold that learnt is not, and the same folds trained
    without augmentation get no line. No training."""
    from sound_tf.crossval import summarise
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid", "none"]
    truth = [0, 0, 1, 1, 2, 2, 3, 3]
    guesses = {1: [0, 1, 1, 2, 2, 3, 3, 0], 2: [0, 0, 1, 1, 2, 2, 3, 0]}  # 4 and 7 of 8 right: neither near chance

    def crossval(name: str, augmented: bool) -> tuple[list[str], Path]:
        out = tmp_path / name
        config = apply_overrides(Config(), {"augment.enabled": augmented, "train.early_stopping_patience": 10})
        for fold, history in ((1, UNDERFIT_FOLD), (2, LEARNT_FOLD)):
            fold_dir = out / f"fold_{fold}"
            (fold_dir / "checkpoints").mkdir(parents=True)
            write_metrics_json(fold_dir / "metrics.json", compute_metrics(truth, np.eye(4)[guesses[fold]], labels))
            (fold_dir / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
            config.save(fold_dir)
            (fold_dir / "history.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n" + "".join(
                f"{epoch},{a},{l},{va},{vl}\n" for epoch, (a, l, va, vl) in enumerate(history)))
            (fold_dir / "split.csv").write_text("split,path,label\n" + "".join(
                f"val,v{i}.wav,{labels[i % 4]}\n" for i in range(8)))
            (fold_dir / "checkpoints" / "best.weights.h5").write_bytes(b"")
        lines: list[str] = []
        summarise(out, [1, 2], config=config, log=lines.append)
        return lines, out

    lines, out = crossval("aug", True)
    warned = [line for line in lines if line.startswith("warning:")]
    assert warned == ["warning: 1 of 2 folds underfit with augmentation on (training accuracy at the last epoch, on "
                      "augmented clips / the best validation accuracy: fold 1 0.24 / 0.39): augmentation makes a short "
                      "run or a small model learn slower, and the mean above may be below what the model can score; "
                      "the same crossval with --no-augment (another --out) and python -m sound_tf.compare on the two "
                      "measure what it costs, or try more epochs (--epochs) or a smaller batch (--batch-size)"]
    assert lines.index(warned[0]) == 2 and lines[1].startswith("mean +/- std over folds")  # beside the mean
    assert warned[0] in (out / "report.html").read_text(encoding="utf-8")
    assert [line for line in crossval("noaug", False)[0] if line.startswith("warning:")] == []


def test_a_near_chance_folds_line_gives_its_own_fold_balanced_accuracy_and_evaluated_classes(tmp_path):
    """The near-chance line of a fold whose test clips hold 3 of the 4 labels, after a pending fold: its number (not
    the n-th of all folds), its balanced accuracy (0.33, where its accuracy is 0.50) and the chance of its 3 classes
    (session 53's mutation audit: the n-th fold of all_folds named, accuracy for balanced accuracy, and chance or
    classes from the labels passed every test). No training."""
    from sound_tf.crossval import summarise
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid", "none"]
    out = tmp_path / "cv"
    truth = [0, 0, 0, 0, 1, 1, 2, 2]  # no 'none' clip among the test clips
    folds = {2: truth, 3: [0] * len(truth)}  # fold 1 pending; fold 3 always 'high'
    for fold, guesses in folds.items():
        fold_dir = out / f"fold_{fold}"
        fold_dir.mkdir(parents=True)
        write_metrics_json(fold_dir / "metrics.json", compute_metrics(truth, np.eye(4)[guesses], labels))
        (fold_dir / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
    guesses = np.asarray(folds[3])
    classes = sorted(set(truth))
    balanced = np.mean([np.mean(guesses[np.asarray(truth) == c] == c) for c in classes])  # (1 + 0 + 0) / 3
    accuracy = np.mean(guesses == np.asarray(truth))  # 4 of 8
    assert f"{balanced:.2f}" != f"{accuracy:.2f}" and len(classes) != len(labels)
    lines: list[str] = []
    summarise(out, [1, 2, 3], config=Config(), log=lines.append)
    warned = [line for line in lines if line.startswith("warning: fold")]
    assert warned == [f"warning: fold 3 scores near chance (balanced accuracy {balanced:.2f}; chance is "
                      f"{1 / len(classes):.2f} with {len(classes)} classes): its model learnt little that holds for "
                      f"its test clips, and it counts in the mean over the folds as any other fold does "
                      f"({out / 'fold_3' / 'report.html'})"]


def test_the_summary_counts_every_file_of_the_folds_as_files_the_skipped_ones_too(tmp_path):
    """``files`` in the report's dataset table is what the log's "cross-validation: N files", train and each
    fold's report call files: every listed file, the unreadable ones with them (``skipped`` says how many);
    the class counts per fold are of readable clips. No training."""
    from sound_tf.crossval import summarise, write_folds_csv
    from sound_tf.datasets import Example
    from sound_tf.evaluation import write_skipped_csv
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid"]
    out = tmp_path / "cv"
    for fold in (1, 2):
        fold_dir = out / f"fold_{fold}"
        fold_dir.mkdir(parents=True)
        write_metrics_json(fold_dir / "metrics.json", compute_metrics([0, 1, 2], np.eye(3), labels))
        (fold_dir / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
    examples = [Example(path=f"/data/{label}/{fold}_{i}.wav", label=label, fold=fold)
                for label in labels for fold in (1, 2) for i in range(3)]  # 18 files, 3 per class and fold
    write_folds_csv(out / "folds.csv", examples)
    write_skipped_csv(out / "skipped.csv", [("/data/low/2_0.wav", "not a readable audio file")])
    summarise(out, [1, 2], config=Config(), log=lambda m: None)
    page = (out / "report.html").read_text(encoding="utf-8")
    items = dict(re.findall(r"<tr><td>(files|skipped)</td><td class=\"num\">(\d+)</td></tr>", page))
    assert items == {"files": "18", "skipped": "1"}
    counts = re.search(r"<tr><td>low</td>((?:<td class=\"num\">\d+</td>)+)</tr>", page).group(1)
    assert re.findall(r"\d+", counts) == ["3", "2", "5"]  # fold 1, fold 2 (one unreadable), all


def test_the_report_says_which_groups_each_fold_tests(tmp_path):
    """A speaker-wise cross-validation's report names each fold's speakers (only folds.csv and every fold's
    split.csv said who a fold tested); folds of many groups (ESC-50's 400 source recordings) are counted, and
    an unreadable file's group is not counted. Data without groups gets no line. No training."""
    from sound_tf.crossval import GROUPS_NAMED, summarise, write_folds_csv
    from sound_tf.datasets import Example
    from sound_tf.evaluation import write_skipped_csv
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid"]

    def cross_validation(out: Path, speakers: dict[int, list[str]]) -> dict[str, str]:
        for fold in speakers:
            fold_dir = out / f"fold_{fold}"
            fold_dir.mkdir(parents=True)
            write_metrics_json(fold_dir / "metrics.json", compute_metrics([0, 1, 2], np.eye(3), labels))
            (fold_dir / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
        write_folds_csv(out / "folds.csv", [
            Example(path=f"/data/{who}_{label}.wav", label=label, fold=fold, group=who or None)
            for fold, names in speakers.items() for who in names for label in labels])
        write_skipped_csv(out / "skipped.csv", [(f"/data/{who}_{label}.wav", "not a readable audio file")
                                                for who in ("zoe",) for label in labels])
        summarise(out, list(speakers), config=Config(), log=lambda m: None)
        page = (out / "report.html").read_text(encoding="utf-8")
        per_fold = page[page.index("<h3>Per fold</h3>"):]
        tables[out.name] = re.findall(r'<tr><td class="num">(\d+)</td><td class="num">\d+</td><td>([^<]*)</td>',
                                      per_fold) if "<th>test_groups</th>" in per_fold else None
        return dict(re.findall(r"<tr><td>(\w+ per fold)</td><td>([^<]*)</td></tr>", page))

    tables: dict[str, list[tuple[str, str]] | None] = {}
    by_speaker = cross_validation(tmp_path / "a", {1: ["lucas", "george"], 2: ["jackson", "zoe"], 10: ["theo"]})
    assert by_speaker == {"groups per fold": "fold 1: george, lucas; fold 2: jackson; fold 10: theo"}
    # the per-fold table names whom each fold tests, after its test clips (zoe's files unreadable)
    assert tables["a"] == [("1", "groups george, lucas"), ("2", "group jackson"), ("10", "group theo")]
    many = cross_validation(tmp_path / "b", {1: [f"s{i}" for i in range(GROUPS_NAMED + 1)], 2: ["a", "b"]})
    assert many == {"groups per fold": f"fold 1: {GROUPS_NAMED + 1} groups; fold 2: 2 groups"}
    assert tables["b"] == [("1", f"{GROUPS_NAMED + 1} groups"), ("2", "groups a, b")]
    assert cross_validation(tmp_path / "c", {1: [""], 2: [""]}) == {} and tables["c"] is None  # no column
    # UrbanSound8K's groups are its metadata's fsID column: named so
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "crossval_state.json").write_text(json.dumps({"format": "urbansound8k"}))
    by_fsid = cross_validation(tmp_path / "d", {1: ["17592", "24074", "40722", "57320"], 2: ["7383"],
                                                3: ["31", "20", "10"]})
    assert tables["d"] == [("1", "4 fsIDs"), ("2", "fsID 7383"), ("3", "fsIDs 10, 20, 31")]  # up to 3 named
    # the dataset table says fsIDs too, naming up to GROUPS_NAMED in every fold (4 here), as before
    assert by_fsid == {"fsIDs per fold": "fold 1: 17592, 24074, 40722, 57320; fold 2: 7383; fold 3: 10, 20, 31"}
    # ESC-50's source recordings, more than GROUPS_NAMED in a fold: counted as src_files, not groups
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "crossval_state.json").write_text(json.dumps({"format": "esc50"}))
    by_source = cross_validation(tmp_path / "e", {1: [f"1-{i}" for i in range(GROUPS_NAMED + 1)], 2: ["2-1"]})
    assert by_source == {"src_files per fold": f"fold 1: {GROUPS_NAMED + 1} src_files; fold 2: 1 src_file"}
    assert tables["e"] == [("1", f"{GROUPS_NAMED + 1} src_files"), ("2", "src_file 2-1")]


def test_the_summary_rows_of_folds_2_and_10_are_their_own_and_five_groups_are_named(tmp_path):
    """Folds 2 and 10 finished: each per-fold row (crossval.json, crossval.csv) is that fold's (fold 10's row with
    fold 2's scores, had the folds been taken in the order of their names, '10' before '2'); a fold of exactly
    GROUPS_NAMED speakers has them named, one more is counted. No training."""
    from sound_tf.crossval import GROUPS_NAMED, summarise, write_folds_csv
    from sound_tf.datasets import Example
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid"]
    out = tmp_path / "cv"
    scored = {2: ([0, 1, 2], [0, 1, 1]), 10: ([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2])}
    for fold, (y_true, y_pred) in scored.items():
        (out / f"fold_{fold}").mkdir(parents=True)
        write_metrics_json(out / f"fold_{fold}" / "metrics.json", compute_metrics(y_true, np.eye(3)[y_pred], labels))
        (out / f"fold_{fold}" / "run_state.json").write_text(json.dumps({"status": "done", "seconds": float(fold)}))
    speakers = {2: [f"s{i}" for i in range(GROUPS_NAMED)], 10: ["a", "b"]}
    write_folds_csv(out / "folds.csv", [Example(path=f"/d/{who}.wav", label="high", fold=fold, group=who)
                                        for fold, names in speakers.items() for who in names])
    result = summarise(out, [2, 10], config=Config(), log=lambda m: None)
    expected = [(fold, len(y), float(np.mean(np.equal(y, p))), float(fold)) for fold, (y, p) in scored.items()]
    assert [(r["fold"], r["test_clips"], r["accuracy"], r["seconds"]) for r in result["per_fold"]] == expected
    with (out / "crossval.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["fold"], r["test_clips"], r["accuracy"]) for r in table[:2]] == [
        (str(fold), str(clips), f"{accuracy:.6f}") for fold, clips, accuracy, _ in expected]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert (f"<td>groups per fold</td><td>fold 2: {', '.join(sorted(speakers[2]))}; fold 10: a, b</td>") in page


# -- a real cross-validation ----------------------------------------------------------------------------
class Interrupted(Exception):
    """Stands in for a kill in the middle of a fold."""


def _folder_recipe_line(data: Path) -> str:
    """What config_from_args prints on stderr for a folder-per-class tree given with --data alone."""
    return (f"sound_tf: {data} is a folder-per-class dataset: using the folder recipe (pipelines/folder.toml; "
            f"--pipeline NAME chooses another)\n")


def _tones(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for label, freq in TONES_HZ.items():
        (root / label).mkdir(parents=True)
        for i in range(6):
            t = np.arange(int(SR * 0.5)) / SR
            wave = 0.3 * np.sin(2 * np.pi * freq * rng.uniform(0.97, 1.03) * t) + 0.02 * rng.standard_normal(t.size)
            sf.write(root / label / f"{label}_{i}.wav", wave.astype(np.float32), SR, subtype="PCM_16")
    (root / "low" / "broken.wav").write_bytes(b"RIFF\x00\x00 not a wave file")
    return root


def test_k_given_for_data_with_folds_of_its_own_does_not_name_the_default_folder(tmp_path, monkeypatch, caplog):
    """`crossval --k 3` on a manifest with a fold column cross-validated its own folds (4 of them in the FSDD check
    of this change) in runs/crossval-<fingerprint>-k3, a name that says 3 folds, and the same command without --k
    ran them again in runs/crossval-<fingerprint>. --k names the folder only when it makes the folds (a folder tree,
    a manifest whose fold column is empty, Speech Commands); the -k3 folder an earlier version made is taken while
    the plain one does not exist. Reading the manifest for the name says none of its warnings (the run says them)."""
    from sound_tf import crossval
    from sound_tf.crossval import data_has_folds, default_out_dir
    from sound_tf.train import config_from_args

    monkeypatch.chdir(tmp_path)
    folded, unfolded = tmp_path / "folded.csv", tmp_path / "unfolded.csv"
    folded.write_text("path,label,fold\n" + "".join(f"{label}_{fold}.wav,{label},{fold}\n" for fold in (1, 2, 3)
                                                   for label in ("dog", "Dog", "rain")))  # lookalike labels: a warning
    unfolded.write_text("path,label,fold\n" + "".join(f"{label}_{i}.wav,{label},\n" for i in range(3)
                                                     for label in ("dog", "rain")))
    tree = _tones(tmp_path / "tree")
    speech = make_speech_commands(tmp_path / "speech", takes=1)
    esc = _esc50(tmp_path / "esc50")
    chosen: list[Path] = []

    def run_crossval(config, out_dir, **kwargs):  # the folder the command chose; no data is decoded
        chosen.append(Path(out_dir))
        return {}

    monkeypatch.setattr(crossval, "run_crossval", run_crossval)
    monkeypatch.setattr(crossval, "check_folds", lambda *args, **kwargs: None)  # the listed files are not there
    for data, own in ((folded, True), (esc, True), (unfolded, False), (tree, False), (speech, False)):
        flags = ["--data", str(data), "--k", "3", "--quiet"]
        config = config_from_args(crossval.build_parser().parse_args(flags))
        caplog.clear()
        assert data_has_folds(config) is own, data
        assert not [r for r in caplog.records if r.name.startswith("sound_tf")], caplog.records  # none said twice
        assert crossval.main(flags) == 0
        assert chosen[-1] == Path("runs") / f"crossval-{config.fingerprint()}{'' if own else '-k3'}", data
    config = config_from_args(crossval.build_parser().parse_args(["--data", str(folded)]))
    assert data_has_folds(config_from_args(crossval.build_parser().parse_args([]))) is False  # the demo: none
    # the same folder with --k 3, --k 5 or without --k: the same folds, the same cross-validation
    for flags in (["--k", "3"], ["--k", "5"], []):
        assert crossval.main(["--data", str(folded), "--quiet", *flags]) == 0
        assert chosen[-1] == Path("runs") / f"crossval-{config.fingerprint()}"
    plain, earlier = (Path("runs") / f"crossval-{config.fingerprint()}{suffix}" for suffix in ("", "-k3"))
    shutil.rmtree("runs", ignore_errors=True)  # the folders made above held only their log: removed already
    earlier.mkdir(parents=True)  # an earlier sound_tf's name for it: resumed there
    assert default_out_dir(config, 3, data_folds=True) == earlier and default_out_dir(config, 3) == earlier
    assert crossval.main(["--data", str(folded), "--quiet", "--k", "3"]) == 0 and chosen[-1] == earlier
    plain.mkdir()  # once the plain folder exists it is the one
    assert default_out_dir(config, 3, data_folds=True) == plain and default_out_dir(config, 3) == earlier


def test_crossval_reports_the_decoding_progress_as_train_does(tmp_path, monkeypatch):
    """Its decoding of every file said nothing until the first fold began (train logs "data: decoding
    done/count" every PROGRESS_EVERY_S seconds; a cold cache of UrbanSound8K takes minutes). No training."""
    from sound_tf import datasets, trainer
    from sound_tf.crossval import run_crossval

    monkeypatch.setattr(datasets, "PROGRESS_EVERY_S", 0.0)  # a line for every file

    def stop(*args, **kwargs):
        raise Interrupted

    monkeypatch.setattr(trainer, "train_run", stop)
    data, lines = _tones(tmp_path / "data"), []
    config = apply_overrides(Config(), {"data.path": str(data), "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5,
                                        "data.cache_dir": str(tmp_path / "cache")})
    with pytest.raises(Interrupted):
        run_crossval(config, tmp_path / "cv", k=3, log=lines.append)
    decoding = [line for line in lines if line.startswith("data: decoding ")]
    assert decoding == [f"data: decoding {done}/19" for done in range(1, 20)], lines  # 18 clips and broken.wav


def _fold_data_kept(monkeypatch) -> dict:
    """Each fold's data as crossval hands it to training, by fold folder name; the training stops there."""
    from sound_tf import trainer

    given = {}

    def stop(config, run_dir, *, data, **kwargs):
        given[Path(run_dir).name] = data
        raise Interrupted

    monkeypatch.setattr(trainer, "train_run", stop)
    return given


def test_a_recording_ffmpeg_converts_is_listed_in_crossvals_skipped_csv_as_in_trains(tmp_path, monkeypatch,
                                                                                      folder_walks):
    """A phone's .m4a in a class folder was named in one warning at load time and listed in train's and tune's
    skipped.csv (datasets.load_examples' left_out), but in no skipped.csv of a cross-validation, neither its own nor a
    fold's, and no file count held it. It is listed in both now with the ffmpeg line as its reason, and counted as a
    file skipped as train counts it: 19 files and broken.wav's 1 skipped became 20 and 2. The walk that loads the
    examples finds it (each class folder was walked again for it). No training."""
    from sound_tf.crossval import run_crossval, summarise
    from sound_tf.evaluation import read_skipped_csv
    from sound_tf.metrics import compute_metrics, write_metrics_json

    given = _fold_data_kept(monkeypatch)
    data, out = _tones(tmp_path / "data"), tmp_path / "cv"
    memo = data / "mid" / "doorbell from iphone.m4a"
    memo.write_bytes(b"\0\0\0\x20ftypM4A " + b"\0" * 64)
    (data / "high" / "notes.txt").write_text("no recording")  # no recording: not listed
    config = apply_overrides(Config(), {"data.path": str(data), "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5,
                                        "data.cache_dir": str(tmp_path / "cache")})
    with pytest.raises(Interrupted):
        run_crossval(config, out, k=3, log=lambda m: None)
    reason = (f"not an audio format sound_tf reads (.m4a); to use it, convert it to FLAC or WAV, e.g. ffmpeg -i "
              f"'{memo}' '{memo.with_suffix('.flac')}', then remove or move the original")
    broken = str((data / "low" / "broken.wav").resolve())
    for folder in (out, out / "fold_1"):
        rows = read_skipped_csv(folder / "skipped.csv")
        assert [path for path, _ in rows] == [broken, str(memo)] and rows[1] == (str(memo), reason), folder
    fold = given["fold_1"]
    assert fold.skipped == rows and (fold.stats["files"], fold.stats["skipped"]) == (20, 2)
    assert folder_walks == {"high": 1, "low": 1, "mid": 1}
    labels = ["high", "low", "mid"]
    for number in (1, 2, 3):
        (out / f"fold_{number}").mkdir(exist_ok=True)
        write_metrics_json(out / f"fold_{number}" / "metrics.json", compute_metrics([0, 1, 2], np.eye(3), labels))
        (out / f"fold_{number}" / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
    summarise(out, [1, 2, 3], config=config, log=lambda m: None)
    page = (out / "report.html").read_text(encoding="utf-8")
    items = dict(re.findall(r"<tr><td>(files|skipped)</td><td class=\"num\">(\d+)</td></tr>", page))
    assert items == {"files": "20", "skipped": "2"}


def test_crossval_of_a_folder_keeps_each_speaker_of_data_group_pattern_in_one_fold(tmp_path, monkeypatch):
    """FSDD as digit folders (``<digit>_<speaker>_<take>.wav``): --k folds were drawn file by file, every speaker in
    every fold. With data.group_pattern each speaker is one fold's, in folds.csv and the fold's splits, and the log
    says the groups and whom the fold tests; check_folds plans the same folds before TensorFlow. No training."""
    from sound_tf.crossval import check_folds, run_crossval

    given = _fold_data_kept(monkeypatch)
    data = tmp_path / "digits"
    speakers = ("ann", "bob", "cyd", "dee", "eve", "fay")
    t = np.arange(SR // 4) / SR
    for digit, (label, freq) in enumerate(TONES_HZ.items()):
        (data / label).mkdir(parents=True)
        for s, speaker in enumerate(speakers):
            for take in range(2):
                wave = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.01 * s + 0.003 * take) * t)
                sf.write(data / label / f"{digit}_{speaker}_{take}.wav", wave.astype(np.float32), SR, subtype="PCM_16")
    config = apply_overrides(Config(), {"data.path": str(data), "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.25,
                                        "data.cache_dir": str(tmp_path / "cache"),
                                        "data.group_pattern": r"^\d+_([a-z]+)_"})
    check_folds(config, k=3, folds=[1])
    lines: list[str] = []
    with pytest.raises(Interrupted):
        run_crossval(config, tmp_path / "cv", k=3, log=lines.append)
    with (tmp_path / "cv" / "folds.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    folds_of = defaultdict(set)
    for row in rows:
        assert row["group"] == Path(row["path"]).stem.split("_")[1]
        folds_of[row["group"]].add(row["fold"])
    assert set(folds_of) == set(speakers) and all(len(folds) == 1 for folds in folds_of.values())
    assert Counter(next(iter(folds)) for folds in folds_of.values()) == {"1": 2, "2": 2, "3": 2}
    fold = given["fold_1"].splits
    tested = sorted({item.group for item in fold["test"]})
    assert len(tested) == 2 and not set(tested) & {item.group for name in ("train", "val") for item in fold[name]}
    assert any(line.startswith("data: 6 groups from data.group_pattern '^\\d+_([a-z]+)_'") for line in lines), lines
    assert any(line.startswith("fold 1: ") and line.endswith(f"test 12 clips of groups {', '.join(tested)}")
               for line in lines), lines
    with pytest.raises(DatasetError, match=r"data.group_pattern '\^x\(\\d\)' matches none of the 36 file names"):
        check_folds(apply_overrides(config, {"data.group_pattern": r"^x(\d)"}), k=3, folds=[1])


def test_the_header_counts_the_test_splits_each_fold_runs_drawn_once(tmp_path, monkeypatch):
    """With data.other_label the header counts the clips each fold tests, the other class's share drawn; it drew every
    fold's splits for that, and each fold drew its own again (the same draw). They are drawn once now: the header's
    counts are the test rows of the split.csv each fold writes, the unreadable file left out. No training."""
    from types import SimpleNamespace

    from sound_tf import crossval, trainer
    from sound_tf.datasets import read_split_csv

    def trained(config, run_dir, *, data, **kwargs):
        if Path(run_dir).name == "fold_3":
            raise Interrupted
        return SimpleNamespace(metrics={"accuracy": 1.0, "macro_f1": 1.0})

    draws: Counter = Counter()
    split_of = crossval.fold_splits

    def counted_split(examples, fold, config):
        draws[fold] += 1
        return split_of(examples, fold, config)

    monkeypatch.setattr(trainer, "train_run", trained)
    monkeypatch.setattr(crossval, "fold_splits", counted_split)
    data, out = _tones(tmp_path / "data"), tmp_path / "cv"
    for name in ("bell", "horn"):  # other labels, as 'mid'
        shutil.copytree(data / "mid", data / name)
    config = apply_overrides(Config(), {"data.path": str(data), "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5,
                                        "data.cache_dir": str(tmp_path / "cache"), "data.keep_labels": ["high", "low"],
                                        "data.other_label": "_other_", "data.other_share": 0.25})
    lines: list[str] = []
    with pytest.raises(Interrupted):
        crossval.run_crossval(config, out, k=3, log=lines.append)
    header = next(line for line in lines if line.startswith("cross-validation: "))
    assert header.startswith("cross-validation: 30 readable files of 31 (1 unreadable, listed in ")
    assert (", 18 of them of the other labels ('_other_'), 3 folds (stratified group k-fold: 1: 5, 2: 5, 3: 5 clips "
            "tested, with data.other_share 0.25 of '_other_'); running folds [1, 2, 3] into ") in header, header
    sizes = {int(fold): int(count) for fold, count in re.findall(r"(\d+): (\d+)", header.split("folds (", 1)[1])}
    tested = {fold: len(read_split_csv(out / f"fold_{fold}" / "split.csv", run_file=True)["test"])
              for fold in (1, 2, 3)}
    assert sizes == tested and sum(sizes.values()) == 15, (header, tested)  # 12 kept files, and 1 other drawn a fold
    assert draws == {1: 1, 2: 1, 3: 1}


def test_crossval_gives_the_recordings_lengths_against_the_clip_as_train_does(tmp_path, monkeypatch):
    """train and tune log "data: recordings last ... s; clips are ... s" once the data are decoded; crossval, which
    decodes them itself, said nothing of it: a walkthrough's FSDD cross-validation (recordings of 0.18-1.31 s,
    median 0.47 s, in 1-s clips) never heard that most clips were over half silence. No training."""
    from sound_tf import trainer
    from sound_tf.crossval import run_crossval

    def stop(*args, **kwargs):
        raise Interrupted

    monkeypatch.setattr(trainer, "train_run", stop)
    data, lines = _tones(tmp_path / "data"), []  # 18 readable 0.5-s tones and broken.wav
    config = apply_overrides(Config(), {"data.path": str(data), "audio.sample_rate_hz": SR, "audio.clip_seconds": 2.0,
                                        "data.cache_dir": str(tmp_path / "cache")})
    with pytest.raises(Interrupted):
        run_crossval(config, tmp_path / "cv", k=3, log=lines.append)
    lengths = [line for line in lines if line.startswith("data: recordings last ")]
    assert lengths == ["data: recordings last 0.50-0.50 s (median 0.50 s); clips are 2 s (audio.clip_seconds): most "
                       "recordings fill less than half a clip, padded with silence; a shorter --clip-seconds trains "
                       "faster (--clip-seconds 0.5 holds all of them whole)"], lines
    assert lines.index(lengths[0]) < next(i for i, line in enumerate(lines) if line.startswith("fold 1:"))



def test_crossval_says_its_recordings_are_upsampled_as_train_does(tmp_path, monkeypatch):
    """Like train's: 8-kHz recordings cross-validated at 16 kHz are said to be upsampled (their features above
    4 kHz hold no sound), once, before the first fold. No training."""
    from sound_tf import trainer
    from sound_tf.crossval import run_crossval

    def stop(*args, **kwargs):
        raise Interrupted

    monkeypatch.setattr(trainer, "train_run", stop)
    data, lines = _tones(tmp_path / "data"), []  # 18 readable 0.5-s tones at 8 kHz and broken.wav
    config = apply_overrides(Config(), {"data.path": str(data), "audio.sample_rate_hz": 16000,
                                        "data.cache_dir": str(tmp_path / "cache")})
    with pytest.raises(Interrupted):
        run_crossval(config, tmp_path / "cv", k=3, log=lines.append)
    rates = [line for line in lines if "below audio.sample_rate_hz" in line]
    assert rates == [f"data: 18 of 18 recordings are {SR} Hz, below audio.sample_rate_hz 16000: upsampled, so their "
                     f"features above {SR // 2} Hz hold no sound; "
                     f"--sample-rate {SR} matches them and trains faster"], lines
    assert lines.index(rates[0]) < next(i for i, line in enumerate(lines) if line.startswith("fold 1:"))


def test_a_resumed_crossval_whose_folds_are_done_gives_the_data_lines_without_decoding(tmp_path, monkeypatch):
    """A fresh crossval logs the recordings' lengths and rates once its data are decoded; run again with every fold
    done, it decoded nothing and said neither. It now gives both lines as the fresh run did, before its header, the
    lengths read from the sizes of the cache files the first run wrote; with the cache emptied (the lengths would
    need every file decoded again) only the rates, read from the sources' headers. Folds "trained" by a stand-in
    that writes their metrics."""
    from types import SimpleNamespace

    from sound_tf import evaluation, trainer
    from sound_tf.crossval import run_crossval
    from sound_tf.metrics import compute_metrics, write_metrics_json

    def finish(config, run_dir, *, data, **kwargs):  # every test clip right
        truth = [item.label_index for item in data.splits["test"]]
        metrics = compute_metrics(truth, np.eye(len(data.labels))[truth], list(data.labels))
        write_metrics_json(Path(run_dir) / "metrics.json", metrics)
        (Path(run_dir) / "run_state.json").write_text(json.dumps({"status": "done"}))
        return SimpleNamespace(metrics=metrics)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(trainer, "train_run", finish)
    data, fresh = _tones(tmp_path / "data"), []  # 18 readable 0.5-s tones at 8 kHz and broken.wav
    config = apply_overrides(Config(), {"data.path": str(data), "audio.sample_rate_hz": 2 * SR,
                                        "audio.clip_seconds": 2.0, "data.cache_dir": str(tmp_path / "cache")})
    run_crossval(config, tmp_path / "cv", k=3, log=fresh.append)
    told = [line for line in fresh if line.startswith(("data: recordings last ", "data: 18 of 18 recordings are"))]
    assert told == ["data: recordings last 0.50-0.50 s (median 0.50 s); clips are 2 s (audio.clip_seconds): most "
                    "recordings fill less than half a clip, padded with silence; a shorter --clip-seconds trains "
                    "faster (--clip-seconds 0.5 holds all of them whole)",
                    f"data: 18 of 18 recordings are {SR} Hz, below audio.sample_rate_hz {2 * SR}: upsampled, so their "
                    f"features above {SR // 2} Hz hold no sound; --sample-rate {SR} matches them and trains faster"]
    monkeypatch.setattr(evaluation, "decode_examples", no_decoding)
    resumed: list[str] = []
    run_crossval(config, tmp_path / "cv", k=3, log=resumed.append)
    assert sum(line.startswith("fold ") and "finished earlier" in line for line in resumed) == 3, resumed
    assert [line for line in resumed if line in told] == told
    header = next(i for i, line in enumerate(resumed) if line.startswith("cross-validation: "))
    assert max(resumed.index(line) for line in told) < header
    shutil.rmtree(tmp_path / "cache")
    emptied: list[str] = []
    run_crossval(config, tmp_path / "cv", k=3, log=emptied.append)
    assert [line for line in emptied if line.startswith("data: recordings last ")] == []
    assert told[1] in emptied and not (tmp_path / "cache").exists()  # nothing decoded into a new cache


def test_a_second_crossval_on_the_same_folder_is_refused_before_it_writes(tmp_path, capsys):
    """Also in the caller's words: run_crossval told a Python caller to "choose another --out"; it names out_dir
    now, and the command keeps --out."""
    import socket

    from sound_tf import crossval

    out = tmp_path / "cv"
    holder = hold_folder(out)
    try:
        in_use = (f"{out}: in use by pid {holder.pid} on {socket.gethostname()}, which is running this "
                  f"cross-validation; wait for it to end, or choose another ")
        assert crossval.main(["--out", str(out), "--overwrite"]) == 2
        assert capsys.readouterr().err.strip() == f"error: {in_use}--out"
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # no log, nothing deleted
        with pytest.raises(ConfigError) as info:
            crossval.run_crossval(Config(), out)
        assert str(info.value) == f"{in_use}out_dir"
    finally:
        holder.kill()
        holder.wait()


def test_an_out_holding_other_files_is_refused_and_overwrite_deletes_nothing(tmp_path, capsys):
    """crossval --out FOLDER --overwrite emptied a folder of the user's own (its notes and recordings)."""
    from sound_tf import crossval

    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "sub" / "notes.txt").write_text("precious")
    (mine / "a.ogg").write_bytes(b"OggS")
    assert crossval.main(["--out", str(mine), "--overwrite"]) == 2
    assert (f"error: {mine}: not a cross-validation folder (it holds a.ogg, sub/, and no crossval_state.json); the "
            f"output is written into it, and --overwrite empties it first") in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not a cross-validation folder"):
        crossval.run_crossval(Config(), mine, overwrite=True)
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*")) == ["a.ogg", "sub", "sub/notes.txt"]

    # A cross-validation folder that holds the data it reads (or its noise recordings) is not emptied either,
    # and run_crossval says so in its caller's words (it said "--overwrite ... choose another --out"), the
    # command in its own.
    ours = tmp_path / "ours"
    (ours / "data" / "a").mkdir(parents=True)
    (ours / crossval.STATE_FILE).write_text("{}")
    for key, value in (("data.path", ours / "data"), ("augment.noise_dir", ours / "data" / "a")):
        config = apply_overrides(Config(), {key: str(value)})
        with pytest.raises(ConfigError) as info:
            crossval.run_crossval(config, ours, overwrite=True)
        assert str(info.value) == (f"{ours}: overwrite=True would empty this folder, and {key}={value} is in it "
                                   f"(run_crossval reads it); copy it elsewhere first, or choose another out_dir")
    assert sorted(p.relative_to(ours).as_posix() for p in ours.rglob("*")) == ["crossval_state.json", "data", "data/a"]
    # a recording in its class folder: data the command reads (data that holds none is refused before the folder)
    sf.write(ours / "data" / "a" / "a.wav", np.zeros(SR // 10, np.float32), SR)
    assert crossval.main(["--data", str(ours / "data"), "--out", str(ours), "--overwrite", "--quiet"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (  # after the line naming the folder recipe it uses
        f"error: {ours}: --overwrite would empty this folder, and data.path={ours / 'data'} is in it (this command "
        f"reads it); copy it elsewhere first, or choose another --out")
    assert (ours / crossval.STATE_FILE).read_text() == "{}" and (ours / "data" / "a").is_dir()


def test_a_folder_holding_another_crossval_is_refused_in_the_callers_words(tmp_path, capsys):
    """run_crossval told a Python caller, who passed out_dir, to "pass --overwrite to start over or choose another
    --out"; it now names overwrite=True and out_dir, and the command keeps --overwrite and --out."""
    from sound_tf import crossval
    from sound_tf.train import config_from_args

    data, out = _tones(tmp_path / "data"), tmp_path / "cv"
    out.mkdir()
    other = {"fingerprint": "0123456789ab", "scheme": "official", "folds": [1, 2], "assignment": "0123456789ab"}
    (out / crossval.STATE_FILE).write_text(json.dumps(other))
    flags = ["--data", str(data), "--k", "3", "--out", str(out), "--sample-rate", str(SR), "--clip-seconds", "0.5",
             "--quiet"]
    refused = (f"{out}: holds a cross-validation with different settings or data (fingerprint, scheme, folds, "
               f"assignment differ); pass ")
    with pytest.raises(ConfigError) as info:
        crossval.run_crossval(config_from_args(crossval.build_parser().parse_args(flags)), out, k=3,
                              log=lambda m: None)
    assert str(info.value) == f"{refused}overwrite=True to start over or choose another out_dir"
    capsys.readouterr()
    assert crossval.main(flags) == 2
    assert capsys.readouterr().err == (f"{_folder_recipe_line(data)}error: {refused}--overwrite to start over or "
                                       f"choose another --out\n")
    assert json.loads((out / crossval.STATE_FILE).read_text()) == other


def test_run_crossval_refuses_a_folder_of_the_users_own_files_in_a_python_callers_words(tmp_path, capsys):
    """From Python, run_crossval refused such a folder in the command's words: "give another --out, or move
    those files away", "--overwrite empties it first", though the caller passed out_dir and overwrite=True.
    It now names what it was given; the command keeps its own words."""
    from sound_tf import crossval

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a.ogg").write_bytes(b"OggS")
    (mine / "config.json").write_text('{"mine": true}')  # a name a cross-validation writes
    written = ("run_crossval writes a cross-validation's files into it (crossval_state.json, config.json, "
               "folds.csv, fold_<K>/, crossval.json ...)")
    resume = "; pass a new or empty out_dir, or an earlier cross-validation's folder to resume it"
    for overwrite, emptied in ((False, ""), (True, ", and overwrite=True empties it first")):
        with pytest.raises(ConfigError) as info:
            crossval.run_crossval(Config(), mine, overwrite=overwrite, log=lambda _: None)
        assert str(info.value) == (f"{mine}: not a cross-validation folder (it holds a.ogg, config.json, and no "
                                   f"crossval_state.json); {written}{emptied}{resume}")
    assert sorted(p.name for p in mine.iterdir()) == ["a.ogg", "config.json"]
    assert (mine / "config.json").read_text() == '{"mine": true}'
    assert crossval.main(["--out", str(mine)]) == 2  # the command's words are its own
    assert capsys.readouterr().err.strip() == (
        f"error: {mine}: not a cross-validation folder (it holds a.ogg, config.json, and no crossval_state.json); "
        f"the output is written into it, and --overwrite empties it first, so it must be new, empty or an earlier "
        f"cross-validation folder: give another --out, or move those files away")

    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError) as info:
        crossval.run_crossval(Config(), a_file, log=lambda _: None)
    assert str(info.value) == f"{a_file}: exists and is not a folder; out_dir names a cross-validation folder to " \
                              f"create or resume"
    assert crossval.main(["--out", str(a_file)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {a_file}: exists and is not a folder; --out names a folder " \
                                              f"to create or reuse"


def test_a_crossval_that_fails_before_keeping_anything_leaves_no_folder(tmp_path, capsys):
    """A missing --data left the new --out behind holding only .lock and train.log (train removes its own)."""
    from sound_tf import crossval

    out = tmp_path / "cv"
    assert crossval.main(["--data", str(tmp_path / "missing"), "--out", str(out), "--quiet"]) == 2
    assert f"error: {tmp_path / 'missing'}: no such file or folder" in capsys.readouterr().err
    assert not out.exists()
    kept = tmp_path / "kept"  # a folder that was there before the command is left as it was
    kept.mkdir()
    assert crossval.main(["--data", str(tmp_path / "missing"), "--out", str(kept), "--quiet"]) == 2
    assert kept.is_dir()


def test_crossval_notes_uneven_classes_once_not_once_per_fold(tmp_path):
    """The class-imbalance note ('3:1 or more, class weights off: --class-weights') was printed by every fold's run,
    three times in a 3-fold cross-validation of the same data; it is said once, of the data, before the folds."""
    from sound_tf import crossval
    from sound_tf.datasets import read_split_csv
    from sound_tf.train import config_from_args

    data, rng = tmp_path / "data", np.random.default_rng(0)
    sizes = {"high": 9, "low": 3, "mid": 9}
    for label, count in sizes.items():
        (data / label).mkdir(parents=True)
        for i in range(count):
            t = np.arange(int(SR * 0.5)) / SR
            wave = 0.3 * np.sin(2 * np.pi * TONES_HZ[label] * t) + 0.02 * rng.standard_normal(t.size)
            sf.write(data / label / f"{label}_{i}.wav", wave.astype(np.float32), SR, subtype="PCM_16")
    flags = ["--data", str(data), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--epochs", "1",
             "--batch-size", "8", "--no-augment", "--set", "model.widths=[8,16]", "--quiet"]
    config = config_from_args(crossval.build_parser().parse_args(flags))
    lines: list[str] = []
    crossval.run_crossval(config, tmp_path / "cv", k=3, log=lines.append)
    folds = [line for line in lines if re.match(r"fold \d: train \d+ \(fold \d\), val \d+ \(fold \d\), test \d+ clips$",
                                                 line)]
    assert len(folds) == 3, lines  # three folds trained, each on 3:1 training data (3 high, 3 mid, 1 low)
    for fold in (1, 2, 3):  # each line names the folds its splits are, as its split.csv holds them
        split = read_split_csv(tmp_path / "cv" / f"fold_{fold}" / "split.csv", run_file=True)
        train, val = ({ex.fold for ex in split[name]} for name in ("train", "val"))
        assert train == {fold % 3 + 1} and val == {(fold - 2) % 3 + 1}, (fold, train, val)
        assert (f"fold {fold}: train {len(split['train'])} (fold {fold % 3 + 1}), val {len(split['val'])} "
                f"(fold {(fold - 2) % 3 + 1}), test {len(split['test'])} clips") in folds
    noted = [line for line in lines if " classes range from " in line]
    assert noted == [f"note: the data's classes range from 3 clips (low) to 9 (high), {9 / 3:.1f} to 1; "
                     "--class-weights weighs each clip by its class's rarity, so every class counts alike in the "
                     "loss"], lines
    assert lines.index(noted[0]) < lines.index(folds[0])


def test_crossval_leaves_the_note_to_a_fold_whose_training_split_is_uneven_when_the_data_are_even(tmp_path):
    """Said once of the data, the note would miss a fold whose own training split is 3:1 or more while the data are
    even overall (official folds that hold a class unevenly): such data leave it to each fold's run."""
    from sound_tf import crossval
    from sound_tf.datasets import read_split_csv
    from sound_tf.train import config_from_args

    rng = np.random.default_rng(0)
    per_fold = {"low": (6, 1, 1), "high": (1, 1, 6)}  # 8 clips each over folds 1-3
    rows = ["path,label,fold"]
    for label, counts in per_fold.items():
        (tmp_path / label).mkdir()
        for fold, count in enumerate(counts, start=1):
            for i in range(count):
                t = np.arange(int(SR * 0.5)) / SR
                wave = 0.3 * np.sin(2 * np.pi * TONES_HZ[label] * t) + 0.02 * rng.standard_normal(t.size)
                sf.write(tmp_path / label / f"{fold}_{i}.wav", wave.astype(np.float32), SR, subtype="PCM_16")
                rows.append(f"{label}/{fold}_{i}.wav,{label},{fold}")
    (tmp_path / "clips.csv").write_text("\n".join(rows) + "\n")
    flags = ["--data", str(tmp_path / "clips.csv"), "--sample-rate", str(SR), "--clip-seconds", "0.5", "--epochs",
             "1", "--batch-size", "8", "--no-augment", "--set", "model.widths=[8,16]", "--quiet"]
    config = config_from_args(crossval.build_parser().parse_args(flags))
    lines: list[str] = []
    crossval.run_crossval(config, tmp_path / "cv", folds=[2], log=lines.append)  # trains on fold 1 or 3: 6 to 1
    train = read_split_csv(tmp_path / "cv" / "fold_2" / "split.csv")["train"]
    counts = {label: sum(ex.label == label for ex in train) for label in per_fold}
    low, high = min(counts.values()), max(counts.values())
    noted = [line for line in lines if " classes range from " in line]
    assert high / low >= 3 and noted == [  # the fold's own training split's counts
        f"note: the training split's classes range from {low} clip{'s' if low != 1 else ''} (low) to {high} (high), "
        f"{high / low:.1f} to 1; --class-weights weighs each clip by its class's rarity, so every class counts alike "
        f"in the loss"], (counts, lines)


def test_crossval_writes_per_fold_results_and_resumes(tmp_path):
    from sound_tf import crossval

    data, out = _tones(tmp_path / "data"), tmp_path / "cv"
    flags = ["--data", str(data), "--k", "3", "--out", str(out), "--sample-rate", str(SR), "--clip-seconds", "0.5",
             "--epochs", "1", "--batch-size", "8", "--no-augment", "--set", "model.widths=[8,16]", "--quiet"]

    # 1. Only fold 1: a partial summary.
    assert crossval.main([*flags, "--folds", "1"]) == 0
    partial = json.loads((out / "crossval.json").read_text())
    assert partial["folds_done"] == [1] and partial["folds_pending"] == [2, 3] and not partial["complete"]
    fold1 = out / "fold_1"
    # a complete run folder has its own log: that fold's training and evaluation, not the other folds'
    fold_log = (fold1 / "train.log").read_text()
    assert "training default" in fold_log and "evaluated" in fold_log and "fold 2" not in fold_log
    stamps = {name: (fold1 / name).stat().st_mtime_ns for name in ("model.keras", "metrics.json", "history.csv")}

    # 2. The whole cross-validation, interrupted while fold 2 trains: fold 2 is left "running".
    from sound_tf.train import config_from_args

    config = config_from_args(crossval.build_parser().parse_args(flags))
    current = {}

    def interrupting_log(message: str) -> None:
        if message.startswith("fold "):
            current["fold"] = message.split()[1].rstrip(":")
        if current.get("fold") == "2" and message.startswith("training "):
            raise Interrupted(message)

    with pytest.raises(Interrupted):
        crossval.run_crossval(config, out, k=3, log=interrupting_log)
    assert json.loads((out / "fold_2" / "run_state.json").read_text())["status"] == "running"
    assert not (out / "fold_2" / "metrics.json").exists()

    # 3. Run again: fold 1 is read back (not retrained), fold 2 resumes, fold 3 runs.
    assert crossval.main(flags) == 0
    log_text = (out / "train.log").read_text()
    assert "fold 1: finished earlier" in log_text and "not retrained" in log_text
    assert "fold 2: resuming its unfinished run" in log_text
    assert {name: (fold1 / name).stat().st_mtime_ns for name in stamps} == stamps

    result = json.loads((out / "crossval.json").read_text())
    assert result["complete"] and result["folds_done"] == [1, 2, 3] and result["num_folds"] == 3
    per_fold = [json.loads((out / f"fold_{k}" / "metrics.json").read_text()) for k in (1, 2, 3)]
    accuracies = [m["accuracy"] for m in per_fold]
    assert [row["accuracy"] for row in result["per_fold"]] == accuracies
    assert result["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert result["std"]["accuracy"] == pytest.approx(np.std(accuracies))
    pooled = np.sum([m["confusion_matrix"] for m in per_fold], axis=0)
    assert result["confusion_matrix"] == pooled.tolist() and pooled.sum() == 18  # every readable clip once
    assert result["pooled"]["accuracy"] == pytest.approx(np.trace(pooled) / 18)

    # Each fold tested its own fold of the assignment, and never trained on it.
    with (out / "folds.csv").open(newline="") as handle:
        fold_of = {row["path"]: int(row["fold"]) for row in csv.DictReader(handle)}
    for k in (1, 2, 3):
        with (out / f"fold_{k}" / "split.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert {fold_of[r["path"]] for r in rows if r["split"] == "test"} == {k}
        assert k not in {fold_of[r["path"]] for r in rows if r["split"] != "test"}
    readable = {k: sum(1 for path, f in fold_of.items() if f == k and Path(path).name != "broken.wav")
                for k in (1, 2, 3)}
    assert sum(readable.values()) == 18  # 3 classes x 6 clips, the broken file in no test set
    assert [(row["fold"], row["test_clips"], row["epochs"]) for row in result["per_fold"]] == [
        (k, readable[k], 1) for k in (1, 2, 3)]  # --epochs 1

    with (out / "crossval.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [r["fold"] for r in table] == ["1", "2", "3", "mean", "std (ddof=0)"]
    assert float(table[3]["accuracy"]) == pytest.approx(np.mean(accuracies), abs=1e-6)
    with (out / "skipped.csv").open(newline="") as handle:
        assert [Path(r["path"]).name for r in csv.DictReader(handle)] == ["broken.wav"]

    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('<img src="data:image/png;base64,') == 2 + 3  # pooled matrix, per class, 3 curves
    assert "<th>metric</th><th>mean</th><th>std</th><th>pooled</th>" in page
    assert "<h3>Per fold</h3>" in page and "<th>fold 1</th><th>fold 2</th><th>fold 3</th>" in page
    for k in (1, 2, 3):
        assert (out / f"fold_{k}" / "curves.png").is_file() and (out / f"fold_{k}" / "report.html").is_file()

    # Different settings in the same folder are refused (unless --overwrite).
    assert crossval.main([*flags[:-1], "--set", "train.seed=5", "--quiet"]) == 2


def test_a_crossval_killed_while_it_wrote_a_folds_split_resumes(tmp_path, capsys):
    """SIGKILL while fold 2's split.csv was written left ``fold_2/`` holding only ``.split.csv.<random>.tmp``;
    every rerun then stopped at that fold: "fold_2: not a training run folder (it holds .split.csv.z58hcf9_.tmp,
    and no run_state.json)". Now the fold runs, and the leftover is gone."""
    from sound_tf import crossval

    data, out = _tones(tmp_path / "data"), tmp_path / "cv"
    flags = ["--data", str(data), "--k", "3", "--out", str(out), "--sample-rate", str(SR), "--clip-seconds", "0.5",
             "--epochs", "1", "--batch-size", "8", "--no-augment", "--set", "model.widths=[8,16]", "--quiet"]
    assert crossval.main([*flags, "--folds", "1"]) == 0
    (out / "fold_2").mkdir()
    (out / "fold_2" / ".split.csv.z58hcf9_.tmp").write_text(f"split,path,label,fold,group\ntrain,{data}/hi")
    assert crossval.main([*flags, "--folds", "2"]) == 0, capsys.readouterr().err
    assert json.loads((out / "crossval.json").read_text())["folds_done"] == [1, 2]
    assert not list(out.rglob("*.tmp"))


def test_resuming_refuses_other_data_overwrite_keeps_the_log_and_the_csv_has_the_std(tmp_path):
    """Four guards that need no training: a folder whose files were assigned to other folds (a file added to
    the dataset, same settings) is refused; --overwrite empties it but keeps this command's train.log and the
    lock; crossval.csv's std row holds the standard deviation and says which (ddof=0); a --folds naming no fold is an
    error."""
    from sound_tf.config import apply_overrides
    from sound_tf.crossval import STATE_FILE, _check_state, run_crossval, write_crossval_csv

    out = tmp_path / "cv"
    (out / "fold_1").mkdir(parents=True)
    (out / "fold_1" / "metrics.json").write_text('{"accuracy": 1.0}')
    state = {"fingerprint": "abc", "scheme": "official", "folds": [1, 2, 3], "assignment": "0123456789ab"}
    (out / STATE_FILE).write_text(json.dumps(state))
    (out / "train.log").write_text("this command's log\n")
    (out / ".lock").write_text("")
    _check_state(out, dict(state), overwrite=False)  # the same cross-validation: resumed
    with pytest.raises(ConfigError, match=r"\(assignment differs\)"):
        _check_state(out, {**state, "assignment": "ba9876543210"}, overwrite=False)
    # started by an older version: its recorded fingerprint differs, its config.json read today does not
    from sound_tf.config import Config
    today = Config().fingerprint()
    with pytest.raises(ConfigError, match=r"\(fingerprint differs\)"):
        _check_state(out, {**state, "fingerprint": today}, overwrite=False)
    Config().save(out)
    _check_state(out, {**state, "fingerprint": today}, overwrite=False)
    # the settings that differ are named from its config.json: '(fingerprint differ)' left two files to diff (a
    # crossval refused under --strict, then run without it, session 49's ESC-50 walkthrough)
    strict = apply_overrides(Config(), {"data.strict": True, "train.epochs": 3})
    with pytest.raises(ConfigError) as info:
        _check_state(out, {**state, "fingerprint": strict.fingerprint()}, overwrite=False, config=strict)
    assert str(info.value) == (f"{out}: holds a cross-validation with different settings or data (fingerprint differs: "
                               f"data.strict: False there, True now; train.epochs: 40 there, 3 now); pass --overwrite "
                               f"to start over or choose another --out")
    with pytest.raises(ConfigError, match=r"\(fingerprint, assignment differ: data.strict: False there, True now; "):
        _check_state(out, {**state, "fingerprint": strict.fingerprint(), "assignment": "ba9876543210"},
                     overwrite=False, config=strict)
    (out / "config.json").unlink()
    _check_state(out, {**state, "assignment": "ba9876543210"}, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [".lock", "train.log"]
    assert (out / "train.log").read_text() == "this command's log\n"

    accuracies = [0.5, 0.75, 1.0]  # mean 0.75, population std sqrt(1/24) = 0.204124
    rows = [{"fold": k, "accuracy": a} for k, a in zip((1, 2, 3), accuracies)]
    write_crossval_csv(out / "crossval.csv", rows, {"mean": {"accuracy": 0.75}, "std": {"accuracy": np.sqrt(1 / 24)}})
    with (out / "crossval.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["fold"], r["accuracy"]) for r in table] == [
        ("1", "0.500000"), ("2", "0.750000"), ("3", "1.000000"), ("mean", "0.750000"), ("std (ddof=0)", "0.204124")]
    # the row names its deviation: pandas' DataFrame.std() of the fold rows (ddof=1) gives sqrt(3/2) times it
    assert float(table[4]["accuracy"]) == pytest.approx(np.std(accuracies), abs=1e-6) != np.std(accuracies, ddof=1)

    data = _tones(tmp_path / "data")
    config = apply_overrides(Config(), {"data.path": str(data), "audio.sample_rate_hz": SR,
                                        "audio.clip_seconds": 0.5, "data.cache_dir": str(tmp_path / "cache")})
    with pytest.raises(DatasetError, match=r"^folds names fold \[7\] that does not exist; folds present: "
                                           r"\[1, 2, 3\]$"):
        run_crossval(config, tmp_path / "cv7", k=3, folds=[7], log=lambda m: None)
    assert not (tmp_path / "cv7" / "fold_7").exists()


def test_the_settings_a_refused_folder_differs_in_are_listed_whole_past_the_limit(tmp_path):
    """_check_state took the settings out of setting_differences' ' (...)' with a [1:-1] slice of its text; it
    joins Config.changed_settings' list now (tune's refusal did the same with [2:-1]). Pinned: more settings than the
    limit ('and 2 more'), a path holding parentheses, and a config.json that cannot be read (no settings named)."""
    from sound_tf.crossval import STATE_FILE, _check_state

    out = tmp_path / "cv"
    out.mkdir()
    state = {"fingerprint": "abc", "scheme": "official", "folds": [1, 2, 3], "assignment": "0123456789ab"}
    (out / STATE_FILE).write_text(json.dumps(state))
    Config().save(out)
    other = apply_overrides(Config(), {"data.path": "/data/(copy) esc", "data.strict": True, "train.epochs": 3,
                                       "train.seed": 7, "train.batch_size": 8, "audio.clip_seconds": 2.0})
    changed = other.changed_settings(Config().to_dict())
    assert changed == ["audio.clip_seconds: 1.0 there, 2.0 now", "data.path: None there, '/data/(copy) esc' now",
                       "data.strict: False there, True now", "train.epochs: 40 there, 3 now", "and 2 more"]
    assert other.differences(Config().to_dict()) == f" ({'; '.join(changed)})"
    assert Config().changed_settings(Config().to_dict()) == [] and Config().differences(Config().to_dict()) == ""
    with pytest.raises(ConfigError) as info:
        _check_state(out, {**state, "fingerprint": other.fingerprint()}, overwrite=False, config=other)
    assert str(info.value) == (f"{out}: holds a cross-validation with different settings or data (fingerprint differs: "
                               f"{'; '.join(changed)}); pass --overwrite to start over or choose another --out")
    (out / "config.json").write_text("{not json")
    with pytest.raises(ConfigError) as info:
        _check_state(out, {**state, "fingerprint": other.fingerprint()}, overwrite=False, config=other)
    assert str(info.value) == (f"{out}: holds a cross-validation with different settings or data (fingerprint "
                               f"differs); pass --overwrite to start over or choose another --out")


def test_run_crossval_names_its_k_and_folds_and_the_command_its_flags(tmp_path, capsys, monkeypatch):
    """run_crossval told a Python caller "note: --k 3 is not used" and "--folds names fold(s) [9] that do not
    exist", flags it never passed; it names k=3 and folds now, and the command keeps --k 3 and --folds. The
    dataset has folds of its own (a manifest's fold column): both come before anything is decoded."""
    from sound_tf import crossval
    from sound_tf.train import config_from_args

    _three_fold_manifest(tmp_path)
    flags = ["--data", str(tmp_path / "clips.csv"), "--sample-rate", str(SR), "--cache-dir", str(tmp_path / "cache"),
             "--k", "3", "--folds", "9", "--out", str(tmp_path / "cv"), "--quiet"]
    config = config_from_args(crossval.build_parser().parse_args(flags))
    absent = " names fold [9] that does not exist; folds present: [1, 2, 3]"
    lines: list[str] = []
    with pytest.raises(DatasetError) as info:
        crossval.run_crossval(config, tmp_path / "cv", k=3, folds=[9], log=lines.append)
    assert str(info.value) == f"folds{absent}"
    assert "note: k=3 is not used: the dataset has its own folds" in lines, lines
    monkeypatch.setattr(crossval, "check_folds", lambda *args, **kwargs: None)  # the command's early check, left out
    assert crossval.main(flags) == 2
    said = capsys.readouterr()
    assert said.err.strip() == f"error: --folds{absent}"
    assert "note: --k 3 is not used: the dataset has its own folds" in said.out, said.out
    with pytest.raises(DatasetError,
                       match=r"^folds names folds \[8, 9\] that do not exist; folds present: \[1, 2, 3\]$"):
        crossval.run_crossval(config, tmp_path / "cv", k=3, folds=[2, 8, 9], log=lines.append)


def test_command_refuses_a_fold_below_1_by_its_flag_before_the_settings(tmp_path, capsys, monkeypatch):
    """``crossval --data ~/ESC-50 --folds 0`` (folds counted from 0) was answered, after TensorFlow's 5-s start-up,
    "error: run_crossval: folds must be 1 or more ...": a function the user never called. --folds is named now,
    as written, before the settings are worked out (here the data does not even exist)."""
    from sound_tf import crossval, train

    def no_settings(*args, **kwargs):
        raise AssertionError("the settings were read before --folds was checked")

    monkeypatch.setattr(train, "config_from_args", no_settings)
    for given, got in (("0", "0"), ("3,0", "0"), ("2,-1", "-1")):
        assert crossval.main(["--data", str(tmp_path / "esc50"), "--folds", given, "--out", str(tmp_path / "cv"),
                              "--quiet"]) == 2
        said = capsys.readouterr().err.strip()
        assert said == (f"error: --folds {given}: a fold must be 1 or more (folds count from 1, as ESC-50's, "
                        f"UrbanSound8K's and --test-fold do), got {got}"), said
        assert not (tmp_path / "cv").exists()
    with pytest.raises(ConfigError, match=r"^--folds 0,1: a fold must be 1 or more .*, got 0$"):
        parse_folds("0,1")
    assert parse_folds("1,5") == [1, 5]


def test_command_refuses_folds_and_a_test_fold_the_data_lacks_before_tensorflow(tmp_path, capsys, monkeypatch):
    """``crossval --folds 6`` of five folds was refused after TensorFlow's start-up (9.5 s here), and ``--test-fold
    6`` was noted as unused ('--folds 6 runs fold 6 alone', a fold there is not) before every fold trained. Both are
    refused now before run_crossval (where TensorFlow loads), naming the folds present: a manifest's own and the
    folds assigned to a folder-per-class tree (--k 3)."""
    from sound_tf import crossval
    from sound_tf.train import config_from_args

    def no_run(*args, **kwargs):
        raise AssertionError("run_crossval was called before the folds were checked")

    monkeypatch.setattr(crossval, "run_crossval", no_run)
    manifest = _three_fold_manifest(tmp_path)
    tones = _tones(tmp_path / "tones")
    for data, extra, said in (
            (manifest, ["--folds", "6"], "--folds names fold [6] that does not exist; folds present: [1, 2, 3]"),
            (manifest, ["--folds", "2,7,9"], "--folds names folds [7, 9] that do not exist; folds present: [1, 2, 3]"),
            (manifest, ["--test-fold", "6"], "--test-fold 6: the data has no fold 6; folds present: [1, 2, 3] (every "
                                             "fold is the test fold once; --folds chooses which run)"),
            (tones, ["--k", "3", "--folds", "4"], "--folds names fold [4] that does not exist; folds present: "
                                                  "[1, 2, 3]"),
            # --val-fold 9 was only noted as unused, and every fold trained
            (manifest, ["--val-fold", "9"], "--val-fold 9: the data has no fold 9; folds present: [1, 2, 3] (the "
                                            "fold before each test fold validates; --folds chooses which folds "
                                            "run)")):
        flags = ["--data", str(data), "--sample-rate", str(SR), "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "cv"), "--quiet", *extra]
        assert crossval.main(flags) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {said}"
        assert not (tmp_path / "cv").exists()
    config = config_from_args(crossval.build_parser().parse_args(["--data", str(manifest), "--test-fold", "4"]))
    with pytest.raises(DatasetError, match=r"^data\.test_fold=4: the data has no fold 4; folds present: \[1, 2, 3\] "
                                           r"\(every fold is the test fold once; folds chooses which run\)$"):
        crossval.check_folds(config)
    crossval.check_folds(replace(config, data=replace(config.data, test_fold=3)), folds=[1, 3])  # present: no error
    with pytest.raises(DatasetError, match=r"^data\.val_fold=5: the data has no fold 5; folds present: \[1, 2, 3\]"):
        crossval.check_folds(replace(config, data=replace(config.data, test_fold=None, val_fold=5)))
    crossval.check_folds(replace(config, data=replace(config.data, test_fold=None, val_fold=2)))  # present: no error


def test_check_folds_plans_the_folds_of_the_kept_labels_as_the_cross_validation_does(tmp_path):
    """check_folds refuses a fold the chosen classes leave empty, as run_crossval would once TensorFlow had started:
    with data.keep_labels=high,low and no data.other_label, fold 3 of a manifest whose fold 3 holds only 'mid'
    files is no fold of the cross-validation. Planned from every file, fold 3 passed the check. No file is decoded."""
    from sound_tf import crossval

    manifest = _three_fold_manifest(tmp_path)
    rows = manifest.read_text().splitlines()
    kept = [row for row in rows if not row.endswith(",3") or row.startswith("mid_")]  # fold 3: mid alone
    manifest.write_text("\n".join(kept) + "\n")
    folds = {int(row.rsplit(",", 1)[1]) for row in kept[1:] if row.split(",")[1] in ("high", "low")}
    assert folds == {1, 2}
    config = apply_overrides(Config(), {"data.path": str(manifest), "data.keep_labels": ["high", "low"]})
    with pytest.raises(DatasetError, match=rf"^folds names fold \[3\] that does not exist; folds present: "
                                           rf"{re.escape(str(sorted(folds)))}$"):
        crossval.check_folds(config, folds=[3])
    crossval.check_folds(config, folds=sorted(folds))
    crossval.check_folds(apply_overrides(Config(), {"data.path": str(manifest)}), folds=[3])  # every label: fold 3


def test_a_fold_folder_missing_is_refused_before_tensorflow_and_any_decoding(tmp_path, capsys, monkeypatch):
    """A full cross-validation of UrbanSound8K without audio/fold7 (session 52's walkthrough) was refused once
    TensorFlow had started and every file was decoded (7.3 s here, 'fold 7: none of its 15 files could be read
    (first: ...: file not found ...)'). The command refuses it before run_crossval, naming the folder and the --folds
    that leave the fold out; run_crossval, before decoding; a fold finished earlier is not looked at."""
    import sys

    from sound_tf import crossval, evaluation

    root = _urbansound8k(tmp_path / "us8k")
    for row in (root / "metadata" / "UrbanSound8K.csv").read_text().splitlines()[1:]:
        name, fold = row.split(",")[0], int(row.split(",")[5])
        if fold != 7:
            (root / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
            (root / "audio" / f"fold{fold}" / name).write_bytes(b"")  # never decoded: no audio needed
    rest = [1, 2, 3, 4, 5, 6, 8, 9, 10]

    def no_run(*args, **kwargs):
        raise AssertionError("run_crossval was called before the fold's files were looked for")

    monkeypatch.setattr(crossval, "run_crossval", no_run)
    had_tensorflow = "tensorflow" in sys.modules
    out = tmp_path / "cv"
    assert crossval.main(["--data", str(root), "--out", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: fold 7: none of its 9 files exists ({root / 'audio' / 'fold7'} does not exist); restore it (the "
        f"dataset's download), or leave the fold out: --folds 1,2,3,4,5,6,8,9,10")
    assert not out.exists() and ("tensorflow" in sys.modules) == had_tensorflow
    config = apply_overrides(Config(), {"data.path": str(root)})
    crossval.check_folds(config, folds=rest)  # fold 7 left out: no error
    with pytest.raises(DatasetError, match=r"^fold 7: none of its 9 files exists .*or leave the fold out: "
                                           r"folds=\[1, 2, 3, 4, 5, 6, 8, 9, 10\]$"):
        crossval.check_folds(config, folds=[6, 7])
    finished = out / "fold_7"  # resumed: fold 7 finished before its folder went
    finished.mkdir(parents=True)
    (finished / "run_state.json").write_text('{"status": "done"}')
    (finished / "metrics.json").write_text("{}")
    crossval.check_folds(config, out_dir=out)
    # run_crossval itself (Python callers): refused before any file is decoded
    monkeypatch.undo()
    monkeypatch.setattr(evaluation, "decode_examples", lambda *a, **k: pytest.fail("decoded before the refusal"))
    with pytest.raises(DatasetError, match=r"^fold 7: none of its 9 files exists"):
        crossval.run_crossval(config, tmp_path / "cv_api", log=lambda m: None)


def test_a_strict_refusal_names_the_listing_line_and_leaves_no_cross_validation_behind(tmp_path, capsys,
                                                                                       monkeypatch):
    """A crossval of a copy missing one listed file, refused under --strict, said 'error: .../gone_2.wav: file not
    found' and left its state, config.json and folds.csv, so the same command without --strict was refused as a
    cross-validation of other settings (session 49's ESC-50 walkthrough). The refusal names the manifest's line
    now (train's too), and the folder is removed when the command made it, or holds no state when it did not."""
    from sound_tf import crossval, trainer
    from sound_tf.datasets import prepare_dataset
    from sound_tf.errors import AudioError
    from sound_tf.train import config_from_args

    def no_training(config, run_dir, **kwargs):
        raise RuntimeError(f"trained {Path(run_dir).name}")

    monkeypatch.setattr(trainer, "train_run", no_training)
    manifest = _three_fold_manifest(tmp_path)
    with manifest.open("a") as handle:
        handle.write("# a comment line is counted too\ngone_2.wav,mid,2\n")
    said = f"error: {tmp_path / 'gone_2.wav'}: file not found (listed on line 12 of {manifest})"
    made, kept = tmp_path / "cv", tmp_path / "kept"
    kept.mkdir()
    for out in (made, kept):
        flags = ["--data", str(manifest), "--sample-rate", str(SR), "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(out), "--quiet"]
        assert crossval.main([*flags, "--strict"]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == said
        assert not made.exists() if out == made else sorted(p.name for p in kept.iterdir()) == [".lock", "train.log"]
        with pytest.raises(RuntimeError, match=r"^trained fold_1$"):  # not refused as other settings
            crossval.main(flags)
    config = config_from_args(crossval.build_parser().parse_args(["--data", str(manifest), "--strict", "--cache-dir",
                                                                  str(tmp_path / "cache")]))
    with pytest.raises(AudioError) as info:
        prepare_dataset(config, tmp_path / "run", log=lambda line: None)
    assert str(info.value) == said.removeprefix("error: ")


def test_a_test_fold_given_to_crossval_is_named_as_given_with_the_flag_that_tests_it_alone(tmp_path, capsys,
                                                                                          monkeypatch):
    """'crossval --data ~/ESC-50 --test-fold 3' (to test fold 3) was told 'note: data.test_fold / data.val_fold are
    ignored: every fold is the test fold once', settings the user never named, and not how to run fold 3 alone
    (session 49's ESC-50 walkthrough). The note names what was given (--test-fold 3, --val-fold 1; data.test_fold=3
    to a Python caller) and --folds 3 (folds=[3]). It comes before anything is decoded."""
    from sound_tf import crossval
    from sound_tf.train import config_from_args

    _three_fold_manifest(tmp_path)
    flags = ["--data", str(tmp_path / "clips.csv"), "--sample-rate", str(SR), "--cache-dir", str(tmp_path / "cache"),
             "--folds", "9", "--out", str(tmp_path / "cv"), "--quiet"]  # --folds 9: refused once the folds are known
    monkeypatch.setattr(crossval, "check_folds", lambda *args, **kwargs: None)  # by run_crossval, after the note
    for given, said in ((["--test-fold", "3"], "--test-fold 3 is not used: every fold is the test fold once (--folds 3 "
                                               "runs fold 3 alone)"),
                        (["--test-fold", "2", "--val-fold", "1"], "--test-fold 2 and --val-fold 1 are not used: every "
                                                                  "fold is the test fold once (--folds 2 runs fold 2 "
                                                                  "alone)"),
                        (["--val-fold", "1"], "--val-fold 1 is not used: every fold is the test fold once")):
        assert crossval.main([*flags, *given]) == 2
        out = capsys.readouterr().out
        assert f"note: {said}\n" in out and "data.test_fold" not in out and "data.val_fold" not in out, out
    lines: list[str] = []
    config = config_from_args(crossval.build_parser().parse_args([*flags, "--test-fold", "3", "--val-fold", "2"]))
    with pytest.raises(DatasetError):
        crossval.run_crossval(config, tmp_path / "cv", folds=[9], log=lines.append)
    assert lines[0] == ("note: data.test_fold=3 and data.val_fold=2 are not used: every fold is the test fold once "
                        "(folds=[3] runs fold 3 alone)"), lines
    assert not (tmp_path / "cv").exists()


def test_run_crossval_folds_must_name_whole_fold_numbers(tmp_path, monkeypatch):
    """folds=[] ran every fold (`folds or all_folds`), folds=[1.0] / [True] trained fold 1 into a folder
    named fold_1.0 / fold_True, and folds='1,3' was read as the folds '1', ',' and '3'."""
    from sound_tf import trainer
    from sound_tf.crossval import run_crossval

    def no_training(config, run_dir, **kwargs):
        raise RuntimeError(f"trained {Path(run_dir).name}")

    monkeypatch.setattr(trainer, "train_run", no_training)
    data = _tones(tmp_path / "data")
    config = apply_overrides(Config(), {"data.path": str(data), "audio.sample_rate_hz": SR,
                                        "audio.clip_seconds": 0.5, "data.cache_dir": str(tmp_path / "cache")})
    for folds, message in (([], r"folds names no fold; pass None to run every fold"),
                           ([1.0], r"folds must be whole fold numbers, got 1\.0 in \[1\.0\]"),
                           ([2, True], r"folds must be whole fold numbers, got True"),
                           ([2, np.True_], r"folds must be whole fold numbers, got np\.True_"),
                           ([2, 0], r"folds must be 1 or more \(folds count from 1, as ESC-50's, UrbanSound8K's "
                                    r"and --test-fold do\), got 0 in \[2, 0\]$"),
                           ("1,3", r"folds must be a list of fold numbers, e\.g\. \[1, 3\] .*got '1,3'"),
                           (2, r"folds must be a list of fold numbers.*got 2")):
        with pytest.raises(ConfigError, match=rf"^run_crossval: {message}"):
            run_crossval(config, tmp_path / "cv", k=3, folds=folds, log=lambda m: None)
        assert not (tmp_path / "cv").exists()  # refused before anything was written
    with pytest.raises(RuntimeError, match=r"^trained fold_2$"):  # numpy integers and repeats are fine
        run_crossval(config, tmp_path / "cv", k=3, folds=[np.int64(2), 2], log=lambda m: None)


def _crossval_not_trained(tmp_path: Path, out: Path, *extra: str) -> tuple[list[str], Config]:
    """The command's flags for a 3-fold cross-validation of tones into ``out`` (plus ``extra``) and its config,
    after a ``run_crossval`` of fold 1 (with ``overwrite`` when ``extra`` has ``--overwrite``) stopped as its
    training began: a cross-validation folder whose folds are not trained yet."""
    from sound_tf import crossval, trainer
    from sound_tf.train import config_from_args

    data = tmp_path / "data" if (tmp_path / "data").is_dir() else _tones(tmp_path / "data")
    flags = ["--data", str(data), "--sample-rate", str(SR), "--set", "audio.clip_seconds=0.5",
             "--cache-dir", str(tmp_path / "cache"), "--k", "3", "--out", str(out), "--quiet", *extra]
    config = config_from_args(crossval.build_parser().parse_args(flags))

    def stop(*args, **kwargs):
        raise Interrupted

    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "train_run", stop)
        with pytest.raises(Interrupted):
            crossval.run_crossval(config, out, k=3, folds=[1], overwrite="--overwrite" in extra, log=lines.append)
    assert any(line.endswith(f"); running fold [1] into {out}") for line in lines), lines  # one fold: 'fold'
    return flags, config


def test_a_fold_folder_in_use_is_refused_in_the_callers_words_and_left_as_it_is(tmp_path, capsys):
    """A fold folder another process held (a `train --out cv/fold_2` of the user's) was refused by train_run with
    "choose another run_dir", an argument neither the command nor run_crossval has, after crossval had written
    its split.csv, skipped.csv and train.log into the folder under the other process."""
    import socket

    from sound_tf import crossval

    out = tmp_path / "cv"
    flags, config = _crossval_not_trained(tmp_path, out, "--folds", "2")
    fold = out / "fold_2"
    fold.mkdir()
    (fold / "split.csv").write_text("the other process's split\n")
    holder = hold_folder(fold)
    try:
        in_use = (f"{fold}: in use by pid {holder.pid} on {socket.gethostname()}, which is training or exporting "
                  f"this run; wait for it to end, or choose another ")
        with pytest.raises(ConfigError) as info:
            crossval.run_crossval(config, out, k=3, folds=[2], log=lambda m: None)
        assert str(info.value) == f"{in_use}out_dir"
        capsys.readouterr()
        assert crossval.main(flags) == 2
        assert capsys.readouterr().err == f"{_folder_recipe_line(tmp_path / 'data')}error: {in_use}--out\n"
        assert sorted(p.name for p in fold.iterdir()) == [".lock", "split.csv"]  # nothing written under it
        assert (fold / "split.csv").read_text() == "the other process's split\n"
    finally:
        holder.kill()
        holder.wait()


def test_overwrite_deletes_the_fold_folders_under_their_locks_and_refuses_one_in_use(tmp_path, capsys):
    """--overwrite (overwrite=True) deleted every fold folder outright, lock file too, while another process
    (a `train --out cv/fold_2` of the user's) trained in one; tune's --overwrite empties best_run only under its
    lock. It now refuses a fold folder in use before deleting anything, and deletes each under its lock."""
    import socket

    from sound_tf import crossval
    from sound_tf.locks import claim_folder, release_folder

    out = tmp_path / "cv"
    flags, config = _crossval_not_trained(tmp_path, out, "--folds", "1", "--overwrite")
    for name in ("fold_1", "fold_2"):
        (out / name).mkdir(exist_ok=True)
        (out / name / "model.keras").write_text(f"{name}'s model\n")
    fold = out / "fold_2"
    holder = hold_folder(fold)
    try:
        before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        in_use = (f"{fold}: in use by pid {holder.pid} on {socket.gethostname()}, which is training or exporting "
                  f"this run; wait for it to end, or choose another ")
        with pytest.raises(ConfigError) as info:
            crossval.run_crossval(config, out, k=3, folds=[1], overwrite=True, log=lambda m: None)
        assert str(info.value) == f"{in_use}out_dir"
        capsys.readouterr()
        assert crossval.main(flags) == 2
        assert capsys.readouterr().err == f"{_folder_recipe_line(tmp_path / 'data')}error: {in_use}--out\n"
        after = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert {k: v for k, v in after.items() if not k.endswith(".log")} == \
            {k: v for k, v in before.items() if not k.endswith(".log")}  # nothing deleted (the log is appended)
    finally:
        holder.kill()
        holder.wait()
    _crossval_not_trained(tmp_path, out, "--folds", "1", "--overwrite")  # free again: deleted under their locks
    assert not (out / "fold_2").exists() and not (out / "fold_1" / "model.keras").exists()
    assert claim_folder(out / "fold_2") is None  # nobody holds it: the lock went with the folder
    release_folder(out / "fold_2")


def test_crossval_on_a_speech_commands_folder_assigns_its_folds_by_speaker_and_says_so(tmp_path, monkeypatch):
    """The command, not only plan_folds: run_crossval passes the layout it read to plan_folds, so the lists' split
    (24, 6 and 6 clips here) is not held out in turn; --k folds of whole speakers are, with a line saying why. Its
    plan_folds test could not tell the command had dropped the format. No training."""
    from sound_tf import trainer
    from sound_tf.crossval import run_crossval

    def stop(*args, **kwargs):
        raise Interrupted

    monkeypatch.setattr(trainer, "train_run", stop)
    root, out, lines = make_speech_commands(tmp_path / "sc"), tmp_path / "cv", []
    config = apply_overrides(Config(), {"data.path": str(root), "audio.sample_rate_hz": 16000,
                                        "audio.clip_seconds": 0.5, "data.cache_dir": str(tmp_path / "cache")})
    with pytest.raises(Interrupted):
        run_crossval(config, out, k=3, log=lines.append)
    assert ("cross-validation: the speech_commands data's folds are one split (training, validation, test), not "
            "folds to hold out in turn: 3 folds (k=3) are assigned by speaker instead") in lines, lines
    assert (f"cross-validation: 36 files, 3 folds (stratified group k-fold: 1: 12, 2: 12, 3: 12); running folds "
            f"[1, 2, 3] into {out}") in lines
    with (out / "folds.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    speakers_of = {fold: {row["group"] for row in rows if row["fold"] == fold} for fold in ("1", "2", "3")}
    assert sorted(map(len, speakers_of.values())) == [2, 2, 2] and set.union(*speakers_of.values()) == set(
        SPEECH_SPEAKERS)
    # the fold's line names whose words it tests (its speakers, as Speech Commands' file names give them)
    (fold_1,) = [line for line in lines if line.startswith("fold 1: train")]
    assert fold_1.endswith(f"test 12 clips of speakers {', '.join(sorted(speakers_of['1']))}"), fold_1


def test_crossval_on_a_speech_commands_copy_without_lists_says_its_folds_are_by_speaker(tmp_path, monkeypatch):
    """Without the lists the log said only 'stratified group k-fold', not what the groups were: nothing told the
    user a partial copy was read by speaker, as README says. No training."""
    from sound_tf import trainer
    from sound_tf.crossval import run_crossval

    def stop(*args, **kwargs):
        raise Interrupted

    monkeypatch.setattr(trainer, "train_run", stop)
    root, out, lines = make_speech_commands(tmp_path / "sc", lists=False), tmp_path / "cv", []
    config = apply_overrides(Config(), {"data.path": str(root), "audio.sample_rate_hz": 16000,
                                        "audio.clip_seconds": 0.5, "data.cache_dir": str(tmp_path / "cache")})
    with pytest.raises(Interrupted):
        run_crossval(config, out, k=2, log=lines.append)
    assert "cross-validation: the speech_commands data has no lists: 2 folds (k=2) are assigned by speaker" in lines
    assert not any("not folds to hold out in turn" in line for line in lines)
    with (out / "folds.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    speakers_of = {fold: {row["group"] for row in rows if row["fold"] == fold} for fold in ("1", "2")}
    assert sorted(map(len, speakers_of.values())) == [3, 3] and not speakers_of["1"] & speakers_of["2"]


def test_crossval_on_word_folders_named_by_speaker_warns_that_k_folds_split_speakers(tmp_path, monkeypatch, caplog):
    """Speech Commands word folders without the lists or _background_noise_ are a folder of classes: --k folds of
    single files put a speaker's recordings in several folds, and nothing said so. No training."""
    import logging
    import shutil

    from sound_tf import trainer
    from sound_tf.crossval import run_crossval

    def stop(*args, **kwargs):
        raise Interrupted

    monkeypatch.setattr(trainer, "train_run", stop)
    root, out = make_speech_commands(tmp_path / "words", lists=False), tmp_path / "cv"
    shutil.rmtree(root / "_background_noise_")
    config = apply_overrides(Config(), {"data.path": str(root), "audio.sample_rate_hz": 16000,
                                        "audio.clip_seconds": 0.5, "data.cache_dir": str(tmp_path / "cache")})
    with caplog.at_level(logging.WARNING, logger="sound_tf.datasets"), pytest.raises(Interrupted):
        run_crossval(config, out, k=3, log=lambda _: None)
    assert [record.getMessage().split(", so it is read")[0] for record in caplog.records] == [
        f"every file under {root} is named <speaker>_nohash_<n>, as Speech Commands' are, but the folder holds "
        f"neither its lists (validation_list.txt and testing_list.txt) nor _background_noise_"]
    with (out / "folds.csv").open() as handle:
        folds_of = defaultdict(set)
        for row in csv.DictReader(handle):
            folds_of[Path(row["path"]).name.split("_nohash_")[0]].add(row["fold"])
    assert max(map(len, folds_of.values())) > 1  # what the warning is about


# -- found by a mutation pass of crossval.py --------------------------------------------------------------
def test_plan_folds_refuses_a_partial_fold_column_and_a_single_fold():
    """A manifest whose fold column is filled on some rows only, or names one fold, cannot be cross-validated;
    each is said plainly (the partial one was sorted with None and failed with a TypeError)."""
    from sound_tf.datasets import Example

    partial = [Example(path=f"{i}.wav", label="ab"[i % 2], fold=(1 + i % 2) if i < 4 else None) for i in range(6)]
    with pytest.raises(DatasetError, match=r"^4 of 6 examples have a fold and the others do not; give every "
                                           r"example a fold or none$"):
        plan_folds(partial)
    single = [Example(path=f"{i}.wav", label="ab"[i % 2], fold=3) for i in range(4)]
    with pytest.raises(DatasetError, match=r"^every example is in fold 3; cross-validation needs at least two "
                                           r"folds$"):
        plan_folds(single)


def test_a_file_moved_to_another_fold_changes_the_assignment_and_resuming_is_refused(tmp_path):
    """The same files and labels with one file in another fold (a manifest's fold column edited) is another
    cross-validation: its finished folds tested other files, so resuming it is refused."""
    from dataclasses import replace

    from sound_tf.crossval import STATE_FILE, _check_state, assignment_digest
    from sound_tf.datasets import Example

    examples = [Example(path=f"/data/{label}_{i}.wav", label=label, fold=1 + i % 2) for label in "ab" for i in range(4)]
    moved = [replace(ex, fold=3 - ex.fold) if ex.path == "/data/a_0.wav" else ex for ex in examples]
    assert assignment_digest(examples) == assignment_digest(examples[::-1])  # the order the files are listed in: no
    assert assignment_digest(moved) != assignment_digest(examples)
    state = {"fingerprint": "abc", "scheme": "official", "folds": [1, 2], "assignment": assignment_digest(examples)}
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(ConfigError, match=r"\(assignment differs\)"):
        _check_state(tmp_path, {**state, "assignment": assignment_digest(moved)}, overwrite=False)


def test_two_folds_carve_validation_with_the_training_seed():
    """With two folds the validation clips are carved from the training fold as train carves them: with
    data.val_fraction and train.seed (another seed, another carve)."""
    from sound_tf.datasets import Example, split_examples

    examples = [Example(path=f"{label}_{g}_{i}.wav", label=label, fold=1 + g % 2, group=f"{label}{g}")
                for label in ("a", "b") for g in range(12) for i in range(2)]
    carves = {}
    for seed, fraction in ((0, 0.2), (7, 0.2), (7, 0.4)):
        config = apply_overrides(Config(), {"train.seed": seed, "data.val_fraction": fraction})
        splits = fold_splits(examples, 1, config)
        assert splits == split_examples(examples, test_fold=1, val_fraction=fraction, seed=seed)
        assert {ex.fold for ex in splits["test"]} == {1} and {ex.fold for ex in splits["val"]} == {2}
        carves[seed, fraction] = sorted(ex.path for ex in splits["val"])
    assert len(carves[7, 0.4]) > len(carves[7, 0.2])
    assert carves[0, 0.2] != carves[7, 0.2]


def test_the_summary_orders_ten_folds_by_number_and_logs_mean_and_std(tmp_path):
    """UrbanSound8K's ten folds: the report's class-count columns read fold 1 ... fold 10 (not fold 1, fold 10,
    fold 2 ...), and the log's "mean +/- std" line gives the folds' mean and standard deviation (not the pooled
    score). A fold whose metrics.json was written but whose run never said "done" (killed in between) is still
    pending. No training."""
    from sound_tf.crossval import summarise, write_folds_csv
    from sound_tf.datasets import Example
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid"]
    out = tmp_path / "cv"
    # fold 2: 3 clips, 2 right (accuracy 2/3); fold 10: 6 clips, all right; pooled 8/9, mean 5/6, std 1/6
    for fold, (y_true, y_pred) in {2: ([0, 1, 2], [0, 1, 1]), 10: ([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2])}.items():
        (out / f"fold_{fold}").mkdir(parents=True)
        write_metrics_json(out / f"fold_{fold}" / "metrics.json", compute_metrics(y_true, np.eye(3)[y_pred], labels))
        (out / f"fold_{fold}" / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
    (out / "fold_3").mkdir()  # killed after its metrics.json, before its state said done
    write_metrics_json(out / "fold_3" / "metrics.json", compute_metrics([0, 1], np.eye(3)[[1, 0]], labels))
    (out / "fold_3" / "run_state.json").write_text(json.dumps({"status": "running"}))
    write_folds_csv(out / "folds.csv", [Example(path=f"/d/{label}_{fold}.wav", label=label, fold=fold)
                                        for fold in range(1, 11) for label in labels])
    lines: list[str] = []
    result = summarise(out, list(range(1, 11)), config=Config(), log=lines.append)
    assert result["folds_done"] == [2, 10] and 3 in result["folds_pending"]
    assert result["pooled"]["accuracy"] == pytest.approx(8 / 9)
    # which std it is, said where it is printed (a paper's sample std of these two folds, ddof=1, is 0.2357):
    # the line read "mean +/- std over folds: ..." and crossval.json held "std" alone (session 49's ESC-50 walkthrough)
    said = "mean +/- std over folds (the population std, ddof=0, as numpy.std): "
    mean_std = [line for line in lines if line.startswith(said)]
    assert len(mean_std) == 1 and mean_std[0].startswith(f"{said}accuracy 0.8333 +/- 0.1667, "), lines
    assert result["std_ddof"] == 0 and json.loads((out / "crossval.json").read_text())["std_ddof"] == 0
    per_fold = result["per_fold"]
    for key in ("balanced_accuracy", "macro_f1"):
        values = [row[key] for row in per_fold]
        assert f"{key} {np.mean(values):.4f} +/- {np.std(values):.4f}" in mean_std[0]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<th>class</th>" + "".join(f"<th>fold {k}</th>" for k in range(1, 11)) + "<th>all</th>" in page
    assert '<td>accuracy</td><td class="num">0.8333</td><td class="num">0.1667</td>' in page

    # one fold done: no spread to give ('+/- 0.0000' and a std of 0.0000 read as folds that agree)
    shutil.rmtree(out / "fold_10")
    lines.clear()
    summarise(out, list(range(1, 11)), config=Config(), log=lines.append)
    assert "fold 2 alone (no spread over one fold): accuracy 0.6667, balanced_accuracy " in "\n".join(lines), lines
    assert not [line for line in lines if "+/-" in line], lines
    assert "per class: crossval_per_class.csv and the report (fold 2 alone: no spread)" in lines
    with (out / "crossval_per_class.csv").open(newline="") as handle:  # fold 2: its mid taken for low
        assert [(r["label"], r["folds"], r["recall_mean"], r["recall_std"]) for r in csv.DictReader(handle)] == [
            ("high", "1", "1.000000", ""), ("low", "1", "1.000000", ""), ("mid", "1", "0.000000", "")]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert '<td>accuracy</td><td class="num">0.6667</td><td class="num">n/a</td>' in page


def test_the_command_assigns_five_folds_by_default():
    """README and --help: --k defaults to 5 (DEFAULT_K, run_crossval's default too)."""
    from sound_tf import crossval

    assert crossval.build_parser().parse_args([]).k == crossval.DEFAULT_K == 5


def _uneven_manifest(root: Path) -> Path:
    """Three official folds of tones: fold 1 holds high, low, mid and an unreadable low, fold 2 high and low,
    fold 3 high, low and mid (9 files, 8 readable; mid has no clip in fold 2)."""
    root.mkdir(parents=True)
    rows = ["path,label,fold"]
    for fold, labels in ((1, ("high", "low", "mid")), (2, ("high", "low")), (3, ("high", "low", "mid"))):
        for label in labels:
            t = np.arange(SR // 2) / SR
            sf.write(root / f"{label}_{fold}.wav", 0.3 * np.sin(2 * np.pi * TONES_HZ[label] * t), SR)
            rows.append(f"{label}_{fold}.wav,{label},{fold}")
    (root / "broken_1.wav").write_bytes(b"RIFF\x00\x00 not a wave file")
    rows.append("broken_1.wav,low,1")
    (root / "clips.csv").write_text("\n".join(rows) + "\n")
    return root / "clips.csv"


def test_the_header_counts_the_clips_each_fold_tests_and_names_the_unreadable(tmp_path, monkeypatch):
    """The header said "9 files, 3 folds (official: 1: 4, 2: 2, 3: 3)" when one file of fold 1 could not be read
    and fold 1 then tested 3 clips; it now gives the clips each fold tests and how many files were unreadable,
    on a resumed cross-validation too (read back from its skipped.csv). Each fold's data holds the readable
    clips, names the unreadable file, and a class without a training clip is warned of. No training."""
    from sound_tf.crossval import run_crossval, scheme_shown
    from sound_tf.metrics import compute_metrics, write_metrics_json

    given = _fold_data_kept(monkeypatch)
    manifest, out = _uneven_manifest(tmp_path / "data"), tmp_path / "cv"
    config = apply_overrides(Config(), {"data.path": str(manifest), "audio.sample_rate_hz": SR,
                                        "audio.clip_seconds": 0.5, "data.cache_dir": str(tmp_path / "cache")})
    header = (f"cross-validation: 8 readable files of 9 (1 unreadable, listed in {out / 'skipped.csv'}), 3 folds "
              f"(the manifest's fold column: 1: 3, 2: 2, 3: 3); running folds [1, 2, 3] into {out}")
    lines: list[str] = []
    with pytest.raises(Interrupted):
        run_crossval(config, out, log=lines.append)
    assert header in lines, [line for line in lines if line.startswith("cross-validation")]
    data = given["fold_1"]
    assert {name: sorted(Path(item.source).name for item in items) for name, items in data.splits.items()} == {
        "train": ["high_2.wav", "low_2.wav"], "val": ["high_3.wav", "low_3.wav", "mid_3.wav"],
        "test": ["high_1.wav", "low_1.wav", "mid_1.wav"]}
    assert [Path(path).name for path, _ in data.skipped] == ["broken_1.wav"]
    assert (data.stats["files"], data.stats["skipped"], data.stats["test_items"]) == (9, 1, 3)
    # A manifest's folds are the user's: "official" (ESC-50's, UrbanSound8K's) named them in the log, each fold's
    # report and the cross-validation's (the saved state keeps the word, which resuming compares).
    assert data.stats["split_source"] == ("cross-validation (the manifest's fold column), test fold 1, validation "
                                          "fold 3 (data.val_from fold)")
    assert json.loads((out / "crossval_state.json").read_text())["scheme"] == "official"
    assert scheme_shown("official", "esc50") == "official"
    assert "warning: fold 1: class ['mid'] has no training clip; the model cannot learn it" in lines

    # Every fold finished (as if trained): nothing is decoded, the counts come from its skipped.csv.
    labels = ["high", "low", "mid"]
    for fold in (1, 2, 3):
        (out / f"fold_{fold}").mkdir(exist_ok=True)
        write_metrics_json(out / f"fold_{fold}" / "metrics.json", compute_metrics([0, 1], np.eye(3)[[0, 1]], labels))
        (out / f"fold_{fold}" / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
    lines.clear()
    run_crossval(config, out, log=lines.append)
    assert header in lines, [line for line in lines if line.startswith("cross-validation")]
    assert not [line for line in lines if line.startswith("data: decoding")]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "the manifest&#x27;s fold column" in page or "the manifest's fold column" in page


def test_folds_named_gives_the_folds_of_a_split_as_ranges():
    """A fold's log line read 'fold 1: train 120, val 15, test 15 clips' (UrbanSound8K, session 52): which folds
    trained and which one validated was said nowhere; it now reads 'fold 1: train 120 (folds 2-9), val 15 (fold 10),
    test 15 clips'."""
    from sound_tf.crossval import folds_named

    assert folds_named([10]) == "fold 10"
    assert folds_named([9, 2, 3, 4, 5, 6, 7, 8]) == "folds 2-9"
    assert folds_named([1, 3, 4, 5, 8]) == "folds 1, 3-5, 8"
    assert folds_named([2, 4]) == "folds 2, 4"


def _grouped_four_folds(root: Path) -> Path:
    """Four folds of high and low tones, two 2-clip groups (source recordings) of each class in each fold: 32 files."""
    root.mkdir(parents=True)
    rows = ["path,label,fold,group"]
    t = np.arange(SR // 2) / SR
    for fold in (1, 2, 3, 4):
        for label in ("high", "low"):
            for clip in range(4):
                name = f"{label}_{fold}_{clip}.wav"
                sf.write(root / name, 0.3 * np.sin(2 * np.pi * TONES_HZ[label] * (1 + clip / 100) * t), SR)
                rows.append(f"{name},{label},{fold},{label}{fold}-{clip // 2}")
    (root / "clips.csv").write_text("\n".join(rows) + "\n")
    return root / "clips.csv"


def test_val_from_training_validates_each_fold_on_a_share_of_the_other_folds(tmp_path, monkeypatch):
    """data.val_from 'training' (many papers on UrbanSound8K and ESC-50 train on all the other folds): each fold's
    validation is a group-aware data.val_fraction of the folds but the test fold, drawn with train.seed, and its log
    line says so in the two-fold case's words; the default still validates on the fold before. 3 training folds of 2
    groups a class: 12 clips a class, of which 0.15 (1.8) is one 2-clip group. No training."""
    from sound_tf.crossval import run_crossval
    from sound_tf.datasets import split_examples

    given = _fold_data_kept(monkeypatch)
    manifest = _grouped_four_folds(tmp_path / "data")
    base = {"data.path": str(manifest), "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5,
            "data.cache_dir": str(tmp_path / "cache")}
    lines: list[str] = []
    with pytest.raises(Interrupted):
        run_crossval(apply_overrides(Config(), base), tmp_path / "cv", folds=[1], log=lines.append)
    # the default, as before; fold 1's 4 source recordings counted (more than GROUPS_IN_FOLD_LINE)
    assert "fold 1: train 16 (folds 2-3), val 8 (fold 4), test 8 clips of 4 groups" in lines
    assert given["fold_1"].stats["split_source"].endswith("test fold 1, validation fold 4 (data.val_from fold)")
    drawn = apply_overrides(Config(), {**base, "data.val_from": "training"})
    lines.clear()
    with pytest.raises(Interrupted):
        run_crossval(drawn, tmp_path / "cv-drawn", folds=[1], log=lines.append)
    assert ("fold 1: train 20 (folds 2-4), val 4 (folds 2-4, data.val_fraction 0.15 of it), test 8 clips of 4 "
            "groups") in lines
    data = given["fold_1"]
    assert data.stats["split_source"] == ("cross-validation (the manifest's fold column), test fold 1, validation "
                                          "folds 2-4, data.val_fraction 0.15 of it (data.val_from training)")
    assert {item.fold for item in data.splits["test"]} == {1}  # the test fold untouched
    assert Counter(item.label for item in data.splits["val"]) == {"high": 2, "low": 2}
    assert {item.group for item in data.splits["val"]}.isdisjoint(item.group for item in data.splits["train"])
    examples = load_examples(manifest)
    splits = fold_splits(examples, 1, drawn)
    assert splits == split_examples(examples, test_fold=1, val_from="training", seed=0)  # as train draws it
    assert [Path(item.source).name for item in data.splits["val"]] == [Path(ex.path).name for ex in splits["val"]]
    other = fold_splits(examples, 1, apply_overrides(drawn, {"train.seed": 3}))
    assert sorted(ex.group for ex in other["val"]) != sorted(ex.group for ex in splits["val"])  # another seed
    assert fold_splits(examples, 1, apply_overrides(drawn, {"data.val_from": "fold"})) == split_examples(
        examples, test_fold=1)


def test_val_from_training_says_at_start_when_its_share_trains_on_fewer_clips_than_a_fold(tmp_path, monkeypatch):
    """A data.val_fraction of at least one training fold's share (1/3 of three) that validates on more clips than the
    fold before the test fold: a line before the first fold to run says so, in clips, with a smaller fraction's.
    3 training folds of 2 groups a class (12 clips): fold 4 validates 8; 0.45 of a class's 6 groups (2.7) draws 3
    (val 12, train 12), 0.3 (1.8) draws 2 (val 8, as the fold), and 0.4 (2.4) too, which is told nothing."""
    from sound_tf.crossval import run_crossval

    given = _fold_data_kept(monkeypatch)
    manifest = _grouped_four_folds(tmp_path / "data")
    base = {"data.path": str(manifest), "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5,
            "data.cache_dir": str(tmp_path / "cache"), "data.val_from": "training"}
    lines: list[str] = []
    with pytest.raises(Interrupted):
        run_crossval(apply_overrides(Config(), {**base, "data.val_fraction": 0.45}), tmp_path / "cv", folds=[1],
                     log=lines.append)
    told = ("fold 1: data.val_fraction 0.45 of 3 training folds validates on more clips than one fold (0.333) would: "
            "models train on fewer clips than with --val-from fold (train 12, val 12, against train 16, val 8); try "
            "--set data.val_fraction=0.3 (train 16, val 8)")
    assert told in lines
    assert lines.index(told) < lines.index("fold 1: train 12 (folds 2-4), val 12 (folds 2-4, data.val_fraction 0.45 "
                                           "of it), test 8 clips of 4 groups")
    assert (len(given["fold_1"].splits["train"]), len(given["fold_1"].splits["val"])) == (12, 12)
    lines.clear()
    with pytest.raises(Interrupted):
        run_crossval(apply_overrides(Config(), {**base, "data.val_fraction": 0.4}), tmp_path / "cv4", folds=[1],
                     log=lines.append)
    assert ("fold 1: train 16 (folds 2-4), val 8 (folds 2-4, data.val_fraction 0.4 of it), test 8 clips of 4 groups"
            in lines)
    assert not any("training folds validates" in line for line in lines)


def test_val_from_training_is_taken_for_speech_commands_folds_by_speaker(tmp_path, monkeypatch, capsys):
    """train refuses --val-from training on Speech Commands' lists (they are its split); crossval assigns folds by
    speaker instead of the lists, so the command takes it and draws each fold's validation by speaker."""
    from sound_tf import crossval

    root = make_speech_commands(tmp_path / "sc")
    calls = []
    monkeypatch.setattr(crossval, "run_crossval", lambda config, out_dir, **kwargs: calls.append(config))
    assert crossval.main(["--data", str(root), "--val-from", "training", "--k", "3", "--out", str(tmp_path / "cv"),
                          "--quiet"]) == 0, capsys.readouterr().err
    assert [config.data.val_from for config in calls] == ["training"]
    examples, _ = plan_folds(load_examples(root), k=3, seed=0, data_format="speech_commands")
    splits = fold_splits(examples, 1, calls[0])
    assert splits["val"] and {ex.group for ex in splits["val"]}.isdisjoint(ex.group for ex in splits["train"])
    assert {ex.fold for ex in splits["val"]} <= {2, 3}


def _us8k_without_fold7(root: Path) -> Path:
    """_urbansound8k's metadata with a 0.25-s tone for each slice, fold 7's folder missing."""
    _urbansound8k(root)
    tones = dict(zip("012", TONES_HZ.values()))
    for row in (root / "metadata" / "UrbanSound8K.csv").read_text().splitlines()[1:]:
        name, fold, class_id = row.split(",")[0], int(row.split(",")[5]), row.split(",")[6]
        if fold != 7:
            (root / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
            sf.write(root / "audio" / f"fold{fold}" / name,
                     0.3 * np.sin(2 * np.pi * tones[class_id] * np.arange(SR // 4) / SR), SR)
    return root


def _fold_7_finished(out: Path) -> None:
    (out / "fold_7").mkdir(parents=True)
    (out / "fold_7" / "run_state.json").write_text('{"status": "done"}')
    (out / "fold_7" / "metrics.json").write_text("{}")


def test_a_fold_finished_before_its_folder_went_is_passed_over_by_the_command_and_run_crossval(tmp_path, capsys,
                                                                                             monkeypatch):
    """Resuming a cross-validation whose fold 7 finished before audio/fold7 went: the command (its --out handed to
    the early check) and run_crossval (its pending folds) look at the folds still to run, and go on to decode them
    (session 52's mutation audit: check_folds given no out_dir by the command, and run_crossval looking at its
    finished folds too, passed every test)."""
    from sound_tf import crossval, evaluation

    class Decoding(Exception):
        pass

    root, out = _us8k_without_fold7(tmp_path / "us8k"), tmp_path / "cv"
    config = apply_overrides(Config(), {"data.path": str(root), "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5,
                                        "data.cache_dir": str(tmp_path / "cache")})
    with monkeypatch.context() as patched:  # a cross-validation of fold 1 started, stopped before its training
        _fold_data_kept(patched)
        with pytest.raises(Interrupted):
            crossval.run_crossval(config, out, folds=[1], log=lambda m: None)
    _fold_7_finished(out)
    monkeypatch.setattr(evaluation, "decode_examples", lambda *a, **k: (_ for _ in ()).throw(Decoding()))
    with pytest.raises(Decoding):  # folds 1-6 and 8-10 are decoded; fold 7 is read back
        crossval.run_crossval(config, out, log=lambda m: None)
    calls = []
    monkeypatch.setattr(crossval, "run_crossval", lambda config, out_dir, **kwargs: calls.append(Path(out_dir)))
    assert crossval.main(["--data", str(root), "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    assert calls == [out]
    shutil.rmtree(out / "fold_7")  # not finished: refused, as before
    assert crossval.main(["--data", str(root), "--out", str(out), "--quiet"]) == 2
    assert "error: fold 7: none of its 9 files exists" in capsys.readouterr().err
    assert calls == [out]


def test_a_fold_missing_some_of_its_files_runs_and_a_fold_of_one_missing_file_is_named(tmp_path, folder_walks):
    """A fold holding one of its files runs (the rest skipped by the run, as before); a fold of one file, not there,
    reads 'its 1 file does not exist'. A folder tree is not walked by the early check when no fold is named: its walk
    is the run's (session 52's mutation audit: 'all' for 'any', the one-file wording, and the check walking a tree
    passed every test)."""
    from sound_tf import crossval

    root = tmp_path / "data"
    root.mkdir()
    rows = ["path,label,fold"]
    for fold, names in ((1, ("a_1", "b_1")), (2, ("a_2", "b_2", "gone_2")), (3, ("gone_3",))):
        for name in names:
            if not name.startswith("gone"):
                (root / f"{name}.wav").write_bytes(b"")
            rows.append(f"{name}.wav,{name[0]},{fold}")
    (root / "clips.csv").write_text("\n".join(rows) + "\n")
    config = apply_overrides(Config(), {"data.path": str(root / "clips.csv")})
    crossval.check_folds(config, folds=[1, 2])  # fold 2: 2 of its 3 files there
    with pytest.raises(DatasetError) as refused:
        crossval.check_folds(config)
    assert str(refused.value) == (f"fold 3: its 1 file does not exist (first: {root / 'gone_3.wav'}); restore it "
                                  f"(the dataset's download), or leave the fold out: folds=[1, 2]")
    tree = _tones(tmp_path / "tree")
    crossval.check_folds(apply_overrides(Config(), {"data.path": str(tree)}))
    assert not folder_walks
    crossval.check_folds(apply_overrides(Config(), {"data.path": str(tree)}), k=3, folds=[2])  # named: read
    assert set(folder_walks) == set(TONES_HZ)


def test_the_early_check_reads_the_metadata_alone_and_leaves_its_warnings_to_the_run(tmp_path, caplog, monkeypatch,
                                                                                     folder_walks):
    """check_folds and data_has_folds read UrbanSound8K's metadata with its warnings unsaid, and walked its audio
    folder and looked at each listed file for those warnings all the same, before the run read it again and said
    them. They read the metadata alone now, and still refuse a fold whose folder is missing; the run's reading walks
    the folder and says what it finds."""
    from sound_tf import crossval, datasets

    root = _us8k_without_fold7(tmp_path / "us8k")
    sf.write(root / "audio" / "fold1" / "9999-0-0-0.wav", np.zeros(SR // 4), SR)  # listed nowhere
    config = apply_overrides(Config(), {"data.path": str(root)})
    looked = []
    fold_folders = datasets._warn_fold_folders
    monkeypatch.setattr(datasets, "_warn_fold_folders", lambda *args: looked.append(args) or fold_folders(*args))
    with pytest.raises(DatasetError, match=r"^fold 7: none of its 9 files exists \(.*fold7 does not exist\)"):
        crossval.check_folds(config)
    crossval.check_folds(config, folds=[1, 2, 3, 4, 5, 6, 8, 9, 10])
    assert crossval.data_has_folds(config)
    assert not folder_walks and not looked
    with caplog.at_level("WARNING", logger="sound_tf.datasets"):
        assert len(load_examples(root)) == 90  # the run's reading
    assert folder_walks == {"audio": 1} and len(looked) == 1
    assert f"{Path('audio', 'fold7')} does not exist: the 9 files" in caplog.text
    assert f"1 audio file under {root / 'audio'} is not listed in" in caplog.text


def test_two_folds_name_the_training_fold_validation_is_carved_from(tmp_path, monkeypatch):
    """With two folds validation is carved from the training fold: the fold line names that fold and the
    data.val_fraction it takes, as its split.csv holds them (session 52's mutation audit: data.test_fraction named
    there passed every test). No training."""
    from sound_tf.crossval import run_crossval
    from sound_tf.datasets import read_split_csv

    _fold_data_kept(monkeypatch)
    data, out = _tones(tmp_path / "data"), tmp_path / "cv"
    config = apply_overrides(Config(), {"data.path": str(data), "audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5,
                                        "data.cache_dir": str(tmp_path / "cache"), "data.val_fraction": 0.3})
    assert config.data.val_fraction != config.data.test_fraction
    lines: list[str] = []
    with pytest.raises(Interrupted):
        run_crossval(config, out, k=2, folds=[1], log=lines.append)
    split = read_split_csv(out / "fold_1" / "split.csv", run_file=True)
    (train_fold,) = {ex.fold for ex in split["train"]}
    assert {ex.fold for ex in split["val"]} == {train_fold} and {ex.fold for ex in split["test"]} == {1}
    assert (f"fold 1: train {len(split['train'])} (fold {train_fold}), val {len(split['val'])} (fold {train_fold}, "
            f"data.val_fraction 0.3 of it), test {len(split['test'])} clips") in lines, lines


def test_a_class_no_fold_tested_keeps_its_row_in_the_per_class_numbers_over_folds(tmp_path):
    """--folds 1 and 2 of data whose clips of mid are all in fold 3: crossval.json's per_class_folds keeps mid with
    no fold, and crossval_per_class.csv its row with the numbers empty (session 52's mutation audit: the class left
    out of both passed every test). No training."""
    from sound_tf.crossval import summarise
    from sound_tf.metrics import compute_metrics, write_metrics_json

    labels = ["high", "low", "mid"]
    out = tmp_path / "cv"
    folds = {1: ([0, 1, 1], [0, 1, 2]), 2: ([0, 0, 1], [0, 0, 1])}  # no mid clip; fold 1 takes a low for mid
    for fold, (y_true, y_pred) in folds.items():
        (out / f"fold_{fold}").mkdir(parents=True)
        write_metrics_json(out / f"fold_{fold}" / "metrics.json", compute_metrics(y_true, np.eye(3)[y_pred], labels))
        (out / f"fold_{fold}" / "run_state.json").write_text(json.dumps({"status": "done", "seconds": 1.0}))
    result = summarise(out, [1, 2, 3], config=Config(), log=lambda m: None)
    over = json.loads((out / "crossval.json").read_text())["per_class_folds"]
    assert list(over) == labels and over["mid"] == {"folds": 0} == result["per_class_folds"]["mid"]
    with (out / "crossval_per_class.csv").open(newline="") as handle:
        table = {row["label"]: row for row in csv.DictReader(handle)}
    assert list(table) == labels
    support = sum(y == 2 for y_true, _ in folds.values() for y in y_true)
    assert table["mid"] == {"label": "mid", "folds": "0", **{f"{name}_{kind}": "" for name in ("precision", "recall",
                            "f1") for kind in ("mean", "std")}, "pooled_f1": f"{0.0:.6f}", "support": str(support)}


def test_the_shares_each_fold_trains_validates_and_tests_on_are_said_with_a_larger_k_when_training_gets_under_half(
        tmp_path):
    """`crossval --k 3` trained each fold on as many clips as it validated on (20 and 20, session 55): one fold tests,
    the one before it validates, one trains, and nothing said so. One line now gives each fold's clips and their
    shares; under half for training, a note names a --k that trains on more. k=3 on 18 tones: 6 / 6 / 6, 33% each;
    k=5: the folds of 3 and 4 clips give ranges, training 3 folds of 5, no note. No training."""
    from sound_tf.crossval import PYTHON_WORDING, fold_shares_lines

    examples = [ex for ex in load_examples(_tones(tmp_path / "data")) if not ex.path.endswith("broken.wav")]
    config = apply_overrides(Config(), {"audio.sample_rate_hz": SR})

    def lines(k: int, config: Config = config, **kwargs) -> tuple[list[str], dict]:
        planned, scheme = plan_folds(examples, k=k, seed=config.train.seed)
        splits = {fold: fold_splits(planned, fold, config) for fold in range(1, k + 1)}
        return fold_shares_lines(splits, config, scheme=kwargs.pop("scheme", scheme), **kwargs), splits

    three, splits = lines(3)
    assert {name: {len(split[name]) for split in splits.values()} for name in ("train", "val", "test")} == {
        "train": {6}, "val": {6}, "test": {6}}
    assert three == ["cross-validation: each fold trains on 6 clips (33%), validates on 6 (33%) and tests on 6 (33%); "
                     "validation is the fold before each test fold (data.val_from fold)",
                     "note: each fold trains on 33% of its clips, fewer than half; --k 5 trains on about 60%"]
    assert lines(3, wording=PYTHON_WORDING)[0][1].endswith("; k=5 trains on about 60%")
    # the data's own three folds: --k changes nothing there; validation drawn from the other folds trains on more
    assert lines(3, scheme="official")[0][1] == ("note: each fold trains on 33% of its clips, fewer than half; "
                                                 "--val-from training validates on a data.val_fraction 0.15 of the "
                                                 f"other folds instead and trains on about {2 / 3 * 0.85:.0%}")
    five, splits = lines(5)
    counts = {name: [len(split[name]) for split in splits.values()] for name in ("train", "val", "test")}
    totals = [sum(len(rows) for rows in split.values()) for split in splits.values()]
    assert set(counts["test"]) == {3, 4} and sum(counts["test"]) == 18 and set(totals) == {18}
    shares = {name: sorted({round(100 * count / 18) for count in counts[name]}) for name in counts}
    assert five == [f"cross-validation: each fold trains on {min(counts['train'])}-{max(counts['train'])} clips "
                    f"({shares['train'][0]}-{shares['train'][-1]}%), validates on 3-4 (17-22%) and tests on 3-4 "
                    f"(17-22%); validation is the fold before each test fold (data.val_from fold)"]
    assert sum(counts["train"]) / sum(totals) >= 0.5
    drawn = apply_overrides(config, {"data.val_from": "training"})  # k=3, validation a share of the other two folds
    [line] = lines(3, drawn)[0]
    assert "validation is a data.val_fraction 0.15 of the folds but the test fold" in line
    assert lines(5, scheme="official")[0] == five and fold_shares_lines({}, config, scheme="official") == []


def test_crossval_says_the_folds_shares_once_before_the_first_fold(tmp_path, monkeypatch):
    """run_crossval logs the lines of :func:`fold_shares_lines` once, after the header and before the first fold's
    line, with the clips the folds' runs are given (an unreadable file left out). No training."""
    from sound_tf.crossval import run_crossval

    given = _fold_data_kept(monkeypatch)
    config = apply_overrides(Config(), {"data.path": str(_tones(tmp_path / "data")), "audio.sample_rate_hz": SR,
                                        "audio.clip_seconds": 0.5, "data.cache_dir": str(tmp_path / "cache")})
    lines: list[str] = []
    with pytest.raises(Interrupted):
        run_crossval(config, tmp_path / "cv", k=3, log=lines.append)
    said = [line for line in lines if line.startswith("cross-validation: each fold trains on ")]
    # fold 1's run trains on fold 2, validates on fold 3 and tests fold 1: the three folds' readable clips (19 files
    # in folds of 6 or 7, broken.wav in one), which every fold trains, validates and tests on in turn
    data = given["fold_1"]
    sizes = sorted(len(data.splits[name]) for name in ("train", "val", "test"))
    assert sizes == [5, 6, 7] and sum(sizes) == 18
    shares = f"{round(100 * sizes[0] / 18)}-{round(100 * sizes[-1] / 18)}%"
    expected = (f"cross-validation: each fold trains on 5-7 clips ({shares}), validates on 5-7 ({shares}) and tests "
                f"on 5-7 ({shares}); validation is the fold before each test fold (data.val_from fold)")
    assert said == [expected], lines
    assert shares == "28-39%"
    header = next(i for i, line in enumerate(lines) if line.startswith("cross-validation: 18 readable files"))
    first = next(i for i, line in enumerate(lines) if line.startswith("fold 1: train "))
    assert header < lines.index(said[0]) < first
    assert lines[lines.index(said[0]) + 1] == "note: each fold trains on 33% of its clips, fewer than half; k=5 " \
                                              "trains on about 60%"
