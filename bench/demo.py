"""The README's first command, measured: ``python -m sound_tf.train --export`` on the built-in demo dataset.

The command runs in a child process as a new user would run it, from an empty decode cache: a fresh
temporary ``SOUND_TF_CACHE`` (the demo clips are generated and decoded there) and ``--out`` in the same
temporary folder, which is removed when the script ends (the installed packages are this machine's, so
their download and install are not part of the time). Recorded:

- the wall time of the whole command (generate, decode, train, evaluate, export);
- the test accuracy, as correct / total clips (the run's ``metrics.json``: its confusion matrix);
- every export artefact's top-1 agreement with Keras and test accuracy, and whether it passed the export
  profile's thresholds (the bundle's ``export.json``: an artefact passes when no failure names it);
- the machine (cores, processor, load average at the start and end) and the versions ``export.json`` names.

Usage: ``python bench/demo.py [--tag NAME]``. Writes ``bench/results/demo[_<tag>].json`` (an existing file is
not overwritten without ``--force``: the run is refused before it starts). If the command fails (an export
that misses its thresholds writes no bundle), what was measured is written with its exit code and the end of
its log, and the script exits with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import result_file

COMMAND = ["-m", "sound_tf.train", "--export"]  # README command 1, after `pip install -e .`


def accuracy(run_dir: Path) -> dict | None:
    """Test accuracy as correct / total clips from the run's ``metrics.json`` (``None`` if absent)."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    metrics = json.loads(path.read_text())
    matrix = metrics["confusion_matrix"]  # [true, predicted]
    correct, total = sum(matrix[i][i] for i in range(len(matrix))), sum(map(sum, matrix))
    return {"correct": int(correct), "total": int(total), "accuracy": round(correct / total, 6)}


def artefacts(bundle: Path) -> dict | None:
    """Per artefact of ``export.json``: agreement with Keras, accuracy and pass/fail (``None`` if absent)."""
    path = bundle / "export.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    failures = report["failures"]  # "<artefact>: <what it missed>"
    return {
        "passed": report["passed"], "profile": report["profile"]["name"], "failures": failures,
        "versions": {"sound_tf": report["sound_tf_version"], "tensorflow": report["tensorflow_version"],
                     "keras": report["keras_version"]},
        "artefacts": {name: {"agreement_with_keras": entry["agreement"], "accuracy": entry["accuracy"],
                             "size_bytes": entry["size_bytes"],
                             "passed": not any(f.startswith(f"{name}:") for f in failures)}
                      for name, entry in report["artefacts"].items() if name != "keras"},  # keras: the reference
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    result_file.add_flags(parser, "demo.json")
    args = parser.parse_args()
    result_path = result_file.claim("demo.json", args.tag, force=args.force)

    result: dict = {"command": "python " + " ".join(COMMAND),
                    "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                                "platform": platform.platform(), "python": platform.python_version(),
                                "load_average_1min_at_start": round(os.getloadavg()[0], 2)}}
    with tempfile.TemporaryDirectory(prefix="sound_tf_demo_") as tmp:  # cache, run and log: removed however it ends
        work = Path(tmp)
        run_dir = work / "run"
        env = {**os.environ, "SOUND_TF_CACHE": str(work / "cache")}  # empty: the demo is generated and decoded
        print(f"running `{result['command']}` with an empty decode cache (SOUND_TF_CACHE and --out under {work})",
              flush=True)
        with (work / "command.log").open("wb") as log:
            started = time.perf_counter()
            code = subprocess.run([sys.executable, *COMMAND, "--out", str(run_dir)], cwd=work, env=env,
                                  stdout=log, stderr=subprocess.STDOUT).returncode
            result["wall_seconds"] = round(time.perf_counter() - started, 1)
        result["exit_code"] = code
        result["test"] = accuracy(run_dir)
        export = artefacts(run_dir / "export")
        if export is not None:
            result["export"] = {key: export[key] for key in ("passed", "profile", "failures", "artefacts")}
            result["versions"] = export["versions"]
        if code != 0:
            result["log_tail"] = (work / "command.log").read_text(errors="replace").splitlines()[-20:]
    result["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=2) + "\n")

    test = result["test"]
    print(f"| README command 1 (`{result['command']}`), empty decode cache | {result['wall_seconds']:.0f} s | "
          + (f"{100 * test['accuracy']:.2f}% test ({test['correct']}/{test['total']})" if test else "no metrics")
          + " |")
    if export is not None:
        print("| artefact | agreement with Keras | test accuracy | thresholds |\n|---|---:|---:|---|")
        for name, entry in export["artefacts"].items():
            print(f"| {name} | {100 * entry['agreement_with_keras']:.2f}% | {100 * entry['accuracy']:.2f}% | "
                  f"{'pass' if entry['passed'] else 'FAIL'} |")
    print(f"wrote {result_file.shown(result_path)}")
    if code != 0:
        print("\n".join(result.get("log_tail", [])), file=sys.stderr)
        print(f"the command exited with {code}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
