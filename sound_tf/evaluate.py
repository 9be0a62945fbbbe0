"""``python -m sound_tf.evaluate``: score a trained run on its test split or on another dataset.

The run's ``config.json`` and ``model.keras`` are loaded and every clip is scored exactly as training
scored its test split (sliding windows over long clips, mean of the window logits). The folder given
with ``--out`` (default ``RUN_DIR/evaluation/<split or dataset>``) receives ``metrics.json``,
``confusion_matrix.png``, ``per_class.png``, ``confused_pairs.csv``, ``errors.csv``, ``skipped.csv``,
``curves.png`` (the run's training curves) and ``report.html``; the console gets the weakest classes,
the most confused pairs and which classes would benefit from more data.

Examples
--------
    python -m sound_tf.evaluate runs/20250101-120000                      # the run's own test split
    python -m sound_tf.evaluate runs/esc50 --split val
    python -m sound_tf.evaluate runs/esc50 --data ~/ESC-50 --fold 5       # fold 5 of a folded dataset
    python -m sound_tf.evaluate runs/kws --data ~/speech_commands --fold 3  # Speech Commands' testing_list.txt
    python -m sound_tf.evaluate runs/kws --data ~/speech_commands_test_set_v0.02  # its own _unknown_, _silence_
    python -m sound_tf.evaluate runs/demo --data more_sounds/ --skip-unknown-labels
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

from .config import DATA_FORMATS, Config
from .errors import AudioError, ConfigError, DatasetError, counted, is_whole, run_cli
from .locks import holds, refuse_foreign_folder

SPLIT_CHOICES = ("test", "val", "train")


def _select_fold(examples: list, fold: int, source: str) -> list:
    folds = sorted({ex.fold for ex in examples if ex.fold is not None})
    if not folds:
        raise DatasetError(f"{source}: --fold {fold} given but the examples have no folds")
    chosen = [ex for ex in examples if ex.fold == fold]
    if not chosen:
        raise DatasetError(f"{source}: fold {fold} does not exist; folds present: {folds}")
    return chosen


def _tested_fold_hint(examples: Sequence, splits: dict, fold: int | None) -> str:
    """``: --fold 3 scores the fold the run tested on alone``, when ``examples`` (no ``--fold`` given) hold several
    folds and the run's test split was one of them: a Speech Commands copy's testing list (fold 3), an ESC-50 fold.
    'evaluate RUN --data ~/speech_commands_v0.02' was told its scores are optimistic, not how to score the test list."""
    tested = {ex.fold for ex in splits["test"]}
    folds = {ex.fold for ex in examples}
    if fold is not None or len(tested) != 1 or None in tested or len(folds) < 2 or not tested <= folds:
        return ""
    return f": --fold {next(iter(tested))} scores the fold the run tested on alone"


def _warn_if_seen(examples: Sequence, splits: dict, what: str, log: Callable[[str], None], hint: str = "") -> None:
    """Warn when some of ``examples`` were the run's training or validation clips (``splits`` of its split.csv);
    ``hint`` ends the warning."""
    seen = {os.path.realpath(ex.path): name for name in ("train", "val") for ex in splits[name]}  # any spelling
    counts = Counter(seen[path] for path in (os.path.realpath(ex.path) for ex in examples) if path in seen)
    if counts:
        used = " and ".join(f"{counts[name]} for {'training' if name == 'train' else 'validation (early stopping)'}"
                            for name in ("train", "val") if counts[name])
        log(f"warning: of the {len(examples)} clips of {what}, {used} in this run; their scores are optimistic{hint}")


def check_selection(*, data: str | None = None, fold: int | None = None, split: str | None = None,
                    batch_size: int | None = None) -> None:
    """Refuse arguments that cannot go together or hold no usable value, before anything is read or imported.

    :func:`evaluate_run` calls it before TensorFlow is imported: ``evaluate RUN --split val --fold 1`` was refused
    only after TensorFlow's start-up (about 7 s here), and so were ``--split`` with ``--data`` and
    ``--batch-size 0``.

    Raises
    ------
    ConfigError
        ``split`` is not one of :data:`SPLIT_CHOICES`, ``fold`` is not an integer, or ``batch_size`` is not an
        integer >= 1.
    DatasetError
        ``split`` is given with ``fold`` or with ``data``.
    """
    if split is not None and split not in SPLIT_CHOICES:  # argparse checks --split; a caller's value was a KeyError
        raise ConfigError(f"split must be one of {', '.join(SPLIT_CHOICES)} (a split of the run's split.csv), "
                          f"got {split!r}")
    if fold is not None and not is_whole(fold):  # "1" was "fold 1 does not exist"
        raise ConfigError(f"fold must be an integer (a fold number of the data), got {fold!r}")
    if batch_size is not None and (not is_whole(batch_size) or batch_size < 1):
        # not train.batch_size
        raise ConfigError(f"batch_size (--batch-size) must be an integer >= 1, got {batch_size!r}")
    if split is not None and data is not None:
        raise DatasetError("--split selects rows of the run's own split.csv; with --data use --fold (or nothing "
                           "to evaluate the whole dataset)")
    if split is not None and fold is not None:
        raise DatasetError("give --split or --fold, not both")


def _data_format(source: Path, data_format: str) -> str:
    """The format of the data at ``source``: ``data_format``, or the one :func:`sound_tf.datasets.detect_format`
    finds for ``auto`` (its refusal of a missing path or an unknown layout as loading the data gives it)."""
    from .datasets import detect_format

    return detect_format(source.absolute()) if data_format == "auto" else data_format


def select_examples(run_dir: Path, labels: Sequence[str], *, data: str | None = None, data_format: str = "auto",
                    fold: int | None = None, split: str | None = None, skip_unknown_labels: bool = False,
                    log: Callable[[str], None] = print, config: Config | None = None,
                    chosen_lines: list[str] | None = None) -> tuple[list, str, int]:
    """The examples to evaluate, a short name for them (used for the default output folder) and how many
    files were left out for labels the model does not know.

    Without ``data`` the rows of the run's ``split.csv`` are used: those of ``split`` (default
    ``test``), or with ``fold`` every row of that fold. With ``data`` the dataset is loaded
    (:func:`sound_tf.datasets.load_examples`), narrowed to ``fold`` if given, and checked against the
    model's ``labels``: unknown labels are an error listing them, or with ``skip_unknown_labels`` their
    files are left out with a warning. With ``config`` (the run's) and ``data``, a run of chosen classes
    (``data.keep_labels``, ``data.other_label``, ``data.silence_label``) has them applied to the data as its test
    split had them (:func:`sound_tf.datasets.evaluation_classes`), each line of what became of them logged (and
    appended to ``chosen_lines`` when given, for the report).
    """
    from .datasets import evaluation_classes, load_examples, read_split_csv

    check_selection(data=data, fold=fold, split=split)
    if data is None:
        split_csv = run_dir / "split.csv"
        if not split_csv.is_file():
            raise DatasetError(f"{run_dir}: no split.csv to take the {split or 'test'} rows from; pass --data")
        splits = read_split_csv(split_csv, run_file=True)
        if fold is not None:
            rows = _select_fold([ex for name in ("train", "val", "test") for ex in splits[name]], fold, str(split_csv))
            _warn_if_seen(rows, splits, f"fold {fold}", log)
            return rows, f"fold{fold}", 0
        split = split or "test"
        if not splits[split]:
            raise DatasetError(f"{split_csv}: the {split} split is empty")
        _warn_if_seen(splits[split], splits, f"the {split} split", log)
        return splits[split], split, 0

    source = Path(data).expanduser()
    fmt = _data_format(source, data_format)
    examples = load_examples(source, fmt)
    if fold is not None:
        examples = _select_fold(examples, fold, str(source))
    if config is not None and (config.data.keep_labels or config.data.silence_label is not None):
        examples, lines = evaluation_classes(examples, config, source, fmt)
        for line in lines:
            log(line)
        if chosen_lines is not None:
            chosen_lines += [line.removeprefix("data: ") for line in lines]
    known = set(labels)
    unknown = Counter(ex.label for ex in examples if ex.label not in known)
    if unknown:
        listing = ", ".join(f"{label} ({counted(count, 'files')})" for label, count in sorted(unknown.items()))
        files = sum(unknown.values())
        example = next(ex.path for ex in examples if ex.label not in known)
        if not skip_unknown_labels:
            raise DatasetError(f"{source}: {counted(files, 'files')} "
                               f"{'has a label' if files == 1 else 'have labels'} the model does not know: "
                               f"{listing} (e.g. {example}); the model's classes are {list(labels)}. Pass "
                               f"--skip-unknown-labels to leave those files out")
        log(f"warning: skipping {counted(files, 'files')} with {'a label' if files == 1 else 'labels'} unknown to the "
            f"model: {listing}")
        examples = [ex for ex in examples if ex.label in known]
        if not examples:
            raise DatasetError(f"{source}: no file has one of the model's classes {list(labels)}")
    if (run_dir / "split.csv").is_file():
        splits = read_split_csv(run_dir / "split.csv", run_file=True)
        _warn_if_seen(examples, splits, str(source), log, _tested_fold_hint(examples, splits, fold))
    name = source.stem if source.is_file() else source.name
    name = f"{name}_fold{fold}" if fold is not None else name
    if name in ("train", "val", "test") or re.fullmatch(r"fold\d+", name):  # the run's own split's folder name
        name = f"data_{name}"
    return examples, name, sum(unknown.values())  # unknown labels got this far only when skipped


def evaluate_run(run_dir: str | Path, *, data: str | None = None, data_format: str = "auto",
                 fold: int | None = None, split: str | None = None, skip_unknown_labels: bool = False,
                 out_dir: str | Path | None = None, batch_size: int | None = None,
                 log: Callable[[str], None] = print) -> tuple[dict, Path]:
    """Evaluate a run folder's model and write the evaluation files and ``report.html``.

    The examples are chosen by :func:`select_examples`; they are decoded once through the decode cache
    at the run's sample rate (unreadable files are skipped and listed in ``skipped.csv``) and scored by
    :func:`sound_tf.evaluation.evaluate_items`. The summary (weakest classes, confusions, data advice
    against the run's training class counts) goes to ``log``.

    Returns
    -------
    metrics : dict
        :func:`sound_tf.metrics.compute_metrics` output.
    out_dir : Path
        Where the files went (default ``RUN_DIR/evaluation/<split or dataset name>``; a dataset named
        like a split, e.g. a folder ``test``, goes to ``data_test``).
    """
    check_selection(data=data, fold=fold, split=split, batch_size=batch_size)  # at once: before TensorFlow loads
    from .config import apply_overrides, load_run_config

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)  # a mistyped or unfinished RUN_DIR too, before TensorFlow loads
    from . import evaluation
    from .metrics import summary_lines

    if batch_size is not None:
        config = apply_overrides(config, {"train.batch_size": batch_size})
    chosen: list[str] = []  # what became of the data's labels, for the report
    if data is not None:  # detected once: the examples are loaded by it, and a skipped file names its listing's line
        data_format = _data_format(Path(data).expanduser(), data_format)
    examples, name, left_out = select_examples(run_dir, config.labels, data=data, data_format=data_format,
                                               fold=fold, split=split, skip_unknown_labels=skip_unknown_labels,
                                               log=log, config=config, chosen_lines=chosen)
    default_out = run_dir / "evaluation" / name
    out_dir = Path(out_dir) if out_dir is not None else default_out
    if holds(out_dir, run_dir):
        raise ConfigError(f"{out_dir}: this folder holds the run {run_dir}, whose own metrics.json and report.html "
                          f"an evaluation would replace; give another --out (default {default_out})")
    refuse_foreign_folder(out_dir, marker="metrics.json", what="evaluation", startup=("skipped.csv",),
                          overwrite_flag=False)
    log(f"evaluating {run_dir} on {len(examples)} clips ({name}) -> {out_dir}")
    where = listed = None  # a file of --data's listing skipped names its line, as train's and crossval's do
    if data is not None:
        from .datasets import listing_locator

        listed = (Path(data).expanduser(), data_format)
        where = listing_locator(*listed)
    try:
        items, skipped = evaluation.decode_examples(examples, config.labels, config, log=log, where=where)
    except AudioError as exc:  # the run's data.strict: the refusal names the row too
        if listed is None:
            raise
        from .datasets import with_listed_line

        raise with_listed_line(exc, *listed) from None
    if not items:  # before anything is written: an earlier evaluation in out_dir stays whole
        raise DatasetError(f"none of the {len(examples)} files could be read (first: {skipped[0][0]}: "
                           f"{skipped[0][1]})")
    evaluation.write_skipped_csv(out_dir / "skipped.csv", skipped)
    _, model = evaluation.load_run(run_dir)
    metrics = evaluation.evaluate_items(model, config, items, out_dir, log=log)
    # The run's own test split against its kept validation accuracy: the gap line training printed
    validation = None
    if data is None and name == "test":
        from .trainer import run_validation

        validation = run_validation(run_dir)
    counts = {label: sum(1 for i in items if i.label == label) for label in config.labels}
    summary = {"evaluated": name, "source": data or str(run_dir / "split.csv"), "files": len(examples),
               "evaluated_clips": len(items), "skipped": len(skipped), "class_counts": {"evaluated": counts}}
    if left_out:
        summary["left_out_unknown_labels"] = left_out
    if chosen:
        summary["chosen_classes"] = chosen
    evaluation.write_run_report(run_dir, config=config, metrics=metrics, out_dir=out_dir,
                                title=f"Evaluation of {run_dir.name} on {name}", summary=summary,
                                skipped=skipped, log=log, validation=validation)
    for line in summary_lines(metrics, class_counts=evaluation.train_class_counts(run_dir=run_dir),
                              validation=validation):
        log(line)
    if skipped:
        log(f"{counted(len(skipped), 'unreadable files')} skipped, listed in {out_dir / 'skipped.csv'}")
    log(f"evaluation folder: {out_dir}")
    return metrics, out_dir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sound_tf.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by sound_tf.train")
    parser.add_argument("--data", help="evaluate this dataset (folder, CSV, ESC-50, UrbanSound8K, Speech Commands) "
                                       "instead of the run's own split")
    parser.add_argument("--format", default="auto",
                        choices=[fmt for fmt in DATA_FORMATS if fmt != "demo"],
                        help="format of --data (default: detected)")
    parser.add_argument("--fold", type=int, help="only this fold (of --data, or of the run's split.csv)")
    parser.add_argument("--split", choices=SPLIT_CHOICES, help="which split of the run's split.csv (default: test)")
    parser.add_argument("--skip-unknown-labels", action="store_true",
                        help="leave out files of classes the model does not know (default: an error)")
    parser.add_argument("--out", type=os.path.expanduser,  # a quoted ~ too: no folder named '~' is made
                        help="output folder (default: RUN_DIR/evaluation/<split or dataset name>)")
    parser.add_argument("--batch-size", type=int, help="windows per inference batch (default: the run's)")
    parser.add_argument("--quiet", action="store_true",
                        help="print one line of scores and the evaluation folder, and errors (no progress, summary "
                             "or warning lines, none of TensorFlow's own log lines; the rest is in the --out folder)")
    args = parser.parse_args(argv)

    from .quiet import native_logs_held, quiet_tensorflow

    quiet_tensorflow()

    def work() -> None:
        metrics, out_dir = evaluate_run(args.run_dir, data=args.data, data_format=args.format, fold=args.fold,
                                        split=args.split, skip_unknown_labels=args.skip_unknown_labels,
                                        out_dir=args.out, batch_size=args.batch_size,
                                        log=(lambda message: None) if args.quiet else print)
        if args.quiet:  # the scores, as train --quiet ends with its summary: it printed nothing at all
            from .metrics import headline

            print(f"{headline(metrics)} ({counted(int(metrics['num_examples']), 'clips')}): {out_dir}")

    with native_logs_held(args.quiet):  # TensorFlow is imported in work
        return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
