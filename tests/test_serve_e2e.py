"""The service with real models: Keras run folder, SavedModel and TFLite bundle, and a real uvicorn server.

A tiny model (8 kHz, 0.5-s clips, three tone classes, one epoch, no augmentation) is trained once with
``train_run`` and exported once (SavedModel + float32 TFLite). The tests check that the served answers
are the models' own numbers, that a TFLite server never imports TensorFlow, and that a real server on
127.0.0.1 answers real uploads over HTTP, refuses oversized and slow uploads at the socket level, leaves
no temporary files, logs JSON lines and stops cleanly.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx2
import numpy as np
import pytest
import soundfile as sf
from conftest import device_blocker, environment_as_a_user_starts_it

from sound_tf.audio import decode_bytes, split_windows
from sound_tf.config import Config, apply_overrides

REPO = Path(__file__).resolve().parents[1]
SR = 8000
TONES_HZ = {"high": 2200.0, "low": 300.0, "mid": 900.0}


def tone(freq_hz: float, seconds: float, sample_rate_hz: int, channels: int = 1, noise: float = 0.0,
         seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate_hz))) / sample_rate_hz
    wave = 0.3 * np.sin(2 * np.pi * freq_hz * t) + noise * rng.standard_normal(t.size)
    wave = wave.astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1) if channels > 1 else wave


def encode(samples: np.ndarray, sample_rate_hz: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate_hz, format=fmt, subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A tiny trained run folder (model.keras + config.json)."""
    from sound_tf.trainer import train_run

    root = tmp_path_factory.mktemp("serve_e2e")
    for index, (label, freq) in enumerate(TONES_HZ.items()):
        folder = root / "data" / label
        folder.mkdir(parents=True)
        for i in range(8):
            sf.write(folder / f"{label}_{i}.wav", tone(freq * (0.97 + 0.01 * (i % 6)), 0.6, SR, noise=0.02,
                                                       seed=10 * index + i), SR, subtype="PCM_16")
    config = apply_overrides(Config(), {
        "data.path": str(root / "data"), "data.format": "folder", "audio.sample_rate_hz": SR,
        "audio.clip_seconds": 0.5, "train.epochs": 1, "train.batch_size": 8, "augment.enabled": False,
        "model.widths": [8, 16]})
    result = train_run(config, root / "run", log=lambda *args, **kwargs: None, verbose=0, evaluate_test=False)
    return result.run_dir


@pytest.fixture(scope="module")
def bundle(run_dir) -> Path:
    """The run exported as a bundle: config.json, labels.txt, saved_model/, model_float32.tflite."""
    from sound_tf.export import ExportProfile, export_run

    profile = ExportProfile(name="serve-test", artefacts=("saved_model", "float32"), latency_runs=2)
    export_run(run_dir, profile=profile, out_dir=run_dir.parent / "bundle", allow_degraded=True,
               log=lambda *args, **kwargs: None)
    return run_dir.parent / "bundle"


def keras_clip_probabilities(run_dir: Path, wave: np.ndarray) -> np.ndarray:
    """softmax(mean over windows of the Keras model's logits): the evaluation's clip score."""
    import keras

    from sound_tf import augment, frontend, models  # noqa: F401
    config = Config.load(run_dir)
    model = keras.models.load_model(run_dir / "model.keras")
    windows = split_windows(wave, clip_samples=config.audio.clip_samples,
                            hop_samples=config.audio.window_hop_samples)  # [windows, clip_samples]
    mean_logits = np.asarray(model(windows, training=False), np.float64).mean(axis=0)  # [classes]
    scores = np.exp(mean_logits - mean_logits.max())
    return scores / scores.sum()


def ready_answer(client, seconds: float = 30.0) -> dict:
    """``/ready``'s answer once the server has loaded its model (the warm-up runs in the background)."""
    for _ in range(int(seconds / 0.05)):
        if client.get("/ready").status_code == 200:
            break
        time.sleep(0.05)
    return client.get("/ready").json()


def test_keras_run_folder_served_in_process(run_dir):
    from fastapi.testclient import TestClient

    from sound_tf.serve import ServeSettings, create_app

    data = encode(tone(900, 1.3, 44100, channels=2), 44100, "FLAC", "PCM_24")
    expected = keras_clip_probabilities(run_dir, decode_bytes(data, sample_rate_hz=SR))
    with TestClient(create_app(ServeSettings(model_dir=run_dir))) as client:
        ready = ready_answer(client)
        assert (ready["backend"], ready["model_file"], ready["variant"]) == ("keras", "model.keras", None)
        body = client.post("/classify?top_k=3", files={"file": ("mid.flac", data)}).json()
    labels = list(Config.load(run_dir).labels)
    got = np.array([{t["label"]: t["probability"] for t in body["top_k"]}[label] for label in labels])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert body["predicted_class"] == int(np.argmax(expected)) and body["num_windows"] == 5


def test_bundle_backends_agree_with_keras(run_dir, bundle):
    from sound_tf.serve.backends import load_backend

    rng = np.random.default_rng(0)
    config = Config.load(bundle)
    windows = np.stack([tone(f, 0.5, SR, noise=0.05, seed=i) for i, f in enumerate([300, 900, 2200, 600])]
                       + [np.zeros(config.audio.clip_samples, np.float32),
                          (0.1 * rng.standard_normal(config.audio.clip_samples)).astype(np.float32)])
    outputs = {kind: load_backend(bundle if kind != "keras" else run_dir, kind).predict(windows)
               for kind in ("keras", "savedmodel", "tflite")}
    for kind in ("savedmodel", "tflite"):
        for name in ("probabilities", "logits"):
            assert outputs[kind][name].shape == (6, 3)
            np.testing.assert_allclose(outputs[kind][name], outputs["keras"][name], atol=5e-5, err_msg=f"{kind} {name}")
    probabilities = outputs["keras"]["probabilities"]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    logits = outputs["keras"]["logits"]
    np.testing.assert_allclose(probabilities, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), atol=1e-6)


def test_a_bundle_whose_config_was_edited_after_export_is_refused_by_the_savedmodel_backend(bundle, run_dir,
                                                                                           tmp_path):
    """The SavedModel backend took its labels from config.json: reordered by hand, it answered another class
    than the TFLite backend and lite, which read the labels export wrote into their models."""
    import json
    import shutil

    from sound_tf.errors import ConfigError, SoundTFError
    from sound_tf.serve.backends import load_backend

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    data = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**data, "labels": data["labels"][::-1]}))
    with pytest.raises(ConfigError, match=r"config.json: does not describe .*saved_model \(labels \[.*\] in the model, "
                                          r"\[.*\] in config.json\); it was edited after export"):
        load_backend(copy, "savedmodel")
    # a run folder's model.keras is checked against its config.json's features, as load_run checks it
    run_copy = tmp_path / "run"
    shutil.copytree(run_dir, run_copy, ignore=shutil.ignore_patterns("export", "logs", "backup", "checkpoints"))
    data = json.loads((run_copy / "config.json").read_text())
    data["features"]["num_mel_bins"] //= 2
    (run_copy / "config.json").write_text(json.dumps(data))
    with pytest.raises(SoundTFError, match="does not describe the model's features .*num_mel_bins"):
        load_backend(run_copy, "keras")
    # another clip length leaves the features as they were: the model's input length tells it
    data = json.loads((run_dir / "config.json").read_text())
    data["audio"]["clip_seconds"] *= 2
    (run_copy / "config.json").write_text(json.dumps(data))
    edited = Config.load(run_copy)
    with pytest.raises(ConfigError, match=rf"model.keras: the model takes {Config.load(run_dir).audio.clip_samples} "
                                          rf"samples per window but config.json gives "
                                          rf"clip_samples={edited.audio.clip_samples}"):
        load_backend(run_copy, "keras")


@pytest.mark.parametrize("backend, served", [("savedmodel", "saved_model"), ("tflite", "model_float32.tflite")])
def test_a_bundle_whose_window_hop_was_edited_after_export_is_refused(bundle, tmp_path, backend, served):
    """The SavedModel backend took the hop from config.json, unchecked against the model's metadata signature:
    with audio.window_hop_seconds edited in the bundle it cut a long upload into other windows (19 where the
    TFLite backend and lite, which read the hop export wrote into their models, cut 10) and answered another
    probability for the same recording and bundle. The TFLite backend served the edited bundle without a word
    (with the model's own numbers); both now refuse it, as the README says."""
    import json
    import shutil

    from sound_tf.errors import ConfigError
    from sound_tf.serve.backends import load_backend

    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    data = json.loads((copy / "config.json").read_text())
    hop = Config.load(bundle).audio.window_hop_samples
    data["audio"]["window_hop_seconds"] = hop / 2 / SR
    (copy / "config.json").write_text(json.dumps(data))
    assert Config.load(copy).audio.window_hop_samples == hop // 2
    with pytest.raises(ConfigError, match=rf"config.json: does not describe .*{served} \(window_hop_samples {hop} "
                                          rf"in the model, {hop // 2} in config.json\); it was edited after export"):
        load_backend(copy, backend)
    assert load_backend(bundle, backend).window_hop_samples == hop  # the bundle as exported still loads


def test_a_run_folder_whose_labels_were_reordered_by_hand_is_refused_by_the_keras_backend(run_dir, tmp_path):
    """The Keras backend took the labels from config.json without the labels.txt check predict (load_run) makes:
    with config.json's labels reversed by hand, predict refused the run while the server named every answer
    after another class (a '3' served as '6', with the '3's probability)."""
    import json
    import shutil

    from sound_tf.errors import SoundTFError
    from sound_tf.evaluation import load_run
    from sound_tf.serve.backends import load_backend

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("export", "logs", "backup", "checkpoints"))
    data = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**data, "labels": data["labels"][::-1]}))
    for load in (lambda: load_run(copy, compile=False), lambda: load_backend(copy, "keras")):
        with pytest.raises(SoundTFError, match=r"labels.txt lists the classes .*, but .*config.json says .*: "
                                               r"one of them was edited"):
            load()
    assert load_backend(run_dir, "keras").labels == Config.load(run_dir).labels  # the run as trained still loads


def test_tflite_server_never_imports_tensorflow(bundle):
    # On the README's device (TensorFlow, Keras, scikit-learn, ... unimportable), with the test client (its
    # HTTP package is httpx or httpx2, by Starlette version).
    script = device_blocker("httpx", "httpx2") + textwrap.dedent(f"""
        import io, json, sys
        import numpy as np, soundfile as sf
        from fastapi.testclient import TestClient
        from sound_tf.serve import ServeSettings, create_app
        buffer = io.BytesIO()
        sf.write(buffer, np.zeros(4000, np.float32), 8000, format="WAV")
        with TestClient(create_app(ServeSettings(model_dir={str(bundle)!r}))) as client:
            import time
            while client.get("/ready").status_code != 200:
                time.sleep(0.02)
            ready = client.get("/ready").json()
            backend = (ready["backend"], ready["model_file"], ready["variant"])
            status = client.post("/classify", files={{"file": ("s.wav", buffer.getvalue())}}).status_code
        heavy = sorted(m for m in [*sys.modules, *_device_refused]
                       if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
        print(json.dumps({{"backend": backend, "status": status, "heavy": heavy}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"backend": ["tflite", "model_float32.tflite", "float32"], "status": 200, "heavy": []}


# -- a real server ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(server: subprocess.Popen, url: str, log: Path, seconds: float = 60.0) -> None:
    """Poll ``/ready`` of a server started as a child process until it answers 200."""
    deadline = time.time() + seconds
    while True:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            if httpx2.get(url + "/ready", timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        assert time.time() < deadline, "the server did not get ready"
        time.sleep(0.1)


def interrupt(server: subprocess.Popen, seconds: float = 20.0) -> int | None:
    """Ctrl-C a server child process: its exit code, or None when it had to be killed."""
    server.send_signal(signal.SIGINT)
    try:
        return server.wait(seconds)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        return None


def raw_request(port: int, head: bytes, body: bytes = b"", *, close_after_send: bool = False,
                timeout: float = 10.0) -> bytes:
    """Send bytes on a plain socket and read what the server answers until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        if close_after_send:
            return b""
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def multipart_head(port: int, length: int, boundary: str = "b0undary") -> bytes:
    return (f"POST /classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Request-ID: raw-{length}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n").encode()


def test_real_server_over_http(bundle, tmp_path):
    from sound_tf.lite import LiteClassifier

    port = free_port()
    spool = tmp_path / "spool"
    spool.mkdir()
    env = {**os.environ, "TMPDIR": str(spool), "SOUND_TF_MAX_UPLOAD_BYTES": str(3 * 1024 * 1024),
           "SOUND_TF_BODY_TIMEOUT_SECONDS": "1", "SOUND_TF_MAX_WAIT_MS": "2", "TF_CPP_MIN_LOG_LEVEL": "2",
           "SOUND_TF_KEEP_ALIVE_SECONDS": "1"}
    stderr_path = tmp_path / "server.log"
    with stderr_path.open("wb") as stderr:
        server = subprocess.Popen([sys.executable, "-m", "sound_tf.serve", str(bundle), "--host", "127.0.0.1",
                                   "--port", str(port)], cwd=REPO, env=env, stdout=stderr, stderr=stderr)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_ready(server, url, stderr_path)
            lite = LiteClassifier(bundle / "model_float32.tflite")
            with httpx2.Client(base_url=url, timeout=30) as http:
                assert http.get("/health").json() == {"status": "ok", "model": "ready"}
                assert http.get("/labels").json()["labels"] == list(lite.labels)

                # a connection that sends nothing, or half a request line, is closed after keep_alive_seconds
                # (it was held for ever, and 256 of them locked every client out)
                with socket.create_connection(("127.0.0.1", port)) as idle, \
                        socket.create_connection(("127.0.0.1", port)) as half:
                    half.sendall(b"GET /health HTTP/1.1\r\nHo")
                    began = time.monotonic()
                    for sock in (idle, half):
                        sock.settimeout(15)
                        assert sock.recv(1024) == b""  # closed by the server
                    assert time.monotonic() - began < 5
                assert http.get("/health").status_code == 200

                # real uploads, several formats and rates: the same numbers as the on-device runner
                for name, data in [("low.wav", encode(tone(300, 2.0, 16000), 16000)),
                                   ("high.flac", encode(tone(2200, 0.8, 44100, channels=2), 44100, "FLAC")),
                                   ("mid.ogg", encode(tone(900, 1.1, 22050), 22050, "OGG", "VORBIS"))]:
                    response = http.post("/classify", files={"file": (name, data)}, params={"top_k": 3},
                                         headers={"X-Request-ID": f"e2e-{name}"})
                    assert response.status_code == 200, response.text
                    body = response.json()
                    expected = lite.classify(decode_bytes(data, sample_rate_hz=lite.sample_rate_hz), top_k=3)
                    assert body["label"] == expected["label"] and body["num_windows"] == expected["num_windows"]
                    assert body["top_k"][0]["probability"] == pytest.approx(expected["probability"], abs=1e-5)
                    assert response.headers["x-request-id"] == body["request_id"] == f"e2e-{name}"
                article = http.post("/classify/", files={"file": ("a.wav", encode(tone(300, 0.5, SR), SR))})
                assert article.status_code == 200 and "predicted_class" in article.json()

                # an upload big enough to be spooled to a temporary file, under a hostile file name
                big = encode(tone(900, 90.0, SR, noise=0.01), SR)  # 1.4 MB
                response = http.post("/classify", files={"file": ("../../../tmp/evil.wav", big)})
                assert response.status_code == 200 and response.json()["filename"] == "evil.wav"
                assert response.json()["duration_seconds"] == pytest.approx(90.0)
                assert not (Path("/tmp") / "evil.wav").exists()

                bad = http.post("/classify", files={"file": ("x.wav", b"not audio" * 100)})
                assert bad.status_code == 415 and bad.json()["error"] == "unsupported_format"

            # declared size over the limit: refused from the headers alone, before any body byte is sent
            answer = raw_request(port, multipart_head(port, 10**9))
            assert answer.startswith(b"HTTP/1.1 413") and b'"upload_too_large"' in answer

            # a slow client: half a body, then silence -> 408 after the 1-s body timeout, connection closed
            began = time.time()
            answer = raw_request(port, multipart_head(port, 5000), b"--b0undary\r\n")
            assert answer.startswith(b"HTTP/1.1 408") and b'"body_timeout"' in answer
            assert 0.9 < time.time() - began < 8
            # an abandoned upload: the client goes away mid-body
            raw_request(port, multipart_head(port, 5000), b"--b0undary\r\n", close_after_send=True)

            with httpx2.Client(base_url=url, timeout=30) as http:  # still serving
                ok = http.post("/classify", files={"file": ("b.wav", encode(tone(2200, 0.5, SR), SR))})
                assert ok.status_code == 200
                metrics = http.get("/metrics").text
            assert 'sound_tf_errors_total{kind="upload_too_large"} 1.0' in metrics
            assert 'sound_tf_errors_total{kind="body_timeout"} 1.0' in metrics
            assert list(spool.iterdir()) == []  # temporary files are gone
        finally:
            code = interrupt(server)
    assert code == 0
    lines = json_lines(stderr_path)  # the LiteRT runtime's notice about its CPU delegate included
    access = [line for line in lines if line.get("logger") == "sound_tf.serve.access"]
    mine = next(line for line in access if line["request_id"] == "e2e-low.wav")
    assert (mine["method"], mine["path"], mine["status"], mine["client"]) == ("POST", "/classify", 200, "127.0.0.1")
    assert any(line.get("error") == "body_timeout" and line["status"] == 408 for line in access)
    assert any(line.get("message") == "model ready" and line.get("backend") == "tflite" for line in lines)


def test_metrics_of_several_workers_add_up_whichever_worker_answers(bundle, tmp_path):
    """``--workers 2``: each scrape shows every worker's requests (it used to show the answering worker's
    own, so one scrape target's counters went down and up), and the shared folder is removed at the end."""
    port = free_port()
    spool = tmp_path / "spool"
    spool.mkdir()
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    env.update(TMPDIR=str(spool), TF_CPP_MIN_LOG_LEVEL="2", SOUND_TF_MAX_WAIT_MS="2", SOUND_TF_KEEP_ALIVE_SECONDS="1")
    stderr_path = tmp_path / "server.log"
    sent = 10
    with stderr_path.open("wb") as stderr:
        server = subprocess.Popen([sys.executable, "-m", "sound_tf.serve", str(bundle), "--host", "127.0.0.1",
                                   "--port", str(port), "--workers", "2"], cwd=REPO, env=env, stdout=stderr,
                                  stderr=stderr)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_ready(server, url, stderr_path, seconds=120)
            # /ready answered by one worker while the other still loads its model: wait for both, or a request
            # the second one takes is a 503 (seen in a CI run under load)
            deadline = time.time() + 120
            while stderr_path.read_text().count('"message": "model ready"') < 2:
                assert server.poll() is None and time.time() < deadline, stderr_path.read_text()[-3000:]
                time.sleep(0.1)
            shared = list(spool.glob("sound_tf_metrics_*"))
            assert len(shared) == 1, list(spool.iterdir())
            clip = encode(tone(300, 0.5, SR), SR)
            for i in range(sent):  # a new connection each time, so both workers take some
                assert httpx2.post(url + "/classify", files={"file": (f"{i}.wav", clip)}, timeout=30).status_code == 200
            pattern = 'sound_tf_http_requests_total{endpoint="/classify",method="POST",status="200"} '
            for _ in range(8):
                text = httpx2.get(url + "/metrics", timeout=10).text
                counted = [line for line in text.splitlines() if line.startswith(pattern)]
                assert counted == [pattern + f"{float(sent)}"], counted
                assert "\nsound_tf_ready 1.0\n" in text
            # both workers write their values into the shared folder
            pids = {path.stem.rsplit("_", 1)[-1] for path in shared[0].glob("counter_*.db")}
            assert len(pids) == 2, sorted(p.name for p in shared[0].iterdir())
        finally:
            code = interrupt(server, seconds=30)
    assert code == 0, stderr_path.read_text()[-3000:]
    assert list(spool.glob("sound_tf_metrics_*")) == []
    records = json_lines(stderr_path)  # the workers' native lines too, turned into JSON by the supervisor
    assert sum(r["message"] == "Created TensorFlow Lite XNNPACK delegate for CPU." for r in records) == 2


def json_lines(path: Path) -> list[dict]:
    """Every line of a server's output file, each a JSON object (a line that is not fails the test)."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line in {path.name}: {line[:300]!r}")
        assert isinstance(records[-1], dict), line
    return records


@pytest.mark.parametrize("backend, level", [("tflite", "info"), ("savedmodel", "info"), ("keras", "info"),
                                            ("savedmodel", "warning")])
def test_every_line_the_server_writes_is_json(run_dir, bundle, tmp_path, backend, level):
    """TensorFlow's native lines (absl's notice and the oneDNN one, written as each of its libraries loads) and the
    TFLite runtime's XNNPACK line reached stderr as plain text between the JSON lines; they are records of the
    server's shape at their own level (info here), left out below ``--log-level``."""
    port = free_port()
    env = environment_as_a_user_starts_it()  # TensorFlow's oneDNN notice written on any x86 CPU
    env.update(SOUND_TF_KEEP_ALIVE_SECONDS="1", SOUND_TF_MAX_WAIT_MS="2")
    stdout_path, stderr_path = tmp_path / "server.out", tmp_path / "server.log"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        model = run_dir if backend == "keras" else bundle
        server = subprocess.Popen([sys.executable, "-m", "sound_tf.serve", str(model), "--port", str(port),
                                   "--backend", backend, "--log-level", level],
                                  cwd=REPO, env=env, stdout=stdout, stderr=stderr)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_ready(server, url, stderr_path, seconds=120)
            answer = httpx2.post(url + "/classify", files={"file": ("low.wav", encode(tone(300, 0.5, SR), SR))},
                                 headers={"X-Request-ID": "one"}, timeout=30)
            assert answer.status_code == 200 and answer.json()["label"] == "low"
        finally:
            code = interrupt(server)
    assert code == 0, stderr_path.read_text()[-3000:]
    assert json_lines(stdout_path) == []
    records = json_lines(stderr_path)
    native = [(r["level"], r["message"], r.get("source")) for r in records if r["logger"] == "sound_tf.serve.native"]
    if level == "warning":
        assert native == [] and {r["level"] for r in records} <= {"warning", "error"}, records
        return
    if backend == "tflite":  # the TFLite runtime's logger
        assert native == [("info", "Created TensorFlow Lite XNNPACK delegate for CPU.", None)]
    else:  # absl's, once for each of TensorFlow's two libraries
        notice = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
        assert [line[0] for line in native] == ["info"] * 4 and [line[1] for line in native[::2]] == [notice] * 2
        assert all(message.startswith("oneDNN custom operations are on.") and re.fullmatch(r"port\.cc:\d+", source)
                   for _, message, source in native[1::2]), native
    access = [r for r in records if r["logger"] == "sound_tf.serve.access" and r["request_id"] == "one"]
    assert [(r["level"], r["path"], r["status"]) for r in access] == [("info", "/classify", 200)]


def test_a_bundle_is_served_by_its_float32_tflite_model_and_ready_says_so(bundle):
    """auto serves a bundle's model_float32.tflite (before its SavedModel), and /ready names the file and variant."""
    from fastapi.testclient import TestClient

    from sound_tf.serve import ServeSettings, create_app

    with TestClient(create_app(ServeSettings(model_dir=bundle))) as client:
        ready = ready_answer(client)
    assert (ready["backend"], ready["model_file"], ready["variant"]) == ("tflite", "model_float32.tflite", "float32")
    assert ready["num_classes"] == len(Config.load(bundle).labels)


def test_a_run_folder_whose_clip_length_was_edited_is_refused_by_the_keras_backend(run_dir, tmp_path):
    """config.json's clip length must be the one the model takes: an edited audio.clip_seconds would cut uploads
    into windows the model was not trained on. The server refuses the run at start, naming both numbers."""
    import shutil

    from sound_tf.errors import ConfigError
    from sound_tf.serve.backends import load_backend

    edited = tmp_path / "run"
    shutil.copytree(run_dir, edited)
    config = Config.load(edited)
    trained = config.audio.clip_samples  # 4000: 0.5 s at 8 kHz
    longer = apply_overrides(config, {"audio.clip_seconds": 0.6})
    longer.save(edited)
    assert longer.audio.clip_samples == trained + SR // 10
    with pytest.raises(ConfigError, match=re.escape(f"{edited / 'model.keras'}: the model takes {trained} samples per "
                                                    f"window but config.json gives "
                                                    f"clip_samples={longer.audio.clip_samples}")):
        load_backend(edited, "keras")
