"""Score a model on a split and describe a run: metrics, plots, CSVs, ``curves.png`` and ``report.html``.

The training run, ``sound_tf.evaluate`` and cross-validation all call :func:`evaluate_items`, so a test
set is scored exactly one way: every clip is covered by sliding windows
(:func:`sound_tf.pipeline.predict_logits`), the clip's logits are the mean over its windows, and the
prediction is their argmax. :func:`write_run_report` turns a run folder (or an evaluation folder) into
``curves.png`` and a self-contained ``report.html``.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import atomic
from . import metrics as M
from . import report
from .audio import DecodeCache, cache_dir_of
from .config import RUN_STATE_FILENAME, Config, load_run_config  # load_run_config: re-exported
from .datasets import SPLITS, Example, Item, PreparedData, chosen_classes_lines, decode_progress, read_split_csv
from .errors import DatasetError, SoundTFError
from .pipeline import predict_logits
from .run_state import HISTORY_FILE, HistoryError, read_history

#: The figures of an evaluation folder, in report order: (title, file name).
EVALUATION_FIGURES = (("Confusion matrix", "confusion_matrix.png"), ("F1 per class", "per_class.png"))
CURVES_FIGURE = ("Training curves", "curves.png")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of ``[n, classes]`` (or ``[classes]``) logits, in float64.

    Integer logits are taken as numbers: shifting them in their own dtype would wrap around (int8
    ``[-128, 127]`` gave ``[0.73, 0.27]``).
    """
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def evaluate_items(model, config: Config, items: Sequence[object], out_dir: str | Path, *,
                   log: Callable[[str], None] = print, prefix: str = "") -> dict:
    """Score ``items`` (``datasets.Item`` rows) and write the evaluation files into ``out_dir``.

    Writes ``metrics.json`` (:func:`sound_tf.metrics.compute_metrics` of the clip logits),
    ``confusion_matrix.png``, ``per_class.png``, ``confused_pairs.csv`` and ``errors.csv`` (names get
    ``prefix`` when given). Returns the metrics dict.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = list(config.labels)
    paths = [str(i.cached) for i in items]
    y_true = np.asarray([int(i.label_index) for i in items], np.int64)
    logits = predict_logits(model, paths, config)  # [clips, classes]
    result = M.compute_metrics(y_true, logits, labels)
    cm = np.asarray(result["confusion_matrix"])  # [classes, classes]
    M.write_metrics_json(out_dir / f"{prefix}metrics.json", result)
    M.write_confused_pairs_csv(out_dir / f"{prefix}confused_pairs.csv", M.confused_pairs(cm, labels))
    wrong = M.write_errors_csv(out_dir / f"{prefix}errors.csv", [str(i.source) for i in items], y_true, logits,
                               labels, from_logits=True)
    report.plot_confusion_matrix(cm, labels, out_dir / f"{prefix}confusion_matrix.png")
    report.plot_per_class(result, out_dir / f"{prefix}per_class.png")
    log(f"evaluated {len(items)} clips: accuracy {result['accuracy']:.4f}, macro F1 {result['macro_f1']:.4f}, "
        f"{wrong} misclassified (files in {out_dir})")
    if (few := M.few_clips_note(len(items) - wrong, len(items))) is not None:
        log(few)
    return result


# -- loading runs and decoding examples -----------------------------------------------------------------
def load_run(run_dir: str | Path, *, compile: bool = True) -> tuple[Config, Any]:
    """A finished run folder's ``Config`` and its Keras model (``model.keras``), checked against each other.

    Importing the modules that define sound_tf's layers registers them with Keras first; a plain
    ``keras.models.load_model`` of ``model.keras`` needs ``import sound_tf.models`` before it.

    Raises
    ------
    SoundTFError
        See :func:`sound_tf.config.load_run_config`; also when ``model.keras`` is damaged (:func:`load_keras_file`)
        or the model's input or output size differs from the config's.

    With ``compile`` (the default) the model comes back compiled as it was saved (``evaluate``, ``fit``).
    """
    config = load_run_config(run_dir)
    path = Path(run_dir) / "model.keras"
    model = load_keras_file(path, compile=compile)  # compile=False: for inference, no optimizer state
    if tuple(model.input_shape) != (None, config.audio.clip_samples) or model.output_shape[-1] != config.num_classes:
        raise SoundTFError(f"{path}: model maps {model.input_shape} -> {model.output_shape}, but config.json says "
                           f"[batch, {config.audio.clip_samples}] -> [batch, {config.num_classes}]")
    check_frontend(model, config, Path(run_dir) / "config.json")
    check_labels_file(run_dir, config)
    return config, model


def load_keras_file(path: str | Path, *, compile: bool = True) -> Any:
    """``keras.models.load_model(path)`` of a run's ``model.keras``, or a ``SoundTFError`` naming the file
    when it is no whole ``.keras`` archive (cut short by a full disk or an interrupted copy, or another
    file under its name) or one Keras cannot load (a member cut short or missing). Keras said "File not
    found ... Please ensure the file is an accessible `.keras` zip file" for a file that is there, or
    failed in its zip, HDF5 or JSON reader, with a traceback and no remedy."""
    import zipfile

    import keras

    from . import augment, frontend, models  # noqa: F401  (register the custom layers before loading)

    path = Path(path)
    try:
        status = json.loads((path.parent / RUN_STATE_FILENAME).read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        status = None
    if status == "running":  # a run of an earlier version killed while Keras wrote the file in place
        remedy = "; its training has not finished: run the same train command again to resume it"
    else:
        remedy = ("; copy it again from where it came from, or train again (the same train command with "
                  "--overwrite)")
    if not zipfile.is_zipfile(path):  # a .keras file is a zip archive; one cut short has no central directory
        raise SoundTFError(f"{path}: not a whole .keras model file ({path.stat().st_size:,} bytes, not a zip "
                           f"archive: cut short or damaged){remedy}")
    try:
        return keras.models.load_model(path, compile=compile)
    except (zipfile.BadZipFile, KeyError, EOFError, OSError, ValueError) as error:  # a damaged or missing member
        raise SoundTFError(f"{path}: Keras could not load it ({type(error).__name__}: {error}){remedy}") from error


def check_labels_file(run_dir: str | Path, config: Config) -> None:
    """Raise unless the run's ``labels.txt`` (when there is one) lists ``config``'s labels in their order."""
    labels_file = Path(run_dir) / "labels.txt"
    if labels_file.is_file():
        listed = tuple(labels_file.read_text(encoding="utf-8").splitlines())
        if listed != config.labels:
            raise SoundTFError(f"{labels_file} lists the classes {list(listed)}, but {Path(run_dir) / 'config.json'} "
                               f"says {list(config.labels)}: one of them was edited; the model's outputs are in "
                               f"the order training wrote to both")


def check_frontend(model: Any, config: Config, config_path: Path) -> None:
    """Raise unless ``model``'s log-mel layer computes the features ``config`` describes.

    A hand-edited ``config.json`` (another sample rate, clip length or mel bands) would otherwise feed the
    model audio resampled to a rate it was not trained at, or describe features it does not compute.
    """
    from .frontend import LogMel

    layers = [layer for layer in model.layers if isinstance(layer, LogMel)]
    if not layers:
        return
    keys = ("sample_rate_hz", "frame_length_samples", "hop_length_samples", "fft_length", "num_mel_bins",
            "fmin_hz", "fmax_hz", "log_offset")
    own, said = layers[0].get_config(), LogMel.from_config_object(config).get_config()
    differ = [f"{key} {own[key]!r} in the model, {said[key]!r} there" for key in keys
              if not math.isclose(float(own[key]), float(said[key]), rel_tol=1e-9)]
    if differ:
        raise SoundTFError(f"{config_path}: does not describe the model's features ({'; '.join(differ)}); it "
                           f"was edited after training: restore it, or train again with the new settings")


def decode_examples(examples: Sequence[Example], labels: Sequence[str], config: Config, *,
                    log: Callable[[str], None] | None = None,
                    where: Callable[[str], str | None] | None = None) -> tuple[list[Item], list[tuple[str, str]]]:
    """Decode ``examples`` once through the decode cache at the config's rate and index their labels.

    ``where`` names the line of the data's listing in an unreadable file's reason
    (:meth:`sound_tf.audio.DecodeCache.build`, :func:`sound_tf.datasets.listing_locator`).

    With ``log``, the decoding reports its progress there as training's does
    (:func:`sound_tf.datasets.decode_progress`).

    Returns
    -------
    items : list of Item
        The readable examples, in input order, with ``label_index`` into ``labels``.
    skipped : list of (str, str)
        ``(path, reason)`` of each unreadable file (the decode cache warns of each on the
        ``sound_tf.audio`` logger).

    Raises
    ------
    DatasetError
        An example's label is not in ``labels``.
    AudioError
        A file is unreadable and ``config.data.strict`` is set.
    """
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({ex.label for ex in examples} - set(index))
    if unknown:
        raise DatasetError(f"label(s) {unknown} are not among the model's classes {list(labels)}")
    cache_dir = cache_dir_of(config.data.cache_dir)
    cache = DecodeCache(cache_dir, sample_rate_hz=config.audio.sample_rate_hz)
    result = cache.build([ex.path for ex in examples], strict=config.data.strict,
                         progress=decode_progress(log) if log is not None else None, where=where)
    items = [Item(source=ex.path, cached=str(result.cached[ex.path]), label=ex.label,
                  label_index=index[ex.label], fold=ex.fold, group=ex.group)
             for ex in examples if ex.path in result.cached]
    return items, list(result.skipped)


def cached_files(examples: Sequence[Example], config: Config) -> list[str] | None:
    """The decode cache's files of ``examples`` at the config's rate, in input order, when every one is there whole
    (:meth:`sound_tf.audio.DecodeCache.lookup`: nothing is decoded); ``None`` when any would need decoding (a cache
    emptied or a source changed since it was decoded) or ``examples`` is empty."""
    cache = DecodeCache(cache_dir_of(config.data.cache_dir), sample_rate_hz=config.audio.sample_rate_hz)
    found = [cache.lookup(ex.path) for ex in examples]
    if not found or any(path is None for path in found):
        return None
    return [str(path) for path in found]


# -- what a run was trained on ------------------------------------------------------------------------
def class_counts_per_split(data: PreparedData | None = None, run_dir: str | Path | None = None
                           ) -> dict[str, dict[str, int]]:
    """``{split: {label: clips}}`` from prepared data, or else from a run folder's ``split.csv``."""
    if data is not None:
        return {name: dict(sorted(Counter(item.label for item in data.splits.get(name, [])).items()))
                for name in SPLITS}
    split_csv = Path(run_dir) / "split.csv" if run_dir is not None else None
    if split_csv is None or not split_csv.is_file():
        return {}
    splits = read_split_csv(split_csv, run_file=True)
    return {name: dict(sorted(Counter(ex.label for ex in splits[name]).items())) for name in SPLITS}


def train_class_counts(data: PreparedData | None = None, run_dir: str | Path | None = None) -> dict[str, int] | None:
    """Training clips per class (for :func:`sound_tf.metrics.data_advice`), or ``None`` when unknown."""
    return class_counts_per_split(data, run_dir).get("train")


def read_skipped_csv(path: str | Path) -> list[tuple[str, str]]:
    """``(path, reason)`` rows of a ``skipped.csv`` (empty when the file is absent)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["path"], row.get("reason", "")) for row in csv.DictReader(handle) if row.get("path")]


def write_skipped_csv(path: str | Path, skipped: Sequence[tuple[str, str]]) -> Path:
    """Write ``(path, reason)`` rows as ``skipped.csv`` (header ``path,reason``)."""
    path = Path(path)
    rows = [tuple(row) if isinstance(row, (tuple, list)) else row for row in skipped]
    bad = next((row for row in rows if not (isinstance(row, tuple) and len(row) == 2)), None)
    if isinstance(skipped, (str, bytes)) or bad is not None:
        # a single (path, reason) pair, or a path, would otherwise be written a character per field
        raise SoundTFError(f"skipped must be a sequence of (path, reason) pairs, got {skipped!r}"
                           + (f" (row {bad!r})" if bad is not None else ""))
    return atomic.write_csv(path, ("path", "reason"), rows)


def dataset_summary(data: PreparedData | None = None, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Key facts of the data a run used plus ``class_counts`` per split, for the report."""
    summary: dict[str, Any] = {}
    if data is not None:
        summary.update({key: value for key, value in data.stats.items() if key != "per_class"})
    elif run_dir is not None:
        counts = class_counts_per_split(run_dir=run_dir)
        summary.update({f"{name}_items": sum(c.values()) for name, c in counts.items()})
        summary["skipped"] = len(read_skipped_csv(Path(run_dir) / "skipped.csv"))
    counts = class_counts_per_split(data, run_dir)
    if counts:
        summary["class_counts"] = counts
    return summary


# -- the report -----------------------------------------------------------------------------------------
def write_curves(run_dir: str | Path, out_path: str | Path | None = None) -> Path | None:
    """Draw ``curves.png`` from the run's ``history.csv``; ``None`` when there is no epoch in it yet.

    Raises
    ------
    HistoryError
        The ``history.csv`` cannot be read or is not Keras' (:func:`sound_tf.run_state.read_history`).
    """
    run_dir = Path(run_dir)
    history = read_history(run_dir / HISTORY_FILE)
    if not history:
        return None
    return report.plot_curves(history, out_path or run_dir / CURVES_FIGURE[1],
                              title=f"Training curves of {run_dir.name}")


def write_run_report(run_dir: str | Path, *, config: Config | None = None, metrics: Mapping[str, Any] | None = None,
                     data: PreparedData | None = None, out_dir: str | Path | None = None,
                     title: str | None = None, summary: Mapping[str, Any] | None = None,
                     skipped: Sequence[tuple[str, str]] | None = None,
                     log: Callable[[str], None] = print, validation: Mapping[str, Any] | None = None,
                     fit_wording: M.FitWording | None = None) -> Path:
    """Write ``curves.png`` and a self-contained ``report.html`` for a training run or an evaluation.

    Parameters
    ----------
    run_dir : str or Path
        The run folder: ``history.csv`` (for the curves; one that cannot be read is a warning through
        ``log`` and a report without them), ``config.json``, ``split.csv`` and
        ``skipped.csv`` are read from here when the arguments below do not give them.
    config : Config, optional
        Defaults to the run's ``config.json``.
    metrics : dict, optional
        :func:`sound_tf.metrics.compute_metrics` output; defaults to ``out_dir/metrics.json`` if present.
    data : PreparedData, optional
        The data the run was trained on (class counts per split, skipped files, dataset facts).
    out_dir : str or Path, optional
        Where the evaluation files are and the report goes (default: ``run_dir``).
    title : str, optional
        Page heading.
    summary, skipped : optional
        Dataset summary and skipped files to show instead of the run's (e.g. for another dataset).
    validation : mapping, optional
        The model's validation accuracy and clips, for the summary's validation/test gap
        (:func:`sound_tf.metrics.validation_gap`).
    fit_wording : FitWording, optional
        The words of the summary's advice when the run overfit or underfit (:func:`sound_tf.metrics.summary_lines`;
        by default ``train``'s; a search's best run is given the search's, :func:`sound_tf.tune.fit_wording`).

    Returns
    -------
    Path
        The ``report.html`` written.
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    if config is None and (run_dir / "config.json").is_file():
        config = Config.load(run_dir)
    if metrics is None and (out_dir / "metrics.json").is_file():
        metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    figures = {name: out_dir / file for name, file in EVALUATION_FIGURES if (out_dir / file).is_file()}
    try:
        curves = write_curves(run_dir, out_dir / CURVES_FIGURE[1])
    except HistoryError as exc:  # the report is worth more than its curves
        log(f"warning: {exc}; the report goes without its training curves")
        curves = None
    if curves is not None:
        figures[CURVES_FIGURE[0]] = curves
    notes: list[str] = []
    if metrics:
        counts = train_class_counts(data, run_dir)
        if counts is not None and metrics.get("per_class") is not None:
            counts = {label: n for label, n in counts.items() if label in metrics["per_class"]}
        notes = M.summary_lines(metrics, class_counts=counts, validation=validation, fit_wording=fit_wording)
    summary = dict(summary) if summary is not None else dataset_summary(data, run_dir)
    chosen = chosen_classes_lines(config.data) if config is not None else []
    if chosen or summary.get("chosen_classes"):  # what the run made of the labels, then what became of the files
        summary["chosen_classes"] = chosen + list(summary.get("chosen_classes") or [])
    path = report.write_report_html(
        out_dir / "report.html", title=title or f"sound_tf run {run_dir.name}", metrics=metrics,
        config_dict=config.to_dict() if config is not None else None,
        dataset_summary=summary,
        figures=figures,
        skipped=skipped if skipped is not None else (data.skipped if data is not None
                                                     else read_skipped_csv(run_dir / "skipped.csv")),
        notes=notes)
    log(f"report: {path}")
    return path


__all__ = ["softmax", "evaluate_items", "load_run", "load_run_config", "decode_examples", "write_run_report",
           "write_curves", "dataset_summary", "class_counts_per_split", "train_class_counts", "read_skipped_csv",
           "write_skipped_csv"]
