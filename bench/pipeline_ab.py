"""CPU per clip of the training pipeline: this checkout against an earlier git revision, measured alternately.

The machine's speed drifts by +-30% from minute to minute, so two runs of ``bench/pipeline.py`` an hour
apart cannot tell a 10% change in the pipeline from the drift. This script runs the two versions in
alternating child processes, minutes apart at most, each measuring the same training pipelines on the
same clips, and compares the medians.

Each child builds ``pipeline.training_dataset`` at the esc50 recipe (22.05 kHz, 5 s) without
augmentation and with the default augmentation's ``tf.data`` part: the waveform augmenter and mixup as
``sound_tf.train`` maps them (``augment.training_augmenter`` and ``augment.make_mixup``: each only where it
acts on the waveform, so with today's defaults, every transform in the model, neither is mapped and the two
pipelines are alike; a revision older than ``training_augmenter`` gets the same rule applied to its
``make_waveform_augmenter``; the results name what each side mapped), fills the memory cache with one epoch,
then takes the process's CPU time over ``--epochs`` epochs (no model), all from one iterator, as training
streams them. (Iterated afresh, an epoch-keyed dataset builds its inner pipeline again each time, which costs
milliseconds per iteration: about 0.03 ms per clip over these 240 clips, next to nothing over a real training
set, and training never does it.) Clips are 240 synthetic 5-s 22.05 kHz 16-bit WAVs (``bench/pipeline.py``'s
chirps in noise), the form the decode cache stores.

Usage: ``python bench/pipeline_ab.py --against 762bd3e [--pairs 6] [--epochs 12] [--tag NAME]``. Writes
``bench/results/pipeline_ab[_<tag>].json`` (or ``--result``; an existing file is not overwritten without
``--force``: the run is refused before it starts).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import result_file  # noqa: E402

RATE_HZ, SECONDS, CLIPS, CLASSES = 22050, 5.0, 240, 10
DEFAULT_AUGMENTATION = "default augmentation, its tf.data part (as training maps it)"


def training_augmenter(augment, config):
    """``augment.training_augmenter(config)``: the augmenter training maps over its clips, or ``None``.

    Revisions before it existed made the same choice in the trainer: the waveform augmenter, dropped
    when it has nothing to do on the waveform (revisions before ``acts_on_waveform`` always mapped it).
    """
    if hasattr(augment, "training_augmenter"):
        return augment.training_augmenter(config)
    if not config.augment.enabled:
        return None
    augmenter = augment.make_waveform_augmenter(config)
    return None if getattr(augmenter, "acts_on_waveform", True) is False else augmenter


def child(root: Path, data: Path, epochs: int) -> dict:
    """CPU ms per clip of the two pipelines of the sound_tf package under ``root``, and what the second maps."""
    sys.path.insert(0, str(root))
    from sound_tf import augment, pipeline
    from sound_tf.config import apply_overrides, config_from_recipe

    paths = sorted(str(p) for p in data.glob("c*/*.wav"))
    labels = [int(Path(p).parent.name[1:]) for p in paths]  # c<class>/clip_<i>.wav
    config = apply_overrides(config_from_recipe(root / "pipelines" / "esc50.toml"),
                             {"labels": [f"c{i}" for i in range(CLASSES)]})
    # One iterator over endless epochs, as the trainer streams them (revisions before the epoch-keyed
    # pipeline had no ``epochs`` argument and were repeated instead).
    endless = "epochs" in inspect.signature(pipeline.training_dataset).parameters
    stream = {"epochs": None} if endless else {}
    waveform_augmenter = training_augmenter(augment, config)
    mixup = augment.make_mixup(config) if config.augment.enabled else None  # as the trainer
    datasets = {
        "no augmentation": pipeline.training_dataset(paths, labels, config, **stream),
        DEFAULT_AUGMENTATION: pipeline.training_dataset(
            paths, labels, config, waveform_augmenter=waveform_augmenter, mixup=mixup, **stream),
    }
    per_epoch = len(paths) // config.train.batch_size
    result = {}
    for name, ds in datasets.items():
        batches = iter(ds if endless else ds.repeat())
        for _ in range(per_epoch):  # fills the memory cache, traces the functions
            next(batches)
        started, count = time.process_time(), 0
        for _ in range(epochs * per_epoch):
            count += int(next(batches)[0].shape[0])
        result[name] = (time.process_time() - started) * 1000 / count
    return {"cpu_ms_per_clip": result,
            "maps": {"waveform_augmenter": waveform_augmenter is not None, "mixup": mixup is not None}}


def extract_revision(revision: str, destination: Path) -> str:
    """Write ``sound_tf/`` and ``pipelines/`` of git ``revision`` under ``destination``; return its short hash."""
    short = subprocess.run(["git", "rev-parse", "--short", revision], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "archive", short, "sound_tf", "pipelines"], cwd=REPO, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return short


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", help="git revision to compare this checkout with")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--result", default="pipeline_ab.json", help="file name under bench/results/")
    result_file.add_flags(parser, "pipeline_ab.json")
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), Path(args.child[1]), args.epochs)))
        return
    if not args.against:
        parser.error("--against REV is required")
    result_path = result_file.claim(args.result, args.tag, force=args.force)
    import numpy as np

    from pipeline import synthesise  # bench/pipeline.py's clips, here at the cache's rate

    with tempfile.TemporaryDirectory(prefix="sound_tf_ab_") as tmp:  # removed however the run ends
        work = Path(tmp)
        synthesise(work / "data", CLIPS, SECONDS, rate_hz=RATE_HZ)
        revision = extract_revision(args.against, work / "old")
        roots = {f"revision {revision}": work / "old", "this checkout": REPO}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in roots}
        maps: dict[str, dict[str, bool]] = {}
        for pair in range(args.pairs):
            for name, root in roots.items():
                out = subprocess.run([sys.executable, __file__, "--child", str(root), str(work / "data"),
                                      "--epochs", str(args.epochs)], check=True, capture_output=True, text=True)
                measured = json.loads(out.stdout.strip().splitlines()[-1])
                runs[name].append(measured["cpu_ms_per_clip"])
                maps[name] = measured["maps"]
                print(f"pair {pair + 1}, {name}: {runs[name][-1]}", flush=True)
    medians = {name: {stage: round(float(np.median([r[stage] for r in rs])), 4) for stage in rs[0]}
               for name, rs in runs.items()}
    result = {"against": revision, "pairs": args.pairs, "epochs_per_measurement": args.epochs, "clips": CLIPS,
              "cpu_ms_per_clip_median": medians, "default_augmentation_maps": maps, "runs": runs}
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=2))
    print("\n| training pipeline, CPU ms per clip (median of alternating runs) | " +
          " | ".join(roots) + " |\n|---|" + "---|" * len(roots))
    for stage in medians["this checkout"]:
        print(f"| {stage} | " + " | ".join(f"{medians[name][stage]:.3f}" for name in roots) + " |")
    for name, mapped in maps.items():
        print(f"{name}, default augmentation in tf.data: " + (", ".join(k for k, v in mapped.items() if v)
                                                              or "nothing (every transform in the model)"))


if __name__ == "__main__":
    main()
