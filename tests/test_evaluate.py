"""sound_tf.evaluate and the evaluation files of a run: consistent content, other datasets, folds, report.

One tiny run (3 tone classes at 8 kHz, 0.5-s clips, some longer so windows slide) is trained once for
the module and evaluated several ways.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import make_speech_commands
from sound_tf.config import Config, apply_overrides
from sound_tf.errors import DatasetError, SoundTFError

SR = 8000
TONES_HZ = {"high": 2200.0, "low": 300.0, "mid": 900.0}
DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def write_tone(path: Path, freq_hz: float, seconds: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * SR))) / SR
    wave = 0.3 * np.sin(2 * np.pi * freq_hz * rng.uniform(0.97, 1.03) * t) + 0.02 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), SR, subtype="PCM_16")
    return path


def make_tree(root: Path, clips_per_class: int, *, seed: int = 0) -> Path:
    for index, (label, freq) in enumerate(TONES_HZ.items()):
        for i in range(clips_per_class):
            seconds = 1.2 if i % 3 == 0 else 0.5  # every third clip is longer than one window
            write_tone(root / label / f"{label}_{i}.wav", freq, seconds, seed=seed + 100 * index + i)
    return root


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from sound_tf.trainer import train_run

    root = tmp_path_factory.mktemp("evaluate")
    config = apply_overrides(Config(), {
        "data.path": str(make_tree(root / "data", 8)), "data.format": "folder", "audio.sample_rate_hz": SR,
        "data.val_fraction": 0.1, "data.test_fraction": 0.25,  # splits of different sizes: each is told apart
        "audio.clip_seconds": 0.5, "augment.enabled": False, "model.widths": [8, 16], "train.epochs": 3,
        "train.batch_size": 8, "train.learning_rate": 0.02, "train.warmup_epochs": 0})
    return train_run(config, root / "run", verbose=0, log=lambda message: None)


def test_evaluate_writes_consistent_files(run, tmp_path, capsys):
    from sound_tf import evaluate
    from sound_tf.audio import DecodeCache, default_cache_dir
    from sound_tf.metrics import compute_metrics
    from sound_tf.pipeline import predict_logits

    out = tmp_path / "eval"
    assert evaluate.main([str(run.run_dir), "--out", str(out)]) == 0
    for name in ("metrics.json", "confusion_matrix.png", "per_class.png", "confused_pairs.csv", "errors.csv",
                 "skipped.csv", "report.html", "curves.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name

    test_rows = [r for r in _rows(run.run_dir / "split.csv") if r["split"] == "test"]
    val_rows = [r for r in _rows(run.run_dir / "split.csv") if r["split"] == "val"]
    metrics = json.loads((out / "metrics.json").read_text())
    cm = np.asarray(metrics["confusion_matrix"])
    assert cm.shape == (3, 3) and cm.sum() == len(test_rows) == metrics["num_examples"] != len(val_rows)
    # The same deterministic evaluation as the training run's own test score.
    assert metrics == json.loads((run.run_dir / "metrics.json").read_text())

    # metrics.json is compute_metrics on the mean-over-windows logits of the decoded clips.
    config = Config.load(run.run_dir)
    cache = DecodeCache(default_cache_dir(), sample_rate_hz=SR)
    logits = predict_logits(run.model, [str(cache.path_for(r["path"])) for r in test_rows], config)
    y_true = np.array([config.labels.index(r["label"]) for r in test_rows])
    expected = compute_metrics(y_true, logits, config.labels)
    assert cm.tolist() == expected["confusion_matrix"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "micro_f1"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-9), key
    assert metrics["top_k_accuracy"] == pytest.approx(expected["top_k_accuracy"])

    errors = _rows(out / "errors.csv")
    wrong = int(cm.sum() - np.trace(cm))
    assert len(errors) == wrong == int(np.sum(np.argmax(logits, axis=1) != y_true))
    sources = {r["path"]: r["label"] for r in test_rows}
    for row in errors:
        assert sources[row["path"]] == row["true_label"] != row["predicted_label"]
        top3 = [cell.split(":") for cell in row["top3"].split(";")]
        assert top3[0][0] == row["predicted_label"]
        assert float(top3[0][1]) == pytest.approx(float(row["score"]), abs=0.006)
        assert len(top3) == 3
    pairs = _rows(out / "confused_pairs.csv")
    off_diagonal = cm - np.diag(np.diag(cm))
    assert len(pairs) == int(np.count_nonzero(off_diagonal))
    assert [int(p["count"]) for p in pairs] == sorted((int(p["count"]) for p in pairs), reverse=True)
    assert sum(int(p["count"]) for p in pairs) == wrong

    printed = capsys.readouterr().out
    assert f"examples: {len(test_rows)}  classes: 3" in printed
    assert "weakest classes:" in printed and "more data" in printed
    assert f"<p>{len(test_rows)} examples evaluated (test).</p>" in (out / "report.html").read_text(encoding="utf-8")
    train_rows = [r for r in _rows(run.run_dir / "split.csv") if r["split"] == "train"]
    assert evaluate.main([str(run.run_dir), "--split", "train", "--out", str(tmp_path / "train")]) == 0
    html = (tmp_path / "train" / "report.html").read_text(encoding="utf-8")
    assert f"<p>{len(train_rows)} examples evaluated (train).</p>" in html and "test examples" not in html


def test_evaluating_the_runs_test_split_gives_trainings_validation_gap_line(run, tmp_path, capsys, monkeypatch):
    """Training printed the validation/test gap line and evaluate, scoring the same test split, did not: its
    summary and report.html take the run's kept validation accuracy from history.csv and split.csv too."""
    import html

    from sound_tf import evaluate, metrics as M, trainer

    copy = tmp_path / "run"
    shutil.copytree(run.run_dir, copy)
    history = trainer.read_history(copy / "history.csv")
    val_rows = [r for r in _rows(copy / "split.csv") if r["split"] == "val"]
    assert trainer.run_validation(copy) == trainer.kept_validation(history, trainer.BEST_WEIGHTS, len(val_rows)) \
        == run.validation
    # A test split of other clips: its labels turned (every clip called the next class), the kept epoch's
    # validation accuracy 1.0; the tiny splits are let through the clip count's floor.
    rows = _rows(copy / "split.csv")
    labels = sorted(TONES_HZ)
    for row in rows:
        if row["split"] == "test":
            row["label"] = labels[(labels.index(row["label"]) + 1) % len(labels)]
    with (copy / "split.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = (copy / "history.csv").read_text().splitlines()
    column = lines[0].split(",").index("val_accuracy")
    lines[1:] = [",".join("1.0" if i == column else cell for i, cell in enumerate(line.split(",")))
                 for line in lines[1:]]
    (copy / "history.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(M, "GAP_MIN_CLIPS", 1)
    validation = {"accuracy": 1.0, "num_examples": len(val_rows)}
    assert trainer.run_validation(copy) == validation

    capsys.readouterr()
    assert evaluate.main([str(copy), "--out", str(tmp_path / "test")]) == 0
    metrics = json.loads((tmp_path / "test" / "metrics.json").read_text())
    gap = M.validation_gap(metrics, validation)
    assert gap is not None and metrics["accuracy"] < 0.5
    assert gap in capsys.readouterr().out
    assert html.escape(gap) in (tmp_path / "test" / "report.html").read_text(encoding="utf-8")
    # the validation split itself, and a run without its history, give no such line
    assert evaluate.main([str(copy), "--split", "val", "--out", str(tmp_path / "val")]) == 0
    assert "far below validation accuracy" not in capsys.readouterr().out
    (copy / "history.csv").unlink()
    assert trainer.run_validation(copy) is None
    assert evaluate.main([str(copy), "--out", str(tmp_path / "test2")]) == 0
    assert "far below validation accuracy" not in capsys.readouterr().out


def test_evaluate_refuses_an_out_that_is_the_run_or_holds_other_files(run, tmp_path, capsys, monkeypatch):
    """``--out RUN_DIR`` replaced the run's own metrics.json and report.html with another dataset's, and a
    folder of the user's own had its report.html overwritten without a word."""
    from sound_tf import evaluate

    kept = (run.run_dir / "metrics.json").read_bytes()
    assert evaluate.main([str(run.run_dir), "--out", str(run.run_dir)]) == 2
    assert (f"error: {run.run_dir}: this folder holds the run {run.run_dir}, whose own metrics.json and "
            f"report.html an evaluation would replace; give another --out (default "
            f"{run.run_dir / 'evaluation' / 'test'})") in capsys.readouterr().err
    assert evaluate.main([str(run.run_dir), "--out", str(run.run_dir.parent)]) == 2
    assert (run.run_dir / "metrics.json").read_bytes() == kept
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.html").write_text("my report")
    assert evaluate.main([str(run.run_dir), "--out", str(mine)]) == 2
    assert (f"error: {mine}: not an evaluation folder (it holds report.html, and no metrics.json); the output is "
            f"written into it, so it must be new, empty or an earlier evaluation folder") in capsys.readouterr().err
    assert (mine / "report.html").read_text() == "my report"
    monkeypatch.setenv("HOME", str(tmp_path))  # a quoted ~ is the home folder, as for --data: no folder named '~'
    monkeypatch.chdir(tmp_path)
    assert evaluate.main([str(run.run_dir), "--out", "~/mine"]) == 2
    assert f"error: {mine}: not an evaluation folder" in capsys.readouterr().err and not (tmp_path / "~").exists()
    assert evaluate.main([str(run.run_dir), "--batch-size", "0"]) == 2  # named as typed, not as train.batch_size
    assert capsys.readouterr().err == "error: batch_size (--batch-size) must be an integer >= 1, got 0\n"
    again = tmp_path / "again"  # an earlier evaluation's folder is replaced, as the default one is
    assert evaluate.main([str(run.run_dir), "--out", str(again)]) == 0
    assert evaluate.main([str(run.run_dir), "--out", str(again)]) == 0


def test_evaluate_run_takes_a_numpy_batch_size_and_refuses_a_bool(run, tmp_path):
    """evaluate_run's batch_size took only ``int``: ``np.int64(4)`` was refused as "--batch-size must be an
    integer >= 1"; it now evaluates as 4 does."""
    from sound_tf.errors import ConfigError
    from sound_tf.evaluate import evaluate_run

    metrics, out = evaluate_run(run.run_dir, batch_size=np.int64(4), out_dir=tmp_path / "np", log=lambda m: None)
    saved = json.loads((run.run_dir / "metrics.json").read_text())
    assert out == tmp_path / "np" and (out / "metrics.json").is_file()
    assert (metrics["confusion_matrix"], metrics["num_examples"]) == (saved["confusion_matrix"], saved["num_examples"])
    for batch_size in (True, np.True_, 2.0, "2", np.int64(0)):
        with pytest.raises(ConfigError, match=rf"^batch_size \(--batch-size\) must be an integer >= 1, got "
                                              rf"{re.escape(repr(batch_size))}$"):
            evaluate_run(run.run_dir, batch_size=batch_size, out_dir=tmp_path / "bad", log=lambda m: None)


def test_evaluate_another_dataset_skips_bad_files_and_checks_labels(run, tmp_path, capsys, caplog):
    from sound_tf import evaluate

    data = make_tree(tmp_path / "other", 2, seed=7)
    broken = data / "mid" / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00 not a wave file")
    write_tone(data / "whistle" / "whistle_0.wav", 3500.0, 0.5, seed=3)
    out = tmp_path / "other_eval"

    assert evaluate.main([str(run.run_dir), "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{data}: 1 file has a label the model does not know: whistle (1 file) (e.g. " in err  # "1 file(s) have"
    assert "--skip-unknown-labels" in err
    assert not (out / "metrics.json").exists()
    write_tone(data / "whistle" / "whistle_1.wav", 3600.0, 0.5, seed=4)

    assert evaluate.main([str(run.run_dir), "--data", str(data), "--out", str(out), "--skip-unknown-labels"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "warning: skipping 2 files with labels unknown to the model: whistle (2 files)" in printed
    assert f"1 unreadable file skipped, listed in {out / 'skipped.csv'}" in printed
    warned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping ")]
    assert warned == [f"skipping {broken}: {_rows(out / 'skipped.csv')[0]['reason']}"]  # once, with its reason
    assert f"skipping {broken}" not in captured.out + captured.err  # the logger's warning is the only report
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_examples"] == 6 and np.sum(metrics["confusion_matrix"]) == 6  # 3 classes x 2 readable
    assert [r["path"] for r in _rows(out / "skipped.csv")] == [str(broken)]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Skipped files (1)" in html  # the unreadable one; the file of an unknown class is counted apart:
    assert "<td>left_out_unknown_labels</td><td class=\"num\">2</td>" in html  # the two whistles
    # The evaluated class counts are of the readable clips: mid's broken file is not one of them.
    assert '<td>mid</td><td class="num">2</td><td class="num">2</td>' in html
    assert '<td>total</td><td class="num">6</td><td class="num">6</td>' in html

    # A rerun on which every file fails changes nothing in the folder of the last evaluation.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    unreadable = tmp_path / "unreadable"
    for label in ("low", "mid"):
        (unreadable / label).mkdir(parents=True)
        (unreadable / label / "x.wav").write_bytes(b"RIFF\x00\x00 not a wave file")
    assert evaluate.main([str(run.run_dir), "--data", str(unreadable), "--out", str(out)]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    # A dataset folder named like one of the run's splits gets a folder of its own.
    named_test = make_tree(tmp_path / "other" / "sets" / "test", 1, seed=8)
    metrics, folder = evaluate.evaluate_run(run.run_dir, data=str(named_test), log=lambda m: None)
    assert folder == run.run_dir / "evaluation" / "data_test" and metrics["num_examples"] == 3


def test_evaluate_another_dataset_reports_the_decoding_progress(run, tmp_path, monkeypatch):
    """Evaluating a dataset the cache has not seen decodes it first: silent until the scores (train logs
    "data: decoding done/count" every PROGRESS_EVERY_S seconds)."""
    from sound_tf import datasets, evaluate

    monkeypatch.setattr(datasets, "PROGRESS_EVERY_S", 0.0)  # a line for every file
    lines: list[str] = []
    metrics, _ = evaluate.evaluate_run(run.run_dir, data=str(make_tree(tmp_path / "new", 2, seed=11)),
                                       log=lines.append)
    assert metrics["num_examples"] == 6
    assert [line for line in lines if line.startswith("data: decoding ")] == [
        f"data: decoding {done}/6" for done in range(1, 7)], lines


def test_evaluate_one_fold_of_a_manifest(run, tmp_path):
    from sound_tf import evaluate

    data = make_tree(tmp_path / "folded", 3, seed=11)
    files = sorted(data.rglob("*.wav"))
    manifest = data / "clips.csv"
    manifest.write_text("path,label,fold\n" + "".join(f"{f.relative_to(data)},{f.parent.name},{1 + i % 3}\n"
                                                      for i, f in enumerate(files)))
    out = tmp_path / "fold_eval"
    assert evaluate.main([str(run.run_dir), "--data", str(manifest), "--fold", "2", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_examples"] == sum(1 for i in range(len(files)) if 1 + i % 3 == 2) == 3
    assert evaluate.main([str(run.run_dir), "--data", str(manifest), "--fold", "7", "--out", str(out)]) == 2


def test_evaluate_data_of_a_manifest_names_the_line_of_a_missing_file(run, tmp_path, caplog, monkeypatch):
    """A file a --data manifest lists and the copy lacks was skipped as '.../gone.wav: file not found', naming no row
    of the manifest to fix, where train and crossval say '(listed on line 12 of .../x.csv)'. evaluate says it too, in
    the warning and in skipped.csv, and in the refusal of a run of data.strict."""
    from sound_tf.evaluate import evaluate_run

    data = make_tree(tmp_path / "listed", 2, seed=13)
    files = sorted(data.rglob("*.wav"))
    manifest = data / "clips.csv"
    manifest.write_text("path,label\n" + "".join(f"{f.relative_to(data)},{f.parent.name}\n" for f in files)
                        + "# a comment line is counted too\nmid/gone.wav,mid\n")
    out = tmp_path / "listed_eval"
    metrics, _ = evaluate_run(run.run_dir, data=str(manifest), out_dir=out, log=lambda m: None)
    gone = data / "mid" / "gone.wav"
    reason = f"file not found (listed on line {len(files) + 3} of {manifest})"
    assert len(files) + 3 == 9 and metrics["num_examples"] == len(files) == 6
    assert [(r["path"], r["reason"]) for r in _rows(out / "skipped.csv")] == [(str(gone), reason)]
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping ")] == [
        f"skipping {gone}: {reason}"]
    # A run of data.strict refuses the file, naming the line too.
    from sound_tf import config as config_module
    from sound_tf.errors import AudioError

    strict = apply_overrides(run.config, {"data.strict": True})
    monkeypatch.setattr(config_module, "load_run_config", lambda run_dir: strict)
    with pytest.raises(AudioError, match=rf"^{re.escape(f'{gone}: {reason}')}$"):
        evaluate_run(run.run_dir, data=str(manifest), out_dir=tmp_path / "strict", log=lambda m: None)


def test_evaluate_data_detects_its_format_once(run, tmp_path, monkeypatch):
    """evaluate --data detected the data's format twice, once to load its examples and once more for the listing
    whose line a skipped file names (three times for a run of chosen classes); once now, and not at all when
    --format gives it. A manifest's missing file still names its line."""
    from sound_tf import datasets
    from sound_tf.evaluate import evaluate_run

    detected: list[str] = []
    detect = datasets.detect_format

    def counted_detect(path):
        detected.append(str(path))
        return detect(path)

    monkeypatch.setattr(datasets, "detect_format", counted_detect)
    data = make_tree(tmp_path / "listed", 2, seed=13)
    manifest = data / "clips.csv"
    manifest.write_text("path,label\n" + "".join(f"{f.relative_to(data)},{f.parent.name}\n"
                                                 for f in sorted(data.rglob("*.wav"))) + "mid/gone.wav,mid\n")
    out = tmp_path / "eval"
    metrics, _ = evaluate_run(run.run_dir, data=str(manifest), out_dir=out, log=lambda m: None)
    assert detected == [str(manifest)] and metrics["num_examples"] == 6
    assert [r["reason"] for r in _rows(out / "skipped.csv")] == [f"file not found (listed on line 8 of {manifest})"]
    detected.clear()
    metrics, _ = evaluate_run(run.run_dir, data=str(data), data_format="folder", out_dir=tmp_path / "given",
                              log=lambda m: None)
    assert detected == [] and metrics["num_examples"] == 6


def test_evaluating_clips_the_run_trained_or_validated_on_is_flagged(run, tmp_path):
    """Only the run's own --fold was checked, and only against training: --data of the training set said nothing."""
    from sound_tf import evaluate
    from sound_tf.datasets import read_split_csv

    splits = read_split_csv(run.run_dir / "split.csv")
    sizes = {name: len(splits[name]) for name in ("train", "val", "test")}
    messages: list[str] = []
    evaluate.evaluate_run(run.run_dir, data=run.config.data.path, out_dir=tmp_path / "again", log=messages.append)
    assert (f"warning: of the {sum(sizes.values())} clips of {run.config.data.path}, {sizes['train']} for training "
            f"and {sizes['val']} for validation (early stopping) in this run; their scores are optimistic") in messages
    messages.clear()
    evaluate.evaluate_run(run.run_dir, split="test", out_dir=tmp_path / "test", log=messages.append)
    assert not any("optimistic" in m for m in messages)  # the test split is neither
    for name, use in (("val", "validation (early stopping)"), ("train", "training")):  # --split said nothing
        messages.clear()
        evaluate.evaluate_run(run.run_dir, split=name, out_dir=tmp_path / name, log=messages.append)
        assert (f"warning: of the {sizes[name]} clips of the {name} split, {sizes[name]} for {use} in this run; "
                f"their scores are optimistic") in messages
    # The same files through a linked folder are the same clips.
    linked = tmp_path / "linked"
    linked.symlink_to(Path(run.config.data.path).resolve(), target_is_directory=True)
    messages.clear()
    evaluate.evaluate_run(run.run_dir, data=str(linked), out_dir=tmp_path / "linked_eval", log=messages.append)
    assert any(f"{sizes['train']} for training and {sizes['val']} for validation" in m for m in messages), messages


def test_data_holding_the_runs_training_clips_and_its_test_fold_names_the_fold_to_give(tmp_path):
    """'evaluate RUN --data ~/speech_commands_v0.02' without --fold (session 52's Speech Commands 12-class
    walkthrough) scored every list at once and was told only that the scores are optimistic; data whose folds include
    the one the run tested on (its testing list, fold 3) now names '--fold 3'. With --fold, or data without folds,
    the warning is as it was."""
    from sound_tf.evaluate import select_examples

    rows = [("train", "a", 1), ("train", "b", 1), ("val", "a", 2), ("val", "b", 2), ("test", "a", 3), ("test", "b", 3)]
    run = tmp_path / "run"
    run.mkdir()
    (run / "split.csv").write_text("split,path,label,fold,group\n" + "".join(
        f"{split},{tmp_path}/{label}/{n}.wav,{label},{fold},\n" for n, (split, label, fold) in enumerate(rows)))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,fold\n" + "".join(f"{label}/{n}.wav,{label},{fold}\n"
                                                       for n, (_, label, fold) in enumerate(rows)))
    seen = ("warning: of the {} clips of {}, 2 for training and 2 for validation (early stopping) in this run; their "
            "scores are optimistic")
    for fold, said in ((None, seen.format(6, manifest) + ": --fold 3 scores the fold the run tested on alone"),
                       (3, None), (1, "warning: of the 2 clips of {}, 2 for training in this run; their scores are "
                                      "optimistic".format(manifest))):
        messages: list[str] = []
        select_examples(run, ("a", "b"), data=str(manifest), fold=fold, log=messages.append)
        assert messages == ([said] if said else []), fold
    manifest.write_text("path,label\n" + "".join(f"{label}/{n}.wav,{label}\n" for n, (_, label, _) in enumerate(rows)))
    messages = []
    select_examples(run, ("a", "b"), data=str(manifest), log=messages.append)
    assert messages == [seen.format(6, manifest)]


def test_a_fold_of_the_runs_split_csv_takes_its_rows_from_every_split(tmp_path):
    """--fold K of the run's own split.csv: every row of fold K, whichever split holds it (a two-fold run
    carves validation from its training fold, so fold 1 is in train and val and fold 2 is the test split),
    and the rows the run trained or validated on are flagged."""
    from sound_tf.evaluate import select_examples

    rows = [("train", "a", 1), ("train", "b", 1), ("train", "a", 1), ("val", "b", 1), ("test", "a", 2),
            ("test", "b", 2)]
    (tmp_path / "split.csv").write_text("split,path,label,fold,group\n" + "".join(
        f"{split},{label}/{n}.wav,{label},{fold},\n" for n, (split, label, fold) in enumerate(rows)), encoding="utf-8")
    for fold, names, warning in (
            (1, ["a/0.wav", "b/1.wav", "a/2.wav", "b/3.wav"],
             "warning: of the 4 clips of fold 1, 3 for training and 1 for validation (early stopping) in this run; "
             "their scores are optimistic"),
            (2, ["a/4.wav", "b/5.wav"], None)):
        messages: list[str] = []
        chosen, name, left_out = select_examples(tmp_path, ("a", "b"), fold=fold, log=messages.append)
        assert [Path(ex.path).relative_to(tmp_path).as_posix() for ex in chosen] == names, fold
        assert {ex.fold for ex in chosen} == {fold} and (name, left_out) == (f"fold{fold}", 0)
        assert messages == ([warning] if warning else []), fold


def test_evaluate_data_on_a_speech_commands_folder_takes_its_words_and_its_testing_list_as_fold_3(tmp_path):
    """Read as a folder per class, its _background_noise_ was a class the model does not know (an error), and
    --fold 3 did not exist."""
    from sound_tf.evaluate import select_examples

    root = make_speech_commands(tmp_path / "speech_commands")
    run = tmp_path / "run"
    run.mkdir()
    messages: list[str] = []
    chosen, name, left_out = select_examples(run, ("no", "up", "yes"), data=str(root), fold=3, log=messages.append)
    testing = sorted(line for line in (root / "testing_list.txt").read_text().splitlines() if line)
    assert sorted(Path(ex.path).relative_to(root).as_posix() for ex in chosen) == testing
    assert (name, left_out, messages) == ("speech_commands_fold3", 0, [])
    chosen, name, left_out = select_examples(run, ("no", "up", "yes"), data=str(root), log=messages.append)
    assert (len(chosen), name, left_out) == (36, "speech_commands", 0)
    assert {ex.label for ex in chosen} == {"no", "up", "yes"}


def test_a_split_the_run_does_not_have_is_an_error_naming_it(tmp_path):
    """evaluate_run(run, split="validation") (or "Test") failed with a bare KeyError: 'validation'."""
    from sound_tf.errors import ConfigError
    from sound_tf.evaluate import select_examples

    (tmp_path / "split.csv").write_text("split,path,label,fold,group\ntrain,a/0.wav,a,,\nval,a/1.wav,a,,\n"
                                        "test,a/2.wav,a,,\n", encoding="utf-8")
    for bad in ("validation", "Test", 1):
        with pytest.raises(ConfigError, match=rf"split must be one of test, val, train \(a split of the run's "
                                              rf"split.csv\), got {re.escape(repr(bad))}"):
            select_examples(tmp_path, ("a",), split=bad, log=lambda line: None)
    chosen, name, _ = select_examples(tmp_path, ("a",), split="val", log=lambda line: None)
    assert [Path(ex.path).name for ex in chosen] == ["1.wav"] and name == "val"


def test_a_fold_that_is_not_an_integer_is_an_error_naming_it(tmp_path):
    """fold="1" (a string, as read from a file) matched no row and was reported as "fold 1 does not exist;
    folds present: [1, 2]", a contradiction; True silently selected fold 1."""
    from sound_tf.errors import ConfigError
    from sound_tf.evaluate import select_examples

    (tmp_path / "split.csv").write_text("split,path,label,fold,group\ntrain,a/0.wav,a,1,\ntest,a/1.wav,a,2,\n",
                                        encoding="utf-8")
    for bad in ("1", True, 2.0):
        with pytest.raises(ConfigError, match=rf"fold must be an integer \(a fold number of the data\), got "
                                              rf"{re.escape(repr(bad))}$"):
            select_examples(tmp_path, ("a",), fold=bad, log=lambda line: None)
    chosen, name, _ = select_examples(tmp_path, ("a",), fold=2, log=lambda line: None)
    assert [Path(ex.path).name for ex in chosen] == ["1.wav"] and name == "fold2"


def test_training_run_report_contains_every_figure(run):
    from PIL import Image

    page = (run.run_dir / "report.html").read_text(encoding="utf-8")
    embedded = [base64.b64decode(uri) for uri in DATA_URI.findall(page)]
    figures = ["confusion_matrix.png", "per_class.png", "curves.png"]
    assert embedded == [(run.run_dir / name).read_bytes() for name in figures]
    with Image.open(run.run_dir / "curves.png") as image:
        assert image.size == (1500, 500)  # the curves figure: 15 x 5.0 in at 100 dpi (legends under the panels)
    # Metrics, the dataset's class counts per split and the config are in the page too.
    assert f'<td class="num">{run.metrics["accuracy"]:.4f}</td>' in page
    counts = {name: sum(1 for item in run.data.splits[name]) for name in ("train", "val", "test")}
    total = sum(counts.values())
    assert (f'<td>total</td><td class="num">{counts["train"]}</td><td class="num">{counts["val"]}</td>'
            f'<td class="num">{counts["test"]}</td><td class="num">{total}</td>') in page
    assert "Skipped files (0)" in page and "&quot;sample_rate_hz&quot;: 8000" in page


def test_evaluate_items_files_follow_predictions_known_in_advance(tmp_path):
    """A stand-in model whose every prediction is known: each evaluation file must show exactly those.

    Each clip is a constant level and the "model" scores class c by -50 (level - centre_c)^2, so the
    nearest centre wins. The confusions are chosen asymmetric (high -> mid twice, mid -> low once), so
    a transposed matrix, swapped precision/recall or pairs read the wrong way round all show.
    """
    import filecmp

    import tensorflow as tf

    from sound_tf.datasets import Item
    from sound_tf.evaluation import evaluate_items
    from sound_tf.report import plot_confusion_matrix

    labels = ["high", "low", "mid"]
    centres = np.array([0.6, -0.6, 0.0])
    config = apply_overrides(Config(), {"audio.sample_rate_hz": SR, "audio.clip_seconds": 0.5, "labels": labels})
    clips = [(0, 0.6), (0, 0.55), (0, 0.05), (0, -0.02), (1, -0.6), (1, -0.5), (2, 0.0), (2, -0.55), (2, 0.03)]
    items = []
    for n, (label, level) in enumerate(clips):
        path = tmp_path / "clips" / f"clip_{n}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, np.full(config.audio.clip_samples, level, np.float32), SR, subtype="PCM_16")
        items.append(Item(source=f"src/clip_{n}.wav", cached=str(path), label=labels[label], label_index=label))

    def model(windows, training=False):
        level = tf.reduce_mean(windows, axis=1, keepdims=True)  # [batch, 1]
        return -50.0 * tf.square(level - tf.constant(centres, tf.float32))  # [batch, classes]

    logged: list[str] = []
    result = evaluate_items(model, config, items, tmp_path / "eval", log=logged.append)
    out = tmp_path / "eval"
    expected_cm = [[2, 0, 2],  # high: 2 right, 2 taken for mid
                   [0, 2, 0],  # low: both right
                   [0, 1, 2]]  # mid: 2 right, 1 taken for low
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["confusion_matrix"] == result["confusion_matrix"] == expected_cm
    # Precision = right / predicted as the class, recall = right / truly the class.
    for label, precision, recall in (("high", 2 / 2, 2 / 4), ("low", 2 / 3, 2 / 2), ("mid", 2 / 4, 2 / 3)):
        assert metrics["per_class"][label]["precision"] == pytest.approx(precision), label
        assert metrics["per_class"][label]["recall"] == pytest.approx(recall), label
        assert metrics["per_class"][label]["f1"] == pytest.approx(2 * precision * recall / (precision + recall))

    f1 = [2 * p * r / (p + r) for p, r in ((2 / 2, 2 / 4), (2 / 3, 2 / 2), (2 / 4, 2 / 3))]
    assert logged == [f"evaluated 9 clips: accuracy {6 / 9:.4f}, macro F1 {sum(f1) / 3:.4f}, 3 misclassified (files "
                      f"in {out})",
                      "note: 9 clips are few to measure a model on: one clip is 11.1 points of accuracy, and 6 right "
                      "of 9 fits any accuracy from 0.35 to 0.88 (95% Wilson interval); more recordings give a "
                      "steadier figure"]

    assert [(r["true"], r["predicted"], r["count"], r["rate"]) for r in _rows(out / "confused_pairs.csv")] == [
        ("high", "mid", "2", "0.5000"), ("mid", "low", "1", "0.3333")]

    # errors.csv: the predicted class's probability (softmax of the logits), most confident first.
    logits = -50.0 * (np.array([level for _, level in clips])[:, None] - centres) ** 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    wrong = sorted((n for n, (label, _) in enumerate(clips) if np.argmax(logits[n]) != label),
                   key=lambda n: -probs[n].max())
    rows = _rows(out / "errors.csv")
    assert [(r["path"], r["true_label"], r["predicted_label"]) for r in rows] == [
        (f"src/clip_{n}.wav", labels[clips[n][0]], labels[int(np.argmax(logits[n]))]) for n in wrong]
    for row, n in zip(rows, wrong):
        assert float(row["score"]) == pytest.approx(probs[n].max(), abs=2e-3)
        assert 0.0 < float(row["score"]) <= 1.0

    # The figure is the matrix with rows = true class.
    reference = plot_confusion_matrix(np.array(expected_cm), labels, tmp_path / "reference.png")
    assert filecmp.cmp(out / "confusion_matrix.png", reference, shallow=False)  # bool: no slow byte diff


def test_class_counts_of_a_run_folder_come_from_its_split_csv(tmp_path):
    """Data advice weighs classes by their *training* clips; the report counts clips, not classes."""
    from sound_tf import evaluation

    rows = ([("train", "low"), ("train", "low"), ("train", "low"), ("train", "high"), ("val", "low"),
             ("test", "high"), ("test", "high"), ("test", "mid")])
    (tmp_path / "split.csv").write_text("split,path,label,fold,group\n" + "".join(
        f"{split},{label}/{n}.wav,{label},,\n" for n, (split, label) in enumerate(rows)), encoding="utf-8")
    assert evaluation.class_counts_per_split(run_dir=tmp_path) == {
        "train": {"high": 1, "low": 3}, "val": {"low": 1}, "test": {"high": 2, "mid": 1}}
    assert evaluation.train_class_counts(run_dir=tmp_path) == {"high": 1, "low": 3}
    summary = evaluation.dataset_summary(run_dir=tmp_path)
    assert (summary["train_items"], summary["val_items"], summary["test_items"], summary["skipped"]) == (4, 1, 3, 0)
    # The report's advice uses those training counts: mid has none (not its 5 evaluated examples).
    from sound_tf.metrics import metrics_from_confusion

    metrics = metrics_from_confusion([[5, 0, 0], [0, 5, 0], [2, 0, 3]], ["high", "low", "mid"])
    page = evaluation.write_run_report(tmp_path, metrics=metrics, log=lambda message: None).read_text(encoding="utf-8")
    assert "mid: no training examples at all" in page


def test_run_report_names_a_test_score_far_below_the_validation_score(tmp_path):
    """write_run_report passes the kept epoch's validation score to the summary: report.html carries the
    validation/test gap line (metrics.validation_gap) that the console summary prints, and only when it is given."""
    from sound_tf import evaluation
    from sound_tf.metrics import metrics_from_confusion

    metrics = metrics_from_confusion([[10, 15], [24, 1]], ["high", "low"])  # 11 of 50 right: 0.22
    gap = "test accuracy 0.22 (50 clips) is far below validation accuracy 0.74 (50 clips)"
    page = evaluation.write_run_report(tmp_path, metrics=metrics, log=lambda message: None,
                                       validation={"accuracy": 0.74, "num_examples": 50}).read_text(encoding="utf-8")
    assert gap in page
    page = evaluation.write_run_report(tmp_path, metrics=metrics, log=lambda message: None).read_text(encoding="utf-8")
    assert "far below validation" not in page and "the model scores near chance" in page


def test_no_curves_from_a_history_of_no_epoch(tmp_path):
    """A history.csv of its header alone (a run stopped in its first epoch) has no curve to draw: no curves.png,
    and the report goes without it; one epoch is drawn."""
    from sound_tf import evaluation

    (tmp_path / "history.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n", encoding="utf-8")
    assert evaluation.write_curves(tmp_path) is None and not (tmp_path / "curves.png").exists()
    (tmp_path / "history.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.2,0.4,1.3\n",
                                          encoding="utf-8")
    assert evaluation.write_curves(tmp_path) == tmp_path / "curves.png" and (tmp_path / "curves.png").is_file()


def test_a_row_cut_short_is_no_curve_and_an_unreadable_history_leaves_the_report_without_curves(tmp_path):
    """write_curves counted lines: a header and the first row, cut short by a kill (no line break), were two, and
    the cut row drawn as an epoch. No epoch ended there: no curves.png. A history.csv that is not UTF-8 stopped the
    whole report with a UnicodeDecodeError; the report is written without its curves, and a warning names the
    file."""
    from sound_tf import evaluation

    history = tmp_path / "history.csv"
    history.write_bytes(b"epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.5,1.2,0.4,1.")
    assert evaluation.write_curves(tmp_path) is None and not (tmp_path / "curves.png").exists()
    history.write_bytes(b"epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.5,1.2,0.4,1.\xe9\r\n")
    said: list[str] = []
    page = evaluation.write_run_report(tmp_path, log=said.append)
    assert said == [f"warning: {history}: not a readable CSV file ('utf-8' codec can't decode byte 0xe9 in position "
                    f"59: invalid continuation byte); the report goes without its training curves", f"report: {page}"]
    assert page.is_file() and not (tmp_path / "curves.png").exists()


def test_a_damaged_model_keras_is_an_error_naming_it_with_a_remedy(run, tmp_path, capsys):
    """A model.keras cut short (a full disk, an interrupted copy, or a run of an earlier version killed
    while Keras wrote it in place) failed in Keras with "File not found: filepath=.../model.keras. Please
    ensure the file is an accessible `.keras` zip file", for a file that is there; a damaged member failed
    with a traceback from h5py. evaluate, predict, export and the server's keras backend say what it is."""
    import zipfile

    from sound_tf import evaluate
    from sound_tf.evaluation import load_run
    from sound_tf.serve.backends import load_backend

    whole = (run.run_dir / "model.keras").read_bytes()
    copy = tmp_path / "run"
    shutil.copytree(run.run_dir, copy)
    model_file = copy / "model.keras"
    model_file.write_bytes(whole[:len(whole) // 2])
    half = f"{model_file}: not a whole .keras model file ({len(whole) // 2:,} bytes, not a zip archive: cut short"
    assert evaluate.main([str(copy), "--out", str(tmp_path / "eval")]) == 2  # as any bad input
    err = capsys.readouterr().err
    assert half in err and "copy it again from where it came from, or train again" in err, err
    with pytest.raises(SoundTFError, match=re.escape(half)):
        load_backend(copy, backend="keras")

    state = copy / "run_state.json"  # an earlier version's run killed while it saved the model: resumable
    state.write_text(json.dumps({**json.loads(state.read_text()), "status": "running"}))
    with pytest.raises(SoundTFError, match="its training has not finished: run the same train command again"):
        load_run(copy)
    state.write_text(json.dumps({**json.loads(state.read_text()), "status": "done"}))

    with zipfile.ZipFile(io.BytesIO(whole)) as archive, zipfile.ZipFile(model_file, "w") as damaged:
        for name in archive.namelist():  # a whole archive whose weights are cut short
            member = archive.read(name)
            damaged.writestr(name, member[:1000] if name.endswith(".h5") else member)
    with pytest.raises(SoundTFError, match=re.escape(f"{model_file}: Keras could not load it (OSError: ") +
                       ".*truncated file.*copy it again"):
        load_run(copy)
    model_file.write_bytes(whole)
    assert load_run(copy)[1].count_params() == run.model.count_params()


def test_evaluate_refuses_contradictory_flags_before_tensorflow_loads(tmp_path):
    """`evaluate RUN --split val --fold 1` (and --split with --data, --batch-size 0) was refused only after
    TensorFlow's start-up, about 6 s on this machine; the command now says so at once: in a fresh process that runs
    the command line, tensorflow is never imported, the one error line is the whole of stderr and the code is 2."""
    import subprocess
    import sys

    data = tmp_path / "data"
    script = ("import json, sys\nfrom sound_tf import evaluate\ncodes = [evaluate.main(argv) for argv in "
              "json.loads(sys.argv[1])]\nprint(json.dumps([codes, 'tensorflow' in sys.modules, 'keras' in "
              "sys.modules]))")
    commands = [[str(tmp_path / "run"), "--split", "val", "--fold", "1"],
                [str(tmp_path / "run"), "--split", "test", "--data", str(data)],
                [str(tmp_path / "run"), "--batch-size", "0"]]
    done = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[2, 2, 2], False, False], (done.stdout, done.stderr)
    assert done.stderr.splitlines() == [
        "error: give --split or --fold, not both",
        "error: --split selects rows of the run's own split.csv; with --data use --fold (or nothing to evaluate the "
        "whole dataset)",
        "error: batch_size (--batch-size) must be an integer >= 1, got 0"], done.stderr


def test_evaluate_predict_and_export_refuse_a_folder_that_is_no_finished_run_before_tensorflow_loads(tmp_path):
    """A mistyped RUN_DIR, a folder without config.json and a run killed before it wrote model.keras were refused by
    `evaluate`, `predict` and `export` only after TensorFlow's start-up (4.7-7 s on this machine; the check was in
    sound_tf.evaluation, which imports it). The check is sound_tf.config.load_run_config now, which all three call
    first: in a fresh process that runs their command lines, tensorflow and keras are never imported, each error is
    today's line naming the folder, and every code is 2."""
    import subprocess
    import sys

    missing, empty, unfinished = tmp_path / "typo", tmp_path / "empty", tmp_path / "unfinished"
    empty.mkdir()
    unfinished.mkdir()
    (unfinished / "config.json").write_text("{}")
    (unfinished / "run_state.json").write_text('{"status": "running"}')  # a training run killed mid-way
    script = ("import json, sys\nfrom sound_tf import evaluate, export, predict\n"
              "mains = {'evaluate': evaluate.main, 'predict': predict.main, 'export': export.main}\n"
              "codes = [mains[name](argv) for name, argv in json.loads(sys.argv[1])]\n"
              "print(json.dumps([codes, 'tensorflow' in sys.modules, 'keras' in sys.modules]))")
    commands = [(name, [str(folder), *([str(tmp_path / "a.wav")] if name == "predict" else [])])
                for name in ("evaluate", "predict", "export") for folder in (missing, empty, unfinished)]
    done = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[2] * 9, False, False], (done.stdout, done.stderr)
    assert done.stderr.splitlines() == 3 * [
        f"error: {missing}: no such folder; pass the folder a training run wrote",
        f"error: {empty}: not a finished run folder (config.json is missing); pass the folder a training run wrote",
        f"error: {unfinished}: not a finished run folder (model.keras is missing); its training has not finished: "
        f"run the same train command again (with --out {unfinished}) to resume it"], done.stderr


def test_select_examples_refuses_contradictory_or_empty_choices(tmp_path):
    """An empty split of the run's split.csv, --split with --fold, --split with --data and a dataset none of
    whose labels the model knows are each an error saying so (each was evaluated as something else or failed
    later without a word on why); a dataset folder named like the run's own fold folder gets one of its own,
    and --fold names the default folder of --data (found by a mutation pass). No TensorFlow."""
    from sound_tf.evaluate import select_examples

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "split.csv").write_text("split,path,label,fold,group\ntrain,a/0.wav,a,1,\ntest,a/1.wav,a,2,\n",
                                       encoding="utf-8")
    quiet = {"log": lambda line: None}
    with pytest.raises(DatasetError, match=r"split.csv: the val split is empty$"):
        select_examples(run_dir, ("a",), split="val", **quiet)
    with pytest.raises(DatasetError, match=r"^give --split or --fold, not both$"):
        select_examples(run_dir, ("a",), split="test", fold=2, **quiet)
    data = make_tree(tmp_path / "fold3", 1, seed=5)  # a dataset folder named like the run's fold3 folder
    with pytest.raises(DatasetError, match=r"^--split selects rows of the run's own split.csv; with --data use "
                                           r"--fold"):
        select_examples(run_dir, TONES_HZ, data=str(data), split="test", **quiet)
    examples, name, left_out = select_examples(run_dir, tuple(TONES_HZ), data=str(data), **quiet)
    assert (len(examples), name, left_out) == (3, "data_fold3", 0)
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(data))}: no file has one of the model's classes "
                                           rf"\['x', 'y'\]$"):
        select_examples(run_dir, ("x", "y"), data=str(data), skip_unknown_labels=True, **quiet)
    manifest = data / "clips.csv"
    manifest.write_text("path,label,fold\n" + "".join(f"{label}/{label}_0.wav,{label},{n + 1}\n"
                                                      for n, label in enumerate(TONES_HZ)))
    examples, name, _ = select_examples(run_dir, tuple(TONES_HZ), data=str(manifest), fold=2, **quiet)
    assert [Path(ex.path).name for ex in examples] == ["low_0.wav"] and name == "clips_fold2"


def test_evaluate_reports_its_file_counts_advises_on_training_counts_and_quiet_prints_one_line(
        run, tmp_path, capsys, monkeypatch):
    """The report's dataset table gives the files asked for (the unreadable one too), the clips evaluated and
    the files skipped; the console's data advice weighs classes by the run's training clips (as the report's
    does), not by the clips just evaluated; --quiet prints one line of scores and the folder (it printed nothing,
    where train --quiet ends with its summary); --format is obeyed (found by a mutation pass)."""
    from collections import Counter

    from sound_tf import evaluate, metrics as metrics_module

    data = make_tree(tmp_path / "other", 2, seed=7)
    (data / "mid" / "broken.wav").write_bytes(b"RIFF\x00\x00 not a wave file")
    weighed = []
    summary_lines = metrics_module.summary_lines

    def spying(metrics, **kwargs):
        weighed.append(dict(kwargs.get("class_counts") or {}))
        return summary_lines(metrics, **kwargs)

    monkeypatch.setattr(metrics_module, "summary_lines", spying)
    out = tmp_path / "eval"
    assert evaluate.main([str(run.run_dir), "--data", str(data), "--out", str(out), "--quiet"]) == 0
    scores = json.loads((out / "metrics.json").read_text())
    top_k = "".join(f"  {name.replace('_', '-')} {value:.4f}"
                    for name, value in scores.get("top_k_accuracy", {}).items() if name != "top_1")
    assert capsys.readouterr().out == (f"accuracy {scores['accuracy']:.4f}  balanced accuracy "
                                       f"{scores['balanced_accuracy']:.4f}  macro F1 {scores['macro_f1']:.4f}{top_k} "
                                       f"(6 clips): {out}\n")
    assert scores["num_examples"] == 6 and 0 <= scores["accuracy"] <= 1
    page = (out / "report.html").read_text(encoding="utf-8")
    items = dict(re.findall(r"<tr><td>(files|evaluated_clips|skipped)</td><td class=\"num\">(\d+)</td></tr>", page))
    assert items == {"files": "7", "evaluated_clips": "6", "skipped": "1"}
    trained = Counter(r["label"] for r in _rows(run.run_dir / "split.csv") if r["split"] == "train")
    assert weighed == [dict(trained), dict(trained)] and dict(trained) != {"high": 2, "low": 2, "mid": 2}
    assert evaluate.main([str(run.run_dir), "--data", str(data), "--format", "esc50", "--out",
                          str(tmp_path / "esc")]) == 2
    assert "esc50.csv" in capsys.readouterr().err


def test_a_run_folder_without_split_csv_is_named_with_the_split_asked_for(tmp_path):
    """evaluate RUN without --data reads the run's split.csv: a folder without one is named, with the split that was
    asked for and the way out (--data). No TensorFlow."""
    from sound_tf.evaluate import select_examples

    (tmp_path / "run").mkdir()
    for split, said in ((None, "test"), ("val", "val")):
        with pytest.raises(DatasetError, match=rf"^{re.escape(str(tmp_path / 'run'))}: no split.csv to take the {said} "
                                               rf"rows from; pass --data$"):
            select_examples(tmp_path / "run", ("a", "b"), split=split, log=lambda line: None)


def test_evaluate_of_nothing_readable_writes_nothing_and_the_batch_size_reaches_the_scoring(run, tmp_path,
                                                                                          monkeypatch):
    """--data of files none of which can be read is refused naming the first and why, before the --out folder is
    made (an earlier evaluation there stays whole); --batch-size is the batch the clips are scored in."""
    from sound_tf import evaluation
    from sound_tf.evaluate import evaluate_run

    data = tmp_path / "broken"
    for label in TONES_HZ:
        (data / label).mkdir(parents=True)
        (data / label / f"{label}.wav").write_bytes(b"RIFF\x00\x00 not a wave file")
    first = sorted(str(p) for p in data.rglob("*.wav"))
    with pytest.raises(DatasetError, match=rf"^none of the {len(first)} files could be read \(first: "):
        evaluate_run(run.run_dir, data=str(data), out_dir=tmp_path / "out", log=lambda m: None)
    assert not (tmp_path / "out").exists()
    batches = []
    scoring = evaluation.predict_logits

    def spy(model, paths, config):
        batches.append((len(paths), config.train.batch_size))
        return scoring(model, paths, config)

    monkeypatch.setattr(evaluation, "predict_logits", spy)
    metrics, _ = evaluate_run(run.run_dir, batch_size=3, out_dir=tmp_path / "b3", log=lambda m: None)
    assert batches == [(metrics["num_examples"], 3)] and run.config.train.batch_size != 3
