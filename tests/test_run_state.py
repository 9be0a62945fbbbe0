"""sound_tf.run_state: what a run's run_state.json gives when it is missing, damaged or not an object, how a write
merges into it, and when a run's state says its export is pending or its command stopped before training."""

from __future__ import annotations

import json

import pytest

from sound_tf import run_state
from sound_tf.errors import SoundTFError


def test_a_missing_state_is_empty_and_a_damaged_one_is_an_error_naming_the_file(tmp_path):
    """A run folder without run_state.json (or with a folder of that name) has no state; one that is not JSON, is not
    UTF-8, or holds another JSON value than an object is an error naming the file and what is wrong with it, which
    a command prints as its one line (a SoundTFError)."""
    assert run_state.read_state(tmp_path / "absent") == {}
    assert run_state.read_state(tmp_path) == {}
    (tmp_path / "run_state.json").mkdir()
    assert run_state.read_state(tmp_path) == {}
    (tmp_path / "run_state.json").rmdir()
    path = tmp_path / "run_state.json"
    for text, problem in ((b'{"status": "running", "finger', r"not valid JSON \(Unterminated string starting at: "
                                                               r"line 1 column 23 \(char 22\)\)"),
                          (b'{"status": "d\xff"}', r"not valid JSON \('utf-8' codec can't decode byte 0xff"),
                          (b'["running"]', "holds list, not the JSON object a run's state is"),
                          (b'"done"', "holds str, not the JSON object"),
                          (b"null", "holds NoneType, not the JSON object")):
        path.write_bytes(text)
        with pytest.raises(SoundTFError, match=rf"^{path}: {problem}.*; delete the run folder, or restore the file$"):
            run_state.read_state(tmp_path)


def test_a_write_merges_into_the_state_and_writes_it_as_json(tmp_path):
    """Each write keeps what earlier writes recorded (train records its fingerprint, then status, then seconds) and
    a key written again takes its new value; the file is the run's run_state.json, indented JSON on lines."""
    run_state.write_state(tmp_path, fingerprint="f", export_profile="default", export_done=False)
    run_state.write_state(tmp_path, status="running", export_done=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run_state.json"]
    expected = {"fingerprint": "f", "export_profile": "default", "export_done": True, "status": "running"}
    assert (tmp_path / "run_state.json").read_text(encoding="utf-8") == json.dumps(expected, indent=2) + "\n"
    assert run_state.read_state(tmp_path) == expected


@pytest.mark.parametrize("state, pending", [
    ({"status": "done", "export_profile": "default", "export_done": False}, True),
    ({"status": "done", "export_profile": "export/micro.toml"}, True),  # a flag not written yet: not done
    ({"status": "done", "export_profile": "default", "export_done": True}, False),
    ({"status": "running", "export_profile": "default", "export_done": False}, False),  # training not finished
    ({"fingerprint": "f", "export_profile": "default", "export_done": False}, False),  # stopped before training
    ({"status": "done", "export_done": False}, False),  # no export asked for
    ({"status": "done", "export_profile": None, "export_done": False}, False),
    ({"status": "done", "export_profile": "", "export_done": False}, False),
    ({}, False),
])
def test_an_export_is_pending_when_training_finished_and_the_export_asked_for_did_not(state, pending):
    assert run_state.export_pending(state) is pending


@pytest.mark.parametrize("state, stopped", [
    ({"fingerprint": "f"}, True),  # train's first state: its data was decoding
    ({"fingerprint": "f", "export_profile": "default", "export_done": False}, True),  # the same with --export
    ({"fingerprint": "f", "status": "running"}, False),  # training began
    ({"fingerprint": "f", "status": "done"}, False),
    ({"status": "running"}, False),  # an earlier version's state, without the fingerprint
    ({}, False),  # no state at all: no run there
    ({"fingerprint": ""}, False),
])
def test_a_run_stopped_before_training_has_its_fingerprint_and_no_status(state, stopped):
    assert run_state.stopped_before_training(state) is stopped
