"""sound_tf.report: figures read back as pixels, and report.html checked as text and in headless Chromium."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image

from sound_tf.metrics import aggregate_folds, compute_metrics, summary_lines
from sound_tf.report import (
    ReportError,
    load_history,
    log_mel_to_db,
    plot_confusion_matrix,
    plot_curves,
    plot_per_class,
    plot_waveform_and_logmel,
    write_report_html,
)

DATA_URI = '<img src="data:image/png;base64,'
BLUES_DARKEST = np.array([8, 48, 107])  # the top of Matplotlib's "Blues": a full diagonal cell


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB")).astype(np.int64)  # [height, width, rgb]


def _near(pixels: np.ndarray, colour: np.ndarray, tol: int = 12) -> int:
    return int(np.sum(np.all(np.abs(pixels - colour) <= tol, axis=-1)))


def _predictions(rng, num_classes: int, per_class: int, labels=None):
    labels = labels or [f"class_{i:02d}" for i in range(num_classes)]
    y = np.repeat(np.arange(num_classes), per_class)
    scores = rng.random((y.size, num_classes))
    scores[np.arange(y.size), y] += 1.5 * rng.random(y.size)
    return y, scores, labels


# -- figures -----------------------------------------------------------------------------------------
def test_confusion_matrix_small_has_side_by_side_panels(tmp_path):
    cm = np.array([[20, 0, 0], [0, 20, 0], [0, 0, 20]])  # perfect: three darkest cells per panel
    path = plot_confusion_matrix(cm, ["dog", "cat", "bird"], tmp_path / "cm.png", title="perfect")
    pixels = _pixels(path)
    height, width, _ = pixels.shape
    assert width > 1.5 * height and 400 <= height <= 1200  # two panels side by side
    # Six darkest-blue diagonal cells (three per panel) of about 1 in (100 px at 100 dpi: a 3-class
    # matrix gets the 3 in minimum) each; the zero cells off the diagonal are white.
    dark = _near(pixels, BLUES_DARKEST)
    assert 6 * 90 * 90 <= dark <= 6 * 140 * 140
    white = _near(pixels, np.array([255, 255, 255]), tol=2)
    assert white > 12 * 90 * 90  # twelve empty off-diagonal cells at least


def test_a_figure_whose_write_stops_half_way_leaves_the_previous_png(tmp_path):
    """savefig wrote confusion_matrix.png in place: a full disk (or a kill) half way left the PNG's first
    4,096 bytes, a picture the report embedded broken. Written whole, the previous figure stays."""
    from conftest import disk_full_after

    cm = np.array([[20, 0, 0], [0, 20, 0], [0, 0, 20]])
    path = plot_confusion_matrix(cm, ["dog", "cat", "bird"], tmp_path / "confusion_matrix.png")
    before = path.read_bytes()
    assert len(before) > 4 * 4096
    with disk_full_after(4096), pytest.raises(OSError, match="File too large"):
        plot_confusion_matrix(cm * 2 + np.eye(3, dtype=int), ["dog", "cat", "bird"], path)
    assert path.read_bytes() == before and sorted(tmp_path.iterdir()) == [path]


def test_confusion_matrix_50_classes_stays_readable(tmp_path, rng):
    y, scores, labels = _predictions(rng, 50, 4)
    m = compute_metrics(y, scores, labels)
    pixels = _pixels(plot_confusion_matrix(m["confusion_matrix"], labels, tmp_path / "cm50.png"))
    height, width, _ = pixels.shape
    # Panels stacked; each matrix at least 50 cells x 25 px, and not absurdly large.
    assert width >= 50 * 25 and height >= 2 * 50 * 25
    assert width <= 2500 and height <= 4500
    assert pixels.std() > 20  # not blank


def test_per_class_plot_grows_with_class_count(tmp_path, rng):
    sizes = {}
    for n in (5, 50):
        y, scores, labels = _predictions(rng, n, 4)
        pixels = _pixels(plot_per_class(compute_metrics(y, scores, labels), tmp_path / f"pc{n}.png"))
        sizes[n] = pixels.shape[:2]
    assert sizes[50][0] >= 50 * 20  # at least 20 px per bar
    assert sizes[50][0] > 3 * sizes[5][0]
    with pytest.raises(ReportError, match="per_class"):
        plot_per_class({"accuracy": 1.0}, tmp_path / "bad.png")


def test_curves_from_csvlogger_file_with_missing_columns(tmp_path):
    csv_path = tmp_path / "history.csv"
    # Older Keras writes "lr"; this run has no validation accuracy column and one unparsable cell.
    csv_path.write_text("epoch,accuracy,loss,lr,val_loss\n0,0.30,2.0,0.001,2.2\n1,0.50,1.5,0.001,1.8\n"
                        "2,0.60,1.2,0.0005,nan\n3,0.70,1.0,0.00025,1.5\n")
    history = load_history(csv_path)
    assert history["learning_rate"] == [0.001, 0.001, 0.0005, 0.00025] and "lr" not in history
    assert np.isnan(history["val_loss"][2]) and history["epoch"] == [0.0, 1.0, 2.0, 3.0]
    pixels = _pixels(plot_curves(csv_path, tmp_path / "curves.png"))
    assert pixels.shape[:2] == (500, 1500)
    assert pixels.std() > 10
    # A dict (History.history) works too, even with nothing but the loss.
    assert _pixels(plot_curves({"loss": [1.0, 0.5]}, tmp_path / "c2.png")).shape[:2] == (500, 1500)
    with pytest.raises(ReportError, match="no training history"):
        plot_curves(tmp_path / "missing.csv", tmp_path / "c3.png")


def test_curves_leave_out_a_row_cut_short_and_refuse_a_file_that_is_not_a_history(tmp_path, monkeypatch):
    """A run killed while Keras' CSVLogger wrote a row leaves it cut mid-line, without its line break: its cells
    were drawn (a validation loss of 1.0 from a row cut at '1.06', marked the lowest). The curves end at the last
    row that ended. A CSV without the epoch column (a split.csv given by mistake) was three empty panels: it is a
    ReportError naming it."""
    import sound_tf.report as report

    csv_path = tmp_path / "history.csv"
    csv_path.write_bytes(b"epoch,loss,val_loss\r\n0,2.0,1.9\r\n1,1.5,1.4\r\n2,1.2,1.0")
    assert load_history(csv_path) == {"epoch": [0.0, 1.0], "loss": [2.0, 1.5], "val_loss": [1.9, 1.4]}
    drawn = {}
    monkeypatch.setattr(report, "_save", lambda fig, path, **kwargs: drawn.setdefault("fig", fig) and Path(path))
    plot_curves(csv_path, tmp_path / "curves.png")
    loss = drawn.pop("fig").axes[0]
    assert list(loss.lines[0].get_xdata()) == [1, 2]
    assert loss.get_legend().get_texts()[-1].get_text() == "lowest validation loss 1.400 (epoch 2)"
    csv_path.write_text("split,path,label\ntest,a.wav,dog\n", encoding="utf-8")
    with pytest.raises(ReportError, match=rf"^{re.escape(str(csv_path))}: not the file sound_tf writes there \(no "
                                          r"column epoch; its first line: 'split,path,label'\)$"):
        plot_curves(csv_path, tmp_path / "curves.png")


def test_empty_cells_of_history_csv_are_nan_and_skipped_by_the_marks(tmp_path, monkeypatch):
    """An empty cell of history.csv (a column that epoch did not log, an epoch cell lost) is NaN: read as 0.0 the
    lowest validation loss was marked at 0.000 on an epoch without one, and forward-filled it was an epoch's score
    it never had. An epoch column with an empty cell is not used (1..n instead), where its NaN named "(epoch nan)".
    A history.csv of no header at all is an error naming it, and a learning_rate column wins over an old lr one."""
    import sound_tf.report as report

    csv_path = tmp_path / "history.csv"
    csv_path.write_text("epoch,loss,val_loss\n0,2.0,1.9\n1,1.5,\n2,1.2,1.6\n3,1.1,1.7\n", encoding="utf-8")
    history = load_history(csv_path)
    assert history["loss"] == [2.0, 1.5, 1.2, 1.1] and history["epoch"] == [0.0, 1.0, 2.0, 3.0]
    val = history["val_loss"]
    assert len(val) == 4 and np.isnan(val[1]) and [val[i] for i in (0, 2, 3)] == [1.9, 1.6, 1.7]
    drawn = {}
    monkeypatch.setattr(report, "_save", lambda fig, path, **kwargs: drawn.setdefault("fig", fig) and Path(path))
    plot_curves(csv_path, tmp_path / "curves.png")
    lowest = min(v for v in val if not np.isnan(v))  # 1.6, epoch 2 (0-based) drawn as epoch 3
    legend = [t.get_text() for t in drawn.pop("fig").axes[0].get_legend().get_texts()]
    assert legend[-1] == f"lowest validation loss {lowest:.3f} (epoch {val.index(lowest) + 1})" == \
        "lowest validation loss 1.600 (epoch 3)"
    # an epoch cell lost: the epochs are counted 1..n
    csv_path.write_text("epoch,loss,val_loss\n0,2.0,1.9\n,1.5,1.4\n2,1.2,1.6\n", encoding="utf-8")
    plot_curves(csv_path, tmp_path / "curves.png")
    loss = drawn.pop("fig").axes[0]
    assert list(loss.lines[0].get_xdata()) == [1, 2, 3]
    assert loss.get_legend().get_texts()[-1].get_text() == "lowest validation loss 1.400 (epoch 2)"
    csv_path.write_text("", encoding="utf-8")
    with pytest.raises(ReportError, match=rf"^{re.escape(str(csv_path))}: empty history file \(no header\)$"):
        load_history(csv_path)
    # a column of empty cells (no validation) draws no curve: the loss panel's legend is the training loss alone,
    # and a panel of nothing but empty columns says so
    csv_path.write_text("epoch,loss,val_loss,accuracy,val_accuracy\n0,2.0,,,\n1,1.5,,,\n", encoding="utf-8")
    plot_curves(csv_path, tmp_path / "curves.png")
    loss, accuracy = drawn.pop("fig").axes[:2]
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["train"] and len(loss.lines) == 1
    assert accuracy.get_legend() is None and [t.get_text() for t in accuracy.texts] == ["no accuracy recorded"]
    both = load_history({"loss": [1.0, 0.5], "learning_rate": [1e-3, 5e-4], "lr": [9.0, 9.0]})
    assert both["learning_rate"] == [1e-3, 5e-4] and both["lr"] == [9.0, 9.0]


def test_log_mel_to_db_conversions():
    power = np.array([[1e-4, 1.0, 100.0]])
    np.testing.assert_allclose(log_mel_to_db(np.log(power)), [[-40.0, 0.0, 20.0]], atol=1e-12)
    np.testing.assert_allclose(log_mel_to_db(np.log(power), "ln_magnitude"), [[-80.0, 0.0, 40.0]], atol=1e-12)
    np.testing.assert_array_equal(log_mel_to_db([[-3.0]], "db"), [[-3.0]])
    with pytest.raises(ReportError, match="'log10'"):
        log_mel_to_db(power, "log10")


def test_waveform_and_logmel_figure(tmp_path, rng, monkeypatch):
    sample_rate_hz, hop = 8000, 80
    t = np.arange(sample_rate_hz * 3) / sample_rate_hz  # 3 s: long enough to use the envelope
    wave = 0.5 * np.sin(2 * np.pi * 440 * t)
    frames = 1 + (wave.size - 200) // hop
    log_mel = np.log(rng.random((frames, 40)) * 1e-3 + 1e-6)  # [frames, mel_bins]
    log_mel[:, 12] = np.log(10.0)  # one loud band, 10 dB
    pixels = _pixels(plot_waveform_and_logmel(wave, log_mel, sample_rate_hz, hop, tmp_path / "w.png", title="a"))
    assert pixels.shape[:2] == (700, 1100)
    # The loud band is drawn in the brightest colour of the map (magma's top is a pale yellow).
    assert _near(pixels, np.array([252, 253, 191]), tol=8) > 500
    # ln(power) is drawn as 10 log10(power): the band of power 10 at 10 dB, the scale from -70 to 10 dB
    import sound_tf.report as report
    drawn = []
    monkeypatch.setattr(report, "_save", lambda fig, path, **kwargs: drawn.append(fig) or Path(path))
    plot_waveform_and_logmel(wave, log_mel, sample_rate_hz, hop, tmp_path / "captured.png")
    image = next(ax for ax in drawn[0].axes if ax.images).images[0]
    assert np.asarray(image.get_array()).max() == pytest.approx(10.0)
    assert image.get_clim() == pytest.approx((-70.0, 10.0))
    with pytest.raises(ReportError, match=r"\[frames, mel_bins\], got shape \(40,\)"):
        plot_waveform_and_logmel(wave, log_mel[0], sample_rate_hz, hop, tmp_path / "x.png")
    with pytest.raises(ReportError, match="hop_length_samples must be a positive integer, got 0"):
        plot_waveform_and_logmel(wave, log_mel, sample_rate_hz, 0, tmp_path / "x.png")


def test_waveform_and_logmel_sizes_are_whole_numbers_numpy_integers_too_never_a_bool(tmp_path):
    """sample_rate_hz=True (or a hop of True) passed as 1 Hz (one sample) and drew a figure of nonsense times."""
    wave, log_mel = np.zeros(800), np.zeros((9, 4))
    path = plot_waveform_and_logmel(wave, log_mel, np.int64(8000), np.int32(80), tmp_path / "np.png")
    assert path.is_file()
    for value in (True, np.True_, 2.0, "2", np.array(2)):
        with pytest.raises(ReportError,
                           match=rf"^sample_rate_hz must be a positive integer, got {re.escape(repr(value))}$"):
            plot_waveform_and_logmel(wave, log_mel, value, 80, tmp_path / "x.png")
        with pytest.raises(ReportError,
                           match=rf"^hop_length_samples must be a positive integer, got {re.escape(repr(value))}$"):
            plot_waveform_and_logmel(wave, log_mel, 8000, value, tmp_path / "x.png")
    with pytest.raises(ReportError,
                       match=r"^frame_length_samples must be an integer of at least the hop \(1\), got True$"):
        plot_waveform_and_logmel(wave, log_mel, 8000, 1, tmp_path / "x.png", frame_length_samples=True)


# -- report.html -------------------------------------------------------------------------------------
REPORT_LABELS = ["dog", "rooster", "<script>alert(1)</script>", "car_horn", "siren"]


@pytest.fixture(scope="module")
def report_inputs(tmp_path_factory):
    """Metrics and three real figures, made once for the report tests."""
    folder = tmp_path_factory.mktemp("figures")
    y, scores, labels = _predictions(np.random.default_rng(7), len(REPORT_LABELS), 12, REPORT_LABELS)
    m = compute_metrics(y, scores, labels)
    figures = {
        "Confusion matrix": plot_confusion_matrix(m["confusion_matrix"], labels, folder / "confusion_matrix.png"),
        "F1 per class": plot_per_class(m, folder / "per_class.png"),
        "Training curves": plot_curves({"loss": [2.0, 1.2, 0.9], "val_loss": [2.1, 1.5, 1.3],
                                        "accuracy": [0.3, 0.6, 0.7], "val_accuracy": [0.3, 0.5, 0.6],
                                        "learning_rate": [1e-3, 1e-3, 5e-4]}, folder / "curves.png"),
    }
    return m, figures


def _write_report(tmp_path, report_inputs, **overrides):
    m, figures = report_inputs
    kwargs = dict(
        title="Run <demo> & friends", metrics=m,
        config_dict={"audio": {"sample_rate_hz": 16000}, "labels": m["labels"]},
        dataset_summary={"source": "/data/sounds", "format": "folder",
                         "class_counts": {"train": {l: 40 for l in m["labels"]}, "test": {l: 12 for l in m["labels"]}}},
        figures=figures, skipped=[("/data/broken <1>.wav", "not an audio file")],
        notes=summary_lines(m))
    kwargs.update(overrides)
    return write_report_html(tmp_path / "report.html", **kwargs), figures, m


def test_report_embeds_every_figure_and_escapes_text(tmp_path, report_inputs):
    path, figures, m = _write_report(tmp_path, report_inputs)
    page = path.read_text(encoding="utf-8")
    assert page.count(DATA_URI) == len(figures) == 3
    uris = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert base64.b64decode(uris[0]) == figures["Confusion matrix"].read_bytes()
    # The label "<script>..." appears only escaped; there is no script of any kind.
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Run &lt;demo&gt; &amp; friends" in page and "/data/broken &lt;1&gt;.wav" in page
    # Self-contained: no external references of any kind.
    assert not re.search(r"https?://", page) and "<link" not in page and "@import" not in page
    assert not re.search(r'\bsrc="(?!data:image/png;base64,)', page)
    # The tables carry the numbers.
    assert f"<td class=\"num\">{m['accuracy']:.4f}</td>" in page
    from sound_tf.metrics import SCALAR_METRICS
    for key in SCALAR_METRICS:  # every overall score the metrics hold, each beside its name
        if key in m:
            assert f"<td>{key}</td><td class=\"num\">{m[key]:.4f}</td>" in page, key
    assert "<td>micro_f1</td>" in page and "<td>weighted_f1</td>" in page
    assert "<th>train</th><th>test</th><th>all</th>" in page
    assert "<td>total</td><td class=\"num\">200</td><td class=\"num\">60</td><td class=\"num\">260</td>" in page
    assert json.dumps({"sample_rate_hz": 16000}, indent=2)[1:-1].strip() in page.replace("&quot;", '"')


def test_a_class_without_evaluated_examples_shows_no_recall_or_f1(tmp_path, report_inputs):
    m, _ = report_inputs
    gone = m["labels"][3]
    metrics = {**m, "per_class": {**m["per_class"], gone: {**m["per_class"][gone], "recall": 0.0, "f1": 0.0,
                                                           "support": 0}}}
    page = _write_report(tmp_path, report_inputs, metrics=metrics)[0].read_text(encoding="utf-8")
    row = re.search(rf"<tr[^>]*><td>{gone}</td>(.*?)</tr>", page).group(1)
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row)[1:] == ["\u2013", "\u2013", "0"]  # not "0.0000": unmeasured
    assert "A class without evaluated examples (support 0) has no recall or F1" in page
    plain = _write_report(tmp_path / "plain", report_inputs)[0].read_text(encoding="utf-8")
    assert "has no recall or F1" not in plain


def test_skipped_files_given_as_a_mapping_or_bare_paths_are_listed_whole(tmp_path, report_inputs):
    """{path: reason} and a list of paths were read item[0], item[1]: the table listed the file "/" with the
    reason "d" (first and second characters of each path) instead of the files."""
    def rows(skipped):
        page = _write_report(tmp_path, report_inputs, skipped=skipped)[0].read_text(encoding="utf-8")
        section = re.search(r'<section id="skipped">(.*?)</section>', page).group(1)
        return re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td></tr>", section)

    assert rows({"/data/a.wav": "truncated", "/data/b.wav": "empty"}) == [("/data/a.wav", "truncated"),
                                                                          ("/data/b.wav", "empty")]
    assert rows(["/data/a.wav", Path("/data/b.wav")]) == [("/data/a.wav", ""), ("/data/b.wav", "")]
    assert rows([("/data/a.wav", "truncated")]) == [("/data/a.wav", "truncated")]


def test_a_note_given_as_one_string_is_one_line(tmp_path, report_inputs):
    """notes="..." was joined character by character: the summary showed one letter per line."""
    page = _write_report(tmp_path, report_inputs, notes="retrained on <new> data")[0].read_text(encoding="utf-8")
    assert '<pre class="notes">retrained on &lt;new&gt; data</pre>' in page
    page = _write_report(tmp_path, report_inputs, notes=["a", "b"])[0].read_text(encoding="utf-8")
    assert '<pre class="notes">a\nb</pre>' in page


def test_report_for_crossval_with_per_fold_table(tmp_path, rng):
    folds = [compute_metrics(*_predictions(rng, 3, 10, ["a", "b", "c"])) for _ in range(3)]
    agg = aggregate_folds(folds)
    per_fold = [{"fold": i + 1, "accuracy": f["accuracy"], "macro_f1": f["macro_f1"]} for i, f in enumerate(folds)]
    figures = {"Pooled confusion matrix": plot_confusion_matrix(agg["confusion_matrix"], agg["labels"],
                                                                tmp_path / "pooled.png")}
    path = write_report_html(tmp_path / "crossval.html", title="Cross-validation", metrics=agg, config_dict=None,
                             dataset_summary=None, figures=figures, extra_tables={"Per fold": per_fold})
    page = path.read_text(encoding="utf-8")
    assert page.count(DATA_URI) == 1
    assert "<th>metric</th><th>mean</th><th>std</th><th>pooled</th>" in page
    mean, std = agg["mean"]["accuracy"], agg["std"]["accuracy"]
    assert f'<td>accuracy</td><td class="num">{mean:.4f}</td><td class="num">{std:.4f}</td>' in page
    pooled = agg["pooled"]["accuracy"]  # top-1 pooled is the pooled accuracy; it read n/a
    assert f'<td>top_1</td><td class="num">{agg["mean"]["top_1"]:.4f}</td>' in page
    assert re.search(rf'<td>top_1</td>(<td class="num">[^<]*</td>){{2}}<td class="num">{pooled:.4f}</td>', page)
    assert "<p>3 folds, 90 held-out examples in all. Std = the population standard deviation over the folds" in page
    assert "<h3>Per fold</h3><table><thead><tr><th>fold</th><th>accuracy</th><th>macro_f1</th>" in page
    assert f"<td class=\"num\">{folds[2]['macro_f1']:.4f}</td>" in page


def test_figure_names_are_escaped_and_the_five_weakest_of_seven_classes_are_shaded(tmp_path, report_inputs):
    """A figure's name is escaped in its alt attribute and its caption, quotes too (a name with '"' ended the
    attribute), and the img has the PNG's width and height; of seven classes the five of lowest F1 are shaded,
    the two best not; the summary names what was evaluated; a one-fold summary's std is n/a, not nan."""
    from sound_tf.metrics import metrics_from_confusion

    _, figures = report_inputs
    name = 'Curves of "cats" & <dogs>'
    page = _write_report(tmp_path, report_inputs, figures={name: figures["Training curves"]})[0].read_text("utf-8")
    assert 'alt="Curves of &quot;cats&quot; &amp; &lt;dogs&gt;"' in page
    assert "<figcaption>Curves of &quot;cats&quot; &amp; &lt;dogs&gt; (curves.png)</figcaption>" in page
    with Image.open(figures["Training curves"]) as image:  # the img's size is the PNG's, width first
        assert f'width="{image.width}" height="{image.height}"' in page and image.width != image.height
    labels = [f"c{i}" for i in range(7)]
    cm = np.diag([10] * 7)
    for i in range(5):  # class i loses 5 - i of its 10 clips to class 6: recall (5 + i) / 10
        cm[i, i], cm[i, 6] = 5 + i, 5 - i
    m = metrics_from_confusion(cm, labels)
    page = write_report_html(tmp_path / "weak.html", title="t", metrics=m, config_dict=None, figures={},
                             dataset_summary={"evaluated": "clips_fold2"}).read_text(encoding="utf-8")
    assert f"<p>{int(cm.sum())} examples evaluated (clips_fold2).</p>" in page  # what evaluate scored, by name
    assert _table_rows(page, "dataset") == (["item", "value"], [["evaluated", "clips_fold2"]])  # and its item row
    shaded = re.findall(r'<tr class="weak"><td>([^<]*)</td>', page)
    by_f1 = sorted(labels, key=lambda label: m["per_class"][label]["f1"])
    assert sorted(shaded) == sorted(by_f1[:5]) and len(shaded) == 5 and "c5" not in shaded
    one = aggregate_folds([m])
    page = write_report_html(tmp_path / "one.html", title="t", metrics=one, config_dict=None, dataset_summary=None,
                             figures={}).read_text(encoding="utf-8")
    assert (f'<td>accuracy</td><td class="num">{m["accuracy"]:.4f}</td><td class="num">n/a</td>'
            f'<td class="num">{m["accuracy"]:.4f}</td>') in page


def test_an_extra_tables_columns_are_every_rows_keys_in_first_seen_order(tmp_path):
    """Rows of an extra table with other keys (a fold that wrote a score the first did not) each keep theirs: the
    columns are the union of the rows' keys in first-seen order, a row's missing cell left empty. The configuration
    is shown as indented JSON."""
    rows = [{"fold": 1, "accuracy": 0.5}, {"fold": 2, "top_3": 0.75, "accuracy": 1.0}]
    config = {"audio": {"sample_rate_hz": 16000, "clip_seconds": 1.0}, "labels": ["a", "<b>"]}
    page = write_report_html(tmp_path / "r.html", title="t", metrics=None, config_dict=config, dataset_summary=None,
                             figures={}, extra_tables={"Per fold": rows}).read_text(encoding="utf-8")
    shown = page.split('<section id="config">')[1].split("<pre>")[1].split("</pre>")[0]
    assert html.unescape(shown) == json.dumps(config, indent=2)  # the configuration indented, one setting a line
    header, cells = _table_rows(page, "more")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    assert header == columns == ["fold", "accuracy", "top_3"]
    shown = [["" if c not in row else str(row[c]) if isinstance(row[c], int) else f"{row[c]:.4f}" for c in columns]
             for row in rows]
    assert cells == shown == [["1", "0.5000", ""], ["2", "1.0000", "0.7500"]]


def test_report_rejects_missing_or_non_png_figures(tmp_path, report_inputs):
    with pytest.raises(ReportError, match="does not exist"):
        _write_report(tmp_path, report_inputs, figures={"gone": tmp_path / "gone.png"})
    (tmp_path / "fake.png").write_text("not a png")
    with pytest.raises(ReportError, match="not a PNG"):
        _write_report(tmp_path, report_inputs, figures={"fake": tmp_path / "fake.png"})
    assert not (tmp_path / "report.html").exists()
    # a list of PNGs failed with "'list' object has no attribute 'items'"
    with pytest.raises(ReportError, match=r"figures must map each figure's title to its PNG, .*got a list"):
        _write_report(tmp_path, report_inputs, figures=list(report_inputs[1].values()))
    assert not (tmp_path / "report.html").exists()


# -- headless Chromium -------------------------------------------------------------------------------
CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"
# Test-only probe, injected into a *copy* of the report (the report itself has no script): it records
# every resource or script error and, after the load event, each image's decoded size.
PROBE = """<script>
var probeErrors = [];
window.addEventListener('error', function (e) {
  var t = e.target || {};
  probeErrors.push((t.tagName || 'script') + ' ' + String(t.src || e.message || '').slice(0, 80));
}, true);
window.addEventListener('load', function () {
  var out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({errors: probeErrors, images: Array.prototype.map.call(document.images,
    function (im) { return [im.complete, im.naturalWidth, im.naturalHeight, im.getBoundingClientRect().width]; })});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = f"headless Chromium is needed to test report.html; install it with: {CHROMIUM_INSTALL}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _run_chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--force-device-scale-factor=1", "--window-size=1200,2000",
               f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
    return result


def test_report_renders_in_headless_chromium(tmp_path, report_inputs):
    path, figures, _ = _write_report(tmp_path, report_inputs)

    # 1. The page loads without errors and every figure decodes at its full PNG size.
    probed = tmp_path / "probed.html"
    probed.write_text(path.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    dom = _run_chromium(tmp_path, "--dump-dom", probed.as_uri()).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the page did not finish loading: {dom[:500]}"
    probe = json.loads(found.group(1))
    assert probe["errors"] == []
    expected = [Image.open(png).size for png in figures.values()]
    assert [(w, h) for _, w, h, _ in probe["images"]] == expected
    assert all(done and shown > 300 for done, _, _, shown in probe["images"])

    # 2. The unmodified report, rendered to pixels, shows the figures: the confusion matrix's dark
    #    diagonal cells are on screen in the first 2000 px.
    shot = tmp_path / "shot.png"
    _run_chromium(tmp_path, f"--screenshot={shot}", path.as_uri())
    pixels = _pixels(shot)
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 20  # not a blank page
    assert _near(pixels, BLUES_DARKEST, tol=20) > 1000


def test_confusion_matrix_normalises_each_true_row(tmp_path):
    # Row "cat" (true cat) is split evenly between dog and cat: in the row-normalised panel its two
    # cells are 0.5, half way up the colour map. Normalised by column (or drawn transposed) no cell is 0.5.
    cm = np.array([[20, 0, 0], [10, 10, 0], [0, 0, 20]])
    pixels = _pixels(plot_confusion_matrix(cm, ["dog", "cat", "bird"], tmp_path / "cm.png"))
    half_blue = np.round(255 * np.array(matplotlib.colormaps["Blues"](0.12 + 0.88 * 0.5)[:3]))
    right_panel = pixels[:, pixels.shape[1] // 2:]
    assert _near(right_panel, half_blue, tol=8) > 2 * 80 * 80  # two cells of about 100 x 100 px


def _table_rows(page: str, section_id: str) -> tuple[list[str], list[list[str]]]:
    section = page.split(f'<section id="{section_id}">')[1].split("</section>")[0]
    header = re.findall(r"<th>([^<]*)</th>", section)
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr[^>]*>(<td.*?)</tr>", section)]
    return header, rows


def test_per_class_and_pairs_tables_put_each_number_under_its_heading(tmp_path):
    from sound_tf.metrics import metrics_from_confusion

    # rows = true class:  precision         recall
    cm = [[8, 2, 0],    # dog      8/9        8/10
          [0, 5, 0],    # rooster  5/8        5/5
          [1, 1, 3]]    # siren    3/3        3/5
    m = metrics_from_confusion(cm, ["dog", "rooster", "siren"])
    # Training counts name a class the model does not have (whistle): it still gets its row, so the
    # rows add up to the total.
    summary = {"class_counts": {"train": {"dog": 3, "whistle": 2}, "test": {"dog": 1, "siren": 4}}}
    page = write_report_html(tmp_path / "r.html", title="t", metrics=m, config_dict=None, dataset_summary=summary,
                             figures={}).read_text(encoding="utf-8")
    header, rows = _table_rows(page, "per-class")
    assert header == ["class", "precision", "recall", "F1", "support"]
    assert rows == [["dog", f"{8 / 9:.4f}", "0.8000", f"{2 * (8 / 9) * 0.8 / (8 / 9 + 0.8):.4f}", "10"],
                    ["rooster", "0.6250", "1.0000", f"{2 * 0.625 / 1.625:.4f}", "5"],
                    ["siren", "1.0000", "0.6000", "0.7500", "5"]]
    assert page.count('<tr class="weak">') == 3  # "the five weakest": all three here
    header, rows = _table_rows(page, "confusions")
    assert header == ["true class", "predicted as", "count", "share of true class"]
    assert rows == [["dog", "rooster", "2", "20.0%"], ["siren", "dog", "1", "20.0%"],
                    ["siren", "rooster", "1", "20.0%"]]
    header, rows = _table_rows(page, "dataset")
    assert header == ["class", "train", "test", "all"]
    assert rows == [["dog", "3", "1", "4"], ["rooster", "0", "0", "0"], ["siren", "0", "4", "4"],
                    ["whistle", "2", "0", "2"], ["total", "5", "5", "10"]]
    assert "<h3>Class counts per split</h3>" in page


def test_a_crossval_reports_class_counts_per_fold_not_per_split(tmp_path):
    """An UrbanSound8K cross-validation's report (session 52) headed its table of fold 1 ... fold 10 columns 'Class
    counts per split'."""
    summary = {"class_counts": {"fold 1": {"siren": 3, "drilling": 2}, "fold 2": {"siren": 1, "drilling": 4}}}
    page = write_report_html(tmp_path / "r.html", title="t", metrics=None, config_dict=None, dataset_summary=summary,
                             figures={}).read_text(encoding="utf-8")
    assert "<h3>Class counts per fold</h3>" in page and "per split" not in page
    header, rows = _table_rows(page, "dataset")
    assert header == ["class", "fold 1", "fold 2", "all"]
    assert rows[-1] == ["total", "5", "5", "10"]


def test_crossval_report_of_one_fold_counts_it_in_the_singular(tmp_path):
    """crossval --folds 1 wrote '1 folds, 80 held-out examples in all.' in its report."""
    from sound_tf.metrics import metrics_from_confusion

    one = aggregate_folds([metrics_from_confusion([[3, 1], [0, 2]], ["a", "b"])])
    page = write_report_html(tmp_path / "cv.html", title="cv", metrics=one, config_dict=None,
                             dataset_summary=None, figures={}).read_text(encoding="utf-8")
    assert "<p>1 fold, 6 held-out examples in all. Std = " in page
    assert "1 folds" not in page


def test_crossval_report_tables_come_from_the_pooled_matrix(tmp_path):
    from sound_tf.metrics import metrics_from_confusion

    folds = [metrics_from_confusion([[3, 1], [0, 2]], ["a", "b"]), metrics_from_confusion([[1, 0], [2, 3]], ["a", "b"])]
    page = write_report_html(tmp_path / "cv.html", title="cv", metrics=aggregate_folds(folds), config_dict=None,
                             dataset_summary=None, figures={}).read_text(encoding="utf-8")
    # Pooled: a [4, 1] (precision 4/6, recall 4/5), b [2, 5] (precision 5/6, recall 5/7).
    f1 = lambda p, r: f"{2 * p * r / (p + r):.4f}"  # noqa: E731
    header, rows = _table_rows(page, "per-class")
    assert rows[:2] == [["a", f"{4 / 6:.4f}", "0.8000", f1(4 / 6, 4 / 5), "5"],
                        ["b", f"{5 / 6:.4f}", f"{5 / 7:.4f}", f1(5 / 6, 5 / 7), "7"]]
    # Over the folds, each weighing alike: a's precision 3/3 and 1/3, recall 3/4 and 1/1, F1 6/7 and 1/2; b's
    # precision 2/3 and 3/3, recall 2/2 and 3/5, F1 0.8 and 0.75 (mean, then the population std of two: half the gap)
    assert header[5:] == ["class", "folds", "precision mean", "precision std", "recall mean", "recall std", "F1 mean",
                          "F1 std"]
    assert rows[2:] == [["a", "2", "0.6667", "0.3333", "0.8750", "0.1250", f"{(6 / 7 + 0.5) / 2:.4f}",
                         f"{(6 / 7 - 0.5) / 2:.4f}"],
                        ["b", "2", "0.8333", "0.1667", "0.8000", "0.2000", "0.7750", "0.0250"]]
    header, rows = _table_rows(page, "confusions")
    assert rows == [["b", "a", "2", f"{2 / 7:.1%}"], ["a", "b", "1", "20.0%"]]


def test_figure_texts_and_bars_say_what_was_drawn(tmp_path, monkeypatch):
    """What the PNGs cannot show to a pixel test: titles, bar counts and the best-epoch marker."""
    import sound_tf.report as report

    drawn = {}

    def keep(fig, path, **kwargs):
        drawn[Path(path).name] = fig
        return Path(path)

    monkeypatch.setattr(report, "_save", keep)
    # 27 of 30 right: accuracy 0.900.
    plot_confusion_matrix(np.array([[9, 1, 0], [0, 10, 0], [2, 0, 8]]), ["a", "b", "c"], tmp_path / "cm.png")
    assert "(30 examples, accuracy 0.900)" in drawn["cm.png"].get_suptitle()
    # A class without examples gets no bar and is counted in the title.
    m = compute_metrics([0, 0, 1, 1], np.eye(3)[[0, 1, 1, 1]], ["a", "b", "c"])
    plot_per_class(m, tmp_path / "pc.png")
    ax = drawn["pc.png"].axes[0]
    assert len(ax.patches) == 2 and "1 class without examples not shown" in ax.get_title().replace("\n", " ")
    # Short labels leave the figure at its narrowest: the title (crossval's longer one too) is wrapped
    # inside it, where one line ran past both edges.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for title in (None, "F1 per class, pooled over 5 folds (weakest first)"):
        plot_per_class(m, tmp_path / "pc.png", title=title)
        fig = drawn["pc.png"]
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        box, page = fig.axes[0].title.get_window_extent(renderer), fig.bbox
        assert page.x0 <= box.x0 and box.x1 <= page.x1, (title, box, page)
        assert fig.axes[0].get_title().count("\n") >= 1
    # history.csv epochs are 0-based; the figure counts from 1, so the best (last) of 4 epochs is epoch 4.
    csv_path = tmp_path / "history.csv"
    csv_path.write_text("epoch,accuracy,val_accuracy\n0,0.3,0.2\n1,0.5,0.4\n2,0.6,0.5\n3,0.7,0.6\n")
    plot_curves(csv_path, tmp_path / "curves.png")
    legend = [t.get_text() for t in drawn["curves.png"].axes[1].get_legend().get_texts()]
    assert "highest validation accuracy 0.600 (epoch 4)" in legend
    # The epoch training keeps (lowest validation loss, 3) is marked on the loss, apart from the highest validation
    # accuracy (4): the walkthrough's run kept epoch 20 and its accuracy panel marked only 'best validation 0.708
    # (epoch 16)'.
    csv_path.write_text("epoch,loss,val_loss,val_accuracy\n0,2.0,1.9,0.2\n1,1.5,1.4,0.4\n2,1.2,0.95,0.5\n"
                        "3,1.0,1.1,0.6\n")
    plot_curves(csv_path, tmp_path / "curves.png")
    loss, accuracy = drawn["curves.png"].axes[:2]
    assert [t.get_text() for t in loss.get_legend().get_texts()] == [
        "train", "validation", "lowest validation loss 0.950 (epoch 3)"]
    assert [t.get_text() for t in accuracy.get_legend().get_texts()] == [
        "validation", "highest validation accuracy 0.600 (epoch 4)"]
    assert [line.get_xdata()[0] for line in loss.lines[2:]] == [3] and accuracy.lines[1].get_xdata()[0] == 4


def test_the_curves_legends_sit_under_their_panels_inside_the_figure(tmp_path, monkeypatch):
    """A 4-epoch run's train and validation lines cross everywhere, and the legend (with the kept epoch's mark, a
    long line) covered them wherever matplotlib put it inside the panel (the machine-sound walkthrough's finding):
    each legend is now below its panel, apart from every line and point drawn in it, and whole inside the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import sound_tf.report as report

    drawn = {}
    monkeypatch.setattr(report, "_save", lambda fig, path, **kwargs: drawn.setdefault("fig", fig) and Path(path))
    plot_curves({"epoch": [0, 1, 2, 3], "loss": [1.6, 1.2, 1.25, 0.9], "val_loss": [1.5, 1.45, 1.0, 1.3],
                 "accuracy": [0.3, 0.5, 0.55, 0.7], "val_accuracy": [0.35, 0.4, 0.6, 0.5],
                 "learning_rate": [1e-3, 1e-3, 5e-4, 5e-4]}, tmp_path / "curves.png")
    fig = drawn["fig"]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        panel = ax.get_window_extent(renderer)
        assert legend.y1 <= panel.y0, (ax.get_title(), legend, panel)  # nothing drawn in the panel is under it
        assert fig.bbox.x0 <= legend.x0 and legend.x1 <= fig.bbox.x1 and fig.bbox.y0 <= legend.y0, legend
