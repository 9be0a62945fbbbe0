"""Shared fixtures: seeded synthetic signals and the optional real dataset in ../shared/datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
FSDD_DIR = REPO.parent / "shared" / "datasets" / "fsdd" / "recordings"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def fsdd_dir() -> Path:
    """The real Free Spoken Digit recordings; only tests that need them skip when they are absent."""
    if not FSDD_DIR.is_dir():
        pytest.skip(f"real dataset not present at {FSDD_DIR} (only this real-data check is skipped)")
    return FSDD_DIR


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's decode cache out of the user's home folder."""
    monkeypatch.setenv("SOUND_TF_CACHE", str(tmp_path_factory.getbasetemp() / "sound_tf_cache"))


def sine(freq_hz: float, seconds: float, sample_rate_hz: int, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine wave."""
    t = np.arange(int(round(seconds * sample_rate_hz))) / sample_rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
