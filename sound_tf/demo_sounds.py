"""The built-in synthetic demo dataset: nine classes of sound-like signals, generated deterministically.

Every clip holds one event of random duration (30-90 % of the clip) at a random onset, over background
noise of random colour at a random SNR. Each event is normalised to a random RMS level drawn from the
*same* distribution for every class, and every class draws its duration, onset, level, SNR and noise
colour from the same distributions, so loudness and length alone say nothing about the class: a model
must learn the spectro-temporal shape. Tonal classes share overlapping frequency ranges, so pitch alone
does not decide either.

Classes (``DEMO_CLASSES``), with ``f0`` a fundamental between 250 Hz and 1.5 kHz (capped at a fifth of
the sample rate) and partials above 45 % of the sample rate dropped:

``rising_chirp``
    Exponential sweep up by a factor of 1.6-3 from 250-800 Hz, with a weaker second harmonic.
``falling_chirp``
    The same sweep downwards (starting 1.6-3x higher than it ends).
``harmonic_tone``
    Steady tone of 3-6 partials with random spectral roll-off.
``vibrato_tone``
    The harmonic tone with sinusoidal frequency modulation (rate 4-9 Hz, depth 5-12 %).
``tremolo_tone``
    The harmonic tone with deep amplitude modulation (rate 4-12 Hz, depth 70-100 %).
``pulse_train``
    Clicks (exponentially decaying noise, time constant 4-10 ms) at 8-20 per second with 10 % jitter.
``noise_burst``
    Noise band-limited to 0.3-1 octave around 400 Hz-3 kHz.
``two_tone``
    Siren-like alternation between ``f0`` and 1.25-1.6 x ``f0`` every 70-150 ms (two partials).
``pluck``
    Struck harmonic tone: 3-6 partials decaying exponentially (time constant 60-200 ms, faster for
    higher partials).

Shared distributions: event RMS -38 to -20 dBFS, background SNR 10-30 dB relative to the event, noise
colour a one-pole low-pass with coefficient 0-0.9, attack 5-30 ms and release 10-80 ms raised-cosine
fades (pluck: 2 ms attack). A clip whose peak would exceed 0.99 is scaled down to 0.99 (a few loud
pulse trains, about 7 % of them). Each clip uses ``numpy.random.default_rng([seed, class_index, clip_index])``.

This module does not import TensorFlow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import atomic
from .audio import cache_dir_of, write_wav
from .errors import DatasetError, is_whole

__all__ = ["DEMO_CLASSES", "DEMO_VERSION", "default_demo_dir", "holds_only_demo_clips", "make_demo_dataset",
           "render_demo_clip"]

#: Bumped whenever the generator changes, so old demo folders are regenerated.
DEMO_VERSION = 1
MARKER_NAME = ".sound_tf_demo.json"

# Distributions shared by every class (the point of the design: none of these identifies a class).
EVENT_FRACTION_RANGE = (0.3, 0.9)      # event duration as a fraction of the clip
EVENT_RMS_DBFS_RANGE = (-38.0, -20.0)
SNR_DB_RANGE = (10.0, 30.0)
NOISE_LOWPASS_RANGE = (0.0, 0.9)       # one-pole coefficient: 0 = white, 0.9 = dark
ATTACK_S_RANGE = (0.005, 0.03)
RELEASE_S_RANGE = (0.01, 0.08)
PEAK_LIMIT = 0.99
# Tonal classes' fundamental range (overlapping across classes).
F0_HZ_RANGE = (250.0, 1500.0)
MAX_F0_FRACTION_OF_RATE = 0.2
MAX_PARTIAL_FRACTION_OF_RATE = 0.45


@dataclass(frozen=True)
class _Context:
    rng: np.random.Generator
    t: np.ndarray              # [event_samples] seconds from event start
    sample_rate_hz: int

    def f0(self, low: float | None = None, high: float | None = None) -> float:
        cap = MAX_F0_FRACTION_OF_RATE * self.sample_rate_hz
        low = min(F0_HZ_RANGE[0] if low is None else low, cap / 2)
        high = min(F0_HZ_RANGE[1] if high is None else high, cap)
        return float(self.rng.uniform(low, high))


def _partials(ctx: _Context, f0_hz: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic numbers below the partial limit and their amplitudes (random roll-off)."""
    numbers = np.arange(1, count + 1)
    numbers = numbers[numbers * f0_hz < MAX_PARTIAL_FRACTION_OF_RATE * ctx.sample_rate_hz]
    amplitudes = 1.0 / numbers ** ctx.rng.uniform(0.5, 1.5)
    return numbers, amplitudes


def _additive(ctx: _Context, phase: np.ndarray, count: int, f0_hz: float,
              envelopes: Callable[[int], np.ndarray] | None = None) -> np.ndarray:
    """Sum harmonics of an instantaneous phase ``phase`` (radians of the fundamental)."""
    numbers, amplitudes = _partials(ctx, f0_hz, count)
    out = np.zeros_like(phase)
    for k, a in zip(numbers, amplitudes):
        partial = a * np.sin(k * phase + ctx.rng.uniform(0, 2 * np.pi))
        out += partial * envelopes(int(k)) if envelopes is not None else partial
    return out


def _chirp(ctx: _Context, rising: bool) -> np.ndarray:
    low_hz = ctx.f0(250.0, 800.0)
    ratio = ctx.rng.uniform(1.6, 3.0)
    if low_hz * ratio * 2 >= MAX_PARTIAL_FRACTION_OF_RATE * ctx.sample_rate_hz:
        ratio = max(1.2, MAX_PARTIAL_FRACTION_OF_RATE * ctx.sample_rate_hz / (2 * low_hz))
    duration = ctx.t[-1] + 1.0 / ctx.sample_rate_hz
    start_hz, end_hz = (low_hz, low_hz * ratio) if rising else (low_hz * ratio, low_hz)
    k = np.log(end_hz / start_hz) / duration
    phase = 2 * np.pi * start_hz * np.expm1(k * ctx.t) / k  # [event_samples]
    second = ctx.rng.uniform(0.2, 0.6)
    return np.sin(phase) + second * np.sin(2 * phase + ctx.rng.uniform(0, 2 * np.pi))


def _harmonic_tone(ctx: _Context) -> np.ndarray:
    f0_hz = ctx.f0()
    return _additive(ctx, 2 * np.pi * f0_hz * ctx.t, int(ctx.rng.integers(3, 7)), f0_hz)


def _vibrato_tone(ctx: _Context) -> np.ndarray:
    f0_hz = ctx.f0()
    rate_hz, depth = ctx.rng.uniform(4.0, 9.0), ctx.rng.uniform(0.05, 0.12)
    start = ctx.rng.uniform(0, 2 * np.pi)
    # Instantaneous frequency f0 * (1 + depth * sin(2 pi rate t + start)), integrated analytically.
    phase = 2 * np.pi * f0_hz * (ctx.t - depth / (2 * np.pi * rate_hz)
                                 * (np.cos(2 * np.pi * rate_hz * ctx.t + start) - np.cos(start)))
    return _additive(ctx, phase, int(ctx.rng.integers(3, 7)), f0_hz * (1 + depth))


def _tremolo_tone(ctx: _Context) -> np.ndarray:
    tone = _harmonic_tone(ctx)
    rate_hz, depth = ctx.rng.uniform(4.0, 12.0), ctx.rng.uniform(0.7, 1.0)
    start = ctx.rng.uniform(0, 2 * np.pi)
    envelope = 1.0 - depth * 0.5 * (1.0 - np.cos(2 * np.pi * rate_hz * ctx.t + start))
    return tone * envelope


def _pulse_train(ctx: _Context) -> np.ndarray:
    rate_hz = ctx.rng.uniform(8.0, 20.0)
    tau_s = ctx.rng.uniform(0.004, 0.010)
    out = np.zeros_like(ctx.t)
    click_len = int(min(len(out), 5 * tau_s * ctx.sample_rate_hz))
    decay = np.exp(-np.arange(click_len) / (tau_s * ctx.sample_rate_hz))  # [click_samples]
    time_s = ctx.rng.uniform(0, 1.0 / rate_hz)
    while True:
        start = int(time_s * ctx.sample_rate_hz)
        if start >= len(out):
            break
        stop = min(len(out), start + click_len)
        out[start:stop] += ctx.rng.standard_normal(stop - start) * decay[: stop - start]
        time_s += (1.0 / rate_hz) * ctx.rng.uniform(0.9, 1.1)
    return out


def _noise_burst(ctx: _Context) -> np.ndarray:
    nyquist_hz = ctx.sample_rate_hz / 2
    centre_hz = ctx.rng.uniform(min(400.0, 0.1 * nyquist_hz), min(3000.0, 0.6 * nyquist_hz))
    half_octaves = ctx.rng.uniform(0.3, 1.0) / 2
    noise = ctx.rng.standard_normal(len(ctx.t))
    spectrum = np.fft.rfft(noise)
    freqs_hz = np.fft.rfftfreq(len(noise), 1.0 / ctx.sample_rate_hz)
    with np.errstate(divide="ignore"):
        octaves = np.abs(np.log2(np.maximum(freqs_hz, 1e-3) / centre_hz))
    gain = np.clip((half_octaves * 1.25 - octaves) / (half_octaves * 0.25), 0.0, 1.0)  # soft band edges
    return np.fft.irfft(spectrum * gain, n=len(noise))


def _two_tone(ctx: _Context) -> np.ndarray:
    f1_hz = ctx.f0(250.0, 1200.0)
    f2_hz = f1_hz * ctx.rng.uniform(1.25, 1.6)
    switch_s = ctx.rng.uniform(0.07, 0.15)
    first_high = ctx.rng.random() < 0.5
    segment = (np.floor(ctx.t / switch_s).astype(int) + int(first_high)) % 2
    freq_hz = np.where(segment == 1, f2_hz, f1_hz)  # [event_samples]
    phase = 2 * np.pi * np.cumsum(freq_hz) / ctx.sample_rate_hz
    return _additive(ctx, phase, 2, f2_hz)


def _pluck(ctx: _Context) -> np.ndarray:
    f0_hz = ctx.f0()
    tau_s = ctx.rng.uniform(0.06, 0.2)

    def envelope(k: int) -> np.ndarray:
        return np.exp(-ctx.t / (tau_s / k ** 0.5))

    return _additive(ctx, 2 * np.pi * f0_hz * ctx.t, int(ctx.rng.integers(3, 7)), f0_hz, envelope)


_RENDERERS: dict[str, Callable[[_Context], np.ndarray]] = {
    "rising_chirp": lambda ctx: _chirp(ctx, rising=True),
    "falling_chirp": lambda ctx: _chirp(ctx, rising=False),
    "harmonic_tone": _harmonic_tone,
    "vibrato_tone": _vibrato_tone,
    "tremolo_tone": _tremolo_tone,
    "pulse_train": _pulse_train,
    "noise_burst": _noise_burst,
    "two_tone": _two_tone,
    "pluck": _pluck,
}
#: The demo classes, in the order that seeds them.
DEMO_CLASSES: tuple[str, ...] = tuple(_RENDERERS)


def _fade(n_samples: int, length: int) -> np.ndarray:
    """Raised-cosine ramp from 0 to 1 over ``length`` samples (capped at ``n_samples``)."""
    length = max(1, min(length, n_samples))
    return 0.5 - 0.5 * np.cos(np.pi * np.arange(length) / length)


def render_demo_clip(class_name: str, *, sample_rate_hz: int, clip_seconds: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Render one demo clip of ``class_name``.

    Parameters
    ----------
    class_name : str
        One of :data:`DEMO_CLASSES`.
    sample_rate_hz : int
    clip_seconds : float
    rng : numpy.random.Generator
        Source of every random choice.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``[round(clip_seconds * sample_rate_hz)]``, peak <= 0.99.
    """
    if class_name not in _RENDERERS:
        raise DatasetError(f"unknown demo class {class_name!r}; expected one of {', '.join(DEMO_CLASSES)}")
    clip_samples = int(round(clip_seconds * sample_rate_hz))
    # Shared draws first, in a fixed order, so every class uses identical distributions.
    event_samples = max(2, int(round(rng.uniform(*EVENT_FRACTION_RANGE) * clip_samples)))
    onset = int(rng.integers(0, clip_samples - event_samples + 1))
    rms_dbfs = rng.uniform(*EVENT_RMS_DBFS_RANGE)
    snr_db = rng.uniform(*SNR_DB_RANGE)
    lowpass = rng.uniform(*NOISE_LOWPASS_RANGE)
    attack = int(rng.uniform(*ATTACK_S_RANGE) * sample_rate_hz)
    release = int(rng.uniform(*RELEASE_S_RANGE) * sample_rate_hz)
    noise = rng.standard_normal(clip_samples)  # [clip_samples]

    ctx = _Context(rng=rng, t=np.arange(event_samples) / sample_rate_hz, sample_rate_hz=sample_rate_hz)
    event = _RENDERERS[class_name](ctx)  # [event_samples]
    if class_name == "pluck":
        attack = int(0.002 * sample_rate_hz)
    envelope = np.ones(event_samples)
    up = _fade(event_samples, attack)
    envelope[: len(up)] *= up
    down = _fade(event_samples, release)[::-1]
    envelope[event_samples - len(down):] *= down
    event = event * envelope
    event_rms = 10 ** (rms_dbfs / 20)
    event *= event_rms / max(float(np.sqrt(np.mean(event ** 2))), 1e-12)

    # Background: one-pole low-passed white noise at the drawn SNR relative to the event's RMS.
    omega = np.pi * np.fft.rfftfreq(clip_samples, 0.5)  # [clip_samples // 2 + 1] radians per sample
    coloured = np.fft.irfft(np.fft.rfft(noise) / (1.0 - lowpass * np.exp(-1j * omega)), n=clip_samples)
    coloured *= event_rms * 10 ** (-snr_db / 20) / max(float(np.sqrt(np.mean(coloured ** 2))), 1e-12)

    clip = coloured
    clip[onset: onset + event_samples] += event
    peak = float(np.max(np.abs(clip)))
    if peak > PEAK_LIMIT:
        clip *= PEAK_LIMIT / peak
    return clip.astype(np.float32)


def _marker(clips_per_class: int, sample_rate_hz: int, clip_seconds: float, seed: int) -> dict:
    return {"version": DEMO_VERSION, "clips_per_class": clips_per_class, "sample_rate_hz": sample_rate_hz,
            "clip_seconds": float(clip_seconds), "seed": seed, "classes": list(DEMO_CLASSES)}


def default_demo_dir(*, clips_per_class: int = 60, sample_rate_hz: int = 16000, clip_seconds: float = 1.0,
                     seed: int = 0, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the demo dataset with these parameters lives: ``<cache>/demo/<parameters>``, in ``cache_dir``
    (``data.cache_dir``) when given, else in :func:`sound_tf.audio.default_cache_dir`."""
    name = f"v{DEMO_VERSION}-c{clips_per_class}-sr{sample_rate_hz}-{float(clip_seconds):g}s-seed{seed}"
    return cache_dir_of(cache_dir) / "demo" / name


def _finder_file(path: Path) -> bool:
    """Whether ``path`` is a ``.DS_Store`` file (not a link): macOS's Finder writes one into a folder it shows."""
    return path.name == ".DS_Store" and not path.is_symlink() and path.is_file()


def holds_only_demo_clips(root: str | Path) -> bool:
    """Whether ``root`` holds nothing but what :func:`make_demo_dataset` writes before its marker: class
    folders named after :data:`DEMO_CLASSES` with ``<class>_<index>.wav`` clips (and the hidden temporary
    files of a write that was cut short), i.e. a generation that was interrupted. A symbolic link is none of
    these: a linked class folder was written through (the user's own clips, there, replaced or deleted). The
    ``.DS_Store`` files macOS's Finder leaves (and hides) in the folders it shows may be there too."""
    root = Path(root)
    try:
        entries = list(root.iterdir())
        for folder in entries:
            if _finder_file(folder):
                continue
            if folder.name not in DEMO_CLASSES or folder.is_symlink() or not folder.is_dir():
                return False
            for path in folder.iterdir():
                if _finder_file(path):
                    continue
                clip = re.fullmatch(rf"{re.escape(folder.name)}_\d{{3,}}\.wav", path.name, re.ASCII)
                temporary = path.name.startswith(f".{folder.name}_") and ".tmp" in path.name
                if path.is_symlink() or not path.is_file() or (clip is None and not temporary):
                    return False
    except OSError:
        return False
    return True


def make_demo_dataset(root: str | Path, *, clips_per_class: int = 60, sample_rate_hz: int = 16000,
                      clip_seconds: float = 1.0, seed: int = 0) -> Path:
    """Generate the demo dataset as one folder per class of 16-bit WAVs (skipped when already complete).

    Parameters
    ----------
    root : str or path-like
        Dataset folder; ``root/<class>/<class>_<index>.wav`` are written, then a marker file
        ``root/.sound_tf_demo.json`` with the parameters. A folder whose marker matches is left alone;
        one with a different marker has its class folders replaced; one without a marker is written
        over (an interrupted generation), its class folders' clips past ``clips_per_class`` removed.
    clips_per_class : int
    sample_rate_hz : int
    clip_seconds : float
    seed : int

    Returns
    -------
    pathlib.Path
        ``root``.
    """
    # Checked before anything is written: seed=np.int64(3) generated every clip, then failed writing the
    # marker (not JSON), and sample_rate_hz=0 or clip_seconds="1" failed inside numpy.
    for name, value, minimum in (("clips_per_class", clips_per_class, 1), ("sample_rate_hz", sample_rate_hz, 1000),
                                 ("seed", seed, 0)):
        if not is_whole(value) or value < minimum:
            raise DatasetError(f"{name} must be an integer >= {minimum}, got {value!r}")
    clips_per_class, sample_rate_hz, seed = int(clips_per_class), int(sample_rate_hz), int(seed)
    if sample_rate_hz > 192000:  # what write_wav takes
        raise DatasetError(f"sample_rate_hz must be in [1000, 192000], got {sample_rate_hz}")
    if (isinstance(clip_seconds, bool) or not isinstance(clip_seconds, (int, float, np.integer, np.floating))
            or not 0.05 <= float(clip_seconds) <= 600):
        raise DatasetError(f"clip_seconds must be a number in [0.05, 600], got {clip_seconds!r}")
    clip_seconds = float(clip_seconds)
    root = Path(root).expanduser()
    marker_path = root / MARKER_NAME
    wanted = _marker(clips_per_class, sample_rate_hz, clip_seconds, seed)
    if marker_path.is_file():
        try:
            existing = json.loads(marker_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            existing = None
        if existing == wanted:
            return root
        for name in (existing or {}).get("classes", []):
            if name in DEMO_CLASSES:
                shutil.rmtree(root / name, ignore_errors=True)
        marker_path.unlink()
    for class_index, class_name in enumerate(DEMO_CLASSES):
        for clip_index in range(clips_per_class):
            rng = np.random.default_rng([seed, class_index, clip_index])
            clip = render_demo_clip(class_name, sample_rate_hz=sample_rate_hz, clip_seconds=clip_seconds, rng=rng)
            write_wav(root / class_name / f"{class_name}_{clip_index:03d}.wav", clip, sample_rate_hz)
        # A folder without a marker holds an interrupted generation, perhaps of more clips per class: its clips
        # past this count would be read as part of this dataset, which the marker then calls complete.
        for path in (root / class_name).glob(f"{class_name}_*.wav"):
            index = re.fullmatch(rf"{re.escape(class_name)}_(\d{{3,}})\.wav", path.name, re.ASCII)
            if index is not None and int(index.group(1)) >= clips_per_class:
                path.unlink()
    atomic.write_json(marker_path, wanted)
    return root
