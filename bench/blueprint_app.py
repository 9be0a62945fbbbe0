"""The original article's serving blueprint, kept as the baseline of ``bench/serve.py``.

A minimal FastAPI app: load the Keras model once, and for each ``POST /classify/`` decode the upload,
call ``model.predict`` on it, and answer ``{"predicted_class": ...}``. No batching, no limits, no
error handling; the endpoint is ``async def`` as in the article, so ``model.predict`` runs on the event
loop. With ``BLUEPRINT_SYNC=1`` the endpoint is a plain ``def`` instead (FastAPI then runs it in its
thread pool), a slightly better-informed variant measured for comparison.

Run (the bench does this)::

    BLUEPRINT_RUN_DIR=runs/x python -m uvicorn bench.blueprint_app:app --port 8001

Decoding uses the same ``sound_tf.audio.decode_bytes`` (soundfile + soxr) as the real server, and the
rate and clip length come from the run's ``config.json``, so the comparison is about serving, not
decoding. Only the recording's first clip is classified (zero-padded), as in the article.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":  # a module uvicorn imports, not a command: say how it is run, before any heavy import
    raise SystemExit("bench/blueprint_app.py is a server module, not a command: `python bench/serve.py` runs it; "
                     "to serve it yourself, `BLUEPRINT_RUN_DIR=RUN python -m uvicorn bench.blueprint_app:app "
                     "--port 8001` from the checkout")

import numpy as np  # noqa: E402
from fastapi import FastAPI, File, UploadFile  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import keras  # noqa: E402

from sound_tf import augment, frontend, models  # noqa: E402,F401  (register the custom layers)
from sound_tf.audio import decode_bytes  # noqa: E402
from sound_tf.config import Config  # noqa: E402

if not os.environ.get("BLUEPRINT_RUN_DIR"):
    raise RuntimeError("BLUEPRINT_RUN_DIR is not set: it names the trained run folder this app serves")
RUN_DIR = Path(os.environ["BLUEPRINT_RUN_DIR"])
CONFIG = Config.load(RUN_DIR)
MODEL = keras.models.load_model(RUN_DIR / "model.keras")
CLIP_SAMPLES = CONFIG.audio.clip_samples

app = FastAPI(title="article blueprint")


def _predict(data: bytes) -> dict:
    wave = decode_bytes(data, sample_rate_hz=CONFIG.audio.sample_rate_hz)  # [samples]
    clip = np.zeros(CLIP_SAMPLES, np.float32)
    clip[: min(CLIP_SAMPLES, wave.shape[0])] = wave[:CLIP_SAMPLES]
    prediction = MODEL.predict(clip[None, :], verbose=0)  # [1, classes]
    return {"predicted_class": int(np.argmax(prediction[0]))}


if os.environ.get("BLUEPRINT_SYNC") == "1":
    @app.post("/classify/")
    def classify(file: UploadFile = File(...)) -> dict:
        return _predict(file.file.read())
else:
    @app.post("/classify/")
    async def classify(file: UploadFile = File(...)) -> dict:
        return _predict(await file.read())
