"""The on-device runner and the metadata embedded in .tflite files.

The models here are built with known behaviour instead of trained: a "loudness" classifier (logits
proportional to the window's power in dB, so silence is ``quiet`` and a tone is ``loud``) and a
"polarity" classifier with int8 input and output (the sign of the window's mean). Parity of the runner
with trained Keras models is in ``test_export.py``.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from conftest import device_blocker, device_pins, package_pins

from sound_tf import lite
from sound_tf.errors import AudioError, ConfigError
from sound_tf.tflite_meta import FORMAT, embed_metadata, read_metadata, strip_metadata

REPO = Path(__file__).resolve().parents[1]
SR = 8000
CLIP = 4000  # 0.5 s
HOP = 2000
THRESHOLD_DB = -30.0


def _info(**extra) -> dict:
    return {"sample_rate_hz": SR, "clip_samples": CLIP, "window_hop_samples": HOP, "input_kind": "waveform",
            "variant": "float32", **extra}


def _convert(fn: tf.types.experimental.GenericFunction, folder: Path, int8_io: bool = False) -> bytes:
    module = tf.Module()
    module.serve = fn
    tf.saved_model.save(module, str(folder), signatures={"serving_default": fn})  # named outputs
    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder))
    if int8_io:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (  # DC offsets from -0.9 to 0.9 plus a little noise
            [np.clip(offset + 0.05 * rng.standard_normal((1, CLIP)), -1, 1).astype(np.float32)]
            for offset in np.linspace(-0.9, 0.9, 20))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


@tf.function(input_signature=[tf.TensorSpec([None, CLIP], tf.float32, name="waveform")])
def _loudness(waveform):
    power_db = 10.0 * tf.math.log(tf.reduce_mean(tf.square(waveform), axis=1) + 1e-10) / np.log(10.0)  # [batch]
    loud = (power_db - THRESHOLD_DB) / 10.0
    logits = tf.stack([-loud, loud], axis=1)  # [batch, 2]: quiet, loud
    return {"logits": logits, "probabilities": tf.nn.softmax(logits)}


@tf.function(input_signature=[tf.TensorSpec([None, CLIP], tf.float32, name="waveform")])
def _polarity(waveform):
    mean = tf.reduce_mean(waveform, axis=1, keepdims=True)  # [batch, 1]
    logits = tf.concat([-8.0 * mean, 8.0 * mean], axis=1)  # [batch, 2]: negative, positive
    return {"logits": logits, "probabilities": tf.nn.softmax(logits)}


@tf.function(input_signature=[tf.TensorSpec([4, CLIP], tf.float32, name="waveform")])
def _loudness_batch4(waveform):  # the loudness model converted with a fixed batch of 4
    return _loudness(waveform)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("lite")
    loud_flat = _convert(_loudness, root / "loudness")
    loud = root / "loudness.tflite"
    loud.write_bytes(embed_metadata(loud_flat, labels=["quiet", "loud"], info=_info()))
    polarity = root / "polarity.tflite"
    polarity_flat = _convert(_polarity, root / "polarity", int8_io=True)
    polarity.write_bytes(embed_metadata(polarity_flat, labels=["negative", "positive"], info=_info(variant="int8")))
    bare = root / "bare.tflite"
    bare.write_bytes(loud_flat)
    batch4 = root / "batch4.tflite"
    batch4.write_bytes(embed_metadata(_convert(_loudness_batch4, root / "batch4"), labels=["quiet", "loud"],
                                      info=_info()))
    silence = root / "silence.tflite"  # the loudness model of a run whose quiet class is its silence class
    silence.write_bytes(embed_metadata(loud_flat, labels=["quiet", "loud"], info=_info(
        config={"data": {"silence_label": "quiet", "other_label": "_unknown_"}})))
    return {"loud": loud, "polarity": polarity, "bare": bare, "flat": loud_flat, "batch4": batch4, "silence": silence}


def _expected_db(windows: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.mean(windows.astype(np.float64) ** 2, axis=1) + 1e-10)


def test_metadata_round_trip_and_the_file_still_runs(models):
    meta = read_metadata(models["loud"])
    assert meta.labels == ("quiet", "loud") and meta.sample_rate_hz == SR
    assert (meta.clip_samples, meta.window_hop_samples) == (CLIP, HOP)
    assert meta.info["format"] == FORMAT and meta.model_size_bytes == len(models["flat"])
    data = models["loud"].read_bytes()
    assert strip_metadata(data) == models["flat"]
    assert zipfile.ZipFile(models["loud"]).read("labels.txt") == b"quiet\nloud\n"
    # embedding again replaces the archive instead of stacking a second one
    again = embed_metadata(data, labels=["a", "b"], info=_info())
    assert read_metadata(again).labels == ("a", "b") and strip_metadata(again) == models["flat"]
    time.sleep(2.1)  # the ZIP's dates have a 2-s resolution: the same model gives the same bytes at any time
    assert embed_metadata(data, labels=["a", "b"], info=_info()) == again
    entry = zipfile.ZipFile(io.BytesIO(again)).getinfo("labels.txt")
    assert entry.external_attr >> 16 == 0o644 and entry.compress_type == zipfile.ZIP_DEFLATED
    unusual = ["bird\u2028song", "dog\x85", "\u00e9t\u00e9 \u732b"]  # line separators other than \n are names
    assert read_metadata(embed_metadata(data, labels=unusual, info=_info())).labels == tuple(unusual)
    # the interpreter reads the model with the archive appended exactly as without it
    from ai_edge_litert.interpreter import Interpreter

    x = np.random.default_rng(0).uniform(-0.5, 0.5, (3, CLIP)).astype(np.float32)
    outputs = []
    for path in (models["bare"], models["loud"]):
        runner = Interpreter(model_path=str(path)).get_signature_runner()
        outputs.append(runner(waveform=x)["logits"])
    np.testing.assert_array_equal(outputs[0], outputs[1])
    np.testing.assert_allclose(outputs[1][:, 1], (_expected_db(x) - THRESHOLD_DB) / 10, atol=1e-3)


def test_metadata_errors_name_the_file_and_the_problem(models, tmp_path):
    with pytest.raises(ConfigError, match=r"bare.tflite: the model carries no labels or sample rate"):
        read_metadata(models["bare"])
    text = tmp_path / "notes.tflite"
    text.write_text("not a model")
    with pytest.raises(ConfigError, match=r"notes.tflite: not a TFLite model"):
        read_metadata(text)
    with pytest.raises(ConfigError, match="model file not found"):
        read_metadata(tmp_path / "missing.tflite")
    with pytest.raises(ConfigError, match="lacks \\['variant'\\]"):
        embed_metadata(models["flat"], labels=["a"], info={k: v for k, v in _info().items() if k != "variant"})
    with pytest.raises(ConfigError, match="without line breaks"):
        embed_metadata(models["flat"], labels=["a\nb"], info=_info())


def test_a_damaged_or_hand_made_archive_is_an_error_naming_the_file(models, tmp_path, capsys):
    data = models["loud"].read_bytes()
    start = len(strip_metadata(data))
    refused = 0
    for offset in range(start, len(data)):  # every single-bit flip in the archive: read as before, or refused
        damaged = bytearray(data)
        damaged[offset] ^= 1
        try:
            meta = read_metadata(bytes(damaged))
        except ConfigError as exc:
            assert str(exc).startswith("<bytes>: "), exc
            refused += 1
            continue
        assert (meta.labels, meta.sample_rate_hz, meta.clip_samples) == (("quiet", "loud"), SR, CLIP)
    assert refused > (len(data) - start) // 2
    damaged = bytearray(data)
    damaged[start + 30] ^= 1  # the first letter of labels.txt's name in its local header
    path = tmp_path / "flipped.tflite"
    path.write_bytes(bytes(damaged))
    assert lite.main([str(path), str(tmp_path / "any.wav")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: the model's metadata archive is damaged")

    def hand_made(info: dict | list, labels: bytes = b"quiet\nloud\n") -> bytes:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("labels.txt", labels)
            zipped.writestr("sound_tf.json", json.dumps(info))
        return models["flat"] + archive.getvalue()

    good = {"format": FORMAT, **_info()}
    for info, labels, problem in [
            (["not", "an", "object"], b"quiet\nloud\n", "holds a JSON list, not an object"),
            (good, b"qu\xe9t\nloud\n", "is not valid UTF-8 / JSON"),
            ({**good, "sample_rate_hz": "abc"}, b"quiet\nloud\n", "needs positive whole numbers"),
            ({**good, "window_hop_samples": 0}, b"quiet\nloud\n", "needs positive whole numbers"),
            ({**good, "window_hop_samples": CLIP + 1}, b"quiet\nloud\n", "window_hop_samples <= clip_samples")]:
        with pytest.raises(ConfigError, match=re.escape(problem)):
            read_metadata(hand_made(info, labels))


def test_a_truncated_empty_or_foreign_file_is_named_as_not_a_whole_model(models, tmp_path, capsys):
    """A model file cut short (a copy or download that stopped) lost the archive at its end, and read_metadata
    and LiteClassifier said it "carries no labels or sample rate" and to export it with labels; every cut is
    now a file that is not a complete model, as are an empty file, random bytes and a text file. A whole model
    without the archive keeps its message (a file cut exactly where the archive began is one)."""
    full, flat = models["loud"].read_bytes(), models["flat"]
    assert full.startswith(flat) and len(full) > len(flat)

    def refusal(source) -> str:
        with pytest.raises(ConfigError) as info:
            read_metadata(source)
        return str(info.value)

    incomplete = "not a complete TFLite model: "
    for size in range(8, len(flat)):  # every cut within the FlatBuffer: LiteRT's verifier refuses it
        assert re.fullmatch(rf"<bytes>: {incomplete}LiteRT refuses its {size} bytes \(.*[Ff]latbuffer.*\): the "
                            rf"file is truncated \(cut short\) or damaged; export or copy the model again",
                            refusal(full[:size])), size
    # Every cut within the archive from its first header's signature on (a file cut within those 4 bytes ends
    # in "P", "PK" or "PK\3" as a whole model may: it reads as one exported without the archive).
    for size in range(len(flat) + len(b"PK\x03\x04"), len(full)):
        assert refusal(full[:size]).startswith(
            f"<bytes>: {incomplete}its metadata archive (from byte {len(flat)} of {size}) has no end"), size
    for size in range(1, 8):
        assert refusal(full[:size]).startswith(f"<bytes>: not a TFLite model: only {size} bytes, short of its "
                                               f"8-byte header"), size
    for size in range(len(flat), len(flat) + 4):
        assert refusal(full[:size]).startswith("<bytes>: the model carries no labels or sample rate"), size
    # The header of the archive is looked for as written, not as any "PK\3\4" in the weights.
    assert refusal(flat + b"PK\x03\x04" + bytes(40)).startswith("<bytes>: the model carries no labels")
    half_with_archive = tmp_path / "half_with_archive.tflite"  # its metadata whole, its model not
    half_with_archive.write_bytes(embed_metadata(flat[:len(flat) // 2], labels=["quiet", "loud"], info=_info()))
    assert read_metadata(half_with_archive).labels == ("quiet", "loud")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(half_with_archive))}: LiteRT cannot load this model"):
        lite.LiteClassifier(half_with_archive)

    files = {"half.tflite": (full[:len(full) // 2], rf"{incomplete}LiteRT refuses its {len(full) // 2} bytes \("),
             "cut_archive.tflite": (full[:-1], rf"{incomplete}its metadata archive \(from byte {len(flat)} of "),
             "empty.tflite": (b"", r"not a TFLite model: the file is empty \(0 bytes"),
             "random.tflite": (np.random.default_rng(0).bytes(len(full)), r"not a TFLite model \(no TFL3 identifier"),
             "readme.tflite": (b"# My model\nTrained on my recordings.\n" * 20, r"not a TFLite model \(no TFL3 "),
             "bare.tflite": (flat, r"the model carries no labels or sample rate \(no associated-file archive: exported "
                                    r"without one")}
    for name, (content, problem) in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        expected = rf"^{re.escape(str(path))}: {problem}"
        with pytest.raises(ConfigError, match=expected):
            read_metadata(path)
        with pytest.raises(ConfigError, match=expected):
            lite.LiteClassifier(path)
    assert lite.main([str(tmp_path / "half.tflite"), str(tmp_path / "any.wav")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'half.tflite'}: {incomplete}")
    assert read_metadata(models["polarity"]).labels == ("negative", "positive")  # whole models still read
    # A ZIP of no members after a whole model (its end record alone) is no archive: not a damaged one.
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    assert strip_metadata(flat + empty.getvalue()) == flat + empty.getvalue()
    assert refusal(flat + empty.getvalue()).startswith("<bytes>: the model carries no labels or sample rate")


def test_predict_many_and_single_windows_agree(models):
    classifier = lite.LiteClassifier(models["loud"])
    assert classifier.labels == ("quiet", "loud") and classifier.sample_rate_hz == SR
    rng = np.random.default_rng(1)
    windows = rng.uniform(-1, 1, (37, CLIP)).astype(np.float32)
    windows *= np.geomspace(1e-4, 1, len(windows), dtype=np.float32)[:, None]  # -85 .. -5 dB
    out = classifier.predict(windows)
    np.testing.assert_allclose(out["logits"][:, 1], (_expected_db(windows) - THRESHOLD_DB) / 10, atol=1e-3)
    np.testing.assert_allclose(out["probabilities"], lite.softmax(out["logits"]), atol=1e-6)
    one_by_one = np.concatenate([classifier.predict_windows(w[None]) for w in windows])
    np.testing.assert_allclose(classifier.predict_windows(windows), one_by_one, atol=1e-6)
    with pytest.raises(ConfigError, match=r"expected windows of shape \[n >= 1, clip_samples=4000\], got shape \(2, 1"):
        classifier.predict_windows(np.zeros((2, 100), np.float32))


def test_int8_input_and_output_are_quantised_and_dequantised(models):
    classifier = lite.LiteClassifier(models["polarity"])
    assert classifier._input["dtype"] == np.int8
    offsets = np.array([-0.6, -0.2, 0.2, 0.6], np.float32)
    windows = offsets[:, None] + np.zeros((4, CLIP), np.float32)
    out = classifier.predict(windows)
    np.testing.assert_allclose(out["logits"][:, 1], 8 * offsets, atol=0.15)
    assert list(out["probabilities"].argmax(axis=1)) == [0, 0, 1, 1]
    assert classifier.classify(np.full(3 * CLIP, 0.4, np.float32))["label"] == "positive"


def test_aggregation_is_the_softmax_of_the_mean_logits():
    logits = np.array([[4.0, 0.0, -20.0], [0.0, 3.0, 0.0], [-1.0, 2.0, 50.0]])
    expected = np.exp(logits.mean(0)) / np.exp(logits.mean(0)).sum()
    np.testing.assert_allclose(lite.aggregate_logits(logits), expected)
    # mean log-probability gives the same numbers (log p differs from logits by a per-window constant)
    log_p = np.log(lite.softmax(logits))
    np.testing.assert_allclose(lite.aggregate_logits(log_p), expected)


def _sixty_seconds(path: Path, rate_hz: int = 16000) -> Path:
    """30 s of faint noise then 30 s of a 0.3-amplitude 440 Hz tone, stereo, at another rate."""
    rng = np.random.default_rng(2)
    half = 30 * rate_hz
    t = np.arange(half) / rate_hz
    mono = np.concatenate([1e-4 * rng.standard_normal(half), 0.3 * np.sin(2 * np.pi * 440 * t)])
    sf.write(path, np.stack([mono, mono], axis=1).astype(np.float32), rate_hz, subtype="PCM_16")
    return path


def test_a_sixty_second_file_gives_a_timeline(models, tmp_path):
    classifier = lite.LiteClassifier(models["loud"])
    result = classifier.classify_file(_sixty_seconds(tmp_path / "long.wav"), top_k=5)
    samples = 60 * SR
    expected_windows = 1 + int(np.ceil((samples - CLIP) / HOP))  # 239
    assert result["num_windows"] == len(result["windows"]) == expected_windows
    assert result["duration_seconds"] == pytest.approx(60.0, abs=1e-3) and result["hop_seconds"] == 0.25
    windows = result["windows"]
    assert [w["start_seconds"] for w in windows[:3]] == [0.0, 0.25, 0.5]
    assert windows[-1]["start_seconds"] == pytest.approx((expected_windows - 1) * HOP / SR)
    assert windows[-1]["end_seconds"] == pytest.approx(60.0)
    tone_db = 10 * np.log10(0.3 ** 2 / 2)  # -13.5 dB: p(loud) = sigmoid(2 * (tone_db - THRESHOLD_DB) / 10)
    tone_score = 1 / (1 + np.exp(-2 * (tone_db - THRESHOLD_DB) / 10))
    for w in windows:
        if w["end_seconds"] <= 30.0:
            assert w["label"] == "quiet" and w["probability"] > 0.999, w
        elif w["start_seconds"] >= 30.0:
            assert w["label"] == "loud" and w["probability"] == pytest.approx(tone_score, abs=2e-3), w
    assert len(result["top_k"]) == 2  # top_k is capped at the number of classes
    # the overall result is the mean of the windows' logits, as evaluation scores a clip
    wave = lite.load_audio(tmp_path / "long.wav", sample_rate_hz=SR)
    logits = classifier.predict(lite.split_windows(wave, clip_samples=CLIP, hop_samples=HOP))["logits"]
    assert result["probability"] == pytest.approx(lite.aggregate_logits(logits).max(), abs=1e-6)
    # a custom hop changes the window count
    assert classifier.classify(wave, hop_samples=CLIP)["num_windows"] == samples // CLIP


def test_results_use_the_field_names_of_predict(models, tmp_path):
    """One file read by ``lite`` and by ``predict --json`` gives the same names (the server's too):
    ``label``, ``probability``, ``top_k`` and windows numbered by ``index``."""
    from sound_tf.predict import Prediction

    result = lite.LiteClassifier(models["loud"]).classify_file(_sixty_seconds(tmp_path / "long.wav"), top_k=2)
    timeline = lite.window_timeline(np.array([[0.75, 0.25]]), ["loud", "quiet"], hop_samples=4, clip_samples=8,
                                    total_samples=6, sample_rate_hz=8, top_k=2)
    assert timeline == [{"index": 0, "start_seconds": 0.0, "end_seconds": 0.75, "label": "loud", "probability": 0.75,
                         "top_k": [{"label": "loud", "probability": 0.75}, {"label": "quiet", "probability": 0.25}]}]
    line = Prediction(file="x.wav", duration_s=1.0, top=[("loud", 0.75), ("quiet", 0.25)],
                      windows=timeline).to_json(with_windows=True)
    assert set(line) <= set(result), set(line) - set(result)
    assert set(result["top_k"][0]) == set(line["top_k"][0]) == {"label", "probability"}
    assert set(result["windows"][0]) == set(line["windows"][0])
    assert [len(w["top_k"]) for w in result["windows"]] == [2] * result["num_windows"]
    assert all(w["top_k"][0] == {"label": w["label"], "probability": w["probability"]} for w in result["windows"])
    assert [w["index"] for w in result["windows"]] == list(range(result["num_windows"]))
    assert result["probability"] == result["top_k"][0]["probability"] > 0.5


def test_a_short_hop_costs_no_memory_per_window(models, tmp_path):
    """Windows are views of one padded wave: at a 10-ms hop a minute is 6,000 windows, 96 MB as copies."""
    import tracemalloc

    classifier = lite.LiteClassifier(models["loud"])
    wave = lite.load_audio(_sixty_seconds(tmp_path / "long.wav"), sample_rate_hz=SR)  # [480000], 1.9 MB
    hop = SR // 100
    tracemalloc.start()
    try:
        result = classifier.classify(wave, hop_samples=hop)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    copies = result["num_windows"] * CLIP * 4
    assert result["num_windows"] == 1 + (wave.size - CLIP) // hop and copies > 90e6
    assert peak < 6 * wave.nbytes  # the padded wave, the outputs and the timeline's dicts
    expected = classifier.predict(lite.split_windows(wave, clip_samples=CLIP, hop_samples=hop)[::500])
    np.testing.assert_allclose([w["probability"] for w in result["windows"][::500]],
                               expected["probabilities"].max(axis=1), atol=1e-6)


def test_cli_prints_a_timeline_and_json(models, tmp_path, capsys):
    long = _sixty_seconds(tmp_path / "long.wav")
    short = tmp_path / "beep.wav"
    sf.write(short, 0.3 * np.sin(2 * np.pi * 440 * np.arange(SR // 4) / SR), SR, subtype="PCM_16")
    assert lite.main([str(models["loud"]), str(long), str(short), "--hop-seconds", "0.5"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].endswith("long.wav (60.00 s, 120 windows)") and text[1] == "   0.00-0.50 s  quiet  1.000"
    assert text[121].strip().startswith("overall: ")
    assert text[122:125] == ["  events (one top class over consecutive windows, each at >= 0.5):",
                             "     0.00-30.00 s: quiet (peak 1.000)",
                             "    30.00-60.00 s: loud (peak 0.965)"], text[122:]
    assert text[125].endswith("beep.wav (0.25 s, 1 window)") and text[126].strip().startswith("loud ")
    assert len(text) == 127  # a file of one window: no timeline, so no events

    assert lite.main([str(models["loud"]), str(short), str(tmp_path / "missing.wav"), "--json", "--top-k", "1"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["labels"] == ["quiet", "loud"] and report["sample_rate_hz"] == SR
    ok, bad = report["results"]
    assert ok["label"] == "loud" and len(ok["top_k"]) == 1 and ok["num_windows"] == 1
    assert bad["file"].endswith("missing.wav") and bad["error"] == "no such file or folder"  # as predict --json
    assert lite.main([str(models["loud"]), str(short), "--json", "--top-k", "5"]) == 0  # capped at the 2 classes
    assert [t["label"] for t in json.loads(capsys.readouterr().out)["results"][0]["top_k"]] == ["loud", "quiet"]

    # a folder is searched as predict searches it; files that are not audio by name are left out, and said so
    folder = tmp_path / "recordings"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "sub" / "b.flac", 0.3 * np.sin(2 * np.pi * 440 * np.arange(SR // 4) / SR), SR)
    sf.write(folder / "a.wav", np.zeros(SR // 4), SR)
    (folder / "phone.m4a").write_bytes(b"\0\0\0\x20ftypM4A ")
    (folder / ".hidden.wav").write_bytes(b"")
    assert lite.main([str(models["loud"]), str(folder), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert [(Path(r["file"]).name, r["label"]) for r in report["results"]] == [("a.wav", "quiet"), ("b.flac", "loud")]
    assert f"note: left out 1 file of the folders given, as its name does not end in an audio extension " \
           f"({folder / 'phone.m4a'}); convert it" in captured.err
    empty = tmp_path / "only_m4a"
    empty.mkdir()
    (empty / "x.m4a").write_bytes(b"")
    (empty / "y.m4a").write_bytes(b"")
    assert lite.main([str(models["loud"]), str(empty)]) == 1
    err = capsys.readouterr().err  # one input: its error alone, no count
    assert f"error: {empty}: folder holds no audio files (2 other files, e.g. x.m4a;" in err and "classified" not in err
    assert lite.main([str(models["loud"]), str(empty), str(tmp_path / "gone.wav")]) == 1
    assert capsys.readouterr().err.endswith("\nerror: no file could be classified\n")

    # a silent file's classes are said to be the model's answer to silence; the beep's are not
    assert lite.main([str(models["loud"]), str(folder / "a.wav"), str(short)]) == 0
    captured = capsys.readouterr()
    assert captured.err == (f"warning: {folder / 'a.wav'}: silent: every sample is zero (in 16-bit PCM) over its "
                            f"0.25 s; its classes are the model's answer to silence, not to a sound\n")
    assert lite.main([str(models["loud"]), str(folder / "a.wav"), str(short), "--json"]) == 0
    silent, beep = json.loads(capsys.readouterr().out)["results"]
    assert silent["warning"].startswith("silent: every sample is zero") and "warning" not in beep


_SLOW_LITE = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal (a background pytest ignores SIGINT)
from sound_tf import lite
classify_file = lite.LiteClassifier.classify_file
def slow(self, path, **kwargs):  # the second file takes a minute: the stop lands while the command works
    if str(path).endswith("slow.wav"):
        for _ in range(600):  # in slices: a signal the kernel hands another thread wakes no sleep of the main one
            time.sleep(0.1)
    return classify_file(self, path, **kwargs)
lite.LiteClassifier.classify_file = slow
sys.exit(lite.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_cli_stopped_says_one_line_and_exits_as_the_other_commands(models, tmp_path, name, code):
    """lite was the one command outside sound_tf.errors.run_cli: Ctrl-C printed a KeyboardInterrupt traceback (exit
    -2 as seen by its parent) and SIGTERM ended it without a word (-15), where every other command prints one line
    and exits with 130 or 143. The results printed before the stop stay printed."""
    import signal

    for stem in ("fast", "slow"):
        sf.write(tmp_path / f"{stem}.wav", (0.5 * np.sin(np.arange(CLIP) / 3)).astype(np.float32), SR)
    child = subprocess.Popen([sys.executable, "-u", "-c", _SLOW_LITE, str(models["loud"]), str(tmp_path / "fast.wav"),
                              str(tmp_path / "slow.wav"), "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answer = [child.stdout.readline(), child.stdout.readline()]  # the first file's, printed before the stop
    assert answer == [f"{tmp_path / 'fast.wav'} (0.50 s, 1 window)\n", "  loud 0.985, quiet 0.015\n"], answer
    child.send_signal(getattr(signal, name))
    out, err = child.communicate(timeout=30)
    stopped = "interrupted (Ctrl-C)" if name == "SIGINT" else f"stopped by {name}"
    assert (child.returncode, err) == (code, f"{stopped}; finished work is kept (train, crossval and tune resume from "
                                             f"it when the same command runs again)\n"), err
    assert out == "", out  # nothing of the second file's


_SLOW_LITE_SAYS = _SLOW_LITE.replace("        for _ in range(600):",
                                     "        print('slow', file=sys.stderr, flush=True)\n"
                                     "        for _ in range(600):")


@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_cli_json_stopped_prints_the_results_so_far_saying_so(models, tmp_path, name, code):
    """`lite --json`, stopped, printed nothing: the document came only at the end, and a script reading it (`| jq`)
    got empty input. Now the results so far are printed as the one document, with `stopped` (the signal) and
    `files_left` (the files not classified, the one being read included), and the code and stop line are as before.
    The stop lands while the third of four files (the slow one) is being read: it is told by a line on stderr."""
    import signal

    for stem in ("fast", "slow", "later"):
        sf.write(tmp_path / f"{stem}.wav", (0.5 * np.sin(np.arange(CLIP) / 3)).astype(np.float32), SR)
    files = [tmp_path / "fast.wav", tmp_path / "missing.wav", tmp_path / "slow.wav", tmp_path / "later.wav"]
    child = subprocess.Popen([sys.executable, "-u", "-c", _SLOW_LITE_SAYS, str(models["loud"]), *map(str, files),
                              "--json", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stderr.readline() == "slow\n"  # the two files before it are done
    child.send_signal(getattr(signal, name))
    out, err = child.communicate(timeout=30)
    stopped = "interrupted (Ctrl-C)" if name == "SIGINT" else f"stopped by {name}"
    assert (child.returncode, err) == (code, f"{stopped}; finished work is kept (train, crossval and tune resume from "
                                             f"it when the same command runs again)\n"), err
    report = json.loads(out)
    assert {key: report[key] for key in ("labels", "sample_rate_hz", "stopped", "files_left")} == {
        "labels": ["quiet", "loud"], "sample_rate_hz": SR, "stopped": name, "files_left": 2}
    assert [(r["file"], r.get("label"), r.get("error")) for r in report["results"]] == [
        (str(files[0]), "loud", None), (str(files[1]), None, "no such file or folder")]
    assert report["results"][0]["probability"] == pytest.approx(0.985, abs=0.0005)



_LITE_STOPPED_AT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal (a background pytest ignores SIGINT)
from sound_tf import lite
where, real = sys.argv.pop(1), {"load": lite.LiteClassifier.__init__, "list": lite.expand_audio_inputs}
def slow(*args, **kwargs):  # the model's load or the files' listing takes a minute: the stop lands in it
    print(where, file=sys.stderr, flush=True)
    time.sleep(60)
    return real[where](*args, **kwargs)
if where == "load":
    lite.LiteClassifier.__init__ = slow
else:
    lite.expand_audio_inputs = slow
sys.exit(lite.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("where, name, code", [("load", "SIGINT", 130), ("list", "SIGTERM", 143)])
def test_cli_json_stopped_before_its_files_are_listed_prints_the_document_too(models, tmp_path, where, name, code):
    """`lite --json` stopped while its model loaded or while it listed the files (a large folder) printed nothing on
    stdout, where a stop among the files printed the document: a script reading it (`| jq`) got empty input. Now the
    document comes from a stop anywhere, its results empty, `files_left` null (the files are not known yet), and the
    model's variant, labels and rate null while it loads."""
    import signal

    sf.write(tmp_path / "a.wav", (0.5 * np.sin(np.arange(CLIP) / 3)).astype(np.float32), SR)
    child = subprocess.Popen([sys.executable, "-u", "-c", _LITE_STOPPED_AT, where, str(models["loud"]),
                              str(tmp_path), "--json", "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stderr.readline() == f"{where}\n"
    child.send_signal(getattr(signal, name))
    out, err = child.communicate(timeout=30)
    stopped = "interrupted (Ctrl-C)" if name == "SIGINT" else f"stopped by {name}"
    assert (child.returncode, err) == (code, f"{stopped}; finished work is kept (train, crossval and tune resume from "
                                             f"it when the same command runs again)\n"), err
    loaded = where != "load"
    assert json.loads(out) == {"model": str(models["loud"]), "variant": "float32" if loaded else None,
                               "labels": ["quiet", "loud"] if loaded else None,
                               "sample_rate_hz": SR if loaded else None,
                               "results": [], "stopped": name, "files_left": None}, out


def test_cli_text_timeline_json_document_and_hop_flag_as_documented(models, tmp_path, capsys):
    """What the command prints that the other CLI tests leave open: a two-window file gets its timeline and overall
    line; --hop-seconds rounds to the nearest sample; an infinite or NaN hop is the flag's one-line error (it was an
    OverflowError's traceback waiting to happen); --json is an indented document naming the model, with the failed
    file in it and no 'error:' line; no file at all is a usage error."""
    quiet_then_loud = tmp_path / "qt.wav"  # 0.5 s of silence, then 0.5 s of a tone
    wave = np.concatenate([np.zeros(CLIP), 0.3 * np.sin(2 * np.pi * 440 * np.arange(CLIP) / SR)])
    sf.write(quiet_then_loud, wave, SR, subtype="PCM_16")
    assert lite.main([str(models["loud"]), str(quiet_then_loud), "--hop-seconds", "0.5", "--top-k", "1"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text == [f"{quiet_then_loud} (1.00 s, 2 windows)", "  0.00-0.50 s  quiet  1.000",
                    "  0.50-1.00 s  loud  0.965", "  overall: quiet 0.995",  # silence's logits outweigh the tone's
                    "  events (one top class over consecutive windows, each at >= 0.5):",
                    "    0.00-0.50 s: quiet (peak 1.000)", "    0.50-1.00 s: loud (peak 0.965)"], text

    # 0.00019 s is 1.52 samples at 8 kHz: 2, not 1 (the hop the JSON reports)
    assert lite.main([str(models["loud"]), str(quiet_then_loud), "--hop-seconds", "0.00019", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["hop_seconds"] == 2 / SR
    # one sample as a rounded 1/rate (a shell's printf, another rate's float) is one sample, not under it
    assert lite.main([str(models["loud"]), str(quiet_then_loud), "--hop-seconds", "0.00012499999999", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["hop_seconds"] == 1 / SR
    for bad in ("inf", "nan"):
        assert lite.main([str(models["loud"]), str(quiet_then_loud), "--hop-seconds", bad]) == 2
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", f"error: --hop-seconds must be from one sample (1/{SR} s) to the "
                                                    f"clip length (0.5 s), got {float(bad)}\n"), captured

    missing = tmp_path / "missing.wav"
    assert lite.main([str(models["loud"]), str(missing), "--json", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""  # the error is in the document, once
    assert captured.out.startswith(f'{{\n  "model": {json.dumps(str(models["loud"]))},\n  "variant": "float32",\n')
    assert json.loads(captured.out)["results"] == [{"file": str(missing), "error": "no such file or folder"}]
    with pytest.raises(SystemExit) as usage:
        lite.main([str(models["loud"])])
    assert usage.value.code == 2 and "the following arguments are required: FILE_OR_FOLDER" in capsys.readouterr().err



def test_cli_threads_flag_is_the_interpreters_thread_count(models, tmp_path, monkeypatch, capsys):
    """--threads sets the interpreter's threads, 1 by default (export.json's single-core latency): the results are the
    same either way, so only the classifier the command builds can tell."""
    built = []
    real = lite.LiteClassifier

    def recording(*args, **kwargs):
        built.append(real(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(lite, "LiteClassifier", recording)
    short = tmp_path / "beep.wav"
    sf.write(short, 0.3 * np.sin(2 * np.pi * 440 * np.arange(SR // 4) / SR), SR, subtype="PCM_16")
    assert lite.main([str(models["loud"]), str(short), "--quiet"]) == 0
    assert lite.main([str(models["loud"]), str(short), "--threads", "3", "--quiet"]) == 0
    assert [classifier.num_threads for classifier in built] == [1, 3]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[1] == lines[3] and lines[1].startswith("  loud 0.9")  # the same scores

class _Stdout:
    """A stdout whose writes fail: its reader went away (BrokenPipeError), or its terminal did (EIO, at SIGHUP)."""

    def __init__(self, error: OSError):
        self.error = error

    def write(self, text: str) -> int:
        raise self.error

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("error, code", [(BrokenPipeError(32, "Broken pipe"), 141),
                                         (OSError(5, "Input/output error"), 130)])
def test_cli_json_stopped_while_its_stdout_is_gone_ends_as_a_closed_pipe_or_as_the_stop(
        models, tmp_path, monkeypatch, capsys, error, code):
    """`lite --json` stopped prints the results so far; when that print fails, a reader that went away (`| head`) is
    141, quietly, as run_cli gives it, and a terminal gone with the SIGHUP still ends as the stop did (130 here, with
    its line), not with the print's OSError."""
    for stem in ("first", "second"):
        sf.write(tmp_path / f"{stem}.wav", np.zeros(CLIP), SR, subtype="PCM_16")
    classify_file = lite.LiteClassifier.classify_file

    def stopped_at_the_second(self, path, **kwargs):
        if str(path).endswith("second.wav"):
            raise KeyboardInterrupt
        return classify_file(self, path, **kwargs)

    monkeypatch.setattr(lite.LiteClassifier, "classify_file", stopped_at_the_second)
    monkeypatch.setattr(sys, "stdout", _Stdout(error))
    assert lite.main([str(models["loud"]), str(tmp_path / "first.wav"), str(tmp_path / "second.wav"), "--json",
                      "--quiet"]) == code
    err = capsys.readouterr().err
    assert err == ("" if code == 141 else "interrupted (Ctrl-C); finished work is kept (train, crossval and tune "
                                          "resume from it when the same command runs again)\n"), err


def test_cli_errors_are_one_line_naming_the_file(models, tmp_path):
    """Through run_cli as before it: a file that is no model is one line naming it and exit code 2 (a usage or
    model error), an unreadable audio file one line naming it and 1 (the others are classified)."""
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    command = [sys.executable, "-m", "sound_tf.lite", "--quiet"]
    done = subprocess.run([*command, str(notes), str(notes)], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (2, "") and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: {notes}: not a TFLite model"), done.stderr
    done = subprocess.run([*command, str(models["loud"]), str(notes)], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (1, "") and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: {notes}: not a readable audio file"), done.stderr


def test_cli_rejects_bad_models_and_options(models, capsys):
    assert lite.main([str(models["bare"]), "x.wav"]) == 2
    assert "carries no labels or sample rate" in capsys.readouterr().err
    assert lite.main([str(models["loud"]), "x.wav", "--hop-seconds", "2"]) == 2
    assert f"--hop-seconds must be from one sample (1/{SR} s) to the clip length (0.5 s), got 2.0" \
        in capsys.readouterr().err
    assert lite.main([str(models["loud"]), "x.wav", "--hop-seconds", "1e-5"]) == 2  # rounds to no sample at all
    assert "from one sample" in capsys.readouterr().err
    assert lite.main([str(models["loud"]), "x.wav", "--hop-seconds", str(0.8 / SR)]) == 2  # under one: not rounded up
    assert "from one sample" in capsys.readouterr().err
    assert lite.main([str(models["loud"]), "x.wav", "--hop-seconds", str(1 / SR)]) == 1  # one sample: the file fails
    assert "x.wav: no such file or folder" in capsys.readouterr().err
    assert lite.main([str(models["loud"]), "x.wav", "--top-k", "0"]) == 2  # errors name the flags typed
    assert "error: --top-k must be an integer >= 1, got 0" in capsys.readouterr().err
    assert lite.main([str(models["loud"]), "x.wav", "--threads", "0"]) == 2
    assert "error: --threads must be an integer >= 1, got 0" in capsys.readouterr().err


def test_help_says_which_model_a_device_needs_and_that_files_are_not_a_stream(capsys):
    """'python -m sound_tf.lite --help' said of MODEL 'a .tflite file written by python -m sound_tf.export' alone
    (session 51's Raspberry Pi walkthrough): not which of the bundle's six, that int8_features takes no audio, nor
    that the file carries its labels and rate; and of the files nothing of a microphone's stream."""
    with pytest.raises(SystemExit) as done:
        lite.main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ("a .tflite file written by python -m sound_tf.export, e.g. RUN/export/model_int8.tflite (or its "
            "float32, float16 or dynamic model; not model_int8_features.tflite, which takes features, not audio); its "
            "labels, rate and window sizes are inside it, so it is the one file a device needs") in text
    assert "files, not a stream: record a microphone to a file first" in text


def test_cli_given_a_folder_as_the_model_names_the_models_in_it(models, tmp_path, capsys):
    # an export bundle passed where one of its .tflite files belongs: not "model file not found"
    bundle = tmp_path / "export"
    bundle.mkdir()
    (bundle / "model_int8.tflite").write_bytes(models["loud"].read_bytes())
    (bundle / "model_float32.tflite").write_bytes(models["loud"].read_bytes())
    assert lite.main([str(bundle), "x.wav"]) == 2
    assert capsys.readouterr().err == (f"error: {bundle}: a folder, not a .tflite model file; pass one of the models "
                                       f"in it (model_float32.tflite, model_int8.tflite)\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"empty: a folder, not a .tflite model file; .*holds no .tflite file"):
        read_metadata(empty)


def test_cli_given_a_run_folder_as_the_model_names_its_exported_models(models, tmp_path, capsys):
    """A run folder passed where its model belongs (session 51's Raspberry Pi walkthrough: `lite runs/digits
    x.wav`) was told '(it holds no .tflite file)', true of the folder and no help: export writes the models into
    RUN/export. Its export/ models are named, the one for a device first; a run not yet exported is told to export."""
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "model.keras").write_bytes(b"keras")
    for variant in ("float32", "int8_features", "int8"):
        (run / "export" / f"model_{variant}.tflite").write_bytes(models["loud"].read_bytes())
    assert lite.main([str(run), "x.wav"]) == 2
    assert capsys.readouterr().err == (
        f"error: {run}: a folder, not a .tflite model file; its export/ folder holds the models (model_float32.tflite, "
        f"model_int8.tflite, model_int8_features.tflite): pass one of them, e.g. {run}/export/model_int8.tflite\n")
    (run / "export" / "model_int8.tflite").unlink()  # a float_only export: the first waveform model is named
    with pytest.raises(ConfigError, match=re.escape(f"pass one of them, e.g. {run}/export/model_float32.tflite")):
        read_metadata(run)
    for child in (run / "export").iterdir():
        child.unlink()
    (run / "export").rmdir()
    with pytest.raises(ConfigError, match=re.escape(
            f"{run}: a training run folder, not a .tflite model file, and not exported yet (no export/ folder of "
            f"models): export it first, `python -m sound_tf.export {run}`, then pass one of its models, e.g. "
            f"{run}/export/model_int8.tflite")):
        read_metadata(run)


def test_classify_rejects_bad_input(models):
    classifier = lite.LiteClassifier(models["loud"])
    with pytest.raises(AudioError, match=r"stereo.wav: expected mono samples of shape \[samples\], or \[samples, "
                                         r"channels\] to mix down, .*got shape \(2, 4000\): channels first\? pass it "
                                         r"as \[frames, channels\] \(wave.T\)"):
        classifier.classify(np.zeros((2, CLIP), np.float32), name="stereo.wav")
    with pytest.raises(AudioError, match=r"got shape \(2, 3, 4\)$"):
        classifier.classify(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(AudioError, match="finite float samples"):
        classifier.classify(np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudioError, match=r"pcm.wav: expected float samples .* got dtype int32; .*divide int32 by "
                                         r"2147483648"):
        classifier.classify(np.zeros(CLIP, np.int32), name="pcm.wav")
    with pytest.raises(ConfigError, match=r"hop_samples must be an integer in \[1, clip_samples=4000\]"):
        classifier.classify(np.zeros(CLIP, np.float32), hop_samples=0)
    with pytest.raises(ConfigError, match=r"hop_samples must be an integer in \[1, clip_samples=4000\], got 4001"):
        classifier.classify(np.zeros(CLIP, np.float32), hop_samples=CLIP + 1)  # windows with gaps between


def test_tied_classes_are_listed_in_class_order_by_predict_lite_and_the_server():
    from sound_tf.predict import _top

    tied = np.array([0.25, 0.25, 0.5], np.float32)
    assert [t["label"] for t in lite.top_classes(tied, ["a", "b", "c"], 3)] == ["c", "a", "b"]
    assert [label for label, _ in _top(tied, ["a", "b", "c"], 3)] == ["c", "a", "b"]


def test_runner_never_imports_tensorflow(models, tmp_path):
    # On the README's device: TensorFlow, Keras, scikit-learn, ... installed here but unimportable.
    wav = _sixty_seconds(tmp_path / "long.wav")
    code = (device_blocker() + "import json, sys\n"
            "from sound_tf.lite import LiteClassifier, main\n"
            f"result = LiteClassifier({str(models['loud'])!r}).classify_file({str(wav)!r})\n"
            f"status = main([{str(models['loud'])!r}, {str(wav)!r}, '--json'])\n"
            "heavy = sorted(m for m in [*sys.modules, *_device_refused]\n"
            "               if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
            "print(json.dumps({'heavy': heavy, 'windows': result['num_windows'], 'status': status}))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"heavy": [], "windows": 239, "status": 0}


def test_cli_whose_reader_went_away_exits_quietly(models, tmp_path):
    """``lite ... --json | head`` printed a BrokenPipeError traceback (and a second one at exit)."""
    wav = _sixty_seconds(tmp_path / "long.wav")
    child = subprocess.Popen([sys.executable, "-m", "sound_tf.lite", str(models["loud"]), str(wav), "--json"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.stdout.close()  # the reader is gone before the first line is written
    err = child.stderr.read()
    assert child.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipeError" not in err, err


def test_cli_quiet_leaves_out_the_runtimes_log_line_and_keeps_results_and_errors(models, tmp_path):
    """The TFLite runtime writes "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to stderr when the
    model loads; --quiet leaves it out and prints the results and the error on a missing file as before."""
    short = tmp_path / "beep.wav"
    sf.write(short, 0.3 * np.sin(2 * np.pi * 440 * np.arange(SR // 4) / SR), SR, subtype="PCM_16")
    command = [sys.executable, "-m", "sound_tf.lite", str(models["loud"]), str(short), str(tmp_path / "missing.wav")]
    plain, quiet = (subprocess.run(command + extra, cwd=REPO, capture_output=True, text=True, timeout=120)
                    for extra in ([], ["--quiet"]))
    missing = f"error: {tmp_path / 'missing.wav'}: no such file or folder\n"
    assert plain.returncode == quiet.returncode == 1
    missing += "error: 1 of 2 files could not be classified\n"  # the count at the end, as predict gives it
    assert plain.stderr == "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n" + missing
    assert quiet.stderr == missing
    assert quiet.stdout == plain.stdout and quiet.stdout.startswith(f"{short} (0.25 s, 1 window)\n  loud ")


def test_the_device_install_pins_what_the_package_pins():
    device, package = device_pins(), package_pins()
    assert {"numpy", "soundfile", "soxr", "ai-edge-litert", "fastapi", "uvicorn"} <= set(device)
    assert {name: package.get(name) for name in device} == device


def test_int8_probabilities_are_dequantised_to_probabilities(models):
    """The polarity model's int8 probabilities output has zero point -128: read back, they lie in [0, 1],
    sum to 1 and follow p(positive) = sigmoid(16 * offset)."""
    classifier = lite.LiteClassifier(models["polarity"])
    offsets = np.array([-0.6, -0.2, -0.05, 0.05, 0.2, 0.6], np.float32)
    probabilities = classifier.predict(offsets[:, None] + np.zeros((6, CLIP), np.float32))["probabilities"]
    assert probabilities.min() >= 0 and probabilities.max() <= 1
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1 / 128)
    np.testing.assert_allclose(probabilities[:, 1], 1 / (1 + np.exp(-16 * offsets)), atol=0.03)
    result = classifier.classify(np.full(CLIP, 0.2, np.float32))
    window = result["windows"][0]
    assert window["label"] == "positive" and window["probability"] == pytest.approx(1 / (1 + np.exp(-3.2)), abs=0.03)
    # one window: the window's and the recording's probability are one number (the int8 probabilities output
    # moves in steps of 1/256, the clip score comes from the logits)
    assert window["probability"] == result["probability"]


def test_a_padded_last_window_ends_with_the_recording(models):
    """1.1 s at a 0.25-s hop: windows start at 0, 0.25, 0.5 and 0.75 s and end at 0.5, 0.75, 1.0 and 1.1 s."""
    classifier = lite.LiteClassifier(models["loud"])
    result = classifier.classify(np.full(int(1.1 * SR), 0.1, np.float32))
    assert [(w["start_seconds"], w["end_seconds"]) for w in result["windows"]] == \
        [(0.0, 0.5), (0.25, 0.75), (0.5, 1.0), (0.75, 1.1)]
    short = classifier.classify(np.full(SR // 4, 0.1, np.float32))  # one zero-padded window
    assert [(w["start_seconds"], w["end_seconds"]) for w in short["windows"]] == [(0.0, 0.25)]


def test_hop_seconds_reports_the_hop_used(models, tmp_path, capsys):
    classifier = lite.LiteClassifier(models["loud"])
    wave = np.full(2 * SR, 0.1, np.float32)
    result = classifier.classify(wave, hop_samples=CLIP)
    assert (result["hop_seconds"], result["num_windows"]) == (0.5, 4)
    assert [w["start_seconds"] for w in result["windows"]] == [0.0, 0.5, 1.0, 1.5]
    path = tmp_path / "two.wav"
    sf.write(path, wave, SR, subtype="PCM_16")
    assert lite.main([str(models["loud"]), str(path), "--hop-seconds", "0.125", "--json"]) == 0
    [only] = json.loads(capsys.readouterr().out)["results"]
    assert (only["hop_seconds"], only["num_windows"]) == (0.125, 13)


def test_a_model_without_logits_is_aggregated_like_one_with_them(models):
    """Without a logits output the runner averages log-probabilities: the same clip score as the logits."""
    classifier = lite.LiteClassifier(models["loud"])
    windows = np.stack([np.full(CLIP, a, np.float32) for a in (0.5, 0.01, 0.003, 0.02)])  # -6 .. -50 dB
    loud = (_expected_db(windows) - THRESHOLD_DB) / 10  # the model's logits are [-loud, loud]
    mean = loud.mean()
    expected = np.array([np.exp(-mean), np.exp(mean)]) / (np.exp(-mean) + np.exp(mean))
    probabilities = classifier.predict(windows)["probabilities"]
    np.testing.assert_allclose(classifier.aggregate({"probabilities": probabilities}), expected, atol=1e-4)


def test_predict_refuses_integer_pcm(models):
    """int16 samples read as values up to 32767 would be scored confidently: refused, as classify does."""
    from sound_tf.errors import ConfigError

    classifier = lite.LiteClassifier(models["loud"])
    pcm = np.full((2, CLIP), 3000, np.int16)
    with pytest.raises(ConfigError, match=r"expected float samples in \[-1, 1\], got dtype int16"):
        classifier.predict_windows(pcm)


def test_predict_refuses_nan_or_inf_windows(models):
    """NaN windows gave NaN probabilities (float model) or plausible ones (int8 input: NaN quantised to some
    integer) without a word; refused, naming the window, as classify refuses such a wave."""
    for name in ("loud", "polarity"):
        classifier = lite.LiteClassifier(models[name])
        windows = np.full((3, CLIP), 0.3, np.float32)
        windows[1, 17] = np.nan
        with pytest.raises(ConfigError, match=r"expected finite float samples, got NaN or inf in window 1"):
            classifier.predict(windows)
        windows[1, 17], windows[2, 0] = 0.3, -np.inf
        with pytest.raises(ConfigError, match=r"NaN or inf in window 2"):
            classifier.predict_windows(windows)
        with pytest.raises(ConfigError, match=r"NaN or inf in window 0"):  # float64 beyond float32's range
            classifier.predict(np.full((1, CLIP), 1e39))
        windows[2, 0] = 0.3
        assert classifier.predict(windows)["probabilities"].shape == (3, 2)


def test_classify_refuses_integer_pcm_cast_to_floats(models):
    """int16 samples cast with .astype(np.float32), unscaled, were scored as values up to 32767 (the loudness
    model called them loud with certainty); whole numbers beyond +-1 are refused, real float audio is not."""
    classifier = lite.LiteClassifier(models["loud"])
    rng = np.random.default_rng(3)
    pcm = np.round(rng.uniform(-1, 1, 2 * CLIP) * 0.01 * 32767).astype(np.int16)  # a quiet recording, -40 dB
    assert classifier.classify(pcm / 32768.0)["label"] == "quiet"
    with pytest.raises(AudioError, match=r"rec.wav: expected float samples in \[-1, 1\], got whole numbers up to "
                                         r"32[0-9]\b.*divide 16-bit PCM by 32768"):
        classifier.classify(pcm.astype(np.float32), name="rec.wav")
    over = rng.uniform(-1.5, 1.5, CLIP).astype(np.float32)  # a float WAV may go past full scale: still scored
    assert classifier.classify(over)["num_windows"] == 1
    assert classifier.classify(np.array([0.0, 1.0, -1.0, 0.0], np.float32))["num_windows"] == 1  # whole, in range


def test_an_archive_whose_labels_or_format_disagree_is_refused(models):
    """sound_tf.json repeats the labels in output order and names its format; a labels.txt that lists other
    names (or the same in another order), another format version, or a size given as true is refused."""
    stored = json.loads(zipfile.ZipFile(models["loud"]).read("sound_tf.json"))
    assert stored["labels"] == ["quiet", "loud"] and stored["format"] == FORMAT == "sound_tf.tflite/1"

    def hand_made(info: dict, labels: bytes) -> bytes:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("labels.txt", labels)
            zipped.writestr("sound_tf.json", json.dumps(info))
        return models["flat"] + archive.getvalue()

    good = {"format": FORMAT, **_info(), "labels": ["quiet", "loud"]}
    assert read_metadata(hand_made(good, b"quiet\nloud\n")).labels == ("quiet", "loud")
    # a labels.txt edited on Windows (CRLF) names the same classes; a hop of one whole clip is allowed
    assert read_metadata(hand_made(good, b"quiet\r\nloud\r\n")).labels == ("quiet", "loud")
    assert read_metadata(hand_made({**good, "window_hop_samples": CLIP}, b"quiet\nloud\n")).window_hop_samples == CLIP
    for info, labels, problem in [
            (good, b"loud\nquiet\n", "labels.txt (['loud', 'quiet']) and sound_tf.json labels (['quiet', 'loud']) "
                                     "disagree"),
            (good, b"quiet\nloud\nrain\n", "disagree"),
            ({**good, "format": "sound_tf.tflite/2"}, b"quiet\nloud\n", "unsupported metadata format "
                                                                       "'sound_tf.tflite/2'"),
            ({**good, "sample_rate_hz": True}, b"quiet\nloud\n", "needs positive whole numbers")]:
        with pytest.raises(ConfigError, match=re.escape(problem)):
            read_metadata(hand_made(info, labels))


def test_classify_resamples_a_buffer_given_its_rate_as_a_file_of_that_rate(models, tmp_path):
    """An array cannot tell its rate: 2 s at 44.1 kHz given to the 8 kHz model without ``sample_rate_hz``
    is heard as 11 s. With it, the buffer is resampled as a 44.1 kHz file is, and both answers match."""
    classifier = lite.LiteClassifier(models["loud"])
    rate_hz = 44100
    t = np.arange(2 * rate_hz) / rate_hz
    wave = np.where(t < 1.0, 1e-4, 0.3) * np.sin(2 * np.pi * 440 * t)  # 1 s faint, then 1 s loud
    unaware = classifier.classify(wave.astype(np.float32))
    assert unaware["duration_seconds"] == pytest.approx(2 * rate_hz / SR)  # 11.025 s: the wrong clock
    given = classifier.classify(wave, sample_rate_hz=rate_hz, top_k=2)
    assert given["duration_seconds"] == pytest.approx(2.0, abs=1 / SR)
    assert given["num_windows"] == 1 + int(np.ceil((2 * SR - CLIP) / HOP))  # 7 windows of 0.5 s every 0.25 s
    assert [w["label"] for w in given["windows"]] == ["quiet"] * 3 + ["loud"] * 4  # the switch at 1.0 s
    sf.write(tmp_path / "rec.wav", wave.astype(np.float32), rate_hz, subtype="FLOAT")
    from_file = classifier.classify_file(tmp_path / "rec.wav", top_k=2)
    assert from_file["windows"] == given["windows"] and from_file["top_k"] == given["top_k"]
    assert classifier.classify(wave, sample_rate_hz=SR)["windows"] == classifier.classify(wave)["windows"]
    for bad in (0, 44100.0, True, 500_000):
        with pytest.raises(ConfigError, match=r"^source_rate_hz must be an integer in \[1000, 192000\]"):
            classifier.classify(wave, sample_rate_hz=bad)
    with pytest.raises(AudioError, match=r"^mic: expected finite float samples"):
        classifier.classify(np.full(100, np.nan), sample_rate_hz=rate_hz, name="mic")


def test_num_threads_takes_numpy_integers_as_top_k_and_hops_do(models):
    classifier = lite.LiteClassifier(models["loud"], num_threads=np.int64(2))
    assert classifier.num_threads == 2 and type(classifier.num_threads) is int
    assert classifier.classify(np.full(CLIP, 0.3, np.float32))["label"] == "loud"
    for bad in (0, 1.5, True, np.True_, "2"):
        with pytest.raises(ConfigError, match=rf"^num_threads must be an integer >= 1, got {bad!r}$"):
            lite.LiteClassifier(models["loud"], num_threads=bad)


def test_kernels_name_the_default_delegate_or_tflites_built_in_kernels_alone(models, tmp_path):
    """kernels="default" (XNNPACK) is what lite and serve run; "builtin" runs TFLite's own kernels without a delegate
    (export measures both): same answers on this float model, and anything else is refused before the file is read
    (this 0.5-s float model)."""
    default, builtin = lite.LiteClassifier(models["loud"]), lite.LiteClassifier(models["loud"], kernels="builtin")
    assert (default.kernels, builtin.kernels) == ("default", "builtin")
    windows = np.stack([np.full(CLIP, 0.3, np.float32), np.zeros(CLIP, np.float32)])
    np.testing.assert_allclose(builtin.predict(windows)["probabilities"], default.predict(windows)["probabilities"],
                               atol=1e-6)
    assert builtin.classify(windows[0])["label"] == "loud"
    for bad in ("xnnpack", "BUILTIN", None, 1):
        expected = rf"^kernels must be one of \['default', 'builtin'\], got {re.escape(repr(bad))}$"
        with pytest.raises(ConfigError, match=expected):
            lite.LiteClassifier(tmp_path / "missing.tflite", kernels=bad)


def test_a_whole_model_this_litert_cannot_build_is_not_called_truncated(models):
    """Without the archive, a model LiteRT refused for anything was "truncated (cut short) or damaged": a whole
    model from a newer converter ("Didn't find op for builtin opcode ... version ...") too. Only its FlatBuffer
    verifier's refusal says the file is cut short; such a model is one exported without the archive."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(models["flat"], 0))
    model.operatorCodes[0].version = 99  # an op version no LiteRT has yet
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    newer = bytes(builder.Output())
    with pytest.raises(ConfigError, match=r"^<bytes>: the model carries no labels or sample rate \(no associated-file "
                                          r"archive: exported without one"):
        read_metadata(newer)
    with pytest.raises(ConfigError, match=r"^<bytes>: not a complete TFLite model: LiteRT refuses its "):
        read_metadata(newer[:len(newer) // 2])  # cut short: still named so


def test_a_features_model_given_to_the_runner_says_where_features_json_is_and_names_the_waveform_model(
        models, tmp_path, capsys):
    """model_int8_features.tflite given to `lite` (session 51's Raspberry Pi walkthrough, with only the .tflite
    copied to the device) read 'compute its features as features.json describes, or use a waveform model':
    no word of where features.json is (inside the file, and beside it in the bundle) nor of which model is the
    waveform one. The refusal says both, naming the bundle's model_int8.tflite when it is there."""
    bundle = tmp_path / "export"
    bundle.mkdir()
    features = bundle / "model_int8_features.tflite"
    features.write_bytes(embed_metadata(models["flat"], labels=["quiet", "loud"], info=_info(input_kind="log_mel"),
                                        extra_files={"features.json": b"{}"}))
    for variant in ("float32", "int8"):
        (bundle / f"model_{variant}.tflite").write_bytes(models["loud"].read_bytes())
    assert lite.main([str(features), "x.wav"]) == 2
    assert capsys.readouterr().err == (
        f"error: {features}: this model takes 'log_mel' input (normalised log-mel features), not a waveform, so this "
        f"runner cannot feed it; it is for a device that computes the features itself as features.json describes "
        f"(in the export folder, and inside this file: python -m zipfile -e {features} DIR); to classify recordings "
        f"use a waveform model: {bundle}/model_int8.tflite\n")
    assert "features.json" in read_metadata(features).files  # where the message says it is
    (bundle / "model_int8.tflite").unlink()
    with pytest.raises(ConfigError, match=re.escape(f"use a waveform model: {bundle}/model_float32.tflite")):
        lite.LiteClassifier(features)


def test_metadata_that_does_not_fit_the_model_is_refused_when_it_loads(models, tmp_path):
    """LiteClassifier holds the archive to the graph it describes (found by a mutation pass: no test did): a
    features model (log-mel input), a clip size other than the model's input and more labels than outputs are
    refused naming the file; loaded, they failed at the first window with LiteRT's own error, or named
    classes with the wrong labels."""
    cases = {"features.tflite": (["quiet", "loud"], _info(input_kind="log_mel"),
                                 r"this model takes 'log_mel' input \(normalised log-mel features\), not a "
                                 r"waveform, so this runner cannot feed it; .* use a waveform model of the same "
                                 r"export \(model_int8.tflite or model_float32.tflite\)"),
             "long_clip.tflite": (["quiet", "loud"], _info(clip_samples=2 * CLIP),
                                  r"input shape \[-1, 4000\] does not match \[batch, clip_samples=8000\] from the "
                                  r"metadata"),
             "three_labels.tflite": (["quiet", "loud", "rain"], _info(),
                                     r"output '(logits|probabilities)' has 2 classes but the model carries 3 labels")}
    for name, (labels, info, problem) in cases.items():
        path = tmp_path / name
        path.write_bytes(embed_metadata(models["flat"], labels=labels, info=info))
        with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {problem}$"):
            lite.LiteClassifier(path)


def test_int8_input_past_its_range_saturates_instead_of_wrapping_round(models):
    """A float recording may go past full scale (classify scores it); the polarity model's int8 input covers about
    +-1.0. Quantised without clipping, 1.5 wrapped round to a negative integer and the window read as
    'negative' with certainty; clipped, it reads as the top of the range does."""
    classifier = lite.LiteClassifier(models["polarity"])
    scale, zero_point = classifier._input["quantization"]
    top, bottom = (127 - zero_point) * scale, (-128 - zero_point) * scale  # the range the int8 input holds
    assert 0.99 < top < 1.5 and -1.5 < bottom < -0.99  # measured: -0.996 .. 1.004
    past = classifier.predict(np.stack([np.full(CLIP, 1.5, np.float32), np.full(CLIP, -1.5, np.float32)]))
    edge = classifier.predict(np.stack([np.full(CLIP, top, np.float32), np.full(CLIP, bottom, np.float32)]))
    np.testing.assert_array_equal(past["logits"], edge["logits"])
    assert list(past["probabilities"].argmax(axis=1)) == [1, 0] and past["logits"][0, 1] > 7


def test_a_model_with_a_fixed_batch_gives_one_row_per_window(models):
    """A model converted with a fixed batch of 4 (not resizable) gets its windows 4 at a time, the last chunk
    padded with silence; the padding's rows are not answers (6 windows gave 8 rows of logits without the cut)."""
    classifier = lite.LiteClassifier(models["batch4"])
    assert classifier._batch == 4
    windows = np.stack([np.full(CLIP, a, np.float32) for a in (0.5, 0.01, 0.003, 0.2, 0.05, 0.001)])
    out = classifier.predict(windows)
    assert out["logits"].shape == out["probabilities"].shape == (6, 2)
    np.testing.assert_allclose(out["logits"][:, 1], (_expected_db(windows) - THRESHOLD_DB) / 10, atol=1e-3)
    result = classifier.classify(np.full(int(1.1 * SR), 0.1, np.float32))  # 4 windows: one whole batch
    assert result["num_windows"] == 4 and result["label"] == "loud"


def test_large_logits_give_probabilities_not_nan():
    """Softmax subtracts the largest logit first: logits past 709 overflow float64's exp to inf, and inf / inf
    made the clip's and the windows' probabilities NaN (a confident float model's logits are unbounded)."""
    logits = np.array([[1000.0, 0.0, -5.0], [990.0, 10.0, 0.0]])
    np.testing.assert_array_equal(lite.aggregate_logits(logits), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(lite.window_probabilities({"logits": logits}), [[1, 0, 0], [1, 0, 0]], atol=1e-300)
    np.testing.assert_allclose(lite.softmax([2000.0, 2000.0 + np.log(3)]), [0.25, 0.75], rtol=1e-12)


def test_cli_json_names_the_models_variant(models, tmp_path, capsys):
    short = tmp_path / "high.wav"
    sf.write(short, np.full(CLIP, 0.4), SR, subtype="FLOAT")
    assert lite.main([str(models["polarity"]), str(short), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["variant"], report["labels"], report["results"][0]["label"]) == ("int8", ["negative", "positive"],
                                                                                    "positive")


def test_classify_mixes_a_stereo_buffer_down_as_a_stereo_file_is(models, tmp_path):
    """soundfile.read gives a stereo file as [frames, 2]: classify refused it ("expected mono samples of shape
    [samples]"), though the same file given by name was mixed down; now both answer alike."""
    import logging

    classifier = lite.LiteClassifier(models["loud"])
    rate_hz = 44100
    t = np.arange(2 * rate_hz) / rate_hz
    left = np.where(t < 1.0, 1e-4, 0.3) * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, 0.5 * left], axis=1)  # [frames, 2], float64 as soundfile.read gives it
    sf.write(tmp_path / "stereo.wav", stereo.astype(np.float32), rate_hz, subtype="FLOAT")
    samples, rate = sf.read(tmp_path / "stereo.wav")
    assert samples.shape == (2 * rate_hz, 2)
    given, from_file = (classifier.classify(samples, sample_rate_hz=rate),
                        classifier.classify_file(tmp_path / "stereo.wav"))
    assert [w["label"] for w in given["windows"]] == ["quiet"] * 3 + ["loud"] * 4
    assert given["windows"] == from_file["windows"] and given["top_k"] == from_file["top_k"]
    at_model_rate = np.stack([np.zeros(CLIP), np.zeros(CLIP)], axis=1) + 0.3 * np.sin(np.arange(CLIP))[:, None]
    assert classifier.classify(at_model_rate)["label"] == classifier.classify(0.3 * np.sin(np.arange(CLIP)))["label"]
    said: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = said.append  # on the logger itself: a server test may have stopped it propagating
    audio_log = logging.getLogger("sound_tf.audio")
    audio_log.addHandler(handler)
    try:  # channels that cancel are said to, as in a file
        classifier.classify(np.stack([left, -left], axis=1), sample_rate_hz=rate, name="mic")
    finally:
        audio_log.removeHandler(handler)
    assert [r.getMessage().split(":")[0] for r in said] == ["mic"]
    with pytest.raises(AudioError, match=r"^pcm: expected float samples in \[-1, 1\], got dtype int16"):
        classifier.classify(np.zeros((CLIP, 2), np.int16), name="pcm")


def test_text_output_quotes_a_label_holding_a_space_comma_or_quote_as_predict_does():
    """A user's folder 'dog bark' printed '  dog bark 0.700, car, horn 0.200, cat 0.100': where one label ends could
    not be told. A label holding a space, a comma or a quote (or empty) is printed in double quotes now, in the
    overall line and the timeline, and predict's table and timeline print it the same; a plain one ('cat', '7') is
    as it was. JSON output is unchanged (its labels are strings)."""
    from sound_tf.predict import Prediction, table_rows

    assert [lite.shown_label(label) for label in ("cat", "7", "dog bark", "car, horn", 'say "hi"', "", "tab\there")] \
        == ["cat", "7", '"dog bark"', '"car, horn"', '"say \\"hi\\""', '""', '"tab\\there"']
    # a quote alone is quoted too, not only beside a space (a mutation pass, session 51, left quotes bare unseen)
    assert [lite.shown_label(label) for label in ("o'clock", 'a"b')] == ['"o\'clock"', '"a\\"b"']
    top = [{"label": "dog bark", "probability": 0.7}, {"label": "car, horn", "probability": 0.2},
           {"label": "cat", "probability": 0.1}]
    one = {"file": "a.wav", "duration_seconds": 0.5, "num_windows": 1, "top_k": top}
    assert lite._format_result(one).splitlines() == ["a.wav (0.50 s, 1 window)",
                                                     '  "dog bark" 0.700, "car, horn" 0.200, cat 0.100']
    two = {**one, "duration_seconds": 1.0, "num_windows": 2,
           "windows": [{"start_seconds": 0.0, "end_seconds": 0.5, "label": "dog bark", "probability": 0.9},
                       {"start_seconds": 0.5, "end_seconds": 1.0, "label": "cat", "probability": 0.6}]}
    events = [{"start_seconds": 0.0, "end_seconds": 0.5, "label": "dog bark", "peak_probability": 0.9,
               "first_window": 0, "last_window": 0}]
    two["events"] = events  # the events' labels and the heading's classes are quoted too
    assert lite._format_result(two, not_events=("car, horn", "cat")).splitlines()[1:] == [
        '  0.00-0.50 s  "dog bark"  0.900', "  0.50-1.00 s  cat  0.600",
        '  overall: "dog bark" 0.700, "car, horn" 0.200, cat 0.100',
        '  events (one top class over consecutive windows, each at >= 0.5, not "car, horn" or cat):',
        '    0.00-0.50 s: "dog bark" (peak 0.900)']
    prediction = Prediction(file="a.wav", duration_s=1.0, top=[("dog bark", 0.7), ("cat", 0.1)],
                            windows=[{"start_seconds": 0.0, "end_seconds": 0.5,
                                      "top_k": [{"label": "car, horn", "probability": 0.5}]}], events=events)
    assert table_rows(prediction, width=5, with_windows=True, min_probability=0.25) == [
        'a.wav  "dog bark" 0.700        cat 0.100', '      0.00 - 0.50 s       "car, horn" 0.500',
        "  events (one top class over consecutive windows, each at >= 0.25):",
        '    0.00-0.50 s: "dog bark" (peak 0.900)']


def _stand_in_timeline(probabilities, labels, *, hop_samples=2000, clip_samples=4000, total_samples=None):
    probabilities = np.asarray(probabilities, dtype=np.float64)  # [windows, classes]
    if total_samples is None:  # the last window ends with the recording
        total_samples = (len(probabilities) - 1) * hop_samples + clip_samples
    return lite.window_timeline(probabilities, labels, hop_samples=hop_samples, clip_samples=clip_samples,
                                total_samples=total_samples, sample_rate_hz=SR, top_k=1)


def test_window_events_merge_adjacent_windows_of_one_class_and_split_at_silence_or_a_low_window():
    """Session 52's Speech Commands walkthrough: noise, 'yes', noise, 'left', 'cat' in 5 s read 'overall: yes 0.203',
    every window averaged. The events are the runs of windows of one top class at min_probability or more, the
    silence and other classes left out. A stand-in sequence of 0.5-s windows every 0.25 s at 8 kHz (hop 2000, clip
    4000 samples) over 3.1 s: window i spans i * 0.25 to i * 0.25 + 0.5 s, the last ending at 3.1 s."""
    labels = ["_silence_", "_unknown_", "yes", "left"]
    rows = [[0.90, 0.04, 0.03, 0.03],  # 0  0.00-0.50  _silence_
            [0.10, 0.05, 0.80, 0.05],  # 1  0.25-0.75  yes
            [0.05, 0.05, 0.85, 0.05],  # 2  0.50-1.00  yes: merges with 1
            [0.05, 0.05, 0.55, 0.35],  # 3  0.75-1.25  yes 0.55, >= 0.5: merges
            [0.70, 0.10, 0.10, 0.10],  # 4  1.00-1.50  _silence_: splits
            [0.10, 0.05, 0.60, 0.25],  # 5  1.25-1.75  yes again: a second event
            [0.10, 0.10, 0.40, 0.40],  # 6  1.50-2.00  yes at 0.40, below 0.5: splits (ties keep class order)
            [0.05, 0.05, 0.20, 0.70],  # 7  1.75-2.25  left
            [0.05, 0.05, 0.10, 0.80],  # 8  2.00-2.50  left: merges with 7
            [0.05, 0.60, 0.20, 0.15],  # 9  2.25-2.75  _unknown_: splits
            [0.05, 0.05, 0.40, 0.50],  # 10 2.50-3.00  left at exactly 0.5: an event
            [0.10, 0.10, 0.10, 0.70]]  # 11 2.75-3.10  left, the padded last window: ends at 3.1 s
    timeline = _stand_in_timeline(rows, labels, total_samples=int(3.1 * SR))
    assert [w["end_seconds"] for w in timeline[-2:]] == [3.0, 3.1]
    events = lite.window_events(timeline, min_probability=0.5, leave_out=("_silence_", "_unknown_"))
    assert [(e["start_seconds"], e["end_seconds"], e["label"], e["peak_probability"], e["first_window"],
             e["last_window"]) for e in events] == [(0.25, 1.25, "yes", 0.85, 1, 3), (1.25, 1.75, "yes", 0.6, 5, 5),
                                                    (1.75, 2.5, "left", 0.8, 7, 8), (2.5, 3.1, "left", 0.7, 10, 11)]
    assert list(events[0]) == ["start_seconds", "end_seconds", "label", "peak_probability", "first_window",
                               "last_window"]
    # a higher threshold drops window 3 (0.55) and 5 (0.60) and splits 10 (0.5) from 11 (0.7)
    strict = lite.window_events(timeline, min_probability=0.6, leave_out=("_silence_", "_unknown_"))
    assert [(e["start_seconds"], e["end_seconds"], e["label"]) for e in strict] == [
        (0.25, 1.0, "yes"), (1.25, 1.75, "yes"), (1.75, 2.5, "left"), (2.75, 3.1, "left")]
    # a model without silence or other classes: the threshold alone, so silence and _unknown_ are events too
    plain = lite.window_events(timeline, min_probability=0.5)
    assert [(e["start_seconds"], e["end_seconds"], e["label"]) for e in plain] == [
        (0.0, 0.5, "_silence_"), (0.25, 1.25, "yes"), (1.0, 1.5, "_silence_"), (1.25, 1.75, "yes"),
        (1.75, 2.5, "left"), (2.25, 2.75, "_unknown_"), (2.5, 3.1, "left")]
    assert lite.window_events(timeline, min_probability=0.0, leave_out=labels) == []
    assert lite.window_events([], min_probability=0.5) == []
    # windows of one hop and length (no overlap): an event of 3 windows of 1 s spans 3 s
    seconds = _stand_in_timeline([[0.9, 0.1]] * 3 + [[0.2, 0.8]], ["dog", "rain"], hop_samples=SR, clip_samples=SR)
    assert [(e["start_seconds"], e["end_seconds"], e["label"], e["peak_probability"])
            for e in lite.window_events(seconds)] == [(0.0, 3.0, "dog", 0.9), (3.0, 4.0, "rain", 0.8)]


def test_events_leave_out_the_runs_silence_and_other_classes_that_the_model_has():
    labels = ("_silence_", "yes", "no")
    assert lite.not_event_labels(labels, silence_label="_silence_", other_label="_unknown_") == ("_silence_",)
    assert lite.not_event_labels(labels, silence_label=None, other_label=None) == ()
    assert lite.not_event_labels([*labels, "_unknown_"], silence_label="_silence_", other_label="_unknown_") == (
        "_silence_", "_unknown_")
    assert lite.check_min_probability(np.float32(0.25)) == 0.25 and lite.check_min_probability(1) == 1.0
    for bad in (-0.1, 1.5, float("nan"), "half", None, True):
        with pytest.raises(ConfigError, match=r"^--min-probability must be a probability from 0 to 1, got "):
            lite.check_min_probability(bad, name="--min-probability")


def test_cli_prints_events_after_the_windows_and_json_lists_them(models, tmp_path, capsys):
    """End to end with the loudness model: 0.5-s windows of silence, a loud tone (p(loud) 0.965) and a faint one
    (0.05 amplitude: -29.0 dB, p(loud) = sigmoid(2 * 0.97 / 10) = 0.548). The model whose metadata names quiet as its
    run's silence class leaves quiet out of the events; the plain loudness model (no config) makes them events too."""
    t = np.arange(CLIP) / SR
    tone, faint, silence = 0.3 * np.sin(2 * np.pi * 440 * t), 0.05 * np.sin(2 * np.pi * 440 * t), np.zeros(CLIP)
    path = tmp_path / "calls.wav"  # 3.5 s: silence, tone, tone, silence, tone, faint, tone
    sf.write(path, np.concatenate([silence, tone, tone, silence, tone, faint, tone]), SR, subtype="FLOAT")
    faint_p = 1 / (1 + np.exp(-2 * (10 * np.log10(0.05 ** 2 / 2) - THRESHOLD_DB) / 10))
    assert faint_p == pytest.approx(0.548, abs=1e-3)

    assert lite.LiteClassifier(models["silence"]).not_events == ("quiet",)
    assert lite.LiteClassifier(models["loud"]).not_events == ()
    assert lite.main([str(models["silence"]), str(path), "--hop-seconds", "0.5", "--top-k", "1"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[1:8] == ["  0.00-0.50 s  quiet  1.000", "  0.50-1.00 s  loud  0.965", "  1.00-1.50 s  loud  0.965",
                         "  1.50-2.00 s  quiet  1.000", "  2.00-2.50 s  loud  0.965", "  2.50-3.00 s  loud  0.548",
                         "  3.00-3.50 s  loud  0.965"], text
    assert text[9:] == ["  events (one top class over consecutive windows, each at >= 0.5, not quiet):",
                        "    0.50-1.50 s: loud (peak 0.965)", "    2.00-3.50 s: loud (peak 0.965)"], text
    # at 0.8 the faint window splits the second event in two
    assert lite.main([str(models["silence"]), str(path), "--hop-seconds", "0.5", "--min-probability", "0.8"]) == 0
    assert capsys.readouterr().out.splitlines()[9:] == [
        "  events (one top class over consecutive windows, each at >= 0.8, not quiet):",
        "    0.50-1.50 s: loud (peak 0.965)", "    2.00-2.50 s: loud (peak 0.965)",
        "    3.00-3.50 s: loud (peak 0.965)"]
    assert lite.main([str(models["loud"]), str(path), "--hop-seconds", "0.5"]) == 0
    assert capsys.readouterr().out.splitlines()[9:] == [
        "  events (one top class over consecutive windows, each at >= 0.5):", "    0.00-0.50 s: quiet (peak 1.000)",
        "    0.50-1.50 s: loud (peak 0.965)", "    1.50-2.00 s: quiet (peak 1.000)",
        "    2.00-3.50 s: loud (peak 0.965)"]

    # JSON at the default hop (0.25 s): overlapping windows, each event from its first start to its last end
    assert lite.main([str(models["silence"]), str(path), "--json", "--min-probability", "0.9"]) == 0
    result = json.loads(capsys.readouterr().out)["results"][0]
    windows, events = result["windows"], result["events"]
    assert result["num_windows"] == 13 and [w["label"] for w in windows] == (
        ["quiet"] + ["loud"] * 5 + ["quiet"] + ["loud"] * 6)  # a window half tone, half silence is loud
    for event in events:
        first, last = windows[event["first_window"]], windows[event["last_window"]]
        assert (event["start_seconds"], event["end_seconds"]) == (first["start_seconds"], last["end_seconds"])
        assert event["peak_probability"] == max(w["probability"] for w in windows[first["index"]:last["index"] + 1])
        assert all(w["probability"] >= 0.9 and w["label"] == "loud" for w in windows[first["index"]:last["index"] + 1])
    spans = [(e["first_window"], e["last_window"]) for e in events]
    expected, run_start = [], None  # the runs of loud windows at >= 0.9, counted here from the windows themselves
    for w in windows + [{"label": "quiet", "probability": 1.0, "index": len(windows)}]:
        if w["label"] == "loud" and w["probability"] >= 0.9:
            run_start = w["index"] if run_start is None else run_start
        elif run_start is not None:
            expected, run_start = expected + [(run_start, w["index"] - 1)], None
    assert spans == expected and len(spans) >= 3, (spans, [(w["label"], w["probability"]) for w in windows])
    assert events[0]["start_seconds"] == 0.25 and events[-1]["end_seconds"] == 3.5

    # a silent file has no events; a bad threshold is the flag's one-line error before the model loads
    assert lite.LiteClassifier(models["silence"]).classify(np.zeros(3 * CLIP, np.float32))["events"] == []
    assert lite.main([str(tmp_path / "no_model.tflite"), str(path), "--min-probability", "2"]) == 2
    assert capsys.readouterr().err == "error: --min-probability must be a probability from 0 to 1, got 2.0\n"
