"""The log-mel frontend: the one place features are computed, inside the Keras model.

:class:`LogMel` turns a float32 waveform batch into log-mel features with plain TensorFlow ops, so the
same layer runs in training, in the SavedModel, in TFLite (builtin ops only, no Flex) and behind the
server: the short-time power spectrum (periodic Hann window, ``pad_end=False``), projected on a
Slaney mel filterbank (Slaney mel scale and area normalisation, built here in NumPy), then
``log(mel_power + log_offset)``. The features match
``librosa.feature.melspectrogram(center=False, htk=False, norm="slaney", power=2)`` followed by the
same log (tests/test_frontend.py states the tolerance); librosa is only the tests' reference.

The power spectrum has two exact implementations, chosen per runtime by the ``dft`` argument:
``tf.signal.stft`` (``"fft"``, fastest in TensorFlow, the default) and :class:`FourStepDFT` matrix
products (``"matmul"``, 3-4x faster in TFLite, where the RFFT2D kernel alone takes about 6 ms for a
5-s 22.05 kHz clip on one thread). :func:`for_tflite` switches a trained model before conversion.

Frames start at ``t * hop_length_samples`` and hold ``frame_length_samples`` samples, windowed by a
periodic Hann window and zero-padded at the end to ``fft_length``. (librosa centres a window shorter
than ``n_fft`` inside the FFT frame instead; the power spectrum of a frame is the same, so librosa on the
waveform padded with ``(fft_length - frame_length) // 2`` zeros in front agrees frame by frame.)

In an int8 TFLite model the frontend must stay float32: a power spectrum spans more than 100 dB,
which 8-bit activations cannot hold (see ``models.LOG_MEL_LAYER_NAME``).

Examples
--------
>>> from sound_tf.config import Config
>>> config = Config()
>>> layer = LogMel.from_config_object(config)
>>> features = layer(np.zeros((2, config.audio.clip_samples), np.float32))
>>> tuple(features.shape) == (2, *config.feature_shape)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import keras
import numpy as np
import tensorflow as tf

from .audio import integer_pcm_hint
from .config import SLANEY_BREAK_HZ, SLANEY_HZ_PER_MEL, SLANEY_LOG_STEP, Config, slaney_mel_edges_hz
from .errors import ConfigError, DatasetError, counted, is_whole

def hz_to_slaney_mel_tf(frequency_hz: tf.Tensor) -> tf.Tensor:
    """:func:`sound_tf.config.hz_to_slaney_mel` as TensorFlow ops (float32), for frequencies known only in the graph."""
    linear = frequency_hz / SLANEY_HZ_PER_MEL
    above = (SLANEY_BREAK_HZ / SLANEY_HZ_PER_MEL
             + tf.math.log(tf.maximum(frequency_hz, SLANEY_BREAK_HZ) / SLANEY_BREAK_HZ) / SLANEY_LOG_STEP)
    return tf.where(frequency_hz >= SLANEY_BREAK_HZ, above, linear)


def slaney_mel_matrix(*, sample_rate_hz: float, fft_length: int, num_mel_bins: int, fmin_hz: float,
                      fmax_hz: float) -> np.ndarray:
    """Triangular Slaney-normalised mel filterbank, ``[fft_length // 2 + 1, num_mel_bins]`` float64.

    Band ``m`` rises linearly (in Hz) from edge ``m`` to edge ``m + 1`` and falls to edge ``m + 2``,
    where the ``num_mel_bins + 2`` edges are equally spaced on the Slaney mel scale between
    ``fmin_hz`` and ``fmax_hz``; each triangle is scaled by ``2 / (upper_hz - lower_hz)`` so every
    band has the same area. This is the transpose of
    ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney")``.

    Parameters
    ----------
    sample_rate_hz : float
    fft_length : int
    num_mel_bins : int
    fmin_hz, fmax_hz : float
        Lower and upper edges of the filterbank; ``0 <= fmin_hz < fmax_hz <= sample_rate_hz / 2``.

    Returns
    -------
    numpy.ndarray
        ``[fft_bins, num_mel_bins]``: multiply a power spectrum ``[..., fft_bins]`` by it.
    """
    _check_filterbank_args(sample_rate_hz, fft_length, num_mel_bins, fmin_hz, fmax_hz)
    fft_hz = np.linspace(0.0, sample_rate_hz / 2.0, fft_length // 2 + 1)  # [fft_bins]
    edges_hz = slaney_mel_edges_hz(num_mel_bins=num_mel_bins, fmin_hz=fmin_hz, fmax_hz=fmax_hz)  # [mel_bins + 2]
    lower_hz, centre_hz, upper_hz = edges_hz[:-2], edges_hz[1:-1], edges_hz[2:]  # [mel_bins] each
    rising = (fft_hz[:, None] - lower_hz) / (centre_hz - lower_hz)  # [fft_bins, mel_bins]
    falling = (upper_hz - fft_hz[:, None]) / (upper_hz - centre_hz)
    triangles = np.clip(np.minimum(rising, falling), 0.0, None)
    return triangles * (2.0 / (upper_hz - lower_hz))


def frames_from_chunks(waveform: tf.Tensor, hop: int | tf.Tensor, chunks_per_frame: int,
                       num_frames: int | tf.Tensor) -> tf.Tensor:
    """Frames every ``hop`` samples, no gather: ``[batch, samples] -> [batch, num_frames, chunks_per_frame * hop]``.

    The waveform (at least ``(num_frames + chunks_per_frame - 1) * hop`` samples) is split into hop-long
    chunks and frame ``t`` is chunks ``t .. t + chunks_per_frame - 1`` side by side. ``tf.signal.frame``
    gathers every sample when the hop does not divide the frame or is known only when the graph runs
    (4x slower in TFLite, about 2x in TensorFlow here).
    """
    num_chunks = num_frames + chunks_per_frame - 1
    chunks = tf.reshape(waveform[:, :num_chunks * hop], [-1, num_chunks, hop])  # [batch, chunks, hop]
    return tf.concat([chunks[:, i:i + num_frames] for i in range(chunks_per_frame)], axis=-1)


def periodic_hann_window(length: int) -> np.ndarray:
    """Periodic Hann window ``0.5 - 0.5 cos(2 pi n / length)``, float64 ``[length]``.

    ``tf.signal.hann_window(periodic=True)`` is symmetric for odd lengths (e.g. 551 samples = 25 ms at
    22.05 kHz); this one is periodic for every length, like ``scipy.signal.get_window("hann", length)``
    and librosa.
    """
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def _check_filterbank_args(sample_rate_hz: float, fft_length: int, num_mel_bins: int, fmin_hz: float,
                           fmax_hz: float) -> None:
    if not float(sample_rate_hz) > 0:
        raise ConfigError(f"sample_rate_hz must be > 0, got {sample_rate_hz!r}")
    if not (is_whole(fft_length) and fft_length >= 2):
        raise ConfigError(f"fft_length must be an integer >= 2, got {fft_length!r}")
    if not (is_whole(num_mel_bins) and num_mel_bins >= 1):
        raise ConfigError(f"num_mel_bins must be an integer >= 1, got {num_mel_bins!r}")
    if not 0.0 <= float(fmin_hz) < float(fmax_hz) <= float(sample_rate_hz) / 2.0:
        raise ConfigError(f"need 0 <= fmin_hz < fmax_hz <= sample_rate_hz / 2 = {sample_rate_hz / 2}, "
                          f"got fmin_hz={fmin_hz!r}, fmax_hz={fmax_hz!r}")


@dataclass(frozen=True)
class FourStepDFT:
    """Constants of the power spectrum as three small matrix products (a "four-step" FFT).

    TFLite's RFFT2D kernel needs about 6 ms for the 499 frames of a 5-s clip at 22.05 kHz on one
    thread, the whole latency budget, so ``LogMel(dft="matmul")`` computes the same DFT with matrix
    products (XNNPACK runs them): split ``fft_length = n1 * n2`` and write a frame's sample
    ``n = n2 * a + b`` and a frequency bin ``k = ka + n1 * kb``. Then::

        X[k] = sum_b exp(-2 pi i b (ka / fft_length + kb / n2)) * Y[ka, b],
        Y[ka, b] = sum_a x[n2 * a + b] exp(-2 pi i a ka / n1)

    ``step1`` computes ``Y`` for ``ka = 0 .. n1 / 2`` (a real frame's other bins are mirror images),
    ``step2`` applies the twiddle factors and the DFT over ``b`` for each ``ka``, and ``bin_of_term``
    maps each ``|X[ka + n1 * kb]|^2`` to its bin in ``0 .. fft_length / 2`` (or -1 for a mirror already
    counted), so the mel projection ``mel_terms`` adds every bin's power exactly once. The constants
    take about 280 KB as float32 for a 1024-point FFT and 64 mel bins (the mel part alone is 135 KB).

    Attributes
    ----------
    n1, n2 : int
        ``n1 * n2 == fft_length``; chosen by :meth:`plan` to need the fewest multiply-accumulates.
    rows : int
        ``ceil(frame_length / n2)``: rows ``a`` of a frame that hold samples (the rest is zero padding).
    half : int
        ``n1 // 2 + 1`` inner frequencies ``ka`` computed.
    step1 : numpy.ndarray
        ``[2 * half, rows]`` float32: cosine rows, then minus-sine rows.
    step2 : numpy.ndarray
        ``[half, 2 * n2, 2 * n2]`` float32: maps ``(re, im)`` of ``Y[ka, :]`` to ``(re, im)`` of
        ``X[ka + n1 * kb]`` for every ``kb``.
    bin_of_term : numpy.ndarray
        ``[half, n2]`` int: FFT bin of ``|X[ka + n1 * kb]|^2``, -1 if that bin is counted elsewhere.
    """

    n1: int
    n2: int
    rows: int
    half: int
    step1: np.ndarray
    step2: np.ndarray
    bin_of_term: np.ndarray

    @staticmethod
    def macs_per_frame(*, frame_length_samples: int, n1: int, n2: int, num_mel_bins: int) -> int:
        """Multiply-accumulates per frame of the three products for a split ``n1 * n2``."""
        rows, half = -(-frame_length_samples // n2), n1 // 2 + 1
        return 2 * half * rows * n2 + half * (2 * n2) ** 2 + half * n2 * num_mel_bins

    @classmethod
    def plan(cls, *, frame_length_samples: int, fft_length: int, num_mel_bins: int) -> "FourStepDFT":
        """Choose the split with the fewest multiply-accumulates and build its constants."""
        splits = [(fft_length // n2, n2) for n2 in (1 << p for p in range(1, fft_length.bit_length() - 1))]
        n1, n2 = min(splits, key=lambda s: cls.macs_per_frame(
            frame_length_samples=frame_length_samples, n1=s[0], n2=s[1], num_mel_bins=num_mel_bins))
        rows, half = -(-frame_length_samples // n2), n1 // 2 + 1
        ka = np.arange(half)[:, None]  # [half, 1]
        angle1 = 2.0 * np.pi * ka * np.arange(rows)[None, :] / n1  # [half, rows]
        step1 = np.concatenate([np.cos(angle1), -np.sin(angle1)], axis=0)  # [2 * half, rows]
        b = np.arange(n2)[None, :, None]  # [1, n2 (b), 1]
        kb = np.arange(n2)[None, None, :]  # [1, 1, n2 (kb)]
        phase = -2.0 * np.pi * b * (ka[:, :, None] / fft_length + kb / n2)  # [half, n2 (b), n2 (kb)]
        cos, sin = np.cos(phase), np.sin(phase)
        step2 = np.concatenate([np.concatenate([cos, sin], axis=2),  # from re Y[ka, b]
                                np.concatenate([-sin, cos], axis=2)], axis=1)  # from im Y[ka, b]
        k = np.arange(half)[:, None] + n1 * np.arange(n2)[None, :]  # [half, n2]: bin of X[ka, kb]
        folded = np.where(k <= fft_length // 2, k, fft_length - k)  # |X[k]| = |X[fft_length - k]|
        _, first = np.unique(folded, return_index=True)  # first term holding each bin (flat index)
        owner = np.zeros(folded.size, bool)
        owner[first] = True
        bins = np.where(owner.reshape(folded.shape), folded, -1)  # [half, n2]
        return cls(n1=n1, n2=n2, rows=rows, half=half, step1=step1.astype(np.float32),
                   step2=step2.astype(np.float32), bin_of_term=bins)

    def mel_terms(self, mel_matrix: np.ndarray) -> np.ndarray:
        """``[fft_bins, mel_bins]`` -> ``[half * n2, mel_bins]`` weights of the power terms."""
        bins = self.bin_of_term.reshape(-1)  # [half * n2]
        weights = np.where((bins >= 0)[:, None], mel_matrix[np.maximum(bins, 0)], 0.0)
        return weights.astype(np.float32)


DFT_METHODS = ("fft", "matmul")
LOG_MEL_LAYER_NAME = "log_mel"


@keras.saving.register_keras_serializable(package="sound_tf")
class LogMel(keras.layers.Layer):
    """Waveform ``[batch, samples]`` -> log-mel ``[batch, frames, num_mel_bins]``, float32.

    ``frames = 1 + (samples - frame_length_samples) // hop_length_samples`` (no centre padding, no end
    padding). The layer always computes in float32, whatever the global dtype policy, and has no
    weights: the filterbank is a constant recomputed from the constructor arguments, which
    :meth:`get_config` saves, so ``model.keras`` files round-trip.

    Parameters
    ----------
    sample_rate_hz : int
    frame_length_samples : int
        STFT window length (periodic Hann).
    hop_length_samples : int
        Samples between frame starts.
    fft_length : int
        FFT size, a power of two ``>= frame_length_samples``; frames are zero-padded at the end.
    num_mel_bins : int
    fmin_hz, fmax_hz : float
        Filterbank edges, ``0 <= fmin_hz < fmax_hz <= sample_rate_hz / 2``.
    log_offset : float
        Added to the mel power before the natural log; keeps silence finite
        (silence gives ``log(log_offset)``).
    dft : {"fft", "matmul"}
        How the power spectrum is computed; both give the same features (float32 rounding apart).
        ``fft``: ``tf.signal.stft``, the fastest in TensorFlow (training, SavedModel). ``matmul``:
        :class:`FourStepDFT` matrix products, 3-4x faster than ``fft`` in TFLite (whose RFFT2D kernel
        alone needs about 6 ms for a 5-s clip at 22.05 kHz on one thread) but about 4x slower in
        TensorFlow. :func:`for_tflite` switches a trained model to ``matmul`` before conversion.
    **kwargs
        Passed to :class:`keras.layers.Layer` (``name``, ...).
    """

    def __init__(self, *, sample_rate_hz: int, frame_length_samples: int, hop_length_samples: int,
                 fft_length: int, num_mel_bins: int, fmin_hz: float, fmax_hz: float, log_offset: float,
                 dft: str = "fft", **kwargs: Any):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        # int() and float() below took True as 1 (one mel bin, one-sample frames), cut 16000.7 Hz to 16000,
        # and kept an infinite log_offset (every feature inf); fmax_hz=None failed in float().
        for name, value in (("sample_rate_hz", sample_rate_hz), ("frame_length_samples", frame_length_samples),
                            ("hop_length_samples", hop_length_samples), ("num_mel_bins", num_mel_bins)):
            if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating))
                    or not float(value).is_integer() or value < 1):
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        for name, value in (("fmin_hz", fmin_hz), ("fmax_hz", fmax_hz), ("log_offset", log_offset)):
            if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating))
                    or not np.isfinite(value)):
                raise ConfigError(f"{name} must be a finite number, got {value!r}"
                                  + (" (give sample_rate_hz / 2 for the whole band)" if value is None else ""))
        if not (is_whole(fft_length) and fft_length >= max(frame_length_samples, 4)
                and fft_length & (fft_length - 1) == 0):
            raise ConfigError(f"fft_length must be a power of two >= frame_length_samples="
                              f"{frame_length_samples} (and >= 4), got {fft_length!r}")
        if not float(log_offset) > 0:
            raise ConfigError(f"log_offset must be > 0, got {log_offset!r}")
        if dft not in DFT_METHODS:
            raise ConfigError(f"dft must be one of {DFT_METHODS}, got {dft!r}")
        self.sample_rate_hz = int(sample_rate_hz)
        self.frame_length_samples = int(frame_length_samples)
        self.hop_length_samples = int(hop_length_samples)
        self.fft_length = int(fft_length)
        self.num_mel_bins = int(num_mel_bins)
        self.fmin_hz = float(fmin_hz)
        self.fmax_hz = float(fmax_hz)
        self.log_offset = float(log_offset)
        self.dft = dft
        self.mel_matrix = slaney_mel_matrix(  # [fft_bins, mel_bins]
            sample_rate_hz=self.sample_rate_hz, fft_length=self.fft_length, num_mel_bins=self.num_mel_bins,
            fmin_hz=self.fmin_hz, fmax_hz=self.fmax_hz).astype(np.float32)
        self.window = periodic_hann_window(self.frame_length_samples).astype(np.float32)  # [frame_length]
        self.four_step = FourStepDFT.plan(frame_length_samples=self.frame_length_samples,
                                          fft_length=self.fft_length, num_mel_bins=self.num_mel_bins)
        self.four_step_mel = self.four_step.mel_terms(self.mel_matrix)  # [half * n2, mel_bins]

    @classmethod
    def from_config_object(cls, config: Config, **kwargs: Any) -> "LogMel":
        """The layer for a :class:`sound_tf.config.Config` (sizes from its derived properties)."""
        return cls(sample_rate_hz=config.audio.sample_rate_hz,
                   frame_length_samples=config.frame_length_samples,
                   hop_length_samples=config.hop_length_samples,
                   fft_length=config.fft_length_samples,
                   num_mel_bins=config.features.num_mel_bins,
                   fmin_hz=config.features.fmin_hz,
                   fmax_hz=config.fmax_hz,
                   log_offset=config.features.log_offset,
                   **kwargs)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced from ``num_samples`` samples.

        Raises :class:`~sound_tf.errors.ConfigError` (a ``ValueError``) for fewer samples than one frame, as the
        layer refuses such an input: it gave 0 or a negative count (``-2`` for 80 samples in 400-sample frames),
        and :meth:`macs` a negative cost, where no caller can use either."""
        samples = int(num_samples)
        if samples < self.frame_length_samples:
            raise ConfigError(self._too_short(samples))
        return 1 + (samples - self.frame_length_samples) // self.hop_length_samples

    def _too_short(self, samples: int) -> str:
        return (f"LogMel input has {samples} samples, fewer than one frame "
                f"(frame_length_samples={self.frame_length_samples})")

    def macs(self, num_samples: int) -> int:
        """Multiply-accumulates for one clip of ``num_samples`` samples.

        ``matmul``: its three matrix products. ``fft``: the mel projection plus ``2 N log2 N`` per frame
        for the real FFT of size ``N`` (a rough figure). Fewer samples than one frame: as :meth:`num_frames`.
        """
        if self.dft == "matmul":
            per_frame = FourStepDFT.macs_per_frame(
                frame_length_samples=self.frame_length_samples, n1=self.four_step.n1, n2=self.four_step.n2,
                num_mel_bins=self.num_mel_bins)
        else:
            fft_bins = self.fft_length // 2 + 1
            per_frame = fft_bins * self.num_mel_bins + int(2 * self.fft_length * np.log2(self.fft_length))
        return self.num_frames(num_samples) * per_frame

    def _check_input_shape(self, input_shape: Any) -> None:
        """Raise unless a known shape is ``[batch, samples]`` with at least one frame of samples."""
        if input_shape is None or getattr(input_shape, "rank", 0) is None:  # unknown rank: nothing to check
            return
        input_shape = tuple(input_shape)
        if len(input_shape) != 2:
            raise ConfigError(f"LogMel expects a waveform batch [batch, samples], got shape {input_shape}")
        samples = input_shape[-1]
        if samples is not None and samples < self.frame_length_samples:
            raise ConfigError(self._too_short(samples))

    def build(self, input_shape: tuple) -> None:
        self._check_input_shape(input_shape)
        super().build(input_shape)

    def call(self, waveform: tf.Tensor) -> tf.Tensor:
        # Keras builds a layer once: a later call with another rank or length reached the ops unchecked (a
        # [batch, 1, samples] input crashed the process in the mel matmul; a 1-D clip came back unbatched).
        # Integer PCM would be read as samples up to 32767. Static checks only: no op is added.
        self._check_input_shape(waveform.shape)
        dtype = tf.as_dtype(waveform.dtype)
        if not dtype.is_floating:
            raise ConfigError(f"LogMel expects float samples in [-1, 1], got dtype {dtype.name}"
                              + integer_pcm_hint(dtype.as_numpy_dtype))
        waveform = tf.cast(waveform, tf.float32)  # [batch, samples]
        if self.dft == "matmul":
            mel_power = self._mel_power_matmul(waveform)  # [batch, frames, mel_bins]
        else:
            mel_power = self._mel_power_fft(waveform)  # [batch, frames, mel_bins]
        return tf.math.log(mel_power + self.log_offset)  # [batch, frames, mel_bins]

    def _mel_power_fft(self, waveform: tf.Tensor) -> tf.Tensor:
        spectrum = tf.signal.stft(waveform, frame_length=self.frame_length_samples,
                                  frame_step=self.hop_length_samples, fft_length=self.fft_length,
                                  window_fn=self._window_fn, pad_end=False)  # [batch, frames, fft_bins]
        power = tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))  # |X|^2, same shape
        return tf.matmul(power, tf.constant(self.mel_matrix))  # [batch, frames, mel_bins]

    def _window_fn(self, frame_length: int, dtype: tf.DType = tf.float32) -> tf.Tensor:
        # tf.signal.hann_window(periodic=True) is symmetric for odd lengths; this one is periodic.
        return tf.constant(self.window, dtype=dtype)

    def _mel_power_matmul(self, waveform: tf.Tensor) -> tf.Tensor:
        plan = self.four_step
        frames = self._windowed_frames(waveform)  # [batch, frames, rows * n2]
        num_frames = tf.shape(frames)[1] if frames.shape[1] is None else frames.shape[1]
        x = tf.reshape(frames, [-1, plan.rows, plan.n2])  # [batch*frames, rows, n2]: sample n2*row + col
        y = tf.matmul(tf.constant(plan.step1), x)  # [batch*frames, 2 * half, n2]: (re, im) of inner DFT
        y = tf.reshape(y, [-1, 2, plan.half, plan.n2])  # [batch*frames, re/im, half, n2]
        y = tf.transpose(y, [2, 0, 1, 3])  # [half, batch*frames, re/im, n2]
        y = tf.reshape(y, [plan.half, -1, 2 * plan.n2])  # [half, batch*frames, 2 * n2]
        z = tf.square(tf.matmul(y, tf.constant(plan.step2)))  # [half, batch*frames, 2 * n2]: re^2, im^2 of X[k]
        power = z[:, :, :plan.n2] + z[:, :, plan.n2:]  # [half, batch*frames, n2]: |X[ka + n1 * kb]|^2
        power = tf.transpose(power, [1, 0, 2])  # [batch*frames, half, n2]
        power = tf.reshape(power, [-1, num_frames, plan.half * plan.n2])  # [batch, frames, half * n2]
        return tf.matmul(power, tf.constant(self.four_step_mel))  # [batch, frames, mel_bins]

    def _windowed_frames(self, waveform: tf.Tensor) -> tf.Tensor:
        """``[batch, samples]`` -> windowed frames zero-padded to ``rows * n2``: ``[batch, frames, rows * n2]``.

        Frames are cut without a gather (:func:`frames_from_chunks`), then cut to the frame length.
        """
        frame, hop = self.frame_length_samples, self.hop_length_samples
        samples = waveform.shape[-1]
        if samples is None:
            samples = tf.shape(waveform)[-1]
            num_frames = 1 + (samples - frame) // hop
            padding = tf.maximum((num_frames + -(-frame // hop) - 1) * hop - samples, 0)
        else:
            num_frames = self.num_frames(samples)
            padding = max((num_frames + -(-frame // hop) - 1) * hop - samples, 0)
        chunks_per_frame = -(-frame // hop)
        frames = frames_from_chunks(tf.pad(waveform, [[0, 0], [0, padding]]), hop, chunks_per_frame,
                                    num_frames)[:, :, :frame]  # [batch, frames, frame_length]
        frames = frames * tf.constant(self.window)  # [batch, frames, frame_length]
        padding = self.four_step.rows * self.four_step.n2 - frame
        return tf.pad(frames, [[0, 0], [0, 0], [0, padding]])  # [batch, frames, rows * n2]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        samples = input_shape[-1]
        frames = None if samples is None else self.num_frames(samples)
        return (input_shape[0], frames, self.num_mel_bins)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(sample_rate_hz=self.sample_rate_hz, frame_length_samples=self.frame_length_samples,
                      hop_length_samples=self.hop_length_samples, fft_length=self.fft_length,
                      num_mel_bins=self.num_mel_bins, fmin_hz=self.fmin_hz, fmax_hz=self.fmax_hz,
                      log_offset=self.log_offset, dft=self.dft)
        return config


def for_tflite(model: keras.Model) -> keras.Model:
    """A copy of ``model`` (same weights) whose :class:`LogMel` layers use ``dft="matmul"``.

    Convert this copy to TFLite: its frontend is 3-4x faster there than ``tf.signal.stft``'s RFFT2D, and
    its outputs equal the original's (float32 rounding apart; see tests/test_frontend.py). Layer names
    are kept, so the frontend's TFLite tensors still contain ``/log_mel``.
    """
    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if isinstance(layer, LogMel):
            config["dft"] = "matmul"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def log_mel_layer(config: Config, **kwargs: Any) -> LogMel:
    """Shorthand for :meth:`LogMel.from_config_object`."""
    return LogMel.from_config_object(config, **kwargs)


def feature_extractor(config: Config) -> keras.Model:
    """Keras model: waveform ``[batch, clip_samples]`` (input "waveform") -> ``[batch, frames, mel_bins]``."""
    waveform = keras.Input(shape=(config.audio.clip_samples,), dtype="float32", name="waveform")
    features = LogMel.from_config_object(config, name=LOG_MEL_LAYER_NAME)(waveform)  # [batch, frames, mel_bins]
    return keras.Model(waveform, features, name="sound_tf_features")


def log_mel_numpy(config: Config, waveform: np.ndarray) -> np.ndarray:
    """Log-mel of one clip ``[samples]`` or a batch ``[batch, samples]`` as NumPy, through :class:`LogMel`.

    For plots and notebooks; it runs the same layer as the model, eagerly.
    """
    waveform = np.asarray(waveform)
    if not np.issubdtype(waveform.dtype, np.floating):  # int16 PCM cast as is reads as samples up to 32767
        raise ConfigError(f"log_mel_numpy expects float samples in [-1, 1], got dtype {waveform.dtype}"
                          + integer_pcm_hint(waveform.dtype))
    waveform = waveform.astype(np.float32, copy=False)
    if waveform.ndim not in (1, 2):
        raise ConfigError(f"log_mel_numpy expects [samples] or [batch, samples], got shape {waveform.shape}")
    batch = waveform[np.newaxis] if waveform.ndim == 1 else waveform  # [batch, samples]
    features = np.asarray(LogMel.from_config_object(config)(batch))  # [batch, frames, mel_bins]
    return features[0] if waveform.ndim == 1 else features


#: The least standard deviation :func:`compute_feature_stats` gives a mel bin, as a fraction of the median
#: bin's, and in any case (log units).
STD_FLOOR_FRACTION = 0.25
MIN_STD = 1e-3


def compute_feature_stats(config: Config, waveforms: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-mel-bin mean and variance of the log-mel features of some training audio.

    Use them to initialise ``keras.layers.Normalization(axis=-1, mean=mean, variance=variance)``
    (see ``models.build_model``). Statistics pool every frame of every clip.

    Parameters
    ----------
    config : Config
    waveforms : iterable
        Batches ``[batch, samples]`` (NumPy arrays or tensors), e.g. a few batches of training clips.
        An element may also be a ``(waveform, label)`` pair, as a ``tf.data`` pipeline yields.

    Returns
    -------
    mean, variance : numpy.ndarray
        float32, ``[num_mel_bins]`` each. A bin's variance is at least ``(STD_FLOOR_FRACTION * median
        bin standard deviation) ** 2``: a band the audio leaves empty is not magnified into noise.

    Raises
    ------
    DatasetError
        If a batch is not ``[batch, samples]`` with at least one frame of samples, or no batch is given.
    """
    layer = LogMel.from_config_object(config)
    features_of = tf.function(layer.call, reduce_retracing=True)
    mel_bins = config.features.num_mel_bins
    count = 0
    total = np.zeros(mel_bins, np.float64)
    total_sq = np.zeros(mel_bins, np.float64)
    for index, batch in enumerate(waveforms):
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        batch = np.asarray(batch)
        if not np.issubdtype(batch.dtype, np.floating):  # int16 PCM cast as is: every statistic ~20 nats high
            raise DatasetError(f"compute_feature_stats: batch {index} has dtype {batch.dtype}; expected float "
                               f"samples in [-1, 1]" + integer_pcm_hint(batch.dtype))
        batch = batch.astype(np.float32, copy=False)
        if batch.ndim != 2 or batch.shape[1] < config.frame_length_samples:
            raise DatasetError(f"compute_feature_stats: batch {index} has shape {batch.shape}; expected "
                               f"[batch, samples] with samples >= {config.frame_length_samples}")
        if not np.all(np.isfinite(batch)):  # one NaN sample made every mean and variance NaN
            raise DatasetError(f"compute_feature_stats: batch {index} holds "
                               f"{counted(int(np.count_nonzero(~np.isfinite(batch))), 'NaN or infinite samples')}")
        features = features_of(batch).numpy().astype(np.float64).reshape(-1, mel_bins)  # [batch * frames, mels]
        count += features.shape[0]
        total += features.sum(axis=0)
        total_sq += np.square(features).sum(axis=0)
    if count == 0:
        raise DatasetError("compute_feature_stats: got no waveform batches")
    mean = total / count
    variance = np.maximum(total_sq / count - np.square(mean), 0.0)
    # A band the training audio leaves empty (8-kHz recordings at 16 kHz: every bin above 4 kHz) is
    # constant at log(log_offset), with a standard deviation of 0.002-0.02 against 3-5 elsewhere. Divided
    # by that, any sound there later (augmentation's noise, or another microphone) became hundreds of
    # standard deviations, and the model trained to chance. Each bin's deviation is at least a fraction of
    # the median bin's.
    floor = STD_FLOOR_FRACTION * float(np.median(np.sqrt(variance)))
    variance = np.maximum(variance, max(floor, MIN_STD) ** 2)
    return mean.astype(np.float32), variance.astype(np.float32)
