"""Figures and the self-contained ``report.html`` of a training run, evaluation or cross-validation.

NumPy and dicts in, PNG and HTML files out. Plots use Matplotlib's Agg backend through the
object-oriented ``Figure`` API (no pyplot state, nothing to close, safe in threads and servers). The
HTML report embeds every figure as a base64 data URI and its CSS inline, so one file opens offline in any
browser and needs no JavaScript.

This module must never import TensorFlow or Keras: features are computed elsewhere (by the model's
frontend) and passed in as arrays.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: before anything could import pyplot

import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from . import __version__, atomic  # noqa: E402
from .errors import SoundTFError, counted, is_whole  # noqa: E402
from .metrics import SCALAR_METRICS, MetricsError, confused_pairs, weakest_classes  # noqa: E402
from .run_state import HistoryError, as_number, read_history  # noqa: E402

#: Bytes every PNG file starts with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Confusion matrices up to this many classes get the number written in each cell.
ANNOTATE_MAX_CLASSES = 20
#: Dynamic range shown in the log-mel figure, below its loudest cell (as librosa's ``top_db``).
SPECTROGRAM_RANGE_DB = 80.0
#: Points of the waveform plot; longer signals are drawn as a min/max envelope of this many buckets.
WAVEFORM_MAX_POINTS = 20000
#: How ``plot_waveform_and_logmel`` turns its input into decibels, per ``log_mel_scale``.
LOG_MEL_TO_DB = {
    "ln_power": 10.0 / math.log(10.0),  # ln(P) -> 10 log10(P)
    "ln_magnitude": 20.0 / math.log(10.0),  # ln(|X|) -> 20 log10(|X|)
    "db": 1.0,
}


class ReportError(SoundTFError, ValueError):
    """Inputs to a figure or the report that cannot be drawn."""


def _save(fig: Figure, path: str | Path, *, dpi: int = 100) -> Path:
    return atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))


# -- confusion matrix --------------------------------------------------------------------------------
def _confusion_layout(num_classes: int, longest_label: int) -> dict[str, float]:
    """Cell size, fonts and panel size (inches / points) that keep ``num_classes`` readable."""
    if num_classes <= 10:
        cell_in, font_pt = 0.55, 10.0
    elif num_classes <= ANNOTATE_MAX_CLASSES:
        cell_in, font_pt = 0.42, 8.0
    elif num_classes <= 100:
        cell_in, font_pt = 0.3, 6.5
    else:
        cell_in, font_pt = 0.2, 5.0
    matrix_in = max(3.0, cell_in * num_classes)
    label_in = 0.6 + longest_label * font_pt * 0.62 / 72.0  # rotated tick labels and axis title
    return {"cell_in": cell_in, "font_pt": font_pt, "matrix_in": matrix_in, "label_in": label_in,
            "annot_pt": max(5.0, min(10.0, cell_in * 72.0 * 0.3))}


def plot_confusion_matrix(cm: Any, labels: Sequence[str], path: str | Path, *, title: str | None = None) -> Path:
    """Draw the confusion matrix as counts and row-normalised (recall per true class) panels.

    Readable up to 50+ classes: the figure and fonts scale with the class count, the panels sit side by
    side up to :data:`ANNOTATE_MAX_CLASSES` classes (numbers written in the cells) and are stacked above
    each other beyond that (colour only), so each keeps its full width in the report. Rows are the true
    class, columns the predicted class; a row without examples is all zero in the normalised panel.

    Parameters
    ----------
    cm : array-like of int, shape [classes, classes]
        Rows = true class, columns = predicted class.
    labels : sequence of str
        Class names in matrix order.
    path : str or Path
        The PNG to write.
    title : str, optional
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    labels = [str(label) for label in labels]
    counts = np.asarray(cm)
    if counts.ndim != 2 or counts.shape != (len(labels), len(labels)):
        raise ReportError(f"confusion matrix of shape {counts.shape} does not fit {len(labels)} labels")
    counts = counts.astype(np.int64)
    support = counts.sum(axis=1, keepdims=True)  # [classes, 1]
    normalised = np.divide(counts, support, out=np.zeros(counts.shape, dtype=np.float64), where=support > 0)

    n = len(labels)
    lay = _confusion_layout(n, max(len(label) for label in labels))
    annotate = n <= ANNOTATE_MAX_CLASSES
    # The figure is sized so that, after labels and colour bar, the cells come out about square.
    panel_w = lay["matrix_in"] + lay["label_in"] + 1.3  # + colour bar
    panel_h = lay["matrix_in"] + lay["label_in"] + 0.5  # + panel title
    side_by_side = n <= ANNOTATE_MAX_CLASSES
    fig = Figure(figsize=(2 * panel_w, panel_h + 0.6) if side_by_side else (panel_w, 2 * panel_h + 0.6),
                 layout="constrained")
    axes = fig.subplots(1, 2) if side_by_side else fig.subplots(2, 1)
    fig.get_layout_engine().set(wspace=0.06, hspace=0.04)  # room between one colour bar and the next panel
    panels = [(counts, "counts", "examples", None),
              (normalised, "row-normalised (recall per true class)", "fraction of true class", 1.0)]
    ticks = np.arange(n)
    cmap = ListedColormap(matplotlib.colormaps["Blues"](np.linspace(0.12, 1.0, 256))).with_extremes(bad="white")
    for ax, (values, name, bar_label, vmax) in zip(axes, panels):
        # Zero cells stay white and the colour map starts at a visible blue, so a single confusion
        # out of many examples still shows in a 50-class matrix.
        image = ax.imshow(np.ma.masked_equal(values, 0), cmap=cmap, vmin=0,
                          vmax=vmax if vmax is not None else max(1, values.max()),
                          interpolation="nearest", aspect="auto")
        bar = fig.colorbar(image, ax=ax, pad=0.02, shrink=0.9, aspect=30)
        bar.set_label(bar_label, fontsize=lay["font_pt"] + 1)
        bar.ax.tick_params(labelsize=lay["font_pt"])
        if vmax is None:
            bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xticks(ticks, labels, rotation=90 if n > 10 else 45, ha="center" if n > 10 else "right",
                      rotation_mode="default" if n > 10 else "anchor", fontsize=lay["font_pt"])
        ax.set_yticks(ticks, labels, fontsize=lay["font_pt"])
        ax.set_xlabel("predicted class", fontsize=lay["font_pt"] + 2)
        ax.set_ylabel("true class", fontsize=lay["font_pt"] + 2)
        ax.set_title(name, fontsize=lay["font_pt"] + 3)
        if n > ANNOTATE_MAX_CLASSES:  # faint grid so rows and columns can be followed across
            ax.set_xticks(ticks - 0.5, minor=True)
            ax.set_yticks(ticks - 0.5, minor=True)
            ax.grid(which="minor", color="#dddddd", linewidth=0.3)
            ax.tick_params(which="minor", length=0)
        if annotate:
            top = float(image.norm.vmax)
            for i in range(n):
                for j in range(n):
                    value = values[i, j]
                    if value == 0:  # white cell, left blank
                        continue
                    text = f"{int(value)}" if vmax is None else f"{value:.2f}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=lay["annot_pt"],
                            color="white" if value > 0.55 * top else "#222222")
    total = int(counts.sum())
    accuracy = float(np.trace(counts) / total) if total else float("nan")
    heading = title or "Confusion matrix"
    fig.suptitle(f"{heading}  ({total} examples, accuracy {accuracy:.3f})", fontsize=lay["font_pt"] + 5)
    return _save(fig, path)


# -- per-class scores --------------------------------------------------------------------------------
def plot_per_class(metrics: Mapping[str, Any], path: str | Path, *, title: str | None = None) -> Path:
    """Horizontal bars of F1 per class, weakest at the top, with the macro F1 as a dashed line.

    Each bar is annotated with its F1 and support. Classes without examples here have no F1 and
    are left out (the title says how many). The figure grows with the class count.

    Parameters
    ----------
    metrics : dict
        Output of :func:`sound_tf.metrics.compute_metrics` (``per_class``; ``macro_f1`` if present).
    path : str or Path
        The PNG to write.
    """
    per_class = metrics.get("per_class") if isinstance(metrics, Mapping) else None
    if not isinstance(per_class, Mapping) or not per_class:
        raise ReportError("plot_per_class needs metrics with a non-empty 'per_class' dict")
    rows = sorted(((label, float(s["f1"]), int(s["support"])) for label, s in per_class.items()
                   if int(s["support"]) > 0), key=lambda r: (r[1], r[0]))
    absent = len(per_class) - len(rows)
    n = max(len(rows), 1)
    font_pt = 10.0 if n <= 20 else 8.0 if n <= 60 else 6.0
    longest = max((len(r[0]) for r in rows), default=5)
    fig = Figure(figsize=(7.0 + longest * font_pt * 0.6 / 72.0, max(2.5, 0.24 * n * font_pt / 8.0 + 1.4)),
                 layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(rows))[::-1]  # weakest at the top
    f1 = np.array([r[1] for r in rows])
    colours = matplotlib.colormaps["RdYlGn"](0.15 + 0.7 * f1) if rows else []
    ax.barh(positions, f1, color=colours, edgecolor="#555555", linewidth=0.4, height=0.75)
    ax.set_yticks(positions, [r[0] for r in rows], fontsize=font_pt)
    for y, (_, value, support) in zip(positions, rows):
        ax.text(min(value, 1.0) + 0.01, y, f"{value:.2f} (n={support})", va="center", fontsize=font_pt - 1)
    macro = metrics.get("macro_f1")
    if macro is not None:
        ax.axvline(float(macro), color="#333333", linestyle="--", linewidth=1.0)
    ax.set_xlim(0, 1.18)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_xlabel("F1 score", fontsize=font_pt + 1)
    ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    ax.set_axisbelow(True)
    heading = [title or "F1 per class (weakest first)"]
    if macro is not None:
        heading.append(f"dashed line: macro F1 {float(macro):.3f}")
    if absent:
        heading.append(f"{counted(absent, 'classes', one='class')} without examples not shown")
    # Wrapped to the figure's width (about 0.6 em per character): one line ran past both edges of a
    # figure whose short labels left it at its narrowest.
    per_line = max(20, int(fig.get_figwidth() * 72.0 / (0.6 * (font_pt + 2))) - 4)
    ax.set_title("\n".join(textwrap.wrap("; ".join(heading), per_line)), fontsize=font_pt + 2)
    return _save(fig, path)


# -- training curves ---------------------------------------------------------------------------------
def _read_history_csv(path: Path) -> dict[str, list[float]]:
    """:func:`sound_tf.run_state.read_history` of a file the caller named: its absence, or nothing in it at all,
    is a ``ReportError`` naming it, as a file it cannot read is."""
    if not path.is_file():
        raise ReportError(f"{path}: no training history here (expected the CSVLogger's history.csv)")
    try:
        columns = read_history(path)
    except HistoryError as exc:
        raise ReportError(str(exc)) from None
    if not columns and not path.stat().st_size:
        raise ReportError(f"{path}: empty history file (no header)")
    return columns


def load_history(history: Mapping[str, Sequence[float]] | str | Path) -> dict[str, list[float]]:
    """A training history as ``{column: values}`` from a dict of lists or Keras' ``history.csv``.

    Non-numeric cells become NaN (the file as :func:`sound_tf.run_state.read_history` reads it: a row
    half-written by a killed run left out). ``lr`` is renamed ``learning_rate`` (older Keras name).
    """
    if isinstance(history, (str, Path)):
        columns = _read_history_csv(Path(history))
    elif isinstance(history, Mapping):
        columns = {str(k): [as_number(v) for v in np.ravel(np.asarray(vals, dtype=object))]
                   for k, vals in history.items()}
    else:
        raise ReportError(f"history must be a dict of lists or a path to history.csv, got {type(history).__name__}")
    if "learning_rate" not in columns and "lr" in columns:
        columns["learning_rate"] = columns.pop("lr")
    return columns


def plot_curves(history: Mapping[str, Sequence[float]] | str | Path, path: str | Path, *,
                title: str | None = None) -> Path:
    """Loss, accuracy (train and validation) and learning rate per epoch, in three panels.

    Parameters
    ----------
    history : dict of lists, or str / Path
        ``keras.callbacks.History.history`` or the ``history.csv`` of ``keras.callbacks.CSVLogger``
        (columns ``epoch, loss, accuracy, val_loss, val_accuracy, learning_rate`` or ``lr``). Missing
        columns leave their curve out; a panel with nothing to draw says so. Epochs are drawn 1-based
        (the CSV's 0-based ``epoch`` column plus one; 1..n for a dict).
    path : str or Path
        The PNG to write.
    """
    columns = load_history(history)
    length = max((len(v) for v in columns.values()), default=0)
    if "epoch" in columns and len(columns["epoch"]) == length and not np.isnan(columns["epoch"]).any():
        epochs = np.asarray(columns["epoch"]) + 1
    else:
        epochs = np.arange(1, length + 1)
    fig = Figure(figsize=(15.0, 5.0), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [("loss", [("loss", "train"), ("val_loss", "validation")], "linear"),
              ("accuracy", [("accuracy", "train"), ("val_accuracy", "validation")], "linear"),
              ("learning rate", [("learning_rate", "learning rate")], "log")]
    for ax, (name, series, scale) in zip(axes, panels):
        drawn = 0
        for key, label in series:
            values = np.asarray(columns.get(key, []), dtype=np.float64)
            if values.size == 0 or np.isnan(values).all():
                continue
            ax.plot(epochs[:values.size], values, marker="o" if values.size <= 30 else None,
                    markersize=3, label=label)
            drawn += 1
            if scale == "log" and np.nanmin(values) > 0:
                ax.set_yscale("log")
        # the epoch training keeps (its lowest validation loss) and the one of the highest validation accuracy,
        # each named for what it is: one 'best validation' mark on the accuracy alone was read as the kept epoch
        marks = {"loss": ("val_loss", np.nanargmin, "lowest validation loss"),
                 "accuracy": ("val_accuracy", np.nanargmax, "highest validation accuracy")}
        if name in marks and drawn:
            key, pick, words = marks[name]
            best = np.asarray(columns.get(key, []), dtype=np.float64)
            if best.size and not np.isnan(best).all():
                k = int(pick(best))
                ax.axvline(epochs[k], color="#999999", linestyle=":", linewidth=1,
                           label=f"{words} {best[k]:.3f} (epoch {epochs[k]:g})")
        if drawn:  # under the panel: inside it, no place was free of a 4-epoch run's crossing lines or the mark
            ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
        else:
            ax.text(0.5, 0.5, f"no {name} recorded", ha="center", va="center", transform=ax.transAxes,
                    color="#777777")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(color="#e5e5e5", linewidth=0.6)
    fig.suptitle(title or f"Training curves ({length} epochs)")
    return _save(fig, path)


# -- waveform and log-mel ----------------------------------------------------------------------------
def log_mel_to_db(log_mel: Any, log_mel_scale: str = "ln_power") -> np.ndarray:
    """Convert log-mel features to decibels.

    Parameters
    ----------
    log_mel : array-like of float, shape [frames, mel_bins]
        Natural-log features.
    log_mel_scale : {"ln_power", "ln_magnitude", "db"}
        ``"ln_power"``: ``ln(P)`` becomes ``10 * log10(P) = 10 / ln(10) * ln(P)``;
        ``"ln_magnitude"``: ``ln(|X|)`` becomes ``20 * log10(|X|)``; ``"db"``: unchanged.

    Examples
    --------
    >>> float(log_mel_to_db(np.log(100.0)))  # a power of 100 is 20 dB
    20.0
    """
    if log_mel_scale not in LOG_MEL_TO_DB:
        raise ReportError(f"log_mel_scale must be one of {sorted(LOG_MEL_TO_DB)}, got {log_mel_scale!r}")
    return LOG_MEL_TO_DB[log_mel_scale] * np.asarray(log_mel, dtype=np.float64)


def frame_span_seconds(num_frames: int, hop_length_samples: int, frame_length_samples: int,
                       sample_rate_hz: int) -> tuple[float, float]:
    """Where ``num_frames`` feature frames go on a time axis: ``(start, end)`` in seconds.

    Frame ``i`` covers samples ``[i * hop, i * hop + frame_length)`` (the frontend does not centre its
    frames), so each is drawn as a hop-wide column centred on its window's middle, ``i * hop +
    frame_length / 2``: a click at time ``t`` lights the columns around ``t``, not ``(frame_length -
    hop) / 2`` earlier.
    """
    start = (frame_length_samples - hop_length_samples) / 2 / sample_rate_hz
    return start, start + num_frames * hop_length_samples / sample_rate_hz


def plot_waveform_and_logmel(wave: Any, log_mel: Any, sample_rate_hz: int, hop_length_samples: int,
                             path: str | Path, *, frame_length_samples: int | None = None,
                             title: str | None = None, log_mel_scale: str = "ln_power") -> Path:
    """The waveform over time above its log-mel spectrogram in dB with a colour bar.

    Parameters
    ----------
    wave : array-like of float, shape [samples]
        Mono waveform at ``sample_rate_hz``.
    log_mel : array-like of float, shape [frames, mel_bins]
        The frontend's log-mel features of ``wave``.
    sample_rate_hz : int
        Sample rate of ``wave``.
    hop_length_samples : int
        Hop between feature frames.
    path : str or Path
        The PNG to write.
    frame_length_samples : int, optional
        Window length of a feature frame (default: the hop); frame ``i`` is drawn hop-wide around its
        window's middle (:func:`frame_span_seconds`).
    title : str, optional
        Figure title (e.g. the file name).
    log_mel_scale : {"ln_power", "ln_magnitude", "db"}
        What ``log_mel`` holds. ``"ln_power"`` (the default, the frontend's ``ln(mel power + offset)``)
        is converted with ``dB = 10 * log10(P) = 10 / ln(10) * ln(P) ~= 4.343 * log_mel``;
        ``"ln_magnitude"`` with ``20 / ln(10)``; ``"db"`` is drawn as given. The colour scale spans the
        :data:`SPECTROGRAM_RANGE_DB` below the loudest cell.
    """
    wave = np.asarray(wave, dtype=np.float64)
    log_mel = np.asarray(log_mel, dtype=np.float64)
    if wave.ndim != 1 or wave.size == 0:
        raise ReportError(f"wave must be a non-empty 1-D array [samples], got shape {wave.shape}")
    if log_mel.ndim != 2 or 0 in log_mel.shape:
        raise ReportError(f"log_mel must be a non-empty 2-D array [frames, mel_bins], got shape {log_mel.shape}")
    if not (is_whole(sample_rate_hz) and sample_rate_hz > 0):
        raise ReportError(f"sample_rate_hz must be a positive integer, got {sample_rate_hz!r}")
    if not (is_whole(hop_length_samples) and hop_length_samples > 0):
        raise ReportError(f"hop_length_samples must be a positive integer, got {hop_length_samples!r}")
    frame_length_samples = hop_length_samples if frame_length_samples is None else frame_length_samples
    if not (is_whole(frame_length_samples) and frame_length_samples >= hop_length_samples):
        raise ReportError(f"frame_length_samples must be an integer of at least the hop ({hop_length_samples}), "
                          f"got {frame_length_samples!r}")

    mel_db = log_mel_to_db(log_mel, log_mel_scale)  # [frames, mel_bins]
    finite = mel_db[np.isfinite(mel_db)]
    top_db = float(finite.max()) if finite.size else 0.0
    duration_s = wave.size / sample_rate_hz
    frames_start_s, frames_end_s = frame_span_seconds(log_mel.shape[0], hop_length_samples, frame_length_samples,
                                                      sample_rate_hz)

    fig = Figure(figsize=(11.0, 7.0), layout="constrained")
    # A narrow third column holds the colour bar, so both panels keep the same time axis width.
    grid = fig.add_gridspec(2, 2, width_ratios=[1.0, 0.018], height_ratios=[1.0, 1.6])
    ax_wave = fig.add_subplot(grid[0, 0])
    ax_mel = fig.add_subplot(grid[1, 0], sharex=ax_wave)
    ax_bar = fig.add_subplot(grid[1, 1])
    if wave.size > WAVEFORM_MAX_POINTS:  # min/max envelope: faithful and fast for long recordings
        starts = np.linspace(0, wave.size, WAVEFORM_MAX_POINTS // 2, endpoint=False).astype(np.int64)
        lo = np.minimum.reduceat(wave, starts)  # [buckets]
        hi = np.maximum.reduceat(wave, starts)  # [buckets]
        ax_wave.fill_between(starts / sample_rate_hz, lo, hi, color="#1f5fa8", linewidth=0.3)
    else:
        ax_wave.plot(np.arange(wave.size) / sample_rate_hz, wave, color="#1f5fa8", linewidth=0.6)
    peak = max(float(np.max(np.abs(wave))), 1e-9)
    ax_wave.set_ylim(-1.05 * peak, 1.05 * peak)
    ax_wave.set_ylabel("amplitude")
    ax_wave.set_title(f"waveform ({duration_s:.2f} s at {int(sample_rate_hz)} Hz)")
    ax_wave.grid(color="#e5e5e5", linewidth=0.6)
    ax_wave.tick_params(labelbottom=False)
    image = ax_mel.imshow(mel_db.T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                          extent=(frames_start_s, frames_end_s, -0.5, log_mel.shape[1] - 0.5),
                          vmin=top_db - SPECTROGRAM_RANGE_DB, vmax=top_db)
    bar = fig.colorbar(image, cax=ax_bar)
    bar.set_label("dB")
    ax_mel.set_xlim(0.0, max(duration_s, frames_end_s))
    ax_mel.set_xlabel("time (s)")
    ax_mel.set_ylabel("mel bin")
    ax_mel.set_title(f"log-mel spectrogram ({log_mel.shape[1]} mel bins, {log_mel.shape[0]} frames)")
    fig.suptitle(title or "Waveform and log-mel spectrogram")
    return _save(fig, path)


# -- report.html -------------------------------------------------------------------------------------
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d232a;
margin:0;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:34px 0 10px;border-bottom:1px solid #d9dde3;
padding-bottom:4px}h3{font-size:16px;margin:20px 0 8px}
.meta{color:#5b6570;font-size:13px;margin:0 0 14px}
nav a{margin-right:14px;font-size:14px;color:#1f5fa8}
table{border-collapse:collapse;margin:6px 0 14px;font-size:14px}
th,td{border:1px solid #dde1e6;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef1f5}tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.weak td{background:#fff1f0}
figure{margin:14px 0 26px}figure img{max-width:100%;height:auto;border:1px solid #e3e6ea}
figcaption{font-size:13px;color:#5b6570}
pre{background:#f3f5f7;border:1px solid #e1e4e8;padding:10px;overflow:auto;font-size:12.5px}
pre.notes{white-space:pre-wrap;background:#f8faf8;font-size:13.5px}.empty{color:#6b7580;font-style:italic}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return _esc(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value)}"
    if isinstance(value, (float, np.floating)):
        return "n/a" if not math.isfinite(value) else f"{float(value):.4f}"
    if isinstance(value, (Mapping, list, tuple)):
        return _esc(json.dumps(value, default=str))
    return _esc(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, row_classes: Sequence[str] | None = None) -> str:
    if not rows:
        return '<p class="empty">none</p>'
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{_esc(row_classes[index])}"' if row_classes and row_classes[index] else ""
        cells = "".join(f'<td class="num">{_fmt(c)}</td>' if _is_number(c) else f"<td>{_fmt(c)}</td>" for c in row)
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _png_data_uri(name: str, png_path: str | Path) -> tuple[str, int, int]:
    """The figure as a data URI and its pixel width and height (from the PNG header)."""
    png_path = Path(png_path)
    if not png_path.is_file():
        raise ReportError(f"{png_path}: figure {name!r} does not exist")
    data = png_path.read_bytes()
    if not data.startswith(PNG_SIGNATURE) or len(data) < 24:
        raise ReportError(f"{png_path}: figure {name!r} is not a PNG file")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii"), width, height


def _metrics_sections(metrics: Mapping[str, Any] | None, evaluated: str = "test") -> tuple[str, str, str]:
    """(overall table, per-class table, confused-pairs table) for single-run or cross-validation metrics;
    ``evaluated`` names the examples a single run's metrics are of (a split or a dataset)."""
    if not metrics:
        empty = '<p class="empty">no metrics</p>'
        return empty, empty, empty
    if "mean" in metrics and "std" in metrics:  # aggregate_folds output
        pooled = metrics.get("pooled") or {}
        # From a confusion matrix, top-1 accuracy is the accuracy; top-k for k > 1 needs the scores (n/a).
        one_fold = metrics.get("num_folds") == 1  # no spread: a std of 0 would read as folds that agree
        rows = [(key, float(metrics["mean"][key]),
                 float("nan") if one_fold else float(metrics["std"].get(key, float("nan"))),
                 pooled.get("accuracy" if key == "top_1" else key,
                            pooled.get("top_k_accuracy", {}).get(key, float("nan"))))
                for key in metrics["mean"]]
        folds, examples = (metrics.get(key) for key in ("num_folds", "num_examples"))
        overall = (f"<p>{_esc(counted(folds, 'folds') if is_whole(folds) else '? folds')}, "
                   f"{_esc(counted(examples, 'held-out examples') if is_whole(examples) else '? held-out examples')} "
                   "in all. Std = the population standard deviation over the folds; pooled = "
                   "computed from the summed confusion matrix.</p>"
                   + _table(("metric", "mean", "std", "pooled"), rows))
        per_class_source = pooled
    else:
        rows = [(key, metrics[key]) for key in SCALAR_METRICS if key in metrics]
        rows += [(f"{key.replace('_', '-')} accuracy", value)
                 for key, value in (metrics.get("top_k_accuracy") or {}).items()]
        overall = (f"<p>{_esc(metrics.get('num_examples', '?'))} examples evaluated ({_esc(evaluated)}).</p>"
                   + _table(("metric", "value"), rows))
        per_class_source = metrics
    per_class_html = '<p class="empty">no per-class metrics</p>'
    if per_class_source.get("per_class"):
        try:
            weak = {r["label"] for r in weakest_classes(per_class_source, n=5)}
        except MetricsError:
            weak = set()
        items = list(per_class_source["per_class"].items())
        unmeasured = any(int(s["support"]) == 0 for _, s in items)
        per_class_html = ('<p>Rows shaded red are the five weakest classes by F1.'
                          + (' A class without evaluated examples (support 0) has no recall or F1 (&ndash;).'
                             if unmeasured else '') + '</p>' + _table(
            ("class", "precision", "recall", "F1", "support"),
            [(label, s["precision"], *((s["recall"], s["f1"]) if int(s["support"]) else ("\u2013", "\u2013")),
              int(s["support"])) for label, s in items],
            row_classes=["weak" if label in weak else "" for label, _ in items]))
    over_folds = metrics.get("per_class_folds") if "mean" in metrics and "std" in metrics else None
    if over_folds:  # aggregate_folds' per_class_folds: each fold weighs alike, as the mean of the scalars
        one_fold = metrics.get("num_folds") == 1
        rows = []
        for label, over in over_folds.items():
            cells: list[Any] = []
            for name in ("precision", "recall", "f1"):
                mean = over["mean"][name] if over.get("folds") else "\u2013"
                std = ("\u2013" if not over.get("folds") else float("nan") if one_fold or over["folds"] == 1
                       else over["std"][name])
                cells += [mean, std]
            rows.append((label, int(over.get("folds", 0)), *cells))
        per_class_html += ("<h3>Per class over the folds</h3><p>Each class's mean and std over the folds whose test "
                           "clips hold it (folds), each fold weighing alike; std = the population standard "
                           "deviation over those folds (n/a over one fold). The table above is pooled.</p>"
                           + _table(("class", "folds", "precision mean", "precision std", "recall mean",
                                     "recall std", "F1 mean", "F1 std"), rows))
    pairs_html = '<p class="empty">no confusion matrix</p>'
    if metrics.get("confusion_matrix") is not None and metrics.get("labels"):
        pairs = confused_pairs(metrics["confusion_matrix"], metrics["labels"], top=20)
        pairs_html = _table(("true class", "predicted as", "count", "share of true class"),
                            [(p["true"], p["predicted"], p["count"], f"{p['rate']:.1%}") for p in pairs])
    return overall, per_class_html, pairs_html


def _dataset_section(dataset_summary: Mapping[str, Any] | None, labels: Sequence[str]) -> str:
    if not dataset_summary:
        return '<p class="empty">no dataset summary</p>'
    parts = []
    scalars = [(key, value) for key, value in dataset_summary.items() if key not in ("class_counts", "chosen_classes")]
    if scalars:
        parts.append(_table(("item", "value"), scalars))
    chosen = dataset_summary.get("chosen_classes")
    if chosen:  # lines: the kept labels, the other class and its share, the silence class (and their files)
        chosen = [chosen] if isinstance(chosen, str) else chosen
        parts.append(f'<h3>Classes chosen</h3><pre class="notes">{_esc(chr(10).join(map(str, chosen)))}</pre>')
    counts = dataset_summary.get("class_counts")
    if isinstance(counts, Mapping) and counts:
        splits = list(counts)
        names = list(labels) + sorted({label for split in counts.values() for label in split} - set(labels))
        rows = []
        for label in names:
            values = [int(counts[split].get(label, 0)) for split in splits]
            rows.append((label, *values, sum(values)))
        totals = [sum(int(v) for v in counts[split].values()) for split in splits]
        rows.append(("total", *totals, sum(totals)))
        # a cross-validation's columns are its folds ('fold 1', ...): its table read 'per split' above them
        per = "fold" if all(str(split).startswith("fold ") for split in splits) else "split"
        parts.append(f"<h3>Class counts per {per}</h3>" + _table(("class", *splits, "all"), rows))
    return "".join(parts)


def write_report_html(path: str | Path, *, title: str, metrics: Mapping[str, Any] | None,
                      config_dict: Mapping[str, Any] | None, dataset_summary: Mapping[str, Any] | None,
                      figures: Mapping[str, str | Path], skipped: Sequence[tuple[str, str]] = (),
                      extra_tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                      notes: Sequence[str] = ()) -> Path:
    """Write a self-contained HTML report: metrics, figures, config, dataset summary, skipped files.

    Every PNG is embedded as a base64 data URI, the CSS is inline and there is no script and no
    external resource, so the single file opens offline. All text is HTML-escaped.

    Parameters
    ----------
    path : str or Path
        The HTML file to write.
    title : str
        Page heading.
    metrics : dict or None
        :func:`sound_tf.metrics.compute_metrics` output, or :func:`sound_tf.metrics.aggregate_folds`
        output for cross-validation (mean, std and pooled value per metric; per-class table from the
        pooled confusion matrix).
    config_dict : dict or None
        ``Config.to_dict()``, shown as indented JSON.
    dataset_summary : dict or None
        Key/value items (e.g. ``source``, ``format``, ``num_files``) and optionally ``class_counts``:
        ``{split: {label: count}}``, drawn as one table with a column per split.
    figures : dict of str to path
        Title of each figure and its PNG, in display order.
    skipped : sequence of (path, reason)
        Files that could not be used (also a mapping of path to reason, or bare paths without a reason).
    extra_tables : dict of str to list of dict, optional
        More tables, e.g. ``{"Per fold": [{"fold": 1, "accuracy": 0.8}, ...]}``; columns are the union
        of the rows' keys in first-seen order.
    notes : sequence of str
        Lines shown near the top, e.g. :func:`sound_tf.metrics.summary_lines` (one string is one line).

    Raises
    ------
    ReportError
        When a figure is missing or is not a PNG.
    """
    if not isinstance(figures, Mapping):  # a list of paths failed with "'list' object has no attribute 'items'"
        raise ReportError(f"figures must map each figure's title to its PNG, e.g. {{'Confusion matrix': "
                          f"'confusion_matrix.png'}}, got a {type(figures).__name__}")
    labels = list((metrics or {}).get("labels") or [])
    overall, per_class_html, pairs_html = _metrics_sections(
        metrics, str((dataset_summary or {}).get("evaluated") or "test split"))
    figure_html = []
    for index, (name, png) in enumerate(figures.items()):
        uri, width, height = _png_data_uri(name, png)
        figure_html.append(f'<figure id="figure-{index}"><img src="{uri}" alt="{_esc(name)}" width="{width}" '
                           f'height="{height}"><figcaption>{_esc(name)} ({_esc(Path(png).name)})</figcaption></figure>')
    extra_html = []
    for name, rows in (extra_tables or {}).items():
        columns: list[str] = []
        for row in rows:
            columns += [key for key in row if key not in columns]
        cells = [[row.get(column, "") for column in columns] for row in rows]
        extra_html.append(f"<h3>{_esc(name)}</h3>" + _table(columns, cells))
    if isinstance(skipped, Mapping):  # {path: reason}
        skipped = list(skipped.items())
    # a bare path is a row of its own (item[0] of a string was its first character, item[1] the second)
    skipped_rows = [(str(item), "") if isinstance(item, (str, os.PathLike)) else
                    (str(item[0]), str(item[1]) if len(item) > 1 else "") for item in skipped]
    config_text = json.dumps(config_dict, indent=2, sort_keys=False, default=str) if config_dict else ""
    notes = [notes] if isinstance(notes, str) else notes  # joined by characters, a string read one per line
    notes_html = f'<pre class="notes">{_esc(chr(10).join(map(str, notes)))}</pre>' if notes else ""

    sections = [
        ("summary", "Summary", notes_html + overall),
        ("figures", "Figures", "".join(figure_html) or '<p class="empty">no figures</p>'),
        ("per-class", "Per class", per_class_html),
        ("confusions", "Most confused pairs", pairs_html),
    ]
    if extra_html:
        sections.append(("more", "More tables", "".join(extra_html)))
    sections += [
        ("dataset", "Dataset", _dataset_section(dataset_summary, labels)),
        ("skipped", f"Skipped files ({len(skipped_rows)})", _table(("file", "reason"), skipped_rows)),
        ("config", "Configuration", f"<pre>{_esc(config_text)}</pre>" if config_text
         else '<p class="empty">no configuration</p>'),
    ]
    stamp = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    nav = "".join(f'<a href="#{key}">{_esc(heading)}</a>' for key, heading, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{_esc(heading)}</h2>{content}</section>'
                   for key, heading, content in sections)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>"
            f"<h1>{_esc(title)}</h1><p class=\"meta\">sound_tf {_esc(__version__)}, written {_esc(stamp)}</p>"
            f"<nav>{nav}</nav>{body}</main></body></html>\n")
    return atomic.write_text(path, page)
