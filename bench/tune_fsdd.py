"""FSDD leave-one-speaker-out: the default model against the best model a budgeted search finds.

Both are trained the same way (pipelines/fsdd.toml, the same seed, epochs and early stopping) on the
same split: the held-out speaker is the test set (touched once per model, at the end), the next speaker
(as in bench/fsdd.py) the validation set that early stopping and the search rank on, the other four
speakers the training set. The search gets a stated budget: at most ``--trials`` trials of at most
``--trial-epochs`` epochs each and ``--time-budget`` minutes.

Usage::

    python bench/tune_fsdd.py [--speaker theo] [--trials 8] [--trial-epochs 5] [--time-budget 15]
                              [--epochs 20] [--tuner bayesian] [--tuning default] [--fsdd DIR] [--tag NAME]

FSDD is read from ``--fsdd DIR`` (default ``$SOUND_TF_FSDD`` if set, else ``../shared/datasets/fsdd`` beside the
checkout, as ``bench/fsdd.py``). Results: ``bench/results/tune_fsdd[_<tag>].json`` and a markdown table on
stdout; an existing results file (``tune_fsdd.json`` is committed) is not overwritten: the command is refused
before it trains unless ``--force`` is given. Re-running continues an interrupted search and reuses finished
runs (``--overwrite`` starts again).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import result_file  # noqa: E402
from fsdd import SPEAKERS, add_fsdd_flag, recordings, write_manifest  # noqa: E402

from sound_tf.run_state import HISTORY_FILE, epochs_recorded  # noqa: E402  (no TensorFlow)


def _metrics(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    state = json.loads((run / "run_state.json").read_text()) if (run / "run_state.json").is_file() else {}
    epochs = epochs_recorded(run / HISTORY_FILE)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "epochs": epochs,
            "train_seconds": state.get("seconds")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speaker", default="theo", choices=SPEAKERS, help="held-out (test) speaker")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--trial-epochs", type=int, default=5)
    parser.add_argument("--time-budget", type=float, default=15.0, help="minutes of search")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of both final trainings (early stopping)")
    parser.add_argument("--tuner", default="bayesian", choices=["bayesian", "random", "hyperband"])
    parser.add_argument("--tuning", default="default", help="search space (tuning/<name>.toml)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "tune_fsdd"))
    parser.add_argument("--overwrite", action="store_true", help="train and search again instead of reusing --out")
    add_fsdd_flag(parser)
    result_file.add_flags(parser, "tune_fsdd.json")
    args = parser.parse_args()
    result_path = result_file.claim("tune_fsdd.json", args.tag, force=args.force)
    fsdd = recordings(args.fsdd)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from sound_tf import train, tune

    out = Path(args.out)
    manifest = write_manifest(out / "loso.csv", "loso", fsdd)
    test_fold = SPEAKERS.index(args.speaker) + 1
    val_fold = test_fold % len(SPEAKERS) + 1
    common = ["--data", str(manifest), "--pipeline", "fsdd", "--test-fold", str(test_fold), "--val-fold",
              str(val_fold), "--seed", str(args.seed), "--epochs", str(args.epochs), "--quiet"]

    default_run = out / "default"
    started = time.time()
    if not (default_run / "metrics.json").is_file() or args.overwrite:
        if train.main([*common, "--out", str(default_run), "--overwrite"]) != 0:
            raise SystemExit("training the default model failed")
    default_seconds = time.time() - started

    started = time.time()
    flags = [*common, "--tuning", args.tuning, "--tuner", args.tuner, "--max-trials", str(args.trials),
             "--trial-epochs", str(args.trial_epochs), "--time-budget", str(args.time_budget),
             "--out", str(out / "tuned")]
    if tune.main(flags + (["--overwrite"] if args.overwrite else [])) != 0:
        raise SystemExit("the search failed")
    search_seconds = time.time() - started
    best = json.loads((out / "tuned" / "best_hparams.json").read_text())
    with (out / "tuned" / "trials.csv").open() as f:
        import csv
        trials = list(csv.DictReader(f))

    result = {
        "protocol": f"FSDD leave-one-speaker-out: test {args.speaker}, validation {SPEAKERS[val_fold - 1]}, "
                    f"train the other {len(SPEAKERS) - 2} speakers",
        "budget": {"max_trials": args.trials, "trial_epochs": args.trial_epochs,
                   "time_budget_minutes": args.time_budget, "tuner": args.tuner, "space": args.tuning,
                   "final_epochs": args.epochs},
        "default": {**_metrics(default_run), "wall_seconds": round(default_seconds)},
        "tuned": {**_metrics(out / "tuned" / "best_run"), "wall_seconds_search_and_final": round(search_seconds),
                  "trials_completed": sum(t["status"] == "COMPLETED" for t in trials),
                  "trial_seconds": round(sum(float(t["seconds"] or 0) for t in trials)),
                  "best_val_loss": best["score"], "hyperparameters": best["hyperparameters"]},
        "cpu_count": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 1),
    }
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=2) + "\n")
    d, t = result["default"], result["tuned"]
    print(f"| FSDD LOSO ({args.speaker} held out) | test accuracy | macro F1 | epochs |")
    print("|---|---|---|---|")
    print(f"| default model | {100 * d['accuracy']:.1f}% | {d['macro_f1']:.3f} | {d['epochs']} |")
    print(f"| tuned ({t['trials_completed']} {args.tuner} trials x <= {args.trial_epochs} epochs, "
          f"{t['trial_seconds'] / 60:.0f} min) | {100 * t['accuracy']:.1f}% | {t['macro_f1']:.3f} | {t['epochs']} |")
    print("best hyperparameters:", json.dumps(t["hyperparameters"]))


if __name__ == "__main__":
    main()
