"""Input pipeline throughput and whether training is input-bound (issue 2's bars), in one run.

(a) the original article's loop: ``librosa.load`` (44.1 kHz -> 22.05 kHz) then ``melspectrogram`` +
    ``power_to_db`` per clip;
(b) our first epoch: decode-once into the cache (soundfile + soxr), then the tf.data pass that reads the
    cached WAVs, crops, batches and computes log-mel features with the model's own frontend;
(c) our later epochs: the same pass served from the in-memory cache. Our model takes waveforms (the
    log-mel frontend is its first layer), so its model-ready batches are waveform batches; the same
    batches with log-mel features computed in the pipeline (a parallel ``tf.data`` map of the model's
    own frontend) are reported too, for a like-for-like comparison with the article's features.
Then the CPU time per clip of the training pipeline alone (later epochs, no model) without augmentation,
with the waveform augmenter, with mixup and with both; and steps/s of training the default model with the
real pipeline (without and with augmentation) against the same batches held in memory.

Timing training: each measurement is one ``model.fit`` of ``--train-steps`` steps, timed by a callback
from the end of its second step to the end of its last (so tracing, iterator start-up and the fit's
teardown, which on these VMs sometimes stalls for seconds, are excluded); real and in-memory
measurements alternate for ``--rounds`` rounds and the medians are compared, because the machine's
speed drifts by +-30% from minute to minute. The quartiles of the rounds' own ratios (each round's pair
measured seconds apart) show how far one comparison can be trusted, and the process's CPU time over the
same span, divided by the wall time, how many cores training kept busy. Each timed fit runs with
training's :class:`sound_tf.trainer.InputThreadPriority` callback (the input pipeline's threads at a
lower priority than the step's; ``--input-niceness 0`` measures them at equal priority).

Source files: 5-s 44.1 kHz 16-bit WAVs synthesised here (tones, chirps and noise), features as the
esc50 recipe (22.05 kHz, 5 s, 64 mel bins), written to a temporary folder that is removed when the script
ends. Usage: ``python bench/pipeline.py [--clips 240] [--rounds 9] [--tag NAME]`` (the README's runs use
``--rounds 15``); ``--set augment.rescale_domain=waveform --tag rescale_waveform`` measures another
augmentation setting. Writes ``bench/results/pipeline[_<tag>].json`` (or ``--result``); an existing file is not
overwritten without ``--force``: the run is refused before it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

import result_file  # noqa: E402

SOURCE_RATE = 44100


def synthesise(folder: Path, clips: int, seconds: float = 5.0, rate_hz: int = SOURCE_RATE) -> list[Path]:
    """``clips`` 16-bit WAVs of chirps in noise as ``folder/c<class>/clip_<i>.wav``, 10 classes (seeded)."""
    rng = np.random.default_rng(0)
    paths = []
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    for i in range(clips):
        f0 = rng.uniform(100, 4000)
        wave = 0.3 * np.sin(2 * np.pi * (f0 + rng.uniform(-50, 50) * t) * t) + 0.05 * rng.standard_normal(t.size)
        path = folder / f"c{i % 10}" / f"clip_{i:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, wave.astype(np.float32), rate_hz, subtype="PCM_16")
        paths.append(path)
    return paths


def article_loop(paths: list[Path], sample_rate_hz: int) -> float:
    import librosa
    librosa.feature.melspectrogram(y=np.zeros(2048, np.float32), sr=sample_rate_hz)  # warm-up imports
    started = time.perf_counter()
    for path in paths:
        y, sr = librosa.load(path, sr=sample_rate_hz)
        librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=128))
    return len(paths) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=240)
    parser.add_argument("--article-clips", type=int, default=60)
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=9,
                        help="alternating rounds of timed fits, real pipeline and in memory (the README's runs: 15)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. augment.pitch_probability=0 (as python -m sound_tf.train)")
    parser.add_argument("--result", default="pipeline.json", help="file name under bench/results/")
    parser.add_argument("--input-niceness", type=int, default=None,
                        help="niceness added to the input pipeline's threads in the timed fits (default: "
                             "training's, sound_tf.trainer.INPUT_THREAD_NICENESS; 0: equal priority)")
    result_file.add_flags(parser, "pipeline.json")
    args = parser.parse_args()
    result_path = result_file.claim(args.result, args.tag, force=args.force)
    with tempfile.TemporaryDirectory(prefix="sound_tf_bench_") as work:  # clips and cache: removed however it ends
        measure(args, Path(work), result_path)


def measure(args: argparse.Namespace, work: Path, result_path: Path) -> None:
    """Every measurement, on clips synthesised under ``work``; the result written to ``result_path``."""
    import keras
    import tensorflow as tf
    from sound_tf import augment, pipeline, trainer
    from sound_tf.audio import DecodeCache
    from sound_tf.config import apply_overrides, config_from_recipe, parse_set_flags
    from sound_tf.frontend import feature_extractor
    from sound_tf.models import build_model

    paths = synthesise(work / "data", args.clips)
    labels = [int(p.parent.name[1:]) for p in paths]
    config = apply_overrides(config_from_recipe(REPO / "pipelines" / "esc50.toml"),
                             {"labels": [f"c{i}" for i in range(10)], "data.cache_dir": str(work / "cache"),
                              **parse_set_flags(args.set)})
    rate = config.audio.sample_rate_hz

    a = article_loop(paths[:args.article_clips], rate)

    features = feature_extractor(config)
    featurise = tf.function(lambda x: features(x, training=False), reduce_retracing=True)

    def one_pass(ds, with_features: bool = True) -> tuple[int, float]:
        if with_features:  # the model's own frontend as a parallel map: batches of [batch, frames, mels]
            ds = ds.map(lambda x, y: (featurise(x), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
        started, count = time.perf_counter(), 0
        for batch, _ in ds:
            count += int(batch.shape[0])
        return count, time.perf_counter() - started

    started = time.perf_counter()
    cache = DecodeCache(work / "cache", sample_rate_hz=rate)
    cached = cache.build([str(p) for p in paths]).cached
    decode_seconds = time.perf_counter() - started
    cached_paths = [str(cached[str(p)]) for p in paths]
    ds = pipeline.training_dataset(cached_paths, labels, config)
    n, first = one_pass(ds)
    b = n / (decode_seconds + first)
    later = [one_pass(ds) for _ in range(2)]
    c = sum(n for n, _ in later) / sum(s for _, s in later)
    waves_only = [one_pass(ds, with_features=False) for _ in range(2)]
    c_waves = sum(n for n, _ in waves_only) / sum(s for _, s in waves_only)

    # -- CPU per clip of the training pipeline alone (no model), by what it does -------------------------
    def cpu_ms_per_clip(ds, passes: int = 3) -> float:
        """Median CPU ms per clip (every thread of this process) of ``passes`` spans of 4 epochs of the endless
        ``ds``, read from one iterator as training streams it, after a warm-up epoch that fills the cache."""
        per_epoch = pipeline.batches_per_epoch(len(cached_paths), config.train.batch_size)
        batches = iter(ds)
        for _ in range(per_epoch):
            next(batches)
        values = []
        for _ in range(passes):
            started, count = time.process_time(), 0
            for _ in range(4 * per_epoch):
                count += int(next(batches)[0].shape[0])
            values.append((time.process_time() - started) * 1000 / count)
        return float(np.median(values))

    waveform_augmenter, mixup = augment.training_augmenter(config), augment.make_mixup(config)  # as training maps them
    stages = {"no augmentation": {}, "waveform augmenter": {"waveform_augmenter": waveform_augmenter},
              "mixup": {"mixup": mixup},
              "waveform augmenter + mixup (training)": {"waveform_augmenter": waveform_augmenter, "mixup": mixup}}
    stage_cpu = {name: cpu_ms_per_clip(pipeline.training_dataset(cached_paths, labels, config, epochs=None, **kwargs))
                 for name, kwargs in stages.items()}

    # -- input-bound check: steps/s with the real (augmented) pipeline vs the same batches in memory ----
    keras.utils.set_random_seed(0)
    real = pipeline.training_dataset(  # endless, each epoch its own draws, as the trainer streams it
        cached_paths, labels, config,
        waveform_augmenter=waveform_augmenter, mixup=mixup, epochs=None)
    model = build_model(config, **augment.model_augment_layers(config))
    model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    steps = args.train_steps
    memory = pipeline.in_memory_copy(real, steps)

    class StepClock(keras.callbacks.Callback):
        """Times a fit from the end of its second step to the end of its last (wall and process CPU)."""

        def on_train_batch_end(self, batch: int, logs=None) -> None:
            if batch == 1:
                self.started, self.cpu_started = time.perf_counter(), time.process_time()
            self.steps, self.ended, self.cpu_ended = batch - 1, time.perf_counter(), time.process_time()

    clock = StepClock()
    niceness = trainer.INPUT_THREAD_NICENESS if args.input_niceness is None else args.input_niceness

    def steps_per_second(ds) -> tuple[float, float]:
        """Steps/s of one fit, and the cores it kept busy (process CPU time / wall time)."""
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0,
                  callbacks=[trainer.InputThreadPriority(niceness), clock])  # as training runs its fits
        wall = clock.ended - clock.started
        return clock.steps / wall, (clock.cpu_ended - clock.cpu_started) / wall

    def compare(real_ds, memory_ds) -> dict[str, float]:
        """Medians of each, measured in alternation so that passing load falls on both alike."""
        real_ds, memory_ds = real_ds.repeat(), memory_ds.repeat()
        for ds in (real_ds, memory_ds):
            model.fit(ds, steps_per_epoch=5, epochs=1, verbose=0)  # warm-up (tracing, caches)
        rounds = [(*steps_per_second(real_ds), *steps_per_second(memory_ds)) for _ in range(args.rounds)]
        real_sps, real_cores, memory_sps, memory_cores = (float(np.median(column)) for column in zip(*rounds))
        ratios = [r / m for r, _, m, _ in rounds]  # each round's pair, measured a few seconds apart
        return {"pipeline": real_sps, "memory": memory_sps, "pipeline_cores": real_cores,
                "memory_cores": memory_cores, "ratio_q25": float(np.percentile(ratios, 25)),
                "ratio_q75": float(np.percentile(ratios, 75))}

    augmented = compare(real, memory)
    with_pipeline, in_memory = augmented["pipeline"], augmented["memory"]
    plain = pipeline.training_dataset(cached_paths, labels, config, epochs=None)  # no augmentation
    unaugmented = compare(plain, pipeline.in_memory_copy(plain, steps))
    with_plain, in_memory_plain = unaugmented["pipeline"], unaugmented["memory"]

    result = {
        "clips": args.clips, "config": "pipelines/esc50.toml (22.05 kHz, 5 s, 64 mels)", "overrides": args.set,
        "a_article_clips_per_s": round(a, 1),
        "b_first_epoch_clips_per_s": round(b, 1), "decode_once_seconds": round(decode_seconds, 2),
        "c_later_epochs_clips_per_s": round(c, 1), "c_over_a": round(c / a, 1),
        "c_waveform_batches_clips_per_s": round(c_waves, 1), "c_waveform_batches_over_a": round(c_waves / a, 1),
        "train_steps_per_s_no_augment_pipeline": round(with_plain, 3),
        "train_steps_per_s_no_augment_in_memory": round(in_memory_plain, 3),
        "no_augment_pipeline_over_memory": round(with_plain / in_memory_plain, 3),
        "train_steps_per_s_pipeline": round(with_pipeline, 3), "train_steps_per_s_in_memory": round(in_memory, 3),
        "pipeline_over_memory": round(with_pipeline / in_memory, 3), "batch_size": config.train.batch_size,
        "per_round_ratio_quartiles": {"no augmentation": [round(unaugmented["ratio_q25"], 3),
                                                          round(unaugmented["ratio_q75"], 3)],
                                      "augmentation": [round(augmented["ratio_q25"], 3),
                                                       round(augmented["ratio_q75"], 3)]},
        "cores_busy_median": {"no augmentation": {"pipeline": round(unaugmented["pipeline_cores"], 2),
                                                  "memory": round(unaugmented["memory_cores"], 2)},
                              "augmentation": {"pipeline": round(augmented["pipeline_cores"], 2),
                                               "memory": round(augmented["memory_cores"], 2)}},
        "train_steps_per_measurement": steps, "rounds": args.rounds, "input_thread_niceness": niceness,
        "pipeline_cpu_ms_per_clip": {name: round(value, 3) for name, value in stage_cpu.items()},
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"| (a) article loop | {a:.0f} clips/s |\n| (b) our first epoch (decode once + tf.data) | {b:.0f} clips/s |\n"
          f"| (c) our later epochs, log-mel computed in the pipeline too | {c:.0f} clips/s ({c / a:.1f}x (a)) |\n"
          f"| (c) our later epochs, waveform batches (the model computes log-mel) | {c_waves:.0f} clips/s "
          f"({c_waves / a:.1f}x (a)) |\n"
          f"| training steps/s without augmentation, pipeline vs in memory | {with_plain:.2f} vs "
          f"{in_memory_plain:.2f} ({with_plain / in_memory_plain:.2f}x) |\n"
          f"| training steps/s with augmentation, pipeline vs in memory | {with_pipeline:.2f} vs {in_memory:.2f} "
          f"({with_pipeline / in_memory:.2f}x; rounds' quartiles {augmented['ratio_q25']:.2f}-"
          f"{augmented['ratio_q75']:.2f}; cores busy {augmented['pipeline_cores']:.2f} vs "
          f"{augmented['memory_cores']:.2f}) |")
    print("\n| training pipeline alone (no model), later epochs | CPU ms per clip |\n|---|---|")
    for name, value in stage_cpu.items():
        print(f"| {name} | {value:.3f} |")


if __name__ == "__main__":
    main()
