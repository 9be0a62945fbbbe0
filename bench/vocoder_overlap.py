"""A phase vocoder with less frame overlap: what it saves in CPU and what it costs in quality (issue 3).

The project's vocoder (``sound_tf.augment._phase_vocoder``) overlaps its frames by half, with sine windows.
This script compares it with a variant whose hop is a larger fraction ``p / q`` of the window (for example
3/4: a third fewer frames, FFT rows and spectrum values), using square roots of Tukey windows whose squares
overlap-add to 1 at that hop. The variant lives here only; the package does not use it. It measures:

- CPU ms per clip and clips/s of the benchmark's chain (``bench/augment.py``: shift + speed + pitch + gain +
  noise, every transform applied, 5-s 22.05 kHz clips, the training pipeline's ``tf.data`` options), the
  two vocoders alternating pass by pass in this process;
- the error against the exactly transformed signal: ten 3-s gliding harmonic tones (and the same with a
  click train), synthesised again at the shifted pitch or the stretched time; the mean absolute
  difference of 64-band log-mel spectra in dB, floored 60 dB below the true signal's peak, 10 frames at
  each edge left out; librosa's ``time_stretch`` / ``pitch_shift`` (n_fft 1024, hop 256) for scale;
- the distance to librosa's ``time_stretch`` / ``pitch_shift`` (n_fft 1024, hop 512) on 30 FSDD
  recordings resampled to 22.05 kHz (mean absolute difference of ``ln(|STFT| + 1e-4)``, n_fft 512, hop
  128), with librosa at hop 256 against hop 512 for scale. FSDD is read from ``--fsdd DIR`` (default
  ``$SOUND_TF_FSDD`` if set, else ``../shared/datasets/fsdd`` beside the checkout, as ``bench/fsdd.py``);
  skipped, with a message, when it is absent from the default place (an error, before anything is
  measured, when ``--fsdd`` or ``$SOUND_TF_FSDD`` names a folder without it).

Usage: ``python bench/vocoder_overlap.py [--hops 3/4,5/8,9/16] [--pairs 6] [--fsdd DIR] [--tag NAME]``. Writes
``bench/results/vocoder_overlap[_<tag>].json`` (an existing file is not overwritten without ``--force``: the
run is refused before it starts); the CPU comparison uses the first hop.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import result_file  # noqa: E402
from augment import DISTINCT_CLIPS, chain_config, one_pass, ours_dataset, synthesise, write_result  # noqa: E402
from fsdd import DEFAULT_FSDD, add_fsdd_flag, find_recordings, missing_message  # noqa: E402

SAMPLE_RATE_HZ = 22050
TRANSFORMS = (("stretch", 0.85), ("stretch", 1.15), ("pitch", -2.0), ("pitch", 2.0), ("pitch", 1.0))


def tapered_vocoder(hop: Fraction):
    """A drop-in for ``sound_tf.augment._phase_vocoder`` whose hop is ``hop`` (in (1/2, 1)) of the window.

    Frame ``L = q u`` and hop ``H = p u`` for ``hop = p / q``; both windows are ``sin`` over the first and
    last ``T = L - H`` samples and 1 between, so their product overlap-adds to 1 at ``H``. Framing, the
    nearest-frame phase telescoping and the per-frame resampling by the synthesis FFT length are those
    of the package's vocoder; only the overlap and the windows differ.
    """
    import tensorflow as tf

    from sound_tf import augment

    p, q = hop.numerator, hop.denominator

    def window(length, taper):
        n = tf.range(length, dtype=tf.float32)
        edge = tf.minimum(tf.minimum(n, tf.cast(length, tf.float32) - n), tf.cast(taper, tf.float32))
        return tf.sin(edge * (math.pi / 2.0) / tf.cast(taper, tf.float32))  # [length]

    def vocoder(wave, *, duration_factor, frequency_factor, frame_length, hop_length,  # hop_length: unused
                shift_samples=None, shift_mode="roll", gain=None, fit_to=None):
        # The package's vocoder folds a time shift, a gain and a centred crop into its own pass; here
        # they are applied apart, as the augmenter's steps define them.
        if shift_samples is not None:
            wave = augment.time_shift(wave, shift_samples, mode=shift_mode)
        out = stretched(wave, duration_factor, frequency_factor, frame_length)
        if gain is not None:
            out = out * tf.cast(gain, tf.float32)
        return out if fit_to is None else augment.fit_length(out, fit_to)

    def stretched(wave, duration_factor, frequency_factor, frame_length):
        n = tf.shape(wave)[0]
        frequency_factor = tf.cast(frequency_factor, tf.float32)
        duration_factor = tf.cast(duration_factor, tf.float32)
        in_frame, out_frame = augment._vocoder_lengths(frame_length, q, frequency_factor)  # L, L': multiples of q
        in_hop, out_hop = p * (in_frame // q), p * (out_frame // q)
        in_taper, out_taper = in_frame - in_hop, out_frame - out_hop
        rate = 1.0 / (duration_factor * tf.cast(in_frame, tf.float32) / tf.cast(out_frame, tf.float32))
        length = augment._scaled_length(n, 1.0 / duration_factor)
        out_frames = (length + out_hop - 1) // out_hop + 1
        idx = tf.cast(tf.round(tf.range(out_frames, dtype=tf.float32) * rate), tf.int32)  # nearest input frame
        frames = idx[-1] + 2
        samples = (frames + 1) * in_hop  # frame t: hop-long row t and the first taper of row t + 1
        padded = tf.pad(wave, [[in_taper, tf.maximum(samples - n - in_taper, 0)]])
        rows = tf.reshape(padded[:samples], [-1, in_hop])  # [frames + 1, H]
        framed = tf.concat([rows[:-1], rows[1:, :in_taper]], axis=1)  # [frames, L]
        spec = tf.signal.rfft(framed * window(in_frame, in_taper), tf.expand_dims(in_frame, 0))
        spec = spec[:, :tf.minimum(out_frame // 2 + 1, tf.shape(spec)[1])]
        jumps = tf.not_equal(idx[1:] - idx[:-1], 1)
        steps = tf.cast(tf.where(jumps)[:, 0], tf.int32)
        turn = tf.gather(spec, tf.gather(idx, steps) + 1) * tf.math.conj(tf.gather(spec, tf.gather(idx, steps + 1)))
        correction = tf.cumsum(tf.pad(tf.math.atan2(tf.math.imag(turn), tf.math.real(turn)), [[0, 1], [0, 0]]),
                               axis=0, exclusive=True)
        scale = tf.cast(out_frame, tf.float32) / tf.cast(in_frame, tf.float32)
        rotation = tf.complex(scale * tf.cos(correction), scale * tf.sin(correction))
        so_far = tf.pad(tf.cumsum(tf.cast(jumps, tf.int32)), [[1, 0]])
        synthesised = tf.signal.irfft(tf.gather(spec, idx) * tf.gather(rotation, so_far),
                                      tf.expand_dims(out_frame, 0))  # [out_frames, L']
        w = window(out_frame, out_taper)
        # Output hop c: frame c's samples [T', L'), the last T' of them overlap-added with frame c + 1's first T'.
        flat = synthesised[:-1, out_taper:out_hop]
        overlap = synthesised[:-1, out_hop:] * w[out_hop:] + synthesised[1:, :out_taper] * w[:out_taper]
        return tf.reshape(tf.concat([flat, overlap], axis=1), [-1])[:length]

    return vocoder


def transformed(kind: str, value: float, wave: np.ndarray, vocoder) -> np.ndarray:
    """``wave`` stretched (rate ``value``, length changed) or pitch-shifted (``value`` semitones) with ``vocoder``."""
    from sound_tf import augment

    saved, augment._phase_vocoder = augment._phase_vocoder, vocoder or augment._phase_vocoder
    try:
        if kind == "stretch":
            return augment.time_stretch(wave, value, keep_length=False).numpy()
        return augment.pitch_shift(wave, value, sample_rate_hz=SAMPLE_RATE_HZ).numpy()
    finally:
        augment._phase_vocoder = saved


def librosa_transformed(kind: str, value: float, wave: np.ndarray, hop: int) -> np.ndarray:
    import librosa

    if kind == "stretch":
        return librosa.effects.time_stretch(wave, rate=value, n_fft=1024, hop_length=hop)
    return librosa.effects.pitch_shift(wave, sr=SAMPLE_RATE_HZ, n_steps=value, n_fft=1024, hop_length=hop)


def truth_cases(with_clicks: bool) -> list[tuple[np.ndarray, dict]]:
    """Ten 3-s gliding tones (3 harmonics, optionally clicks) and, per transform, the exactly transformed signal."""
    rng = np.random.default_rng(1)
    samples = 3 * SAMPLE_RATE_HZ
    cases = []
    for _ in range(10):
        f0, glide, period = rng.uniform(150, 1500), rng.uniform(-20, 20), int(SAMPLE_RATE_HZ * rng.uniform(0.1, 0.5))

        def signal(count, *, pitch=1.0, rate=1.0):
            t = np.arange(count) / SAMPLE_RATE_HZ  # a stretch by `rate` plays the input's time t * rate at t
            phase = 2 * np.pi * pitch * (f0 * t + glide * rate * t ** 2)
            out = 0.2 * sum(np.sin(k * phase) / k for k in range(1, 4))
            if with_clicks:
                positions = (np.arange(0, samples, period) / rate).astype(int)
                out[positions[positions < count]] += 0.5
            return out

        truths = {(kind, value): (signal(int(round(samples / value)), rate=value) if kind == "stretch"
                                  else signal(samples, pitch=2 ** (value / 12)))
                  for kind, value in TRANSFORMS}
        cases.append((signal(samples).astype(np.float32), truths))
    return cases


def logmel_error_db(estimate: np.ndarray, truth: np.ndarray) -> float:
    import librosa

    count = min(len(estimate), len(truth))
    spectra = [librosa.feature.melspectrogram(y=np.asarray(x[:count], np.float64), sr=SAMPLE_RATE_HZ, n_fft=1024,
                                              hop_length=256, n_mels=64) for x in (estimate, truth)]
    floor = 1e-6 * spectra[1].max()  # 60 dB below the true signal's peak
    est_db, truth_db = (10 * np.log10(np.maximum(s, floor))[:, 10:-10] for s in spectra)
    return float(np.mean(np.abs(est_db - truth_db)))


def log_magnitude_distance(a: np.ndarray, b: np.ndarray) -> float:
    import librosa

    la, lb = (np.log(np.abs(librosa.stft(x, n_fft=512, hop_length=128)) + 1e-4) for x in (a, b))
    frames = min(la.shape[1], lb.shape[1])
    return float(np.mean(np.abs(la[:, :frames] - lb[:, :frames])))


def against_truth(vocoders: dict) -> dict:
    result = {}
    for with_clicks in (False, True):
        cases = truth_cases(with_clicks)
        table = {}
        for kind, value in TRANSFORMS:
            row = {name: float(np.mean([logmel_error_db(transformed(kind, value, wave, vocoder), truths[(kind, value)])
                                        for wave, truths in cases])) for name, vocoder in vocoders.items()}
            row["librosa, hop 256"] = float(np.mean([logmel_error_db(librosa_transformed(kind, value, wave, 256),
                                                                     truths[(kind, value)]) for wave, truths in cases]))
            table[f"{kind} {value:+g}"] = {key: round(v, 3) for key, v in row.items()}
            print("tones" + (" with clicks" if with_clicks else ""), kind, value, table[f"{kind} {value:+g}"],
                  flush=True)
        result["tones with clicks" if with_clicks else "tones"] = table
    return result


def against_librosa(vocoders: dict, fsdd: str) -> dict | str:
    """The distances to librosa on 30 recordings of FSDD at ``fsdd`` (a message instead if it is absent)."""
    import soundfile
    import soxr

    found = find_recordings(fsdd)
    if found is None:
        message = f"{missing_message(fsdd)}: the comparison with librosa on real recordings is skipped"
        print(message)
        return message
    files = sorted(found.glob("*.wav"))
    clips = []
    for path in files[::max(1, len(files) // 30)][:30]:
        wave, rate = soundfile.read(path, dtype="float32")
        clips.append(soxr.resample(wave, rate, SAMPLE_RATE_HZ).astype(np.float32))
    table = {}
    for kind, value in TRANSFORMS:
        references = [librosa_transformed(kind, value, clip, 512) for clip in clips]
        row = {name: float(np.mean([log_magnitude_distance(transformed(kind, value, clip, vocoder), ref)
                                    for clip, ref in zip(clips, references)])) for name, vocoder in vocoders.items()}
        row["librosa, hop 256 against 512"] = float(np.mean(
            [log_magnitude_distance(librosa_transformed(kind, value, clip, 256), ref)
             for clip, ref in zip(clips, references)]))
        table[f"{kind} {value:+g}"] = {key: round(v, 3) for key, v in row.items()}
        print("FSDD against librosa", kind, value, table[f"{kind} {value:+g}"], flush=True)
    return table


def chain_cost(hop: Fraction, pairs: int) -> dict:
    """The benchmark's chain with the package's vocoder and with the tapered one, passes alternating."""
    from sound_tf import augment

    _, _, every = chain_config(REPO)
    clips = synthesise(DISTINCT_CLIPS, every.audio.clip_samples, every.audio.sample_rate_hz)
    datasets = {"half overlap (the package)": ours_dataset(every, clips, 960, single_thread_ops=False,
                                                           as_training=True)}
    saved, augment._phase_vocoder = augment._phase_vocoder, tapered_vocoder(hop)
    try:  # the map function is traced when the dataset is built
        datasets[f"hop {hop}"] = ours_dataset(every, clips, 960, single_thread_ops=False, as_training=True)
    finally:
        augment._phase_vocoder = saved
    passes = {name: [] for name in datasets}
    for i in range(pairs):
        for name in (list(datasets) if i % 2 == 0 else list(datasets)[::-1]):
            passes[name].append(one_pass(datasets[name]))
    result = {name: {"clips_per_s_median": round(float(np.median([r for r, _ in rows])), 1),
                     "cpu_ms_per_clip_median": round(float(np.median([c for _, c in rows])), 3),
                     "passes": [[round(r, 1), round(c, 3)] for r, c in rows]} for name, rows in passes.items()}
    print("chain", {name: (v["clips_per_s_median"], v["cpu_ms_per_clip_median"]) for name, v in result.items()},
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hops", default="3/4,5/8,9/16", help="hop fractions of the window, each in (1/2, 1)")
    parser.add_argument("--pairs", type=int, default=6, help="alternating pairs of passes for the CPU comparison")
    add_fsdd_flag(parser)
    result_file.add_flags(parser, "vocoder_overlap.json")
    args = parser.parse_args()
    hops = [Fraction(h) for h in args.hops.split(",")]
    if not all(Fraction(1, 2) < h < 1 for h in hops):
        parser.error(f"every hop must lie strictly between 1/2 and 1, got {args.hops}")
    if args.fsdd != str(DEFAULT_FSDD) and find_recordings(args.fsdd) is None:  # named, not the default place
        raise SystemExit(missing_message(args.fsdd))
    result_path = result_file.claim("vocoder_overlap.json", args.tag, force=args.force)

    import librosa
    import tensorflow as tf

    probe = np.random.default_rng(0).standard_normal(5 * SAMPLE_RATE_HZ).astype(np.float32)
    vocoders = {"half overlap (the package)": None, **{f"hop {h}": tapered_vocoder(h) for h in hops}}
    identity = {name: float(np.max(np.abs(vocoder(tf.constant(probe), duration_factor=1.0, frequency_factor=1.0,
                                                  frame_length=1024, hop_length=512).numpy() - probe)))
                for name, vocoder in vocoders.items() if vocoder is not None}  # the variants only
    print("at rate 1, largest difference from the input:", identity, flush=True)
    result = {
        "chain_cost": chain_cost(hops[0], args.pairs),
        "logmel_error_db_against_exact_transform": against_truth(vocoders),
        "log_magnitude_distance_to_librosa_on_fsdd": against_librosa(vocoders, args.fsdd),
        "rate_one_max_abs_difference": identity,
        "cpu_count": os.cpu_count(), "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "versions": {"tensorflow": tf.__version__, "librosa": librosa.__version__, "python": platform.python_version()},
    }
    write_result(result_path.name, result)


if __name__ == "__main__":
    main()
