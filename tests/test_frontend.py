"""The log-mel frontend: librosa agreement, physics, execution-path parity, statistics, validation.

Tolerances (natural-log units; 1e-4 nats = 0.0004 dB):
- against librosa (float64 reference): bins within 60 dB of the clip's loudest bin differ by < 1e-4,
  every bin (silence and -100 dB leakage included) by < 3e-3;
- against ``tf.signal.stft`` with the same window and filterbank: the same bounds;
- eager vs ``tf.function`` vs Keras model vs TFLite (ai_edge_litert): < 5e-5 in the loud bins and
  < 1e-3 everywhere (XNNPACK sums in another order; float32 rounding shows only in -100 dB bins).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf

from conftest import sine
from sound_tf.config import Config, apply_overrides, hz_to_slaney_mel
from sound_tf.errors import ConfigError, DatasetError
from sound_tf.frontend import (FourStepDFT, LogMel, compute_feature_stats, feature_extractor, for_tflite,
                               log_mel_numpy, slaney_mel_matrix)

LOUD_BINS_DB = 60.0
LOUD_TOL = 1e-4
ALL_TOL = 3e-3
PATH_LOUD_TOL = 5e-5
PATH_ALL_TOL = 1e-3


def make_config(sample_rate_hz: int = 16000, clip_seconds: float = 0.5, **features) -> Config:
    overrides = {"audio.sample_rate_hz": sample_rate_hz, "audio.clip_seconds": clip_seconds}
    overrides.update({f"features.{key}": value for key, value in features.items()})
    return apply_overrides(Config(), overrides)


# 16 kHz: 400-sample frames in a 512-point FFT; 22.05 kHz: an odd 551-sample frame in 1024 points.
CONFIGS = [make_config(16000), make_config(22050, fmin_hz=50.0, fmax_hz=9000.0, num_mel_bins=40)]


def make_signals(config: Config, rng: np.random.Generator) -> dict[str, np.ndarray]:
    sr, n = config.audio.sample_rate_hz, config.audio.clip_samples
    t = np.arange(n) / sr
    chirp = 0.5 * np.sin(2 * np.pi * (100 * t + 0.5 * (0.4 * sr - 100) / t[-1] * t ** 2))
    return {
        "sine_440": sine(440.0, config.audio.clip_seconds, sr),
        "sine_3000": sine(3000.0, config.audio.clip_seconds, sr, amplitude=0.05),
        "chirp": chirp.astype(np.float32),
        "noise": (0.1 * rng.standard_normal(n)).astype(np.float32),
        "clipped": np.clip(4 * sine(1000.0, config.audio.clip_seconds, sr), -1, 1),
        "silence": np.zeros(n, np.float32),
    }




def librosa_log_mel(config: Config, waveform: np.ndarray) -> np.ndarray:
    """The reference: librosa in float64, the waveform shifted so its frames line up with ours."""
    import librosa
    frame, fft = config.frame_length_samples, config.fft_length_samples
    front = (fft - frame) // 2  # librosa centres the window inside the FFT frame
    padded = np.pad(waveform.astype(np.float64), (front, fft - frame - front))
    power = librosa.feature.melspectrogram(
        y=padded, sr=config.audio.sample_rate_hz, n_fft=fft, hop_length=config.hop_length_samples,
        win_length=frame, window="hann", center=False, power=2.0, n_mels=config.features.num_mel_bins,
        fmin=config.features.fmin_hz, fmax=config.fmax_hz, htk=False, norm="slaney")  # [mels, frames]
    return np.log(power.T + config.features.log_offset)  # [frames, mels]


def assert_log_mel_close(ours: np.ndarray, reference: np.ndarray, label: str, *, loud_tol: float = LOUD_TOL,
                         all_tol: float = ALL_TOL) -> None:
    assert ours.shape == reference.shape, label
    diff = np.abs(ours - reference)
    loud = reference > reference.max() - LOUD_BINS_DB / 10 * np.log(10)
    message = (f"{label}: max |diff| {diff.max():.2e} nats ({diff.max() * 10 / np.log(10):.2e} dB), "
               f"loud bins {diff[loud].max():.2e}, mean {diff.mean():.2e}")
    assert diff[loud].max() < loud_tol, message
    assert diff.max() < all_tol, message


@pytest.mark.parametrize("sample_rate_hz", [16000, 22050, 44100])
def test_slaney_filterbank_equals_librosa(sample_rate_hz):
    import librosa
    for fft, mels, fmin, fmax in [(512, 40, 0.0, None), (1024, 64, 20.0, 7000.0), (2048, 128, 50.0, None)]:
        fmax = sample_rate_hz / 2 if fmax is None else fmax
        ours = slaney_mel_matrix(sample_rate_hz=sample_rate_hz, fft_length=fft, num_mel_bins=mels,
                                 fmin_hz=fmin, fmax_hz=fmax)
        reference = librosa.filters.mel(sr=sample_rate_hz, n_fft=fft, n_mels=mels, fmin=fmin, fmax=fmax,
                                        htk=False, norm="slaney", dtype=np.float64)
        np.testing.assert_allclose(ours.T, reference, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dft", ["fft", "matmul"])
@pytest.mark.parametrize("config", CONFIGS, ids=["16k", "22k05"])
def test_matches_librosa(config, dft, rng):
    layer = LogMel.from_config_object(config, dft=dft)
    signals = make_signals(config, rng)
    ours = np.asarray(layer(np.stack(list(signals.values()))))  # [signals, frames, mels]
    assert ours.shape[1:] == config.feature_shape
    for index, (name, waveform) in enumerate(signals.items()):
        assert_log_mel_close(ours[index], librosa_log_mel(config, waveform), name)


@pytest.mark.parametrize("config", CONFIGS, ids=["16k", "22k05"])
def test_matmul_dft_matches_tf_signal_stft(config, rng):
    """The matrix-product DFT gives tf.signal.stft's power spectrum (same window and filterbank)."""
    layer = LogMel.from_config_object(config, dft="matmul")
    waveforms = np.stack(list(make_signals(config, rng).values()))
    spectrum = tf.signal.stft(waveforms, config.frame_length_samples, config.hop_length_samples,
                              config.fft_length_samples, pad_end=False,
                              window_fn=lambda length, dtype: tf.constant(layer.window, dtype))
    power = np.abs(spectrum.numpy().astype(np.complex128)) ** 2  # [batch, frames, bins]
    reference = np.log(power @ layer.mel_matrix.astype(np.float64) + config.features.log_offset)
    for index in range(len(waveforms)):
        assert_log_mel_close(np.asarray(layer(waveforms))[index], reference[index], f"signal {index}")


@pytest.mark.parametrize("frame_length_samples, fft_length", [(400, 512), (551, 1024), (1103, 2048),
                                                              (30, 32)])
def test_four_step_counts_every_bin_once(frame_length_samples, fft_length):
    plan = FourStepDFT.plan(frame_length_samples=frame_length_samples, fft_length=fft_length,
                            num_mel_bins=64)
    assert plan.n1 * plan.n2 == fft_length
    assert plan.rows * plan.n2 >= frame_length_samples > (plan.rows - 1) * plan.n2
    bins = plan.bin_of_term[plan.bin_of_term >= 0]
    np.testing.assert_array_equal(np.sort(bins), np.arange(fft_length // 2 + 1))


def test_sine_lands_in_its_mel_band_with_its_level(rng):
    config = make_config(16000, clip_seconds=0.5)
    layer = LogMel.from_config_object(config)
    edges_mel = np.linspace(hz_to_slaney_mel(config.features.fmin_hz), hz_to_slaney_mel(config.fmax_hz),
                            config.features.num_mel_bins + 2)
    for freq_hz in (300.0, 1000.0, 2500.0, 6000.0):
        quiet, loud = (sine(freq_hz, 0.5, 16000, amplitude=a) for a in (0.05, 0.1))
        features = np.asarray(layer(np.stack([quiet, loud])))  # [2, frames, mels]
        peak_band = int(np.argmax(features[0].mean(axis=0)))
        centre_mel = edges_mel[1:-1]
        expected = int(np.argmin(np.abs(centre_mel - hz_to_slaney_mel(freq_hz))))
        assert abs(peak_band - expected) <= 1, (freq_hz, peak_band, expected)
        # Twice the amplitude is four times the power: +log(4) nats (+6.02 dB) in the peak band.
        gain = features[1, :, peak_band] - features[0, :, peak_band]
        np.testing.assert_allclose(gain, np.log(4.0), atol=1e-4)


def test_silence_clipping_and_huge_input_stay_finite():
    config = make_config(16000, clip_seconds=0.25)
    n = config.audio.clip_samples
    square = np.sign(sine(50.0, 0.25, 16000)).astype(np.float32)  # full-scale clipped square wave
    batch = np.stack([np.zeros(n, np.float32), square, 1e4 * square, np.full(n, 1e-30, np.float32)])
    features = log_mel_numpy(config, batch)
    assert np.all(np.isfinite(features))
    np.testing.assert_allclose(features[0], np.log(config.features.log_offset), rtol=1e-6)
    assert features[1].max() > 5.0  # a full-scale square wave is loud, not clipped to the floor


@pytest.mark.parametrize("sample_rate_hz, clip_seconds, hop_ms", [(16000, 1.0, 10.0), (22050, 0.37, 12.5),
                                                                 (44100, 0.1, 25.0), (8000, 0.06, 5.0)])
def test_frame_count_is_config_num_frames(sample_rate_hz, clip_seconds, hop_ms):
    config = make_config(sample_rate_hz, clip_seconds=clip_seconds, hop_length_ms=hop_ms)
    layer = LogMel.from_config_object(config)
    waveform = np.zeros((2, config.audio.clip_samples), np.float32)
    assert tuple(layer(waveform).shape) == (2, *config.feature_shape)
    assert layer.compute_output_shape((None, config.audio.clip_samples)) == (None, *config.feature_shape)
    assert feature_extractor(config).output_shape == (None, *config.feature_shape)


def run_tflite(model, waveforms: np.ndarray, path) -> tuple[np.ndarray, set[str]]:
    """Convert ``model`` to a TFLite file at ``path``, run it with ai_edge_litert; outputs and op names."""
    from ai_edge_litert.interpreter import Interpreter

    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, waveforms.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, waveforms)
    interpreter.invoke()
    ops = {detail["op_name"] for detail in interpreter._get_ops_details()}
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), ops


def test_eager_function_keras_and_tflite_agree(tmp_path, rng):
    config = make_config(16000, clip_seconds=0.5)
    waveforms = np.stack(list(make_signals(config, rng).values()))  # [6, samples]
    layer = LogMel.from_config_object(config)
    eager = np.asarray(layer(waveforms))
    graph = tf.function(layer.call)(tf.constant(waveforms)).numpy()
    model = feature_extractor(config)
    keras_out = model.predict(waveforms, verbose=0)
    lite_fft, fft_ops = run_tflite(model, waveforms, tmp_path / "fft.tflite")
    lite_matmul, matmul_ops = run_tflite(for_tflite(model), waveforms, tmp_path / "matmul.tflite")
    for ops in (fft_ops, matmul_ops):
        assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops
    assert "RFFT2D" in fft_ops and "RFFT2D" not in matmul_ops

    for name, other in (("tf.function", graph), ("keras predict", keras_out), ("tflite fft", lite_fft),
                        ("tflite matmul", lite_matmul)):
        for index in range(len(waveforms)):
            assert_log_mel_close(other[index], eager[index], f"{name}, signal {index}",
                                 loud_tol=PATH_LOUD_TOL, all_tol=PATH_ALL_TOL)


def test_layer_config_and_model_file_round_trip(tmp_path, rng):
    import keras

    config = make_config(22050, clip_seconds=0.2, num_mel_bins=32)
    model = for_tflite(feature_extractor(config))
    layer = model.get_layer("log_mel")
    assert layer.dft == "matmul"
    clone = LogMel.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model.save(tmp_path / "features.keras")
    loaded = keras.saving.load_model(tmp_path / "features.keras")
    waveform = (0.1 * rng.standard_normal((2, config.audio.clip_samples))).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(waveform, verbose=0), model.predict(waveform, verbose=0))
    np.testing.assert_array_equal(np.asarray(clone(waveform)), np.asarray(layer(waveform)))


def test_log_mel_numpy_accepts_one_clip_or_a_batch(rng):
    config = make_config(16000, clip_seconds=0.3)
    clip = (0.1 * rng.standard_normal(config.audio.clip_samples)).astype(np.float32)
    single = log_mel_numpy(config, clip)
    assert single.shape == config.feature_shape
    np.testing.assert_allclose(log_mel_numpy(config, np.stack([clip, clip]))[1], single, atol=1e-6)
    with pytest.raises(ConfigError, match="shape"):
        log_mel_numpy(config, np.zeros((1, 2, 3)))


def test_feature_stats_pool_every_frame(rng):
    config = make_config(16000, clip_seconds=0.25)
    n = config.audio.clip_samples
    loud = (0.5 * rng.standard_normal((3, n))).astype(np.float32)
    quiet = (0.01 * rng.standard_normal((2, n))).astype(np.float32)
    labels = np.zeros(2, np.int32)
    mean, variance = compute_feature_stats(config, [loud, (tf.constant(quiet), labels)])
    everything = log_mel_numpy(config, np.concatenate([loud, quiet])).reshape(-1, config.features.num_mel_bins)
    assert mean.shape == variance.shape == (config.features.num_mel_bins,)
    np.testing.assert_allclose(mean, everything.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(variance, everything.var(axis=0), rtol=1e-3, atol=1e-4)
    # White noise at two levels 34 dB apart: the pooled variance is dominated by that spread.
    assert np.all(variance > 10.0)

    with pytest.raises(DatasetError, match="no waveform"):
        compute_feature_stats(config, [])
    with pytest.raises(DatasetError, match="batch 0 has shape"):
        compute_feature_stats(config, [np.zeros(n, np.float32)])


def test_feature_stats_and_log_mel_numpy_refuse_integer_pcm_and_nan(rng):
    """int16 PCM was cast to float32 as is (samples up to 32767: every feature and mean about 20 nats high, a
    model normalised with them saw float clips 20 nats low), and one NaN sample made every statistic NaN."""
    config = make_config(16000, clip_seconds=0.25)
    clips = (0.1 * rng.standard_normal((2, config.audio.clip_samples))).astype(np.float32)
    pcm = np.round(clips * 32767).astype(np.int16)
    with pytest.raises(DatasetError, match=r"batch 1 has dtype int16.*divide int16 by 32768"):
        compute_feature_stats(config, [clips, pcm])
    with pytest.raises(ConfigError, match=r"got dtype int16.*divide int16 by 32768"):
        log_mel_numpy(config, pcm[0])
    broken = clips.copy()
    broken[1, 7] = np.nan
    with pytest.raises(DatasetError, match="batch 0 holds 1 NaN or infinite sample$"):
        compute_feature_stats(config, [broken])
    broken[0, 3] = np.inf
    with pytest.raises(DatasetError, match="batch 0 holds 2 NaN or infinite samples$"):
        compute_feature_stats(config, [broken])
    mean, _ = compute_feature_stats(config, [pcm.astype(np.float32) / 32768])  # scaled, as the hint says
    np.testing.assert_allclose(mean, compute_feature_stats(config, [clips])[0], atol=1e-2)
    assert -12 < mean.mean() < 0


def test_feature_stats_floor_the_deviation_of_a_band_the_audio_leaves_empty(rng):
    """8-kHz recordings at 16 kHz leave every mel bin above 4 kHz at log(log_offset), with a deviation of
    0.002-0.02: any sound there later became hundreds of deviations, and the model trained to chance (FSDD
    digits at the default rate: 33.3% with the default augmentation's noise, 100% with the floor)."""
    import scipy.signal

    from sound_tf.frontend import STD_FLOOR_FRACTION

    config = make_config(16000, clip_seconds=0.25)
    n, bins = config.audio.clip_samples, config.features.num_mel_bins
    sos = scipy.signal.butter(12, 3000.0, fs=16000, output="sos")
    narrow = scipy.signal.sosfilt(sos, rng.standard_normal((4, n)) * rng.uniform(0.01, 0.5, (4, 1)))
    # what a resampler from 8 kHz leaves: nothing above 4 kHz (the log floor there)
    spectrum = np.fft.rfft(narrow, axis=1)
    spectrum[:, np.fft.rfftfreq(n, 1 / 16000) > 3500] = 0
    narrow = np.fft.irfft(spectrum, n, axis=1).astype(np.float32)
    mean, variance = compute_feature_stats(config, [narrow])
    everything = log_mel_numpy(config, narrow).reshape(-1, bins)
    std, raw = np.sqrt(variance), everything.std(axis=0)
    floor = STD_FLOOR_FRACTION * np.median(raw)
    empty = raw < floor
    assert 10 <= empty.sum() < bins // 2  # the bins above 4 kHz
    np.testing.assert_allclose(std[empty], floor, rtol=1e-3)
    np.testing.assert_allclose(variance[~empty], raw[~empty] ** 2, rtol=1e-3, atol=1e-4)  # the others as measured
    # quiet white noise in the empty bins: tens of deviations from their mean, not thousands
    noise = (0.01 * rng.standard_normal((1, n))).astype(np.float32)
    offset = (log_mel_numpy(config, narrow[:1] + noise).reshape(-1, bins) - mean)[:, empty]
    assert np.abs(offset / std[empty]).max() < 60.0
    assert np.abs(offset / raw[empty]).max() > 1000.0


@pytest.mark.parametrize("changes, message", [
    ({"fft_length": 256}, "fft_length"),
    ({"fft_length": 600}, "power of two"),
    ({"fmax_hz": 9000.0}, "fmax_hz"),
    ({"fmin_hz": 5000.0, "fmax_hz": 4000.0}, "fmin_hz"),
    ({"log_offset": 0.0}, "log_offset"),
    ({"hop_length_samples": 0}, "hop_length_samples"),
    ({"dft": "rfft"}, "dft must be one of"),
    # int() / float() took these: True became one mel bin or a one-sample frame, 16000.7 Hz became 16000,
    # an infinite offset made every feature inf, NaN failed in int() and None in float()
    ({"num_mel_bins": True}, "num_mel_bins must be an integer >= 1, got True"),
    ({"frame_length_samples": True}, "frame_length_samples must be an integer >= 1, got True"),
    ({"sample_rate_hz": 16000.7}, "sample_rate_hz must be an integer >= 1, got 16000.7"),
    ({"sample_rate_hz": float("nan")}, "sample_rate_hz must be an integer >= 1, got nan"),
    ({"log_offset": float("inf")}, "log_offset must be a finite number, got inf"),
    ({"fmax_hz": None}, r"fmax_hz must be a finite number, got None \(give sample_rate_hz / 2"),
])
def test_bad_arguments_raise_config_error(changes, message):
    arguments = dict(sample_rate_hz=16000, frame_length_samples=400, hop_length_samples=160, fft_length=512,
                     num_mel_bins=40, fmin_hz=20.0, fmax_hz=8000.0, log_offset=1e-6)
    arguments.update(changes)
    with pytest.raises(ConfigError, match=message):
        LogMel(**arguments)


def test_the_filterbank_takes_numpy_integer_sizes_and_never_a_bool():
    """slaney_mel_matrix took num_mel_bins=True as one mel band; numpy integer sizes give the same matrix."""
    arguments = dict(sample_rate_hz=16000, fft_length=512, num_mel_bins=40, fmin_hz=20.0, fmax_hz=8000.0)
    np.testing.assert_array_equal(slaney_mel_matrix(**{**arguments, "fft_length": np.int64(512),
                                                       "num_mel_bins": np.int32(40)}), slaney_mel_matrix(**arguments))
    for value in (True, np.True_, 40.0, "40", np.array(40)):
        with pytest.raises(ConfigError, match=rf"^num_mel_bins must be an integer >= 1, got {re.escape(repr(value))}$"):
            slaney_mel_matrix(**{**arguments, "num_mel_bins": value})
        with pytest.raises(ConfigError, match=rf"^fft_length must be an integer >= 2, got {re.escape(repr(value))}$"):
            slaney_mel_matrix(**{**arguments, "fft_length": value})


def test_numpy_and_whole_float_arguments_are_taken():
    layer = LogMel(sample_rate_hz=np.int64(16000), frame_length_samples=400.0, hop_length_samples=np.int32(160),
                   fft_length=512, num_mel_bins=np.int64(40), fmin_hz=np.float32(20.0), fmax_hz=8000, log_offset=1e-6)
    assert ((layer.sample_rate_hz, layer.frame_length_samples, layer.num_mel_bins, layer.fmax_hz)
            == (16000, 400, 40, 8000.0))
    assert layer.mel_matrix.shape == (257, 40)


def test_input_shorter_than_a_frame_is_rejected():
    layer = LogMel.from_config_object(make_config(16000))
    with pytest.raises(ConfigError, match="fewer than one frame"):
        layer(np.zeros((1, 100), np.float32))


def test_a_built_layer_still_checks_what_it_is_called_with():
    """Keras builds a layer on its first call only: later inputs were not checked. A [batch, 1, samples] input
    crashed the process (segmentation fault in the mel matmul), a 1-D clip came back without its batch axis,
    a short input failed in RFFT, and int16 PCM was read as samples up to 32767 (features about 20 nats high)."""
    config = make_config(16000)
    layer = LogMel.from_config_object(config)
    batch = 0.1 * np.ones((2, config.audio.clip_samples), np.float32)
    expected = np.asarray(layer(batch))  # built with a good batch
    with pytest.raises(ConfigError, match=r"\[batch, samples\], got shape \(2, 1, 8000\)"):
        layer(batch[:, np.newaxis])
    with pytest.raises(ConfigError, match=r"\[batch, samples\], got shape \(8000,\)"):
        layer(batch[0])
    with pytest.raises(ConfigError, match="100 samples, fewer than one frame"):
        layer(batch[:, :100])
    with pytest.raises(ConfigError, match=r"dtype int16; scale integer PCM .*divide int16 by 32768"):
        layer(np.round(batch * 32767).astype(np.int16))
    # float inputs of other widths and graphs whose shape is unknown go through as before
    np.testing.assert_allclose(np.asarray(layer(batch.astype(np.float64))), expected, rtol=1e-6)
    graph = tf.function(layer, input_signature=[tf.TensorSpec(None, tf.float32)])
    np.testing.assert_allclose(graph(batch).numpy(), expected, rtol=1e-6)


def test_log_offset_is_the_configured_one(rng):
    """Every test above uses the default offset 1e-6; a hard-coded offset would pass them all."""
    config = make_config(16000, clip_seconds=0.25, log_offset=1e-2)
    n = config.audio.clip_samples
    quiet = (0.003 * rng.standard_normal(n)).astype(np.float32)  # mel power around the offset
    features = log_mel_numpy(config, np.stack([np.zeros(n, np.float32), quiet]))
    np.testing.assert_allclose(features[0], np.log(1e-2), rtol=1e-6)  # silence is log(offset)
    assert_log_mel_close(features[1], librosa_log_mel(config, quiet), "quiet noise, offset 1e-2")
    # The offset survives get_config / from_config (a saved model.keras), not only the constructor.
    clone = LogMel.from_config(LogMel.from_config_object(config).get_config())
    np.testing.assert_allclose(np.asarray(clone(np.zeros((1, n), np.float32))), np.log(1e-2), rtol=1e-6)


@pytest.mark.parametrize("config", CONFIGS, ids=["16k", "22k05"])
def test_matmul_dft_with_a_length_known_only_when_the_graph_runs(config, rng):
    """LogMel(dft="matmul") in a graph whose waveform length is unknown (the tf.shape branch)."""
    layer = LogMel.from_config_object(config, dft="matmul")
    graph = tf.function(layer.call, input_signature=[tf.TensorSpec([None, None], tf.float32)])
    waveforms = np.stack(list(make_signals(config, rng).values()))
    for samples in (config.audio.clip_samples, config.audio.clip_samples - 37):
        batch = waveforms[:, :samples]
        ours = graph(tf.constant(batch)).numpy()
        assert ours.shape[1] == 1 + (samples - config.frame_length_samples) // config.hop_length_samples
        for index, waveform in enumerate(batch):
            assert_log_mel_close(ours[index], librosa_log_mel(config, waveform), f"{samples} samples, signal {index}")


# -- found unguarded by a mutation pass (session 49): each test below failed with a hand-written mutant -----------

def test_the_tensorflow_mel_scale_is_librosas_on_both_sides_of_the_break():
    """hz_to_slaney_mel_tf (feature pitch shift's band positions) had no test of its own: a log step multiplied
    instead of divided, or the break moved from 1 kHz, only moved augmented bands a little."""
    import librosa
    from sound_tf.frontend import hz_to_slaney_mel_tf

    frequencies = np.array([0.0, 20.0, 500.0, 999.0, 1000.0, 1001.0, 1500.0, 2000.0, 4000.0, 8000.0, 11025.0,
                            22050.0])
    ours = hz_to_slaney_mel_tf(tf.constant(frequencies, tf.float32)).numpy()
    np.testing.assert_allclose(ours, librosa.hz_to_mel(frequencies, htk=False), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("changes, message", [
    ({"sample_rate_hz": 0}, r"^sample_rate_hz must be > 0, got 0$"),
    ({"fft_length": 1}, r"^fft_length must be an integer >= 2, got 1$"),
    ({"num_mel_bins": 0}, r"^num_mel_bins must be an integer >= 1, got 0$"),
    # equal edges made every band 0 Hz wide: a filterbank of NaN (0 / 0), every feature NaN
    ({"fmin_hz": 4000.0, "fmax_hz": 4000.0}, r"^need 0 <= fmin_hz < fmax_hz <= sample_rate_hz / 2 = 8000.0, got "
                                            r"fmin_hz=4000.0, fmax_hz=4000.0$"),
])
def test_the_filterbank_refuses_a_band_it_cannot_build(changes, message):
    arguments = dict(sample_rate_hz=16000, fft_length=512, num_mel_bins=40, fmin_hz=20.0, fmax_hz=8000.0)
    with pytest.raises(ConfigError, match=message):
        slaney_mel_matrix(**{**arguments, **changes})


def macs_of_the_products(plan: FourStepDFT, mel_columns: int) -> int:
    """Multiply-accumulates of one frame, counted from the shapes of the three products' constants."""
    step1 = plan.step1.shape[0] * plan.step1.shape[1] * plan.n2  # [2 * half, rows] @ [rows, n2]
    step2 = plan.step2.shape[0] * plan.step2.shape[1] * plan.step2.shape[2]  # [half] x ([2 n2] @ [2 n2, 2 n2])
    return step1 + step2 + plan.half * plan.n2 * mel_columns  # [half * n2] @ [half * n2, mel_bins]


@pytest.mark.parametrize("frame_length_samples, fft_length, num_mel_bins", [
    (400, 512, 64), (551, 1024, 40), (1103, 2048, 128), (30, 32, 8), (3, 4, 2), (8, 8, 4)])
def test_the_four_step_plan_takes_the_cheapest_split_and_counts_its_products(frame_length_samples, fft_length,
                                                                             num_mel_bins):
    """The plan's choice only costs time, so every parity test passed with the costliest split or a miscounted
    step 2; and a 4-point FFT (which LogMel accepts) has one split, n2 = 2, which a plan without it could not
    make. LogMel.macs gives the products' count per frame times the frames."""
    plan = FourStepDFT.plan(frame_length_samples=frame_length_samples, fft_length=fft_length,
                            num_mel_bins=num_mel_bins)
    assert FourStepDFT.macs_per_frame(frame_length_samples=frame_length_samples, n1=plan.n1, n2=plan.n2,
                                      num_mel_bins=num_mel_bins) == macs_of_the_products(plan, num_mel_bins)
    splits = [(fft_length // n2, n2) for n2 in (2 ** p for p in range(1, int(np.log2(fft_length))))]
    assert (plan.n1, plan.n2) in splits
    cost = {split: FourStepDFT.macs_per_frame(frame_length_samples=frame_length_samples, n1=split[0],
                                              n2=split[1], num_mel_bins=num_mel_bins) for split in splits}
    assert cost[(plan.n1, plan.n2)] == min(cost.values()), cost
    bins = plan.bin_of_term[plan.bin_of_term >= 0]
    np.testing.assert_array_equal(np.sort(bins), np.arange(fft_length // 2 + 1))


def test_macs_count_the_frames_and_the_products_of_either_power_spectrum():
    config = make_config(22050, clip_seconds=0.37, fmin_hz=50.0, fmax_hz=9000.0, num_mel_bins=40)
    n = config.audio.clip_samples
    matmul = LogMel.from_config_object(config, dft="matmul")
    frames = np.asarray(matmul(np.zeros((1, n), np.float32))).shape[1]
    assert matmul.macs(n) == frames * macs_of_the_products(matmul.four_step, config.features.num_mel_bins)
    fft = LogMel.from_config_object(config)
    size = config.fft_length_samples
    assert fft.macs(n) == frames * ((size // 2 + 1) * config.features.num_mel_bins + int(2 * size * np.log2(size)))


@pytest.mark.parametrize("dft", ["fft", "matmul"])
def test_frames_and_macs_of_fewer_samples_than_a_frame_are_refused_as_the_layer_refuses_them(dft):
    """num_frames gave 0 for frame - 1 samples and -2 for 80 samples in 400-sample frames (hop 160), and macs a
    negative cost; every caller (the layer's shapes, export's features.json, models' cost line) uses them for a clip
    the layer takes, and the layer refuses a shorter one. Both raise its error now (a ValueError), naming the
    samples and the frame; one frame's samples give 1 frame, and the layer's refusal reads the same."""
    config = make_config(16000, clip_seconds=0.5, fmin_hz=50.0, fmax_hz=7000.0, num_mel_bins=40)
    layer = LogMel.from_config_object(config, dft=dft)
    frame, hop = layer.frame_length_samples, layer.hop_length_samples
    assert (frame, hop) == (400, 160)
    for samples in (frame - 1, 80, 0):
        message = rf"^LogMel input has {samples} samples, fewer than one frame \(frame_length_samples=400\)$"
        for count in (layer.num_frames, layer.macs):
            with pytest.raises(ValueError, match=message):
                count(samples)
    assert [layer.num_frames(n) for n in (frame, frame + hop - 1, frame + hop)] == [1, 1, 2]
    assert layer.macs(frame) > 0 and layer.macs(frame + hop) == 2 * layer.macs(frame)
    with pytest.raises(ConfigError, match=r"^LogMel input has 80 samples, fewer than one frame \(frame_length_"):
        layer(np.zeros((1, 80), np.float32))


@pytest.mark.parametrize("dft", ["fft", "matmul"])
def test_a_clip_of_exactly_one_frame_gives_that_frame(dft, rng):
    """The shortest input LogMel and compute_feature_stats take is one frame's samples (one frame out)."""
    config = make_config(22050, clip_seconds=0.2, fmin_hz=50.0, fmax_hz=9000.0, num_mel_bins=40)
    frame = config.frame_length_samples
    clip = (0.1 * rng.standard_normal((1, frame))).astype(np.float32)
    layer = LogMel.from_config_object(config, dft=dft)
    ours = np.asarray(layer(clip))
    assert ours.shape == (1, 1, config.features.num_mel_bins)
    assert_log_mel_close(ours[0], librosa_log_mel(config, clip[0]), "one frame")
    mean, _ = compute_feature_stats(config, [clip])
    np.testing.assert_allclose(mean, ours[0, 0], atol=1e-4)


def test_the_output_shape_keeps_a_known_batch():
    config = make_config(16000, clip_seconds=0.25)
    layer = LogMel.from_config_object(config)
    n = config.audio.clip_samples
    assert layer.compute_output_shape((3, n)) == tuple(layer(np.zeros((3, n), np.float32)).shape)
    assert layer.compute_output_shape((3, None)) == (3, None, config.features.num_mel_bins)


@pytest.mark.parametrize("dft", ["fft", "matmul"])
def test_a_layer_from_its_config_has_the_same_band_edges(dft, rng):
    """Every other round trip used the default band (20 Hz to half the rate): a config that saved another fmax
    (or fmin) rebuilt a model.keras with another filterbank."""
    config = make_config(22050, clip_seconds=0.2, fmin_hz=150.0, fmax_hz=6000.0, num_mel_bins=32)
    layer = LogMel.from_config_object(config, dft=dft)
    clone = LogMel.from_config(layer.get_config())
    assert (clone.sample_rate_hz, clone.fmin_hz, clone.fmax_hz, clone.dft) == (22050, 150.0, 6000.0, dft)
    np.testing.assert_array_equal(clone.mel_matrix, slaney_mel_matrix(
        sample_rate_hz=22050, fft_length=config.fft_length_samples, num_mel_bins=32, fmin_hz=150.0,
        fmax_hz=6000.0).astype(np.float32))
    waveform = (0.1 * rng.standard_normal((1, config.audio.clip_samples))).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(clone(waveform)), np.asarray(layer(waveform)))


def test_for_tflite_keeps_the_weights_of_the_layers_after_the_frontend(rng):
    """The feature extractor (the one model for_tflite was tested with) has no weights: a copy that kept its
    initial weights gave the same features and every test passed."""
    import keras

    config = make_config(16000, clip_seconds=0.25)
    waveform = keras.Input(shape=(config.audio.clip_samples,), name="waveform")
    features = LogMel.from_config_object(config, name="log_mel")(waveform)
    logits = keras.layers.Dense(3, name="logits")(keras.layers.Flatten()(features))
    model = keras.Model(waveform, logits)
    model.get_layer("logits").set_weights([0.01 * rng.standard_normal(w.shape) for w in
                                           model.get_layer("logits").get_weights()])
    copy = for_tflite(model)
    assert copy.get_layer("log_mel").dft == "matmul"
    for ours, theirs in zip(copy.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    clips = (0.1 * rng.standard_normal((2, config.audio.clip_samples))).astype(np.float32)
    np.testing.assert_allclose(copy.predict(clips, verbose=0), model.predict(clips, verbose=0), rtol=1e-4, atol=1e-4)


def test_feature_stats_of_silence_give_the_least_deviation():
    """Silence alone leaves every bin constant, the median deviation 0 and the floor with it: MIN_STD keeps the
    variance off 0 (keras.layers.Normalization divides by its root)."""
    from sound_tf.frontend import MIN_STD

    config = make_config(16000, clip_seconds=0.25)
    mean, variance = compute_feature_stats(config, [np.zeros((2, config.audio.clip_samples), np.float32)])
    np.testing.assert_allclose(mean, np.log(config.features.log_offset), rtol=1e-6)
    np.testing.assert_allclose(variance, MIN_STD ** 2, rtol=1e-6)


def test_a_layer_refuses_a_two_point_fft():
    """fft_length 2 (with two-sample frames) has no four-step split: min() of nothing raised a ValueError."""
    with pytest.raises(ConfigError, match=r"^fft_length must be a power of two >= frame_length_samples=2 "
                                          r"\(and >= 4\), got 2$"):
        LogMel(sample_rate_hz=16000, frame_length_samples=2, hop_length_samples=1, fft_length=2, num_mel_bins=4,
               fmin_hz=0.0, fmax_hz=8000.0, log_offset=1e-6)
