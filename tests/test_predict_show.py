"""sound_tf.predict (table, JSON lines, window timeline, bad files) and sound_tf.show (the figure)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sound_tf.config import Config, apply_overrides

SR = 8000
TONES_HZ = {"high": 2200.0, "low": 300.0, "mid": 900.0}


def write_tone(path: Path, freq_hz: float, seconds: float, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * SR))) / SR
    wave = 0.3 * np.sin(2 * np.pi * freq_hz * t) + 0.02 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), SR, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from sound_tf.trainer import train_run

    root = tmp_path_factory.mktemp("predict")
    for index, (label, freq) in enumerate(TONES_HZ.items()):
        for i in range(6):
            write_tone(root / "data" / label / f"{label}_{i}.wav", freq * (0.97 + 0.01 * i), 0.5, seed=10 * index + i)
    config = apply_overrides(Config(), {
        "data.path": str(root / "data"), "data.format": "folder", "audio.sample_rate_hz": SR,
        "audio.clip_seconds": 0.5, "augment.enabled": False, "model.widths": [8, 16], "train.epochs": 2,
        "train.batch_size": 8, "train.learning_rate": 0.02, "train.warmup_epochs": 0})
    return train_run(config, root / "run", verbose=0, log=lambda message: None)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_predict_json_lines_with_window_timeline(run, tmp_path, capsys):
    from sound_tf import predict
    from sound_tf.audio import load_audio, split_windows

    config = run.config
    long_file = tmp_path / "in" / "long.wav"  # 2.3 s: windows of 0.5 s every 0.25 s
    long_file.parent.mkdir()
    sf.write(long_file, np.concatenate([load_audio(write_tone(tmp_path / "a.wav", 300.0, 1.2), sample_rate_hz=SR),
                                        load_audio(write_tone(tmp_path / "b.wav", 2200.0, 1.1), sample_rate_hz=SR)]),
             SR, subtype="PCM_16")
    short_file = write_tone(tmp_path / "in" / "short.wav", 900.0, 0.3)
    broken = tmp_path / "in" / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00 not a wave file")

    code = predict.main([str(run.run_dir), str(tmp_path / "in"), "--json", "--windows", "--top-k", "2"])
    captured = capsys.readouterr()
    assert code == 1 and "error: 1 of 3 files could not be classified" in captured.err  # as lite: the rest printed
    lines = [json.loads(line) for line in captured.out.splitlines()]
    by_name = {Path(line["file"]).name: line for line in lines}
    assert set(by_name) == {"broken.wav", "long.wav", "short.wav"}
    assert by_name["broken.wav"]["error"] and "skipping" in captured.err and "broken.wav" in captured.err

    hop, clip = config.audio.window_hop_samples, config.audio.clip_samples
    assert (hop, clip) == (2000, 4000)
    long = by_name["long.wav"]
    samples = int(round(2.3 * SR))
    expected_windows = 1 + int(np.ceil((samples - clip) / hop))
    assert long["num_windows"] == len(long["windows"]) == expected_windows == 9
    assert [w["start_seconds"] for w in long["windows"]] == pytest.approx([i * 0.25 for i in range(9)])
    assert long["windows"][-1]["end_seconds"] == pytest.approx(2.3) and long["duration_seconds"] == pytest.approx(2.3)
    assert by_name["short.wav"]["num_windows"] == 1

    # The file's answer is the softmax of the mean window logits; each window's answer its own softmax.
    windows = split_windows(load_audio(long_file, sample_rate_hz=SR), clip_samples=clip, hop_samples=hop)
    logits = np.asarray(run.model(windows, training=False), dtype=np.float64)  # [windows, classes]
    overall = _softmax(logits.mean(axis=0))
    best = np.argsort(-overall, kind="stable")[:2]
    assert [t["label"] for t in long["top_k"]] == [config.labels[i] for i in best]
    assert long["label"] == config.labels[best[0]]
    # the line's own probability is its label's, the first of top_k (a mutation pass gave it the last one's unseen)
    assert long["probability"] == long["top_k"][0]["probability"] == pytest.approx(overall[best[0]], abs=1e-5)
    assert [t["probability"] for t in long["top_k"]] == pytest.approx(overall[best], abs=1e-5)
    per_window = _softmax(logits)
    for window, probs in zip(long["windows"], per_window):
        assert len(window["top_k"]) == 2 and window["top_k"][0]["label"] == window["label"]
        assert window["label"] == config.labels[int(np.argmax(probs))]
        assert window["probability"] == pytest.approx(probs.max(), abs=1e-5)


def test_predict_agrees_with_evaluation_and_prints_a_table(run, capsys):
    from sound_tf import predict
    from sound_tf.pipeline import predict_logits

    test_items = run.data.splits["test"]
    expected = _softmax(predict_logits(run.model, [i.cached for i in test_items], run.config).astype(np.float64))
    assert predict.main([str(run.run_dir), *[i.source for i in test_items], "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["file", "top-1", "top-2", "top-3"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert set(rows) == {i.source for i in test_items}
    for item, probs in zip(test_items, expected):
        cells = rows[item.source]  # label prob label prob label prob
        order = np.argsort(-probs, kind="stable")
        assert cells[0::2] == [run.config.labels[i] for i in order]
        assert [float(p) for p in cells[1::2]] == pytest.approx(probs[order], abs=2e-3)


def test_predict_prints_each_row_as_its_file_is_scored_and_does_not_copy_overlapping_windows(run, tmp_path):
    import tracemalloc

    from sound_tf import predict
    from sound_tf.predict import Predictor

    events: list[str] = []
    scored = Predictor.predict_file

    def recording(self, path, **kwargs):
        events.append(f"score {Path(path).name}")
        return scored(self, path, **kwargs)

    files = [write_tone(tmp_path / name, 900.0, 0.6) for name in ("a.wav", "a_much_longer_name.wav")]
    broken = tmp_path / "b.wav"
    broken.write_bytes(b"not audio")
    patch = pytest.MonkeyPatch()
    patch.setattr(Predictor, "predict_file", recording)
    try:
        classified, failed = predict.run(run.run_dir, [files[0], broken, files[1]], top_k=2,
                                         out=lambda line: events.append(f"out {line}"),
                                         err=lambda line: events.append(f"err {line}"))
    finally:
        patch.undo()
    assert (classified, failed) == (2, 1)
    width = len(str(files[1]))  # the longest name, known before any file is read
    assert [e.split()[0] for e in events] == ["score", "out", "out", "out", "score", "err", "score", "out"]
    assert events[1] == "out " + f"{'file':<{width}}  top-1                   top-2"
    assert events[3].startswith(f"out {str(files[0]):<{width}}  ") and events[7].startswith(f"out {files[1]}  ")
    assert events[3].split()[2::2] == events[7].split()[2::2]  # the same tone, the same classes

    # Windows overlap by half: a copy of each would take twice the wave's memory besides the wave.
    predictor = Predictor(run.config, run.model)
    wave = np.zeros(SR * 120, np.float32)  # 2 minutes: 479 windows of 0.5 s
    predictor.window_logits(wave[: SR])  # traced before measuring
    tracemalloc.start()
    try:
        logits = predictor.window_logits(wave)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert logits.shape == (479, len(run.config.labels))
    assert peak < 1.3 * wave.nbytes, peak / wave.nbytes  # one padded copy of the wave and a batch


def test_run_takes_one_path_as_one_input(run, tmp_path, monkeypatch):
    """predict.run(run_dir, "a.wav") iterated the string: "a", "w", "v" failed as missing files and "." was
    the current folder, classified whole (the first character of an absolute path, "/", is the whole disk)."""
    from sound_tf import predict

    write_tone(tmp_path / "a.wav", 900.0, 0.6)
    monkeypatch.chdir(tmp_path)
    for given in ("a.wav", Path("a.wav")):
        lines: list[str] = []
        assert predict.run(run.run_dir, given, as_json=True, out=lines.append, err=lines.append) == (1, 0)
        assert [json.loads(line)["file"] for line in lines] == ["a.wav"]


def test_predictor_checks_top_k_as_the_command_line_does(run, tmp_path):
    from sound_tf.errors import ConfigError
    from sound_tf.evaluation import load_run
    from sound_tf.predict import Predictor

    predictor = Predictor(*load_run(run.run_dir))
    tone = write_tone(tmp_path / "tone.wav", 900.0, 1.0)
    for bad in (0, -1, 2.0, True):  # -1 used to list all classes but one, 0 to fail in to_json
        with pytest.raises(ConfigError, match=f"top_k must be an integer >= 1, got {bad!r}"):
            predictor.predict_file(tone, top_k=bad)
    assert len(predictor.predict_file(tone, top_k=np.int64(2)).top) == 2
    assert len(predictor.predict_file(tone, top_k=99).top) == len(run.config.labels)


def test_a_run_loads_from_the_package_and_its_model_is_checked_against_its_config(run, tmp_path):
    import shutil

    import sound_tf
    from sound_tf.errors import SoundTFError

    config, model = sound_tf.load_run(run.run_dir)
    assert config.labels == run.config.labels and model.output_shape == (None, len(run.config.labels))
    assert model.compiled and not sound_tf.load_run(run.run_dir, compile=False)[1].compiled
    copy = tmp_path / "copy"
    shutil.copytree(run.run_dir, copy, ignore=shutil.ignore_patterns("export", "logs", "backup"))
    config_file = copy / "config.json"
    config_file.write_text(config_file.read_text().replace(f'"clip_seconds": {config.audio.clip_seconds}',
                                                           f'"clip_seconds": {config.audio.clip_seconds / 2}'))
    with pytest.raises(SoundTFError, match=r"model.keras: model maps \(None, \d+\) -> .* but config.json says"):
        sound_tf.load_run(copy)
    # Another rate with the same samples per clip: the model was fed audio resampled to a rate it never
    # saw (a wrong top class without a word); another mel band count was ignored.
    import json

    data = json.loads((run.run_dir / "config.json").read_text())
    rate = data["audio"]["sample_rate_hz"]
    edited = {**data, "audio": {**data["audio"], "sample_rate_hz": rate // 2,
                                "clip_seconds": data["audio"]["clip_seconds"] * 2},
              "features": {**data["features"], "fmax_hz": rate / 4}}
    config_file.write_text(json.dumps(edited))
    with pytest.raises(SoundTFError, match=rf"{config_file}: does not describe the model's features \("
                                           rf"sample_rate_hz {rate} in the model, {rate // 2} there"):
        sound_tf.load_run(copy)
    edited = {**data, "features": {**data["features"], "num_mel_bins": data["features"]["num_mel_bins"] // 2}}
    config_file.write_text(json.dumps(edited))
    with pytest.raises(SoundTFError, match="num_mel_bins"):
        sound_tf.load_run(copy)
    # the classes' order: labels.txt and config.json were written together
    config_file.write_text(json.dumps({**data, "labels": data["labels"][::-1]}))
    with pytest.raises(SoundTFError, match=r"labels.txt lists the classes .* but .*config.json says"):
        sound_tf.load_run(copy)
    config_file.write_text(json.dumps(data))
    assert sound_tf.load_run(copy)[0] == config


def test_predictor_takes_only_float_samples_as_the_exported_models_do(run):
    from sound_tf.errors import AudioError
    from sound_tf.evaluation import load_run
    from sound_tf.predict import Predictor

    predictor = Predictor(*load_run(run.run_dir))
    audio = run.config.audio
    wave = 0.3 * np.sin(2 * np.pi * 900.0 * np.arange(audio.clip_samples) / audio.sample_rate_hz)
    assert predictor.window_logits(wave).shape == (1, len(run.config.labels))
    pcm = np.round(wave * 32767).astype(np.int16)  # what sf.read(..., dtype="int16") gives
    with pytest.raises(AudioError, match=r"clip.wav: expected float samples in \[-1, 1\], got dtype int16; "
                                         r"scale integer PCM to \[-1, 1\] first \(divide int16 by 32768\)"):
        predictor.window_logits(pcm, name="clip.wav")  # it used to score 32767-sized samples, confidently
    for bad, problem in ((np.zeros(0), "shape"), (np.zeros((2, 99)), "shape"), (np.array([0.0, np.inf]), "finite")):
        with pytest.raises(AudioError, match=problem):
            predictor.window_logits(bad)


def test_predict_exits_1_when_a_file_fails_as_lite_does(run, tmp_path, capsys):
    from sound_tf import predict

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    assert predict.main([str(run.run_dir), str(broken), str(tmp_path / "missing.wav")]) == 1
    err = capsys.readouterr().err
    assert "broken.wav" in err and "missing.wav: no such file or folder" in err
    assert "error: no file could be classified" in err
    good = write_tone(tmp_path / "good.wav", 900.0, 1.0)
    assert predict.main([str(run.run_dir), str(good)]) == 0
    capsys.readouterr()
    assert predict.main([str(run.run_dir), str(good), str(broken), "--json"]) == 1
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert lines[0]["file"] == str(good) and "label" in lines[0]
    assert "error: 1 of 2 files could not be classified" in captured.err
    assert lines[1]["file"] == str(broken) and not lines[1]["error"].startswith(str(broken))  # the reason alone
    assert predict.main([str(tmp_path), str(broken)]) == 2  # not a run folder
    assert "not a finished run folder (config.json is missing)" in capsys.readouterr().err
    folder = tmp_path / "folder"
    folder.mkdir()
    write_tone(folder / "tone.wav", 900.0, 1.0)
    (folder / "voice.m4a").write_bytes(b"\0\0\0\x20ftypM4A ")
    assert predict.main([str(run.run_dir), str(folder), "--json"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["file"] for line in captured.out.splitlines()] == [str(folder / "tone.wav")]
    assert f"note: left out 1 file of the folders given, as its name does not end in an audio extension " \
           f"({folder / 'voice.m4a'}); convert it to WAV or FLAC to classify it, if it is a recording" in captured.err
    assert predict.main([str(run.run_dir), str(good), "--top-k", "0"]) == 2  # checked before the model loads
    assert "error: --top-k must be an integer >= 1, got 0" in capsys.readouterr().err
    unfinished = tmp_path / "unfinished"  # a run killed before its model was written
    unfinished.mkdir()
    shutil.copy(run.run_dir / "config.json", unfinished / "config.json")
    assert predict.main([str(unfinished), str(good)]) == 2
    assert f"{unfinished}: not a finished run folder (model.keras is missing)" in capsys.readouterr().err
    (unfinished / "run_state.json").write_text('{"status": "running"}')  # a training run killed mid-way
    assert predict.main([str(unfinished), str(good)]) == 2
    assert capsys.readouterr().err == (f"error: {unfinished}: not a finished run folder (model.keras is missing); its "
                                       f"training has not finished: run the same train command again (with --out "
                                       f"{unfinished}) to resume it\n")
    assert predict.main([str(tmp_path / "typo"), str(good)]) == 2  # a folder that does not exist is not "missing files"
    assert capsys.readouterr().err == \
        f"error: {tmp_path / 'typo'}: no such folder; pass the folder a training run wrote\n"
    # an export bundle or a .tflite given instead of the run: the error says which command takes it
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "export.json").write_text("{}")
    (bundle / "model_int8.tflite").write_bytes(b"\0" * 8)
    assert predict.main([str(bundle), str(good)]) == 2
    assert f"this is an export bundle: serve it with `python -m sound_tf.serve {bundle}`" in capsys.readouterr().err
    assert predict.main([str(bundle / "model_int8.tflite"), str(good)]) == 2
    assert f"a TFLite model, not a run folder; classify with it using `python -m sound_tf.lite " \
           f"{bundle / 'model_int8.tflite'} FILE...`" in capsys.readouterr().err


def test_show_writes_the_figure(run, tmp_path, monkeypatch):
    from PIL import Image

    from sound_tf import show

    source = write_tone(tmp_path / "tone.wav", 900.0, 1.5)
    out = tmp_path / "figures" / "tone.png"
    assert show.main([str(source), "--out", str(out), "--run", str(run.run_dir)]) == 0
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (1100, 700)  # 11 x 7 in at 100 dpi
        pixels = np.asarray(image.convert("RGB")).astype(np.int64)
    assert pixels.std() > 20  # drawn, not blank
    # What is drawn: the frontend's ln(mel power) as 10 log10(power) dB, over the 80 dB below the loudest cell,
    # loudest in the mel band that holds 900 Hz
    import sound_tf.report as report
    from sound_tf.audio import load_audio
    from sound_tf.config import slaney_mel_edges_hz
    from sound_tf.frontend import log_mel_numpy

    drawn = []
    config = show.load_config(str(run.run_dir))
    with monkeypatch.context() as patch:
        patch.setattr(report, "_save", lambda fig, path, **kwargs: drawn.append(fig) or Path(path))
        show.show_file(source, tmp_path / "captured.png", config)
    image = next(ax for ax in drawn[0].axes if ax.images).images[0]
    expected_db = 10.0 / np.log(10.0) * log_mel_numpy(config, load_audio(source, sample_rate_hz=SR))  # [frames, mels]
    np.testing.assert_allclose(np.asarray(image.get_array()), expected_db.T, rtol=1e-9, atol=1e-9)
    assert image.get_clim() == pytest.approx((expected_db.max() - 80.0, expected_db.max()))
    edges = slaney_mel_edges_hz(num_mel_bins=config.features.num_mel_bins, fmin_hz=float(config.features.fmin_hz),
                                fmax_hz=config.fmax_hz)
    loudest = int(np.argmax(expected_db.mean(axis=0)))
    assert edges[loudest] < 900.0 < edges[loudest + 2]
    # The run's config decides the rate: a run at 8 kHz vs. the 16-kHz defaults.
    assert show.load_config(str(run.run_dir)).audio.sample_rate_hz == SR
    assert show.load_config().audio.sample_rate_hz == Config().audio.sample_rate_hz

    monkeypatch.chdir(tmp_path)  # without --out: <file stem>.png in the current folder
    assert show.main([str(source), "--pipeline", "demo"]) == 0
    with Image.open(tmp_path / "tone.png") as image:
        assert image.size == (1100, 700)
    assert show.main([str(tmp_path / "nothing.wav"), "--out", str(tmp_path / "x.png")]) == 2
    assert not (tmp_path / "x.png").exists()
    recording = source.read_bytes()
    for target in (source, tmp_path / "tone.jpg"):  # the recording itself; a name that promises no PNG
        assert show.main([str(source), "--out", str(target)]) == 2
    assert source.read_bytes() == recording and not (tmp_path / "tone.jpg").exists()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # a quoted ~ is the home folder: no folder named '~' is made
    assert show.main([str(source), "--pipeline", "demo", "--out", "~/tone.png"]) == 0
    assert (tmp_path / "home" / "tone.png").is_file() and not (tmp_path / "~").exists()


def test_files_whose_names_are_not_utf8_are_read_shown_and_predicted(run, tmp_path, capsys):
    """soundfile passes a path to libsndfile as UTF-8: such a name read as "not a readable audio file"."""
    import os

    from sound_tf import predict, show
    from sound_tf.audio import load_audio

    plain = write_tone(tmp_path / "plain.wav", 900.0, 1.0)
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.wav"))  # Latin-1 bytes: escaped surrogates
    odd.write_bytes(plain.read_bytes())
    np.testing.assert_array_equal(load_audio(odd, sample_rate_hz=SR), load_audio(plain, sample_rate_hz=SR))
    assert predict.main([str(run.run_dir), str(plain), str(odd), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(plain), str(odd)] and lines[0]["top_k"] == lines[1]["top_k"]
    assert show.main([str(odd), "--out", str(tmp_path / "odd.png")]) == 0 and (tmp_path / "odd.png").is_file()


def test_show_draws_the_configs_log_mel_even_of_a_file_shorter_than_one_frame(tmp_path, monkeypatch):
    """The spectrogram is the given config's (8 kHz, 25-ms frames of 200 samples every 80, 20 mel bins), not
    the defaults'; a 10-ms click, shorter than one frame, is padded to one frame and still drawn."""
    from sound_tf import report, show

    drawn, spans = [], []
    whole = report.plot_waveform_and_logmel

    def capture(wave, log_mel, *args, **kwargs):
        drawn.append((np.asarray(wave), np.asarray(log_mel)))
        spans.append(report.frame_span_seconds(len(log_mel), args[1], kwargs["frame_length_samples"], args[0]))
        return whole(wave, log_mel, *args, **kwargs)

    monkeypatch.setattr(report, "plot_waveform_and_logmel", capture)
    config = apply_overrides(Config(), {"audio.sample_rate_hz": SR, "features.num_mel_bins": 20})
    source = write_tone(tmp_path / "tone.wav", 900.0, 1.0)
    assert show.show_file(source, tmp_path / "tone.png", config) == tmp_path / "tone.png"
    wave, log_mel = drawn[-1]
    assert wave.shape == (SR,) and log_mel.shape == (1 + (SR - 200) // 80, 20)
    # Each frame is drawn where its window is: a click at 0.5 s lights the columns drawn around 0.5 s
    # (frames are not centred, so a column drawn from i * hop would put it 60 samples, 7.5 ms, early).
    clicked = np.zeros(SR, np.float32)
    clicked[SR // 2] = 1.0
    sf.write(tmp_path / "one_click.wav", clicked, SR, subtype="FLOAT")
    show.show_file(tmp_path / "one_click.wav", tmp_path / "one_click.png", config)
    energy = np.exp(drawn[-1][1]).sum(axis=1)  # [frames]
    start, end = spans[-1]
    centres = start + (np.arange(len(energy)) + 0.5) * (end - start) / len(energy)  # [frames], seconds
    drawn_at = float(np.sum(energy * centres) / np.sum(energy))  # 0.5012 s; 0.4937 s from i * hop
    assert abs(drawn_at - 0.5) <= 40 / SR / 2, drawn_at  # within a quarter hop
    monkeypatch.chdir(tmp_path)
    click = tmp_path / "click.wav"
    sf.write(click, np.full(160, 0.5, np.float32), 16000, subtype="PCM_16")  # 10 ms at the default 16 kHz
    assert show.main([str(click)]) == 0 and (tmp_path / "click.png").stat().st_size > 10_000
    wave, log_mel = drawn[-1]
    assert wave.shape == (160,) and log_mel.shape == (1, 64) and np.isfinite(log_mel).all()


def test_show_load_config_and_show_file_arguments(tmp_path):
    from sound_tf.errors import ConfigError
    from sound_tf.show import load_config, show_file

    run = tmp_path / "run"
    run.mkdir()
    Config().save(run)
    # Both given: the recipe was ignored silently (the CLI's --run and --pipeline exclude each other).
    with pytest.raises(ConfigError, match=rf"a run folder or a recipe, not both \(run_dir='{re.escape(str(run))}', "
                                          r"pipeline='esc50'\)$"):
        load_config(str(run), "esc50")
    assert load_config(str(run)).audio.sample_rate_hz == Config().audio.sample_rate_hz
    assert load_config(pipeline="esc50").audio.sample_rate_hz == 22050
    with pytest.raises(ConfigError, match="show_file expects a sound_tf Config.*got dict"):
        show_file(tmp_path / "a.wav", tmp_path / "a.png", {"audio": {"sample_rate_hz": 8000}})

def test_show_takes_the_config_of_run_or_recipe_and_names_what_it_refuses(tmp_path, monkeypatch, capsys):
    """What the command line changes in the figure (without the `run` fixture: a run folder is its config.json):
    --run's rate and frontend (8 kHz; 20 mel bins of 32 ms every 12.5 ms) and --pipeline's (esc50: 22.05 kHz),
    named in the title with the file's name alone; the two flags exclude each other. Without --out the PNG is
    <stem>.png in the current folder, not beside the recording, and the line says its name. A name ending in
    .PNG is a PNG; another ending is refused naming --out, and so is the recording itself, which a recording
    whose name ends in .png shown from its own folder would be: it is left as it was. --out is checked before
    the recording is read; a recording that cannot be read writes nothing and says nothing written; a name
    that is not UTF-8 is said with escapes."""
    from PIL import Image

    from sound_tf import report, show

    figures = []
    save = report._save
    monkeypatch.setattr(report, "_save", lambda fig, path, **kwargs: figures.append(fig) or save(fig, path, **kwargs))

    def titles() -> tuple[str, str]:
        figure = figures[-1]
        return figure._suptitle.get_text(), figure.axes[0].get_title()

    run = tmp_path / "run"
    apply_overrides(Config(), {"audio.sample_rate_hz": SR, "features.num_mel_bins": 20, "features.frame_length_ms": 32,
                               "features.hop_length_ms": 12.5}).save(run)
    source = write_tone(tmp_path / "in" / "tone.wav", 900.0, 1.5)
    assert show.main([str(source), "--run", str(run), "--out", str(tmp_path / "run.png"), "--quiet"]) == 0
    assert titles() == ("tone.wav (20 mel bins, 32 ms / 12.5 ms)", "waveform (1.50 s at 8000 Hz)")
    esc50 = show.load_config(pipeline="esc50")
    assert show.main([str(source), "--pipeline", "esc50", "--out", str(tmp_path / "esc50.png"), "--quiet"]) == 0
    assert titles() == (f"tone.wav ({esc50.features.num_mel_bins} mel bins, {esc50.features.frame_length_ms:g} ms / "
                        f"{esc50.features.hop_length_ms:g} ms)", "waveform (1.50 s at 22050 Hz)")
    with pytest.raises(SystemExit) as ended:
        show.main([str(source), "--run", str(run), "--pipeline", "esc50"])
    assert ended.value.code == 2 and "argument --pipeline: not allowed with argument --run" in capsys.readouterr().err

    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    assert show.main([str(source)]) == 0
    assert capsys.readouterr().out == "wrote tone.png\n"
    assert (tmp_path / "cwd" / "tone.png").is_file() and not (tmp_path / "in" / "tone.png").exists()
    assert show.main([str(source), "--out", "LOUD.PNG", "--quiet"]) == 0
    with Image.open(tmp_path / "cwd" / "LOUD.PNG") as image:
        assert image.format == "PNG"
    assert show.main([str(source), "--out", "tone.jpg"]) == 2
    assert capsys.readouterr().err == ("error: tone.jpg: the figure is written as a PNG; give --out a name ending "
                                       "in .png\n")
    recording = tmp_path / "cwd" / "clip.png"
    shutil.copy(source, recording)
    assert show.main([str(recording)]) == 2  # the default --out, clip.png here, is the recording
    assert capsys.readouterr().err == "error: clip.png: this is the recording itself; give --out another name\n"
    assert recording.read_bytes() == source.read_bytes() and not (tmp_path / "cwd" / "tone.jpg").exists()
    assert show.main([str(tmp_path / "missing.wav"), "--out", "missing.jpg"]) == 2  # the flag first
    assert capsys.readouterr().err == ("error: missing.jpg: the figure is written as a PNG; give --out a name "
                                       "ending in .png\n")
    assert show.main([str(tmp_path / "missing.wav")]) == 2
    assert capsys.readouterr().out == "" and not (tmp_path / "cwd" / "missing.png").exists()
    odd = Path(os.fsdecode(os.fsencode(tmp_path / "cwd") + b"/caf\xe9.wav"))  # Latin-1 bytes: escaped surrogates
    shutil.copy(source, odd)
    assert show.main([str(odd)]) == 0
    assert capsys.readouterr().out == "wrote caf\\xe9.png\n" and Path(os.fsdecode(b"caf\xe9.png")).is_file()


def test_predict_says_a_silent_file_is_silent(run, tmp_path, capsys):
    """A silent recording still gets the model's classes (its answer to silence), with a warning saying so, in the
    table (on stderr) and in its JSON line; a recording one 16-bit step from silence gets none."""
    from sound_tf import predict

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR * 3 // 4), SR, subtype="PCM_16")
    faint = tmp_path / "faint.wav"
    sf.write(faint, np.r_[np.zeros(SR // 2), 1 / 32768, np.zeros(SR // 4)], SR, subtype="PCM_16")
    note = "silent: every sample is zero (in 16-bit PCM) over its 0.75 s; its classes are the model's answer to silence"
    assert predict.main([str(run.run_dir), str(silent), str(faint)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"warning: {silent}: {note}, not to a sound\n"
    assert [line.split()[0] for line in captured.out.splitlines()[2:]] == [str(silent), str(faint)]
    assert predict.main([str(run.run_dir), str(silent), str(faint), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["warning"] == f"{note}, not to a sound" and "warning" not in lines[1]
    assert sum(item["probability"] for item in lines[0]["top_k"]) == pytest.approx(1.0, abs=1e-5)  # all 3 classes


def test_predict_json_without_windows_and_a_table_with_them(run, tmp_path, capsys):
    """Without --windows a JSON line still counts the file's windows but does not list them; the table's
    --windows lists each window's span and classes under its file's row (found by a mutation pass)."""
    import re

    from sound_tf import predict

    long_file = write_tone(tmp_path / "long.wav", 300.0, 2.3)  # 9 windows of 0.5 s every 0.25 s
    lines: list[str] = []
    assert predict.run(run.run_dir, [long_file], top_k=2, as_json=True, out=lines.append) == (1, 0)
    line = json.loads(lines[0])
    assert line["num_windows"] == 9 and "windows" not in line
    assert predict.main([str(run.run_dir), str(long_file), "--windows", "--top-k", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["file", "top-1", "top-2"] and table[2].startswith(str(long_file))
    spans = [re.fullmatch(r"  +(\d+\.\d\d) - (\d+\.\d\d) s +(\w+) (\d\.\d{3}), (\w+) (\d\.\d{3})", row)
             for row in table[3:12]]
    assert len(spans) == 9 and all(spans), table
    assert table[12] == "  events (one top class over consecutive windows, each at >= 0.5):", table  # then the events
    assert [(float(m[1]), float(m[2])) for m in spans] == pytest.approx(
        [(0.25 * i, min(0.25 * i + 0.5, 2.3)) for i in range(9)])
    assert all(m[3] != m[5] and float(m[4]) >= float(m[6]) for m in spans)


def test_predict_lists_three_classes_by_default(run, monkeypatch):
    """README and --help: --top-k defaults to 3 (the test model has 3 classes, which any larger default
    would list too, so the value main passes is checked)."""
    from sound_tf import predict

    given = {}

    def fake_run(run_dir, inputs, **kwargs):
        given.update(kwargs)
        return 1, 0

    monkeypatch.setattr(predict, "run", fake_run)
    assert predict.main([str(run.run_dir), "x.wav"]) == 0
    assert (given["top_k"], given["as_json"], given["with_windows"]) == (3, False, False)


def test_tied_classes_keep_class_order_with_many_classes():
    """numpy's default sort keeps equal values in order only below 17 of them: a model of 20 or 527 classes
    whose probabilities tie listed the tied classes in another order than lite and the server (found by a
    mutation pass: the three-class tie of test_lite could not tell)."""
    from sound_tf.lite import top_classes
    from sound_tf.predict import _top

    labels = [f"c{i:02d}" for i in range(20)]
    probabilities = np.array([0.1, 0.2, 0.3, 0.1, 0.2] * 4) / 3.6  # [classes]
    expected = ["c02", "c07", "c12", "c17", "c01", "c04", "c06", "c09"]
    assert [label for label, _ in _top(probabilities, labels, 8)] == expected
    assert [t["label"] for t in top_classes(probabilities, labels, 8)] == expected


def test_top_k_help_says_it_lists_each_windows_classes_too(capsys):
    """A user thresholding one class's probability over a long recording's windows (a fault's onset) needs that
    class in every window's top_k: --top-k sets it, which predict's and lite's --help did not say (lite's: 'classes
    listed in the overall result'), so `lite --json --top-k 1` gave each window its top class alone."""
    from sound_tf import lite, predict

    for main in (predict.main, lite.main):
        with pytest.raises(SystemExit):
            main(["--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "per window" in text or "in each window's top_k" in text, text
        assert "the number of classes lists every class's probability" in text, text


def _label_runs(labels: list[str], probabilities: np.ndarray, threshold: float, leave_out=()) -> list[tuple[int, int]]:
    """The first and last index of each run of one label at >= threshold, not left out (the events' windows)."""
    runs: list[tuple[int, int]] = []
    for i, (label, p) in enumerate(zip(labels, probabilities)):
        if label in leave_out or p < threshold:
            continue
        if runs and runs[-1][1] == i - 1 and labels[runs[-1][0]] == label:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def test_predict_windows_ends_with_the_events_and_leaves_out_the_runs_silence_class(run, tmp_path, capsys):
    """--windows lists the events after the timeline (and in each JSON line beside the windows): runs of windows of
    one top class at --min-probability or more, the run's data.silence_label left out. The expected runs are counted
    here from the model's own window logits; 3 s of three tones make 11 windows of 0.5 s every 0.25 s."""
    from dataclasses import replace

    from sound_tf import predict
    from sound_tf.audio import load_audio, split_windows
    from sound_tf.predict import Predictor

    config = run.config
    path = tmp_path / "three.wav"  # 1 s of each tone: low, high, mid
    sf.write(path, np.concatenate([load_audio(write_tone(tmp_path / f"{name}.wav", TONES_HZ[name], 1.0, seed=7),
                                              sample_rate_hz=SR) for name in ("low", "high", "mid")]), SR,
             subtype="PCM_16")
    windows = split_windows(load_audio(path, sample_rate_hz=SR), clip_samples=4000, hop_samples=2000)
    per_window = _softmax(np.asarray(run.model(windows, training=False), dtype=np.float64))  # [11, classes]
    labels = [config.labels[i] for i in per_window.argmax(axis=1)]
    best = np.round(per_window.max(axis=1), 6)  # as the timeline gives them
    assert len(labels) == 11

    def spans(runs):  # window i spans 0.25 i to 0.25 i + 0.5 s, the last ending at 3 s
        return [(0.25 * a, min(0.25 * b + 0.5, 3.0), labels[a], float(best[a:b + 1].max())) for a, b in runs]

    # a threshold among the windows' own probabilities (the tiny model's are low), so some windows fall below it
    threshold = float(np.sort(best)[5])
    assert 0 < (best < threshold).sum() < 11 and _label_runs(labels, best, threshold)
    lines: list[str] = []
    assert predict.run(run.run_dir, [path], as_json=True, with_windows=True, min_probability=threshold,
                       out=lines.append) == (1, 0)
    line = json.loads(lines[0])
    assert [(e["start_seconds"], e["end_seconds"], e["label"], e["peak_probability"]) for e in line["events"]] == \
        pytest.approx(spans(_label_runs(labels, best, threshold)))
    assert [(e["first_window"], e["last_window"]) for e in line["events"]] == _label_runs(labels, best, threshold)
    lines.clear()
    assert predict.run(run.run_dir, [path], as_json=True, out=lines.append) == (1, 0)
    assert "events" not in json.loads(lines[0]) and "windows" not in json.loads(lines[0])

    # the table: the events after the windows; at 0 every window is in one, so the events tile the 3 s
    assert predict.main([str(run.run_dir), str(path), "--windows", "--min-probability", "0"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[14] == "  events (one top class over consecutive windows, each at >= 0):", table
    every = spans(_label_runs(labels, best, 0.0))
    assert table[15:] == [f"    {a:.2f}-{b:.2f} s: {label} (peak {p:.3f})" for a, b, label, p in every], table
    assert every[0][0] == 0.0 and every[-1][1] == 3.0  # one label's run ends where another's begins
    assert all(every[i][2] != every[i + 1][2] and every[i][1] == every[i + 1][0] + 0.25 for i in range(len(every) - 1))

    # a run whose config names one of its classes its silence class: that class is never an event
    silence = labels[0]
    predictor = Predictor(replace(config, data=replace(config.data, silence_label=silence)), run.model)
    assert predictor.not_events == (silence,)
    prediction = predictor.predict_file(path, min_probability=0.0)
    assert [(e["first_window"], e["last_window"]) for e in prediction.events] == _label_runs(
        labels, best, 0.0, leave_out=(silence,)) and silence not in {e["label"] for e in prediction.events}
    heading = f"  events (one top class over consecutive windows, each at >= 0, not {silence}):"
    rows = predict.table_rows(prediction, width=5, with_windows=True, min_probability=0.0,
                              not_events=predictor.not_events)
    kept = spans(_label_runs(labels, best, 0.0, leave_out=(silence,)))  # none when every window is the first's class
    assert rows[12:] == ([heading] + [f"    {a:.2f}-{b:.2f} s: {label} (peak {p:.3f})" for a, b, label, p in kept]
                         if kept else [f"{heading} none"]), rows

    # --min-probability without --windows would change nothing: refused, as a bad value is, before the model loads
    assert predict.main([str(run.run_dir), str(path), "--min-probability", "0.8"]) == 2
    assert capsys.readouterr().err.endswith(
        "error: --min-probability 0.8 sets the events listed after each file's windows: give --windows too\n")
    assert predict.main([str(run.run_dir), str(path), "--windows", "--min-probability", "80"]) == 2
    assert capsys.readouterr().err.endswith("error: --min-probability must be a probability from 0 to 1, got 80.0\n")
