"""Model architectures, described as tables of blocks, and :func:`build_model`.

Every model takes a raw waveform and computes its own features, so the same graph is trained, saved,
converted to TFLite and served::

    waveform [batch, clip_samples]
      -> LogMel                       [batch, frames, mel_bins]
      -> FeatureRescale (optional; speed / stretch / pitch, only when training)
      -> FeatureAugment (optional; mixup / shift / gain / noise, only when training)
      -> Normalization (per mel bin)  [batch, frames, mel_bins]
      -> spec_augment layers (optional; they act only when training)
      -> Reshape                      [batch, frames, mel_bins, 1]
      -> body (``seed_cnn`` or ``default``)
      -> Dense(num_classes)           [batch, num_classes] logits (no softmax)

``seed_cnn`` is the original article's SimpleAudioCNN, kept as the baseline to beat. ``default`` is a
compact CNN for environmental sound (1-10 s clips, 10-50 classes, a few hundred clips per class): a
4 x 4 patch convolution stem, then depthwise-separable blocks (batch norm, ReLU, 2x2 max pooling), mean +
max global pooling, dropout and the classifier. For a 5-s 22.05 kHz clip and 50 classes (the esc50
recipe) it has 43 k parameters and 5.3 M multiply-accumulates (the log-mel frontend adds 11.4 M); as
int8 TFLite with a float32 frontend the file is 215 KB and runs such a clip in about 0.7 ms on one CPU
thread (Keras ``predict``: about 40 ms). The README's "Deployment" table has the measured numbers
(``bench/latency.py``); wider ``model.widths`` buy accuracy for latency.

Weight initialisation follows Keras' global seed: call ``keras.utils.set_random_seed`` first.

Examples
--------
>>> from sound_tf.config import Config
>>> model = build_model(Config(labels=("dog", "rain", "siren")))
>>> model.output_shape
(None, 3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from .augment import ResumableDraws, mix_labels
from .config import Config
from .errors import ConfigError
from .frontend import LOG_MEL_LAYER_NAME, LogMel

__all__ = ["LOG_MEL_LAYER_NAME", "Block", "ResumableDropout", "SEED_CNN_BLOCKS", "SoundClassifier",
           "apply_blocks", "build_model", "count_macs",
           "default_blocks", "macs_by_layer", "seed_cnn_flat_size"]

# Every built model names its LogMel layer LOG_MEL_LAYER_NAME ("log_mel"). Its TFLite ops (their tensor
# names contain "/log_mel") must stay float32 in an int8 model: the power spectrum spans more than 100 dB,
# which 8-bit activations cannot hold (quantised, the features are off by 3-5 nats). Pass those tensor
# names, read from the float32 TFLite model, as `denylisted_nodes` of
# tf.lite.experimental.QuantizationDebugOptions and convert with
# tf.lite.experimental.QuantizationDebugger(...).get_nondebug_quantized_model() (tests/test_models.py).
NORMALIZATION_LAYER_NAME = "normalize"
LOGITS_LAYER_NAME = "logits"


@dataclass(frozen=True)
class Block:
    """One row of an architecture table.

    Attributes
    ----------
    kind : str
        ``conv`` (Conv2D), ``separable`` (SeparableConv2D), ``pool`` (MaxPooling2D), ``flatten``,
        ``dense`` or ``dropout``.
    size : float
        Filters (conv, separable), units (dense), pool size (pool) or rate (dropout); unused by flatten.
    kernel : int
        Convolution kernel size along time and frequency.
    strides : int
        Convolution stride along time and frequency.
    batch_norm : bool
        Convolutions: batch norm before the ReLU (the convolution then has no bias).
    pool : int
        Convolutions: max pooling after the ReLU (1 = none). Along an axis already shorter than the
        pool, that axis is not pooled, so a short test clip still builds.
    """

    kind: str
    size: float = 0
    kernel: int = 3
    strides: int = 1
    batch_norm: bool = False
    pool: int = 1


# The original article's SimpleAudioCNN (PyTorch padding=1 convolutions, 2x2 max pooling).
SEED_CNN_BLOCKS: tuple[Block, ...] = (
    Block("conv", 32),
    Block("pool", 2),
    Block("conv", 64),
    Block("pool", 2),
    Block("flatten"),
    Block("dense", 512),
    Block("dropout", 0.5),
)

STEM_PATCH = 4
BATCH_NORM_MOMENTUM = 0.9
"""Moving-statistics momentum (Keras' default 0.99 needs thousands of steps to settle; a few hundred
clips per class give a few hundred steps per run, after which 0.99 would still evaluate badly)."""


def default_blocks(config: Config) -> tuple[Block, ...]:
    """The default CNN's table: a 4 x 4 patch stem, then one separable block per further width.

    With ``model.widths = (32, 64, 128, 128)`` and 499 x 64 features: conv 32, 4 x 4 stride 4
    (125 x 16) -> sep 64 + pool 2 (62 x 8) -> sep 128 + pool 2 (31 x 4) -> sep 128 + pool 2 (15 x 2).
    The non-overlapping stem cuts the resolution 16-fold at once; int8 TFLite runs it 2-3x faster
    than a 3 x 3 stride-2 convolution plus pooling (a convolution with one input channel is slow in
    int8). A longer ``widths`` adds blocks (pooling stops when an axis reaches size 1).
    """
    widths = config.model.widths
    stem = Block("conv", widths[0], kernel=STEM_PATCH, strides=STEM_PATCH, batch_norm=True)
    return (stem,) + tuple(Block("separable", width, batch_norm=True, pool=2) for width in widths[1:])


def seed_cnn_flat_size(feature_shape: tuple[int, int]) -> int:
    """Length of the seed CNN's flattened feature map for features ``(frames, mel_bins)``.

    Its first Dense(512) layer has ``flat_size * 512 + 512`` parameters: 56.6 M for 216 x 128.
    """
    spatial = [int(d) for d in feature_shape]
    channels = 1
    for block in SEED_CNN_BLOCKS:
        if block.kind == "conv":  # 'same' padding keeps the size
            channels = int(block.size)
        elif block.kind == "pool":
            spatial = [d // p for d, p in zip(spatial, _pool_sizes(spatial, int(block.size)))]
        elif block.kind == "flatten":
            break
    return math.prod(spatial) * channels


def _pool_sizes(spatial: Sequence[int], pool: int) -> tuple[int, int]:
    """Per-axis pool sizes: ``pool`` where the axis is long enough, 1 elsewhere."""
    return tuple(pool if d >= pool else 1 for d in spatial)  # type: ignore[return-value]


def apply_blocks(x: keras.KerasTensor, blocks: Sequence[Block], *, prefix: str) -> keras.KerasTensor:
    """Append the layers of an architecture table to ``x`` (``[batch, frames, mel_bins, channels]``)."""
    for index, block in enumerate(blocks):
        name = f"{prefix}{index}_{block.kind}"
        if block.kind in ("conv", "separable"):
            layer_cls = keras.layers.Conv2D if block.kind == "conv" else keras.layers.SeparableConv2D
            x = layer_cls(int(block.size), block.kernel, strides=block.strides, padding="same",
                          use_bias=not block.batch_norm,
                          activation=None if block.batch_norm else "relu", name=name)(x)
            if block.batch_norm:
                x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn")(x)
                x = keras.layers.ReLU(name=f"{name}_relu")(x)
            if block.pool > 1:
                sizes = _pool_sizes(x.shape[1:3], block.pool)
                if sizes != (1, 1):
                    x = keras.layers.MaxPooling2D(sizes, name=f"{name}_pool")(x)
        elif block.kind == "pool":
            x = keras.layers.MaxPooling2D(_pool_sizes(x.shape[1:3], int(block.size)), name=name)(x)
        elif block.kind == "flatten":
            x = keras.layers.Flatten(name=name)(x)
        elif block.kind == "dense":
            x = keras.layers.Dense(int(block.size), activation="relu", name=name)(x)
        elif block.kind == "dropout":
            x = ResumableDropout(float(block.size), name=name)(x)
        else:
            raise ConfigError(f"unknown block kind {block.kind!r} in {blocks!r}")
    return x  # [batch, ...]


def _seed_cnn_body(x: keras.KerasTensor, config: Config) -> keras.KerasTensor:
    return apply_blocks(x, SEED_CNN_BLOCKS, prefix="seed")  # [batch, 512]


def _default_body(x: keras.KerasTensor, config: Config) -> keras.KerasTensor:
    x = apply_blocks(x, default_blocks(config), prefix="block")  # [batch, t, f, widths[-1]]
    mean = keras.layers.GlobalAveragePooling2D(name="mean_pool")(x)  # [batch, widths[-1]]
    peak = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)  # [batch, widths[-1]]
    x = keras.layers.Concatenate(name="pooled")([mean, peak])  # [batch, 2 * widths[-1]]
    return ResumableDropout(float(config.model.dropout), name="dropout")(x)


@keras.saving.register_keras_serializable(package="sound_tf")
class ResumableDropout(ResumableDraws, keras.layers.Dropout):
    """``keras.layers.Dropout`` whose mask draws go on where they were after a run resumes from its backup.

    Keras saves no ``SeedGenerator`` state, so a resumed run's dropout masks would start again from the
    first step's; with the draw state saved (:class:`sound_tf.augment.ResumableDraws`), a run killed and
    resumed trains exactly as an uninterrupted one (tested). The same layer otherwise, identity at inference.
    """


BODIES = {"seed_cnn": _seed_cnn_body, "default": _default_body}


def _feature_stats(config: Config, values: np.ndarray | None, name: str, fill: float) -> np.ndarray:
    mel_bins = config.features.num_mel_bins
    if values is None:
        return np.full(mel_bins, fill, np.float32)
    values = np.asarray(values, dtype=np.float32)
    # Axes of 1 aside ([1, mel_bins] is fine), only the mel axis: a [2, 32] array was flattened into 64 "bins".
    if [d for d in values.shape if d != 1] != [mel_bins] or not np.all(np.isfinite(values)):
        raise ConfigError(f"{name} must be {mel_bins} finite values, one per mel bin (features.num_mel_bins), got "
                          f"shape {values.shape}" + ("" if np.all(np.isfinite(values)) else " holding NaN or inf"))
    values = values.reshape(-1)  # [mel_bins]
    if name == "feature_variance" and np.any(values < 0):
        raise ConfigError(f"feature_variance must be >= 0, got min {values.min()}")
    return values


@keras.saving.register_keras_serializable(package="sound_tf")
class SoundClassifier(keras.Model):
    """The functional model :func:`build_model` returns, with a training step that can mix batches.

    When one of its layers mixes batches (``mixes`` is true: :class:`sound_tf.augment.FeatureAugment`
    with ``augment.mixup_domain = "features"``), each training step draws that layer's mixing weights
    and partners, mixes the batch's soft labels (and sample weights) with them, and runs Keras' own
    training step while the layer mixes the features alike. Everything else, inference and export
    included, is Keras' functional model.
    """

    def _batch_mixer(self) -> keras.layers.Layer | None:
        return next((layer for layer in self.layers if getattr(layer, "mixes", False)), None)

    def train_step(self, data: Any) -> Any:
        mixer = self._batch_mixer()
        if mixer is None:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        params = mixer.draw_mixup(tf.shape(y)[0])  # weight, partner [batch]
        y, sample_weight = mix_labels(y, sample_weight, params)
        with mixer.mixing(params):
            return super().train_step(keras.utils.pack_x_y_sample_weight(x, y, sample_weight))


def build_model(config: Config, *, feature_mean: np.ndarray | None = None,
                feature_variance: np.ndarray | None = None,
                spec_augment: keras.layers.Layer | Sequence[keras.layers.Layer] | None = None,
                feature_rescale: keras.layers.Layer | None = None,
                feature_augment: keras.layers.Layer | None = None) -> keras.Model:
    """Build ``config.model.name`` for ``config.labels``, from waveform to logits.

    Parameters
    ----------
    config : Config
        Reads ``audio``, ``features`` (frontend), ``model`` (architecture) and ``labels`` (classes).
    feature_mean, feature_variance : numpy.ndarray, optional
        ``[num_mel_bins]`` statistics from :func:`sound_tf.frontend.compute_feature_stats`; without them
        the normalisation is the identity (mean 0, variance 1).
    spec_augment : keras.layers.Layer or sequence of layers, optional
        Inserted after the normalisation, on ``[batch, frames, mel_bins]``; such layers must act only
        when ``training=True``.
    feature_rescale : keras.layers.Layer, optional
        Inserted between the frontend and the normalisation, on the raw log-mel features
        (:class:`sound_tf.augment.FeatureRescale`: speed / stretch / pitch); training only as well.
    feature_augment : keras.layers.Layer, optional
        Inserted after ``feature_rescale``, on the raw log-mel features
        (:class:`sound_tf.augment.FeatureAugment`: mixup, shift, gain, noise); training only as well.

    Returns
    -------
    SoundClassifier
        Input ``"waveform"`` ``[batch, clip_samples]`` float32, output ``[batch, num_classes]`` logits.

    Raises
    ------
    ConfigError
        Fewer than two labels, an unknown architecture or statistics of the wrong shape.
    """
    if not isinstance(config, Config):  # else "'dict' object has no attribute 'labels'"
        raise ConfigError(f"build_model expects a sound_tf Config (e.g. Config.load(run_dir)), "
                          f"got {type(config).__name__}")
    if len(config.labels) < 2:
        raise ConfigError(f"a classifier needs at least 2 labels, got {len(config.labels)}: {config.labels!r}")
    if config.model.name not in BODIES:
        raise ConfigError(f"model.name must be one of {sorted(BODIES)}, got {config.model.name!r}")
    mean = _feature_stats(config, feature_mean, "feature_mean", 0.0)
    variance = _feature_stats(config, feature_variance, "feature_variance", 1.0)
    if spec_augment is None:
        augment_layers: Sequence[keras.layers.Layer] = ()
    elif isinstance(spec_augment, keras.layers.Layer) or callable(spec_augment):
        augment_layers = (spec_augment,)
    else:
        augment_layers = tuple(spec_augment)

    waveform = keras.Input(shape=(config.audio.clip_samples,), dtype="float32", name="waveform")
    x = LogMel.from_config_object(config, name=LOG_MEL_LAYER_NAME)(waveform)  # [batch, frames, mel_bins]
    if feature_rescale is not None:
        x = feature_rescale(x)  # [batch, frames, mel_bins]
    if feature_augment is not None:
        x = feature_augment(x)  # [batch, frames, mel_bins]
    x = keras.layers.Normalization(axis=-1, mean=mean, variance=variance,
                                   name=NORMALIZATION_LAYER_NAME)(x)  # [batch, frames, mel_bins]
    for layer in augment_layers:
        x = layer(x)  # [batch, frames, mel_bins]
    x = keras.layers.Reshape((*config.feature_shape, 1), name="add_channel")(x)  # [batch, frames, mel_bins, 1]
    x = BODIES[config.model.name](x, config)  # [batch, features]
    logits = keras.layers.Dense(config.num_classes, dtype="float32", name=LOGITS_LAYER_NAME)(x)  # [batch, classes]
    return SoundClassifier(waveform, logits, name=f"sound_tf_{config.model.name}")


def macs_by_layer(model: keras.Model) -> dict[str, int]:
    """Multiply-accumulates per example of each layer that does real arithmetic.

    Counts convolutions, dense layers and the log-mel frontend (its DFT and mel matrix products, see
    :meth:`sound_tf.frontend.LogMel.macs`); element-wise ops, batch norm (folded at export) and
    pooling are left out.
    """
    counts: dict[str, int] = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            counts.update({f"{layer.name}/{k}": v for k, v in macs_by_layer(layer).items()})
            continue
        macs = 0
        if isinstance(layer, LogMel):
            macs = layer.macs(layer.input.shape[-1])
        elif isinstance(layer, (keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D, keras.layers.Conv2D)):
            in_channels = layer.input.shape[-1]
            positions = math.prod(layer.output.shape[1:-1])
            kernel = math.prod(layer.kernel_size)
            if isinstance(layer, keras.layers.SeparableConv2D):
                depth = in_channels * layer.depth_multiplier
                macs = positions * (depth * kernel + depth * layer.filters)
            elif isinstance(layer, keras.layers.DepthwiseConv2D):
                macs = positions * in_channels * layer.depth_multiplier * kernel
            else:
                macs = positions * layer.filters * kernel * in_channels // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            macs = math.prod(layer.output.shape[1:-1]) * layer.input.shape[-1] * layer.units
        if macs:
            counts[layer.name] = int(macs)
    return counts


def count_macs(model: keras.Model) -> int:
    """Total multiply-accumulates per example (see :func:`macs_by_layer`)."""
    return sum(macs_by_layer(model).values())
