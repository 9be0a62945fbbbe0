"""Shift, gain, noise and mixup on the mel powers inside the model (``augment.*_domain = "features"``).

Each feature-domain step is checked against the waveform step it stands for: the model's own log-mel
of the transformed waveform.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import sine
from sound_tf import augment, models
from sound_tf.config import Config, apply_overrides
from sound_tf.errors import ConfigError
from sound_tf.frontend import LogMel

RATE_HZ = 16000
ON_FEATURES = {"augment.shift_gain_domain": "features", "augment.noise_domain": "features",
               "augment.mixup_domain": "features"}


def features_config(**augment_values) -> Config:
    """The default 1-s 16 kHz config with shift, gain, noise and mixup on the features."""
    return apply_overrides(Config(labels=("a", "b", "c")),
                           {**ON_FEATURES, **{f"augment.{k}": v for k, v in augment_values.items()}})


def log_mel(config: Config, *waves: np.ndarray) -> np.ndarray:
    return LogMel.from_config_object(config)(np.stack(waves).astype(np.float32)).numpy()


def band_power_db(config: Config, features: np.ndarray) -> float:
    """10 log10 of the band-weighted mel power of ``features`` (the layer's measure of a clip's power)."""
    power = np.maximum(np.exp(features.astype(np.float64)) - config.features.log_offset, 0.0)
    return float(10 * np.log10(np.mean(power @ augment.band_weights(config))))


def tones(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1800 * t)).astype(np.float32)


@pytest.mark.parametrize("gain_db", [-6.0, 3.5])
def test_feature_gain_equals_the_log_mel_of_the_scaled_clip(gain_db):
    config = features_config()
    wave = np.concatenate([np.zeros(RATE_HZ // 2, np.float32), sine(700.0, 0.5, RATE_HZ)])  # silence, then a tone
    layer = augment.feature_augment_layer(config)
    original, scaled = log_mel(config, wave, wave * 10 ** (gain_db / 20))
    out = layer.apply(original[None], {"gain_db": tf.constant([gain_db])}).numpy()[0]
    np.testing.assert_allclose(out, scaled, atol=2e-3)  # silence stays silence (log of the offset)
    wide = layer.apply(original[None].astype(np.float64), {"gain_db": tf.constant([gain_db])})  # NumPy's default dtype
    assert wide.dtype == tf.float64
    np.testing.assert_allclose(wide.numpy()[0], out, atol=1e-6)


@pytest.mark.parametrize("mode", ["roll", "zero"])
def test_feature_shift_moves_frames_as_the_waveform_shift_does(mode):
    config = features_config(shift_mode=mode)
    hop, frames = config.hop_length_samples, config.num_frames
    click = np.zeros(config.audio.clip_samples, np.float32)
    click[4000:4400] = sine(1000.0, 400 / RATE_HZ, RATE_HZ)
    shift_frames = 7
    (original,) = log_mel(config, click)
    shifted_wave = augment.time_shift(click, shift_frames * hop, mode=mode).numpy()
    (expected,) = log_mel(config, shifted_wave)
    layer = augment.feature_augment_layer(config)
    out = layer.apply(original[None], {"shift_clip_fraction": tf.constant([shift_frames / frames])}).numpy()[0]
    np.testing.assert_allclose(out, expected, atol=2e-3)
    assert np.argmax(out.max(axis=1)) == np.argmax(original.max(axis=1)) + shift_frames
    if mode == "zero":  # the frames shifted in are silence
        np.testing.assert_allclose(out[:shift_frames], np.log(config.features.log_offset), atol=1e-3)
    # a clip sounding from its first frame: every frame moves by the shift, the first one too, and a shift of
    # nothing changes nothing
    (sounding,) = log_mel(config, tones())
    moved, kept = layer.apply(np.stack([sounding, sounding]),
                              {"shift_clip_fraction": tf.constant([shift_frames / frames, 0.0])}).numpy()
    np.testing.assert_allclose(moved[shift_frames:], sounding[:-shift_frames], atol=1e-3)
    np.testing.assert_allclose(kept, sounding, atol=1e-5)
    # ... and the frames moved in are its last ones (roll) or silence (zero). The click above has silence at
    # both ends, where a roll and a zero-filled shift look alike: either mode could have stood for the other.
    vacated = sounding[-shift_frames:] if mode == "roll" else np.full_like(sounding[:shift_frames],
                                                                           np.log(config.features.log_offset))
    np.testing.assert_allclose(moved[:shift_frames], vacated, atol=1e-3)


@pytest.mark.parametrize("row", [0, 9, 20])  # a white, a pink and a brown row of the generated pool
@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_feature_noise_matches_the_waveform_mix_at_its_snr(row, snr_db):
    config = features_config(noise_probability=1.0)
    pool = augment.WaveformAugmenter._generated_noise(config).reshape(-1, config.audio.clip_samples)
    wave = tones()
    mixed = augment.add_noise(wave, pool[row], snr_db).numpy()  # the waveform step: SNR of the mean squares
    clean, expected = log_mel(config, wave, mixed)
    layer = augment.feature_augment_layer(config)
    # the second example was not drawn for noise (its drawn SNR is still there): it must stay clean
    params = {"noise_applied": tf.constant([True, False]), "noise_snr_db": tf.constant([snr_db, snr_db]),
              "noise_source": tf.constant([row, row]), "noise_offset": tf.constant([0.0, 0.0])}
    out, untouched = layer.apply(np.stack([clean, clean]), params).numpy()
    assert abs(band_power_db(config, out) - band_power_db(config, expected)) < 0.2  # dB
    assert np.mean(np.abs(out - expected)) < 0.1  # nats: only the cross term, which averages out, is missing
    np.testing.assert_allclose(untouched, clean, atol=1e-5)  # to float rounding: the noise would add nats


def test_feature_noise_reads_a_noise_bank_window_and_leaves_silence_alone(rng):
    config = features_config(noise_probability=1.0)
    bank = np.concatenate([0.05 * rng.standard_normal(25000), 0.2 * rng.standard_normal(15000)]).astype(np.float32)
    layer = augment.feature_augment_layer(config, noise_bank=bank)
    assert (layer.noise_mel_power.shape[0] == 1
            and layer.noise_mel_power.shape[1] >= bank.size // config.hop_length_samples)
    start = 30 * config.hop_length_samples
    window = bank[np.arange(start, start + config.audio.clip_samples) % bank.size]
    wave = tones()
    clean, silent, expected = log_mel(config, wave, np.zeros_like(wave), augment.add_noise(wave, window, 5.0).numpy())
    offset = 30 / (layer.noise_mel_power.shape[1] - config.num_frames + 1) + 1e-6  # starts at frame 30
    params = {"noise_applied": tf.constant([True, True]), "noise_snr_db": tf.constant([5.0, 5.0]),
              "noise_source": tf.constant([0, 0]), "noise_offset": tf.constant([offset, offset])}
    out = layer.apply(np.stack([clean, silent]), params).numpy()
    assert abs(band_power_db(config, out[0]) - band_power_db(config, expected)) < 0.3
    np.testing.assert_array_equal(out[1], silent)  # no SNR for silence: nothing is added


def test_feature_mixup_mixes_powers_and_the_training_step_mixes_labels_alike():
    config = features_config(mixup_probability=1.0)
    layer = augment.feature_augment_layer(config)
    assert layer.mixes
    a, b = log_mel(config, sine(500.0, 1.0, RATE_HZ), sine(2500.0, 1.0, RATE_HZ, amplitude=0.1))
    params = {"weight": tf.constant([0.7, 0.2]), "partner": tf.constant([1, 0])}
    out = layer.apply(np.stack([a, b]), {}, mixup=params).numpy()
    power = lambda f: np.exp(f.astype(np.float64)) - config.features.log_offset  # noqa: E731
    offset = config.features.log_offset
    np.testing.assert_allclose(out[0], np.log(0.49 * power(a) + 0.09 * power(b) + offset), atol=1e-4)
    np.testing.assert_allclose(out[1], np.log(0.04 * power(b) + 0.64 * power(a) + offset), atol=1e-4)
    # ... the log-mel of w a + (1 - w) b on the waveform, the waveform mixup, but for the cross term (none
    # for two tones this far apart).
    (mixed,) = log_mel(config, 0.7 * sine(500.0, 1.0, RATE_HZ) + 0.3 * sine(2500.0, 1.0, RATE_HZ, amplitude=0.1))
    loud = mixed > np.log(offset) + 3  # bands with the tones in them
    assert np.median(np.abs(out[0] - mixed)[loud]) < 0.05

    # A batch of 8, partners never the example itself.
    labels = tf.one_hot([0, 2, 1, 1, 0, 2, 1, 0], 3)
    sample_weight = np.arange(1.0, 9.0)
    drawn = layer.draw_mixup(8)
    mixed, weights = augment.mix_labels(labels, tf.constant(sample_weight), drawn)
    w, partner = drawn["weight"].numpy(), drawn["partner"].numpy()
    assert np.all(partner != np.arange(8)) and np.all((w > 0) & (w <= 1))
    crossed = (w < 0.99) & (labels.numpy().argmax(1) != labels.numpy().argmax(1)[partner])
    assert crossed.sum() >= 2  # examples really mixed with another class
    np.testing.assert_allclose(mixed.numpy().sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(mixed.numpy(), w[:, None] * labels.numpy() + (1 - w[:, None]) * labels.numpy()[partner],
                               rtol=1e-6)
    np.testing.assert_allclose(weights.numpy(), w * sample_weight + (1 - w) * sample_weight[partner], rtol=1e-6)


def test_the_training_step_trains_on_the_mixed_labels(rng):
    """The model's train_step mixes the labels with the features' weights: the loss sees soft targets."""
    config = features_config(mixup_probability=1.0, mixup_alpha=10.0)  # weights near 0.5
    model = models.build_model(config, **augment.model_augment_layers(config))
    # a "loss" that is the largest target of each example: 1 for a one-hot label, below 1 once mixed
    model.compile(optimizer="sgd", loss=lambda y, logits: tf.reduce_max(y, axis=-1) + 0.0 * tf.reduce_sum(logits, -1))
    waves = (0.1 * rng.standard_normal((8, config.audio.clip_samples))).astype(np.float32)
    loss = float(model.train_on_batch(waves, tf.one_hot(np.arange(8) % 3, 3)))
    assert 0.5 <= loss < 0.9, loss


def test_the_training_step_mixes_labels_with_the_weights_and_partners_the_features_get(rng, monkeypatch):
    """Each label is mixed as its features are: ``w y + (1 - w) y[partner]`` with the very weight and partner
    the FeatureAugment layer mixed that example's mel powers with in the same step. (A step that drew the
    features' mixing apart from the labels' still gave soft labels summing to 1, and trained.)"""
    config = features_config(mixup_probability=1.0, mixup_alpha=10.0, shift_probability=0.0,
                             gain_probability=0.0, noise_probability=0.0)
    model = models.build_model(config, **augment.model_augment_layers(config))
    layer = model.get_layer("feature_augment")
    seen = {}
    apply = layer.apply

    def recording_apply(features, params, mixup=None):
        seen["mixup"] = {key: value.numpy() for key, value in mixup.items()}
        return apply(features, params, mixup=mixup)

    def recording_loss(y, logits):
        seen["labels"] = y.numpy()
        return keras.losses.categorical_crossentropy(y, logits, from_logits=True)

    monkeypatch.setattr(layer, "apply", recording_apply)
    model.compile(optimizer="sgd", loss=recording_loss, run_eagerly=True)  # eager: the step's values can be read
    labels = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    waves = (0.1 * rng.standard_normal((8, config.audio.clip_samples))).astype(np.float32)
    model.train_on_batch(waves, labels)
    w, partner = seen["mixup"]["weight"], seen["mixup"]["partner"]
    assert np.all(np.abs(w - 0.5) < 0.4)  # Beta(10, 10): every example really mixed
    np.testing.assert_allclose(seen["labels"], w[:, None] * labels + (1 - w[:, None]) * labels[partner], atol=1e-6)


def test_training_with_every_step_on_the_features_runs_without_a_waveform_map(tmp_path, rng):
    config = features_config(noise_probability=1.0, mixup_probability=1.0, gain_probability=1.0,
                             shift_probability=1.0)
    augmenter = augment.make_waveform_augmenter(config)
    assert not augmenter.acts_on_waveform and augment.make_mixup(config) is None
    assert augment.training_augmenter(config) is None  # the trainer maps nothing over the clips
    model = models.build_model(config, **augment.model_augment_layers(config))
    layer = model.get_layer("feature_augment")
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    waves = (0.1 * rng.standard_normal((8, config.audio.clip_samples))).astype(np.float32)
    labels = tf.one_hot(np.arange(8) % 3, 3)
    before = [keras.ops.convert_to_numpy(g.state) for g in (layer.seed_generator, layer.mixup_seed_generator)]
    history = model.fit(waves, labels, sample_weight=np.linspace(0.5, 2.0, 8).astype(np.float32),  # class weights
                        batch_size=4, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(g.state) for g in (layer.seed_generator, layer.mixup_seed_generator)]
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.array_equal(x, y) for x, y in zip(before, after))  # both draws ran in the training step
    np.testing.assert_array_equal(layer(log_mel(config, waves[0])), log_mel(config, waves[0]))  # inference: identity

    model.save(tmp_path / "m.keras")  # saved without the noise table; inference is unchanged
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded, models.SoundClassifier) and not reloaded.get_layer("feature_augment").noises
    np.testing.assert_allclose(reloaded.predict(waves, verbose=0), model.predict(waves, verbose=0), atol=1e-5)


def test_feature_steps_reproduce_from_the_seed_and_stay_finite_on_silence_and_clipping():
    config = features_config(noise_probability=1.0, gain_probability=1.0, shift_probability=1.0)
    loud = np.clip(4.0 * tones(), -1.0, 1.0)
    batch = log_mel(config, np.zeros(RATE_HZ, np.float32), loud, tones())
    first = augment.feature_augment_layer(config)(batch, training=True).numpy()
    again = augment.feature_augment_layer(config)(batch, training=True).numpy()
    other = augment.feature_augment_layer(apply_overrides(config, {"train.seed": 5}))(batch, training=True).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert np.all(np.isfinite(first))
    np.testing.assert_allclose(first[0], batch[0], atol=1e-5)  # silence: shifted, scaled and noised, still silence
    # The generated noise follows train.seed on its own, so `other` differs whatever the draws do: without
    # noise, the shift and gain draws, and apart from them mixup's weights and partners, must follow it too.
    only_draws = {"augment.noise_probability": 0.0, "augment.mixup_probability": 0.0}
    only_mixup = {"augment.noise_probability": 0.0, "augment.shift_probability": 0.0,
                  "augment.gain_probability": 0.0, "augment.mixup_probability": 1.0}

    def augmented(overrides: dict, seed: int) -> np.ndarray:
        layer = augment.feature_augment_layer(apply_overrides(config, {**overrides, "train.seed": seed}))
        with layer.mixing(layer.draw_mixup(3) if layer.mixes else None):
            return layer(batch, training=True).numpy()

    for overrides in (only_draws, only_mixup):
        seeded = augmented(overrides, 4)
        np.testing.assert_array_equal(seeded, augmented(overrides, 4))
        assert np.max(np.abs(seeded[1:] - augmented(overrides, 5)[1:])) > 0.1, overrides  # nats


def test_domain_settings_are_validated_and_decide_where_each_step_runs():
    with pytest.raises(ConfigError, match="augment.noise_domain"):
        apply_overrides(Config(), {"augment.noise_domain": "spectrum"})
    defaults = Config()  # every step on the features: the model augments, the pipeline only crops
    assert all(getattr(defaults.augment, key.split(".")[1]) == "features" for key in ON_FEATURES)
    layer = augment.feature_augment_layer(defaults)
    assert layer.mixes and layer.shifts_or_scales and layer.noises
    assert augment.training_augmenter(defaults) is None and augment.make_mixup(defaults) is None
    on_waveform = apply_overrides(defaults, {key: "waveform" for key in ON_FEATURES})
    assert augment.feature_augment_layer(on_waveform) is None
    assert augment.make_mixup(on_waveform) is not None and augment.training_augmenter(on_waveform) is not None
    only_mixup = apply_overrides(on_waveform, {"augment.mixup_domain": "features"})
    layer = augment.feature_augment_layer(only_mixup)
    assert layer.mixes and not layer.shifts_or_scales and augment.make_mixup(only_mixup) is None
    assert augment.make_waveform_augmenter(only_mixup).acts_on_waveform
    assert isinstance(augment.training_augmenter(only_mixup), augment.WaveformAugmenter)
    assert augment.training_augmenter(apply_overrides(only_mixup, {"augment.enabled": False})) is None
    with pytest.raises(ConfigError, match="noise_power"):
        augment.FeatureAugment(log_offset=1e-6, band_weights=[1.0] * 4, noise_mel_power=np.ones((1, 5, 4)))


def test_cli_training_panel_shows_on_the_features_what_the_wavs_let_you_hear(tmp_path):
    import json

    import soundfile as sf

    from sound_tf.augment_cli import training_features

    source = tmp_path / "tones.wav"
    quiet = 0.1 * tones()  # +20 dB (the default gain range's top) stays unclipped in the preview's 16-bit WAVs
    sf.write(source, quiet, RATE_HZ, subtype="FLOAT")
    out_dir = tmp_path / "out"
    settings = {**ON_FEATURES, "augment.shift_probability": 1, "augment.gain_probability": 1,
                "augment.noise_probability": 1, "augment.speed_probability": 0, "augment.pitch_probability": 0}
    args = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    assert augment.main([str(source), "--out", str(out_dir), "--count", "3", "--seed", "4", *args]) == 0
    config = apply_overrides(Config(), {**settings, "train.seed": 4})  # --seed is train.seed
    for record in json.loads((out_dir / "params.json").read_text()):
        heard, _ = sf.read(out_dir / record["file"], dtype="float32")  # waveform shift, gain and noise
        params = {k: np.asarray(v) for k, v in record["params"].items()}
        seen = training_features(augment.make_waveform_augmenter(config), quiet, params)
        (expected,) = log_mel(config, heard)
        assert abs(band_power_db(config, seen) - band_power_db(config, expected)) < 0.3
        # The noise window starts on a frame and the shift moves whole frames, so frame by frame the noise
        # is another draw; the long-term spectrum (each band's mean power) is the same.
        band_db = [10 * np.log10(np.mean(np.exp(f.astype(np.float64)), axis=0)) for f in (seen, expected)]
        assert np.max(np.abs(band_db[0] - band_db[1])) < 0.5


def test_saved_weights_carry_the_draw_state_so_a_resumed_run_draws_on(tmp_path):
    config = features_config(mixup_probability=1.0, shift_probability=1.0)
    model = models.build_model(config, **augment.model_augment_layers(config))
    names = ("feature_rescale", "feature_augment", "spec_augment")
    for name in names:  # as if a few training steps had drawn
        for _ in range(3):
            model.get_layer(name).seed_generator.next()
    model.save_weights(tmp_path / "backup.weights.h5")
    batch = tf.constant(log_mel(config, tones(), np.zeros(RATE_HZ, np.float32)))
    expected = [model.get_layer(name)(batch, training=True).numpy() for name in names]
    expected_mixup = model.get_layer("feature_augment").draw_mixup(2)["weight"].numpy()

    resumed = models.build_model(config, **augment.model_augment_layers(config))
    resumed.load_weights(tmp_path / "backup.weights.h5")
    for name, before in zip(names, expected):
        np.testing.assert_array_equal(resumed.get_layer(name)(batch, training=True).numpy(), before)
    np.testing.assert_array_equal(resumed.get_layer("feature_augment").draw_mixup(2)["weight"].numpy(), expected_mixup)
    fresh = models.build_model(config, **augment.model_augment_layers(config))  # from the start: other draws
    assert not np.array_equal(fresh.get_layer("feature_augment")(batch, training=True).numpy(), expected[1])


def test_feature_shift_rounds_the_fraction_to_the_nearest_frame_both_ways():
    """The waveform augmenter shifts by round(fraction * samples); on the features the shift is
    round(fraction * frames), symmetric about 0: a click's frame moves by -8, -7, 7 and 8 frames for
    fractions of -7.6, -7, 7 and 7.6 frames (a floor would move -8, -8 or -7, 7 and 7)."""
    from sound_tf.frontend import LogMel

    config = apply_overrides(Config(), {"augment.shift_gain_domain": "features", "augment.shift_probability": 1.0})
    layer = augment.feature_augment_layer(config)
    click = np.zeros(config.audio.clip_samples, np.float32)
    click[RATE_HZ // 2] = 1.0
    features = LogMel.from_config_object(config)(click[None]).numpy()
    frames = features.shape[1]
    before = int(np.argmax(features[0].mean(axis=1)))
    for shift in (-7.6, -7.0, 7.0, 7.6):
        fraction = tf.constant([shift / frames], tf.float32)
        out = layer.apply(features, {"shift_clip_fraction": fraction}).numpy()[0]
        assert int(np.argmax(out.mean(axis=1))) - before == round(shift), shift


def test_feature_noise_offset_picks_the_window_start_frame_it_stands_for():
    """noise_offset u in [0, 1) starts the window at frame floor(u * (table frames - clip frames + 1)):
    every start, the last one too, is reachable, and the noise added is exactly that window's mel powers
    at the drawn SNR (compared with the layer's own formula, to float32 rounding)."""
    rows, table_frames, frames, bins = 2, 40, 10, 4
    rng = np.random.default_rng(3)
    table = rng.uniform(0.5, 2.0, (rows, table_frames, bins)).astype(np.float32)
    table_power = rng.uniform(0.5, 2.0, (rows, table_frames)).astype(np.float32)
    layer = augment.FeatureAugment(log_offset=1e-6, noise_probability=1.0, band_weights=[1.0] * bins,
                                   noise_mel_power=table, noise_power=table_power)
    clean = np.full((1, frames, bins), np.log(0.25 + 1e-6), np.float32)  # power 0.25 per band
    starts = table_frames - frames + 1
    for start in (0, 1, 17, starts - 1):
        offset = (start + 0.5) / starts
        params = {"noise_applied": tf.constant([True]), "noise_snr_db": tf.constant([6.0]),
                  "noise_source": tf.constant([1]), "noise_offset": tf.constant([offset], tf.float32)}
        out = np.exp(layer.apply(clean, params).numpy()[0].astype(np.float64)) - 1e-6 - 0.25
        window = table[1, start:start + frames]
        scale = 0.25 * bins / np.mean(table_power[1, start:start + frames]) * 10 ** -0.6
        np.testing.assert_allclose(out, scale * window, rtol=1e-4, err_msg=str(start))


def test_labels_and_sample_weights_are_mixed_with_the_weight_the_clip_gets():
    """Hand-set weights and a permutation without fixed points (a drawn batch of 4 in
    tests/test_feature_augment.py happens to get the identity, which mixes nothing): a clip mixed
    w = 0.7 with its partner keeps label 0.7 and gives the partner's class 0.3, and its sample weight is
    0.7 of its own plus 0.3 of the partner's."""
    params = {"weight": tf.constant([0.7, 0.2, 1.0]), "partner": tf.constant([1, 2, 0])}
    waves = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], np.float32)
    labels = np.eye(3, dtype=np.float32)
    mixed_waves, mixed_labels = (t.numpy() for t in augment.apply_mixup(waves, labels, params))
    np.testing.assert_allclose(mixed_waves, [[0.7, 0.3], [1.6, 1.8], [2.0, 2.0]], atol=1e-6)
    expected = [[0.7, 0.3, 0.0], [0.0, 0.2, 0.8], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(mixed_labels, expected, atol=1e-6)
    soft, weights = augment.mix_labels(labels, tf.constant([1.0, 2.0, 4.0]), params)
    np.testing.assert_allclose(soft.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(weights.numpy(), [0.7 + 0.6, 0.4 + 3.2, 4.0], atol=1e-6)
