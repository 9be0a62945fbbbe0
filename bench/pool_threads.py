"""Where the augmentation chain's CPU time goes, thread by thread, in each process configuration (issue 3).

TensorFlow's FFT kernel (ducc) runs an FFT on the calling thread alone only when that thread belongs to
the process's intra-op pool; ``tf.data``'s threads never do, so with a pool of two threads the phase
vocoder's FFTs are split and part of their work runs on the pool's threads. This script shows it: the
bench's chain (``bench/augment.py``: shift + speed + pitch + gain + noise, every transform p=1, on the
waveform, the training pipeline's ``tf.data`` options) runs ``--passes`` passes of ``--clips`` clips in
a child process per configuration, and reports per pass the clips/s, the process's CPU ms per clip and
the CPU ms per clip of each group of threads, read from ``/proc/self/task`` before the pass and after
it, while the pass's iterator (and so its threads) still exists (clock ticks of 10 ms: about 0.01 ms
per clip over 960 clips):

- **pool threads**: threads that existed before the pass, other than the main thread (TensorFlow's
  intra-op and inter-op pools, which start with the runtime);
- **tf.data threads**: threads started during the pass (the iterator's own threads, which run the map);
- **main thread**: the Python thread that iterates.

Configurations:

- ``usual``: TensorFlow's default pools (two intra-op threads on a 2-core machine), as a training process;
- ``one-thread``: ``TF_NUM_INTRAOP_THREADS=1``, a process that only augments;
- ``private``: the usual pools, the pipeline on a private ``tf.data`` thread pool of two threads
  (``threading.private_threadpool_size``).

The configurations alternate ``--rounds`` times (the machine's speed drifts). Linux only.
Usage: ``python bench/pool_threads.py [--rounds 2] [--passes 3] [--clips 960] [--tag NAME]``. Writes
``bench/results/pool_threads[_<tag>].json`` (an existing file is not overwritten without ``--force``: the run is
refused before it starts).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import result_file  # noqa: E402
from augment import DISTINCT_CLIPS, chain_config, ours_dataset, synthesise, write_result  # noqa: E402

CONFIGURATIONS = {"usual": {}, "one-thread": {"TF_NUM_INTRAOP_THREADS": "1"}, "private": {}}


def thread_ticks() -> dict[str, int]:
    """CPU clock ticks (user + system) of every thread of this process, by thread id."""
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        ticks[tid] = int(fields[11]) + int(fields[12])
    return ticks


def child(configuration: str, clips_per_pass: int, passes: int) -> list[dict[str, float]]:
    """Passes of the chain in this process, each split by thread group (CPU ms per clip)."""
    import tensorflow as tf

    _, _, config = chain_config(REPO)
    clips = synthesise(DISTINCT_CLIPS, config.audio.clip_samples, config.audio.sample_rate_hz)
    ds = ours_dataset(config, clips, clips_per_pass, single_thread_ops=False, as_training=True)
    if configuration == "private":
        options = tf.data.Options()
        options.threading.private_threadpool_size = 2
        ds = ds.with_options(options)
    ms_per_tick = 1000 / os.sysconf("SC_CLK_TCK")
    main_thread = str(threading.get_native_id())
    rows = []
    for _ in range(passes):
        before = thread_ticks()
        started, cpu = time.perf_counter(), time.process_time()
        iterator = iter(ds)  # kept until its threads are read: they end with it
        count = sum(int(batch.shape[0]) for batch in iterator)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = thread_ticks()
        del iterator
        groups = {"pool threads": 0, "tf.data threads": 0, "main thread": 0}
        for tid, ticks in after.items():
            group = "main thread" if tid == main_thread else "pool threads" if tid in before else "tf.data threads"
            groups[group] += ticks - before.get(tid, 0)
        rows.append({"clips_per_s": round(count / wall, 1), "cpu_ms_per_clip": round(cpu * 1000 / count, 3),
                     **{f"{name} cpu_ms_per_clip": round(value * ms_per_tick / count, 3)
                        for name, value in groups.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the three configurations")
    parser.add_argument("--passes", type=int, default=3, help="passes per child process")
    parser.add_argument("--clips", type=int, default=960, help="clips per pass")
    parser.add_argument("--child", choices=CONFIGURATIONS, help=argparse.SUPPRESS)
    result_file.add_flags(parser, "pool_threads.json")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.clips, args.passes)))
        return
    result_path = result_file.claim("pool_threads.json", args.tag, force=args.force)
    if not Path("/proc/self/task").is_dir():
        raise SystemExit("bench/pool_threads.py reads /proc/self/task: Linux only")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGURATIONS}
    for round_index in range(args.rounds):
        for name, env in CONFIGURATIONS.items():
            done = subprocess.run([sys.executable, __file__, "--child", name, "--clips", str(args.clips),
                                   "--passes", str(args.passes)], env={**os.environ, **env}, check=True,
                                  capture_output=True, text=True)
            rows = json.loads(done.stdout.strip().splitlines()[-1])
            runs[name].extend(rows)
            for row in rows:
                print(f"round {round_index + 1}, {name}: {row}", flush=True)
    keys = list(runs["usual"][0])
    medians = {name: {key: round(float(np.median([row[key] for row in rows])), 3) for key in keys}
               for name, rows in runs.items()}
    result = {"chain": "shift + speed + pitch + gain + noise, each p=1, the training pipeline's tf.data options",
              "rounds": args.rounds, "passes": args.passes, "clips_per_pass": args.clips,
              "medians": medians, "passes_by_configuration": runs, "cpu_count": os.cpu_count(),
              "versions": {"python": platform.python_version()}}
    write_result(result_path.name, result)
    print("| configuration | clips/s | CPU ms per clip | pool threads | tf.data threads | main thread |")
    print("|---|---|---|---|---|---|")
    for name, m in medians.items():
        print(f"| {name} | {m['clips_per_s']:.0f} | {m['cpu_ms_per_clip']:.2f} | "
              f"{m['pool threads cpu_ms_per_clip']:.2f} | {m['tf.data threads cpu_ms_per_clip']:.2f} | "
              f"{m['main thread cpu_ms_per_clip']:.2f} |")


if __name__ == "__main__":
    main()
