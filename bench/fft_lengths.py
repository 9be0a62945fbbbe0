"""What an FFT length costs, and what the phase vocoder's choice of lengths saves (issue 3).

The phase vocoder (``sound_tf.augment._phase_vocoder``) shifts pitch by inverting each frame with an FFT of
another length, so every frequency factor needs a pair of lengths (analysis ``L``, synthesis ``L'``) whose
ratio is the factor. Many pairs realise a factor to within a cent or two, at different costs: TensorFlow's
FFT (ducc) has its own passes for small radices and a generic pass for larger primes.
``sound_tf.augment._vocoder_length_table`` picks the cheapest pair within ``VOCODER_TOLERANCE_CENTS`` by a
cost class per length (its largest prime factor). This script measures, on one thread:

- the cost per sample of the forward (``RFFT``) and inverse (``IRFFT``) FFT of a 5-s 22.05 kHz clip's frames
  (half-overlapping, so about ``2 * 110,250 / L`` rows) for every length from ``--low`` to ``--high`` with no
  prime factor above 23, as the minimum over ``--repeats`` timings of ``--calls`` calls in a
  ``tf.while_loop``; and the medians per largest prime factor;
- for the benchmark chain's frequency factors (speed 0.9-1.1 times pitch +-2 semitones, uniform), the mean
  FFT time per sample pair and the distance in cents of the realised factor, for the nearest pair
  overall (of pairs with equal ratios, the cheapest: ``_vocoder_length_pairs`` keeps one per ratio) and for
  the pair the table picks, priced by those measured costs.

The chain's pairs use lengths of about 750-1400 samples: a ``--low`` / ``--high`` range that leaves out every
length of them measures the FFT lengths only (the comparison of the two choices is skipped, with a message);
one that leaves out some prices the pairs it covers (``priced_share``).

Usage: ``python bench/fft_lengths.py [--low 500] [--high 2000] [--calls 6] [--repeats 3] [--tag NAME]``. Writes
``bench/results/fft_lengths[_<tag>].json`` (an existing file is not overwritten without ``--force``: the run is
refused before it starts).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_NUM_INTRAOP_THREADS"] = "1"  # every FFT on the calling thread, as in a process that only augments
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import result_file  # noqa: E402
from augment import write_result  # noqa: E402

CLIP_SAMPLES = 5 * 22050
FRAME_LENGTH, OVERLAP = 1024, 2  # the esc50 recipe's vocoder window at 22.05 kHz, half-overlapping


def measure(lengths: list[int], calls: int, repeats: int) -> dict[int, tuple[float, float]]:
    """``{length: (forward, inverse)}`` in ns per sample, minimum over ``repeats`` timings."""
    import tensorflow as tf

    @tf.function
    def loop(x, n, k, inverse: bool):
        def body(i, total):
            if inverse:
                y = tf.raw_ops.IRFFT(input=x, fft_length=tf.expand_dims(n, 0))[0, 0]
            else:
                y = tf.math.real(tf.raw_ops.RFFT(input=x, fft_length=tf.expand_dims(n, 0))[0, 0])
            return i + 1, total + y
        return tf.while_loop(lambda i, total: i < k, body, (0, 0.0))[1]

    rng = np.random.default_rng(0)
    costs = {}
    for length in lengths:
        rows = int(CLIP_SAMPLES / (length / OVERLAP))
        bins = length // 2 + 1
        real = tf.constant(rng.standard_normal((rows, length)), tf.float32)
        spectrum = tf.complex(tf.constant(rng.standard_normal((rows, bins)), tf.float32),
                              tf.constant(rng.standard_normal((rows, bins)), tf.float32))
        result = []
        for inverse, x in ((False, real), (True, spectrum)):
            loop(x, length, tf.constant(1), inverse)  # trace and warm up
            timings = []
            for _ in range(repeats):
                started = time.process_time()
                loop(x, length, tf.constant(calls), inverse)
                timings.append((time.process_time() - started) / calls)
            result.append(min(timings) * 1e9 / (rows * length))
        costs[length] = (result[0], result[1])
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--low", type=int, default=500,
                        help="shortest FFT length measured, in samples (the chain's pairs use about 750-1400)")
    parser.add_argument("--high", type=int, default=2000, help="longest FFT length measured, in samples")
    parser.add_argument("--calls", type=int, default=6,
                        help="FFTs of a clip's frames per timing (one tf.while_loop; the time per call is kept)")
    parser.add_argument("--repeats", type=int, default=3, help="timings per length and direction; the minimum is kept")
    parser.add_argument("--factors", type=int, default=5000, help="frequency factors drawn for the chain")
    result_file.add_flags(parser, "fft_lengths.json")
    args = parser.parse_args()
    for name in ("low", "calls", "repeats", "factors"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.high < args.low:
        parser.error(f"--high ({args.high}) must not be below --low ({args.low})")
    result_path = result_file.claim("fft_lengths.json", args.tag, force=args.force)

    import tensorflow as tf

    from sound_tf import augment

    lengths = [n for n in range(args.low + args.low % 2, args.high + 1, 2) if augment._fft_friendly(n)]
    if not lengths:
        parser.error(f"no even length from {args.low} to {args.high} has only prime factors up to 23: "
                     "nothing to measure")
    costs = measure(lengths, args.calls, args.repeats)
    by_prime: dict[int, list[tuple[float, float]]] = {}
    for length, cost in costs.items():
        by_prime.setdefault(augment._largest_prime_factor(length), []).append(cost)
    medians = {p: [round(float(v), 2) for v in np.median(np.array(c), axis=0)] for p, c in sorted(by_prime.items())}
    for p, (forward, inverse) in medians.items():
        print(f"largest prime factor {p:2d}: {len(by_prime[p]):3d} lengths, forward {forward:.2f}, "
              f"inverse {inverse:.2f} ns per sample")

    rng = np.random.default_rng(1)
    factors = rng.uniform(0.9, 1.1, args.factors) * 2 ** (rng.uniform(-2, 2, args.factors) / 12)
    targets = np.log(factors)
    log_ratios, analysis, synthesis = augment._vocoder_length_pairs(FRAME_LENGTH, OVERLAP)
    nearest = np.searchsorted((log_ratios[:-1] + log_ratios[1:]) / 2, targets)
    bounds, pairs = augment._vocoder_length_table(FRAME_LENGTH, OVERLAP)
    picked = pairs[np.searchsorted(bounds, targets.astype(np.float32), side="right")]
    cents = 1200 / math.log(2)

    def summary(a: np.ndarray, s: np.ndarray) -> dict:
        priced = [costs[int(x)][0] + costs[int(y)][1] for x, y in zip(a, s) if int(x) in costs and int(y) in costs]
        error = np.abs(np.log(a / s) - targets) * cents
        return {"fft_ns_per_sample_pair_mean": round(float(np.mean(priced)), 3) if priced else None,
                "priced_share": len(priced) / len(a),
                "cents_error_mean": round(float(error.mean()), 3), "cents_error_max": round(float(error.max()), 3),
                "distinct_analysis_lengths": int(len(set(a.tolist())))}

    choices = {"nearest pair": summary(analysis[nearest], synthesis[nearest]),
               "cheapest within the tolerance (the table)": summary(picked[:, 0], picked[:, 1])}
    for name, row in choices.items():
        print(f"{name}: {row}")
    used = np.concatenate([analysis[nearest], synthesis[nearest], picked[:, 0], picked[:, 1]])
    if all(row["priced_share"] == 1 for row in choices.values()):
        change = (choices["cheapest within the tolerance (the table)"]["fft_ns_per_sample_pair_mean"]
                  / choices["nearest pair"]["fft_ns_per_sample_pair_mean"] - 1)
        print(f"FFT time per clip for the chain's factors: {change:+.1%}")
    else:  # the two means would be over different pairs, or over none: not comparable
        change = None
        print(f"FFT time per clip for the chain's factors: not compared, since --low {args.low} / --high {args.high} "
              f"leave out lengths the chain's pairs use ({int(used.min())}-{int(used.max())}); "
              f"priced shares {', '.join(format(row['priced_share'], '.0%') for row in choices.values())}")
    write_result(result_path.name, {
        "what": "ns per sample of RFFT / IRFFT over a 5-s 22.05 kHz clip's half-overlapping frames, one thread",
        "low": args.low, "high": args.high,
        "calls": args.calls, "repeats": args.repeats, "tolerance_cents": augment.VOCODER_TOLERANCE_CENTS,
        "medians_by_largest_prime_factor": medians, "chain_factors": args.factors, "choices": choices,
        "chain_lengths": [int(used.min()), int(used.max())],
        "fft_time_change": round(change, 4) if change is not None else None,
        "per_length": {str(n): [round(c[0], 3), round(c[1], 3)] for n, c in costs.items()},
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu_count": os.cpu_count(),
        "versions": {"tensorflow": tf.__version__, "python": platform.python_version()},
    })


if __name__ == "__main__":
    main()
