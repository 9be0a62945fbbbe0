"""sound_tf.serve.backends called from Python with windows it cannot score (no model loaded: stubs)."""

from __future__ import annotations

import numpy as np
import pytest

from sound_tf.errors import ConfigError
from sound_tf.serve.backends import KerasBackend, LiteBackend, ModelInfo

CLIP = 8
INFO = ModelInfo(labels=("a", "b"), sample_rate_hz=8000, clip_samples=CLIP, window_hop_samples=4)


class _Value:
    def __init__(self, array):
        self._array = array

    def numpy(self):
        return self._array


def _keras_stub():
    backend = object.__new__(KerasBackend)
    super(KerasBackend, backend).__init__("model.keras", INFO)
    # a model that, like the real ones, answers whatever it is fed with plausible numbers
    backend._fn = lambda w: {"logits": _Value(np.zeros((np.shape(w)[0], 2), np.float32)),
                             "probabilities": _Value(np.full((np.shape(w)[0], 2), 0.5, np.float32))}
    return backend


class _Classifier:
    def predict(self, windows):
        return {"probabilities": np.full((1, 2), 0.5, np.float32)}


def _lite_stub():
    backend = object.__new__(LiteBackend)
    super(LiteBackend, backend).__init__("model_float32.tflite", INFO)
    backend._classifier = _Classifier()
    return backend


@pytest.mark.parametrize("windows, problem", [
    (np.full((2, CLIP), np.nan, np.float32), "NaN or inf in window 0"),
    (np.ones((2, CLIP), np.int16) * 1000, "got dtype int16"),
    (np.zeros(CLIP, np.float32), r"got shape \(8,\)"),
    (np.zeros((2, CLIP + 1), np.float32), r"got shape \(2, 9\)"),
    (np.zeros((0, CLIP), np.float32), r"got shape \(0, 8\)"),
])
def test_keras_backend_refuses_windows_it_cannot_score(windows, problem):
    with pytest.raises(ConfigError, match=problem):
        _keras_stub().predict(windows)


def test_keras_backend_takes_float64_and_lists():
    out = _keras_stub().predict(np.zeros((3, CLIP), np.float64).tolist())
    assert out["probabilities"].shape == (3, 2)


def test_lite_backend_refuses_an_empty_batch_and_one_window_unbatched():
    for windows, shape in ((np.zeros((0, CLIP), np.float32), r"\(0, 8\)"), (np.zeros(CLIP, np.float32), r"\(8,\)")):
        with pytest.raises(ConfigError, match=f"got shape {shape}"):  # was IndexError / shape (1,)
            _lite_stub().predict(windows)


@pytest.mark.parametrize("sizes", [(0,), (-1,), ("2",), (True,), (np.True_,), np.True_, (1.5,), "2", None])
def test_warm_up_refuses_batch_sizes_that_are_not_positive_integers(sizes):
    with pytest.raises(ConfigError, match="warm_up: batch_sizes must be positive integers"):
        _keras_stub().warm_up(sizes)


def test_warm_up_takes_one_int_and_numpy_integers():
    _keras_stub().warm_up(3)
    _keras_stub().warm_up((np.int64(2), 1))
