"""Waveform augmentation throughput: ours inside tf.data against audiomentations, in one run (issue 3's bar).

5-s clips at 22.05 kHz (the esc50 recipe) go through shift + speed + pitch + gain + noise, every transform
applied (probability 1):

- ours: ``sound_tf.augment.make_waveform_augmenter`` mapped over a ``tf.data`` dataset
  (``num_parallel_calls=AUTOTUNE``, batched by 32, prefetched), with one intra-op thread per map call
  (the examples themselves run in parallel on every core), with that and tf.data's autotuner off (one
  call per core: the options of ``sound_tf.pipeline``'s training pipeline), with TensorFlow's default
  threading, and with the training pipeline's options in a child process whose intra-op thread pool
  has one thread (a process that only augments: TensorFlow's FFT kernels hand part of every FFT to the
  process's intra-op pool whatever tf.data's ``max_intra_op_parallelism`` says, and with two examples
  in flight on two cores those hand-offs cost thread switches and work stealing),
  speed and pitch acting on the waveform (``augment.rescale_domain = "waveform"``); also the same chain
  plus time stretch, and the recipe's default probabilities as training runs them (speed / stretch /
  pitch on the log-mel features in the model: the ``tf.data`` part, then the model layer's own cost per
  clip, :class:`sound_tf.augment.FeatureRescale` on batches of 32);
- audiomentations: ``Compose([Shift, PitchShift, TimeStretch, AddGaussianSNR, Gain])`` (all ``p=1``,
  the same ranges) called clip by clip in this process, with its default ``signalsmith_stretch``
  method and with ``librosa_phase_vocoder``. It has no speed perturbation, so TimeStretch stands in.

Then each of our transforms alone (p=1, the others off), as CPU milliseconds per clip over the
augmenter with every transform off (itself reported over a plain pass).

Reports wall-clock clips/s (ours runs on every core, audiomentations on one) and CPU milliseconds per
clip (``time.process_time`` over all threads of this process), which is steadier than wall-clock time
when other jobs share the machine. Writes ``bench/results/augment.json`` and prints markdown table rows.
Usage: ``python bench/augment.py [--clips 960] [--passes 5] [--audiomentations-clips 60]`` (the three chain rows
of ours are medians of ``--passes`` passes).

``python bench/augment.py --against REV [--pairs 4] [--one-thread-pool]`` compares instead our chain
with the training pipeline's options (CPU ms per clip and clips/s, medians of ``--passes`` passes) in
this checkout and in git revision ``REV``, in alternating child processes (the machine's speed drifts
by +-30% within minutes, more than a 10% change; ``--one-thread-pool``: children whose intra-op pool has
one thread), and writes ``bench/results/augment_ab.json``.

``python bench/augment.py --against REV --in-process 200`` compares the same chain (every transform p=1, on
the waveform) in this checkout and in ``REV`` within one process on one thread: both augmenters run
alternately, 32 clips per call of a ``tf.function`` loop, and each pair of calls gives a ratio of CPU
time (median, quartiles, pairs in this checkout's favour); steadier than child processes for changes of a
few per cent. Writes ``bench/results/augment_in_process.json``.

``python bench/augment.py --rounds 10 [--clips 960] [--audiomentations-clips 60]`` measures the bar instead
as paired rounds: in one child process with the usual intra-op pool and in one whose pool has one
thread, audiomentations (its default method) and our chain with the training pipeline's options run
alternately, one after the other in each round, and each round's ratio of clips/s is reported (median,
range, rounds at 50x or more; no best-of-rows selection), in ``bench/results/augment_rounds.json``. A
third configuration runs our chain in one single-threaded pipeline process per core (spawned workers,
each a pass of ``--clips`` clips, all at once), the shape of an augmentation job with worker processes.

``python bench/augment.py --fixed-cost 5 [--clips 960]`` splits our chain's CPU time per clip (the
training pipeline's options) into a part that grows with the clip's length and a fixed part per clip
(op dispatch: what one batched augmenter call per batch could remove at most): the chain and the
augmenter with every transform off, on 0.25-s and 5-s clips, alternately for that many rounds, and the
chain's excess over the idle augmenter extrapolated to a length of zero. Writes
``bench/results/augment_fixed_cost.json``.

``--tag NAME`` adds ``_NAME`` to the results file's name (``augment_rounds_NAME.json``); a results file that
exists already is not overwritten without ``--force`` (the run is refused before it starts), and the
temporary copy of ``REV`` made by ``--against`` is removed when the script ends.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import result_file  # noqa: E402

DISTINCT_CLIPS = 16
CHAIN = ("shift", "speed", "pitch", "gain", "noise")


def write_result(name: str, result: dict) -> None:
    """Write ``result`` as indented JSON to ``bench/results/<name>``."""
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def synthesise(count: int, samples: int, sample_rate_hz: int) -> np.ndarray:
    """``[count, samples]`` float32: a gliding tone with harmonics, a click train and a little noise."""
    rng = np.random.default_rng(0)
    t = np.arange(samples) / sample_rate_hz
    clips = []
    for _ in range(count):
        f0 = rng.uniform(150, 1500)
        phase = 2 * np.pi * (f0 * t + rng.uniform(-20, 20) * t ** 2)
        tone = sum(np.sin(k * phase) / k for k in range(1, 4))
        clicks = (np.arange(samples) % int(sample_rate_hz * rng.uniform(0.1, 0.5)) == 0).astype(float)
        clips.append(0.2 * tone + 0.5 * clicks + 0.02 * rng.standard_normal(samples))
    return np.asarray(clips, np.float32)


def ours_dataset(config, clips: np.ndarray, total: int, *, single_thread_ops: bool, as_training: bool = False,
                 skip_idle: bool = False, calls: int | None = None, seed: int = 0):
    """Our augmenter over ``total`` clips in a batched, prefetched tf.data pipeline, warmed up once.

    ``as_training``: with the options of a training pipeline served from memory
    (:func:`sound_tf.pipeline.training_options`) instead of ``single_thread_ops``. ``skip_idle``: no
    augmenter map when it has nothing to do on the waveform (every transform in the model), as the
    trainer runs it. ``calls``: parallel calls of the map (default: tf.data's choice); ``seed``: of the
    transforms' draws.
    """
    import tensorflow as tf

    from sound_tf.augment import make_waveform_augmenter
    from sound_tf.pipeline import training_options

    augmenter = make_waveform_augmenter(config)
    options = training_options() if as_training else tf.data.Options()
    if single_thread_ops:
        options.threading.max_intra_op_parallelism = 1
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(clips).repeat(), seeds)).take(total)
    if augmenter.acts_on_waveform or not skip_idle:
        ds = ds.map(lambda wave, seed: augmenter(wave, tf.cast(seed % (2 ** 31 - 1), tf.int32)),
                    num_parallel_calls=tf.data.AUTOTUNE if calls is None else calls)
    else:  # as the trainer: no augmenter map when every transform acts in the model
        ds = ds.map(lambda wave, seed: wave)
    ds = ds.batch(32).prefetch(tf.data.AUTOTUNE).with_options(options)
    for _ in ds.take(2):  # warm-up: function instantiation and thread pools
        pass
    return ds


def one_pass(ds) -> tuple[float, float]:
    """(clips/s, CPU ms per clip) of one pass over ``ds`` (:func:`ours_dataset`)."""
    started, cpu, count = time.perf_counter(), time.process_time(), 0
    for batch in ds:
        count += int(batch.shape[0])
    return count / (time.perf_counter() - started), (time.process_time() - cpu) * 1000 / count


def ours(config, clips: np.ndarray, total: int, *, single_thread_ops: bool, passes: int = 1,
         as_training: bool = False, skip_idle: bool = False) -> tuple[float, float]:
    """(clips/s, CPU ms per clip) of our augmenter in a batched, prefetched tf.data pipeline (:func:`ours_dataset`).

    With ``passes > 1``, the medians of that many passes over ``total`` clips (one pipeline, warmed up
    once): on these 2-vCPU machines the phase-vocoder chain's map threads sometimes take twice the CPU
    time for the same work, for seconds at a time, in a process whose two threads run on both vCPUs
    (not in one single-threaded process per core; ``bench/HISTORY.md``, session 18).
    """
    ds = ours_dataset(config, clips, total, single_thread_ops=single_thread_ops, as_training=as_training,
                      skip_idle=skip_idle)
    rates, cpu_ms = zip(*(one_pass(ds) for _ in range(passes)))
    return float(np.median(rates)), float(np.median(cpu_ms))


def chain_config(root: Path, config_module=None):
    """(recipe, every transform on the waveform at the recipe's probabilities, the bench's chain at p=1).

    ``config_module``: the ``config`` module of another copy of the package (default ``sound_tf.config``).
    """
    if config_module is None:
        from sound_tf import config as config_module

    recipe = config_module.config_from_recipe(root / "pipelines" / "esc50.toml")
    base = config_module.apply_overrides(recipe, {f"augment.{name}_domain": "waveform"  # the chain on the waveform
                                                  for name in ("rescale", "shift_gain", "noise", "mixup")})
    return recipe, base, config_module.apply_overrides(base, {f"augment.{name}_probability": 1.0 for name in CHAIN})


def ours_in_child(root: Path, args: argparse.Namespace, *, one_thread_pool: bool) -> tuple[float, float]:
    """:func:`ours` with the training pipeline's options for the package under ``root``, in a child process.

    ``one_thread_pool``: the child's intra-op thread pool has one thread (its size is fixed when
    TensorFlow starts, hence the process of its own).
    """
    command = [sys.executable, __file__, "--child", str(root), "--clips", str(args.clips), "--passes", str(args.passes)]
    done = subprocess.run(command + (["--one-thread-pool"] if one_thread_pool else []), check=True,
                          capture_output=True, text=True)
    rate, cpu_ms = json.loads(done.stdout.strip().splitlines()[-1])
    return rate, cpu_ms


def compare_revisions(args: argparse.Namespace) -> None:
    """``--against``: the chain as training runs it, this checkout against a git revision, alternately."""
    import tempfile

    from pipeline_ab import extract_revision

    with tempfile.TemporaryDirectory(prefix="sound_tf_augment_ab_") as tmp:  # removed however the run ends
        old = Path(tmp) / "old"
        revision = extract_revision(args.against, old)
        roots = {f"revision {revision}": old, "this checkout": REPO}
        runs: dict[str, list[list[float]]] = {name: [] for name in roots}
        for pair in range(args.pairs):
            for name, root in roots.items():
                runs[name].append(list(ours_in_child(root, args, one_thread_pool=args.one_thread_pool)))
                print(f"pair {pair + 1}, {name}: {runs[name][-1][0]:.0f} clips/s, {runs[name][-1][1]:.2f} CPU ms "
                      "per clip", flush=True)
    medians = {name: {"clips_per_s": round(float(np.median([r[0] for r in rs])), 1),
                      "cpu_ms_per_clip": round(float(np.median([r[1] for r in rs])), 3)} for name, rs in runs.items()}
    result = {"against": revision, "pairs": args.pairs, "clips": args.clips, "passes": args.passes,
              "one_thread_intra_op_pool": args.one_thread_pool,
              "chain": "shift + speed + pitch + gain + noise, each p=1, the training pipeline's tf.data options",
              "medians": medians, "runs": runs}
    write_result(args.result, result)
    print(json.dumps(medians, indent=2))


def compare_in_process(args: argparse.Namespace) -> None:
    """``--against REV --in-process PAIRS``: the chain in this checkout and in ``REV``, alternately in one process."""
    import tempfile

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)  # one thread: no hand-offs, steadier timings
    tf.config.threading.set_inter_op_parallelism_threads(1)
    with tempfile.TemporaryDirectory(prefix="sound_tf_augment_ab_") as tmp:  # removed however the run ends
        _compare_in_process(args, Path(tmp) / "old")


def _compare_in_process(args: argparse.Namespace, old_root: Path) -> None:
    """:func:`compare_in_process` with ``REV``'s package extracted under ``old_root``."""
    import importlib
    import importlib.util

    import tensorflow as tf

    from pipeline_ab import extract_revision

    revision = extract_revision(args.against, old_root)
    spec = importlib.util.spec_from_file_location("sound_tf_old", old_root / "sound_tf" / "__init__.py",
                                                  submodule_search_locations=[str(old_root / "sound_tf")])
    sys.modules["sound_tf_old"] = importlib.util.module_from_spec(spec)  # its modules import each other relatively
    spec.loader.exec_module(sys.modules["sound_tf_old"])
    calls_of = 32
    functions = {}
    for name, package, root in ((f"revision {revision}", "sound_tf_old", old_root),
                                ("this checkout", "sound_tf", REPO)):
        _, _, config = chain_config(root, importlib.import_module(f"{package}.config"))
        clips = tf.constant(synthesise(DISTINCT_CLIPS, config.audio.clip_samples, config.audio.sample_rate_hz))
        augmenter = importlib.import_module(f"{package}.augment").make_waveform_augmenter(config)

        @tf.function
        def run(offset, augmenter=augmenter, clips=clips):
            def body(i, total):
                return i + 1, total + augmenter(clips[i % DISTINCT_CLIPS], tf.stack([i + offset, 7]))[0]
            return tf.while_loop(lambda i, total: i < calls_of, body, (0, tf.zeros([])), parallel_iterations=1)[1]

        run(tf.constant(0))  # tracing
        functions[name] = run
    old_name, new_name = functions
    cpu_ms: dict[str, list[float]] = {name: [] for name in functions}
    for pair in range(args.in_process):
        for name in (functions if pair % 2 == 0 else reversed(list(functions))):
            started = time.process_time()
            functions[name](tf.constant(1000 * (pair % 3)))  # three sets of draws, the same for both
            cpu_ms[name].append((time.process_time() - started) * 1000 / calls_of)
    ratios = np.array(cpu_ms[new_name]) / np.array(cpu_ms[old_name])
    result = {"against": revision, "pairs": args.in_process, "clips_per_call": calls_of,
              "chain": "shift + speed + pitch + gain + noise, each p=1, on the waveform; one thread, one process",
              "cpu_ms_per_clip_median": {name: round(float(np.median(v)), 3) for name, v in cpu_ms.items()},
              "ratio_this_checkout_to_revision": {
                  "median": round(float(np.median(ratios)), 3),
                  "quartiles": [round(float(q), 3) for q in np.percentile(ratios, [25, 75])],
                  "pairs_in_favour_of_this_checkout": int(np.sum(ratios < 1))}}
    write_result(args.result, result)
    print(json.dumps(result, indent=2))


def layer_cpu_ms_per_clip(step, features, batches: int) -> float:
    """CPU ms per clip of ``batches`` calls of the traced ``step`` on ``features [batch, frames, mel_bins]``."""
    step(features)  # tracing
    started = time.process_time()
    for _ in range(batches):
        step(features)
    return (time.process_time() - started) * 1000 / (int(features.shape[0]) * batches)


def feature_rescale_ms(config, batches: int = 200) -> dict[str, float]:
    """CPU ms per clip of the model's FeatureRescale layer (training=True) on batches of 32 log-mel features.

    At the recipe's probabilities and with speed, stretch and pitch all applied (p=1).
    """
    import tensorflow as tf

    from sound_tf.augment import feature_rescale_layer
    from sound_tf.config import apply_overrides

    result = {}
    every = apply_overrides(config, {f"augment.{name}_probability": 1.0 for name in ("speed", "stretch", "pitch")})
    for name, cfg in (("recipe probabilities", config), ("speed + stretch + pitch, p=1", every)):
        layer = feature_rescale_layer(cfg)
        features = tf.random.stateless_normal([32, *cfg.feature_shape], seed=[1, 2])
        result[name] = layer_cpu_ms_per_clip(tf.function(lambda x, layer=layer: layer(x, training=True)),
                                             features, batches)
    return result


def feature_augment_ms(config, batches: int = 200) -> dict[str, float]:
    """CPU ms per clip of the model's FeatureAugment layer (training=True) on batches of 32 log-mel features.

    Shift, gain and noise at the recipe's probabilities and all applied (p=1), each with mixup of the
    batch as the training step hands it over (:meth:`sound_tf.augment.FeatureAugment.mixing`).
    """
    import tensorflow as tf

    from sound_tf.augment import feature_augment_layer
    from sound_tf.config import apply_overrides

    on_features = {f"augment.{name}_domain": "features" for name in ("shift_gain", "noise", "mixup")}
    recipe = apply_overrides(config, on_features)
    every = apply_overrides(recipe, {f"augment.{name}_probability": 1.0
                                     for name in ("shift", "gain", "noise", "mixup")})
    result = {}
    for name, cfg in (("recipe probabilities", recipe), ("shift + gain + noise + mixup, p=1", every)):
        layer = feature_augment_layer(cfg)
        features = tf.random.stateless_normal([32, *cfg.feature_shape], seed=[1, 2])

        @tf.function
        def step(x, layer=layer):
            with layer.mixing(layer.draw_mixup(tf.shape(x)[0])):
                return layer(x, training=True)

        result[name] = layer_cpu_ms_per_clip(step, features, batches)
    return result


def audiomentations_chain(augment_config, method: str):
    """The same chain in audiomentations (all ``p=1``, the same ranges), PitchShift / TimeStretch by ``method``."""
    import audiomentations as am

    aug = augment_config
    return am.Compose([
        am.Shift(min_shift=-aug.shift_max_clip_fraction, max_shift=aug.shift_max_clip_fraction,
                 shift_unit="fraction", rollover=True, p=1.0),
        am.PitchShift(min_semitones=aug.pitch_min_semitones, max_semitones=aug.pitch_max_semitones,
                      method=method, p=1.0),
        am.TimeStretch(min_rate=aug.speed_min_factor, max_rate=aug.speed_max_factor, leave_length_unchanged=True,
                       method=method, p=1.0),
        am.AddGaussianSNR(min_snr_db=aug.noise_min_snr_db, max_snr_db=aug.noise_max_snr_db, p=1.0),
        am.Gain(min_gain_db=aug.gain_min_db, max_gain_db=aug.gain_max_db, p=1.0),
    ])


def run_chain(chain, clips: np.ndarray, total: int, sample_rate_hz: int) -> tuple[float, float]:
    """(clips/s, CPU ms per clip) of an audiomentations chain called clip by clip in this process."""
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(total):
        chain(clips[i % len(clips)], sample_rate=sample_rate_hz)
    return total / (time.perf_counter() - started), (time.process_time() - cpu) * 1000 / total


def warm_chain(augment_config, method: str, clips: np.ndarray, sample_rate_hz: int):
    """:func:`audiomentations_chain`, called once on a clip (warm-up)."""
    chain = audiomentations_chain(augment_config, method)
    chain(clips[0], sample_rate=sample_rate_hz)
    return chain


def theirs(clips: np.ndarray, total: int, sample_rate_hz: int, augment_config, method: str) -> tuple[float, float]:
    """(clips/s, CPU ms per clip) of the same chain in audiomentations, one clip at a time."""
    return run_chain(warm_chain(augment_config, method, clips, sample_rate_hz), clips, total, sample_rate_hz)


def alternate(config, clips: np.ndarray, args: argparse.Namespace) -> list[list[float]]:
    """``--rounds``: audiomentations (its default method) and our chain (``config``) with the training
    pipeline's options, measured alternately in this process, ``[[theirs clips/s, theirs CPU ms, ours
    clips/s, ours CPU ms], ...]`` one row per round (one pass of ours, ``--audiomentations-clips`` of theirs)."""
    rate = config.audio.sample_rate_hz
    chain = warm_chain(config.augment, "signalsmith_stretch", clips, rate)  # audiomentations' default method
    ds = ours_dataset(config, clips, args.clips, single_thread_ops=False, as_training=True)
    return [[*run_chain(chain, clips, args.audiomentations_clips, rate), *one_pass(ds)] for _ in range(args.rounds)]


def _pipeline_worker(conn, root: str, clips_per_pass: int, seed: int) -> None:
    """One process of the per-core configuration (spawned): TensorFlow on one thread, one map call.

    Builds the chain's pipeline for the package under ``root`` (:func:`ours_dataset`, the training
    pipeline's options, different draws per ``seed``), says ``"ready"``, then runs one pass per request
    and replies its ``(clips/s, CPU ms per clip)``, until it receives ``None``.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)  # before TensorFlow starts
    tf.config.threading.set_inter_op_parallelism_threads(1)
    sys.path.insert(0, root)
    _, _, every = chain_config(Path(root))
    clips = synthesise(DISTINCT_CLIPS, every.audio.clip_samples, every.audio.sample_rate_hz)
    ds = ours_dataset(every, clips, clips_per_pass, single_thread_ops=False, as_training=True, calls=1, seed=seed)
    conn.send("ready")
    while conn.recv() is not None:
        conn.send(one_pass(ds))


def alternate_per_core(config, clips: np.ndarray, args: argparse.Namespace, root: str) -> list[list[float]]:
    """:func:`alternate` with ours in one single-threaded pipeline process per core (:func:`_pipeline_worker`).

    Each round: audiomentations in this process, then every worker's pass of ``--clips`` clips at once
    (as long as the other configurations' passes, so each pass's start-up weighs the same); ours is the
    clips of all passes over the wall time from the start signal to the last reply, and the workers'
    CPU time per clip.
    """
    import multiprocessing

    rate = config.audio.sample_rate_hz
    chain = warm_chain(config.augment, "signalsmith_stretch", clips, rate)  # audiomentations' default method
    cores = os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: TensorFlow's threads set before it starts
    pipes, workers = [], []
    for seed in range(cores):
        ours_end, worker_end = context.Pipe()
        workers.append(context.Process(target=_pipeline_worker, args=(worker_end, root, args.clips, seed), daemon=True))
        workers[-1].start()
        pipes.append(ours_end)
    for seed, pipe in enumerate(pipes):
        if pipe.recv() != "ready":
            raise RuntimeError(f"pipeline worker {seed} did not start")
    rows = []
    for _ in range(args.rounds):
        theirs_row = run_chain(chain, clips, args.audiomentations_clips, rate)
        started = time.perf_counter()
        for pipe in pipes:
            pipe.send(True)
        replies = [pipe.recv() for pipe in pipes]
        wall = time.perf_counter() - started
        rows.append([*theirs_row, args.clips * cores / wall, float(np.mean([cpu_ms for _, cpu_ms in replies]))])
    for pipe, worker in zip(pipes, workers):
        pipe.send(None)
        worker.join(timeout=30)
    return rows


def rounds_in_child(args: argparse.Namespace, *, kind: str) -> list[list[float]]:
    """:func:`alternate` in a child process, or :func:`alternate_per_core` from one.

    ``kind``: ``"usual"`` (TensorFlow's usual intra-op pool), ``"one-thread-pool"`` (an intra-op pool of
    one thread) or ``"per-core"`` (one single-threaded pipeline process per core).
    """
    command = [sys.executable, __file__, "--child", str(REPO), "--rounds", str(args.rounds), "--clips", str(args.clips),
               "--audiomentations-clips", str(args.audiomentations_clips)]
    flags = {"usual": [], "one-thread-pool": ["--one-thread-pool"], "per-core": ["--per-core-processes"]}[kind]
    done = subprocess.run(command + flags, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_alternately(args: argparse.Namespace) -> None:
    """``--rounds``: the bar measured as paired rounds in three configurations of our pipeline.

    A process with the usual intra-op pool, one whose pool has one thread, and one single-threaded
    pipeline process per core, each in a child process of its own (:func:`rounds_in_child`). This
    process only starts them and reads the versions from the installed packages' metadata (it imports
    neither TensorFlow nor audiomentations).
    """
    from importlib.metadata import packages_distributions, version

    def installed(module: str) -> str:  # e.g. tensorflow is installed as the tensorflow-cpu distribution
        return version(packages_distributions().get(module, [module])[0])

    processes = {"usual intra-op pool (as training runs it)": "usual",
                 "one-thread intra-op pool (a process that only augments)": "one-thread-pool",
                 "one single-threaded pipeline process per core "
                 "(a job that augments with worker processes)": "per-core"}
    result: dict[str, object] = {
        "chain": "shift + speed + pitch + gain + noise, each p=1; ours with the training pipeline's tf.data options, "
                 "audiomentations with its default signalsmith_stretch method",
        "rounds": args.rounds, "ours_clips_per_round": args.clips,
        "audiomentations_clips_per_round": args.audiomentations_clips,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "processes": {},
    }
    for name, kind in processes.items():
        rows = rounds_in_child(args, kind=kind)
        ratios = [row[2] / row[0] for row in rows]
        result["processes"][name] = {
            "ratio_median": round(float(np.median(ratios)), 1), "ratio_min": round(min(ratios), 1),
            "ratio_max": round(max(ratios), 1), "rounds_at_least_50x": sum(r >= 50 for r in ratios),
            "ratios": [round(r, 1) for r in ratios],
            "audiomentations_clips_per_s_median": round(float(np.median([row[0] for row in rows])), 1),
            "audiomentations_cpu_ms_per_clip_median": round(float(np.median([row[1] for row in rows])), 1),
            "ours_clips_per_s_median": round(float(np.median([row[2] for row in rows])), 1),
            "ours_cpu_ms_per_clip_median": round(float(np.median([row[3] for row in rows])), 2),
            "rows": [[round(v, 2) for v in row] for row in rows],
        }
        summary = result["processes"][name]
        print(f"{name}: median {summary['ratio_median']}x ({summary['ratio_min']}-{summary['ratio_max']}x, "
              f"{summary['rounds_at_least_50x']} of {args.rounds} rounds at 50x or more)", flush=True)
    result["cpu_count"] = os.cpu_count()
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    result["versions"] = {"tensorflow": installed("tensorflow"), "audiomentations": installed("audiomentations"),
                          "python": platform.python_version()}
    write_result(args.result, result)


def fixed_cost(args: argparse.Namespace) -> None:
    """``--fixed-cost``: the chain's CPU ms per clip over the idle augmenter, at two clip lengths, extrapolated
    to 0 s."""
    import tensorflow as tf

    from sound_tf.config import apply_overrides

    _, _, every = chain_config(REPO)
    idle = apply_overrides(every, {f"augment.{name}_probability": 0.0 for name in CHAIN})
    short_s, long_s = 0.25, every.audio.clip_seconds
    clips_per_pass = {short_s: 2 * args.clips, long_s: args.clips}  # a pass of short clips is quick: twice as many
    datasets = {}
    for name, config in (("chain", every), ("idle", idle)):
        for seconds in (short_s, long_s):
            sized = apply_overrides(config, {"audio.clip_seconds": seconds})
            clips = synthesise(DISTINCT_CLIPS, sized.audio.clip_samples, sized.audio.sample_rate_hz)
            datasets[f"{name} {seconds:g} s"] = ours_dataset(sized, clips, clips_per_pass[seconds],
                                                             single_thread_ops=False, as_training=True)
    rows = []
    for _ in range(args.fixed_cost):
        row = {key: one_pass(ds)[1] for key, ds in datasets.items()}
        short = row[f"chain {short_s:g} s"] - row[f"idle {short_s:g} s"]
        long = row[f"chain {long_s:g} s"] - row[f"idle {long_s:g} s"]
        per_second = (long - short) / (long_s - short_s)
        row.update({"chain over idle, ms per second of audio": per_second,
                    "chain over idle, fixed ms per clip": short - short_s * per_second,
                    f"chain over idle, {long_s:g}-s clip": long})
        rows.append(row)
        print({key: round(value, 3) for key, value in row.items()}, flush=True)
    medians = {key: round(float(np.median([row[key] for row in rows])), 3) for key in rows[0]}
    print("medians (CPU ms per clip):", medians)
    result = {"chain": "shift + speed + pitch + gain + noise, each p=1, with the training pipeline's tf.data options; "
                       "idle: the augmenter with every transform off",
              "rounds": args.fixed_cost,
              "clips_per_pass": {f"{seconds:g} s": count for seconds, count in clips_per_pass.items()},
              "cpu_ms_per_clip_medians": medians,
              "fixed_share_of_long_clip": round(medians["chain over idle, fixed ms per clip"]
                                                / medians[f"chain over idle, {long_s:g}-s clip"], 3),
              "rows": [{key: round(value, 3) for key, value in row.items()} for row in rows],
              "cpu_count": os.cpu_count(), "load_average_1min_at_end": round(os.getloadavg()[0], 2),
              "versions": {"tensorflow": tf.__version__, "python": platform.python_version()}}
    write_result(args.result, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=960,
                        help="clips per measurement of ours (320 lasted about a second: too short for tf.data's "
                             "autotuning)")
    parser.add_argument("--passes", type=int, default=5,
                        help="passes per measurement of our chain; the median is reported")
    parser.add_argument("--audiomentations-clips", type=int, default=60,
                        help="clips per audiomentations measurement (its rate varies by +-30%% between runs of 20)")
    parser.add_argument("--against", metavar="REV", help="compare the chain with git revision REV instead")
    parser.add_argument("--pairs", type=int, default=4, help="alternating pairs of child processes (--against)")
    parser.add_argument("--in-process", type=int, default=0, metavar="PAIRS",
                        help="with --against: that many alternating pairs in one process on one thread instead")
    parser.add_argument("--one-thread-pool", action="store_true",
                        help="with --against: children whose intra-op thread pool has one thread "
                             "(--rounds measures every configuration)")
    parser.add_argument("--per-core-processes", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=0,
                        help="measure the bar instead as this many alternating rounds of audiomentations and ours")
    parser.add_argument("--fixed-cost", type=int, default=0, metavar="ROUNDS",
                        help="split our chain's CPU per clip into a fixed part and a part per second of audio instead")
    parser.add_argument("--child", metavar="ROOT", help=argparse.SUPPRESS)
    result_file.add_flags(parser, "augment.json")  # and augment_ab.json, augment_rounds.json, ... by mode
    args = parser.parse_args()
    if not args.child:  # checked before measuring; children only report to their parent
        mode = ("augment_fixed_cost" if args.fixed_cost else "augment_in_process" if args.against and args.in_process
                else "augment_ab" if args.against else "augment_rounds" if args.rounds else "augment")
        args.result = result_file.claim(f"{mode}.json", args.tag, force=args.force).name
    if args.fixed_cost:
        fixed_cost(args)
        return
    if args.against and args.in_process:
        compare_in_process(args)
        return
    if args.against:
        compare_revisions(args)
        return
    if args.rounds and not args.child:
        compare_alternately(args)
        return
    if args.child:  # the sound_tf package under ROOT: the chain as training runs it
        if args.one_thread_pool:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(1)  # before TensorFlow starts
        sys.path.insert(0, args.child)
        _, base, every = chain_config(Path(args.child))
        clips = synthesise(DISTINCT_CLIPS, base.audio.clip_samples, base.audio.sample_rate_hz)
        if args.rounds and args.per_core_processes:
            print(json.dumps(alternate_per_core(every, clips, args, args.child)))
            return
        if args.rounds:
            print(json.dumps(alternate(every, clips, args)))
            return
        print(json.dumps(ours(every, clips, args.clips, single_thread_ops=False, passes=args.passes,
                              as_training=True)))
        return

    import audiomentations
    import tensorflow as tf

    from sound_tf.config import apply_overrides

    recipe, base, every = chain_config(REPO)
    with_stretch = apply_overrides(every, {"augment.stretch_probability": 1.0})
    rate, samples = base.audio.sample_rate_hz, base.audio.clip_samples
    clips = synthesise(DISTINCT_CLIPS, samples, rate)

    rows = {}
    rows["audiomentations (signalsmith_stretch, default)"] = theirs(
        clips, args.audiomentations_clips, rate, every.augment, "signalsmith_stretch")
    rows["audiomentations (librosa_phase_vocoder)"] = theirs(
        clips, args.audiomentations_clips, rate, every.augment, "librosa_phase_vocoder")
    rows["ours, tf.data, 1 intra-op thread per example"] = ours(every, clips, args.clips, single_thread_ops=True,
                                                                 passes=args.passes)
    rows["ours, tf.data, default TF threading"] = ours(every, clips, args.clips, single_thread_ops=False,
                                                       passes=args.passes)
    rows["ours, tf.data, 1 intra-op thread, no autotuner (as training runs it)"] = ours(
        every, clips, args.clips, single_thread_ops=False, passes=args.passes, as_training=True)
    rows["ours, tf.data, as training runs it, in a process that only augments (1-thread intra-op pool)"] = \
        ours_in_child(REPO, args, one_thread_pool=True)
    rows["ours + time stretch, 1 intra-op thread"] = ours(with_stretch, clips, args.clips, single_thread_ops=True)
    rows["ours, recipe default probabilities, all on the waveform"] = ours(base, clips, args.clips,
                                                                          single_thread_ops=True)
    rows["ours, recipe defaults as training runs them (tf.data part)"] = ours(recipe, clips, args.clips,
                                                                              single_thread_ops=True, skip_idle=True)
    layer_ms = feature_rescale_ms(recipe)
    augment_layer_ms = feature_augment_ms(recipe)

    # What each transform costs alone (p=1, the others off), over the augmenter with every transform off,
    # and what that costs over a plain pass: the per-clip bill behind the rows above.
    none = apply_overrides(base, {f"augment.{name}_probability": 0.0
                                  for name in ("shift", "speed", "stretch", "pitch", "gain", "noise")})
    plain = apply_overrides(none, {"augment.enabled": False})

    def cpu_ms(config) -> float:  # median of 5 passes: one pass of a cheap chain varies by +-0.5 ms per clip
        return float(np.median([ours(config, clips, args.clips, single_thread_ops=True)[1] for _ in range(5)]))

    none_cpu = cpu_ms(none)
    cost = {"augmenter with every transform off, over a plain pass": none_cpu - cpu_ms(plain)}
    for name in ("shift", "speed", "stretch", "pitch", "gain", "noise"):
        cost[name] = cpu_ms(apply_overrides(none, {f"augment.{name}_probability": 1.0})) - none_cpu

    reference, reference_cpu = rows["audiomentations (signalsmith_stretch, default)"]
    librosa_reference, _ = rows["audiomentations (librosa_phase_vocoder)"]
    best, best_cpu = max((rows[name] for name in rows if name.startswith("ours, tf.data")), key=lambda r: r[0])
    result = {
        "clip": f"{base.audio.clip_seconds} s at {rate} Hz (pipelines/esc50.toml)",
        "chain": "shift + speed + pitch + gain + noise, each p=1 (audiomentations: Shift, PitchShift, "
                 "TimeStretch, AddGaussianSNR, Gain)",
        "clips_per_s": {name: round(value[0], 1) for name, value in rows.items()},
        "cpu_ms_per_clip": {name: round(value[1], 1) for name, value in rows.items()},
        "speedup_vs_audiomentations_default": round(best / reference, 1),  # the best of our tf.data rows
        "speedup_training_options_row": round(
            rows["ours, tf.data, 1 intra-op thread, no autotuner (as training runs it)"][0] / reference, 1),
        "speedup_vs_audiomentations_librosa": round(best / librosa_reference, 1),
        "cpu_time_ratio_vs_audiomentations_default": round(reference_cpu / best_cpu, 1),
        "cpu_ms_per_clip_of_each_transform_alone": {name: round(value, 2) for name, value in cost.items()},
        "feature_rescale_layer_cpu_ms_per_clip": {name: round(value, 3) for name, value in layer_ms.items()},
        "feature_augment_layer_cpu_ms_per_clip": {name: round(value, 3) for name, value in augment_layer_ms.items()},
        "ours_clips": args.clips, "ours_passes_median_of": args.passes,
        "audiomentations_clips": args.audiomentations_clips,
        "cpu_count": os.cpu_count(), "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "versions": {"tensorflow": tf.__version__, "audiomentations": audiomentations.__version__,
                     "python": platform.python_version()},
    }
    write_result(args.result, result)
    print(json.dumps(result, indent=2))
    print("| pipeline | clips/s | vs audiomentations (default) | CPU ms per clip |\n|---|---|---|---|")
    for name, (value, cpu_ms) in rows.items():
        print(f"| {name} | {value:.1f} | {value / reference:.1f}x | {cpu_ms:.1f} |")
    print("\n| transform alone (p=1) | CPU ms per clip |\n|---|---|")
    for name, cpu_ms in cost.items():
        print(f"| {name} | {cpu_ms:.2f} |")
    for name, cpu_ms in layer_ms.items():
        print(f"| FeatureRescale layer in the model, {name} | {cpu_ms:.3f} |")
    for name, cpu_ms in augment_layer_ms.items():
        print(f"| FeatureAugment layer in the model, {name} | {cpu_ms:.3f} |")


if __name__ == "__main__":
    main()
