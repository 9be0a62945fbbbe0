"""sound_tf.evaluation's small helpers called from Python: softmax and the skipped.csv round trip."""

from __future__ import annotations

import numpy as np
import pytest

from sound_tf.errors import SoundTFError
from sound_tf.evaluation import read_skipped_csv, softmax, write_skipped_csv


def test_softmax_of_integer_logits_does_not_wrap_around():
    # int8 [-128, 127] shifted in int8 wrapped to [1, 0]: the smaller logit won
    np.testing.assert_allclose(softmax(np.array([[-128, 127]], np.int8)), [[0.0, 1.0]], atol=1e-12)


def test_softmax_takes_one_row_and_huge_logits():
    np.testing.assert_allclose(softmax(np.array([0.0, np.log(3.0)])), [0.25, 0.75])
    np.testing.assert_allclose(softmax(np.array([[1e308, 0.0], [-1e308, 0.0]])), [[1.0, 0.0], [0.0, 1.0]])


def test_skipped_csv_round_trips_commas_quotes_and_line_breaks(tmp_path):
    rows = [("a,b.wav", 'bad "header",\r\nline two\nthree'), ("c.wav", "")]
    assert read_skipped_csv(write_skipped_csv(tmp_path / "skipped.csv", rows)) == rows


def test_skipped_csv_that_cannot_be_written_whole_leaves_the_previous_one(tmp_path):
    """evaluate writes skipped.csv again on each run into the same --out: in place, a disk that filled half way
    left the first 4,096 bytes (a cut-short last row) where the previous list was."""
    from conftest import disk_full_after

    path = tmp_path / "skipped.csv"
    before = [("a.wav", "not a readable audio file")]
    write_skipped_csv(path, before)
    rows = [(f"clips/{i:04d}.wav", "truncated audio file (the header's RIFF size is 88244 bytes)") for i in range(500)]
    with disk_full_after(4096), pytest.raises(OSError, match="File too large"):
        write_skipped_csv(path, rows)
    assert read_skipped_csv(path) == before and sorted(tmp_path.iterdir()) == [path]
    assert read_skipped_csv(write_skipped_csv(path, rows)) == rows


@pytest.mark.parametrize("skipped", [("a.wav", "unreadable"), "a.wav", ["a.wav"], [("a.wav",)]])
def test_write_skipped_csv_refuses_what_is_not_pairs(tmp_path, skipped):
    # a single pair was written a character per field: rows 'a,.,w,a,v' and 'u,n,r,e,...'
    with pytest.raises(SoundTFError, match="skipped must be a sequence of .path, reason. pairs"):
        write_skipped_csv(tmp_path / "skipped.csv", skipped)
    assert not (tmp_path / "skipped.csv").exists()
