"""sound_tf.evaluation's small helpers called from Python: softmax and the skipped.csv round trip."""

from __future__ import annotations

import numpy as np

from sound_tf.evaluation import softmax


def test_softmax_of_integer_logits_does_not_wrap_around():
    # int8 [-128, 127] shifted in int8 wrapped to [1, 0]: the smaller logit won
    np.testing.assert_allclose(softmax(np.array([[-128, 127]], np.int8)), [[0.0, 1.0]], atol=1e-12)


def test_softmax_takes_one_row_and_huge_logits():
    np.testing.assert_allclose(softmax(np.array([0.0, np.log(3.0)])), [0.25, 0.75])
    np.testing.assert_allclose(softmax(np.array([[1e308, 0.0], [-1e308, 0.0]])), [[1.0, 0.0], [0.0, 1.0]])

