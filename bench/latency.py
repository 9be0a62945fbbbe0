"""Deployment bars of issue 6: size and single-clip latency of the default model, int8 accuracy on FSDD.

(a) The default model for the esc50 recipe (22.05 kHz, 5-s clips, 64 mel bins, 50 classes), seeded
    weights and feature statistics from synthetic clips (weights do not change the time): per-clip
    latency (batch 1, one thread -- TensorFlow is pinned to one intra-op and one inter-op thread, LiteRT
    runs with ``num_threads=1``) and file size of Keras ``predict``, a direct Keras call ``model(x)``,
    the model in a ``tf.function``, the SavedModel signature, TFLite float32 and TFLite int8 (float
    frontend, int8 network), as the export writes them. The frontend alone (log-mel + normalisation as
    TFLite float32) is timed too, to split the cost. Forms are timed interleaved, round-robin, in
    groups (Keras; tf.function and SavedModel; LiteRT), so that load from other processes hits a
    group alike and TensorFlow's spinning thread pools do not slow the LiteRT calls.
(b) The int8 model's accuracy against float on the FSDD official split: the run written by
    ``python bench/fsdd.py official`` (``bench/results/fsdd/official_s0``) is exported with the default
    profile and its ``export.json`` read back.

Targets: int8 file <= 300 KB; int8 <= 5 ms per 5-s clip and >= 5x faster than Keras predict; int8
accuracy within 1 point of float on FSDD.

Usage::

    python bench/latency.py [--runs 200] [--fsdd-run bench/results/fsdd/official_s0] [--skip-fsdd] [--tag NAME]

Without ``--skip-fsdd`` the FSDD run must exist (it is checked before anything is timed). Writes
``bench/results/latency[_<tag>].json`` (or ``--out``; an existing file is not overwritten without ``--force``:
the run is refused before it starts) and prints a markdown table. Timings on a shared machine jitter:
the median of many runs is reported with the 10th percentile beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import result_file  # noqa: E402

TARGET_INT8_BYTES = 300 * 1024
TARGET_INT8_MS = 5.0
TARGET_SPEEDUP = 5.0
TARGET_DROP_POINTS = 1.0


def _timings_ms(fns: dict, runs: int, warmup: int = 5) -> dict:
    """Median and 10th percentile of single calls, the forms interleaved so that load hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            times[name].append(1000.0 * (time.perf_counter() - started))
    return {name: {"median_ms": round(float(np.median(t)), 3), "p10_ms": round(float(np.percentile(t, 10)), 3),
                   "runs": runs} for name, t in times.items()}


def _synthetic_clips(count: int, samples: int, rate_hz: int, seed: int = 0) -> np.ndarray:
    """Tones, chirps and noise bursts at random levels, ``[count, samples]`` float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate_hz
    clips = []
    for _ in range(count):
        f0 = rng.uniform(100, 6000)
        wave = rng.uniform(0.01, 0.5) * np.sin(2 * np.pi * (f0 + rng.uniform(-200, 200) * t) * t)
        wave += rng.uniform(0.001, 0.1) * rng.standard_normal(samples)
        clips.append(wave)
    return np.clip(np.stack(clips), -1, 1).astype(np.float32)


def default_model_bench(runs: int, keras_runs: int) -> dict:
    import keras
    import tensorflow as tf

    from sound_tf import export, frontend, models
    from sound_tf.config import config_from_recipe
    from sound_tf.frontend import compute_feature_stats
    from sound_tf.lite import LiteClassifier
    from sound_tf.tflite_meta import embed_metadata

    config = config_from_recipe(REPO / "pipelines" / "esc50.toml", {"labels": [f"class_{i:02d}" for i in range(50)]})
    keras.utils.set_random_seed(0)
    clips = _synthetic_clips(48, config.audio.clip_samples, config.audio.sample_rate_hz)  # [48, samples]
    mean, variance = compute_feature_stats(config, [clips[i:i + 8] for i in range(0, 16, 8)])
    model = models.build_model(config, feature_mean=mean, feature_variance=variance)
    macs = models.macs_by_layer(model)
    frontend_macs = macs.get(models.LOG_MEL_LAYER_NAME, 0)
    x = clips[:1]  # [1, samples]: one 5-s clip
    result: dict = {"config": {"recipe": "pipelines/esc50.toml", "sample_rate_hz": config.audio.sample_rate_hz,
                               "clip_seconds": config.audio.clip_seconds, "feature_shape": list(config.feature_shape),
                               "classes": config.num_classes, "widths": list(config.model.widths)},
                    "parameters": int(model.count_params()),
                    "macs": {"total": int(sum(macs.values())), "frontend": int(frontend_macs),
                             "network": int(sum(macs.values()) - frontend_macs)}}
    sizes: dict = {}
    with tempfile.TemporaryDirectory(prefix="sound_tf_latency_") as tmp:
        work = Path(tmp)
        model.save(work / "model.keras")
        keras_bytes = (work / "model.keras").stat().st_size
        sizes.update(keras_predict=keras_bytes, keras_call=keras_bytes, keras_tf_function=keras_bytes)
        infer = tf.function(lambda w: model(w, training=False))
        saved = export.save_serving_model(model, config, work / "saved_model")
        sizes["saved_model"] = export._size_bytes(saved)
        signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
        xt = tf.constant(x)

        source = export.tflite_source(model, config, work / "source")  # DFT as matrix products for TFLite
        float32 = export.convert_waveform_model(source, "float32")
        int8 = export.convert_waveform_model(source, "int8", representative=clips[16:])
        info = {"sample_rate_hz": config.audio.sample_rate_hz, "clip_samples": config.audio.clip_samples,
                "window_hop_samples": config.audio.window_hop_samples, "input_kind": "waveform"}
        classifiers, ops = {}, {}
        for name, flat in (("tflite_float32", float32), ("tflite_int8", int8)):
            path = work / f"{name}.tflite"
            path.write_bytes(embed_metadata(flat, labels=config.labels, info={**info, "variant": name}))
            classifiers[name] = LiteClassifier(path, num_threads=1)
            sizes[name] = path.stat().st_size
            ops[name] = {k: v for k, v in export.tflite_op_summary(flat).items() if k in ("float_ops", "int8_ops")}
        # (accuracy needs a trained model: see the FSDD part; these seeded weights only time the graph)

        # the frontend alone (waveform -> normalised log-mel, DFT as matrix products), float32 TFLite
        from ai_edge_litert.interpreter import Interpreter

        features = export.frontend_model(frontend.for_tflite(model))
        spec = tf.TensorSpec([None, config.audio.clip_samples], tf.float32, name="waveform")
        front_source = export._archive(features, lambda waveform: {"features": features(waveform)}, spec,
                                       work / "front_source")
        front = tf.lite.TFLiteConverter.from_saved_model(str(front_source)).convert()
        sizes["tflite_frontend_only_float32"] = len(front)
        interpreter = Interpreter(model_content=front, num_threads=1)
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]

        def run_front() -> None:
            interpreter.set_tensor(index, x)
            interpreter.invoke()

        forms = _timings_ms({"keras_predict": lambda: model.predict(x, verbose=0),
                             "keras_call": lambda: model(x, training=False)}, keras_runs)
        forms.update(_timings_ms({"keras_tf_function": lambda: infer(x),
                                  "saved_model": lambda: signature(waveform=xt)}, runs))
        # TensorFlow's thread pools keep spinning after a call: time the LiteRT forms in a group of their own
        forms.update(_timings_ms({"tflite_float32": lambda: classifiers["tflite_float32"].predict(x),
                                  "tflite_int8": lambda: classifiers["tflite_int8"].predict(x),
                                  "tflite_frontend_only_float32": run_front}, runs))
    for name, entry in forms.items():
        entry["size_bytes"] = sizes[name]
        entry.update(ops.get(name, {}))
    predict_ms = forms["keras_predict"]["median_ms"]
    for entry in forms.values():
        entry["speedup_vs_keras_predict"] = round(predict_ms / entry["median_ms"], 1)
    result["forms"] = forms
    return result


def trained_fsdd_run(run_dir: Path) -> Path:
    """``run_dir`` if it holds a trained model, else ``SystemExit`` saying how to get one (checked before timing)."""
    if not (run_dir / "model.keras").is_file():
        raise SystemExit(f"{run_dir}: no trained FSDD run; train it first (`python bench/fsdd.py official --tag NAME` "
                         f"trains bench/results/fsdd/official_s0), point --fsdd-run at one, or pass --skip-fsdd")
    return run_dir


def fsdd_bench(run_dir: Path) -> dict:
    """The int8 accuracy check on the trained FSDD run ``run_dir`` (:func:`trained_fsdd_run`)."""
    from sound_tf import export

    profile = export.ExportProfile(name="bench", latency_runs=100)
    report = export.export_run(run_dir, profile=profile, log=print).report
    arts = report["artefacts"]
    return {"run_dir": str(run_dir.relative_to(REPO)) if run_dir.is_relative_to(REPO) else str(run_dir),
            "test_clips": report["test"]["clips"], "run_accuracy": report["test"]["run_accuracy"],
            "artefacts": {name: {k: arts[name][k] for k in ("size_bytes", "latency_ms", "latency_predict_ms",
                                                           "accuracy", "agreement", "accuracy_drop_points")
                                 if k in arts[name]} for name in arts},
            "int8_drop_points_vs_float32": round(100 * (arts["float32"]["accuracy"] - arts["int8"]["accuracy"]), 3),
            "passed": report["passed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="timed runs per TFLite/SavedModel form")
    parser.add_argument("--keras-runs", type=int, default=50, help="timed runs of Keras predict and call")
    parser.add_argument("--fsdd-run", default=str(REPO / "bench" / "results" / "fsdd" / "official_s0"),
                        help="a trained FSDD official-split run (python bench/fsdd.py official) for the int8 "
                             "accuracy check")
    parser.add_argument("--skip-fsdd", action="store_true", help="leave out the FSDD int8 accuracy check")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "latency.json"), help="results file")
    result_file.add_flags(parser, "latency.json")
    args = parser.parse_args()
    out = result_file.claim(Path(args.out).resolve(), args.tag, force=args.force)
    fsdd_run = None if args.skip_fsdd else trained_fsdd_run(Path(args.fsdd_run))  # before timing anything

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)  # one thread, like the TFLite runs
    tf.config.threading.set_inter_op_parallelism_threads(1)
    started = time.time()
    result = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "load_average_1min_at_start": round(os.getloadavg()[0], 2)},
              "tensorflow": tf.__version__, "threads": 1, "batch": 1,
              "default_model": default_model_bench(args.runs, args.keras_runs)}
    if fsdd_run is not None:
        result["fsdd"] = fsdd_bench(fsdd_run)
    forms = result["default_model"]["forms"]
    int8 = forms["tflite_int8"]
    targets = {"int8_size_le_300KB": int8["size_bytes"] <= TARGET_INT8_BYTES,
               "int8_latency_le_5ms": int8["median_ms"] <= TARGET_INT8_MS,
               "int8_ge_5x_faster_than_keras_predict": int8["speedup_vs_keras_predict"] >= TARGET_SPEEDUP}
    if "fsdd" in result:
        drop = result["fsdd"]["int8_drop_points_vs_float32"]
        targets["fsdd_int8_within_1_point_of_float"] = drop <= TARGET_DROP_POINTS
    result["targets"] = targets
    result["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    result["seconds"] = round(time.time() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    dm = result["default_model"]
    print(f"\nDefault model, esc50 recipe (5-s clips at 22.05 kHz, {dm['config']['classes']} classes), batch 1, "
          f"one thread; {dm['parameters']:,} parameters, {dm['macs']['total'] / 1e6:.1f} M MACs "
          f"(frontend {dm['macs']['frontend'] / 1e6:.1f} M, network {dm['macs']['network'] / 1e6:.1f} M)\n")
    print("| form | size | median latency | p10 | vs Keras predict |")
    print("|---|---:|---:|---:|---:|")
    for name, entry in forms.items():
        print(f"| {name} | {entry['size_bytes'] / 1024:.1f} KB | {entry['median_ms']:.2f} ms | "
              f"{entry['p10_ms']:.2f} ms | {entry['speedup_vs_keras_predict']:.1f}x |")
    if "fsdd" in result:
        fs = result["fsdd"]
        print(f"\nFSDD official split ({fs['test_clips']} test clips, 1-s clips at 8 kHz)\n")
        print("| artefact | size | latency | test accuracy | agreement with Keras |")
        print("|---|---:|---:|---:|---:|")
        for name, entry in fs["artefacts"].items():
            print(f"| {name} | {entry['size_bytes'] / 1024:.1f} KB | {entry['latency_ms']:.2f} ms | "
                  f"{100 * entry['accuracy']:.2f}% | {100 * entry['agreement']:.2f}% |")
    print("\n" + "\n".join(f"- {name}: {'PASS' if ok else 'FAIL'}" for name, ok in targets.items()))


if __name__ == "__main__":
    main()
