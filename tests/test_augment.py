"""Augmentation: each transform's physics, seeding through tf.data, SpecAugment, mixup, the CLI."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import scipy.signal
import scipy.stats
import soundfile as sf
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from conftest import sine
from sound_tf import augment
from sound_tf.config import AugmentConfig, Config, apply_overrides, config_from_recipe
from sound_tf.errors import ConfigError

RATE_HZ = 16000
ALL_OFF = {f"augment.{name}_probability": 0.0
           for name in ("shift", "speed", "stretch", "pitch", "gain", "noise", "mixup")}
#: The waveform path of shift, gain, noise and mixup, which these tests check (tests/test_feature_augment.py
#: checks the model's feature path against it).
ON_WAVEFORM = {f"augment.{name}_domain": "waveform" for name in ("shift_gain", "noise", "mixup")}
#: ... and speed, stretch and pitch too.
ALL_ON_WAVEFORM = {**ON_WAVEFORM, "augment.rescale_domain": "waveform"}
TRANSFORMS = ("shift", "speed", "stretch", "pitch", "gain", "noise")


def config_with(**augment_values) -> Config:
    """A 1-s 16 kHz config with every waveform transform off except the given ``augment.*`` values."""
    overrides = {**ALL_OFF, **ON_WAVEFORM, **{f"augment.{k}": v for k, v in augment_values.items()}}
    return apply_overrides(Config(), overrides)


def peak_hz(wave: np.ndarray, rate_hz: int = RATE_HZ) -> tuple[float, float]:
    """Frequency of the largest FFT bin of a Hann-windowed clip, and the bin width."""
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(spectrum)) * rate_hz / len(wave), rate_hz / len(wave)


def rms_db(wave: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(wave, dtype=np.float64)))


def burst(seconds_before: float = 0.5, seconds_on: float = 1.0, seconds_after: float = 0.5,
          freq_hz: float = 440.0) -> np.ndarray:
    """Silence, a tone, silence."""
    tone = sine(freq_hz, seconds_on, RATE_HZ)
    return np.concatenate([np.zeros(int(seconds_before * RATE_HZ), np.float32), tone,
                           np.zeros(int(seconds_after * RATE_HZ), np.float32)])


def burst_seconds(wave: np.ndarray) -> float:
    """Time between the first and last sample whose 10-ms RMS envelope exceeds half its maximum."""
    window = RATE_HZ // 100
    envelope = np.sqrt(np.convolve(np.square(wave), np.ones(window) / window, mode="same"))
    above = np.flatnonzero(envelope > 0.5 * envelope.max())
    return (above[-1] - above[0]) / RATE_HZ


# -- waveform transforms, one property each --------------------------------------------------------

def _vocoder_lengths_of(factors: np.ndarray) -> np.ndarray:
    """``_vocoder_lengths(1024, 2, factor)`` for each float32 factor, one scalar at a time as the augmenter asks
    for it, in one graph: ``[len(factors), 2]`` (analysis, synthesis). Called eagerly, factor by factor, the sweeps
    below took about 8 ms a factor (37 s for the first one)."""
    @tf.function(autograph=False)
    def each(values: tf.Tensor) -> tf.Tensor:
        return tf.map_fn(lambda factor: tf.stack(augment._vocoder_lengths(1024, 2, factor)), values,
                         fn_output_signature=tf.int32)

    return each(tf.constant(np.asarray(factors, np.float32).reshape(-1))).numpy()


@pytest.mark.parametrize("semitones", [-2.0, 1.5, 2.0])
def test_pitch_shift_moves_the_peak_and_keeps_length_and_level(semitones):
    tone = sine(440.0, 1.0, RATE_HZ)
    out = augment.pitch_shift(tone, semitones, sample_rate_hz=RATE_HZ).numpy()
    measured, bin_hz = peak_hz(out)
    assert out.shape == tone.shape
    assert abs(measured - 440.0 * 2 ** (semitones / 12)) <= bin_hz
    assert abs(rms_db(out) - rms_db(tone)) < 0.5


def test_vocoder_fft_lengths_are_fast_and_within_two_cents_of_any_factor():
    log_ratios, analysis, synthesis = augment._vocoder_length_pairs(1024, 2)
    for length in np.concatenate([analysis, synthesis]):
        n = int(length)
        for p in (2, 3, 5, 7, 11, 13, 17, 19, 23):
            while n % p == 0:
                n //= p
        assert n == 1 and length % 2 == 0, length
    assert np.all(np.abs(analysis - 1024) <= 0.1 * 1024)
    semitones = np.linspace(-24.0, 24.0, 2001)
    factors = 2.0 ** (semitones / 12) * np.array([1.0, 0.93, 1.07])[:, None]  # pitch times speed
    factors = factors[(factors >= 0.25) & (factors <= 4.0)]
    picked = _vocoder_lengths_of(factors)
    errors = np.abs(1200 * np.log2(picked[:, 0] / picked[:, 1] / factors))
    assert len(errors) == len(factors) and errors.max() < 1.75  # cents
    a, s = (int(v) for v in augment._vocoder_lengths(1024, 2, tf.constant(1.0)))
    assert a == s == 1024  # a pure time stretch keeps the configured window


def test_vocoder_lengths_are_the_cheapest_pair_within_the_tolerance():
    """Brute force over every pair: the pick is the cheapest within the tolerance, the nearest of those.

    Comparisons allow 0.01% of the tolerance, where float32 rounding may tip a factor to either side.
    """
    log_ratios, analysis, synthesis = augment._vocoder_length_pairs(1024, 2)
    ratios = log_ratios.astype(np.float64)
    costs = np.array([augment._fft_cost_class(int(a)) + augment._fft_cost_class(int(s))
                      for a, s in zip(analysis, synthesis)])
    tolerance = augment.VOCODER_TOLERANCE_CENTS * np.log(2) / 1200
    slack = 1e-4 * tolerance
    rng = np.random.default_rng(0)
    factors = np.concatenate([rng.uniform(0.9, 1.1, 150) * 2 ** (rng.uniform(-2, 2, 150) / 12),
                              np.exp(rng.uniform(np.log(0.25), np.log(4.0), 150))]).astype(np.float32)
    picked_costs, nearest_costs = [], []
    for factor, (a, s) in zip(factors, _vocoder_lengths_of(factors), strict=True):
        pick = int(np.flatnonzero((analysis == a) & (synthesis == s))[0])
        distance = np.abs(ratios - np.log(np.float64(factor)))
        assert distance[pick] <= tolerance + slack, factor
        inside = distance <= tolerance - slack
        assert costs[pick] <= costs[inside].min(), factor  # nothing cheaper within the tolerance
        same = (costs == costs[pick]) & (distance <= tolerance + slack)
        assert distance[pick] <= distance[same].min() + slack, factor  # the nearest of the cheapest
        picked_costs.append(costs[pick])
        nearest_costs.append(costs[np.argmin(distance)])
    assert np.mean(picked_costs) < 0.6 * np.mean(nearest_costs)  # mostly lengths of 2, 3 and 5 instead


def test_vocoder_phase_sums_are_exclusive_cumulative_sums_on_both_paths(rng):
    limit = augment._DENSE_CUMSUM_ROWS  # up to it one matrix product, beyond it tf.cumsum
    in_graph = tf.function(augment._exclusive_cumsum_rows)
    for rows in (1, 2, 37, limit, limit + 1, 3 * limit):
        x = rng.standard_normal((rows, 541)).astype(np.float32)
        expected = np.concatenate([np.zeros((1, 541)), np.cumsum(x.astype(np.float64), axis=0)[:-1]])
        for run in (augment._exclusive_cumsum_rows, in_graph):
            np.testing.assert_allclose(run(tf.constant(x)).numpy(), expected, atol=2e-4 * np.sqrt(rows))


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_changes_duration_by_rate_and_keeps_pitch(rate):
    wave = burst()
    out = augment.time_stretch(wave, rate, keep_length=False).numpy()
    assert len(out) == round(len(wave) / rate)
    assert burst_seconds(out) / burst_seconds(wave) == pytest.approx(1 / rate, rel=0.03)
    measured, bin_hz = peak_hz(out)
    assert abs(measured - 440.0) <= bin_hz
    kept = augment.time_stretch(wave, rate).numpy()  # training path: back to the input length
    assert kept.shape == wave.shape


@pytest.mark.parametrize("overlap", [2, 3, 4])
def test_vocoder_at_rate_one_gives_the_clip_back_from_its_first_sample(overlap, rng):
    """Every sample lies in ``overlap`` analysis frames, the first ones too: nothing fades in or out."""
    wave = rng.standard_normal(RATE_HZ).astype(np.float32)
    out = augment.time_stretch(wave, 1.0, keep_length=False, frame_length_samples=960,
                               hop_length_samples=960 // overlap).numpy()
    assert out.shape == wave.shape
    np.testing.assert_allclose(out, wave, atol=1e-5)


@pytest.mark.parametrize("tone_hz", [440.0, 1500.0])
def test_pitch_shift_and_stretch_keep_a_steady_tone_to_its_last_sample(tone_hz):
    """The last 10 ms keep their level (within 6 dB of the middle of the clip) for every pitch shift on a
    0.1-semitone grid within +-2 and for stretches slower and faster. Built from frames up to a quarter
    frame past the clip's end, they faded by up to 80 dB while the vocoder read zeros there; librosa's
    pitch_shift fades them by up to 9-12 dB on this grid."""
    wave = sine(tone_hz, 1.0, RATE_HZ)
    tail = RATE_HZ // 100

    def tail_db(out: np.ndarray) -> float:
        middle = out[len(out) // 2 - 5 * tail:len(out) // 2 + 5 * tail]
        return rms_db(out[-tail:]) - rms_db(middle)

    levels = {f"pitch {semitones:+.1f}": tail_db(augment.pitch_shift(wave, float(semitones),
                                                                     sample_rate_hz=RATE_HZ).numpy())
              for semitones in np.linspace(-2.0, 2.0, 41)}
    levels.update({f"stretch {rate}": tail_db(augment.time_stretch(wave, rate, keep_length=False).numpy())
                   for rate in (0.8, 0.9, 0.99, 1.1, 1.25)})
    faded = {name: round(level, 1) for name, level in levels.items() if level < -6.0}
    assert not faded


@pytest.mark.parametrize("fundamental_hz, partials", [(220.0, 6), (100.0, 20)])
def test_a_tone_that_starts_after_silence_keeps_its_level_through_the_vocoder(fundamental_hz, partials):
    """The 10-ms levels of a harmonic tone gated on after silence stay within 1.5 dB of the input's, from
    0.1 to 0.3 s into the tone, for every pitch shift on a 0.1-semitone grid within +-2 and for stretches
    from 0.8 to 1.25. Without phase locking, a jump of the frame index on a frame holding the onset
    turned the bins of one partial apart, and the tone lost up to 6-7 dB for its whole length."""
    t = np.arange(RATE_HZ) / RATE_HZ
    onset, length = 0.3123, 0.4
    gate = (t >= onset) & (t < onset + length)
    wave = np.zeros(RATE_HZ, np.float32)
    for k in range(1, partials + 1):
        wave[gate] += (0.3 / k) * np.sin(2 * np.pi * fundamental_hz * k * t[gate] + k)
    ten_ms = RATE_HZ // 100

    def levels_db(out: np.ndarray, start_s: float) -> np.ndarray:
        part = out[int(start_s * RATE_HZ):int(start_s * RATE_HZ) + 20 * ten_ms].reshape(20, ten_ms)
        return 10 * np.log10(np.mean(part.astype(np.float64) ** 2, axis=1))

    reference = levels_db(wave, onset + 0.1)
    worst = {}
    for semitones in np.round(np.linspace(-2.0, 2.0, 41), 1):
        out = augment.pitch_shift(wave, float(semitones), sample_rate_hz=RATE_HZ).numpy()
        worst[f"pitch {semitones:+.1f}"] = np.abs(levels_db(out, onset + 0.1) - reference).max()
    for rate in (0.8, 0.9, 1.1, 1.2, 1.25):
        out = augment.time_stretch(wave, rate, keep_length=False).numpy()
        worst[f"stretch {rate}"] = np.abs(levels_db(out, (onset + 0.1) / rate) - reference.mean()).max()
    off = {name: round(float(db), 2) for name, db in worst.items() if db > 1.5}
    assert not off


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_duration_and_pitch_together(factor):
    wave = burst()
    out = augment.change_speed(wave, factor).numpy()
    assert len(out) == round(len(wave) / factor)
    assert burst_seconds(out) / burst_seconds(wave) == pytest.approx(1 / factor, rel=0.03)
    measured, bin_hz = peak_hz(out)
    exact_factor = len(wave) / len(out)
    assert abs(measured - 440.0 * exact_factor) <= bin_hz
    assert augment.speed_perturb(wave, factor).shape == wave.shape


@pytest.mark.parametrize("factor", [0.9, 1.1])
@pytest.mark.parametrize("tone_hz", [3000.0, 6000.0])
def test_speed_change_is_band_limited(tone_hz, factor):
    """A high tone sped up or slowed down stays one tone: nothing else within 80 dB of it, so no image
    or alias (linear-interpolation resampling, used before, left one at -9 to -26 dB of these tones)."""
    out = augment.change_speed(sine(tone_hz, 1.0, RATE_HZ), factor).numpy()
    inner = out[1024:-1024]  # away from the clip's ends
    spectrum = np.abs(np.fft.rfft(inner * np.hanning(len(inner))))
    frequencies = np.fft.rfftfreq(len(inner), 1.0 / RATE_HZ)
    peak = int(np.argmax(spectrum))
    bin_hz = frequencies[1]
    assert abs(frequencies[peak] - tone_hz * factor) <= tone_hz * factor * (2 ** (2 / 1200) - 1) + bin_hz
    elsewhere = spectrum[np.abs(frequencies - frequencies[peak]) > 20 * bin_hz]  # past the window's main lobe
    assert 20 * np.log10(elsewhere.max() / spectrum[peak]) < -80.0


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("snr_db", [3.0, 17.5, 30.0])
def test_add_noise_hits_the_requested_snr(exponent, snr_db, rng):
    clean = sine(300.0, 1.0, RATE_HZ) + 0.1 * rng.standard_normal(RATE_HZ).astype(np.float32)
    noise = augment.colored_noise(RATE_HZ, tf.constant([3, 4]), exponent=exponent)
    noisy = augment.add_noise(clean, noise, snr_db).numpy()
    measured = rms_db(clean) - rms_db(noisy - clean)
    assert abs(measured - snr_db) < 0.5


def test_add_noise_with_a_known_noise_power_matches_the_measured_one(rng):
    clean = sine(300.0, 1.0, RATE_HZ)
    noise = rng.standard_normal(RATE_HZ).astype(np.float32)
    noise /= np.sqrt(np.mean(np.square(noise, dtype=np.float64)))  # power 1
    measured = augment.add_noise(clean, noise, 12.0).numpy()
    given = augment.add_noise(clean, noise, 12.0, noise_power=1.0).numpy()
    np.testing.assert_allclose(given, measured, rtol=1e-5, atol=1e-6)
    assert rms_db(clean) - rms_db(given - clean) == pytest.approx(12.0, abs=0.01)


@pytest.mark.parametrize("noise_power", [-1.0, float("nan"), float("inf"), tf.constant(-0.5)])
def test_add_noise_refuses_a_given_noise_power_that_is_not_a_power(noise_power, rng):
    """A negative given noise power made the scale sqrt(-x): every sample NaN; NaN gave NaNs too, and an
    infinite one silently added no noise at all."""
    wave, noise = sine(440.0, 0.25, RATE_HZ), rng.standard_normal(RATE_HZ // 4).astype(np.float32)
    with pytest.raises(ConfigError, match="noise_power must be a finite mean square >= 0"):
        augment.add_noise(wave, noise, 10.0, noise_power=noise_power)
    np.testing.assert_array_equal(augment.add_noise(wave, noise, 10.0, noise_power=0.0).numpy(), wave)  # silent


@pytest.mark.parametrize("snr_db", [-80.5, 200.5, 250.0, float("nan"), float("-inf"), tf.constant(300.0)])
def test_add_noise_refuses_an_snr_outside_its_range_by_name(snr_db, rng):
    """add_noise documents SNRs in [-80, 200] dB, or infinity for no noise: one beyond either end, NaN or minus
    infinity is refused with the argument's name and value, and the ends themselves are taken."""
    wave, noise = sine(440.0, 0.25, RATE_HZ), rng.standard_normal(RATE_HZ // 4).astype(np.float32)
    with pytest.raises(ConfigError, match=r"^snr_db must be in \[-80.0, 200.0\], got "):
        augment.add_noise(wave, noise, snr_db)
    loudest = augment.add_noise(wave, noise, -80.0).numpy()
    assert rms_db(wave) - rms_db(loudest - wave) == pytest.approx(-80.0, abs=0.01)
    np.testing.assert_allclose(augment.add_noise(wave, noise, 200.0).numpy(), wave, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(augment.add_noise(wave, noise, float("inf")).numpy(), wave)  # no noise at all


@pytest.mark.parametrize("color, exponent", [("white", 0.0), ("pink", 1.0), ("brown", 2.0)])
def test_generated_noise_has_the_colour_slope(color, exponent):
    noise = augment.colored_noise(4 * RATE_HZ, tf.constant([5, 6]), exponent=exponent).numpy()
    freqs, psd = scipy.signal.welch(noise, fs=RATE_HZ, nperseg=4096)
    band = (freqs >= 50) & (freqs <= 5000)
    slope = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.15), color
    assert np.sqrt(np.mean(noise ** 2)) == pytest.approx(1.0, rel=1e-3)
    if exponent > 0:  # drawn in the frequency domain, with no DC: noise, not an offset (white is drawn in time)
        assert abs(float(np.mean(noise))) < 1e-3


def test_the_generated_noise_pool_follows_the_runs_seed():
    """Seed sweeps and cross-validation folds get their own generated noise; one seed, the same noise."""
    small = {"audio.clip_seconds": 0.25, "augment.noise_colors": ["pink"]}
    pool = [augment.WaveformAugmenter._generated_noise(apply_overrides(Config(), {**small, "train.seed": seed}))
            for seed in (0, 0, 1)]
    np.testing.assert_array_equal(pool[0], pool[1])
    assert not np.allclose(pool[0], pool[2])


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_generated_noise_of_no_samples_is_empty(exponent):
    """An empty coloured draw used to reach ducc's inverse FFT, which aborts the process on length 0."""
    assert augment.colored_noise(0, tf.constant([5, 6]), exponent=exponent).shape == (0,)


@pytest.mark.parametrize("gain_db", [-6.0, 0.0, 4.5])
def test_gain_changes_rms_by_the_requested_db(gain_db):
    tone = sine(440.0, 0.5, RATE_HZ)
    out = augment.apply_gain(tone, gain_db).numpy()
    assert rms_db(out) - rms_db(tone) == pytest.approx(gain_db, abs=1e-3)


@pytest.mark.parametrize("shift", [37, -37])
def test_time_shift_moves_an_impulse(shift):
    impulse = np.zeros(1000, np.float32)
    impulse[10] = impulse[980] = 1.0
    rolled = augment.time_shift(impulse, shift, mode="roll").numpy()
    zeroed = augment.time_shift(impulse, shift, mode="zero").numpy()
    assert sorted(np.flatnonzero(rolled)) == sorted([(10 + shift) % 1000, (980 + shift) % 1000])
    kept = [i + shift for i in (10, 980) if 0 <= i + shift < 1000]
    assert list(np.flatnonzero(zeroed)) == kept  # the impulse pushed past an edge is gone, no wrap
    assert zeroed.shape == rolled.shape == impulse.shape


def test_fit_length_centres():
    wave = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(augment.fit_length(wave, 6).numpy(), wave[2:8])
    np.testing.assert_array_equal(augment.fit_length(wave, 14).numpy(), np.pad(wave, (2, 2)))


@pytest.mark.parametrize("num_samples", [-1, 3.5, float("nan"), True, tf.constant(-2), np.int64(2**40)])
def test_fit_length_refuses_a_length_that_is_not_a_whole_number_of_samples(num_samples):
    """num_samples was not checked: -1 failed in TensorFlow ("Dimension -1 must be >= 0"), 3.5 and 3.0 with
    "Cannot convert 3.5 to EagerTensor of dtype int32", and True padded to one sample."""
    with pytest.raises(ConfigError, match="num_samples must be a whole number of samples >= 0"):
        augment.fit_length(np.ones(10, np.float32), num_samples)


def test_fit_length_takes_whole_floats_and_integer_tensors_of_any_width():
    wave = np.arange(1.0, 11.0, dtype=np.float32)
    np.testing.assert_array_equal(augment.fit_length(wave, 14.0).numpy(), np.pad(wave, 2))
    assert augment.fit_length(wave, np.float32(6.0)).shape == (6,)  # a static length
    np.testing.assert_array_equal(augment.fit_length(wave, tf.constant(4, tf.int64)).numpy(), wave[3:7])
    traced = tf.function(lambda length: augment.fit_length(wave, length))
    np.testing.assert_array_equal(traced(tf.constant(4, tf.int64)).numpy(), wave[3:7])


# -- the augmenter: wiring, seeding, robustness ------------------------------------------------------

def test_augmenter_applies_drawn_pitch_and_noise_snr():
    config = config_with(pitch_probability=1.0, noise_probability=1.0, rescale_domain="waveform")
    augmenter = augment.make_waveform_augmenter(config)
    tone = sine(440.0, 1.0, RATE_HZ)
    params = augmenter.draw(tf.constant([1, 2]), RATE_HZ)
    pitched = augmenter.apply(tone, {**params, "noise_applied": tf.constant(False)}).numpy()
    measured, bin_hz = peak_hz(pitched)
    assert abs(measured - 440.0 * 2 ** (float(params["pitch_semitones"]) / 12)) <= bin_hz
    noisy = augmenter.apply(tone, params).numpy()
    assert rms_db(pitched) - rms_db(noisy - pitched) == pytest.approx(float(params["noise_snr_db"]), abs=0.5)


def test_noise_bank_is_read_through_the_cache_and_mixed_at_the_snr(tmp_path, rng):
    folder = tmp_path / "noise"
    folder.mkdir()
    for i in range(2):
        sf.write(folder / f"n{i}.wav", 0.2 * rng.standard_normal(RATE_HZ // 2), RATE_HZ, subtype="PCM_16")
    config = config_with(noise_probability=1.0, noise_dir=str(folder))
    bank = augment.load_noise_bank(config)
    assert bank.shape == (RATE_HZ,) and bank.dtype == np.float32
    augmenter = augment.make_waveform_augmenter(config, noise_bank=bank)
    tone = sine(440.0, 1.0, RATE_HZ)
    params = augmenter.draw(tf.constant([4, 5]), RATE_HZ)
    noisy = augmenter.apply(tone, params).numpy()
    added = noisy - tone
    offset = int(params["noise_offset"])
    window = np.roll(bank, -offset)[:RATE_HZ]  # the bank window the augmenter read (wrapping around)
    assert abs(np.corrcoef(added, window)[0, 1]) > 0.999
    assert rms_db(tone) - rms_db(added) == pytest.approx(float(params["noise_snr_db"]), abs=0.5)


def test_a_broken_link_in_the_noise_folder_is_reported_as_skipped(tmp_path, rng, caplog):
    """Only regular files were listed: a broken link was left out without a word (the data's are skipped with
    their reason), and a folder holding only one said "0 audio file(s), 0 unreadable"."""
    folder = tmp_path / "noise"
    folder.mkdir()
    (folder / "gone.wav").symlink_to(tmp_path / "moved.wav")
    config = config_with(noise_probability=1.0, noise_dir=str(folder))
    with pytest.raises(ConfigError, match=r"holds no readable, non-silent audio \(1 audio file, "
                                          r"1 unreadable: gone.wav, 0 silent\)"):
        augment.load_noise_bank(config)
    (folder / "lost.wav").symlink_to(tmp_path / "elsewhere.wav")
    with pytest.raises(ConfigError, match=r"holds no readable, non-silent audio \(2 audio files, "
                                          r"2 unreadable: gone.wav, lost.wav, 0 silent\)"):
        augment.load_noise_bank(config)
    (folder / "lost.wav").unlink()
    sf.write(folder / "n.wav", 0.2 * rng.standard_normal(RATE_HZ), RATE_HZ, subtype="PCM_16")
    caplog.clear()
    with caplog.at_level("WARNING", logger="sound_tf.audio"):
        assert augment.load_noise_bank(config).shape == (RATE_HZ,)
    assert [r.getMessage() for r in caplog.records if r.name == "sound_tf.audio"] == [
        f"skipping {folder / 'gone.wav'}: broken symbolic link (its target is missing or links back to itself); "
        f"augment.noise_dir={folder} leaves it out of the noise"]  # not read as a data file the data lines count


def test_a_silent_noise_file_is_said_to_be_left_out_not_trained_on_as_its_class(tmp_path, rng, caplog):
    """A silent file in augment.noise_dir was reported as "used as silence labelled as its class": noise has no
    class, and the bank leaves a silent file out; a folder of silent files alone did not say they were silent, and
    one of a silent and a corrupt file named the silent one only ("1 unreadable, 1 silent: a_zeros.wav")."""
    folder = tmp_path / "noise"
    folder.mkdir()
    sf.write(folder / "a_zeros.wav", np.zeros(RATE_HZ // 2, np.float32), RATE_HZ, subtype="PCM_16")
    config = config_with(noise_probability=1.0, noise_dir=str(folder))
    with caplog.at_level("WARNING", logger="sound_tf"):
        with pytest.raises(ConfigError, match=r"holds no readable, non-silent audio \(1 audio file, "
                                              r"0 unreadable, 1 silent: a_zeros.wav\)"):
            augment.load_noise_bank(config)
    assert not caplog.records  # the error names it: not the decode cache's "used as silence labelled as its class"
    (folder / "c_corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)  # no WAV behind the magic
    with pytest.raises(ConfigError, match=r"holds no readable, non-silent audio \(2 audio files, "
                                          r"1 unreadable: c_corrupt.wav, 1 silent: a_zeros.wav\)"):
        augment.load_noise_bank(config)  # the unreadable file named too: it was counted alone
    (folder / "c_corrupt.wav").unlink()
    caplog.clear()  # its 'skipping ... c_corrupt.wav' line
    noise = 0.2 * rng.standard_normal(RATE_HZ)
    sf.write(folder / "b_noise.wav", noise, RATE_HZ, subtype="PCM_16")
    with caplog.at_level("WARNING", logger="sound_tf"):
        bank = augment.load_noise_bank(config)
    assert bank.shape == (RATE_HZ,)  # the silent half second is not in it
    assert np.corrcoef(bank, noise)[0, 1] > 0.999
    assert [r.getMessage() for r in caplog.records] == [
        f"augment.noise_dir={folder}: 1 silent file left out of the noise (every sample is zero; silence adds no "
        f"noise): a_zeros.wav"]


def test_the_noise_line_counts_the_files_mixed_in_and_the_silent_ones_are_named_at_each_load(tmp_path, rng, caplog):
    """The log line counted every audio file of the folder, silent ones too: 4 files, 6.0 s for 2 files of noise
    and 2 silent ones left out of it; and the silent files were named only when they entered the decode cache, one
    warning each, so a later run (the cache reused) counted them without a word. Now the line and the loader
    agree, and one warning names the silent files at every load."""
    folder = tmp_path / "noise"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "a.wav", 0.2 * rng.standard_normal(RATE_HZ * 3 // 2), RATE_HZ, subtype="PCM_16")
    sf.write(folder / "sub" / "b.flac", 0.2 * rng.standard_normal(RATE_HZ // 2), RATE_HZ, subtype="PCM_16")
    sf.write(folder / "quiet.wav", np.zeros(RATE_HZ), RATE_HZ, subtype="PCM_16")
    sf.write(folder / "sub" / "zeros.wav", np.full(RATE_HZ // 4, 1e-6), RATE_HZ, subtype="FLOAT")  # 0 in 16 bits
    (folder / "gone.wav").symlink_to(tmp_path / "moved.wav")
    config = apply_overrides(config_with(noise_probability=0.5, noise_dir=str(folder)),
                             {"augment.spec_probability": 0.0})
    warned = f"augment.noise_dir={folder}: 2 silent files left out of the noise (every sample is zero; silence " \
             f"adds no noise): quiet.wav, sub/zeros.wav"
    for load in ("decoded", "read from the cache"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="sound_tf"):
            bank, noise = augment.load_noise_folder(config)
        assert [r.getMessage() for r in caplog.records] == [
            f"skipping {folder / 'gone.wav'}: broken symbolic link (its target is missing or links back to itself); "
            f"augment.noise_dir={folder} leaves it out of the noise", warned], load
        assert bank.shape == (2 * RATE_HZ,) and noise.seconds == 2.0 and noise.used == 2
        assert noise.silent == ("quiet.wav", "sub/zeros.wav") and noise.unreadable == ("gone.wav",)
        assert sorted(noise.files) == ["a.wav", "gone.wav", "quiet.wav", "sub/b.flac", "sub/zeros.wav"]
        assert noise.files["quiet.wav"] == ((folder / "quiet.wav").stat().st_size,
                                            (folder / "quiet.wav").stat().st_mtime_ns)
        assert noise.files["gone.wav"] == (-1, -1)
        line = (f"augment: noise p0.5 10-30 dB SNR (waveform) from {folder} (2 files, 2.0 s; 2 silent files skipped: "
                f"quiet.wav, sub/zeros.wav; 1 unreadable file skipped: gone.wav)")
        assert augment.summary_line(config, noise_folder=noise) == line
        # Without the loader's NoiseFolder the line loads the folder: it counted every audio file listed
        # ("5 files, 2.0 s"), the silent and unreadable ones too.
        assert augment.summary_line(config) == line
    assert augment.NoiseFolder.from_dict(json.loads(json.dumps(noise.to_dict()))) == noise


def test_a_noise_file_rewritten_with_its_size_and_time_is_a_changed_file_and_decoded_again(tmp_path, rng):
    """A noise file rewritten with the same size and modification time (cp -p, rsync -a, a tar extracted again)
    was the same file to noise.json, which kept names, sizes and times only, and the decode cache (keyed on them)
    gave its earlier content back. Its BLAKE2b hash is kept now: it is a changed file, and the load given the
    recorded folder decodes it again. A record from before the hashes compares sizes and times."""
    import os

    from sound_tf import audio

    folder = tmp_path / "noise"
    folder.mkdir()
    first = (0.2 * rng.standard_normal(RATE_HZ)).astype(np.float32)
    sf.write(folder / "a.wav", 0.2 * rng.standard_normal(RATE_HZ), RATE_HZ, subtype="PCM_16")
    sf.write(folder / "b.wav", first, RATE_HZ, subtype="PCM_16")
    config = config_with(noise_probability=0.5, noise_dir=str(folder))
    bank, earlier = augment.load_noise_folder(config)
    assert sorted(earlier.hashes) == ["a.wav", "b.wav"] and all(len(h) == 32 for h in earlier.hashes.values())
    assert augment.NoiseFolder.from_dict(json.loads(json.dumps(earlier.to_dict()))) == earlier
    stat = (folder / "b.wav").stat()
    second = (0.2 * rng.standard_normal(RATE_HZ)).astype(np.float32)
    sf.write(folder / "b.wav", second, RATE_HZ, subtype="PCM_16")
    os.utime(folder / "b.wav", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (folder / "b.wav").stat().st_size == stat.st_size
    files, _ = audio.list_audio_folder(folder)
    now = augment.take_noise_folder(folder, files)
    assert now.files == earlier.files and now.changes_since(earlier) == "1 file changed (b.wav)"
    unhashed = augment.NoiseFolder.from_dict({k: v for k, v in earlier.to_dict().items() if k != "hashes"})
    assert now.changes_since(unhashed) == ""  # sizes and times only
    reloaded, later = augment.load_noise_folder(config)
    assert later.hashes == now.hashes and later.changes_since(earlier) == "1 file changed (b.wav)"
    half = RATE_HZ  # a.wav, then b.wav: b.wav's samples are the new ones, not the cache's copy of the old
    assert np.allclose(reloaded[half:], second, atol=1 / 32768) and not np.allclose(reloaded[half:], first, atol=0.01)
    assert np.array_equal(reloaded[:half], bank[:half])


def test_a_noise_file_rewritten_with_its_size_and_time_is_decoded_again_by_a_run_with_no_record(tmp_path, rng,
                                                                                                monkeypatch):
    """A new run (or a crossval's next fold, or another run's resume) has no noise.json naming the earlier content,
    yet it shares the decode cache, keyed on size and time: it mixed in the earlier samples while its noise.json
    recorded the new file's hash, and a later resume, comparing that hash with itself, never decoded it again. The
    cache entry of a noise file keeps the hash of the content it was decoded from, and one that differs (or none,
    a decoding from before) is decoded again."""
    import os

    folder = tmp_path / "noise"
    folder.mkdir()
    first = (0.2 * rng.standard_normal(RATE_HZ)).astype(np.float32)
    sf.write(folder / "b.wav", first, RATE_HZ, subtype="PCM_16")
    config = config_with(noise_probability=0.5, noise_dir=str(folder))
    bank, earlier = augment.load_noise_folder(config)
    assert np.allclose(bank, first, atol=1 / 32768)
    stat = (folder / "b.wav").stat()
    second = (0.2 * rng.standard_normal(RATE_HZ)).astype(np.float32)
    sf.write(folder / "b.wav", second, RATE_HZ, subtype="PCM_16")
    os.utime(folder / "b.wav", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    from sound_tf import audio

    entry = audio.DecodeCache(audio.cache_dir_of(None), sample_rate_hz=RATE_HZ).path_for(folder / "b.wav")
    build = audio.DecodeCache.build
    seen = []

    def watched(self, *args, **kwargs):  # another process reading the entry meanwhile finds a whole file
        seen.append(entry.is_file())
        return build(self, *args, **kwargs)

    monkeypatch.setattr(audio.DecodeCache, "build", watched)
    for _ in range(2):  # a run with no record, then its resume (given its own record)
        bank, noise = augment.load_noise_folder(config)
        assert noise.hashes != earlier.hashes
        assert np.allclose(bank, second, atol=1 / 32768) and not np.allclose(bank, first, atol=0.01)
    assert seen == [True, True]  # decoded again in place, not removed
    assert (entry.parent / (entry.name + augment.NOISE_SOURCE_SUFFIX)).read_text().strip() == noise.hashes["b.wav"]


def test_a_noise_folder_tells_which_files_were_added_removed_or_changed():
    earlier = augment.NoiseFolder(folder="/n", files={"a.wav": (10, 1), "b.wav": (20, 2), "c.wav": (30, 3)})
    assert earlier.changes_since(earlier) == ""
    now = augment.NoiseFolder(folder="/n", files={"b.wav": (20, 2), "c.wav": (30, 4), "d.wav": (5, 9),
                                                   "e.wav": (6, 9), "f.wav": (7, 9), "g.wav": (8, 9)})
    assert now.changes_since(earlier) == ("4 files added (d.wav, e.wav, f.wav and 1 more), 1 removed (a.wav), "
                                          "1 changed (c.wav)")
    assert earlier.changes_since(now) == ("1 file added (a.wav), 4 removed (d.wav, e.wav, f.wav and 1 more), "
                                          "1 changed (c.wav)")
    assert augment.NoiseFolder(folder="/n", files={"a.wav": (11, 1), "b.wav": (20, 2), "c.wav": (30, 3)}
                               ).changes_since(earlier) == "1 file changed (a.wav)"
    with pytest.raises(ValueError, match="not a noise folder's description"):
        augment.NoiseFolder.from_dict({"folder": "/n", "files": {"a.wav": 3}})



def test_the_log_line_gives_the_widest_time_mask_in_frames_and_seconds_as_the_layer_draws_it():
    """'2 time x <=10%' told a user who counts masks in frames (Edge Impulse's T_time_mask_max_consecutive) or seconds
    nothing of how wide they are: the line now gives the widest mask SpecAugment draws, in frames and seconds, and
    says when the fraction is under one frame, so that no time is masked."""
    cases = {"fsdd": (12, "(12 frames = 0.096 s)"), "esc50": (21, "(21 frames = 0.49 s)")}
    for recipe, (frames, shown) in cases.items():
        config = config_from_recipe(recipe)
        assert f"+ 2 time x <=10% {shown}, mixup" in augment.summary_line(config)
        layer = augment.SpecAugment(time_mask_count=4, time_mask_max_fraction=0.1, seed=0)
        widths = layer.draw(tf.constant(500), tf.constant(config.num_frames), tf.constant(64))["time_widths"]
        assert int(tf.reduce_max(widths)) == frames  # 2000 draws of 0..frames reach it
    tiny = apply_overrides(config_from_recipe("fsdd"), {"augment.spec_time_mask_max_fraction": 0.005})
    assert "2 time x <=0% (under one of the clip's 122 frames: no time is masked)" in augment.summary_line(tiny)


def test_the_log_line_names_every_transform_a_run_trains_with(tmp_path, rng):
    """The log said nothing of which augmentation a run used: which transforms, how often, how far, where, and
    which noise. One line now, from the config's settings."""
    import argparse

    from sound_tf import train

    assert augment.summary_line(Config()) == (
        "augment: shift p0.5 +-10% roll (features), speed p0.3 0.9-1.1x (features), pitch p0.3 +-2 st (features), "
        "gain p0.5 +-20 dB (features), noise p0.5 10-30 dB SNR (features) generated white/pink/brown, "
        "SpecAugment p1 2 freq x <=8 bins + 2 time x <=10% (9 frames = 0.09 s), mixup p0.5 alpha 0.2 (features)")
    parser = argparse.ArgumentParser()
    train.add_config_flags(parser)
    off = train.config_from_args(parser.parse_args(["--no-augment"]))
    assert augment.summary_line(off) == "augment: off (augment.enabled=false, as --no-augment sets)"
    folder = tmp_path / "noise"
    (folder / "more").mkdir(parents=True)
    for name, seconds in (("a.wav", 1.5), ("more/b.flac", 0.5)):
        sf.write(folder / name, 0.2 * rng.standard_normal(int(RATE_HZ * seconds)), RATE_HZ, subtype="PCM_16")
    config = apply_overrides(Config(), {"augment.noise_dir": str(folder), "augment.noise_probability": 0.8,
                                        "augment.noise_domain": "waveform", "augment.stretch_probability": 0.2,
                                        "augment.pitch_probability": 0.0, "augment.gain_min_db": -6.0,
                                        "augment.gain_max_db": 12.0, "augment.spec_freq_mask_count": 0,
                                        "augment.mixup_probability": 0.0})
    assert augment.summary_line(config) == (
        f"augment: shift p0.5 +-10% roll (features), speed p0.3 0.9-1.1x (features), stretch p0.2 0.9-1.1x tempo "
        f"(features), gain p0.5 -6 to +12 dB (features), noise p0.8 10-30 dB SNR (waveform) from {folder} (2 files, "
        f"2.0 s), SpecAugment p1 2 time x <=10% (9 frames = 0.09 s)")
    noise_only = {f"augment.{name}_probability": 0.0 for name in ("shift", "speed", "pitch", "gain", "spec", "mixup")}
    for low, high, shown in ((-5.0, 40.0, "-5 to 40"), (-20.0, -5.0, "-20 to -5"), (0.0, 20.0, "0-20"),
                             (-0.0, 20.0, "0-20")):  # -0.0 (a recipe's '-0.0') read '-0-20 dB SNR'
        # a range below 0 read '-5-40 dB SNR' and '-20--5 dB SNR'
        widened = apply_overrides(Config(), {**noise_only, "augment.noise_min_snr_db": low,
                                             "augment.noise_max_snr_db": high})
        assert augment.summary_line(widened) == (
            f"augment: noise p0.5 {shown} dB SNR (features) generated white/pink/brown"), (low, high)
    every_off = {f"augment.{name}": 0.0 for name in AugmentConfig.__dataclass_fields__ if name.endswith("_probability")}
    assert augment.summary_line(apply_overrides(Config(), every_off)) == (
        "augment: on, but every transform's probability (augment.*_probability) is 0: nothing is applied")


@pytest.mark.parametrize("setting", ["shift_gain_domain", "rescale_domain", "noise_domain", "mixup_domain"])
def test_the_log_line_places_each_transform_by_its_own_domain_setting(setting):
    """Each ``augment.*_domain`` setting moves its own transforms, and only those, to the waveform: the log line
    and domain_of say ``(waveform)`` for them and ``(features)`` for the others; SpecAugment names no domain."""
    placed = {"shift_gain_domain": {"shift", "gain"}, "rescale_domain": {"speed", "stretch", "pitch"},
              "noise_domain": {"noise"}, "mixup_domain": {"mixup"}}[setting]
    config = apply_overrides(Config(), {f"augment.{setting}": "waveform", "augment.stretch_probability": 0.2})
    line = augment.summary_line(config)
    assert line.startswith("augment: ")
    shown = {}
    for part in line[len("augment: "):].split(", "):
        domain = re.findall(r"\((features|waveform)\)", part)
        shown[part.split(" ")[0]] = domain[0] if domain else None
    expected = {name: "waveform" if name in placed else "features"
                for name in ("shift", "speed", "stretch", "pitch", "gain", "noise", "mixup")}
    assert shown == {**expected, "SpecAugment": None}
    assert {name: augment.domain_of(config, name) for name in augment.applied_transforms(config)} == {
        **expected, "spec": None}


def test_a_noise_folder_shorter_than_a_clip_is_named_in_a_warning(tmp_path, rng, caplog):
    """Ten samples of noise were taken without a word: every window repeated them, a 1.6 kHz buzz."""
    folder = tmp_path / "noise"
    folder.mkdir()
    sf.write(folder / "short.wav", 0.2 * rng.standard_normal(RATE_HZ // 4), RATE_HZ, subtype="PCM_16")
    config = config_with(noise_probability=1.0, noise_dir=str(folder))
    with caplog.at_level("WARNING", logger="sound_tf.augment"):
        bank = augment.load_noise_bank(config)
    assert bank.shape == (RATE_HZ // 4,)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "sound_tf.augment"]
    assert warning.startswith(f"augment.noise_dir={folder}: its 1 non-silent file holds 0.250 s of audio, less "
                              f"than one clip (1.000 s): every noise window repeats it 4.0 times, a tone at "
                              f"4.0 Hz")
    caplog.clear()
    sf.write(folder / "short2.wav", 0.2 * rng.standard_normal(RATE_HZ // 4), RATE_HZ, subtype="PCM_16")
    with caplog.at_level("WARNING", logger="sound_tf.augment"):
        assert augment.load_noise_bank(config).shape == (RATE_HZ // 2,)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "sound_tf.augment"]
    assert warning.startswith(f"augment.noise_dir={folder}: its 2 non-silent files hold 0.500 s of audio, less "
                              f"than one clip (1.000 s): every noise window repeats them 2.0 times, a tone at "
                              f"2.0 Hz")
    (folder / "short2.wav").unlink()
    caplog.clear()
    sf.write(folder / "more.wav", 0.2 * rng.standard_normal(RATE_HZ), RATE_HZ, subtype="PCM_16")
    with caplog.at_level("WARNING", logger="sound_tf.augment"):
        assert augment.load_noise_bank(config).shape == (RATE_HZ * 5 // 4,)
    assert not [r for r in caplog.records if r.name == "sound_tf.augment"]


@pytest.mark.parametrize("bank_shape", [(RATE_HZ * 3 // 10,), (3, RATE_HZ * 7 // 10), (2, RATE_HZ * 5 // 2)])
@pytest.mark.parametrize("window_samples", [RATE_HZ, RATE_HZ + 4321])
def test_noise_windows_wrap_around_short_and_long_bank_rows(bank_shape, window_samples, rng):
    """The window is the row read circularly from the drawn offset, whether it wraps once, many times or not."""
    bank = rng.standard_normal(bank_shape).astype(np.float32)
    augmenter = augment.make_waveform_augmenter(config_with(noise_probability=1.0), noise_bank=bank)
    rows = np.atleast_2d(bank)
    for s in range(5):
        params = augmenter.draw(tf.constant([s, 11]), window_samples)
        row, offset = rows[int(params["noise_source"])], int(params["noise_offset"])
        assert 0 <= offset < rows.shape[1]
        expected = row[(offset + np.arange(window_samples)) % len(row)]
        np.testing.assert_array_equal(augmenter.noise(params, window_samples).numpy(), expected)


@pytest.mark.parametrize("color, exponent", [("white", 0.0), ("pink", 1.0), ("brown", 2.0)])
def test_generated_noise_pool_windows_keep_the_colour_and_the_snr(color, exponent):
    config = apply_overrides(config_with(noise_probability=1.0, noise_colors=[color]),
                             {"audio.clip_seconds": 4.0})
    augmenter = augment.make_waveform_augmenter(config)
    samples = config.audio.clip_samples
    silence_free = sine(440.0, 4.0, RATE_HZ)
    windows = []
    for s in range(4):
        params = augmenter.draw(tf.constant([s, 9]), samples)
        noisy = augmenter.apply(silence_free, params).numpy()
        added = noisy - silence_free
        assert rms_db(silence_free) - rms_db(added) == pytest.approx(float(params["noise_snr_db"]), abs=0.5)
        windows.append(augmenter.noise(params, samples).numpy())
        freqs, psd = scipy.signal.welch(windows[-1], fs=RATE_HZ, nperseg=4096)
        band = (freqs >= 50) & (freqs <= 5000)
        slope = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
        assert slope == pytest.approx(-exponent, abs=0.15), color
    # Different draws read different noise. First differences: two windows of one brown (random-walk)
    # row a few thousand samples apart share their slow drift, but not their steps.
    correlations = np.corrcoef(np.diff(np.stack(windows), axis=1))[np.triu_indices(len(windows), 1)]
    assert np.max(np.abs(correlations)) < 0.5
    longer = augmenter.noise(augmenter.draw(tf.constant([1, 2]), samples + 999), samples + 999).numpy()
    assert longer.shape == (samples + 999,) and np.all(np.isfinite(longer))


@pytest.mark.parametrize("rate_hz, seconds", [(16000, 1.0), (22050, 5.0), (8000, 1.0)])
@pytest.mark.parametrize("color", ["pink", "brown"])
def test_generated_noise_is_mixed_at_its_snr_within_the_audible_band(rate_hz, seconds, color):
    """The SNR holds above 20 Hz too (and so in the log-mel frontend's band, from fmin_hz = 20 Hz): shaped
    from the clip's first FFT bin (1 / clip_seconds Hz) on, 98-99.5% of a brown row's power lay below 20 Hz,
    and a mix drawn at 10 dB was one of 27-34 dB above it (pink: 12-13 dB)."""
    config = apply_overrides(config_with(noise_probability=1.0, noise_colors=[color]),
                             {"audio.sample_rate_hz": rate_hz, "audio.clip_seconds": seconds})
    pool = augment.WaveformAugmenter._generated_noise(config)[0]  # [variants, samples]
    samples = config.audio.clip_samples
    frequencies = np.fft.rfftfreq(samples, 1.0 / rate_hz)
    audible = frequencies >= 20.0
    clean = sine(440.0, seconds, rate_hz)
    clean_power = np.sum(np.abs(np.fft.rfft(clean))[audible] ** 2)
    for row in pool:
        added = augment.add_noise(clean, row, 10.0).numpy() - clean
        assert rms_db(clean) - rms_db(added) == pytest.approx(10.0, abs=0.01)  # the whole spectrum, as before
        audible_snr_db = 10 * np.log10(clean_power / np.sum(np.abs(np.fft.rfft(added))[audible] ** 2))
        assert audible_snr_db == pytest.approx(10.0, abs=0.5), color
        freqs, psd = scipy.signal.welch(row, fs=rate_hz, nperseg=2048)
        band = (freqs >= 50) & (freqs <= 3000)
        slope = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
        assert slope == pytest.approx(-augment.NOISE_EXPONENTS[color], abs=0.15), color  # still its colour


@pytest.mark.parametrize("extra_samples", [0, 700])
def test_generated_noise_snr_holds_for_clips_of_unknown_length(extra_samples):
    """In a graph where the clip's length is unknown, the noise power is measured, not assumed."""
    config = config_with(noise_probability=1.0)
    augmenter = augment.make_waveform_augmenter(config)
    traced = tf.function(lambda wave, seed: augmenter(wave, seed),
                         input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([2], tf.int32)])
    clean = sine(440.0, (config.audio.clip_samples + extra_samples) / RATE_HZ, RATE_HZ)
    seed = tf.constant([4, 2])
    noisy = traced(clean, seed).numpy()
    snr_db = float(augmenter.draw(seed, len(clean))["noise_snr_db"])
    assert rms_db(clean) - rms_db(noisy - clean) == pytest.approx(snr_db, abs=0.5)


def test_noise_off_builds_no_pool_and_adds_nothing(rng):
    augmenter = augment.make_waveform_augmenter(config_with(gain_probability=1.0))  # noise off
    wave = rng.standard_normal(RATE_HZ).astype(np.float32)
    params = augmenter.draw(tf.constant([3, 1]), RATE_HZ)
    gain = 10 ** (float(params["gain_db"]) / 20)
    np.testing.assert_allclose(augmenter.apply(wave, params).numpy(), gain * wave, rtol=1e-6)
    with pytest.raises(ConfigError, match="no noise to read"):
        augmenter.noise(params, RATE_HZ)


def test_optional_steps_stay_functional_ifs_in_graphs():
    """Each optional step is an If op marked not to be lowered to Switch/Merge (so an untaken branch does not run)."""
    augmenter = augment.make_waveform_augmenter(config_with(pitch_probability=0.5, noise_probability=0.5,
                                                            rescale_domain="waveform"))
    graph = tf.function(lambda wave, seed: augmenter(wave, seed)).get_concrete_function(
        tf.TensorSpec([RATE_HZ], tf.float32), tf.TensorSpec([2], tf.int32)).graph
    ifs = [op for op in graph.get_operations() if op.type in ("If", "StatelessIf")]
    assert len(ifs) >= 2  # the rescaling step and the noise step
    assert all(op.get_attr("_lower_using_switch_merge") is False for op in ifs)


def test_same_seed_same_output_different_seed_different_output_in_tf_data(rng):
    config = apply_overrides(Config(), {"augment.rescale_domain": "waveform", **ON_WAVEFORM,
                                        **{f"augment.{name}_probability": 1.0
                                           for name in ("shift", "speed", "stretch", "pitch", "gain", "noise")}})
    augmenter = augment.make_waveform_augmenter(config)
    clips = (0.3 * rng.standard_normal((3, RATE_HZ))).astype(np.float32)
    bases = np.repeat(np.array([11, 11, 12], np.int32), 3)  # run 1, the same again, another seed
    ds = tf.data.Dataset.from_tensor_slices((np.tile(clips, (3, 1)), bases, np.tile(np.arange(3, dtype=np.int32), 3)))
    ds = ds.map(lambda wave, base, index: augmenter(wave, tf.stack([base, index])),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    first, again, other = np.split(np.stack(list(ds.as_numpy_iterator())), 3)
    assert first.shape == clips.shape and np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, again)
    assert all(np.max(np.abs(a - b)) > 1e-3 for a, b in zip(first, other))
    assert all(np.max(np.abs(a - c)) > 1e-3 for a, c in zip(first, clips))


@pytest.mark.parametrize("shift_mode", ["roll", "zero"])
@pytest.mark.parametrize("probability", [1.0, 0.5])
def test_augmenter_chain_equals_its_steps_one_after_another(shift_mode, probability, rng):
    """The augmenter folds shift and gain into the vocoder pass and skips conditionals at probability 1;
    its output must be what the public steps give one after another (shift, rescale, gain, noise)."""
    names = ("shift", "speed", "stretch", "pitch", "gain", "noise")
    config = apply_overrides(config_with(rescale_domain="waveform", shift_mode=shift_mode),
                             {f"augment.{name}_probability": probability for name in names})
    augmenter = augment.make_waveform_augmenter(config)
    wave = (0.3 * rng.standard_normal(RATE_HZ)).astype(np.float32)
    vocoder_runs = 0
    for seed in range(8):
        params = augmenter.draw(tf.constant([seed, 5]), RATE_HZ)
        duration, frequency = augment.rescale_factors(params["speed_factor"], params["stretch_rate"],
                                                      params["pitch_semitones"])
        vocoder_runs += abs(float(duration) - 1.0) > 1e-6 or abs(float(frequency) - 1.0) > 1e-6
        out = augment.time_shift(wave, params["shift_samples"], mode=shift_mode)
        out = augment._rescale(out, duration, frequency, frame_length=augmenter.frame_length_samples,
                               hop_length=augmenter.hop_length_samples)
        out = augment.apply_gain(out, params["gain_db"])
        if bool(params["noise_applied"]):
            out = augment.add_noise(out, augmenter.noise(params, RATE_HZ), params["noise_snr_db"])
        got = augmenter.apply(wave, params).numpy()
        assert np.max(np.abs(got - out.numpy())) <= 1e-5 * np.max(np.abs(out.numpy()))
    assert vocoder_runs >= 4  # the folded path was exercised


def test_disabled_augmentation_is_the_identity_everywhere(rng):
    config = apply_overrides(Config(), {"augment.enabled": False})
    wave = rng.standard_normal(RATE_HZ).astype(np.float32)
    np.testing.assert_array_equal(augment.make_waveform_augmenter(config)(wave, tf.constant([1, 2])).numpy(), wave)
    on_waveform = apply_overrides(config, {"augment.shift_gain_domain": "waveform", "augment.gain_probability": 1.0,
                                           "augment.gain_min_db": -20.0, "augment.gain_max_db": -20.0})
    np.testing.assert_array_equal(augment.make_waveform_augmenter(on_waveform)(wave, tf.constant([1, 2])).numpy(),
                                  wave)  # steps set on the waveform, but augmentation is off
    assert augment.make_mixup(config) is None
    assert augment.spec_augment_layer(config) is None
    assert augment.load_noise_bank(config) is None


@pytest.mark.parametrize("kind", ["silence", "clipped"])
def test_no_nan_or_inf_on_silence_or_clipped_input(kind):
    wave = np.zeros(RATE_HZ, np.float32) if kind == "silence" else np.clip(
        4 * sine(200.0, 1.0, RATE_HZ), -1.0, 1.0)
    outputs = [
        augment.time_shift(wave, 100, mode="zero"), augment.time_shift(wave, -100),
        augment.speed_perturb(wave, 1.1), augment.change_speed(wave, 0.9),
        augment.time_stretch(wave, 0.9), augment.pitch_shift(wave, 2.0, sample_rate_hz=RATE_HZ),
        augment.apply_gain(wave, 6.0),
        augment.add_noise(wave, augment.colored_noise(RATE_HZ, [1, 1], exponent=1.0), 0.0),
        augment.add_noise(wave, np.zeros(RATE_HZ, np.float32), 10.0),
    ]
    config = apply_overrides(Config(), {"augment.rescale_domain": "waveform", **ON_WAVEFORM,
                                        **{f"augment.{name}_probability": 1.0
                                           for name in ("shift", "speed", "stretch", "pitch", "gain", "noise")}})
    augmenter = augment.make_waveform_augmenter(config)
    outputs += [augmenter(wave, tf.constant([s, 0])) for s in range(6)]  # covers all three noise colours
    for out in outputs:
        out = np.asarray(out)
        assert out.shape in (wave.shape, (round(RATE_HZ / 0.9),))
        assert np.all(np.isfinite(out))
    if kind == "silence":
        assert all(np.max(np.abs(np.asarray(out))) == 0.0 for out in outputs)  # no noise added to silence


# -- SpecAugment ------------------------------------------------------------------------------------

def test_spec_masks_cover_exactly_the_requested_bands():
    features = tf.ones([2, 50, 16])
    out = augment.apply_spec_masks(features, freq_starts=[[3], [0]], freq_widths=[[4], [0]],
                                   time_starts=[[10, 40], [5, 5]], time_widths=[[5, 2], [3, 0]],
                                   mask_value=-1.0).numpy()
    expected = np.ones((2, 50, 16), np.float32)
    expected[0, :, 3:7] = expected[0, 10:15, :] = expected[0, 40:42, :] = -1.0
    expected[1, 5:8, :] = -1.0
    np.testing.assert_array_equal(out, expected)


def test_spec_masks_refuse_one_example_without_its_batch_axis():
    """A [frames, mel_bins] example failed with "slice index 2 of dimension 0 out of bounds" (StridedSlice)."""
    with pytest.raises(ConfigError, match=r"apply_spec_masks expects \[batch, frames, mel_bins.*got shape \(50, 16\)"):
        augment.apply_spec_masks(tf.ones([50, 16]), freq_starts=[[2]], freq_widths=[[3]], time_starts=[[0]],
                                 time_widths=[[4]])


def test_spec_augment_masks_bands_of_bounded_width_only_when_training():
    layer = augment.SpecAugment(freq_mask_count=2, freq_mask_max_bins=8, time_mask_count=2,
                                time_mask_max_fraction=0.1, seed=3)
    features = tf.random.stateless_normal([64, 100, 40], seed=[1, 2]) + 10.0  # never exactly 0
    np.testing.assert_array_equal(layer(features, training=False).numpy(), features.numpy())
    np.testing.assert_array_equal(layer(features).numpy(), features.numpy())
    masked = layer(features, training=True).numpy() == 0.0  # [batch, frames, bins]
    freq_masked = masked.all(axis=1)  # [batch, bins]: whole-column masks
    time_masked = masked.all(axis=2)  # [batch, frames]
    assert np.array_equal(masked, freq_masked[:, None, :] | time_masked[:, :, None])
    assert freq_masked.sum(axis=1).max() <= 2 * 8 and time_masked.sum(axis=1).max() <= 2 * 10
    assert freq_masked.any(axis=1).mean() > 0.5 and time_masked.any(axis=1).mean() > 0.5
    for row in freq_masked:  # each run of masked bins is at most one mask or two overlapping ones
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]]))))[::2]
        assert all(run <= 16 for run in runs) and len(runs) <= 2


def test_a_time_mask_is_never_wider_than_its_fraction_of_the_frames():
    """0.1 of 25 frames is 2.5: a mask covers at most 2 frames (rounded down), never 3."""
    layer = augment.SpecAugment(freq_mask_count=0, time_mask_count=1, time_mask_max_fraction=0.1, seed=5)
    masked = layer(tf.ones([4000, 25, 3]), training=True).numpy() == 0.0
    widths = masked.all(axis=2).sum(axis=1)  # [batch]
    assert widths.max() == 2 and (widths == 2).mean() > 0.2


def test_spec_augment_masks_follow_the_runs_seed_not_the_global_one():
    """--seed reproduces the masks even when other code reseeds Keras in between; another seed differs."""
    features = tf.ones([16, 100, 40])

    def masks(seed: int, global_seed: int) -> np.ndarray:
        keras.utils.set_random_seed(global_seed)
        layer = augment.spec_augment_layer(apply_overrides(Config(), {"train.seed": seed}))
        assert layer.get_config()["seed"] == augment.layer_seed(seed, "spec_augment")
        return layer(features, training=True).numpy() == 0.0

    first = masks(7, 1)
    np.testing.assert_array_equal(first, masks(7, 2))
    assert first.any() and not np.array_equal(first, masks(8, 1))


def test_the_training_layers_of_nearby_seeds_draw_streams_of_their_own():
    """Seeds 0-4, the runs of a seed ablation: each training layer's draws (SpecAugment, feature rescale, feature
    shift and gain, and its mixup) differ from every other layer's of every seed; they shared streams when
    the layers were seeded with seed, seed + 1 and seed + 3 (seed 1's masks were drawn as seed 0's rescales).
    The same seed draws the same again."""
    def draws(seed: int) -> dict[str, np.ndarray]:
        # (noise off: it draws from the same stream as shift and gain, and its bank takes seconds to make)
        layers = augment.model_augment_layers(apply_overrides(Config(), {"train.seed": seed,
                                                                          "augment.noise_probability": 0.0}))
        generators = {f"{seed} {name} {i}": generator for name, layer in layers.items()
                      for i, generator in enumerate((layer.seed_generator,
                                                     getattr(layer, "mixup_seed_generator", None)))
                      if generator is not None}
        return {key: keras.random.uniform([64], seed=generator).numpy()  # [64]
                for key, generator in generators.items()}

    streams = {key: row for seed in range(5) for key, row in draws(seed).items()}
    assert len(streams) == 20
    rows = np.stack(list(streams.values()))  # [20, 64]
    shared = [(a, b) for i, a in enumerate(streams) for j, b in enumerate(streams)
              if i < j and np.array_equal(rows[i], rows[j])]
    assert shared == []  # 16 pairs of the 20 streams when seeded with seed, seed + 1 and seed + 3
    again = draws(3)
    for key, row in again.items():
        np.testing.assert_array_equal(row, streams[key])
    with pytest.raises(ConfigError, match="layer must be one of"):
        augment.layer_seed(0, "dropout")
    with pytest.raises(ConfigError, match="train.seed must be an integer"):
        augment.layer_seed(2**30, "spec_augment")


def test_feature_layers_round_trip_and_convert_to_tflite_as_identity(tmp_path):
    config = Config()
    frames, bins = config.feature_shape
    inputs = keras.Input(shape=(frames, bins))
    layers = augment.model_augment_layers(config)
    x = layers["spec_augment"](layers["feature_rescale"](inputs))
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    features = np.random.default_rng(0).standard_normal((2, frames, bins)).astype(np.float32)
    expected = model(features, training=False).numpy()

    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    layer = reloaded.get_layer("spec_augment")
    assert layer.get_config()["freq_mask_max_bins"] == config.augment.spec_freq_mask_max_bins
    rescale = reloaded.get_layer("feature_rescale")
    assert rescale.get_config()["pitch_max_semitones"] == config.augment.pitch_max_semitones
    assert not np.allclose(reloaded(features, training=True).numpy(), expected, rtol=1e-3)  # still augments
    np.testing.assert_allclose(reloaded(features).numpy(), expected, rtol=1e-6)

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    for row in range(2):
        interpreter.set_tensor(inp["index"], features[row:row + 1])
        interpreter.invoke()
        np.testing.assert_allclose(interpreter.get_tensor(out["index"])[0], expected[row], rtol=1e-5, atol=1e-6)


# -- speed, stretch and pitch on the log-mel features -----------------------------------------------

def log_mel(config: Config, *waves: np.ndarray) -> np.ndarray:
    """The model's own log-mel features of each wave: ``[len(waves), frames, mel_bins]``."""
    from sound_tf.frontend import LogMel

    return LogMel.from_config_object(config)(np.stack(waves).astype(np.float32)).numpy()


def mel_band_of(config: Config, frequency_hz: float) -> int:
    """The mel band whose centre is nearest (in mels) to ``frequency_hz``."""
    from sound_tf.config import hz_to_slaney_mel

    centres = hz_to_slaney_mel(augment.mel_edges_hz(config)[1:-1])
    return int(np.argmin(np.abs(centres - hz_to_slaney_mel(frequency_hz))))


def harmonic(f0_hz: float, seconds: float = 1.0) -> np.ndarray:
    """A tone with 5 harmonics of falling level (a voice-like spectrum)."""
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    return sum(0.3 / k * np.sin(2 * np.pi * k * f0_hz * t) for k in range(1, 6)).astype(np.float32)


@pytest.mark.parametrize("semitones", [-2.0, -0.7, 1.5, 2.0])
def test_feature_pitch_shift_moves_the_mel_peak_where_a_shifted_tone_has_it(semitones):
    config, f0 = Config(), 1500.0
    ratio = 2 ** (semitones / 12)
    original, shifted = log_mel(config, sine(f0, 1.0, RATE_HZ), sine(f0 * ratio, 1.0, RATE_HZ))
    out = augment.rescale_features(original[None], duration_factor=1.0, frequency_factor=ratio,
                                   mel_edges_hz=augment.mel_edges_hz(config)).numpy()[0]
    assert out.shape == original.shape  # frames (duration) unchanged
    peak = int(np.argmax(out.mean(axis=0)))
    assert abs(peak - mel_band_of(config, f0 * ratio)) <= 1
    assert abs(peak - int(np.argmax(shifted.mean(axis=0)))) <= 1
    assert peak != int(np.argmax(original.mean(axis=0))) or abs(semitones) < 1


@pytest.mark.parametrize("rate", [0.8, 0.9, 1.1, 1.25])
def test_feature_time_stretch_moves_a_click_by_the_rate_and_keeps_its_spectrum(rate):
    config = Config()
    wave = np.zeros(RATE_HZ, np.float32)
    wave[RATE_HZ // 5] = 1.0  # a click at 0.2 s
    features = log_mel(config, wave)  # [1, frames, bins]
    out = augment.rescale_features(features, duration_factor=1.0 / rate, frequency_factor=1.0,
                                   mel_edges_hz=augment.mel_edges_hz(config)).numpy()[0]
    frames = features.shape[1]
    middle = (frames - 1) / 2
    before = int(np.argmax(features[0].mean(axis=1)))
    after = int(np.argmax(out.mean(axis=1)))
    assert abs(after - (middle + (before - middle) / rate)) <= 1  # a faster clip brings the click nearer the middle
    assert np.corrcoef(out[after], features[0, before])[0, 1] > 0.99  # the same spectrum
    # Frames read from before the clip's start (rate < 1) get each band's quietest value: silence.
    edge = out[0] if rate < 1 else out[frames // 2]
    assert np.all(np.isfinite(edge))
    if rate < 1:
        np.testing.assert_allclose(out[0], features[0].min(axis=0), rtol=1e-6)
        silent = float(np.log(config.features.log_offset))
        padded = augment.rescale_features(features, duration_factor=1.0 / rate, frequency_factor=1.0,
                                          mel_edges_hz=augment.mel_edges_hz(config), silence_value=silent)
        np.testing.assert_allclose(padded.numpy()[0, 0], silent, rtol=1e-6)


@pytest.mark.parametrize("transform", ["pitch +2", "pitch -2", "speed 1.1", "speed 0.9"])
def test_feature_rescale_matches_the_features_of_the_rescaled_sound(transform):
    """On a harmonic tone, rescaled features are close to the features of the exactly rescaled tone.

    The tone is steady, so a speed change is a tone at ``f0 * factor`` (its duration change does not show)
    and a pitch shift one at ``f0 * 2 ** (semitones / 12)``. (Against the same reference the waveform
    phase vocoder's median error, which speed changes take too, is about 0.005.)
    """
    config = Config()
    kind, value = transform.split()
    wave, f0 = harmonic(330.0), 330.0
    if kind == "pitch":
        duration, frequency = augment.rescale_factors(1.0, 1.0, float(value))
    else:
        duration, frequency = augment.rescale_factors(float(value), 1.0, 0.0)
    original, exact = log_mel(config, wave, harmonic(f0 * float(frequency)))
    out = augment.rescale_features(original[None], duration_factor=duration, frequency_factor=frequency,
                                   mel_edges_hz=augment.mel_edges_hz(config)).numpy()[0]
    inner = slice(5, -5)  # away from the clip edges
    error = np.median(np.abs(out[inner] - exact[inner]))  # about 0.07-0.16 (natural-log units)
    unchanged = np.median(np.abs(original[inner] - exact[inner]))  # about 0.4-1.0
    assert error < 0.35 * unchanged


@pytest.mark.parametrize("factors", [
    {"duration_factor": 0.0}, {"duration_factor": -1.0}, {"duration_factor": float("nan")},
    {"frequency_factor": float("nan")}, {"frequency_factor": -2.0}, {"duration_factor": np.array([1.1, -1.0])},
    {"frequency_factor": tf.constant([1.0, 0.0])},
])
def test_rescale_features_refuses_factors_that_are_not_positive(factors):
    """Unchecked, a duration factor of 0 or NaN failed in a gather (index -2147483648), -1 silently played the
    features backwards, and a NaN frequency factor turned them all to NaN."""
    config = Config()
    edges = augment.mel_edges_hz(config)
    features = np.random.default_rng(0).normal(size=(2, 51, edges.size - 2)).astype(np.float32)
    with pytest.raises(ConfigError, match=f"{next(iter(factors))} must be finite and > 0"):
        augment.rescale_features(features, **{"duration_factor": 1.0, "frequency_factor": 1.0, **factors},
                                 mel_edges_hz=edges)


def test_feature_rescale_layer_is_training_only_seeded_and_finite():
    config = apply_overrides(Config(), {"augment.speed_probability": 1.0, "augment.pitch_probability": 1.0})
    frames, bins = config.feature_shape
    features = tf.random.stateless_normal([16, frames, bins], seed=[3, 4])
    layer = augment.feature_rescale_layer(config)
    np.testing.assert_array_equal(layer(features, training=False).numpy(), features.numpy())
    np.testing.assert_array_equal(layer(features).numpy(), features.numpy())
    out = layer(features, training=True).numpy()
    assert out.shape == features.shape and np.all(np.isfinite(out))
    assert np.all(np.max(np.abs(out - features.numpy()), axis=(1, 2)) > 1e-3)  # every example changed (p=1)
    again = augment.feature_rescale_layer(config)(features, training=True).numpy()
    np.testing.assert_array_equal(out, again)  # the same train.seed, the same draws
    other = augment.feature_rescale_layer(replace_seed(config, 99))(features, training=True).numpy()
    assert np.max(np.abs(out - other)) > 1e-3
    silent = float(np.log(config.features.log_offset))  # the raw log-mel of silence
    silence = layer(tf.fill([2, frames, bins], silent), training=True).numpy()
    np.testing.assert_allclose(silence, silent, rtol=1e-6)  # silence stays silence, no NaN
    identity = augment.rescale_features(features, duration_factor=1.0, frequency_factor=1.0,
                                        mel_edges_hz=augment.mel_edges_hz(config)).numpy()
    np.testing.assert_array_equal(identity, features.numpy())


def replace_seed(config: Config, seed: int) -> Config:
    return apply_overrides(config, {"train.seed": seed})


def test_rescale_domain_picks_where_speed_stretch_and_pitch_act(rng):
    wave = (0.3 * rng.standard_normal(RATE_HZ)).astype(np.float32)
    on_features = config_with(speed_probability=1.0, stretch_probability=1.0, pitch_probability=1.0)
    assert on_features.augment.rescale_domain == "features"  # the default
    augmenter = augment.make_waveform_augmenter(on_features)
    assert not augmenter.rescales_waveform
    np.testing.assert_array_equal(augmenter(wave, tf.constant([1, 2])).numpy(), wave)  # left to the model
    layers = augment.model_augment_layers(on_features)
    assert isinstance(layers["feature_rescale"], augment.FeatureRescale)
    assert isinstance(layers["spec_augment"], augment.SpecAugment)
    on_waveform = apply_overrides(on_features, {"augment.rescale_domain": "waveform"})
    assert np.max(np.abs(augment.make_waveform_augmenter(on_waveform)(wave, tf.constant([1, 2])).numpy() - wave)) > 0.01
    assert augment.model_augment_layers(on_waveform)["feature_rescale"] is None
    assert augment.feature_rescale_layer(config_with(gain_probability=1.0)) is None  # nothing to rescale
    off = augment.model_augment_layers(apply_overrides(on_features, {"augment.enabled": False}))
    assert off == {"feature_rescale": None, "feature_augment": None, "spec_augment": None}


# -- mixup ------------------------------------------------------------------------------------------

def test_mixup_mixes_waves_and_labels_with_the_same_weight(rng):
    waves = rng.standard_normal((8, 100)).astype(np.float32)
    labels = np.eye(8, dtype=np.float32)
    params = augment.draw_mixup_params(tf.constant([3, 9]), 8, alpha=0.4)
    mixed_waves, mixed_labels = (t.numpy() for t in augment.apply_mixup(waves, labels, params))
    weight, partner = params["weight"].numpy(), params["partner"].numpy()
    assert np.all(partner != np.arange(8)) and np.all((partner >= 0) & (partner < 8))
    np.testing.assert_allclose(mixed_waves, weight[:, None] * waves + (1 - weight[:, None]) * waves[partner],
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, rtol=1e-6)
    again_waves, again_labels = augment.mixup_batch(waves, labels, tf.constant([3, 9]), alpha=0.4)
    np.testing.assert_array_equal(again_waves.numpy(), mixed_waves)
    np.testing.assert_array_equal(again_labels.numpy(), mixed_labels)
    untouched = augment.mixup_batch(waves, labels, tf.constant([3, 9]), alpha=0.4, probability=0.0)
    np.testing.assert_array_equal(untouched[0].numpy(), waves)


def test_mixup_refuses_class_indices_and_integer_samples_instead_of_mixing_them():
    """Labels [batch] of class indices were mixed as numbers (classes 0 and 3 became "class 2.82"), and
    int16 samples failed with "Cannot convert 1.0 to EagerTensor of dtype int16"."""
    waves = np.linspace(-0.5, 0.5, 40, dtype=np.float32).reshape(4, 10)
    with pytest.raises(ConfigError, match=r"one-hot or soft labels \[batch, classes\], got shape \(4,\)"):
        augment.mixup_batch(waves, np.array([0, 1, 2, 3]), [1, 2], alpha=0.4)
    with pytest.raises(ConfigError, match="mixup needs floating-point inputs, got int16"):
        augment.mixup_batch((waves * 32767).astype(np.int16), np.eye(4, dtype=np.float32), [1, 2], alpha=0.4)
    mixed, labels = augment.mixup_batch(waves, np.eye(4, dtype=np.int32), [1, 2], alpha=0.4)  # integer one-hot
    np.testing.assert_allclose(labels.numpy().sum(axis=1), 1.0, rtol=1e-6)
    weight = labels.numpy().max(axis=1)  # each row mixes two distinct classes: the larger of w and 1 - w
    assert np.all(weight >= 0.5) and np.any(weight < 1.0)


def test_mixup_weights_follow_beta_alpha_alpha():
    alpha, batch = 0.2, 4000
    weight = augment.draw_mixup_params(tf.constant([1, 1]), batch, alpha=alpha)["weight"].numpy()
    expected_middle = scipy.stats.beta.cdf(0.9, alpha, alpha) - scipy.stats.beta.cdf(0.1, alpha, alpha)
    assert np.mean((weight > 0.1) & (weight < 0.9)) == pytest.approx(expected_middle, abs=0.03)
    assert weight.mean() == pytest.approx(0.5, abs=0.03)
    assert scipy.stats.kstest(weight, scipy.stats.beta(alpha, alpha).cdf).pvalue > 0.01


@pytest.mark.parametrize("arguments, message", [
    ({"alpha": "0.2"}, "alpha must be a number, got '0.2'"),
    ({"alpha": tf.constant(0.0)}, "alpha must be a number, got <tf.Tensor"),  # as FeatureAugment's mixup_alpha
    ({"alpha": 0.0}, r"alpha must be in \(0.0, 10.0\], got 0.0"),
    ({"alpha": 0.2, "probability": "0.5"}, "probability must be a number, got '0.5'"),
    ({"alpha": 0.2, "probability": None}, "probability must be a number, got None"),
    ({"alpha": 0.2, "probability": 1.5}, r"probability must be in \[0.0, 1.0\], got 1.5"),
])
def test_mixup_batch_checks_that_alpha_and_probability_are_numbers_before_their_ranges(arguments, message):
    """_mixup_weights checked alpha's range before its type (a constant tensor of 0 was out of range, of 0.5 not a
    number) and never checked the probability's type: mixup_batch with probability '0.5' raised TensorFlow's
    TypeError ("Cannot convert '0.5' to EagerTensor"), and None a ValueError, from the comparison."""
    waves = np.ones((4, 16), np.float32)
    with pytest.raises(ConfigError, match=message):
        augment.mixup_batch(waves, np.eye(4, dtype=np.float32), [1, 2], **arguments)


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
def test_tabulated_beta_quantiles_invert_the_exact_cdf(alpha):
    # Inverse-transform sampling: the weight read for uniform u must have Beta CDF u (u[..., 0] = 0: mixed).
    u = np.linspace(0.0, 1.0, 100_001, dtype=np.float32)[:-1]
    weight = augment._mixup_weights(tf.stack([tf.zeros_like(u), u], axis=-1), alpha=alpha, probability=1.0).numpy()
    assert np.all(np.diff(weight) >= 0) and weight.min() >= 0.0 and weight.max() <= 1.0
    # Below the median, where float32 resolves the weights (above it, 1 - w drops under float32's spacing
    # near 1 for small alpha, as with any float32 draw): the exact CDF of the weight read for u is u.
    lower = u <= 0.5
    assert np.max(np.abs(scipy.stats.beta.cdf(weight[lower], alpha, alpha) - u[lower])) < 2e-4
    np.testing.assert_allclose(weight[1:50_001] + weight[:49_999:-1], 1.0, atol=1e-5)  # symmetric: w(u) = 1 - w(1 - u)


def test_per_example_mixup_mixes_wave_and_label_with_one_weight(rng):
    mixup = augment.make_mixup(apply_overrides(Config(), {"augment.mixup_probability": 0.5, **ON_WAVEFORM}))
    wave, partner = rng.standard_normal((2, 400)).astype(np.float32)
    label, partner_label = np.eye(3, dtype=np.float32)[[0, 2]]
    weights = []
    for seed in range(40):
        mixed, soft = (t.numpy() for t in mixup(wave, label, partner, partner_label, tf.constant([seed, 5])))
        w = float(soft[0])  # the example's own class keeps weight w, the partner's gets 1 - w
        np.testing.assert_allclose(soft, w * label + (1 - w) * partner_label, atol=1e-6)
        np.testing.assert_allclose(mixed, w * wave + (1 - w) * partner, rtol=1e-5, atol=1e-6)
        weights.append(w)
    weights = np.array(weights)
    assert 8 <= np.sum(weights < 1.0) <= 32  # mixed with probability 0.5
    assert np.all(weights[weights == 1.0] == 1.0) and np.all(weights > 0.0)
    again, _ = mixup(wave, label, partner, partner_label, tf.constant([3, 5]))
    np.testing.assert_array_equal(again.numpy(), mixup(wave, label, partner, partner_label, tf.constant([3, 5]))[0])


# -- validation -------------------------------------------------------------------------------------

@pytest.mark.parametrize("values", [
    {"gain_min_db": 25.0}, {"pitch_probability": 1.5}, {"noise_colors": ("red",)}, {"shift_mode": "wrap"},
    {"mixup_alpha": 0.0}, {"spec_freq_mask_count": -1}, {"speed_min_factor": float("nan")},
    {"spec_time_mask_max_fraction": 0.9}, {"enabled": "yes"}, {"rescale_domain": "spectrum"},
    {"noise_min_snr_db": -25.0}, {"noise_max_snr_db": 90.0}, {"gain_max_db": 45.0}, {"gain_min_db": -45.0},
])
def test_bad_augment_config_raises_with_the_field_and_value(values):
    (field, value), = values.items()
    with pytest.raises(ConfigError, match=f"augment.{field}"):
        AugmentConfig(**values)


@pytest.mark.parametrize("call", [
    lambda: augment.time_shift(np.zeros(10, np.float32), 1, mode="wrap"),
    lambda: augment.time_stretch(np.zeros(2048, np.float32), 0.0),
    lambda: augment.pitch_shift(np.zeros(2048, np.float32), 30.0, sample_rate_hz=RATE_HZ),
    lambda: augment.time_stretch(np.zeros(2048, np.float32), 1.1, hop_length_samples=600),
    lambda: augment.change_speed(np.zeros((2, 100), np.float32), 1.1),
    lambda: augment.SpecAugment(freq_mask_count=-1),
    lambda: augment.SpecAugment(time_mask_max_fraction=0.8),
    lambda: augment.FeatureRescale(mel_edges_hz=[100.0, 50.0, 200.0]),
    lambda: augment.FeatureRescale(mel_edges_hz=[50.0, 100.0, 200.0], pitch_max_semitones=13.0),
    lambda: augment.FeatureRescale(mel_edges_hz=[50.0, 100.0, 200.0], speed_min_factor=1.2, speed_max_factor=1.1),
    lambda: augment.rescale_features(np.zeros((1, 5, 4), np.float32), duration_factor=1.0, frequency_factor=1.0,
                                     mel_edges_hz=np.arange(5.0)),
    lambda: augment.make_waveform_augmenter(AugmentConfig()),
    lambda: augment.make_waveform_augmenter(Config(), noise_bank=np.array([np.nan], np.float32)),
    lambda: augment.mixup_batch(np.zeros((2, 3)), np.eye(2), [1, 2], alpha=0.0),
])
def test_bad_arguments_raise_config_error(call):
    with pytest.raises(ConfigError):
        call()


def test_spec_augment_counts_are_whole_numbers_numpy_integers_too_never_a_bool():
    layer = augment.SpecAugment(freq_mask_count=np.int64(2), time_mask_count=np.int32(1), seed=np.int64(3))
    assert (layer.freq_mask_count, layer.time_mask_count, layer.seed) == (2, 1, 3) and type(layer.seed) is int
    for value in (True, np.True_, 2.0, "2", np.array(2)):
        with pytest.raises(ConfigError, match=rf"^freq_mask_count must be an integer >= 0, got "
                                              rf"{re.escape(repr(value))}$"):
            augment.SpecAugment(freq_mask_count=value)


@pytest.mark.parametrize("call, message", [
    # values a caller passes as constant tensors are known before the graph runs, and checked like numbers
    (lambda: augment.change_speed(np.ones(4096, np.float32), tf.constant(0.0)), r"factor must be in \(0.0, 4.0\]"),
    (lambda: augment.change_speed(np.ones(4096, np.float32), tf.constant(-1.0)), "factor must be in"),
    (lambda: augment.pitch_shift(np.ones(4096, np.float32), tf.constant(float("nan")), sample_rate_hz=RATE_HZ),
     "semitones must be in"),
    (lambda: augment.time_stretch(np.ones(4096, np.float32), tf.constant(float("nan"))), "rate must be in"),
    (lambda: augment.apply_gain(np.ones(8, np.float32), True), "gain_db must be a number, got True"),
    (lambda: augment.time_shift(np.ones(8, np.float32), 5.7), "shift_samples must be a whole number"),
    (lambda: augment.time_shift(np.ones(8, np.float32), np.int64(2**40)), "shift_samples must be a whole number"),
    (lambda: augment.time_shift(np.ones(8, np.float32), tf.constant(2.5)), "shift_samples must be a whole number"),
    (lambda: augment.add_noise(np.ones(16, np.float32), np.ones(10, np.float32), 10.0),
     "noise must have the clip's length: wave has 16 samples, noise 10"),
    (lambda: augment.apply_gain(tf.constant([1, 2]), 1.0), "wave must hold floating-point samples, got a int32"),
    (lambda: augment.SpecAugment(probability=1.5), r"probability must be in \[0.0, 1.0\]"),
])
def test_arguments_known_before_the_graph_runs_are_checked_by_name(call, message):
    """Tensors were never checked, so tf.constant(0.0) as a speed factor gave a 1-sample clip, and a bool gain
    of True was +1 dB; a 5.7-sample shift was cut to 5, and 2**40 samples wrapped to 0 in int32."""
    with pytest.raises(ConfigError, match=message):
        call()


@pytest.mark.parametrize("call, message", [
    (lambda: augment.change_speed(np.ones(4096, np.float32), np.array(0.0)), r"factor must be in \(0.0, 4.0\]"),
    (lambda: augment.apply_gain(np.ones(8, np.float32), np.array(np.nan)), "gain_db must be in"),
    (lambda: augment.time_shift(np.ones(8, np.float32), np.array(2.5)), "shift_samples must be a whole number"),
    (lambda: augment.change_speed(np.ones(4096, np.float32), tf.Variable(0.0)), r"factor must be in \(0.0, 4.0\]"),
    (lambda: augment.apply_gain(np.ones(8, np.float32), tf.Variable(np.inf)), "gain_db must be in"),
])
def test_numpy_scalar_arrays_and_eager_variables_are_checked_like_numbers(call, message):
    """A 0-d numpy array (what np.asarray or a numpy reduction gives) and an eager tf.Variable were never
    checked: np.array(0.0) as a speed factor gave a 1-sample clip and a NaN gain a clip of NaNs."""
    with pytest.raises(ConfigError, match=message):
        call()


def test_numpy_scalar_arrays_and_variables_in_range_are_used_as_given():
    wave = np.sin(np.arange(4096) * 0.1).astype(np.float32)
    np.testing.assert_allclose(augment.apply_gain(wave, np.array(-6.0)).numpy(), wave * 10 ** (-6 / 20), rtol=1e-6)
    assert augment.change_speed(wave, tf.Variable(2.0)).shape == (2048,)
    np.testing.assert_array_equal(augment.time_shift(wave, np.array(3)).numpy(), np.roll(wave, 3))


@pytest.mark.parametrize("call", [
    lambda wave: augment.apply_gain(wave, 0.0),
    lambda wave: augment.time_shift(wave, 1),
    lambda wave: augment.pitch_shift(wave, 2.0, sample_rate_hz=RATE_HZ),
    lambda wave: augment.add_noise(np.ones(wave.shape, np.float32), wave, 10.0),
])
def test_integer_pcm_arrays_are_refused_as_integer_tensors_are(call):
    """scipy.io.wavfile.read gives int16 arrays: an int16 tensor was refused, but the same samples as a numpy
    array went through as floats of +-32767 (apply_gain at 0 dB returned 16384.0 for a half-scale sample)."""
    pcm = (16384 * np.sin(np.arange(4096) * 0.1)).astype(np.int16)
    with pytest.raises(ConfigError, match="must hold floating-point samples, got a int16 array"):
        call(pcm)


@pytest.mark.parametrize("mode", ["roll", "zero"])
def test_a_batch_through_a_function_traced_for_any_shape_fails_instead_of_shifting_rows(mode):
    """Traced for a tensor of unknown rank, the rank check could not run: time_shift rolled a [2, 8] batch
    by whole rows (apply_gain and add_noise went through too) and the vocoder failed deep inside (ConcatOp)."""
    shift = tf.function(lambda wave: augment.time_shift(wave, 3, mode=mode),
                        input_signature=[tf.TensorSpec(None, tf.float32)])
    np.testing.assert_array_equal(shift(tf.range(8.0)).numpy(),
                                  np.roll(np.arange(8.0), 3) * (np.arange(8) >= 3 if mode == "zero" else 1))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"(?s)\[2,8\] is not compatible with expected shape \[\?\].*wave_must_be_one_mono_clip"):
        shift(tf.reshape(tf.range(16.0), [2, 8]))


@pytest.mark.parametrize("transform, value, message", [
    (lambda wave, v: augment.pitch_shift(wave, v, sample_rate_hz=RATE_HZ), float("nan"), r"semitones must be in"),
    (lambda wave, v: augment.pitch_shift(wave, v, sample_rate_hz=RATE_HZ), 30.0, r"semitones must be in \[-24.0"),
    (lambda wave, v: augment.time_stretch(wave, v), float("inf"), r"rate must be in \(0.0, 4.0\]"),
    (lambda wave, v: augment.time_stretch(wave, v), float("nan"), r"rate must be in \(0.0, 4.0\]"),
    (lambda wave, v: augment.change_speed(wave, v), 0.0, r"factor must be in \(0.0, 4.0\]"),
    (lambda wave, v: augment.speed_perturb(wave, v), float("nan"), r"factor must be in \(0.0, 4.0\]"),
])
def test_vocoder_arguments_computed_in_a_graph_are_checked_when_it_runs(transform, value, message):
    """Unknown while tracing, they went in unchecked: a NaN pitch shift gave the clip back unchanged, an
    infinite stretch rate failed in a gather ("indices[0] = 1 is not in [0, 0)"), a speed of 0 a 1-sample clip."""
    wave = sine(440.0, 0.5, RATE_HZ)
    traced = tf.function(lambda v: transform(wave, v))
    assert traced(tf.constant(1.0)).shape[0] == wave.size  # a value in range goes through
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        traced(tf.constant(value))


def test_checked_arguments_still_accept_drawn_tensors_and_other_float_types():
    wave = np.sin(np.arange(4096) * 0.1).astype(np.float32)
    as_float64 = augment.apply_gain(tf.constant(wave, tf.float64), 6.0)
    assert as_float64.dtype == tf.float32
    np.testing.assert_allclose(as_float64.numpy(), wave * 10 ** (6 / 20), rtol=1e-6)
    np.testing.assert_array_equal(augment.time_shift(wave, 3.0).numpy(), np.roll(wave, 3))  # whole-number float

    @tf.function
    def drawn(seed):  # a value drawn in the graph is unknown while tracing: checked where it is drawn
        factor = tf.random.stateless_uniform([], seed=seed, minval=0.9, maxval=1.1)
        return augment.change_speed(wave, factor), augment.time_shift(wave, tf.cast(factor * 10, tf.int32))

    faster, shifted = drawn(tf.constant([1, 2]))
    assert 3700 < faster.shape[0] < 4560 and shifted.shape == (4096,)


def test_spec_augment_probability_masks_that_share_of_examples_only():
    features = tf.random.stateless_normal([400, 100, 40], seed=[4, 5]) + 10.0  # never exactly 0
    every = augment.SpecAugment(freq_mask_count=2, freq_mask_max_bins=8, time_mask_count=2, seed=3)
    some = augment.SpecAugment(freq_mask_count=2, freq_mask_max_bins=8, time_mask_count=2, probability=0.3, seed=3)
    masked_every = (every(features, training=True).numpy() == 0).any(axis=(1, 2))
    out = some(features, training=True).numpy()
    masked_some = (out == 0).any(axis=(1, 2))
    # the layer at 1 masks almost every example (a drawn width may be 0); at 0.3, about 0.3 of them
    assert masked_every.mean() > 0.9
    assert abs(masked_some.mean() - 0.3 * masked_every.mean()) < 0.07
    untouched = ~masked_some
    np.testing.assert_array_equal(out[untouched], features.numpy()[untouched])
    assert augment.SpecAugment.from_config(some.get_config()).probability == 0.3
    assert augment.spec_augment_layer(config_with(spec_probability=0.0)) is None
    assert augment.spec_augment_layer(config_with(spec_probability=0.5)).probability == 0.5


def test_mixup_partners_are_never_the_example_itself():
    """A random permutation leaves about one example of a batch of 32 in place (3.0% of partners), and
    such an example was only rescaled under its own label instead of mixed."""
    own = np.arange(32)
    partners = [augment.draw_mixup_params(tf.constant([s, 2]), 32, alpha=0.2)["partner"].numpy() for s in range(200)]
    assert all(np.all(p != own) for p in partners)
    # each example's partners spread over the whole batch
    counts = np.bincount(np.stack(partners)[:, 0], minlength=32)
    assert counts[0] == 0 and np.all(counts[1:] > 0)
    [alone] = augment.draw_mixup_params(tf.constant([1, 2]), 1, alpha=0.2)["weight"].numpy()
    assert alone == 1.0  # a batch of one has no one to mix with
    layer = augment.FeatureAugment(log_offset=1e-6, mixup_probability=1.0, seed=0)
    drawn = [layer.draw_mixup(32)["partner"].numpy() for _ in range(50)]
    assert all(np.all(p != own) for p in drawn)


# -- CLI --------------------------------------------------------------------------------------------

def test_cli_scales_every_wav_together_when_a_version_would_clip(tmp_path, capsys):
    """A loud file's +10..+20 dB versions peak far above full scale: the 16-bit WAVs clipped them (a 0.5
    tone gained 14.5 dB measured 8.3 dB louder). Every WAV, the original too, is scaled by one gain so that
    none clips: each version is its drawn gain louder than the original, and params.json says the scale."""
    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 0.5, RATE_HZ, amplitude=0.5), RATE_HZ, subtype="PCM_16")
    out_dir = tmp_path / "out"
    only_gain = {"gain_probability": 1, "gain_min_db": 10, "gain_max_db": 20, "shift_probability": 0,
                 "noise_probability": 0, "speed_probability": 0, "pitch_probability": 0}
    flags = [arg for key, value in only_gain.items() for arg in ("--set", f"augment.{key}={value}")]
    assert augment.main([str(source), "--out", str(out_dir), "--count", "3", "--seed", "5", *flags]) == 0
    records = json.loads((out_dir / "params.json").read_text())
    loudest = max(record["params"]["gain_db"] for record in records)
    scale_db = -20 * np.log10(0.5 * 10 ** (loudest / 20))  # the loudest version's peak brought to full scale
    assert [record["wav_gain_db"] for record in records] == [pytest.approx(scale_db, abs=0.01)] * 3
    original, _ = sf.read(out_dir / "original.wav", dtype="float32")
    source_wave, _ = sf.read(source, dtype="float32")
    assert (rms_db(original[:source_wave.size]) - rms_db(source_wave)
            == pytest.approx(scale_db, abs=0.05))  # then padding
    for record in records:
        version, _ = sf.read(out_dir / record["file"], dtype="float32")
        assert np.max(np.abs(version)) <= 1.0  # the loudest at full scale, none clipped (its RMS below)
        assert rms_db(version) - rms_db(original) == pytest.approx(record["params"]["gain_db"], abs=0.05)
    printed = capsys.readouterr()
    assert f"scaled by {scale_db:.1f} dB" in printed.out
    # +10..+20 dB, never at the clip's own level, is what this preview asks for, and said (not read as factors)
    assert printed.err.startswith("warning: augment.gain_min_db=10 and augment.gain_max_db=20: a gain range in dB "
                                  "without 0 dB: each clip it acts on (augment.gain_probability 1) is made 10 to 20 dB "
                                  "louder, never quieter, nor left at its level\n"), printed.err
    # Nothing above full scale: the WAVs keep their level (wav_gain_db 0)
    quiet = tmp_path / "quiet"
    assert augment.main([str(source), "--out", str(quiet), "--count", "1", "--seed", "5", *flags,
                         "--set", "augment.gain_min_db=-20", "--set", "augment.gain_max_db=-10"]) == 0
    assert json.loads((quiet / "params.json").read_text())[0]["wav_gain_db"] == 0.0
    np.testing.assert_array_equal(sf.read(quiet / "original.wav", dtype="float32")[0][:source_wave.size], source_wave)


def test_cli_writes_versions_named_by_what_was_applied(tmp_path, capsys):
    source = tmp_path / "tone.wav"  # quiet enough for +20 dB (the default range's top) to stay unclipped in the WAV
    sf.write(source, sine(440.0, 0.5, RATE_HZ, amplitude=0.05), RATE_HZ, subtype="PCM_16")
    out_dir = tmp_path / "out"
    code = augment.main([str(source), "--out", str(out_dir), "--count", "2", "--seed", "5",
                         "--set", "augment.gain_probability=1", "--set", "augment.shift_probability=0",
                         "--set", "augment.noise_probability=0", "--set", "augment.speed_probability=0",
                         "--set", "augment.pitch_probability=0"])
    assert code == 0
    records = json.loads((out_dir / "params.json").read_text())
    original, _ = sf.read(out_dir / "original.wav", dtype="float32")
    assert len(records) == 2 and (out_dir / "spectrograms.png").stat().st_size > 10_000
    for record in records:
        gain_db = record["params"]["gain_db"]
        assert record["file"].startswith("aug_") and f"gain{gain_db:+.1f}dB" in record["file"]
        version, _ = sf.read(out_dir / record["file"], dtype="float32")
        assert version.shape == original.shape
        assert rms_db(version) - rms_db(original) == pytest.approx(gain_db, abs=0.05)
    # Each record's seed draws its version again (the preview's versions are the ones training would draw
    # for those seeds): the recorded parameters, and distinct ones for the two seeds.
    audible = config_with(gain_probability=1.0, rescale_domain="waveform")  # as the preview draws
    again = [augment.make_waveform_augmenter(audible).draw(tf.constant(r["seed"]), RATE_HZ) for r in records]
    assert [r["seed"] for r in records] == [[5, 1], [5, 2]]
    for record, drawn in zip(records, again):
        assert float(drawn["gain_db"]) == pytest.approx(record["params"]["gain_db"], abs=1e-6)
    assert records[0]["params"]["gain_db"] != records[1]["params"]["gain_db"]
    assert "gain_db=" in capsys.readouterr().out
    assert augment.main([str(tmp_path / "missing.wav"), "--out", str(out_dir)]) == 2
    (out_dir / "aug_notes.wav").write_bytes(b"mine")  # not a name the tool writes: kept
    assert augment.main([str(source), "--out", str(out_dir), "--count", "1", "--seed", "6"]) == 0
    [again] = json.loads((out_dir / "params.json").read_text())
    assert sorted(p.name for p in out_dir.glob("*.wav")) == sorted(["original.wav", again["file"], "aug_notes.wav"])
    assert "removed 2 aug_*.wav of an earlier run" in capsys.readouterr().out


def test_augment_file_takes_numpy_integers_for_count_and_seed(tmp_path):
    """augment_file took only ``int`` counts and seeds: ``np.int64`` from a notebook's array was refused as
    "--count must be an integer"; the seed written to params.json is a plain int (np.int64 is not JSON)."""
    from sound_tf.augment_cli import augment_file

    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 0.5, RATE_HZ), RATE_HZ, subtype="PCM_16")
    config = config_with(gain_probability=1.0)
    written = augment_file(source, tmp_path / "out", config, count=np.int64(1), seed=np.int32(5), log=lambda m: None)
    [record] = json.loads((tmp_path / "out" / "params.json").read_text())
    assert record["seed"] == [5, 1] and len(written) == 2
    for count in (True, np.True_, 2.0, "2", np.array(2)):  # refused before TensorFlow runs or the file is read
        with pytest.raises(ConfigError, match=rf"^--count must be an integer in \[1, 32\], got "
                                              rf"{re.escape(repr(count))}$"):
            augment_file(source, tmp_path / "bad", config, count=count, seed=5)
    for seed in (True, np.True_, 2.0, "2"):
        with pytest.raises(ConfigError, match=r"^--seed must be an integer in \[0, 2\*\*30\)"):
            augment_file(source, tmp_path / "bad", config, count=1, seed=seed)


def test_the_preview_names_the_noise_recording_each_version_mixes_in(tmp_path, rng):
    """A preview with a noise folder named a version's noise only ``-bank0`` and ``noise_source=0,
    noise_offset=301920``, a sample of the folder's recordings laid end to end: which recording was heard, and
    where in it, was left to the user to work out from their lengths (session 49's keyword-spotting walkthrough,
    three background-noise files at 44.1 and 48 kHz). Now each such line ends ``noise from white_noise.wav at
    3.52-4.52 s``, read around from the end of the noise to its start as the augmenter reads it; silent files, left
    out of the noise, take no place in it."""
    from sound_tf.augment_cli import augment_file

    folder = tmp_path / "noise"
    folder.mkdir()
    sf.write(folder / "a.wav", 0.2 * rng.standard_normal(RATE_HZ // 2), RATE_HZ, subtype="PCM_16")
    sf.write(folder / "b.wav", 0.2 * rng.standard_normal(2 * RATE_HZ), RATE_HZ, subtype="PCM_16")
    sf.write(folder / "a_silent.wav", np.zeros(RATE_HZ), RATE_HZ, subtype="PCM_16")
    config = config_with(noise_probability=1.0, noise_dir=str(folder))
    _, noise = augment.load_noise_folder(config)
    assert noise.spans == (("a.wav", RATE_HZ // 2), ("b.wav", 2 * RATE_HZ))
    window = functools.partial(noise.window_text, samples=RATE_HZ, rate_hz=RATE_HZ)
    assert window(0) == "a.wav at 0.00-0.50 s, then b.wav"
    assert window(RATE_HZ * 3 // 4) == "b.wav at 0.25-1.25 s"
    assert window(RATE_HZ * 9 // 4) == "b.wav at 1.75-2.00 s, then a.wav, then b.wav"  # around the end
    assert augment.NoiseFolder(folder=str(folder), files={}).window_text(0, RATE_HZ, RATE_HZ) == ""
    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 1.0, RATE_HZ), RATE_HZ, subtype="PCM_16")
    lines: list[str] = []
    augment_file(source, tmp_path / "out", config, count=4, seed=3, log=lines.append)
    records = json.loads((tmp_path / "out" / "params.json").read_text())
    assert [r["params"]["noise_applied"] for r in records] == [True] * 4
    for record in records:
        line = lines[lines.index(record["file"]) + 1]
        text = window(record["params"]["noise_offset"])
        assert line.split("; SpecAugment")[0].endswith(  # the first version's masks come after it
            f"noise_offset={record['params']['noise_offset']}; noise from {text}"), (line, text)
        assert re.fullmatch(r"(a|b)\.wav at \d\.\d\d-\d\.\d\d s(, then (a|b)\.wav)*", text), text


def test_the_preview_names_the_colour_of_the_generated_noise_each_version_mixes_in(tmp_path):
    """Without a noise folder a version's line gave ``noise_source=1`` alone, an index into augment.noise_colors
    that only the file's name (``-pink``) explained. Now it ends ``; generated pink noise``, and the noise heard is
    that colour: the version less the original has the same power per Hz at 4-7 kHz as at 0.25-1 kHz when it is
    white, and about 110 times less there (the mean of 1/f^2 over each band) when brown."""
    from sound_tf.augment_cli import augment_file

    config = config_with(noise_probability=1.0, noise_colors=("brown", "white"))
    source = _quiet_tone(tmp_path)
    lines: list[str] = []
    augment_file(source, tmp_path / "out", config, count=6, seed=3, log=lines.append)
    original = sf.read(tmp_path / "out" / "original.wav")[0]
    heard = set()
    for record in json.loads((tmp_path / "out" / "params.json").read_text()):
        colour = ("brown", "white")[record["params"]["noise_source"]]
        assert record["file"].endswith(f"-{colour}.wav")
        assert lines[lines.index(record["file"]) + 1].split("; SpecAugment")[0].endswith(  # the first's masks after it
            f"noise_offset={record['params']['noise_offset']}; generated {colour} noise")
        noise = sf.read(tmp_path / "out" / record["file"])[0] - original  # [samples]
        freqs, density = scipy.signal.welch(noise, fs=RATE_HZ, nperseg=1024)
        low = density[(freqs >= 250) & (freqs <= 1000)].mean()
        high = density[(freqs >= 4000) & (freqs <= 7000)].mean()
        assert (0.5 < high / low < 2) if colour == "white" else (high / low < 1 / 20), (colour, high / low)
        heard.add(colour)
    assert heard == {"brown", "white"}


def test_preview_titles_stay_within_their_spectrograms(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from sound_tf.augment_cli import plot_versions

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to measure it
    wave = sine(440.0, 1.0, RATE_HZ)
    versions = [("original", wave), ("aug_01_shift-0.02s_noise20dB-pink_pitch+1.4st_gain+3.5dB", 0.5 * wave)]
    plot_versions(versions, config_with(), tmp_path / "spectrograms.png", seed=3)
    [fig] = figures
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_title(loc="left")]
    assert len(panels) == 3 and "as the model sees it while training" in panels[-1].get_title(loc="left")
    for ax in panels:
        name = ax.get_title(loc="left")
        [title] = [t for t in ax.get_children() if getattr(t, "get_text", None) and t.get_text() == name]
        box, room = title.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert room.x0 - 1 <= box.x0 and box.x1 <= room.x1 + 1, (ax.get_title(loc="left"), box, room)
    assert "\n" in panels[-1].get_title(loc="left")  # the long name took two lines, not the colour bar's room


def test_cli_seed_is_the_runs_seed_and_so_also_picks_the_generated_noise(tmp_path, capsys):
    """--seed sets train.seed as train's --seed does: the generated noise pool comes from it as well as the
    draws (before, the pool came from train.seed whatever --seed said)."""
    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 0.5, RATE_HZ), RATE_HZ, subtype="PCM_16")
    noise_only = [f"--set={key}={value}" for key, value in {**ALL_OFF, "augment.noise_probability": 1.0,
                                                             "augment.noise_colors": '["brown"]'}.items()]
    waves = {}
    for name, train_seed in (("a", 1), ("b", 2)):
        assert augment.main([str(source), "--out", str(tmp_path / name), "--count", "1", "--seed", "4",
                             *noise_only, f"--set=train.seed={train_seed}"]) == 0
        [record] = json.loads((tmp_path / name / "params.json").read_text())
        waves[name] = sf.read(tmp_path / name / record["file"], dtype="float32")[0]
    assert np.array_equal(waves["a"], waves["b"])
    assert augment.main([str(source), "--out", str(tmp_path / "c"), "--seed", "-1"]) == 2
    assert "--seed must be an integer in [0, 2**30), got -1" in capsys.readouterr().err


def test_cli_run_previews_the_augmentation_that_run_trained_with(tmp_path, capsys):
    """augment took only the defaults or a recipe: a run trained with its own settings (--set flags, a noise
    folder, another rate or clip length) could not be previewed as it trained; show had --run, augment not."""
    run = tmp_path / "run"
    run.mkdir()
    trained = apply_overrides(Config(), {**ALL_OFF, "audio.sample_rate_hz": 8000, "audio.clip_seconds": 0.25,
                                         "augment.gain_probability": 1.0, "augment.gain_min_db": -12.0,
                                         "augment.gain_max_db": -9.0, "train.seed": 11})
    trained.save(run)
    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 0.5, RATE_HZ), RATE_HZ, subtype="PCM_16")
    assert augment.main([str(source), "--out", str(tmp_path / "a"), "--count", "3", "--run", str(run)]) == 0
    original, rate = sf.read(tmp_path / "a" / "original.wav", dtype="float32")
    assert rate == 8000 and original.size == 2000  # the run's rate and clip length
    records = json.loads((tmp_path / "a" / "params.json").read_text())
    assert [r["seed"] for r in records] == [[11, 1], [11, 2], [11, 3]]  # the run's seed
    def applied(record):
        return {key[:-len("_applied")] for key, value in record["params"].items() if key.endswith("_applied") and value}

    for record in records:  # only the run's gain, drawn from its range
        assert applied(record) == {"gain"}, record
        version, _ = sf.read(tmp_path / "a" / record["file"], dtype="float32")
        assert -12.0 <= rms_db(version) - rms_db(original) <= -9.0
    # --set changes the run's settings for the preview
    assert augment.main([str(source), "--out", str(tmp_path / "b"), "--count", "1", "--run", str(run),
                         "--set", "augment.gain_probability=0", "--set", "augment.pitch_probability=1"]) == 0
    [record] = json.loads((tmp_path / "b" / "params.json").read_text())
    assert applied(record) == {"pitch"}, record
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:  # one source of settings
        augment.main([str(source), "--out", str(tmp_path / "c"), "--run", str(run), "--pipeline", "esc50"])
    assert ended.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert augment.main([str(source), "--out", str(tmp_path / "c"), "--run", str(tmp_path / "none")]) == 2
    assert f"{tmp_path / 'none'}: no config file here (expected config.json" in capsys.readouterr().err


_BAD_PREVIEW = "'x.wav', '--out', 'preview', "  # checked before the file is decoded: it need not exist


@pytest.mark.parametrize("module, args, code_expected", [
    ("sound_tf.augment", "'--help'", 0), ("sound_tf.augment", "'--seed', 'x'", 2),
    ("sound_tf.augment", _BAD_PREVIEW + "'--count', '0'", 2), ("sound_tf.augment", _BAD_PREVIEW + "'--count', '33'", 2),
    ("sound_tf.augment", _BAD_PREVIEW + "'--seed', '-1'", 2), ("sound_tf.augment", _BAD_PREVIEW + "'--start', '-1'", 2),
    ("sound_tf.augment", "'x.wav', '--out', 'README.md'", 2),
    ("sound_tf.tune", "'--help'", 0), ("sound_tf.tune", "'--no-such-flag'", 2), ("sound_tf.tune", "'--max-trials'", 2),
    ("sound_tf.export", "'--help'", 0), ("sound_tf.export", "", 2), ("sound_tf.export", "'run', '--profile'", 2),
])
def test_cli_help_and_argument_errors_come_back_without_loading_tensorflow(module, args, code_expected):
    """`python -m sound_tf.augment --help` ran the transform library's module first, so it took 5 s of
    TensorFlow start-up to print its usage; --count, --seed, --start and --out were checked after it, too.
    tune and export imported KerasTuner and TensorFlow as they loaded: --help, an unknown flag or a missing value
    took 3-10 s (tune) and 3-7 s (export) to answer."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import runpy, sys; sys.argv = [{module!r}, {args}]\n"
            "try:\n    runpy.run_module({module!r}, run_name='__main__')\n"
            "except SystemExit as exc:\n    print(exc.code, sorted({{m.split('.')[0] for m in sys.modules}} & "
            "{{'tensorflow', 'keras', 'keras_tuner'}}))")
    out = subprocess.run([sys.executable, "-c", code.format(module=module, args=args)], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip().splitlines()[-1] == f"{code_expected} []", out


def test_cli_never_overwrites_or_deletes_files_it_did_not_write(tmp_path, capsys):
    """A folder of the user's own recordings as --out: the input, saved there as original.wav, was replaced
    by a 1-s clip, and aug_01_dog.wav deleted as "an earlier run's" version."""
    long_take = (0.1 * np.random.default_rng(0).standard_normal(3 * RATE_HZ)).astype(np.float32)
    mine = tmp_path / "mine"
    mine.mkdir()
    sf.write(mine / "original.wav", long_take, RATE_HZ, subtype="FLOAT")
    sf.write(mine / "aug_01_dog.wav", long_take[:RATE_HZ], RATE_HZ, subtype="FLOAT")
    before = {p.name: p.read_bytes() for p in mine.iterdir()}
    assert augment.main([str(mine / "original.wav"), "--out", str(mine), "--count", "2"]) == 2
    assert "its original.wav is the input file" in capsys.readouterr().err
    take = tmp_path / "take.wav"
    take.write_bytes(before["original.wav"])
    assert augment.main([str(take), "--out", str(mine), "--count", "2"]) == 2
    assert "holds original.wav, which this command writes" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in mine.iterdir()} == before

    out = tmp_path / "preview"
    assert augment.main([str(mine / "original.wav"), "--out", str(out), "--count", "2", "--seed", "1"]) == 0
    first = sorted(p.name for p in out.glob("aug_*.wav"))
    (out / "aug_01_dog.wav").write_bytes(before["aug_01_dog.wav"])  # the user's, not in params.json
    assert augment.main([str(out / "original.wav"), "--out", str(out)]) == 2  # the input is its original.wav
    assert "its original.wav is the input file" in capsys.readouterr().err
    assert augment.main([str(mine / "original.wav"), "--out", str(out), "--count", "1", "--seed", "2"]) == 0
    [again] = json.loads((out / "params.json").read_text())
    assert sorted(p.name for p in out.glob("aug_*.wav")) == sorted([again["file"], "aug_01_dog.wav"])
    assert (out / "aug_01_dog.wav").read_bytes() == before["aug_01_dog.wav"] and again["file"] not in first
    assert f"removed {len(first)} aug_*.wav of an earlier run" in capsys.readouterr().out
    (out / "params.json").write_text("[]")  # no longer a preview's: its original.wav may be anyone's
    assert augment.main([str(mine / "original.wav"), "--out", str(out), "--count", "1", "--seed", "2"]) == 2
    assert "holds original.wav, params.json, spectrograms.png" in capsys.readouterr().err
    assert (out / again["file"]).exists()
    under_a_file = out / "params.json" / "sub"  # mkdir would say "Not a directory", naming no flag
    assert augment.main([str(mine / "original.wav"), "--out", str(under_a_file)]) == 2
    assert capsys.readouterr().err == f"error: --out {under_a_file}: {out / 'params.json'} is a file, not a folder\n"


def test_a_preview_stopped_part_way_can_run_again(tmp_path, capsys, monkeypatch):
    """A preview stopped while it wrote (a full disk, Ctrl-C) left files no params.json listed, and the
    same command, run again as the error message says, refused the folder as someone's own."""
    import errno

    from sound_tf import audio

    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 1.0, RATE_HZ), RATE_HZ, subtype="PCM_16")
    whole_write, calls = audio.write_wav, []

    def full_at_the_third(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return whole_write(path, *args, **kwargs)

    for out, seeds in ((tmp_path / "new", ()), (tmp_path / "again", ("1",))):
        for seed in seeds:  # an earlier, complete preview first
            assert augment.main([str(source), "--out", str(out), "--count", "3", "--seed", seed]) == 0
        calls.clear()
        monkeypatch.setattr(audio, "write_wav", full_at_the_third)
        assert augment.main([str(source), "--out", str(out), "--count", "3", "--seed", "2"]) == 2
        monkeypatch.setattr(audio, "write_wav", whole_write)
        assert augment.main([str(source), "--out", str(out), "--count", "3", "--seed", "2"]) == 0, \
            capsys.readouterr().err
        listed = [r["file"] for r in json.loads((out / "params.json").read_text())]
        assert sorted(p.name for p in out.glob("aug_*.wav")) == sorted(listed) and len(listed) == 3


def test_cli_start_must_be_finite_and_the_log_names_only_transforms_training_applies(tmp_path, capsys):
    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 1.0, RATE_HZ), RATE_HZ, subtype="PCM_16")
    for start in ("nan", "inf", "-inf"):
        assert augment.main([str(source), "--out", str(tmp_path / "x"), f"--start={start}"]) == 2
        assert f"--start must be a number of seconds >= 0, got {float(start)}" in capsys.readouterr().err
    assert augment.main([str(source), "--out", str(tmp_path / "x"), "--start=2.5"]) == 2
    assert "--start 2.5 s lies outside" in capsys.readouterr().err
    off = [arg for name in ("shift", "speed", "stretch", "pitch", "gain") for arg in
           ("--set", f"augment.{name}_probability=0")]
    assert augment.main([str(source), "--out", str(tmp_path / "y"), "--count", "1", *off]) == 0
    log = capsys.readouterr().out
    assert "training applies noise to the log-mel features" in log and "pitch" not in log.split("training")[1]
    # mixup needs a second clip: the log said nothing of it, so a recipe's mixup seemed not to be drawn at all
    assert "mixup (augment.mixup_probability=0.5) mixes a clip with another training clip, so it is in no " \
           "version here" in log
    assert augment.main([str(source), "--out", str(tmp_path / "z"), "--count", "1", *off,
                         "--set", "augment.mixup_probability=0"]) == 0
    assert "mixup" not in capsys.readouterr().out
    from sound_tf.augment_cli import on_features

    nothing = apply_overrides(Config(), {f"augment.{name}_probability": 0.0 for name in
                                         ("shift", "speed", "stretch", "pitch", "gain", "noise")})
    assert nothing.augment.rescale_domain == "features" and on_features(nothing) == []
    with pytest.raises(ConfigError, match="augment.gain_probability must be a number, got True"):
        apply_overrides(Config(), {"augment.gain_probability": True})


def test_the_preview_names_only_the_transforms_training_applies(tmp_path, capsys):
    """The walkthrough of session 47: with augment.pitch_probability = 0 (or a pitch range of 0 semitones) and
    stretch off, the preview's log still said 'training applies speed / stretch / pitch, shift and gain, noise',
    naming pitch and stretch that training never draws. It names each transform training applies, as the
    training log's summary line (augment.applied_transforms) lists them."""
    from sound_tf.augment_cli import on_features

    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 1.0, RATE_HZ), RATE_HZ, subtype="PCM_16")
    no_pitch = ["--set", "augment.pitch_probability=0", "--set", "augment.stretch_probability=0"]
    zero_range = ["--set", "augment.pitch_min_semitones=0", "--set", "augment.pitch_max_semitones=0",
                  "--set", "augment.stretch_probability=0"]
    for name, flags in (("p0", no_pitch), ("range0", zero_range)):
        assert augment.main([str(source), "--out", str(tmp_path / name), "--count", "1", *flags]) == 0
        log = capsys.readouterr().out
        assert "training applies shift, speed, gain, noise to the log-mel features in the model" in log, name
    config = apply_overrides(Config(), {"augment.pitch_min_semitones": 0.0, "augment.pitch_max_semitones": 0.0,
                                        "augment.stretch_probability": 0.0, "augment.mixup_probability": 0.0})
    assert config.augment.pitch_probability == 0.3  # drawn, but a pitch of 0 semitones changes nothing
    assert augment.applied_transforms(config) == ["shift", "speed", "gain", "noise", "spec"]
    assert "pitch" not in augment.summary_line(config) and augment.feature_rescale_layer(config) is not None
    # every rescale range neutral: no FeatureRescale layer, and neither speed, stretch nor pitch is named
    neutral = apply_overrides(config, {"augment.speed_min_factor": 1.0, "augment.speed_max_factor": 1.0,
                                       "augment.stretch_probability": 0.5, "augment.stretch_min_rate": 1.0,
                                       "augment.stretch_max_rate": 1.0})
    assert augment.feature_rescale_layer(neutral) is None and on_features(neutral) == ["shift", "gain", "noise"]
    waveform = apply_overrides(config, {"augment.shift_gain_domain": "waveform"})
    assert on_features(waveform) == ["speed", "noise"]  # shift and gain on the waveform, in tf.data
    rescale_only = {f"augment.{name}_probability": 0.0 for name in ("shift", "gain", "noise", "spec")}
    assert augment.summary_line(apply_overrides(neutral, rescale_only)) == (
        "augment: on, but no transform changes a clip: each is at probability 0 (augment.*_probability), SpecAugment "
        "has no mask, or shift, speed, stretch, pitch and gain draw only 0 s, 1x, 1x, 0 semitones and 0 dB")


def test_cli_names_the_loudest_part_of_a_file_whose_clip_is_background(tmp_path, capsys):
    """A 6-s recording whose 1-s sound (a 0.5 sine, power 0.125) starts at 4.5 s over background noise of
    RMS 0.003 (power 9e-6): the preview took its first second, the background alone, and said only
    '(--start chooses another part)', so the WAVs were versions of hiss; the log names the part holding
    the sound, 10 log10(0.125 / 9e-6) = 41.4 dB louder. A file of digital silence before the sound says the
    clip is silent; a clip within 10 dB of the loudest part keeps the short hint."""
    rng = np.random.default_rng(5)
    wave = 0.003 * rng.standard_normal(6 * RATE_HZ)
    wave[int(4.5 * RATE_HZ):int(5.5 * RATE_HZ)] += sine(1000.0, 1.0, RATE_HZ)
    source = tmp_path / "event_late.wav"
    sf.write(source, wave.astype(np.float32), RATE_HZ, subtype="FLOAT")
    assert augment.main([str(source), "--out", str(tmp_path / "a"), "--count", "1"]) == 0
    assert ("event_late.wav lasts 6.00 s and training sees 1-s clips (audio.clip_seconds): using 0.00-1.00 s; "
            "its loudest 1-s part starts at 4.50 s, 41 dB louder (--start 4.50 uses it)") in capsys.readouterr().out
    silent = tmp_path / "silent_first.wav"
    sf.write(silent, np.concatenate([np.zeros(2 * RATE_HZ), sine(1000.0, 1.0, RATE_HZ)]).astype(np.float32),
             RATE_HZ, subtype="FLOAT")
    assert augment.main([str(silent), "--out", str(tmp_path / "b"), "--count", "1", "--start", "0.5"]) == 0
    assert ("using 0.50-1.50 s; its loudest 1-s part starts at 2.00 s, where this one is silent "
            "(--start 2.00 uses it)") in capsys.readouterr().out
    assert augment.main([str(source), "--out", str(tmp_path / "c"), "--count", "1", "--start", "4.2"]) == 0
    assert "using 4.20-5.20 s (--start chooses another part)" in capsys.readouterr().out  # 70% of it: 1.5 dB


def test_cli_takes_one_training_clip_from_a_long_file(tmp_path, capsys):
    """A 5-s file with 1-s clips: the versions are the clip from --start, shifted by at most the recipe's
    fraction of the clip, and the training panel's noise (on the features, the default) fits its tables;
    the whole file used to go through, with shifts of up to half a second and, for some seeds (1 here),
    a crash where the noise window started before its table."""
    rng = np.random.default_rng(3)
    wave = (0.1 * rng.standard_normal(5 * RATE_HZ)).astype(np.float32)
    source = tmp_path / "long.wav"
    sf.write(source, wave, RATE_HZ, subtype="FLOAT")
    out_dir = tmp_path / "out"
    code = augment.main([str(source), "--out", str(out_dir), "--count", "3", "--seed", "1", "--start", "2.5",
                         "--set", "augment.shift_probability=1", "--set", "augment.noise_probability=1"])
    assert code == 0
    assert "lasts 5.00 s and training sees 1-s clips" in capsys.readouterr().out
    original, _ = sf.read(out_dir / "original.wav", dtype="float32")
    np.testing.assert_allclose(original, wave[RATE_HZ * 5 // 2:RATE_HZ * 7 // 2], atol=1 / 2 ** 15)
    records = json.loads((out_dir / "params.json").read_text())
    assert len(records) == 3 and (out_dir / "spectrograms.png").stat().st_size > 10_000
    for record in records:
        version, _ = sf.read(out_dir / record["file"], dtype="float32")
        assert version.shape == original.shape
        assert abs(record["params"]["shift_samples"]) <= 0.1 * RATE_HZ
    assert augment.main([str(source), "--out", str(out_dir), "--start", "6"]) == 2
    assert "--start 6.0 s lies outside" in capsys.readouterr().err
    assert augment.main([str(source), "--out", str(out_dir), "--seed", "-1"]) == 2


def test_cli_wavs_carry_pitch_that_training_applies_to_the_features(tmp_path):
    from sound_tf.augment_cli import training_features

    source = tmp_path / "tone.wav"
    sf.write(source, sine(1500.0, 1.0, RATE_HZ), RATE_HZ, subtype="PCM_16")
    out_dir = tmp_path / "out"
    only_pitch = ["--set", "augment.pitch_probability=1"] + [
        arg for name in ("shift", "speed", "gain", "noise") for arg in ("--set", f"augment.{name}_probability=0")]
    assert augment.main([str(source), "--out", str(out_dir), "--count", "2", "--seed", "5", *only_pitch]) == 0
    config = config_with(pitch_probability=1.0)  # rescale_domain "features", the default
    for record in json.loads((out_dir / "params.json").read_text()):
        semitones = record["params"]["pitch_semitones"]
        version, _ = sf.read(out_dir / record["file"], dtype="float32")
        measured, bin_hz = peak_hz(version)
        assert abs(measured - 1500.0 * 2 ** (semitones / 12)) <= bin_hz  # audible in the WAV
        params = {k: np.asarray(v) for k, v in record["params"].items()}
        seen = training_features(augment.make_waveform_augmenter(config), sine(1500.0, 1.0, RATE_HZ), params)
        assert abs(int(np.argmax(seen.mean(axis=0))) - mel_band_of(config, 1500.0 * 2 ** (semitones / 12))) <= 1


@pytest.mark.parametrize("bank", [False, True])
def test_cli_wavs_carry_the_noise_window_training_mixes_into_the_features(tmp_path, bank):
    """Training mixes noise into the features from a whole frame on; the preview's WAVs read their noise
    window from any sample, so the panel "as the model sees it" and the WAV it stands for held unrelated
    noise: their log-mels differed by 0.28-0.63 (mean absolute), now by under 0.05 (0.015-0.036)."""
    from sound_tf.augment_cli import training_features
    from sound_tf.frontend import log_mel_numpy

    source = tmp_path / "tone.wav"
    sf.write(source, 0.3 * sine(700.0, 1.0, RATE_HZ), RATE_HZ, subtype="PCM_16")
    values = {"noise_probability": 1.0, "noise_min_snr_db": 0.0, "noise_max_snr_db": 3.0}
    values.update({f"{name}_probability": 0.0 for name in ("shift", "speed", "stretch", "pitch", "gain")})
    if bank:
        (tmp_path / "noise").mkdir()
        rng = np.random.default_rng(0)
        hum = 0.2 * rng.standard_normal(3 * RATE_HZ) * np.linspace(0.2, 1.0, 3 * RATE_HZ)  # its level changes
        sf.write(tmp_path / "noise" / "n.wav", hum.astype(np.float32), RATE_HZ)
        values["noise_dir"] = str(tmp_path / "noise")
    flags = [arg for key, value in values.items() for arg in ("--set", f"augment.{key}={value}")]
    out_dir = tmp_path / "out"
    assert augment.main([str(source), "--out", str(out_dir), "--count", "3", "--seed", "3", *flags]) == 0
    config = apply_overrides(Config(), {**{f"augment.{k}": v for k, v in values.items()},
                                        "train.seed": 3})  # the command's config (--seed is train.seed)
    assert config.augment.noise_domain == "features"  # the default
    noise_bank = augment.load_noise_bank(config)
    wave, _ = sf.read(source, dtype="float32")
    for record in json.loads((out_dir / "params.json").read_text()):
        heard, _ = sf.read(out_dir / record["file"], dtype="float32")
        params = {k: np.asarray(v) for k, v in record["params"].items()}
        seen = training_features(augment.make_waveform_augmenter(config, noise_bank=noise_bank), wave, params,
                                 noise_bank=noise_bank)
        assert float(np.mean(np.abs(seen - log_mel_numpy(config, heard)))) < 0.05, record["file"]


def uniform_pvalue(values: np.ndarray, low: float, high: float) -> float:
    return float(scipy.stats.kstest((np.asarray(values, np.float64) - low) / (high - low), "uniform").pvalue)


def test_waveform_draws_apply_at_their_probability_and_spread_over_their_own_range():
    """600 per-example seeds (7, i), every transform at probability 0.5: each applies to about half the
    examples (4 standard deviations: +-0.08), its applied values are uniform over its own range (KS p > 0.001;
    the noise SNR's measures 0.014, the others 0.47-0.95; the shift as a fraction of the clip), the noise
    source hits every colour (about 200 of 600 each, at least 150) and the offset is uniform over the pool.
    Whether a transform applies, its value and the noise window are separate uniforms: no two columns
    correlate beyond 0.2 (|r| of independent columns of 600 draws stays under 4 standard deviations, 0.16)."""
    config = apply_overrides(Config(), {**ALL_ON_WAVEFORM, **{f"augment.{t}_probability": 0.5 for t in TRANSFORMS}})
    augmenter = augment.make_waveform_augmenter(config)
    samples = config.audio.clip_samples
    draw = tf.function(lambda seed: augmenter.draw(seed, samples))
    draws = [{k: v.numpy() for k, v in draw(tf.constant([7, i])).items()} for i in range(600)]
    column = lambda key: np.array([d[key] for d in draws], np.float64)  # noqa: E731
    aug = config.augment
    ranges = {"shift": ("shift_samples", -aug.shift_max_clip_fraction * samples, aug.shift_max_clip_fraction * samples),
              "speed": ("speed_factor", aug.speed_min_factor, aug.speed_max_factor),
              "stretch": ("stretch_rate", aug.stretch_min_rate, aug.stretch_max_rate),
              "pitch": ("pitch_semitones", aug.pitch_min_semitones, aug.pitch_max_semitones),
              "gain": ("gain_db", aug.gain_min_db, aug.gain_max_db),
              "noise": ("noise_snr_db", aug.noise_min_snr_db, aug.noise_max_snr_db)}
    for name, (key, low, high) in ranges.items():
        applied = column(f"{name}_applied").astype(bool)
        assert abs(applied.mean() - 0.5) < 0.08, name
        assert uniform_pvalue(column(key)[applied], low, high) > 0.001, name
    pool = augmenter._generated_shape[1] * augmenter._generated_shape[2]  # one colour's variants end to end
    assert np.bincount(column("noise_source").astype(int), minlength=3).min() >= 150
    assert uniform_pvalue(column("noise_offset"), 0, pool) > 0.001
    table = np.stack([column(f"{t}_applied") for t in TRANSFORMS] + [column(key) for key, _, _ in ranges.values()]
                     + [column("noise_source"), column("noise_offset")])
    r = np.corrcoef(table)
    for i, j in zip(*np.triu_indices(len(table), 1)):
        if j != i + len(TRANSFORMS):  # a transform's value is neutral where it is not applied: that pair correlates
            assert abs(r[i, j]) < 0.2, (i, j, r[i, j])


def test_feature_layer_draws_are_per_example_at_their_probability_and_in_their_own_range():
    """FeatureRescale and FeatureAugment draw for a batch of 2000 at once: each example its own draw. With
    probability 0.5 and a different range per transform, about half the examples (+-0.05, 4.5 standard
    deviations) get a value, uniform over that transform's range (KS p > 0.001), and the noise window's row
    and start are uniform too; no two columns correlate beyond 0.1 (4.5 standard deviations)."""
    batch = 2000
    rescale = augment.FeatureRescale(mel_edges_hz=np.linspace(0.0, 8000.0, 66), speed_probability=0.5,
                                     speed_min_factor=0.8, speed_max_factor=0.9, stretch_probability=0.5,
                                     stretch_min_rate=1.1, stretch_max_rate=1.3, pitch_probability=0.5,
                                     pitch_min_semitones=-3.0, pitch_max_semitones=-1.0, seed=4)
    feature = augment.FeatureAugment(log_offset=1e-6, shift_probability=0.5, shift_max_clip_fraction=0.2,
                                     gain_probability=0.5, gain_min_db=2.0, gain_max_db=5.0, noise_probability=0.5,
                                     noise_min_snr_db=10.0, noise_max_snr_db=30.0, band_weights=[1.0] * 4,
                                     noise_mel_power=np.ones((3, 50, 4), np.float32),
                                     noise_power=np.ones((3, 50), np.float32), seed=4)
    drawn = {**{k: v.numpy() for k, v in rescale.draw(batch).items()},
             **{k: v.numpy() for k, v in feature.draw(batch).items()}}
    columns = []
    for key, low, high, neutral in (("speed_factor", 0.8, 0.9, 1.0), ("stretch_rate", 1.1, 1.3, 1.0),
                                    ("pitch_semitones", -3.0, -1.0, 0.0), ("shift_clip_fraction", -0.2, 0.2, 0.0),
                                    ("gain_db", 2.0, 5.0, 0.0)):
        value = drawn[key].astype(np.float64)
        applied = value != neutral
        assert abs(applied.mean() - 0.5) < 0.05, key
        assert uniform_pvalue(value[applied], low, high) > 0.001, key
        columns += [applied, np.where(applied, value, np.nan)]
    noisy = drawn["noise_applied"]
    assert abs(noisy.mean() - 0.5) < 0.05
    assert uniform_pvalue(drawn["noise_snr_db"][noisy], 10.0, 30.0) > 0.001
    assert np.bincount(drawn["noise_source"], minlength=3).min() > 0.3 * batch
    assert uniform_pvalue(drawn["noise_offset"], 0.0, 1.0) > 0.001
    columns += [noisy, drawn["noise_snr_db"], drawn["noise_source"], drawn["noise_offset"]]
    table = np.stack([np.nan_to_num(np.asarray(c, np.float64), nan=np.nanmean(np.asarray(c, np.float64)))
                      for c in columns])
    r = np.corrcoef(table)
    for i, j in zip(*np.triu_indices(len(table), 1)):
        if not (j == i + 1 and i % 2 == 0):  # an applied flag and its own value (noise: columns 10, 11)
            assert abs(r[i, j]) < 0.1, (i, j, r[i, j])


def test_mixup_weights_of_mixed_examples_follow_beta_whatever_the_probability():
    """With probability 0.5 the mixed examples' weights are still Beta(alpha, alpha) (KS p > 0.01, mean 0.5 +-
    0.03) and the partner is independent of the weights (rank correlation of position and partner's
    weight under 0.1): whether an example is mixed, its weight and its partner are separate uniforms."""
    alpha, batch = 0.4, 4000
    for params in (augment.draw_mixup_params(tf.constant([2, 3]), batch, alpha=alpha, probability=0.5),
                   augment.FeatureAugment(log_offset=1e-6, mixup_probability=0.5, mixup_alpha=alpha,
                                          seed=2).draw_mixup(batch)):
        weight, partner = params["weight"].numpy(), params["partner"].numpy()
        mixed = weight < 1.0
        assert abs(mixed.mean() - 0.5) < 0.04
        assert scipy.stats.kstest(weight[mixed], scipy.stats.beta(alpha, alpha).cdf).pvalue > 0.01
        assert weight[mixed].mean() == pytest.approx(0.5, abs=0.03)
        assert abs(scipy.stats.spearmanr(np.arange(batch), weight[partner]).statistic) < 0.1


@pytest.mark.parametrize("axis", ["freq", "time"])
def test_spec_augment_mask_widths_and_places_cover_their_whole_range(axis):
    """One mask per example over 4000 examples: every width 0..max occurs about equally often (1/5 each,
    +-0.05: over 7 standard deviations), and each width's mask starts anywhere it fits, first and last
    place included, independently of its width (|r| < 0.1 between the width and the start's fraction of
    its room). A mask's widest width and last place are easy to lose to an off-by-one."""
    batch, widest = 4000, 4
    if axis == "freq":  # 16 bins
        size = 16
        layer = augment.SpecAugment(freq_mask_count=1, freq_mask_max_bins=widest, time_mask_count=0, seed=5)
        features = tf.ones([batch, 3, size])
    else:  # 20% of 20 frames: at most 4
        size = 20
        layer = augment.SpecAugment(freq_mask_count=0, time_mask_count=1, time_mask_max_fraction=0.2, seed=5)
        features = tf.ones([batch, size, 3])
    masked = layer(features, training=True).numpy() == 0.0
    masked = masked.all(axis=1) if axis == "freq" else masked.all(axis=2)  # [batch, size]
    widths = masked.sum(axis=1)
    assert np.all(widths <= widest)
    shares = np.bincount(widths, minlength=widest + 1) / batch
    assert np.all(np.abs(shares - 1 / (widest + 1)) < 0.05), shares
    starts = np.argmax(masked, axis=1)
    for width in range(1, widest + 1):
        places = set(starts[widths == width])
        assert places == set(range(size - width + 1)), (width, sorted(places))
    some = widths > 0
    assert abs(np.corrcoef(widths[some], starts[some] / (size - widths[some]))[0, 1]) < 0.1


@pytest.mark.parametrize("speed, rate", [(1.2, 1.0), (0.85, 1.0), (1.1, 1.15)])
def test_a_drawn_speed_change_shortens_the_clip_as_well_as_raising_its_pitch(speed, rate):
    """Speed is tempo and pitch together: the augmenter's and FeatureRescale's step, given a speed factor
    (and a stretch rate), make a tone burst last 1 / (speed * rate) as long (within 3%) and a click in the
    features move there (within a frame), as time_stretch by speed * rate would. (The chain test compares
    the augmenter with rescale_factors itself, so it cannot see rescale_factors drop the speed's tempo.)"""
    config = apply_overrides(Config(), {**ALL_ON_WAVEFORM, "augment.speed_probability": 1.0})
    augmenter = augment.make_waveform_augmenter(config)
    wave = burst(0.25, 0.5, 0.25)  # 0.5 s of tone in the middle of 1 s
    params = {**augmenter.draw(tf.constant([1, 1]), RATE_HZ), "speed_factor": tf.constant(speed),
              "stretch_rate": tf.constant(rate), "pitch_semitones": tf.constant(0.0),
              "shift_samples": tf.constant(0), "gain_db": tf.constant(0.0)}
    out = augmenter.apply(wave, params).numpy()
    assert burst_seconds(out) / burst_seconds(wave) == pytest.approx(1 / (speed * rate), rel=0.03)

    from sound_tf.frontend import LogMel

    click = np.zeros(RATE_HZ, np.float32)
    click[RATE_HZ // 5] = 1.0  # at 0.2 s
    features = LogMel.from_config_object(config)(click[None]).numpy()
    layer = augment.feature_rescale_layer(apply_overrides(config, {"augment.rescale_domain": "features"}))
    moved = layer.apply(features, {"speed_factor": speed, "stretch_rate": rate, "pitch_semitones": 0.0}).numpy()[0]
    middle = (features.shape[1] - 1) / 2
    before, after = (int(np.argmax(f.mean(axis=1))) for f in (features[0], moved))
    assert abs(after - (middle + (before - middle) / (speed * rate))) <= 1


def test_feature_layers_rebuilt_from_their_config_draw_and_apply_as_the_originals():
    """A model loaded from a file (and trained on) rebuilds its layers from get_config: with every setting
    distinct (a zero-fill shift, speed and stretch ranges apart), the rebuilt layers draw the same values
    from the same seed and shift, scale and rescale the same features bit for bit."""
    edges = np.linspace(0.0, 8000.0, 10)
    rescale = augment.FeatureRescale(mel_edges_hz=edges, silence_value=-13.8, speed_probability=0.6,
                                     speed_min_factor=0.8, speed_max_factor=0.9, stretch_probability=0.7,
                                     stretch_min_rate=1.1, stretch_max_rate=1.3, pitch_probability=0.8,
                                     pitch_min_semitones=-3.0, pitch_max_semitones=-1.0, seed=4)
    feature = augment.FeatureAugment(log_offset=1e-6, shift_probability=0.9, shift_max_clip_fraction=0.3,
                                     shift_mode="zero", gain_probability=0.4, gain_min_db=2.0, gain_max_db=5.0,
                                     mixup_probability=0.3, mixup_alpha=0.7, seed=6)
    features = tf.random.stateless_normal([8, 30, 8], seed=[1, 2])
    for layer in (rescale, feature):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
        drawn, again = layer.draw(8), clone.draw(8)
        for key in drawn:
            np.testing.assert_array_equal(again[key].numpy(), drawn[key].numpy(), err_msg=key)
        np.testing.assert_array_equal(clone.apply(features, drawn).numpy(), layer.apply(features, drawn).numpy())
    np.testing.assert_array_equal(clone.draw_mixup(8)["weight"].numpy(), feature.draw_mixup(8)["weight"].numpy())


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_kept_length_rescaling_keeps_the_middle_of_the_clip_in_the_middle(rate):
    """Back to the input length, a stretched or sped-up clip is centre-cropped / centred in zeros, sample
    for sample what fit_length does to the full-length output (within float32 rounding of the vocoder's
    partial pass, 1e-5): a tone burst in the middle stays in the middle, its energy's centre within half an
    analysis hop (256 samples: each output frame is the nearest input frame's) of the clip's: measured 1.5
    samples off for a speed change, 43-159 for a stretch (0.8-1.25); a crop from the start or padding at
    the end moves it 1600-2000. fit_length itself centres an odd difference too, the extra sample after the clip."""
    wave = np.pad(burst(0.25, 0.5, 0.25), (0, 4))  # 16004 samples: n / rate - n is odd
    kept = augment.time_stretch(wave, rate).numpy()
    full = augment.time_stretch(wave, rate, keep_length=False).numpy()
    assert (len(full) - len(wave)) % 2 == 1
    np.testing.assert_allclose(kept, augment.fit_length(full, len(wave)).numpy(), atol=1e-5)
    sped = augment.speed_perturb(wave, rate).numpy()
    np.testing.assert_allclose(sped, augment.fit_length(augment.change_speed(wave, rate), len(wave)).numpy(), atol=1e-5)
    for out in (kept, sped):
        envelope = np.square(out.astype(np.float64))
        centre = np.sum(np.arange(len(out)) * envelope) / np.sum(envelope)
        assert abs(centre - (len(wave) - 1) / 2) < augment.vocoder_frame_length(RATE_HZ) // 4
    ramp = np.arange(9, dtype=np.float32)
    np.testing.assert_array_equal(augment.fit_length(ramp, 6).numpy(), ramp[1:7])
    np.testing.assert_array_equal(augment.fit_length(ramp, 12).numpy(), np.pad(ramp, (1, 2)))


def test_both_words_of_a_per_example_seed_change_the_draws():
    """Pipelines of one's own pass (epoch, index) or (index, epoch): each word alone must give new draws
    (the pipeline's split seeds would hide a dropped word). 20 seeds varying either word give 20 distinct
    pitch values, mixup weights and mixup partners."""
    config = apply_overrides(Config(), {**ALL_ON_WAVEFORM, "augment.pitch_probability": 1.0,
                                        "augment.mixup_probability": 1.0})
    augmenter = augment.make_waveform_augmenter(config)
    mixup = augment.make_mixup(config)
    wave, other = np.ones((2, 8), np.float32)
    label, other_label = np.eye(2, dtype=np.float32)
    for seeds in ([[5, i] for i in range(20)], [[i, 5] for i in range(20)]):
        pitches = {float(augmenter.draw(tf.constant(s), RATE_HZ)["pitch_semitones"]) for s in seeds}
        weights = {float(mixup(wave, label, other, other_label, tf.constant(s))[1][0]) for s in seeds}
        partners = {tuple(augment.draw_mixup_params(tf.constant(s), 6, alpha=0.4)["partner"].numpy()) for s in seeds}
        assert len(pitches) == len(weights) == 20 and len(partners) >= 19


def test_a_fixed_speed_drawn_every_time_still_rescales():
    """speed_min_factor = speed_max_factor = 1.1 at probability 1 is a speed change of every clip: the
    layer is active and changes every example (the neutral value is 1; the range has width 0)."""
    config = apply_overrides(Config(), {"augment.speed_probability": 1.0, "augment.speed_min_factor": 1.1,
                                        "augment.speed_max_factor": 1.1, "augment.pitch_probability": 0.0,
                                        "augment.stretch_probability": 0.0})
    layer = augment.feature_rescale_layer(config)
    assert layer is not None and layer.active
    features = tf.random.stateless_normal([2, 20, config.features.num_mel_bins], seed=[1, 1])
    assert np.max(np.abs(layer(features, training=True).numpy() - features.numpy())) > 0.1


def test_the_models_training_layers_draw_independent_streams():
    """Every training-only layer draws from its own stream. FeatureRescale and SpecAugment are both seeded
    from train.seed, FeatureAugment's shift / gain and mixup draws from one seed each: drawn from one
    stream, the first example's speed factor would set its frequency mask's place, its shift its mixing
    weight, and FeatureRescale's speed factor FeatureAugment's shift (rank correlation 0.9999 / 1.0 / 1.0
    when they share a seed). Over 150 seeds each pair is uncorrelated: measured 0.09, 0.03 and 0.09, bound
    0.3 (over 3.5 standard deviations of 135-150 pairs)."""
    speeds, places, shifts, weights = [], [], [], []
    for seed in range(150):
        config = apply_overrides(Config(), {"augment.speed_probability": 1.0, "train.seed": seed,
                                            "augment.spec_time_mask_count": 0, "augment.spec_freq_mask_count": 1,
                                            "augment.noise_probability": 0.0, "augment.shift_probability": 1.0,
                                            "augment.mixup_probability": 1.0})
        speeds.append(float(augment.feature_rescale_layer(config).draw(1)["speed_factor"][0]))
        masked = augment.spec_augment_layer(config)(tf.ones([1, 10, config.features.num_mel_bins]), training=True)
        band = (masked.numpy()[0] == 0).all(axis=0)  # [mel_bins]
        places.append(np.argmax(band) / (band.size - band.sum()) if band.any() else np.nan)  # start / room
        layer = augment.feature_augment_layer(config)
        shifts.append(float(layer.draw(1)["shift_clip_fraction"][0]))
        weights.append(float(layer.draw_mixup(2)["weight"][0]))
    speeds, places = np.array(speeds), np.array(places)
    some = ~np.isnan(places)
    assert some.sum() > 100
    assert abs(scipy.stats.spearmanr(speeds[some], places[some]).statistic) < 0.3
    assert abs(scipy.stats.spearmanr(shifts, weights).statistic) < 0.3
    assert abs(scipy.stats.spearmanr(speeds, shifts).statistic) < 0.3  # FeatureRescale and FeatureAugment


def test_cli_pads_a_file_shorter_than_one_feature_frame_as_training_does(tmp_path, capsys):
    """A 10-ms click (160 samples at 16 kHz, under one 25-ms feature frame): training pads such a clip to
    the clip length, so the preview does too instead of refusing the file."""
    from sound_tf.config import Config

    frame = Config().frame_length_samples
    click = np.full(RATE_HZ // 100, 0.5, np.float32)
    assert click.size < frame
    source = tmp_path / "click.wav"
    sf.write(source, click, RATE_HZ, subtype="FLOAT")
    assert augment.main([str(source), "--out", str(tmp_path / "out"), "--count", "1", "--seed", "1"]) == 0
    assert "lasts 0.01 s" in capsys.readouterr().out
    original, rate = sf.read(tmp_path / "out" / "original.wav", dtype="float32")
    assert rate == RATE_HZ and original.shape == (RATE_HZ,)
    np.testing.assert_allclose(original[:click.size], click, atol=1 / 2 ** 15)
    assert not original[click.size:].any()
    assert len(list((tmp_path / "out").glob("aug_01_*.wav"))) == 1


def test_cli_pads_a_short_file_draws_every_version_and_refuses_a_namesake_of_the_users(tmp_path, capsys):
    """A 0.5-s file with the default 1-s clips: original.wav is the file then 0.5 s of silence; the PNG has
    one 209-px row (1.9 in at 110 dpi) per panel: original, 2 versions, the training view; the training
    view carries the drawn gain; a file of the user's that bears a version's exact name is never replaced."""
    from PIL import Image

    from sound_tf.augment_cli import training_features
    from sound_tf.frontend import log_mel_numpy

    tone = sine(440.0, 0.5, RATE_HZ, amplitude=0.05)  # +20 dB fits: the WAVs keep the file's level
    source = tmp_path / "tone.wav"
    sf.write(source, tone, RATE_HZ, subtype="FLOAT")
    only_gain = ["--set", "augment.gain_probability=1"] + [
        arg for name in ("shift", "speed", "stretch", "pitch", "noise")
        for arg in ("--set", f"augment.{name}_probability=0")]
    flags = ["--count", "2", "--seed", "5", *only_gain]
    out_dir = tmp_path / "out"
    assert augment.main([str(source), "--out", str(out_dir), *flags]) == 0
    assert "padded with 0.50 s of silence" in capsys.readouterr().out
    original, rate = sf.read(out_dir / "original.wav", dtype="float32")
    assert rate == RATE_HZ and original.shape == (RATE_HZ,)
    np.testing.assert_allclose(original[:RATE_HZ // 2], tone, atol=1 / 2 ** 15)
    assert not original[RATE_HZ // 2:].any()
    # from a quarter second in: the rest of the tone, then silence to the clip's length
    assert augment.main([str(source), "--out", str(tmp_path / "later"), "--start", "0.25", *flags]) == 0
    assert "using 0.25-0.50 s, padded with 0.75 s of silence" in capsys.readouterr().out
    later, _ = sf.read(tmp_path / "later" / "original.wav", dtype="float32")
    assert later.shape == (RATE_HZ,) and not later[RATE_HZ // 4:].any()
    np.testing.assert_allclose(later[:RATE_HZ // 4], tone[RATE_HZ // 4:], atol=1 / 2 ** 15)
    with Image.open(out_dir / "spectrograms.png") as image:
        assert image.size == (990, 4 * 209)  # 9 x (4 x 1.9) in at 110 dpi
    # The training view (gain on the features, the default) is the original's log-mel raised by the gain.
    config = apply_overrides(Config(), {f"augment.{k}_probability": v for k, v in
                                        {"gain": 1.0, "shift": 0.0, "speed": 0.0, "stretch": 0.0, "pitch": 0.0,
                                         "noise": 0.0}.items()})
    records = json.loads((out_dir / "params.json").read_text())
    first, strongest = records[0], max(records, key=lambda r: abs(r["params"]["gain_db"]))
    params = {k: np.asarray(v) for k, v in strongest["params"].items()}
    seen = training_features(augment.make_waveform_augmenter(config), original, params)
    plain = log_mel_numpy(config, original)
    loud = plain > plain.max() - 3.0  # the tone's bins and frames, far above any floor
    lifted = float(np.mean(seen[loud] - plain[loud])) * 10 / np.log(10)  # natural log of power -> dB
    assert abs(params["gain_db"]) > 1.0 and lifted == pytest.approx(float(params["gain_db"]), abs=0.1)

    # The same command into another folder that holds a file of the user's named as its first version.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / first["file"]).write_bytes(b"my own recording")
    assert augment.main([str(source), "--out", str(mine), *flags]) == 2
    assert f"holds {first['file']}, which an earlier preview did not write" in capsys.readouterr().err
    assert (mine / first["file"]).read_bytes() == b"my own recording"
    assert sorted(p.name for p in mine.iterdir()) == [first["file"]]


# -- the preview's defaults, edges and files, one each (found by a mutation pass) ----------------------------

def _only(**probabilities) -> list[str]:
    """``--set`` flags: every transform's probability 0 but the given ones."""
    values = {**ALL_OFF, **{f"augment.{name}_probability": p for name, p in probabilities.items()}}
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def test_cli_names_the_set_flag_whose_value_is_refused(tmp_path, capsys):
    """As train's: --set augment.noise_min_snr_db=-30 printed the range alone, not which flag gave the value."""
    source = _quiet_tone(tmp_path)
    assert augment.main([str(source), "--out", str(tmp_path / "p"), "--set", "augment.noise_min_snr_db=-30"]) == 2
    assert capsys.readouterr().err.endswith("error: --set augment.noise_min_snr_db=-30: augment.noise_min_snr_db "
                                            "must be in [-20.0, 80.0], got -30.0\n")
    assert not (tmp_path / "p").exists()


def test_cli_does_not_blame_its_seed_for_a_recipes_train_seed(tmp_path, capsys):
    """The preview's --seed seeds its draws and is no config value, but a refused train.seed was named as train's
    --seed is: a recipe with train.seed = -1 (its other error fixed by --set) printed '--seed 3: train.seed must
    be an integer in [0, 2**30), got -1', blaming the 3 the user gave for the recipe's -1."""
    source = _quiet_tone(tmp_path)
    recipe = tmp_path / "mine.toml"
    recipe.write_text("[augment]\nnoise_min_snr_db = -30\n\n[train]\nseed = -1\n")
    assert augment.main([str(source), "--out", str(tmp_path / "p"), "--pipeline", str(recipe), "--seed", "3",
                         "--set", "augment.noise_min_snr_db=0"]) == 2
    err = capsys.readouterr().err
    assert err.endswith("train.seed must be an integer in [0, 2**30), got -1\n") and "--seed" not in err, err
    assert not (tmp_path / "p").exists()


def test_cli_needs_out_writes_six_versions_by_default_and_logs_each(tmp_path, capsys):
    """--out is required; without --count the preview writes 6 versions, seeded [seed, 1] to [seed, 6], into a
    folder it creates with its parents, and its log names each version with the values it applied and ends with
    the count of WAVs, the original included; nothing peaks above full scale, so no scaling is said."""
    from sound_tf.augment_cli import parse_args

    with pytest.raises(SystemExit) as ended:
        parse_args(["x.wav"])
    assert ended.value.code == 2 and "the following arguments are required: --out" in capsys.readouterr().err
    source = _quiet_tone(tmp_path)
    out = tmp_path / "new" / "preview"
    assert augment.main([str(source), "--out", str(out), "--seed", "3", *_only(gain=1.0)]) == 0
    records = json.loads((out / "params.json").read_text())
    assert [r["seed"] for r in records] == [[3, index] for index in range(1, 7)]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["original.wav", "params.json", "spectrograms.png", *(r["file"] for r in records)])
    lines = capsys.readouterr().out.splitlines()
    for index, record in enumerate(records):  # the first one's SpecAugment masks are in the PNG's training panel
        at = lines.index(record["file"])
        masks = "; SpecAugment in training (the PNG's last panel): " if index == 0 else ""
        assert lines[at + 1].startswith(f"    gain_db={record['params']['gain_db']:.3f}{masks}")
        assert lines[at + 1].endswith(" masked") == (index == 0)
    assert lines[-1] == f"wrote 7 WAVs, params.json and spectrograms.png to {out}"
    assert not [line for line in lines if "scaled by" in line]


def test_cli_with_augmentation_off_writes_the_clip_again_and_shows_no_training_panel(tmp_path, capsys):
    """augment.enabled = false: each version is the original clip (aug_NN_none.wav, no parameters), the log says
    so and says nothing of mixup (on in the defaults) or of what was applied, and the PNG has a row for the
    original and each version only (nothing acts on the features, no SpecAugment). With augmentation on and
    every probability 0, a version says "(nothing applied)"."""
    from PIL import Image

    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 1.0, RATE_HZ), RATE_HZ, subtype="PCM_16")
    out = tmp_path / "off"
    assert augment.main([str(source), "--out", str(out), "--count", "2", "--seed", "1",
                         "--set", "augment.enabled=false"]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = json.loads((out / "params.json").read_text())
    assert [(r["file"], r["params"]) for r in records] == [("aug_01_none.wav", {}), ("aug_02_none.wav", {})]
    original, _ = sf.read(out / "original.wav", dtype="float32")
    for record in records:
        np.testing.assert_array_equal(sf.read(out / record["file"], dtype="float32")[0], original)
    assert "augment.enabled is false: the versions equal the original" in lines
    assert lines[-3:] == ["aug_01_none.wav", "aug_02_none.wav",
                          f"wrote 3 WAVs, params.json and spectrograms.png to {out}"]
    assert not [line for line in lines if "mixup" in line or "training applies" in line]
    with Image.open(out / "spectrograms.png") as image:
        assert image.size == (990, 3 * 209)  # 9 x (3 x 1.9) in at 110 dpi
    assert augment.main([str(source), "--out", str(tmp_path / "none"), "--count", "1", *_only(spec=0)]) == 0
    assert capsys.readouterr().out.splitlines()[-3:-1] == ["aug_01_none.wav", "    (nothing applied)"]


def test_a_drawn_value_that_rounds_to_its_neutral_one_is_shown_with_the_decimals_that_tell_them_apart():
    """A speed of 0.998 was named 'speed1.00x' and a pitch of 0.04 semitones 'pitch+0.0st', as if the step had left
    the clip alone; a gain of exactly 0 dB (drawn from 0..0) was named 'gain+0.0dB' though it changed nothing, and an
    SNR of -0.3 dB 'noise-0dB'. Each value now gets the decimals that tell it from its neutral one, and a value that
    is the neutral one is left out (of the name and of the log's values)."""
    from sound_tf.augment_cli import _applied_text

    augmenter = augment.make_waveform_augmenter(config_with(noise_probability=1.0))
    params = {"shift_applied": True, "shift_samples": 10, "speed_applied": True, "speed_factor": 0.998,
              "stretch_applied": True, "stretch_rate": 1.0, "pitch_applied": True, "pitch_semitones": 0.04,
              "gain_applied": True, "gain_db": 0.0, "noise_applied": True, "noise_snr_db": -0.3,
              "noise_source": 1, "noise_offset": 7}
    assert augmenter.describe(params) == "shift+0.001s_pitch+0.04st_speed0.998x_noise0dB-pink"
    assert _applied_text(params) == ("shift_samples=10, speed_factor=0.998, pitch_semitones=0.040, "
                                     "noise_snr_db=-0.300, noise_source=1, noise_offset=7")
    params.update(speed_factor=1.0004, pitch_semitones=-1.43, gain_db=-0.0004)
    assert augmenter.describe(params) == "shift+0.001s_pitch-1.4st_speed1.0004x_gain-0.0004dB_noise0dB-pink"
    assert "speed_factor=1.0004, pitch_semitones=-1.430, gain_db=-0.0004, " in _applied_text(params)
    assert (augment.format_drawn(1.043, 1.0, decimals=2) == "1.04"
            and augment.format_drawn(0.0, 0.0, decimals=1) == "+0.0")


def test_params_json_records_a_gain_of_0_db_as_not_applied(tmp_path, capsys):
    """A gain drawn from augment.gain_min_db = gain_max_db = 0 was recorded 'gain_applied: true' in params.json,
    where the version's name and log line leave it out (it changes nothing): it reads false now, its 0 dB kept; a
    gain from -6..6 dB is recorded applied, with the level its WAV holds."""
    source = tmp_path / "tone.wav"
    sf.write(source, 0.3 * sine(440.0, 1.0, RATE_HZ), RATE_HZ, subtype="PCM_16")
    flat, varied = tmp_path / "flat", tmp_path / "varied"
    assert augment.main([str(source), "--out", str(flat), "--count", "2", "--seed", "4", *_only(gain=1),
                         "--set", "augment.gain_min_db=0", "--set", "augment.gain_max_db=0"]) == 0
    original, _ = sf.read(flat / "original.wav", dtype="float32")
    for record in json.loads((flat / "params.json").read_text()):
        assert record["file"].endswith("_none.wav")
        assert (record["params"]["gain_applied"], record["params"]["gain_db"]) == (False, 0.0), record
        np.testing.assert_array_equal(sf.read(flat / record["file"], dtype="float32")[0], original)
    assert augment.main([str(source), "--out", str(varied), "--count", "2", "--seed", "4", *_only(gain=1),
                         "--set", "augment.gain_min_db=-6", "--set", "augment.gain_max_db=6"]) == 0
    original, _ = sf.read(varied / "original.wav", dtype="float32")
    for record in json.loads((varied / "params.json").read_text()):
        version, _ = sf.read(varied / record["file"], dtype="float32")
        gain_db = 20 * np.log10(np.sqrt(np.mean(version ** 2) / np.mean(original ** 2)))
        assert record["params"]["gain_applied"] is True and 0.01 < abs(record["params"]["gain_db"]) <= 6.0
        assert gain_db == pytest.approx(record["params"]["gain_db"], abs=0.05), record
    capsys.readouterr()


def test_cli_says_which_spec_augment_masks_the_training_panel_shows(tmp_path, monkeypatch, capsys):
    """With every waveform transform off and SpecAugment on, the first version's line said '(nothing applied)'
    beside a training panel masked by SpecAugment. It names the masks the panel shows (those training's layer
    draws from the seed), in mel bins and in seconds on the PNG's axis; the versions the PNG shows unmasked keep
    '(nothing applied)', and a first version with transforms lists their values, then its masks."""
    from sound_tf.augment_cli import masks_text
    from sound_tf.frontend import log_mel_numpy

    shown = _plots_recorded(monkeypatch)
    source = _quiet_tone(tmp_path)
    for seed in (0, 1, 2):
        out = tmp_path / f"seed{seed}"
        assert augment.main([str(source), "--out", str(out), "--count", "2", "--seed", str(seed), *_only()]) == 0
        lines = capsys.readouterr().out.splitlines()
        masks = shown[-1]["spec_masks"]
        config = apply_overrides(Config(), {**ALL_OFF, "train.seed": seed})
        features = log_mel_numpy(config, sf.read(out / "original.wav", dtype="float32")[0])  # [frames, mel_bins]
        np.testing.assert_array_equal(shown[-1]["training_view"], features)  # nothing drawn but the masks
        masked = np.asarray(augment.spec_augment_layer(config, mask_value=-99.0)(features[None], training=True))[0]
        bins, frames = np.flatnonzero(np.all(masked == -99.0, axis=0)), np.flatnonzero(np.all(masked == -99.0, axis=1))
        assert bins.size and frames.size  # the layer as training builds it masks these: the masks described
        text = masks_text(masks, config, features.shape)
        assert lines[-5:-1] == ["aug_01_none.wav", f"    {text}", "aug_02_none.wav", "    (nothing applied)"]
        assert text.startswith("SpecAugment in training (the PNG's last panel): mel bin") and text.endswith(" masked")
        covered = np.zeros(features.shape[1], bool)
        for start, width in zip(masks["freq_starts"], masks["freq_widths"]):
            covered[start:start + width] = True
        np.testing.assert_array_equal(np.flatnonzero(covered), bins)  # the masks drawn are the layer's
        assert f"mel bin {bins[0]}" in text or f"mel bins {bins[0]}-" in text
    one = {"freq_starts": np.array([40, 44]), "freq_widths": np.array([6, 3]), "time_starts": np.array([10, 90]),
           "time_widths": np.array([0, 5])}
    hop_s = config.hop_length_samples / config.audio.sample_rate_hz
    start = (config.frame_length_samples - config.hop_length_samples) / 2 / config.audio.sample_rate_hz
    assert masks_text(one, config, (100, 64)) == (f"SpecAugment in training (the PNG's last panel): mel bins 40-46 and "
                                                  f"{start + 90 * hop_s:.2f}-{start + 95 * hop_s:.2f} s masked")
    two = {**one, "freq_starts": np.array([51, 10]), "freq_widths": np.array([1, 4]), "time_widths": np.array([3, 0])}
    assert masks_text(two, config, (100, 64)) == (f"SpecAugment in training (the PNG's last panel): mel bins 10-13 and "
                                                  f"51, and {start + 10 * hop_s:.2f}-{start + 13 * hop_s:.2f} s masked")
    none = {**one, "freq_widths": np.array([0, 0]), "time_widths": np.array([0, 0])}
    assert masks_text(none, config, (100, 64)).endswith("): no mask drawn")
    out = tmp_path / "gain"
    assert augment.main([str(source), "--out", str(out), "--count", "1", *_only(gain=1)]) == 0
    lines = capsys.readouterr().out.splitlines()
    gain = json.loads((out / "params.json").read_text())[0]["params"]["gain_db"]
    assert lines[-2] == (f"    gain_db={gain:.3f}; "
                         f"{masks_text(shown[-1]['spec_masks'], config, shown[-1]['training_view'].shape)}")


def test_mask_seconds_get_the_decimals_that_tell_a_one_frame_masks_ends_apart():
    """At the fsdd recipe's 8-ms hop a time mask of one frame is 0.008 s wide: frame 13 spans 0.116-0.124 s,
    which 2 decimals printed as 0.12-0.12 s, a mask of nothing. Every span of the line then gets 3 decimals;
    spans wider than a hundredth keep 2."""
    from sound_tf.augment_cli import masks_text
    from sound_tf.config import config_from_recipe

    config = config_from_recipe("fsdd")
    hop_s = config.hop_length_samples / config.audio.sample_rate_hz  # 0.008
    start = (config.frame_length_samples - config.hop_length_samples) / 2 / config.audio.sample_rate_hz  # 0.012
    masks = {"freq_starts": np.array([40]), "freq_widths": np.array([6]), "time_starts": np.array([13, 60]),
             "time_widths": np.array([1, 5])}
    text = masks_text(masks, config, (122, 64))
    assert f"{start + 13 * hop_s:.2f}" == f"{start + 14 * hop_s:.2f}" == "0.12"  # what the line said
    assert text == ("SpecAugment in training (the PNG's last panel): mel bins 40-45, and 0.116-0.124 s and "
                    f"{start + 60 * hop_s:.3f}-{start + 65 * hop_s:.3f} s masked")
    wide = {**masks, "time_starts": np.array([60]), "time_widths": np.array([5])}
    assert masks_text(wide, config, (122, 64)).endswith(
        f"mel bins 40-45 and {start + 60 * hop_s:.2f}-{start + 65 * hop_s:.2f} s masked")


def test_cli_names_the_loudest_part_from_10_db_on_and_takes_the_clip_at_the_files_edges(tmp_path, capsys):
    """The loudest part is named when the clip is 10 dB or more below it, not 9: 1600 then 2000 samples of
    0.5 at the start of a 3-s file whose second 2.0-3.0 holds 16000 (4000 against 400 and 500). A silent file
    has no louder part. A file of one clip's length read from --start 0.25 is padded and gets no hint; --start
    at its very end is outside it. The last part of a file is searched even off the 10-ms steps."""
    from sound_tf.augment_cli import loudest_part

    for name, head, said in (("ten_db.wav", 1600, "; its loudest 1-s part starts at 2.00 s, 10 dB louder "
                                                  "(--start 2.00 uses it)"),
                             ("nine_db.wav", 2000, " (--start chooses another part)"),
                             ("silent.wav", 0, " (--start chooses another part)")):
        wave = np.zeros(3 * RATE_HZ, np.float32)
        if head:
            wave[:head], wave[2 * RATE_HZ:] = 0.5, 0.5
        sf.write(tmp_path / name, wave, RATE_HZ, subtype="FLOAT")
        assert augment.main([str(tmp_path / name), "--out", str(tmp_path / name[:-4]), "--count", "1"]) == 0
        assert capsys.readouterr().out.splitlines()[0] == (
            f"{tmp_path / name} lasts 3.00 s and training sees 1-s clips (audio.clip_seconds): using 0.00-1.00 s"
            + said)
    source = tmp_path / "one_clip.wav"
    sf.write(source, sine(440.0, 1.0, RATE_HZ), RATE_HZ, subtype="FLOAT")
    assert augment.main([str(source), "--out", str(tmp_path / "late"), "--count", "1", "--start", "0.25"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"{source} lasts 1.00 s and training sees 1-s clips (audio.clip_seconds): using 0.25-1.00 s, "
        f"padded with 0.25 s of silence")
    assert augment.main([str(source), "--out", str(tmp_path / "end"), "--start", "1"]) == 2
    assert capsys.readouterr().err == f"error: --start 1.0 s lies outside {source}, which lasts 1.00 s\n"
    tail = np.zeros(2 * RATE_HZ + 80)  # the part starting at 16080 samples, between two 160-sample steps
    tail[-RATE_HZ:] = 0.5
    assert loudest_part(tail, RATE_HZ, step=RATE_HZ // 100) == (RATE_HZ + 80, 4000.0)


def test_cli_says_a_silent_clip_gets_no_noise_and_draws_its_panels_in_one_colour(tmp_path, capsys):
    """A silent clip's versions are silent (noise is mixed at an SNR against the clip's power), though their
    names read noise20dB-pink: a line says so. Its PNG drew the training panel magenta and the others black,
    every panel at the same level (colour limits equal): one colour now, as the padding's silence is drawn."""
    import matplotlib.image

    source = tmp_path / "silent.wav"
    sf.write(source, np.zeros(RATE_HZ, np.float32), RATE_HZ, subtype="PCM_16")
    out = tmp_path / "out"
    assert augment.main([str(source), "--out", str(out), "--count", "2", "--seed", "1",
                         *_only(noise=1.0, gain=1.0)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"{source}: the clip used (0.00-1.00 s) is silent (every sample is 0): noise is mixed at an "
                        f"SNR against the clip's power, so none is added, and every version is silent too")
    records = json.loads((out / "params.json").read_text())
    assert all(r["params"]["noise_applied"] and "noise" in r["file"] for r in records)
    for name in ["original.wav"] + [r["file"] for r in records]:
        assert not np.any(sf.read(out / name, dtype="float32")[0]), name
    image = matplotlib.image.imread(out / "spectrograms.png")[..., :3]  # [height, width, rgb]
    column = np.round(image[:, int(image.shape[1] * 0.6)], 2)  # right of the titles: panels and background
    colours, counts = np.unique(column, axis=0, return_counts=True)
    big = [c for c, n in zip(colours, counts) if n > 0.05 * column.shape[0]]  # the background, the panels
    assert len(big) == 2 and any(np.allclose(c, 1.0) for c in big), big
    assert any(np.allclose(c, matplotlib.colormaps["magma"](0.0)[:3], atol=0.01) for c in big), big  # the lowest
    sf.write(source, np.r_[np.zeros(RATE_HZ // 2), 0.1 * np.ones(RATE_HZ // 2)].astype(np.float32), RATE_HZ)
    assert augment.main([str(source), "--out", str(tmp_path / "half"), "--count", "1", *_only(noise=1.0)]) == 0
    assert "is silent" not in capsys.readouterr().out  # half a clip of sound is not silent


def test_cli_replaces_only_versions_and_refuses_a_folder_it_cannot_read(tmp_path, capsys, monkeypatch):
    """A params.json that lists other files (edited by hand, or copied) deletes none of them on a re-run: not a
    file whose name is no version's, not a link with a version's name. A params.json that is not JSON makes the
    folder someone's own, and a --out that is a file is named as one."""
    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 1.0, RATE_HZ), RATE_HZ, subtype="PCM_16")
    out = tmp_path / "out"
    assert augment.main([str(source), "--out", str(out), "--count", "1", "--seed", "1", *_only(gain=1.0)]) == 0
    [first] = json.loads((out / "params.json").read_text())
    (out / "notes.txt").write_text("mine")
    (out / "aug_09_link.wav").symlink_to(source)
    (out / "params.json").write_text(json.dumps([first, {"file": "notes.txt"}, {"file": "aug_09_link.wav"}]))
    assert augment.main([str(source), "--out", str(out), "--count", "1", "--seed", "2", *_only(gain=1.0)]) == 0
    [again] = json.loads((out / "params.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(["aug_09_link.wav", "notes.txt", "original.wav",
                                                            "params.json", "spectrograms.png", again["file"]])
    assert (out / "aug_09_link.wav").is_symlink() and (out / "notes.txt").read_text() == "mine"
    capsys.readouterr()
    (out / "params.json").write_text("{not json")
    assert augment.main([str(source), "--out", str(out), "--count", "1"]) == 2
    assert capsys.readouterr().err == (f"error: --out {out}: holds original.wav, params.json, spectrograms.png, "
                                       f"which this command writes, but no params.json of an earlier preview "
                                       f"listing its versions; give an empty or new folder\n")
    assert augment.main([str(source), "--out", str(source), "--count", "1"]) == 2
    assert capsys.readouterr().err == f"error: --out {source}: exists and is not a folder\n"
    monkeypatch.setenv("HOME", str(source.parent))  # a quoted ~ is the home folder: no folder named '~' is made
    assert augment.main([str(source), "--out", f"~/{source.name}", "--count", "1"]) == 2
    assert capsys.readouterr().err == f"error: --out {source}: exists and is not a folder\n"


def _quiet_tone(folder: Path) -> Path:
    """``folder/tone.wav``: 1 s of 440 Hz at 0.05 (-26 dBFS) at RATE_HZ, loud versions of which do not clip."""
    source = folder / "tone.wav"
    sf.write(source, sine(440.0, 1.0, RATE_HZ, amplitude=0.05), RATE_HZ, subtype="PCM_16")
    return source


def _plots_recorded(monkeypatch) -> list[dict]:
    """The keyword arguments of each call of the preview's plot_versions (it still draws): what its panels show."""
    from sound_tf import augment_cli

    shown: list[dict] = []
    whole = augment_cli.plot_versions
    monkeypatch.setattr(augment_cli, "plot_versions",
                        lambda *args, **kwargs: shown.append(kwargs) or whole(*args, **kwargs))
    return shown


def test_cli_training_panel_is_the_first_version_as_training_draws_it(tmp_path, monkeypatch):
    """The last panel is the first version's features with what training does on the features (the gain, by
    default), once: its loud cells stand the first record's gain_db above the original's, not the second's,
    and not twice the gain (the WAVs' augmenter, which applies it to the sound already)."""
    from sound_tf.frontend import log_mel_numpy

    shown = _plots_recorded(monkeypatch)
    source = _quiet_tone(tmp_path)
    out = tmp_path / "out"
    assert augment.main([str(source), "--out", str(out), "--count", "2", "--seed", "5", *_only(gain=1.0)]) == 0
    records = json.loads((out / "params.json").read_text())
    gains = [r["params"]["gain_db"] for r in records]
    assert abs(gains[0] - gains[1]) > 1.0 and abs(gains[0]) > 0.5  # 0.96 and 14.54 dB
    original, _ = sf.read(out / "original.wav", dtype="float32")
    plain = log_mel_numpy(Config(), original)
    loud = plain > plain.max() - 3.0  # the tone's cells
    [kwargs] = shown
    lifted = float(np.mean(kwargs["training_view"][loud] - plain[loud])) * 10 / np.log(10)
    assert lifted == pytest.approx(gains[0], abs=0.1)


def test_preview_names_the_flag_or_file_that_gave_an_unusable_noise_folder(tmp_path):
    """A --set noise folder that is missing is named as one, over a recipe's or a run's settings alike."""
    from sound_tf import augment_cli

    Config().save(tmp_path / "run")
    gone = tmp_path / "gone"
    for source in ([], ["--pipeline", "esc50"], ["--run", str(tmp_path / "run")]):
        with pytest.raises(ConfigError) as info:
            augment_cli.build_config(augment_cli.parse_args(["x.wav", "--out", "o", *source,
                                                             "--set", f"augment.noise_dir={gone}"]))
        assert str(info.value) == f"--set augment.noise_dir={gone}: no such folder", source



def _closed_figures_images(monkeypatch) -> list[list[np.ndarray]]:
    """Filled as the preview closes each figure: the array drawn in each panel, top to bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures, close = [], plt.close

    def keep(fig=None):
        figures.append([np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images])
        close(fig)

    monkeypatch.setattr(plt, "close", keep)
    return figures


def test_cli_training_panel_masks_come_from_the_seed(tmp_path, monkeypatch):
    """The SpecAugment masks of the training panel are drawn from --seed (train.seed), as training's are: with
    every transform at probability 0 the versions of --seed 1 and 2 are the same, the same seed masks the same
    cells, and the other seed other cells (the PNG passed a fixed seed: every preview had the same masks)."""
    figures = _closed_figures_images(monkeypatch)
    source = tmp_path / "tone.wav"
    sf.write(source, sine(440.0, 1.0, RATE_HZ, amplitude=0.1), RATE_HZ, subtype="PCM_16")
    for index, seed in enumerate((1, 1, 2)):
        assert augment.main([str(source), "--out", str(tmp_path / f"out{index}"), "--count", "1",
                             "--seed", str(seed), *_only()]) == 0
    first, again, other = figures  # [original, aug_01, aug_01 as the model sees it while training] each
    assert [len(panels) for panels in figures] == [3, 3, 3]
    for panels in (again, other):
        np.testing.assert_array_equal(panels[1], first[1])
    np.testing.assert_array_equal(again[2], first[2])
    masked = [np.isclose(panels[2], np.mean(panels[1])) for panels in (first, other)]  # mask value: the mean
    assert masked[0].any() and masked[1].any() and not np.array_equal(masked[0], masked[1])


def test_cli_training_panel_applies_a_waveform_gain_once(tmp_path, monkeypatch):
    """augment.shift_gain_domain = waveform with the noise on the features: the waveform augmenter has applied
    the gain when the feature layer adds the noise, which must not apply it again. The training panel's loud
    cells stand the drawn gain (7.05 dB, in 6..8) above the original's, not twice it (14.1 dB)."""
    from sound_tf.frontend import log_mel_numpy

    shown = _plots_recorded(monkeypatch)
    source = _quiet_tone(tmp_path)
    out = tmp_path / "out"
    settings = {"shift_gain_domain": "waveform", "gain_min_db": 6, "gain_max_db": 8, "noise_min_snr_db": 60,
                "noise_max_snr_db": 60}  # the noise 60 dB down: the gain alone shows
    flags = [arg for key, value in settings.items() for arg in ("--set", f"augment.{key}={value}")]
    assert augment.main([str(source), "--out", str(out), "--count", "1", "--seed", "5", *_only(gain=1.0, noise=1.0),
                         *flags]) == 0
    [record] = json.loads((out / "params.json").read_text())
    assert record["params"]["noise_applied"] and 6 <= record["params"]["gain_db"] <= 8
    original, _ = sf.read(out / "original.wav", dtype="float32")
    plain = log_mel_numpy(Config(), original)
    loud = plain > plain.max() - 3.0  # the tone's cells
    [kwargs] = shown
    lifted = float(np.mean(kwargs["training_view"][loud] - plain[loud])) * 10 / np.log(10)
    assert lifted == pytest.approx(record["params"]["gain_db"], abs=0.1)


def test_cli_training_panel_is_computed_by_the_feature_layers(tmp_path, monkeypatch):
    """With the default domains, pitch and noise act on the log-mel features in the model: the training panel
    is those layers' output for the first version's draw (training_features with the run's augmenter), not the
    log-mel of the WAV, whose noise was mixed into the sound (0.36 apart on average in ln power here)."""
    from sound_tf import augment_cli
    from sound_tf.frontend import log_mel_numpy

    shown = _plots_recorded(monkeypatch)
    source = _quiet_tone(tmp_path)
    out = tmp_path / "out"
    snr = ["--set", "augment.noise_min_snr_db=10", "--set", "augment.noise_max_snr_db=10"]
    assert augment.main([str(source), "--out", str(out), "--count", "1", "--seed", "5", *_only(pitch=1.0, noise=1.0),
                         *snr]) == 0
    [record] = json.loads((out / "params.json").read_text())
    config = apply_overrides(Config(), {**ALL_OFF, "augment.pitch_probability": 1.0, "augment.noise_probability": 1.0,
                                        "augment.noise_min_snr_db": 10, "augment.noise_max_snr_db": 10,
                                        "train.seed": 5})
    original, _ = sf.read(out / "original.wav", dtype="float32")
    heard, _ = sf.read(out / record["file"], dtype="float32")
    params = {key: np.asarray(value) for key, value in record["params"].items()}
    expected = augment_cli.training_features(augment.make_waveform_augmenter(config), original, params)
    [kwargs] = shown
    np.testing.assert_allclose(kwargs["training_view"], expected, atol=1e-4)
    assert np.mean(np.abs(log_mel_numpy(config, heard) - expected)) > 0.2


def test_feature_params_give_the_feature_layer_every_noise_window_start(tmp_path):
    """A waveform draw's noise window, given to FeatureAugment as a fraction of its starting frames, comes back
    as the frame it starts in, for each of the 41 starts of a 138-frame table and 98-frame clips: the fraction is
    the middle of that frame; k / 41 came back as k - 1 for k = 1, 2, 4, 8, 16 and 32 (float32 product, then
    truncation)."""
    from sound_tf.augment_cli import feature_params

    config = apply_overrides(Config(), {"augment.noise_dir": str(tmp_path), "augment.noise_probability": 1.0})
    frames, hop, bins = config.num_frames, config.hop_length_samples, 4
    table_frames = frames + 40
    rng = np.random.default_rng(3)
    table = rng.uniform(0.5, 2.0, (1, table_frames, bins)).astype(np.float32)  # [rows, frames, bins]
    table_power = rng.uniform(0.5, 2.0, (1, table_frames)).astype(np.float32)  # [rows, frames]
    layer = augment.FeatureAugment(log_offset=1e-6, noise_probability=1.0, band_weights=[1.0] * bins,
                                   noise_mel_power=table, noise_power=table_power)
    clean = np.full((1, frames, bins), np.log(0.25 + 1e-6), np.float32)  # power 0.25 per band
    missed = []
    for start in range(table_frames - frames + 1):
        params = {"shift_samples": np.int32(0), "gain_db": np.float32(0.0), "noise_applied": np.bool_(True),
                  "noise_snr_db": np.float32(6.0), "noise_source": np.int32(0),
                  "noise_offset": np.int32(start * hop + 7)}  # a bank window starting 7 samples into the frame
        drawn = feature_params(config, params, num_samples=config.audio.clip_samples, noise_frames=table_frames)
        noise = {key: tf.constant(value) for key, value in drawn.items() if key.startswith("noise")}
        added = np.exp(layer.apply(clean, noise).numpy()[0].astype(np.float64)) - 1e-6 - 0.25
        scale = 0.25 * bins / np.mean(table_power[0, start:start + frames]) * 10 ** -0.6
        if not np.allclose(added, scale * table[0, start:start + frames], rtol=1e-4):
            missed.append(start)
    assert missed == []

# -- a transform that never runs reads none of its settings -------------------------------------------

#: Per transform: the ``*_domain`` setting that places it (``None``: SpecAugment, always on the features), and
#: a value unlike the default for each of its settings but its probability.
OTHER_SETTINGS = {
    "shift": ("shift_gain_domain", {"shift_max_clip_fraction": 0.3, "shift_mode": "zero"}),
    "speed": ("rescale_domain", {"speed_min_factor": 0.7, "speed_max_factor": 1.3}),
    "stretch": ("rescale_domain", {"stretch_min_rate": 0.8, "stretch_max_rate": 1.25}),
    "pitch": ("rescale_domain", {"pitch_min_semitones": -4.0, "pitch_max_semitones": 3.0}),
    "gain": ("shift_gain_domain", {"gain_min_db": -12.0, "gain_max_db": -3.0}),
    "noise": ("noise_domain", {"noise_min_snr_db": 0.0, "noise_max_snr_db": 5.0, "noise_colors": ["brown"]}),
    "spec": (None, {"spec_freq_mask_count": 4, "spec_freq_mask_max_bins": 16, "spec_time_mask_count": 3,
                    "spec_time_mask_max_fraction": 0.3}),
    "mixup": ("mixup_domain", {"mixup_alpha": 5.0}),
}
DOMAINS = ("rescale_domain", "shift_gain_domain", "noise_domain", "mixup_domain")


def what_training_makes(config: Config, waves: np.ndarray, labels: np.ndarray, *,
                        noise_bank: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The clips ``waves [batch, samples]`` with one-hot ``labels`` as a training step of ``config`` sees them,
    from fixed seeds: the pipeline's mixup (each clip's partner the next one) and waveform augmenter, clip by
    clip, then the model's training-only layers on the log-mel features, as its training step runs them
    (:class:`sound_tf.models.SoundClassifier`; the normalisation between them left out). ``noise_bank``: the
    recordings of ``augment.noise_dir``, as training loads them. ``steps`` and ``layers`` name the pipeline's
    steps and the model's layers that exist."""
    mixup, augmenter = augment.make_mixup(config), augment.training_augmenter(config, noise_bank=noise_bank)
    mixed_waves, mixed_labels = [], []
    for i, (wave, label) in enumerate(zip(waves, labels)):
        partner = (i + 1) % len(waves)
        if mixup is not None:
            wave, label = mixup(wave, label, waves[partner], labels[partner], tf.constant([3, i]))
        if augmenter is not None:
            wave = augmenter(wave, tf.constant([4, i]))
        mixed_waves.append(np.asarray(wave))
        mixed_labels.append(np.asarray(label))
    layers = augment.model_augment_layers(config, noise_bank=noise_bank)
    features, soft = tf.constant(log_mel(config, *mixed_waves)), tf.constant(np.stack(mixed_labels))
    if layers["feature_rescale"] is not None:
        features = layers["feature_rescale"](features, training=True)
    mixer = layers["feature_augment"]
    if mixer is not None and mixer.mixes:
        params = mixer.draw_mixup(len(waves))
        soft, _ = augment.mix_labels(soft, None, params)
        with mixer.mixing(params):
            features = mixer(features, training=True)
    elif mixer is not None:
        features = mixer(features, training=True)
    if layers["spec_augment"] is not None:
        features = layers["spec_augment"](features, training=True)
    return {"waves": np.stack(mixed_waves), "labels": np.asarray(soft), "features": np.asarray(features),
            "layers": np.array([name for name, layer in layers.items() if layer is not None]),
            "steps": np.array([name for name, step in (("mixup", mixup), ("augmenter", augmenter))
                               if step is not None])}


@pytest.mark.parametrize("transform, domain", [(transform, domain) for transform, (group, _) in OTHER_SETTINGS.items()
                                               for domain in (("waveform", "features") if group else ("features",))])
def test_a_transform_at_probability_0_reads_none_of_its_settings(transform, domain, rng):
    """The premise of the tuner's rule (sound_tf.hypermodel._in_effect): with a transform's probability 0,
    training is bit for bit the same whatever its other settings, in either domain, while every other
    transform runs; at probability 1 the same settings change it (so this test can fail)."""
    base = apply_overrides(Config(labels=("a", "b", "c")), {
        **{f"augment.{name}_probability": 1.0 for name in OTHER_SETTINGS if name != transform},
        **{f"augment.{group}": domain for group in DOMAINS}})
    changed = {f"augment.{name}": value for name, value in OTHER_SETTINGS[transform][1].items()}
    t = np.arange(RATE_HZ) / RATE_HZ
    waves = np.stack([0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(RATE_HZ)
                      for f in (300.0, 700.0, 1500.0, 3000.0)]).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    for probability in (0.0, 1.0):
        config = apply_overrides(base, {f"augment.{transform}_probability": probability})
        first = what_training_makes(config, waves, labels)
        other = what_training_makes(apply_overrides(config, changed), waves, labels)
        differ = {key for key in first if not np.array_equal(first[key], other[key])}
        if probability == 0.0:  # ... while the step it belongs to runs for the others
            assert differ == set()
            if domain == "waveform":
                assert not np.array_equal(first["waves"], waves)
            else:
                assert set(first["layers"]) == {"feature_rescale", "feature_augment", "spec_augment"} - (
                    {"spec_augment"} if transform == "spec" else set())
        else:  # the clips where it acts on them, the labels for mixup, the features always
            on_waves = domain == "waveform" and OTHER_SETTINGS[transform][0] is not None
            mixes = transform == "mixup"
            assert differ == {"features", *(["waves"] if on_waves else []), *(["labels"] if mixes else [])}


def test_the_tuners_table_of_settings_a_transform_alone_reads_is_the_one_proven_here():
    """sound_tf.hypermodel leaves a transform's settings out of a search while its probability is 0: each of
    them is among those the test above changes."""
    from sound_tf.hypermodel import TRANSFORM_SETTINGS

    assert {probability: set(names) for probability, names in TRANSFORM_SETTINGS.values()} == {
        f"{transform}_probability": set(settings) for transform, (_, settings) in OTHER_SETTINGS.items()}


# -- settings read only while another is set so -------------------------------------------------------

#: Setting -> (the other settings while which training does not read it, the same settings where it does).
#: ``"other"`` for a ``*_domain`` setting: the domain the test does not place the transforms in.
UNREAD_WHILE = {
    "spec_freq_mask_max_bins": ({"spec_freq_mask_count": 0}, {"spec_freq_mask_count": 2}),
    "spec_time_mask_max_fraction": ({"spec_time_mask_count": 0}, {"spec_time_mask_count": 2}),
    "spec_probability": ({"spec_freq_mask_count": 0, "spec_time_mask_count": 0},
                         {"spec_freq_mask_count": 2, "spec_time_mask_count": 2}),
    "shift_mode": ({"shift_max_clip_fraction": 0.0}, {"shift_max_clip_fraction": 0.3}),
    "noise_colors": ({"noise_dir": "noise"}, {"noise_dir": None}),
}
#: A value of each setting of UNREAD_WHILE unlike the default (and the test's).
UNREAD_VALUES = {"spec_freq_mask_max_bins": 16, "spec_time_mask_max_fraction": 0.3, "spec_probability": 0.5,
                 "shift_mode": "zero", "noise_colors": ["brown"]}


def premise_clips(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Four 1-s tones in noise and their one-hot labels of 3 classes."""
    t = np.arange(RATE_HZ) / RATE_HZ
    waves = np.stack([0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(RATE_HZ)
                      for f in (300.0, 700.0, 1500.0, 3000.0)]).astype(np.float32)
    return waves, np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]


def every_transform_on(domain: str) -> Config:
    """Every transform at probability 1, every group in ``domain``."""
    return apply_overrides(Config(labels=("a", "b", "c")), {
        **{f"augment.{name}_probability": 1.0 for name in OTHER_SETTINGS},
        **{f"augment.{group}": domain for group in DOMAINS}})


@pytest.mark.parametrize("setting, domain", [(setting, domain) for setting in UNREAD_WHILE
                                             for domain in ("waveform", "features")])
def test_a_setting_is_not_read_while_another_makes_it_idle(setting, domain, rng):
    """The premise of the tuner's rules beyond probability 0 (sound_tf.hypermodel.IDLE_WHILE): with every
    transform running, a frequency mask's width is not read while there are no frequency masks, a time mask's
    while there are no time masks, SpecAugment's probability while it has no masks at all, the shift mode while
    the shift range is 0 (a roll by 0 and a zero-filled shift by 0 are the clip) and the noise colours while
    noise comes from the recordings of augment.noise_dir:
    training is bit for bit the same whatever that setting is. Where the other settings let it act, it changes
    training (so this test can fail)."""
    waves, labels = premise_clips(rng)
    bank = rng.standard_normal(3 * RATE_HZ).astype(np.float32)  # what load_noise_bank gives of noise_dir
    idle, acting = UNREAD_WHILE[setting]
    changed = {f"augment.{setting}": UNREAD_VALUES[setting]}
    for others, same in ((idle, True), (acting, False)):
        config = apply_overrides(every_transform_on(domain), {f"augment.{k}": v for k, v in others.items()})
        noise_bank = bank if config.augment.noise_dir is not None else None
        first = what_training_makes(config, waves, labels, noise_bank=noise_bank)
        other = what_training_makes(apply_overrides(config, changed), waves, labels, noise_bank=noise_bank)
        differ = {key for key in first if not np.array_equal(first[key], other[key])}
        assert (differ == set()) if same else ("features" in differ), (others, differ)


#: Each ``*_domain`` setting and the probabilities of the transforms it places.
DOMAIN_GROUPS = {"rescale_domain": ("speed", "stretch", "pitch"), "shift_gain_domain": ("shift", "gain"),
                 "noise_domain": ("noise",), "mixup_domain": ("mixup",)}


@pytest.mark.parametrize("group, domain", [(group, domain) for group in DOMAIN_GROUPS
                                           for domain in ("waveform", "features")])
def test_a_domain_is_not_read_while_every_transform_it_places_is_at_probability_0(group, domain, rng):
    """The premise of the tuner's rule for the *_domain settings: with every transform of a group at probability
    0 (every other transform running, in ``domain``), the pipeline's steps, the model's layers and what they make
    are bit for bit the same whichever domain the group is given; with them at probability 1 the domain changes
    training (so this test can fail)."""
    waves, labels = premise_clips(rng)
    other_domain = {"waveform": "features", "features": "waveform"}[domain]
    for probability in (0.0, 1.0):
        config = apply_overrides(every_transform_on(domain), {f"augment.{name}_probability": probability
                                                              for name in DOMAIN_GROUPS[group]})
        first = what_training_makes(config, waves, labels)
        other = what_training_makes(apply_overrides(config, {f"augment.{group}": other_domain}), waves, labels)
        differ = {key for key in first if not np.array_equal(first[key], other[key])}
        assert (differ == set()) if probability == 0.0 else ("features" in differ), (probability, differ)


def test_every_rule_by_which_the_tuner_leaves_a_setting_out_is_one_proven_here():
    """sound_tf.hypermodel.IDLE_WHILE leaves a setting out of a search only where a test above proves it unread:
    each setting of a rule (but its own conditions) is unread under conditions the rule's include, and each
    setting proven unread here has its rule."""
    from sound_tf.hypermodel import IDLE_WHILE, SET

    proven = [(name, {f"{transform}_probability": 0.0}) for transform, (_, settings) in OTHER_SETTINGS.items()
              for name in settings]
    proven += [(setting, {name: SET if name == "noise_dir" else value for name, value in idle.items()})
               for setting, (idle, _) in UNREAD_WHILE.items()]  # any folder as "noise" is
    proven += [(domain, {f"{name}_probability": 0.0 for name in names}) for domain, names in DOMAIN_GROUPS.items()]
    for rule in IDLE_WHILE:
        when = dict(rule.when)
        for name in set(rule.settings) - set(when):
            assert any(setting == name and idle.items() <= when.items() for setting, idle in proven), (rule, name)
    for setting, idle in proven:
        assert any(setting in rule.settings and dict(rule.when) == idle for rule in IDLE_WHILE), setting


# -- from a mutation audit of sound_tf/augment.py (session 47) ----------------------------------------

@pytest.mark.parametrize("rate_hz, frame", [(8000, 512), (16000, 1024), (22050, 1024), (44100, 2048), (48000, 2048)])
def test_the_vocoder_window_is_the_power_of_two_nearest_50_ms(rate_hz, frame):
    """1102.5 samples at 22.05 kHz is nearer 1024 than 2048 (on a log scale, as the docstring's 1024 says);
    rounded up it would have been 2048, twice the window at the rates most files have."""
    assert augment.vocoder_frame_length(rate_hz) == frame
    config = apply_overrides(config_with(pitch_probability=1.0, rescale_domain="waveform"),
                             {"audio.sample_rate_hz": rate_hz})
    augmenter = augment.make_waveform_augmenter(config)
    assert (augmenter.frame_length_samples, augmenter.hop_length_samples) == (frame, frame // 2)


@pytest.mark.parametrize("call", [
    lambda wave: augment.time_stretch(wave, 1.1, frame_length_samples=1024, hop_length_samples=1024),
    lambda wave: augment.change_speed(wave, 1.1, frame_length_samples=512, hop_length_samples=512),
    lambda wave: augment.pitch_shift(wave, 1.0, sample_rate_hz=RATE_HZ, hop_length_samples=1024),
])
def test_a_vocoder_hop_of_a_whole_frame_is_refused(call):
    """Frames that do not overlap cannot be overlap-added to a constant: the hop must divide the frame twice."""
    with pytest.raises(ConfigError, match=r"hop_length_samples must divide frame_length_samples=\d+ at least twice"):
        call(sine(440.0, 0.5, RATE_HZ))


@pytest.mark.parametrize("mode", ["roll", "zero"])
@pytest.mark.parametrize("shift", [0, 3, -3, 9, -9, 10, -10, 12, -12, 25])
def test_the_vocoders_padding_is_the_shifted_clip_mirrored_past_its_end(mode, shift):
    """What the phase vocoder frames: ``front`` zeros, the clip shifted as time_shift shifts it, then its last
    samples mirrored without repeating the final one (numpy's 'reflect'), at most n - 1 of them, then zeros."""
    wave = np.arange(1.0, 11.0, dtype=np.float32)  # n = 10
    shifted = augment.time_shift(wave, shift, mode=mode).numpy()
    for front, back in ((0, 0), (2, 4), (3, 9), (1, 13)):
        got = augment._shifted_and_padded(tf.constant(wave), tf.constant(shift), mode, front, back).numpy()
        mirrored = min(back, 9)
        expected = np.concatenate([np.zeros(front), np.pad(shifted, (0, mirrored), mode="reflect"),
                                   np.zeros(back - mirrored)])
        np.testing.assert_array_equal(got, expected, err_msg=f"front {front}, back {back}")
    got = augment._shifted_and_padded(tf.constant(wave), None, mode, 2, 13).numpy()  # no shift
    np.testing.assert_array_equal(got, np.concatenate([np.zeros(2), np.pad(wave, (0, 9), mode="reflect"), np.zeros(4)]))


@pytest.mark.parametrize("shift", [1000, -1000, 1001, -1500, 2**20])
def test_a_zero_fill_shift_of_the_whole_clip_or_more_leaves_silence(shift):
    """Everything is shifted out and zeros come in, on its own and inside the augmenter's vocoder pass."""
    wave = np.ones(1000, np.float32)
    out = augment.time_shift(wave, shift, mode="zero").numpy()
    assert out.shape == wave.shape and not out.any()
    folded = augment._rescale(sine(440.0, 1.0, RATE_HZ), 1.0, 1.1, frame_length=1024, hop_length=512,
                              shift_samples=tf.constant(shift * RATE_HZ // 1000), shift_mode="zero")
    assert folded.shape == (RATE_HZ,) and not folded.numpy().any()


@pytest.mark.parametrize("factor", [0.125, 0.2])
def test_a_speed_factor_below_the_fft_length_pairs_still_moves_the_pitch_by_it(factor):
    """Factors below 0.2005 (924 / 4608 with 1024-sample windows) lie beyond every FFT length pair: the vocoder
    takes its window and the nearest multiple of the overlap to window / factor. Without that fallback the
    lowest pair was used: 1 kHz slowed by 0.125 came out at 200 Hz (8x as long, as it should be)."""
    tone = sine(1000.0, 1.0, RATE_HZ)
    out = augment.change_speed(tone, factor).numpy()
    assert len(out) == round(RATE_HZ / factor)
    measured, bin_hz = peak_hz(out[2048:-2048])
    assert abs(measured - 1000.0 * factor) <= bin_hz + 1000.0 * factor * (2 ** (2 / 1200) - 1)


@pytest.mark.parametrize("semitones", [0.1, -0.1])
def test_a_pitch_shift_of_a_tenth_of_a_semitone_is_applied(semitones):
    """A factor counts as 1 (and the vocoder is skipped) only within 1e-6 of it: 0.1 semitone (a factor of
    1.0058) moves a 440 Hz tone by 2.5 Hz, 2.5 bins of a 1-s clip."""
    tone = sine(440.0, 1.0, RATE_HZ)
    out = augment.pitch_shift(tone, semitones, sample_rate_hz=RATE_HZ).numpy()
    measured, bin_hz = peak_hz(out)
    assert abs(measured - 440.0 * 2 ** (semitones / 12)) <= bin_hz
    assert measured != 440.0


def test_pitch_shift_uses_the_frame_length_it_is_given():
    """frame_length_samples picks the vocoder's window instead of the sample rate's, and is checked as such."""
    tone = sine(440.0, 0.5, RATE_HZ)
    small = augment.pitch_shift(tone, 2.0, sample_rate_hz=RATE_HZ, frame_length_samples=512).numpy()
    expected = augment._rescale(tf.constant(tone), 1.0, 2 ** (2 / 12), frame_length=512, hop_length=256).numpy()
    np.testing.assert_allclose(small, expected, atol=1e-6)
    default = augment.pitch_shift(tone, 2.0, sample_rate_hz=RATE_HZ).numpy()
    assert np.max(np.abs(small - default)) > 1e-3  # another window, another output
    with pytest.raises(ConfigError, match="frame_length_samples must be an integer >= 16, got 10"):
        augment.pitch_shift(tone, 2.0, sample_rate_hz=RATE_HZ, frame_length_samples=10)


@pytest.mark.parametrize("shift_mode", ["roll", "zero"])
def test_a_clip_the_augmenter_does_not_rescale_is_still_shifted_and_scaled(shift_mode):
    """With pitch drawn at 0.5, the clips drawn without it skip the vocoder (the conditional's other branch),
    which must shift and scale them as the vocoder pass does for the others."""
    config = config_with(rescale_domain="waveform", pitch_probability=0.5, shift_probability=1.0,
                         gain_probability=1.0, gain_min_db=3.0, gain_max_db=9.0, shift_mode=shift_mode)
    augmenter = augment.make_waveform_augmenter(config)
    wave = sine(440.0, 1.0, RATE_HZ)
    kept = 0
    for seed in range(12):
        params = augmenter.draw(tf.constant([seed, 3]), RATE_HZ)
        if bool(params["pitch_applied"]):
            continue
        kept += 1
        expected = augment.apply_gain(augment.time_shift(wave, params["shift_samples"], mode=shift_mode),
                                      params["gain_db"]).numpy()
        np.testing.assert_allclose(augmenter.apply(wave, params).numpy(), expected, rtol=1e-6, atol=1e-7)
    assert kept >= 3


@pytest.mark.parametrize("exponent, min_frequency_hz, first_bin", [(1.0, 0.0, 1), (2.0, 0.0, 1), (1.0, 20.0, 20),
                                                                  (2.0, 30.5, 31)])
def test_coloured_noise_has_no_power_below_its_first_bin_and_some_from_it_on(exponent, min_frequency_hz, first_bin):
    """DC is removed, and with min_frequency_hz every bin below it (bin k at k Hz for a 1-s clip at 16 kHz);
    the first bin at or above it is kept: it holds the most power of pink and brown noise."""
    noise = augment.colored_noise(RATE_HZ, tf.constant([5, 6]), exponent=exponent, sample_rate_hz=RATE_HZ,
                                  min_frequency_hz=min_frequency_hz).numpy()
    power = np.abs(np.fft.rfft(noise.astype(np.float64))) ** 2
    assert np.all(power[:first_bin] < 1e-9 * power.sum())
    assert power[first_bin] > 1e-4 * power.sum()


def test_each_colour_of_the_generated_pool_is_a_draw_of_its_own():
    """Rows of two colours are independent noise, not one draw shaped twice: the phases of a pink and a brown
    row agree no more than chance (mean cosine of their difference under 0.05; one draw shaped twice: 1)."""
    config = apply_overrides(config_with(noise_probability=1.0), {"augment.noise_colors": ["pink", "brown"]})
    pool = augment.WaveformAugmenter._generated_noise(config)  # [colours, variants, samples]
    for variant in range(pool.shape[1]):
        pink, brown = (np.angle(np.fft.rfft(pool[c, variant].astype(np.float64)))[20:-1] for c in (0, 1))
        assert abs(np.mean(np.cos(pink - brown))) < 0.05, variant


def test_the_generated_pool_of_long_clips_keeps_to_its_memory():
    """20-s clips at 48 kHz in three colours: a row of each with its wrap copy takes 23 MB, so the 64 MiB pool
    holds 2 of them per colour, not 8 (about 180 MB)."""
    config = apply_overrides(config_with(noise_probability=1.0),
                             {"audio.sample_rate_hz": 48000, "audio.clip_seconds": 20.0})
    augmenter = augment.make_waveform_augmenter(config)
    colours, variants, samples = augmenter._generated_shape
    assert (colours, samples) == (3, 960_000)
    assert augmenter._noise_table.shape.num_elements() * 4 <= augment.GENERATED_NOISE_BYTES
    assert variants == 2  # as many as fit: 3 would take 69 MB


def test_a_noise_draw_reads_the_colour_it_names():
    """With white, pink and brown noise, each drawn noise_source reads a window of that colour's rows (the
    pool's rows are colour by colour, variants end to end), whatever the offset."""
    config = apply_overrides(config_with(noise_probability=1.0, noise_colors=["white", "pink", "brown"]),
                             {"audio.clip_seconds": 4.0})
    augmenter = augment.make_waveform_augmenter(config)
    samples = config.audio.clip_samples
    params = augmenter.draw(tf.constant([2, 2]), samples)
    for colour, exponent in enumerate((0.0, 1.0, 2.0)):
        for offset in (0, samples + 123, augmenter._generated_shape[1] * samples - 1):
            window = augmenter.noise({**params, "noise_source": tf.constant(colour),
                                      "noise_offset": tf.constant(offset)}, samples).numpy()
            freqs, psd = scipy.signal.welch(window, fs=RATE_HZ, nperseg=4096)
            band = (freqs >= 50) & (freqs <= 5000)
            slope = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)[0]
            assert slope == pytest.approx(-exponent, abs=0.15), (colour, offset)


def test_drawn_shifts_are_whole_samples_spread_evenly_both_ways():
    """The drawn fraction of the clip is rounded to the nearest sample: over 4 samples at +-0.5 of the clip,
    shifts of -2..2 with the ends half as likely, mean 0. Truncated towards minus infinity they were -2..1,
    mean -0.5."""
    config = config_with(shift_probability=1.0, shift_max_clip_fraction=0.5)
    augmenter = augment.make_waveform_augmenter(config)
    draw = tf.function(lambda seed: augmenter.draw(seed, 4)["shift_samples"])
    shifts = np.array([int(draw(tf.constant([i, 8]))) for i in range(800)])
    counts = np.bincount(shifts + 2, minlength=5) / len(shifts)
    np.testing.assert_allclose(counts, [0.125, 0.25, 0.25, 0.25, 0.125], atol=0.05)
    assert abs(shifts.mean()) < 0.1


@pytest.mark.parametrize("name, neutral, acting", [
    ("gain", {"gain_min_db": 0.0, "gain_max_db": 0.0}, {"gain_min_db": 0.0, "gain_max_db": 1.0}),
    ("shift", {"shift_max_clip_fraction": 0.0}, {"shift_max_clip_fraction": 0.01}),
    ("speed", {"speed_min_factor": 1.0, "speed_max_factor": 1.0}, {"speed_min_factor": 1.0, "speed_max_factor": 1.1}),
    ("stretch", {"stretch_min_rate": 1.0, "stretch_max_rate": 1.0}, {"stretch_min_rate": 0.9, "stretch_max_rate": 1.0}),
    ("pitch", {"pitch_min_semitones": 0.0, "pitch_max_semitones": 0.0},
     {"pitch_min_semitones": 1.0, "pitch_max_semitones": 1.0})])
def test_a_range_of_only_the_neutral_value_counts_as_off(name, neutral, acting):
    """gain 0..0 dB (or a shift of at most 0, speed 1..1, stretch 1..1, pitch 0..0 semitones) at probability 1 on the
    waveform was counted as acting: training mapped an augmenter that gives every clip back as it is, and the log's
    summary line listed 'gain p1 +-0 dB (waveform)' (shift and gain; speed, stretch and pitch were left out there
    already). Such a transform is off everywhere; a range beyond the neutral value acts."""
    config = config_with(**{f"{name}_probability": 1.0, "rescale_domain": "waveform", **neutral})
    augmenter = augment.make_waveform_augmenter(config)
    assert not augmenter.acts_on_waveform and augment.training_augmenter(config) is None
    assert augment.applied_transforms(config) == ["spec"]  # SpecAugment is on in the defaults
    assert augment.summary_line(config).startswith("augment: SpecAugment p1 ")
    wave = sine(440.0, 1.0, RATE_HZ)
    np.testing.assert_array_equal(augmenter(wave, tf.constant([1, 2])).numpy(), wave)  # the identity indeed
    acts = apply_overrides(config, {f"augment.{key}": value for key, value in acting.items()})
    assert augment.training_augmenter(acts) is not None and augment.applied_transforms(acts) == [name, "spec"]
    assert np.max(np.abs(augment.training_augmenter(acts)(wave, tf.constant([1, 2])).numpy() - wave)) > 1e-3


@pytest.mark.parametrize("transform", ["shift", "gain"])
def test_shift_or_gain_alone_on_the_waveform_makes_training_map_the_augmenter(transform):
    """With every other transform off, a shift or a gain set on the waveform is the augmenter's whole work:
    training must map it over the clips (training_augmenter returned None once gain alone was overlooked)."""
    config = config_with(**{f"{transform}_probability": 1.0, "gain_min_db": 6.0, "gain_max_db": 6.0})
    augmenter = augment.training_augmenter(config)
    assert augmenter is not None and augmenter.acts_on_waveform
    wave = sine(440.0, 1.0, RATE_HZ)
    assert np.max(np.abs(augmenter(wave, tf.constant([1, 2])).numpy() - wave)) > 0.1
    assert augment.training_augmenter(apply_overrides(config, {"augment.shift_gain_domain": "features"})) is None


@pytest.mark.parametrize("frames, widest", [(27, 2), (29, 2), (30, 3)])
def test_a_time_mask_is_its_fraction_of_the_frames_rounded_down(frames, widest):
    """0.1 of 27 or 29 frames (2.7, 2.9) allows masks of up to 2 frames, not 3; 0.1 of 30 allows 3."""
    layer = augment.SpecAugment(freq_mask_count=0, time_mask_count=1, time_mask_max_fraction=0.1, seed=5)
    widths = (layer(tf.ones([4000, frames, 3]), training=True).numpy() == 0.0).all(axis=2).sum(axis=1)
    assert widths.max() == widest and (widths == widest).mean() > 0.15


def test_a_frequency_mask_wider_than_the_bands_is_at_most_every_band():
    """freq_mask_max_bins 50 over 10 mel bands: widths 0..10 (a mask cannot be wider than the axis), each
    about equally likely (1/11, +-0.04), every mask inside the axis."""
    layer = augment.SpecAugment(freq_mask_count=1, freq_mask_max_bins=50, time_mask_count=0, seed=5)
    masked = (layer(tf.ones([4000, 3, 10]), training=True).numpy() == 0.0).all(axis=1)  # [batch, bins]
    widths = masked.sum(axis=1)
    shares = np.bincount(widths, minlength=11) / len(widths)
    np.testing.assert_allclose(shares, 1 / 11, atol=0.04)
