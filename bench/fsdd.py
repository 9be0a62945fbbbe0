"""FSDD accuracy bar: the default model on the official split and leave-one-speaker-out.

Builds CSV manifests over ``../shared/datasets/fsdd/recordings`` (the project does not ship FSDD):
- official split: takes 0-4 of every digit and speaker are the test set (fold 2), the rest fold 1;
  validation is carved from fold 1 by a seeded, stratified fraction;
- leave-one-speaker-out: one fold per speaker; the held-out speaker is the test set, the next speaker
  (cyclically) is the validation set.

Usage::

    python bench/fsdd.py official [--seeds 0] [--no-augment] [--out bench/results/fsdd]
    python bench/fsdd.py loso [--speakers george,jackson] [--seeds 0,1,2] [--no-augment] [--reuse]
    python bench/fsdd.py loso --seeds 0,1,2 --set augment.pitch_probability=0 --tag nopitch \
        --out bench/results/fsdd_nopitch

Results go to ``bench/results/fsdd_<protocol>[_noaug][_<tag>].json`` and a markdown line on stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FSDD = REPO.parent / "shared" / "datasets" / "fsdd" / "recordings"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def write_manifest(path: Path, protocol: str) -> Path:
    rows = []
    for wav in sorted(FSDD.glob("*.wav")):
        digit, speaker, take = wav.stem.split("_")
        fold = (2 if int(take) < 5 else 1) if protocol == "official" else SPEAKERS.index(speaker) + 1
        rows.append({"path": str(wav), "label": digit, "fold": fold, "group": f"{speaker}"
                     if protocol == "loso" else f"{digit}_{speaker}_{take}"})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "fold", "group"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(manifest: Path, out: Path, *, test_fold: int, val_fold: int | None, seed: int, augment: bool,
        extra: list[str], reuse: bool = False) -> dict:
    if reuse and (out / "metrics.json").is_file():  # a finished run of an earlier sweep: read, do not retrain
        config = json.loads((out / "config.json").read_text())
        if config["augment"]["enabled"] != augment or config["train"]["seed"] != seed:
            raise SystemExit(f"{out} was trained with other settings; run without --reuse")
        metrics = json.loads((out / "metrics.json").read_text())
        return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "seconds": None}
    from sound_tf import train
    flags = ["--data", str(manifest), "--pipeline", "fsdd", "--test-fold", str(test_fold),
             "--seed", str(seed), "--out", str(out), "--overwrite", "--quiet", *extra]
    if val_fold is not None:
        flags += ["--val-fold", str(val_fold)]
    if not augment:
        flags.append("--no-augment")
    started = time.time()
    if train.main(flags) != 0:
        raise SystemExit(f"training failed for {out}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "seconds": time.time() - started}


def write_summary(args: argparse.Namespace, results: list[dict]) -> dict:
    """Write ``bench/results/fsdd_<protocol>[_noaug].json``: every run, mean and spread.

    Leave-one-speaker-out also reports the per-seed mean over speakers, and the spread of those
    means across seeds (the seed-to-seed variation of the protocol's headline number).
    """
    accs = [r["accuracy"] for r in results]
    summary = {"protocol": args.protocol, "augment": not args.no_augment, "overrides": args.set, "runs": results,
               "mean_accuracy": statistics.mean(accs), "std_accuracy": statistics.pstdev(accs)}
    if args.protocol == "loso":
        per_seed = {}
        for r in results:
            per_seed.setdefault(r["seed"], []).append(r["accuracy"])
        complete = {seed: statistics.mean(v) for seed, v in per_seed.items() if len(v) == len(args.speakers.split(","))}
        summary["per_seed_mean_accuracy"] = complete
        if complete:
            summary["seed_means_mean"] = statistics.mean(complete.values())
            summary["seed_means_std"] = statistics.pstdev(complete.values())
    tag = f"{args.protocol}{'' if not args.no_augment else '_noaug'}{'_' + args.tag if args.tag else ''}"
    (REPO / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "results" / f"fsdd_{tag}.json").write_text(json.dumps(summary, indent=2))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("protocol", choices=["official", "loso"])
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--speakers", default=",".join(SPEAKERS), help="held-out speakers for loso")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "fsdd"))
    parser.add_argument("--set", action="append", default=[], help="config overrides passed to train")
    parser.add_argument("--tag", default="", help="suffix of the summary's name, for runs with --set overrides")
    parser.add_argument("--reuse", action="store_true",
                        help="read runs that already finished in --out instead of training them again")
    args = parser.parse_args()
    if not FSDD.is_dir():
        raise SystemExit(f"FSDD not found at {FSDD}")
    out = Path(args.out)
    manifest = write_manifest(out / f"{args.protocol}.csv", args.protocol)
    extra = [f"--set={s}" for s in args.set]
    seeds = [int(s) for s in args.seeds.split(",")]
    results: list[dict] = []
    for seed in seeds:
        if args.protocol == "official":
            r = run(manifest, out / f"official_s{seed}", test_fold=2, val_fold=None, seed=seed,
                    augment=not args.no_augment, extra=extra, reuse=args.reuse)
            results.append({"seed": seed, **r})
            write_summary(args, results)
        else:
            for speaker in args.speakers.split(","):
                k = SPEAKERS.index(speaker) + 1
                r = run(manifest, out / f"loso_{speaker}_s{seed}", test_fold=k, val_fold=k % len(SPEAKERS) + 1,
                        seed=seed, augment=not args.no_augment, extra=extra, reuse=args.reuse)
                results.append({"seed": seed, "speaker": speaker, **r})
                write_summary(args, results)  # after every run, so a long sweep can be read while it runs
    summary = write_summary(args, results)
    print(f"| FSDD {args.protocol} ({'aug' if not args.no_augment else 'no aug'}) | "
          f"{100 * summary['mean_accuracy']:.1f}% +/- {100 * summary['std_accuracy']:.1f} "
          f"over {len(results)} runs |" + (
              f" per-seed means {', '.join(f'{100 * v:.1f}%' for v in summary['per_seed_mean_accuracy'].values())}"
              f" (spread {100 * summary['seed_means_std']:.1f}) |" if summary.get("per_seed_mean_accuracy") else ""))


if __name__ == "__main__":
    main()
