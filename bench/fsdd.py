"""FSDD accuracy bar: the default model on the official split and leave-one-speaker-out.

Builds CSV manifests over FSDD's ``recordings/`` (the project does not ship FSDD; ``--fsdd DIR``, default
``$SOUND_TF_FSDD`` if set, else ``../shared/datasets/fsdd`` beside the checkout):
- official split: takes 0-4 of every digit and speaker are the test set (fold 2), the rest fold 1;
  validation is carved from fold 1 by a seeded, stratified fraction;
- leave-one-speaker-out: one fold per speaker; the held-out speaker is the test set, the next speaker
  (cyclically) is the validation set.

Usage::

    python bench/fsdd.py official [--seeds 0] [--no-augment] [--out bench/results/fsdd]
    python bench/fsdd.py loso [--speakers george,jackson] [--seeds 0,1,2] [--no-augment] [--reuse]
    python bench/fsdd.py loso --seeds 0,1,2 --set augment.pitch_probability=0 --tag nopitch \
        --out bench/results/fsdd_nopitch
    python bench/fsdd.py official --fsdd ~/free-spoken-digit-dataset --tag elsewhere   # FSDD in another folder

Results go to ``bench/results/fsdd_<protocol>[_noaug][_<tag>].json`` and a markdown line on stdout. An
existing summary of that name (``fsdd_loso.json`` and others are committed results the README quotes) is
not overwritten: the command is refused before it trains anything unless ``--force`` is given; pick
another name with ``--tag``.

``--reuse`` reads the runs that already finished in ``--out`` instead of training them again, if each was
trained with the settings this command would train it with (its ``config.json`` against the config of
this command's flags, ``--set`` overrides included); a finished run trained otherwise is refused, before
anything is trained, with the settings that differ.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import result_file  # noqa: E402

FSDD_ENV = "SOUND_TF_FSDD"
DEFAULT_FSDD = REPO.parent / "shared" / "datasets" / "fsdd"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def add_fsdd_flag(parser: argparse.ArgumentParser) -> None:
    """``--fsdd DIR``: where FSDD is, by default ``$SOUND_TF_FSDD`` if set, else :data:`DEFAULT_FSDD`."""
    parser.add_argument("--fsdd", metavar="DIR", default=os.environ.get(FSDD_ENV) or str(DEFAULT_FSDD),
                        help=f"the Free Spoken Digit Dataset: the folder holding its recordings/ (default: "
                             f"${FSDD_ENV} if set, else {DEFAULT_FSDD})")


def find_recordings(folder: str | Path) -> Path | None:
    """FSDD's WAVs under ``folder``: its ``recordings/``, or ``folder`` itself if they lie there; ``None`` if absent."""
    folder = Path(folder).expanduser()
    for candidate in (folder / "recordings", folder):
        if candidate.is_dir() and any(candidate.glob("*_*_*.wav")):
            return candidate
    return None


def missing_message(folder: str | Path) -> str:
    return (f"FSDD not found at {Path(folder).expanduser()} (no recordings/<digit>_<speaker>_<take>.wav there); "
            f"point --fsdd DIR or ${FSDD_ENV} at the free-spoken-digit-dataset folder")


def recordings(folder: str | Path) -> Path:
    """:func:`find_recordings`, or ``SystemExit`` naming the folder and how to point elsewhere."""
    found = find_recordings(folder)
    if found is None:
        raise SystemExit(missing_message(folder))
    return found


def write_manifest(path: Path, protocol: str, fsdd: Path) -> Path:
    """The CSV manifest of ``protocol`` over the WAVs in ``fsdd`` (:func:`recordings`)."""
    rows = []
    for wav in sorted(fsdd.glob("*.wav")):
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


def train_flags(manifest: Path, out: Path, *, test_fold: int, val_fold: int | None, seed: int, augment: bool,
                extra: list[str]) -> list[str]:
    """The ``python -m sound_tf.train`` flags of one run."""
    flags = ["--data", str(manifest), "--pipeline", "fsdd", "--test-fold", str(test_fold),
             "--seed", str(seed), "--out", str(out), "--overwrite", "--quiet", *extra]
    if val_fold is not None:
        flags += ["--val-fold", str(val_fold)]
    if not augment:
        flags.append("--no-augment")
    return flags


def planned_config(flags: list[str]):
    """The config ``sound_tf.train`` builds from ``flags`` (:func:`train_flags`), i.e. what it would train."""
    from sound_tf import train
    from sound_tf.errors import SoundTFError

    parser = argparse.ArgumentParser()
    train.add_config_flags(parser)
    try:
        return train.config_from_args(parser.parse_known_args(flags)[0])  # --out, --overwrite, --quiet: not settings
    except SoundTFError as exc:
        raise SystemExit(str(exc)) from None


def reusable(out: Path, flags: list[str]) -> bool:
    """Whether ``out`` holds a finished run; ``SystemExit`` naming the differing settings if it was trained
    with other settings than ``flags`` would train it with (its ``config.json`` against :func:`planned_config`)."""
    if not (out / "metrics.json").is_file():
        return False
    from sound_tf.config import Config
    from sound_tf.errors import SoundTFError

    config = planned_config(flags)
    try:
        saved = json.loads((out / "config.json").read_text())
        same = Config.from_dict(saved).fingerprint() == config.fingerprint()
    except (OSError, ValueError, SoundTFError) as exc:
        raise SystemExit(f"{out}: the finished run's config.json cannot be compared ({exc}); run without --reuse "
                         f"to train it again") from None
    if not same:
        raise SystemExit(f"{out} was trained with other settings{config.differences(saved)}; run without --reuse "
                         f"to train it again, or give --reuse the flags it was trained with")
    return True


def read_run(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "seconds": None}


def run(flags: list[str], out: Path) -> dict:
    from sound_tf import train
    started = time.time()
    if train.main(flags) != 0:
        raise SystemExit(f"training failed for {out}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "seconds": time.time() - started}


def summary_name(args: argparse.Namespace) -> str:
    """``fsdd_<protocol>[_noaug][_<tag>].json``."""
    return f"fsdd_{args.protocol}{'' if not args.no_augment else '_noaug'}{'_' + args.tag if args.tag else ''}.json"


def write_summary(args: argparse.Namespace, results: list[dict], path: Path) -> dict:
    """Write ``path`` (:func:`summary_name` under ``bench/results/``): every run, mean and spread.

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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2))
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
    result_file.add_flags(parser, "fsdd_<protocol>.json", tag=False)
    parser.add_argument("--reuse", action="store_true",
                        help="read runs that already finished in --out instead of training them again; a finished "
                             "run trained with other settings than this command's is refused before anything trains")
    add_fsdd_flag(parser)
    args = parser.parse_args()
    unknown = set(args.speakers.split(",")) - set(SPEAKERS)
    if unknown:
        parser.error(f"unknown speaker(s) {sorted(unknown)}; FSDD's are {', '.join(SPEAKERS)}")
    summary_path = result_file.claim(summary_name(args), force=args.force)
    fsdd = recordings(args.fsdd)
    out = Path(args.out)
    manifest = write_manifest(out / f"{args.protocol}.csv", args.protocol, fsdd)
    extra = [f"--set={s}" for s in args.set]
    seeds = [int(s) for s in args.seeds.split(",")]
    plan: list[tuple[dict, Path, list[str]]] = []  # (what the run is, its folder, its training flags)
    for seed in seeds:
        if args.protocol == "official":
            folds = [({"seed": seed}, out / f"official_s{seed}", 2, None)]
        else:
            folds = []
            for speaker in args.speakers.split(","):
                k = SPEAKERS.index(speaker) + 1  # held out; the next speaker (cyclically) validates
                folds.append(({"seed": seed, "speaker": speaker}, out / f"loso_{speaker}_s{seed}", k,
                              k % len(SPEAKERS) + 1))
        for key, run_dir, test_fold, val_fold in folds:
            plan.append((key, run_dir, train_flags(manifest, run_dir, test_fold=test_fold, val_fold=val_fold, seed=seed,
                                                   augment=not args.no_augment, extra=extra)))
    # Every finished run is checked before anything trains: a refusal comes first, not after hours of a sweep.
    reused = {run_dir for _, run_dir, flags in plan if args.reuse and reusable(run_dir, flags)}
    results: list[dict] = []
    for key, run_dir, flags in plan:
        results.append({**key, **(read_run(run_dir) if run_dir in reused else run(flags, run_dir))})
        write_summary(args, results, summary_path)  # after every run, so a long sweep can be read while it runs
    summary = write_summary(args, results, summary_path)
    print(f"| FSDD {args.protocol} ({'aug' if not args.no_augment else 'no aug'}) | "
          f"{100 * summary['mean_accuracy']:.1f}% +/- {100 * summary['std_accuracy']:.1f} "
          f"over {len(results)} runs |" + (
              f" per-seed means {', '.join(f'{100 * v:.1f}%' for v in summary['per_seed_mean_accuracy'].values())}"
              f" (spread {100 * summary['seed_means_std']:.1f}) |" if summary.get("per_seed_mean_accuracy") else ""))


if __name__ == "__main__":
    main()
