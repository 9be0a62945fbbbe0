"""Serving throughput and latency (issue 7's bars): ``python -m sound_tf.serve`` against the article's blueprint.

Every server runs on 127.0.0.1 in its own process; this process sends a bounded number of requests from
1 and ``--concurrency`` (16) concurrent clients (httpx2, async), alternating 1-second and 5-second
44.1 kHz 16-bit WAV clips (the servers resample them to the model's rate), and reports requests per
second, p50 and p99 latency, failed requests, the server's CPU time per request and its resident
memory (both from ``/proc/PID``).

* ``sound_tf.serve``: the export bundle with the default backend (TFLite float32), micro-batching on.
* blueprint: ``bench/blueprint_app.py`` (``model.predict`` once per request in an ``async def``
  endpoint, as in the article), and its ``def`` variant that FastAPI runs in threads.

The three servers stay up together (an idle server costs nothing) and ``--rounds`` interleaved rounds
measure each in turn, so the load that other jobs put on a shared machine falls on all of them alike;
the rounds of each server and client count are pooled (throughput over their total time, percentiles
over all their requests). CPU time per request shows the servers' cost independently of that load.

``--soak`` instead sends ``--soak-requests`` (10,000) small requests (1-s clips) to ``sound_tf.serve``
and reports its RSS at the start, every tenth of the way and at the end; with ``--python-heap`` also the
Python objects it holds after the warm-up and at the end (``tracemalloc``, through ``bench/heap_probe``
on the server's ``PYTHONPATH``), which tells a leak of Python objects from native memory.

The model is the default architecture on the esc50 recipe (5-s clips at 22.05 kHz), trained for one
epoch on the synthetic demo data (accuracy is irrelevant to throughput) and exported once; both are
kept under ``runs/bench-serve/`` and reused. Results go to ``bench/results/serve[_<tag>].json`` (merged with
an earlier run of the other mode: the throughput run at the top level, the soak under ``soak``, each with
its own ``machine``, ``model`` and ``load_average_1min``) and a markdown table on stdout. A file that already
holds a run of the same mode (``serve.json`` is committed) is not overwritten without ``--force``: the run is
refused before anything is trained or measured; ``--tag NAME`` writes ``serve_NAME.json`` instead.

Usage::

    python bench/serve.py [--rounds 3] [--requests 160] [--blueprint-requests 24] [--concurrency 16]
    python bench/serve.py --soak [--soak-requests 10000] [--python-heap]
    python bench/serve.py --run-dir RUN --bundle BUNDLE      # an existing run folder and its export
    python bench/serve.py --soak --tag mine                  # into bench/results/serve_mine.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx2  # noqa: E402
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

import result_file  # noqa: E402

RESULTS = "serve.json"  # under bench/results/
WORK = REPO / "runs" / "bench-serve"
CLIENT_RATE_HZ = 44100
CLIP_SECONDS = (1.0, 5.0)
CLIPS_PER_LENGTH = 4


# -- model and clips ------------------------------------------------------------------------------------
def ensure_model(run_dir: Path | None, bundle: Path | None) -> tuple[Path, Path]:
    """The run folder (for the blueprint) and its export bundle (for sound_tf.serve), built if needed."""
    run_dir = run_dir or WORK / "run"
    bundle = bundle or WORK / "bundle"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if not (run_dir / "model.keras").is_file():
        print(f"training the default model on the esc50 recipe (synthetic data, 1 epoch) into {run_dir}", flush=True)
        subprocess.run([sys.executable, "-m", "sound_tf.train", "--pipeline", "esc50", "--format", "demo",
                        "--set", "data.demo_clips_per_class=8", "--epochs", "1", "--no-augment", "--quiet",
                        "--out", str(run_dir), "--overwrite"], check=True, cwd=REPO, env=env)
    if not (bundle / "model_float32.tflite").is_file():
        print(f"exporting {run_dir} into {bundle}", flush=True)
        # --allow-degraded: a one-epoch model's int8 variants may disagree with Keras; only speed matters here
        subprocess.run([sys.executable, "-m", "sound_tf.export", str(run_dir), "--out", str(bundle),
                        "--allow-degraded", "--quiet"], check=True, cwd=REPO, env=env)
    return run_dir, bundle


def make_clips() -> dict[float, list[bytes]]:
    """Seeded 44.1 kHz 16-bit mono WAVs: tones, chirps and noise of each length."""
    rng = np.random.default_rng(0)
    clips: dict[float, list[bytes]] = {}
    for seconds in CLIP_SECONDS:
        t = np.arange(int(CLIENT_RATE_HZ * seconds)) / CLIENT_RATE_HZ
        clips[seconds] = []
        for _ in range(CLIPS_PER_LENGTH):
            f0 = rng.uniform(100, 4000)
            wave = 0.3 * np.sin(2 * np.pi * (f0 + rng.uniform(-50, 50) * t) * t) + 0.05 * rng.standard_normal(t.size)
            buffer = io.BytesIO()
            sf.write(buffer, wave.astype(np.float32), CLIENT_RATE_HZ, format="WAV", subtype="PCM_16")
            clips[seconds].append(buffer.getvalue())
    return clips


# -- servers ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class Server:
    """A server subprocess on 127.0.0.1; stopped (SIGINT, then SIGKILL) on exit."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int, ready_path: str, log: Path):
        self.name, self.command, self.env, self.port, self.ready_path, self.log = (
            name, command, env, port, ready_path, log)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(self.command, cwd=REPO, env=self.env, stdout=self._log_file,
                                        stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            try:
                if httpx2.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return self
            except httpx2.HTTPError:
                pass
            time.sleep(0.25)
        raise SystemExit(f"{self.name} did not get ready within 180 s; see {self.log}")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


def serve_command(bundle: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "sound_tf.serve", str(bundle), "--host", "127.0.0.1", "--port", str(port)]


def blueprint_command(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "bench.blueprint_app:app", "--app-dir", str(REPO),
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]


# -- load -----------------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(url: str, path: str, clips: list[bytes], *, requests: int, concurrency: int,
               rss_pid: int | None = None, rss_every: int = 0) -> dict:
    """Send ``requests`` uploads from ``concurrency`` clients; latencies, failures, wall time, RSS samples."""
    latencies: list[float] = []
    failures: list[str] = []
    rss: list[tuple[int, float]] = []
    counter = iter(range(requests))
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        async def worker() -> None:
            for i in counter:
                data = clips[i % len(clips)]
                began = time.perf_counter()
                try:
                    response = await client.post(path, files={"file": (f"clip{i}.wav", data, "audio/wav")})
                    if response.status_code != 200 or "predicted_class" not in response.json():
                        failures.append(f"{response.status_code}: {response.text[:200]}")
                except httpx2.HTTPError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                latencies.append(time.perf_counter() - began)
                if rss_pid is not None and rss_every and (i + 1) % rss_every == 0:
                    rss.append((i + 1, rss_mb(rss_pid)))

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - began
    return {"requests": requests, "concurrency": concurrency, "latencies": latencies, "failures": failures,
            "seconds": wall, "rss_samples_mb": [(n, round(m, 1)) for n, m in rss]}


def summarise(rounds: list[dict]) -> dict:
    """Pool the rounds of one (server, clients) pair: throughput over the total time, percentiles of all."""
    latencies = sorted(x for r in rounds for x in r["latencies"])
    requests = sum(r["requests"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    failures = [f for r in rounds for f in r["failures"]]
    cpu = sum(r["cpu_seconds"] for r in rounds)
    return {"requests": requests, "concurrency": rounds[0]["concurrency"], "failed": len(failures),
            "failures_sample": failures[:3], "seconds": round(seconds, 2),
            "requests_per_second": round(requests / seconds, 1),
            "requests_per_second_by_round": [round(r["requests"] / r["seconds"], 1) for r in rounds],
            "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
            "server_cpu_ms_per_request": round(1000 * cpu / requests, 1),
            "server_cpu_utilisation": round(cpu / seconds, 2)}


def measure_round(server: Server, path: str, clips: list[bytes], *, requests: int, concurrency: int) -> dict:
    before = cpu_seconds(server.process.pid)
    result = asyncio.run(load(server.url, path, clips, requests=requests, concurrency=concurrency))
    result["cpu_seconds"] = cpu_seconds(server.process.pid) - before
    print(f"    {server.name:<26} c={concurrency:<3} {requests / result['seconds']:>7.1f} req/s  "
          f"(server CPU {1000 * result['cpu_seconds'] / requests:6.1f} ms/request)", flush=True)
    return result


# -- modes ------------------------------------------------------------------------------------------------------
def throughput(args, run_dir: Path, bundle: Path, clips: dict[float, list[bytes]], logs: Path) -> dict:
    """All servers up at once (an idle one costs nothing); rounds interleave them so that the load other
    jobs put on the machine affects each alike; each pair's rounds are pooled."""
    mixed = [c for pair in zip(clips[1.0], clips[5.0]) for c in pair]  # alternate 1-s and 5-s clips
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    specs = [("sound_tf.serve", lambda port: serve_command(bundle, port), env, "/ready", "/classify",
              args.requests),
             ("blueprint (async def)", blueprint_command, {**env, "BLUEPRINT_RUN_DIR": str(run_dir)},
              "/openapi.json", "/classify/", args.blueprint_requests),
             ("blueprint (def, threads)", blueprint_command,
              {**env, "BLUEPRINT_RUN_DIR": str(run_dir), "BLUEPRINT_SYNC": "1"}, "/openapi.json", "/classify/",
              args.blueprint_requests)]
    levels = sorted({1, args.concurrency})
    with contextlib.ExitStack() as stack:
        servers = []
        for name, command, server_env, ready_path, path, requests in specs:
            port = free_port()
            log = logs / f"{name.split()[0]}{len(servers)}.log"
            server = stack.enter_context(Server(name, command(port), server_env, port, ready_path, log))
            asyncio.run(load(server.url, path, mixed, requests=2 * args.concurrency, concurrency=args.concurrency))
            servers.append((server, path, requests))
        backend = httpx2.get(servers[0][0].url + "/ready").json().get("backend")
        rounds: dict[tuple[str, int], list[dict]] = {}
        for round_index in range(args.rounds):
            print(f"  round {round_index + 1}/{args.rounds} (load average {os.getloadavg()[0]:.1f})", flush=True)
            for server, path, requests in servers:
                for concurrency in levels:
                    rounds.setdefault((server.name, concurrency), []).append(
                        measure_round(server, path, mixed, requests=requests, concurrency=concurrency))
        runs = []
        for server, _, _ in servers:
            for concurrency in levels:
                runs.append({"server": server.name, "concurrency": concurrency,
                             "backend": backend if server.name == "sound_tf.serve" else "keras model.predict",
                             **summarise(rounds[(server.name, concurrency)]),
                             "rss_mb": round(rss_mb(server.process.pid), 1)})
        metrics = httpx2.get(servers[0][0].url + "/metrics").text
    return {"runs": runs, "batch_size_histogram": [line for line in metrics.splitlines()
                                                   if line.startswith("sound_tf_inference_batch_size_")]}


def python_heap_mb(process: subprocess.Popen, heap_file: Path) -> float:
    """MB of Python objects the server holds (``bench/heap_probe``: tracemalloc, read at SIGUSR1)."""
    lines = len(heap_file.read_text().splitlines()) if heap_file.is_file() else 0
    process.send_signal(signal.SIGUSR1)
    deadline = time.time() + 30
    while time.time() < deadline:
        values = heap_file.read_text().splitlines() if heap_file.is_file() else []
        if len(values) > lines:
            return int(values[-1]) / 1e6
        time.sleep(0.1)
    raise SystemExit(f"the server did not report its Python heap within 30 s ({heap_file})")


def soak(args, bundle: Path, clips: dict[float, list[bytes]], logs: Path) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    heap_file = logs / "python_heap.txt"
    if args.python_heap:  # tracemalloc in the server: slower, so its req/s is not the bar's
        probe = str(Path(__file__).resolve().parent / "heap_probe")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [probe, env.get("PYTHONPATH")]))
        env["SOUND_TF_BENCH_HEAP_FILE"] = str(heap_file)
    port = free_port()
    every = max(1, args.soak_requests // 10)
    with Server("sound_tf.serve", serve_command(bundle, port), env, port, "/ready", logs / "soak.log") as server:
        asyncio.run(load(server.url, "/classify", clips[1.0], requests=200, concurrency=args.concurrency))  # warm-up
        start = rss_mb(server.process.pid)
        heap_start = python_heap_mb(server.process, heap_file) if args.python_heap else None
        cpu_before = cpu_seconds(server.process.pid)
        raw = asyncio.run(load(server.url, "/classify", clips[1.0], requests=args.soak_requests,
                               concurrency=args.concurrency, rss_pid=server.process.pid, rss_every=every))
        end = rss_mb(server.process.pid)
        heap_end = python_heap_mb(server.process, heap_file) if args.python_heap else None
        raw["cpu_seconds"] = cpu_seconds(server.process.pid) - cpu_before
    samples = raw["rss_samples_mb"]
    result = summarise([raw])
    middle = samples[len(samples) // 2 - 1][1] if samples else float("nan")
    out = {**result, "rss_start_mb": round(start, 1), "rss_middle_mb": middle, "rss_end_mb": round(end, 1),
           "rss_growth_mb": round(end - start, 1), "rss_samples_mb": samples}
    print(f"  soak: {result['requests']} requests, {result['failed']} failed, {result['requests_per_second']} req/s; "
          f"RSS start {start:.1f} MB, middle {middle:.1f} MB, end {end:.1f} MB", flush=True)
    if args.python_heap:
        out.update({"tracemalloc": True, "python_heap_start_mb": round(heap_start, 2),
                    "python_heap_end_mb": round(heap_end, 2)})
        print(f"  Python heap (tracemalloc): {heap_start:.2f} MB after the warm-up, {heap_end:.2f} MB at the end",
              flush=True)
    return out


def table(runs: list[dict]) -> str:
    lines = ["| server | backend | clients | requests | req/s | p50 ms | p99 ms | failed "
             "| server CPU ms/request | RSS MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['server']} | {r['backend']} | {r['concurrency']} | {r['requests']} | "
                     f"{r['requests_per_second']} | {r['p50_ms']} | {r['p99_ms']} | {r['failed']} | "
                     f"{r['server_cpu_ms_per_request']} | {r['rss_mb']} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, help="a trained run folder (default: trained here once)")
    parser.add_argument("--bundle", type=Path, help="its export bundle (default: exported here once)")
    parser.add_argument("--requests", type=int, default=160, help="requests per sound_tf.serve round")
    parser.add_argument("--blueprint-requests", type=int, default=24,
                        help="requests per blueprint round (it is slow: keep the run short)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, pooled per server and level")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--soak", action="store_true", help="10,000-request memory soak instead of throughput")
    parser.add_argument("--soak-requests", type=int, default=10_000)
    parser.add_argument("--python-heap", action="store_true",
                        help="--soak: also trace the server's Python heap (tracemalloc; slower, so not the bar's "
                             "req/s)")
    result_file.add_flags(parser, RESULTS)
    args = parser.parse_args()

    # One file holds both modes: a run is refused only if the file already holds a run of its own mode.
    path = result_file.tagged(RESULTS, args.tag)
    results = json.loads(path.read_text()) if path.is_file() else {}
    if ("soak" if args.soak else "runs") in results and not args.force:
        raise SystemExit(result_file.refusal(path, f"already holds a {'soak' if args.soak else 'throughput'} run"))
    run_dir, bundle = ensure_model(args.run_dir, args.bundle)
    clips = make_clips()
    context = {  # per mode: the throughput run's at the top level, the soak's in its section
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "model": {"run_dir": str(run_dir), "bundle": str(bundle),
                  "config": json.loads((bundle / "config.json").read_text()).get("audio")},
        "clips": {"sample_rate_hz": CLIENT_RATE_HZ, "seconds": [1.0] if args.soak else list(CLIP_SECONDS),
                  "format": "WAV PCM_16 mono"}}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        logs = Path(tmp)
        if args.soak:
            measured = soak(args, bundle, clips, logs)
        else:
            measured = throughput(args, run_dir, bundle, clips, logs)
            results.update(measured)
            results.update(context)
            runs = measured["runs"]
            ours = next(r for r in runs if r["server"] == "sound_tf.serve" and r["concurrency"] == args.concurrency)
            base = next(r for r in runs
                        if r["server"] == "blueprint (async def)" and r["concurrency"] == args.concurrency)
            results["bar"] = {
                "concurrency": args.concurrency,
                "throughput_ratio": round(ours["requests_per_second"] / base["requests_per_second"], 2),
                "p99_ratio": round(ours["p99_ms"] / base["p99_ms"], 3),
                "failed": sum(r["failed"] for r in runs),
                "met": (ours["requests_per_second"] >= 3 * base["requests_per_second"]
                        and ours["p99_ms"] <= base["p99_ms"] and sum(r["failed"] for r in runs) == 0),
            }
            print()
            print(table(runs))
            print(f"\nthroughput {results['bar']['throughput_ratio']}x the blueprint at {args.concurrency} clients, "
                  f"p99 {results['bar']['p99_ratio']}x; bar met: {results['bar']['met']}")
    # Other jobs on the machine change absolute numbers; both servers are measured in the same run.
    load_average = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
    if args.soak:
        results["soak"] = {**measured, **context, "load_average_1min": load_average}
    else:
        results["load_average_1min"] = load_average
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {result_file.shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
