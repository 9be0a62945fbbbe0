"""``python -m sound_tf.augment FILE --out DIR``: hear and see what training augmentation does to a file.

Decodes FILE at the recipe's sample rate, takes one clip of the recipe's length from it as training does
(``audio.clip_seconds``: a longer file is cut from ``--start`` seconds, a shorter one padded with
silence), draws ``--count`` parameter sets from ``--seed`` exactly as the training pipeline does (same
augmenter, same probabilities: some versions may leave a transform out), and writes into DIR:

- ``original.wav`` and ``aug_NN_<what was applied>.wav`` (16-bit PCM, e.g.
  ``aug_03_pitch+1.4st_noise18dB-pink.wav``; samples beyond [-1, 1] are clipped in the file only),
- ``params.json``: the drawn parameters of every version,
- ``spectrograms.png``: the log-mel features (as the model computes them) of the original and every
  version, plus the first version as the model sees it while training (with SpecAugment masks).

With ``augment.rescale_domain = "features"`` (the default) training changes speed, tempo and pitch on the
log-mel features inside the model, which cannot be listened to, and so it does shift, gain and noise with
``augment.shift_gain_domain`` / ``noise_domain = "features"`` (the defaults too); the WAVs apply the same
drawn values to the waveform instead, and the last panel shows the features path.

Mixup needs a second example and is not shown.

Examples
--------
    python -m sound_tf.augment dog.wav --out aug_preview
    python -m sound_tf.augment dog.wav --out aug_preview --count 8 --seed 3 --pipeline esc50
    python -m sound_tf.augment dog.wav --out aug_preview --run runs/esc50_fold1    # as that run trained
    python -m sound_tf.augment street.flac --out aug_preview --start 12.5 --set audio.clip_seconds=10
    python -m sound_tf.augment dog.wav --out aug_preview --set augment.pitch_probability=1
"""

from __future__ import annotations

import argparse
import json
import math
import re
import os
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import atomic
from .config import Config, check_seed, config_from_recipe, replace_section
from .errors import ConfigError, and_list, is_whole, run_cli


#: Most versions one preview writes: each is a WAV and a row of the PNG (about 200 pixels high).
MAX_COUNT = 32


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sound_tf.augment",
                                     description="Write augmented versions of one audio file as WAVs and a "
                                                 "PNG of their log-mel spectrograms.")
    parser.add_argument("file", help="an audio file (any format sound_tf decodes)")
    parser.add_argument("--out", required=True, type=os.path.expanduser,  # a quoted ~ too: no folder named '~'
                        help="output folder (created)")
    parser.add_argument("--count", type=int, default=6,
                        help=f"augmented versions to write (default 6, at most {MAX_COUNT})")
    parser.add_argument("--seed", type=int, help="the run's seed (train.seed, as train's --seed): the draws and the "
                                                 "generated noise come from it (default: train.seed of the config)")
    parser.add_argument("--start", type=float, default=0.0, metavar="SECONDS",
                        help="where the clip starts in a file longer than audio.clip_seconds (default 0; the log "
                             "names the loudest part when this one is 10 dB or more below it)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", help="a run folder: preview the augmentation it trained with (its config.json: "
                                      "sample rate, clip length, frontend and augment settings, noise folder)")
    source.add_argument("--pipeline", help="a recipe (pipelines/<name>.toml or a bare name such as esc50)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set augment.noise_probability=1 (repeatable)")
    parser.add_argument("--quiet", action="store_true",
                        help="print only errors (not the versions written, none of TensorFlow's own log lines)")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Config:
    """Defaults <- recipe <- ``--set`` overrides, or a run folder's config <- ``--set`` overrides."""
    from .config import CONFIG_FILENAME, apply_overrides, parse_set_flags, resolve_recipe
    from .train import check_noise_dir, flag_given

    overrides = parse_set_flags(args.set)
    try:
        if getattr(args, "run", None) is not None:
            config, source = apply_overrides(Config.load(args.run), overrides), f"{Path(args.run) / CONFIG_FILENAME}: "
        else:
            recipe = resolve_recipe(args.pipeline)
            config, source = config_from_recipe(recipe, overrides), f"{recipe}: " if recipe is not None else ""
    except ConfigError as exc:  # a --set value refused: named, as train names it (--seed sets no config value)
        raise ConfigError(f"{flag_given(str(exc), args, overrides, flag_dests={})}{exc}") from None
    check_noise_dir(config, "--set " if "augment.noise_dir" in overrides else source)
    return config


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        value = np.asarray(value)
        out[key] = value.tolist() if value.ndim else value.item()
    return out


def _recorded(params: dict[str, Any]) -> dict[str, Any]:
    """A draw as ``params.json`` records it: each ``<transform>_applied`` says whether the transform changed the
    clip (:meth:`sound_tf.augment.WaveformAugmenter.acted`), as the version's name and log line do; a gain of 0 dB
    drawn from ``augment.gain_min_db = gain_max_db = 0`` was recorded ``gain_applied: true``. The values stay as
    drawn (a step not applied carries its neutral one, so the record applies as the draw did)."""
    from .augment import WaveformAugmenter

    return {key: WaveformAugmenter.acted(params, key[:-len("_applied")]) if key.endswith("_applied") else value
            for key, value in params.items()}


def _applied_text(params: dict[str, Any], masks: str = "", *, noise: str = "") -> str:
    """``speed_factor=1.043, gain_db=-2.1, ...`` for the transforms that changed the clip
    (:meth:`sound_tf.augment.WaveformAugmenter.acted`: a gain of 0 dB drawn from 0..0 did not), each value with
    3 decimals or the more that tell it from its neutral one (``speed_factor=0.9996``, not ``1.000``), then
    ``noise`` (``; noise from a.wav at ...``, :func:`_noise_file_text`) and ``masks`` (the SpecAugment masks of the
    PNG's training panel, :func:`masks_text`)."""
    from .augment import WaveformAugmenter, format_drawn

    parts = []
    for key, value in params.items():
        transform = key.split("_", 1)[0]
        if key.endswith("_applied") or (f"{transform}_applied" in params
                                        and not WaveformAugmenter.acted(params, transform)):
            continue
        if key in WaveformAugmenter.NEUTRAL and isinstance(value, float):
            value = format_drawn(value, WaveformAugmenter.NEUTRAL[key], decimals=3).lstrip("+")
        parts.append(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}")
    text = ", ".join(parts) + noise
    return f"{text}; {masks}" if text and masks else text or masks or "(nothing applied)"


def _noise_file_text(params: dict[str, Any], folder: Any, config: Config) -> str:
    """``; noise from white_noise.wav at 2.87-3.87 s``: which recording of ``augment.noise_dir`` a version's noise
    window comes from (``folder``: :class:`sound_tf.augment.NoiseFolder`), where the log gave only
    ``noise_source=0, noise_offset=301920``, a sample of the folder's recordings laid end to end, and the name
    ``-bank0``; without a noise folder, ``; generated pink noise``, the colour ``noise_source`` indexes in
    ``augment.noise_colors`` (the log gave ``noise_source=1`` alone); empty when no noise was mixed in."""
    if not params.get("noise_applied"):
        return ""
    if folder is None:
        return f"; generated {config.augment.noise_colors[int(params['noise_source'])]} noise"
    text = folder.window_text(int(params["noise_offset"]), config.audio.clip_samples, config.audio.sample_rate_hz)
    return f"; noise from {text}" if text else ""


def draw_spec_masks(config: Config, seed: int, shape: tuple[int, int]) -> dict[str, np.ndarray] | None:
    """The SpecAugment masks (:meth:`sound_tf.augment.SpecAugment.draw`, ``[count]`` each) that the preview's
    training panel shows for features of ``shape`` ``(frames, mel_bins)``, from the layer of ``config`` seeded
    with ``seed``; ``None`` when SpecAugment is off."""
    from .augment import spec_augment_layer

    layer = spec_augment_layer(replace_section(config, "train", seed=seed))
    if layer is None:
        return None
    return {key: value.numpy()[0] for key, value in layer.draw(1, shape[0], shape[1]).items()}


def _runs(starts: np.ndarray, widths: np.ndarray, size: int) -> list[tuple[int, int]]:
    """``[(first, last), ...]``: the runs of indices in ``[0, size)`` that the bands ``[start, start + width)``
    cover, overlapping and touching bands merged, in order."""
    covered = np.zeros(size + 2, bool)  # a False on each side: every run has an edge
    for start, width in zip(starts.tolist(), widths.tolist()):
        covered[1 + start:1 + min(start + width, size)] = True
    edges = np.flatnonzero(np.diff(covered.astype(np.int8)))  # [2 * runs]: where a run starts, after it ends
    return [(int(first), int(after) - 1) for first, after in zip(edges[::2], edges[1::2])]


#: Decimals of the seconds a time mask spans in the log: 2, or up to this many when 2 print a mask's ends alike.
MASK_SECONDS_MAX_DECIMALS = 4


def _span_texts(spans: list[tuple[float, float]]) -> list[str]:
    """``['0.31-0.35 s', ...]``: each ``(start, end)`` in seconds with 2 decimals, or the fewest more (at most
    :data:`MASK_SECONDS_MAX_DECIMALS`) that print every span's ends apart: a one-frame mask at an 8-ms hop (FSDD's
    recipe) read ``0.12-0.12 s``, as if it masked nothing, where it is ``0.116-0.124 s``."""
    for decimals in range(2, MASK_SECONDS_MAX_DECIMALS + 1):
        texts = [(f"{first:.{decimals}f}", f"{end:.{decimals}f}") for first, end in spans]
        if all(first != end for first, end in texts):
            break
    return [f"{first}-{end} s" for first, end in texts]


def masks_text(masks: dict[str, np.ndarray], config: Config, shape: tuple[int, int]) -> str:
    """``SpecAugment in training (the PNG's last panel): mel bins 44-51 and 0.31-0.35 s masked``: what the
    ``masks`` (:func:`draw_spec_masks`) of features of ``shape`` ``(frames, mel_bins)`` cover, overlapping bands
    as one, the time spans in seconds as the PNG's axis places the frames (with the decimals that print a mask's
    ends apart: :func:`_span_texts`)."""
    from .report import frame_span_seconds

    frames, bins = shape
    start, end = frame_span_seconds(frames, config.hop_length_samples, config.frame_length_samples,
                                    config.audio.sample_rate_hz)
    per_frame = (end - start) / frames
    bands = _runs(masks["freq_starts"], masks["freq_widths"], bins)
    spans = _runs(masks["time_starts"], masks["time_widths"], frames)
    parts = [f"mel bin{'s' if len(bands) > 1 or bands[0][1] > bands[0][0] else ''} "
             + and_list([f"{first}-{last}" if last > first else f"{first}" for first, last in bands])] if bands else []
    parts += [and_list(_span_texts([(start + first * per_frame, start + (last + 1) * per_frame)
                                    for first, last in spans]))] if spans else []
    shown = (", and " if any(" and " in part for part in parts) else " and ").join(parts)  # bins 1 and 5, and 0.2 s
    return f"SpecAugment in training (the PNG's last panel): {shown + ' masked' if parts else 'no mask drawn'}"


#: A clip this many dB quieter than the file's loudest clip-long part gets that part named in the log.
QUIETER_PART_DB = 10.0


def loudest_part(wave: np.ndarray, clip: int, *, step: int) -> tuple[int, float]:
    """``(start, energy)`` of the loudest ``clip``-sample part of ``wave`` (``[samples]``, longer than a
    clip): the sum of squares over each part starting at a multiple of ``step`` samples, and the last part."""
    energy = np.concatenate([[0.0], np.cumsum(np.square(wave, dtype=np.float64))])  # [samples + 1]
    starts = np.unique(np.append(np.arange(0, wave.size - clip + 1, step), wave.size - clip))  # [parts]
    sums = energy[starts + clip] - energy[starts]  # [parts]
    best = int(np.argmax(sums))
    return int(starts[best]), float(sums[best])


def _quieter_part_hint(wave: np.ndarray, start: int, clip: int, rate: int) -> str:
    """`` (--start chooses another part)``, or, when the clip from ``start`` is :data:`QUIETER_PART_DB` or
    more below the file's loudest clip-long part (a sound that fills only part of its recording, the
    default start of 0 landing on the background before it), where that part starts and how much louder."""
    best, best_energy = loudest_part(wave, clip, step=max(rate // 100, 1))  # starts on 10-ms steps
    used = float(np.sum(np.square(wave[start:start + clip], dtype=np.float64)))
    if best_energy <= 0 or (used > 0 and 10 * math.log10(best_energy / used) < QUIETER_PART_DB):
        return " (--start chooses another part)"
    where = (f"{10 * math.log10(best_energy / used):.0f} dB louder" if used > 0 else "where this one is silent")
    return (f"; its loudest {clip / rate:g}-s part starts at {best / rate:.2f} s, {where} "
            f"(--start {best / rate:.2f} uses it)")


def augment_file(path: str | Path, out_dir: str | Path, config: Config, *, count: int, seed: int,
                 start_seconds: float = 0.0, log: Any = print) -> list[Path]:
    """Write the original and ``count`` augmented versions of ``path`` into ``out_dir``; return the WAVs.

    The original is the clip training would see: ``audio.clip_seconds`` from ``start_seconds`` on, padded
    with silence at the end when the file is shorter. When that clip is :data:`QUIETER_PART_DB` or more
    below the file's loudest clip-long part, the log names where that part starts. The augmentation's settings
    are per clip (a shift of at most ``augment.shift_max_clip_fraction`` of it, the model's noise tables a clip
    long), so a whole long file would show other transforms than training applies.

    Raises
    ------
    AudioError
        ``path`` cannot be decoded.
    ConfigError
        ``count`` is not in ``[1, MAX_COUNT]``, ``seed`` is out of range, ``start_seconds`` lies outside
        the file, ``out_dir`` is a file or holds files of the user's own, or the noise folder is unusable.
    """
    # Checked before TensorFlow starts and the file is decoded: a wrong flag comes back at once.
    if not is_whole(count) or not 1 <= count <= MAX_COUNT:
        raise ConfigError(f"--count must be an integer in [1, {MAX_COUNT}], got {count!r}")
    check_seed("--seed", seed)
    count, seed = int(count), int(seed)  # numpy integers: seed goes into params.json
    if not (math.isfinite(start_seconds) and start_seconds >= 0):
        raise ConfigError(f"--start must be a number of seconds >= 0, got {start_seconds}")
    _previous_versions(Path(out_dir), path)  # --out a file, or a folder of someone's own files

    import tensorflow as tf

    from . import audio
    from .augment import load_noise_folder, make_waveform_augmenter

    rate, clip = config.audio.sample_rate_hz, config.audio.clip_samples
    wave = audio.load_audio(path, sample_rate_hz=rate)  # [samples]
    start = int(round(start_seconds * rate))
    if not start < wave.size:
        raise ConfigError(f"--start {start_seconds} s lies outside {path}, which lasts {wave.size / rate:.2f} s")
    if wave.size != clip or start:
        end = min(start + clip, wave.size)
        log(f"{path} lasts {wave.size / rate:.2f} s and training sees {clip / rate:g}-s clips "
            f"(audio.clip_seconds): using {start / rate:.2f}-{end / rate:.2f} s"
            + (f", padded with {(clip - (end - start)) / rate:.2f} s of silence" if end - start < clip else "")
            + (_quieter_part_hint(wave, start, clip, rate) if wave.size > clip else ""))
    wave = np.pad(wave[start:start + clip], (0, max(clip - (wave.size - start), 0)))  # [clip]
    if not np.any(wave):  # else the versions' names (noise20dB-pink) promised noise that none of them holds
        log(f"{path}: the clip used ({start / rate:.2f}-{(start + clip) / rate:.2f} s) is silent (every sample is 0): "
            f"noise is mixed at an SNR against the clip's power, so none is added, and every version is silent too")
    out_dir = Path(out_dir)
    stale = _previous_versions(out_dir, path)  # before any work: refuses a folder of someone's own files
    out_dir.mkdir(parents=True, exist_ok=True)
    noise_bank, noise_folder = load_noise_folder(config) or (None, None)
    # The WAVs are for listening: every transform acts on the waveform there.
    audible = replace_section(config, "augment", rescale_domain="waveform", shift_gain_domain="waveform",
                              noise_domain="waveform")
    augmenter = make_waveform_augmenter(audible, noise_bank=noise_bank)
    training_augmenter = make_waveform_augmenter(config, noise_bank=noise_bank)

    hop = config.hop_length_samples
    noise_in_frames = config.augment.noise_domain == "features"

    @tf.function(autograph=False)
    def run(clip: tf.Tensor, example_seed: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        params = augmenter.draw(example_seed, tf.shape(clip)[0])
        if noise_in_frames:  # training's noise starts at a whole frame: the WAV's window starts there too
            params["noise_offset"] -= noise_window(config, params)[1] % hop
        return augmenter.apply(clip, params), params

    versions: list[tuple[str, np.ndarray]] = [("original", wave)]
    records, training_view, spec_masks = [], None, None
    for index in range(1, count + 1):  # all drawn first: a name taken by a file of the user's stops it all
        example_seed = tf.constant([seed, index], tf.int32)
        if config.augment.enabled:
            augmented, params = run(tf.constant(wave), example_seed)
            augmented, params = augmented.numpy(), {k: v.numpy() for k, v in params.items()}
            summary = augmenter.describe(params)
            if training_view is None:
                training_view = training_features(training_augmenter, wave, params, noise_bank=noise_bank)
                spec_masks = draw_spec_masks(config, seed, training_view.shape)
        else:
            augmented, params, summary = wave.copy(), {}, "none"
        name = f"aug_{index:02d}_{summary}"
        versions.append((name, augmented))
        records.append({"file": f"{name}.wav", "seed": [seed, index], "params": _jsonable(_recorded(params))})
    taken = [r["file"] for r in records if (out_dir / r["file"]).exists() and out_dir / r["file"] not in stale]
    if taken:
        raise ConfigError(f"--out {out_dir}: holds {', '.join(taken)}, which an earlier preview did not write "
                          f"(its params.json does not list it) and this one would overwrite; give an empty or "
                          f"new folder")
    # Listed before anything is deleted or written: a preview stopped part-way (Ctrl-C, a full disk) leaves
    # only files its params.json lists, which the same command run again may replace.
    _write_params(out_dir, records + [{"file": old.name, "replaced": True} for old in stale])
    for old in stale:  # an earlier run's versions: params.json and the PNG describe only this run's
        old.unlink()
    if stale:
        log(f"removed {len(stale)} aug_*.wav of an earlier run from {out_dir}")
    # One scale for every WAV, the original too, when a version peaks above full scale (a +20 dB gain of a
    # loud file): the 16-bit WAVs clipped it, so what you heard was not what training draws; scaled together,
    # the levels against each other are.
    peak = max(float(np.max(np.abs(samples))) if samples.size else 0.0 for _, samples in versions)
    scale = 1.0 / peak if peak > 1.0 else 1.0
    scale_db = 20 * math.log10(scale)
    for record in records:
        record["wav_gain_db"] = round(scale_db, 3)
    written = [audio.write_wav(out_dir / "original.wav", wave * scale, rate)]
    if scale < 1.0:
        log(f"a version peaks at {peak:.2f}, above full scale: every WAV (the original too) is scaled by "
            f"{scale_db:.1f} dB so that none clips, which keeps their levels against each other as training "
            "draws them (params.json: wav_gain_db)")
    if not config.augment.enabled:
        log("augment.enabled is false: the versions equal the original")
    elif on_features(config):
        log(f"training applies {', '.join(on_features(config))} to the log-mel features in the model "
            "(augment.*_domain = features); the WAVs apply the same values to the sound so you can hear "
            "them, and the last panel of the PNG shows the features path")
    if config.augment.enabled and config.augment.mixup_probability > 0:  # else a user's mixup seemed ignored
        log(f"mixup (augment.mixup_probability={config.augment.mixup_probability:g}) mixes a clip with another "
            "training clip, so it is in no version here")
    for index, ((name, augmented), record) in enumerate(zip(versions[1:], records)):
        written.append(audio.write_wav(out_dir / f"{name}.wav", augmented * scale, rate))
        log(f"{name}.wav")
        if record["params"]:  # the first version's SpecAugment masks are in the PNG's training panel
            shown = spec_masks is not None and index == 0
            log("    " + _applied_text(record["params"],
                                       masks_text(spec_masks, config, training_view.shape) if shown else "",
                                       noise=_noise_file_text(record["params"], noise_folder, config)))
    _write_params(out_dir, records)
    png = plot_versions(versions, config, out_dir / "spectrograms.png", seed=seed, training_view=training_view,
                        spec_masks=spec_masks)
    log(f"wrote {len(written)} WAVs, params.json and {png.name} to {out_dir}")
    return written


def _write_params(out_dir: Path, records: list[dict[str, Any]]) -> None:
    """``params.json``, replaced whole (a stopped write leaves the previous one)."""
    atomic.write_json(out_dir / "params.json", records)


OWN_FILES = ("original.wav", "params.json", "spectrograms.png")
_VERSION_NAME = re.compile(r"aug_\d{2,}_.*\.wav")


def _previous_versions(out_dir: Path, source: str | Path) -> list[Path]:
    """The files an earlier preview wrote into ``out_dir`` (its ``params.json`` and what it lists), which
    this one replaces; other files are left alone.

    Raises
    ------
    ConfigError
        ``out_dir`` is not a folder, holds an ``original.wav``, ``params.json`` or ``spectrograms.png``
        that no earlier preview wrote (it would be overwritten), or its ``original.wav`` is ``source``.
    """
    if not out_dir.exists():
        blocking = next((parent for parent in out_dir.parents if parent.exists()), None)
        if blocking is not None and not blocking.is_dir():  # mkdir would fail with "Not a directory"
            raise ConfigError(f"--out {out_dir}: {blocking} is a file, not a folder")
        return []
    if not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: exists and is not a folder")
    original = out_dir / "original.wav"
    if original.is_file() and Path(source).is_file() and original.samefile(source):
        raise ConfigError(f"--out {out_dir}: its original.wav is the input file {source}, which this command "
                          f"would overwrite; give another --out")
    listed: set[str] = set()
    try:
        records = json.loads((out_dir / "params.json").read_text(encoding="utf-8"))
        listed = {r["file"] for r in records if isinstance(r, dict) and isinstance(r.get("file"), str)}
    except (OSError, ValueError, TypeError):
        pass
    previous = [p for p in sorted(out_dir.iterdir()) if p.name in listed and _VERSION_NAME.fullmatch(p.name)
                and p.is_file() and not p.is_symlink()]
    if not listed:  # not an earlier preview: its own files would be overwritten
        mine = [name for name in OWN_FILES if (out_dir / name).exists() or (out_dir / name).is_symlink()]
        if mine:
            raise ConfigError(f"--out {out_dir}: holds {', '.join(mine)}, which this command writes, but no "
                              f"params.json of an earlier preview listing its versions; give an empty or new "
                              f"folder")
    return previous


def on_features(config: Config) -> list[str]:
    """The transforms training applies to the log-mel features in the model (``augment.*_domain``), each by
    name, of those it applies at all (:func:`sound_tf.augment.applied_transforms`): with pitch and stretch off,
    ``speed``, not the whole ``speed / stretch / pitch`` group. Mixup is not one of them: it mixes in another
    training clip, so no version shows it."""
    from .augment import applied_transforms, domain_of

    return [name for name in applied_transforms(config) if name != "mixup" and domain_of(config, name) == "features"]


def noise_window(config: Config, params: dict[str, Any]) -> tuple[Any, Any]:
    """``(row, start)``: where a waveform draw's noise window lies in the noise the feature layer holds
    (the noise bank as one row, or the generated noise, a row per colour and variant); integers or
    tensors."""
    if config.augment.noise_dir is not None:
        return 0, params["noise_offset"]
    from .augment import WaveformAugmenter, generated_noise_window

    return generated_noise_window(params["noise_source"], params["noise_offset"], samples=config.audio.clip_samples,
                                  variants=WaveformAugmenter._generated_noise_variants(config))


def feature_params(config: Config, params: dict[str, np.ndarray], *, num_samples: int,
                   noise_frames: int = 0) -> dict[str, np.ndarray]:
    """A waveform augmenter's draw (``params``, for a clip of ``num_samples``) as
    :meth:`sound_tf.augment.FeatureAugment.apply` takes it: the same shift, gain, SNR and noise window.

    ``noise_frames``: frames per row of the layer's noise table (the window's first frame is given as a
    fraction of the ``noise_frames - clip frames + 1`` it can start at).
    """
    out = {"shift_clip_fraction": np.array([float(params["shift_samples"]) / num_samples], np.float32),
           "gain_db": np.array([params["gain_db"]], np.float32)}
    if noise_frames:
        source, start = (int(value) for value in noise_window(config, params))
        starts = max(noise_frames - config.num_frames + 1, 1)
        out.update(noise_applied=np.array([bool(params["noise_applied"])]),
                   noise_snr_db=np.array([params["noise_snr_db"]], np.float32),
                   noise_source=np.array([source], np.int32),
                   # the middle of the window's first frame, as a fraction: the layer's float32 product and
                   # truncation give that frame back (k / starts could come back as k - 1)
                   noise_offset=np.array([(min(start // config.hop_length_samples, starts - 1) + 0.5) / starts],
                                         np.float32))
    return out


def training_features(augmenter: Any, wave: np.ndarray, params: dict[str, np.ndarray],
                      noise_bank: np.ndarray | None = None) -> np.ndarray:
    """Raw log-mel ``[frames, mel_bins]`` of ``wave`` augmented with ``params`` as training does it.

    The waveform augmenter leaves out what acts on the features in the model: speed / stretch / pitch
    (``augment.rescale_domain = "features"``, :class:`sound_tf.augment.FeatureRescale`), shift, gain and
    noise (``augment.shift_gain_domain`` / ``noise_domain``, :class:`sound_tf.augment.FeatureAugment`);
    those layers apply the same drawn values here.
    """
    import tensorflow as tf

    from .augment import feature_augment_layer, feature_rescale_layer
    from .frontend import log_mel_numpy

    config = augmenter.config
    augmented = augmenter.apply(tf.constant(wave), {k: tf.constant(v) for k, v in params.items()}).numpy()
    features = log_mel_numpy(config, augmented)[np.newaxis]  # [1, frames, mel_bins]
    layer = feature_rescale_layer(config)  # None when the waveform rescales, or nothing can be rescaled
    if layer is not None:
        features = layer.apply(features, params).numpy()
    augment_layer = feature_augment_layer(config, noise_bank=noise_bank)
    if augment_layer is not None and augment_layer.shifts_or_scales:
        frames = augment_layer.noise_mel_power.shape[1] if augment_layer.noises else 0
        drawn = feature_params(config, params, num_samples=wave.size, noise_frames=frames)
        if config.augment.shift_gain_domain != "features":
            drawn = {k: v for k, v in drawn.items() if k not in ("shift_clip_fraction", "gain_db")}
        features = augment_layer.apply(features, {k: tf.constant(v) for k, v in drawn.items()}).numpy()
    return features[0]


def fit_titles(fig: Any, titles: Sequence[tuple[Any, Any]]) -> None:
    """Wrap each ``(axes, title)``'s text to the axes' width as laid out (the training panel's name is
    long: wrapped at a fixed 120 characters, it ran past its spectrogram into the colour bar's column)."""
    fig.canvas.draw()  # the layout engine places the axes
    renderer = fig.canvas.get_renderer()
    for ax, title in titles:
        text, room = title.get_text(), ax.get_window_extent(renderer).width
        per_line = len(text)
        while per_line > 10 and title.get_window_extent(renderer).width > room:
            per_line = min(per_line - 1, int(per_line * room / title.get_window_extent(renderer).width))
            title.set_text(textwrap.fill(text, per_line))


def plot_versions(versions: list[tuple[str, np.ndarray]], config: Config, path: Path, *, seed: int,
                  training_view: np.ndarray | None = None, spec_masks: dict[str, np.ndarray] | None = None) -> Path:
    """A column of log-mel spectrograms (one per version) plus the first version as training sees it.

    ``training_view`` is that version's raw log-mel as training computes it (see
    :func:`training_features`; default: the first version's features), shown with SpecAugment masks:
    ``spec_masks`` (:func:`draw_spec_masks`, which the log describes), default those drawn from ``seed``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .augment import apply_spec_masks
    from .frontend import log_mel_numpy

    panels = [(name, log_mel_numpy(config, wave)) for name, wave in versions]  # [frames, mel_bins] each
    if len(panels) > 1:
        features = panels[1][1] if training_view is None else training_view
        masks = spec_masks if spec_masks is not None else draw_spec_masks(config, seed, features.shape)
        if masks is not None:
            # SpecAugment acts on normalised features in the model (mask 0 = the mean); show the mean level here.
            batched = {key: value[np.newaxis] for key, value in masks.items()}  # [1, count] each
            features = np.asarray(apply_spec_masks(features[np.newaxis], mask_value=float(np.mean(features)),
                                                   **batched))[0]  # [frames, mel_bins]
        moved = on_features(config)
        what = f", {', '.join(moved)} on the features" if moved else ""
        if masks is not None:
            what += " + SpecAugment" if masks["freq_widths"].any() or masks["time_widths"].any() else \
                " + SpecAugment (no mask drawn)"
        if what:
            panels.append((f"{panels[1][0]} as the model sees it while training{what}", features))
    low = min(float(np.percentile(f, 1)) for _, f in panels)
    high = max(float(np.max(f)) for _, f in panels)
    if high <= low:  # one level in every panel (a silent clip): equal limits drew the last panel in another colour
        high = low + 1.0
    from .report import frame_span_seconds

    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 1.9 * len(panels)), squeeze=False, sharex=True,
                             layout="constrained")
    titles = []
    for ax, (name, features) in zip(axes[:, 0], panels):
        frames, bins = features.shape
        start, end = frame_span_seconds(frames, config.hop_length_samples, config.frame_length_samples,
                                        config.audio.sample_rate_hz)  # each frame at its window's middle
        image = ax.imshow(features.T, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high,
                          extent=(start, end, 0, bins))
        titles.append((ax, ax.set_title(name, fontsize=9, loc="left")))
        ax.set_ylabel("mel bin")
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(image, ax=axes[:, 0].tolist(), label="log mel power", shrink=0.6)
    fit_titles(fig, titles)
    # The temporary file's name ends in .tmp: the format is the one path's suffix names, as savefig read it.
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format=Path(path).suffix[1:] or "png", dpi=110))
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from .quiet import native_logs_held, quiet_tensorflow
    quiet_tensorflow()  # augment_file imports TensorFlow

    def work() -> None:
        config = build_config(args)
        if args.seed is not None:  # as train's --seed: the generated noise pool comes from it too
            check_seed("--seed", args.seed)
            config = replace_section(config, "train", seed=args.seed)
        if not args.quiet:  # a range that reads as given in another unit, as train, tune and crossval say
            for line in config.augment.range_warnings():
                print(line, file=sys.stderr)
        augment_file(args.file, args.out, config, count=args.count, seed=config.train.seed,
                     start_seconds=args.start, log=(lambda message: None) if args.quiet else print)

    with native_logs_held(args.quiet):
        return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())
