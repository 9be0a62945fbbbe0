"""Architectures: computed sizes, parameter budgets, the spec_augment hook, save/load, TFLite, learning."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sound_tf.config import Config, apply_overrides
from sound_tf.errors import ConfigError
from sound_tf.export import convert_waveform_model, tflite_source
from sound_tf.frontend import compute_feature_stats, for_tflite
from sound_tf.lite import LOGITS
from sound_tf.models import (LOG_MEL_LAYER_NAME, build_model, count_macs, macs_by_layer,
                             seed_cnn_flat_size)

SEED_DENSE_UNITS = 512
SEED_CONV_FILTERS = (32, 64)
DEFAULT_MAX_PARAMS = 250_000


def make_config(*, sample_rate_hz: int = 8000, clip_seconds: float = 0.5, mels: int = 32, labels: int = 4,
                model: str = "default", **more) -> Config:
    overrides = {"audio.sample_rate_hz": sample_rate_hz, "audio.clip_seconds": clip_seconds,
                 "features.num_mel_bins": mels, "model.name": model,
                 "labels": [f"class_{i}" for i in range(labels)]}
    overrides.update(more)
    return apply_overrides(Config(), overrides)


def noise(config: Config, batch: int, rng: np.random.Generator) -> np.ndarray:
    return (0.1 * rng.standard_normal((batch, config.audio.clip_samples))).astype(np.float32)


@pytest.mark.parametrize("clip_seconds, mels", [(0.5, 32), (1.0, 40)])
def test_seed_cnn_flat_size_follows_the_feature_shape(clip_seconds, mels, rng):
    config = make_config(clip_seconds=clip_seconds, mels=mels, model="seed_cnn")
    frames, bins = config.feature_shape
    expected_flat = (frames // 2 // 2) * (bins // 2 // 2) * SEED_CONV_FILTERS[-1]
    assert seed_cnn_flat_size(config.feature_shape) == expected_flat
    model = build_model(config)
    assert model.get_layer("seed4_flatten").output.shape[-1] == expected_flat
    assert model.get_layer("seed5_dense").count_params() == expected_flat * SEED_DENSE_UNITS + SEED_DENSE_UNITS
    assert model(noise(config, 2, rng)).shape == (2, config.num_classes)
    # The original article's input (128 mels x 216 frames): 56.6 M parameters in that one layer.
    assert seed_cnn_flat_size((216, 128)) * SEED_DENSE_UNITS == 56_623_104


def test_seed_cnn_macs_follow_the_formula():
    config = make_config(model="seed_cnn")
    frames, bins = config.feature_shape
    macs = macs_by_layer(build_model(config))
    assert macs["seed0_conv"] == frames * bins * SEED_CONV_FILTERS[0] * 9 * 1
    assert macs["seed2_conv"] == (frames // 2) * (bins // 2) * SEED_CONV_FILTERS[1] * 9 * SEED_CONV_FILTERS[0]
    assert macs["seed5_dense"] == seed_cnn_flat_size(config.feature_shape) * SEED_DENSE_UNITS
    assert macs["logits"] == SEED_DENSE_UNITS * config.num_classes
    assert count_macs(build_model(config)) == sum(macs.values())


@pytest.mark.parametrize("classes", [10, 50])
def test_default_model_parameter_budget(classes):
    config = make_config(sample_rate_hz=22050, clip_seconds=5.0, mels=64, labels=classes)
    model = build_model(config)
    pooled = 2 * config.model.widths[-1]  # mean + max pooling
    assert model.get_layer("logits").count_params() == (pooled + 1) * classes
    assert 20_000 < model.count_params() <= DEFAULT_MAX_PARAMS
    # Global pooling: the size does not depend on the clip length.
    short = build_model(make_config(clip_seconds=0.5, mels=64, labels=classes))
    assert short.count_params() == model.count_params()


def test_default_model_widths_drive_the_blocks():
    base = build_model(make_config())
    wider = build_model(make_config(**{"model.widths": [16, 32, 64, 128, 256]}))
    assert wider.get_layer("block4_separable").output.shape[-1] == 256
    assert wider.get_layer("logits").input.shape[-1] == 2 * 256
    assert base.count_params() != wider.count_params()


def test_output_shape_and_spec_augment_hook(rng):
    config = make_config(labels=3)
    waveform = noise(config, 5, rng)
    augment = keras.layers.GaussianNoise(stddev=1.0, name="test_augment")
    augmented = build_model(config, spec_augment=augment)
    plain = build_model(config)
    plain.set_weights(augmented.get_weights())
    names = [layer.name for layer in augmented.layers]
    assert names.index("normalize") + 1 == names.index("test_augment") == names.index("add_channel") - 1
    inference = augmented(waveform, training=False).numpy()
    assert inference.shape == (5, 3)
    np.testing.assert_allclose(inference, plain(waveform, training=False).numpy(), atol=1e-6)
    assert np.abs(augmented(waveform, training=True).numpy() - inference).max() > 1e-3
    # every training-only slot: a call without `training` (as a user's own model(x) is) is inference
    slots = ("feature_rescale", "feature_augment", "spec_augment")
    full = build_model(config, **{slot: keras.layers.GaussianNoise(1.0, name=f"test_{slot}") for slot in slots})
    quiet = full(waveform, training=False).numpy()
    np.testing.assert_allclose(full(waveform).numpy(), quiet, atol=1e-6)
    np.testing.assert_allclose(full.predict(waveform, verbose=0), quiet, atol=1e-6)
    assert np.abs(full(waveform, training=True).numpy() - quiet).max() > 1e-3


def test_feature_statistics_initialise_the_normalisation(rng):
    config = make_config()
    waveform = noise(config, 4, rng)
    mean, variance = compute_feature_stats(config, [waveform])
    model = build_model(config, feature_mean=mean, feature_variance=variance)
    normalised = keras.Model(model.input, model.get_layer("normalize").output)(waveform).numpy()
    pooled = normalised.reshape(-1, config.features.num_mel_bins)
    np.testing.assert_allclose(pooled.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(pooled.std(axis=0), 1.0, atol=1e-2)
    with pytest.raises(ConfigError, match="feature_mean must be 32"):
        build_model(config, feature_mean=mean[:-1], feature_variance=variance)
    with pytest.raises(ConfigError, match="feature_variance must be >= 0"):
        build_model(config, feature_mean=mean, feature_variance=-variance)
    # 32 values in another layout were flattened into 32 "bins" (per-frame means of 2 x 16, say)
    with pytest.raises(ConfigError, match=r"feature_mean must be 32 finite values, one per mel bin .*shape \(2, 16\)"):
        build_model(config, feature_mean=mean.reshape(2, 16), feature_variance=variance)
    same = build_model(config, feature_mean=mean[np.newaxis], feature_variance=variance.reshape(1, 1, -1))
    np.testing.assert_allclose(keras.Model(same.input, same.get_layer("normalize").output)(waveform).numpy(),
                               normalised, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("labels", [0, 1])
def test_fewer_than_two_labels_is_a_config_error(labels):
    with pytest.raises(ConfigError, match=f"at least 2 labels, got {labels}"):
        build_model(make_config(labels=labels))


def test_a_config_that_is_not_a_config_is_named(tmp_path):
    """A dict (a config.json read with json.load) failed with "'dict' object has no attribute 'labels'"."""
    from sound_tf.datasets import prepare_dataset

    config = make_config()
    with pytest.raises(ConfigError, match="build_model expects a sound_tf Config .*got dict"):
        build_model(config.to_dict())
    with pytest.raises(ConfigError, match="prepare_dataset expects a sound_tf Config .*got dict"):
        prepare_dataset(config.to_dict(), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["default", "seed_cnn"])
def test_keras_file_round_trip_gives_identical_outputs(name, tmp_path, rng):
    config = make_config(model=name, mels=16)
    waveform = noise(config, 3, rng)
    mean, variance = compute_feature_stats(config, [waveform])
    model = build_model(config, feature_mean=mean, feature_variance=variance)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(waveform, verbose=0), model.predict(waveform, verbose=0))


def test_for_tflite_copy_keeps_weights_names_and_outputs(rng):
    config = make_config(mels=16, clip_seconds=0.3)
    waveform = noise(config, 3, rng)
    mean, variance = compute_feature_stats(config, [waveform])
    model = build_model(config, feature_mean=mean, feature_variance=variance)
    copy = for_tflite(model)
    assert model.get_layer(LOG_MEL_LAYER_NAME).dft == "fft" and copy.get_layer(LOG_MEL_LAYER_NAME).dft == "matmul"
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    for ours, theirs in zip(copy.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    expected = model.predict(waveform, verbose=0)
    np.testing.assert_allclose(copy.predict(waveform, verbose=0), expected, atol=1e-5 * np.abs(expected).max())


def _run(model_content: bytes, waveform: np.ndarray):
    """Logits of ``waveform [clips, samples]`` by the model's signature (LiteRT), and its interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_content, num_threads=1)
    outputs = interpreter.get_signature_runner()(waveform=waveform)
    return outputs[LOGITS], interpreter


def _builtin_only(interpreter) -> None:
    ops = {detail["op_name"] for detail in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops), ops


def _assert_float_frontend_int8_body(interpreter) -> None:
    tensors = interpreter.get_tensor_details()
    output_types: dict[str, set] = {}
    for op in interpreter._get_ops_details():
        output_types.setdefault(op["op_name"], set()).update(tensors[i]["dtype"] for i in op["outputs"])
    assert output_types["LOG"] == {np.float32}, output_types  # the log-mel frontend
    assert output_types["CONV_2D"] == {np.int8}, output_types


@pytest.mark.parametrize("name", ["default", "seed_cnn"])
def test_tflite_float32_and_int8_use_builtin_ops(name, rng, tmp_path):
    config = make_config(model=name, mels=16, clip_seconds=0.3)
    waveform = noise(config, 3, rng)
    mean, variance = compute_feature_stats(config, [waveform])
    model = build_model(config, feature_mean=mean, feature_variance=variance)
    expected = model.predict(waveform, verbose=0)  # [3, classes]

    source = tflite_source(model, config, tmp_path / "tflite_source")  # the product's conversions
    logits, interpreter = _run(convert_waveform_model(source, "float32"), waveform)
    _builtin_only(interpreter)
    np.testing.assert_allclose(logits, expected, atol=1e-4 * np.abs(expected).max())

    logits, interpreter = _run(convert_waveform_model(source, "int8", representative=noise(config, 4, rng)),
                               waveform)  # int8 with the log_mel frontend kept float32
    _builtin_only(interpreter)
    _assert_float_frontend_int8_body(interpreter)
    assert logits.shape == expected.shape and np.all(np.isfinite(logits))


def test_default_model_learns_four_pitches_and_survives_int8(rng, tmp_path):
    """Sines at four pitches (+-5%, random level, phase and noise): held-out accuracy after 10 epochs,
    in Keras and in the int8 TFLite model (float frontend), which must agree with Keras."""
    config = make_config(mels=32)
    t = np.arange(config.audio.clip_samples) / config.audio.sample_rate_hz

    def clips(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        waveforms, labels = [], []
        for label, pitch_hz in enumerate((300.0, 600.0, 1200.0, 2400.0)):
            for _ in range(per_class):
                tone = np.sin(2 * np.pi * pitch_hz * rng.uniform(0.95, 1.05) * t + rng.uniform(0, 2 * np.pi))
                hiss = rng.uniform(0.01, 0.1) * rng.standard_normal(t.size)
                waveforms.append(rng.uniform(0.05, 0.5) * tone + hiss)
                labels.append(label)
        return np.asarray(waveforms, np.float32), np.asarray(labels)

    train_x, train_y = clips(24)
    test_x, test_y = clips(10)
    keras.utils.set_random_seed(0)
    mean, variance = compute_feature_stats(config, [train_x])
    model = build_model(config, feature_mean=mean, feature_variance=variance)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(train_x, train_y, epochs=10, batch_size=16, verbose=0)
    expected = model.predict(test_x, verbose=0)  # [clips, classes]
    accuracy = float(np.mean(np.argmax(expected, axis=1) == test_y))
    assert accuracy >= 0.9, accuracy

    int8_model = convert_waveform_model(tflite_source(model, config, tmp_path / "tflite_source"), "int8",
                                        representative=train_x[::4])
    logits, interpreter = _run(int8_model, test_x)
    _assert_float_frontend_int8_body(interpreter)
    int8_accuracy = float(np.mean(np.argmax(logits, axis=1) == test_y))
    agreement = float(np.mean(np.argmax(logits, axis=1) == np.argmax(expected, axis=1)))
    spread = expected.max(axis=1) - expected.min(axis=1)
    assert int8_accuracy >= 0.9 and agreement >= 0.95, (int8_accuracy, agreement)
    assert np.median(np.abs(logits - expected).max(axis=1) / spread) < 0.05


def test_the_configured_dropout_rate_drops_that_share_in_training_only():
    model = build_model(make_config(**{"model.dropout": 0.35}))
    dropout = model.get_layer("dropout")
    ones = np.ones((256, 256), np.float32)
    np.testing.assert_array_equal(dropout(ones, training=False).numpy(), ones)
    dropped = dropout(ones, training=True).numpy()
    assert np.mean(dropped == 0) == pytest.approx(0.35, abs=0.01)
    np.testing.assert_allclose(dropped[dropped != 0], 1 / 0.65, rtol=1e-6)


def test_pooling_is_the_mean_and_the_peak_of_the_last_block(rng):
    config = make_config(**{"model.widths": [8, 16]})
    model = build_model(config)
    waves = noise(config, 3, rng)
    last = keras.Model(model.input, [model.get_layer("block1_separable_pool").output,
                                     model.get_layer("pooled").output])(waves)
    feature_map, pooled = (t.numpy() for t in last)
    np.testing.assert_allclose(pooled, np.concatenate([feature_map.mean(axis=(1, 2)), feature_map.max(axis=(1, 2))],
                                                      axis=1), rtol=1e-5, atol=1e-6)


def test_blocks_pool_every_axis_of_two_or_more(rng):
    config = make_config(mels=8, **{"model.widths": [8, 16, 16, 16]})
    frames, bins = config.feature_shape
    t, f = -(-frames // 4), -(-bins // 4)  # the 4 x 4 stride-4 stem ('same' padding)
    model = build_model(config)
    for block in (1, 2, 3):
        t, f = (t // 2 if t >= 2 else t), (f // 2 if f >= 2 else f)
        name = f"block{block}_separable_pool"
        shape = model.get_layer(name).output.shape if name in [l.name for l in model.layers] else \
            model.get_layer(f"block{block}_separable_relu").output.shape
        assert tuple(shape[1:3]) == (t, f), (block, shape)
    assert f == 1 and bins == 8


def test_batch_norm_statistics_move_a_tenth_of_the_way_each_step(rng):
    config = make_config(**{"model.widths": [8, 16]})
    model = build_model(config)
    model.compile(keras.optimizers.SGD(0.0), keras.losses.CategoricalCrossentropy(from_logits=True))
    waves = noise(config, 8, rng)
    conv_out = keras.Model(model.input, model.get_layer("block0_conv").output)(waves).numpy()
    batch_mean = conv_out.mean(axis=(0, 1, 2))
    model.train_on_batch(waves, np.eye(config.num_classes)[np.arange(8) % config.num_classes])
    moving = model.get_layer("block0_conv_bn").moving_mean.numpy()
    np.testing.assert_allclose(moving, 0.1 * batch_mean, rtol=1e-3, atol=1e-6)


def test_block_layers_have_the_parameters_of_their_widths():
    """A 4 x 4 stem of 8 filters and a 3 x 3 separable block of 16 on one input channel, each followed by batch
    norm: the convolutions carry no bias (the batch norm's beta is the shift), 128 and 9 * 8 + 8 * 16 weights."""
    model = build_model(make_config(labels=4, **{"model.widths": [8, 16]}))
    assert model.get_layer("block0_conv").count_params() == 4 * 4 * 1 * 8
    assert model.get_layer("block1_separable").count_params() == 3 * 3 * 8 + 8 * 16
    assert model.get_layer("block0_conv_bn").count_params() == 4 * 8  # gamma, beta, moving mean and variance
    assert model.get_layer("block1_separable_bn").count_params() == 4 * 16
    assert model.get_layer("logits").count_params() == (2 * 16 + 1) * 4
    assert model.count_params() == 128 + 200 + 32 + 64 + 132


def test_the_seed_cnns_convolutions_and_dense_layer_are_rectified(rng):
    """The article's SimpleAudioCNN: ReLU after each convolution (it has no batch norm) and after Dense(512)."""
    config = make_config(model="seed_cnn", mels=16)
    model = build_model(config)
    names = ("seed0_conv", "seed2_conv", "seed5_dense")
    outputs = keras.Model(model.input, [model.get_layer(name).output for name in names])(noise(config, 4, rng))
    for name, output in zip(names, outputs):
        output = output.numpy()
        assert output.min() == 0.0 and output.max() > 0.0, name
        assert 0.05 < np.mean(output == 0) < 0.95, name  # some units off, not all


def test_without_statistics_the_normalisation_is_the_identity(rng):
    config = make_config()
    model = build_model(config)
    waves = noise(config, 3, rng)
    features, normalised = keras.Model(model.input, [model.get_layer(LOG_MEL_LAYER_NAME).output,
                                                     model.get_layer("normalize").output])(waves)
    np.testing.assert_allclose(normalised.numpy(), features.numpy(), rtol=1e-6, atol=1e-6)


def test_feature_rescale_comes_before_feature_augment_on_the_raw_features():
    config = make_config()
    model = build_model(config, feature_rescale=keras.layers.Identity(name="test_rescale"),
                        feature_augment=keras.layers.Identity(name="test_augment"))
    names = [layer.name for layer in model.layers]
    assert names[names.index(LOG_MEL_LAYER_NAME):names.index("normalize") + 1] == [
        LOG_MEL_LAYER_NAME, "test_rescale", "test_augment", "normalize"]


def test_separable_macs_count_the_depthwise_and_the_pointwise_products():
    config = make_config(**{"model.widths": [8, 16]})
    model = build_model(config)
    frames, bins = config.feature_shape
    t, f = -(-frames // 4), -(-bins // 4)  # after the 4 x 4 stride-4 stem ('same' padding)
    macs = macs_by_layer(model)
    assert macs["block0_conv"] == t * f * 8 * 16  # 16 taps of one channel per filter
    assert macs["block1_separable"] == t * f * (8 * 9 + 8 * 16)  # 3 x 3 per channel, then 8 -> 16
